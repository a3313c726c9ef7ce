/* tests/driver/http_test.c -- the driver's HTTP server against a monitor the
 * test fills itself: every endpoint's status, headers and JSON fields, the
 * error cases (400, 404, 405), address parsing, a busy port, and garbage on
 * raw sockets. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "http_client.h"
#include "monitor.h"
#include "sp_util.h"

/* ---- the fixture: a monitor with known figures ------------------------------- */

#define NPROGRESS_KEPT 3

static monitor_t *mon;
static http_server_t *srv;
static char base[128];

/* What the result callback serves, and whether it fails. */
static const char result_rows[] = "[{\"gt\":null,\"count\":3},{\"gt\":\"bike\",\"count\":42}]";
static int result_calls;

static char *serve_result(void *ctx, sp_err_t *err)
{
    __atomic_add_fetch(&result_calls, 1, __ATOMIC_SEQ_CST);
    if (ctx != NULL) {
        sp_err_set(err, SP_EIO, "the checkpoint is unreadable");
        return NULL;
    }
    return sp_xstrdup(result_rows);
}

/* Batch i reads 100 * (i + 1) rows, 2 files, in 10 * (i + 1) ms. */
static void feed_progress(monitor_t *m, int64_t batch_id)
{
    static const progress_exec_t execs[] = {{"exec-1", 2, 60, 6000, 15}, {"exec-2", 1, 40, 4000, 9}};
    progress_t p = {
        .id = "q-1111", .run_id = "r-2222", .name = "activity_counts",
        .timestamp_ms = 1764064800000 + batch_id * 1000,
        .batch_id = batch_id, .has_data = true,
        .num_input_rows = (uint64_t)(100 * (batch_id + 1)), .num_malformed_rows = (uint64_t)batch_id,
        .input_rows_per_second = 50.5 * (double)(batch_id + 1),
        .processed_rows_per_second = 1000.25 * (double)(batch_id + 1),
        .state_rows_total = (uint64_t)(7 + batch_id), .state_rows_updated = 3, .key_groups = 256,
        .source_description = "FileStreamSource[/data/in]",
        .start_offset = batch_id - 1, .end_offset = batch_id, .latest_offset = batch_id,
        .backlog_files = (uint64_t)(10 - batch_id), .backlog_bytes = (uint64_t)(1000 * (10 - batch_id)),
        .backlog_oldest_age_ms = 1500,
        .sink_description = "MemorySink[activity_counts]", .sink_output_rows = 7,
        .execs = execs, .nexecs = 2,
    };
    p.duration_ms.trigger_execution = (uint64_t)(10 * (batch_id + 1));
    p.duration_ms.add_batch = (uint64_t)(8 * (batch_id + 1));
    monitor_progress(m, &p);
}

static void feed(monitor_t *m)
{
    monitor_set_status(m, "Processing new data", true, true);
    monitor_query_started(m, 1764064800000);
    for (int64_t b = 0; b < 5; b++)
        feed_progress(m, b);
    monitor_executor_t ex[] = {
        {"exec-1", "10.0.0.1", 101, 2, 1, false, 1764064800000, 120, 5, 0},
        {"exec-2", "10.0.0.2", 102, 1, 0, true, 1764064801000, 80, 3, 1},
    };
    monitor_set_executors(m, ex, 2);
    monitor_executor_t gone = {"exec-0", "10.0.0.9", 99, 1, 0, false, 1764064700000, 6000, 2, 0};
    monitor_executor_lost(m, &gone, "no heartbeat for 5000 ms");
    monitor_task_t tasks[] = {
        {0, 1, "/data/in/part-0.json", 0, 5000, "exec-1", "done", 60, 1, 5000, 12},
        {1, 2, "/data/in/part-1.json", 0, 4000, "exec-2", "done", 40, 0, 4000, 9},
    };
    monitor_batch_t b3 = {3, 1764064803000, "committed", 2, 9000, 100, 1, 10, 3, 40, tasks, 2};
    monitor_batch(m, &b3);
    monitor_batch_t b4 = {4, 1764064804000, "running", 1, 100, 0, 0, 0, 0, 0, NULL, 0};
    monitor_batch(m, &b4);
    monitor_set_alerts(m, "[{\"name\":\"backlog\",\"state\":\"firing\",\"value\":6}]", 1);
    monitor_counters_t c = {.task_failures = 2, .batches = 5, .input_rows = 1500, .malformed_rows = 10};
    monitor_set_counters(m, &c);
    monitor_set_backlog(m, 6, 6000, 1500);
}

static void start(void)
{
    monitor_opts_t o = {.query_id = "q-1111", .run_id = "r-2222", .name = "activity_counts",
                        .recent_progress = NPROGRESS_KEPT};
    mon = monitor_new(&o);
    feed(mon);
    sp_err_t err;
    sp_err_clear(&err);
    cr_assert_eq(http_start("127.0.0.1:0", mon, serve_result, NULL, &srv, &err), 0, "%s", err.msg);
    snprintf(base, sizeof base, "http://%s", http_address(srv));
}

static void stop(void)
{
    http_stop(&srv);
    cr_assert_null(srv);
    http_stop(&srv); /* safe twice */
    monitor_destroy(&mon);
}

TestSuite(http, .init = start, .fini = stop, .timeout = 60);

/* ---- the usage example --------------------------------------------------------- */

Test(http, status_usage_example)
{
    /* http_start("127.0.0.1:0", monitor, result_fn, ctx, &srv, &err) picks a
     * free port; http_address tells which. */
    const char *addr = http_address(srv);
    cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0 && atoi(addr + 10) > 0, "address %s", addr);

    hc_reply_t r;
    char *url = sp_xasprintf("%s/api/status", base);
    cr_assert_eq(hc_request("GET", url, 5000, &r, NULL), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.type, "application/json");
    cr_assert_str_eq(r.cache, "no-store");
    json_object *s = json_tokener_parse(r.body);
    cr_assert_str_eq(hc_str(s, "message"), "Processing new data");
    cr_assert(json_object_get_boolean(hc_field(s, "isDataAvailable")));
    cr_assert(json_object_get_boolean(hc_field(s, "isTriggerActive")));
    cr_assert_str_eq(hc_str(s, "id"), "q-1111");
    cr_assert_str_eq(hc_str(s, "runId"), "r-2222");
    cr_assert_str_eq(hc_str(s, "name"), "activity_counts");
    json_object_put(s);
    hc_reply_free(&r);
    free(url);
}

/* ---- the JSON APIs, field by field ---------------------------------------------- */

static void check_report(json_object *p, int64_t batch_id)
{
    cr_assert_eq(hc_int(p, "batchId"), batch_id);
    cr_assert_eq(hc_int(p, "numInputRows"), 100 * (batch_id + 1));
    cr_assert_eq(hc_int(p, "numMalformedRows"), batch_id);
    cr_assert_eq(hc_int(p, "batchDuration"), 10 * (batch_id + 1));
    cr_assert_float_eq(json_object_get_double(hc_field(p, "inputRowsPerSecond")), 50.5 * (double)(batch_id + 1), 1e-9);
    cr_assert_float_eq(json_object_get_double(hc_field(p, "processedRowsPerSecond")),
                       1000.25 * (double)(batch_id + 1), 1e-9);
    cr_assert_eq(hc_int(hc_field(p, "durationMs"), "addBatch"), 8 * (batch_id + 1));
    json_object *op = json_object_array_get_idx(hc_field(p, "stateOperators"), 0);
    cr_assert_eq(hc_int(op, "numRowsTotal"), 7 + batch_id);
    json_object *src = json_object_array_get_idx(hc_field(p, "sources"), 0);
    cr_assert_eq(hc_int(src, "numInputRows"), 100 * (batch_id + 1));
    json_object *metrics = hc_field(src, "metrics");
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)(10 - batch_id));
    cr_assert_str_eq(hc_str(metrics, "backlogFiles"), want);
    snprintf(want, sizeof want, "%lld", (long long)(1000 * (10 - batch_id)));
    cr_assert_str_eq(hc_str(metrics, "backlogBytes"), want);
    json_object *execs = hc_field(p, "executors");
    cr_assert_eq(json_object_array_length(execs), 2);
    cr_assert_str_eq(hc_str(json_object_array_get_idx(execs, 0), "id"), "exec-1");
    cr_assert_eq(hc_int(json_object_array_get_idx(execs, 1), "rows"), 40);
}

Test(http, progress_keeps_the_recent_reports_oldest_first)
{
    json_object *all = hc_get_json(base, "/api/progress");
    cr_assert_eq(json_object_array_length(all), NPROGRESS_KEPT, "%s", json_object_to_json_string(all));
    for (size_t i = 0; i < NPROGRESS_KEPT; i++)
        check_report(json_object_array_get_idx(all, i), 5 - NPROGRESS_KEPT + (int64_t)i);
    json_object_put(all);

    json_object *two = hc_get_json(base, "/api/progress?last=2");
    cr_assert_eq(json_object_array_length(two), 2);
    check_report(json_object_array_get_idx(two, 0), 3);
    check_report(json_object_array_get_idx(two, 1), 4);
    json_object_put(two);

    json_object *zero = hc_get_json(base, "/api/progress?last=0"); /* 0: all kept */
    cr_assert_eq(json_object_array_length(zero), NPROGRESS_KEPT);
    json_object_put(zero);
    json_object *many = hc_get_json(base, "/api/progress?last=50&other=ignored");
    cr_assert_eq(json_object_array_length(many), NPROGRESS_KEPT);
    json_object_put(many);
}

Test(http, executors_live_then_lost)
{
    json_object *a = hc_get_json(base, "/api/executors");
    cr_assert_eq(json_object_array_length(a), 3, "%s", json_object_to_json_string(a));
    json_object *e1 = json_object_array_get_idx(a, 0), *e2 = json_object_array_get_idx(a, 1);
    json_object *e0 = json_object_array_get_idx(a, 2);
    cr_assert_str_eq(hc_str(e1, "id"), "exec-1");
    cr_assert_str_eq(hc_str(e1, "host"), "10.0.0.1");
    cr_assert_eq(hc_int(e1, "pid"), 101);
    cr_assert_eq(hc_int(e1, "slots"), 2);
    cr_assert_eq(hc_int(e1, "runningTasks"), 1);
    cr_assert_eq(hc_int(e1, "tasksDone"), 5);
    cr_assert_str_eq(hc_str(e1, "state"), "alive");
    cr_assert_str_eq(hc_str(e2, "state"), "draining");
    cr_assert_eq(hc_int(e2, "tasksFailed"), 1);
    cr_assert_str_eq(hc_str(e0, "id"), "exec-0");
    cr_assert_str_eq(hc_str(e0, "state"), "lost");
    cr_assert_str_eq(hc_str(e0, "reason"), "no heartbeat for 5000 ms");
    json_object_put(a);
}

Test(http, batches_newest_first_and_one_with_its_tasks)
{
    json_object *a = hc_get_json(base, "/api/batches");
    cr_assert_eq(json_object_array_length(a), 2);
    json_object *b4 = json_object_array_get_idx(a, 0), *b3 = json_object_array_get_idx(a, 1);
    cr_assert_eq(hc_int(b4, "batchId"), 4);
    cr_assert_str_eq(hc_str(b4, "state"), "running");
    cr_assert_eq(hc_int(b3, "batchId"), 3);
    cr_assert_eq(hc_int(b3, "files"), 2);
    cr_assert_eq(hc_int(b3, "numInputRows"), 100);
    cr_assert_eq(hc_int(b3, "durationMs"), 40);
    cr_assert_eq(hc_int(b3, "numTasks"), 2);
    cr_assert_not(json_object_object_get_ex(b3, "tasks", NULL), "the list leaves tasks out");
    json_object_put(a);

    json_object *d = hc_get_json(base, "/api/batches/3");
    cr_assert_eq(hc_int(d, "batchId"), 3);
    json_object *tasks = hc_field(d, "tasks");
    cr_assert_eq(json_object_array_length(tasks), 2);
    json_object *t1 = json_object_array_get_idx(tasks, 1);
    cr_assert_eq(hc_int(t1, "taskId"), 1);
    cr_assert_eq(hc_int(t1, "attempt"), 2);
    cr_assert_str_eq(hc_str(t1, "path"), "/data/in/part-1.json");
    cr_assert_eq(hc_int(t1, "start"), 0);
    cr_assert_eq(hc_int(t1, "end"), 4000);
    cr_assert_str_eq(hc_str(t1, "executor"), "exec-2");
    cr_assert_str_eq(hc_str(t1, "status"), "done");
    cr_assert_eq(hc_int(t1, "rows"), 40);
    cr_assert_eq(hc_int(t1, "durationMs"), 9);
    json_object_put(d);
}

Test(http, alerts_and_result)
{
    json_object *a = hc_get_json(base, "/api/alerts");
    cr_assert_eq(json_object_array_length(a), 1);
    cr_assert_str_eq(hc_str(json_object_array_get_idx(a, 0), "name"), "backlog");
    json_object_put(a);

    json_object *r = hc_get_json(base, "/api/result");
    cr_assert_str_eq(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN), result_rows);
    json_object_put(r);
    cr_assert_geq(__atomic_load_n(&result_calls, __ATOMIC_SEQ_CST), 1);
}

Test(http, metrics_in_prometheus_text_format)
{
    hc_reply_t r;
    char *url = sp_xasprintf("%s/metrics", base);
    cr_assert_eq(hc_request("GET", url, 5000, &r, NULL), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.type, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_str_eq(r.cache, "no-store");
    static const char *const want[] = {
        "# TYPE spate_input_rows_total counter\n",
        "spate_input_rows_total{query=\"activity_counts\",query_id=\"q-1111\"} 1500\n",
        "spate_malformed_rows_total{query=\"activity_counts\",query_id=\"q-1111\"} 10\n",
        "spate_task_failures_total{query=\"activity_counts\",query_id=\"q-1111\"} 2\n",
        "spate_executors_alive{query=\"activity_counts\",query_id=\"q-1111\"} 2\n",
        "spate_backlog_files{query=\"activity_counts\",query_id=\"q-1111\"} 6\n",
        "spate_state_rows{query=\"activity_counts\",query_id=\"q-1111\"} 11\n",
        "spate_batch_duration_seconds{query=\"activity_counts\",query_id=\"q-1111\"} 0.05\n",
        "spate_input_rows_per_second{query=\"activity_counts\",query_id=\"q-1111\"} 252.5\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(r.body, want[i]), "no '%s' in\n%s", want[i], r.body);
    hc_reply_free(&r);
    free(url);
}

Test(http, the_web_ui)
{
    hc_reply_t r;
    char *url = sp_xasprintf("%s/", base);
    cr_assert_eq(hc_request("GET", url, 5000, &r, NULL), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.type, "text/html; charset=utf-8");
    cr_assert_str_eq(r.cache, "no-store");
    cr_assert_not_null(r.csp);
    cr_assert_not_null(strstr(r.csp, "default-src 'none'"), "%s", r.csp);
    cr_assert_not_null(strstr(r.body, "<!doctype html>"));
    cr_assert_not_null(strstr(r.body, "/api/progress"), "the page polls the API");
    /* No external resources: no URL with a scheme in the page. */
    cr_assert_null(strstr(r.body, "http://"));
    cr_assert_null(strstr(r.body, "https://"));
    cr_assert_null(strstr(r.body, "//cdn"));
    size_t len = r.len;
    hc_reply_free(&r);
    free(url);
    url = sp_xasprintf("%s/index.html", base);
    cr_assert_eq(hc_request("GET", url, 5000, &r, NULL), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, len);
    hc_reply_free(&r);
    free(url);
}

/* ---- errors ------------------------------------------------------------------------- */

/* Request path, expect status and a JSON error body mentioning needle. */
static void expect_error(const char *method, const char *path, long status, const char *needle)
{
    hc_reply_t r;
    char *url = sp_xasprintf("%s%s", base, path);
    cr_assert_eq(hc_request(method, url, 5000, &r, NULL), 0, "%s %s", method, path);
    cr_assert_eq(r.status, status, "%s %s: %ld %s", method, path, r.status, r.body);
    cr_assert_str_eq(r.type, "application/json", "%s %s", method, path);
    cr_assert_str_eq(r.cache, "no-store");
    json_object *o = json_tokener_parse(r.body);
    cr_assert_not_null(o, "%s %s: %s", method, path, r.body);
    cr_assert_eq(hc_int(o, "status"), status);
    cr_assert_not_null(strstr(hc_str(o, "error"), needle), "%s %s: %s", method, path, r.body);
    json_object_put(o);
    hc_reply_free(&r);
    free(url);
}

Test(http, unknown_paths_are_404)
{
    expect_error("GET", "/nope", 404, "no such page: /nope");
    expect_error("GET", "/api", 404, "no such page");
    expect_error("GET", "/api/status/", 404, "no such page");
    expect_error("GET", "/api/batches/99", 404, "batch 99 is not among the recent batches");
    expect_error("GET", "/metrics/prometheus", 404, "no such page");
}

Test(http, bad_parameters_are_400)
{
    expect_error("GET", "/api/progress?last=abc", 400, "last must be a whole number");
    expect_error("GET", "/api/progress?last=-1", 400, "got '-1'");
    expect_error("GET", "/api/progress?last=", 400, "last must be");
    expect_error("GET", "/api/progress?last", 400, "last must be");
    expect_error("GET", "/api/progress?last=1e3", 400, "last must be");
    expect_error("GET", "/api/progress?last=%201", 400, "last must be");
    expect_error("GET", "/api/progress?last=99999999999999999999", 400, "last must be");
    expect_error("GET", "/api/batches/x", 400, "a batch id is a whole number");
    expect_error("GET", "/api/batches/", 400, "a batch id is a whole number");
    expect_error("GET", "/api/batches/-1", 400, "a batch id");
}

Test(http, other_methods_are_405)
{
    expect_error("POST", "/api/status", 405, "method POST is not allowed");
    expect_error("PUT", "/api/progress", 405, "method PUT is not allowed");
    expect_error("DELETE", "/", 405, "method DELETE");
    expect_error("OPTIONS", "/metrics", 405, "method OPTIONS");
    hc_reply_t r;
    char *url = sp_xasprintf("%s/api/status", base);
    cr_assert_eq(hc_request("POST", url, 5000, &r, NULL), 0);
    cr_assert_str_eq(r.allow, "GET, HEAD");
    hc_reply_free(&r);
    free(url);
}

Test(http, head_answers_the_headers_only)
{
    hc_reply_t r;
    char *url = sp_xasprintf("%s/api/status", base);
    cr_assert_eq(hc_request("HEAD", url, 5000, &r, NULL), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.type, "application/json");
    cr_assert_eq(r.len, 0);
    hc_reply_free(&r);
    free(url);
}

Test(http, result_without_a_memory_sink_or_failing)
{
    http_server_t *none = NULL, *failing = NULL;
    sp_err_t err;
    cr_assert_eq(http_start("127.0.0.1:0", mon, NULL, NULL, &none, &err), 0, "%s", err.msg);
    cr_assert_eq(http_start("127.0.0.1:0", mon, serve_result, (void *)1, &failing, &err), 0, "%s", err.msg);
    char saved[128];
    snprintf(saved, sizeof saved, "%s", base);
    snprintf(base, sizeof base, "http://%s", http_address(none));
    expect_error("GET", "/api/result", 404, "no memory sink");
    snprintf(base, sizeof base, "http://%s", http_address(failing));
    expect_error("GET", "/api/result", 500, "cannot read the result table: the checkpoint is unreadable");
    snprintf(base, sizeof base, "%s", saved);
    http_stop(&none);
    http_stop(&failing);
}

/* ---- addresses ------------------------------------------------------------------------- */

Test(http, bad_addresses_are_refused)
{
    static const char *const bad[] = {
        "", "localhost:4040", "127.0.0.1", "127.0.0.1:", ":4040", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:40a", "127.0.0.1:4040 ", " 127.0.0.1:4040", "1.2.3.4.5:80", "::1:4040", "[::1]4040",
        "[::1:4040", "[127.0.0.1]:4040", "[]:4040", "http://127.0.0.1:4040", "127.0.0.1:000004040",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        http_server_t *h = NULL;
        sp_err_t err;
        sp_err_clear(&err);
        int rc = http_start(bad[i], mon, NULL, NULL, &h, &err);
        cr_assert_eq(rc, SP_EINVAL, "'%s' gave %d", bad[i], rc);
        cr_assert_null(h);
        cr_assert_not_null(strstr(err.msg, "bad HTTP address"), "'%s': %s", bad[i], err.msg);
    }
}

Test(http, a_busy_port_is_named_in_the_error)
{
    http_server_t *h = NULL;
    sp_err_t err;
    sp_err_clear(&err);
    int rc = http_start(http_address(srv), mon, NULL, NULL, &h, &err);
    cr_assert_eq(rc, SP_EIO);
    cr_assert_null(h);
    char want[160];
    snprintf(want, sizeof want, "cannot listen on %s: Address already in use", http_address(srv));
    cr_assert_str_eq(err.msg, want);
}

Test(http, the_port_is_free_again_after_stop)
{
    http_server_t *h = NULL;
    sp_err_t err;
    cr_assert_eq(http_start("127.0.0.1:0", mon, NULL, NULL, &h, &err), 0, "%s", err.msg);
    char addr[64];
    snprintf(addr, sizeof addr, "%s", http_address(h));
    /* Served connections (TIME_WAIT) must not hold the port up. */
    char *url = sp_xasprintf("http://%s/api/status", addr);
    char *body = hc_get_text(url);
    cr_assert_not_null(body);
    free(body);
    http_stop(&h);
    cr_assert_eq(http_start(addr, mon, NULL, NULL, &h, &err), 0, "%s: %s", addr, err.msg);
    cr_assert_str_eq(http_address(h), addr);
    http_stop(&h);
    free(url);
}

Test(http, ipv6_loopback)
{
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    if (s >= 0)
        close(s);
    if (!have_v6)
        cr_skip_test("no IPv6 loopback here");
    http_server_t *h = NULL;
    sp_err_t err;
    cr_assert_eq(http_start("[::1]:0", mon, NULL, NULL, &h, &err), 0, "%s", err.msg);
    cr_assert(strncmp(http_address(h), "[::1]:", 6) == 0, "%s", http_address(h));
    char *url = sp_xasprintf("http://%s/api/status", http_address(h));
    char *body = hc_get_text(url);
    cr_assert_not_null(body);
    cr_assert_not_null(strstr(body, "q-1111"));
    free(body);
    free(url);
    http_stop(&h);
}

/* ---- garbage and load ---------------------------------------------------------------- */

static int connect_srv(void)
{
    const char *addr = http_address(srv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strchr(addr, ':') + 1))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return s;
}

/* Send data, then read what comes back until close or 3 s; the reply's
 * first line (malloc'd, "" when none). */
static char *raw_exchange(const void *data, size_t len)
{
    int s = connect_srv();
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(s, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may hang up mid-way: fine */
        off += (size_t)n;
    }
    shutdown(s, SHUT_WR);
    sp_buf_t b = SP_BUF_INIT;
    char buf[4096];
    long long deadline = sp_mono_ms() + 3000;
    for (;;) {
        struct pollfd p = {s, POLLIN, 0};
        long long left = deadline - (long long)sp_mono_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        sp_buf_append(&b, buf, (size_t)n);
    }
    close(s);
    char *all = sp_buf_cstr(&b);
    char *eol = strstr(all, "\r\n");
    char *line = eol ? sp_xstrndup(all, (size_t)(eol - all)) : sp_xstrdup(all);
    sp_buf_free(&b);
    return line;
}

/* raw_exchange of a string literal, whole (NUL bytes included, the final one not). */
#define RAW(lit) raw_exchange(lit, sizeof(lit) - 1)

static void still_serving(void)
{
    json_object *s = hc_get_json(base, "/api/status");
    cr_assert_str_eq(hc_str(s, "id"), "q-1111");
    json_object_put(s);
}

Test(http, garbage_on_raw_sockets_does_not_hurt)
{
    char *line;
    line = RAW("\x00\x01\x02\xff\xfe garbage\r\n\r\n");
    free(line);
    line = RAW("GET / HTTP/9.9\r\n\r\n");
    cr_assert(line[0] == '\0' || strncmp(line, "HTTP/1.1 ", 9) == 0, "%s", line);
    free(line);
    line = RAW("GET /api/status HTTP/1.0\r\n\r\n");
    cr_assert(strncmp(line, "HTTP/1.", 7) == 0 && strstr(line, " 200 "), "HTTP/1.0 answered '%s'", line);
    free(line);
    line = RAW("GET /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
    free(line);
    line = RAW("GET /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    free(line);
    line = RAW("GET /%%%%%00%zz HTTP/1.1\r\nHost: x\r\n\r\n");
    free(line);
    line = RAW("GET"); /* and hang up */
    free(line);

    /* A request line far longer than a connection's memory. */
    size_t big = 200000;
    char *huge = sp_xmalloc(big);
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'a', big - 5);
    line = raw_exchange(huge, big);
    cr_assert(line[0] == '\0' || strstr(line, " 414 ") || strstr(line, " 431 ") || strstr(line, " 400 "),
              "a huge request line answered '%s'", line);
    free(line);
    /* A header that never ends. */
    memcpy(huge, "GET / HTTP/1.1\r\nX: ", 19);
    line = raw_exchange(huge, big);
    free(line);
    free(huge);

    /* Random bytes. */
    unsigned seed = 12345;
    for (int i = 0; i < 20; i++) {
        char junk[512];
        for (size_t j = 0; j < sizeof junk; j++)
            junk[j] = (char)(rand_r(&seed) & 0xff);
        if (i % 2)
            memcpy(junk, "GET /api/progress?last=", 23);
        line = raw_exchange(junk, sizeof junk);
        free(line);
    }
    still_serving();
}

Test(http, on_loopback_only_loopback_host_names_are_answered)
{
    /* DNS rebinding: a page from evil.example that resolves to 127.0.0.1
     * sends "Host: evil.example". */
    static const char *const refused[] = {"evil.example", "evil.example:4040", "10.0.0.1:4040", "[::2]:4040",
                                          "localhost.evil.example", "[::1"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char *req = sp_xasprintf("GET /api/result HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", refused[i]);
        char *line = raw_exchange(req, strlen(req));
        cr_assert_not_null(strstr(line, " 403 "), "Host: %s answered '%s'", refused[i], line);
        free(line);
        free(req);
    }
    static const char *const answered[] = {"127.0.0.1", "127.0.0.1:4040", "LocalHost:4040", "app.localhost",
                                           "[::1]:4040", "127.1.2.3"};
    for (size_t i = 0; i < sizeof answered / sizeof *answered; i++) {
        char *req = sp_xasprintf("GET /api/status HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", answered[i]);
        char *line = raw_exchange(req, strlen(req));
        cr_assert_not_null(strstr(line, " 200 "), "Host: %s answered '%s'", answered[i], line);
        free(line);
        free(req);
    }
}

Test(http, on_other_addresses_any_host_name_is_answered)
{
    /* Told to listen beyond loopback, the server is reached by names of
     * the user's choosing: no Host check then. */
    http_server_t *h = NULL;
    sp_err_t err;
    cr_assert_eq(http_start("0.0.0.0:0", mon, NULL, NULL, &h, &err), 0, "%s", err.msg);
    cr_assert(strncmp(http_address(h), "0.0.0.0:", 8) == 0, "%s", http_address(h));
    http_server_t *saved = srv;
    srv = h;
    char *line = RAW("GET /api/status HTTP/1.1\r\nHost: spate.example:4040\r\n\r\n");
    srv = saved;
    cr_assert_not_null(strstr(line, " 200 "), "%s", line);
    free(line);
    http_stop(&h);
}

Test(http, more_connections_than_the_limit)
{
    /* Idle connections past the limit are refused, never queued forever;
     * once they go, the server answers again. */
    enum { N = 80 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = connect_srv();
    for (int i = 0; i < N; i++)
        close(fds[i]);
    long long deadline = sp_mono_ms() + 10000;
    for (;;) {
        char *url = sp_xasprintf("%s/api/status", base);
        char *body = hc_get_text(url);
        free(url);
        if (body) {
            free(body);
            break;
        }
        cr_assert_lt((long long)sp_mono_ms(), deadline, "the server does not answer after the idle connections went");
        usleep(50000);
    }
    still_serving();
}

/* Readers on several threads while the driver side keeps writing. */
static void *hammer(void *arg)
{
    static const char *const paths[] = {"/api/status", "/api/progress?last=2", "/api/executors", "/api/batches",
                                        "/api/batches/3", "/api/alerts", "/api/result", "/metrics", "/"};
    for (int i = 0; i < 60; i++) {
        char *url = sp_xasprintf("%s%s", base, paths[i % 9]);
        hc_reply_t r;
        int rc = hc_request("GET", url, 10000, &r, NULL);
        free(url);
        if (rc != 0)
            return (void *)1;
        /* Batch 3 drops out of the recent batches meanwhile: 404 then. */
        bool ok = r.status == 200 || (r.status == 404 && i % 9 == 4);
        hc_reply_free(&r);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

Test(http, concurrent_readers_while_the_driver_writes)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int64_t b = 5; b < 200; b++) {
        feed_progress(mon, b);
        monitor_set_status(mon, b % 2 ? "Processing new data" : "Waiting for data to arrive", b % 2, true);
        monitor_batch_t batch = {b, 1764064800000 + b, "committed", 1, 10, 10, 0, 1, 1, 1, NULL, 0};
        monitor_batch(mon, &batch);
    }
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        pthread_join(t[i], &rc);
        cr_assert_null(rc, "a reader got no answer");
    }
    json_object *last = hc_get_json(base, "/api/progress?last=1");
    cr_assert_eq(hc_int(json_object_array_get_idx(last, 0), "batchId"), 199);
    json_object_put(last);
}
