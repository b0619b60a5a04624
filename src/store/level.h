/*
 * level — one node of the in-memory tree: root, cluster, host, type level
 * ("hwthread3"), subtype level ("core1").
 *
 * A level owns its name, its children (kept sorted by name in an array, so
 * lookups are a binary search and every walk is deterministic) and the
 * chains of the metrics it holds: an array of (metric, head) sorted by
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

/* Levels at this depth or above (root, cluster, host) have a lock; the
 * levels below a host are guarded by the host's lock and have none (most
 * levels are below hosts: a lock costs 56 bytes). */
#define LEVEL_LOCKED_DEPTH 2

/* One series of a level: a metric (index into the store's metrics) and
 * its chain (NULL once everything in it was freed). */
struct level_chain {
    struct buffer *head;
    uint32_t metric;
};

struct level {
    pthread_rwlock_t *lock;      /* depth <= LEVEL_LOCKED_DEPTH only, else NULL */
    struct level *parent;
    struct level **children;     /* sorted by name in byte order (strcmp) */
    uint32_t child_count;
    uint32_t child_cap;
    struct level_chain *chains;  /* chain_count used of chain_cap, sorted by metric */
    void *host_data;             /* host levels: owned by the persistence layer, may be NULL */
    uint16_t chain_count;
    uint16_t chain_cap;
    uint16_t name_len;
    uint8_t depth;               /* 0 root, 1 cluster, 2 host, 3 type, 4 subtype */
    char name[];                 /* NUL-terminated */
};

#define LEVEL_MAX_NAME 255

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
