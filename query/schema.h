/* query/schema.h -- an ordered list of named, typed columns: parsed from
 * the user's --schema text, inferred from JSON lines, stored in the
 * checkpoint as its text form so it never drifts.
 *
 * Text form: "Arrival_Time BIGINT, gt STRING, x DOUBLE" (names may be
 * quoted with backticks when they hold spaces or commas). */
#ifndef SP_SCHEMA_H
#define SP_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "sp_err.h"
#include "value.h"

typedef struct schema_col {
    char *name; /* owned, the exact JSON key */
    sp_type_t type;
} schema_col_t;

typedef struct schema {
    schema_col_t *cols; /* owned */
    size_t ncols;
} schema_t;

schema_t *schema_new(void);
/* Frees *s and sets it to NULL; safe on NULL and twice. */
void schema_destroy(schema_t **s);
schema_t *schema_copy(const schema_t *s);

/* Append a column; SP_EINVAL when the exact name is already there. */
int schema_add(schema_t *s, const char *name, sp_type_t type, sp_err_t *err);

/* Parse the text form. Errors name the position ("--schema: at column 14:
 * unknown type 'STRNG'"). On success *out is a new schema the caller owns. */
int schema_parse(const char *text, schema_t **out, sp_err_t *err);

/* The text form, malloc'd; schema_parse of it gives an equal schema. */
char *schema_format(const schema_t *s);

bool schema_equal(const schema_t *a, const schema_t *b);

/* Resolve a column name as SQL does: an exact match first, otherwise a
 * unique case-insensitive match. Returns the index, -1 when absent, -2 when
 * the name matches several columns case-insensitively. */
int schema_find(const schema_t *s, const char *name, size_t len);

/* ---- inference ---------------------------------------------------------
 * Feed JSON lines; each top-level key becomes a column. Types widen as
 * Spark's inference does: integer+float -> DOUBLE; anything with a string,
 * object or array -> STRING; a column that only ever held null -> STRING.
 * Columns come out sorted by name (byte order), as Spark sorts them. */
typedef struct schema_infer schema_infer_t;

schema_infer_t *schema_infer_new(void);
void schema_infer_destroy(schema_infer_t **si);
/* Scan one line; returns true if it was a JSON object (and was counted). */
bool schema_infer_line(schema_infer_t *si, const char *line, size_t len);
/* Lines seen that were objects. */
size_t schema_infer_rows(const schema_infer_t *si);
/* The inferred schema (new, caller owns); NULL when no object was seen. */
schema_t *schema_infer_result(const schema_infer_t *si);

#endif
