/* driver/sink.c -- the console, memory and json sinks behind sink_ops_t.
 * Owns output files and the console stream; never touches the checkpoint
 * (the driver stores the bookkeeping record each sink returns). */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sp_log.h"

typedef struct sink_ops {
    const char *kind;
    bool (*wants_all)(const sink_t *s);
    int (*write_batch)(sink_t *s, int64_t batch_id, const result_set_t *rows, sp_buf_t *record,
                       sp_err_t *err);
} sink_ops_t;

struct sink {
    const sink_ops_t *ops;
    output_mode_t mode;
    const plan_t *plan;
    char *arg;          /* NAME or DIR */
    char *description;
};

/* Bookkeeping record: "spate-sink v1 <kind> <rows> [file]" as text: small,
 * versioned and readable in `spate checkpoint ls`. */
static void record_put(sp_buf_t *record, const char *kind, size_t rows, const char *file)
{
    sp_buf_printf(record, "spate-sink v1 %s %zu%s%s", kind, rows, file ? " " : "", file ? file : "");
}

static bool wants_all_in_complete(const sink_t *s) { return s->mode == OUTPUT_COMPLETE; }
static bool wants_none(const sink_t *s) { (void)s; return false; }

/* ---- console ------------------------------------------------------------- */

static int console_write(sink_t *s, int64_t batch_id, const result_set_t *rows, sp_buf_t *record,
                         sp_err_t *err)
{
    sp_buf_t out = SP_BUF_INIT;
    sp_buf_printf(&out, "-------------------------------------------\nBatch: %lld\n"
                        "-------------------------------------------\n",
                  (long long)batch_id);
    result_set_render(rows, RESULT_TABLE, 20, true, &out);
    sp_buf_putc(&out, '\n');
    int rc = sp_write_all(STDOUT_FILENO, out.data, out.len);
    sp_buf_free(&out);
    if (rc != 0 && rc != -EPIPE)
        return sp_err_set(err, SP_EIO, "console sink: %s", strerror(-rc));
    record_put(record, "console", result_set_rows(rows), NULL);
    (void)s;
    return 0;
}

static const sink_ops_t console_ops = {"console", wants_all_in_complete, console_write};

/* ---- memory ----------------------------------------------------------------
 * The table is the committed state itself; this sink only keeps the name
 * and records how many rows each batch changed. */

static int memory_write(sink_t *s, int64_t batch_id, const result_set_t *rows, sp_buf_t *record,
                        sp_err_t *err)
{
    (void)s; (void)batch_id; (void)err;
    record_put(record, "memory", result_set_rows(rows), NULL);
    return 0;
}

static const sink_ops_t memory_ops = {"memory", wants_none, memory_write};

/* ---- json files -------------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int json_write(sink_t *s, int64_t batch_id, const result_set_t *rows, sp_buf_t *record,
                      sp_err_t *err)
{
    char name[64], tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(name, sizeof name, "batch-%010lld.json", (long long)batch_id);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", s->arg, name);
    snprintf(dst, sizeof dst, "%s/%s", s->arg, name);
    sp_buf_t out = SP_BUF_INIT;
    result_set_render(rows, RESULT_JSON, 0, false, &out);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        rc = sp_write_all(fd, out.data, out.len);
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        if (close(fd) != 0 && rc == 0)
            rc = -errno;
    }
    sp_buf_free(&out);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(s->arg);
    if (rc != 0) {
        unlink(tmp);
        return sp_err_set(err, rc == -ENOSPC ? SP_ENOSPC : SP_EIO, "json sink: cannot write %s: %s",
                          dst, strerror(-rc));
    }
    record_put(record, "json", result_set_rows(rows), name);
    return 0;
}

static const sink_ops_t json_ops = {"json", wants_all_in_complete, json_write};

/* ---- the sink ------------------------------------------------------------------ */

static int parse_desc(const char *desc, const sink_ops_t **ops, const char **arg, sp_err_t *err)
{
    const char *colon = strchr(desc, ':');
    size_t klen = colon ? (size_t)(colon - desc) : strlen(desc);
    *arg = colon ? colon + 1 : NULL;
    if (klen == 7 && strncmp(desc, "console", 7) == 0) {
        *ops = &console_ops;
        return 0;
    }
    if (klen == 6 && strncmp(desc, "memory", 6) == 0) {
        if (*arg == NULL || **arg == '\0')
            return sp_err_set(err, SP_EINVAL, "--sink memory needs a name: memory:NAME");
        *ops = &memory_ops;
        return 0;
    }
    if (klen == 4 && strncmp(desc, "json", 4) == 0) {
        if (*arg == NULL || **arg == '\0')
            return sp_err_set(err, SP_EINVAL, "--sink json needs a directory: json:DIR");
        *ops = &json_ops;
        return 0;
    }
    return sp_err_set(err, SP_EINVAL, "unknown sink '%s' (use console, memory:NAME or json:DIR)", desc);
}

int sink_validate(const char *desc, sp_err_t *err)
{
    const sink_ops_t *ops;
    const char *arg;
    return parse_desc(desc, &ops, &arg, err);
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int sink_open(const char *desc, output_mode_t mode, const plan_t *plan, sink_t **out, sp_err_t *err)
{
    const sink_ops_t *ops;
    const char *arg;
    int rc = parse_desc(desc, &ops, &arg, err);
    if (rc != 0)
        return rc;
    sink_t *s = sp_xcalloc(1, sizeof *s);
    s->ops = ops;
    s->mode = mode;
    s->plan = plan;
    s->arg = arg ? sp_xstrdup(arg) : NULL;
    if (ops == &json_ops) {
        int mrc = mkdir_p(s->arg);
        if (mrc != 0) {
            sp_err_set(err, SP_EIO, "json sink: cannot create %s: %s", s->arg, strerror(-mrc));
            sink_close(&s);
            return SP_EIO;
        }
        s->description = sp_xasprintf("FileSink[%s]", s->arg);
    } else if (ops == &memory_ops) {
        s->description = sp_xasprintf("MemorySink[%s]", s->arg);
    } else {
        s->description = sp_xstrdup("ConsoleSink");
    }
    *out = s;
    return 0;
}

void sink_close(sink_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    free((*sp)->arg);
    free((*sp)->description);
    free(*sp);
    *sp = NULL;
}

const char *sink_describe(const sink_t *s) { return s->description; }

const char *sink_memory_name(const sink_t *s) { return s->ops == &memory_ops ? s->arg : NULL; }

bool sink_wants_all_rows(const sink_t *s) { return s->ops->wants_all(s); }

int sink_write_batch(sink_t *s, int64_t batch_id, const result_set_t *changed,
                     const result_set_t *all, sp_buf_t *record, sp_err_t *err)
{
    const result_set_t *rows = (s->ops->wants_all(s) && all != NULL) ? all : changed;
    return s->ops->write_batch(s, batch_id, rows, record, err);
}
