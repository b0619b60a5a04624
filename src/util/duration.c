/*
 * duration — a transcription of Go's time.ParseDuration so that every
 * duration string upstream accepts means the same here, including the
 * float64 arithmetic for fractions and the exact overflow limits.
 */
#include "util/duration.h"

#include <stdbool.h>
#include <string.h>

#define DURATION_LIMIT ((uint64_t)1 << 63)

struct duration_unit {
    const char *name;
    uint64_t ns;
};

static const struct duration_unit duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek small letter mu */
    {"ms", 1000000},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
};

static bool duration_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Go's leadingInt: consumes [0-9]*, fails on values beyond 2^63. */
static int duration_leading_int(const char **s, uint64_t *out)
{
    uint64_t x = 0;
    const char *p = *s;
    for (; duration_is_digit(*p); p++) {
        if (x > DURATION_LIMIT / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
        if (x > DURATION_LIMIT)
            return -1;
    }
    *s = p;
    *out = x;
    return 0;
}

/* Go's leadingFraction: consumes [0-9]*, silently stops accumulating
 * precision on overflow. */
static void duration_leading_fraction(const char **s, uint64_t *out, double *scale)
{
    uint64_t x = 0;
    double sc = 1;
    bool overflow = false;
    const char *p = *s;
    for (; duration_is_digit(*p); p++) {
        if (overflow)
            continue;
        if (x > (DURATION_LIMIT - 1) / 10) {
            overflow = true;
            continue;
        }
        uint64_t y = x * 10 + (uint64_t)(*p - '0');
        if (y > DURATION_LIMIT) {
            overflow = true;
            continue;
        }
        x = y;
        sc *= 10;
    }
    *s = p;
    *out = x;
    *scale = sc;
}

static const struct duration_unit *duration_find_unit(const char *u, size_t len)
{
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
        if (strlen(duration_units[i].name) == len && memcmp(duration_units[i].name, u, len) == 0)
            return &duration_units[i];
    }
    return NULL;
}

int duration_parse(const char *s, int64_t *out_ns)
{
    if (s == NULL)
        return -1;
    uint64_t d = 0;
    bool neg = false;

    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;

    while (*s != '\0') {
        uint64_t v = 0, f = 0;
        double scale = 1;

        if (!(*s == '.' || duration_is_digit(*s)))
            return -1;
        const char *before = s;
        if (duration_leading_int(&s, &v) != 0)
            return -1;
        bool pre = s != before;

        bool post = false;
        if (*s == '.') {
            s++;
            const char *frac = s;
            duration_leading_fraction(&s, &f, &scale);
            post = s != frac;
        }
        if (!pre && !post)
            return -1;

        size_t ulen = 0;
        while (s[ulen] != '\0' && s[ulen] != '.' && !duration_is_digit(s[ulen]))
            ulen++;
        if (ulen == 0)
            return -1; /* missing unit */
        const struct duration_unit *unit = duration_find_unit(s, ulen);
        if (unit == NULL)
            return -1;
        s += ulen;

        if (v > DURATION_LIMIT / unit->ns)
            return -1;
        v *= unit->ns;
        if (f > 0) {
            /* float64 keeps fractions of hours nanosecond-accurate; the
             * product is at most one unit (3.6e12 ns). */
            v += (uint64_t)((double)f * ((double)unit->ns / scale));
            if (v > DURATION_LIMIT)
                return -1;
        }
        d += v;
        if (d > DURATION_LIMIT)
            return -1;
    }

    if (neg) {
        /* d <= 2^63 here, so -d fits (d == 2^63 is INT64_MIN). */
        *out_ns = d == DURATION_LIMIT ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > DURATION_LIMIT - 1)
        return -1;
    *out_ns = (int64_t)d;
    return 0;
}
