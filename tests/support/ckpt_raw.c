/* tests/support/ckpt_raw.c -- raw LMDB access and record crafting for
 * checkpoint tests (see ckpt_raw.h). */
#include "ckpt_raw.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

MDB_env *raw_open(const char *dir)
{
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, (size_t)256 << 20);
    int rc = mdb_env_open(env, dir, 0, 0644);
    cr_assert_eq(rc, 0, "mdb_env_open %s: %s", dir, mdb_strerror(rc));
    return env;
}

void raw_put(const char *dir, const char *db, const void *k, size_t klen, const void *v,
                    size_t vlen)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
    cr_assert_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

void raw_empty(const char *dir, const char *db)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    cr_assert_eq(mdb_drop(txn, dbi, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A malloc'd copy of db[key]; NULL when absent. */
uint8_t *raw_get(const char *dir, const char *db, const void *k, size_t klen,
                        size_t *vlen)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t *out = NULL;
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    if (mdb_dbi_open(txn, db, 0, &dbi) == 0) {
        MDB_val key = {klen, (void *)k}, val;
        if (mdb_get(txn, dbi, &key, &val) == 0) {
            out = malloc(val.mv_size + 1);
            memcpy(out, val.mv_data, val.mv_size);
            *vlen = val.mv_size;
        }
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return out;
}

static int sbuf_write(void *data, const char *p, size_t n)
{
    return msgpack_sbuffer_write(data, p, n);
}

/* A format record as ckpt_int.h describes it, written independently of
 * storage/ckpt.c. */
size_t craft_format(uint8_t *out, size_t cap, const char *magic, uint64_t version)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, sbuf_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str_with_body(&pk, magic, strlen(magic));
    msgpack_pack_uint64(&pk, version);
    msgpack_pack_int64(&pk, 1700000000000);
    msgpack_pack_str_with_body(&pk, "9.9.9", 5);
    size_t n = 2 + sb.size + 4;
    cr_assert(n <= cap);
    out[0] = 'F';
    out[1] = 1;
    memcpy(out + 2, sb.data, sb.size);
    uLong crc = crc32(0, (const Bytef *)"format", 6);
    crc = crc32(crc, out, (uInt)(2 + sb.size));
    out[n - 4] = (uint8_t)(crc >> 24);
    out[n - 3] = (uint8_t)(crc >> 16);
    out[n - 2] = (uint8_t)(crc >> 8);
    out[n - 1] = (uint8_t)crc;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

size_t raw_seal(const void *key, size_t klen, uint8_t *buf, size_t len)
{
    uLong crc = crc32(crc32(0, key, (uInt)klen), buf, (uInt)len);
    buf[len] = (uint8_t)(crc >> 24);
    buf[len + 1] = (uint8_t)(crc >> 16);
    buf[len + 2] = (uint8_t)(crc >> 8);
    buf[len + 3] = (uint8_t)crc;
    return len + 4;
}
