/*
 * nsnap — see nsnap.h for the layout.
 */
#include "persist/nsnap.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buffer.h"
#include "util/crc32.h"
#include "util/le.h"

const char *nsnap_strerror(int code)
{
    switch (code) {
    case NSNAP_EFORMAT: return "not a native snapshot (bad header)";
    case NSNAP_ENOMEM: return "out of memory";
    case NSNAP_ETOO_LONG: return "name too long for a native snapshot";
    default: return code >= 0 ? "ok" : "unknown snapshot error";
    }
}

void nsnap_begin(struct jbuf *out, int64_t from, int64_t to)
{
    uint8_t h[NSNAP_HEADER] = {0};
    le_put(h, NSNAP_MAGIC, 4);
    le_put(h + 4, NSNAP_VERSION, 2);
    le_put(h + 8, (uint64_t)from, 8);
    le_put(h + 16, (uint64_t)to, 8);
    le_put(h + 24, crc32_ieee(h, 24), 4);
    jbuf_append(out, h, sizeof h);
}

int nsnap_add_block(struct jbuf *out, const char *const *names, const size_t *lens,
                    size_t depth, const char *metric, size_t metric_len, const void *image,
                    size_t image_len)
{
    if (depth > NSNAP_MAX_DEPTH || metric_len > 65535)
        return NSNAP_ETOO_LONG;
    size_t body = 1 + 2 + metric_len + image_len;
    for (size_t i = 0; i < depth; i++) {
        if (lens[i] == 0 || lens[i] > 255)
            return NSNAP_ETOO_LONG;
        body += 1 + lens[i];
    }
    if (body > NSNAP_MAX_BLOCK)
        return NSNAP_ETOO_LONG;
    if (!jbuf_reserve(out, NSNAP_BLOCK_HEADER + body))
        return 0;   /* out->failed tells */
    uint8_t *start = (uint8_t *)out->data + out->len;
    uint8_t *p = start + NSNAP_BLOCK_HEADER;
    *p++ = (uint8_t)depth;
    for (size_t i = 0; i < depth; i++) {
        *p++ = (uint8_t)lens[i];
        memcpy(p, names[i], lens[i]);
        p += lens[i];
    }
    le_put(p, metric_len, 2);
    memcpy(p + 2, metric, metric_len);
    p += 2 + metric_len;
    memcpy(p, image, image_len);
    le_put(start, NSNAP_BLOCK_MAGIC, 4);
    le_put(start + 4, body, 4);
    le_put(start + 8, crc32_ieee(start + NSNAP_BLOCK_HEADER, body), 4);
    out->len += NSNAP_BLOCK_HEADER + body;
    return 0;
}

/* Parses a body whose checksum verified; false when it does not hold
 * together. */
static bool parse_body(const uint8_t *p, size_t len, struct nsnap_block *b)
{
    const uint8_t *end = p + len;
    if (len < 1)
        return false;
    b->depth = *p++;
    if (b->depth > NSNAP_MAX_DEPTH)
        return false;
    for (size_t i = 0; i < b->depth; i++) {
        if (end - p < 1 || (size_t)(end - p - 1) < *p || *p == 0)
            return false;
        b->lens[i] = *p;
        b->names[i] = (const char *)p + 1;
        p += 1 + b->lens[i];
    }
    if (end - p < 2)
        return false;
    b->metric_len = (size_t)le_get(p, 2);
    p += 2;
    if ((size_t)(end - p) < b->metric_len || b->metric_len == 0)
        return false;
    b->metric = (const char *)p;
    p += b->metric_len;
    b->image = p;
    b->image_len = (size_t)(end - p);
    return true;
}

/* 0: a valid block at off (its length in *block_len); 1: none. */
static int block_at(const uint8_t *d, size_t len, size_t off, size_t *block_len,
                    struct nsnap_block *b)
{
    if (len - off < NSNAP_BLOCK_HEADER || le_get(d + off, 4) != NSNAP_BLOCK_MAGIC)
        return 1;
    uint64_t body = le_get(d + off + 4, 4);
    if (body > NSNAP_MAX_BLOCK || body > len - off - NSNAP_BLOCK_HEADER)
        return 1;
    const uint8_t *p = d + off + NSNAP_BLOCK_HEADER;
    if (crc32_ieee(p, body) != (uint32_t)le_get(d + off + 8, 4) || !parse_body(p, body, b))
        return 1;
    *block_len = NSNAP_BLOCK_HEADER + body;
    return 0;
}

int nsnap_header(const void *data, size_t len, int64_t *from, int64_t *to)
{
    const uint8_t *d = data;
    uint64_t version = len >= NSNAP_HEADER ? le_get(d + 4, 2) : 0;
    if (len < NSNAP_HEADER || le_get(d, 4) != NSNAP_MAGIC || version < NSNAP_OLDEST_VERSION ||
        version > NSNAP_VERSION || crc32_ieee(d, 24) != (uint32_t)le_get(d + 24, 4))
        return NSNAP_EFORMAT;
    *from = (int64_t)le_get(d + 8, 8);
    *to = (int64_t)le_get(d + 16, 8);
    return 0;
}

int nsnap_scan(const void *data, size_t len, int64_t *from, int64_t *to, nsnap_block_fn fn,
               void *ctx, struct nsnap_stats *stats)
{
    const uint8_t *d = data;
    memset(stats, 0, sizeof(*stats));
    if (nsnap_header(data, len, from, to) != 0)
        return NSNAP_EFORMAT;
    size_t off = NSNAP_HEADER;
    bool in_damage = false;
    while (off < len) {
        size_t block_len;
        struct nsnap_block b;
        if (block_at(d, len, off, &block_len, &b) == 0) {
            in_damage = false;
            off += block_len;
            stats->blocks++;
            int rc = fn ? fn(ctx, &b) : 0;
            if (rc != 0)
                return rc;
            continue;
        }
        if (!in_damage)
            stats->corrupt++;
        in_damage = true;
        stats->skipped_bytes++;
        off++;
    }
    return 0;
}

/* ---- to the checkpoint form ---------------------------------------------------- */

struct to_ckpt {
    struct ckpt_file *file;
    uint64_t lost;
    bool nomem;
};

static struct ckpt_level *child_of(struct ckpt_level *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->child_count; i++)
        if (strlen(l->children[i].name) == len && memcmp(l->children[i].name, name, len) == 0)
            return &l->children[i];
    struct ckpt_level *grown = realloc(l->children, (l->child_count + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    l->children = grown;
    struct ckpt_level *c = &l->children[l->child_count];
    memset(c, 0, sizeof(*c));
    c->name = strndup(name, len);
    if (!c->name)
        return NULL;
    l->child_count++;
    return c;
}

static struct ckpt_series *series_of(struct ckpt_level *l, const char *metric, size_t len)
{
    for (size_t i = 0; i < l->series_count; i++)
        if (strlen(l->series[i].metric) == len && memcmp(l->series[i].metric, metric, len) == 0)
            return &l->series[i];
    struct ckpt_series *grown = realloc(l->series, (l->series_count + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    l->series = grown;
    struct ckpt_series *s = &l->series[l->series_count];
    memset(s, 0, sizeof(*s));
    s->metric = strndup(metric, len);
    if (!s->metric)
        return NULL;
    l->series_count++;
    return s;
}

/* Merges values[0..n) at start (frequency f) into s; later values win. */
static int merge_values(struct ckpt_series *s, int64_t start, int64_t f, const float *values,
                        uint32_t n)
{
    if (s->count == 0) {
        s->values = malloc((size_t)n * sizeof(float));
        if (!s->values)
            return -1;
        memcpy(s->values, values, (size_t)n * sizeof(float));
        s->frequency = f;
        s->start = start;
        s->count = n;
        return 0;
    }
    if (f != s->frequency || (start - s->start) % f != 0)
        return 1;   /* another grid: left out */
    int64_t lo = start < s->start ? start : s->start;
    int64_t hi_new = start + (int64_t)n * f, hi_old = s->start + (int64_t)s->count * f;
    int64_t hi = hi_new > hi_old ? hi_new : hi_old;
    int64_t count = (hi - lo) / f;
    if (count > UINT32_MAX / 2)
        return 1;
    if (lo != s->start || (uint64_t)count != s->count) {
        float *grown = malloc((size_t)count * sizeof(float));
        if (!grown)
            return -1;
        for (int64_t i = 0; i < count; i++)
            grown[i] = NAN;
        memcpy(grown + (s->start - lo) / f, s->values, (size_t)s->count * sizeof(float));
        free(s->values);
        s->values = grown;
        s->start = lo;
        s->count = (uint32_t)count;
    }
    float *dst = s->values + (start - lo) / f;
    for (uint32_t i = 0; i < n; i++)
        if (!isnan(values[i]))
            dst[i] = values[i];
    return 0;
}

static int block_to_ckpt(void *vctx, const struct nsnap_block *b)
{
    struct to_ckpt *c = vctx;
    float values[BUFFER_CAP];
    int64_t start, f;
    uint32_t n;
    if (chain_image_values(b->image, b->image_len, &start, &f, values, &n) != 0) {
        c->lost++;
        return 0;
    }
    struct ckpt_level *l = &c->file->host;
    for (size_t i = 0; l && i < b->depth; i++)
        l = child_of(l, b->names[i], b->lens[i]);
    struct ckpt_series *s = l ? series_of(l, b->metric, b->metric_len) : NULL;
    int rc = s ? merge_values(s, start, f, values, n) : -1;
    if (rc < 0) {
        c->nomem = true;
        return 1;
    }
    c->lost += rc;
    return 0;
}

int nsnap_to_ckpt(const void *data, size_t len, struct ckpt_file *out, uint64_t *lost,
                  char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    struct to_ckpt c = {.file = out};
    struct nsnap_stats st;
    out->host.name = strdup("");
    int rc = out->host.name ? nsnap_scan(data, len, &out->from, &out->to, block_to_ckpt, &c, &st)
                            : NSNAP_ENOMEM;
    if (rc == 1 || c.nomem)
        rc = NSNAP_ENOMEM;
    if (rc != 0) {
        if (err)
            snprintf(err, err_len, "%s", nsnap_strerror(rc));
        ckpt_file_free(out);
        return rc;
    }
    if (lost)
        *lost = c.lost + st.corrupt;
    ckpt_level_sort(&out->host);
    return 0;
}
