/* driver/alerts.h -- alert rules on a query's figures and events, fired
 * once per episode, with actions that reach what a team already runs.
 *
 * A rule, given with --alert or one per line in --alerts-file (# comments):
 *
 *   NAME: CONDITION [for N batches | for DURATION]
 *
 *   CONDITION                       true while
 *   query_failed                    the query terminated with an error
 *   executor_lost                   an executor was lost and no other has
 *                                   taken its place yet
 *   METRIC OP VALUE                 OP one of < <= > >= = !=, VALUE a number
 *                                   with an optional unit (K M G for sizes,
 *                                   ms s m h for durations, % for rates) or
 *                                   another METRIC
 *
 *   METRIC            from
 *   input_rate        rows/s arriving (Spark's inputRowsPerSecond)
 *   processing_rate   rows/s processed (processedRowsPerSecond)
 *   batch_duration    the last batch's duration (ms)
 *   backlog_files     files seen in the source and not yet processed
 *   backlog_bytes     their bytes
 *   backlog_age       age of the oldest of them (ms; 0 when none)
 *   malformed_rate    malformed / (input + malformed) rows of the last batch
 *   malformed_rows    malformed rows of the last batch
 *   state_rows        groups in state
 *   executors_alive   registered executors
 *
 * e.g. "behind: processing_rate < input_rate for 3 batches",
 * "backlog: backlog_files > 100", "stale: backlog_age > 5m for 30s",
 * "slow: batch_duration > 10s", "bad_input: malformed_rate > 1%".
 *
 * Rate and batch figures are judged after each batch ("for N batches": N
 * batches in a row); backlog and executor figures also between batches
 * ("for DURATION": continuously that long). A rule fires when its condition
 * holds (for the given span), and resolves when it no longer holds: one
 * firing and one resolving per episode, however many batches it lasts.
 *
 * Actions (--alert-action, repeatable; default log), run for every firing
 * and resolving alert, off the driver's loop, in order:
 *
 *   log                  a WARN (firing) or INFO (resolved) log line
 *   command:CMD          /bin/sh -c CMD with the alert as JSON on stdin
 *                        (killed after 10 s)
 *   webhook:URL          HTTP POST of the alert as JSON (libcurl)
 *   alertmanager:URL     POST to URL/api/v2/alerts: [{labels: {alertname,
 *                        query, severity}, annotations: {summary,
 *                        description}, startsAt, endsAt (on resolve),
 *                        generatorURL}], repeated every minute while firing
 *                        as Alertmanager expects
 *
 * The alert JSON: {"name", "state": "firing"|"resolved", "condition",
 * "value" (the figure that decided), "since" (ISO-8601), "summary",
 * "query": {"id", "runId", "name"}}. */
#ifndef SP_ALERTS_H
#define SP_ALERTS_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_err.h"

typedef struct alerts alerts_t;

/* Called on the driver's thread for each firing or resolving alert, with
 * its JSON (borrowed for the call). */
typedef void (*alerts_publish_fn)(void *ctx, const char *alert_json);

typedef struct alerts_query {
    const char *id, *run_id, *name;
    const char *http_url;         /* for generatorURL; may be NULL */
} alerts_query_t;

alerts_t *alerts_new(const alerts_query_t *q, alerts_publish_fn publish, void *ctx);

/* Waits (up to a few seconds) for queued actions, then frees *a and sets it
 * to NULL; safe on NULL. */
void alerts_destroy(alerts_t **a);

/* Add a rule; SP_EINVAL with a message naming the problem and its column. */
int alerts_add_rule(alerts_t *a, const char *text, sp_err_t *err);

/* Add every rule of a file; errors name file and line. */
int alerts_load_file(alerts_t *a, const char *path, sp_err_t *err);

/* Add an action ("log", "command:CMD", "webhook:URL", "alertmanager:URL"). */
int alerts_add_action(alerts_t *a, const char *spec, sp_err_t *err);

/* Start the actions' thread (after rules and actions are added). */
int alerts_start(alerts_t *a, sp_err_t *err);

/* What rules look at. */
typedef struct alerts_figures {
    int64_t now_ms;               /* wall clock */
    bool after_batch;             /* a batch just committed: batch figures are new */
    double input_rate, processing_rate;
    uint64_t batch_duration_ms, batch_rows, batch_malformed;
    uint64_t backlog_files, backlog_bytes;
    int64_t backlog_age_ms;
    uint64_t state_rows;
    uint32_t executors_alive;
} alerts_figures_t;

/* Evaluate every rule (the driver calls it after each batch and about once a
 * second between batches). */
void alerts_evaluate(alerts_t *a, const alerts_figures_t *f);

/* Events behind query_failed and executor_lost. */
void alerts_executor_lost(alerts_t *a, const char *executor_id, int64_t now_ms);
void alerts_executor_added(alerts_t *a, int64_t now_ms);
void alerts_query_failed(alerts_t *a, const char *message, int64_t now_ms);

/* How many rules are firing now. */
unsigned alerts_firing(alerts_t *a);

/* The rules and their state as a JSON array, for /api/alerts:
 * [{"name", "condition", "state": "ok"|"pending"|"firing", "since",
 *   "value", "fired", "resolved"}]. malloc'd. */
char *alerts_table_json(alerts_t *a);

#endif
