/* Tests for store/codec.c: bit-exact round trips on random and edge-case
 * blocks, their statistics, the encoding each kind of data gets, extending
 * a block against encoding it whole, and garbage input. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>

#include "store/codec.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Encodes, decodes and compares bit for bit (missing stays missing).
 * Returns the encoded size; *kind gets the encoding. */
static size_t round_trip(const float *v, uint32_t n, int *kind)
{
    static uint8_t enc[1 + 4 * CODEC_MAX_VALUES];
    static float back[CODEC_MAX_VALUES];
    int len = codec_encode(v, n, enc, sizeof enc);
    assert_true(len > 0);
    assert_true((size_t)len <= codec_bound(n));
    assert_int_equal(codec_decode(enc, (size_t)len, n, back), 0);
    for (uint32_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            assert_nan(back[i]);
        else
            assert_int_equal(bits_of(back[i]), bits_of(v[i]));
    }
    if (kind)
        *kind = codec_kind_of(enc, (size_t)len);
    /* the block's statistics are those of its values, read without
     * decoding: same count, min and max bits, same sum */
    struct codec_stats want = CODEC_STATS_EMPTY, got = CODEC_STATS_EMPTY;
    codec_stats_values(v, n, &want);
    assert_int_equal(codec_stats(enc, (size_t)len, n, &got), 0);
    assert_int_equal(got.count, want.count);
    /* codec_count (what loading a snapshot block calls) agrees */
    uint32_t present = UINT32_MAX;
    assert_int_equal(codec_count(enc, (size_t)len, n, &present), 0);
    assert_int_equal(present, want.count);
    if (want.count > 0) {
        assert_int_equal(bits_of(got.min), bits_of(want.min));
        assert_int_equal(bits_of(got.max), bits_of(want.max));
        assert_memory_equal(&got.sum, &want.sum, sizeof got.sum);
    }
    /* a smaller output buffer is refused, never overrun */
    assert_int_equal(codec_encode(v, n, enc, (size_t)len - 1), CODEC_ESPACE);
    return (size_t)len;
}

/* A random walk with k decimals in [lo, hi), a quarter of the steps zero. */
static void walk(float *v, uint32_t n, int k, double lo, double hi)
{
    double scale = pow(10, k), range = hi - lo;
    double x = lo + (double)(next_rand() % 1000) / 1000 * range;
    for (uint32_t i = 0; i < n; i++) {
        if (next_rand() % 4 != 0)
            x += ((double)(next_rand() % 2001) / 1000 - 1.0) * 0.02 * range;
        if (x < lo)
            x = 2 * lo - x;
        if (x >= hi)
            x = 2 * hi - x - 1 / scale;
        v[i] = (float)(nearbyint(x * scale) / scale);
    }
}

/* Every decimal count 0..8, with and without missing samples: DECIMAL,
 * exact, and small for gauges. */
static void test_decimal_walks(void **state)
{
    (void)state;
    static float v[512];
    for (int k = 0; k <= 8; k++) {
        for (int round = 0; round < 20; round++) {
            double hi = k <= 3 ? 100.0 : 1.0;
            walk(v, 512, k, 0.0, hi);
            if (round % 2)
                for (int j = 0; j < 40; j++)
                    v[next_rand() % 512] = NAN;
            int kind;
            size_t len = round_trip(v, 512, &kind);
            if (k <= 6) {
                /* (7 and 8 decimals exceed what a float holds for these
                 * magnitudes: any exact encoding is fine) */
                assert_int_equal(kind, CODEC_DECIMAL);
            }
            if (k <= 3)
                assert_true(len < 512 * 2);     /* well under 2 bytes a value */
        }
    }
}

/* The benchmark's value shapes: cpu_load 0-64 with 2 decimals, clock
 * 1200-3600 MHz with 1, ipc 0.1-4 with 3: about 1.2 bytes a value. */
static void test_gauge_sizes(void **state)
{
    (void)state;
    static float v[512];
    const struct {
        int k;
        double lo, hi;
    } shapes[] = { { 2, 0, 64 }, { 1, 1200, 3600 }, { 3, 0.1, 4 } };
    for (size_t s = 0; s < 3; s++) {
        size_t total = 0;
        for (int round = 0; round < 50; round++) {
            walk(v, 512, shapes[s].k, shapes[s].lo, shapes[s].hi);
            int kind;
            total += round_trip(v, 512, &kind);
            assert_int_equal(kind, CODEC_DECIMAL);
        }
        assert_true(total < 50 * 512 * 14 / 10);
    }
}

/* Bit patterns drawn at random (every sign and exponent: nothing to
 * share) stay RAW: 4 bytes a value plus one. */
static void test_noise_is_raw(void **state)
{
    (void)state;
    static float v[512];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 512; i++) {
            uint32_t u;
            do {
                u = (uint32_t)next_rand();
            } while (isnan(float_of(u)));
            v[i] = float_of(u);
        }
        int kind;
        assert_int_equal(round_trip(v, 512, &kind), 1 + 4 * 512);
        assert_int_equal(kind, CODEC_RAW);
    }
}

/* Values no decimal count describes but that share their sign and most
 * exponent bits, or move by small steps (full-precision sensor values, the
 * benchmark's noise in [0, 2.1)), are BITS: smaller than RAW and exact,
 * statistics included, across zero and with gaps. */
static void test_full_precision_is_bits(void **state)
{
    (void)state;
    static float v[512];
    for (int round = 0; round < 40; round++) {
        /* a walk in full float precision: 1/3 steps never have decimals */
        double x = 40.0 + (double)(next_rand() % 1000) / 100.0;
        for (int i = 0; i < 512; i++) {
            if (next_rand() % 4)
                x += ((double)(next_rand() % 2001) / 1000.0 - 1.0) / 3.0;
            v[i] = (float)x;
        }
        if (round % 2)
            for (int j = 0; j < 40; j++)
                v[next_rand() % 512] = NAN;
        int kind;
        size_t len = round_trip(v, 512, &kind);
        assert_int_equal(kind, CODEC_BITS);
        assert_true(len < 512 * 3);             /* about 22 bits a move */
    }
    for (int round = 0; round < 40; round++) {
        /* uniform noise in [0, 2.1): nine digits, more than a float holds */
        for (int i = 0; i < 512; i++)
            v[i] = (float)((double)(next_rand() >> 33) * 1e-9);
        int kind;
        size_t len = round_trip(v, 512, &kind);
        assert_int_equal(kind, CODEC_BITS);
        assert_true(len < 512 * 15 / 4);        /* under 30 bits a value */
    }
    /* a walk across zero: negative values, -0 and +0 all come back, and
     * the statistics order -0 below +0 (alone, -0 and +0 are BITS) */
    double x = 0.5;
    for (int i = 0; i < 512; i++) {
        x += ((double)(next_rand() % 2001) / 1000.0 - 1.0) / 7.0;
        v[i] = (float)x;
    }
    v[100] = -0.0f;
    v[101] = 0.0f;
    v[300] = NAN;
    int kind;
    round_trip(v, 512, &kind);     /* (crossing zero spans every exponent: RAW) */
    for (int i = 0; i < 512; i++)
        v[i] = i % 2 ? 0.0f : -0.0f;
    round_trip(v, 512, &kind);
    assert_int_equal(kind, CODEC_BITS);
    /* every truncation, a byte too many, and every flipped bit of a BITS
     * block: an error or some values, never a crash (ASan watches) */
    static uint8_t enc[1 + 4 * 512 + 1];
    static float out[512];
    for (int i = 0; i < 512; i++)
        v[i] = 1.0f / (float)(i + 3);
    int len = codec_encode(v, 512, enc, sizeof enc);
    assert_int_equal(codec_kind_of(enc, (size_t)len), CODEC_BITS);
    uint32_t present;
    for (int cut = 0; cut < len; cut++)
        assert_int_equal(codec_decode(enc, (size_t)cut, 512, out), CODEC_ECORRUPT);
    enc[len] = 0;
    assert_int_equal(codec_count(enc, (size_t)len + 1, 512, &present), CODEC_ECORRUPT);
    for (int bit = 0; bit < len * 8; bit++) {
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct codec_stats st = CODEC_STATS_EMPTY;
        if (codec_stats(enc, (size_t)len, 512, &st) == 0 && st.count > 0)
            assert_false(isnan(st.min) || isnan(st.max));   /* extremes are never NaN */
        (void)codec_decode(enc, (size_t)len, 512, out);
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(codec_decode(enc, (size_t)len, 512, out), 0);
    /* extremes that would read as NaN are refused: a block of one value
     * whose float bits say NaN (0x7fc00000 -> ordered 0xffc00000) */
    const uint8_t nan_block[] = { CODEC_BITS, 0x00, 0x80, 0x80, 0x80, 0xfc, 0x1f, 0x00, 0x00,
                                  0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(codec_decode(nan_block, sizeof nan_block, 1, out), CODEC_ECORRUPT);
    struct codec_stats st = CODEC_STATS_EMPTY;
    assert_int_equal(codec_stats(nan_block, sizeof nan_block, 1, &st), CODEC_ECORRUPT);
    /* steps that run out of [min, max] (a corrupt block the header check
     * cannot see): wrong numbers, but never NaN, so every counted sample
     * reads as a sample (found by fuzz_codec) */
    const uint8_t wild[] = { CODEC_BITS, 0x00, 0x80, 0x80, 0x80, 0xf8, 0x17, 0x80, 0xc0, 0x80,
                             0x3d, 0x00, 0x00, 0x80, 0x80, 0x02, 0x00, 0x00, 0x00, 0x00,
                             0x1c, 0x00, 0x04, 0x40 };
    static float many[3073];
    assert_int_equal(codec_decode(wild, sizeof wild, 3073, many), 0);
    assert_int_equal(codec_count(wild, sizeof wild, 3073, &present), 0);
    assert_int_equal(present, 3073);
    for (int i = 0; i < 3073; i++)
        assert_false(isnan(many[i]));
    assert_string_equal(codec_kind_name(CODEC_BITS), "bits");
}

static void test_edge_values(void **state)
{
    (void)state;
    const float edges[] = { 0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_MIN / 8, -FLT_MIN / 1024,
                            FLT_MAX, -FLT_MAX, FLT_EPSILON, 1.0f, -1.0f, 0.1f, 1e-8f,
                            16777216.0f, 16777217.0f, 1099511627776.0f, 3.4e37f, INFINITY,
                            -INFINITY };
    size_t ne = sizeof edges / sizeof edges[0];
    static float v[512];
    int kind;
    /* each alone (single-sample blocks), and each inside a decimal walk */
    for (size_t e = 0; e < ne; e++) {
        round_trip(&edges[e], 1, &kind);
        walk(v, 512, 2, 0, 10);
        v[next_rand() % 512] = edges[e];
        round_trip(v, 512, &kind);
    }
    /* all of them together, repeatedly, with NaN runs in between */
    for (int i = 0; i < 512; i++)
        v[i] = (i / 7) % 3 == 0 ? NAN : edges[(size_t)i % ne];
    round_trip(v, 512, &kind);
    assert_true(kind == CODEC_RAW || kind == CODEC_BITS);
    /* -0 alone is CONST; -0 has no decimal form, so a block holding it
     * and a decimal is BITS (one move and its way back) */
    for (int i = 0; i < 512; i++)
        v[i] = -0.0f;
    assert_int_equal(round_trip(v, 512, &kind), 5);
    assert_int_equal(kind, CODEC_CONST);
    v[3] = 1.5f;
    assert_true(round_trip(v, 512, &kind) < 100);
    assert_int_equal(kind, CODEC_BITS);
}

/* Statistics add up across blocks and plain values: -0 is below +0, an
 * all-missing block adds nothing, corrupt blocks leave the sum alone. */
static void test_stats_accumulate(void **state)
{
    (void)state;
    static uint8_t enc[1 + 4 * 128];
    struct codec_stats acc = CODEC_STATS_EMPTY;
    float missing[4] = { NAN, NAN, NAN, NAN };
    int len = codec_encode(missing, 4, enc, sizeof enc);
    assert_int_equal(codec_stats(enc, (size_t)len, 4, &acc), 0);
    assert_int_equal(acc.count, 0);
    float decimals[32];                  /* 0, 0.25, ..., 7.75 without 0.5 */
    for (int i = 0; i < 32; i++)
        decimals[i] = i == 2 ? NAN : 0.25f * (float)i;
    len = codec_encode(decimals, 32, enc, sizeof enc);
    assert_int_equal(codec_kind_of(enc, (size_t)len), CODEC_DECIMAL);
    assert_int_equal(codec_stats(enc, (size_t)len, 32, &acc), 0);
    float more[2] = { -0.0f, -3.0f };
    codec_stats_values(more, 1, &acc);
    assert_int_equal(acc.count, 32);
    assert_true(acc.min == 0 && signbit(acc.min));     /* -0 below +0 */
    assert_true(acc.max == 7.75f && acc.sum == 123.5);
    codec_stats_values(more + 1, 1, &acc);
    assert_true(acc.min == -3.0f && acc.count == 33 && acc.sum == 120.5);
    /* a cut DECIMAL block is refused and adds nothing */
    len = codec_encode(decimals, 32, enc, sizeof enc);
    struct codec_stats before = acc;
    for (int cut = 0; cut < len; cut++)
        assert_int_equal(codec_stats(enc, (size_t)cut, 32, &acc), CODEC_ECORRUPT);
    assert_int_equal(codec_stats(enc, (size_t)len, 0, &acc), CODEC_ECOUNT);
    assert_memory_equal(&acc, &before, sizeof acc);
}

/* codec_stats_values against the plain definition, on values that mix
 * -0, +0, negatives and gaps, added in pieces of every size: the same
 * count, the same sum bits, and extremes in the order -0 < +0. */
static void test_stats_values_match_definition(void **state)
{
    (void)state;
    const float pool[] = { -0.0f, 0.0f, -0.0f, 0.0f, 1.5f, -2.25f, NAN, NAN, 3e-40f, -7.0f };
    static float v[300];
    for (int round = 0; round < 3000; round++) {
        uint32_t n = 1 + (uint32_t)(next_rand() % 300);
        uint32_t kinds = 2 + (uint32_t)(next_rand() % 9);      /* a prefix of the pool */
        for (uint32_t i = 0; i < n; i++)
            v[i] = pool[next_rand() % kinds];
        struct codec_stats want = CODEC_STATS_EMPTY, got = CODEC_STATS_EMPTY;
        for (uint32_t i = 0; i < n; i++) {
            float x = v[i];
            if (isnan(x))
                continue;
            if (want.count == 0 || x < want.min || (x == 0 && want.min == 0 && signbit(x)))
                want.min = x;
            if (want.count == 0 || x > want.max || (x == 0 && want.max == 0 && !signbit(x)))
                want.max = x;
            want.count++;
            want.sum += (double)x;
        }
        for (uint32_t at = 0; at < n;) {
            uint32_t piece = 1 + (uint32_t)(next_rand() % (n - at));
            codec_stats_values(v + at, piece, &got);
            at += piece;
        }
        assert_int_equal(got.count, want.count);
        assert_memory_equal(&got.sum, &want.sum, sizeof got.sum);
        if (want.count > 0) {
            assert_int_equal(bits_of(got.min), bits_of(want.min));
            assert_int_equal(bits_of(got.max), bits_of(want.max));
        }
    }
}

/* Gauges that repeat: zero deltas cost one bit each, the non-zero ones a
 * width of their own spread; the block is smaller than packing every delta
 * at one width would make it, and still exact (with gaps, at every share
 * of repeats, and at the ends of the packed bits). */
static void test_repeats_cost_a_bit(void **state)
{
    (void)state;
    static float v[512];
    for (int share = 0; share <= 8; share++) {
        for (int round = 0; round < 10; round++) {
            double x = 50.0;
            for (int i = 0; i < 512; i++) {
                if ((int)(next_rand() % 8) >= share)
                    x += (double)((int)(next_rand() % 401) - 200) / 100.0;
                v[i] = (float)(nearbyint(x * 100) / 100);
            }
            if (round % 2)
                for (int j = 0; j < 30; j++)
                    v[next_rand() % 512] = NAN;
            int kind;
            size_t len = round_trip(v, 512, &kind);
            if (share < 8) {
                assert_int_equal(kind, CODEC_DECIMAL);
                /* a header of about 20 bytes, the bitmaps, 9 bits a move */
                size_t moves = 512 - 512 * (size_t)share / 8;
                assert_true(len < 40 + 64 + 64 + (moves * 9 + 7) / 8 + 64);
            }
        }
    }
    /* a block with the bitmap of moves, cut or with a byte too many: decoding
     * and counting refuse both; the statistics, which read the header
     * alone, refuse the longer one */
    {
        static uint8_t enc[1 + 4 * 512 + 1];
        for (int i = 0; i < 512; i++)
            v[i] = (float)(i / 3) * 0.5f;          /* two repeats per move */
        int len = codec_encode(v, 512, enc, sizeof enc);
        assert_true(len > 0 && (enc[2] & 2) != 0);
        float out[512];
        uint32_t present;
        struct codec_stats st = CODEC_STATS_EMPTY;
        assert_int_equal(codec_decode(enc, (size_t)len - 1, 512, out), CODEC_ECORRUPT);
        assert_int_equal(codec_count(enc, (size_t)len - 1, 512, &present), CODEC_ECORRUPT);
        enc[len] = 0;
        assert_int_equal(codec_decode(enc, (size_t)len + 1, 512, out), CODEC_ECORRUPT);
        assert_int_equal(codec_count(enc, (size_t)len + 1, 512, &present), CODEC_ECORRUPT);
        assert_int_equal(codec_stats(enc, (size_t)len + 1, 512, &st), CODEC_ECORRUPT);
        assert_int_equal(st.count, 0);
    }
    /* one move among repeats, at either end and in the middle */
    for (uint32_t at = 1; at < 300; at += 149) {
        for (uint32_t i = 0; i < 300; i++)
            v[i] = i < at ? 2.5f : 3.75f;
        int kind;
        assert_true(round_trip(v, 300, &kind) < 70);
        assert_int_equal(kind, CODEC_DECIMAL);
    }
}

/* Blocks written before zero deltas had their own bitmap (a DECIMAL block
 * of 20 values with 2 decimals, a repeat and two gaps, as that encoder
 * wrote it) still decode, count and give their statistics. */
static void test_reads_blocks_without_zero_bitmap(void **state)
{
    (void)state;
    static const uint8_t old[] = {
        0x02, 0x02, 0x01, 0xf7, 0xfd, 0x0f, 0xc4, 0x13, 0x95, 0x01, 0x09, 0x64,
        0xc8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x6d, 0x40, 0x64, 0x96,
        0x90, 0x01, 0xb0, 0x64, 0x09, 0x00, 0x32, 0x64, 0x96, 0xb0, 0x24, 0xb3,
        0x24, 0x83, 0x8c, 0x25, 0x32, 0x00,
    };
    const float want[20] = { 12.5f, 12.75f, 12.75f, NAN, 13.0f, 12.25f, 12.25f, 12.25f,
                             11.5f, NAN, 11.75f, 12.0f, 12.0f, 14.25f, 14.5f, 14.5f,
                             14.0f, 13.75f, 13.75f, 13.5f };
    float out[20];
    assert_int_equal(codec_decode(old, sizeof old, 20, out), 0);
    for (int i = 0; i < 20; i++) {
        if (isnan(want[i]))
            assert_nan(out[i]);
        else
            assert_int_equal(bits_of(out[i]), bits_of(want[i]));
    }
    uint32_t present = 0;
    assert_int_equal(codec_count(old, sizeof old, 20, &present), 0);
    assert_int_equal(present, 18);
    struct codec_stats got = CODEC_STATS_EMPTY, expect = CODEC_STATS_EMPTY;
    assert_int_equal(codec_stats(old, sizeof old, 20, &got), 0);
    codec_stats_values(want, 20, &expect);
    assert_memory_equal(&got, &expect, sizeof got);
    /* today's encoder writes the same values smaller, with the bitmap */
    uint8_t enc[128];
    int len = codec_encode(want, 20, enc, sizeof enc);
    assert_true(len > 0 && (size_t)len <= sizeof old);
}

static void test_const_and_missing(void **state)
{
    (void)state;
    static float v[512];
    int kind;
    for (int i = 0; i < 512; i++)
        v[i] = NAN;
    assert_int_equal(round_trip(v, 512, &kind), 5);
    assert_int_equal(kind, CODEC_CONST);
    /* NaN with another payload is still just missing */
    v[9] = float_of(0x7fc00123u);
    assert_int_equal(round_trip(v, 512, &kind), 5);
    for (int i = 0; i < 512; i++)
        v[i] = 42.5f;
    assert_int_equal(round_trip(v, 512, &kind), 5);
    assert_int_equal(kind, CODEC_CONST);
    /* one sample among missing ones, at every position class */
    for (uint32_t at = 0; at < 512; at += 73) {
        for (int i = 0; i < 512; i++)
            v[i] = NAN;
        v[at] = 7.25f;
        assert_true(round_trip(v, 512, &kind) < 90);   /* mostly the bitmap */
        assert_int_equal(kind, CODEC_DECIMAL);
    }
    /* constant with gaps: width 0 */
    for (int i = 0; i < 512; i++)
        v[i] = i % 5 ? 3.0f : NAN;
    assert_true(round_trip(v, 512, &kind) < 90);   /* the bitmap, the header and the statistics */
    /* odd sizes: every n from 1 to 70, and the maximum */
    static float big[CODEC_MAX_VALUES];
    for (uint32_t n = 1; n <= 70; n++) {
        walk(big, n, (int)(n % 4), 0, 50);
        if (n % 3 == 0)
            big[n / 2] = NAN;
        round_trip(big, n, NULL);
    }
    walk(big, CODEC_MAX_VALUES, 2, 0, 64);
    round_trip(big, CODEC_MAX_VALUES, NULL);
}

static void test_bad_counts_and_garbage(void **state)
{
    (void)state;
    float v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t enc[64];
    float out[CODEC_MAX_VALUES];
    assert_int_equal(codec_encode(v, 0, enc, sizeof enc), CODEC_ECOUNT);
    assert_int_equal(codec_decode(enc, 1, 0, out), CODEC_ECOUNT);
    assert_int_equal(codec_decode(enc, 1, CODEC_MAX_VALUES + 1, out), CODEC_ECOUNT);
    assert_int_equal(codec_decode(enc, 0, 8, out), CODEC_ECORRUPT);
    int len = codec_encode(v, 8, enc, sizeof enc);
    assert_true(len > 0);
    /* every truncation and every trailing byte is refused */
    for (int cut = 0; cut < len; cut++)
        assert_int_equal(codec_decode(enc, (size_t)cut, 8, out), CODEC_ECORRUPT);
    enc[len] = 0;
    assert_int_equal(codec_decode(enc, (size_t)len + 1, 8, out), CODEC_ECORRUPT);
    /* the count is the caller's; where the length depends on it (RAW) a
     * wrong one is refused */
    float noise[8] = { 1.1e-7f, 3.3e9f, -2.2e-3f, 7.7e11f, 0.3e-9f, 5.5e5f, 1.3e-11f, 9e9f };
    len = codec_encode(noise, 8, enc, sizeof enc);
    assert_int_equal(codec_kind_of(enc, (size_t)len), CODEC_RAW);
    assert_int_equal(codec_decode(enc, (size_t)len, 9, out), CODEC_ECORRUPT);
    assert_int_equal(codec_decode(enc, (size_t)len, 7, out), CODEC_ECORRUPT);
    /* random bytes and flipped bits: an error or some values, never a crash
     * (ASan watches the reads) */
    static uint8_t junk[4096];
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + next_rand() % 600;
        size_t jl = next_rand() % sizeof junk;
        for (size_t i = 0; i < jl; i++)
            junk[i] = (uint8_t)next_rand();
        junk[0] = (uint8_t)(next_rand() % 4);
        /* codec_count accepts exactly what codec_decode accepts */
        uint32_t m;
        int dec = codec_decode(junk, jl, (uint32_t)n, out);
        assert_int_equal(codec_count(junk, jl, (uint32_t)n, &m) == 0, dec == 0);
    }
    static float w[512];
    static uint8_t good[1 + 4 * 512];
    walk(w, 512, 2, 0, 64);
    int gl = codec_encode(w, 512, good, sizeof good);
    for (int bit = 0; bit < gl * 8; bit++) {
        good[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        (void)codec_decode(good, (size_t)gl, 512, out);
        good[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(codec_decode(good, (size_t)gl, 512, out), 0);
    assert_string_equal(codec_strerror(CODEC_ECORRUPT), "corrupt encoded block");
    assert_string_equal(codec_kind_name(CODEC_DECIMAL), "decimal");
}

/* codec_extend(encode(v[0..n_old)), v[n_old..n)) gives exactly the bytes
 * of encode(v[0..n)); returns which path it took, as far as the result
 * shows: the kind of the block. */
static int extend_matches_encode(const float *v, uint32_t n_old, uint32_t n)
{
    static uint8_t old[1 + 4 * CODEC_MAX_VALUES], want[1 + 4 * CODEC_MAX_VALUES],
        got[1 + 4 * CODEC_MAX_VALUES];
    int old_len = codec_encode(v, n_old, old, sizeof old);
    int want_len = codec_encode(v, n, want, sizeof want);
    assert_true(old_len > 0 && want_len > 0);
    int got_len = codec_extend(old, (size_t)old_len, n_old, v + n_old, n - n_old, got, sizeof got);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, (size_t)want_len);
    /* one byte less room is refused, never overrun */
    assert_int_equal(codec_extend(old, (size_t)old_len, n_old, v + n_old, n - n_old, got,
                                  (size_t)want_len - 1),
                     CODEC_ESPACE);
    return codec_kind_of(want, (size_t)want_len);
}

/* Every kind of block extended by every kind of values, split anywhere,
 * with and without missing samples: always the bytes of encoding it all
 * at once (so a part sealed a quarter at a time is stored exactly as one
 * sealed in one go). */
static void test_extend_equals_encode(void **state)
{
    (void)state;
    static float v[CODEC_MAX_VALUES];
    int kinds_seen[4] = { 0 };
    for (int round = 0; round < 3000; round++) {
        uint32_t n = 2 + (uint32_t)(next_rand() % 300);
        uint32_t n_old = 1 + (uint32_t)(next_rand() % (n - 1));
        int k = (int)(next_rand() % 9);
        walk(v, n, k, 0, k <= 3 ? 100.0 : 1.0);
        switch (next_rand() % 8) {
        case 0:                                 /* a new value with a decimal more */
            v[n_old + next_rand() % (n - n_old)] += (float)pow(10, -k - 1) * 3;
            break;
        case 1:                                 /* missing runs on either side */
            for (uint32_t i = 0; i < n; i++)
                if (next_rand() % 5 == 0)
                    v[i] = NAN;
            break;
        case 2:                                 /* nothing new present */
            for (uint32_t i = n_old; i < n; i++)
                v[i] = NAN;
            break;
        case 3:                                 /* one old value present */
            for (uint32_t i = 0; i < n_old; i++)
                v[i] = i == n_old / 2 ? 1.25f : NAN;
            break;
        case 4:                                 /* steps too wide for DECIMAL to stay */
            walk(v, n, 1, 0, 12500);
            if (next_rand() % 2)
                for (uint32_t i = n_old; i < n; i++)
                    v[i] = (float)(next_rand() % 100000000) / 7.0f;
            break;
        case 5:                                 /* an old part that is constant */
            for (uint32_t i = 0; i < n_old; i++)
                v[i] = 42.5f;
            break;
        case 6:                                 /* noise: RAW or BITS */
            for (uint32_t i = 0; i < n; i++)
                v[i] = float_of((uint32_t)next_rand() & 0x7f7fffffu);
            break;
        default:
            break;
        }
        kinds_seen[extend_matches_encode(v, n_old, n)]++;
    }
    for (int kind = 0; kind < 4; kind++)
        assert_true(kinds_seen[kind] > 0);
    /* a whole CODEC_MAX_VALUES block from a part of one value */
    walk(v, CODEC_MAX_VALUES, 2, 0, 64);
    extend_matches_encode(v, 1, CODEC_MAX_VALUES);
    extend_matches_encode(v, CODEC_MAX_VALUES - 1, CODEC_MAX_VALUES);
}

/* codec_concat of the blocks of v split at cuts gives exactly the bytes of
 * encode(v[0..n)); returns the kind of the block. */
static int concat_matches_encode(const float *v, const uint32_t *cuts, uint32_t count, uint32_t n)
{
    static uint8_t parts[8][1 + 4 * CODEC_MAX_VALUES], want[1 + 4 * CODEC_MAX_VALUES],
        got[1 + 4 * CODEC_MAX_VALUES];
    const uint8_t *blocks[8];
    size_t lens[8];
    uint32_t ns[8];
    for (uint32_t b = 0; b < count; b++) {
        uint32_t from = b ? cuts[b - 1] : 0, to = b + 1 < count ? cuts[b] : n;
        int len = codec_encode(v + from, to - from, parts[b], sizeof parts[b]);
        assert_true(len > 0);
        blocks[b] = parts[b];
        lens[b] = (size_t)len;
        ns[b] = to - from;
    }
    int want_len = codec_encode(v, n, want, sizeof want);
    int got_len = codec_concat(blocks, lens, ns, count, got, sizeof got);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, (size_t)want_len);
    assert_int_equal(codec_concat(blocks, lens, ns, count, got, (size_t)want_len - 1),
                     CODEC_ESPACE);
    return codec_kind_of(want, (size_t)want_len);
}

/* Blocks of every kind joined, 1 to 8 of them of any length, with and
 * without missing samples: always the bytes of encoding all their values
 * at once (a full buffer's parts merged into one are stored exactly as a
 * buffer sealed in one go). */
static void test_concat_equals_encode(void **state)
{
    (void)state;
    static float v[CODEC_MAX_VALUES];
    int kinds_seen[4] = { 0 };
    for (int round = 0; round < 2000; round++) {
        uint32_t count = 1 + (uint32_t)(next_rand() % 8);
        uint32_t n = count + (uint32_t)(next_rand() % 600);
        uint32_t cuts[8];
        for (uint32_t b = 0; b + 1 < count; b++)    /* increasing, each block >= 1 value */
            cuts[b] = (b + 1) * (n / count);
        int k = (int)(next_rand() % 9);
        walk(v, n, k, 0, k <= 3 ? 100.0 : 1.0);
        switch (next_rand() % 7) {
        case 0:                                 /* one block with a decimal more */
            v[next_rand() % n] += (float)pow(10, -k - 1) * 3;
            break;
        case 1:                                 /* missing samples */
            for (uint32_t i = 0; i < n; i++)
                if (next_rand() % 5 == 0)
                    v[i] = NAN;
            break;
        case 2:                                 /* a block with nothing present */
            for (uint32_t i = 0; i < n / count; i++)
                v[i] = NAN;
            break;
        case 3:                                 /* a constant block */
            for (uint32_t i = 0; i < n / count; i++)
                v[i] = 42.5f;
            break;
        case 4:                                 /* steps too wide for DECIMAL */
            walk(v, n, 1, 0, 12500);
            break;
        case 5:                                 /* noise: RAW or BITS */
            for (uint32_t i = 0; i < n; i++)
                v[i] = float_of((uint32_t)next_rand() & 0x7f7fffffu);
            break;
        default:
            break;
        }
        kinds_seen[concat_matches_encode(v, cuts, count, n)]++;
    }
    for (int kind = 0; kind < 4; kind++)
        assert_true(kinds_seen[kind] > 0);
    /* four parts of 128 into one of 512, as a full buffer is merged */
    uint32_t quarters[3] = { 128, 256, 384 };
    walk(v, 512, 2, 0, 64);
    assert_int_equal(concat_matches_encode(v, quarters, 4, 512), CODEC_DECIMAL);
}

/* Wrong counts, cut-off blocks and flipped bits: an error or some block,
 * never a crash or a write past the output (ASan watches). */
static void test_concat_bad_input(void **state)
{
    (void)state;
    static float v[512], back[512];
    static uint8_t a[1 + 4 * 256], b[1 + 4 * 256], got[1 + 4 * 512];
    walk(v, 512, 2, 0, 64);
    int la = codec_encode(v, 256, a, sizeof a), lb = codec_encode(v + 256, 256, b, sizeof b);
    const uint8_t *blocks[2] = { a, b };
    size_t lens[2] = { (size_t)la, (size_t)lb };
    uint32_t ns[2] = { 256, 256 };
    assert_int_equal(codec_concat(blocks, lens, ns, 0, got, sizeof got), CODEC_ECOUNT);
    ns[1] = 0;
    assert_int_equal(codec_concat(blocks, lens, ns, 2, got, sizeof got), CODEC_ECOUNT);
    ns[1] = CODEC_MAX_VALUES;
    assert_int_equal(codec_concat(blocks, lens, ns, 2, got, sizeof got), CODEC_ECOUNT);
    ns[1] = 256;
    for (size_t cut = 0; cut < (size_t)lb; cut++) {
        lens[1] = cut;
        assert_int_equal(codec_concat(blocks, lens, ns, 2, got, sizeof got), CODEC_ECORRUPT);
    }
    lens[1] = (size_t)lb;
    ns[1] = 200;                                /* not a block of that many */
    assert_int_equal(codec_concat(blocks, lens, ns, 2, got, sizeof got), CODEC_ECORRUPT);
    ns[1] = 256;
    for (int bit = 0; bit < lb * 8; bit++) {
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int len = codec_concat(blocks, lens, ns, 2, got, sizeof got);
        assert_true(len == CODEC_ECORRUPT || (len > 0 && codec_decode(got, (size_t)len, 512,
                                                                      back) == 0));
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(codec_concat(blocks, lens, ns, 2, got, sizeof got) > 0, 1);
}

/* Counts out of range, cut-off and corrupt blocks: an error, or (a
 * corrupt block whose header still holds) the values its decoding gives,
 * followed by the new ones; never a crash (ASan watches). */
static void test_extend_bad_input(void **state)
{
    (void)state;
    static float v[512], more[64], out[512 + 64], back[512 + 64];
    static uint8_t enc[1 + 4 * 512], got[1 + 4 * (512 + 64)];
    walk(v, 512, 2, 0, 64);
    walk(more, 64, 2, 0, 64);
    int len = codec_encode(v, 512, enc, sizeof enc);
    assert_int_equal(codec_extend(enc, (size_t)len, 0, more, 64, got, sizeof got), CODEC_ECOUNT);
    assert_int_equal(codec_extend(enc, (size_t)len, 512, more, 0, got, sizeof got), CODEC_ECOUNT);
    assert_int_equal(codec_extend(enc, (size_t)len, CODEC_MAX_VALUES, more, 1, got, sizeof got),
                     CODEC_ECOUNT);
    for (int cut = 0; cut < len; cut++)
        assert_int_equal(codec_extend(enc, (size_t)cut, 512, more, 64, got, sizeof got),
                         CODEC_ECORRUPT);
    assert_int_equal(codec_extend(enc, (size_t)len, 500, more, 64, got, sizeof got),
                     CODEC_ECORRUPT);           /* not a block of that many */
    int refused = 0;
    for (int bit = 0; bit < len * 8; bit++) {
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = codec_extend(enc, (size_t)len, 512, more, 64, got, sizeof got);
        if (rc < 0) {
            assert_int_equal(rc, CODEC_ECORRUPT);
            refused++;
        } else {
            assert_int_equal(codec_decode(enc, (size_t)len, 512, out), 0);
            memcpy(out + 512, more, sizeof more);
            assert_int_equal(codec_decode(got, (size_t)rc, 512 + 64, back), 0);
            for (uint32_t i = 0; i < 512 + 64; i++) {
                if (isnan(out[i]))
                    assert_nan(back[i]);
                else
                    assert_int_equal(bits_of(back[i]), bits_of(out[i]));
            }
        }
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_true(refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_walks),
        cmocka_unit_test(test_gauge_sizes),
        cmocka_unit_test(test_noise_is_raw),
        cmocka_unit_test(test_full_precision_is_bits),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_stats_accumulate),
        cmocka_unit_test(test_stats_values_match_definition),
        cmocka_unit_test(test_repeats_cost_a_bit),
        cmocka_unit_test(test_reads_blocks_without_zero_bitmap),
        cmocka_unit_test(test_const_and_missing),
        cmocka_unit_test(test_bad_counts_and_garbage),
        cmocka_unit_test(test_extend_equals_encode),
        cmocka_unit_test(test_concat_equals_encode),
        cmocka_unit_test(test_concat_bad_input),
        cmocka_unit_test(test_extend_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
