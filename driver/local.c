/* driver/local.c -- starts, watches and stops the local executor processes
 * of `spate run`. Owns their pids; nothing else here. */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sp_log.h"
#include "sp_util.h"

void local_executor_id(const local_cluster_t *lc, int index, char *out, size_t outlen)
{
    (void)lc;
    snprintf(out, outlen, "local-%d-%d", (int)getpid(), index);
}

static pid_t spawn_one(local_cluster_t *lc, int index)
{
    char id[64], slots[16];
    local_executor_id(lc, index, id, sizeof id);
    snprintf(slots, sizeof slots, "%u", lc->slots);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: the driver's signal handlers must not swallow a SIGTERM that
     * arrives before exec, so restore the defaults first */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    const char *argv[] = {lc->exe, "executor", "--driver", lc->endpoint, "--id", id, "--slots", slots,
                          "--exit-with-driver", "--log-level", lc->log_level, NULL};
    execv(lc->exe, (char *const *)argv);
    fprintf(stderr, "spate: cannot start executor %s: %s\n", lc->exe, strerror(errno));
    _exit(127);
}

int local_start(local_cluster_t *lc, const char *exe, const char *endpoint, int n, uint32_t slots,
                const char *log_level)
{
    memset(lc, 0, sizeof *lc);
    lc->exe = sp_xstrdup(exe);
    lc->endpoint = sp_xstrdup(endpoint);
    lc->slots = slots ? slots : 1;
    lc->log_level = sp_xstrdup(log_level);
    lc->n = n;
    lc->pids = sp_xcalloc(n > 0 ? (size_t)n : 1, sizeof(pid_t));
    for (int i = 0; i < n; i++) {
        lc->pids[i] = spawn_one(lc, i);
        if (lc->pids[i] < 0) {
            int e = errno;
            lc->pids[i] = 0;
            return -e;
        }
    }
    return 0;
}

int local_check(local_cluster_t *lc, int restart, int *dead, int max)
{
    int ndead = 0;
    for (int i = 0; i < lc->n; i++) {
        if (lc->pids[i] <= 0)
            continue;
        int status;
        pid_t r = waitpid(lc->pids[i], &status, WNOHANG);
        if (r != lc->pids[i])
            continue;
        if (WIFSIGNALED(status))
            SP_WARN("local", "executor process %d killed by signal %d", (int)r, WTERMSIG(status));
        else
            SP_WARN("local", "executor process %d exited with status %d", (int)r, WEXITSTATUS(status));
        lc->pids[i] = 0;
        if (ndead < max)
            dead[ndead++] = i;
        if (restart) {
            pid_t p = spawn_one(lc, i);
            if (p > 0) {
                lc->pids[i] = p;
                lc->restarts++;
                SP_INFO("local", "started executor process %d in its place", (int)p);
            }
        }
    }
    return ndead;
}

void local_stop(local_cluster_t *lc, int timeout_ms)
{
    if (lc->pids == NULL)
        return;
    for (int i = 0; i < lc->n; i++)
        if (lc->pids[i] > 0)
            kill(lc->pids[i], SIGTERM);
    uint64_t start = sp_mono_ms(), deadline = start + (uint64_t)timeout_ms, resend = start + 100;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < lc->n; i++) {
            if (lc->pids[i] <= 0)
                continue;
            if (waitpid(lc->pids[i], NULL, WNOHANG) == lc->pids[i])
                lc->pids[i] = 0;
            else
                alive++;
        }
        uint64_t now = sp_mono_ms();
        if (alive == 0 || now >= deadline)
            break;
        if (now >= resend) { /* in case one arrived while a child was still starting */
            for (int i = 0; i < lc->n; i++)
                if (lc->pids[i] > 0)
                    kill(lc->pids[i], SIGTERM);
            resend = now + 100;
        }
        struct timespec ts = {0, 1000 * 1000}; /* they exit within a few ms */
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < lc->n; i++) {
        if (lc->pids[i] > 0) {
            kill(lc->pids[i], SIGKILL);
            waitpid(lc->pids[i], NULL, 0);
            lc->pids[i] = 0;
        }
    }
    free(lc->pids);
    free(lc->exe);
    free(lc->endpoint);
    free(lc->log_level);
    memset(lc, 0, sizeof *lc);
}
