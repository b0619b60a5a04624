/*
 * level — one node of the in-memory tree: root, cluster, host, type level
 * ("hwthread3"), subtype level ("core1").
 *
 * A level owns its name, its children (kept sorted by name in an array, so
 * lookups are a binary search and every walk is deterministic) and the
 * chains of the metrics it holds: heads and metric indexes sorted by
 * metric, sized to the metrics written there, not to every configured
 * metric (a hwthread level holds 4 of a config's 40). Locking is the store's business (store.h): functions here
 * assume the caller holds the right lock. Memory changes are reported
 * through *bytes_delta like in buffer.h.
 */
#ifndef CCMS_LEVEL_H
#define CCMS_LEVEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buffer.h"

/* Levels at this depth or above (root, cluster, host) have a lock (in
 * struct level_upper); the levels below a host are guarded by the host's
 * lock and have none. */
#define LEVEL_LOCKED_DEPTH 2

struct tag_cache;

/* What only root, cluster and host levels have (most levels are below
 * hosts and go without). */
struct level_upper {
    pthread_rwlock_t lock;
    struct level *parent;        /* NULL for the root */
    void *host_data;             /* host levels: owned by the persistence layer, may be NULL */
    struct tag_cache *tags;      /* host levels: tag sections -> levels below (tag_cache.h), may be NULL */
};

struct level {
    struct level_upper *upper;   /* depth <= LEVEL_LOCKED_DEPTH only, else NULL */
    struct level **children;     /* exactly child_count, sorted by name in byte order */
    /* The chains of the metrics this level holds, in one allocation of
     * exactly chain_count entries: the heads (NULL once everything in a
     * chain was freed), then the metric index of each (level_chain_metric),
     * sorted by metric. A series costs 10 bytes here, not a doubling
     * array's 16 to 32. */
    struct buffer **heads;
    /* The native write-ahead log's id of this level within its host, and
     * the log segment it was last defined in (persist/checkpoint.c owns
     * both, under the host lock; 0 = none yet). */
    uint32_t log_id;
    uint32_t log_seq;
    uint32_t child_count;
    uint16_t chain_count;
    uint8_t name_len;
    uint8_t depth;               /* 0 root, 1 cluster, 2 host, 3 type, 4 subtype */
    char name[];                 /* NUL-terminated */
};

/* The lock of a root, cluster or host level. */
static inline pthread_rwlock_t *level_lock(struct level *l)
{
    return &l->upper->lock;
}

/* The metric (index into the store's metrics) of l->heads[i]. */
static inline uint16_t level_chain_metric(const struct level *l, uint32_t i)
{
    const uint16_t *metrics = (const uint16_t *)(l->heads + l->chain_count);
    return metrics[i];
}

#define LEVEL_MAX_NAME 255
/* Metric indexes are 16 bits: 0 .. LEVEL_MAX_METRICS - 1. */
#define LEVEL_MAX_METRICS 65535

/* Allocates a level (no children, no slots). NULL when out of memory. */
struct level *level_new(const char *name, size_t name_len, uint8_t depth, int64_t *bytes_delta);

/* Frees the level, its subtree and all their buffers. Adds the number of
 * freed buffers to *buffers_freed if not NULL. */
void level_destroy(struct level *l, size_t metric_count, int64_t *bytes_delta,
                   uint64_t *buffers_freed);

/* Child with exactly this name, or NULL. */
struct level *level_find_child(const struct level *l, const char *name, size_t name_len);

/* Finds the child, creating it when missing. *created (if not NULL) is set
 * to whether it was created. Returns 0 or -ENOMEM. */
int level_get_or_create_child(struct level *l, const char *name, size_t name_len,
                              struct level **out, bool *created, int64_t *bytes_delta);

/* Unlinks and destroys the child at index i. */
void level_remove_child_at(struct level *l, uint32_t i, size_t metric_count,
                           int64_t *bytes_delta);

/* The head of metric's chain at l, or NULL when there is none. */
struct buffer *level_chain_head(const struct level *l, int metric);

/* Where metric's chain head lives at l, adding an empty chain when the
 * level does not hold the metric yet. The pointer is valid until the next
 * call on l. NULL when out of memory. */
struct buffer **level_chain_slot(struct level *l, int metric, int64_t *bytes_delta);

/* True when no slot holds a buffer and there are no children. */
bool level_is_empty(const struct level *l, size_t metric_count);

#endif
