/* common/sp_util.h -- small shared helpers: allocation that aborts on
 * exhaustion (as Redis's zmalloc does), a growable byte buffer, clocks, and
 * parsers for the sizes and durations users type on the command line. */
#ifndef SP_UTIL_H
#define SP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_err.h"

/* Allocation: never returns NULL; prints a message and aborts when memory
 * is exhausted. Free with free(). */
void *sp_xmalloc(size_t n);
void *sp_xcalloc(size_t n, size_t size);
void *sp_xrealloc(void *p, size_t n);
char *sp_xstrdup(const char *s);
char *sp_xstrndup(const char *s, size_t n);
char *sp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. Zero-initialise (SP_BUF_INIT) or sp_buf_init;
 * the buffer owns `data`; sp_buf_free releases it and resets to empty. */
typedef struct sp_buf {
    char *data;
    size_t len;
    size_t cap;
} sp_buf_t;

#define SP_BUF_INIT {NULL, 0, 0}

void sp_buf_reserve(sp_buf_t *b, size_t extra);
void sp_buf_append(sp_buf_t *b, const void *p, size_t n);
void sp_buf_putc(sp_buf_t *b, char c);
void sp_buf_printf(sp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Make data NUL-terminated (not counted in len) and return it. */
char *sp_buf_cstr(sp_buf_t *b);
void sp_buf_free(sp_buf_t *b);

/* Clocks. Monotonic for durations, wall clock for timestamps. */
uint64_t sp_mono_ns(void);
uint64_t sp_mono_ms(void);
int64_t sp_wall_ms(void);
/* ISO-8601 UTC with milliseconds, "2026-11-25T10:00:00.123Z"; out >= 32. */
void sp_format_iso8601(int64_t wall_ms, char *out, size_t outlen);

/* "1048576", "64K", "64KB", "64M", "1G", "1.5G" (binary units) -> bytes.
 * Returns 0, or SP_EINVAL with a message in err. */
int sp_parse_size(const char *text, uint64_t *out, sp_err_t *err);
/* "500ms", "2s", "1.5s", "1m", "250" (ms) -> milliseconds. */
int sp_parse_duration_ms(const char *text, uint64_t *out, sp_err_t *err);
/* A decimal integer in [min, max]; rejects trailing junk. */
int sp_parse_int(const char *text, int64_t min, int64_t max, int64_t *out, sp_err_t *err);

/* Shortest decimal text of d that reads back (strtod) to the same double,
 * always with a '.' or exponent so it reads as floating point ("3.0",
 * "-5.958191", "1e+300"). Non-finite values give "NaN", "Infinity",
 * "-Infinity". Returns the length written; out must hold 32 bytes. */
int sp_format_double(double d, char *out, size_t outlen);

/* A random 128-bit identifier as a UUID v4 string (37 bytes with NUL). */
void sp_uuid_v4(char out[37]);

/* Write all of buf to fd, retrying on EINTR and short writes. 0 or -errno. */
int sp_write_all(int fd, const void *buf, size_t len);

#endif
