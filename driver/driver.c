/* driver/driver.c -- the micro-batch loop: triggers, planning (write-ahead
 * log first), task dispatch and retry, in-order merge of partial
 * aggregates, and the one-transaction commit of state, sink bookkeeping and
 * commit record. Owns the ROUTER socket, the current batch and the local
 * executor processes; the checkpoint, source, sink and executor table are
 * used through their modules. */
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agg.h"
#include "alerts.h"
#include "auth.h"
#include "ckpt.h"
#include "events.h"
#include "http.h"
#include "local.h"
#include "monitor.h"
#include "progress.h"
#include "resolve.h"
#include "result.h"
#include "scheduler.h"
#include "sink.h"
#include "source.h"
#include "sp_log.h"
#include "sp_util.h"
#include "wire.h"

#define LOG "driver"

void driver_opts_init(driver_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->source_format = "json";
    o->sink = "console";
    o->output_mode = OUTPUT_COMPLETE;
    o->mode = WIRE_MODE_PERMISSIVE;
    o->split_bytes = 32u << 20;
    o->infer_bytes = 16u << 20;
    o->poll_ms = 1000;
    o->relist_ms = 60000;
    o->min_batches_retain = 100;
    o->local_slots = 1;
    o->heartbeat_ms = 500;
    o->executor_timeout_ms = 5000;
    o->max_task_failures = 4;
    o->stop_timeout_ms = 10000;
    o->progress = true;
    o->recent_progress = 100;
}

/* ---- the current batch ----------------------------------------------------- */

typedef enum task_status { TASK_PENDING, TASK_RUNNING, TASK_DONE } task_status_t;

typedef struct task_run {
    task_status_t status;
    uint32_t attempt;
    sched_exec_t *exec;        /* while RUNNING */
    sched_exec_t *last_exec;   /* where the last attempt ran (a hint only) */
    uint32_t failures;        /* attempts that reported an error */
    uint32_t losses;          /* attempts whose executor was lost */
    sp_buf_t causes;          /* "attempt N on EXEC: error; ..." */
    zmq_msg_t *parts;          /* RESULT_PART frames of the current attempt */
    uint32_t nparts, parts_cap;
    uint64_t rows, malformed, bytes, groups, duration_us;
    char *done_by;             /* the executor that finished it */
} task_run_t;

typedef struct batch_run {
    bool active;
    ckpt_batch_t plan;
    task_run_t *tasks;
    size_t ntasks;
    size_t next_merge;         /* tasks before this one are merged */
    agg_table_t *merged;
    bool replay;
    int64_t started_wall_ms;   /* when its trigger began */
    uint64_t t_start_ns;       /* trigger start (listing began) */
    uint64_t t_listed_ns;      /* listing done */
    uint64_t t_planned_ns;     /* in the write-ahead log */
} batch_run_t;

struct driver {
    const driver_opts_t *o;
    /* the loop's thread, and what other threads ask of it */
    pthread_t thread;
    bool started;
    atomic_int stop_requests;  /* driver_stop calls */
    int wake_fd;               /* an eventfd in the loop's poll set */
    int result_rc;
    sp_err_t result_err;
    monitor_t *mon;
    alerts_t *alerts;
    uint64_t next_alert_eval_ms;
    http_server_t *http;
    events_t *events;
    /* a call another thread waits for, run on the loop's thread (all
     * checkpoint access stays on that one thread) */
    pthread_mutex_t call_mu;
    pthread_cond_t call_cv;
    struct driver_call *call;
    resolved_t r;
    sink_t *sink;
    char run_id[37];
    void *zctx, *router;
    auth_zap_t *zap;           /* admits authorised executors (with CURVE keys) */
    char endpoint[256];
    sched_t *sched;
    local_cluster_t local;
    batch_run_t batch;
    int64_t next_batch_id;
    int64_t last_committed;
    /* triggers and listing */
    bool dirty;                /* the directory may have changed */
    uint64_t next_list_ms;
    uint64_t next_trigger_ms;
    bool have_snapshot;        /* available-now */
    source_listing_t snapshot;
    bool finished;             /* once / available-now done */
    /* failure */
    int fail_rc;
    sp_err_t fail;
    /* totals */
    uint64_t batches_run;
    bool waiting_logged;
    uint64_t no_executors_since_ms; /* 0: there are executors */
    bool no_executors_logged;
    /* what the monitor shows */
    int64_t prev_trigger_wall_ms; /* start of the previous trigger with data */
    uint64_t backlog_files, backlog_bytes;
    int64_t backlog_oldest_mtime_ns;
    monitor_counters_t counters;
    uint64_t next_executors_publish_ms;
    uint64_t idle_since_ms, next_idle_event_ms;
    uint64_t last_state_rows;
    uint64_t next_backlog_ms;
    int64_t newest_mtime_ns;     /* newest file seen, for --max-file-age */
    uint64_t next_forget_ms;     /* when to prune the seen-file index again */
};

/* How often an idle query says so (Spark's noDataProgressEventInterval). */
#define DRIVER_IDLE_EVENT_MS 10000

/* ---- crash points for tests --------------------------------------------------
 * SPATE_FAULT=POINT:BATCH kills the driver with SIGKILL when it reaches
 * POINT for batch BATCH, so restart tests can stop it exactly between two
 * steps of the protocol (as SQLite's crash tests do at fsync):
 *   after-plan    the batch is in the write-ahead log, no task has run
 *   mid-batch     tasks are dispatched, results not merged
 *   after-sink    the sink has written the batch, the commit has not happened
 *   after-commit  the batch is committed */
static void fault_point(const char *point, int64_t batch_id)
{
    static int parsed;
    static char want[32];
    static long long want_batch = -1;
    if (!parsed) {
        parsed = 1;
        const char *f = getenv("SPATE_FAULT");
        if (f && sscanf(f, "%31[a-z-]:%lld", want, &want_batch) != 2)
            want_batch = -1;
    }
    if (want_batch == batch_id && strcmp(want, point) == 0) {
        SP_WARN(LOG, "SPATE_FAULT: killing the driver at %s of batch %lld", point, (long long)batch_id);
        raise(SIGKILL);
    }
}


static void task_drop_parts(task_run_t *t)
{
    for (uint32_t i = 0; i < t->nparts; i++)
        zmq_msg_close(&t->parts[i]);
    t->nparts = 0;
}

static void batch_clear(batch_run_t *b)
{
    for (size_t i = 0; i < b->ntasks; i++) {
        task_drop_parts(&b->tasks[i]);
        free(b->tasks[i].parts);
        free(b->tasks[i].done_by);
        sp_buf_free(&b->tasks[i].causes);
    }
    free(b->tasks);
    ckpt_batch_free(&b->plan);
    agg_table_destroy(&b->merged);
    memset(b, 0, sizeof *b);
}

static void driver_fail(driver_t *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void driver_fail(driver_t *d, int rc, const char *fmt, ...)
{
    if (d->fail_rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fail.msg, sizeof d->fail.msg, fmt, ap);
    va_end(ap);
    d->fail.rc = rc;
    d->fail_rc = rc;
    SP_ERROR(LOG, "%s", d->fail.msg);
}

/* Begin running a planned batch (new or replayed). Takes ownership of plan. */
static void batch_start(driver_t *d, ckpt_batch_t *plan, bool replay)
{
    batch_run_t *b = &d->batch;
    memset(b, 0, sizeof *b);
    b->active = true;
    b->plan = *plan;
    memset(plan, 0, sizeof *plan);
    b->ntasks = b->plan.nsplits;
    b->tasks = sp_xcalloc(b->ntasks ? b->ntasks : 1, sizeof(task_run_t));
    b->merged = agg_table_new(d->r.plan->aggs, d->r.plan->naggs, d->r.plan->ngroups);
    if (d->r.plan->ngroups == 0)
        agg_table_touch(b->merged, "", 0); /* SELECT count(*) FROM t has a row even for no input */
    b->replay = replay;
    b->started_wall_ms = sp_wall_ms();
    b->t_start_ns = sp_mono_ns();
    b->t_listed_ns = b->t_planned_ns = b->t_start_ns;
    SP_DEBUG(LOG, "batch %lld: %zu file(s), %zu task(s)%s", (long long)b->plan.batch_id,
             b->plan.nfiles, b->ntasks, replay ? " (re-run from the write-ahead log)" : "");
}

/* ---- talking to executors ----------------------------------------------------- */

static void send_to(driver_t *d, const sched_exec_t *e, const void *id, size_t idlen, const wire_msg_t *m)
{
    sp_buf_t frame = SP_BUF_INIT;
    wire_encode(m, &frame);
    int rc = wire_send_to(d->router, e ? e->id : id, e ? e->idlen : idlen, &frame);
    if (rc != 0)
        SP_DEBUG(LOG, "send %s: %s", wire_type_name(m->type), zmq_strerror(-rc));
    sp_buf_free(&frame);
}

static const char *task_path(const batch_run_t *b, size_t i)
{
    return b->plan.files[b->plan.splits[i].file].path;
}

/* Put a running task back in the queue for another attempt. */
static void task_requeue(driver_t *d, size_t i)
{
    task_run_t *t = &d->batch.tasks[i];
    if (t->exec && t->exec->running > 0)
        t->exec->running--;
    t->last_exec = t->exec;
    t->exec = NULL;
    task_drop_parts(t);
    t->status = TASK_PENDING;
    t->attempt++;
}

/* Note why an attempt of t failed (for the message if it fails for good). */
static void task_add_cause(task_run_t *t, const sched_exec_t *e, const char *why)
{
    if (t->causes.len > 2000)
        return; /* enough to show the pattern */
    sp_buf_printf(&t->causes, "%sattempt %u on %s: %s", t->causes.len ? "; " : "", t->attempt,
                  e ? e->id : "an executor", why);
}

/* Task i failed --max-task-failures times: stop the query, naming the file
 * range and every cause. */
static void task_failed_too_often(driver_t *d, size_t i)
{
    batch_run_t *b = &d->batch;
    task_run_t *t = &b->tasks[i];
    const ckpt_split_t *sp = &b->plan.splits[i];
    driver_fail(d, SP_EFAILED, "task %zu of batch %lld (%s bytes %llu-%llu) failed %u times: %s", i,
                (long long)b->plan.batch_id, task_path(b, i), (unsigned long long)sp->start,
                (unsigned long long)sp->end, t->failures, sp_buf_cstr(&t->causes));
}

static void publish_alert_table(driver_t *d);

/* ---- what the monitor shows ---------------------------------------------------- */

static monitor_executor_t exec_view(const sched_exec_t *e, uint64_t now_ms)
{
    monitor_executor_t v = {0};
    v.id = e->id;
    v.host = e->host;
    v.pid = e->pid;
    v.slots = e->slots;
    v.running = e->running;
    v.draining = e->draining;
    v.registered_ms = e->registered_wall_ms;
    v.heartbeat_age_ms = now_ms > e->last_seen_ms ? now_ms - e->last_seen_ms : 0;
    v.tasks_done = e->tasks_done;
    v.tasks_failed = e->tasks_failed;
    return v;
}

/* The executor table, now. */
static void publish_executors(driver_t *d, uint64_t now_ms)
{
    size_t n = sched_count(d->sched);
    monitor_executor_t *v = sp_xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = exec_view(sched_at(d->sched, i), now_ms);
    monitor_set_executors(d->mon, v, n);
    free(v);
    d->next_executors_publish_ms = now_ms + 500;
}

/* The current batch and its tasks, as /api/batches shows them. */
static void publish_batch(driver_t *d, const char *state, const ckpt_commit_t *rec, uint64_t duration_ms)
{
    const batch_run_t *b = &d->batch;
    monitor_task_t *tasks = sp_xcalloc(b->ntasks ? b->ntasks : 1, sizeof *tasks);
    static const char *const status[] = {"pending", "running", "done"};
    monitor_batch_t mb = {0};
    mb.batch_id = b->plan.batch_id;
    mb.started_ms = b->started_wall_ms;
    mb.state = state;
    mb.files = b->plan.nfiles;
    for (size_t i = 0; i < b->plan.nfiles; i++)
        mb.bytes += b->plan.files[i].size;
    for (size_t i = 0; i < b->ntasks; i++) {
        const task_run_t *t = &b->tasks[i];
        const ckpt_split_t *sp = &b->plan.splits[i];
        tasks[i] = (monitor_task_t){(uint32_t)i, t->attempt, b->plan.files[sp->file].path, sp->start, sp->end,
                                    t->status == TASK_DONE ? t->done_by : (t->exec ? t->exec->id : NULL),
                                    status[t->status], t->rows, t->malformed, t->bytes, t->duration_us / 1000};
        mb.rows += t->rows;
        mb.malformed += t->malformed;
    }
    if (rec) {
        mb.state_rows = rec->state_rows;
        mb.updated_rows = rec->updated_rows;
    }
    mb.duration_ms = duration_ms;
    mb.tasks = tasks;
    mb.ntasks = b->ntasks;
    monitor_batch(d->mon, &mb);
    free(tasks);
}

/* Losing executors while they run a task is usually not the task's fault
 * (an executor was killed or cut off), so losses get a looser bound than
 * errors; but a task whose executors keep dying must not loop forever. */
static uint32_t max_task_losses(const driver_t *d) { return 4 * d->o->max_task_failures; }

/* An executor is gone: its running tasks go to others. */
static void executor_lost(driver_t *d, sched_exec_t *e, const char *why)
{
    SP_WARN(LOG, "executor %s (%s, pid %u) lost: %s", e->id, e->host, e->pid, why);
    uint64_t now = sp_mono_ms();
    monitor_executor_t view = exec_view(e, now);
    monitor_executor_lost(d->mon, &view, why);
    if (d->alerts) {
        alerts_executor_lost(d->alerts, e->id, sp_wall_ms());
        publish_alert_table(d);
    }
    batch_run_t *b = &d->batch;
    for (size_t i = 0; b->active && i < b->ntasks; i++) {
        task_run_t *t = &b->tasks[i];
        if (t->status == TASK_RUNNING && t->exec == e) {
            task_requeue(d, i);
            t->last_exec = NULL;
            if (++t->losses >= max_task_losses(d)) {
                const ckpt_split_t *sp = &b->plan.splits[i];
                driver_fail(d, SP_EFAILED,
                            "task %zu of batch %lld (%s bytes %llu-%llu): %u executors were lost while "
                            "running it (last: %s, %s)",
                            i, (long long)b->plan.batch_id, task_path(b, i), (unsigned long long)sp->start,
                            (unsigned long long)sp->end, t->losses, e->id, why);
            }
        }
        if (t->last_exec == e)
            t->last_exec = NULL;
    }
    sched_remove(d->sched, e);
    publish_executors(d, now);
}

static void dispatch(driver_t *d)
{
    batch_run_t *b = &d->batch;
    for (size_t i = 0; i < b->ntasks; i++) {
        task_run_t *t = &b->tasks[i];
        if (t->status != TASK_PENDING)
            continue;
        sched_exec_t *e = sched_pick(d->sched, t->failures ? t->last_exec : NULL);
        if (e == NULL)
            return;
        const ckpt_split_t *sp = &b->plan.splits[i];
        wire_msg_t m = {.type = WIRE_TASK};
        m.u.task.ref.batch_id = b->plan.batch_id;
        m.u.task.ref.task_id = (uint32_t)i;
        m.u.task.ref.attempt = t->attempt;
        m.u.task.query_id = WIRE_STR(d->r.rec.query_id);
        m.u.task.source_name = WIRE_STR(d->o->source_name);
        m.u.task.schema = WIRE_STR(d->r.schema_text);
        m.u.task.sql = WIRE_STR(d->o->sql);
        m.u.task.mode = (uint32_t)d->o->mode;
        m.u.task.path = WIRE_STR(task_path(b, i));
        m.u.task.start = sp->start;
        m.u.task.end = sp->end;
        sp_buf_t frame = SP_BUF_INIT;
        wire_encode(&m, &frame);
        int rc = wire_send_to(d->router, e->id, e->idlen, &frame);
        sp_buf_free(&frame);
        if (rc != 0) {
            executor_lost(d, e, "unreachable");
            continue;
        }
        t->status = TASK_RUNNING;
        t->exec = e;
        e->running++;
        if (i + 1 == b->ntasks)
            fault_point("mid-batch", b->plan.batch_id);
    }
}

/* The task a result names, if it is the current attempt from the executor
 * that runs it; NULL for stale or unknown results (they are ignored). */
static task_run_t *result_task(driver_t *d, const sched_exec_t *e, const wire_task_ref_t *ref)
{
    batch_run_t *b = &d->batch;
    if (!b->active || ref->batch_id != b->plan.batch_id || ref->task_id >= b->ntasks)
        return NULL;
    task_run_t *t = &b->tasks[ref->task_id];
    if (t->status != TASK_RUNNING || t->attempt != ref->attempt || t->exec != e)
        return NULL;
    return t;
}

/* Merge finished tasks into the batch table in task order, so a batch's
 * doubles come out the same whichever executors ran it. */
static void merge_ready(driver_t *d)
{
    batch_run_t *b = &d->batch;
    const plan_t *p = d->r.plan;
    while (b->next_merge < b->ntasks && b->tasks[b->next_merge].status == TASK_DONE) {
        task_run_t *t = &b->tasks[b->next_merge];
        for (uint32_t k = 0; k < t->nparts; k++) {
            wire_msg_t m;
            sp_err_t err;
            int rc = wire_decode(zmq_msg_data(&t->parts[k]), zmq_msg_size(&t->parts[k]), &m, &err);
            for (size_t j = 0; rc == 0 && j < m.u.part.nentries; j++) {
                wire_entry_t en;
                wire_part_entry(&m, j, &en);
                rc = agg_table_merge_entry(b->merged, en.key, en.klen, en.state, en.slen, &err);
            }
            if (rc == 0)
                wire_msg_release(&m);
            if (rc != 0) {
                /* A partial that does not fit the query: the merge so far is
                 * spoilt, so the whole batch runs again. */
                SP_WARN(LOG, "batch %lld task %zu sent a bad partial result (%s); re-running the batch",
                        (long long)b->plan.batch_id, b->next_merge, err.msg);
                t->failures++;
                task_add_cause(t, t->last_exec, err.msg);
                if (t->failures >= d->o->max_task_failures) {
                    task_failed_too_often(d, b->next_merge);
                    return;
                }
                for (size_t i = 0; i < b->ntasks; i++) {
                    if (b->tasks[i].status == TASK_DONE) {
                        b->tasks[i].status = TASK_RUNNING; /* so requeue bumps the attempt */
                        b->tasks[i].exec = NULL;
                    }
                    if (b->tasks[i].status == TASK_RUNNING)
                        task_requeue(d, i);
                }
                agg_table_clear(b->merged);
                if (d->r.plan->ngroups == 0)
                    agg_table_touch(b->merged, "", 0);
                b->next_merge = 0;
                return;
            }
        }
        task_drop_parts(t);
        b->next_merge++;
    }
    (void)p;
}

static void on_result_done(driver_t *d, sched_exec_t *e, const wire_done_t *done)
{
    task_run_t *t = result_task(d, e, &done->ref);
    if (t == NULL) {
        SP_DEBUG(LOG, "ignored a stale result for task %lld.%u attempt %u", (long long)done->ref.batch_id,
                 done->ref.task_id, done->ref.attempt);
        return;
    }
    batch_run_t *b = &d->batch;
    size_t i = done->ref.task_id;
    if (done->ok && done->nparts != t->nparts) {
        SP_WARN(LOG, "task %zu: executor %s said %u parts but sent %u; retrying", i, e->id, done->nparts,
                t->nparts);
    } else if (done->ok) {
        t->status = TASK_DONE;
        t->exec = NULL;
        t->last_exec = e;
        if (e->running > 0)
            e->running--;
        e->tasks_done++;
        free(t->done_by);
        t->done_by = sp_xstrdup(e->id);
        t->rows = done->rows;
        t->malformed = done->malformed;
        t->bytes = done->bytes;
        t->groups = done->groups;
        t->duration_us = done->duration_us;
        merge_ready(d);
        return;
    }
    /* failed */
    e->tasks_failed++;
    d->counters.task_failures++;
    t->failures++;
    char *why = done->ok ? sp_xstrdup("incomplete result") : sp_xstrndup(done->error.ptr, done->error.len);
    if (done->fatal) {
        /* failfast met a bad line: that is the answer, not a retry */
        driver_fail(d, SP_EFAILED, "failfast: %s", why);
        free(why);
        return;
    }
    task_add_cause(t, e, why);
    if (t->failures >= d->o->max_task_failures) {
        task_failed_too_often(d, i);
        free(why);
        return;
    }
    SP_WARN(LOG, "task %zu of batch %lld failed on %s (attempt %u): %s; retrying", i,
            (long long)b->plan.batch_id, e->id, t->attempt, why);
    free(why);
    t->exec = e;
    task_requeue(d, i);
}

static void handle_frame(driver_t *d, zmq_msg_t *idf, zmq_msg_t *body)
{
    const void *id = zmq_msg_data(idf);
    size_t idlen = zmq_msg_size(idf);
    wire_msg_t m;
    sp_err_t err;
    int rc = wire_decode(zmq_msg_data(body), zmq_msg_size(body), &m, &err);
    if (rc == SP_EVERSION) {
        SP_WARN(LOG, "refused a peer: %s", err.msg);
        char reason[256];
        snprintf(reason, sizeof reason, "protocol version mismatch: driver speaks %u, you speak %u",
                 WIRE_VERSION, m.version);
        wire_msg_t r = {.type = WIRE_REFUSE};
        r.u.refuse.reason = WIRE_STR(reason);
        send_to(d, NULL, id, idlen, &r);
        return;
    }
    if (rc != 0) {
        SP_WARN(LOG, "dropped a bad frame (%zu bytes): %s", zmq_msg_size(body), err.msg);
        return;
    }
    uint64_t now = sp_mono_ms();
    sched_exec_t *e = sched_find(d->sched, id, idlen);
    if (e)
        e->last_seen_ms = now;
    switch (m.type) {
    case WIRE_HELLO: {
        if (e && e->pid == m.u.hello.pid && e->slots == m.u.hello.slots &&
            m.u.hello.host.len == strlen(e->host) && memcmp(m.u.hello.host.ptr, e->host, m.u.hello.host.len) == 0) {
            /* the same process again: its HELLOs crossed our WELCOME */
            wire_msg_t w = {.type = WIRE_WELCOME};
            w.u.welcome.heartbeat_ms = d->o->heartbeat_ms;
            w.u.welcome.driver_run_id = WIRE_STR(d->run_id);
            send_to(d, e, NULL, 0, &w);
            break;
        }
        if (e) /* the executor restarted: what it ran is gone */
            executor_lost(d, e, "registered again");
        e = sched_add(d->sched, id, idlen, &m.u.hello, now);
        SP_INFO(LOG, "executor %s registered (%s, pid %u, %u slot%s)", e->id, e->host, e->pid, e->slots,
                e->slots == 1 ? "" : "s");
        monitor_executor_t view = exec_view(e, now);
        monitor_executor_added(d->mon, &view);
        if (d->alerts) {
            alerts_executor_added(d->alerts, sp_wall_ms());
            publish_alert_table(d);
        }
        publish_executors(d, now);
        wire_msg_t w = {.type = WIRE_WELCOME};
        w.u.welcome.heartbeat_ms = d->o->heartbeat_ms;
        w.u.welcome.driver_run_id = WIRE_STR(d->run_id);
        send_to(d, e, NULL, 0, &w);
        break;
    }
    case WIRE_HEARTBEAT:
        if (e == NULL) {
            wire_msg_t r = {.type = WIRE_RESET};
            send_to(d, NULL, id, idlen, &r);
            break;
        }
        if (m.u.heartbeat.draining && !e->draining)
            SP_INFO(LOG, "executor %s is draining", e->id);
        e->draining = m.u.heartbeat.draining;
        {
            wire_msg_t a = {.type = WIRE_HEARTBEAT_ACK};
            send_to(d, e, NULL, 0, &a);
        }
        break;
    case WIRE_RESULT_PART: {
        if (e == NULL)
            break;
        task_run_t *t = result_task(d, e, &m.u.part.ref);
        if (t == NULL || m.u.part.seq != t->nparts)
            break;
        if (t->nparts == t->parts_cap) {
            t->parts_cap = t->parts_cap ? t->parts_cap * 2 : 4;
            t->parts = sp_xrealloc(t->parts, t->parts_cap * sizeof(zmq_msg_t));
        }
        zmq_msg_init(&t->parts[t->nparts]);
        zmq_msg_move(&t->parts[t->nparts], body);
        t->nparts++;
        break;
    }
    case WIRE_RESULT_DONE:
        if (e)
            on_result_done(d, e, &m.u.done);
        break;
    case WIRE_BYE:
        if (e) {
            SP_INFO(LOG, "executor %s said goodbye", e->id);
            executor_lost(d, e, "deregistered");
        }
        break;
    default:
        SP_WARN(LOG, "unexpected %s from %.*s", wire_type_name(m.type), (int)idlen, (const char *)id);
        break;
    }
    wire_msg_release(&m);
}

static void drain_router(driver_t *d)
{
    for (;;) {
        zmq_msg_t idf, body;
        zmq_msg_init(&idf);
        if (zmq_msg_recv(&idf, d->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idf);
            return;
        }
        int more = zmq_msg_more(&idf);
        zmq_msg_init(&body);
        bool ok = more && zmq_msg_recv(&body, d->router, ZMQ_DONTWAIT) >= 0;
        /* Swallow any further frames: spate messages are a single frame. */
        bool extra = false;
        while (ok && zmq_msg_more(&body)) {
            zmq_msg_t junk;
            zmq_msg_init(&junk);
            zmq_msg_recv(&junk, d->router, ZMQ_DONTWAIT);
            int m2 = zmq_msg_more(&junk);
            zmq_msg_close(&junk);
            extra = true;
            if (!m2)
                break;
        }
        if (ok && !extra)
            handle_frame(d, &idf, &body);
        else if (extra)
            SP_WARN(LOG, "dropped a multi-frame message");
        zmq_msg_close(&body);
        zmq_msg_close(&idf);
    }
}

/* ---- planning ------------------------------------------------------------------- */

static bool trigger_unlimited(const driver_t *d) { return d->o->trigger == TRIGGER_ONCE; }

/* ---- keeping the source and its index small ------------------------------------ */

/* --max-file-age, as Spark's maxFileAge: a file older than the newest one
 * seen, by more than the age, is ignored; the seen-file index forgets such
 * files now and then (they would be ignored anyway), so it never grows
 * without bound. */
static int64_t age_cutoff(const driver_t *d)
{
    return d->newest_mtime_ns - (int64_t)d->o->max_file_age_ms * 1000000;
}

static void apply_max_file_age(driver_t *d)
{
    if (d->o->max_file_age_ms == 0)
        return;
    const source_listing_t *c = source_candidates(d->r.source);
    for (size_t i = 0; i < c->nfiles; i++)
        if (c->files[i].mtime_ns > d->newest_mtime_ns)
            d->newest_mtime_ns = c->files[i].mtime_ns;
    size_t dropped = source_drop_older(d->r.source, age_cutoff(d));
    if (dropped)
        SP_INFO(LOG, "--max-file-age: ignored %zu file(s) older than the newest by more than %llu ms", dropped,
                (unsigned long long)d->o->max_file_age_ms);
}

static void forget_old_files(driver_t *d, uint64_t now)
{
    if (d->o->max_file_age_ms == 0 || now < d->next_forget_ms || d->newest_mtime_ns == 0)
        return;
    d->next_forget_ms = now + 60000;
    uint64_t removed = 0;
    sp_err_t err;
    if (ckpt_forget_files_older(d->r.ckpt, age_cutoff(d), &removed, &err) != 0)
        SP_WARN(LOG, "could not prune the seen-file index: %s", err.msg);
    else if (removed)
        SP_INFO(LOG, "--max-file-age: the seen-file index forgot %llu old file(s)", (unsigned long long)removed);
}

/* --clean-source: once a batch is committed, its files are archived or
 * deleted and forgotten by the seen-file index. Idempotent: a restart does
 * it again for the last committed batch, in case it stopped in between. */
static void clean_batch_files(driver_t *d, const ckpt_batch_t *b)
{
    const driver_opts_t *o = d->o;
    if (o->clean_source == CLEAN_SOURCE_OFF || b->nfiles == 0)
        return;
    const char **done = sp_xcalloc(b->nfiles, sizeof(char *));
    size_t ndone = 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        const char *path = b->files[i].path;
        int rc = 0;
        if (o->clean_source == CLEAN_SOURCE_DELETE) {
            rc = unlink(path);
        } else {
            const char *base = strrchr(path, '/');
            char *to = sp_xasprintf("%s/%s", o->archive_dir, base ? base + 1 : path);
            rc = rename(path, to);
            free(to);
        }
        if (rc == 0 || errno == ENOENT)
            done[ndone++] = path;
        else
            SP_WARN(LOG, "--clean-source: cannot %s %s: %s", o->clean_source == CLEAN_SOURCE_DELETE ? "delete" : "archive",
                    path, strerror(errno));
    }
    sp_err_t err;
    if (ckpt_forget_files(d->r.ckpt, done, ndone, &err) != 0)
        SP_WARN(LOG, "--clean-source: could not forget the cleaned files: %s", err.msg);
    free(done);
}

/* The backlog: the candidates not taken yet (for available-now, those of
 * its files). */
static void backlog_from_candidates(driver_t *d)
{
    const source_listing_t *c = source_candidates(d->r.source);
    if (d->o->trigger == TRIGGER_AVAILABLE_NOW && d->have_snapshot) {
        source_listing_t l = {0};
        l.files = sp_xmalloc((c->nfiles ? c->nfiles : 1) * sizeof(source_file_t));
        for (size_t i = 0; i < c->nfiles; i++) {
            l.files[i] = c->files[i];
            l.files[i].path = sp_xstrdup(c->files[i].path);
        }
        l.nfiles = c->nfiles;
        source_listing_restrict(&l, &d->snapshot);
        d->backlog_files = l.nfiles;
        d->backlog_bytes = l.bytes;
        d->backlog_oldest_mtime_ns = l.oldest_mtime_ns;
        source_listing_free(&l);
    } else {
        d->backlog_files = c->nfiles;
        d->backlog_bytes = c->bytes;
        d->backlog_oldest_mtime_ns = c->oldest_mtime_ns;
    }
}

/* Try to plan the next batch. Returns 0 (planned or nothing to do) or an
 * error that stops the query. */
static int plan_next(driver_t *d, sp_err_t *err)
{
    uint64_t t_start = sp_mono_ns();
    int64_t started_wall = sp_wall_ms();
    int rc = source_refresh(d->r.source, d->r.ckpt, sp_mono_ms(), err);
    if (rc != 0)
        return rc;
    apply_max_file_age(d);
    if (d->o->trigger == TRIGGER_AVAILABLE_NOW && !d->have_snapshot) {
        /* The files present now are the whole job. */
        const source_listing_t *c = source_candidates(d->r.source);
        d->snapshot.files = sp_xmalloc((c->nfiles ? c->nfiles : 1) * sizeof(source_file_t));
        for (size_t i = 0; i < c->nfiles; i++) {
            d->snapshot.files[i] = c->files[i];
            d->snapshot.files[i].path = sp_xstrdup(c->files[i].path);
        }
        d->snapshot.nfiles = c->nfiles;
        d->have_snapshot = true;
        SP_INFO(LOG, "available-now: %zu file(s) to process", c->nfiles);
    }
    const source_listing_t *only = d->o->trigger == TRIGGER_AVAILABLE_NOW ? &d->snapshot : NULL;
    source_limits_t lim = {d->o->max_files, d->o->max_bytes};
    if (trigger_unlimited(d))
        lim.max_files = lim.max_bytes = 0;
    source_listing_t taken;
    source_take(d->r.source, &lim, only, &taken);
    backlog_from_candidates(d);
    if (taken.nfiles == 0) {
        source_listing_free(&taken);
        if (d->o->trigger == TRIGGER_ONCE || d->o->trigger == TRIGGER_AVAILABLE_NOW)
            d->finished = true;
        else if (!d->waiting_logged) {
            SP_INFO(LOG, "waiting for data to arrive in %s", source_path(d->r.source));
            d->waiting_logged = true;
        }
        return 0;
    }
    d->waiting_logged = false;
    uint64_t t_listed = sp_mono_ns();
    ckpt_batch_t plan = {0};
    plan.batch_id = d->next_batch_id;
    plan.timestamp_ms = sp_wall_ms();
    source_plan_splits(&taken, d->o->split_bytes, &plan);
    rc = ckpt_batch_plan(d->r.ckpt, &plan, err);
    if (rc != 0) {
        ckpt_batch_free(&plan);
        return rc;
    }
    d->next_batch_id++;
    fault_point("after-plan", plan.batch_id);
    batch_start(d, &plan, false);
    d->batch.started_wall_ms = started_wall;
    d->batch.t_start_ns = t_start;
    d->batch.t_listed_ns = t_listed;
    d->batch.t_planned_ns = sp_mono_ns();
    publish_batch(d, "running", NULL, 0);
    return 0;
}

/* ---- commit ------------------------------------------------------------------------ */

/* Every group as transaction t sees it. */
static int collect_state(ckpt_txn_t *t, result_set_t *rs, sp_err_t *err)
{
    return result_set_add_txn_state(rs, t, err);
}

/* Merge the batch table into state, hand the rows to the sink, and commit
 * state, sink record and commit record in one transaction. */
static int commit_txn(driver_t *d, ckpt_commit_t *rec, result_set_t *changed, result_set_t *all,
                      uint64_t *t_commit_ns, sp_err_t *err)
{
    batch_run_t *b = &d->batch;
    const plan_t *p = d->r.plan;
    sp_buf_t state = SP_BUF_INIT, merged = SP_BUF_INIT, record = SP_BUF_INIT;
    ckpt_txn_t *t = NULL;
    result_set_clear(changed);
    if (all)
        result_set_clear(all);
    rec->updated_rows = 0;
    int rc = ckpt_commit_begin(d->r.ckpt, b->plan.batch_id, &t, err);
    size_t pos = 0;
    const void *key;
    size_t klen;
    uint64_t hash;
    while (rc == 0) {
        state.len = 0;
        if (!agg_table_next(b->merged, &pos, &key, &klen, &hash, &state))
            break;
        const void *old = NULL;
        size_t oldlen = 0;
        rc = ckpt_txn_state_get(t, key, klen, &old, &oldlen, err);
        if (rc == SP_ENOTFOUND) {
            old = NULL;
            rc = 0;
        }
        if (rc != 0)
            break;
        merged.len = 0;
        rc = agg_state_merge_bytes(p->aggs, p->naggs, old, oldlen, state.data, state.len, &merged, err);
        if (rc != 0) {
            rc = sp_err_wrap(err, SP_ECORRUPT, "checkpoint %s holds a state entry that does not fit the query",
                             d->o->checkpoint);
            break;
        }
        if ((rc = ckpt_txn_state_put(t, key, klen, merged.data, merged.len, err)) != 0)
            break;
        if ((rc = result_set_add(changed, key, klen, merged.data, merged.len, err)) != 0)
            break;
        rec->updated_rows++;
    }
    if (rc == 0 && all) {
        rc = collect_state(t, all, err);
        result_set_sort(all);
    }
    if (rc == 0) {
        rec->state_rows = ckpt_txn_state_count(t);
        result_set_sort(changed);
        rc = sink_write_batch(d->sink, b->plan.batch_id, changed, all, &record, err);
    }
    if (rc == 0)
        rc = ckpt_txn_sink_put(t, record.data, record.len, err);
    if (rc == 0 && d->o->min_batches_retain > 0)
        rc = ckpt_txn_prune_batches(t, b->plan.batch_id - (int64_t)d->o->min_batches_retain + 1, err);
    if (rc == 0)
        fault_point("after-sink", b->plan.batch_id);
    if (rc == 0) {
        rec->committed_ms = sp_wall_ms();
        *t_commit_ns = sp_mono_ns();
        rc = ckpt_commit_end(&t, rec, err);
    }
    ckpt_txn_abort(&t);
    sp_buf_free(&state);
    sp_buf_free(&merged);
    sp_buf_free(&record);
    return rc;
}

static void print_progress(const driver_t *d, const ckpt_commit_t *rec, uint64_t t_merge_ns, uint64_t t_end)
{
    const batch_run_t *b = &d->batch;
    double ms = (double)(t_end - b->t_start_ns) / 1e6;
    uint64_t bytes = 0;
    for (size_t i = 0; i < b->plan.nfiles; i++)
        bytes += b->plan.files[i].size;
    char line[600];
    int n = snprintf(line, sizeof line,
                     "batch %lld%s: %zu file(s), %.1f MB, %llu rows (%llu malformed) in %.0f ms "
                     "(%.0f rows/s; plan %.1f ms, run %.1f ms, commit %.1f ms); %llu groups updated, "
                     "%llu in state\n",
                     (long long)b->plan.batch_id, b->replay ? " (re-run)" : "", b->plan.nfiles,
                     (double)bytes / 1e6, (unsigned long long)rec->input_rows,
                     (unsigned long long)rec->malformed_rows, ms,
                     ms > 0 ? (double)rec->input_rows / (ms / 1e3) : 0.0,
                     (double)(b->t_planned_ns - b->t_start_ns) / 1e6,
                     (double)(t_merge_ns - b->t_planned_ns) / 1e6, (double)(t_end - t_merge_ns) / 1e6,
                     (unsigned long long)rec->updated_rows, (unsigned long long)rec->state_rows);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static uint64_t ns_to_ms(uint64_t ns) { return (ns + 500000) / 1000000; }

static void evaluate_alerts(driver_t *d, const progress_t *p, uint64_t now);
static void publish_alert_table(driver_t *d);

/* The batch's report in Spark's shape: published, kept in the checkpoint. */
static void report_progress(driver_t *d, const ckpt_commit_t *rec, uint64_t output_rows, uint64_t t_commit_ns,
                            uint64_t t_end_ns)
{
    const batch_run_t *b = &d->batch;
    progress_t p = {0};
    p.id = d->r.rec.query_id;
    p.run_id = d->run_id;
    p.name = d->r.rec.name;
    p.timestamp_ms = b->started_wall_ms;
    p.batch_id = b->plan.batch_id;
    p.has_data = true;
    p.num_input_rows = rec->input_rows;
    p.num_malformed_rows = rec->malformed_rows;
    p.duration_ms.latest_offset = ns_to_ms(b->t_listed_ns - b->t_start_ns);
    p.duration_ms.wal_commit = ns_to_ms(b->t_planned_ns - b->t_listed_ns);
    p.duration_ms.add_batch = ns_to_ms(t_commit_ns - b->t_planned_ns);
    p.duration_ms.commit_offsets = ns_to_ms(t_end_ns - t_commit_ns);
    p.duration_ms.trigger_execution = ns_to_ms(t_end_ns - b->t_start_ns);
    double secs = (double)(t_end_ns - b->t_start_ns) / 1e9;
    p.processed_rows_per_second = secs > 0 ? (double)rec->input_rows / secs : NAN;
    /* Spark: rows over the time since the previous trigger began */
    double since = d->prev_trigger_wall_ms ? (double)(b->started_wall_ms - d->prev_trigger_wall_ms) / 1e3 : 0;
    p.input_rows_per_second = since > 0 ? (double)rec->input_rows / since : NAN;
    d->prev_trigger_wall_ms = b->started_wall_ms;
    p.state_rows_total = rec->state_rows;
    p.state_rows_updated = rec->updated_rows;
    p.state_commit_ms = p.duration_ms.commit_offsets;
    ckpt_stats_t st;
    sp_err_t err;
    if (ckpt_stats(d->r.ckpt, &st, &err) == 0)
        p.state_memory_bytes = st.dbs[4].bytes; /* the state database */
    p.key_groups = d->r.rec.key_groups;
    char desc[4200];
    snprintf(desc, sizeof desc, "FileStreamSource[%s]", source_path(d->r.source));
    p.source_description = desc;
    p.start_offset = b->plan.batch_id - 1;
    p.end_offset = b->plan.batch_id;
    p.latest_offset = b->plan.batch_id;
    p.backlog_files = d->backlog_files;
    p.backlog_bytes = d->backlog_bytes;
    p.backlog_oldest_age_ms = d->backlog_files ? sp_wall_ms() - d->backlog_oldest_mtime_ns / 1000000 : -1;
    p.sink_description = sink_describe(d->sink);
    p.sink_output_rows = (int64_t)output_rows;
    /* per-executor task figures */
    progress_exec_t *ex = sp_xcalloc(b->ntasks ? b->ntasks : 1, sizeof *ex);
    size_t nex = 0;
    for (size_t i = 0; i < b->ntasks; i++) {
        const task_run_t *t = &b->tasks[i];
        if (t->done_by == NULL)
            continue;
        size_t k = 0;
        while (k < nex && strcmp(ex[k].id, t->done_by) != 0)
            k++;
        if (k == nex)
            ex[nex++].id = t->done_by;
        ex[k].tasks++;
        ex[k].rows += t->rows;
        ex[k].bytes += t->bytes;
        ex[k].task_ms += t->duration_us / 1000;
    }
    p.execs = ex;
    p.nexecs = nex;
    const char *json = monitor_progress(d->mon, &p);
    free(ex);
    evaluate_alerts(d, &p, sp_mono_ms());
    if (ckpt_progress_append(d->r.ckpt, json, strlen(json), d->o->recent_progress, &err) != 0)
        SP_WARN(LOG, "could not keep the progress report in the checkpoint: %s", err.msg);
    d->counters.batches++;
    d->counters.input_rows += rec->input_rows;
    d->counters.malformed_rows += rec->malformed_rows;
    monitor_set_counters(d->mon, &d->counters);
    publish_batch(d, "committed", rec, p.duration_ms.trigger_execution);
}

static int commit_batch(driver_t *d, sp_err_t *err)
{
    batch_run_t *b = &d->batch;
    uint64_t t_merge_ns = sp_mono_ns(), t_commit_ns = t_merge_ns;
    result_set_t *changed = result_set_new(d->r.plan);
    result_set_t *all = sink_wants_all_rows(d->sink) ? result_set_new(d->r.plan) : NULL;
    ckpt_commit_t rec = {0};
    rec.batch_id = b->plan.batch_id;
    for (size_t i = 0; i < b->ntasks; i++) {
        rec.input_rows += b->tasks[i].rows;
        rec.malformed_rows += b->tasks[i].malformed;
    }
    int rc;
    int attempts = 0;
    /* SP_ERETRY: the map grew; the whole transaction runs again. */
    while ((rc = commit_txn(d, &rec, changed, all, &t_commit_ns, err)) == SP_ERETRY && ++attempts < 30)
        sp_err_clear(err);
    uint64_t output_rows = result_set_rows(all ? all : changed);
    result_set_destroy(&changed);
    result_set_destroy(&all);
    if (rc != 0)
        return rc;
    uint64_t t_end = sp_mono_ns();
    d->last_committed = b->plan.batch_id;
    d->batches_run++;
    fault_point("after-commit", b->plan.batch_id);
    if (d->o->progress)
        print_progress(d, &rec, t_merge_ns, t_end);
    report_progress(d, &rec, output_rows, t_commit_ns, t_end);
    for (size_t i = 0; i < b->plan.nfiles; i++)
        if (b->plan.files[i].mtime_ns > d->newest_mtime_ns)
            d->newest_mtime_ns = b->plan.files[i].mtime_ns;
    clean_batch_files(d, &b->plan);
    forget_old_files(d, sp_mono_ms());
    batch_clear(b);
    d->dirty = true; /* files may have arrived while the batch ran */
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------- */

/* Who may join: with CURVE keys, executors holding an authorised key;
 * without, anyone who can reach the endpoint, so it must be loopback unless
 * the user said --insecure. Checked before anything binds. */
static int check_auth_opts(const driver_opts_t *o, const char *ep, sp_err_t *err)
{
    if (o->curve_secret && !o->authorized_keys)
        return sp_err_set(err, SP_EINVAL,
                          "--curve-secret needs --authorized-keys DIR: the directory of the executors' public "
                          "keys (their NAME.pub files)");
    if (o->authorized_keys && !o->curve_secret)
        return sp_err_set(err, SP_EINVAL,
                          "--authorized-keys needs --curve-secret FILE: the driver's own key (make one with spate "
                          "keygen)");
    if (o->curve_secret && o->insecure)
        return sp_err_set(err, SP_EINVAL, "--insecure contradicts --curve-secret: give one or the other");
    if (o->curve_secret && o->local_executors > 0)
        return sp_err_set(err, SP_EINVAL,
                          "--curve-secret needs --executors 0: local executors connect without keys (start "
                          "executors with spate executor --curve-secret --driver-key)");
    if (!o->curve_secret && !o->insecure && !auth_endpoint_is_loopback(ep))
        return sp_err_set(err, SP_EINVAL,
                          "binding %s without CURVE keys would let anyone on the network join: give "
                          "--curve-secret and --authorized-keys, or --insecure",
                          ep);
    return 0;
}

static int open_router(driver_t *d, sp_err_t *err)
{
    const driver_opts_t *o = d->o;
    const char *ep = o->bind ? o->bind : "tcp://127.0.0.1:*";
    int rc = check_auth_opts(o, ep, err);
    if (rc != 0)
        return rc;
    auth_keypair_t kp = {{0}, {0}};
    if (o->curve_secret && (rc = auth_load_keypair(o->curve_secret, &kp, err)) != 0)
        return sp_err_wrap(err, rc, "--curve-secret");
    d->zctx = zmq_ctx_new();
    d->router = zmq_socket(d->zctx, ZMQ_ROUTER);
    int one = 1, zero = 0, hwm = 100000;
    int64_t maxmsg = WIRE_MAX_FRAME;
    zmq_setsockopt(d->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(d->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(d->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(d->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (o->curve_secret) {
        /* The handler runs before the bind, so no connection goes unchecked. */
        rc = auth_zap_start(d->zctx, o->authorized_keys, &d->zap, err);
        if (rc == 0)
            rc = auth_server_socket(d->router, &kp, err);
        auth_keypair_clear(&kp);
        if (rc != 0)
            return rc;
    }
    if (zmq_bind(d->router, ep) != 0)
        return sp_err_set(err, SP_EINVAL, "cannot bind %s: %s", ep, zmq_strerror(errno));
    size_t len = sizeof d->endpoint;
    zmq_getsockopt(d->router, ZMQ_LAST_ENDPOINT, d->endpoint, &len);
    if (o->curve_secret)
        SP_INFO(LOG, "executors must present a key authorised in %s", o->authorized_keys);
    else if (!auth_endpoint_is_loopback(ep))
        SP_WARN(LOG, "no CURVE keys on %s (--insecure): anyone who can reach it can join, and read the data "
                     "it is sent", ep);
    else if (o->local_executors == 0 || o->bind)
        SP_INFO(LOG, "no CURVE keys: accepting executors on loopback only");
    return 0;
}

/* How long the loop may sleep in poll. */
static long poll_timeout(const driver_t *d, uint64_t now)
{
    long t = (long)(d->o->heartbeat_ms ? d->o->heartbeat_ms : 500);
    if (!d->batch.active) {
        uint64_t due = d->next_list_ms;
        if (d->dirty && d->next_trigger_ms > due)
            due = d->next_trigger_ms;
        else if (d->dirty)
            due = now;
        if (d->o->trigger == TRIGGER_INTERVAL && d->next_trigger_ms > due)
            due = d->next_trigger_ms;
        long wait = due > now ? (long)(due - now) : 0;
        if (wait < t)
            t = wait;
    }
    return t;
}

static bool trigger_due(driver_t *d, uint64_t now)
{
    if (d->o->trigger == TRIGGER_INTERVAL && now < d->next_trigger_ms)
        return false;
    return d->dirty || now >= d->next_list_ms;
}

/* ---- calls from other threads ------------------------------------------------------
 * The HTTP server's /api/result reads the checkpoint; the checkpoint is the
 * loop's alone, so the server hands the read to the loop and waits. */

typedef struct driver_call {
    char *(*fn)(driver_t *d, sp_err_t *err);
    char *out;
    sp_err_t err;
    bool done;
} driver_call_t;

/* Run a pending call, if any (on the loop's thread). */
static void serve_calls(driver_t *d, bool stopping)
{
    pthread_mutex_lock(&d->call_mu);
    driver_call_t *c = d->call;
    if (c && !c->done) {
        if (stopping)
            sp_err_set(&c->err, SP_ESTOPPED, "the query has stopped");
        else
            c->out = c->fn(d, &c->err);
        c->done = true;
        pthread_cond_broadcast(&d->call_cv);
    }
    pthread_mutex_unlock(&d->call_mu);
}

/* Ask the loop to run fn and wait (up to 10 s) for its answer. */
static char *call_on_loop(driver_t *d, char *(*fn)(driver_t *, sp_err_t *), sp_err_t *err)
{
    driver_call_t c = {fn, NULL, {0, {0}}, false};
    pthread_mutex_lock(&d->call_mu);
    while (d->call != NULL) /* one call at a time */
        pthread_cond_wait(&d->call_cv, &d->call_mu);
    d->call = &c;
    uint64_t one = 1;
    (void)!write(d->wake_fd, &one, sizeof one);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    while (!c.done)
        if (pthread_cond_timedwait(&d->call_cv, &d->call_mu, &deadline) != 0)
            break;
    if (!c.done) {
        /* the loop is busy (a long commit): give up, and make sure it never
         * writes into this frame */
        c.done = true;
        sp_err_set(err, SP_ETIMEOUT, "the driver is busy; try again");
    } else if (c.out == NULL && err) {
        *err = c.err;
    }
    d->call = NULL;
    pthread_cond_broadcast(&d->call_cv);
    pthread_mutex_unlock(&d->call_mu);
    return c.out;
}

/* The result table as one JSON array (rows as `spate result --format json`). */
static char *result_rows_json(driver_t *d, sp_err_t *err)
{
    if (d->r.plan == NULL || d->r.ckpt == NULL)
        return sp_xstrdup("[]");
    result_set_t *rs = result_set_new(d->r.plan);
    int rc = result_set_add_state(rs, d->r.ckpt, err);
    char *out = NULL;
    if (rc == 0) {
        result_set_sort(rs);
        sp_buf_t lines = SP_BUF_INIT, arr = SP_BUF_INIT;
        result_set_render(rs, RESULT_JSON, 0, false, &lines);
        sp_buf_putc(&arr, '[');
        size_t start = 0;
        bool first = true;
        for (size_t i = 0; i < lines.len; i++) {
            if (lines.data[i] != '\n')
                continue;
            if (i > start) {
                if (!first)
                    sp_buf_putc(&arr, ',');
                sp_buf_append(&arr, lines.data + start, i - start);
                first = false;
            }
            start = i + 1;
        }
        sp_buf_putc(&arr, ']');
        out = sp_buf_cstr(&arr);
        sp_buf_free(&lines);
    }
    result_set_destroy(&rs);
    return out;
}

/* The HTTP server's /api/result (on one of its threads). */
static char *http_result(void *ctx, sp_err_t *err) { return call_on_loop(ctx, result_rows_json, err); }

/* Start the HTTP server: the address given, or Spark's 4040 and the next
 * free ports up to 4056 (as Spark does when several drivers share a host). */
static int start_http(driver_t *d, sp_err_t *err)
{
    const char *want = d->o->http;
    if (want && strcmp(want, "off") == 0)
        return 0;
    int rc;
    if (want) {
        rc = http_start(want, d->mon, http_result, d, &d->http, err);
        if (rc != 0)
            return sp_err_wrap(err, rc, "--http");
    } else {
        rc = SP_EIO;
        for (int port = 4040; port <= 4056 && rc != 0; port++) {
            char addr[32];
            snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
            rc = http_start(addr, d->mon, http_result, d, &d->http, err);
        }
        if (rc != 0) {
            SP_WARN(LOG, "no HTTP server: ports 4040 to 4056 are all in use (give --http HOST:PORT)");
            sp_err_clear(err);
            return 0;
        }
    }
    SP_INFO(LOG, "HTTP on http://%s (status, progress, metrics, web UI)", http_address(d->http));
    return 0;
}

/* ---- alerts -------------------------------------------------------------------- */

/* An alert fired or resolved: an event, and a new table for /api/alerts. */
static void alert_published(void *ctx, const char *alert_json)
{
    driver_t *d = ctx;
    monitor_alert(d->mon, alert_json);
}

static void publish_alert_table(driver_t *d)
{
    char *table = alerts_table_json(d->alerts);
    monitor_set_alerts(d->mon, table, alerts_firing(d->alerts));
    free(table);
}

static int start_alerts(driver_t *d, sp_err_t *err)
{
    const driver_opts_t *o = d->o;
    if (o->nalert_rules == 0 && o->alerts_file == NULL)
        return 0;
    char url[64] = "";
    if (d->http)
        snprintf(url, sizeof url, "http://%s/", http_address(d->http));
    alerts_query_t q = {d->r.rec.query_id, d->run_id, d->r.rec.name, d->http ? url : NULL};
    d->alerts = alerts_new(&q, alert_published, d);
    int rc = 0;
    for (size_t i = 0; i < o->nalert_rules && rc == 0; i++)
        rc = alerts_add_rule(d->alerts, o->alert_rules[i], err);
    if (rc == 0 && o->alerts_file)
        rc = alerts_load_file(d->alerts, o->alerts_file, err);
    for (size_t i = 0; i < o->nalert_actions && rc == 0; i++)
        rc = alerts_add_action(d->alerts, o->alert_actions[i], err);
    if (rc == 0 && o->nalert_actions == 0)
        rc = alerts_add_action(d->alerts, "log", err);
    if (rc == 0)
        rc = alerts_start(d->alerts, err);
    if (rc == 0)
        publish_alert_table(d);
    return rc;
}

/* Judge the rules on the figures as they are now (after_batch: a batch
 * just committed, with its progress report p). */
static void evaluate_alerts(driver_t *d, const progress_t *p, uint64_t now)
{
    if (d->alerts == NULL)
        return;
    alerts_figures_t f = {0};
    f.now_ms = sp_wall_ms();
    f.after_batch = p != NULL;
    if (p) {
        f.input_rate = p->input_rows_per_second;
        f.processing_rate = p->processed_rows_per_second;
        f.batch_duration_ms = p->duration_ms.trigger_execution;
        f.batch_rows = p->num_input_rows;
        f.batch_malformed = p->num_malformed_rows;
        f.state_rows = p->state_rows_total;
        d->last_state_rows = p->state_rows_total;
    } else {
        f.state_rows = d->last_state_rows;
    }
    f.backlog_files = d->backlog_files;
    f.backlog_bytes = d->backlog_bytes;
    f.backlog_age_ms = d->backlog_files ? f.now_ms - d->backlog_oldest_mtime_ns / 1000000 : 0;
    f.executors_alive = (uint32_t)sched_count(d->sched);
    alerts_evaluate(d->alerts, &f);
    publish_alert_table(d);
    d->next_alert_eval_ms = now + 1000;
}

/* While a batch runs (perhaps stuck), refresh the candidates at most once
 * a second, so that the backlog figures and the alerts on them stay
 * current. Nothing is planned: the files stay for the next batch. */
static void refresh_backlog(driver_t *d, uint64_t now)
{
    d->next_backlog_ms = now + 1000;
    sp_err_t err;
    if (source_refresh(d->r.source, d->r.ckpt, now, &err) == 0)
        backlog_from_candidates(d);
}

/* Status as Spark words it, the executor table, and idle events. */
static void update_status(driver_t *d, uint64_t now)
{
    bool data = d->backlog_files > 0;
    if (d->batch.active) {
        d->idle_since_ms = 0;
        if (sched_count(d->sched) == 0)
            monitor_set_status(d->mon, "Waiting for executors", true, true);
        else
            monitor_set_status(d->mon, "Processing new data", true, true);
    } else if (d->o->trigger == TRIGGER_INTERVAL && now < d->next_trigger_ms) {
        monitor_set_status(d->mon, "Waiting for next trigger", data, false);
    } else {
        monitor_set_status(d->mon, "Waiting for data to arrive", data, false);
    }
    if (!d->batch.active && !data) {
        if (d->idle_since_ms == 0) {
            d->idle_since_ms = now;
            d->next_idle_event_ms = now + DRIVER_IDLE_EVENT_MS;
        } else if (now >= d->next_idle_event_ms) {
            monitor_idle(d->mon, sp_wall_ms());
            d->next_idle_event_ms = now + DRIVER_IDLE_EVENT_MS;
        }
    }
    if (now >= d->next_executors_publish_ms)
        publish_executors(d, now);
    monitor_set_backlog(d->mon, d->backlog_files, d->backlog_bytes,
                        d->backlog_files ? sp_wall_ms() - d->backlog_oldest_mtime_ns / 1000000 : -1);
    if (now >= d->next_alert_eval_ms)
        evaluate_alerts(d, NULL, now);
}

static int run_loop(driver_t *d, sp_err_t *err)
{
    const driver_opts_t *o = d->o;
    uint64_t stop_deadline = 0;
    unsigned seen_signals = 0;
    int rc = 0;
    d->dirty = true;
    for (;;) {
        uint64_t now = sp_mono_ms();
        if (d->local.n > 0) {
            int dead[64];
            int ndead = local_check(&d->local, atomic_load(&d->stop_requests) == 0, dead, 64);
            for (int k = 0; k < ndead; k++) {
                char id[64];
                local_executor_id(&d->local, dead[k], id, sizeof id);
                sched_exec_t *lost = sched_find(d->sched, id, strlen(id));
                if (lost)
                    executor_lost(d, lost, "its process died");
            }
        }
        sched_exec_t *e;
        while ((e = sched_expired(d->sched, now, o->executor_timeout_ms)) != NULL)
            executor_lost(d, e, "no heartbeat");
        if (d->fail_rc != 0) {
            rc = sp_err_set(err, d->fail_rc, "%s", d->fail.msg);
            break;
        }
        unsigned stops = (unsigned)atomic_load(&d->stop_requests);
        if (stops != seen_signals) {
            if (seen_signals == 0) {
                stop_deadline = now + o->stop_timeout_ms;
                if (d->batch.active)
                    SP_INFO(LOG, "stopping: letting batch %lld finish (up to %u ms; signal again to abandon it)",
                            (long long)d->batch.plan.batch_id, o->stop_timeout_ms);
            }
            seen_signals = stops;
        }
        if (seen_signals > 0) {
            if (!d->batch.active)
                break;
            if (seen_signals > 1 || now >= stop_deadline) {
                SP_INFO(LOG, "stopping: batch %lld abandoned; it runs again, with the same files, on restart",
                        (long long)d->batch.plan.batch_id);
                break;
            }
        }
        if (!d->batch.active && seen_signals == 0) {
            if (d->finished)
                break;
            if (trigger_due(d, now)) {
                d->dirty = false;
                d->next_list_ms = now + o->poll_ms;
                if (o->trigger == TRIGGER_INTERVAL)
                    d->next_trigger_ms = now + o->trigger_interval_ms;
                if ((rc = plan_next(d, err)) != 0)
                    break;
                if (d->finished)
                    continue;
            }
        }
        if (d->batch.active && now >= d->next_backlog_ms)
            refresh_backlog(d, now);
        if (d->batch.active && sched_count(d->sched) == 0) {
            /* Nobody to run tasks: wait (the query does not fail for it). */
            if (d->no_executors_since_ms == 0)
                d->no_executors_since_ms = now;
            if (!d->no_executors_logged && now - d->no_executors_since_ms >= 2000) {
                SP_WARN(LOG, "waiting for executors: batch %lld is ready and none is registered at %s",
                        (long long)d->batch.plan.batch_id, d->endpoint);
                d->no_executors_logged = true;
            }
        } else if (sched_count(d->sched) > 0 && d->no_executors_since_ms != 0) {
            if (d->no_executors_logged)
                SP_INFO(LOG, "executors are back: continuing");
            d->no_executors_since_ms = 0;
            d->no_executors_logged = false;
        }
        if (d->batch.active) {
            dispatch(d);
            if (d->batch.next_merge == d->batch.ntasks && d->fail_rc == 0) {
                if ((rc = commit_batch(d, err)) != 0)
                    break;
                if (o->trigger == TRIGGER_ONCE)
                    d->finished = true;
                continue;
            }
        }
        update_status(d, now);
        serve_calls(d, false);
        zmq_pollitem_t items[3] = {{d->router, 0, ZMQ_POLLIN, 0},
                                   {NULL, d->wake_fd, ZMQ_POLLIN, 0},
                                   {NULL, source_watch_fd(d->r.source), ZMQ_POLLIN, 0}};
        int nitems = items[2].fd >= 0 ? 3 : 2;
        if (zmq_poll(items, nitems, poll_timeout(d, sp_mono_ms())) < 0 && errno != EINTR) {
            rc = sp_err_set(err, SP_EIO, "poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            drain_router(d);
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t n;
            (void)!read(d->wake_fd, &n, sizeof n);
        }
        if (nitems > 2 && (items[2].revents & ZMQ_POLLIN) && source_watch_drain(d->r.source))
            d->dirty = true;
    }
    return rc;
}

/* While the first start waits for a file to infer the schema from:
 * register executors and keep local ones alive. */
static void serve_while_resolving(void *ctx)
{
    driver_t *d = ctx;
    drain_router(d);
    serve_calls(d, false);
    if (d->local.n > 0) {
        int dead[64];
        local_check(&d->local, atomic_load(&d->stop_requests) == 0, dead, 64);
    }
}

/* Read back the progress reports an earlier run kept. */
static int restore_one(void *ctx, const char *json, size_t len)
{
    sp_buf_t *all = ctx;
    sp_buf_append(all, json, len);
    sp_buf_putc(all, '\0');
    return 0;
}

static void restore_progress(driver_t *d)
{
    sp_buf_t all = SP_BUF_INIT;
    sp_err_t err;
    if (ckpt_progress_read(d->r.ckpt, d->o->recent_progress, restore_one, &all, &err) != 0) {
        SP_WARN(LOG, "earlier progress reports unreadable: %s", err.msg);
        sp_buf_free(&all);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < all.len; i++)
        n += all.data[i] == '\0';
    const char **list = sp_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0, k = 0, start = 0; i < all.len; i++)
        if (all.data[i] == '\0') {
            list[k++] = all.data + start;
            start = i + 1;
        }
    monitor_restore_progress(d->mon, list, n);
    free(list);
    sp_buf_free(&all);
}

/* SP_E* code -> the errorClassOnException of QueryTerminatedEvent. */
static const char *error_class(int rc)
{
    switch (rc) {
    case SP_EFAILED: return "SPATE_TASK_FAILED";
    case SP_EINCOMPAT: return "SPATE_INCOMPATIBLE_CHECKPOINT";
    case SP_EVERSION: return "SPATE_CHECKPOINT_VERSION";
    case SP_ECORRUPT: return "SPATE_CHECKPOINT_DAMAGED";
    case SP_ENOSPC: return "SPATE_NO_SPACE";
    case SP_EPARSE: return "SPATE_SQL_ERROR";
    case SP_EINVAL: return "SPATE_INVALID";
    case SP_ETYPE: return "SPATE_TYPE_ERROR";
    case SP_EBUSY: return "SPATE_CHECKPOINT_IN_USE";
    default: return "SPATE_ERROR";
    }
}

/* The query, start to end, on the loop's thread. */
static int driver_body(driver_t *d, sp_err_t *err)
{
    const driver_opts_t *o = d->o;
    int rc = start_http(d, err);
    if (rc != 0)
        return rc;
    if (o->events) {
        if ((rc = events_start(d->mon, o->events, &d->events, err)) != 0)
            return sp_err_wrap(err, rc, "--events");
        SP_INFO(LOG, "events on %s", events_endpoint(d->events));
    }
    /* Executors start first, so they register while the driver settles the
     * checkpoint and schema. */
    d->sched = sched_new();
    rc = open_router(d, err);
    if (rc != 0)
        return rc;
    if (o->local_executors > 0) {
        const char *level = sp_log_get_level() >= SP_LOG_DEBUG ? "debug" : "warn";
        int lrc = local_start(&d->local, o->exe, d->endpoint, o->local_executors, o->local_slots, level);
        if (lrc != 0)
            return sp_err_set(err, SP_EIO, "cannot start local executors: %s", strerror(-lrc));
    }
    rc = resolve_query(o, &d->stop_requests, serve_while_resolving, d, &d->r, err);
    if (rc == SP_ENOTFOUND || rc == SP_ESTOPPED) {
        if (rc == SP_ENOTFOUND)
            SP_INFO(LOG, "no data in %s: nothing to do", o->source_path);
        sp_err_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    source_set_relist_ms(d->r.source, o->relist_ms);
    if (o->clean_source == CLEAN_SOURCE_ARCHIVE) {
        if (mkdir(o->archive_dir, 0755) != 0 && errno != EEXIST)
            return sp_err_set(err, SP_EIO, "--source-archive-dir %s: %s", o->archive_dir, strerror(errno));
        if (access(o->archive_dir, W_OK) != 0)
            return sp_err_set(err, SP_EIO, "--source-archive-dir %s is not writable", o->archive_dir);
    }
    monitor_set_query(d->mon, d->r.rec.query_id, d->r.rec.name);
    restore_progress(d);
    if ((rc = start_alerts(d, err)) != 0)
        return rc;
    if ((rc = sink_open(o->sink, o->output_mode, d->r.plan, &d->sink, err)) != 0)
        return rc;
    int64_t planned, committed;
    if ((rc = ckpt_batch_last(d->r.ckpt, &planned, &committed, err)) != 0)
        return rc;
    d->last_committed = committed;
    d->next_batch_id = planned + 1;
    SP_INFO(LOG, "query %s%s%s (id %s, run %s) on checkpoint %s; executors connect to %s",
            d->r.rec.name[0] ? "'" : "", d->r.rec.name, d->r.rec.name[0] ? "'" : "", d->r.rec.query_id,
            d->run_id, o->checkpoint, d->endpoint);
    monitor_query_started(d->mon, sp_wall_ms());
    if (planned > committed) {
        /* Re-run the planned but uncommitted batch with exactly its files. */
        ckpt_batch_t plan;
        if ((rc = ckpt_batch_read(d->r.ckpt, planned, &plan, err)) != 0)
            return rc;
        SP_INFO(LOG, "resuming: batch %lld was planned but not committed; running it again", (long long)planned);
        batch_start(d, &plan, true);
        publish_batch(d, "running", NULL, 0);
    } else if (committed >= 0) {
        SP_INFO(LOG, "resuming after batch %lld", (long long)committed);
    }
    if (committed >= 0 && o->clean_source != CLEAN_SOURCE_OFF) {
        ckpt_batch_t last;
        if (ckpt_batch_read(d->r.ckpt, committed, &last, err) == 0) {
            clean_batch_files(d, &last);
            ckpt_batch_free(&last);
        }
        sp_err_clear(err);
    }
    rc = run_loop(d, err);
    if (d->batch.active)
        publish_batch(d, "abandoned", NULL, 0);
    if (rc == 0 && d->o->trigger != TRIGGER_DEFAULT && d->o->trigger != TRIGGER_INTERVAL && d->finished)
        SP_INFO(LOG, "done: %llu batch(es) run, last committed batch %lld", (unsigned long long)d->batches_run,
                (long long)d->last_committed);
    return rc;
}

static void *driver_main(void *arg)
{
    driver_t *d = arg;
    sp_err_clear(&d->result_err);
    d->result_rc = driver_body(d, &d->result_err);
    if (d->alerts && d->result_rc != 0) {
        alerts_query_failed(d->alerts, sp_err_text(&d->result_err, d->result_rc), sp_wall_ms());
        publish_alert_table(d);
    }
    alerts_destroy(&d->alerts); /* runs the queued actions first */
    monitor_query_terminated(d->mon, d->result_rc ? sp_err_text(&d->result_err, d->result_rc) : NULL,
                             d->result_rc ? error_class(d->result_rc) : NULL);
    http_stop(&d->http); /* no more calls into the loop */
    serve_calls(d, true);
    if (d->local.n > 0)
        local_stop(&d->local, 3000);
    if (d->router)
        zmq_close(d->router);
    d->router = NULL;
    auth_zap_stop(&d->zap); /* closes its sockets: before the context ends */
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    d->zctx = NULL;
    batch_clear(&d->batch);
    source_listing_free(&d->snapshot);
    sched_destroy(&d->sched);
    sink_close(&d->sink);
    resolve_free(&d->r);
    return NULL;
}

int driver_new(const driver_opts_t *o, driver_t **out, sp_err_t *err)
{
    (void)err;
    driver_t *d = sp_xcalloc(1, sizeof *d);
    d->o = o;
    sp_uuid_v4(d->run_id);
    atomic_init(&d->stop_requests, 0);
    d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&d->call_mu, NULL);
    pthread_cond_init(&d->call_cv, NULL);
    monitor_opts_t mo = {"", d->run_id, o->name, o->recent_progress, 100};
    d->mon = monitor_new(&mo);
    *out = d;
    return 0;
}

void driver_add_listener(driver_t *d, const monitor_listener_t *l) { monitor_add_listener(d->mon, l); }

int driver_start(driver_t *d, sp_err_t *err)
{
    if (d->started)
        return sp_err_set(err, SP_EINVAL, "the query was started already");
    if (pthread_create(&d->thread, NULL, driver_main, d) != 0)
        return sp_err_set(err, SP_EIO, "cannot start the driver's thread");
    d->started = true;
    return 0;
}

void driver_stop(driver_t *d)
{
    atomic_fetch_add(&d->stop_requests, 1);
    uint64_t one = 1;
    (void)!write(d->wake_fd, &one, sizeof one); /* async-signal-safe */
}

int driver_await(driver_t *d, sp_err_t *err)
{
    if (!d->started)
        return sp_err_set(err, SP_EINVAL, "the query was not started");
    pthread_join(d->thread, NULL);
    d->started = false;
    if (err)
        *err = d->result_err;
    return d->result_rc;
}

monitor_t *driver_monitor(driver_t *d) { return d->mon; }

void driver_destroy(driver_t **dp)
{
    if (dp == NULL || *dp == NULL)
        return;
    driver_t *d = *dp;
    if (d->started) {
        driver_stop(d);
        driver_stop(d);
        driver_await(d, NULL);
    }
    monitor_destroy(&d->mon);
    events_stop(&d->events); /* after the monitor delivered every event to it */
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    pthread_mutex_destroy(&d->call_mu);
    pthread_cond_destroy(&d->call_cv);
    free(d);
    *dp = NULL;
}

/* ---- the command ------------------------------------------------------------------- */

static driver_t *volatile signalled_driver;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (signalled_driver)
        driver_stop(signalled_driver);
}

int driver_run(const driver_opts_t *o, sp_err_t *err)
{
    driver_t *d = NULL;
    int rc = driver_new(o, &d, err);
    if (rc != 0)
        return rc;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    signalled_driver = d;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);
    rc = driver_start(d, err);
    if (rc == 0)
        rc = driver_await(d, err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    signalled_driver = NULL;
    driver_destroy(&d);
    return rc;
}
