/*
 * jsonw — see jsonw.h. String escaping follows Go's encoding/json (HTML-safe
 * mode, the default there) byte for byte, so responses match upstream.
 */
#include "util/jsonw.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/numfmt.h"

#define JBUF_MIN_CAP 64

/*
 * Spare large buffers. A query's answer is written in parts of about
 * 256 KB into a buffer of up to twice that, and a fresh allocation of
 * that size is new memory: the kernel maps and zeroes it page by page
 * while the answer is written (about 120 page faults for a 64-series day),
 * and the allocator hands it back (madvise) when it is freed. So buffers
 * of JBUF_SPARE_MIN bytes and more are kept when they are freed and taken
 * again by the next buffer that grows that large: at most JBUF_SPARES of
 * them, each at most JBUF_SPARE_MAX bytes, shared by every thread under
 * one lock (taken only for such sizes, a few times an answer). What they
 * hold, up to 4 MB, stays allocated for the process's life.
 */
#define JBUF_SPARE_MIN (256 * 1024)
#define JBUF_SPARE_MAX (1024 * 1024)
#define JBUF_SPARES 4

static struct {
    pthread_mutex_t lock;
    char *data[JBUF_SPARES];
    size_t cap[JBUF_SPARES];
} spares = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A kept buffer of at least need bytes (its size in *cap), or NULL. */
static char *spare_take(size_t need, size_t *cap)
{
    char *data = NULL;
    pthread_mutex_lock(&spares.lock);
    for (int i = 0; i < JBUF_SPARES; i++) {
        if (spares.data[i] != NULL && spares.cap[i] >= need) {
            data = spares.data[i];
            *cap = spares.cap[i];
            spares.data[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&spares.lock);
    return data;
}

/* Keeps data (cap bytes) for a later buffer if it is of a size worth
 * keeping and there is room (in place of a smaller one); frees it
 * otherwise. */
static void spare_give(char *data, size_t cap)
{
    if (data == NULL)
        return;
    if (cap < JBUF_SPARE_MIN || cap > JBUF_SPARE_MAX) {
        free(data);
        return;
    }
    pthread_mutex_lock(&spares.lock);
    int smallest = 0;
    for (int i = 1; i < JBUF_SPARES; i++)
        if (spares.data[i] == NULL ||
            (spares.data[smallest] != NULL && spares.cap[i] < spares.cap[smallest]))
            smallest = i;
    char *drop = data;
    if (spares.data[smallest] == NULL || spares.cap[smallest] < cap) {
        drop = spares.data[smallest];
        spares.data[smallest] = data;
        spares.cap[smallest] = cap;
    }
    pthread_mutex_unlock(&spares.lock);
    free(drop);
}

void jbuf_init(struct jbuf *b, size_t initial_capacity)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
    if (initial_capacity > 0) {
        b->data = malloc(initial_capacity);
        if (b->data == NULL)
            b->failed = true;
        else
            b->cap = initial_capacity;
    }
}

void jbuf_free(struct jbuf *b)
{
    spare_give(b->data, b->cap);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void jbuf_reset(struct jbuf *b)
{
    b->len = 0;
}

bool jbuf_grow(struct jbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->cap - b->len >= extra)
        return true;
    if (extra > SIZE_MAX - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap < JBUF_MIN_CAP ? JBUF_MIN_CAP : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap >= JBUF_SPARE_MIN) {
        size_t spare_cap;
        char *spare = spare_take(need, &spare_cap);
        if (spare != NULL) {
            if (b->len > 0)
                memcpy(spare, b->data, b->len);
            spare_give(b->data, b->cap);
            b->data = spare;
            b->cap = spare_cap;
            return true;
        }
    }
    if (b->len == 0) {
        /* nothing to keep: realloc would copy the old bytes for nothing
         * (a streamed answer reuses its part buffer this way) */
        spare_give(b->data, b->cap);
        b->data = NULL;
        b->cap = 0;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void jbuf_append(struct jbuf *b, const void *data, size_t len)
{
    if (len == 0 || !jbuf_reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void jbuf_puts(struct jbuf *b, const char *s)
{
    jbuf_append(b, s, strlen(s));
}

void jbuf_putc(struct jbuf *b, char c)
{
    if (!jbuf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *dst = b->data ? b->data + b->len : NULL;
    int n = vsnprintf(dst, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        /* +1 for vsnprintf's terminator, which is not kept */
        if (!jbuf_reserve(b, (size_t)n + 1))
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not one (Go's utf8.DecodeRune rules: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t jbuf_utf8_len(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0xC2)
        return 0; /* ASCII is handled by the caller; 0x80..0xC1 never start a sequence */
    if (c < 0xE0) {
        n = 2;
        *cp = c & 0x1F;
    } else if (c < 0xF0) {
        n = 3;
        *cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        *cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    *cp = (*cp << 6) | (s[1] & 0x3F);
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return n;
}

void jbuf_string(struct jbuf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    /* Runs of bytes that need no escaping are copied with one memcpy. */
    jbuf_putc(b, '"');
    size_t i = 0, start = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
            i++;
            continue;
        }
        if (c < 0x80) {
            jbuf_append(b, s + start, i - start);
            char esc[6] = {'\\', 0, 0, 0, 0, 0};
            size_t elen = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xF];
                elen = 6;
            }
            jbuf_append(b, esc, elen);
            i++;
            start = i;
            continue;
        }
        uint32_t cp = 0;
        size_t n = jbuf_utf8_len(s + i, len - i, &cp);
        if (n == 0) {
            jbuf_append(b, s + start, i - start);
            jbuf_append(b, "\\ufffd", 6);
            i++;
            start = i;
        } else if (cp == 0x2028 || cp == 0x2029) {
            jbuf_append(b, s + start, i - start);
            jbuf_append(b, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += n;
            start = i;
        } else {
            i += n;
        }
    }
    jbuf_append(b, s + start, i - start);
    jbuf_putc(b, '"');
}

void jbuf_int(struct jbuf *b, int64_t v)
{
    if (!jbuf_reserve(b, 21))
        return;
    b->len += numfmt_int(b->data + b->len, v);
}

/* Room for one number below 1e15 in fixed notation plus a comma. */
#define JBUF_SMALL_FIXED 32

void jbuf_fixed_list(struct jbuf *b, const double *values, size_t n, double scale,
                     int decimals)
{
    if (!jbuf_reserve(b, n * JBUF_SMALL_FIXED))
        return;
    for (size_t i = 0; i < n; i++) {
        double v = values[i] * scale; /* exact when scale is 1 */
        if (i > 0)
            b->data[b->len++] = ',';
        if (!isfinite(v)) {
            memcpy(b->data + b->len, "null", 4);
            b->len += 4;
            continue;
        }
        if (fabs(v) >= 1e15 && !jbuf_reserve(b, NUMFMT_FIXED_MAX + (n - i) * JBUF_SMALL_FIXED))
            return;
        b->len += numfmt_fixed(b->data + b->len, v, decimals);
    }
}

void jbuf_fixed(struct jbuf *b, double v, int decimals)
{
    if (!isfinite(v)) {
        jbuf_append(b, "null", 4);
        return;
    }
    if (!jbuf_reserve(b, NUMFMT_FIXED_MAX))
        return;
    b->len += numfmt_fixed(b->data + b->len, v, decimals);
}

void jbuf_float32_shortest(struct jbuf *b, float v)
{
    if (!isfinite(v)) {
        jbuf_append(b, "null", 4);
        return;
    }
    if (!jbuf_reserve(b, 32))
        return;
    b->len += numfmt_float32_shortest(b->data + b->len, v);
}

void jbuf_adopt(struct jbuf *b, char *data, size_t len)
{
    spare_give(b->data, b->cap);
    b->data = data;
    b->len = len;
    b->cap = len;
    b->failed = false;
}

char *jbuf_steal(struct jbuf *b, size_t *len)
{
    char *out = NULL;
    if (!b->failed && jbuf_reserve(b, 1)) {
        b->data[b->len] = '\0';
        out = b->data;
        if (len != NULL)
            *len = b->len;
        b->data = NULL;
    } else if (len != NULL) {
        *len = 0;
    }
    jbuf_free(b);
    return out;
}
