/* tests/executor/task_test.c -- one task's scan (executor/task.h) against
 * what the test itself wrote: every line counted once by any split of a
 * file into ranges, the file's last bytes (scanned from the padded read
 * buffer, not the mapping), a line over TASK_MAX_LINE, and a file
 * shrinking under the scan (an error, not a crash). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "sp_util.h"
#include "task.h"
#include "testsupport.h"
#include "value.h"

/* The groups the tests write, in this order; counts are indexed by it. */
static const char *const groups[] = {"walk", "sit", "stand", "bike", "stairsup"};
#define NGROUPS 5

typedef struct expect {
    uint64_t count[NGROUPS];
    uint64_t malformed;
    uint64_t rows;
} expect_t;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Append one line of a random kind to b and to the expectation. */
static void gen_line(uint64_t *st, sp_buf_t *b, expect_t *e, bool allow_long)
{
    unsigned g = (unsigned)(rng_next(st) % NGROUPS);
    switch (rng_next(st) % 10) {
    case 0: /* blank */
        sp_buf_printf(b, "%s\n", rng_next(st) % 2 ? "" : "  \t");
        return;
    case 1: /* malformed: cut short */
        sp_buf_printf(b, "{\"gt\":\"%s\",\"x\":1.5\n", groups[g]);
        e->malformed++;
        return;
    case 2: { /* a long line: padding value before the key */
        unsigned n = allow_long ? (unsigned)(rng_next(st) % 20000) : (unsigned)(rng_next(st) % 300);
        sp_buf_printf(b, "{\"pad\":\"");
        for (unsigned i = 0; i < n; i++)
            sp_buf_putc(b, (char)('a' + i % 26));
        sp_buf_printf(b, "\",\"gt\":\"%s\"}\n", groups[g]);
        break;
    }
    default:
        sp_buf_printf(b, "{\"Index\":%llu,\"gt\":\"%s\",\"x\":%d.25}\n",
                      (unsigned long long)(rng_next(st) % 100000), groups[g], (int)(rng_next(st) % 100));
        break;
    }
    e->count[g]++;
    e->rows++;
}

typedef struct scanner {
    task_query_t *q;
    agg_table_t *t;
} scanner_t;

static scanner_t scanner_new(void)
{
    scanner_t s;
    sp_err_t err;
    int rc = task_query_new("activity", "gt STRING, x DOUBLE, Index BIGINT",
                            "SELECT gt, count(*) AS n FROM activity GROUP BY gt", &s.q, &err);
    cr_assert_eq(rc, 0, "task_query_new: %s", err.msg);
    s.t = task_query_new_table(s.q);
    return s;
}

static void scanner_free(scanner_t *s)
{
    agg_table_destroy(&s->t);
    task_query_destroy(&s->q);
}

/* Add the table's counts per group into got (a group the test never wrote
 * fails the test). */
static void add_counts(scanner_t *s, uint64_t got[NGROUPS])
{
    const plan_t *plan = task_query_plan(s->q);
    size_t pos = 0, klen;
    const void *key;
    uint64_t hash;
    sp_buf_t state = SP_BUF_INIT;
    while (agg_table_next(s->t, &pos, &key, &klen, &hash, &state)) {
        sp_value_t k, v;
        sp_err_t err;
        cr_assert_eq(sp_key_decode(key, klen, &k, 1, &err), 0);
        cr_assert_eq(k.type, SP_TYPE_STRING);
        cr_assert_eq(agg_state_finalize(plan->aggs, plan->naggs, state.data, state.len, &v, &err), 0);
        int g = -1;
        for (int i = 0; i < NGROUPS; i++)
            if (strlen(groups[i]) == k.u.s.len && memcmp(groups[i], k.u.s.ptr, k.u.s.len) == 0)
                g = i;
        cr_assert_geq(g, 0, "a group never written: %.*s", (int)k.u.s.len, k.u.s.ptr);
        got[g] += (uint64_t)v.u.i;
        state.len = 0;
    }
    sp_buf_free(&state);
}

/* Scan path as the ranges cuts[0..n] (cuts[0] = 0, cuts[n] = size) and
 * compare with e. */
static void expect_ranges(scanner_t *s, const char *path, const uint64_t *cuts, size_t n,
                          const expect_t *e, const char *what)
{
    uint64_t got[NGROUPS] = {0};
    task_stats_t stats = {0};
    for (size_t i = 0; i < n; i++) {
        sp_err_t err;
        agg_table_clear(s->t);
        int rc = task_scan(s->q, path, cuts[i], cuts[i + 1], WIRE_MODE_PERMISSIVE, s->t, &stats, NULL, &err);
        cr_assert_eq(rc, 0, "%s: range %llu-%llu: %s", what, (unsigned long long)cuts[i],
                     (unsigned long long)cuts[i + 1], err.msg);
        add_counts(s, got);
    }
    for (int g = 0; g < NGROUPS; g++)
        cr_expect_eq(got[g], e->count[g], "%s: group %s counted %llu, written %llu", what, groups[g],
                     (unsigned long long)got[g], (unsigned long long)e->count[g]);
    cr_expect_eq(stats.rows, e->rows, "%s: %llu rows, written %llu", what, (unsigned long long)stats.rows,
                 (unsigned long long)e->rows);
    cr_expect_eq(stats.malformed, e->malformed, "%s: %llu malformed, written %llu", what,
                 (unsigned long long)stats.malformed, (unsigned long long)e->malformed);
}

static void expect_split(scanner_t *s, const char *path, uint64_t size, uint64_t step, const expect_t *e)
{
    size_t n = (size_t)((size + step - 1) / step);
    uint64_t *cuts = sp_xcalloc(n + 1, sizeof *cuts);
    for (size_t i = 0; i <= n; i++)
        cuts[i] = i * step < size ? i * step : size;
    char what[64];
    snprintf(what, sizeof what, "ranges of %llu bytes", (unsigned long long)step);
    expect_ranges(s, path, cuts, n, e, what);
    free(cuts);
}

static char *write_lines(const char *dir, const char *name, uint64_t seed, size_t bytes, bool allow_long,
                         expect_t *e, size_t *size)
{
    sp_buf_t b = SP_BUF_INIT;
    memset(e, 0, sizeof *e);
    uint64_t st = seed;
    while (b.len < bytes)
        gen_line(&st, &b, e, allow_long);
    char *path = sp_xasprintf("%s/%s", dir, name);
    cr_assert_eq(ts_write_file(path, b.data, b.len), 0);
    *size = b.len;
    sp_buf_free(&b);
    return path;
}

Test(task, any_split_counts_every_line_once, .timeout = 120)
{
    char *dir = ts_tmpdir("task");
    scanner_t s = scanner_new();
    expect_t e;
    size_t size;
    char *big = write_lines(dir, "big.json", 42, 3u << 20, true, &e, &size);
    uint64_t whole[2] = {0, size};
    expect_ranges(&s, big, whole, 1, &e, "the whole file");
    const uint64_t steps[] = {4093, 65536, 100003, 1u << 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        expect_split(&s, big, size, steps[i], &e);
    /* random cut points */
    uint64_t st = 7;
    for (int trial = 0; trial < 20; trial++) {
        uint64_t cuts[12];
        size_t n = 1 + (size_t)(rng_next(&st) % 10);
        cuts[0] = 0;
        cuts[n] = size;
        for (size_t i = 1; i < n; i++)
            cuts[i] = rng_next(&st) % size;
        for (size_t i = 1; i < n; i++) /* sorted */
            for (size_t j = i; j > 1 && cuts[j] < cuts[j - 1]; j--) {
                uint64_t tmp = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = tmp;
            }
        expect_ranges(&s, big, cuts, n, &e, "random cuts");
    }
    /* every range of a few bytes over a small file: each cut lands on
     * every kind of byte, near the end too */
    expect_t es;
    size_t ssize;
    char *small = write_lines(dir, "small.json", 9, 6000, false, &es, &ssize);
    for (uint64_t step = 1; step <= 97; step += 8)
        expect_split(&s, small, ssize, step, &es);
    free(small);
    free(big);
    scanner_free(&s);
    ts_rmtree(dir);
    free(dir);
}

/* The end of a file: shorter than jscan's padding, no last newline, a
 * last line cut short; these bytes come from the read buffer. */
Test(task, the_last_bytes_of_a_file)
{
    char *dir = ts_tmpdir("task");
    scanner_t s = scanner_new();
    static const struct {
        const char *text;
        uint64_t walk, sit, malformed;
    } cases[] = {
        {"", 0, 0, 0},
        {"{\"gt\":\"walk\"}", 1, 0, 0},
        {"{\"gt\":\"walk\"}\n", 1, 0, 0},
        {"\n\n{\"gt\":\"sit\"}\n{\"gt\":\"walk\"}", 1, 1, 0},
        {"{\"gt\":\"walk\"}\n{\"gt\":\"si", 1, 0, 1},
        {"{\"gt\":\"walk\"}\n{\"gt\":\"sit\"}   \n   ", 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* alone, and after enough lines that the mapping is used first */
        for (int lead = 0; lead < 2; lead++) {
            sp_buf_t b = SP_BUF_INIT;
            expect_t e = {{0}, 0, 0};
            for (int k = 0; lead && k < 5000; k++)
                sp_buf_printf(&b, "{\"gt\":\"stand\",\"x\":%d}\n", k);
            e.count[2] = lead ? 5000 : 0;
            sp_buf_printf(&b, "%s", cases[i].text);
            e.count[0] = cases[i].walk;
            e.count[1] = cases[i].sit;
            e.malformed = cases[i].malformed;
            e.rows = e.count[0] + e.count[1] + e.count[2];
            char *path = sp_xasprintf("%s/case%zu-%d.json", dir, i, lead);
            cr_assert_eq(ts_write_file(path, b.data, b.len), 0);
            uint64_t cuts[2] = {0, b.len};
            char what[64];
            snprintf(what, sizeof what, "case %zu%s", i, lead ? " after 5000 lines" : "");
            if (b.len > 0)
                expect_ranges(&s, path, cuts, 1, &e, what);
            for (uint64_t step = 1; step < 40 && b.len > 0; step += 3)
                expect_split(&s, path, b.len, b.len > 300 ? b.len - step : step, &e);
            free(path);
            sp_buf_free(&b);
        }
    }
    scanner_free(&s);
    ts_rmtree(dir);
    free(dir);
}

/* A line longer than TASK_MAX_LINE is one malformed line; the lines around
 * it count. */
Test(task, a_line_over_the_limit, .timeout = 120)
{
    char *dir = ts_tmpdir("task");
    char *path = sp_xasprintf("%s/long.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"gt\":\"walk\"}\n{\"gt\":\"sit\",\"pad\":\"");
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (size_t n = 0; n <= TASK_MAX_LINE; n += sizeof chunk)
        fwrite(chunk, 1, sizeof chunk, f);
    fprintf(f, "\"}\n{\"gt\":\"bike\"}\n");
    long size = ftell(f);
    fclose(f);
    scanner_t s = scanner_new();
    expect_t e = {{1, 0, 0, 1, 0}, 1, 2};
    uint64_t whole[2] = {0, (uint64_t)size};
    expect_ranges(&s, path, whole, 1, &e, "a line over TASK_MAX_LINE");
    expect_split(&s, path, (uint64_t)size, 32u << 20, &e);
    scanner_free(&s);
    unlink(path);
    free(path);
    ts_rmtree(dir);
    free(dir);
}

typedef struct shrinker {
    const char *path;
    const char *data;
    atomic_bool stop;
    size_t size;
} shrinker_t;

static void *shrink_loop(void *arg)
{
    shrinker_t *sh = arg;
    int fd = open(sh->path, O_WRONLY);
    while (fd >= 0 && !atomic_load(&sh->stop)) {
        /* down to one page, then back to its lines */
        if (ftruncate(fd, 4096) != 0)
            break;
        usleep(300);
        if (pwrite(fd, sh->data + 4096, sh->size - 4096, 4096) != (ssize_t)(sh->size - 4096))
            break;
        usleep(1000);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Files must not change once in place; one that shrinks under the scan is
 * an error naming it (or, when the timing misses, a clean result), never a
 * crash, however often it happens (the SIGBUS stays catchable). */
Test(task, a_file_shrinking_under_the_scan_is_an_error, .timeout = 120)
{
    char *dir = ts_tmpdir("task");
    char *path = sp_xasprintf("%s/shrinks.json", dir);
    sp_buf_t b = SP_BUF_INIT;
    while (b.len < (4u << 20))
        sp_buf_printf(&b, "{\"gt\":\"walk\"}\n");
    cr_assert_eq(ts_write_file(path, b.data, b.len), 0);
    shrinker_t sh = {.path = path, .data = b.data, .size = b.len};
    atomic_init(&sh.stop, false);
    pthread_t th;
    pthread_create(&th, NULL, shrink_loop, &sh);
    scanner_t s = scanner_new();
    int changed = 0, clean = 0;
    long long deadline = ts_now_ms() + 20000;
    for (int i = 0; (i < 300 || changed < 3) && ts_now_ms() < deadline; i++) {
        task_stats_t stats = {0};
        sp_err_t err;
        agg_table_clear(s.t);
        int rc = task_scan(s.q, path, 0, b.len, WIRE_MODE_PERMISSIVE, s.t, &stats, NULL, &err);
        cr_assert(rc == 0 || rc == SP_EIO, "scan %d: rc %d (%s)", i, rc, rc ? err.msg : "");
        if (rc == SP_EIO) {
            cr_assert(strstr(err.msg, path) && strstr(err.msg, "changed while being read"), "%s", err.msg);
            changed++;
        } else {
            clean++;
        }
    }
    atomic_store(&sh.stop, true);
    pthread_join(th, NULL);
    cr_log_info("file shrinking under the scan: %d errors, %d clean scans", changed, clean);
    cr_expect_geq(changed, 3, "the file shrank under a scan only %d times in 20 s", changed);
    scanner_free(&s);
    sp_buf_free(&b);
    free(path);
    ts_rmtree(dir);
    free(dir);
}
