/*
 * slab — see slab.h. Pages come from malloc and are never freed: the
 * objects of a store come and go with its data, and the room they took
 * is taken again by the next ones. A page's first 16 bytes link it to the
 * page before (so that every page stays reachable from the slab, also for
 * a leak checker); its objects follow.
 */
#include "util/slab.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define PAGE_HEADER 16      /* the link to the page before; keeps objects 16-aligned */

void *slab_alloc(struct slab *s)
{
    void *p = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->free_list != NULL) {
        p = s->free_list;
        UNPOISON(p, s->size);
        memcpy(&s->free_list, p, sizeof(void *));
    } else {
        if ((size_t)(s->fresh_end - s->fresh) < s->size) {
            char *page = malloc(SLAB_PAGE_BYTES);
            if (page != NULL) {
                memcpy(page, &s->pages, sizeof(void *));
                s->pages = page;
                s->page_count++;
                POISON(page + PAGE_HEADER, SLAB_PAGE_BYTES - PAGE_HEADER);
                s->fresh = page + PAGE_HEADER;
                s->fresh_end = s->fresh + (SLAB_PAGE_BYTES - PAGE_HEADER) / s->size * s->size;
            }
        }
        if ((size_t)(s->fresh_end - s->fresh) >= s->size) {
            p = s->fresh;
            s->fresh += s->size;
            UNPOISON(p, s->size);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return p;
}

void slab_free(struct slab *s, void *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    memcpy(p, &s->free_list, sizeof(void *));
    POISON((char *)p + sizeof(void *), s->size - sizeof(void *));
    s->free_list = p;
    pthread_mutex_unlock(&s->lock);
}

size_t slab_page_bytes(struct slab *s)
{
    pthread_mutex_lock(&s->lock);
    size_t bytes = s->page_count * SLAB_PAGE_BYTES;
    pthread_mutex_unlock(&s->lock);
    return bytes;
}
