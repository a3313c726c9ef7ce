/* tests/e2e/alerts_test.c -- alert rules on a real query (real driver and
 * executor processes on loopback) reaching a real webhook receiver started
 * by the test: a slow-down (the executor frozen with SIGSTOP while files
 * keep arriving) fires each rule exactly once and resolves it exactly once
 * when the executor runs again; a failfast query that dies fires
 * query_failed before the process exits. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "sp_util.h"
#include "webhook_receiver.h"

static e2e_env_t env;
static char *bind_ep, *stage;
static webhook_t *hook;

static void setup(void)
{
    e2e_env_init(&env, "e2e-alerts");
    bind_ep = sp_xasprintf("tcp://127.0.0.1:%d", e2e_free_port());
    stage = sp_xasprintf("%s/stage", env.dir);
    hook = wh_start(200);
}

static void teardown(void)
{
    wh_stop(&hook);
    e2e_env_free(&env);
    free(bind_ep);
    free(stage);
}

TestSuite(alerts, .init = setup, .fini = teardown);

/* One new file of rows rows in the input, put there by rename as a
 * producer should. */
static void put_file(int i, int rows)
{
    char prefix[32], name[64];
    snprintf(prefix, sizeof prefix, "f%02d-", i);
    snprintf(name, sizeof name, "f%02d-00000.json", i);
    e2e_gen(stage, 1, rows, 500 + i, false, prefix);
    char *from = sp_xasprintf("%s/%s", stage, name);
    char *to = sp_xasprintf("%s/%s", env.input, name);
    cr_assert_eq(rename(from, to), 0, "rename %s", from);
    free(from);
    free(to);
}

static long long committed_batch(void)
{
    long long p, c;
    return e2e_batches(env.ckpt, &p, &c) ? c : -2;
}

static bool batch0_committed(void *ctx) { return committed_batch() >= 0; }

/* The receiver's POSTs as "name:state" lines, in arrival order. */
static char *posts(void)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < wh_count(hook); i++) {
        wh_request_t r = wh_get(hook, i);
        json_object *o = json_tokener_parse(r.body), *name = NULL, *state = NULL;
        if (o && json_object_object_get_ex(o, "name", &name) && json_object_object_get_ex(o, "state", &state))
            sp_buf_printf(&b, "%s:%s %s\n", json_object_get_string(name), json_object_get_string(state), r.method);
        else
            sp_buf_printf(&b, "not an alert: %s %s\n", r.method, r.body);
        json_object_put(o);
        wh_request_free(&r);
    }
    return b.data ? sp_buf_cstr(&b) : sp_xstrdup("");
}

/* Request i is the alert "name:state". */
static bool posted_is(size_t i, const char *name_state)
{
    wh_request_t r = wh_get(hook, i);
    json_object *o = json_tokener_parse(r.body), *name = NULL, *state = NULL;
    char buf[256] = "";
    if (o && json_object_object_get_ex(o, "name", &name) && json_object_object_get_ex(o, "state", &state))
        snprintf(buf, sizeof buf, "%s:%s", json_object_get_string(name), json_object_get_string(state));
    json_object_put(o);
    wh_request_free(&r);
    return strcmp(buf, name_state) == 0;
}

typedef struct want {
    const char *line;
} want_t;

static bool posted(void *ctx)
{
    want_t *w = ctx;
    char *p = posts();
    bool ok = strstr(p, w->line) != NULL;
    free(p);
    return ok;
}

static void wait_post(const char *line, int timeout_ms, const char *log)
{
    want_t w = {line};
    if (!ts_poll(posted, &w, timeout_ms)) {
        char *p = posts();
        char *path = sp_xasprintf("%s/%s.err", env.dir, log);
        char *text = ts_read_file(path, NULL);
        cr_assert_fail("the receiver did not get '%s' within %d ms; it got:\n%s\n%s:\n%s", line, timeout_ms, p, path,
                       text ? text : "");
    }
}

Test(alerts, a_slow_down_fires_and_resolves_each_rule_once, .timeout = 180)
{
    char *action = sp_xasprintf("webhook:%s", wh_url(hook));
    const char *args[] = {"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--bind", bind_ep, "--max-files-per-trigger", "1", "--executor-timeout", "20s",
                          "--heartbeat", "200ms", "--sink", "memory:t",
                          "--alert", "backlog: backlog_files > 2",
                          "--alert", "slow: batch_duration > 2s",
                          "--alert-action", action, "--alert-action", "log", NULL};
    pid_t driver = e2e_spawn(env.dir, "driver", NULL, args);
    const char *eargs[] = {"executor", "--driver", bind_ep, "--driver-timeout", "30s", "--id", "e1", NULL};
    pid_t exec = e2e_spawn(env.dir, "e1", NULL, eargs);

    put_file(1, 2000);
    cr_assert(ts_poll(batch0_committed, NULL, 60000), "batch 0 was not committed");
    cr_assert_eq(wh_count(hook), 0, "a healthy batch raises no alert");

    /* The slow-down: the executor freezes for a few seconds while files
     * keep arriving. The driver plans one file per batch: the batch it
     * planned is slow, and the others pile up as backlog. */
    cr_assert_eq(kill(exec, SIGSTOP), 0);
    long long frozen_at = ts_now_ms();
    for (int i = 2; i <= 7; i++)
        put_file(i, 2000);
    while (ts_now_ms() - frozen_at < 4000)
        usleep(50000);
    cr_assert_eq(kill(exec, SIGCONT), 0);

    wait_post("backlog:firing POST", 60000, "driver");
    wait_post("slow:firing POST", 60000, "driver");
    wait_post("backlog:resolved POST", 60000, "driver");
    wait_post("slow:resolved POST", 60000, "driver");
    /* every file counted, then a few more evaluations: nothing more comes */
    long long t0 = ts_now_ms();
    while (committed_batch() < 6 && ts_now_ms() - t0 < 60000)
        usleep(100000);
    cr_assert_geq(committed_batch(), 6, "all 7 files committed");
    usleep(2500 * 1000);

    char *p = posts();
    cr_expect_eq(e2e_count(p, "backlog:firing"), 1, "%s", p);
    cr_expect_eq(e2e_count(p, "backlog:resolved"), 1, "%s", p);
    cr_expect_eq(e2e_count(p, "slow:firing"), 1, "%s", p);
    cr_expect_eq(e2e_count(p, "slow:resolved"), 1, "%s", p);
    cr_expect_eq(wh_count(hook), 4, "%s", p);
    cr_expect(strstr(p, "backlog:firing") < strstr(p, "backlog:resolved"), "%s", p);
    cr_expect(strstr(p, "slow:firing") < strstr(p, "slow:resolved"), "%s", p);
    free(p);

    /* what the receiver got is the alert JSON of alerts.h */
    size_t i = 0;
    while (i < wh_count(hook) && !posted_is(i, "backlog:firing"))
        i++;
    wh_request_t r = wh_get(hook, i);
    cr_expect_str_eq(r.content_type, "application/json");
    json_object *o = json_tokener_parse(r.body), *v;
    cr_assert(o, "%s", r.body);
    cr_expect(json_object_object_get_ex(o, "condition", &v) &&
                  strcmp(json_object_get_string(v), "backlog_files > 2") == 0,
              "%s", r.body);
    cr_expect(json_object_object_get_ex(o, "value", &v) && json_object_get_int64(v) > 2, "%s", r.body);
    cr_expect(json_object_object_get_ex(o, "summary", &v), "%s", r.body);
    cr_expect(json_object_object_get_ex(o, "query", &v) && json_object_object_get_ex(v, "runId", &v), "%s", r.body);
    json_object_put(o);
    wh_request_free(&r);

    /* the log action ran too */
    e2e_wait_log(env.dir, "driver", "alerts: alert backlog firing: backlog_files is", 5000);
    e2e_wait_log(env.dir, "driver", "alerts: alert slow resolved: batch_duration is", 5000);

    ts_kill(exec, SIGTERM);
    ts_kill(driver, SIGTERM);
    free(action);
}

Test(alerts, a_failfast_query_that_dies_fires_query_failed, .timeout = 120)
{
    e2e_gen(env.input, 1, 3000, 44, true, NULL);
    char *action = sp_xasprintf("webhook:%s", wh_url(hook));
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint",
                       env.ckpt, "--schema", ORACLE_ACTIVITY_SCHEMA, "--trigger", "available-now", "--mode",
                       "failfast", "--quiet", "--alert", "failed: query_failed", "--alert", "backlog: backlog_files > 1000",
                       "--alert-action", action, NULL);
    cr_assert_eq(rc, 1, "failfast must fail: %s", err);
    /* spate waits for its alert actions before it exits */
    cr_assert_eq(wh_count(hook), 1, "one POST before the process ended: %s", err);
    wh_request_t r = wh_get(hook, 0);
    json_object *o = json_tokener_parse(r.body), *v;
    cr_assert(o, "%s", r.body);
    cr_expect(json_object_object_get_ex(o, "name", &v) && strcmp(json_object_get_string(v), "failed") == 0, "%s",
              r.body);
    cr_expect(json_object_object_get_ex(o, "state", &v) && strcmp(json_object_get_string(v), "firing") == 0, "%s",
              r.body);
    cr_expect(json_object_object_get_ex(o, "summary", &v) &&
                  strncmp(json_object_get_string(v), "the query failed: ", 18) == 0 &&
                  strstr(json_object_get_string(v), "part-00000.json") != NULL,
              "the summary names the failure: %s", r.body);
    json_object_put(o);
    wh_request_free(&r);
    free(err);
    free(action);
}
