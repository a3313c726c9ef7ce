/* executor/executor.c -- the executor process: one main thread owns the
 * DEALER socket to the driver (registration, heartbeats, receiving tasks,
 * forwarding results); `slots` worker threads run tasks (executor/task.c)
 * and push encoded result frames to the main thread over inproc sockets.
 * Owns the task queue and the compiled-query cache of each worker. */
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "sp_log.h"
#include "sp_util.h"
#include "task.h"
#include "wire.h"

#define LOG "executor"

/* ---- the task queue ------------------------------------------------------ */

typedef struct exec_task {
    struct exec_task *next;
    wire_task_ref_t ref;
    char *query_id, *source_name, *schema, *sql, *path;
    int mode;
    uint64_t start, end;
    atomic_bool cancel;
} exec_task_t;

typedef struct exec {
    const executor_opts_t *opts;
    char id[256];
    void *zctx;
    void *dealer;
    void *results;           /* PULL: frames from workers */
    char results_ep[300];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    exec_task_t *queue_head, *queue_tail;
    exec_task_t **running;   /* per worker: the task it runs, or NULL */
    bool stopping;           /* workers exit when the queue is empty */

    pthread_t *workers;
    uint32_t nworkers;
} exec_t;

static volatile sig_atomic_t exec_drain_signal;

static void on_signal(int sig)
{
    (void)sig;
    exec_drain_signal = 1;
}

static void task_free(exec_task_t *t)
{
    if (t == NULL)
        return;
    free(t->query_id);
    free(t->source_name);
    free(t->schema);
    free(t->sql);
    free(t->path);
    free(t);
}

static char *str_dup(wire_str_t s) { return sp_xstrndup(s.ptr, s.len); }

/* ---- workers ------------------------------------------------------------- */

typedef struct worker {
    exec_t *ex;
    uint32_t index;
} worker_t;

/* The worker's compiled query, rebuilt when a task names another one. */
typedef struct query_cache {
    char *source_name, *schema, *sql;
    task_query_t *query;
    agg_table_t *table;
} query_cache_t;

static void cache_clear(query_cache_t *c)
{
    free(c->source_name);
    free(c->schema);
    free(c->sql);
    task_query_destroy(&c->query);
    agg_table_destroy(&c->table);
    memset(c, 0, sizeof *c);
}

static int cache_get(query_cache_t *c, const exec_task_t *t, sp_err_t *err)
{
    if (c->query && strcmp(c->sql, t->sql) == 0 && strcmp(c->schema, t->schema) == 0 &&
        strcmp(c->source_name, t->source_name) == 0)
        return 0;
    cache_clear(c);
    int rc = task_query_new(t->source_name, t->schema, t->sql, &c->query, err);
    if (rc != 0)
        return rc;
    c->source_name = sp_xstrdup(t->source_name);
    c->schema = sp_xstrdup(t->schema);
    c->sql = sp_xstrdup(t->sql);
    c->table = task_query_new_table(c->query);
    return 0;
}

static void push_frame(void *push, sp_buf_t *frame)
{
    if (wire_send(push, frame, false) != 0)
        SP_WARN(LOG, "cannot pass a result frame to the main thread: %s", zmq_strerror(errno));
    frame->len = 0;
}

/* Run one task and push its RESULT_PART frames and RESULT_DONE. */
static void worker_run_task(worker_t *w, void *push, query_cache_t *cache, exec_task_t *t)
{
    uint64_t t0 = sp_mono_ns();
    sp_err_t err;
    sp_err_clear(&err);
    task_stats_t stats = {0};
    /* Test knob: SPATE_FAULT=executor-crash:SUBSTRING kills the executor
     * when it starts a task on a file whose path contains SUBSTRING. */
    const char *fault = getenv("SPATE_FAULT");
    if (fault && strncmp(fault, "executor-crash:", 15) == 0 && strstr(t->path, fault + 15)) {
        SP_WARN(LOG, "SPATE_FAULT: killing the executor on %s", t->path);
        raise(SIGKILL);
    }
    /* Test knob: stretch every task so fault tests can land in the middle. */
    const char *slow = getenv("SPATE_TEST_SLOW_TASK_MS");
    if (slow && atoi(slow) > 0) {
        struct timespec ts = {atoi(slow) / 1000, (long)(atoi(slow) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    uint32_t nparts = 0;
    uint64_t groups = 0;
    sp_buf_t frame = SP_BUF_INIT;
    int rc = cache_get(cache, t, &err);
    if (rc == 0) {
        agg_table_clear(cache->table);
        rc = task_scan(cache->query, t->path, t->start, t->end, t->mode, cache->table, &stats,
                       &t->cancel, &err);
    }
    if (rc == SP_ESTOPPED) {
        SP_DEBUG(LOG, "task %lld.%u attempt %u cancelled", (long long)t->ref.batch_id,
                 t->ref.task_id, t->ref.attempt);
        sp_buf_free(&frame);
        return;
    }
    if (rc == 0) {
        /* Ship the partial aggregate in frames of about WIRE_PART_BYTES. */
        groups = agg_table_count(cache->table);
        size_t cap = 1024, n = 0, bytes = 0;
        wire_entry_t *entries = sp_xmalloc(cap * sizeof *entries);
        sp_buf_t states = SP_BUF_INIT;
        size_t *state_off = sp_xmalloc(cap * sizeof(size_t));
        size_t pos = 0;
        const void *key;
        size_t klen;
        for (;;) {
            size_t before = states.len;
            bool more = agg_table_next(cache->table, &pos, &key, &klen, NULL, &states);
            if (more) {
                if (n == cap) {
                    cap *= 2;
                    entries = sp_xrealloc(entries, cap * sizeof *entries);
                    state_off = sp_xrealloc(state_off, cap * sizeof(size_t));
                }
                entries[n].key = key;
                entries[n].klen = klen;
                state_off[n] = before;
                entries[n].slen = states.len - before;
                n++;
                bytes += klen + (states.len - before) + 8;
            }
            if ((!more && n > 0) || bytes >= WIRE_PART_BYTES) {
                for (size_t i = 0; i < n; i++)
                    entries[i].state = states.data + state_off[i];
                wire_encode_part(&frame, &t->ref, nparts++, entries, n);
                push_frame(push, &frame);
                n = 0;
                bytes = 0;
                states.len = 0;
            }
            if (!more)
                break;
        }
        free(entries);
        free(state_off);
        sp_buf_free(&states);
    }
    wire_msg_t done = {.type = WIRE_RESULT_DONE};
    done.u.done.ref = t->ref;
    done.u.done.nparts = rc == 0 ? nparts : 0;
    done.u.done.ok = rc == 0;
    done.u.done.rows = stats.rows;
    done.u.done.malformed = stats.malformed;
    done.u.done.bytes = stats.bytes;
    done.u.done.groups = groups;
    done.u.done.duration_us = (sp_mono_ns() - t0) / 1000;
    done.u.done.error = rc == 0 ? WIRE_STR("") : WIRE_STR(sp_err_text(&err, rc));
    done.u.done.fatal = rc == SP_EFAILED; /* failfast met a bad line */
    wire_encode(&done, &frame);
    push_frame(push, &frame);
    sp_buf_free(&frame);
    if (rc != 0)
        SP_WARN(LOG, "task %lld.%u failed: %s", (long long)t->ref.batch_id, t->ref.task_id,
                sp_err_text(&err, rc));
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    exec_t *ex = w->ex;
    void *push = zmq_socket(ex->zctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(push, ex->results_ep);
    query_cache_t cache = {0};
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        while (ex->queue_head == NULL && !ex->stopping)
            pthread_cond_wait(&ex->cv, &ex->mu);
        exec_task_t *t = ex->queue_head;
        if (t == NULL) {
            pthread_mutex_unlock(&ex->mu);
            break;
        }
        ex->queue_head = t->next;
        if (ex->queue_head == NULL)
            ex->queue_tail = NULL;
        ex->running[w->index] = t;
        pthread_mutex_unlock(&ex->mu);

        worker_run_task(w, push, &cache, t);

        pthread_mutex_lock(&ex->mu);
        ex->running[w->index] = NULL;
        pthread_mutex_unlock(&ex->mu);
        task_free(t);
    }
    cache_clear(&cache);
    zmq_close(push);
    return NULL;
}

/* ---- main thread ----------------------------------------------------------- */

static uint32_t busy_count(exec_t *ex)
{
    uint32_t n = 0;
    pthread_mutex_lock(&ex->mu);
    for (exec_task_t *t = ex->queue_head; t; t = t->next)
        n++;
    for (uint32_t i = 0; i < ex->nworkers; i++)
        n += ex->running[i] != NULL;
    pthread_mutex_unlock(&ex->mu);
    return n;
}

/* Drop queued tasks and cancel running ones (the driver forgot them). */
static void drop_all_tasks(exec_t *ex)
{
    pthread_mutex_lock(&ex->mu);
    exec_task_t *t = ex->queue_head;
    ex->queue_head = ex->queue_tail = NULL;
    for (uint32_t i = 0; i < ex->nworkers; i++)
        if (ex->running[i])
            atomic_store(&ex->running[i]->cancel, true);
    pthread_mutex_unlock(&ex->mu);
    while (t) {
        exec_task_t *next = t->next;
        task_free(t);
        t = next;
    }
}

static void cancel_task(exec_t *ex, const wire_task_ref_t *ref)
{
    pthread_mutex_lock(&ex->mu);
    exec_task_t **pp = &ex->queue_head, *prev = NULL;
    while (*pp) {
        exec_task_t *t = *pp;
        if (t->ref.batch_id == ref->batch_id && t->ref.task_id == ref->task_id &&
            t->ref.attempt == ref->attempt) {
            *pp = t->next;
            if (ex->queue_tail == t)
                ex->queue_tail = prev;
            task_free(t);
            break;
        }
        prev = t;
        pp = &t->next;
    }
    for (uint32_t i = 0; i < ex->nworkers; i++) {
        exec_task_t *t = ex->running[i];
        if (t && t->ref.batch_id == ref->batch_id && t->ref.task_id == ref->task_id &&
            t->ref.attempt == ref->attempt)
            atomic_store(&t->cancel, true);
    }
    pthread_mutex_unlock(&ex->mu);
}

static void enqueue_task(exec_t *ex, const wire_task_t *wt)
{
    exec_task_t *t = sp_xcalloc(1, sizeof *t);
    t->ref = wt->ref;
    t->query_id = str_dup(wt->query_id);
    t->source_name = str_dup(wt->source_name);
    t->schema = str_dup(wt->schema);
    t->sql = str_dup(wt->sql);
    t->path = str_dup(wt->path);
    t->mode = (int)wt->mode;
    t->start = wt->start;
    t->end = wt->end;
    atomic_init(&t->cancel, false);
    pthread_mutex_lock(&ex->mu);
    if (ex->queue_tail)
        ex->queue_tail->next = t;
    else
        ex->queue_head = t;
    ex->queue_tail = t;
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
}

static void send_msg(exec_t *ex, const wire_msg_t *m)
{
    sp_buf_t frame = SP_BUF_INIT;
    wire_encode(m, &frame);
    int rc = wire_send(ex->dealer, &frame, true);
    if (rc != 0 && rc != -EAGAIN)
        SP_DEBUG(LOG, "send %s: %s", wire_type_name(m->type), zmq_strerror(-rc));
    sp_buf_free(&frame);
}

static void send_hello(exec_t *ex)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    wire_msg_t m = {.type = WIRE_HELLO};
    m.u.hello.executor_id = WIRE_STR(ex->id);
    m.u.hello.host = WIRE_STR(host);
    m.u.hello.pid = (uint32_t)getpid();
    m.u.hello.slots = ex->nworkers;
    send_msg(ex, &m);
}

static void send_heartbeat(exec_t *ex, bool draining)
{
    wire_msg_t m = {.type = WIRE_HEARTBEAT};
    m.u.heartbeat.running = busy_count(ex);
    m.u.heartbeat.draining = draining;
    send_msg(ex, &m);
}

static int open_sockets(exec_t *ex, sp_err_t *err)
{
    const executor_opts_t *o = ex->opts;
    if (o->curve_secret && !o->driver_key)
        return sp_err_set(err, SP_EINVAL,
                          "--curve-secret needs --driver-key FILE: the driver's public key (its NAME.pub)");
    if (o->driver_key && !o->curve_secret)
        return sp_err_set(err, SP_EINVAL,
                          "--driver-key needs --curve-secret FILE: this executor's own key (make one with spate "
                          "keygen, and put its .pub in the driver's --authorized-keys directory)");
    auth_keypair_t kp = {{0}, {0}};
    char driver_pub[AUTH_KEY_Z85_LEN + 1];
    int rc;
    if (o->curve_secret) {
        if ((rc = auth_load_keypair(o->curve_secret, &kp, err)) != 0)
            return sp_err_wrap(err, rc, "--curve-secret");
        if ((rc = auth_load_public(o->driver_key, driver_pub, err)) != 0) {
            auth_keypair_clear(&kp);
            return sp_err_wrap(err, rc, "--driver-key");
        }
    }
    ex->zctx = zmq_ctx_new();
    ex->dealer = zmq_socket(ex->zctx, ZMQ_DEALER);
    if (o->curve_secret) {
        rc = auth_client_socket(ex->dealer, &kp, driver_pub, err);
        auth_keypair_clear(&kp);
        if (rc != 0)
            return rc;
    }
    int zero = 0, one = 1, ivl = 100, ivl_max = 1000, hwm = 100000, linger = 2000;
    int64_t maxmsg = WIRE_MAX_FRAME;
    zmq_setsockopt(ex->dealer, ZMQ_ROUTING_ID, ex->id, strlen(ex->id));
    /* Linger so a final BYE and results reach a live driver; with
     * ZMQ_IMMEDIATE nothing is queued for a driver that is gone. */
    zmq_setsockopt(ex->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ex->dealer, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(ex->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(ex->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(ex->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ex->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_connect(ex->dealer, ex->opts->driver) != 0)
        return sp_err_set(err, SP_EINVAL, "cannot connect to driver '%s': %s", ex->opts->driver,
                          zmq_strerror(errno));
    ex->results = zmq_socket(ex->zctx, ZMQ_PULL);
    zmq_setsockopt(ex->results, ZMQ_LINGER, &zero, sizeof zero);
    snprintf(ex->results_ep, sizeof ex->results_ep, "inproc://results-%p", (void *)ex);
    if (zmq_bind(ex->results, ex->results_ep) != 0)
        return sp_err_set(err, SP_EIO, "inproc bind: %s", zmq_strerror(errno));
    return 0;
}

/* Connect again. ZeroMQ (4.3) gives up on an endpoint for good when the
 * handshake fails on a protocol level -- the driver's ZAP handler refused
 * our key, or one side has CURVE and the other not -- so a key authorised
 * later would never be tried. Called while no driver answers. */
static void reconnect_driver(exec_t *ex)
{
    zmq_disconnect(ex->dealer, ex->opts->driver); /* fails when ZeroMQ dropped it already */
    if (zmq_connect(ex->dealer, ex->opts->driver) != 0)
        SP_WARN(LOG, "cannot connect to driver '%s': %s", ex->opts->driver, zmq_strerror(errno));
}

/* Forward every frame the workers produced to the driver. Returns how many
 * RESULT_DONE frames went by. */
static void forward_results(exec_t *ex)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, ex->results, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        int rc;
        do {
            rc = zmq_msg_send(&msg, ex->dealer, ZMQ_DONTWAIT);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            SP_DEBUG(LOG, "driver unreachable, result frame dropped (the task will be retried)");
            zmq_msg_close(&msg);
        }
    }
}

int executor_run(const executor_opts_t *opts, sp_err_t *err)
{
    exec_t ex_storage, *ex = &ex_storage;
    memset(ex, 0, sizeof *ex);
    ex->opts = opts;
    ex->nworkers = opts->slots ? opts->slots : 1;
    uint32_t hb_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 500;
    uint32_t driver_timeout = opts->driver_timeout_ms ? opts->driver_timeout_ms : 10000;
    if (opts->id && *opts->id) {
        snprintf(ex->id, sizeof ex->id, "%s", opts->id);
    } else {
        char host[128], uuid[37];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "exec");
        host[sizeof host - 1] = '\0';
        sp_uuid_v4(uuid);
        snprintf(ex->id, sizeof ex->id, "%s-%d-%.8s", host, (int)getpid(), uuid);
    }
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->cv, NULL);

    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    exec_drain_signal = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);

    int rc = open_sockets(ex, err);
    if (rc == 0) {
        ex->running = sp_xcalloc(ex->nworkers, sizeof(exec_task_t *));
        ex->workers = sp_xcalloc(ex->nworkers, sizeof(pthread_t));
        worker_t *ws = sp_xcalloc(ex->nworkers, sizeof(worker_t));
        /* Workers must not take the signals meant for the main thread. */
        sigset_t block, oldmask;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        pthread_sigmask(SIG_BLOCK, &block, &oldmask);
        for (uint32_t i = 0; i < ex->nworkers; i++) {
            ws[i].ex = ex;
            ws[i].index = i;
            pthread_create(&ex->workers[i], NULL, worker_main, &ws[i]);
        }
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);

        SP_INFO(LOG, "executor %s with %u slot(s), connecting to %s", ex->id, ex->nworkers,
                opts->driver);
        bool registered = false, draining = false;
        unsigned hellos = 0;
        uint64_t now = sp_mono_ms();
        uint64_t last_heard = now, next_beat = now, next_hello = now;
        uint64_t drain_deadline = 0;
        /* A driver that is down and one that does not hold the secret of
         * --driver-key look the same from here (the handshake never ends):
         * say so once per stretch without an answer. */
        uint64_t unanswered_since = now, next_reconnect = now + 5000;
        bool unanswered_said = false;
        for (;;) {
            now = sp_mono_ms();
            if (registered) {
                unanswered_since = now;
                next_reconnect = now + 5000;
                unanswered_said = false;
            } else {
                if (!unanswered_said && now - unanswered_since >= 5000) {
                    if (opts->driver_key)
                        SP_WARN(LOG, "no answer from driver %s: is it up, is --driver-key its public key, and "
                                     "is this executor's public key in its --authorized-keys directory?",
                                opts->driver);
                    else
                        SP_WARN(LOG, "no answer from driver %s: is it up? (a driver with CURVE keys answers "
                                     "only executors given --curve-secret and --driver-key)", opts->driver);
                    unanswered_said = true;
                }
                if (now >= next_reconnect) {
                    reconnect_driver(ex);
                    next_reconnect = now + 5000;
                }
            }
            if (exec_drain_signal && !draining) {
                draining = true;
                drain_deadline = now + 30000;
                SP_INFO(LOG, "draining: no new tasks; finishing %u running", busy_count(ex));
                send_heartbeat(ex, true);
            }
            if (draining) {
                forward_results(ex);
                if (busy_count(ex) == 0 || now >= drain_deadline || !registered) {
                    forward_results(ex);
                    wire_msg_t bye = {.type = WIRE_BYE};
                    send_msg(ex, &bye);
                    break;
                }
            }
            if (!registered && now >= next_hello) {
                /* With ZMQ_IMMEDIATE a HELLO sent before the connection is
                 * up is dropped: retry every 2 ms for the first 100 ms (a
                 * local driver answers within a few), every 25 ms for the
                 * next second, then every second. The driver takes repeats
                 * of one process's HELLO as one. */
                send_hello(ex);
                hellos++;
                next_hello = now + (hellos <= 50 ? 2 : hellos <= 90 ? 25 : 1000);
            }
            if (registered && now >= next_beat) {
                send_heartbeat(ex, draining);
                next_beat = now + hb_ms;
            }
            if (now - last_heard > driver_timeout) {
                if (opts->exit_with_driver) {
                    rc = sp_err_set(err, SP_ETIMEOUT, "driver %s silent for %u ms: exiting",
                                    opts->driver, driver_timeout);
                    break;
                }
                if (registered) {
                    SP_WARN(LOG, "driver %s silent for %u ms; dropping tasks and registering again",
                            opts->driver, driver_timeout);
                    drop_all_tasks(ex);
                    registered = false;
                }
                last_heard = now;
            }
            zmq_pollitem_t items[2] = {
                {ex->dealer, 0, ZMQ_POLLIN, 0},
                {ex->results, 0, ZMQ_POLLIN, 0},
            };
            long timeout = registered ? (long)hb_ms / 2
                                      : (long)(next_hello > now ? next_hello - now : 0);
            if (zmq_poll(items, 2, timeout) < 0) {
                if (errno == EINTR)
                    continue;
                rc = sp_err_set(err, SP_EIO, "poll: %s", zmq_strerror(errno));
                break;
            }
            if (items[1].revents & ZMQ_POLLIN)
                forward_results(ex);
            if (!(items[0].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t zm;
            zmq_msg_init(&zm);
            if (zmq_msg_recv(&zm, ex->dealer, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&zm);
                continue;
            }
            wire_msg_t m;
            sp_err_t derr;
            int drc = wire_decode(zmq_msg_data(&zm), zmq_msg_size(&zm), &m, &derr);
            if (drc != 0) {
                SP_WARN(LOG, "dropped a bad frame from the driver: %s", derr.msg);
                zmq_msg_close(&zm);
                if (drc == SP_EVERSION && !registered) {
                    rc = sp_err_set(err, SP_EVERSION, "driver %s %s", opts->driver, derr.msg);
                    break;
                }
                continue;
            }
            last_heard = sp_mono_ms();
            switch (m.type) {
            case WIRE_WELCOME:
                if (!registered)
                    SP_INFO(LOG, "registered with driver %s (run %.*s)", opts->driver,
                            (int)m.u.welcome.driver_run_id.len, m.u.welcome.driver_run_id.ptr);
                registered = true;
                if (m.u.welcome.heartbeat_ms >= 50 && m.u.welcome.heartbeat_ms <= 60000)
                    hb_ms = m.u.welcome.heartbeat_ms;
                break;
            case WIRE_TASK:
                if (draining || !registered)
                    break; /* the driver re-sends it elsewhere after our BYE */
                enqueue_task(ex, &m.u.task);
                break;
            case WIRE_CANCEL:
                cancel_task(ex, &m.u.cancel);
                break;
            case WIRE_RESET:
                SP_INFO(LOG, "driver %s does not know this executor; registering again", opts->driver);
                drop_all_tasks(ex);
                registered = false;
                next_hello = 0;
                hellos = 0;
                break;
            case WIRE_REFUSE:
                rc = sp_err_set(err, SP_EPROTO, "driver %s refused this executor: %.*s", opts->driver,
                                (int)m.u.refuse.reason.len, m.u.refuse.reason.ptr);
                break;
            case WIRE_HEARTBEAT_ACK:
                break;
            default:
                SP_WARN(LOG, "unexpected %s from the driver", wire_type_name(m.type));
                break;
            }
            wire_msg_release(&m);
            zmq_msg_close(&zm);
            if (rc != 0)
                break;
        }

        drop_all_tasks(ex);
        pthread_mutex_lock(&ex->mu);
        ex->stopping = true;
        pthread_cond_broadcast(&ex->cv);
        pthread_mutex_unlock(&ex->mu);
        for (uint32_t i = 0; i < ex->nworkers; i++)
            pthread_join(ex->workers[i], NULL);
        free(ws);
        free(ex->workers);
        free(ex->running);
    }
    if (ex->results)
        zmq_close(ex->results);
    if (ex->dealer)
        zmq_close(ex->dealer);
    if (ex->zctx)
        zmq_ctx_term(ex->zctx);
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->cv);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    if (rc == 0)
        SP_INFO(LOG, "executor %s stopped", ex->id);
    return rc;
}
