/* driver/source.c -- lists the source directory, filters seen files
 * against the checkpoint, orders and limits a batch, cuts splits, and
 * watches the directory with inotify, keeping the files not seen yet (the
 * candidates) up to date from the names the watch reports. Owns the watch
 * and the candidates; reads the checkpoint only through ckpt_files_seen. */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sp_log.h"
#include "sp_util.h"

struct source {
    char *path;
    int watch_fd;
    /* the candidates: files seen in the directory, not in the checkpoint */
    source_listing_t cand;
    bool listed;             /* cand came from a full listing at least once */
    bool overflow;           /* the watch lost events: list again */
    char **pending;          /* names the watch reported since the last refresh */
    size_t npending, pending_cap;
    uint64_t next_relist_ms;
    uint64_t relist_ms;
};

int source_open(const char *format, const char *path, source_t **out, sp_err_t *err)
{
    if (strcmp(format, "json") != 0)
        return sp_err_set(err, SP_EINVAL, "unknown source format '%s' (spate reads: json)", format);
    char real[PATH_MAX];
    if (realpath(path, real) == NULL)
        return sp_err_set(err, SP_EIO, "source directory %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return sp_err_set(err, SP_EIO, "source %s is not a directory", path);
    DIR *d = opendir(real);
    if (d == NULL)
        return sp_err_set(err, SP_EIO, "cannot read source directory %s: %s", path, strerror(errno));
    closedir(d);
    source_t *s = sp_xcalloc(1, sizeof *s);
    s->path = sp_xstrdup(real);
    s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    s->relist_ms = 60000;
    if (s->watch_fd >= 0 &&
        inotify_add_watch(s->watch_fd, real,
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_FROM | IN_DELETE) < 0) {
        SP_WARN("source", "cannot watch %s (%s); polling instead", real, strerror(errno));
        close(s->watch_fd);
        s->watch_fd = -1;
    }
    *out = s;
    return 0;
}

void source_close(source_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    source_t *s = *sp;
    if (s->watch_fd >= 0)
        close(s->watch_fd);
    source_listing_free(&s->cand);
    for (size_t i = 0; i < s->npending; i++)
        free(s->pending[i]);
    free(s->pending);
    free(s->path);
    free(s);
    *sp = NULL;
}

const char *source_path(const source_t *s) { return s->path; }

int source_watch_fd(const source_t *s) { return s->watch_fd; }

bool source_watch_drain(source_t *s)
{
    if (s->watch_fd < 0)
        return false;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(s->watch_fd, buf, sizeof buf);
        if (n <= 0)
            break;
        any = true;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                s->overflow = true;
            else if (ev->len > 0 && ev->name[0] != '.' && ev->name[0] != '_') {
                if (s->npending == s->pending_cap) {
                    s->pending_cap = s->pending_cap ? 2 * s->pending_cap : 64;
                    s->pending = sp_xrealloc(s->pending, s->pending_cap * sizeof(char *));
                }
                s->pending[s->npending++] = sp_xstrdup(ev->name);
            }
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    return any;
}

void source_set_relist_ms(source_t *s, uint64_t ms) { s->relist_ms = ms; }

static int file_cmp(const void *a, const void *b)
{
    const source_file_t *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

void source_listing_free(source_listing_t *l)
{
    for (size_t i = 0; i < l->nfiles; i++)
        free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

static void listing_recount(source_listing_t *l)
{
    l->bytes = 0;
    l->oldest_mtime_ns = 0;
    for (size_t i = 0; i < l->nfiles; i++) {
        l->bytes += l->files[i].size;
        if (i == 0 || l->files[i].mtime_ns < l->oldest_mtime_ns)
            l->oldest_mtime_ns = l->files[i].mtime_ns;
    }
}

int source_list_new(source_t *s, ckpt_t *ckpt, source_listing_t *out, sp_err_t *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(s->path);
    if (d == NULL)
        return sp_err_set(err, SP_EIO, "cannot read source directory %s: %s", s->path, strerror(errno));
    int dfd = dirfd(d);
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || de->d_name[0] == '_')
            continue;
        if (de->d_type != DT_REG && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue; /* vanished, a directory, or a dangling link */
        if (out->nfiles == cap) {
            cap = cap ? cap * 2 : 64;
            out->files = sp_xrealloc(out->files, cap * sizeof(source_file_t));
        }
        source_file_t *f = &out->files[out->nfiles++];
        f->path = sp_xasprintf("%s/%s", s->path, de->d_name);
        f->size = (uint64_t)st.st_size;
        f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    closedir(d);
    if (ckpt != NULL && out->nfiles > 0) {
        const char **paths = sp_xmalloc(out->nfiles * sizeof(char *));
        bool *seen = sp_xcalloc(out->nfiles, sizeof(bool));
        for (size_t i = 0; i < out->nfiles; i++)
            paths[i] = out->files[i].path;
        int rc = ckpt_files_seen(ckpt, paths, out->nfiles, seen, err);
        free(paths);
        if (rc != 0) {
            free(seen);
            source_listing_free(out);
            return rc;
        }
        size_t k = 0;
        for (size_t i = 0; i < out->nfiles; i++) {
            if (seen[i])
                free(out->files[i].path);
            else
                out->files[k++] = out->files[i];
        }
        out->nfiles = k;
        free(seen);
    }
    if (out->nfiles > 1)
        qsort(out->files, out->nfiles, sizeof(source_file_t), file_cmp);
    listing_recount(out);
    return 0;
}

void source_listing_take(source_listing_t *in, const source_limits_t *lim, source_listing_t *taken)
{
    memset(taken, 0, sizeof *taken);
    size_t n = 0;
    uint64_t bytes = 0;
    while (n < in->nfiles) {
        if (lim->max_files && n >= lim->max_files)
            break;
        if (lim->max_bytes && n > 0 && bytes + in->files[n].size > lim->max_bytes)
            break;
        bytes += in->files[n].size;
        n++;
    }
    taken->files = sp_xmalloc((n ? n : 1) * sizeof(source_file_t));
    memcpy(taken->files, in->files, n * sizeof(source_file_t));
    taken->nfiles = n;
    memmove(in->files, in->files + n, (in->nfiles - n) * sizeof(source_file_t));
    in->nfiles -= n;
    listing_recount(taken);
    listing_recount(in);
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void source_listing_restrict(source_listing_t *in, const source_listing_t *keep)
{
    const char **names = sp_xmalloc((keep->nfiles ? keep->nfiles : 1) * sizeof(char *));
    for (size_t i = 0; i < keep->nfiles; i++)
        names[i] = keep->files[i].path;
    qsort(names, keep->nfiles, sizeof(char *), path_cmp);
    size_t k = 0;
    for (size_t i = 0; i < in->nfiles; i++) {
        const char *p = in->files[i].path;
        if (keep->nfiles && bsearch(&p, names, keep->nfiles, sizeof(char *), path_cmp))
            in->files[k++] = in->files[i];
        else
            free(in->files[i].path);
    }
    in->nfiles = k;
    free(names);
    listing_recount(in);
}

/* ---- candidates ------------------------------------------------------------ */

static int path_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(const source_file_t *const *)a)->path, (*(const source_file_t *const *)b)->path);
}

/* Bring the candidates up to date from the names the watch reported: a
 * stat and a seen-file look-up for each new name, whatever the directory
 * holds. */
static int refresh_pending(source_t *s, ckpt_t *ckpt, sp_err_t *err)
{
    if (s->npending == 0)
        return 0;
    /* the candidates by path, to find a reported name among them */
    size_t n = s->cand.nfiles;
    source_file_t **byname = sp_xmalloc((n ? n : 1) * sizeof(source_file_t *));
    for (size_t i = 0; i < n; i++)
        byname[i] = &s->cand.files[i];
    qsort(byname, n, sizeof *byname, path_ptr_cmp);
    bool *gone = sp_xcalloc(n ? n : 1, sizeof(bool));
    source_listing_t fresh = {0};
    size_t cap = 0;
    for (size_t i = 0; i < s->npending; i++) {
        char *path = sp_xasprintf("%s/%s", s->path, s->pending[i]);
        source_file_t key = {.path = path}, *kp = &key;
        source_file_t **hit = n ? bsearch(&kp, byname, n, sizeof *byname, path_ptr_cmp) : NULL;
        struct stat st;
        bool present = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        int64_t mtime = present ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : 0;
        bool dup = false;
        for (size_t k = 0; k < fresh.nfiles && !dup; k++)
            dup = strcmp(fresh.files[k].path, path) == 0;
        if (hit) { /* known: it changed, or went away */
            if (present) {
                (*hit)->size = (uint64_t)st.st_size;
                (*hit)->mtime_ns = mtime;
            }
            gone[*hit - s->cand.files] = !present;
            free(path);
        } else if (!present || dup) {
            free(path);
        } else {
            if (fresh.nfiles == cap) {
                cap = cap ? 2 * cap : 16;
                fresh.files = sp_xrealloc(fresh.files, cap * sizeof(source_file_t));
            }
            fresh.files[fresh.nfiles++] = (source_file_t){path, (uint64_t)st.st_size, mtime};
        }
        free(s->pending[i]);
    }
    s->npending = 0;
    free(byname);
    /* drop the candidates that went away */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (gone[i])
            free(s->cand.files[i].path);
        else
            s->cand.files[k++] = s->cand.files[i];
    }
    s->cand.nfiles = k;
    free(gone);
    /* add the new names the checkpoint has not seen */
    int rc = 0;
    if (fresh.nfiles > 0) {
        const char **paths = sp_xmalloc(fresh.nfiles * sizeof(char *));
        bool *seen = sp_xcalloc(fresh.nfiles, sizeof(bool));
        for (size_t i = 0; i < fresh.nfiles; i++)
            paths[i] = fresh.files[i].path;
        rc = ckpt_files_seen(ckpt, paths, fresh.nfiles, seen, err);
        free(paths);
        s->cand.files = sp_xrealloc(s->cand.files, (s->cand.nfiles + fresh.nfiles + 1) * sizeof(source_file_t));
        for (size_t i = 0; i < fresh.nfiles; i++) {
            if (rc == 0 && !seen[i])
                s->cand.files[s->cand.nfiles++] = fresh.files[i];
            else
                free(fresh.files[i].path);
        }
        free(seen);
        free(fresh.files);
    }
    if (s->cand.nfiles > 1)
        qsort(s->cand.files, s->cand.nfiles, sizeof(source_file_t), file_cmp);
    listing_recount(&s->cand);
    return rc;
}

int source_refresh(source_t *s, ckpt_t *ckpt, uint64_t now_ms, sp_err_t *err)
{
    source_watch_drain(s);
    if (!s->listed || s->overflow || s->watch_fd < 0 || now_ms >= s->next_relist_ms) {
        /* a full listing: the first time, after lost events, without a
         * watch, and now and then as a safety net */
        source_listing_t l;
        int rc = source_list_new(s, ckpt, &l, err);
        if (rc != 0)
            return rc;
        source_listing_free(&s->cand);
        s->cand = l;
        s->listed = true;
        s->overflow = false;
        for (size_t i = 0; i < s->npending; i++)
            free(s->pending[i]);
        s->npending = 0;
        s->next_relist_ms = now_ms + s->relist_ms;
        return 0;
    }
    return refresh_pending(s, ckpt, err);
}

const source_listing_t *source_candidates(const source_t *s) { return &s->cand; }

size_t source_drop_older(source_t *s, int64_t cutoff_mtime_ns)
{
    size_t k = 0, dropped = 0;
    for (size_t i = 0; i < s->cand.nfiles; i++) {
        if (s->cand.files[i].mtime_ns < cutoff_mtime_ns) {
            free(s->cand.files[i].path);
            dropped++;
        } else {
            s->cand.files[k++] = s->cand.files[i];
        }
    }
    s->cand.nfiles = k;
    listing_recount(&s->cand);
    return dropped;
}

void source_take(source_t *s, const source_limits_t *lim, const source_listing_t *only,
                 source_listing_t *taken)
{
    if (only == NULL) {
        source_listing_take(&s->cand, lim, taken);
        return;
    }
    /* take from the candidates that are also in `only` */
    source_listing_t pool = {0};
    pool.files = sp_xmalloc((s->cand.nfiles ? s->cand.nfiles : 1) * sizeof(source_file_t));
    for (size_t i = 0; i < s->cand.nfiles; i++) {
        pool.files[i] = s->cand.files[i];
        pool.files[i].path = sp_xstrdup(s->cand.files[i].path);
    }
    pool.nfiles = s->cand.nfiles;
    source_listing_restrict(&pool, only);
    source_listing_take(&pool, lim, taken);
    source_listing_free(&pool);
    /* and drop what was taken from the candidates */
    size_t k = 0;
    for (size_t i = 0; i < s->cand.nfiles; i++) {
        bool was_taken = false;
        for (size_t t = 0; t < taken->nfiles && !was_taken; t++)
            was_taken = strcmp(taken->files[t].path, s->cand.files[i].path) == 0;
        if (was_taken)
            free(s->cand.files[i].path);
        else
            s->cand.files[k++] = s->cand.files[i];
    }
    s->cand.nfiles = k;
    listing_recount(&s->cand);
}

void source_plan_splits(source_listing_t *files, uint64_t split_bytes, ckpt_batch_t *b)
{
    if (split_bytes == 0)
        split_bytes = UINT64_MAX;
    b->files = sp_xcalloc(files->nfiles ? files->nfiles : 1, sizeof(ckpt_file_t));
    b->nfiles = files->nfiles;
    size_t nsplits = 0;
    for (size_t i = 0; i < files->nfiles; i++) {
        uint64_t size = files->files[i].size;
        nsplits += size == 0 ? 0 : (size_t)((size + split_bytes - 1) / split_bytes);
    }
    b->splits = sp_xcalloc(nsplits ? nsplits : 1, sizeof(ckpt_split_t));
    b->nsplits = 0;
    for (size_t i = 0; i < files->nfiles; i++) {
        source_file_t *f = &files->files[i];
        b->files[i].path = f->path;
        b->files[i].size = f->size;
        b->files[i].mtime_ns = f->mtime_ns;
        f->path = NULL;
        for (uint64_t off = 0; off < f->size; off += split_bytes) {
            ckpt_split_t *sp = &b->splits[b->nsplits++];
            sp->file = (uint32_t)i;
            sp->start = off;
            sp->end = f->size - off > split_bytes ? off + split_bytes : f->size;
        }
    }
    free(files->files);
    memset(files, 0, sizeof *files);
}
