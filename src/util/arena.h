/*
 * arena — memory for one request: many small allocations, freed all at
 * once when the request is done. The JSON tree of a query (a few hundred
 * small objects) is built here, so that answering does not go through the
 * general allocator's bins for each of them and freeing it is one walk over
 * a few chunks.
 *
 * An arena owns its chunks; what arena_alloc returns lives until
 * arena_free_all. Not thread-safe: an arena belongs to one request.
 */
#ifndef CCMS_ARENA_H
#define CCMS_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *chunks;   /* newest first */
    char *next, *end;             /* the free room of the newest chunk */
};

#define ARENA_INIT { NULL, NULL, NULL }

/* size bytes, 16-byte aligned, uninitialised; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);

/* Whether p points into memory a handed out. */
bool arena_owns(const struct arena *a, const void *p);

/* Frees every chunk; a is empty again and may be used anew. */
void arena_free_all(struct arena *a);

#endif
