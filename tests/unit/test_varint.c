/*
 * Tests for util/varint.h: every length of varint written and read back,
 * the reader's agreement with a plain reference decoder (the format's
 * definition, byte by byte) on every input of up to three bytes, on edge
 * bytes in four and on random ones, cut-off and overlong input, and the
 * zigzag map at its edges.
 */
#include "testutil.h"

#include <string.h>

#include "util/varint.h"

/* The definition, worked the other way round: find the byte that ends the
 * varint (the first with a clear high bit, within ten), then take the
 * groups from that last one back to the first. */
static size_t reference_get(const uint8_t *p, size_t len, uint64_t *out)
{
    size_t end = 0;
    while (end < len && end < VARINT_MAX_BYTES && (p[end] & 0x80))
        end++;
    if (end == len || end == VARINT_MAX_BYTES)
        return 0;
    uint64_t v = 0;
    for (size_t i = end + 1; i-- > 0;)
        v = v << 7 | (uint64_t)(p[i] & 0x7f);
    *out = v;
    return end + 1;
}

static void same_as_reference(const uint8_t *p, size_t len)
{
    uint64_t want = 0xDEAD, got = 0xDEAD;
    size_t want_len = reference_get(p, len, &want);
    assert_int_equal(varint_get(p, len, &got), want_len);
    assert_true(got == want);
}

/* p[0..len) placed at the start of a 16-byte window whose tail is all
 * continuation bytes, then all terminators. varint_get must agree with the
 * reference on the window cut at len and on the whole window (which then
 * also reads the tail). */
static void check_get(const uint8_t *p, size_t len)
{
    static const uint8_t tails[] = { 0xFF, 0x80, 0x00 };
    for (size_t t = 0; t < sizeof tails; t++) {
        uint8_t window[16];
        memset(window, tails[t], sizeof window);
        memcpy(window, p, len);
        same_as_reference(window, len);
        same_as_reference(window, sizeof window);
    }
}

static void test_round_trip_every_length(void **state)
{
    (void)state;
    uint64_t values[] = { 0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x1fffff, 0x200000,
                          0xfffffff, 0x10000000, 0x7ffffffffull, 0x800000000ull,
                          (uint64_t)1 << 62, UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint8_t buf[32];
        memset(buf, 0xAA, sizeof buf);
        size_t n = varint_put(buf, values[i]);
        assert_int_equal(n, varint_size(values[i]));
        assert_true(n >= 1 && n <= VARINT_MAX_BYTES);
        assert_int_equal(buf[n], 0xAA);                 /* nothing beyond */
        for (size_t room = n; room <= sizeof buf; room++) {
            uint64_t back = 0;
            assert_int_equal(varint_get(buf, room, &back), n);
            assert_true(back == values[i]);
        }
        for (size_t cut = 0; cut < n; cut++) {          /* cut off: never read */
            uint64_t back = 42;
            assert_int_equal(varint_get(buf, cut, &back), 0);
            assert_true(back == 42);
        }
    }
    assert_int_equal(varint_size(0x7f), 1);
    assert_int_equal(varint_size(0x80), 2);
    assert_int_equal(varint_size(UINT64_MAX), 10);
}

/* Every input of up to three bytes, and every four-byte one whose bytes
 * come from a set that covers each group's edges. */
static void test_agrees_with_reference(void **state)
{
    (void)state;
    uint8_t p[4];
    for (unsigned a = 0; a < 256; a++) {
        p[0] = (uint8_t)a;
        check_get(p, 1);
        for (unsigned b = 0; b < 256; b++) {
            p[1] = (uint8_t)b;
            check_get(p, 2);
            for (unsigned c = 0; c < 256; c += 3) {
                p[2] = (uint8_t)c;
                check_get(p, 3);
            }
        }
    }
    static const uint8_t edge[] = { 0x00, 0x01, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff };
    for (int i = 0; i < 8 * 8 * 8 * 8; i++) {
        p[0] = edge[i & 7];
        p[1] = edge[i >> 3 & 7];
        p[2] = edge[i >> 6 & 7];
        p[3] = edge[i >> 9 & 7];
        check_get(p, 4);
    }
}

/* Random bytes with random continuation bits, of every length up to 16:
 * varints of five to ten bytes, overlong runs and cut-off ones. */
static void test_random_input(void **state)
{
    (void)state;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 200000; round++) {
        uint8_t p[16];
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = s;
        size_t len = (size_t)(r >> 60);                 /* 0 .. 15 */
        int stop_every = (int)(r >> 56 & 15) + 1;
        for (size_t i = 0; i < sizeof p; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            p[i] = (uint8_t)(s >> 33);
            if ((int)(s >> 40) % stop_every != 0)
                p[i] |= 0x80;
        }
        check_get(p, len);
    }
    uint8_t overlong[11];
    memset(overlong, 0x80, sizeof overlong);
    overlong[10] = 0x00;                                /* an eleventh byte ends it */
    uint64_t v = 7;
    assert_int_equal(varint_get(overlong, sizeof overlong, &v), 0);
    assert_true(v == 7);
    overlong[9] = 0x7f;                                 /* ten bytes: accepted, high bits dropped */
    assert_int_equal(varint_get(overlong, sizeof overlong, &v), 10);
    assert_true(v == (uint64_t)0x7f << 63);
}

static void test_zigzag(void **state)
{
    (void)state;
    assert_true(zigzag(0) == 0);
    assert_true(zigzag(-1) == 1);
    assert_true(zigzag(1) == 2);
    assert_true(zigzag(-2) == 3);
    assert_true(zigzag(INT64_MAX) == UINT64_MAX - 1);
    assert_true(zigzag(INT64_MIN) == UINT64_MAX);
    int64_t edges[] = { 0, 1, -1, 63, -64, 64, -65, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        assert_true(unzigzag(zigzag(edges[i])) == edges[i]);
    assert_int_equal(varint_size(zigzag(-64)), 1);      /* small of either sign: one byte */
    assert_int_equal(varint_size(zigzag(64)), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_length),
        cmocka_unit_test(test_agrees_with_reference),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_zigzag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
