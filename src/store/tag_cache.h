/*
 * tag_cache — a host's map from the tag sections of the lines written to it
 * (the bytes between a line's measurement and its fields, exactly as they
 * were sent, e.g. ",hostname=n1,type=hwthread,type-id=3") to the levels
 * below the host those lines went to.
 *
 * Collectors send the same tag sections again every interval, in the same
 * order. With this map, ingest finds a line's level from one comparison of
 * its bytes with the entry that followed the previous line last time (or,
 * when that is not it, one hash and one comparison), without tokenizing the
 * tags, checking the names or searching the tree (store.h,
 * store_host_find_tags).
 *
 * Ownership and locking: the store keeps one map per host level and guards
 * it with the host lock like everything else below the host. Entries point
 * at levels, so the store empties a host's map whenever it removes a level
 * below that host. A map holds at most TAG_CACHE_MAX entries (a client that
 * varies its tags cannot grow it without bound: the map starts over), and
 * tag sections of at most TAG_CACHE_MAX_KEY bytes. Every byte it allocates
 * is reported through *bytes_delta, like the rest of the store.
 */
#ifndef CCMS_TAG_CACHE_H
#define CCMS_TAG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct level;
struct tag_cache;

#define TAG_CACHE_MAX 8192
#define TAG_CACHE_MAX_KEY 255

/* What a tag section maps to: the levels below the host on the way to the
 * line's level (depth 0: the host itself), and flags the caller gave. */
struct tag_target {
    struct level *levels[2];
    uint8_t depth;
    uint8_t flags;
};

/* The target remembered for tags[0..len), if any. The map learns the
 * order in which its entries are asked for (the next line of a host is
 * looked for where the last one's successor was), so finding changes it:
 * it needs the host lock for writing, as adding does. */
bool tag_cache_find(struct tag_cache *c, const char *tags, size_t len, struct tag_target *out);

/* Whether text[0..avail) starts with the entry most likely asked for next
 * (the one that followed the last one found) and a space follows it: then
 * that entry's key is the tag section a scan of text up to its first space
 * would find (no key holds a space or a backslash), its length goes to
 * *len and its target to *out, and it counts as found (tag_cache_find). */
bool tag_cache_find_next(struct tag_cache *c, const char *text, size_t avail, size_t *len,
                         struct tag_target *out);

/* Remembers tags[0..len) -> *t (replacing an entry for the same bytes).
 * Creates the map on first use (*c NULL). A key longer than
 * TAG_CACHE_MAX_KEY, or holding a space or a backslash, is not
 * remembered. Returns 0 or -ENOMEM (the map is then as before:
 * remembering is an optimisation). */
int tag_cache_add(struct tag_cache **c, const char *tags, size_t len, const struct tag_target *t,
                  int64_t *bytes_delta);

/* Forgets every entry and frees the map; *c becomes NULL. */
void tag_cache_free(struct tag_cache **c, int64_t *bytes_delta);

/* Entries held, and the bytes the map takes (0 for NULL). */
size_t tag_cache_count(const struct tag_cache *c);
size_t tag_cache_bytes(const struct tag_cache *c);

#endif
