/* tests/e2e/compat_test.c -- application changes on restart: compatible
 * ones resume, incompatible ones are refused before anything is written;
 * a checkpoint of a newer format is refused; a checkpoint made by this
 * release (tests/fixtures/ckpt-v1) opens and resumes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ckpt.h"
#include "ckpt_raw.h"
#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;

static void setup(void) { e2e_env_init(&env, "e2e-compat"); }

static void teardown(void) { e2e_env_free(&env); }

TestSuite(compat, .init = setup, .fini = teardown);

/* gen-activity with its first row at start_ms. */
static void gen_at(const char *out, int files, const char *prefix, int seed, const char *start_ms)
{
    char s[16], f[16];
    snprintf(s, sizeof s, "%d", seed);
    snprintf(f, sizeof f, "%d", files);
    const char *argv[] = {ts_env("SPATE_GEN"), "--out", out, "--files", f, "--rows-per-file", "800",
                          "--seed", s, "--prefix", prefix, "--start-time", start_ms, NULL};
    cr_assert_eq(ts_run(argv, 60000, NULL, NULL), 0);
}

static void base_run(void)
{
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                       "--trigger", "available-now", "--max-files-per-trigger", "1", "--sink", "memory:t",
                       "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
}

#define LATER_MS "2000000000000"

/* Rows of the files written after the change (Arrival_Time from LATER_MS)
 * pass the new WHERE x > 0; earlier rows were counted without a WHERE. */
static bool where_changed(const oracle_row_t *row, void *ctx)
{
    (void)ctx;
    oracle_value_t t, x;
    oracle_row_get(row, "Arrival_Time", ORACLE_BIGINT, &t);
    if (t.is_null || t.u.i < 2000000000000LL)
        return true;
    oracle_row_get(row, "x", ORACLE_DOUBLE, &x);
    return !x.is_null && x.u.d > 0;
}

Test(compat, compatible_changes_resume)
{
    gen_at(env.input, 3, "a-", 51, "1424686735090");
    base_run();
    gen_at(env.input, 2, "b-", 52, LATER_MS);
    /* another WHERE, SELECT order and aliases, trigger, limits, sink,
     * output mode and executor count: all compatible */
    char *sink = sp_xasprintf("json:%s/out", env.dir);
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql",
                       "SELECT count(*) AS n, gt AS activity FROM activity WHERE x > 0 GROUP BY gt",
                       "--checkpoint", env.ckpt, "--trigger", "once", "--max-files-per-trigger", "7",
                       "--sink", sink, "--output-mode", "update", "--executors", "1", "--quiet", NULL);
    cr_assert_eq(rc, 0, "a compatible change must resume: %s", err);
    free(err);
    free(sink);
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    static const char *const names[] = {"activity", "n"};
    oracle_t *o = oracle_new(by, 1, aggs, 1, where_changed, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, env.input), 0);
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

static void expect_refused(const char *what, const char *const *args)
{
    char *err = NULL;
    int rc = e2e_spatev(60000, NULL, &err, args);
    cr_assert_eq(rc, 3, "%s: exit %d, expected 3: %s", what, rc, err);
    cr_assert(strstr(err, "spate: error: ") && strstr(err, "new, empty checkpoint directory"), "%s: %s", what, err);
    cr_assert(strstr(err, what) != NULL, "the message must name the %s: %s", what, err);
    free(err);
}

Test(compat, incompatible_changes_are_refused_before_anything_is_written)
{
    gen_at(env.input, 2, "a-", 53, "1424686735090");
    base_run();
    char *before_ls = NULL, *before_result = e2e_result_json(env.ckpt);
    cr_assert_eq(e2e_spate(10000, &before_ls, NULL, "checkpoint", "ls", env.ckpt, NULL), 0);
    gen_at(env.input, 1, "b-", 54, LATER_MS); /* data it could have processed */

    const char *by_user[] = {"run", "--source", env.src, "--sql", "SELECT User, count(*) FROM activity GROUP BY User",
                             "--checkpoint", env.ckpt, "--trigger", "once", NULL};
    expect_refused("grouping keys", by_user);
    const char *more_aggs[] = {"run", "--source", env.src, "--sql",
                               "SELECT gt, count(*), sum(x) FROM activity GROUP BY gt", "--checkpoint", env.ckpt,
                               "--trigger", "once", NULL};
    expect_refused("aggregates", more_aggs);
    char *other = sp_xasprintf("other=json:%s", env.input);
    const char *renamed[] = {"run", "--source", other, "--sql", "SELECT gt, count(*) FROM other GROUP BY gt",
                             "--checkpoint", env.ckpt, "--trigger", "once", NULL};
    expect_refused("source name", renamed);
    char *otherdir = sp_xasprintf("%s/elsewhere", env.dir);
    char *cmd = sp_xasprintf("mkdir -p %s", otherdir);
    cr_assert_eq(system(cmd), 0);
    char *moved = sp_xasprintf("activity=json:%s", otherdir);
    const char *moved_args[] = {"run", "--source", moved, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                                "--trigger", "once", NULL};
    expect_refused("source directory", moved_args);
    const char *schema[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                            "--schema", "gt STRING, x DOUBLE", "--trigger", "once", NULL};
    expect_refused("schema", schema);
    const char *groups[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                            "--key-groups", "64", "--trigger", "once", NULL};
    expect_refused("key groups", groups);

    char *after_ls = NULL, *after_result = e2e_result_json(env.ckpt);
    cr_assert_eq(e2e_spate(10000, &after_ls, NULL, "checkpoint", "ls", env.ckpt, NULL), 0);
    cr_assert_str_eq(after_ls, before_ls, "a refused start wrote to the checkpoint");
    cr_assert_str_eq(after_result, before_result);
    free(before_ls);
    free(after_ls);
    free(before_result);
    free(after_result);
    free(other);
    free(otherdir);
    free(cmd);
    free(moved);
}

Test(compat, a_newer_checkpoint_format_is_refused)
{
    gen_at(env.input, 1, "a-", 55, "1424686735090");
    base_run();
    uint8_t rec[128];
    size_t n = craft_format(rec, sizeof rec, "spate-checkpoint", 99);
    raw_put(env.ckpt, "metadata", "format", 6, rec, n);
    const char *cmds[3][12] = {
        {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--trigger", "once", NULL},
        {"result", "--checkpoint", env.ckpt, NULL},
        {"checkpoint", "ls", env.ckpt, NULL},
    };
    for (int i = 0; i < 3; i++) {
        char *err = NULL;
        int rc = e2e_spatev(30000, NULL, &err, cmds[i]);
        cr_assert_eq(rc, 3, "%s: exit %d: %s", cmds[i][0], rc, err);
        cr_assert(strstr(err, "format 99") && strstr(err, "upgrade spate"), "%s", err);
        free(err);
    }
}

#define FIXTURE_SQL_NAMES {"gt", "Model", "n", "ci", "si", "sx", "mu", "mz", "ay"}

static oracle_t *fixture_oracle(const char *in)
{
    static const char *const by[] = {"gt", "Model"};
    static const oracle_agg_t aggs[] = {
        {ORACLE_COUNT_STAR, NULL}, {ORACLE_COUNT, "Index"}, {ORACLE_SUM, "Index"}, {ORACLE_SUM, "x"},
        {ORACLE_MIN, "User"},      {ORACLE_MAX, "z"},       {ORACLE_AVG, "y"},
    };
    oracle_t *o = oracle_new(by, 2, aggs, 7, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, in), 0);
    return o;
}

/* A checkpoint of checkpoint format `version` (tests/fixtures/ckpt-vN,
 * written by tests/fixtures/make-ckpt-vN) must open and resume in every
 * later release. Its source directory is recreated exactly: the generator
 * is deterministic. */
static void fixture_opens_and_resumes(int version)
{
    char fixdir[64], fixin[96];
    snprintf(fixdir, sizeof fixdir, "/tmp/spate-fixture-v%d", version);
    snprintf(fixin, sizeof fixin, "%s/input", fixdir);
    char *cmd = sp_xasprintf("rm -rf %s && mkdir -p %s && cp -r %s/tests/fixtures/ckpt-v%d %s/ckpt", fixdir,
                             fixin, ts_env("SPATE_SOURCE_DIR"), version, env.dir);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    const char *gen[] = {ts_env("SPATE_GEN"), "--out", fixin, "--files", "3", "--rows-per-file", "1000",
                         "--seed", "7", NULL};
    cr_assert_eq(ts_run(gen, 60000, NULL, NULL), 0);
    static const char *const names[] = FIXTURE_SQL_NAMES;

    /* it opens, read as it is: the result is what those three files give */
    oracle_t *o = fixture_oracle(fixin);
    e2e_expect_result(env.ckpt, o, names, 1e-9);
    oracle_destroy(&o);

    /* it resumes: two more files, processed on top of the kept state */
    const char *more[] = {ts_env("SPATE_GEN"), "--out", fixin, "--files", "2", "--rows-per-file", "700",
                          "--seed", "8", "--prefix", "later-", NULL};
    cr_assert_eq(ts_run(more, 60000, NULL, NULL), 0);
    char *fsrc = sp_xasprintf("activity=json:%s", fixin);
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", fsrc, "--sql",
                       "SELECT gt, Model, count(*) AS n, count(Index) AS ci, sum(Index) AS si, sum(x) AS sx, "
                       "min(User) AS mu, max(z) AS mz, avg(y) AS ay FROM activity GROUP BY gt, Model",
                       "--checkpoint", env.ckpt, "--trigger", "available-now", "--sink", "memory:fixture", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(err, "resuming after batch 1"), "it must resume, not start over: %s", err);
    if (version < CKPT_FORMAT_VERSION)
        cr_assert(strstr(err, "upgraded from format"), "an old format is upgraded first: %s", err);
    free(err);
    free(fsrc);
    o = fixture_oracle(fixin);
    e2e_expect_result(env.ckpt, o, names, 1e-9);
    oracle_destroy(&o);
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(committed, 2, "two batches from the fixture and one new");
}

/* spate 0.1.0's first format: state keys behind a key group. */
Test(compat, the_format_1_fixture_opens_and_resumes)
{
    fixture_opens_and_resumes(1);
}

Test(compat, the_format_2_fixture_opens_and_resumes)
{
    fixture_opens_and_resumes(2);
}
