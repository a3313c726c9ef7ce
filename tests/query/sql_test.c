/* tests/query/sql_test.c -- the SQL parser: every construct of the grammar
 * in query/sql.h, every syntax error with its exact line and column, and
 * robustness against random bytes, token soups and damaged queries. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_util.h"
#include "sql.h"

static sql_stmt_t *parse_ok(const char *sql)
{
    sql_stmt_t *st = NULL;
    sp_err_t err = {0};
    int rc = sql_parse(sql, &st, &err);
    cr_assert_eq(rc, 0, "parse of [%s] failed: %s", sql, err.msg);
    cr_assert_not_null(st);
    return st;
}

static void parse_fails(const char *sql, const char *message)
{
    sql_stmt_t *st = (sql_stmt_t *)1;
    sp_err_t err = {0};
    int rc = sql_parse(sql, &st, &err);
    cr_assert_eq(rc, SP_EPARSE, "[%s] parsed (rc %d)", sql, rc);
    cr_assert_null(st);
    cr_assert_str_eq(err.msg, message, "for [%s]\n got: %s", sql, err.msg);
}

/* The WHERE condition of "SELECT count(*) FROM t WHERE <cond>". */
static sql_stmt_t *parse_where(const char *cond)
{
    char *sql = sp_xasprintf("SELECT count(*) FROM t WHERE %s", cond);
    sql_stmt_t *st = parse_ok(sql);
    free(sql);
    cr_assert_not_null(st->where);
    return st;
}

/* The usage example: parse, read the tree, destroy. */
Test(sql, usage_example)
{
    const char *sql = "SELECT gt, count(*) AS n, sum(x)\n"
                      "FROM activity\n"
                      "WHERE Model = 'nexus4' AND x > 0.5\n"
                      "GROUP BY gt;";
    sql_stmt_t *st = NULL;
    sp_err_t err = {0};
    cr_assert_eq(sql_parse(sql, &st, &err), 0, "%s", err.msg);

    cr_assert_eq(st->nitems, 3);
    cr_assert_eq(st->items[0].agg, SQL_AGG_NONE);
    cr_assert_str_eq(st->items[0].column, "gt");
    cr_assert_null(st->items[0].alias);
    cr_assert_eq(st->items[1].agg, SQL_AGG_COUNT_STAR);
    cr_assert_null(st->items[1].column);
    cr_assert_str_eq(st->items[1].alias, "n");
    cr_assert_str_eq(st->items[1].text, "count(*)");
    cr_assert_eq(st->items[2].agg, SQL_AGG_SUM);
    cr_assert_str_eq(st->items[2].column, "x");
    cr_assert_str_eq(st->items[2].text, "sum(x)");

    cr_assert_str_eq(st->from, "activity");
    cr_assert_eq(st->from_pos, 38);

    sql_expr_t *w = st->where;
    cr_assert_eq(w->kind, SQL_EXPR_AND);
    cr_assert_eq(w->args[0]->kind, SQL_EXPR_CMP);
    cr_assert_eq(w->args[0]->op, SQL_CMP_EQ);
    cr_assert_str_eq(w->args[0]->args[0]->column, "Model");
    cr_assert_eq(w->args[0]->args[1]->literal.type, SP_TYPE_STRING);
    cr_assert_eq(w->args[0]->args[1]->literal.u.s.len, 6);
    cr_assert_eq(memcmp(w->args[0]->args[1]->literal.u.s.ptr, "nexus4", 6), 0);
    cr_assert_eq(w->args[1]->op, SQL_CMP_GT);
    cr_assert_eq(w->args[1]->args[1]->literal.type, SP_TYPE_DOUBLE);
    cr_assert_float_eq(w->args[1]->args[1]->literal.u.d, 0.5, 0);

    cr_assert_eq(st->ngroups, 1);
    cr_assert_str_eq(st->groups[0].column, "gt");
    cr_assert_str_eq(st->text, sql);

    sql_stmt_destroy(&st);
    cr_assert_null(st);
    sql_stmt_destroy(&st); /* safe twice */
    sql_stmt_destroy(NULL);
}

/* ---- the SELECT list -------------------------------------------------------- */

Test(sql, keywords_and_functions_are_case_insensitive)
{
    sql_stmt_t *st = parse_ok("select Gt, COUNT(*), Sum(X), mIn(y), MAX(z), avg(w) as A "
                              "From activity wHeRe x iS nOt NuLl GrOuP bY Gt");
    cr_assert_eq(st->nitems, 6);
    sql_agg_func_t want[] = {SQL_AGG_NONE, SQL_AGG_COUNT_STAR, SQL_AGG_SUM,
                             SQL_AGG_MIN,  SQL_AGG_MAX,        SQL_AGG_AVG};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(st->items[i].agg, want[i], "item %zu", i);
    cr_assert_str_eq(st->items[0].column, "Gt"); /* identifiers keep their case */
    cr_assert_str_eq(st->items[2].column, "X");
    cr_assert_str_eq(st->items[2].text, "Sum(X)");
    cr_assert_str_eq(st->items[5].alias, "A");
    cr_assert_eq(st->where->kind, SQL_EXPR_IS_NULL);
    cr_assert(st->where->negated);
    cr_assert_str_eq(st->groups[0].column, "Gt");
    sql_stmt_destroy(&st);
}

Test(sql, count_of_a_column_and_positions)
{
    sql_stmt_t *st = parse_ok("SELECT  count( Model ) FROM t");
    cr_assert_eq(st->items[0].agg, SQL_AGG_COUNT);
    cr_assert_str_eq(st->items[0].column, "Model");
    cr_assert_eq(st->items[0].pos, 8);
    cr_assert_eq(st->items[0].column_pos, 15);
    cr_assert_str_eq(st->items[0].text, "count( Model )"); /* as written */
    sql_stmt_destroy(&st);

    st = parse_ok("SELECT count ( * ) FROM t");
    cr_assert_eq(st->items[0].agg, SQL_AGG_COUNT_STAR);
    cr_assert_str_eq(st->items[0].text, "count ( * )");
    sql_stmt_destroy(&st);
}

Test(sql, function_names_are_not_reserved)
{
    sql_stmt_t *st = parse_ok("SELECT count, sum(count) FROM t GROUP BY count");
    cr_assert_eq(st->items[0].agg, SQL_AGG_NONE);
    cr_assert_str_eq(st->items[0].column, "count");
    cr_assert_eq(st->items[1].agg, SQL_AGG_SUM);
    cr_assert_str_eq(st->items[1].column, "count");
    sql_stmt_destroy(&st);
}

Test(sql, aliases)
{
    sql_stmt_t *st = parse_ok("SELECT gt AS g, count(*) c, sum(x) `total x`, max(y) AS `m` FROM t GROUP BY gt");
    cr_assert_str_eq(st->items[0].alias, "g");
    cr_assert_str_eq(st->items[1].alias, "c");
    cr_assert_str_eq(st->items[2].alias, "total x");
    cr_assert_str_eq(st->items[3].alias, "m");
    sql_stmt_destroy(&st);

    st = parse_ok("SELECT count(*) n FROM t"); /* a bare alias right before FROM */
    cr_assert_str_eq(st->items[0].alias, "n");
    sql_stmt_destroy(&st);
}

Test(sql, quoted_identifiers)
{
    sql_stmt_t *st = parse_ok("SELECT `my col`, count(`we``ird`) FROM `activity` "
                              "WHERE `select` = 1 GROUP BY `my col`");
    cr_assert_str_eq(st->items[0].column, "my col");
    cr_assert_str_eq(st->items[1].column, "we`ird");
    cr_assert_str_eq(st->from, "activity");
    cr_assert_str_eq(st->where->args[0]->column, "select"); /* a keyword, quoted */
    cr_assert_str_eq(st->groups[0].column, "my col");
    sql_stmt_destroy(&st);

    st = parse_ok("SELECT count(*) FROM t GROUP BY Größe, _x1");
    cr_assert_str_eq(st->groups[0].column, "Größe"); /* UTF-8 names need no quotes */
    cr_assert_str_eq(st->groups[1].column, "_x1");
    sql_stmt_destroy(&st);
}

/* ---- literals --------------------------------------------------------------- */

static void check_string(const char *literal, const char *want, size_t wantlen)
{
    char *cond = sp_xasprintf("s = %s", literal);
    sql_stmt_t *st = parse_where(cond);
    const sp_value_t *v = &st->where->args[1]->literal;
    cr_assert_eq(v->type, SP_TYPE_STRING, "%s", literal);
    cr_assert_eq(v->u.s.len, wantlen, "%s: length %u", literal, v->u.s.len);
    cr_assert_eq(memcmp(v->u.s.ptr, want, wantlen), 0, "%s", literal);
    sql_stmt_destroy(&st);
    free(cond);
}

Test(sql, string_literals)
{
    check_string("'abc'", "abc", 3);
    check_string("\"abc\"", "abc", 3);
    check_string("''", "", 0);
    check_string("\"\"", "", 0);
    check_string("'it''s'", "it's", 4);
    check_string("\"say \"\"hi\"\"\"", "say \"hi\"", 8);
    check_string("'a\"b'", "a\"b", 3);
    check_string("\"a'b\"", "a'b", 3);
    check_string("'it\\'s'", "it's", 4);
    check_string("\"\\\"\"", "\"", 1);
    check_string("'a\\\\b'", "a\\b", 3);
    check_string("'\\n\\t\\r\\b'", "\n\t\r\b", 4);
    check_string("'a\\0b'", "a\0b", 3);
    check_string("'\\u00e9\\u20AC'", "\xc3\xa9\xe2\x82\xac", 5);
    check_string("'\\q\\%'", "q%", 2); /* any other escaped character stands for itself */
    check_string("'line\nbreak'", "line\nbreak", 10);
    check_string("'ünï'", "ünï", strlen("ünï"));
}

static sp_value_t literal_of(const char *text)
{
    char *cond = sp_xasprintf("x = %s", text);
    sql_stmt_t *st = parse_where(cond);
    sp_value_t v = st->where->args[1]->literal;
    cr_assert_neq(v.type, SP_TYPE_STRING);
    sql_stmt_destroy(&st);
    free(cond);
    return v;
}

static void check_bigint(const char *text, int64_t want)
{
    sp_value_t v = literal_of(text);
    cr_assert_eq(v.type, SP_TYPE_BIGINT, "%s: type %d", text, v.type);
    cr_assert_eq(v.u.i, want, "%s: %lld", text, (long long)v.u.i);
}

static void check_double(const char *text, double want)
{
    sp_value_t v = literal_of(text);
    cr_assert_eq(v.type, SP_TYPE_DOUBLE, "%s: type %d", text, v.type);
    cr_assert(v.u.d == want && signbit(v.u.d) == signbit(want), "%s: %.17g", text, v.u.d);
}

Test(sql, number_literals)
{
    check_bigint("0", 0);
    check_bigint("42", 42);
    check_bigint("-42", -42);
    check_bigint("+42", 42);
    check_bigint("- 7", -7);
    check_bigint("007", 7);
    check_bigint("9223372036854775807", INT64_MAX);
    check_bigint("-9223372036854775808", INT64_MIN);
    check_double("9223372036854775808", 9223372036854775808.0); /* beyond int64 */
    check_double("-9223372036854775809", -9223372036854775809.0);
    check_double("123456789012345678901234567890", 123456789012345678901234567890.0);
    check_double("1.5", 1.5);
    check_double("-1.5", -1.5);
    check_double(".5", 0.5);
    check_double("5.", 5.0);
    check_double("1e3", 1000.0);
    check_double("1E-3", 0.001);
    check_double("2.5e+2", 250.0);
    check_double("-0.0", -0.0);
    check_double("1e-400", 0.0); /* underflow rounds */
}

Test(sql, boolean_and_null_literals)
{
    sp_value_t v = literal_of("TRUE");
    cr_assert_eq(v.type, SP_TYPE_BOOLEAN);
    cr_assert(v.u.b);
    v = literal_of("false");
    cr_assert_eq(v.type, SP_TYPE_BOOLEAN);
    cr_assert(!v.u.b);
    v = literal_of("Null");
    cr_assert_eq(v.type, SP_TYPE_NULL);
}

/* ---- WHERE --------------------------------------------------------------------- */

Test(sql, comparison_operators)
{
    const struct {
        const char *text;
        sql_cmp_op_t op;
    } ops[] = {
        {"=", SQL_CMP_EQ}, {"==", SQL_CMP_EQ}, {"!=", SQL_CMP_NE}, {"<>", SQL_CMP_NE},
        {"<", SQL_CMP_LT}, {"<=", SQL_CMP_LE}, {">", SQL_CMP_GT},  {">=", SQL_CMP_GE},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        char *cond = sp_xasprintf("x %s 1", ops[i].text);
        sql_stmt_t *st = parse_where(cond);
        cr_assert_eq(st->where->kind, SQL_EXPR_CMP);
        cr_assert_eq(st->where->op, ops[i].op, "%s", ops[i].text);
        cr_assert_eq(st->where->pos, 31, "the operator's position");
        sql_stmt_destroy(&st);
        free(cond);
        cond = sp_xasprintf("x%s-1", ops[i].text); /* no spaces */
        st = parse_where(cond);
        cr_assert_eq(st->where->op, ops[i].op, "%s", ops[i].text);
        cr_assert_eq(st->where->args[1]->literal.u.i, -1);
        sql_stmt_destroy(&st);
        free(cond);
    }
}

Test(sql, operands_on_either_side)
{
    sql_stmt_t *st = parse_where("5 < x");
    cr_assert_eq(st->where->args[0]->kind, SQL_EXPR_LITERAL);
    cr_assert_eq(st->where->args[1]->kind, SQL_EXPR_COLUMN);
    sql_stmt_destroy(&st);
    st = parse_where("x = y AND 'a' = 'b'");
    cr_assert_eq(st->where->args[0]->args[1]->kind, SQL_EXPR_COLUMN);
    cr_assert_eq(st->where->args[1]->args[0]->kind, SQL_EXPR_LITERAL);
    sql_stmt_destroy(&st);
}

Test(sql, and_binds_tighter_than_or_and_not_tighter_than_and)
{
    sql_stmt_t *st = parse_where("a = 1 OR b = 2 AND NOT c = 3");
    sql_expr_t *w = st->where;
    cr_assert_eq(w->kind, SQL_EXPR_OR);
    cr_assert_eq(w->args[0]->kind, SQL_EXPR_CMP);
    cr_assert_eq(w->args[1]->kind, SQL_EXPR_AND);
    cr_assert_eq(w->args[1]->args[1]->kind, SQL_EXPR_NOT);
    cr_assert_eq(w->args[1]->args[1]->args[0]->kind, SQL_EXPR_CMP);
    cr_assert_eq(w->pos, 35, "OR's position");
    cr_assert_eq(w->args[1]->pos, 44, "AND's position");
    cr_assert_eq(w->args[1]->args[1]->pos, 48, "NOT's position");
    sql_stmt_destroy(&st);

    st = parse_where("(a = 1 OR b = 2) AND NOT (c = 3 OR NOT NOT d = 4)");
    w = st->where;
    cr_assert_eq(w->kind, SQL_EXPR_AND);
    cr_assert_eq(w->args[0]->kind, SQL_EXPR_OR);
    cr_assert_eq(w->args[1]->kind, SQL_EXPR_NOT);
    cr_assert_eq(w->args[1]->args[0]->kind, SQL_EXPR_OR);
    cr_assert_eq(w->args[1]->args[0]->args[1]->kind, SQL_EXPR_NOT);
    cr_assert_eq(w->args[1]->args[0]->args[1]->args[0]->kind, SQL_EXPR_NOT);
    sql_stmt_destroy(&st);
}

Test(sql, short_chains_are_left_deep)
{
    sql_stmt_t *st = parse_where("a = 1 AND b = 2 AND c = 3");
    sql_expr_t *w = st->where;
    cr_assert_eq(w->kind, SQL_EXPR_AND);
    cr_assert_eq(w->args[0]->kind, SQL_EXPR_AND);
    cr_assert_str_eq(w->args[0]->args[0]->args[0]->column, "a");
    cr_assert_str_eq(w->args[0]->args[1]->args[0]->column, "b");
    cr_assert_str_eq(w->args[1]->args[0]->column, "c");
    cr_assert_eq(w->pos, 45, "the second AND joins the last operand");
    cr_assert_eq(w->args[0]->pos, 35);
    sql_stmt_destroy(&st);
}

static size_t tree_depth(const sql_expr_t *e)
{
    if (e == NULL)
        return 0;
    size_t a = tree_depth(e->args[0]), b = tree_depth(e->args[1]);
    return 1 + (a > b ? a : b);
}

static void collect_columns(const sql_expr_t *e, char **names, size_t *n)
{
    if (e == NULL)
        return;
    if (e->kind == SQL_EXPR_COLUMN)
        names[(*n)++] = e->column;
    collect_columns(e->args[0], names, n);
    collect_columns(e->args[1], names, n);
}

Test(sql, long_chains_are_balanced_and_keep_their_order)
{
    enum { N = 20000 };
    sp_buf_t b = SP_BUF_INIT;
    sp_buf_printf(&b, "SELECT count(*) FROM t WHERE ");
    for (int i = 0; i < N; i++)
        sp_buf_printf(&b, "%sc%d = %d", i ? (i % 100 == 0 ? " OR " : " AND ") : "", i, i);
    sql_stmt_t *st = parse_ok(sp_buf_cstr(&b));
    cr_assert_leq(tree_depth(st->where), 30, "depth %zu", tree_depth(st->where));
    char **names = sp_xmalloc(N * sizeof(char *));
    size_t n = 0;
    collect_columns(st->where, names, &n);
    cr_assert_eq(n, N);
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "c%d", i);
        cr_assert_str_eq(names[i], want);
    }
    free(names);
    sql_stmt_destroy(&st);
    sp_buf_free(&b);
}

Test(sql, is_null_and_in)
{
    sql_stmt_t *st = parse_where("x IS NULL");
    cr_assert_eq(st->where->kind, SQL_EXPR_IS_NULL);
    cr_assert(!st->where->negated);
    cr_assert_eq(st->where->pos, 31, "IS's position");
    sql_stmt_destroy(&st);

    st = parse_where("'a' IS NOT NULL");
    cr_assert(st->where->negated);
    cr_assert_eq(st->where->args[0]->kind, SQL_EXPR_LITERAL);
    sql_stmt_destroy(&st);

    st = parse_where("gt IN ('sit', \"stand\", NULL, 'it''s')");
    sql_expr_t *w = st->where;
    cr_assert_eq(w->kind, SQL_EXPR_IN);
    cr_assert(!w->negated);
    cr_assert_eq(w->nlist, 4);
    cr_assert_eq(w->list[0].type, SP_TYPE_STRING);
    cr_assert_eq(w->list[1].u.s.len, 5);
    cr_assert_eq(w->list[2].type, SP_TYPE_NULL);
    cr_assert_eq(memcmp(w->list[3].u.s.ptr, "it's", 4), 0);
    sql_stmt_destroy(&st);

    st = parse_where("x NOT IN (-1, +2.5, 3e2, TRUE)");
    w = st->where;
    cr_assert(w->negated);
    cr_assert_eq(w->pos, 31, "NOT's position");
    cr_assert_eq(w->nlist, 4);
    cr_assert_eq(w->list[0].u.i, -1);
    cr_assert_float_eq(w->list[1].u.d, 2.5, 0);
    cr_assert_float_eq(w->list[2].u.d, 300.0, 0);
    cr_assert_eq(w->list[3].type, SP_TYPE_BOOLEAN);
    sql_stmt_destroy(&st);

    st = parse_where("x IN (1)");
    cr_assert_eq(st->where->nlist, 1);
    sql_stmt_destroy(&st);
}

Test(sql, group_by_semicolon_and_whitespace)
{
    sql_stmt_t *st = parse_ok("\t SELECT a, b, count(*)\r\nFROM t\fGROUP BY a, `b` ;  \n");
    cr_assert_eq(st->ngroups, 2);
    cr_assert_str_eq(st->groups[0].column, "a");
    cr_assert_str_eq(st->groups[1].column, "b");
    cr_assert_eq(st->groups[1].pos, 44);
    cr_assert_null(st->where);
    sql_stmt_destroy(&st);

    st = parse_ok("SELECT count(*) FROM t");
    cr_assert_eq(st->ngroups, 0);
    cr_assert_null(st->where);
    sql_stmt_destroy(&st);
}

Test(sql, nesting_up_to_the_limit)
{
    sp_buf_t b = SP_BUF_INIT;
    sp_buf_printf(&b, "SELECT count(*) FROM t WHERE ");
    for (int i = 0; i < 100; i++)
        sp_buf_printf(&b, "NOT (");
    sp_buf_printf(&b, "x = 1");
    for (int i = 0; i < 100; i++)
        sp_buf_putc(&b, ')');
    sql_stmt_t *st = parse_ok(sp_buf_cstr(&b));
    cr_assert_eq(tree_depth(st->where), 102);
    sql_stmt_destroy(&st);
    sp_buf_free(&b);
}

/* ---- positions ------------------------------------------------------------------ */

Test(sql, position_counts_lines_and_characters)
{
    const char *text = "ab\ncdé\n\nx";
    int line, col;
    sql_position(text, 0, &line, &col);
    cr_assert(line == 1 && col == 1);
    sql_position(text, 2, &line, &col);
    cr_assert(line == 1 && col == 3);
    sql_position(text, 3, &line, &col);
    cr_assert(line == 2 && col == 1);
    sql_position(text, 7, &line, &col); /* after the two bytes of é */
    cr_assert(line == 2 && col == 4, "%d:%d", line, col);
    sql_position(text, 9, &line, &col);
    cr_assert(line == 4 && col == 1);
    sql_position(text, 1000, &line, &col); /* clamps at the end */
    cr_assert(line == 4 && col == 2);
}

/* ---- errors --------------------------------------------------------------------- */

Test(sql, syntax_errors_point_at_the_position)
{
    const struct {
        const char *sql, *msg;
    } cases[] = {
        {"SELECT gt, count(*) FORM activity",
         "SQL syntax error at line 1, column 21: expected FROM, found 'FORM'"},
        {"SELECT gt, count(*) FORM activity GROUP BY gt",
         "SQL syntax error at line 1, column 21: expected FROM, found 'FORM'"},
        {"", "SQL syntax error at line 1, column 1: expected SELECT, found end of input"},
        {"   \n  ", "SQL syntax error at line 2, column 3: expected SELECT, found end of input"},
        {"SELEC x FROM t", "SQL syntax error at line 1, column 1: expected SELECT, found 'SELEC'"},
        {"SELECT", "SQL syntax error at line 1, column 7: expected a column or an aggregate, found end of input"},
        {"SELECT FROM t", "SQL syntax error at line 1, column 8: expected a column or an aggregate, found 'FROM'"},
        {"SELECT x,", "SQL syntax error at line 1, column 10: expected a column or an aggregate, found end of input"},
        {"SELECT x, FROM t", "SQL syntax error at line 1, column 11: expected a column or an aggregate, found 'FROM'"},
        {"SELECT x", "SQL syntax error at line 1, column 9: expected FROM, found end of input"},
        {"SELECT x y z FROM t", "SQL syntax error at line 1, column 10: expected FROM, found 'y'"},
        {"SELECT x AS FROM t", "SQL syntax error at line 1, column 13: expected an alias after AS, found 'FROM'"},
        {"SELECT x FROM", "SQL syntax error at line 1, column 14: expected a source name after FROM, found end of input"},
        {"SELECT x FROM 'activity'",
         "SQL syntax error at line 1, column 15: expected a source name after FROM, found ''activity''"},
        {"SELECT x FROM t x", "SQL syntax error at line 1, column 17: expected WHERE, GROUP BY or end of query, found 'x'"},
        {"SELECT x FROM t WHERE", "SQL syntax error at line 1, column 22: expected a column or a literal, found end of input"},
        {"SELECT x FROM t WHERE x", "SQL syntax error at line 1, column 24: expected a comparison (=, !=, <>, <, <=, >, >=), IS or IN, found end of input"},
        {"SELECT x FROM t WHERE x =", "SQL syntax error at line 1, column 26: expected a column or a literal, found end of input"},
        {"SELECT x FROM t WHERE x = 1 y", "SQL syntax error at line 1, column 29: expected AND, OR, GROUP BY or end of query, found 'y'"},
        {"SELECT x FROM t WHERE x = 1 AND", "SQL syntax error at line 1, column 32: expected a column or a literal, found end of input"},
        {"SELECT x FROM t WHERE (x = 1", "SQL syntax error at line 1, column 29: expected AND, OR or ')', found end of input"},
        {"SELECT x FROM t WHERE x = 1)", "SQL syntax error at line 1, column 28: expected AND, OR, GROUP BY or end of query, found ')'"},
        {"SELECT x FROM t WHERE (x) = 1", "SQL syntax error at line 1, column 25: expected a comparison (=, !=, <>, <, <=, >, >=), IS or IN, found ')'"},
        {"SELECT x FROM t WHERE x IS 1", "SQL syntax error at line 1, column 28: expected NULL or NOT NULL after IS, found '1'"},
        {"SELECT x FROM t WHERE x IS NOT", "SQL syntax error at line 1, column 31: expected NULL after IS NOT, found end of input"},
        {"SELECT x FROM t WHERE x NOT = 1", "SQL syntax error at line 1, column 29: expected IN after NOT, found '='"},
        {"SELECT x FROM t WHERE x IN 1", "SQL syntax error at line 1, column 28: expected '(' after IN, found '1'"},
        {"SELECT x FROM t WHERE x IN ()", "SQL syntax error at line 1, column 29: expected a literal in the IN list, found ')'"},
        {"SELECT x FROM t WHERE x IN (1,)", "SQL syntax error at line 1, column 31: expected a literal in the IN list, found ')'"},
        {"SELECT x FROM t WHERE x IN (1 2)", "SQL syntax error at line 1, column 31: expected ',' or ')' in the IN list, found '2'"},
        {"SELECT x FROM t WHERE x IN (y)", "SQL syntax error at line 1, column 29: expected a literal in the IN list, found 'y'"},
        {"SELECT x FROM t WHERE x = -y", "SQL syntax error at line 1, column 28: expected a number after '-', found 'y'"},
        {"SELECT x FROM t WHERE x = +'a'", "SQL syntax error at line 1, column 28: expected a number after '+', found ''a''"},
        {"SELECT x FROM t WHERE x = --1", "SQL syntax error at line 1, column 28: expected a number after '-', found '-'"},
        {"SELECT x FROM t GROUP x", "SQL syntax error at line 1, column 23: expected BY after GROUP, found 'x'"},
        {"SELECT x FROM t GROUP BY", "SQL syntax error at line 1, column 25: expected a column in GROUP BY, found end of input"},
        {"SELECT x FROM t GROUP BY x,", "SQL syntax error at line 1, column 28: expected a column in GROUP BY, found end of input"},
        {"SELECT x FROM t GROUP BY x y", "SQL syntax error at line 1, column 28: expected ',' or end of query, found 'y'"},
        {"SELECT x FROM t GROUP BY x WHERE x = 1", "SQL syntax error at line 1, column 28: expected ',' or end of query, found 'WHERE'"},
        {"SELECT x FROM t; SELECT", "SQL syntax error at line 1, column 18: expected end of query after ';', found 'SELECT'"},
        {"SELECT x FROM t;;", "SQL syntax error at line 1, column 17: expected end of query after ';', found ';'"},
        {"SELECT count(x FROM t", "SQL syntax error at line 1, column 16: expected ')', found 'FROM'"},
        {"SELECT count() FROM t", "SQL syntax error at line 1, column 14: expected a column, '*' or 1 in count(), found ')'"},
        {"SELECT sum(*) FROM t", "SQL syntax error at line 1, column 12: expected a column in sum(), found '*'"},
        {"SELECT avg(1) FROM t", "SQL syntax error at line 1, column 12: expected a column in avg(), found '1'"},
        {"SELECT count('a') FROM t", "SQL syntax error at line 1, column 14: expected a column, '*' or 1 in count(), found ''a''"},
        {"SELECT sum(x, y) FROM t", "SQL syntax error at line 1, column 13: expected ')', found ','"},
        {"SELECT x\nFROM t\nWHERE x = 'abc", "SQL syntax error at line 3, column 11: unterminated string literal"},
        {"SELECT x FROM t WHERE x = \"ab\\\"", "SQL syntax error at line 1, column 27: unterminated string literal"},
        {"SELECT x FROM t WHERE x = 'ab\\", "SQL syntax error at line 1, column 27: unterminated string literal"},
        {"SELECT `x FROM t", "SQL syntax error at line 1, column 8: unterminated quoted identifier"},
        {"SELECT `` FROM t", "SQL syntax error at line 1, column 8: empty quoted identifier"},
        {"SELECT `a\tb` FROM t", "SQL syntax error at line 1, column 10: control character 0x09 in a quoted identifier"},
        {"SELECT x FROM t WHERE x = '\\u12'", "SQL syntax error at line 1, column 28: \\u needs four hex digits"},
        {"SELECT x FROM t WHERE x = '\\uD800'", "SQL syntax error at line 1, column 28: \\uD800 is a surrogate, not a character"},
        {"SELECT x FROM t WHERE x = 12abc", "SQL syntax error at line 1, column 27: malformed number '12abc'"},
        {"SELECT x FROM t WHERE x = 1.2.3", "SQL syntax error at line 1, column 27: malformed number '1.2.3'"},
        {"SELECT x FROM t WHERE x = 1e", "SQL syntax error at line 1, column 27: malformed number '1e'"},
        {"SELECT x FROM t WHERE x = 1e+", "SQL syntax error at line 1, column 27: malformed number '1e+'"},
        {"SELECT x FROM t WHERE x = 1e999", "SQL syntax error at line 1, column 27: number '1e999' is out of range for DOUBLE"},
        {"SELECT x FROM t WHERE x = -1e999", "SQL syntax error at line 1, column 27: number '1e999' is out of range for DOUBLE"},
        {"SELECT x FROM t WHERE x ! 1", "SQL syntax error at line 1, column 25: unexpected character '!' (did you mean '!='?)"},
        {"SELECT x FROM t.u", "SQL syntax error at line 1, column 16: unexpected character '.'"},
        {"SELECT x FROM t WHERE x = @", "SQL syntax error at line 1, column 27: unexpected character '@'"},
        {"SELECT x FROM t WHERE x = \x01", "SQL syntax error at line 1, column 27: unexpected byte 0x01"},
        {"SELECT x\x7f FROM t", "SQL syntax error at line 1, column 9: unexpected byte 0x7f"},
        {"SELECT é\xff FROM t", "SQL syntax error at line 1, column 9: invalid UTF-8 byte 0xff"},
        {"SELECT \xc0\x80 FROM t", "SQL syntax error at line 1, column 8: invalid UTF-8 byte 0xc0"},
        {"SELECT \xed\xa0\x80 FROM t", "SQL syntax error at line 1, column 8: invalid UTF-8 byte 0xed"},
        {"SELECT x FROM t WHERE x = 'a\xe2\x82'", "SQL syntax error at line 1, column 29: invalid UTF-8 byte 0xe2"},
        {"SELECT x FROM t WHERE x = 'an extremely long string literal that goes on and on' y",
         "SQL syntax error at line 1, column 82: expected AND, OR, GROUP BY or end of query, found 'y'"},
        {"SELECT x FROM t WHERE x = 1 'an extremely long string literal that goes on and on'",
         "SQL syntax error at line 1, column 29: expected AND, OR, GROUP BY or end of query, "
         "found ''an extremely long string literal that g'..."},
        {"SELECT x FROM t WHERE x = 1 'two\nlines'",
         "SQL syntax error at line 1, column 29: expected AND, OR, GROUP BY or end of query, found ''two\\nlines''"},
        {"SELECT x FROM t WHERE x = 1 'ééééééééééééééééééééé'",
         "SQL syntax error at line 1, column 29: expected AND, OR, GROUP BY or end of query, "
         "found ''ééééééééééééééééééé'..."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_fails(cases[i].sql, cases[i].msg);
}

Test(sql, unsupported_sql_is_refused_by_name)
{
    const struct {
        const char *sql, *msg;
    } cases[] = {
        {"SELECT count(DISTINCT x) FROM t", "SQL error at line 1, column 14: count(DISTINCT ...) is not supported"},
        {"SELECT SUM(distinct x) FROM t", "SQL error at line 1, column 12: sum(DISTINCT ...) is not supported"},
        {"SELECT DISTINCT gt FROM t", "SQL error at line 1, column 8: SELECT DISTINCT is not supported: use GROUP BY"},
        {"SELECT * FROM t", "SQL error at line 1, column 8: SELECT * is not supported: name the grouping columns and the aggregates"},
        {"SELECT upper(gt) FROM t", "SQL error at line 1, column 8: unknown function 'upper' (spate runs count, sum, min, max and avg)"},
        {"SELECT gt, count(*) FROM t GROUP BY gt HAVING count(*) > 1", "SQL error at line 1, column 40: HAVING is not supported"},
        {"SELECT gt, count(*) FROM t GROUP BY gt ORDER BY gt", "SQL error at line 1, column 40: ORDER BY is not supported"},
        {"SELECT count(*) FROM t LIMIT 5", "SQL error at line 1, column 24: LIMIT is not supported"},
        {"SELECT count(*) FROM t JOIN u", "SQL error at line 1, column 24: JOIN is not supported"},
        {"SELECT count(*) FROM t WHERE x = 1 UNION SELECT 1", "SQL error at line 1, column 36: UNION is not supported"},
        {"SELECT count(*) FROM t WHERE length(x) > 1",
         "SQL error at line 1, column 30: function calls are not supported in WHERE, found 'length'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_fails(cases[i].sql, cases[i].msg);
}

Test(sql, nesting_is_capped)
{
    /* 200 levels parse; the 201st is refused where it opens. */
    const char *opens[] = {"(", "NOT "};
    for (size_t k = 0; k < 2; k++) {
        for (int levels = 200; levels <= 201; levels++) {
            sp_buf_t b = SP_BUF_INIT;
            sp_buf_printf(&b, "SELECT count(*) FROM t WHERE ");
            for (int i = 0; i < levels; i++)
                sp_buf_printf(&b, "%s", opens[k]);
            sp_buf_printf(&b, "x = 1");
            for (int i = 0; k == 0 && i < levels; i++)
                sp_buf_putc(&b, ')');
            sql_stmt_t *st = NULL;
            sp_err_t err = {0};
            int rc = sql_parse(sp_buf_cstr(&b), &st, &err);
            if (levels == 200) {
                cr_assert_eq(rc, 0, "%s", err.msg);
                sql_stmt_destroy(&st);
            } else {
                char *want = sp_xasprintf("SQL syntax error at line 1, column %zu: condition nested too "
                                          "deeply (more than 200 levels of parentheses and NOT)",
                                          30 + 200 * strlen(opens[k]));
                cr_assert_eq(rc, SP_EPARSE);
                cr_assert_str_eq(err.msg, want);
                free(want);
            }
            sp_buf_free(&b);
        }
    }
}

Test(sql, deep_nesting_does_not_overflow_the_stack)
{
    enum { N = 500000 };
    char *sql = sp_xmalloc(N + 64);
    int n = snprintf(sql, 64, "SELECT count(*) FROM t WHERE ");
    memset(sql + n, '(', N);
    sql[n + N] = '\0';
    sql_stmt_t *st = NULL;
    sp_err_t err = {0};
    cr_assert_eq(sql_parse(sql, &st, &err), SP_EPARSE);
    cr_assert(strstr(err.msg, "nested too deeply") != NULL, "%s", err.msg);
    for (int i = 0; i < N; i += 4)
        memcpy(sql + n + i, "NOT ", 4);
    cr_assert_eq(sql_parse(sql, &st, &err), SP_EPARSE);
    cr_assert(strstr(err.msg, "nested too deeply") != NULL, "%s", err.msg);
    free(sql);
}

Test(sql, huge_and_missing_input)
{
    size_t n = (1u << 20) + 1;
    char *sql = sp_xmalloc(n + 1);
    memset(sql, ' ', n);
    memcpy(sql, "SELECT count(*) FROM t", 22);
    sql[n] = '\0';
    sql_stmt_t *st = NULL;
    sp_err_t err = {0};
    cr_assert_eq(sql_parse(sql, &st, &err), SP_EPARSE);
    cr_assert_str_eq(err.msg, "SQL syntax error: the query is longer than 1048576 bytes");
    sql[n - 1] = '\0'; /* exactly the limit is fine */
    cr_assert_eq(sql_parse(sql, &st, &err), 0, "%s", err.msg);
    sql_stmt_destroy(&st);
    free(sql);

    cr_assert_eq(sql_parse(NULL, &st, &err), SP_EPARSE);
    cr_assert_str_eq(err.msg, "SQL syntax error: no query text");
    cr_assert_eq(sql_parse("SELECT", &st, NULL), SP_EPARSE, "err may be NULL");
}

Test(sql, a_nul_byte_ends_the_text)
{
    const char sql[] = "SELECT count(*) FROM t\0 garbage";
    sql_stmt_t *st = parse_ok(sql);
    cr_assert_str_eq(st->text, "SELECT count(*) FROM t");
    sql_stmt_destroy(&st);
}

/* ---- robustness ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Parse text; either a statement with the invariants of the grammar, or a
 * one-line positioned error. */
static void parse_any(const char *text, size_t *ok)
{
    sql_stmt_t *st = NULL;
    sp_err_t err = {0};
    int rc = sql_parse(text, &st, &err);
    if (rc == 0) {
        cr_assert_not_null(st);
        cr_assert_geq(st->nitems, 1);
        cr_assert_not_null(st->from);
        for (size_t i = 0; i < st->nitems; i++)
            cr_assert((st->items[i].column != NULL) == (st->items[i].agg != SQL_AGG_COUNT_STAR));
        (*ok)++;
        sql_stmt_destroy(&st);
        return;
    }
    cr_assert_eq(rc, SP_EPARSE);
    cr_assert_null(st);
    cr_assert(strncmp(err.msg, "SQL ", 4) == 0, "%s", err.msg);
    cr_assert(strchr(err.msg, '\n') == NULL, "one line: %s", err.msg);
}

Test(sql, random_bytes_parse_or_fail_cleanly)
{
    char buf[200];
    size_t ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rng() % (sizeof buf - 1);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(rng() % 255 + 1); /* NUL would only end the text */
        buf[n] = '\0';
        parse_any(buf, &ok);
    }
}

Test(sql, token_soups_parse_or_fail_cleanly)
{
    static const char *const toks[] = {
        "SELECT", "FROM", "WHERE", "GROUP", "BY", "AS", "AND", "OR", "NOT", "IS", "NULL", "IN",
        "TRUE", "FALSE", "DISTINCT", "count", "sum", "min", "max", "avg", "(", ")", "*", ",",
        ";", "=", "==", "!=", "<>", "<", "<=", ">", ">=", "-", "+", "'s'", "\"d\"", "'it''s'",
        "`q q`", "1", "-2", "3.5", "1e3", "9223372036854775808", "x", "y", "gt", "t", "HAVING",
        "'\\u00e9'", "`", "'", "\"", "!", ".", "é",
    };
    size_t ntoks = sizeof toks / sizeof toks[0], ok = 0;
    for (int iter = 0; iter < 30000; iter++) {
        sp_buf_t b = SP_BUF_INIT;
        /* Half start as a plausible query, so the soup reaches deep states. */
        if (iter % 2)
            sp_buf_printf(&b, "SELECT gt, count(*) FROM t WHERE ");
        size_t n = rng() % 24;
        for (size_t i = 0; i < n; i++)
            sp_buf_printf(&b, "%s%s", toks[rng() % ntoks], rng() % 4 ? " " : "");
        parse_any(sp_buf_cstr(&b), &ok);
        sp_buf_free(&b);
    }
    cr_assert_gt(ok, 0, "some soups are queries");
}

Test(sql, damaged_queries_parse_or_fail_cleanly)
{
    const char *seed = "SELECT gt, `Model`, count(*) AS n, sum(x), avg(y) FROM activity "
                       "WHERE (x >= -1.5e3 OR y IS NOT NULL) AND gt NOT IN ('sit', \"stand\", NULL) "
                       "AND NOT z <> 'it''s\\n' GROUP BY gt, `Model`;";
    size_t len = strlen(seed), ok = 0;
    char *buf = sp_xmalloc(len + 16);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, seed, len + 1);
        size_t n = len;
        for (int k = 0, edits = 1 + (int)(rng() % 3); k < edits; k++) {
            size_t at = rng() % n;
            switch (rng() % 3) {
            case 0: /* delete a byte */
                memmove(buf + at, buf + at + 1, n - at);
                n--;
                break;
            case 1: /* replace a byte */
                buf[at] = (char)(rng() % 255 + 1);
                break;
            default: /* truncate */
                buf[at] = '\0';
                n = at;
                break;
            }
            if (n == 0)
                break;
        }
        parse_any(buf, &ok);
    }
    free(buf);
    cr_assert_gt(ok, 0);
}

/* count(1), as Spark users write it, is count(*). */
Test(sql, count_of_a_number_is_count_star)
{
    sql_stmt_t *st = NULL;
    sp_err_t err;
    cr_assert_eq(sql_parse("SELECT gt, count(1) AS n FROM t GROUP BY gt", &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st->items[1].agg, SQL_AGG_COUNT_STAR);
    cr_assert_null(st->items[1].column);
    sql_stmt_destroy(&st);
}
