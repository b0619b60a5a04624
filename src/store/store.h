/*
 * store — the in-memory metric store: metric registry, tree of levels,
 * writes, reads with aggregation and resampling, free, debug dump, health.
 *
 * Tree: root -> cluster -> host -> type level -> subtype level. Data lives
 * at host level and below (ingest and restore never write higher up).
 *
 * Locking (one documented owner per piece of state):
 *  - root->lock guards the root's children (the clusters);
 *  - a cluster's lock guards its children (the hosts);
 *  - a host's lock guards EVERYTHING in the host subtree: its children,
 *    their children, every slot array and every buffer below it.
 * Locks are taken parent before child and a child lock is taken while the
 * parent lock is held (lock coupling), so a level can only be removed by
 * someone holding its parent's write lock plus its own write lock. Writers
 * of different hosts never contend except for brief read locks on root and
 * cluster. The byte and level counters are atomics.
 *
 * Ownership: the store owns every level and buffer. Results of reads are
 * owned by the caller (store_series_free, free() for name lists).
 */
#ifndef CCMS_STORE_H
#define CCMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store/level.h"
#include "store/resample.h"
#include "store/tag_cache.h"
#include "util/host_filter.h"
#include "util/jsonw.h"

#define STORE_MAX_DEPTH 4

enum store_error {
    STORE_ENOTFOUND = -2001,       /* no such level / no chain matched */
    STORE_EINVALID_RANGE = -2002,  /* from > to */
    STORE_EAGGREGATION = -2003,    /* several chains, metric has no aggregation */
    STORE_ERESAMPLE = -2004,       /* resolution not a multiple of the frequency */
    STORE_ETOO_MANY_POINTS = -2005,/* the answer would exceed max_points */
    STORE_ERANGE = -2006,          /* time beyond +-2^60 s, cannot be stored */
    STORE_ENOMEM = -2007,
    STORE_ETOO_MANY_METRICS = -2008,  /* more than STORE_MAX_METRICS configured */
    STORE_ECORRUPT = -2009,        /* a buffer image that does not hold together */
};

/* A level keeps a 16-bit metric index per chain (level.h). */
#define STORE_MAX_METRICS LEVEL_MAX_METRICS

struct store_metric {
    const char *name;
    int64_t frequency;
    enum ccms_aggregation aggregation;
};

struct store;

/* Creates an empty store for the given metrics (names are copied). */
/* Returns 0, STORE_ETOO_MANY_METRICS or STORE_ENOMEM. */
int store_create(const struct store_metric *metrics, size_t count, struct store **out);
void store_destroy(struct store *s);

size_t store_metric_count(const struct store *s);
const struct store_metric *store_metric_at(const struct store *s, int index);
/* Index of a configured metric, or -1. */
int store_metric_lookup(const struct store *s, const char *name, size_t len);

struct store_stats {
    uint64_t bytes;      /* exact bytes allocated for levels, slot arrays and buffers */
    uint64_t buffers;
    uint64_t levels;
    uint64_t samples;    /* sum of buffer lengths (walks the tree; takes read locks) */
    uint64_t raw_slots;  /* slots held as plain floats (the parts being written) */
    uint64_t encoded_bytes;                     /* bytes of encoded (sealed) parts */
    uint64_t sealed_by_encoding[CHAIN_ENCODINGS];   /* sealed parts per codec kind */
    uint64_t tag_sections;       /* tag sections the hosts remember (store_host_find_tags) */
    uint64_t tag_section_bytes;  /* the bytes of that (part of `bytes`) */
    uint64_t pool_bytes;         /* pages kept for buffer headers and plain parts (chain_pool_bytes) */
};
void store_get_stats(struct store *s, struct store_stats *out);
uint64_t store_bytes(const struct store *s);   /* cheap: one atomic load */

/* Encodes every buffer not written since the previous call (buffer.h,
 * chain_compact), host by host under each host's write lock. Called
 * periodically by the retention thread. *sealed = buffers encoded. */
void store_compact(struct store *s, uint64_t *sealed);

/* ---- writing ----------------------------------------------------------- */

/* A host level locked for writing (or reading, see store_host_lock_read). */
struct store_host {
    struct store *store;
    struct level *level;
    bool write;
};

/*
 * Finds the host [cluster, host] and write-locks it. With create, missing
 * cluster/host levels are made and *created (if not NULL) is increased by
 * their number. Returns 0, STORE_ENOTFOUND (not create) or STORE_ENOMEM.
 * Names must be valid (ingest validates them). Hold at most one host lock
 * per thread at a time.
 */
int store_host_lock(struct store *s, const char *cluster, size_t cluster_len,
                    const char *host, size_t host_len, bool create, unsigned *created,
                    struct store_host *out);
/* Same, read lock, never creates. */
int store_host_lock_read(struct store *s, const char *cluster, size_t cluster_len,
                         const char *host, size_t host_len, struct store_host *out);
void store_host_unlock(struct store_host *h);

/*
 * The level at names[0..depth) below the locked host (depth 0 = the host
 * itself). With create (write lock only) missing levels are made and counted
 * in *created. Returns 0, STORE_ENOTFOUND or STORE_ENOMEM.
 */
int store_host_child(struct store_host *h, const char *const *names, const size_t *lens,
                     size_t depth, bool create, unsigned *created, struct level **out);

/*
 * Tag sections (tag_cache.h): the levels below the write-locked host that
 * a line's tag section (its bytes between measurement and fields, as sent)
 * led to before. Ingest remembers a tag section once it has written a line
 * the long way, and finds it again for later lines with the same bytes;
 * flags are the caller's. The store forgets a host's tag sections whenever
 * it removes a level below that host, and counts their bytes like the rest.
 * find_next looks only at the section most likely to come next, without
 * the section's end known: text (avail bytes, right after the measurement)
 * must start with it and a space (tag_cache_find_next); *len is its length.
 * remember returns 0 or STORE_ENOMEM (nothing remembered).
 */
bool store_host_find_tags(struct store_host *h, const char *tags, size_t len,
                          struct tag_target *out);
bool store_host_find_next_tags(struct store_host *h, const char *text, size_t avail,
                               size_t *len, struct tag_target *out);
int store_host_remember_tags(struct store_host *h, const char *tags, size_t len,
                             const struct tag_target *t);

/* Writes one sample (buffer.h rules) into level l of the write-locked host.
 * Returns 0, STORE_ERANGE or STORE_ENOMEM. */
int store_write(struct store_host *h, struct level *l, int metric, int64_t ts, float value);

/* Convenience for tests and replay: lock, find/create path (depth >= 2:
 * cluster, host, ...), write, unlock. */
int store_write_path(struct store *s, const char *const *path, size_t depth, int metric,
                     int64_t ts, float value);

/* ---- reading ----------------------------------------------------------- */

/* One selector element: the names to descend into, in order. count 1 is an
 * exact name, more is a group, 0 matches nothing. */
struct store_selector_elem {
    const char *const *names;
    const size_t *lens;
    size_t count;
};

/* Elements 0 and 1 (cluster and host) must be single names. */
struct store_selector {
    struct store_selector_elem elems[STORE_MAX_DEPTH];
    size_t depth;
};

struct store_series {
    double *data;        /* len values, NaN = missing; owned, see store_series_free */
    size_t len;
    int64_t from;        /* time of data[0] */
    int64_t to;          /* from + len * step of the native series */
    int64_t resolution;  /* seconds between returned points */
};

/*
 * Reads metric over [from, to) for every chain the selector matches
 * (docs/http-api.md, "From a query to selectors": exact names, groups, implicit descent to the top-most
 * chains below an exhausted selector), combined deterministically: the
 * window is the union of the chains' ranges clipped to [from, to), every
 * chain is sampled on the same grid, a point missing in any chain is NaN;
 * several chains are summed or averaged by the metric's aggregation. Then
 * resampled to `resolution` with algo (resample.h; docs/http-api.md,
 * "Resampling").
 * Returns 0, STORE_EINVALID_RANGE, STORE_ENOTFOUND, STORE_EAGGREGATION,
 * STORE_ERESAMPLE, STORE_ETOO_MANY_POINTS (window > max_points) or STORE_ENOMEM.
 */
int store_read(struct store *s, const struct store_selector *sel, int metric, int64_t from,
               int64_t to, int64_t resolution, enum resample_algo algo, size_t max_points,
               struct store_series *out);
void store_series_free(struct store_series *series);

/* avg, min and max of a series' samples (NaN entries skipped; -0 counts as
 * below +0); all NaN when it has none. */
struct store_summary {
    double avg, min, max;
};
void store_series_summary(const double *data, size_t len, struct store_summary *out);

/*
 * What store_read followed by store_series_summary gives, for an answer
 * without data (a query with "with-data": false): *out gets the window
 * (from, to, resolution, len) and no data, *summary its statistics. A
 * selector that matches one chain, read at its own frequency, is answered
 * from the statistics kept with each sealed part (chain_stats): only the
 * parts at the window's edges are decoded. Same return codes as store_read.
 */
int store_read_summary(struct store *s, const struct store_selector *sel, int metric, int64_t from,
                     int64_t to, int64_t resolution, enum resample_algo algo, size_t max_points,
                     struct store_series *out, struct store_summary *summary);

/*
 * A hint before reads of metric over [from, to) through selectors that
 * together match what sel matches (a query item's type-ids read one by
 * one): under one read lock of the host, every chain sel matches is
 * walked back side by side, its headers and the parts in the range asked
 * for, so that the reads that follow find them in the cache instead of
 * waiting for each miss in turn. Changes nothing and answers nothing; a
 * selector that matches nothing is no error.
 */
void store_prefetch(struct store *s, const struct store_selector *sel, int metric, int64_t from,
                    int64_t to);

/* Cluster names, sorted; same ownership as store_list_hosts. */
int store_list_clusters(struct store *s, char ***names, size_t *count);

/* Host names of a cluster, sorted; *names is a malloc'd array of malloc'd
 * strings (free each, then the array). An unknown cluster gives 0 names. */
int store_list_hosts(struct store *s, const char *cluster, size_t cluster_len, char ***names,
                     size_t *count);

/* ---- persistence support ------------------------------------------------ */

/*
 * Called with the host's write lock held just before a host level is
 * destroyed (removed by a free, or at store_destroy) so the persistence
 * layer can release what it keeps in level->host_data.
 */
typedef void (*store_host_cleanup_fn)(void *ctx, struct level *host);
void store_set_host_cleanup(struct store *s, store_host_cleanup_fn fn, void *ctx);

/*
 * Adds a restored series to level l of the write-locked host: values[i] is
 * the sample with nominal time start + i*frequency (NaN = none). When it
 * lies after everything the chain holds it is appended as buffers of up to
 * BUFFER_CAP slots (marked saved; blocks without a sample are left out);
 * otherwise its non-NaN values are merged sample by sample (later loads
 * win). Returns 0, STORE_ENOMEM, or STORE_ERANGE for a
 * series whose times are out of any sensible range (nothing is loaded).
 */
/* Adds a buffer image (buffer.h, chain_export) of metric to level l of the
 * write-locked host, counting its samples into *samples. Returns 0,
 * STORE_ECORRUPT (nothing loaded) or STORE_ENOMEM. */
int store_load_image(struct store_host *h, struct level *l, int metric, const void *image,
                     size_t len, uint64_t *samples);

int store_load_series(struct store_host *h, struct level *l, int metric, int64_t frequency,
                      int64_t start, const float *values, uint32_t n);

/* ---- maintenance -------------------------------------------------------- */

/*
 * Frees, in the level at path[0..depth) (depth 0 = root) and below, every
 * buffer whose chain_block_end() < before (buffer.h). Child levels left empty are removed;
 * the level itself is kept. Never creates levels: a missing path frees
 * nothing. *freed = number of buffers freed. Returns 0.
 */
/*
 * The retention pass: like store_free of the whole store, except that
 * hosts for which keep() returns true are not touched. Hosts (and then
 * clusters) left without data are removed from the tree. Returns 0.
 */
int store_free_except(struct store *s, int64_t before, host_filter_fn keep, void *ctx,
                      uint64_t *freed);

int store_free(struct store *s, const char *const *path, const size_t *lens, size_t depth,
               int64_t before, uint64_t *freed);

/*
 * For the memory cap: the time T such that freeing every buffer with
 * chain_block_end() < T (store_free at the root) releases at least `bytes` of
 * buffer memory, taking the buffers with the oldest ends first across all
 * hosts. *cutoff = INT64_MAX when even freeing everything is not enough.
 * Returns 0 or STORE_ENOMEM.
 */
int store_cutoff_for_bytes(struct store *s, uint64_t bytes, int64_t *cutoff);

/* Appends upstream's debug dump (docs/http-api.md, "Debug") of the level at
 * path[0..depth) to out. Returns 0 or STORE_ENOTFOUND. */
int store_debug_dump(struct store *s, const char *const *path, const size_t *lens,
                     size_t depth, struct jbuf *out);

enum store_health {
    STORE_HEALTHY = 0,
    STORE_DEGRADED,      /* some head buffer in the subtree is stale */
    STORE_MISSING,       /* no non-empty head buffer anywhere in the subtree */
};

/* Health of metrics[i] (index or -1 = unknown -> missing) for node
 * [cluster, node] at time now (stale: now - (start + f*len) > 5f).
 * Returns 0 or STORE_ENOTFOUND (no such node level). */
int store_health(struct store *s, const char *cluster, size_t cluster_len, const char *node,
                 size_t node_len, const int *metrics, size_t count, int64_t now,
                 enum store_health *out);

#endif
