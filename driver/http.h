/* driver/http.h -- the driver's HTTP server (libmicrohttpd): the JSON APIs,
 * Prometheus metrics and the web UI of a running query. Loopback by default
 * (--http 127.0.0.1:4040, Spark's UI port).
 *
 *   GET /                     the web UI (one page, no external resources)
 *   GET /api/status           monitor_status_json
 *   GET /api/progress?last=N  monitor_progress_json
 *   GET /api/executors        monitor_executors_json
 *   GET /api/batches          monitor_batches_json
 *   GET /api/batches/ID       monitor_batch_json (404 when unknown)
 *   GET /api/alerts           monitor_alerts_json
 *   GET /api/result           the memory sink's table: a JSON array of rows
 *                             as `spate result --format json` prints them
 *   GET /metrics              monitor_metrics_text
 *
 * Anything else is 404; a method other than GET or HEAD is 405. */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include "monitor.h"
#include "sp_err.h"

typedef struct http_server http_server_t;

/* Produce the current result table as a JSON array (malloc'd), or NULL
 * with err set. Called on the server's threads. */
typedef char *(*http_result_fn)(void *ctx, sp_err_t *err);

/* Listen on "HOST:PORT" (PORT 0: any free port). On success *out serves
 * until http_stop. SP_EINVAL for a bad address, SP_EIO when it cannot
 * listen (the message names the address and the reason). */
int http_start(const char *listen, monitor_t *m, http_result_fn result, void *result_ctx,
               http_server_t **out, sp_err_t *err);

/* The address it listens on, "127.0.0.1:4040" (borrowed). */
const char *http_address(const http_server_t *h);

/* Stop serving and free *h; safe on NULL. */
void http_stop(http_server_t **h);

#endif
