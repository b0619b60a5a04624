/*
 * varint — LEB128 unsigned varints (7 bits a byte, low groups first, the
 * high bit set on every byte but the last) and the zigzag map that gives
 * small signed numbers short varints. Shared by every format that uses
 * them: the block codec's part headers, the native log's records, the
 * Parquet writer's metadata. Header-only: the log writer puts several
 * varints for every sample it logs.
 *
 * A varint is at most 10 bytes; bits beyond 64 in a tenth byte are
 * ignored, as they always were, so that every reader accepts the same
 * bytes.
 */
#ifndef CCMS_VARINT_H
#define CCMS_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT_MAX_BYTES 10

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Bytes varint_put writes for v. */
static inline size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at p (VARINT_MAX_BYTES of room); returns the bytes written. */
static inline size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads the varint at p[0..len) into *out; returns its length, or 0 when
 * it is cut off by len or longer than VARINT_MAX_BYTES (*out unchanged). */
static inline size_t varint_get(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < VARINT_MAX_BYTES; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

#endif
