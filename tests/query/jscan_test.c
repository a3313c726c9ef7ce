/* tests/query/jscan_test.c -- the JSON-lines scanner against its contract
 * (query/jscan.h): JSONTestSuite, every conversion rule, escapes, UTF-8,
 * limits and damaged lines, and an independent opinion: a small recursive
 * descent validator written here from RFC 8259, compared with jscan on
 * thousands of generated and mutated lines. A long-lived scanner (which
 * learns the lines' key layout) must also agree with a fresh one per line.
 *
 * The reference validator and the row comparison are shared with the
 * libFuzzer target tests/fuzz/fuzz_jscan.c, which includes this file with
 * JSCAN_TEST_REF_ONLY defined to leave the Criterion tests out. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "sp_util.h"

/* ---- the reference validator -------------------------------------------
 *
 * Plain recursive descent, straight from the grammar of RFC 8259 and the
 * UTF-8 definition of RFC 3629, sharing no code with jscan.c. Where the RFC
 * leaves room, jscan's contract is followed: at most JSCAN_MAX_DEPTH
 * containers open at once. (Any \uXXXX is grammatical, lone surrogates
 * included: what they unescape to is the conversion tests' business.) */

typedef struct ref {
    const unsigned char *s;
    size_t n, i;
    int depth;
} ref_t;

static int ref_peek(const ref_t *r)
{
    return r->i < r->n ? r->s[r->i] : -1;
}

static void ref_ws(ref_t *r)
{
    while (r->i < r->n &&
           (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static bool ref_word(ref_t *r, const char *w)
{
    size_t k = strlen(w);
    if (r->n - r->i < k || memcmp(r->s + r->i, w, k) != 0)
        return false;
    r->i += k;
    return true;
}

static bool ref_digits(ref_t *r)
{
    size_t start = r->i;
    while (ref_peek(r) >= '0' && ref_peek(r) <= '9')
        r->i++;
    return r->i > start;
}

static bool ref_number(ref_t *r)
{
    if (ref_peek(r) == '-')
        r->i++;
    if (ref_peek(r) == '0')
        r->i++;
    else if (ref_peek(r) >= '1' && ref_peek(r) <= '9')
        ref_digits(r);
    else
        return false;
    if (ref_peek(r) == '.') {
        r->i++;
        if (!ref_digits(r))
            return false;
    }
    if (ref_peek(r) == 'e' || ref_peek(r) == 'E') {
        r->i++;
        if (ref_peek(r) == '+' || ref_peek(r) == '-')
            r->i++;
        if (!ref_digits(r))
            return false;
    }
    return true;
}

static long ref_hex4(ref_t *r)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int c = ref_peek(r);
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + (c - 'A' + 10);
        else
            return -1;
        r->i++;
    }
    return v;
}

/* One UTF-8 sequence starting with a byte >= 0x80. */
static bool ref_utf8(ref_t *r)
{
    unsigned c = r->s[r->i];
    size_t len;
    unsigned long cp, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return false;
    }
    if (r->n - r->i < len)
        return false;
    for (size_t k = 1; k < len; k++) {
        if ((r->s[r->i + k] & 0xC0) != 0x80)
            return false;
        cp = cp << 6 | (r->s[r->i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return false;
    r->i += len;
    return true;
}

static bool ref_string(ref_t *r)
{
    r->i++; /* the opening quote */
    for (;;) {
        int c = ref_peek(r);
        if (c < 0 || (c < 0x20))
            return false;
        if (c == '"') {
            r->i++;
            return true;
        }
        if (c == '\\') {
            r->i++;
            c = ref_peek(r);
            r->i++;
            if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                c == 'r' || c == 't')
                continue;
            if (c != 'u' || ref_hex4(r) < 0)
                return false;
        } else if (c >= 0x80) {
            if (!ref_utf8(r))
                return false;
        } else {
            r->i++;
        }
    }
}

static bool ref_value(ref_t *r);

static bool ref_container(ref_t *r, bool object)
{
    if (++r->depth > JSCAN_MAX_DEPTH)
        return false;
    r->i++;
    ref_ws(r);
    if (ref_peek(r) == (object ? '}' : ']')) {
        r->i++;
        r->depth--;
        return true;
    }
    for (;;) {
        ref_ws(r);
        if (object) {
            if (ref_peek(r) != '"' || !ref_string(r))
                return false;
            ref_ws(r);
            if (ref_peek(r) != ':')
                return false;
            r->i++;
            ref_ws(r);
        }
        if (!ref_value(r))
            return false;
        ref_ws(r);
        if (ref_peek(r) == ',') {
            r->i++;
            continue;
        }
        if (ref_peek(r) != (object ? '}' : ']'))
            return false;
        r->i++;
        r->depth--;
        return true;
    }
}

static bool ref_value(ref_t *r)
{
    switch (ref_peek(r)) {
    case '{': return ref_container(r, true);
    case '[': return ref_container(r, false);
    case '"': return ref_string(r);
    case 't': return ref_word(r, "true");
    case 'f': return ref_word(r, "false");
    case 'n': return ref_word(r, "null");
    default: return ref_number(r);
    }
}

/* Exactly one JSON text with optional whitespace around it. */
static bool ref_valid(const void *doc, size_t len)
{
    ref_t r = {doc, len, 0, 0};
    ref_ws(&r);
    if (!ref_value(&r))
        return false;
    ref_ws(&r);
    return r.i == r.n;
}

/* What jscan_line must answer for a line, by the reference. */
static jscan_status_t ref_status(const void *line, size_t len)
{
    const unsigned char *s = line;
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    if (i == len)
        return JSCAN_BLANK;
    return s[i] == '{' && ref_valid(line, len) ? JSCAN_ROW : JSCAN_MALFORMED;
}

/* ---- comparing rows ------------------------------------------------------ */

/* The columns of the agreement tests: the generator's keys, every type. */
static const char *const agree_names[] = {"a", "gt", "x", "b", "Creation_Time",
                                          "a_rather_long_key_name_of_40_bytes______",
                                          "\xc3\xa9t\xc3\xa9", "y"};
static const sp_type_t agree_types[] = {SP_TYPE_STRING, SP_TYPE_STRING, SP_TYPE_DOUBLE,
                                        SP_TYPE_BIGINT, SP_TYPE_BIGINT, SP_TYPE_BOOLEAN,
                                        SP_TYPE_DOUBLE, SP_TYPE_STRING};
#define AGREE_NCOLS (sizeof agree_names / sizeof agree_names[0])

/* A value as text, for comparisons in messages: "NULL", "i:42",
 * "d:-0" (%.17g), "b:true", "s:<bytes>". */
static char *val_text(const sp_value_t *v)
{
    switch (v->type) {
    case SP_TYPE_NULL: return sp_xstrdup("NULL");
    case SP_TYPE_BIGINT: return sp_xasprintf("i:%lld", (long long)v->u.i);
    case SP_TYPE_DOUBLE: return sp_xasprintf("d:%.17g", v->u.d);
    case SP_TYPE_BOOLEAN: return sp_xasprintf("b:%s", v->u.b ? "true" : "false");
    case SP_TYPE_STRING: return sp_xasprintf("s:%.*s", (int)v->u.s.len, v->u.s.ptr);
    }
    return sp_xstrdup("?");
}

/* Two rows agree: same values (strings by bytes, doubles by bits), type
 * errors and error. */
static bool rows_agree(const jscan_row_t *a, const jscan_row_t *b, size_t ncols, char **why)
{
    for (size_t c = 0; c < ncols; c++) {
        const sp_value_t *x = &a->values[c], *y = &b->values[c];
        bool same = x->type == y->type;
        if (same && x->type == SP_TYPE_STRING)
            same = x->u.s.len == y->u.s.len && memcmp(x->u.s.ptr, y->u.s.ptr, x->u.s.len) == 0;
        else if (same && x->type == SP_TYPE_DOUBLE)
            same = memcmp(&x->u.d, &y->u.d, sizeof(double)) == 0;
        else if (same && x->type == SP_TYPE_BIGINT)
            same = x->u.i == y->u.i;
        else if (same && x->type == SP_TYPE_BOOLEAN)
            same = x->u.b == y->u.b;
        if (!same) {
            char *tx = val_text(x), *ty = val_text(y);
            *why = sp_xasprintf("column %zu: %s vs %s", c, tx, ty);
            free(tx);
            free(ty);
            return false;
        }
    }
    if (a->ntype_errors != b->ntype_errors || a->first_type_error != b->first_type_error) {
        *why = sp_xasprintf("type errors %u/%d vs %u/%d", a->ntype_errors, a->first_type_error,
                            b->ntype_errors, b->first_type_error);
        return false;
    }
    if ((a->error == NULL) != (b->error == NULL) ||
        (a->error && (strcmp(a->error, b->error) != 0 || a->error_offset != b->error_offset))) {
        *why = sp_xasprintf("error '%s'@%zu vs '%s'@%zu", a->error ? a->error : "-",
                            a->error_offset, b->error ? b->error : "-", b->error_offset);
        return false;
    }
    return true;
}

/* jscan_next on one line agrees with jscan_line's answer (want, want_row,
 * from another scanner): with a '\n' and more input after it, and as the
 * last bytes of the input (final); not final and without its '\n', it asks
 * for more and consumes nothing. The padding holds JSON-looking bytes:
 * jscan_next may read them, never for meaning. Lines holding a '\n' are
 * not single lines for jscan_next and agree trivially. */
static bool next_agrees(jscan_t *s, const char *line, size_t len, jscan_status_t want,
                        const jscan_row_t *want_row, size_t ncols, char **why)
{
    if (memchr(line, '\n', len))
        return true;
    static const char after[] = "\n{\"gt\":\"next\"}\n";
    size_t cap = len + sizeof after + JSCAN_PADDING;
    char *buf = sp_xmalloc(cap);
    bool ok = true;
    for (int mode = 0; mode < 3 && ok; mode++) {
        memcpy(buf, line, len);
        size_t avail = len;
        if (mode == 0) {
            memcpy(buf + len, after, sizeof after - 1);
            avail += sizeof after - 1;
        }
        for (size_t i = avail; i < cap; i++)
            buf[i] = "\"}]:,0\\ "[i % 8];
        const jscan_row_t *row;
        size_t got = 12345;
        jscan_status_t st = jscan_next(s, buf, avail, mode != 2, &got, &row);
        if (mode == 2 || avail == 0) {
            if (st != JSCAN_MORE || got != 0) {
                *why = sp_xasprintf("jscan_next without the line's end: status %d, len %zu", st, got);
                ok = false;
            }
        } else if (st != want || got != len) {
            *why = sp_xasprintf("jscan_next (%s): status %d len %zu, jscan_line %d len %zu",
                                mode ? "final" : "more follows", st, got, want, len);
            ok = false;
        } else if (!rows_agree(row, want_row, ncols, why)) {
            ok = false;
        }
    }
    free(buf);
    return ok;
}

#ifndef JSCAN_TEST_REF_ONLY
#include <criterion/criterion.h>

#include "testsupport.h"

/* ---- a generator of JSON lines -------------------------------------------
 *
 * Random objects of the kind a JSON-lines file holds, with escapes, UTF-8,
 * numbers of every shape, nesting and whitespace, over a few keys that
 * scanners in the tests ask for; and mutations that damage them. */

static uint64_t gen_rand(uint64_t *state)
{
    uint64_t x = *state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static unsigned gen_below(uint64_t *st, unsigned n)
{
    return (unsigned)(gen_rand(st) % n);
}

static void gen_ws(uint64_t *st, sp_buf_t *b)
{
    static const char ws[] = " \t\r\n";
    if (gen_below(st, 6) == 0)
        for (unsigned k = 1 + gen_below(st, 2); k; k--)
            sp_buf_putc(b, ws[gen_below(st, gen_below(st, 8) ? 2 : 4)]);
}

static void gen_utf8(sp_buf_t *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    sp_buf_append(b, u, n);
}

static void gen_string_body(uint64_t *st, sp_buf_t *b)
{
    unsigned pieces = gen_below(st, 4) ? gen_below(st, 4) : gen_below(st, 24);
    for (unsigned k = 0; k < pieces; k++) {
        switch (gen_below(st, 10)) {
        case 0: sp_buf_printf(b, "\\%c", "\"\\/bfnrt"[gen_below(st, 8)]); break;
        case 1: {
            unsigned long u = gen_below(st, 0xD800);
            sp_buf_printf(b, gen_below(st, 2) ? "\\u%04lx" : "\\u%04lX", u);
            break;
        }
        case 2: /* a surrogate pair, or half of one */
            if (gen_below(st, 4))
                sp_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + gen_below(st, 0x400),
                              0xDC00 + gen_below(st, 0x400));
            else
                sp_buf_printf(b, "\\u%04X", 0xD800 + gen_below(st, 0x800));
            break;
        case 3: {
            static const unsigned long cps[] = {0xE9, 0x3B1, 0x20AC, 0xFFFD, 0xE000, 0x1F600,
                                                0x10FFFF, 0x7FF, 0x800, 0xFFFF, 0x10000};
            gen_utf8(b, cps[gen_below(st, sizeof cps / sizeof cps[0])]);
            break;
        }
        case 4: /* a run long enough for several 16-byte blocks */
            for (unsigned j = gen_below(st, 40); j; j--)
                sp_buf_putc(b, (char)('a' + gen_below(st, 26)));
            break;
        default: { /* printable ASCII but the quote and the backslash */
            char c = (char)(' ' + gen_below(st, 95));
            sp_buf_putc(b, c == '"' || c == '\\' ? 'q' : c);
            break;
        }
        }
    }
}

static void gen_string(uint64_t *st, sp_buf_t *b)
{
    sp_buf_putc(b, '"');
    gen_string_body(st, b);
    sp_buf_putc(b, '"');
}

static void gen_number(uint64_t *st, sp_buf_t *b)
{
    static const char *const fixed[] = {"0", "-0", "9223372036854775807", "-9223372036854775808",
                                        "9223372036854775808", "1e400", "-1e-400", "0.1",
                                        "123456789012345678901234567890", "1E+2", "2.5e-3"};
    if (gen_below(st, 5) == 0) {
        sp_buf_printf(b, "%s", fixed[gen_below(st, sizeof fixed / sizeof fixed[0])]);
        return;
    }
    if (gen_below(st, 2))
        sp_buf_putc(b, '-');
    unsigned nd = 1 + gen_below(st, gen_below(st, 4) ? 8 : 24);
    sp_buf_putc(b, (char)(nd == 1 ? '0' + gen_below(st, 10) : '1' + gen_below(st, 9)));
    for (unsigned k = 1; k < nd; k++)
        sp_buf_putc(b, (char)('0' + gen_below(st, 10)));
    if (gen_below(st, 2)) {
        sp_buf_putc(b, '.');
        for (unsigned k = 1 + gen_below(st, 12); k; k--)
            sp_buf_putc(b, (char)('0' + gen_below(st, 10)));
    }
    if (gen_below(st, 4) == 0) {
        sp_buf_putc(b, gen_below(st, 2) ? 'e' : 'E');
        if (gen_below(st, 2))
            sp_buf_putc(b, gen_below(st, 2) ? '+' : '-');
        sp_buf_printf(b, "%u", gen_below(st, 400));
    }
}

static const char *const gen_keys[] = {"a", "b", "gt", "x", "Creation_Time",
                                       "a_rather_long_key_name_of_40_bytes______",
                                       "\\u0067t", "g\\u0074", "\\u00e9t\\u00e9", "", "y"};
#define GEN_NKEYS (sizeof gen_keys / sizeof gen_keys[0])

static void gen_value(uint64_t *st, sp_buf_t *b, int depth);

static void gen_members(uint64_t *st, sp_buf_t *b, int depth, bool object, unsigned n)
{
    sp_buf_putc(b, object ? '{' : '[');
    gen_ws(st, b);
    for (unsigned k = 0; k < n; k++) {
        if (k) {
            gen_ws(st, b);
            sp_buf_putc(b, ',');
            gen_ws(st, b);
        }
        if (object) {
            if (gen_below(st, 8))
                sp_buf_printf(b, "\"%s\"", gen_keys[gen_below(st, GEN_NKEYS)]);
            else
                gen_string(st, b);
            gen_ws(st, b);
            sp_buf_putc(b, ':');
            gen_ws(st, b);
        }
        gen_value(st, b, depth + 1);
    }
    gen_ws(st, b);
    sp_buf_putc(b, object ? '}' : ']');
}

static void gen_value(uint64_t *st, sp_buf_t *b, int depth)
{
    unsigned kind = gen_below(st, depth > 4 ? 6 : 8);
    switch (kind) {
    case 0: {
        static const char *const lits[] = {"true", "false", "null"};
        sp_buf_printf(b, "%s", lits[gen_below(st, 3)]);
        break;
    }
    case 1: case 2: gen_number(st, b); break;
    case 3: case 4: case 5: gen_string(st, b); break;
    case 6: gen_members(st, b, depth, true, gen_below(st, 4)); break;
    default: gen_members(st, b, depth, false, gen_below(st, 4)); break;
    }
}

/* A line: mostly an object, sometimes another JSON value or blank. */
static void gen_line(uint64_t *st, sp_buf_t *b)
{
    b->len = 0;
    gen_ws(st, b);
    unsigned r = gen_below(st, 40);
    if (r == 0)
        gen_value(st, b, 1);
    else if (r != 1)
        gen_members(st, b, 0, true, gen_below(st, 9));
    gen_ws(st, b);
}

/* Damage a line: change, insert or delete bytes, or cut it short. */
static void gen_mutate(uint64_t *st, sp_buf_t *b)
{
    static const char hot[] = "\"\\{}[],:0-.eE+ \tu9tfn\x01\x7f";
    static const unsigned char high[] = {0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED,
                                         0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    for (unsigned m = 1 + gen_below(st, 3); m; m--) {
        size_t at = b->len ? gen_below(st, (unsigned)b->len + 1) : 0;
        unsigned r = gen_below(st, 10);
        char c = gen_below(st, 4) ? hot[gen_below(st, sizeof hot - 1)]
                 : gen_below(st, 3) ? (char)high[gen_below(st, sizeof high)]
                                    : (char)gen_rand(st);
        if (r < 4 && at < b->len) {
            b->data[at] = c;
        } else if (r < 7) {
            sp_buf_putc(b, 0);
            memmove(b->data + at + 1, b->data + at, b->len - 1 - at);
            b->data[at] = c;
        } else if (r < 9 && at < b->len) {
            memmove(b->data + at, b->data + at + 1, b->len - at - 1);
            b->len--;
        } else {
            b->len = at;
        }
    }
}

/* ---- helpers ------------------------------------------------------------ */

/* Printable form of bytes for failure messages. */
static char *show(const void *p, size_t n)
{
    sp_buf_t b = SP_BUF_INIT;
    const unsigned char *s = p;
    for (size_t i = 0; i < n && i < 400; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '\\')
            sp_buf_putc(&b, (char)s[i]);
        else
            sp_buf_printf(&b, "\\x%02x", s[i]);
    }
    if (n > 400)
        sp_buf_printf(&b, "...(%zu bytes)", n);
    return sp_buf_cstr(&b);
}

/* Scan `{"k":<json>}` with one column k of the given type; returns the
 * status and the value as text; *nerr the type errors. */
static jscan_status_t conv(const char *json, sp_type_t type, char **text, uint32_t *nerr)
{
    const char *name = "k";
    jscan_t *s = jscan_new(&name, &type, 1);
    char *line = sp_xasprintf("{\"k\":%s}", json);
    const jscan_row_t *row;
    jscan_status_t st = jscan_line(s, line, strlen(line), &row);
    *text = val_text(&row->values[0]);
    *nerr = row->ntype_errors;
    jscan_destroy(&s);
    free(line);
    return st;
}

static void expect_conv(const char *json, sp_type_t type, const char *want, bool type_error)
{
    char *text;
    uint32_t nerr;
    jscan_status_t st = conv(json, type, &text, &nerr);
    cr_expect_eq(st, JSCAN_ROW, "%s as %s: status %d", json, sp_type_name(type), st);
    cr_expect_str_eq(text, want, "%s as %s: got %s, want %s", json, sp_type_name(type), text, want);
    cr_expect_eq(nerr, type_error ? 1u : 0u, "%s as %s: %u type errors", json,
                 sp_type_name(type), nerr);
    free(text);
}

/* One line through a scanner with one STRING column "k": status, error. */
static jscan_status_t line_status(const void *line, size_t len, const char **err, size_t *off)
{
    const char *name = "k";
    sp_type_t type = SP_TYPE_STRING;
    jscan_t *s = jscan_new(&name, &type, 1);
    const jscan_row_t *row;
    jscan_status_t st = jscan_line(s, line, len, &row);
    if (err)
        *err = row->error;
    if (off)
        *off = row->error_offset;
    jscan_destroy(&s);
    return st;
}

static void expect_malformed(const char *line, size_t len, const char *msg)
{
    const char *err;
    size_t off;
    char *shown = show(line, len);
    cr_expect_eq(line_status(line, len, &err, &off), JSCAN_MALFORMED, "line %s", shown);
    cr_expect_eq(jscan_valid(line, len), ref_valid(line, len), "jscan_valid(%s)", shown);
    if (msg)
        cr_expect(err && strstr(err, msg), "line %s: error '%s', want '%s'", shown,
                  err ? err : "(none)", msg);
    free(shown);
}

#define MALFORMED(lit, msg) expect_malformed(lit, sizeof(lit) - 1, msg)

/* ---- usage -------------------------------------------------------------- */

Test(jscan, usage_example)
{
    /* A scanner for the columns a query needs, in slot order. */
    const char *names[] = {"gt", "x", "Index"};
    const sp_type_t types[] = {SP_TYPE_STRING, SP_TYPE_DOUBLE, SP_TYPE_BIGINT};
    jscan_t *s = jscan_new(names, types, 3);

    const char line[] = "{\"Arrival_Time\":1424686735090,\"Device\":\"nexus4_1\",\"Index\":35,"
                        "\"gt\":\"stand\",\"x\":-5.958191,\"y\":0.6880646}";
    const jscan_row_t *row;
    cr_assert_eq(jscan_line(s, line, sizeof line - 1, &row), JSCAN_ROW);
    cr_assert_eq(row->values[0].type, SP_TYPE_STRING);
    cr_assert_eq(row->values[0].u.s.len, 5);
    cr_assert(memcmp(row->values[0].u.s.ptr, "stand", 5) == 0);
    cr_assert_eq(row->values[0].u.s.ptr, strstr(line, "stand"),
                 "plain strings borrow from the line");
    cr_assert_eq(row->values[1].type, SP_TYPE_DOUBLE);
    cr_assert_eq(row->values[1].u.d, -5.958191);
    cr_assert_eq(row->values[2].type, SP_TYPE_BIGINT);
    cr_assert_eq(row->values[2].u.i, 35);
    cr_assert_eq(row->ntype_errors, 0);
    cr_assert_eq(row->first_type_error, -1);
    cr_assert_null(row->error);

    /* Absent keys are NULL; a value that does not convert is NULL too, and
     * counted, so the caller can apply its malformed-row policy. */
    const char line2[] = "{\"x\":\"fast\",\"Index\":7}";
    cr_assert_eq(jscan_line(s, line2, sizeof line2 - 1, &row), JSCAN_ROW);
    cr_assert_eq(row->values[0].type, SP_TYPE_NULL);
    cr_assert_eq(row->values[1].type, SP_TYPE_NULL);
    cr_assert_eq(row->values[2].u.i, 7);
    cr_assert_eq(row->ntype_errors, 1);
    cr_assert_eq(row->first_type_error, 1);

    /* Damage is reported with a message and the offset of the problem. */
    const char bad[] = "{\"gt\":\"sit\",\"x\":1.}";
    cr_assert_eq(jscan_line(s, bad, sizeof bad - 1, &row), JSCAN_MALFORMED);
    cr_assert_str_eq(row->error, "invalid number: no digit after '.'");
    cr_assert_eq(row->error_offset, 18);
    cr_assert_eq(row->values[0].type, SP_TYPE_NULL, "a damaged line fills no value");

    jscan_destroy(&s);
    cr_assert_null(s);
    jscan_destroy(&s); /* safe twice */
    jscan_destroy(NULL);
}

/* ---- JSONTestSuite -------------------------------------------------------- */

/* $SPATE_SHARED_DATA/JSONTestSuite/<part> (malloc'd); ctest sets the
 * variable, by hand it defaults to /work/shared/data. */
static char *suite_dir(const char *part)
{
    const char *base = getenv("SPATE_SHARED_DATA");
    return sp_xasprintf("%s/JSONTestSuite/%s", base && *base ? base : "/work/shared/data", part);
}

typedef void (*suite_fn)(const char *name, const char *doc, size_t len);

/* Call fn on every file of the suite; returns how many. */
static int suite_each(const char *dir, suite_fn fn)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s: %s (set SPATE_SHARED_DATA)", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = sp_xasprintf("%s/%s", dir, e->d_name);
        size_t len;
        char *doc = ts_read_file(path, &len);
        cr_assert_not_null(doc, "cannot read %s", path);
        fn(e->d_name, doc, len);
        free(doc);
        free(path);
        n++;
    }
    closedir(d);
    return n;
}

static int suite_y, suite_n, suite_i;

static void suite_check(const char *name, const char *doc, size_t len)
{
    bool valid = jscan_valid(doc, len);
    bool ref = ref_valid(doc, len);
    const char *err;
    jscan_status_t st = line_status(doc, len, &err, NULL);
    if (name[0] == 'y') {
        suite_y++;
        cr_expect(valid, "%s: jscan_valid rejects an accepted document", name);
        cr_expect(ref, "%s: the reference rejects an accepted document", name);
        cr_expect_eq(st, ref_status(doc, len), "%s: jscan_line gives %d", name, st);
    } else if (name[0] == 'n') {
        suite_n++;
        cr_expect(!valid, "%s: jscan_valid accepts a rejected document", name);
        cr_expect(!ref, "%s: the reference accepts a rejected document", name);
        cr_expect_neq(st, JSCAN_ROW, "%s: jscan_line takes a rejected document as a row", name);
    } else {
        suite_i++; /* either answer, but jscan and the reference agree */
        cr_expect_eq(valid, ref, "%s: jscan_valid %d, reference %d", name, valid, ref);
        cr_expect_eq(st, ref_status(doc, len), "%s: jscan_line gives %d", name, st);
    }
    if (st == JSCAN_MALFORMED)
        cr_expect_not_null(err, "%s: no error message", name);
}

Test(jscan_suite, test_parsing)
{
    char *dir = suite_dir("test_parsing");
    int n = suite_each(dir, suite_check);
    free(dir);
    cr_assert_eq(n, 318, "expected the 318 files of JSONTestSuite, found %d", n);
    cr_assert_eq(suite_y, 95);
    cr_assert_eq(suite_n, 188);
    cr_assert_eq(suite_i, 35);
}

/* Every suite document through a scanner asking for several keys of every
 * type (the conversion paths), as one line and also cut at every byte. */
static void suite_scan(const char *name, const char *doc, size_t len)
{
    static const char *names[] = {"a", "", "id", "\xc3\xa9", "asd", "foo", "a"};
    static const sp_type_t types[] = {SP_TYPE_STRING, SP_TYPE_BIGINT,  SP_TYPE_DOUBLE,
                                      SP_TYPE_BOOLEAN, SP_TYPE_STRING, SP_TYPE_DOUBLE,
                                      SP_TYPE_BIGINT};
    jscan_t *s = jscan_new(names, types, 7), *sn = jscan_new(names, types, 7);
    const jscan_row_t *row;
    for (size_t cut = 0; cut <= len && cut < 4096; cut++) {
        jscan_status_t st = jscan_line(s, doc, cut, &row);
        jscan_status_t want = ref_status(doc, cut);
        char *why = NULL;
        if (st != want || !next_agrees(sn, doc, cut, st, row, 7, &why)) {
            char *shown = show(doc, cut);
            cr_expect_eq(st, want, "%s cut at %zu (%s): %d, reference %d", name, cut, shown, st,
                         want);
            cr_expect(why == NULL, "%s cut at %zu (%s): %s", name, cut, shown, why);
            free(shown);
            free(why);
        }
    }
    jscan_destroy(&s);
    jscan_destroy(&sn);
}

Test(jscan_suite, test_parsing_as_lines_and_prefixes, .timeout = 120)
{
    char *dir = suite_dir("test_parsing");
    suite_each(dir, suite_scan);
    free(dir);
}

/* test_transform: edge cases without a fixed answer; jscan agrees with
 * the reference and converts without crashing. */
static void transform_check(const char *name, const char *doc, size_t len)
{
    cr_expect_eq(jscan_valid(doc, len), ref_valid(doc, len), "%s", name);
    suite_scan(name, doc, len);
}

Test(jscan_suite, test_transform)
{
    char *dir = suite_dir("test_transform");
    cr_assert_eq(suite_each(dir, transform_check), 22);
    free(dir);
}

/* ---- conversions ---------------------------------------------------------- */

Test(jscan_conv, bigint)
{
    expect_conv("0", SP_TYPE_BIGINT, "i:0", false);
    expect_conv("-0", SP_TYPE_BIGINT, "i:0", false);
    expect_conv("42", SP_TYPE_BIGINT, "i:42", false);
    expect_conv("-17", SP_TYPE_BIGINT, "i:-17", false);
    expect_conv("1424686733090638193", SP_TYPE_BIGINT, "i:1424686733090638193", false);
    expect_conv("9223372036854775807", SP_TYPE_BIGINT, "i:9223372036854775807", false);
    expect_conv("-9223372036854775808", SP_TYPE_BIGINT, "i:-9223372036854775808", false);
    expect_conv("9223372036854775808", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("-9223372036854775809", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("18446744073709551616", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("99999999999999999999999", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("1.0", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("1e2", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("1E0", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("\"1\"", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("true", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("{}", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("[1]", SP_TYPE_BIGINT, "NULL", true);
    expect_conv("null", SP_TYPE_BIGINT, "NULL", false);
}

Test(jscan_conv, double_)
{
    expect_conv("0", SP_TYPE_DOUBLE, "d:0", false);
    expect_conv("-0", SP_TYPE_DOUBLE, "d:-0", false);
    expect_conv("-0.0", SP_TYPE_DOUBLE, "d:-0", false);
    expect_conv("-0e5", SP_TYPE_DOUBLE, "d:-0", false);
    expect_conv("-0.000000000000000000000000", SP_TYPE_DOUBLE, "d:-0", false);
    expect_conv("1", SP_TYPE_DOUBLE, "d:1", false);
    expect_conv("-5.958191", SP_TYPE_DOUBLE, "d:-5.9581910000000002", false);
    expect_conv("1.5e3", SP_TYPE_DOUBLE, "d:1500", false);
    expect_conv("1E-2", SP_TYPE_DOUBLE, "d:0.01", false);
    expect_conv("9223372036854775808", SP_TYPE_DOUBLE, "d:9.2233720368547758e+18", false);
    expect_conv("1e400", SP_TYPE_DOUBLE, "d:inf", false);   /* as strtod: overflow is inf */
    expect_conv("-1e400", SP_TYPE_DOUBLE, "d:-inf", false);
    expect_conv("1e-400", SP_TYPE_DOUBLE, "d:0", false);     /* and underflow 0 */
    expect_conv("\"NaN\"", SP_TYPE_DOUBLE, "d:nan", false);
    expect_conv("\"Infinity\"", SP_TYPE_DOUBLE, "d:inf", false);
    expect_conv("\"-Infinity\"", SP_TYPE_DOUBLE, "d:-inf", false);
    expect_conv("\"\\u004eaN\"", SP_TYPE_DOUBLE, "d:nan", false); /* compared unescaped */
    expect_conv("\"nan\"", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("\"inf\"", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("\"1.5\"", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("\"NaN \"", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("true", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("[]", SP_TYPE_DOUBLE, "NULL", true);
    expect_conv("null", SP_TYPE_DOUBLE, "NULL", false);
}

Test(jscan_conv, boolean)
{
    expect_conv("true", SP_TYPE_BOOLEAN, "b:true", false);
    expect_conv("false", SP_TYPE_BOOLEAN, "b:false", false);
    expect_conv("1", SP_TYPE_BOOLEAN, "NULL", true);
    expect_conv("0", SP_TYPE_BOOLEAN, "NULL", true);
    expect_conv("\"true\"", SP_TYPE_BOOLEAN, "NULL", true);
    expect_conv("{\"t\":true}", SP_TYPE_BOOLEAN, "NULL", true);
    expect_conv("null", SP_TYPE_BOOLEAN, "NULL", false);
}

Test(jscan_conv, string)
{
    expect_conv("\"stand\"", SP_TYPE_STRING, "s:stand", false);
    expect_conv("\"\"", SP_TYPE_STRING, "s:", false);
    expect_conv("123", SP_TYPE_STRING, "s:123", false);
    expect_conv("-1.50E+03", SP_TYPE_STRING, "s:-1.50E+03", false); /* its JSON text, as is */
    expect_conv("true", SP_TYPE_STRING, "s:true", false);
    expect_conv("false", SP_TYPE_STRING, "s:false", false);
    expect_conv("{\"b\": [1, 2], \"c\":{}}", SP_TYPE_STRING, "s:{\"b\": [1, 2], \"c\":{}}", false);
    expect_conv("[ ]", SP_TYPE_STRING, "s:[ ]", false);
    expect_conv("[\"x\\\"y\"]", SP_TYPE_STRING, "s:[\"x\\\"y\"]", false); /* raw, not unescaped */
    expect_conv("null", SP_TYPE_STRING, "NULL", false);
    expect_conv("  \"padded\"  ", SP_TYPE_STRING, "s:padded", false);
}

Test(jscan_conv, type_errors_first_and_count)
{
    const char *names[] = {"b", "a", "c", "d"};
    const sp_type_t types[] = {SP_TYPE_BIGINT, SP_TYPE_BIGINT, SP_TYPE_BOOLEAN, SP_TYPE_STRING};
    jscan_t *s = jscan_new(names, types, 4);
    const jscan_row_t *row;
    /* a (column 1) fails first in the line, then b (column 0); c is fine. */
    const char l1[] = "{\"a\":\"x\",\"b\":1.5,\"c\":true,\"d\":1}";
    cr_assert_eq(jscan_line(s, l1, sizeof l1 - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->ntype_errors, 2);
    cr_expect_eq(row->first_type_error, 1);
    cr_expect_eq(row->values[0].type, SP_TYPE_NULL);
    cr_expect_eq(row->values[1].type, SP_TYPE_NULL);
    cr_expect_eq(row->values[2].u.b, true);
    /* the next line starts clean */
    const char l2[] = "{\"b\":2}";
    cr_assert_eq(jscan_line(s, l2, sizeof l2 - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->ntype_errors, 0);
    cr_expect_eq(row->first_type_error, -1);
    cr_expect_eq(row->values[0].u.i, 2);
    cr_expect_eq(row->values[1].type, SP_TYPE_NULL, "a key absent from this line is NULL");
    cr_expect_eq(row->values[2].type, SP_TYPE_NULL);
    jscan_destroy(&s);
}

Test(jscan_conv, duplicate_keys_last_wins)
{
    const char *names[] = {"a", "b"};
    const sp_type_t types[] = {SP_TYPE_BIGINT, SP_TYPE_STRING};
    jscan_t *s = jscan_new(names, types, 2);
    const jscan_row_t *row;
    const char l1[] = "{\"a\":1,\"b\":\"x\",\"a\":2,\"b\":\"y\"}";
    cr_assert_eq(jscan_line(s, l1, sizeof l1 - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].u.i, 2);
    cr_expect_eq(row->values[1].u.s.len, 1);
    cr_expect_eq(row->values[1].u.s.ptr[0], 'y');
    /* a later good value replaces an earlier type error, and vice versa */
    const char l2[] = "{\"a\":\"bad\",\"a\":3,\"b\":\"ok\",\"b\":null}";
    cr_assert_eq(jscan_line(s, l2, sizeof l2 - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].u.i, 3);
    cr_expect_eq(row->ntype_errors, 0);
    cr_expect_eq(row->first_type_error, -1);
    cr_expect_eq(row->values[1].type, SP_TYPE_NULL, "null last: NULL");
    const char l3[] = "{\"a\":3,\"a\":\"bad\"}";
    cr_assert_eq(jscan_line(s, l3, sizeof l3 - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].type, SP_TYPE_NULL);
    cr_expect_eq(row->ntype_errors, 1);
    cr_expect_eq(row->first_type_error, 0);
    jscan_destroy(&s);
}

Test(jscan_conv, same_key_in_two_columns)
{
    const char *names[] = {"v", "v", "w"};
    const sp_type_t types[] = {SP_TYPE_DOUBLE, SP_TYPE_STRING, SP_TYPE_BIGINT};
    jscan_t *s = jscan_new(names, types, 3);
    const jscan_row_t *row;
    const char l[] = "{\"v\":2.50,\"w\":1}";
    cr_assert_eq(jscan_line(s, l, sizeof l - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].u.d, 2.5);
    cr_expect_eq(row->values[1].u.s.len, 4);
    cr_expect(memcmp(row->values[1].u.s.ptr, "2.50", 4) == 0);
    cr_expect_eq(row->values[2].u.i, 1);
    jscan_destroy(&s);
}

Test(jscan_conv, no_columns_still_validates)
{
    jscan_t *s = jscan_new(NULL, NULL, 0);
    const jscan_row_t *row;
    const char ok[] = "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\"}";
    const char bad[] = "{\"a\":[1,{\"b\":nul}]}";
    cr_expect_eq(jscan_line(s, ok, sizeof ok - 1, &row), JSCAN_ROW);
    cr_expect_eq(jscan_line(s, bad, sizeof bad - 1, &row), JSCAN_MALFORMED);
    cr_expect_eq(jscan_line(s, "", 0, &row), JSCAN_BLANK);
    jscan_destroy(&s);
}

/* Doubles as strtod reads them, bit for bit, over random decimal texts:
 * short and 17+ significant digits, leading zeros, exponents across the
 * range (Clinger's fast path, its edges, and the strtod fallback). */
Test(jscan_conv, doubles_round_like_strtod, .timeout = 120)
{
    static const char *const fixed[] = {
        "9007199254740993", "9007199254740992e22", "9007199254740993e22", "1e23", "1e22",
        "1e-22", "123456789e-22", "2.2250738585072011e-308", "2.2250738585072014e-308",
        "1.7976931348623157e308", "1.7976931348623158e308", "4.9e-324", "2.4703282292062327e-324",
        "8.98846567431158e307", "0.1", "0.30000000000000004", "1234567890123456789",
        "12345678901234567890", "0.000001234567890123456789", "3.141592653589793238462643383",
        "100000000000000000000000", "0.000000000000000000000000000001", "4503599627370496.5",
        "4503599627370497.5", "72057594037927928", "1.00000000000000011102230246251565404"};
    const char *name = "k";
    sp_type_t type = SP_TYPE_DOUBLE;
    jscan_t *s = jscan_new(&name, &type, 1);
    uint64_t st = 0x9E3779B97F4A7C15ULL;
    char num[128], line[160];
    int failures = 0;
    for (int i = 0; i < 300000 && failures < 10; i++) {
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            snprintf(num, sizeof num, "%s%s", i % 2 ? "-" : "", fixed[i]);
        } else {
            size_t n = 0;
            if (gen_below(&st, 2))
                num[n++] = '-';
            unsigned nd = 1 + gen_below(&st, gen_below(&st, 3) ? 17 : 40);
            num[n++] = (char)(nd == 1 ? '0' + gen_below(&st, 10) : '1' + gen_below(&st, 9));
            for (unsigned k = 1; k < nd; k++)
                num[n++] = (char)('0' + gen_below(&st, 10));
            if (gen_below(&st, 3)) {
                num[n++] = '.';
                unsigned zeros = gen_below(&st, 4) == 0 ? gen_below(&st, 12) : 0;
                for (unsigned k = 0; k < zeros; k++)
                    num[n++] = '0';
                for (unsigned k = 1 + gen_below(&st, 20); k; k--)
                    num[n++] = (char)('0' + gen_below(&st, 10));
            }
            if (gen_below(&st, 2)) {
                int e = gen_below(&st, 2) ? (int)gen_below(&st, 30) - 15
                                          : (int)gen_below(&st, 700) - 350;
                n += (size_t)snprintf(num + n, sizeof num - n, "%s%d",
                                      gen_below(&st, 2) ? "e" : "E", e);
            }
            num[n] = '\0';
        }
        double want = strtod(num, NULL);
        int len = snprintf(line, sizeof line, "{\"k\":%s}", num);
        const jscan_row_t *row;
        jscan_status_t status = jscan_line(s, line, (size_t)len, &row);
        if (status != JSCAN_ROW || row->values[0].type != SP_TYPE_DOUBLE ||
            memcmp(&row->values[0].u.d, &want, sizeof want) != 0) {
            failures++;
            cr_expect_fail("%s: got %.17g (status %d), strtod gives %.17g", num,
                           row->values[0].u.d, status, want);
        }
    }
    jscan_destroy(&s);
}

/* ---- strings: escapes and UTF-8 ---------------------------------------- */

Test(jscan_string, escapes_in_values)
{
    expect_conv("\"a\\\"b\\\\c\\/d\"", SP_TYPE_STRING, "s:a\"b\\c/d", false);
    expect_conv("\"\\b\\f\\n\\r\\t\"", SP_TYPE_STRING, "s:\b\f\n\r\t", false);
    expect_conv("\"\\u0041\\u00e9\\u20AC\"", SP_TYPE_STRING, "s:A\xc3\xa9\xe2\x82\xac", false);
    expect_conv("\"\\ud83d\\ude00\"", SP_TYPE_STRING, "s:\xf0\x9f\x98\x80", false);
    expect_conv("\"\\uDBFF\\uDFFF\"", SP_TYPE_STRING, "s:\xf4\x8f\xbf\xbf", false);
    /* \u0000 puts a NUL in the value */
    const char *name = "k";
    sp_type_t type = SP_TYPE_STRING;
    jscan_t *s = jscan_new(&name, &type, 1);
    const jscan_row_t *row;
    const char l[] = "{\"k\":\"x\\u0000y\"}";
    cr_assert_eq(jscan_line(s, l, sizeof l - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].u.s.len, 3);
    cr_expect(memcmp(row->values[0].u.s.ptr, "x\0y", 3) == 0);
    jscan_destroy(&s);
}

/* Lone surrogates are grammatical JSON without a UTF-8 form: U+FFFD, and
 * what follows is read on its own (json-c's behaviour, which the e2e
 * oracle uses too). */
Test(jscan_string, lone_surrogates_become_replacement_characters)
{
#define FFFD "\xef\xbf\xbd"
    expect_conv("\"\\ud800\"", SP_TYPE_STRING, "s:" FFFD, false);
    expect_conv("\"\\uDFFF\"", SP_TYPE_STRING, "s:" FFFD, false);
    expect_conv("\"a\\ud800b\"", SP_TYPE_STRING, "s:a" FFFD "b", false);
    expect_conv("\"\\ud800\\u0041\"", SP_TYPE_STRING, "s:" FFFD "A", false);
    expect_conv("\"\\ud800\\n\"", SP_TYPE_STRING, "s:" FFFD "\n", false);
    expect_conv("\"\\udc00\\ud800\"", SP_TYPE_STRING, "s:" FFFD FFFD, false);
    expect_conv("\"\\ud800\\ud800\\udc00\"", SP_TYPE_STRING, "s:" FFFD "\xf0\x90\x80\x80", false);
    expect_conv("\"\\ud83d\\ude00\\ude00\"", SP_TYPE_STRING, "s:\xf0\x9f\x98\x80" FFFD, false);
    const char *name = FFFD "k";
    sp_type_t type = SP_TYPE_BIGINT;
    jscan_t *s = jscan_new(&name, &type, 1);
    const jscan_row_t *row;
    const char l[] = "{\"\\udead\\u006b\":5}";
    cr_assert_eq(jscan_line(s, l, sizeof l - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].u.i, 5, "a key with a lone surrogate matches U+FFFD");
    jscan_destroy(&s);
    cr_expect(jscan_valid("\"\\ud800\"", 8));
#undef FFFD
}

Test(jscan_string, escapes_in_keys)
{
    const char *names[] = {"gt", "\xc3\xa9t\xc3\xa9", "a\"b"};
    const sp_type_t types[] = {SP_TYPE_STRING, SP_TYPE_BIGINT, SP_TYPE_BIGINT};
    jscan_t *s = jscan_new(names, types, 3);
    const jscan_row_t *row;
    const char *lines[] = {"{\"\\u0067t\":\"walk\",\"\\u00e9t\\u00e9\":1,\"a\\\"b\":2}",
                           "{\"g\\u0074\":\"walk\",\"\xc3\xa9t\\u00E9\":1,\"a\\u0022b\":2}",
                           "{\"gt\":\"walk\",\"\xc3\xa9t\xc3\xa9\":1,\"a\\\"b\":2}"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(jscan_line(s, lines[i], strlen(lines[i]), &row), JSCAN_ROW, "%s", lines[i]);
        cr_expect_eq(row->values[0].u.s.len, 4, "%s", lines[i]);
        cr_expect(memcmp(row->values[0].u.s.ptr, "walk", 4) == 0, "%s", lines[i]);
        cr_expect_eq(row->values[1].u.i, 1, "%s", lines[i]);
        cr_expect_eq(row->values[2].u.i, 2, "%s", lines[i]);
    }
    /* keys are compared as exact bytes: no case folding, no normalisation */
    const char other[] = "{\"GT\":\"x\",\"g t\":\"y\",\"gt \":\"z\",\"e\\u0301t\\u00e9\":5}";
    cr_assert_eq(jscan_line(s, other, sizeof other - 1, &row), JSCAN_ROW);
    cr_expect_eq(row->values[0].type, SP_TYPE_NULL);
    cr_expect_eq(row->values[1].type, SP_TYPE_NULL);
    jscan_destroy(&s);
}

Test(jscan_string, many_escaped_values_stay_valid)
{
    /* Unescaped values live in the scanner's scratch; several in one line
     * must not overwrite or move each other, even in a long line. Each
     * wanted key follows an unwanted escaped one ("a\tx"). */
    const char *names[] = {"a", "b", "c", "d"};
    const sp_type_t types[] = {SP_TYPE_STRING, SP_TYPE_STRING, SP_TYPE_STRING, SP_TYPE_STRING};
    jscan_t *s = jscan_new(names, types, 4);
    sp_buf_t line = SP_BUF_INIT, want[4] = {SP_BUF_INIT, SP_BUF_INIT, SP_BUF_INIT, SP_BUF_INIT};
    sp_buf_printf(&line, "{");
    for (int c = 0; c < 4; c++) {
        sp_buf_printf(&line, "%s\"\\u00%02x\\t%c\":\"", c ? "," : "", 0x61 + c, 'x');
        sp_buf_printf(&line, "\",\"%c\":\"", 'a' + c);
        for (int k = 0; k < 3000 * (c + 1); k++) {
            sp_buf_printf(&line, k % 7 == 0 ? "\\n" : k % 11 == 0 ? "\\u00e9" : "%c", 'a' + k % 26);
            if (k % 7 == 0)
                sp_buf_putc(&want[c], '\n');
            else if (k % 11 == 0)
                sp_buf_append(&want[c], "\xc3\xa9", 2);
            else
                sp_buf_putc(&want[c], (char)('a' + k % 26));
        }
        sp_buf_printf(&line, "\"");
    }
    sp_buf_printf(&line, "}");
    const jscan_row_t *row;
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(jscan_line(s, line.data, line.len, &row), JSCAN_ROW);
        for (int c = 0; c < 4; c++) {
            cr_expect_eq(row->values[c].u.s.len, want[c].len, "column %d", c);
            cr_expect(memcmp(row->values[c].u.s.ptr, want[c].data, want[c].len) == 0,
                      "column %d", c);
        }
    }
    for (int c = 0; c < 4; c++)
        sp_buf_free(&want[c]);
    sp_buf_free(&line);
    jscan_destroy(&s);
}

Test(jscan_string, invalid_escapes)
{
    MALFORMED("{\"k\":\"\\x\"}", "invalid escape");
    MALFORMED("{\"k\":\"\\U0041\"}", "invalid escape");
    MALFORMED("{\"k\":\"\\'\"}", "invalid escape");
    MALFORMED("{\"k\":\"\\u12\"}", "invalid \\u escape");
    MALFORMED("{\"k\":\"\\u12G4\"}", "invalid \\u escape");
    MALFORMED("{\"k\":\"\\", "end of line");
    MALFORMED("{\"k\":\"\\u00", "invalid \\u escape");
    MALFORMED("{\"k\":\"\\ud800\\u12\"}", "invalid \\u escape");
    MALFORMED("{\"k\":\"\\ud800\\x\"}", "invalid escape");
    MALFORMED("{\"\\q\":1}", "invalid escape");
}

Test(jscan_string, raw_control_characters)
{
    for (int c = 1; c < 0x20; c++) {
        char line[32];
        int n = snprintf(line, sizeof line, "{\"k\":\"a%cb\"}", c);
        expect_malformed(line, (size_t)n, "control character in string");
        n = snprintf(line, sizeof line, "{\"a%cb\":1}", c);
        expect_malformed(line, (size_t)n, "control character in string");
    }
    expect_conv("\"a\x7f" "b\"", SP_TYPE_STRING, "s:a\x7f" "b", false); /* DEL is not one */
}

Test(jscan_string, utf8)
{
    expect_conv("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",
                SP_TYPE_STRING, "s:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf",
                false);
    expect_conv("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\"",
                SP_TYPE_STRING, "s:\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80",
                false);
    MALFORMED("{\"k\":\"\xc0\x80\"}", "invalid UTF-8");         /* overlong NUL */
    MALFORMED("{\"k\":\"\xc1\xbf\"}", "invalid UTF-8");         /* overlong */
    MALFORMED("{\"k\":\"\xe0\x80\x80\"}", "invalid UTF-8");     /* overlong, 3 bytes */
    MALFORMED("{\"k\":\"\xe0\x9f\xbf\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xf0\x80\x80\x80\"}", "invalid UTF-8"); /* overlong, 4 bytes */
    MALFORMED("{\"k\":\"\xf0\x8f\xbf\xbf\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xed\xa0\x80\"}", "invalid UTF-8");     /* U+D800 in UTF-8 */
    MALFORMED("{\"k\":\"\xed\xbf\xbf\"}", "invalid UTF-8");     /* U+DFFF */
    MALFORMED("{\"k\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8"); /* U+110000 */
    MALFORMED("{\"k\":\"\xf5\x80\x80\x80\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xff\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\x80\"}", "invalid UTF-8");             /* stray continuation */
    MALFORMED("{\"k\":\"a\xbf" "b\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xe2\x82\"}", "invalid UTF-8");         /* truncated */
    MALFORMED("{\"k\":\"\xe2\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xf0\x9f\x98\"}", "invalid UTF-8");
    MALFORMED("{\"k\":\"\xc3", "invalid UTF-8");               /* truncated at the end */
    MALFORMED("{\"k\":\"\xf0\x9f", "invalid UTF-8");
    MALFORMED("{\"\xc3\x28\":1}", "invalid UTF-8");             /* in a key */
    MALFORMED("{\"k\":1}\xc3\xa9", NULL);                       /* outside strings */
    MALFORMED("{\xc3\xa9:1}", NULL);
}

/* ---- lines: blank, NUL, CRLF, not objects, truncation, depth --------- */

Test(jscan_line, blank_and_whitespace)
{
    cr_expect_eq(line_status("", 0, NULL, NULL), JSCAN_BLANK);
    cr_expect_eq(line_status(NULL, 0, NULL, NULL), JSCAN_BLANK);
    cr_expect_eq(line_status("\r", 1, NULL, NULL), JSCAN_BLANK);
    cr_expect_eq(line_status(" \t \r", 4, NULL, NULL), JSCAN_BLANK);
    cr_expect_eq(line_status("{\"k\":1}\r", 8, NULL, NULL), JSCAN_ROW, "CRLF line");
    const char *spaced = "  \t{ \"k\" :\t1 , \"j\" : [ 1 , 2 ] }  \r";
    cr_expect_eq(line_status(spaced, strlen(spaced), NULL, NULL), JSCAN_ROW);
    cr_expect_eq(line_status("{}", 2, NULL, NULL), JSCAN_ROW);
    cr_expect_eq(line_status(" { } ", 5, NULL, NULL), JSCAN_ROW);
    cr_expect(!jscan_valid("", 0));
    cr_expect(!jscan_valid(" \n", 2));
    cr_expect(jscan_valid("\n[1,\n2]\n", 8));
    expect_conv(" \"v\" ", SP_TYPE_STRING, "s:v", false);
}

Test(jscan_line, nul_bytes)
{
    MALFORMED("{\"k\":\"a\0b\"}", "NUL byte");
    MALFORMED("{\"k\":1\0}", "NUL byte");
    MALFORMED("{\"k\":1}\0", "NUL byte");
    MALFORMED("\0{\"k\":1}", "NUL byte");
    MALFORMED("{\"k\0\":1}", "NUL byte");
    MALFORMED("{\"k\":tr\0e}", NULL);
    MALFORMED("\0", "NUL byte");
    MALFORMED("{\"k\":12\0" "3}", "NUL byte");
}

Test(jscan_line, not_objects)
{
    MALFORMED("[1,2]", "not a JSON object");
    MALFORMED("1", "not a JSON object");
    MALFORMED("\"s\"", "not a JSON object");
    MALFORMED("null", "not a JSON object");
    MALFORMED(" true ", "not a JSON object");
    MALFORMED("[1,2", "unexpected end of line");
    MALFORMED("[1 2]", "expected ',' or ']' in array");
    MALFORMED("[1] 2", "trailing characters");
    MALFORMED("{\"k\":1} {\"k\":2}", "trailing characters");
    MALFORMED("{\"k\":1}}", "trailing characters");
    cr_expect(jscan_valid("[1,2]", 5));
    cr_expect(jscan_valid(" 1 ", 3));
}

Test(jscan_line, messages_and_offsets)
{
    static const struct {
        const char *line;
        const char *msg;
        size_t off;
    } cases[] = {
        {"{\"a\":1,}", "expected a string key", 7},
        {"{\"a\" 1}", "expected ':' after key", 5},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}' in object", 7},
        {"{\"a\":\"x", "unterminated string", 7},
        {"{\"a\":01}", "leading zero in number", 5},
        {"{\"a\":-}", "invalid number", 6},
        {"{\"a\":1.}", "invalid number: no digit after '.'", 7},
        {"{\"a\":1e}", "invalid number: no digit in exponent", 7},
        {"{\"a\":1e+}", "invalid number: no digit in exponent", 8},
        {"{\"a\":+1}", "unexpected character (expected a JSON value)", 5},
        {"{\"a\":.5}", "unexpected character (expected a JSON value)", 5},
        {"{\"a\":tru}", "invalid literal (expected true, false or null)", 5},
        {"{\"a\":nul", "invalid literal (expected true, false or null)", 5},
        {"{\"a\":[1,]}", "unexpected character (expected a JSON value)", 8},
        {"{\"a\":{\"b\"}}", "expected ':' after key", 9},
        {"{\"a\":[1 2]}", "expected ',' or ']' in array", 8},
        {"{\"a\":1", "unexpected end of line", 6},
        {"{", "unexpected end of line", 1},
        {"{\"a\":", "unexpected end of line", 5},
        {"{'a':1}", "expected a string key", 1},
        {"{\"a\":\"\\z\"}", "invalid escape in string", 7},
        {"{\"a\":NaN}", "unexpected character (expected a JSON value)", 5},
        {"{\"k\":NaN}", "unexpected character (expected a JSON value)", 5},
        {"{\"k\":\"\xe2\x28\xa1\"}", "invalid UTF-8 in string", 6},
        {"{\"k\":\"\x01\"}", "control character in string", 6},
        {"{\"a\":0x1}", "expected ',' or '}' in object", 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *err;
        size_t off;
        jscan_status_t st = line_status(cases[i].line, strlen(cases[i].line), &err, &off);
        cr_expect_eq(st, JSCAN_MALFORMED, "%s", cases[i].line);
        cr_expect(err && strcmp(err, cases[i].msg) == 0 && off == cases[i].off,
                  "%s: error '%s' at %zu, want '%s' at %zu", cases[i].line, err ? err : "-", off,
                  cases[i].msg, cases[i].off);
    }
}

Test(jscan_line, truncated_lines)
{
    const char line[] = "{\"Arrival_Time\":1424686735090,\"Device\":\"nexus4_1\",\"gt\":\"stand\","
                        "\"x\":-5.958191e-1,\"n\":null,\"t\":[true,false,{\"e\":\"\\u00e9\"}]}";
    size_t len = sizeof line - 1;
    cr_expect_eq(line_status(line, len, NULL, NULL), JSCAN_ROW);
    for (size_t cut = 1; cut < len; cut++) {
        const char *err;
        cr_expect_eq(line_status(line, cut, &err, NULL), JSCAN_MALFORMED, "cut at %zu", cut);
        cr_expect(!jscan_valid(line, cut), "cut at %zu", cut);
    }
}

static char *nested(size_t depth, const char *open, const char *inner, const char *close)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < depth; i++)
        sp_buf_printf(&b, "%s", open);
    sp_buf_printf(&b, "%s", inner);
    for (size_t i = 0; i < depth; i++)
        sp_buf_printf(&b, "%s", close);
    return sp_buf_cstr(&b);
}

Test(jscan_line, nesting_depth)
{
    /* The top-level object is one level: 511 more fit, 512 more do not. */
    for (size_t extra = 510; extra <= 513; extra++) {
        char *inner = nested(extra, "[", "1", "]");
        char *line = sp_xasprintf("{\"k\":%s}", inner);
        const char *err;
        jscan_status_t st = line_status(line, strlen(line), &err, NULL);
        if (extra <= JSCAN_MAX_DEPTH - 1)
            cr_expect_eq(st, JSCAN_ROW, "depth %zu", extra + 1);
        else
            cr_expect(st == JSCAN_MALFORMED && strstr(err, "nesting"), "depth %zu", extra + 1);
        cr_expect_eq(jscan_valid(line, strlen(line)), extra + 1 <= JSCAN_MAX_DEPTH);
        cr_expect_eq(ref_valid(line, strlen(line)), extra + 1 <= JSCAN_MAX_DEPTH);
        free(inner);
        free(line);
    }
    char *objs = nested(JSCAN_MAX_DEPTH, "{\"a\":", "1", "}");
    cr_expect(jscan_valid(objs, strlen(objs)));
    cr_expect_eq(line_status(objs, strlen(objs), NULL, NULL), JSCAN_ROW);
    free(objs);
    objs = nested(JSCAN_MAX_DEPTH + 1, "{\"a\":", "1", "}");
    cr_expect(!jscan_valid(objs, strlen(objs)));
    cr_expect_eq(line_status(objs, strlen(objs), NULL, NULL), JSCAN_MALFORMED);
    free(objs);
    /* Far deeper than any stack would take by recursion: still an answer. */
    char *deep = nested(1000000, "[", "", "");
    cr_expect(!jscan_valid(deep, strlen(deep)));
    free(deep);
    deep = nested(1000000, "{\"a\":[", "", "]}");
    cr_expect_eq(line_status(deep, strlen(deep), NULL, NULL), JSCAN_MALFORMED);
    free(deep);
}

Test(jscan_line, long_values)
{
    /* strings and numbers longer than every window and block in jscan */
    for (size_t n = 1; n < 300; n += (n < 70 ? 1 : 37)) {
        sp_buf_t b = SP_BUF_INIT, digits = SP_BUF_INIT;
        for (size_t i = 0; i < n; i++)
            sp_buf_putc(&digits, (char)('1' + i % 9));
        sp_buf_cstr(&digits);
        sp_buf_printf(&b, "{\"s\":\"%s\",\"i\":%s,\"f\":0.%se-%zu,\"k\":%s}", digits.data,
                      digits.data, digits.data, n, n < 19 ? digits.data : "7");
        const char *names[] = {"s", "i", "f", "k"};
        const sp_type_t types[] = {SP_TYPE_STRING, SP_TYPE_BIGINT, SP_TYPE_DOUBLE, SP_TYPE_BIGINT};
        jscan_t *s = jscan_new(names, types, 4);
        const jscan_row_t *row;
        cr_assert_eq(jscan_line(s, b.data, b.len, &row), JSCAN_ROW, "n=%zu", n);
        cr_expect_eq(row->values[0].u.s.len, n);
        cr_expect_eq(row->values[1].type, n <= 19 ? SP_TYPE_BIGINT : SP_TYPE_NULL, "n=%zu", n);
        char *f = sp_xasprintf("0.%se-%zu", digits.data, n);
        double want = strtod(f, NULL);
        cr_expect(memcmp(&row->values[2].u.d, &want, sizeof want) == 0, "%s", f);
        free(f);
        jscan_destroy(&s);
        sp_buf_free(&b);
        sp_buf_free(&digits);
    }
}

/* ---- jscan_fields ----------------------------------------------------------- */

typedef struct fields_seen {
    sp_buf_t text; /* "key=kind;" ... */
    int calls;
} fields_seen_t;

static void fields_cb(void *ctx, const char *key, size_t keylen, jscan_kind_t kind)
{
    static const char *const kinds[] = {"null",   "bool",   "int",  "float",
                                        "string", "object", "array"};
    fields_seen_t *f = ctx;
    f->calls++;
    sp_buf_printf(&f->text, "%.*s=%s;", (int)keylen, key, kinds[kind]);
}

static jscan_status_t fields(const char *line, fields_seen_t *f, const char **err)
{
    f->text.len = 0;
    f->calls = 0;
    sp_buf_printf(&f->text, "%s", "");
    return jscan_fields(line, strlen(line), fields_cb, f, err);
}

Test(jscan_fields, kinds_in_order)
{
    fields_seen_t f = {SP_BUF_INIT, 0};
    const char *err = "unset";
    const char line[] = " {\"n\":null,\"t\":true,\"f\":false,\"i\":-12,\"big\":9223372036854775808,"
                        "\"max\":9223372036854775807,\"d\":1.5,\"e\":1e3,\"s\":\"x\",\"o\":{\"a\":[1]},"
                        "\"a\":[],\"\\u0067t\":\"esc\",\"n\":0} \r";
    cr_assert_eq(jscan_fields(line, sizeof line - 1, fields_cb, &f, &err), JSCAN_ROW);
    cr_expect_null(err);
    cr_expect_str_eq(sp_buf_cstr(&f.text),
                     "n=null;t=bool;f=bool;i=int;big=float;max=int;d=float;e=float;s=string;"
                     "o=object;a=array;gt=string;n=int;");
    sp_buf_free(&f.text);
}

Test(jscan_fields, only_valid_objects_are_visited)
{
    fields_seen_t f = {SP_BUF_INIT, 0};
    const char *err;
    cr_expect_eq(fields("{\"a\":1,\"b\":[1,}", &f, &err), JSCAN_MALFORMED);
    cr_expect_eq(f.calls, 0, "no call for a line that is not valid, even for its first keys");
    cr_expect_str_eq(err, "unexpected character (expected a JSON value)");
    cr_expect_eq(fields("[1,2]", &f, &err), JSCAN_MALFORMED);
    cr_expect_str_eq(err, "not a JSON object");
    cr_expect_eq(f.calls, 0);
    cr_expect_eq(fields("  \r", &f, &err), JSCAN_BLANK);
    cr_expect_null(err);
    cr_expect_eq(f.calls, 0);
    cr_expect_eq(fields("{}", &f, NULL), JSCAN_ROW);
    cr_expect_eq(f.calls, 0);
    cr_expect_eq(fields("{\"\\u00e9\\n\":\"\",\"\":0}", &f, NULL), JSCAN_ROW);
    cr_expect_str_eq(sp_buf_cstr(&f.text), "\xc3\xa9\n=string;=int;");
    sp_buf_free(&f.text);
}

Test(jscan_fields, agrees_with_the_reference)
{
    uint64_t st = 42;
    sp_buf_t b = SP_BUF_INIT;
    fields_seen_t f = {SP_BUF_INIT, 0};
    for (int i = 0; i < 3000; i++) {
        gen_line(&st, &b);
        if (i % 2)
            gen_mutate(&st, &b);
        f.calls = 0;
        jscan_status_t got = jscan_fields(b.data, b.len, fields_cb, &f, NULL);
        jscan_status_t want = ref_status(b.data, b.len);
        char *shown = show(b.data, b.len);
        cr_expect_eq(got, want, "%s", shown);
        if (got != JSCAN_ROW)
            cr_expect_eq(f.calls, 0, "%s", shown);
        free(shown);
    }
    sp_buf_free(&b);
    sp_buf_free(&f.text);
}

/* ---- against the reference: generated and damaged lines ---------------- */

Test(jscan_ref, valid_agrees_on_generated_documents, .timeout = 120)
{
    uint64_t st = 0xC0FFEE;
    sp_buf_t b = SP_BUF_INIT;
    int valid = 0, failures = 0;
    for (int i = 0; i < 20000 && failures < 10; i++) {
        gen_line(&st, &b);
        if (i % 3)
            gen_mutate(&st, &b);
        bool want = ref_valid(b.data, b.len);
        bool got = jscan_valid(b.data, b.len);
        valid += want;
        if (got != want) {
            failures++;
            char *shown = show(b.data, b.len);
            cr_expect_fail("jscan_valid %d, reference %d: %s", got, want, shown);
            free(shown);
        }
    }
    cr_expect_gt(valid, 5000, "the generator makes enough valid documents (%d)", valid);
    cr_expect_gt(20000 - valid, 5000, "and enough invalid ones");
    sp_buf_free(&b);
}

/* A long-lived scanner (which learns the key layout of its lines) against
 * a fresh scanner per line and the reference: same status, values, type
 * errors and error. */
static void lines_agree(uint64_t seed, int nlines, bool (*make)(uint64_t *, sp_buf_t *, int))
{
    const char *const *names = agree_names;
    const sp_type_t *types = agree_types;
    const size_t ncols = AGREE_NCOLS;
    jscan_t *keep = jscan_new(names, types, ncols), *next = jscan_new(names, types, ncols);
    uint64_t st = seed;
    sp_buf_t b = SP_BUF_INIT;
    int failures = 0, rows = 0;
    for (int i = 0; i < nlines && failures < 10; i++) {
        bool damaged = make(&st, &b, i);
        jscan_t *fresh = jscan_new(names, types, ncols);
        const jscan_row_t *r1, *r2;
        jscan_status_t s1 = jscan_line(keep, b.data, b.len, &r1);
        jscan_status_t s2 = jscan_line(fresh, b.data, b.len, &r2);
        jscan_status_t want = ref_status(b.data, b.len);
        char *why = NULL;
        rows += s1 == JSCAN_ROW;
        if (s1 != want || s2 != want || !rows_agree(r1, r2, ncols, &why) ||
            !next_agrees(next, b.data, b.len, s1, r1, ncols, &why)) {
            failures++;
            char *shown = show(b.data, b.len);
            cr_expect_fail("line %d (%s): long-lived %d, fresh %d, reference %d; %s: %s", i,
                           damaged ? "damaged" : "intact", s1, s2, want, why ? why : "", shown);
            free(shown);
        }
        free(why);
        jscan_destroy(&fresh);
    }
    cr_expect_gt(rows, nlines / 10, "enough rows (%d)", rows);
    jscan_destroy(&keep);
    jscan_destroy(&next);
    sp_buf_free(&b);
}

static bool make_random(uint64_t *st, sp_buf_t *b, int i)
{
    gen_line(st, b);
    if (i % 2 == 0)
        return false;
    gen_mutate(st, b);
    return true;
}

/* Lines that mostly share a layout, as real files do: the same keys in
 * the same order with changing values, sometimes a key missing, an extra
 * key, other whitespace, or damage. */
static bool make_layout(uint64_t *st, sp_buf_t *b, int i)
{
    static const char *const keys[] = {"\"Arrival_Time\":", "\"Creation_Time\":",
                                       "\"Device\":", "\"gt\":", "\"x\":", "\"y\" : ",
                                       "\"a_rather_long_key_name_of_40_bytes______\":",
                                       "\"\\u00e9t\\u00e9\":", "\"b\":"};
    const size_t nkeys = sizeof keys / sizeof keys[0];
    b->len = 0;
    unsigned shape = gen_below(st, 20);
    sp_buf_putc(b, '{');
    bool first = true;
    for (size_t k = 0; k < nkeys; k++) {
        if (shape == 1 && k == (size_t)(i % (int)nkeys))
            continue; /* a key missing */
        if (shape == 2 && k == 3) {
            sp_buf_printf(b, "%s\"extra\":[1,\"2\"]", first ? "" : ",");
            first = false;
        }
        if (!first)
            sp_buf_printf(b, shape == 3 ? " , " : ",");
        first = false;
        sp_buf_printf(b, "%s", keys[(shape == 4 && k < 2) ? 1 - k : k]); /* two swapped */
        if (shape == 5)
            sp_buf_printf(b, "  ");
        switch (gen_below(st, 12)) {
        case 0: gen_string(st, b); break;
        case 1: sp_buf_printf(b, "null"); break;
        case 2: gen_members(st, b, 1, gen_below(st, 2), gen_below(st, 3)); break;
        case 3: sp_buf_printf(b, gen_below(st, 2) ? "true" : "false"); break;
        default: gen_number(st, b); break;
        }
    }
    sp_buf_putc(b, '}');
    if (shape == 6) {
        gen_mutate(st, b);
        return true;
    }
    return false;
}

/* The same keys in a new order on most lines: the layout cannot be learnt
 * (and must be dropped and retried without harm). */
static bool make_shuffled(uint64_t *st, sp_buf_t *b, int i)
{
    static const char *const keys[] = {"a", "gt", "x", "b", "Creation_Time", "y", "z", "w"};
    unsigned order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    if (i % 50 < 25) /* runs of shuffled and of steady lines */
        for (unsigned k = 7; k > 0; k--) {
            unsigned j = gen_below(st, k + 1), tmp = order[k];
            order[k] = order[j];
            order[j] = tmp;
        }
    b->len = 0;
    sp_buf_putc(b, '{');
    for (unsigned k = 0; k < 8; k++) {
        sp_buf_printf(b, "%s\"%s\":", k ? "," : "", keys[order[k]]);
        if (gen_below(st, 2))
            gen_string(st, b);
        else
            gen_number(st, b);
    }
    sp_buf_putc(b, '}');
    return false;
}

/* Lines with more keys than the layout memory holds. */
static bool make_wide(uint64_t *st, sp_buf_t *b, int i)
{
    b->len = 0;
    sp_buf_putc(b, '{');
    unsigned n = 250 + gen_below(st, 20);
    for (unsigned k = 0; k < n; k++) {
        sp_buf_printf(b, "%s\"k%u\":%d", k ? "," : "", k, i);
        if (k == n / 2)
            sp_buf_printf(b, ",\"gt\":\"%u\"", gen_below(st, 1000));
    }
    sp_buf_printf(b, ",\"x\":%d.5}", i);
    return false;
}

Test(jscan_ref, lines_agree_on_shuffled_and_wide_lines, .timeout = 120)
{
    lines_agree(13, 5000, make_shuffled);
    lines_agree(17, 600, make_wide);
}

Test(jscan_ref, lines_agree_on_random_lines, .timeout = 120)
{
    lines_agree(7, 20000, make_random);
}

Test(jscan_ref, lines_agree_on_repeating_layouts, .timeout = 120)
{
    lines_agree(11, 20000, make_layout);
}

/* The reference itself, on a few hand-made cases (it is the yardstick). */
Test(jscan_ref, reference_sanity)
{
    const char *ok = "{\"a\":[1,2.5e-3,\"\\ud83d\\ude00\",true,null]}";
    cr_expect(ref_valid(ok, strlen(ok)));
    cr_expect(!ref_valid("{\"a\":01}", 8));
    cr_expect(ref_valid("\"\\ud800\"", 8));
    cr_expect(!ref_valid("\"\\ud80\"", 7));
    cr_expect(!ref_valid("\"\xed\xa0\x80\"", 5));
    cr_expect(!ref_valid("\"\xc0\x80\"", 4));
    cr_expect(!ref_valid("[1,]", 4));
    cr_expect(!ref_valid("", 0));
    cr_expect(ref_valid(" [] ", 4));
}

#endif /* JSCAN_TEST_REF_ONLY */
