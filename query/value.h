/* query/value.h -- the engine's value types (STRING, BIGINT, DOUBLE,
 * BOOLEAN and SQL NULL), a borrowed-value struct used on the hot path, and
 * the key codec: the byte form of a tuple of values that names a group in
 * executor hash tables, on the wire and in the checkpoint's state database.
 *
 * Key codec (format version 1, stable across releases), per value:
 *
 *   tag  meaning   payload
 *   0    NULL      -
 *   1    FALSE     -
 *   2    TRUE      -
 *   3    BIGINT    8 bytes, two's complement, little endian
 *   4    DOUBLE    8 bytes, IEEE-754 binary64, little endian; -0.0 is
 *                  stored as 0.0 and every NaN as the one quiet NaN, so
 *                  equal values group together (as Spark normalises them)
 *   5    STRING    4-byte little-endian length, then the bytes
 *
 * A key is the concatenation of its values in GROUP BY order. */
#ifndef SP_VALUE_H
#define SP_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_err.h"
#include "sp_util.h"

typedef enum sp_type {
    SP_TYPE_NULL = 0, /* the type of the NULL value; as a column type, "no type yet" */
    SP_TYPE_BOOLEAN = 1,
    SP_TYPE_BIGINT = 2,
    SP_TYPE_DOUBLE = 3,
    SP_TYPE_STRING = 4,
} sp_type_t;

/* "NULL", "BOOLEAN", "BIGINT", "DOUBLE", "STRING". */
const char *sp_type_name(sp_type_t t);

/* Case-insensitive type name: STRING (VARCHAR, TEXT), BIGINT (LONG, INT,
 * INTEGER), DOUBLE (FLOAT, REAL), BOOLEAN (BOOL). Returns 0 or SP_EINVAL. */
int sp_type_parse(const char *name, size_t len, sp_type_t *out);

/* A value that borrows its string bytes from elsewhere (a line buffer, an
 * arena, a decoded message); the borrower says until when it is valid. */
typedef struct sp_value {
    sp_type_t type; /* SP_TYPE_NULL means SQL NULL */
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *ptr;
            uint32_t len;
        } s;
    } u;
} sp_value_t;

#define SP_VALUE_NULL ((sp_value_t){.type = SP_TYPE_NULL})

/* Total order used by MIN/MAX and result sorting: NULL first, then by
 * type family; BIGINT and DOUBLE compare numerically with each other;
 * strings by bytes; FALSE < TRUE. Returns <0, 0, >0. */
int sp_value_cmp_any(const sp_value_t *a, const sp_value_t *b);
static inline int sp_value_cmp(const sp_value_t *a, const sp_value_t *b)
{
    /* the hot case in line: two numbers of one type, no NaN */
    if (a->type == SP_TYPE_BIGINT && b->type == SP_TYPE_BIGINT)
        return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    if (a->type == SP_TYPE_DOUBLE && b->type == SP_TYPE_DOUBLE && a->u.d == a->u.d && b->u.d == b->u.d)
        return (a->u.d > b->u.d) - (a->u.d < b->u.d);
    return sp_value_cmp_any(a, b);
}

/* ---- key codec ------------------------------------------------------- */

enum {
    SP_KEY_TAG_NULL = 0,
    SP_KEY_TAG_FALSE = 1,
    SP_KEY_TAG_TRUE = 2,
    SP_KEY_TAG_BIGINT = 3,
    SP_KEY_TAG_DOUBLE = 4,
    SP_KEY_TAG_STRING = 5,
};

/* Bytes sp_key_encode_value will write for v. */
size_t sp_key_value_size(const sp_value_t *v);

/* Append the encoding of v to out: a tag byte, then BIGINT and DOUBLE as 8
 * bytes that compare with memcmp as the numbers do (big-endian, sign made
 * monotonic; -0.0 as 0.0, every NaN as one), STRING as a 4-byte
 * little-endian length and the bytes. So keys that share their leading
 * values sort together, and numbers in order: the checkpoint's state
 * B-tree keeps the groups a batch touches (the next times, the next
 * indexes) on few pages. Part of the checkpoint format (format 2) and of
 * the wire protocol (version 2). */
void sp_key_encode_value(sp_buf_t *out, const sp_value_t *v);

/* A value inside aggregate state bytes (MIN and MAX, query/agg.h): the
 * key codec's layout with numbers little-endian, plain bits (key format 1:
 * state bytes need not sort, and stay as checkpoint format 1 wrote them). */
void sp_state_encode_value(sp_buf_t *out, const sp_value_t *v);
int sp_state_decode_value(const void *buf, size_t len, size_t *pos, sp_value_t *out,
                          sp_err_t *err);

/* The key encoding of checkpoint format 2 (today's). Format 1 stored
 * numbers little-endian, plain bits. */
#define SP_KEY_FORMAT 2

/* Re-encode a key of key format `from` (1 or SP_KEY_FORMAT) as today's
 * encoding, appended to out. SP_ECORRUPT when the bytes are not a key of
 * that format, SP_EVERSION for a format this spate does not know. */
int sp_key_upgrade(uint32_t from, const void *key, size_t len, sp_buf_t *out, sp_err_t *err);

/* Decode one value at *pos in [buf, buf+len); advances *pos. String values
 * borrow from buf. Returns 0, or SP_ECORRUPT (message in err) when the bytes
 * are not a valid encoding. */
int sp_key_decode_value(const void *buf, size_t len, size_t *pos, sp_value_t *out,
                        sp_err_t *err);

/* Decode exactly n values filling the whole of buf. */
int sp_key_decode(const void *buf, size_t len, sp_value_t *out, size_t n, sp_err_t *err);

/* Stable 64-bit hash of key bytes (XXH3-64, seed 0), for the aggregate
 * tables' look-ups (never stored). */
uint64_t sp_key_hash(const void *key, size_t len);

#endif
