/* executor/task.c -- scans a byte range of a JSON-lines file: jscan scans
 * each owned line in place (jscan_next finds the line's end as it goes),
 * the filter runs, and rows fold into an agg_table. The file is mapped
 * (no copy out of the page cache) and its lines scanned where they lie; the
 * last bytes of the file, where jscan's padding would run past the data, a
 * line too long to take whole, and files that cannot be mapped go through a
 * reused, padded read buffer instead. Owns the compiled query, the read
 * buffer and the SIGBUS catch that turns a file shrinking under the
 * mapping into an error; never touches sockets. */
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "sp_util.h"

#define TASK_CHUNK (512u << 10)
#ifndef TASK_PREFETCH
#define TASK_PREFETCH 2048 /* bytes ahead of the scan to prefetch */
#endif

struct task_query {
    plan_t *plan;
    jscan_t *scan;
    char *buf;        /* cap bytes for data, then JSCAN_PADDING for jscan_next */
    size_t cap;
    sp_value_t *keys; /* ngroups scratch */
};

/* The read buffer resized to cap data bytes and its padding (zeroed: jscan
 * reads the padding, never for meaning). */
static void task_buf_resize(task_query_t *q, size_t cap)
{
    size_t old = q->buf ? q->cap + JSCAN_PADDING : 0;
    q->buf = sp_xrealloc(q->buf, cap + JSCAN_PADDING);
    if (cap + JSCAN_PADDING > old)
        memset(q->buf + old, 0, cap + JSCAN_PADDING - old);
    q->cap = cap;
}

int task_query_new(const char *source_name, const char *schema_text, const char *sql,
                   task_query_t **out, sp_err_t *err)
{
    schema_t *schema = NULL;
    int rc = schema_parse(schema_text, &schema, err);
    if (rc != 0)
        return rc;
    plan_t *plan = NULL;
    rc = plan_build(sql, source_name, schema, &plan, err);
    schema_destroy(&schema);
    if (rc != 0)
        return rc;
    task_query_t *q = sp_xcalloc(1, sizeof *q);
    q->plan = plan;
    const char **names = sp_xcalloc(plan->nslots ? plan->nslots : 1, sizeof(char *));
    sp_type_t *types = sp_xcalloc(plan->nslots ? plan->nslots : 1, sizeof(sp_type_t));
    for (size_t i = 0; i < plan->nslots; i++) {
        names[i] = plan->slots[i].name;
        types[i] = plan->slots[i].type;
    }
    q->scan = jscan_new(names, types, plan->nslots);
    free(names);
    free(types);
    task_buf_resize(q, TASK_CHUNK * 2);
    q->keys = sp_xcalloc(plan->ngroups ? plan->ngroups : 1, sizeof(sp_value_t));
    *out = q;
    return 0;
}

void task_query_destroy(task_query_t **qp)
{
    if (qp == NULL || *qp == NULL)
        return;
    task_query_t *q = *qp;
    plan_destroy(&q->plan);
    jscan_destroy(&q->scan);
    free(q->buf);
    free(q->keys);
    free(q);
    *qp = NULL;
}

const plan_t *task_query_plan(const task_query_t *q) { return q->plan; }

agg_table_t *task_query_new_table(const task_query_t *q)
{
    return agg_table_new(q->plan->aggs, q->plan->naggs, q->plan->ngroups);
}

/* 1-based number of the line starting at byte `offset` (error path only). */
static uint64_t line_number(int fd, uint64_t offset)
{
    char buf[65536];
    uint64_t pos = 0, lines = 1;
    while (pos < offset) {
        size_t want = offset - pos < sizeof buf ? (size_t)(offset - pos) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)pos);
        if (n <= 0)
            break;
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))) != NULL; p++)
            lines++;
        pos += (uint64_t)n;
    }
    return lines;
}

typedef struct scan_ctx {
    task_query_t *q;
    const char *path;
    int fd;
    int mode;
    agg_table_t *table;
    task_stats_t *stats;
    sp_err_t *err;
} scan_ctx_t;

/* One owned line of len bytes at file offset `off`, scanned (st, row).
 * Returns 0 or SP_EFAILED (failfast). */
static int scan_row(scan_ctx_t *c, jscan_status_t st, const jscan_row_t *row, size_t len,
                    uint64_t off)
{
    const plan_t *plan = c->q->plan;
    c->stats->lines++;
    c->stats->bytes += len + 1;
    if (st == JSCAN_BLANK)
        return 0;
    if (st == JSCAN_MALFORMED) {
        c->stats->malformed++;
        if (c->mode == WIRE_MODE_FAILFAST)
            return sp_err_set(c->err, SP_EFAILED, "malformed JSON in %s line %llu (byte %zu of the line): %s",
                              c->path, (unsigned long long)line_number(c->fd, off),
                              row->error_offset + 1, row->error ? row->error : "invalid JSON");
        return 0;
    }
    if (row->ntype_errors > 0) {
        if (c->mode == WIRE_MODE_FAILFAST) {
            const plan_slot_t *s = &plan->slots[row->first_type_error];
            c->stats->malformed++;
            return sp_err_set(c->err, SP_EFAILED, "%s line %llu: field '%s' does not hold a %s value",
                              c->path, (unsigned long long)line_number(c->fd, off), s->name,
                              sp_type_name(s->type));
        }
        if (c->mode == WIRE_MODE_DROPMALFORMED) {
            c->stats->malformed++;
            return 0;
        }
    }
    c->stats->rows++;
    const sp_value_t *v = row->values;
    if (!plan_row_passes(plan, v))
        return 0;
    for (size_t i = 0; i < plan->ngroups; i++)
        c->q->keys[i] = v[plan->group_slots[i]];
    agg_table_add_row(c->table, c->q->keys, v);
    return 0;
}

/* A line longer than TASK_MAX_LINE at file offset `off`: one malformed
 * line. Returns 0 or SP_EFAILED (failfast). */
static int scan_oversized(scan_ctx_t *c, uint64_t off)
{
    c->stats->malformed++;
    c->stats->lines++;
    if (c->mode == WIRE_MODE_FAILFAST)
        return sp_err_set(c->err, SP_EFAILED, "%s line %llu is longer than %u bytes", c->path,
                          (unsigned long long)line_number(c->fd, off), TASK_MAX_LINE);
    return 0;
}

/* The lines that start in [from, end), read through the reused buffer.
 * With skip_partial, from is one byte before a range's start: everything
 * up to the first newline belongs to the previous range. */
static int scan_read(scan_ctx_t *c, uint64_t from, bool skip_partial, uint64_t end,
                     const atomic_bool *cancel)
{
    task_query_t *q = c->q;

    /* buf[0] holds the byte at file offset `base`. */
    uint64_t base = from;
    uint64_t readpos = base;
    bool oversized = false; /* discarding the rest of a too-long line */
    size_t len = 0, off = 0;
    size_t no_nl = 0; /* bytes at off known to hold no '\n' (a line still arriving) */
    int rc = 0;
    for (;;) {
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
            rc = SP_ESTOPPED;
            break;
        }
        /* Compact what is left of the buffer to its front. */
        if (off > 0) {
            memmove(q->buf, q->buf + off, len - off);
            len -= off;
            base += off;
            off = 0;
        }
        /* The buffer now holds only the start of one line (no newline in
         * it). A line already longer than TASK_MAX_LINE counts malformed
         * once; then it, like the tail of the previous range's line, is
         * discarded up to its newline. */
        if (!skip_partial && !oversized && len > TASK_MAX_LINE) {
            if ((rc = scan_oversized(c, base)) != 0)
                break;
            oversized = true;
        }
        if (skip_partial || oversized) {
            base += len;
            len = 0;
            no_nl = 0;
        } else if (q->cap - len < TASK_CHUNK) {
            size_t cap = q->cap * 2 < TASK_MAX_LINE + 2 * TASK_CHUNK ? q->cap * 2 : TASK_MAX_LINE + 2 * TASK_CHUNK;
            task_buf_resize(q, cap);
        }
        ssize_t n = pread(c->fd, q->buf + len, q->cap - len, (off_t)readpos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sp_err_set(c->err, SP_EIO, "cannot read %s: %s", c->path, strerror(errno));
            break;
        }
        readpos += (uint64_t)n;
        len += (size_t)n;
        bool eof = n == 0;
        bool done = false;
        while (off < len) {
            if (skip_partial || oversized) {
                char *nl = memchr(q->buf + off, '\n', len - off);
                if (nl == NULL)
                    break;
                skip_partial = oversized = false;
                off = (size_t)(nl - q->buf) + 1;
                continue;
            }
            uint64_t lineoff = base + off;
            if (lineoff >= end) {
                done = true;
                break;
            }
            if (no_nl > 0 && !eof) {
                /* Still no newline in the new bytes: read on (a long line
                 * is looked through once, not rescanned per read). */
                if (memchr(q->buf + off + no_nl, '\n', len - off - no_nl) == NULL) {
                    no_nl = len - off;
                    break;
                }
            }
            const jscan_row_t *row;
            size_t linelen;
            jscan_status_t st = jscan_next(q->scan, q->buf + off, len - off, eof, &linelen, &row);
            if (st == JSCAN_MORE) {
                no_nl = len - off;
                break;
            }
            no_nl = 0;
            if (linelen > TASK_MAX_LINE)
                rc = scan_oversized(c, lineoff);
            else
                rc = scan_row(c, st, row, linelen, lineoff);
            if (rc != 0) {
                done = true;
                break;
            }
            off += linelen + 1;
        }
        if (off > len) /* (the last line had no newline) */
            off = len;
        if (done || eof)
            break;
        if (base + off >= end && !skip_partial && !oversized)
            break;
    }
    return rc;
}

/* ---- the mapped path ----------------------------------------------------
 *
 * A file that shrinks while mapped raises SIGBUS on the first touch of a
 * page past its new end. A SIGBUS at an address inside the mapping this
 * thread scans jumps back to scan_mapped, which reports the file as
 * changed; any other SIGBUS goes on to the disposition found when the
 * handler was installed. (A file that shrinks by less than a page, or
 * before the mapping, is caught by task_scan's second look at its size.) */

static __thread sigjmp_buf *task_bus_jump;
static __thread const char *task_bus_lo, *task_bus_hi; /* the mapping scanned */
static struct sigaction task_bus_old;
static pthread_once_t task_bus_once = PTHREAD_ONCE_INIT;

static void task_bus_handler(int sig, siginfo_t *info, void *uctx)
{
    const char *addr = info ? (const char *)info->si_addr : NULL;
    if (task_bus_jump && addr >= task_bus_lo && addr < task_bus_hi)
        siglongjmp(*task_bus_jump, 1);
    if (task_bus_old.sa_flags & SA_SIGINFO) {
        task_bus_old.sa_sigaction(sig, info, uctx);
        return;
    }
    if (task_bus_old.sa_handler != SIG_DFL && task_bus_old.sa_handler != SIG_IGN) {
        task_bus_old.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void task_bus_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = task_bus_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &task_bus_old);
}

/* Scan the owned lines of map[0, safe) in place, map[0] being the byte at
 * file offset map_off, starting at file offset *next (past the partial
 * line first when *skip_partial, which is then cleared). On return *next
 * is the file offset where the lines left over begin (a line reaching past
 * `safe`, or one too long to take) and *done tells whether the range is
 * finished (or failed). */
static int scan_mapped_lines(scan_ctx_t *c, char *map, uint64_t map_off, size_t safe,
                             bool *skip_partial, uint64_t end, const atomic_bool *cancel,
                             uint64_t *next, bool *done)
{
    size_t off = (size_t)(*next - map_off);
    *done = false;
    if (*skip_partial) {
        char *nl = off < safe ? memchr(map + off, '\n', safe - off) : NULL;
        if (nl == NULL)
            return 0; /* the read path finds it */
        off = (size_t)(nl - map) + 1;
        *skip_partial = false;
    }
    size_t check_at = off + TASK_CHUNK, pf = off;
    while (off < safe) {
        uint64_t lineoff = map_off + off;
        *next = lineoff;
        if (lineoff >= end) {
            *done = true;
            return 0;
        }
        if (off >= check_at) {
            if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
                *done = true;
                return SP_ESTOPPED;
            }
            check_at = off + TASK_CHUNK;
        }
        /* Hardware prefetchers stop at page boundaries: ask for the
         * cache lines a few pages ahead ourselves. */
        if (pf < off) /* (after a long line) */
            pf = off;
        for (; pf < off + TASK_PREFETCH && pf < safe; pf += 64)
            __builtin_prefetch(map + pf);
        const jscan_row_t *row;
        size_t linelen;
        jscan_status_t st = jscan_next(c->q->scan, map + off, safe - off, false, &linelen, &row);
        if (st == JSCAN_MORE || linelen > TASK_MAX_LINE)
            return 0; /* past `safe`, or too long: the read path takes it */
        int rc = scan_row(c, st, row, linelen, lineoff);
        if (rc != 0) {
            *done = true;
            return rc;
        }
        off += linelen + 1;
    }
    *next = map_off + off;
    return 0;
}

/* Map the file (of `size` bytes) from the page holding *next to its end
 * and scan what can be scanned in place; arguments as above. A file too
 * small or too large to map leaves everything to the read path. */
static int scan_mapped(scan_ctx_t *c, uint64_t size, bool *skip_partial, uint64_t end,
                       const atomic_bool *cancel, uint64_t *next, bool *done)
{
    uint64_t from = *next;
    *done = false;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t map_off = from / page * page;
    /* jscan_next writes one byte at the end of what it is given and reads
     * JSCAN_PADDING after it: all of it must lie inside the file's data. */
    if (size <= map_off + JSCAN_PADDING + 1 + (from - map_off) || size - map_off > SIZE_MAX / 2)
        return 0;
    size_t map_len = (size_t)(size - map_off), safe = map_len - JSCAN_PADDING - 1;
    /* Private, writable pages: the one sentinel byte jscan_next writes
     * copies one page, in this process only. */
    char *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, c->fd, (off_t)map_off);
    if (map == MAP_FAILED)
        return 0;
    madvise(map, map_len, MADV_SEQUENTIAL);
    pthread_once(&task_bus_once, task_bus_install);
    sigjmp_buf jump;
    int rc;
    if (sigsetjmp(jump, 1) == 0) { /* 1: the jump unblocks SIGBUS again */
        task_bus_lo = map;
        task_bus_hi = map + map_len;
        task_bus_jump = &jump;
        rc = scan_mapped_lines(c, map, map_off, safe, skip_partial, end, cancel, next, done);
    } else {
        rc = sp_err_set(c->err, SP_EIO, "%s changed while being read (it shrank below %llu bytes): files in "
                                        "the source directory must not change once in place",
                        c->path, (unsigned long long)size);
        *done = true;
    }
    task_bus_jump = NULL;
    munmap(map, map_len);
    return rc;
}

int task_scan(task_query_t *q, const char *path, uint64_t start, uint64_t end, int mode,
              agg_table_t *table, task_stats_t *stats, const atomic_bool *cancel, sp_err_t *err)
{
    if (start >= end)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_err_set(err, SP_EIO, "cannot open %s: %s", path, strerror(errno));
    scan_ctx_t c = {q, path, fd, mode, table, stats, err};
    /* When start > 0 we begin one byte early and drop everything up to the
     * first newline: that is the tail of a line the previous range owns. */
    uint64_t next = start > 0 ? start - 1 : 0;
    bool skip_partial = start > 0, done;
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    int rc = 0;
    done = false;
    if (regular)
        rc = scan_mapped(&c, (uint64_t)st.st_size, &skip_partial, end, cancel, &next, &done);
    if (rc == 0 && !done) {
        posix_fadvise(fd, (off_t)next, 0, POSIX_FADV_SEQUENTIAL);
        rc = scan_read(&c, next, skip_partial, end, cancel);
    }
    /* A file that shrank under the scan without a SIGBUS (by less than a
     * page past what was read) gave too few lines: an error all the same. */
    struct stat after;
    if (rc == 0 && regular && fstat(fd, &after) == 0 && after.st_size < st.st_size)
        rc = sp_err_set(err, SP_EIO, "%s changed while being read (it shrank from %lld to %lld bytes): "
                        "files in the source directory must not change once in place", path,
                        (long long)st.st_size, (long long)after.st_size);
    close(fd);
    return rc;
}
