/*
 * libFuzzer target for wal_scan: the input is a whole WAL image. Every
 * delivered record must lie inside the input, the statistics must be
 * consistent, and rescanning the valid prefix [0, valid_end) must deliver
 * the same records again with neither a torn nor a corrupt tail (that prefix
 * is what wal_replay_file keeps when it truncates).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_scan.h"

#include "persist/wal.h"

struct fuzz_ctx {
    const uint8_t *data;
    size_t len;
    uint64_t hash;
    uint64_t count;
};

static void check_inside(const struct fuzz_ctx *c, const void *p, size_t n)
{
    fuzz_check_inside(c->data, c->len, p, n);
}

static int on_record(void *vctx, const struct wal_record *rec)
{
    struct fuzz_ctx *c = vctx;
    check_inside(c, rec->metric, rec->metric_len);
    assert(rec->sel_count <= WAL_MAX_SELECTOR);
    fuzz_hash(&c->hash, &rec->ts, sizeof rec->ts);
    fuzz_hash(&c->hash, rec->metric, rec->metric_len);
    for (size_t i = 0; i < rec->sel_count; i++) {
        assert(rec->sel_lens[i] <= 255);
        check_inside(c, rec->sel[i], rec->sel_lens[i]);
        fuzz_hash(&c->hash, rec->sel[i], rec->sel_lens[i]);
    }
    fuzz_hash(&c->hash, &rec->value, sizeof rec->value);
    c->count++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_exact_copy(data, size);

    struct fuzz_ctx all = {buf, size, 14695981039346656037ULL, 0};
    struct wal_scan_stats st;
    int rc = wal_scan(buf, size, on_record, &all, &st);
    if (rc == WAL_EFORMAT) {
        assert(size > 0 && all.count == 0 && st.records == 0 && st.valid_end == 0);
        free(buf);
        return 0;
    }
    assert(rc == 0);
    assert(st.records == all.count);
    assert(st.valid_end <= size);
    assert(size == 0 || st.valid_end >= 4);
    assert(st.skipped_bytes <= size);
    assert(st.corrupt <= st.skipped_bytes);
    /* nothing after valid_end is unaccounted for */
    assert(st.valid_end == size || st.torn_tail || st.corrupt > 0);
    if (st.valid_end == size)
        assert(!st.torn_tail);

    struct fuzz_ctx prefix = {buf, (size_t)st.valid_end, 14695981039346656037ULL, 0};
    struct wal_scan_stats st2;
    rc = wal_scan(buf, (size_t)st.valid_end, on_record, &prefix, &st2);
    assert(rc == 0);
    assert(prefix.count == all.count && prefix.hash == all.hash);
    assert(!st2.torn_tail && st2.valid_end == st.valid_end);
    free(buf);
    return 0;
}
