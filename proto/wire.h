/* proto/wire.h -- the messages driver and executors exchange over ZeroMQ,
 * and their MessagePack encoding.
 *
 * Sockets: the driver binds a ROUTER; each executor connects a DEALER whose
 * routing id is its executor id. Every message is one ZeroMQ frame holding
 * one MessagePack array:
 *
 *   [ "spate", version, type, field... ]
 *
 * A peer that sends another version is answered with REFUSE (carrying our
 * version) and ignored; the executor exits with a message naming both
 * versions. Every frame is validated before use (magic, version, type,
 * field count and types, sizes); a frame that fails is dropped with a log
 * line and never crashes a process.
 *
 *   type            dir   fields
 *   1 HELLO         E->D  executor_id, host, pid, slots
 *   2 WELCOME       D->E  heartbeat_ms, driver_run_id
 *   3 REFUSE        both  reason
 *   4 HEARTBEAT     E->D  running, draining
 *   5 HEARTBEAT_ACK D->E  (none)
 *   6 TASK          D->E  query_id, batch_id, task_id, attempt, source_name,
 *                         schema, sql, mode, path, start, end
 *   7 RESULT_PART   E->D  batch_id, task_id, attempt, seq, [key, state, ...]
 *   8 RESULT_DONE   E->D  batch_id, task_id, attempt, nparts, ok, rows,
 *                         malformed, bytes, groups, duration_us, error, fatal
 *   9 BYE           E->D  (none)
 *  10 CANCEL        D->E  batch_id, task_id, attempt
 *  11 RESET         D->E  (none): "I do not know you" (the driver restarted);
 *                         the executor drops its tasks and says HELLO again
 *
 * A task's partial aggregate travels as RESULT_PART frames of at most about
 * WIRE_PART_BYTES each (key and state are byte strings in the formats of
 * query/value.h and query/agg.h), then one RESULT_DONE that says how many
 * parts were sent. */
#ifndef SP_WIRE_H
#define SP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "sp_err.h"
#include "sp_util.h"

#define WIRE_MAGIC "spate"
#define WIRE_VERSION 2u /* 2: keys in partials sort as their values (query/value.h) */
/* Largest frame a socket accepts (ZMQ_MAXMSGSIZE). */
#define WIRE_MAX_FRAME (64ll << 20)
/* Target size of one RESULT_PART frame. */
#define WIRE_PART_BYTES (4u << 20)

typedef enum wire_type {
    WIRE_HELLO = 1,
    WIRE_WELCOME = 2,
    WIRE_REFUSE = 3,
    WIRE_HEARTBEAT = 4,
    WIRE_HEARTBEAT_ACK = 5,
    WIRE_TASK = 6,
    WIRE_RESULT_PART = 7,
    WIRE_RESULT_DONE = 8,
    WIRE_BYE = 9,
    WIRE_CANCEL = 10,
    WIRE_RESET = 11,
} wire_type_t;

/* "HELLO", "TASK", ...; "UNKNOWN" for other values. */
const char *wire_type_name(int type);

/* Malformed-line policies, as sent in TASK. */
typedef enum wire_mode {
    WIRE_MODE_PERMISSIVE = 0,
    WIRE_MODE_DROPMALFORMED = 1,
    WIRE_MODE_FAILFAST = 2,
} wire_mode_t;

/* A string or byte string: borrowed from the encoder's caller, or from the
 * decoded message (valid until wire_msg_release). Not NUL-terminated. */
typedef struct wire_str {
    const char *ptr;
    uint32_t len;
} wire_str_t;

#define WIRE_STR(s) ((wire_str_t){(s), (uint32_t)strlen(s)})

typedef struct wire_hello {
    wire_str_t executor_id, host;
    uint32_t pid, slots;
} wire_hello_t;

typedef struct wire_welcome {
    uint32_t heartbeat_ms;
    wire_str_t driver_run_id;
} wire_welcome_t;

typedef struct wire_refuse {
    wire_str_t reason;
} wire_refuse_t;

typedef struct wire_heartbeat {
    uint32_t running;
    bool draining;
} wire_heartbeat_t;

/* Identifies one attempt of one task. */
typedef struct wire_task_ref {
    int64_t batch_id;
    uint32_t task_id;
    uint32_t attempt;
} wire_task_ref_t;

typedef struct wire_task {
    wire_task_ref_t ref;
    wire_str_t query_id, source_name, schema, sql, path;
    uint32_t mode;      /* wire_mode_t */
    uint64_t start, end;
} wire_task_t;

typedef struct wire_entry {
    const void *key;
    size_t klen;
    const void *state;
    size_t slen;
} wire_entry_t;

typedef struct wire_part {
    wire_task_ref_t ref;
    uint32_t seq;
    size_t nentries;
    const msgpack_object *items_; /* 2*nentries bin objects; use wire_part_entry */
} wire_part_t;

typedef struct wire_done {
    wire_task_ref_t ref;
    uint32_t nparts;
    bool ok;
    uint64_t rows, malformed, bytes, groups, duration_us;
    wire_str_t error;   /* empty when ok */
    bool fatal;         /* the failure is the data's (failfast met a bad
                           line): another attempt would fail alike */
} wire_done_t;

/* A decoded message. The union member named by `type` is valid. */
typedef struct wire_msg {
    wire_type_t type;
    uint32_t version;
    union {
        wire_hello_t hello;
        wire_welcome_t welcome;
        wire_refuse_t refuse;
        wire_heartbeat_t heartbeat;
        wire_task_t task;
        wire_part_t part;
        wire_done_t done;
        wire_task_ref_t cancel;
    } u;
    msgpack_unpacked unpacked_; /* owns what the wire_str_t fields point to */
    bool has_unpacked_;
} wire_msg_t;

/* Encode m (its type and union member; version and magic are added) and
 * append the frame bytes to out. RESULT_PART is encoded with
 * wire_encode_part instead. */
void wire_encode(const wire_msg_t *m, sp_buf_t *out);

/* Append a RESULT_PART frame holding n entries to out. */
void wire_encode_part(sp_buf_t *out, const wire_task_ref_t *ref, uint32_t seq,
                      const wire_entry_t *entries, size_t n);

/* Decode one frame into *out. On success the caller must call
 * wire_msg_release(out). Errors: SP_EPROTO with a message ("not a spate
 * frame", "TASK: field 9 (path) is not a string", ...), or SP_EVERSION when
 * the frame is well-formed but from another protocol version (out->version
 * then holds the peer's version, and nothing needs releasing). */
int wire_decode(const void *buf, size_t len, wire_msg_t *out, sp_err_t *err);

/* Release what a successful wire_decode holds; safe twice. */
void wire_msg_release(wire_msg_t *m);

/* Entry i (< m->u.part.nentries) of a decoded RESULT_PART. Borrowed. */
void wire_part_entry(const wire_msg_t *m, size_t i, wire_entry_t *out);

/* ---- ZeroMQ helpers -------------------------------------------------- */

/* Send a frame on a DEALER socket (ZMQ_DONTWAIT when nonblock). 0 or -errno. */
int wire_send(void *sock, const sp_buf_t *frame, bool nonblock);

/* Send a frame on a ROUTER socket to the peer with this routing id.
 * 0 or -errno (-EHOSTUNREACH when the peer is gone). */
int wire_send_to(void *router, const void *id, size_t idlen, const sp_buf_t *frame);

#endif
