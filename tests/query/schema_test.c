/* tests/query/schema_test.c -- the --schema text form, name resolution and
 * inference (widening as Spark does). */
#include <criterion/criterion.h>
#include <string.h>

#include "schema.h"

Test(schema, parses_and_formats_back)
{
    schema_t *s = NULL;
    sp_err_t err;
    cr_assert_eq(schema_parse("Arrival_Time BIGINT, gt STRING,x double , ok bool, `odd name` TEXT", &s, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(s->ncols, 5);
    cr_assert_str_eq(s->cols[0].name, "Arrival_Time");
    cr_assert_eq(s->cols[0].type, SP_TYPE_BIGINT);
    cr_assert_eq(s->cols[2].type, SP_TYPE_DOUBLE);
    cr_assert_eq(s->cols[3].type, SP_TYPE_BOOLEAN);
    cr_assert_str_eq(s->cols[4].name, "odd name");
    char *text = schema_format(s);
    cr_assert_str_eq(text, "Arrival_Time BIGINT, gt STRING, x DOUBLE, ok BOOLEAN, `odd name` STRING");
    schema_t *again = NULL;
    cr_assert_eq(schema_parse(text, &again, &err), 0);
    cr_assert(schema_equal(s, again));
    free(text);
    schema_destroy(&s);
    schema_destroy(&again);
    schema_destroy(&again); /* safe twice */
}

Test(schema, errors_point_at_the_problem)
{
    schema_t *s = NULL;
    sp_err_t err;
    cr_assert_eq(schema_parse("a BIGINT, b STRNG", &s, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "column 13") && strstr(err.msg, "STRNG"), "%s", err.msg);
    cr_assert_eq(schema_parse("a BIGINT,", &s, &err), SP_EINVAL);
    cr_assert_eq(schema_parse("", &s, &err), SP_EINVAL);
    cr_assert_eq(schema_parse("a", &s, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "expected a type"), "%s", err.msg);
    cr_assert_eq(schema_parse("a BIGINT b STRING", &s, &err), SP_EINVAL);
    cr_assert_eq(schema_parse("a BIGINT, a STRING", &s, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    cr_assert_eq(schema_parse("`a BIGINT", &s, &err), SP_EINVAL);
    cr_assert_null(s);
}

Test(schema, resolves_names_like_sql)
{
    schema_t *s = NULL;
    sp_err_t err;
    cr_assert_eq(schema_parse("gt STRING, Gt BIGINT, User STRING", &s, &err), 0);
    cr_assert_eq(schema_find(s, "gt", 2), 0, "exact match first");
    cr_assert_eq(schema_find(s, "Gt", 2), 1);
    cr_assert_eq(schema_find(s, "GT", 2), -2, "ambiguous case-insensitively");
    cr_assert_eq(schema_find(s, "user", 4), 2);
    cr_assert_eq(schema_find(s, "nope", 4), -1);
    schema_destroy(&s);
}

static void feed(schema_infer_t *si, const char *line) { schema_infer_line(si, line, strlen(line)); }

Test(schema, inference_widens_and_sorts_like_spark)
{
    schema_infer_t *si = schema_infer_new();
    feed(si, "{\"x\":1,\"gt\":\"sit\",\"n\":null,\"b\":true,\"mix\":1,\"obj\":{\"a\":1}}");
    feed(si, "{\"x\":2.5,\"mix\":\"text\",\"b\":false,\"Arrival_Time\":1424686735090}");
    feed(si, "not json");
    feed(si, "[1,2]");
    feed(si, "");
    cr_assert_eq(schema_infer_rows(si), 2, "only objects count");
    schema_t *s = schema_infer_result(si);
    cr_assert_not_null(s);
    char *text = schema_format(s);
    cr_assert_str_eq(text, "Arrival_Time BIGINT, b BOOLEAN, gt STRING, mix STRING, n STRING, obj STRING, x DOUBLE");
    free(text);
    schema_destroy(&s);
    schema_infer_destroy(&si);

    si = schema_infer_new();
    feed(si, "garbage");
    cr_assert_null(schema_infer_result(si), "no object, no schema");
    schema_infer_destroy(&si);
}
