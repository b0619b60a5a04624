/*
 * hash — the hash functions for in-memory tables:
 *  - hash_bytes (FNV-1a, 64 bit): metric names, host names for NATS worker
 *    selection, client addresses;
 *  - hash_name_ends: short names that differ at their ends (level names
 *    such as "hwthread17" or "00000000:49:00.0"), in two multiplications
 *    instead of one per byte, for the ingest's per-request level cache.
 * Not for anything an attacker could exploit by collisions at scale: the
 * tables using them are bounded, keyed by configuration, or check every
 * hit against the full key (a collision costs a lookup, nothing more).
 */
#ifndef CCMS_HASH_H
#define CCMS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 32);
}

/* A hash of the first and the last 8 bytes of data (zero-padded when
 * shorter) and its length; the high bits are the well-mixed ones. */
static inline uint64_t hash_name_ends(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t head = 0, tail = 0;
    size_t n = len < 8 ? len : 8;
    memcpy(&head, p, n);
    memcpy(&tail, p + len - n, n);
    uint64_t h = (head * 0x9E3779B97F4A7C15ull) ^ (tail * 0xC2B2AE3D27D4EB4Full) ^ len;
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull;
}

#endif
