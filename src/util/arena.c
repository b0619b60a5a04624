/*
 * arena — see arena.h. Chunks start at 8 KB and double, so a request takes
 * a handful of them; an allocation larger than the next chunk gets a chunk
 * of its own size.
 */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_FIRST_CHUNK (8 * 1024)
#define ARENA_MAX_CHUNK (1024 * 1024)
#define ARENA_ALIGN 16

struct arena_chunk {
    struct arena_chunk *older;
    size_t size;                  /* bytes of data after the header */
    _Alignas(ARENA_ALIGN) char data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size)
        return NULL;                                   /* size near SIZE_MAX */
    if ((size_t)(a->end - a->next) < need || a->next == NULL) {
        size_t grow = a->chunks ? a->chunks->size * 2 : ARENA_FIRST_CHUNK;
        if (grow > ARENA_MAX_CHUNK)
            grow = ARENA_MAX_CHUNK;
        if (grow < need)
            grow = need;
        if (grow > SIZE_MAX - sizeof(struct arena_chunk))
            return NULL;
        struct arena_chunk *c = malloc(sizeof(struct arena_chunk) + grow);
        if (c == NULL)
            return NULL;
        c->older = a->chunks;
        c->size = grow;
        a->chunks = c;
        a->next = c->data;
        a->end = c->data + grow;
    }
    void *p = a->next;
    a->next += need;
    return p;
}

bool arena_owns(const struct arena *a, const void *p)
{
    uintptr_t at = (uintptr_t)p;
    for (const struct arena_chunk *c = a->chunks; c != NULL; c = c->older)
        if (at >= (uintptr_t)c->data && at < (uintptr_t)c->data + c->size)
            return true;
    return false;
}

void arena_free_all(struct arena *a)
{
    struct arena_chunk *c = a->chunks;
    while (c != NULL) {
        struct arena_chunk *older = c->older;
        free(c);
        c = older;
    }
    a->chunks = NULL;
    a->next = a->end = NULL;
}
