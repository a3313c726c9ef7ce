/* driver/resolve.h -- what the driver settles before its first batch: the
 * checkpoint (created, or opened and checked against the query), the schema
 * (given, inferred from the files present at the first start, or read back
 * from the checkpoint so it never drifts), and the bound plan.
 *
 * A query may resume on a checkpoint when its state signature matches:
 * same source (name, format, directory), same grouping keys and types, same
 * aggregates. A different WHERE, trigger, limits, sink, output mode, SELECT
 * order or aliases, or executor count is compatible. Anything else is
 * refused before the checkpoint is written to, with a message that names
 * the difference and says to use a new, empty checkpoint directory. */
#ifndef SP_RESOLVE_H
#define SP_RESOLVE_H

#include <stdatomic.h>

#include "ckpt.h"
#include "driver.h"
#include "plan.h"
#include "schema.h"
#include "source.h"
#include "sql.h"

#define RESOLVE_DEFAULT_KEY_GROUPS 256u

typedef struct resolved {
    ckpt_t *ckpt;
    ckpt_query_t rec;       /* the query record as written for this run */
    schema_t *schema;
    char *schema_text;
    plan_t *plan;
    source_t *source;
    bool created;           /* the checkpoint was created by this start */
} resolved_t;

/* Called about every 200 ms while resolve_query waits for the first file,
 * so the caller can serve its socket meanwhile. */
typedef void (*resolve_idle_fn)(void *ctx);

/* Resolve o into r. While waiting for the first file to infer a schema, it
 * calls idle (if not NULL) and returns SP_ESTOPPED when *stop becomes
 * non-zero; with a once or available-now trigger and no file at all it
 * returns SP_ENOTFOUND (nothing to do; nothing was written). */
int resolve_query(const driver_opts_t *o, atomic_int *stop, resolve_idle_fn idle, void *idle_ctx,
                  resolved_t *r, sp_err_t *err);

void resolve_free(resolved_t *r);

/* Infer a schema from the listed files, reading at most max_bytes. */
int resolve_infer_schema(const source_listing_t *files, uint64_t max_bytes, schema_t **out,
                         sp_err_t *err);

#endif
