/* tests/support/testsupport.h -- what tests share: paths handed over by
 * ctest's environment, scratch directories, files, and real child processes
 * with bounded waits (poll with a deadline, never a guessed sleep). */
#ifndef SP_TESTSUPPORT_H
#define SP_TESTSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* An environment variable ctest sets (SPATE_BIN, SPATE_GEN,
 * SPATE_SOURCE_DIR, SPATE_SHARED_DATA, SPATE_TEST_TMP); fails the test when
 * it is missing. Borrowed. */
const char *ts_env(const char *name);

/* A new empty directory under $SPATE_TEST_TMP (or /tmp), malloc'd path. */
char *ts_tmpdir(const char *prefix);

/* rm -rf dir (no-op on NULL). */
void ts_rmtree(const char *dir);

/* Whole file, NUL-terminated, malloc'd; NULL when unreadable. */
char *ts_read_file(const char *path, size_t *len);

/* Write data to path (created or truncated); 0 or -1. */
int ts_write_file(const char *path, const void *data, size_t len);

/* Write data to dir/name by a temporary file and rename, as a producer
 * should; 0 or -1. */
int ts_put_file(const char *dir, const char *name, const void *data, size_t len);

/* Start argv[0] with arguments; its stdout and stderr go to the given files
 * (NULL: /dev/null). Returns the pid or -1. */
pid_t ts_spawn(const char *const argv[], const char *out_path, const char *err_path);

/* Wait for pid up to timeout_ms. Returns 1 and sets *status when it ended,
 * 0 on timeout. */
int ts_wait(pid_t pid, int timeout_ms, int *status);

/* Kill with sig and reap (SIGKILL after 5 s if it does not end). */
void ts_kill(pid_t pid, int sig);

/* Run argv to completion (killed after timeout_ms). Captures stdout and
 * stderr (malloc'd, NUL-terminated; pass NULL to ignore). Returns the exit
 * code, 128+signal when killed by a signal, or -1 on timeout. */
int ts_run(const char *const argv[], int timeout_ms, char **out, char **err);

/* Poll cond(ctx) every few milliseconds until it is true or timeout_ms
 * passes; returns the last result. */
bool ts_poll(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

/* Milliseconds on a monotonic clock. */
long long ts_now_ms(void);

#endif
