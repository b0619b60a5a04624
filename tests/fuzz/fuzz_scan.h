/*
 * fuzz_scan — shared by the fuzz targets of the log and snapshot readers
 * (fuzz_wal, fuzz_seglog, fuzz_nsnap; the copy also by fuzz_snapshot and
 * fuzz_jsonckpt): whatever a reader hands out must lie
 * inside its input, and a hash of what it delivered lets two scans of the
 * same bytes be compared.
 */
#ifndef CCMS_FUZZ_SCAN_H
#define CCMS_FUZZ_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of exactly size bytes of the input (at least one byte is
 * allocated), so that ASan catches any read past its end. Aborts when out
 * of memory. */
static inline void *fuzz_exact_copy(const uint8_t *data, size_t size)
{
    void *buf = malloc(size ? size : 1);
    if (buf == NULL)
        abort();
    if (size)
        memcpy(buf, data, size);
    return buf;
}

/* Aborts unless p[0..n) lies inside input[0..len). */
static inline void fuzz_check_inside(const void *input, size_t len, const void *p, size_t n)
{
    const unsigned char *lo = input, *q = p;
    if (!(q >= lo && n <= len && q <= lo + len - n))
        abort();
}

/* FNV-1a over p[0..n), continuing *h. */
static inline void fuzz_hash(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ULL;
    }
}

#endif
