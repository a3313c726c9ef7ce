/* cli/spate.c -- the spate command: dispatches to subcommands and turns
 * errors into one-line messages and exit statuses (table in cli.h). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "sp_log.h"

static const char usage[] =
    "usage: spate COMMAND [FLAGS]\n"
    "\n"
    "commands:\n"
    "  run         run a streaming query with local executors (a driver plus\n"
    "              --executors N processes it starts itself)\n"
    "  driver      run the driver of a cluster; executors connect to --bind\n"
    "  executor    run an executor that connects to a driver\n"
    "  result      print the result table kept in a checkpoint\n"
    "  checkpoint  inspect a checkpoint: spate checkpoint ls DIR\n"
    "  keygen      make a CURVE keypair for a driver or an executor\n"
    "  status      print the status of a running query (from its driver's --http)\n"
    "  progress    print a query's recent progress, from its driver or checkpoint\n"
    "  listen      print the events a driver publishes (its --events endpoint)\n"
    "  version     print the version\n"
    "\n"
    "`spate COMMAND --help` describes a command's flags.\n";

int cli_fail(int rc, const sp_err_t *err)
{
    fprintf(stderr, "spate: error: %s\n", sp_err_text(err, rc));
    switch (rc) {
    case SP_EPARSE:
    case SP_EINVAL:
    case SP_ETYPE:
        return CLI_USAGE;
    case SP_EINCOMPAT:
    case SP_EVERSION:
    case SP_ECORRUPT:
    case SP_EBUSY:
        return CLI_CHECKPOINT;
    default:
        return CLI_FAILED;
    }
}

int cli_usage_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "spate: error: %s\n", msg);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    ckpt_guard_faults();
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        snprintf(exe, sizeof exe, "%s", argv[0]);
    else
        exe[n] = '\0';
    /* Subcommands parse argv[1..]: their argv[0] is the command name. */
    if (strcmp(cmd, "run") == 0)
        return cli_run(argc - 1, argv + 1, exe);
    if (strcmp(cmd, "driver") == 0)
        return cli_driver(argc - 1, argv + 1, exe);
    if (strcmp(cmd, "executor") == 0)
        return cli_executor(argc - 1, argv + 1);
    if (strcmp(cmd, "result") == 0)
        return cli_result(argc - 1, argv + 1);
    if (strcmp(cmd, "checkpoint") == 0)
        return cli_checkpoint(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cli_status(argc - 1, argv + 1);
    if (strcmp(cmd, "progress") == 0)
        return cli_progress(argc - 1, argv + 1);
    if (strcmp(cmd, "listen") == 0)
        return cli_listen(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("spate %s\n", SPATE_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    fputs(usage, stderr);
    return cli_usage_error("unknown command '%s'", cmd);
}
