/* scripts/src/task_bench.c -- times one executor task in-process: the
 * whole path a task takes (read, scan, filter, aggregate) over one file,
 * without sockets, so that profilers (callgrind, perf) see only it.
 *
 *   task-bench FILE [--sql SQL] [--schema TEXT] [--repeat N] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sp_util.h"
#include "task.h"

int main(int argc, char **argv)
{
    const char *sql = "SELECT gt, count(*) FROM activity GROUP BY gt";
    const char *schema = "Arrival_Time BIGINT, Creation_Time BIGINT, Device STRING, Index BIGINT, "
                         "Model STRING, User STRING, gt STRING, x DOUBLE, y DOUBLE, z DOUBLE";
    int repeat = 3;
    static const struct option opts[] = {
        {"sql", required_argument, NULL, 's'},
        {"schema", required_argument, NULL, 'c'},
        {"repeat", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            sql = optarg;
        else if (c == 'c')
            schema = optarg;
        else if (c == 'r')
            repeat = atoi(optarg) > 0 ? atoi(optarg) : 1;
        else
            return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: task-bench FILE [--sql SQL] [--schema TEXT] [--repeat N]\n");
        return 2;
    }
    const char *path = argv[optind];
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    task_query_t *q = NULL;
    sp_err_t err;
    if (task_query_new("activity", schema, sql, &q, &err) != 0) {
        fprintf(stderr, "task-bench: %s\n", err.msg);
        return 2;
    }
    agg_table_t *t = task_query_new_table(q);
    double best = 1e9;
    task_stats_t stats = {0};
    for (int i = 0; i < repeat; i++) {
        memset(&stats, 0, sizeof stats);
        agg_table_clear(t);
        uint64_t t0 = sp_mono_ns();
        if (task_scan(q, path, 0, (uint64_t)st.st_size, 0, t, &stats, NULL, &err) != 0) {
            fprintf(stderr, "task-bench: %s\n", err.msg);
            return 1;
        }
        double s = (double)(sp_mono_ns() - t0) / 1e9;
        if (s < best)
            best = s;
    }
    printf("bytes %llu rows %llu malformed %llu groups %zu seconds %.4f GB/s %.3f\n",
           (unsigned long long)st.st_size, (unsigned long long)stats.rows,
           (unsigned long long)stats.malformed, agg_table_count(t), best, (double)st.st_size / best / 1e9);
    agg_table_destroy(&t);
    task_query_destroy(&q);
    return 0;
}
