/*
 * codec_bench — size and speed of the block codec (src/store/codec.c) on
 * the benchmark's value profiles.
 *
 *   bench/codec_bench [--blocks N]
 *
 * For every metric profile of workload.h (random walks, per-metric range
 * and decimals) and for float32 noise, encodes N blocks of 128 values (the
 * part size the store seals) and decodes them again, checking every value
 * bit for bit. Prints bytes per value, encode and decode nanoseconds per
 * value, and the cost of sealing each part a quarter at a time as the
 * store does while a buffer fills, by codec_extend and by decoding and
 * encoding again (both checked against encoding the part at once), and
 * the size of a full buffer's four parts merged into one (codec_concat,
 * checked against encoding the 512 values at once) with the cost of that
 * merge: median of 5 timed passes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/store/codec.h"
#include "workload.h"

#define PART 128
#define QUARTER (PART / 4)

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fills n values of one series: a walk of the profile, or noise. */
static void series(uint64_t seed, const struct wl_profile *p, size_t n, float *out)
{
    int32_t *units = malloc(n * sizeof *units);
    double scale = 1.0;
    int decimals = p ? p->decimals : WL_NOISE_DECIMALS;
    if (p)
        wl_walk(seed, p->decimals, p->lo, p->hi, n, units, 1);
    else
        wl_noise(seed, n, units, 1);
    for (int d = 0; d < decimals; d++)
        scale *= 10.0;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)units[i] / scale);   /* what the parser stores */
    free(units);
}

static void run(const char *name, const struct wl_profile *p, size_t blocks)
{
    size_t n = blocks * PART;
    float *values = malloc(n * sizeof *values), *back = malloc(n * sizeof *back);
    uint8_t *enc = malloc(blocks * codec_bound(PART));
    size_t *len = malloc(blocks * sizeof *len);
    /* 64 series of blocks/64 parts each, so walks are long as in the store */
    size_t per = n / 64;
    for (size_t s = 0; s < 64; s++)
        series(s + 1, p, per, values + s * per);
    double enc_ns[5], dec_ns[5];
    size_t total = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now_ns();
        total = 0;
        for (size_t b = 0; b < blocks; b++) {
            int l = codec_encode(values + b * PART, PART, enc + b * codec_bound(PART),
                                 codec_bound(PART));
            if (l <= 0)
                abort();
            len[b] = (size_t)l;
            total += (size_t)l;
        }
        double t1 = now_ns();
        for (size_t b = 0; b < blocks; b++)
            if (codec_decode(enc + b * codec_bound(PART), len[b], PART, back + b * PART) != 0)
                abort();
        double t2 = now_ns();
        enc_ns[pass] = (t1 - t0) / (double)n;
        dec_ns[pass] = (t2 - t1) / (double)n;
    }
    for (size_t i = 0; i < n; i++)
        if (memcmp(&values[i], &back[i], 4) != 0 && !(isnan(values[i]) && isnan(back[i])))
            abort();
    /* Sealing a part as the store does while it fills: the first quarter
     * alone, then each quarter together with the ones before, either by
     * codec_extend or by decoding the part and encoding it all again. Both
     * must end at the bytes of encoding the part at once. */
    double ext_ns[5], redo_ns[5];
    for (int pass = 0; pass < 5; pass++) {
        for (int way = 0; way < 2; way++) {
            double t0 = now_ns();
            for (size_t b = 0; b < blocks; b++) {
                const float *v = values + b * PART;
                uint8_t part[2][1 + 4 * PART];
                float merged[PART];
                int l = codec_encode(v, QUARTER, part[0], sizeof part[0]);
                for (int q = 1; q < 4 && l > 0; q++) {
                    uint32_t have = (uint32_t)q * QUARTER;
                    if (way == 0) {
                        l = codec_extend(part[(q - 1) & 1], (size_t)l, have, v + have, QUARTER,
                                         part[q & 1], sizeof part[0]);
                    } else {
                        if (codec_decode(part[(q - 1) & 1], (size_t)l, have, merged) != 0)
                            abort();
                        memcpy(merged + have, v + have, QUARTER * sizeof(float));
                        l = codec_encode(merged, have + QUARTER, part[q & 1], sizeof part[0]);
                    }
                }
                if ((size_t)l != len[b] || memcmp(part[1], enc + b * codec_bound(PART), len[b]) != 0)
                    abort();
            }
            (way == 0 ? ext_ns : redo_ns)[pass] = (now_ns() - t0) / (double)n;
        }
    }
    /* A full buffer's four parts merged into one (what the store keeps of
     * a full buffer), checked against encoding its values at once. */
    double merge_ns[5];
    size_t whole_total = 0;
    uint8_t *whole = malloc(codec_bound(4 * PART)), *want = malloc(codec_bound(4 * PART));
    for (int pass = 0; pass < 5; pass++) {
        whole_total = 0;
        double t0 = now_ns();
        for (size_t b = 0; b + 4 <= blocks; b += 4) {
            const uint8_t *parts[4];
            size_t lens[4];
            uint32_t ns[4] = { PART, PART, PART, PART };
            for (int i = 0; i < 4; i++) {
                parts[i] = enc + (b + (size_t)i) * codec_bound(PART);
                lens[i] = len[b + (size_t)i];
            }
            int l = codec_concat(parts, lens, ns, 4, whole, codec_bound(4 * PART));
            if (l <= 0)
                abort();
            whole_total += (size_t)l;
            if (pass == 0) {
                int w = codec_encode(values + b * PART, 4 * PART, want, codec_bound(4 * PART));
                if (w != l || memcmp(whole, want, (size_t)l) != 0)
                    abort();
            }
        }
        merge_ns[pass] = (now_ns() - t0) / (double)n;
    }
    free(whole);
    free(want);
    qsort(merge_ns, 5, sizeof(double), cmp_double);
    qsort(enc_ns, 5, sizeof(double), cmp_double);
    qsort(dec_ns, 5, sizeof(double), cmp_double);
    qsort(ext_ns, 5, sizeof(double), cmp_double);
    qsort(redo_ns, 5, sizeof(double), cmp_double);
    printf("%-18s %6.3f bytes/value (whole buffers %6.3f)  encode %5.1f  decode %5.2f"
           "  seal by quarters %5.1f (decode and encode again: %5.1f)  merge %4.1f ns/value\n",
           name, (double)total / (double)n, (double)whole_total / (double)(blocks / 4 * 4 * PART),
           enc_ns[2], dec_ns[2], ext_ns[2], redo_ns[2], merge_ns[2]);
    free(values);
    free(back);
    free(enc);
    free(len);
}

int main(int argc, char **argv)
{
    size_t blocks = 20000;
    if (argc == 3 && strcmp(argv[1], "--blocks") == 0)
        blocks = (size_t)strtoul(argv[2], NULL, 10) / 64 * 64;
    if (blocks < 64)
        blocks = 64;
    for (size_t i = 0; i < WL_NODE_METRICS; i++)
        run(wl_node_metrics[i], &wl_node_profiles[i], blocks);
    for (size_t i = 0; i < WL_HWTHREAD_METRICS; i++)
        run(wl_hwthread_metrics[i], &wl_hwthread_profiles[i], blocks);
    for (size_t i = 0; i < WL_SOCKET_METRICS; i++)
        run(wl_socket_metrics[i], &wl_socket_profiles[i], blocks);
    run("noise (float32)", NULL, blocks);
    return 0;
}
