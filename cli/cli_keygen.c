/* cli/cli_keygen.c -- `spate keygen`: makes a CURVE keypair for a driver or
 * an executor (NAME.key, NAME.pub; format in proto/auth.h). Owns nothing
 * beyond the call; never overwrites a file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cli.h"

static const char keygen_help[] =
    "usage: spate keygen --out DIR [--name NAME]\n"
    "Makes a CURVE keypair: DIR/NAME.key (the secret key, mode 0600: it never\n"
    "leaves its holder) and DIR/NAME.pub (the public key). DIR is created if\n"
    "absent; existing files are never overwritten.\n"
    "  --out DIR                    where to write the keys (required)\n"
    "  --name NAME                  file name without extension (default spate)\n"
    "\n"
    "A driver runs with --curve-secret DRIVER.key --authorized-keys DIR, where DIR\n"
    "holds the .pub file of each executor allowed to join; an executor runs with\n"
    "--curve-secret EXECUTOR.key --driver-key DRIVER.pub.\n";

int cli_keygen(int argc, char **argv)
{
    enum { OPT_OUT = 1000, OPT_NAME, OPT_HELP };
    static const struct option opts[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"name", required_argument, NULL, OPT_NAME},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *name = "spate";
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: out = optarg; break;
        case OPT_NAME: name = optarg; break;
        case OPT_HELP:
            fputs(keygen_help, stdout);
            return CLI_OK;
        case ':':
            return cli_usage_error("flag %s needs a value (see spate keygen --help)", argv[optind - 1]);
        default:
            return cli_usage_error("unknown flag '%s' (see spate keygen --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate keygen --help)", argv[optind]);
    if (out == NULL || *out == '\0')
        return cli_usage_error("--out DIR is required (see spate keygen --help)");
    sp_err_t err;
    sp_err_clear(&err);
    char pub[AUTH_KEY_Z85_LEN + 1];
    int rc = auth_keygen(out, name, pub, &err);
    if (rc != 0)
        return cli_fail(rc, &err);
    printf("secret key: %s/%s.key (keep it private)\n", out, name);
    printf("public key: %s/%s.pub\n", out, name);
    printf("public=%s\n", pub);
    return CLI_OK;
}
