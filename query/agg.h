/* query/agg.h -- the aggregation kernel: a hash table from group key to the
 * partial states of a query's aggregates, and the byte form of those states.
 *
 * Executors fill a table row by row (agg_table_add_row) and ship its entries
 * as (key bytes, state bytes). The driver merges shipped entries into a
 * table for the batch (agg_table_merge_entry), then merges each entry with
 * the state already in the checkpoint (agg_state_merge_bytes) and writes the
 * result back.
 *
 * State bytes (format version 1, stable across releases): the states of the
 * canonical aggregates one after another:
 *
 *   aggregate            bytes
 *   count(*), count(c)   8: int64 count, little endian
 *   sum(BIGINT)          1 + 8: has-value flag (0/1), int64 sum (wraps on
 *                        overflow, as Spark's non-ANSI sum does)
 *   sum(DOUBLE)          1 + 8: has-value flag, double sum
 *   min(c), max(c)       one key-codec value (query/value.h); NULL = none
 *   avg(c)               8 + 8: double sum, int64 count
 *
 * Merging is deterministic: the driver merges a batch's task results in task
 * order, so a batch gives the same doubles whatever executors ran it. */
#ifndef SP_AGG_H
#define SP_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "sp_err.h"
#include "sp_util.h"
#include "value.h"

typedef struct agg_table agg_table_t;

/* A table for the given aggregates (copied) and ngroups grouping keys.
 * Never returns NULL. */
agg_table_t *agg_table_new(const agg_spec_t *aggs, size_t naggs, size_t ngroups);

/* Frees *t and sets it to NULL; safe on NULL. */
void agg_table_destroy(agg_table_t **t);

/* Remove every entry, keeping the allocated capacity for reuse. */
void agg_table_clear(agg_table_t *t);

/* Number of groups in the table. */
size_t agg_table_count(const agg_table_t *t);

/* Bytes of memory the table holds (for state-size figures). */
size_t agg_table_memory(const agg_table_t *t);

/* Add one row: keys holds the ngroups grouping values, slots the row's
 * slot values (the aggregates read slots[spec.slot]). Strings are copied. */
void agg_table_add_row(agg_table_t *t, const sp_value_t *keys, const sp_value_t *slots);

/* Make sure the group with these key bytes exists (with empty aggregate
 * states: counts 0, the rest NULL). A global aggregate (no GROUP BY) has one
 * group, the empty key, that exists even when no row arrives. */
void agg_table_touch(agg_table_t *t, const void *key, size_t klen);

/* Merge one encoded entry (key bytes as produced by the key codec, state
 * bytes as above) into the table. Validates both: SP_ECORRUPT with a
 * message when the bytes do not fit the layout. */
int agg_table_merge_entry(agg_table_t *t, const void *key, size_t klen, const void *state,
                          size_t slen, sp_err_t *err);

/* Iterate entries in insertion order: *pos starts at 0. Fills the key bytes
 * (borrowed from the table until it changes) and appends the state bytes to
 * state_out (which the caller resets between calls as it wishes). Returns
 * false at the end. */
bool agg_table_next(const agg_table_t *t, size_t *pos, const void **key, size_t *klen,
                    uint64_t *hash, sp_buf_t *state_out);

/* ---- state bytes ------------------------------------------------------ */

/* Merge two encoded states of the same layout: out = a (+) b, appended to
 * out. Either of a or b may be NULL (absent). Validates; SP_ECORRUPT. */
int agg_state_merge_bytes(const agg_spec_t *aggs, size_t naggs, const void *a, size_t alen,
                          const void *b, size_t blen, sp_buf_t *out, sp_err_t *err);

/* Finalize an encoded state into naggs values (count, sum, min, max, avg
 * each as the SQL result: sum of no value is NULL, avg of no value is NULL).
 * String values borrow from state. Validates; SP_ECORRUPT. */
int agg_state_finalize(const agg_spec_t *aggs, size_t naggs, const void *state, size_t slen,
                       sp_value_t *out, sp_err_t *err);

#endif
