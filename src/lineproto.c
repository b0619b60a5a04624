/*
 * lineproto — streaming InfluxDB line-protocol tokenizer (see lineproto.h).
 *
 * The tokenizer is one forward pass over the line driven by a 256-entry
 * byte-class table. The inner loops only stop at bytes that end a token or
 * need attention (a backslash, a byte >= 0x80), and skip the others 16 at a
 * time (SSE2); unescaping and UTF-8 validation happen only for tokens that
 * contained such bytes. Numbers are parsed in place: integers directly
 * (eight digits at a time), plain decimals in one pass that also finds
 * their end, other floats with Clinger's fast path and strtod() only for
 * the rare inputs that need correct rounding. lp_tag_section and
 * lp_parse_fields let a caller that has seen a line's tags before parse
 * only the rest.
 *
 * Error messages and columns follow the influxdata line-protocol v2 decoder
 * (the ClusterCockpit fork used by upstream), so clients see familiar text.
 * Deliberate differences: a newline always ends a line (the reader splits
 * on it first, so it cannot appear inside a quoted string), hexadecimal
 * floats must carry a 'p' exponent, and a lone '\r' is reported where it
 * stands instead of as "unexpected text after timestamp".
 */
#include "lineproto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "util/le.h"

/* ---- byte classes --------------------------------------------------------- */

enum {
    C_MEAS_STOP = 1 << 0,  /* ends a measurement: ',' ' ' control */
    C_TAG_STOP = 1 << 1,   /* ends a tag key/value or field key: ',' '=' ' ' control */
    C_FVAL_STOP = 1 << 2,  /* ends a non-string field value: ',' ' ' '\r' '\n' */
    C_SPECIAL = 1 << 3,    /* '\\' or >= 0x80: needs a closer look */
    C_TIME = 1 << 4,       /* '-' '0'-'9' */
    C_COMMENT_BAD = 1 << 5 /* not allowed in a comment: control chars */
};

#define R4(x) x, x, x, x
#define R8(x) R4(x), R4(x)
#define R16(x) R8(x), R8(x)
#define CTRL (C_MEAS_STOP | C_TAG_STOP | C_COMMENT_BAD)

static const unsigned char lp_class[] = {
    /* 0x00-0x1f: control; \n (0x0a) and \r (0x0d) also end field values */
    CTRL, CTRL, CTRL, CTRL, CTRL, CTRL, CTRL, CTRL,
    CTRL, CTRL, CTRL | C_FVAL_STOP, CTRL, CTRL, CTRL | C_FVAL_STOP, CTRL, CTRL,
    R16(CTRL),
    /* 0x20 ' ' */ C_MEAS_STOP | C_TAG_STOP | C_FVAL_STOP,
    /* 0x21-0x2b */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x2c ',' */ C_MEAS_STOP | C_TAG_STOP | C_FVAL_STOP,
    /* 0x2d '-' */ C_TIME,
    /* 0x2e-0x2f */ 0, 0,
    /* 0x30-0x39 */ C_TIME, C_TIME, C_TIME, C_TIME, C_TIME, C_TIME, C_TIME, C_TIME, C_TIME, C_TIME,
    /* 0x3a-0x3c */ 0, 0, 0,
    /* 0x3d '=' */ C_TAG_STOP,
    /* 0x3e-0x3f */ 0, 0,
    /* 0x40-0x5b */ R16(0), R8(0), R4(0),
    /* 0x5c '\\' */ C_SPECIAL,
    /* 0x5d-0x7e */ 0, 0, 0, R16(0), R8(0), R4(0), 0, 0, 0,
    /* 0x7f */ CTRL,
    /* 0x80-0xff */ R16(C_SPECIAL), R16(C_SPECIAL), R16(C_SPECIAL), R16(C_SPECIAL),
    R16(C_SPECIAL), R16(C_SPECIAL), R16(C_SPECIAL), R16(C_SPECIAL),
};

_Static_assert(sizeof(lp_class) == 256, "class table must cover every byte");

#define CLS(c) (lp_class[(unsigned char)(c)])

/* Which bytes a backslash escapes in each kind of token. */
enum esc_kind { ESC_MEAS, ESC_TAG };

static inline bool lp_escapable(char c, enum esc_kind kind)
{
    return c == ',' || c == ' ' || (kind == ESC_TAG && c == '=');
}

enum { TOK_BACKSLASH = 1, TOK_HIGH = 2 };

/* Bytes that end a name token of any kind or need a closer look. */
#define C_NAME_ATTENTION (C_MEAS_STOP | C_TAG_STOP | C_SPECIAL)

#ifdef __SSE2__
/* Bit i set iff p[i] is of class C_NAME_ATTENTION: ' ' ',' '=' '\\',
 * control bytes, 0x7f and bytes >= 0x80. A byte is one iff it equals one
 * of the first four, or is 0x7f, or is below 0x20 as a signed byte (which
 * takes in >= 0x80). SSE2 is there on every x86-64. */
static inline unsigned lp_attention16(const char *p)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8(','))),
                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('=')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
                     _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
    return (unsigned)_mm_movemask_epi8(hit);
}
#endif

/* Advances p to the first byte of class C_NAME_ATTENTION (or end), 16
 * bytes at a time where SSE2 is there. */
static inline const char *lp_skip_ordinary(const char *p, const char *end)
{
#ifdef __SSE2__
    while (end - p >= 16) {
        unsigned bits = lp_attention16(p);
        if (bits)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && !(CLS(*p) & C_NAME_ATTENTION))
        p++;
    return p;
}

/*
 * Advances p over a name token (measurement, tag key/value, field key):
 * stops at a byte of class `stop`, treats "\<escapable>" as part of the
 * token and records in *flags whether a backslash or a byte >= 0x80 was
 * seen.
 */
static inline const char *lp_scan_name(const char *p, const char *end, unsigned char stop,
                                       enum esc_kind kind, unsigned *flags)
{
    const unsigned char mask = stop | C_SPECIAL;
    for (;;) {
        p = lp_skip_ordinary(p, end);
        if (p == end)
            return p;
        unsigned char c = (unsigned char)*p;
        if (!(CLS(c) & mask)) {
            p++;                /* ends other tokens, not this one ('=' in a measurement) */
            continue;
        }
        if (c == '\\') {
            *flags |= TOK_BACKSLASH;
            p += (p + 1 < end && lp_escapable(p[1], kind)) ? 2 : 1;
        } else if (c >= 0x80) {
            *flags |= TOK_HIGH;
            p++;
        } else {
            return p;
        }
    }
}

/* Copies an escaped name token into dst without its escape backslashes. */
static size_t lp_unescape_name(const char *s, size_t n, enum esc_kind kind, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && lp_escapable(s[i + 1], kind))
            i++;
        dst[o++] = s[i];
    }
    return o;
}

/* Valid UTF-8 as Go's utf8.Valid: no overlongs, surrogates or > U+10FFFF.
 * Escapes only ever replace ASCII by ASCII, so validating the raw token is
 * the same as validating the unescaped one. */
static bool lp_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* ---- error messages ------------------------------------------------------- */

/* Quotes s like Go's %q (shortened to keep messages within lp_error). */
static void lp_quote(char *dst, size_t cap, const char *s, size_t n)
{
    const size_t max_src = 40;
    size_t o = 0;
    bool cut = n > max_src;
    if (cut)
        n = max_src;
    if (cap < 8)
        return;
    dst[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': dst[o++] = '\\'; dst[o++] = '"'; break;
        case '\\': dst[o++] = '\\'; dst[o++] = '\\'; break;
        case '\n': dst[o++] = '\\'; dst[o++] = 'n'; break;
        case '\r': dst[o++] = '\\'; dst[o++] = 'r'; break;
        case '\t': dst[o++] = '\\'; dst[o++] = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f || c >= 0x80)
                o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
            else
                dst[o++] = (char)c;
        }
    }
    if (cut && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

/* Quotes one byte like Go's %q on a byte: a rune literal. */
static void lp_quote_byte(char *dst, size_t cap, char ch)
{
    unsigned char c = (unsigned char)ch;
    switch (c) {
    case '\'': snprintf(dst, cap, "'\\''"); return;
    case '\\': snprintf(dst, cap, "'\\\\'"); return;
    case '\n': snprintf(dst, cap, "'\\n'"); return;
    case '\r': snprintf(dst, cap, "'\\r'"); return;
    case '\t': snprintf(dst, cap, "'\\t'"); return;
    default:
        if (c < 0x20 || c >= 0x7f)
            snprintf(dst, cap, "'\\x%02x'", c);
        else
            snprintf(dst, cap, "'%c'", c);
    }
}

__attribute__((format(printf, 3, 4))) static int lp_fail(struct lp_error *err, size_t column0,
                                                           const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->column = column0 + 1;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return LP_ERR_SYNTAX;
}

/* ---- numbers -------------------------------------------------------------- */

enum num_result { NUM_OK = 0, NUM_SYNTAX, NUM_RANGE, NUM_NONNUMBER };

/* Whether s[0..8) are eight ASCII digits, tested on all eight at once (the
 * SWAR test of simdjson and fast_float: a byte below '0' borrows into its
 * high bit, one above '9' carries into it). */
static inline bool lp_eight_digits(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return (((w + UINT64_C(0x4646464646464646)) | (w - UINT64_C(0x3030303030303030))) &
            UINT64_C(0x8080808080808080)) == 0;
}

/* Decimal digits s[0..n) (at least one) as an unsigned value <= limit
 * (every caller's limit is at least 10^18 - 1). */
static int lp_parse_digits(const char *s, size_t n, uint64_t limit, uint64_t *out)
{
    if (n == 0)
        return NUM_SYNTAX;
    uint64_t v = 0;
    /* 18 digits cannot exceed the limit: no check per digit there (a
     * timestamp has 10 to 19 digits) */
    size_t unchecked = n < 18 ? n : 18, i = 0;
    /* eight digits at a time (the SWAR method of simdjson and fast_float):
     * a word of eight ASCII digits becomes their value in three multiplies */
    for (; i + 8 <= unchecked; i += 8) {
        if (!lp_eight_digits(s + i))
            break;              /* not eight digits: the loop below finds out */
        uint64_t w;
        memcpy(&w, s + i, 8);
        w -= UINT64_C(0x3030303030303030);
        w = w * 10 + (w >> 8);
        w = (((w & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x000F424000000064)) +
             (((w >> 16) & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x0000271000000001))) >> 32;
        v = v * 100000000 + w;
    }
    for (; i < unchecked; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return NUM_SYNTAX;
        v = v * 10 + d;
    }
    bool overflow = false;
    for (i = unchecked; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return NUM_SYNTAX;
        if (!overflow) {
            if (v > (limit - d) / 10)
                overflow = true;
            else
                v = v * 10 + d;
        }
    }
    if (overflow)
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int lp_parse_int(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t v;
    int rc = lp_parse_digits(s + neg, n - neg, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
                             &v);
    if (rc == NUM_OK)
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return rc;
}

static int lp_parse_uint(const char *s, size_t n, uint64_t *out)
{
    return lp_parse_digits(s, n, UINT64_MAX, out);
}

static const double lp_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static bool lp_ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

static bool lp_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Go hexadecimal float syntax: 0x mantissa (with at least one digit) and a
 * mandatory p exponent. s has no sign. */
static bool lp_hex_float_syntax(const char *s, size_t n)
{
    size_t i = 2;
    bool digits = false;
    while (i < n && lp_is_hex(s[i])) {
        i++;
        digits = true;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && lp_is_hex(s[i])) {
            i++;
            digits = true;
        }
    }
    if (!digits || i == n || (s[i] != 'p' && s[i] != 'P'))
        return false;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (i == n)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* strtod on a NUL-terminated copy in tmp (n + 1 bytes), for syntax already
 * checked by the caller. Overflow is a range error; underflow is not (Go). */
static int lp_strtod(const char *s, size_t n, char *tmp, double *out)
{
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (isinf(v))
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

/*
 * Parses a float with Go's ParseFloat syntax (decimal or hexadecimal with
 * exponent; "inf"/"infinity" after a sign parse but are non-numbers).
 * tmp provides n + 1 bytes for the slow path.
 */
/* The common float, [-]digits[.digits] with at most 15 digits and no
 * exponent: the digits are exact in a double, and so is their value
 * divided by the power of ten of the fraction's length (lp_parse_float's
 * general path computes the same, with more checks per digit). Reads
 * s[0..n) up to the first byte that is neither a digit nor the first '.';
 * returns how many bytes that is, or 0 when they are not such a number
 * (*out is then unspecified). */
static inline size_t lp_plain_decimal(const char *s, size_t n, double *out)
{
    size_t neg = n > 0 && s[0] == '-', i = neg;
    uint64_t mant = 0;
    unsigned d;
    /* the digits before the point, then those after it: no test per digit
     * of whether the point was seen */
    for (; i < n && (d = (unsigned char)s[i] - '0') <= 9; i++)
        mant = mant * 10 + d;
    size_t digits = i - neg, decimals = 0;
    if (i < n && s[i] == '.') {
        size_t first = ++i;
        for (; i < n && (d = (unsigned char)s[i] - '0') <= 9; i++)
            mant = mant * 10 + d;
        decimals = i - first;
        digits += decimals;
    }
    if (digits == 0 || digits > 15)
        return 0;
    double v = (double)mant / lp_pow10[decimals];
    *out = neg ? -v : v;
    return i;
}

static int lp_parse_float(const char *s, size_t n, char *tmp, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (n > 0 && lp_plain_decimal(s, n, out) == n)
        return NUM_OK;
    if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        if (!lp_hex_float_syntax(s + i, n - i))
            return NUM_SYNTAX;
        return lp_strtod(s, n, tmp, out);
    }
    if (i < n && (s[i] == 'i' || s[i] == 'I')) {
        if (lp_ieq(s + i, n - i, "inf") || lp_ieq(s + i, n - i, "infinity"))
            return NUM_NONNUMBER;
        return NUM_SYNTAX;
    }

    uint64_t mant = 0;
    int ndig = 0;          /* significant digits in mant */
    int64_t exp10 = 0;
    bool digits = false, truncated = false;

    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            break;
        digits = true;
        if (ndig < 19) {
            if (mant != 0 || d != 0) {
                mant = mant * 10 + d;
                ndig++;
            }
        } else {
            exp10++;
            if (d != 0)
                truncated = true;
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            if (d > 9)
                break;
            digits = true;
            if (ndig < 19) {
                if (mant != 0 || d != 0) {
                    mant = mant * 10 + d;
                    ndig++;
                }
                exp10--;
            } else if (d != 0) {
                truncated = true;
            }
        }
    }
    if (!digits)
        return NUM_SYNTAX;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i == n)
            return NUM_SYNTAX;
        int64_t e = 0;
        for (; i < n; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            if (d > 9)
                return NUM_SYNTAX;
            if (e < 1000000)
                e = e * 10 + d;
        }
        exp10 += eneg ? -e : e;
    }
    if (i != n)
        return NUM_SYNTAX;

    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return NUM_OK;
    }
    if (!truncated && mant <= (UINT64_C(1) << 53)) {
        double v = (double)mant;
        if (exp10 >= 0 && exp10 <= 22) {
            v *= lp_pow10[exp10];
            *out = neg ? -v : v;
            return NUM_OK;
        }
        if (exp10 < 0 && exp10 >= -22) {
            v /= lp_pow10[-exp10];
            *out = neg ? -v : v;
            return NUM_OK;
        }
        /* 123e30: move surplus powers into the mantissa while it stays exact */
        if (exp10 > 22 && exp10 <= 22 + 15) {
            uint64_t m = mant;
            int64_t e = exp10;
            while (e > 22 && m <= (UINT64_C(1) << 53) / 10) {
                m *= 10;
                e--;
            }
            if (e == 22) {
                v = (double)m * lp_pow10[22];
                *out = neg ? -v : v;
                return NUM_OK;
            }
        }
    }
    return lp_strtod(s, n, tmp, out);
}

static bool lp_parse_bool(const char *s, size_t n, bool *out)
{
    switch (n) {
    case 1:
        if (s[0] == 't' || s[0] == 'T') {
            *out = true;
            return true;
        }
        if (s[0] == 'f' || s[0] == 'F') {
            *out = false;
            return true;
        }
        return false;
    case 4:
        if (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)) {
            *out = true;
            return true;
        }
        return false;
    case 5:
        if (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)) {
            *out = false;
            return true;
        }
        return false;
    default:
        return false;
    }
}

/* ---- line structure ------------------------------------------------------- */

/*
 * Common start of lp_parse and lp_peek_measurement: drops a trailing '\r',
 * skips leading spaces, recognises blank and comment lines. On LP_OK *pos
 * is the first byte of the measurement and *len the effective length.
 */
static int lp_line_start(const char *line, size_t *len, size_t *pos, struct lp_error *err)
{
    size_t n = *len;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    size_t i = 0;
    while (i < n && line[i] == ' ')
        i++;
    if (i == n)
        return LP_EMPTY;
    if (line[i] == '#') {
        for (size_t k = i + 1; k < n; k++)
            if (CLS(line[k]) & C_COMMENT_BAD)
                return lp_fail(err, i, "invalid character found in comment line");
        return LP_EMPTY;
    }
    *len = n;
    *pos = i;
    return LP_OK;
}

/* Scans the measurement at line[*pos]; leaves *pos after it. */
static int lp_measurement(const char *line, size_t len, size_t *pos, unsigned *flags,
                          struct lp_error *err)
{
    const char *start = line + *pos, *end = line + len;
    const char *p = lp_scan_name(start, end, C_MEAS_STOP, ESC_MEAS, flags);
    if (p == start) {
        char q[16];
        if (p == end)
            return lp_fail(err, *pos, "no measurement name found");
        lp_quote_byte(q, sizeof q, *p);
        return lp_fail(err, *pos, "invalid character %s found at start of measurement name", q);
    }
    if ((*flags & TOK_HIGH) && !lp_utf8_valid((const unsigned char *)start, (size_t)(p - start))) {
        char q[64];
        lp_quote(q, sizeof q, start, (size_t)(p - start));
        return lp_fail(err, *pos, "invalid utf-8 sequence in token %s", q);
    }
    *pos = (size_t)(p - line);
    return LP_OK;
}

int lp_peek_measurement(const char *line, size_t len, struct lp_str *name, bool *needs_unescape,
                        struct lp_error *err)
{
    size_t pos = 0;
    int rc = lp_line_start(line, &len, &pos, err);
    if (rc != LP_OK)
        return rc;
    size_t start = pos;
    unsigned flags = 0;
    rc = lp_measurement(line, len, &pos, &flags, err);
    if (rc != LP_OK)
        return rc;
    name->ptr = line + start;
    name->len = pos - start;
    *needs_unescape = (flags & TOK_BACKSLASH) != 0;
    return LP_OK;
}

/* Parser state for one line. */
struct lp_cursor {
    const char *line;
    const char *p;
    const char *end;
    char *scratch;          /* next free byte of the caller's scratch */
    struct lp_memo *memo;   /* or NULL */
    struct lp_error *err;
};

#define COL(c, ptr) ((size_t)((ptr) - (c)->line))

/* lp_take_name for a token that holds a backslash or a byte >= 0x80. */
static __attribute__((noinline)) int lp_take_special_name(struct lp_cursor *c, const char *start,
                                                          unsigned flags, enum esc_kind kind,
                                                          struct lp_str *out)
{
    size_t n = (size_t)(c->p - start);
    if ((flags & TOK_HIGH) && !lp_utf8_valid((const unsigned char *)start, n)) {
        char q[64];
        lp_quote(q, sizeof q, start, n);
        return lp_fail(c->err, COL(c, start), "invalid utf-8 sequence in token %s", q);
    }
    if (flags & TOK_BACKSLASH) {
        out->ptr = c->scratch;
        out->len = lp_unescape_name(start, n, kind, c->scratch);
        c->scratch += out->len;
    } else {
        out->ptr = start;
        out->len = n;
    }
    return LP_OK;
}

/* Finishes a scanned name token: UTF-8 check, unescape if needed (a plain
 * token, nearly every one, is taken as it is). */
static inline int lp_take_name(struct lp_cursor *c, const char *start, unsigned flags,
                               enum esc_kind kind, struct lp_str *out)
{
    if (__builtin_expect(flags != 0, 0))
        return lp_take_special_name(c, start, flags, kind, out);
    out->ptr = start;
    out->len = (size_t)(c->p - start);
    return LP_OK;
}

/* After a ',' that follows the measurement or a tag value. */
static int lp_tag_comma(struct lp_cursor *c)
{
    c->p++;
    if (c->p == c->end)
        return lp_fail(c->err, COL(c, c->p), "expected tag key after comma; got end of input");
    if (*c->p == ' ' || *c->p == '\r' || *c->p == '\n')
        return lp_fail(c->err, COL(c, c->p), "expected tag key after comma; got white space instead");
    return LP_OK;
}

static int lp_tags(struct lp_cursor *c, struct lp_line *out)
{
    if (c->p < c->end && *c->p == ',') {
        int rc = lp_tag_comma(c);
        if (rc != LP_OK)
            return rc;
    }
    for (;;) {
        if (c->p < c->end && *c->p == ' ') {
            while (c->p < c->end && *c->p == ' ')
                c->p++;
            return LP_OK;
        }
        const char *kstart = c->p;
        unsigned kflags = 0;
        c->p = lp_scan_name(c->p, c->end, C_TAG_STOP, ESC_TAG, &kflags);
        size_t klen = (size_t)(c->p - kstart);
        if (klen == 0 || c->p == c->end || *c->p != '=') {
            char qk[64], qc[16];
            size_t col = COL(c, kstart);
            if (c->p == c->end && klen == 0)
                return lp_fail(c->err, col, "expected tag key or field but found end of input instead");
            lp_quote(qk, sizeof qk, kstart, klen);
            if (c->p == c->end)
                return lp_fail(c->err, col,
                               "expected '=' after tag key %s, but got end of input instead", qk);
            lp_quote_byte(qc, sizeof qc, *c->p);
            if (klen > 0)
                return lp_fail(c->err, col, "expected '=' after tag key %s, but got %s instead", qk,
                               qc);
            if (*c->p == '=')
                return lp_fail(c->err, col, "empty tag key");
            return lp_fail(c->err, col, "expected tag key or field but found %s instead", qc);
        }
        if (out->tag_count == LP_MAX_TAGS)
            return lp_fail(c->err, COL(c, kstart), "too many tags (more than %d)", LP_MAX_TAGS);
        struct lp_str *key = &out->tag_keys[out->tag_count];
        int rc = lp_take_name(c, kstart, kflags, ESC_TAG, key);
        if (rc != LP_OK)
            return rc;
        c->p++; /* '=' */
        const char *vstart = c->p;
        unsigned vflags = 0;
        c->p = lp_scan_name(c->p, c->end, C_TAG_STOP, ESC_TAG, &vflags);
        if (c->p == vstart) {
            char qk[64];
            lp_quote(qk, sizeof qk, key->ptr, key->len);
            return lp_fail(c->err, COL(c, vstart),
                           "expected tag value after tag key %s, but none found", qk);
        }
        rc = lp_take_name(c, vstart, vflags, ESC_TAG, &out->tag_values[out->tag_count]);
        if (rc != LP_OK)
            return rc;
        out->tag_count++;
        if (c->p == c->end)
            return LP_OK; /* the field section reports the missing fields */
        if (*c->p == ',') {
            rc = lp_tag_comma(c);
            if (rc != LP_OK)
                return rc;
        }
    }
}

/* A quoted string value; c->p is at the opening quote. */
static int lp_string_value(struct lp_cursor *c, const struct lp_str *key, struct lp_field *f)
{
    const char *quote = c->p;
    const char *start = ++c->p;
    bool backslash = false, high = false;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\') {
            backslash = true;
            if (c->p + 1 < c->end) {
                char e = c->p[1];
                if (e == '\\' || e == '"' || e == 'n' || e == 'r' || e == 't') {
                    c->p += 2;
                    continue;
                }
            }
        } else if (ch >= 0x80) {
            high = true;
        }
        c->p++;
    }
    size_t n = (size_t)(c->p - start);
    if (high && !lp_utf8_valid((const unsigned char *)start, n)) {
        char q[64];
        lp_quote(q, sizeof q, start, n);
        return lp_fail(c->err, COL(c, start), "invalid utf-8 sequence in token %s", q);
    }
    if (c->p == c->end) {
        char qk[64];
        lp_quote(qk, sizeof qk, key->ptr, key->len);
        return lp_fail(c->err, COL(c, quote),
                       "expected closing quote for string field %s, found end of input", qk);
    }
    f->kind = LP_STRING;
    if (backslash) {
        char *o = c->scratch;
        for (size_t i = 0; i < n; i++) {
            char ch = start[i];
            if (ch == '\\' && i + 1 < n) {
                char e = start[i + 1];
                char r = e == '\\' ? '\\' : e == '"' ? '"' : e == 'n' ? '\n' : e == 'r' ? '\r'
                       : e == 't' ? '\t' : 0;
                if (r) {
                    *o++ = r;
                    i++;
                    continue;
                }
            }
            *o++ = ch;
        }
        f->v.s.ptr = c->scratch;
        f->v.s.len = (size_t)(o - c->scratch);
        c->scratch = o;
    } else {
        f->v.s.ptr = start;
        f->v.s.len = n;
    }
    c->p++; /* closing quote */
    return LP_OK;
}

/* A number or boolean value; c->p is at its first byte. */
static int lp_scalar_value(struct lp_cursor *c, const struct lp_str *key, struct lp_field *f)
{
    const char *start = c->p;
    /* most values are plain decimals: read and delimited in one pass */
    size_t plain = lp_plain_decimal(start, (size_t)(c->end - start), &f->v.f);
    if (plain && (start + plain == c->end || (CLS(start[plain]) & C_FVAL_STOP))) {
        f->kind = LP_FLOAT;
        c->p = start + plain;
        return LP_OK;
    }
    while (c->p < c->end && !(CLS(*c->p) & C_FVAL_STOP))
        c->p++;
    size_t n = (size_t)(c->p - start);
    const char *why;
    char qk[64], qv[64];
    int rc;

    if (*start == 't' || *start == 'T' || *start == 'f' || *start == 'F') {
        f->kind = LP_BOOL;
        if (lp_parse_bool(start, n, &f->v.b))
            return LP_OK;
        lp_quote(qk, sizeof qk, key->ptr, key->len);
        lp_quote(qv, sizeof qv, start, n);
        return lp_fail(c->err, COL(c, start), "cannot parse value for field key %s: invalid bool value %s",
                       qk, qv);
    }
    switch (start[n - 1]) {
    case 'i':
        f->kind = LP_INT;
        rc = lp_parse_int(start, n - 1, &f->v.i);
        why = "invalid integer value syntax";
        break;
    case 'u':
        f->kind = LP_UINT;
        rc = lp_parse_uint(start, n - 1, &f->v.u);
        why = "invalid unsigned integer value syntax";
        break;
    default:
        f->kind = LP_FLOAT;
        /* The strtod copy goes to free scratch space: everything unescaped
         * so far came from bytes before "<key>=", so n + 1 bytes remain. */
        rc = lp_parse_float(start, n, c->scratch, &f->v.f);
        why = "invalid float value syntax";
        break;
    }
    if (rc == NUM_OK)
        return LP_OK;
    lp_quote(qk, sizeof qk, key->ptr, key->len);
    if (rc == NUM_RANGE)
        return lp_fail(c->err, COL(c, start),
                       "cannot parse value for field key %s: line-protocol value out of range", qk);
    if (rc == NUM_NONNUMBER) {
        lp_quote(qv, sizeof qv, start, n);
        return lp_fail(c->err, COL(c, start),
                       "cannot parse value for field key %s: non-number %s cannot be represented "
                       "as a line-protocol field value", qk, qv);
    }
    return lp_fail(c->err, COL(c, start), "cannot parse value for field key %s: %s", qk, why);
}

/* The timestamp from c->p when its bytes are the memo's (the same token:
 * the line ends or a space follows). */
static bool lp_remembered_timestamp(struct lp_cursor *c, struct lp_line *out)
{
    const struct lp_memo *m = c->memo;
    size_t n = m->ts_len;
    if (n == 0 || (size_t)(c->end - c->p) < n || !le_same_bytes(c->p, m->ts_text, n) ||
        (c->p + n < c->end && c->p[n] != ' '))
        return false;
    c->p += n;
    out->timestamp = m->timestamp;
    out->has_timestamp = true;
    return true;
}

static int lp_timestamp(struct lp_cursor *c, struct lp_line *out)
{
    const char *start = c->p;
    char q[64];
    if (c->memo && lp_remembered_timestamp(c, out))
        goto after;
    while (c->end - c->p >= 8 && lp_eight_digits(c->p))
        c->p += 8;              /* a timestamp is 10 to 19 digits */
    while (c->p < c->end && (CLS(*c->p) & C_TIME))
        c->p++;
    if (c->p < c->end && *c->p != ' ') {
        lp_quote(q, sizeof q, start, (size_t)(c->end - start));
        return lp_fail(c->err, COL(c, start), "invalid timestamp (%s)", q);
    }
    size_t n = (size_t)(c->p - start);
    if (n > 0) {
        int rc = lp_parse_int(start, n, &out->timestamp);
        if (rc != NUM_OK) {
            lp_quote(q, sizeof q, start, n);
            return lp_fail(c->err, COL(c, start),
                           rc == NUM_RANGE ? "invalid timestamp (%s): value out of range"
                                           : "invalid timestamp (%s)", q);
        }
        out->has_timestamp = true;
        if (c->memo && n <= LP_MEMO_TS_MAX) {
            memcpy(c->memo->ts_text, start, n);
            c->memo->ts_len = n;
            c->memo->timestamp = out->timestamp;
        }
    }
after:
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    if (c->p < c->end) {
        lp_quote(q, sizeof q, c->p, (size_t)(c->end - c->p));
        return lp_fail(c->err, COL(c, c->p), "unexpected text after timestamp (%s)", q);
    }
    return LP_OK;
}

/* A field's key and its '=' (the key of the next field, at c->p): the
 * field slot in *f. Stops at the value's first byte. */
static int lp_field_key(struct lp_cursor *c, struct lp_line *out, struct lp_field **f)
{
    const char *kstart = c->p;
    unsigned kflags = 0;
    char qk[64], qc[16];
    /* the key of nearly every line: "value=" is a plain key, exactly what
     * the scan below would take, so it is taken as it is */
    if (c->end - c->p > 6 && memcmp(c->p, "value=", 6) == 0 &&
        out->field_count < LP_MAX_FIELDS) {
        *f = &out->fields[out->field_count];
        (*f)->key = (struct lp_str){ kstart, 5 };
        c->p += 6;
        return LP_OK;
    }
    c->p = lp_scan_name(c->p, c->end, C_TAG_STOP, ESC_TAG, &kflags);
    if (c->p == kstart) {
        if (c->p == c->end)
            return lp_fail(c->err, COL(c, kstart), "expected field key but none found");
        lp_quote_byte(qc, sizeof qc, *c->p);
        return lp_fail(c->err, COL(c, kstart), "invalid character %s found at start of field key",
                       qc);
    }
    if (out->field_count == LP_MAX_FIELDS)
        return lp_fail(c->err, COL(c, kstart), "too many fields (more than %d)", LP_MAX_FIELDS);
    *f = &out->fields[out->field_count];
    int rc = lp_take_name(c, kstart, kflags, ESC_TAG, &(*f)->key);
    if (rc != LP_OK)
        return rc;
    const struct lp_str *key = &(*f)->key;
    if (c->p == c->end) {
        lp_quote(qk, sizeof qk, key->ptr, key->len);
        return lp_fail(c->err, COL(c, c->p), "want '=' after field key %s, found end of input", qk);
    }
    if (*c->p != '=') {
        lp_quote(qk, sizeof qk, key->ptr, key->len);
        lp_quote_byte(qc, sizeof qc, *c->p);
        return lp_fail(c->err, COL(c, c->p), "want '=' after field key %s, found %s", qk, qc);
    }
    c->p++;
    if (c->p == c->end) {
        lp_quote(qk, sizeof qk, key->ptr, key->len);
        return lp_fail(c->err, COL(c, c->p), "expected value for field %s, found end of input", qk);
    }
    return LP_OK;
}

static int lp_fields(struct lp_cursor *c, struct lp_line *out)
{
    for (;;) {
        char qk[64], qc[16];
        struct lp_field *f = NULL;
        int rc = lp_field_key(c, out, &f);
        if (rc != LP_OK)
            return rc;
        switch (*c->p) {
        case '"':
            rc = lp_string_value(c, &f->key, f);
            break;
        case 't': case 'T': case 'f': case 'F': case '-': case '.':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            rc = lp_scalar_value(c, &f->key, f);
            break;
        case ' ':
        case ',':
            lp_quote(qk, sizeof qk, f->key.ptr, f->key.len);
            return lp_fail(c->err, COL(c, c->p), "missing field value for field %s", qk);
        default: {
            const char *vstart = c->p;
            char qv[64];
            while (c->p < c->end && !(CLS(*c->p) & C_FVAL_STOP))
                c->p++;
            lp_quote(qk, sizeof qk, f->key.ptr, f->key.len);
            lp_quote(qv, sizeof qv, vstart, (size_t)(c->p - vstart));
            return lp_fail(c->err, COL(c, vstart), "value for field %s (%s) has unrecognized type",
                           qk, qv);
        }
        }
        if (rc != LP_OK)
            return rc;
        out->field_count++;
        if (c->p == c->end)
            return LP_OK;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p != ' ') {
            lp_quote(qk, sizeof qk, f->key.ptr, f->key.len);
            lp_quote_byte(qc, sizeof qc, *c->p);
            return lp_fail(c->err, COL(c, c->p), "unexpected character %s after field %s", qc, qk);
        }
        while (c->p < c->end && *c->p == ' ')
            c->p++;
        if (c->p == c->end)
            return LP_OK;
        return lp_timestamp(c, out);
    }
}

/* Everything after the measurement name[0..) (raw, as scanned; at most
 * len bytes of line in all). */
static int lp_parse_after(const char *line, size_t len, struct lp_str name, bool needs_unescape,
                          char *scratch, struct lp_memo *memo, struct lp_line *out,
                          struct lp_error *err)
{
    out->tag_count = 0;
    out->field_count = 0;
    out->has_timestamp = false;
    out->timestamp = 0;
    struct lp_cursor c = { .line = line, .p = name.ptr + name.len, .end = line + len,
                           .scratch = scratch, .memo = memo, .err = err };
    if (needs_unescape) {
        out->measurement.ptr = c.scratch;
        out->measurement.len = lp_unescape_name(name.ptr, name.len, ESC_MEAS, c.scratch);
        c.scratch += out->measurement.len;
    } else {
        out->measurement = name;
    }
    int rc = lp_tags(&c, out);
    if (rc != LP_OK)
        return rc;
    return lp_fields(&c, out);
}

int lp_parse(const char *line, size_t len, char *scratch, struct lp_line *out,
             struct lp_error *err)
{
    size_t pos = 0;
    int rc = lp_line_start(line, &len, &pos, err);
    if (rc != LP_OK)
        return rc;
    unsigned flags = 0;
    size_t start = pos;
    rc = lp_measurement(line, len, &pos, &flags, err);
    if (rc != LP_OK)
        return rc;
    struct lp_str name = { line + start, pos - start };
    return lp_parse_after(line, len, name, (flags & TOK_BACKSLASH) != 0, scratch, NULL, out, err);
}

int lp_parse_peeked(const char *line, size_t len, struct lp_str name, bool needs_unescape,
                    char *scratch, struct lp_memo *memo, struct lp_line *out,
                    struct lp_error *err)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;          /* as lp_line_start */
    return lp_parse_after(line, len, name, needs_unescape, scratch, memo, out, err);
}

bool lp_tag_section(const char *line, size_t len, struct lp_str name, size_t *end)
{
    /* one pass for both bytes (two memchr calls cost 40 instructions a line
     * more), 16 bytes at a time like lp_skip_ordinary */
    const char *p = name.ptr + name.len, *stop = line + len;
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(' '), backslash = _mm_set1_epi8('\\');
    for (; stop - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned bits = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(v, backslash)));
        if (bits) {
            p += __builtin_ctz(bits);
            break;
        }
    }
#endif
    while (p < stop && *p != ' ' && *p != '\\')
        p++;
    if (p == stop || *p != ' ')
        return false;
    *end = (size_t)(p - line);
    return true;
}

int lp_parse_fields(const char *line, size_t len, size_t end, char *scratch,
                    struct lp_memo *memo, struct lp_line *out, struct lp_error *err)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;          /* as lp_line_start */
    out->measurement = (struct lp_str){ line, 0 };
    out->tag_count = 0;
    out->field_count = 0;
    out->has_timestamp = false;
    out->timestamp = 0;
    struct lp_cursor c = { .line = line, .p = line + end, .end = line + len, .scratch = scratch,
                           .memo = memo, .err = err };
    /* as lp_tags ends at the space after the last tag */
    while (c.p < c.end && *c.p == ' ')
        c.p++;
    return lp_fields(&c, out);
}

/* ---- reader --------------------------------------------------------------- */

#define LP_REPORT_BYTES 64

void lp_reader_init(struct lp_reader *r, size_t max_line)
{
    memset(r, 0, sizeof *r);
    /* 0 means no limit */
    r->max_line = max_line ? max_line : SIZE_MAX;
}

void lp_reader_destroy(struct lp_reader *r)
{
    free(r->carry);
    r->carry = NULL;
    r->carry_len = r->carry_cap = 0;
}

static int lp_carry_append(struct lp_reader *r, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (r->carry_cap - r->carry_len < n) {
        size_t need = r->carry_len + n;
        size_t cap = r->carry_cap ? r->carry_cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = realloc(r->carry, cap);
        if (!p)
            return -ENOMEM;
        r->carry = p;
        r->carry_cap = cap;
    }
    memcpy(r->carry + r->carry_len, data, n);
    r->carry_len += n;
    return 0;
}

/* How many leading bytes of an over-long line are reported: the same
 * however the line was chunked (a carried prefix holds at most max_line). */
static size_t lp_report_len(const struct lp_reader *r)
{
    return r->max_line < LP_REPORT_BYTES ? r->max_line + 1 : LP_REPORT_BYTES;
}

/* Reports the over-long line that starts with carry (if any) + data and
 * switches to skipping it. */
static int lp_report_too_long(struct lp_reader *r, const char *data, size_t n, lp_line_fn fn,
                              void *ctx)
{
    char head[LP_REPORT_BYTES];
    size_t want = lp_report_len(r);
    size_t k = r->carry_len < want ? r->carry_len : want;
    if (k)
        memcpy(head, r->carry, k);
    size_t more = want - k < n ? want - k : n;
    memcpy(head + k, data, more);
    r->carry_len = 0;
    r->skipping = true;
    r->line_no++;
    return fn(ctx, head, k + more, r->line_no, LP_ERR_LINE_TOO_LONG);
}

int lp_reader_feed(struct lp_reader *r, const char *data, size_t len, lp_line_fn fn, void *ctx)
{
    const char *p = data, *end = data + len;
    int rc;

    if (r->skipping || r->carry_len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t n = nl ? (size_t)(nl - p) : len;
        if (r->skipping) {
            if (!nl)
                return 0;
            r->skipping = false;
        } else if (n > r->max_line - r->carry_len) {
            rc = lp_report_too_long(r, p, n, fn, ctx);
            if (rc)
                return rc;
            if (!nl)
                return 0;
            r->skipping = false;
        } else {
            if ((rc = lp_carry_append(r, p, n)) != 0)
                return rc;
            if (!nl)
                return 0;
            size_t total = r->carry_len;
            r->carry_len = 0;
            r->line_no++;
            if ((rc = fn(ctx, r->carry, total, r->line_no, LP_OK)) != 0)
                return rc;
        }
        p = nl + 1;
    }

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t n = (size_t)(nl - p);
        r->line_no++;
        if (n > r->max_line)
            rc = fn(ctx, p, lp_report_len(r), r->line_no, LP_ERR_LINE_TOO_LONG);
        else
            rc = fn(ctx, p, n, r->line_no, LP_OK);
        if (rc)
            return rc;
        p = nl + 1;
    }
    if (p < end) {
        size_t n = (size_t)(end - p);
        if (n > r->max_line)
            return lp_report_too_long(r, p, n, fn, ctx);
        return lp_carry_append(r, p, n);
    }
    return 0;
}

int lp_reader_finish(struct lp_reader *r, lp_line_fn fn, void *ctx)
{
    if (r->skipping) {
        r->skipping = false;
        return 0;
    }
    if (r->carry_len == 0)
        return 0;
    size_t n = r->carry_len;
    r->carry_len = 0;
    r->line_no++;
    return fn(ctx, r->carry, n, r->line_no, LP_OK);
}
