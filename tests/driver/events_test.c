/* tests/driver/events_test.c -- the events publisher: a plain ZeroMQ SUB
 * socket (no spate code) receives [event name, JSON] for every event the
 * monitor publishes, in order; bad and busy endpoints; both stop orders. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "events.h"
#include "monitor.h"
#include "sp_util.h"

/* Receive one [name, json] message within timeout_ms; false on timeout. */
static bool recv_event(void *sub, char *name, size_t namelen, char **json, int timeout_ms)
{
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return false;
    zmq_msg_t a, b;
    zmq_msg_init(&a);
    zmq_msg_init(&b);
    cr_assert_geq(zmq_msg_recv(&a, sub, 0), 0);
    cr_assert(zmq_msg_more(&a), "the event name frame is followed by the JSON frame");
    cr_assert_geq(zmq_msg_recv(&b, sub, 0), 0);
    cr_assert_not(zmq_msg_more(&b), "two frames only");
    snprintf(name, namelen, "%.*s", (int)zmq_msg_size(&a), (const char *)zmq_msg_data(&a));
    *json = sp_xstrndup(zmq_msg_data(&b), zmq_msg_size(&b));
    zmq_msg_close(&a);
    zmq_msg_close(&b);
    return true;
}

static json_object *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, k, &v), "no %s in %s", k, json_object_to_json_string(o));
    return v;
}

Test(events, a_subscriber_gets_every_event_in_order, .timeout = 30)
{
    /* Usage: events_start(monitor, "tcp://127.0.0.1:*", &ev, &err) publishes
     * whatever the monitor publishes; events_stop after monitor_destroy. */
    monitor_opts_t o = {.query_id = "q-1", .run_id = "r-1", .name = "counts"};
    monitor_t *m = monitor_new(&o);
    events_t *ev = NULL;
    sp_err_t err;
    cr_assert_eq(events_start(m, "tcp://127.0.0.1:*", &ev, &err), 0, "%s", err.msg);
    const char *endpoint = events_endpoint(ev);
    cr_assert(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0 && atoi(endpoint + 16) > 0, "%s", endpoint);

    void *zctx = zmq_ctx_new();
    void *sub = zmq_socket(zctx, ZMQ_SUB);
    cr_assert_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0), 0);
    cr_assert_eq(zmq_connect(sub, endpoint), 0);

    /* Published right away: the publisher waits for the first subscriber. */
    monitor_query_started(m, 1764064800000);
    progress_t p = {.id = "q-1", .run_id = "r-1", .name = "counts", .timestamp_ms = 1764064801000,
                    .batch_id = 0, .has_data = true, .num_input_rows = 1234,
                    .input_rows_per_second = 10, .processed_rows_per_second = 20,
                    .start_offset = -1, .end_offset = 0, .latest_offset = 0, .backlog_oldest_age_ms = -1,
                    .sink_output_rows = -1};
    monitor_progress(m, &p);
    monitor_executor_t e = {"exec-1", "h", 7, 1, 0, false, 1764064800000, 0, 0, 0};
    monitor_executor_added(m, &e);
    monitor_idle(m, 1764064802000);
    monitor_alert(m, "{\"name\":\"backlog\",\"state\":\"firing\"}");
    monitor_query_terminated(m, NULL, NULL);

    static const char *const want[] = {"QueryStartedEvent", "QueryProgressEvent", "ExecutorAddedEvent",
                                       "QueryIdleEvent", "AlertEvent", "QueryTerminatedEvent"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char name[64];
        char *json = NULL;
        cr_assert(recv_event(sub, name, sizeof name, &json, 5000), "no %s within 5 s", want[i]);
        cr_assert_str_eq(name, want[i]);
        json_object *j = json_tokener_parse(json);
        cr_assert_not_null(j, "%s", json);
        cr_assert_str_eq(json_object_get_string(field(j, "event")), want[i]);
        if (i == 0) {
            cr_assert_str_eq(json_object_get_string(field(j, "id")), "q-1");
            cr_assert_str_eq(json_object_get_string(field(j, "name")), "counts");
        } else if (i == 1) {
            json_object *prog = field(j, "progress");
            cr_assert_eq(json_object_get_int64(field(prog, "numInputRows")), 1234);
            cr_assert_eq(json_object_get_int64(field(prog, "batchId")), 0);
        } else if (i == 2) {
            cr_assert_str_eq(json_object_get_string(field(field(j, "executor"), "id")), "exec-1");
        } else if (i == 5) {
            cr_assert(json_object_is_type(field(j, "exception"), json_type_null));
        }
        json_object_put(j);
        free(json);
    }
    monitor_destroy(&m);
    events_stop(&ev);
    cr_assert_null(ev);
    events_stop(&ev); /* safe twice */
    zmq_close(sub);
    zmq_ctx_term(zctx);
}

Test(events, subscribing_to_a_prefix, .timeout = 30)
{
    monitor_opts_t o = {.query_id = "q-2", .run_id = "r-2"};
    monitor_t *m = monitor_new(&o);
    events_t *ev = NULL;
    sp_err_t err;
    cr_assert_eq(events_start(m, "tcp://127.0.0.1:*", &ev, &err), 0, "%s", err.msg);
    void *zctx = zmq_ctx_new();
    void *sub = zmq_socket(zctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "QueryTerminated", 15);
    zmq_connect(sub, events_endpoint(ev));
    monitor_query_started(m, 1);
    monitor_idle(m, 2);
    monitor_query_terminated(m, "boom", "SPATE_FAILED");
    char name[64];
    char *json = NULL;
    cr_assert(recv_event(sub, name, sizeof name, &json, 5000));
    cr_assert_str_eq(name, "QueryTerminatedEvent");
    cr_assert_not_null(strstr(json, "\"exception\":\"boom\""), "%s", json);
    free(json);
    cr_assert_not(recv_event(sub, name, sizeof name, &json, 200), "only the subscribed kind");
    /* Stopping before the monitor is destroyed is safe too: later events
     * are dropped. */
    events_stop(&ev);
    monitor_idle(m, 3);
    monitor_destroy(&m);
    zmq_close(sub);
    zmq_ctx_term(zctx);
}

Test(events, bad_and_busy_endpoints, .timeout = 30)
{
    monitor_opts_t o = {.query_id = "q-3"};
    monitor_t *m = monitor_new(&o);
    events_t *ev = NULL, *ev2 = NULL;
    sp_err_t err;
    sp_err_clear(&err);
    cr_assert_eq(events_start(m, "not-an-endpoint", &ev, &err), SP_EINVAL);
    cr_assert_null(ev);
    cr_assert_not_null(strstr(err.msg, "bad events endpoint 'not-an-endpoint'"), "%s", err.msg);
    cr_assert_eq(events_start(m, "tcp://127.0.0.1:*", &ev, &err), 0, "%s", err.msg);
    cr_assert_eq(events_start(m, events_endpoint(ev), &ev2, &err), SP_EIO);
    cr_assert_null(ev2);
    char want[300];
    snprintf(want, sizeof want, "cannot publish events on %s: Address already in use", events_endpoint(ev));
    cr_assert_str_eq(err.msg, want);
    monitor_destroy(&m);
    events_stop(&ev);
}

Test(events, no_subscriber_costs_the_grace_once, .timeout = 30)
{
    /* Nobody listens: the first event waits at most the grace, the rest
     * are dropped at once, and the query never waits at all. */
    monitor_opts_t o = {.query_id = "q-4"};
    monitor_t *m = monitor_new(&o);
    events_t *ev = NULL;
    sp_err_t err;
    cr_assert_eq(events_start(m, "tcp://127.0.0.1:*", &ev, &err), 0, "%s", err.msg);
    uint64_t t0 = sp_mono_ms();
    for (int i = 0; i < 1000; i++)
        monitor_idle(m, i);
    cr_assert_lt(sp_mono_ms() - t0, 500, "publishing must not wait for the listener");
    monitor_destroy(&m);
    cr_assert_lt(sp_mono_ms() - t0, EVENTS_JOIN_GRACE_MS + 3000);
    events_stop(&ev);
}
