/* driver/events.h -- the query's events (monitor.h) published on a ZeroMQ
 * PUB socket (--events ENDPOINT), so any process can listen without linking
 * spate: subscribe to everything, or to a prefix such as "Query".
 *
 * Each event is one message of two frames:
 *   1. the event name, "QueryStartedEvent", "QueryProgressEvent", ...
 *   2. the event as one line of JSON, as monitor.h describes it
 *
 * PUB semantics: a subscriber that is not connected when an event goes out
 * never sees it, and one that cannot keep up loses events past ZeroMQ's
 * high-water mark; events are not kept for replay (read the recent progress
 * from /api/progress or the checkpoint). To spare the usual race at start,
 * the first event waits for the listeners that were waiting for the driver
 * (so a listener started first gets QueryStartedEvent): up to
 * EVENTS_JOIN_GRACE_MS after the bind, or a quarter second after the first
 * subscriber came. The wait is on the publisher's own thread and never
 * delays the query.
 *
 * Any endpoint the user gives is bound, but there is no authentication or
 * encryption: the events carry the query's name, figures, file paths,
 * executor hosts and error messages. Keep it on loopback (the example is
 * tcp://127.0.0.1:4041) or a network you trust. */
#ifndef SP_EVENTS_H
#define SP_EVENTS_H

#include "monitor.h"
#include "sp_err.h"

#define EVENTS_JOIN_GRACE_MS 1000

typedef struct events events_t;

/* Bind a PUB socket at endpoint ("tcp://127.0.0.1:4041"; "tcp://127.0.0.1:*"
 * picks a free port) and publish every event m publishes from now on, on
 * a listener thread (monitor_add_listener) that owns the socket. SP_EINVAL
 * for an endpoint ZeroMQ does not understand, SP_EIO when it cannot bind
 * (the message names the endpoint and the reason). */
int events_start(monitor_t *m, const char *endpoint, events_t **out, sp_err_t *err);

/* The endpoint as bound, with the real port: "tcp://127.0.0.1:4041"
 * (borrowed, valid until events_stop). */
const char *events_endpoint(const events_t *e);

/* Stop publishing and free *e; sets it to NULL, safe on NULL. Call it after
 * monitor_destroy, which delivers every event (QueryTerminatedEvent too)
 * to the socket first; called earlier, later events are dropped. Waits up
 * to a second for queued messages to reach connected subscribers. */
void events_stop(events_t **e);

#endif
