/*
 * testutil — includes and small helpers shared by the cmocka unit tests.
 */
#ifndef CCMS_TESTUTIL_H
#define CCMS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "store/buffer.h"

/* Asserts that two NUL-terminated strings are equal, printing both on failure. */
/* tests/fixtures of the clone the test was built from (set by the Makefile
 * from the test file's own location). */
#ifndef CCMS_FIXTURE_DIR
#error "CCMS_FIXTURE_DIR must name tests/fixtures (the Makefile sets it)"
#endif

#define assert_str_eq(a, b) assert_string_equal((a), (b))

/* Asserts a double is NaN. */
#define assert_nan(x) assert_true(isnan((double)(x)))

/* Sample number k of a series that does not compress well: floats in
 * [1, 2) with hashed mantissas (a buffer of them has one predictable size
 * whatever block codec the store uses). */
static inline float test_noise(uint64_t k)
{
    uint64_t x = (k + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    uint32_t bits = 0x3f800000u | (uint32_t)(x & 0x7fffffu);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline int testutil_block_bytes(void *ctx, const struct chain_block *b)
{
    *(uint64_t *)ctx += b->bytes;
    return 0;
}

/* Bytes the store holds for one complete buffer of BUFFER_CAP slots with
 * frequency f holding test_noise(0..511), once a newer one has moved on
 * (64 samples) and the complete one is encoded, as the buffer module lays
 * it out. */
static inline uint64_t full_buffer_bytes(int64_t f)
{
    struct buffer *head = NULL;
    int64_t delta = 0;
    uint64_t total = 0;
    for (int64_t k = 0; k < BUFFER_CAP + 64; k++)
        assert_int_equal(chain_write(&head, f, 1000 + k * f, test_noise((uint64_t)k), &delta), 0);
    struct chain_block newest;
    assert_true(chain_newest_block(head, &newest));
    chain_for_each_block(head, testutil_block_bytes, &total);
    total -= newest.bytes;
    chain_free_all(&head, &delta);
    return total;
}

#endif
