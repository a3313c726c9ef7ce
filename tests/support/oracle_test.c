/* tests/support/oracle_test.c -- the two test instruments tested: the
 * activity generator (scripts/gen-activity, run as a real process from
 * $SPATE_GEN) and the reference oracle (oracle.h), against each other and
 * against answers worked out by hand. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oracle.h"
#include "testsupport.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct gen_summary {
    uint64_t files, rows, null_gt, malformed, blank, bytes;
} gen_summary_t;

/* Run the generator with args (NULL-terminated) writing to dir; asserts it
 * succeeded and returns its summary line's numbers. */
static gen_summary_t gen_run(const char *dir, const char *const *args)
{
    const char *argv[32] = {ts_env("SPATE_GEN"), "--out", dir};
    size_t n = 3;
    for (size_t i = 0; args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *err = NULL;
    int rc = ts_run(argv, 120000, NULL, &err);
    cr_assert_eq(rc, 0, "gen-activity failed (%d): %s", rc, err);
    gen_summary_t s = {0};
    const char *line = strstr(err, "gen-activity: files=");
    cr_assert(line != NULL, "no summary line in: %s", err);
    int got = sscanf(line,
                     "gen-activity: files=%" SCNu64 " rows=%" SCNu64 " null_gt=%" SCNu64
                     " malformed=%" SCNu64 " blank=%" SCNu64 " bytes=%" SCNu64,
                     &s.files, &s.rows, &s.null_gt, &s.malformed, &s.blank, &s.bytes);
    cr_assert_eq(got, 6, "cannot read the summary: %s", line);
    free(err);
    return s;
}

/* Names of the files in dir, sorted; *n set. Hidden files included. */
static char **dir_names(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "opendir %s", dir);
    char **names = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        names = realloc(names, (*n + 1) * sizeof *names);
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The whole of dir/name. */
static char *read_in(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = ts_read_file(path, len);
    cr_assert(data != NULL, "cannot read %s", path);
    return data;
}

/* Iterate the lines of [p, end): the next line in *line and *len (without '\n');
 * false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p = nl ? nl + 1 : end;
    return true;
}

static oracle_t *count_by_gt(void)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    oracle_t *o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0, "%s", oracle_error(o));
    return o;
}

/* count(*) of the group whose single key is NULL (gt IS NULL), or 0. */
static int64_t null_group_count(const oracle_t *o)
{
    for (size_t g = 0; g < oracle_groups(o); g++) {
        oracle_value_t k, c;
        oracle_group_value(o, g, 0, &k);
        oracle_group_value(o, g, 1, &c);
        if (k.is_null)
            return c.u.i;
    }
    return 0;
}

/* ---- the oracle: usage example ---------------------------------------------- */

Test(oracle, usage_example)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_AVG, "x"}};
    static const char *const names[] = {"gt", "count", "avg(x)"};
    oracle_t *o = oracle_new(by, 1, aggs, 2, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    const char data[] = "{\"gt\":\"sit\",\"x\":1.0}\n"
                        "{\"gt\":\"sit\",\"x\":2.0}\n"
                        "{\"x\":7}\n";
    cr_assert_eq(oracle_add_text(o, data, strlen(data)), 0, "%s", oracle_error(o));
    char *diff = NULL;
    const char *engine = "{\"gt\":\"sit\",\"count\":2,\"avg(x)\":1.5}\n"
                         "{\"gt\":null,\"count\":1,\"avg(x)\":7.0}\n";
    cr_assert_eq(oracle_compare_jsonl(o, names, engine, 1e-9, &diff), 0, "%s", diff);
    cr_assert_null(diff);
    oracle_destroy(&o);
    cr_assert_null(o);
    oracle_destroy(&o); /* safe twice */
}

/* ---- the oracle on hand-written lines ------------------------------------------ */

/* Every kind of line, with the answer worked out by hand below. */
static const char HAND[] =
    "{\"gt\":\"stand\",\"x\":1.5,\"Index\":1}\n"            /* row: stand */
    "{\"gt\":\"st\\u0061nd\",\"x\":2.5,\"Index\":2}\r\n"    /* row: stand (escape, CRLF) */
    "{\"\\u0067t\":\"walk\",\"x\":-1,\"Index\":3}\n"        /* row: walk (escaped key, int x) */
    "\n"                                                    /* blank */
    "   \t \r\n"                                            /* blank */
    "{\"gt\":null,\"x\":4.0,\"Index\":4}\n"                 /* row: NULL (null) */
    "{ \"x\" : 5.0 , \"Index\" : 5 }\n"                     /* row: NULL (missing) */
    "{\"gt\":\"walk\",\"x\":\"oops\",\"Index\":\"abc\"}\n"  /* row: walk, x, Index wrong type */
    "{\"gt\":\"sit\",\"x\":NaN}\n"                          /* malformed: NaN literal */
    "{\"gt\":\"sit\",\"x\":-Infinity}\n"                    /* malformed */
    "{\"gt\":\"sit\"\n"                                     /* malformed: truncated */
    "{\"gt\":\"sit\",\"x\":1.}\n"                           /* malformed: 1. */
    "{'gt':\"sit\"}\n"                                      /* malformed: single quotes */
    "{\"gt\":\"si\tt\"}\n"                                  /* malformed: raw tab */
    "{\"gt\":\"sit\",\"x\":1}}\n"                           /* malformed: trailing text */
    "{\"gt\":\"sit\",\"Index\":035}\n"                      /* malformed: leading zero */
    "{\"gt\":\"sit\",\"Device\":\"nexus4_1,\"Index\":3}\n"  /* malformed: quote */
    "[1,2]\n"                                               /* malformed: not an object */
    "{\"gt\":\"s\xffit\"}\n"                                /* malformed: bad UTF-8 */
    "{\"gt\":\"s\xed\xa0\x80it\"}\n"                        /* malformed: a surrogate */
    "{\"gt\":\"sit\",\"x\":0}\0\n"                          /* malformed: NUL byte */
    "{\"gt\":\"sit\",\"x\":2,\"gt\":\"walk\"}\n"            /* row: walk (last key wins) */
    "{\"gt\":7,\"x\":3}\n"                                  /* row: gt "7" */
    "{\"gt\":\"walk\",\"Index\":99999999999999999999}\n"    /* row: walk, Index too big */
    "{\"gt\":\"walk\",\"Index\":1.0}\n"                     /* row: walk, Index not integer */
    "{\"gt\":\"stand\",\"x\":-0.5,\"Index\":10}";           /* row: stand, no final newline */

#define HAND_LINES 26
#define HAND_ROWS 11
#define HAND_BLANK 2
#define HAND_MALFORMED 13

static const char *const HAND_NAMES[] = {"gt",     "count",  "count(x)", "sum(Index)",
                                         "min(x)", "max(x)", "avg(x)",   "sum(x)"};

/* stand: x 1.5 2.5 -0.5, Index 1 2 10; walk: x -1 NULL 2 NULL NULL, Index 3
 * NULL NULL NULL NULL; NULL: x 4 5, Index 4 5; "7": x 3, no Index. */
static const char HAND_EXPECTED[] =
    "{\"gt\":null,\"count\":2,\"count(x)\":2,\"sum(Index)\":9,\"min(x)\":4.0,"
    "\"max(x)\":5.0,\"avg(x)\":4.5,\"sum(x)\":9.0}\n"
    "{\"gt\":\"7\",\"count\":1,\"count(x)\":1,\"sum(Index)\":null,\"min(x)\":3.0,"
    "\"max(x)\":3.0,\"avg(x)\":3.0,\"sum(x)\":3.0}\n"
    "{\"gt\":\"stand\",\"count\":3,\"count(x)\":3,\"sum(Index)\":13,\"min(x)\":-0.5,"
    "\"max(x)\":2.5,\"avg(x)\":1.1666666666666667,\"sum(x)\":3.5}\n"
    "{\"gt\":\"walk\",\"count\":5,\"count(x)\":2,\"sum(Index)\":3,\"min(x)\":-1.0,"
    "\"max(x)\":2.0,\"avg(x)\":0.5,\"sum(x)\":1.0}\n";

/* SELECT gt, count(*), count(x), sum(Index), min(x), max(x), avg(x), sum(x)
 * ... GROUP BY gt, before any data. */
static oracle_t *hand_query(void)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {
        {ORACLE_COUNT_STAR, NULL}, {ORACLE_COUNT, "x"}, {ORACLE_SUM, "Index"},
        {ORACLE_MIN, "x"},         {ORACLE_MAX, "x"},   {ORACLE_AVG, "x"},
        {ORACLE_SUM, "x"},
    };
    oracle_t *o = oracle_new(by, 1, aggs, 7, NULL, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0, "%s", oracle_error(o));
    return o;
}

static oracle_t *hand_oracle(void)
{
    oracle_t *o = hand_query();
    cr_assert_eq(oracle_add_text(o, HAND, sizeof HAND - 1), 0, "%s", oracle_error(o));
    return o;
}

Test(oracle, hand_written_lines)
{
    oracle_t *o = hand_oracle();
    oracle_stats_t st = oracle_stats(o);
    cr_expect_eq(st.lines, HAND_LINES);
    cr_expect_eq(st.rows, HAND_ROWS);
    cr_expect_eq(oracle_rows(o), HAND_ROWS);
    cr_expect_eq(st.selected, HAND_ROWS);
    cr_expect_eq(st.blank, HAND_BLANK);
    cr_expect_eq(st.malformed, HAND_MALFORMED);
    cr_expect_eq(oracle_malformed(o), HAND_MALFORMED);
    cr_expect_eq(st.type_errors, 3); /* x/Index "oops"/"abc", 99999..., 1.0 */
    cr_expect_eq(st.parser_disagreements, 0);
    cr_expect_eq(oracle_groups(o), 4);

    char *text = oracle_to_jsonl(o, HAND_NAMES);
    cr_expect_str_eq(text, HAND_EXPECTED);
    free(text);
    char *diff = NULL;
    cr_expect_eq(oracle_compare_jsonl(o, HAND_NAMES, HAND_EXPECTED, 1e-12, &diff), 0, "%s",
                 diff);
    free(diff);
    oracle_destroy(&o);
}

Test(oracle, same_answer_from_a_file_and_a_directory)
{
    char *dir = ts_tmpdir("oracle-hand");
    cr_assert_eq(ts_put_file(dir, "part-00000.json", HAND, sizeof HAND - 1), 0);
    cr_assert_eq(ts_put_file(dir, ".hidden.json", "{\"gt\":\"x\"}\n", 11), 0);
    cr_assert_eq(ts_put_file(dir, "_SUCCESS", "{\"gt\":\"x\"}\n", 11), 0);
    oracle_t *o = hand_query();
    cr_assert_eq(oracle_add_dir(o, dir), 0, "%s", oracle_error(o));
    char *diff = NULL;
    cr_expect_eq(oracle_compare_jsonl(o, HAND_NAMES, HAND_EXPECTED, 1e-12, &diff), 0, "%s",
                 diff);
    free(diff);
    cr_expect_eq(oracle_add_file(o, "/nonexistent/file.json"), -1);
    cr_expect(strstr(oracle_error(o), "/nonexistent/file.json") != NULL, "%s",
              oracle_error(o));
    oracle_destroy(&o);
    ts_rmtree(dir);
    free(dir);
}

/* WHERE x > 0, via the same conversion the aggregates use. */
static bool x_positive(const oracle_row_t *row, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    cr_assert_not_null(oracle_row_json(row));
    oracle_value_t x;
    oracle_row_get(row, "x", ORACLE_DOUBLE, &x);
    return !x.is_null && x.u.d > 0;
}

Test(oracle, two_keys_filter_and_other_types)
{
    static const char *const by[] = {"User", "ok"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_MIN, "Device"},
                                        {ORACLE_MAX, "Device"},    {ORACLE_SUM, "x"},
                                        {ORACLE_MAX, "big"},       {ORACLE_COUNT, "big"}};
    static const char *const names[] = {"User", "ok", "n", "lo", "hi", "sx", "big", "nbig"};
    int calls = 0;
    oracle_t *o = oracle_new(by, 2, aggs, 6, x_positive, &calls);
    cr_assert_eq(oracle_set_schema(o, "User STRING, ok BOOLEAN, Device STRING, x DOUBLE, "
                                      "`big` BIGINT"), 0, "%s", oracle_error(o));
    const char data[] =
        "{\"User\":\"a\",\"ok\":true,\"Device\":\"s3_1\",\"x\":1}\n"
        "{\"User\":\"a\",\"ok\":true,\"Device\":\"nexus4_1\",\"x\":\"Infinity\"}\n"
        "{\"User\":\"a\",\"ok\":true,\"Device\":\"s3_2\",\"x\":-1}\n"     /* filtered out */
        "{\"User\":\"a\",\"ok\":\"true\",\"Device\":\"zz\",\"x\":2}\n"   /* ok: wrong type */
        "{\"User\":\"a\",\"Device\":[1, 2],\"x\":2,\"big\":9223372036854775807}\n"
        "{\"User\":\"a\",\"Device\":{\"k\":\"v\"},\"x\":2,\"big\":-9223372036854775808}\n"
        "{\"User\":\"b\",\"ok\":false,\"Device\":\"\\u00e9\\u0000x\",\"x\":1e-3}\n"
        "{\"User\":\"b\",\"ok\":false,\"Device\":\"e\",\"x\":2.5E+1,\"big\":18446744073709551615}\n"
        "{\"User\":\"b\",\"ok\":false,\"x\":null}\n";                    /* filtered out */
    cr_assert_eq(oracle_add_text(o, data, sizeof data - 1), 0, "%s", oracle_error(o));
    cr_expect_eq(calls, 9);
    oracle_stats_t st = oracle_stats(o);
    cr_expect_eq(st.rows, 9);
    cr_expect_eq(st.selected, 7);
    cr_expect_eq(st.type_errors, 2); /* ok "true"; big 18446744073709551615 */
    /* Strings order by bytes: "[1, 2]" < "nexus4_1" < "s3_1" < "zz" < "{..." and
     * "e" < "\xc3\xa9\0x"; an array or object is its raw text. */
    const char *expected =
        "{\"User\":\"a\",\"ok\":null,\"n\":3,\"lo\":\"[1, 2]\",\"hi\":\"{\\\"k\\\":\\\"v\\\"}\","
        "\"sx\":6.0,\"big\":9223372036854775807,\"nbig\":2}\n"
        "{\"User\":\"a\",\"ok\":true,\"n\":2,\"lo\":\"nexus4_1\",\"hi\":\"s3_1\","
        "\"sx\":\"Infinity\",\"big\":null,\"nbig\":0}\n"
        "{\"User\":\"b\",\"ok\":false,\"n\":2,\"lo\":\"e\",\"hi\":\"\xc3\xa9\\u0000x\","
        "\"sx\":25.001,\"big\":null,\"nbig\":0}\n";
    char *text = oracle_to_jsonl(o, names);
    cr_expect_str_eq(text, expected);
    free(text);
    char *diff = NULL;
    cr_expect_eq(oracle_compare_jsonl(o, names, expected, 1e-12, &diff), 0, "%s", diff);
    free(diff);
    oracle_destroy(&o);
}

Test(oracle, global_aggregate_and_nan)
{
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "x"},
                                        {ORACLE_MAX, "x"},         {ORACLE_MIN, "x"}};
    static const char *const names[] = {"count", "sum(x)", "max(x)", "min(x)"};
    oracle_t *o = oracle_new(NULL, 0, aggs, 4, NULL, NULL);
    oracle_set_type(o, "x", ORACLE_DOUBLE);
    char *diff = NULL;
    /* No data yet: one row, count 0 and NULLs. */
    cr_expect_eq(oracle_groups(o), 1);
    cr_expect_eq(oracle_compare_jsonl(o, names,
                                      "{\"count\":0,\"sum(x)\":null,\"max(x)\":null,"
                                      "\"min(x)\":null}\n", 0, &diff), 0, "%s", diff);
    free(diff);
    const char data[] = "{\"x\":1}\n{\"x\":\"NaN\"}\n{\"x\":-2}\n";
    cr_assert_eq(oracle_add_text(o, data, sizeof data - 1), 0);
    cr_expect_eq(oracle_set_type(o, "y", ORACLE_DOUBLE), -1, "types are fixed once data came");
    /* NaN is above every other double; a sum with NaN is NaN. */
    cr_expect_eq(oracle_compare_jsonl(o, names,
                                      "{\"count\":3,\"sum(x)\":\"NaN\",\"max(x)\":NaN,"
                                      "\"min(x)\":-2.0}\n", 0, &diff), 0, "%s", diff);
    free(diff);
    oracle_destroy(&o);
}

Test(oracle, query_mistakes_are_errors)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t sum_str[] = {{ORACLE_SUM, "gt"}};
    oracle_t *o = oracle_new(by, 1, sum_str, 1, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    cr_expect_eq(oracle_add_text(o, "{}\n", 3), -1);
    cr_expect(strstr(oracle_error(o), "sum(gt)") != NULL, "%s", oracle_error(o));
    oracle_destroy(&o);

    static const oracle_agg_t untyped[] = {{ORACLE_MAX, "nope"}, {ORACLE_COUNT, NULL}};
    o = oracle_new(by, 1, untyped, 2, NULL, NULL);
    oracle_set_type(o, "gt", ORACLE_STRING);
    cr_expect_eq(oracle_add_text(o, "{}\n", 3), -1);
    cr_expect(strstr(oracle_error(o), "'nope'") == NULL &&
                  strstr(oracle_error(o), "max(nope)") != NULL &&
                  strstr(oracle_error(o), "no column") != NULL,
              "%s", oracle_error(o));
    cr_expect_eq(oracle_set_schema(o, "x DOUBLE, y DUBBLE"), -1);
    cr_expect(strstr(oracle_error(o), "DUBBLE") != NULL, "%s", oracle_error(o));
    cr_expect_eq(oracle_set_schema(o, "x DOUBLE y"), -1);
    oracle_destroy(&o);
}

Test(oracle, nesting_deeper_than_512_is_malformed)
{
    /* {"gt":"a","deep":[[...]]}: the object is level 1, each '[' one more. */
    oracle_t *o = count_by_gt();
    for (int levels = 511; levels <= 512; levels++) {
        size_t n = 0;
        char *line = malloc(64 + 2 * (size_t)levels);
        n += (size_t)sprintf(line, "{\"gt\":\"%s\",\"deep\":", levels == 511 ? "a" : "b");
        memset(line + n, '[', (size_t)levels);
        n += (size_t)levels;
        memset(line + n, ']', (size_t)levels);
        n += (size_t)levels;
        line[n++] = '}';
        cr_assert_eq(oracle_add_text(o, line, n), 0);
        free(line);
    }
    oracle_stats_t st = oracle_stats(o);
    cr_expect_eq(st.rows, 1, "512 levels is a row");
    cr_expect_eq(st.malformed, 1, "513 levels is malformed");
    cr_expect_eq(st.parser_disagreements, 0);
    oracle_destroy(&o);
}

/* ---- compare_jsonl finds every kind of difference --------------------------- */

/* Compare text with the hand oracle; returns the diff (or NULL when equal). */
static char *hand_diff(const char *text, double tol)
{
    oracle_t *o = hand_oracle();
    char *diff = NULL;
    int rc = oracle_compare_jsonl(o, HAND_NAMES, text, tol, &diff);
    cr_assert_eq(rc, diff != NULL ? 1 : 0, "return code and diff disagree");
    oracle_destroy(&o);
    return diff;
}

/* HAND_EXPECTED with `from` replaced by `to` (once). */
static char *hand_edit(const char *from, const char *to)
{
    const char *at = strstr(HAND_EXPECTED, from);
    cr_assert(at != NULL, "'%s' is not in the expected text", from);
    size_t pre = (size_t)(at - HAND_EXPECTED);
    char *out = malloc(sizeof HAND_EXPECTED + strlen(to));
    memcpy(out, HAND_EXPECTED, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static void expect_diff(const char *from, const char *to, const char *needle)
{
    char *text = hand_edit(from, to);
    char *diff = hand_diff(text, 1e-9);
    cr_expect(diff != NULL && strstr(diff, needle) != NULL,
              "editing '%s' to '%s': wanted a diff with '%s', got: %s", from, to, needle,
              diff ? diff : "(equal)");
    free(diff);
    free(text);
}

Test(compare, equal_up_to_order_blank_lines_and_tolerance)
{
    /* Lines in another order, blank lines, a double off by 1e-15. */
    const char *text =
        "\n{\"gt\":\"walk\",\"count\":5,\"count(x)\":2,\"sum(Index)\":3,\"min(x)\":-1,"
        "\"max(x)\":2,\"avg(x)\":0.5,\"sum(x)\":1}\n"
        "{\"sum(x)\":3.5,\"gt\":\"stand\",\"count\":3,\"count(x)\":3,\"sum(Index)\":13,"
        "\"min(x)\":-0.5,\"max(x)\":2.5,\"avg(x)\":1.166666666666668}\r\n"
        "  \n"
        "{\"gt\":null,\"count\":2,\"count(x)\":2,\"sum(Index)\":9,\"min(x)\":4.0,"
        "\"max(x)\":5.0,\"avg(x)\":4.5,\"sum(x)\":9.0}\n"
        "{\"gt\":\"7\",\"count\":1,\"count(x)\":1,\"sum(Index)\":null,\"min(x)\":3.0,"
        "\"max(x)\":3.0,\"avg(x)\":3.0,\"sum(x)\":3.0}";
    char *diff = hand_diff(text, 1e-9);
    cr_expect_null(diff, "%s", diff);
    free(diff);
    diff = hand_diff(text, 1e-17); /* 1.166666666666668 is now too far */
    cr_expect(diff != NULL && strstr(diff, "avg(x): expected 1.1666666666666667") != NULL,
              "%s", diff ? diff : "(equal)");
    free(diff);
}

Test(compare, finds_each_kind_of_difference)
{
    /* a missing group */
    expect_diff("{\"gt\":\"walk\",\"count\":5,\"count(x)\":2,\"sum(Index)\":3,\"min(x)\":-1.0,"
                "\"max(x)\":2.0,\"avg(x)\":0.5,\"sum(x)\":1.0}\n", "",
                "missing group {gt=\"walk\"}: expected count=5, count(x)=2, sum(Index)=3");
    /* an extra group, and NULL vs the string "null" */
    expect_diff("{\"gt\":null,", "{\"gt\":\"null\",", "unexpected group {gt=\"null\"}");
    expect_diff("{\"gt\":\"walk\",", "{\"gt\":\"bike\",", "unexpected group {gt=\"bike\"}");
    /* an integer off by one; an integer printed as a double */
    expect_diff("\"count\":3,", "\"count\":4,", "group {gt=\"stand\"}: count: expected 3, got 4");
    expect_diff("\"count\":3,", "\"count\":3.0,", "count: expected 3, got 3.0 (not an integer)");
    /* a double too far off */
    expect_diff("\"avg(x)\":0.5,", "\"avg(x)\":0.5001,", "avg(x): expected 0.5, got 0.5001");
    /* NULL where a value belongs, and the other way round */
    expect_diff("\"sum(Index)\":13,", "\"sum(Index)\":null,",
                "sum(Index): expected 13, got null");
    expect_diff("\"sum(Index)\":null,", "\"sum(Index)\":0,",
                "group {gt=\"7\"}: sum(Index): expected null, got 0");
    /* a key missing, a key too many */
    expect_diff("\"count\":5,", "", "no key \"count\" (expected 5)");
    expect_diff("\"count\":5,", "\"count\":5,\"extra\":1,", "unexpected key \"extra\"");
    expect_diff("{\"gt\":\"7\",", "{", "has no key \"gt\"");
    /* a group key of the wrong type */
    expect_diff("{\"gt\":\"7\",", "{\"gt\":7,", "\"gt\" should be a string or null, got 7");
    /* a line that is not JSON */
    expect_diff("\"max(x)\":5.0,", "\"max(x)\":5.0,,", "output line 1 is not a JSON object");
}

Test(compare, duplicates_and_long_reports)
{
    char *twice = malloc(2 * sizeof HAND_EXPECTED);
    strcpy(twice, HAND_EXPECTED);
    strcat(twice, HAND_EXPECTED);
    char *diff = hand_diff(twice, 1e-9);
    cr_expect(diff != NULL && strstr(diff, "group {gt=null} appears twice (output lines 1 and 5)"),
              "%s", diff ? diff : "(equal)");
    cr_expect(diff != NULL && strstr(diff, "4 differences") != NULL, "%s", diff);
    free(diff);
    free(twice);

    /* 30 groups missing: the report shows 20 and counts the rest. */
    static const char *const by[] = {"Index"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    static const char *const names[] = {"Index", "count"};
    oracle_t *o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    oracle_set_type(o, "Index", ORACLE_BIGINT);
    char line[64];
    for (int i = 0; i < 30; i++) {
        int n = snprintf(line, sizeof line, "{\"Index\":%d}\n", i);
        oracle_add_text(o, line, (size_t)n);
    }
    cr_expect_eq(oracle_compare_jsonl(o, names, "", 0, &diff), 1);
    cr_expect(strstr(diff, "30 differences") != NULL && strstr(diff, "... and 10 more") != NULL &&
                  strstr(diff, "missing group {Index=0}: expected count=1") != NULL,
              "%s", diff);
    free(diff);
    oracle_destroy(&o);
}

/* ---- the generator ------------------------------------------------------------ */

static bool same_files(const char *a, const char *b)
{
    size_t na, nb;
    char **fa = dir_names(a, &na), **fb = dir_names(b, &nb);
    bool same = na == nb && na > 0;
    for (size_t i = 0; same && i < na; i++) {
        size_t la, lb;
        char *da = read_in(a, fa[i], &la), *db = read_in(b, fb[i], &lb);
        same = strcmp(fa[i], fb[i]) == 0 && la == lb && memcmp(da, db, la) == 0;
        free(da);
        free(db);
    }
    free_names(fa, na);
    free_names(fb, nb);
    return same;
}

Test(gen, same_seed_same_bytes)
{
    char *d1 = ts_tmpdir("gen-a"), *d2 = ts_tmpdir("gen-b"), *d3 = ts_tmpdir("gen-c");
    const char *dirty7[] = {"--files", "3", "--rows-per-file", "3000", "--seed", "7",
                            "--dirty", NULL};
    const char *dirty8[] = {"--files", "3", "--rows-per-file", "3000", "--seed", "8",
                            "--dirty", NULL};
    gen_summary_t s1 = gen_run(d1, dirty7);
    gen_summary_t s2 = gen_run(d2, dirty7);
    gen_run(d3, dirty8);
    cr_expect(same_files(d1, d2), "same seed, different bytes");
    cr_expect(!same_files(d1, d3), "seeds 7 and 8 gave the same bytes");
    cr_expect_eq(s1.bytes, s2.bytes);
    cr_expect_eq(s1.files, 3);

    /* --bytes too, into the directories again (files are replaced). */
    const char *bytes5[] = {"--bytes", "1M", "--files", "2", "--seed", "5", NULL};
    gen_run(d1, bytes5);
    gen_run(d2, bytes5);
    cr_expect(same_files(d1, d2), "--bytes: same seed, different bytes");
    char *dirs[] = {d1, d2, d3};
    for (size_t i = 0; i < 3; i++) {
        ts_rmtree(dirs[i]);
        free(dirs[i]);
    }
}

static const char *const ACTIVITIES[] = {"stand", "sit", "walk", "stairsup", "stairsdown",
                                         "bike"};
static const char *const DEVICES[] = {"nexus4_1", "nexus4_2", "s3_1", "s3_2",
                                      "s3mini_1", "s3mini_2", "samsungold_1", "samsungold_2"};

static int index_of(const char *s, const char *const *set, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return i;
    return -1;
}

static int significant_digits(const char *num)
{
    int n = 0;
    bool leading = true;
    for (const char *p = num; *p && *p != 'E'; p++) {
        if (*p < '0' || *p > '9')
            continue;
        if (*p != '0')
            leading = false;
        n += !leading;
    }
    return n;
}

Test(gen, clean_lines_are_json_of_the_documented_shape)
{
    char *dir = ts_tmpdir("gen-clean");
    const char *args[] = {"--files", "4", "--rows-per-file", "2500", "--seed", "3",
                          "--start-time", "1424686735090", NULL};
    gen_summary_t s = gen_run(dir, args);
    cr_assert_eq(s.rows, 10000);
    cr_assert_eq(s.malformed + s.blank, 0);

    regex_t dec, sci;
    cr_assert_eq(regcomp(&dec, "^-?(0|[1-9][0-9]*)\\.[0-9]+$", REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regcomp(&sci, "^-?[1-9]\\.[0-9]+E-[1-9][0-9]*$", REG_EXTENDED | REG_NOSUB), 0);
    static const char *const keys[] = {"Arrival_Time", "Creation_Time", "Device", "Index",
                                       "Model", "User", "gt", "x", "y", "z"};
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    int64_t last_arrival = 0, next_index[8] = {0};
    uint64_t rows = 0, nulls = 0, sci_seen = 0;
    size_t nf;
    char **files = dir_names(dir, &nf);
    cr_assert_eq(nf, 4);
    for (size_t f = 0; f < nf; f++) {
        size_t len;
        char *data = read_in(dir, files[f], &len);
        cr_assert(len > 0 && data[len - 1] == '\n', "%s does not end with a newline", files[f]);
        cr_assert(memchr(data, '\r', len) == NULL);
        const char *p = data, *line;
        size_t ll;
        while (next_line(&p, data + len, &line, &ll)) {
            json_tokener_reset(tok);
            json_object *j = json_tokener_parse_ex(tok, line, (int)ll);
            cr_assert(j != NULL && json_object_is_type(j, json_type_object) &&
                          json_tokener_get_parse_end(tok) == ll,
                      "not one JSON object: %.*s", (int)ll, line);
            rows++;
            size_t k = 0;
            json_object_object_foreach(j, key, val) {
                if (k == 6 && strcmp(key, "gt") != 0)
                    k++; /* no gt on this row */
                cr_assert(k < 10 && strcmp(key, keys[k]) == 0, "key %zu is %s in %.*s", k, key,
                          (int)ll, line);
                k++;
                (void)val;
            }
            json_object *v;
            json_object_object_get_ex(j, "Arrival_Time", &v);
            const char *arr = json_object_get_string(v);
            int64_t arrival = json_object_get_int64(v);
            cr_assert(json_object_is_type(v, json_type_int) && strlen(arr) == 13, "%s", arr);
            cr_assert(arrival >= last_arrival, "Arrival_Time went back: %.*s", (int)ll, line);
            if (rows == 1)
                cr_assert_eq(arrival, INT64_C(1424686735090));
            last_arrival = arrival;
            json_object_object_get_ex(j, "Creation_Time", &v);
            int64_t created = json_object_get_int64(v);
            cr_assert(strlen(json_object_get_string(v)) == 19 &&
                          created < arrival * 1000000 && created > arrival * 1000000 - 3000000000,
                      "Creation_Time %" PRId64 " vs Arrival_Time %" PRId64, created, arrival);
            json_object_object_get_ex(j, "Device", &v);
            const char *dev = json_object_get_string(v);
            int d = index_of(dev, DEVICES, 8);
            cr_assert(d >= 0, "Device %s", dev);
            json_object_object_get_ex(j, "Model", &v);
            const char *model = json_object_get_string(v);
            cr_assert(strncmp(dev, model, strlen(model)) == 0 && dev[strlen(model)] == '_',
                      "Model %s of Device %s", model, dev);
            json_object_object_get_ex(j, "Index", &v);
            cr_assert_eq(json_object_get_int64(v), next_index[d], "Index of %s", dev);
            next_index[d]++;
            json_object_object_get_ex(j, "User", &v);
            const char *user = json_object_get_string(v);
            cr_assert(strlen(user) == 1 && user[0] >= 'a' && user[0] <= 'i', "User %s", user);
            if (json_object_object_get_ex(j, "gt", &v))
                cr_assert(index_of(json_object_get_string(v), ACTIVITIES, 6) >= 0, "gt %s",
                          json_object_get_string(v));
            else
                nulls++;
            for (const char *axis = "xyz"; *axis; axis++) {
                char name[2] = {*axis, 0};
                json_object_object_get_ex(j, name, &v);
                const char *t = json_object_get_string(v); /* json-c keeps the text */
                bool is_sci = regexec(&sci, t, 0, NULL, 0) == 0;
                sci_seen += is_sci;
                cr_assert(json_object_is_type(v, json_type_double) &&
                              (regexec(&dec, t, 0, NULL, 0) == 0 || is_sci) &&
                              significant_digits(t) <= 8,
                          "%s = %s", name, t);
                double a = fabs(json_object_get_double(v));
                cr_assert(is_sci ? a < 1e-3 : (a == 0 || (a >= 1e-3 && a < 1e7)), "%s", t);
            }
            json_object_put(j);
        }
        free(data);
    }
    cr_expect_eq(rows, 10000);
    cr_expect_eq(nulls, s.null_gt);
    cr_expect(sci_seen > 0, "no value in E notation in 30000");
    free_names(files, nf);
    json_tokener_free(tok);
    regfree(&dec);
    regfree(&sci);

    /* The oracle sees the same: every line a row, none malformed. */
    oracle_t *o = count_by_gt();
    cr_assert_eq(oracle_add_dir(o, dir), 0, "%s", oracle_error(o));
    oracle_stats_t st = oracle_stats(o);
    cr_expect_eq(st.rows, 10000);
    cr_expect_eq(st.malformed + st.blank + st.type_errors + st.parser_disagreements, 0);
    cr_expect_eq(oracle_groups(o), 7); /* six activities and NULL */
    cr_expect_eq(null_group_count(o), (int64_t)s.null_gt);
    oracle_destroy(&o);
    ts_rmtree(dir);
    free(dir);
}

static double null_share_of(const char *share)
{
    char *dir = ts_tmpdir("gen-null");
    const char *args[] = {"--rows-per-file", "20000", "--null-share", share, "--seed", "11",
                          NULL};
    gen_summary_t s = gen_run(dir, args);
    size_t len;
    char *data = read_in(dir, "part-00000.json", &len);
    uint64_t without = 0;
    const char *p = data, *line;
    size_t ll;
    while (next_line(&p, data + len, &line, &ll))
        without += memmem(line, ll, "\"gt\":", 5) == NULL;
    cr_expect_eq(without, s.null_gt);
    free(data);
    ts_rmtree(dir);
    free(dir);
    return (double)without / (double)s.rows;
}

Test(gen, null_share_is_as_requested)
{
    double d = null_share_of("0.07");
    cr_expect(d > 0.06 && d < 0.08, "share %.4f for 0.07", d);
    d = null_share_of("0.3");
    cr_expect(d > 0.28 && d < 0.32, "share %.4f for 0.3", d);
    cr_expect_eq(null_share_of("0"), 0.0);
    cr_expect_eq(null_share_of("1"), 1.0);
}

/* Crude but sufficient: the bytes the generator uses to break UTF-8. */
static bool has_bad_utf8(const char *s, size_t n)
{
    static const char *const marks[] = {"\xff", "\xc3\x28", "\xed\xa0\x80", "\xc0\xaf",
                                        "\xf5\x80", "\xe2\x82\"", "\xf0\x9f\x98\""};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (memmem(s, n, marks[i], strlen(marks[i])) != NULL)
            return true;
    return false;
}

static bool line_has(const char *line, size_t n, const char *s)
{
    return memmem(line, n, s, strlen(s)) != NULL;
}

Test(gen, dirty_lines_of_every_advertised_kind)
{
    char *dir = ts_tmpdir("gen-dirty");
    const char *args[] = {"--files", "6", "--rows-per-file", "4000", "--seed", "5", "--dirty",
                          NULL};
    gen_summary_t s = gen_run(dir, args);
    enum { CRLF, BLANK_EMPTY, BLANK_SPACE, NUL, BAD_UTF8, ESC_VALUE, ESC_KEY, WRONG_INDEX,
           WRONG_X, GT_NULL, TRUNCATED, BAD_QUOTE, SINGLE_QUOTE, NAN_TOKEN, NOT_OBJECT,
           DUP_KEY, NKINDS };
    static const char *const kind_names[] = {
        "CRLF", "empty line", "whitespace line", "NUL byte", "invalid UTF-8", "escaped gt value",
        "escaped gt key", "Index string", "x string", "gt null", "truncated", "bad quote",
        "single quote", "NaN", "not an object", "duplicate gt"};
    int seen[NKINDS] = {0};
    const char *escaped_gt_line = NULL;
    size_t escaped_gt_len = 0;
    char *escaped_data = NULL;
    size_t nf;
    char **files = dir_names(dir, &nf);
    cr_assert_eq(nf, 6);
    for (size_t f = 0; f < nf; f++) {
        cr_assert(files[f][0] != '.', "a temporary file was left: %s", files[f]);
        size_t len;
        char *data = read_in(dir, files[f], &len);
        /* Odd files end without a final newline, on a whole row. */
        if (f % 2 == 1)
            cr_expect(data[len - 1] == '}', "%s should end in '}' without '\\n'", files[f]);
        else
            cr_expect(data[len - 1] == '\n', "%s should end with a newline", files[f]);
        const char *p = data, *line;
        size_t ll;
        while (next_line(&p, data + len, &line, &ll)) {
            seen[CRLF] += ll > 1 && line[ll - 1] == '\r' && line[ll - 2] == '}';
            seen[BLANK_EMPTY] += ll == 0;
            seen[BLANK_SPACE] += ll > 0 && strspn(line, " \t\r") >= ll;
            seen[NUL] += memchr(line, '\0', ll) != NULL;
            seen[BAD_UTF8] += has_bad_utf8(line, ll);
            bool esc_value = false;
            for (const char *q = line; (q = memmem(q, ll - (size_t)(q - line), "t\":\"", 4));
                 q++) {
                const char *close = memchr(q + 4, '"', ll - (size_t)(q + 4 - line));
                esc_value |= close && memmem(q + 4, (size_t)(close - q - 4), "\\u00", 4);
            }
            if (esc_value && escaped_gt_line == NULL && line_has(line, ll, "\"gt\":\"")) {
                escaped_data = data;
                escaped_gt_line = line;
                escaped_gt_len = ll;
            }
            seen[ESC_VALUE] += esc_value;
            seen[ESC_KEY] += line_has(line, ll, "\"\\u0067t\"") || line_has(line, ll, "\"g\\u0074\"");
            seen[WRONG_INDEX] += line_has(line, ll, "\"Index\":\"abc\"");
            seen[WRONG_X] += line_has(line, ll, "\"x\":\"oops\"");
            seen[GT_NULL] += line_has(line, ll, "\"gt\":null");
            seen[TRUNCATED] += ll > 0 && line[0] == '{' && line[ll - 1] != '}' &&
                               line[ll - 1] != '\r' && line[ll - 1] != ' ' &&
                               line[ll - 1] != '\t' && line[ll - 1] != ',' &&
                               memchr(line, '\0', ll) == NULL;
            seen[BAD_QUOTE] += line_has(line, ll, "{Arrival_Time\"") || line_has(line, ll, ":\"\"");
            seen[SINGLE_QUOTE] += line_has(line, ll, "'");
            seen[NAN_TOKEN] += line_has(line, ll, ":NaN");
            seen[NOT_OBJECT] += ll > 0 && (line[0] == '[' || line[0] == '"' || line[0] == '4');
            seen[DUP_KEY] += line_has(line, ll, "{\"gt\":\"") &&
                             memmem(line + 5, ll - 5, "\"gt\":", 5) != NULL;
        }
        if (data != escaped_data)
            free(data);
    }
    free_names(files, nf);
    for (int k = 0; k < NKINDS; k++)
        cr_expect(seen[k] > 0, "no line of kind '%s' in 24000", kind_names[k]);
    cr_expect(s.malformed > 24000 / 100 && s.malformed < 24000 / 20, "malformed %" PRIu64,
              s.malformed);

    /* "st\u0061nd" counts as "stand". */
    cr_assert_not_null(escaped_gt_line);
    oracle_t *o = count_by_gt();
    oracle_add_text(o, escaped_gt_line, escaped_gt_len);
    oracle_value_t gt;
    cr_assert_eq(oracle_groups(o), 1);
    oracle_group_value(o, 0, 0, &gt);
    char gts[32] = "";
    if (!gt.is_null && gt.u.s.len < sizeof gts)
        memcpy(gts, gt.u.s.ptr, gt.u.s.len);
    cr_expect(index_of(gts, ACTIVITIES, 6) >= 0, "gt of %.*s is '%s'", (int)escaped_gt_len,
              escaped_gt_line, gts);
    oracle_destroy(&o);
    free(escaped_data);
    ts_rmtree(dir);
    free(dir);
}

Test(gen, summary_agrees_with_the_oracle)
{
    char *dir = ts_tmpdir("gen-agree");
    const char *args[] = {"--files", "6", "--rows-per-file", "3000", "--seed", "21", "--dirty",
                          "--null-share", "0.1", NULL};
    gen_summary_t s = gen_run(dir, args);
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "Index"},
                                        {ORACLE_AVG, "x"}};
    oracle_t *o = oracle_new(by, 1, aggs, 3, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    cr_assert_eq(oracle_add_dir(o, dir), 0, "%s", oracle_error(o));
    oracle_stats_t st = oracle_stats(o);
    cr_expect_eq(st.rows, s.rows);
    cr_expect_eq(st.malformed, s.malformed);
    cr_expect_eq(st.blank, s.blank);
    cr_expect_eq(st.lines, 6 * 3000); /* the last line without '\n' counts too */
    cr_expect_eq(st.parser_disagreements, 0);
    cr_expect(st.type_errors > 0);
    cr_expect_eq(null_group_count(o), (int64_t)s.null_gt);
    int64_t total = 0;
    for (size_t g = 0; g < oracle_groups(o); g++) {
        oracle_value_t k, c;
        oracle_group_value(o, g, 0, &k);
        oracle_group_value(o, g, 1, &c);
        total += c.u.i;
        char name[32] = "";
        if (!k.is_null && k.u.s.len < sizeof name)
            memcpy(name, k.u.s.ptr, k.u.s.len);
        cr_expect(k.is_null || index_of(name, ACTIVITIES, 6) >= 0 || strcmp(name, "12") == 0,
                  "unexpected gt group '%s'", name);
    }
    cr_expect_eq(total, (int64_t)s.rows);
    oracle_destroy(&o);
    ts_rmtree(dir);
    free(dir);
}

Test(gen, bytes_files_mtimes_and_interval)
{
    char *dir = ts_tmpdir("gen-bytes");
    const char *args[] = {"--bytes", "3M", "--files", "3", "--prefix", "act-", NULL};
    gen_summary_t s = gen_run(dir, args);
    cr_expect_eq(s.files, 3);
    cr_expect(s.bytes >= 3 << 20 && s.bytes < (3 << 20) + 400, "bytes %" PRIu64, s.bytes);
    size_t nf;
    char **files = dir_names(dir, &nf);
    cr_assert_eq(nf, 3);
    struct timespec prev = {0, 0};
    uint64_t sum = 0;
    for (size_t i = 0; i < nf; i++) {
        char want[32], path[4096];
        snprintf(want, sizeof want, "act-%05zu.json", i);
        cr_expect_str_eq(files[i], want);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_expect(llabs((long long)st.st_size - (1 << 20)) < 400, "%s: %lld bytes",
                  files[i], (long long)st.st_size);
        sum += (uint64_t)st.st_size;
        cr_expect(st.st_mtim.tv_sec > prev.tv_sec ||
                      (st.st_mtim.tv_sec == prev.tv_sec && st.st_mtim.tv_nsec > prev.tv_nsec),
                  "mtime of %s is not after the previous file's", files[i]);
        prev = st.st_mtim;
    }
    cr_expect_eq(sum, s.bytes);
    free_names(files, nf);
    ts_rmtree(dir);
    free(dir);

    /* --interval-ms: three files take at least two intervals. */
    dir = ts_tmpdir("gen-interval");
    const char *slow[] = {"--files", "3", "--rows-per-file", "10", "--interval-ms", "150", NULL};
    long long t0 = ts_now_ms();
    gen_run(dir, slow);
    cr_expect(ts_now_ms() - t0 >= 300, "took %lld ms", ts_now_ms() - t0);
    ts_rmtree(dir);
    free(dir);
}

Test(gen, bad_arguments)
{
    const char *gen = ts_env("SPATE_GEN");
    char *err = NULL;
    const char *both[] = {gen, "--out", "/tmp/x", "--bytes", "1M", "--rows-per-file", "5", NULL};
    cr_expect_eq(ts_run(both, 10000, NULL, &err), 2);
    cr_expect(strstr(err, "not both") != NULL, "%s", err);
    free(err);
    const char *no_out[] = {gen, "--files", "2", NULL};
    cr_expect_eq(ts_run(no_out, 10000, NULL, &err), 2);
    cr_expect(strstr(err, "--out") != NULL, "%s", err);
    free(err);
    const char *bad_share[] = {gen, "--out", "/tmp/x", "--null-share", "1.5", NULL};
    cr_expect_eq(ts_run(bad_share, 10000, NULL, &err), 2);
    cr_expect(strstr(err, "--null-share") != NULL, "%s", err);
    free(err);
}
