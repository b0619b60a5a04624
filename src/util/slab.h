/*
 * slab — a pool of equal-sized objects carved from 64 KB pages, for small
 * objects the store holds by the hundred thousand (buffer headers: one per
 * 512 samples of every series). The general allocator adds 16 bytes to
 * each 64-byte block it hands out; here an object costs its size and
 * nothing more.
 *
 * Freed objects are kept on a free list and handed out again; pages are
 * never returned (a store that held N objects once keeps room for N).
 * Objects are not zeroed. One lock per slab makes it safe for any thread;
 * allocations are rare enough (a buffer per 512 samples) that it is never
 * contended. Under AddressSanitizer, a freed object and the untouched rest
 * of a page are poisoned, so a use after free is still reported (except
 * in the object's first word, which links the free list).
 */
#ifndef CCMS_SLAB_H
#define CCMS_SLAB_H

#include <pthread.h>
#include <stddef.h>

#define SLAB_PAGE_BYTES (64 * 1024)

struct slab {
    pthread_mutex_t lock;
    size_t size;            /* bytes an object takes, a multiple of 16 */
    void *free_list;        /* freed objects, linked through their first word */
    char *fresh, *fresh_end;/* the newest page's part never handed out */
    void *pages;            /* every page, linked through its first word */
    size_t page_count;
};

/* A slab of objects of `size` bytes (rounded up to 16, less than a page). */
#define SLAB_INIT(object_size)                                                   \
    { .lock = PTHREAD_MUTEX_INITIALIZER, .size = ((object_size) + 15) / 16 * 16, \
      .free_list = NULL, .fresh = NULL, .fresh_end = NULL, .pages = NULL, .page_count = 0 }

/* An object of s->size bytes, 16-byte aligned, contents undefined; NULL
 * when a new page cannot be allocated. */
void *slab_alloc(struct slab *s);

/* Gives p (from slab_alloc of the same slab, or NULL) back. */
void slab_free(struct slab *s, void *p);

/* Bytes of pages the slab holds (used or free). */
size_t slab_page_bytes(struct slab *s);

#endif
