/* storage/ckpt_int.h -- the checkpoint's on-disk format, and the internals
 * that storage/ckpt.c shares with its tests. As SQLite's btreeInt.h does for
 * its file, this header is the reference for every byte spate writes into a
 * checkpoint: change a layout only together with CKPT_FORMAT_VERSION (or a
 * record version) and a reader for the old one.
 *
 * FILES IN THE CHECKPOINT DIRECTORY
 *
 *   name      what
 *   --------  -------------------------------------------------------------
 *   data.mdb  the LMDB environment: every record below, one file
 *   lock.mdb  LMDB's reader table (rebuilt by LMDB when needed)
 *   LOCK      the writer lock: the one writer holds flock(LOCK_EX) on it for
 *             the life of its handle and writes its pid there in decimal
 *             followed by "\n" (only for the SP_EBUSY message)
 *
 * Any other name in a directory without data.mdb makes ckpt_open refuse it
 * as "not a spate checkpoint". A data.mdb of zero bytes counts as absent (a
 * creation that died before LMDB wrote its first pages).
 *
 * NAMED DATABASES AND THEIR KEYS
 *
 *   database  key                                          value
 *   --------  -------------------------------------------  ----------------
 *   metadata  "format" (6 ASCII bytes, no NUL)             format record
 *             "query"  (5 ASCII bytes, no NUL)             query record
 *   offsets   batch id: 8 bytes, big-endian                offsets record
 *   commits   batch id: 8 bytes, big-endian                commit record
 *   sources   path <= 400 bytes: the path bytes (no NUL)   source record
 *             path > 400 bytes: its first 400 bytes, then
 *             XXH3-64 (seed 0) of the whole path, 8 bytes
 *             big-endian (408 bytes in all)
 *   state     0x4b ('K'), then the group key bytes         state value
 *             (group key <= 400 bytes); longer group keys:
 *             'K', the first 400 bytes, XXH3-64 of the
 *             whole group key, 8 bytes big-endian (409
 *             bytes in all).
 *             Format 1: a key group (2 bytes big-endian)
 *             in place of 'K', and the group key's numbers
 *             little-endian (query/value.c decodes them
 *             for ckpt_upgrade)
 *   sink      batch id: 8 bytes, big-endian                sink record
 *   progress  sequence number: 8 bytes, big-endian         progress record
 *             (added in release 0.1; absent from older
 *             checkpoints until a writer opens them)
 *
 * Batch ids are >= 0, so big-endian byte order is numeric order and LMDB's
 * default memcmp comparison sorts batches numerically, and group keys
 * (query/value.h) as their values.
 * Long paths and group keys (LMDB keys stop at 511 bytes) are told apart
 * from short ones by length alone (408/409 bytes against at most 400/401),
 * and their records carry the whole path or key, which every look-up
 * compares. Two long keys that share their first 400 bytes and their 64-bit
 * hash would share a slot: ckpt_txn_state_put refuses the second (SP_EINVAL)
 * and ckpt_files_seen reports it unseen.
 *
 * RECORD FRAME (every value except state values)
 *
 *   offset  size  field
 *   ------  ----  ---------------------------------------------------------
 *   0       1     record type: 'F' format, 'Q' query, 'O' offsets,
 *                 'C' commit, 'S' source, 'K' sink, 'P' progress
 *   1       1     record version, 1 for every type in format version 1
 *   2       n     body: one MessagePack array (sink: the sink's own bytes)
 *   2+n     4     CRC-32 (zlib's crc32) of the record's key bytes followed
 *                 by value bytes [0, 2+n), big-endian
 *
 * The CRC covers the key so that a record found under the wrong key (a
 * damaged branch page) fails as surely as a damaged record.
 *
 * RECORD BODIES (MessagePack arrays, fields in this order)
 *
 *   record    fields
 *   --------  ---------------------------------------------------------------
 *   format    magic str "spate-checkpoint", format_version uint, created_ms
 *             int, writer_version str (SPATE_VERSION of the creator)
 *   query     query_id str (<= 36 bytes), name str, source_name str,
 *             source_format str, source_path str, schema str, sql str,
 *             group_signature str, aggs_signature str, output_names str,
 *             output_mode str, sink str, key_groups uint (1..65536)
 *   offsets   batch_id int (= key), timestamp_ms int,
 *             files: array of [path str (non-empty), size uint, mtime_ns int],
 *             splits: array of [file uint (< number of files), start uint,
 *             end uint (>= start)]
 *   commit    batch_id int (= key), committed_ms int, input_rows uint,
 *             malformed_rows uint, state_rows uint, updated_rows uint
 *   source    batch_id int (the batch that took the file), size uint,
 *             mtime_ns int, and for a long-path key a 4th field: the
 *             whole path str
 *   sink      (no MessagePack) the bytes the sink handed to
 *             ckpt_txn_sink_put; the sink versions them itself
 *   progress  (no MessagePack) one progress report, JSON text (UTF-8)
 *
 * Integers may use any MessagePack integer encoding (the writer uses the
 * shortest); strings are str8/16/32 or fixstr and never hold a NUL; a NULL
 * string in ckpt_query_t is written as "" and read back as "". A reader
 * accepts an array longer than it knows and skips the extra trailing
 * elements: a later release may append a field without a new record
 * version. Any other change takes a new record version and a new
 * CKPT_FORMAT_VERSION. Bytes after the body's array are damage.
 *
 * The format record's frame and its first two fields are frozen for every
 * release, so that each one can read which format wrote a checkpoint and
 * refuse a newer one before it looks at anything else.
 *
 * STATE VALUES (many: lean, no type byte, but a CRC, so that damage
 * never turns into a silently wrong result)
 *
 *   offset  size  field
 *   ------  ----  ---------------------------------------------------------
 *   0       1     0x01: state version 1, short key (the key holds it)
 *   1       n     the aggregate state bytes (query/agg.h)
 *   1+n     4     CRC-32 of the key bytes followed by value bytes [0, 1+n),
 *                 big-endian
 *   or, for a group key longer than 400 bytes:
 *   0       1     0x02: state version 1, long key
 *   1       4     K, the group key's length, big-endian (K > 400)
 *   5       K     the whole group key
 *   5+K     n     the aggregate state bytes
 *   5+K+n   4     CRC-32 as above
 *
 * PORTABILITY: everything spate writes is big-endian or MessagePack, built
 * byte by byte; no struct is ever dumped. LMDB's own page layout is native:
 * a data.mdb moves only between machines of the same byte order and word
 * size (mdb_dump and mdb_load copy it across), and ckpt_open says so
 * plainly when it meets a file of the other byte order or word size. */
#ifndef SP_CKPT_INT_H
#define SP_CKPT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"

/* Record types (byte 0 of a framed value) and versions (byte 1). */
#define CKPT_REC_FORMAT 'F'
#define CKPT_REC_QUERY 'Q'
#define CKPT_REC_OFFSETS 'O'
#define CKPT_REC_COMMIT 'C'
#define CKPT_REC_SOURCE 'S'
#define CKPT_REC_SINK 'K'
#define CKPT_REC_PROGRESS 'P'
#define CKPT_REC_VERSION 1

/* Header and trailer bytes of a framed record. */
#define CKPT_REC_HEAD 2
#define CKPT_REC_CRC 4

/* First byte of a state key (format 2). */
#define CKPT_STATE_KEY_TAG 0x4b

/* First byte of a state value. */
#define CKPT_STATE_SHORT 0x01
#define CKPT_STATE_LONG 0x02

/* The magic string that opens the format record's body. */
#define CKPT_FORMAT_MAGIC "spate-checkpoint"

/* Keys of the metadata database. */
#define CKPT_KEY_FORMAT "format"
#define CKPT_KEY_QUERY "query"

/* Paths and group keys up to this many bytes are stored in the key as they
 * are; longer ones as this many bytes plus an 8-byte hash. */
#define CKPT_KEY_INLINE_MAX 400

/* Named databases, in the order of ckpt_stats_t.dbs. */
enum ckpt_db {
    CKPT_DB_METADATA = 0,
    CKPT_DB_OFFSETS,
    CKPT_DB_COMMITS,
    CKPT_DB_SOURCES,
    CKPT_DB_STATE,
    CKPT_DB_SINK,
    CKPT_DB_PROGRESS,
    CKPT_DB_COUNT
};

/* LMDB's table of named databases has room for this many: ours, the
 * "progress" database a later release adds, and spares. */
#define CKPT_MAXDBS 16

/* Map size a writer starts with (or the data file's size rounded up to a
 * MiB, when larger). A writer doubles the map before a write transaction
 * when less than half of it is free, and after MDB_MAP_FULL. */
#define CKPT_MAP_INITIAL ((size_t)64 << 20)

/* Tests only: when not 0, the map size a writer starts with instead of
 * CKPT_MAP_INITIAL, so that tests overflow the map with little data. Set it
 * before ckpt_open; it must be a multiple of the page size. */
extern size_t ckpt__initial_mapsize;

#endif
