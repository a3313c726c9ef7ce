/* tests/e2e/badinput_test.c -- what users type and send that is wrong: bad
 * flags, bad SQL, missing directories, damaged checkpoints, malformed lines
 * in each mode, JSONTestSuite documents through the whole engine, and
 * garbage on the driver's socket. Each gets a one-line error and a
 * non-zero exit (never a crash), and loses nothing. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "e2e.h"
#include "sp_util.h"
#include "wire.h"

static e2e_env_t env;

static void setup(void) { e2e_env_init(&env, "e2e-bad"); }

static void teardown(void) { e2e_env_free(&env); }

TestSuite(bad, .init = setup, .fini = teardown);

/* The error is one line, starts with "spate: error:", and contains want. */
static void expect_one_line_error(const char *err, const char *want)
{
    cr_assert_not_null(err);
    const char *e = strstr(err, "spate: error: ");
    cr_assert_not_null(e, "no 'spate: error:' line in: %s", err);
    const char *nl = strchr(e, '\n');
    cr_assert(nl != NULL && nl[1] == '\0', "the error must be one last line: %s", err);
    cr_assert(strstr(e, want) != NULL, "expected '%s' in: %s", want, e);
}

static void expect_usage(int rc, char *err, const char *want)
{
    cr_assert_eq(rc, 2, "exit status %d for: %s", rc, err);
    expect_one_line_error(err, want);
    free(err);
}

Test(bad, flags_are_refused_with_one_line)
{
    char *err = NULL;
    int rc;
    rc = e2e_spate(10000, NULL, &err, "run", "--bogus", NULL);
    expect_usage(rc, err, "unknown flag '--bogus'");
    rc = e2e_spate(10000, NULL, &err, "run", "--sql", NULL);
    expect_usage(rc, err, "needs a value");
    rc = e2e_spate(10000, NULL, &err, "run", "--sql", "SELECT count(*) FROM activity", "--checkpoint", env.ckpt, NULL);
    expect_usage(rc, err, "--source NAME=json:DIR is required");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", "activity", "--sql", "x", "--checkpoint", env.ckpt, NULL);
    expect_usage(rc, err, "expected NAME=FORMAT:DIR");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--max-files-per-trigger", "ten", NULL);
    expect_usage(rc, err, "'ten' is not a whole number");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--trigger", "sometimes", NULL);
    expect_usage(rc, err, "unknown trigger 'sometimes'");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--max-bytes-per-trigger", "12Q", NULL);
    expect_usage(rc, err, "unknown unit");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--sink", "kafka:x", NULL);
    expect_usage(rc, err, "unknown sink 'kafka:x'");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--output-mode", "append", NULL);
    expect_usage(rc, err, "append");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                   "--schema", "gt STRNG", NULL);
    expect_usage(rc, err, "unknown type 'STRNG'");
    rc = e2e_spate(10000, NULL, &err, "executor", NULL);
    expect_usage(rc, err, "--driver");
    rc = e2e_spate(10000, NULL, &err, "frobnicate", NULL);
    expect_usage(rc, err, "unknown command 'frobnicate'");
    rc = e2e_spate(10000, NULL, &err, "result", "--checkpoint", env.ckpt, "--format", "xml", NULL);
    expect_usage(rc, err, "unknown format 'xml'");
    /* nothing was created by any of these */
    cr_assert_null(opendir(env.ckpt), "a refused command created the checkpoint directory");
}

Test(bad, sql_errors_point_at_the_position)
{
    e2e_gen(env.input, 1, 100, 41, false, NULL);
    char *err = NULL;
    int rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql",
                       "SELECT gt, count(*) FORM activity GROUP BY gt", "--checkpoint", env.ckpt, NULL);
    expect_usage(rc, err, "line 1, column 21");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql",
                   "SELECT gtt, count(*) FROM activity GROUP BY gtt", "--checkpoint", env.ckpt, NULL);
    expect_usage(rc, err, "did you mean 'gt'");
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql",
                   "SELECT gt, sum(Device) FROM activity GROUP BY gt", "--checkpoint", env.ckpt, NULL);
    cr_assert_eq(rc, 2);
    expect_one_line_error(err, "Device");
    free(err);
    rc = e2e_spate(10000, NULL, &err, "run", "--source", env.src, "--sql",
                   "SELECT gt, count(*) FROM other GROUP BY gt", "--checkpoint", env.ckpt, NULL);
    expect_usage(rc, err, "other");
    cr_assert_null(opendir(env.ckpt), "bad SQL must not create a checkpoint");
}

Test(bad, a_missing_or_unreadable_source_directory)
{
    char *err = NULL;
    char *missing = sp_xasprintf("activity=json:%s/nope", env.dir);
    int rc = e2e_spate(10000, NULL, &err, "run", "--source", missing, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, NULL);
    cr_assert_eq(rc, 1);
    expect_one_line_error(err, "nope");
    free(err);
    free(missing);
    char *file = sp_xasprintf("%s/afile", env.dir);
    ts_write_file(file, "x", 1);
    char *filesrc = sp_xasprintf("activity=json:%s", file);
    rc = e2e_spate(10000, NULL, &err, "run", "--source", filesrc, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, NULL);
    cr_assert_eq(rc, 1);
    expect_one_line_error(err, "not a directory");
    free(err);
    free(file);
    free(filesrc);
}

static int run_count(const char *mode, char **err)
{
    return e2e_spate(30000, NULL, err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                     "--trigger", "available-now", "--mode", mode, "--quiet", NULL);
}

Test(bad, a_damaged_checkpoint_is_refused_not_crashed_on)
{
    e2e_gen(env.input, 2, 300, 42, false, NULL);
    char *err = NULL;
    cr_assert_eq(run_count("permissive", &err), 0, "%s", err);
    free(err);
    char *data = sp_xasprintf("%s/data.mdb", env.ckpt);
    size_t len = 0;
    char *orig = ts_read_file(data, &len);
    cr_assert_gt(len, 8192);
    /* 1: truncated to half; 2: its first pages zeroed; 3: random bytes;
     * 4: a byte flipped in every page after the meta pages */
    for (int kind = 1; kind <= 4; kind++) {
        char *bad = malloc(len);
        memcpy(bad, orig, len);
        size_t n = len;
        if (kind == 1)
            n = len / 2;
        else if (kind == 2)
            memset(bad, 0, 8192);
        else if (kind == 3)
            for (size_t i = 0; i < len; i++)
                bad[i] = (char)(rand() & 0xff);
        else
            for (size_t p = 2 * 4096 + 100; p < len; p += 4096)
                bad[p] ^= 0x5a;
        ts_write_file(data, bad, n);
        free(bad);
        const char *cmds[3][12] = {
            {"result", "--checkpoint", env.ckpt, NULL},
            {"checkpoint", "ls", env.ckpt, NULL},
            {"run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt, "--trigger", "available-now", NULL},
        };
        for (int c = 0; c < 3; c++) {
            int rc = e2e_spatev(30000, NULL, &err, cmds[c]);
            /* kind 4 may leave LMDB's structure readable; then our record
             * checksums must catch it, or the data read is still valid */
            if (kind == 4 && rc == 0) {
                free(err);
                continue;
            }
            cr_assert(rc >= 1 && rc <= 3, "damage %d, command %s: exit %d (a crash is >= 128): %s", kind,
                      cmds[c][0], rc, err);
            expect_one_line_error(err, "");
            free(err);
        }
    }
    free(orig);
    free(data);
}

/* permissive: malformed lines skipped and counted, wrong types are NULL;
 * dropmalformed: rows with a wrong type in a column the query reads are
 * dropped too; failfast: the query stops naming file and line. */
static bool typed_ok(const oracle_row_t *row, void *ctx)
{
    (void)ctx;
    oracle_value_t v;
    return oracle_row_get(row, "gt", ORACLE_STRING, &v) == 0 && oracle_row_get(row, "x", ORACLE_DOUBLE, &v) == 0 &&
           oracle_row_get(row, "Index", ORACLE_BIGINT, &v) == 0;
}

#define SQL_TYPED "SELECT gt, count(*) AS n, sum(x) AS sx, max(Index) AS mi FROM activity GROUP BY gt"

static void run_mode_and_compare(const char *mode, oracle_filter_fn filter)
{
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}, {ORACLE_SUM, "x"}, {ORACLE_MAX, "Index"}};
    static const char *const names[] = {"gt", "n", "sx", "mi"};
    oracle_t *o = oracle_new(by, 1, aggs, 3, filter, NULL);
    cr_assert_eq(oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA), 0);
    cr_assert_eq(oracle_add_dir(o, env.input), 0);
    ts_rmtree(env.ckpt);
    char *err = NULL;
    int rc = e2e_spate(30000, NULL, &err, "run", "--source", env.src, "--sql", SQL_TYPED, "--checkpoint", env.ckpt,
                       "--schema", ORACLE_ACTIVITY_SCHEMA, "--trigger", "available-now", "--mode", mode,
                       "--split-size", "8K", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    /* the progress lines report the malformed lines */
    cr_assert(strstr(err, " malformed)") != NULL, "%s", err);
    free(err);
    e2e_expect_result(env.ckpt, o, names, 1e-9);
    oracle_stats_t st = oracle_stats(o);
    cr_assert_gt(st.malformed, 0);
    if (filter == NULL)
        cr_assert_gt(st.type_errors, 0, "the data must hold wrong-typed values for the test to mean anything");
    else
        cr_assert_lt(st.selected, st.rows, "dropmalformed must drop rows here");
    oracle_destroy(&o);
}

Test(bad, permissive_and_dropmalformed_modes)
{
    e2e_gen(env.input, 4, 6000, 43, true, NULL);
    run_mode_and_compare("permissive", NULL);
    run_mode_and_compare("dropmalformed", typed_ok);
}

Test(bad, failfast_names_file_and_line)
{
    e2e_gen(env.input, 1, 3000, 44, true, NULL);
    char *err = NULL;
    int rc = e2e_spate(30000, NULL, &err, "run", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                       "--schema", ORACLE_ACTIVITY_SCHEMA, "--trigger", "available-now", "--mode", "failfast",
                       "--quiet", NULL);
    cr_assert_eq(rc, 1, "failfast must fail: %s", err);
    const char *e = strstr(err, "spate: error: ");
    cr_assert_not_null(e, "%s", err);
    const char *l = strstr(e, " line ");
    cr_assert_not_null(l, "the message names the line: %s", e);
    long line = atol(l + 6);
    cr_assert_gt(line, 0);
    /* that line of the file really is bad, and every line before it is fine */
    char *path = sp_xasprintf("%s/part-00000.json", env.input);
    cr_assert(strstr(e, path) != NULL, "the message names the file: %s", e);
    char *text = ts_read_file(path, NULL);
    char *p = text;
    for (long i = 1; i < line; i++)
        p = strchr(p, '\n') + 1;
    char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    static const char *const by[] = {"gt"};
    static const oracle_agg_t aggs[] = {{ORACLE_COUNT_STAR, NULL}};
    oracle_t *o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    oracle_add_text(o, p, n);
    cr_assert_eq(oracle_malformed(o), 1, "line %ld is not malformed: %.*s", line, (int)n, p);
    oracle_destroy(&o);
    o = oracle_new(by, 1, aggs, 1, NULL, NULL);
    oracle_set_schema(o, ORACLE_ACTIVITY_SCHEMA);
    oracle_add_text(o, text, (size_t)(p - text));
    cr_assert_eq(oracle_malformed(o), 0, "an earlier line was malformed");
    oracle_destroy(&o);
    free(text);
    free(path);
    free(err);
    long long planned, committed;
    cr_assert(e2e_batches(env.ckpt, &planned, &committed));
    cr_assert_eq(committed, -1, "nothing is committed after a failfast stop");
}

/* JSONTestSuite through the engine: each y_ object a row, each n_ line
 * never a row, i_ lines no crash. */
Test(bad, json_test_suite_through_the_engine)
{
    char *suite = sp_xasprintf("%s/JSONTestSuite/test_parsing", ts_env("SPATE_SHARED_DATA"));
    DIR *d = opendir(suite);
    cr_assert_not_null(d, "%s", suite);
    sp_buf_t data = SP_BUF_INIT;
    int objects = 0, docs = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char kind = de->d_name[0];
        if ((kind != 'y' && kind != 'n' && kind != 'i') || de->d_name[1] != '_')
            continue;
        char *path = sp_xasprintf("%s/%s", suite, de->d_name);
        size_t len = 0;
        char *doc = ts_read_file(path, &len);
        free(path);
        if (doc == NULL)
            continue;
        if (memchr(doc, '\n', len) || memchr(doc, '\r', len)) {
            /* y_: newlines are whitespace, so they may become spaces; an
             * n_ or i_ document is left out rather than changed */
            if (kind != 'y') {
                free(doc);
                continue;
            }
            for (size_t i = 0; i < len; i++)
                if (doc[i] == '\n' || doc[i] == '\r')
                    doc[i] = ' ';
        }
        size_t lead = strspn(doc, " \t");
        if (kind == 'i' && doc[lead] == '{') {
            /* an i_ object may be taken or not: keep the count exact */
            free(doc);
            continue;
        }
        if (kind == 'y' && doc[lead] == '{')
            objects++;
        sp_buf_append(&data, doc, len);
        sp_buf_putc(&data, '\n');
        docs++;
        free(doc);
    }
    closedir(d);
    free(suite);
    cr_assert_gt(docs, 300);
    cr_assert_gt(objects, 5);
    cr_assert_eq(ts_put_file(env.input, "suite.json", data.data, data.len), 0);
    sp_buf_free(&data);
    char *out = NULL, *err = NULL;
    int rc = e2e_spate(30000, &out, &err, "run", "--source", env.src, "--sql", "SELECT count(*) AS n FROM activity",
                       "--schema", "a STRING", "--checkpoint", env.ckpt, "--trigger", "available-now", "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    char *res = e2e_result_json(env.ckpt);
    char want[64];
    snprintf(want, sizeof want, "{\"n\":%d}\n", objects);
    cr_assert_str_eq(res, want, "only the y_ objects are rows");
    free(res);
}

Test(bad, garbage_on_the_driver_socket_changes_nothing)
{
    e2e_gen(env.input, 3, 1000, 45, false, NULL);
    int port = e2e_free_port();
    char *bind = sp_xasprintf("tcp://127.0.0.1:%d", port);
    const char *dargs[] = {"driver", "--source", env.src, "--sql", E2E_SQL_COUNT, "--checkpoint", env.ckpt,
                           "--trigger", "available-now", "--bind", bind, "--quiet", NULL};
    pid_t driver = e2e_spawn(env.dir, "driver", NULL, dargs);

    /* raw TCP garbage, many times */
    for (int i = 0; i < 20; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)port)};
        long long deadline = ts_now_ms() + 5000;
        while (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && ts_now_ms() < deadline) {
            close(s);
            s = socket(AF_INET, SOCK_STREAM, 0);
            usleep(10000);
        }
        char junk[512];
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (char)(rand() & 0xff);
        if (i % 2 == 0)
            memcpy(junk, "\xff\0\0\0\0\0\0\0\x01\x7f", 10); /* looks like a ZMTP greeting */
        ssize_t w = write(s, junk, sizeof junk);
        (void)w;
        close(s);
    }
    /* a ZeroMQ peer sending non-spate frames and a HELLO of another version */
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    cr_assert_eq(zmq_connect(dealer, bind), 0);
    for (int i = 0; i < 200; i++) {
        char junk[64];
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (char)(rand() & 0xff);
        zmq_send(dealer, junk, (size_t)(rand() % 64), 0);
    }
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE); /* multi-frame */
    zmq_send(dealer, "b", 1, 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "spate", 5);
    msgpack_pack_uint32(&pk, WIRE_VERSION + 1);
    msgpack_pack_uint32(&pk, WIRE_HELLO);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "h", 1);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_uint32(&pk, 1);
    zmq_send(dealer, sb.data, sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    char reply[1024];
    int n = zmq_recv(dealer, reply, sizeof reply, 0);
    cr_assert_gt(n, 0, "the driver answers a peer of another version");
    wire_msg_t m;
    sp_err_t werr;
    cr_assert_eq(wire_decode(reply, (size_t)n, &m, &werr), 0, "%s", werr.msg);
    cr_assert_eq(m.type, WIRE_REFUSE, "with REFUSE");
    cr_assert(m.u.refuse.reason.len > 0 && memmem(m.u.refuse.reason.ptr, m.u.refuse.reason.len, "version", 7));
    wire_msg_release(&m);
    zmq_close(dealer);
    zmq_ctx_term(ctx);

    /* a real executor still gets the whole job done */
    const char *eargs[] = {"executor", "--driver", bind, NULL};
    pid_t exec = e2e_spawn(env.dir, "executor", NULL, eargs);
    int status;
    cr_assert(ts_wait(driver, 30000, &status), "the driver did not finish");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the driver must survive the garbage");
    kill(exec, SIGTERM);
    cr_assert(ts_wait(exec, 10000, &status));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM drains the executor: exit 0");
    oracle_t *o = e2e_oracle_count_by_gt(env.input);
    static const char *const names[] = {"gt", "count"};
    e2e_expect_result(env.ckpt, o, names, 0);
    oracle_destroy(&o);
    free(bind);
}

/* Random damage, many times: 1, 4 or 32 bytes of data.mdb overwritten at
 * random places. Whatever happens, no command may die of a signal; when
 * one fails it says so in one line. */
Test(bad, random_damage_never_crashes)
{
    e2e_gen(env.input, 3, 400, 46, false, NULL);
    char *err = NULL;
    cr_assert_eq(e2e_spate(60000, NULL, &err, "run", "--source", env.src, "--sql",
                           "SELECT gt, Model, count(*), min(User), avg(x) FROM activity GROUP BY gt, Model",
                           "--checkpoint", env.ckpt, "--trigger", "available-now", "--max-files-per-trigger", "1",
                           "--quiet", NULL),
                 0, "%s", err);
    free(err);
    char *data = sp_xasprintf("%s/data.mdb", env.ckpt);
    size_t len = 0;
    char *orig = ts_read_file(data, &len);
    unsigned seed = 1234;
    int failures = 0, trials = 120;
    for (int t = 0; t < trials; t++) {
        char *bad = malloc(len);
        memcpy(bad, orig, len);
        int flips = t % 3 == 0 ? 1 : (t % 3 == 1 ? 4 : 32);
        for (int f = 0; f < flips; f++)
            bad[rand_r(&seed) % len] = (char)(rand_r(&seed) & 0xff);
        ts_write_file(data, bad, len);
        free(bad);
        const char *cmds[3][12] = {
            {"result", "--checkpoint", env.ckpt, "--format", "json", NULL},
            {"checkpoint", "ls", env.ckpt, NULL},
            {"run", "--source", env.src, "--sql", "SELECT gt, Model, count(*), min(User), avg(x) FROM activity GROUP BY gt, Model",
             "--checkpoint", env.ckpt, "--trigger", "once", "--quiet", NULL},
        };
        for (int c = 0; c < 3; c++) {
            int rc = e2e_spatev(30000, NULL, &err, cmds[c]);
            cr_assert(rc >= 0 && rc < 128, "trial %d (%d bytes), %s: died with exit %d: %s", t, flips, cmds[c][0],
                      rc, err);
            if (rc != 0) {
                failures++;
                expect_one_line_error(err, "");
            }
            free(err);
        }
        ts_write_file(data, orig, len); /* each trial starts from the good file */
    }
    cr_log_info("%d of %d damaged runs refused, none crashed", failures, 3 * trials);
    free(orig);
    free(data);
}
