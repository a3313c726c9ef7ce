/* tests/driver/webhook_receiver.h -- a real HTTP receiver for tests of
 * alert actions (tests/driver/alerts_test.c, tests/e2e/alerts_test.c):
 * libmicrohttpd on a free loopback port, recording every request. */
#ifndef SP_WEBHOOK_RECEIVER_H
#define SP_WEBHOOK_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct wh_request {
    char *method, *path, *content_type, *body;   /* malloc'd */
} wh_request_t;

typedef struct webhook webhook_t;

/* Listen on 127.0.0.1 (a free port); every request is answered with
 * status. Fails the test when it cannot start. */
webhook_t *wh_start(unsigned status);

/* "http://127.0.0.1:PORT/hook" (borrowed). */
const char *wh_url(const webhook_t *w);

/* Requests received so far. */
size_t wh_count(webhook_t *w);

/* Wait (bounded) until at least n requests came; true when they did. */
bool wh_wait(webhook_t *w, size_t n, int timeout_ms);

/* A copy of request i (free with wh_request_free); fails the test when
 * there is none. */
wh_request_t wh_get(webhook_t *w, size_t i);
void wh_request_free(wh_request_t *r);

/* Stop, free *w and set it to NULL; safe on NULL. */
void wh_stop(webhook_t **w);

#endif
