/* tests/e2e/restart_test.c -- kill the driver (SIGKILL) at every step of
 * the batch protocol and at random moments, kill executors, and restart on
 * the same checkpoint: every input row is counted exactly once, a planned
 * batch re-runs with exactly its files, the json sink neither loses nor
 * duplicates a batch, and executors never outlive their driver. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;
static char *sinkdir, *sink;

static void setup(void)
{
    e2e_env_init(&env, "e2e-restart");
    sinkdir = sp_xasprintf("%s/out", env.dir);
    sink = sp_xasprintf("json:%s", sinkdir);
}

static void teardown(void)
{
    e2e_env_free(&env);
    free(sinkdir);
    free(sink);
}

TestSuite(restart, .init = setup, .fini = teardown);

/* Executors started by driver `pid` are named local-<pid>-<n>. */
static bool executors_of(pid_t driver)
{
    char needle[64];
    snprintf(needle, sizeof needle, "local-%d-", (int)driver);
    DIR *d = opendir("/proc");
    bool found = false;
    struct dirent *de;
    while (!found && d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
        size_t len = 0;
        char *cmd = ts_read_file(path, &len);
        if (cmd == NULL)
            continue;
        for (size_t i = 0; i + 1 < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        found = strstr(cmd, needle) != NULL;
        free(cmd);
    }
    if (d)
        closedir(d);
    return found;
}

/* The pid of a child of `parent` whose command line contains needle, or 0. */
static pid_t child_with(pid_t parent, const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t found = 0;
    while (!found && d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        char *stat = ts_read_file(path, NULL);
        if (stat == NULL)
            continue;
        const char *close_paren = strrchr(stat, ')');
        int ppid = 0;
        if (close_paren == NULL || sscanf(close_paren + 2, "%*c %d", &ppid) != 1 || ppid != parent) {
            free(stat);
            continue;
        }
        free(stat);
        snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
        size_t len = 0;
        char *cmd = ts_read_file(path, &len);
        if (cmd) {
            for (size_t i = 0; i + 1 < len; i++)
                if (cmd[i] == '\0')
                    cmd[i] = ' ';
            if (strstr(cmd, needle))
                found = (pid_t)atoi(de->d_name);
            free(cmd);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* SIGKILL local executor 0 of driver `driver`, by its pid. */
static void kill_executor0(pid_t driver)
{
    char needle[64];
    snprintf(needle, sizeof needle, "--id local-%d-0 ", (int)driver);
    pid_t e = child_with(driver, needle);
    if (e > 0)
        kill(e, SIGKILL);
}

static pid_t orphan_check_pid;
static bool no_executors_left(void *ctx)
{
    (void)ctx;
    return !executors_of(orphan_check_pid);
}

/* Run to the end (available-now), with an optional crash point. Returns the
 * driver's wait status. */
static int run_once(const char *fault, const char *max_files)
{
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--trigger", "available-now", "--max-files-per-trigger", max_files,
                          "--sink", sink, "--output-mode", "update", "--executors", "2",
                          "--split-size", "64K", "--quiet", NULL};
    char *fault_env = fault ? sp_xasprintf("SPATE_FAULT=%s", fault) : NULL;
    pid_t pid = e2e_spawn(env.dir, "run", fault_env, args);
    int status = 0;
    cr_assert(ts_wait(pid, 60000, &status), "spate run did not finish");
    if (fault) {
        orphan_check_pid = pid;
        cr_assert(ts_poll(no_executors_left, NULL, 5000), "executors outlived their SIGKILLed driver");
    }
    free(fault_env);
    return status;
}

static void read_batch_files(int64_t batch, char ***paths, size_t *n)
{
    ckpt_t *c = NULL;
    sp_err_t err;
    cr_assert_eq(ckpt_open(env.ckpt, CKPT_READONLY, &c, &err), 0, "%s", err.msg);
    ckpt_batch_t b;
    cr_assert_eq(ckpt_batch_read(c, batch, &b, &err), 0, "%s", err.msg);
    *n = b.nfiles;
    *paths = calloc(b.nfiles + 1, sizeof(char *));
    for (size_t i = 0; i < b.nfiles; i++)
        (*paths)[i] = strdup(b.files[i].path);
    ckpt_batch_free(&b);
    ckpt_close(&c);
}

static void free_paths(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

/* The union of the update-mode json sink files, last value per group,
 * must equal the final result; and there is one file per batch. */
static void expect_sink_consistent(long long committed)
{
    for (long long b = 0; b <= committed + 1; b++) {
        char *path = sp_xasprintf("%s/batch-%010lld.json", sinkdir, b);
        char *text = ts_read_file(path, NULL);
        if (b <= committed)
            cr_assert_not_null(text, "the sink lost batch %lld", b);
        else
            cr_assert_null(text, "the sink wrote a batch that was never committed");
        free(text);
        free(path);
    }
    DIR *d = opendir(sinkdir);
    cr_assert_not_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "batch-", 6) == 0)
            files++;
    closedir(d);
    cr_assert_eq(files, committed + 1, "one sink file per committed batch");
}

static void crash_and_resume(const char *point, int64_t batch)
{
    e2e_gen(env.input, 6, 600, 21, true, "a-");
    char fault[64];
    snprintf(fault, sizeof fault, "%s:%lld", point, (long long)batch);
    int status = run_once(fault, "2");
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the crash point %s was not reached", fault);
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(planned, batch);
    cr_assert_eq(committed, strcmp(point, "after-commit") == 0 ? batch : batch - 1);
    char **before = NULL;
    size_t nbefore = 0;
    read_batch_files(batch, &before, &nbefore);

    /* New files arrive while the driver is down: the planned batch must not
     * take them, later batches must. */
    e2e_gen(env.input, 3, 500, 22, false, "b-");
    status = run_once(NULL, "2");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "restart failed");
    char **after = NULL;
    size_t nafter = 0;
    read_batch_files(batch, &after, &nafter);
    cr_assert_eq(nafter, nbefore, "batch %lld re-ran with other files", (long long)batch);
    for (size_t i = 0; i < nbefore; i++)
        cr_assert_str_eq(after[i], before[i]);
    free_paths(before, nbefore);
    free_paths(after, nafter);

    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(planned, committed);
    expect_sink_consistent(committed);
}

Test(restart, killed_after_the_wal_write_batch_0) { crash_and_resume("after-plan", 0); }
Test(restart, killed_after_the_wal_write_batch_2) { crash_and_resume("after-plan", 2); }
Test(restart, killed_while_tasks_run) { crash_and_resume("mid-batch", 1); }
Test(restart, killed_after_the_sink_wrote_before_the_commit) { crash_and_resume("after-sink", 1); }
Test(restart, killed_right_after_a_commit) { crash_and_resume("after-commit", 1); }

/* Random SIGKILLs of the driver, and of single executors, while files keep
 * arriving; then run to the end and compare. */
Test(restart, random_kills_while_files_arrive)
{
    srand((unsigned)time(NULL));
    unsigned seed = (unsigned)rand();
    srand(seed);
    cr_log_info("seed %u", seed);
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--max-files-per-trigger", "2", "--sink", sink, "--output-mode", "update",
                          "--executors", "2", "--split-size", "32K", "--executor-timeout", "1s",
                          "--quiet", NULL};
    int round = 0;
    for (; round < 6; round++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "r%d-", round);
        e2e_gen(env.input, 3, 400 + rand() % 400, 100 + round, round % 2 == 1, prefix);
        pid_t pid = e2e_spawn(env.dir, "run", NULL, args);
        struct timespec ts = {0, (long)(rand() % 400) * 1000000L};
        nanosleep(&ts, NULL);
        if (round % 3 == 2) {
            /* kill one executor; the driver must retry its tasks */
            kill_executor0(pid);
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        ts_wait(pid, 10000, NULL);
        orphan_check_pid = pid;
        cr_assert(ts_poll(no_executors_left, NULL, 5000), "executors outlived their SIGKILLed driver");
    }
    int status = run_once(NULL, "2");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    expect_sink_consistent(committed);
}

/* An executor killed in the middle of a batch: its tasks go elsewhere. */
Test(restart, a_killed_executor_is_replaced_and_its_tasks_retried)
{
    e2e_gen(env.input, 8, 3000, 31, false, NULL);
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--trigger", "available-now", "--max-files-per-trigger", "1", "--sink", "memory:t",
                          "--executors", "2", "--split-size", "16K", "--executor-timeout", "1s", NULL};
    char *slow_env = sp_xstrdup("SPATE_TEST_SLOW_TASK_MS=20");
    pid_t pid = e2e_spawn(env.dir, "run", slow_env, args);
    /* kill executor 0 a few times while the batches run */
    for (int k = 0; k < 3; k++) {
        struct timespec ts = {0, 150 * 1000000L};
        nanosleep(&ts, NULL);
        kill_executor0(pid);
    }
    int status;
    cr_assert(ts_wait(pid, 60000, &status));
    free(slow_env);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

/* A file whose task kills every executor that runs it must stop the query
 * with a message naming it, not loop forever. */
Test(restart, a_task_that_keeps_killing_executors_fails_the_query)
{
    e2e_gen(env.input, 2, 300, 32, false, NULL);
    e2e_gen(env.input, 1, 300, 33, false, "poison-");
    const char *args[] = {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--trigger", "available-now", "--sink", "memory:t", "--executors", "2",
                          "--max-task-failures", "2", NULL};
    pid_t pid = e2e_spawn(env.dir, "run", "SPATE_FAULT=executor-crash:poison-", args);
    int status;
    cr_assert(ts_wait(pid, 60000, &status), "the query did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "expected exit 1");
    char *errpath = sp_xasprintf("%s/run.err", env.dir);
    char *err = ts_read_file(errpath, NULL);
    cr_assert(strstr(err, "spate: error: ") && strstr(err, "poison-00000.json") &&
                  strstr(err, "executors were lost while running it"),
              "%s", err);
    free(err);
    free(errpath);
}

/* A file planned into a batch and then deleted cannot be read on any
 * attempt: after --max-task-failures the query stops with an error naming
 * the file range and the cause of each attempt (as Spark fails on a missing
 * file). */
Test(restart, a_task_that_fails_every_attempt_names_range_and_causes)
{
    e2e_gen(env.input, 2, 500, 34, false, NULL);
    int status = run_once("after-plan:0", "1"); /* batch 0 = part-00000, in the WAL */
    cr_assert(WIFSIGNALED(status));
    char *victim = sp_xasprintf("%s/part-00000.json", env.input);
    cr_assert_eq(unlink(victim), 0);
    char *err = NULL;
    int rc = e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint",
                       env.ckpt, "--trigger", "available-now", "--max-files-per-trigger", "1", "--split-size",
                       "64K", "--max-task-failures", "3", "--quiet", NULL);
    cr_assert_eq(rc, 1, "%s", err);
    const char *e = strstr(err, "spate: error: ");
    cr_assert_not_null(e, "%s", err);
    /* either of the file's two ranges may run out of attempts first */
    cr_assert(strstr(e, victim) && (strstr(e, "bytes 0-65536)") || strstr(e, "bytes 65536-")) &&
                  strstr(e, "failed 3 times"),
              "%s", e);
    cr_assert_eq(e2e_count(e, "No such file or directory"), 3, "each attempt's cause: %s", e);
    cr_assert(strstr(e, "attempt 0 on ") && strstr(e, "attempt 2 on "), "%s", e);
    free(err);
    free(victim);
}
