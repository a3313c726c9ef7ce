/* query/sql.h -- the SQL front end: parses the subset spate runs into a
 * syntax tree, with errors that point at the position.
 *
 *   query   := SELECT item (',' item)* FROM name [WHERE cond]
 *              [GROUP BY column (',' column)*] [';']
 *   item    := (column | aggregate) [[AS] alias]
 *   aggregate := COUNT '(' '*' ')' | COUNT '(' number ')' | COUNT '(' column ')'
 *              | (SUM | MIN | MAX | AVG) '(' column ')'
 *   cond    := cond OR cond | cond AND cond | NOT cond | '(' cond ')'
 *              | operand cmp operand        cmp: = == != <> < <= > >=
 *              | operand IS [NOT] NULL
 *              | operand [NOT] IN '(' literal (',' literal)* ')'
 *   operand := column | literal
 *   literal := number | 'string' | "string" | TRUE | FALSE | NULL
 *              (a leading '-' or '+' on numbers)
 *   column  := identifier | `quoted identifier`
 *
 * Keywords are case-insensitive. Identifiers keep their case; resolution
 * against the schema happens in plan_bind (query/plan.h). Strings use SQL
 * doubling ('it''s') or backslash escapes (\' \" \\ \n \t), as Spark does. */
#ifndef SP_SQL_H
#define SP_SQL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_err.h"
#include "value.h"

typedef enum sql_agg_func {
    SQL_AGG_NONE = 0, /* a plain column */
    SQL_AGG_COUNT_STAR,
    SQL_AGG_COUNT,
    SQL_AGG_SUM,
    SQL_AGG_MIN,
    SQL_AGG_MAX,
    SQL_AGG_AVG,
} sql_agg_func_t;

typedef enum sql_expr_kind {
    SQL_EXPR_COLUMN,
    SQL_EXPR_LITERAL,
    SQL_EXPR_CMP,     /* op, args[0], args[1] */
    SQL_EXPR_AND,     /* args[0], args[1] */
    SQL_EXPR_OR,      /* args[0], args[1] */
    SQL_EXPR_NOT,     /* args[0] */
    SQL_EXPR_IS_NULL, /* args[0]; negated for IS NOT NULL */
    SQL_EXPR_IN,      /* args[0] IN (list); negated for NOT IN */
} sql_expr_kind_t;

typedef enum sql_cmp_op {
    SQL_CMP_EQ, SQL_CMP_NE, SQL_CMP_LT, SQL_CMP_LE, SQL_CMP_GT, SQL_CMP_GE,
} sql_cmp_op_t;

/* A node of the WHERE tree. Owned by its sql_stmt_t. */
typedef struct sql_expr {
    sql_expr_kind_t kind;
    size_t pos;            /* byte offset in the SQL text, for messages */
    bool negated;          /* IS NOT NULL, NOT IN */
    sql_cmp_op_t op;       /* SQL_EXPR_CMP */
    char *column;          /* SQL_EXPR_COLUMN: the name as written */
    sp_value_t literal;    /* SQL_EXPR_LITERAL; strings owned by the stmt.
                              Integer literals are BIGINT, others DOUBLE. */
    struct sql_expr *args[2];
    sp_value_t *list;      /* SQL_EXPR_IN: literals */
    size_t nlist;
} sql_expr_t;

typedef struct sql_item {
    sql_agg_func_t agg;    /* SQL_AGG_NONE for a plain column */
    char *column;          /* the column as written; NULL for count(*) */
    char *alias;           /* NULL when none */
    char *text;            /* the item as written, e.g. "count(*)" */
    size_t pos;            /* byte offset of the item */
    size_t column_pos;     /* byte offset of the column name */
} sql_item_t;

typedef struct sql_group {
    char *column;
    size_t pos;
} sql_group_t;

typedef struct sql_stmt {
    sql_item_t *items;
    size_t nitems;
    char *from;
    size_t from_pos;
    sql_expr_t *where;     /* NULL when no WHERE */
    sql_group_t *groups;
    size_t ngroups;
    char *text;            /* a copy of the SQL text */
} sql_stmt_t;

/* Parse text. On success *out is a new statement the caller owns (free with
 * sql_stmt_destroy). On failure returns SP_EPARSE with a one-line message
 * naming line and column and what was expected, e.g.
 * "SQL syntax error at line 1, column 21: expected FROM, found 'FORM'". */
int sql_parse(const char *text, sql_stmt_t **out, sp_err_t *err);

/* Frees *st and sets it to NULL; safe on NULL. */
void sql_stmt_destroy(sql_stmt_t **st);

/* Line and column (1-based) of byte offset pos in text. */
void sql_position(const char *text, size_t pos, int *line, int *col);

/* Record in err the one-line message "SQL <kind> at line L, column C:
 * <message>" for byte offset pos of text; returns rc. Parser and binder
 * both report through it. */
int sql_error_vat(sp_err_t *err, int rc, const char *text, size_t pos, const char *kind,
                  const char *fmt, va_list ap);

#endif
