/* driver/result.c -- builds output rows from state and renders them as a
 * table, JSON Lines or CSV. Owns the rows and an arena for their strings;
 * knows nothing of where the state came from. */
#include "result.h"

#include <stdlib.h>
#include <string.h>

#include "agg.h"

struct result_set {
    const plan_t *plan;
    size_t ncols;
    sp_value_t *cells;    /* nrows * ncols */
    size_t nrows, cap;
    sp_value_t *keys;     /* nrows * ngroups, for sorting */
    sp_buf_t strings;     /* string bytes; cells hold offsets until render */
    sp_value_t *scratch;  /* ngroups + naggs */
};

int result_format_parse(const char *text, result_format_t *out, sp_err_t *err)
{
    if (strcmp(text, "table") == 0)
        *out = RESULT_TABLE;
    else if (strcmp(text, "json") == 0 || strcmp(text, "jsonl") == 0)
        *out = RESULT_JSON;
    else if (strcmp(text, "csv") == 0)
        *out = RESULT_CSV;
    else
        return sp_err_set(err, SP_EINVAL, "unknown format '%s' (use table, json or csv)", text);
    return 0;
}

result_set_t *result_set_new(const plan_t *plan)
{
    result_set_t *rs = sp_xcalloc(1, sizeof *rs);
    rs->plan = plan;
    rs->ncols = plan->noutputs;
    rs->scratch = sp_xcalloc(plan->ngroups + plan->naggs + 1, sizeof(sp_value_t));
    return rs;
}

void result_set_destroy(result_set_t **rsp)
{
    if (rsp == NULL || *rsp == NULL)
        return;
    result_set_t *rs = *rsp;
    free(rs->cells);
    free(rs->keys);
    sp_buf_free(&rs->strings);
    free(rs->scratch);
    free(rs);
    *rsp = NULL;
}

void result_set_clear(result_set_t *rs)
{
    rs->nrows = 0;
    rs->strings.len = 0;
}

size_t result_set_rows(const result_set_t *rs) { return rs->nrows; }

/* Strings are stored as offsets into rs->strings (which may move while
 * rows are added) and resolved when read. */
static sp_value_t keep_value(result_set_t *rs, const sp_value_t *v)
{
    sp_value_t out = *v;
    if (v->type == SP_TYPE_STRING) {
        out.u.s.ptr = (const char *)(uintptr_t)rs->strings.len;
        sp_buf_append(&rs->strings, v->u.s.ptr, v->u.s.len);
    }
    return out;
}

static sp_value_t resolve(const result_set_t *rs, const sp_value_t *v)
{
    sp_value_t out = *v;
    if (v->type == SP_TYPE_STRING)
        out.u.s.ptr = rs->strings.data + (uintptr_t)v->u.s.ptr;
    return out;
}

int result_set_add(result_set_t *rs, const void *key, size_t klen, const void *state, size_t slen,
                   sp_err_t *err)
{
    const plan_t *p = rs->plan;
    sp_value_t *kv = rs->scratch, *av = rs->scratch + p->ngroups;
    int rc = sp_key_decode(key, klen, kv, p->ngroups, err);
    if (rc != 0)
        return sp_err_wrap(err, rc, "group key");
    rc = agg_state_finalize(p->aggs, p->naggs, state, slen, av, err);
    if (rc != 0)
        return rc;
    if (rs->nrows == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->cells = sp_xrealloc(rs->cells, rs->cap * (rs->ncols ? rs->ncols : 1) * sizeof(sp_value_t));
        rs->keys = sp_xrealloc(rs->keys, rs->cap * (p->ngroups ? p->ngroups : 1) * sizeof(sp_value_t));
    }
    sp_value_t *row = rs->cells + rs->nrows * rs->ncols;
    for (size_t c = 0; c < rs->ncols; c++) {
        const plan_output_t *o = &p->outputs[c];
        row[c] = keep_value(rs, o->is_agg ? &av[o->index] : &kv[o->index]);
    }
    sp_value_t *krow = rs->keys + rs->nrows * p->ngroups;
    for (size_t g = 0; g < p->ngroups; g++)
        krow[g] = keep_value(rs, &kv[g]);
    rs->nrows++;
    return 0;
}

typedef struct collect {
    result_set_t *rs;
    sp_err_t *err;
    ckpt_t *ckpt;        /* when reading a scan of it; NULL: today's format */
    uint32_t key_format; /* 0 until the scan's first entry */
    sp_buf_t key; /* an upgraded key */
    int rc;
} collect_t;

static int collect_fn(void *ctx, const void *key, size_t klen, const void *state, size_t slen)
{
    collect_t *c = ctx;
    if (c->key_format == 0) /* the format of the scan's own snapshot */
        c->key_format = c->ckpt ? ckpt_state_key_format(c->ckpt) : SP_KEY_FORMAT;
    if (c->key_format != SP_KEY_FORMAT) {
        c->key.len = 0;
        if ((c->rc = sp_key_upgrade(c->key_format, key, klen, &c->key, c->err)) != 0)
            return 1;
        key = c->key.data;
        klen = c->key.len;
    }
    c->rc = result_set_add(c->rs, key, klen, state, slen, c->err);
    return c->rc != 0;
}

int result_set_add_state(result_set_t *rs, ckpt_t *ckpt, sp_err_t *err)
{
    collect_t c = {rs, err, ckpt, 0, SP_BUF_INIT, 0};
    int rc = ckpt_state_scan(ckpt, collect_fn, &c, err);
    sp_buf_free(&c.key);
    return c.rc != 0 ? c.rc : rc;
}

int result_set_add_txn_state(result_set_t *rs, ckpt_txn_t *t, sp_err_t *err)
{
    collect_t c = {rs, err, NULL, SP_KEY_FORMAT, SP_BUF_INIT, 0};
    int rc = ckpt_txn_state_scan(t, collect_fn, &c, err);
    return c.rc != 0 ? c.rc : rc;
}

/* ---- sorting -------------------------------------------------------------- */

static _Thread_local const result_set_t *sort_rs;

static int row_cmp(const void *a, const void *b)
{
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    const result_set_t *rs = sort_rs;
    size_t ng = rs->plan->ngroups;
    for (size_t g = 0; g < ng; g++) {
        sp_value_t x = resolve(rs, &rs->keys[ia * ng + g]);
        sp_value_t y = resolve(rs, &rs->keys[ib * ng + g]);
        int c = sp_value_cmp(&x, &y);
        if (c != 0)
            return c;
    }
    return ia < ib ? -1 : (ia > ib ? 1 : 0);
}

void result_set_sort(result_set_t *rs)
{
    size_t n = rs->nrows, ng = rs->plan->ngroups;
    if (n < 2 || ng == 0)
        return;
    size_t *order = sp_xmalloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_rs = rs;
    qsort(order, n, sizeof(size_t), row_cmp);
    sp_value_t *cells = sp_xmalloc(n * (rs->ncols ? rs->ncols : 1) * sizeof(sp_value_t));
    sp_value_t *keys = sp_xmalloc(n * ng * sizeof(sp_value_t));
    for (size_t i = 0; i < n; i++) {
        memcpy(cells + i * rs->ncols, rs->cells + order[i] * rs->ncols, rs->ncols * sizeof(sp_value_t));
        memcpy(keys + i * ng, rs->keys + order[i] * ng, ng * sizeof(sp_value_t));
    }
    free(rs->cells);
    free(rs->keys);
    rs->cells = cells;
    rs->keys = keys;
    rs->cap = n;
    free(order);
}

/* ---- rendering ---------------------------------------------------------------- */

void result_json_string(sp_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sp_buf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sp_buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sp_buf_append(out, "\\\"", 2); break;
        case '\\': sp_buf_append(out, "\\\\", 2); break;
        case '\n': sp_buf_append(out, "\\n", 2); break;
        case '\r': sp_buf_append(out, "\\r", 2); break;
        case '\t': sp_buf_append(out, "\\t", 2); break;
        case '\b': sp_buf_append(out, "\\b", 2); break;
        case '\f': sp_buf_append(out, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sp_buf_append(out, u, 6);
        }
        }
    }
    sp_buf_append(out, s + run, len - run);
    sp_buf_putc(out, '"');
}

void result_json_value(sp_buf_t *out, const sp_value_t *v)
{
    char num[40];
    switch (v->type) {
    case SP_TYPE_NULL:
        sp_buf_append(out, "null", 4);
        break;
    case SP_TYPE_BOOLEAN:
        sp_buf_printf(out, "%s", v->u.b ? "true" : "false");
        break;
    case SP_TYPE_BIGINT:
        sp_buf_printf(out, "%lld", (long long)v->u.i);
        break;
    case SP_TYPE_DOUBLE: {
        int n = sp_format_double(v->u.d, num, sizeof num);
        if (num[0] == 'N' || num[0] == 'I' || (num[0] == '-' && num[1] == 'I'))
            result_json_string(out, num, (size_t)n);
        else
            sp_buf_append(out, num, (size_t)n);
        break;
    }
    case SP_TYPE_STRING:
        result_json_string(out, v->u.s.ptr, v->u.s.len);
        break;
    }
}

/* Plain text of a value for tables and CSV; NULL is "null" in tables. */
static void text_value(sp_buf_t *out, const sp_value_t *v)
{
    char num[40];
    switch (v->type) {
    case SP_TYPE_NULL: sp_buf_append(out, "null", 4); break;
    case SP_TYPE_BOOLEAN: sp_buf_printf(out, "%s", v->u.b ? "true" : "false"); break;
    case SP_TYPE_BIGINT: sp_buf_printf(out, "%lld", (long long)v->u.i); break;
    case SP_TYPE_DOUBLE: sp_buf_append(out, num, (size_t)sp_format_double(v->u.d, num, sizeof num)); break;
    case SP_TYPE_STRING: sp_buf_append(out, v->u.s.ptr, v->u.s.len); break;
    }
}

/* Display width: UTF-8 code points. */
static size_t width_of(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

static void pad(sp_buf_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sp_buf_putc(out, ' ');
}

static void render_table(const result_set_t *rs, size_t nshow, bool truncate, sp_buf_t *out)
{
    size_t nc = rs->ncols;
    sp_buf_t *cells = sp_xcalloc((nshow + 1) * (nc ? nc : 1), sizeof(sp_buf_t));
    size_t *width = sp_xcalloc(nc ? nc : 1, sizeof(size_t));
    for (size_t c = 0; c < nc; c++) {
        const char *name = rs->plan->outputs[c].name;
        sp_buf_append(&cells[c], name, strlen(name));
    }
    for (size_t r = 0; r < nshow; r++) {
        for (size_t c = 0; c < nc; c++) {
            sp_buf_t *b = &cells[(r + 1) * nc + c];
            sp_value_t v = resolve(rs, &rs->cells[r * nc + c]);
            text_value(b, &v);
            if (truncate && width_of(b->data, b->len) > 20) {
                /* keep 17 code points and add "..." */
                size_t cp = 0, i = 0;
                for (; i < b->len; i++) {
                    if (((unsigned char)b->data[i] & 0xc0) != 0x80) {
                        if (cp == 17)
                            break;
                        cp++;
                    }
                }
                b->len = i;
                sp_buf_append(b, "...", 3);
            }
        }
    }
    for (size_t i = 0; i < (nshow + 1) * nc; i++) {
        size_t w = width_of(cells[i].data ? cells[i].data : "", cells[i].len);
        if (w > width[i % nc])
            width[i % nc] = w;
    }
    sp_buf_t sep = SP_BUF_INIT;
    sp_buf_putc(&sep, '+');
    for (size_t c = 0; c < nc; c++) {
        for (size_t i = 0; i < width[c]; i++)
            sp_buf_putc(&sep, '-');
        sp_buf_putc(&sep, '+');
    }
    sp_buf_putc(&sep, '\n');
    sp_buf_append(out, sep.data, sep.len);
    for (size_t r = 0; r < nshow + 1; r++) {
        sp_buf_putc(out, '|');
        for (size_t c = 0; c < nc; c++) {
            sp_buf_t *b = &cells[r * nc + c];
            pad(out, width[c] - width_of(b->data ? b->data : "", b->len));
            sp_buf_append(out, b->data, b->len);
            sp_buf_putc(out, '|');
        }
        sp_buf_putc(out, '\n');
        if (r == 0)
            sp_buf_append(out, sep.data, sep.len);
    }
    sp_buf_append(out, sep.data, sep.len);
    for (size_t i = 0; i < (nshow + 1) * nc; i++)
        sp_buf_free(&cells[i]);
    free(cells);
    free(width);
    sp_buf_free(&sep);
}

static void csv_field(sp_buf_t *out, const char *s, size_t len)
{
    bool quote = len == 0 ? false : (memchr(s, ',', len) || memchr(s, '"', len) ||
                                     memchr(s, '\n', len) || memchr(s, '\r', len));
    if (!quote) {
        sp_buf_append(out, s, len);
        return;
    }
    sp_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            sp_buf_putc(out, '"');
        sp_buf_putc(out, s[i]);
    }
    sp_buf_putc(out, '"');
}

void result_set_render(const result_set_t *rs, result_format_t fmt, size_t max_rows, bool truncate,
                       sp_buf_t *out)
{
    size_t nshow = max_rows && max_rows < rs->nrows ? max_rows : rs->nrows;
    size_t nc = rs->ncols;
    if (fmt == RESULT_TABLE) {
        render_table(rs, nshow, truncate, out);
        if (nshow < rs->nrows)
            sp_buf_printf(out, "only showing top %zu row%s\n", nshow, nshow == 1 ? "" : "s");
        return;
    }
    if (fmt == RESULT_CSV) {
        for (size_t c = 0; c < nc; c++) {
            if (c)
                sp_buf_putc(out, ',');
            csv_field(out, rs->plan->outputs[c].name, strlen(rs->plan->outputs[c].name));
        }
        sp_buf_putc(out, '\n');
    }
    sp_buf_t tmp = SP_BUF_INIT;
    for (size_t r = 0; r < nshow; r++) {
        if (fmt == RESULT_JSON)
            sp_buf_putc(out, '{');
        for (size_t c = 0; c < nc; c++) {
            sp_value_t v = resolve(rs, &rs->cells[r * nc + c]);
            if (c)
                sp_buf_putc(out, ',');
            if (fmt == RESULT_JSON) {
                const char *name = rs->plan->outputs[c].name;
                result_json_string(out, name, strlen(name));
                sp_buf_putc(out, ':');
                result_json_value(out, &v);
            } else if (v.type != SP_TYPE_NULL) {
                tmp.len = 0;
                text_value(&tmp, &v);
                csv_field(out, tmp.data, tmp.len);
            }
        }
        if (fmt == RESULT_JSON)
            sp_buf_putc(out, '}');
        sp_buf_putc(out, '\n');
    }
    sp_buf_free(&tmp);
}
