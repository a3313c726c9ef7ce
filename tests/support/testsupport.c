/* tests/support/testsupport.c -- scratch directories, files and child
 * processes for tests; every wait is bounded by a deadline. */
#include "testsupport.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *ts_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && *v, "environment variable %s is not set (run the tests through ctest)", name);
    return v;
}

long long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *ts_tmpdir(const char *prefix)
{
    const char *base = getenv("SPATE_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0755);
    size_t n = strlen(base) + strlen(prefix) + 16;
    char *path = malloc(n);
    cr_assert(path != NULL);
    snprintf(path, n, "%s/%s-XXXXXX", base, prefix);
    cr_assert(mkdtemp(path) != NULL, "mkdtemp %s: %s", path, strerror(errno));
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

void ts_rmtree(const char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int ts_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = len > 0 ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int ts_put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    if (ts_write_file(tmp, data, len) != 0)
        return -1;
    return rename(tmp, dst);
}

static void redirect(int fd, const char *path)
{
    int f = open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f >= 0) {
        dup2(f, fd);
        close(f);
    }
}

pid_t ts_spawn(const char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        redirect(1, out_path);
        redirect(2, err_path);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int ts_wait(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return 1;
        }
        if (r < 0 && errno != EINTR)
            return 1;
        if (ts_now_ms() >= deadline)
            return 0;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void ts_kill(pid_t pid, int sig)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    if (!ts_wait(pid, 5000, NULL)) {
        kill(pid, SIGKILL);
        ts_wait(pid, 5000, NULL);
    }
}

int ts_run(const char *const argv[], int timeout_ms, char **out, char **err)
{
    char *dir = ts_tmpdir("run");
    char opath[4200], epath[4200];
    snprintf(opath, sizeof opath, "%s/out", dir);
    snprintf(epath, sizeof epath, "%s/err", dir);
    pid_t pid = ts_spawn(argv, opath, epath);
    cr_assert(pid > 0, "cannot start %s", argv[0]);
    int status = 0, rc;
    if (!ts_wait(pid, timeout_ms, &status)) {
        kill(pid, SIGKILL);
        ts_wait(pid, 5000, NULL);
        rc = -1;
    } else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
    } else {
        rc = 128 + WTERMSIG(status);
    }
    if (out)
        *out = ts_read_file(opath, NULL);
    if (err)
        *err = ts_read_file(epath, NULL);
    ts_rmtree(dir);
    free(dir);
    return rc;
}

bool ts_poll(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return true;
        if (ts_now_ms() >= deadline)
            return cond(ctx);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
