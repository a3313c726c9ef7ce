/* driver/local.h -- local mode: the executor processes `spate run` starts
 * itself. They never outlive the driver: each child asks the kernel for
 * SIGKILL when its parent dies (PR_SET_PDEATHSIG), and also exits when the
 * driver's socket stays silent. A child that dies is started again. */
#ifndef SP_LOCAL_H
#define SP_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct local_cluster {
    char *exe;          /* the spate binary */
    char *endpoint;     /* the driver's endpoint */
    uint32_t slots;
    char *log_level;    /* passed to children */
    pid_t *pids;        /* 0: not running */
    int n;
    uint64_t restarts;
} local_cluster_t;

/* Start n executors. Returns 0 or -errno of the first fork failure. */
int local_start(local_cluster_t *lc, const char *exe, const char *endpoint, int n, uint32_t slots,
                const char *log_level);

/* Reap children that ended and start replacements (when restart). Writes
 * the indexes of the dead into dead[0..max) and returns how many. */
int local_check(local_cluster_t *lc, int restart, int *dead, int max);

/* The executor id the child at index uses ("local-<driver pid>-<index>"). */
void local_executor_id(const local_cluster_t *lc, int index, char *out, size_t outlen);

/* SIGTERM every child, wait up to timeout_ms, then SIGKILL the rest. */
void local_stop(local_cluster_t *lc, int timeout_ms);

#endif
