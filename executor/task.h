/* executor/task.h -- one task: scan the lines that start in a byte range of
 * a JSON-lines file, apply the query's filter and aggregate partially.
 * No sockets and no threads: the executor process wraps it.
 *
 * Line ownership: a range [start, end) owns every line whose first byte lies
 * in it, so consecutive ranges of one file see every line exactly once; the
 * last owned line is read to its newline even past `end`. Memory stays
 * bounded whatever the file size: lines are scanned where they lie in a
 * private mapping of the file (page cache, shared and evictable), and the
 * file's last bytes in a reused read buffer, grown only for a line longer
 * than it. A line longer than TASK_MAX_LINE counts as one malformed line.
 * The file must not shrink during the scan: if it does, the scan fails
 * with SP_EIO (the SIGBUS of a mapping is caught for that: task_scan
 * installs a SIGBUS handler once, which passes every other SIGBUS on to the
 * disposition it replaced). */
#ifndef SP_TASK_H
#define SP_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agg.h"
#include "jscan.h"
#include "plan.h"
#include "sp_err.h"
#include "wire.h"

#define TASK_MAX_LINE (64u << 20)

typedef struct task_stats {
    uint64_t rows;       /* lines that were JSON objects (and not dropped) */
    uint64_t malformed;  /* lines not valid JSON objects, plus rows dropped
                            for a type error in dropmalformed mode */
    uint64_t bytes;      /* bytes of the owned lines */
    uint64_t lines;      /* owned lines, blank ones included */
} task_stats_t;

/* A compiled query ready to scan: plan, scanner and scratch. Reused across
 * tasks of the same query. */
typedef struct task_query task_query_t;

/* Build from the texts a TASK carries. On error returns SP_E* with a
 * message (bad SQL or schema: the driver and executor disagree). */
int task_query_new(const char *source_name, const char *schema_text, const char *sql,
                   task_query_t **out, sp_err_t *err);
void task_query_destroy(task_query_t **q);

/* The plan (borrowed, valid for the life of q). */
const plan_t *task_query_plan(const task_query_t *q);

/* A fresh aggregate table for this query's layout (caller owns). */
agg_table_t *task_query_new_table(const task_query_t *q);

/* Scan [start, end) of path into table (which the caller cleared), adding
 * to stats. mode is a wire_mode_t. When *cancel becomes true the scan stops
 * early with SP_ESTOPPED. Errors: SP_EIO (cannot open/read, message names
 * the file), SP_EFAILED in failfast mode (message names file, line number
 * and the problem). */
int task_scan(task_query_t *q, const char *path, uint64_t start, uint64_t end, int mode,
              agg_table_t *table, task_stats_t *stats, const atomic_bool *cancel, sp_err_t *err);

#endif
