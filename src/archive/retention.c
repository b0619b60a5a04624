/*
 * retention — see retention.h.
 */
#include "archive/retention.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/cleanup.h"
#include "log.h"
#include "net/backend.h"
#include "persist/checkpoint.h"
#include "util/prom.h"
#include "util/clock.h"

/* What the retention thread did since the start (GET /metrics). */
static struct {
    _Atomic uint64_t free_runs, buffers_freed, free_ns;
    _Atomic uint64_t cap_runs, cap_bytes_freed, cap_failed;
    _Atomic uint64_t cleanup_runs, cleanup_failed, files_deleted, files_failed;
    _Atomic uint64_t parquet_files, parquet_rows;
    _Atomic uint64_t cleanup_ns;
} retention_totals;

struct retention {
    struct store *store;
    struct checkpointer *cp;
    const struct ccms_config *cfg;

    atomic_bool cancel;            /* set at stop: abandons a running backend request */

    pthread_mutex_t lock;          /* guards the fields below */
    pthread_cond_t wake;
    pthread_t thread;
    bool running;
    bool stopping;
};

int retention_create(struct store *s, struct checkpointer *cp, const struct ccms_config *cfg,
                     struct retention **out)
{
    struct retention *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->store = s;
    r->cp = cp;
    r->cfg = cfg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    *out = r;
    return 0;
}

void retention_destroy(struct retention *r)
{
    if (!r)
        return;
    retention_stop(r);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Writes unsaved data before it is freed from memory. */
static void persist_before_free(struct retention *r, int64_t now)
{
    if (r->cp && checkpointer_run(r->cp, now, NULL) != 0)
        log_warn("retention: some hosts could not be checkpointed before freeing");
}

bool retention_host_in_use(void *used_nodes, const char *cluster, const char *host)
{
    return used_nodes_contains(used_nodes, cluster, host);
}

bool retention_nodes_in_use(const struct ccms_config *cfg, int64_t ts, const atomic_bool *cancel,
                            const char *fallback, struct used_nodes *out)
{
    const char *url = cfg->backend_url;
    if (!url || !url[0])
        return false;
    char err[512];
    if (backend_used_nodes(url, cfg->backend_token, ts, cancel, out, err, sizeof err) != 0) {
        log_warn("node provider unavailable (%s); %s", err, fallback);
        return false;
    }
    return true;
}

static void retention_count_run(int64_t started_ns, uint64_t freed)
{
    int64_t ns = clock_monotonic_ns() - started_ns;
    atomic_fetch_add(&retention_totals.free_runs, 1);
    atomic_fetch_add(&retention_totals.buffers_freed, freed);
    atomic_fetch_add(&retention_totals.free_ns, ns > 0 ? (uint64_t)ns : 0);
}

int retention_free_old(struct retention *r, int64_t now, uint64_t *freed)
{
    *freed = 0;
    if (r->cfg->retention_seconds <= 0)
        return 0;
    int64_t started = clock_monotonic_ns();
    int64_t cutoff = now - r->cfg->retention_seconds;
    persist_before_free(r, now);
    struct used_nodes used;
    if (retention_nodes_in_use(r->cfg, cutoff, &r->cancel,
                               "retention frees without exclusions", &used)) {
        store_free_except(r->store, cutoff, retention_host_in_use, &used, freed);
        retention_count_run(started, *freed);
        log_info("retention: %" PRIu64 " buffers older than %" PRId64 " freed, %zu hosts "
                 "in use kept", *freed, cutoff, used.count);
        used_nodes_free(&used);
        return 0;
    }
    store_free_except(r->store, cutoff, NULL, NULL, freed);
    retention_count_run(started, *freed);
    log_info("retention: %" PRIu64 " buffers older than %" PRId64 " freed", *freed, cutoff);
    return 0;
}

int retention_enforce_cap(struct retention *r, uint64_t *freed_bytes)
{
    *freed_bytes = 0;
    uint64_t cap = r->cfg->memory_cap_bytes > 0 ? (uint64_t)r->cfg->memory_cap_bytes : 0;
    uint64_t before = store_bytes(r->store);
    if (cap == 0 || before <= cap)
        return 0;
    persist_before_free(r, (int64_t)time(NULL));
    int64_t cutoff;
    if (store_cutoff_for_bytes(r->store, before - cap, &cutoff) != 0)
        return -1;
    uint64_t buffers = 0;
    store_free(r->store, NULL, NULL, 0, cutoff, &buffers);
    uint64_t after = store_bytes(r->store);
    *freed_bytes = before > after ? before - after : 0;
    atomic_fetch_add(&retention_totals.cap_runs, 1);
    atomic_fetch_add(&retention_totals.cap_bytes_freed, *freed_bytes);
    atomic_fetch_add(&retention_totals.cap_failed, after > cap);
    log_warn("memory cap: store held %" PRIu64 " bytes (cap %" PRIu64 "); freed %" PRIu64
             " buffers (%" PRIu64 " bytes) with data ending before %" PRId64 ", now %" PRIu64
             " bytes", before, cap, buffers, *freed_bytes, cutoff, after);
    return after <= cap ? 0 : -1;
}

static void run_cleanup(struct retention *r, int64_t now)
{
    struct cleanup_stats st;
    int64_t cutoff = now - r->cfg->retention_seconds;
    struct used_nodes used;
    bool have_used = retention_nodes_in_use(r->cfg, cutoff, &r->cancel,
                                            "cleanup treats every host alike", &used);
    int64_t started = clock_monotonic_ns();
    int rc = cleanup_run(r->cfg, cutoff, have_used ? retention_host_in_use : NULL,
                         have_used ? &used : NULL, &st);
    int64_t elapsed = clock_monotonic_ns() - started;
    if (have_used)
        used_nodes_free(&used);
    atomic_fetch_add(&retention_totals.cleanup_runs, 1);
    atomic_fetch_add(&retention_totals.cleanup_failed, rc != 0);
    atomic_fetch_add(&retention_totals.files_deleted, st.files_deleted);
    atomic_fetch_add(&retention_totals.files_failed, st.files_failed);
    atomic_fetch_add(&retention_totals.parquet_files, st.parquet_files);
    atomic_fetch_add(&retention_totals.parquet_rows, st.rows);
    atomic_fetch_add(&retention_totals.cleanup_ns, elapsed > 0 ? (uint64_t)elapsed : 0);
    if (rc != 0)
        log_error("cleanup: %" PRIu64 " files could not be processed, %" PRIu64 " clusters "
                  "failed to archive (files kept)", st.files_failed, st.clusters_failed);
}

/* Buffers written out of order stay plain while samples arrive for them;
 * a pass this often encodes the ones that went quiet (store_compact). */
#define RETENTION_COMPACT_INTERVAL 60

static void *retention_main(void *arg)
{
    struct retention *r = arg;
    int64_t retention = r->cfg->retention_seconds;
    int64_t now = (int64_t)time(NULL);
    int64_t next_free = now + (retention > 0 ? (retention + 1) / 2 : 0);
    int64_t next_cleanup = now; /* catch up on a run that was due while we were down */
    int64_t next_cap_check = now;
    int64_t next_compact = now + RETENTION_COMPACT_INTERVAL;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        now = (int64_t)time(NULL);
        uint64_t freed;
        /* A cap that cannot be met is retried every 30 s, not every second. */
        if (now >= next_cap_check && retention_enforce_cap(r, &freed) != 0)
            next_cap_check = now + 30;
        if (retention > 0 && now >= next_free) {
            retention_free_old(r, now, &freed);
            next_free = now + (retention + 1) / 2;
        }
        if (now >= next_compact) {
            uint64_t sealed;
            store_compact(r->store, &sealed);
            if (sealed > 0)
                log_debug("compaction: %" PRIu64 " buffers written out of order encoded", sealed);
            /* encoding frees many small blocks: give the free pages back */
            malloc_trim(0);
            next_compact = now + RETENTION_COMPACT_INTERVAL;
        }
        if (retention > 0 && now >= next_cleanup) {
            run_cleanup(r, now);
            next_cleanup = now + retention;
        }
        pthread_mutex_lock(&r->lock);
        if (r->stopping)
            break;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&r->wake, &r->lock, &deadline);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int retention_start(struct retention *r)
{
    pthread_mutex_lock(&r->lock);
    r->stopping = false;
    atomic_store(&r->cancel, false);
    int rc = pthread_create(&r->thread, NULL, retention_main, r);
    r->running = rc == 0;
    pthread_mutex_unlock(&r->lock);
    return rc == 0 ? 0 : -1;
}

void retention_stop(struct retention *r)
{
    pthread_mutex_lock(&r->lock);
    bool running = r->running;
    r->running = false;
    r->stopping = true;
    atomic_store(&r->cancel, true);
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    if (running)
        pthread_join(r->thread, NULL);
}

static void retention_metric(struct jbuf *b, const char *name, const char *type,
                             const char *help, uint64_t v)
{
    prom_family(b, name, type, help);
    prom_u64(b, name, NULL, v);
}

void retention_metrics(struct jbuf *b)
{
    retention_metric(b, "ccms_retention_runs_total", "counter",
                     "Retention passes that freed data older than retention-in-memory",
                     atomic_load(&retention_totals.free_runs));
    prom_family(b, "ccms_retention_duration_seconds_total", "counter",
                "Time spent in retention passes (the snapshot before freeing included)");
    prom_f64(b, "ccms_retention_duration_seconds_total", NULL,
             (double)atomic_load(&retention_totals.free_ns) * 1e-9);
    retention_metric(b, "ccms_retention_freed_buffers_total", "counter",
                     "Buffers freed by retention", atomic_load(&retention_totals.buffers_freed));
    retention_metric(b, "ccms_memory_cap_frees_total", "counter",
                     "Times the memory cap made the store free its oldest data",
                     atomic_load(&retention_totals.cap_runs));
    retention_metric(b, "ccms_memory_cap_freed_bytes_total", "counter",
                     "Bytes freed to stay within the memory cap",
                     atomic_load(&retention_totals.cap_bytes_freed));
    retention_metric(b, "ccms_memory_cap_failures_total", "counter",
                     "Memory-cap passes that could not get the store below the cap",
                     atomic_load(&retention_totals.cap_failed));
    retention_metric(b, "ccms_cleanup_runs_total", "counter",
                     "Cleanup passes over old checkpoint files (delete or archive)",
                     atomic_load(&retention_totals.cleanup_runs));
    retention_metric(b, "ccms_cleanup_failures_total", "counter",
                     "Cleanup passes in which some file or cluster failed (files kept)",
                     atomic_load(&retention_totals.cleanup_failed));
    prom_family(b, "ccms_cleanup_duration_seconds_total", "counter",
                "Time spent in cleanup passes");
    prom_f64(b, "ccms_cleanup_duration_seconds_total", NULL,
             (double)atomic_load(&retention_totals.cleanup_ns) * 1e-9);
    retention_metric(b, "ccms_cleanup_deleted_files_total", "counter",
                     "Checkpoint files removed by cleanup (archived first in archive mode)",
                     atomic_load(&retention_totals.files_deleted));
    retention_metric(b, "ccms_cleanup_failed_files_total", "counter",
                     "Checkpoint files cleanup could not process (kept)",
                     atomic_load(&retention_totals.files_failed));
    retention_metric(b, "ccms_archive_files_total", "counter", "Parquet archive files written",
                     atomic_load(&retention_totals.parquet_files));
    retention_metric(b, "ccms_archive_rows_total", "counter", "Rows written to Parquet archives",
                     atomic_load(&retention_totals.parquet_rows));
}
