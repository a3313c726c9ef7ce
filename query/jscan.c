/* query/jscan.c -- the JSON-lines scanner (contract in jscan.h): validates
 * every byte of a line (structure, number grammar, escapes, UTF-8) while
 * converting only the few top-level keys a query asks for. Scans the
 * caller's padded buffer in place (jscan_next) or a padded copy of a line
 * (jscan_line); owns the copy, the unescape scratch and the key template;
 * never recurses on nesting, never allocates per line once warmed up, knows
 * nothing of files, schemas or aggregation. */
#include "jscan.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_util.h"

#if defined(__SSE2__) /* all of x86-64; other machines take the plain C loops */
#include <emmintrin.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define JS_AVX2 1 /* an AVX2 loop for long strings, chosen at load time */
#endif
#endif

#define JS_LIKELY(x) __builtin_expect(!!(x), 1)
#define JS_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* The hot helpers must melt into the line loop, whatever gcc's size
 * heuristics think. */
#define JS_HOT static inline __attribute__((always_inline))

/* ---- the padded input -------------------------------------------------
 *
 * Every scan reads a line that ends in a sentinel byte followed by padding:
 * jscan_next works in the caller's buffer, where the line ends at its first
 * '\n' (the scanner writes one at buf[avail] too, so there always is one);
 * jscan_line and jscan_valid work on a private copy of their input with a
 * NUL at [len], where a '\n' is whitespace. No rule of the grammar accepts
 * the sentinel inside a line (it is a control character inside a string,
 * not a digit, and '\n' is not whitespace in jscan_next), so the hot loops
 * need no bounds checks: they stop there and a slow path tells "end of
 * line" from a stray byte. The padding (JSCAN_PADDING bytes, initialised but
 * never deciding anything) makes the 8-, 16- and 32-byte loads at any
 * position up to the sentinel safe. The scanner never writes into a line. */
enum { JS_PAD = JSCAN_PADDING };

/* p grown to hold need bytes (new space zeroed). */
__attribute__((noinline)) static uint8_t *js_grow_to(uint8_t *p, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    p = sp_xrealloc(p, n);
    memset(p + *cap, 0, n - *cap); /* never read uninitialised padding */
    *cap = n;
    return p;
}

static inline uint8_t *js_grow(uint8_t *p, size_t *cap, size_t need)
{
    return JS_LIKELY(need <= *cap) ? p : js_grow_to(p, cap, need);
}

/* ---- the scanner ------------------------------------------------------ */

typedef struct js_col {
    char *name;
    uint32_t len;
    sp_type_t type;
    int next_same; /* next column with the same key name, or -1 */
} js_col_t;

/* A key of the line template: the line's bytes from the end of the value
 * before (or from the object's '{') to the start of the key's value
 * (,"gt": or {"gt": ), and the column the value feeds. */
typedef struct js_tmpl {
    _Alignas(16) uint8_t pat[32];
    uint32_t mask; /* the pattern's bits of a 32-byte compare */
    uint8_t n;     /* pattern length, 0..32 (0: an empty first gap that never matches) */
    int32_t col;   /* js_key_find of the key */
} js_tmpl_t;

typedef enum js_tmpl_mode {
    JS_TMPL_LEARN, /* the next object line records its keys */
    JS_TMPL_USE,   /* lines are matched against the template */
    JS_TMPL_WAIT,  /* dropped; learn again after tmpl_wait lines */
} js_tmpl_mode_t;

enum { JS_TMPL_MAX = 256, JS_TMPL_LOOKAHEAD = 8, JS_TMPL_BACKOFF_MAX = 12 };

/* Key table entry: a wanted key by (length, first 8 bytes). */
typedef struct js_slot {
    uint64_t prefix;
    uint32_t len;
    int32_t col; /* first column with this name; -1: empty slot */
} js_slot_t;

struct jscan {
    size_t ncols;
    js_col_t *cols;
    sp_value_t *values;
    uint32_t *err_seq;    /* per column: 1 + key ordinal of a type error, or 0 */
    uint32_t nerrs;       /* columns with err_seq != 0 */
    uint64_t len_mask;    /* bit min(len, 63) set for each wanted key length */
    js_slot_t *slots;     /* open addressing, 1 << slot_bits entries */
    unsigned slot_bits;
    uint8_t *buf;         /* padded copy of the current input */
    size_t buf_cap;
    uint8_t *scratch;     /* unescaped strings of the current line */
    size_t scratch_cap;
    size_t scratch_used;
    locale_t c_locale;    /* for the strtod fallback; created on first use */
    js_tmpl_t tmpl0;      /* the key template (see "the key template"): the first key */
    js_tmpl_t *tmpl;      /* and the keys after it */
    uint32_t ntmpl;
    js_tmpl_mode_t tmpl_mode; /* JS_TMPL_LEARN (0) to begin with */
    uint32_t tmpl_wait;   /* lines to go before learning again */
    uint32_t tmpl_backoff;
    uint32_t line_keys, line_misses; /* of the current line */
    jscan_row_t row;
};

/* Per-call parse state: the input bounds and the first error. */
typedef struct js_parse {
    const uint8_t *buf;      /* the line's first byte */
    const uint8_t *end;      /* the sentinel: '\n' at buf + avail, or NUL at buf + len */
    const char *user;        /* the caller's pointer for buf[0] (values borrow from it) */
    const uint8_t *line_end; /* jscan_next: the line's '\n' once known, or NULL */
    bool nl_ends;            /* jscan_next: '\n' ends the line; otherwise whitespace */
    const char *err;
    const uint8_t *err_at;
} js_parse_t;

/* Whether p is the end of the line (p never goes past it). */
static inline bool js_at_end(const js_parse_t *jp, const uint8_t *p)
{
    return p >= jp->end || (jp->nl_ends && *p == '\n');
}

/* Record the first error (cold, out of line). */
__attribute__((cold, noinline)) static void js_error(js_parse_t *jp, const uint8_t *at,
                                                     const char *msg)
{
    if (!jp->err) {
        jp->err = msg;
        jp->err_at = at;
    }
}

/* An unexpected byte where `expected` was due: names the end of the line
 * and NUL bytes rather than the expectation when that is the cause. */
__attribute__((cold, noinline)) static void js_error_at(js_parse_t *jp, const uint8_t *at,
                                                        const char *expected)
{
    if (js_at_end(jp, at))
        js_error(jp, at, "unexpected end of line");
    else if (*at == 0)
        js_error(jp, at, "NUL byte in line");
    else
        js_error(jp, at, expected);
}

/* The two above, returning NULL (inline, so callers see the NULL) for
 * `return js_fail(...)`. */
static inline const uint8_t *js_fail(js_parse_t *jp, const uint8_t *at, const char *msg)
{
    js_error(jp, at, msg);
    return NULL;
}

static inline const uint8_t *js_fail_at(js_parse_t *jp, const uint8_t *at, const char *expected)
{
    js_error_at(jp, at, expected);
    return NULL;
}

__attribute__((cold, noinline, noreturn)) static void js_impossible_length(size_t len)
{
    fprintf(stderr, "jscan: line length %zu is impossible\n", len);
    abort();
}

/* Copy [in, in+len) into s->buf with its padding (jscan_line, jscan_valid). */
static inline const uint8_t *js_load(jscan_t *s, const char *in, size_t len, js_parse_t *jp)
{
    if (JS_UNLIKELY(len > SIZE_MAX / 2)) /* keeps len + JS_PAD from wrapping */
        js_impossible_length(len);
    s->buf = js_grow(s->buf, &s->buf_cap, len + JS_PAD);
    if (len)
        memcpy(s->buf, in, len);
    s->buf[len] = 0; /* the rest of the padding: initialised by js_grow, never read for meaning */
    *jp = (js_parse_t){.buf = s->buf, .end = s->buf + len, .user = in};
    return s->buf;
}

/* The length of the current line. jscan_next learns it only at the end of
 * a scan; the slow paths that need it before (the unescape scratch, the
 * strtod fallback) look for the '\n' once per line. */
static size_t js_line_len(js_parse_t *jp)
{
    if (!jp->nl_ends)
        return (size_t)(jp->end - jp->buf);
    if (!jp->line_end)
        jp->line_end = memchr(jp->buf, '\n', (size_t)(jp->end - jp->buf) + 1);
    return (size_t)(jp->line_end - jp->buf);
}

static inline uint64_t js_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t js_load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- whitespace ------------------------------------------------------- */

/* '\n' is whitespace except where it ends the line (jscan_next). */
__attribute__((noinline)) static const uint8_t *js_ws_slow(const js_parse_t *jp, const uint8_t *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || (*p == '\n' && !jp->nl_ends))
        p++;
    return p;
}

/* Skip JSON whitespace. Compact lines have none: one compare. */
JS_HOT const uint8_t *js_ws(const js_parse_t *jp, const uint8_t *p)
{
    if (JS_LIKELY(*p > ' '))
        return p;
    return js_ws_slow(jp, p);
}

/* ---- strings ----------------------------------------------------------
 *
 * The fast path finds the first byte of a string that is '"', '\\', a
 * control character or >= 0x80; for plain ASCII strings that byte is the
 * closing quote. One signed compare `b < 0x20` catches both the control
 * characters and the bytes >= 0x80 (negative as int8). Everything else
 * (escapes, UTF-8 sequences, errors) continues in js_str_slow.
 *
 * The first 16 bytes are tested inline: most keys and values end there.
 * Longer strings continue out of line, 32 bytes a step with AVX2 when the
 * CPU has it (see "instruction sets"), 16 with SSE2 otherwise. On
 * text-heavy data (strings of a few hundred bytes) AVX2 gains ~5%. */

#if defined(__SSE2__)
static const uint8_t *js_str_stop_sse2(const uint8_t *p)
{
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (;;) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
}

#if defined(JS_AVX2)
__attribute__((target("avx2"))) static const uint8_t *js_str_stop_avx2(const uint8_t *p)
{
    const __m256i quote = _mm256_set1_epi8('"');
    const __m256i bslash = _mm256_set1_epi8('\\');
    const __m256i space = _mm256_set1_epi8(0x20);
    for (;;) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i m = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)),
            _mm256_cmpgt_epi8(space, v));
        unsigned mask = (unsigned)_mm256_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 32;
    }
}
#endif

/* Set once before main by js_isa_init, read-only afterwards. */
static const uint8_t *(*js_str_stop_long)(const uint8_t *p) = js_str_stop_sse2;

JS_HOT const uint8_t *js_str_stop(const uint8_t *p)
{
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));
    unsigned mask = (unsigned)_mm_movemask_epi8(m);
    if (JS_LIKELY(mask))
        return p + __builtin_ctz(mask);
    return js_str_stop_long(p + 16);
}
#else
JS_HOT const uint8_t *js_str_stop(const uint8_t *p)
{
    while (*p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
        p++;
    return p;
}
#endif

static const int8_t js_hexval[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
}; /* value + 1; 0: not a hex digit */

/* The 4 hex digits at p, or -1. */
static int js_hex4(const uint8_t *p)
{
    int a = js_hexval[p[0]], b = js_hexval[p[1]], c = js_hexval[p[2]], d = js_hexval[p[3]];
    if (!a || !b || !c || !d)
        return -1;
    return ((a - 1) << 12) | ((b - 1) << 8) | ((c - 1) << 4) | (d - 1);
}

/* Length (2..4) of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0
 * (stray continuation byte, overlong form, UTF-16 surrogate, > U+10FFFF,
 * truncated sequence). Table 3-7 of the Unicode Standard. */
static size_t js_utf8_len(const uint8_t *p)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    size_t n;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static uint8_t *js_put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | (cp >> 6));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18));
        *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Continue a string at q, where the fast scan stopped on something other
 * than the closing quote. Validates escapes, UTF-8 and control characters;
 * when *out is not NULL appends the unescaped bytes there and advances it.
 * A \u escape of a surrogate that is not half of a pair (high then low)
 * is grammatical JSON (RFC 8259 8.2) but has no UTF-8 form: it unescapes
 * as U+FFFD, as json-c does, and whatever follows it is read on its own.
 * Returns the byte after the closing quote, or NULL with the error
 * recorded. The output is never longer than the input. */
__attribute__((noinline)) static const uint8_t *js_str_slow(js_parse_t *jp, const uint8_t *q,
                                                             uint8_t **out)
{
    uint8_t *o = out ? *out : NULL;
    for (;;) {
        uint8_t c = *q;
        if (c == '"') {
            break;
        } else if (c == '\\') {
            uint32_t cp;
            switch (q[1]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                int u = js_hex4(q + 2);
                if (u < 0)
                    return js_fail(jp, q, "invalid \\u escape in string");
                cp = (uint32_t)u;
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    int lo = cp <= 0xDBFF && q[6] == '\\' && q[7] == 'u' ? js_hex4(q + 8) : -1;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                        q += 6;
                    } else {
                        cp = 0xFFFD; /* a lone surrogate */
                    }
                }
                q += 4; /* and 2 below */
                break;
            }
            default: return js_fail_at(jp, q + 1, "invalid escape in string");
            }
            q += 2;
            if (o)
                o = js_put_utf8(o, cp);
        } else if (c >= 0x80) {
            size_t n = js_utf8_len(q);
            if (!n)
                return js_fail(jp, q, "invalid UTF-8 in string");
            if (o) {
                memcpy(o, q, n);
                o += n;
            }
            q += n;
        } else if (c < 0x20) {
            if (js_at_end(jp, q))
                return js_fail(jp, q, "unterminated string");
            return js_fail(jp, q, c ? "control character in string" : "NUL byte in line");
        } else {
            const uint8_t *r = js_str_stop(q);
            if (o) {
                memcpy(o, q, (size_t)(r - q));
                o += r - q;
            }
            q = r;
        }
    }
    if (out)
        *out = o;
    return q + 1;
}

/* Skip the string whose opening quote is at p. */
JS_HOT const uint8_t *js_str_skip(js_parse_t *jp, const uint8_t *p)
{
    const uint8_t *q = js_str_stop(p + 1);
    if (JS_LIKELY(*q == '"'))
        return q + 1;
    return js_str_slow(jp, q, NULL);
}

/* Make room for every unescaped string of the current line: they come from
 * disjoint parts of it and never grow, so len bytes suffice and the scratch
 * never moves while a line is scanned (earlier values stay valid). */
static void js_scratch_ready(jscan_t *s, js_parse_t *jp)
{
    s->scratch = js_grow(s->scratch, &s->scratch_cap, js_line_len(jp) + JS_PAD);
}

/* Read the string at p (opening quote). Plain strings borrow from the
 * input; others are unescaped into the scratch, which keeps them when
 * `keep` (a value) and reuses the space otherwise (a key). */
JS_HOT const uint8_t *js_str_read(jscan_t *s, js_parse_t *jp, const uint8_t *p, bool keep,
                                         const uint8_t **str, size_t *len, bool *scratch)
{
    const uint8_t *q = js_str_stop(p + 1);
    *scratch = false;
    if (JS_LIKELY(*q == '"')) {
        *str = p + 1;
        *len = (size_t)(q - p - 1);
        return q + 1;
    }
    *scratch = true;
    js_scratch_ready(s, jp);
    uint8_t *start = s->scratch + s->scratch_used, *o = start;
    memcpy(o, p + 1, (size_t)(q - p - 1));
    o += q - p - 1;
    q = js_str_slow(jp, q, &o);
    if (!q)
        return NULL;
    *str = start;
    *len = (size_t)(o - start);
    if (keep)
        s->scratch_used += *len;
    return q;
}

/* ---- numbers ----------------------------------------------------------
 *
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, digits counted eight at a
 * time. js_num_span only validates and records where the parts are; the
 * conversions read the parts. */

typedef struct js_num {
    const uint8_t *ip, *fp, *ep; /* integer, fraction, exponent digits */
    size_t ni, nf, ne;
    bool neg, exp_neg;
} js_num_t;

/* The digits among 16 bytes as a bit mask: b - '0' + 0x80 is below
 * 0x80 + 10 (as a signed byte) only for '0'..'9'. */
#if defined(__SSE2__)
JS_HOT unsigned js_digit_mask16(const uint8_t *p)
{
    __m128i t = _mm_add_epi8(_mm_loadu_si128((const __m128i *)(const void *)p),
                             _mm_set1_epi8((char)(0x80 - '0')));
    return (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(t, _mm_set1_epi8((char)(0x80 + 10))));
}

/* Number of ASCII digits starting at p (the sentinel bounds it). */
JS_HOT size_t js_digits(const uint8_t *p)
{
    for (size_t n = 0;; n += 16) {
        unsigned digit = js_digit_mask16(p + n);
        if (digit != 0xFFFF)
            return n + (size_t)__builtin_ctz(~digit);
    }
}
#else
JS_HOT size_t js_digits(const uint8_t *p)
{
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    return n;
}
#endif

/* Bit i set when p[i] is not a digit, for i < 32; bits 32..63 set. One
 * pair of loads at the start of a number serves its sign, integer and
 * fraction digits alike: they do not wait for each other's loads. */
#if defined(__SSE2__)
JS_HOT uint64_t js_nondigits32(const uint8_t *p)
{
    return ~(uint64_t)(js_digit_mask16(p) | js_digit_mask16(p + 16) << 16);
}
#else
JS_HOT uint64_t js_nondigits32(const uint8_t *p)
{
    uint64_t m = ~0ULL << 32;
    for (int i = 0; i < 32; i++)
        m |= (uint64_t)(p[i] < '0' || p[i] > '9') << i;
    return m;
}
#endif

/* The digit run at w + off, given nd = js_nondigits32(w). */
JS_HOT size_t js_digits_at(const uint8_t *w, uint64_t nd, size_t off)
{
    if (JS_UNLIKELY(off >= 32))
        return js_digits(w + off);
    size_t d = (size_t)__builtin_ctzll(nd >> off);
    if (JS_UNLIKELY(off + d == 32)) /* the run reaches past the window */
        d += js_digits(w + 32);
    return d;
}

/* Validate the number at p, record its parts in *n and return its end. */
JS_HOT const uint8_t *js_num_span(js_parse_t *jp, const uint8_t *p, js_num_t *n)
{
    const uint8_t *q = p;
    uint64_t nd = js_nondigits32(p);
    n->neg = *q == '-';
    q += n->neg;
    size_t d = js_digits_at(p, nd, n->neg);
    if (JS_UNLIKELY(d == 0))
        return js_fail_at(jp, q, "invalid number");
    if (JS_UNLIKELY(*q == '0' && d > 1))
        return js_fail(jp, q, "leading zero in number");
    n->ip = q;
    n->ni = d;
    q += d;
    n->fp = n->ep = q;
    n->nf = 0;
    n->ne = 0;
    n->exp_neg = false;
    if (*q == '.') {
        d = js_digits_at(p, nd, (size_t)(q + 1 - p));
        if (JS_UNLIKELY(d == 0))
            return js_fail_at(jp, q + 1, "invalid number: no digit after '.'");
        n->fp = q + 1;
        n->nf = d;
        q += 1 + d;
    }
    if ((*q | 0x20) == 'e') {
        q++;
        n->exp_neg = *q == '-';
        q += *q == '-' || *q == '+';
        d = js_digits(q);
        if (JS_UNLIKELY(d == 0))
            return js_fail_at(jp, q, "invalid number: no digit in exponent");
        n->ep = q;
        n->ne = d;
        q += d;
    }
    return q;
}

/* The general path of js_num_skip, out of line. */
__attribute__((noinline)) static const uint8_t *js_num_skip_slow(js_parse_t *jp, const uint8_t *p)
{
    js_num_t n;
    return js_num_span(jp, p, &n);
}

/* Validate the number at p and return its end, converting nothing. The
 * shape of nearly every number, -?digits(.digits)? within 32 bytes, is
 * checked from the one digit mask, without waiting on the bytes one by one:
 * the first non-digit after the integer part and, when that is a '.', the
 * next one. Anything else (an exponent, a long number, an error) takes
 * js_num_span, which also names the error. */
JS_HOT const uint8_t *js_num_skip(js_parse_t *jp, const uint8_t *p)
{
    uint64_t nd = js_nondigits32(p);
    size_t neg = *p == '-';
    uint64_t f = nd >> neg;                     /* bit i: p[neg + i] is no digit */
    size_t a = (size_t)__builtin_ctzll(f);      /* integer digits (f has bits 31..62 set) */
    size_t e = neg + a;                         /* the end so far */
    bool bad = a == 0 || (p[neg] == '0' && a > 1);
    if (p[e] == '.') {
        size_t b = (size_t)__builtin_ctzll(f & (f - 1)); /* the non-digit after the '.' */
        bad |= b == a + 1;                      /* no fraction digit */
        e = neg + b;
    }
    if (JS_UNLIKELY(bad || e >= 32 || (p[e] | 0x20) == 'e'))
        return js_num_skip_slow(jp, p);
    return p + e;
}

/* Eight ASCII digits, first digit in the low byte, to their value (SWAR:
 * pairs, then quads, then the eight). */
static inline uint32_t js_swar8(uint64_t v)
{
    v &= 0x0F0F0F0F0F0F0F0FULL;
    v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFULL;
    v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFULL;
    return (uint32_t)((v * 10000 + (v >> 32)) & 0xFFFFFFFFULL);
}

static const uint64_t js_pow10_u64[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

/* acc * 10^n + the n digits at p; the caller keeps the result < 2^64.
 * Reads 8 bytes at p even when n < 8 (the padding allows it): shifting the
 * n digits to the top of the word leaves zero bytes below, which count as
 * leading zeros. */
static inline uint64_t js_acc_digits(uint64_t acc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        acc = acc * 100000000 + js_swar8(js_load64(p));
        p += 8;
        n -= 8;
    }
    if (n)
        acc = acc * js_pow10_u64[n] + js_swar8(js_load64(p) << (8 * (8 - n)));
    return acc;
}

/* A JSON integer (no fraction, no exponent) within int64. */
static inline bool js_num_int64(const js_num_t *n, int64_t *out)
{
    if (n->nf || n->ne || n->ni > 19)
        return false;
    uint64_t u = js_acc_digits(0, n->ip, n->ni); /* < 10^19 < 2^64 */
    if (n->neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return false;
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
    }
    return true;
}

static const double js_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The number [start, end) by strtod in the C locale, from a NUL-terminated
 * copy in the scratch (past the strings kept there: the number is a part
 * of the line disjoint from theirs, so the line's length still suffices). */
__attribute__((noinline)) static double js_strtod(jscan_t *s, js_parse_t *jp,
                                                  const uint8_t *start, const uint8_t *end)
{
    if (!s->c_locale) {
        s->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (!s->c_locale) {
            fprintf(stderr, "jscan: cannot create the C locale\n");
            abort();
        }
    }
    js_scratch_ready(s, jp);
    char *copy = (char *)s->scratch + s->scratch_used;
    memcpy(copy, start, (size_t)(end - start));
    copy[end - start] = 0;
    return strtod_l(copy, NULL, s->c_locale);
}

/* The number [start, end) as the nearest double. Clinger's fast path when
 * the digits (at most 19, leading zeros included) make an integer exact in
 * a double (<= 2^53) and the power of ten is exact too (|e| <= 22): one
 * correctly rounded multiply or divide. strtod otherwise. */
JS_HOT double js_num_double(jscan_t *s, js_parse_t *jp, const js_num_t *n, const uint8_t *start,
                            const uint8_t *end)
{
    if (JS_LIKELY(n->ni + n->nf <= 19 && n->ne <= 9)) {
        uint64_t w = js_acc_digits(js_acc_digits(0, n->ip, n->ni), n->fp, n->nf);
        int64_t e = (int64_t)js_acc_digits(0, n->ep, n->ne);
        e = (n->exp_neg ? -e : e) - (int64_t)n->nf;
        if (w == 0)
            return n->neg ? -0.0 : 0.0;
        if (JS_LIKELY(w <= (1ULL << 53) && e >= -22 && e <= 22)) {
            double d = (double)w;
            d = e < 0 ? d / js_pow10[-e] : d * js_pow10[e];
            return n->neg ? -d : d;
        }
    }
    return js_strtod(s, jp, start, end);
}

/* ---- literals, nesting, any value ------------------------------------- */

static inline uint32_t js_word(const char w[4])
{
    return js_load32((const uint8_t *)w);
}

/* true / false / null at p, or NULL. */
JS_HOT const uint8_t *js_literal(js_parse_t *jp, const uint8_t *p)
{
    uint32_t w = js_load32(p);
    if (w == js_word("true") || w == js_word("null"))
        return p + 4;
    if (w == js_word("fals") && p[4] == 'e')
        return p + 5;
    return js_fail_at(jp, p, "invalid literal (expected true, false or null)");
}

static const uint8_t *js_skip_nested(js_parse_t *jp, const uint8_t *p, unsigned depth);

/* Skip any scalar at p (a string, number or literal). */
JS_HOT const uint8_t *js_skip_scalar(js_parse_t *jp, const uint8_t *p)
{
    if (*p == '"')
        return js_str_skip(jp, p);
    if (*p == '-' || (*p >= '0' && *p <= '9'))
        return js_num_skip(jp, p);
    if (*p == 't' || *p == 'f' || *p == 'n')
        return js_literal(jp, p);
    return js_fail_at(jp, p, "unexpected character (expected a JSON value)");
}

static const uint8_t *js_skip_other(js_parse_t *jp, const uint8_t *p, unsigned depth);

/* Skip any value at p, found at nesting level `depth` (the number of
 * containers around it). Whitespace before it is skipped too (where a
 * template key matched with less whitespace than this line has). */
JS_HOT const uint8_t *js_skip_value(js_parse_t *jp, const uint8_t *p, unsigned depth)
{
    if (*p == '"')
        return js_str_skip(jp, p);
    if (*p == '-' || (*p >= '0' && *p <= '9'))
        return js_num_skip(jp, p);
    if (*p == '{' || *p == '[')
        return js_skip_nested(jp, p, depth);
    return js_skip_other(jp, p, depth);
}

/* The rare rest of js_skip_value: whitespace, literals, errors. */
__attribute__((noinline)) static const uint8_t *js_skip_other(js_parse_t *jp, const uint8_t *p,
                                                               unsigned depth)
{
    const uint8_t *q = js_ws(jp, p);
    if (q != p && !js_at_end(jp, q))
        return js_skip_value(jp, q, depth);
    return js_skip_scalar(jp, q);
}

/* Skip the object or array at p, validating all of it, without recursion:
 * one bit per open container (1: object) in a fixed stack, and a goto state
 * machine over the four places a parser can be. Fails when a container
 * would sit deeper than JSCAN_MAX_DEPTH counting the `depth` around p. */
__attribute__((noinline)) static const uint8_t *js_skip_nested(js_parse_t *jp, const uint8_t *p,
                                                                unsigned depth)
{
    uint64_t kinds[(JSCAN_MAX_DEPTH + 63) / 64];
    unsigned d = 0; /* containers open in this call */
    bool obj;

open: /* *p is '{' or '[' */
    if (depth + d >= JSCAN_MAX_DEPTH)
        return js_fail(jp, p, "nesting deeper than JSCAN_MAX_DEPTH (512)");
    obj = *p == '{';
    if (obj)
        kinds[d / 64] |= 1ULL << (d % 64);
    else
        kinds[d / 64] &= ~(1ULL << (d % 64));
    d++;
    p = js_ws(jp, p + 1);
    if (*p == (obj ? '}' : ']'))
        goto close;
    if (!obj)
        goto value;
key:
    if (*p != '"')
        return js_fail_at(jp, p, "expected a string key");
    if (!(p = js_str_skip(jp, p)))
        return NULL;
    p = js_ws(jp, p);
    if (*p != ':')
        return js_fail_at(jp, p, "expected ':' after key");
    p = js_ws(jp, p + 1);
value:
    if (*p == '{' || *p == '[')
        goto open;
    if (!(p = js_skip_scalar(jp, p)))
        return NULL;
after: /* a value ended inside container d - 1 */
    p = js_ws(jp, p);
    obj = kinds[(d - 1) / 64] >> ((d - 1) % 64) & 1;
    if (*p == ',') {
        p = js_ws(jp, p + 1);
        if (obj)
            goto key;
        goto value;
    }
    if (*p != (obj ? '}' : ']'))
        return js_fail_at(jp, p,
                          obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
close: /* *p closes container d - 1 */
    p++;
    if (--d == 0)
        return p;
    goto after;
}

/* ---- value tokens and conversion -------------------------------------- */

/* A value read at a wanted key: its kind, its raw JSON text [start, end),
 * and the parts a conversion needs. */
typedef struct js_tok {
    jscan_kind_t kind; /* JSCAN_KIND_INT: an integer literal (range unchecked) */
    const uint8_t *start, *end;
    const uint8_t *str; /* unescaped string (when asked for) */
    size_t slen;
    bool str_scratch;   /* str is in the scratch, not in the line copy */
    js_num_t num;
} js_tok_t;

/* Read and validate the value at p; unescape a string when `unescape`. */
JS_HOT const uint8_t *js_tok_read(jscan_t *s, js_parse_t *jp, const uint8_t *p, bool unescape,
                                  js_tok_t *t)
{
    const uint8_t *q;
    t->start = p;
    switch (*p) {
    case '"':
        t->kind = JSCAN_KIND_STRING;
        if (unescape) {
            q = js_str_read(s, jp, p, true, &t->str, &t->slen, &t->str_scratch);
        } else {
            q = js_str_skip(jp, p);
        }
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        q = js_num_span(jp, p, &t->num);
        t->kind = t->num.nf || t->num.ne ? JSCAN_KIND_FLOAT : JSCAN_KIND_INT;
        break;
    case 't': case 'f':
        t->kind = JSCAN_KIND_BOOL;
        q = js_literal(jp, p);
        break;
    case 'n':
        t->kind = JSCAN_KIND_NULL;
        q = js_literal(jp, p);
        break;
    case '{': case '[':
        t->kind = *p == '{' ? JSCAN_KIND_OBJECT : JSCAN_KIND_ARRAY;
        q = js_skip_nested(jp, p, 1);
        break;
    default: return js_fail_at(jp, p, "unexpected character (expected a JSON value)");
    }
    t->end = q;
    return q;
}

/* A pointer into the scanned bytes, as a pointer into the caller's (the
 * same in jscan_next, which scans in place). */
static inline const char *js_borrow(const js_parse_t *jp, const uint8_t *p)
{
    return jp->user + (p - jp->buf);
}

/* A STRING value; false (a type error) past the 4 GiB sp_value_t holds. */
static inline bool js_set_string(sp_value_t *v, const char *ptr, size_t len)
{
    v->type = SP_TYPE_STRING;
    v->u.s.ptr = ptr;
    v->u.s.len = (uint32_t)len;
    return len <= UINT32_MAX;
}

static inline bool js_str_eq(const js_tok_t *t, const char *lit, size_t n)
{
    return t->slen == n && memcmp(t->str, lit, n) == 0;
}

/* Convert t to `type` in *v; false is a type error. */
static inline bool js_convert(jscan_t *s, js_parse_t *jp, const js_tok_t *t, sp_type_t type,
                              sp_value_t *v)
{
    if (t->kind == JSCAN_KIND_NULL) {
        *v = SP_VALUE_NULL;
        return true;
    }
    switch (type) {
    case SP_TYPE_STRING:
        if (t->kind == JSCAN_KIND_STRING) {
            const char *str = t->str_scratch ? (const char *)t->str : js_borrow(jp, t->str);
            return js_set_string(v, str, t->slen);
        }
        return js_set_string(v, js_borrow(jp, t->start), (size_t)(t->end - t->start));
    case SP_TYPE_BIGINT:
        v->type = SP_TYPE_BIGINT;
        return t->kind == JSCAN_KIND_INT && js_num_int64(&t->num, &v->u.i);
    case SP_TYPE_DOUBLE:
        v->type = SP_TYPE_DOUBLE;
        if (t->kind == JSCAN_KIND_INT || t->kind == JSCAN_KIND_FLOAT) {
            v->u.d = js_num_double(s, jp, &t->num, t->start, t->end);
            return true;
        }
        if (t->kind == JSCAN_KIND_STRING) {
            if (js_str_eq(t, "NaN", 3))
                v->u.d = (double)NAN;
            else if (js_str_eq(t, "Infinity", 8))
                v->u.d = (double)INFINITY;
            else if (js_str_eq(t, "-Infinity", 9))
                v->u.d = -(double)INFINITY;
            else
                return false;
            return true;
        }
        return false;
    case SP_TYPE_BOOLEAN:
        v->type = SP_TYPE_BOOLEAN;
        v->u.b = *t->start == 't';
        return t->kind == JSCAN_KIND_BOOL;
    case SP_TYPE_NULL: break;
    }
    return false;
}

/* ---- wanted keys ------------------------------------------------------ */

static inline uint64_t js_prefix(const uint8_t *k, size_t len)
{
    uint64_t v = js_load64(k);
    return len >= 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

static inline unsigned js_hash(uint64_t prefix, size_t len, unsigned bits)
{
    return (unsigned)(((prefix ^ (len * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL) >>
                      (64 - bits));
}

static inline uint64_t js_len_bit(size_t len)
{
    return 1ULL << (len < 63 ? len : 63);
}

__attribute__((noinline)) static int js_key_probe(const jscan_t *s, const uint8_t *k, size_t len)
{
    uint64_t prefix = js_prefix(k, len);
    unsigned mask = (1u << s->slot_bits) - 1;
    for (unsigned i = js_hash(prefix, len, s->slot_bits);; i = (i + 1) & mask) {
        const js_slot_t *e = &s->slots[i];
        if (e->col < 0)
            return -1;
        if (e->len == len && e->prefix == prefix &&
            (len <= 8 || memcmp(k + 8, s->cols[e->col].name + 8, len - 8) == 0))
            return e->col;
    }
}

/* The first column named by key [k, k+len), or -1. Most keys of a line are
 * not wanted and fail on their length alone. k must have 8 readable bytes. */
JS_HOT int js_key_find(const jscan_t *s, const uint8_t *k, size_t len)
{
    if (JS_LIKELY(!(s->len_mask & js_len_bit(len))))
        return -1;
    return js_key_probe(s, k, len);
}

/* ---- keys and values of a line ------------------------------------------ */

/* Read a key string at p (which must be a '"'), unescaped when needed into
 * scratch space that the next key reuses. */
JS_HOT const uint8_t *js_key_read(jscan_t *s, js_parse_t *jp, const uint8_t *p,
                                         const uint8_t **key, size_t *len)
{
    bool scratch;
    if (JS_UNLIKELY(*p != '"'))
        return js_fail_at(jp, p, "expected a string key");
    return js_str_read(s, jp, p, false, key, len, &scratch);
}

/* Record whether column c converted: a repeated key replaces the earlier
 * value and forgets its type error; a type error leaves NULL. */
static inline void js_settle(jscan_t *s, int c, bool ok, uint32_t ordinal)
{
    if (JS_UNLIKELY(s->nerrs) && s->err_seq[c]) {
        s->err_seq[c] = 0;
        s->nerrs--;
    }
    if (JS_UNLIKELY(!ok)) {
        s->values[c] = SP_VALUE_NULL;
        s->err_seq[c] = ordinal + 1;
        s->nerrs++;
    }
}

/* The value at p for column c and its chain of same-named columns, any
 * JSON kind to any column type. */
__attribute__((noinline)) static const uint8_t *js_value_any(jscan_t *s, js_parse_t *jp,
                                                              const uint8_t *p, int c,
                                                              uint32_t ordinal)
{
    js_tok_t t = {.kind = JSCAN_KIND_NULL};
    p = js_ws(jp, p); /* (after a template key with less whitespace than this line) */
    if (!(p = js_tok_read(s, jp, p, true, &t)))
        return NULL;
    for (; c >= 0; c = s->cols[c].next_same)
        js_settle(s, c, js_convert(s, jp, &t, s->cols[c].type, &s->values[c]), ordinal);
    return p;
}

/* The value at p for column c: inline paths for the JSON kind the column
 * type expects (a string for STRING, a number for BIGINT and DOUBLE), the
 * rest out of line. */
JS_HOT const uint8_t *js_value(jscan_t *s, js_parse_t *jp, const uint8_t *p, int c,
                               uint32_t ordinal)
{
    const js_col_t *col = &s->cols[c];
    sp_value_t *v = &s->values[c];
    if (JS_UNLIKELY(col->next_same >= 0))
        return js_value_any(s, jp, p, c, ordinal);
    if (col->type == SP_TYPE_STRING && *p == '"') {
        const uint8_t *str;
        size_t len;
        bool scratch;
        if (!(p = js_str_read(s, jp, p, true, &str, &len, &scratch)))
            return NULL;
        js_settle(s, c, js_set_string(v, scratch ? (const char *)str : js_borrow(jp, str), len),
                  ordinal);
        return p;
    }
    if ((col->type == SP_TYPE_BIGINT || col->type == SP_TYPE_DOUBLE) &&
        (*p == '-' || (*p >= '0' && *p <= '9'))) {
        js_num_t n;
        const uint8_t *q = js_num_span(jp, p, &n);
        if (!q)
            return NULL;
        bool ok = true;
        if (col->type == SP_TYPE_BIGINT) {
            v->type = SP_TYPE_BIGINT;
            ok = js_num_int64(&n, &v->u.i);
        } else {
            v->type = SP_TYPE_DOUBLE;
            v->u.d = js_num_double(s, jp, &n, p, q);
        }
        js_settle(s, c, ok, ordinal);
        return q;
    }
    return js_value_any(s, jp, p, c, ordinal);
}

/* ---- the key template ------------------------------------------------
 *
 * Walking a line pointer by pointer makes each step wait for the one
 * before: finding where a key ends takes a load, compares, a movemask and a
 * count of trailing zeros (some 15 cycles) before the value can start. But
 * the lines of a file almost always repeat their keys in the same order. So
 * the scanner remembers, for each key of a line, the exact bytes from the
 * end of the value before it to the start of its own value (,"gt": or
 * , "gt" : ) and the column it feeds. At the next line it compares the
 * bytes after each value with the expected gap (one 32-byte compare that
 * does not depend on where the key ends) and on a match jumps straight to
 * the next value: separator, key and colon in one step. Equal bytes are the
 * same, already validated, separator and key: nothing is trusted that was
 * not checked. The first key's gap starts at the object's '{' and is kept
 * apart (tmpl0), so a gap is only ever compared where one like it was seen
 * (a '{' gap after a value would accept a missing comma). A mismatch takes
 * the general path for that key and resyncs on a later template key (so an
 * optional key costs one miss). When more than a quarter of the keys of a
 * line miss, the template is dropped and learnt again from a later line,
 * waiting twice as long after each failure, so data without a stable key
 * order costs almost nothing extra. */

/* Whether the bytes at p are t's pattern. The compare reads 32 bytes
 * whatever the pattern's length, past the end of the line if need be (the
 * padding allows it); a pattern never holds the line's sentinel ('\n' is
 * refused, and no gap holds a NUL), so it cannot match across it. */
JS_HOT bool js_tmpl_hit(const js_tmpl_t *t, const uint8_t *p)
{
#if defined(__SSE2__)
    __m128i lo = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)p),
                                _mm_load_si128((const __m128i *)(const void *)t->pat));
    __m128i hi = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16)),
                                _mm_load_si128((const __m128i *)(const void *)(t->pat + 16)));
    uint32_t m = (uint32_t)_mm_movemask_epi8(lo) | (uint32_t)_mm_movemask_epi8(hi) << 16;
    return (m & t->mask) == t->mask;
#else
    return t->mask != 0 && memcmp(p, t->pat, t->n ? t->n : 1) == 0;
#endif
}

/* Set *t to the gap [g0, v) with column c; false when the gap cannot be a
 * pattern (longer than 32 bytes, or a '\n' in it: jscan_line's whitespace,
 * jscan_next's line end). */
static bool js_tmpl_set(js_tmpl_t *t, const uint8_t *g0, const uint8_t *v, int c)
{
    size_t n = (size_t)(v - g0);
    if (n > sizeof t->pat || memchr(g0, '\n', n))
        return false;
    memset(t->pat, 0, sizeof t->pat);
    memcpy(t->pat, g0, n);
    t->n = (uint8_t)n;
    t->mask = n == 32 ? UINT32_MAX : (1u << n) - 1;
    t->col = c;
    return true;
}

/* The first gap when it cannot be a pattern: one that never matches (its
 * NUL against the '{' at the object's start). */
static void js_tmpl_set_never(js_tmpl_t *t)
{
    memset(t, 0, sizeof *t);
    t->mask = 1;
    t->col = -1;
}

/* The first key of a line read the general way: gap [g0, v), column c.
 * Learning, it becomes the first gap; using the template, it replaces a
 * first gap that did not match (a miss). */
static void js_tmpl_first(jscan_t *s, const uint8_t *g0, const uint8_t *v, int c)
{
    if (s->tmpl_mode == JS_TMPL_WAIT)
        return;
    if (s->tmpl_mode == JS_TMPL_USE)
        s->line_misses++;
    if (!js_tmpl_set(&s->tmpl0, g0, v, c))
        js_tmpl_set_never(&s->tmpl0);
}

/* Insert the gap [g0, v) with column c at position i of the later keys. */
static void js_tmpl_insert(jscan_t *s, uint32_t i, const uint8_t *g0, const uint8_t *v, int c)
{
    js_tmpl_t t;
    if (s->ntmpl == JS_TMPL_MAX || !js_tmpl_set(&t, g0, v, c))
        return;
    memmove(&s->tmpl[i + 1], &s->tmpl[i], (s->ntmpl - i) * sizeof *s->tmpl);
    s->tmpl[i] = t;
    s->ntmpl++;
}

/* A later key read the general way: gap [g0, v), column c; ti is the
 * template position. When learning, append the key. When using the
 * template, return the position after the template key equal to it among
 * the next few (keys were missing), or insert it at ti (a key the template
 * lacks): an optional key costs one miss, and only on lines that deviate.
 * The look-ahead is bounded so that very wide lines (more keys than the
 * template holds) cost a bounded amount per miss. */
static uint32_t js_tmpl_miss(jscan_t *s, const uint8_t *g0, const uint8_t *v, int c, uint32_t ti)
{
    size_t n = (size_t)(v - g0);
    if (s->tmpl_mode == JS_TMPL_LEARN) {
        js_tmpl_insert(s, s->ntmpl, g0, v, c);
        return ti;
    }
    if (s->tmpl_mode != JS_TMPL_USE)
        return ti;
    s->line_misses++;
    for (uint32_t j = ti; j < s->ntmpl && j < ti + JS_TMPL_LOOKAHEAD; j++) {
        const js_tmpl_t *t = &s->tmpl[j];
        if (t->n == n && memcmp(t->pat, g0, n) == 0)
            return j + 1;
    }
    uint32_t before = s->ntmpl;
    js_tmpl_insert(s, ti, g0, v, c);
    return ti + (s->ntmpl - before);
}

/* Before an object line (the template's bookkeeping; rare changes out of
 * line). */
__attribute__((noinline)) static void js_tmpl_start_slow(jscan_t *s)
{
    if (s->tmpl_mode == JS_TMPL_WAIT && s->tmpl_wait > 0)
        s->tmpl_wait--;
    else if (s->tmpl_mode == JS_TMPL_WAIT)
        s->tmpl_mode = JS_TMPL_LEARN;
    if (s->tmpl_mode == JS_TMPL_LEARN) {
        if (!s->tmpl)
            s->tmpl = sp_xmalloc(JS_TMPL_MAX * sizeof *s->tmpl);
        js_tmpl_set_never(&s->tmpl0); /* (also what a learning line that failed left) */
        s->ntmpl = 0;
    }
}

static inline void js_tmpl_start(jscan_t *s)
{
    s->line_keys = 0;
    s->line_misses = 0;
    if (JS_UNLIKELY(s->tmpl_mode != JS_TMPL_USE))
        js_tmpl_start_slow(s);
}

/* After a valid object line: use what was learnt, or drop a template that
 * missed more than a quarter of the keys and wait twice as long as last
 * time before learning anew. */
__attribute__((noinline)) static void js_tmpl_update_slow(jscan_t *s)
{
    if (s->tmpl_mode == JS_TMPL_LEARN) {
        s->tmpl_mode = s->line_keys ? JS_TMPL_USE : JS_TMPL_LEARN;
    } else if (s->tmpl_mode == JS_TMPL_USE) {
        if (4 * s->line_misses > s->line_keys) {
            s->tmpl_mode = JS_TMPL_WAIT;
            s->ntmpl = 0;
            js_tmpl_set_never(&s->tmpl0);
            s->tmpl_wait = 1u << s->tmpl_backoff;
            if (s->tmpl_backoff < JS_TMPL_BACKOFF_MAX)
                s->tmpl_backoff++;
        } else if (s->line_misses == 0) {
            s->tmpl_backoff = 0;
        }
    }
}

static inline void js_tmpl_update(jscan_t *s)
{
    if (JS_LIKELY(s->tmpl_mode == JS_TMPL_USE && s->line_misses == 0))
        s->tmpl_backoff = 0;
    else
        js_tmpl_update_slow(s);
}

/* ---- the members of an object ----------------------------------------- */

enum { JS_OBJ_END = -2 }; /* js_member_slow found the object's '}' */

/* The general path for the member whose gap starts at p (the object's '{'
 * for the first member, else the end of the value before): the separator
 * or the '}' that ends the object, the key, the ':', and the template's
 * bookkeeping. Returns the value's first byte with *c the key's column (-1:
 * not wanted) and *ti the template position after the key; or the byte
 * after the '}' with *c = JS_OBJ_END; or NULL. */
__attribute__((noinline)) static const uint8_t *js_member_slow(jscan_t *s, js_parse_t *jp,
                                                                const uint8_t *p,
                                                                uint32_t ordinal, int *c,
                                                                uint32_t *ti)
{
    const uint8_t *g0 = p, *key;
    size_t klen;
    p = js_ws(jp, ordinal == 0 ? p + 1 : p);
    if (*p == '}') {
        *c = JS_OBJ_END;
        return p + 1;
    }
    if (ordinal > 0) {
        if (*p != ',')
            return js_fail_at(jp, p, "expected ',' or '}' in object");
        p = js_ws(jp, p + 1);
    }
    if (!(p = js_key_read(s, jp, p, &key, &klen)))
        return NULL;
    *c = js_key_find(s, key, klen);
    p = js_ws(jp, p);
    if (*p != ':')
        return js_fail_at(jp, p, "expected ':' after key");
    p = js_ws(jp, p + 1);
    if (ordinal == 0)
        js_tmpl_first(s, g0, p, *c);
    else if (s->tmpl_mode != JS_TMPL_WAIT)
        *ti = js_tmpl_miss(s, g0, p, *c, *ti);
    return p;
}

/* Scan the members of the object at p ('{'), filling the values; returns
 * the byte after its '}'. Each member is a template hit (gap and key in
 * one compare) or the general path; then its value, skipped or converted. */
JS_HOT const uint8_t *js_members(jscan_t *s, js_parse_t *jp, const uint8_t *p)
{
    bool use = s->tmpl_mode == JS_TMPL_USE;
    const js_tmpl_t *t = s->tmpl;                 /* the template key expected next */
    const js_tmpl_t *tend = t + (use ? s->ntmpl : 0);
    uint32_t ordinal = 0, ti = 0;
    int c;
    if (JS_LIKELY(use) && js_tmpl_hit(&s->tmpl0, p)) {
        c = s->tmpl0.col;
        p += s->tmpl0.n;
    } else {
        p = js_member_slow(s, jp, p, 0, &c, &ti);
        if (!p || c == JS_OBJ_END)
            return p;
    }
    for (;;) {
        if (JS_LIKELY(c < 0))
            p = js_skip_value(jp, p, 1);
        else
            p = js_value(s, jp, p, c, ordinal);
        if (JS_UNLIKELY(!p))
            return NULL;
        ordinal++;
        if (JS_LIKELY(t < tend) && js_tmpl_hit(t, p)) {
            c = t->col;
            p += t->n;
            t++;
        } else if (*p == '}' && t == tend) {
            /* the object ends right after the last key expected (what
             * js_member_slow would find, without its call) */
            s->line_keys = ordinal;
            return p + 1;
        } else {
            ti = (uint32_t)(t - s->tmpl);
            p = js_member_slow(s, jp, p, ordinal, &c, &ti);
            if (!p)
                return NULL;
            if (c == JS_OBJ_END) {
                s->line_keys = ordinal;
                return p;
            }
            t = s->tmpl + ti;
            tend = s->tmpl + (s->tmpl_mode == JS_TMPL_USE ? s->ntmpl : 0);
        }
    }
}

/* The status of a line that is not blank and does not start with '{'. */
__attribute__((noinline)) static void js_not_object(js_parse_t *jp, const uint8_t *p)
{
    const uint8_t *q = js_skip_value(jp, p, 0);
    if (q && js_at_end(jp, js_ws(jp, q)))
        js_fail(jp, p, "not a JSON object");
    else if (q)
        js_fail_at(jp, js_ws(jp, q), "trailing characters after the value");
}

/* Scan the line at jp->buf, either kind of input: the status, the row,
 * and for ROW and BLANK jp->line_end. */
JS_HOT jscan_status_t js_scan(jscan_t *s, js_parse_t *jp)
{
    jscan_row_t *r = &s->row;
    for (size_t c = 0; c < s->ncols; c++)
        s->values[c].type = SP_TYPE_NULL;
    s->scratch_used = 0;
    if (JS_UNLIKELY(s->nerrs)) {
        memset(s->err_seq, 0, s->ncols * sizeof *s->err_seq);
        s->nerrs = 0;
    }
    r->ntype_errors = 0;
    r->first_type_error = -1;
    r->error = NULL;
    r->error_offset = 0;

    const uint8_t *p = jp->buf;
    if (JS_UNLIKELY(*p != '{')) {
        p = js_ws(jp, p);
        if (js_at_end(jp, p)) {
            jp->line_end = p;
            return JSCAN_BLANK;
        }
        if (*p != '{') {
            js_not_object(jp, p);
            goto malformed;
        }
    }
    js_tmpl_start(s);
    p = js_members(s, jp, p);
    if (JS_UNLIKELY(!p))
        goto malformed;
    js_tmpl_update(s);
    if (JS_UNLIKELY(jp->nl_ends ? *p != '\n' : p != jp->end)) {
        p = js_ws(jp, p);
        if (!js_at_end(jp, p)) {
            js_fail_at(jp, p, "trailing characters after the object");
            goto malformed;
        }
    }
    jp->line_end = p;
    if (JS_UNLIKELY(s->nerrs)) {
        uint32_t best = UINT32_MAX;
        for (size_t c = 0; c < s->ncols; c++) {
            if (s->err_seq[c] && s->err_seq[c] < best) {
                best = s->err_seq[c];
                r->first_type_error = (int)c;
            }
        }
        r->ntype_errors = s->nerrs;
    }
    return JSCAN_ROW;

malformed:
    for (size_t c = 0; c < s->ncols; c++)
        s->values[c] = SP_VALUE_NULL;
    r->error = jp->err;
    r->error_offset = (size_t)(jp->err_at - jp->buf);
    return JSCAN_MALFORMED;
}

/* ---- instruction sets --------------------------------------------------
 *
 * js_scan and everything it inlines is compiled twice: for the baseline
 * (SSE2 on x86-64) and for AVX2 machines, where the same code gains the VEX
 * encodings and BMI's shifts and bit scans. One of them is chosen once,
 * before main, as is the loop for long strings. SPATE_JSCAN_ISA=sse2 in the
 * environment forces the baseline (for tests). */

static jscan_status_t js_scan_base(jscan_t *s, js_parse_t *jp)
{
    return js_scan(s, jp);
}

#if defined(JS_AVX2)
__attribute__((target("avx2,bmi,bmi2"))) static jscan_status_t js_scan_avx2(jscan_t *s,
                                                                          js_parse_t *jp)
{
    return js_scan(s, jp);
}
#endif

/* Set once before main by js_isa_init, read-only afterwards. */
static jscan_status_t (*js_scan_isa)(jscan_t *s, js_parse_t *jp) = js_scan_base;

__attribute__((constructor)) static void js_isa_init(void)
{
#if defined(JS_AVX2)
    const char *isa = getenv("SPATE_JSCAN_ISA");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
        __builtin_cpu_supports("bmi2") && !(isa && strcmp(isa, "sse2") == 0)) {
        js_str_stop_long = js_str_stop_avx2;
        js_scan_isa = js_scan_avx2;
    }
#endif
}

/* ---- public API ------------------------------------------------------- */

jscan_t *jscan_new(const char *const *names, const sp_type_t *types, size_t ncols)
{
    jscan_t *s = sp_xcalloc(1, sizeof *s);
    s->ncols = ncols;
    s->row.first_type_error = -1;
    js_tmpl_set_never(&s->tmpl0);
    if (ncols == 0)
        return s;
    s->cols = sp_xcalloc(ncols, sizeof *s->cols);
    s->values = sp_xcalloc(ncols, sizeof *s->values);
    s->err_seq = sp_xcalloc(ncols, sizeof *s->err_seq);
    s->slot_bits = 2;
    while ((1u << s->slot_bits) < 4 * ncols)
        s->slot_bits++;
    s->slots = sp_xmalloc(sizeof *s->slots << s->slot_bits);
    for (size_t i = 0; i < (1u << s->slot_bits); i++)
        s->slots[i] = (js_slot_t){.col = -1};
    unsigned mask = (1u << s->slot_bits) - 1;
    for (size_t c = 0; c < ncols; c++) {
        js_col_t *col = &s->cols[c];
        size_t len = strlen(names[c]);
        col->name = sp_xmalloc(len + 8); /* 8 readable bytes for js_prefix */
        memset(col->name, 0, len + 8);
        memcpy(col->name, names[c], len);
        col->len = (uint32_t)len;
        col->type = types[c];
        col->next_same = -1;
        s->len_mask |= js_len_bit(len);
        uint64_t prefix = js_prefix((const uint8_t *)col->name, len);
        for (unsigned i = js_hash(prefix, len, s->slot_bits);; i = (i + 1) & mask) {
            js_slot_t *e = &s->slots[i];
            if (e->col < 0) {
                *e = (js_slot_t){.prefix = prefix, .len = (uint32_t)len, .col = (int32_t)c};
                break;
            }
            if (e->len == len && memcmp(s->cols[e->col].name, col->name, len) == 0) {
                int last = e->col; /* the same key twice: chain the columns */
                while (s->cols[last].next_same >= 0)
                    last = s->cols[last].next_same;
                s->cols[last].next_same = (int)c;
                break;
            }
        }
    }
    s->row.values = s->values;
    return s;
}

void jscan_destroy(jscan_t **sp)
{
    if (!sp || !*sp)
        return;
    jscan_t *s = *sp;
    for (size_t c = 0; c < s->ncols; c++)
        free(s->cols[c].name);
    free(s->cols);
    free(s->values);
    free(s->err_seq);
    free(s->slots);
    free(s->buf);
    free(s->scratch);
    free(s->tmpl);
    if (s->c_locale)
        freelocale(s->c_locale);
    free(s);
    *sp = NULL;
}

jscan_status_t jscan_line(jscan_t *s, const char *line, size_t len, const jscan_row_t **row)
{
    js_parse_t jp;
    js_load(s, line, len, &jp);
    *row = &s->row;
    return js_scan_isa(s, &jp);
}

jscan_status_t jscan_next(jscan_t *s, char *buf, size_t avail, bool final, size_t *len,
                          const jscan_row_t **row)
{
    *row = &s->row;
    jscan_status_t st = JSCAN_MORE;
    const uint8_t *end = (const uint8_t *)buf + avail;
    if (JS_LIKELY(avail > 0)) {
        buf[avail] = '\n';
        js_parse_t jp = {.buf = (const uint8_t *)buf, .end = end, .user = buf, .nl_ends = true};
        st = js_scan_isa(s, &jp);
        if (JS_UNLIKELY(!jp.line_end)) /* (the scan stopped short of a malformed line's end) */
            jp.line_end = memchr(buf, '\n', avail + 1);
        *len = (size_t)(jp.line_end - jp.buf);
        if (JS_LIKELY(jp.line_end < end || final))
            return st;
    }
    /* No whole line: nothing consumed, an empty row. */
    *len = 0;
    for (size_t c = 0; c < s->ncols; c++)
        s->values[c] = SP_VALUE_NULL;
    s->row.ntype_errors = 0;
    s->row.first_type_error = -1;
    s->row.error = NULL;
    s->row.error_offset = 0;
    return JSCAN_MORE;
}

bool jscan_valid(const char *doc, size_t len)
{
    jscan_t s = {.ncols = 0};
    js_parse_t jp;
    const uint8_t *p = js_load(&s, doc, len, &jp);
    bool ok = false;
    p = js_ws(&jp, p);
    if (!js_at_end(&jp, p)) {
        p = js_skip_value(&jp, p, 0);
        ok = p && js_at_end(&jp, js_ws(&jp, p));
    }
    free(s.buf);
    return ok;
}

/* Second pass of jscan_fields over a line known to be a valid object: the
 * key and kind of every top-level member, in order. */
static void js_visit(jscan_t *s, js_parse_t *jp, jscan_field_fn fn, void *ctx)
{
    const uint8_t *p = js_ws(jp, js_ws(jp, jp->buf) + 1);
    while (*p == '"') {
        const uint8_t *key;
        size_t klen;
        js_tok_t t = {.kind = JSCAN_KIND_NULL};
        p = js_key_read(s, jp, p, &key, &klen);
        p = js_ws(jp, js_ws(jp, p) + 1); /* ':' */
        p = js_tok_read(s, jp, p, false, &t);
        if (t.kind == JSCAN_KIND_INT) {
            int64_t i;
            if (!js_num_int64(&t.num, &i))
                t.kind = JSCAN_KIND_FLOAT;
        }
        fn(ctx, (const char *)key, klen, t.kind);
        p = js_ws(jp, p);
        p = js_ws(jp, p + (*p == ',')); /* ',' or '}' */
    }
}

jscan_status_t jscan_fields(const char *line, size_t len, jscan_field_fn fn, void *ctx,
                            const char **error)
{
    jscan_t *s = jscan_new(NULL, NULL, 0);
    const jscan_row_t *row;
    jscan_status_t st = jscan_line(s, line, len, &row);
    if (error)
        *error = row->error;
    if (st == JSCAN_ROW) {
        js_parse_t jp = {.buf = s->buf, .end = s->buf + len, .user = line};
        s->scratch_used = 0;
        js_visit(s, &jp, fn, ctx);
    }
    jscan_destroy(&s);
    return st;
}
