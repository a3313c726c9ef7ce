/* tests/storage/ckpt_test.c -- the checkpoint store on real LMDB files in
 * scratch directories: round trips of every record, the batch sequencing
 * rules, the writer lock and readers in other processes, map growth, and
 * damaged, foreign, read-only and full checkpoints (each an error with a
 * message, never a crash). Records are also checked byte for byte against
 * storage/ckpt_int.h through LMDB directly, so the documented format and
 * the code cannot drift apart. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <lmdb.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "ckpt.h"
#include "ckpt_int.h"
#include "sp_util.h"
#include "ckpt_raw.h"
#include "testsupport.h"

/* ==== helpers ========================================================== */

#define assert_ok(rc, err) \
    cr_assert_eq((rc), 0, "rc %d (%s): %s", (rc), sp_strerror(rc), (err).msg)

/* rc is `code` and the message names what it should. */
#define assert_err(rc, code, err, needle)                                                  \
    do {                                                                                   \
        int rc__ = (rc);                                                                   \
        cr_assert_eq(rc__, (code), "rc %d (%s), expected %s: %s", rc__, sp_strerror(rc__), \
                     #code, (err).msg);                                                    \
        cr_assert(strstr((err).msg, (needle)) != NULL, "message \"%s\" lacks \"%s\"",      \
                  (err).msg, (needle));                                                    \
    } while (0)

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static ckpt_t *open_ok(const char *dir, unsigned flags)
{
    ckpt_t *c = NULL;
    sp_err_t err = {0};
    int rc = ckpt_open(dir, flags, &c, &err);
    assert_ok(rc, err);
    cr_assert_not_null(c);
    return c;
}

/* A batch of n files named <prefix>/f<i>.json, one split per file. */
static void batch_make(ckpt_batch_t *b, int64_t id, size_t n, const char *prefix)
{
    memset(b, 0, sizeof *b);
    b->batch_id = id;
    b->timestamp_ms = 1700000000000 + id;
    b->nfiles = n;
    b->files = calloc(n ? n : 1, sizeof *b->files);
    b->nsplits = n;
    b->splits = calloc(n ? n : 1, sizeof *b->splits);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/f%06zu.json", prefix, i);
        b->files[i].path = strdup(path);
        b->files[i].size = 1000 + i;
        b->files[i].mtime_ns = 1700000000000000000 + (int64_t)i;
        b->splits[i] = (ckpt_split_t){.file = (uint32_t)i, .start = 0, .end = 1000 + i};
    }
}

static void plan_ok(ckpt_t *c, int64_t id, size_t nfiles)
{
    ckpt_batch_t b;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "/data/batch%" PRId64, id);
    batch_make(&b, id, nfiles, prefix);
    sp_err_t err = {0};
    int rc = ckpt_batch_plan(c, &b, &err);
    assert_ok(rc, err);
    ckpt_batch_free(&b);
}

static ckpt_commit_t commit_rec(int64_t id)
{
    return (ckpt_commit_t){.batch_id = id, .committed_ms = 1700000001000 + id,
                           .input_rows = 100 + (uint64_t)id, .malformed_rows = 1,
                           .state_rows = 7, .updated_rows = 3};
}

/* Value of entry i: 100 bytes derived from i. */
static void value_of(uint32_t i, uint8_t v[100])
{
    for (int j = 0; j < 100; j++)
        v[j] = (uint8_t)(i * 31u + (uint32_t)j * 7u);
}

static size_t key_of(uint32_t i, char k[16])
{
    return (size_t)snprintf(k, 16, "k%09u", i);
}

/* Put entries [from, to) in one commit of batch id, redoing the whole
 * commit on SP_ERETRY as a driver does. Returns how many retries. */
static int commit_entries(ckpt_t *c, int64_t id, uint32_t from, uint32_t to)
{
    for (int retries = 0;; retries++) {
        cr_assert(retries < 30, "too many retries");
        sp_err_t err = {0};
        ckpt_txn_t *t = NULL;
        int rc = ckpt_commit_begin(c, id, &t, &err);
        assert_ok(rc, err);
        for (uint32_t i = from; i < to && rc == 0; i++) {
            char k[16];
            uint8_t v[100];
            value_of(i, v);
            rc = ckpt_txn_state_put(t, k, key_of(i, k), v, sizeof v, &err);
        }
        if (rc == 0) {
            ckpt_commit_t rec = commit_rec(id);
            rc = ckpt_commit_end(&t, &rec, &err);
            cr_assert_null(t);
        }
        ckpt_txn_abort(&t);
        if (rc == SP_ERETRY) {
            cr_assert(strstr(err.msg, "redo the commit") != NULL, "%s", err.msg);
            continue;
        }
        assert_ok(rc, err);
        return retries;
    }
}

typedef struct scan_ctx {
    size_t n;
    size_t bad;
    long long last; /* the last entry's number, -1 before the first */
    char first_bad[256];
} scan_ctx_t;

/* Checks that each entry is what commit_entries put. */
static int check_entry(void *vctx, const void *key, size_t klen, const void *state, size_t slen)
{
    scan_ctx_t *ctx = vctx;
    char k[16];
    unsigned i = 0;
    if (klen >= sizeof k) {
        ctx->bad++;
        return 0;
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    uint8_t v[100];
    if (sscanf(k, "k%9u", &i) != 1 || (long long)i <= ctx->last ||
        slen != 100 || (value_of(i, v), memcmp(v, state, 100) != 0)) {
        if (ctx->bad++ == 0)
            snprintf(ctx->first_bad, sizeof ctx->first_bad, "key %s after %lld, slen %zu", k,
                     ctx->last, slen);
    }
    ctx->last = i;
    ctx->n++;
    return 0;
}

/* Run fn(arg) in a child process; returns its exit status (or 200 + signal
 * when it was killed, 255 on timeout). */
static int in_child(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    int status = 0;
    if (ts_wait(pid, 60000, &status) != 1) {
        ts_kill(pid, SIGKILL);
        return 255;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

/* ---- raw LMDB, to craft and inspect records beneath the API ----------- */




static size_t raw_main_entries(const char *dir)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}



static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/* A checkpoint with a query, two committed batches and some state. */
static void fill_small(ckpt_t *c)
{
    sp_err_t err = {0};
    ckpt_query_t q = {.query_id = "0b0c7a52-2f5e-4a55-9d8e-4b1d2a0c9e11",
                      .name = "MARKER-QUERY-NAME-0123456789", .key_groups = 256};
    assert_ok(ckpt_query_write(c, &q, &err), err);
    plan_ok(c, 0, 10);
    commit_entries(c, 0, 0, 2000);
    plan_ok(c, 1, 10);
    commit_entries(c, 1, 2000, 4000);
}

/* ==== usage ============================================================= */

/* The life of a checkpoint, as the driver uses it. */
Test(ckpt, usage)
{
    char *dir = ts_tmpdir("ckpt");
    char *path = join(dir, "q1/checkpoint");
    sp_err_t err = {0};

    /* First start: create the checkpoint and pin the query. */
    ckpt_t *c = NULL;
    assert_ok(ckpt_open(path, CKPT_CREATE, &c, &err), err);
    ckpt_query_t q = {.key_groups = 256};
    sp_uuid_v4(q.query_id);
    q.name = "clicks";
    q.sql = "SELECT user, count(*) FROM activity GROUP BY user";
    assert_ok(ckpt_query_write(c, &q, &err), err);

    /* Plan batch 0 into the write-ahead log before running it. */
    const char *listed[] = {"/in/a.json", "/in/b.json"};
    bool seen[2];
    assert_ok(ckpt_files_seen(c, listed, 2, seen, &err), err);
    cr_assert(!seen[0] && !seen[1]);
    ckpt_file_t files[] = {{(char *)listed[0], 10, 1}, {(char *)listed[1], 20, 2}};
    ckpt_split_t splits[] = {{0, 0, 10}, {1, 0, 20}};
    ckpt_batch_t b = {.batch_id = 0, .timestamp_ms = 1, .files = files, .nfiles = 2,
                      .splits = splits, .nsplits = 2};
    assert_ok(ckpt_batch_plan(c, &b, &err), err);

    /* Commit: state, sink bookkeeping and the commit record in one txn. */
    ckpt_txn_t *t = NULL;
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    const void *st;
    size_t slen;
    cr_assert_eq(ckpt_txn_state_get(t, "alice", 5, &st, &slen, &err), SP_ENOTFOUND);
    assert_ok(ckpt_txn_state_put(t, "alice", 5, "\x02\0\0\0\0\0\0\0", 8, &err), err);
    assert_ok(ckpt_txn_sink_put(t, "sink-v1", 7, &err), err);
    cr_assert_eq(ckpt_txn_state_count(t), 1);
    ckpt_commit_t rec = {.batch_id = 0, .committed_ms = 2, .input_rows = 2, .state_rows = 1,
                         .updated_rows = 1};
    assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    cr_assert_null(t);
    ckpt_close(&c);
    cr_assert_null(c);

    /* Restart: the checkpoint says where to resume. */
    assert_ok(ckpt_open(path, 0, &c, &err), err);
    int64_t planned, committed;
    assert_ok(ckpt_batch_last(c, &planned, &committed, &err), err);
    cr_assert_eq(planned, 0);
    cr_assert_eq(committed, 0);
    assert_ok(ckpt_files_seen(c, listed, 2, seen, &err), err);
    cr_assert(seen[0] && seen[1]);
    ckpt_query_t back;
    assert_ok(ckpt_query_read(c, &back, &err), err);
    cr_assert_str_eq(back.query_id, q.query_id);
    cr_assert_str_eq(back.sql, q.sql);
    ckpt_query_free(&back);
    ckpt_close(&c);
    ckpt_close(&c); /* safe twice */

    free(path);
    ts_rmtree(dir);
    free(dir);
}

/* ==== opening =========================================================== */

Test(ckpt, create_open_reopen)
{
    char *dir = ts_tmpdir("ckpt");
    char *path = join(dir, "a/b/c");
    sp_err_t err = {0};
    ckpt_t *c = NULL;

    assert_err(ckpt_open(path, 0, &c, &err), SP_ENOTFOUND, err, path);
    cr_assert_null(c);
    assert_err(ckpt_open(path, CKPT_READONLY, &c, &err), SP_ENOTFOUND, err, path);
    assert_err(ckpt_open(path, CKPT_CREATE | CKPT_READONLY, &c, &err), SP_EINVAL, err, "read-only");
    assert_err(ckpt_open("", 0, &c, &err), SP_EINVAL, err, "directory");

    c = open_ok(path, CKPT_CREATE); /* mkdir -p */
    cr_assert_str_eq(ckpt_dir(c), path);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.format_version, CKPT_FORMAT_VERSION);
    cr_assert_eq(s.last_planned, -1);
    cr_assert_eq(s.last_committed, -1);
    cr_assert_geq(s.map_size, (uint64_t)CKPT_MAP_INITIAL);
    cr_assert_gt(s.file_size, 0);
    const char *names[] = {"metadata", "offsets", "commits", "sources", "state", "sink", "progress"};
    for (int i = 0; i < CKPT_NDBS; i++)
        cr_assert_str_eq(s.dbs[i].name, names[i]);
    cr_assert_eq(s.dbs[0].entries, 1); /* the format record */
    ckpt_close(&c);

    /* Reopen as writer without CKPT_CREATE, then as reader. */
    c = open_ok(path, 0);
    ckpt_close(&c);
    c = open_ok(path, CKPT_CREATE);
    ckpt_close(&c);
    c = open_ok(path, CKPT_READONLY);
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.format_version, CKPT_FORMAT_VERSION);
    ckpt_close(&c);

    /* An empty existing directory is created into; a file is refused. */
    char *empty = join(dir, "empty");
    cr_assert_eq(mkdir(empty, 0755), 0);
    assert_err(ckpt_open(empty, 0, &c, &err), SP_ENOTFOUND, err, empty);
    c = open_ok(empty, CKPT_CREATE);
    ckpt_close(&c);
    /* A zero-byte data.mdb (a creation that died at once) counts as absent. */
    char *zero = join(dir, "zero"), *zero_data = join(zero, "data.mdb");
    cr_assert_eq(mkdir(zero, 0755), 0);
    cr_assert_eq(ts_write_file(zero_data, "", 0), 0);
    assert_err(ckpt_open(zero, CKPT_READONLY, &c, &err), SP_ENOTFOUND, err, zero);
    c = open_ok(zero, CKPT_CREATE);
    ckpt_close(&c);
    c = open_ok(zero, CKPT_READONLY);
    ckpt_close(&c);
    free(zero);
    free(zero_data);
    char *file = join(dir, "file");
    cr_assert_eq(ts_write_file(file, "x", 1), 0);
    assert_err(ckpt_open(file, CKPT_CREATE, &c, &err), SP_EINVAL, err, "not a directory");

    free(empty);
    free(file);
    free(path);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, foreign_directory_refused)
{
    char *dir = ts_tmpdir("ckpt");
    const char *names[] = {"notes.txt", "photo.jpg", "a", "b"};
    for (size_t i = 0; i < 4; i++) {
        char *p = join(dir, names[i]);
        cr_assert_eq(ts_write_file(p, "x", 1), 0);
        free(p);
    }
    sp_err_t err = {0};
    ckpt_t *c = NULL;
    assert_err(ckpt_open(dir, CKPT_CREATE, &c, &err), SP_EINVAL, err, "not a spate checkpoint");
    cr_assert(strstr(err.msg, "and 1 more") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "notes.txt") || strstr(err.msg, "photo.jpg"), "%s", err.msg);
    assert_err(ckpt_open(dir, CKPT_READONLY, &c, &err), SP_EINVAL, err, "not a spate checkpoint");
    cr_assert_null(c);
    /* Nothing was written into it. */
    char *lock = join(dir, "LOCK"), *data = join(dir, "data.mdb");
    cr_assert_neq(access(lock, F_OK), 0);
    cr_assert_neq(access(data, F_OK), 0);

    /* An LMDB environment of another program. */
    char *other = join(dir, "other");
    mkdir(other, 0755);
    raw_put(other, NULL, "hello", 5, "world", 5);
    assert_err(ckpt_open(other, 0, &c, &err), SP_EINVAL, err, "not a spate checkpoint");
    assert_err(ckpt_open(other, CKPT_READONLY, &c, &err), SP_EINVAL, err,
               "not a spate checkpoint");

    free(other);
    free(lock);
    free(data);
    ts_rmtree(dir);
    free(dir);
}

/* ==== metadata ========================================================== */

Test(ckpt, query_round_trip)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    ckpt_query_t q = {0}, back;
    assert_err(ckpt_query_read(c, &back, &err), SP_ENOTFOUND, err, "no query record");

    char *long_sql = malloc(100001);
    memset(long_sql, 's', 100000);
    long_sql[100000] = '\0';
    strcpy(q.query_id, "7f8e9d0c-1b2a-4c3d-8e4f-5a6b7c8d9e0f");
    q.created_ms = 42;
    q.name = "name";
    q.source_name = "activity";
    q.source_format = "json";
    q.source_path = "/data/in";
    q.schema = "user STRING, n BIGINT";
    q.sql = long_sql;
    q.group_signature = "user:STRING";
    q.aggs_signature = "count(*)";
    q.output_names = "user,count(1)";
    q.output_mode = "complete";
    q.sink = NULL; /* written as "" */
    q.key_groups = 65536;
    assert_ok(ckpt_query_write(c, &q, &err), err);
    ckpt_close(&c);

    c = open_ok(dir, CKPT_READONLY);
    assert_ok(ckpt_query_read(c, &back, &err), err);
    cr_assert_str_eq(back.query_id, q.query_id);
    cr_assert_eq(back.format_version, CKPT_FORMAT_VERSION);
    cr_assert_gt(back.created_ms, 1600000000000); /* from the format record */
    cr_assert_str_eq(back.name, "name");
    cr_assert_str_eq(back.source_name, "activity");
    cr_assert_str_eq(back.source_format, "json");
    cr_assert_str_eq(back.source_path, "/data/in");
    cr_assert_str_eq(back.schema, q.schema);
    cr_assert_str_eq(back.sql, long_sql);
    cr_assert_str_eq(back.group_signature, q.group_signature);
    cr_assert_str_eq(back.aggs_signature, q.aggs_signature);
    cr_assert_str_eq(back.output_names, q.output_names);
    cr_assert_str_eq(back.output_mode, "complete");
    cr_assert_str_eq(back.sink, "");
    cr_assert_eq(back.key_groups, 65536);
    ckpt_query_free(&back);
    cr_assert_null(back.sql);
    assert_err(ckpt_query_write(c, &q, &err), SP_EINVAL, err, "read-only");
    ckpt_close(&c);

    /* Replace: a new SQL text is fine, other key groups are not. */
    c = open_ok(dir, 0);
    q.sql = "SELECT 1";
    assert_ok(ckpt_query_write(c, &q, &err), err);
    q.key_groups = 128;
    assert_err(ckpt_query_write(c, &q, &err), SP_EINCOMPAT, err, "key groups");
    q.key_groups = 0;
    assert_err(ckpt_query_write(c, &q, &err), SP_EINVAL, err, "key groups");
    assert_ok(ckpt_query_read(c, &back, &err), err);
    cr_assert_str_eq(back.sql, "SELECT 1");
    cr_assert_eq(back.key_groups, 65536);
    ckpt_query_free(&back);
    ckpt_close(&c);

    free(long_sql);
    ts_rmtree(dir);
    free(dir);
}

/* ==== the write-ahead log =============================================== */

Test(ckpt, batch_plan_read_round_trip)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);

    /* 5000 files, a few with paths beyond the inline key limit, and
     * several splits per file. */
    ckpt_batch_t b;
    batch_make(&b, 0, 5000, "/data/in");
    char longp[1200];
    memset(longp, 'x', sizeof longp);
    memcpy(longp, "/data/deep/", 11);
    for (int i = 0; i < 3; i++) {
        longp[sizeof longp - 1] = '\0';
        longp[sizeof longp - 2] = (char)('a' + i);
        free(b.files[i].path);
        b.files[i].path = strdup(longp);
    }
    b.files[4].mtime_ns = -5; /* before 1970 */
    b.files[5].size = UINT64_MAX;
    free(b.splits);
    b.nsplits = 3 * b.nfiles;
    b.splits = calloc(b.nsplits, sizeof *b.splits);
    for (size_t i = 0; i < b.nsplits; i++)
        b.splits[i] = (ckpt_split_t){.file = (uint32_t)(i / 3), .start = (i % 3) * 1000000,
                                     .end = (i % 3 + 1) * 1000000 + UINT32_MAX};
    assert_ok(ckpt_batch_plan(c, &b, &err), err);
    ckpt_close(&c);

    c = open_ok(dir, CKPT_READONLY);
    ckpt_batch_t r;
    assert_ok(ckpt_batch_read(c, 0, &r, &err), err);
    cr_assert_eq(r.batch_id, 0);
    cr_assert_eq(r.timestamp_ms, b.timestamp_ms);
    cr_assert_eq(r.nfiles, b.nfiles);
    cr_assert_eq(r.nsplits, b.nsplits);
    for (size_t i = 0; i < b.nfiles; i++) {
        cr_assert_str_eq(r.files[i].path, b.files[i].path);
        cr_assert_eq(r.files[i].size, b.files[i].size);
        cr_assert_eq(r.files[i].mtime_ns, b.files[i].mtime_ns);
    }
    for (size_t i = 0; i < b.nsplits; i++) {
        cr_assert_eq(r.splits[i].file, b.splits[i].file);
        cr_assert_eq(r.splits[i].start, b.splits[i].start);
        cr_assert_eq(r.splits[i].end, b.splits[i].end);
    }
    ckpt_batch_free(&r);
    cr_assert_null(r.files);
    assert_err(ckpt_batch_read(c, 1, &r, &err), SP_ENOTFOUND, err, "batch 1");
    assert_err(ckpt_batch_read(c, -1, &r, &err), SP_ENOTFOUND, err, "batch -1");

    /* Every planned file is seen, long paths included; near misses are not. */
    const char **paths = calloc(b.nfiles + 2, sizeof *paths);
    bool *seen = calloc(b.nfiles + 2, sizeof *seen);
    for (size_t i = 0; i < b.nfiles; i++)
        paths[i] = b.files[i].path;
    longp[sizeof longp - 2] = 'z'; /* same 400-byte prefix, not planned */
    paths[b.nfiles] = longp;
    paths[b.nfiles + 1] = "/data/in/f000000.jso";
    assert_ok(ckpt_files_seen(c, paths, b.nfiles + 2, seen, &err), err);
    for (size_t i = 0; i < b.nfiles; i++)
        cr_assert(seen[i], "file %zu not seen", i);
    cr_assert(!seen[b.nfiles]);
    cr_assert(!seen[b.nfiles + 1]);
    ckpt_close(&c);

    free(paths);
    free(seen);
    ckpt_batch_free(&b);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, batch_sequencing)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    ckpt_batch_t b;
    ckpt_txn_t *t = NULL, *t2 = NULL;

    batch_make(&b, 1, 1, "/x");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "cannot be planned");
    ckpt_batch_free(&b);
    batch_make(&b, -1, 1, "/x");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "negative");
    ckpt_batch_free(&b);
    batch_make(&b, 0, 2, "/x");
    b.splits[1].file = 2;
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "out of range");
    b.splits[1] = (ckpt_split_t){.file = 1, .start = 5, .end = 4};
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "out of range");
    b.splits[1] = (ckpt_split_t){.file = 1, .start = 0, .end = 4};
    free(b.files[1].path);
    b.files[1].path = strdup(b.files[0].path);
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "twice");
    ckpt_batch_free(&b);
    assert_err(ckpt_commit_begin(c, 0, &t, &err), SP_EINVAL, err, "cannot be committed");
    cr_assert_null(t);

    plan_ok(c, 0, 3);
    batch_make(&b, 0, 1, "/y");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "already planned");
    ckpt_batch_free(&b);
    batch_make(&b, 1, 1, "/y");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "not committed");
    ckpt_batch_free(&b);

    assert_err(ckpt_commit_begin(c, 1, &t, &err), SP_EINVAL, err, "last planned batch is 0");
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    /* One commit at a time, and no planning under it. */
    assert_err(ckpt_commit_begin(c, 0, &t2, &err), SP_EINVAL, err, "still open");
    batch_make(&b, 1, 1, "/y");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "still open");
    ckpt_batch_free(&b);
    ckpt_commit_t rec = commit_rec(5);
    assert_err(ckpt_commit_end(&t, &rec, &err), SP_EINVAL, err, "names batch 5");
    cr_assert_null(t);
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    rec = commit_rec(0);
    assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    assert_err(ckpt_commit_begin(c, 0, &t, &err), SP_EINVAL, err, "already committed");

    batch_make(&b, 2, 1, "/y");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "last planned batch is 0");
    ckpt_batch_free(&b);
    /* A file of batch 0 cannot be taken again. */
    batch_make(&b, 1, 1, "/data/batch0");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "already taken by batch 0");
    ckpt_batch_free(&b);
    batch_make(&b, 1, 0, "/y"); /* a batch without files is fine */
    assert_ok(ckpt_batch_plan(c, &b, &err), err);
    ckpt_batch_free(&b);
    ckpt_close(&c);

    /* Read-only handles plan and commit nothing. */
    c = open_ok(dir, CKPT_READONLY);
    batch_make(&b, 2, 1, "/z");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_EINVAL, err, "read-only");
    ckpt_batch_free(&b);
    assert_err(ckpt_commit_begin(c, 1, &t, &err), SP_EINVAL, err, "read-only");
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, last_planned_and_committed)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    int64_t p, m;
    for (int64_t id = 0; id < 5; id++) {
        assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
        cr_assert_eq(p, id - 1);
        cr_assert_eq(m, id - 1);
        plan_ok(c, id, 2);
        assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
        cr_assert_eq(p, id);
        cr_assert_eq(m, id - 1);
        /* An aborted commit changes nothing. */
        ckpt_txn_t *t;
        assert_ok(ckpt_commit_begin(c, id, &t, &err), err);
        ckpt_txn_abort(&t);
        cr_assert_null(t);
        ckpt_txn_abort(&t); /* safe on NULL */
        assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
        cr_assert_eq(m, id - 1);
        commit_entries(c, id, 0, 10);
        assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
        cr_assert_eq(p, id);
        cr_assert_eq(m, id);
    }
    /* Batch ids past 255 keep numeric order (8-byte big-endian keys). */
    for (int64_t id = 5; id < 300; id++) {
        plan_ok(c, id, 0);
        commit_entries(c, id, 0, 1);
    }
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(p, 299);
    cr_assert_eq(m, 299);
    ckpt_commit_t rec;
    assert_ok(ckpt_commit_read(c, 256, &rec, &err), err);
    cr_assert_eq(rec.batch_id, 256);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ==== committing ======================================================== */

typedef struct collect {
    size_t n;
    char keys[16][1100];
    size_t klens[16];
    char states[16][32];
    int stop_after;
} collect_t;

static int collect_fn(void *vctx, const void *key, size_t klen, const void *state, size_t slen)
{
    collect_t *ctx = vctx;
    if (ctx->n < 16) {
        memcpy(ctx->keys[ctx->n], key, klen < 1100 ? klen : 1100);
        ctx->klens[ctx->n] = klen;
        snprintf(ctx->states[ctx->n], 32, "%.*s", (int)slen, (const char *)state);
    }
    ctx->n++;
    return ctx->stop_after && (int)ctx->n == ctx->stop_after ? 77 : 0;
}

Test(ckpt, commit_state_sink_and_abort)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 1);

    /* An aborted commit leaves nothing behind. */
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "gone", 4, "x", 1, &err), err);
    assert_ok(ckpt_txn_sink_put(t, "gone", 4, &err), err);
    ckpt_txn_abort(&t);
    collect_t col = {0};
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 0);
    void *sink;
    size_t slen;
    assert_err(ckpt_sink_read(c, 0, &sink, &slen, &err), SP_ENOTFOUND, err, "batch 0");
    ckpt_commit_t rec;
    assert_err(ckpt_commit_read(c, 0, &rec, &err), SP_ENOTFOUND, err, "batch 0");

    /* Puts, replacement, gets and scans inside the transaction. */
    char long1[1000], long2[1000];
    memset(long1, 'L', sizeof long1);
    memcpy(long2, long1, sizeof long2);
    long2[999] = 'M'; /* same first 400 bytes */
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "b", 1, "s-b", 3, &err), err);
    assert_ok(ckpt_txn_state_put(t, "z", 1, "s-z", 3, &err), err);
    assert_ok(ckpt_txn_state_put(t, "a", 1, "old", 3, &err), err);
    assert_ok(ckpt_txn_state_put(t, "a", 1, "s-a", 3, &err), err);
    assert_ok(ckpt_txn_state_put(t, NULL, 0, "s-empty", 7, &err), err);
    assert_ok(ckpt_txn_state_put(t, "max", 3, "", 0, &err), err);
    assert_ok(ckpt_txn_state_put(t, long1, sizeof long1, "s-l1", 4, &err), err);
    assert_ok(ckpt_txn_state_put(t, long2, sizeof long2, "s-l2", 4, &err), err);
    assert_ok(ckpt_txn_state_put(t, long2, sizeof long2, "s-l2b", 5, &err), err);
    cr_assert_eq(ckpt_txn_state_count(t), 7);
    const void *st;
    size_t stlen;
    assert_ok(ckpt_txn_state_get(t, "a", 1, &st, &stlen, &err), err);
    cr_assert_eq(stlen, 3);
    cr_assert_eq(memcmp(st, "s-a", 3), 0);
    cr_assert_eq(ckpt_txn_state_get(t, "c", 1, &st, &stlen, &err), SP_ENOTFOUND);
    assert_ok(ckpt_txn_state_get(t, long2, sizeof long2, &st, &stlen, &err), err);
    cr_assert_eq(stlen, 5);
    cr_assert_eq(memcmp(st, "s-l2b", 5), 0);
    assert_ok(ckpt_txn_state_get(t, "max", 3, &st, &stlen, &err), err);
    cr_assert_eq(stlen, 0);
    memset(&col, 0, sizeof col);
    assert_ok(ckpt_txn_state_scan(t, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 7);
    /* The scan's early stop returns the callback's value. */
    collect_t stop = {.stop_after = 2};
    cr_assert_eq(ckpt_txn_state_scan(t, collect_fn, &stop, &err), 77);
    cr_assert_eq(stop.n, 2);
    static const char sink_rec[] = "sink\0bytes";
    assert_ok(ckpt_txn_sink_put(t, sink_rec, sizeof sink_rec, &err), err);
    /* Not visible outside the transaction before it commits. */
    memset(&col, 0, sizeof col);
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 0);
    rec = commit_rec(0);
    assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    ckpt_close(&c);

    /* Committed: in the order of the key bytes ('L...' before 'a'). */
    c = open_ok(dir, CKPT_READONLY);
    cr_assert_eq(ckpt_state_key_format(c), CKPT_FORMAT_VERSION);
    memset(&col, 0, sizeof col);
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 7);
    const char *states[] = {"s-empty", "s-l1", "s-l2b", "s-a", "s-b", "", "s-z"};
    /* Long keys that share their first 400 bytes sort by their hash. */
    int l1 = strcmp(col.states[1], "s-l1") == 0 ? 1 : 2, l2 = 3 - l1;
    for (int i = 0; i < 7; i++) {
        int j = i == 1 ? l1 : i == 2 ? l2 : i;
        cr_assert_str_eq(col.states[j], states[i], "entry %d", i);
    }
    cr_assert_eq(col.klens[0], 0);
    cr_assert_eq(col.klens[l1], 1000);
    cr_assert_eq(memcmp(col.keys[l1], long1, 1000), 0);
    cr_assert_eq(memcmp(col.keys[l2], long2, 1000), 0);
    assert_ok(ckpt_commit_read(c, 0, &rec, &err), err);
    ckpt_commit_t want = commit_rec(0);
    cr_assert_eq(memcmp(&rec, &want, sizeof rec), 0);
    assert_ok(ckpt_sink_read(c, 0, &sink, &slen, &err), err);
    cr_assert_eq(slen, sizeof sink_rec);
    cr_assert_eq(memcmp(sink, sink_rec, slen), 0);
    free(sink);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.dbs[CKPT_DB_STATE].entries, 7);
    cr_assert_eq(s.dbs[CKPT_DB_COMMITS].entries, 1);
    cr_assert_eq(s.dbs[CKPT_DB_SINK].entries, 1);
    cr_assert_eq(s.dbs[CKPT_DB_OFFSETS].entries, 1);
    cr_assert_eq(s.dbs[CKPT_DB_SOURCES].entries, 1);
    cr_assert_gt(s.dbs[CKPT_DB_STATE].bytes, 0);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, transaction_outliving_its_checkpoint)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 1);
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "k", 1, "v", 1, &err), err);
    ckpt_close(&c); /* aborts the transaction; t stays the caller's */
    assert_err(ckpt_txn_state_put(t, "k", 1, "v", 1, &err), SP_EINVAL, err, "closed");
    cr_assert_eq(ckpt_txn_state_count(t), 0);
    ckpt_txn_abort(&t);
    cr_assert_null(t);
    c = open_ok(dir, 0);
    int64_t p, m;
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(m, -1);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

typedef struct meddle {
    ckpt_txn_t *t;
    int put_rc, end_rc;
} meddle_t;

static int meddle_fn(void *vctx, const void *key, size_t klen, const void *state, size_t slen)
{
    meddle_t *m = vctx;
    sp_err_t err = {0};
    ckpt_commit_t rec = commit_rec(0);
    m->put_rc = ckpt_txn_state_put(m->t, "new", 3, "x", 1, &err);
    m->end_rc = ckpt_commit_end(&m->t, &rec, &err);
    return 1;
}

/* A scan callback may read but not change or end the transaction it scans. */
Test(ckpt, no_writes_from_scan_callbacks)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 1);
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 0, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "k", 1, "v", 1, &err), err);
    meddle_t m = {.t = t};
    cr_assert_eq(ckpt_txn_state_scan(t, meddle_fn, &m, &err), 1);
    cr_assert_eq(m.put_rc, SP_EINVAL);
    cr_assert_eq(m.end_rc, SP_EINVAL);
    cr_assert_eq(m.t, t, "commit_end inside the scan ended the transaction");
    cr_assert_eq(ckpt_txn_state_count(t), 1);
    ckpt_commit_t rec = commit_rec(0);
    assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ==== the format, byte for byte ========================================= */

/* Fixed bytes prove that nothing depends on the machine: big-endian keys,
 * MessagePack bodies, a CRC over key and value. */
Test(ckpt, records_match_the_documented_format)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    for (int64_t id = 0; id < 4; id++) {
        plan_ok(c, id, id == 3 ? 1 : 0);
        commit_entries(c, id, 0, 0);
    }
    ckpt_close(&c);
    c = open_ok(dir, 0);
    ckpt_txn_t *t;
    plan_ok(c, 4, 0);
    assert_ok(ckpt_commit_begin(c, 4, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "abc", 3, "\x09\x08", 2, &err), err);
    ckpt_commit_t rec = {.batch_id = 4, .committed_ms = 1700000000000, .input_rows = 10,
                         .malformed_rows = 1, .state_rows = 5, .updated_rows = 300};
    assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    ckpt_close(&c);

    /* commits[4] */
    static const uint8_t key4[8] = {0, 0, 0, 0, 0, 0, 0, 4};
    static const uint8_t body[] = {
        'C', 1, 0x96, 0x04,                                         /* [4, */
        0xcf, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,        /* 1700000000000, */
        0x0a, 0x01, 0x05, 0xcd, 0x01, 0x2c};                        /* 10, 1, 5, 300] */
    size_t n;
    uint8_t *v = raw_get(dir, "commits", key4, 8, &n);
    cr_assert_not_null(v);
    cr_assert_eq(n, sizeof body + 4);
    cr_assert_eq(memcmp(v, body, sizeof body), 0);
    uLong crc = crc32(crc32(0, key4, 8), v, (uInt)sizeof body);
    cr_assert_eq(((uint32_t)v[n - 4] << 24 | (uint32_t)v[n - 3] << 16 | (uint32_t)v[n - 2] << 8 |
                  v[n - 1]), (uint32_t)crc);
    free(v);

    /* state["K" "abc"] = version byte, the aggregate bytes, CRC */
    v = raw_get(dir, "state", "Kabc", 4, &n);
    cr_assert_not_null(v);
    cr_assert_eq(n, 7);
    cr_assert_eq(memcmp(v, "\x01\x09\x08", 3), 0);
    uint8_t sealed[8] = {1, 9, 8};
    raw_seal("Kabc", 4, sealed, 3);
    cr_assert_eq(memcmp(v, sealed, 7), 0, "the CRC covers key and value");
    free(v);

    /* sources[path]: ['S', 1, [batch 3, size 1000, mtime], crc] */
    const char *path = "/data/batch3/f000000.json";
    v = raw_get(dir, "sources", path, strlen(path), &n);
    cr_assert_not_null(v);
    cr_assert_eq(v[0], 'S');
    cr_assert_eq(v[1], 1);
    cr_assert_eq(v[2], 0x93);
    cr_assert_eq(v[3], 0x03);
    cr_assert_eq(v[4], 0xcd);
    cr_assert_eq(v[5], 0x03);
    cr_assert_eq(v[6], 0xe8);
    free(v);

    /* The format record begins with its frozen fields. */
    v = raw_get(dir, "metadata", "format", 6, &n);
    cr_assert_not_null(v);
    static const uint8_t fmt[] = {'F', 1, 0x94, 0xb0, 's', 'p', 'a', 't', 'e', '-', 'c', 'h',
                                  'e', 'c', 'k', 'p', 'o', 'i', 'n', 't', CKPT_FORMAT_VERSION};
    cr_assert_eq(memcmp(v, fmt, sizeof fmt), 0);
    free(v);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, newer_format_refused)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    fill_small(c);
    ckpt_close(&c);
    uint8_t rec[128];
    size_t n = craft_format(rec, sizeof rec, CKPT_FORMAT_MAGIC, CKPT_FORMAT_VERSION + 1);
    raw_put(dir, "metadata", "format", 6, rec, n);

    assert_err(ckpt_open(dir, 0, &c, &err), SP_EVERSION, err, "upgrade spate");
    cr_assert(strstr(err.msg, "spate 9.9.9") != NULL, "%s", err.msg);
    char want[64];
    snprintf(want, sizeof want, "format %d", CKPT_FORMAT_VERSION + 1);
    cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
    snprintf(want, sizeof want, "up to %d", CKPT_FORMAT_VERSION);
    cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
    cr_assert_null(c);
    assert_err(ckpt_open(dir, CKPT_READONLY, &c, &err), SP_EVERSION, err, "upgrade spate");

    /* The same record with the current version opens; a bad magic is damage. */
    n = craft_format(rec, sizeof rec, CKPT_FORMAT_MAGIC, CKPT_FORMAT_VERSION);
    raw_put(dir, "metadata", "format", 6, rec, n);
    c = open_ok(dir, 0);
    ckpt_close(&c);
    n = craft_format(rec, sizeof rec, "other-program", 1);
    raw_put(dir, "metadata", "format", 6, rec, n);
    assert_err(ckpt_open(dir, CKPT_READONLY, &c, &err), SP_ECORRUPT, err, "magic");
    ts_rmtree(dir);
    free(dir);
}

/* A checkpoint of an older release lacks databases added later (here: all
 * but three). A reader opens it as it is, creating nothing. */
Test(ckpt, older_checkpoint_without_some_databases)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    uint8_t rec[128];
    size_t n = craft_format(rec, sizeof rec, CKPT_FORMAT_MAGIC, 1);
    raw_put(dir, "metadata", "format", 6, rec, n);
    /* records whose frames hold (the last batch is checked) but whose
     * bodies are never read here */
    uint8_t o[32] = {'O', 1, 0x90}, m[32] = {'C', 1, 0x90};
    size_t on = raw_seal("\0\0\0\0\0\0\0\x09", 8, o, 3), mn = raw_seal("\0\0\0\0\0\0\0\x09", 8, m, 3);
    raw_put(dir, "offsets", "\0\0\0\0\0\0\0\x09", 8, o, on);
    raw_put(dir, "commits", "\0\0\0\0\0\0\0\x09", 8, m, mn);
    cr_assert_eq(raw_main_entries(dir), 3);

    ckpt_t *c = open_ok(dir, CKPT_READONLY);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.format_version, 1);
    cr_assert_eq(s.last_planned, 9);
    cr_assert_eq(s.last_committed, 9);
    cr_assert_eq(s.dbs[CKPT_DB_STATE].entries, 0);
    cr_assert_eq(s.dbs[CKPT_DB_SINK].entries, 0);
    cr_assert_str_eq(s.dbs[CKPT_DB_SINK].name, "sink");
    collect_t col = {0};
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 0);
    const char *p = "/a";
    bool seen = true;
    assert_ok(ckpt_files_seen(c, &p, 1, &seen, &err), err);
    cr_assert(!seen);
    void *sink;
    size_t slen;
    cr_assert_eq(ckpt_sink_read(c, 9, &sink, &slen, &err), SP_ENOTFOUND);
    ckpt_close(&c);
    cr_assert_eq(raw_main_entries(dir), 3, "a reader created databases");

    /* A writer adds the missing ones. */
    c = open_ok(dir, 0);
    ckpt_close(&c);
    cr_assert_eq(raw_main_entries(dir), CKPT_NDBS);
    ts_rmtree(dir);
    free(dir);
}

/* ==== processes ========================================================= */

typedef struct child_args {
    const char *dir;
    pid_t parent;
    int ready_fd;  /* child writes a byte when it is ready */
    int go_fd;     /* child waits for a byte */
    size_t expect;
} child_args_t;

static int child_second_open(void *varg)
{
    child_args_t *a = varg;
    sp_err_t err = {0};
    ckpt_t *c = NULL;
    char want[64];
    snprintf(want, sizeof want, "(pid %ld)", (long)a->parent);
    int rc = ckpt_open(a->dir, 0, &c, &err);
    if (rc != SP_EBUSY || c != NULL)
        return 1;
    if (strstr(err.msg, "in use by another spate driver") == NULL || strstr(err.msg, want) == NULL)
        return 2;
    /* A reader is welcome while the writer runs. */
    rc = ckpt_open(a->dir, CKPT_READONLY, &c, &err);
    if (rc != 0)
        return 3;
    int64_t p, m;
    rc = ckpt_batch_last(c, &p, &m, &err);
    ckpt_close(&c);
    return rc == 0 && p == 0 && m == 0 ? 0 : 4;
}

Test(ckpt, writer_lock)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 1);
    commit_entries(c, 0, 0, 10);

    child_args_t a = {.dir = dir, .parent = getpid()};
    cr_assert_eq(in_child(child_second_open, &a), 0);

    /* Within one process, LMDB allows one handle per environment. */
    ckpt_t *c2 = NULL;
    assert_err(ckpt_open(dir, CKPT_READONLY, &c2, &err), SP_EBUSY, err, "this process");
    ckpt_close(&c);

    /* Once the writer is gone the lock is free again. */
    c = open_ok(dir, 0);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

static int child_reader(void *varg)
{
    child_args_t *a = varg;
    char b = 0;
    sp_err_t err = {0};
    ckpt_t *c = NULL;
    if (ckpt_open(a->dir, CKPT_READONLY, &c, &err) != 0)
        return 10;
    /* First look while the parent has a commit open; then wait for the go. */
    for (int round = 0; round < 2; round++) {
        scan_ctx_t ctx = {.last = -1};
        int64_t p, m;
        if (ckpt_state_scan(c, check_entry, &ctx, &err) != 0)
            return 11 + 10 * round;
        if (ckpt_batch_last(c, &p, &m, &err) != 0)
            return 12 + 10 * round;
        if (ctx.bad)
            return 13 + 10 * round;
        if (ctx.n != a->expect + round * 50000)
            return 14 + 10 * round;
        if (p != 1 + round || m != 2 * round)
            return 15 + 10 * round;
        if (round == 0) {
            if (write(a->ready_fd, "r", 1) != 1 || read(a->go_fd, &b, 1) != 1)
                return 16;
        }
    }
    ckpt_close(&c);
    return 0;
}

/* A reader in another process sees committed state only, and adopts the
 * map after the writer grew it past the reader's (MDB_MAP_RESIZED). */
Test(ckpt, reader_process_sees_committed_state_only)
{
    ckpt__initial_mapsize = (size_t)1 << 20;
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 1);
    commit_entries(c, 0, 0, 1000);
    plan_ok(c, 1, 1);
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 1, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "uncommitted", 11, "x", 1, &err), err);

    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    child_args_t a = {.dir = dir, .ready_fd = ready[1], .go_fd = go[0], .expect = 1000};
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(child_reader(&a));
    char b;
    cr_assert_eq(read(ready[0], &b, 1), 1, "the reader died before its first look");
    ckpt_txn_abort(&t);
    commit_entries(c, 1, 0, 1000);
    /* Grow the map well past the reader's. */
    plan_ok(c, 2, 1);
    commit_entries(c, 2, 1000, 51000);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_geq(s.map_size, (uint64_t)4 << 20); /* the reader mapped 1 MB */
    cr_assert_eq(write(go[1], "g", 1), 1);
    int status = 0;
    cr_assert_eq(ts_wait(pid, 60000, &status), 1);
    cr_assert(WIFEXITED(status), "the reader was killed by signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "reader failed at step %d", WEXITSTATUS(status));
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ==== map growth ======================================================== */

/* Start with a 1 MiB map and commit 300000 entries of 100 bytes: the map
 * overflows again and again; each SP_ERETRY redoes the commit. */
Test(ckpt, map_growth_with_retries)
{
    ckpt__initial_mapsize = (size_t)1 << 20;
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    const uint32_t per_batch = 100000, batches = 3;
    int retries = 0;
    for (uint32_t id = 0; id < batches; id++) {
        plan_ok(c, id, 1);
        retries += commit_entries(c, id, id * per_batch, (id + 1) * per_batch);
    }
    cr_assert_geq(retries, 3, "only %d retries", retries);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_geq(s.map_size, (uint64_t)32 << 20, "map %" PRIu64, s.map_size);
    cr_assert_eq(s.dbs[CKPT_DB_STATE].entries, per_batch * batches);
    ckpt_close(&c);

    /* Every entry reads back, after a reopen with the default map size. */
    ckpt__initial_mapsize = 0;
    c = open_ok(dir, 0);
    scan_ctx_t ctx = {.last = -1};
    assert_ok(ckpt_state_scan(c, check_entry, &ctx, &err), err);
    cr_assert_eq(ctx.bad, 0, "%zu bad entries, first: %s", ctx.bad, ctx.first_bad);
    cr_assert_eq(ctx.n, per_batch * batches);
    plan_ok(c, batches, 0);
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, batches, &t, &err), err);
    cr_assert_eq(ckpt_txn_state_count(t), per_batch * batches);
    for (uint32_t i = 0; i < per_batch * batches; i += 997) {
        char k[16];
        uint8_t v[100];
        const void *st;
        size_t slen;
        value_of(i, v);
        assert_ok(ckpt_txn_state_get(t, k, key_of(i, k), &st, &slen, &err), err);
        cr_assert_eq(slen, 100);
        cr_assert_eq(memcmp(st, v, 100), 0, "entry %u", i);
    }
    ckpt_txn_abort(&t);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ckpt_batch_plan grows the map and retries by itself. */
Test(ckpt, plan_grows_the_map_by_itself)
{
    ckpt__initial_mapsize = (size_t)1 << 20;
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    char prefix[300];
    memset(prefix, 'p', sizeof prefix);
    prefix[0] = '/';
    prefix[sizeof prefix - 1] = '\0';
    ckpt_batch_t b;
    batch_make(&b, 0, 20000, prefix);
    assert_ok(ckpt_batch_plan(c, &b, &err), err);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_geq(s.map_size, (uint64_t)8 << 20);
    cr_assert_eq(s.dbs[CKPT_DB_SOURCES].entries, 20000);
    ckpt_batch_t r;
    assert_ok(ckpt_batch_read(c, 0, &r, &err), err);
    cr_assert_eq(r.nfiles, 20000);
    cr_assert_str_eq(r.files[19999].path, b.files[19999].path);
    ckpt_batch_free(&r);
    ckpt_batch_free(&b);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ==== damage ============================================================ */

/* A checkpoint with some content in dir (fill_small); returns the path of
 * its data file. */
static char *small_checkpoint(const char *dir)
{
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    fill_small(c);
    ckpt_close(&c);
    return join(dir, "data.mdb");
}

static void overwrite(const char *path, off_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, data, len, off), (ssize_t)len);
    close(fd);
}

/* Open (writer, then reader) and read everything; the first error must be
 * `code` with `needle` in its message. */
static void expect_damage(const char *dir, int code, const char *needle)
{
    for (int ro = 0; ro < 2; ro++) {
        sp_err_t err = {0};
        ckpt_t *c = NULL;
        int rc = ckpt_open(dir, ro ? CKPT_READONLY : 0, &c, &err);
        if (rc == 0) {
            ckpt_query_t q;
            ckpt_batch_t b;
            ckpt_commit_t rec;
            scan_ctx_t ctx = {.last = -1};
            const char *p = "/data/batch0/f000001.json";
            bool seen;
            int64_t lp, lc;
            rc = ckpt_query_read(c, &q, &err);
            if (rc == 0) {
                ckpt_query_free(&q);
                rc = ckpt_batch_read(c, 1, &b, &err);
            }
            if (rc == 0) {
                ckpt_batch_free(&b);
                rc = ckpt_commit_read(c, 1, &rec, &err);
            }
            if (rc == 0)
                rc = ckpt_batch_last(c, &lp, &lc, &err);
            if (rc == 0)
                rc = ckpt_files_seen(c, &p, 1, &seen, &err);
            if (rc == 0)
                rc = ckpt_state_scan(c, check_entry, &ctx, &err);
            ckpt_close(&c);
        }
        cr_assert_eq(rc, code, "%s open: rc %d (%s): %s", ro ? "reader" : "writer", rc,
                     sp_strerror(rc), err.msg);
        cr_assert(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg,
                  needle);
        cr_assert(strstr(err.msg, dir) != NULL, "message \"%s\" lacks the directory", err.msg);
    }
}

Test(ckpt, damage_truncated_data_file)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    off_t size = file_size(data);
    cr_assert_eq(truncate(data, size / 2), 0);
    expect_damage(dir, SP_ECORRUPT, "is damaged: data file truncated");
    free(data);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, damage_zeroed_first_pages)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    static uint8_t zeros[4 * 4096];
    overwrite(data, 0, zeros, sizeof zeros);
    expect_damage(dir, SP_ECORRUPT, "is damaged: data.mdb is not an LMDB environment");
    free(data);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, damage_zeroed_tree_pages)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    off_t size = file_size(data);
    uint8_t *zeros = calloc(1, (size_t)size);
    overwrite(data, 2 * 4096, zeros, (size_t)size - 2 * 4096); /* all but the meta pages */
    free(zeros);
    expect_damage(dir, SP_ECORRUPT, "is damaged");
    free(data);
    ts_rmtree(dir);
    free(dir);
}

Test(ckpt, damage_random_bytes)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = join(dir, "data.mdb");
    uint8_t junk[65536];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    cr_assert_eq(ts_write_file(data, junk, sizeof junk), 0);
    expect_damage(dir, SP_ECORRUPT, "is damaged: data.mdb is not an LMDB environment");
    /* A data.mdb shorter than a page is no better. */
    cr_assert_eq(ts_write_file(data, junk, 100), 0);
    expect_damage(dir, SP_ECORRUPT, "is damaged");
    free(data);
    ts_rmtree(dir);
    free(dir);
}

/* Flip one byte of every copy of `needle` in the data file. */
static int flip_all(const char *path, const char *needle)
{
    size_t len, nlen = strlen(needle);
    char *buf = ts_read_file(path, &len);
    cr_assert_not_null(buf);
    int n = 0;
    for (char *p = buf; (p = memmem(p, len - (size_t)(p - buf), needle, nlen)) != NULL; p += nlen) {
        char x = (char)(p[nlen / 2] ^ 0x20);
        overwrite(path, p - buf + (off_t)nlen / 2, &x, 1);
        n++;
    }
    free(buf);
    return n;
}

Test(ckpt, damage_flipped_byte_in_records)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    cr_assert_gt(flip_all(data, "MARKER-QUERY-NAME-0123456789"), 0);
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_READONLY);
    ckpt_query_t q;
    assert_err(ckpt_query_read(c, &q, &err), SP_ECORRUPT, err,
               "is damaged: the query record: checksum mismatch");
    /* Everything else still reads. */
    int64_t p, m;
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(m, 1);
    ckpt_close(&c);

    /* A path in the offsets record of batch 1 (and its source key). */
    cr_assert_gt(flip_all(data, "/data/batch1/f000003.json"), 0);
    c = open_ok(dir, CKPT_READONLY);
    ckpt_batch_t b;
    assert_err(ckpt_batch_read(c, 1, &b, &err), SP_ECORRUPT, err,
               "the offsets record of batch 1: checksum mismatch");
    ckpt_batch_t b0;
    assert_ok(ckpt_batch_read(c, 0, &b0, &err), err);
    ckpt_batch_free(&b0);
    ckpt_close(&c);

    /* The commit record of batch 0: its committed_ms is 1700000001000. */
    uint8_t key0[8] = {0};
    size_t n;
    uint8_t *v = raw_get(dir, "commits", key0, 8, &n);
    cr_assert_not_null(v);
    v[n - 5] ^= 1; /* last body byte */
    raw_put(dir, "commits", key0, 8, v, n);
    free(v);
    c = open_ok(dir, CKPT_READONLY);
    ckpt_commit_t rec;
    assert_err(ckpt_commit_read(c, 0, &rec, &err), SP_ECORRUPT, err,
               "the commit record of batch 0: checksum mismatch");
    ckpt_close(&c);
    free(data);
    ts_rmtree(dir);
    free(dir);
}

/* Records whose CRC is right but whose contents lie: lengths and counts are
 * checked before anything is allocated or read. */
Test(ckpt, damage_lying_lengths)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    free(data);
    static const uint8_t key1[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    /* Each body: an offsets record of batch 1 that claims too much. */
    static const struct {
        const char *name;
        uint8_t body[24];
        size_t len;
    } cases[] = {
        {"huge file count", {0x94, 0x01, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, 8},
        {"huge string", {0x94, 0x01, 0x01, 0x91, 0x93, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}, 11},
        {"split beyond files", {0x94, 0x01, 0x01, 0x90, 0x91, 0x93, 0x00, 0x00, 0x01}, 9},
        {"trailing bytes", {0x94, 0x01, 0x01, 0x90, 0x90, 0xc0}, 6},
        {"wrong batch", {0x94, 0x02, 0x01, 0x90, 0x90}, 5},
        {"truncated array", {0x94, 0x01, 0x01, 0x90}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t v[40];
        v[0] = 'O';
        v[1] = 1;
        memcpy(v + 2, cases[i].body, cases[i].len);
        uLong crc = crc32(crc32(0, key1, 8), v, (uInt)(2 + cases[i].len));
        size_t n = 2 + cases[i].len;
        v[n++] = (uint8_t)(crc >> 24);
        v[n++] = (uint8_t)(crc >> 16);
        v[n++] = (uint8_t)(crc >> 8);
        v[n++] = (uint8_t)crc;
        raw_put(dir, "offsets", key1, 8, v, n);
        sp_err_t err = {0};
        ckpt_t *c = open_ok(dir, CKPT_READONLY);
        ckpt_batch_t b;
        int rc = ckpt_batch_read(c, 1, &b, &err);
        cr_assert_eq(rc, SP_ECORRUPT, "%s: rc %d: %s", cases[i].name, rc, err.msg);
        cr_assert(strstr(err.msg, "offsets record of batch 1") != NULL, "%s", err.msg);
        cr_assert_null(b.files);
        ckpt_close(&c);
    }
    /* A record version from the future is a version error, not damage. */
    uint8_t v[16] = {'O', 2, 0x94, 0x01, 0x01, 0x90, 0x90};
    uLong crc = crc32(crc32(0, key1, 8), v, 7);
    v[7] = (uint8_t)(crc >> 24), v[8] = (uint8_t)(crc >> 16), v[9] = (uint8_t)(crc >> 8);
    v[10] = (uint8_t)crc;
    raw_put(dir, "offsets", key1, 8, v, 11);
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_READONLY);
    ckpt_batch_t b;
    assert_err(ckpt_batch_read(c, 1, &b, &err), SP_EVERSION, err, "record version 2");
    /* A state value with an unknown version byte. */
    ckpt_close(&c);
    uint8_t sv[8] = {0x07, 'x', 'y', 'z'};
    raw_put(dir, "state", "\x00\x05zz", 4, sv, raw_seal("\x00\x05zz", 4, sv, 4));
    c = open_ok(dir, CKPT_READONLY);
    scan_ctx_t ctx = {.last = -1};
    assert_err(ckpt_state_scan(c, check_entry, &ctx, &err), SP_ECORRUPT, err,
               "unknown version byte 0x07");
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ==== the filesystem says no =========================================== */

static int child_unprivileged_open(void *varg)
{
    const char *dir = varg;
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 1;
    sp_err_t err = {0};
    ckpt_t *c = NULL;
    int rc = ckpt_open(dir, 0, &c, &err);
    if (rc != SP_EIO || strstr(err.msg, "not writable") == NULL || strstr(err.msg, dir) == NULL)
        return 2;
    rc = ckpt_open(dir, CKPT_READONLY, &c, &err);
    if (rc != SP_EIO || strstr(err.msg, "permission denied") == NULL)
        return 3;
    return 0;
}

/* A directory this user may not write: a clear SP_EIO, for the writer and
 * for a reader (LMDB's readers write lock.mdb). Root drops to nobody in a
 * child to feel it. */
Test(ckpt, directory_not_writable)
{
    char *dir = ts_tmpdir("ckpt");
    char *data = small_checkpoint(dir);
    free(data);
    cr_assert_eq(chmod(dir, 0555), 0);
    char *lockmdb = join(dir, "lock.mdb"), *lock = join(dir, "LOCK");
    chmod(lockmdb, 0444);
    unlink(lock);
    int rc = in_child(child_unprivileged_open, dir);
    chmod(dir, 0755);
    cr_assert_eq(rc, 0, "child failed at step %d", rc);
    free(lockmdb);
    free(lock);
    ts_rmtree(dir);
    free(dir);
}

/* Mount a tmpfs of `size` on a new scratch directory, in a mount namespace
 * of this test process's own: the kernel drops the mount when the process
 * ends, even when an assertion ends it early. NULL when this process may
 * not mount. */
static char *tmpfs_mount(const char *size)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return NULL;
    char *dir = ts_tmpdir("ckpt-tmpfs");
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s", size);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        int e = errno;
        rmdir(dir);
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

static void tmpfs_unmount(char *dir)
{
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    free(dir);
}

Test(ckpt, read_only_file_system)
{
    char *mnt = tmpfs_mount("8m");
    if (mnt == NULL)
        cr_skip_test("cannot mount a tmpfs here (%s)", strerror(errno));
    char *dir = join(mnt, "ck");
    char *data = small_checkpoint(dir);
    free(data);
    int rc = mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=8m");
    cr_assert_eq(rc, 0, "remount read-only: %s", strerror(errno));

    sp_err_t err = {0};
    ckpt_t *c = NULL;
    assert_err(ckpt_open(dir, 0, &c, &err), SP_EIO, err, "read-only file system");
    cr_assert(strstr(err.msg, dir) != NULL, "%s", err.msg);
    char *other = join(mnt, "new");
    assert_err(ckpt_open(other, CKPT_CREATE, &c, &err), SP_EIO, err, "Read-only file system");
    /* A reader still reads everything. */
    c = open_ok(dir, CKPT_READONLY);
    scan_ctx_t ctx = {.last = -1};
    assert_ok(ckpt_state_scan(c, check_entry, &ctx, &err), err);
    cr_assert_eq(ctx.n, 4000);
    cr_assert_eq(ctx.bad, 0);
    ckpt_close(&c);
    free(other);
    free(dir);
    tmpfs_unmount(mnt);
}

/* Fill the file system that holds path; returns the filler's path. */
static char *fill_disk(const char *mnt)
{
    char *filler = join(mnt, "filler");
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    static char block[4096];
    while (write(fd, block, sizeof block) > 0)
        ;
    cr_assert_eq(errno, ENOSPC);
    close(fd);
    return filler;
}

/* The disk fills under a checkpoint: the commit fails with SP_ENOSPC and
 * leaves the checkpoint as it was, readable; once there is space again the
 * same handle commits. The same for planning. */
Test(ckpt, disk_full)
{
    char *mnt = tmpfs_mount("2m");
    if (mnt == NULL)
        cr_skip_test("cannot mount a tmpfs here (%s)", strerror(errno));
    char *dir = join(mnt, "ck");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    plan_ok(c, 0, 5);
    commit_entries(c, 0, 0, 1000);
    plan_ok(c, 1, 5);

    /* The puts live in memory; the commit needs the disk. */
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 1, &t, &err), err);
    for (uint32_t i = 1000; i < 4000; i++) {
        char k[16];
        uint8_t v[100];
        value_of(i, v);
        assert_ok(ckpt_txn_state_put(t, k, key_of(i, k), v, sizeof v, &err), err);
    }
    char *filler = fill_disk(mnt);
    ckpt_commit_t rec = commit_rec(1);
    assert_err(ckpt_commit_end(&t, &rec, &err), SP_ENOSPC, err, "no space left");
    cr_assert_null(t);
    cr_assert(strstr(err.msg, dir) != NULL, "%s", err.msg);

    /* Nothing of batch 1 was written; what was committed reads. */
    int64_t p, m;
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(p, 1);
    cr_assert_eq(m, 0);
    scan_ctx_t ctx = {.last = -1};
    assert_ok(ckpt_state_scan(c, check_entry, &ctx, &err), err);
    cr_assert_eq(ctx.n, 1000);
    cr_assert_eq(ctx.bad, 0);

    /* Space again: the same handle goes on. */
    cr_assert_eq(unlink(filler), 0);
    free(filler);
    commit_entries(c, 1, 1000, 4000);

    /* Planning on a full disk fails the same way and can be repeated. */
    filler = fill_disk(mnt);
    ckpt_batch_t b;
    batch_make(&b, 2, 3000, "/data/a-rather-long-directory-name/to-need-new-pages");
    assert_err(ckpt_batch_plan(c, &b, &err), SP_ENOSPC, err, "planning batch 2");
    cr_assert(strstr(err.msg, dir) != NULL, "%s", err.msg);
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(p, 1);
    cr_assert_eq(unlink(filler), 0);
    free(filler);
    assert_ok(ckpt_batch_plan(c, &b, &err), err);
    ckpt_batch_free(&b);
    ckpt_close(&c);

    c = open_ok(dir, 0);
    ctx = (scan_ctx_t){.last = -1};
    assert_ok(ckpt_state_scan(c, check_entry, &ctx, &err), err);
    cr_assert_eq(ctx.n, 4000);
    cr_assert_eq(ctx.bad, 0);
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(p, 2);
    cr_assert_eq(m, 1);
    ckpt_close(&c);
    free(dir);
    tmpfs_unmount(mnt);
}

/* ==== a fixture for later releases ====================================== */

/* A small checkpoint with every kind of record and fixed contents. A later
 * test keeps one made by this release under tests/fixtures/ and checks that
 * every release opens it; set SPATE_CKPT_FIXTURE_OUT to write one there. */
static void fixture_build(const char *dir)
{
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    ckpt_query_t q = {.query_id = "00000000-0000-4000-8000-000000000001", .name = "fixture",
                      .source_name = "activity", .source_format = "json",
                      .source_path = "/fixture/in", .schema = "user STRING, n BIGINT",
                      .sql = "SELECT user, count(*) FROM activity GROUP BY user",
                      .group_signature = "user:STRING", .aggs_signature = "count(*)",
                      .output_names = "user,count(1)", .output_mode = "complete",
                      .sink = "console", .key_groups = 256};
    assert_ok(ckpt_query_write(c, &q, &err), err);
    for (int64_t id = 0; id < 3; id++) {
        plan_ok(c, id, 2);
        ckpt_txn_t *t;
        assert_ok(ckpt_commit_begin(c, id, &t, &err), err);
        for (uint32_t i = 0; i < 10; i++) {
            char k[16];
            uint8_t v[100];
            value_of(i + (uint32_t)id, v);
            assert_ok(ckpt_txn_state_put(t, k, key_of(i, k), v, sizeof v, &err), err);
        }
        char sink[16];
        snprintf(sink, sizeof sink, "sink-%" PRId64, id);
        assert_ok(ckpt_txn_sink_put(t, sink, strlen(sink), &err), err);
        ckpt_commit_t rec = commit_rec(id);
        assert_ok(ckpt_commit_end(&t, &rec, &err), err);
    }
    ckpt_close(&c);
}

static void fixture_check(const char *dir)
{
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_READONLY);
    ckpt_query_t q;
    assert_ok(ckpt_query_read(c, &q, &err), err);
    cr_assert_str_eq(q.query_id, "00000000-0000-4000-8000-000000000001");
    cr_assert_str_eq(q.sink, "console");
    cr_assert_eq(q.key_groups, 256);
    ckpt_query_free(&q);
    int64_t p, m;
    assert_ok(ckpt_batch_last(c, &p, &m, &err), err);
    cr_assert_eq(p, 2);
    cr_assert_eq(m, 2);
    ckpt_batch_t b;
    assert_ok(ckpt_batch_read(c, 2, &b, &err), err);
    cr_assert_str_eq(b.files[1].path, "/data/batch2/f000001.json");
    ckpt_batch_free(&b);
    void *sink;
    size_t slen;
    assert_ok(ckpt_sink_read(c, 1, &sink, &slen, &err), err);
    cr_assert_eq(slen, 6);
    cr_assert_eq(memcmp(sink, "sink-1", 6), 0);
    free(sink);
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.dbs[CKPT_DB_STATE].entries, 10);
    ckpt_close(&c);
}

Test(ckpt, fixture)
{
    char *dir = ts_tmpdir("ckpt");
    fixture_build(dir);
    fixture_check(dir);
    const char *out = getenv("SPATE_CKPT_FIXTURE_OUT");
    if (out != NULL && *out != '\0') {
        fixture_build(out);
        fixture_check(out);
    }
    ts_rmtree(dir);
    free(dir);
}

/* A state value damaged in place is caught by its checksum, never read as
 * another number. */
Test(ckpt, damaged_state_value_is_caught_by_its_crc)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    fill_small(c);
    ckpt_close(&c);
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "state", 0, &dbi), 0);
    MDB_cursor *cur;
    cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    uint8_t copy[512];
    cr_assert(v.mv_size <= sizeof copy);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[1] ^= 0x01; /* one bit of the aggregate bytes */
    MDB_val nv = {v.mv_size, copy};
    cr_assert_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
    mdb_cursor_close(cur);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    c = open_ok(dir, CKPT_READONLY);
    scan_ctx_t ctx = {.last = -1};
    assert_err(ckpt_state_scan(c, check_entry, &ctx, &err), SP_ECORRUPT, err, "checksum mismatch");
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

typedef struct progress_seen {
    int n;
    char last[64];
} progress_seen_t;

static int collect_progress(void *ctx, const char *json, size_t len)
{
    progress_seen_t *s = ctx;
    s->n++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, json);
    return 0;
}

/* Recent progress: appended, kept to the newest N, read back oldest first,
 * and readable by a reader; a checkpoint without any reads as none. */
Test(ckpt, progress_keeps_the_newest_reports)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    progress_seen_t seen = {0};
    assert_ok(ckpt_progress_read(c, 0, collect_progress, &seen, &err), err);
    cr_assert_eq(seen.n, 0);
    for (int i = 0; i < 25; i++) {
        char json[64];
        int n = snprintf(json, sizeof json, "{\"batchId\":%d}", i);
        assert_ok(ckpt_progress_append(c, json, (size_t)n, 10, &err), err);
    }
    memset(&seen, 0, sizeof seen);
    assert_ok(ckpt_progress_read(c, 0, collect_progress, &seen, &err), err);
    cr_assert_eq(seen.n, 10, "only the newest 10 are kept");
    cr_assert_str_eq(seen.last, "{\"batchId\":24}");
    memset(&seen, 0, sizeof seen);
    assert_ok(ckpt_progress_read(c, 3, collect_progress, &seen, &err), err);
    cr_assert_eq(seen.n, 3);
    cr_assert_str_eq(seen.last, "{\"batchId\":24}");
    ckpt_close(&c);
    c = open_ok(dir, CKPT_READONLY);
    memset(&seen, 0, sizeof seen);
    assert_ok(ckpt_progress_read(c, 0, collect_progress, &seen, &err), err);
    cr_assert_eq(seen.n, 10, "a reader sees them after the writer is gone");
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}

/* ckpt_upgrade's key converter for the test: "k:" + the old key. */
static int prefix_key(void *ctx, uint32_t from, const void *key, size_t klen, sp_buf_t *out,
                      sp_err_t *err)
{
    (void)err;
    ++*(int *)ctx;
    cr_assert_eq(from, 1);
    sp_buf_append(out, "k:", 2);
    sp_buf_append(out, key, klen);
    return 0;
}

/* A format-1 checkpoint (state keys behind a 2-byte key group, written
 * raw from storage/ckpt_int.h's layout) is read as it is, refuses state
 * writes, and ckpt_upgrade re-keys it in place to today's format. */
Test(ckpt, a_format_1_checkpoint_is_upgraded)
{
    char *dir = ts_tmpdir("ckpt");
    sp_err_t err = {0};
    ckpt_t *c = open_ok(dir, CKPT_CREATE);
    fill_small(c);
    ckpt_close(&c);
    /* replace the state by format-1 entries: key group (2 bytes), key */
    raw_empty(dir, "state");
    static const char *const keys[] = {"zeta", "alpha", "mid", ""};
    for (int i = 0; i < 4; i++) {
        uint8_t k[16] = {0, (uint8_t)(200 - i)}, v[16] = {CKPT_STATE_SHORT, (uint8_t)('0' + i)};
        size_t klen = 2 + strlen(keys[i]);
        memcpy(k + 2, keys[i], strlen(keys[i]));
        size_t vlen = raw_seal(k, klen, v, 2);
        raw_put(dir, "state", k, klen, v, vlen);
    }
    uint8_t rec[128];
    size_t n = craft_format(rec, sizeof rec, CKPT_FORMAT_MAGIC, 1);
    raw_put(dir, "metadata", "format", 6, rec, n);

    /* read as it is: old keys, key group stripped, in key-group order */
    c = open_ok(dir, CKPT_READONLY);
    cr_assert_eq(ckpt_state_key_format(c), 1);
    collect_t col = {0};
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 4);
    cr_assert_str_eq(col.states[0], "3");
    cr_assert_eq(col.klens[0], 0);
    cr_assert_eq(memcmp(col.keys[3], "zeta", 4), 0);
    uint32_t from;
    uint64_t entries;
    int calls = 0;
    assert_err(ckpt_upgrade(c, prefix_key, &calls, &from, &entries, &err), SP_EINVAL, err, "read-only");
    ckpt_close(&c);

    /* a writer refuses state writes until upgraded */
    c = open_ok(dir, 0);
    plan_ok(c, 2, 1);
    ckpt_txn_t *t;
    assert_ok(ckpt_commit_begin(c, 2, &t, &err), err);
    assert_err(ckpt_txn_state_put(t, "x", 1, "y", 1, &err), SP_EVERSION, err, "format 1");
    ckpt_txn_abort(&t);
    assert_ok(ckpt_upgrade(c, prefix_key, &calls, &from, &entries, &err), err);
    cr_assert_eq(from, 1);
    cr_assert_eq(entries, 4);
    cr_assert_eq(calls, 4);
    cr_assert_eq(ckpt_state_key_format(c), CKPT_FORMAT_VERSION);
    assert_ok(ckpt_upgrade(c, prefix_key, &calls, &from, &entries, &err), err); /* nothing to do */
    cr_assert_eq(from, CKPT_FORMAT_VERSION);
    cr_assert_eq(calls, 4);
    assert_ok(ckpt_commit_begin(c, 2, &t, &err), err);
    assert_ok(ckpt_txn_state_put(t, "k:beta", 6, "9", 1, &err), err);
    ckpt_commit_t cr = commit_rec(2);
    assert_ok(ckpt_commit_end(&t, &cr, &err), err);
    ckpt_close(&c);

    /* reopened: today's format, the new keys in byte order, states kept */
    c = open_ok(dir, CKPT_READONLY);
    cr_assert_eq(ckpt_state_key_format(c), CKPT_FORMAT_VERSION);
    memset(&col, 0, sizeof col);
    assert_ok(ckpt_state_scan(c, collect_fn, &col, &err), err);
    cr_assert_eq(col.n, 5);
    static const char *const want_keys[] = {"k:", "k:alpha", "k:beta", "k:mid", "k:zeta"};
    static const char *const want_states[] = {"3", "1", "9", "2", "0"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(col.klens[i], strlen(want_keys[i]), "entry %d", i);
        cr_assert_eq(memcmp(col.keys[i], want_keys[i], col.klens[i]), 0, "entry %d", i);
        cr_assert_str_eq(col.states[i], want_states[i], "entry %d", i);
    }
    ckpt_stats_t s;
    assert_ok(ckpt_stats(c, &s, &err), err);
    cr_assert_eq(s.format_version, CKPT_FORMAT_VERSION);
    ckpt_close(&c);
    ts_rmtree(dir);
    free(dir);
}
