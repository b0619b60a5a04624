/*
 * libFuzzer target for store/codec.c. The first byte picks the mode:
 *  - even: the rest is an encoded block of n values (n from the next two
 *    bytes): decoding and reading its statistics must not crash or read
 *    outside the input; a block that decodes must re-encode into one that
 *    decodes to the same values, and extending it (codec_extend) or
 *    joining it with itself (codec_concat) gives a block of its values
 *    followed by the new ones, or CODEC_ECORRUPT;
 *  - odd: the rest is float32 values: encode, decode, compare bit for bit
 *    (missing stays missing), and the block's statistics are those of
 *    the values; encoding the values up to a point (from the first byte)
 *    and extending that block by the rest, or joining the blocks of both
 *    sides, gives the bytes of encoding them all.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/codec.h"

static float values[CODEC_MAX_VALUES], again[CODEC_MAX_VALUES];
static uint8_t encoded[1 + 4 * CODEC_MAX_VALUES], extended[1 + 4 * CODEC_MAX_VALUES];

static void same_or_abort(const float *a, const float *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i]))
            abort();
        if (!isnan(a[i]) && memcmp(&a[i], &b[i], 4) != 0)
            abort();
    }
}

static void round_trip(const float *v, uint32_t n)
{
    int len = codec_encode(v, n, encoded, sizeof encoded);
    if (len <= 0 || (size_t)len > codec_bound(n))
        abort();
    if (codec_decode(encoded, (size_t)len, n, again) != 0)
        abort();
    same_or_abort(v, again, n);
    struct codec_stats want = CODEC_STATS_EMPTY, got = CODEC_STATS_EMPTY;
    codec_stats_values(v, n, &want);
    if (codec_stats(encoded, (size_t)len, n, &got) != 0 || got.count != want.count)
        abort();
    if (want.count > 0 && (memcmp(&got.min, &want.min, 4) != 0 ||
                           memcmp(&got.max, &want.max, 4) != 0 ||
                           memcmp(&got.sum, &want.sum, 8) != 0))
        abort();
}

/* v[0..split) encoded, then extended by the rest: the bytes of v encoded
 * at once. */
static void extend_like_encode(const float *v, uint32_t split, uint32_t n)
{
    static uint8_t head[1 + 4 * CODEC_MAX_VALUES];
    int head_len = codec_encode(v, split, head, sizeof head);
    int want = codec_encode(v, n, encoded, sizeof encoded);
    int got = codec_extend(head, (size_t)head_len, split, v + split, n - split, extended,
                           sizeof extended);
    if (head_len <= 0 || want <= 0 || got != want || memcmp(encoded, extended, (size_t)want) != 0)
        abort();
    static uint8_t tail[1 + 4 * CODEC_MAX_VALUES];
    int tail_len = codec_encode(v + split, n - split, tail, sizeof tail);
    const uint8_t *blocks[2] = { head, tail };
    size_t lens[2] = { (size_t)head_len, (size_t)tail_len };
    uint32_t ns[2] = { split, n - split };
    got = codec_concat(blocks, lens, ns, 2, extended, sizeof extended);
    if (tail_len <= 0 || got != want || memcmp(encoded, extended, (size_t)want) != 0)
        abort();
}

/* Extends a block that decoded (its n values in values[]) by its own
 * first values: a block of both, or CODEC_ECORRUPT (the header does not
 * hold for what the deltas add up to). */
static void extend_decoded(const uint8_t *block, size_t len, uint32_t n)
{
    uint32_t more = n < CODEC_MAX_VALUES - n ? n : CODEC_MAX_VALUES - n;
    if (more == 0)
        return;
    static float both[CODEC_MAX_VALUES];
    memcpy(both, values, (size_t)n * sizeof(float));
    memcpy(both + n, values, (size_t)more * sizeof(float));
    int rc = codec_extend(block, len, n, values, more, extended, sizeof extended);
    if (rc == CODEC_ECORRUPT)
        return;
    if (rc <= 0 || codec_decode(extended, (size_t)rc, n + more, again) != 0)
        abort();
    same_or_abort(both, again, n + more);
    /* the block joined with the start of itself */
    const uint8_t *blocks[2] = { block, block };
    size_t lens[2] = { len, len };
    uint32_t ns[2] = { n, n };
    if (more == n) {
        rc = codec_concat(blocks, lens, ns, 2, extended, sizeof extended);
        if (rc == CODEC_ECORRUPT)
            return;
        if (rc <= 0 || codec_decode(extended, (size_t)rc, 2 * n, again) != 0)
            abort();
        same_or_abort(both, again, 2 * n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if ((data[0] & 1) == 0) {
        uint32_t n = 1 + (uint32_t)((data[1] | data[2] << 8) % CODEC_MAX_VALUES);
        /* a copy of exactly the block's bytes, so ASan sees any overread */
        size_t len = size - 3;
        uint8_t *block = malloc(len ? len : 1);
        if (!block)
            return 0;
        memcpy(block, data + 3, len);
        struct codec_stats st = CODEC_STATS_EMPTY;
        int stats_rc = codec_stats(block, len, n, &st);
        /* statistics never report NaN extremes (NaN is no sample) */
        if (stats_rc == 0 && st.count > 0 && (isnan(st.min) || isnan(st.max)))
            abort();
        if (codec_decode(block, len, n, values) == 0) {
            /* a block that decodes has the statistics' count of samples */
            struct codec_stats seen = CODEC_STATS_EMPTY;
            codec_stats_values(values, n, &seen);
            if (stats_rc != 0 || st.count != seen.count)
                abort();
            extend_decoded(block, len, n);
            round_trip(values, n);
        }
        free(block);
        return 0;
    }
    uint32_t n = (uint32_t)((size - 1) / 4);
    if (n == 0)
        return 0;
    if (n > CODEC_MAX_VALUES)
        n = CODEC_MAX_VALUES;
    memcpy(values, data + 1, (size_t)n * 4);
    round_trip(values, n);
    if (n >= 2)
        extend_like_encode(values, 1 + (uint32_t)((data[0] >> 1) * (n - 1) / 128), n);
    return 0;
}
