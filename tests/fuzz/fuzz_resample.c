/*
 * libFuzzer target for store/resample.c. The input gives the native and
 * requested frequency, the algorithm and the series (float32 bit patterns,
 * NaN included). Checks the plan's promises and every algorithm's output:
 * m points for the plan's step, average/simple values taken from or
 * bounded by their bucket, LTTB keeping the first and last point.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/resample.h"

static uint32_t take_u32(const uint8_t **p, size_t *n)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v = v << 8 | (*n ? **p : 0);
        if (*n) {
            (*p)++;
            (*n)--;
        }
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t f = (int64_t)(take_u32(&data, &size) % 600) - 10;
    int64_t r = (int64_t)(take_u32(&data, &size) % 100000) - 100;
    enum resample_algo algo = (enum resample_algo)(take_u32(&data, &size) % 3);
    /* short inputs are stretched so that the 1,000-point gate is passed */
    size_t values = size / 4;
    size_t n = values < 1000 && values > 0 ? 1000 + values : values;
    double *in = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, data + 4 * (i % values), 4);
        float v;
        memcpy(&v, &bits, 4);
        in[i] = v;
    }
    size_t m;
    int64_t res;
    int rc = resample_plan(n, f, r, &m, &res);
    if (rc == RESAMPLE_ENOT_MULTIPLE) {
        if (!(f > 0 && r > f && r % f != 0))
            abort();
    } else if (rc != 0) {
        abort();
    } else if (m != n) {
        size_t step = (size_t)(res / f);
        if (f <= 0 || res != r || step < 2 || m != n / step || m == 0 || m >= n)
            abort();
        double *out = malloc(RESAMPLE_OUT_MAX(m) * sizeof(double));
        size_t written = resample_apply(algo, in, n, step, m, out);
        if (written != (algo == RESAMPLE_LTTB ? RESAMPLE_OUT_MAX(m) : m))
            abort();
        for (size_t i = 0; i < m; i++) {
            const double *bucket = in + i * step;
            if (algo == RESAMPLE_SIMPLE && memcmp(&out[i], &bucket[0], sizeof(double)) != 0)
                abort();
            if (algo == RESAMPLE_AVERAGE && !isnan(out[i])) {
                double lo = INFINITY, hi = -INFINITY;
                for (size_t j = 0; j < step; j++) {
                    if (!isnan(bucket[j])) {
                        lo = bucket[j] < lo ? bucket[j] : lo;
                        hi = bucket[j] > hi ? bucket[j] : hi;
                    }
                }
                /* a mean of finite values lies within them (infinities may
                 * meet and give NaN, which is fine) */
                if (isfinite(lo) && isfinite(hi) && isfinite(out[i]) &&
                    (out[i] < lo - fabs(lo) * 1e-12 || out[i] > hi + fabs(hi) * 1e-12))
                    abort();
            }
        }
        if (algo == RESAMPLE_LTTB &&
            (memcmp(&out[0], &in[0], sizeof(double)) != 0 ||
             memcmp(&out[written - 1], &in[n - 1], sizeof(double)) != 0))
            abort();
        free(out);
    } else if (res != (f > 0 ? f : res)) {
        abort();
    }
    free(in);
    return 0;
}
