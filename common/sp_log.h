/* common/sp_log.h -- the one logging function: levels, a component name,
 * one line per call on stderr ("2026-11-25T10:00:00.123Z INFO  driver: ...").
 * SP_TRACE compiles out unless SPATE_TRACE is defined. */
#ifndef SP_LOG_H
#define SP_LOG_H

typedef enum sp_log_level {
    SP_LOG_ERROR = 0,
    SP_LOG_WARN = 1,
    SP_LOG_INFO = 2,
    SP_LOG_DEBUG = 3,
} sp_log_level_t;

/* Messages above this level are dropped. Default SP_LOG_INFO, or the value
 * of the SPATE_LOG environment variable (error|warn|info|debug). */
void sp_log_set_level(sp_log_level_t level);
sp_log_level_t sp_log_get_level(void);

/* Parse "error|warn|info|debug"; returns 0 and sets *out, or -1. */
int sp_log_level_parse(const char *text, sp_log_level_t *out);

/* Set a process tag printed after the level, e.g. "exec-2" (copied). */
void sp_log_set_tag(const char *tag);

void sp_log(sp_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SP_ERROR(comp, ...) sp_log(SP_LOG_ERROR, comp, __VA_ARGS__)
#define SP_WARN(comp, ...) sp_log(SP_LOG_WARN, comp, __VA_ARGS__)
#define SP_INFO(comp, ...) sp_log(SP_LOG_INFO, comp, __VA_ARGS__)
#define SP_DEBUG(comp, ...) sp_log(SP_LOG_DEBUG, comp, __VA_ARGS__)

#ifdef SPATE_TRACE
#define SP_TRACE(comp, ...) sp_log(SP_LOG_DEBUG, comp, __VA_ARGS__)
#else
#define SP_TRACE(comp, ...) ((void)0)
#endif

#endif
