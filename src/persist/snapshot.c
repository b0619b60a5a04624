/*
 * snapshot — see snapshot.h. Layout (docs/file-formats.md, little-endian):
 *   u32 magic | i64 from | i64 to | level
 *   level:  u32 num_metrics | metric... | u32 num_children | (str16 name, level)...
 *   metric: str16 name | i64 frequency | i64 start | u32 n | n x u32 float32 bits
 *
 * The decoder treats its input as hostile: every count is checked against
 * the bytes that remain before anything is allocated, nesting is bounded so
 * the recursion cannot exhaust the stack, and the first problem ends the
 * decode with a message naming the byte offset. Beyond the format itself it
 * rejects what no correct writer produces and the store could not hold:
 * names containing NUL, duplicate names within a level, a non-positive
 * frequency, and bytes after the host level.
 */
#include "persist/snapshot.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Levels below the host: the store uses two (type, subtype). */
#define SNAPSHOT_MAX_DEPTH 8

/* Smallest encodings, used to bound counts by the remaining input. */
#define SNAPSHOT_MIN_METRIC (2 + 8 + 8 + 4)
#define SNAPSHOT_MIN_CHILD (2 + 4 + 4)

/* ---- encoding ------------------------------------------------------------------ */

static void snap_put_u16(struct jbuf *out, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    jbuf_append(out, b, sizeof b);
}

static void snap_put_u32(struct jbuf *out, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    jbuf_append(out, b, sizeof b);
}

static void snap_put_i64(struct jbuf *out, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    jbuf_append(out, b, sizeof b);
}

static int snap_put_str16(struct jbuf *out, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX)
        return SNAPSHOT_ETOO_LONG;
    snap_put_u16(out, (uint16_t)n);
    jbuf_append(out, s, n);
    return 0;
}

static void snap_put_values(struct jbuf *out, const float *v, uint32_t n)
{
    if (n == 0)
        return;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    jbuf_append(out, v, (size_t)n * sizeof *v);
#else
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        snap_put_u32(out, bits);
    }
#endif
}

static int snap_encode_level(const struct ckpt_level *l, struct jbuf *out)
{
    if (l->series_count > UINT32_MAX || l->child_count > UINT32_MAX)
        return SNAPSHOT_ETOO_LONG;
    snap_put_u32(out, (uint32_t)l->series_count);
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *s = &l->series[i];
        int rc = snap_put_str16(out, s->metric);
        if (rc != 0)
            return rc;
        snap_put_i64(out, s->frequency);
        snap_put_i64(out, s->start);
        snap_put_u32(out, s->count);
        snap_put_values(out, s->values, s->count);
    }
    snap_put_u32(out, (uint32_t)l->child_count);
    for (size_t i = 0; i < l->child_count; i++) {
        int rc = snap_put_str16(out, l->children[i].name);
        if (rc == 0)
            rc = snap_encode_level(&l->children[i], out);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int snapshot_encode(struct ckpt_file *f, struct jbuf *out)
{
    size_t mark = out->len;
    ckpt_level_sort(&f->host);
    snap_put_u32(out, SNAPSHOT_MAGIC);
    snap_put_i64(out, f->from);
    snap_put_i64(out, f->to);
    int rc = snap_encode_level(&f->host, out);
    if (rc == 0 && out->failed)
        rc = SNAPSHOT_ENOMEM;
    if (rc != 0 && !out->failed)
        out->len = mark;
    return rc;
}

/* ---- decoding ------------------------------------------------------------------ */

struct snap_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    char *err;
    size_t err_len;
};

static size_t snap_left(const struct snap_reader *r)
{
    return r->len - r->pos;
}

__attribute__((format(printf, 3, 4)))
static int snap_fail(struct snap_reader *r, size_t offset, const char *fmt, ...)
{
    if (r->err == NULL || r->err_len == 0)
        return SNAPSHOT_EFORMAT;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->err, r->err_len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < r->err_len)
        snprintf(r->err + n, r->err_len - (size_t)n, " at offset %zu", offset);
    return SNAPSHOT_EFORMAT;
}

static int snap_need(struct snap_reader *r, size_t n, const char *what)
{
    if (snap_left(r) < n)
        return snap_fail(r, r->pos, "truncated %s (%zu of %zu bytes)", what, snap_left(r), n);
    return 0;
}

static uint64_t snap_take_le(struct snap_reader *r, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | r->p[r->pos + i];
    r->pos += n;
    return v;
}

static int snap_get_u16(struct snap_reader *r, uint16_t *v, const char *what)
{
    int rc = snap_need(r, 2, what);
    if (rc == 0)
        *v = (uint16_t)snap_take_le(r, 2);
    return rc;
}

static int snap_get_u32(struct snap_reader *r, uint32_t *v, const char *what)
{
    int rc = snap_need(r, 4, what);
    if (rc == 0)
        *v = (uint32_t)snap_take_le(r, 4);
    return rc;
}

static int snap_get_i64(struct snap_reader *r, int64_t *v, const char *what)
{
    int rc = snap_need(r, 8, what);
    if (rc == 0)
        *v = (int64_t)snap_take_le(r, 8);
    return rc;
}

/* A str16 as a fresh NUL-terminated string; NUL inside is rejected because
 * the in-memory names are C strings. */
static int snap_get_name(struct snap_reader *r, char **out, const char *what)
{
    size_t at = r->pos;
    uint16_t n;
    int rc = snap_get_u16(r, &n, what);
    if (rc != 0)
        return rc;
    if (snap_left(r) < n)
        return snap_fail(r, at, "%s length %u exceeds the remaining %zu bytes", what, n,
                         snap_left(r));
    const uint8_t *s = r->p + r->pos;
    if (memchr(s, '\0', n) != NULL)
        return snap_fail(r, at, "%s contains a NUL byte", what);
    char *name = malloc((size_t)n + 1);
    if (name == NULL)
        return SNAPSHOT_ENOMEM;
    memcpy(name, s, n);
    name[n] = '\0';
    r->pos += n;
    *out = name;
    return 0;
}

static int snap_get_values(struct snap_reader *r, float *v, uint32_t n)
{
    int rc = snap_need(r, (size_t)n * sizeof *v, "values");
    if (rc != 0)
        return rc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(v, r->p + r->pos, (size_t)n * sizeof *v);
    r->pos += (size_t)n * sizeof *v;
#else
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)snap_take_le(r, 4);
        memcpy(&v[i], &bits, sizeof bits);
    }
#endif
    return 0;
}

/* Printable excerpt of a name for error messages. */
static const char *snap_show(const char *name, char *buf, size_t buf_len)
{
    size_t i = 0;
    for (; name[i] != '\0' && i + 4 < buf_len; i++) {
        unsigned char c = (unsigned char)name[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (name[i] != '\0' && i >= 3) {
        memcpy(buf + i - 3, "...", 3);
    }
    buf[i] = '\0';
    return buf;
}

static int snap_decode_series(struct snap_reader *r, struct ckpt_series *s)
{
    size_t at = r->pos;
    int rc = snap_get_name(r, &s->metric, "metric name");
    if (rc == 0)
        rc = snap_get_i64(r, &s->frequency, "frequency");
    if (rc == 0 && s->frequency <= 0) {
        char show[48];
        return snap_fail(r, at, "metric '%s' has frequency %" PRId64 " (must be positive)",
                         snap_show(s->metric, show, sizeof show), s->frequency);
    }
    if (rc == 0)
        rc = snap_get_i64(r, &s->start, "start");
    size_t count_at = r->pos;
    uint32_t n = 0;
    if (rc == 0)
        rc = snap_get_u32(r, &n, "num_values");
    if (rc != 0)
        return rc;
    if (n > snap_left(r) / sizeof(float))
        return snap_fail(r, count_at, "num_values %" PRIu32 " exceeds the remaining %zu bytes", n,
                         snap_left(r));
    if (n == 0)
        return 0;
    s->values = malloc((size_t)n * sizeof(float));
    if (s->values == NULL)
        return SNAPSHOT_ENOMEM;
    s->count = n;
    return snap_get_values(r, s->values, n);
}

static int snap_series_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ckpt_series *)a)->metric, ((const struct ckpt_series *)b)->metric);
}

static int snap_level_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ckpt_level *)a)->name, ((const struct ckpt_level *)b)->name);
}

static int snap_check_unique(struct snap_reader *r, const struct ckpt_level *l, size_t at)
{
    char show[48];
    for (size_t i = 1; i < l->series_count; i++)
        if (strcmp(l->series[i - 1].metric, l->series[i].metric) == 0)
            return snap_fail(r, at, "duplicate metric '%s' in the level",
                             snap_show(l->series[i].metric, show, sizeof show));
    for (size_t i = 1; i < l->child_count; i++)
        if (strcmp(l->children[i - 1].name, l->children[i].name) == 0)
            return snap_fail(r, at, "duplicate child '%s' in the level",
                             snap_show(l->children[i].name, show, sizeof show));
    return 0;
}

/* Counts are stored before the arrays are filled, over zeroed arrays, so
 * that ckpt_level_free() can release a partially decoded level. */
static int snap_decode_level(struct snap_reader *r, struct ckpt_level *l, int depth)
{
    size_t level_at = r->pos;
    uint32_t n;
    int rc = snap_get_u32(r, &n, "num_metrics");
    if (rc != 0)
        return rc;
    if (n > snap_left(r) / SNAPSHOT_MIN_METRIC)
        return snap_fail(r, level_at, "num_metrics %" PRIu32 " exceeds the remaining %zu bytes",
                         n, snap_left(r));
    if (n > 0) {
        l->series = calloc(n, sizeof *l->series);
        if (l->series == NULL)
            return SNAPSHOT_ENOMEM;
        l->series_count = n;
        for (uint32_t i = 0; i < n; i++) {
            rc = snap_decode_series(r, &l->series[i]);
            if (rc != 0)
                return rc;
        }
    }
    size_t children_at = r->pos;
    rc = snap_get_u32(r, &n, "num_children");
    if (rc != 0)
        return rc;
    if (n > snap_left(r) / SNAPSHOT_MIN_CHILD)
        return snap_fail(r, children_at,
                         "num_children %" PRIu32 " exceeds the remaining %zu bytes", n,
                         snap_left(r));
    if (n > 0) {
        if (depth >= SNAPSHOT_MAX_DEPTH)
            return snap_fail(r, children_at, "levels nested deeper than %d",
                             SNAPSHOT_MAX_DEPTH);
        l->children = calloc(n, sizeof *l->children);
        if (l->children == NULL)
            return SNAPSHOT_ENOMEM;
        l->child_count = n;
        for (uint32_t i = 0; i < n; i++) {
            rc = snap_get_name(r, &l->children[i].name, "child name");
            if (rc == 0)
                rc = snap_decode_level(r, &l->children[i], depth + 1);
            if (rc != 0)
                return rc;
        }
    }
    /* sorted here, level by level, so duplicates become neighbours */
    if (l->series_count > 1)
        qsort(l->series, l->series_count, sizeof *l->series, snap_series_cmp);
    if (l->child_count > 1)
        qsort(l->children, l->child_count, sizeof *l->children, snap_level_cmp);
    return snap_check_unique(r, l, level_at);
}

int snapshot_decode(const void *data, size_t len, struct ckpt_file *out, char *err,
                    size_t err_len)
{
    struct snap_reader r = {.p = data, .len = len, .pos = 0, .err = err, .err_len = err_len};
    memset(out, 0, sizeof *out);
    if (err != NULL && err_len > 0)
        err[0] = '\0';

    uint32_t magic = 0;
    int rc = snap_get_u32(&r, &magic, "header");
    if (rc == 0 && magic != SNAPSHOT_MAGIC)
        rc = snap_fail(&r, 0, "bad magic 0x%08" PRIx32 " (expected 0x%08x)", magic,
                       SNAPSHOT_MAGIC);
    if (rc == 0)
        rc = snap_get_i64(&r, &out->from, "header");
    if (rc == 0)
        rc = snap_get_i64(&r, &out->to, "header");
    if (rc == 0) {
        out->host.name = calloc(1, 1);
        if (out->host.name == NULL)
            rc = SNAPSHOT_ENOMEM;
    }
    if (rc == 0)
        rc = snap_decode_level(&r, &out->host, 0);
    if (rc == 0 && r.pos != len)
        rc = snap_fail(&r, r.pos, "%zu trailing bytes after the host level", len - r.pos);
    if (rc == SNAPSHOT_ENOMEM && err != NULL && err_len > 0)
        snprintf(err, err_len, "out of memory at offset %zu", r.pos);
    if (rc != 0)
        ckpt_file_free(out);
    return rc;
}
