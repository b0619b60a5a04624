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

static inline int testutil_block_bytes(void *ctx, const struct chain_block *b)
{
    *(uint64_t *)ctx += b->bytes;
    return 0;
}

/* Bytes the store holds for one buffer of BUFFER_CAP written slots with
 * frequency f, as the buffer module lays it out. */
static inline uint64_t full_buffer_bytes(int64_t f)
{
    struct buffer *head = NULL;
    int64_t delta = 0;
    uint64_t total = 0;
    for (int64_t k = 0; k < BUFFER_CAP; k++)
        assert_int_equal(chain_write(&head, f, 1000 + k * f, (float)k, &delta), 0);
    chain_for_each_block(head, testutil_block_bytes, &total);
    chain_free_all(&head, &delta);
    return total;
}

#endif
