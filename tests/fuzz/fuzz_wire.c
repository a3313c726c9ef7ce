/* tests/fuzz/fuzz_wire.c -- libFuzzer target for the wire protocol decoder
 * (proto/wire.c): arbitrary bytes into wire_decode, which must refuse them
 * with SP_EPROTO or SP_EVERSION and a message, or decode them; every entry
 * of a decoded RESULT_PART is read in full; a decoded message is encoded
 * again, decodes to an equal message, and encodes to the same bytes a
 * second time. Anything else aborts with the input printed.
 *
 * Seeds: with FUZZ_WIRE_SEEDS=DIR set, the target first writes a valid
 * frame of every message type (and a few edge cases) into DIR, so the
 * corpus always speaks the current protocol (scripts/fuzz does this). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_fail(const char *what, const char *detail, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_wire: %s%s%s on %zu bytes:\n", what, detail ? ": " : "", detail ? detail : "", size);
    for (size_t i = 0; i < size; i++)
        fprintf(stderr, "\\x%02x", data[i]);
    fprintf(stderr, "\n");
    abort();
}

/* ---- equality and re-encoding ------------------------------------------------ */

static bool str_eq(wire_str_t a, wire_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool ref_eq(const wire_task_ref_t *a, const wire_task_ref_t *b)
{
    return a->batch_id == b->batch_id && a->task_id == b->task_id && a->attempt == b->attempt;
}

static bool entry_eq(const wire_entry_t *a, const wire_entry_t *b)
{
    return a->klen == b->klen && a->slen == b->slen && (a->klen == 0 || memcmp(a->key, b->key, a->klen) == 0) &&
           (a->slen == 0 || memcmp(a->state, b->state, a->slen) == 0);
}

/* Field by field. (A field added to wire.h but not here is still covered
 * by the byte comparison of the two encodings.) */
static bool msg_eq(const wire_msg_t *a, const wire_msg_t *b)
{
    if (a->type != b->type || a->version != b->version)
        return false;
    switch (a->type) {
    case WIRE_HELLO:
        return str_eq(a->u.hello.executor_id, b->u.hello.executor_id) && str_eq(a->u.hello.host, b->u.hello.host) &&
               a->u.hello.pid == b->u.hello.pid && a->u.hello.slots == b->u.hello.slots;
    case WIRE_WELCOME:
        return a->u.welcome.heartbeat_ms == b->u.welcome.heartbeat_ms &&
               str_eq(a->u.welcome.driver_run_id, b->u.welcome.driver_run_id);
    case WIRE_REFUSE:
        return str_eq(a->u.refuse.reason, b->u.refuse.reason);
    case WIRE_HEARTBEAT:
        return a->u.heartbeat.running == b->u.heartbeat.running && a->u.heartbeat.draining == b->u.heartbeat.draining;
    case WIRE_HEARTBEAT_ACK:
    case WIRE_BYE:
    case WIRE_RESET:
        return true;
    case WIRE_TASK: {
        const wire_task_t *x = &a->u.task, *y = &b->u.task;
        return ref_eq(&x->ref, &y->ref) && str_eq(x->query_id, y->query_id) &&
               str_eq(x->source_name, y->source_name) && str_eq(x->schema, y->schema) && str_eq(x->sql, y->sql) &&
               str_eq(x->path, y->path) && x->mode == y->mode && x->start == y->start && x->end == y->end;
    }
    case WIRE_RESULT_PART: {
        if (!ref_eq(&a->u.part.ref, &b->u.part.ref) || a->u.part.seq != b->u.part.seq ||
            a->u.part.nentries != b->u.part.nentries)
            return false;
        for (size_t i = 0; i < a->u.part.nentries; i++) {
            wire_entry_t x, y;
            wire_part_entry(a, i, &x);
            wire_part_entry(b, i, &y);
            if (!entry_eq(&x, &y))
                return false;
        }
        return true;
    }
    case WIRE_RESULT_DONE: {
        const wire_done_t *x = &a->u.done, *y = &b->u.done;
        return ref_eq(&x->ref, &y->ref) && x->nparts == y->nparts && x->ok == y->ok && x->rows == y->rows &&
               x->malformed == y->malformed && x->bytes == y->bytes && x->groups == y->groups &&
               x->duration_us == y->duration_us && str_eq(x->error, y->error) && x->fatal == y->fatal;
    }
    case WIRE_CANCEL:
        return ref_eq(&a->u.cancel, &b->u.cancel);
    }
    return false;
}

/* Encode a decoded message again into out. */
static void reencode(const wire_msg_t *m, sp_buf_t *out)
{
    if (m->type != WIRE_RESULT_PART) {
        wire_encode(m, out);
        return;
    }
    size_t n = m->u.part.nentries;
    wire_entry_t *e = sp_xcalloc(n ? n : 1, sizeof *e);
    for (size_t i = 0; i < n; i++)
        wire_part_entry(m, i, &e[i]);
    wire_encode_part(out, &m->u.part.ref, m->u.part.seq, e, n);
    free(e);
}

/* Read every byte an entry points at, so ASan sees any pointer past the
 * frame; the sum keeps the reads from being optimised away. */
static volatile unsigned entry_sum;

static void touch_entries(const wire_msg_t *m)
{
    unsigned sum = 0;
    for (size_t i = 0; i < m->u.part.nentries; i++) {
        wire_entry_t e;
        wire_part_entry(m, i, &e);
        for (size_t k = 0; k < e.klen; k++)
            sum += ((const unsigned char *)e.key)[k];
        for (size_t k = 0; k < e.slen; k++)
            sum += ((const unsigned char *)e.state)[k];
    }
    entry_sum += sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_msg_t m;
    sp_err_t err;
    err.msg[0] = '\0';
    int rc = wire_decode(data, size, &m, &err);
    if (rc != 0) {
        if (rc != SP_EPROTO && rc != SP_EVERSION)
            fuzz_fail("wire_decode returned a code other than SP_EPROTO or SP_EVERSION", sp_strerror(rc), data, size);
        if (err.msg[0] == '\0' || err.rc != rc)
            fuzz_fail("wire_decode failed without its message", NULL, data, size);
        if (rc == SP_EVERSION && m.version == WIRE_VERSION)
            fuzz_fail("SP_EVERSION for our own version", err.msg, data, size);
        wire_msg_release(&m); /* nothing held: must be a no-op */
        return 0;
    }
    if (m.version != WIRE_VERSION || m.type < WIRE_HELLO || m.type > WIRE_RESET)
        fuzz_fail("decoded a message of another version or an unknown type", NULL, data, size);
    if (m.type == WIRE_RESULT_PART)
        touch_entries(&m);

    sp_buf_t once = SP_BUF_INIT, twice = SP_BUF_INIT;
    reencode(&m, &once);
    wire_msg_t again;
    if (wire_decode(once.data, once.len, &again, &err) != 0)
        fuzz_fail("a re-encoded message does not decode", err.msg, data, size);
    if (!msg_eq(&m, &again))
        fuzz_fail("a re-encoded message decodes to another message", wire_type_name(m.type), data, size);
    reencode(&again, &twice);
    if (once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0)
        fuzz_fail("encoding a decoded message is not stable", wire_type_name(m.type), data, size);
    wire_msg_release(&again);
    wire_msg_release(&m);
    wire_msg_release(&m); /* safe twice */
    sp_buf_free(&once);
    sp_buf_free(&twice);
    return 0;
}

/* ---- seeds ---------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, const sp_buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_wire: cannot write seed %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void seed_msg(const char *dir, const char *name, const wire_msg_t *m)
{
    sp_buf_t b = SP_BUF_INIT;
    wire_encode(m, &b);
    write_seed(dir, name, &b);
    sp_buf_free(&b);
}

static void write_seeds(const char *dir)
{
    mkdir(dir, 0755);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_HELLO;
    m.u.hello = (wire_hello_t){WIRE_STR("exec-1"), WIRE_STR("host-a"), 4242, 3};
    seed_msg(dir, "hello", &m);
    memset(&m, 0, sizeof m);
    m.type = WIRE_WELCOME;
    m.u.welcome = (wire_welcome_t){500, WIRE_STR("0667659c-1ce9-460c-ad2a-c8b49057781f")};
    seed_msg(dir, "welcome", &m);
    memset(&m, 0, sizeof m);
    m.type = WIRE_REFUSE;
    m.u.refuse.reason = WIRE_STR("protocol version 1 expected");
    seed_msg(dir, "refuse", &m);
    memset(&m, 0, sizeof m);
    m.type = WIRE_HEARTBEAT;
    m.u.heartbeat = (wire_heartbeat_t){2, true};
    seed_msg(dir, "heartbeat", &m);
    wire_type_t empty[] = {WIRE_HEARTBEAT_ACK, WIRE_BYE, WIRE_RESET};
    const char *empty_names[] = {"heartbeat-ack", "bye", "reset"};
    for (int i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        m.type = empty[i];
        seed_msg(dir, empty_names[i], &m);
    }
    memset(&m, 0, sizeof m);
    m.type = WIRE_TASK;
    m.u.task.ref = (wire_task_ref_t){123456789012LL, 7, 2};
    m.u.task.query_id = WIRE_STR("0667659c-1ce9-460c-ad2a-c8b49057781f");
    m.u.task.source_name = WIRE_STR("activity");
    m.u.task.schema = WIRE_STR("Arrival_Time BIGINT, gt STRING, x DOUBLE");
    m.u.task.sql = WIRE_STR("SELECT gt, count(*) AS count FROM activity WHERE x > 0 GROUP BY gt");
    m.u.task.mode = WIRE_MODE_FAILFAST;
    m.u.task.path = WIRE_STR("/data/part-00001.json");
    m.u.task.start = 1ull << 33;
    m.u.task.end = (1ull << 33) + 65536;
    seed_msg(dir, "task", &m);
    memset(&m, 0, sizeof m);
    m.type = WIRE_RESULT_DONE;
    m.u.done = (wire_done_t){{5, 1, 0}, 3, false, 10, 2, 1000, 4, 99, WIRE_STR("line 3: not JSON"), true};
    seed_msg(dir, "done-failed", &m);
    m.u.done = (wire_done_t){{5, 2, 1}, 1, true, 1ull << 40, 0, 1ull << 50, 7, 12345, WIRE_STR(""), false};
    seed_msg(dir, "done-ok", &m);
    memset(&m, 0, sizeof m);
    m.type = WIRE_CANCEL;
    m.u.cancel = (wire_task_ref_t){5, 1, 0};
    seed_msg(dir, "cancel", &m);

    wire_entry_t e[3] = {{"\x01\x02gt", 4, "\x00\x00\x00\x00\x00\x00\x00\x07", 8}, {"", 0, "s", 1}, {"k", 1, "", 0}};
    wire_task_ref_t ref = {9, 4, 1};
    sp_buf_t b = SP_BUF_INIT;
    wire_encode_part(&b, &ref, 6, e, 3);
    write_seed(dir, "part", &b);
    b.len = 0;
    wire_encode_part(&b, &ref, 0, NULL, 0);
    write_seed(dir, "part-empty", &b);
    /* another protocol version, and a HELLO with 8- and 16-bit lengths
     * where a fixstr would do (valid, not what our encoder writes) */
    static const unsigned char v2[] = {0x93, 0xa5, 's', 'p', 'a', 't', 'e', 0x02, 0x09};
    static const unsigned char hello16[] = {0x97, 0xd9, 0x05, 's', 'p', 'a', 't', 'e', 0xcd, 0x00, 0x01, 0xcc, 0x01,
                                            0xda, 0x00, 0x01, 'e', 0xd9, 0x00, 0xce, 0x00, 0x00, 0x00, 0x01, 0x01};
    b.len = 0;
    sp_buf_append(&b, v2, sizeof v2);
    write_seed(dir, "version-2", &b);
    b.len = 0;
    sp_buf_append(&b, hello16, sizeof hello16);
    write_seed(dir, "hello-wide", &b);
    sp_buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("FUZZ_WIRE_SEEDS");
    if (dir && *dir)
        write_seeds(dir);
    return 0;
}
