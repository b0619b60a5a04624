/* Tests for util/crc32.c: identical to zlib's crc32() for every length and
 * alignment, and the check value of the CRC-32/IEEE catalogue. */
#include "testutil.h"

#include <stdlib.h>
#include <zlib.h>

#include "util/crc32.h"

static void test_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32_ieee("123456789", 9), 0xCBF43926u);
    assert_int_equal(crc32_ieee("", 0), 0);
}

static void test_matches_zlib(void **state)
{
    (void)state;
    unsigned char buf[600];
    srand(7);
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)rand();
        size_t off = (size_t)rand() % 8, len = (size_t)rand() % (sizeof buf - 8);
        assert_int_equal(crc32_ieee(buf + off, len),
                         (uint32_t)crc32(0L, buf + off, (uInt)len));
    }
}

/* The long inputs of snapshot blocks and host records (the library path). */
static void test_long_inputs_match_zlib(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
    const size_t lens[] = {255, 256, 257, 4096, 65537, 1u << 20, 3u << 20};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
        assert_int_equal(crc32_ieee(buf, lens[k]), (uint32_t)crc32(0L, buf, (uInt)lens[k]));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_matches_zlib),
        cmocka_unit_test(test_long_inputs_match_zlib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
