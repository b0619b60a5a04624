/*
 * libFuzzer target for jsonckpt_decode: any input either fails with a
 * message, or decodes to a tree whose encoding decodes to the same tree
 * (values bit for bit, NaN as NaN) and encodes to the same text again.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_compare.h"
#include "persist/jsonckpt.h"
#include "fuzz_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_exact_copy(data, size);

    struct ckpt_file f, g;
    char err[256];
    int rc = jsonckpt_decode(buf, size, &f, err, sizeof err);
    if (rc != 0) {
        assert(rc == JSONCKPT_EFORMAT || rc == JSONCKPT_ENOMEM);
        assert(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        assert(f.host.name == NULL && f.host.series == NULL && f.host.children == NULL);
        free(buf);
        return 0;
    }
    struct jbuf a, b;
    jbuf_init(&a, 0);
    jbuf_init(&b, 0);
    assert(jsonckpt_encode(&f, &a) == 0);
    assert(a.len > 0 && a.data[a.len - 1] == '\n');
    rc = jsonckpt_decode(a.data, a.len, &g, err, sizeof err);
    assert(rc == 0);
    assert(f.from == g.from && f.to == g.to);
    ckpt_assert_same_level(&f.host, &g.host, false);
    assert(jsonckpt_encode(&g, &b) == 0);
    assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    ckpt_file_free(&f);
    ckpt_file_free(&g);
    jbuf_free(&a);
    jbuf_free(&b);
    free(buf);
    return 0;
}
