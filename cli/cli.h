/* cli/cli.h -- the spate command's subcommands and what they share: how an
 * error becomes a one-line message and an exit status.
 *
 * Exit status: 0 success; 1 the query or command failed at run time;
 * 2 bad usage (flags, SQL, schema); 3 the checkpoint cannot be used (another
 * query's, a newer format, damaged, or in use). */
#ifndef SP_CLI_H
#define SP_CLI_H

#include "sp_err.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_CHECKPOINT = 3 };

/* Print "spate: error: MESSAGE" and return the exit status for rc. */
int cli_fail(int rc, const sp_err_t *err);

/* Print "spate: error: ..." for a usage problem and return CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cli_run(int argc, char **argv, const char *exe);       /* spate run */
int cli_driver(int argc, char **argv, const char *exe);    /* spate driver */
int cli_executor(int argc, char **argv);                   /* spate executor */
int cli_result(int argc, char **argv);                     /* spate result */
int cli_checkpoint(int argc, char **argv);                 /* spate checkpoint ls */
int cli_keygen(int argc, char **argv);                     /* spate keygen */
int cli_status(int argc, char **argv);                     /* spate status */
int cli_progress(int argc, char **argv);                   /* spate progress */
int cli_listen(int argc, char **argv);                     /* spate listen */

#endif
