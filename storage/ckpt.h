/* storage/ckpt.h -- the checkpoint: one LMDB environment in the checkpoint
 * directory holding everything a query needs to resume exactly. Named
 * databases mirror Spark's checkpoint folders:
 *
 *   metadata  the format record and the query record (id, source, schema,
 *             state signature, key groups)
 *   offsets   the write-ahead log: batch id -> planned files and splits,
 *             written before any task of the batch runs
 *   commits   batch id -> commit record, written in the same transaction
 *             as the batch's state changes and sink bookkeeping
 *   sources   file path -> the batch that took it (the seen-file index, a
 *             B-tree look-up per listed file)
 *   state     group key -> aggregate state bytes, in the order of the
 *             key bytes (query/value.h makes that the order of the
 *             values: a batch's groups share pages)
 *   sink      batch id -> the sink's record of what it wrote for the batch
 *   progress  the last progress reports (JSON), so they outlive the driver
 *
 * The byte layout of every record is in storage/ckpt_int.h. Every record
 * carries a version; a checkpoint written by a newer format is refused,
 * one of an older format is read as it is and rewritten to today's by
 * ckpt_upgrade before anything writes state. Format 1 (spate 0.1.0) put a
 * key group (2 bytes from the key's hash) before each state key and
 * stored numbers in keys little-endian, which scattered a batch's groups
 * over the whole B-tree; format 2 keys by the group key alone.
 *
 * One writer at a time: ckpt_open without CKPT_READONLY takes an exclusive
 * lock (a file lock on DIR/LOCK) for the life of the handle. Readers
 * (CKPT_READONLY) may open the checkpoint while a writer runs.
 *
 * Errors: every function returns 0 or a negative SP_E* code with a message
 * in err that names the checkpoint directory. In particular:
 *   SP_EBUSY      another process holds the writer lock
 *   SP_EVERSION   written by a newer format version
 *   SP_ECORRUPT   a damaged file or record ("checkpoint DIR is damaged: ...")
 *   SP_ENOSPC     the disk is full
 *   SP_EIO        any other failure of the filesystem
 *   SP_ERETRY     the map was full and has been grown: the caller aborts the
 *                 transaction it had open (if any) and repeats it
 *
 * Not safe to use one handle from several threads at once. Not to be used
 * across fork(). One handle per checkpoint per process (LMDB's rule): a
 * second ckpt_open of the same directory in the same process is SP_EBUSY. */
#ifndef SP_CKPT_H
#define SP_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_err.h"
#include "sp_util.h"

#define CKPT_FORMAT_VERSION 2

typedef struct ckpt ckpt_t;
typedef struct ckpt_txn ckpt_txn_t;

enum ckpt_open_flags {
    CKPT_CREATE = 1 << 0,   /* create the directory and environment if absent */
    CKPT_READONLY = 1 << 1, /* read only; no writer lock */
};

/* Open the checkpoint in dir. Without CKPT_CREATE a missing checkpoint is
 * SP_ENOTFOUND. A directory that exists, is not empty and holds no spate
 * checkpoint is refused (SP_EINVAL) so nothing else is ever overwritten.
 * On success *out is a handle the caller closes with ckpt_close. */
int ckpt_open(const char *dir, unsigned flags, ckpt_t **out, sp_err_t *err);

/* Make a fault inside the storage engine, while a ckpt_* call runs, end the
 * process with the one-line message "checkpoint DIR is damaged: ..." and
 * exit status 3 instead of a crash (LMDB trusts its pages; a damaged page
 * can make it read wild memory). Installs SIGSEGV/SIGBUS handlers that pass
 * every other fault on to the previous disposition. Call once, early in
 * main; the spate command does. */
void ckpt_guard_faults(void);

/* Close *c (aborting any open transaction) and set it to NULL; safe on NULL. */
void ckpt_close(ckpt_t **c);

/* The directory this handle was opened on (borrowed, valid until close). */
const char *ckpt_dir(const ckpt_t *c);

/* ---- metadata ---------------------------------------------------------- */

/* What the checkpoint pins about the query. Strings are owned by the
 * struct (ckpt_query_free); the caller fills them with malloc'd copies. */
typedef struct ckpt_query {
    char query_id[37];      /* UUID, stable across restarts */
    uint32_t format_version;/* of the checkpoint that holds it (read only) */
    int64_t created_ms;     /* when the checkpoint was created */
    char *name;             /* query name (may be empty) */
    char *source_name;      /* "activity" */
    char *source_format;    /* "json" */
    char *source_path;      /* absolute directory path */
    char *schema;           /* schema text form */
    char *sql;              /* the SQL text at the last start */
    char *group_signature;  /* plan_group_signature */
    char *aggs_signature;   /* plan_aggs_signature */
    char *output_names;     /* output column names, comma separated */
    char *output_mode;      /* "complete" / "update" at the last start */
    char *sink;             /* sink description at the last start */
    uint32_t key_groups;    /* fixed when the checkpoint is created */
} ckpt_query_t;

/* Read the query record. SP_ENOTFOUND when the checkpoint has none yet. */
int ckpt_query_read(ckpt_t *c, ckpt_query_t *out, sp_err_t *err);

/* Write (create or replace) the query record, and the format record when
 * absent, in one transaction. NULL strings are written as "". key_groups
 * cannot change once written (SP_EINCOMPAT). */
int ckpt_query_write(ckpt_t *c, const ckpt_query_t *q, sp_err_t *err);

/* Free the strings of q (not q itself) and zero it. */
void ckpt_query_free(ckpt_query_t *q);

/* ---- the write-ahead log: planned batches ------------------------------ */

typedef struct ckpt_file {
    char *path;             /* absolute path */
    uint64_t size;          /* bytes at planning time */
    int64_t mtime_ns;       /* modification time, ns since the epoch */
} ckpt_file_t;

/* A task's input: lines that start in [start, end) of files[file]. */
typedef struct ckpt_split {
    uint32_t file;
    uint64_t start;
    uint64_t end;
} ckpt_split_t;

typedef struct ckpt_batch {
    int64_t batch_id;
    int64_t timestamp_ms;   /* when it was planned (Spark's batchTimestampMs) */
    ckpt_file_t *files;
    size_t nfiles;
    ckpt_split_t *splits;
    size_t nsplits;
} ckpt_batch_t;

/* Write offsets[batch_id] and a sources entry for each file, in one
 * transaction. batch_id must be one more than the last planned batch (0
 * for the first); otherwise SP_EINVAL ("batch 7 is already planned:
 * another driver may be using this checkpoint"). The last planned batch
 * must be committed (else SP_EINVAL: run it again first), and a file the
 * sources index already holds is refused (SP_EINVAL). Grows the map and
 * retries by itself when it is full. */
int ckpt_batch_plan(ckpt_t *c, const ckpt_batch_t *b, sp_err_t *err);

/* Read offsets[batch_id] into out (caller frees with ckpt_batch_free).
 * SP_ENOTFOUND when absent. */
int ckpt_batch_read(ckpt_t *c, int64_t batch_id, ckpt_batch_t *out, sp_err_t *err);

/* Free the arrays and strings of b (not b itself) and zero it. */
void ckpt_batch_free(ckpt_batch_t *b);

/* The last planned and last committed batch ids, -1 when none. */
int ckpt_batch_last(ckpt_t *c, int64_t *planned, int64_t *committed, sp_err_t *err);

/* For each of n paths, set seen[i] when the sources index holds it. One
 * read transaction for all n. */
int ckpt_files_seen(ckpt_t *c, const char *const *paths, size_t n, bool *seen, sp_err_t *err);

/* Forget these files in the seen-file index (after --clean-source moved
 * them away: a new file of the same name is new data). Absent ones are
 * ignored. Its own transaction. */
int ckpt_forget_files(ckpt_t *c, const char *const *paths, size_t n, sp_err_t *err);

/* Forget every file whose modification time is before cutoff_mtime_ns
 * (--max-file-age: such files are ignored anyway). Scans the index; its own
 * transaction; *removed (may be NULL) receives how many. */
int ckpt_forget_files_older(ckpt_t *c, int64_t cutoff_mtime_ns, uint64_t *removed, sp_err_t *err);

/* ---- committing a batch ------------------------------------------------ */

typedef struct ckpt_commit {
    int64_t batch_id;
    int64_t committed_ms;
    uint64_t input_rows;      /* rows that passed parsing (before WHERE) */
    uint64_t malformed_rows;
    uint64_t state_rows;      /* groups in state after this batch */
    uint64_t updated_rows;    /* groups this batch changed */
} ckpt_commit_t;

/* Begin the write transaction that commits batch_id (which must be the
 * last planned batch and not yet committed). */
int ckpt_commit_begin(ckpt_t *c, int64_t batch_id, ckpt_txn_t **out, sp_err_t *err);

/* Look up a group's state. *state points into the map, valid until the
 * transaction ends or the next put. SP_ENOTFOUND when absent. */
int ckpt_txn_state_get(ckpt_txn_t *t, const void *key, size_t klen, const void **state, size_t *slen,
                       sp_err_t *err);

/* Insert or replace a group's state. Both refuse a checkpoint of an older
 * format with SP_EVERSION until ckpt_upgrade. */
int ckpt_txn_state_put(ckpt_txn_t *t, const void *key, size_t klen, const void *state, size_t slen,
                       sp_err_t *err);

/* Record the sink's bookkeeping for this batch (opaque bytes of the sink's
 * own versioned format). */
int ckpt_txn_sink_put(ckpt_txn_t *t, const void *rec, size_t len, sp_err_t *err);

/* Called for each state entry, in key order; return non-zero to stop (that
 * value is returned by the scan). Keys are in the checkpoint's key format
 * (ckpt_state_key_format): an older one until ckpt_upgrade. */
typedef int (*ckpt_state_fn)(void *ctx, const void *key, size_t klen, const void *state,
                             size_t slen);

/* Scan the state as this transaction sees it (its own puts included). fn
 * must not change or end the transaction (puts and ckpt_commit_end from
 * inside fn are refused with SP_EINVAL). */
int ckpt_txn_state_scan(ckpt_txn_t *t, ckpt_state_fn fn, void *ctx, sp_err_t *err);

/* Number of groups in state as this transaction sees it. */
uint64_t ckpt_txn_state_count(ckpt_txn_t *t);

/* Delete the offsets, commit and sink records of batches below `before`
 * (retention: the checkpoint keeps the last ones, as Spark keeps
 * minBatchesToRetain; the state and the seen-file index are untouched). */
int ckpt_txn_prune_batches(ckpt_txn_t *t, int64_t before, sp_err_t *err);

/* Write commits[batch_id] and commit the transaction; *t is freed and set
 * to NULL whatever the result. On SP_ERETRY nothing was written. */
int ckpt_commit_end(ckpt_txn_t **t, const ckpt_commit_t *rec, sp_err_t *err);

/* Abandon the transaction; *t is freed and set to NULL; safe on NULL. */
void ckpt_txn_abort(ckpt_txn_t **t);

/* ---- reading ----------------------------------------------------------- */

/* Scan the committed state in a read transaction. */
int ckpt_state_scan(ckpt_t *c, ckpt_state_fn fn, void *ctx, sp_err_t *err);

/* The format of the state keys a scan hands out: CKPT_FORMAT_VERSION, or
 * the older format of a checkpoint not upgraded yet (a reader converts,
 * e.g. with sp_key_upgrade for format 1). ckpt_state_scan refreshes it
 * from its own snapshot: ask from inside the scan's callback. */
uint32_t ckpt_state_key_format(const ckpt_t *c);

/* ---- upgrading ----------------------------------------------------------- */

/* Rewrite one state key of format `from` as today's key, appended to out
 * (the key codec is the query layer's, not storage's). */
typedef int (*ckpt_key_upgrade_fn)(void *ctx, uint32_t from, const void *key, size_t klen,
                                   sp_buf_t *out, sp_err_t *err);

/* Bring a checkpoint of an older format to CKPT_FORMAT_VERSION in one
 * write transaction (every state entry re-keyed through fn, the format
 * record rewritten); nothing to do for one of today's format. *from is the
 * format found, *entries the state entries rewritten. A crash during it
 * leaves the checkpoint in its old format. */
int ckpt_upgrade(ckpt_t *c, ckpt_key_upgrade_fn fn, void *ctx, uint32_t *from, uint64_t *entries,
                 sp_err_t *err);

/* Read commits[batch_id]; SP_ENOTFOUND when absent. */
int ckpt_commit_read(ckpt_t *c, int64_t batch_id, ckpt_commit_t *out, sp_err_t *err);

/* Read the sink record of batch_id (malloc'd copy in *rec, caller frees);
 * SP_ENOTFOUND when absent. */
int ckpt_sink_read(ckpt_t *c, int64_t batch_id, void **rec, size_t *len, sp_err_t *err);

/* ---- recent progress ---------------------------------------------------- */

/* Append one progress report (JSON text) and keep only the newest `keep`.
 * Its own transaction, committed without waiting for the disk: the next
 * batch's commit makes it durable (a crash may lose the newest report, never
 * a batch). */
int ckpt_progress_append(ckpt_t *c, const char *json, size_t len, size_t keep, sp_err_t *err);

/* Called with each kept report, oldest first; non-zero stops (and is
 * returned). json is borrowed for the call and not NUL-terminated. */
typedef int (*ckpt_progress_fn)(void *ctx, const char *json, size_t len);

/* The newest `last` reports (0: all kept), oldest first. A checkpoint that
 * has none (or predates the progress database) gives none. */
int ckpt_progress_read(ckpt_t *c, size_t last, ckpt_progress_fn fn, void *ctx, sp_err_t *err);

typedef struct ckpt_db_stat {
    const char *name;       /* static */
    uint64_t entries;
    uint64_t bytes;         /* pages used by the database times page size */
} ckpt_db_stat_t;

#define CKPT_NDBS 7

typedef struct ckpt_stats {
    ckpt_db_stat_t dbs[CKPT_NDBS];  /* metadata, offsets, commits, sources, state, sink, progress */
    int64_t last_planned;           /* -1 when none */
    int64_t last_committed;         /* -1 when none */
    uint32_t format_version;        /* 0 when no format record yet */
    uint64_t map_size;              /* current map size */
    uint64_t file_size;             /* size of the data file */
} ckpt_stats_t;

int ckpt_stats(ckpt_t *c, ckpt_stats_t *out, sp_err_t *err);

#endif
