/* driver/scheduler.h -- the executor table: who is registered, their slots and
 * running tasks, their last heartbeat, and the choice of where a task goes
 * (the live, non-draining executor with the most free slots). Knows nothing
 * of batches or the checkpoint. */
#ifndef SP_SCHED_H
#define SP_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct sched_exec {
    char *id;               /* routing id bytes (also the executor id) */
    size_t idlen;
    char *host;
    uint32_t pid;
    uint32_t slots;
    uint32_t running;       /* tasks assigned and not finished */
    bool draining;
    uint64_t last_seen_ms;  /* monotonic */
    int64_t registered_wall_ms;
    uint64_t tasks_done, tasks_failed;
} sched_exec_t;

typedef struct sched sched_t;

sched_t *sched_new(void);
void sched_destroy(sched_t **s);

/* The executor with this routing id, or NULL. */
sched_exec_t *sched_find(sched_t *s, const void *id, size_t idlen);

/* Register (or re-register: the old record is replaced) an executor. */
sched_exec_t *sched_add(sched_t *s, const void *id, size_t idlen, const wire_hello_t *hello,
                        uint64_t now_ms);

/* Forget an executor; e is invalid afterwards. */
void sched_remove(sched_t *s, sched_exec_t *e);

/* Where the next task should go: a live, non-draining executor with a free
 * slot, the most free slots first; `avoid` only when nothing else fits.
 * NULL when every slot is busy. */
sched_exec_t *sched_pick(sched_t *s, const sched_exec_t *avoid);

/* The first executor silent since before now_ms - timeout_ms, or NULL. */
sched_exec_t *sched_expired(sched_t *s, uint64_t now_ms, uint64_t timeout_ms);

size_t sched_count(const sched_t *s);
sched_exec_t *sched_at(sched_t *s, size_t i);
/* Free slots over live, non-draining executors. */
uint32_t sched_free_slots(const sched_t *s);

#endif
