/* query/jscan.h -- the JSON-lines scanner: a validating, column-projecting
 * reader of one JSON object per line. It extracts only the top-level keys a
 * query needs, converts them to the column types, and skips every other
 * value structurally while still validating it (RFC 8259), so a line that is
 * not valid JSON is never taken as a row.
 *
 * Conversion of a present key's value to the column type:
 *   BIGINT   a JSON integer (no fraction, no exponent) within int64;
 *            anything else is a type error
 *   DOUBLE   any JSON number (correctly rounded, as strtod), or the strings
 *            "NaN", "Infinity", "-Infinity"; anything else is a type error
 *   BOOLEAN  true / false; anything else is a type error
 *   STRING   a string (unescaped, UTF-8); a number, true or false as its
 *            JSON text; an object or array as its raw JSON text
 *   any      null gives SQL NULL (not an error)
 * A key absent from the line gives NULL. When a key repeats, the last one
 * wins. Keys are compared as exact bytes after unescaping. A type error
 * leaves the value NULL and is counted in the row, so the caller applies
 * its malformed-row policy (permissive, dropmalformed, failfast).
 *
 * A line holding only whitespace (including a trailing '\r') is BLANK. A
 * line that is valid JSON but not an object is MALFORMED ("not a JSON
 * object"). Nesting deeper than JSCAN_MAX_DEPTH is MALFORMED. Strings must
 * be valid UTF-8 with no raw control characters. A \u escape of a UTF-16
 * surrogate that is not half of a pair is valid JSON but has no UTF-8 form:
 * it unescapes as U+FFFD (as json-c does). */
#ifndef SP_JSCAN_H
#define SP_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

#define JSCAN_MAX_DEPTH 512

/* The slack jscan_next needs after the bytes it is given: buf[avail] is
 * written, and JSCAN_PADDING bytes from there on are read (never for
 * meaning; initialise them once to keep memory checkers quiet). */
#define JSCAN_PADDING 64

typedef struct jscan jscan_t;

typedef enum jscan_status {
    JSCAN_ROW = 0,       /* an object: values filled */
    JSCAN_BLANK = 1,     /* only whitespace: not a row, not malformed */
    JSCAN_MALFORMED = 2, /* not valid JSON, or not an object */
    JSCAN_MORE = 3,      /* jscan_next: no whole line in the buffer */
} jscan_status_t;

typedef struct jscan_row {
    /* ncols values in the order given to jscan_new. Strings borrow from the
     * line or from the scanner's scratch space (escaped strings): valid until
     * the next jscan_line or jscan_next call on this scanner or
     * jscan_destroy (and, for jscan_next, while the caller leaves the line's
     * bytes in place). */
    const sp_value_t *values;
    uint32_t ntype_errors;  /* present keys whose value did not convert */
    int first_type_error;   /* column index of the first such key, or -1 */
    /* For JSCAN_MALFORMED: a static message ("unterminated string") and the
     * byte offset in the line where the problem was found. */
    const char *error;
    size_t error_offset;
} jscan_row_t;

/* A scanner for the given top-level keys (copied) and their column types
 * (not SP_TYPE_NULL). ncols may be 0 (count(*) needs no column; lines are
 * still validated). Never returns NULL. */
jscan_t *jscan_new(const char *const *names, const sp_type_t *types, size_t ncols);

/* Frees *s and sets it to NULL; safe on NULL. */
void jscan_destroy(jscan_t **s);

/* Scan one line: len bytes, without its '\n' (a trailing '\r' is allowed as
 * whitespace). The line need not be NUL-terminated and may contain NUL
 * bytes (which make it MALFORMED). *row is filled for every status and
 * stays valid until the next call. */
jscan_status_t jscan_line(jscan_t *s, const char *line, size_t len, const jscan_row_t **row);

/* Scan the first line of a buffer in place, finding its end as it goes
 * (no copy, no separate search for the newline): the line is the bytes
 * before the first '\n' in [buf, buf+avail), or all avail bytes when there
 * is none and `final` (the end of the input). Same rules and *row as
 * jscan_line, where a '\n' only ever ends the line. The caller owns buf and
 * guarantees JSCAN_PADDING bytes after buf+avail: buf[avail] is
 * overwritten (with '\n'), the rest only read. On return *len is the
 * line's length without its '\n'; the next line starts at buf + *len + 1.
 * Returns JSCAN_MORE, with *len = 0 and an empty row, when buf holds no
 * whole line (avail is 0, or no '\n' and not final): read more and call
 * again with the line's bytes still at buf. */
jscan_status_t jscan_next(jscan_t *s, char *buf, size_t avail, bool final, size_t *len,
                          const jscan_row_t **row);

/* True when [doc, doc+len) is exactly one valid JSON text of any kind
 * (object, array, string, number, true, false, null) with optional
 * surrounding whitespace; newlines count as whitespace here. The limits
 * above hold here too: nesting depth, UTF-8. */
bool jscan_valid(const char *doc, size_t len);

/* ---- field visitor (schema inference) -------------------------------- */

typedef enum jscan_kind {
    JSCAN_KIND_NULL,
    JSCAN_KIND_BOOL,
    JSCAN_KIND_INT,    /* integer literal within int64 */
    JSCAN_KIND_FLOAT,  /* any other number */
    JSCAN_KIND_STRING,
    JSCAN_KIND_OBJECT,
    JSCAN_KIND_ARRAY,
} jscan_kind_t;

/* Called once per top-level key, in line order, with the unescaped key. */
typedef void (*jscan_field_fn)(void *ctx, const char *key, size_t keylen, jscan_kind_t kind);

/* Validate a line like jscan_line and, only when the whole line is a valid
 * object, call fn for each top-level key. Returns the line's status; for
 * MALFORMED, *error (if not NULL) receives a static message. This is the
 * slow path (schema inference): it may validate first and visit after. */
jscan_status_t jscan_fields(const char *line, size_t len, jscan_field_fn fn, void *ctx,
                            const char **error);

#endif
