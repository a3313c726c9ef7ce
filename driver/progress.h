/* driver/progress.h -- a trigger's progress report in the shape of Spark's
 * StreamingQueryProgress (field names and nesting as Spark writes them, so
 * dashboards and habits carry over), plus what Spark lacks: the file
 * source's backlog, malformed rows and per-executor task figures.
 *
 *   {"id", "runId", "name", "timestamp", "batchId", "batchDuration",
 *    "numInputRows", "inputRowsPerSecond", "processedRowsPerSecond",
 *    "durationMs": {"addBatch", "commitOffsets", "getBatch", "latestOffset",
 *                   "queryPlanning", "triggerExecution", "walCommit"},
 *    "stateOperators": [{"operatorName", "numRowsTotal", "numRowsUpdated",
 *        "allUpdatesTimeMs", "numRowsRemoved", "allRemovalsTimeMs",
 *        "commitTimeMs", "memoryUsedBytes", "numRowsDroppedByWatermark",
 *        "numShufflePartitions", "numStateStoreInstances", "customMetrics"}],
 *    "sources": [{"description", "startOffset", "endOffset", "latestOffset",
 *        "numInputRows", "inputRowsPerSecond", "processedRowsPerSecond",
 *        "metrics": {"backlogFiles", "backlogBytes", "oldestBacklogAgeMs"}}],
 *    "sink": {"description", "numOutputRows"},
 *    "numMalformedRows", "executors": [{"id", "tasks", "rows", "bytes",
 *        "taskTimeMs"}]}
 *
 * A trigger that found no data reports numInputRows 0 and the last batch's
 * id, as Spark does. As in Spark, metric map values are strings and
 * non-finite rates are left out. */
#ifndef SP_PROGRESS_H
#define SP_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct progress_exec {
    const char *id;
    uint32_t tasks;
    uint64_t rows, bytes, task_ms;
} progress_exec_t;

typedef struct progress {
    const char *id, *run_id, *name;
    int64_t timestamp_ms;          /* wall clock at the trigger's start */
    int64_t batch_id;
    bool has_data;                 /* false: a trigger that found nothing */
    uint64_t num_input_rows;
    uint64_t num_malformed_rows;
    double input_rows_per_second;  /* rows / time since the previous trigger */
    double processed_rows_per_second; /* rows / this trigger's duration */
    struct {
        uint64_t latest_offset, wal_commit, query_planning, get_batch, add_batch,
            commit_offsets, trigger_execution;
    } duration_ms;
    uint64_t state_rows_total, state_rows_updated, state_memory_bytes, state_commit_ms;
    uint32_t key_groups;
    const char *source_description;
    int64_t start_offset, end_offset, latest_offset; /* -1: none */
    uint64_t backlog_files, backlog_bytes;
    int64_t backlog_oldest_age_ms;  /* -1: no backlog */
    const char *sink_description;
    int64_t sink_output_rows;       /* -1: unknown */
    const progress_exec_t *execs;
    size_t nexecs;
} progress_t;

/* The report as one line of JSON (malloc'd, NUL-terminated). */
char *progress_to_json(const progress_t *p);

#endif
