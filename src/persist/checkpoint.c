/*
 * checkpoint — see checkpoint.h for the on-disk contract and the rules.
 *
 * Sections: host state, snapshot building (store -> ckpt_file, store ->
 * native snapshot), the snapshot run, the export to the Go formats,
 * restore (files -> store, Go log replay, native log replay), merging in
 * the Go store's file order, the background worker, and the ingest batch.
 * (The formats themselves are other modules' business: snapshot.h,
 * jsonckpt.h, wal.h, nsnap.h, seglog.h; logset.h keeps the segments.)
 */
#include "persist/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "persist/ckpt.h"
#include "persist/jsonckpt.h"
#include "persist/logset.h"
#include "persist/nsnap.h"
#include "persist/seglog.h"
#include "persist/snapshot.h"
#include "persist/wal.h"
#include "store/level.h"
#include "util/fsutil.h"
#include "util/hash.h"
#include "util/names.h"
#include "util/progress.h"

struct checkpointer {
    struct store *store;
    char *dir;
    bool wal_mode;                   /* file-format "wal": a WAL and binary snapshots; else
                                        .json, no WAL */
    bool native;                     /* wal_mode in the native formats (log segments and
                                        .ccms snapshots), not the Go store's */
    struct logset *log;              /* the native log's segments (also those found at
                                        startup, in any mode: deleted once covered) */
    enum ccms_fsync_policy fsync;
    int64_t interval;                /* seconds between periodic runs */
    int64_t retention;               /* seconds, <= 0: keep everything */
    int64_t future_tolerance;        /* seconds samples may lie ahead; < 0: unbounded */
    uint64_t max_wal_size;           /* bytes, 0 = unlimited */
    int64_t max_frequency;

    pthread_mutex_t run_lock;        /* one snapshot run at a time */
    pthread_mutex_t status_lock;     /* guards the figures below */
    struct restore_stats restored;
    struct checkpoint_stats last_run;
    uint64_t runs, runs_failed;
    double run_seconds;
    char **undeleted;                /* rotated logs already in a durable snapshot whose
                                        unlink failed: retried at every run (run_lock;
                                        added to under undeleted_lock by the run's threads) */
    size_t undeleted_count;
    pthread_mutex_t undeleted_lock;

    pthread_mutex_t worker_lock;     /* guards the fields below */
    pthread_cond_t worker_wake;
    pthread_t worker;
    bool worker_running;
    bool stopping;
    bool early_run_requested;        /* a WAL passed max-wal-size */
};

/* ---- host state (level->host_data, guarded by the host lock) -------------- */

struct host_state {
    struct wal_file *wal;
    int64_t dirty_from;              /* INT64_MAX: nothing unsaved */
    int64_t last_to;                 /* `to` of the newest snapshot file: each new one is
                                        later, so restore applies them in write order */
    int64_t max_name;                /* largest <stamp> of the host's checkpoint files */
    int64_t max_series_start;        /* latest series start in them (Go's file order) */
    char **rotated;                  /* WAL files whose data awaits a durable snapshot */
    size_t rotated_count;
    bool needs_sync;                 /* WAL written since the last fsync ("interval") */
    bool wal_pinned;                 /* current.wal holds records that were never loaded
                                        (unreadable at restore): never rotate it away */
    uint32_t next_level_id;          /* native log: the last level id handed out */
};

static struct host_state *host_state_get(struct level *host)
{
    if (!host->upper->host_data) {
        struct host_state *st = calloc(1, sizeof(*st));
        if (!st)
            return NULL;
        st->dirty_from = INT64_MAX;
        st->max_name = INT64_MIN;
        st->max_series_start = INT64_MIN;
        host->upper->host_data = st;
    }
    return host->upper->host_data;
}

static void free_paths(char **paths, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    free(paths);
}

static int push_path(char ***paths, size_t *count, char *path)
{
    char **grown = realloc(*paths, (*count + 1) * sizeof(char *));
    if (!grown)
        return -ENOMEM;
    grown[(*count)++] = path;
    *paths = grown;
    return 0;
}

/* Store hook: the host level is going away (its data was freed). Its files
 * stay on disk; only memory is released. */
static void host_state_cleanup(void *ctx, struct level *host)
{
    (void)ctx;
    struct host_state *st = host->upper->host_data;
    if (st->wal)
        wal_close(st->wal);
    free_paths(st->rotated, st->rotated_count);
    free(st);
    host->upper->host_data = NULL;
}

static char *host_dir(const struct checkpointer *cp, const struct level *host)
{
    return fs_join3(cp->dir, host->upper->parent->name, host->name);
}

/* ---- store -> ckpt_file -------------------------------------------------- */

struct series_builder {
    int64_t frequency;
    float *values;
    uint32_t count;
    uint32_t cap;
    int64_t start;
    bool started;
};

/* chain_sample_fn */
static int builder_put(void *ctx, int64_t t, float v)
{
    struct series_builder *sb = ctx;
    int64_t f = sb->frequency;
    if (!sb->started) {
        sb->start = t;
        sb->started = true;
    }
    if (t < sb->start)
        return 0; /* only possible with buffers of a foreign phase: drop */
    uint64_t idx = (uint64_t)(t - sb->start) / (uint64_t)f;
    if (idx >= UINT32_MAX / 2)
        return -ENOMEM;
    if (idx >= sb->cap) {
        uint32_t cap = sb->cap ? sb->cap : 64;
        while (cap <= idx)
            cap *= 2;
        float *grown = realloc(sb->values, cap * sizeof(float));
        if (!grown)
            return -ENOMEM;
        sb->values = grown;
        sb->cap = cap;
    }
    while (sb->count < idx)
        sb->values[sb->count++] = NAN;
    sb->values[idx] = v;
    if (idx >= sb->count)
        sb->count = (uint32_t)idx + 1;
    return 0;
}

static int level_to_ckpt(struct store *s, const struct level *l, int64_t from,
                         struct ckpt_level *out);

static int add_series(struct store *s, const struct buffer *head, uint32_t metric_index,
                      int64_t from, struct ckpt_level *out)
{
    const struct store_metric *metric = store_metric_at(s, (int)metric_index);
    struct series_builder sb = { .frequency = metric->frequency };
    if (chain_for_each_sample(head, from, builder_put, &sb) != 0) {
        free(sb.values);
        return -ENOMEM;
    }
    if (sb.count == 0) {
        free(sb.values);
        return 0;
    }
    struct ckpt_series *grown = realloc(out->series, (out->series_count + 1) * sizeof(*grown));
    char *name = strdup(metric->name);
    if (!grown || !name) {
        if (grown)
            out->series = grown;
        free(name);
        free(sb.values);
        return -ENOMEM;
    }
    out->series = grown;
    out->series[out->series_count++] = (struct ckpt_series){
        .metric = name, .frequency = metric->frequency, .start = sb.start,
        .values = sb.values, .count = sb.count};
    return 0;
}

static int add_child(struct store *s, const struct level *c, int64_t from, struct ckpt_level *out)
{
    struct ckpt_level child = {0};
    int rc = level_to_ckpt(s, c, from, &child);
    if (rc == 0 && child.series_count == 0 && child.child_count == 0) {
        ckpt_level_free(&child);
        return 0;
    }
    struct ckpt_level *grown = NULL;
    if (rc == 0)
        grown = realloc(out->children, (out->child_count + 1) * sizeof(*grown));
    if (!grown) {
        ckpt_level_free(&child);
        return -ENOMEM;
    }
    out->children = grown;
    out->children[out->child_count++] = child;
    return 0;
}

/* Builds the checkpoint form of l's subtree (samples at or after from). */
static int level_to_ckpt(struct store *s, const struct level *l, int64_t from,
                         struct ckpt_level *out)
{
    out->name = strdup(l->depth == 2 ? "" : l->name);
    if (!out->name)
        return -ENOMEM;
    for (uint32_t i = 0; i < l->chain_count; i++)
        if (l->heads[i] &&
            add_series(s, l->heads[i], level_chain_metric(l, i), from, out) != 0)
            return -ENOMEM;
    for (uint32_t i = 0; i < l->child_count; i++)
        if (add_child(s, l->children[i], from, out) != 0)
            return -ENOMEM;
    return 0;
}

/* ---- store -> native snapshot ------------------------------------------------- */

struct native_writer {
    struct jbuf *out;
    const char *names[NSNAP_MAX_DEPTH];
    size_t lens[NSNAP_MAX_DEPTH];
    size_t depth;
    const char *metric;
    size_t metric_len;
};

static int native_block(void *ctx, const void *image, size_t len)
{
    struct native_writer *w = ctx;
    int rc = nsnap_add_block(w->out, w->names, w->lens, w->depth, w->metric, w->metric_len,
                             image, len);
    return rc != 0 ? rc : w->out->failed ? -ENOMEM : 0;
}

/* Appends the blocks of l's subtree holding samples at or after from. */
static int level_to_native(struct store *s, const struct level *l, int64_t from,
                           struct native_writer *w)
{
    for (uint32_t i = 0; i < l->chain_count; i++) {
        if (!l->heads[i])
            continue;
        w->metric = store_metric_at(s, level_chain_metric(l, i))->name;
        w->metric_len = strlen(w->metric);
        int rc = chain_export(l->heads[i], from, native_block, w);
        if (rc != 0)
            return rc;
    }
    if (w->depth == NSNAP_MAX_DEPTH)
        return 0;   /* the store holds no deeper levels */
    for (uint32_t i = 0; i < l->child_count; i++) {
        const struct level *c = l->children[i];
        w->names[w->depth] = c->name;
        w->lens[w->depth] = c->name_len;
        w->depth++;
        int rc = level_to_native(s, c, from, w);
        w->depth--;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the snapshot run ------------------------------------------------------ */

/* Everything one host's snapshot needs after its lock is released. */
struct host_snapshot {
    char *dir;
    struct ckpt_file file;   /* the Go formats */
    struct jbuf native;      /* the native format (cp->native) */
    size_t native_empty;     /* its length without blocks (the header) */
    int64_t dirty_from;
    int64_t max_name;        /* the host's file names and series starts so far */
    int64_t max_series_start;
    char **rotated;          /* WAL files to delete once the file is durable */
    size_t rotated_count;
};

static void host_snapshot_free(struct host_snapshot *hs)
{
    free(hs->dir);
    ckpt_file_free(&hs->file);
    jbuf_free(&hs->native);
    free_paths(hs->rotated, hs->rotated_count);
}

/* A name suffix for rotated WAL files that never repeats within a process
 * (two rotations in one second must not overwrite each other). */
static int64_t unique_suffix(void)
{
    static _Atomic int64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t candidate = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t prev = atomic_load(&last);
    for (;;) {
        int64_t next = candidate > prev ? candidate : prev + 1;
        if (atomic_compare_exchange_weak(&last, &prev, next))
            return next;
    }
}

/* Under the host's write lock: captures the unsaved data, rotates the WAL
 * so new records go to a fresh file, and marks the host clean. Returns 1
 * when there is something to write, 0 when the host is clean, <0 on error
 * (the host is left as it was). */
static int capture_host(struct checkpointer *cp, struct level *host, int64_t now,
                        struct host_snapshot *hs)
{
    struct host_state *st = host->upper->host_data;
    if (!st || (st->dirty_from == INT64_MAX && st->rotated_count == 0))
        return 0;
    memset(hs, 0, sizeof(*hs));
    hs->dir = host_dir(cp, host);
    if (!hs->dir)
        return -ENOMEM;
    /* A sample's slot can start up to f/2 before its timestamp. */
    int64_t from = st->dirty_from == INT64_MAX ? now : st->dirty_from - cp->max_frequency;
    hs->file.from = from;
    hs->file.to = now > st->last_to ? now : st->last_to + 1;
    int built;
    if (cp->native) {
        /* the host's sealed buffers as they are: about a copy */
        jbuf_init(&hs->native, 1 << 16);
        nsnap_begin(&hs->native, hs->file.from, hs->file.to);
        hs->native_empty = hs->native.len;
        struct native_writer w = {.out = &hs->native};
        built = level_to_native(cp->store, host, from, &w);
        if (hs->native.failed)
            built = -ENOMEM;
    } else {
        built = level_to_ckpt(cp->store, host, from, &hs->file.host);
    }
    if (built != 0) {
        host_snapshot_free(hs);
        return -ENOMEM;
    }
    if (st->wal) {
        char *rotated = NULL;
        int rc = wal_rotate(st->wal, unique_suffix(), &rotated);
        st->wal = NULL;
        if (rc == 0 && st->wal_pinned) {
            /* Its older records were never loaded: keep the file (it is
             * replayed at the next start), never delete it with the
             * snapshot. New records go to a fresh log. */
            log_error("checkpoint: %s holds records that could not be loaded at startup; it "
                      "is kept for the next start, not deleted", rotated);
            st->wal_pinned = false;
            free(rotated);
        } else if (rc == 0 && push_path(&st->rotated, &st->rotated_count, rotated) != 0) {
            free(rotated); /* the file stays on disk and is replayed at restart */
        }
        if (rc != 0)
            log_error("checkpoint: rotating the WAL of %s failed: %s", hs->dir, strerror(errno));
    }
    st->last_to = hs->file.to;
    hs->max_name = st->max_name;
    hs->max_series_start = st->max_series_start;
    hs->dirty_from = st->dirty_from;
    hs->rotated = st->rotated;
    hs->rotated_count = st->rotated_count;
    st->rotated = NULL;
    st->rotated_count = 0;
    st->dirty_from = INT64_MAX;
    return 1;
}

/* The earliest and latest series start in a checkpoint subtree. */
static void series_start_bounds(const struct ckpt_level *l, int64_t *min, int64_t *max)
{
    for (size_t i = 0; i < l->series_count; i++) {
        if (l->series[i].start < *min)
            *min = l->series[i].start;
        if (l->series[i].start > *max)
            *max = l->series[i].start;
    }
    for (size_t i = 0; i < l->child_count; i++)
        series_start_bounds(&l->children[i], min, max);
}

/* A full disk fails every host's snapshot: a few lines per 10 s. */
static struct log_limit snapshot_errors;

/* Encodes f and writes it atomically as <stamp>.<ext> in dir. */
static int write_ckpt_file(struct checkpointer *cp, const char *dir, struct ckpt_file *f,
                           int64_t stamp, uint64_t *bytes)
{
    struct jbuf out;
    jbuf_init(&out, 1 << 16);
    int rc = cp->wal_mode ? snapshot_encode(f, &out) : jsonckpt_encode(f, &out);
    char name[64];
    snprintf(name, sizeof name, "%" PRId64 ".%s", stamp, cp->wal_mode ? "bin" : "json");
    if (rc != 0 || out.failed)
        rc = -ENOMEM;
    if (rc == 0)
        rc = fs_mkdir_p(dir);
    if (rc == 0)
        rc = fs_write_atomic(dir, name, out.data, out.len);
    if (rc == 0)
        *bytes += out.len;
    else
        log_limited(&snapshot_errors, LOG_ERR, "checkpoint: writing %s/%s failed: %s", dir, name,
                    strerror(-rc));
    jbuf_free(&out);
    return rc;
}

/* A name for a new delta that sorts after every file of the host (its data
 * starts no earlier than theirs) and does not exist yet. */
static int64_t next_stamp(const struct host_snapshot *hs, const char *ext)
{
    int64_t stamp = hs->file.from;
    if (hs->max_name != INT64_MIN && stamp <= hs->max_name)
        stamp = hs->max_name + 1;
    for (;; stamp++) {
        char name[64];
        snprintf(name, sizeof name, "%" PRId64 ".%s", stamp, ext);
        char *path = fs_join(hs->dir, name);
        bool exists = path && access(path, F_OK) == 0;
        free(path);
        if (!exists)
            return stamp;
    }
}

static int write_merged(struct checkpointer *cp, struct host_snapshot *hs, uint64_t *bytes,
                        int64_t *stamp, int64_t *max_start);

/* Writes the captured data: normally as a new delta file; when it starts
 * before data already on disk (a back-fill), merged with the host's files
 * (write_merged). *stamp and *max_start describe the written file. */
static int write_snapshot(struct checkpointer *cp, struct host_snapshot *hs, uint64_t *bytes,
                          int64_t *stamp, int64_t *max_start)
{
    *stamp = INT64_MIN;
    *max_start = INT64_MIN;
    if (cp->native) {
        /* Native snapshots are applied in write order whatever their data's
         * times: a back-fill is just the next file, nothing is merged. */
        if (hs->native.len == hs->native_empty)
            return 0;
        *stamp = next_stamp(hs, "ccms");
        char name[64];
        snprintf(name, sizeof name, "%" PRId64 ".ccms", *stamp);
        int rc = fs_mkdir_p(hs->dir);
        if (rc == 0)
            rc = fs_write_atomic(hs->dir, name, hs->native.data, hs->native.len);
        if (rc == 0)
            *bytes += hs->native.len;
        else
            log_limited(&snapshot_errors, LOG_ERR, "checkpoint: writing %s/%s failed: %s",
                        hs->dir, name, strerror(-rc));
        return rc;
    }
    if (hs->file.host.series_count == 0 && hs->file.host.child_count == 0)
        return 0; /* the unsaved data was freed meanwhile: nothing to keep */
    int64_t min_start = INT64_MAX;
    series_start_bounds(&hs->file.host, &min_start, max_start);
    if (min_start < hs->max_series_start)
        return write_merged(cp, hs, bytes, stamp, max_start);
    *stamp = next_stamp(hs, cp->wal_mode ? "bin" : "json");
    return write_ckpt_file(cp, hs->dir, &hs->file, *stamp, bytes);
}

/* After a success: remembers the file so later names and starts follow it. */
static void note_written(struct checkpointer *cp, const char *cluster, const char *host,
                         int64_t stamp, int64_t max_start)
{
    struct store_host h;
    if (stamp == INT64_MIN ||
        store_host_lock(cp->store, cluster, strlen(cluster), host, strlen(host), false, NULL,
                        &h) != 0)
        return;
    struct host_state *st = host_state_get(h.level);
    if (st && stamp > st->max_name)
        st->max_name = stamp;
    if (st && max_start > st->max_series_start)
        st->max_series_start = max_start;
    store_host_unlock(&h);
}

/* After a failed write: the data is dirty again and the rotated WALs are
 * kept for the next attempt (or for replay at restart). */
static void restore_dirty(struct checkpointer *cp, const char *cluster, const char *host,
                          struct host_snapshot *hs)
{
    struct store_host h;
    if (store_host_lock(cp->store, cluster, strlen(cluster), host, strlen(host), false, NULL,
                        &h) != 0)
        return; /* the host was removed; its WAL files stay on disk */
    struct host_state *st = host_state_get(h.level);
    if (st) {
        if (hs->dirty_from < st->dirty_from)
            st->dirty_from = hs->dirty_from;
        for (size_t i = 0; i < hs->rotated_count; i++)
            if (push_path(&st->rotated, &st->rotated_count, hs->rotated[i]) == 0)
                hs->rotated[i] = NULL;
    }
    store_host_unlock(&h);
}

/* A rotated log whose data is in a durable snapshot could not be deleted
 * (read-only directory, immutable file): warn once, retry at every run
 * instead of leaving it to be replayed at every start. Under run_lock. */
static void note_undeleted(struct checkpointer *cp, const char *path)
{
    int err = errno;
    pthread_mutex_lock(&cp->undeleted_lock);
    bool known = false;
    for (size_t i = 0; i < cp->undeleted_count && !known; i++)
        known = strcmp(cp->undeleted[i], path) == 0;
    char *copy = known ? NULL : strdup(path);
    if (!known)
        log_warn("checkpoint: cannot delete %s: %s; its data is in a snapshot, the deletion is "
                 "retried at every checkpoint run", path, strerror(err));
    if (copy && push_path(&cp->undeleted, &cp->undeleted_count, copy) != 0)
        free(copy);
    pthread_mutex_unlock(&cp->undeleted_lock);
}

static void retry_undeleted(struct checkpointer *cp)
{
    size_t kept = 0;
    for (size_t i = 0; i < cp->undeleted_count; i++) {
        if (unlink(cp->undeleted[i]) == 0 || errno == ENOENT) {
            log_info("checkpoint: deleted %s at last", cp->undeleted[i]);
            free(cp->undeleted[i]);
        } else {
            cp->undeleted[kept++] = cp->undeleted[i];
        }
    }
    cp->undeleted_count = kept;
}

static int snapshot_host(struct checkpointer *cp, const char *cluster, const char *host,
                         int64_t now, struct checkpoint_stats *stats)
{
    struct store_host h;
    if (store_host_lock(cp->store, cluster, strlen(cluster), host, strlen(host), false, NULL,
                        &h) != 0)
        return 0;
    struct host_snapshot hs;
    int captured = capture_host(cp, h.level, now, &hs);
    store_host_unlock(&h);
    if (captured <= 0)
        return captured;

    int64_t stamp, max_start;
    int rc = write_snapshot(cp, &hs, &stats->bytes_written, &stamp, &max_start);
    if (rc == 0) {
        note_written(cp, cluster, host, stamp, max_start);
        for (size_t i = 0; i < hs.rotated_count; i++)
            if (unlink(hs.rotated[i]) != 0 && errno != ENOENT)
                note_undeleted(cp, hs.rotated[i]);
        stats->hosts_written++;
    } else {
        restore_dirty(cp, cluster, host, &hs);
        stats->hosts_failed++;
    }
    host_snapshot_free(&hs);
    return rc == 0 ? 0 : CHECKPOINT_EIO;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Host-parallel work (snapshot runs, restore) runs on one thread per core,
 * at most this many: each thread takes the next host from a shared
 * counter. */
#define HOST_THREADS 8

/* How many threads for jobs hosts. */
static size_t host_threads(size_t jobs)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cores > 0 ? (size_t)cores : 1;
    if (threads > HOST_THREADS)
        threads = HOST_THREADS;
    if (threads > jobs)
        threads = jobs ? jobs : 1;
    return threads;
}

/* Runs fn on ctxs[0 .. threads) (each ctx_size bytes), ctxs[0] on the
 * calling thread; should a thread not start, the others (at least this
 * one) take its share. Returns when all are done. */
static void run_on_threads(size_t threads, void *(*fn)(void *), void *ctxs, size_t ctx_size)
{
    pthread_t tids[HOST_THREADS];
    bool started[HOST_THREADS] = {false};
    for (size_t t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, (char *)ctxs + t * ctx_size) == 0;
    fn(ctxs);
    for (size_t t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tids[t], NULL);
}

/* The hosts of a snapshot run or a restore (copied names), collected first
 * and then taken in turn by the threads that work on them. */
struct host_list {
    struct host_ref {
        char *cluster;
        char *host;
    } *list;
    size_t count;
    bool failed;                /* out of memory while adding: some hosts are missing */
    _Atomic size_t next;
    struct progress progress;   /* of the work on the list (progress.h) */
};

static void host_list_add(struct host_list *l, const char *cluster, const char *host)
{
    struct host_ref ref = { strdup(cluster), strdup(host) };
    struct host_ref *grown = ref.cluster && ref.host
        ? realloc(l->list, (l->count + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(ref.cluster);
        free(ref.host);
        l->failed = true;
        return;
    }
    l->list = grown;
    l->list[l->count++] = ref;
}

/* The next host for a worker thread, or NULL when all are taken. */
static const struct host_ref *host_list_take(struct host_list *l)
{
    size_t i = atomic_fetch_add(&l->next, 1);
    return i < l->count ? &l->list[i] : NULL;
}

static void host_list_free(struct host_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->list[i].cluster);
        free(l->list[i].host);
    }
    free(l->list);
}

/* Every host the store holds, into l. Returns 0, or CHECKPOINT_ENOMEM when
 * some could not be listed (those found are in l all the same). */
static int store_host_list(struct store *store, struct host_list *l)
{
    int result = 0;
    char **clusters = NULL;
    size_t cluster_count = 0;
    if (store_list_clusters(store, &clusters, &cluster_count) != 0)
        result = CHECKPOINT_ENOMEM;
    for (size_t c = 0; c < cluster_count; c++) {
        char **hosts = NULL;
        size_t host_count = 0;
        if (store_list_hosts(store, clusters[c], strlen(clusters[c]), &hosts, &host_count) != 0)
            result = CHECKPOINT_ENOMEM;
        for (size_t i = 0; i < host_count; i++)
            host_list_add(l, clusters[c], hosts[i]);
        free_paths(hosts, host_count);
    }
    free_paths(clusters, cluster_count);
    return l->failed ? CHECKPOINT_ENOMEM : result;
}

/* One snapshot run's work. */
struct run_jobs {
    struct checkpointer *cp;
    int64_t now;
    struct host_list hosts;
};

struct run_thread {
    struct run_jobs *jobs;
    struct checkpoint_stats stats;
    int result;
};

static void *run_worker(void *arg)
{
    struct run_thread *t = arg;
    struct run_jobs *jobs = t->jobs;
    for (const struct host_ref *h; (h = host_list_take(&jobs->hosts)) != NULL;) {
        uint64_t bytes = t->stats.bytes_written;
        int rc = snapshot_host(jobs->cp, h->cluster, h->host, jobs->now, &t->stats);
        if (rc != 0 && t->result == 0)
            t->result = rc;
        progress_add(&jobs->hosts.progress, 1, t->stats.bytes_written - bytes);
    }
    return NULL;
}

/* Snapshots the hosts on several threads: writing a snapshot is mostly
 * waiting for its fsync, and the fsyncs of several files overlap. */
static int run_hosts(struct run_jobs *jobs, struct checkpoint_stats *stats)
{
    size_t threads = host_threads(jobs->hosts.count);
    struct run_thread t[HOST_THREADS];
    for (size_t i = 0; i < threads; i++)
        t[i] = (struct run_thread){.jobs = jobs};
    progress_begin(&jobs->hosts.progress, "snapshot", "hosts", jobs->hosts.count, "bytes");
    run_on_threads(threads, run_worker, t, sizeof t[0]);
    progress_end(&jobs->hosts.progress);
    int result = 0;
    for (size_t i = 0; i < threads; i++) {
        stats->hosts_written += t[i].stats.hosts_written;
        stats->hosts_failed += t[i].stats.hosts_failed;
        stats->bytes_written += t[i].stats.bytes_written;
        if (t[i].result != 0 && result == 0)
            result = t[i].result;
    }
    return result;
}

int checkpointer_run(struct checkpointer *cp, int64_t now, struct checkpoint_stats *stats)
{
    struct checkpoint_stats local = {0};
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    pthread_mutex_lock(&cp->run_lock);
    retry_undeleted(cp);
    /* Retire the log segments written so far; every sample they hold is in
     * memory before any host is captured below (logset.h). */
    uint64_t covered = 0;
    logset_rotate(cp->log, &covered);
    struct run_jobs jobs = {.cp = cp, .now = now};
    int result = store_host_list(cp->store, &jobs.hosts);
    int rc = run_hosts(&jobs, &local);
    if (rc != 0 && result == 0)
        result = rc;
    host_list_free(&jobs.hosts);
    /* Only a run that made every host's snapshot durable covers the
     * retired segments; otherwise they stay for the next run (or replay). */
    if (result == 0 && local.hosts_failed == 0)
        logset_drop(cp->log, covered);
    pthread_mutex_unlock(&cp->run_lock);
    local.seconds = seconds_since(&started);
    pthread_mutex_lock(&cp->status_lock);
    cp->last_run = local;
    cp->runs++;
    cp->runs_failed += result != 0 || local.hosts_failed != 0;
    cp->run_seconds += local.seconds;
    pthread_mutex_unlock(&cp->status_lock);
    if (local.hosts_written || local.hosts_failed)
        log_info("checkpoint: %" PRIu64 " hosts written (%" PRIu64 " bytes), %" PRIu64
                 " failed, %.3f s", local.hosts_written, local.bytes_written,
                 local.hosts_failed, local.seconds);
    if (stats)
        *stats = local;
    return result;
}

/* ---- export to the Go formats ------------------------------------------------ */

static int export_host(struct checkpointer *cp, const char *dir, const char *cluster,
                       const char *host, int64_t now, struct checkpoint_stats *stats)
{
    struct store_host h;
    if (store_host_lock_read(cp->store, cluster, strlen(cluster), host, strlen(host), &h) != 0)
        return 0;
    struct ckpt_file f = {.to = now};
    int rc = level_to_ckpt(cp->store, h.level, INT64_MIN, &f.host);
    store_host_unlock(&h);
    int64_t min_start = INT64_MAX, max_start = INT64_MIN;
    series_start_bounds(&f.host, &min_start, &max_start);
    if (rc == 0 && min_start == INT64_MAX) {
        ckpt_file_free(&f);
        return 0;   /* nothing held */
    }
    /* the window starts one period before the first sample's slot */
    f.from = min_start - cp->max_frequency;
    char *host_dir = rc == 0 ? fs_join3(dir, cluster, host) : NULL;
    struct jbuf out;
    jbuf_init(&out, 1 << 16);
    if (rc == 0 && (!host_dir || snapshot_encode(&f, &out) != 0 || out.failed))
        rc = -ENOMEM;
    char name[64];
    snprintf(name, sizeof name, "%" PRId64 ".bin", f.from);
    if (rc == 0)
        rc = fs_mkdir_p(host_dir);
    if (rc == 0)
        rc = fs_write_atomic(host_dir, name, out.data, out.len);
    if (rc == 0) {
        stats->hosts_written++;
        stats->bytes_written += out.len;
    } else {
        log_error("export: %s/%s: %s", cluster, host, strerror(-rc));
        stats->hosts_failed++;
    }
    jbuf_free(&out);
    free(host_dir);
    ckpt_file_free(&f);
    return rc;
}

int checkpointer_export_go(struct checkpointer *cp, const char *dir, int64_t now,
                           struct checkpoint_stats *stats)
{
    struct checkpoint_stats local = {0};
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    int result = fs_mkdir_p(dir) == 0 ? 0 : CHECKPOINT_EIO;
    struct host_list hosts = {0};
    if (result == 0)
        result = store_host_list(cp->store, &hosts);
    progress_begin(&hosts.progress, "export", "hosts", hosts.count, "bytes");
    for (size_t i = 0; i < hosts.count; i++) {
        uint64_t bytes = local.bytes_written;
        if (export_host(cp, dir, hosts.list[i].cluster, hosts.list[i].host, now, &local) != 0 &&
            result == 0)
            result = CHECKPOINT_EIO;
        progress_add(&hosts.progress, 1, local.bytes_written - bytes);
    }
    progress_end(&hosts.progress);
    host_list_free(&hosts);
    local.seconds = seconds_since(&started);
    if (stats)
        *stats = local;
    return result;
}

/* ---- restore ----------------------------------------------------------------- */

struct host_list;

struct restore_ctx {
    struct checkpointer *cp;
    int64_t cutoff;                  /* now - retention */
    host_filter_fn keep;         /* hosts loaded whole (nodes in use), or NULL */
    void *keep_ctx;
    int64_t host_cutoff;             /* the cut-off of the host being restored */
    struct restore_stats *stats;
    struct store_host host;          /* write-locked host being restored */
    const char *path;                /* file being loaded, for log lines */
    struct host_list *jobs;          /* the hosts to restore */
};

static int apply_level(struct restore_ctx *rc, const struct ckpt_level *l, const char **names,
                       size_t *lens, size_t depth)
{
    struct level *target;
    if (store_host_child(&rc->host, names, lens, depth, true, NULL, &target) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *series = &l->series[i];
        int m = store_metric_lookup(rc->cp->store, series->metric, strlen(series->metric));
        if (m < 0 || series->frequency <= 0)
            continue; /* not configured (any more) */
        int loaded = store_load_series(&rc->host, target, m, series->frequency, series->start,
                                       series->values, series->count);
        if (loaded == STORE_ENOMEM)
            return -ENOMEM;
        if (loaded != 0) {
            log_warn("restore: %s: series %s has times out of range; skipped", rc->path,
                     series->metric);
            continue;
        }
        for (uint32_t k = 0; k < series->count; k++)
            rc->stats->samples += series->values[k] == series->values[k];   /* not NaN */
    }
    for (size_t i = 0; i < l->child_count; i++) {
        const struct ckpt_level *child = &l->children[i];
        size_t len = strlen(child->name);
        if (depth + 1 > STORE_MAX_DEPTH - 2 || !level_name_is_valid(child->name, len)) {
            log_warn("restore: %s: skipping level \"%s\"", rc->path, child->name);
            continue;
        }
        names[depth] = child->name;
        lens[depth] = len;
        if (apply_level(rc, child, names, lens, depth + 1) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* One decoded file of a host directory, waiting to be applied. */
struct loaded_file {
    struct ckpt_file file;   /* a Go-format file, decoded; for a native one only from/to */
    char *path;
    int64_t stamp;   /* <stamp> of the file name */
    const void *native;  /* a native snapshot's bytes, mapped (decoded while applied),
                            or NULL */
    size_t native_len;
};

/* Write order: by window end, then start, then name. Two snapshots of one
 * host can share `to` and `from` (both written in one second, after a
 * restart); their names still follow the order of writing (next_stamp). */
static int compare_loaded(const void *a, const void *b)
{
    const struct loaded_file *x = a, *y = b;
    if (x->file.to != y->file.to)
        return x->file.to < y->file.to ? -1 : 1;
    if (x->file.from != y->file.from)
        return x->file.from < y->file.from ? -1 : 1;
    return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

static bool parse_stem(const char *name, const char *ext, int64_t *value)
{
    size_t len = strlen(name), ext_len = strlen(ext);
    if (len <= ext_len || strcmp(name + len - ext_len, ext) != 0)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(name, &end, 10);
    if (errno != 0 || end != name + len - ext_len || end == name)
        return false;
    *value = v;
    return true;
}

static int decode_file(const char *path, bool binary, struct ckpt_file *out, char *err,
                       size_t err_len)
{
    char *data;
    size_t len;
    int rc = fs_read_file(path, &data, &len);
    if (rc != 0) {
        snprintf(err, err_len, "%s", strerror(-rc));
        return rc;
    }
    rc = binary ? snapshot_decode(data, len, out, err, err_len)
                : jsonckpt_decode(data, len, out, err, err_len);
    free(data);
    return rc;
}

/* Decodes a checkpoint file into files[*count] unless it is too old or bad. */
static void load_candidate(struct restore_ctx *rc, const char *path, bool binary,
                           int64_t stamp, struct loaded_file **files, size_t *count)
{
    struct ckpt_file f;
    char err[256] = "";
    if (decode_file(path, binary, &f, err, sizeof err) != 0) {
        log_error("restore: skipping %s: %s", path, err);
        rc->stats->files_failed++;
        return;
    }
    /* Damage is not age: a header that contradicts itself must not make the
     * file look "too old" (skipped, then deleted by the cleanup). */
    const char *why = ckpt_file_contradiction(&f, stamp, rc->cp->future_tolerance);
    if (why) {
        log_error("restore: %s is corrupt (%s): not loaded", path, why);
        char aside[PATH_MAX];
        snprintf(aside, sizeof aside, "%s.corrupt", path);
        if (rename(path, aside) != 0)
            log_error("restore: cannot move %s aside: %s", path, strerror(errno));
        else
            log_error("restore: %s moved to %s for inspection", path, aside);
        rc->stats->files_failed++;
        ckpt_file_free(&f);
        return;
    }
    if (f.to != 0 && f.to < rc->host_cutoff) {
        rc->stats->files_too_old++;
        ckpt_file_free(&f);
        return;
    }
    struct loaded_file *grown = realloc(*files, (*count + 1) * sizeof(*grown));
    char *copy = strdup(path);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            *files = grown;
        ckpt_file_free(&f);
        rc->stats->files_failed++;
        return;
    }
    *files = grown;
    (*files)[(*count)++] = (struct loaded_file){f, copy, stamp, NULL, 0};
}

/* Reads a native snapshot into files[*count] unless it is too old or its
 * header is bad. Its blocks are checked when applied. */
static void load_native_candidate(struct restore_ctx *rc, const char *path, int64_t stamp,
                                  struct loaded_file **files, size_t *count)
{
    const void *data = NULL;
    size_t len = 0;
    struct ckpt_file f = {0};
    int err = fs_map_file(path, &data, &len);
    if (err == 0 && nsnap_header(data, len, &f.from, &f.to) != 0)
        err = NSNAP_EFORMAT;
    if (err != 0) {
        log_error("restore: skipping %s: %s", path,
                  err == NSNAP_EFORMAT ? nsnap_strerror(err) : strerror(-err));
        if (err == NSNAP_EFORMAT) {
            char aside[PATH_MAX];
            snprintf(aside, sizeof aside, "%s.corrupt", path);
            if (rename(path, aside) == 0)
                log_error("restore: %s moved to %s for inspection", path, aside);
        }
        rc->stats->files_failed++;
        fs_unmap_file(data, len);
        return;
    }
    if (f.to != 0 && f.to < rc->host_cutoff) {
        rc->stats->files_too_old++;
        fs_unmap_file(data, len);
        return;
    }
    struct loaded_file *grown = realloc(*files, (*count + 1) * sizeof(*grown));
    char *copy = strdup(path);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            *files = grown;
        fs_unmap_file(data, len);
        rc->stats->files_failed++;
        return;
    }
    *files = grown;
    (*files)[(*count)++] = (struct loaded_file){f, copy, stamp, data, len};
}

/* One block of a native snapshot into the host being restored. */
static int native_block_to_store(void *ctx, const struct nsnap_block *b)
{
    struct restore_ctx *rc = ctx;
    for (size_t i = 0; i < b->depth; i++)
        if (!level_name_is_valid(b->names[i], b->lens[i])) {
            rc->stats->blocks_lost++;
            return 0;
        }
    int m = store_metric_lookup(rc->cp->store, b->metric, b->metric_len);
    if (m < 0)
        return 0;   /* not configured (any more) */
    struct level *l;
    if (store_host_child(&rc->host, b->names, b->lens, b->depth, true, NULL, &l) != 0)
        return -ENOMEM;
    int r = store_load_image(&rc->host, l, m, b->image, b->image_len, &rc->stats->samples);
    if (r == STORE_ENOMEM)
        return -ENOMEM;
    if (r != 0)
        rc->stats->blocks_lost++;
    return 0;
}

static int apply_native(struct restore_ctx *rc, const struct loaded_file *lf)
{
    struct nsnap_stats st;
    int64_t from, to;
    uint64_t lost_before = rc->stats->blocks_lost;
    int r = nsnap_scan(lf->native, lf->native_len, &from, &to, native_block_to_store, rc, &st);
    rc->stats->blocks_lost += st.corrupt;
    if (st.corrupt || rc->stats->blocks_lost != lost_before)
        log_error("restore: %s: %" PRIu64 " damaged blocks left out (%" PRIu64 " bytes skipped); "
                  "%" PRIu64 " blocks loaded", lf->path, rc->stats->blocks_lost - lost_before,
                  st.skipped_bytes, st.blocks);
    return r;
}

static int wal_record_to_store(void *ctx, const struct wal_record *rec)
{
    struct restore_ctx *rc = ctx;
    rc->stats->wal_records++;
    if (rec->ts < rc->host_cutoff)
        return 0;
    int m = store_metric_lookup(rc->cp->store, rec->metric, rec->metric_len);
    if (m < 0 || rec->sel_count > STORE_MAX_DEPTH - 2)
        return 0;
    for (size_t i = 0; i < rec->sel_count; i++)
        if (!level_name_is_valid(rec->sel[i], rec->sel_lens[i]))
            return 0;
    struct level *l;
    if (store_host_child(&rc->host, rec->sel, rec->sel_lens, rec->sel_count, true, NULL, &l) != 0)
        return 0;
    if (store_write(&rc->host, l, m, rec->ts, rec->value) == 0) {
        struct host_state *st = host_state_get(rc->host.level);
        if (st && rec->ts < st->dirty_from)
            st->dirty_from = rec->ts;
    }
    return 0;
}

/* Moves a log aside to <path>.<what>-<n> (kept for inspection). */
static void move_aside(const char *path, const char *what)
{
    char aside[PATH_MAX];
    snprintf(aside, sizeof aside, "%s.%s-%" PRId64, path, what, unique_suffix());
    if (rename(path, aside) != 0)
        log_error("restore: cannot move %s aside: %s", path, strerror(errno));
    else
        log_error("restore: %s moved to %s", path, aside);
}

static void replay_wal(struct restore_ctx *rc, const char *path, bool is_current)
{
    struct wal_scan_stats ws = {0};
    int r = wal_replay_file(path, is_current, wal_record_to_store, rc, &ws);
    rc->stats->wal_files++;
    rc->stats->wal_corrupt += ws.corrupt;
    rc->stats->wal_torn += ws.torn_tail;
    struct host_state *st = host_state_get(rc->host.level);
    if (r == WAL_EFORMAT && is_current) {
        /* Appending after foreign bytes would make the whole log unreadable:
         * keep the file for inspection and start a fresh log. */
        log_error("restore: %s is not a WAL file (no valid record)", path);
        move_aside(path, "unreadable");
        return;
    }
    if (r == WAL_EIO || r == WAL_EFORMAT) {
        /* Never delete or rotate what was not loaded: the file stays as it
         * is and is replayed at the next start. */
        log_error("restore: cannot read %s (%s): its records are NOT loaded; the file is "
                  "kept and never rotated or deleted by this process; fix it and restart",
                  path, r == WAL_EFORMAT ? "not a WAL file" : strerror(errno));
        if (st && is_current)
            st->wal_pinned = true;
        return;
    }
    if (r == WAL_EREPAIR)
        log_warn("restore: WAL %s: its torn tail could not be cut off (%s); new records follow "
                 "it (the reader resynchronises)", path, strerror(errno));
    if (ws.corrupt || ws.torn_tail)
        log_warn("restore: WAL %s: %" PRIu64 " records, %" PRIu64 " corrupt regions skipped (%"
                 PRIu64 " bytes)%s%s", path, ws.records, ws.corrupt, ws.skipped_bytes,
                 ws.bad_header ? ", damaged file header" : "",
                 ws.torn_tail && r == 0 && !ws.bad_header ? ", torn tail truncated" : "");
    if (!st)
        return;
    if (is_current && !ws.bad_header && !rc->cp->native) {
        /* Keep appending to it (after the valid records): the next
         * snapshot, which holds the replayed data, rotates it away. */
        char *dir = host_dir(rc->cp, rc->host.level);
        if (!dir || wal_open(dir, rc->cp->fsync == CCMS_FSYNC_ALWAYS, &st->wal) != 0)
            log_error("restore: cannot reopen the WAL in %s: %s", dir ? dir : "?",
                      strerror(errno));
        free(dir);
        return;
    }
    /* A WAL rotated by a snapshot that never became durable, or a current
     * log with a damaged header (renamed, so that new records start a clean
     * file): its data is dirty again, the file is deleted after the next
     * durable snapshot. */
    char *keep = NULL;
    if (is_current) {
        char *dir = host_dir(rc->cp, rc->host.level);
        char name[64];
        snprintf(name, sizeof name, "current.wal.%" PRId64, unique_suffix());
        keep = dir ? fs_join(dir, name) : NULL;
        free(dir);
        if (!keep || rename(path, keep) != 0) {
            log_error("restore: cannot rename %s: %s; it is kept as it is", path,
                      strerror(errno));
            free(keep);
            st->wal_pinned = true;
            return;
        }
    } else {
        keep = strdup(path);
    }
    if (!keep || push_path(&st->rotated, &st->rotated_count, keep) != 0)
        free(keep);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- native log replay --------------------------------------------------------- */

/* The levels a segment defined for one host: level id -> level. Valid
 * while the segment is replayed (nothing frees levels during restore). */
struct replay_host {
    struct level *host;         /* NULL: free slot */
    struct level **levels;
    uint32_t cap;
};

struct log_replay {
    struct restore_ctx *rc;
    int *metric_map;            /* segment metric index -> store metric, -1 = not configured */
    size_t metric_count;
    struct replay_host *hosts;  /* open addressing by host pointer */
    size_t host_cap, host_count;
    bool nomem;
};

static struct replay_host *replay_host_slot(struct log_replay *lr, struct level *host)
{
    if ((lr->host_count + 1) * 2 > lr->host_cap) {
        size_t cap = lr->host_cap ? lr->host_cap * 2 : 256;
        struct replay_host *t = calloc(cap, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t i = 0; i < lr->host_cap; i++) {
            if (!lr->hosts[i].host)
                continue;
            size_t j = hash_bytes(&lr->hosts[i].host, sizeof(void *)) & (cap - 1);
            while (t[j].host)
                j = (j + 1) & (cap - 1);
            t[j] = lr->hosts[i];
        }
        free(lr->hosts);
        lr->hosts = t;
        lr->host_cap = cap;
    }
    size_t j = hash_bytes(&host, sizeof(void *)) & (lr->host_cap - 1);
    while (lr->hosts[j].host && lr->hosts[j].host != host)
        j = (j + 1) & (lr->host_cap - 1);
    if (!lr->hosts[j].host) {
        lr->hosts[j].host = host;
        lr->host_count++;
    }
    return &lr->hosts[j];
}

static void replay_reset(struct log_replay *lr)
{
    for (size_t i = 0; i < lr->host_cap; i++)
        free(lr->hosts[i].levels);
    free(lr->hosts);
    lr->hosts = NULL;
    lr->host_cap = lr->host_count = 0;
    free(lr->metric_map);
    lr->metric_map = NULL;
    lr->metric_count = 0;
}

static int replay_header(void *ctx, const struct seglog_header *h)
{
    struct log_replay *lr = ctx;
    lr->metric_map = malloc((h->metric_count ? h->metric_count : 1) * sizeof(int));
    if (!lr->metric_map)
        return -ENOMEM;
    for (size_t i = 0; i < h->metric_count; i++)
        lr->metric_map[i] = store_metric_lookup(lr->rc->cp->store, h->metrics[i],
                                                h->metric_lens[i]);
    lr->metric_count = h->metric_count;
    return 0;
}

static int replay_define(struct log_replay *lr, struct replay_host *rh,
                         const struct seglog_def *d)
{
    struct restore_ctx *rc = lr->rc;
    if (d->depth > STORE_MAX_DEPTH - 2)
        return 0;
    for (uint32_t k = 0; k < d->depth; k++)
        if (!level_name_is_valid(d->names[k], d->lens[k]))
            return 0;
    struct level *l;
    if (store_host_child(&rc->host, d->names, d->lens, d->depth, true, NULL, &l) != 0)
        return -ENOMEM;
    if (d->level_id >= rh->cap) {
        uint32_t cap = rh->cap ? rh->cap : 64;
        while (cap <= d->level_id && cap < UINT32_MAX / 2)
            cap *= 2;
        if (cap <= d->level_id)
            return 0;
        struct level **grown = realloc(rh->levels, (size_t)cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        memset(grown + rh->cap, 0, (size_t)(cap - rh->cap) * sizeof(*grown));
        rh->levels = grown;
        rh->cap = cap;
    }
    rh->levels[d->level_id] = l;
    return 0;
}

static int replay_record(void *ctx, const struct seglog_record *r)
{
    struct log_replay *lr = ctx;
    struct restore_ctx *rc = lr->rc;
    rc->stats->log_records++;
    if (!name_is_valid(r->cluster, r->cluster_len) || !name_is_valid(r->host, r->host_len))
        return 0;
    char cluster[256], host[256];
    snprintf(cluster, sizeof cluster, "%.*s", (int)r->cluster_len, r->cluster);
    snprintf(host, sizeof host, "%.*s", (int)r->host_len, r->host);
    int64_t cutoff = rc->keep && rc->keep(rc->keep_ctx, cluster, host) ? INT64_MIN : rc->cutoff;
    if (store_host_lock(rc->cp->store, r->cluster, r->cluster_len, r->host, r->host_len, true,
                        NULL, &rc->host) != 0)
        return -ENOMEM;
    int result = 0;
    struct replay_host *rh = replay_host_slot(lr, rc->host.level);
    for (size_t i = 0; rh && result == 0 && i < r->def_count; i++)
        result = replay_define(lr, rh, &r->defs[i]);
    struct host_state *st = host_state_get(rc->host.level);
    if (!rh || !st)
        result = -ENOMEM;
    for (size_t i = 0; result == 0 && i < r->sample_count; i++) {
        const struct seglog_sample *x = &r->samples[i];
        struct level *l = x->level_id == 0 ? rc->host.level
                        : x->level_id < rh->cap ? rh->levels[x->level_id] : NULL;
        if (!l) {
            rc->stats->log_unresolved++;
            continue;
        }
        int m = lr->metric_map[x->metric];
        if (m < 0 || x->ts < cutoff)
            continue;
        if (store_write(&rc->host, l, m, x->ts, x->value) == 0) {
            rc->stats->samples++;
            if (x->ts < st->dirty_from)
                st->dirty_from = x->ts;
        }
    }
    store_host_unlock(&rc->host);
    return result;
}

/* Replays every log segment in the checkpoint directory, oldest first, and
 * hands each to the log set: it is deleted by the first complete run. */
static void replay_segments(struct restore_ctx *rc)
{
    DIR *d = opendir(rc->cp->dir);
    if (!d)
        return;
    uint64_t *seqs = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        if (!seglog_parse_name(e->d_name, &seq))
            continue;
        uint64_t *grown = realloc(seqs, (count + 1) * sizeof(*seqs));
        if (!grown)
            break;
        seqs = grown;
        seqs[count++] = seq;
    }
    closedir(d);
    for (size_t i = 1; i < count; i++)      /* few segments: insertion sort */
        for (size_t j = i; j > 0 && seqs[j - 1] > seqs[j]; j--) {
            uint64_t t = seqs[j];
            seqs[j] = seqs[j - 1];
            seqs[j - 1] = t;
        }
    struct log_replay lr = {.rc = rc};
    for (size_t i = 0; i < count; i++) {
        char name[32];
        seglog_name(seqs[i], name, sizeof name);
        char *path = fs_join(rc->cp->dir, name);
        if (!path)
            break;
        struct seglog_reader rd = {replay_header, replay_record, &lr};
        struct seglog_scan_stats ws;
        /* only the newest segment can end in a torn write: cut it off so
         * that nothing follows it; older ones are read as they are */
        int r = seglog_replay_file(path, i + 1 == count, &rd, &ws);
        replay_reset(&lr);
        rc->stats->log_segments++;
        rc->stats->wal_corrupt += ws.corrupt;
        rc->stats->wal_torn += ws.torn_tail;
        if (r == SEGLOG_EFORMAT || r == SEGLOG_EIO) {
            /* Never delete what was not loaded: moved aside, kept. */
            log_error("restore: cannot read the log segment %s (%s): its records are NOT "
                      "loaded", path, r == SEGLOG_EIO ? strerror(errno) : seglog_strerror(r));
            if (r == SEGLOG_EFORMAT)
                move_aside(path, "unreadable");
        } else {
            if (r != 0)
                log_error("restore: out of memory replaying %s: some records are NOT loaded",
                          path);
            if (ws.corrupt || ws.torn_tail)
                log_warn("restore: log segment %s: %" PRIu64 " records, %" PRIu64
                         " corrupt regions skipped (%" PRIu64 " bytes)%s", path, ws.records,
                         ws.corrupt, ws.skipped_bytes, ws.torn_tail ? ", torn tail cut off" : "");
            /* an unloaded remainder (out of memory) must survive: not adopted */
            if (r == 0 && logset_adopt(rc->cp->log, seqs[i], path) != 0)
                log_error("restore: out of memory: %s is kept", path);
        }
        free(path);
    }
    if (rc->stats->log_unresolved)
        log_error("restore: %" PRIu64 " logged samples name a level whose definition was in a "
                  "damaged record: not loaded", rc->stats->log_unresolved);
    free(seqs);
}

/* Sorts a host directory's entries into checkpoint files and WAL files. */
static void scan_host_dir(struct restore_ctx *rc, const char *dir, struct loaded_file **files,
                          size_t *file_count, char ***rotated, size_t *rotated_count,
                          bool *has_current)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_error("restore: cannot read %s: %s", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        char *path = fs_join(dir, name);
        if (!path)
            break;
        int64_t stamp;
        struct stat st;
        /* lstat: a symlink is never followed (it could make two hosts
         * share one log) */
        bool regular = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
        if (regular && (parse_stem(name, ".bin", &stamp) || parse_stem(name, ".json", &stamp))) {
            bool binary = parse_stem(name, ".bin", &stamp);
            if (!binary)
                parse_stem(name, ".json", &stamp);
            load_candidate(rc, path, binary, stamp, files, file_count);
        } else if (regular && parse_stem(name, ".ccms", &stamp)) {
            load_native_candidate(rc, path, stamp, files, file_count);
        } else if (regular && strcmp(name, "current.wal") == 0) {
            *has_current = true;
        } else if (regular && strncmp(name, "current.wal.", 12) == 0 &&
                   parse_stem(name + 12, "", &stamp)) {
            if (push_path(rotated, rotated_count, path) == 0)
                path = NULL;
        } else if (regular && (parse_stem(name, ".bin.tmp", &stamp) ||
                               parse_stem(name, ".json.tmp", &stamp) ||
                               parse_stem(name, ".ccms.tmp", &stamp))) {
            log_info("restore: removing unfinished %s", path);
            unlink(path);
        } else {
            log_warn("restore: ignoring %s", path);
            rc->stats->entries_ignored++;
        }
        free(path);
    }
    closedir(d);
}

static void restore_host(struct restore_ctx *rc, const char *cluster, const char *host)
{
    char *dir = fs_join3(rc->cp->dir, cluster, host);
    if (!dir)
        return;
    rc->host_cutoff = rc->keep && rc->keep(rc->keep_ctx, cluster, host) ? INT64_MIN : rc->cutoff;
    struct loaded_file *files = NULL;
    size_t file_count = 0, rotated_count = 0;
    char **rotated = NULL;
    bool has_current = false;
    scan_host_dir(rc, dir, &files, &file_count, &rotated, &rotated_count, &has_current);
    if (file_count > 1)
        qsort(files, file_count, sizeof(*files), compare_loaded);
    if (rotated_count > 1)
        qsort(rotated, rotated_count, sizeof(char *), compare_strings);

    if (file_count || rotated_count || has_current) {
        if (store_host_lock(rc->cp->store, cluster, strlen(cluster), host, strlen(host), true,
                            NULL, &rc->host) != 0) {
            log_error("restore: out of memory for %s", dir);
        } else {
            for (size_t i = 0; i < file_count; i++) {
                const char *names[STORE_MAX_DEPTH];
                size_t lens[STORE_MAX_DEPTH];
                rc->path = files[i].path;
                int applied = files[i].native ? apply_native(rc, &files[i])
                                              : apply_level(rc, &files[i].file.host, names, lens, 0);
                if (applied != 0)
                    log_error("restore: out of memory loading %s", files[i].path);
                rc->stats->files_loaded++;
            }
            struct host_state *st = file_count ? host_state_get(rc->host.level) : NULL;
            for (size_t i = 0; st && i < file_count; i++) {
                int64_t stamp, min_start = INT64_MAX;
                const char *base = strrchr(files[i].path, '/');
                if (parse_stem(base + 1, ".bin", &stamp) || parse_stem(base + 1, ".json", &stamp) ||
                    parse_stem(base + 1, ".ccms", &stamp))
                    st->max_name = stamp > st->max_name ? stamp : st->max_name;
                series_start_bounds(&files[i].file.host, &min_start, &st->max_series_start);
                st->last_to = files[i].file.to;
            }
            for (size_t i = 0; i < rotated_count; i++)
                replay_wal(rc, rotated[i], false);
            if (has_current) {
                char *current = fs_join(dir, "current.wal");
                if (current)
                    replay_wal(rc, current, true);
                free(current);
            }
            store_host_unlock(&rc->host);
        }
    }
    for (size_t i = 0; i < file_count; i++) {
        ckpt_file_free(&files[i].file);
        free(files[i].path);
        fs_unmap_file(files[i].native, files[i].native_len);
    }
    free(files);
    free_paths(rotated, rotated_count);
    free(dir);
}

/* Calls fn for every valid subdirectory name of dir; anything else is
 * logged and counted, never fatal. */
static void for_each_subdir(struct restore_ctx *rc, const char *dir,
                            void (*fn)(struct restore_ctx *, const char *, const char *),
                            const char *arg)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_error("restore: cannot read %s: %s", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = fs_join(dir, e->d_name);
        struct stat st;
        /* lstat: a symlinked cluster or host directory is not followed (a
         * phantom host would share another host's files) */
        bool is_dir = path && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
        uint64_t seq;
        if (!is_dir && dir == rc->cp->dir && seglog_parse_name(e->d_name, &seq)) {
            free(path);     /* a native log segment: replayed after the hosts */
            continue;
        }
        if (is_dir && name_is_valid(e->d_name, strlen(e->d_name))) {
            char *copy = strdup(e->d_name);
            if (!copy || push_path(&names, &count, copy) != 0)
                free(copy);
        } else {
            log_warn("restore: ignoring %s", path ? path : e->d_name);
            rc->stats->entries_ignored++;
        }
        free(path);
    }
    closedir(d);
    if (count > 1)
        qsort(names, count, sizeof(char *), compare_strings);
    for (size_t i = 0; i < count; i++)
        fn(rc, arg, names[i]);
    free_paths(names, count);
}

/* The hosts to restore are collected first so that they can be restored
 * in parallel: hosts are independent (each is restored under its own lock). */
static void collect_host(struct restore_ctx *rc, const char *cluster, const char *host)
{
    host_list_add(rc->jobs, cluster, host);
}

static void collect_cluster(struct restore_ctx *rc, const char *unused, const char *cluster)
{
    (void)unused;
    char *dir = fs_join(rc->cp->dir, cluster);
    if (dir)
        for_each_subdir(rc, dir, collect_host, cluster);
    free(dir);
}

static void *restore_worker(void *arg)
{
    struct restore_ctx *rc = arg;
    for (const struct host_ref *h; (h = host_list_take(rc->jobs)) != NULL;) {
        uint64_t samples = rc->stats->samples;
        restore_host(rc, h->cluster, h->host);
        progress_add(&rc->jobs->progress, 1, rc->stats->samples - samples);
    }
    return NULL;
}

static void restore_stats_add(struct restore_stats *to, const struct restore_stats *from)
{
    to->files_loaded += from->files_loaded;
    to->files_failed += from->files_failed;
    to->files_too_old += from->files_too_old;
    to->entries_ignored += from->entries_ignored;
    to->samples += from->samples;
    to->wal_files += from->wal_files;
    to->wal_records += from->wal_records;
    to->wal_corrupt += from->wal_corrupt;
    to->wal_torn += from->wal_torn;
    to->blocks_lost += from->blocks_lost;
}

/* Restores the collected hosts on several threads: a restore decodes
 * files and checks every block, which is CPU work. Each thread counts
 * into its own stats, added up at the end. */
static void restore_jobs_run(const struct restore_ctx *base, struct host_list *jobs)
{
    size_t threads = host_threads(jobs->count);
    struct restore_ctx ctx[HOST_THREADS];
    struct restore_stats stats[HOST_THREADS];
    for (size_t t = 0; t < threads; t++) {
        stats[t] = (struct restore_stats){0};
        ctx[t] = *base;
        ctx[t].stats = &stats[t];
    }
    progress_begin(&jobs->progress, "restore", "hosts", jobs->count, "samples");
    run_on_threads(threads, restore_worker, ctx, sizeof ctx[0]);
    progress_end(&jobs->progress);
    for (size_t t = 0; t < threads; t++)
        restore_stats_add(base->stats, &stats[t]);
}

int checkpointer_restore(struct checkpointer *cp, int64_t now, host_filter_fn keep,
                         void *keep_ctx, struct restore_stats *stats)
{
    struct restore_stats local = {0};
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    int rc = fs_mkdir_p(cp->dir);
    if (rc != 0) {
        log_crit("restore: cannot create checkpoint directory %s: %s", cp->dir, strerror(-rc));
        return CHECKPOINT_EIO;
    }
    struct host_list jobs = {0};
    struct restore_ctx ctx = {
        .cp = cp,
        .cutoff = cp->retention > 0 ? now - cp->retention : INT64_MIN,
        .keep = keep,
        .keep_ctx = keep_ctx,
        .stats = &local,
        .jobs = &jobs,
    };
    for_each_subdir(&ctx, cp->dir, collect_cluster, NULL);
    if (jobs.failed)
        log_error("restore: out of memory listing the host directories: some hosts are NOT "
                  "loaded");
    restore_jobs_run(&ctx, &jobs);
    /* after every host's files: the log holds what came after them */
    replay_segments(&ctx);
    host_list_free(&jobs);
    local.seconds = seconds_since(&started);
    log_info("restore: %" PRIu64 " files loaded (%" PRIu64 " samples), %" PRIu64 " skipped as "
             "too old, %" PRIu64 " failed; %" PRIu64 " WAL records from %" PRIu64 " files; %"
             PRIu64 " log records from %" PRIu64 " segments; %.3f s", local.files_loaded,
             local.samples, local.files_too_old, local.files_failed, local.wal_records,
             local.wal_files, local.log_records, local.log_segments, local.seconds);
    pthread_mutex_lock(&cp->status_lock);
    cp->restored = local;
    pthread_mutex_unlock(&cp->status_lock);
    if (stats)
        *stats = local;
    return 0;
}

void checkpointer_status(struct checkpointer *cp, struct checkpoint_status *out)
{
    out->format = !cp->wal_mode ? "json" : cp->native ? "native" : "go";
    out->log_bytes = logset_bytes(cp->log);
    out->log_segments = logset_segment_count(cp->log);
    pthread_mutex_lock(&cp->status_lock);
    out->restore = cp->restored;
    out->last_run = cp->last_run;
    out->runs = cp->runs;
    out->runs_failed = cp->runs_failed;
    out->run_seconds = cp->run_seconds;
    pthread_mutex_unlock(&cp->status_lock);
}

/* ---- merging (the Go store's file order) ------------------------------------ */

/* Decodes every checkpoint file of a host directory (undecodable ones are
 * logged and left alone) into *files, sorted by write order (`to`). */
static void decode_host_files(const char *dir, struct loaded_file **files, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int64_t stamp;
        bool binary = parse_stem(e->d_name, ".bin", &stamp);
        if (!binary && !parse_stem(e->d_name, ".json", &stamp))
            continue;
        char *path = fs_join(dir, e->d_name);
        struct ckpt_file f;
        char err[256];
        struct loaded_file *grown = path ? realloc(*files, (*count + 1) * sizeof(*grown)) : NULL;
        if (grown)
            *files = grown;
        if (!grown || decode_file(path, binary, &f, err, sizeof err) != 0) {
            log_warn("checkpoint: %s is left out of the merge: %s", path ? path : dir,
                     grown ? err : "out of memory");
            free(path);
            continue;
        }
        (*files)[(*count)++] = (struct loaded_file){f, path, stamp, NULL, 0};
    }
    if (d)
        closedir(d);
    if (*count > 1)
        qsort(*files, *count, sizeof(**files), compare_loaded);
}

/* Loads the files and then the new data into a scratch store and returns
 * its host subtree in checkpoint form (merged->host). */
static int merge_in_scratch(struct checkpointer *cp, struct loaded_file *files, size_t count,
                            const struct ckpt_file *fresh, struct ckpt_file *merged)
{
    size_t metric_count = store_metric_count(cp->store);
    struct store_metric *metrics = calloc(metric_count ? metric_count : 1, sizeof(*metrics));
    struct store *scratch = NULL;
    int rc = metrics ? 0 : -ENOMEM;
    for (size_t m = 0; rc == 0 && m < metric_count; m++)
        metrics[m] = *store_metric_at(cp->store, (int)m);
    if (rc == 0 && store_create(metrics, metric_count, &scratch) != 0)
        rc = -ENOMEM;
    struct restore_stats ignored = {0};
    struct restore_ctx rctx = {.cp = cp, .cutoff = INT64_MIN, .host_cutoff = INT64_MIN,
                              .stats = &ignored};
    if (rc == 0 && store_host_lock(scratch, "c", 1, "h", 1, true, NULL, &rctx.host) != 0)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i <= count; i++) {
        const char *names[STORE_MAX_DEPTH];
        size_t lens[STORE_MAX_DEPTH];
        rctx.path = i < count ? files[i].path : "the new snapshot";
        rc = apply_level(&rctx, i < count ? &files[i].file.host : &fresh->host, names, lens, 0);
    }
    if (rc == 0)
        rc = level_to_ckpt(scratch, rctx.host.level, INT64_MIN, &merged->host);
    if (rctx.host.level)
        store_host_unlock(&rctx.host);
    store_destroy(scratch);
    free(metrics);
    return rc;
}

/* Rewrites all of the host's checkpoint files plus the new data as one
 * file, named like the oldest of them (replacing it), and deletes the
 * others. Needed when new data starts before data already on disk: the Go
 * store loads files in name order and refuses a series that starts before
 * the one loaded before it, so going back to it must stay possible. */
static int write_merged(struct checkpointer *cp, struct host_snapshot *hs, uint64_t *bytes,
                        int64_t *stamp, int64_t *max_start)
{
    struct loaded_file *files = NULL;
    size_t count = 0;
    decode_host_files(hs->dir, &files, &count);
    struct ckpt_file merged = {.from = hs->file.from, .to = hs->file.to};
    int rc = merge_in_scratch(cp, files, count, &hs->file, &merged);
    *stamp = hs->file.from;
    for (size_t i = 0; i < count; i++) {
        int64_t s;
        const char *base = strrchr(files[i].path, '/') + 1;
        if ((parse_stem(base, ".bin", &s) || parse_stem(base, ".json", &s)) && s < *stamp)
            *stamp = s;
        if (files[i].file.from < merged.from)
            merged.from = files[i].file.from;
    }
    int64_t min_start = INT64_MAX;
    *max_start = INT64_MIN;
    series_start_bounds(&merged.host, &min_start, max_start);
    if (rc == 0)
        rc = write_ckpt_file(cp, hs->dir, &merged, *stamp, bytes);
    char name[64];
    snprintf(name, sizeof name, "/%" PRId64 ".%s", *stamp, cp->wal_mode ? "bin" : "json");
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(files[i].path), nlen = strlen(name);
        bool replaced = len >= nlen && strcmp(files[i].path + len - nlen, name) == 0;
        if (rc == 0 && !replaced && unlink(files[i].path) != 0)
            log_warn("checkpoint: cannot delete merged %s: %s", files[i].path, strerror(errno));
        ckpt_file_free(&files[i].file);
        free(files[i].path);
    }
    free(files);
    ckpt_file_free(&merged);
    if (rc == 0)
        log_info("checkpoint: %s: back-filled data merged %zu files into one", hs->dir, count);
    return rc;
}

/* ---- background worker ------------------------------------------------------ */

/* fsync "interval": syncs every WAL written since the last tick. */
static void sync_dirty_wals(struct checkpointer *cp)
{
    char **clusters = NULL;
    size_t cluster_count = 0;
    if (store_list_clusters(cp->store, &clusters, &cluster_count) != 0)
        return;
    for (size_t c = 0; c < cluster_count; c++) {
        char **hosts = NULL;
        size_t host_count = 0;
        store_list_hosts(cp->store, clusters[c], strlen(clusters[c]), &hosts, &host_count);
        for (size_t i = 0; i < host_count; i++) {
            struct store_host h;
            if (store_host_lock(cp->store, clusters[c], strlen(clusters[c]), hosts[i],
                                strlen(hosts[i]), false, NULL, &h) != 0)
                continue;
            struct host_state *st = h.level->upper->host_data;
            if (st && st->wal && st->needs_sync) {
                if (wal_sync(st->wal) != 0)
                    log_error("checkpoint: fsync of the WAL of %s/%s failed: %s", clusters[c],
                              hosts[i], strerror(errno));
                st->needs_sync = false;
            }
            store_host_unlock(&h);
        }
        free_paths(hosts, host_count);
    }
    free_paths(clusters, cluster_count);
}

static void *worker_main(void *arg)
{
    struct checkpointer *cp = arg;
    int64_t next_run = (int64_t)time(NULL) + cp->interval;
    pthread_mutex_lock(&cp->worker_lock);
    while (!cp->stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&cp->worker_wake, &cp->worker_lock, &deadline);
        if (cp->stopping)
            break;
        bool early = cp->early_run_requested;
        cp->early_run_requested = false;
        pthread_mutex_unlock(&cp->worker_lock);

        if (cp->fsync == CCMS_FSYNC_INTERVAL && cp->native &&
            logset_sync_active(cp->log) != 0)
            log_error("checkpoint: fsync of the log segment failed: %s", strerror(errno));
        else if (cp->fsync == CCMS_FSYNC_INTERVAL && !cp->native)
            sync_dirty_wals(cp);
        int64_t now = (int64_t)time(NULL);
        if (early || now >= next_run) {
            checkpointer_run(cp, now, NULL);
            if (now >= next_run)
                next_run = now + cp->interval;
        }
        pthread_mutex_lock(&cp->worker_lock);
    }
    pthread_mutex_unlock(&cp->worker_lock);
    return NULL;
}

int checkpointer_start(struct checkpointer *cp)
{
    pthread_mutex_lock(&cp->worker_lock);
    cp->stopping = false;
    int rc = pthread_create(&cp->worker, NULL, worker_main, cp);
    cp->worker_running = rc == 0;
    pthread_mutex_unlock(&cp->worker_lock);
    return rc == 0 ? 0 : CHECKPOINT_ENOMEM;
}

void checkpointer_stop(struct checkpointer *cp)
{
    pthread_mutex_lock(&cp->worker_lock);
    bool running = cp->worker_running;
    cp->stopping = true;
    cp->worker_running = false;
    pthread_cond_signal(&cp->worker_wake);
    pthread_mutex_unlock(&cp->worker_lock);
    if (running)
        pthread_join(cp->worker, NULL);
}

static void request_early_run(struct checkpointer *cp)
{
    pthread_mutex_lock(&cp->worker_lock);
    cp->early_run_requested = true;
    pthread_cond_signal(&cp->worker_wake);
    pthread_mutex_unlock(&cp->worker_lock);
}

/* ---- lifetime ---------------------------------------------------------------- */

int checkpointer_create(struct store *s, const struct ccms_config *cfg,
                        struct checkpointer **out)
{
    struct checkpointer *cp = calloc(1, sizeof(*cp));
    if (!cp)
        return CHECKPOINT_ENOMEM;
    cp->store = s;
    cp->dir = strdup(cfg->checkpoint_dir ? cfg->checkpoint_dir : "./var/checkpoints");
    if (!cp->dir) {
        free(cp);
        return CHECKPOINT_ENOMEM;
    }
    cp->wal_mode = !cfg->file_format || strcmp(cfg->file_format, "wal") == 0;
    cp->native = cp->wal_mode && !cfg->write_go_formats;
    size_t metric_count = store_metric_count(s);
    const char **names = calloc(metric_count ? metric_count : 1, sizeof(char *));
    for (size_t i = 0; names && i < metric_count; i++)
        names[i] = store_metric_at(s, (int)i)->name;
    int lrc = names ? logset_create(cp->dir, names, metric_count, cfg->fsync, &cp->log)
                    : LOGSET_ENOMEM;
    free(names);
    if (lrc != 0) {
        free(cp->dir);
        free(cp);
        return CHECKPOINT_ENOMEM;
    }
    cp->fsync = cfg->fsync;
    cp->interval = cfg->checkpoint_interval_seconds > 0 ? cfg->checkpoint_interval_seconds
                                                        : 12 * 3600;
    cp->retention = cfg->retention_seconds;
    cp->future_tolerance = cfg->future_tolerance_seconds;
    cp->max_wal_size = cfg->max_wal_size > 0 ? (uint64_t)cfg->max_wal_size : 0;
    for (size_t i = 0; i < store_metric_count(s); i++)
        if (store_metric_at(s, (int)i)->frequency > cp->max_frequency)
            cp->max_frequency = store_metric_at(s, (int)i)->frequency;
    pthread_mutex_init(&cp->run_lock, NULL);
    pthread_mutex_init(&cp->status_lock, NULL);
    pthread_mutex_init(&cp->undeleted_lock, NULL);
    pthread_mutex_init(&cp->worker_lock, NULL);
    pthread_cond_init(&cp->worker_wake, NULL);
    store_set_host_cleanup(s, host_state_cleanup, cp);
    *out = cp;
    return 0;
}

void checkpointer_destroy(struct checkpointer *cp)
{
    if (!cp)
        return;
    checkpointer_stop(cp);
    pthread_cond_destroy(&cp->worker_wake);
    pthread_mutex_destroy(&cp->worker_lock);
    pthread_mutex_destroy(&cp->run_lock);
    pthread_mutex_destroy(&cp->status_lock);
    pthread_mutex_destroy(&cp->undeleted_lock);
    free_paths(cp->undeleted, cp->undeleted_count);
    logset_destroy(cp->log);
    free(cp->dir);
    free(cp);
}

/* ---- ingest batch ------------------------------------------------------------- */

#define BATCH_SYNC_MAX 16
/* Ended native records are held until the end of the feed call (ingest.h)
 * or until this many bytes wait: a request to 256 hosts is then a few
 * appends, not 256, and the kernel zeroes fewer partial pages. */
#define BATCH_WRITE_BYTES (256 * 1024)

struct checkpoint_batch {
    struct checkpointer *cp;
    uint8_t *pending;            /* Go format: encoded WAL records of the current host */
    size_t pending_len;
    size_t pending_cap;
    int64_t pending_min_ts;
    bool pending_any;
    /* fsync "always": duplicated descriptors of the logs written, synced
     * before the answer. A request to thousands of hosts must not hold a
     * descriptor per host: past BATCH_SYNC_MAX they are synced early. */
    int sync_fds[BATCH_SYNC_MAX];
    ino_t sync_inodes[BATCH_SYNC_MAX];   /* to sync each file only once */
    size_t sync_count;
    int sync_rc;                 /* first failure of an early sync */

    /* Native format: the current host's record is built in `rec`; ended
     * records wait in `out` and are written together (native_write), all
     * against the segment `seg`: a writer's reference held from the first
     * record's first sample until they are written, or with fsync "always"
     * until they are synced. */
    struct seglog_builder rec;
    struct jbuf out;
    struct log_segment *seg;
    bool rec_open;
    bool rec_failed;             /* a sample could not be added: this record is not written */
    struct level **defined;      /* levels the open record defines (log_seq set optimistically) */
    size_t defined_count, defined_cap;
    struct log_segment *sync_segs[BATCH_SYNC_MAX];   /* "always": synced at finish */
    size_t sync_seg_count;
};

int checkpoint_batch_new(struct checkpointer *cp, struct checkpoint_batch **out)
{
    struct checkpoint_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return CHECKPOINT_ENOMEM;
    b->cp = cp;
    b->pending_min_ts = INT64_MAX;
    if (cp && cp->native) {
        seglog_builder_init(&b->rec);
        jbuf_init(&b->out, 1 << 14);
    }
    *out = b;
    return 0;
}

/* The level's id in the native log, defined in the record when the
 * segment does not know it yet. */
static int native_level_id(struct checkpoint_batch *b, struct store_host *h, struct level *l,
                           const char *const *sel, const size_t *sel_lens, size_t sel_count,
                           uint32_t *id)
{
    if (l == h->level) {
        *id = 0;
        return 0;
    }
    uint32_t seq = (uint32_t)log_segment_seq(b->seg);
    if (l->log_id == 0) {
        struct host_state *st = host_state_get(h->level);
        if (!st || st->next_level_id == UINT32_MAX)
            return CHECKPOINT_ENOMEM;
        l->log_id = ++st->next_level_id;
    }
    *id = l->log_id;
    if (l->log_seq == seq)
        return 0;
    if (b->defined_count == b->defined_cap) {
        size_t cap = b->defined_cap ? b->defined_cap * 2 : 64;
        struct level **grown = realloc(b->defined, cap * sizeof(*grown));
        if (!grown)
            return CHECKPOINT_ENOMEM;
        b->defined = grown;
        b->defined_cap = cap;
    }
    if (seglog_record_def(&b->rec, l->log_id, sel, sel_lens, sel_count) != 0)
        return CHECKPOINT_EIO;
    b->defined[b->defined_count++] = l;
    l->log_seq = seq;
    return 0;
}

static int native_add(struct checkpoint_batch *b, struct store_host *h, struct level *l,
                      int metric, const char *const *sel, const size_t *sel_lens,
                      size_t sel_count, int64_t ts, float value)
{
    if (!b->rec_open) {
        if (!b->seg && logset_acquire(b->cp->log, &b->seg) != 0)
            return CHECKPOINT_EIO;
        const struct level *host = h->level;
        const struct level *cluster = host->upper->parent;
        b->rec_open = true;
        b->rec_failed = false;
        if (seglog_record_begin(&b->rec, cluster->name, cluster->name_len, host->name,
                                host->name_len) != 0)
            b->rec_failed = true;
    }
    uint32_t id = 0;
    int rc = b->rec_failed ? CHECKPOINT_EIO
                           : native_level_id(b, h, l, sel, sel_lens, sel_count, &id);
    if (rc == 0 && seglog_record_sample(&b->rec, id, (uint32_t)metric, ts, value) != 0)
        rc = CHECKPOINT_ENOMEM;
    if (rc != 0)
        b->rec_failed = true;
    return rc;
}

int checkpoint_batch_add(struct checkpoint_batch *b, struct store_host *h, struct level *level,
                         int metric, const char *const *sel, const size_t *sel_lens,
                         size_t sel_count, int64_t ts, float value)
{
    if (!b->cp)
        return 0;
    b->pending_any = true;
    if (ts < b->pending_min_ts)
        b->pending_min_ts = ts;
    if (!b->cp->wal_mode)
        return 0;
    if (b->cp->native)
        return native_add(b, h, level, metric, sel, sel_lens, sel_count, ts, value);
    const char *name = store_metric_at(b->cp->store, metric)->name;
    size_t metric_len = strlen(name);
    size_t need = wal_record_size(metric_len, sel_lens, sel_count);
    if (b->pending_len + need > b->pending_cap) {
        size_t cap = b->pending_cap ? b->pending_cap * 2 : 16384;
        while (cap < b->pending_len + need)
            cap *= 2;
        uint8_t *grown = realloc(b->pending, cap);
        if (!grown)
            return CHECKPOINT_ENOMEM;
        b->pending = grown;
        b->pending_cap = cap;
    }
    int n = wal_record_encode(b->pending + b->pending_len, ts, name, metric_len, sel, sel_lens,
                              sel_count, value);
    if (n < 0)
        return CHECKPOINT_EIO;
    b->pending_len += (size_t)n;
    return 0;
}

/* Failing writes repeat per host and request: a few lines per 10 s each. */
static struct log_limit wal_open_errors, wal_append_errors, wal_sync_errors;

/* fsyncs and closes the remembered descriptors; the first failure stays in
 * b->sync_rc for checkpoint_batch_finish. */
static void sync_remembered(struct checkpoint_batch *b)
{
    for (size_t i = 0; i < b->sync_count; i++) {
        if (fsync(b->sync_fds[i]) != 0 && b->sync_rc == 0) {
            log_limited(&wal_sync_errors, LOG_ERR, "WAL: fsync failed: %s", strerror(errno));
            b->sync_rc = CHECKPOINT_EIO;
        }
        close(b->sync_fds[i]);
    }
    b->sync_count = 0;
}

/* Remembers w's file for the fsync before the answer ("always"). A
 * duplicated descriptor keeps working even if a snapshot rotates the WAL
 * or the descriptor pool closes the log's own descriptor meanwhile. */
static int remember_for_sync(struct checkpoint_batch *b, struct wal_file *w)
{
    int fd = wal_dup_fd(w);
    struct stat st;
    if (fd < 0)
        return CHECKPOINT_EIO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return CHECKPOINT_EIO;
    }
    for (size_t i = 0; i < b->sync_count; i++)
        if (b->sync_inodes[i] == st.st_ino) {
            close(fd);
            return 0;
        }
    if (b->sync_count == BATCH_SYNC_MAX)
        sync_remembered(b);
    b->sync_fds[b->sync_count] = fd;
    b->sync_inodes[b->sync_count++] = st.st_ino;
    return 0;
}

static int append_pending(struct checkpoint_batch *b, struct level *host, struct host_state *st)
{
    struct checkpointer *cp = b->cp;
    if (!st->wal) {
        char *dir = host_dir(cp, host);
        int rc = dir ? wal_open(dir, b->cp->fsync == CCMS_FSYNC_ALWAYS, &st->wal)
                     : CHECKPOINT_ENOMEM;
        if (rc != 0)
            log_limited(&wal_open_errors, LOG_ERR, "WAL: cannot open %s/current.wal: %s",
                        dir ? dir : "?", strerror(errno));
        free(dir);
        if (rc != 0)
            return CHECKPOINT_EIO;
    }
    if (wal_append(st->wal, b->pending, b->pending_len) != 0) {
        log_limited(&wal_append_errors, LOG_ERR, "WAL: append to %s/%s failed: %s",
                    host->upper->parent->name, host->name, strerror(errno));
        return CHECKPOINT_EIO;
    }
    st->needs_sync = true;
    if (cp->fsync == CCMS_FSYNC_ALWAYS && remember_for_sync(b, st->wal) != 0)
        return CHECKPOINT_EIO;
    if (cp->max_wal_size && wal_size(st->wal) >= cp->max_wal_size)
        request_early_run(cp);
    return 0;
}

/* "always": the segment is synced at finish; the reference is kept until
 * then (the segment cannot be closed under it). */
static void remember_segment(struct checkpoint_batch *b)
{
    for (size_t i = 0; i < b->sync_seg_count; i++)
        if (b->sync_segs[i] == b->seg) {
            logset_release(b->cp->log, b->seg);
            return;
        }
    if (b->sync_seg_count == BATCH_SYNC_MAX) {
        for (size_t i = 0; i < b->sync_seg_count; i++) {
            if (log_segment_sync(b->sync_segs[i]) != 0 && b->sync_rc == 0) {
                log_limited(&wal_sync_errors, LOG_ERR, "WAL: fsync failed: %s", strerror(errno));
                b->sync_rc = CHECKPOINT_EIO;
            }
            logset_release(b->cp->log, b->sync_segs[i]);
        }
        b->sync_seg_count = 0;
    }
    b->sync_segs[b->sync_seg_count++] = b->seg;
}

/* The levels the open record defined are not in the log after all: the
 * next record that uses them defines them again. */
static void forget_definitions(struct checkpoint_batch *b)
{
    for (size_t i = 0; i < b->defined_count; i++)
        b->defined[i]->log_seq = 0;
    b->defined_count = 0;
}

/* Writes the held records with one write(2) and lets go of the segment.
 * On failure the levels the last record defined are defined again by the
 * next record (a record that defines is never held, see native_end). */
static int native_write(struct checkpoint_batch *b)
{
    if (!b->seg)
        return 0;
    struct checkpointer *cp = b->cp;
    int rc = 0;
    if (b->out.len > 0 && log_segment_append(cp->log, b->seg, b->out.data, b->out.len) != 0) {
        log_limited(&wal_append_errors, LOG_ERR, "WAL: append to the log segment %" PRIu64
                    " failed: %s", log_segment_seq(b->seg), strerror(errno));
        rc = CHECKPOINT_EIO;
    }
    if (rc != 0)
        forget_definitions(b);
    b->defined_count = 0;
    jbuf_reset(&b->out);
    logset_written(cp->log, b->seg);
    if (rc == 0 && cp->fsync == CCMS_FSYNC_ALWAYS)
        remember_segment(b);
    else
        logset_release(cp->log, b->seg);
    b->seg = NULL;
    if (rc == 0 && cp->max_wal_size && logset_bytes(cp->log) >= cp->max_wal_size)
        request_early_run(cp);
    return rc;
}

/* Ends the current host's record. It is written at once when it defines
 * level ids: another thread may use an id as soon as the host is unlocked,
 * and its record must not reach the log before the definition. Otherwise
 * it waits in b->out for native_write. */
static int native_end(struct checkpoint_batch *b)
{
    if (!b->rec_open)
        return 0;
    int rc = b->rec_failed ? CHECKPOINT_EIO : 0;
    if (rc == 0 && !seglog_record_empty(&b->rec) &&
        (seglog_record_end(&b->rec, &b->out) != 0 || b->out.failed))
        rc = CHECKPOINT_ENOMEM;
    b->rec_open = false;
    if (rc != 0) {
        forget_definitions(b);
        return rc;
    }
    if (b->defined_count > 0 || b->out.len >= BATCH_WRITE_BYTES)
        return native_write(b);
    return 0;
}

int checkpoint_batch_commit(struct checkpoint_batch *b, struct store_host *h)
{
    if (!b->cp || !b->pending_any)
        return 0;
    int rc = 0;
    struct host_state *st = host_state_get(h->level);
    if (!st) {
        rc = CHECKPOINT_ENOMEM;
    } else {
        if (b->pending_min_ts < st->dirty_from)
            st->dirty_from = b->pending_min_ts;
        if (b->cp->wal_mode && b->pending_len > 0)
            rc = append_pending(b, h->level, st);
    }
    if (b->cp->native) {
        int nrc = native_end(b);
        if (rc == 0)
            rc = nrc;
    }
    b->pending_len = 0;
    b->pending_any = false;
    b->pending_min_ts = INT64_MAX;
    return rc;
}

int checkpoint_batch_flush(struct checkpoint_batch *b)
{
    if (!b->cp || !b->cp->native)
        return 0;
    return native_write(b);
}

int checkpoint_batch_finish(struct checkpoint_batch *b)
{
    int wrc = checkpoint_batch_flush(b);
    if (wrc != 0 && b->sync_rc == 0)
        b->sync_rc = wrc;
    sync_remembered(b);
    for (size_t i = 0; i < b->sync_seg_count; i++) {
        if (log_segment_sync(b->sync_segs[i]) != 0 && b->sync_rc == 0) {
            log_limited(&wal_sync_errors, LOG_ERR, "WAL: fsync failed: %s", strerror(errno));
            b->sync_rc = CHECKPOINT_EIO;
        }
        logset_release(b->cp->log, b->sync_segs[i]);
    }
    b->sync_seg_count = 0;
    int rc = b->sync_rc;
    b->sync_rc = 0;
    return rc;
}

void checkpoint_batch_free(struct checkpoint_batch *b)
{
    if (!b)
        return;
    if (b->rec_open) {
        /* never ended (the caller lost its host lock): not written */
        forget_definitions(b);
        b->rec_open = false;
    }
    checkpoint_batch_finish(b);
    if (b->cp && b->cp->native) {
        seglog_builder_free(&b->rec);
        jbuf_free(&b->out);
    }
    free(b->defined);
    free(b->pending);
    free(b);
}
