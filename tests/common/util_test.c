/* tests/common/util_test.c -- the common helpers: double formatting that
 * reads back exactly, size and duration parsing (what users type), error
 * messages, buffers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_err.h"
#include "sp_util.h"

Test(util, doubles_read_back_exactly_and_look_like_doubles)
{
    /* fixed cases */
    struct {
        double d;
        const char *text;
    } cases[] = {
        {0.0, "0.0"}, {-0.0, "-0.0"}, {3.0, "3.0"}, {1e6, "1000000.0"}, {-5.958191, "-5.958191"},
        {0.1, "0.1"}, {1e300, "1e+300"}, {1e-7, "1e-07"}, {NAN, "NaN"}, {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"}, {123456.5, "123456.5"},
    };
    char buf[40];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_format_double(cases[i].d, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i].text);
    }
    /* random bit patterns: shortest text that strtod reads back identically */
    srand(5);
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
        double d;
        memcpy(&d, &bits, 8);
        if (!isfinite(d))
            continue;
        sp_format_double(d, buf, sizeof buf);
        double back = strtod(buf, NULL);
        cr_assert(memcmp(&back, &d, 8) == 0 || (d == 0 && back == 0), "%.17g printed as %s", d, buf);
        cr_assert(strpbrk(buf, ".e") != NULL, "%s must read as a double", buf);
    }
}

Test(util, sizes_and_durations_as_users_type_them)
{
    uint64_t v;
    sp_err_t err;
    cr_assert_eq(sp_parse_size("1048576", &v, &err), 0);
    cr_assert_eq(v, 1048576);
    cr_assert_eq(sp_parse_size("64K", &v, &err), 0);
    cr_assert_eq(v, 65536);
    cr_assert_eq(sp_parse_size("64MB", &v, &err), 0);
    cr_assert_eq(v, 64u << 20);
    cr_assert_eq(sp_parse_size("1.5G", &v, &err), 0);
    cr_assert_eq(v, 3ull << 29);
    cr_assert_eq(sp_parse_size("2GiB", &v, &err), 0);
    cr_assert_eq(v, 2ull << 30);
    cr_assert_eq(sp_parse_size("-1", &v, &err), SP_EINVAL);
    cr_assert_eq(sp_parse_size("12Q", &v, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "unit"), "%s", err.msg);
    cr_assert_eq(sp_parse_size("", &v, &err), SP_EINVAL);
    cr_assert_eq(sp_parse_size("1e30", &v, &err), SP_EINVAL);
    cr_assert_eq(sp_parse_duration_ms("500ms", &v, &err), 0);
    cr_assert_eq(v, 500);
    cr_assert_eq(sp_parse_duration_ms("2s", &v, &err), 0);
    cr_assert_eq(v, 2000);
    cr_assert_eq(sp_parse_duration_ms("1.5m", &v, &err), 0);
    cr_assert_eq(v, 90000);
    cr_assert_eq(sp_parse_duration_ms("250", &v, &err), 0);
    cr_assert_eq(v, 250);
    cr_assert_eq(sp_parse_duration_ms("5 s", &v, &err), SP_EINVAL);
    cr_assert_eq(sp_parse_duration_ms("soon", &v, &err), SP_EINVAL);
    int64_t n;
    cr_assert_eq(sp_parse_int("42", 1, 100, &n, &err), 0);
    cr_assert_eq(n, 42);
    cr_assert_eq(sp_parse_int("420", 1, 100, &n, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    cr_assert_eq(sp_parse_int("4x", 1, 100, &n, &err), SP_EINVAL);
}

Test(util, errors_carry_their_message_and_context)
{
    sp_err_t err;
    sp_err_clear(&err);
    cr_assert_str_eq(sp_err_text(&err, SP_ENOSPC), "no space left", "no message: the code's text");
    cr_assert_eq(sp_err_set(&err, SP_EIO, "cannot read %s", "f.json"), SP_EIO);
    cr_assert_eq(sp_err_wrap(&err, SP_EIO, "task %d", 3), SP_EIO);
    cr_assert_str_eq(err.msg, "task 3: cannot read f.json");
    cr_assert_eq(sp_err_set(NULL, SP_EINVAL, "ignored"), SP_EINVAL, "a NULL err is allowed");
    /* a message longer than the buffer is cut, not overrun */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sp_err_set(&err, SP_EIO, "%s", big);
    sp_err_wrap(&err, SP_EIO, "%s", big);
    cr_assert_eq(strlen(err.msg), SP_ERR_MSG_MAX - 1);
    cr_assert_str_eq(sp_strerror(-999), "unknown error");
}

Test(util, buffers_grow_and_terminate)
{
    sp_buf_t b = SP_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        sp_buf_printf(&b, "%d,", i);
    cr_assert_eq(strncmp(sp_buf_cstr(&b), "0,1,2,", 6), 0);
    cr_assert_eq(b.data[b.len], '\0');
    cr_assert_eq(b.len, strlen(b.data));
    sp_buf_free(&b);
    cr_assert_null(b.data);
    char id[37], id2[37];
    sp_uuid_v4(id);
    sp_uuid_v4(id2);
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '4', "version 4");
    cr_assert_str_neq(id, id2);
}
