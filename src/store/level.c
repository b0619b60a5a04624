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

static size_t level_alloc_size(size_t name_len)
{
    return sizeof(struct level) + name_len + 1;
}


struct level *level_new(const char *name, size_t name_len, uint8_t depth, int64_t *bytes_delta)
{
    if (name_len > LEVEL_MAX_NAME)
        return NULL;
    struct level *l = calloc(1, level_alloc_size(name_len));
    if (!l)
        return NULL;
    if (depth <= LEVEL_LOCKED_DEPTH) {
        l->lock = malloc(sizeof *l->lock);
        if (!l->lock) {
            free(l);
            return NULL;
        }
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        /* Writers (level creation, removal) must not starve behind a
         * steady stream of readers on root and cluster levels. */
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(l->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        *bytes_delta += (int64_t)sizeof *l->lock;
    }
    memcpy(l->name, name, name_len);
    l->name[name_len] = '\0';
    l->name_len = (uint16_t)name_len;
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
        *bytes_delta -= (int64_t)(l->child_cap * sizeof(struct level *));
    free(l->children);
    (void)metric_count;
    for (uint32_t i = 0; i < l->chain_count; i++) {
        size_t n = chain_free_all(&l->chains[i].head, bytes_delta);
        if (buffers_freed)
            *buffers_freed += n;
    }
    *bytes_delta -= (int64_t)(l->chain_cap * sizeof(struct level_chain));
    free(l->chains);
    *bytes_delta -= (int64_t)level_alloc_size(l->name_len);
    if (l->lock) {
        pthread_rwlock_destroy(l->lock);
        free(l->lock);
        *bytes_delta -= (int64_t)sizeof *l->lock;
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

static int grow_children(struct level *l, int64_t *bytes_delta)
{
    uint32_t cap = l->child_cap ? l->child_cap * 2 : 4;
    struct level **c = realloc(l->children, cap * sizeof(*c));
    if (!c)
        return -ENOMEM;
    *bytes_delta += (int64_t)((cap - l->child_cap) * sizeof(*c));
    l->children = c;
    l->child_cap = cap;
    return 0;
}

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
    if (l->child_count == l->child_cap && grow_children(l, bytes_delta) != 0)
        return -ENOMEM;
    struct level *c = level_new(name, name_len, (uint8_t)(l->depth + 1), bytes_delta);
    if (!c)
        return -ENOMEM;
    c->parent = l;
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
    level_destroy(c, metric_count, bytes_delta, NULL);
}

/* Index of metric in l->chains, or of where it would go (*found false). */
static uint32_t chain_position(const struct level *l, uint32_t metric, bool *found)
{
    uint32_t lo = 0, hi = l->chain_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->chains[mid].metric < metric)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < l->chain_count && l->chains[lo].metric == metric;
    return lo;
}

struct buffer *level_chain_head(const struct level *l, int metric)
{
    bool found;
    uint32_t i = chain_position(l, (uint32_t)metric, &found);
    return found ? l->chains[i].head : NULL;
}

struct buffer **level_chain_slot(struct level *l, int metric, int64_t *bytes_delta)
{
    bool found;
    uint32_t i = chain_position(l, (uint32_t)metric, &found);
    if (found)
        return &l->chains[i].head;
    if (l->chain_count == l->chain_cap) {
        if (l->chain_cap == UINT16_MAX)
            return NULL;
        uint32_t cap = l->chain_cap ? 2u * l->chain_cap : 1u;
        if (cap > UINT16_MAX)
            cap = UINT16_MAX;
        struct level_chain *grown = realloc(l->chains, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        *bytes_delta += (int64_t)((cap - l->chain_cap) * sizeof(*grown));
        l->chains = grown;
        l->chain_cap = (uint16_t)cap;
    }
    memmove(&l->chains[i + 1], &l->chains[i], (l->chain_count - i) * sizeof(l->chains[0]));
    l->chains[i] = (struct level_chain){ NULL, (uint32_t)metric };
    l->chain_count++;
    return &l->chains[i].head;
}

bool level_is_empty(const struct level *l, size_t metric_count)
{
    (void)metric_count;
    if (l->child_count > 0)
        return false;
    for (uint32_t i = 0; i < l->chain_count; i++)
        if (l->chains[i].head)
            return false;
    return true;
}
