/*
 * libFuzzer target for seglog_scan (the native log reader): the input is a
 * whole segment image. Every delivered name and definition must lie inside
 * the input, every sample's metric index inside the header's table and its
 * value not NaN; rescanning the valid prefix [0, valid_end) must deliver
 * the same records and samples with neither a torn nor a corrupt tail
 * (that prefix is what seglog_replay_file keeps when it truncates).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_scan.h"

#include "persist/seglog.h"

struct fuzz_ctx {
    const uint8_t *data;
    size_t len;
    size_t metric_count;
    uint64_t hash;
};

static void check_inside(const struct fuzz_ctx *c, const void *p, size_t n)
{
    fuzz_check_inside(c->data, c->len, p, n);
}

static int on_header(void *vctx, const struct seglog_header *h)
{
    struct fuzz_ctx *c = vctx;
    c->metric_count = h->metric_count;
    for (size_t i = 0; i < h->metric_count; i++)
        check_inside(c, h->metrics[i], h->metric_lens[i]);
    return 0;
}

static int on_record(void *vctx, const struct seglog_record *r)
{
    struct fuzz_ctx *c = vctx;
    check_inside(c, r->cluster, r->cluster_len);
    check_inside(c, r->host, r->host_len);
    if (r->cluster_len == 0 || r->host_len == 0)
        abort();
    for (size_t i = 0; i < r->def_count; i++) {
        const struct seglog_def *d = &r->defs[i];
        if (d->level_id == 0 || d->depth == 0 || d->depth > SEGLOG_MAX_DEPTH)
            abort();
        for (uint32_t k = 0; k < d->depth; k++) {
            check_inside(c, d->names[k], d->lens[k]);
            fuzz_hash(&c->hash, d->names[k], d->lens[k]);
        }
    }
    for (size_t i = 0; i < r->sample_count; i++) {
        const struct seglog_sample *x = &r->samples[i];
        if (x->metric >= c->metric_count || isnan(x->value))
            abort();
        /* field by field: the struct's padding is not part of a sample */
        fuzz_hash(&c->hash, &x->ts, sizeof x->ts);
        fuzz_hash(&c->hash, &x->value, sizeof x->value);
        fuzz_hash(&c->hash, &x->level_id, sizeof x->level_id);
        fuzz_hash(&c->hash, &x->metric, sizeof x->metric);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_exact_copy(data, size);
    struct fuzz_ctx c = {buf, size, 0, 14695981039346656037ULL};
    struct seglog_reader rd = {on_header, on_record, &c};
    struct seglog_scan_stats st;
    int rc = seglog_scan(buf, size, &rd, &st);
    if (rc == 0) {
        if (st.valid_end > size)
            abort();
        struct fuzz_ctx again = {buf, st.valid_end, 0, 14695981039346656037ULL};
        struct seglog_reader rd2 = {on_header, on_record, &again};
        struct seglog_scan_stats st2;
        if (seglog_scan(buf, st.valid_end, &rd2, &st2) != 0)
            abort();
        /* damage skipped in the middle stays skipped in the prefix */
        if (st2.torn_tail || st2.records != st.records || st2.samples != st.samples)
            abort();
        if (st.corrupt == 0 && again.hash != c.hash)
            abort();
    } else if (rc != SEGLOG_EFORMAT && rc != SEGLOG_ENOMEM) {
        abort();
    }
    free(buf);
    return 0;
}
