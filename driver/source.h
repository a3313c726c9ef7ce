/* driver/source.h -- the file source: a directory of newline-delimited JSON
 * files. Lists it, drops what the checkpoint has already seen and names
 * that start with '.' or '_' (writers place files by rename), orders the
 * rest oldest first (modification time, then name), and cuts a batch by
 * the per-trigger limits. An inotify watch tells the driver when to look
 * again, so a new file is seen within milliseconds without busy listing.
 *
 * Behind a small ops table so other sources can follow; "json" is the one
 * there is today. */
#ifndef SP_SOURCE_H
#define SP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "sp_err.h"

typedef struct source source_t;

typedef struct source_limits {
    uint64_t max_files;  /* 0: no limit */
    uint64_t max_bytes;  /* 0: no limit; soft, a batch takes at least one file */
} source_limits_t;

/* A listed file not yet seen. */
typedef struct source_file {
    char *path;          /* absolute */
    uint64_t size;
    int64_t mtime_ns;
} source_file_t;

typedef struct source_listing {
    source_file_t *files; /* oldest first */
    size_t nfiles;
    uint64_t bytes;
    int64_t oldest_mtime_ns; /* 0 when empty */
} source_listing_t;

/* Open a source of `format` ("json") on directory `path` (resolved to an
 * absolute path). SP_EINVAL for an unknown format, SP_EIO with a message
 * when the directory cannot be read. */
int source_open(const char *format, const char *path, source_t **out, sp_err_t *err);
void source_close(source_t **s);

/* The absolute directory path (borrowed). */
const char *source_path(const source_t *s);

/* A file descriptor that becomes readable when the directory changes (an
 * inotify fd), or -1 when watching is unavailable (then poll by time). */
int source_watch_fd(const source_t *s);

/* Read the watch's events (their names feed source_refresh); returns true
 * if any arrived. */
bool source_watch_drain(source_t *s);

/* List the files not yet in the checkpoint's seen-file index (every file
 * when ckpt is NULL), oldest first. The caller frees with
 * source_listing_free. */
int source_list_new(source_t *s, ckpt_t *ckpt, source_listing_t *out, sp_err_t *err);

/* Take from the front of `in` what the limits allow (at least one file when
 * in has any). Moves the taken files into *taken and leaves the rest in in. */
void source_listing_take(source_listing_t *in, const source_limits_t *lim, source_listing_t *taken);

/* Drop from `in` every file not in `keep` (by path); used by available-now
 * to stay within the files present at start. */
void source_listing_restrict(source_listing_t *in, const source_listing_t *keep);

void source_listing_free(source_listing_t *l);

/* ---- candidates: the files not seen yet -------------------------------------
 * The source keeps the files it found in the directory that the checkpoint
 * has not seen. source_refresh brings them up to date: a full listing the
 * first time, after the watch lost events, without a watch, and every
 * relist interval (60 s; a safety net); otherwise only the names the watch
 * reported since (a stat and a seen-file look-up each), so a trigger costs
 * what arrived, not what the directory holds. */
int source_refresh(source_t *s, ckpt_t *ckpt, uint64_t now_ms, sp_err_t *err);

/* The candidates, oldest first (borrowed until the next refresh or take). */
const source_listing_t *source_candidates(const source_t *s);

/* Take from the candidates what the limits allow (only those also in
 * `only`, when not NULL: available-now's files), moving them to *taken. */
void source_take(source_t *s, const source_limits_t *lim, const source_listing_t *only, source_listing_t *taken);

/* Drop the candidates modified before cutoff_mtime_ns (--max-file-age);
 * returns how many. */
size_t source_drop_older(source_t *s, int64_t cutoff_mtime_ns);

/* How often a full listing runs even with a working watch. */
void source_set_relist_ms(source_t *s, uint64_t ms);

/* Cut the files of a batch into splits of at most split_bytes each
 * (one split per file when smaller; none for an empty file), filling b's
 * files and splits (b owns them afterwards; the listing's paths are moved). */
void source_plan_splits(source_listing_t *files, uint64_t split_bytes, ckpt_batch_t *b);

#endif
