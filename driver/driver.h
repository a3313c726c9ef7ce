/* driver/driver.h -- the driver: plans micro-batches over the source,
 * writes each plan to the checkpoint's write-ahead log before any task
 * runs, sends tasks to executors over ZeroMQ, merges their partial
 * aggregates into state, and commits state, sink bookkeeping and the commit
 * record in one LMDB transaction. Restarted on the same checkpoint it
 * resumes after the last committed batch and re-runs a planned but
 * uncommitted batch with exactly the files it had. */
#ifndef SP_DRIVER_H
#define SP_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "monitor.h"
#include "sink.h"
#include "sp_err.h"

typedef enum trigger_kind {
    TRIGGER_DEFAULT = 0,       /* next batch as soon as the last one ends and data is there */
    TRIGGER_INTERVAL = 1,      /* a batch every interval (when there is data) */
    TRIGGER_ONCE = 2,          /* one batch of everything there, then stop */
    TRIGGER_AVAILABLE_NOW = 3, /* everything there at start, in batches, then stop */
} trigger_kind_t;

typedef enum clean_source {
    CLEAN_SOURCE_OFF = 0,
    CLEAN_SOURCE_ARCHIVE = 1,  /* move into archive_dir */
    CLEAN_SOURCE_DELETE = 2,
} clean_source_t;

typedef struct driver_opts {
    /* the query */
    const char *source_name;     /* "activity" */
    const char *source_format;   /* "json" */
    const char *source_path;     /* the directory */
    const char *sql;
    const char *schema;          /* NULL: inferred at the first start */
    const char *checkpoint;      /* the checkpoint directory */
    const char *name;            /* query name; NULL: the memory sink's name */
    output_mode_t output_mode;
    const char *sink;            /* "console", "memory:NAME", "json:DIR" */
    int mode;                    /* wire_mode_t: malformed-line policy */
    /* batches */
    uint64_t max_files;          /* per trigger; 0: no limit */
    uint64_t max_bytes;          /* per trigger; 0: no limit */
    uint64_t split_bytes;        /* largest file range one task reads */
    uint64_t infer_bytes;        /* how much to read to infer the schema */
    trigger_kind_t trigger;
    uint64_t trigger_interval_ms;
    uint32_t key_groups;         /* state key groups when creating; 0: 256 */
    uint64_t poll_ms;            /* look for new files at least this often */
    uint64_t relist_ms;          /* list the whole directory this often (new
                                    files come from inotify in between) */
    uint64_t max_file_age_ms;    /* ignore (and forget) files older than this,
                                    relative to the newest file seen; 0: none */
    clean_source_t clean_source; /* what happens to a batch's files once committed */
    const char *archive_dir;     /* for CLEAN_SOURCE_ARCHIVE */
    uint32_t min_batches_retain; /* planned/committed batches kept (100) */
    /* executors */
    const char *bind;            /* ZeroMQ endpoint; NULL: tcp://127.0.0.1:* */
    /* who may join (proto/auth.h): with curve_secret (the driver's NAME.key)
     * and authorized_keys (a directory of executors' NAME.pub files) only
     * executors holding an authorised key connect, over encrypted CURVE.
     * Without them the driver binds only a loopback endpoint, unless
     * insecure says that anyone who can reach bind may join. */
    const char *curve_secret;
    const char *authorized_keys;
    bool insecure;
    int local_executors;         /* spate run: executors to start (0: none) */
    uint32_t local_slots;        /* their slots */
    const char *exe;             /* the spate binary, for local executors */
    uint32_t heartbeat_ms;
    uint32_t executor_timeout_ms;
    uint32_t max_task_failures;
    uint32_t stop_timeout_ms;    /* on SIGINT/SIGTERM: wait this long for the
                                    running batch to commit, then abandon it */
    bool progress;               /* print a progress line per batch (stderr) */
    size_t recent_progress;      /* progress reports kept, in the checkpoint too */
    /* monitoring */
    const char *http;            /* "HOST:PORT" of the HTTP server; NULL: 127.0.0.1:4040
                                    (or the next free port up to 4056); "off": none */
    const char *events;          /* ZeroMQ PUB endpoint for events; NULL: none */
    /* alerts (alerts.h): rules from --alert and --alerts-file, actions
     * from --alert-action (none: log) */
    const char **alert_rules;
    size_t nalert_rules;
    const char *alerts_file;
    const char **alert_actions;
    size_t nalert_actions;
} driver_opts_t;

/* Fill o with the defaults. */
void driver_opts_init(driver_opts_t *o);

/* ---- embedding ---------------------------------------------------------------
 * A query in a program of its own:
 *
 *   driver_t *d;
 *   driver_new(&opts, &d, &err);
 *   driver_add_listener(d, &my_listener);   // Spark's StreamingQueryListener
 *   driver_start(d, &err);                  // the loop runs on its own thread
 *   ...                                     // driver_monitor(d): status, progress
 *   driver_stop(d);                         // or wait for once/available-now
 *   int rc = driver_await(d, &err);         // the query's outcome
 *   driver_destroy(&d);                     // listeners get every event first
 *
 * The options (and the strings they point to) must outlive the driver. */
typedef struct driver driver_t;

/* A driver for o; nothing runs yet. Never fails today; returns 0. */
int driver_new(const driver_opts_t *o, driver_t **out, sp_err_t *err);

/* Register a listener (copied) before driver_start; its callbacks run on a
 * thread of its own, in event order (monitor.h). */
void driver_add_listener(driver_t *d, const monitor_listener_t *l);

/* Start the query on a thread of its own. Problems found while starting
 * (bad SQL, an incompatible checkpoint, ...) end the query: driver_await
 * returns them, and listeners see QueryTerminatedEvent. */
int driver_start(driver_t *d, sp_err_t *err);

/* Ask the query to stop: the first call lets the running batch commit (up
 * to --stop-timeout), a second abandons it (it runs again on restart).
 * Safe from any thread and from a signal handler. */
void driver_stop(driver_t *d);

/* Wait for the query to end; returns 0 or the SP_E* code of its failure
 * (see driver_run), with the message in err. */
int driver_await(driver_t *d, sp_err_t *err);

/* The query's status, progress, executors and batches (borrowed; valid
 * until driver_destroy). */
monitor_t *driver_monitor(driver_t *d);

/* Free *d (after driver_await) and set it to NULL; safe on NULL. */
void driver_destroy(driver_t **d);

/* driver_new + driver_start + driver_await, with SIGINT/SIGTERM calling
 * driver_stop: run the query until it ends (once, available-now), is
 * stopped by a signal (returns 0), or fails. Errors: SP_EPARSE/SP_EINVAL (bad
 * SQL, flags, schema, key files; a bind endpoint that is not loopback
 * without keys or insecure), SP_EINCOMPAT (the checkpoint holds another
 * query), SP_EVERSION (a newer checkpoint format), SP_ECORRUPT (a damaged
 * checkpoint), SP_EBUSY (another driver uses the checkpoint), SP_EIO,
 * SP_ENOSPC, SP_EFAILED (a task failed too often, or failfast met a bad
 * line). The message in err names what and where. */
int driver_run(const driver_opts_t *o, sp_err_t *err);

#endif
