/* tests/support/ckpt_raw.h -- raw access to a checkpoint's LMDB file for
 * tests that must write what storage/ckpt.c never would (a record of a newer
 * format, a damaged record), built from the layout in storage/ckpt_int.h
 * and independent of storage/ckpt.c. Failures fail the calling test. */
#ifndef SP_CKPT_RAW_H
#define SP_CKPT_RAW_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* An LMDB environment on dir (caller closes with mdb_env_close). */
MDB_env *raw_open(const char *dir);

/* db[key] = value in one transaction (db created if missing). */
void raw_put(const char *dir, const char *db, const void *k, size_t klen, const void *v, size_t vlen);

/* Delete every entry of db (created if missing). */
void raw_empty(const char *dir, const char *db);

/* A malloc'd copy of db[key]; NULL when absent. */
uint8_t *raw_get(const char *dir, const char *db, const void *k, size_t klen, size_t *vlen);

/* A format record with this magic and version into out (cap bytes);
 * returns its length. */
size_t craft_format(uint8_t *out, size_t cap, const char *magic, uint64_t version);

/* Append the CRC-32 of key then buf[0, len) (big-endian) at buf[len];
 * buf must have room for 4 more bytes. Returns len + 4. */
size_t raw_seal(const void *key, size_t klen, uint8_t *buf, size_t len);

#endif
