/* scripts/src/latency_bench.c -- end-to-end latency of a running query:
 * from a file's arrival (its rename into the source directory) to its rows
 * being committed, hence visible to `spate result` (LMDB readers see a
 * commit at once).
 *
 *   latency-bench --spate PATH --staged DIR --src DIR --ckpt DIR
 *                 [--rate 20] [--seconds 30] [--executors 2]
 *                 [--sql SQL] [--schema TEXT] [--log FILE]
 *
 * It starts `spate run` (default trigger, no per-trigger limit, a memory
 * sink, --quiet, --http off) on the empty directory --src with --schema,
 * waits until the query is up, then brings the files of --staged (sorted by
 * name, rate x seconds of them) into --src at --rate per second on a fixed
 * schedule: each is written as .NAME.tmp first and renamed to NAME at its
 * due time; the rename is the arrival, stamped with CLOCK_REALTIME just
 * before the call. Meanwhile it polls the checkpoint read-only every 1 ms
 * and maps each newly committed batch's files (ckpt_batch_read) to its
 * commit record (ckpt_commit_read): latency = committed_ms - rename time.
 * (It must look while the query runs: the driver prunes batch records
 * beyond --min-batches-to-retain.) The driver stamps committed_ms
 * (CLOCK_REALTIME, whole ms) just before its LMDB commit, so it also
 * reports when its poll first saw each batch committed ("seen"). Once every
 * file is committed (or 30 s after the last rename) it stops spate with
 * SIGTERM and takes a last look.
 *
 * Prints p50, p90, p99, max and a histogram, and one last line for scripts:
 *   RESULT {"files":N,"rows_written":R,"rows_committed":C,...}
 * Exit status: 0 measured and every file committed exactly once; 1 a file
 * missing or taken twice, or spate failed; 2 bad usage or setup.
 *
 *   latency-bench --commits CKPT
 *
 * prints each committed batch a checkpoint keeps as one JSON line (batch,
 * planned timestamp_ms, committed_ms, files, input_rows, state_rows,
 * updated_rows): scripts/bench times restarts with it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "sp_err.h"
#include "sp_util.h"

#define DEFAULT_SQL "SELECT gt, count(*) AS count FROM activity GROUP BY gt"
#define DEFAULT_SCHEMA                                                                        \
    "Arrival_Time BIGINT, Creation_Time BIGINT, Device STRING, Index BIGINT, Model STRING, " \
    "User STRING, gt STRING, x DOUBLE, y DOUBLE, z DOUBLE"

typedef struct staged {
    char *name;          /* file name in --src */
    char *data;          /* its bytes */
    size_t len;
    uint64_t lines;      /* non-blank lines */
    double renamed_ms;   /* CLOCK_REALTIME, ms with fractions */
    int64_t batch;       /* the batch that took it, -1 until found */
    int64_t committed_ms;
    double seen_ms;      /* when a reader first saw its batch committed */
} staged_t;

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    char *buf = sp_xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t lines = 0;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n;
        for (size_t k = i; k < end; k++)
            if (p[k] != ' ' && p[k] != '\t' && p[k] != '\r') {
                lines++;
                break;
            }
        i = end + 1;
    }
    return lines;
}

/* Load the first want files of dir, by name. */
static staged_t *load_staged(const char *dir, size_t want)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "latency-bench: cannot read %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = sp_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = sp_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    if (n < want) {
        fprintf(stderr, "latency-bench: %s holds %zu files, %zu needed\n", dir, n, want);
        return NULL;
    }
    staged_t *s = sp_xcalloc(want, sizeof *s);
    for (size_t i = 0; i < want; i++) {
        char *path = sp_xasprintf("%s/%s", dir, names[i]);
        s[i].data = read_file(path, &s[i].len);
        if (s[i].data == NULL) {
            fprintf(stderr, "latency-bench: cannot read %s: %s\n", path, strerror(errno));
            return NULL;
        }
        free(path);
        s[i].name = names[i];
        s[i].lines = count_lines(s[i].data, s[i].len);
        s[i].batch = -1;
        s[i].seen_ms = NAN;
    }
    for (size_t i = want; i < n; i++)
        free(names[i]);
    free(names);
    return s;
}

static int write_tmp(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = sp_write_all(fd, data, len);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

typedef struct tracker {
    const char *ckpt_dir;
    ckpt_t *ckpt;
    int64_t next;          /* next batch id to look at */
    staged_t *files;
    size_t nfiles;
    size_t found;          /* files mapped to a committed batch */
    size_t duplicates;     /* files seen in more than one batch */
    uint64_t rows_committed;
    uint64_t batches;
} tracker_t;

static staged_t *find_file(tracker_t *t, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < t->nfiles; i++) /* files are few (hundreds) */
        if (strcmp(t->files[i].name, base) == 0)
            return &t->files[i];
    return NULL;
}

/* Look at batches committed since the last call; seen_ms is the time of
 * this look (NAN: leave seen_ms alone). Returns -1 on a checkpoint error. */
static int track(tracker_t *t, double seen_ms)
{
    sp_err_t err;
    sp_err_clear(&err);
    if (t->ckpt == NULL) {
        if (ckpt_open(t->ckpt_dir, CKPT_READONLY, &t->ckpt, &err) != 0) {
            t->ckpt = NULL;
            return 0; /* not created yet */
        }
    }
    int64_t planned = -1, committed = -1;
    if (ckpt_batch_last(t->ckpt, &planned, &committed, &err) != 0) {
        fprintf(stderr, "latency-bench: %s\n", err.msg);
        return -1;
    }
    bool reopened = false;
    for (; t->next <= committed; t->next++) {
        ckpt_batch_t b = {0};
        ckpt_commit_t c = {0};
        int rc = ckpt_batch_read(t->ckpt, t->next, &b, &err);
        if (rc == 0)
            rc = ckpt_commit_read(t->ckpt, t->next, &c, &err);
        if (rc == SP_ENOTFOUND && !reopened) {
            /* A handle opened before the writer created a database does not
             * see it: open the checkpoint again. */
            ckpt_batch_free(&b);
            ckpt_close(&t->ckpt);
            if (ckpt_open(t->ckpt_dir, CKPT_READONLY, &t->ckpt, &err) != 0) {
                t->ckpt = NULL;
                fprintf(stderr, "latency-bench: %s\n", err.msg);
                return -1;
            }
            reopened = true;
            t->next--;
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "latency-bench: batch %" PRId64 ": %s\n", t->next, err.msg);
            ckpt_batch_free(&b);
            return -1;
        }
        t->batches++;
        t->rows_committed += c.input_rows;
        for (size_t i = 0; i < b.nfiles; i++) {
            staged_t *f = find_file(t, b.files[i].path);
            if (f == NULL)
                continue;
            if (f->batch >= 0) {
                t->duplicates++;
                continue;
            }
            f->batch = b.batch_id;
            f->committed_ms = c.committed_ms;
            if (!isnan(seen_ms))
                f->seen_ms = seen_ms;
            t->found++;
        }
        ckpt_batch_free(&b);
    }
    return 0;
}

/* Is the query up? Its checkpoint holds the query record. */
static bool query_ready(const char *dir)
{
    ckpt_t *c = NULL;
    sp_err_t err;
    sp_err_clear(&err);
    if (ckpt_open(dir, CKPT_READONLY, &c, &err) != 0)
        return false;
    ckpt_query_t q = {0};
    bool ok = ckpt_query_read(c, &q, &err) == 0;
    ckpt_query_free(&q);
    ckpt_close(&c);
    return ok;
}

/* A JSON number, or null for NaN (into one of a few rotating buffers). */
static const char *jnum(double v)
{
    static char bufs[16][32];
    static int k;
    char *b = bufs[k++ % 16];
    if (isnan(v) || isinf(v))
        snprintf(b, 32, "null");
    else
        snprintf(b, 32, "%.2f", v);
    return b;
}

static double pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    /* nearest rank */
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static const double bucket_hi[] = {1, 2, 5, 10, 20, 50, 100, 200, INFINITY};
#define NBUCKETS (sizeof bucket_hi / sizeof bucket_hi[0])

static void usage(FILE *to)
{
    fputs("usage: latency-bench --spate PATH --staged DIR --src DIR --ckpt DIR\n"
          "                     [--rate 20] [--seconds 30] [--executors 2]\n"
          "                     [--sql SQL] [--schema TEXT] [--log FILE]\n"
          "       latency-bench --commits CKPT\n",
          to);
}

/* --commits: every committed batch of dir, one JSON line each. */
static int print_commits(const char *dir)
{
    ckpt_t *c = NULL;
    sp_err_t err;
    sp_err_clear(&err);
    int64_t planned = -1, committed = -1;
    if (ckpt_open(dir, CKPT_READONLY, &c, &err) != 0 ||
        ckpt_batch_last(c, &planned, &committed, &err) != 0) {
        fprintf(stderr, "latency-bench: %s\n", err.msg);
        ckpt_close(&c);
        return 1;
    }
    int rc = 0;
    for (int64_t b = 0; b <= committed && rc == 0; b++) {
        ckpt_batch_t p = {0};
        ckpt_commit_t r = {0};
        int brc = ckpt_batch_read(c, b, &p, &err);
        if (brc == 0)
            brc = ckpt_commit_read(c, b, &r, &err);
        if (brc == SP_ENOTFOUND) {
            /* pruned (--min-batches-to-retain) */
        } else if (brc != 0) {
            fprintf(stderr, "latency-bench: batch %" PRId64 ": %s\n", b, err.msg);
            rc = 1;
        } else {
            printf("{\"batch\":%" PRId64 ",\"timestamp_ms\":%" PRId64 ",\"committed_ms\":%" PRId64
                   ",\"files\":%zu,\"input_rows\":%" PRIu64 ",\"state_rows\":%" PRIu64
                   ",\"updated_rows\":%" PRIu64 "}\n",
                   b, p.timestamp_ms, r.committed_ms, p.nfiles, r.input_rows, r.state_rows,
                   r.updated_rows);
        }
        ckpt_batch_free(&p);
    }
    ckpt_close(&c);
    return rc;
}

int main(int argc, char **argv)
{
    const char *spate = NULL, *staged_dir = NULL, *src = NULL, *ckpt_dir = NULL, *log = NULL;
    const char *sql = DEFAULT_SQL, *schema = DEFAULT_SCHEMA, *executors = "2";
    double rate = 20, seconds = 30;
    static const struct option opts[] = {
        {"spate", required_argument, NULL, 'p'},   {"staged", required_argument, NULL, 'g'},
        {"src", required_argument, NULL, 'd'},     {"ckpt", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},    {"seconds", required_argument, NULL, 's'},
        {"executors", required_argument, NULL, 'e'}, {"sql", required_argument, NULL, 'q'},
        {"schema", required_argument, NULL, 'm'},  {"log", required_argument, NULL, 'l'},
        {"commits", required_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p': spate = optarg; break;
        case 'g': staged_dir = optarg; break;
        case 'd': src = optarg; break;
        case 'c': ckpt_dir = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'e': executors = optarg; break;
        case 'q': sql = optarg; break;
        case 'm': schema = optarg; break;
        case 'l': log = optarg; break;
        case 'C': return print_commits(optarg);
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!spate || !staged_dir || !src || !ckpt_dir || optind != argc || !(rate > 0) ||
        !(seconds > 0)) {
        usage(stderr);
        return 2;
    }
    size_t nfiles = (size_t)llround(rate * seconds);
    staged_t *files = load_staged(staged_dir, nfiles);
    if (files == NULL)
        return 2;
    uint64_t rows_written = 0;
    for (size_t i = 0; i < nfiles; i++)
        rows_written += files[i].lines;
    if (mkdir(src, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "latency-bench: cannot create %s: %s\n", src, strerror(errno));
        return 2;
    }
    DIR *d = opendir(src);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            fprintf(stderr, "latency-bench: %s is not empty\n", src);
            return 2;
        }
    if (d)
        closedir(d);
    struct stat st;
    if (stat(ckpt_dir, &st) == 0) {
        fprintf(stderr, "latency-bench: %s exists: give a new checkpoint directory\n", ckpt_dir);
        return 2;
    }

    char *source = sp_xasprintf("activity=json:%s", src);
    char *sink = sp_xstrdup("memory:latency");
    const char *args[] = {spate, "run", "--source", source, "--sql", sql, "--schema", schema,
                          "--checkpoint", ckpt_dir, "--sink", sink, "--executors", executors,
                          "--quiet", "--http", "off", NULL};
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
            }
        }
        execv(spate, (char *const *)args);
        fprintf(stderr, "latency-bench: cannot run %s: %s\n", spate, strerror(errno));
        _exit(127);
    }
    int status = 0;
    bool exited = false;
    /* Wait for the query to be up, then give the executors a moment. */
    uint64_t t_wait = mono_ns();
    while (!query_ready(ckpt_dir)) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "latency-bench: spate exited before the query was up (see %s)\n",
                    log ? log : "its output");
            return 1;
        }
        if (mono_ns() - t_wait > 20000000000ull) {
            fprintf(stderr, "latency-bench: the query did not come up in 20 s\n");
            kill(pid, SIGKILL);
            return 1;
        }
        usleep(5000);
    }
    usleep(1000000);

    tracker_t tr = {.ckpt_dir = ckpt_dir, .files = files, .nfiles = nfiles};
    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t t0 = mono_ns() + 10000000;
    int rc = 0;
    char *tmp = NULL, *dst = NULL;
    /* file i is written as .tmp right after file i-1's rename, renamed at t0 + i*period */
    for (size_t i = 0; i <= nfiles && rc == 0; i++) {
        if (i < nfiles) {
            free(tmp);
            free(dst);
            tmp = sp_xasprintf("%s/.%s.tmp", src, files[i].name);
            dst = sp_xasprintf("%s/%s", src, files[i].name);
            if (write_tmp(tmp, files[i].data, files[i].len) != 0) {
                fprintf(stderr, "latency-bench: cannot write %s: %s\n", tmp, strerror(errno));
                rc = 2;
                break;
            }
        }
        uint64_t due = i < nfiles ? t0 + i * period : mono_ns();
        for (;;) { /* poll the checkpoint every 1 ms until the rename is due */
            uint64_t now = mono_ns();
            if (now >= due)
                break;
            if (track(&tr, wall_ms()) != 0) {
                rc = 1;
                break;
            }
            uint64_t next = now + 1000000;
            sleep_until_ns(next < due ? next : due);
        }
        if (i < nfiles && rc == 0) {
            files[i].renamed_ms = wall_ms();
            if (rename(tmp, dst) != 0) {
                fprintf(stderr, "latency-bench: cannot rename %s: %s\n", tmp, strerror(errno));
                rc = 2;
            }
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            fprintf(stderr, "latency-bench: spate exited while files arrived (see %s)\n",
                    log ? log : "its output");
            rc = 1;
        }
    }
    free(tmp);
    free(dst);
    /* Wait for the last files to be committed (30 s at most). */
    uint64_t t_end = mono_ns();
    while (rc == 0 && tr.found < nfiles && mono_ns() - t_end < 30000000000ull) {
        if (track(&tr, wall_ms()) != 0)
            rc = 1;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            rc = 1;
        }
        usleep(1000);
    }
    if (!exited) {
        kill(pid, SIGTERM);
        uint64_t t_kill = mono_ns();
        while (waitpid(pid, &status, WNOHANG) != pid) {
            if (mono_ns() - t_kill > 15000000000ull) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            usleep(2000);
        }
    }
    /* The last look, at the checkpoint as the stopped driver left it: the
     * batches committed since the last poll. (Only the live look can see
     * them all: the driver prunes batch records beyond
     * --min-batches-to-retain.) */
    ckpt_close(&tr.ckpt);
    if (rc == 0 && track(&tr, NAN) != 0)
        rc = 1;
    ckpt_close(&tr.ckpt);
    tracker_t fin = tr;

    double *lat = sp_xcalloc(nfiles ? nfiles : 1, sizeof *lat);
    double *seen = sp_xcalloc(nfiles ? nfiles : 1, sizeof *seen);
    size_t nlat = 0, nseen = 0;
    size_t hist[NBUCKETS] = {0};
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].batch < 0)
            continue;
        double l = (double)files[i].committed_ms - files[i].renamed_ms;
        lat[nlat++] = l;
        size_t b = 0;
        while (l >= bucket_hi[b])
            b++;
        hist[b]++;
        if (!isnan(files[i].seen_ms))
            seen[nseen++] = files[i].seen_ms - files[i].renamed_ms;
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    qsort(seen, nseen, sizeof *seen, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++)
        sum += lat[i];
    double p50 = pct(lat, nlat, 50), p90 = pct(lat, nlat, 90), p99 = pct(lat, nlat, 99);
    double mx = nlat ? lat[nlat - 1] : NAN, mn = nlat ? lat[0] : NAN;

    printf("latency-bench: %zu files of %.0f lines at %.0f/s for %.0f s; %" PRIu64
           " batches; spate exit %d\n",
           nfiles, nfiles ? (double)rows_written / (double)nfiles : 0.0, rate, seconds, fin.batches,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    printf("rename -> committed_ms (ms): min %.1f p50 %.1f p90 %.1f p99 %.1f max %.1f mean %.1f\n",
           mn, p50, p90, p99, mx, nlat ? sum / (double)nlat : NAN);
    printf("rename -> seen by a polling reader (ms): p50 %.1f p99 %.1f max %.1f\n",
           pct(seen, nseen, 50), pct(seen, nseen, 99), nseen ? seen[nseen - 1] : NAN);
    size_t most = 1;
    for (size_t b = 0; b < NBUCKETS; b++)
        if (hist[b] > most)
            most = hist[b];
    for (size_t b = 0; b < NBUCKETS; b++) {
        char label[32];
        double lo = b ? bucket_hi[b - 1] : 0;
        if (isinf(bucket_hi[b]))
            snprintf(label, sizeof label, "%g+ ms", lo);
        else
            snprintf(label, sizeof label, "%g-%g ms", lo, bucket_hi[b]);
        int bar = (int)((double)hist[b] * 50.0 / (double)most + 0.5);
        if (hist[b] > 0 && bar == 0)
            bar = 1;
        printf("  %10s %5zu %5.1f%% |", label, hist[b], nlat ? 100.0 * (double)hist[b] / (double)nlat : 0.0);
        for (int k = 0; k < bar; k++)
            putchar('#');
        putchar('\n');
    }
    if (fin.found != nfiles || fin.duplicates != 0) {
        fprintf(stderr, "latency-bench: WRONG: %zu of %zu files committed, %zu taken twice\n",
                fin.found, nfiles, fin.duplicates);
        rc = 1;
    }
    printf("RESULT {\"files\":%zu,\"committed_files\":%zu,\"duplicates\":%zu,\"rows_written\":%" PRIu64
           ",\"rows_committed\":%" PRIu64 ",\"batches\":%" PRIu64
           ",\"p50\":%s,\"p90\":%s,\"p99\":%s,\"max\":%s,\"min\":%s,\"mean\":%s"
           ",\"seen_p50\":%s,\"seen_p99\":%s,\"buckets\":[",
           nfiles, fin.found, fin.duplicates, rows_written, fin.rows_committed, fin.batches, jnum(p50),
           jnum(p90), jnum(p99), jnum(mx), jnum(mn), jnum(nlat ? sum / (double)nlat : NAN),
           jnum(pct(seen, nseen, 50)), jnum(pct(seen, nseen, 99)));
    for (size_t b = 0; b < NBUCKETS; b++) {
        double lo = b ? bucket_hi[b - 1] : 0;
        if (isinf(bucket_hi[b]))
            printf("%s[%g,null,%zu]", b ? "," : "", lo, hist[b]);
        else
            printf("%s[%g,%g,%zu]", b ? "," : "", lo, bucket_hi[b], hist[b]);
    }
    printf("],\"spate_status\":%d}\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    for (size_t i = 0; i < nfiles; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
    free(lat);
    free(seen);
    free(source);
    free(sink);
    return rc;
}
