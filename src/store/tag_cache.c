/*
 * tag_cache — see tag_cache.h. An open-addressing table (linear probing,
 * at most 3/4 full) of entries that point into one byte array holding the
 * keys one after the other.
 *
 * Each entry also remembers which entry was asked for right after it
 * (next), and the map which one was asked for last: collectors send a
 * host's lines in the same order every interval, so the entry the last
 * one points to is almost always the one the next line needs. It is
 * checked first (one length test and one comparison, no hash), and asked
 * for from memory as soon as its predecessor is found, while the line
 * before it is still being parsed and stored.
 */
#include "store/tag_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/jsonw.h"

struct entry {
    uint32_t hash;          /* low 32 bits of the key's hash */
    uint16_t used_len;      /* key length + 1; 0 = free slot */
    uint8_t depth;
    uint8_t flags;
    uint32_t key_off;       /* in keys */
    uint32_t next;          /* slot + 1 of the entry asked for after this one; 0: none */
    struct level *levels[2];
};

_Static_assert(sizeof(struct entry) == 32, "two entries a cache line");

struct tag_cache {
    struct entry *slots;
    uint32_t cap;           /* slots, a power of two */
    uint32_t count;
    uint32_t last;          /* slot + 1 of the entry found or added last; 0: none */
    struct jbuf keys;       /* the keys, one after the other */
};

#define MIN_SLOTS 16

/* Tag sections of one host differ in the middle as often as at the ends
 * (",hostname=a,type=socket,type-id=0" and ",...,type=memoryDomain,..."):
 * the hash takes its first, middle and last 8 bytes. */
static uint32_t key_hash(const char *key, size_t len)
{
    uint64_t h = hash_name_ends(key, len);
    if (len > 16)
        h ^= hash_name_ends(key + len / 2 - 4, 8) >> 17;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

static size_t cache_bytes(const struct tag_cache *c)
{
    return sizeof *c + (size_t)c->cap * sizeof(struct entry) + c->keys.cap;
}

static struct entry *slot_of(const struct tag_cache *c, uint32_t hash, const char *key, size_t len)
{
    for (uint32_t i = hash & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct entry *e = &c->slots[i];
        if (e->used_len == 0)
            return e;
        if (e->hash == hash && e->used_len == len + 1 && memcmp(c->keys.data + e->key_off, key, len) == 0)
            return e;
    }
}

static bool key_is(const struct tag_cache *c, const struct entry *e, const char *key, size_t len)
{
    return e->used_len == len + 1 && memcmp(c->keys.data + e->key_off, key, len) == 0;
}

/* Makes e the last entry asked for, linked from the one before it, and
 * asks the memory for the entry the next line will most likely need. */
static void note_asked(struct tag_cache *c, struct entry *e)
{
    uint32_t slot = (uint32_t)(e - c->slots) + 1;
    if (c->last)
        c->slots[c->last - 1].next = slot;
    c->last = slot;
    if (e->next)
        __builtin_prefetch(&c->slots[e->next - 1]);
}

/* e is the entry asked for: it becomes the last one, and *out its target. */
static void take(struct tag_cache *c, struct entry *e, struct tag_target *out)
{
    note_asked(c, e);
    out->levels[0] = e->levels[0];
    out->levels[1] = e->levels[1];
    out->depth = e->depth;
    out->flags = e->flags;
}

bool tag_cache_find(struct tag_cache *c, const char *tags, size_t len, struct tag_target *out)
{
    if (!c || len > TAG_CACHE_MAX_KEY)
        return false;
    struct entry *e = NULL;
    if (c->last) {
        uint32_t next = c->slots[c->last - 1].next;
        if (next && key_is(c, &c->slots[next - 1], tags, len))
            e = &c->slots[next - 1];
    }
    if (!e) {
        e = slot_of(c, key_hash(tags, len), tags, len);
        if (e->used_len == 0)
            return false;
    }
    take(c, e, out);
    return true;
}

bool tag_cache_find_next(struct tag_cache *c, const char *text, size_t avail, size_t *len,
                         struct tag_target *out)
{
    if (!c || !c->last)
        return false;
    uint32_t next = c->slots[c->last - 1].next;
    if (!next)
        return false;
    struct entry *e = &c->slots[next - 1];
    size_t n = (size_t)e->used_len - 1;
    if (n >= avail || text[n] != ' ' || memcmp(c->keys.data + e->key_off, text, n) != 0)
        return false;
    take(c, e, out);
    *len = n;
    return true;
}

/* Moves every entry into a table of cap slots. */
static int rehash(struct tag_cache *c, uint32_t cap, int64_t *bytes_delta)
{
    struct entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->cap; i++) {
        const struct entry *e = &c->slots[i];
        if (e->used_len == 0)
            continue;
        uint32_t j = e->hash & (cap - 1);
        while (slots[j].used_len != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = *e;
        slots[j].next = 0;      /* the slots moved: the order is learnt again */
    }
    c->last = 0;
    free(c->slots);
    *bytes_delta += ((int64_t)cap - (int64_t)c->cap) * (int64_t)sizeof(struct entry);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

int tag_cache_add(struct tag_cache **cp, const char *tags, size_t len, const struct tag_target *t,
                  int64_t *bytes_delta)
{
    /* a key with a space or a backslash is no tag section (tag_cache_find_next) */
    if (len > TAG_CACHE_MAX_KEY || memchr(tags, ' ', len) || memchr(tags, '\\', len))
        return 0;
    if (*cp && (*cp)->count >= TAG_CACHE_MAX)
        tag_cache_free(cp, bytes_delta);        /* start over rather than grow */
    struct tag_cache *c = *cp;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return -ENOMEM;
        /* after a failed growth the keys buffer stays failed: the map then
         * remembers nothing new until it starts over */
        jbuf_init(&c->keys, 0);
        *bytes_delta += (int64_t)sizeof *c;
        if (rehash(c, MIN_SLOTS, bytes_delta) != 0) {
            *bytes_delta -= (int64_t)sizeof *c;
            free(c);
            return -ENOMEM;
        }
        *cp = c;
    }
    uint32_t hash = key_hash(tags, len);
    struct entry *e = slot_of(c, hash, tags, len);
    if (e->used_len == 0) {
        if ((c->count + 1) * 4 > c->cap * 3) {
            if (rehash(c, c->cap * 2, bytes_delta) != 0)
                return -ENOMEM;
            e = slot_of(c, hash, tags, len);
        }
        size_t keys_cap = c->keys.cap;
        bool room = jbuf_reserve(&c->keys, len);
        *bytes_delta += (int64_t)(c->keys.cap - keys_cap);
        if (!room)
            return -ENOMEM;
        e->hash = hash;
        e->used_len = (uint16_t)(len + 1);
        e->next = 0;
        e->key_off = (uint32_t)c->keys.len;
        jbuf_append(&c->keys, tags, len);
        c->count++;
    }
    e->levels[0] = t->levels[0];
    e->levels[1] = t->levels[1];
    e->depth = t->depth;
    e->flags = t->flags;
    note_asked(c, e);
    return 0;
}

void tag_cache_free(struct tag_cache **cp, int64_t *bytes_delta)
{
    struct tag_cache *c = *cp;
    if (!c)
        return;
    *bytes_delta -= (int64_t)cache_bytes(c);
    free(c->slots);
    jbuf_free(&c->keys);
    free(c);
    *cp = NULL;
}

size_t tag_cache_count(const struct tag_cache *c)
{
    return c ? c->count : 0;
}

size_t tag_cache_bytes(const struct tag_cache *c)
{
    return c ? cache_bytes(c) : 0;
}
