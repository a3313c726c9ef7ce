/* driver/alerts.c -- alert rules: their parser, their pending/firing/ok
 * states judged on the figures the driver hands in, and the actions run for
 * each firing and resolving alert on one thread of their own (a log line, a
 * command, a webhook, Alertmanager). Owns the rules, the action queue and
 * that thread; never touches the checkpoint, the executors or the monitor
 * (the driver publishes what the callback hands it). */
#include "alerts.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sp_log.h"
#include "sp_util.h"

#define ALERTS_QUEUE_MAX 256          /* jobs waiting for the actions thread */
#define ALERTS_COMMAND_TIMEOUT_MS 10000
#define ALERTS_CONNECT_TIMEOUT_MS 2000
#define ALERTS_HTTP_TIMEOUT_MS 5000
#define ALERTS_RESEND_MS 60000        /* Alertmanager: re-send firing alerts (test
                                         knob: SPATE_TEST_ALERTS_RESEND_MS) */
#define ALERTS_DRAIN_MS 5000          /* alerts_destroy waits this long for actions */

/* ---- metrics ---------------------------------------------------------------- */

typedef enum metric_kind {
    KIND_RATE,       /* rows/s; no unit */
    KIND_DURATION,   /* ms; ms s m h */
    KIND_SIZE,       /* bytes; K M G */
    KIND_COUNT,      /* no unit */
    KIND_FRACTION,   /* 0..1; % */
} metric_kind_t;

static const char *const kind_names[] = {
    [KIND_RATE] = "a rate in rows/s",
    [KIND_DURATION] = "a duration",
    [KIND_SIZE] = "a size",
    [KIND_COUNT] = "a count",
    [KIND_FRACTION] = "a fraction",
};

typedef enum metric_id {
    M_INPUT_RATE, M_PROCESSING_RATE, M_BATCH_DURATION, M_BACKLOG_FILES, M_BACKLOG_BYTES,
    M_BACKLOG_AGE, M_MALFORMED_RATE, M_MALFORMED_ROWS, M_STATE_ROWS, M_EXECUTORS_ALIVE,
    M__COUNT
} metric_id_t;

static const struct metric_def {
    const char *name;
    metric_kind_t kind;
    bool batch;          /* judged only after a batch (between batches: held) */
} metrics[M__COUNT] = {
    [M_INPUT_RATE] = {"input_rate", KIND_RATE, true},
    [M_PROCESSING_RATE] = {"processing_rate", KIND_RATE, true},
    [M_BATCH_DURATION] = {"batch_duration", KIND_DURATION, true},
    [M_BACKLOG_FILES] = {"backlog_files", KIND_COUNT, false},
    [M_BACKLOG_BYTES] = {"backlog_bytes", KIND_SIZE, false},
    [M_BACKLOG_AGE] = {"backlog_age", KIND_DURATION, false},
    [M_MALFORMED_RATE] = {"malformed_rate", KIND_FRACTION, true},
    [M_MALFORMED_ROWS] = {"malformed_rows", KIND_COUNT, true},
    [M_STATE_ROWS] = {"state_rows", KIND_COUNT, true},
    [M_EXECUTORS_ALIVE] = {"executors_alive", KIND_COUNT, false},
};

static double metric_value(metric_id_t m, const alerts_figures_t *f)
{
    switch (m) {
    case M_INPUT_RATE: return f->input_rate;
    case M_PROCESSING_RATE: return f->processing_rate;
    case M_BATCH_DURATION: return (double)f->batch_duration_ms;
    case M_BACKLOG_FILES: return (double)f->backlog_files;
    case M_BACKLOG_BYTES: return (double)f->backlog_bytes;
    case M_BACKLOG_AGE: return f->backlog_age_ms > 0 ? (double)f->backlog_age_ms : 0;
    case M_MALFORMED_RATE: {
        uint64_t all = f->batch_rows + f->batch_malformed;
        return all ? (double)f->batch_malformed / (double)all : 0;
    }
    case M_MALFORMED_ROWS: return (double)f->batch_malformed;
    case M_STATE_ROWS: return (double)f->state_rows;
    case M_EXECUTORS_ALIVE: return (double)f->executors_alive;
    case M__COUNT: break;
    }
    return NAN;
}

/* A figure as people read it: "1.2s", "850ms", "1.5M", "3%", "120.5 rows/s". */
static void format_figure(metric_kind_t kind, double v, char *out, size_t outlen)
{
    if (!isfinite(v)) {
        snprintf(out, outlen, "%s", isnan(v) ? "unknown" : "infinite");
        return;
    }
    switch (kind) {
    case KIND_DURATION:
        if (v < 1000)
            snprintf(out, outlen, "%.0fms", v);
        else if (v < 60000)
            snprintf(out, outlen, "%.3gs", v / 1000);
        else if (v < 3600000)
            snprintf(out, outlen, "%.3gm", v / 60000);
        else
            snprintf(out, outlen, "%.3gh", v / 3600000);
        break;
    case KIND_SIZE:
        if (v < 1024)
            snprintf(out, outlen, "%.0f bytes", v);
        else if (v < 1024.0 * 1024)
            snprintf(out, outlen, "%.3gK", v / 1024);
        else if (v < 1024.0 * 1024 * 1024)
            snprintf(out, outlen, "%.3gM", v / (1024.0 * 1024));
        else
            snprintf(out, outlen, "%.3gG", v / (1024.0 * 1024 * 1024));
        break;
    case KIND_FRACTION: snprintf(out, outlen, "%.3g%%", v * 100); break;
    case KIND_RATE: snprintf(out, outlen, "%.1f rows/s", v); break;
    case KIND_COUNT: snprintf(out, outlen, "%.0f", v); break;
    }
}

/* ---- rules ------------------------------------------------------------------ */

typedef enum cond_kind { COND_METRIC, COND_QUERY_FAILED, COND_EXECUTOR_LOST } cond_kind_t;
typedef enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE } op_t;
typedef enum rule_state { RULE_OK, RULE_PENDING, RULE_FIRING } rule_state_t;

static const char *const op_words[] = {"below", "at or below", "above", "at or above",
                                       "equal to", "not equal to"};
static const char *const state_names[] = {"ok", "pending", "firing"};

typedef struct rule {
    char *name;
    char *condition;          /* the text after "NAME:", trimmed */
    cond_kind_t kind;
    metric_id_t metric;       /* COND_METRIC: the left side */
    op_t op;
    bool rhs_metric;          /* the right side is a metric ... */
    metric_id_t rhs;
    double rhs_value;         /* ... or a number in the metric's base unit */
    char *rhs_text;           /* the right side as written ("300ms") */
    bool batch;               /* judged only after batches */
    uint32_t for_batches;     /* "for N batches" (0: none) */
    uint64_t for_ms;          /* "for DURATION" (0: none) */

    /* state (under alerts_t.mu) */
    rule_state_t state;
    int64_t since_ms;         /* when the state began (-1: never judged) */
    bool judged;
    double value, rhs_now;    /* the last figures judged */
    bool holding;             /* the condition held at the last judgement */
    int64_t hold_since_ms;
    uint32_t hold_batches;
    int64_t fired_ms;         /* the start of the current (or last) episode */
    uint64_t fired, resolved;
} rule_t;

static void rule_free(rule_t *r)
{
    free(r->name);
    free(r->condition);
    free(r->rhs_text);
}

/* ---- actions ------------------------------------------------------------------ */

typedef enum action_kind { ACT_LOG, ACT_COMMAND, ACT_WEBHOOK, ACT_ALERTMANAGER } action_kind_t;

typedef struct action {
    action_kind_t kind;
    char *arg;               /* the command, the webhook URL, URL/api/v2/alerts */
} action_t;

/* One firing or resolving alert, for the actions thread. */
typedef struct job {
    struct job *next;
    bool firing;
    char *name, *alert_json, *summary, *description;
    int64_t starts_ms, ends_ms;       /* ends_ms: resolving only */
} job_t;

static void job_free(job_t *j)
{
    if (j == NULL)
        return;
    free(j->name);
    free(j->alert_json);
    free(j->summary);
    free(j->description);
    free(j);
}

struct alerts {
    char *id, *run_id, *name, *http_url;
    alerts_publish_fn publish;
    void *ctx;

    pthread_mutex_t mu;             /* rules and the event figures */
    rule_t *rules;
    size_t nrules, caprules;
    uint32_t lost;                  /* executors lost and not yet replaced */
    char *lost_executor;            /* the last one lost */
    bool failed;
    char *fail_message;

    action_t *actions;              /* fixed once started */
    size_t nactions;
    bool has_alertmanager;

    pthread_mutex_t qmu;            /* the queue */
    pthread_cond_t qcv, donecv;
    job_t *head, *tail;
    size_t queued;
    bool busy, closing, started;
    atomic_bool abort;
    pthread_t thread;

    /* the actions thread's own: alerts firing at Alertmanager, re-sent */
    job_t *am_firing;
    uint64_t resend_ms;
    uint64_t next_resend_ms;        /* monotonic */
};

/* ---- the rule parser ----------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t pos;
    sp_err_t *err;
} parser_t;

static int perr(parser_t *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser_t *p, size_t at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sp_err_set(p->err, SP_EINVAL, "at column %zu: %s", at + 1, msg);
}

static void skip_space(parser_t *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
        p->pos++;
}

static bool is_word_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* What stands at p->pos, for "found ..." in messages. */
static const char *found(parser_t *p, char *buf, size_t len)
{
    const char *s = p->s + p->pos;
    if (*s == '\0' || *s == '\r' || *s == '\n')
        return "the end of the rule";
    size_t n = 0;
    if (is_word_char(*s) || *s == '.') {
        while (is_word_char(s[n]) || s[n] == '.' || s[n] == '%')
            n++;
    } else {
        while (s[n] && strchr("<>=!", s[n]))
            n++;
        if (n == 0)
            n = 1;
    }
    snprintf(buf, len, "'%.*s'", (int)(n > 40 ? 40 : n), s);
    return buf;
}

/* A word at p->pos (length in *n), or 0. */
static size_t word_at(parser_t *p)
{
    size_t n = 0;
    if (is_word_start(p->s[p->pos]))
        while (is_word_char(p->s[p->pos + n]))
            n++;
    return n;
}

static bool word_is(parser_t *p, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(p->s + p->pos, w, n) == 0;
}

static size_t edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), prev[64], cur[64];
    if (na >= 63 || nb >= 63)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[nb];
}

/* A metric name at p->pos; advances past it. */
static int parse_metric(parser_t *p, metric_id_t *out, const char *expected)
{
    size_t n = word_at(p), at = p->pos;
    char buf[64];
    if (n == 0)
        return perr(p, at, "expected %s, found %s", expected, found(p, buf, sizeof buf));
    for (int m = 0; m < M__COUNT; m++) {
        if (word_is(p, n, metrics[m].name)) {
            *out = (metric_id_t)m;
            p->pos += n;
            return 0;
        }
    }
    const char *best = NULL;
    size_t best_d = 4;
    for (int m = 0; m < M__COUNT; m++) {
        size_t d = edit_distance(p->s + at, n, metrics[m].name);
        if (d < best_d) {
            best_d = d;
            best = metrics[m].name;
        }
    }
    if (best)
        return perr(p, at, "unknown metric '%.*s' (did you mean '%s'?)", (int)n, p->s + at, best);
    return perr(p, at,
                "unknown metric '%.*s' (use input_rate, processing_rate, batch_duration, "
                "backlog_files, backlog_bytes, backlog_age, malformed_rate, malformed_rows, "
                "state_rows, executors_alive; or query_failed, executor_lost)",
                (int)n, p->s + at);
}

static bool at_number(parser_t *p)
{
    const char *s = p->s + p->pos;
    return isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1]));
}

/* A decimal number at p->pos and the unit written right after it
 * ([A-Za-z%]*; *unit_len 0 when none). */
static int parse_number(parser_t *p, double *v, size_t *unit_at, size_t *unit_len)
{
    const char *s = p->s + p->pos;
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    if (s[n] == '.') {
        n++;
        while (isdigit((unsigned char)s[n]))
            n++;
    }
    char num[64];
    if (n >= sizeof num)
        return perr(p, p->pos, "the number '%.20s...' is too long", s);
    memcpy(num, s, n);
    num[n] = '\0';
    *v = strtod(num, NULL);
    p->pos += n;
    *unit_at = p->pos;
    size_t u = 0;
    while (isalpha((unsigned char)p->s[p->pos + u]) || p->s[p->pos + u] == '%')
        u++;
    *unit_len = u;
    p->pos += u;
    return 0;
}

static bool unit_is(const char *u, size_t n, const char *w) { return n == strlen(w) && strncmp(u, w, n) == 0; }

/* The multiplier of a duration unit (to ms), or 0. */
static double duration_unit(const char *u, size_t n)
{
    if (unit_is(u, n, "ms"))
        return 1;
    if (unit_is(u, n, "s"))
        return 1000;
    if (unit_is(u, n, "m") || unit_is(u, n, "min"))
        return 60000;
    if (unit_is(u, n, "h"))
        return 3600000;
    return 0;
}

/* The multiplier of a size unit (binary, as --max-bytes-per-trigger): K,
 * KB, KiB and the same with M, G, T; or 0. A lone "m" is minutes. */
static double size_unit(const char *u, size_t n)
{
    if (n == 0 || n > 3 || unit_is(u, n, "m"))
        return 0;
    char c = (char)toupper((unsigned char)u[0]);
    if (c != 'K' && c != 'M' && c != 'G' && c != 'T')
        return 0;
    if ((n == 2 && u[1] != 'B') || (n == 3 && !(u[1] == 'i' && u[2] == 'B')))
        return 0;
    double k = 1024;
    return c == 'K' ? k : c == 'M' ? k * k : c == 'G' ? k * k * k : k * k * k * k;
}

static const char *unit_help(metric_kind_t kind)
{
    switch (kind) {
    case KIND_DURATION: return "a duration: a number of ms, or with ms, s, m or h";
    case KIND_SIZE: return "a size: a number of bytes, or with K, M or G";
    case KIND_FRACTION: return "a fraction: 0.01 or 1%";
    case KIND_RATE: return "a rate: a number of rows/s, without a unit";
    case KIND_COUNT: return "a count: a number without a unit";
    }
    return "";
}

/* The right side of METRIC OP: a number with a unit that fits the metric's
 * kind, or another metric of the same kind. */
static int parse_rhs(parser_t *p, rule_t *r)
{
    metric_kind_t kind = metrics[r->metric].kind;
    size_t at = p->pos;
    char buf[64];
    if (at_number(p)) {
        double v;
        size_t uat, un;
        int rc = parse_number(p, &v, &uat, &un);
        if (rc != 0)
            return rc;
        const char *u = p->s + uat;
        double mult = 0;
        if (un == 0) {
            mult = 1;
        } else {
            switch (kind) {
            case KIND_DURATION: mult = duration_unit(u, un); break;
            case KIND_SIZE: mult = size_unit(u, un); break;
            case KIND_FRACTION: mult = unit_is(u, un, "%") ? 0.01 : 0; break;
            default: break;
            }
        }
        if (mult == 0) {
            const char *what = duration_unit(u, un) ? "a duration unit"
                               : size_unit(u, un)   ? "a size unit"
                               : unit_is(u, un, "%") ? "a percentage"
                                                    : NULL;
            if (what)
                return perr(p, uat, "'%.*s' is %s, but %s is %s", (int)un, u, what,
                            metrics[r->metric].name, unit_help(kind));
            return perr(p, uat, "unknown unit '%.*s' (%s is %s)", (int)un, u, metrics[r->metric].name,
                        unit_help(kind));
        }
        r->rhs_value = v * mult;
        r->rhs_text = sp_xstrndup(p->s + at, p->pos - at);
        return 0;
    }
    if (!is_word_start(p->s[p->pos]))
        return perr(p, at, "expected a number or a metric, found %s", found(p, buf, sizeof buf));
    int rc = parse_metric(p, &r->rhs, "a number or a metric");
    if (rc != 0)
        return rc;
    metric_kind_t rk = metrics[r->rhs].kind;
    if (rk != kind)
        return perr(p, at, "%s is %s and %s is %s: they cannot be compared", metrics[r->metric].name,
                    kind_names[kind], metrics[r->rhs].name, kind_names[rk]);
    r->rhs_metric = true;
    r->rhs_text = sp_xstrdup(metrics[r->rhs].name);
    return 0;
}

/* "for N batches" or "for DURATION", p->pos just after "for". */
static int parse_for(parser_t *p, rule_t *r)
{
    char buf[64];
    skip_space(p);
    size_t at = p->pos;
    if (!at_number(p))
        return perr(p, at, "expected 'N batches' or a duration such as 30s after 'for', found %s",
                    found(p, buf, sizeof buf));
    double v;
    size_t uat, un;
    int rc = parse_number(p, &v, &uat, &un);
    if (rc != 0)
        return rc;
    if (un == 0) {
        skip_space(p);
        size_t n = word_at(p);
        if (!word_is(p, n, "batches") && !word_is(p, n, "batch"))
            return perr(p, p->pos, "expected 'batches' or a duration unit (ms, s, m, h) after 'for %.*s', found %s",
                        (int)(uat - at), p->s + at, found(p, buf, sizeof buf));
        if (v != floor(v) || v < 1 || v > 1e6)
            return perr(p, at, "'for %.*s batches' needs a whole number of batches from 1 to 1000000",
                        (int)(uat - at), p->s + at);
        p->pos += n;
        r->for_batches = (uint32_t)v;
        return 0;
    }
    double mult = duration_unit(p->s + uat, un);
    if (mult == 0)
        return perr(p, uat, "unknown unit '%.*s' after 'for' (use N batches, or a duration with ms, s, m or h)",
                    (int)un, p->s + uat);
    if (v * mult < 1 || v * mult > 1e12)
        return perr(p, at, "'for %.*s' is out of range", (int)(p->pos - at), p->s + at);
    r->for_ms = (uint64_t)(v * mult + 0.5);
    return 0;
}

/* NAME: CONDITION [for N batches | for DURATION] */
static int rule_parse(const char *text, rule_t *r, sp_err_t *err)
{
    parser_t p = {text, 0, err};
    char buf[64];
    memset(r, 0, sizeof *r);
    skip_space(&p);
    size_t name_at = p.pos;
    while (isalnum((unsigned char)text[p.pos]) || (text[p.pos] && strchr("_-.", text[p.pos])))
        p.pos++;
    size_t name_len = p.pos - name_at;
    if (name_len == 0)
        return perr(&p, name_at, "expected the rule's name (NAME: CONDITION), found %s", found(&p, buf, sizeof buf));
    skip_space(&p);
    if (text[p.pos] != ':')
        return perr(&p, p.pos,
                    "expected ':' after the rule's name '%.*s' (a name is letters, digits, '_', '-' and '.'), found %s",
                    (int)name_len, text + name_at, found(&p, buf, sizeof buf));
    p.pos++;
    skip_space(&p);
    size_t cond_at = p.pos;

    size_t n = word_at(&p);
    if (word_is(&p, n, "query_failed")) {
        r->kind = COND_QUERY_FAILED;
        p.pos += n;
    } else if (word_is(&p, n, "executor_lost")) {
        r->kind = COND_EXECUTOR_LOST;
        p.pos += n;
    } else {
        int rc;
        if (n == 0)
            return perr(&p, p.pos, "expected a condition (METRIC OP VALUE, query_failed or executor_lost), found %s",
                        found(&p, buf, sizeof buf));
        if ((rc = parse_metric(&p, &r->metric, "a metric")) != 0)
            return rc;
        r->kind = COND_METRIC;
        skip_space(&p);
        const char *o = text + p.pos;
        if (o[0] == '<' && o[1] == '=') { r->op = OP_LE; p.pos += 2; }
        else if (o[0] == '>' && o[1] == '=') { r->op = OP_GE; p.pos += 2; }
        else if ((o[0] == '!' && o[1] == '=') || (o[0] == '<' && o[1] == '>')) { r->op = OP_NE; p.pos += 2; }
        else if (o[0] == '=' && o[1] == '=') { r->op = OP_EQ; p.pos += 2; }
        else if (o[0] == '<') { r->op = OP_LT; p.pos++; }
        else if (o[0] == '>') { r->op = OP_GT; p.pos++; }
        else if (o[0] == '=') { r->op = OP_EQ; p.pos++; }
        else
            return perr(&p, p.pos, "expected an operator (<, <=, >, >=, =, !=) after %s, found %s",
                        metrics[r->metric].name, found(&p, buf, sizeof buf));
        skip_space(&p);
        if ((rc = parse_rhs(&p, r)) != 0) {
            free(r->rhs_text);
            r->rhs_text = NULL;
            return rc;
        }
        r->batch = metrics[r->metric].batch || (r->rhs_metric && metrics[r->rhs].batch);
    }
    size_t cond_end = p.pos;
    skip_space(&p);
    n = word_at(&p);
    if (word_is(&p, n, "for")) {
        size_t for_at = p.pos;
        if (r->kind == COND_QUERY_FAILED) {
            free(r->rhs_text);
            r->rhs_text = NULL;
            return perr(&p, for_at, "query_failed fires when the query fails and takes no 'for'");
        }
        p.pos += n;
        int rc = parse_for(&p, r);
        if (rc != 0) {
            free(r->rhs_text);
            r->rhs_text = NULL;
            return rc;
        }
        cond_end = p.pos;
        skip_space(&p);
    }
    while (text[p.pos] == '\r' || text[p.pos] == '\n')
        p.pos++;
    if (text[p.pos] != '\0') {
        free(r->rhs_text);
        r->rhs_text = NULL;
        return perr(&p, p.pos, "unexpected %s after the condition (only 'for N batches' or 'for DURATION' may follow)",
                    found(&p, buf, sizeof buf));
    }
    r->name = sp_xstrndup(text + name_at, name_len);
    r->condition = sp_xstrndup(text + cond_at, cond_end - cond_at);
    r->since_ms = -1;
    r->value = r->rhs_now = NAN;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_object *json_figure(double v)
{
    if (!isfinite(v))
        return NULL;
    if (v == floor(v) && fabs(v) < 1e15)
        return json_object_new_int64((int64_t)v);
    char buf[32];
    sp_format_double(v, buf, sizeof buf);
    return json_object_new_double_s(v, buf);
}

static json_object *json_time(int64_t ms)
{
    if (ms < 0)
        return NULL;
    char buf[40];
    sp_format_iso8601(ms, buf, sizeof buf);
    return json_object_new_string(buf);
}

static char *json_take(json_object *o)
{
    char *s = sp_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static void json_add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* ---- evaluation -------------------------------------------------------------- */

/* A firing or resolving alert found under the lock, published after it. */
typedef struct transition {
    struct transition *next;
    char *alert_json;
    job_t *job;
} transition_t;

static char *rule_summary(const alerts_t *a, const rule_t *r, bool firing)
{
    switch (r->kind) {
    case COND_QUERY_FAILED:
        return sp_xasprintf("the query failed: %s", a->fail_message ? a->fail_message : "(no message)");
    case COND_EXECUTOR_LOST:
        if (firing)
            return sp_xasprintf("executor %s was lost and no executor has taken its place",
                                a->lost_executor ? a->lost_executor : "?");
        return sp_xstrdup("an executor has taken the lost executor's place");
    case COND_METRIC: break;
    }
    metric_kind_t kind = metrics[r->metric].kind;
    char v[48], rhs[96], span[64] = "";
    format_figure(kind, r->value, v, sizeof v);
    if (r->rhs_metric) {
        char rv[48];
        format_figure(kind, r->rhs_now, rv, sizeof rv);
        snprintf(rhs, sizeof rhs, "%s (%s)", metrics[r->rhs].name, rv);
    } else {
        snprintf(rhs, sizeof rhs, "%s", r->rhs_text);
    }
    if (firing && r->for_batches)
        snprintf(span, sizeof span, ", for %u batches", r->for_batches);
    else if (firing && r->for_ms) {
        char d[48];
        format_figure(KIND_DURATION, (double)r->for_ms, d, sizeof d);
        snprintf(span, sizeof span, ", for %s", d);
    }
    return sp_xasprintf("%s is %s, %s%s %s%s", metrics[r->metric].name, v, firing ? "" : "no longer ",
                        op_words[r->op], rhs, span);
}

static double rule_figure(const alerts_t *a, const rule_t *r)
{
    switch (r->kind) {
    case COND_QUERY_FAILED: return a->failed ? 1 : 0;
    case COND_EXECUTOR_LOST: return a->lost;
    case COND_METRIC: break;
    }
    return r->value;
}

static transition_t *transition_new(alerts_t *a, rule_t *r, bool firing, int64_t now_ms)
{
    transition_t *t = sp_xcalloc(1, sizeof *t);
    char *summary = rule_summary(a, r, firing);

    json_object *o = json_object_new_object();
    json_add_str(o, "name", r->name);
    json_add_str(o, "state", firing ? "firing" : "resolved");
    json_add_str(o, "condition", r->condition);
    json_object_object_add(o, "value", json_figure(rule_figure(a, r)));
    json_object_object_add(o, "since", json_time(r->since_ms));
    json_add_str(o, "summary", summary);
    json_object *q = json_object_new_object();
    json_add_str(q, "id", a->id);
    json_add_str(q, "runId", a->run_id);
    json_add_str(q, "name", a->name);
    json_object_object_add(o, "query", q);
    t->alert_json = json_take(o);

    job_t *j = sp_xcalloc(1, sizeof *j);
    j->firing = firing;
    j->name = sp_xstrdup(r->name);
    j->alert_json = sp_xstrdup(t->alert_json);
    j->summary = summary;
    j->description = sp_xasprintf("Rule %s: %s. Query %s (id %s, run %s).", r->name, r->condition,
                                  a->name && *a->name ? a->name : "(unnamed)", a->id ? a->id : "?",
                                  a->run_id ? a->run_id : "?");
    j->starts_ms = r->fired_ms;
    j->ends_ms = firing ? -1 : now_ms;
    t->job = j;
    return t;
}

/* One judgement of r: cond is whether its condition holds now; after_batch
 * whether a batch just committed (it counts towards "for N batches"). */
static void rule_judge(alerts_t *a, rule_t *r, bool cond, bool after_batch, int64_t now_ms,
                       transition_t ***tail)
{
    if (r->since_ms < 0)
        r->since_ms = now_ms;
    r->judged = true;
    if (!cond) {
        r->holding = false;
        r->hold_batches = 0;
        if (r->state == RULE_FIRING) {
            r->state = RULE_OK;
            r->since_ms = now_ms;
            r->resolved++;
            **tail = transition_new(a, r, false, now_ms);
            *tail = &(**tail)->next;
        } else if (r->state == RULE_PENDING) {
            r->state = RULE_OK;
            r->since_ms = now_ms;
        }
        return;
    }
    if (!r->holding) {
        r->holding = true;
        r->hold_since_ms = now_ms;
        r->hold_batches = 0;
    }
    if (after_batch)
        r->hold_batches++;
    if (r->state == RULE_FIRING)
        return;
    bool due = r->for_batches ? r->hold_batches >= r->for_batches
               : r->for_ms    ? now_ms - r->hold_since_ms >= (int64_t)r->for_ms
                              : true;
    if (due) {
        r->state = RULE_FIRING;
        r->since_ms = now_ms;
        r->fired_ms = now_ms;
        r->fired++;
        **tail = transition_new(a, r, true, now_ms);
        *tail = &(**tail)->next;
    } else if (r->state != RULE_PENDING) {
        r->state = RULE_PENDING;
        r->since_ms = now_ms;
    }
}

static bool compare(op_t op, double l, double r)
{
    switch (op) {
    case OP_LT: return l < r;
    case OP_LE: return l <= r;
    case OP_GT: return l > r;
    case OP_GE: return l >= r;
    case OP_EQ: return l == r;
    case OP_NE: return l != r;
    }
    return false;
}

static void enqueue(alerts_t *a, job_t *j);

/* Publish each transition on this thread, in order, then queue its
 * actions. Called without a->mu, so the callback may call back in. */
static void deliver(alerts_t *a, transition_t *t)
{
    while (t) {
        transition_t *next = t->next;
        if (a->publish)
            a->publish(a->ctx, t->alert_json);
        enqueue(a, t->job);
        free(t->alert_json);
        free(t);
        t = next;
    }
}

/* Judge the rules of one event kind (query_failed, executor_lost). */
static void judge_events(alerts_t *a, cond_kind_t kind, int64_t now_ms)
{
    transition_t *list = NULL, **tail = &list;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nrules; i++) {
        rule_t *r = &a->rules[i];
        if (r->kind != kind)
            continue;
        bool cond = kind == COND_QUERY_FAILED ? a->failed : a->lost > 0;
        rule_judge(a, r, cond, false, now_ms, &tail);
    }
    pthread_mutex_unlock(&a->mu);
    deliver(a, list);
}

void alerts_evaluate(alerts_t *a, const alerts_figures_t *f)
{
    if (a == NULL || f == NULL)
        return;
    transition_t *list = NULL, **tail = &list;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nrules; i++) {
        rule_t *r = &a->rules[i];
        switch (r->kind) {
        case COND_QUERY_FAILED:
            rule_judge(a, r, a->failed, f->after_batch, f->now_ms, &tail);
            continue;
        case COND_EXECUTOR_LOST:
            rule_judge(a, r, a->lost > 0, f->after_batch, f->now_ms, &tail);
            continue;
        case COND_METRIC: break;
        }
        if (r->batch && !f->after_batch) {
            /* Batch figures are new only after a batch; in between the last
             * judgement stands, and a "for DURATION" runs on. */
            if (r->holding)
                rule_judge(a, r, true, false, f->now_ms, &tail);
            continue;
        }
        double l = metric_value(r->metric, f);
        double rv = r->rhs_metric ? metric_value(r->rhs, f) : r->rhs_value;
        if (isnan(l) || isnan(rv))
            continue; /* an unknown figure (no rate yet) decides nothing */
        r->value = l;
        r->rhs_now = rv;
        rule_judge(a, r, compare(r->op, l, rv), f->after_batch, f->now_ms, &tail);
    }
    pthread_mutex_unlock(&a->mu);
    deliver(a, list);
}

void alerts_executor_lost(alerts_t *a, const char *executor_id, int64_t now_ms)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->lost++;
    free(a->lost_executor);
    a->lost_executor = sp_xstrdup(executor_id ? executor_id : "?");
    pthread_mutex_unlock(&a->mu);
    judge_events(a, COND_EXECUTOR_LOST, now_ms);
}

void alerts_executor_added(alerts_t *a, int64_t now_ms)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    bool was = a->lost > 0;
    if (a->lost > 0)
        a->lost--;
    pthread_mutex_unlock(&a->mu);
    if (was)
        judge_events(a, COND_EXECUTOR_LOST, now_ms);
}

void alerts_query_failed(alerts_t *a, const char *message, int64_t now_ms)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->failed = true;
    free(a->fail_message);
    a->fail_message = sp_xstrdup(message ? message : "(no message)");
    pthread_mutex_unlock(&a->mu);
    judge_events(a, COND_QUERY_FAILED, now_ms);
}

unsigned alerts_firing(alerts_t *a)
{
    unsigned n = 0;
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nrules; i++)
        n += a->rules[i].state == RULE_FIRING;
    pthread_mutex_unlock(&a->mu);
    return n;
}

char *alerts_table_json(alerts_t *a)
{
    json_object *arr = json_object_new_array();
    if (a) {
        pthread_mutex_lock(&a->mu);
        for (size_t i = 0; i < a->nrules; i++) {
            const rule_t *r = &a->rules[i];
            json_object *o = json_object_new_object();
            json_add_str(o, "name", r->name);
            json_add_str(o, "condition", r->condition);
            json_add_str(o, "state", state_names[r->state]);
            json_object_object_add(o, "since", json_time(r->since_ms));
            json_object_object_add(o, "value", r->judged ? json_figure(rule_figure(a, r)) : NULL);
            json_object_object_add(o, "fired", json_object_new_int64((int64_t)r->fired));
            json_object_object_add(o, "resolved", json_object_new_int64((int64_t)r->resolved));
            json_object_array_add(arr, o);
        }
        pthread_mutex_unlock(&a->mu);
    }
    return json_take(arr);
}

/* ---- rules and actions: adding ------------------------------------------------- */

alerts_t *alerts_new(const alerts_query_t *q, alerts_publish_fn publish, void *ctx)
{
    alerts_t *a = sp_xcalloc(1, sizeof *a);
    if (q) {
        a->id = q->id ? sp_xstrdup(q->id) : NULL;
        a->run_id = q->run_id ? sp_xstrdup(q->run_id) : NULL;
        a->name = q->name ? sp_xstrdup(q->name) : NULL;
        a->http_url = q->http_url ? sp_xstrdup(q->http_url) : NULL;
    }
    a->publish = publish;
    a->ctx = ctx;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->qcv, &ca);
    pthread_cond_init(&a->donecv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&a->abort, false);
    return a;
}

static int add_rule_text(alerts_t *a, const char *text, sp_err_t *err)
{
    rule_t r;
    int rc = rule_parse(text, &r, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nrules; i++) {
        if (strcmp(a->rules[i].name, r.name) == 0) {
            pthread_mutex_unlock(&a->mu);
            size_t col = (size_t)(strstr(text, r.name) - text) + 1;
            rc = sp_err_set(err, SP_EINVAL, "at column %zu: a rule named '%s' exists already", col, r.name);
            rule_free(&r);
            return rc;
        }
    }
    if (a->nrules == a->caprules) {
        a->caprules = a->caprules ? a->caprules * 2 : 8;
        a->rules = sp_xrealloc(a->rules, a->caprules * sizeof *a->rules);
    }
    a->rules[a->nrules++] = r;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int alerts_add_rule(alerts_t *a, const char *text, sp_err_t *err)
{
    if (a == NULL || text == NULL)
        return sp_err_set(err, SP_EINVAL, "alert: no rule");
    if (strchr(text, '\n'))
        return sp_err_set(err, SP_EINVAL, "alert '%s': one rule per --alert (a file takes one per line)", text);
    int rc = add_rule_text(a, text, err);
    if (rc != 0 && err)
        sp_err_wrap(err, rc, "alert '%s'", text);
    return rc;
}

int alerts_load_file(alerts_t *a, const char *path, sp_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return sp_err_set(err, SP_EIO, "alerts file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    for (unsigned lineno = 1; (n = getline(&line, &cap, f)) >= 0; lineno++) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        /* A '#' starts a comment: at the start of a line, or after a space. */
        for (ssize_t i = 0; i < n; i++) {
            if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                line[i] = '\0';
                n = i;
                break;
            }
        }
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0')
            continue;
        if ((rc = add_rule_text(a, line, err)) != 0) {
            sp_err_wrap(err, rc, "%s:%u", path, lineno);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = sp_err_set(err, SP_EIO, "alerts file %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* An http(s) URL curl can parse. */
static int check_url(const char *kind, const char *url, sp_err_t *err)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return sp_err_set(err, SP_EINVAL, "alert action '%s:%s': expected an http:// or https:// URL", kind, url);
    CURLU *h = curl_url();
    if (h == NULL)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, 0);
    curl_url_cleanup(h);
    if (uc != CURLUE_OK)
        return sp_err_set(err, SP_EINVAL, "alert action '%s:%s': not a valid URL (%s)", kind, url, curl_url_strerror(uc));
    return 0;
}

int alerts_add_action(alerts_t *a, const char *spec, sp_err_t *err)
{
    if (a == NULL || spec == NULL)
        return sp_err_set(err, SP_EINVAL, "alert action: none given");
    if (a->started)
        return sp_err_set(err, SP_EINVAL, "alert action '%s': add actions before alerts_start", spec);
    action_t act = {ACT_LOG, NULL};
    int rc;
    if (strcmp(spec, "log") == 0) {
        act.kind = ACT_LOG;
    } else if (strncmp(spec, "command:", 8) == 0) {
        if (spec[8 + strspn(spec + 8, " \t")] == '\0')
            return sp_err_set(err, SP_EINVAL, "alert action '%s': needs a command, e.g. command:notify-team.sh", spec);
        act.kind = ACT_COMMAND;
        act.arg = sp_xstrdup(spec + 8);
    } else if (strncmp(spec, "webhook:", 8) == 0) {
        if ((rc = check_url("webhook", spec + 8, err)) != 0)
            return rc;
        act.kind = ACT_WEBHOOK;
        act.arg = sp_xstrdup(spec + 8);
    } else if (strncmp(spec, "alertmanager:", 13) == 0) {
        if ((rc = check_url("alertmanager", spec + 13, err)) != 0)
            return rc;
        const char *base = spec + 13;
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            n--;
        act.kind = ACT_ALERTMANAGER;
        act.arg = sp_xasprintf("%.*s/api/v2/alerts", (int)n, base);
        a->has_alertmanager = true;
    } else {
        return sp_err_set(err, SP_EINVAL,
                          "alert action '%s': unknown kind (use log, command:CMD, webhook:URL or alertmanager:URL)", spec);
    }
    a->actions = sp_xrealloc(a->actions, (a->nactions + 1) * sizeof *a->actions);
    a->actions[a->nactions++] = act;
    return 0;
}

/* ---- the actions thread: command ------------------------------------------------ */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void run_command(alerts_t *a, const job_t *j, const char *cmd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        SP_WARN("alerts", "alert %s: command '%s': socketpair: %s", j->name, cmd, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        SP_WARN("alerts", "alert %s: command '%s': fork: %s", j->name, cmd, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. Its own process group, so
         * that a timeout kills whatever the shell started too; its stdout
         * goes to our stderr (stdout may carry a console sink's tables). */
        setpgid(0, 0);
        dup2(sv[1], 0);
        dup2(2, 1);
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) /* before Linux 5.9 */
            for (int fd = 3; fd < 4096; fd++)
                close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    setpgid(pid, pid); /* also from here: no race with the kill below */
    uint64_t deadline = sp_mono_ms() + ALERTS_COMMAND_TIMEOUT_MS;
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    const char *p = j->alert_json;
    size_t left = strlen(p);
    char nl = '\n';
    bool sent_nl = false;
    while ((left > 0 || !sent_nl) && sp_mono_ms() < deadline && !atomic_load(&a->abort)) {
        const char *buf = left > 0 ? p : &nl;
        size_t len = left > 0 ? left : 1;
        ssize_t w = send(sv[0], buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            if (left > 0) {
                p += w;
                left -= (size_t)w;
            } else {
                sent_nl = true;
            }
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {sv[0], POLLOUT, 0};
            poll(&pf, 1, 50);
        } else {
            break; /* it does not read its input: fine */
        }
    }
    close(sv[0]);
    int status = 0;
    bool done = false, killed = false, stopped = false;
    unsigned nap = 1;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = true;
            break;
        }
        if (w < 0 && errno != EINTR)
            break;
        if (sp_mono_ms() >= deadline || atomic_load(&a->abort)) {
            stopped = atomic_load(&a->abort);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            killed = true;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            done = true;
            break;
        }
        sleep_ms(nap);
        if (nap < 50)
            nap *= 2;
    }
    if (!done)
        SP_WARN("alerts", "alert %s: command '%s': waitpid: %s", j->name, cmd, strerror(errno));
    else if (killed && stopped)
        SP_WARN("alerts", "alert %s: command '%s' was stopped: alerts are stopping", j->name, cmd);
    else if (killed)
        SP_WARN("alerts", "alert %s: command '%s' took longer than %d s and was killed", j->name, cmd,
                ALERTS_COMMAND_TIMEOUT_MS / 1000);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        SP_WARN("alerts", "alert %s: command '%s' exited with status %d", j->name, cmd, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        SP_WARN("alerts", "alert %s: command '%s' was killed by signal %d", j->name, cmd, WTERMSIG(status));
}

/* ---- the actions thread: HTTP (libcurl) ----------------------------------------- */

typedef struct reply {
    char text[200];
    size_t len;
} reply_t;

static size_t reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    reply_t *r = userdata;
    size_t n = size * nmemb, room = sizeof r->text - 1 - r->len;
    size_t take = n < room ? n : room;
    memcpy(r->text + r->len, ptr, take);
    r->len += take;
    r->text[r->len] = '\0';
    return n;
}

static int xfer_abort(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    alerts_t *a = clientp;
    return atomic_load(&a->abort) ? 1 : 0;
}

/* POST body (JSON) to url; failures are logged, never retried here. */
static void http_post(alerts_t *a, const char *what, const char *name, const char *url, const char *body)
{
    CURL *c = curl_easy_init();
    if (c == NULL) {
        SP_WARN("alerts", "alert %s: %s %s: cannot start libcurl", name, what, url);
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    reply_t reply = {"", 0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "spate/" SPATE_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ALERTS_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ALERTS_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reply_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_abort);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
    CURLcode res = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (res != CURLE_OK) {
        SP_WARN("alerts", "alert %s: %s %s failed: %s", name, what, url, errbuf[0] ? errbuf : curl_easy_strerror(res));
    } else if (code < 200 || code > 299) {
        for (size_t i = 0; i < reply.len; i++)
            if (reply.text[i] == '\n' || reply.text[i] == '\r')
                reply.text[i] = ' ';
        SP_WARN("alerts", "alert %s: %s %s answered HTTP %ld%s%s", name, what, url, code, reply.len ? ": " : "",
                reply.text);
    } else {
        SP_DEBUG("alerts", "alert %s: %s %s answered HTTP %ld", name, what, url, code);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
}

/* The alert as Alertmanager's API v2 takes it (one element of the array). */
static json_object *am_alert(const alerts_t *a, const job_t *j)
{
    json_object *o = json_object_new_object();
    json_object *labels = json_object_new_object();
    json_add_str(labels, "alertname", j->name);
    json_add_str(labels, "query", a->name && *a->name ? a->name : a->id ? a->id : "spate");
    json_add_str(labels, "severity", "warning");
    json_object_object_add(o, "labels", labels);
    json_object *ann = json_object_new_object();
    json_add_str(ann, "summary", j->summary);
    json_add_str(ann, "description", j->description);
    json_object_object_add(o, "annotations", ann);
    json_object_object_add(o, "startsAt", json_time(j->starts_ms));
    if (!j->firing)
        json_object_object_add(o, "endsAt", json_time(j->ends_ms));
    if (a->http_url && *a->http_url)
        json_add_str(o, "generatorURL", a->http_url);
    return o;
}

static void am_post_all(alerts_t *a, const char *name, json_object *arr)
{
    char *body = json_take(arr);
    for (size_t i = 0; i < a->nactions; i++)
        if (a->actions[i].kind == ACT_ALERTMANAGER && !atomic_load(&a->abort))
            http_post(a, "alertmanager", name, a->actions[i].arg, body);
    free(body);
}

/* Keep the set of alerts firing at Alertmanager up to date with j. */
static void am_track(alerts_t *a, const job_t *j)
{
    job_t **pp = &a->am_firing;
    while (*pp && strcmp((*pp)->name, j->name) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        job_t *old = *pp;
        *pp = old->next;
        job_free(old);
    }
    if (j->firing) {
        job_t *c = sp_xcalloc(1, sizeof *c);
        c->firing = true;
        c->name = sp_xstrdup(j->name);
        c->summary = sp_xstrdup(j->summary);
        c->description = sp_xstrdup(j->description);
        c->starts_ms = j->starts_ms;
        c->ends_ms = -1;
        c->next = a->am_firing;
        a->am_firing = c;
    }
}

static void am_resend(alerts_t *a)
{
    json_object *arr = json_object_new_array();
    size_t n = 0;
    for (job_t *c = a->am_firing; c; c = c->next, n++)
        json_object_array_add(arr, am_alert(a, c));
    if (n == 0) {
        json_object_put(arr);
        return;
    }
    SP_DEBUG("alerts", "re-sending %zu firing alert(s) to Alertmanager", n);
    am_post_all(a, n == 1 ? a->am_firing->name : "(firing)", arr);
}

/* ---- the actions thread ---------------------------------------------------------- */

static void run_job(alerts_t *a, const job_t *j)
{
    bool am_done = false;
    for (size_t i = 0; i < a->nactions && !atomic_load(&a->abort); i++) {
        const action_t *act = &a->actions[i];
        switch (act->kind) {
        case ACT_LOG:
            if (j->firing)
                SP_WARN("alerts", "alert %s firing: %s", j->name, j->summary);
            else
                SP_INFO("alerts", "alert %s resolved: %s", j->name, j->summary);
            break;
        case ACT_COMMAND: run_command(a, j, act->arg); break;
        case ACT_WEBHOOK: http_post(a, "webhook", j->name, act->arg, j->alert_json); break;
        case ACT_ALERTMANAGER:
            if (!am_done) { /* one array for every Alertmanager action */
                am_done = true;
                json_object *arr = json_object_new_array();
                json_object_array_add(arr, am_alert(a, j));
                am_post_all(a, j->name, arr);
            }
            break;
        }
    }
    if (a->has_alertmanager) {
        am_track(a, j);
        if (j->firing)
            a->next_resend_ms = sp_mono_ms() + a->resend_ms;
    }
}

static void cond_wait_until_mono(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t until_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

static void *actions_main(void *arg)
{
    alerts_t *a = arg;
    pthread_mutex_lock(&a->qmu);
    for (;;) {
        while (a->head == NULL && !a->closing) {
            if (a->am_firing) {
                uint64_t now = sp_mono_ms();
                if (now >= a->next_resend_ms) {
                    a->busy = true;
                    pthread_mutex_unlock(&a->qmu);
                    am_resend(a);
                    pthread_mutex_lock(&a->qmu);
                    a->busy = false;
                    a->next_resend_ms = sp_mono_ms() + a->resend_ms;
                    continue;
                }
                cond_wait_until_mono(&a->qcv, &a->qmu, a->next_resend_ms);
            } else {
                pthread_cond_wait(&a->qcv, &a->qmu);
            }
        }
        if (a->head == NULL || atomic_load(&a->abort))
            break; /* closing, and drained or out of time */
        job_t *j = a->head;
        a->head = j->next;
        if (a->head == NULL)
            a->tail = NULL;
        a->queued--;
        a->busy = true;
        pthread_mutex_unlock(&a->qmu);
        run_job(a, j);
        job_free(j);
        pthread_mutex_lock(&a->qmu);
        a->busy = false;
        pthread_cond_broadcast(&a->donecv);
    }
    pthread_cond_broadcast(&a->donecv);
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

static void enqueue(alerts_t *a, job_t *j)
{
    pthread_mutex_lock(&a->qmu);
    if (!a->started || a->closing) {
        pthread_mutex_unlock(&a->qmu);
        job_free(j);
        return;
    }
    if (a->queued >= ALERTS_QUEUE_MAX) {
        pthread_mutex_unlock(&a->qmu);
        SP_WARN("alerts", "alert actions are behind (%d waiting): alert %s %s runs no action", ALERTS_QUEUE_MAX,
                j->name, j->firing ? "firing" : "resolved");
        job_free(j);
        return;
    }
    if (a->tail)
        a->tail->next = j;
    else
        a->head = j;
    a->tail = j;
    a->queued++;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int alerts_start(alerts_t *a, sp_err_t *err)
{
    if (a == NULL)
        return sp_err_set(err, SP_EINVAL, "alerts_start: no alerts");
    if (a->started)
        return 0;
    if (a->nactions == 0)
        alerts_add_action(a, "log", NULL);
    a->resend_ms = ALERTS_RESEND_MS;
    const char *knob = getenv("SPATE_TEST_ALERTS_RESEND_MS");
    if (knob && atoi(knob) > 0)
        a->resend_ms = (uint64_t)atoi(knob);
    bool http = false;
    for (size_t i = 0; i < a->nactions; i++)
        http |= a->actions[i].kind == ACT_WEBHOOK || a->actions[i].kind == ACT_ALERTMANAGER;
    if (http) {
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK)
            return sp_err_set(err, SP_EIO, "alerts: libcurl does not start: %s", curl_easy_strerror(curl_init_rc));
    }
    /* The thread takes no signals: SIGINT and SIGTERM stay the driver's,
     * and a SIGPIPE from a closed connection only fails that write. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&a->thread, NULL, actions_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0)
        return sp_err_set(err, SP_EIO, "alerts: cannot start the actions thread: %s", strerror(prc));
    pthread_mutex_lock(&a->qmu);
    a->started = true;
    pthread_mutex_unlock(&a->qmu);
    return 0;
}

void alerts_destroy(alerts_t **ap)
{
    if (ap == NULL || *ap == NULL)
        return;
    alerts_t *a = *ap;
    *ap = NULL;
    pthread_mutex_lock(&a->qmu);
    bool started = a->started;
    a->closing = true;
    pthread_cond_broadcast(&a->qcv);
    if (started) {
        uint64_t deadline = sp_mono_ms() + ALERTS_DRAIN_MS;
        while ((a->head || a->busy) && sp_mono_ms() < deadline)
            cond_wait_until_mono(&a->donecv, &a->qmu, deadline);
        if (a->head || a->busy) {
            SP_WARN("alerts", "stopping: %zu alert action(s) still waiting after %d s are not run", a->queued + a->busy,
                    ALERTS_DRAIN_MS / 1000);
            atomic_store(&a->abort, true);
            pthread_cond_broadcast(&a->qcv);
        }
    }
    pthread_mutex_unlock(&a->qmu);
    if (started)
        pthread_join(a->thread, NULL);
    while (a->head) {
        job_t *j = a->head;
        a->head = j->next;
        job_free(j);
    }
    while (a->am_firing) {
        job_t *j = a->am_firing;
        a->am_firing = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < a->nrules; i++)
        rule_free(&a->rules[i]);
    free(a->rules);
    for (size_t i = 0; i < a->nactions; i++)
        free(a->actions[i].arg);
    free(a->actions);
    free(a->lost_executor);
    free(a->fail_message);
    free(a->id);
    free(a->run_id);
    free(a->name);
    free(a->http_url);
    pthread_cond_destroy(&a->qcv);
    pthread_cond_destroy(&a->donecv);
    pthread_mutex_destroy(&a->qmu);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
