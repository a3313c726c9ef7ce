/* common/sp_util.c -- allocation, byte buffers, clocks, and the parsers for
 * sizes and durations. Nothing here knows about queries or processes. */
#include "sp_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void sp__oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof msg, "spate: out of memory allocating %zu bytes\n", n);
    if (len > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)len);
    abort();
}

void *sp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        sp__oom(n);
    return p;
}

void *sp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        sp__oom(n * size);
    return p;
}

void *sp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        sp__oom(n);
    return q;
}

char *sp_xstrdup(const char *s) { return sp_xstrndup(s, strlen(s)); }

char *sp_xstrndup(const char *s, size_t n)
{
    char *p = sp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = sp_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- byte buffer ---------------------------------------------------- */

void sp_buf_reserve(sp_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = sp_xrealloc(b->data, cap);
    b->cap = cap;
}

void sp_buf_append(sp_buf_t *b, const void *p, size_t n)
{
    sp_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void sp_buf_putc(sp_buf_t *b, char c)
{
    sp_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

void sp_buf_printf(sp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    sp_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *sp_buf_cstr(sp_buf_t *b)
{
    sp_buf_reserve(b, 0);
    b->data[b->len] = '\0';
    return b->data;
}

void sp_buf_free(sp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- clocks ----------------------------------------------------------- */

uint64_t sp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sp_mono_ms(void) { return sp_mono_ns() / 1000000ull; }

int64_t sp_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sp_format_iso8601(int64_t wall_ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(wall_ms % 1000));
}

/* ---- parsers ---------------------------------------------------------- */

int sp_parse_int(const char *text, int64_t min, int64_t max, int64_t *out, sp_err_t *err)
{
    if (text == NULL || *text == '\0')
        return sp_err_set(err, SP_EINVAL, "expected a whole number, got nothing");
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return sp_err_set(err, SP_EINVAL, "'%s' is not a whole number", text);
    if (v < min || v > max)
        return sp_err_set(err, SP_EINVAL, "%s is out of range [%" PRId64 ", %" PRId64 "]",
                          text, min, max);
    *out = v;
    return 0;
}

int sp_parse_size(const char *text, uint64_t *out, sp_err_t *err)
{
    if (text == NULL || *text == '\0')
        return sp_err_set(err, SP_EINVAL, "expected a size such as 64M, got nothing");
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || !(v >= 0) || text[0] == '-' || text[0] == '+')
        return sp_err_set(err, SP_EINVAL, "'%s' is not a size (use e.g. 1048576, 64K, 64M, 1G)", text);
    double mult = 1;
    if (*end != '\0') {
        char u = (char)(*end | 0x20);
        if (u == 'k')
            mult = 1024.0;
        else if (u == 'm')
            mult = 1024.0 * 1024;
        else if (u == 'g')
            mult = 1024.0 * 1024 * 1024;
        else if (u == 't')
            mult = 1024.0 * 1024 * 1024 * 1024;
        else if (u != 'b')
            return sp_err_set(err, SP_EINVAL, "'%s' has an unknown unit (use K, M, G or T)", text);
        if (u != 'b') {
            end++;
            if ((*end | 0x20) == 'b' || (*end | 0x20) == 'i') {
                if ((*end | 0x20) == 'i')
                    end++;
                if ((*end | 0x20) == 'b')
                    end++;
            }
        } else {
            end++;
        }
        if (*end != '\0')
            return sp_err_set(err, SP_EINVAL, "'%s' is not a size (use e.g. 64K, 64M, 1G)", text);
    }
    double bytes = v * mult;
    if (bytes > 9.0e18)
        return sp_err_set(err, SP_EINVAL, "size '%s' is too large", text);
    *out = (uint64_t)bytes;
    return 0;
}

int sp_parse_duration_ms(const char *text, uint64_t *out, sp_err_t *err)
{
    if (text == NULL || *text == '\0')
        return sp_err_set(err, SP_EINVAL, "expected a duration such as 500ms, got nothing");
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || !(v >= 0) || text[0] == '-' || text[0] == '+' ||
        !isfinite(v))
        return sp_err_set(err, SP_EINVAL, "'%s' is not a duration (use e.g. 500ms, 2s, 1m)", text);
    double mult;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || strcasecmp(end, "sec") == 0 || strcasecmp(end, "seconds") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcasecmp(end, "min") == 0 || strcasecmp(end, "minutes") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return sp_err_set(err, SP_EINVAL, "'%s' has an unknown unit (use ms, s, m or h)", text);
    double ms = v * mult;
    if (ms > 1e15)
        return sp_err_set(err, SP_EINVAL, "duration '%s' is too long", text);
    *out = (uint64_t)(ms + 0.5);
    return 0;
}

/* ---- doubles ---------------------------------------------------------- */

int sp_format_double(double d, char *out, size_t outlen)
{
    if (isnan(d))
        return snprintf(out, outlen, "NaN");
    if (isinf(d))
        return snprintf(out, outlen, d > 0 ? "Infinity" : "-Infinity");
    int n = 0;
    if (d == trunc(d) && fabs(d) < 1e16) /* whole numbers as 1000000.0, not 1e+06 */
        return snprintf(out, outlen, "%.1f", d);
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(out, outlen, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (strpbrk(out, ".en") == NULL && (size_t)n + 2 < outlen) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return n;
}

void sp_uuid_v4(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* No kernel randomness: fall back to clock and pid. */
            uint64_t seed = sp_mono_ns() ^ ((uint64_t)getpid() << 32);
            for (size_t i = got; i < sizeof b; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                b[i] = (unsigned char)(seed >> 56);
            }
            got = sizeof b;
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
}

int sp_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}
