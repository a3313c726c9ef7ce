/* driver/sink.h -- where results go, behind one small ops table:
 *
 *   console       a table per batch headed "Batch: N", as Spark prints it
 *                 (20 rows at most, long strings cut)
 *   memory:NAME   a named result table: the committed state itself, read
 *                 while the query runs or after with `spate result` (and
 *                 the driver's result API)
 *   json:DIR      one JSON Lines file per batch, DIR/batch-<N>.json, placed
 *                 by rename; its name is deterministic, so a batch re-run
 *                 after a crash rewrites the same file: never duplicated,
 *                 never lost (the commit waits for the rename and fsync)
 *
 * Per batch the driver calls sink_write_batch before the checkpoint commit
 * and stores the returned bookkeeping record in the same transaction. */
#ifndef SP_SINK_H
#define SP_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"
#include "result.h"
#include "sp_err.h"
#include "sp_util.h"

typedef enum output_mode {
    OUTPUT_COMPLETE = 0, /* every group after each batch */
    OUTPUT_UPDATE = 1,   /* the groups a batch changed */
} output_mode_t;

typedef struct sink sink_t;

/* Check a sink description without opening it: SP_EINVAL with a message
 * for an unknown kind or a missing NAME/DIR. */
int sink_validate(const char *desc, sp_err_t *err);

/* Open the sink described by desc for a query with this plan (borrowed;
 * must outlive the sink). json:DIR creates DIR. */
int sink_open(const char *desc, output_mode_t mode, const plan_t *plan, sink_t **out, sp_err_t *err);
void sink_close(sink_t **s);

/* Spark-style description: "ConsoleSink", "MemorySink[NAME]",
 * "FileSink[DIR]". Borrowed. */
const char *sink_describe(const sink_t *s);

/* The memory sink's name, or NULL for other sinks. */
const char *sink_memory_name(const sink_t *s);

/* True when the sink needs all rows each batch (complete mode, for the
 * console and json sinks); the driver then passes them as `all`. */
bool sink_wants_all_rows(const sink_t *s);

/* Output batch batch_id: `changed` holds the groups this batch changed,
 * `all` every group (NULL unless sink_wants_all_rows). Appends the sink's
 * bookkeeping record (versioned bytes) to record. SP_EIO on failure. */
int sink_write_batch(sink_t *s, int64_t batch_id, const result_set_t *changed,
                     const result_set_t *all, sp_buf_t *record, sp_err_t *err);

#endif
