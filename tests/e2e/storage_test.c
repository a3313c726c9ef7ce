/* tests/e2e/storage_test.c -- the checkpoint's disk fills up, or turns
 * read-only, while a query runs: the query stops with a clear error, the
 * checkpoint stays readable, and once space is back the restart is exact.
 * Runs in a private mount namespace on a small tmpfs made for the test. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;
static char *mnt, *ckpt;

/* A tmpfs of `size` at dir/disk, in a mount namespace of this test's own
 * (criterion runs each test in its own process). Skips when not allowed. */
static void setup(void)
{
    e2e_env_init(&env, "e2e-storage");
    mnt = sp_xasprintf("%s/disk", env.dir);
    ckpt = sp_xasprintf("%s/ckpt", mnt);
    cr_assert_eq(mkdir(mnt, 0755), 0);
}

static void teardown(void)
{
    umount2(mnt, MNT_DETACH);
    e2e_env_free(&env);
    free(mnt);
    free(ckpt);
}

TestSuite(storage, .init = setup, .fini = teardown);

static void mount_small(const char *size)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        cr_skip_test("cannot make a mount namespace here (needs root)");
    char *opts = sp_xasprintf("size=%s,mode=0755", size);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0)
        cr_skip_test("cannot mount a tmpfs here (needs root)");
    free(opts);
}

static void remount(const char *opts, unsigned long flags)
{
    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | flags, opts), 0, "remount %s", opts);
}

/* Many groups, so that state outgrows the small disk. */
#define SQL_WIDE "SELECT Arrival_Time, Device, count(*) AS n, sum(Index) AS si FROM activity GROUP BY Arrival_Time, Device"

static int run(char **err)
{
    return e2e_spate(60000, NULL, err, "run", "--source", env.src, "--sql", SQL_WIDE, "--checkpoint", ckpt,
                     "--schema", ORACLE_ACTIVITY_SCHEMA, "--trigger", "available-now",
                     "--max-files-per-trigger", "1", "--quiet", NULL);
}

static void expect_exact(void)
{
    static const char *const by[] = {"Arrival_Time", "Device"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "Index"}};
    static const char *const names[] = {"Arrival_Time", "Device", "n", "si"};
    oracle_t *o = oracle_new(by, 2, aggs, 2, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    cr_assert_eq(oracle_add_dir(o, env.input), 0);
    e2e_expect_result(ckpt, o, names, 0);
    oracle_destroy(&o);
}

Test(storage, a_full_disk_stops_the_query_and_the_restart_is_exact)
{
    mount_small("2m");
    e2e_gen(env.input, 8, 6000, 71, false, NULL);
    char *err = NULL;
    int rc = run(&err);
    cr_assert_eq(rc, 1, "a full disk must stop the query (exit 1), got %d: %s", rc, err);
    cr_assert(strstr(err, "spate: error: ") && strstr(err, "no space"), "%s", err);
    free(err);
    long long planned, committed;
    cr_assert(e2e_batches(ckpt, &planned, &committed), "the checkpoint must stay readable");
    cr_assert_lt(committed, 7, "the disk must have filled before the end");
    char *out = NULL;
    cr_assert_eq(e2e_spate(30000, &out, &err, "result", "--checkpoint", ckpt, "--format", "json", NULL), 0,
                 "%s", err);
    free(out);
    free(err);
    remount("size=256m", 0); /* space is back */
    rc = run(&err);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    expect_exact();
}

Test(storage, a_read_only_checkpoint_stops_the_query_clearly)
{
    mount_small("64m");
    e2e_gen(env.input, 3, 2000, 72, false, "a-");
    char *err = NULL;
    cr_assert_eq(run(&err), 0, "%s", err);
    free(err);
    e2e_gen(env.input, 2, 2000, 73, false, "b-");
    remount("size=64m", MS_RDONLY);
    int rc = run(&err);
    cr_assert(rc == 1 || rc == 3, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "spate: error: ") && strstr(err, "read-only"), "%s", err);
    free(err);
    char *out = NULL;
    cr_assert_eq(e2e_spate(30000, &out, &err, "result", "--checkpoint", ckpt, "--format", "json", NULL), 0,
                 "a read-only checkpoint is still readable: %s", err);
    free(out);
    free(err);
    remount("size=64m", 0);
    cr_assert_eq(run(&err), 0, "%s", err);
    free(err);
    expect_exact();
}
