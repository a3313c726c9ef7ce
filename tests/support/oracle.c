/* tests/support/oracle.c -- the reference result for spate's tests: a strict
 * RFC 8259 check written here, json-c for the tree and for unescaping, and
 * plain arrays and one small hash table for the groups. Owns its groups and
 * per-line scratch memory; shares no code with the engine (not even
 * spate_common), so a bug there cannot hide itself here. Slow on purpose:
 * meant for test-sized inputs (a few hundred thousand rows). */
#include "oracle.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ORACLE_MAX_DEPTH 512  /* as the engine documents; the top object is 1 */
#define ORACLE_JSONC_DEPTH 1024 /* json-c must never be the one to refuse depth */
#define ORACLE_DIFF_SHOWN 20

/* ---- small helpers: allocation, a string builder ---------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "oracle: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "oracle: out of memory\n");
        abort();
    }
    return p;
}

static char *xmemdup(const void *p, size_t n)
{
    char *q = xrealloc(NULL, n + 1);
    if (n)
        memcpy(q, p, n);
    q[n] = '\0';
    return q;
}

typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf_t;

static void sb_add(strbuf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > b->cap)
            b->cap *= 2;
        b->s = xrealloc(b->s, b->cap);
    }
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(strbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

static void __attribute__((format(printf, 2, 3))) sb_printf(strbuf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* A JSON string literal for bytes s[0..n). */
static void sb_json_string(strbuf_t *b, const char *s, size_t n)
{
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_add(b, &s[i], 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* The shortest %.Ng text that reads back to d, always with a '.' or an
 * exponent; NaN and infinities as JSON strings. */
static void sb_double(strbuf_t *b, double d)
{
    if (isnan(d)) {
        sb_str(b, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        sb_str(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, d);
        if (strtod(t, NULL) == d)
            break;
    }
    sb_str(b, t);
    if (strpbrk(t, ".e") == NULL)
        sb_str(b, ".0");
}

/* ---- the handle --------------------------------------------------------- */

typedef struct column {
    char *name;
    oracle_type_t type; /* 0 until set */
} column_t;

typedef enum kind {
    K_NULL,
    K_FALSE,
    K_TRUE,
    K_INT,   /* integer literal: no fraction, no exponent */
    K_FLOAT, /* any other number */
    K_STRING,
    K_OBJECT,
    K_ARRAY,
} kind_t;

/* A top-level member of the current line: raw spans into the line. */
typedef struct member {
    const char *key; /* between the quotes */
    size_t klen;
    bool key_esc;
    const char *val; /* the whole JSON value text */
    size_t vlen;
    bool val_esc; /* a string value with a backslash */
    kind_t kind;
    char *key_dec; /* unescaped key when key_esc (per-line scratch) */
    size_t key_dec_len;
} member_t;

typedef struct agg_state {
    int64_t count;
    uint64_t isum; /* wraps, as a two's complement int64 sum */
    double dsum, dcomp, dplain;
    oracle_value_t best; /* min/max; is_null until a value */
} agg_state_t;

typedef struct group {
    char *key; /* encoded group values: see key_encode */
    size_t klen;
    uint64_t hash;
    oracle_value_t *keys; /* ngroup values; strings owned */
    agg_state_t *st;      /* naggs states */
} group_t;

typedef struct query_agg {
    oracle_func_t func;
    int col; /* index into cols; -1 for COUNT_STAR */
} query_agg_t;

struct oracle {
    column_t *cols;
    size_t ncols;
    int *group_col; /* ngroup indices into cols */
    size_t ngroup;
    query_agg_t *aggs;
    size_t naggs;
    oracle_filter_fn filter;
    void *filter_ctx;

    bool prepared;   /* the query was checked and data may come */
    char *query_err; /* why the query cannot run; every add fails with it */

    group_t *groups;
    size_t ngroups, cap_groups;
    size_t *slots; /* open addressing: group index + 1, 0 = empty */
    size_t nslots;

    oracle_stats_t st;
    struct json_tokener *tok;

    /* the current line */
    member_t *members;
    size_t nmembers, cap_members;
    char **scratch; /* malloc'd strings freed at the next line */
    size_t nscratch, cap_scratch;

    char err[1024];
};

struct oracle_row {
    oracle_t *o;
    struct json_object *json;
};

static void __attribute__((format(printf, 2, 3))) set_err(oracle_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
}

const char *oracle_error(const oracle_t *o) { return o->err; }

static int col_find(const oracle_t *o, const char *name)
{
    for (size_t i = 0; i < o->ncols; i++)
        if (strcmp(o->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int col_intern(oracle_t *o, const char *name)
{
    int i = col_find(o, name);
    if (i >= 0)
        return i;
    o->cols = xrealloc(o->cols, (o->ncols + 1) * sizeof *o->cols);
    o->cols[o->ncols] = (column_t){.name = xmemdup(name, strlen(name)), .type = 0};
    return (int)o->ncols++;
}

static group_t *group_get(oracle_t *o, const char *key, size_t klen, const oracle_value_t *keys);

static const char *func_name(oracle_func_t f)
{
    switch (f) {
    case ORACLE_COUNT_STAR: return "count(*)";
    case ORACLE_COUNT: return "count";
    case ORACLE_SUM: return "sum";
    case ORACLE_MIN: return "min";
    case ORACLE_MAX: return "max";
    case ORACLE_AVG: return "avg";
    }
    return "?";
}

static const char *type_name(oracle_type_t t)
{
    switch (t) {
    case ORACLE_STRING: return "STRING";
    case ORACLE_BIGINT: return "BIGINT";
    case ORACLE_DOUBLE: return "DOUBLE";
    case ORACLE_BOOLEAN: return "BOOLEAN";
    }
    return "no type";
}

oracle_t *oracle_new(const char *const *group_cols, size_t ngroup, const oracle_agg_t *aggs,
                     size_t naggs, oracle_filter_fn filter, void *filter_ctx)
{
    oracle_t *o = xcalloc(1, sizeof *o);
    o->filter = filter;
    o->filter_ctx = filter_ctx;
    o->group_col = xcalloc(ngroup, sizeof *o->group_col);
    o->ngroup = ngroup;
    strbuf_t why = {0};
    for (size_t i = 0; i < ngroup; i++) {
        if (group_cols == NULL || group_cols[i] == NULL) {
            sb_printf(&why, "group column %zu is NULL; ", i);
            o->group_col[i] = -1;
        } else {
            o->group_col[i] = col_intern(o, group_cols[i]);
        }
    }
    o->aggs = xcalloc(naggs, sizeof *o->aggs);
    o->naggs = naggs;
    for (size_t i = 0; i < naggs; i++) {
        o->aggs[i].func = aggs[i].func;
        o->aggs[i].col = -1;
        if (aggs[i].func < ORACLE_COUNT_STAR || aggs[i].func > ORACLE_AVG)
            sb_printf(&why, "aggregate %zu has an unknown function %d; ", i, (int)aggs[i].func);
        else if (aggs[i].func != ORACLE_COUNT_STAR && aggs[i].col == NULL)
            sb_printf(&why, "aggregate %zu (%s) has no column; ", i, func_name(aggs[i].func));
        else if (aggs[i].col != NULL)
            o->aggs[i].col = col_intern(o, aggs[i].col);
    }
    o->query_err = why.s; /* NULL when all was well */
    if (ngroup == 0) /* a global aggregate has its one row even without data */
        group_get(o, "", 0, NULL);
    o->tok = json_tokener_new_ex(ORACLE_JSONC_DEPTH);
    if (o->tok == NULL) {
        fprintf(stderr, "oracle: json_tokener_new_ex failed\n");
        abort();
    }
    json_tokener_set_flags(o->tok, JSON_TOKENER_STRICT);
    return o;
}

static void value_free(oracle_value_t *v)
{
    if (!v->is_null && v->type == ORACLE_STRING)
        free((char *)v->u.s.ptr);
    v->is_null = true;
}

static void scratch_reset(oracle_t *o)
{
    for (size_t i = 0; i < o->nscratch; i++)
        free(o->scratch[i]);
    o->nscratch = 0;
}

void oracle_destroy(oracle_t **op)
{
    if (op == NULL || *op == NULL)
        return;
    oracle_t *o = *op;
    for (size_t g = 0; g < o->ngroups; g++) {
        group_t *gr = &o->groups[g];
        for (size_t i = 0; i < o->ngroup; i++)
            value_free(&gr->keys[i]);
        for (size_t i = 0; i < o->naggs; i++)
            value_free(&gr->st[i].best);
        free(gr->keys);
        free(gr->st);
        free(gr->key);
    }
    free(o->groups);
    free(o->slots);
    for (size_t i = 0; i < o->ncols; i++)
        free(o->cols[i].name);
    free(o->cols);
    free(o->group_col);
    free(o->aggs);
    free(o->query_err);
    scratch_reset(o);
    free(o->scratch);
    free(o->members);
    json_tokener_free(o->tok);
    free(o);
    *op = NULL;
}

/* ---- types ---------------------------------------------------------------- */

int oracle_set_type(oracle_t *o, const char *col, oracle_type_t type)
{
    if (o->prepared) {
        set_err(o, "oracle_set_type(%s): data was already added; set types first", col);
        return -1;
    }
    if (type < ORACLE_STRING || type > ORACLE_BOOLEAN) {
        set_err(o, "oracle_set_type(%s): unknown type %d", col, (int)type);
        return -1;
    }
    int i = col_intern(o, col); /* may move o->cols */
    o->cols[i].type = type;
    return 0;
}

static int parse_type(const char *s, size_t n, oracle_type_t *out)
{
    static const struct {
        const char *name;
        oracle_type_t type;
    } names[] = {
        {"STRING", ORACLE_STRING},  {"VARCHAR", ORACLE_STRING}, {"TEXT", ORACLE_STRING},
        {"BIGINT", ORACLE_BIGINT},  {"LONG", ORACLE_BIGINT},    {"INT", ORACLE_BIGINT},
        {"INTEGER", ORACLE_BIGINT}, {"DOUBLE", ORACLE_DOUBLE},  {"FLOAT", ORACLE_DOUBLE},
        {"REAL", ORACLE_DOUBLE},    {"BOOLEAN", ORACLE_BOOLEAN}, {"BOOL", ORACLE_BOOLEAN},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncasecmp(names[i].name, s, n) == 0) {
            *out = names[i].type;
            return 0;
        }
    return -1;
}

int oracle_set_schema(oracle_t *o, const char *text)
{
    const char *p = text;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        const char *name = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t nlen = (size_t)(p - name);
        while (isspace((unsigned char)*p))
            p++;
        const char *type = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t tlen = (size_t)(p - type);
        while (isspace((unsigned char)*p))
            p++;
        oracle_type_t t;
        if (nlen == 0 || tlen == 0 || (*p != ',' && *p != '\0')) {
            set_err(o, "schema '%s': at offset %zu: expected 'name TYPE'", text,
                    (size_t)(name - text));
            return -1;
        }
        if (parse_type(type, tlen, &t) != 0) {
            set_err(o, "schema '%s': unknown type '%.*s'", text, (int)tlen, type);
            return -1;
        }
        if (nlen >= 2 && name[0] == '`' && name[nlen - 1] == '`') {
            name++;
            nlen -= 2;
        }
        char *col = xmemdup(name, nlen);
        int rc = oracle_set_type(o, col, t);
        free(col);
        if (rc != 0)
            return rc;
        if (*p == '\0')
            return 0;
        p++;
    }
}

/* Check the query once, before the first data. */
static int prepare(oracle_t *o);

/* ---- the strict RFC 8259 check ---------------------------------------------
 * Grammar, UTF-8 and depth, byte by byte; json-c is stricter than needed in
 * nothing we use and laxer in several things (see oracle.h), so this check
 * decides what a valid line is. It also records the top-level members. */

typedef struct vscan {
    const unsigned char *p, *end;
    oracle_t *o;
} vscan_t;

static inline int peek(const vscan_t *s) { return s->p < s->end ? *s->p : -1; }

static void skip_ws(vscan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF) starting at p, or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static bool v_string(vscan_t *s, bool *esc)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c == '\\') {
            *esc = true;
            if (++s->p >= s->end)
                return false;
            c = *s->p;
            if (c == 'u') {
                if (s->end - s->p < 5)
                    return false;
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit(s->p[i]))
                        return false;
                s->p += 5;
            } else if (c != '\0' && strchr("\"\\/bfnrt", (int)c) != NULL) {
                s->p++;
            } else {
                return false;
            }
        } else if (c < 0x20) {
            return false;
        } else if (c < 0x80) {
            s->p++;
        } else {
            size_t n = utf8_len(s->p, s->end);
            if (n == 0)
                return false;
            s->p += n;
        }
    }
    return false;
}

static bool v_digits(vscan_t *s)
{
    if (peek(s) < '0' || peek(s) > '9')
        return false;
    while (peek(s) >= '0' && peek(s) <= '9')
        s->p++;
    return true;
}

static bool v_number(vscan_t *s, bool *is_int)
{
    *is_int = true;
    if (peek(s) == '-')
        s->p++;
    if (peek(s) == '0')
        s->p++;
    else if (!v_digits(s))
        return false;
    if (peek(s) == '.') {
        s->p++;
        *is_int = false;
        if (!v_digits(s))
            return false;
    }
    if (peek(s) == 'e' || peek(s) == 'E') {
        s->p++;
        *is_int = false;
        if (peek(s) == '+' || peek(s) == '-')
            s->p++;
        if (!v_digits(s))
            return false;
    }
    return true;
}

static bool v_literal(vscan_t *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool v_value(vscan_t *s, int depth, kind_t *kind, bool *esc);

/* An object or array at nesting level depth; members recorded when top. */
static bool v_container(vscan_t *s, int depth, bool top)
{
    bool is_obj = *s->p == '{';
    char close = is_obj ? '}' : ']';
    if (depth > ORACLE_MAX_DEPTH)
        return false;
    s->p++;
    skip_ws(s);
    if (peek(s) == close) {
        s->p++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        member_t m = {0};
        if (is_obj) {
            if (peek(s) != '"')
                return false;
            m.key = (const char *)s->p + 1;
            if (!v_string(s, &m.key_esc))
                return false;
            m.klen = (size_t)((const char *)s->p - 1 - m.key);
            skip_ws(s);
            if (peek(s) != ':')
                return false;
            s->p++;
            skip_ws(s);
        }
        m.val = (const char *)s->p;
        if (!v_value(s, depth, &m.kind, &m.val_esc))
            return false;
        m.vlen = (size_t)((const char *)s->p - m.val);
        if (top) {
            oracle_t *o = s->o;
            if (o->nmembers == o->cap_members) {
                o->cap_members = o->cap_members ? 2 * o->cap_members : 16;
                o->members = xrealloc(o->members, o->cap_members * sizeof *o->members);
            }
            o->members[o->nmembers++] = m;
        }
        skip_ws(s);
        if (peek(s) == ',') {
            s->p++;
            continue;
        }
        if (peek(s) == close) {
            s->p++;
            return true;
        }
        return false;
    }
}

static bool v_value(vscan_t *s, int depth, kind_t *kind, bool *esc)
{
    bool is_int;
    switch (peek(s)) {
    case '{': *kind = K_OBJECT; return v_container(s, depth + 1, false);
    case '[': *kind = K_ARRAY; return v_container(s, depth + 1, false);
    case '"': *kind = K_STRING; return v_string(s, esc);
    case 't': *kind = K_TRUE; return v_literal(s, "true");
    case 'f': *kind = K_FALSE; return v_literal(s, "false");
    case 'n': *kind = K_NULL; return v_literal(s, "null");
    default:
        if (peek(s) != '-' && (peek(s) < '0' || peek(s) > '9'))
            return false;
        if (!v_number(s, &is_int))
            return false;
        *kind = is_int ? K_INT : K_FLOAT;
        return true;
    }
}

/* True when line is exactly one JSON object; its members are recorded. */
static bool rfc_object(oracle_t *o, const char *line, size_t len)
{
    vscan_t s = {(const unsigned char *)line, (const unsigned char *)line + len, o};
    o->nmembers = 0;
    skip_ws(&s);
    if (peek(&s) != '{' || !v_container(&s, 1, true))
        return false;
    skip_ws(&s);
    return s.p == s.end;
}

/* ---- values of the current line ------------------------------------------ */

static char *scratch_keep(oracle_t *o, char *p)
{
    if (o->nscratch == o->cap_scratch) {
        o->cap_scratch = o->cap_scratch ? 2 * o->cap_scratch : 16;
        o->scratch = xrealloc(o->scratch, o->cap_scratch * sizeof *o->scratch);
    }
    return o->scratch[o->nscratch++] = p;
}

/* Unescape a JSON string token (quotes included) with json-c; the bytes go
 * to per-line scratch. 0, or -1 if json-c refuses it (a disagreement). */
static int jc_unescape(oracle_t *o, const char *tok, size_t len, const char **out, size_t *outlen)
{
    json_tokener_reset(o->tok);
    struct json_object *j = json_tokener_parse_ex(o->tok, tok, (int)len);
    if (j == NULL || json_object_get_type(j) != json_type_string) {
        json_object_put(j);
        return -1;
    }
    *outlen = (size_t)json_object_get_string_len(j);
    *out = scratch_keep(o, xmemdup(json_object_get_string(j), *outlen));
    json_object_put(j);
    return 0;
}

/* The member for key name (exact bytes after unescaping), the last one when
 * the key repeats; NULL when absent. -1 in *bad when unescaping failed. */
static const member_t *member_find(oracle_t *o, const char *name, size_t nlen, int *bad)
{
    for (size_t i = o->nmembers; i-- > 0;) {
        member_t *m = &o->members[i];
        if (m->key_esc && m->key_dec == NULL) {
            const char *k;
            size_t klen;
            if (jc_unescape(o, m->key - 1, m->klen + 2, &k, &klen) != 0) {
                *bad = -1;
                return NULL;
            }
            m->key_dec = (char *)k;
            m->key_dec_len = klen;
        }
        const char *k = m->key_esc ? m->key_dec : m->key;
        size_t klen = m->key_esc ? m->key_dec_len : m->klen;
        if (klen == nlen && memcmp(k, name, nlen) == 0)
            return m;
    }
    return NULL;
}

/* Convert member m (NULL: absent) to type. 0 (out set, maybe NULL), 1 for a
 * wrong type (out NULL), -1 when json-c could not unescape a string. */
static int convert(oracle_t *o, const member_t *m, oracle_type_t type, oracle_value_t *out)
{
    *out = (oracle_value_t){.is_null = true, .type = type};
    if (m == NULL || m->kind == K_NULL)
        return 0;
    const char *str = NULL;
    size_t slen = 0;
    if (m->kind == K_STRING) {
        if (!m->val_esc) {
            str = m->val + 1;
            slen = m->vlen - 2;
        } else if (jc_unescape(o, m->val, m->vlen, &str, &slen) != 0) {
            return -1;
        }
    }
    char num[64];
    switch (type) {
    case ORACLE_STRING:
        if (m->kind != K_STRING) { /* any other value: its JSON text */
            str = m->val;
            slen = m->vlen;
        }
        out->u.s.ptr = str;
        out->u.s.len = slen;
        break;
    case ORACLE_BIGINT: {
        if (m->kind != K_INT || m->vlen >= sizeof num)
            return 1;
        memcpy(num, m->val, m->vlen);
        num[m->vlen] = '\0';
        errno = 0;
        long long v = strtoll(num, NULL, 10);
        if (errno == ERANGE)
            return 1;
        out->u.i = v;
        break;
    }
    case ORACLE_DOUBLE:
        if (m->kind == K_INT || m->kind == K_FLOAT) {
            char *copy = xmemdup(m->val, m->vlen);
            out->u.d = strtod(copy, NULL);
            free(copy);
        } else if (m->kind == K_STRING && slen == 3 && memcmp(str, "NaN", 3) == 0) {
            out->u.d = NAN;
        } else if (m->kind == K_STRING && slen == 8 && memcmp(str, "Infinity", 8) == 0) {
            out->u.d = INFINITY;
        } else if (m->kind == K_STRING && slen == 9 && memcmp(str, "-Infinity", 9) == 0) {
            out->u.d = -INFINITY;
        } else {
            return 1;
        }
        break;
    case ORACLE_BOOLEAN:
        if (m->kind != K_TRUE && m->kind != K_FALSE)
            return 1;
        out->u.b = m->kind == K_TRUE;
        break;
    }
    out->is_null = false;
    return 0;
}

int oracle_row_get(const oracle_row_t *row, const char *col, oracle_type_t type,
                   oracle_value_t *out)
{
    int bad = 0;
    const member_t *m = member_find(row->o, col, strlen(col), &bad);
    int rc = bad ? bad : convert(row->o, m, type, out);
    if (rc != 0) /* json-c refusing an escape we accepted shows as NULL here */
        *out = (oracle_value_t){.is_null = true, .type = type};
    return rc == 1 ? 1 : 0;
}

struct json_object *oracle_row_json(const oracle_row_t *row) { return row->json; }

/* ---- groups ---------------------------------------------------------------- */

/* Key bytes: per value a tag (0 NULL, 1 false, 2 true, 3 BIGINT, 4 DOUBLE,
 * 5 STRING) then 8 bytes, or for strings an 8-byte length and the bytes.
 * Doubles are normalised first: -0.0 as 0.0, every NaN as one NaN. */
static void key_encode(strbuf_t *b, const oracle_value_t *v)
{
    unsigned char tag;
    if (v->is_null) {
        tag = 0;
        sb_add(b, &tag, 1);
        return;
    }
    switch (v->type) {
    case ORACLE_BOOLEAN:
        tag = v->u.b ? 2 : 1;
        sb_add(b, &tag, 1);
        break;
    case ORACLE_BIGINT:
        tag = 3;
        sb_add(b, &tag, 1);
        sb_add(b, &v->u.i, 8);
        break;
    case ORACLE_DOUBLE: {
        double d = v->u.d == 0 ? 0.0 : isnan(v->u.d) ? NAN : v->u.d;
        tag = 4;
        sb_add(b, &tag, 1);
        sb_add(b, &d, 8);
        break;
    }
    case ORACLE_STRING: {
        uint64_t n = v->u.s.len;
        tag = 5;
        sb_add(b, &tag, 1);
        sb_add(b, &n, 8);
        sb_add(b, v->u.s.ptr, v->u.s.len);
        break;
    }
    }
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static oracle_value_t value_copy(const oracle_value_t *v)
{
    oracle_value_t c = *v;
    if (!v->is_null && v->type == ORACLE_STRING)
        c.u.s.ptr = xmemdup(v->u.s.ptr, v->u.s.len);
    return c;
}

static void slots_rebuild(oracle_t *o, size_t nslots)
{
    free(o->slots);
    o->slots = xcalloc(nslots, sizeof *o->slots);
    o->nslots = nslots;
    for (size_t g = 0; g < o->ngroups; g++) {
        size_t i = o->groups[g].hash & (nslots - 1);
        while (o->slots[i] != 0)
            i = (i + 1) & (nslots - 1);
        o->slots[i] = g + 1;
    }
}

/* The index of the group with this encoded key, or -1. */
static ptrdiff_t group_lookup(const oracle_t *o, const char *key, size_t klen, uint64_t h)
{
    if (o->nslots == 0)
        return -1;
    for (size_t i = h & (o->nslots - 1); o->slots[i] != 0; i = (i + 1) & (o->nslots - 1)) {
        const group_t *g = &o->groups[o->slots[i] - 1];
        if (g->hash == h && g->klen == klen && memcmp(g->key, key, klen) == 0)
            return (ptrdiff_t)o->slots[i] - 1;
    }
    return -1;
}

/* The group for the encoded key, made from keys when it is new. */
static group_t *group_get(oracle_t *o, const char *key, size_t klen, const oracle_value_t *keys)
{
    uint64_t h = fnv1a(key, klen);
    ptrdiff_t found = group_lookup(o, key, klen, h);
    if (found >= 0)
        return &o->groups[found];
    if (o->ngroups == o->cap_groups) {
        o->cap_groups = o->cap_groups ? 2 * o->cap_groups : 64;
        o->groups = xrealloc(o->groups, o->cap_groups * sizeof *o->groups);
    }
    group_t *g = &o->groups[o->ngroups++];
    g->key = xmemdup(key, klen);
    g->klen = klen;
    g->hash = h;
    g->keys = xcalloc(o->ngroup, sizeof *g->keys);
    for (size_t i = 0; i < o->ngroup; i++)
        g->keys[i] = value_copy(&keys[i]);
    g->st = xcalloc(o->naggs, sizeof *g->st);
    for (size_t i = 0; i < o->naggs; i++)
        g->st[i].best.is_null = true;
    if (2 * o->ngroups > o->nslots)
        slots_rebuild(o, o->nslots ? 2 * o->nslots : 128);
    else {
        size_t i = h & (o->nslots - 1);
        while (o->slots[i] != 0)
            i = (i + 1) & (o->nslots - 1);
        o->slots[i] = o->ngroups;
    }
    return g;
}

/* Total order of min/max and of sorted output: NULL first, strings by
 * bytes, false < true, NaN above every other double. */
static int value_cmp(const oracle_value_t *a, const oracle_value_t *b)
{
    if (a->is_null || b->is_null)
        return (int)!a->is_null - (int)!b->is_null;
    if (a->type != b->type)
        return (int)a->type - (int)b->type;
    switch (a->type) {
    case ORACLE_BIGINT: return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    case ORACLE_BOOLEAN: return (int)a->u.b - (int)b->u.b;
    case ORACLE_DOUBLE:
        if (isnan(a->u.d) || isnan(b->u.d))
            return (int)(bool)isnan(a->u.d) - (int)(bool)isnan(b->u.d);
        return (a->u.d > b->u.d) - (a->u.d < b->u.d);
    case ORACLE_STRING: {
        size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
        if (c != 0)
            return c;
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    }
    return 0;
}

/* Compensated (Neumaier) summation, with the plain sum kept for when an
 * infinity or NaN makes the compensation meaningless. */
static void dsum_add(agg_state_t *s, double x)
{
    double t = s->dsum + x;
    if (fabs(s->dsum) >= fabs(x))
        s->dcomp += (s->dsum - t) + x;
    else
        s->dcomp += (x - t) + s->dsum;
    s->dsum = t;
    s->dplain += x;
}

static double dsum_result(const agg_state_t *s)
{
    return isfinite(s->dplain) ? s->dsum + s->dcomp : s->dplain;
}

static void agg_update(const query_agg_t *a, agg_state_t *s, const oracle_value_t *v)
{
    if (a->func == ORACLE_COUNT_STAR) {
        s->count++;
        return;
    }
    if (v->is_null)
        return;
    s->count++;
    switch (a->func) {
    case ORACLE_SUM:
    case ORACLE_AVG:
        if (v->type == ORACLE_BIGINT) {
            s->isum += (uint64_t)v->u.i;
            dsum_add(s, (double)v->u.i);
        } else {
            dsum_add(s, v->u.d);
        }
        break;
    case ORACLE_MIN:
    case ORACLE_MAX: {
        int c = s->best.is_null ? 0 : value_cmp(v, &s->best);
        if (s->best.is_null || (a->func == ORACLE_MIN ? c < 0 : c > 0)) {
            value_free(&s->best);
            s->best = value_copy(v);
        }
        break;
    }
    default:
        break;
    }
}

static oracle_type_t result_type(const oracle_t *o, size_t col)
{
    if (col < o->ngroup)
        return o->cols[o->group_col[col]].type;
    const query_agg_t *a = &o->aggs[col - o->ngroup];
    switch (a->func) {
    case ORACLE_COUNT_STAR:
    case ORACLE_COUNT: return ORACLE_BIGINT;
    case ORACLE_AVG: return ORACLE_DOUBLE;
    default: return o->cols[a->col].type;
    }
}

int oracle_group_value(const oracle_t *o, size_t g, size_t col, oracle_value_t *out)
{
    if (g >= o->ngroups || col >= o->ngroup + o->naggs)
        return -1;
    const group_t *gr = &o->groups[g];
    if (col < o->ngroup) {
        *out = gr->keys[col];
        return 0;
    }
    const query_agg_t *a = &o->aggs[col - o->ngroup];
    const agg_state_t *s = &gr->st[col - o->ngroup];
    oracle_type_t t = result_type(o, col);
    *out = (oracle_value_t){.is_null = false, .type = t};
    switch (a->func) {
    case ORACLE_COUNT_STAR:
    case ORACLE_COUNT: out->u.i = s->count; break;
    case ORACLE_SUM:
        if (s->count == 0)
            out->is_null = true;
        else if (t == ORACLE_BIGINT)
            out->u.i = (int64_t)s->isum;
        else
            out->u.d = dsum_result(s);
        break;
    case ORACLE_AVG:
        if (s->count == 0)
            out->is_null = true;
        else
            out->u.d = dsum_result(s) / (double)s->count;
        break;
    case ORACLE_MIN:
    case ORACLE_MAX: *out = s->best; break;
    }
    return 0;
}

/* ---- reading lines --------------------------------------------------------- */

static int prepare(oracle_t *o)
{
    if (o->prepared)
        return 0;
    strbuf_t why = {0};
    if (o->query_err)
        sb_str(&why, o->query_err);
    for (size_t i = 0; i < o->ngroup; i++)
        if (o->group_col[i] >= 0 && o->cols[o->group_col[i]].type == 0)
            sb_printf(&why, "group column '%s' has no type; ", o->cols[o->group_col[i]].name);
    for (size_t i = 0; i < o->naggs; i++) {
        const query_agg_t *a = &o->aggs[i];
        if (a->col < 0)
            continue;
        oracle_type_t t = o->cols[a->col].type;
        if (t == 0)
            sb_printf(&why, "%s(%s) reads a column with no type; ", func_name(a->func),
                      o->cols[a->col].name);
        else if ((a->func == ORACLE_SUM || a->func == ORACLE_AVG) && t != ORACLE_BIGINT &&
                 t != ORACLE_DOUBLE)
            sb_printf(&why, "%s(%s): the column is %s, not BIGINT or DOUBLE; ",
                      func_name(a->func), o->cols[a->col].name, type_name(t));
    }
    if (why.s != NULL) {
        set_err(o, "oracle: invalid query: %s(set types with oracle_set_type or "
                   "oracle_set_schema before adding data)", why.s);
        free(why.s);
        return -1;
    }
    o->prepared = true;
    return 0;
}

static bool is_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

/* json-c's strict parse of a whole line as one object; NULL when it
 * refuses. (What follows the object may only be whitespace.) */
static struct json_object *jc_parse_line(struct json_tokener *tok, const char *line, size_t len)
{
    json_tokener_reset(tok);
    struct json_object *j = json_tokener_parse_ex(tok, line, (int)len);
    size_t end = json_tokener_get_parse_end(tok);
    if (j == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_object_get_type(j) != json_type_object || !is_blank(line + end, len - end)) {
        json_object_put(j);
        return NULL;
    }
    return j;
}

static void add_line(oracle_t *o, const char *line, size_t len)
{
    o->st.lines++;
    if (is_blank(line, len)) {
        o->st.blank++;
        return;
    }
    scratch_reset(o);
    if (!rfc_object(o, line, len)) {
        o->st.malformed++;
        return;
    }
    struct json_object *json = jc_parse_line(o->tok, line, len);
    if (json == NULL) {
        o->st.parser_disagreements++;
        o->st.malformed++;
        return;
    }
    o->st.rows++;
    oracle_row_t row = {o, json};
    if (o->filter != NULL && !o->filter(&row, o->filter_ctx)) {
        json_object_put(json);
        return;
    }
    o->st.selected++;

    /* Values of the group columns, then of each aggregate's column. */
    size_t nvals = o->ngroup + o->naggs;
    oracle_value_t vals[nvals ? nvals : 1];
    bool type_error = false;
    for (size_t i = 0; i < nvals; i++) {
        int c = i < o->ngroup ? o->group_col[i] : o->aggs[i - o->ngroup].col;
        vals[i] = (oracle_value_t){.is_null = true};
        if (c < 0)
            continue;
        const column_t *col = &o->cols[c];
        int bad = 0;
        const member_t *m = member_find(o, col->name, strlen(col->name), &bad);
        int rc = bad ? bad : convert(o, m, col->type, &vals[i]);
        if (rc < 0) { /* json-c refused an escape the RFC check accepted */
            o->st.parser_disagreements++;
            o->st.rows--;
            o->st.selected--;
            o->st.malformed++;
            json_object_put(json);
            return;
        }
        type_error |= rc == 1;
    }
    o->st.type_errors += type_error;
    strbuf_t key = {0};
    for (size_t i = 0; i < o->ngroup; i++)
        key_encode(&key, &vals[i]);
    group_t *g = group_get(o, key.s ? key.s : "", key.len, vals);
    free(key.s);
    for (size_t i = 0; i < o->naggs; i++)
        agg_update(&o->aggs[i], &g->st[i], &vals[o->ngroup + i]);
    json_object_put(json);
}

int oracle_add_text(oracle_t *o, const char *text, size_t len)
{
    if (prepare(o) != 0)
        return -1;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        add_line(o, p, (size_t)(stop - p));
        p = nl ? nl + 1 : end;
    }
    scratch_reset(o);
    return 0;
}

int oracle_add_file(oracle_t *o, const char *path)
{
    if (prepare(o) != 0)
        return -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        set_err(o, "oracle: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    strbuf_t b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_add(&b, chunk, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        set_err(o, "oracle: cannot read %s", path);
        free(b.s);
        return -1;
    }
    int rc = oracle_add_text(o, b.s ? b.s : "", b.len);
    free(b.s);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int oracle_add_dir(oracle_t *o, const char *dir)
{
    if (prepare(o) != 0)
        return -1;
    DIR *d = opendir(dir);
    if (d == NULL) {
        set_err(o, "oracle: cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_')
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xmemdup(e->d_name, strlen(e->d_name));
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = xrealloc(NULL, strlen(dir) + strlen(names[i]) + 2);
        sprintf(path, "%s/%s", dir, names[i]);
        struct stat st;
        if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = oracle_add_file(o, path);
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

oracle_stats_t oracle_stats(const oracle_t *o) { return o->st; }
uint64_t oracle_rows(const oracle_t *o) { return o->st.rows; }
uint64_t oracle_malformed(const oracle_t *o) { return o->st.malformed; }

size_t oracle_groups(const oracle_t *o) { return o->ngroups; }

/* ---- output and comparison -------------------------------------------------- */

static void sb_value(strbuf_t *b, const oracle_value_t *v)
{
    if (v->is_null) {
        sb_str(b, "null");
        return;
    }
    switch (v->type) {
    case ORACLE_STRING: sb_json_string(b, v->u.s.ptr, v->u.s.len); break;
    case ORACLE_BIGINT: sb_printf(b, "%" PRId64, v->u.i); break;
    case ORACLE_DOUBLE: sb_double(b, v->u.d); break;
    case ORACLE_BOOLEAN: sb_str(b, v->u.b ? "true" : "false"); break;
    }
}

static const oracle_t *sort_oracle; /* qsort has no context argument */

static int cmp_groups(const void *pa, const void *pb)
{
    const group_t *a = &sort_oracle->groups[*(const size_t *)pa];
    const group_t *b = &sort_oracle->groups[*(const size_t *)pb];
    for (size_t i = 0; i < sort_oracle->ngroup; i++) {
        int c = value_cmp(&a->keys[i], &b->keys[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Group indices in key order, malloc'd. */
static size_t *sorted_groups(const oracle_t *o)
{
    size_t *idx = xcalloc(o->ngroups, sizeof *idx);
    for (size_t i = 0; i < o->ngroups; i++)
        idx[i] = i;
    sort_oracle = o;
    qsort(idx, o->ngroups, sizeof *idx, cmp_groups);
    sort_oracle = NULL;
    return idx;
}

/* {gt="stand", User=null}: a group as the report names it. */
static void sb_group_name(strbuf_t *b, const oracle_t *o, const char *const *names,
                          const oracle_value_t *keys)
{
    sb_str(b, "{");
    for (size_t i = 0; i < o->ngroup; i++) {
        sb_printf(b, "%s%s=", i ? ", " : "", names[i]);
        sb_value(b, &keys[i]);
    }
    sb_str(b, "}");
}

char *oracle_to_jsonl(const oracle_t *o, const char *const *out_names)
{
    strbuf_t b = {0};
    sb_add(&b, "", 0);
    size_t *idx = sorted_groups(o);
    for (size_t k = 0; k < o->ngroups; k++) {
        sb_str(&b, "{");
        for (size_t c = 0; c < o->ngroup + o->naggs; c++) {
            oracle_value_t v;
            oracle_group_value(o, idx[k], c, &v);
            if (c)
                sb_str(&b, ",");
            sb_json_string(&b, out_names[c], strlen(out_names[c]));
            sb_str(&b, ":");
            sb_value(&b, &v);
        }
        sb_str(&b, "}\n");
    }
    free(idx);
    return b.s;
}

typedef struct diff {
    strbuf_t shown;
    size_t count;
} diff_t;

static void __attribute__((format(printf, 2, 3))) diff_add(diff_t *d, const char *fmt, ...)
{
    if (d->count++ >= ORACLE_DIFF_SHOWN)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sb_printf(&d->shown, "  - %s\n", msg);
}

static const char *jtext(struct json_object *j)
{
    return j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
             : "null";
}

/* The engine's JSON value j as a value of type t: 0, or -1 when it is not
 * a JSON value of that type. Strings borrow from j. */
static int from_json(struct json_object *j, oracle_type_t t, oracle_value_t *out)
{
    *out = (oracle_value_t){.is_null = j == NULL, .type = t};
    if (j == NULL)
        return 0;
    enum json_type jt = json_object_get_type(j);
    switch (t) {
    case ORACLE_STRING:
        if (jt != json_type_string)
            return -1;
        out->u.s.ptr = json_object_get_string(j);
        out->u.s.len = (size_t)json_object_get_string_len(j);
        return 0;
    case ORACLE_BIGINT:
        if (jt != json_type_int)
            return -1;
        out->u.i = json_object_get_int64(j);
        return 0;
    case ORACLE_DOUBLE:
        if (jt == json_type_int || jt == json_type_double) {
            out->u.d = json_object_get_double(j);
            return 0;
        }
        if (jt == json_type_string) {
            const char *s = json_object_get_string(j);
            if (strcmp(s, "NaN") == 0)
                out->u.d = NAN;
            else if (strcmp(s, "Infinity") == 0)
                out->u.d = INFINITY;
            else if (strcmp(s, "-Infinity") == 0)
                out->u.d = -INFINITY;
            else
                return -1;
            return 0;
        }
        return -1;
    case ORACLE_BOOLEAN:
        if (jt != json_type_boolean)
            return -1;
        out->u.b = json_object_get_boolean(j);
        return 0;
    }
    return -1;
}

static bool doubles_equal(double a, double b, double rel_tol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) <= rel_tol * scale;
}

static bool values_equal(const oracle_value_t *want, const oracle_value_t *got, double rel_tol)
{
    if (want->is_null || got->is_null)
        return want->is_null && got->is_null;
    if (want->type == ORACLE_DOUBLE)
        return doubles_equal(want->u.d, got->u.d, rel_tol);
    return value_cmp(want, got) == 0;
}

static const char *type_word(oracle_type_t t)
{
    switch (t) {
    case ORACLE_STRING: return "a string";
    case ORACLE_BIGINT: return "an integer";
    case ORACLE_DOUBLE: return "a number";
    case ORACLE_BOOLEAN: return "true or false";
    }
    return "?";
}

/* Compare one output line; marks the group it names in seen[]. */
static void compare_line(const oracle_t *o, struct json_tokener *tok, const char *const *names,
                         const char *line, size_t len, size_t lineno, double rel_tol,
                         size_t *seen, diff_t *d)
{
    struct json_object *j = jc_parse_line(tok, line, len);
    if (j == NULL) {
        diff_add(d, "output line %zu is not a JSON object: %.*s", lineno,
                 (int)(len > 200 ? 200 : len), line);
        return;
    }
    size_t ncols = o->ngroup + o->naggs;
    json_object_object_foreach(j, okey, oval) {
        (void)oval;
        bool known = false;
        for (size_t c = 0; c < ncols && !known; c++)
            known = strcmp(names[c], okey) == 0;
        if (!known)
            diff_add(d, "output line %zu has an unexpected key \"%s\": %s", lineno, okey,
                     jtext(j));
    }
    oracle_value_t keys[o->ngroup ? o->ngroup : 1];
    strbuf_t key = {0};
    bool usable = true;
    for (size_t c = 0; c < o->ngroup; c++) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(j, names[c], &v)) {
            diff_add(d, "output line %zu has no key \"%s\": %s", lineno, names[c], jtext(j));
            usable = false;
        } else if (from_json(v, result_type(o, c), &keys[c]) != 0) {
            diff_add(d, "output line %zu: \"%s\" should be %s or null, got %s", lineno,
                     names[c], type_word(result_type(o, c)), jtext(v));
            usable = false;
        } else {
            key_encode(&key, &keys[c]);
        }
    }
    if (!usable) {
        free(key.s);
        json_object_put(j);
        return;
    }
    const char *kb = key.s ? key.s : "";
    ptrdiff_t found = group_lookup(o, kb, key.len, fnv1a(kb, key.len));
    free(key.s);
    strbuf_t gname = {0};
    sb_group_name(&gname, o, names, keys);
    if (found < 0) {
        diff_add(d, "unexpected group %s (output line %zu): %s", gname.s, lineno, jtext(j));
        goto out;
    }
    size_t gi = (size_t)found;
    if (seen[gi] != 0) {
        diff_add(d, "group %s appears twice (output lines %zu and %zu)", gname.s, seen[gi],
                 lineno);
        goto out;
    }
    seen[gi] = lineno;
    for (size_t c = o->ngroup; c < ncols; c++) {
        oracle_value_t want, got;
        oracle_group_value(o, gi, c, &want);
        strbuf_t wtext = {0};
        sb_value(&wtext, &want);
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(j, names[c], &v)) {
            diff_add(d, "group %s: no key \"%s\" (expected %s)", gname.s, names[c], wtext.s);
        } else if (from_json(v, want.type, &got) != 0) {
            diff_add(d, "group %s: %s: expected %s, got %s (not %s)", gname.s, names[c], wtext.s,
                     jtext(v), type_word(want.type));
        } else if (!values_equal(&want, &got, rel_tol)) {
            diff_add(d, "group %s: %s: expected %s, got %s", gname.s, names[c], wtext.s,
                     jtext(v));
        }
        free(wtext.s);
    }
out:
    free(gname.s);
    json_object_put(j);
}

int oracle_compare_jsonl(const oracle_t *o, const char *const *out_names, const char *jsonl_text,
                         double rel_tol, char **diff)
{
    *diff = NULL;
    diff_t d = {{0}, 0};
    size_t *seen = xcalloc(o->ngroups, sizeof *seen); /* output line of each group */
    struct json_tokener *tok = json_tokener_new_ex(ORACLE_JSONC_DEPTH);
    if (tok == NULL)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    const char *p = jsonl_text ? jsonl_text : "";
    size_t lineno = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (!is_blank(p, len))
            compare_line(o, tok, out_names, p, len, lineno, rel_tol, seen, &d);
        p += len + (nl != NULL);
    }
    size_t *idx = sorted_groups(o);
    for (size_t k = 0; k < o->ngroups; k++) {
        if (seen[idx[k]] != 0)
            continue;
        strbuf_t m = {0};
        sb_group_name(&m, o, out_names, o->groups[idx[k]].keys);
        sb_str(&m, ": expected ");
        for (size_t c = o->ngroup; c < o->ngroup + o->naggs; c++) {
            oracle_value_t v;
            oracle_group_value(o, idx[k], c, &v);
            sb_printf(&m, "%s%s=", c > o->ngroup ? ", " : "", out_names[c]);
            sb_value(&m, &v);
        }
        diff_add(&d, "missing group %s", m.s);
        free(m.s);
    }
    free(idx);
    free(seen);
    json_tokener_free(tok);
    if (d.count == 0)
        return 0;
    strbuf_t r = {0};
    sb_printf(&r, "%zu difference%s between the output (got) and the oracle (expected):\n",
              d.count, d.count == 1 ? "" : "s");
    sb_str(&r, d.shown.s);
    if (d.count > ORACLE_DIFF_SHOWN)
        sb_printf(&r, "  ... and %zu more\n", d.count - ORACLE_DIFF_SHOWN);
    free(d.shown.s);
    *diff = r.s;
    return 1;
}
