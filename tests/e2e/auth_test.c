/* tests/e2e/auth_test.c -- who may join, with real processes on loopback:
 * keys made by `spate keygen`; a driver with CURVE keys runs a query with an
 * authorised executor and the answer matches the oracle; an unauthorised
 * executor never gets a task (the driver logs the refusal) until an
 * authorised one joins, or until its own key is authorised while it runs;
 * an executor that trusts another driver key, or has no keys, never
 * registers and says so; a network bind without keys is refused unless
 * --insecure. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "e2e.h"
#include "sp_util.h"

static e2e_env_t env;

static int port;
static char *bind_ep, *keys, *authorized;

/* Processes still running, killed by teardown when a test fails early. */
static pid_t procs[8];
static int nprocs;

static char *key_path(const char *name, const char *ext) { return sp_xasprintf("%s/%s.%s", keys, name, ext); }

/* spate keygen --out keys --name name; returns its public key (malloc'd). */
static char *keygen(const char *name)
{
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(10000, &out, &err, "keygen", "--out", keys, "--name", name, NULL);
    cr_assert_eq(rc, 0, "spate keygen: %s", err);
    char *want_key = key_path(name, "key"), *want_pub = key_path(name, "pub");
    cr_assert(strstr(out, want_key) && strstr(out, want_pub), "keygen names its files: %s", out);
    const char *p = strstr(out, "public=");
    cr_assert_not_null(p, "%s", out);
    char *pub = sp_xstrndup(p + 7, AUTH_KEY_Z85_LEN);
    free(want_key);
    free(want_pub);
    free(out);
    free(err);
    return pub;
}

/* Copy keys/name.pub into the authorised directory. */
static void authorise(const char *name)
{
    char *from = key_path(name, "pub");
    char *to = sp_xasprintf("%s/%s.pub", authorized, name);
    size_t n;
    char *text = ts_read_file(from, &n);
    cr_assert_not_null(text);
    /* by a temporary name and rename, as one should put files a running
     * process reads */
    cr_assert_eq(ts_put_file(authorized, strrchr(to, '/') + 1, text, n), 0);
    free(text);
    free(from);
    free(to);
}

static void setup(void)
{
    e2e_env_init(&env, "e2e-auth");
    port = e2e_free_port();
    bind_ep = sp_xasprintf("tcp://127.0.0.1:%d", port);
    keys = sp_xasprintf("%s/keys", env.dir);
    authorized = sp_xasprintf("%s/authorized", env.dir);
    cr_assert_eq(mkdir(authorized, 0755), 0);
    nprocs = 0;
}

static void teardown(void)
{
    for (int i = 0; i < nprocs; i++)
        if (procs[i] > 0)
            ts_kill(procs[i], SIGKILL);
    e2e_env_free(&env);
    free(bind_ep);
    free(keys);
    free(authorized);
}

TestSuite(auth, .init = setup, .fini = teardown);

static pid_t track(pid_t pid)
{
    cr_assert_lt(nprocs, 8);
    procs[nprocs++] = pid;
    return pid;
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < nprocs; i++)
        if (procs[i] == pid)
            procs[i] = 0;
}

/* A driver for available-now with CURVE keys (keyed) or without, on ep. */
static pid_t start_driver(const char *name, const char *ep, bool keyed, const char *extra)
{
    char *secret = key_path("driver", "key");
    const char *args[40] = {"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                            "--bind", ep, "--trigger", "available-now", "--split-size", "16K",
                            "--executor-timeout", "2s", "--heartbeat", "200ms", "--sink", "memory:t",
                            "--stop-timeout", "1s"};
    int n = 21;
    if (keyed) {
        args[n++] = "--curve-secret";
        args[n++] = secret;
        args[n++] = "--authorized-keys";
        args[n++] = authorized;
    }
    if (extra)
        args[n++] = extra;
    args[n] = NULL;
    pid_t pid = track(e2e_spawn(env.dir, name, NULL, args));
    free(secret);
    return pid;
}

/* An executor named name, with its own key file `key` (NULL: no keys) and
 * trusting the driver key of `driver_pub` (a key name). */
static pid_t start_executor(const char *name, const char *key, const char *driver_pub)
{
    char *secret = key ? key_path(key, "key") : NULL;
    char *dpub = driver_pub ? key_path(driver_pub, "pub") : NULL;
    const char *args[20] = {"executor", "--driver", bind_ep, "--driver-timeout", "2s", "--id", name};
    int n = 7;
    if (secret) {
        args[n++] = "--curve-secret";
        args[n++] = secret;
        args[n++] = "--driver-key";
        args[n++] = dpub;
    }
    args[n] = NULL;
    pid_t pid = track(e2e_spawn(env.dir, name, NULL, args));
    free(secret);
    free(dpub);
    return pid;
}

static char *log_of(const char *name)
{
    char *path = sp_xasprintf("%s/%s.err", env.dir, name);
    char *text = ts_read_file(path, NULL);
    free(path);
    return text ? text : sp_xstrdup("");
}

static void expect_finished(pid_t driver, int timeout_ms)
{
    int status;
    char *text = NULL;
    if (!ts_wait(driver, timeout_ms, &status)) {
        text = log_of("driver");
        cr_assert_fail("the query did not finish within %d ms:\n%s", timeout_ms, text);
    }
    untrack(driver);
    text = log_of("driver");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "driver status %d:\n%s", status, text);
    free(text);
}

static void stop(pid_t pid, const char *what)
{
    kill(pid, SIGTERM);
    int status;
    cr_assert(ts_wait(pid, 15000, &status), "%s did not stop on SIGTERM", what);
    untrack(pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: SIGTERM must end it cleanly", what);
}

static void expect_exact(void)
{
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
}

static void expect_nothing_committed(void)
{
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed), "cannot read the checkpoint");
    cr_assert_eq(committed, -1, "no batch may commit without an executor (committed %lld)", committed);
}

/* ---- tests ---------------------------------------------------------------------- */

Test(auth, an_authorised_executor_runs_the_query)
{
    free(keygen("driver"));
    free(keygen("exec-a"));
    authorise("exec-a");
    e2e_gen(env.input, 4, 2000, 71, false, NULL);
    pid_t driver = start_driver("driver", bind_ep, true, NULL);
    pid_t a = start_executor("exec-a", "exec-a", "driver");
    expect_finished(driver, 60000);
    expect_exact();
    char *dlog = log_of("driver");
    cr_assert(strstr(dlog, "executors must present a key authorised in ") && strstr(dlog, authorized), "%s", dlog);
    cr_assert(strstr(dlog, "executor exec-a registered"), "%s", dlog);
    cr_assert_null(strstr(dlog, "refused"), "%s", dlog);
    free(dlog);
    stop(a, "the executor");
}

Test(auth, an_unauthorised_executor_never_gets_a_task)
{
    free(keygen("driver"));
    free(keygen("exec-good"));
    char *bad_pub = keygen("exec-bad");
    authorise("exec-good");
    e2e_gen(env.input, 3, 2000, 72, false, NULL);
    pid_t driver = start_driver("driver", bind_ep, true, NULL);
    pid_t bad = start_executor("exec-bad", "exec-bad", "driver");
    char *refusal = sp_xasprintf("refused executor at 127.0.0.1: public key %s is not in %s", bad_pub, authorized);
    e2e_wait_log(env.dir, "driver", refusal, 15000);
    e2e_wait_log(env.dir, "driver", "waiting for executors", 15000);
    e2e_wait_log(env.dir, "exec-bad", "no answer from driver", 15000); /* it says so after 5 s */
    int status;
    cr_assert_eq(ts_wait(driver, 10, &status), 0, "the driver must wait for an authorised executor");
    expect_nothing_committed();
    char *blog = log_of("exec-bad");
    cr_assert_null(strstr(blog, "registered with driver"), "%s", blog);
    free(blog);

    pid_t good = start_executor("exec-good", "exec-good", "driver");
    expect_finished(driver, 60000);
    expect_exact();
    char *dlog = log_of("driver");
    cr_assert(strstr(dlog, "executor exec-good registered"), "%s", dlog);
    cr_assert_null(strstr(dlog, "executor exec-bad registered"), "%s", dlog);
    /* refusals are rate-limited: a handful of lines at most, never a flood */
    cr_assert_leq(e2e_count(dlog, "refused executor"), 20, "%s", dlog);
    free(dlog);
    stop(good, "the authorised executor");
    stop(bad, "the refused executor");
    free(refusal);
    free(bad_pub);
}

Test(auth, a_key_authorised_while_the_driver_runs_lets_its_executor_in)
{
    free(keygen("driver"));
    free(keygen("exec-late"));
    e2e_gen(env.input, 2, 2000, 73, false, NULL);
    pid_t driver = start_driver("driver", bind_ep, true, NULL);
    pid_t late = start_executor("exec-late", "exec-late", "driver");
    e2e_wait_log(env.dir, "driver", "refused executor at 127.0.0.1", 15000);
    authorise("exec-late"); /* no restart of either: the executor tries again by itself */
    expect_finished(driver, 60000);
    expect_exact();
    e2e_wait_log(env.dir, "driver", "executor exec-late registered", 1000);
    stop(late, "the executor");
}

Test(auth, executors_with_the_wrong_driver_key_or_none_never_register)
{
    free(keygen("driver"));
    free(keygen("exec-a"));
    free(keygen("impostor")); /* a key the driver does not hold */
    authorise("exec-a");
    e2e_gen(env.input, 2, 1000, 74, false, NULL);
    pid_t driver = start_driver("driver", bind_ep, true, NULL);
    pid_t wrong = start_executor("exec-wrong", "exec-a", "impostor");
    pid_t keyless = start_executor("exec-keyless", NULL, NULL);
    e2e_wait_log(env.dir, "exec-wrong", "no answer from driver", 15000);
    e2e_wait_log(env.dir, "exec-wrong", "is --driver-key its public key", 1000);
    e2e_wait_log(env.dir, "exec-keyless", "no answer from driver", 15000);
    e2e_wait_log(env.dir, "exec-keyless", "--curve-secret and --driver-key", 1000);
    int status;
    cr_assert_eq(ts_wait(driver, 10, &status), 0, "the driver must still wait");
    expect_nothing_committed();
    char *dlog = log_of("driver");
    cr_assert(!strstr(dlog, "exec-wrong registered") && !strstr(dlog, "exec-keyless registered"),
              "nobody may register:\n%s", dlog);
    free(dlog);
    stop(wrong, "the executor with the wrong driver key");
    stop(keyless, "the executor without keys");
    stop(driver, "the driver");
}

Test(auth, a_network_bind_needs_keys_or_insecure)
{
    char *any = sp_xasprintf("tcp://0.0.0.0:%d", port);
    const char *args[] = {"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                          "--bind", any, "--trigger", "available-now", NULL};
    char *err = NULL;
    int rc = e2e_spatev(10000, NULL, &err, args);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    char *want = sp_xasprintf("spate: error: binding %s without CURVE keys would let anyone on the network join: "
                              "give --curve-secret and --authorized-keys, or --insecure\n",
                              any);
    cr_assert(strstr(err, want), "want '%s' in: %s", want, err);
    free(err);
    free(want);
    struct stat st;
    cr_assert_neq(stat(env.ckpt, &st), 0, "nothing may be created before the refusal");
    char *star = sp_xasprintf("tcp://*:%d", port);
    args[8] = star;
    rc = e2e_spatev(10000, NULL, &err, args);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    free(err);

    /* with --insecure it runs, says what it means, and a keyless executor joins */
    e2e_gen(env.input, 2, 1000, 75, false, NULL);
    pid_t driver = start_driver("driver", any, false, "--insecure");
    pid_t a = start_executor("exec-a", NULL, NULL);
    expect_finished(driver, 60000);
    expect_exact();
    char *dlog = log_of("driver");
    cr_assert(strstr(dlog, "WARN  driver: no CURVE keys on") && strstr(dlog, "anyone who can reach it can join"),
              "%s", dlog);
    free(dlog);
    stop(a, "the executor");
    free(any);
    free(star);
}

Test(auth, key_flags_are_checked)
{
    free(keygen("driver"));
    free(keygen("exec-a"));
    char *dkey = key_path("driver", "key"), *dpub = key_path("driver", "pub");
    char *akey = key_path("exec-a", "key");
    char *err = NULL;
    int rc;
    /* keygen never overwrites */
    rc = e2e_spate(10000, NULL, &err, "keygen", "--out", keys, "--name", "driver", NULL);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert(strstr(err, "already exists"), "%s", err);
    free(err);
    rc = e2e_spate(10000, NULL, &err, "keygen", NULL);
    cr_assert(rc == 2 && strstr(err, "--out DIR is required"), "%d %s", rc, err);
    free(err);

    struct {
        const char *args[24];
        const char *want;
    } cases[] = {
        {{"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--curve-secret", dkey, NULL},
         "--curve-secret needs --authorized-keys DIR"},
        {{"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--authorized-keys",
          authorized, NULL},
         "--authorized-keys needs --curve-secret FILE"},
        {{"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--curve-secret", dpub,
          "--authorized-keys", authorized, NULL},
         "is a public key file"},
        {{"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--curve-secret", dkey,
          "--authorized-keys", authorized, NULL},
         "--curve-secret needs --executors 0"},
        {{"executor", "--driver", bind_ep, "--curve-secret", akey, NULL}, "--curve-secret needs --driver-key FILE"},
        {{"executor", "--driver", bind_ep, "--driver-key", dpub, NULL}, "--driver-key needs --curve-secret FILE"},
        {{"executor", "--driver", bind_ep, "--curve-secret", akey, "--driver-key", dkey, NULL},
         "is a secret key file: give the public key file instead"},
        {{"executor", "--driver", bind_ep, "--curve-secret", akey, "--driver-key", "/nonexistent/d.pub", NULL},
         "public key file /nonexistent/d.pub does not exist"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = e2e_spatev(10000, NULL, &err, cases[i].args);
        cr_assert_eq(rc, 2, "case %zu: exit %d: %s", i, rc, err);
        cr_assert(strstr(err, cases[i].want), "case %zu: want '%s' in: %s", i, cases[i].want, err);
        const char *e = strstr(err, "spate: error: ");
        cr_assert(e && strchr(e, '\n')[1] == '\0', "one last error line: %s", err);
        free(err);
    }
    /* a secret key others can read is refused, as ssh does */
    cr_assert_eq(chmod(akey, 0644), 0);
    rc = e2e_spate(10000, NULL, &err, "executor", "--driver", bind_ep, "--curve-secret", akey, "--driver-key", dpub,
                   NULL);
    cr_assert(rc == 2 && strstr(err, "are too open") && strstr(err, "chmod 600"), "%d %s", rc, err);
    free(err);
    free(dkey);
    free(dpub);
    free(akey);
}
