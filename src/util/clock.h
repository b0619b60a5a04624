/*
 * clock — the monotonic clock in the units timeouts are written in. Every
 * deadline and rate window in the server uses it: wall-clock jumps (NTP,
 * an operator's date) never stretch or cut a timeout.
 */
#ifndef CCMS_CLOCK_H
#define CCMS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t clock_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
