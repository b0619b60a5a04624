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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_matches_zlib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
