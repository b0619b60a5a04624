/*
 * resample — downsampling of a query's series to a coarser resolution, as
 * cc-backend's resampler library does it (docs/http-api.md, "Resampling"):
 * one rule that decides whether a series is resampled at all, and three
 * algorithms chosen by the request's "resample-algo":
 *  - lttb ("" or "lttb"): Largest Triangle Three Buckets;
 *  - average: the mean of each bucket of r/f samples, NaN skipped, NaN for
 *    a bucket without samples;
 *  - simple: the first sample of each bucket.
 * Pure functions on caller-owned arrays.
 */
#ifndef CCMS_RESAMPLE_H
#define CCMS_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Below this many points a series is never resampled (upstream default). */
#define RESAMPLE_MIN_POINTS 1000

enum resample_error {
    RESAMPLE_ENOT_MULTIPLE = -3001,
    RESAMPLE_EUNKNOWN_ALGO = -3002,
};

enum resample_algo { RESAMPLE_LTTB = 0, RESAMPLE_AVERAGE, RESAMPLE_SIMPLE };

/* The algorithm named by text[0..len): "", "lttb", "average", "simple".
 * Returns 0 or RESAMPLE_EUNKNOWN_ALGO. */
int resample_algo_parse(const char *text, size_t len, enum resample_algo *out);

/*
 * Decides how a series of n points at native frequency f is returned for a
 * requested resolution r. Sets *points to the number of output points (n
 * when unchanged) and *resolution to the resolution of the output.
 * Returns 0, or RESAMPLE_ENOT_MULTIPLE when r > f and r is not a multiple of f.
 */
int resample_plan(size_t n, int64_t f, int64_t r, size_t *points, int64_t *resolution);

/* LTTB of in[0..n) to m points (m < n, n >= 2) into out[0..max(m, 2)):
 * the first and last point are always kept, so m < 2 still gives two (as
 * upstream). NaN inputs follow upstream's arithmetic (a NaN area always
 * wins its bucket). */
void resample_lttb(const double *in, size_t n, size_t m, double *out);

/* in[0..n) reduced to m = n / step points (step >= 2, m >= 1) into out:
 * average — out[i] is the mean of the non-NaN in[i*step .. i*step+step),
 * NaN if there is none; simple — out[i] = in[i*step]. Samples after
 * m*step are dropped, as upstream does. */
void resample_average(const double *in, size_t step, size_t m, double *out);
void resample_simple(const double *in, size_t step, size_t m, double *out);

/* Reduces in[0..n) to the m points resample_plan chose for step = r / f.
 * out must hold RESAMPLE_OUT_MAX(m) points; returns how many were written
 * (m, or 2 for LTTB with m = 1). */
#define RESAMPLE_OUT_MAX(m) ((m) < 2 ? 2 : (m))
size_t resample_apply(enum resample_algo algo, const double *in, size_t n, size_t step, size_t m,
                      double *out);

#endif
