/*
 * ingest_bench — HTTP ingest throughput of cc-metric-store.
 *
 * Builds the workload of workload.h in memory as line-protocol request
 * bodies (one body = all series of one host for one time block, by default
 * 60 minutes = 16,200 lines), then POSTs them to /api/write with N threads,
 * each holding one keep-alive HTTP/1.1 connection. Requests are ordered by
 * time block (all hosts for block 0, then block 1, ...) as collectors would
 * send them. Reports samples/s wall-clock, request latency, and - with
 * --pid - the server's CPU time per sample from /proc/<pid>/stat.
 *
 * The bodies of one host differ between blocks only in their timestamps, so
 * one template per host is generated up front (values vary by series and
 * minute) and its fixed-width timestamps are rewritten in place before each
 * send; a per-host mutex keeps two senders off the same template. That costs
 * ~10 byte copies per line on the client instead of gigabytes of memory.
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
    long hosts, hours, connections, block_minutes, hwthreads, sockets;
    int64_t start;
    long pid;
    bool quiet;
};

struct host_template {
    pthread_mutex_t lock;
    char *body;
    size_t len;
    uint32_t *ts_off;       /* offset of every line's 10-digit timestamp */
};

struct shared {
    const struct options *opt;
    struct host_template *hosts;
    size_t lines_per_minute;
    long blocks;
    uint64_t items;
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
            "  --block-minutes N    minutes of one host per request (default 60)\n"
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
                          .hours = 24, .connections = 4, .block_minutes = 60,
                          .hwthreads = 64, .sockets = 2, .start = -1, .pid = 0};
    static const struct option longopts[] = {
        {"addr", required_argument, 0, 'a'},        {"hosts", required_argument, 0, 'H'},
        {"hours", required_argument, 0, 'h'},       {"start", required_argument, 0, 's'},
        {"connections", required_argument, 0, 'c'}, {"block-minutes", required_argument, 0, 'b'},
        {"hwthreads", required_argument, 0, 't'},   {"sockets", required_argument, 0, 'S'},
        {"cluster", required_argument, 0, 'C'},     {"token", required_argument, 0, 'T'},
        {"pid", required_argument, 0, 'p'},         {"quiet", no_argument, 0, 'q'},
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
        case 'H': if (parse_long(optarg, 1, &o->hosts)) goto bad; break;
        case 'h': if (parse_long(optarg, 1, &o->hours)) goto bad; break;
        case 'c': if (parse_long(optarg, 1, &o->connections)) goto bad; break;
        case 'b': if (parse_long(optarg, 1, &o->block_minutes)) goto bad; break;
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
    if ((o->hours * 60) % o->block_minutes != 0) {
        fprintf(stderr, "ingest_bench: --block-minutes must divide hours*60\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "ingest_bench: invalid argument\n");
    usage(stderr);
    return -1;
}

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 1 << 20;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *n = realloc(b->p, ncap);
    if (!n)
        return -1;
    b->p = n;
    b->cap = ncap;
    return 0;
}

/* Appends "<prefix> value=<v> 0000000000\n" and records the timestamp offset. */
static int add_line(struct buf *b, const char *prefix, size_t plen, const char *value,
                    uint32_t *ts_off, size_t *nts)
{
    size_t vlen = strlen(value);
    if (buf_reserve(b, plen + 7 + vlen + 12))
        return -1;
    memcpy(b->p + b->len, prefix, plen);
    b->len += plen;
    memcpy(b->p + b->len, " value=", 7);
    b->len += 7;
    memcpy(b->p + b->len, value, vlen);
    b->len += vlen;
    b->p[b->len++] = ' ';
    ts_off[(*nts)++] = (uint32_t)b->len;
    memcpy(b->p + b->len, "0000000000\n", 11);
    b->len += 11;
    return 0;
}

/* One host's body for block_minutes minutes, minute-major like a collector's
 * flush: per minute the node metrics, then each hwthread metric for every
 * hwthread, then each socket metric for every socket. */
static int build_template(const struct options *o, long host, size_t lines_per_minute,
                          struct host_template *t)
{
    char hname[64], prefix[256], value[64];
    wl_host_name(hname, sizeof hname, host, o->hosts);
    size_t nlines = lines_per_minute * (size_t)o->block_minutes;
    t->ts_off = malloc(nlines * sizeof *t->ts_off);
    if (!t->ts_off)
        return -1;
    struct buf b = {0};
    size_t nts = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)host * 0xBF58476D1CE4E5B9ULL) ^ 1;
    for (long m = 0; m < o->block_minutes; m++) {
        for (size_t i = 0; i < WL_NODE_METRICS; i++) {
            int pl = snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=node",
                              wl_node_metrics[i], hname);
            snprintf(value, sizeof value, "%.2f", rng_unit(&rng) * 1000.0);
            if (add_line(&b, prefix, (size_t)pl, value, t->ts_off, &nts))
                return -1;
        }
        for (size_t i = 0; i < WL_HWTHREAD_METRICS; i++) {
            for (long c = 0; c < o->hwthreads; c++) {
                int pl = snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=hwthread,type-id=%ld",
                                  wl_hwthread_metrics[i], hname, c);
                snprintf(value, sizeof value, "%.3f", rng_unit(&rng) * (i == 3 ? 3.0 : 100.0));
                if (add_line(&b, prefix, (size_t)pl, value, t->ts_off, &nts))
                    return -1;
            }
        }
        for (size_t i = 0; i < WL_SOCKET_METRICS; i++) {
            for (long s = 0; s < o->sockets; s++) {
                int pl = snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=socket,type-id=%ld",
                                  wl_socket_metrics[i], hname, s);
                snprintf(value, sizeof value, "%.2f", rng_unit(&rng) * 200.0);
                if (add_line(&b, prefix, (size_t)pl, value, t->ts_off, &nts))
                    return -1;
            }
        }
    }
    if (b.len > UINT32_MAX)
        return -1;
    t->body = b.p;
    t->len = b.len;
    return pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -1;
}

static void patch_timestamps(struct host_template *t, size_t lines_per_minute, long minutes,
                             int64_t first_ts)
{
    char digits[16];
    for (long m = 0; m < minutes; m++) {
        snprintf(digits, sizeof digits, "%010" PRId64, first_ts + (int64_t)m * WL_INTERVAL);
        const uint32_t *off = t->ts_off + (size_t)m * lines_per_minute;
        for (size_t j = 0; j < lines_per_minute; j++)
            memcpy(t->body + off[j], digits, 10);
    }
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
        long block = (long)(i / (uint64_t)o->hosts);
        long host = (long)(i % (uint64_t)o->hosts);
        struct host_template *t = &sh->hosts[host];
        pthread_mutex_lock(&t->lock);
        patch_timestamps(t, sh->lines_per_minute, o->block_minutes,
                         o->start + (int64_t)block * o->block_minutes * WL_INTERVAL);
        struct httpc_response r;
        double t0 = now_s();
        int rc = httpc_request(&w->conn, "POST", target, sh->headers, t->body, t->len, &r, err,
                               sizeof err);
        double t1 = now_s();
        pthread_mutex_unlock(&t->lock);
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
    sh.lines_per_minute = WL_NODE_METRICS + WL_HWTHREAD_METRICS * (size_t)o.hwthreads +
                          WL_SOCKET_METRICS * (size_t)o.sockets;
    sh.blocks = o.hours * 60 / o.block_minutes;
    sh.items = (uint64_t)sh.blocks * (uint64_t)o.hosts;
    pthread_mutex_init(&sh.err_lock, NULL);
    char headers[4096] = "Content-Type: text/plain; charset=utf-8\r\n";
    if (o.token)
        snprintf(headers + strlen(headers), sizeof headers - strlen(headers),
                 "Authorization: Bearer %s\r\n", o.token);
    sh.headers = headers;

    double g0 = now_s();
    sh.hosts = calloc((size_t)o.hosts, sizeof *sh.hosts);
    if (!sh.hosts) {
        fprintf(stderr, "ingest_bench: out of memory\n");
        return 1;
    }
    size_t template_bytes = 0;
    for (long h = 0; h < o.hosts; h++) {
        if (build_template(&o, h, sh.lines_per_minute, &sh.hosts[h]) != 0) {
            fprintf(stderr, "ingest_bench: out of memory building the workload\n");
            return 1;
        }
        template_bytes += sh.hosts[h].len;
    }
    double g1 = now_s();
    uint64_t samples = sh.items * sh.lines_per_minute * (uint64_t)o.block_minutes;
    double body_bytes = (double)template_bytes * (double)sh.blocks;
    printf("workload: %ld hosts x %ld h from %" PRId64 ", %zu series/host at %d s: "
           "%" PRIu64 " samples in %" PRIu64 " requests of %zu lines (%.2f MB avg), "
           "%.2f GB of line protocol\n",
           o.hosts, o.hours, o.start, sh.lines_per_minute, WL_INTERVAL, samples, sh.items,
           sh.lines_per_minute * (size_t)o.block_minutes,
           (double)template_bytes / (double)o.hosts / 1e6, body_bytes / 1e9);
    printf("generated %.0f MB of templates in %.2f s\n", (double)template_bytes / 1e6, g1 - g0);

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
    uint64_t ok_samples = ok * sh.lines_per_minute * (uint64_t)o.block_minutes;
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
