/* tests/e2e/e2e.h -- helpers for end-to-end tests: generate activity data
 * with the real generator, run the real spate binary, read its result, and
 * compare it with the independent oracle (tests/support/oracle.h). */
#ifndef SP_E2E_H
#define SP_E2E_H

#include <stdbool.h>
#include <sys/types.h>

#include "oracle.h"
#include "testsupport.h"

#define E2E_SQL_COUNT "SELECT gt, count(*) AS count FROM activity GROUP BY gt"

/* A test's scratch space: dir, dir/input (created), dir/ckpt, and src, the
 * --source value "activity=json:<dir>/input". All malloc'd. */
typedef struct e2e_env {
    char *dir, *input, *ckpt, *src;
} e2e_env_t;

void e2e_env_init(e2e_env_t *e, const char *prefix);
/* Removes dir and frees the strings. */
void e2e_env_free(e2e_env_t *e);

/* gen-activity --out dir --files n --rows-per-file rows --seed seed
 * [--dirty] [--prefix prefix]; asserts success. */
void e2e_gen(const char *dir, int files, int rows, int seed, bool dirty, const char *prefix);

/* Run spate with args (NULL-terminated, without the binary); returns the
 * exit status (-1 on timeout). out/err may be NULL. */
int e2e_spate(int timeout_ms, char **out, char **err, ...) __attribute__((sentinel));

/* Same with an argv array (NULL-terminated, without the binary). */
int e2e_spatev(int timeout_ms, char **out, char **err, const char *const *args);

/* Start spate in the background with stdout/stderr into dir/NAME.out and
 * dir/NAME.err; extra environment "K=V" (may be NULL). */
pid_t e2e_spawn(const char *dir, const char *name, const char *env, const char *const *args);

/* `spate result --checkpoint ckpt --format json`; asserts success. */
char *e2e_result_json(const char *ckpt);

/* Compare the checkpoint's result with the oracle's; fails the test with
 * the oracle's diff. */
void e2e_expect_result(const char *ckpt, const oracle_t *o, const char *const *names, double tol);

/* An oracle for `SELECT gt, count(*) AS count ... GROUP BY gt` over dir. */
oracle_t *e2e_oracle_count_by_gt(const char *dir);

/* The last planned and committed batch of a checkpoint (-1 when none), as
 * `spate checkpoint ls` reports them; false when it cannot be read. */
bool e2e_batches(const char *ckpt, long long *planned, long long *committed);

/* A free TCP port on loopback (bound and released: good enough for tests). */
int e2e_free_port(void);

/* Wait (bounded) until the log dir/NAME.err of a process started with
 * e2e_spawn holds needle; fails the test with the log otherwise. */
void e2e_wait_log(const char *dir, const char *name, const char *needle, int timeout_ms);

/* Count lines in s containing needle. */
int e2e_count(const char *s, const char *needle);

#endif
