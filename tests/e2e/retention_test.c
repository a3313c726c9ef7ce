/* tests/e2e/retention_test.c -- the checkpoint does not grow without
 * bound: old batch records are pruned (--min-batches-to-retain), and the
 * seen-file index forgets files that --clean-source moved away or that
 * --max-file-age ignores. Results stay exact. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;
static void setup(void) { e2e_env_init(&env, "e2e-retention"); }
static void teardown(void) { e2e_env_free(&env); }
TestSuite(retention, .init = setup, .fini = teardown);

static const char *const names[] = {"gt", "count"};

/* Entries of a database as `spate checkpoint ls` lists them. */
static long long entries(const char *db)
{
    char *out = NULL;
    cr_assert_eq(e2e_spate(10000, &out, NULL, "checkpoint", "ls", env.ckpt, NULL), 0);
    long long n = -1;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[32];
        long long e;
        if (sscanf(line, "%31s %lld", name, &e) == 2 && strcmp(name, db) == 0)
            n = e;
    }
    free(out);
    return n;
}

/* spate run, available-now, one file per batch, plus the extra flags
 * (NULL-terminated). */
static void run(const char *first, ...)
{
    const char *args[32] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                            "--trigger", "available-now", "--max-files-per-trigger", "1", "--quiet"};
    int n = 12;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char *err = NULL;
    cr_assert_eq(e2e_spatev(60000, NULL, &err, args), 0, "%s", err);
    free(err);
}

Test(retention, old_batch_records_are_pruned_and_resume_still_works)
{
    e2e_gen(env.input, 6, 200, 91, false, "a-");
    run("--min-batches-to-retain", "3", NULL);
    cr_assert_eq(entries("offsets"), 3);
    cr_assert_eq(entries("commits"), 3);
    cr_assert_eq(entries("sink"), 3);
    cr_assert_eq(entries("sources"), 6, "the seen-file index keeps every file");
    e2e_gen(env.input, 2, 200, 92, false, "b-");
    run("--min-batches-to-retain", "3", NULL);
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(committed, 7);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

Test(retention, clean_source_archives_and_forgets)
{
    e2e_gen(env.input, 4, 300, 93, false, NULL);
    char *archive = sp_xasprintf("%s/archive", env.dir);
    run("--clean-source", "archive", "--source-archive-dir", archive, NULL);
    oracle_t *o = e2e_oracle_count_by_gt(archive); /* the files now live there */
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
    cr_assert_eq(entries("sources"), 0, "moved files are forgotten by the index");
    char *moved = sp_xasprintf("%s/part-00001.json", archive), *gone = sp_xasprintf("%s/part-00001.json", env.input);
    struct stat st;
    cr_assert_eq(stat(moved, &st), 0, "archived");
    cr_assert_neq(stat(gone, &st), 0, "no longer in the source");
    /* a new file of an old name is new data */
    e2e_gen(env.input, 1, 300, 94, false, NULL);
    run("--clean-source", "delete", NULL);
    cr_assert_neq(stat(gone, &st), 0);
    char *first = sp_xasprintf("%s/part-00000.json", env.input);
    cr_assert_neq(stat(first, &st), 0, "deleted");
    free(first);
    free(moved);
    free(gone);
    free(archive);
}

/* Files older than the newest by more than --max-file-age are ignored, and
 * the index forgets old entries. */
Test(retention, max_file_age_ignores_and_forgets_old_files)
{
    e2e_gen(env.input, 2, 300, 95, false, "old-");
    /* make the old files two hours old */
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 7200;
    tv[1] = tv[0];
    for (int i = 0; i < 2; i++) {
        char *p = sp_xasprintf("%s/old-%05d.json", env.input, i);
        cr_assert_eq(utimes(p, tv), 0);
        free(p);
    }
    e2e_gen(env.input, 2, 300, 96, false, "new-");
    run("--max-file-age", "1h", NULL);
    /* the result: only the new files */
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    oracle_t *o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    for (int i = 0; i < 2; i++) {
        char *p = sp_xasprintf("%s/new-%05d.json", env.input, i);
        cr_assert_eq(oracle_add_file(o, p), 0);
        free(p);
    }
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
    cr_assert_eq(entries("sources"), 2, "only the new files are in the index");
}
