/* common/sp_log.c -- formats log lines and writes each with one write(2) so
 * lines from several processes sharing a terminal do not interleave. */
#include "sp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int log_level = -1;
static char log_tag[32];

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

int sp_log_level_parse(const char *text, sp_log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (text != NULL && strcasecmp(text, names[i]) == 0) {
            *out = (sp_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

sp_log_level_t sp_log_get_level(void)
{
    if (log_level < 0) {
        sp_log_level_t lv = SP_LOG_INFO;
        const char *env = getenv("SPATE_LOG");
        if (env != NULL)
            (void)sp_log_level_parse(env, &lv);
        log_level = (int)lv;
    }
    return (sp_log_level_t)log_level;
}

void sp_log_set_level(sp_log_level_t level) { log_level = (int)level; }

void sp_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof log_tag, "%s", tag ? tag : "");
}

void sp_log(sp_log_level_t level, const char *component, const char *fmt, ...)
{
    if ((int)level > (int)sp_log_get_level())
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s%s%s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     level_names[level], log_tag, log_tag[0] ? " " : "", component);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
