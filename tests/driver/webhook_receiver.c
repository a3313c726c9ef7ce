/* tests/driver/webhook_receiver.c -- the receiver behind
 * webhook_receiver.h: libmicrohttpd's own thread takes each request whole
 * and appends it to a list under a mutex. */
#include "webhook_receiver.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WH_MAX 256

struct webhook {
    struct MHD_Daemon *d;
    unsigned status;
    char url[64];
    pthread_mutex_t mu;
    wh_request_t req[WH_MAX];
    size_t n;
};

typedef struct upload {
    char *data;
    size_t len;
} upload_t;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    webhook_t *w = cls;
    upload_t *u = *con_cls;
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        u->data = realloc(u->data, u->len + *upload_size + 1);
        memcpy(u->data + u->len, upload_data, *upload_size);
        u->len += *upload_size;
        u->data[u->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&w->mu);
    if (w->n < WH_MAX) {
        wh_request_t *r = &w->req[w->n++];
        r->method = strdup(method);
        r->path = strdup(url);
        r->content_type = dup_or_null(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
        r->body = u->data ? u->data : strdup("");
        u->data = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    static const char ok[] = "{}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, w->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    upload_t *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

webhook_t *wh_start(unsigned status)
{
    webhook_t *w = calloc(1, sizeof *w);
    cr_assert(w);
    w->status = status;
    pthread_mutex_init(&w->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    w->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, w, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
                            MHD_OPTION_END);
    cr_assert(w->d, "the webhook receiver does not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info && info->port, "the webhook receiver has no port");
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%u/hook", (unsigned)info->port);
    return w;
}

const char *wh_url(const webhook_t *w) { return w->url; }

size_t wh_count(webhook_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

bool wh_wait(webhook_t *w, size_t n, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        if (wh_count(w) >= n)
            return true;
        if (waited >= timeout_ms)
            return false;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

wh_request_t wh_get(webhook_t *w, size_t i)
{
    pthread_mutex_lock(&w->mu);
    cr_assert(i < w->n, "the receiver has %zu request(s), not %zu", w->n, i + 1);
    wh_request_t r = {strdup(w->req[i].method), strdup(w->req[i].path), dup_or_null(w->req[i].content_type),
                      strdup(w->req[i].body)};
    pthread_mutex_unlock(&w->mu);
    return r;
}

void wh_request_free(wh_request_t *r)
{
    free(r->method);
    free(r->path);
    free(r->content_type);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void wh_stop(webhook_t **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    webhook_t *w = *wp;
    *wp = NULL;
    MHD_stop_daemon(w->d);
    for (size_t i = 0; i < w->n; i++)
        wh_request_free(&w->req[i]);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
