/*
 * seglog — see seglog.h for the layout. Numbers inside a payload are
 * LEB128 varints (signed ones zigzag mapped first); the fixed fields of
 * headers are little-endian.
 */
#include "persist/seglog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/codec.h"
#include "util/crc32.h"
#include "util/fsutil.h"
#include "util/le.h"
#include "util/varint.h"

/* The value byte: 0..CODEC_MAX_DECIMALS = decimal integer form follows,
 * VALUE_RAW = the float's 4 bytes follow. */
#define VALUE_RAW 0x80

const char *seglog_strerror(int code)
{
    switch (code) {
    case SEGLOG_EIO: return "log file input/output failed";
    case SEGLOG_EFORMAT: return "not a log segment (bad header)";
    case SEGLOG_ENOMEM: return "out of memory";
    case SEGLOG_ETOO_LONG: return "name or record too long for the log";
    default: return code >= 0 ? "ok" : "unknown log error";
    }
}

/* ---- little helpers ----------------------------------------------------------- */

/* Appends a varint; the caller reserved 10 bytes. */
static inline void put_varint(struct jbuf *b, uint64_t v)
{
    b->len += varint_put((uint8_t *)b->data + b->len, v);
}

/* Bounded reading of a payload. */
struct cursor {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t take_varint(struct cursor *c)
{
    uint64_t v;
    size_t used = varint_get(c->p, (size_t)(c->end - c->p), &v);
    if (used == 0) {
        c->bad = true;
        return 0;
    }
    c->p += used;
    return v;
}

static uint8_t take_u8(struct cursor *c)
{
    if (c->p >= c->end) {
        c->bad = true;
        return 0;
    }
    return *c->p++;
}

static const char *take_bytes(struct cursor *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const char *s = (const char *)c->p;
    c->p += n;
    return s;
}

/* ---- building ---------------------------------------------------------------- */

void seglog_builder_init(struct seglog_builder *b)
{
    memset(b, 0, sizeof(*b));
    jbuf_init(&b->defs, 256);
    jbuf_init(&b->samples, 4096);
}

void seglog_builder_free(struct seglog_builder *b)
{
    jbuf_free(&b->defs);
    jbuf_free(&b->samples);
}

int seglog_record_begin(struct seglog_builder *b, const char *cluster, size_t cluster_len,
                        const char *host, size_t host_len)
{
    if (cluster_len == 0 || cluster_len > 255 || host_len == 0 || host_len > 255)
        return SEGLOG_ETOO_LONG;
    memcpy(b->cluster, cluster, cluster_len);
    memcpy(b->host, host, host_len);
    b->cluster_len = (uint8_t)cluster_len;
    b->host_len = (uint8_t)host_len;
    jbuf_reset(&b->defs);
    jbuf_reset(&b->samples);
    b->def_count = b->sample_count = 0;
    b->prev_ts = 0;
    return 0;
}

int seglog_record_def(struct seglog_builder *b, uint32_t level_id, const char *const *names,
                      const size_t *lens, size_t depth)
{
    if (level_id == 0 || depth == 0 || depth > SEGLOG_MAX_DEPTH)
        return SEGLOG_ETOO_LONG;
    size_t need = 11;
    for (size_t i = 0; i < depth; i++) {
        if (lens[i] == 0 || lens[i] > 255)
            return SEGLOG_ETOO_LONG;
        need += 1 + lens[i];
    }
    if (!jbuf_reserve(&b->defs, need))
        return SEGLOG_ENOMEM;
    put_varint(&b->defs, level_id);
    uint8_t *p = (uint8_t *)b->defs.data + b->defs.len;
    *p++ = (uint8_t)depth;
    for (size_t i = 0; i < depth; i++) {
        *p++ = (uint8_t)lens[i];
        memcpy(p, names[i], lens[i]);
        p += lens[i];
    }
    b->defs.len = (size_t)(p - (uint8_t *)b->defs.data);
    b->def_count++;
    return 0;
}

int seglog_record_sample(struct seglog_builder *b, uint32_t level_id, uint32_t metric,
                         int64_t ts, float value)
{
    struct jbuf *out = &b->samples;
    if (!jbuf_reserve(out, 4 * 10 + 1))
        return SEGLOG_ENOMEM;
    uint8_t *p = (uint8_t *)out->data + out->len;
    p += varint_put(p, level_id);
    p += varint_put(p, metric);
    p += varint_put(p, zigzag((int64_t)((uint64_t)ts - (uint64_t)b->prev_ts)));
    b->prev_ts = ts;
    /* The decimal count that fitted the previous value is tried first:
     * one series after another of the same kind mostly share it. */
    int64_t r;
    int k = b->decimals_hint;
    bool found = codec_decimal_of(value, k, &r);
    for (k = found ? k : 0; !found && k <= CODEC_MAX_DECIMALS; k++)
        if (codec_decimal_of(value, k, &r)) {
            found = true;
            break;
        }
    if (found) {
        b->decimals_hint = (uint8_t)k;
        *p++ = (uint8_t)k;
        p += varint_put(p, zigzag(r));
    } else {
        uint32_t bits;
        memcpy(&bits, &value, 4);
        *p++ = VALUE_RAW;
        le_put32(p, bits);
        p += 4;
    }
    out->len = (size_t)(p - (uint8_t *)out->data);
    b->sample_count++;
    return 0;
}

int seglog_record_end(struct seglog_builder *b, struct jbuf *out)
{
    size_t payload = 2 + b->cluster_len + b->host_len + 10 + b->defs.len + 10 + b->samples.len;
    if (payload > SEGLOG_MAX_PAYLOAD)
        return SEGLOG_ETOO_LONG;
    if (!jbuf_reserve(out, SEGLOG_RECORD_HEADER + payload))
        return SEGLOG_ENOMEM;
    size_t head = out->len;
    out->len += SEGLOG_RECORD_HEADER;
    uint8_t *p = (uint8_t *)out->data + out->len;
    *p++ = b->cluster_len;
    memcpy(p, b->cluster, b->cluster_len);
    p += b->cluster_len;
    *p++ = b->host_len;
    memcpy(p, b->host, b->host_len);
    p += b->host_len;
    out->len = (size_t)(p - (uint8_t *)out->data);
    put_varint(out, b->def_count);
    jbuf_append(out, b->defs.data, b->defs.len);
    put_varint(out, b->sample_count);
    jbuf_append(out, b->samples.data, b->samples.len);
    uint8_t *h = (uint8_t *)out->data + head;
    uint32_t len = (uint32_t)(out->len - head - SEGLOG_RECORD_HEADER);
    le_put32(h, SEGLOG_RECORD_MAGIC);
    le_put32(h + 4, len);
    le_put32(h + 8, crc32_ieee(h + SEGLOG_RECORD_HEADER, len));
    jbuf_reset(&b->defs);
    jbuf_reset(&b->samples);
    b->def_count = b->sample_count = 0;
    b->prev_ts = 0;
    return 0;
}

/* ---- reading ----------------------------------------------------------------- */

struct scan_state {
    struct seglog_def *defs;
    size_t defs_cap;
    struct seglog_sample *samples;
    size_t samples_cap;
    size_t metric_count;
};

static bool grow(void **array, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < want)
        cap2 *= 2;
    void *grown = realloc(*array, cap2 * elem);
    if (!grown)
        return false;
    *array = grown;
    *cap = cap2;
    return true;
}

/* Decodes a payload whose checksum verified. 0, 1 (contents do not hold
 * together: treated like corruption) or SEGLOG_ENOMEM. */
static int decode_payload(struct scan_state *s, const uint8_t *data, size_t len,
                          struct seglog_record *r)
{
    struct cursor c = {data, data + len, false};
    r->cluster_len = take_u8(&c);
    r->cluster = take_bytes(&c, r->cluster_len);
    r->host_len = take_u8(&c);
    r->host = take_bytes(&c, r->host_len);
    uint64_t defs = take_varint(&c);
    /* every definition takes at least 4 bytes: a count beyond that is damage */
    if (c.bad || r->cluster_len == 0 || r->host_len == 0 || defs > len / 4)
        return 1;
    if (!grow((void **)&s->defs, &s->defs_cap, defs, sizeof(*s->defs)))
        return SEGLOG_ENOMEM;
    for (uint64_t i = 0; i < defs; i++) {
        struct seglog_def *d = &s->defs[i];
        uint64_t id = take_varint(&c);
        d->depth = take_u8(&c);
        if (id == 0 || id > UINT32_MAX || d->depth == 0 || d->depth > SEGLOG_MAX_DEPTH)
            return 1;
        d->level_id = (uint32_t)id;
        for (uint32_t k = 0; k < d->depth; k++) {
            d->lens[k] = take_u8(&c);
            d->names[k] = take_bytes(&c, d->lens[k]);
            if (d->lens[k] == 0)
                return 1;
        }
        if (c.bad)
            return 1;
    }
    uint64_t n = take_varint(&c);
    /* every sample takes at least 5 bytes */
    if (c.bad || n > len / 5)
        return 1;
    if (!grow((void **)&s->samples, &s->samples_cap, n, sizeof(*s->samples)))
        return SEGLOG_ENOMEM;
    int64_t ts = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct seglog_sample *x = &s->samples[i];
        uint64_t level = take_varint(&c);
        uint64_t metric = take_varint(&c);
        ts = (int64_t)((uint64_t)ts + (uint64_t)unzigzag(take_varint(&c)));
        uint8_t kind = take_u8(&c);
        if (kind <= CODEC_MAX_DECIMALS) {
            int64_t v = unzigzag(take_varint(&c));
            if (v >= ((int64_t)1 << 40) || v <= -((int64_t)1 << 40))
                return 1;
            x->value = codec_decimal_value(v, kind);
        } else if (kind == VALUE_RAW) {
            const char *bits = take_bytes(&c, 4);
            if (!bits)
                return 1;
            uint32_t u = le_get32((const uint8_t *)bits);
            memcpy(&x->value, &u, 4);
            if (isnan(x->value))
                return 1;
        } else {
            return 1;
        }
        if (c.bad || level > UINT32_MAX || metric >= s->metric_count)
            return 1;
        x->level_id = (uint32_t)level;
        x->metric = (uint32_t)metric;
        x->ts = ts;
    }
    if (c.p != c.end)
        return 1;
    r->defs = s->defs;
    r->def_count = (size_t)defs;
    r->samples = s->samples;
    r->sample_count = (size_t)n;
    return 0;
}

/* Decodes the header. 0 or SEGLOG_EFORMAT / SEGLOG_ENOMEM; *end is where
 * records begin. */
static int decode_header(const uint8_t *d, size_t len, struct seglog_header *h, size_t *end)
{
    if (len < SEGLOG_HEADER_FIXED || le_get32(d) != SEGLOG_FILE_MAGIC ||
        le_get16(d + 4) != SEGLOG_VERSION)
        return SEGLOG_EFORMAT;
    uint32_t table_len = le_get32(d + 16);
    if (table_len < 2 || table_len > len - SEGLOG_HEADER_FIXED ||
        len - SEGLOG_HEADER_FIXED - table_len < 4)
        return SEGLOG_EFORMAT;
    size_t crc_at = SEGLOG_HEADER_FIXED + table_len;
    if (crc32_ieee(d, crc_at) != le_get32(d + crc_at))
        return SEGLOG_EFORMAT;
    const uint8_t *t = d + SEGLOG_HEADER_FIXED, *tend = t + table_len;
    size_t count = le_get16(t);
    t += 2;
    h->seq = le_get64(d + 8);
    h->metric_count = count;
    h->metrics = calloc(count ? count : 1, sizeof(char *));
    h->metric_lens = calloc(count ? count : 1, sizeof(size_t));
    if (!h->metrics || !h->metric_lens) {
        free(h->metrics);
        free(h->metric_lens);
        return SEGLOG_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        if (tend - t < 2 || (size_t)(tend - t - 2) < le_get16(t)) {
            free(h->metrics);
            free(h->metric_lens);
            return SEGLOG_EFORMAT;
        }
        h->metric_lens[i] = le_get16(t);
        h->metrics[i] = (const char *)t + 2;
        t += 2 + h->metric_lens[i];
    }
    if (t != tend) {
        free(h->metrics);
        free(h->metric_lens);
        return SEGLOG_EFORMAT;
    }
    *end = crc_at + 4;
    return 0;
}

/* Whether a valid record starts at off; its length in *rec_len. 0 = yes,
 * 1 = no, 2 = the data ends inside what may be a record. */
static int record_at(const uint8_t *d, size_t len, size_t off, size_t *rec_len)
{
    if (len - off < SEGLOG_RECORD_HEADER)
        return 2;
    if (le_get32(d + off) != SEGLOG_RECORD_MAGIC)
        return 1;
    uint32_t plen = le_get32(d + off + 4);
    if (plen > SEGLOG_MAX_PAYLOAD)
        return 1;
    if (len - off - SEGLOG_RECORD_HEADER < plen)
        return 2;
    if (crc32_ieee(d + off + SEGLOG_RECORD_HEADER, plen) != le_get32(d + off + 8))
        return 1;
    *rec_len = SEGLOG_RECORD_HEADER + plen;
    return 0;
}

/* Whether a record that verifies starts anywhere at or after off. */
static bool valid_record_after(const uint8_t *d, size_t len, size_t off)
{
    size_t rec_len;
    for (; off + SEGLOG_RECORD_HEADER <= len; off++)
        if (record_at(d, len, off, &rec_len) == 0)
            return true;
    return false;
}

int seglog_scan(const void *data, size_t len, const struct seglog_reader *rd,
                struct seglog_scan_stats *stats)
{
    const uint8_t *d = data;
    memset(stats, 0, sizeof(*stats));
    struct seglog_header h;
    size_t off;
    int rc = decode_header(d, len, &h, &off);
    if (rc != 0)
        return rc;
    stats->valid_end = off;
    if (rd->header && (rc = rd->header(rd->ctx, &h)) != 0)
        goto out;
    struct scan_state s = {.metric_count = h.metric_count};
    bool in_damage = false;
    while (off < len) {
        size_t rec_len = 0;
        int at = record_at(d, len, off, &rec_len);
        struct seglog_record r;
        if (at == 0) {
            int dec = decode_payload(&s, d + off + SEGLOG_RECORD_HEADER,
                                     rec_len - SEGLOG_RECORD_HEADER, &r);
            if (dec < 0) {
                rc = dec;
                break;
            }
            if (dec == 0) {
                in_damage = false;
                off += rec_len;
                stats->valid_end = off;
                stats->records++;
                stats->samples += r.sample_count;
                if (rd->record && (rc = rd->record(rd->ctx, &r)) != 0)
                    break;
                continue;
            }
            at = 1;
        }
        if (at == 2 && !in_damage && !valid_record_after(d, len, off + 1)) {
            /* a record cut short at the end: a torn write (with a valid
             * record further on, the length was damaged instead) */
            stats->torn_tail = true;
            break;
        }
        if (!in_damage) {
            stats->corrupt++;
            in_damage = true;
        }
        stats->skipped_bytes++;
        off++;
    }
    free(s.defs);
    free(s.samples);
out:
    free(h.metrics);
    free(h.metric_lens);
    return rc;
}

int seglog_replay_file(const char *path, bool truncate_torn_tail,
                       const struct seglog_reader *rd, struct seglog_scan_stats *stats)
{
    char *data;
    size_t len;
    memset(stats, 0, sizeof(*stats));
    if (fs_read_file(path, &data, &len) != 0)
        return SEGLOG_EIO;
    int rc = seglog_scan(data, len, rd, stats);
    free(data);
    if (rc == 0 && truncate_torn_tail && stats->valid_end < len) {
        if (truncate(path, (off_t)stats->valid_end) != 0)
            return SEGLOG_EIO;
    }
    return rc;
}

/* ---- one segment file -------------------------------------------------------- */

struct seglog_file {
    int fd;
    uint64_t seq;
    char *path;
    pthread_mutex_t lock;       /* appends; size */
    uint64_t size;
    pthread_mutex_t sync_lock;  /* one fdatasync at a time */
    uint64_t synced;            /* bytes known durable (under sync_lock) */
};

void seglog_name(uint64_t seq, char *name, size_t size)
{
    snprintf(name, size, "wal-%020" PRIu64 ".log", seq);
}

bool seglog_parse_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != 28 || strncmp(name, "wal-", 4) != 0 || strcmp(name + 24, ".log") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *seq = v;
    return true;
}

int seglog_create(const char *dir, uint64_t seq, const char *const *metrics, size_t metric_count,
                  bool durable, struct seglog_file **out)
{
    if (metric_count > SEGLOG_MAX_METRICS)
        return SEGLOG_ETOO_LONG;
    struct jbuf file;
    jbuf_init(&file, 4096);
    uint8_t fixed[SEGLOG_HEADER_FIXED] = {0};
    le_put32(fixed, SEGLOG_FILE_MAGIC);
    le_put16(fixed + 4, SEGLOG_VERSION);
    le_put64(fixed + 8, seq);
    size_t table_len = 2;
    for (size_t i = 0; i < metric_count; i++)
        table_len += 2 + strlen(metrics[i]);
    le_put32(fixed + 16, (uint32_t)table_len);
    jbuf_append(&file, fixed, sizeof fixed);
    uint8_t two[2], four[4];
    le_put16(two, (uint16_t)metric_count);
    jbuf_append(&file, two, 2);
    for (size_t i = 0; i < metric_count; i++) {
        size_t l = strlen(metrics[i]);
        if (l > 65535) {
            jbuf_free(&file);
            return SEGLOG_ETOO_LONG;
        }
        le_put16(two, (uint16_t)l);
        jbuf_append(&file, two, 2);
        jbuf_append(&file, metrics[i], l);
    }
    if (!file.failed) {
        le_put32(four, crc32_ieee(file.data, file.len));
        jbuf_append(&file, four, 4);
    }

    struct seglog_file *f = calloc(1, sizeof(*f));
    char name[32];
    seglog_name(seq, name, sizeof name);
    if (!f || file.failed || !(f->path = fs_join(dir, name))) {
        free(f);
        jbuf_free(&file);
        return SEGLOG_ENOMEM;
    }
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    int rc = f->fd >= 0 ? fs_write_all(f->fd, file.data, file.len) : -errno;
    if (rc == 0 && durable && (fdatasync(f->fd) != 0 || fs_fsync_dir(dir) != 0))
        rc = -errno;
    if (rc != 0) {
        int saved = errno;
        if (f->fd >= 0) {
            close(f->fd);
            unlink(f->path);
        }
        free(f->path);
        free(f);
        jbuf_free(&file);
        errno = saved;
        return SEGLOG_EIO;
    }
    f->seq = seq;
    f->size = file.len;
    f->synced = durable ? file.len : 0;
    jbuf_free(&file);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->sync_lock, NULL);
    *out = f;
    return 0;
}

int seglog_append(struct seglog_file *f, const void *data, size_t len)
{
    pthread_mutex_lock(&f->lock);
    int rc = fs_write_all(f->fd, data, len);
    if (rc == 0)
        f->size += len;
    pthread_mutex_unlock(&f->lock);
    return rc == 0 ? 0 : SEGLOG_EIO;
}

int seglog_sync(struct seglog_file *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t want = f->size;
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_lock(&f->sync_lock);
    int rc = 0;
    if (f->synced < want) {
        /* everything appended before this point is covered */
        pthread_mutex_lock(&f->lock);
        uint64_t covered = f->size;
        pthread_mutex_unlock(&f->lock);
        if (fs_log_datasync(f->fd) != 0)
            rc = SEGLOG_EIO;
        else
            f->synced = covered;
    }
    pthread_mutex_unlock(&f->sync_lock);
    return rc;
}

uint64_t seglog_size(const struct seglog_file *f)
{
    pthread_mutex_lock((pthread_mutex_t *)&f->lock);
    uint64_t size = f->size;
    pthread_mutex_unlock((pthread_mutex_t *)&f->lock);
    return size;
}

uint64_t seglog_seq(const struct seglog_file *f)
{
    return f->seq;
}

const char *seglog_path(const struct seglog_file *f)
{
    return f->path;
}

void seglog_close(struct seglog_file *f)
{
    if (!f)
        return;
    close(f->fd);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->sync_lock);
    free(f->path);
    free(f);
}
