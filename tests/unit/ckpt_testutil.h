/*
 * ckpt_testutil — the store and checkpointer fixture shared by the
 * checkpointer tests (test_checkpoint.c for the Go formats,
 * test_checkpoint_native.c for the native ones): a temporary checkpoint
 * directory, a store with four metrics, ingest through the batch API as the
 * server does, point reads and file counts.
 */
#ifndef CCMS_CKPT_TESTUTIL_H
#define CCMS_CKPT_TESTUTIL_H

#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "persist/checkpoint.h"
#include "store/store.h"

static const struct store_metric METRICS[] = {
    {"cpu_load", 60, CCMS_AGG_NONE},
    {"mem_used", 60, CCMS_AGG_NONE},
    {"cpu_user", 60, CCMS_AGG_AVG},
    {"mem_bw", 60, CCMS_AGG_SUM},
};
enum { CPU_LOAD, MEM_USED, CPU_USER, MEM_BW };

struct fixture {
    char dir[64];
    struct ccms_config cfg;
};

static inline int setup_go(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof fx->dir, "/tmp/ccms-ckpt-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->cfg.checkpoint_dir = fx->dir;
    fx->cfg.file_format = "wal";
    fx->cfg.write_go_formats = true;
    /* back to unix time 0 from now: fixed historical test times (fixtures
     * from 2023) stay inside the window whatever the date */
    fx->cfg.retention_seconds = (int64_t)time(NULL) + 86400;
    fx->cfg.checkpoint_interval_seconds = 3600;
    *state = fx;
    return 0;
}

/* The default: the native log and snapshots. */
static inline int setup_native(void **state)
{
    setup_go(state);
    ((struct fixture *)*state)->cfg.write_go_formats = false;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static inline struct store *open_store(struct fixture *fx, struct checkpointer **cp, bool restore)
{
    struct store *s;
    assert_int_equal(store_create(METRICS, 4, &s), 0);
    assert_int_equal(checkpointer_create(s, &fx->cfg, cp), 0);
    if (restore)
        assert_int_equal(checkpointer_restore(*cp, 1800000000, NULL, NULL, NULL), 0);
    return s;
}

/* A fresh store restored from fx's directory; the restore's counts in *rs. */
static inline struct store *restore_store(struct fixture *fx, struct checkpointer **cp,
                                          struct restore_stats *rs)
{
    struct store *s;
    assert_int_equal(store_create(METRICS, 4, &s), 0);
    assert_int_equal(checkpointer_create(s, &fx->cfg, cp), 0);
    assert_int_equal(checkpointer_restore(*cp, 1800000000, NULL, NULL, rs), 0);
    return s;
}

/* Replaces the file at path with data (a test's damaged copy). */
static inline void rewrite_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static inline void close_store(struct store *s, struct checkpointer *cp)
{
    store_destroy(s);
    checkpointer_destroy(cp);
}

/* One sample of batch b to [c, host(, sub)], the host locked around it as
 * ingest does: store, add, commit, unlock. */
static inline void batch_write(struct store *s, struct checkpoint_batch *b, const char *host,
                               const char *sub, int metric, int64_t ts, float v)
{
    struct store_host h;
    assert_int_equal(store_host_lock(s, "c", 1, host, strlen(host), true, NULL, &h), 0);
    const char *names[1] = {sub};
    size_t lens[1] = {sub ? strlen(sub) : 0};
    struct level *l;
    assert_int_equal(store_host_child(&h, names, lens, sub ? 1 : 0, true, NULL, &l), 0);
    assert_int_equal(store_write(&h, l, metric, ts, v), 0);
    assert_int_equal(checkpoint_batch_add(b, &h, l, metric, names, lens, sub ? 1 : 0, ts, v), 0);
    assert_int_equal(checkpoint_batch_commit(b, &h), 0);
    store_host_unlock(&h);
}

/* Writes one sample through the ingest-side API (store + WAL batch), as a
 * request of its own. */
static inline void ingest(struct store *s, struct checkpointer *cp, const char *host, const char *sub,
                   int metric, int64_t ts, float v)
{
    struct checkpoint_batch *b;
    assert_int_equal(checkpoint_batch_new(cp, &b), 0);
    batch_write(s, b, host, sub, metric, ts, v);
    assert_int_equal(checkpoint_batch_finish(b), 0);
    checkpoint_batch_free(b);
}

/* Reads one value at time t from [c, host(, sub)]; NaN when absent. */
static inline double value_in(struct store *s, const char *cluster, const char *host,
                              const char *sub, int metric, int64_t t)
{
    const char *n0[] = {cluster}, *n1[] = {host}, *n2[] = {sub};
    size_t l0[] = {strlen(cluster)}, l1[] = {strlen(host)}, l2[] = {sub ? strlen(sub) : 0};
    struct store_selector sel = {
        .elems = {{n0, l0, 1}, {n1, l1, 1}, {n2, l2, 1}},
        .depth = sub ? 3 : 2,
    };
    struct store_series r;
    if (store_read(s, &sel, metric, t, t + 1, 0, RESAMPLE_LTTB, 100, &r) != 0)
        return NAN;
    double v = r.len == 1 ? r.data[0] : NAN;
    store_series_free(&r);
    return v;
}

/* The value at t in cluster "c" (NaN when absent). */
static inline double value_at(struct store *s, const char *host, const char *sub, int metric,
                              int64_t t)
{
    return value_in(s, "c", host, sub, metric, t);
}

static inline int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

#endif
