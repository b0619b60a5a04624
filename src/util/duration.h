/*
 * duration — Go time.ParseDuration syntax ("48h", "1h30m", "1.5h", "300ms",
 * "-1h", "0"). Units ns, us, µs (U+00B5), μs (U+03BC), ms, s, m, h; no days.
 */
#ifndef CCMS_DURATION_H
#define CCMS_DURATION_H

#include <stdint.h>

/* Parses s into nanoseconds. Returns 0, or -1 for invalid syntax, unknown
 * unit or int64 overflow. */
int duration_parse(const char *s, int64_t *out_ns);

#endif
