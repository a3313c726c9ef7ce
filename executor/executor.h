/* executor/executor.h -- the executor process: registers with a driver over
 * ZeroMQ, runs the tasks it is sent on `slots` worker threads, ships partial
 * aggregates back, and heartbeats. SIGTERM or SIGINT drains it: it takes no
 * new task, finishes the running ones, says BYE and returns 0. */
#ifndef SP_EXECUTOR_H
#define SP_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_err.h"

typedef struct executor_opts {
    const char *driver;          /* endpoint, e.g. "tcp://driver:7077" */
    const char *id;              /* executor id; NULL: "<host>-<pid>-<random>" */
    uint32_t slots;              /* worker threads (tasks at once); >= 1 */
    uint32_t heartbeat_ms;       /* heartbeat period; 0: 500 */
    uint32_t driver_timeout_ms;  /* silence after which the driver counts as
                                    gone; 0: 10000 */
    bool exit_with_driver;       /* local mode: exit (status 1) when the
                                    driver is gone, instead of waiting for
                                    it to come back */
} executor_opts_t;

/* Run until drained (returns 0) or a fatal error (returns SP_E* with a
 * message: the driver refused us, e.g. for a protocol version mismatch, or
 * the driver is gone with exit_with_driver set). Installs SIGTERM/SIGINT
 * handlers for the life of the call. */
int executor_run(const executor_opts_t *opts, sp_err_t *err);

#endif
