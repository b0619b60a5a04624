/*
 * libFuzzer target for the native snapshot reader: nsnap_scan on a whole
 * file (every block inside the input), each block's image through
 * chain_import into a chain (the store's loader: any image must be taken
 * or refused as corrupt, never read out of bounds), the chain read back,
 * and nsnap_to_ckpt (the archive's and the export's decoder).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_scan.h"

#include "persist/nsnap.h"
#include "store/buffer.h"

struct fuzz_ctx {
    const uint8_t *data;
    size_t len;
    struct buffer *head;
    int64_t bytes;
};

static void check_inside(const struct fuzz_ctx *c, const void *p, size_t n)
{
    fuzz_check_inside(c->data, c->len, p, n);
}

static int on_block(void *vctx, const struct nsnap_block *b)
{
    struct fuzz_ctx *c = vctx;
    if (b->depth > NSNAP_MAX_DEPTH)
        abort();
    for (size_t i = 0; i < b->depth; i++)
        check_inside(c, b->names[i], b->lens[i]);
    check_inside(c, b->metric, b->metric_len);
    check_inside(c, b->image, b->image_len);
    uint64_t samples = 0;
    int rc = chain_import(&c->head, b->image, b->image_len, &c->bytes, &samples);
    if (rc != 0 && rc != BUFFER_ECORRUPT && rc != BUFFER_ERANGE)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_exact_copy(data, size);
    struct fuzz_ctx c = {buf, size, NULL, 0};
    struct nsnap_stats st;
    int64_t from, to;
    int rc = nsnap_scan(buf, size, &from, &to, on_block, &c, &st);
    if (rc != 0 && rc != NSNAP_EFORMAT)
        abort();
    if (c.head) {
        int64_t first, end;
        if (chain_read_range(c.head, INT64_MAX / 4, &first, &end) && end > first) {
            float out[64];
            int64_t step = (end - first) / 64 + 1;
            chain_read(c.head, first, step, 64, out);
        }
    }
    chain_free_all(&c.head, &c.bytes);
    if (c.bytes != 0)
        abort();   /* every byte the chain took is given back */
    struct ckpt_file f;
    char err[128];
    if (nsnap_to_ckpt(buf, size, &f, NULL, err, sizeof err) == 0)
        ckpt_file_free(&f);
    free(buf);
    return 0;
}
