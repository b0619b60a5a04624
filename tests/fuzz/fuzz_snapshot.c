/*
 * libFuzzer target for snapshot_decode: any input either fails with a
 * message, or decodes to a tree that encodes to bytes which decode to the
 * same tree and encode to the same bytes again.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_compare.h"
#include "persist/snapshot.h"
#include "fuzz_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_exact_copy(data, size);

    struct ckpt_file f, g;
    char err[256];
    int rc = snapshot_decode(buf, size, &f, err, sizeof err);
    if (rc != 0) {
        assert(rc == SNAPSHOT_EFORMAT || rc == SNAPSHOT_ENOMEM);
        assert(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        assert(f.host.name == NULL && f.host.series == NULL && f.host.children == NULL);
        free(buf);
        return 0;
    }
    struct jbuf a, b;
    jbuf_init(&a, 0);
    jbuf_init(&b, 0);
    assert(snapshot_encode(&f, &a) == 0);
    /* the decoder refuses trailing bytes, and encoding sorts: a sorted input
     * comes back byte for byte */
    assert(a.len == size);
    assert(snapshot_decode(a.data, a.len, &g, err, sizeof err) == 0);
    assert(f.from == g.from && f.to == g.to);
    ckpt_assert_same_level(&f.host, &g.host, true);
    assert(snapshot_encode(&g, &b) == 0);
    assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    ckpt_file_free(&f);
    ckpt_file_free(&g);
    jbuf_free(&a);
    jbuf_free(&b);
    free(buf);
    return 0;
}
