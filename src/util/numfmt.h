/*
 * numfmt — fast, exact number formatting for JSON responses.
 *
 * numfmt_fixed() produces exactly the bytes glibc's printf("%.*f", d, v)
 * produces (correct rounding of the exact binary value, ties-to-even,
 * "-0.000" for negative zero) but much faster for the common case; it falls
 * back to snprintf where the fast path cannot prove its result.
 */
#ifndef CCMS_NUMFMT_H
#define CCMS_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Longest output of numfmt_fixed for finite doubles with decimals <= 6 is
 * 309 integer digits + sign + point + 6 digits. */
#define NUMFMT_FIXED_MAX 330

/* Writes v with `decimals` (0..6) digits after the point into out (at least
 * NUMFMT_FIXED_MAX bytes) without a terminator; returns the length.
 * v must be finite. */
size_t numfmt_fixed(char *out, double v, int decimals);

/* Decimal int64; out needs 21 bytes. Returns the length, no terminator. */
size_t numfmt_int(char *out, int64_t v);

/* Shortest text (e.g. "0.1", "35", "1e+20" style acceptable to JSON) that
 * strtof() reads back as exactly v. v must be finite. out needs 32 bytes. */
size_t numfmt_float32_shortest(char *out, float v);

#endif
