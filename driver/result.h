/* driver/result.h -- result rows: the query's output columns computed from
 * (group key, aggregate state) pairs, sorted by group key, and rendered as
 * a table (Spark's show() layout), JSON Lines or CSV. Used by the sinks and
 * by `spate result`.
 *
 * JSON Lines: one object per row, keys named as the SELECT list names the
 * columns, SQL NULL as null, numbers as JSON numbers (doubles printed
 * shortest-exact, so they read back to the same value; NaN and infinities
 * as the strings "NaN", "Infinity", "-Infinity", as Spark writes them). */
#ifndef SP_RESULT_H
#define SP_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ckpt.h"
#include "plan.h"
#include "sp_err.h"
#include "sp_util.h"

typedef enum result_format {
    RESULT_TABLE = 0,
    RESULT_JSON = 1,
    RESULT_CSV = 2,
} result_format_t;

/* "table", "json", "csv" -> format; SP_EINVAL otherwise. */
int result_format_parse(const char *text, result_format_t *out, sp_err_t *err);

typedef struct result_set result_set_t;

/* An empty set with the plan's output columns. The plan is borrowed and
 * must outlive the set. */
result_set_t *result_set_new(const plan_t *plan);
void result_set_destroy(result_set_t **rs);
void result_set_clear(result_set_t *rs);

/* Add the row of one group: decodes the key, finalizes the state (copies
 * what it needs). SP_ECORRUPT when key or state do not fit the plan. */
int result_set_add(result_set_t *rs, const void *key, size_t klen, const void *state, size_t slen,
                   sp_err_t *err);

size_t result_set_rows(const result_set_t *rs);

/* Add every group of the checkpoint's committed state, its keys upgraded
 * on the way when the checkpoint is of an older format (a reader does not
 * rewrite it). */
int result_set_add_state(result_set_t *rs, ckpt_t *c, sp_err_t *err);

/* Add every group as the commit transaction t sees it (its own puts
 * included; a checkpoint of today's format). */
int result_set_add_txn_state(result_set_t *rs, ckpt_txn_t *t, sp_err_t *err);

/* Sort rows by the grouping keys in GROUP BY order (NULL first). */
void result_set_sort(result_set_t *rs);

/* Render. max_rows 0 means all; truncate cuts strings over 20 characters
 * in table form (as Spark's console sink does). */
void result_set_render(const result_set_t *rs, result_format_t fmt, size_t max_rows, bool truncate,
                       sp_buf_t *out);

/* Append one value as JSON. */
void result_json_value(sp_buf_t *out, const sp_value_t *v);
/* Append a JSON string literal of len bytes. */
void result_json_string(sp_buf_t *out, const char *s, size_t len);

#endif
