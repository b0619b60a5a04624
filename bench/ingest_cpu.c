/*
 * ingest_cpu — the CPU cost of ingest alone: line protocol to the store, in
 * one process and one thread, without HTTP or other threads, and without
 * the write-ahead log unless --log DIR asks for it (the native log in DIR,
 * fsync "none", as the server writes it). The bodies are the ones
 * bench/ingest_bench sends (the workload of workload.h: whole timesteps of
 * all hosts per request, random-walk values), built before the clock
 * starts.
 *
 * Its figure moves by far less than the end-to-end benchmark's on a noisy
 * machine, and under `valgrind --tool=callgrind` it counts instructions per
 * sample exactly, so a change to the parser or the store's write path can
 * be compared with the commit before it (bench/README.md).
 *
 *   make bench   (builds build/bench/ingest_cpu)
 *   build/bench/ingest_cpu [--hosts N] [--steps N] [--hwthreads N] [--values walk|noise]
 *                          [--log DIR]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ingest.h"
#include "persist/checkpoint.h"
#include "store/store.h"
#include "workload.h"

struct body {
    char *text;
    size_t len, cap;
};

static int body_append(struct body *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t)
            return -1;
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    return 0;
}

/* The series' line prefixes ("<metric>,hostname=<h>[,type=..,type-id=..] value="). */
struct series {
    char prefix[128];
    size_t prefix_len;
    struct wl_profile profile;
};

static size_t make_series(long hosts, size_t hwthreads, size_t sockets, struct series **out)
{
    size_t per_host = WL_NODE_METRICS + WL_HWTHREAD_METRICS * hwthreads + WL_SOCKET_METRICS * sockets;
    struct series *all = calloc((size_t)hosts * per_host, sizeof *all);
    if (!all)
        return 0;
    size_t k = 0;
    char host[32];
    for (long h = 0; h < hosts; h++) {
        wl_host_name(host, sizeof host, h, hosts);
        for (size_t j = 0; j < per_host; j++, k++) {
            struct series *s = &all[k];
            int n;
            if (j < WL_NODE_METRICS) {
                n = snprintf(s->prefix, sizeof s->prefix, "%s,hostname=%s,type=node value=",
                             wl_node_metrics[j], host);
                s->profile = wl_node_profiles[j];
            } else if (j < WL_NODE_METRICS + WL_HWTHREAD_METRICS * hwthreads) {
                size_t x = j - WL_NODE_METRICS, m = x / hwthreads;
                n = snprintf(s->prefix, sizeof s->prefix, "%s,hostname=%s,type=hwthread,type-id=%zu value=",
                             wl_hwthread_metrics[m], host, x % hwthreads);
                s->profile = wl_hwthread_profiles[m];
            } else {
                size_t x = j - WL_NODE_METRICS - WL_HWTHREAD_METRICS * hwthreads;
                n = snprintf(s->prefix, sizeof s->prefix, "%s,hostname=%s,type=socket,type-id=%zu value=",
                             wl_socket_metrics[x / sockets], host, x % sockets);
                s->profile = wl_socket_profiles[x / sockets];
            }
            s->prefix_len = (size_t)n;
        }
    }
    *out = all;
    return k;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long hosts = 64;
    size_t steps = 240, hwthreads = 64, sockets = 2;
    const char *values = "walk", *log_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: ingest_cpu [--hosts N] [--steps N] [--hwthreads N] "
                            "[--values walk|noise] [--log DIR]\n");
            return 2;
        }
        if (strcmp(a, "--hosts") == 0)
            hosts = atol(v);
        else if (strcmp(a, "--steps") == 0)
            steps = (size_t)atol(v);
        else if (strcmp(a, "--hwthreads") == 0)
            hwthreads = (size_t)atol(v);
        else if (strcmp(a, "--values") == 0)
            values = v;
        else if (strcmp(a, "--log") == 0)
            log_dir = v;
        else {
            fprintf(stderr, "ingest_cpu: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (hosts < 1 || steps < 1 || hwthreads < 1 ||
        (strcmp(values, "walk") != 0 && strcmp(values, "noise") != 0)) {
        fprintf(stderr, "ingest_cpu: hosts, steps and hwthreads must be >= 1, values walk or noise\n");
        return 2;
    }

    struct series *series = NULL;
    size_t count = make_series(hosts, hwthreads, sockets, &series);
    int32_t *walk = malloc(count * steps * sizeof *walk);
    struct body *bodies = calloc(steps, sizeof *bodies);
    if (!count || !walk || !bodies) {
        fprintf(stderr, "ingest_cpu: out of memory\n");
        return 1;
    }
    bool noise = strcmp(values, "noise") == 0;
    for (size_t k = 0; k < count; k++) {
        const struct wl_profile *p = &series[k].profile;
        if (noise)
            wl_noise(k, steps, walk + k, count);
        else
            wl_walk(k, p->decimals, p->lo, p->hi, steps, walk + k, count);
    }
    /* timestamps inside [now - steps * 60, now], like the server's window */
    int64_t now = (int64_t)time(NULL) / WL_INTERVAL * WL_INTERVAL;
    int64_t start = now - (int64_t)steps * WL_INTERVAL;
    for (size_t st = 0; st < steps; st++) {
        char ts[32];
        int tl = snprintf(ts, sizeof ts, " %" PRId64 "\n", start + (int64_t)st * WL_INTERVAL);
        for (size_t k = 0; k < count; k++) {
            char v[16];
            size_t vl = wl_format(walk[st * count + k], noise ? WL_NOISE_DECIMALS : series[k].profile.decimals, v);
            if (body_append(&bodies[st], series[k].prefix, series[k].prefix_len) ||
                body_append(&bodies[st], v, vl) || body_append(&bodies[st], ts, (size_t)tl)) {
                fprintf(stderr, "ingest_cpu: out of memory\n");
                return 1;
            }
        }
    }

    const char *names[] = {
        "cpu_load", "mem_used", "mem_cached", "net_bw", "file_bw", "net_bytes_in",
        "net_bytes_out", "nfs4_read", "nfs4_write", "lustre_read_bytes",
        "cpu_user", "flops_any", "flops_dp", "ipc", "mem_bw", "cpu_power",
    };
    struct store_metric metrics[sizeof names / sizeof names[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        metrics[i] = (struct store_metric){ names[i], WL_INTERVAL, CCMS_AGG_AVG };
    struct store *s = NULL;
    if (store_create(metrics, sizeof names / sizeof names[0], &s) != 0) {
        fprintf(stderr, "ingest_cpu: cannot create the store\n");
        return 1;
    }

    /* the native log, as the server writes it (no snapshots: no worker) */
    struct checkpointer *cp = NULL;
    if (log_dir) {
        struct ccms_config cfg = {
            .checkpoint_dir = (char *)log_dir,
            .file_format = "wal",
            .retention_seconds = (int64_t)steps * WL_INTERVAL + 3600,
            .checkpoint_interval_seconds = 3600,
            .fsync = CCMS_FSYNC_NONE,
        };
        if (checkpointer_create(s, &cfg, &cp) != 0) {
            fprintf(stderr, "ingest_cpu: cannot use %s for the log\n", log_dir);
            return 1;
        }
    }

    uint64_t accepted = 0, lines = 0;
    double t0 = now_seconds();
    for (size_t st = 0; st < steps; st++) {
        struct ingest_options o = {
            .default_cluster = "bench",
            .precision = INGEST_PRECISION_S,
            .now = now,
            .max_line_length = 1 << 20,
            .future_tolerance = -1,
            .checkpointer = cp,
        };
        struct ingest_batch *b = NULL;
        if (ingest_batch_new(s, &o, &b) != 0)
            return 1;
        /* in the pieces an HTTP body arrives in */
        for (size_t off = 0; off < bodies[st].len; off += 1 << 16) {
            size_t n = bodies[st].len - off < (1 << 16) ? bodies[st].len - off : 1 << 16;
            if (ingest_batch_feed(b, bodies[st].text + off, n) != 0)
                return 1;
        }
        if (ingest_batch_finish(b) != 0)
            return 1;
        struct ingest_result r;
        ingest_batch_result(b, &r);
        accepted += r.accepted;
        lines += r.lines;
        ingest_batch_free(b);
    }
    double seconds = now_seconds() - t0;
    struct store_stats stats;
    store_get_stats(s, &stats);
    printf("RESULT ingest_cpu samples=%" PRIu64 " lines=%" PRIu64 " seconds=%.3f ns_per_sample=%.1f "
           "store_bytes_per_sample=%.3f\n",
           accepted, lines, seconds, accepted ? seconds * 1e9 / (double)accepted : 0.0,
           accepted ? (double)stats.bytes / (double)accepted : 0.0);
    store_destroy(s);
    checkpointer_destroy(cp);
    for (size_t st = 0; st < steps; st++)
        free(bodies[st].text);
    free(bodies);
    free(walk);
    free(series);
    return accepted == (uint64_t)count * steps ? 0 : 1;
}
