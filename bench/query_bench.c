/*
 * query_bench — latency of cc-metric-store's /api/query for the query
 * shapes cc-backend sends (docs/http-api.md, "Query"), against data written by
 * ingest_bench (same workload.h, same --hosts/--hours/--start).
 *
 * One keep-alive connection, sequential requests, `GET /api/query?version=v2`
 * with a JSON body in cc-backend's key order. Per shape: a warm-up, then K
 * timed iterations (request sent -> complete response read); p50/p99/mean in
 * microseconds. The host (or host set) rotates between iterations. Every
 * response, warm-up included, must be 200 without "error" entries and carry
 * at least 98% of the expected numeric data points, otherwise the run fails:
 * a broken server cannot produce fast-but-empty figures.
 *
 * Shapes:
 *  node-24h        one host's node metric (cpu_load), whole range (shape E)
 *  hwthread64      64 hwthread series of one host (flops_any), aggreg false
 *  hwthread64-agg  the same aggregated to one series (aggreg true, shape A)
 *  job-16x10-6h    job view: 16 hosts x 10 metrics over the last 6 h, scope
 *                  node (hwthread/socket metrics aggregated, shape A)
 *  hwthread64-stats the hwthread64 series without data ("with-data":
 *                  false: avg/min/max only, what job footprints ask for);
 *                  its "values" are the entries with a numeric avg
 *  node-16x10-6h   160 series as they are: the 10 node metrics of 16 hosts
 *                  over the last 6 h, aggreg false
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "httpc.h"
#include "procstat.h"
#include "workload.h"

enum shape {
    SHAPE_NODE, SHAPE_HWT, SHAPE_HWT_AGG, SHAPE_JOB, SHAPE_HWT_STATS, SHAPE_NODES160, SHAPE_COUNT
};
static const char *const shape_names[SHAPE_COUNT] = {"node-24h", "hwthread64", "hwthread64-agg",
                                                     "job-16x10-6h", "hwthread64-stats",
                                                     "node-16x10-6h"};

struct options {
    const char *addr, *cluster, *token;
    long hosts, hours, iterations, warmup, hwthreads, sockets;
    long range_hours, job_hours, job_hosts, job_resolution;
    int64_t start;
    long pid;
    bool shapes[SHAPE_COUNT];
};

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 4096) + (n > 0 ? (size_t)n : 0);
        char *p = realloc(b->p, ncap);
        if (!p) {
            fprintf(stderr, "query_bench: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = ncap;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: query_bench [options]\n"
            "  --addr HOST:PORT     server (default 127.0.0.1:8082)\n"
            "  --hosts N            hosts written by ingest_bench (default 256)\n"
            "  --hours N            hours written by ingest_bench (default 24)\n"
            "  --start UNIX_S       first sample time used by ingest_bench (default now - hours)\n"
            "  --iterations K       timed iterations per shape (default 1000)\n"
            "  --warmup W           untimed iterations per shape first (default 100)\n"
            "  --shapes LIST        comma-separated subset of node-24h,hwthread64,\n"
            "                       hwthread64-agg,job-16x10-6h,hwthread64-stats,\n"
            "                       node-16x10-6h (default all)\n"
            "  --range-hours N      range of the single-host shapes (default 24)\n"
            "  --job-hours N        range of the job view (default 6)\n"
            "  --job-hosts N        hosts of the job view (default 16)\n"
            "  --job-resolution S   resolution of the job view (default 60)\n"
            "  --hwthreads N        hwthreads per host (default 64)\n"
            "  --sockets N          sockets per host (default 2)\n"
            "  --cluster NAME       cluster (default bench)\n"
            "  --token JWT          send Authorization: Bearer JWT\n"
            "  --pid PID            server process: report its CPU time per query\n");
}

static int parse_shapes(const char *list, bool *shapes)
{
    memset(shapes, 0, sizeof(bool) * SHAPE_COUNT);
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < SHAPE_COUNT; i++)
            if (strcmp(tok, shape_names[i]) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "query_bench: unknown shape \"%s\"\n", tok);
            free(copy);
            return -1;
        }
        shapes[found] = true;
    }
    free(copy);
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.addr = "127.0.0.1:8082", .cluster = "bench", .hosts = 256,
                          .hours = 24, .iterations = 1000, .warmup = 100, .hwthreads = 64,
                          .sockets = 2, .range_hours = 24, .job_hours = 6, .job_hosts = 16,
                          .job_resolution = 60, .start = -1};
    for (int i = 0; i < SHAPE_COUNT; i++)
        o->shapes[i] = true;
    static const struct option longopts[] = {
        {"addr", required_argument, 0, 'a'},           {"hosts", required_argument, 0, 'H'},
        {"hours", required_argument, 0, 'h'},          {"start", required_argument, 0, 's'},
        {"iterations", required_argument, 0, 'k'},     {"warmup", required_argument, 0, 'w'},
        {"shapes", required_argument, 0, 'x'},         {"range-hours", required_argument, 0, 'r'},
        {"job-hours", required_argument, 0, 'j'},      {"job-hosts", required_argument, 0, 'J'},
        {"job-resolution", required_argument, 0, 'R'}, {"hwthreads", required_argument, 0, 't'},
        {"sockets", required_argument, 0, 'S'},        {"cluster", required_argument, 0, 'C'},
        {"token", required_argument, 0, 'T'},          {"pid", required_argument, 0, 'p'},
        {"help", no_argument, 0, '?'},
        {0, 0, 0, 0},
    };
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a': o->addr = optarg; break;
        case 'C': o->cluster = optarg; break;
        case 'T': o->token = optarg; break;
        case 'x': if (parse_shapes(optarg, o->shapes)) return -1; break;
        case 'H': if (parse_long(optarg, 1, &o->hosts)) goto bad; break;
        case 'h': if (parse_long(optarg, 1, &o->hours)) goto bad; break;
        case 'k': if (parse_long(optarg, 1, &o->iterations)) goto bad; break;
        case 'w': if (parse_long(optarg, 0, &o->warmup)) goto bad; break;
        case 'r': if (parse_long(optarg, 1, &o->range_hours)) goto bad; break;
        case 'j': if (parse_long(optarg, 1, &o->job_hours)) goto bad; break;
        case 'J': if (parse_long(optarg, 1, &o->job_hosts)) goto bad; break;
        case 'R': if (parse_long(optarg, 0, &o->job_resolution)) goto bad; break;
        case 't': if (parse_long(optarg, 1, &o->hwthreads)) goto bad; break;
        case 'S': if (parse_long(optarg, 1, &o->sockets)) goto bad; break;
        case 's': if (parse_long(optarg, 1000000000L, &v)) goto bad; o->start = v; break;
        case 'p': if (parse_long(optarg, 1, &o->pid)) goto bad; break;
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc)
        goto bad;
    if (o->job_hosts > o->hosts)
        o->job_hosts = o->hosts;
    return 0;
bad:
    fprintf(stderr, "query_bench: invalid argument\n");
    usage(stderr);
    return -1;
}

static void add_type_ids(struct sbuf *b, long n)
{
    sb_printf(b, ",\"type-ids\":[");
    for (long i = 0; i < n; i++)
        sb_printf(b, "%s\"%ld\"", i ? "," : "", i);
    sb_printf(b, "]");
}

/* The request body of iteration `it`; *expected = numeric points a correct
 * answer carries (all data exists). */
static void build_query(const struct options *o, enum shape sh, long it, struct sbuf *b,
                        long *expected)
{
    int64_t end = o->start + (int64_t)o->hours * 3600;
    long range_h = sh == SHAPE_JOB || sh == SHAPE_NODES160 ? o->job_hours : o->range_hours;
    if (range_h > o->hours)
        range_h = o->hours;
    int64_t from = end - (int64_t)range_h * 3600;
    long points = range_h * 3600 / WL_INTERVAL;
    char host[64];
    b->len = 0;
    sb_printf(b, "{\"cluster\":\"%s\",\"queries\":[", o->cluster);
    switch (sh) {
    case SHAPE_NODE:
        wl_host_name(host, sizeof host, it % o->hosts, o->hosts);
        sb_printf(b, "{\"metric\":\"%s\",\"host\":\"%s\",\"resolution\":0,\"aggreg\":false}",
                  wl_node_metrics[it % 2 ? 1 : 0], host);
        *expected = points;
        break;
    case SHAPE_HWT:
    case SHAPE_HWT_AGG:
    case SHAPE_HWT_STATS:
        wl_host_name(host, sizeof host, it % o->hosts, o->hosts);
        sb_printf(b, "{\"type\":\"hwthread\",\"metric\":\"flops_any\",\"host\":\"%s\",\"resolution\":%d",
                  host, WL_INTERVAL);
        add_type_ids(b, o->hwthreads);
        sb_printf(b, ",\"aggreg\":%s}", sh == SHAPE_HWT_AGG ? "true" : "false");
        *expected = sh == SHAPE_HWT_AGG     ? points
                    : sh == SHAPE_HWT_STATS ? o->hwthreads
                                            : points * o->hwthreads;
        break;
    case SHAPE_JOB: {
        /* cc-backend's order: metric -> scope -> host */
        long first = (it * o->job_hosts) % o->hosts;
        bool comma = false;
        long nq = 0;
        const char *hwt[] = {"cpu_user", "flops_any", "flops_dp", "ipc"};
        const char *sock[] = {"mem_bw", "cpu_power"};
        const char *node[] = {"cpu_load", "mem_used", "net_bw", "file_bw"};
        for (int kind = 0; kind < 3; kind++) {
            size_t nm = kind == 2 ? 4 : kind == 1 ? 2 : 4;
            for (size_t m = 0; m < nm; m++) {
                for (long h = 0; h < o->job_hosts; h++) {
                    wl_host_name(host, sizeof host, (first + h) % o->hosts, o->hosts);
                    sb_printf(b, "%s{", comma ? "," : "");
                    comma = true;
                    nq++;
                    if (kind == 0) {
                        sb_printf(b, "\"type\":\"hwthread\",\"metric\":\"%s\",\"host\":\"%s\","
                                     "\"resolution\":%ld", hwt[m], host, o->job_resolution);
                        add_type_ids(b, o->hwthreads);
                        sb_printf(b, ",\"aggreg\":true}");
                    } else if (kind == 1) {
                        sb_printf(b, "\"type\":\"socket\",\"metric\":\"%s\",\"host\":\"%s\","
                                     "\"resolution\":%ld", sock[m], host, o->job_resolution);
                        add_type_ids(b, o->sockets);
                        sb_printf(b, ",\"aggreg\":true}");
                    } else {
                        sb_printf(b, "\"metric\":\"%s\",\"host\":\"%s\",\"resolution\":%ld,"
                                     "\"aggreg\":false}", node[m], host, o->job_resolution);
                    }
                }
            }
        }
        long res = o->job_resolution > WL_INTERVAL ? o->job_resolution : WL_INTERVAL;
        *expected = nq * (range_h * 3600 / res);
        break;
    }
    case SHAPE_NODES160: {
        /* 160 series as they are: the 10 node metrics of job_hosts hosts */
        long first = (it * o->job_hosts) % o->hosts;
        for (size_t m = 0; m < WL_NODE_METRICS; m++)
            for (long h = 0; h < o->job_hosts; h++) {
                wl_host_name(host, sizeof host, (first + h) % o->hosts, o->hosts);
                sb_printf(b, "%s{\"metric\":\"%s\",\"host\":\"%s\",\"resolution\":%ld,"
                             "\"aggreg\":false}", m || h ? "," : "", wl_node_metrics[m], host,
                          o->job_resolution);
            }
        long res = o->job_resolution > WL_INTERVAL ? o->job_resolution : WL_INTERVAL;
        *expected = (long)WL_NODE_METRICS * o->job_hosts * (range_h * 3600 / res);
        break;
    }
    default:
        break;
    }
    sb_printf(b, "],\"for-all-nodes\":null,\"from\":%" PRId64 ",\"to\":%" PRId64
                 ",\"with-stats\":true,\"with-data\":%s}", from, end,
              sh == SHAPE_HWT_STATS ? "false" : "true");
}

/* Counts numeric and null elements of every "data" array (stats_only:
 * numeric and null "avg" fields instead); 0 or -1 if an "error" entry is
 * present. */
static int count_values(const char *p, size_t len, bool stats_only, long *numbers, long *nulls)
{
    *numbers = *nulls = 0;
    if (memmem(p, len, "\"error\"", 7))
        return -1;
    const char *end = p + len;
    if (stats_only) {
        while ((p = memmem(p, (size_t)(end - p), "\"avg\":", 6))) {
            p += 6;
            if (p < end && *p == 'n')
                (*nulls)++;
            else if (p < end && (*p == '-' || (*p >= '0' && *p <= '9')))
                (*numbers)++;
        }
        return 0;
    }
    while ((p = memmem(p, (size_t)(end - p), "\"data\":[", 8))) {
        p += 8;
        while (p < end && *p != ']') {
            if (*p == 'n')
                (*nulls)++;
            else if (*p == '-' || (*p >= '0' && *p <= '9'))
                (*numbers)++;
            while (p < end && *p != ',' && *p != ']')
                p++;
            if (p < end && *p == ',')
                p++;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    size_t idx = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[idx < n ? idx : n - 1];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (o.start < 0)
        o.start = wl_default_start((int64_t)time(NULL), o.hours);

    char err[256];
    struct httpc c;
    if (httpc_init(&c, o.addr, 30, err, sizeof err) != 0 || httpc_connect(&c, err, sizeof err) != 0) {
        fprintf(stderr, "query_bench: %s\n", err);
        return 1;
    }
    char headers[4096] = "";
    if (o.token)
        snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", o.token);

    struct sbuf body = {0};
    double *lat = malloc(sizeof(double) * (size_t)o.iterations);
    if (!lat)
        return 1;
    for (int s = 0; s < SHAPE_COUNT; s++) {
        if (!o.shapes[s])
            continue;
        long total = o.warmup + o.iterations;
        double sum = 0;
        size_t resp_bytes = 0;
        long last_numbers = 0, last_expected = 0;
        double su0 = 0, ss0 = 0, su1 = 0, ss1 = 0, mb0 = 0, mb1 = 0, w0 = 0, w1 = 0;
        bool have_cpu = false;
        for (long it = 0; it < total; it++) {
            long expected;
            if (it == o.warmup) {
                have_cpu = o.pid > 0 && procstat_process(o.pid, &su0, &ss0) == 0 &&
                           procstat_machine_busy(&mb0) == 0;
                w0 = now_s();
            }
            build_query(&o, (enum shape)s, it, &body, &expected);
            struct httpc_response r;
            double t0 = now_s();
            int rc = httpc_request(&c, "GET", "/api/query?version=v2", headers, body.p, body.len,
                                   &r, err, sizeof err);
            double t1 = now_s();
            if (rc != 0) {
                fprintf(stderr, "query_bench: %s: %s\n", shape_names[s], err);
                return 1;
            }
            long numbers, nulls;
            if (r.status != 200 || count_values(r.body, r.body_len, s == SHAPE_HWT_STATS, &numbers, &nulls) != 0 ||
                (double)numbers < 0.98 * (double)expected) {
                fprintf(stderr,
                        "query_bench: %s: implausible answer (HTTP %d, %ld numbers, expected %ld)"
                        "\n  request: %.*s\n  response: %.*s\n",
                        shape_names[s], r.status, r.status == 200 ? numbers : 0, expected,
                        (int)(body.len > 400 ? 400 : body.len), body.p,
                        (int)(r.body_len > 400 ? 400 : r.body_len), r.body);
                return 1;
            }
            if (it >= o.warmup) {
                double us = (t1 - t0) * 1e6;
                lat[it - o.warmup] = us;
                sum += us;
                resp_bytes = r.body_len;
                last_numbers = numbers;
                last_expected = expected;
            }
        }
        w1 = now_s();
        if (have_cpu)
            have_cpu = procstat_process(o.pid, &su1, &ss1) == 0 && procstat_machine_busy(&mb1) == 0;
        size_t n = (size_t)o.iterations;
        qsort(lat, n, sizeof(double), cmp_double);
        double p50 = percentile(lat, n, 0.50), p99 = percentile(lat, n, 0.99);
        printf("query %-15s %ld iterations: p50 %8.1f us  p99 %8.1f us  mean %8.1f us  "
               "(response %zu bytes, %ld values of %ld expected)\n",
               shape_names[s], o.iterations, p50, p99, sum / (double)n, resp_bytes,
               last_numbers, last_expected);
        printf("RESULT query_%s p50_us=%.1f p99_us=%.1f mean_us=%.1f bytes=%zu values=%ld",
               shape_names[s], p50, p99, sum / (double)n, resp_bytes, last_numbers);
        if (have_cpu) {
            /* clock-tick resolution (10 ms): meaningful over many iterations only */
            double server = (su1 - su0) + (ss1 - ss0);
            double others = (mb1 - mb0) - server;
            printf(" server_cpu_us_per_query=%.1f busy_cores_besides_server=%.2f",
                   server * 1e6 / (double)n, (others > 0 ? others : 0) / (w1 - w0));
        }
        printf("\n");
    }
    if (c.reconnects)
        printf("note: %u reconnects during the run\n", c.reconnects);
    httpc_close(&c);
    free(body.p);
    free(lat);
    return 0;
}
