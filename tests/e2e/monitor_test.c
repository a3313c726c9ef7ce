/* tests/e2e/monitor_test.c -- a real query watched from outside: the JSON
 * APIs checked field by field against the rows the test generated, the
 * result against the oracle; /metrics scraped by a real Prometheus and read
 * back through its query API; the web UI loaded in headless Chromium, its
 * figures checked against the API and a screenshot kept; and the spate
 * status / progress / listen commands. Prometheus and Chromium tests skip
 * when those programs are missing (scripts/test installs them). */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "http_client.h"
#include "sp_util.h"

#define FILES 6
#define ROWS_PER_FILE 1500
#define FILES_PER_TRIGGER 2
#define BATCHES (FILES / FILES_PER_TRIGGER)
#define TOTAL_ROWS (FILES * ROWS_PER_FILE)

static e2e_env_t env;
static char http_addr[64], base[96], events_ep[64];
static pid_t driver = -1;

/* Rows of batch b: FILES_PER_TRIGGER files each, then (in the test of the
 * commands) one late file. */
static long long batch_rows(int b) { return b < BATCHES ? FILES_PER_TRIGGER * ROWS_PER_FILE : ROWS_PER_FILE; }

static void setup(void)
{
    e2e_env_init(&env, "e2e-monitor");
    snprintf(http_addr, sizeof http_addr, "127.0.0.1:%d", e2e_free_port());
    snprintf(base, sizeof base, "http://%s", http_addr);
    snprintf(events_ep, sizeof events_ep, "tcp://127.0.0.1:%d", e2e_free_port());
}

static void teardown(void)
{
    if (driver > 0)
        ts_kill(driver, SIGKILL);
    driver = -1;
    e2e_env_free(&env);
}

TestSuite(monitor, .init = setup, .fini = teardown, .timeout = 240);

/* ---- the query ---------------------------------------------------------------------- */

/* Progress reports with data (a trigger that found none reports 0 rows). */
static json_object *data_reports(json_object *all)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(all); i++) {
        json_object *p = json_object_array_get_idx(all, i);
        if (hc_int(p, "numInputRows") > 0)
            json_object_array_add(out, json_object_get(p));
    }
    return out;
}

static bool all_rows_reported(void *ctx)
{
    (void)ctx;
    char *url = sp_xasprintf("%s/api/progress", base);
    char *body = hc_get_text(url);
    free(url);
    json_object *a = body ? json_tokener_parse(body) : NULL;
    free(body);
    long long rows = 0;
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *n = NULL;
        if (json_object_object_get_ex(json_object_array_get_idx(a, i), "numInputRows", &n))
            rows += json_object_get_int64(n);
    }
    json_object_put(a);
    return rows == TOTAL_ROWS;
}

/* Generate FILES files of ROWS_PER_FILE rows, start the driver with the
 * HTTP server and the events socket, and wait until every row is in. */
static void run_query(void)
{
    e2e_gen(env.input, FILES, ROWS_PER_FILE, 7, false, NULL);
    char fpt[16];
    snprintf(fpt, sizeof fpt, "%d", FILES_PER_TRIGGER);
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--trigger", "default", "--max-files-per-trigger", fpt, "--executors", "2",
                          "--sink", "memory:counts", "--http", http_addr, "--events", events_ep,
                          "--recent-progress", "50", NULL};
    driver = e2e_spawn(env.dir, "driver", NULL, args);
    char want[128];
    snprintf(want, sizeof want, "HTTP on http://%s", http_addr);
    e2e_wait_log(env.dir, "driver", want, 30000);
    bool done = ts_poll(all_rows_reported, NULL, 60000);
    char *log = sp_xasprintf("%s/driver.err", env.dir);
    char *text = ts_read_file(log, NULL);
    cr_assert(done, "the driver did not report %d rows within 60 s:\n%s", TOTAL_ROWS, text ? text : "");
    free(text);
    free(log);
}

/* SIGINT the driver and wait for it to end cleanly. */
static void stop_query(void)
{
    kill(driver, SIGINT);
    int status = 0;
    cr_assert_eq(ts_wait(driver, 30000, &status), 1, "the driver did not stop on SIGINT");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the driver ended with status %d", status);
    driver = -1;
}

/* ---- (a) the JSON APIs, field by field ---------------------------------------------------- */

static long long file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (long long)st.st_size;
}

static bool in_array(json_object *a, const char *s)
{
    for (size_t i = 0; i < json_object_array_length(a); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
            return true;
    return false;
}

static bool tasks_done_add_up(void *ctx)
{
    (void)ctx;
    json_object *execs = hc_get_json(base, "/api/executors");
    long long done = 0;
    for (size_t i = 0; i < json_object_array_length(execs); i++)
        done += hc_int(json_object_array_get_idx(execs, i), "tasksDone");
    size_t n = json_object_array_length(execs);
    json_object_put(execs);
    return n == 2 && done == FILES;
}

static void check_apis(void)
{
    json_object *status = hc_get_json(base, "/api/status");
    const char *query_id = hc_str(status, "id");
    cr_assert_str_eq(hc_str(status, "name"), "counts");
    cr_assert_str_eq(hc_str(status, "message"), "Waiting for data to arrive");

    /* Progress: batches 0, 1, 2 of FILES_PER_TRIGGER files each, the
     * backlog shrinking by as many files each time. */
    json_object *all = hc_get_json(base, "/api/progress");
    json_object *reports = data_reports(all);
    cr_assert_eq(json_object_array_length(reports), BATCHES, "%s", json_object_to_json_string(all));
    for (int b = 0; b < BATCHES; b++) {
        json_object *p = json_object_array_get_idx(reports, (size_t)b);
        cr_assert_eq(hc_int(p, "batchId"), b);
        cr_assert_str_eq(hc_str(p, "id"), query_id);
        cr_assert_str_eq(hc_str(p, "runId"), hc_str(status, "runId"));
        cr_assert_eq(hc_int(p, "numInputRows"), FILES_PER_TRIGGER * ROWS_PER_FILE);
        cr_assert_eq(hc_int(p, "numMalformedRows"), 0);
        json_object *src = json_object_array_get_idx(hc_field(p, "sources"), 0);
        cr_assert_eq(hc_int(src, "numInputRows"), FILES_PER_TRIGGER * ROWS_PER_FILE);
        json_object *m = hc_field(src, "metrics");
        char want[16];
        snprintf(want, sizeof want, "%d", FILES - FILES_PER_TRIGGER * (b + 1));
        cr_assert_str_eq(hc_str(m, "backlogFiles"), want, "batch %d: %s", b, json_object_to_json_string(p));
        json_object *op = json_object_array_get_idx(hc_field(p, "stateOperators"), 0);
        cr_assert_gt(hc_int(op, "numRowsTotal"), 0);
        long long exec_rows = 0;
        json_object *ex = hc_field(p, "executors");
        for (size_t i = 0; i < json_object_array_length(ex); i++)
            exec_rows += hc_int(json_object_array_get_idx(ex, i), "rows");
        cr_assert_eq(exec_rows, FILES_PER_TRIGGER * ROWS_PER_FILE, "per-executor rows add up");
    }
    json_object *two = hc_get_json(base, "/api/progress?last=2");
    cr_assert_eq(json_object_array_length(two), 2);
    cr_assert_str_eq(json_object_to_json_string(json_object_array_get_idx(two, 1)),
                     json_object_to_json_string(json_object_array_get_idx(all, json_object_array_length(all) - 1)));
    json_object_put(two);

    /* Executors: the two local ones, alive, with a task per file (files
     * are far below the split size). The table is refreshed twice a
     * second: it catches up with the batches. */
    cr_assert(ts_poll(tasks_done_add_up, NULL, 5000), "the executors table does not add up to %d tasks", FILES);
    json_object *execs = hc_get_json(base, "/api/executors");
    cr_assert_eq(json_object_array_length(execs), 2, "%s", json_object_to_json_string(execs));
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < 2; i++) {
        json_object *e = json_object_array_get_idx(execs, i);
        cr_assert_str_eq(hc_str(e, "state"), "alive");
        cr_assert_eq(hc_int(e, "slots"), 1);
        cr_assert_gt(hc_int(e, "pid"), 0);
        cr_assert_not(in_array(ids, hc_str(e, "id")), "executor ids are distinct");
        json_object_array_add(ids, json_object_new_string(hc_str(e, "id")));
    }

    /* Batches, newest first; each one's tasks are its files, read whole by
     * the executors above, and add up to its rows. */
    json_object *batches = hc_get_json(base, "/api/batches");
    cr_assert_eq(json_object_array_length(batches), BATCHES, "%s", json_object_to_json_string(batches));
    json_object *seen = json_object_new_array();
    for (int i = 0; i < BATCHES; i++) {
        json_object *b = json_object_array_get_idx(batches, (size_t)i);
        long long id = hc_int(b, "batchId");
        cr_assert_eq(id, BATCHES - 1 - i);
        cr_assert_str_eq(hc_str(b, "state"), "committed");
        cr_assert_eq(hc_int(b, "files"), FILES_PER_TRIGGER);
        cr_assert_eq(hc_int(b, "numInputRows"), FILES_PER_TRIGGER * ROWS_PER_FILE);
        char path[64];
        snprintf(path, sizeof path, "/api/batches/%lld", id);
        json_object *d = hc_get_json(base, path);
        json_object *tasks = hc_field(d, "tasks");
        cr_assert_eq(json_object_array_length(tasks), FILES_PER_TRIGGER);
        long long rows = 0;
        for (size_t t = 0; t < json_object_array_length(tasks); t++) {
            json_object *task = json_object_array_get_idx(tasks, t);
            const char *file = hc_str(task, "path");
            cr_assert(strncmp(file, env.input, strlen(env.input)) == 0, "%s is in the source", file);
            cr_assert_not(in_array(seen, file), "%s read twice", file);
            json_object_array_add(seen, json_object_new_string(file));
            cr_assert_eq(hc_int(task, "start"), 0);
            cr_assert_eq(hc_int(task, "end"), file_size(file));
            cr_assert_str_eq(hc_str(task, "status"), "done");
            cr_assert(in_array(ids, hc_str(task, "executor")), "task ran on %s", hc_str(task, "executor"));
            cr_assert_eq(hc_int(task, "rows"), ROWS_PER_FILE);
            rows += hc_int(task, "rows");
        }
        cr_assert_eq(rows, hc_int(b, "numInputRows"));
        json_object_put(d);
    }
    cr_assert_eq(json_object_array_length(seen), FILES, "every file in exactly one batch");
    json_object_put(seen);
    json_object_put(batches);

    /* The result, against the independent oracle. */
    json_object *result = hc_get_json(base, "/api/result");
    cr_assert(json_object_is_type(result, json_type_array));
    sp_buf_t lines = SP_BUF_INIT;
    for (size_t i = 0; i < json_object_array_length(result); i++)
        sp_buf_printf(&lines, "%s\n", json_object_to_json_string_ext(json_object_array_get_idx(result, i),
                                                                     JSON_C_TO_STRING_PLAIN));
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    char *diff = NULL;
    cr_assert_eq(oracle_compare_jsonl(o, names, sp_buf_cstr(&lines), 0, &diff), 0, "/api/result differs:\n%s",
                 diff ? diff : "");
    char *cli = e2e_result_json(env.ckpt);
    cr_assert_str_eq(sp_buf_cstr(&lines), cli, "/api/result has the rows of spate result --format json");
    free(cli);
    oracle_destroy(&o);
    sp_buf_free(&lines);
    json_object_put(result);

    /* /metrics agrees. */
    char *url = sp_xasprintf("%s/metrics", base);
    char *metrics = hc_get_text(url);
    cr_assert_not_null(metrics);
    char want[256];
    snprintf(want, sizeof want, "spate_input_rows_total{query=\"counts\",query_id=\"%s\"} %d\n", query_id, TOTAL_ROWS);
    cr_assert_not_null(strstr(metrics, want), "no '%s' in\n%s", want, metrics);
    snprintf(want, sizeof want, "spate_executors_alive{query=\"counts\",query_id=\"%s\"} 2\n", query_id);
    cr_assert_not_null(strstr(metrics, want), "no '%s' in\n%s", want, metrics);
    snprintf(want, sizeof want, "spate_batches_total{query=\"counts\",query_id=\"%s\"} %d\n", query_id, BATCHES);
    cr_assert_not_null(strstr(metrics, want), "no '%s' in\n%s", want, metrics);
    free(metrics);
    free(url);

    json_object_put(ids);
    json_object_put(execs);
    json_object_put(reports);
    json_object_put(all);
    json_object_put(status);
}

/* ---- (d) spate status / progress / listen ---------------------------------------------------- */

static json_object *parse_lines(const char *text, size_t *n)
{
    json_object *a = json_object_new_array();
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 0) {
            char *line = sp_xstrndup(p, len);
            json_object *o = json_tokener_parse(line);
            cr_assert_not_null(o, "not a JSON line: %s", line);
            json_object_array_add(a, o);
            free(line);
        }
        p = eol ? eol + 1 : NULL;
    }
    *n = json_object_array_length(a);
    return a;
}

static bool file_has(const char *path, const char *needle)
{
    char *text = ts_read_file(path, NULL);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

typedef struct wait_file {
    const char *path, *needle;
} wait_file_t;

static bool wait_file_fn(void *ctx)
{
    wait_file_t *w = ctx;
    return file_has(w->path, w->needle);
}

/* Stop `spate listen` or `spate progress --follow` with SIGINT: exit 0. */
static void stop_with_sigint(pid_t pid, const char *what)
{
    kill(pid, SIGINT);
    int status = 0;
    cr_assert_eq(ts_wait(pid, 10000, &status), 1, "%s did not stop on SIGINT", what);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s ended with status %d", what, status);
}

static void check_cli_with_driver(void)
{
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(30000, &out, &err, "status", "--http", http_addr, "--json", NULL);
    cr_assert_eq(rc, 0, "spate status --json: %s", err);
    json_object *api = hc_get_json(base, "/api/status");
    json_object *got = json_tokener_parse(out);
    cr_assert_not_null(got, "%s", out);
    cr_assert_str_eq(hc_str(got, "id"), hc_str(api, "id"));
    cr_assert_str_eq(hc_str(got, "runId"), hc_str(api, "runId"));
    cr_assert_str_eq(hc_str(got, "message"), hc_str(api, "message"));
    json_object_put(got);
    free(out);
    free(err);

    rc = e2e_spate(30000, &out, &err, "status", "--http", http_addr, NULL);
    cr_assert_eq(rc, 0, "spate status: %s", err);
    cr_assert_not_null(strstr(out, "status: Waiting for data to arrive (no data available, trigger inactive)\n"),
                       "%s", out);
    cr_assert_not_null(strstr(out, hc_str(api, "id")), "%s", out);
    cr_assert_not_null(strstr(out, "query:  counts\n"), "%s", out);
    free(out);
    free(err);
    json_object_put(api);

    rc = e2e_spate(30000, &out, &err, "progress", "--last", "2", "--json", "--http", http_addr, NULL);
    cr_assert_eq(rc, 0, "spate progress: %s", err);
    size_t n = 0;
    json_object *lines = parse_lines(out, &n);
    json_object *two = hc_get_json(base, "/api/progress?last=2");
    cr_assert_eq(n, 2, "%s", out);
    for (size_t i = 0; i < 2; i++)
        cr_assert_str_eq(json_object_to_json_string(json_object_array_get_idx(lines, i)),
                         json_object_to_json_string(json_object_array_get_idx(two, i)));
    json_object_put(two);
    json_object_put(lines);
    free(out);
    free(err);

    rc = e2e_spate(30000, &out, &err, "progress", "--http", http_addr, NULL);
    cr_assert_eq(rc, 0, "spate progress: %s", err);
    cr_assert_not_null(strstr(out, "  rows       "), "%s", out);
    cr_assert_not_null(strstr(out, "  backlog    0 files"), "%s", out);
    free(out);
    free(err);

    rc = e2e_spate(30000, &out, &err, "progress", "--last", "x", NULL);
    cr_assert_eq(rc, 2, "a bad --last is a usage error");
    free(out);
    free(err);

    /* --follow prints the kept reports, then each new one as it comes: one
     * late file makes batch 3. */
    const char *fargs[] = {"progress", "--follow", "--json", "--last", "0", "--http", http_addr, NULL};
    pid_t follow = e2e_spawn(env.dir, "follow", NULL, fargs);
    char *fout = sp_xasprintf("%s/follow.out", env.dir);
    wait_file_t w2 = {fout, "\"batchId\":2,"}, w3 = {fout, "\"batchId\":3,"};
    cr_assert(ts_poll(wait_file_fn, &w2, 10000), "spate progress --follow printed no batch 2");
    e2e_gen(env.input, 1, ROWS_PER_FILE, 8, false, "late-");
    cr_assert(ts_poll(wait_file_fn, &w3, 20000), "spate progress --follow printed no batch 3");
    stop_with_sigint(follow, "spate progress --follow");
    char *text = ts_read_file(fout, NULL);
    json_object *followed = parse_lines(text, &n);
    json_object *reports = data_reports(followed);
    cr_assert_eq(json_object_array_length(reports), BATCHES + 1, "each report once: %s", text);
    for (int b = 0; b <= BATCHES; b++)
        cr_assert_eq(hc_int(json_object_array_get_idx(reports, (size_t)b), "batchId"), b, "%s", text);
    json_object_put(reports);
    json_object_put(followed);
    free(text);
    free(fout);
}

static void check_cli_without_driver(void)
{
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(30000, &out, &err, "status", "--http", http_addr, NULL);
    cr_assert_eq(rc, 1, "no driver: exit 1 (%s)", err);
    char want[256];
    snprintf(want, sizeof want, "spate: error: no spate driver answers at %s: ", base);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
    cr_assert_eq(e2e_count(err, "\n"), 1, "one line: %s", err);
    free(out);
    free(err);

    /* The reports the driver kept in the checkpoint. */
    rc = e2e_spate(30000, &out, &err, "progress", "--checkpoint", env.ckpt, "--last", "0", "--json", NULL);
    cr_assert_eq(rc, 0, "spate progress --checkpoint: %s", err);
    size_t n = 0;
    json_object *all = parse_lines(out, &n);
    json_object *reports = data_reports(all);
    cr_assert_eq(json_object_array_length(reports), BATCHES + 1, "%s", out);
    for (int b = 0; b <= BATCHES; b++) {
        json_object *p = json_object_array_get_idx(reports, (size_t)b);
        cr_assert_eq(hc_int(p, "batchId"), b);
        cr_assert_eq(hc_int(p, "numInputRows"), batch_rows(b));
    }
    json_object_put(reports);
    json_object_put(all);
    free(out);
    free(err);
    rc = e2e_spate(30000, &out, &err, "progress", "--checkpoint", env.ckpt, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(e2e_count(out, "batch "), 1, "--last defaults to 1: %s", out);
    cr_assert_not_null(strstr(out, "batch 3 at "), "%s", out);
    free(out);
    free(err);
}

Test(monitor, apis_cli_and_events_of_a_real_query)
{
    /* Listeners first: they connect before the driver binds. */
    const char *ljson[] = {"listen", "--events", events_ep, "--json", NULL};
    const char *ltext[] = {"listen", "--events", events_ep, NULL};
    pid_t listen_json = e2e_spawn(env.dir, "listen-json", NULL, ljson);
    pid_t listen_text = e2e_spawn(env.dir, "listen-text", NULL, ltext);

    run_query();
    check_apis();
    check_cli_with_driver();
    stop_query();
    check_cli_without_driver();

    char *json_out = sp_xasprintf("%s/listen-json.out", env.dir);
    char *text_out = sp_xasprintf("%s/listen-text.out", env.dir);
    wait_file_t w1 = {json_out, "QueryTerminatedEvent"}, w2 = {text_out, "query terminated"};
    cr_assert(ts_poll(wait_file_fn, &w1, 10000), "spate listen --json got no QueryTerminatedEvent");
    cr_assert(ts_poll(wait_file_fn, &w2, 10000), "spate listen got no QueryTerminatedEvent");
    stop_with_sigint(listen_json, "spate listen --json");
    stop_with_sigint(listen_text, "spate listen");

    /* started, then the progress of batches 0 to 3 in order, terminated
     * last (executor and idle events in between). */
    char *text = ts_read_file(json_out, NULL);
    size_t n = 0;
    json_object *events = parse_lines(text, &n);
    cr_assert_geq(n, 2 + BATCHES, "%s", text);
    cr_assert_str_eq(hc_str(json_object_array_get_idx(events, 0), "event"), "QueryStartedEvent", "%s", text);
    cr_assert_str_eq(hc_str(json_object_array_get_idx(events, n - 1), "event"), "QueryTerminatedEvent", "%s", text);
    cr_assert(json_object_is_type(hc_field(json_object_array_get_idx(events, n - 1), "exception"), json_type_null));
    long long next = 0, added = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        json_object *e = json_object_array_get_idx(events, i);
        const char *kind = hc_str(e, "event");
        if (strcmp(kind, "ExecutorAddedEvent") == 0)
            added++;
        if (strcmp(kind, "QueryProgressEvent") != 0)
            continue;
        json_object *p = hc_field(e, "progress");
        if (hc_int(p, "numInputRows") == 0)
            continue;
        cr_assert_eq(hc_int(p, "batchId"), next, "progress in batch order: %s", text);
        cr_assert_eq(hc_int(p, "numInputRows"), batch_rows((int)next));
        next++;
    }
    cr_assert_eq(next, BATCHES + 1, "%s", text);
    cr_assert_eq(added, 2, "both executors announced: %s", text);
    json_object_put(events);
    free(text);

    text = ts_read_file(text_out, NULL);
    cr_assert_not_null(strstr(text, "query started: counts"), "%s", text);
    char want[128];
    snprintf(want, sizeof want, "batch 2: %d rows (0 malformed)", FILES_PER_TRIGGER * ROWS_PER_FILE);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_lt(strstr(text, "query started"), strstr(text, "query terminated"));
    free(text);
    free(json_out);
    free(text_out);
}

/* ---- (b) a real Prometheus scrapes /metrics ------------------------------------------------------- */

/* The full path of program in PATH (malloc'd), or NULL. */
static char *find_program(const char *program)
{
    const char *path = getenv("PATH");
    char *copy = sp_xstrdup(path ? path : "/usr/bin:/bin");
    char *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *full = sp_xasprintf("%s/%s", dir, program);
        if (access(full, X_OK) == 0)
            found = full;
        else
            free(full);
    }
    free(copy);
    return found;
}

/* find_program, or skip the test: scripts/test installs Debian's package
 * of the same name (SPATE_TEST_PACKAGES), a bare build may not have it. */
static char *require_program(const char *program)
{
    char *path = find_program(program);
    if (path == NULL)
        cr_skip_test("no %s in PATH (Debian's %s package; scripts/test installs it)", program, program);
    return path;
}

typedef struct prom_query {
    const char *base, *query;
    double want;
    char last[256];
} prom_query_t;

/* Prometheus's /api/v1/query for q.query has one sample and it is q.want. */
static bool prom_has(void *ctx)
{
    prom_query_t *q = ctx;
    char *url = sp_xasprintf("%s/api/v1/query?query=%s", q->base, q->query);
    char *body = hc_get_text(url);
    free(url);
    json_object *o = body ? json_tokener_parse(body) : NULL;
    snprintf(q->last, sizeof q->last, "%s", body ? body : "(no answer)");
    free(body);
    bool ok = false;
    json_object *data = NULL, *result = NULL;
    if (o && json_object_object_get_ex(o, "data", &data) && json_object_object_get_ex(data, "result", &result) &&
        json_object_array_length(result) == 1) {
        json_object *value = NULL;
        json_object_object_get_ex(json_object_array_get_idx(result, 0), "value", &value);
        const char *v = value ? json_object_get_string(json_object_array_get_idx(value, 1)) : NULL;
        ok = v && fabs(strtod(v, NULL) - q->want) < 1e-9;
    }
    json_object_put(o);
    return ok;
}

Test(monitor, prometheus_scrapes_the_metrics)
{
    char *prometheus = require_program("prometheus");
    run_query();

    char *url = sp_xasprintf("%s/metrics", base);
    char *metrics = hc_get_text(url);
    free(url);
    char want[64];
    snprintf(want, sizeof want, "} %d\n", TOTAL_ROWS);
    const char *line = strstr(metrics, "\nspate_input_rows_total{");
    cr_assert(line && strstr(line, want) == strchr(line, '}'), "/metrics shows %d rows:\n%s", TOTAL_ROWS, metrics);
    free(metrics);

    char *config = sp_xasprintf("%s/prometheus.yml", env.dir);
    char *yml = sp_xasprintf("global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: spate\n"
                             "    scrape_interval: 1s\n"
                             "    scrape_timeout: 1s\n"
                             "    static_configs:\n"
                             "      - targets: ['%s']\n",
                             http_addr);
    cr_assert_eq(ts_write_file(config, yml, strlen(yml)), 0);
    char listen[64], flag_config[512], flag_listen[96], flag_tsdb[512];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e2e_free_port());
    snprintf(flag_config, sizeof flag_config, "--config.file=%s", config);
    snprintf(flag_listen, sizeof flag_listen, "--web.listen-address=%s", listen);
    snprintf(flag_tsdb, sizeof flag_tsdb, "--storage.tsdb.path=%s/tsdb", env.dir);
    char *out_log = sp_xasprintf("%s/prometheus.log", env.dir);
    const char *argv[] = {prometheus, flag_config, flag_listen, flag_tsdb, NULL};
    pid_t prom = ts_spawn(argv, out_log, out_log);
    cr_assert_gt(prom, 0);

    char pbase[96];
    snprintf(pbase, sizeof pbase, "http://%s", listen);
    prom_query_t checks[] = {
        {pbase, "spate_input_rows_total", TOTAL_ROWS, ""},
        {pbase, "spate_batches_total", BATCHES, ""},
        {pbase, "spate_executors_alive", 2, ""},
        {pbase, "spate_malformed_rows_total", 0, ""},
        {pbase, "spate_task_failures_total", 0, ""},
        {pbase, "spate_backlog_files", 0, ""},
        {pbase, "spate_up", 1, ""},
        {pbase, "up%7Bjob%3D%22spate%22%7D", 1, ""},
    };
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        bool ok = ts_poll(prom_has, &checks[i], 60000);
        if (!ok) {
            char *log = ts_read_file(out_log, NULL);
            size_t len = log ? strlen(log) : 0;
            ts_kill(prom, SIGTERM);
            cr_assert_fail("Prometheus never read %s = %g; last answer: %s\nits log (end):\n%s", checks[i].query,
                           checks[i].want, checks[i].last, log ? log + (len > 3000 ? len - 3000 : 0) : "");
        }
    }
    cr_log_info("Prometheus read spate_input_rows_total = %d back from the driver's /metrics", TOTAL_ROWS);
    ts_kill(prom, SIGTERM);
    stop_query();
    free(out_log);
    free(yml);
    free(config);
    free(prometheus);
}

/* ---- (c) the web UI in headless Chromium ---------------------------------------------------------- */

/* The value of attribute attr of the element with id="id" in an HTML dump
 * (malloc'd), or NULL. */
static char *dom_attr(const char *dom, const char *id, const char *attr)
{
    char needle[128];
    snprintf(needle, sizeof needle, "id=\"%s\"", id);
    const char *at = strstr(dom, needle);
    if (at == NULL)
        return NULL;
    const char *open = at;
    while (open > dom && *open != '<')
        open--;
    const char *close = strchr(at, '>');
    snprintf(needle, sizeof needle, " %s=\"", attr);
    const char *a = strstr(open, needle);
    if (a == NULL || close == NULL || a > close)
        return NULL;
    a += strlen(needle);
    const char *end = strchr(a, '"');
    return end ? sp_xstrndup(a, (size_t)(end - a)) : NULL;
}

/* The text inside the element with id="id" (up to the next tag). */
static char *dom_text(const char *dom, const char *id)
{
    char needle[128];
    snprintf(needle, sizeof needle, "id=\"%s\"", id);
    const char *at = strstr(dom, needle);
    const char *gt = at ? strchr(at, '>') : NULL;
    const char *lt = gt ? strchr(gt, '<') : NULL;
    return lt ? sp_xstrndup(gt + 1, (size_t)(lt - gt - 1)) : NULL;
}

static int run_chromium(const char *chromium, const char *what, const char *url, char **out)
{
    char *profile = sp_xasprintf("--user-data-dir=%s/chromium-%s", env.dir, strncmp(what, "--dump", 6) ? "shot" : "dom");
    const char *argv[] = {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                          "--no-first-run", "--disable-background-networking", "--disable-component-update",
                          "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", profile,
                          "--virtual-time-budget=6000", "--window-size=1400,1000", what, url, NULL};
    char *err = NULL;
    int rc = ts_run(argv, 120000, out, &err);
    if (rc != 0)
        cr_log_warn("chromium %s exited %d: %s", what, rc, err ? err : "");
    free(err);
    free(profile);
    return rc;
}

Test(monitor, web_ui_in_headless_chromium)
{
    char *chromium = require_program("chromium");
    run_query();
    char *url = sp_xasprintf("%s/", base);
    char *dom = NULL;
    cr_assert_eq(run_chromium(chromium, "--dump-dom", url, &dom), 0);
    cr_assert_not_null(dom);

    const char *bp = strstr(dom, "data-polls=\"");
    cr_assert_not_null(bp, "%.2000s", dom);
    cr_assert_gt(atoi(bp + 12), 0, "the page polled the API at least once");

    /* Status and figures against the API. */
    json_object *status = hc_get_json(base, "/api/status");
    char *t = dom_text(dom, "status-message");
    cr_assert_str_eq(t, hc_str(status, "message"));
    free(t);
    t = dom_text(dom, "query-id");
    cr_assert_str_eq(t, hc_str(status, "id"));
    free(t);
    t = dom_text(dom, "run-id");
    cr_assert_str_eq(t, hc_str(status, "runId"));
    free(t);
    t = dom_text(dom, "query-name");
    cr_assert_str_eq(t, "counts");
    free(t);

    /* The figures come from the report the page showed last: find it by
     * its timestamp among the kept ones and compare field by field. */
    json_object *all = hc_get_json(base, "/api/progress");
    char *ts = dom_attr(dom, "fig-timestamp", "data-value");
    cr_assert_not_null(ts, "the page shows a report");
    json_object *p = NULL;
    for (size_t i = 0; i < json_object_array_length(all); i++)
        if (strcmp(hc_str(json_object_array_get_idx(all, i), "timestamp"), ts) == 0)
            p = json_object_array_get_idx(all, i);
    cr_assert_not_null(p, "the page's report %s is not among the API's", ts);
    json_object *src = json_object_array_get_idx(hc_field(p, "sources"), 0);
    json_object *op = json_object_array_get_idx(hc_field(p, "stateOperators"), 0);
    struct {
        const char *id;
        long long want;
    } ints[] = {
        {"fig-last-batch", hc_int(p, "batchId")},
        {"fig-input-rows", hc_int(p, "numInputRows")},
        {"fig-batch-duration", hc_int(p, "batchDuration")},
        {"fig-malformed-rows", hc_int(p, "numMalformedRows")},
        {"fig-state-rows", hc_int(op, "numRowsTotal")},
        {"fig-backlog-files", atoll(hc_str(hc_field(src, "metrics"), "backlogFiles"))},
        {"fig-backlog-bytes", atoll(hc_str(hc_field(src, "metrics"), "backlogBytes"))},
        {"fig-executors-alive", 2},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        char *v = dom_attr(dom, ints[i].id, "data-value");
        cr_assert_not_null(v, "%s has no value", ints[i].id);
        cr_assert_eq(atoll(v), ints[i].want, "%s shows %s, the API %lld", ints[i].id, v, ints[i].want);
        free(v);
    }
    cr_assert_eq(hc_int(p, "batchId"), BATCHES - 1);
    static const char *const rates[][2] = {{"fig-input-rate", "inputRowsPerSecond"},
                                           {"fig-processing-rate", "processedRowsPerSecond"}};
    for (size_t i = 0; i < 2; i++) {
        json_object *r = NULL;
        char *v = dom_attr(dom, rates[i][0], "data-value");
        if (!json_object_object_get_ex(p, rates[i][1], &r)) {
            cr_assert_null(v, "%s shows %s where the API has none", rates[i][0], v);
            continue;
        }
        cr_assert_not_null(v, "%s has no value", rates[i][0]);
        double want = json_object_get_double(r);
        cr_assert(fabs(strtod(v, NULL) - want) <= 1e-9 * fmax(1, fabs(want)), "%s shows %s, the API %.17g",
                  rates[i][0], v, want);
        free(v);
    }

    /* Charts over every kept report; tables with the API's rows. */
    char npoints[16];
    snprintf(npoints, sizeof npoints, "%zu", json_object_array_length(all));
    static const char *const charts[] = {"chart-rates", "chart-duration", "chart-state", "chart-backlog"};
    for (size_t i = 0; i < 4; i++) {
        char *v = dom_attr(dom, charts[i], "data-points");
        cr_assert_not_null(v);
        cr_assert_str_eq(v, npoints, "%s draws every kept report", charts[i]);
        free(v);
    }
    cr_assert_eq(e2e_count(dom, "data-batch-id=\""), BATCHES, "one row per batch");
    cr_assert_eq(e2e_count(dom, "data-executor-id=\""), 2, "one row per executor");
    json_object *result = hc_get_json(base, "/api/result");
    char *rows = dom_attr(dom, "result-table", "data-rows");
    cr_assert_not_null(rows);
    cr_assert_eq((size_t)atoll(rows), json_object_array_length(result));
    free(rows);
    json_object_put(result);

    /* A batch's tasks (#batch=ID selects it, as a click does). */
    char *batch_url = sp_xasprintf("%s/#batch=1", base);
    char *dom1 = NULL;
    cr_assert_eq(run_chromium(chromium, "--dump-dom", batch_url, &dom1), 0);
    t = dom_text(dom1, "batch-detail-id");
    cr_assert_str_eq(t, "1", "the page shows batch 1's tasks");
    free(t);
    json_object *b1 = hc_get_json(base, "/api/batches/1");
    json_object *tasks = hc_field(b1, "tasks");
    cr_assert_eq(e2e_count(dom1, "data-task-id=\""), (int)json_object_array_length(tasks));
    for (size_t i = 0; i < json_object_array_length(tasks); i++) {
        json_object *task = json_object_array_get_idx(tasks, i);
        cr_assert_not_null(strstr(dom1, hc_str(task, "path")), "task file %s on the page", hc_str(task, "path"));
        cr_assert_not_null(strstr(dom1, hc_str(task, "executor")), "task executor on the page");
    }
    json_object_put(b1);
    free(dom1);
    free(batch_url);

    /* A screenshot, kept for people to look at. */
    char *shot = sp_xasprintf("%s/ui-screenshot.png", ts_env("SPATE_TEST_TMP"));
    char *flag = sp_xasprintf("--screenshot=%s", shot);
    unlink(shot);
    cr_assert_eq(run_chromium(chromium, flag, url, NULL), 0);
    size_t len = 0;
    char *png = ts_read_file(shot, &len);
    cr_assert(png && len > 10000 && memcmp(png, "\x89PNG", 4) == 0, "no screenshot at %s", shot);
    free(png);
    cr_log_info("web UI screenshot: %s", shot);
    fprintf(stderr, "web UI screenshot: %s\n", shot);

    stop_query();
    free(flag);
    free(shot);
    free(ts);
    json_object_put(all);
    json_object_put(status);
    free(dom);
    free(url);
    free(chromium);
}
