/* driver/http.c -- the driver's HTTP server: routes GET requests to the
 * monitor's snapshots (JSON), its Prometheus text and the embedded web UI,
 * on libmicrohttpd's threads (one per connection, a bounded number of them,
 * each with an idle timeout). On loopback it answers only requests for a
 * loopback host name (403 otherwise: no DNS rebinding). Owns the listening
 * socket and the daemon; never writes to the monitor and never touches the
 * checkpoint itself (the result table comes from the caller's
 * http_result_fn). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sp_log.h"
#include "sp_util.h"

/* The web UI (driver/ui/index.html), turned into a C array at build time
 * by driver/ui/embed.cmake. */
extern const unsigned char http_ui_index[];
extern const size_t http_ui_index_len;

#define HTTP_MAX_CONNECTIONS 64u   /* one thread each */
#define HTTP_IDLE_TIMEOUT_S 10u    /* a connection silent this long is closed */
#define HTTP_BACKLOG 64
#define HTTP_LAST_MAX 1000000      /* ?last=N: larger is refused as a typo */

#define TYPE_JSON "application/json"
#define TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define TYPE_HTML "text/html; charset=utf-8"

/* The page may talk to this server only: no external script, style, font,
 * image or connection, whatever ends up in the data it shows. */
#define UI_CSP                                                                                   \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "               \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "          \
    "frame-ancestors 'none'"

struct http_server {
    struct MHD_Daemon *daemon;
    bool loopback;       /* bound to a loopback address: check Host (below) */
    monitor_t *m;
    http_result_fn result;
    void *result_ctx;
    char address[INET6_ADDRSTRLEN + 8]; /* "[v6]:65535" */
};

/* ---- the listening address ------------------------------------------------ */

/* "HOST:PORT" with HOST an IPv4 address or a bracketed IPv6 address and
 * PORT 0..65535 in decimal -> a socket address. Nothing else is accepted:
 * no names (the server must not depend on a resolver), no missing parts. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *sslen, sp_err_t *err)
{
    static const char hint[] = "expected HOST:PORT with an IPv4 address or a bracketed IPv6 address, "
                               "as 127.0.0.1:4040 or [::1]:4040";
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    bool v6 = false;
    if (text == NULL || *text == '\0')
        return sp_err_set(err, SP_EINVAL, "bad HTTP address '': %s", hint);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return sp_err_set(err, SP_EINVAL, "bad HTTP address '%s': %s", text, hint);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
        v6 = true;
    } else {
        colon = strchr(text, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL || (size_t)(colon - text) >= sizeof host)
            return sp_err_set(err, SP_EINVAL, "bad HTTP address '%s': %s", text, hint);
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    const char *p = colon + 1;
    size_t ndigits = strspn(p, "0123456789");
    if (ndigits == 0 || ndigits > 5 || p[ndigits] != '\0' || atol(p) > 65535)
        return sp_err_set(err, SP_EINVAL, "bad HTTP address '%s': the port must be a number from 0 to 65535",
                          text);
    uint16_t port = (uint16_t)atol(p);
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return sp_err_set(err, SP_EINVAL, "bad HTTP address '%s': '%s' is not an IPv6 address", text, host);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        *sslen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return sp_err_set(err, SP_EINVAL, "bad HTTP address '%s': '%s' is not an IPv4 address%s", text,
                              host, host[0] ? "" : " (give one, e.g. 127.0.0.1)");
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        *sslen = sizeof *a;
    }
    return 0;
}

/* "127.0.0.1:4040" or "[::1]:4040" for a bound socket. */
static void format_address(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, outlen, "%s:%u", host, ntohs(a->sin_port));
    }
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* A listening socket (close-on-exec: local executors must not inherit it)
 * bound to the address, or -1 with err naming the address and the reason. */
static int listen_on(const char *text, char *bound, size_t boundlen, bool *loopback, sp_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = parse_listen(text, &ss, &sslen, err);
    if (rc != 0)
        return rc;
    *loopback = is_loopback(&ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sp_err_set(err, SP_EIO, "cannot listen on %s: %s", text, strerror(errno));
    int one = 1;
    /* Lets a restarted driver bind while old connections sit in TIME_WAIT;
     * on Linux it never lets two servers share the port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, HTTP_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return sp_err_set(err, SP_EIO, "cannot listen on %s: %s", text, strerror(e));
    }
    sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
        format_address(&ss, bound, boundlen);
    else
        snprintf(bound, boundlen, "%s", text);
    return fd;
}

/* ---- responses --------------------------------------------------------------- */

/* Queue body (malloc'd; taken) with the status and content type. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* {"error": message, "status": N}, as every failed API call answers. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    json_object_object_add(o, "status", json_object_new_int((int)status));
    char *body = sp_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return reply(c, status, TYPE_JSON, body);
}

static enum MHD_Result reply_ui(struct MHD_Connection *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(http_ui_index_len, (void *)http_ui_index, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TYPE_HTML);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- routes --------------------------------------------------------------------- */

/* A decimal number of at most 18 digits (no sign, no spaces) -> *out. */
static bool parse_count(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static enum MHD_Result route_progress(http_server_t *h, struct MHD_Connection *c)
{
    const char *v = NULL;
    size_t vlen = 0;
    int64_t last = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "last", 4, &v, &vlen) == MHD_YES) {
        if (v == NULL || !parse_count(v, vlen, &last) || last > HTTP_LAST_MAX)
            return reply_error(c, MHD_HTTP_BAD_REQUEST,
                               "last must be a whole number from 0 (all kept) to %d, got '%.64s'", HTTP_LAST_MAX,
                               v ? v : "");
    }
    return reply(c, MHD_HTTP_OK, TYPE_JSON, monitor_progress_json(h->m, (size_t)last));
}

static enum MHD_Result route_batch(http_server_t *h, struct MHD_Connection *c, const char *id_text)
{
    int64_t id = 0;
    if (!parse_count(id_text, strlen(id_text), &id))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "a batch id is a whole number, got '%.64s'", id_text);
    char *json = monitor_batch_json(h->m, id);
    if (json == NULL)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "batch %lld is not among the recent batches", (long long)id);
    return reply(c, MHD_HTTP_OK, TYPE_JSON, json);
}

static enum MHD_Result route_result(http_server_t *h, struct MHD_Connection *c)
{
    if (h->result == NULL)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "this query has no memory sink, so no result table");
    sp_err_t err;
    sp_err_clear(&err);
    char *json = h->result(h->result_ctx, &err);
    if (json == NULL)
        return reply_error(c, err.rc == SP_ENOTFOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "cannot read the result table: %s", sp_err_text(&err, err.rc ? err.rc : SP_EIO));
    return reply(c, MHD_HTTP_OK, TYPE_JSON, json);
}

static enum MHD_Result route(http_server_t *h, struct MHD_Connection *c, const char *url)
{
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return reply_ui(c);
    if (strcmp(url, "/metrics") == 0)
        return reply(c, MHD_HTTP_OK, TYPE_METRICS, monitor_metrics_text(h->m));
    if (strcmp(url, "/api/status") == 0)
        return reply(c, MHD_HTTP_OK, TYPE_JSON, monitor_status_json(h->m));
    if (strcmp(url, "/api/progress") == 0)
        return route_progress(h, c);
    if (strcmp(url, "/api/executors") == 0)
        return reply(c, MHD_HTTP_OK, TYPE_JSON, monitor_executors_json(h->m));
    if (strcmp(url, "/api/batches") == 0)
        return reply(c, MHD_HTTP_OK, TYPE_JSON, monitor_batches_json(h->m));
    if (strncmp(url, "/api/batches/", 13) == 0)
        return route_batch(h, c, url + 13);
    if (strcmp(url, "/api/alerts") == 0)
        return reply(c, MHD_HTTP_OK, TYPE_JSON, monitor_alerts_json(h->m));
    if (strcmp(url, "/api/result") == 0)
        return route_result(h, c);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "no such page: %.200s", url);
}

/* Is the Host header a loopback name or address ("localhost:4040",
 * "127.0.0.1:4040", "[::1]:4040")? A server bound to loopback answers only
 * those, so that a web page from elsewhere cannot read it through DNS
 * rebinding (its requests carry the page's own host name). */
static bool host_is_loopback(const char *host)
{
    char name[256];
    size_t len;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        host++;
        len = (size_t)(close - host);
    } else {
        const char *colon = strchr(host, ':');
        len = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (len == 0 || len >= sizeof name)
        return false;
    memcpy(name, host, len);
    name[len] = '\0';
    if (strcasecmp(name, "localhost") == 0 ||
        (len > 10 && strcasecmp(name + len - 10, ".localhost") == 0))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* MHD's access handler. Every route answers at the first call, before any
 * request body is read: nothing here takes a body (MHD then closes a
 * connection whose body was left unread). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    http_server_t *h = cls;
    SP_DEBUG("http", "%s %s", method, url);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method %.32s is not allowed: use GET or HEAD",
                           method);
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (h->loopback && host != NULL && !host_is_loopback(host))
        return reply_error(c, MHD_HTTP_FORBIDDEN,
                           "this server listens on loopback and answers requests for localhost or a loopback "
                           "address only, not for '%.100s'",
                           host);
    return route(h, c, url);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    SP_DEBUG("http", "%s", msg); /* MHD reports clients' mistakes here too: not ours to warn about */
}

/* ---- lifecycle -------------------------------------------------------------------- */

int http_start(const char *where, monitor_t *m, http_result_fn result, void *result_ctx, http_server_t **out,
               sp_err_t *err)
{
    *out = NULL;
    http_server_t *h = sp_xcalloc(1, sizeof *h);
    int fd = listen_on(where, h->address, sizeof h->address, &h->loopback, err);
    if (fd < 0) {
        free(h);
        return fd;
    }
    h->m = m;
    h->result = result;
    h->result_ctx = result_ctx;
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        close(fd);
        free(h);
        return sp_err_set(err, SP_EIO, "cannot start the HTTP server on %s (libmicrohttpd refused)", where);
    }
    *out = h;
    return 0;
}

const char *http_address(const http_server_t *h) { return h->address; }

void http_stop(http_server_t **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    http_server_t *h = *hp;
    MHD_stop_daemon(h->daemon); /* joins its threads and closes the listening socket */
    free(h);
    *hp = NULL;
}
