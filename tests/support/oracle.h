/* tests/support/oracle.h -- an independent reference for spate's query
 * results: reads JSON-lines files with json-c plus a small strict RFC 8259
 * check of its own, computes `SELECT g..., agg(c)... [WHERE filter] GROUP BY
 * g...` the slow, obvious way, and compares the engine's JSON-lines output
 * (`spate result --format json`) with it. Shares no code with the engine.
 *
 * Usage:
 *
 *   static const char *const by[] = {"gt"};
 *   static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_AVG, "x"}};
 *   static const char *const names[] = {"gt", "count", "avg(x)"};
 *   oracle_t *o = oracle_new(by, 1, aggs, 2, NULL, NULL);
 *   oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
 *   if (oracle_add_dir(o, dir) != 0) fail(oracle_error(o));
 *   char *diff = NULL;
 *   if (oracle_compare_jsonl(o, names, engine_output, 1e-9, &diff) != 0) fail(diff);
 *   free(diff);
 *   oracle_destroy(&o);
 *
 * Reading a line (Spark's permissive mode, as the engine documents it):
 *   - Lines end at '\n'. A line of only spaces, tabs and '\r' is blank:
 *     neither a row nor malformed.
 *   - A line is a row when it is exactly one JSON object (RFC 8259, with
 *     surrounding whitespace) and json-c parses it strictly too. Otherwise it
 *     is malformed and skipped: bad grammar, NaN/Infinity literals, "1.",
 *     single quotes, raw control characters or invalid UTF-8 in strings
 *     (overlong forms, surrogates, > U+10FFFF), NUL bytes, trailing text,
 *     nesting deeper than 512 (the top-level object is depth 1), or valid
 *     JSON that is not an object ([1,2], "x", 42).
 *   - Top-level keys are matched as exact bytes after unescaping
 *     ("\u0067t" is gt); when a key repeats, the last one wins. A missing key
 *     or null is NULL. A value of the wrong JSON type is NULL and counted as
 *     a type error; the row still counts.
 *   - Conversion to the column type:
 *       STRING   a string (unescaped; json-c turns a lone surrogate escape
 *                into U+FFFD); any other value as its raw JSON text from the
 *                line (7 -> "7", true -> "true", [1,2] -> "[1,2]")
 *       BIGINT   an integer literal (no '.', no exponent) within int64
 *       DOUBLE   any number, as strtod reads it (1e400 -> Infinity), or the
 *                strings "NaN", "Infinity", "-Infinity"
 *       BOOLEAN  true or false
 *
 * Aggregates (SQL / Spark): count(*) counts rows; count(c) non-NULL values;
 * sum of BIGINT is a wrapping int64, of DOUBLE a double (computed with
 * compensated summation, so it is a little more exact than a plain sum);
 * avg = sum / count as a double; min/max by the column's order (strings by
 * bytes, false < true, NaN above every other double); every aggregate of
 * only NULLs is NULL except the counts, which are 0. NULL is a group of its
 * own; doubles group with -0.0 as 0.0 and all NaNs together.
 *
 * Errors: functions that can fail return 0 or -1 and keep a message on the
 * handle (oracle_error). Caller mistakes that are not about data (a NULL
 * column for COUNT, SUM of a STRING column) are reported the same way by the
 * first oracle_add_* call, so a test shows the message instead of crashing. */
#ifndef SP_ORACLE_H
#define SP_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object; /* json-c */

typedef struct oracle oracle_t;
typedef struct oracle_row oracle_row_t;

typedef enum oracle_type {
    ORACLE_STRING = 1,
    ORACLE_BIGINT,
    ORACLE_DOUBLE,
    ORACLE_BOOLEAN,
} oracle_type_t;

typedef enum oracle_func {
    ORACLE_COUNT_STAR = 1, /* col is NULL */
    ORACLE_COUNT,
    ORACLE_SUM, /* BIGINT or DOUBLE columns */
    ORACLE_MIN,
    ORACLE_MAX,
    ORACLE_AVG, /* BIGINT or DOUBLE columns */
} oracle_func_t;

typedef struct oracle_agg {
    oracle_func_t func;
    const char *col; /* the exact JSON key; NULL for COUNT_STAR */
} oracle_agg_t;

/* The activity data's columns, in the text form spate's --schema takes. */
#define ORACLE_ACTIVITY_SCHEMA                                                         \
    "Arrival_Time BIGINT, Creation_Time BIGINT, Device STRING, Index BIGINT, "         \
    "Model STRING, User STRING, gt STRING, x DOUBLE, y DOUBLE, z DOUBLE"

/* A value read from a row. Strings are not NUL-terminated (they may hold
 * NUL bytes) and are borrowed: from a row, valid during the filter call;
 * from oracle_group_value, until the oracle changes or is destroyed. */
typedef struct oracle_value {
    bool is_null;
    oracle_type_t type;
    union {
        int64_t i;
        double d;
        bool b;
        struct {
            const char *ptr;
            size_t len;
        } s;
    } u;
} oracle_value_t;

/* WHERE: return true to keep the row. Called once per row, in file order. */
typedef bool (*oracle_filter_fn)(const oracle_row_t *row, void *ctx);

/* ---- lifecycle ------------------------------------------------------- */

/* A query: GROUP BY group_cols (ngroup may be 0: one group, present even
 * with no rows, as SQL gives one row for a global aggregate) and the
 * aggregates in order. The arrays and names are copied; filter may be NULL.
 * Never returns NULL. Set the column types before adding data. */
oracle_t *oracle_new(const char *const *group_cols, size_t ngroup, const oracle_agg_t *aggs,
                     size_t naggs, oracle_filter_fn filter, void *filter_ctx);

/* Frees *o and sets it to NULL; safe on NULL and twice. */
void oracle_destroy(oracle_t **o);

/* The type of a column (by exact key). -1 once data has been added. */
int oracle_set_type(oracle_t *o, const char *col, oracle_type_t type);

/* Several types in spate's --schema text form: "x DOUBLE, gt STRING"
 * (types STRING, BIGINT, DOUBLE, BOOLEAN, any case; names without spaces or
 * commas). 0, or -1 with a message naming the bad part. */
int oracle_set_schema(oracle_t *o, const char *text);

/* The last error message; "" when none. Borrowed until the next call. */
const char *oracle_error(const oracle_t *o);

/* ---- input ------------------------------------------------------------ */

/* Read one whole file. 0, or -1 when it cannot be read or the query is not
 * valid (message on the handle; the file's lines are then not counted). */
int oracle_add_file(oracle_t *o, const char *path);

/* Every regular file in dir whose name does not start with '.' or '_'
 * (as Spark skips hidden files), in byte order of name. 0 or -1. */
int oracle_add_dir(oracle_t *o, const char *dir);

/* Lines from memory, as if they were a file. 0 or -1 (query errors only). */
int oracle_add_text(oracle_t *o, const char *text, size_t len);

/* ---- inside a filter ---------------------------------------------------- */

/* The value of top-level key col in the row, converted to type exactly as
 * grouped and aggregated values are. Returns 0, or 1 when the key holds a
 * value of the wrong type (out is then NULL). */
int oracle_row_get(const oracle_row_t *row, const char *col, oracle_type_t type,
                   oracle_value_t *out);

/* json-c's tree of the whole line, borrowed for the call. */
struct json_object *oracle_row_json(const oracle_row_t *row);

/* ---- results ------------------------------------------------------------ */

typedef struct oracle_stats {
    uint64_t lines;       /* every line, blank ones included */
    uint64_t rows;        /* JSON objects, before the filter */
    uint64_t selected;    /* rows the filter kept (all rows without one) */
    uint64_t blank;
    uint64_t malformed;
    uint64_t type_errors; /* kept rows with a wrong-typed value in a group or
                             aggregate column */
    /* Lines the oracle's own RFC check accepted and json-c refused. Always 0
     * unless one of the two has a bug: tests assert it. */
    uint64_t parser_disagreements;
} oracle_stats_t;

oracle_stats_t oracle_stats(const oracle_t *o);
uint64_t oracle_rows(const oracle_t *o);      /* stats.rows */
uint64_t oracle_malformed(const oracle_t *o); /* stats.malformed */
size_t oracle_groups(const oracle_t *o);      /* groups in the result */

/* Value `col` of group `g` (0 <= g < oracle_groups, in first-seen order):
 * columns 0..ngroup-1 are the group keys, then the aggregates. Count and
 * BIGINT sums are BIGINT; avg and DOUBLE sums are DOUBLE; min/max have the
 * column's type. 0, or -1 when g or col is out of range. */
int oracle_group_value(const oracle_t *o, size_t g, size_t col, oracle_value_t *out);

/* The expected result as JSON lines in spate's format: one object per group
 * with out_names[i] for result column i, sorted by group key, NULL as null,
 * doubles in shortest round-trip form (NaN and infinities as the strings
 * "NaN", "Infinity", "-Infinity"). malloc'd. */
char *oracle_to_jsonl(const oracle_t *o, const char *const *out_names);

/* Compare the engine's JSON-lines output with the expected result.
 * out_names[i] is the output key of result column i (ngroup + naggs of
 * them). Equal means: every line (blank lines aside) is an object with
 * exactly those keys; the same set of groups, each once; integers equal
 * exactly (a BIGINT result must be a JSON integer); doubles within rel_tol
 * relative error, magnitudes below 1 counting as 1 (|a-b| <= rel_tol *
 * max(1, |a|, |b|)), NaN equal to NaN; null only where SQL NULL is
 * expected. Returns 0 when equal (and *diff = NULL), 1 otherwise with *diff
 * a malloc'd report of the first differences ("missing group {gt="walk"}:
 * expected count=12", "group {gt="sit"}: count: expected 3, got 4", ...). */
int oracle_compare_jsonl(const oracle_t *o, const char *const *out_names, const char *jsonl_text,
                         double rel_tol, char **diff);

#endif
