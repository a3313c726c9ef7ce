/* cli/cli_query.c -- `spate run`, `spate driver` and `spate executor`: flag
 * parsing into driver_opts_t / executor_opts_t. Owns no state beyond the
 * call; every bad flag is a one-line error and exit status 2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alerts.h"
#include "cli.h"
#include "driver.h"
#include "executor.h"
#include "sp_log.h"
#include "sp_util.h"
#include "wire.h"

static const char query_help[] =
    "query flags (spate run and spate driver):\n"
    "  --source NAME=FORMAT:DIR     the source: a directory of JSON-lines files,\n"
    "                               e.g. activity=json:/data/activity (required)\n"
    "  --sql TEXT                   the query, e.g. \"SELECT gt, count(*) AS count\n"
    "                               FROM activity GROUP BY gt\" (required)\n"
    "  --checkpoint DIR             the checkpoint directory (required)\n"
    "  --schema TEXT                \"col TYPE, ...\" (STRING, BIGINT, DOUBLE,\n"
    "                               BOOLEAN); default: inferred at the first start\n"
    "  --max-files-per-trigger N    at most N new files per batch\n"
    "  --max-bytes-per-trigger B    about B bytes per batch (e.g. 64M; at least 1 file)\n"
    "  --trigger T                  default | interval:500ms | once | available-now\n"
    "  --output-mode M              complete (default) | update\n"
    "  --sink S                     console (default) | memory:NAME | json:DIR\n"
    "  --mode M                     malformed lines: permissive (default) |\n"
    "                               dropmalformed | failfast\n"
    "  --name NAME                  query name (default: the memory sink's name)\n"
    "  --split-size B               largest byte range one task reads (default 32M)\n"
    "  --infer-bytes B              how much data schema inference reads, spread over\n"
    "                               the files present (default 16M)\n"
    "  --key-groups N               state key groups, fixed at creation (default 256)\n"
    "  --poll-interval D            look for new files at least this often (1s)\n"
    "  --relist-interval D          list the whole directory this often (60s); new\n"
    "                               files are noticed at once through inotify\n"
    "  --max-file-age D             ignore files older than the newest one seen by more\n"
    "                               than D, and forget them in the seen-file index\n"
    "  --clean-source archive|delete  once a batch is committed, move its files into\n"
    "                               --source-archive-dir DIR (same filesystem) or\n"
    "                               delete them, and forget them in the index\n"
    "  --min-batches-to-retain N    planned/committed batch records kept (100)\n"
    "  --max-task-failures N        attempts of one task before the query fails (4)\n"
    "  --executor-timeout D         heartbeat silence before an executor is lost (5s)\n"
    "  --heartbeat D                executor heartbeat period (500ms)\n"
    "  --stop-timeout D             on SIGINT/SIGTERM wait this long for the running\n"
    "                               batch to commit before abandoning it (10s)\n"
    "  --bind ENDPOINT              where executors connect (driver default\n"
    "                               tcp://127.0.0.1:7077; run default: a free port)\n"
    "  --quiet                      no progress line per batch\n"
    "  --http HOST:PORT|off         the HTTP server: status, progress, metrics, web UI\n"
    "                               (default 127.0.0.1:4040, or the next free port)\n"
    "  --events ENDPOINT            publish the query's events on a ZeroMQ PUB socket\n"
    "                               (e.g. tcp://127.0.0.1:4041; read with spate listen)\n"
    "  --recent-progress N          progress reports kept, also in the checkpoint (100)\n"
    "  --log-level L                error | warn | info | debug\n"
    "alerts (each fires once when its episode starts and resolves once when it ends):\n"
    "  --alert 'NAME: CONDITION [for N batches | for DURATION]'\n"
    "                               a rule (repeatable), e.g. 'behind: processing_rate\n"
    "                               < input_rate for 3 batches', 'backlog: backlog_files\n"
    "                               > 100', 'stale: backlog_age > 5m for 30s', 'slow:\n"
    "                               batch_duration > 10s', 'bad_input: malformed_rate >\n"
    "                               1%', 'failed: query_failed', 'lost: executor_lost'.\n"
    "                               Metrics: input_rate, processing_rate (rows/s),\n"
    "                               batch_duration, backlog_age (ms, s, m, h),\n"
    "                               backlog_files, backlog_bytes (K, M, G),\n"
    "                               malformed_rate (%), malformed_rows, state_rows,\n"
    "                               executors_alive; OP one of < <= > >= = !=\n"
    "  --alerts-file FILE           rules, one per line (# starts a comment)\n"
    "  --alert-action SPEC          what each firing and resolving alert runs\n"
    "                               (repeatable; default log): log | command:CMD (the\n"
    "                               alert as JSON on stdin) | webhook:URL (a JSON POST)\n"
    "                               | alertmanager:URL (Prometheus Alertmanager's API)\n"
    "who may join (see spate keygen --help):\n"
    "  --curve-secret FILE          the driver's secret key (NAME.key): executors\n"
    "                               connect over encrypted, authenticated CURVE\n"
    "  --authorized-keys DIR        with --curve-secret: only executors whose public\n"
    "                               key is in a DIR/*.pub file may join (read again\n"
    "                               at each connection: add keys while it runs)\n"
    "  --insecure                   bind a non-loopback endpoint without keys:\n"
    "                               anyone who can reach it can join (without keys\n"
    "                               and this flag, only loopback binds are allowed)\n";

static const char run_help[] =
    "usage: spate run --source NAME=json:DIR --sql TEXT --checkpoint DIR [flags]\n"
    "Runs a streaming query in local mode: the driver plus executor processes it\n"
    "starts itself (they never outlive it).\n"
    "  --executors N|auto           local executor processes (default 2; auto: one\n"
    "                               per core)\n"
    "  --slots N                    tasks each executor runs at once (default 1)\n";

static const char driver_help[] =
    "usage: spate driver --source NAME=json:DIR --sql TEXT --checkpoint DIR [flags]\n"
    "Runs the driver of a cluster: start executors with\n"
    "`spate executor --driver tcp://HOST:7077`, at any time. To let executors\n"
    "join from other machines, bind a network endpoint with --curve-secret and\n"
    "--authorized-keys (keys from spate keygen), or accept anyone with --insecure.\n";

enum {
    OPT_SOURCE = 1000, OPT_SQL, OPT_CHECKPOINT, OPT_SCHEMA, OPT_MAX_FILES, OPT_MAX_BYTES,
    OPT_TRIGGER, OPT_OUTPUT_MODE, OPT_SINK, OPT_MODE, OPT_NAME, OPT_SPLIT, OPT_INFER,
    OPT_KEY_GROUPS, OPT_POLL, OPT_MAX_FAILURES, OPT_EXEC_TIMEOUT, OPT_HEARTBEAT, OPT_STOP_TIMEOUT,
    OPT_BIND, OPT_QUIET, OPT_LOG_LEVEL, OPT_EXECUTORS, OPT_SLOTS, OPT_HELP, OPT_DRIVER, OPT_ID,
    OPT_EXIT_WITH_DRIVER, OPT_DRIVER_TIMEOUT, OPT_CURVE_SECRET, OPT_AUTHORIZED_KEYS, OPT_INSECURE,
    OPT_DRIVER_KEY, OPT_ALERT, OPT_ALERTS_FILE, OPT_ALERT_ACTION,
    OPT_HTTP, OPT_EVENTS, OPT_RECENT_PROGRESS, OPT_RELIST, OPT_MAX_FILE_AGE, OPT_CLEAN_SOURCE,
    OPT_ARCHIVE_DIR, OPT_RETAIN,
};

static const struct option query_opts[] = {
    {"source", required_argument, NULL, OPT_SOURCE},
    {"sql", required_argument, NULL, OPT_SQL},
    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"max-files-per-trigger", required_argument, NULL, OPT_MAX_FILES},
    {"max-bytes-per-trigger", required_argument, NULL, OPT_MAX_BYTES},
    {"trigger", required_argument, NULL, OPT_TRIGGER},
    {"output-mode", required_argument, NULL, OPT_OUTPUT_MODE},
    {"sink", required_argument, NULL, OPT_SINK},
    {"mode", required_argument, NULL, OPT_MODE},
    {"name", required_argument, NULL, OPT_NAME},
    {"split-size", required_argument, NULL, OPT_SPLIT},
    {"infer-bytes", required_argument, NULL, OPT_INFER},
    {"key-groups", required_argument, NULL, OPT_KEY_GROUPS},
    {"poll-interval", required_argument, NULL, OPT_POLL},
    {"max-task-failures", required_argument, NULL, OPT_MAX_FAILURES},
    {"executor-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT},
    {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
    {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"http", required_argument, NULL, OPT_HTTP},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"recent-progress", required_argument, NULL, OPT_RECENT_PROGRESS},
    {"relist-interval", required_argument, NULL, OPT_RELIST},
    {"max-file-age", required_argument, NULL, OPT_MAX_FILE_AGE},
    {"clean-source", required_argument, NULL, OPT_CLEAN_SOURCE},
    {"source-archive-dir", required_argument, NULL, OPT_ARCHIVE_DIR},
    {"min-batches-to-retain", required_argument, NULL, OPT_RETAIN},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"executors", required_argument, NULL, OPT_EXECUTORS},
    {"slots", required_argument, NULL, OPT_SLOTS},
    {"curve-secret", required_argument, NULL, OPT_CURVE_SECRET},
    {"authorized-keys", required_argument, NULL, OPT_AUTHORIZED_KEYS},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"alert", required_argument, NULL, OPT_ALERT},
    {"alerts-file", required_argument, NULL, OPT_ALERTS_FILE},
    {"alert-action", required_argument, NULL, OPT_ALERT_ACTION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* getopt_long returned ':' (a flag without its value) or '?' (unknown). */
static int bad_flag(int c, int argc, char **argv)
{
    const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage_error("flag %s needs a value (see spate %s --help)", arg, argv[0]);
    return cli_usage_error("unknown flag '%s' (see spate %s --help)", arg, argv[0]);
}

static int flag_size(const char *flag, const char *v, uint64_t *out)
{
    sp_err_t err;
    if (sp_parse_size(v, out, &err) != 0)
        return cli_usage_error("--%s: %s", flag, err.msg);
    return 0;
}

static int flag_ms(const char *flag, const char *v, uint64_t min, uint32_t *out)
{
    sp_err_t err;
    uint64_t ms;
    if (sp_parse_duration_ms(v, &ms, &err) != 0)
        return cli_usage_error("--%s: %s", flag, err.msg);
    if (ms < min || ms > 86400000)
        return cli_usage_error("--%s: %s is out of range (%llu ms to 1 day)", flag, v, (unsigned long long)min);
    *out = (uint32_t)ms;
    return 0;
}

static int flag_int(const char *flag, const char *v, int64_t min, int64_t max, int64_t *out)
{
    sp_err_t err;
    if (sp_parse_int(v, min, max, out, &err) != 0)
        return cli_usage_error("--%s: %s", flag, err.msg);
    return 0;
}

static int parse_trigger(const char *v, driver_opts_t *o)
{
    if (strcmp(v, "default") == 0) {
        o->trigger = TRIGGER_DEFAULT;
    } else if (strcmp(v, "once") == 0) {
        o->trigger = TRIGGER_ONCE;
    } else if (strcmp(v, "available-now") == 0 || strcmp(v, "availableNow") == 0) {
        o->trigger = TRIGGER_AVAILABLE_NOW;
    } else if (strncmp(v, "interval:", 9) == 0 || strncmp(v, "processing-time:", 16) == 0) {
        sp_err_t err;
        const char *d = strchr(v, ':') + 1;
        if (sp_parse_duration_ms(d, &o->trigger_interval_ms, &err) != 0)
            return cli_usage_error("--trigger: %s", err.msg);
        o->trigger = o->trigger_interval_ms == 0 ? TRIGGER_DEFAULT : TRIGGER_INTERVAL;
    } else {
        return cli_usage_error("--trigger: unknown trigger '%s' (use default, interval:500ms, once or available-now)", v);
    }
    return 0;
}

/* NAME=FORMAT:DIR */
static int parse_source(char *v, driver_opts_t *o)
{
    char *eq = strchr(v, '=');
    char *colon = eq ? strchr(eq + 1, ':') : NULL;
    if (eq == NULL || colon == NULL || eq == v || colon == eq + 1 || colon[1] == '\0')
        return cli_usage_error("--source: expected NAME=FORMAT:DIR such as activity=json:/data/activity, got '%s'", v);
    *eq = '\0';
    *colon = '\0';
    for (const char *p = v; *p; p++)
        if (!(( *p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return cli_usage_error("--source: the name '%s' must be letters, digits and _", v);
    o->source_name = v;
    o->source_format = eq + 1;
    o->source_path = colon + 1;
    return 0;
}

static void push_arg(const char ***list, size_t *n, const char *v)
{
    *list = sp_xrealloc((void *)*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = v;
}

/* Check the alert rules and actions now, so that a typo is exit status 2
 * before anything starts, by adding them to an alerts_t that never runs. */
static int check_alert_flags(const driver_opts_t *o)
{
    if (o->nalert_actions > 0 && o->nalert_rules == 0 && o->alerts_file == NULL)
        return cli_usage_error("--alert-action needs rules: give --alert or --alerts-file");
    alerts_t *a = alerts_new(NULL, NULL, NULL);
    sp_err_t err;
    sp_err_clear(&err);
    int rc = 0;
    for (size_t i = 0; i < o->nalert_rules && rc == 0; i++)
        if (alerts_add_rule(a, o->alert_rules[i], &err) != 0)
            rc = cli_usage_error("--%s", err.msg); /* "--alert 'x: ...': at column 9: ..." */
    if (rc == 0 && o->alerts_file && alerts_load_file(a, o->alerts_file, &err) != 0)
        rc = cli_usage_error("--alerts-file: %s", err.msg);
    for (size_t i = 0; i < o->nalert_actions && rc == 0; i++)
        if (alerts_add_action(a, o->alert_actions[i], &err) != 0)
            rc = cli_usage_error("%s", err.msg); /* "alert action 'x': ..." */
    alerts_destroy(&a);
    return rc;
}

/* Parse the flags of run (local true) or driver. Returns -1 to go on, or an
 * exit status. */
static int parse_query_flags(int argc, char **argv, bool local, driver_opts_t *o)
{
    opterr = 0;
    optind = 1;
    int c, rc;
    int64_t n;
    uint64_t u;
    o->local_executors = local ? 2 : 0;
    while ((c = getopt_long(argc, argv, ":", query_opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOURCE:
            if ((rc = parse_source(optarg, o)) != 0)
                return rc;
            break;
        case OPT_SQL: o->sql = optarg; break;
        case OPT_CHECKPOINT: o->checkpoint = optarg; break;
        case OPT_SCHEMA: o->schema = optarg; break;
        case OPT_MAX_FILES:
            if ((rc = flag_int("max-files-per-trigger", optarg, 1, INT64_MAX, &n)) != 0)
                return rc;
            o->max_files = (uint64_t)n;
            break;
        case OPT_MAX_BYTES:
            if ((rc = flag_size("max-bytes-per-trigger", optarg, &u)) != 0)
                return rc;
            if (u == 0)
                return cli_usage_error("--max-bytes-per-trigger must be more than 0");
            o->max_bytes = u;
            break;
        case OPT_TRIGGER:
            if ((rc = parse_trigger(optarg, o)) != 0)
                return rc;
            break;
        case OPT_OUTPUT_MODE:
            if (strcmp(optarg, "complete") == 0)
                o->output_mode = OUTPUT_COMPLETE;
            else if (strcmp(optarg, "update") == 0)
                o->output_mode = OUTPUT_UPDATE;
            else if (strcmp(optarg, "append") == 0)
                return cli_usage_error("--output-mode append needs a watermark, which spate has not: use complete or update");
            else
                return cli_usage_error("--output-mode: unknown mode '%s' (use complete or update)", optarg);
            break;
        case OPT_SINK: o->sink = optarg; break;
        case OPT_MODE:
            if (strcasecmp(optarg, "permissive") == 0)
                o->mode = WIRE_MODE_PERMISSIVE;
            else if (strcasecmp(optarg, "dropmalformed") == 0)
                o->mode = WIRE_MODE_DROPMALFORMED;
            else if (strcasecmp(optarg, "failfast") == 0)
                o->mode = WIRE_MODE_FAILFAST;
            else
                return cli_usage_error("--mode: unknown mode '%s' (use permissive, dropmalformed or failfast)", optarg);
            break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_SPLIT:
            if ((rc = flag_size("split-size", optarg, &o->split_bytes)) != 0)
                return rc;
            if (o->split_bytes < 4096)
                return cli_usage_error("--split-size must be at least 4K");
            break;
        case OPT_INFER:
            if ((rc = flag_size("infer-bytes", optarg, &o->infer_bytes)) != 0)
                return rc;
            break;
        case OPT_KEY_GROUPS:
            if ((rc = flag_int("key-groups", optarg, 1, 65536, &n)) != 0)
                return rc;
            o->key_groups = (uint32_t)n;
            break;
        case OPT_POLL: {
            uint32_t ms;
            if ((rc = flag_ms("poll-interval", optarg, 10, &ms)) != 0)
                return rc;
            o->poll_ms = ms;
            break;
        }
        case OPT_MAX_FAILURES:
            if ((rc = flag_int("max-task-failures", optarg, 1, 1000, &n)) != 0)
                return rc;
            o->max_task_failures = (uint32_t)n;
            break;
        case OPT_EXEC_TIMEOUT:
            if ((rc = flag_ms("executor-timeout", optarg, 100, &o->executor_timeout_ms)) != 0)
                return rc;
            break;
        case OPT_HEARTBEAT:
            if ((rc = flag_ms("heartbeat", optarg, 50, &o->heartbeat_ms)) != 0)
                return rc;
            break;
        case OPT_STOP_TIMEOUT:
            if ((rc = flag_ms("stop-timeout", optarg, 0, &o->stop_timeout_ms)) != 0)
                return rc;
            break;
        case OPT_BIND: o->bind = optarg; break;
        case OPT_CURVE_SECRET: o->curve_secret = optarg; break;
        case OPT_AUTHORIZED_KEYS: o->authorized_keys = optarg; break;
        case OPT_INSECURE: o->insecure = true; break;
        case OPT_ALERT: push_arg(&o->alert_rules, &o->nalert_rules, optarg); break;
        case OPT_ALERTS_FILE:
            if (o->alerts_file)
                return cli_usage_error("--alerts-file is given twice (put every rule in one file)");
            o->alerts_file = optarg;
            break;
        case OPT_ALERT_ACTION: push_arg(&o->alert_actions, &o->nalert_actions, optarg); break;
        case OPT_QUIET: o->progress = false; break;
        case OPT_HTTP:
            if (strcmp(optarg, "off") != 0 && (strchr(optarg, ':') == NULL || optarg[0] == ':'))
                return cli_usage_error("--http: expected HOST:PORT (such as 127.0.0.1:4040) or off, got '%s'", optarg);
            o->http = optarg;
            break;
        case OPT_EVENTS:
            if (strncmp(optarg, "tcp://", 6) != 0 && strncmp(optarg, "ipc://", 6) != 0)
                return cli_usage_error("--events: expected a ZeroMQ endpoint such as tcp://127.0.0.1:4041, got '%s'",
                                       optarg);
            o->events = optarg;
            break;
        case OPT_RELIST: {
            uint32_t ms;
            if ((rc = flag_ms("relist-interval", optarg, 100, &ms)) != 0)
                return rc;
            o->relist_ms = ms;
            break;
        }
        case OPT_MAX_FILE_AGE: {
            sp_err_t err;
            uint64_t ms;
            if (sp_parse_duration_ms(optarg, &ms, &err) != 0 || ms == 0)
                return cli_usage_error("--max-file-age: %s", ms == 0 && err.rc == 0 ? "must be more than 0" : err.msg);
            o->max_file_age_ms = ms;
            break;
        }
        case OPT_CLEAN_SOURCE:
            if (strcmp(optarg, "archive") == 0)
                o->clean_source = CLEAN_SOURCE_ARCHIVE;
            else if (strcmp(optarg, "delete") == 0)
                o->clean_source = CLEAN_SOURCE_DELETE;
            else if (strcmp(optarg, "off") == 0)
                o->clean_source = CLEAN_SOURCE_OFF;
            else
                return cli_usage_error("--clean-source: expected archive, delete or off, got '%s'", optarg);
            break;
        case OPT_ARCHIVE_DIR: o->archive_dir = optarg; break;
        case OPT_RETAIN:
            if ((rc = flag_int("min-batches-to-retain", optarg, 1, 1000000, &n)) != 0)
                return rc;
            o->min_batches_retain = (uint32_t)n;
            break;
        case OPT_RECENT_PROGRESS:
            if ((rc = flag_int("recent-progress", optarg, 1, 100000, &n)) != 0)
                return rc;
            o->recent_progress = (size_t)n;
            break;
        case OPT_LOG_LEVEL: {
            sp_log_level_t lv;
            if (sp_log_level_parse(optarg, &lv) != 0)
                return cli_usage_error("--log-level: unknown level '%s' (use error, warn, info or debug)", optarg);
            sp_log_set_level(lv);
            break;
        }
        case OPT_EXECUTORS:
            if (!local)
                return cli_usage_error("--executors is for spate run; start executors of a cluster with spate executor");
            if (strcmp(optarg, "auto") == 0) {
                long cores = sysconf(_SC_NPROCESSORS_ONLN);
                o->local_executors = cores > 0 ? (int)cores : 1;
            } else {
                if ((rc = flag_int("executors", optarg, 0, 256, &n)) != 0)
                    return rc;
                o->local_executors = (int)n;
            }
            break;
        case OPT_SLOTS:
            if (!local)
                return cli_usage_error("--slots is for spate run (and spate executor)");
            if ((rc = flag_int("slots", optarg, 1, 1024, &n)) != 0)
                return rc;
            o->local_slots = (uint32_t)n;
            break;
        case OPT_HELP:
            fputs(local ? run_help : driver_help, stdout);
            fputs(query_help, stdout);
            exit(CLI_OK);
        default:
            return bad_flag(c, argc, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate %s --help)", argv[optind], argv[0]);
    if (o->source_name == NULL)
        return cli_usage_error("--source NAME=json:DIR is required (see spate %s --help)", argv[0]);
    if (o->clean_source == CLEAN_SOURCE_ARCHIVE && o->archive_dir == NULL)
        return cli_usage_error("--clean-source archive needs --source-archive-dir DIR");
    if (o->archive_dir && o->clean_source != CLEAN_SOURCE_ARCHIVE)
        return cli_usage_error("--source-archive-dir goes with --clean-source archive");
    if (o->sql == NULL || *o->sql == '\0')
        return cli_usage_error("--sql is required (see spate %s --help)", argv[0]);
    if (o->checkpoint == NULL || *o->checkpoint == '\0')
        return cli_usage_error("--checkpoint DIR is required (see spate %s --help)", argv[0]);
    if (local && o->local_executors == 0 && o->bind == NULL)
        return cli_usage_error("--executors 0 needs --bind so that executors can connect");
    if (!local && o->bind == NULL)
        o->bind = "tcp://127.0.0.1:7077";
    if ((rc = check_alert_flags(o)) != 0)
        return rc;
    return -1;
}

static int query_main(int argc, char **argv, const char *exe, bool local)
{
    driver_opts_t o;
    driver_opts_init(&o);
    o.exe = exe;
    int rc = parse_query_flags(argc, argv, local, &o);
    if (rc < 0) {
        sp_err_t err;
        sp_err_clear(&err);
        rc = driver_run(&o, &err);
        rc = rc != 0 ? cli_fail(rc, &err) : CLI_OK;
    }
    free((void *)o.alert_rules);
    free((void *)o.alert_actions);
    return rc;
}

int cli_run(int argc, char **argv, const char *exe) { return query_main(argc, argv, exe, true); }

int cli_driver(int argc, char **argv, const char *exe) { return query_main(argc, argv, exe, false); }

static const char executor_help[] =
    "usage: spate executor --driver tcp://HOST:7077 [flags]\n"
    "Runs an executor: it registers with the driver, runs tasks, and reconnects\n"
    "by itself when the driver restarts. SIGTERM drains it.\n"
    "  --driver ENDPOINT            the driver's endpoint (required)\n"
    "  --slots N                    tasks run at once (default 1)\n"
    "  --id ID                      executor id (default: host-pid-random)\n"
    "  --exit-with-driver           exit when the driver is gone (local mode)\n"
    "  --driver-timeout D           silence after which the driver counts as gone (10s)\n"
    "  --curve-secret FILE          this executor's secret key (NAME.key, from spate\n"
    "                               keygen); its NAME.pub must be in the driver's\n"
    "                               --authorized-keys directory\n"
    "  --driver-key FILE            the driver's public key (its NAME.pub): the\n"
    "                               executor talks only to the holder of that key\n"
    "  --log-level L                error | warn | info | debug\n";

int cli_executor(int argc, char **argv)
{
    static const struct option opts[] = {
        {"driver", required_argument, NULL, OPT_DRIVER},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"id", required_argument, NULL, OPT_ID},
        {"exit-with-driver", no_argument, NULL, OPT_EXIT_WITH_DRIVER},
        {"driver-timeout", required_argument, NULL, OPT_DRIVER_TIMEOUT},
        {"curve-secret", required_argument, NULL, OPT_CURVE_SECRET},
        {"driver-key", required_argument, NULL, OPT_DRIVER_KEY},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    executor_opts_t o = {0};
    o.slots = 1;
    opterr = 0;
    optind = 1;
    int c, rc;
    int64_t n;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_DRIVER: o.driver = optarg; break;
        case OPT_SLOTS:
            if ((rc = flag_int("slots", optarg, 1, 1024, &n)) != 0)
                return rc;
            o.slots = (uint32_t)n;
            break;
        case OPT_ID:
            if (strlen(optarg) == 0 || strlen(optarg) > 200)
                return cli_usage_error("--id must be 1 to 200 characters");
            o.id = optarg;
            break;
        case OPT_EXIT_WITH_DRIVER: o.exit_with_driver = true; break;
        case OPT_CURVE_SECRET: o.curve_secret = optarg; break;
        case OPT_DRIVER_KEY: o.driver_key = optarg; break;
        case OPT_DRIVER_TIMEOUT:
            if ((rc = flag_ms("driver-timeout", optarg, 100, &o.driver_timeout_ms)) != 0)
                return rc;
            break;
        case OPT_LOG_LEVEL: {
            sp_log_level_t lv;
            if (sp_log_level_parse(optarg, &lv) != 0)
                return cli_usage_error("--log-level: unknown level '%s'", optarg);
            sp_log_set_level(lv);
            break;
        }
        case OPT_HELP:
            fputs(executor_help, stdout);
            return CLI_OK;
        default:
            return bad_flag(c, argc, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s' (see spate executor --help)", argv[optind]);
    if (o.driver == NULL)
        return cli_usage_error("--driver tcp://HOST:PORT is required (see spate executor --help)");
    if (strncmp(o.driver, "tcp://", 6) != 0 && strncmp(o.driver, "ipc://", 6) != 0)
        return cli_usage_error("--driver: expected tcp://HOST:PORT, got '%s'", o.driver);
    sp_err_t err;
    sp_err_clear(&err);
    rc = executor_run(&o, &err);
    if (rc != 0)
        return cli_fail(rc, &err);
    return CLI_OK;
}
