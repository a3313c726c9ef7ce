/* driver/progress.c -- serialises a progress_t into Spark's
 * StreamingQueryProgress JSON with json-c. Owns nothing. */
#include "progress.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sp_util.h"

static void put_int(json_object *o, const char *k, int64_t v) { json_object_object_add(o, k, json_object_new_int64(v)); }

static void put_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* A rate, left out when it is not a finite number (as Spark omits NaN). */
static void put_rate(json_object *o, const char *k, double v)
{
    if (!isfinite(v))
        return;
    char text[40];
    sp_format_double(v, text, sizeof text);
    json_object_object_add(o, k, json_object_new_double_s(v, text));
}

/* {"logOffset": N} or null, as Spark's file source offsets. */
static json_object *offset(int64_t v)
{
    if (v < 0)
        return NULL;
    json_object *o = json_object_new_object();
    put_int(o, "logOffset", v);
    return o;
}

static void put_metric(json_object *o, const char *k, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    json_object_object_add(o, k, json_object_new_string(text));
}

char *progress_to_json(const progress_t *p)
{
    json_object *root = json_object_new_object();
    char ts[40];
    sp_format_iso8601(p->timestamp_ms, ts, sizeof ts);
    put_str(root, "id", p->id);
    put_str(root, "runId", p->run_id);
    put_str(root, "name", p->name && *p->name ? p->name : NULL);
    put_str(root, "timestamp", ts);
    put_int(root, "batchId", p->batch_id);
    put_int(root, "batchDuration", (int64_t)p->duration_ms.trigger_execution);
    put_int(root, "numInputRows", (int64_t)p->num_input_rows);
    put_rate(root, "inputRowsPerSecond", p->input_rows_per_second);
    put_rate(root, "processedRowsPerSecond", p->processed_rows_per_second);

    json_object *d = json_object_new_object();
    if (p->has_data) {
        put_int(d, "addBatch", (int64_t)p->duration_ms.add_batch);
        put_int(d, "commitOffsets", (int64_t)p->duration_ms.commit_offsets);
        put_int(d, "getBatch", (int64_t)p->duration_ms.get_batch);
    }
    put_int(d, "latestOffset", (int64_t)p->duration_ms.latest_offset);
    if (p->has_data)
        put_int(d, "queryPlanning", (int64_t)p->duration_ms.query_planning);
    put_int(d, "triggerExecution", (int64_t)p->duration_ms.trigger_execution);
    if (p->has_data)
        put_int(d, "walCommit", (int64_t)p->duration_ms.wal_commit);
    json_object_object_add(root, "durationMs", d);

    json_object *ops = json_object_new_array();
    json_object *op = json_object_new_object();
    put_str(op, "operatorName", "stateStoreSave");
    put_int(op, "numRowsTotal", (int64_t)p->state_rows_total);
    put_int(op, "numRowsUpdated", (int64_t)p->state_rows_updated);
    put_int(op, "allUpdatesTimeMs", (int64_t)p->state_commit_ms);
    put_int(op, "numRowsRemoved", 0);
    put_int(op, "allRemovalsTimeMs", 0);
    put_int(op, "commitTimeMs", (int64_t)p->state_commit_ms);
    put_int(op, "memoryUsedBytes", (int64_t)p->state_memory_bytes);
    put_int(op, "numRowsDroppedByWatermark", 0);
    put_int(op, "numShufflePartitions", p->key_groups);
    put_int(op, "numStateStoreInstances", 1);
    json_object_object_add(op, "customMetrics", json_object_new_object());
    json_object_array_add(ops, op);
    json_object_object_add(root, "stateOperators", ops);

    json_object *sources = json_object_new_array();
    json_object *src = json_object_new_object();
    put_str(src, "description", p->source_description);
    json_object_object_add(src, "startOffset", offset(p->start_offset));
    json_object_object_add(src, "endOffset", offset(p->end_offset));
    json_object_object_add(src, "latestOffset", offset(p->latest_offset));
    put_int(src, "numInputRows", (int64_t)p->num_input_rows);
    put_rate(src, "inputRowsPerSecond", p->input_rows_per_second);
    put_rate(src, "processedRowsPerSecond", p->processed_rows_per_second);
    json_object *m = json_object_new_object();
    put_metric(m, "backlogFiles", (int64_t)p->backlog_files);
    put_metric(m, "backlogBytes", (int64_t)p->backlog_bytes);
    if (p->backlog_oldest_age_ms >= 0)
        put_metric(m, "oldestBacklogAgeMs", p->backlog_oldest_age_ms);
    json_object_object_add(src, "metrics", m);
    json_object_array_add(sources, src);
    json_object_object_add(root, "sources", sources);

    json_object *sink = json_object_new_object();
    put_str(sink, "description", p->sink_description);
    put_int(sink, "numOutputRows", p->sink_output_rows);
    json_object_object_add(root, "sink", sink);

    put_int(root, "numMalformedRows", (int64_t)p->num_malformed_rows);
    json_object *execs = json_object_new_array();
    for (size_t i = 0; i < p->nexecs; i++) {
        json_object *e = json_object_new_object();
        put_str(e, "id", p->execs[i].id);
        put_int(e, "tasks", p->execs[i].tasks);
        put_int(e, "rows", (int64_t)p->execs[i].rows);
        put_int(e, "bytes", (int64_t)p->execs[i].bytes);
        put_int(e, "taskTimeMs", (int64_t)p->execs[i].task_ms);
        json_object_array_add(execs, e);
    }
    json_object_object_add(root, "executors", execs);

    char *out = sp_xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return out;
}
