/*
 * nats_bench — NATS ingest throughput of cc-metric-store, for the same
 * workload as ingest_bench (workload.h), so the two figures sit side by side.
 *
 * Publishes the workload with cnats as line-protocol messages: one message
 * = all series of one host for --block-minutes minutes (default 1 minute,
 * 270 lines or about 20 KB: what a collector publishes each interval; the
 * server's max_payload, 1 MB by default, caps a message at ~45 minutes).
 * Messages go out block by block (all hosts for block 0, then block 1, ...)
 * on --publishers connections; a host always uses the same connection, so
 * its messages stay in order. The lines carry no cluster tag: the store's
 * subscription to --subject must have cluster-tag "bench" (or whatever the
 * queries are to use).
 *
 * The clock runs from the first publish until GET /api/status on the store
 * (--addr) shows ingest.accepted grown by the number of samples published.
 * NATS has no back-pressure, so the publishers keep at most --window
 * messages ahead of the store's nats.messages (decoded) counter; any growth
 * of nats.dropped fails the run. Templates are built once per host and only
 * their fixed-width timestamps are rewritten before each publish.
 *
 * JetStream catch-up (--stream NAME): the messages go into a stream (created
 * with --subject as its only subject when missing) with JetStream's
 * asynchronous publish, every one acknowledged by the stream.
 *   --fill-only   publishes the workload into the stream and exits;
 *   --catch-up    publishes nothing: a store started on that backlog (empty
 *                 otherwise, its subscription a durable consumer of the
 *                 stream) is watched from its first /api/status answer
 *                 until it has accepted every sample of the workload.
 * bench/jetstream_catchup.sh runs the two around a store.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "httpc.h"
#include "procstat.h"
#include "workload.h"

struct options {
    const char *addr, *url, *subject, *stream;
    bool fill_only, catch_up;
    long hosts, hours, publishers, block_minutes, hwthreads, sockets, window, pid;
    int64_t start;
};

struct host_template {
    char *body;
    size_t len;
    uint32_t *ts_off;       /* offset of every line's 10-digit timestamp */
};

struct shared {
    const struct options *opt;
    struct host_template *hosts;
    size_t lines_per_minute;
    long blocks;
    _Atomic uint64_t published;
    _Atomic uint64_t allowed;       /* publish while published < allowed */
    _Atomic bool abort;
};

struct publisher {
    pthread_t tid;
    struct shared *sh;
    long index;
    natsConnection *nc;
    jsCtx *js;              /* --stream only */
    natsStatus status;
};

struct status_counts {
    uint64_t accepted, messages, dropped;
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
            "usage: nats_bench [options]\n"
            "  --addr HOST:PORT     the store's HTTP address, for /api/status (default 127.0.0.1:8082)\n"
            "  --nats URL           NATS server (default nats://127.0.0.1:4222)\n"
            "  --subject SUBJECT    subject to publish on (default hpc-nats)\n"
            "  --hosts N            hosts (default 256)\n"
            "  --hours N            hours of data per host (default 24)\n"
            "  --start UNIX_S       time of the first sample (default now - hours, on the 60 s grid)\n"
            "  --publishers N       NATS connections = publisher threads (default 2)\n"
            "  --block-minutes N    minutes of one host per message (default 1)\n"
            "  --hwthreads N        hwthreads per host (default 64)\n"
            "  --sockets N          sockets per host (default 2)\n"
            "  --window N           messages published ahead of the store (default: 2000,\n"
            "                       at most 256 MB; the store drops beyond 1 GiB)\n"
            "  --pid PID            server process: report its CPU time per sample\n"
            "  --stream NAME        publish into this JetStream stream (created if missing)\n"
            "  --fill-only          with --stream: publish the workload and exit\n"
            "  --catch-up           with --stream: publish nothing, time a store consuming\n"
            "                       the stream's backlog\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.addr = "127.0.0.1:8082", .url = "nats://127.0.0.1:4222",
                          .subject = "hpc-nats", .hosts = 256, .hours = 24, .publishers = 2,
                          .block_minutes = 1, .hwthreads = 64, .sockets = 2, .window = 0,
                          .start = -1};
    static const struct option longopts[] = {
        {"addr", required_argument, 0, 'a'},       {"nats", required_argument, 0, 'n'},
        {"subject", required_argument, 0, 'j'},    {"hosts", required_argument, 0, 'H'},
        {"hours", required_argument, 0, 'h'},      {"start", required_argument, 0, 's'},
        {"publishers", required_argument, 0, 'P'}, {"block-minutes", required_argument, 0, 'b'},
        {"hwthreads", required_argument, 0, 't'},  {"sockets", required_argument, 0, 'S'},
        {"window", required_argument, 0, 'w'},     {"pid", required_argument, 0, 'p'},
        {"stream", required_argument, 0, 'J'},     {"fill-only", no_argument, 0, 'F'},
        {"catch-up", no_argument, 0, 'C'},
        {"help", no_argument, 0, '?'},             {0, 0, 0, 0},
    };
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a': o->addr = optarg; break;
        case 'n': o->url = optarg; break;
        case 'j': o->subject = optarg; break;
        case 'H': if (parse_long(optarg, 1, &o->hosts)) goto bad; break;
        case 'h': if (parse_long(optarg, 1, &o->hours)) goto bad; break;
        case 'P': if (parse_long(optarg, 1, &o->publishers)) goto bad; break;
        case 'b': if (parse_long(optarg, 1, &o->block_minutes)) goto bad; break;
        case 't': if (parse_long(optarg, 0, &o->hwthreads)) goto bad; break;
        case 'S': if (parse_long(optarg, 0, &o->sockets)) goto bad; break;
        case 'w': if (parse_long(optarg, 1, &o->window)) goto bad; break;
        case 'p': if (parse_long(optarg, 1, &o->pid)) goto bad; break;
        case 'J': o->stream = optarg; break;
        case 'F': o->fill_only = true; break;
        case 'C': o->catch_up = true; break;
        case 's': if (parse_long(optarg, 1000000000L, &v) || v > 9999999999L) goto bad;
                  o->start = v; break;
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc)
        goto bad;
    if ((o->fill_only || o->catch_up) && (o->stream == NULL || (o->fill_only && o->catch_up))) {
        fprintf(stderr, "nats_bench: --fill-only or --catch-up need --stream, not both\n");
        return -1;
    }
    if ((o->hours * 60) % o->block_minutes != 0) {
        fprintf(stderr, "nats_bench: --block-minutes must divide hours*60\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "nats_bench: invalid argument\n");
    usage(stderr);
    return -1;
}

/* Appends "<prefix> value=<v> 0000000000\n" (room reserved by the caller). */
static void add_line(struct host_template *t, const char *prefix, double v, int decimals,
                     size_t *nts)
{
    int n = sprintf(t->body + t->len, "%s value=%.*f ", prefix, decimals, v);
    t->len += (size_t)n;
    t->ts_off[(*nts)++] = (uint32_t)t->len;
    memcpy(t->body + t->len, "0000000000\n", 11);
    t->len += 11;
}

/* One host's message for block_minutes minutes, minute-major, the same
 * lines in the same order as ingest_bench's request bodies. */
static int build_template(const struct options *o, long host, size_t lines_per_minute,
                          struct host_template *t)
{
    char hname[64], prefix[256];
    size_t nlines = lines_per_minute * (size_t)o->block_minutes, nts = 0;
    wl_host_name(hname, sizeof hname, host, o->hosts);
    t->ts_off = malloc(nlines * sizeof *t->ts_off);
    t->body = malloc(nlines * 160);
    if (!t->ts_off || !t->body)
        return -1;
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)host * 0xBF58476D1CE4E5B9ULL) ^ 1;
    for (long m = 0; m < o->block_minutes; m++) {
        for (size_t i = 0; i < WL_NODE_METRICS; i++) {
            snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=node", wl_node_metrics[i], hname);
            add_line(t, prefix, rng_unit(&rng) * 1000.0, 2, &nts);
        }
        for (size_t i = 0; i < WL_HWTHREAD_METRICS; i++)
            for (long c = 0; c < o->hwthreads; c++) {
                snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=hwthread,type-id=%ld",
                         wl_hwthread_metrics[i], hname, c);
                add_line(t, prefix, rng_unit(&rng) * (i == 3 ? 3.0 : 100.0), 3, &nts);
            }
        for (size_t i = 0; i < WL_SOCKET_METRICS; i++)
            for (long s = 0; s < o->sockets; s++) {
                snprintf(prefix, sizeof prefix, "%s,hostname=%s,type=socket,type-id=%ld",
                         wl_socket_metrics[i], hname, s);
                add_line(t, prefix, rng_unit(&rng) * 200.0, 2, &nts);
            }
    }
    return 0;
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

/* Waits until the window lets one more message out. false = aborted. */
static bool wait_window(struct shared *sh)
{
    while (atomic_load(&sh->published) >= atomic_load(&sh->allowed)) {
        if (atomic_load(&sh->abort))
            return false;
        nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    return true;
}

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    struct shared *sh = p->sh;
    const struct options *o = sh->opt;
    for (long block = 0; block < sh->blocks && p->status == NATS_OK; block++) {
        int64_t first_ts = o->start + (int64_t)block * o->block_minutes * WL_INTERVAL;
        for (long h = p->index; h < o->hosts && p->status == NATS_OK; h += o->publishers) {
            if (p->js == NULL && !wait_window(sh))
                return NULL;
            struct host_template *t = &sh->hosts[h];
            patch_timestamps(t, sh->lines_per_minute, o->block_minutes, first_ts);
            if (p->js != NULL)      /* copies the body; blocks while too many are unacked */
                p->status = js_PublishAsync(p->js, o->subject, t->body, (int)t->len, NULL);
            else
                p->status = natsConnection_Publish(p->nc, o->subject, t->body, (int)t->len);
            atomic_fetch_add(&sh->published, 1);
        }
    }
    if (p->status == NATS_OK && p->js != NULL) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 120000;
        p->status = js_PublishAsyncComplete(p->js, &po);
    }
    if (p->status == NATS_OK)
        p->status = natsConnection_FlushTimeout(p->nc, 30000);
    return NULL;
}

/* The number after "key": inside the object that follows "section":{. */
static int json_u64(const char *body, const char *section, const char *key, uint64_t *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":{", section);
    const char *s = strstr(body, pat);
    const char *end = s ? strchr(s, '}') : NULL;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *k = s ? strstr(s, pat) : NULL;
    if (!k || k > end)
        return -1;
    *out = strtoull(k + strlen(pat), NULL, 10);
    return 0;
}

static int get_status(struct httpc *c, struct status_counts *st)
{
    char err[256], body[4096];
    struct httpc_response r;
    if (httpc_request(c, "GET", "/api/status", NULL, NULL, 0, &r, err, sizeof err) != 0 ||
        r.status != 200 || r.body_len >= sizeof body) {
        fprintf(stderr, "nats_bench: GET /api/status failed: %s\n", err);
        return -1;
    }
    memcpy(body, r.body, r.body_len);
    body[r.body_len] = '\0';
    if (json_u64(body, "ingest", "accepted", &st->accepted) != 0 ||
        json_u64(body, "nats", "messages", &st->messages) != 0 ||
        json_u64(body, "nats", "dropped", &st->dropped) != 0) {
        fprintf(stderr, "nats_bench: /api/status has no \"nats\" counters: is NATS configured?\n");
        return -1;
    }
    return 0;
}

static int connect_publishers(const struct options *o, struct shared *sh, struct publisher *p)
{
    for (long i = 0; i < o->publishers; i++) {
        natsOptions *no = NULL;
        natsStatus s = natsOptions_Create(&no);
        if (s == NATS_OK)
            s = natsOptions_SetURL(no, o->url);
        if (s == NATS_OK)
            s = natsOptions_SetIOBufSize(no, 1 << 20);
        if (s == NATS_OK)
            s = natsConnection_Connect(&p[i].nc, no);
        natsOptions_Destroy(no);
        if (s != NATS_OK) {
            fprintf(stderr, "nats_bench: cannot connect to %s: %s\n", o->url,
                    nats_GetLastError(NULL));
            return -1;
        }
        if ((int64_t)sh->hosts[0].len > natsConnection_GetMaxPayload(p[i].nc)) {
            fprintf(stderr, "nats_bench: a message of %zu bytes exceeds the server's max_payload "
                    "%" PRId64 ": use a smaller --block-minutes\n", sh->hosts[0].len,
                    natsConnection_GetMaxPayload(p[i].nc));
            return -1;
        }
        p[i] = (struct publisher){.sh = sh, .index = i, .nc = p[i].nc, .status = NATS_OK};
        if (o->stream != NULL) {
            jsOptions jo;
            jsOptions_Init(&jo);
            jo.PublishAsync.MaxPending = 1024;
            s = natsConnection_JetStream(&p[i].js, p[i].nc, &jo);
            if (s != NATS_OK) {
                fprintf(stderr, "nats_bench: no JetStream context: %s\n", nats_GetLastError(NULL));
                return -1;
            }
        }
    }
    return 0;
}

/* The stream with --subject as its subject, created when missing. */
static int ensure_stream(const struct options *o, natsConnection *nc)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK && js_GetStreamInfo(&si, js, o->stream, NULL, &jerr) != NATS_OK) {
        jsStreamConfig sc;
        const char *subjects[] = {o->subject};
        jsStreamConfig_Init(&sc);
        sc.Name = o->stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        s = js_AddStream(&si, js, &sc, NULL, &jerr);
    }
    if (s != NATS_OK)
        fprintf(stderr, "nats_bench: cannot create stream %s: %s (JetStream error %d)\n",
                o->stream, nats_GetLastError(NULL), (int)jerr);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return s == NATS_OK ? 0 : -1;
}

/* Polls the store until it has accepted `samples` more; moves the window.
 * Returns the seconds since t0, or -1 on a drop, a failure or a stall. */
static double watch_store(struct httpc *c, struct shared *sh, const struct status_counts *base,
                          uint64_t samples, double t0)
{
    struct status_counts st = *base;
    double last_progress = now_s();
    uint64_t last_accepted = base->accepted;
    for (;;) {
        if (get_status(c, &st) != 0)
            return -1;
        double t = now_s();
        if (st.accepted - base->accepted >= samples)
            return t - t0;
        if (st.dropped > base->dropped) {
            fprintf(stderr, "nats_bench: the store dropped %" PRIu64 " messages\n",
                    st.dropped - base->dropped);
            return -1;
        }
        atomic_store(&sh->allowed, st.messages - base->messages + (uint64_t)sh->opt->window);
        if (st.accepted != last_accepted) {
            last_accepted = st.accepted;
            last_progress = t;
        } else if (t - last_progress > 60) {
            fprintf(stderr, "nats_bench: no progress for 60 s (%" PRIu64 " of %" PRIu64
                    " samples accepted)\n", st.accepted - base->accepted, samples);
            return -1;
        }
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
}

static int build_workload(const struct options *o, struct shared *sh, size_t *bytes)
{
    sh->hosts = calloc((size_t)o->hosts, sizeof *sh->hosts);
    if (!sh->hosts)
        return -1;
    *bytes = 0;
    for (long h = 0; h < o->hosts; h++) {
        if (build_template(o, h, sh->lines_per_minute, &sh->hosts[h]) != 0)
            return -1;
        *bytes += sh->hosts[h].len;
    }
    return 0;
}

static void report(const struct options *o, const struct shared *sh, uint64_t samples,
                   double bytes, double wall, double server_cpu)
{
    uint64_t msgs = (uint64_t)sh->blocks * (uint64_t)o->hosts;
    printf("nats ingest: %" PRIu64 " samples stored in %.2f s wall = %.3f M samples/s "
           "(%.0f MB/s of line protocol), %" PRIu64 " messages of %zu lines, %ld publishers\n",
           samples, wall, (double)samples / wall / 1e6, bytes / wall / 1e6, msgs,
           sh->lines_per_minute * (size_t)o->block_minutes, o->publishers);
    if (server_cpu >= 0)
        printf("server CPU: %.2f s = %.0f ns per sample, %.2f cores\n", server_cpu,
               server_cpu * 1e9 / (double)samples, server_cpu / wall);
    printf("RESULT nats_ingest samples=%" PRIu64 " seconds=%.3f rate=%.0f messages=%" PRIu64,
           samples, wall, (double)samples / wall, msgs);
    if (server_cpu >= 0)
        printf(" server_cpu_s=%.2f server_ns_per_sample=%.1f", server_cpu,
               server_cpu * 1e9 / (double)samples);
    printf(" start=%" PRId64 " end=%" PRId64 "\n", o->start, o->start + (int64_t)o->hours * 3600);
}

/* Waits up to 60 s for the store to answer /api/status (--catch-up starts
 * right after the store does). */
static int first_status(struct httpc *c, struct status_counts *st)
{
    for (int i = 0; i < 600; i++) {
        char err[256];
        struct httpc_response r;
        if (httpc_request(c, "GET", "/api/healthcheck", NULL, NULL, 0, &r, err, sizeof err) == 0)
            return get_status(c, st);
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    fprintf(stderr, "nats_bench: the store did not answer within 60 s\n");
    return -1;
}

static int join_publishers(const struct options *o, struct publisher *pub)
{
    int failed = 0;
    for (long i = 0; i < o->publishers; i++) {
        pthread_join(pub[i].tid, NULL);
        if (pub[i].status != NATS_OK) {
            fprintf(stderr, "nats_bench: publishing failed: %s (%s)\n",
                    natsStatus_GetText(pub[i].status), nats_GetLastError(NULL));
            failed = 1;
        }
        jsCtx_Destroy(pub[i].js);
        natsConnection_Destroy(pub[i].nc);
    }
    return failed;
}

/* --fill-only: the workload into the stream, as fast as it acknowledges. */
static int fill_stream(const struct options *o, struct shared *sh, struct publisher *pub,
                       uint64_t samples, size_t template_bytes)
{
    if (connect_publishers(o, sh, pub) != 0 || ensure_stream(o, pub[0].nc) != 0)
        return 1;
    double t0 = now_s();
    for (long i = 0; i < o->publishers; i++)
        if (pthread_create(&pub[i].tid, NULL, publisher_main, &pub[i]) != 0)
            return 1;
    int failed = join_publishers(o, pub);
    double wall = now_s() - t0;
    if (!failed)
        printf("stream %s filled: %" PRIu64 " messages, %" PRIu64 " samples, %.0f MB in %.2f s\n"
               "RESULT jetstream_fill messages=%" PRIu64 " samples=%" PRIu64 " seconds=%.3f "
               "start=%" PRId64 "\n", o->stream, atomic_load(&sh->published), samples,
               (double)template_bytes * (double)sh->blocks / 1e6, wall,
               atomic_load(&sh->published), samples, wall, o->start);
    return failed;
}

/* --catch-up: the store consumes the backlog; timed from its first answer. */
static int time_catch_up(const struct options *o, struct shared *sh, uint64_t samples)
{
    struct httpc c;
    struct status_counts base;
    char err[256];
    if (httpc_init(&c, o->addr, 30, err, sizeof err) != 0) {
        fprintf(stderr, "nats_bench: %s\n", err);
        return 1;
    }
    if (first_status(&c, &base) != 0)
        return 1;
    if (base.accepted >= samples) {
        fprintf(stderr, "nats_bench: the store had caught up before the first look\n");
        return 1;
    }
    double cu0 = 0, cs0 = 0, cu1 = 0, cs1 = 0;
    bool have_cpu = o->pid > 0 && procstat_process(o->pid, &cu0, &cs0) == 0;
    uint64_t left = samples - base.accepted;
    atomic_store(&sh->allowed, UINT64_MAX / 2);
    double wall = watch_store(&c, sh, &base, left, now_s());
    have_cpu = have_cpu && procstat_process(o->pid, &cu1, &cs1) == 0;
    if (wall < 0)
        return 1;
    printf("catch-up: %" PRIu64 " samples (of %" PRIu64 "; %" PRIu64 " were in before the first "
           "look) in %.2f s = %.3f M samples/s\n", left, samples, base.accepted, wall,
           (double)left / wall / 1e6);
    if (have_cpu)
        printf("server CPU: %.2f s = %.0f ns per sample, %.2f cores\n", cu1 - cu0 + cs1 - cs0,
               (cu1 - cu0 + cs1 - cs0) * 1e9 / (double)left, (cu1 - cu0 + cs1 - cs0) / wall);
    printf("RESULT jetstream_catch_up samples=%" PRIu64 " seconds=%.3f rate=%.0f", left, wall,
           (double)left / wall);
    if (have_cpu)
        printf(" server_ns_per_sample=%.1f", (cu1 - cu0 + cs1 - cs0) * 1e9 / (double)left);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct shared sh = {0};
    struct httpc status_conn;
    struct status_counts base;
    char err[256];
    size_t template_bytes = 0;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (o.start < 0)
        o.start = wl_default_start((int64_t)time(NULL), o.hours);
    sh.opt = &o;
    sh.lines_per_minute = WL_NODE_METRICS + WL_HWTHREAD_METRICS * (size_t)o.hwthreads +
                          WL_SOCKET_METRICS * (size_t)o.sockets;
    sh.blocks = o.hours * 60 / o.block_minutes;
    uint64_t samples = (uint64_t)sh.blocks * (uint64_t)o.hosts * sh.lines_per_minute *
                       (uint64_t)o.block_minutes;
    if (o.catch_up)
        return time_catch_up(&o, &sh, samples);
    struct publisher *pub = calloc((size_t)o.publishers, sizeof *pub);
    if (!pub || build_workload(&o, &sh, &template_bytes) != 0) {
        fprintf(stderr, "nats_bench: out of memory building the workload\n");
        return 1;
    }
    if (o.window == 0) {
        long per_msg = (long)(template_bytes / (size_t)o.hosts) + 1;
        o.window = (256L << 20) / per_msg < 2000 ? (256L << 20) / per_msg + 1 : 2000;
    }
    printf("workload: %ld hosts x %ld h from %" PRId64 ", %zu series/host at %d s: %" PRIu64
           " samples in messages of %.1f KB\n", o.hosts, o.hours, o.start, sh.lines_per_minute,
           WL_INTERVAL, samples, (double)template_bytes / (double)o.hosts / 1e3);
    if (o.fill_only)
        return fill_stream(&o, &sh, pub, samples, template_bytes);
    if (httpc_init(&status_conn, o.addr, 30, err, sizeof err) != 0) {
        fprintf(stderr, "nats_bench: %s\n", err);
        return 1;
    }
    if (get_status(&status_conn, &base) != 0 || connect_publishers(&o, &sh, pub) != 0)
        return 1;
    if (o.stream != NULL && ensure_stream(&o, pub[0].nc) != 0)
        return 1;
    atomic_store(&sh.allowed, (uint64_t)o.window);
    double cu0 = 0, cs0 = 0, cu1 = 0, cs1 = 0;
    bool have_cpu = o.pid > 0 && procstat_process(o.pid, &cu0, &cs0) == 0;
    double t0 = now_s();
    for (long i = 0; i < o.publishers; i++)
        if (pthread_create(&pub[i].tid, NULL, publisher_main, &pub[i]) != 0)
            return 1;
    double wall = watch_store(&status_conn, &sh, &base, samples, t0);
    have_cpu = have_cpu && procstat_process(o.pid, &cu1, &cs1) == 0;
    atomic_store(&sh.abort, true);
    int failed = wall < 0;
    failed |= join_publishers(&o, pub);
    if (!failed)
        report(&o, &sh, samples, (double)template_bytes * (double)sh.blocks, wall,
               have_cpu ? (cu1 - cu0) + (cs1 - cs0) : -1);
    return failed;
}
