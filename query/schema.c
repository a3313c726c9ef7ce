/* query/schema.c -- schemas: the --schema text form, name resolution, and
 * inference from JSON lines (widening types as Spark's inference does).
 * Owns schema_t and schema_infer_t; reads lines only through jscan. */
#include "schema.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jscan.h"
#include "sp_util.h"

schema_t *schema_new(void) { return sp_xcalloc(1, sizeof(schema_t)); }

void schema_destroy(schema_t **s)
{
    if (s == NULL || *s == NULL)
        return;
    for (size_t i = 0; i < (*s)->ncols; i++)
        free((*s)->cols[i].name);
    free((*s)->cols);
    free(*s);
    *s = NULL;
}

schema_t *schema_copy(const schema_t *s)
{
    schema_t *c = schema_new();
    c->cols = sp_xcalloc(s->ncols ? s->ncols : 1, sizeof(schema_col_t));
    for (size_t i = 0; i < s->ncols; i++) {
        c->cols[i].name = sp_xstrdup(s->cols[i].name);
        c->cols[i].type = s->cols[i].type;
    }
    c->ncols = s->ncols;
    return c;
}

int schema_add(schema_t *s, const char *name, sp_type_t type, sp_err_t *err)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (strcmp(s->cols[i].name, name) == 0)
            return sp_err_set(err, SP_EINVAL, "column '%s' appears twice in the schema", name);
    s->cols = sp_xrealloc(s->cols, (s->ncols + 1) * sizeof(schema_col_t));
    s->cols[s->ncols].name = sp_xstrdup(name);
    s->cols[s->ncols].type = type;
    s->ncols++;
    return 0;
}

bool schema_equal(const schema_t *a, const schema_t *b)
{
    if (a->ncols != b->ncols)
        return false;
    for (size_t i = 0; i < a->ncols; i++)
        if (a->cols[i].type != b->cols[i].type || strcmp(a->cols[i].name, b->cols[i].name) != 0)
            return false;
    return true;
}

int schema_find(const schema_t *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (strlen(s->cols[i].name) == len && memcmp(s->cols[i].name, name, len) == 0)
            return (int)i;
    int found = -1;
    for (size_t i = 0; i < s->ncols; i++) {
        if (strlen(s->cols[i].name) == len && strncasecmp(s->cols[i].name, name, len) == 0) {
            if (found >= 0)
                return -2;
            found = (int)i;
        }
    }
    return found;
}

/* ---- text form ------------------------------------------------------------ */

static bool plain_name(const char *name)
{
    if (*name == '\0')
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || (unsigned char)*p >= 0x80))
            return false;
    return true;
}

char *schema_format(const schema_t *s)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < s->ncols; i++) {
        if (i)
            sp_buf_append(&b, ", ", 2);
        const char *name = s->cols[i].name;
        if (plain_name(name)) {
            sp_buf_append(&b, name, strlen(name));
        } else {
            sp_buf_putc(&b, '`');
            for (const char *p = name; *p; p++) {
                if (*p == '`')
                    sp_buf_putc(&b, '`');
                sp_buf_putc(&b, *p);
            }
            sp_buf_putc(&b, '`');
        }
        sp_buf_putc(&b, ' ');
        const char *t = sp_type_name(s->cols[i].type);
        sp_buf_append(&b, t, strlen(t));
    }
    return sp_buf_cstr(&b);
}

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

int schema_parse(const char *text, schema_t **out, sp_err_t *err)
{
    schema_t *s = schema_new();
    const char *p = text;
    sp_buf_t name = SP_BUF_INIT;
    int rc = 0;
    for (;;) {
        skip_ws(&p);
        size_t col = (size_t)(p - text) + 1;
        name.len = 0;
        if (*p == '`') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: unterminated `quoted` name", col);
                    goto fail;
                }
                if (*p == '`' && p[1] == '`') {
                    sp_buf_putc(&name, '`');
                    p += 2;
                } else if (*p == '`') {
                    p++;
                    break;
                } else {
                    sp_buf_putc(&name, *p++);
                }
            }
            if (name.len == 0) {
                rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: empty column name", col);
                goto fail;
            }
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != ':' && *p != '\n')
                sp_buf_putc(&name, *p++);
            if (name.len == 0) {
                rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: expected a column name%s",
                                col, *p ? "" : " (the schema is empty or ends with a comma)");
                goto fail;
            }
        }
        skip_ws(&p);
        if (*p == ':') { /* also accept "name: TYPE" */
            p++;
            skip_ws(&p);
        }
        const char *t = p;
        while (isalpha((unsigned char)*p))
            p++;
        sp_type_t type;
        if (p == t) {
            rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: expected a type after '%s' (STRING, BIGINT, DOUBLE or BOOLEAN)",
                            (size_t)(t - text) + 1, sp_buf_cstr(&name));
            goto fail;
        }
        if (sp_type_parse(t, (size_t)(p - t), &type) != 0) {
            rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: unknown type '%.*s' (use STRING, BIGINT, DOUBLE or BOOLEAN)",
                            (size_t)(t - text) + 1, (int)(p - t), t);
            goto fail;
        }
        rc = schema_add(s, sp_buf_cstr(&name), type, err);
        if (rc != 0) {
            sp_err_wrap(err, rc, "schema");
            goto fail;
        }
        skip_ws(&p);
        if (*p == '\0')
            break;
        if (*p != ',') {
            rc = sp_err_set(err, SP_EINVAL, "schema: at column %zu: expected ',' between columns, found '%c'",
                            (size_t)(p - text) + 1, *p);
            goto fail;
        }
        p++;
    }
    sp_buf_free(&name);
    *out = s;
    return 0;
fail:
    sp_buf_free(&name);
    schema_destroy(&s);
    return rc;
}

/* ---- inference ------------------------------------------------------------ */

typedef struct infer_col {
    char *name;
    sp_type_t type; /* SP_TYPE_NULL while only nulls were seen */
} infer_col_t;

struct schema_infer {
    infer_col_t *cols;
    size_t ncols, cap;
    size_t rows;
};

schema_infer_t *schema_infer_new(void) { return sp_xcalloc(1, sizeof(schema_infer_t)); }

void schema_infer_destroy(schema_infer_t **si)
{
    if (si == NULL || *si == NULL)
        return;
    for (size_t i = 0; i < (*si)->ncols; i++)
        free((*si)->cols[i].name);
    free((*si)->cols);
    free(*si);
    *si = NULL;
}

static sp_type_t kind_type(jscan_kind_t k)
{
    switch (k) {
    case JSCAN_KIND_NULL: return SP_TYPE_NULL;
    case JSCAN_KIND_BOOL: return SP_TYPE_BOOLEAN;
    case JSCAN_KIND_INT: return SP_TYPE_BIGINT;
    case JSCAN_KIND_FLOAT: return SP_TYPE_DOUBLE;
    default: return SP_TYPE_STRING;
    }
}

/* Spark's widening: equal types stay; NULL yields to anything; BIGINT and
 * DOUBLE widen to DOUBLE; any other mix is STRING. */
static sp_type_t widen(sp_type_t a, sp_type_t b)
{
    if (a == b || b == SP_TYPE_NULL)
        return a;
    if (a == SP_TYPE_NULL)
        return b;
    if ((a == SP_TYPE_BIGINT && b == SP_TYPE_DOUBLE) || (a == SP_TYPE_DOUBLE && b == SP_TYPE_BIGINT))
        return SP_TYPE_DOUBLE;
    return SP_TYPE_STRING;
}

static void infer_field(void *ctx, const char *key, size_t keylen, jscan_kind_t kind)
{
    schema_infer_t *si = ctx;
    sp_type_t t = kind_type(kind);
    for (size_t i = 0; i < si->ncols; i++) {
        if (strlen(si->cols[i].name) == keylen && memcmp(si->cols[i].name, key, keylen) == 0) {
            si->cols[i].type = widen(si->cols[i].type, t);
            return;
        }
    }
    if (memchr(key, '\0', keylen) != NULL)
        return; /* a key with a NUL byte cannot be a column name */
    if (si->ncols == si->cap) {
        si->cap = si->cap ? si->cap * 2 : 16;
        si->cols = sp_xrealloc(si->cols, si->cap * sizeof(infer_col_t));
    }
    si->cols[si->ncols].name = sp_xstrndup(key, keylen);
    si->cols[si->ncols].type = t;
    si->ncols++;
}

bool schema_infer_line(schema_infer_t *si, const char *line, size_t len)
{
    if (jscan_fields(line, len, infer_field, si, NULL) != JSCAN_ROW)
        return false;
    si->rows++;
    return true;
}

size_t schema_infer_rows(const schema_infer_t *si) { return si->rows; }

static int col_cmp(const void *a, const void *b)
{
    return strcmp(((const schema_col_t *)a)->name, ((const schema_col_t *)b)->name);
}

schema_t *schema_infer_result(const schema_infer_t *si)
{
    if (si->rows == 0)
        return NULL;
    schema_t *s = schema_new();
    s->cols = sp_xcalloc(si->ncols ? si->ncols : 1, sizeof(schema_col_t));
    for (size_t i = 0; i < si->ncols; i++) {
        s->cols[i].name = sp_xstrdup(si->cols[i].name);
        s->cols[i].type = si->cols[i].type == SP_TYPE_NULL ? SP_TYPE_STRING : si->cols[i].type;
    }
    s->ncols = si->ncols;
    qsort(s->cols, s->ncols, sizeof(schema_col_t), col_cmp);
    return s;
}
