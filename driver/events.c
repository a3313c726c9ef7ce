/* driver/events.c -- publishes the monitor's events on a ZeroMQ socket as
 * [event name, event JSON]. Owns its ZeroMQ context and socket, used by the
 * monitor listener's thread under a mutex; never touches the checkpoint or
 * the driver's own sockets.
 *
 * The socket is an XPUB (a PUB that also hands up subscriptions), only so
 * the first event can wait for a first subscriber (events.h). */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "sp_log.h"
#include "sp_util.h"

#define EVENTS_LINGER_MS 1000     /* how long the last events may take to go out */
#define EVENTS_JOIN_SETTLE_MS 250 /* after a first subscriber, for the others waiting */

struct events {
    pthread_mutex_t mu;
    void *zctx, *sock;   /* NULL once closed */
    int refs;            /* the owner (events_stop) and the listener (on_close) */
    uint64_t first_sub_ms; /* monotonic time of the first subscription; 0: none yet */
    bool waited;         /* the first event waited for subscribers */
    uint64_t bound_ms;   /* monotonic */
    char endpoint[256];
};

/* Read the subscription messages XPUB queued (each one frame, first byte 1
 * for subscribe, 0 for unsubscribe). */
static void drain_subscriptions_locked(events_t *e)
{
    unsigned char buf[8];
    int n;
    while ((n = zmq_recv(e->sock, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
        if (n >= 1 && buf[0] == 1 && e->first_sub_ms == 0)
            e->first_sub_ms = sp_mono_ms();
    }
}

/* Right after the bind, give subscribers that were waiting for us the time
 * to connect (ZeroMQ reconnects every 100 ms by default) before the first
 * event goes out: until the grace ends, or shortly after the first one
 * came (others waiting connect within one reconnect interval of it). */
static void await_subscribers_locked(events_t *e)
{
    uint64_t deadline = e->bound_ms + EVENTS_JOIN_GRACE_MS;
    for (;;) {
        drain_subscriptions_locked(e);
        if (e->first_sub_ms && e->first_sub_ms + EVENTS_JOIN_SETTLE_MS < deadline)
            deadline = e->first_sub_ms + EVENTS_JOIN_SETTLE_MS;
        uint64_t now = sp_mono_ms();
        if (now >= deadline)
            break;
        zmq_pollitem_t item = {e->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)(deadline - now)) < 0 && zmq_errno() != EINTR)
            break;
    }
    e->waited = true;
}

static int send_frame(void *sock, const char *s, int flags)
{
    for (;;) {
        if (zmq_send(sock, s, strlen(s), flags) >= 0)
            return 0;
        if (zmq_errno() != EINTR)
            return -1;
    }
}

static void on_event(void *ctx, const monitor_event_t *ev)
{
    events_t *e = ctx;
    pthread_mutex_lock(&e->mu);
    if (e->sock != NULL) {
        if (!e->waited)
            await_subscribers_locked(e);
        else
            drain_subscriptions_locked(e);
        /* PUB never blocks: with no subscriber, or a full queue, it drops. */
        if (send_frame(e->sock, monitor_event_name(ev->kind), ZMQ_SNDMORE) != 0 ||
            send_frame(e->sock, ev->json, 0) != 0)
            SP_WARN("events", "cannot publish %s on %s: %s", monitor_event_name(ev->kind), e->endpoint,
                    zmq_strerror(zmq_errno()));
    }
    pthread_mutex_unlock(&e->mu);
}

static void close_locked(events_t *e)
{
    if (e->sock == NULL)
        return;
    zmq_close(e->sock);
    zmq_ctx_term(e->zctx); /* waits up to the linger for queued events */
    e->sock = NULL;
    e->zctx = NULL;
}

/* Drop one reference; the last frees e. */
static void release(events_t *e)
{
    pthread_mutex_lock(&e->mu);
    close_locked(e);
    int refs = --e->refs;
    pthread_mutex_unlock(&e->mu);
    if (refs == 0) {
        pthread_mutex_destroy(&e->mu);
        free(e);
    }
}

static void on_close(void *ctx) { release(ctx); }

int events_start(monitor_t *m, const char *endpoint, events_t **out, sp_err_t *err)
{
    *out = NULL;
    events_t *e = sp_xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    e->zctx = zmq_ctx_new();
    e->sock = e->zctx ? zmq_socket(e->zctx, ZMQ_XPUB) : NULL;
    if (e->sock == NULL) {
        int rc = sp_err_set(err, SP_EIO, "cannot publish events: %s", zmq_strerror(zmq_errno()));
        if (e->zctx)
            zmq_ctx_term(e->zctx);
        pthread_mutex_destroy(&e->mu);
        free(e);
        return rc;
    }
    int linger = EVENTS_LINGER_MS, one = 1;
    zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (strchr(endpoint, '[') != NULL)
        zmq_setsockopt(e->sock, ZMQ_IPV6, &one, sizeof one);
    if (zmq_bind(e->sock, endpoint) != 0) {
        int zerr = zmq_errno();
        int rc = (zerr == EINVAL || zerr == EPROTONOSUPPORT || zerr == ENOCOMPATPROTO)
                     ? sp_err_set(err, SP_EINVAL, "bad events endpoint '%s': %s (expected e.g. tcp://127.0.0.1:4041)",
                                  endpoint, zmq_strerror(zerr))
                     : sp_err_set(err, SP_EIO, "cannot publish events on %s: %s", endpoint, zmq_strerror(zerr));
        linger = 0;
        zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(e->sock);
        zmq_ctx_term(e->zctx);
        pthread_mutex_destroy(&e->mu);
        free(e);
        return rc;
    }
    size_t len = sizeof e->endpoint;
    if (zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->endpoint, &len) != 0)
        snprintf(e->endpoint, sizeof e->endpoint, "%s", endpoint);
    e->bound_ms = sp_mono_ms();
    e->refs = 2;
    /* From here the socket belongs to the listener's thread (the mutex
     * hands it over; ZeroMQ allows that with a full barrier). */
    monitor_listener_t l = {
        .ctx = e,
        .on_query_started = on_event,
        .on_query_progress = on_event,
        .on_query_idle = on_event,
        .on_query_terminated = on_event,
        .on_other = on_event,
        .on_close = on_close,
    };
    monitor_add_listener(m, &l);
    *out = e;
    return 0;
}

const char *events_endpoint(const events_t *e) { return e->endpoint; }

void events_stop(events_t **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    events_t *e = *ep;
    *ep = NULL;
    release(e);
}
