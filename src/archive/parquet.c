/*
 * parquet — streaming Parquet writer for the archive (see parquet.h).
 *
 * File layout: "PAR1", then per row group the eight column chunks in schema
 * order, then the FileMetaData (Thrift compact protocol), its length (LE32)
 * and "PAR1". Every page is a v1 data page (or the dictionary page) whose
 * body is zstd-compressed; the columns are required and flat, so pages carry
 * no repetition/definition levels.
 *
 * Encodings, chosen for archive rows sorted by series then time:
 *   strings   one dictionary per column chunk (PLAIN dictionary page, then
 *             RLE_DICTIONARY data pages of RLE/bit-packed hybrid indices);
 *             a chunk whose dictionary outgrows PQ_DICT_MAX is written PLAIN.
 *   value     the same when values repeat enough (PQ_FLOAT_DICT_REPEAT),
 *             otherwise PLAIN (measured: bench/parquet_bench.c); once its
 *             dictionary outgrows PQ_DICT_MAX the group's values are kept
 *             raw, so mostly distinct values cost no hashing
 *   INT64     PLAIN: timestamps of a sorted archive and the few frequencies
 *             compress to well under 0.01 byte per row with zstd
 *
 * While a row group is open, string and value columns are stored as
 * dictionary indices plus the dictionary itself (already in PLAIN encoding,
 * so it is the dictionary page body and the source of a PLAIN fallback);
 * INT64 columns are plain arrays. Only the serialized RowGroup metadata of
 * finished groups stays in memory.
 *
 * Strings are written as given; the caller supplies UTF-8 (STRING columns).
 * The writer assumes a little-endian host for the PLAIN number encoding.
 */
#include "archive/parquet.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "util/varint.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "parquet.c writes PLAIN numbers by copying memory: little-endian hosts only"
#endif

#define PQ_NUM_STR 5
#define PQ_NUM_COLS 8
#define PQ_NUM_DICT (PQ_NUM_STR + 1) /* the strings and value */
#define PQ_VALUE_DICT PQ_NUM_STR
#define PQ_ZSTD_LEVEL 3
#define PQ_PAGE_BYTES (1u << 20)     /* uncompressed target per data page */
#define PQ_DICT_MAX (1u << 20)       /* larger dictionaries fall back to PLAIN */
#define PQ_FLOAT_DICT_REPEAT 4       /* min. rows per distinct value for a float dictionary */
#define PQ_IDX_PAGE_VALUES (1u << 20) /* cap on values per dictionary-index page */
#define PQ_OUT_BUF (1u << 20)        /* write(2) batching */
#define PQ_STAT_MAX 256              /* longer string min/max are not recorded */
#define PQ_CREATED_BY "cc-metric-store-c"

/* Bytes a row adds to a row group besides new dictionary entries:
 * six dictionary indices, two INT64. */
#define PQ_ROW_BYTES (PQ_NUM_DICT * 4 + 8 + 8)
/* Per new dictionary entry besides its bytes: length prefix, entry record,
 * about two hash slots. */
#define PQ_ENTRY_OVERHEAD (4 + 8 + 8)

/* parquet.thrift enums */
enum { PT_INT64 = 2, PT_FLOAT = 4, PT_BYTE_ARRAY = 6 };
enum { CT_UTF8 = 0, CT_INT_64 = 18 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { CODEC_ZSTD = 6 };
enum { REP_REQUIRED = 0 };

/* Thrift compact protocol type ids */
enum {
    TC_TRUE = 1, TC_FALSE = 2, TC_BYTE = 3, TC_I16 = 4, TC_I32 = 5,
    TC_I64 = 6, TC_BINARY = 8, TC_LIST = 9, TC_STRUCT = 12,
};

static const char *const pq_col_names[PQ_NUM_COLS] = {
    "cluster", "hostname", "metric", "scope", "scope_id",
    "timestamp", "frequency", "value",
};

/* ---- growable byte buffer with a sticky allocation failure ---- */

struct pq_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static bool buf_reserve(struct pq_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void buf_put(struct pq_buf *b, const void *p, size_t n)
{
    if (n && buf_reserve(b, n)) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

static void buf_byte(struct pq_buf *b, uint8_t v)
{
    if (buf_reserve(b, 1))
        b->p[b->len++] = v;
}

static void buf_le32(struct pq_buf *b, uint32_t v)
{
    uint8_t t[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    buf_put(b, t, 4);
}

static void buf_varint(struct pq_buf *b, uint64_t v)
{
    uint8_t t[VARINT_MAX_BYTES];
    buf_put(b, t, varint_put(t, v));
}

static void buf_free(struct pq_buf *b)
{
    free(b->p);
    *b = (struct pq_buf){ 0 };
}

/* ---- Thrift compact protocol writer ---- */

#define TC_MAX_DEPTH 8

struct tc {
    struct pq_buf *b;
    int16_t last[TC_MAX_DEPTH]; /* last field id written, per open struct */
    int depth;
};

static void tc_init(struct tc *t, struct pq_buf *b)
{
    t->b = b;
    t->depth = 0;
    t->last[0] = 0;
}

static void tc_field(struct tc *t, int16_t id, uint8_t type)
{
    int d = id - t->last[t->depth];
    if (d > 0 && d <= 15) {
        buf_byte(t->b, (uint8_t)(d << 4 | type));
    } else {
        buf_byte(t->b, type);
        buf_varint(t->b, zigzag(id));
    }
    t->last[t->depth] = id;
}

static void tc_i32(struct tc *t, int16_t id, int32_t v)
{
    tc_field(t, id, TC_I32);
    buf_varint(t->b, zigzag(v));
}

static void tc_i64(struct tc *t, int16_t id, int64_t v)
{
    tc_field(t, id, TC_I64);
    buf_varint(t->b, zigzag(v));
}

static void tc_i8(struct tc *t, int16_t id, int8_t v)
{
    tc_field(t, id, TC_BYTE);
    buf_byte(t->b, (uint8_t)v);
}

static void tc_bool(struct tc *t, int16_t id, bool v)
{
    tc_field(t, id, v ? TC_TRUE : TC_FALSE);
}

static void tc_binary(struct tc *t, int16_t id, const void *p, size_t n)
{
    tc_field(t, id, TC_BINARY);
    buf_varint(t->b, n);
    buf_put(t->b, p, n);
}

static void tc_string(struct tc *t, int16_t id, const char *s)
{
    tc_binary(t, id, s, strlen(s));
}

/* Opens a nested struct value (a field's or a list element's). */
static void tc_push(struct tc *t)
{
    t->last[++t->depth] = 0;
}

static void tc_struct(struct tc *t, int16_t id)
{
    tc_field(t, id, TC_STRUCT);
    tc_push(t);
}

static void tc_end(struct tc *t)
{
    buf_byte(t->b, 0);
    t->depth--;
}

static void tc_list(struct tc *t, int16_t id, uint8_t elem_type, size_t n)
{
    tc_field(t, id, TC_LIST);
    if (n < 15) {
        buf_byte(t->b, (uint8_t)(n << 4 | elem_type));
    } else {
        buf_byte(t->b, 0xf0 | elem_type);
        buf_varint(t->b, n);
    }
}

static void tc_elem_i32(struct tc *t, int32_t v)
{
    buf_varint(t->b, zigzag(v));
}

static void tc_elem_string(struct tc *t, const char *s)
{
    size_t n = strlen(s);
    buf_varint(t->b, n);
    buf_put(t->b, s, n);
}

/* ---- row group buffers ---- */

struct pq_entry {
    uint32_t off;  /* of the entry's PLAIN encoding in dict */
    uint32_t hash; /* of the bytes; for 4-byte values the value itself */
};

/* A column buffered as per-row dictionary indices plus the dictionary. */
struct pq_dictcol {
    unsigned width;          /* bytes per value; 0: BYTE_ARRAY */
    uint32_t *idx;           /* per row: dictionary index */
    struct pq_buf dict;      /* PLAIN-encoded entries (BYTE_ARRAY: LE32 length, bytes) */
    struct pq_entry *ent;
    size_t nent, ent_cap;
    uint32_t *slots;         /* open addressing: 0 = empty, else entry + 1 */
    size_t nslots;
    uint32_t last;           /* index of the previous row's value */
    bool raw;                /* 4-byte values only: the dictionary outgrew
                                PQ_DICT_MAX, idx holds the values themselves */
};

/* Metadata of one written column chunk, serialized when its group ends. */
struct pq_chunk_meta {
    int64_t num_values;
    int64_t uncompressed, compressed; /* pages including headers */
    int64_t data_page_offset;
    int64_t dict_page_offset;         /* -1: none */
    int32_t data_pages;
    int data_encoding;
    bool has_minmax;
    uint8_t min[PQ_STAT_MAX], max[PQ_STAT_MAX];
    size_t min_len, max_len;
    bool has_nan_count;
    int64_t nan_count;
};

struct parquet_writer {
    int fd;
    int err;                  /* sticky: first failure, returned ever after */
    uint64_t offset;          /* file offset of the next byte produced */
    struct pq_buf out;        /* not yet written to fd */

    uint64_t total_rows;
    uint64_t num_groups;
    struct pq_buf groups;     /* serialized RowGroup structs (list elements) */

    size_t rows, rows_cap;    /* current row group */
    size_t group_bytes;
    struct pq_dictcol dc[PQ_NUM_DICT];
    int64_t *ts, *freq;
    int64_t nan_rows;

    struct pq_chunk_meta chunk[PQ_NUM_COLS];
    struct pq_buf page, zpage, hdr;
    ZSTD_CCtx *zc;
};

/* ---- output ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return PARQUET_EIO;
        }
        if (k == 0) {
            errno = EIO;
            return PARQUET_EIO;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int out_flush(struct parquet_writer *w)
{
    int rc = write_all(w->fd, w->out.p, w->out.len);
    w->out.len = 0;
    return rc;
}

static int out_write(struct parquet_writer *w, const void *p, size_t n)
{
    if (w->out.len + n > PQ_OUT_BUF) {
        int rc = out_flush(w);
        if (rc)
            return rc;
    }
    if (n >= PQ_OUT_BUF) {
        int rc = write_all(w->fd, p, n);
        if (rc)
            return rc;
    } else {
        buf_put(&w->out, p, n);
        if (w->out.oom)
            return PARQUET_ENOMEM;
    }
    w->offset += n;
    return 0;
}

/* ---- pages ---- */

/* Compresses body and writes it as one page of column chunk m. */
static int emit_page(struct parquet_writer *w, struct pq_chunk_meta *m, int page_type,
                     const uint8_t *body, size_t len, uint32_t num_values, int encoding)
{
    if (len > INT32_MAX)
        return PARQUET_ENOMEM;
    size_t bound = ZSTD_compressBound(len);
    w->zpage.len = 0;
    if (!buf_reserve(&w->zpage, bound))
        return PARQUET_ENOMEM;
    size_t zlen = ZSTD_compress2(w->zc, w->zpage.p, bound, body, len);
    if (ZSTD_isError(zlen) || zlen > INT32_MAX)
        return PARQUET_ENOMEM;

    struct tc t;
    w->hdr.len = 0;
    tc_init(&t, &w->hdr);
    tc_i32(&t, 1, page_type);
    tc_i32(&t, 2, (int32_t)len);
    tc_i32(&t, 3, (int32_t)zlen);
    if (page_type == PAGE_DICTIONARY) {
        tc_struct(&t, 7);          /* dictionary_page_header */
        tc_i32(&t, 1, (int32_t)num_values);
        tc_i32(&t, 2, ENC_PLAIN);
        tc_end(&t);
    } else {
        tc_struct(&t, 5);          /* data_page_header */
        tc_i32(&t, 1, (int32_t)num_values);
        tc_i32(&t, 2, encoding);
        tc_i32(&t, 3, ENC_RLE);    /* definition levels (absent: max level 0) */
        tc_i32(&t, 4, ENC_RLE);    /* repetition levels (absent) */
        tc_end(&t);
    }
    buf_byte(&w->hdr, 0);
    if (w->hdr.oom)
        return PARQUET_ENOMEM;

    if (page_type == PAGE_DICTIONARY) {
        m->dict_page_offset = (int64_t)w->offset;
    } else {
        if (m->data_pages == 0)
            m->data_page_offset = (int64_t)w->offset;
        m->data_pages++;
    }
    m->uncompressed += (int64_t)(w->hdr.len + len);
    m->compressed += (int64_t)(w->hdr.len + zlen);
    int rc = out_write(w, w->hdr.p, w->hdr.len);
    if (!rc)
        rc = out_write(w, w->zpage.p, zlen);
    return rc;
}

static unsigned bit_width(uint32_t max)
{
    unsigned bw = 1; /* never 0: some readers mishandle zero-width indices */
    while (bw < 32 && (max >> bw))
        bw++;
    return bw;
}

/* Appends n values of width bw, bit-packed LSB first, padded with zeros to
 * groups*8 values. */
static void bitpack(struct pq_buf *b, const uint32_t *v, size_t n, size_t groups, unsigned bw)
{
    if (!buf_reserve(b, groups * bw))
        return;
    uint8_t *o = b->p + b->len;
    uint64_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < groups * 8; i++) {
        acc |= (uint64_t)(i < n ? v[i] : 0) << bits;
        bits += bw;
        while (bits >= 8) {
            *o++ = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    b->len += groups * bw;
}

static bool run_of_8(const uint32_t *v, size_t i, size_t n)
{
    if (n - i < 8)
        return false;
    for (size_t k = 1; k < 8; k++)
        if (v[i + k] != v[i])
            return false;
    return true;
}

/* RLE/bit-packing hybrid (no length prefix): runs of 8 or more equal values
 * become RLE runs, everything between them bit-packed groups of 8. */
static void rle_hybrid(struct pq_buf *b, const uint32_t *v, size_t n, unsigned bw)
{
    size_t i = 0;
    unsigned vbytes = (bw + 7) / 8;
    while (i < n) {
        if (run_of_8(v, i, n)) {
            size_t r = 8;
            while (i + r < n && v[i + r] == v[i])
                r++;
            buf_varint(b, (uint64_t)r << 1);
            uint8_t t[4] = { (uint8_t)v[i], (uint8_t)(v[i] >> 8), (uint8_t)(v[i] >> 16),
                             (uint8_t)(v[i] >> 24) };
            buf_put(b, t, vbytes);
            i += r;
            continue;
        }
        size_t start = i, groups = 0;
        do {
            i += 8;
            groups++;
        } while (i < n && !run_of_8(v, i, n));
        if (i > n)
            i = n;
        buf_varint(b, (uint64_t)groups << 1 | 1);
        bitpack(b, v + start, i - start, groups, bw);
    }
}

static uint32_t entry_len(const struct pq_dictcol *c, uint32_t e)
{
    if (c->width)
        return c->width;
    uint32_t len;
    memcpy(&len, c->dict.p + c->ent[e].off, 4);
    return len;
}

static const uint8_t *entry_bytes(const struct pq_dictcol *c, uint32_t e)
{
    return c->dict.p + c->ent[e].off + (c->width ? 0 : 4);
}

/* Length of the entry's PLAIN encoding, which starts at ent[e].off. */
static size_t entry_plain_len(const struct pq_dictcol *c, uint32_t e)
{
    return c->width ? c->width : 4 + (size_t)entry_len(c, e);
}

/* Unsigned byte-wise order, as parquet orders UTF8. */
static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r)
        return r;
    return an < bn ? -1 : an > bn;
}

static void str_stats(const struct pq_dictcol *c, struct pq_chunk_meta *m)
{
    uint32_t lo = 0, hi = 0;
    for (uint32_t e = 1; e < c->nent; e++) {
        if (bytes_cmp(entry_bytes(c, e), entry_len(c, e), entry_bytes(c, lo), entry_len(c, lo)) < 0)
            lo = e;
        if (bytes_cmp(entry_bytes(c, e), entry_len(c, e), entry_bytes(c, hi), entry_len(c, hi)) > 0)
            hi = e;
    }
    m->min_len = entry_len(c, lo);
    m->max_len = entry_len(c, hi);
    m->has_minmax = m->min_len <= PQ_STAT_MAX && m->max_len <= PQ_STAT_MAX;
    if (m->has_minmax) {
        memcpy(m->min, entry_bytes(c, lo), m->min_len);
        memcpy(m->max, entry_bytes(c, hi), m->max_len);
    }
}

/* Dictionary encoding pays when the dictionary is small (strings) or, for
 * floats, when values repeat: bit-packed indices of mostly distinct values
 * compress worse than the values themselves. */
static bool use_dictionary(const struct pq_dictcol *c, size_t rows)
{
    if (c->raw || c->dict.len > PQ_DICT_MAX)
        return false;
    return c->width == 0 || c->nent * PQ_FLOAT_DICT_REPEAT <= rows;
}

/* PLAIN pages of a 4-byte column, from its raw values or its dictionary. */
static int write_words_plain(struct parquet_writer *w, struct pq_dictcol *c, struct pq_chunk_meta *m)
{
    const size_t per_page = PQ_PAGE_BYTES / 4;
    m->data_encoding = ENC_PLAIN;
    for (size_t i = 0; i < w->rows; i += per_page) {
        size_t n = w->rows - i < per_page ? w->rows - i : per_page;
        const uint8_t *body = (const uint8_t *)(c->idx + i);
        if (!c->raw) {
            w->page.len = 0;
            if (!buf_reserve(&w->page, n * 4))
                return PARQUET_ENOMEM;
            for (size_t j = 0; j < n; j++)
                memcpy(w->page.p + 4 * j, &c->ent[c->idx[i + j]].hash, 4);
            body = w->page.p;
        }
        int rc = emit_page(w, m, PAGE_DATA, body, n * 4, (uint32_t)n, ENC_PLAIN);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_dict_chunk(struct parquet_writer *w, struct pq_dictcol *c, struct pq_chunk_meta *m)
{
    int rc;
    if (c->width == 4 && !use_dictionary(c, w->rows))
        return write_words_plain(w, c, m);
    if (use_dictionary(c, w->rows)) {
        m->data_encoding = ENC_RLE_DICTIONARY;
        rc = emit_page(w, m, PAGE_DICTIONARY, c->dict.p, c->dict.len, (uint32_t)c->nent, ENC_PLAIN);
        if (rc)
            return rc;
        unsigned bw = bit_width((uint32_t)(c->nent - 1));
        for (size_t i = 0; i < w->rows; i += PQ_IDX_PAGE_VALUES) {
            size_t n = w->rows - i < PQ_IDX_PAGE_VALUES ? w->rows - i : PQ_IDX_PAGE_VALUES;
            w->page.len = 0;
            buf_byte(&w->page, (uint8_t)bw);
            rle_hybrid(&w->page, c->idx + i, n, bw);
            if (w->page.oom)
                return PARQUET_ENOMEM;
            rc = emit_page(w, m, PAGE_DATA, w->page.p, w->page.len, (uint32_t)n, ENC_RLE_DICTIONARY);
            if (rc)
                return rc;
        }
        return 0;
    }
    m->data_encoding = ENC_PLAIN;
    size_t first = 0;
    w->page.len = 0;
    for (size_t i = 0; i < w->rows; i++) {
        uint32_t e = c->idx[i];
        buf_put(&w->page, c->dict.p + c->ent[e].off, entry_plain_len(c, e));
        if (w->page.len >= PQ_PAGE_BYTES || i + 1 == w->rows) {
            if (w->page.oom)
                return PARQUET_ENOMEM;
            rc = emit_page(w, m, PAGE_DATA, w->page.p, w->page.len, (uint32_t)(i + 1 - first), ENC_PLAIN);
            if (rc)
                return rc;
            w->page.len = 0;
            first = i + 1;
        }
    }
    return 0;
}

static int write_plain_chunk(struct parquet_writer *w, struct pq_chunk_meta *m, const void *values,
                             size_t width)
{
    const uint8_t *p = values;
    size_t per_page = PQ_PAGE_BYTES / width;
    m->data_encoding = ENC_PLAIN;
    for (size_t i = 0; i < w->rows; i += per_page) {
        size_t n = w->rows - i < per_page ? w->rows - i : per_page;
        int rc = emit_page(w, m, PAGE_DATA, p + i * width, n * width, (uint32_t)n, ENC_PLAIN);
        if (rc)
            return rc;
    }
    return 0;
}

static void i64_stats(const int64_t *v, size_t n, struct pq_chunk_meta *m)
{
    int64_t lo = v[0], hi = v[0];
    for (size_t i = 1; i < n; i++) {
        if (v[i] < lo)
            lo = v[i];
        if (v[i] > hi)
            hi = v[i];
    }
    memcpy(m->min, &lo, 8);
    memcpy(m->max, &hi, 8);
    m->min_len = m->max_len = 8;
    m->has_minmax = true;
}

/* parquet.thrift's rules for FLOAT under TYPE_ORDER: NaN never in min/max,
 * nan_count always written, a zero min is -0.0 and a zero max +0.0. A chunk
 * with any NaN gets no min/max at all: readers that ignore nan_count (DuckDB
 * 1.5) would otherwise skip the chunk when looking for NaN. */
static void float_minmax(uint32_t bits, float *lo, float *hi, bool *any)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    if (x != x)
        return;
    if (!*any) {
        *lo = *hi = x;
        *any = true;
    } else if (x < *lo) {
        *lo = x;
    } else if (x > *hi) {
        *hi = x;
    }
}

static void float_stats(const struct pq_dictcol *c, size_t rows, int64_t nans, struct pq_chunk_meta *m)
{
    float lo = 0, hi = 0;
    bool any = false;
    if (c->raw) {
        for (size_t i = 0; i < rows; i++)
            float_minmax(c->idx[i], &lo, &hi, &any);
    } else {
        for (size_t e = 0; e < c->nent; e++)
            float_minmax(c->ent[e].hash, &lo, &hi, &any);
    }
    m->has_nan_count = true;
    m->nan_count = nans;
    m->has_minmax = any && nans == 0;
    if (any) {
        if (lo == 0)
            lo = -0.0f;
        if (hi == 0)
            hi = 0.0f;
        memcpy(m->min, &lo, 4);
        memcpy(m->max, &hi, 4);
        m->min_len = m->max_len = 4;
    }
}

/* ---- footer pieces ---- */

static void write_column_chunk(struct tc *t, int col, const struct pq_chunk_meta *m)
{
    static const int ptype[PQ_NUM_COLS] = {
        PT_BYTE_ARRAY, PT_BYTE_ARRAY, PT_BYTE_ARRAY, PT_BYTE_ARRAY, PT_BYTE_ARRAY,
        PT_INT64, PT_INT64, PT_FLOAT,
    };
    bool dict = m->dict_page_offset >= 0;

    tc_push(t);                                   /* ColumnChunk */
    tc_i64(t, 2, 0);                              /* file_offset: no external metadata */
    tc_struct(t, 3);                              /* meta_data */
    tc_i32(t, 1, ptype[col]);
    if (dict) {
        tc_list(t, 2, TC_I32, 3);
        tc_elem_i32(t, ENC_PLAIN);
        tc_elem_i32(t, ENC_RLE);
        tc_elem_i32(t, ENC_RLE_DICTIONARY);
    } else {
        tc_list(t, 2, TC_I32, 2);
        tc_elem_i32(t, ENC_PLAIN);
        tc_elem_i32(t, ENC_RLE);
    }
    tc_list(t, 3, TC_BINARY, 1);
    tc_elem_string(t, pq_col_names[col]);
    tc_i32(t, 4, CODEC_ZSTD);
    tc_i64(t, 5, m->num_values);
    tc_i64(t, 6, m->uncompressed);
    tc_i64(t, 7, m->compressed);
    tc_i64(t, 9, m->data_page_offset);
    if (dict)
        tc_i64(t, 11, m->dict_page_offset);
    tc_struct(t, 12);                             /* statistics */
    tc_i64(t, 3, 0);                              /* null_count */
    if (m->has_minmax) {
        tc_binary(t, 5, m->max, m->max_len);
        tc_binary(t, 6, m->min, m->min_len);
    }
    if (m->has_nan_count)
        tc_i64(t, 9, m->nan_count);
    tc_end(t);
    tc_list(t, 13, TC_STRUCT, dict ? 2 : 1);      /* encoding_stats */
    if (dict) {
        tc_push(t);
        tc_i32(t, 1, PAGE_DICTIONARY);
        tc_i32(t, 2, ENC_PLAIN);
        tc_i32(t, 3, 1);
        tc_end(t);
    }
    tc_push(t);
    tc_i32(t, 1, PAGE_DATA);
    tc_i32(t, 2, m->data_encoding);
    tc_i32(t, 3, m->data_pages);
    tc_end(t);
    tc_end(t);                                    /* meta_data */
    tc_end(t);                                    /* ColumnChunk */
}

static void write_schema(struct tc *t)
{
    tc_list(t, 2, TC_STRUCT, 1 + PQ_NUM_COLS);
    tc_push(t);
    tc_string(t, 4, "ParquetMetricRow");
    tc_i32(t, 5, PQ_NUM_COLS);
    tc_end(t);
    for (int col = 0; col < PQ_NUM_COLS; col++) {
        tc_push(t);
        if (col < PQ_NUM_STR) {
            tc_i32(t, 1, PT_BYTE_ARRAY);
            tc_i32(t, 3, REP_REQUIRED);
            tc_string(t, 4, pq_col_names[col]);
            tc_i32(t, 6, CT_UTF8);
            tc_struct(t, 10);                     /* logicalType */
            tc_struct(t, 1);                      /* STRING */
            tc_end(t);
            tc_end(t);
        } else if (col < PQ_NUM_COLS - 1) {
            tc_i32(t, 1, PT_INT64);
            tc_i32(t, 3, REP_REQUIRED);
            tc_string(t, 4, pq_col_names[col]);
            tc_i32(t, 6, CT_INT_64);
            tc_struct(t, 10);                     /* logicalType */
            tc_struct(t, 10);                     /* INTEGER */
            tc_i8(t, 1, 64);
            tc_bool(t, 2, true);
            tc_end(t);
            tc_end(t);
        } else {
            tc_i32(t, 1, PT_FLOAT);
            tc_i32(t, 3, REP_REQUIRED);
            tc_string(t, 4, pq_col_names[col]);
        }
        tc_end(t);
    }
}

/* ---- row groups ---- */

static void dictcol_reset(struct pq_dictcol *c)
{
    /* A table much larger than this group needed (grown for an earlier huge
     * dictionary) is dropped rather than cleared for every later group. */
    if (c->nslots > 8 * (c->nent + 64)) {
        free(c->slots);
        c->slots = NULL;
        c->nslots = 0;
    } else if (c->slots) {
        memset(c->slots, 0, c->nslots * sizeof *c->slots);
    }
    c->dict.len = 0;
    c->nent = 0;
    c->last = 0;
    c->raw = false;
}

/* Replaces the dictionary indices of the first rows rows of a 4-byte column
 * by the values and drops the dictionary. */
static void dictcol_go_raw(struct pq_dictcol *c, size_t rows)
{
    for (size_t i = 0; i < rows; i++)
        c->idx[i] = c->ent[c->idx[i]].hash;
    free(c->slots);
    c->slots = NULL;
    c->nslots = 0;
    c->dict.len = 0;
    c->nent = 0;
    c->last = 0;
    c->raw = true;
}

static int flush_group(struct parquet_writer *w)
{
    int rc = 0;
    uint64_t group_start = w->offset;

    for (int col = 0; col < PQ_NUM_COLS && !rc; col++) {
        struct pq_chunk_meta *m = &w->chunk[col];
        *m = (struct pq_chunk_meta){ .num_values = (int64_t)w->rows, .dict_page_offset = -1 };
        if (col < PQ_NUM_STR) {
            str_stats(&w->dc[col], m);
            rc = write_dict_chunk(w, &w->dc[col], m);
        } else if (col < PQ_NUM_COLS - 1) {
            const int64_t *v = col == PQ_NUM_STR ? w->ts : w->freq;
            i64_stats(v, w->rows, m);
            rc = write_plain_chunk(w, m, v, 8);
        } else {
            float_stats(&w->dc[PQ_VALUE_DICT], w->rows, w->nan_rows, m);
            rc = write_dict_chunk(w, &w->dc[PQ_VALUE_DICT], m);
        }
    }
    if (rc)
        return rc;

    int64_t total_unc = 0, total_comp = 0;
    for (int col = 0; col < PQ_NUM_COLS; col++) {
        total_unc += w->chunk[col].uncompressed;
        total_comp += w->chunk[col].compressed;
    }
    struct tc t;
    tc_init(&t, &w->groups);
    tc_push(&t);                                  /* RowGroup (list element) */
    tc_list(&t, 1, TC_STRUCT, PQ_NUM_COLS);
    for (int col = 0; col < PQ_NUM_COLS; col++)
        write_column_chunk(&t, col, &w->chunk[col]);
    tc_i64(&t, 2, total_unc);
    tc_i64(&t, 3, (int64_t)w->rows);
    tc_i64(&t, 5, (int64_t)group_start);
    tc_i64(&t, 6, total_comp);
    tc_end(&t);
    if (w->groups.oom)
        return PARQUET_ENOMEM;

    w->num_groups++;
    w->total_rows += w->rows;
    w->rows = 0;
    w->group_bytes = 0;
    w->nan_rows = 0;
    for (int i = 0; i < PQ_NUM_DICT; i++)
        dictcol_reset(&w->dc[i]);
    return 0;
}

/* ---- dictionary interning ---- */

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    memcpy(&k, p, n);
    h = (h ^ k) * 0x94d049bb133111ebu;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

/* Spreads hashes that are raw float bits over the table. */
static uint32_t mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

static bool dictcol_grow_slots(struct pq_dictcol *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 64;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return false;
    for (size_t e = 0; e < c->nent; e++) {
        size_t pos = mix32(c->ent[e].hash) & (n - 1);
        while (s[pos])
            pos = (pos + 1) & (n - 1);
        s[pos] = (uint32_t)e + 1;
    }
    free(c->slots);
    c->slots = s;
    c->nslots = n;
    return true;
}

/* Sets *idx to the dictionary index of s, adding it when new; *added = bytes
 * the group grew by. */
static int dictcol_intern(struct pq_dictcol *c, const void *s, size_t len, uint32_t *idx, size_t *added)
{
    *added = 0;
    if (len > PARQUET_MAX_GROUP_BYTES)
        return PARQUET_ENOMEM;   /* cannot be buffered within the memory bound */
    bool word = c->width == 4;   /* the hash is the value: equal hash, equal value */
    uint32_t h;
    if (word) {
        memcpy(&h, s, 4);
        if (c->nent && c->ent[c->last].hash == h) {
            *idx = c->last;
            return 0;
        }
    } else {
        if (c->nent && entry_len(c, c->last) == len && memcmp(entry_bytes(c, c->last), s, len) == 0) {
            *idx = c->last;
            return 0;
        }
        h = hash_bytes((const uint8_t *)s, len);
    }
    if ((c->nent + 1) * 2 > c->nslots && !dictcol_grow_slots(c))
        return PARQUET_ENOMEM;
    size_t mask = c->nslots - 1, pos = mix32(h) & mask;
    while (c->slots[pos]) {
        uint32_t e = c->slots[pos] - 1;
        if (c->ent[e].hash == h &&
            (word || (entry_len(c, e) == len && memcmp(entry_bytes(c, e), s, len) == 0))) {
            *idx = c->last = e;
            return 0;
        }
        pos = (pos + 1) & mask;
    }
    if (c->nent == c->ent_cap) {
        size_t cap = c->ent_cap ? c->ent_cap * 2 : 64;
        struct pq_entry *p = realloc(c->ent, cap * sizeof *p);
        if (!p)
            return PARQUET_ENOMEM;
        c->ent = p;
        c->ent_cap = cap;
    }
    size_t off = c->dict.len;
    if (!c->width)
        buf_le32(&c->dict, (uint32_t)len);
    buf_put(&c->dict, s, len);
    if (c->dict.oom || c->dict.len > UINT32_MAX) {
        c->dict.len = off;
        return PARQUET_ENOMEM;
    }
    c->ent[c->nent] = (struct pq_entry){ .off = (uint32_t)off, .hash = h };
    c->slots[pos] = (uint32_t)c->nent + 1;
    *idx = c->last = (uint32_t)c->nent++;
    *added = len + PQ_ENTRY_OVERHEAD;
    return 0;
}

static int ensure_rows(struct parquet_writer *w)
{
    if (w->rows < w->rows_cap)
        return 0;
    size_t cap = w->rows_cap ? w->rows_cap * 2 : 1024;
    for (int i = 0; i < PQ_NUM_DICT; i++) {
        uint32_t *p = realloc(w->dc[i].idx, cap * sizeof *p);
        if (!p)
            return PARQUET_ENOMEM;
        w->dc[i].idx = p;
    }
    int64_t *ts = realloc(w->ts, cap * sizeof *ts);
    if (!ts)
        return PARQUET_ENOMEM;
    w->ts = ts;
    int64_t *freq = realloc(w->freq, cap * sizeof *freq);
    if (!freq)
        return PARQUET_ENOMEM;
    w->freq = freq;
    w->rows_cap = cap;
    return 0;
}

/* ---- public interface ---- */

static void writer_free(struct parquet_writer *w)
{
    for (int i = 0; i < PQ_NUM_DICT; i++) {
        free(w->dc[i].idx);
        buf_free(&w->dc[i].dict);
        free(w->dc[i].ent);
        free(w->dc[i].slots);
    }
    free(w->ts);
    free(w->freq);
    buf_free(&w->out);
    buf_free(&w->groups);
    buf_free(&w->page);
    buf_free(&w->zpage);
    buf_free(&w->hdr);
    ZSTD_freeCCtx(w->zc);
    free(w);
}

int parquet_writer_open(const char *path, struct parquet_writer **out)
{
    *out = NULL;
    struct parquet_writer *w = calloc(1, sizeof *w);
    if (!w)
        return PARQUET_ENOMEM;
    w->fd = -1;
    w->dc[PQ_VALUE_DICT].width = sizeof(float);
    w->zc = ZSTD_createCCtx();
    if (!w->zc || ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, PQ_ZSTD_LEVEL))) {
        writer_free(w);
        return PARQUET_ENOMEM;
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        writer_free(w);
        errno = e;
        return PARQUET_EIO;
    }
    int rc = out_write(w, "PAR1", 4);
    if (rc) {
        int e = errno;
        close(w->fd);
        writer_free(w);
        errno = e;
        return rc;
    }
    *out = w;
    return 0;
}

int parquet_writer_add(struct parquet_writer *w, const struct parquet_row *row)
{
    if (w->err)
        return w->err;
    int rc = ensure_rows(w);
    if (rc)
        return rc;   /* nothing buffered yet for this row: the writer stays usable */
    const char *s[PQ_NUM_STR] = { row->cluster, row->hostname, row->metric, row->scope, row->scope_id };
    size_t bytes = PQ_ROW_BYTES;
    struct pq_dictcol *vc = &w->dc[PQ_VALUE_DICT];
    for (int i = 0; i < PQ_NUM_DICT; i++) {
        if (i == PQ_VALUE_DICT && vc->raw) {
            memcpy(&vc->idx[w->rows], &row->value, 4);
            break;
        }
        const char *p = i < PQ_NUM_STR ? (s[i] ? s[i] : "") : (const char *)&row->value;
        size_t len = i < PQ_NUM_STR ? strlen(p) : sizeof row->value;
        size_t added;
        rc = dictcol_intern(&w->dc[i], p, len, &w->dc[i].idx[w->rows], &added);
        if (rc)
            return rc; /* new dictionary entries of earlier columns stay, unused */
        bytes += added;
    }
    w->ts[w->rows] = row->timestamp;
    w->freq[w->rows] = row->frequency;
    if (row->value != row->value)
        w->nan_rows++;
    w->rows++;
    w->group_bytes += bytes;
    if (!vc->raw && vc->dict.len > PQ_DICT_MAX) {
        w->group_bytes -= vc->nent * (sizeof row->value + PQ_ENTRY_OVERHEAD);
        dictcol_go_raw(vc, w->rows);
    }
    if (w->group_bytes >= PARQUET_MAX_GROUP_BYTES)
        return parquet_writer_end_row_group(w);
    return 0;
}

int parquet_writer_end_row_group(struct parquet_writer *w)
{
    if (w->err)
        return w->err;
    if (w->rows == 0)
        return 0;
    int rc = flush_group(w);
    if (rc)
        w->err = rc;
    return rc;
}

static int write_footer(struct parquet_writer *w)
{
    struct pq_buf meta = { 0 };
    struct tc t;
    tc_init(&t, &meta);
    tc_i32(&t, 1, 1);                             /* version */
    write_schema(&t);
    tc_i64(&t, 3, (int64_t)w->total_rows);
    tc_list(&t, 4, TC_STRUCT, w->num_groups);
    buf_put(&meta, w->groups.p, w->groups.len);   /* pre-serialized RowGroups */
    tc_string(&t, 6, PQ_CREATED_BY);
    tc_list(&t, 7, TC_STRUCT, PQ_NUM_COLS);       /* column_orders */
    for (int col = 0; col < PQ_NUM_COLS; col++) {
        tc_push(&t);
        tc_struct(&t, 1);                         /* TYPE_ORDER: TypeDefinedOrder {} */
        tc_end(&t);
        tc_end(&t);
    }
    buf_byte(&meta, 0);
    int rc = 0;
    if (meta.oom || meta.len > UINT32_MAX) {
        rc = PARQUET_ENOMEM;
    } else {
        uint8_t tail[8];
        uint32_t n = (uint32_t)meta.len;
        memcpy(tail, &n, 4);
        memcpy(tail + 4, "PAR1", 4);
        rc = out_write(w, meta.p, meta.len);
        if (!rc)
            rc = out_write(w, tail, 8);
    }
    buf_free(&meta);
    return rc;
}

int parquet_writer_close(struct parquet_writer *w, uint64_t *rows)
{
    int rc = parquet_writer_end_row_group(w);
    if (!rc)
        rc = write_footer(w);
    if (!rc)
        rc = out_flush(w);
    if (!rc && fsync(w->fd) != 0)
        rc = PARQUET_EIO;
    int e = errno;
    if (close(w->fd) != 0 && !rc) {
        rc = PARQUET_EIO;
        e = errno;
    }
    if (!rc && rows)
        *rows = w->total_rows;
    writer_free(w);
    errno = e;
    return rc;
}

void parquet_writer_abort(struct parquet_writer *w)
{
    if (!w)
        return;
    int e = errno;
    close(w->fd);
    writer_free(w);
    errno = e;
}
