/* tests/driver/embed_test.c -- the engine embedded in a program (driver.h):
 * a query started in-process with listeners (Spark's
 * StreamingQueryListener): events arrive in order and none is lost, and a
 * slow listener does not slow the batches. Executors are real processes. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;

static void setup(void) { e2e_env_init(&env, "embed"); }
static void teardown(void) { e2e_env_free(&env); }

TestSuite(embed, .init = setup, .fini = teardown);

#define MAX_EVENTS 256

typedef struct recorder {
    pthread_mutex_t mu;
    int n;
    uint64_t seq[MAX_EVENTS];
    monitor_event_kind_t kind[MAX_EVENTS];
    long long batch[MAX_EVENTS];   /* progress: batchId */
    long long rows[MAX_EVENTS];    /* progress: numInputRows */
    int delay_ms;
    bool closed;
} recorder_t;

static void record(void *ctx, const monitor_event_t *ev)
{
    recorder_t *r = ctx;
    if (r->delay_ms) {
        struct timespec ts = {r->delay_ms / 1000, (r->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EVENTS) {
        r->seq[r->n] = ev->seq;
        r->kind[r->n] = ev->kind;
        r->batch[r->n] = r->rows[r->n] = -1;
        if (ev->kind == MONITOR_QUERY_PROGRESS) {
            json_object *o = json_tokener_parse(ev->json), *p, *v;
            cr_assert(o && json_object_object_get_ex(o, "progress", &p), "%s", ev->json);
            json_object_object_get_ex(p, "batchId", &v);
            r->batch[r->n] = json_object_get_int64(v);
            json_object_object_get_ex(p, "numInputRows", &v);
            r->rows[r->n] = json_object_get_int64(v);
            json_object_put(o);
        }
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

static void closed(void *ctx) { ((recorder_t *)ctx)->closed = true; }

static monitor_listener_t listener_for(recorder_t *r)
{
    monitor_listener_t l = {r, record, record, record, record, record, closed};
    return l;
}

/* Run the query in-process; returns the wall time to driver_await. */
static double run(recorder_t *r, const char *ckpt)
{
    driver_opts_t o;
    driver_opts_init(&o);
    o.source_name = "activity";
    o.source_path = env.input;
    o.sql = E2E_SQL_COUNT;
    o.checkpoint = ckpt;
    o.sink = "memory:embedded";
    o.trigger = TRIGGER_AVAILABLE_NOW;
    o.max_files = 1;
    o.local_executors = 2;
    o.exe = ts_env("SPATE_BIN");
    o.progress = false;
    driver_t *d = NULL;
    sp_err_t err;
    cr_assert_eq(driver_new(&o, &d, &err), 0);
    monitor_listener_t l = listener_for(r);
    if (r)
        driver_add_listener(d, &l);
    long long t0 = ts_now_ms();
    cr_assert_eq(driver_start(d, &err), 0, "%s", err.msg);
    int rc = driver_await(d, &err);
    double secs = (double)(ts_now_ms() - t0) / 1e3;
    cr_assert_eq(rc, 0, "%s", err.msg);
    driver_destroy(&d); /* listeners get every event before this returns */
    return secs;
}

Test(embed, events_in_order_and_a_slow_listener_does_not_slow_batches)
{
    e2e_gen(env.input, 6, 500, 81, false, NULL);
    char *ck1 = sp_xasprintf("%s/ck1", env.dir), *ck2 = sp_xasprintf("%s/ck2", env.dir);
    recorder_t fast = {.mu = PTHREAD_MUTEX_INITIALIZER};
    double t_fast = run(&fast, ck1);
    recorder_t slow = {.mu = PTHREAD_MUTEX_INITIALIZER, .delay_ms = 400};
    double t_slow = run(&slow, ck2);
    /* 6 batches: started + 6 progress + terminated (+ executor events) take
     * the slow listener at least 8 x 400 ms; the query must not wait for it */
    cr_assert_lt(t_slow, t_fast + 1.5, "the slow listener slowed the query: %.2f s against %.2f s", t_slow, t_fast);
    cr_assert_lt(t_slow, 8 * 0.4, "the query waited for its listener (%.2f s)", t_slow);
    recorder_t *rs[2] = {&fast, &slow};
    for (int k = 0; k < 2; k++) {
        recorder_t *r = rs[k];
        cr_assert(r->closed, "on_close ran after the last event");
        cr_assert_geq(r->n, 8);
        cr_assert_eq(r->kind[0], MONITOR_QUERY_STARTED, "first: QueryStartedEvent");
        cr_assert_eq(r->kind[r->n - 1], MONITOR_QUERY_TERMINATED, "last: QueryTerminatedEvent");
        long long next_batch = 0, rows = 0;
        for (int i = 0; i < r->n; i++) {
            if (i > 0)
                cr_assert_eq(r->seq[i], r->seq[i - 1] + 1, "event %d: seq %llu after %llu (lost or reordered)", i,
                             (unsigned long long)r->seq[i], (unsigned long long)r->seq[i - 1]);
            if (r->kind[i] == MONITOR_QUERY_PROGRESS) {
                cr_assert_eq(r->batch[i], next_batch, "progress of batch %lld, expected %lld", r->batch[i],
                             next_batch);
                next_batch++;
                rows += r->rows[i];
            }
        }
        cr_assert_eq(next_batch, 6, "one progress event per batch");
        oracle_t *o = e2e_oracle_count_by_gt(env.input);
        cr_assert_eq(rows, (long long)oracle_rows(o), "numInputRows add up to the rows written");
        oracle_destroy(&o);
    }
    free(ck1);
    free(ck2);
}

/* A query stopped from another thread ends cleanly; one that fails says so
 * in QueryTerminatedEvent. */
Test(embed, terminated_event_carries_the_failure)
{
    e2e_gen(env.input, 1, 100, 82, false, NULL);
    driver_opts_t o;
    driver_opts_init(&o);
    o.source_name = "activity";
    o.source_path = env.input;
    o.sql = "SELECT nope, count(*) FROM activity GROUP BY nope";
    o.checkpoint = env.ckpt;
    o.local_executors = 1;
    o.exe = ts_env("SPATE_BIN");
    driver_t *d = NULL;
    sp_err_t err;
    recorder_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cr_assert_eq(driver_new(&o, &d, &err), 0);
    monitor_listener_t l = listener_for(&r);
    driver_add_listener(d, &l);
    cr_assert_eq(driver_start(d, &err), 0);
    int rc = driver_await(d, &err);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err.msg, "unknown column 'nope'"), "%s", err.msg);
    driver_destroy(&d);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.kind[0], MONITOR_QUERY_TERMINATED);
}
