/* tests/query/agg_test.c -- the aggregation kernel against a direct
 * computation: per-row updates, merging of encoded partials in any split
 * (the executor/driver path), finalizing, and refusal of damaged bytes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"

/* slots: 0 = g (STRING key), 1 = i (BIGINT), 2 = d (DOUBLE), 3 = s (STRING) */
static const agg_spec_t specs[] = {
    {AGG_COUNT_STAR, -1, SP_TYPE_NULL, SP_TYPE_BIGINT},
    {AGG_COUNT, 2, SP_TYPE_DOUBLE, SP_TYPE_BIGINT},
    {AGG_SUM, 1, SP_TYPE_BIGINT, SP_TYPE_BIGINT},
    {AGG_SUM, 2, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
    {AGG_MIN, 3, SP_TYPE_STRING, SP_TYPE_STRING},
    {AGG_MAX, 1, SP_TYPE_BIGINT, SP_TYPE_BIGINT},
    {AGG_AVG, 2, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
    {AGG_MIN, 2, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
};
#define NSPECS (sizeof specs / sizeof specs[0])
#define NKEYS 5
#define NROWS 20000

typedef struct row {
    int key;          /* -1: NULL key */
    bool i_null, d_null, s_null;
    int64_t i;
    double d;
    char s[8];
} row_t;

/* The expected answer per key, computed directly. */
typedef struct expect {
    int64_t count, count_d, sum_i, max_i, n_i, n_d, n_s;
    double sum_d, min_d;
    char min_s[8];
} expect_t;

static row_t rows[NROWS];
static expect_t want[NKEYS + 1]; /* index 0: NULL key */
static const char *keynames[NKEYS] = {"stand", "sit", "walk", "bike", "stairsup"};

static void make_rows(unsigned seed)
{
    srand(seed);
    memset(want, 0, sizeof want);
    for (int r = 0; r < NROWS; r++) {
        row_t *w = &rows[r];
        w->key = rand() % (NKEYS + 1) - 1;
        w->i_null = rand() % 10 == 0;
        w->d_null = rand() % 10 == 0;
        w->s_null = rand() % 10 == 0;
        w->i = (int64_t)(rand() % 2000001) - 1000000;
        w->d = (double)(rand() % 2000001 - 1000000) / 1000.0;
        snprintf(w->s, sizeof w->s, "s%05d", rand() % 100000);
        expect_t *e = &want[w->key + 1];
        e->count++;
        if (!w->i_null) {
            e->sum_i += w->i;
            if (e->n_i == 0 || w->i > e->max_i)
                e->max_i = w->i;
            e->n_i++;
        }
        if (!w->d_null) {
            e->sum_d += w->d;
            if (e->n_d == 0 || w->d < e->min_d)
                e->min_d = w->d;
            e->n_d++;
            e->count_d++;
        }
        if (!w->s_null) {
            if (e->n_s == 0 || strcmp(w->s, e->min_s) < 0)
                strcpy(e->min_s, w->s);
            e->n_s++;
        }
    }
}

static void add_rows(agg_table_t *t, int from, int to)
{
    for (int r = from; r < to; r++) {
        const row_t *w = &rows[r];
        sp_value_t slots[4];
        slots[0] = w->key < 0 ? SP_VALUE_NULL
                              : (sp_value_t){.type = SP_TYPE_STRING,
                                             .u.s = {keynames[w->key], (uint32_t)strlen(keynames[w->key])}};
        slots[1] = w->i_null ? SP_VALUE_NULL : (sp_value_t){.type = SP_TYPE_BIGINT, .u.i = w->i};
        slots[2] = w->d_null ? SP_VALUE_NULL : (sp_value_t){.type = SP_TYPE_DOUBLE, .u.d = w->d};
        /* the string lives in a stack buffer that is gone after the call:
         * the table must copy it */
        char tmp[8];
        memcpy(tmp, w->s, sizeof tmp);
        slots[3] = w->s_null ? SP_VALUE_NULL
                             : (sp_value_t){.type = SP_TYPE_STRING, .u.s = {tmp, (uint32_t)strlen(tmp)}};
        agg_table_add_row(t, &slots[0], slots);
        memset(tmp, 'X', sizeof tmp);
    }
}

static int key_index(const void *key, size_t klen)
{
    sp_value_t v;
    sp_err_t err;
    cr_assert_eq(sp_key_decode(key, klen, &v, 1, &err), 0, "%s", err.msg);
    if (v.type == SP_TYPE_NULL)
        return 0;
    for (int k = 0; k < NKEYS; k++)
        if (v.u.s.len == strlen(keynames[k]) && memcmp(v.u.s.ptr, keynames[k], v.u.s.len) == 0)
            return k + 1;
    cr_assert_fail("unknown key");
    return -1;
}

static void check_table(agg_table_t *t, double tol)
{
    cr_assert_eq(agg_table_count(t), NKEYS + 1);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t state = SP_BUF_INIT;
    sp_err_t err;
    while (state.len = 0, agg_table_next(t, &pos, &key, &klen, NULL, &state)) {
        expect_t *e = &want[key_index(key, klen)];
        sp_value_t v[NSPECS];
        cr_assert_eq(agg_state_finalize(specs, NSPECS, state.data, state.len, v, &err), 0, "%s", err.msg);
        cr_assert_eq(v[0].u.i, e->count);
        cr_assert_eq(v[1].u.i, e->count_d);
        cr_assert_eq(v[2].type, e->n_i ? SP_TYPE_BIGINT : SP_TYPE_NULL);
        cr_assert_eq(v[2].u.i, e->sum_i);
        cr_assert(fabs(v[3].u.d - e->sum_d) <= tol * (1 + fabs(e->sum_d)), "%.17g vs %.17g", v[3].u.d, e->sum_d);
        cr_assert_eq(v[4].u.s.len, strlen(e->min_s));
        cr_assert_eq(memcmp(v[4].u.s.ptr, e->min_s, v[4].u.s.len), 0);
        cr_assert_eq(v[5].u.i, e->max_i);
        cr_assert(fabs(v[6].u.d - e->sum_d / (double)e->n_d) <= tol * (1 + fabs(v[6].u.d)));
        cr_assert_eq(v[7].u.d, e->min_d);
    }
    sp_buf_free(&state);
}

Test(agg, one_table_matches_direct_computation)
{
    make_rows(1);
    agg_table_t *t = agg_table_new(specs, NSPECS, 1);
    add_rows(t, 0, NROWS);
    check_table(t, 0);
    cr_assert_gt(agg_table_memory(t), 0);
    agg_table_destroy(&t);
    agg_table_destroy(&t);
}

/* The executor/driver path: partials of arbitrary splits, encoded, merged. */
Test(agg, merged_partials_match_direct_computation)
{
    make_rows(2);
    int cuts[] = {0, 1, 17, 5000, 5001, 12345, NROWS};
    agg_table_t *total = agg_table_new(specs, NSPECS, 1);
    agg_table_t *part = agg_table_new(specs, NSPECS, 1);
    sp_buf_t state = SP_BUF_INIT;
    sp_err_t err;
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++) {
        agg_table_clear(part);
        add_rows(part, cuts[c], cuts[c + 1]);
        size_t pos = 0;
        const void *key;
        size_t klen;
        while (state.len = 0, agg_table_next(part, &pos, &key, &klen, NULL, &state))
            cr_assert_eq(agg_table_merge_entry(total, key, klen, state.data, state.len, &err), 0, "%s", err.msg);
    }
    check_table(total, 1e-9);
    sp_buf_free(&state);
    agg_table_destroy(&total);
    agg_table_destroy(&part);
}

Test(agg, merge_bytes_with_absent_sides)
{
    make_rows(3);
    agg_table_t *t = agg_table_new(specs, NSPECS, 1);
    add_rows(t, 0, 100);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t a = SP_BUF_INIT, out = SP_BUF_INIT, twice = SP_BUF_INIT;
    sp_err_t err;
    cr_assert(agg_table_next(t, &pos, &key, &klen, NULL, &a));
    cr_assert_eq(agg_state_merge_bytes(specs, NSPECS, NULL, 0, a.data, a.len, &out, &err), 0);
    cr_assert_eq(out.len, a.len);
    cr_assert_eq(memcmp(out.data, a.data, a.len), 0, "absent (+) a == a");
    cr_assert_eq(agg_state_merge_bytes(specs, NSPECS, a.data, a.len, a.data, a.len, &twice, &err), 0);
    sp_value_t v1[NSPECS], v2[NSPECS];
    cr_assert_eq(agg_state_finalize(specs, NSPECS, a.data, a.len, v1, &err), 0);
    cr_assert_eq(agg_state_finalize(specs, NSPECS, twice.data, twice.len, v2, &err), 0);
    cr_assert_eq(v2[0].u.i, 2 * v1[0].u.i, "counts add");
    cr_assert_eq(sp_value_cmp(&v1[4], &v2[4]), 0, "min of a and a is min of a");
    sp_buf_free(&a);
    sp_buf_free(&out);
    sp_buf_free(&twice);
    agg_table_destroy(&t);
}

Test(agg, empty_aggregates_finalize_to_null)
{
    static const agg_spec_t s2[] = {
        {AGG_COUNT, 0, SP_TYPE_DOUBLE, SP_TYPE_BIGINT},
        {AGG_SUM, 0, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
        {AGG_AVG, 0, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
        {AGG_MAX, 0, SP_TYPE_DOUBLE, SP_TYPE_DOUBLE},
    };
    agg_table_t *t = agg_table_new(s2, 4, 0);
    sp_value_t slot = SP_VALUE_NULL;
    agg_table_add_row(t, NULL, &slot);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t st = SP_BUF_INIT;
    cr_assert(agg_table_next(t, &pos, &key, &klen, NULL, &st));
    cr_assert_eq(klen, 0, "a global aggregate has the empty key");
    sp_value_t v[4];
    sp_err_t err;
    cr_assert_eq(agg_state_finalize(s2, 4, st.data, st.len, v, &err), 0);
    cr_assert_eq(v[0].type, SP_TYPE_BIGINT);
    cr_assert_eq(v[0].u.i, 0);
    cr_assert_eq(v[1].type, SP_TYPE_NULL, "sum of no value is NULL");
    cr_assert_eq(v[2].type, SP_TYPE_NULL, "avg of no value is NULL");
    cr_assert_eq(v[3].type, SP_TYPE_NULL);
    sp_buf_free(&st);
    agg_table_destroy(&t);
}

Test(agg, bigint_sum_wraps_like_spark)
{
    static const agg_spec_t s1[] = {{AGG_SUM, 0, SP_TYPE_BIGINT, SP_TYPE_BIGINT}};
    agg_table_t *t = agg_table_new(s1, 1, 0);
    sp_value_t a = {.type = SP_TYPE_BIGINT, .u.i = INT64_MAX}, b = {.type = SP_TYPE_BIGINT, .u.i = 1};
    agg_table_add_row(t, NULL, &a);
    agg_table_add_row(t, NULL, &b);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t st = SP_BUF_INIT;
    cr_assert(agg_table_next(t, &pos, &key, &klen, NULL, &st));
    sp_value_t v;
    sp_err_t err;
    cr_assert_eq(agg_state_finalize(s1, 1, st.data, st.len, &v, &err), 0);
    cr_assert_eq(v.u.i, INT64_MIN);
    sp_buf_free(&st);
    agg_table_destroy(&t);
}

Test(agg, damaged_state_and_keys_are_refused)
{
    agg_table_t *t = agg_table_new(specs, NSPECS, 1);
    sp_err_t err;
    const unsigned char key[] = {SP_KEY_TAG_NULL};
    const unsigned char short_state[] = {1, 2, 3};
    cr_assert_eq(agg_table_merge_entry(t, key, 1, short_state, 3, &err), SP_ECORRUPT);
    unsigned char state[200];
    memset(state, 0, sizeof state);
    cr_assert_eq(agg_table_merge_entry(t, key, 1, state, sizeof state, &err), SP_ECORRUPT, "left-over bytes");
    const unsigned char badkey[] = {7};
    cr_assert_eq(agg_table_merge_entry(t, badkey, 1, state, 10, &err), SP_ECORRUPT);
    /* a MIN over a STRING column that holds a BIGINT */
    static const agg_spec_t s1[] = {{AGG_MIN, 0, SP_TYPE_STRING, SP_TYPE_STRING}};
    const unsigned char wrong[] = {SP_KEY_TAG_BIGINT, 1, 0, 0, 0, 0, 0, 0, 0};
    sp_value_t v;
    cr_assert_eq(agg_state_finalize(s1, 1, wrong, sizeof wrong, &v, &err), SP_ECORRUPT);
    cr_assert_eq(agg_table_count(t), 0, "nothing merged from damaged entries");
    agg_table_destroy(&t);
}

Test(agg, many_groups_grow_the_table)
{
    static const agg_spec_t s1[] = {{AGG_COUNT_STAR, -1, SP_TYPE_NULL, SP_TYPE_BIGINT}};
    agg_table_t *t = agg_table_new(s1, 1, 1);
    for (int round = 0; round < 2; round++) {
        for (int64_t i = 0; i < 200000; i++) {
            sp_value_t k = {.type = SP_TYPE_BIGINT, .u.i = i * 7919};
            agg_table_add_row(t, &k, &k);
        }
    }
    cr_assert_eq(agg_table_count(t), 200000);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t st = SP_BUF_INIT;
    sp_err_t err;
    while (st.len = 0, agg_table_next(t, &pos, &key, &klen, NULL, &st)) {
        sp_value_t v;
        cr_assert_eq(agg_state_finalize(s1, 1, st.data, st.len, &v, &err), 0);
        cr_assert_eq(v.u.i, 2);
    }
    agg_table_clear(t);
    cr_assert_eq(agg_table_count(t), 0);
    sp_buf_free(&st);
    agg_table_destroy(&t);
}

Test(agg, touch_creates_an_empty_group_once)
{
    static const agg_spec_t s2[] = {{AGG_COUNT_STAR, -1, SP_TYPE_NULL, SP_TYPE_BIGINT},
                                    {AGG_SUM, 0, SP_TYPE_BIGINT, SP_TYPE_BIGINT}};
    agg_table_t *t = agg_table_new(s2, 2, 0);
    agg_table_touch(t, "", 0);
    agg_table_touch(t, "", 0);
    cr_assert_eq(agg_table_count(t), 1);
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t st = SP_BUF_INIT;
    cr_assert(agg_table_next(t, &pos, &key, &klen, NULL, &st));
    sp_value_t v[2];
    sp_err_t err;
    cr_assert_eq(agg_state_finalize(s2, 2, st.data, st.len, v, &err), 0);
    cr_assert_eq(v[0].u.i, 0, "count of nothing is 0");
    cr_assert_eq(v[1].type, SP_TYPE_NULL, "sum of nothing is NULL");
    sp_buf_free(&st);
    agg_table_destroy(&t);
}

/* Runs of equal groups take a shortcut; it must group exactly as the key
 * codec does: -0.0 with 0.0, every NaN together, NULL apart. */
Test(agg, runs_of_equal_keys_group_like_the_codec)
{
    static const agg_spec_t s1[] = {{AGG_COUNT_STAR, -1, SP_TYPE_NULL, SP_TYPE_BIGINT}};
    agg_table_t *t = agg_table_new(s1, 1, 1);
    double keys[] = {0.0, -0.0, 0.0, 0.0, NAN, -NAN, NAN, 1.5, 1.5, -0.0};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        sp_value_t k = {.type = SP_TYPE_DOUBLE, .u.d = keys[i]};
        agg_table_add_row(t, &k, &k);
    }
    sp_value_t null = SP_VALUE_NULL;
    agg_table_add_row(t, &null, &null);
    agg_table_add_row(t, &null, &null);
    cr_assert_eq(agg_table_count(t), 4, "0.0, NaN, 1.5 and NULL");
    size_t pos = 0;
    const void *key;
    size_t klen;
    sp_buf_t st = SP_BUF_INIT;
    sp_err_t err;
    int64_t total = 0;
    while (st.len = 0, agg_table_next(t, &pos, &key, &klen, NULL, &st)) {
        sp_value_t kv, v;
        cr_assert_eq(sp_key_decode(key, klen, &kv, 1, &err), 0);
        cr_assert_eq(agg_state_finalize(s1, 1, st.data, st.len, &v, &err), 0);
        if (kv.type == SP_TYPE_NULL)
            cr_assert_eq(v.u.i, 2);
        else if (isnan(kv.u.d))
            cr_assert_eq(v.u.i, 3);
        else if (kv.u.d == 0)
            cr_assert_eq(v.u.i, 5);
        else
            cr_assert_eq(v.u.i, 2);
        total += v.u.i;
    }
    cr_assert_eq(total, 12);
    sp_buf_free(&st);
    agg_table_destroy(&t);
}
