/* storage/ckpt.c -- the checkpoint store: one LMDB environment per
 * checkpoint directory, the writer lock, the record codecs of ckpt_int.h,
 * map growth, and the translation of LMDB and filesystem failures into
 * SP_E* codes with messages that name the directory. Owns every byte under
 * the checkpoint directory; knows nothing of queries beyond the records it
 * stores, and never logs above DEBUG except when it clears stale readers.
 *
 * Rules this file keeps for LMDB (lmdb.h's caveats):
 *  - one MDB_env per data file per process: a registry refuses a second
 *    ckpt_open of the same directory in the same process;
 *  - mdb_env_set_mapsize only with no transaction of this process open: read
 *    transactions never outlive the call that began them, and growth happens
 *    before a write transaction begins (or right after one was aborted);
 *  - nothing reads a page LMDB might fetch beyond the end of the data file:
 *    every transaction starts with a check of the file's size against the
 *    last page in use, so a truncated file is an error, not a SIGBUS;
 *  - LMDB trusts its pages and we do not: every key and value it returns is
 *    checked to lie within the data file before anything touches it, and
 *    every record is checked (CRC, lengths, counts) before it is decoded.
 *    What this cannot catch is damage inside LMDB's own page structure that
 *    misleads liblmdb itself (LMDB 0.9 has no page checksums). */
#include "ckpt_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sp_log.h"
#include "sp_util.h"

_Static_assert(CKPT_DB_COUNT == CKPT_NDBS, "ckpt_stats_t.dbs must list every database");

size_t ckpt__initial_mapsize;

/* Internal: an LMDB write ran out of map. Distinct from every SP_E* code;
 * never returned by a public function. */
#define CKPT__MAP_FULL MDB_MAP_FULL

/* How many times ckpt_batch_plan and ckpt_query_write grow the map and try
 * again before giving up (2^20 times the starting size is beyond any disk). */
#define CKPT_GROW_TRIES 20

static const char *const db_names[CKPT_DB_COUNT] = {
    "metadata", "offsets", "commits", "sources", "state", "sink", "progress",
};

struct ckpt {
    char *dir;
    MDB_env *env;
    bool readonly;
    bool registered;
    int lock_fd;                 /* DIR/LOCK, held by a writer; else -1 */
    dev_t dev;                   /* of the directory, for the registry */
    ino_t ino;
    pid_t pid;
    MDB_dbi dbi[CKPT_DB_COUNT];
    bool have[CKPT_DB_COUNT];    /* false: the database does not exist (yet) */
    ckpt_txn_t *wtxn;            /* the open commit transaction, if any */
    int scans;                   /* read transactions open across a callback */
    size_t grow_to;              /* map size to set before the next write txn */
    uintptr_t map_lo, map_hi;    /* where data.mdb is mapped; 0, 0 when unknown */
    uintptr_t file_hi;           /* map_lo + the data file's size at txn begin */
    sp_buf_t buf;                /* scratch for encoding records */
    uint32_t format;             /* of the state keys: CKPT_FORMAT_VERSION, or an
                                    older one until ckpt_upgrade */
    struct ckpt *next;           /* registry */
};

struct ckpt_txn {
    ckpt_t *c;                   /* NULL once the checkpoint was closed */
    MDB_txn *txn;                /* NULL once LMDB's transaction has ended */
    int64_t batch_id;
};

/* ==== small helpers ==================================================== */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t rec_crc(const void *key, size_t klen, const void *val, size_t vlen)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    if (klen)
        crc = crc32_z(crc, key, klen);
    if (vlen)
        crc = crc32_z(crc, val, vlen);
    return (uint32_t)crc;
}

static char *path_join(const char *dir, const char *name)
{
    return sp_xasprintf("%s/%s", dir, name);
}

/* Record "checkpoint DIR is damaged: <what>" in err. */
static int damaged(const ckpt_t *c, sp_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int damaged(const ckpt_t *c, sp_err_t *err, const char *fmt, ...)
{
    char what[SP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sp_err_set(err, SP_ECORRUPT, "checkpoint %s is damaged: %s", c->dir, what);
}

/* Translate an LMDB or errno code met while doing `what` into an SP_E*
 * code and message. MDB_MAP_FULL comes back as CKPT__MAP_FULL for the
 * caller to grow the map; it never reaches the caller's caller. */
/* Below this much free space an EIO from LMDB counts as a full disk. */
#define CKPT__LOW_SPACE (16ull << 20)

static int fail(const ckpt_t *c, int rc, sp_err_t *err, const char *what)
{
    switch (rc) {
    case MDB_MAP_FULL:
        return CKPT__MAP_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_TXN:
    case MDB_INCOMPATIBLE:
        return damaged(c, err, "%s: %s", what, mdb_strerror(rc));
    case MDB_VERSION_MISMATCH:
        return sp_err_set(err, SP_EVERSION,
                          "checkpoint %s: %s: data.mdb was written by an incompatible LMDB "
                          "version (%s)", c->dir, what, mdb_strerror(rc));
    case MDB_PANIC:
        return sp_err_set(err, SP_EIO,
                          "checkpoint %s: %s: LMDB stopped after a fatal write error; close "
                          "and reopen the checkpoint", c->dir, what);
    case MDB_READERS_FULL:
        return sp_err_set(err, SP_EBUSY, "checkpoint %s: %s: too many readers (%s)", c->dir,
                          what, mdb_strerror(rc));
    case MDB_TXN_FULL:
        return sp_err_set(err, SP_EIO,
                          "checkpoint %s: %s: the transaction changes more pages than LMDB "
                          "allows in one transaction", c->dir, what);
    case MDB_BAD_VALSIZE:
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: %s: key or value too large", c->dir,
                          what);
    case MDB_MAP_RESIZED:
        return sp_err_set(err, SP_ERETRY, "checkpoint %s: %s: the map was grown by another "
                          "process; try again", c->dir, what);
    case ENOSPC:
    case EDQUOT:
        return sp_err_set(err, SP_ENOSPC, "checkpoint %s: %s: no space left on the device "
                          "(%s)", c->dir, what, strerror(rc));
    case EACCES:
    case EPERM:
        return sp_err_set(err, SP_EIO, "checkpoint %s: %s: permission denied", c->dir, what);
    case EROFS:
        return sp_err_set(err, SP_EIO, "checkpoint %s: %s: read-only file system", c->dir,
                          what);
    case ENOMEM:
        return sp_err_set(err, SP_ENOMEM, "checkpoint %s: %s: out of memory", c->dir, what);
    case EIO: {
        /* LMDB reports a short write (what a filling disk gives) as EIO:
         * tell a full disk apart by the space left on it. */
        struct statvfs vfs;
        if (statvfs(c->dir, &vfs) == 0 &&
            (unsigned long long)vfs.f_bavail * vfs.f_frsize < CKPT__LOW_SPACE)
            return sp_err_set(err, SP_ENOSPC, "checkpoint %s: %s: no space left on the device "
                              "(%llu bytes free)", c->dir, what,
                              (unsigned long long)vfs.f_bavail * vfs.f_frsize);
        break;
    }
    }
    return sp_err_set(err, SP_EIO, "checkpoint %s: %s: %s", c->dir, what, mdb_strerror(rc));
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* mkdir -p dir (0755 less the umask), syncing each parent it adds to. */
static int mkdir_p(const char *dir, sp_err_t *err)
{
    char *path = sp_xstrdup(dir);
    size_t n = strlen(path);
    int rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) == 0) {
            char *slash = strrchr(path, '/');
            char *parent = slash == NULL ? sp_xstrdup(".")
                         : slash == path ? sp_xstrdup("/") : sp_xstrndup(path, (size_t)(slash - path));
            fsync_dir(parent);
            free(parent);
        } else if (errno != EEXIST) {
            rc = sp_err_set(err, errno == ENOSPC ? SP_ENOSPC : SP_EIO,
                            "cannot create checkpoint directory %s: mkdir %s: %s", dir, path,
                            strerror(errno));
        }
        path[i] = saved;
    }
    free(path);
    return rc;
}

/* ==== MessagePack: writing through msgpack-c, reading by hand ============
 *
 * Writing uses msgpack-c's packer into a sp_buf_t. Reading uses the bounded
 * reader below rather than msgpack_unpack: msgpack-c allocates an array's
 * declared element count before it checks that the bytes exist, so a damaged
 * count could ask for gigabytes. Here every count and length is checked
 * against the bytes that remain before anything is allocated. */

static int buf_write_cb(void *data, const char *p, size_t n)
{
    sp_buf_append(data, p, n);
    return 0;
}

static void pk_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, n ? s : "", n);
}

static void pk_cstr(msgpack_packer *pk, const char *s)
{
    pk_str(pk, s ? s : "", s ? strlen(s) : 0);
}

/* Start a framed record of `type` in b (which is emptied). */
static void rec_begin(sp_buf_t *b, msgpack_packer *pk, int type)
{
    b->len = 0;
    sp_buf_putc(b, (char)type);
    sp_buf_putc(b, (char)CKPT_REC_VERSION);
    msgpack_packer_init(pk, b, buf_write_cb);
}

/* Append the CRC that ends the record in b, stored under key. */
static void rec_seal(sp_buf_t *b, const void *key, size_t klen)
{
    uint8_t crc[4];
    put_be(crc, rec_crc(key, klen, b->data, b->len), 4);
    sp_buf_append(b, crc, 4);
}

typedef struct rd {
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

static size_t rd_left(const rd_t *r) { return (size_t)(r->end - r->p); }

/* Any MessagePack integer: *neg and *s when negative, else *u. */
static bool rd_int(rd_t *r, bool *neg, uint64_t *u, int64_t *s)
{
    if (rd_left(r) < 1)
        return false;
    uint8_t t = r->p[0];
    if (t <= 0x7f || t >= 0xe0) {
        r->p++;
        *neg = t >= 0xe0;
        if (*neg)
            *s = (int8_t)t;
        else
            *u = t;
        return true;
    }
    int n;
    bool is_signed = t >= 0xd0;
    switch (t) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: n = 4; break;
    case 0xcf: case 0xd3: n = 8; break;
    default: return false;
    }
    if (rd_left(r) < (size_t)n + 1)
        return false;
    uint64_t v = get_be(r->p + 1, n);
    r->p += n + 1;
    int64_t sv;
    if (!is_signed) {
        *neg = false;
        *u = v;
        return true;
    }
    switch (n) {
    case 1: sv = (int8_t)v; break;
    case 2: sv = (int16_t)v; break;
    case 4: sv = (int32_t)v; break;
    default: sv = (int64_t)v; break;
    }
    *neg = sv < 0;
    if (*neg)
        *s = sv;
    else
        *u = (uint64_t)sv;
    return true;
}

static bool rd_u64(rd_t *r, uint64_t *out)
{
    bool neg;
    uint64_t u = 0;
    int64_t s = 0;
    if (!rd_int(r, &neg, &u, &s) || neg)
        return false;
    *out = u;
    return true;
}

static bool rd_i64(rd_t *r, int64_t *out)
{
    bool neg;
    uint64_t u = 0;
    int64_t s = 0;
    if (!rd_int(r, &neg, &u, &s))
        return false;
    if (neg) {
        *out = s;
        return true;
    }
    if (u > INT64_MAX)
        return false;
    *out = (int64_t)u;
    return true;
}

/* A length of hn big-endian bytes after the type byte; checks that the
 * length and then `len * unit` more bytes are present. */
static bool rd_len(rd_t *r, int hn, size_t unit, size_t *len)
{
    if (rd_left(r) < (size_t)hn + 1)
        return false;
    uint64_t v = get_be(r->p + 1, hn);
    r->p += hn + 1;
    if (unit && v > rd_left(r) / unit)
        return false;
    *len = (size_t)v;
    return true;
}

static bool rd_str(rd_t *r, const char **s, size_t *n)
{
    if (rd_left(r) < 1)
        return false;
    uint8_t t = r->p[0];
    size_t len;
    if ((t & 0xe0) == 0xa0) {
        r->p++;
        len = t & 0x1f;
        if (len > rd_left(r))
            return false;
    } else if (t == 0xd9 || t == 0xda || t == 0xdb) {
        if (!rd_len(r, t == 0xd9 ? 1 : t == 0xda ? 2 : 4, 1, &len))
            return false;
    } else {
        return false;
    }
    *s = (const char *)r->p;
    *n = len;
    r->p += len;
    return true;
}

/* An array header; *n elements, each of which takes a byte at least, so
 * *n never exceeds the bytes left. */
static bool rd_array(rd_t *r, size_t *n)
{
    if (rd_left(r) < 1)
        return false;
    uint8_t t = r->p[0];
    if ((t & 0xf0) == 0x90) {
        r->p++;
        *n = t & 0x0f;
        return *n <= rd_left(r);
    }
    if (t == 0xdc || t == 0xdd)
        return rd_len(r, t == 0xdc ? 2 : 4, 1, n);
    return false;
}

static bool rd_skip(rd_t *r, int depth);

static bool rd_skip_n(rd_t *r, size_t n, int depth)
{
    for (size_t i = 0; i < n; i++) {
        if (!rd_skip(r, depth))
            return false;
    }
    return true;
}

/* Skip one object of any type (the fields a later release appended). */
static bool rd_skip(rd_t *r, int depth)
{
    if (depth > 32 || rd_left(r) < 1)
        return false;
    uint8_t t = r->p[0];
    size_t n;
    const char *s;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
        r->p++;
        return true;
    }
    if ((t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb)
        return rd_str(r, &s, &n);
    if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd)
        return rd_array(r, &n) && rd_skip_n(r, n, depth + 1);
    if ((t & 0xf0) == 0x80) {
        r->p++;
        n = t & 0x0f;
        return 2 * n <= rd_left(r) && rd_skip_n(r, 2 * n, depth + 1);
    }
    if (t == 0xde || t == 0xdf)
        return rd_len(r, t == 0xde ? 2 : 4, 2, &n) && rd_skip_n(r, 2 * n, depth + 1);
    if ((t >= 0xcc && t <= 0xcf) || (t >= 0xd0 && t <= 0xd3)) {
        bool neg;
        uint64_t u;
        int64_t sv;
        return rd_int(r, &neg, &u, &sv);
    }
    size_t fixed = 0;
    switch (t) {
    case 0xca: fixed = 5; break;                 /* float 32 */
    case 0xcb: fixed = 9; break;                 /* float 64 */
    case 0xd4: fixed = 3; break;                 /* fixext 1, 2, 4, 8, 16 */
    case 0xd5: fixed = 4; break;
    case 0xd6: fixed = 6; break;
    case 0xd7: fixed = 10; break;
    case 0xd8: fixed = 18; break;
    case 0xc4: case 0xc5: case 0xc6:             /* bin 8, 16, 32 */
        if (!rd_len(r, t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4, 1, &n))
            return false;
        r->p += n;
        return true;
    case 0xc7: case 0xc8: case 0xc9:             /* ext 8, 16, 32: len, type, data */
        if (!rd_len(r, t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4, 0, &n) || rd_left(r) < 1 ||
            n > rd_left(r) - 1)
            return false;
        r->p += n + 1;
        return true;
    default:
        return false;
    }
    if (rd_left(r) < fixed)
        return false;
    r->p += fixed;
    return true;
}

/* An array of at least `known` elements; *extra receives how many more
 * follow them (to skip with rd_skip_n once the known ones are read). */
static bool rd_fields(rd_t *r, size_t known, size_t *extra)
{
    size_t n;
    if (!rd_array(r, &n) || n < known)
        return false;
    *extra = n - known;
    return true;
}

/* A string as a malloc'd C string; refuses embedded NULs. */
static bool rd_cstr(rd_t *r, char **out)
{
    const char *s;
    size_t n;
    if (!rd_str(r, &s, &n) || (n && memchr(s, '\0', n) != NULL))
        return false;
    *out = sp_xstrndup(n ? s : "", n);
    return true;
}

/* Check the frame of value v stored under key k: size, CRC, type, version.
 * On success *r covers the body. `what` names the record for messages. */
static int rec_open(const ckpt_t *c, const MDB_val *k, const MDB_val *v, int type,
                    const char *what, rd_t *r, sp_err_t *err)
{
    const uint8_t *p = v->mv_data;
    size_t len = v->mv_size;
    if (len < CKPT_REC_HEAD + CKPT_REC_CRC)
        return damaged(c, err, "%s: a record of %zu bytes is too short", what, len);
    uint32_t want = (uint32_t)get_be(p + len - CKPT_REC_CRC, 4);
    if (rec_crc(k->mv_data, k->mv_size, p, len - CKPT_REC_CRC) != want)
        return damaged(c, err, "%s: checksum mismatch", what);
    if (p[0] != type)
        return damaged(c, err, "%s: record type 0x%02x, expected '%c'", what, p[0], type);
    if (p[1] > CKPT_REC_VERSION)
        return sp_err_set(err, SP_EVERSION,
                          "checkpoint %s: %s has record version %u, newer than this spate "
                          "(%s) reads (%d): upgrade spate", c->dir, what, p[1], SPATE_VERSION,
                          CKPT_REC_VERSION);
    if (p[1] == 0)
        return damaged(c, err, "%s: record version 0", what);
    r->p = p + CKPT_REC_HEAD;
    r->end = p + len - CKPT_REC_CRC;
    return 0;
}

/* The body must end exactly where the frame's CRC begins. */
static int rec_close(const ckpt_t *c, const rd_t *r, bool ok, const char *what, sp_err_t *err)
{
    if (!ok)
        return damaged(c, err, "%s: malformed record body", what);
    if (rd_left(r) != 0)
        return damaged(c, err, "%s: %zu stray bytes after the record body", what, rd_left(r));
    return 0;
}

/* ==== keys ============================================================= */

#define BATCH_KEY_LEN 8
#define LONG_KEY_LEN (CKPT_KEY_INLINE_MAX + 8)
#define STATE_KEY_MAX (2 + LONG_KEY_LEN)

static MDB_val batch_key(uint8_t kb[BATCH_KEY_LEN], int64_t batch_id)
{
    put_be(kb, (uint64_t)batch_id, 8);
    return (MDB_val){.mv_size = BATCH_KEY_LEN, .mv_data = kb};
}

/* The stored form of a path or group key: itself up to the inline limit,
 * else its first CKPT_KEY_INLINE_MAX bytes and its hash. Returns the length
 * written to out (at most LONG_KEY_LEN). */
static size_t long_key(uint8_t *out, const void *key, size_t klen)
{
    if (klen <= CKPT_KEY_INLINE_MAX) {
        if (klen)
            memcpy(out, key, klen);
        return klen;
    }
    memcpy(out, key, CKPT_KEY_INLINE_MAX);
    put_be(out + CKPT_KEY_INLINE_MAX, XXH3_64bits(key, klen), 8);
    return LONG_KEY_LEN;
}

/* The LMDB key of a group's state: CKPT_STATE_KEY_TAG, then the group key
 * (long keys shortened, see long_key), so that groups sort as their values
 * do and the groups a batch touches share pages (the tag keeps the empty
 * key of a global aggregate a valid LMDB key). Format 1 put a key group (2
 * bytes, from the key's hash) first, which scattered them. */
static MDB_val state_key(uint8_t kb[STATE_KEY_MAX], const void *key, size_t klen)
{
    kb[0] = CKPT_STATE_KEY_TAG;
    return (MDB_val){.mv_size = 1 + long_key(kb + 1, key, klen), .mv_data = kb};
}

/* Bytes before the group key in a state key of c's format. */
static size_t state_key_prefix(const ckpt_t *c) { return c->format < 2 ? 2 : 1; }

static int batch_from_key(const ckpt_t *c, const MDB_val *k, const char *db, int64_t *out,
                          sp_err_t *err)
{
    if (k->mv_size != BATCH_KEY_LEN)
        return damaged(c, err, "%s: a key of %zu bytes, expected 8", db, k->mv_size);
    uint64_t v = get_be(k->mv_data, 8);
    if (v > INT64_MAX)
        return damaged(c, err, "%s: batch id out of range", db);
    *out = (int64_t)v;
    return 0;
}

/* ==== map size and transactions ======================================== */

static size_t map_initial(void)
{
    return ckpt__initial_mapsize ? ckpt__initial_mapsize : CKPT_MAP_INITIAL;
}

/* Find where LMDB mapped data.mdb (after each (re)map): the mapping of the
 * data file's inode that is exactly as long as the map. Without /proc the
 * bounds stay unknown and val_ok lets everything through. */
static void map_locate(ckpt_t *c)
{
    c->map_lo = c->map_hi = 0;
    MDB_envinfo info;
    int fd;
    struct stat sb;
    if (mdb_env_info(c->env, &info) != 0 || mdb_env_get_fd(c->env, &fd) != 0 ||
        fstat(fd, &sb) != 0)
        return;
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi, off, ino;
        if (sscanf(line, "%lx-%lx %*s %lx %*s %lu", &lo, &hi, &off, &ino) == 4 &&
            ino == (unsigned long)sb.st_ino && off == 0 && hi - lo == info.me_mapsize) {
            c->map_lo = lo;
            c->map_hi = hi;
            break;
        }
    }
    fclose(f);
}

/* LMDB trusts its pages; a damaged node can hand back a key or value that
 * runs past the end of the data file, where touching it is SIGBUS. Every
 * key and value must lie within the file, or outside the map altogether
 * (pages this write transaction has copied to memory). */
static bool val_ok(const ckpt_t *c, const MDB_val *v)
{
    uintptr_t p = (uintptr_t)v->mv_data;
    if (c->map_lo == 0 || p < c->map_lo || p >= c->map_hi)
        return true;
    return p < c->file_hi && v->mv_size <= c->file_hi - p;
}

/* mdb_get and mdb_cursor_get, with what they return checked by val_ok. */
static int db_get(const ckpt_t *c, MDB_txn *txn, int db, MDB_val *k, MDB_val *v)
{
    int rc = c->have[db] ? mdb_get(txn, c->dbi[db], k, v) : MDB_NOTFOUND;
    return rc == 0 && !val_ok(c, v) ? MDB_CORRUPTED : rc;
}

static int cursor_get(const ckpt_t *c, MDB_cursor *cur, MDB_val *k, MDB_val *v,
                      MDB_cursor_op op)
{
    int rc = mdb_cursor_get(cur, k, v, op);
    return rc == 0 && (!val_ok(c, k) || !val_ok(c, v)) ? MDB_CORRUPTED : rc;
}

/* Right after a transaction began: the data file must hold every page in
 * use, as the newest meta page (no older than the transaction's) says;
 * else LMDB would read beyond its end. Then note where the file ends in
 * the map, for val_ok. */
static int map_bounds(ckpt_t *c, sp_err_t *err)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(c->env, &info);
    if (rc == 0)
        rc = mdb_env_stat(c->env, &st);
    if (rc != 0)
        return fail(c, rc, err, "reading the environment's size");
    int fd;
    struct stat sb;
    if (mdb_env_get_fd(c->env, &fd) != 0 || fstat(fd, &sb) != 0)
        return sp_err_set(err, SP_EIO, "checkpoint %s: cannot stat data.mdb: %s", c->dir,
                          strerror(errno));
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)sb.st_size < used)
        return damaged(c, err, "data file truncated (%jd bytes, the last page in use ends at "
                       "%" PRIu64 ")", (intmax_t)sb.st_size, used);
    uint64_t len = (uint64_t)sb.st_size < c->map_hi - c->map_lo ? (uint64_t)sb.st_size
                                                                 : c->map_hi - c->map_lo;
    c->file_hi = c->map_lo + (uintptr_t)len;
    return 0;
}

/* A writer, before a write transaction: grow the map to at least twice
 * what is in use, and to what a MDB_MAP_FULL asked for. No transaction of
 * this process may be open. */
static int map_grow(ckpt_t *c, sp_err_t *err)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(c->env, &info);
    if (rc == 0)
        rc = mdb_env_stat(c->env, &st);
    if (rc != 0)
        return fail(c, rc, err, "reading the environment's size");
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    size_t size = info.me_mapsize;
    if (c->grow_to > size)
        size = c->grow_to;
    while (used > size / 2)
        size *= 2;
    c->grow_to = 0;
    if (size == info.me_mapsize)
        return 0;
    rc = mdb_env_set_mapsize(c->env, size);
    map_locate(c);
    if (rc != 0)
        return fail(c, rc, err, "growing the map");
    SP_DEBUG("ckpt", "checkpoint %s: map grown from %zu to %zu MiB", c->dir,
             info.me_mapsize >> 20, size >> 20);
    return 0;
}

/* After MDB_MAP_FULL (the write transaction already ended): clear readers
 * of dead processes, whose snapshots pin pages, and double the map now, or
 * before the next write transaction when a read transaction is open. */
static size_t map_full(ckpt_t *c)
{
    int dead = 0;
    mdb_reader_check(c->env, &dead);
    MDB_envinfo info;
    mdb_env_info(c->env, &info);
    c->grow_to = info.me_mapsize * 2;
    if (c->scans == 0) {
        sp_err_t ignored;
        map_grow(c, &ignored);
    }
    return info.me_mapsize * 2;
}

/* Open the named databases this handle lacks (a reader of a checkpoint
 * that had not created them yet, or never will). */
static int dbs_open(ckpt_t *c, MDB_txn *txn, bool create, sp_err_t *err)
{
    for (int i = 0; i < CKPT_DB_COUNT; i++) {
        if (c->have[i])
            continue;
        int rc = mdb_dbi_open(txn, db_names[i], create ? MDB_CREATE : 0, &c->dbi[i]);
        if (rc == MDB_NOTFOUND && !create)
            continue;
        if (rc != 0) {
            char what[64];
            snprintf(what, sizeof what, "opening the %s database", db_names[i]);
            return fail(c, rc, err, what);
        }
        c->have[i] = true;
    }
    return 0;
}

static bool dbs_all(const ckpt_t *c)
{
    for (int i = 0; i < CKPT_DB_COUNT; i++) {
        if (!c->have[i])
            return false;
    }
    return true;
}

static int txn_begin(ckpt_t *c, unsigned flags, MDB_txn **out, sp_err_t *err)
{
    for (int tries = 0;; tries++) {
        int rc = mdb_txn_begin(c->env, NULL, flags, out);
        if (rc == MDB_MAP_RESIZED && tries < 8 && c->scans == 0 && c->wtxn == NULL) {
            /* Another process grew the map past ours: adopt its size. */
            rc = mdb_env_set_mapsize(c->env, 0);
            map_locate(c);
            if (rc == 0)
                continue;
        }
        if (rc != 0)
            return fail(c, rc, err, "beginning a transaction");
        if ((rc = map_bounds(c, err)) != 0) {
            mdb_txn_abort(*out);
            *out = NULL;
        }
        return rc;
    }
}

/* Begin a read transaction. Opens databases created since this handle
 * opened (in a transaction of their own, committed so the handles last). */
static int rtxn_begin(ckpt_t *c, MDB_txn **out, sp_err_t *err)
{
    int rc;
    if (!dbs_all(c)) {
        MDB_txn *txn;
        rc = txn_begin(c, MDB_RDONLY, &txn, err);
        if (rc != 0)
            return rc;
        bool before[CKPT_DB_COUNT];
        memcpy(before, c->have, sizeof before);
        rc = dbs_open(c, txn, false, err);
        if (rc == 0)
            rc = mdb_txn_commit(txn) == 0 ? 0 : fail(c, EIO, err, "opening databases");
        else
            mdb_txn_abort(txn);
        if (rc != 0) {
            memcpy(c->have, before, sizeof before);
            return rc;
        }
    }
    return txn_begin(c, MDB_RDONLY, out, err);
}

/* Begin a write transaction, growing the map first when needed. */
static int wtxn_begin(ckpt_t *c, MDB_txn **out, sp_err_t *err)
{
    if (c->readonly)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s is open read-only", c->dir);
    if (c->wtxn != NULL)
        return sp_err_set(err, SP_EINVAL,
                          "checkpoint %s: the commit of batch %" PRId64 " is still open",
                          c->dir, c->wtxn->batch_id);
    if (c->scans != 0)
        return sp_err_set(err, SP_EINVAL,
                          "checkpoint %s: cannot write from inside a scan callback", c->dir);
    int rc = map_grow(c, err);
    if (rc != 0)
        return rc;
    return txn_begin(c, 0, out, err);
}

/* Commit a write transaction (which ends whatever the result). */
static int wtxn_commit(ckpt_t *c, MDB_txn *txn, const char *what, sp_err_t *err)
{
    int rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : fail(c, rc, err, what);
}

typedef int (*write_fn)(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err);

/* Run fn in a write transaction and commit it. After MDB_MAP_FULL, grow the
 * map and run it again: the retry that the commit path, whose transaction
 * spans the caller's calls, leaves to its caller (SP_ERETRY). */
static int write_retry(ckpt_t *c, write_fn fn, const void *arg, const char *what,
                       sp_err_t *err)
{
    for (int tries = 0;; tries++) {
        MDB_txn *txn;
        int rc = wtxn_begin(c, &txn, err);
        if (rc != 0)
            return rc;
        rc = fn(c, txn, arg, err);
        if (rc == 0)
            rc = wtxn_commit(c, txn, what, err);
        else
            mdb_txn_abort(txn);
        if (rc != CKPT__MAP_FULL)
            return rc;
        if (tries == CKPT_GROW_TRIES)
            return sp_err_set(err, SP_ENOSPC, "checkpoint %s: %s: the map cannot grow further",
                              c->dir, what);
        map_full(c);
    }
}

/* Last key of a batch-keyed database in txn, or -1. */
static int last_batch(ckpt_t *c, MDB_txn *txn, int db, int64_t *out, sp_err_t *err)
{
    *out = -1;
    if (!c->have[db])
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, c->dbi[db], &cur);
    if (rc != 0)
        return fail(c, rc, err, "opening a cursor");
    MDB_val k, v;
    rc = cursor_get(c, cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return fail(c, rc, err, db_names[db]);
    if ((rc = batch_from_key(c, &k, db_names[db], out, err)) != 0)
        return rc;
    /* The last key decides where the query resumes: its record's checksum
     * (which covers the key) must hold. */
    rd_t r;
    char what[64];
    snprintf(what, sizeof what, "the %s record of batch %" PRId64, db_names[db], *out);
    return rec_open(c, &k, &v, db == CKPT_DB_OFFSETS ? CKPT_REC_OFFSETS : CKPT_REC_COMMIT, what, &r, err);
}

/* Begin a read transaction and look up db[batch_id] (`rec` names the
 * record for messages). On 0, *txn is open for the caller to decode *k and
 * *v, then abort; on an error no transaction is left open. */
static int batch_get(ckpt_t *c, int db, const char *rec, int64_t batch_id, MDB_txn **txn,
                     uint8_t kb[BATCH_KEY_LEN], MDB_val *k, MDB_val *v, sp_err_t *err)
{
    if (batch_id < 0)
        return sp_err_set(err, SP_ENOTFOUND, "checkpoint %s: no batch %" PRId64, c->dir,
                          batch_id);
    int rc = rtxn_begin(c, txn, err);
    if (rc != 0)
        return rc;
    *k = batch_key(kb, batch_id);
    rc = db_get(c, *txn, db, k, v);
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND) {
        rc = sp_err_set(err, SP_ENOTFOUND, "checkpoint %s: batch %" PRId64 " has no %s record",
                        c->dir, batch_id, rec);
    } else {
        char what[64];
        snprintf(what, sizeof what, "reading the %s record of batch %" PRId64, rec, batch_id);
        rc = fail(c, rc, err, what);
    }
    mdb_txn_abort(*txn);
    return rc;
}

/* ==== records ========================================================== */

/* The format record: version and created time; SP_ENOTFOUND when absent. */
static int format_read(ckpt_t *c, MDB_txn *txn, uint32_t *version, int64_t *created_ms,
                       char **writer, sp_err_t *err)
{
    if (!c->have[CKPT_DB_METADATA])
        return SP_ENOTFOUND;
    MDB_val k = {.mv_size = strlen(CKPT_KEY_FORMAT), .mv_data = CKPT_KEY_FORMAT}, v;
    int rc = db_get(c, txn, CKPT_DB_METADATA, &k, &v);
    if (rc == MDB_NOTFOUND)
        return SP_ENOTFOUND;
    if (rc != 0)
        return fail(c, rc, err, "reading the format record");
    const char *what = "the format record";
    rd_t r;
    if ((rc = rec_open(c, &k, &v, CKPT_REC_FORMAT, what, &r, err)) != 0)
        return rc;
    size_t extra, mlen = 0, wlen = 0;
    const char *magic = NULL, *wv = NULL;
    uint64_t ver = 0;
    int64_t created = 0;
    bool ok = rd_fields(&r, 4, &extra) && rd_str(&r, &magic, &mlen);
    if (ok && (mlen != strlen(CKPT_FORMAT_MAGIC) || memcmp(magic, CKPT_FORMAT_MAGIC, mlen) != 0))
        return damaged(c, err, "%s: bad magic (not a spate checkpoint?)", what);
    ok = ok && rd_u64(&r, &ver) && rd_i64(&r, &created) && rd_str(&r, &wv, &wlen) &&
         rd_skip_n(&r, extra, 0);
    if ((rc = rec_close(c, &r, ok, what, err)) != 0)
        return rc;
    if (ver == 0 || ver > UINT32_MAX)
        return damaged(c, err, "%s: format version %" PRIu64, what, ver);
    if (ver > CKPT_FORMAT_VERSION)
        return sp_err_set(err, SP_EVERSION,
                          "checkpoint %s was written by spate %.*s in checkpoint format %" PRIu64
                          "; this spate (%s) reads formats up to %d: upgrade spate to use it",
                          c->dir, (int)(wlen > 64 ? 64 : wlen), wlen ? wv : "", ver,
                          SPATE_VERSION, CKPT_FORMAT_VERSION);
    *version = (uint32_t)ver;
    if (created_ms)
        *created_ms = created;
    if (writer)
        *writer = sp_xstrndup(wlen ? wv : "", wlen);
    return 0;
}

static int format_write(ckpt_t *c, MDB_txn *txn, int64_t created_ms, sp_err_t *err)
{
    MDB_val k = {.mv_size = strlen(CKPT_KEY_FORMAT), .mv_data = CKPT_KEY_FORMAT};
    msgpack_packer pk;
    rec_begin(&c->buf, &pk, CKPT_REC_FORMAT);
    msgpack_pack_array(&pk, 4);
    pk_cstr(&pk, CKPT_FORMAT_MAGIC);
    msgpack_pack_uint32(&pk, CKPT_FORMAT_VERSION);
    msgpack_pack_int64(&pk, created_ms);
    pk_cstr(&pk, SPATE_VERSION);
    rec_seal(&c->buf, k.mv_data, k.mv_size);
    MDB_val v = {.mv_size = c->buf.len, .mv_data = c->buf.data};
    int rc = mdb_put(txn, c->dbi[CKPT_DB_METADATA], &k, &v, 0);
    return rc == 0 ? 0 : fail(c, rc, err, "writing the format record");
}

static int query_decode(const ckpt_t *c, const MDB_val *k, const MDB_val *v, ckpt_query_t *q,
                        sp_err_t *err)
{
    const char *what = "the query record";
    rd_t r;
    int rc = rec_open(c, k, v, CKPT_REC_QUERY, what, &r, err);
    if (rc != 0)
        return rc;
    size_t extra, idlen = 0;
    const char *id = NULL;
    uint64_t groups = 0;
    bool ok = rd_fields(&r, 13, &extra) && rd_str(&r, &id, &idlen) &&
              idlen < sizeof q->query_id && (idlen == 0 || !memchr(id, '\0', idlen));
    if (ok) {
        if (idlen)
            memcpy(q->query_id, id, idlen);
        q->query_id[idlen] = '\0';
    }
    char **strs[] = {&q->name, &q->source_name, &q->source_format, &q->source_path,
                     &q->schema, &q->sql, &q->group_signature, &q->aggs_signature,
                     &q->output_names, &q->output_mode, &q->sink};
    for (size_t i = 0; ok && i < sizeof strs / sizeof strs[0]; i++)
        ok = rd_cstr(&r, strs[i]);
    ok = ok && rd_u64(&r, &groups) && rd_skip_n(&r, extra, 0);
    if ((rc = rec_close(c, &r, ok, what, err)) != 0)
        return rc;
    if (groups < 1 || groups > 65536)
        return damaged(c, err, "%s: %" PRIu64 " key groups (1..65536 allowed)", what, groups);
    q->key_groups = (uint32_t)groups;
    return 0;
}

static int commit_decode(const ckpt_t *c, const MDB_val *k, const MDB_val *v, int64_t batch_id,
                         ckpt_commit_t *out, sp_err_t *err)
{
    char what[64];
    snprintf(what, sizeof what, "the commit record of batch %" PRId64, batch_id);
    rd_t r;
    int rc = rec_open(c, k, v, CKPT_REC_COMMIT, what, &r, err);
    if (rc != 0)
        return rc;
    size_t extra;
    ckpt_commit_t rec;
    bool ok = rd_fields(&r, 6, &extra) && rd_i64(&r, &rec.batch_id) &&
              rd_i64(&r, &rec.committed_ms) && rd_u64(&r, &rec.input_rows) &&
              rd_u64(&r, &rec.malformed_rows) && rd_u64(&r, &rec.state_rows) &&
              rd_u64(&r, &rec.updated_rows) && rd_skip_n(&r, extra, 0);
    if ((rc = rec_close(c, &r, ok, what, err)) != 0)
        return rc;
    if (rec.batch_id != batch_id)
        return damaged(c, err, "%s: it names batch %" PRId64, what, rec.batch_id);
    *out = rec;
    return 0;
}

/* A source record; *path and *plen receive the whole path it carries (long
 * paths only; else NULL). */
static int source_decode(const ckpt_t *c, const MDB_val *k, const MDB_val *v, int64_t *batch_id,
                         const char **path, size_t *plen, int64_t *mtime_out, sp_err_t *err)
{
    const char *what = "a source record";
    rd_t r;
    int rc = rec_open(c, k, v, CKPT_REC_SOURCE, what, &r, err);
    if (rc != 0)
        return rc;
    size_t extra;
    uint64_t size;
    int64_t mtime = 0;
    bool ok = rd_fields(&r, 3, &extra) && rd_i64(&r, batch_id) && rd_u64(&r, &size) &&
              rd_i64(&r, &mtime);
    *path = NULL;
    *plen = 0;
    if (ok && k->mv_size == LONG_KEY_LEN) {
        /* The whole path, the 4th field of a long-path record. */
        ok = extra >= 1 && rd_str(&r, path, plen);
        extra--;
    }
    ok = ok && rd_skip_n(&r, extra, 0);
    if ((rc = rec_close(c, &r, ok, what, err)) != 0)
        return rc;
    if (mtime_out)
        *mtime_out = mtime;
    if (k->mv_size == LONG_KEY_LEN) {
        uint8_t kb[LONG_KEY_LEN];
        if (*plen <= CKPT_KEY_INLINE_MAX || long_key(kb, *path, *plen) != LONG_KEY_LEN ||
            memcmp(kb, k->mv_data, LONG_KEY_LEN) != 0)
            return damaged(c, err, "%s: the path it holds does not match its key", what);
    }
    return 0;
}

/* A state entry: key group, group key and aggregate bytes, borrowed from
 * k and v. */
static int state_decode(const ckpt_t *c, const MDB_val *k, const MDB_val *v, const void **key,
                        size_t *klen, const void **state, size_t *slen, sp_err_t *err)
{
    const uint8_t *kp = k->mv_data, *vp = v->mv_data;
    size_t pre = state_key_prefix(c);
    if (k->mv_size < pre)
        return damaged(c, err, "a state key of %zu bytes", k->mv_size);
    if (v->mv_size < 1 + CKPT_REC_CRC)
        return damaged(c, err, "a state value of %zu bytes", v->mv_size);
    size_t vlen = v->mv_size - CKPT_REC_CRC;
    if (rec_crc(kp, k->mv_size, vp, vlen) != (uint32_t)get_be(vp + vlen, 4))
        return damaged(c, err, "a state entry: checksum mismatch");
    if (vp[0] == CKPT_STATE_SHORT) {
        if (k->mv_size > pre + CKPT_KEY_INLINE_MAX)
            return damaged(c, err, "a short state entry under a long key");
        *key = kp + pre;
        *klen = k->mv_size - pre;
        *state = vp + 1;
        *slen = vlen - 1;
        return 0;
    }
    if (vp[0] != CKPT_STATE_LONG)
        return damaged(c, err, "a state value has unknown version byte 0x%02x", vp[0]);
    if (k->mv_size != pre + LONG_KEY_LEN || vlen < 5)
        return damaged(c, err, "a long state entry is malformed");
    uint64_t n = get_be(vp + 1, 4);
    if (n <= CKPT_KEY_INLINE_MAX || n > vlen - 5)
        return damaged(c, err, "a long state entry has a key of %" PRIu64 " bytes in a value of %zu", n,
                       vlen);
    uint8_t kb[LONG_KEY_LEN];
    long_key(kb, vp + 5, n);
    if (memcmp(kb, kp + pre, LONG_KEY_LEN) != 0)
        return damaged(c, err, "a long state entry does not match its key");
    *key = vp + 5;
    *klen = (size_t)n;
    *state = vp + 5 + n;
    *slen = vlen - 5 - (size_t)n;
    return 0;
}

/* ==== the registry: one handle per checkpoint per process =============== */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ckpt_t *registry;

static int registry_add(ckpt_t *c, sp_err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&registry_lock);
    for (ckpt_t *o = registry; o != NULL; o = o->next) {
        /* Entries of another pid were inherited across fork(): not ours. */
        if (o->pid == c->pid && o->dev == c->dev && o->ino == c->ino) {
            rc = sp_err_set(err, SP_EBUSY,
                            "checkpoint %s is already open in this process (LMDB allows one "
                            "handle per process)", c->dir);
            break;
        }
    }
    if (rc == 0) {
        c->next = registry;
        registry = c;
        c->registered = true;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

static void registry_remove(ckpt_t *c)
{
    if (!c->registered)
        return;
    pthread_mutex_lock(&registry_lock);
    for (ckpt_t **p = &registry; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    c->registered = false;
}

/* ==== opening ========================================================== */

/* Look at dir before touching it: create it (CKPT_CREATE), refuse a
 * directory that holds something else, say whether a checkpoint is there. */
static int dir_inspect(ckpt_t *c, unsigned flags, bool *exists, sp_err_t *err)
{
    struct stat st;
    if (stat(c->dir, &st) != 0) {
        if (errno != ENOENT)
            return sp_err_set(err, SP_EIO, "checkpoint %s: %s", c->dir, strerror(errno));
        if (!(flags & CKPT_CREATE))
            return sp_err_set(err, SP_ENOTFOUND, "no checkpoint at %s: the directory does not "
                              "exist", c->dir);
        int rc = mkdir_p(c->dir, err);
        if (rc != 0)
            return rc;
        if (stat(c->dir, &st) != 0)
            return sp_err_set(err, SP_EIO, "checkpoint %s: %s", c->dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return sp_err_set(err, SP_EINVAL, "checkpoint %s is not a directory", c->dir);
    c->dev = st.st_dev;
    c->ino = st.st_ino;

    DIR *d = opendir(c->dir);
    if (d == NULL)
        return sp_err_set(err, SP_EIO, "checkpoint %s: cannot list the directory: %s", c->dir,
                          strerror(errno));
    bool has_data = false;
    size_t nforeign = 0;
    sp_buf_t names = SP_BUF_INIT;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "LOCK") == 0 ||
            strcmp(n, "lock.mdb") == 0)
            continue;
        if (strcmp(n, "data.mdb") == 0) {
            has_data = true;
            continue;
        }
        if (nforeign++ < 3)
            sp_buf_printf(&names, "%s\"%s\"", names.len ? ", " : "", n);
    }
    closedir(d);
    if (has_data) {
        char *path = path_join(c->dir, "data.mdb");
        int src = stat(path, &st);
        free(path);
        if (src != 0 || !S_ISREG(st.st_mode)) {
            sp_buf_free(&names);
            return damaged(c, err, "data.mdb is not a regular file");
        }
        has_data = st.st_size > 0;
    }
    int rc = 0;
    if (!has_data && nforeign > 0) {
        if (nforeign > 3)
            sp_buf_printf(&names, " and %zu more", nforeign - 3);
        rc = sp_err_set(err, SP_EINVAL,
                        "%s is not a spate checkpoint (it holds %s but no data.mdb): choose an "
                        "empty or new directory", c->dir, sp_buf_cstr(&names));
    } else if (!has_data && !(flags & CKPT_CREATE)) {
        rc = sp_err_set(err, SP_ENOTFOUND, "no checkpoint in %s", c->dir);
    }
    sp_buf_free(&names);
    *exists = has_data;
    return rc;
}

static int lock_take(ckpt_t *c, sp_err_t *err)
{
    char *path = path_join(c->dir, "LOCK");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int e = errno;
    free(path);
    if (fd < 0) {
        if (e == EROFS)
            return sp_err_set(err, SP_EIO,
                              "checkpoint %s is on a read-only file system: a driver needs to "
                              "write it (open it read-only to inspect it)", c->dir);
        if (e == EACCES || e == EPERM)
            return sp_err_set(err, SP_EIO,
                              "checkpoint %s is not writable by this user: cannot create %s/LOCK: "
                              "%s", c->dir, c->dir, strerror(e));
        return sp_err_set(err, e == ENOSPC ? SP_ENOSPC : SP_EIO,
                          "checkpoint %s: cannot open %s/LOCK: %s", c->dir, c->dir, strerror(e));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        if (e == EWOULDBLOCK) {
            char buf[32] = {0};
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
            close(fd);
            if (pid > 0)
                return sp_err_set(err, SP_EBUSY, "checkpoint %s is in use by another spate "
                                  "driver (pid %ld)", c->dir, pid);
            return sp_err_set(err, SP_EBUSY, "checkpoint %s is in use by another spate driver",
                              c->dir);
        }
        close(fd);
        return sp_err_set(err, SP_EIO, "checkpoint %s: cannot lock %s/LOCK: %s", c->dir, c->dir,
                          strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* The pid is only for the SP_EBUSY message: a failure here is harmless. */
    if (ftruncate(fd, 0) == 0)
        (void)!pwrite(fd, pid, (size_t)n, 0);
    c->lock_fd = fd;
    return 0;
}

/* MDB_INVALID: say so plainly when data.mdb is LMDB from a machine of the
 * other byte order or word size (LMDB's pages are native), else call it
 * damaged. The meta page's magic follows the page header: 16 bytes on
 * 64-bit machines, 12 on 32-bit ones. */
static int env_invalid(ckpt_t *c, sp_err_t *err)
{
    static const uint32_t magic = 0xBEEFC0DE;
    char *path = path_join(c->dir, "data.mdb");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    uint8_t head[20];
    ssize_t n = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (n == (ssize_t)sizeof head) {
        size_t mine = sizeof(size_t) == 8 ? 16 : 12, other = mine == 16 ? 12 : 16;
        uint32_t at_mine, at_other;
        memcpy(&at_mine, head + mine, 4);
        memcpy(&at_other, head + other, 4);
        const uint32_t swapped = __builtin_bswap32(magic);
        if (at_mine != magic && at_other == magic)
            return sp_err_set(err, SP_EINVAL, "checkpoint %s was written on a machine of another "
                              "word size; LMDB files move only between machines alike (copy it "
                              "with mdb_dump and mdb_load)", c->dir);
        if (at_mine == swapped || at_other == swapped)
            return sp_err_set(err, SP_EINVAL, "checkpoint %s was written on a machine of the "
                              "other byte order; LMDB files move only between machines alike "
                              "(copy it with mdb_dump and mdb_load)", c->dir);
    }
    return damaged(c, err, "data.mdb is not an LMDB environment (%s)", mdb_strerror(MDB_INVALID));
}

static int env_open(ckpt_t *c, bool exists, sp_err_t *err)
{
    int rc = mdb_env_create(&c->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(c->env, CKPT_MAXDBS);
    if (rc == 0 && !c->readonly) {
        size_t size = map_initial();
        struct stat st;
        char *path = path_join(c->dir, "data.mdb");
        if (exists && stat(path, &st) == 0 && (uint64_t)st.st_size > size)
            size = ((size_t)st.st_size + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        free(path);
        rc = mdb_env_set_mapsize(c->env, size);
    }
    if (rc != 0)
        return fail(c, rc, err, "creating the environment");
    rc = mdb_env_open(c->env, c->dir, MDB_NOTLS | (c->readonly ? MDB_RDONLY : 0), 0644);
    if (rc == MDB_INVALID)
        return env_invalid(c, err);
    if (rc == EACCES || rc == EPERM)
        return sp_err_set(err, SP_EIO, "checkpoint %s: cannot open data.mdb or lock.mdb: "
                          "permission denied%s", c->dir,
                          c->readonly ? " (a reader needs write access to lock.mdb)" : "");
    if (rc != 0)
        return fail(c, rc, err, "opening data.mdb");
    map_locate(c);
    if (mdb_env_get_maxkeysize(c->env) < STATE_KEY_MAX)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: this LMDB takes keys of at most %d "
                          "bytes; spate needs %d", c->dir, mdb_env_get_maxkeysize(c->env),
                          STATE_KEY_MAX);
    int dead = 0;
    if (mdb_reader_check(c->env, &dead) == 0 && dead > 0)
        SP_INFO("ckpt", "checkpoint %s: cleared %d stale reader slot(s) of dead processes",
                c->dir, dead);
    if (!exists)
        fsync_dir(c->dir);
    return 0;
}

/* In txn: refuse an LMDB environment that is not ours, read and check the
 * format record, open (a writer: create) the databases. *have_format says
 * whether the format record exists. */
static int env_setup(ckpt_t *c, MDB_txn *txn, bool create, bool *have_format, sp_err_t *err)
{
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn, db_names[CKPT_DB_METADATA], 0, &dbi);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi main_dbi;
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
        if (rc == 0)
            rc = mdb_stat(txn, main_dbi, &st);
        if (rc != 0)
            return fail(c, rc, err, "reading the main database");
        if (st.ms_entries > 0)
            return sp_err_set(err, SP_EINVAL, "%s is not a spate checkpoint: its data.mdb is an "
                              "LMDB environment of another program", c->dir);
    } else if (rc != 0) {
        return fail(c, rc, err, "opening the metadata database");
    } else {
        c->dbi[CKPT_DB_METADATA] = dbi;
        c->have[CKPT_DB_METADATA] = true;
    }
    uint32_t version;
    rc = format_read(c, txn, &version, NULL, NULL, err);
    *have_format = rc == 0;
    if (rc != 0 && rc != SP_ENOTFOUND)
        return rc;
    c->format = *have_format ? version : CKPT_FORMAT_VERSION;
    if ((rc = dbs_open(c, txn, create, err)) != 0)
        return rc;
    if (!*have_format) {
        /* Records without a format record: it was lost, not never written. */
        static const int data_dbs[] = {CKPT_DB_OFFSETS, CKPT_DB_COMMITS, CKPT_DB_STATE};
        for (size_t i = 0; i < sizeof data_dbs / sizeof data_dbs[0]; i++) {
            MDB_stat st;
            int db = data_dbs[i];
            if (c->have[db] && mdb_stat(txn, c->dbi[db], &st) == 0 && st.ms_entries > 0)
                return damaged(c, err, "the format record is missing");
        }
    }
    return 0;
}

/* A writer's first transaction: create what is missing. */
static int env_create_txn(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err)
{
    bool have_format;
    memset(c->have, 0, sizeof c->have); /* handles of a failed try are gone */
    int rc = env_setup(c, txn, true, &have_format, err);
    if (rc == 0 && !have_format)
        rc = format_write(c, txn, sp_wall_ms(), err);
    return rc;
}

static int env_prepare(ckpt_t *c, sp_err_t *err)
{
    bool have_format;
    MDB_txn *txn;
    int rc;
    if (c->readonly) {
        /* Open what exists and create nothing: an old checkpoint stays as
         * it is. The read transaction is committed to keep the handles. */
        if ((rc = rtxn_begin(c, &txn, err)) != 0)
            return rc;
        rc = env_setup(c, txn, false, &have_format, err);
        if (rc == 0)
            return mdb_txn_commit(txn) == 0 ? 0 : fail(c, EIO, err, "opening databases");
        mdb_txn_abort(txn);
        memset(c->have, 0, sizeof c->have);
        return rc;
    }
    rc = write_retry(c, env_create_txn, NULL, "creating the databases", err);
    if (rc != 0)
        memset(c->have, 0, sizeof c->have); /* closed with the transaction */
    return rc;
}

/* ==== fault guard ==================================================================
 * LMDB trusts its file: a page damaged in a way its checks miss can make it
 * read wild memory. While a ckpt_* call runs (CKPT_GUARD), SIGSEGV and
 * SIGBUS become the one-line "checkpoint is damaged" error and exit status
 * 3; outside those calls they keep their previous disposition, so a bug
 * elsewhere still crashes as it should. */

static volatile sig_atomic_t guard_depth;
static char guard_msg[PATH_MAX + 256];
static size_t guard_msg_len;
static struct sigaction guard_old_segv, guard_old_bus;
static bool guard_installed;

static void guard_handler(int sig, siginfo_t *info, void *uctx)
{
    if (guard_depth > 0) {
        ssize_t w = write(STDERR_FILENO, guard_msg, guard_msg_len);
        (void)w;
        _exit(3);
    }
    const struct sigaction *old = sig == SIGBUS ? &guard_old_bus : &guard_old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, info, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void ckpt_guard_faults(void)
{
    if (guard_installed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &guard_old_segv);
    sigaction(SIGBUS, &sa, &guard_old_bus);
    guard_installed = true;
}

/* The message names the checkpoint most recently opened. */
static void guard_name(const char *dir)
{
    int n = snprintf(guard_msg, sizeof guard_msg,
                     "spate: error: checkpoint %s is damaged: the storage engine faulted reading it; "
                     "restore it from a copy, or start with a new, empty checkpoint directory\n", dir);
    guard_msg_len = n < 0 ? 0 : ((size_t)n < sizeof guard_msg ? (size_t)n : sizeof guard_msg - 1);
}

static int guard_enter(void)
{
    guard_depth++;
    return 0;
}

static void guard_leave(int *token)
{
    (void)token;
    guard_depth--;
}

#define CKPT_GUARD() int ckpt__guard_ __attribute__((cleanup(guard_leave), unused)) = guard_enter()


int ckpt_open(const char *dir, unsigned flags, ckpt_t **out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    guard_name(dir);
    if (out == NULL)
        return sp_err_set(err, SP_EINVAL, "ckpt_open: out is NULL");
    *out = NULL;
    if (dir == NULL || *dir == '\0')
        return sp_err_set(err, SP_EINVAL, "no checkpoint directory given");
    if (flags & ~(unsigned)(CKPT_CREATE | CKPT_READONLY))
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: unknown open flags 0x%x", dir, flags);
    if ((flags & CKPT_CREATE) && (flags & CKPT_READONLY))
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: cannot create a checkpoint read-only",
                          dir);
    ckpt_t *c = sp_xcalloc(1, sizeof *c);
    c->dir = sp_xstrdup(dir);
    c->readonly = (flags & CKPT_READONLY) != 0;
    c->lock_fd = -1;
    c->pid = getpid();
    bool exists = false;
    int rc = dir_inspect(c, flags, &exists, err);
    if (rc == 0)
        rc = registry_add(c, err);
    if (rc == 0 && !c->readonly)
        rc = lock_take(c, err);
    if (rc == 0)
        rc = env_open(c, exists, err);
    if (rc == 0)
        rc = env_prepare(c, err);
    if (rc != 0) {
        ckpt_close(&c);
        return rc;
    }
    *out = c;
    return 0;
}

void ckpt_close(ckpt_t **cp)
{
    CKPT_GUARD(); /* see "fault guard" */
    if (cp == NULL || *cp == NULL)
        return;
    ckpt_t *c = *cp;
    if (c->wtxn != NULL) {
        /* The caller still owns the ckpt_txn_t and frees it with
         * ckpt_txn_abort; it is left empty. */
        if (c->wtxn->txn != NULL)
            mdb_txn_abort(c->wtxn->txn);
        c->wtxn->txn = NULL;
        c->wtxn->c = NULL;
    }
    if (c->env != NULL)
        mdb_env_close(c->env);
    registry_remove(c);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    sp_buf_free(&c->buf);
    free(c->dir);
    free(c);
    *cp = NULL;
}

const char *ckpt_dir(const ckpt_t *c) { return c->dir; }

/* ==== metadata ========================================================== */

int ckpt_query_read(ckpt_t *c, ckpt_query_t *out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    MDB_val k = {.mv_size = strlen(CKPT_KEY_QUERY), .mv_data = CKPT_KEY_QUERY}, v;
    rc = db_get(c, txn, CKPT_DB_METADATA, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = sp_err_set(err, SP_ENOTFOUND, "checkpoint %s has no query record yet", c->dir);
    else if (rc != 0)
        rc = fail(c, rc, err, "reading the query record");
    else
        rc = query_decode(c, &k, &v, out, err);
    if (rc == 0) {
        rc = format_read(c, txn, &out->format_version, &out->created_ms, NULL, err);
        if (rc == SP_ENOTFOUND)
            rc = damaged(c, err, "the format record is missing");
    }
    mdb_txn_abort(txn);
    if (rc != 0)
        ckpt_query_free(out);
    return rc;
}

static int query_write_txn(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err)
{
    const ckpt_query_t *q = arg;
    MDB_dbi dbi = c->dbi[CKPT_DB_METADATA];
    MDB_val k = {.mv_size = strlen(CKPT_KEY_QUERY), .mv_data = CKPT_KEY_QUERY}, v;
    int rc = db_get(c, txn, CKPT_DB_METADATA, &k, &v);
    if (rc == 0) {
        ckpt_query_t old = {0};
        rc = query_decode(c, &k, &v, &old, err);
        uint32_t groups = old.key_groups;
        ckpt_query_free(&old);
        if (rc != 0)
            return rc;
        if (groups != q->key_groups)
            return sp_err_set(err, SP_EINCOMPAT,
                              "checkpoint %s has %u key groups, the query asks for %u: key "
                              "groups are fixed when a checkpoint is created (start with a new, "
                              "empty checkpoint directory)", c->dir, groups, q->key_groups);
    } else if (rc != MDB_NOTFOUND) {
        return fail(c, rc, err, "reading the query record");
    }
    uint32_t version;
    rc = format_read(c, txn, &version, NULL, NULL, err);
    if (rc == SP_ENOTFOUND)
        rc = format_write(c, txn, q->created_ms > 0 ? q->created_ms : sp_wall_ms(), err);
    if (rc != 0)
        return rc;

    msgpack_packer pk;
    rec_begin(&c->buf, &pk, CKPT_REC_QUERY);
    msgpack_pack_array(&pk, 13);
    pk_cstr(&pk, q->query_id);
    const char *strs[] = {q->name, q->source_name, q->source_format, q->source_path,
                          q->schema, q->sql, q->group_signature, q->aggs_signature,
                          q->output_names, q->output_mode, q->sink};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        pk_cstr(&pk, strs[i]);
    msgpack_pack_uint32(&pk, q->key_groups);
    rec_seal(&c->buf, k.mv_data, k.mv_size);
    v = (MDB_val){.mv_size = c->buf.len, .mv_data = c->buf.data};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    return rc == 0 ? 0 : fail(c, rc, err, "writing the query record");
}

int ckpt_query_write(ckpt_t *c, const ckpt_query_t *q, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    if (strnlen(q->query_id, sizeof q->query_id) == sizeof q->query_id)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: query id is not a string of at most "
                          "36 characters", c->dir);
    if (q->key_groups < 1 || q->key_groups > 65536)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: %u key groups (1..65536 allowed)",
                          c->dir, q->key_groups);
    return write_retry(c, query_write_txn, q, "writing the query record", err);
}

void ckpt_query_free(ckpt_query_t *q)
{
    if (q == NULL)
        return;
    free(q->name);
    free(q->source_name);
    free(q->source_format);
    free(q->source_path);
    free(q->schema);
    free(q->sql);
    free(q->group_signature);
    free(q->aggs_signature);
    free(q->output_names);
    free(q->output_mode);
    free(q->sink);
    memset(q, 0, sizeof *q);
}

/* ==== the write-ahead log ============================================== */

static int batch_validate(const ckpt_t *c, const ckpt_batch_t *b, sp_err_t *err)
{
    if (b->batch_id < 0)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch id %" PRId64 " is negative",
                          c->dir, b->batch_id);
    if ((b->nfiles && b->files == NULL) || (b->nsplits && b->splits == NULL))
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " has NULL arrays",
                          c->dir, b->batch_id);
    for (size_t i = 0; i < b->nfiles; i++) {
        if (b->files[i].path == NULL || b->files[i].path[0] == '\0')
            return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 ": file %zu has "
                              "no path", c->dir, b->batch_id, i);
    }
    for (size_t i = 0; i < b->nsplits; i++) {
        const ckpt_split_t *s = &b->splits[i];
        if (s->file >= b->nfiles || s->start > s->end)
            return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 ": split %zu "
                              "(file %u, [%" PRIu64 ", %" PRIu64 ")) is out of range", c->dir,
                              b->batch_id, i, s->file, s->start, s->end);
    }
    return 0;
}

static int batch_plan_txn(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err)
{
    const ckpt_batch_t *b = arg;
    int64_t planned, committed;
    int rc = last_batch(c, txn, CKPT_DB_OFFSETS, &planned, err);
    if (rc == 0)
        rc = last_batch(c, txn, CKPT_DB_COMMITS, &committed, err);
    if (rc != 0)
        return rc;
    if (b->batch_id <= planned)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " is already "
                          "planned: another driver may be using this checkpoint", c->dir,
                          b->batch_id);
    if (b->batch_id != planned + 1)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " cannot be planned: "
                          "the last planned batch is %" PRId64, c->dir, b->batch_id, planned);
    if (committed != planned)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " cannot be planned: "
                          "batch %" PRId64 " is planned but not committed (run it again first)",
                          c->dir, b->batch_id, planned);

    /* offsets[batch_id] */
    msgpack_packer pk;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k = batch_key(kb, b->batch_id), v;
    rec_begin(&c->buf, &pk, CKPT_REC_OFFSETS);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int64(&pk, b->batch_id);
    msgpack_pack_int64(&pk, b->timestamp_ms);
    msgpack_pack_array(&pk, b->nfiles);
    for (size_t i = 0; i < b->nfiles; i++) {
        msgpack_pack_array(&pk, 3);
        pk_cstr(&pk, b->files[i].path);
        msgpack_pack_uint64(&pk, b->files[i].size);
        msgpack_pack_int64(&pk, b->files[i].mtime_ns);
    }
    msgpack_pack_array(&pk, b->nsplits);
    for (size_t i = 0; i < b->nsplits; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, b->splits[i].file);
        msgpack_pack_uint64(&pk, b->splits[i].start);
        msgpack_pack_uint64(&pk, b->splits[i].end);
    }
    rec_seal(&c->buf, kb, sizeof kb);
    v = (MDB_val){.mv_size = c->buf.len, .mv_data = c->buf.data};
    rc = mdb_put(txn, c->dbi[CKPT_DB_OFFSETS], &k, &v, MDB_NOOVERWRITE);
    if (rc != 0)
        return fail(c, rc, err, "writing the offsets record");

    /* sources[path] for each file */
    for (size_t i = 0; i < b->nfiles; i++) {
        const char *path = b->files[i].path;
        size_t plen = strlen(path);
        uint8_t pk_key[LONG_KEY_LEN];
        MDB_val sk = {.mv_size = long_key(pk_key, path, plen), .mv_data = pk_key};
        bool is_long = sk.mv_size == LONG_KEY_LEN;
        rec_begin(&c->buf, &pk, CKPT_REC_SOURCE);
        msgpack_pack_array(&pk, is_long ? 4 : 3);
        msgpack_pack_int64(&pk, b->batch_id);
        msgpack_pack_uint64(&pk, b->files[i].size);
        msgpack_pack_int64(&pk, b->files[i].mtime_ns);
        if (is_long)
            pk_str(&pk, path, plen);
        rec_seal(&c->buf, sk.mv_data, sk.mv_size);
        v = (MDB_val){.mv_size = c->buf.len, .mv_data = c->buf.data};
        rc = mdb_put(txn, c->dbi[CKPT_DB_SOURCES], &sk, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST && !val_ok(c, &v))
            rc = MDB_CORRUPTED;
        if (rc == MDB_KEYEXIST) {
            /* v now holds the existing record. */
            int64_t other = -1;
            const char *opath;
            size_t oplen;
            int drc = source_decode(c, &sk, &v, &other, &opath, &oplen, NULL, err);
            if (drc != 0)
                return drc;
            if (other == b->batch_id)
                return sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " lists %s "
                                  "twice", c->dir, b->batch_id, path);
            if (is_long && (oplen != plen || memcmp(opath, path, plen) != 0))
                return sp_err_set(err, SP_EINVAL, "checkpoint %s: %s shares its source slot "
                                  "with another path (64-bit hash collision)", c->dir, path);
            return sp_err_set(err, SP_EINVAL, "checkpoint %s: %s was already taken by batch "
                              "%" PRId64, c->dir, path, other);
        }
        if (rc != 0)
            return fail(c, rc, err, "writing a source record");
    }
    return 0;
}

int ckpt_batch_plan(ckpt_t *c, const ckpt_batch_t *b, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = batch_validate(c, b, err);
    if (rc != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "planning batch %" PRId64, b->batch_id);
    return write_retry(c, batch_plan_txn, b, what, err);
}

static int batch_decode(const ckpt_t *c, const MDB_val *k, const MDB_val *v, int64_t batch_id,
                        ckpt_batch_t *out, sp_err_t *err)
{
    char what[64];
    snprintf(what, sizeof what, "the offsets record of batch %" PRId64, batch_id);
    rd_t r;
    int rc = rec_open(c, k, v, CKPT_REC_OFFSETS, what, &r, err);
    if (rc != 0)
        return rc;
    size_t extra, n;
    bool ok = rd_fields(&r, 4, &extra) && rd_i64(&r, &out->batch_id) &&
              rd_i64(&r, &out->timestamp_ms) && rd_array(&r, &n);
    if (ok && n > 0) {
        /* n <= bytes left (rd_array), so the allocation is bounded by the
         * record's size. */
        out->files = sp_xcalloc(n, sizeof *out->files);
        out->nfiles = n; /* zeroed: ckpt_batch_free copes with a partial read */
        for (size_t i = 0; ok && i < n; i++) {
            size_t fx;
            ckpt_file_t *f = &out->files[i];
            ok = rd_fields(&r, 3, &fx) && rd_cstr(&r, &f->path) && rd_u64(&r, &f->size) &&
                 rd_i64(&r, &f->mtime_ns) && rd_skip_n(&r, fx, 0) && f->path[0] != '\0';
        }
    }
    ok = ok && rd_array(&r, &n);
    if (ok && n > 0) {
        out->splits = sp_xcalloc(n, sizeof *out->splits);
        out->nsplits = n;
        for (size_t i = 0; ok && i < n; i++) {
            size_t sx;
            uint64_t file = 0;
            ckpt_split_t *s = &out->splits[i];
            ok = rd_fields(&r, 3, &sx) && rd_u64(&r, &file) && rd_u64(&r, &s->start) &&
                 rd_u64(&r, &s->end) && rd_skip_n(&r, sx, 0) && file < out->nfiles &&
                 s->start <= s->end;
            s->file = (uint32_t)file;
        }
    }
    ok = ok && rd_skip_n(&r, extra, 0);
    if ((rc = rec_close(c, &r, ok, what, err)) != 0)
        return rc;
    if (out->batch_id != batch_id)
        return damaged(c, err, "%s: it names batch %" PRId64, what, out->batch_id);
    return 0;
}

int ckpt_batch_read(ckpt_t *c, int64_t batch_id, ckpt_batch_t *out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k, v;
    int rc = batch_get(c, CKPT_DB_OFFSETS, "offsets", batch_id, &txn, kb, &k, &v, err);
    if (rc != 0)
        return rc;
    rc = batch_decode(c, &k, &v, batch_id, out, err);
    mdb_txn_abort(txn);
    if (rc != 0)
        ckpt_batch_free(out);
    return rc;
}

void ckpt_batch_free(ckpt_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nfiles; i++)
        free(b->files[i].path);
    free(b->files);
    free(b->splits);
    memset(b, 0, sizeof *b);
}

int ckpt_batch_last(ckpt_t *c, int64_t *planned, int64_t *committed, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    MDB_txn *txn;
    int64_t p = -1, m = -1;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    rc = last_batch(c, txn, CKPT_DB_OFFSETS, &p, err);
    if (rc == 0)
        rc = last_batch(c, txn, CKPT_DB_COMMITS, &m, err);
    mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    if (planned)
        *planned = p;
    if (committed)
        *committed = m;
    return 0;
}

int ckpt_files_seen(ckpt_t *c, const char *const *paths, size_t n, bool *seen, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    for (size_t i = 0; i < n; i++)
        seen[i] = false;
    if (n == 0)
        return 0;
    MDB_txn *txn;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0 || !c->have[CKPT_DB_SOURCES]) {
        if (rc == 0)
            mdb_txn_abort(txn);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t plen = paths[i] ? strlen(paths[i]) : 0;
        if (plen == 0)
            continue;
        uint8_t kb[LONG_KEY_LEN];
        MDB_val k = {.mv_size = long_key(kb, paths[i], plen), .mv_data = kb}, v;
        int grc = db_get(c, txn, CKPT_DB_SOURCES, &k, &v);
        if (grc == MDB_NOTFOUND)
            continue;
        if (grc != 0) {
            rc = fail(c, grc, err, "looking up a source record");
            break;
        }
        int64_t batch;
        const char *full;
        size_t flen;
        rc = source_decode(c, &k, &v, &batch, &full, &flen, NULL, err);
        seen[i] = rc == 0 && (full == NULL || (flen == plen && memcmp(full, paths[i], plen) == 0));
    }
    mdb_txn_abort(txn);
    return rc;
}

/* ==== committing a batch =============================================== */

/* End t's LMDB transaction after MDB_MAP_FULL: grow the map and tell the
 * caller to begin the commit again. */
static int txn_retry(ckpt_txn_t *t, sp_err_t *err)
{
    ckpt_t *c = t->c;
    if (t->txn != NULL)
        mdb_txn_abort(t->txn);
    t->txn = NULL;
    c->wtxn = NULL;
    size_t size = map_full(c);
    return sp_err_set(err, SP_ERETRY, "checkpoint %s: the map was full and is now %zu MiB: "
                      "abort and redo the commit of batch %" PRId64, c->dir, size >> 20,
                      t->batch_id);
}

/* An operation failed in a way that leaves LMDB's transaction unusable. */
static int txn_dead(ckpt_txn_t *t, int rc)
{
    if (rc == CKPT__MAP_FULL)
        return rc;
    if (t->txn != NULL)
        mdb_txn_abort(t->txn);
    t->txn = NULL;
    if (t->c != NULL)
        t->c->wtxn = NULL;
    return rc;
}

static int txn_usable(ckpt_txn_t *t, sp_err_t *err)
{
    if (t == NULL)
        return sp_err_set(err, SP_EINVAL, "no commit transaction");
    if (t->c == NULL)
        return sp_err_set(err, SP_EINVAL, "the checkpoint of this transaction was closed");
    if (t->txn == NULL)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: the commit of batch %" PRId64 " has "
                          "ended (after an error or SP_ERETRY): abort it and begin again",
                          t->c->dir, t->batch_id);
    return 0;
}

/* As txn_usable, for what changes the transaction: not from inside a scan
 * callback, where growing the map would end the transaction under the
 * scan's cursor. */
static int txn_writable(ckpt_txn_t *t, sp_err_t *err)
{
    int rc = txn_usable(t, err);
    if (rc == 0 && t->c->scans != 0)
        rc = sp_err_set(err, SP_EINVAL, "checkpoint %s: cannot change the commit of batch %"
                        PRId64 " from inside a scan callback", t->c->dir, t->batch_id);
    return rc;
}

int ckpt_commit_begin(ckpt_t *c, int64_t batch_id, ckpt_txn_t **out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    *out = NULL;
    MDB_txn *txn;
    int rc = wtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    int64_t planned, committed;
    rc = last_batch(c, txn, CKPT_DB_OFFSETS, &planned, err);
    if (rc == 0)
        rc = last_batch(c, txn, CKPT_DB_COMMITS, &committed, err);
    if (rc == 0 && batch_id <= committed)
        rc = sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " is already committed",
                        c->dir, batch_id);
    else if (rc == 0 && batch_id != planned)
        rc = sp_err_set(err, SP_EINVAL, "checkpoint %s: batch %" PRId64 " cannot be committed: "
                        "the last planned batch is %" PRId64, c->dir, batch_id, planned);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    ckpt_txn_t *t = sp_xcalloc(1, sizeof *t);
    t->c = c;
    t->txn = txn;
    t->batch_id = batch_id;
    c->wtxn = t;
    *out = t;
    return 0;
}

/* State reads and writes need keys of today's format. */
static int state_current(const ckpt_t *c, sp_err_t *err)
{
    if (c->format >= CKPT_FORMAT_VERSION)
        return 0;
    return sp_err_set(err, SP_EVERSION, "checkpoint %s holds state in checkpoint format %u: "
                      "ckpt_upgrade it first", c->dir, c->format);
}

int ckpt_txn_state_get(ckpt_txn_t *t, const void *key, size_t klen, const void **state, size_t *slen,
                       sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = txn_usable(t, err);
    if (rc != 0)
        return rc;
    ckpt_t *c = t->c;
    if ((rc = state_current(c, err)) != 0)
        return rc;
    uint8_t kb[STATE_KEY_MAX];
    MDB_val k = state_key(kb, key, klen), v;
    rc = db_get(c, t->txn, CKPT_DB_STATE, &k, &v);
    if (rc == MDB_NOTFOUND)
        return SP_ENOTFOUND;
    if (rc != 0)
        return txn_dead(t, fail(c, rc, err, "reading state"));
    const void *skey;
    size_t sklen;
    if ((rc = state_decode(c, &k, &v, &skey, &sklen, state, slen, err)) != 0)
        return rc;
    if (sklen != klen || (klen && memcmp(skey, key, klen) != 0))
        return SP_ENOTFOUND; /* another long key in the same slot */
    return 0;
}

/* Put one state entry in txn. Returns 0, CKPT__MAP_FULL, SP_EINVAL (two
 * long keys in one slot) or another SP_E* code from fail(). */
static int state_put_txn(ckpt_t *c, MDB_txn *txn, const void *key, size_t klen, const void *state,
                         size_t slen, sp_err_t *err)
{
    if (klen > UINT32_MAX || slen > SIZE_MAX - klen - 5)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s: state entry too large", c->dir);
    uint8_t kb[STATE_KEY_MAX];
    MDB_val k = state_key(kb, key, klen), v;
    bool is_long = klen > CKPT_KEY_INLINE_MAX;
    if (is_long) {
        int rc = db_get(c, txn, CKPT_DB_STATE, &k, &v);
        if (rc == 0) {
            const void *skey, *sstate;
            size_t sklen, sslen;
            if ((rc = state_decode(c, &k, &v, &skey, &sklen, &sstate, &sslen, err)) != 0)
                return rc;
            if (sklen != klen || memcmp(skey, key, klen) != 0)
                return sp_err_set(err, SP_EINVAL, "checkpoint %s: two group keys share a state slot "
                                  "(64-bit hash collision)", c->dir);
        } else if (rc != MDB_NOTFOUND) {
            return fail(c, rc, err, "reading state");
        }
    }
    v.mv_size = (is_long ? 5 + klen : 1) + slen + CKPT_REC_CRC;
    v.mv_data = NULL;
    int rc = mdb_put(txn, c->dbi[CKPT_DB_STATE], &k, &v, MDB_RESERVE);
    if (rc != 0)
        return fail(c, rc, err, "writing state");
    uint8_t *p = v.mv_data;
    if (is_long) {
        p[0] = CKPT_STATE_LONG;
        put_be(p + 1, klen, 4);
        memcpy(p + 5, key, klen);
        p += 5 + klen;
    } else {
        *p++ = CKPT_STATE_SHORT;
    }
    if (slen)
        memcpy(p, state, slen);
    size_t vlen = v.mv_size - CKPT_REC_CRC;
    put_be((uint8_t *)v.mv_data + vlen, rec_crc(k.mv_data, k.mv_size, v.mv_data, vlen), 4);
    return 0;
}

int ckpt_txn_state_put(ckpt_txn_t *t, const void *key, size_t klen, const void *state, size_t slen,
                       sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = txn_writable(t, err);
    if (rc != 0)
        return rc;
    ckpt_t *c = t->c;
    if ((rc = state_current(c, err)) != 0)
        return rc;
    rc = state_put_txn(c, t->txn, key, klen, state, slen, err);
    if (rc == CKPT__MAP_FULL)
        return txn_retry(t, err);
    if (rc != 0 && rc != SP_EINVAL)
        return txn_dead(t, rc);
    return rc;
}

int ckpt_txn_sink_put(ckpt_txn_t *t, const void *rec, size_t len, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = txn_writable(t, err);
    if (rc != 0)
        return rc;
    ckpt_t *c = t->c;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k = batch_key(kb, t->batch_id);
    sp_buf_t *b = &c->buf;
    b->len = 0;
    sp_buf_putc(b, CKPT_REC_SINK);
    sp_buf_putc(b, CKPT_REC_VERSION);
    sp_buf_append(b, rec, len);
    rec_seal(b, kb, sizeof kb);
    MDB_val v = {.mv_size = b->len, .mv_data = b->data};
    rc = mdb_put(t->txn, c->dbi[CKPT_DB_SINK], &k, &v, 0);
    if (rc == MDB_MAP_FULL)
        return txn_retry(t, err);
    return rc == 0 ? 0 : txn_dead(t, fail(c, rc, err, "writing the sink record"));
}

/* Walk the state database in txn, calling fn for each entry. */
static int state_walk(ckpt_t *c, MDB_txn *txn, ckpt_state_fn fn, void *ctx, sp_err_t *err)
{
    if (!c->have[CKPT_DB_STATE])
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, c->dbi[CKPT_DB_STATE], &cur);
    if (rc != 0)
        return fail(c, rc, err, "opening a cursor on state");
    MDB_val k, v;
    c->scans++;
    int grc = cursor_get(c, cur, &k, &v, MDB_FIRST);
    for (; grc == 0; grc = cursor_get(c, cur, &k, &v, MDB_NEXT)) {
        const void *key, *state;
        size_t klen, slen;
        if ((rc = state_decode(c, &k, &v, &key, &klen, &state, &slen, err)) != 0)
            break;
        if ((rc = fn(ctx, key, klen, state, slen)) != 0)
            break;
    }
    c->scans--;
    mdb_cursor_close(cur);
    if (rc == 0 && grc != MDB_NOTFOUND)
        rc = fail(c, grc, err, "scanning state");
    return rc;
}

int ckpt_txn_state_scan(ckpt_txn_t *t, ckpt_state_fn fn, void *ctx, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = txn_usable(t, err);
    if (rc != 0)
        return rc;
    return state_walk(t->c, t->txn, fn, ctx, err);
}

uint64_t ckpt_txn_state_count(ckpt_txn_t *t)
{
    CKPT_GUARD(); /* see "fault guard" */
    MDB_stat st;
    if (t == NULL || t->c == NULL || t->txn == NULL ||
        mdb_stat(t->txn, t->c->dbi[CKPT_DB_STATE], &st) != 0)
        return 0;
    return st.ms_entries;
}

int ckpt_commit_end(ckpt_txn_t **tp, const ckpt_commit_t *rec, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    ckpt_txn_t *t = tp ? *tp : NULL;
    int rc = txn_writable(t, err);
    if (rc != 0 && t != NULL && t->c != NULL && t->c->scans != 0)
        return rc; /* ending it here would pull the scan's cursor away: t stays */
    if (rc == 0 && rec->batch_id != t->batch_id)
        rc = sp_err_set(err, SP_EINVAL, "checkpoint %s: the commit record names batch %" PRId64
                        " in the commit of batch %" PRId64, t->c->dir, rec->batch_id,
                        t->batch_id);
    if (rc != 0) {
        ckpt_txn_abort(tp);
        return rc;
    }
    ckpt_t *c = t->c;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k = batch_key(kb, t->batch_id);
    msgpack_packer pk;
    rec_begin(&c->buf, &pk, CKPT_REC_COMMIT);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_int64(&pk, rec->batch_id);
    msgpack_pack_int64(&pk, rec->committed_ms);
    msgpack_pack_uint64(&pk, rec->input_rows);
    msgpack_pack_uint64(&pk, rec->malformed_rows);
    msgpack_pack_uint64(&pk, rec->state_rows);
    msgpack_pack_uint64(&pk, rec->updated_rows);
    rec_seal(&c->buf, kb, sizeof kb);
    MDB_val v = {.mv_size = c->buf.len, .mv_data = c->buf.data};
    rc = mdb_put(t->txn, c->dbi[CKPT_DB_COMMITS], &k, &v, MDB_NOOVERWRITE);
    if (rc == 0) {
        /* mdb_txn_commit ends the transaction whatever it returns. */
        rc = mdb_txn_commit(t->txn);
        t->txn = NULL;
    }
    if (rc == MDB_MAP_FULL) {
        rc = txn_retry(t, err);
    } else if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "committing batch %" PRId64, t->batch_id);
        rc = txn_dead(t, fail(c, rc, err, what));
    }
    c->wtxn = NULL;
    ckpt_txn_abort(tp);
    return rc;
}

void ckpt_txn_abort(ckpt_txn_t **tp)
{
    CKPT_GUARD(); /* see "fault guard" */
    if (tp == NULL || *tp == NULL)
        return;
    ckpt_txn_t *t = *tp;
    if (t->txn != NULL)
        mdb_txn_abort(t->txn);
    if (t->c != NULL && t->c->wtxn == t)
        t->c->wtxn = NULL;
    free(t);
    *tp = NULL;
}

/* ==== reading ========================================================== */

int ckpt_state_scan(ckpt_t *c, ckpt_state_fn fn, void *ctx, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    MDB_txn *txn;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    /* The format as of this snapshot: a driver may have upgraded the
     * checkpoint since a reader opened it. */
    uint32_t version;
    rc = format_read(c, txn, &version, NULL, NULL, err);
    if (rc == 0)
        c->format = version;
    if (rc == 0 || rc == SP_ENOTFOUND)
        rc = state_walk(c, txn, fn, ctx, err);
    mdb_txn_abort(txn);
    return rc;
}

uint32_t ckpt_state_key_format(const ckpt_t *c) { return c->format; }

/* ==== upgrading an older format ======================================== */

typedef struct upgrade {
    ckpt_key_upgrade_fn fn;
    void *ctx;
    uint32_t from;      /* the format found */
    uint64_t entries;   /* state entries rewritten */
    sp_buf_t buf;       /* the entries: new key, state, each length-prefixed */
} upgrade_t;

static void put_len(sp_buf_t *b, const void *p, size_t n)
{
    uint8_t l[8];
    put_be(l, n, 8);
    sp_buf_append(b, l, 8);
    sp_buf_append(b, p, n);
}

static const void *get_len(const sp_buf_t *b, size_t *pos, size_t *n)
{
    *n = (size_t)get_be((const uint8_t *)b->data + *pos, 8);
    const void *p = b->data + *pos + 8;
    *pos += 8 + *n;
    return p;
}

/* Read every state entry with its old key, drop them, put them back under
 * the upgraded keys, and write the format record of today: one
 * transaction, so a crash leaves the old checkpoint as it was. */
static int upgrade_txn(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err)
{
    upgrade_t *u = (upgrade_t *)arg;
    c->format = u->from; /* (a retry after map growth starts over) */
    u->entries = 0;
    u->buf.len = 0;
    uint32_t version;
    int64_t created = 0;
    int rc = format_read(c, txn, &version, &created, NULL, err);
    if (rc != 0)
        return rc;
    sp_buf_t key = SP_BUF_INIT;
    if (c->have[CKPT_DB_STATE]) {
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, c->dbi[CKPT_DB_STATE], &cur)) != 0)
            return fail(c, rc, err, "opening a cursor on state");
        MDB_val k, v;
        int grc = cursor_get(c, cur, &k, &v, MDB_FIRST);
        for (; grc == 0 && rc == 0; grc = cursor_get(c, cur, &k, &v, MDB_NEXT)) {
            const void *okey, *state;
            size_t oklen, slen;
            if ((rc = state_decode(c, &k, &v, &okey, &oklen, &state, &slen, err)) != 0)
                break;
            key.len = 0;
            if ((rc = u->fn(u->ctx, u->from, okey, oklen, &key, err)) != 0) {
                rc = sp_err_wrap(err, SP_ECORRUPT, "checkpoint %s: upgrading a state key", c->dir);
                break;
            }
            put_len(&u->buf, key.data, key.len);
            put_len(&u->buf, state, slen);
            u->entries++;
        }
        mdb_cursor_close(cur);
        if (rc == 0 && grc != MDB_NOTFOUND)
            rc = fail(c, grc, err, "scanning state");
        if (rc == 0 && (rc = mdb_drop(txn, c->dbi[CKPT_DB_STATE], 0)) != 0)
            rc = fail(c, rc, err, "emptying state");
    }
    sp_buf_free(&key);
    if (rc != 0)
        return rc;
    c->format = CKPT_FORMAT_VERSION;
    size_t pos = 0;
    for (uint64_t i = 0; i < u->entries && rc == 0; i++) {
        size_t klen, slen;
        const void *k = get_len(&u->buf, &pos, &klen);
        const void *st = get_len(&u->buf, &pos, &slen);
        rc = state_put_txn(c, txn, k, klen, st, slen, err);
    }
    if (rc == 0)
        rc = format_write(c, txn, created, err);
    if (rc != 0)
        c->format = u->from;
    return rc;
}

int ckpt_upgrade(ckpt_t *c, ckpt_key_upgrade_fn fn, void *ctx, uint32_t *from, uint64_t *entries,
                 sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    *from = c->format;
    *entries = 0;
    if (c->format >= CKPT_FORMAT_VERSION)
        return 0;
    if (c->readonly)
        return sp_err_set(err, SP_EINVAL, "checkpoint %s is open read-only: it cannot be upgraded",
                          c->dir);
    upgrade_t u = {fn, ctx, c->format, 0, SP_BUF_INIT};
    int rc = write_retry(c, upgrade_txn, &u, "upgrading the checkpoint format", err);
    if (rc != 0)
        c->format = u.from; /* (the commit itself may have failed) */
    *entries = u.entries;
    sp_buf_free(&u.buf);
    return rc;
}

int ckpt_commit_read(ckpt_t *c, int64_t batch_id, ckpt_commit_t *out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    MDB_txn *txn;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k, v;
    int rc = batch_get(c, CKPT_DB_COMMITS, "commit", batch_id, &txn, kb, &k, &v, err);
    if (rc != 0)
        return rc;
    rc = commit_decode(c, &k, &v, batch_id, out, err);
    mdb_txn_abort(txn);
    return rc;
}

int ckpt_sink_read(ckpt_t *c, int64_t batch_id, void **rec, size_t *len, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    *rec = NULL;
    *len = 0;
    MDB_txn *txn;
    uint8_t kb[BATCH_KEY_LEN];
    MDB_val k, v;
    int rc = batch_get(c, CKPT_DB_SINK, "sink", batch_id, &txn, kb, &k, &v, err);
    if (rc != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "the sink record of batch %" PRId64, batch_id);
    rd_t r;
    rc = rec_open(c, &k, &v, CKPT_REC_SINK, what, &r, err);
    if (rc == 0) {
        *len = rd_left(&r);
        *rec = sp_xmalloc(*len ? *len : 1);
        if (*len)
            memcpy(*rec, r.p, *len);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* ---- pruning ------------------------------------------------------------------ */

int ckpt_txn_prune_batches(ckpt_txn_t *t, int64_t before, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    int rc = txn_writable(t, err);
    if (rc != 0 || before <= 0)
        return rc;
    ckpt_t *c = t->c;
    static const int dbs[] = {CKPT_DB_OFFSETS, CKPT_DB_COMMITS, CKPT_DB_SINK};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && rc == 0; i++) {
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(t->txn, c->dbi[dbs[i]], &cur)) != 0)
            return txn_dead(t, fail(c, rc, err, "opening a cursor to prune"));
        MDB_val k, v;
        int grc = cursor_get(c, cur, &k, &v, MDB_FIRST);
        while (grc == 0 && k.mv_size == BATCH_KEY_LEN && (int64_t)get_be(k.mv_data, 8) < before) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            grc = cursor_get(c, cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_MAP_FULL)
            return txn_retry(t, err);
        if (rc != 0)
            return txn_dead(t, fail(c, rc, err, "pruning old batches"));
    }
    return 0;
}

typedef struct forget_arg {
    const char *const *paths;
    size_t n;
    int64_t cutoff_mtime_ns; /* forget_older: entries older than this */
    uint64_t removed;
} forget_arg_t;

static int forget_paths_txn(ckpt_t *c, MDB_txn *txn, const void *varg, sp_err_t *err)
{
    forget_arg_t *a = (forget_arg_t *)varg;
    for (size_t i = 0; i < a->n; i++) {
        size_t plen = strlen(a->paths[i]);
        if (plen == 0)
            continue;
        uint8_t kb[LONG_KEY_LEN];
        MDB_val k = {.mv_size = long_key(kb, a->paths[i], plen), .mv_data = kb};
        int rc = mdb_del(txn, c->dbi[CKPT_DB_SOURCES], &k, NULL);
        if (rc == 0)
            a->removed++;
        else if (rc != MDB_NOTFOUND)
            return rc == MDB_MAP_FULL ? CKPT__MAP_FULL : fail(c, rc, err, "forgetting source files");
    }
    return 0;
}

int ckpt_forget_files(ckpt_t *c, const char *const *paths, size_t n, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    forget_arg_t a = {paths, n, 0, 0};
    return n == 0 ? 0 : write_retry(c, forget_paths_txn, &a, "forgetting source files", err);
}

static int forget_older_txn(ckpt_t *c, MDB_txn *txn, const void *varg, sp_err_t *err)
{
    forget_arg_t *a = (forget_arg_t *)varg;
    a->removed = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, c->dbi[CKPT_DB_SOURCES], &cur);
    if (rc != 0)
        return fail(c, rc, err, "opening a cursor on sources");
    MDB_val k, v;
    int grc = cursor_get(c, cur, &k, &v, MDB_FIRST);
    while (grc == 0) {
        int64_t batch, mtime = 0;
        const char *full;
        size_t flen;
        if ((rc = source_decode(c, &k, &v, &batch, &full, &flen, &mtime, err)) != 0)
            break;
        if (mtime < a->cutoff_mtime_ns) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0) {
                rc = rc == MDB_MAP_FULL ? CKPT__MAP_FULL : fail(c, rc, err, "forgetting old source files");
                break;
            }
            a->removed++;
        }
        grc = cursor_get(c, cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && grc != MDB_NOTFOUND)
        rc = fail(c, grc, err, "reading sources");
    return rc;
}

int ckpt_forget_files_older(ckpt_t *c, int64_t cutoff_mtime_ns, uint64_t *removed, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    forget_arg_t a = {NULL, 0, cutoff_mtime_ns, 0};
    int rc = c->have[CKPT_DB_SOURCES] ? write_retry(c, forget_older_txn, &a, "forgetting old source files", err) : 0;
    if (removed)
        *removed = a.removed;
    return rc;
}

/* ---- recent progress ------------------------------------------------------- */

typedef struct progress_arg {
    const char *json;
    size_t len, keep;
} progress_arg_t;

static int progress_append_txn(ckpt_t *c, MDB_txn *txn, const void *arg, sp_err_t *err)
{
    const progress_arg_t *a = arg;
    MDB_dbi dbi = c->dbi[CKPT_DB_PROGRESS];
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return fail(c, rc, err, "opening a cursor on progress");
    MDB_val k, v;
    uint64_t seq = 0;
    rc = cursor_get(c, cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8)
        seq = get_be(k.mv_data, 8) + 1;
    else if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return fail(c, rc, err, "reading progress");
    }
    uint8_t kb[8];
    put_be(kb, seq, 8);
    sp_buf_t *b = &c->buf;
    b->len = 0;
    sp_buf_putc(b, CKPT_REC_PROGRESS);
    sp_buf_putc(b, CKPT_REC_VERSION);
    sp_buf_append(b, a->json, a->len);
    rec_seal(b, kb, sizeof kb);
    MDB_val nk = {.mv_size = 8, .mv_data = kb}, nv = {.mv_size = b->len, .mv_data = b->data};
    rc = mdb_put(txn, dbi, &nk, &nv, MDB_APPEND);
    /* drop the oldest beyond `keep` */
    MDB_stat st;
    if (rc == 0 && (rc = mdb_stat(txn, dbi, &st)) == 0) {
        size_t extra = st.ms_entries > a->keep ? st.ms_entries - a->keep : 0;
        for (size_t i = 0; i < extra && rc == 0; i++) {
            rc = cursor_get(c, cur, &k, &v, MDB_FIRST);
            if (rc == 0)
                rc = mdb_cursor_del(cur, 0);
        }
    }
    mdb_cursor_close(cur);
    return rc == 0 ? 0 : fail(c, rc, err, "writing progress");
}

int ckpt_progress_append(ckpt_t *c, const char *json, size_t len, size_t keep, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    if (keep == 0)
        keep = 1;
    progress_arg_t a = {json, len, keep};
    /* Not synced: the next batch's commit makes it durable. */
    mdb_env_set_flags(c->env, MDB_NOSYNC, 1);
    int rc = write_retry(c, progress_append_txn, &a, "writing progress", err);
    mdb_env_set_flags(c->env, MDB_NOSYNC, 0);
    return rc;
}

int ckpt_progress_read(ckpt_t *c, size_t last, ckpt_progress_fn fn, void *ctx, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    MDB_txn *txn;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    if (!c->have[CKPT_DB_PROGRESS]) {
        mdb_txn_abort(txn);
        return 0;
    }
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, c->dbi[CKPT_DB_PROGRESS], &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return fail(c, rc, err, "opening a cursor on progress");
    }
    MDB_stat st;
    size_t skip = 0;
    if (mdb_stat(txn, c->dbi[CKPT_DB_PROGRESS], &st) == 0 && last && st.ms_entries > last)
        skip = st.ms_entries - last;
    MDB_val k, v;
    int grc = cursor_get(c, cur, &k, &v, MDB_FIRST);
    c->scans++;
    for (size_t i = 0; grc == 0; i++, grc = cursor_get(c, cur, &k, &v, MDB_NEXT)) {
        if (i < skip)
            continue;
        rd_t r;
        if ((rc = rec_open(c, &k, &v, CKPT_REC_PROGRESS, "a progress record", &r, err)) != 0)
            break;
        rc = fn(ctx, (const char *)r.p, (size_t)(r.end - r.p));
        if (rc != 0)
            break;
    }
    c->scans--;
    if (rc == 0 && grc != MDB_NOTFOUND)
        rc = fail(c, grc, err, "reading progress");
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int ckpt_stats(ckpt_t *c, ckpt_stats_t *out, sp_err_t *err)
{
    CKPT_GUARD(); /* see "fault guard" */
    memset(out, 0, sizeof *out);
    out->last_planned = out->last_committed = -1;
    for (int i = 0; i < CKPT_DB_COUNT; i++)
        out->dbs[i].name = db_names[i];
    MDB_txn *txn;
    int rc = rtxn_begin(c, &txn, err);
    if (rc != 0)
        return rc;
    for (int i = 0; i < CKPT_DB_COUNT && rc == 0; i++) {
        MDB_stat st;
        if (!c->have[i])
            continue; /* not created yet: an older or still empty checkpoint */
        int src = mdb_stat(txn, c->dbi[i], &st);
        if (src != 0) {
            rc = fail(c, src, err, "reading database statistics");
            break;
        }
        out->dbs[i].entries = st.ms_entries;
        out->dbs[i].bytes = (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages +
                                       st.ms_overflow_pages) * st.ms_psize;
    }
    if (rc == 0)
        rc = last_batch(c, txn, CKPT_DB_OFFSETS, &out->last_planned, err);
    if (rc == 0)
        rc = last_batch(c, txn, CKPT_DB_COMMITS, &out->last_committed, err);
    if (rc == 0) {
        rc = format_read(c, txn, &out->format_version, NULL, NULL, err);
        if (rc == SP_ENOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    MDB_envinfo info;
    int fd;
    struct stat sb;
    if (mdb_env_info(c->env, &info) == 0)
        out->map_size = info.me_mapsize;
    if (mdb_env_get_fd(c->env, &fd) == 0 && fstat(fd, &sb) == 0)
        out->file_size = (uint64_t)sb.st_size;
    return 0;
}
