/*
 * cli — the option-parsing helper the bench tools share.
 */
#ifndef BENCH_CLI_H
#define BENCH_CLI_H

#include <errno.h>
#include <stdlib.h>

/* A decimal long >= min. Returns 0, or -1 for anything else. */
static inline int parse_long(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min)
        return -1;
    *out = v;
    return 0;
}

#endif
