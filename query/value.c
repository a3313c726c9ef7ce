/* query/value.c -- type names, the value order, and the key codec (the
 * byte form of group keys; the table of tags is in value.h). */
#include "value.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const char *sp_type_name(sp_type_t t)
{
    switch (t) {
    case SP_TYPE_NULL: return "NULL";
    case SP_TYPE_BOOLEAN: return "BOOLEAN";
    case SP_TYPE_BIGINT: return "BIGINT";
    case SP_TYPE_DOUBLE: return "DOUBLE";
    case SP_TYPE_STRING: return "STRING";
    }
    return "UNKNOWN";
}

int sp_type_parse(const char *name, size_t len, sp_type_t *out)
{
    static const struct {
        const char *name;
        sp_type_t type;
    } names[] = {
        {"STRING", SP_TYPE_STRING}, {"VARCHAR", SP_TYPE_STRING}, {"TEXT", SP_TYPE_STRING},
        {"BIGINT", SP_TYPE_BIGINT}, {"LONG", SP_TYPE_BIGINT},    {"INT", SP_TYPE_BIGINT},
        {"INTEGER", SP_TYPE_BIGINT}, {"DOUBLE", SP_TYPE_DOUBLE}, {"FLOAT", SP_TYPE_DOUBLE},
        {"REAL", SP_TYPE_DOUBLE},    {"BOOLEAN", SP_TYPE_BOOLEAN}, {"BOOL", SP_TYPE_BOOLEAN},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, name, len) == 0) {
            *out = names[i].type;
            return 0;
        }
    }
    return SP_EINVAL;
}

static int type_family(sp_type_t t)
{
    switch (t) {
    case SP_TYPE_NULL: return 0;
    case SP_TYPE_BOOLEAN: return 1;
    case SP_TYPE_BIGINT:
    case SP_TYPE_DOUBLE: return 2;
    case SP_TYPE_STRING: return 3;
    }
    return 4;
}

/* Compare an int64 with a double exactly (no rounding of the int64). */
static int cmp_int_double(int64_t i, double d)
{
    if (isnan(d))
        return -1; /* NaN sorts above every number, as in Spark */
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc(d);
    int64_t di = (int64_t)t;
    if (i != di)
        return i < di ? -1 : 1;
    double frac = d - t;
    return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

static int cmp_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) ? (isnan(b) ? 0 : 1) : -1;
    return a < b ? -1 : (a > b ? 1 : 0);
}

int sp_value_cmp_any(const sp_value_t *a, const sp_value_t *b)
{
    int fa = type_family(a->type), fb = type_family(b->type);
    if (fa != fb)
        return fa < fb ? -1 : 1;
    switch (a->type) {
    case SP_TYPE_NULL:
        return 0;
    case SP_TYPE_BOOLEAN:
        return (int)a->u.b - (int)b->u.b;
    case SP_TYPE_BIGINT:
        if (b->type == SP_TYPE_BIGINT)
            return a->u.i < b->u.i ? -1 : (a->u.i > b->u.i ? 1 : 0);
        return cmp_int_double(a->u.i, b->u.d);
    case SP_TYPE_DOUBLE:
        if (b->type == SP_TYPE_DOUBLE)
            return cmp_double(a->u.d, b->u.d);
        return -cmp_int_double(b->u.i, a->u.d);
    case SP_TYPE_STRING: {
        uint32_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return a->u.s.len < b->u.s.len ? -1 : (a->u.s.len > b->u.s.len ? 1 : 0);
    }
    }
    return 0;
}

/* ---- key codec ---------------------------------------------------------- */

size_t sp_key_value_size(const sp_value_t *v)
{
    switch (v->type) {
    case SP_TYPE_NULL:
    case SP_TYPE_BOOLEAN: return 1;
    case SP_TYPE_BIGINT:
    case SP_TYPE_DOUBLE: return 9;
    case SP_TYPE_STRING: return 5 + (size_t)v->u.s.len;
    }
    return 1;
}

/* Numbers are stored big-endian with the sign bit flipped (BIGINT) or the
 * IEEE-754 bits made monotonic (DOUBLE: negatives inverted, positives with
 * the sign bit set), so that keys compare with memcmp as their numbers
 * do. Format 1 (checkpoint format 1) stored the plain bits little-endian;
 * it is still decoded, for sp_key_upgrade. */
#define SIGN_BIT 0x8000000000000000ull

static void put_be64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (56 - 8 * i));
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static uint64_t double_to_key(uint64_t bits) { return bits & SIGN_BIT ? ~bits : bits | SIGN_BIT; }
static uint64_t double_from_key(uint64_t k) { return k & SIGN_BIT ? k & ~SIGN_BIT : ~k; }

static void put_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

/* One value in key format `format` (see key_decode_value). */
static void encode_value(sp_buf_t *out, const sp_value_t *v, int format)
{
    size_t n = sp_key_value_size(v);
    sp_buf_reserve(out, n);
    unsigned char *p = (unsigned char *)out->data + out->len;
    switch (v->type) {
    case SP_TYPE_NULL:
        p[0] = SP_KEY_TAG_NULL;
        break;
    case SP_TYPE_BOOLEAN:
        p[0] = v->u.b ? SP_KEY_TAG_TRUE : SP_KEY_TAG_FALSE;
        break;
    case SP_TYPE_BIGINT:
        p[0] = SP_KEY_TAG_BIGINT;
        if (format == 1)
            put_le64(p + 1, (uint64_t)v->u.i);
        else
            put_be64(p + 1, (uint64_t)v->u.i ^ SIGN_BIT);
        break;
    case SP_TYPE_DOUBLE: {
        double d = v->u.d;
        if (d == 0)
            d = 0.0; /* -0.0 groups with 0.0 */
        uint64_t bits;
        if (isnan(d))
            bits = 0x7ff8000000000000ull;
        else
            memcpy(&bits, &d, 8);
        p[0] = SP_KEY_TAG_DOUBLE;
        if (format == 1)
            put_le64(p + 1, bits);
        else
            put_be64(p + 1, double_to_key(bits));
        break;
    }
    case SP_TYPE_STRING: {
        uint32_t len = v->u.s.len;
        p[0] = SP_KEY_TAG_STRING;
        p[1] = (unsigned char)len;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)(len >> 16);
        p[4] = (unsigned char)(len >> 24);
        if (len)
            memcpy(p + 5, v->u.s.ptr, len);
        break;
    }
    }
    out->len += n;
}

/* One value in key format `format` (1: little-endian plain bits; 2: the
 * order-preserving numbers of today). */
static int key_decode_value(const void *buf, size_t len, size_t *pos, sp_value_t *out, int format,
                            sp_err_t *err)
{
    const unsigned char *p = (const unsigned char *)buf + *pos;
    size_t left = len - *pos;
    if (*pos >= len)
        return sp_err_set(err, SP_ECORRUPT, "key ends before its value at byte %zu", *pos);
    switch (p[0]) {
    case SP_KEY_TAG_NULL:
        *out = SP_VALUE_NULL;
        *pos += 1;
        return 0;
    case SP_KEY_TAG_FALSE:
    case SP_KEY_TAG_TRUE:
        out->type = SP_TYPE_BOOLEAN;
        out->u.b = p[0] == SP_KEY_TAG_TRUE;
        *pos += 1;
        return 0;
    case SP_KEY_TAG_BIGINT:
    case SP_KEY_TAG_DOUBLE:
        if (left < 9)
            return sp_err_set(err, SP_ECORRUPT, "number value truncated at byte %zu", *pos);
        if (p[0] == SP_KEY_TAG_BIGINT) {
            out->type = SP_TYPE_BIGINT;
            out->u.i = (int64_t)(format == 1 ? get_le64(p + 1) : get_be64(p + 1) ^ SIGN_BIT);
        } else {
            uint64_t bits = format == 1 ? get_le64(p + 1) : double_from_key(get_be64(p + 1));
            out->type = SP_TYPE_DOUBLE;
            memcpy(&out->u.d, &bits, 8);
        }
        *pos += 9;
        return 0;
    case SP_KEY_TAG_STRING: {
        if (left < 5)
            return sp_err_set(err, SP_ECORRUPT, "string value truncated at byte %zu", *pos);
        uint32_t n = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
        if ((size_t)n > left - 5)
            return sp_err_set(err, SP_ECORRUPT, "string of %u bytes overruns the key at byte %zu", n, *pos);
        out->type = SP_TYPE_STRING;
        out->u.s.ptr = (const char *)p + 5;
        out->u.s.len = n;
        *pos += 5 + (size_t)n;
        return 0;
    }
    }
    return sp_err_set(err, SP_ECORRUPT, "unknown value tag %u at byte %zu", p[0], *pos);
}

void sp_key_encode_value(sp_buf_t *out, const sp_value_t *v) { encode_value(out, v, SP_KEY_FORMAT); }

int sp_key_decode_value(const void *buf, size_t len, size_t *pos, sp_value_t *out, sp_err_t *err)
{
    return key_decode_value(buf, len, pos, out, SP_KEY_FORMAT, err);
}

void sp_state_encode_value(sp_buf_t *out, const sp_value_t *v) { encode_value(out, v, 1); }

int sp_state_decode_value(const void *buf, size_t len, size_t *pos, sp_value_t *out, sp_err_t *err)
{
    return key_decode_value(buf, len, pos, out, 1, err);
}

int sp_key_upgrade(uint32_t from, const void *key, size_t len, sp_buf_t *out, sp_err_t *err)
{
    if (from != 1 && from != SP_KEY_FORMAT)
        return sp_err_set(err, SP_EVERSION, "keys of format %u are unknown to this spate", from);
    size_t pos = 0;
    while (pos < len) {
        sp_value_t v;
        int rc = key_decode_value(key, len, &pos, &v, (int)from, err);
        if (rc != 0)
            return rc;
        sp_key_encode_value(out, &v);
    }
    return 0;
}

int sp_key_decode(const void *buf, size_t len, sp_value_t *out, size_t n, sp_err_t *err)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = sp_key_decode_value(buf, len, &pos, &out[i], err);
        if (rc != 0)
            return rc;
    }
    if (pos != len)
        return sp_err_set(err, SP_ECORRUPT, "key has %zu bytes after its %zu values", len - pos, n);
    return 0;
}

uint64_t sp_key_hash(const void *key, size_t len) { return XXH3_64bits(key, len); }
