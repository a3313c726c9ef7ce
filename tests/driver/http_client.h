/* tests/driver/http_client.h -- a small libcurl client for tests of the
 * driver's HTTP server (tests/driver/http_test.c, tests/e2e/monitor_test.c):
 * one request, the status, the headers tests check, and the body. */
#ifndef SP_HTTP_CLIENT_H
#define SP_HTTP_CLIENT_H

#include <json-c/json.h>
#include <stddef.h>

typedef struct hc_reply {
    long status;
    char *type;          /* Content-Type (NULL when absent) */
    char *cache;         /* Cache-Control */
    char *allow;         /* Allow */
    char *csp;           /* Content-Security-Policy */
    char *body;          /* NUL-terminated */
    size_t len;
} hc_reply_t;

/* method ("GET", "HEAD", "POST", ...) url; 0 with *r filled, or -1 when
 * nothing answered (err, if not NULL, gets curl's message). Times out
 * after timeout_ms. */
int hc_request(const char *method, const char *url, int timeout_ms, hc_reply_t *r, char **err);

void hc_reply_free(hc_reply_t *r);

/* GET base+path, asserting 200 and application/json; the parsed body
 * (json_object_put it). */
json_object *hc_get_json(const char *base, const char *path);

/* GET url; the body when the status is 200, else NULL (malloc'd). */
char *hc_get_text(const char *url);

/* Field helpers that fail the test when the field is missing. */
json_object *hc_field(json_object *o, const char *key);
long long hc_int(json_object *o, const char *key);
const char *hc_str(json_object *o, const char *key);

#endif
