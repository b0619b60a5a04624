/*
 * codec — lossless compression of one block of float32 samples.
 *
 * A block is up to CODEC_MAX_VALUES values in slot order, NaN marking a
 * missing sample. Decoding gives back every value bit for bit, except that
 * every missing sample reads as the canonical NaN (its payload is not
 * kept: NaN only ever means "no sample" in the store).
 *
 * The encoder measures each block and keeps the smallest of:
 *  - CONST: every value has the same bits (also: every slot missing);
 *  - DECIMAL: every present value is an integer count of 10^-k (k = 0..8)
 *    that converts back to the same float; the integers are delta coded,
 *    zigzag mapped and bit-packed with a frame of reference (the smallest
 *    delta is stored once, each delta takes the width of the spread),
 *    missing samples are a bitmap, and where that is smaller a bitmap of
 *    the steps that move lets a repeated value cost one bit;
 *  - BITS: the DECIMAL layout over the float bits themselves, taken as
 *    integers that order like the floats: values no k describes (full
 *    float precision, noise) still share their sign and most exponent
 *    bits, and often move by small steps; tried when DECIMAL fails or
 *    needs more than two bytes a value;
 *  - RAW: the float bits as they are (when nothing else is smaller).
 * Gauges from node collectors (loads with 2 decimals, clocks with 1, ratios
 * with 3) move by small steps, so their deltas need a few bits each.
 *
 * The encoded bytes are self-describing (the first byte names the
 * encoding); the value count is the caller's (it keeps it anyway). Every
 * function is pure: no allocation, no global state.
 */
#ifndef CCMS_CODEC_H
#define CCMS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_MAX_VALUES 4096

enum codec_kind {
    CODEC_RAW = 0,
    CODEC_CONST = 1,
    CODEC_DECIMAL = 2,
    CODEC_BITS = 3,
};

enum codec_error {
    CODEC_ECORRUPT = -1101,   /* the bytes are not a block of n values */
    CODEC_ESPACE = -1102,     /* the output does not fit */
    CODEC_ECOUNT = -1103,     /* n is 0 or above CODEC_MAX_VALUES */
};

/* Upper bound of codec_encode's output for n values. */
size_t codec_bound(uint32_t n);

/* Encodes values[0..n) into out (cap bytes; codec_bound(n) always
 * suffices). Returns the encoded length (> 0) or a negative codec_error. */
int codec_encode(const float *values, uint32_t n, uint8_t *out, size_t cap);

/* Decodes a block of exactly n values from in[0..len). Returns 0 or
 * CODEC_ECORRUPT / CODEC_ECOUNT (out is then unspecified). */
int codec_decode(const uint8_t *in, size_t len, uint32_t n, float *out);

/* Encodes the block of n_old + n_more values whose first n_old are the
 * encoded block in[0..len) and whose others are more[0..n_more): for a
 * block codec_encode wrote, the same bytes codec_encode gives for all of
 * them. A store seals a filling part a quarter at a time, each time
 * together with the quarters before it; for a DECIMAL block whose new
 * values have its decimals (nearly always), the block's integers are
 * extended as they are, not decoded to floats and converted back. Returns
 * the encoded length (> 0) or a negative codec_error (CODEC_ECORRUPT: in
 * is not a block of n_old values). */
int codec_extend(const uint8_t *in, size_t len, uint32_t n_old, const float *more,
                 uint32_t n_more, uint8_t *out, size_t cap);

/* Encodes the block of the values of `count` encoded blocks in a row
 * (blocks[i], lens[i] bytes, ns[i] values): the same bytes codec_encode
 * gives for all of them. A store merges the parts of a full buffer into
 * one this way; DECIMAL blocks of one k (nearly always) are joined from
 * their integers, not decoded to floats and converted back. Returns the
 * encoded length (> 0) or a negative codec_error (CODEC_ECORRUPT: a block
 * is not one of its ns[i] values). */
int codec_concat(const uint8_t *const *blocks, const size_t *lens, const uint32_t *ns,
                 uint32_t count, uint8_t *out, size_t cap);

/* Statistics of present values: how many, their sum (each value as a
 * double, added in slot order), the smallest and the largest (-0 counts as
 * below +0). min and max mean nothing while count is 0. Start from
 * CODEC_STATS_EMPTY; the functions below add to it. */
struct codec_stats {
    uint64_t count;
    double sum;
    float min, max;
};
#define CODEC_STATS_EMPTY ((struct codec_stats){ 0, 0.0, 0.0f, 0.0f })

/* Adds the present values of values[0..n) to *acc. */
void codec_stats_values(const float *values, uint32_t n, struct codec_stats *acc);

/* Adds the present values of an encoded block of n values to *acc without
 * decoding it (DECIMAL and BITS blocks carry their statistics; the sum then differs
 * from adding the values one by one only by the rounding of the additions).
 * Such a block's header is checked, and its length as far as the header
 * tells it; its packed values are not read (codec_count checks a block
 * whole). Returns 0 or CODEC_ECORRUPT / CODEC_ECOUNT (*acc unchanged). */
int codec_stats(const uint8_t *in, size_t len, uint32_t n, struct codec_stats *acc);

/* The DECIMAL integer form of one value, shared with the write-ahead log:
 * r stands for r * 10^-k (k = 0 .. CODEC_MAX_DECIMALS, |r| < 2^40).
 * codec_decimal_of finds r such that codec_decimal_value(r, k) has exactly
 * x's bits, or returns false. */
#define CODEC_MAX_DECIMALS 8
bool codec_decimal_of(float x, int k, int64_t *r);
float codec_decimal_value(int64_t r, int k);

/* Checks that in[0..len) is a block of n values as far as loading one
 * needs (every length and header field; not the values) and counts its
 * present values into *present, without decoding it. Returns 0 or
 * CODEC_ECORRUPT / CODEC_ECOUNT. */
int codec_count(const uint8_t *in, size_t len, uint32_t n, uint32_t *present);

/* The encoding of an encoded block (its first byte), or -1 when empty. */
int codec_kind_of(const uint8_t *in, size_t len);
const char *codec_kind_name(int kind);

const char *codec_strerror(int code);

#endif
