/* tests/query/plan_test.c -- binding a query to a source and schema: slots,
 * canonical aggregates, output names, signatures, every binding error with
 * its position, and the WHERE evaluator against truth tables and an
 * independent reference evaluator written here. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan.h"
#include "sp_util.h"

/* A schema filled directly (so these tests do not depend on schema.c's
 * parser): pairs of name and type, ended by NULL. */
static schema_t *make_schema(const char *name, ...)
{
    schema_t *s = sp_xcalloc(1, sizeof *s);
    s->cols = sp_xcalloc(32, sizeof(schema_col_t));
    va_list ap;
    va_start(ap, name);
    for (; name != NULL; name = va_arg(ap, const char *)) {
        s->cols[s->ncols].name = sp_xstrdup(name);
        s->cols[s->ncols].type = (sp_type_t)va_arg(ap, int);
        s->ncols++;
    }
    va_end(ap);
    return s;
}

static void free_schema(schema_t *s)
{
    for (size_t i = 0; i < s->ncols; i++)
        free(s->cols[i].name);
    free(s->cols);
    free(s);
}

/* The heterogeneity-activity columns, as schema inference orders them. */
static schema_t *activity_schema(void)
{
    return make_schema("Arrival_Time", SP_TYPE_BIGINT, "Creation_Time", SP_TYPE_BIGINT,
                       "Device", SP_TYPE_STRING, "Index", SP_TYPE_BIGINT, "Model", SP_TYPE_STRING,
                       "User", SP_TYPE_STRING, "gt", SP_TYPE_STRING, "x", SP_TYPE_DOUBLE,
                       "y", SP_TYPE_DOUBLE, "z", SP_TYPE_DOUBLE, "ok", SP_TYPE_BOOLEAN, NULL);
}

static plan_t *build_ok(const char *sql, const schema_t *s)
{
    plan_t *p = NULL;
    sp_err_t err = {0};
    int rc = plan_build(sql, "activity", s, &p, &err);
    cr_assert_eq(rc, 0, "[%s]: %s", sql, err.msg);
    cr_assert_not_null(p);
    return p;
}

static void build_fails(const char *sql, const schema_t *s, int want_rc, const char *want)
{
    plan_t *p = (plan_t *)1;
    sp_err_t err = {0};
    int rc = plan_build(sql, "activity", s, &p, &err);
    cr_assert_eq(rc, want_rc, "[%s]: rc %d (%s)", sql, rc, err.msg);
    cr_assert_null(p);
    cr_assert_str_eq(err.msg, want, "[%s]\n got: %s", sql, err.msg);
}

static void check_sig(char *got, const char *want)
{
    cr_assert_str_eq(got, want);
    free(got);
}

/* The usage example: build a plan, read its layout, filter rows. */
Test(plan, usage_example)
{
    schema_t *s = activity_schema();
    plan_t *p = NULL;
    sp_err_t err = {0};
    int rc = plan_build("SELECT gt, count(*) AS n, avg(x) FROM activity "
                        "WHERE Model = 'nexus4' AND y > 0 GROUP BY gt",
                        "activity", s, &p, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);

    /* Slots: the key, the aggregate input, then what only WHERE reads. */
    cr_assert_eq(p->nslots, 4);
    const char *names[] = {"gt", "x", "Model", "y"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(p->slots[i].name, names[i]);
    cr_assert_eq(p->slots[1].schema_index, 7);
    cr_assert_eq(p->slots[1].type, SP_TYPE_DOUBLE);
    cr_assert_eq(p->ngroups, 1);
    cr_assert_eq(p->group_slots[0], 0);

    cr_assert_eq(p->naggs, 2);
    cr_assert_eq(p->aggs[0].func, AGG_COUNT_STAR);
    cr_assert_eq(p->aggs[0].slot, -1);
    cr_assert_eq(p->aggs[0].in_type, SP_TYPE_NULL);
    cr_assert_eq(p->aggs[0].out_type, SP_TYPE_BIGINT);
    cr_assert_eq(p->aggs[1].func, AGG_AVG);
    cr_assert_eq(p->aggs[1].slot, 1);
    cr_assert_eq(p->aggs[1].out_type, SP_TYPE_DOUBLE);

    cr_assert_eq(p->noutputs, 3);
    cr_assert_str_eq(p->outputs[0].name, "gt");
    cr_assert(!p->outputs[0].is_agg);
    cr_assert_eq(p->outputs[0].index, 0);
    cr_assert_eq(p->outputs[0].type, SP_TYPE_STRING);
    cr_assert_str_eq(p->outputs[1].name, "n");
    cr_assert(p->outputs[1].is_agg);
    cr_assert_eq(p->outputs[1].index, 0);
    cr_assert_str_eq(p->outputs[2].name, "avg(x)");
    cr_assert_eq(p->outputs[2].index, 1);
    cr_assert_eq(p->outputs[2].type, SP_TYPE_DOUBLE);

    sp_value_t row[4] = {
        {.type = SP_TYPE_STRING, .u.s = {"sit", 3}},
        {.type = SP_TYPE_DOUBLE, .u.d = 1.0},
        {.type = SP_TYPE_STRING, .u.s = {"nexus4", 6}},
        {.type = SP_TYPE_DOUBLE, .u.d = 0.25},
    };
    cr_assert(plan_row_passes(p, row));
    row[3].u.d = -1;
    cr_assert(!plan_row_passes(p, row));
    row[3] = SP_VALUE_NULL; /* UNKNOWN does not pass */
    cr_assert_eq(expr_eval(p->where, row), EXPR_UNKNOWN);
    cr_assert(!plan_row_passes(p, row));

    check_sig(plan_state_signature(p), "group: gt STRING; aggs: count(*), avg(x DOUBLE)");
    plan_destroy(&p);
    cr_assert_null(p);
    plan_destroy(&p);
    plan_destroy(NULL);
    free_schema(s);
}

/* ---- layout ------------------------------------------------------------------- */

Test(plan, slots_keys_first_then_aggregate_inputs_then_where_columns)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT max(z), User, sum(Index), min(x), gt FROM activity "
                         "WHERE y IS NOT NULL AND (Device = 'a' OR y < z OR ok = TRUE) "
                         "GROUP BY User, gt", s);
    const char *names[] = {"User", "gt", "Index", "x", "z", "y", "Device", "ok"};
    cr_assert_eq(p->nslots, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_str_eq(p->slots[i].name, names[i], "slot %zu", i);
    cr_assert_eq(p->group_slots[0], 0);
    cr_assert_eq(p->group_slots[1], 1);
    /* Canonical: sum < min < max. */
    cr_assert_eq(p->aggs[0].func, AGG_SUM);
    cr_assert_eq(p->aggs[0].slot, 2);
    cr_assert_eq(p->aggs[1].func, AGG_MIN);
    cr_assert_eq(p->aggs[1].slot, 3);
    cr_assert_eq(p->aggs[2].func, AGG_MAX);
    cr_assert_eq(p->aggs[2].slot, 4);
    int want_index[] = {2, 0, 0, 1, 1};
    bool want_agg[] = {true, false, true, true, false};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(p->outputs[i].is_agg, want_agg[i], "output %zu", i);
        cr_assert_eq(p->outputs[i].index, want_index[i], "output %zu", i);
    }
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, a_column_read_twice_has_one_slot)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT gt, count(gt), min(gt), max(x) FROM activity "
                         "WHERE gt <> 'null' AND x > 1 AND X < 2 GROUP BY gt", s);
    cr_assert_eq(p->nslots, 2);
    cr_assert_eq(p->aggs[0].slot, 0);
    cr_assert_eq(p->aggs[1].slot, 0);
    cr_assert_eq(p->aggs[2].slot, 1);
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, canonical_aggregates_do_not_depend_on_select_order)
{
    schema_t *s = activity_schema();
    const char *queries[] = {
        "SELECT gt, count(*), sum(x), avg(y), min(Model), max(Model), count(z) FROM activity GROUP BY gt",
        "SELECT max(Model) AS hi, avg(y), count(z), gt, count(*) AS c, min(Model), SUM(X) FROM activity GROUP BY gt",
        ("SELECT count(z), count(*), count(*), avg(y), sum(x), max(Model), min(Model), max(Model) AS again, gt "
         "FROM activity GROUP BY gt"),
    };
    for (size_t q = 0; q < 3; q++) {
        plan_t *p = build_ok(queries[q], s);
        cr_assert_eq(p->naggs, 6, "query %zu", q);
        agg_func_t funcs[] = {AGG_COUNT_STAR, AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_AVG};
        for (size_t i = 0; i < 6; i++)
            cr_assert_eq(p->aggs[i].func, funcs[i], "query %zu agg %zu", q, i);
        check_sig(plan_aggs_signature(p),
                  "count(*), count(z DOUBLE), sum(x DOUBLE), min(Model STRING), max(Model STRING), "
                  "avg(y DOUBLE)");
        /* Every output points at the aggregate it names. */
        for (size_t i = 0; i < p->noutputs; i++) {
            const plan_output_t *o = &p->outputs[i];
            if (!o->is_agg)
                continue;
            const agg_spec_t *a = &p->aggs[o->index];
            char *want = a->slot < 0 ? sp_xstrdup("count(1)")
                                     : sp_xasprintf("%s(%s)", agg_func_name(a->func),
                                                    p->slots[a->slot].name);
            if (strchr(o->name, '(') != NULL) /* not an alias */
                cr_assert(strcasecmp(o->name, want) == 0, "query %zu output %zu: %s", q, i, o->name);
            free(want);
        }
        plan_destroy(&p);
    }
    free_schema(s);
}

Test(plan, a_global_aggregate_has_no_keys_and_no_slots)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT count(*) FROM activity", s);
    cr_assert_eq(p->ngroups, 0);
    cr_assert_eq(p->nslots, 0);
    cr_assert_null(p->where);
    cr_assert_eq(p->naggs, 1);
    cr_assert_str_eq(p->outputs[0].name, "count(1)");
    cr_assert(plan_row_passes(p, NULL));
    check_sig(plan_state_signature(p), "group: ; aggs: count(*)");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, aggregates_sort_by_function_then_column_name)
{
    schema_t *s = make_schema("b", SP_TYPE_BIGINT, "a", SP_TYPE_BIGINT, "C", SP_TYPE_BIGINT, NULL);
    plan_t *p = build_ok("SELECT sum(c), max(a), sum(b), sum(a), count(*) FROM activity", s);
    check_sig(plan_aggs_signature(p), "count(*), sum(C BIGINT), sum(a BIGINT), sum(b BIGINT), max(a BIGINT)");
    cr_assert_eq(p->ngroups, 0, "a global aggregate");
    check_sig(plan_group_signature(p), "");
    check_sig(plan_state_signature(p),
              "group: ; aggs: count(*), sum(C BIGINT), sum(a BIGINT), sum(b BIGINT), max(a BIGINT)");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, output_types)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT count(*), count(gt), sum(Index), sum(x), avg(Index), avg(x), "
                         "min(gt), max(ok), min(Index), max(y), ok FROM activity GROUP BY ok", s);
    sp_type_t want[] = {SP_TYPE_BIGINT, SP_TYPE_BIGINT, SP_TYPE_BIGINT, SP_TYPE_DOUBLE,
                        SP_TYPE_DOUBLE, SP_TYPE_DOUBLE, SP_TYPE_STRING, SP_TYPE_BOOLEAN,
                        SP_TYPE_BIGINT, SP_TYPE_DOUBLE, SP_TYPE_BOOLEAN};
    for (size_t i = 0; i < 11; i++) {
        cr_assert_eq(p->outputs[i].type, want[i], "output %zu (%s)", i, p->outputs[i].name);
        if (p->outputs[i].is_agg)
            cr_assert_eq(p->aggs[p->outputs[i].index].out_type, want[i]);
    }
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, output_names)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT MODEL, `gt` AS label, COUNT(*), Count(Device), SUM(X), Avg(y) AS `mean y`, "
                         "max(z) zz, count(*) AS `count(1)` FROM activity GROUP BY Model, gt", s);
    const char *want[] = {"MODEL", "label", "count(1)", "count(Device)", "sum(X)", "mean y", "zz", "count(1)"};
    cr_assert_eq(p->noutputs, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_str_eq(p->outputs[i].name, want[i], "output %zu", i);
    cr_assert_str_eq(p->slots[0].name, "Model", "slots carry the schema's name");
    cr_assert_eq(p->naggs, 5, "the two count(*) are one aggregate");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, names_resolve_exactly_first_then_case_insensitively)
{
    schema_t *s = make_schema("User", SP_TYPE_STRING, "user", SP_TYPE_BIGINT, "Gt", SP_TYPE_STRING, NULL);
    plan_t *p = build_ok("SELECT user, User, gt, count(*) FROM activity GROUP BY User, user, GT", s);
    cr_assert_str_eq(p->slots[0].name, "User");
    cr_assert_eq(p->slots[1].type, SP_TYPE_BIGINT);
    cr_assert_str_eq(p->slots[2].name, "Gt");
    cr_assert_eq(p->outputs[0].index, 1);
    cr_assert_eq(p->outputs[1].index, 0);
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, repeated_group_keys_count_once)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT gt, count(*) FROM activity GROUP BY gt, Model, GT, gt", s);
    cr_assert_eq(p->ngroups, 2);
    check_sig(plan_group_signature(p), "gt STRING, Model STRING");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, group_by_without_aggregates_and_source_case)
{
    schema_t *s = activity_schema();
    plan_t *p = build_ok("SELECT gt FROM ACTIVITY GROUP BY gt", s);
    cr_assert_eq(p->naggs, 0);
    cr_assert_str_eq(p->source_name, "activity");
    check_sig(plan_state_signature(p), "group: gt STRING; aggs: ");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, signatures_quote_names_as_schemas_do)
{
    schema_t *s = make_schema("a b", SP_TYPE_STRING, "we`ird", SP_TYPE_DOUBLE, "gt", SP_TYPE_STRING, NULL);
    plan_t *p = build_ok("SELECT `a b`, gt, sum(`we``ird`) FROM activity GROUP BY `a b`, gt", s);
    check_sig(plan_group_signature(p), "`a b` STRING, gt STRING");
    check_sig(plan_aggs_signature(p), "sum(`we``ird` DOUBLE)");
    check_sig(plan_state_signature(p), "group: `a b` STRING, gt STRING; aggs: sum(`we``ird` DOUBLE)");
    cr_assert_str_eq(p->outputs[2].name, "sum(we`ird)");
    plan_destroy(&p);
    free_schema(s);
}

Test(plan, signature_changes_with_keys_and_aggregates_only)
{
    schema_t *s = activity_schema();
    const char *base = "SELECT gt, count(*), sum(x) FROM activity GROUP BY gt";
    const char *same[] = {
        "SELECT sum(x) AS total, gt AS label, count(*) FROM activity WHERE Model = 'x' GROUP BY gt",
        "select COUNT(*), SUM(X), GT from activity group by GT;",
    };
    const char *different[] = {
        "SELECT gt, count(*), sum(y) FROM activity GROUP BY gt",
        "SELECT gt, count(*), avg(x) FROM activity GROUP BY gt",
        "SELECT gt, count(*), sum(x) FROM activity GROUP BY gt, Model",
        "SELECT Model, count(*), sum(x) FROM activity GROUP BY Model",
        "SELECT gt, count(*), sum(x), count(x) FROM activity GROUP BY gt",
    };
    plan_t *p = build_ok(base, s);
    char *want = plan_state_signature(p);
    plan_destroy(&p);
    for (size_t i = 0; i < 2; i++) {
        p = build_ok(same[i], s);
        check_sig(plan_state_signature(p), want);
        plan_destroy(&p);
    }
    for (size_t i = 0; i < 5; i++) {
        p = build_ok(different[i], s);
        char *got = plan_state_signature(p);
        cr_assert_str_neq(got, want, "%s", different[i]);
        free(got);
        plan_destroy(&p);
    }
    free(want);
    free_schema(s);
}

/* ---- errors ------------------------------------------------------------------- */

Test(plan, binding_errors_point_at_the_position)
{
    schema_t *s = activity_schema();
    const struct {
        const char *sql;
        int rc;
        const char *msg;
    } cases[] = {
        {"SELECT count(*) FROM events", SP_EINVAL,
         "SQL error at line 1, column 22: unknown source 'events' in FROM (the source is 'activity')"},
        {"SELECT gtt, count(*) FROM activity GROUP BY gtt", SP_EINVAL,
         "SQL error at line 1, column 8: unknown column 'gtt' (did you mean 'gt'?)"},
        {"SELECT count(*) FROM activity GROUP BY Modle", SP_EINVAL,
         "SQL error at line 1, column 40: unknown column 'Modle' (did you mean 'Model'?)"},
        {"SELECT sum(Arival_time) FROM activity", SP_EINVAL,
         "SQL error at line 1, column 12: unknown column 'Arival_time' (did you mean 'Arrival_Time'?)"},
        {"SELECT count(*) FROM activity WHERE q = 1", SP_EINVAL,
         "SQL error at line 1, column 37: unknown column 'q'"},
        {"SELECT count(*) FROM activity WHERE 1 = velocity", SP_EINVAL,
         "SQL error at line 1, column 41: unknown column 'velocity'"},
        {"SELECT gt, count(*)\nFROM activity\nGROUP BY gt, usr", SP_EINVAL,
         "SQL error at line 3, column 14: unknown column 'usr' (did you mean 'User'?)"},
        {"SELECT User, count(*) FROM activity", SP_EINVAL,
         "SQL error at line 1, column 8: column 'User' must appear in GROUP BY or be inside an aggregate"},
        {"SELECT gt, Model AS m, count(*) FROM activity GROUP BY gt", SP_EINVAL,
         "SQL error at line 1, column 12: column 'Model' must appear in GROUP BY or be inside an aggregate"},
        {"SELECT gt, Model FROM activity", SP_EINVAL,
         "SQL error at line 1, column 8: spate runs aggregations: add GROUP BY or an aggregate "
         "(count, sum, min, max, avg)"},
        {"SELECT sum(gt) FROM activity", SP_ETYPE,
         "SQL error at line 1, column 12: sum needs a BIGINT or DOUBLE column; 'gt' is STRING"},
        {"SELECT AVG(OK) FROM activity", SP_ETYPE,
         "SQL error at line 1, column 12: avg needs a BIGINT or DOUBLE column; 'OK' is BOOLEAN"},
        {"SELECT count(*) FROM activity WHERE gt = 5", SP_ETYPE,
         "SQL error at line 1, column 40: cannot compare column 'gt' (STRING) with a BIGINT literal"},
        {"SELECT count(*) FROM activity WHERE 2.5 < Device", SP_ETYPE,
         "SQL error at line 1, column 41: cannot compare a DOUBLE literal with column 'Device' (STRING)"},
        {"SELECT count(*) FROM activity WHERE x >= gt", SP_ETYPE,
         "SQL error at line 1, column 39: cannot compare column 'x' (DOUBLE) with column 'gt' (STRING)"},
        {"SELECT count(*) FROM activity WHERE ok = 1", SP_ETYPE,
         "SQL error at line 1, column 40: cannot compare column 'ok' (BOOLEAN) with a BIGINT literal"},
        {"SELECT count(*) FROM activity WHERE 'a' = TRUE", SP_ETYPE,
         "SQL error at line 1, column 41: cannot compare a STRING literal with a BOOLEAN literal"},
        {"SELECT count(*) FROM activity WHERE gt IN ('sit', NULL, 3)", SP_ETYPE,
         "SQL error at line 1, column 40: cannot compare column 'gt' (STRING) with a BIGINT literal in the IN list"},
        {"SELECT count(*) FROM activity WHERE x NOT IN (1, 2.5, 'three')", SP_ETYPE,
         "SQL error at line 1, column 39: cannot compare column 'x' (DOUBLE) with a STRING literal in the IN list"},
        /* Errors come in the order of the text. */
        {"SELECT nope, count(*) FROM activity WHERE gt = 1 GROUP BY zilch", SP_EINVAL,
         "SQL error at line 1, column 8: unknown column 'nope'"},
        {"SELECT count(*) FROM activity WHERE gt = 1 GROUP BY zilch", SP_ETYPE,
         "SQL error at line 1, column 40: cannot compare column 'gt' (STRING) with a BIGINT literal"},
        /* Parse errors pass through plan_build. */
        {"SELECT count(*) FORM activity", SP_EPARSE,
         "SQL syntax error at line 1, column 17: expected FROM, found 'FORM'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        build_fails(cases[i].sql, s, cases[i].rc, cases[i].msg);
    free_schema(s);
}

Test(plan, ambiguous_names_are_refused)
{
    schema_t *s = make_schema("User", SP_TYPE_STRING, "user", SP_TYPE_STRING, "USER", SP_TYPE_STRING, NULL);
    build_fails("SELECT uSeR, count(*) FROM activity GROUP BY uSeR", s, SP_EINVAL,
                "SQL error at line 1, column 8: column 'uSeR' is ambiguous: it matches 'User', 'user', "
                "'USER'; write the name exactly as in the schema");
    free_schema(s);
}

Test(plan, untyped_columns_are_refused)
{
    schema_t *s = make_schema("gt", SP_TYPE_NULL, NULL);
    build_fails("SELECT gt, count(*) FROM activity GROUP BY gt", s, SP_ETYPE,
                "SQL error at line 1, column 8: column 'gt' has no type in the schema");
    free_schema(s);
}

Test(plan, suggestions_stay_close)
{
    schema_t *s = make_schema("x", SP_TYPE_DOUBLE, "gt", SP_TYPE_STRING, "Creation_Time", SP_TYPE_BIGINT, NULL);
    /* One letter is not close to another one-letter name. */
    build_fails("SELECT sum(y) FROM activity", s, SP_EINVAL,
                "SQL error at line 1, column 12: unknown column 'y'");
    build_fails("SELECT sum(CreationTime) FROM activity", s, SP_EINVAL,
                "SQL error at line 1, column 12: unknown column 'CreationTime' (did you mean 'Creation_Time'?)");
    build_fails("SELECT sum(Deletion_Time) FROM activity", s, SP_EINVAL,
                "SQL error at line 1, column 12: unknown column 'Deletion_Time'");
    build_fails("SELECT min(tg) FROM activity", s, SP_EINVAL,
                "SQL error at line 1, column 12: unknown column 'tg' (did you mean 'gt'?)");
    free_schema(s);
}

/* ---- evaluation: truth tables --------------------------------------------------- */

enum { F = EXPR_FALSE, T = EXPR_TRUE, U = EXPR_UNKNOWN };

/* Kleene's three-valued logic, written out. */
static const int AND_TABLE[3][3] = {
    /*        F  T  U */
    /* F */ {F, F, F},
    /* T */ {F, T, U},
    /* U */ {F, U, U},
};
static const int OR_TABLE[3][3] = {
    /*        F  T  U */
    /* F */ {F, T, U},
    /* T */ {T, T, T},
    /* U */ {U, T, U},
};
static const int NOT_TABLE[3] = {T, F, U};

/* A value for a BIGINT column whose "a = 1" has truth t. */
static sp_value_t bigint_for(int t)
{
    if (t == U)
        return SP_VALUE_NULL;
    return (sp_value_t){.type = SP_TYPE_BIGINT, .u.i = t == T ? 1 : 0};
}

static schema_t *ab_schema(void)
{
    return make_schema("a", SP_TYPE_BIGINT, "b", SP_TYPE_BIGINT, NULL);
}

Test(plan, and_or_not_follow_the_truth_tables)
{
    schema_t *s = ab_schema();
    plan_t *pand = build_ok("SELECT count(*) FROM activity WHERE a = 1 AND b = 1", s);
    plan_t *por = build_ok("SELECT count(*) FROM activity WHERE a = 1 OR b = 1", s);
    plan_t *pnot = build_ok("SELECT count(*) FROM activity WHERE NOT a = 1", s);
    plan_t *pnn = build_ok("SELECT count(*) FROM activity WHERE NOT NOT a = 1", s);
    cr_assert_str_eq(pand->slots[0].name, "a");
    for (int x = 0; x < 3; x++) {
        for (int y = 0; y < 3; y++) {
            sp_value_t row[2] = {bigint_for(x), bigint_for(y)};
            cr_assert_eq((int)expr_eval(pand->where, row), AND_TABLE[x][y], "%d AND %d", x, y);
            cr_assert_eq((int)expr_eval(por->where, row), OR_TABLE[x][y], "%d OR %d", x, y);
            cr_assert_eq(plan_row_passes(pand, row), AND_TABLE[x][y] == T);
        }
        sp_value_t row[1] = {bigint_for(x)};
        cr_assert_eq((int)expr_eval(pnot->where, row), NOT_TABLE[x], "NOT %d", x);
        cr_assert_eq((int)expr_eval(pnn->where, row), x, "NOT NOT %d", x);
    }
    plan_destroy(&pand);
    plan_destroy(&por);
    plan_destroy(&pnot);
    plan_destroy(&pnn);
    free_schema(s);
}

/* Evaluate "SELECT count(*) FROM activity WHERE <cond>" over a row of the
 * schema's columns (one value per schema column). */
static int eval_where(const schema_t *s, const char *cond, const sp_value_t *row)
{
    char *sql = sp_xasprintf("SELECT count(*) FROM activity WHERE %s", cond);
    plan_t *p = build_ok(sql, s);
    sp_value_t slots[16];
    for (size_t i = 0; i < p->nslots; i++)
        slots[i] = row[p->slots[i].schema_index];
    int t = (int)expr_eval(p->where, slots);
    plan_destroy(&p);
    free(sql);
    return t;
}

#define I(v) ((sp_value_t){.type = SP_TYPE_BIGINT, .u.i = (v)})
#define D(v) ((sp_value_t){.type = SP_TYPE_DOUBLE, .u.d = (v)})
#define S(v) ((sp_value_t){.type = SP_TYPE_STRING, .u.s = {(v), (uint32_t)(sizeof(v) - 1)}})
#define B(v) ((sp_value_t){.type = SP_TYPE_BOOLEAN, .u.b = (v)})
#define N SP_VALUE_NULL

static schema_t *typed_schema(void)
{
    return make_schema("i", SP_TYPE_BIGINT, "d", SP_TYPE_DOUBLE, "s", SP_TYPE_STRING,
                       "f", SP_TYPE_BOOLEAN, "j", SP_TYPE_BIGINT, NULL);
}

Test(plan, comparisons)
{
    schema_t *s = typed_schema();
    const struct {
        sp_value_t i, d, s, f, j;
        const char *cond;
        int want;
    } cases[] = {
        {I(3), N, N, N, N, "i = 3", T},
        {I(3), N, N, N, N, "i == 3.0", T},
        {I(3), N, N, N, N, "i < 3.5", T},
        {I(3), N, N, N, N, "i > 2.999", T},
        {I(3), N, N, N, N, "3 >= i", T},
        {I(3), N, N, N, N, "4 <= i", F},
        {I(3), N, N, N, N, "i <> 3", F},
        {I(3), N, N, N, N, "i != 4", T},
        {N, N, N, N, N, "i = 3", U},
        {N, N, N, N, N, "i != 3", U},
        {I(3), N, N, N, N, "i = NULL", U},
        {I(3), N, N, N, N, "NULL <> i", U},
        {I(INT64_MAX), N, N, N, N, "i = 9223372036854775807", T},
        {I(INT64_MAX), N, N, N, N, "i < 9223372036854775808", T}, /* a DOUBLE literal, exactly */
        {I(INT64_MAX - 1), N, N, N, N, "i = 9223372036854775806.0", F}, /* 2^63 as a double */
        {I(INT64_MIN), N, N, N, N, "i = -9223372036854775808", T},
        {I((INT64_C(1) << 53) + 1), D(9007199254740992.0), N, N, N, "i > d", T},
        {I((INT64_C(1) << 53) + 1), D(9007199254740992.0), N, N, N, "d = 9007199254740993", F},
        {N, D(0.5), N, N, N, "d > 0", T},
        {N, D(-0.0), N, N, N, "d = 0", T},
        {N, D(-0.0), N, N, N, "d = -0.0", T},
        {N, D(NAN), N, N, N, "d = d", T}, /* NaN equals NaN, as in Spark */
        {N, D(NAN), N, N, N, "d > 1e308", T}, /* and is above every number */
        {N, D(NAN), N, N, N, "d > 9223372036854775807", T},
        {N, D(INFINITY), N, N, N, "d > 1e308", T},
        {N, D(-INFINITY), N, N, N, "d < -1e308", T},
        {N, N, S("abc"), N, N, "s = 'abc'", T},
        {N, N, S("abc"), N, N, "s = \"abc\"", T},
        {N, N, S("abc"), N, N, "s < 'abd'", T},
        {N, N, S("abc"), N, N, "s > 'ab'", T},
        {N, N, S("abc"), N, N, "s >= 'abc'", T},
        {N, N, S("abc"), N, N, "s <> 'ABC'", T},
        {N, N, S(""), N, N, "s = ''", T},
        {N, N, S(""), N, N, "s < 'a'", T},
        {N, N, S("a\0b"), N, N, "s = 'a\\0b'", T},
        {N, N, S("a\0b"), N, N, "s > 'a'", T},
        {N, N, S("\xc3\xa9"), N, N, "s > 'z'", T}, /* bytes, not collation */
        {N, N, S("it's"), N, N, "s = 'it''s'", T},
        {N, N, S("Z"), N, N, "s < 'a'", T},
        {N, N, N, B(true), N, "f = TRUE", T},
        {N, N, N, B(false), N, "f < TRUE", T},
        {N, N, N, B(false), N, "f = FALSE", T},
        {N, N, N, N, N, "f = TRUE", U},
        {I(2), N, N, N, I(2), "i = j", T},
        {I(2), N, N, N, I(3), "i >= j", F},
        {I(2), N, N, N, N, "i = j", U},
        {N, N, N, N, I(3), "i < j", U},
        {I(2), N, N, N, N, "i = i", T},
        {N, N, N, N, N, "1 = 1", T},
        {N, N, N, N, N, "1 = 1.0", T},
        {N, N, N, N, N, "'b' < 'a'", F},
        {N, N, N, N, N, "NULL = NULL", U},
        {N, N, N, N, N, "TRUE > FALSE", T},
        {N, N, N, N, N, "NULL = 'x'", U},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sp_value_t row[5] = {cases[k].i, cases[k].d, cases[k].s, cases[k].f, cases[k].j};
        cr_assert_eq(eval_where(s, cases[k].cond, row), cases[k].want, "case %zu: %s", k, cases[k].cond);
    }
    free_schema(s);
}

Test(plan, is_null_and_in)
{
    schema_t *s = typed_schema();
    const struct {
        sp_value_t i, s;
        const char *cond;
        int want;
    } cases[] = {
        {N, N, "i IS NULL", T},
        {I(0), N, "i IS NULL", F},
        {N, N, "i IS NOT NULL", F},
        {I(0), N, "i IS NOT NULL", T},
        {N, N, "NULL IS NULL", T},
        {N, N, "1 IS NULL", F},
        {N, N, "'' IS NOT NULL", T},
        {N, N, "NOT i IS NULL", F},
        {I(1), N, "i IN (1, 2)", T},
        {I(3), N, "i IN (1, 2)", F},
        {N, N, "i IN (1, 2)", U},
        {I(1), N, "i IN (1, NULL)", T},
        {I(3), N, "i IN (1, NULL)", U},
        {N, N, "i IN (NULL)", U},
        {I(1), N, "i NOT IN (1, 2)", F},
        {I(3), N, "i NOT IN (1, 2)", T},
        {N, N, "i NOT IN (1, 2)", U},
        {I(1), N, "i NOT IN (1, NULL)", F},
        {I(3), N, "i NOT IN (1, NULL)", U},
        {I(2), N, "i IN (2.0, 7.5)", T},
        {I(7), N, "i IN (2.0, 7.5)", F},
        {I(2), N, "i IN (3, 2, 1, 2, 3, -8, 40, 16, 9, 12, 11, 10, 2)", T},
        {I(5), N, "i IN (3, 2, 1, 2, 3, -8, 40, 16, 9, 12, 11, 10, 2)", F},
        {I(-8), N, "i IN (3, 2, 1, 2, 3, -8, 40, 16, 9, 12, 11, 10, 2)", T},
        {N, S("b"), "s IN ('a', 'b', 'c')", T},
        {N, S("bb"), "s IN ('a', 'b', 'c')", F},
        {N, S(""), "s IN ('', 'b')", T},
        {N, S("it's"), "s IN ('its', \"it's\")", T},
        {N, N, "1 IN (1, 2)", T},
        {N, N, "3 IN (1, NULL)", U},
        {N, N, "NULL IN (1)", U},
        {N, N, "NULL NOT IN (1)", U},
        {N, N, "'a' NOT IN ('b')", T},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sp_value_t row[5] = {cases[k].i, N, cases[k].s, N, N};
        cr_assert_eq(eval_where(s, cases[k].cond, row), cases[k].want, "case %zu: %s", k, cases[k].cond);
    }
    free_schema(s);
}

Test(plan, in_on_doubles_and_nan)
{
    schema_t *s = typed_schema();
    sp_value_t row[5] = {N, D(NAN), N, N, N};
    cr_assert_eq(eval_where(s, "d IN (1, 2.5)", row), F);
    row[1] = D(2.5);
    cr_assert_eq(eval_where(s, "d IN (1, 2.5)", row), T);
    row[1] = D(1.0);
    cr_assert_eq(eval_where(s, "d IN (1, 2.5)", row), T);
    row[1] = D(-0.0);
    cr_assert_eq(eval_where(s, "d IN (0)", row), T);
    free_schema(s);
}

Test(plan, constant_conditions_fold)
{
    schema_t *s = typed_schema();
    sp_value_t row[5] = {N, N, N, N, N};
    /* Column i is NULL, so its comparisons are UNKNOWN. */
    cr_assert_eq(eval_where(s, "i = 1 OR 1 = 1", row), T);
    cr_assert_eq(eval_where(s, "i = 1 AND 1 = 2", row), F);
    cr_assert_eq(eval_where(s, "i = 1 AND 1 = 1", row), U);
    cr_assert_eq(eval_where(s, "1 = 1 AND i = 1", row), U);
    cr_assert_eq(eval_where(s, "i = 1 OR 1 = 2", row), U);
    cr_assert_eq(eval_where(s, "NULL = 1 OR 1 = 2", row), U);
    cr_assert_eq(eval_where(s, "NULL = 1 AND NULL = 2", row), U);
    cr_assert_eq(eval_where(s, "NOT (NULL = 1)", row), U);
    cr_assert_eq(eval_where(s, "NOT (1 = 2) AND NOT NOT TRUE = TRUE", row), T);

    /* A folded-away column is not extracted. */
    plan_t *p = build_ok("SELECT count(*) FROM activity WHERE i = 1 OR TRUE = TRUE", s);
    cr_assert_eq(p->nslots, 0);
    cr_assert_eq(expr_eval(p->where, NULL), EXPR_TRUE);
    plan_destroy(&p);
    free_schema(s);
}

/* ---- evaluation: against a reference ---------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Values drawn for the columns and literals, per family. */
static const int64_t INTS[] = {-2, -1, 0, 1, 2, 3, INT64_MAX, INT64_MIN};
static const double DOUBLES[] = {-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 9.2233720368547758e18};
static const char *const STRINGS[] = {"", "a", "ab", "b", "B", "\xc3\xa9", "it's"};

typedef struct ref_node {
    int kind; /* 0 cmp, 1 is null, 2 in, 3 and, 4 or, 5 not */
    sql_cmp_op_t op;
    bool negated;
    sp_value_t x, y;     /* operands: a literal, or a column (col >= 0) */
    int xcol, ycol;
    sp_value_t list[4];
    int nlist;
    struct ref_node *a, *b;
} ref_node_t;

/* Columns of the reference schema, by family: 0 number, 1 string, 2 bool. */
static const char *const REF_COLS[] = {"i", "d", "s", "f", "j"};
static const int REF_FAMILY[] = {0, 0, 1, 2, 0};

static sp_value_t random_literal(int family, sp_buf_t *text)
{
    sp_value_t v;
    if (rng() % 10 == 0) {
        sp_buf_printf(text, "NULL");
        return SP_VALUE_NULL;
    }
    switch (family) {
    case 0:
        if (rng() % 2) {
            v = I(INTS[rng() % 8]);
            if (v.u.i == INT64_MIN)
                sp_buf_printf(text, "-9223372036854775808");
            else
                sp_buf_printf(text, "%lld", (long long)v.u.i);
        } else {
            v = D(DOUBLES[rng() % 9]);
            sp_buf_printf(text, "%.17g%s", v.u.d, v.u.d == trunc(v.u.d) && fabs(v.u.d) < 1e15 ? ".0" : "");
        }
        return v;
    case 1: {
        const char *str = STRINGS[rng() % 7];
        v = (sp_value_t){.type = SP_TYPE_STRING, .u.s = {str, (uint32_t)strlen(str)}};
        sp_buf_putc(text, '\'');
        for (const char *c = str; *c; c++)
            sp_buf_printf(text, *c == '\'' ? "''" : "%c", *c);
        sp_buf_putc(text, '\'');
        return v;
    }
    default:
        v = B(rng() % 2);
        sp_buf_printf(text, v.u.b ? "TRUE" : "FALSE");
        return v;
    }
}

static void random_operand(int family, sp_buf_t *text, sp_value_t *lit, int *col)
{
    *col = -1;
    if (rng() % 3) {
        int candidates[5], n = 0;
        for (int c = 0; c < 5; c++)
            if (REF_FAMILY[c] == family)
                candidates[n++] = c;
        *col = candidates[rng() % n];
        sp_buf_printf(text, "%s", REF_COLS[*col]);
    } else {
        *lit = random_literal(family, text);
    }
}

static ref_node_t *random_cond(int depth, sp_buf_t *text)
{
    ref_node_t *n = sp_xcalloc(1, sizeof *n);
    n->kind = depth <= 0 ? (int)(rng() % 3) : (int)(rng() % 6);
    static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
    int family = (int)(rng() % 3);
    switch (n->kind) {
    case 0:
        n->op = (sql_cmp_op_t)(rng() % 6);
        random_operand(family, text, &n->x, &n->xcol);
        sp_buf_printf(text, " %s ", ops[n->op]);
        random_operand(family, text, &n->y, &n->ycol);
        break;
    case 1:
        random_operand(family, text, &n->x, &n->xcol);
        n->negated = rng() % 2;
        sp_buf_printf(text, n->negated ? " IS NOT NULL" : " IS NULL");
        break;
    case 2:
        random_operand(family, text, &n->x, &n->xcol);
        n->negated = rng() % 2;
        sp_buf_printf(text, n->negated ? " NOT IN (" : " IN (");
        n->nlist = 1 + (int)(rng() % 4);
        for (int k = 0; k < n->nlist; k++) {
            sp_buf_printf(text, k ? ", " : "");
            n->list[k] = random_literal(family, text);
        }
        sp_buf_putc(text, ')');
        break;
    case 3:
    case 4:
        sp_buf_putc(text, '(');
        n->a = random_cond(depth - 1, text);
        sp_buf_printf(text, n->kind == 3 ? ") AND (" : ") OR (");
        n->b = random_cond(depth - 1, text);
        sp_buf_putc(text, ')');
        break;
    default:
        sp_buf_printf(text, "NOT (");
        n->a = random_cond(depth - 1, text);
        sp_buf_putc(text, ')');
        break;
    }
    return n;
}

static void free_ref(ref_node_t *n)
{
    if (n == NULL)
        return;
    free_ref(n->a);
    free_ref(n->b);
    free(n);
}

/* Exact numeric order through long double (64-bit mantissa on x86-64 holds
 * every int64 and every double); NaN equals NaN and is above all. */
static int ref_cmp(const sp_value_t *x, const sp_value_t *y)
{
    if (x->type == SP_TYPE_STRING) {
        for (uint32_t k = 0;; k++) {
            if (k == x->u.s.len || k == y->u.s.len)
                return (x->u.s.len > k) - (y->u.s.len > k);
            unsigned char cx = (unsigned char)x->u.s.ptr[k], cy = (unsigned char)y->u.s.ptr[k];
            if (cx != cy)
                return cx < cy ? -1 : 1;
        }
    }
    if (x->type == SP_TYPE_BOOLEAN)
        return (int)x->u.b - (int)y->u.b;
    bool xn = x->type == SP_TYPE_DOUBLE && isnan(x->u.d), yn = y->type == SP_TYPE_DOUBLE && isnan(y->u.d);
    if (xn || yn)
        return xn - yn;
    long double lx = x->type == SP_TYPE_BIGINT ? (long double)x->u.i : (long double)x->u.d;
    long double ly = y->type == SP_TYPE_BIGINT ? (long double)y->u.i : (long double)y->u.d;
    return (lx > ly) - (lx < ly);
}

static int ref_eval(const ref_node_t *n, const sp_value_t *row)
{
    const sp_value_t *x = n->xcol >= 0 ? &row[n->xcol] : &n->x;
    const sp_value_t *y = n->ycol >= 0 ? &row[n->ycol] : &n->y;
    switch (n->kind) {
    case 0: {
        if (x->type == SP_TYPE_NULL || y->type == SP_TYPE_NULL)
            return U;
        int c = ref_cmp(x, y);
        bool r[] = {c == 0, c != 0, c < 0, c <= 0, c > 0, c >= 0};
        return r[n->op] ? T : F;
    }
    case 1:
        return (x->type == SP_TYPE_NULL) != n->negated ? T : F;
    case 2: {
        int t = F;
        if (x->type == SP_TYPE_NULL)
            t = U;
        for (int k = 0; t != U && k < n->nlist; k++) {
            if (n->list[k].type == SP_TYPE_NULL)
                t = U;
        }
        for (int k = 0; x->type != SP_TYPE_NULL && k < n->nlist; k++)
            if (n->list[k].type != SP_TYPE_NULL && ref_cmp(x, &n->list[k]) == 0)
                t = T;
        return n->negated ? NOT_TABLE[t] : t;
    }
    case 3:
        return AND_TABLE[ref_eval(n->a, row)][ref_eval(n->b, row)];
    case 4:
        return OR_TABLE[ref_eval(n->a, row)][ref_eval(n->b, row)];
    default:
        return NOT_TABLE[ref_eval(n->a, row)];
    }
}

static sp_value_t random_value(int col)
{
    if (rng() % 6 == 0)
        return SP_VALUE_NULL;
    switch (col) {
    case 0:
    case 4:
        return I(INTS[rng() % 8]);
    case 1:
        switch (rng() % 12) {
        case 0: return D(NAN);
        case 1: return D(INFINITY);
        default: return D(DOUBLES[rng() % 9]);
        }
    case 2: {
        const char *str = STRINGS[rng() % 7];
        return (sp_value_t){.type = SP_TYPE_STRING, .u.s = {str, (uint32_t)strlen(str)}};
    }
    default:
        return B(rng() % 2);
    }
}

Test(plan, random_conditions_agree_with_the_reference)
{
    schema_t *s = typed_schema();
    size_t seen[3] = {0, 0, 0};
    for (int iter = 0; iter < 3000; iter++) {
        sp_buf_t text = SP_BUF_INIT;
        sp_buf_printf(&text, "SELECT count(*) FROM activity WHERE ");
        ref_node_t *ref = random_cond(1 + (int)(rng() % 4), &text);
        plan_t *p = build_ok(sp_buf_cstr(&text), s);
        for (int r = 0; r < 40; r++) {
            sp_value_t row[5], slots[5];
            for (int c = 0; c < 5; c++)
                row[c] = random_value(c);
            for (size_t k = 0; k < p->nslots; k++)
                slots[k] = row[p->slots[k].schema_index];
            int want = ref_eval(ref, row);
            int got = (int)expr_eval(p->where, slots);
            cr_assert_eq(got, want, "%s\n row i=%d d=%d s=%d f=%d j=%d", text.data, row[0].type,
                         row[1].type, row[2].type, row[3].type, row[4].type);
            seen[want]++;
        }
        plan_destroy(&p);
        free_ref(ref);
        sp_buf_free(&text);
    }
    cr_assert(seen[F] > 1000 && seen[T] > 1000 && seen[U] > 1000, "%zu %zu %zu", seen[F], seen[T], seen[U]);
    free_schema(s);
}

Test(plan, long_conditions_bind_and_evaluate)
{
    /* 20000 terms: balanced by the parser, so binding and evaluation recurse
     * about log2(20000) deep, not 20000. */
    schema_t *s = ab_schema();
    sp_buf_t b = SP_BUF_INIT;
    sp_buf_printf(&b, "SELECT count(*) FROM activity WHERE ");
    for (int i = 0; i < 20000; i++)
        sp_buf_printf(&b, "%sa <> %d", i ? " AND " : "", i + 1);
    plan_t *p = build_ok(sp_buf_cstr(&b), s);
    sp_value_t row[1] = {I(0)};
    cr_assert_eq(expr_eval(p->where, row), EXPR_TRUE);
    row[0] = I(20000);
    cr_assert_eq(expr_eval(p->where, row), EXPR_FALSE);
    row[0] = N;
    cr_assert_eq(expr_eval(p->where, row), EXPR_UNKNOWN);
    plan_destroy(&p);
    sp_buf_free(&b);
    free_schema(s);
}

Test(plan, random_queries_bind_or_fail_cleanly)
{
    /* Soups of the grammar against a schema: whatever parses must bind or
     * fail with a positioned message, and bound plans must be consistent. */
    schema_t *s = activity_schema();
    static const char *const items[] = {"gt", "Model", "count(*)", "count(x)", "sum(x)", "sum(gt)",
                                        "avg(Index)", "min(ok)", "max(User)", "nope", "GT", "x"};
    static const char *const conds[] = {"", " WHERE x > 1", " WHERE gt = 1", " WHERE ok IS NULL",
                                        " WHERE Model IN ('a', NULL)", " WHERE y = z OR NOT x < 0"};
    static const char *const groups[] = {"", " GROUP BY gt", " GROUP BY gt, Model", " GROUP BY x, gt, GT"};
    size_t ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        sp_buf_t b = SP_BUF_INIT;
        sp_buf_printf(&b, "SELECT ");
        for (int k = 0, n = 1 + (int)(rng() % 4); k < n; k++)
            sp_buf_printf(&b, "%s%s", k ? ", " : "", items[rng() % 12]);
        sp_buf_printf(&b, " FROM activity%s%s", conds[rng() % 6], groups[rng() % 4]);
        plan_t *p = NULL;
        sp_err_t err = {0};
        int rc = plan_build(sp_buf_cstr(&b), "activity", s, &p, &err);
        if (rc == 0) {
            ok++;
            for (size_t i = 0; i < p->ngroups; i++)
                cr_assert_eq(p->group_slots[i], (int)i);
            for (size_t i = 0; i < p->naggs; i++)
                cr_assert(p->aggs[i].slot < (int)p->nslots);
            for (size_t i = 1; i < p->naggs; i++)
                cr_assert_leq(p->aggs[i - 1].func, p->aggs[i].func);
            for (size_t i = 0; i < p->noutputs; i++)
                cr_assert_lt((size_t)p->outputs[i].index, p->outputs[i].is_agg ? p->naggs : p->ngroups);
            plan_destroy(&p);
        } else {
            cr_assert_null(p);
            cr_assert(strncmp(err.msg, "SQL error at line 1, column ", 28) == 0, "%s", err.msg);
        }
        sp_buf_free(&b);
    }
    cr_assert_gt(ok, 100);
    free_schema(s);
}
