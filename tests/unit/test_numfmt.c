#include <float.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include "util/numfmt.h"

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * 0x1p-53;
}

/* Compares numfmt_fixed with glibc for one value; reports the first mismatch. */
static void check_fixed(double v, int d)
{
    char want[512];
    char got[NUMFMT_FIXED_MAX + 1];
    int wn = snprintf(want, sizeof want, "%.*f", d, v);
    memset(got, '#', sizeof got);
    size_t gn = numfmt_fixed(got, v, d);
    assert_true(gn <= NUMFMT_FIXED_MAX);
    got[gn] = '\0';
    if ((size_t)wn != gn || memcmp(want, got, gn) != 0)
        fail_msg("%%.%df of %a (%.17g): want \"%s\", got \"%s\"", d, v, v, want, got);
}

static void check_fixed_all_decimals(double v)
{
    for (int d = 0; d <= 6; d++) {
        check_fixed(v, d);
        check_fixed(-v, d);
    }
}

static void test_fixed_known(void **state)
{
    (void)state;
    char buf[NUMFMT_FIXED_MAX];
    size_t n;
    n = numfmt_fixed(buf, 35.0, 3);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "35.000", 6);
    n = numfmt_fixed(buf, -0.0, 3);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "-0.000", 6);
    n = numfmt_fixed(buf, 0.0005, 3); /* 0.0005 is slightly above the tie in binary */
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "0.001", 5);
    n = numfmt_fixed(buf, 2.5, 0); /* exact tie, to even */
    assert_int_equal(n, 1);
    assert_memory_equal(buf, "2", 1);
    n = numfmt_fixed(buf, 0.125, 2); /* exact tie, to even */
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "0.12", 4);
    n = numfmt_fixed(buf, 2.0 / 3.0, 2);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "0.67", 4);
    n = numfmt_fixed(buf, -0.0001, 3);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "-0.000", 6);
    n = numfmt_fixed(buf, 9.9996, 3);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "10.000", 6);
}

static void test_fixed_special_values(void **state)
{
    (void)state;
    static const double specials[] = {
        0.0, 0.5, 1.5, 2.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125,
        0.0005, 0.00005, 0.000005, 0.0000005, 2.5e-3, 2.5e-4, 1.0005, 1.00005,
        0.0015, 0.0025, 0.0035, 0.0045, 1.45, 2.675, 1.005, 1e15 + 0.5, 1e15 + 0.25,
        4503599627370495.5, 4503599627370496.0, 4503599627370497.0, 9007199254740991.0,
        9007199254740992.0, 9007199254740993.0, 1e16, 1e17 + 8, 1e18, 1e19,
        9223372036854775807.0, 9223372036854775808.0, 18446744073709549568.0,
        18446744073709551616.0, 18446744073709555712.0, 1e20, 1e22, 1e23, 1e100,
        1e300, DBL_MAX, DBL_MIN, DBL_TRUE_MIN, 4.9e-324, 1e-310, DBL_EPSILON,
        0.1, 0.2, 0.3, 0.7, 123.4565, 123.4575, 999999.9999995, 0.9999995, 0.99999949,
        0.49999999999999994, 0.5000000000000001, 1.4999999999999998, 999.9995,
        3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45,
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        check_fixed_all_decimals(specials[i]);
        check_fixed_all_decimals(nextafter(specials[i], 0));
        check_fixed_all_decimals(nextafter(specials[i], INFINITY));
    }
}

/* Every exact binary tie k/2^j for small j at every scale rounds to even. */
static void test_fixed_exact_ties(void **state)
{
    (void)state;
    for (int d = 0; d <= 6; d++) {
        double p = pow(10, d);
        for (int k = 0; k < 20000; k++) {
            double base = (double)(rng_next() % 100000000000ULL) / p;
            /* (m + 0.5) / 10^d is a tie only when exactly representable;
             * both the representable and the near-miss cases are useful. */
            double v = ((double)(rng_next() % 10000000ULL) + 0.5) / p;
            check_fixed(v, d);
            check_fixed(-v, d);
            check_fixed(base, d);
            double frac = (double)(rng_next() % 64) / 64.0; /* exact binary fractions */
            double ip = (double)(rng_next() % (1ULL << 40));
            check_fixed(ip + frac, d);
            check_fixed(-(ip + frac), d);
        }
    }
}

/* Random doubles from 1e-12 to 1e25, uniform in the exponent. */
static void test_fixed_random_magnitudes(void **state)
{
    (void)state;
    for (int i = 0; i < 1500000; i++) {
        double e = -12 + 37 * rng_unit();
        double v = pow(10, e);
        if (rng_next() & 1)
            v = -v;
        check_fixed(v, (int)(rng_next() % 7));
    }
}

/* Random bit patterns cover every exponent, including subnormals and huge values. */
static void test_fixed_random_bits(void **state)
{
    (void)state;
    for (int i = 0; i < 500000; i++) {
        uint64_t bits = rng_next();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        check_fixed(v, (int)(rng_next() % 7));
    }
}

/* Values as metrics really look: float32 samples, averages of them, and
 * numbers with few decimals that sit right on or next to a rounding tie. */
static void test_fixed_metric_like(void **state)
{
    (void)state;
    for (int i = 0; i < 500000; i++) {
        float f = (float)(rng_unit() * pow(10, (int)(rng_next() % 10) - 2));
        check_fixed((double)f, 3);
        check_fixed((double)f, 2);
        double dec = (double)(rng_next() % 10000000) / 10000.0; /* like 123.4565 */
        check_fixed(dec, 3);
        check_fixed(dec, 2);
    }
}

/* Float32 values, which every stored sample is: random bit patterns of
 * every exponent below 2^31, including subnormals; ties of the form
 * (m + 1/2) / 2^j that floats hold exactly; and the largest floats below
 * 2^31. */
static void test_fixed_float32_values(void **state)
{
    (void)state;
    for (int i = 0; i < 1000000; i++) {
        uint32_t bits = (uint32_t)rng_next();
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f) || fabsf(f) >= 0x1p31f)
            continue;
        check_fixed((double)f, (int)(rng_next() % 7));
    }
    for (int j = 1; j <= 20; j++) {
        for (int k = 0; k < 2000; k++) {
            float f = (float)(((double)(rng_next() % 100000) + 0.5) / (double)(1u << j));
            for (int d = 0; d <= 6; d++) {
                check_fixed((double)f, d);
                check_fixed(-(double)f, d);
            }
        }
    }
    float top = 0x1p31f;
    for (int k = 0; k < 64; k++) {
        top = nextafterf(top, 0.0f);
        check_fixed_all_decimals((double)top);
    }
    check_fixed_all_decimals((double)FLT_TRUE_MIN);
    check_fixed_all_decimals((double)FLT_MIN);
}

static void test_int(void **state)
{
    (void)state;
    static const int64_t vals[] = {0, 1, -1, 9, 10, 99, 100, -100, 1700000000, INT64_MAX,
                                   INT64_MIN, INT64_MIN + 1, 1000000000000000000LL};
    char got[32], want[32];
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        size_t n = numfmt_int(got, vals[i]);
        got[n] = '\0';
        snprintf(want, sizeof want, "%lld", (long long)vals[i]);
        assert_str_eq(got, want);
    }
    for (int i = 0; i < 200000; i++) {
        int64_t v = (int64_t)rng_next() >> (rng_next() % 64);
        size_t n = numfmt_int(got, v);
        assert_true(n <= 20);
        got[n] = '\0';
        snprintf(want, sizeof want, "%lld", (long long)v);
        assert_str_eq(got, want);
    }
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9')
            s++;
    } else {
        return false;
    }
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int significant_digits(const char *s)
{
    int n = 0;
    bool leading = true;
    for (; *s != '\0' && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (leading && *s == '0')
            continue;
        leading = false;
        n++;
    }
    return n;
}

static void check_shortest(float v)
{
    char out[33];
    memset(out, '#', sizeof out);
    size_t n = numfmt_float32_shortest(out, v);
    assert_true(n > 0 && n < 32);
    out[n] = '\0';
    if (!is_json_number(out))
        fail_msg("%a: \"%s\" is not a JSON number", (double)v, out);
    float back = strtof(out, NULL);
    if (back != v || signbit(back) != signbit(v))
        fail_msg("%a: \"%s\" reads back as %a", (double)v, out, (double)back);
    /* Not longer than needed: one digit less must not round-trip. Plain
     * integers are exempt (they are written in full on purpose). */
    if (v != truncf(v) || fabsf(v) >= 16777216.0f) {
        int digits = significant_digits(out);
        if (digits > 1) {
            char shorter[320];
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, (double)v);
            if (strtof(shorter, NULL) == v)
                fail_msg("%a: \"%s\" but \"%s\" also round-trips", (double)v, out, shorter);
        }
    }
}

static void test_float32_known(void **state)
{
    (void)state;
    static const struct {
        float v;
        const char *want;
    } cases[] = {
        {35.0f, "35"}, {0.1f, "0.1"}, {1e20f, "1e+20"}, {-0.0f, "-0"}, {0.0f, "0"},
        {100.0f, "100"}, {0.3f, "0.3"}, {-2.5f, "-2.5"}, {16777216.0f, "16777216"},
        {45.25f, "45.25"}, {3.4028235e38f, "3.4028235e+38"}, {1e-45f, "1e-45"},
        {1234.5678f, "1234.5677"}, {0.5f, "0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        size_t n = numfmt_float32_shortest(out, cases[i].v);
        out[n] = '\0';
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%a: want \"%s\", got \"%s\"", (double)cases[i].v, cases[i].want, out);
        check_shortest(cases[i].v);
    }
}

static void test_float32_random(void **state)
{
    (void)state;
    for (int i = 0; i < 1000000; i++) {
        uint32_t bits = (uint32_t)rng_next();
        float v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        check_shortest(v);
    }
    for (int i = 0; i < 300000; i++) {
        float v = (float)((double)(int64_t)(rng_next() % 2000001) / 1000.0 - 1000.0);
        check_shortest(v);
        check_shortest(nextafterf(v, INFINITY));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_known),
        cmocka_unit_test(test_fixed_special_values),
        cmocka_unit_test(test_fixed_exact_ties),
        cmocka_unit_test(test_fixed_random_magnitudes),
        cmocka_unit_test(test_fixed_random_bits),
        cmocka_unit_test(test_fixed_metric_like),
        cmocka_unit_test(test_fixed_float32_values),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_float32_known),
        cmocka_unit_test(test_float32_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
