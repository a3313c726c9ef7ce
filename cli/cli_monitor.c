/* cli/cli_monitor.c -- `spate status`, `spate progress` and `spate listen`:
 * a running query seen from outside, through its driver's HTTP API
 * (libcurl), its event socket (ZeroMQ SUB) or, for progress, the reports a
 * checkpoint keeps. Only reads; never writes to a driver or a checkpoint. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ckpt.h"
#include "cli.h"
#include "sp_util.h"

#define DEFAULT_HTTP "127.0.0.1:4040"
#define HTTP_CONNECT_TIMEOUT_MS 3000L
#define HTTP_TIMEOUT_MS 15000L
#define FOLLOW_INTERVAL_MS 1000

/* ---- signals: SIGINT/SIGTERM end --follow and listen with status 0 ----------- */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) { stop_requested = sig; }

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: sleeps and polls wake up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Sleep ms, or less when a stop signal arrives. */
static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the driver's HTTP API -------------------------------------------------------- */

/* --http HOST:PORT -> "http://HOST:PORT". HOST is a name, an IPv4 address
 * or a bracketed IPv6 address; PORT a number. */
static int http_base(const char *addr, char **out)
{
    const char *p = strncmp(addr, "http://", 7) == 0 ? addr + 7 : addr;
    const char *colon = strrchr(p, ':');
    bool ok = colon != NULL && colon > p && colon[1] != '\0' && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
              strlen(colon + 1) <= 5 && atol(colon + 1) > 0 && atol(colon + 1) <= 65535 &&
              strcspn(p, "/?#@ \t") == strlen(p);
    if (ok && p[0] == '[')
        ok = colon[-1] == ']';
    else if (ok)
        ok = memchr(p, ':', (size_t)(colon - p)) == NULL; /* a bare IPv6 address needs brackets */
    if (!ok)
        return cli_usage_error("--http: expected HOST:PORT (such as 127.0.0.1:4040 or [::1]:4040), got '%s'", addr);
    *out = sp_xasprintf("http://%s", p);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    sp_buf_append(ctx, data, size * n);
    return size * n;
}

/* GET base+path and parse the JSON it answers (*out, json_object_put it).
 * SP_EIO with "no spate driver answers at BASE: ..." when nothing answers,
 * or with the driver's own error message when it refuses. */
static int http_get_json(const char *base, const char *path, json_object **out, sp_err_t *err)
{
    *out = NULL;
    char *url = sp_xasprintf("%s%s", base, path);
    char errbuf[CURL_ERROR_SIZE] = "";
    sp_buf_t body = SP_BUF_INIT;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        free(url);
        return sp_err_set(err, SP_ENOMEM, "cannot start an HTTP client");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the driver is reached directly */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "spate/" SPATE_VERSION);
    CURLcode crc = curl_easy_perform(c);
    long status = 0;
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    bool is_json = type != NULL && strncmp(type, "application/json", 16) == 0;
    curl_easy_cleanup(c);
    int rc = 0;
    json_object *o = NULL;
    if (crc != CURLE_OK) {
        rc = sp_err_set(err, SP_EIO, "no spate driver answers at %s: %s", base,
                        errbuf[0] ? errbuf : curl_easy_strerror(crc));
    } else {
        o = is_json ? json_tokener_parse(sp_buf_cstr(&body)) : NULL;
        json_object *msg = NULL;
        if (o == NULL)
            rc = sp_err_set(err, SP_EIO, "%s did not answer as a spate driver does (HTTP %ld, %s)", url, status,
                            type ? type : "no content type");
        else if (status != 200)
            rc = sp_err_set(err, SP_EIO, "the driver at %s refused %s: %s", base, path,
                            json_object_object_get_ex(o, "error", &msg) ? json_object_get_string(msg)
                                                                         : "no reason given");
    }
    sp_buf_free(&body);
    free(url);
    if (rc != 0) {
        json_object_put(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* ---- reading JSON ------------------------------------------------------------------- */

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *key, const char *dflt)
{
    json_object *v = jget(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

static bool jhas(json_object *o, const char *key)
{
    json_object *v = jget(o, key);
    return v != NULL && !json_object_is_type(v, json_type_null);
}

/* A number, or a number in a string (Spark's metric maps); dflt otherwise. */
static double jnum(json_object *o, const char *key, double dflt)
{
    json_object *v = jget(o, key);
    if (v == NULL)
        return dflt;
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
        return json_object_get_double(v);
    if (json_object_is_type(v, json_type_string)) {
        char *end = NULL;
        double d = strtod(json_object_get_string(v), &end);
        return end && *end == '\0' && end != json_object_get_string(v) ? d : dflt;
    }
    return dflt;
}

static long long jint(json_object *o, const char *key, long long dflt)
{
    json_object *v = jget(o, key);
    if (v && json_object_is_type(v, json_type_int))
        return (long long)json_object_get_int64(v);
    return (long long)jnum(o, key, (double)dflt);
}

static json_object *jfirst(json_object *o, const char *key)
{
    json_object *a = jget(o, key);
    return a && json_object_is_type(a, json_type_array) && json_object_array_length(a) > 0
               ? json_object_array_get_idx(a, 0)
               : NULL;
}

static const char *plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- readable forms ----------------------------------------------------------------- */

static void human_bytes(double b, char *out, size_t n)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(out, n, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(out, n, "%.1f MiB", b / (1024.0 * 1024));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", b / 1024);
    else
        snprintf(out, n, "%.0f B", b);
}

static void human_ms(double ms, char *out, size_t n)
{
    if (ms < 1000)
        snprintf(out, n, "%.0f ms", ms);
    else if (ms < 120000)
        snprintf(out, n, "%.1f s", ms / 1000);
    else
        snprintf(out, n, "%.1f min", ms / 60000);
}

static void print_rate(FILE *f, json_object *p, const char *key, const char *what)
{
    if (jhas(p, key))
        fprintf(f, "%.1f rows/s %s", jnum(p, key, 0), what);
    else
        fprintf(f, "- rows/s %s", what);
}

/* A progress report as a compact block:
 *
 *   batch 3 at 2026-11-25T10:00:00.123Z (activity_counts)
 *     rows       5000 (0 malformed)
 *     rates      1234.5 rows/s in, 5678.9 rows/s processed
 *     duration   880 ms (addBatch 850, walCommit 3, commitOffsets 4, ...)
 *     state      7 rows (7 updated)
 *     backlog    2 files, 1.8 MiB, oldest 1.2 s
 *     executors  exec-1: 3 tasks, 2500 rows; exec-2: ... */
static void print_progress_block(FILE *f, json_object *p)
{
    long long rows = jint(p, "numInputRows", 0);
    fprintf(f, "batch %lld at %s", jint(p, "batchId", -1), jstr(p, "timestamp", "?"));
    if (jhas(p, "name"))
        fprintf(f, " (%s)", jstr(p, "name", ""));
    fprintf(f, "%s\n", rows == 0 ? ": no new data" : "");
    fprintf(f, "  rows       %lld (%lld malformed)\n", rows, jint(p, "numMalformedRows", 0));
    fprintf(f, "  rates      ");
    print_rate(f, p, "inputRowsPerSecond", "in, ");
    print_rate(f, p, "processedRowsPerSecond", "processed\n");
    char t[32];
    human_ms(jnum(p, "batchDuration", 0), t, sizeof t);
    fprintf(f, "  duration   %s", t);
    json_object *d = jget(p, "durationMs");
    if (d && json_object_is_type(d, json_type_object)) {
        const char *sep = " (";
        json_object_object_foreach(d, k, v)
        {
            if (strcmp(k, "triggerExecution") == 0)
                continue;
            fprintf(f, "%s%s %lld", sep, k, (long long)json_object_get_int64(v));
            sep = ", ";
        }
        if (strcmp(sep, ", ") == 0)
            fputc(')', f);
    }
    fputc('\n', f);
    json_object *op = jfirst(p, "stateOperators");
    if (op)
        fprintf(f, "  state      %lld rows (%lld updated)\n", jint(op, "numRowsTotal", 0), jint(op, "numRowsUpdated", 0));
    json_object *src = jfirst(p, "sources");
    json_object *m = jget(src, "metrics");
    if (m) {
        char b[32];
        human_bytes(jnum(m, "backlogBytes", 0), b, sizeof b);
        fprintf(f, "  backlog    %lld files, %s", jint(m, "backlogFiles", 0), b);
        if (jhas(m, "oldestBacklogAgeMs")) {
            human_ms(jnum(m, "oldestBacklogAgeMs", 0), t, sizeof t);
            fprintf(f, ", oldest %s", t);
        }
        fputc('\n', f);
    }
    json_object *ex = jget(p, "executors");
    if (ex && json_object_is_type(ex, json_type_array) && json_object_array_length(ex) > 0) {
        fprintf(f, "  executors  ");
        for (size_t i = 0; i < json_object_array_length(ex); i++) {
            json_object *e = json_object_array_get_idx(ex, i);
            human_ms(jnum(e, "taskTimeMs", 0), t, sizeof t);
            fprintf(f, "%s%s: %lld tasks, %lld rows, %s", i ? "; " : "", jstr(e, "id", "?"), jint(e, "tasks", 0),
                    jint(e, "rows", 0), t);
        }
        fputc('\n', f);
    }
}

static void print_progress(json_object *p, bool json)
{
    if (json)
        printf("%s\n", plain(p));
    else
        print_progress_block(stdout, p);
    fflush(stdout);
}

/* ---- spate status ----------------------------------------------------------------------- */

static const char status_usage[] =
    "usage: spate status [--http HOST:PORT] [--json]\n"
    "Prints the status of the query a running driver serves (Spark's\n"
    "StreamingQueryStatus) and its last progress report in short.\n"
    "  --http HOST:PORT   the driver's HTTP server (default " DEFAULT_HTTP ")\n"
    "  --json             the status as the driver's /api/status gives it\n";

int cli_status(int argc, char **argv)
{
    enum { O_HTTP = 1, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"http", required_argument, NULL, O_HTTP},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *addr = DEFAULT_HTTP;
    bool json = false;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_HTTP: addr = optarg; break;
        case O_JSON: json = true; break;
        case O_HELP: fputs(status_usage, stdout); return CLI_OK;
        case ':': return cli_usage_error("flag %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("unknown flag '%s' (see spate status --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate status --help)", argv[optind]);
    char *base = NULL;
    int rc = http_base(addr, &base);
    if (rc != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sp_err_t err;
    sp_err_clear(&err);
    json_object *s = NULL, *last = NULL;
    rc = http_get_json(base, "/api/status", &s, &err);
    if (rc == 0 && !json)
        rc = http_get_json(base, "/api/progress?last=1", &last, &err);
    if (rc == 0) {
        if (json) {
            printf("%s\n", plain(s));
        } else {
            json_object *da = jget(s, "isDataAvailable"), *ta = jget(s, "isTriggerActive");
            printf("status: %s (%s, %s)\n", jstr(s, "message", "?"),
                   da && json_object_get_boolean(da) ? "data available" : "no data available",
                   ta && json_object_get_boolean(ta) ? "trigger active" : "trigger inactive");
            printf("query:  %s\n", jstr(s, "name", "(unnamed)"));
            printf("id:     %s\nrun id: %s\n", jstr(s, "id", "?"), jstr(s, "runId", "?"));
            json_object *p = last && json_object_array_length(last) > 0 ? json_object_array_get_idx(last, 0) : NULL;
            if (p) {
                printf("last:   batch %lld at %s, %lld rows, ", jint(p, "batchId", -1), jstr(p, "timestamp", "?"),
                       jint(p, "numInputRows", 0));
                print_rate(stdout, p, "inputRowsPerSecond", "in, ");
                print_rate(stdout, p, "processedRowsPerSecond", "processed\n");
            } else {
                printf("last:   no progress yet\n");
            }
        }
    }
    json_object_put(s);
    json_object_put(last);
    free(base);
    curl_global_cleanup();
    return rc == 0 ? CLI_OK : cli_fail(rc, &err);
}

/* ---- spate progress ----------------------------------------------------------------------- */

static const char progress_usage[] =
    "usage: spate progress [--last N] [--follow] [--json] [--http HOST:PORT | --checkpoint DIR]\n"
    "Prints the query's recent progress reports (Spark's StreamingQueryProgress),\n"
    "oldest first.\n"
    "  --last N           the newest N reports (default 1; 0: all kept)\n"
    "  --follow           then print each new report as it comes, until interrupted\n"
    "                     (or until the driver stops answering)\n"
    "  --json             one report per line, as JSON (JSON Lines)\n"
    "  --http HOST:PORT   ask a running driver (default " DEFAULT_HTTP ")\n"
    "  --checkpoint DIR   read the reports kept in a checkpoint instead (no driver\n"
    "                     needed; --recent-progress sets how many are kept)\n";

/* Is report p newer than the one identified by (ts, batch)? Timestamps are
 * ISO-8601 UTC with milliseconds, so they compare as strings. */
static bool newer(json_object *p, const char *ts, long long batch)
{
    int c = strcmp(jstr(p, "timestamp", ""), ts);
    return c > 0 || (c == 0 && jint(p, "batchId", -1) > batch);
}

static int progress_follow(const char *base, size_t last, bool json, sp_err_t *err)
{
    char ts[64] = "";
    long long batch = -1;
    bool first = true;
    while (!stop_requested) {
        json_object *a = NULL;
        int rc = http_get_json(base, "/api/progress", &a, err);
        if (rc != 0) {
            if (first || stop_requested)
                return stop_requested ? 0 : rc;
            fprintf(stderr, "spate: the driver at %s stopped answering (%s)\n", base, err->msg);
            return 0;
        }
        size_t n = json_object_array_length(a);
        size_t from = first && last && last < n ? n - last : 0;
        for (size_t i = from; i < n; i++) {
            json_object *p = json_object_array_get_idx(a, i);
            if (!first && !newer(p, ts, batch))
                continue;
            print_progress(p, json);
            snprintf(ts, sizeof ts, "%s", jstr(p, "timestamp", ""));
            batch = jint(p, "batchId", -1);
        }
        json_object_put(a);
        first = false;
        nap(FOLLOW_INTERVAL_MS);
    }
    return 0;
}

typedef struct ckpt_print {
    bool json;
    size_t n;
} ckpt_print_t;

static int print_kept(void *ctx, const char *json, size_t len)
{
    ckpt_print_t *cp = ctx;
    char *text = sp_xstrndup(json, len);
    json_object *p = json_tokener_parse(text);
    if (p == NULL) {
        fprintf(stderr, "spate: warning: skipping a kept progress report that is not JSON\n");
    } else {
        if (cp->n++ > 0 && !cp->json)
            putchar('\n');
        print_progress(p, cp->json);
        json_object_put(p);
    }
    free(text);
    return 0;
}

static int progress_from_checkpoint(const char *dir, size_t last, bool json, sp_err_t *err)
{
    ckpt_t *ckpt = NULL;
    int rc = ckpt_open(dir, CKPT_READONLY, &ckpt, err);
    if (rc == SP_ENOTFOUND)
        return sp_err_set(err, SP_ENOTFOUND, "no spate checkpoint in %s", dir);
    if (rc != 0)
        return rc;
    ckpt_print_t cp = {json, 0};
    rc = ckpt_progress_read(ckpt, last, print_kept, &cp, err);
    ckpt_close(&ckpt);
    if (rc == 0 && cp.n == 0 && !json)
        printf("no progress kept in %s yet\n", dir);
    return rc;
}

int cli_progress(int argc, char **argv)
{
    enum { O_HTTP = 1, O_CKPT, O_LAST, O_FOLLOW, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"http", required_argument, NULL, O_HTTP},
        {"checkpoint", required_argument, NULL, O_CKPT},
        {"last", required_argument, NULL, O_LAST},
        {"follow", no_argument, NULL, O_FOLLOW},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *dir = NULL;
    size_t last = 1;
    bool follow = false, json = false;
    sp_err_t err;
    sp_err_clear(&err);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_HTTP: addr = optarg; break;
        case O_CKPT: dir = optarg; break;
        case O_LAST: {
            int64_t n = 0;
            if (strspn(optarg, "0123456789") != strlen(optarg) || sp_parse_int(optarg, 0, 1000000, &n, &err) != 0)
                return cli_usage_error("--last: expected a whole number from 0 (all kept) to 1000000, got '%s'",
                                       optarg);
            last = (size_t)n;
            break;
        }
        case O_FOLLOW: follow = true; break;
        case O_JSON: json = true; break;
        case O_HELP: fputs(progress_usage, stdout); return CLI_OK;
        case ':': return cli_usage_error("flag %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("unknown flag '%s' (see spate progress --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate progress --help)", argv[optind]);
    if (addr && dir)
        return cli_usage_error("--http and --checkpoint exclude each other: ask a driver or read a checkpoint");
    if (dir && follow)
        return cli_usage_error("--follow needs a running driver (--http), not --checkpoint");
    int rc;
    if (dir) {
        rc = progress_from_checkpoint(dir, last, json, &err);
        return rc == 0 ? CLI_OK : cli_fail(rc, &err);
    }
    char *base = NULL;
    if ((rc = http_base(addr ? addr : DEFAULT_HTTP, &base)) != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (follow) {
        catch_stop_signals();
        rc = progress_follow(base, last, json, &err);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/api/progress?last=%zu", last);
        json_object *a = NULL;
        rc = http_get_json(base, path, &a, &err);
        if (rc == 0) {
            size_t n = json_object_array_length(a);
            for (size_t i = 0; i < n; i++) {
                if (i > 0 && !json)
                    putchar('\n');
                print_progress(json_object_array_get_idx(a, i), json);
            }
            if (n == 0 && !json)
                printf("no progress yet\n");
        }
        json_object_put(a);
    }
    free(base);
    curl_global_cleanup();
    return rc == 0 ? CLI_OK : cli_fail(rc, &err);
}

/* ---- spate listen ------------------------------------------------------------------------- */

static const char listen_usage[] =
    "usage: spate listen --events tcp://HOST:PORT [--json]\n"
    "Subscribes to the events a driver publishes (spate run/driver --events ...)\n"
    "and prints each one as it comes, until interrupted (SIGINT/SIGTERM: exit 0).\n"
    "Events that went out before it connected are not replayed.\n"
    "  --events ENDPOINT  the driver's events endpoint\n"
    "  --json             each event as one line of JSON (JSON Lines)\n";

/* One readable line for an event. */
static void print_event_line(const char *name, json_object *e)
{
    json_object *p = jget(e, "progress");
    const char *ts = p ? jstr(p, "timestamp", "?") : jstr(e, "timestamp", "?");
    printf("%s  ", ts);
    if (strcmp(name, "QueryStartedEvent") == 0) {
        printf("query started: %s (id %s, run %s)\n", jstr(e, "name", "(unnamed)"), jstr(e, "id", "?"),
               jstr(e, "runId", "?"));
    } else if (strcmp(name, "QueryProgressEvent") == 0) {
        char t[32];
        human_ms(jnum(p, "batchDuration", 0), t, sizeof t);
        printf("batch %lld: %lld rows (%lld malformed), ", jint(p, "batchId", -1), jint(p, "numInputRows", 0),
               jint(p, "numMalformedRows", 0));
        print_rate(stdout, p, "inputRowsPerSecond", "in, ");
        print_rate(stdout, p, "processedRowsPerSecond", "processed, ");
        json_object *op = jfirst(p, "stateOperators");
        json_object *m = jget(jfirst(p, "sources"), "metrics");
        printf("%s; %lld state rows; backlog %lld files\n", t, jint(op, "numRowsTotal", 0), jint(m, "backlogFiles", 0));
    } else if (strcmp(name, "QueryIdleEvent") == 0) {
        printf("query idle: no new data\n");
    } else if (strcmp(name, "QueryTerminatedEvent") == 0) {
        if (jhas(e, "exception"))
            printf("query failed: %s (%s)\n", jstr(e, "exception", "?"), jstr(e, "errorClassOnException", "?"));
        else
            printf("query terminated\n");
    } else if (strcmp(name, "ExecutorAddedEvent") == 0 || strcmp(name, "ExecutorLostEvent") == 0) {
        json_object *x = jget(e, "executor");
        bool lost = name[8] == 'L';
        long long slots = jint(x, "slots", 0);
        printf("executor %s %s (%s, pid %lld, %lld slot%s)", jstr(x, "id", "?"), lost ? "lost" : "added",
               jstr(x, "host", "?"), jint(x, "pid", 0), slots, slots == 1 ? "" : "s");
        if (lost)
            printf(": %s", jstr(e, "reason", "no reason given"));
        putchar('\n');
    } else if (strcmp(name, "AlertEvent") == 0) {
        json_object *a = jget(e, "alert");
        printf("alert %s %s", jstr(a, "name", "?"), jstr(a, "state", "?"));
        if (jhas(a, "summary"))
            printf(": %s", jstr(a, "summary", ""));
        putchar('\n');
    } else {
        printf("%s %s\n", name, plain(e));
    }
}

/* Receive one message into frames (at most 2 kept); the frame count. */
static int recv_message(void *sock, char **frames)
{
    int n = 0;
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0) {
            zmq_msg_close(&msg);
            return n ? n : -1;
        }
        if (n < 2)
            frames[n] = sp_xstrndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
        n++;
        bool more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        if (!more)
            return n;
    }
}

int cli_listen(int argc, char **argv)
{
    enum { O_EVENTS = 1, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"events", required_argument, NULL, O_EVENTS},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL;
    bool json = false;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_EVENTS: endpoint = optarg; break;
        case O_JSON: json = true; break;
        case O_HELP: fputs(listen_usage, stdout); return CLI_OK;
        case ':': return cli_usage_error("flag %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("unknown flag '%s' (see spate listen --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate listen --help)", argv[optind]);
    if (endpoint == NULL)
        return cli_usage_error("--events ENDPOINT is required (the driver's --events, e.g. tcp://127.0.0.1:4041)");
    void *zctx = zmq_ctx_new();
    void *sub = zmq_socket(zctx, ZMQ_SUB);
    int zero = 0, one = 1;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (strchr(endpoint, '['))
        zmq_setsockopt(sub, ZMQ_IPV6, &one, sizeof one);
    if (zmq_connect(sub, endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(sub);
        zmq_ctx_term(zctx);
        return cli_usage_error("--events: cannot connect to '%s': %s (expected e.g. tcp://127.0.0.1:4041)", endpoint,
                               zmq_strerror(e));
    }
    catch_stop_signals();
    while (!stop_requested) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, 500);
        if (n < 0 && zmq_errno() != EINTR)
            break;
        if (n <= 0 || !(item.revents & ZMQ_POLLIN))
            continue;
        char *frames[2] = {NULL, NULL};
        int nf = recv_message(sub, frames);
        json_object *e = nf == 2 ? json_tokener_parse(frames[1]) : NULL;
        if (e == NULL) {
            if (nf >= 0)
                fprintf(stderr, "spate: warning: ignoring a message that is not [event name, JSON] (%d frames)\n", nf);
        } else if (json) {
            printf("%s\n", frames[1]); /* as the driver sent it: one line */
        } else {
            print_event_line(frames[0], e);
        }
        fflush(stdout);
        json_object_put(e);
        free(frames[0]);
        free(frames[1]);
    }
    zmq_close(sub);
    zmq_ctx_term(zctx);
    return CLI_OK;
}
