/*
 * ingest_bench — HTTP ingest throughput of cc-metric-store.
 *
 * The workload of workload.h as collectors send it: one request carries
 * whole timesteps of ALL hosts (--steps-per-request, default 1: 256 hosts x
 * 270 series = 69,120 lines), values are per-series random walks with 1-3
 * decimals. N sender threads (default 4), each with one keep-alive HTTP/1.1
 * connection, take the next request from a shared counter, so requests
 * overlap in time and finish in any order. --order forward (default),
 * reverse (a newest-first backfill) or shuffled.
 *
 * The walk values are computed before the clock starts (an int32 matrix,
 * steps x series); each sender assembles its request body from precomputed
 * line prefixes, the formatted value and the timestamp. The client's own CPU
 * time is reported so its share of the machine is visible. Reports samples/s
 * wall-clock, request latency and - with --pid - the server's CPU time per
 * sample from /proc/<pid>/stat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "httpc.h"
#include "procstat.h"
#include "workload.h"

struct options {
    const char *addr;
    const char *cluster;
    const char *token;
    const char *order;
    const char *values;
    long hosts, hours, connections, steps_per_request, hwthreads, sockets;
    int64_t start;
    long pid;
    bool quiet;
};

/* The precomputed workload: line prefixes of every series and the walk. */
struct workload {
    size_t series;          /* hosts x series per host */
    size_t steps;           /* timesteps of WL_INTERVAL */
    char *prefixes;         /* "<metric>,hostname=<h>[,type=..,type-id=..] value=" each */
    uint32_t *prefix_off;   /* series + 1 offsets into prefixes */
    uint8_t *decimals;      /* per series */
    int32_t *values;        /* steps x series, in units of 10^-decimals */
};

struct shared {
    const struct options *opt;
    const struct workload *wl;
    uint64_t *order;        /* request number -> first step / steps_per_request */
    uint64_t items;         /* requests */
    _Atomic uint64_t next;
    _Atomic uint64_t failed;
    _Atomic uint64_t done;
    pthread_barrier_t ready;
    pthread_mutex_t err_lock;
    char first_error[512];
    const char *headers;
};

struct worker {
    pthread_t tid;
    struct shared *sh;
    struct httpc conn;
    double *lat_us;
    size_t nlat;
    uint64_t ok;
    uint64_t ok_lines;
    char *body;             /* this sender's request buffer */
    size_t body_cap;
    int setup_failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ingest_bench [options]\n"
            "  --addr HOST:PORT     server (default 127.0.0.1:8082)\n"
            "  --hosts N            hosts (default 256)\n"
            "  --hours N            hours of data per host (default 24)\n"
            "  --start UNIX_S       time of the first sample (default now - hours, on the 60 s grid)\n"
            "  --connections N      keep-alive connections = sender threads (default 4)\n"
            "  --steps-per-request N  whole timesteps of all hosts per request (default 1)\n"
            "  --order ORDER        forward (default), reverse (newest first) or shuffled\n"
            "  --values PROFILE     walk (default: gauges, per-metric range and decimals)\n"
            "                       or noise (float32 noise, 9 digits)\n"
            "  --hwthreads N        hwthreads per host (default 64)\n"
            "  --sockets N          sockets per host (default 2)\n"
            "  --cluster NAME       ?cluster= of every request (default bench)\n"
            "  --token JWT          send Authorization: Bearer JWT\n"
            "  --pid PID            server process: report its CPU time per sample\n"
            "  --quiet              no progress on stderr\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.addr = "127.0.0.1:8082", .cluster = "bench", .hosts = 256,
                          .hours = 24, .connections = 4, .steps_per_request = 1,
                          .order = "forward", .values = "walk",
                          .hwthreads = 64, .sockets = 2, .start = -1, .pid = 0};
    static const struct option longopts[] = {
        {"addr", required_argument, 0, 'a'},        {"hosts", required_argument, 0, 'H'},
        {"hours", required_argument, 0, 'h'},       {"start", required_argument, 0, 's'},
        {"connections", required_argument, 0, 'c'}, {"steps-per-request", required_argument, 0, 'b'},
        {"hwthreads", required_argument, 0, 't'},   {"sockets", required_argument, 0, 'S'},
        {"cluster", required_argument, 0, 'C'},     {"token", required_argument, 0, 'T'},
        {"pid", required_argument, 0, 'p'},         {"quiet", no_argument, 0, 'q'},
        {"order", required_argument, 0, 'o'},
        {"values", required_argument, 0, 'v'},
        {"help", no_argument, 0, '?'},              {0, 0, 0, 0},
    };
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a': o->addr = optarg; break;
        case 'C': o->cluster = optarg; break;
        case 'T': o->token = optarg; break;
        case 'q': o->quiet = true; break;
        case 'o': o->order = optarg; break;
        case 'v': o->values = optarg; break;
        case 'H': if (parse_long(optarg, 1, &o->hosts)) goto bad; break;
        case 'h': if (parse_long(optarg, 1, &o->hours)) goto bad; break;
        case 'c': if (parse_long(optarg, 1, &o->connections)) goto bad; break;
        case 'b': if (parse_long(optarg, 1, &o->steps_per_request)) goto bad; break;
        case 't': if (parse_long(optarg, 0, &o->hwthreads)) goto bad; break;
        case 'S': if (parse_long(optarg, 0, &o->sockets)) goto bad; break;
        case 'p': if (parse_long(optarg, 1, &o->pid)) goto bad; break;
        case 's': if (parse_long(optarg, 1000000000L, &v) || v > 9999999999L) goto bad;
                  o->start = v; break;
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc)
        goto bad;
    if ((o->hours * 3600 / WL_INTERVAL) % o->steps_per_request != 0) {
        fprintf(stderr, "ingest_bench: --steps-per-request must divide the number of timesteps\n");
        return -1;
    }
    if (strcmp(o->values, "walk") && strcmp(o->values, "noise")) {
        fprintf(stderr, "ingest_bench: --values is walk or noise\n");
        return -1;
    }
    if (strcmp(o->order, "forward") && strcmp(o->order, "reverse") && strcmp(o->order, "shuffled")) {
        fprintf(stderr, "ingest_bench: --order is forward, reverse or shuffled\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "ingest_bench: invalid argument\n");
    usage(stderr);
    return -1;
}

/* Appends text to a growing buffer; returns -1 when out of memory. */
static int append(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 1 << 20;
        while (ncap < *len + n)
            ncap *= 2;
        char *p = realloc(*buf, ncap);
        if (!p)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *len, text, n);
    *len += n;
    return 0;
}

/* Series of one host in the order a collector flushes them: the node
 * metrics, each hwthread metric for every hwthread, each socket metric for
 * every socket. Walks follow the metric's profile (workload.h). */
static int build_workload(const struct options *o, struct workload *w)
{
    size_t per_host = WL_NODE_METRICS + WL_HWTHREAD_METRICS * (size_t)o->hwthreads +
                      WL_SOCKET_METRICS * (size_t)o->sockets;
    w->series = per_host * (size_t)o->hosts;
    w->steps = (size_t)o->hours * 3600 / WL_INTERVAL;
    w->prefix_off = malloc((w->series + 1) * sizeof *w->prefix_off);
    w->decimals = malloc(w->series);
    w->values = malloc(w->series * w->steps * sizeof *w->values);
    w->prefixes = NULL;
    if (!w->prefix_off || !w->decimals || !w->values)
        return -1;
    size_t len = 0, cap = 0, k = 0;
    char hname[64], line[256];
    for (long h = 0; h < o->hosts; h++) {
        wl_host_name(hname, sizeof hname, h, o->hosts);
        for (size_t j = 0; j < per_host; j++, k++) {
            int n;
            struct wl_profile prof;
            if (j < WL_NODE_METRICS) {
                n = snprintf(line, sizeof line, "%s,hostname=%s,type=node value=",
                             wl_node_metrics[j], hname);
                prof = wl_node_profiles[j];
            } else if (j < WL_NODE_METRICS + WL_HWTHREAD_METRICS * (size_t)o->hwthreads) {
                size_t x = j - WL_NODE_METRICS, m = x / (size_t)o->hwthreads;
                n = snprintf(line, sizeof line, "%s,hostname=%s,type=hwthread,type-id=%zu value=",
                             wl_hwthread_metrics[m], hname, x % (size_t)o->hwthreads);
                prof = wl_hwthread_profiles[m];
            } else {
                size_t x = j - WL_NODE_METRICS - WL_HWTHREAD_METRICS * (size_t)o->hwthreads;
                n = snprintf(line, sizeof line, "%s,hostname=%s,type=socket,type-id=%zu value=",
                             wl_socket_metrics[x / (size_t)o->sockets], hname,
                             x % (size_t)o->sockets);
                prof = wl_socket_profiles[x / (size_t)o->sockets];
            }
            w->prefix_off[k] = (uint32_t)len;
            if (append(&w->prefixes, &len, &cap, line, (size_t)n))
                return -1;
            if (strcmp(o->values, "noise") == 0) {
                w->decimals[k] = WL_NOISE_DECIMALS;
                wl_noise(k, w->steps, w->values + k, w->series);
            } else {
                w->decimals[k] = (uint8_t)prof.decimals;
                wl_walk(k, prof.decimals, prof.lo, prof.hi, w->steps, w->values + k, w->series);
            }
        }
    }
    w->prefix_off[k] = (uint32_t)len;
    return 0;
}

/* The body of `steps` whole timesteps of all hosts from step `first`. */
static int build_body(const struct workload *w, int64_t start, size_t first, size_t steps,
                      char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    for (size_t st = first; st < first + steps; st++) {
        char ts[16];
        ts[0] = ' ';
        int tl = snprintf(ts + 1, sizeof ts - 1, "%" PRId64 "\n",
                          start + (int64_t)st * WL_INTERVAL) + 1;
        const int32_t *row = w->values + st * w->series;
        for (size_t k = 0; k < w->series; k++) {
            char v[16];
            size_t vl = wl_format(row[k], w->decimals[k], v);
            if (append(buf, len, cap, w->prefixes + w->prefix_off[k],
                       w->prefix_off[k + 1] - w->prefix_off[k]) ||
                append(buf, len, cap, v, vl) || append(buf, len, cap, ts, (size_t)tl))
                return -1;
        }
    }
    return 0;
}

static void record_error(struct shared *sh, const char *fmt, const char *a, size_t alen)
{
    pthread_mutex_lock(&sh->err_lock);
    if (!sh->first_error[0])
        snprintf(sh->first_error, sizeof sh->first_error, fmt, (int)alen, a);
    pthread_mutex_unlock(&sh->err_lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct options *o = sh->opt;
    char err[256], target[512];
    snprintf(target, sizeof target, "/api/write?cluster=%s", o->cluster);
    w->setup_failed = httpc_connect(&w->conn, err, sizeof err) != 0;
    if (w->setup_failed)
        fprintf(stderr, "ingest_bench: %s\n", err);
    pthread_barrier_wait(&sh->ready);
    if (w->setup_failed)
        return NULL;

    for (;;) {
        uint64_t i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->items)
            break;
        size_t spr = (size_t)o->steps_per_request, len;
        if (build_body(sh->wl, o->start, (size_t)sh->order[i] * spr, spr, &w->body, &w->body_cap,
                       &len) != 0) {
            atomic_fetch_add(&sh->failed, 1);
            record_error(sh, "client out of memory%.*s", "", 0);
            break;
        }
        struct httpc_response r;
        double t0 = now_s();
        int rc = httpc_request(&w->conn, "POST", target, sh->headers, w->body, len, &r, err,
                               sizeof err);
        double t1 = now_s();
        w->lat_us[w->nlat++] = (t1 - t0) * 1e6;
        if (rc != 0) {
            atomic_fetch_add(&sh->failed, 1);
            record_error(sh, "transport error: %.*s", err, strlen(err));
        } else if (r.status != 200) {
            atomic_fetch_add(&sh->failed, 1);
            char what[64];
            snprintf(what, sizeof what, "HTTP %d: %%.*s", r.status);
            record_error(sh, what, r.body, r.body_len > 300 ? 300 : r.body_len);
        } else {
            w->ok++;
            w->ok_lines += spr * sh->wl->series;
        }
        uint64_t d = atomic_fetch_add(&sh->done, 1) + 1;
        if (!o->quiet && d % (sh->items / 10 ? sh->items / 10 : 1) == 0)
            fprintf(stderr, "  %3.0f%% of requests sent\n", 100.0 * (double)d / (double)sh->items);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t idx = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[idx < n ? idx : n - 1];
}

static double rusage_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (o.start < 0)
        o.start = wl_default_start((int64_t)time(NULL), o.hours);

    struct shared sh = {.opt = &o};
    pthread_mutex_init(&sh.err_lock, NULL);
    char headers[4096] = "Content-Type: text/plain; charset=utf-8\r\n";
    if (o.token)
        snprintf(headers + strlen(headers), sizeof headers - strlen(headers),
                 "Authorization: Bearer %s\r\n", o.token);
    sh.headers = headers;

    double g0 = now_s();
    static struct workload wl;
    if (build_workload(&o, &wl) != 0) {
        fprintf(stderr, "ingest_bench: out of memory building the workload\n");
        return 1;
    }
    sh.wl = &wl;
    sh.items = wl.steps / (size_t)o.steps_per_request;
    sh.order = malloc(sh.items * sizeof *sh.order);
    if (!sh.order)
        return 1;
    for (uint64_t i = 0; i < sh.items; i++)
        sh.order[i] = strcmp(o.order, "reverse") == 0 ? sh.items - 1 - i : i;
    if (strcmp(o.order, "shuffled") == 0) {
        uint64_t rs = 0x5DEECE66DULL;
        for (uint64_t i = sh.items; i > 1; i--) {
            uint64_t j = rng_next(&rs) % i, t = sh.order[i - 1];
            sh.order[i - 1] = sh.order[j];
            sh.order[j] = t;
        }
    }
    /* the size of one body, for the report */
    char *probe = NULL;
    size_t probe_cap = 0, probe_len = 0;
    if (build_body(&wl, o.start, 0, (size_t)o.steps_per_request, &probe, &probe_cap,
                   &probe_len) != 0)
        return 1;
    free(probe);
    double g1 = now_s();
    uint64_t samples = (uint64_t)wl.series * wl.steps;
    double body_bytes = (double)probe_len * (double)sh.items;
    printf("workload: %ld hosts x %ld h from %" PRId64 ", %zu series at %d s, values %s: "
           "%" PRIu64 " samples in %" PRIu64 " requests of %ld timestep(s) "
           "of all hosts (%zu lines, %.2f MB), order %s, %.2f GB of line protocol\n",
           o.hosts, o.hours, o.start, wl.series, WL_INTERVAL,
           strcmp(o.values, "noise") == 0 ? "float32 noise" : "random walks per metric profile",
           samples, sh.items,
           o.steps_per_request, wl.series * (size_t)o.steps_per_request,
           (double)probe_len / 1e6, o.order, body_bytes / 1e9);
    printf("generated the walks (%.0f MB) in %.2f s\n",
           (double)(samples * sizeof(int32_t)) / 1e6, g1 - g0);

    size_t nconn = (size_t)o.connections;
    struct worker *w = calloc(nconn, sizeof *w);
    if (!w)
        return 1;
    pthread_barrier_init(&sh.ready, NULL, (unsigned)nconn + 1);
    for (size_t i = 0; i < nconn; i++) {
        char err[256];
        w[i].sh = &sh;
        w[i].lat_us = malloc(sizeof(double) * (size_t)sh.items);
        if (!w[i].lat_us || httpc_init(&w[i].conn, o.addr, 120, err, sizeof err) != 0) {
            fprintf(stderr, "ingest_bench: %s\n", w[i].lat_us ? err : "out of memory");
            return 1;
        }
    }
    double cu0 = 0, cs0 = 0, cu1 = 0, cs1 = 0;
    bool have_cpu = o.pid > 0 && procstat_process(o.pid, &cu0, &cs0) == 0;
    if (o.pid > 0 && !have_cpu)
        fprintf(stderr, "ingest_bench: cannot read /proc/%ld/stat; no server CPU figures\n", o.pid);
    struct rusage ru0, ru1;
    enum { MAX_THREADS = 256 };
    static struct procstat_thread th0[MAX_THREADS], th1[MAX_THREADS];
    int nth0 = -1, nth1 = -1;
    double mb0 = 0, mb1 = 0;
    bool have_machine = procstat_machine_busy(&mb0) == 0;

    for (size_t i = 0; i < nconn; i++)
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "ingest_bench: pthread_create failed\n");
            return 1;
        }
    pthread_barrier_wait(&sh.ready);
    if (have_cpu) {
        procstat_process(o.pid, &cu0, &cs0);
        nth0 = procstat_threads(o.pid, th0, MAX_THREADS);
    }
    getrusage(RUSAGE_SELF, &ru0);
    if (have_machine)
        procstat_machine_busy(&mb0);
    double t0 = now_s();
    for (size_t i = 0; i < nconn; i++)
        pthread_join(w[i].tid, NULL);
    double t1 = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    if (have_machine)
        have_machine = procstat_machine_busy(&mb1) == 0;
    if (have_cpu) {
        have_cpu = procstat_process(o.pid, &cu1, &cs1) == 0;
        nth1 = procstat_threads(o.pid, th1, MAX_THREADS);
    }

    size_t setup_failed = 0, nlat = 0;
    uint64_t ok = 0;
    unsigned reconnects = 0;
    for (size_t i = 0; i < nconn; i++) {
        setup_failed += (size_t)w[i].setup_failed;
        nlat += w[i].nlat;
        ok += w[i].ok;
        reconnects += w[i].conn.reconnects;
    }
    if (setup_failed == nconn) {
        fprintf(stderr, "ingest_bench: no connection could be opened\n");
        return 1;
    }
    double *lat = malloc(sizeof(double) * (nlat ? nlat : 1));
    size_t k = 0;
    for (size_t i = 0; i < nconn; i++) {
        memcpy(lat + k, w[i].lat_us, w[i].nlat * sizeof(double));
        k += w[i].nlat;
    }
    qsort(lat, nlat, sizeof(double), cmp_double);

    double wall = t1 - t0;
    uint64_t ok_samples = 0;
    for (size_t i = 0; i < nconn; i++)
        ok_samples += w[i].ok_lines;
    double rate = (double)ok_samples / wall;
    uint64_t failed = atomic_load(&sh.failed);
    printf("ingest: %" PRIu64 " samples accepted in %.2f s wall = %.3f M samples/s "
           "(%.0f MB/s of line protocol), %zu connections\n",
           ok_samples, wall, rate / 1e6, body_bytes * ((double)ok / (double)sh.items) / wall / 1e6,
           nconn - setup_failed);
    printf("requests: %" PRIu64 " ok, %" PRIu64 " failed, %u reconnects; latency p50 %.1f ms, "
           "p99 %.1f ms, max %.1f ms\n",
           ok, failed, reconnects, percentile(lat, nlat, 0.50) / 1e3,
           percentile(lat, nlat, 0.99) / 1e3, nlat ? lat[nlat - 1] / 1e3 : 0.0);
    double client_cpu = rusage_s(&ru1.ru_utime) - rusage_s(&ru0.ru_utime) +
                        rusage_s(&ru1.ru_stime) - rusage_s(&ru0.ru_stime);
    printf("client CPU: %.2f s (%.2f cores)\n", client_cpu, client_cpu / wall);
    double server_cpu = -1;
    if (have_cpu) {
        server_cpu = (cu1 - cu0) + (cs1 - cs0);
        printf("server CPU: %.2f s (user %.2f, sys %.2f) = %.0f ns per sample, %.2f cores\n",
               server_cpu, cu1 - cu0, cs1 - cs0,
               ok_samples ? server_cpu * 1e9 / (double)ok_samples : 0.0, server_cpu / wall);
    }
    if (nth0 >= 0 && nth1 >= 0) {
        /* how the server spread the work over its threads */
        printf("server threads (CPU s during the run):");
        for (int i = 0; i < nth1; i++) {
            double before = 0;
            for (int j = 0; j < nth0; j++)
                if (th0[j].tid == th1[i].tid)
                    before = th0[j].cpu;
            if (th1[i].cpu - before >= 0.005)
                printf(" %s/%ld=%.2f", th1[i].comm, th1[i].tid, th1[i].cpu - before);
        }
        printf("\n");
    }
    double others = -1;
    if (have_machine && have_cpu) {
        others = (mb1 - mb0) - server_cpu - client_cpu;
        if (others < 0)
            others = 0;
        printf("other processes: %.2f cores busy on average during the run (machine has %ld)\n",
               others / wall, sysconf(_SC_NPROCESSORS_ONLN));
    }
    if (failed)
        printf("first error: %s\n", sh.first_error);
    printf("RESULT ingest samples=%" PRIu64 " seconds=%.3f rate=%.0f failed=%" PRIu64
           " req_p50_ms=%.2f req_p99_ms=%.2f client_cpu_s=%.2f",
           ok_samples, wall, rate, failed, percentile(lat, nlat, 0.50) / 1e3,
           percentile(lat, nlat, 0.99) / 1e3, client_cpu);
    if (have_cpu)
        printf(" server_cpu_s=%.2f server_user_s=%.2f server_sys_s=%.2f server_ns_per_sample=%.1f",
               server_cpu, cu1 - cu0, cs1 - cs0,
               ok_samples ? server_cpu * 1e9 / (double)ok_samples : 0.0);
    if (others >= 0)
        printf(" other_cores=%.2f", others / wall);
    printf(" start=%" PRId64 " end=%" PRId64 "\n", o.start,
           o.start + (int64_t)o.hours * 3600);
    return failed || setup_failed ? 1 : 0;
}
