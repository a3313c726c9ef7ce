/* driver/scheduler.c -- the executor table (a small array: clusters have tens
 * of executors, not millions) and slot-based placement. */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "sp_util.h"

struct sched {
    sched_exec_t **execs;
    size_t n, cap;
};

sched_t *sched_new(void) { return sp_xcalloc(1, sizeof(sched_t)); }

static void exec_free(sched_exec_t *e)
{
    free(e->id);
    free(e->host);
    free(e);
}

void sched_destroy(sched_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    for (size_t i = 0; i < (*sp)->n; i++)
        exec_free((*sp)->execs[i]);
    free((*sp)->execs);
    free(*sp);
    *sp = NULL;
}

sched_exec_t *sched_find(sched_t *s, const void *id, size_t idlen)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->execs[i]->idlen == idlen && memcmp(s->execs[i]->id, id, idlen) == 0)
            return s->execs[i];
    return NULL;
}

sched_exec_t *sched_add(sched_t *s, const void *id, size_t idlen, const wire_hello_t *hello,
                        uint64_t now_ms)
{
    sched_exec_t *old = sched_find(s, id, idlen);
    if (old)
        sched_remove(s, old);
    sched_exec_t *e = sp_xcalloc(1, sizeof *e);
    e->id = sp_xstrndup(id, idlen);
    e->idlen = idlen;
    e->host = sp_xstrndup(hello->host.ptr, hello->host.len);
    e->pid = hello->pid;
    e->slots = hello->slots;
    e->last_seen_ms = now_ms;
    e->registered_wall_ms = sp_wall_ms();
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->execs = sp_xrealloc(s->execs, s->cap * sizeof(sched_exec_t *));
    }
    s->execs[s->n++] = e;
    return e;
}

void sched_remove(sched_t *s, sched_exec_t *e)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->execs[i] == e) {
            memmove(&s->execs[i], &s->execs[i + 1], (s->n - i - 1) * sizeof(sched_exec_t *));
            s->n--;
            exec_free(e);
            return;
        }
    }
}

sched_exec_t *sched_pick(sched_t *s, const sched_exec_t *avoid)
{
    sched_exec_t *best = NULL, *fallback = NULL;
    uint32_t best_free = 0;
    for (size_t i = 0; i < s->n; i++) {
        sched_exec_t *e = s->execs[i];
        if (e->draining || e->running >= e->slots)
            continue;
        if (e == avoid) {
            fallback = e;
            continue;
        }
        uint32_t free_slots = e->slots - e->running;
        if (best == NULL || free_slots > best_free) {
            best = e;
            best_free = free_slots;
        }
    }
    return best ? best : fallback;
}

sched_exec_t *sched_expired(sched_t *s, uint64_t now_ms, uint64_t timeout_ms)
{
    for (size_t i = 0; i < s->n; i++)
        if (now_ms > s->execs[i]->last_seen_ms + timeout_ms)
            return s->execs[i];
    return NULL;
}

size_t sched_count(const sched_t *s) { return s->n; }

sched_exec_t *sched_at(sched_t *s, size_t i) { return i < s->n ? s->execs[i] : NULL; }

uint32_t sched_free_slots(const sched_t *s)
{
    uint32_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!s->execs[i]->draining && s->execs[i]->running < s->execs[i]->slots)
            n += s->execs[i]->slots - s->execs[i]->running;
    return n;
}
