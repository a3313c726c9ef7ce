/* tests/proto/wire_test.c -- every message round-trips; every malformed,
 * truncated, oversized or foreign frame is refused with a message (run under
 * ASan/UBSan to show it is refused without a crash); the structural
 * pre-check accepts every valid encoding of the MessagePack test suite. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"
#include "wire.h"

/* The frame's bytes: the decoded message borrows from them, so the caller
 * frees them after wire_msg_release. */
static sp_buf_t frame;

static void round_trip(const wire_msg_t *in, wire_msg_t *out)
{
    sp_buf_free(&frame);
    wire_encode(in, &frame);
    sp_err_t err;
    cr_assert_eq(wire_decode(frame.data, frame.len, out, &err), 0, "%s: %s", wire_type_name(in->type), err.msg);
    cr_assert_eq(out->type, in->type);
    cr_assert_eq(out->version, WIRE_VERSION);
}

static bool str_eq(wire_str_t s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

Test(wire, every_message_round_trips)
{
    wire_msg_t in, out;
    memset(&in, 0, sizeof in);
    in.type = WIRE_HELLO;
    in.u.hello = (wire_hello_t){WIRE_STR("exec-1"), WIRE_STR("host-a"), 4242, 3};
    round_trip(&in, &out);
    cr_assert(str_eq(out.u.hello.executor_id, "exec-1") && str_eq(out.u.hello.host, "host-a"));
    cr_assert_eq(out.u.hello.pid, 4242);
    cr_assert_eq(out.u.hello.slots, 3);
    wire_msg_release(&out);

    memset(&in, 0, sizeof in);
    in.type = WIRE_TASK;
    in.u.task.ref = (wire_task_ref_t){123456789012LL, 7, 2};
    in.u.task.query_id = WIRE_STR("q");
    in.u.task.source_name = WIRE_STR("activity");
    in.u.task.schema = WIRE_STR("gt STRING");
    in.u.task.sql = WIRE_STR("SELECT gt, count(*) FROM activity GROUP BY gt");
    in.u.task.mode = WIRE_MODE_FAILFAST;
    in.u.task.path = WIRE_STR("/data/part-00001.json");
    in.u.task.start = 1ull << 40;
    in.u.task.end = (1ull << 40) + 5;
    round_trip(&in, &out);
    cr_assert_eq(out.u.task.ref.batch_id, 123456789012LL);
    cr_assert_eq(out.u.task.ref.task_id, 7);
    cr_assert_eq(out.u.task.ref.attempt, 2);
    cr_assert(str_eq(out.u.task.path, "/data/part-00001.json"));
    cr_assert(str_eq(out.u.task.sql, "SELECT gt, count(*) FROM activity GROUP BY gt"));
    cr_assert_eq(out.u.task.mode, WIRE_MODE_FAILFAST);
    cr_assert_eq(out.u.task.end - out.u.task.start, 5);
    wire_msg_release(&out);

    memset(&in, 0, sizeof in);
    in.type = WIRE_RESULT_DONE;
    in.u.done = (wire_done_t){{5, 1, 0}, 3, false, 10, 2, 1000, 4, 99, WIRE_STR("cannot open x"), true};
    round_trip(&in, &out);
    cr_assert_eq(out.u.done.nparts, 3);
    cr_assert(!out.u.done.ok);
    cr_assert_eq(out.u.done.rows, 10);
    cr_assert_eq(out.u.done.malformed, 2);
    cr_assert(str_eq(out.u.done.error, "cannot open x"));
    cr_assert(out.u.done.fatal);
    wire_msg_release(&out);

    wire_type_t empty[] = {WIRE_HEARTBEAT_ACK, WIRE_BYE, WIRE_RESET};
    for (size_t i = 0; i < 3; i++) {
        memset(&in, 0, sizeof in);
        in.type = empty[i];
        round_trip(&in, &out);
        wire_msg_release(&out);
    }
    memset(&in, 0, sizeof in);
    in.type = WIRE_HEARTBEAT;
    in.u.heartbeat = (wire_heartbeat_t){5, true};
    round_trip(&in, &out);
    cr_assert(out.u.heartbeat.draining);
    cr_assert_eq(out.u.heartbeat.running, 5);
    wire_msg_release(&out);
    wire_msg_release(&out); /* safe twice */
    sp_buf_free(&frame);
}

Test(wire, result_parts_carry_entries)
{
    wire_entry_t e[3] = {
        {"k1", 2, "state-one", 9},
        {"", 0, "s", 1},
        {"\0\1\2", 3, "", 0},
    };
    wire_task_ref_t ref = {9, 4, 1};
    sp_buf_t b = SP_BUF_INIT;
    wire_encode_part(&b, &ref, 6, e, 3);
    wire_msg_t m;
    sp_err_t err;
    cr_assert_eq(wire_decode(b.data, b.len, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.type, WIRE_RESULT_PART);
    cr_assert_eq(m.u.part.seq, 6);
    cr_assert_eq(m.u.part.nentries, 3);
    for (size_t i = 0; i < 3; i++) {
        wire_entry_t got;
        wire_part_entry(&m, i, &got);
        cr_assert_eq(got.klen, e[i].klen);
        cr_assert_eq(got.slen, e[i].slen);
        cr_assert_eq(memcmp(got.key, e[i].key, got.klen), 0);
        cr_assert_eq(memcmp(got.state, e[i].state, got.slen), 0);
    }
    wire_msg_release(&m);
    sp_buf_free(&b);
}

static sp_buf_t valid_task_frame(void)
{
    wire_msg_t in;
    memset(&in, 0, sizeof in);
    in.type = WIRE_TASK;
    in.u.task.ref = (wire_task_ref_t){1, 2, 3};
    in.u.task.query_id = WIRE_STR("q");
    in.u.task.source_name = WIRE_STR("a");
    in.u.task.schema = WIRE_STR("gt STRING");
    in.u.task.sql = WIRE_STR("SELECT count(*) FROM a");
    in.u.task.path = WIRE_STR("/x");
    in.u.task.end = 10;
    sp_buf_t b = SP_BUF_INIT;
    wire_encode(&in, &b);
    return b;
}

Test(wire, every_truncation_and_bit_flip_is_handled)
{
    sp_buf_t b = valid_task_frame();
    wire_msg_t m;
    sp_err_t err;
    for (size_t n = 0; n < b.len; n++) {
        int rc = wire_decode(b.data, n, &m, &err);
        cr_assert_neq(rc, 0, "a frame truncated to %zu of %zu bytes must be refused", n, b.len);
        cr_assert(err.msg[0] != '\0');
    }
    /* flip every bit: either refused, or decoded into a valid message */
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            if (wire_decode(b.data, b.len, &m, &err) == 0)
                wire_msg_release(&m);
            b.data[i] ^= (char)(1 << bit);
        }
    }
    sp_buf_free(&b);
}

Test(wire, hostile_frames_are_refused)
{
    wire_msg_t m;
    sp_err_t err;
    /* an array claiming 4 billion items in 5 bytes */
    const unsigned char huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(wire_decode(huge_array, sizeof huge_array, &m, &err), SP_EPROTO);
    cr_assert(strstr(err.msg, "container"), "%s", err.msg);
    const unsigned char huge_str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    cr_assert_eq(wire_decode(huge_str, sizeof huge_str, &m, &err), SP_EPROTO);
    /* nesting deeper than the protocol ever uses */
    unsigned char deep[64];
    memset(deep, 0x91, sizeof deep);
    deep[63] = 0xc0;
    cr_assert_eq(wire_decode(deep, sizeof deep, &m, &err), SP_EPROTO);
    const unsigned char never_used[] = {0xc1};
    cr_assert_eq(wire_decode(never_used, 1, &m, &err), SP_EPROTO);
    const char *text = "GET / HTTP/1.1\r\n\r\n";
    cr_assert_eq(wire_decode(text, strlen(text), &m, &err), SP_EPROTO);
    cr_assert_eq(wire_decode("", 0, &m, &err), SP_EPROTO);
    /* trailing garbage after a valid frame */
    sp_buf_t b = valid_task_frame();
    sp_buf_putc(&b, 0);
    cr_assert_eq(wire_decode(b.data, b.len, &m, &err), SP_EPROTO);
    cr_assert(strstr(err.msg, "garbage"), "%s", err.msg);
    sp_buf_free(&b);
    /* random bytes */
    srand(7);
    unsigned char rnd[256];
    for (int trial = 0; trial < 20000; trial++) {
        size_t n = (size_t)(rand() % (int)sizeof rnd);
        for (size_t i = 0; i < n; i++)
            rnd[i] = (unsigned char)rand();
        if (trial % 3 == 0 && n > 8) { /* start like a spate frame to go deeper */
            rnd[0] = 0x90 | (unsigned char)(rand() % 16);
            rnd[1] = 0xa5;
            memcpy(rnd + 2, "spate", 5);
            rnd[7] = 1;
        }
        if (wire_decode(rnd, n, &m, &err) == 0)
            wire_msg_release(&m);
    }
}

Test(wire, fields_of_the_wrong_type_or_value_are_named)
{
    /* a HELLO with slots = 0 */
    wire_msg_t in;
    memset(&in, 0, sizeof in);
    in.type = WIRE_HELLO;
    in.u.hello = (wire_hello_t){WIRE_STR("e"), WIRE_STR("h"), 1, 0};
    sp_buf_t b = SP_BUF_INIT;
    wire_encode(&in, &b);
    wire_msg_t m;
    sp_err_t err;
    cr_assert_eq(wire_decode(b.data, b.len, &m, &err), SP_EPROTO);
    cr_assert(strstr(err.msg, "slots"), "%s", err.msg);
    sp_buf_free(&b);
    /* a TASK whose range runs backwards */
    memset(&in, 0, sizeof in);
    in.type = WIRE_TASK;
    in.u.task.path = WIRE_STR("/x");
    in.u.task.start = 10;
    in.u.task.end = 5;
    wire_encode(&in, &b);
    cr_assert_eq(wire_decode(b.data, b.len, &m, &err), SP_EPROTO);
    cr_assert(strstr(err.msg, "range"), "%s", err.msg);
    sp_buf_free(&b);
}

Test(wire, another_version_is_told_apart)
{
    /* ["spate", WIRE_VERSION + 1, HELLO, ...] */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "spate", 5);
    msgpack_pack_uint32(&pk, WIRE_VERSION + 1);
    msgpack_pack_uint32(&pk, WIRE_HELLO);
    wire_msg_t m;
    sp_err_t err;
    cr_assert_eq(wire_decode(sb.data, sb.size, &m, &err), SP_EVERSION);
    cr_assert_eq(m.version, WIRE_VERSION + 1);
    char want[32];
    snprintf(want, sizeof want, "version %u", WIRE_VERSION + 1);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    msgpack_sbuffer_destroy(&sb);
}

/* Every encoding listed in the MessagePack test suite is one valid object:
 * the decoder must get past its structural pre-check and refuse it only
 * for not being a spate frame. */
Test(wire, msgpack_test_suite_encodings_pass_the_precheck)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/msgpack-test-suite/dist/msgpack-test-suite.json", ts_env("SPATE_SHARED_DATA"));
    char *text = ts_read_file(path, NULL);
    cr_assert_not_null(text, "cannot read %s", path);
    int checked = 0;
    bool in_list = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "\"msgpack\": [")) {
            in_list = true;
            continue;
        }
        if (!in_list)
            continue;
        if (strchr(line, ']')) {
            in_list = false;
            continue;
        }
        char *q = strchr(line, '"');
        if (q == NULL)
            continue;
        unsigned char bytes[4096];
        size_t n = 0;
        for (char *p = q + 1; *p && *p != '"' && n < sizeof bytes;) {
            unsigned v;
            cr_assert_eq(sscanf(p, "%2x", &v), 1, "bad hex in %s", line);
            bytes[n++] = (unsigned char)v;
            p += 2;
            if (*p == '-')
                p++;
        }
        wire_msg_t m;
        sp_err_t err;
        int rc = wire_decode(bytes, n, &m, &err);
        cr_assert_eq(rc, SP_EPROTO, "%s", line);
        cr_assert(strcmp(err.msg, "not a spate frame") == 0, "%s: %s", line, err.msg);
        checked++;
    }
    cr_assert_gt(checked, 200, "only %d encodings found", checked);
    free(text);
}
