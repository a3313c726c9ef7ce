/* tests/e2e/cluster_test.c -- a driver with executors that come and go
 * while the query runs (real processes on loopback): joining, draining on
 * SIGTERM, freezing (SIGSTOP) past the heartbeat timeout and coming back
 * with late results, no executor at all for a while, and the driver
 * restarting under running executors. The answer stays exact. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;

static char *bind_ep;

static void setup(void)
{
    e2e_env_init(&env, "e2e-cluster");
    bind_ep = sp_xasprintf("tcp://127.0.0.1:%d", e2e_free_port());
}

static void teardown(void)
{
    e2e_env_free(&env);
    free(bind_ep);
}

TestSuite(cluster, .init = setup, .fini = teardown);

static pid_t start_driver(const char *name, const char *trigger, const char *extra_env)
{
    const char *args[] = {"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--bind", bind_ep, "--trigger", trigger, "--max-files-per-trigger", "2",
                          "--split-size", "16K", "--executor-timeout", "1s", "--heartbeat", "200ms",
                          "--sink", "memory:t", NULL};
    return e2e_spawn(env.dir, name, extra_env, args);
}

static pid_t start_executor(const char *name, const char *extra_env)
{
    const char *args[] = {"executor", "--driver", bind_ep, "--driver-timeout", "2s", "--id", name, NULL};
    return e2e_spawn(env.dir, name, extra_env, args);
}

static int oracle_rows_total;

static bool all_counted(void *ctx)
{
    (void)ctx;
    char *out = NULL;
    if (e2e_spate(10000, &out, NULL, "result", "--checkpoint", env.ckpt, "--format", "csv", NULL) != 0) {
        free(out);
        return false;
    }
    long sum = 0;
    char *save = NULL;
    strtok_r(out, "\n", &save);
    for (char *line; (line = strtok_r(NULL, "\n", &save)) != NULL;) {
        char *comma = strrchr(line, ',');
        if (comma)
            sum += atol(comma + 1);
    }
    free(out);
    return sum == oracle_rows_total;
}

static void expect_exact(void)
{
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

static void stop(pid_t pid, const char *what)
{
    kill(pid, SIGTERM);
    int status;
    cr_assert(ts_wait(pid, 15000, &status), "%s did not stop on SIGTERM", what);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: SIGTERM must end it cleanly", what);
}

Test(cluster, executors_join_and_drain_while_the_query_runs)
{
    e2e_gen(env.input, 4, 2000, 61, false, "a-");
    pid_t driver = start_driver("driver", "default", NULL);
    pid_t a = start_executor("exec-a", "SPATE_TEST_SLOW_TASK_MS=10");
    e2e_wait_log(env.dir, "driver", "executor exec-a registered", 10000);
    pid_t b = start_executor("exec-b", NULL); /* joins mid-query */
    e2e_gen(env.input, 4, 2000, 62, false, "b-");
    e2e_wait_log(env.dir, "driver", "executor exec-b registered", 10000);
    stop(a, "a draining executor"); /* finishes its tasks, says BYE, exits 0 */
    pid_t c = start_executor("exec-c", NULL);
    e2e_gen(env.input, 2, 2000, 63, false, "c-");
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    oracle_rows_total = (int)oracle_rows(o);
    oracle_destroy(&o);
    cr_assert(ts_poll(all_counted, NULL, 60000), "not every row was counted");
    stop(driver, "the driver");
    stop(b, "executor b");
    stop(c, "executor c");
    expect_exact();
    char *log = sp_xasprintf("%s/driver.err", env.dir);
    char *text = ts_read_file(log, NULL);
    cr_assert(strstr(text, "executor exec-b registered") && strstr(text, "executor exec-a said goodbye"), "%s",
              text);
    free(text);
    free(log);
}

Test(cluster, a_frozen_executor_is_lost_and_its_late_results_ignored)
{
    e2e_gen(env.input, 6, 3000, 64, false, NULL);
    pid_t driver = start_driver("driver", "available-now", NULL);
    /* slow tasks, so the freeze lands while it holds some */
    pid_t a = start_executor("exec-a", "SPATE_TEST_SLOW_TASK_MS=150");
    e2e_wait_log(env.dir, "driver", "executor exec-a registered", 10000);
    kill(a, SIGSTOP); /* with a task in hand: tasks take 150 ms and the batch is ready */
    pid_t b = start_executor("exec-b", NULL);
    e2e_wait_log(env.dir, "driver", "exec-a (", 10000);
    e2e_wait_log(env.dir, "driver", "lost: no heartbeat", 10000); /* past the 1 s timeout; b reruns its tasks */
    kill(a, SIGCONT); /* a wakes up and sends results of attempts nobody waits for */
    int status;
    cr_assert(ts_wait(driver, 60000, &status), "the query did not finish");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    expect_exact();
    char *log = sp_xasprintf("%s/driver.err", env.dir);
    char *text = ts_read_file(log, NULL);
    cr_assert(strstr(text, "executor exec-a") && strstr(text, "lost: no heartbeat"), "%s", text);
    free(text);
    free(log);
    /* the executors are now without a driver: they drain and exit */
    stop(a, "executor a");
    stop(b, "executor b");
}

Test(cluster, with_no_executor_the_driver_waits_then_continues)
{
    e2e_gen(env.input, 2, 1000, 65, false, NULL);
    pid_t driver = start_driver("driver", "available-now", NULL);
    e2e_wait_log(env.dir, "driver", "waiting for executors", 10000); /* it says it waits */
    int status;
    cr_assert_eq(ts_wait(driver, 10, &status), 0, "the driver must wait, not fail");
    pid_t a = start_executor("exec-a", NULL);
    cr_assert(ts_wait(driver, 30000, &status), "the query did not finish once an executor came");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    expect_exact();
    stop(a, "the executor");
}

Test(cluster, executors_find_a_restarted_driver_on_their_own)
{
    e2e_gen(env.input, 4, 2000, 66, false, "a-");
    pid_t driver = start_driver("driver1", "default", NULL);
    pid_t a = start_executor("exec-a", NULL);
    pid_t b = start_executor("exec-b", NULL);
    e2e_wait_log(env.dir, "driver1", "executor exec-a registered", 10000);
    e2e_wait_log(env.dir, "driver1", "executor exec-b registered", 10000);
    kill(driver, SIGKILL);
    ts_wait(driver, 5000, NULL);
    e2e_gen(env.input, 3, 2000, 67, false, "b-"); /* data arrives while it is down */
    driver = start_driver("driver2", "default", NULL);
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    oracle_rows_total = (int)oracle_rows(o);
    oracle_destroy(&o);
    cr_assert(ts_poll(all_counted, NULL, 60000), "the same executors did not finish the job");
    /* both executors, not restarted, registered with the new driver */
    e2e_wait_log(env.dir, "driver2", "executor exec-a registered", 15000);
    e2e_wait_log(env.dir, "driver2", "executor exec-b registered", 15000);
    stop(driver, "the driver");
    stop(a, "executor a");
    stop(b, "executor b");
    expect_exact();
}

/* Stop, then restart on the same checkpoint with other executor counts and
 * slots: the result is identical to the byte, and exact. */
Test(cluster, resize_and_restart_gives_identical_results)
{
    e2e_gen(env.input, 4, 2500, 68, false, "a-");
    const char *sql = "SELECT gt, User, count(*) AS n, sum(x) AS sx, avg(y) AS ay, max(z) AS mz FROM activity "
                      "GROUP BY gt, User";
    char *results[2];
    for (int plan = 0; plan < 2; plan++) {
        ts_rmtree(env.ckpt);
        const char *first[] = {"1", "3"}, *slots[] = {"1", "2"}, *second[] = {"3", "1"};
        char *ck = env.ckpt;
        const char *a1[] = {"run", "--source", env.src, "--sql", sql, "--checkpoint", ck, "--trigger",
                            "available-now", "--max-files-per-trigger", "2", "--split-size", "32K",
                            "--executors", first[plan], "--slots", slots[plan], "--quiet", NULL};
        char *err = NULL;
        cr_assert_eq(e2e_spatev(60000, NULL, &err, a1), 0, "%s", err);
        free(err);
        if (plan == 0)
            e2e_gen(env.input, 3, 2500, 69, false, "b-");
        const char *a2[] = {"run", "--source", env.src, "--sql", sql, "--checkpoint", ck, "--trigger",
                            "available-now", "--max-files-per-trigger", "2", "--split-size", "32K",
                            "--executors", second[plan], "--slots", slots[1 - plan], "--quiet", NULL};
        cr_assert_eq(e2e_spatev(60000, NULL, &err, a2), 0, "%s", err);
        free(err);
        results[plan] = e2e_result_json(env.ckpt);
    }
    cr_assert_str_eq(results[0], results[1], "another executor count or slot count changed the result");
    static const char *const by[] = {"gt", "User"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "x"}, {ORACLE_AVG, "y"},
                                        {ORACLE_MAX, "z"}};
    static const char *const names[] = {"gt", "User", "n", "sx", "ay", "mz"};
    oracle_t *o = oracle_new(by, 2, aggs, 4, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    oracle_add_dir(o, env.input);
    char *diff = NULL;
    cr_assert_eq(oracle_compare_jsonl(o, names, results[0], 1e-9, &diff), 0, "%s", diff);
    oracle_destroy(&o);
    free(results[0]);
    free(results[1]);
}
