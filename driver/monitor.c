/* driver/monitor.c -- the query's observable state and its event stream.
 * Owns, under one mutex: the status, the ring of recent progress reports,
 * the executor table and recently lost executors, the ring of recent
 * batches, the alerts table and the counters behind /metrics. Owns each
 * listener's queue and thread. Writes JSON with json-c; never touches
 * sockets, files or the checkpoint. */
#include "monitor.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_log.h"
#include "sp_util.h"

#define MONITOR_LOST_KEPT 20

/* ---- listeners ------------------------------------------------------------ */

typedef struct queued {
    struct queued *next;
    monitor_event_t ev;
    char *json;
} queued_t;

typedef struct listener {
    monitor_listener_t cb;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queued_t *head, *tail;
    bool closing;
} listener_t;

static void *listener_main(void *arg)
{
    listener_t *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (l->head == NULL && !l->closing)
            pthread_cond_wait(&l->cv, &l->mu);
        queued_t *q = l->head;
        if (q == NULL) { /* closing and drained */
            pthread_mutex_unlock(&l->mu);
            break;
        }
        l->head = q->next;
        if (l->head == NULL)
            l->tail = NULL;
        pthread_mutex_unlock(&l->mu);
        void (*fn)(void *, const monitor_event_t *) = NULL;
        switch (q->ev.kind) {
        case MONITOR_QUERY_STARTED: fn = l->cb.on_query_started; break;
        case MONITOR_QUERY_PROGRESS: fn = l->cb.on_query_progress; break;
        case MONITOR_QUERY_IDLE: fn = l->cb.on_query_idle; break;
        case MONITOR_QUERY_TERMINATED: fn = l->cb.on_query_terminated; break;
        default: fn = l->cb.on_other; break;
        }
        if (fn)
            fn(l->cb.ctx, &q->ev);
        free(q->json);
        free(q);
    }
    if (l->cb.on_close)
        l->cb.on_close(l->cb.ctx);
    return NULL;
}

/* ---- the monitor ---------------------------------------------------------------- */

typedef struct batch_slot {
    int64_t batch_id;
    char *summary; /* JSON object without tasks */
    char *detail;  /* JSON object with tasks */
} batch_slot_t;

struct monitor {
    pthread_mutex_t mu;
    char *id, *run_id, *name;
    /* status */
    char *message;
    bool data_available, trigger_active;
    /* progress */
    char **progress;       /* ring of JSON strings */
    size_t progress_cap, progress_n, progress_head; /* head: oldest */
    progress_t last;       /* figures of the newest report (strings not kept) */
    bool have_last;
    char *last_json;       /* the newest report's JSON (for the caller) */
    /* executors */
    char *executors_json;  /* array of the live ones */
    uint32_t executors_alive;
    json_object *lost;     /* array of recently lost executors */
    /* batches */
    batch_slot_t *batches; /* ring, newest at (head + n - 1) */
    size_t batches_cap, batches_n, batches_head;
    /* alerts and counters */
    char *alerts_json;
    unsigned alerts_firing;
    monitor_counters_t counters;
    uint64_t backlog_files, backlog_bytes;
    int64_t backlog_age_ms;
    /* events */
    uint64_t seq;
    listener_t **listeners;
    size_t nlisteners;
};

const char *monitor_event_name(monitor_event_kind_t kind)
{
    switch (kind) {
    case MONITOR_QUERY_STARTED: return "QueryStartedEvent";
    case MONITOR_QUERY_PROGRESS: return "QueryProgressEvent";
    case MONITOR_QUERY_IDLE: return "QueryIdleEvent";
    case MONITOR_QUERY_TERMINATED: return "QueryTerminatedEvent";
    case MONITOR_EXECUTOR_ADDED: return "ExecutorAddedEvent";
    case MONITOR_EXECUTOR_LOST: return "ExecutorLostEvent";
    case MONITOR_ALERT: return "AlertEvent";
    }
    return "Event";
}

monitor_t *monitor_new(const monitor_opts_t *o)
{
    monitor_t *m = sp_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->id = sp_xstrdup(o->query_id ? o->query_id : "");
    m->run_id = sp_xstrdup(o->run_id ? o->run_id : "");
    m->name = sp_xstrdup(o->name ? o->name : "");
    m->message = sp_xstrdup("Initializing sources");
    m->progress_cap = o->recent_progress ? o->recent_progress : 100;
    m->progress = sp_xcalloc(m->progress_cap, sizeof(char *));
    m->batches_cap = o->recent_batches ? o->recent_batches : 100;
    m->batches = sp_xcalloc(m->batches_cap, sizeof(batch_slot_t));
    m->executors_json = sp_xstrdup("[]");
    m->alerts_json = sp_xstrdup("[]");
    m->lost = json_object_new_array();
    m->backlog_age_ms = -1;
    return m;
}

void monitor_destroy(monitor_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    monitor_t *m = *mp;
    for (size_t i = 0; i < m->nlisteners; i++) {
        listener_t *l = m->listeners[i];
        pthread_mutex_lock(&l->mu);
        l->closing = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l);
    }
    free(m->listeners);
    for (size_t i = 0; i < m->progress_cap; i++)
        free(m->progress[i]);
    free(m->progress);
    for (size_t i = 0; i < m->batches_cap; i++) {
        free(m->batches[i].summary);
        free(m->batches[i].detail);
    }
    free(m->batches);
    json_object_put(m->lost);
    free(m->last_json);
    free(m->executors_json);
    free(m->alerts_json);
    free(m->message);
    free(m->id);
    free(m->run_id);
    free(m->name);
    pthread_mutex_destroy(&m->mu);
    free(m);
    *mp = NULL;
}

void monitor_set_query(monitor_t *m, const char *query_id, const char *name)
{
    pthread_mutex_lock(&m->mu);
    free(m->id);
    free(m->name);
    m->id = sp_xstrdup(query_id ? query_id : "");
    m->name = sp_xstrdup(name ? name : "");
    pthread_mutex_unlock(&m->mu);
}

void monitor_add_listener(monitor_t *m, const monitor_listener_t *cb)
{
    listener_t *l = sp_xcalloc(1, sizeof *l);
    l->cb = *cb;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_create(&l->thread, NULL, listener_main, l);
    pthread_mutex_lock(&m->mu);
    m->listeners = sp_xrealloc(m->listeners, (m->nlisteners + 1) * sizeof(listener_t *));
    m->listeners[m->nlisteners++] = l;
    pthread_mutex_unlock(&m->mu);
}

/* ---- JSON helpers ---------------------------------------------------------------- */

static char *to_string(json_object *o)
{
    char *s = sp_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static void put_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void put_int(json_object *o, const char *k, int64_t v) { json_object_object_add(o, k, json_object_new_int64(v)); }

static void put_time(json_object *o, const char *k, int64_t ms)
{
    char ts[40];
    sp_format_iso8601(ms, ts, sizeof ts);
    put_str(o, k, ts);
}

/* {"event": NAME, "id", "runId", "timestamp"} to add to. */
static json_object *event_head(monitor_t *m, monitor_event_kind_t kind, int64_t ts)
{
    json_object *o = json_object_new_object();
    put_str(o, "event", monitor_event_name(kind));
    put_str(o, "id", m->id);
    put_str(o, "runId", m->run_id);
    put_time(o, "timestamp", ts);
    return o;
}

/* Queue the event for every listener; takes ownership of json. Called with
 * m->mu held, so every listener sees the same order. */
static void publish_locked(monitor_t *m, monitor_event_kind_t kind, int64_t ts, char *json)
{
    uint64_t seq = ++m->seq;
    for (size_t i = 0; i < m->nlisteners; i++) {
        listener_t *l = m->listeners[i];
        queued_t *q = sp_xcalloc(1, sizeof *q);
        q->json = sp_xstrdup(json);
        q->ev.kind = kind;
        q->ev.seq = seq;
        q->ev.timestamp_ms = ts;
        q->ev.json = q->json;
        pthread_mutex_lock(&l->mu);
        if (l->tail)
            l->tail->next = q;
        else
            l->head = q;
        l->tail = q;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    free(json);
}

static void publish(monitor_t *m, monitor_event_kind_t kind, int64_t ts, json_object *o)
{
    pthread_mutex_lock(&m->mu);
    publish_locked(m, kind, ts, to_string(o));
    pthread_mutex_unlock(&m->mu);
}

/* ---- the driver's side ----------------------------------------------------------- */

void monitor_set_status(monitor_t *m, const char *message, bool data_available, bool trigger_active)
{
    pthread_mutex_lock(&m->mu);
    if (strcmp(m->message, message) != 0) {
        free(m->message);
        m->message = sp_xstrdup(message);
    }
    m->data_available = data_available;
    m->trigger_active = trigger_active;
    pthread_mutex_unlock(&m->mu);
}

void monitor_query_started(monitor_t *m, int64_t timestamp_ms)
{
    json_object *o = event_head(m, MONITOR_QUERY_STARTED, timestamp_ms);
    put_str(o, "name", m->name[0] ? m->name : NULL);
    publish(m, MONITOR_QUERY_STARTED, timestamp_ms, o);
}

static void progress_push_locked(monitor_t *m, const char *json)
{
    size_t slot = (m->progress_head + m->progress_n) % m->progress_cap;
    if (m->progress_n == m->progress_cap) {
        free(m->progress[m->progress_head]);
        m->progress_head = (m->progress_head + 1) % m->progress_cap;
        slot = (m->progress_head + m->progress_n - 1) % m->progress_cap;
    } else {
        m->progress_n++;
    }
    m->progress[slot] = sp_xstrdup(json);
}

void monitor_restore_progress(monitor_t *m, const char *const *json, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++)
        progress_push_locked(m, json[i]);
    pthread_mutex_unlock(&m->mu);
}

const char *monitor_progress(monitor_t *m, const progress_t *p)
{
    char *json = progress_to_json(p);
    char *event = sp_xasprintf("{\"event\":\"QueryProgressEvent\",\"progress\":%s}", json);
    pthread_mutex_lock(&m->mu);
    progress_push_locked(m, json);
    m->last = *p;
    m->last.execs = NULL;
    m->last.nexecs = 0;
    m->have_last = true;
    free(m->last_json);
    m->last_json = json;
    publish_locked(m, MONITOR_QUERY_PROGRESS, p->timestamp_ms, event);
    pthread_mutex_unlock(&m->mu);
    return json;
}

void monitor_idle(monitor_t *m, int64_t timestamp_ms)
{
    publish(m, MONITOR_QUERY_IDLE, timestamp_ms, event_head(m, MONITOR_QUERY_IDLE, timestamp_ms));
}

void monitor_query_terminated(monitor_t *m, const char *exception, const char *error_class)
{
    int64_t now = sp_wall_ms();
    json_object *o = event_head(m, MONITOR_QUERY_TERMINATED, now);
    put_str(o, "exception", exception);
    put_str(o, "errorClassOnException", error_class);
    publish(m, MONITOR_QUERY_TERMINATED, now, o);
    monitor_set_status(m, "Stopped", false, false);
}

static json_object *executor_json(const monitor_executor_t *e)
{
    json_object *o = json_object_new_object();
    put_str(o, "id", e->id);
    put_str(o, "host", e->host);
    put_int(o, "pid", e->pid);
    put_int(o, "slots", e->slots);
    put_int(o, "runningTasks", e->running);
    put_str(o, "state", e->draining ? "draining" : "alive");
    put_time(o, "registeredAt", e->registered_ms);
    put_int(o, "heartbeatAgeMs", (int64_t)e->heartbeat_age_ms);
    put_int(o, "tasksDone", (int64_t)e->tasks_done);
    put_int(o, "tasksFailed", (int64_t)e->tasks_failed);
    return o;
}

void monitor_set_executors(monitor_t *m, const monitor_executor_t *e, size_t n)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, executor_json(&e[i]));
    char *json = to_string(arr);
    pthread_mutex_lock(&m->mu);
    free(m->executors_json);
    m->executors_json = json;
    m->executors_alive = (uint32_t)n;
    pthread_mutex_unlock(&m->mu);
}

void monitor_executor_added(monitor_t *m, const monitor_executor_t *e)
{
    int64_t now = sp_wall_ms();
    json_object *o = event_head(m, MONITOR_EXECUTOR_ADDED, now);
    json_object_object_add(o, "executor", executor_json(e));
    publish(m, MONITOR_EXECUTOR_ADDED, now, o);
}

void monitor_executor_lost(monitor_t *m, const monitor_executor_t *e, const char *reason)
{
    int64_t now = sp_wall_ms();
    json_object *o = event_head(m, MONITOR_EXECUTOR_LOST, now);
    json_object_object_add(o, "executor", executor_json(e));
    put_str(o, "reason", reason);
    json_object *rec = executor_json(e);
    json_object_object_add(rec, "state", json_object_new_string("lost"));
    put_time(rec, "lostAt", now);
    put_str(rec, "reason", reason);
    pthread_mutex_lock(&m->mu);
    if (json_object_array_length(m->lost) >= MONITOR_LOST_KEPT)
        json_object_array_del_idx(m->lost, 0, 1);
    json_object_array_add(m->lost, rec);
    m->counters.executors_lost++;
    publish_locked(m, MONITOR_EXECUTOR_LOST, now, to_string(o));
    pthread_mutex_unlock(&m->mu);
}

static json_object *batch_json(const monitor_batch_t *b, bool with_tasks)
{
    json_object *o = json_object_new_object();
    put_int(o, "batchId", b->batch_id);
    put_time(o, "startedAt", b->started_ms);
    put_str(o, "state", b->state);
    put_int(o, "files", (int64_t)b->files);
    put_int(o, "bytes", (int64_t)b->bytes);
    put_int(o, "numInputRows", (int64_t)b->rows);
    put_int(o, "numMalformedRows", (int64_t)b->malformed);
    put_int(o, "stateRows", (int64_t)b->state_rows);
    put_int(o, "updatedRows", (int64_t)b->updated_rows);
    put_int(o, "durationMs", (int64_t)b->duration_ms);
    put_int(o, "numTasks", (int64_t)b->ntasks);
    if (with_tasks) {
        json_object *tasks = json_object_new_array();
        for (size_t i = 0; i < b->ntasks; i++) {
            const monitor_task_t *t = &b->tasks[i];
            json_object *to = json_object_new_object();
            put_int(to, "taskId", t->task_id);
            put_int(to, "attempt", t->attempt);
            put_str(to, "path", t->path);
            put_int(to, "start", (int64_t)t->start);
            put_int(to, "end", (int64_t)t->end);
            put_str(to, "executor", t->executor);
            put_str(to, "status", t->status);
            put_int(to, "rows", (int64_t)t->rows);
            put_int(to, "malformedRows", (int64_t)t->malformed);
            put_int(to, "bytes", (int64_t)t->bytes);
            put_int(to, "durationMs", (int64_t)t->duration_ms);
            json_object_array_add(tasks, to);
        }
        json_object_object_add(o, "tasks", tasks);
    }
    return o;
}

void monitor_batch(monitor_t *m, const monitor_batch_t *b)
{
    char *summary = to_string(batch_json(b, false));
    char *detail = to_string(batch_json(b, true));
    pthread_mutex_lock(&m->mu);
    batch_slot_t *slot = NULL;
    for (size_t i = 0; i < m->batches_n; i++) {
        batch_slot_t *s = &m->batches[(m->batches_head + i) % m->batches_cap];
        if (s->batch_id == b->batch_id)
            slot = s;
    }
    if (slot == NULL) {
        if (m->batches_n == m->batches_cap) {
            slot = &m->batches[m->batches_head];
            m->batches_head = (m->batches_head + 1) % m->batches_cap;
        } else {
            slot = &m->batches[(m->batches_head + m->batches_n) % m->batches_cap];
            m->batches_n++;
        }
    }
    free(slot->summary);
    free(slot->detail);
    slot->batch_id = b->batch_id;
    slot->summary = summary;
    slot->detail = detail;
    pthread_mutex_unlock(&m->mu);
}

void monitor_set_counters(monitor_t *m, const monitor_counters_t *c)
{
    pthread_mutex_lock(&m->mu);
    uint64_t lost = m->counters.executors_lost;
    m->counters = *c;
    m->counters.executors_lost = lost; /* counted here, from the events */
    pthread_mutex_unlock(&m->mu);
}

void monitor_set_backlog(monitor_t *m, uint64_t files, uint64_t bytes, int64_t oldest_age_ms)
{
    pthread_mutex_lock(&m->mu);
    m->backlog_files = files;
    m->backlog_bytes = bytes;
    m->backlog_age_ms = oldest_age_ms;
    pthread_mutex_unlock(&m->mu);
}

void monitor_alert(monitor_t *m, const char *alert_json)
{
    int64_t now = sp_wall_ms();
    json_object *o = event_head(m, MONITOR_ALERT, now);
    json_object *a = json_tokener_parse(alert_json);
    json_object_object_add(o, "alert", a);
    publish(m, MONITOR_ALERT, now, o);
}

void monitor_set_alerts(monitor_t *m, const char *alerts_json, unsigned firing)
{
    char *copy = sp_xstrdup(alerts_json);
    pthread_mutex_lock(&m->mu);
    free(m->alerts_json);
    m->alerts_json = copy;
    m->alerts_firing = firing;
    pthread_mutex_unlock(&m->mu);
}

/* ---- readers ----------------------------------------------------------------------- */

char *monitor_status_json(monitor_t *m)
{
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&m->mu);
    put_str(o, "message", m->message);
    json_object_object_add(o, "isDataAvailable", json_object_new_boolean(m->data_available));
    json_object_object_add(o, "isTriggerActive", json_object_new_boolean(m->trigger_active));
    put_str(o, "id", m->id);
    put_str(o, "runId", m->run_id);
    put_str(o, "name", m->name[0] ? m->name : NULL);
    pthread_mutex_unlock(&m->mu);
    return to_string(o);
}

char *monitor_progress_json(monitor_t *m, size_t last)
{
    sp_buf_t b = SP_BUF_INIT;
    sp_buf_putc(&b, '[');
    pthread_mutex_lock(&m->mu);
    size_t n = m->progress_n;
    size_t skip = last && last < n ? n - last : 0;
    for (size_t i = skip; i < n; i++) {
        const char *j = m->progress[(m->progress_head + i) % m->progress_cap];
        if (i > skip)
            sp_buf_putc(&b, ',');
        sp_buf_append(&b, j, strlen(j));
    }
    pthread_mutex_unlock(&m->mu);
    sp_buf_putc(&b, ']');
    return sp_buf_cstr(&b);
}

char *monitor_executors_json(monitor_t *m)
{
    pthread_mutex_lock(&m->mu);
    json_object *live = json_tokener_parse(m->executors_json);
    size_t nlost = json_object_array_length(m->lost);
    for (size_t i = 0; live && i < nlost; i++)
        json_object_array_add(live, json_object_get(json_object_array_get_idx(m->lost, i)));
    pthread_mutex_unlock(&m->mu);
    return live ? to_string(live) : sp_xstrdup("[]");
}

char *monitor_batches_json(monitor_t *m)
{
    sp_buf_t b = SP_BUF_INIT;
    sp_buf_putc(&b, '[');
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->batches_n; i++) {
        const batch_slot_t *s = &m->batches[(m->batches_head + m->batches_n - 1 - i) % m->batches_cap];
        if (i)
            sp_buf_putc(&b, ',');
        sp_buf_append(&b, s->summary, strlen(s->summary));
    }
    pthread_mutex_unlock(&m->mu);
    sp_buf_putc(&b, ']');
    return sp_buf_cstr(&b);
}

char *monitor_batch_json(monitor_t *m, int64_t batch_id)
{
    char *out = NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->batches_n && out == NULL; i++) {
        const batch_slot_t *s = &m->batches[(m->batches_head + i) % m->batches_cap];
        if (s->batch_id == batch_id)
            out = sp_xstrdup(s->detail);
    }
    pthread_mutex_unlock(&m->mu);
    return out;
}

char *monitor_alerts_json(monitor_t *m)
{
    pthread_mutex_lock(&m->mu);
    char *out = sp_xstrdup(m->alerts_json);
    pthread_mutex_unlock(&m->mu);
    return out;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(sp_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sp_buf_putc(b, '\\');
        if (*v == '\n') {
            sp_buf_append(b, "\\n", 2);
            continue;
        }
        sp_buf_putc(b, *v);
    }
}

static void metric(sp_buf_t *b, const char *labels, const char *name, const char *type, const char *help, double v)
{
    char num[40];
    if (isnan(v))
        snprintf(num, sizeof num, "NaN");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        snprintf(num, sizeof num, "%lld", (long long)v);
    else
        sp_format_double(v, num, sizeof num);
    sp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %s\n", name, help, name, type, name, labels, num);
}

char *monitor_metrics_text(monitor_t *m)
{
    sp_buf_t b = SP_BUF_INIT, labels = SP_BUF_INIT;
    pthread_mutex_lock(&m->mu);
    sp_buf_append(&labels, "query=\"", 7);
    label_value(&labels, m->name[0] ? m->name : m->id);
    sp_buf_append(&labels, "\",query_id=\"", 12);
    label_value(&labels, m->id);
    sp_buf_putc(&labels, '"');
    const char *l = sp_buf_cstr(&labels);
    const progress_t *p = &m->last;
    bool h = m->have_last;
    metric(&b, l, "spate_up", "gauge", "1 while the driver runs", 1);
    metric(&b, l, "spate_input_rows_per_second", "gauge",
           "Rows per second arriving, over the last trigger (Spark's inputRowsPerSecond)",
           h && isfinite(p->input_rows_per_second) ? p->input_rows_per_second : 0);
    metric(&b, l, "spate_processed_rows_per_second", "gauge",
           "Rows per second processed by the last trigger (Spark's processedRowsPerSecond)",
           h && isfinite(p->processed_rows_per_second) ? p->processed_rows_per_second : 0);
    metric(&b, l, "spate_batch_duration_seconds", "gauge", "Duration of the last batch",
           h ? (double)p->duration_ms.trigger_execution / 1000.0 : 0);
    metric(&b, l, "spate_last_batch_id", "gauge", "Id of the last committed batch", h ? (double)p->batch_id : -1);
    metric(&b, l, "spate_batches_total", "counter", "Batches committed by this run", (double)m->counters.batches);
    metric(&b, l, "spate_input_rows_total", "counter", "Input rows processed by this run",
           (double)m->counters.input_rows);
    metric(&b, l, "spate_malformed_rows_total", "counter", "Malformed rows met by this run",
           (double)m->counters.malformed_rows);
    metric(&b, l, "spate_backlog_files", "gauge", "Files in the source not processed yet", (double)m->backlog_files);
    metric(&b, l, "spate_backlog_bytes", "gauge", "Bytes of the files not processed yet", (double)m->backlog_bytes);
    metric(&b, l, "spate_backlog_oldest_age_seconds", "gauge", "Age of the oldest file not processed yet",
           m->backlog_age_ms > 0 ? (double)m->backlog_age_ms / 1000.0 : 0);
    metric(&b, l, "spate_state_rows", "gauge", "Groups in state", h ? (double)p->state_rows_total : 0);
    metric(&b, l, "spate_executors_alive", "gauge", "Registered executors", (double)m->executors_alive);
    metric(&b, l, "spate_executors_lost_total", "counter", "Executors lost by this run",
           (double)m->counters.executors_lost);
    metric(&b, l, "spate_task_failures_total", "counter", "Task attempts that failed in this run",
           (double)m->counters.task_failures);
    metric(&b, l, "spate_alerts_firing", "gauge", "Alert rules firing now", (double)m->alerts_firing);
    pthread_mutex_unlock(&m->mu);
    sp_buf_free(&labels);
    return sp_buf_cstr(&b);
}
