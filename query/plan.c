/* query/plan.c -- binds a parsed query to the source and its schema: name
 * resolution, type checks, slots, the canonical aggregates, output names and
 * state signatures; compiles WHERE into a flat node array and evaluates it
 * per row (the executor's hot path). Owns plan_t and expr_t; never reads
 * rows itself and never touches the checkpoint. */
#include "plan.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sp_util.h"

const char *agg_func_name(agg_func_t f)
{
    switch (f) {
    case AGG_COUNT_STAR:
    case AGG_COUNT: return "count";
    case AGG_SUM: return "sum";
    case AGG_MIN: return "min";
    case AGG_MAX: return "max";
    case AGG_AVG: return "avg";
    }
    return "unknown";
}

/* ---- the compiled condition -------------------------------------------------
 *
 * A tree of nodes in one array, children by index. Operands are resolved to
 * slot numbers and literals are converted to the column's type where that is
 * exact (5 for a BIGINT column compared with 5.0), so evaluation never looks
 * at names, never allocates, and mostly compares without a call. Literal-only
 * parts are folded at compile time, with the same code that evaluates rows.
 * Depth is bounded: the parser caps parentheses and NOT at 200 levels and
 * builds AND / OR chains balanced. */

typedef enum node_kind {
    NODE_CONST,   /* truth */
    NODE_CMP,     /* slot a <op> lit */
    NODE_CMP2,    /* slot a <op> slot b */
    NODE_IS_NULL, /* slot a IS [NOT] NULL */
    NODE_IN,      /* slot a [NOT] IN values[b .. b+n) (sorted, no NULL) */
    NODE_AND,     /* nodes a, b */
    NODE_OR,      /* nodes a, b */
    NODE_NOT,     /* node a */
} node_kind_t;

typedef struct node {
    uint8_t kind;   /* node_kind_t */
    uint8_t op;     /* sql_cmp_op_t */
    uint8_t truth;  /* NODE_CONST: expr_truth_t */
    bool negated;   /* IS NOT NULL, NOT IN */
    bool has_null;  /* NODE_IN: the list held NULL */
    uint32_t a, b;  /* while binding, a schema column index instead of a slot */
    uint32_t n;     /* NODE_IN: number of values */
    sp_value_t lit; /* NODE_CMP */
} node_t;

/* One allocation: this header, the nodes, the IN values, string bytes. */
struct expr {
    node_t *nodes;
    sp_value_t *values;
    char *bytes;
    uint32_t root;
};

static int value_family(sp_type_t t)
{
    return t == SP_TYPE_DOUBLE ? SP_TYPE_BIGINT : (int)t;
}

/* Same order as sp_value_cmp, without the call for the common cases. */
static inline int cmp_values(const sp_value_t *x, const sp_value_t *y)
{
    if (x->type == y->type) {
        switch (x->type) {
        case SP_TYPE_BIGINT:
            return (x->u.i > y->u.i) - (x->u.i < y->u.i);
        case SP_TYPE_DOUBLE:
            if (!isnan(x->u.d) && !isnan(y->u.d))
                return (x->u.d > y->u.d) - (x->u.d < y->u.d);
            break;
        case SP_TYPE_STRING: {
            uint32_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
            int c = n ? memcmp(x->u.s.ptr, y->u.s.ptr, n) : 0;
            if (c != 0)
                return c < 0 ? -1 : 1;
            return (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
        }
        default:
            break;
        }
    }
    return sp_value_cmp(x, y);
}

/* x <op> y for non-NULL values. */
static inline expr_truth_t cmp_truth(sql_cmp_op_t op, const sp_value_t *x, const sp_value_t *y)
{
    if ((op == SQL_CMP_EQ || op == SQL_CMP_NE) && x->type == SP_TYPE_STRING &&
        y->type == SP_TYPE_STRING) {
        bool eq = x->u.s.len == y->u.s.len &&
                  (x->u.s.len == 0 || memcmp(x->u.s.ptr, y->u.s.ptr, x->u.s.len) == 0);
        return (expr_truth_t)(eq == (op == SQL_CMP_EQ));
    }
    int c = cmp_values(x, y);
    switch (op) {
    case SQL_CMP_EQ: return (expr_truth_t)(c == 0);
    case SQL_CMP_NE: return (expr_truth_t)(c != 0);
    case SQL_CMP_LT: return (expr_truth_t)(c < 0);
    case SQL_CMP_LE: return (expr_truth_t)(c <= 0);
    case SQL_CMP_GT: return (expr_truth_t)(c > 0);
    case SQL_CMP_GE: return (expr_truth_t)(c >= 0);
    }
    return EXPR_UNKNOWN;
}

/* Binary search of the sorted values[0, n). */
static bool in_list(const sp_value_t *v, const sp_value_t *values, uint32_t n)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = cmp_values(v, &values[mid]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static expr_truth_t eval_node(const expr_t *e, uint32_t i, const sp_value_t *slots)
{
    const node_t *n = &e->nodes[i];
    expr_truth_t x, y;
    switch ((node_kind_t)n->kind) {
    case NODE_CONST:
        return (expr_truth_t)n->truth;
    case NODE_CMP:
        if (slots[n->a].type == SP_TYPE_NULL)
            return EXPR_UNKNOWN;
        return cmp_truth((sql_cmp_op_t)n->op, &slots[n->a], &n->lit);
    case NODE_CMP2:
        if (slots[n->a].type == SP_TYPE_NULL || slots[n->b].type == SP_TYPE_NULL)
            return EXPR_UNKNOWN;
        return cmp_truth((sql_cmp_op_t)n->op, &slots[n->a], &slots[n->b]);
    case NODE_IS_NULL:
        return (expr_truth_t)((slots[n->a].type == SP_TYPE_NULL) != n->negated);
    case NODE_IN:
        if (slots[n->a].type == SP_TYPE_NULL)
            return EXPR_UNKNOWN;
        if (in_list(&slots[n->a], e->values + n->b, n->n))
            return n->negated ? EXPR_FALSE : EXPR_TRUE;
        if (n->has_null)
            return EXPR_UNKNOWN;
        return n->negated ? EXPR_TRUE : EXPR_FALSE;
    case NODE_AND:
        if ((x = eval_node(e, n->a, slots)) == EXPR_FALSE)
            return EXPR_FALSE;
        if ((y = eval_node(e, n->b, slots)) == EXPR_FALSE)
            return EXPR_FALSE;
        return x == EXPR_TRUE && y == EXPR_TRUE ? EXPR_TRUE : EXPR_UNKNOWN;
    case NODE_OR:
        if ((x = eval_node(e, n->a, slots)) == EXPR_TRUE)
            return EXPR_TRUE;
        if ((y = eval_node(e, n->b, slots)) == EXPR_TRUE)
            return EXPR_TRUE;
        return x == EXPR_FALSE && y == EXPR_FALSE ? EXPR_FALSE : EXPR_UNKNOWN;
    case NODE_NOT:
        x = eval_node(e, n->a, slots);
        return x == EXPR_UNKNOWN ? EXPR_UNKNOWN : (expr_truth_t)(x == EXPR_FALSE);
    }
    return EXPR_UNKNOWN;
}

expr_truth_t expr_eval(const expr_t *e, const sp_value_t *slots)
{
    return e == NULL ? EXPR_TRUE : eval_node(e, e->root, slots);
}

/* ---- binding: errors and names ---------------------------------------------- */

typedef struct binder {
    const sql_stmt_t *st;
    const schema_t *schema;
    sp_err_t *err;
} binder_t;

static int bind_error(binder_t *b, int rc, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "SQL error at line L, column C: <message>" with rc. */
static int bind_error(binder_t *b, int rc, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = sql_error_vat(b->err, rc, b->st->text, pos, "error", fmt, ap);
    va_end(ap);
    return rc;
}

/* Case-insensitive optimal-string-alignment distance (a transposition is
 * one edit) of two names of at most 64 bytes. */
static size_t name_distance(const char *x, size_t m, const char *y, size_t n)
{
    size_t rows[3][65];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= n; j++)
        prev[j] = j;
    for (size_t i = 1; i <= m; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= n; j++) {
            int xi = tolower((unsigned char)x[i - 1]), yj = tolower((unsigned char)y[j - 1]);
            size_t v = prev[j - 1] + (xi != yj);
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && xi == tolower((unsigned char)y[j - 2]) &&
                tolower((unsigned char)x[i - 2]) == yj && prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = prev2;
        prev2 = prev, prev = cur, cur = t;
    }
    return prev[n];
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Resolve a column name written at pos; *col receives the schema index. */
static int resolve(binder_t *b, const char *name, size_t pos, int *col)
{
    const schema_t *s = b->schema;
    size_t len = strlen(name);
    int i = schema_find(s, name, len);
    if (i >= 0) {
        if (s->cols[i].type == SP_TYPE_NULL)
            return bind_error(b, SP_ETYPE, pos, "column '%s' has no type in the schema", name);
        *col = i;
        return 0;
    }
    sp_buf_t msg = SP_BUF_INIT;
    if (i == -2) {
        sp_buf_printf(&msg, "column '%s' is ambiguous: it matches", name);
        const char *sep = " ";
        for (size_t k = 0; k < s->ncols; k++) {
            if (strcasecmp(s->cols[k].name, name) == 0 && printable(s->cols[k].name)) {
                sp_buf_printf(&msg, "%s'%s'", sep, s->cols[k].name);
                sep = ", ";
            }
        }
        sp_buf_printf(&msg, "; write the name exactly as in the schema");
    } else {
        sp_buf_printf(&msg, "unknown column '%s'", name);
        /* Suggest the closest name within a few edits. */
        size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3, best = SIZE_MAX;
        const char *suggest = NULL;
        for (size_t k = 0; len <= 64 && k < s->ncols; k++) {
            const char *c = s->cols[k].name;
            size_t clen = strlen(c);
            if (clen > 64 || !printable(c))
                continue;
            size_t d = name_distance(name, len, c, clen);
            if (d <= limit && d < len && d < best)
                best = d, suggest = c;
        }
        if (suggest != NULL)
            sp_buf_printf(&msg, " (did you mean '%s'?)", suggest);
    }
    int rc = bind_error(b, SP_EINVAL, pos, "%s", sp_buf_cstr(&msg));
    sp_buf_free(&msg);
    return rc;
}

/* ---- binding: WHERE ----------------------------------------------------------- */

typedef struct compiler {
    binder_t *b;
    expr_t *e;
    uint32_t nnodes, nvalues;
    size_t nbytes;
} compiler_t;

/* Upper bounds of the nodes, IN values and string bytes that e compiles to. */
static void expr_size(const sql_expr_t *e, size_t *nodes, size_t *values, size_t *bytes)
{
    if (e == NULL)
        return;
    (*nodes)++;
    if (e->kind == SQL_EXPR_LITERAL && e->literal.type == SP_TYPE_STRING)
        *bytes += e->literal.u.s.len;
    for (size_t i = 0; i < e->nlist; i++)
        if (e->list[i].type == SP_TYPE_STRING)
            *bytes += e->list[i].u.s.len;
    *values += e->nlist;
    expr_size(e->args[0], nodes, values, bytes);
    expr_size(e->args[1], nodes, values, bytes);
}

/* A literal converted to type t where exactly the same comparisons follow
 * (and faster ones), with its string bytes copied into the expression. */
static sp_value_t own_literal(compiler_t *c, sp_value_t v, sp_type_t t)
{
    if (t == SP_TYPE_DOUBLE && v.type == SP_TYPE_BIGINT && v.u.i >= -(INT64_C(1) << 53) &&
        v.u.i <= INT64_C(1) << 53) {
        v.type = SP_TYPE_DOUBLE;
        v.u.d = (double)v.u.i;
    } else if (t == SP_TYPE_BIGINT && v.type == SP_TYPE_DOUBLE && v.u.d == trunc(v.u.d) &&
               v.u.d >= -9223372036854775808.0 && v.u.d < 9223372036854775808.0) {
        v.type = SP_TYPE_BIGINT;
        v.u.i = (int64_t)v.u.d;
    } else if (v.type == SP_TYPE_STRING) {
        char *p = c->e->bytes + c->nbytes;
        if (v.u.s.len)
            memcpy(p, v.u.s.ptr, v.u.s.len);
        c->nbytes += v.u.s.len;
        v.u.s.ptr = p;
    }
    return v;
}

/* An operand of a predicate: a column (col >= 0) or a literal. */
typedef struct operand {
    int col;
    sp_type_t type;
    sp_value_t lit;
    const char *name;
} operand_t;

static int bind_operand(compiler_t *c, const sql_expr_t *e, operand_t *o)
{
    *o = (operand_t){.col = -1, .type = SP_TYPE_NULL};
    if (e == NULL || (e->kind != SQL_EXPR_COLUMN && e->kind != SQL_EXPR_LITERAL))
        return bind_error(c->b, SP_EINVAL, e ? e->pos : 0, "expected a column or a literal");
    if (e->kind == SQL_EXPR_LITERAL) {
        o->lit = e->literal;
        o->type = e->literal.type;
        return 0;
    }
    int rc = resolve(c->b, e->column, e->pos, &o->col);
    if (rc == 0) {
        o->type = c->b->schema->cols[o->col].type;
        o->name = e->column;
    }
    return rc;
}

/* Comparable: numbers with numbers, strings with strings, booleans with
 * booleans, and NULL with anything. */
static int check_types(compiler_t *c, size_t pos, const operand_t *x, sp_type_t ytype,
                       const char *yname, const char *where)
{
    if (x->type == SP_TYPE_NULL || ytype == SP_TYPE_NULL ||
        value_family(x->type) == value_family(ytype))
        return 0;
    char xs[160], ys[160];
    if (x->col >= 0)
        snprintf(xs, sizeof xs, "column '%.100s' (%s)", x->name, sp_type_name(x->type));
    else
        snprintf(xs, sizeof xs, "a %s literal", sp_type_name(x->type));
    if (yname != NULL)
        snprintf(ys, sizeof ys, "column '%.100s' (%s)", yname, sp_type_name(ytype));
    else
        snprintf(ys, sizeof ys, "a %s literal", sp_type_name(ytype));
    return bind_error(c->b, SP_ETYPE, pos, "cannot compare %s with %s%s", xs, ys, where);
}

static uint32_t add_node(compiler_t *c, node_t n)
{
    c->e->nodes[c->nnodes] = n;
    return c->nnodes++;
}

/* Replace node i by its value, evaluated over the stand-in row slots (a
 * literal operand as slot 0, or none when the node reads no slot). */
static void fold(compiler_t *c, uint32_t i, const sp_value_t *slots)
{
    expr_truth_t t = eval_node(c->e, i, slots);
    c->e->nodes[i] = (node_t){.kind = NODE_CONST, .truth = (uint8_t)t};
}

/* A predicate over operand o: a literal operand is folded at once. */
static uint32_t leaf(compiler_t *c, node_t n, const operand_t *o)
{
    if (o->col < 0)
        n.a = 0;
    uint32_t i = add_node(c, n);
    if (o->col < 0)
        fold(c, i, &o->lit);
    return i;
}

static int sort_values(const void *x, const void *y) { return sp_value_cmp(x, y); }

static int compile(compiler_t *c, const sql_expr_t *e, uint32_t *out);

static int compile_cmp(compiler_t *c, const sql_expr_t *e, uint32_t *out)
{
    operand_t x, y;
    int rc;
    if ((rc = bind_operand(c, e->args[0], &x)) != 0 || (rc = bind_operand(c, e->args[1], &y)) != 0)
        return rc;
    if ((rc = check_types(c, e->pos, &x, y.type, y.col >= 0 ? y.name : NULL, "")) != 0)
        return rc;
    sql_cmp_op_t op = e->op;
    if (x.col < 0 && y.col >= 0) { /* 5 < x reads x > 5 */
        static const sql_cmp_op_t flip[] = {
            [SQL_CMP_EQ] = SQL_CMP_EQ, [SQL_CMP_NE] = SQL_CMP_NE, [SQL_CMP_LT] = SQL_CMP_GT,
            [SQL_CMP_LE] = SQL_CMP_GE, [SQL_CMP_GT] = SQL_CMP_LT, [SQL_CMP_GE] = SQL_CMP_LE,
        };
        operand_t t = x;
        x = y, y = t;
        op = flip[op];
    }
    if (x.type == SP_TYPE_NULL || y.type == SP_TYPE_NULL) { /* NULL literal */
        *out = add_node(c, (node_t){.kind = NODE_CONST, .truth = EXPR_UNKNOWN});
        return 0;
    }
    if (y.col >= 0)
        *out = add_node(c, (node_t){.kind = NODE_CMP2, .op = (uint8_t)op, .a = (uint32_t)x.col,
                                    .b = (uint32_t)y.col});
    else
        *out = leaf(c, (node_t){.kind = NODE_CMP, .op = (uint8_t)op, .a = (uint32_t)x.col,
                                .lit = own_literal(c, y.lit, x.type)}, &x);
    return 0;
}

static int compile_in(compiler_t *c, const sql_expr_t *e, uint32_t *out)
{
    operand_t x;
    int rc = bind_operand(c, e->args[0], &x);
    if (rc != 0)
        return rc;
    node_t n = {.kind = NODE_IN, .negated = e->negated, .a = (uint32_t)x.col, .b = c->nvalues};
    sp_value_t *values = c->e->values + c->nvalues;
    for (size_t i = 0; i < e->nlist; i++) {
        if ((rc = check_types(c, e->pos, &x, e->list[i].type, NULL, " in the IN list")) != 0)
            return rc;
        if (e->list[i].type == SP_TYPE_NULL)
            n.has_null = true;
        else
            values[n.n++] = own_literal(c, e->list[i], x.type);
    }
    qsort(values, n.n, sizeof *values, sort_values);
    uint32_t k = 0; /* drop duplicates */
    for (uint32_t i = 0; i < n.n; i++)
        if (k == 0 || sp_value_cmp(&values[k - 1], &values[i]) != 0)
            values[k++] = values[i];
    n.n = k;
    c->nvalues += k;
    if (x.type == SP_TYPE_NULL)
        *out = add_node(c, (node_t){.kind = NODE_CONST, .truth = EXPR_UNKNOWN});
    else
        *out = leaf(c, n, &x);
    return 0;
}

static bool is_const(const compiler_t *c, uint32_t i, expr_truth_t t)
{
    const node_t *n = &c->e->nodes[i];
    return n->kind == NODE_CONST && n->truth == t;
}

/* x AND y / x OR y, folding what constants decide: FALSE AND y is FALSE,
 * TRUE AND y is y (likewise for OR with TRUE and FALSE swapped). */
static uint32_t combine(compiler_t *c, node_kind_t kind, uint32_t x, uint32_t y)
{
    expr_truth_t absorbing = kind == NODE_AND ? EXPR_FALSE : EXPR_TRUE;
    expr_truth_t neutral = kind == NODE_AND ? EXPR_TRUE : EXPR_FALSE;
    if (is_const(c, x, absorbing) || is_const(c, y, neutral))
        return x;
    if (is_const(c, y, absorbing) || is_const(c, x, neutral))
        return y;
    if (is_const(c, x, EXPR_UNKNOWN) && is_const(c, y, EXPR_UNKNOWN))
        return x;
    return add_node(c, (node_t){.kind = (uint8_t)kind, .a = x, .b = y});
}

static int compile(compiler_t *c, const sql_expr_t *e, uint32_t *out)
{
    uint32_t x, y;
    int rc;
    if (e == NULL)
        return bind_error(c->b, SP_EINVAL, 0, "expected a condition");
    switch (e->kind) {
    case SQL_EXPR_CMP:
        return compile_cmp(c, e, out);
    case SQL_EXPR_IN:
        return compile_in(c, e, out);
    case SQL_EXPR_IS_NULL: {
        operand_t o;
        if ((rc = bind_operand(c, e->args[0], &o)) != 0)
            return rc;
        *out = leaf(c, (node_t){.kind = NODE_IS_NULL, .negated = e->negated, .a = (uint32_t)o.col}, &o);
        return 0;
    }
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        if ((rc = compile(c, e->args[0], &x)) != 0 || (rc = compile(c, e->args[1], &y)) != 0)
            return rc;
        *out = combine(c, e->kind == SQL_EXPR_AND ? NODE_AND : NODE_OR, x, y);
        return 0;
    case SQL_EXPR_NOT:
        if ((rc = compile(c, e->args[0], &x)) != 0)
            return rc;
        *out = add_node(c, (node_t){.kind = NODE_NOT, .a = x});
        if (c->e->nodes[x].kind == NODE_CONST)
            fold(c, *out, NULL);
        return 0;
    case SQL_EXPR_COLUMN:
    case SQL_EXPR_LITERAL:
        break;
    }
    return bind_error(c->b, SP_EINVAL, e->pos, "expected a condition");
}

static void expr_free(expr_t **e)
{
    free(*e);
    *e = NULL;
}

/* Compile where with operands as schema column indices. */
static int compile_where(binder_t *b, const sql_expr_t *where, expr_t **out)
{
    size_t nodes = 0, values = 0, bytes = 0;
    expr_size(where, &nodes, &values, &bytes);
    size_t size = sizeof(expr_t) + nodes * sizeof(node_t) + values * sizeof(sp_value_t) + bytes;
    expr_t *e = sp_xcalloc(1, size);
    e->nodes = (node_t *)(e + 1);
    e->values = (sp_value_t *)(e->nodes + nodes);
    e->bytes = (char *)(e->values + values);
    compiler_t c = {.b = b, .e = e};
    int rc = compile(&c, where, &e->root);
    if (rc != 0)
        expr_free(&e);
    *out = e;
    return rc;
}

/* ---- binding: the plan ------------------------------------------------------- */

/* The slot of schema column col, added when new. */
static uint32_t slot_of(plan_t *p, int *col_slot, const schema_t *s, int col)
{
    if (col_slot[col] < 0) {
        plan_slot_t *sl = &p->slots[p->nslots];
        sl->name = sp_xstrdup(s->cols[col].name);
        sl->schema_index = col;
        sl->type = s->cols[col].type;
        col_slot[col] = (int)p->nslots++;
    }
    return (uint32_t)col_slot[col];
}

/* Columns of the live nodes, from schema indices to slots, in text order. */
static void where_slots(plan_t *p, int *col_slot, const schema_t *s, uint32_t i)
{
    node_t *n = &p->where->nodes[i];
    switch ((node_kind_t)n->kind) {
    case NODE_CONST:
        break;
    case NODE_CMP2:
        n->a = slot_of(p, col_slot, s, (int)n->a);
        n->b = slot_of(p, col_slot, s, (int)n->b);
        break;
    case NODE_CMP:
    case NODE_IS_NULL:
    case NODE_IN:
        n->a = slot_of(p, col_slot, s, (int)n->a);
        break;
    case NODE_AND:
    case NODE_OR:
        where_slots(p, col_slot, s, n->a);
        where_slots(p, col_slot, s, n->b);
        break;
    case NODE_NOT:
        where_slots(p, col_slot, s, n->a);
        break;
    }
}

static agg_func_t agg_func_of(sql_agg_func_t f)
{
    switch (f) {
    case SQL_AGG_COUNT: return AGG_COUNT;
    case SQL_AGG_SUM: return AGG_SUM;
    case SQL_AGG_MIN: return AGG_MIN;
    case SQL_AGG_MAX: return AGG_MAX;
    case SQL_AGG_AVG: return AGG_AVG;
    case SQL_AGG_NONE:
    case SQL_AGG_COUNT_STAR:
        break;
    }
    return AGG_COUNT_STAR;
}

/* An aggregate while binding: the function and the schema column (-1). */
typedef struct bound_agg {
    agg_func_t func;
    int col;
    const char *name; /* the schema's name of col, "" for count(*) */
} bound_agg_t;

static int cmp_bound_agg(const void *x, const void *y)
{
    const bound_agg_t *a = x, *b = y;
    if (a->func != b->func)
        return a->func < b->func ? -1 : 1;
    return strcmp(a->name, b->name);
}

static char *output_name(const sql_item_t *it)
{
    if (it->alias != NULL)
        return sp_xstrdup(it->alias);
    if (it->agg == SQL_AGG_NONE)
        return sp_xstrdup(it->column);
    if (it->agg == SQL_AGG_COUNT_STAR)
        return sp_xstrdup("count(1)");
    return sp_xasprintf("%s(%s)", agg_func_name(agg_func_of(it->agg)), it->column);
}

int plan_bind(const sql_stmt_t *st, const char *source_name, const schema_t *schema, plan_t **out,
              sp_err_t *err)
{
    *out = NULL;
    binder_t b = {.st = st, .schema = schema, .err = err};
    if (strcasecmp(st->from, source_name) != 0)
        return bind_error(&b, SP_EINVAL, st->from_pos, "unknown source '%s' in FROM (the source is '%s')",
                          st->from, source_name);
    plan_t *p = sp_xcalloc(1, sizeof *p);
    int *item_col = sp_xmalloc((st->nitems + 1) * sizeof(int));
    int *group_col = sp_xmalloc((st->ngroups + 1) * sizeof(int));
    int *col_slot = sp_xmalloc((schema->ncols + 1) * sizeof(int));
    bound_agg_t *aggs = sp_xmalloc((st->nitems + 1) * sizeof *aggs);
    size_t naggs = 0, ngroups = 0;
    int rc = 0;

    /* Errors come in the order of the text: SELECT items, WHERE, GROUP BY. */
    for (size_t i = 0; rc == 0 && i < st->nitems; i++) {
        const sql_item_t *it = &st->items[i];
        item_col[i] = -1;
        if (it->agg == SQL_AGG_COUNT_STAR)
            continue;
        if ((rc = resolve(&b, it->column, it->column_pos, &item_col[i])) != 0)
            break;
        sp_type_t t = schema->cols[item_col[i]].type;
        if ((it->agg == SQL_AGG_SUM || it->agg == SQL_AGG_AVG) && t != SP_TYPE_BIGINT &&
            t != SP_TYPE_DOUBLE)
            rc = bind_error(&b, SP_ETYPE, it->column_pos,
                            "%s needs a BIGINT or DOUBLE column; '%s' is %s",
                            agg_func_name(agg_func_of(it->agg)), it->column, sp_type_name(t));
    }
    if (rc == 0 && st->where != NULL)
        rc = compile_where(&b, st->where, &p->where);
    for (size_t i = 0; rc == 0 && i < st->ngroups; i++) {
        int col;
        if ((rc = resolve(&b, st->groups[i].column, st->groups[i].pos, &col)) != 0)
            break;
        size_t k = 0; /* GROUP BY a, A groups by one key */
        while (k < ngroups && group_col[k] != col)
            k++;
        if (k == ngroups)
            group_col[ngroups++] = col;
    }

    /* The canonical aggregates: distinct, sorted by function and column. */
    for (size_t i = 0; rc == 0 && i < st->nitems; i++) {
        if (st->items[i].agg == SQL_AGG_NONE)
            continue;
        bound_agg_t a = {agg_func_of(st->items[i].agg), item_col[i],
                         item_col[i] >= 0 ? schema->cols[item_col[i]].name : ""};
        size_t k = 0;
        while (k < naggs && !(aggs[k].func == a.func && aggs[k].col == a.col))
            k++;
        if (k == naggs)
            aggs[naggs++] = a;
    }
    qsort(aggs, naggs, sizeof *aggs, cmp_bound_agg);
    if (rc == 0 && naggs == 0 && ngroups == 0)
        rc = bind_error(&b, SP_EINVAL, st->nitems ? st->items[0].pos : 0,
                        "spate runs aggregations: add GROUP BY or an aggregate "
                        "(count, sum, min, max, avg)");
    for (size_t i = 0; rc == 0 && i < st->nitems; i++) {
        if (st->items[i].agg != SQL_AGG_NONE)
            continue;
        size_t k = 0;
        while (k < ngroups && group_col[k] != item_col[i])
            k++;
        if (k == ngroups)
            rc = bind_error(&b, SP_EINVAL, st->items[i].pos,
                            "column '%s' must appear in GROUP BY or be inside an aggregate",
                            st->items[i].column);
    }
    if (rc != 0)
        goto done;

    /* Slots: the grouping keys first (so slot i is key i and a row's slots
     * begin with its key tuple), then aggregate inputs in canonical order,
     * then columns only WHERE reads, in the order the text names them. */
    p->source_name = sp_xstrdup(source_name);
    p->slots = sp_xcalloc(schema->ncols + 1, sizeof(plan_slot_t));
    for (size_t i = 0; i < schema->ncols; i++)
        col_slot[i] = -1;
    p->group_slots = sp_xmalloc((ngroups + 1) * sizeof(int));
    p->ngroups = ngroups;
    for (size_t i = 0; i < ngroups; i++)
        p->group_slots[i] = (int)slot_of(p, col_slot, schema, group_col[i]);
    p->aggs = sp_xmalloc((naggs + 1) * sizeof(agg_spec_t));
    p->naggs = naggs;
    for (size_t i = 0; i < naggs; i++) {
        agg_spec_t *a = &p->aggs[i];
        a->func = aggs[i].func;
        a->slot = aggs[i].col >= 0 ? (int)slot_of(p, col_slot, schema, aggs[i].col) : -1;
        a->in_type = aggs[i].col >= 0 ? schema->cols[aggs[i].col].type : SP_TYPE_NULL;
        if (a->func == AGG_MIN || a->func == AGG_MAX)
            a->out_type = a->in_type;
        else if (a->func == AGG_AVG || (a->func == AGG_SUM && a->in_type == SP_TYPE_DOUBLE))
            a->out_type = SP_TYPE_DOUBLE;
        else
            a->out_type = SP_TYPE_BIGINT;
    }
    if (p->where != NULL)
        where_slots(p, col_slot, schema, p->where->root);

    p->outputs = sp_xcalloc(st->nitems, sizeof(plan_output_t));
    p->noutputs = st->nitems;
    for (size_t i = 0; i < st->nitems; i++) {
        const sql_item_t *it = &st->items[i];
        plan_output_t *o = &p->outputs[i];
        o->name = output_name(it);
        if (it->agg == SQL_AGG_NONE) {
            o->index = col_slot[item_col[i]]; /* key k is slot k */
            o->type = schema->cols[item_col[i]].type;
            continue;
        }
        o->is_agg = true;
        while (p->aggs[o->index].func != agg_func_of(it->agg) ||
               p->aggs[o->index].slot != (item_col[i] >= 0 ? col_slot[item_col[i]] : -1))
            o->index++;
        o->type = p->aggs[o->index].out_type;
    }
    *out = p;
    p = NULL;
done:
    plan_destroy(&p);
    free(item_col);
    free(group_col);
    free(col_slot);
    free(aggs);
    return rc;
}

int plan_build(const char *sql, const char *source_name, const schema_t *schema, plan_t **out,
               sp_err_t *err)
{
    sql_stmt_t *st;
    *out = NULL;
    int rc = sql_parse(sql, &st, err);
    if (rc != 0)
        return rc;
    rc = plan_bind(st, source_name, schema, out, err);
    sql_stmt_destroy(&st);
    return rc;
}

void plan_destroy(plan_t **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    plan_t *p = *pp;
    free(p->source_name);
    for (size_t i = 0; i < p->nslots; i++)
        free(p->slots[i].name);
    free(p->slots);
    free(p->group_slots);
    free(p->aggs);
    for (size_t i = 0; i < p->noutputs; i++)
        free(p->outputs[i].name);
    free(p->outputs);
    expr_free(&p->where);
    free(p);
    *pp = NULL;
}

/* ---- signatures --------------------------------------------------------------- */

/* The schema text form of one slot ("x DOUBLE", "`a b` STRING"), so names
 * quote the way schemas do. */
static char *slot_text(const plan_t *p, int slot)
{
    schema_col_t col = {p->slots[slot].name, p->slots[slot].type};
    schema_t s = {&col, 1};
    return schema_format(&s);
}

char *plan_group_signature(const plan_t *p)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < p->ngroups; i++) {
        char *t = slot_text(p, p->group_slots[i]);
        sp_buf_printf(&b, "%s%s", i ? ", " : "", t);
        free(t);
    }
    return sp_buf_cstr(&b);
}

char *plan_aggs_signature(const plan_t *p)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < p->naggs; i++) {
        const agg_spec_t *a = &p->aggs[i];
        char *t = a->slot >= 0 ? slot_text(p, a->slot) : sp_xstrdup("*");
        sp_buf_printf(&b, "%s%s(%s)", i ? ", " : "", agg_func_name(a->func), t);
        free(t);
    }
    return sp_buf_cstr(&b);
}

char *plan_state_signature(const plan_t *p)
{
    char *g = plan_group_signature(p), *a = plan_aggs_signature(p);
    char *s = sp_xasprintf("group: %s; aggs: %s", g, a);
    free(g);
    free(a);
    return s;
}
