/*
 * numfmt — see numfmt.h.
 *
 * numfmt_fixed, |v| < 2^64 (every realistic metric value): split v exactly
 * into integer part and fraction fp, then round the exact real fp * 10^d to
 * an integer. s = fl(fp * 10^d) is below 2^52, where every k + 0.5 is
 * representable; since s is the double nearest to the exact product, no
 * such half-way point can lie strictly between them, so rounding s rounds
 * the exact product the same way — unless s is itself a half-way point.
 * Then fma() yields the exact residual of the product and its sign decides;
 * a zero residual is a true tie, broken to even by the round-to-nearest-even
 * addition of 2^52 (10^d is even for d >= 1, so the parity of the fraction
 * digits is the parity of the whole scaled number). d == 0 is rint(v)
 * itself, which is exact. Larger magnitudes go to snprintf.
 */
#include "util/numfmt.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The exactness argument above needs plain binary64 arithmetic. */
#if FLT_EVAL_METHOD != 0
#error "numfmt needs FLT_EVAL_METHOD == 0 (SSE2 or similar, not x87)"
#endif

static const char numfmt_digit_pairs[201] =
    "00010203040506070809"
    "10111213141516171819"
    "20212223242526272829"
    "30313233343536373839"
    "40414243444546474849"
    "50515253545556575859"
    "60616263646566676869"
    "70717273747576777879"
    "80818283848586878889"
    "90919293949596979899";

static const double numfmt_pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
static const uint32_t numfmt_pow10_u32[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

/* Digits of v (1..20). */
static size_t numfmt_digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10000) {
        v /= 10000;
        n += 4;
    }
    return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

/* Writes v in decimal without leading zeros, straight to its place (two
 * digits at a time from the end); returns the length (1..20). */
static size_t numfmt_u64(char *out, uint64_t v)
{
    size_t n = numfmt_digits(v);
    char *p = out + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, numfmt_digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, numfmt_digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

/* Writes exactly `width` digits of v (v < 10^width), zero-padded, two at
 * a time from the end. */
static void numfmt_padded(char *out, uint32_t v, int width)
{
    int i = width;
    while (i >= 2) {
        i -= 2;
        memcpy(out + i, numfmt_digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (i == 1)
        out[0] = (char)('0' + v);
}

static size_t numfmt_fixed_slow(char *out, double v, int decimals)
{
    char tmp[NUMFMT_FIXED_MAX + 8];
    int n = snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
    if (n < 0)
        return 0;
    if ((size_t)n >= sizeof tmp)
        n = (int)sizeof tmp - 1;
    if ((size_t)n > NUMFMT_FIXED_MAX)
        n = NUMFMT_FIXED_MAX;
    memcpy(out, tmp, (size_t)n);
    return (size_t)n;
}

size_t numfmt_fixed(char *out, double v, int decimals)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 6)
        return numfmt_fixed_slow(out, v, decimals);

    double a = fabs(v);
    if (!(a < 18446744073709551616.0)) /* 2^64; also catches NaN */
        return numfmt_fixed_slow(out, v, decimals);

    size_t n = 0;
    if (signbit(v))
        out[n++] = '-';

    if (decimals == 0) {
        n += numfmt_u64(out + n, (uint64_t)rint(a));
        return n;
    }

    uint64_t ipart = (uint64_t)a; /* truncates */
    double fp = a - (double)ipart; /* exact: ipart is a double value itself */
    double p = numfmt_pow10[decimals];
    double s = fp * p;
    /* rint() for 0 <= s < 2^52 without a libm call (round-to-nearest mode) */
    double r = (s + 0x1p52) - 0x1p52;
    if (fabs(s - r) == 0.5) {
        double err = fma(fp, p, -s);
        if (err > 0)
            r = s + 0.5;
        else if (err < 0)
            r = s - 0.5;
    }
    uint32_t frac = (uint32_t)r;
    if (frac >= numfmt_pow10_u32[decimals]) {
        frac -= numfmt_pow10_u32[decimals];
        if (ipart == UINT64_MAX) /* the carry does not fit: let libc do it */
            return numfmt_fixed_slow(out, v, decimals);
        ipart++;
    }
    n += numfmt_u64(out + n, ipart);
    out[n++] = '.';
    numfmt_padded(out + n, frac, decimals);
    return n + (size_t)decimals;
}

size_t numfmt_int(char *out, int64_t v)
{
    if (v < 0) {
        out[0] = '-';
        /* negate in unsigned arithmetic so INT64_MIN works */
        return 1 + numfmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
    }
    return numfmt_u64(out, (uint64_t)v);
}

size_t numfmt_float32_shortest(char *out, float v)
{
    /* Integers of at most 24 bits are exact and read best as plain digits
     * ("100", not "1e+02"). */
    if (v == truncf(v) && fabsf(v) < 16777216.0f && !(v == 0 && signbit(v)))
        return numfmt_int(out, (int64_t)v);

    /* If P significant digits read back as v, so do P + 1 (the nearest
     * (P+1)-digit decimal is at least as close to v), so the shortest P can
     * be found by bisection; 9 digits always suffice for binary32. */
    char buf[32], try_buf[32];
    int n = -1;
    int lo = 1, hi = 9;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int m = snprintf(try_buf, sizeof try_buf, "%.*g", mid, (double)v);
        if (m > 0 && (size_t)m < sizeof try_buf && strtof(try_buf, NULL) == v) {
            hi = mid;
            memcpy(buf, try_buf, (size_t)m);
            n = m;
        } else {
            lo = mid + 1;
        }
    }
    if (n < 0)
        n = snprintf(buf, sizeof buf, "%.9g", (double)v);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    memcpy(out, buf, (size_t)n);
    return (size_t)n;
}
