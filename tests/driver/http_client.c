/* tests/driver/http_client.c -- libcurl requests for the HTTP tests. */
#include "http_client.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sp_util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    sp_buf_append(ctx, p, size * n);
    return size * n;
}

static char *header(CURL *c, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return NULL;
    return sp_xstrdup(h->value);
}

int hc_request(const char *method, const char *url, int timeout_ms, hc_reply_t *r, char **err)
{
    pthread_once(&once, global_init);
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    sp_buf_t body = SP_BUF_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        if (err)
            *err = sp_xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
        curl_easy_cleanup(c);
        sp_buf_free(&body);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    r->type = type ? sp_xstrdup(type) : NULL;
    r->cache = header(c, "Cache-Control");
    r->allow = header(c, "Allow");
    r->csp = header(c, "Content-Security-Policy");
    r->len = body.len;
    r->body = body.len ? sp_buf_cstr(&body) : sp_xstrdup("");
    if (body.len == 0)
        sp_buf_free(&body);
    curl_easy_cleanup(c);
    return 0;
}

void hc_reply_free(hc_reply_t *r)
{
    free(r->type);
    free(r->cache);
    free(r->allow);
    free(r->csp);
    free(r->body);
    memset(r, 0, sizeof *r);
}

json_object *hc_get_json(const char *base, const char *path)
{
    char *url = sp_xasprintf("%s%s", base, path);
    hc_reply_t r;
    char *err = NULL;
    cr_assert_eq(hc_request("GET", url, 10000, &r, &err), 0, "GET %s: %s", url, err ? err : "");
    cr_assert_eq(r.status, 200, "GET %s: status %ld: %s", url, r.status, r.body);
    cr_assert(r.type && strcmp(r.type, "application/json") == 0, "GET %s: Content-Type %s", url,
              r.type ? r.type : "(none)");
    json_object *o = json_tokener_parse(r.body);
    cr_assert_not_null(o, "GET %s: not JSON: %s", url, r.body);
    hc_reply_free(&r);
    free(url);
    return o;
}

char *hc_get_text(const char *url)
{
    hc_reply_t r;
    if (hc_request("GET", url, 10000, &r, NULL) != 0)
        return NULL;
    char *body = r.status == 200 ? r.body : NULL;
    if (body)
        r.body = NULL;
    hc_reply_free(&r);
    return body;
}

json_object *hc_field(json_object *o, const char *key)
{
    json_object *v = NULL;
    cr_assert(o && json_object_object_get_ex(o, key, &v), "no field %s in %s", key,
              o ? json_object_to_json_string(o) : "(null)");
    return v;
}

long long hc_int(json_object *o, const char *key)
{
    json_object *v = hc_field(o, key);
    cr_assert(json_object_is_type(v, json_type_int), "%s is not an integer in %s", key, json_object_to_json_string(o));
    return (long long)json_object_get_int64(v);
}

const char *hc_str(json_object *o, const char *key)
{
    json_object *v = hc_field(o, key);
    cr_assert(json_object_is_type(v, json_type_string), "%s is not a string in %s", key, json_object_to_json_string(o));
    return json_object_get_string(v);
}
