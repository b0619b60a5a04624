/*
 * resample — see resample.h. The arithmetic mirrors upstream step by step
 * (float64, same operation order) so outputs are bit-identical.
 */
#include "store/resample.h"

#include <math.h>
#include <string.h>

int resample_algo_parse(const char *text, size_t len, enum resample_algo *out)
{
    static const struct { const char *name; enum resample_algo algo; } names[] = {
        {"", RESAMPLE_LTTB}, {"lttb", RESAMPLE_LTTB},
        {"average", RESAMPLE_AVERAGE}, {"simple", RESAMPLE_SIMPLE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, text, len) == 0) {
            *out = names[i].algo;
            return 0;
        }
    }
    return RESAMPLE_EUNKNOWN_ALGO;
}

int resample_plan(size_t n, int64_t f, int64_t r, size_t *points, int64_t *resolution)
{
    *points = n;
    *resolution = f;
    if (f <= 0 || r <= 0 || r <= f)
        return 0;
    if (r % f != 0)
        return RESAMPLE_ENOT_MULTIPLE;
    size_t step = (size_t)(r / f);
    size_t m = n / step;
    if (m == 0 || n < RESAMPLE_MIN_POINTS || m >= n)
        return 0;
    *points = m;
    *resolution = r;
    return 0;
}

/* Mean index and mean value of in[lo..hi] (inclusive); NaN for an empty range. */
static void bucket_average(const double *in, size_t lo, size_t hi, double *avg_x, double *avg_y)
{
    if (hi < lo) {
        *avg_x = NAN;
        *avg_y = NAN;
        return;
    }
    double sum_x = 0, sum_y = 0;
    for (size_t i = lo; i <= hi; i++) {
        sum_x += (double)i;
        sum_y += in[i];
    }
    double count = (double)(hi - lo + 1);
    *avg_x = sum_x / count;
    *avg_y = sum_y / count;
}

void resample_lttb(const double *in, size_t n, size_t m, double *out)
{
    size_t k = 0;
    out[k++] = in[0];
    if (m > 2) {
        double bucket = (double)(n - 2) / (double)(m - 2);
        size_t a = 0;
        size_t low = 1;
        size_t mid = (size_t)floor(bucket) + 1;
        for (size_t i = 0; i + 2 < m; i++) {
            size_t high = (size_t)floor((double)(i + 2) * bucket) + 1;
            if (high >= n - 1)
                high = n - 2;
            double avg_x, avg_y;
            bucket_average(in, mid, high, &avg_x, &avg_y);
            size_t best = 0;
            double max_area = -1.0;
            for (size_t j = low; j < mid; j++) {
                double area = fabs((((double)a - (double)j) * (avg_y - in[a]) -
                                    ((double)a - avg_x) * (in[j] - in[a])) * 0.5);
                if (area > max_area || isnan(area)) {
                    max_area = area;
                    best = j;
                }
            }
            out[k++] = in[best];
            a = best;
            low = mid;
            mid = high;
        }
    }
    out[k] = in[n - 1];
}

void resample_average(const double *in, size_t step, size_t m, double *out)
{
    for (size_t i = 0; i < m; i++) {
        double sum = 0;
        size_t count = 0;
        for (size_t j = i * step; j < (i + 1) * step; j++) {
            if (!isnan(in[j])) {
                sum += in[j];
                count++;
            }
        }
        out[i] = count ? sum / (double)count : NAN;
    }
}

void resample_simple(const double *in, size_t step, size_t m, double *out)
{
    for (size_t i = 0; i < m; i++)
        out[i] = in[i * step];
}

size_t resample_apply(enum resample_algo algo, const double *in, size_t n, size_t step, size_t m,
                      double *out)
{
    switch (algo) {
    case RESAMPLE_AVERAGE:
        resample_average(in, step, m, out);
        return m;
    case RESAMPLE_SIMPLE:
        resample_simple(in, step, m, out);
        return m;
    default:
        resample_lttb(in, n, m, out);
        return RESAMPLE_OUT_MAX(m);
    }
}
