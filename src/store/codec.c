/*
 * codec — see codec.h. Layout of an encoded block (little endian):
 *
 *   RAW      u8 0 | n x u32 float bits
 *   CONST    u8 1 | u32 float bits
 *   DECIMAL  u8 2 | u8 k | u8 flags | [bitmap of present slots, (n+7)/8
 *            bytes, when flags & 1] | varint zigzag first | varint zigzag
 *            min_delta | u8 width | varint (first - min) | varint
 *            (max - first) | f64 sum | [bitmap of non-zero deltas, (m+6)/8
 *            bytes, when flags & 2] | the deltas - min_delta, width bits
 *            each, LSB first: all m-1 of them, or with flags & 2 only the
 *            non-zero ones (m = present values)
 *   BITS     u8 3 | u8 flags | the rest as DECIMAL, the integers being
 *            the values' ordered float bits (bits_ordered)
 *
 * The second bitmap is for gauges that often repeat their value: a zero
 * delta then costs one bit instead of a full width, and min_delta and
 * width describe the non-zero deltas only. The encoder sizes the block
 * both ways and keeps the smaller (blocks written before the flag existed
 * simply never have it).
 *
 * A DECIMAL or BITS block carries the statistics of its values (min and
 * max as integers, the sum of the floats added in slot order as a double),
 * so that codec_stats answers without unpacking it; RAW and CONST blocks
 * are read directly.
 *
 * A DECIMAL value is the float (float)(r * 10^-k) of an integer r with
 * |r| < 2^40 (10^-k as the nearest double); the encoder keeps a k only if
 * that expression gives every value back bit for bit, and the decoder
 * evaluates the same expression, so the round trip is exact by
 * construction (-0 never qualifies: it is BITS or RAW). A BITS value is
 * its integer's bits mapped back (ordered_bits), exact by construction.
 */
#include "store/codec.h"
#include "util/le.h"
#include "util/varint.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define CODEC_MAX_INT ((double)((int64_t)1 << 40))
#define CODEC_MAX_WIDTH 42
#define FLAG_BITMAP 1u
#define FLAG_ZEROS 2u
/* A DECIMAL plan whose steps take more bits than this is compared with
 * BITS: values with more decimals than the gauges' 1-3 (a float's full
 * precision) step by wide integers. The gauges' steps take 7-11 bits and
 * skip the second scan. */
#define BITS_WORTH_TRYING 12

static const double pow10_table[CODEC_MAX_DECIMALS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
};
/* Their inverses (rounded): the value of r is r * 10^-k, a multiplication
 * being several times cheaper than a division when decoding. */
static const double inv_pow10_table[CODEC_MAX_DECIMALS + 1] = {
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8,
};

const char *codec_strerror(int code)
{
    switch (code) {
    case CODEC_ECORRUPT:
        return "corrupt encoded block";
    case CODEC_ESPACE:
        return "encoded block does not fit";
    case CODEC_ECOUNT:
        return "block value count out of range";
    default:
        return code >= 0 ? "ok" : "unknown codec error";
    }
}

const char *codec_kind_name(int kind)
{
    switch (kind) {
    case CODEC_RAW:
        return "raw";
    case CODEC_CONST:
        return "const";
    case CODEC_DECIMAL:
        return "decimal";
    case CODEC_BITS:
        return "bits";
    default:
        return "unknown";
    }
}

int codec_kind_of(const uint8_t *in, size_t len)
{
    return len > 0 ? in[0] : -1;
}

size_t codec_bound(uint32_t n)
{
    return 1 + 4 * (size_t)n;
}

static uint32_t float_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static float bits_float(uint32_t u)
{
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* A float's bits as an unsigned integer that orders like the float (-0
 * just below +0; NaN is never asked): negative values have every bit
 * flipped, the others only the sign bit. BITS blocks code these. */
static inline uint32_t bits_ordered(uint32_t u)
{
    return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
}

static inline uint32_t ordered_bits(uint32_t o)
{
    return o ^ ((uint32_t)((int32_t)~o >> 31) | 0x80000000u);
}

static unsigned bit_width(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

/* The decoder's conversion loop evaluates exactly this expression. */
float codec_decimal_value(int64_t r, int k)
{
    return (float)((double)r * inv_pow10_table[k]);
}

/* y rounded to the nearest integer, ties to even, for |y| < 2^51: adding
 * and subtracting 1.5 * 2^52 leaves no bits below the unit. This is what
 * nearbyint() does in the default rounding mode, without its library call
 * (which needs SSE4.1 to be inlined). Compilers keep the two operations:
 * without -ffast-math they may not assume (y + c) - c == y. */
static inline double round_even(double y)
{
    const double magic = 6755399441055744.0;
    return (y + magic) - magic;
}

/* r for x at k decimals, if it gives x back exactly (the one test both the
 * encoder and codec_decimal_of use). */
static inline bool decimal_try(float x, int k, int64_t *r)
{
    double y = (double)x * pow10_table[k];
    if (!(fabs(y) < CODEC_MAX_INT))
        return false;
    double rounded = round_even(y);
    *r = (int64_t)rounded;
    return float_bits(codec_decimal_value(*r, k)) == float_bits(x);
}

bool codec_decimal_of(float x, int k, int64_t *r)
{
    return decimal_try(x, k, r);
}

/* ---- encoding ---------------------------------------------------------------- */

struct decimal_plan {
    int kind;                   /* CODEC_DECIMAL or CODEC_BITS */
    int k;                      /* DECIMAL: decimals */
    uint32_t present;           /* m */
    int64_t first, min_delta;
    int64_t min, max;           /* of the integers */
    double sum;                 /* of the present floats, in slot order */
    unsigned width;
    bool zeros;                 /* FLAG_ZEROS: zero deltas as bits only */
    size_t size;
};

/* What a block's deltas span: all m - 1 of them, and the non-zero ones
 * (nonzero of them). */
struct delta_spread {
    uint32_t m, nonzero;
    int64_t lo, hi, nz_lo, nz_hi;
};

#define DELTA_SPREAD_EMPTY ((struct delta_spread){ 0, 0, INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN })

/* Adds delta d to the spread (the non-zero side without a branch on the
 * data). */
static inline __attribute__((always_inline)) void spread_add(struct delta_spread *s, int64_t d)
{
    s->lo = d < s->lo ? d : s->lo;
    s->hi = d > s->hi ? d : s->hi;
    int64_t as_lo = d != 0 ? d : INT64_MAX, as_hi = d != 0 ? d : INT64_MIN;
    s->nz_lo = as_lo < s->nz_lo ? as_lo : s->nz_lo;
    s->nz_hi = as_hi > s->nz_hi ? as_hi : s->nz_hi;
    s->nonzero += d != 0;
}

/* Completes a plan from what a pass over the block found: picks the
 * layout (the bitmap of moving steps or not) and sizes the block. */
static void plan_finish(struct decimal_plan *p, bool bits, int k, uint32_t n, int64_t r0,
                        int64_t min, int64_t max, double sum, const struct delta_spread *s)
{
    uint32_t m = s->m, nonzero = s->nonzero;
    int64_t lo = s->lo, hi = s->hi;
    p->kind = bits ? CODEC_BITS : CODEC_DECIMAL;
    p->k = bits ? 0 : k;
    p->present = m;
    p->first = r0;
    p->min = min;
    p->max = max;
    p->sum = sum;
    uint32_t deltas = m - 1;
    if (deltas == 0)
        lo = hi = 0;
    unsigned width = deltas > 0 ? bit_width((uint64_t)(hi - lo)) : 0;
    unsigned nz_width = nonzero > 0 ? bit_width((uint64_t)(s->nz_hi - s->nz_lo)) : 0;
    size_t all_bytes = ((size_t)deltas * width + 7) / 8;
    size_t nz_bytes = ((size_t)deltas + 7) / 8 + ((size_t)nonzero * nz_width + 7) / 8;
    p->zeros = nonzero > 0 && nz_bytes < all_bytes;
    p->min_delta = p->zeros ? s->nz_lo : lo;
    p->width = p->zeros ? nz_width : width;
    p->size = (bits ? 2 : 3) + (m < n ? (n + 7) / 8 : 0) + varint_size(zigzag(p->first)) +
              varint_size(zigzag(p->min_delta)) + 1 +
              varint_size((uint64_t)(p->first - p->min)) +
              varint_size((uint64_t)(p->max - p->first)) + 8 +
              (p->zeros ? nz_bytes : all_bytes);
}

/* One pass over the block: every present value's integer into ints[] (at
 * k decimals, or its ordered bits when `bits`), and everything the layout
 * needs (sum, extremes, the spread of all deltas and of the non-zero
 * ones). False as soon as a value does not round-trip at k. Always
 * inlined, so that each of the two forms is a loop of its own. */
static inline __attribute__((always_inline)) bool
int_scan(const float *values, uint32_t first, uint32_t n, int k, bool bits, int64_t *ints,
         struct decimal_plan *p)
{
    const double scale = bits ? 1.0 : pow10_table[k];
    int64_t r0;
    if (bits)
        r0 = bits_ordered(float_bits(values[first]));
    else if (!decimal_try(values[first], k, &r0))
        return false;
    ints[0] = r0;
    uint32_t m = 1;
    double sum = (double)values[first];
    struct delta_spread spread = DELTA_SPREAD_EMPTY;
    int64_t prev = r0, min = r0, max = r0;
    for (uint32_t i = first + 1; i < n; i++) {
        float x = values[i];
        if (isnan(x))
            continue;
        int64_t r;
        if (bits) {
            r = bits_ordered(float_bits(x));
        } else {
            double y = (double)x * scale;
            if (!(fabs(y) < CODEC_MAX_INT))
                return false;
            r = (int64_t)round_even(y);
            if (float_bits(codec_decimal_value(r, k)) != float_bits(x))
                return false;
        }
        ints[m] = r;
        spread_add(&spread, r - prev);
        min = r < min ? r : min;
        max = r > max ? r : max;
        sum += (double)x;
        prev = r;
        m++;
    }
    spread.m = m;
    plan_finish(p, bits, k, n, r0, min, max, sum, &spread);
    return true;
}

static bool decimal_scan(const float *values, uint32_t first, uint32_t n, int k, int64_t *ints,
                         struct decimal_plan *p)
{
    return int_scan(values, first, n, k, false, ints, p);
}

static void bits_scan(const float *values, uint32_t first, uint32_t n, int64_t *ints,
                      struct decimal_plan *p)
{
    (void)int_scan(values, first, n, 0, true, ints, p);
}

/* Plans the smallest k describing every present value (ints[] gets their
 * integers). False when no k does. */
static bool decimal_plan(const float *values, uint32_t n, int64_t *ints, struct decimal_plan *p)
{
    uint32_t first = 0;
    while (first < n && isnan(values[first]))
        first++;
    if (first == n)
        return false;
    int64_t r;
    int k = 0;
    while (k <= CODEC_MAX_DECIMALS && !decimal_try(values[first], k, &r))
        k++;
    for (; k <= CODEC_MAX_DECIMALS; k++)
        if (decimal_scan(values, first, n, k, ints, p))
            return true;
    return false;
}

/* A little-endian bit stream: values are added at the top of acc and go
 * out 32 bits at a time (bits < 32 between calls). */
struct bit_writer {
    uint8_t *out;
    uint64_t acc;
    unsigned bits;
};

static inline void bits_put(struct bit_writer *w, uint64_t v, unsigned width)
{
    if (width > 32) {           /* (widths up to CODEC_MAX_WIDTH: two steps) */
        bits_put(w, v & 0xffff, 16);
        v >>= 16;
        width -= 16;
    }
    w->acc |= v << w->bits;
    w->bits += width;
    if (w->bits >= 32) {
        le_put32(w->out, (uint32_t)w->acc);
        w->out += 4;
        w->acc >>= 32;
        w->bits -= 32;
    }
}

/* Writes the pending bits (whole bytes); returns the end of the stream. */
static inline uint8_t *bits_end(struct bit_writer *w)
{
    for (; w->bits > 0; w->bits = w->bits > 8 ? w->bits - 8 : 0) {
        *w->out++ = (uint8_t)w->acc;
        w->acc >>= 8;
    }
    return w->out;
}

/* The bitmap of present slots of values[0..n): (n + 7) / 8 bytes. */
static void present_bitmap(const float *values, uint32_t n, uint8_t *out)
{
    for (uint32_t i = 0; i < n; i += 8) {
        unsigned byte = 0;
        for (uint32_t j = i; j < i + 8 && j < n; j++)
            byte |= (unsigned)!isnan(values[j]) << (j - i);
        out[i / 8] = (uint8_t)byte;
    }
}

/* Writes the block a plan describes: ints[] are the present values'
 * integers, present_bits their slots' bitmap (written when some of the n
 * slots are missing). */
static int encode_decimal(const uint8_t *present_bits, uint32_t n, const int64_t *ints,
                          const struct decimal_plan *p, uint8_t *out)
{
    uint32_t m = p->present;
    size_t pos = 0;
    out[pos++] = (uint8_t)p->kind;
    if (p->kind == CODEC_DECIMAL)
        out[pos++] = (uint8_t)p->k;
    out[pos++] = (uint8_t)((m < n ? FLAG_BITMAP : 0) | (p->zeros ? FLAG_ZEROS : 0));
    if (m < n) {
        memcpy(out + pos, present_bits, (n + 7) / 8);
        pos += (n + 7) / 8;
    }
    pos += varint_put(out + pos, zigzag(p->first));
    pos += varint_put(out + pos, zigzag(p->min_delta));
    out[pos++] = (uint8_t)p->width;
    pos += varint_put(out + pos, (uint64_t)(p->first - p->min));
    pos += varint_put(out + pos, (uint64_t)(p->max - p->first));
    uint64_t sum_bits;
    memcpy(&sum_bits, &p->sum, 8);
    le_put64(out + pos, sum_bits);
    pos += 8;
    uint8_t *o = out + pos;
    uint64_t min_delta = (uint64_t)p->min_delta;
    if (p->zeros) {
        /* the bitmap of moving steps, then the moving steps' deltas */
        size_t bitmap_bytes = ((size_t)m - 1 + 7) / 8;
        for (uint32_t i = 1; i < m; i += 8) {
            unsigned byte = 0;
            for (uint32_t j = i; j < i + 8 && j < m; j++)
                byte |= (unsigned)(ints[j] != ints[j - 1]) << (j - i);
            o[(i - 1) / 8] = (uint8_t)byte;
        }
        struct bit_writer w = { o + bitmap_bytes, 0, 0 };
        for (uint32_t i = 1; i < m && p->width > 0; i++)
            if (ints[i] != ints[i - 1])
                bits_put(&w, (uint64_t)(ints[i] - ints[i - 1]) - min_delta, p->width);
        o = bits_end(&w);
    } else {
        struct bit_writer w = { o, 0, 0 };
        for (uint32_t i = 1; i < m && p->width > 0; i++)
            bits_put(&w, (uint64_t)(ints[i] - ints[i - 1]) - min_delta, p->width);
        o = bits_end(&w);
    }
    return (int)(o - out);
}

int codec_encode(const float *values, uint32_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n > CODEC_MAX_VALUES)
        return CODEC_ECOUNT;
    /* CONST: one bit pattern everywhere, or nothing present at all */
    bool all_missing = true, all_same = true;
    uint32_t bits0 = float_bits(values[0]);
    for (uint32_t i = 0; i < n; i++) {
        all_missing = all_missing && isnan(values[i]);
        all_same = all_same && float_bits(values[i]) == bits0;
    }
    if (all_missing || (all_same && !isnan(values[0]))) {
        if (cap < 5)
            return CODEC_ESPACE;
        out[0] = CODEC_CONST;
        le_put32(out + 1, all_missing ? float_bits(NAN) : bits0);
        return 5;
    }
    int64_t ints[CODEC_MAX_VALUES];
    struct decimal_plan plan;
    size_t raw_size = codec_bound(n);
    bool have = decimal_plan(values, n, ints, &plan);
    if (!have || plan.width > BITS_WORTH_TRYING) {
        /* values no k describes compactly: their ordered bits may still
         * move by small steps, or share their sign and exponents */
        uint32_t first = 0;
        while (isnan(values[first]))
            first++;                    /* (not all missing: not CONST) */
        struct decimal_plan bits;
        bits_scan(values, first, n, ints, &bits);
        if (!have || bits.size < plan.size)
            plan = bits;
        else
            (void)decimal_scan(values, first, n, plan.k, ints, &plan);   /* ints again */
        have = true;
    }
    if (have && plan.size < raw_size) {
        if (cap < plan.size)
            return CODEC_ESPACE;
        uint8_t present[CODEC_MAX_VALUES / 8];
        if (plan.present < n)
            present_bitmap(values, n, present);
        return encode_decimal(present, n, ints, &plan, out);
    }
    if (cap < raw_size)
        return CODEC_ESPACE;
    out[0] = CODEC_RAW;
    for (uint32_t i = 0; i < n; i++)
        le_put32(out + 1 + 4 * (size_t)i, isnan(values[i]) ? float_bits(NAN)
                                                          : float_bits(values[i]));
    return (int)raw_size;
}

/* ---- decoding ---------------------------------------------------------------- */

/* The fields of a DECIMAL block before its packed deltas, checked. */
struct decimal_header {
    bool bits;                  /* CODEC_BITS: the integers are ordered float bits */
    int k;                      /* DECIMAL: decimals */
    const uint8_t *bitmap;      /* NULL: every slot present */
    uint32_t m;                 /* present values */
    int64_t first, min_delta, min, max;
    double sum;
    unsigned width;
    const uint8_t *nonzero;     /* FLAG_ZEROS: bit j-1 set when delta j is packed; else NULL */
    uint32_t packed_count;      /* deltas packed */
    const uint8_t *packed;
    size_t packed_len;
};

/* Set bits in p[0..n), a word at a time (no popcount instruction is
 * assumed: baseline x86-64 lacks one, and the builtin then is a call per
 * word). */
static uint32_t popcount_bytes(const uint8_t *p, size_t n)
{
    uint32_t count = 0;
    while (n > 0) {
        size_t take = n < 8 ? n : 8;
        uint64_t v = 0;
        memcpy(&v, p, take);
        v = v - ((v >> 1) & 0x5555555555555555ull);
        v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
        v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
        count += (uint32_t)((v * 0x0101010101010101ull) >> 56);
        p += take;
        n -= take;
    }
    return count;
}

/* Parses and checks a DECIMAL header. With count_moves false (statistics
 * only) the bitmap of moving steps is not read, so that reading a part's
 * statistics touches its header alone: the packed length is then only
 * checked against its largest possible value, and h->packed_count is not
 * set. */
static int decimal_header(const uint8_t *in, size_t len, uint32_t n, bool count_moves,
                          struct decimal_header *h)
{
    h->bits = in[0] == CODEC_BITS;
    size_t pos = h->bits ? 2 : 3;       /* kind, [k,] flags */
    if (len < pos)
        return CODEC_ECORRUPT;
    h->k = h->bits ? 0 : in[1];
    unsigned flags = in[pos - 1];
    if (h->k > CODEC_MAX_DECIMALS || (flags & ~(FLAG_BITMAP | FLAG_ZEROS)) != 0)
        return CODEC_ECORRUPT;
    h->bitmap = NULL;
    h->m = n;
    if (flags & FLAG_BITMAP) {
        size_t bytes = (n + 7) / 8;
        if (len - pos < bytes)
            return CODEC_ECORRUPT;
        h->bitmap = in + pos;
        pos += bytes;
        h->m = 0;
        for (uint32_t i = 0; i < n; i++)
            h->m += (h->bitmap[i / 8] >> (i % 8)) & 1u;
        if (n % 8 != 0 && (h->bitmap[n / 8] >> (n % 8)) != 0)
            return CODEC_ECORRUPT;      /* bits beyond the last slot */
        if (h->m == 0 || h->m == n)
            return CODEC_ECORRUPT;      /* the encoder never writes these */
    }
    uint64_t zfirst, zmin, below, above;
    size_t used = varint_get(in + pos, len - pos, &zfirst);
    if (used == 0)
        return CODEC_ECORRUPT;
    pos += used;
    used = varint_get(in + pos, len - pos, &zmin);
    if (used == 0 || len - pos - used < 1)
        return CODEC_ECORRUPT;
    pos += used;
    h->width = in[pos++];
    if (h->width > CODEC_MAX_WIDTH || (h->m == 1 && h->width != 0))
        return CODEC_ECORRUPT;
    used = varint_get(in + pos, len - pos, &below);
    if (used == 0)
        return CODEC_ECORRUPT;
    pos += used;
    used = varint_get(in + pos, len - pos, &above);
    if (used == 0 || len - pos - used < 8)
        return CODEC_ECORRUPT;
    pos += used;
    h->first = unzigzag(zfirst);
    h->min_delta = unzigzag(zmin);
    /* min <= first <= max, all within the integer range the encoder uses */
    if (below > (uint64_t)1 << 41 || above > (uint64_t)1 << 41 ||
        h->first <= -((int64_t)1 << 41) || h->first >= ((int64_t)1 << 41))
        return CODEC_ECORRUPT;
    h->min = h->first - (int64_t)below;
    h->max = h->first + (int64_t)above;
    /* BITS: the extremes are float bits of present values (never NaN) */
    if (h->bits && (h->min < 0 || h->max > (int64_t)UINT32_MAX ||
                    isnan(bits_float(ordered_bits((uint32_t)h->min))) ||
                    isnan(bits_float(ordered_bits((uint32_t)h->max)))))
        return CODEC_ECORRUPT;
    uint64_t sum_bits = le_get64(in + pos);
    memcpy(&h->sum, &sum_bits, 8);
    pos += 8;
    uint32_t packed_deltas = h->m - 1;
    h->nonzero = NULL;
    if (flags & FLAG_ZEROS) {
        size_t bytes = ((size_t)h->m - 1 + 7) / 8;
        if (h->m < 2 || len - pos < bytes)
            return CODEC_ECORRUPT;
        h->nonzero = in + pos;
        pos += bytes;
        if (!count_moves) {
            h->packed = in + pos;
            h->packed_len = len - pos;
            if (h->packed_len > ((size_t)(h->m - 1) * h->width + 7) / 8)
                return CODEC_ECORRUPT;
            return 0;
        }
        packed_deltas = popcount_bytes(h->nonzero, bytes);
        if ((h->m - 1) % 8 != 0 && (h->nonzero[bytes - 1] >> ((h->m - 1) % 8)) != 0)
            return CODEC_ECORRUPT;      /* bits beyond the last delta */
        if (packed_deltas == 0 && h->width != 0)
            return CODEC_ECORRUPT;
    }
    h->packed = in + pos;
    h->packed_count = packed_deltas;
    h->packed_len = ((size_t)packed_deltas * h->width + 7) / 8;
    if (len - pos != h->packed_len)
        return CODEC_ECORRUPT;
    return 0;
}

/* The float of a block's integer r: r * 10^-k (the expression of
 * codec_decimal_value), or the float whose ordered bits r is. A BITS
 * integer is first held to the block's [lo, hi], whose floats the header
 * check found to be numbers: a corrupt block then reads as wrong numbers,
 * as a corrupt DECIMAL one does, never as NaN (which would be a sample
 * that codec_count counted reading as missing). */
static inline __attribute__((always_inline)) float int_value(uint64_t r, double scale, bool bits,
                                                            uint64_t lo, uint64_t hi)
{
    if (bits) {
        r = r < lo ? lo : r;
        r = r > hi ? hi : r;
        return bits_float(ordered_bits((uint32_t)r));
    }
    return (float)((double)(int64_t)r * scale);
}

/* Present value j of a block: its float into out[j], or (ints not NULL)
 * its integer into ints[j]. */
static inline __attribute__((always_inline)) void emit(float *out, int64_t *ints, uint32_t j,
                                                       uint64_t r, double scale, bool bits,
                                                       uint64_t lo, uint64_t hi)
{
    if (ints)
        ints[j] = (int64_t)r;
    else
        out[j] = int_value(r, scale, bits, lo, hi);
}

/* Decodes a checked DECIMAL or BITS block (h): with ints NULL, the n
 * values into out (missing slots NaN); otherwise the integers of the m
 * present values into ints[0..m), in slot order, and out is not used.
 * Always inlined, so that each form gets a loop of its own. */
static inline __attribute__((always_inline)) void
decode_ints(const struct decimal_header *hp, uint32_t n, float *out, bool bits, int64_t *ints)
{
    const struct decimal_header h = *hp;
    int k = h.k;
    const uint64_t lo = (uint64_t)h.min, hi = (uint64_t)h.max;
    const uint8_t *bitmap = h.bitmap;
    uint32_t m = h.m;
    unsigned width = h.width;
    size_t packed = h.packed_len;
    /* One pass: the running sum is the only chain from one value to the
     * next; each value's float is computed beside it. The present values
     * go to the front of out, then move to their slots. Unsigned
     * arithmetic: a corrupt block gives wrong values, never UB. */
    double scale = inv_pow10_table[k];
    uint64_t r = (uint64_t)h.first;
    uint64_t min_delta = (uint64_t)h.min_delta;
    emit(out, ints, 0, r, scale, bits, lo, hi);   /* DECIMAL: = codec_decimal_value(r, k) */
    if (h.nonzero) {
        /* The steps that move are the bitmap's set bits: each gets the
         * next packed delta (plus min_delta), found by walking the set
         * bits a word at a time; the others stay 0. Then one prefix sum
         * over the steps, as for a block without repeats. A window of 256
         * steps at a time keeps the scratch small. */
        enum { WINDOW = 256 };
        uint64_t steps[WINDOW];
        uint64_t mask = width ? ~(uint64_t)0 >> (64 - width) : 0;
        const uint8_t *src = h.packed;
        uint64_t bit = 0;
        uint32_t nsteps = m - 1;
        for (uint32_t w0 = 0; w0 < nsteps; w0 += WINDOW) {
            uint32_t wn = nsteps - w0 < WINDOW ? nsteps - w0 : WINDOW;
            memset(steps, 0, (size_t)wn * sizeof steps[0]);
            size_t bytes = ((size_t)wn + 7) / 8;
            for (size_t at = 0; at < bytes; at += 8) {
                size_t take = bytes - at < 8 ? bytes - at : 8;
                uint64_t moving = le_get(h.nonzero + w0 / 8 + at, (int)take);
                while (moving) {
                    uint32_t t = (uint32_t)(at * 8) + (uint32_t)__builtin_ctzll(moving);
                    moving &= moving - 1;
                    size_t byte = (size_t)(bit >> 3);
                    uint64_t word = 0;
                    if (byte + 8 <= packed) {
                        word = le_get64(src + byte);
                    } else {
                        for (size_t b = 0; byte + b < packed; b++)
                            word |= (uint64_t)src[byte + b] << (8 * b);
                    }
                    steps[t] = ((word >> (bit & 7)) & mask) + min_delta;
                    bit += width;
                }
            }
            for (uint32_t j = 0; j < wn; j++) {
                r += steps[j];
                emit(out, ints, w0 + j + 1, r, scale, bits, lo, hi);
            }
        }
    } else if (width == 0) {
        for (uint32_t j = 1; j < m; j++) {
            r += min_delta;
            emit(out, ints, j, r, scale, bits, lo, hi);
        }
    } else {
        /* Each delta is read with one 8-byte load at its byte offset (no
         * per-byte loop, no data-dependent branch): width + 7 <= 49 bits
         * fit. The deltas whose 8 bytes lie inside the input come first,
         * in a loop without a bounds check; the last few are assembled
         * byte by byte. */
        uint64_t mask = ~(uint64_t)0 >> (64 - width);
        const uint8_t *src = h.packed;
        uint32_t fast = packed >= 8 ? (uint32_t)(((packed - 8) * 8) / width) + 1 : 0;
        if (fast > m - 1)
            fast = m - 1;
        uint64_t bit = 0;
        uint32_t j = 1;
        for (; j <= fast; j++, bit += width) {
            uint64_t word = le_get64(src + (bit >> 3));
            r += ((word >> (bit & 7)) & mask) + min_delta;
            emit(out, ints, j, r, scale, bits, lo, hi);
        }
        for (; j < m; j++, bit += width) {
            size_t byte = (size_t)(bit >> 3);
            uint64_t word = 0;
            for (size_t b = 0; byte + b < packed; b++)
                word |= (uint64_t)src[byte + b] << (8 * b);
            r += ((word >> (bit & 7)) & mask) + min_delta;
            emit(out, ints, j, r, scale, bits, lo, hi);
        }
    }
    if (bitmap && !ints) {
        /* spread from the back, so nothing is overwritten before it moved */
        uint32_t j = m;
        for (uint32_t i = n; i-- > 0;)
            out[i] = (bitmap[i / 8] >> (i % 8)) & 1u ? out[--j] : NAN;
    }
}

static int decode_decimal(const uint8_t *in, size_t len, uint32_t n, float *out)
{
    struct decimal_header h;
    int rc = decimal_header(in, len, n, true, &h);
    if (rc != 0)
        return rc;
    if (h.bits)
        decode_ints(&h, n, out, true, NULL);
    else
        decode_ints(&h, n, out, false, NULL);
    return 0;
}

int codec_decode(const uint8_t *in, size_t len, uint32_t n, float *out)
{
    if (n == 0 || n > CODEC_MAX_VALUES)
        return CODEC_ECOUNT;
    if (len == 0)
        return CODEC_ECORRUPT;
    switch (in[0]) {
    case CODEC_RAW:
        if (len != codec_bound(n))
            return CODEC_ECORRUPT;
        for (uint32_t i = 0; i < n; i++)
            out[i] = bits_float(le_get32(in + 1 + 4 * (size_t)i));
        return 0;
    case CODEC_CONST: {
        if (len != 5)
            return CODEC_ECORRUPT;
        float v = bits_float(le_get32(in + 1));
        for (uint32_t i = 0; i < n; i++)
            out[i] = v;
        return 0;
    }
    case CODEC_DECIMAL:
    case CODEC_BITS:
        return decode_decimal(in, len, n, out);
    default:
        return CODEC_ECORRUPT;
    }
}

/* ---- extending a block ------------------------------------------------------- */

/* Adds the steps into ints[from .. to) to the spread and those integers to
 * [*min, *max] (unsigned steps: the integers may be a corrupt block's). */
static inline __attribute__((always_inline)) void
spread_over(const int64_t *ints, uint32_t from, uint32_t to, struct delta_spread *s, int64_t *min,
            int64_t *max)
{
    struct delta_spread acc = *s;
    int64_t lo = *min, hi = *max;
    for (uint32_t i = from; i < to; i++) {
        int64_t r = ints[i];
        spread_add(&acc, (int64_t)((uint64_t)r - (uint64_t)ints[i - 1]));
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    *s = acc;
    *min = lo;
    *max = hi;
}

/* The common case of codec_extend: a DECIMAL block and new values that
 * all have its decimals. The block's integers are taken as they are
 * instead of being converted to floats and back, and its sum is carried
 * on (the sum is of the floats in slot order, so adding the new ones to it
 * gives the same double as adding them all). Returns the length written,
 * 0 when this case does not apply (a new value needs more decimals, or the
 * result would not be DECIMAL: codec_encode then decides), or a negative
 * codec_error. */
static int extend_decimal(const uint8_t *in, size_t len, uint32_t n_old, const float *more,
                          uint32_t n_more, uint8_t *out, size_t cap)
{
    struct decimal_header h;
    int rc = decimal_header(in, len, n_old, true, &h);
    if (rc != 0)
        return rc;
    if (h.width > BITS_WORTH_TRYING)
        return 0;       /* the steps stay as wide: codec_encode compares with BITS */
    int64_t ints[CODEC_MAX_VALUES];
    decode_ints(&h, n_old, NULL, false, ints);
    uint32_t m = h.m, n = n_old + n_more;
    double sum = h.sum;
    for (uint32_t i = 0; i < n_more; i++) {
        float x = more[i];
        if (isnan(x))
            continue;
        if (!decimal_try(x, h.k, &ints[m]))
            return 0;
        sum += (double)x;
        m++;
    }
    /* the spread of the deltas, as int_scan finds it: first over the
     * block's own integers (unsigned steps: those of a corrupt block may be
     * anything), whose extremes must be the header's, then on over the new
     * ones */
    int64_t min = ints[0], max = ints[0];
    struct delta_spread spread = DELTA_SPREAD_EMPTY;
    spread_over(ints, 1, h.m, &spread, &min, &max);
    if (min != h.min || max != h.max)
        return CODEC_ECORRUPT;          /* deltas that do not add up to the header's range */
    spread_over(ints, h.m, m, &spread, &min, &max);
    spread.m = m;
    struct decimal_plan plan;
    plan_finish(&plan, false, h.k, n, ints[0], min, max, sum, &spread);
    if (plan.width > BITS_WORTH_TRYING || plan.size >= codec_bound(n))
        return 0;
    if (cap < plan.size)
        return CODEC_ESPACE;
    uint8_t present[CODEC_MAX_VALUES / 8];
    if (m < n) {
        memset(present, 0, (n + 7) / 8);
        for (uint32_t i = 0; i < n; i++) {
            bool here = i < n_old ? !h.bitmap || (h.bitmap[i / 8] >> (i % 8) & 1u)
                                  : !isnan(more[i - n_old]);
            present[i / 8] |= (uint8_t)((unsigned)here << (i % 8));
        }
    }
    return encode_decimal(present, n, ints, &plan, out);
}

int codec_extend(const uint8_t *in, size_t len, uint32_t n_old, const float *more,
                 uint32_t n_more, uint8_t *out, size_t cap)
{
    if (n_old == 0 || n_more == 0 || n_old > CODEC_MAX_VALUES ||
        n_more > CODEC_MAX_VALUES - n_old)
        return CODEC_ECOUNT;
    if (len > 0 && in[0] == CODEC_DECIMAL) {
        int rc = extend_decimal(in, len, n_old, more, n_more, out, cap);
        if (rc != 0)
            return rc;
    }
    float values[CODEC_MAX_VALUES];
    int rc = codec_decode(in, len, n_old, values);
    if (rc != 0)
        return rc;
    memcpy(values + n_old, more, (size_t)n_more * sizeof(float));
    return codec_encode(values, n_old + n_more, out, cap);
}

/* codec_concat's way for DECIMAL blocks of one k: their integers joined,
 * each later block's values added to the first one's sum in slot order.
 * Returns the length, 0 when the blocks are not all such (or the joined
 * block would be compared with BITS or RAW by codec_encode), or
 * CODEC_ECORRUPT / CODEC_ESPACE. */
static int concat_decimal(const uint8_t *const *blocks, const size_t *lens, const uint32_t *ns,
                          uint32_t count, uint8_t *out, size_t cap)
{
    int64_t ints[CODEC_MAX_VALUES];
    uint8_t present[CODEC_MAX_VALUES / 8];
    uint32_t m = 0, n = 0;
    double sum = 0;
    int k = 0;
    int64_t min = 0, max = 0;
    struct delta_spread spread = DELTA_SPREAD_EMPTY;
    bool gaps = false;          /* present[] holds the slots so far */
    for (uint32_t b = 0; b < count; b++) {
        if (lens[b] == 0 || blocks[b][0] != CODEC_DECIMAL)
            return 0;
        struct decimal_header h;
        int rc = decimal_header(blocks[b], lens[b], ns[b], true, &h);
        if (rc != 0)
            return rc;
        if (b == 0)
            k = h.k;
        if (h.k != k || h.width > BITS_WORTH_TRYING)
            return 0;
        decode_ints(&h, ns[b], NULL, false, ints + m);
        /* the steps into and inside the block; its own extremes must be
         * its header's (those of a corrupt block may be anything) */
        int64_t lo = ints[m], hi = ints[m];
        spread_over(ints, m ? m : 1, m + h.m, &spread, &lo, &hi);
        if (lo != h.min || hi != h.max)
            return CODEC_ECORRUPT;
        min = b == 0 || lo < min ? lo : min;
        max = b == 0 || hi > max ? hi : max;
        if (b == 0)
            sum = h.sum;
        else
            for (uint32_t j = 0; j < h.m; j++)
                sum += (double)codec_decimal_value(ints[m + j], k);
        /* the bitmap of present slots, once a block has gaps */
        if (h.bitmap && !gaps) {
            memset(present, 0, sizeof present);
            for (uint32_t i = 0; i < n; i++)
                present[i / 8] |= (uint8_t)(1u << (i % 8));
            gaps = true;
        }
        if (gaps)
            for (uint32_t i = 0; i < ns[b]; i++) {
                bool here = !h.bitmap || (h.bitmap[i / 8] >> (i % 8) & 1u);
                present[(n + i) / 8] |= (uint8_t)((unsigned)here << ((n + i) % 8));
            }
        m += h.m;
        n += ns[b];
    }
    spread.m = m;
    struct decimal_plan plan;
    plan_finish(&plan, false, k, n, ints[0], min, max, sum, &spread);
    if (plan.width > BITS_WORTH_TRYING || plan.size >= codec_bound(n))
        return 0;
    if (cap < plan.size)
        return CODEC_ESPACE;
    return encode_decimal(present, n, ints, &plan, out);
}

int codec_concat(const uint8_t *const *blocks, const size_t *lens, const uint32_t *ns,
                 uint32_t count, uint8_t *out, size_t cap)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < count; b++) {
        if (ns[b] == 0 || ns[b] > CODEC_MAX_VALUES - n)
            return CODEC_ECOUNT;
        n += ns[b];
    }
    if (count == 0)
        return CODEC_ECOUNT;
    int rc = concat_decimal(blocks, lens, ns, count, out, cap);
    if (rc != 0)
        return rc;
    float values[CODEC_MAX_VALUES];
    for (uint32_t b = 0, at = 0; b < count; at += ns[b], b++) {
        rc = codec_decode(blocks[b], lens[b], ns[b], values + at);
        if (rc != 0)
            return rc;
    }
    return codec_encode(values, n, out, cap);
}

/* ---- statistics ---------------------------------------------------------------- */

/* The statistics' order: that of the values, with -0 below +0. */
static inline bool below(float a, float b)
{
    return a < b || (a == 0 && b == 0 && signbit(a) && !signbit(b));
}

/* Adds one present value (x is not NaN). */
static void stats_add(struct codec_stats *acc, float x)
{
    if (acc->count == 0) {
        acc->min = acc->max = x;
    } else {
        if (below(x, acc->min))
            acc->min = x;
        if (below(acc->max, x))
            acc->max = x;
    }
    acc->count++;
    acc->sum += (double)x;
}

void codec_stats_values(const float *values, uint32_t n, struct codec_stats *acc)
{
    uint32_t i = 0;
    if (acc->count == 0) {
        while (i < n && isnan(values[i]))
            i++;
        if (i == n)
            return;
        stats_add(acc, values[i++]);
    }
    /* Plain comparisons in the loop (no branch on a value's sign): which
     * zero an extreme that compares equal to 0 is gets settled after it,
     * from whether a -0 or a +0 was seen. */
    uint64_t count = acc->count;
    double sum = acc->sum;
    float lo = acc->min, hi = acc->max;
    bool neg_zero = lo == 0 && signbit(lo), pos_zero = hi == 0 && !signbit(hi);
    for (; i < n; i++) {
        float x = values[i];
        if (isnan(x))
            continue;
        count++;
        sum += (double)x;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        neg_zero |= x == 0 && signbit(x);
        pos_zero |= x == 0 && !signbit(x);
    }
    if (lo == 0)
        lo = neg_zero ? -0.0f : 0.0f;
    if (hi == 0)
        hi = pos_zero ? 0.0f : -0.0f;
    acc->count = count;
    acc->sum = sum;
    acc->min = lo;
    acc->max = hi;
}

int codec_count(const uint8_t *in, size_t len, uint32_t n, uint32_t *present)
{
    if (n == 0 || n > CODEC_MAX_VALUES)
        return CODEC_ECOUNT;
    if (len == 0)
        return CODEC_ECORRUPT;
    switch (in[0]) {
    case CODEC_RAW: {
        if (len != codec_bound(n))
            return CODEC_ECORRUPT;
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t bits = le_get32(in + 1 + 4 * (size_t)i);
            m += (bits & 0x7f800000u) != 0x7f800000u || (bits & 0x7fffffu) == 0;
        }
        *present = m;
        return 0;
    }
    case CODEC_CONST:
        if (len != 5)
            return CODEC_ECORRUPT;
        *present = isnan(bits_float(le_get32(in + 1))) ? 0 : n;
        return 0;
    case CODEC_DECIMAL:
    case CODEC_BITS: {
        struct decimal_header h;
        int rc = decimal_header(in, len, n, true, &h);
        if (rc == 0)
            *present = h.m;
        return rc;
    }
    default:
        return CODEC_ECORRUPT;
    }
}

int codec_stats(const uint8_t *in, size_t len, uint32_t n, struct codec_stats *acc)
{
    if (n == 0 || n > CODEC_MAX_VALUES)
        return CODEC_ECOUNT;
    if (len > 0 && (in[0] == CODEC_DECIMAL || in[0] == CODEC_BITS)) {
        struct decimal_header h;
        int rc = decimal_header(in, len, n, false, &h);
        if (rc != 0)
            return rc;
        double scale = inv_pow10_table[h.k];
        float lo = int_value((uint64_t)h.min, scale, h.bits, (uint64_t)h.min, (uint64_t)h.max);
        float hi = int_value((uint64_t)h.max, scale, h.bits, (uint64_t)h.min, (uint64_t)h.max);
        if (acc->count == 0) {
            acc->min = lo;
            acc->max = hi;
        } else {
            if (below(lo, acc->min))
                acc->min = lo;
            if (below(acc->max, hi))
                acc->max = hi;
        }
        acc->count += h.m;
        acc->sum += h.sum;
        return 0;
    }
    /* RAW and CONST: decoding them is a copy */
    float values[CODEC_MAX_VALUES];
    int rc = codec_decode(in, len, n, values);
    if (rc != 0)
        return rc;
    codec_stats_values(values, n, acc);
    return 0;
}
