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
    /* CURVE (proto/auth.h): both or neither. curve_secret is this
     * executor's NAME.key (its public key must be authorised at the
     * driver); driver_key is the driver's NAME.pub. With them the executor
     * talks only to the holder of that key; a driver with another key never
     * answers, and the executor keeps trying (and says so after 5 s). */
    const char *curve_secret;
    const char *driver_key;
} executor_opts_t;

/* Run until drained (returns 0) or a fatal error (returns SP_E* with a
 * message: the driver refused us, e.g. for a protocol version mismatch, or
 * the driver is gone with exit_with_driver set; SP_EINVAL for bad key
 * files, or only one of curve_secret and driver_key). Installs SIGTERM/SIGINT
 * handlers for the life of the call. */
int executor_run(const executor_opts_t *opts, sp_err_t *err);

#endif
