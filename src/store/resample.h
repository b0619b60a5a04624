/*
 * resample — LTTB ("Largest Triangle Three Buckets") downsampling exactly
 * as upstream's cc-lib resampler (docs/http-api.md, "Resampling"), plus the rule that
 * decides whether a series is resampled at all.
 */
#ifndef CCMS_RESAMPLE_H
#define CCMS_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Below this many points a series is never resampled (upstream default). */
#define RESAMPLE_MIN_POINTS 1000

enum resample_error { RESAMPLE_ENOT_MULTIPLE = -3001 };

/*
 * Decides how a series of n points at native frequency f is returned for a
 * requested resolution r. Sets *points to the number of output points (n
 * when unchanged) and *resolution to the resolution of the output.
 * Returns 0, or RESAMPLE_ENOT_MULTIPLE when r > f and r is not a multiple of f.
 */
int resample_plan(size_t n, int64_t f, int64_t r, size_t *points, int64_t *resolution);

/* LTTB of in[0..n) to m points (2 <= m < n) into out[0..m). NaN inputs
 * follow upstream's arithmetic (a NaN area always wins its bucket). */
void resample_lttb(const double *in, size_t n, size_t m, double *out);

#endif
