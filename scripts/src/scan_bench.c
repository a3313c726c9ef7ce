/* scripts/src/scan_bench.c -- micro-benchmark of the JSON-lines scanner:
 * reads a file with read() into one reused buffer, scans it line by line in
 * place with jscan_next (or, with --api line, cuts lines with memchr and
 * runs jscan_line on each) and prints counts and the best GB/s of N passes.
 * Owns nothing but its buffer; never writes a file.
 *
 *   scan-bench FILE [--cols gt,x|all|none|name:TYPE,...] [--repeat N] [--buf BYTES]
 *              [--api next|line]
 *
 * Column types: name:TYPE, or the activity data's own (Arrival_Time,
 * Creation_Time, Index BIGINT; x, y, z DOUBLE; the rest STRING). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jscan.h"
#include "sp_util.h"
#include "value.h"

enum { BENCH_MAX_COLS = 64 };

static const char *const bench_all = "Arrival_Time,Creation_Time,Device,Index,Model,User,gt,x,y,z";

typedef struct bench_counts {
    uint64_t bytes, lines, rows, blank, malformed, type_errors;
    uint64_t nonnull[BENCH_MAX_COLS];
    double dsum;   /* checksums of the values: show the work was done */
    uint64_t isum; /* (wrapping) */
    uint64_t slen;
} bench_counts_t;

static sp_type_t bench_default_type(const char *name)
{
    static const char *const bigints[] = {"Arrival_Time", "Creation_Time", "Index"};
    static const char *const doubles[] = {"x", "y", "z"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(name, bigints[i]) == 0)
            return SP_TYPE_BIGINT;
        if (strcmp(name, doubles[i]) == 0)
            return SP_TYPE_DOUBLE;
    }
    return SP_TYPE_STRING;
}

/* Parse "a,b:DOUBLE,c" into names and types; returns the count or -1. */
static int bench_parse_cols(char *spec, char **names, sp_type_t *types)
{
    int n = 0;
    if (strcmp(spec, "none") == 0 || spec[0] == '\0')
        return 0;
    for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
        if (n == BENCH_MAX_COLS) {
            fprintf(stderr, "scan-bench: more than %d columns\n", BENCH_MAX_COLS);
            return -1;
        }
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = '\0';
            if (sp_type_parse(colon + 1, strlen(colon + 1), &types[n]) != 0 ||
                types[n] == SP_TYPE_NULL) {
                fprintf(stderr, "scan-bench: unknown type '%s' for column '%s'\n", colon + 1, tok);
                return -1;
            }
        } else {
            types[n] = bench_default_type(tok);
        }
        names[n++] = tok;
    }
    return n;
}

static void bench_row(const jscan_row_t *row, int ncols, bench_counts_t *c)
{
    c->type_errors += row->ntype_errors;
    for (int i = 0; i < ncols; i++) {
        const sp_value_t *v = &row->values[i];
        switch (v->type) {
        case SP_TYPE_NULL: continue;
        case SP_TYPE_BIGINT: c->isum += (uint64_t)v->u.i; break;
        case SP_TYPE_DOUBLE: c->dsum += v->u.d; break;
        case SP_TYPE_STRING: c->slen += v->u.s.len; break;
        case SP_TYPE_BOOLEAN: c->isum += v->u.b; break;
        }
        c->nonnull[i]++;
    }
}

static void bench_status(jscan_status_t st, const jscan_row_t *row, int ncols, bench_counts_t *c)
{
    switch (st) {
    case JSCAN_ROW:
        c->rows++;
        bench_row(row, ncols, c);
        break;
    case JSCAN_BLANK: c->blank++; break;
    case JSCAN_MALFORMED: c->malformed++; break;
    case JSCAN_MORE: return; /* (not a line) */
    }
    c->lines++;
}

/* One pass over the file. *bufp has JSCAN_PADDING bytes after *capp.
 * Returns 0, or -1 on a read error. */
static int bench_pass(int fd, char **bufp, size_t *capp, jscan_t *s, int ncols, bool use_next,
                      bench_counts_t *c)
{
    size_t have = 0; /* bytes of an unfinished line kept at the buffer's start */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        perror("scan-bench: lseek");
        return -1;
    }
    for (;;) {
        if (have == *capp) { /* a line longer than the buffer */
            *capp *= 2;
            *bufp = sp_xrealloc(*bufp, *capp + JSCAN_PADDING);
            memset(*bufp + have, 0, *capp - have + JSCAN_PADDING);
        }
        ssize_t n = read(fd, *bufp + have, *capp - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("scan-bench: read");
            return -1;
        }
        char *buf = *bufp;
        size_t end = have + (size_t)n, pos = 0;
        c->bytes += (size_t)n;
        while (pos < end) {
            const jscan_row_t *row;
            size_t len;
            jscan_status_t st;
            if (use_next) {
                st = jscan_next(s, buf + pos, end - pos, n == 0, &len, &row);
                if (st == JSCAN_MORE)
                    break;
            } else {
                const char *nl = memchr(buf + pos, '\n', end - pos);
                if (nl)
                    len = (size_t)(nl - (buf + pos));
                else if (n == 0)
                    len = end - pos; /* last line without '\n' */
                else
                    break;
                st = jscan_line(s, buf + pos, len, &row);
            }
            bench_status(st, row, ncols, c);
            pos += len + 1;
        }
        if (n == 0)
            return 0;
        if (pos > end)
            pos = end;
        have = end - pos;
        memmove(buf, buf + pos, have);
    }
}

static void bench_usage(void)
{
    fprintf(stderr, "usage: scan-bench FILE [--cols gt,x|all|none|name:TYPE,...] [--repeat N] "
                    "[--buf BYTES] [--api next|line]\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    char *spec = sp_xstrdup("gt");
    int64_t repeat = 5;
    uint64_t bufsize = 1 << 20;
    bool use_next = true;
    sp_err_t err;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cols") == 0 && i + 1 < argc) {
            free(spec);
            spec = sp_xstrdup(strcmp(argv[i + 1], "all") == 0 ? bench_all : argv[i + 1]);
            i++;
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            if (sp_parse_int(argv[++i], 1, 1000000, &repeat, &err) != 0) {
                fprintf(stderr, "scan-bench: --repeat: %s\n", err.msg);
                return 2;
            }
        } else if (strcmp(argv[i], "--buf") == 0 && i + 1 < argc) {
            if (sp_parse_size(argv[++i], &bufsize, &err) != 0 || bufsize < 4096) {
                fprintf(stderr, "scan-bench: --buf: expected a size >= 4K\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "next") != 0 && strcmp(argv[i], "line") != 0) {
                fprintf(stderr, "scan-bench: --api: expected next or line\n");
                return 2;
            }
            use_next = strcmp(argv[i], "next") == 0;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            bench_usage();
            return 2;
        }
    }
    if (!path) {
        bench_usage();
        return 2;
    }
    char *names[BENCH_MAX_COLS];
    sp_type_t types[BENCH_MAX_COLS];
    int ncols = bench_parse_cols(spec, names, types);
    if (ncols < 0)
        return 2;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "scan-bench: %s: %s\n", path, strerror(errno));
        return 1;
    }
    jscan_t *s = jscan_new((const char *const *)names, types, (size_t)ncols);
    size_t cap = (size_t)bufsize;
    char *buf = sp_xcalloc(1, cap + JSCAN_PADDING);
    bench_counts_t best_counts = {0};
    double best = -1;
    for (int64_t r = 0; r < repeat; r++) {
        bench_counts_t c;
        memset(&c, 0, sizeof c);
        uint64_t t0 = sp_mono_ns();
        if (bench_pass(fd, &buf, &cap, s, ncols, use_next, &c) != 0)
            return 1;
        double secs = (double)(sp_mono_ns() - t0) / 1e9;
        if (best < 0 || secs < best) {
            best = secs;
            best_counts = c;
        }
    }
    bench_counts_t *c = &best_counts;
    printf("file        %s\n", path);
    printf("api         jscan_%s\n", use_next ? "next" : "line");
    printf("columns     %d", ncols);
    for (int i = 0; i < ncols; i++)
        printf("%s%s:%s", i ? "," : " ", names[i], sp_type_name(types[i]));
    printf("\nbytes       %llu\n", (unsigned long long)c->bytes);
    printf("lines       %llu\n", (unsigned long long)c->lines);
    printf("rows        %llu\n", (unsigned long long)c->rows);
    printf("blank       %llu\n", (unsigned long long)c->blank);
    printf("malformed   %llu\n", (unsigned long long)c->malformed);
    printf("type_errors %llu\n", (unsigned long long)c->type_errors);
    for (int i = 0; i < ncols; i++)
        printf("non-null    %s %llu\n", names[i], (unsigned long long)c->nonnull[i]);
    printf("checksum    %.6g %llu %llu\n", c->dsum, (unsigned long long)c->isum,
           (unsigned long long)c->slen);
    printf("seconds     %.4f (best of %lld)\n", best, (long long)repeat);
    printf("GB/s        %.3f\n", best > 0 ? (double)c->bytes / best / 1e9 : 0.0);
    jscan_destroy(&s);
    free(buf);
    free(spec);
    close(fd);
    return 0;
}
