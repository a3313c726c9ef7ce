/* query/plan.h -- a parsed query bound to a source and a schema: which
 * columns the scanner extracts (slots), the WHERE filter over those slots,
 * the grouping keys, and the aggregates in the canonical order that the
 * state layout uses. Driver and executor both build it from the same SQL
 * text and schema text, so it never travels on the wire.
 *
 * Canonical aggregate order: the distinct aggregates of the SELECT list,
 * sorted by (function, input column name). Reordering or renaming SELECT
 * items therefore does not change the state layout; changing a grouping key
 * or an aggregate does (see plan_state_signature).
 *
 * Output names: the alias where there is one, else Spark's default names:
 * the column name for a plain column, "count(1)" for count(*), otherwise
 * "func(col)" in lower case with the column as written, e.g. "sum(x)". */
#ifndef SP_PLAN_H
#define SP_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "schema.h"
#include "sp_err.h"
#include "sql.h"
#include "value.h"

typedef enum agg_func {
    AGG_COUNT_STAR = 0,
    AGG_COUNT = 1,
    AGG_SUM = 2,
    AGG_MIN = 3,
    AGG_MAX = 4,
    AGG_AVG = 5,
} agg_func_t;

/* "count", "count", "sum", "min", "max", "avg". */
const char *agg_func_name(agg_func_t f);

/* One aggregate of the state layout. */
typedef struct agg_spec {
    agg_func_t func;
    int slot;           /* input slot; -1 for count(*) */
    sp_type_t in_type;  /* input column type; SP_TYPE_NULL for count(*) */
    sp_type_t out_type; /* BIGINT for counts and sum(BIGINT); DOUBLE for
                           sum(DOUBLE) and avg; in_type for min/max */
} agg_spec_t;

/* A column the scanner extracts. Slots are numbered 0..nslots-1. */
typedef struct plan_slot {
    char *name;         /* the schema's exact name (the JSON key) */
    int schema_index;
    sp_type_t type;
} plan_slot_t;

typedef struct plan_output {
    char *name;         /* output column name */
    bool is_agg;        /* true: index into aggs; false: into group keys */
    int index;
    sp_type_t type;
} plan_output_t;

/* A compiled WHERE condition (opaque). */
typedef struct expr expr_t;

typedef struct plan {
    char *source_name;
    plan_slot_t *slots;      /* what jscan extracts, in slot order */
    size_t nslots;
    int *group_slots;        /* slot of each grouping key, GROUP BY order */
    size_t ngroups;
    agg_spec_t *aggs;        /* canonical order */
    size_t naggs;
    plan_output_t *outputs;  /* SELECT order */
    size_t noutputs;
    expr_t *where;           /* NULL when there is no WHERE */
} plan_t;

/* Bind st to the source named source_name with the given schema: resolves
 * columns (schema_find), checks types (sum/avg need BIGINT or DOUBLE; a
 * comparison needs comparable sides: numbers with numbers, strings with
 * strings, booleans with booleans), checks that every plain SELECT column is
 * a GROUP BY column, and that the query aggregates (GROUP BY or at least one
 * aggregate). Errors point at the SQL position, e.g. "SQL error at line 1,
 * column 8: unknown column 'gtt' (did you mean 'gt'?)". On success *out is
 * a new plan the caller owns; st and schema are not kept. */
int plan_bind(const sql_stmt_t *st, const char *source_name, const schema_t *schema,
              plan_t **out, sp_err_t *err);

/* sql_parse + plan_bind in one call. */
int plan_build(const char *sql, const char *source_name, const schema_t *schema,
               plan_t **out, sp_err_t *err);

/* Frees *p and sets it to NULL; safe on NULL. */
void plan_destroy(plan_t **p);

/* Truth values of SQL's three-valued logic. */
typedef enum expr_truth { EXPR_FALSE = 0, EXPR_TRUE = 1, EXPR_UNKNOWN = 2 } expr_truth_t;

/* Evaluate the WHERE condition over a row's slot values (p->nslots of
 * them). A comparison with NULL is UNKNOWN; NOT UNKNOWN is UNKNOWN;
 * FALSE AND x is FALSE; TRUE OR x is TRUE; x IN (list) is UNKNOWN when no
 * element matches and x or an element is NULL. BIGINT and DOUBLE compare
 * numerically. */
expr_truth_t expr_eval(const expr_t *e, const sp_value_t *slots);

/* True when the row passes the plan's WHERE (or there is none). */
static inline bool plan_row_passes(const plan_t *p, const sp_value_t *slots)
{
    return p->where == NULL || expr_eval(p->where, slots) == EXPR_TRUE;
}

/* The part of the query the checkpoint's state depends on, as canonical
 * text: grouping keys with types, then the canonical aggregates, e.g.
 * "group: gt STRING; aggs: count(*), sum(x DOUBLE)". Two plans whose
 * signatures are equal can share a checkpoint's state. Malloc'd. */
char *plan_state_signature(const plan_t *p);

/* The grouping keys as text ("gt STRING, Model STRING"), malloc'd. */
char *plan_group_signature(const plan_t *p);

/* The canonical aggregates as text ("count(*), sum(x DOUBLE)"), malloc'd. */
char *plan_aggs_signature(const plan_t *p);

#endif
