/* tests/e2e/query_test.c -- real driver and executor processes on loopback:
 * results of several queries, with several executor counts and split sizes,
 * checked against the independent oracle; sinks and triggers. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "e2e.h"

static e2e_env_t env;

static void setup(void) { e2e_env_init(&env, "e2e-query"); }

static void teardown(void) { e2e_env_free(&env); }

TestSuite(query, .init = setup, .fini = teardown);

static void run_available_now(const char *sql, const char *executors, const char *extra1, const char *extra2)
{
    const char *args[32] = {"run", "--source", env.src, "--sql", sql, "--checkpoint", env.ckpt,
                            "--trigger", "available-now", "--executors", executors, "--sink", "memory:t", "--quiet"};
    int n = 14;
    if (extra1)
        args[n++] = extra1;
    if (extra2)
        args[n++] = extra2;
    args[n] = NULL;
    char *err = NULL;
    int rc = e2e_spatev(60000, NULL, &err, args);
    cr_assert_eq(rc, 0, "spate run exited %d: %s", rc, err ? err : "");
    free(err);
}

Test(query, count_by_gt_matches_the_oracle_with_1_2_and_3_executors)
{
    e2e_gen(env.input, 6, 3000, 11, false, NULL);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    const char *counts[] = {"1", "2", "3"};
    for (int i = 0; i < 3; i++) {
        ts_rmtree(env.ckpt);
        /* small splits: each file is read by several tasks */
        run_available_now(E2E_SQL_COUNT, counts[i], "--split-size", "64K");
        e2e_expect_result(env.ckpt, o, names, 0);
    }
    cr_assert_gt(oracle_groups(o), 5);
    oracle_destroy(&o);
}

/* WHERE x > 0 AND User IN ('a','b','c') */
static bool filter_xpos_users(const oracle_row_t *row, void *ctx)
{
    (void)ctx;
    oracle_value_t x, u;
    oracle_row_get(row, "x", ORACLE_DOUBLE, &x);
    oracle_row_get(row, "User", ORACLE_STRING, &u);
    bool xpos = !x.is_null && x.u.d > 0;
    bool user = !u.is_null && u.u.s.len == 1 && (u.u.s.ptr[0] == 'a' || u.u.s.ptr[0] == 'b' || u.u.s.ptr[0] == 'c');
    return xpos && user;
}

#define SQL_MULTI                                                                                  \
    "SELECT gt, Model, count(*) AS n, sum(x) AS sx, min(x) AS mnx, max(x) AS mxx, avg(x) AS ax, "  \
    "count(Index) AS ci, sum(Index) AS si, min(User) AS mu FROM activity "                         \
    "WHERE x > 0 AND User IN ('a', 'b', 'c') GROUP BY gt, Model"

Test(query, many_aggregates_with_a_filter_on_dirty_data)
{
    e2e_gen(env.input, 5, 4000, 12, true, NULL);
    static const char *const by[] = {"gt", "Model"};
    static const oracle_agg_t aggs[] = {
        {ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "x"},   {ORACLE_MIN, "x"},   {ORACLE_MAX, "x"},
        {ORACLE_AVG, "x"},         {ORACLE_COUNT, "Index"}, {ORACLE_SUM, "Index"}, {ORACLE_MIN, "User"},
    };
    static const char *const names[] = {"gt", "Model", "n", "sx", "mnx", "mxx", "ax", "ci", "si", "mu"};
    oracle_t *o = oracle_new(by, 2, aggs, 8, filter_xpos_users, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, env.input), 0, "%s", oracle_error(o));
    cr_assert_gt(oracle_malformed(o), 0, "the dirty data has malformed lines");
    char *first = NULL;
    const char *counts[] = {"1", "3"};
    for (int i = 0; i < 2; i++) {
        ts_rmtree(env.ckpt);
        run_available_now(SQL_MULTI, counts[i], "--schema", ORACLE_ACTIVITY_SCHEMA);
        e2e_expect_result(env.ckpt, o, names, 1e-9);
        char *got = e2e_result_json(env.ckpt);
        if (first == NULL) {
            first = got;
        } else {
            /* the same plan merges in task order: byte-identical doubles */
            cr_assert_str_eq(got, first, "results differ between 1 and 3 executors");
            free(got);
        }
    }
    free(first);
    oracle_destroy(&o);
}

Test(query, a_global_aggregate_without_group_by)
{
    e2e_gen(env.input, 2, 2000, 13, false, NULL);
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "Arrival_Time"}, {ORACLE_MAX, "Device"}};
    static const char *const names[] = {"count(1)", "sum(Arrival_Time)", "max(Device)"};
    oracle_t *o = oracle_new(NULL, 0, aggs, 3, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, env.input), 0);
    run_available_now("SELECT count(*), sum(Arrival_Time), max(Device) FROM activity", "2", NULL, NULL);
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

Test(query, once_takes_everything_in_one_batch_and_limits_cut_batches)
{
    e2e_gen(env.input, 7, 500, 14, false, NULL);
    run_available_now(E2E_SQL_COUNT, "2", "--max-files-per-trigger", "3");
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(committed, 2, "7 files at 3 per trigger are 3 batches, got %lld", committed + 1);
    ts_rmtree(env.ckpt);
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                       "--trigger", "once", "--max-files-per-trigger", "3", "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(committed, 0, "once is one batch of every file (as Spark's Trigger.Once)");
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

Test(query, console_sink_prints_a_table_per_batch)
{
    e2e_gen(env.input, 4, 300, 15, false, NULL);
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(60000, &out, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                       "--trigger", "available-now", "--max-files-per-trigger", "2", "--sink", "console", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "Batch: 0\n") && strstr(out, "Batch: 1\n"), "%s", out);
    cr_assert_eq(e2e_count(out, "|        gt|count|"), 2, "a header per batch:\n%s", out);
    free(out);
    free(err);
}

/* Parse a json sink file's lines into "gt=count" pairs appended to acc. */
Test(query, json_sink_writes_one_file_per_batch)
{
    e2e_gen(env.input, 6, 400, 16, false, NULL);
    char sink[4300];
    snprintf(sink, sizeof sink, "json:%s/out", env.dir);
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                       "--trigger", "available-now", "--max-files-per-trigger", "2", "--sink", sink,
                       "--output-mode", "complete", "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    char path[4400];
    for (int b = 0; b < 3; b++) {
        snprintf(path, sizeof path, "%s/out/batch-%010d.json", env.dir, b);
        char *text = ts_read_file(path, NULL);
        cr_assert_not_null(text, "missing %s", path);
        free(text);
    }
    snprintf(path, sizeof path, "%s/out/batch-%010d.json", env.dir, 3);
    cr_assert_null(ts_read_file(path, NULL), "no fourth batch");
    /* complete mode: the last file is the whole result */
    snprintf(path, sizeof path, "%s/out/batch-%010d.json", env.dir, 2);
    char *last = ts_read_file(path, NULL);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    char *diff = NULL;
    cr_assert_eq(oracle_compare_jsonl(o, names, last, 0, &diff), 0, "%s", diff);
    free(last);
    oracle_destroy(&o);
}

Test(query, streaming_picks_up_files_as_they_arrive)
{
    e2e_gen(env.input, 1, 500, 17, false, "first-");
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--sink",
                          "memory:t", "--executors", "2", NULL};
    pid_t pid = e2e_spawn(env.dir, "run", NULL, args);
    /* more files arrive while it runs */
    e2e_gen(env.input, 3, 700, 18, false, "second-");
    e2e_gen(env.input, 2, 900, 19, false, "third-");
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    uint64_t want = oracle_rows(o);
    long long deadline = ts_now_ms() + 30000;
    bool done = false;
    while (!done && ts_now_ms() < deadline) {
        char *out = NULL;
        if (e2e_spate(10000, &out, NULL, "result", "--checkpoint", env.ckpt, "--format", "csv", NULL) == 0) {
            uint64_t sum = 0;
            char *save = NULL;
            strtok_r(out, "\n", &save); /* the header */
            for (char *line; (line = strtok_r(NULL, "\n", &save)) != NULL;) {
                const char *comma = strrchr(line, ',');
                if (comma)
                    sum += strtoull(comma + 1, NULL, 10);
            }
            done = sum == want;
        }
        free(out);
    }
    cr_assert(done, "not every row was counted within 30 s");
    kill(pid, SIGTERM);
    int status;
    cr_assert(ts_wait(pid, 15000, &status), "spate run did not stop on SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM must stop it cleanly (exit 0)");
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

/* SQL and Spark give a global aggregate one row even when no row passes. */
Test(query, a_global_aggregate_of_no_rows_is_one_row)
{
    e2e_gen(env.input, 1, 200, 20, false, NULL);
    run_available_now("SELECT count(*) AS n, sum(x) AS s FROM activity WHERE x > 1000", "1", NULL, NULL);
    char *got = e2e_result_json(env.ckpt);
    cr_assert_str_eq(got, "{\"n\":0,\"s\":null}\n");
    free(got);
}
