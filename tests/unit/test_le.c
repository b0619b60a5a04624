/*
 * Tests for util/le.h: integers of every width written and read back in
 * little-endian order, and le_same_bytes against memcmp for every length
 * from 0 to 40 (the word paths for 4 to 24 bytes and memcmp beyond), with
 * a difference at every position.
 */
#include "testutil.h"

#include <string.h>

#include "util/le.h"

static void test_integers(void **state)
{
    (void)state;
    uint8_t buf[8];
    le_put16(buf, 0x1234);
    assert_int_equal(buf[0], 0x34);
    assert_int_equal(buf[1], 0x12);
    assert_int_equal(le_get16(buf), 0x1234);
    le_put32(buf, 0xA1B2C3D4u);
    assert_int_equal(buf[0], 0xD4);
    assert_int_equal(buf[3], 0xA1);
    assert_int_equal(le_get32(buf), 0xA1B2C3D4u);
    le_put64(buf, 0x0102030405060708ull);
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[7], 0x01);
    assert_true(le_get64(buf) == 0x0102030405060708ull);
    for (int bytes = 1; bytes <= 8; bytes++) {
        uint64_t v = 0x8877665544332211ull;
        uint64_t mask = bytes == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * bytes)) - 1;
        memset(buf, 0xEE, sizeof buf);
        le_put(buf, v, bytes);
        assert_true(le_get(buf, bytes) == (v & mask));
        if (bytes < 8)
            assert_int_equal(buf[bytes], 0xEE);            /* nothing beyond */
    }
}

/* Equal runs are equal, and a run that differs in any one byte is not,
 * whatever its length; the bytes around the run do not matter. */
static void test_same_bytes(void **state)
{
    (void)state;
    uint8_t a[48], b[48];
    for (size_t n = 0; n <= 40; n++) {
        for (size_t i = 0; i < sizeof a; i++)
            a[i] = b[i] = (uint8_t)(i * 37 + 11);
        a[n + 1] = 1;                                       /* beyond the runs */
        b[n + 1] = 2;
        assert_true(le_same_bytes(a, b, n));
        for (size_t at = 0; at < n; at++) {
            b[at] ^= 0x40;
            assert_false(le_same_bytes(a, b, n));
            assert_int_equal(le_same_bytes(a, b, n), memcmp(a, b, n) == 0);
            b[at] ^= 0x40;
        }
        assert_true(le_same_bytes(a + 1, b + 1, n));        /* unaligned */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
