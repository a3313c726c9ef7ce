/* driver/monitor.h -- what a running query tells the world: its status, its
 * recent progress, its executors and batches, its alerts, as snapshots that
 * other threads (the HTTP server) read at any time, and as an ordered stream
 * of events delivered to listeners on threads of their own.
 *
 * The driver's loop is the only writer (monitor_* calls below "the
 * driver"); every reader function is thread-safe and returns a malloc'd
 * string the caller frees. Nothing here blocks on a listener: each listener
 * has a queue and a thread, so a slow one delays only itself, and it sees
 * every event, in publication order.
 *
 * Events (JSON, one object each, "event" names the kind; Spark's
 * StreamingQueryListener events keep Spark's fields):
 *
 *   QueryStartedEvent     id, runId, name, timestamp
 *   QueryProgressEvent    progress (progress.h)
 *   QueryIdleEvent        id, runId, timestamp
 *   QueryTerminatedEvent  id, runId, exception (null when it stopped
 *                         cleanly), errorClassOnException
 *   ExecutorAddedEvent    id, runId, timestamp, executor {id, host, pid, slots}
 *   ExecutorLostEvent     id, runId, timestamp, executor {...}, reason
 *   AlertEvent            id, runId, timestamp, alert {name, state
 *                         ("firing"|"resolved"), condition, value, since,
 *                         summary}
 */
#ifndef SP_MONITOR_H
#define SP_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"
#include "sp_err.h"

typedef struct monitor monitor_t;

typedef enum monitor_event_kind {
    MONITOR_QUERY_STARTED = 0,
    MONITOR_QUERY_PROGRESS,
    MONITOR_QUERY_IDLE,
    MONITOR_QUERY_TERMINATED,
    MONITOR_EXECUTOR_ADDED,
    MONITOR_EXECUTOR_LOST,
    MONITOR_ALERT,
} monitor_event_kind_t;

/* "QueryStartedEvent", ... */
const char *monitor_event_name(monitor_event_kind_t kind);

/* An event as a listener receives it; borrowed for the callback's duration. */
typedef struct monitor_event {
    monitor_event_kind_t kind;
    uint64_t seq;          /* 1, 2, 3, ... in publication order */
    int64_t timestamp_ms;
    const char *json;      /* the whole event, one line of JSON */
} monitor_event_t;

/* A listener (Spark's StreamingQueryListener). Any callback may be NULL.
 * Callbacks run on the listener's own thread, one at a time, in order. */
typedef struct monitor_listener {
    void *ctx;
    void (*on_query_started)(void *ctx, const monitor_event_t *ev);
    void (*on_query_progress)(void *ctx, const monitor_event_t *ev);
    void (*on_query_idle)(void *ctx, const monitor_event_t *ev);
    void (*on_query_terminated)(void *ctx, const monitor_event_t *ev);
    /* Executor and alert events (not in Spark's interface). */
    void (*on_other)(void *ctx, const monitor_event_t *ev);
    /* Called once on the listener's thread after its last event. */
    void (*on_close)(void *ctx);
} monitor_listener_t;

typedef struct monitor_opts {
    const char *query_id, *run_id, *name;
    size_t recent_progress;      /* progress reports kept (default 100) */
    size_t recent_batches;       /* batches kept with their tasks (default 100) */
} monitor_opts_t;

monitor_t *monitor_new(const monitor_opts_t *o);

/* Stops every listener after it has received every event published so far
 * (their on_close runs), then frees *m and sets it to NULL; safe on NULL. */
void monitor_destroy(monitor_t **m);

/* Name the query once its checkpoint is open (ids are not known before). */
void monitor_set_query(monitor_t *m, const char *query_id, const char *name);

/* Add a listener (copied); it receives events published from now on. */
void monitor_add_listener(monitor_t *m, const monitor_listener_t *l);

/* Seed the recent progress with reports kept from an earlier run (JSON
 * objects, oldest first), without publishing them as events. */
void monitor_restore_progress(monitor_t *m, const char *const *json, size_t n);

/* ---- the driver ----------------------------------------------------------- */

/* Spark's status messages: "Initializing sources", "Waiting for data to
 * arrive", "Processing new data", "Waiting for next trigger", "Stopped",
 * and "Waiting for executors". */
void monitor_set_status(monitor_t *m, const char *message, bool data_available, bool trigger_active);

void monitor_query_started(monitor_t *m, int64_t timestamp_ms);

/* A trigger's report: kept (the last recent_progress), published, and the
 * source of the figures in monitor_metrics_text. Returns its JSON (owned by
 * the monitor, valid until the next monitor_progress) for the caller to
 * persist. */
const char *monitor_progress(monitor_t *m, const progress_t *p);

void monitor_idle(monitor_t *m, int64_t timestamp_ms);

/* exception NULL: stopped cleanly. */
void monitor_query_terminated(monitor_t *m, const char *exception, const char *error_class);

/* The executor table as it is now. */
typedef struct monitor_executor {
    const char *id, *host;
    uint32_t pid, slots, running;
    bool draining;
    int64_t registered_ms;        /* wall clock */
    uint64_t heartbeat_age_ms;
    uint64_t tasks_done, tasks_failed;
} monitor_executor_t;

void monitor_set_executors(monitor_t *m, const monitor_executor_t *e, size_t n);
void monitor_executor_added(monitor_t *m, const monitor_executor_t *e);
void monitor_executor_lost(monitor_t *m, const monitor_executor_t *e, const char *reason);

/* A batch and its tasks, for /api/batches. Strings are copied. */
typedef struct monitor_task {
    uint32_t task_id, attempt;
    const char *path;
    uint64_t start, end;
    const char *executor;         /* the one that finished it (NULL: none) */
    const char *status;           /* "pending", "running", "done" */
    uint64_t rows, malformed, bytes, duration_ms;
} monitor_task_t;

typedef struct monitor_batch {
    int64_t batch_id;
    int64_t started_ms;           /* wall clock */
    const char *state;            /* "running", "committed", "abandoned" */
    uint64_t files, bytes, rows, malformed, state_rows, updated_rows;
    uint64_t duration_ms;         /* 0 while running */
    const monitor_task_t *tasks;
    size_t ntasks;
} monitor_batch_t;

/* Record (or replace, by batch id) a batch. */
void monitor_batch(monitor_t *m, const monitor_batch_t *b);

/* Cumulative counters for the metrics that are not in a progress report. */
typedef struct monitor_counters {
    uint64_t task_failures;
    uint64_t executors_lost;
    uint64_t batches;
    uint64_t input_rows;
    uint64_t malformed_rows;
} monitor_counters_t;

void monitor_set_counters(monitor_t *m, const monitor_counters_t *c);

/* The backlog as last listed (also between batches). */
void monitor_set_backlog(monitor_t *m, uint64_t files, uint64_t bytes, int64_t oldest_age_ms);

/* Publish an alert that fired or resolved (alert_json is the "alert" object). */
void monitor_alert(monitor_t *m, const char *alert_json);

/* Replace the alerts table shown by /api/alerts (a JSON array) and the
 * number of rules firing now. */
void monitor_set_alerts(monitor_t *m, const char *alerts_json, unsigned firing);

/* ---- readers (any thread) ------------------------------------------------------ */

/* {"message", "isDataAvailable", "isTriggerActive"} plus "id", "runId",
 * "name". */
char *monitor_status_json(monitor_t *m);

/* The last `last` progress reports (0: all kept), oldest first, as a JSON
 * array. */
char *monitor_progress_json(monitor_t *m, size_t last);

char *monitor_executors_json(monitor_t *m);

/* Recent batches, newest first, without their tasks. */
char *monitor_batches_json(monitor_t *m);

/* One batch with its tasks; NULL when it is not among the recent ones. */
char *monitor_batch_json(monitor_t *m, int64_t batch_id);

char *monitor_alerts_json(monitor_t *m);

/* Prometheus text exposition format (version 0.0.4). */
char *monitor_metrics_text(monitor_t *m);

#endif
