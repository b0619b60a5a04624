/*
 * libFuzzer target for ingest.c, model-based: the input is turned into
 * line-protocol lines over a small alphabet (4 hosts; node, 40 hwthreads,
 * two socket levels with and without core subtypes, and two type names
 * that share their first and last 8 bytes, which the child cache maps to
 * one slot; 2 metrics; 16 timesteps), sent in several batches and, within
 * a batch, in chunks of sizes the input chooses (the host lock is released
 * between chunks). A plain array records the last value of every sample.
 * Afterwards every series must read back exactly like the array (levels
 * with children only where they hold a series of their own): a level
 * confused with another by the child cache, a stale cache entry or a lost
 * sample shows up as a wrong value. Between batches the input may free
 * everything of a host: a level removed but still remembered by the host
 * (its tag sections, tag_cache.h) shows up under ASan.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "store/store.h"

#define NOW 1700000000LL
#define F 10
#define HOSTS 4
#define METRICS 2
#define STEPS 16
#define LEVELS 51           /* node, 40 hwthreads, 2 sockets x (itself, 3 cores), 2 lookalikes */

static const struct store_metric metrics[METRICS] = {
    { "x", F, CCMS_AGG_NONE }, { "y", F, CCMS_AGG_NONE },
};

static float model[HOSTS][LEVELS][METRICS][STEPS];

/* The tags of level k and its path below the host (depth 0..2). */
static size_t level_of(int k, char *tags, size_t cap, char names[2][32])
{
    if (k == 0) {
        snprintf(tags, cap, ",type=node");
        return 0;
    }
    if (k <= 40) {
        snprintf(tags, cap, ",type=hwthread,type-id=%d", k - 1);
        snprintf(names[0], 32, "hwthread%d", k - 1);
        return 1;
    }
    if (k <= 48) {
        int socket = (k - 41) / 4, core = (k - 41) % 4;
        snprintf(names[0], 32, "socket%d", socket);
        if (core == 0) {
            snprintf(tags, cap, ",type=socket,type-id=%d", socket);
            return 1;
        }
        snprintf(tags, cap, ",type=socket,type-id=%d,stype=core,stype-id=%d", socket, core - 1);
        snprintf(names[1], 32, "core%d", core - 1);
        return 2;
    }
    const char *look = k == 49 ? "abcdefghAAijklmnop" : "abcdefghBBijklmnop";
    snprintf(tags, cap, ",type=%s", look);
    snprintf(names[0], 32, "%s", look);
    return 1;
}

static void check_series(struct store *s, int h, int k, int m)
{
    /* A level with children (the host, a socket) that holds no series of
     * its own reads as the aggregate of its children: only its own series
     * is compared. */
    bool has_children = k == 0 || (k >= 41 && k <= 48 && (k - 41) % 4 == 0);
    bool own = false;
    for (int t = 0; t < STEPS; t++)
        own |= !isnan(model[h][k][m][t]);
    if (has_children && !own)
        return;
    char host[8], tags[96], names[2][32];
    snprintf(host, sizeof host, "h%d", h);
    size_t below = level_of(k, tags, sizeof tags, names);
    const char *path[4] = { "c", host, names[0], names[1] };
    size_t lens[4];
    struct store_selector sel = { .depth = 2 + below };
    for (size_t i = 0; i < sel.depth; i++) {
        lens[i] = strlen(path[i]);
        sel.elems[i].names = &path[i];
        sel.elems[i].lens = &lens[i];
        sel.elems[i].count = 1;
    }
    struct store_series out;
    int rc = store_read(s, &sel, m, NOW, NOW + F * STEPS, F, RESAMPLE_LTTB, 1000000, &out);
    for (int t = 0; t < STEPS; t++) {
        float want = model[h][k][m][t];
        float got = NAN;
        int64_t ts = NOW + F * t;
        if (rc == 0 && out.len > 0 && ts >= out.from &&
            (size_t)((ts - out.from) / out.resolution) < out.len)
            got = out.data[(ts - out.from) / out.resolution];
        if (!(got == want || (isnan(got) && isnan(want)))) {
            fprintf(stderr, "h%d level %d metric %d step %d: read %g, wrote %g (rc %d)\n", h, k,
                    m, t, got, want, rc);
            abort();
        }
    }
    if (rc == 0)
        store_series_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store *s;
    if (store_create(metrics, METRICS, &s) != 0)
        abort();
    for (int h = 0; h < HOSTS; h++)
        for (int k = 0; k < LEVELS; k++)
            for (int m = 0; m < METRICS; m++)
                for (int t = 0; t < STEPS; t++)
                    model[h][k][m][t] = NAN;
    struct ingest_options o = {
        .default_cluster = "c", .precision = INGEST_PRECISION_AUTO, .now = NOW + F * STEPS,
        .max_line_length = 1 << 16, .future_tolerance = 3600,
    };
    static char body[1 << 16];
    size_t pos = 0;
    while (pos < size) {
        /* one batch: a chunk size, then lines of 4 bytes each until a 0xFF;
         * a chunk byte that is a multiple of 5 first frees everything of
         * one host (its levels go, the host stays: what it remembered of
         * their tag sections must not be used) */
        if (data[pos] % 5 == 0) {
            int h = data[pos] / 5 % HOSTS;
            char host[8];
            snprintf(host, sizeof host, "h%d", h);
            const char *path[2] = { "c", host };
            size_t lens[2] = { 1, strlen(host) };
            uint64_t freed;
            if (store_free(s, path, lens, 2, NOW + 1000000, &freed) != 0)
                abort();
            for (int k = 0; k < LEVELS; k++)
                for (int m = 0; m < METRICS; m++)
                    for (int t = 0; t < STEPS; t++)
                        model[h][k][m][t] = NAN;
        }
        size_t chunk = 1 + data[pos++] % 64 * 8;
        size_t n = 0;
        while (pos + 4 <= size && data[pos] != 0xFF && n + 256 < sizeof body) {
            int h = data[pos] % HOSTS, m = (data[pos] / HOSTS) % METRICS;
            int k = data[pos + 1] % LEVELS, t = data[pos + 2] % STEPS, v = data[pos + 3];
            char tags[96], names[2][32];
            level_of(k, tags, sizeof tags, names);
            n += (size_t)snprintf(body + n, sizeof body - n, "%s,hostname=h%d%s value=%d %lld\n",
                                  metrics[m].name, h, tags, v, NOW + F * t);
            model[h][k][m][t] = (float)v;
            pos += 4;
        }
        if (pos < size && data[pos] == 0xFF)
            pos++;
        else if (pos + 4 > size)
            pos = size;
        struct ingest_batch *b;
        if (ingest_batch_new(s, &o, &b) != 0)
            abort();
        for (size_t off = 0; off < n; off += chunk)
            if (ingest_batch_feed(b, body + off, n - off < chunk ? n - off : chunk) != 0)
                abort();
        if (ingest_batch_finish(b) != 0)
            abort();
        struct ingest_result r;
        ingest_batch_result(b, &r);
        if (r.rejected != 0)
            abort();
        ingest_batch_free(b);
    }
    for (int h = 0; h < HOSTS; h++)
        for (int k = 0; k < LEVELS; k++)
            for (int m = 0; m < METRICS; m++)
                check_series(s, h, k, m);
    store_destroy(s);
    return 0;
}
