/* scripts/src/gen_activity.c -- writes the phone-sensor "activity data" as
 * JSON-lines files for demos, tests and benchmarks: deterministic for a seed
 * (its own PRNG and integer-only number formatting, so the same bytes on
 * every machine), fast (hand-formatted numbers, big write buffers), and with
 * --dirty a reproducible sprinkling of damaged and unusual lines.
 * Owns nothing but its output directory; never reads what it wrote.
 *
 * Each file is written as DIR/.NAME.tmp and renamed to DIR/NAME, so a
 * directory reader never sees half a file; each file gets an mtime at least
 * 1 ms later than the previous one, so "oldest first" is well defined.
 *
 * A clean line, keys always in this order ("gt" absent for a null share):
 *
 *   {"Arrival_Time":1424686735090,"Creation_Time":1424686733090638193,
 *    "Device":"nexus4_1","Index":35,"Model":"nexus4","User":"g",
 *    "gt":"stand","x":-5.958191,"y":0.6880646,"z":8.135345}
 *
 *   Arrival_Time   ms epoch, 13 digits, never decreasing across the files
 *   Creation_Time  ns epoch, 19 digits, 0.5 ms to 2.5 s before arrival
 *   Device         nexus4_1 nexus4_2 s3_1 s3_2 s3mini_1 s3mini_2
 *                  samsungold_1 samsungold_2; Model is its prefix
 *   Index          per-device counter from 0, +1 per row of that device
 *   User           a..i, one user per session of 20..300 rows
 *   gt             stand sit walk stairsup stairsdown bike (one per session)
 *   x, y, z        as Java's Float.toString prints: 7 (or 8) significant
 *                  digits, trailing zeros dropped but at least one decimal
 *                  ("12.0"); below 1e-3 in magnitude "1.2345678E-4"
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sp_err.h"
#include "sp_util.h"

#define GEN_DEFAULT_ROWS 10000
#define GEN_DEFAULT_START_MS INT64_C(1424686735090)
#define GEN_FILE_TARGET (UINT64_C(64) << 20) /* --bytes without --files */
#define GEN_BUF_SIZE (8u << 20)
#define GEN_LINE_MAX 4096 /* no line we write comes near this */

/* ---- PRNG: xoshiro256** seeded by splitmix64 ---------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) by multiply-high: no division, same on every machine. */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static inline int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* True with probability `threshold / 2^64` (see prob_threshold). */
static inline bool rng_chance(rng_t *r, uint64_t threshold) { return rng_next(r) < threshold; }

static uint64_t prob_threshold(double p)
{
    if (!(p > 0))
        return 0;
    if (p >= 1)
        return UINT64_MAX;
    return (uint64_t)(p * 18446744073709551616.0);
}

/* ---- number formatting ------------------------------------------------- */

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v at p; returns the length. */
static size_t fmt_u64(char *p, uint64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        memcpy(q, digit_pairs + 2 * d, 2);
    }
    if (v >= 10) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * v, 2);
    } else {
        *--q = (char)('0' + v);
    }
    size_t n = (size_t)(e - q);
    memcpy(p, q, n);
    return n;
}

static size_t fmt_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p = '-';
        return 1 + fmt_u64(p + 1, (uint64_t)0 - (uint64_t)v);
    }
    return fmt_u64(p, (uint64_t)v);
}

static const uint64_t pow10_u64[20] = {
    UINT64_C(1), UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000),
    UINT64_C(100000), UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000),
    UINT64_C(1000000000), UINT64_C(10000000000), UINT64_C(100000000000),
    UINT64_C(1000000000000), UINT64_C(10000000000000), UINT64_C(100000000000000),
    UINT64_C(1000000000000000), UINT64_C(10000000000000000),
    UINT64_C(100000000000000000), UINT64_C(1000000000000000000),
    UINT64_C(10000000000000000000),
};

static int count_digits(uint64_t v)
{
    int n = 1;
    while (n < 20 && v >= pow10_u64[n])
        n++;
    return n;
}

/* The value pico / 10^12 rounded (half up) to `sig` significant digits and
 * printed as Java's Float.toString prints a float: decimal notation for
 * 1e-3 <= |v| < 1e7 with at least one digit after the point, otherwise
 * "d.dddE-n". Integer arithmetic only. Returns the length (< 32). */
static size_t fmt_sensor(char *out, int64_t pico, int sig)
{
    char *p = out;
    if (pico == 0) {
        memcpy(p, "0.0", 3);
        return 3;
    }
    uint64_t a = pico < 0 ? (uint64_t)0 - (uint64_t)pico : (uint64_t)pico;
    if (pico < 0)
        *p++ = '-';
    int n = count_digits(a);
    uint64_t q = a;
    if (n > sig) {
        uint64_t div = pow10_u64[n - sig];
        q = a / div;
        if ((a % div) * 2 >= div)
            q++;
        if (q == pow10_u64[sig]) { /* 9999999.5 rounded up a digit */
            q = pow10_u64[sig - 1];
            n++;
        }
    } else {
        sig = n;
    }
    while (sig > 1 && q % 10 == 0) { /* drop trailing zeros */
        q /= 10;
        sig--;
    }
    char d[24];
    size_t nd = fmt_u64(d, q);  /* == sig digits */
    int e10 = n - 1 - 12;       /* exponent of the leading digit */
    if (e10 >= -3 && e10 < 7) {
        if (e10 >= 0) {
            size_t ip = (size_t)e10 + 1; /* digits before the point */
            for (size_t i = 0; i < ip; i++)
                *p++ = i < nd ? d[i] : '0';
            *p++ = '.';
            if (nd > ip) {
                memcpy(p, d + ip, nd - ip);
                p += nd - ip;
            } else {
                *p++ = '0';
            }
        } else {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -e10 - 1; i++)
                *p++ = '0';
            memcpy(p, d, nd);
            p += nd;
        }
    } else {
        *p++ = d[0];
        *p++ = '.';
        if (nd > 1) {
            memcpy(p, d + 1, nd - 1);
            p += nd - 1;
        } else {
            *p++ = '0';
        }
        *p++ = 'E';
        p += fmt_i64(p, e10);
    }
    return (size_t)(p - out);
}

/* ---- the data model ------------------------------------------------------ */

static const char *const DEVICES[] = {"nexus4_1",     "nexus4_2",    "s3_1",
                                      "s3_2",         "s3mini_1",    "s3mini_2",
                                      "samsungold_1", "samsungold_2"};
static const char *const MODELS[] = {"nexus4", "nexus4", "s3",         "s3",
                                     "s3mini", "s3mini", "samsungold", "samsungold"};
#define NDEVICES 8
static const char *const ACTIVITIES[] = {"stand", "sit", "walk", "stairsup", "stairsdown", "bike"};
#define NACTIVITIES 6
#define NUSERS 9

/* Mean acceleration (milli m/s^2) per axis and noise amplitude, per activity;
 * the last entry is for rows without a label. */
static const int32_t SENSOR_MEAN[NACTIVITIES + 1][3] = {
    {-5958, 688, 8135}, {-1200, 3100, 9200}, {-8500, 1000, 3000}, {-8900, 1200, 2500},
    {-9200, 800, 2200}, {-3000, 4500, 7500}, {-4000, 2000, 6000},
};
static const int32_t SENSOR_NOISE[NACTIVITIES + 1] = {150, 100, 3000, 3500, 4000, 2000, 2500};

typedef struct row {
    int64_t arrival_ms;
    int64_t creation_ns;
    int device;
    int64_t index;
    int user;
    int gt; /* 0..NACTIVITIES-1, or -1: no "gt" key */
    char xyz[3][32];
    size_t xyz_len[3];
} row_t;

typedef struct gen_stats {
    uint64_t files, lines, rows, null_gt, malformed, blank, bytes;
} gen_stats_t;

typedef struct gen {
    rng_t rng;
    uint64_t null_threshold;
    bool dirty;
    int64_t arrival_ms;
    int64_t index[NDEVICES];
    int session_left, session_user, session_gt;
    bool started; /* the first row is at --start-time exactly */
    gen_stats_t st;
} gen_t;

static int64_t sensor_value(gen_t *g, int gt_slot, int axis)
{
    rng_t *r = &g->rng;
    uint64_t u = rng_below(r, 1000);
    if (u < 5) /* now and then a tiny reading: Java prints it as 1.234E-4 */
        return (rng_below(r, 2) ? -1 : 1) * rng_range(r, INT64_C(1000000), INT64_C(999999999));
    if (u == 5)
        return 0;
    int64_t mean = (int64_t)SENSOR_MEAN[gt_slot][axis] * 1000000000;
    int64_t amp = (int64_t)SENSOR_NOISE[gt_slot] * 1000000000;
    int64_t noise = 0;
    for (int i = 0; i < 3; i++) /* a sum of uniforms: roughly bell-shaped */
        noise += rng_range(r, -amp, amp);
    return mean + noise / 2;
}

static void gen_row(gen_t *g, row_t *row)
{
    rng_t *r = &g->rng;
    if (g->session_left <= 0) {
        g->session_left = (int)rng_range(r, 20, 300);
        g->session_user = (int)rng_below(r, NUSERS);
        g->session_gt = (int)rng_below(r, NACTIVITIES);
        int64_t pause = rng_range(r, 100, 5000); /* between sessions */
        if (g->started)
            g->arrival_ms += pause;
    }
    g->session_left--;
    int64_t step = (int64_t)rng_below(r, 3);
    if (g->started)
        g->arrival_ms += step;
    g->started = true;
    row->arrival_ms = g->arrival_ms;
    row->creation_ns = g->arrival_ms * 1000000 - rng_range(r, 500000, 2500000000);
    row->device = (int)rng_below(r, NDEVICES);
    row->index = g->index[row->device]++;
    row->user = g->session_user;
    row->gt = rng_chance(r, g->null_threshold) ? -1 : g->session_gt;
    int slot = row->gt < 0 ? NACTIVITIES : row->gt;
    for (int a = 0; a < 3; a++) {
        int sig = rng_below(r, 4) == 0 ? 8 : 7;
        row->xyz_len[a] = fmt_sensor(row->xyz[a], sensor_value(g, slot, a), sig);
    }
}

#define PUT_LIT(p, s)                                                                   \
    do {                                                                                \
        memcpy((p), (s), sizeof(s) - 1);                                                \
        (p) += sizeof(s) - 1;                                                           \
    } while (0)

static inline char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The clean line with its '\n' at p (the hot path); returns the end. */
static char *put_clean_row(char *p, const row_t *row)
{
    PUT_LIT(p, "{\"Arrival_Time\":");
    p += fmt_i64(p, row->arrival_ms);
    PUT_LIT(p, ",\"Creation_Time\":");
    p += fmt_i64(p, row->creation_ns);
    PUT_LIT(p, ",\"Device\":\"");
    p = put_str(p, DEVICES[row->device]);
    PUT_LIT(p, "\",\"Index\":");
    p += fmt_i64(p, row->index);
    PUT_LIT(p, ",\"Model\":\"");
    p = put_str(p, MODELS[row->device]);
    PUT_LIT(p, "\",\"User\":\"");
    *p++ = (char)('a' + row->user);
    if (row->gt >= 0) {
        PUT_LIT(p, "\",\"gt\":\"");
        p = put_str(p, ACTIVITIES[row->gt]);
    }
    PUT_LIT(p, "\",\"x\":");
    memcpy(p, row->xyz[0], row->xyz_len[0]);
    p += row->xyz_len[0];
    PUT_LIT(p, ",\"y\":");
    memcpy(p, row->xyz[1], row->xyz_len[1]);
    p += row->xyz_len[1];
    PUT_LIT(p, ",\"z\":");
    memcpy(p, row->xyz[2], row->xyz_len[2]);
    p += row->xyz_len[2];
    PUT_LIT(p, "}\n");
    return p;
}

/* ---- --dirty: unusual and damaged lines -----------------------------------
 * A dirty line is built from the row's fields as (raw key, raw JSON value)
 * pairs so one part can be escaped, retyped, moved or broken. Every kind
 * below knows whether its line is a row, malformed or blank, and what the
 * row's gt is, so the summary's counts are exact. */

typedef enum dirty_kind {
    DIRTY_NONE = 0,
    /* rows, read as usual */
    DIRTY_ESCAPED,     /* "\u0067t":"st\u0061nd" -- must count as gt = stand */
    DIRTY_CRLF,        /* the line ends in \r\n */
    DIRTY_WRONG_TYPE,  /* "Index":"abc", "x":"oops", "User":7 ... */
    DIRTY_GT_NULL,     /* "gt":null written out */
    DIRTY_DUP_KEY,     /* "gt" twice: the last one wins */
    DIRTY_EXTRA,       /* spaces, other key order, unknown keys, non-ASCII text */
    /* not rows */
    DIRTY_BLANK,       /* "", "  ", "\t", " \r" */
    DIRTY_TRUNCATED,   /* the line cut short */
    DIRTY_BAD_TOKEN,   /* NaN, 1., 035, +1, 'single', trailing comma, raw tab ... */
    DIRTY_BAD_QUOTE,   /* a quote missing or doubled */
    DIRTY_BAD_UTF8,    /* invalid UTF-8 bytes in a string */
    DIRTY_NUL,         /* a NUL byte in the line */
    DIRTY_NOT_OBJECT,  /* valid JSON that is not an object: [1,2], "x", 42 */
    DIRTY_NKINDS,
} dirty_kind_t;

#define DIRTY_SHARE (1.0 / 25) /* of the lines, spread evenly over the kinds */

typedef struct field {
    char key[48]; /* raw text between the quotes */
    char val[96]; /* raw JSON text */
} field_t;

typedef struct line_fields {
    field_t f[16];
    int n;
} line_fields_t;

static int lf_add(line_fields_t *lf, const char *key, const char *val)
{
    field_t *f = &lf->f[lf->n];
    snprintf(f->key, sizeof f->key, "%s", key);
    snprintf(f->val, sizeof f->val, "%s", val);
    return lf->n++;
}

static int lf_find(line_fields_t *lf, const char *key)
{
    for (int i = 0; i < lf->n; i++)
        if (strcmp(lf->f[i].key, key) == 0)
            return i;
    return -1;
}

static void lf_from_row(line_fields_t *lf, const row_t *row, bool with_gt)
{
    char v[96];
    lf->n = 0;
    snprintf(v, sizeof v, "%" PRId64, row->arrival_ms);
    lf_add(lf, "Arrival_Time", v);
    snprintf(v, sizeof v, "%" PRId64, row->creation_ns);
    lf_add(lf, "Creation_Time", v);
    snprintf(v, sizeof v, "\"%s\"", DEVICES[row->device]);
    lf_add(lf, "Device", v);
    snprintf(v, sizeof v, "%" PRId64, row->index);
    lf_add(lf, "Index", v);
    snprintf(v, sizeof v, "\"%s\"", MODELS[row->device]);
    lf_add(lf, "Model", v);
    snprintf(v, sizeof v, "\"%c\"", 'a' + row->user);
    lf_add(lf, "User", v);
    if (with_gt && row->gt >= 0) {
        snprintf(v, sizeof v, "\"%s\"", ACTIVITIES[row->gt]);
        lf_add(lf, "gt", v);
    }
    for (int a = 0; a < 3; a++) {
        memcpy(v, row->xyz[a], row->xyz_len[a]);
        v[row->xyz_len[a]] = '\0';
        lf_add(lf, (const char *[]){"x", "y", "z"}[a], v);
    }
}

/* Join the fields into an object at p (no newline); `ws` goes around every
 * token when not empty. Returns the end. */
static char *lf_put(char *p, const line_fields_t *lf, const char *ws)
{
    *p++ = '{';
    for (int i = 0; i < lf->n; i++) {
        if (i > 0) {
            p = put_str(p, ws);
            *p++ = ',';
        }
        p = put_str(p, ws);
        *p++ = '"';
        p = put_str(p, lf->f[i].key);
        *p++ = '"';
        p = put_str(p, ws);
        *p++ = ':';
        p = put_str(p, ws);
        p = put_str(p, lf->f[i].val);
    }
    p = put_str(p, ws);
    *p++ = '}';
    return p;
}

/* Insert ins at position `at` of the string s (room for cap bytes). */
static void insert_at(char *s, size_t cap, size_t at, const char *ins)
{
    size_t len = strlen(s), n = strlen(ins);
    assert(at <= len && len + n < cap);
    memmove(s + at + n, s + at, len - at + 1);
    memcpy(s + at, ins, n);
}

/* Replace the character at position `at` of s by its \u escape, with hex
 * digits in upper or lower case. */
static void escape_char_at(char *s, size_t cap, size_t at, bool upper)
{
    char esc[8];
    snprintf(esc, sizeof esc, upper ? "\\u%04X" : "\\u%04x", (unsigned char)s[at]);
    memmove(s + at, s + at + 1, strlen(s + at)); /* drop the character */
    insert_at(s, cap, at, esc);
}

static int pick(rng_t *r, int n) { return (int)rng_below(r, (uint64_t)n); }

/* Write the line of `kind` for row at p (with its line ending) and classify
 * it: returns 'r' (a row; *gt_null says whether its gt is NULL), 'm'
 * (malformed) or 'b' (blank). */
static char write_dirty(gen_t *g, dirty_kind_t kind, const row_t *row, char **pp, bool *gt_null)
{
    rng_t *r = &g->rng;
    char *p = *pp, *start = p;
    line_fields_t lf;
    char cls = 'r';
    *gt_null = row->gt < 0;
    lf_from_row(&lf, row, true);
    int gi = lf_find(&lf, "gt");

    switch (kind) {
    case DIRTY_NONE:
    case DIRTY_CRLF:
        p = lf_put(p, &lf, "");
        if (kind == DIRTY_CRLF)
            *p++ = '\r';
        break;
    case DIRTY_ESCAPED: {
        if (gi >= 0) { /* one letter of the value, maybe the key too */
            field_t *f = &lf.f[gi];
            escape_char_at(f->val, sizeof f->val, 1 + rng_below(r, strlen(f->val) - 2),
                           rng_below(r, 2));
            if (rng_below(r, 2))
                escape_char_at(f->key, sizeof f->key, rng_below(r, 2), rng_below(r, 2));
        }
        int other = lf_find(&lf, (const char *[]){"Device", "User", "x", "Index"}[pick(r, 4)]);
        field_t *f = &lf.f[other];
        escape_char_at(f->key, sizeof f->key, rng_below(r, strlen(f->key)), rng_below(r, 2));
        if (f->val[0] == '"') /* Device "nexus4\u005f1", User "\u0061" */
            escape_char_at(f->val, sizeof f->val, 1 + rng_below(r, strlen(f->val) - 2), false);
        lf_add(&lf, "n\\u00f6te", "\"tab\\there \\\"quoted\\\" \\\\ \\/ \\b\\f\\n\\r \\ud83d\\ude00\"");
        p = lf_put(p, &lf, "");
        break;
    }
    case DIRTY_WRONG_TYPE: {
        static const char *const variants[][2] = {
            {"Index", "\"abc\""}, {"x", "\"oops\""}, {"y", "true"}, {"z", "{\"v\":1}"},
            {"z", "[1,2]"}, {"Arrival_Time", "1.424686735090E12"}, {"Index", "35.0"},
            {"Creation_Time", "\"1424686733090638193\""}, {"Index", "99999999999999999999"},
            {"User", "7"}, {"Device", "true"}, {"Model", "[\"nexus4\",1]"}, {"gt", "12"},
        };
        int v = pick(r, (int)(sizeof variants / sizeof variants[0]));
        int at = lf_find(&lf, variants[v][0]);
        if (at < 0) /* gt absent: this row has a null gt, and now a numeric one */
            at = lf_add(&lf, "gt", "0");
        snprintf(lf.f[at].val, sizeof lf.f[at].val, "%s", variants[v][1]);
        if (strcmp(variants[v][0], "gt") == 0)
            *gt_null = false; /* a STRING column reads the number as "12" */
        p = lf_put(p, &lf, "");
        break;
    }
    case DIRTY_GT_NULL:
        if (gi >= 0)
            snprintf(lf.f[gi].val, sizeof lf.f[gi].val, "null");
        else
            lf_add(&lf, "gt", "null");
        *gt_null = true;
        p = lf_put(p, &lf, "");
        break;
    case DIRTY_DUP_KEY: {
        /* A decoy gt first; the row's own gt (or null) last, which wins. */
        line_fields_t d = {.n = 0};
        char decoy[32];
        snprintf(decoy, sizeof decoy, "\"%s\"", ACTIVITIES[pick(r, NACTIVITIES)]);
        lf_add(&d, "gt", decoy);
        for (int i = 0; i < lf.n; i++)
            if (i != gi)
                d.f[d.n++] = lf.f[i];
        lf_add(&d, "gt", gi >= 0 ? lf.f[gi].val : "null");
        p = lf_put(p, &d, "");
        break;
    }
    case DIRTY_EXTRA: {
        static const char *const ws[] = {" ", "  ", "\t", " \t "};
        for (int i = lf.n - 1; i > 0; i--) { /* shuffle the keys */
            int j = pick(r, i + 1);
            field_t t = lf.f[i];
            lf.f[i] = lf.f[j];
            lf.f[j] = t;
        }
        lf_add(&lf, "note", "\"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80 }{\\\"\"");
        lf_add(&lf, "nested", "{\"a\":[1,2.5e-3,{\"b\":null}],\"c\":\"]\",\"d\":{}}");
        lf_add(&lf, "ok", pick(r, 2) ? "true" : "false");
        p = lf_put(p, &lf, ws[pick(r, 4)]);
        break;
    }
    case DIRTY_BLANK: {
        static const char *const blanks[] = {"", " ", "\t", "   \t ", "\r", " \r"};
        p = put_str(p, blanks[pick(r, 6)]);
        cls = 'b';
        break;
    }
    case DIRTY_TRUNCATED: {
        char *end = lf_put(p, &lf, "");
        p += 1 + rng_below(r, (uint64_t)(end - p) - 2); /* keeps '{', drops the last '}' */
        cls = 'm';
        break;
    }
    case DIRTY_BAD_TOKEN: {
        field_t *x = &lf.f[lf_find(&lf, "x")];
        field_t *idx = &lf.f[lf_find(&lf, "Index")];
        field_t *dev = &lf.f[lf_find(&lf, "Device")];
        const char *after = "";
        switch (pick(r, 13)) {
        case 0: insert_at(x->val, sizeof x->val, strlen(x->val), ".5"); break; /* 1.5.5 */
        case 1: snprintf(x->val, sizeof x->val, "NaN"); break;
        case 2: snprintf(x->val, sizeof x->val, "nan"); break;
        case 3: snprintf(x->val, sizeof x->val, "-Infinity"); break;
        case 4: insert_at(idx->val, sizeof idx->val, 0, "0"); break; /* 035 */
        case 5: insert_at(x->val, sizeof x->val, 0, "+"); break;
        case 6: strchr(x->val, '.')[1] = '\0'; break;                  /* 8. */
        case 7: snprintf(x->val, sizeof x->val, "0x1F"); break;
        case 8: snprintf(x->val, sizeof x->val, "'x'"); break;
        case 9: snprintf(x->val, sizeof x->val, "tru"); break;
        case 10: insert_at(dev->val, sizeof dev->val, 3, "\t"); break; /* raw tab in a string */
        case 11: after = ",}"; break;                                  /* trailing comma */
        default: after = (const char *[]){"}", " x", "{}", ","}[pick(r, 4)]; break;
        }
        p = lf_put(p, &lf, "");
        if (after[0] == ',' && after[1] == '}')
            p--; /* replace the '}' */
        p = put_str(p, after);
        cls = 'm';
        break;
    }
    case DIRTY_BAD_QUOTE: {
        field_t *dev = &lf.f[lf_find(&lf, "Device")];
        int v = pick(r, 3);
        if (v == 0)
            dev->val[strlen(dev->val) - 1] = '\0'; /* "nexus4_1,"Index":... */
        else if (v == 1)
            insert_at(dev->val, sizeof dev->val, 0, "\""); /* ""nexus4_1" */
        p = lf_put(p, &lf, "");
        if (v == 2) { /* {Arrival_Time":... */
            memmove(start + 1, start + 2, (size_t)(p - start) - 2);
            p--;
        }
        cls = 'm';
        break;
    }
    case DIRTY_BAD_UTF8: {
        static const char *const bad[] = {
            "\xff", "\xc3\x28", "\xed\xa0\x80", "\xc0\xaf", "\xf5\x80\x80\x80",
            "\x80", "\xe2\x82", "\xf0\x9f\x98",
        };
        int at = gi >= 0 ? gi : lf_find(&lf, "Device");
        field_t *f = &lf.f[at];
        insert_at(f->val, sizeof f->val, strlen(f->val) - 1, bad[pick(r, 8)]);
        p = lf_put(p, &lf, "");
        cls = 'm';
        break;
    }
    case DIRTY_NUL: {
        char *end = lf_put(p, &lf, "");
        size_t len = (size_t)(end - p);
        size_t at = rng_below(r, len + 1); /* anywhere, even before '{' or after '}' */
        memmove(p + at + 1, p + at, len - at);
        p[at] = '\0';
        p = end + 1;
        cls = 'm';
        break;
    }
    case DIRTY_NOT_OBJECT: {
        static const char *const docs[] = {"[1,2,3]", "\"stand\"", "42", "null", "true", "[]"};
        int v = pick(r, 7);
        if (v < 6) {
            p = put_str(p, docs[v]);
        } else { /* the row inside an array */
            *p++ = '[';
            p = lf_put(p, &lf, "");
            *p++ = ']';
        }
        cls = 'm';
        break;
    }
    case DIRTY_NKINDS:
        break;
    }
    *p++ = '\n';
    *pp = p;
    return cls;
}

/* ---- files ---------------------------------------------------------------- */

typedef struct gen_opts {
    const char *out_dir;
    const char *prefix;
    uint64_t files;
    bool files_set;
    uint64_t rows_per_file;
    bool rows_set;
    uint64_t total_bytes; /* 0: by rows */
    uint64_t seed;
    double null_share;
    int64_t start_ms;
    uint64_t interval_ms;
    bool dirty;
} gen_opts_t;

/* A file being written: buf holds what is not yet written (the last line
 * always stays in it until the end, so its '\n' can still be dropped). */
typedef struct out_file {
    int fd;
    char *buf;
    size_t len;
    uint64_t flushed;
    const char *tmp_path;
} out_file_t;

static int out_flush(out_file_t *f, sp_err_t *err)
{
    int rc = sp_write_all(f->fd, f->buf, f->len);
    if (rc != 0)
        return sp_err_set(err, SP_EIO, "write %s: %s", f->tmp_path, strerror(-rc));
    f->flushed += f->len;
    f->len = 0;
    return 0;
}

static int mkdir_p(const char *dir, sp_err_t *err)
{
    char *path = sp_xstrdup(dir);
    for (char *s = path + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                free(path);
                return sp_err_set(err, SP_EIO, "cannot create directory %s: %s", dir,
                                  strerror(e));
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return sp_err_set(err, SP_EIO, "%s is not a directory", dir);
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static dirty_kind_t pick_kind(gen_t *g, uint64_t dirty_threshold)
{
    if (!g->dirty || !rng_chance(&g->rng, dirty_threshold))
        return DIRTY_NONE;
    return (dirty_kind_t)(1 + rng_below(&g->rng, DIRTY_NKINDS - 1));
}

/* One line for the next row slot into f; returns its kind. */
static dirty_kind_t gen_line(gen_t *g, out_file_t *f, dirty_kind_t kind)
{
    row_t row;
    char *p = f->buf + f->len;
    if (kind == DIRTY_NONE) {
        gen_row(g, &row);
        p = put_clean_row(p, &row);
        g->st.rows++;
        g->st.null_gt += row.gt < 0;
    } else {
        bool gt_null = false;
        if (kind != DIRTY_BLANK)
            gen_row(g, &row);
        else
            memset(&row, 0, sizeof row);
        char cls = write_dirty(g, kind, &row, &p, &gt_null);
        if (cls == 'r') {
            g->st.rows++;
            g->st.null_gt += gt_null;
        } else if (cls == 'm') {
            g->st.malformed++;
        } else {
            g->st.blank++;
        }
    }
    g->st.lines++;
    f->len = (size_t)(p - f->buf);
    return kind;
}

/* Write file number i (rows or bytes as opts say) by a dot-named temporary
 * and rename; its mtime is set to *mtime_ms (advanced to stay increasing). */
static int gen_file(gen_t *g, const gen_opts_t *o, uint64_t i, uint64_t byte_goal, char *buf,
                    int64_t *mtime_ms, sp_err_t *err)
{
    char *name = sp_xasprintf("%s%05" PRIu64 ".json", o->prefix, i);
    char *tmp = sp_xasprintf("%s/.%s.tmp", o->out_dir, name);
    char *dst = sp_xasprintf("%s/%s", o->out_dir, name);
    int rc = 0;
    out_file_t f = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                    .buf = buf, .len = 0, .flushed = 0, .tmp_path = tmp};
    if (f.fd < 0) {
        rc = sp_err_set(err, SP_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* In --dirty mode odd files end without a final newline (on a clean row). */
    bool no_final_newline = o->dirty && (i % 2 == 1);
    uint64_t dirty_threshold = prob_threshold(DIRTY_SHARE);
    dirty_kind_t last = DIRTY_NONE;
    uint64_t slot;
    for (slot = 0;; slot++) {
        if (o->total_bytes ? (slot > 0 && g->st.bytes + f.flushed + f.len >= byte_goal)
                           : slot >= o->rows_per_file)
            break;
        if (f.len + GEN_LINE_MAX > GEN_BUF_SIZE && (rc = out_flush(&f, err)) != 0)
            goto out;
        dirty_kind_t kind = pick_kind(g, dirty_threshold);
        if (no_final_newline && !o->total_bytes && slot + 1 == o->rows_per_file)
            kind = DIRTY_NONE;
        last = gen_line(g, &f, kind);
    }
    if (no_final_newline && slot > 0) { /* (--rows-per-file 0: an empty file) */
        if (last != DIRTY_NONE) {
            if (f.len + GEN_LINE_MAX > GEN_BUF_SIZE && (rc = out_flush(&f, err)) != 0)
                goto out;
            gen_line(g, &f, DIRTY_NONE);
        }
        f.len--; /* the last line is still in the buffer: drop its '\n' */
    }
    uint64_t file_bytes = f.flushed + f.len;
    if ((rc = out_flush(&f, err)) != 0)
        goto out;

    int64_t now = sp_wall_ms();
    *mtime_ms = now > *mtime_ms + 1 ? now : *mtime_ms + 1;
    struct timespec ts[2] = {{(time_t)(*mtime_ms / 1000), (long)(*mtime_ms % 1000) * 1000000L},
                             {(time_t)(*mtime_ms / 1000), (long)(*mtime_ms % 1000) * 1000000L}};
    if (futimens(f.fd, ts) != 0) {
        rc = sp_err_set(err, SP_EIO, "cannot set the mtime of %s: %s", tmp, strerror(errno));
        goto out;
    }
    int fd = f.fd;
    f.fd = -1;
    if (close(fd) != 0) {
        rc = sp_err_set(err, SP_EIO, "write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dst) != 0) {
        rc = sp_err_set(err, SP_EIO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        goto out;
    }
    g->st.bytes += file_bytes;
    g->st.files++;
out:
    if (f.fd >= 0) {
        close(f.fd);
        unlink(tmp);
    }
    free(name);
    free(tmp);
    free(dst);
    return rc;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *to)
{
    fputs("usage: gen-activity --out DIR [--files N] [--rows-per-file R | --bytes TOTAL]\n"
          "                    [--seed S] [--dirty] [--null-share P] [--start-time MS]\n"
          "                    [--interval-ms T] [--prefix NAME]\n"
          "Writes activity-data JSON lines to DIR/NAME00000.json, NAME00001.json, ...\n"
          "  --out DIR            directory to write (created if missing)\n"
          "  --files N            number of files (default 1, or TOTAL/64MiB with --bytes)\n"
          "  --rows-per-file R    lines per file (default 10000)\n"
          "  --bytes TOTAL        about TOTAL bytes in all (64M, 1G, 1.5G ...) instead of R\n"
          "  --seed S             PRNG seed (default 1); same seed and options, same bytes\n"
          "  --dirty              add a few damaged and unusual lines (see the source)\n"
          "  --null-share P       share of rows without a \"gt\" key (default 0.07)\n"
          "  --start-time MS      Arrival_Time of the first row (default 1424686735090)\n"
          "  --interval-ms T      sleep T ms between files (files arriving over time)\n"
          "  --prefix NAME        file name prefix (default part-)\n"
          "Prints one summary line to stderr:\n"
          "  gen-activity: files=F rows=R null_gt=N malformed=M blank=B bytes=Y seconds=S out=DIR\n",
          to);
}

static int parse_args(int argc, char **argv, gen_opts_t *o, sp_err_t *err)
{
    enum { OPT_OUT = 1, OPT_FILES, OPT_ROWS, OPT_BYTES, OPT_SEED, OPT_DIRTY, OPT_NULL,
           OPT_START, OPT_INTERVAL, OPT_PREFIX, OPT_HELP };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"files", required_argument, NULL, OPT_FILES},
        {"rows-per-file", required_argument, NULL, OPT_ROWS},
        {"bytes", required_argument, NULL, OPT_BYTES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"dirty", no_argument, NULL, OPT_DIRTY},
        {"null-share", required_argument, NULL, OPT_NULL},
        {"start-time", required_argument, NULL, OPT_START},
        {"interval-ms", required_argument, NULL, OPT_INTERVAL},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (gen_opts_t){.prefix = "part-", .files = 1, .rows_per_file = GEN_DEFAULT_ROWS,
                      .seed = 1, .null_share = 0.07, .start_ms = GEN_DEFAULT_START_MS};
    int c;
    int64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_OUT: o->out_dir = optarg; break;
        case OPT_FILES:
            rc = sp_parse_int(optarg, 1, 99999999, &v, err);
            o->files = (uint64_t)v;
            o->files_set = true;
            break;
        case OPT_ROWS:
            rc = sp_parse_int(optarg, 0, INT64_C(1) << 40, &v, err);
            o->rows_per_file = (uint64_t)v;
            o->rows_set = true;
            break;
        case OPT_BYTES:
            rc = sp_parse_size(optarg, &o->total_bytes, err);
            if (rc == 0 && o->total_bytes == 0)
                rc = sp_err_set(err, SP_EINVAL, "--bytes must be more than 0");
            break;
        case OPT_SEED:
            rc = sp_parse_int(optarg, 0, INT64_MAX, &v, err);
            o->seed = (uint64_t)v;
            break;
        case OPT_DIRTY: o->dirty = true; break;
        case OPT_NULL: {
            char *end = NULL;
            o->null_share = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(o->null_share >= 0 && o->null_share <= 1))
                rc = sp_err_set(err, SP_EINVAL, "--null-share '%s' is not a share in [0, 1]",
                                optarg);
            break;
        }
        case OPT_START:
            /* Up to 9e12 so Creation_Time (ns) stays within a 64-bit integer. */
            rc = sp_parse_int(optarg, 1, INT64_C(9000000000000), &v, err);
            o->start_ms = v;
            break;
        case OPT_INTERVAL: rc = sp_parse_duration_ms(optarg, &o->interval_ms, err); break;
        case OPT_PREFIX:
            o->prefix = optarg;
            if (strchr(optarg, '/') != NULL || optarg[0] == '.')
                rc = sp_err_set(err, SP_EINVAL, "--prefix '%s' must not hold '/' or start with '.'",
                                optarg);
            break;
        case OPT_HELP: usage(stdout); exit(0);
        default:
            return sp_err_set(err, SP_EINVAL, "unknown or incomplete option '%s'",
                              argv[optind - 1]);
        }
        if (rc != 0)
            return sp_err_wrap(err, rc, "%s", argv[optind - 1]);
    }
    if (optind < argc)
        return sp_err_set(err, SP_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (o->out_dir == NULL)
        return sp_err_set(err, SP_EINVAL, "--out DIR is required");
    if (o->total_bytes && o->rows_set)
        return sp_err_set(err, SP_EINVAL, "give --rows-per-file or --bytes, not both");
    if (o->total_bytes && !o->files_set)
        o->files = (o->total_bytes + GEN_FILE_TARGET - 1) / GEN_FILE_TARGET;
    return 0;
}

int main(int argc, char **argv)
{
    gen_opts_t o;
    sp_err_t err;
    sp_err_clear(&err);
    if (parse_args(argc, argv, &o, &err) != 0) {
        fprintf(stderr, "gen-activity: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (mkdir_p(o.out_dir, &err) != 0) {
        fprintf(stderr, "gen-activity: %s\n", err.msg);
        return 1;
    }
    gen_t g = {.null_threshold = prob_threshold(o.null_share), .dirty = o.dirty,
               .arrival_ms = o.start_ms};
    rng_seed(&g.rng, o.seed);
    char *buf = sp_xmalloc(GEN_BUF_SIZE);
    uint64_t t0 = sp_mono_ns();
    int64_t mtime_ms = 0;
    int rc = 0;
    for (uint64_t i = 0; i < o.files && rc == 0; i++) {
        /* --bytes: file i ends once the running total reaches its share. */
        uint64_t goal = o.total_bytes
                            ? (uint64_t)((unsigned __int128)o.total_bytes * (i + 1) / o.files)
                            : 0;
        rc = gen_file(&g, &o, i, goal, buf, &mtime_ms, &err);
        if (rc == 0 && o.interval_ms > 0 && i + 1 < o.files)
            sleep_ms(o.interval_ms);
    }
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "gen-activity: %s\n", err.msg);
        return 1;
    }
    double secs = (double)(sp_mono_ns() - t0) / 1e9;
    fprintf(stderr,
            "gen-activity: files=%" PRIu64 " rows=%" PRIu64 " null_gt=%" PRIu64
            " malformed=%" PRIu64 " blank=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f out=%s\n",
            g.st.files, g.st.rows, g.st.null_gt, g.st.malformed, g.st.blank, g.st.bytes, secs,
            o.out_dir);
    return 0;
}
