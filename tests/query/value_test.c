/* tests/query/value_test.c -- the value order and the key codec: round
 * trips, normalisation of doubles, and rejection of damaged bytes. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "value.h"

static sp_value_t vi(int64_t i) { return (sp_value_t){.type = SP_TYPE_BIGINT, .u.i = i}; }
static sp_value_t vd(double d) { return (sp_value_t){.type = SP_TYPE_DOUBLE, .u.d = d}; }
static sp_value_t vb(bool b) { return (sp_value_t){.type = SP_TYPE_BOOLEAN, .u.b = b}; }
static sp_value_t vs(const char *s)
{
    return (sp_value_t){.type = SP_TYPE_STRING, .u.s = {s, (uint32_t)strlen(s)}};
}

Test(key_codec, round_trip_of_every_type)
{
    sp_value_t in[] = {SP_VALUE_NULL, vb(false), vb(true), vi(INT64_MIN), vi(-1), vi(INT64_MAX),
                       vd(-5.958191), vd(1e300), vs(""), vs("stand"), vs("with\0nul")};
    in[10].u.s.len = 8; /* a string holding a NUL byte */
    size_t n = sizeof in / sizeof in[0];
    sp_buf_t b = SP_BUF_INIT;
    size_t expect_len = 0;
    for (size_t i = 0; i < n; i++) {
        sp_key_encode_value(&b, &in[i]);
        expect_len += sp_key_value_size(&in[i]);
    }
    cr_assert_eq(b.len, expect_len);
    sp_value_t out[sizeof in / sizeof in[0]];
    sp_err_t err;
    cr_assert_eq(sp_key_decode(b.data, b.len, out, n, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(out[i].type, in[i].type, "value %zu", i);
        cr_assert_eq(sp_value_cmp(&out[i], &in[i]), 0, "value %zu", i);
    }
    cr_assert_eq(out[10].u.s.len, 8);
    cr_assert_eq(memcmp(out[10].u.s.ptr, "with\0nul", 8), 0);
    sp_buf_free(&b);
}

Test(key_codec, negative_zero_and_nan_group_together)
{
    sp_buf_t a = SP_BUF_INIT, b = SP_BUF_INIT;
    sp_value_t pz = vd(0.0), nz = vd(-0.0), n1 = vd(NAN), n2 = vd(-NAN);
    sp_key_encode_value(&a, &pz);
    sp_key_encode_value(&b, &nz);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(memcmp(a.data, b.data, a.len), 0, "-0.0 and 0.0 must encode alike");
    a.len = b.len = 0;
    sp_key_encode_value(&a, &n1);
    sp_key_encode_value(&b, &n2);
    cr_assert_eq(memcmp(a.data, b.data, a.len), 0, "every NaN must encode alike");
    sp_buf_free(&a);
    sp_buf_free(&b);
}

Test(key_codec, damaged_bytes_are_refused)
{
    sp_value_t out[2];
    sp_err_t err;
    const unsigned char bad_tag[] = {9};
    cr_assert_eq(sp_key_decode(bad_tag, 1, out, 1, &err), SP_ECORRUPT);
    cr_assert(strstr(err.msg, "tag") != NULL, "%s", err.msg);
    const unsigned char short_int[] = {SP_KEY_TAG_BIGINT, 1, 2, 3};
    cr_assert_eq(sp_key_decode(short_int, sizeof short_int, out, 1, &err), SP_ECORRUPT);
    const unsigned char long_string[] = {SP_KEY_TAG_STRING, 0xff, 0xff, 0xff, 0x7f, 'a'};
    cr_assert_eq(sp_key_decode(long_string, sizeof long_string, out, 1, &err), SP_ECORRUPT);
    const unsigned char extra[] = {SP_KEY_TAG_NULL, SP_KEY_TAG_NULL};
    cr_assert_eq(sp_key_decode(extra, sizeof extra, out, 1, &err), SP_ECORRUPT, "left-over bytes");
    cr_assert_eq(sp_key_decode(extra, 1, out, 2, &err), SP_ECORRUPT, "too few values");
}

Test(value_order, numbers_compare_across_types_exactly)
{
    sp_value_t a = vi(9007199254740993LL), b = vd(9007199254740992.0);
    cr_assert_gt(sp_value_cmp(&a, &b), 0, "2^53+1 > 2^53 even though (double)(2^53+1) == 2^53");
    sp_value_t c = vi(3), d = vd(3.5), e = vd(3.0);
    cr_assert_lt(sp_value_cmp(&c, &d), 0);
    cr_assert_eq(sp_value_cmp(&c, &e), 0);
    sp_value_t n = SP_VALUE_NULL, s = vs("a"), t = vb(true);
    cr_assert_lt(sp_value_cmp(&n, &c), 0, "NULL sorts first");
    cr_assert_lt(sp_value_cmp(&t, &c), 0, "booleans before numbers");
    cr_assert_lt(sp_value_cmp(&c, &s), 0, "numbers before strings");
    sp_value_t nan = vd(NAN), big = vd(1e308);
    cr_assert_gt(sp_value_cmp(&nan, &big), 0, "NaN sorts above every number");
    sp_value_t ab = vs("ab"), abc = vs("abc");
    cr_assert_lt(sp_value_cmp(&ab, &abc), 0);
}

static int cmp_bytes(const sp_buf_t *a, const sp_buf_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->data, b->data, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Numbers of one type sort by their key bytes as by their values (the
 * checkpoint's state B-tree relies on it for locality). */
Test(key_codec, numbers_sort_by_their_bytes)
{
    const int64_t ints[] = {INT64_MIN, -1000000, -256, -1, 0, 1, 255, 256, 65536, 1424686735090, INT64_MAX};
    const double dbls[] = {-INFINITY, -1e300, -2.5, -1.0, -1e-300, 0.0, 1e-300, 0.5, 1.0, 255.0, 256.0,
                           1e300, INFINITY};
    for (int type = 0; type < 2; type++) {
        size_t n = type ? sizeof dbls / sizeof dbls[0] : sizeof ints / sizeof ints[0];
        for (size_t i = 0; i + 1 < n; i++) {
            sp_buf_t a = SP_BUF_INIT, b = SP_BUF_INIT;
            sp_value_t x = type ? vd(dbls[i]) : vi(ints[i]), y = type ? vd(dbls[i + 1]) : vi(ints[i + 1]);
            sp_key_encode_value(&a, &x);
            sp_key_encode_value(&b, &y);
            cr_assert_lt(cmp_bytes(&a, &b), 0, "%s %zu and %zu out of order", type ? "double" : "bigint", i,
                         i + 1);
            sp_buf_free(&a);
            sp_buf_free(&b);
        }
    }
    /* a shared leading value keeps keys together: (d, 1) < (d, 2) < (e, 0) */
    sp_buf_t k[3] = {SP_BUF_INIT, SP_BUF_INIT, SP_BUF_INIT};
    const char *dev[] = {"nexus4_1", "nexus4_1", "nexus4_2"};
    const int64_t idx[] = {1, 2, 0};
    for (int i = 0; i < 3; i++) {
        sp_value_t d = vs(dev[i]), x = vi(idx[i]);
        sp_key_encode_value(&k[i], &d);
        sp_key_encode_value(&k[i], &x);
    }
    cr_assert_lt(cmp_bytes(&k[0], &k[1]), 0);
    cr_assert_lt(cmp_bytes(&k[1], &k[2]), 0);
    for (int i = 0; i < 3; i++)
        sp_buf_free(&k[i]);
}

/* Keys of checkpoint format 1 (numbers little-endian, written here by
 * hand) become today's keys of the same values. */
Test(key_codec, format_1_keys_are_upgraded)
{
    const unsigned char v1[] = {
        SP_KEY_TAG_STRING, 3, 0, 0, 0, 'a', 'b', 'c',                  /* "abc" */
        SP_KEY_TAG_BIGINT, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* -2 */
        SP_KEY_TAG_DOUBLE, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,              /* 1.5 */
        SP_KEY_TAG_NULL, SP_KEY_TAG_TRUE,
    };
    sp_buf_t out = SP_BUF_INIT, want = SP_BUF_INIT;
    sp_err_t err;
    cr_assert_eq(sp_key_upgrade(1, v1, sizeof v1, &out, &err), 0, "%s", err.msg);
    sp_value_t vals[] = {vs("abc"), vi(-2), vd(1.5), SP_VALUE_NULL, vb(true)};
    for (size_t i = 0; i < 5; i++)
        sp_key_encode_value(&want, &vals[i]);
    cr_assert_eq(out.len, want.len);
    cr_assert_eq(memcmp(out.data, want.data, out.len), 0);
    /* today's keys pass through; damaged or unknown ones are refused */
    out.len = 0;
    cr_assert_eq(sp_key_upgrade(SP_KEY_FORMAT, want.data, want.len, &out, &err), 0);
    cr_assert_eq(memcmp(out.data, want.data, want.len), 0);
    cr_assert_eq(sp_key_upgrade(1, v1, 10, &out, &err), SP_ECORRUPT);
    cr_assert_eq(sp_key_upgrade(99, v1, sizeof v1, &out, &err), SP_EVERSION);
    /* state bytes keep format 1's numbers */
    sp_buf_t st = SP_BUF_INIT;
    sp_state_encode_value(&st, &vals[1]);
    cr_assert_eq(memcmp(st.data, v1 + 8, 9), 0);
    sp_buf_free(&st);
    sp_buf_free(&out);
    sp_buf_free(&want);
}
