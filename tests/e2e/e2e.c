/* tests/e2e/e2e.c -- process and data helpers for the end-to-end tests. */
#include "e2e.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sp_util.h"

void e2e_env_init(e2e_env_t *e, const char *prefix)
{
    e->dir = ts_tmpdir(prefix);
    e->input = sp_xasprintf("%s/input", e->dir);
    e->ckpt = sp_xasprintf("%s/ckpt", e->dir);
    e->src = sp_xasprintf("activity=json:%s", e->input);
    cr_assert_eq(mkdir(e->input, 0755), 0, "mkdir %s", e->input);
}

void e2e_env_free(e2e_env_t *e)
{
    ts_rmtree(e->dir);
    free(e->dir);
    free(e->input);
    free(e->ckpt);
    free(e->src);
    memset(e, 0, sizeof *e);
}

void e2e_gen(const char *dir, int files, int rows, int seed, bool dirty, const char *prefix)
{
    char f[16], r[16], s[16];
    snprintf(f, sizeof f, "%d", files);
    snprintf(r, sizeof r, "%d", rows);
    snprintf(s, sizeof s, "%d", seed);
    const char *argv[16] = {ts_env("SPATE_GEN"), "--out", dir, "--files", f, "--rows-per-file", r, "--seed", s};
    int n = 9;
    if (dirty)
        argv[n++] = "--dirty";
    if (prefix) {
        argv[n++] = "--prefix";
        argv[n++] = prefix;
    }
    argv[n] = NULL;
    char *err = NULL;
    int rc = ts_run(argv, 60000, NULL, &err);
    cr_assert_eq(rc, 0, "gen-activity failed: %s", err ? err : "");
    free(err);
}

int e2e_spatev(int timeout_ms, char **out, char **err, const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = ts_env("SPATE_BIN");
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return ts_run(argv, timeout_ms, out, err);
}

int e2e_spate(int timeout_ms, char **out, char **err, ...)
{
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return e2e_spatev(timeout_ms, out, err, args);
}

pid_t e2e_spawn(const char *dir, const char *name, const char *env, const char *const *args)
{
    char out[4096], err[4096];
    snprintf(out, sizeof out, "%s/%s.out", dir, name);
    snprintf(err, sizeof err, "%s/%s.err", dir, name);
    const char *argv[64];
    int n = 0;
    argv[n++] = ts_env("SPATE_BIN");
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (env)
        putenv((char *)env);
    pid_t pid = ts_spawn(argv, out, err);
    if (env) {
        char key[256];
        snprintf(key, sizeof key, "%s", env);
        char *eq = strchr(key, '=');
        if (eq)
            *eq = '\0';
        unsetenv(key);
    }
    cr_assert_gt(pid, 0);
    return pid;
}

char *e2e_result_json(const char *ckpt)
{
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(30000, &out, &err, "result", "--checkpoint", ckpt, "--format", "json", NULL);
    cr_assert_eq(rc, 0, "spate result failed (%d): %s", rc, err ? err : "");
    free(err);
    return out;
}

void e2e_expect_result(const char *ckpt, const oracle_t *o, const char *const *names, double tol)
{
    char *got = e2e_result_json(ckpt);
    char *diff = NULL;
    int rc = oracle_compare_jsonl(o, names, got, tol, &diff);
    cr_assert_eq(rc, 0, "result differs from the oracle:\n%s\n--- engine output:\n%s", diff ? diff : "", got);
    free(diff);
    free(got);
}

oracle_t *e2e_oracle_count_by_gt(const char *dir)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    oracle_t *o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, dir), 0, "%s", oracle_error(o));
    return o;
}

bool e2e_batches(const char *ckpt, long long *planned, long long *committed)
{
    char *out = NULL;
    int rc = e2e_spate(10000, &out, NULL, "checkpoint", "ls", ckpt, NULL);
    bool ok = false;
    *planned = *committed = -2;
    if (rc == 0 && out) {
        const char *p = strstr(out, "last planned batch:");
        const char *c = strstr(out, "last committed batch:");
        if (p && c) {
            p += strlen("last planned batch:");
            c += strlen("last committed batch:");
            *planned = strncmp(p + strspn(p, " "), "none", 4) == 0 ? -1 : atoll(p);
            *committed = strncmp(c + strspn(c, " "), "none", 4) == 0 ? -1 : atoll(c);
            ok = true;
        }
    }
    free(out);
    return ok;
}

int e2e_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

typedef struct log_wait {
    char *path;
    const char *needle;
} log_wait_t;

static bool log_has(void *ctx)
{
    log_wait_t *w = ctx;
    char *text = ts_read_file(w->path, NULL);
    bool found = text && strstr(text, w->needle);
    free(text);
    return found;
}

void e2e_wait_log(const char *dir, const char *name, const char *needle, int timeout_ms)
{
    log_wait_t w = {sp_xasprintf("%s/%s.err", dir, name), needle};
    bool ok = ts_poll(log_has, &w, timeout_ms);
    char *text = ts_read_file(w.path, NULL);
    cr_assert(ok, "no '%s' in %s within %d ms:\n%s", needle, w.path, timeout_ms, text ? text : "");
    free(text);
    free(w.path);
}

int e2e_count(const char *s, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = s; p && (p = strstr(p, needle)) != NULL; p += len)
        n++;
    return n;
}
