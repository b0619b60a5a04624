/*
 * level — see level.h. Children live in a sorted array: hosts have tens to
 * a few hundred children and clusters a few thousand, lookups (binary
 * search) are frequent and insertions rare, and the sorted order makes
 * every traversal (debug dump, checkpoints, for-all-nodes) deterministic.
 */
#include "store/level.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/tag_cache.h"

static size_t level_alloc_size(size_t name_len)
{
    return sizeof(struct level) + name_len + 1;
}

/* Bytes of the heads-and-metrics allocation for n chains. */
static size_t chains_size(uint32_t n)
{
    return n * (sizeof(struct buffer *) + sizeof(uint16_t));
}


struct level *level_new(const char *name, size_t name_len, uint8_t depth, int64_t *bytes_delta)
{
    if (name_len > LEVEL_MAX_NAME)
        return NULL;
    struct level *l = calloc(1, level_alloc_size(name_len));
    if (!l)
        return NULL;
    if (depth <= LEVEL_LOCKED_DEPTH) {
        l->upper = calloc(1, sizeof *l->upper);
        if (!l->upper) {
            free(l);
            return NULL;
        }
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        /* Writers (level creation, removal) must not starve behind a
         * steady stream of readers on root and cluster levels. */
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&l->upper->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        *bytes_delta += (int64_t)sizeof *l->upper;
    }
    memcpy(l->name, name, name_len);
    l->name[name_len] = '\0';
    l->name_len = (uint8_t)name_len;
    l->depth = depth;
    *bytes_delta += (int64_t)level_alloc_size(name_len);
    return l;
}

void level_destroy(struct level *l, size_t metric_count, int64_t *bytes_delta,
                   uint64_t *buffers_freed)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->child_count; i++)
        level_destroy(l->children[i], metric_count, bytes_delta, buffers_freed);
    if (l->children)
        *bytes_delta -= (int64_t)(l->child_count * sizeof(struct level *));
    free(l->children);
    (void)metric_count;
    for (uint32_t i = 0; i < l->chain_count; i++) {
        size_t n = chain_free_all(&l->heads[i], bytes_delta);
        if (buffers_freed)
            *buffers_freed += n;
    }
    *bytes_delta -= (int64_t)chains_size(l->chain_count);
    free(l->heads);
    *bytes_delta -= (int64_t)level_alloc_size(l->name_len);
    if (l->upper) {
        tag_cache_free(&l->upper->tags, bytes_delta);
        pthread_rwlock_destroy(&l->upper->lock);
        free(l->upper);
        *bytes_delta -= (int64_t)sizeof *l->upper;
    }
    free(l);
}

static int name_compare(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* Index of the child with this name, or of the place it would be inserted. */
static uint32_t child_position(const struct level *l, const char *name, size_t name_len,
                               bool *found)
{
    uint32_t lo = 0, hi = l->child_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct level *c = l->children[mid];
        int cmp = name_compare(c->name, c->name_len, name, name_len);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct level *level_find_child(const struct level *l, const char *name, size_t name_len)
{
    bool found;
    uint32_t i = child_position(l, name, name_len, &found);
    return found ? l->children[i] : NULL;
}

/* Children are added and removed rarely (a new host, a new hwthread), so
 * the array is kept at exactly child_count entries: resized by one on
 * each change, like the chains. */
int level_get_or_create_child(struct level *l, const char *name, size_t name_len,
                              struct level **out, bool *created, int64_t *bytes_delta)
{
    bool found;
    uint32_t i = child_position(l, name, name_len, &found);
    if (created)
        *created = !found;
    if (found) {
        *out = l->children[i];
        return 0;
    }
    struct level *c = level_new(name, name_len, (uint8_t)(l->depth + 1), bytes_delta);
    if (!c)
        return -ENOMEM;
    struct level **grown = realloc(l->children, (l->child_count + 1) * sizeof(*grown));
    if (!grown) {
        level_destroy(c, 0, bytes_delta, NULL);
        return -ENOMEM;
    }
    l->children = grown;
    *bytes_delta += (int64_t)sizeof(*grown);
    if (c->upper)
        c->upper->parent = l;
    memmove(&l->children[i + 1], &l->children[i],
            (l->child_count - i) * sizeof(l->children[0]));
    l->children[i] = c;
    l->child_count++;
    *out = c;
    return 0;
}

void level_remove_child_at(struct level *l, uint32_t i, size_t metric_count,
                           int64_t *bytes_delta)
{
    struct level *c = l->children[i];
    memmove(&l->children[i], &l->children[i + 1],
            (l->child_count - i - 1) * sizeof(l->children[0]));
    l->child_count--;
    *bytes_delta -= (int64_t)sizeof(l->children[0]);
    if (l->child_count == 0) {
        free(l->children);
        l->children = NULL;
    } else {
        /* shrinking in place; should realloc fail, the larger block stays */
        struct level **shrunk = realloc(l->children, l->child_count * sizeof(*shrunk));
        if (shrunk)
            l->children = shrunk;
    }
    level_destroy(c, metric_count, bytes_delta, NULL);
}

/* Index of metric in l's chains, or of where it would go (*found false).
 * Most levels hold a few metrics (a hwthread four, a node ten): a walk
 * from the start takes fewer steps there than a binary search. */
#define CHAIN_LINEAR_MAX 16
static uint32_t chain_position(const struct level *l, uint32_t metric, bool *found)
{
    uint32_t lo = 0, hi = l->chain_count;
    if (hi == 0) {
        *found = false;             /* no chains: heads is NULL (no array to point into) */
        return 0;
    }
    if (hi <= CHAIN_LINEAR_MAX) {
        const uint16_t *metrics = (const uint16_t *)(l->heads + hi);
        while (lo < hi && metrics[lo] < metric)
            lo++;
        *found = lo < hi && metrics[lo] == metric;
        return lo;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (level_chain_metric(l, mid) < metric)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < l->chain_count && level_chain_metric(l, lo) == metric;
    return lo;
}

struct buffer *level_chain_head(const struct level *l, int metric)
{
    bool found;
    uint32_t i = chain_position(l, (uint32_t)metric, &found);
    return found ? l->heads[i] : NULL;
}

/* Adding a metric to a level is rare (a series' first sample), so the
 * allocation grows by exactly one entry: no room is kept that a level
 * may never use. */
struct buffer **level_chain_slot(struct level *l, int metric, int64_t *bytes_delta)
{
    bool found;
    uint32_t i = chain_position(l, (uint32_t)metric, &found);
    if (found)
        return &l->heads[i];
    uint32_t n = l->chain_count;
    if (n == UINT16_MAX || metric < 0 || metric >= LEVEL_MAX_METRICS)
        return NULL;
    struct buffer **heads = malloc(chains_size(n + 1));
    if (!heads)
        return NULL;
    uint16_t *metrics = (uint16_t *)(heads + n + 1);
    const uint16_t *old_metrics = n ? (const uint16_t *)(l->heads + n) : NULL;
    for (uint32_t k = 0, j = 0; k <= n; k++) {
        if (k == i) {
            heads[k] = NULL;
            metrics[k] = (uint16_t)metric;
        } else {
            heads[k] = l->heads[j];
            metrics[k] = old_metrics[j];
            j++;
        }
    }
    free(l->heads);
    *bytes_delta += (int64_t)(chains_size(n + 1) - chains_size(n));
    l->heads = heads;
    l->chain_count = (uint16_t)(n + 1);
    return &l->heads[i];
}

bool level_is_empty(const struct level *l, size_t metric_count)
{
    (void)metric_count;
    if (l->child_count > 0)
        return false;
    for (uint32_t i = 0; i < l->chain_count; i++)
        if (l->heads[i])
            return false;
    return true;
}
