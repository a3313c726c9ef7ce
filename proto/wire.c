/* proto/wire.c -- MessagePack encoding and validating decoding of the
 * driver/executor messages listed in wire.h, and the ZeroMQ send helpers.
 * Owns no sockets; every byte from the network is checked here before any
 * other module sees it. */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

const char *wire_type_name(int type)
{
    static const char *const names[] = {
        "UNKNOWN", "HELLO", "WELCOME", "REFUSE", "HEARTBEAT", "HEARTBEAT_ACK",
        "TASK", "RESULT_PART", "RESULT_DONE", "BYE", "CANCEL", "RESET",
    };
    if (type < 1 || type > WIRE_RESET)
        return "UNKNOWN";
    return names[type];
}

/* ---- encoding ------------------------------------------------------------ */

static int buf_write(void *data, const char *p, size_t n)
{
    sp_buf_append((sp_buf_t *)data, p, n);
    return 0;
}

static void pack_str(msgpack_packer *pk, wire_str_t s)
{
    msgpack_pack_str(pk, s.len);
    if (s.len)
        msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    if (n)
        msgpack_pack_bin_body(pk, p, n);
}

static void pack_head(msgpack_packer *pk, wire_type_t type, size_t nfields)
{
    msgpack_pack_array(pk, 3 + nfields);
    pack_str(pk, WIRE_STR(WIRE_MAGIC));
    msgpack_pack_uint32(pk, WIRE_VERSION);
    msgpack_pack_uint32(pk, (uint32_t)type);
}

static void pack_ref(msgpack_packer *pk, const wire_task_ref_t *r)
{
    msgpack_pack_int64(pk, r->batch_id);
    msgpack_pack_uint32(pk, r->task_id);
    msgpack_pack_uint32(pk, r->attempt);
}

void wire_encode(const wire_msg_t *m, sp_buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    switch (m->type) {
    case WIRE_HELLO:
        pack_head(&pk, m->type, 4);
        pack_str(&pk, m->u.hello.executor_id);
        pack_str(&pk, m->u.hello.host);
        msgpack_pack_uint32(&pk, m->u.hello.pid);
        msgpack_pack_uint32(&pk, m->u.hello.slots);
        break;
    case WIRE_WELCOME:
        pack_head(&pk, m->type, 2);
        msgpack_pack_uint32(&pk, m->u.welcome.heartbeat_ms);
        pack_str(&pk, m->u.welcome.driver_run_id);
        break;
    case WIRE_REFUSE:
        pack_head(&pk, m->type, 1);
        pack_str(&pk, m->u.refuse.reason);
        break;
    case WIRE_HEARTBEAT:
        pack_head(&pk, m->type, 2);
        msgpack_pack_uint32(&pk, m->u.heartbeat.running);
        if (m->u.heartbeat.draining)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
        break;
    case WIRE_HEARTBEAT_ACK:
    case WIRE_BYE:
    case WIRE_RESET:
        pack_head(&pk, m->type, 0);
        break;
    case WIRE_TASK: {
        const wire_task_t *t = &m->u.task;
        pack_head(&pk, m->type, 11);
        pack_str(&pk, t->query_id);
        pack_ref(&pk, &t->ref);
        pack_str(&pk, t->source_name);
        pack_str(&pk, t->schema);
        pack_str(&pk, t->sql);
        msgpack_pack_uint32(&pk, t->mode);
        pack_str(&pk, t->path);
        msgpack_pack_uint64(&pk, t->start);
        msgpack_pack_uint64(&pk, t->end);
        break;
    }
    case WIRE_RESULT_PART:
        wire_encode_part(out, &m->u.part.ref, m->u.part.seq, NULL, 0);
        break;
    case WIRE_RESULT_DONE: {
        const wire_done_t *d = &m->u.done;
        pack_head(&pk, m->type, 12);
        pack_ref(&pk, &d->ref);
        msgpack_pack_uint32(&pk, d->nparts);
        if (d->ok)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
        msgpack_pack_uint64(&pk, d->rows);
        msgpack_pack_uint64(&pk, d->malformed);
        msgpack_pack_uint64(&pk, d->bytes);
        msgpack_pack_uint64(&pk, d->groups);
        msgpack_pack_uint64(&pk, d->duration_us);
        pack_str(&pk, d->error);
        if (d->fatal)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
        break;
    }
    case WIRE_CANCEL:
        pack_head(&pk, m->type, 3);
        pack_ref(&pk, &m->u.cancel);
        break;
    }
}

void wire_encode_part(sp_buf_t *out, const wire_task_ref_t *ref, uint32_t seq,
                      const wire_entry_t *entries, size_t n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    pack_head(&pk, WIRE_RESULT_PART, 5);
    pack_ref(&pk, ref);
    msgpack_pack_uint32(&pk, seq);
    msgpack_pack_array(&pk, 2 * n);
    for (size_t i = 0; i < n; i++) {
        pack_bin(&pk, entries[i].key, entries[i].klen);
        pack_bin(&pk, entries[i].state, entries[i].slen);
    }
}

/* ---- structural pre-check -------------------------------------------------
 * msgpack-c allocates containers by their declared counts. Walk the bytes
 * first and require every declared count to fit in the bytes that remain
 * (each element takes at least one byte), so a hostile frame cannot make the
 * decoder allocate more than a small multiple of the frame's size. */

#define WIRE_MAX_DEPTH 8

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x = (x << 8) | p[i];
    return x;
}

static int precheck(const unsigned char *p, size_t len, sp_err_t *err)
{
    uint64_t stack[WIRE_MAX_DEPTH + 1];
    int depth = 0;
    stack[0] = 1;
    size_t pos = 0;
    for (;;) {
        while (depth >= 0 && stack[depth] == 0)
            depth--;
        if (depth < 0)
            break;
        stack[depth]--;
        if (pos >= len)
            return sp_err_set(err, SP_EPROTO, "frame truncated at byte %zu", pos);
        unsigned char b = p[pos++];
        uint64_t skip = 0, count = 0;
        int lenbytes = 0;
        bool container = false, is_map = false;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            container = is_map = true;
            count = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            container = true;
            count = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;              /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;              /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;              /* bin32, str32 */
            case 0xc7: lenbytes = 1; skip = 1; break;               /* ext8 */
            case 0xc8: lenbytes = 2; skip = 1; break;               /* ext16 */
            case 0xc9: lenbytes = 4; skip = 1; break;               /* ext32 */
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: container = true; lenbytes = 2; break;
            case 0xdd: container = true; lenbytes = 4; break;
            case 0xde: container = is_map = true; lenbytes = 2; break;
            case 0xdf: container = is_map = true; lenbytes = 4; break;
            default:
                return sp_err_set(err, SP_EPROTO, "invalid MessagePack byte 0x%02x at %zu", b, pos - 1);
            }
            if (lenbytes) {
                if (len - pos < (size_t)lenbytes)
                    return sp_err_set(err, SP_EPROTO, "frame truncated at byte %zu", pos);
                uint64_t n = be(p + pos, lenbytes);
                pos += (size_t)lenbytes;
                if (container)
                    count = n;
                else
                    skip += n;
            }
        }
        if (container) {
            if (is_map)
                count *= 2;
            if (count > len - pos)
                return sp_err_set(err, SP_EPROTO, "container of %llu items in %zu bytes",
                                  (unsigned long long)count, len - pos);
            if (count > 0) {
                if (depth == WIRE_MAX_DEPTH)
                    return sp_err_set(err, SP_EPROTO, "frame nested too deeply");
                stack[++depth] = count;
            }
        } else if (skip > len - pos) {
            return sp_err_set(err, SP_EPROTO, "value of %llu bytes overruns the frame at byte %zu",
                              (unsigned long long)skip, pos);
        } else {
            pos += (size_t)skip;
        }
    }
    if (pos != len)
        return sp_err_set(err, SP_EPROTO, "%zu bytes of garbage after the message", len - pos);
    return 0;
}

/* ---- decoding -------------------------------------------------------------- */

typedef struct fields {
    const msgpack_object *o;
    uint32_t n;
    const char *msg; /* message type name, for errors */
    sp_err_t *err;
} fields_t;

static int bad_field(fields_t *f, uint32_t i, const char *what)
{
    return sp_err_set(f->err, SP_EPROTO, "%s: field %u is not %s", f->msg, i, what);
}

static int get_u64(fields_t *f, uint32_t i, uint64_t *out)
{
    const msgpack_object *o = &f->o[i];
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return bad_field(f, i, "an unsigned integer");
    *out = o->via.u64;
    return 0;
}

static int get_u32(fields_t *f, uint32_t i, uint32_t *out)
{
    uint64_t v = 0;
    int rc = get_u64(f, i, &v);
    if (rc != 0)
        return rc;
    if (v > UINT32_MAX)
        return bad_field(f, i, "a 32-bit unsigned integer");
    *out = (uint32_t)v;
    return 0;
}

static int get_i64(fields_t *f, uint32_t i, int64_t *out)
{
    const msgpack_object *o = &f->o[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX)
            return bad_field(f, i, "a 64-bit signed integer");
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    return bad_field(f, i, "an integer");
}

static int get_bool(fields_t *f, uint32_t i, bool *out)
{
    const msgpack_object *o = &f->o[i];
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return bad_field(f, i, "a boolean");
    *out = o->via.boolean;
    return 0;
}

static int get_str(fields_t *f, uint32_t i, wire_str_t *out)
{
    const msgpack_object *o = &f->o[i];
    if (o->type != MSGPACK_OBJECT_STR)
        return bad_field(f, i, "a string");
    out->ptr = o->via.str.ptr;
    out->len = o->via.str.size;
    return 0;
}

static int get_ref(fields_t *f, uint32_t i, wire_task_ref_t *r)
{
    int rc;
    if ((rc = get_i64(f, i, &r->batch_id)) || (rc = get_u32(f, i + 1, &r->task_id)) ||
        (rc = get_u32(f, i + 2, &r->attempt)))
        return rc;
    if (r->batch_id < 0)
        return bad_field(f, i, "a batch id (>= 0)");
    return 0;
}

static const uint32_t field_counts[] = {
    [WIRE_HELLO] = 4,       [WIRE_WELCOME] = 2, [WIRE_REFUSE] = 1,      [WIRE_HEARTBEAT] = 2,
    [WIRE_HEARTBEAT_ACK] = 0, [WIRE_TASK] = 11,  [WIRE_RESULT_PART] = 5, [WIRE_RESULT_DONE] = 12,
    [WIRE_BYE] = 0,         [WIRE_CANCEL] = 3,          [WIRE_RESET] = 0,
};

static int decode_body(wire_msg_t *m, fields_t *f)
{
    int rc = 0;
    switch (m->type) {
    case WIRE_HELLO: {
        wire_hello_t *h = &m->u.hello;
        if ((rc = get_str(f, 0, &h->executor_id)) || (rc = get_str(f, 1, &h->host)) ||
            (rc = get_u32(f, 2, &h->pid)) || (rc = get_u32(f, 3, &h->slots)))
            return rc;
        if (h->executor_id.len == 0 || h->executor_id.len > 255)
            return sp_err_set(f->err, SP_EPROTO, "HELLO: executor id must be 1 to 255 bytes");
        if (h->slots == 0 || h->slots > 1024)
            return sp_err_set(f->err, SP_EPROTO, "HELLO: slots must be 1 to 1024, not %u", h->slots);
        return 0;
    }
    case WIRE_WELCOME:
        if ((rc = get_u32(f, 0, &m->u.welcome.heartbeat_ms)) || (rc = get_str(f, 1, &m->u.welcome.driver_run_id)))
            return rc;
        return 0;
    case WIRE_REFUSE:
        return get_str(f, 0, &m->u.refuse.reason);
    case WIRE_HEARTBEAT:
        if ((rc = get_u32(f, 0, &m->u.heartbeat.running)) || (rc = get_bool(f, 1, &m->u.heartbeat.draining)))
            return rc;
        return 0;
    case WIRE_HEARTBEAT_ACK:
    case WIRE_BYE:
    case WIRE_RESET:
        return 0;
    case WIRE_TASK: {
        wire_task_t *t = &m->u.task;
        if ((rc = get_str(f, 0, &t->query_id)) || (rc = get_ref(f, 1, &t->ref)) ||
            (rc = get_str(f, 4, &t->source_name)) || (rc = get_str(f, 5, &t->schema)) ||
            (rc = get_str(f, 6, &t->sql)) || (rc = get_u32(f, 7, &t->mode)) ||
            (rc = get_str(f, 8, &t->path)) || (rc = get_u64(f, 9, &t->start)) ||
            (rc = get_u64(f, 10, &t->end)))
            return rc;
        if (t->mode > WIRE_MODE_FAILFAST)
            return sp_err_set(f->err, SP_EPROTO, "TASK: unknown mode %u", t->mode);
        if (t->start > t->end)
            return sp_err_set(f->err, SP_EPROTO, "TASK: range start %llu is after its end %llu",
                              (unsigned long long)t->start, (unsigned long long)t->end);
        if (t->path.len == 0 || memchr(t->path.ptr, '\0', t->path.len) != NULL)
            return sp_err_set(f->err, SP_EPROTO, "TASK: bad path");
        return 0;
    }
    case WIRE_RESULT_PART: {
        wire_part_t *p = &m->u.part;
        if ((rc = get_ref(f, 0, &p->ref)) || (rc = get_u32(f, 3, &p->seq)))
            return rc;
        const msgpack_object *arr = &f->o[4];
        if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size % 2 != 0)
            return bad_field(f, 4, "an array of key/state pairs");
        for (uint32_t i = 0; i < arr->via.array.size; i++)
            if (arr->via.array.ptr[i].type != MSGPACK_OBJECT_BIN)
                return sp_err_set(f->err, SP_EPROTO, "RESULT_PART: entry item %u is not bytes", i);
        p->nentries = arr->via.array.size / 2;
        p->items_ = arr->via.array.ptr;
        return 0;
    }
    case WIRE_RESULT_DONE: {
        wire_done_t *d = &m->u.done;
        if ((rc = get_ref(f, 0, &d->ref)) || (rc = get_u32(f, 3, &d->nparts)) ||
            (rc = get_bool(f, 4, &d->ok)) || (rc = get_u64(f, 5, &d->rows)) ||
            (rc = get_u64(f, 6, &d->malformed)) || (rc = get_u64(f, 7, &d->bytes)) ||
            (rc = get_u64(f, 8, &d->groups)) || (rc = get_u64(f, 9, &d->duration_us)) ||
            (rc = get_str(f, 10, &d->error)) || (rc = get_bool(f, 11, &d->fatal)))
            return rc;
        return 0;
    }
    case WIRE_CANCEL:
        return get_ref(f, 0, &m->u.cancel);
    }
    return sp_err_set(f->err, SP_EPROTO, "unknown message type %d", (int)m->type);
}

int wire_decode(const void *buf, size_t len, wire_msg_t *out, sp_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return sp_err_set(err, SP_EPROTO, "empty frame");
    if (len > (size_t)WIRE_MAX_FRAME)
        return sp_err_set(err, SP_EPROTO, "frame of %zu bytes exceeds the limit", len);
    int rc = precheck(buf, len, err);
    if (rc != 0)
        return rc;
    msgpack_unpacked_init(&out->unpacked_);
    out->has_unpacked_ = true;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&out->unpacked_, buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        wire_msg_release(out);
        return sp_err_set(err, SP_EPROTO, "not a MessagePack frame");
    }
    const msgpack_object *root = &out->unpacked_.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 3)
        goto not_spate;
    const msgpack_object *o = root->via.array.ptr;
    if (o[0].type != MSGPACK_OBJECT_STR || o[0].via.str.size != strlen(WIRE_MAGIC) ||
        memcmp(o[0].via.str.ptr, WIRE_MAGIC, strlen(WIRE_MAGIC)) != 0)
        goto not_spate;
    if (o[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || o[1].via.u64 > UINT32_MAX)
        goto not_spate;
    out->version = (uint32_t)o[1].via.u64;
    if (out->version != WIRE_VERSION) {
        uint32_t v = out->version;
        wire_msg_release(out);
        out->version = v;
        return sp_err_set(err, SP_EVERSION, "peer speaks protocol version %u, this spate speaks %u",
                          v, WIRE_VERSION);
    }
    if (o[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || o[2].via.u64 < WIRE_HELLO ||
        o[2].via.u64 > WIRE_RESET) {
        wire_msg_release(out);
        return sp_err_set(err, SP_EPROTO, "unknown message type");
    }
    out->type = (wire_type_t)o[2].via.u64;
    uint32_t nfields = root->via.array.size - 3;
    if (nfields != field_counts[out->type]) {
        int t = out->type;
        wire_msg_release(out);
        return sp_err_set(err, SP_EPROTO, "%s with %u fields, expected %u", wire_type_name(t),
                          nfields, field_counts[t]);
    }
    fields_t f = {o + 3, nfields, wire_type_name(out->type), err};
    rc = decode_body(out, &f);
    if (rc != 0) {
        wire_msg_release(out);
        return rc;
    }
    return 0;
not_spate:
    wire_msg_release(out);
    return sp_err_set(err, SP_EPROTO, "not a spate frame");
}

void wire_msg_release(wire_msg_t *m)
{
    if (m->has_unpacked_) {
        msgpack_unpacked_destroy(&m->unpacked_);
        m->has_unpacked_ = false;
    }
}

void wire_part_entry(const wire_msg_t *m, size_t i, wire_entry_t *out)
{
    const msgpack_object *k = &m->u.part.items_[2 * i];
    const msgpack_object *s = &m->u.part.items_[2 * i + 1];
    out->key = k->via.bin.ptr;
    out->klen = k->via.bin.size;
    out->state = s->via.bin.ptr;
    out->slen = s->via.bin.size;
}

/* ---- ZeroMQ ------------------------------------------------------------------ */

int wire_send(void *sock, const sp_buf_t *frame, bool nonblock)
{
    for (;;) {
        if (zmq_send(sock, frame->data, frame->len, nonblock ? ZMQ_DONTWAIT : 0) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int wire_send_to(void *router, const void *id, size_t idlen, const sp_buf_t *frame)
{
    for (;;) {
        if (zmq_send(router, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    for (;;) {
        if (zmq_send(router, frame->data, frame->len, ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}
