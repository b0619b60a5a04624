/*
 * le — little-endian integers in byte buffers, the byte order of every
 * file format the store reads and writes (Go snapshots and log, native log
 * and snapshots, buffer images, encoded blocks). Header-only: the codec
 * and the log writers call these on hot paths.
 */
#ifndef CCMS_LE_H
#define CCMS_LE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The low `bytes` bytes of v at p (bytes 1..8). */
static inline void le_put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* `bytes` bytes at p (1..8) as an unsigned integer. */
static inline uint64_t le_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Fixed widths, written out so that the compiler turns each into a single
 * load or store (the codec decodes raw blocks with le_get32). */
static inline void le_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void le_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void le_put64(uint8_t *p, uint64_t v)
{
    le_put32(p, (uint32_t)v);
    le_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t le_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le_get64(const uint8_t *p)
{
    return le_get32(p) | (uint64_t)le_get32(p + 4) << 32;
}

/* Whether a[0..n) equals b[0..n). The short runs ingest compares on every
 * line (names, tag values, timestamps: 4 to 24 bytes) take two or three
 * overlapping word loads each; others memcmp. */
static inline __attribute__((always_inline)) bool le_same_bytes(const void *a, const void *b,
                                                                size_t n)
{
    const uint8_t *x = a, *y = b;
    if (n >= 8 && n <= 24) {
        uint64_t d = (le_get64(x) ^ le_get64(y)) | (le_get64(x + n - 8) ^ le_get64(y + n - 8));
        if (n > 16)
            d |= le_get64(x + 8) ^ le_get64(y + 8);
        return d == 0;
    }
    if (n >= 4 && n < 8)
        return ((le_get32(x) ^ le_get32(y)) | (le_get32(x + n - 4) ^ le_get32(y + n - 4))) == 0;
    return memcmp(a, b, n) == 0;
}

#endif
