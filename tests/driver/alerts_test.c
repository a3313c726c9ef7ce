/* tests/driver/alerts_test.c -- alert rules (driver/alerts.h): the rule
 * language and its errors, pending/firing/ok judged on figures fed by hand
 * with a fake clock, one firing and one resolving per episode, and each
 * action against something real: a log line, a shell command, a webhook
 * receiver, and Debian's prometheus-alertmanager seen through its API. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts.h"
#include "sp_util.h"
#include "testsupport.h"
#include "webhook_receiver.h"

/* ---- what the publish callback saw ---------------------------------------------- */

#define MAX_SEEN 64

typedef struct seen {
    int n;
    char *json[MAX_SEEN];
} seen_t;

static void on_alert(void *ctx, const char *alert_json)
{
    seen_t *s = ctx;
    cr_assert(s->n < MAX_SEEN);
    s->json[s->n++] = sp_xstrdup(alert_json);
}

static void seen_free(seen_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->json[i]);
    s->n = 0;
}

static json_object *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, k, &v), "no '%s' in %s", k, json_object_to_json_string(o));
    return v;
}

static const char *str_field(json_object *o, const char *k) { return json_object_get_string(field(o, k)); }

/* The state ("firing"/"resolved") of the i-th published alert. */
static const char *seen_state(seen_t *s, int i, char *buf, size_t len)
{
    cr_assert(i < s->n, "only %d alert(s) published", s->n);
    json_object *o = json_tokener_parse(s->json[i]);
    cr_assert(o, "not JSON: %s", s->json[i]);
    snprintf(buf, len, "%s:%s", str_field(o, "name"), str_field(o, "state"));
    json_object_put(o);
    return buf;
}

#define EXPECT_SEEN(s, i, want)                                                                  \
    do {                                                                                         \
        char b_[128];                                                                            \
        cr_expect_str_eq(seen_state((s), (i), b_, sizeof b_), (want), "alert %d: %s", (i),       \
                         (s)->json[(i)]);                                                        \
    } while (0)

static const alerts_query_t query = {"q-id", "run-1", "activity_counts", NULL};

static alerts_t *with_rules(seen_t *s, const char *const *rules)
{
    alerts_t *a = alerts_new(&query, on_alert, s);
    sp_err_t err;
    for (; *rules; rules++)
        cr_assert_eq(alerts_add_rule(a, *rules, &err), 0, "%s: %s", *rules, err.msg);
    return a;
}

/* Figures of a healthy query; tests change what they judge. */
static alerts_figures_t figs(int64_t now_ms, bool after_batch)
{
    alerts_figures_t f;
    memset(&f, 0, sizeof f);
    f.now_ms = now_ms;
    f.after_batch = after_batch;
    f.input_rate = 100;
    f.processing_rate = 1000;
    f.batch_duration_ms = 50;
    f.batch_rows = 1000;
    f.executors_alive = 2;
    f.backlog_age_ms = -1;
    return f;
}

/* ---- the usage example ------------------------------------------------------------- */

Test(alerts, usage_example)
{
    seen_t s = {0};
    alerts_t *a = alerts_new(&query, on_alert, &s);
    sp_err_t err;
    cr_assert_eq(alerts_add_rule(a, "backlog: backlog_files > 2", &err), 0, "%s", err.msg);
    cr_assert_eq(alerts_add_action(a, "log", &err), 0, "%s", err.msg);
    cr_assert_eq(alerts_start(a, &err), 0, "%s", err.msg);

    alerts_figures_t f = figs(1000, false);
    f.backlog_files = 5;
    alerts_evaluate(a, &f);           /* fires */
    f.now_ms = 2000;
    alerts_evaluate(a, &f);           /* still the same episode */
    f.now_ms = 3000;
    f.backlog_files = 0;
    alerts_evaluate(a, &f);           /* resolves */

    cr_assert_eq(s.n, 2);
    json_object *o = json_tokener_parse(s.json[0]);
    cr_assert_str_eq(str_field(o, "name"), "backlog");
    cr_assert_str_eq(str_field(o, "state"), "firing");
    cr_assert_str_eq(str_field(o, "condition"), "backlog_files > 2");
    cr_assert_eq(json_object_get_int64(field(o, "value")), 5);
    cr_assert_str_eq(str_field(o, "since"), "1970-01-01T00:00:01.000Z");
    cr_assert_str_eq(str_field(o, "summary"), "backlog_files is 5, above 2");
    json_object *q = field(o, "query");
    cr_assert_str_eq(str_field(q, "id"), "q-id");
    cr_assert_str_eq(str_field(q, "runId"), "run-1");
    cr_assert_str_eq(str_field(q, "name"), "activity_counts");
    json_object_put(o);
    o = json_tokener_parse(s.json[1]);
    cr_assert_str_eq(str_field(o, "state"), "resolved");
    cr_assert_str_eq(str_field(o, "since"), "1970-01-01T00:00:03.000Z");
    cr_assert_str_eq(str_field(o, "summary"), "backlog_files is 0, no longer above 2");
    json_object_put(o);
    alerts_destroy(&a);
    cr_assert_null(a);
    alerts_destroy(&a); /* safe twice */
    seen_free(&s);
}

/* ---- the rule language ------------------------------------------------------------- */

Test(alerts, parser_accepts_the_documented_rules)
{
    static const char *const ok[] = {
        "behind: processing_rate < input_rate for 3 batches",
        "backlog: backlog_files > 100",
        "stale: backlog_age > 5m for 30s",
        "slow: batch_duration > 10s",
        "bad_input: malformed_rate > 1%",
        "failed: query_failed",
        "lost: executor_lost",
        "lost-long: executor_lost for 1m",
        "  spaced.name :   backlog_bytes >= 1.5G   for 1 batch  ",
        "few: executors_alive <= 1 for 500ms",
        "eq: state_rows = 0",
        "eq2: state_rows == 0",
        "ne: malformed_rows != 0",
        "ne2: malformed_rows <> 0",
        "sizes: backlog_bytes > 64KB",
        "sizes2: backlog_bytes > 64KiB",
        "frac: malformed_rate >= 0.5",
        "CASE: Backlog_Files > 1 FOR 2 Batches",
        "hours: backlog_age > 2h",
        "ages: backlog_age > batch_duration",
        NULL,
    };
    alerts_t *a = alerts_new(&query, NULL, NULL);
    sp_err_t err;
    for (const char *const *r = ok; *r; r++)
        cr_expect_eq(alerts_add_rule(a, *r, &err), 0, "%s: %s", *r, err.msg);
    char *t = alerts_table_json(a);
    json_object *arr = json_tokener_parse(t);
    cr_assert_eq(json_object_array_length(arr), 20);
    json_object *o = json_object_array_get_idx(arr, 8);
    cr_expect_str_eq(str_field(o, "name"), "spaced.name");
    cr_expect_str_eq(str_field(o, "condition"), "backlog_bytes >= 1.5G   for 1 batch");
    cr_expect_str_eq(str_field(o, "state"), "ok");
    cr_expect(json_object_is_type(field(o, "since"), json_type_null));
    cr_expect(json_object_is_type(field(o, "value"), json_type_null));
    cr_expect_eq(json_object_get_int64(field(o, "fired")), 0);
    json_object_put(arr);
    free(t);
    alerts_destroy(&a);
}

Test(alerts, parser_errors_name_the_column)
{
    static const struct {
        const char *rule, *msg;
    } bad[] = {
        {"x: backlog_files >> 3",
         "alert 'x: backlog_files >> 3': at column 19: expected a number or a metric, found '>'"},
        {"x: backlog_file > 3", "at column 4: unknown metric 'backlog_file' (did you mean 'backlog_files'?)"},
        {"x: zzz > 3", "at column 4: unknown metric 'zzz' (use input_rate,"},
        {"x backlog_files > 3", "at column 3: expected ':' after the rule's name 'x'"},
        {": backlog_files > 3", "at column 1: expected the rule's name (NAME: CONDITION), found ':'"},
        {"x: ", "at column 4: expected a condition (METRIC OP VALUE, query_failed or executor_lost), found the end"},
        {"x: input_rate", "at column 14: expected an operator (<, <=, >, >=, =, !=) after input_rate"},
        {"x: input_rate ~ 3", "at column 15: expected an operator"},
        {"x: batch_duration > 3M", "at column 22: 'M' is a size unit, but batch_duration is a duration"},
        {"x: backlog_bytes > 3ms", "at column 21: 'ms' is a duration unit, but backlog_bytes is a size"},
        {"x: backlog_files > 3%", "at column 21: '%' is a percentage, but backlog_files is a count"},
        {"x: backlog_bytes > 3q", "at column 21: unknown unit 'q'"},
        {"x: processing_rate < backlog_files",
         "at column 22: processing_rate is a rate in rows/s and backlog_files is a count: they cannot be compared"},
        {"x: query_failed for 3s", "at column 17: query_failed fires when the query fails and takes no 'for'"},
        {"x: backlog_files > 1 for 3", "at column 27: expected 'batches' or a duration unit (ms, s, m, h) after 'for 3'"},
        {"x: backlog_files > 1 for", "at column 25: expected 'N batches' or a duration such as 30s after 'for'"},
        {"x: backlog_files > 1 for 0 batches", "at column 26: 'for 0 batches' needs a whole number of batches"},
        {"x: backlog_files > 1 for 1.5 batches", "at column 26: 'for 1.5 batches' needs a whole number"},
        {"x: backlog_files > 1 for 3 K", "expected 'batches'"},
        {"x: backlog_files > 1 for 3G", "at column 27: unknown unit 'G' after 'for'"},
        {"x: backlog_files > 1 extra", "at column 22: unexpected 'extra' after the condition"},
        {"x: executor_lost > 1", "at column 18: unexpected '>' after the condition"},
        {NULL, NULL},
    };
    alerts_t *a = alerts_new(&query, NULL, NULL);
    for (int i = 0; bad[i].rule; i++) {
        sp_err_t err;
        sp_err_clear(&err);
        cr_expect_eq(alerts_add_rule(a, bad[i].rule, &err), SP_EINVAL, "%s", bad[i].rule);
        cr_expect(strstr(err.msg, bad[i].msg) != NULL, "'%s':\n  got  %s\n  want %s", bad[i].rule, err.msg,
                  bad[i].msg);
    }
    char *t = alerts_table_json(a);
    cr_expect_str_eq(t, "[]", "a bad rule is not added");
    free(t);
    alerts_destroy(&a);
}

Test(alerts, parser_refuses_a_second_rule_of_the_same_name)
{
    alerts_t *a = alerts_new(&query, NULL, NULL);
    sp_err_t err;
    cr_assert_eq(alerts_add_rule(a, "x: backlog_files > 1", &err), 0);
    cr_assert_eq(alerts_add_rule(a, "x: backlog_bytes > 1", &err), SP_EINVAL);
    cr_expect_str_eq(err.msg, "alert 'x: backlog_bytes > 1': at column 1: a rule named 'x' exists already");
    alerts_destroy(&a);
}

Test(alerts, rules_file_with_comments_and_errors_naming_file_and_line)
{
    char *dir = ts_tmpdir("alerts-file");
    char *path = sp_xasprintf("%s/rules", dir);
    const char good[] = "# lag alerting\n"
                        "\n"
                        "behind: processing_rate < input_rate for 3 batches   # K batches\n"
                        "   backlog: backlog_files > 100\r\n"
                        "failed: query_failed\n";
    cr_assert_eq(ts_write_file(path, good, sizeof good - 1), 0);
    alerts_t *a = alerts_new(&query, NULL, NULL);
    sp_err_t err;
    cr_assert_eq(alerts_load_file(a, path, &err), 0, "%s", err.msg);
    char *t = alerts_table_json(a);
    json_object *arr = json_tokener_parse(t);
    cr_assert_eq(json_object_array_length(arr), 3, "%s", t);
    cr_expect_str_eq(str_field(json_object_array_get_idx(arr, 0), "condition"), "processing_rate < input_rate for 3 batches");
    cr_expect_str_eq(str_field(json_object_array_get_idx(arr, 1), "name"), "backlog");
    json_object_put(arr);
    free(t);
    alerts_destroy(&a);

    const char bad[] = "ok: backlog_files > 1\n# c\nbad: backlog_files >> 1\n";
    cr_assert_eq(ts_write_file(path, bad, sizeof bad - 1), 0);
    a = alerts_new(&query, NULL, NULL);
    cr_assert_eq(alerts_load_file(a, path, &err), SP_EINVAL);
    char *want = sp_xasprintf("%s:3: at column 21: expected a number or a metric, found '>'", path);
    cr_expect_str_eq(err.msg, want);
    free(want);
    alerts_destroy(&a);

    a = alerts_new(&query, NULL, NULL);
    char *missing = sp_xasprintf("%s/nope", dir);
    cr_assert_eq(alerts_load_file(a, missing, &err), SP_EIO);
    cr_expect(strstr(err.msg, "No such file") != NULL, "%s", err.msg);
    alerts_destroy(&a);
    free(missing);
    free(path);
    ts_rmtree(dir);
    free(dir);
}

Test(alerts, actions_are_checked)
{
    alerts_t *a = alerts_new(&query, NULL, NULL);
    sp_err_t err;
    cr_expect_eq(alerts_add_action(a, "log", &err), 0);
    cr_expect_eq(alerts_add_action(a, "command:cat > /dev/null", &err), 0);
    cr_expect_eq(alerts_add_action(a, "webhook:http://127.0.0.1:9/x", &err), 0);
    cr_expect_eq(alerts_add_action(a, "alertmanager:http://127.0.0.1:9093/", &err), 0);
    cr_expect_eq(alerts_add_action(a, "mail:me", &err), SP_EINVAL);
    cr_expect_str_eq(err.msg, "alert action 'mail:me': unknown kind (use log, command:CMD, webhook:URL or alertmanager:URL)");
    cr_expect_eq(alerts_add_action(a, "webhook:ftp://x", &err), SP_EINVAL);
    cr_expect_str_eq(err.msg, "alert action 'webhook:ftp://x': expected an http:// or https:// URL");
    cr_expect_eq(alerts_add_action(a, "alertmanager:http://[::1", &err), SP_EINVAL);
    cr_expect(strstr(err.msg, "not a valid URL") != NULL, "%s", err.msg);
    cr_expect_eq(alerts_add_action(a, "command:  ", &err), SP_EINVAL);
    alerts_destroy(&a);
}

/* ---- evaluation and episodes ------------------------------------------------------- */

Test(alerts, for_n_batches_counts_consecutive_batches)
{
    static const char *const rules[] = {"behind: processing_rate < input_rate for 3 batches", NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(0, true);
    f.input_rate = 500;
    f.processing_rate = 400;

    for (int i = 1; i <= 2; i++) {
        f.now_ms = i * 1000;
        alerts_evaluate(a, &f);
    }
    f.after_batch = false; /* between batches: counts nothing, breaks nothing */
    for (int i = 0; i < 5; i++) {
        f.now_ms += 100;
        alerts_evaluate(a, &f);
    }
    cr_assert_eq(s.n, 0, "2 batches of 3: not yet");
    char *t = alerts_table_json(a);
    cr_expect(strstr(t, "\"state\":\"pending\"") != NULL, "%s", t);
    free(t);

    f.after_batch = true;
    f.processing_rate = 600; /* a good batch breaks the streak */
    alerts_evaluate(a, &f);
    f.processing_rate = 400;
    for (int i = 0; i < 2; i++)
        alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 0, "the streak restarted");
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1, "3 batches in a row");
    EXPECT_SEEN(&s, 0, "behind:firing");
    for (int i = 0; i < 10; i++)
        alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1, "once per episode, not once per batch");
    f.processing_rate = 900;
    alerts_evaluate(a, &f);
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 2);
    EXPECT_SEEN(&s, 1, "behind:resolved");

    json_object *o = json_tokener_parse(s.json[0]);
    cr_expect_str_eq(str_field(o, "summary"),
                     "processing_rate is 400.0 rows/s, below input_rate (500.0 rows/s), for 3 batches");
    json_object_put(o);

    /* a second episode fires again, once */
    f.processing_rate = 100;
    for (int i = 0; i < 6; i++)
        alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 3);
    EXPECT_SEEN(&s, 2, "behind:firing");
    t = alerts_table_json(a);
    json_object *arr = json_tokener_parse(t);
    json_object *r = json_object_array_get_idx(arr, 0);
    cr_expect_str_eq(str_field(r, "state"), "firing");
    cr_expect_eq(json_object_get_int64(field(r, "fired")), 2);
    cr_expect_eq(json_object_get_int64(field(r, "resolved")), 1);
    cr_expect_eq(json_object_get_int64(field(r, "value")), 100);
    json_object_put(arr);
    free(t);
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, for_duration_needs_the_condition_to_hold_that_long)
{
    static const char *const rules[] = {"stale: backlog_age > 5m for 30s", NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(100000, false);
    f.backlog_files = 1;
    f.backlog_age_ms = 5 * 60000 + 1;
    alerts_evaluate(a, &f);
    f.now_ms = 129999;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 0, "held for 29.999 s");
    f.backlog_age_ms = 5 * 60000; /* not above: the hold restarts */
    f.now_ms = 130000;
    alerts_evaluate(a, &f);
    f.backlog_age_ms = 6 * 60000;
    f.now_ms = 131000;
    alerts_evaluate(a, &f);
    f.now_ms = 160999;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 0);
    f.now_ms = 161000;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1, "held 30 s by now_ms");
    EXPECT_SEEN(&s, 0, "stale:firing");
    json_object *o = json_tokener_parse(s.json[0]);
    cr_expect_str_eq(str_field(o, "since"), "1970-01-01T00:02:41.000Z");
    cr_expect_eq(json_object_get_int64(field(o, "value")), 360000);
    cr_expect_str_eq(str_field(o, "summary"), "backlog_age is 6m, above 5m, for 30s");
    json_object_put(o);
    f.now_ms = 500000;
    alerts_evaluate(a, &f);
    f.backlog_files = 0;
    f.backlog_age_ms = 0;
    f.now_ms = 501000;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 2);
    EXPECT_SEEN(&s, 1, "stale:resolved");
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, batch_figures_are_judged_after_batches_only)
{
    static const char *const rules[] = {"slow: batch_duration > 300ms", "slow_long: batch_duration > 300ms for 2s",
                                        NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(1000, true);
    f.batch_duration_ms = 301;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1);
    EXPECT_SEEN(&s, 0, "slow:firing");
    /* Between batches the driver has no new batch figures: nothing resolves,
     * and the "for 2s" runs on from the slow batch. */
    f.after_batch = false;
    f.batch_duration_ms = 0;
    f.now_ms = 2999;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1);
    f.now_ms = 3000;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 2);
    EXPECT_SEEN(&s, 1, "slow_long:firing");
    f.after_batch = true;
    f.batch_duration_ms = 300;
    f.now_ms = 4000;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 4);
    EXPECT_SEEN(&s, 2, "slow:resolved");
    EXPECT_SEEN(&s, 3, "slow_long:resolved");
    json_object *o = json_tokener_parse(s.json[2]);
    cr_expect_str_eq(str_field(o, "summary"), "batch_duration is 300ms, no longer above 300ms");
    json_object_put(o);
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, units_and_rates)
{
    static const char *const rules[] = {
        "big: backlog_bytes > 1.5M", "bad: malformed_rate > 1%", "bad2: malformed_rate >= 0.5",
        "hour: backlog_age >= 1h", "few: executors_alive < 2", "nostate: state_rows = 0", NULL,
    };
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(1000, true);
    f.state_rows = 7;
    f.backlog_bytes = 1572864; /* exactly 1.5M: not above */
    f.batch_rows = 99;
    f.batch_malformed = 1;     /* exactly 1%: not above */
    f.backlog_age_ms = 3599999;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 0, "%s", s.n ? s.json[0] : "");
    f.backlog_bytes++;
    f.batch_rows = 98;
    f.batch_malformed = 2;
    f.backlog_age_ms++;
    f.executors_alive = 1;
    f.state_rows = 0;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 5);
    EXPECT_SEEN(&s, 0, "big:firing");
    EXPECT_SEEN(&s, 1, "bad:firing");
    EXPECT_SEEN(&s, 2, "hour:firing");
    EXPECT_SEEN(&s, 3, "few:firing");
    EXPECT_SEEN(&s, 4, "nostate:firing");
    json_object *o = json_tokener_parse(s.json[1]);
    cr_expect_str_eq(str_field(o, "summary"), "malformed_rate is 2%, above 1%");
    cr_expect_eq(json_object_get_double(field(o, "value")), 0.02);
    json_object_put(o);
    o = json_tokener_parse(s.json[0]);
    cr_expect_str_eq(str_field(o, "summary"), "backlog_bytes is 1.5M, above 1.5M");
    json_object_put(o);
    f.batch_rows = 1;
    f.batch_malformed = 1;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 6);
    EXPECT_SEEN(&s, 5, "bad2:firing");
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, an_unknown_rate_decides_nothing)
{
    static const char *const rules[] = {"behind: processing_rate < input_rate", NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(1000, true);
    f.processing_rate = 1;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1);
    f.input_rate = NAN;
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 1, "NaN does not resolve it");
    char *t = alerts_table_json(a);
    json_object *parsed = json_tokener_parse(t);
    cr_expect(parsed != NULL, "valid JSON: %s", t);
    json_object_put(parsed);
    free(t);
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, executor_lost_until_another_takes_its_place)
{
    static const char *const rules[] = {"lost: executor_lost", "lost_long: executor_lost for 10s", NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_executor_added(a, 500); /* registrations at start are no loss */
    alerts_executor_added(a, 600);
    cr_assert_eq(s.n, 0);
    alerts_executor_lost(a, "host-1-abc", 1000);
    cr_assert_eq(s.n, 1, "fires at the loss");
    EXPECT_SEEN(&s, 0, "lost:firing");
    json_object *o = json_tokener_parse(s.json[0]);
    cr_expect_str_eq(str_field(o, "summary"), "executor host-1-abc was lost and no executor has taken its place");
    json_object_put(o);
    alerts_executor_lost(a, "host-2-def", 2000);
    cr_assert_eq(s.n, 1, "a second loss is the same episode");
    alerts_executor_added(a, 3000);
    cr_assert_eq(s.n, 1, "one of two lost is replaced");
    alerts_figures_t f = figs(11000, false);
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 2);
    EXPECT_SEEN(&s, 1, "lost_long:firing");
    alerts_executor_added(a, 12000);
    cr_assert_eq(s.n, 4);
    EXPECT_SEEN(&s, 2, "lost:resolved");
    EXPECT_SEEN(&s, 3, "lost_long:resolved");
    alerts_executor_added(a, 13000);
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 4);
    alerts_destroy(&a);
    seen_free(&s);
}

Test(alerts, query_failed_fires_with_the_message)
{
    static const char *const rules[] = {"failed: query_failed", "backlog: backlog_files > 1", NULL};
    seen_t s = {0};
    alerts_t *a = with_rules(&s, rules);
    alerts_figures_t f = figs(1000, true);
    alerts_evaluate(a, &f);
    cr_assert_eq(s.n, 0);
    alerts_query_failed(a, "failfast: malformed line 3 of in/a.json", 2000);
    cr_assert_eq(s.n, 1);
    EXPECT_SEEN(&s, 0, "failed:firing");
    json_object *o = json_tokener_parse(s.json[0]);
    cr_expect_str_eq(str_field(o, "summary"), "the query failed: failfast: malformed line 3 of in/a.json");
    cr_expect_eq(json_object_get_int64(field(o, "value")), 1);
    json_object_put(o);
    alerts_query_failed(a, "again", 3000);
    cr_assert_eq(s.n, 1);
    alerts_destroy(&a);
    seen_free(&s);
}

/* The callback may read the table (a driver refreshing /api/alerts). */
static void on_alert_reads_table(void *ctx, const char *alert_json)
{
    alerts_t **a = ctx;
    char *t = alerts_table_json(*a);
    cr_assert(strstr(t, "\"state\":\"firing\"") != NULL, "%s", t);
    free(t);
}

Test(alerts, publish_may_call_back_in)
{
    alerts_t *a = NULL;
    a = alerts_new(&query, on_alert_reads_table, &a);
    sp_err_t err;
    cr_assert_eq(alerts_add_rule(a, "b: backlog_files > 0", &err), 0);
    alerts_figures_t f = figs(1000, false);
    f.backlog_files = 1;
    alerts_evaluate(a, &f);
    alerts_destroy(&a);
}

/* ---- actions ------------------------------------------------------------------------ */

/* Send this process's stderr to a file (criterion runs each test in a
 * process of its own); returns the file's path. */
static char *capture_stderr(const char *dir)
{
    char *path = sp_xasprintf("%s/stderr.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    cr_assert(fd >= 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    return path;
}

/* One episode of "NAME: backlog_files > 0": fires at 1000, resolves at 2000. */
static void one_episode(alerts_t *a)
{
    alerts_figures_t f = figs(1000, false);
    f.backlog_files = 3;
    alerts_evaluate(a, &f);
    f.now_ms = 2000;
    f.backlog_files = 0;
    alerts_evaluate(a, &f);
}

static alerts_t *started(const char *rule, const char *const *actions)
{
    alerts_t *a = alerts_new(&query, NULL, NULL);
    sp_err_t err;
    cr_assert_eq(alerts_add_rule(a, rule, &err), 0, "%s", err.msg);
    for (; actions && *actions; actions++)
        cr_assert_eq(alerts_add_action(a, *actions, &err), 0, "%s: %s", *actions, err.msg);
    cr_assert_eq(alerts_start(a, &err), 0, "%s", err.msg);
    return a;
}

Test(alerts_actions, log_is_the_default)
{
    char *dir = ts_tmpdir("alerts-log");
    char *log = capture_stderr(dir);
    alerts_t *a = started("backlog: backlog_files > 0", NULL);
    one_episode(a);
    alerts_destroy(&a); /* waits for the actions */
    char *text = ts_read_file(log, NULL);
    cr_assert(text);
    cr_expect(strstr(text, "WARN  alerts: alert backlog firing: backlog_files is 3, above 0\n") != NULL, "%s", text);
    cr_expect(strstr(text, "INFO  alerts: alert backlog resolved: backlog_files is 0, no longer above 0\n") != NULL,
              "%s", text);
    cr_expect(strstr(text, "firing") < strstr(text, "resolved"), "in order");
    free(text);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

Test(alerts_actions, command_gets_the_alert_as_json_on_stdin)
{
    char *dir = ts_tmpdir("alerts-cmd");
    char *log = capture_stderr(dir);
    char *out = sp_xasprintf("%s/alerts.jsonl", dir);
    char *cmd = sp_xasprintf("command:cat >> '%s'", out);
    char *fail = sp_xasprintf("command:cat > /dev/null; echo from-the-command; exit 3");
    const char *actions[] = {cmd, fail, NULL};
    alerts_t *a = started("backlog: backlog_files > 0", actions);
    one_episode(a);
    alerts_destroy(&a);

    char *text = ts_read_file(out, NULL);
    cr_assert(text, "the command wrote nothing");
    char *nl = strchr(text, '\n');
    cr_assert(nl, "%s", text);
    *nl = '\0';
    json_object *o = json_tokener_parse(text);
    cr_assert(o, "line 1 is not JSON: %s", text);
    cr_expect_str_eq(str_field(o, "name"), "backlog");
    cr_expect_str_eq(str_field(o, "state"), "firing");
    cr_expect_str_eq(str_field(field(o, "query"), "name"), "activity_counts");
    json_object_put(o);
    o = json_tokener_parse(nl + 1);
    cr_assert(o, "line 2 is not JSON: %s", nl + 1);
    cr_expect_str_eq(str_field(o, "state"), "resolved");
    json_object_put(o);
    free(text);

    text = ts_read_file(log, NULL);
    cr_expect(strstr(text, "alert backlog: command 'cat > /dev/null; echo from-the-command; exit 3' exited with "
                           "status 3") != NULL,
              "%s", text);
    cr_expect(strstr(text, "from-the-command") != NULL, "its output goes to stderr: %s", text);
    free(text);
    free(cmd);
    free(fail);
    free(out);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

Test(alerts_actions, command_is_killed_after_10s, .timeout = 60)
{
    char *dir = ts_tmpdir("alerts-cmd-kill");
    char *log = capture_stderr(dir);
    const char *actions[] = {"command:sleep 60 & sleep 60", NULL};
    alerts_t *a = started("backlog: backlog_files > 0", actions);
    alerts_figures_t f = figs(1000, false);
    f.backlog_files = 3;
    long long t0 = ts_now_ms();
    alerts_evaluate(a, &f);
    cr_assert_lt(ts_now_ms() - t0, 100, "evaluate never waits for an action");
    alerts_destroy(&a); /* waits a few seconds, then the command is killed */
    long long took = ts_now_ms() - t0;
    cr_expect_lt(took, 12000, "took %lld ms", took);
    char *text = ts_read_file(log, NULL);
    cr_expect(strstr(text, "1 alert action(s) still waiting after 5 s are not run") != NULL, "%s", text);
    cr_expect(strstr(text, "was stopped: alerts are stopping") != NULL, "%s", text);
    free(text);

    /* and when nothing stops it earlier, after 10 s */
    a = started("backlog: backlog_files > 0", actions);
    t0 = ts_now_ms();
    alerts_evaluate(a, &f);
    for (;;) {
        text = ts_read_file(log, NULL);
        bool killed = strstr(text, "took longer than 10 s and was killed") != NULL;
        free(text);
        if (killed || ts_now_ms() - t0 > 15000)
            break;
        usleep(50000);
    }
    took = ts_now_ms() - t0;
    cr_expect(took >= 9900 && took < 12000, "killed after %lld ms", took);
    alerts_destroy(&a);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

static void expect_alert_post(webhook_t *w, size_t i, const char *state)
{
    wh_request_t r = wh_get(w, i);
    cr_expect_str_eq(r.method, "POST");
    cr_expect_str_eq(r.path, "/hook");
    cr_expect(r.content_type && strcmp(r.content_type, "application/json") == 0, "%s", r.content_type);
    json_object *o = json_tokener_parse(r.body);
    cr_assert(o, "not JSON: %s", r.body);
    cr_expect_str_eq(str_field(o, "name"), "backlog");
    cr_expect_str_eq(str_field(o, "state"), state);
    cr_expect_str_eq(str_field(o, "condition"), "backlog_files > 0");
    field(o, "value");
    field(o, "since");
    field(o, "summary");
    cr_expect_str_eq(str_field(field(o, "query"), "runId"), "run-1");
    json_object_put(o);
    wh_request_free(&r);
}

Test(alerts_actions, webhook_posts_json)
{
    webhook_t *w = wh_start(200);
    char *spec = sp_xasprintf("webhook:%s", wh_url(w));
    const char *actions[] = {spec, NULL};
    alerts_t *a = started("backlog: backlog_files > 0", actions);
    one_episode(a);
    cr_assert(wh_wait(w, 2, 10000), "the receiver got %zu request(s)", wh_count(w));
    alerts_destroy(&a);
    cr_expect_eq(wh_count(w), 2, "one firing and one resolving");
    expect_alert_post(w, 0, "firing");
    expect_alert_post(w, 1, "resolved");
    wh_stop(&w);
    free(spec);
}

Test(alerts_actions, webhook_failures_are_logged_not_retried)
{
    char *dir = ts_tmpdir("alerts-hook-fail");
    char *log = capture_stderr(dir);
    webhook_t *w = wh_start(500);
    /* a port where nothing listens: bind one, learn it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char *hook500 = sp_xasprintf("webhook:%s", wh_url(w));
    char *closed = sp_xasprintf("webhook:http://127.0.0.1:%u/hook", (unsigned)ntohs(sa.sin_port));
    const char *actions[] = {hook500, closed, NULL};
    alerts_t *a = started("backlog: backlog_files > 0", actions);
    long long t0 = ts_now_ms();
    one_episode(a);
    alerts_destroy(&a);
    cr_expect_lt(ts_now_ms() - t0, 5000);
    cr_expect_eq(wh_count(w), 2, "each alert once, no retry");
    char *text = ts_read_file(log, NULL);
    cr_expect(strstr(text, "alert backlog: webhook http://127.0.0.1:") != NULL, "%s", text);
    cr_expect(strstr(text, "/hook answered HTTP 500: {}") != NULL, "%s", text);
    cr_expect(strstr(text, "failed: Failed to connect") != NULL || strstr(text, "failed: Couldn't connect") != NULL,
              "%s", text);
    free(text);
    wh_stop(&w);
    free(hook500);
    free(closed);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

Test(alerts_actions, a_full_queue_drops_with_a_log_line_and_never_blocks, .timeout = 60)
{
    char *dir = ts_tmpdir("alerts-queue");
    char *log = capture_stderr(dir);
    const char *actions[] = {"command:sleep 30", NULL};
    alerts_t *a = started("flap: backlog_files > 0", actions);
    alerts_figures_t f = figs(0, false);
    long long t0 = ts_now_ms();
    for (int i = 0; i < 400; i++) {
        f.now_ms = i;
        f.backlog_files = i % 2 == 0;
        alerts_evaluate(a, &f);
    }
    cr_expect_lt(ts_now_ms() - t0, 1000, "evaluating 400 times took %lld ms", ts_now_ms() - t0);
    alerts_destroy(&a); /* gives up on the rest after a few seconds */
    cr_expect_lt(ts_now_ms() - t0, 12000);
    char *text = ts_read_file(log, NULL);
    cr_expect(strstr(text, "alert actions are behind (256 waiting): alert flap") != NULL, "%s", text);
    cr_expect(strstr(text, "are not run") != NULL, "%s", text);
    free(text);
    free(log);
    ts_rmtree(dir);
    free(dir);
}

/* Alertmanager's payload, re-sent while firing, as a receiver sees it. */
Test(alerts_actions, alertmanager_payload_is_resent_while_firing)
{
    setenv("SPATE_TEST_ALERTS_RESEND_MS", "200", 1);
    webhook_t *w = wh_start(200);
    char *spec = sp_xasprintf("alertmanager:%s", wh_url(w));
    const char *actions[] = {spec, NULL};
    alerts_t *a = started("backlog: backlog_files > 0", actions);
    alerts_figures_t f = figs(1000, false);
    f.backlog_files = 3;
    alerts_evaluate(a, &f);
    cr_assert(wh_wait(w, 3, 10000), "the first POST and two re-sends: got %zu", wh_count(w));
    f.now_ms = 2000;
    f.backlog_files = 0;
    alerts_evaluate(a, &f);
    size_t n = wh_count(w);
    cr_assert(wh_wait(w, n + 1, 10000));
    usleep(600 * 1000);
    alerts_destroy(&a);
    n = wh_count(w);
    for (size_t i = 0; i < n; i++) {
        wh_request_t r = wh_get(w, i);
        cr_expect_str_eq(r.method, "POST");
        cr_expect_str_eq(r.path, "/hook/api/v2/alerts");
        cr_expect(r.content_type && strcmp(r.content_type, "application/json") == 0, "%s", r.content_type);
        json_object *arr = json_tokener_parse(r.body);
        cr_assert(arr && json_object_is_type(arr, json_type_array) && json_object_array_length(arr) == 1, "%s",
                  r.body);
        json_object *al = json_object_array_get_idx(arr, 0), *v;
        json_object *labels = field(al, "labels");
        cr_expect_str_eq(str_field(labels, "alertname"), "backlog");
        cr_expect_str_eq(str_field(labels, "query"), "activity_counts");
        cr_expect_str_eq(str_field(labels, "severity"), "warning");
        cr_expect_str_eq(str_field(field(al, "annotations"), "summary"),
                         i + 1 < n ? "backlog_files is 3, above 0" : "backlog_files is 0, no longer above 0");
        field(field(al, "annotations"), "description");
        cr_expect_str_eq(str_field(al, "startsAt"), "1970-01-01T00:00:01.000Z");
        cr_expect(!json_object_object_get_ex(al, "generatorURL", &v), "no http_url, no generatorURL");
        if (i + 1 < n)
            cr_expect(!json_object_object_get_ex(al, "endsAt", &v), "firing: no endsAt: %s", r.body);
        else
            cr_expect_str_eq(str_field(al, "endsAt"), "1970-01-01T00:00:02.000Z", "the resolve ends it");
        json_object_put(arr);
        wh_request_free(&r);
    }
    wh_stop(&w);
    free(spec);
}

/* ---- a real Alertmanager ----------------------------------------------------------- */

#define ALERTMANAGER "/usr/bin/prometheus-alertmanager"

typedef struct body {
    char *data;
    size_t len;
} body_t;

static size_t body_write(char *p, size_t size, size_t n, void *ud)
{
    body_t *b = ud;
    b->data = sp_xrealloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET url: the body when the answer is 200, else NULL. */
static char *http_get(const char *url)
{
    CURL *c = curl_easy_init();
    body_t b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (code != 200) {
        free(b.data);
        return NULL;
    }
    return b.data ? b.data : sp_xstrdup("");
}

typedef struct am {
    const char *base;
    const char *name;
    const char *want;    /* "active", or "gone" (not active: resolved) */
    char *last;          /* the last /api/v2/alerts answer */
} am_t;

/* The alert named am->name in /api/v2/alerts, checked against am->want. */
static bool am_shows(void *ctx)
{
    am_t *m = ctx;
    char *url = sp_xasprintf("%s/api/v2/alerts", m->base);
    free(m->last);
    m->last = http_get(url);
    free(url);
    if (m->last == NULL)
        return false;
    json_object *arr = json_tokener_parse(m->last);
    if (arr == NULL)
        return false;
    bool active = false;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *al = json_object_array_get_idx(arr, i), *labels, *status, *v;
        if (!json_object_object_get_ex(al, "labels", &labels) || !json_object_object_get_ex(labels, "alertname", &v) ||
            strcmp(json_object_get_string(v), m->name) != 0)
            continue;
        json_object_object_get_ex(al, "status", &status);
        json_object_object_get_ex(status, "state", &v);
        if (strcmp(json_object_get_string(v), "active") == 0)
            active = true;
    }
    json_object_put(arr);
    return strcmp(m->want, "active") == 0 ? active : !active;
}

static bool am_ready(void *ctx)
{
    char *url = sp_xasprintf("%s/-/ready", (const char *)ctx);
    char *b = http_get(url);
    free(url);
    free(b);
    return b != NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(alerts_actions, alertmanager_shows_the_alert_firing_then_resolved, .timeout = 120)
{
    if (access(ALERTMANAGER, X_OK) != 0)
        cr_skip_test("%s is not installed (Debian package prometheus-alertmanager; scripts/test installs it)",
                     ALERTMANAGER);
    char *dir = ts_tmpdir("alerts-am");
    char *cfg = sp_xasprintf("%s/alertmanager.yml", dir);
    const char conf[] = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n";
    cr_assert_eq(ts_write_file(cfg, conf, sizeof conf - 1), 0);
    char *data = sp_xasprintf("%s/data", dir);
    mkdir(data, 0755);
    int port = free_port();
    char *cfg_flag = sp_xasprintf("--config.file=%s", cfg);
    char *data_flag = sp_xasprintf("--storage.path=%s", data);
    char *listen = sp_xasprintf("--web.listen-address=127.0.0.1:%d", port);
    char *errlog = sp_xasprintf("%s/alertmanager.log", dir);
    const char *argv[] = {ALERTMANAGER, cfg_flag, data_flag, listen, "--cluster.listen-address=", NULL};
    pid_t pid = ts_spawn(argv, NULL, errlog);
    cr_assert_gt(pid, 0);
    char *base = sp_xasprintf("http://127.0.0.1:%d", port);
    if (!ts_poll(am_ready, base, 20000)) {
        char *l = ts_read_file(errlog, NULL);
        ts_kill(pid, SIGKILL);
        cr_assert_fail("Alertmanager did not become ready:\n%s", l ? l : "");
    }

    /* a trailing slash is fine */
    char *spec = sp_xasprintf("alertmanager:%s/", base);
    const char *actions[] = {spec, NULL};
    alerts_query_t q = query;
    q.http_url = "http://127.0.0.1:4040/";
    alerts_t *a = alerts_new(&q, NULL, NULL);
    sp_err_t err;
    cr_assert_eq(alerts_add_rule(a, "spate_test_backlog: backlog_files > 2", &err), 0);
    cr_assert_eq(alerts_add_action(a, actions[0], &err), 0, "%s", err.msg);
    cr_assert_eq(alerts_start(a, &err), 0, "%s", err.msg);
    alerts_figures_t f = figs(sp_wall_ms(), false);
    f.backlog_files = 5;
    alerts_evaluate(a, &f);

    am_t m = {base, "spate_test_backlog", "active", NULL};
    cr_assert(ts_poll(am_shows, &m, 20000), "Alertmanager does not show the alert active: %s", m.last);
    json_object *arr = json_tokener_parse(m.last), *al = NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *x = json_object_array_get_idx(arr, i);
        if (strcmp(str_field(field(x, "labels"), "alertname"), "spate_test_backlog") == 0)
            al = x;
    }
    cr_assert(al);
    json_object *labels = field(al, "labels");
    cr_expect_str_eq(str_field(labels, "query"), "activity_counts");
    cr_expect_str_eq(str_field(labels, "severity"), "warning");
    json_object *ann = field(al, "annotations");
    cr_expect_str_eq(str_field(ann, "summary"), "backlog_files is 5, above 2");
    cr_expect(strstr(str_field(ann, "description"), "backlog_files > 2") != NULL);
    cr_expect_str_eq(str_field(al, "generatorURL"), "http://127.0.0.1:4040/");
    char starts[40];
    sp_format_iso8601(f.now_ms, starts, sizeof starts);
    cr_expect_str_eq(str_field(al, "startsAt"), starts);
    json_object_put(arr);

    f.now_ms = sp_wall_ms();
    f.backlog_files = 0;
    alerts_evaluate(a, &f);
    m.want = "gone";
    cr_assert(ts_poll(am_shows, &m, 20000), "Alertmanager still shows the alert active: %s", m.last);
    alerts_destroy(&a);

    ts_kill(pid, SIGTERM);
    free(m.last);
    free(spec);
    free(base);
    free(errlog);
    free(listen);
    free(data_flag);
    free(cfg_flag);
    free(data);
    free(cfg);
    ts_rmtree(dir);
    free(dir);
}
