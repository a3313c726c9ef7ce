/* cli/cli_inspect.c -- `spate result` and `spate checkpoint ls`: read-only
 * views of a checkpoint, safe while a driver runs on it (LMDB readers do
 * not block the writer). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "plan.h"
#include "result.h"
#include "schema.h"
#include "sp_util.h"

/* Open dir read-only and bind the stored query's plan. */
static int open_query(const char *dir, ckpt_t **ckpt, ckpt_query_t *q, plan_t **plan, sp_err_t *err)
{
    int rc = ckpt_open(dir, CKPT_READONLY, ckpt, err);
    if (rc == SP_ENOTFOUND)
        return sp_err_set(err, SP_ENOTFOUND, "no spate checkpoint in %s", dir);
    if (rc != 0)
        return rc;
    rc = ckpt_query_read(*ckpt, q, err);
    if (rc == SP_ENOTFOUND)
        return sp_err_set(err, SP_ENOTFOUND, "checkpoint %s holds no query yet", dir);
    if (rc != 0)
        return rc;
    schema_t *schema = NULL;
    if ((rc = schema_parse(q->schema, &schema, err)) != 0)
        return sp_err_wrap(err, SP_ECORRUPT, "checkpoint %s holds a bad schema", dir);
    rc = plan_build(q->sql, q->source_name, schema, plan, err);
    schema_destroy(&schema);
    if (rc != 0)
        return sp_err_wrap(err, SP_ECORRUPT, "checkpoint %s holds a query that does not bind", dir);
    return 0;
}

int cli_result(int argc, char **argv)
{
    enum { O_CKPT = 1, O_FORMAT, O_HELP };
    static const struct option opts[] = {
        {"checkpoint", required_argument, NULL, O_CKPT},
        {"format", required_argument, NULL, O_FORMAT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *format = "table";
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_CKPT: dir = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_HELP:
            printf("usage: spate result --checkpoint DIR [--format table|json|csv]\n"
                   "Prints the current result table kept in a checkpoint, whether or not\n"
                   "its driver runs. json is JSON Lines: one object per row.\n");
            return CLI_OK;
        case ':':
            return cli_usage_error("flag %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("unknown flag '%s' (see spate result --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate result --help)", argv[optind]);
    if (dir == NULL)
        return cli_usage_error("--checkpoint DIR is required");
    sp_err_t err;
    sp_err_clear(&err);
    result_format_t fmt;
    if (result_format_parse(format, &fmt, &err) != 0)
        return cli_usage_error("--format: %s", err.msg);
    ckpt_t *ckpt = NULL;
    ckpt_query_t q = {0};
    plan_t *plan = NULL;
    int rc = open_query(dir, &ckpt, &q, &plan, &err);
    result_set_t *rs = NULL;
    if (rc == 0) {
        rs = result_set_new(plan);
        rc = result_set_add_state(rs, ckpt, &err);
    }
    if (rc == 0) {
        result_set_sort(rs);
        sp_buf_t out = SP_BUF_INIT;
        result_set_render(rs, fmt, 0, false, &out);
        if (sp_write_all(STDOUT_FILENO, out.data, out.len) != 0)
            rc = sp_err_set(&err, SP_EIO, "cannot write the result");
        sp_buf_free(&out);
    }
    result_set_destroy(&rs);
    plan_destroy(&plan);
    ckpt_query_free(&q);
    ckpt_close(&ckpt);
    return rc == 0 ? CLI_OK : cli_fail(rc, &err);
}

static void human_bytes(uint64_t b, char *out, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(out, n, "%.1f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(out, n, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

int cli_checkpoint(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        printf("usage: spate checkpoint ls DIR\n"
               "Lists the checkpoint's databases with entry counts and sizes, and the\n"
               "last planned and last committed batch.\n");
        return CLI_OK;
    }
    if (argc < 2 || strcmp(argv[1], "ls") != 0)
        return cli_usage_error("usage: spate checkpoint ls DIR");
    if (argc != 3)
        return cli_usage_error("usage: spate checkpoint ls DIR");
    const char *dir = argv[2];
    sp_err_t err;
    sp_err_clear(&err);
    ckpt_t *ckpt = NULL;
    int rc = ckpt_open(dir, CKPT_READONLY, &ckpt, &err);
    if (rc == SP_ENOTFOUND)
        rc = sp_err_set(&err, SP_ENOTFOUND, "no spate checkpoint in %s", dir);
    if (rc != 0)
        return cli_fail(rc, &err);
    ckpt_stats_t st;
    rc = ckpt_stats(ckpt, &st, &err);
    ckpt_query_t q = {0};
    int qrc = rc == 0 ? ckpt_query_read(ckpt, &q, &err) : rc;
    if (rc == 0 && qrc != 0 && qrc != SP_ENOTFOUND)
        rc = qrc;
    if (rc == 0) {
        char fsz[32], msz[32];
        human_bytes(st.file_size, fsz, sizeof fsz);
        human_bytes(st.map_size, msz, sizeof msz);
        printf("checkpoint %s\n", dir);
        printf("format version %u, data file %s (map %s)\n", st.format_version, fsz, msz);
        if (qrc == 0) {
            printf("query id %s%s%s\n", q.query_id, q.name[0] ? ", name " : "", q.name);
            printf("source %s=%s:%s\n", q.source_name, q.source_format, q.source_path);
            printf("grouping keys: %s\n", q.group_signature[0] ? q.group_signature : "(none)");
            printf("aggregates: %s\n", q.aggs_signature);
            printf("key groups: %u\n", q.key_groups);
            printf("sql: %s\n", q.sql);
        }
        printf("\n%-10s %12s %12s\n", "database", "entries", "size");
        for (int i = 0; i < CKPT_NDBS; i++) {
            char b[32];
            human_bytes(st.dbs[i].bytes, b, sizeof b);
            printf("%-10s %12llu %12s\n", st.dbs[i].name, (unsigned long long)st.dbs[i].entries, b);
        }
        printf("\nlast planned batch:   %s", st.last_planned < 0 ? "none\n" : "");
        if (st.last_planned >= 0)
            printf("%lld\n", (long long)st.last_planned);
        printf("last committed batch: %s", st.last_committed < 0 ? "none\n" : "");
        if (st.last_committed >= 0)
            printf("%lld\n", (long long)st.last_committed);
        if (st.last_planned > st.last_committed)
            printf("batch %lld is planned but not committed: it runs again, with the same files, on restart\n",
                   (long long)st.last_planned);
    }
    ckpt_query_free(&q);
    ckpt_close(&ckpt);
    return rc == 0 ? CLI_OK : cli_fail(rc, &err);
}
