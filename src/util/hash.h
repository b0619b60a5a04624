/*
 * hash — the one hash function for in-memory tables (FNV-1a, 64 bit):
 * metric names, host names for NATS worker selection, client addresses.
 * Not for anything an attacker could exploit by collisions at scale: the
 * tables using it are bounded or keyed by configuration.
 */
#ifndef CCMS_HASH_H
#define CCMS_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 32);
}

#endif
