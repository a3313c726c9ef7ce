/* executor/task.c -- reads a byte range of a JSON-lines file through a
 * reused buffer, has jscan scan each owned line in place (jscan_next finds
 * the line's end as it scans), filters, and folds rows into an agg_table.
 * Owns the compiled query and the read buffer; never touches sockets. */
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema.h"
#include "sp_util.h"

#define TASK_CHUNK (512u << 10)

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

int task_scan(task_query_t *q, const char *path, uint64_t start, uint64_t end, int mode,
              agg_table_t *table, task_stats_t *stats, const atomic_bool *cancel, sp_err_t *err)
{
    if (start >= end)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_err_set(err, SP_EIO, "cannot open %s: %s", path, strerror(errno));
    posix_fadvise(fd, (off_t)start, (off_t)(end - start), POSIX_FADV_SEQUENTIAL);
    scan_ctx_t c = {q, path, fd, mode, table, stats, err};

    /* buf[0] holds the byte at file offset `base`. When start > 0 we begin
     * one byte early and drop everything up to the first newline: that is
     * the tail of a line the previous range owns. */
    uint64_t base = start > 0 ? start - 1 : 0;
    uint64_t readpos = base;
    bool skip_partial = start > 0;
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
        if (q->cap - len < TASK_CHUNK) {
            if (q->cap >= TASK_MAX_LINE + TASK_CHUNK) {
                /* A single line fills the buffer: count it malformed once,
                 * then discard until its newline. */
                if (!oversized && !skip_partial) {
                    stats->malformed++;
                    stats->lines++;
                    if (mode == WIRE_MODE_FAILFAST) {
                        rc = sp_err_set(err, SP_EFAILED, "%s line %llu is longer than %u bytes", path,
                                        (unsigned long long)line_number(fd, base), TASK_MAX_LINE);
                        break;
                    }
                }
                oversized = !skip_partial;
                base += len;
                len = 0;
                no_nl = 0;
            } else {
                task_buf_resize(q, q->cap * 2);
            }
        }
        ssize_t n = pread(fd, q->buf + len, q->cap - len, (off_t)readpos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sp_err_set(err, SP_EIO, "cannot read %s: %s", path, strerror(errno));
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
            if ((rc = scan_row(&c, st, row, linelen, lineoff)) != 0) {
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
    close(fd);
    return rc;
}
