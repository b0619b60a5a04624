/* Tests for persist/snapshot.c (and persist/ckpt.c): the .bin fixture decoded
 * field by field and re-encoded byte for byte, round trips of random trees,
 * every truncation of the fixture, random corruption, hostile counts and
 * nesting, and the decoder's extra refusals.
 *
 * Fixtures: the repository's tests/fixtures
 * (see persist_testutil.h). */
#include "testutil.h"
#include "persist_testutil.h"

#include <stdlib.h>

#include "persist/snapshot.h"

#define BIN_FIXTURE "derived/checkpoints/testcluster/node002/1700000000.bin"

static void set_series(struct ckpt_series *s, const char *metric, const float *v, uint32_t n)
{
    s->metric = pt_strdup(metric);
    s->frequency = 60;
    s->start = 1700000030;
    s->count = n;
    s->values = malloc(n * sizeof(float));
    memcpy(s->values, v, n * sizeof(float));
}

/* The fixture's tree, built with children and metrics deliberately unsorted. */
static void build_fixture_tree(struct ckpt_file *f)
{
    memset(f, 0, sizeof *f);
    f->from = 1700000000;
    f->to = 1700043200;
    f->host.name = pt_strdup("");
    f->host.series_count = 1;
    f->host.series = calloc(1, sizeof(struct ckpt_series));
    set_series(&f->host.series[0], "cpu_load", (float[]){1.0f, 2.0f, 3.0f}, 3);
    f->host.child_count = 2;
    f->host.children = calloc(2, sizeof(struct ckpt_level));
    struct ckpt_level *sock = &f->host.children[0], *hwt = &f->host.children[1];
    sock->name = pt_strdup("socket0");
    sock->series_count = 1;
    sock->series = calloc(1, sizeof(struct ckpt_series));
    uint32_t nan_bits = 0x7FC00000u;
    float nan;
    memcpy(&nan, &nan_bits, sizeof nan);
    set_series(&sock->series[0], "mem_bw", (float[]){100.0f, nan, 200.0f}, 3);
    hwt->name = pt_strdup("hwthread1");
    hwt->series_count = 1;
    hwt->series = calloc(1, sizeof(struct ckpt_series));
    set_series(&hwt->series[0], "cpu_user", (float[]){5.5f}, 1);
}

static void test_decode_fixture(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bin = pt_fixture(BIN_FIXTURE, &len);
    assert_int_equal(len, 180);
    struct ckpt_file f;
    char err[256];
    assert_int_equal(snapshot_decode(bin, len, &f, err, sizeof err), 0);
    assert_int_equal(f.from, 1700000000);
    assert_int_equal(f.to, 1700043200);
    assert_str_eq(f.host.name, "");

    assert_int_equal(f.host.series_count, 1);
    const struct ckpt_series *s = pt_series(&f.host, "cpu_load");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 3);
    assert_true(s->values[0] == 1.0f && s->values[1] == 2.0f && s->values[2] == 3.0f);

    assert_int_equal(f.host.child_count, 2);
    const struct ckpt_level *hwt = pt_child(&f.host, "hwthread1");
    assert_non_null(hwt);
    assert_int_equal(hwt->series_count, 1);
    assert_int_equal(hwt->child_count, 0);
    s = pt_series(hwt, "cpu_user");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 1);
    assert_true(s->values[0] == 5.5f);

    const struct ckpt_level *sock = pt_child(&f.host, "socket0");
    assert_non_null(sock);
    assert_int_equal(sock->series_count, 1);
    assert_int_equal(sock->child_count, 0);
    s = pt_series(sock, "mem_bw");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 3);
    assert_true(s->values[0] == 100.0f && s->values[2] == 200.0f);
    assert_int_equal(pt_bits(s->values[1]), 0x7FC00000u);

    ckpt_file_free(&f);
    assert_null(f.host.series);
    free(bin);
}

static void test_reencode_fixture_bytes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bin = pt_fixture(BIN_FIXTURE, &len);
    struct ckpt_file f;
    assert_int_equal(snapshot_decode(bin, len, &f, NULL, 0), 0);
    struct jbuf out;
    jbuf_init(&out, 0);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, bin, len);
    ckpt_file_free(&f);

    /* the same bytes from a tree built in a different order */
    build_fixture_tree(&f);
    jbuf_reset(&out);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, bin, len);
    ckpt_file_free(&f);

    /* appends after existing bytes */
    jbuf_reset(&out);
    jbuf_puts(&out, "xy");
    build_fixture_tree(&f);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    assert_int_equal(out.len, len + 2);
    assert_memory_equal(out.data + 2, bin, len);
    ckpt_file_free(&f);
    jbuf_free(&out);
    free(bin);
}

static void test_empty_tree(void **state)
{
    (void)state;
    struct ckpt_file f = {.from = -5, .to = 7};
    f.host.name = pt_strdup("");
    struct jbuf out;
    jbuf_init(&out, 0);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    static const uint8_t expect[28] = {0x01, 0x00, 0x5b, 0xcc, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0x07, 0,    0,    0,    0,    0,    0,    0};
    assert_int_equal(out.len, 28);
    assert_memory_equal(out.data, expect, 28);
    struct ckpt_file g;
    assert_int_equal(snapshot_decode(out.data, out.len, &g, NULL, 0), 0);
    assert_int_equal(g.from, -5);
    assert_int_equal(g.to, 7);
    assert_int_equal(g.host.series_count, 0);
    assert_int_equal(g.host.child_count, 0);
    ckpt_file_free(&f);
    ckpt_file_free(&g);
    jbuf_free(&out);
}

static const char *const bin_pieces[] = {"a", "z", "_", "0", "9", "\xff", "\x01", "\xc3\xa9",
                                         " ", "/", "\"", "\x80"};

static void test_random_round_trips(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed0001;
    struct pt_tree_opts o = {bin_pieces, sizeof bin_pieces / sizeof *bin_pieces, false, 3};
    for (int iter = 0; iter < 500; iter++) {
        struct ckpt_file f, g;
        pt_rand_file(&seed, &o, &f);
        struct jbuf a, b;
        jbuf_init(&a, 0);
        jbuf_init(&b, 0);
        assert_int_equal(snapshot_encode(&f, &a), 0);
        char err[256];
        int rc = snapshot_decode(a.data, a.len, &g, err, sizeof err);
        if (rc != 0)
            fail_msg("iteration %d: %s", iter, err);
        assert_tree_equal(&f, &g, false);
        assert_int_equal(snapshot_encode(&g, &b), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        ckpt_file_free(&f);
        ckpt_file_free(&g);
        jbuf_free(&a);
        jbuf_free(&b);
    }
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bin = pt_fixture(BIN_FIXTURE, &len);
    for (size_t n = 0; n < len; n++) {
        /* an exact-size copy, so ASan sees any read past the end */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, bin, n);
        struct ckpt_file f;
        memset(&f, 0xAB, sizeof f);
        char err[256];
        int rc = snapshot_decode(cut, n, &f, err, sizeof err);
        if (rc != SNAPSHOT_EFORMAT)
            fail_msg("prefix of %zu bytes: rc %d", n, rc);
        assert_non_null(strstr(err, "at offset"));
        assert_null(f.host.series);
        assert_null(f.host.children);
        assert_null(f.host.name);
        assert_int_equal(f.from, 0);
        free(cut);
    }
    /* one byte too many is refused as well */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, bin, len);
    longer[len] = 0;
    struct ckpt_file f;
    char err[256];
    assert_int_equal(snapshot_decode(longer, len + 1, &f, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "1 trailing bytes after the host level at offset 180");
    free(longer);
    free(bin);
}

static void test_bad_magic(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bin = pt_fixture(BIN_FIXTURE, &len);
    bin[3] = 0xCD;
    struct ckpt_file f;
    char err[256];
    assert_int_equal(snapshot_decode(bin, len, &f, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "bad magic 0xcd5b0001 (expected 0xcc5b0001) at offset 0");
    /* a small err buffer is filled without overflow */
    char small[8];
    assert_int_equal(snapshot_decode(bin, len, &f, small, sizeof small), SNAPSHOT_EFORMAT);
    assert_str_eq(small, "bad mag");
    free(bin);
}

/* Random flips of 1–4 bytes: never a crash; whatever decodes re-encodes and
 * decodes to the same tree. */
static void test_random_corruption(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bin = pt_fixture(BIN_FIXTURE, &len);
    uint8_t *buf = malloc(len);
    uint64_t seed = 0xf11b;
    int decoded = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, bin, len);
        int flips = 1 + (int)(pt_rand(&seed) % 4);
        for (int k = 0; k < flips; k++)
            buf[pt_rand(&seed) % len] ^= (uint8_t)(1 + pt_rand(&seed) % 255);
        struct ckpt_file f, g;
        char err[256];
        if (snapshot_decode(buf, len, &f, err, sizeof err) != 0) {
            assert_true(err[0] != '\0');
            continue;
        }
        decoded++;
        struct jbuf out;
        jbuf_init(&out, 0);
        assert_int_equal(snapshot_encode(&f, &out), 0);
        assert_int_equal(snapshot_decode(out.data, out.len, &g, NULL, 0), 0);
        assert_tree_equal(&f, &g, false);
        ckpt_file_free(&f);
        ckpt_file_free(&g);
        jbuf_free(&out);
    }
    /* value and timestamp flips decode fine, so some must have decoded */
    assert_true(decoded > 1000);
    free(buf);
    free(bin);
}

static void put_u32(struct jbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    jbuf_append(b, x, 4);
}

static void put_u16(struct jbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    jbuf_append(b, x, 2);
}

static void put_i64(struct jbuf *b, int64_t v)
{
    for (int i = 0; i < 8; i++)
        jbuf_putc(b, (char)(uint8_t)((uint64_t)v >> (8 * i)));
}

static void put_header(struct jbuf *b)
{
    put_u32(b, SNAPSHOT_MAGIC);
    put_i64(b, 1);
    put_i64(b, 2);
}

static void put_metric(struct jbuf *b, const char *name, size_t name_len, int64_t freq,
                       uint32_t n)
{
    put_u16(b, (uint16_t)name_len);
    jbuf_append(b, name, name_len);
    put_i64(b, freq);
    put_i64(b, 100);
    put_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        put_u32(b, 0x3f800000u);
}

static int decode_buf(const struct jbuf *b, char *err, size_t err_len)
{
    /* exact-size copy for ASan */
    uint8_t *copy = malloc(b->len);
    memcpy(copy, b->data, b->len);
    struct ckpt_file f;
    int rc = snapshot_decode(copy, b->len, &f, err, err_len);
    if (rc == 0)
        ckpt_file_free(&f);
    free(copy);
    return rc;
}

static void test_hostile_counts(void **state)
{
    (void)state;
    struct jbuf b;
    char err[256];
    jbuf_init(&b, 0);

    put_header(&b);
    put_u32(&b, 0xFFFFFFFFu); /* num_metrics */
    put_u32(&b, 0);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "num_metrics 4294967295 exceeds the remaining 4 bytes at offset 20");

    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 1);
    put_u16(&b, 1);
    jbuf_putc(&b, 'm');
    put_i64(&b, 60);
    put_i64(&b, 0);
    put_u32(&b, 0x40000000u); /* num_values */
    put_u32(&b, 0);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "num_values 1073741824 exceeds the remaining 4 bytes at offset 43");

    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 0);
    put_u32(&b, 0x10000000u); /* num_children */
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_non_null(strstr(err, "num_children 268435456 exceeds"));

    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 1);
    put_u16(&b, 0xFFFF); /* name longer than the input */
    jbuf_append(&b, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "metric name length 65535 exceeds the remaining 36 bytes at offset 24");
    jbuf_free(&b);
}

static void put_nested(struct jbuf *b, int depth)
{
    jbuf_reset(b);
    put_header(b);
    for (int d = 0; d < depth; d++) {
        put_u32(b, 0);
        put_u32(b, 1);
        put_u16(b, 1);
        jbuf_putc(b, 'x');
    }
    put_u32(b, 1);
    put_metric(b, "m", 1, 10, 1);
    put_u32(b, 0);
}

static void test_nesting_bounded(void **state)
{
    (void)state;
    struct jbuf b;
    char err[256];
    jbuf_init(&b, 0);
    put_nested(&b, 8);
    assert_int_equal(decode_buf(&b, err, sizeof err), 0);
    put_nested(&b, 9);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_non_null(strstr(err, "nested deeper than 8"));
    /* far deeper than any stack could take if the recursion were unbounded */
    put_nested(&b, 200000);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    jbuf_free(&b);
}

static void test_refusals(void **state)
{
    (void)state;
    struct jbuf b;
    char err[256];
    jbuf_init(&b, 0);

    /* duplicate metric names */
    put_header(&b);
    put_u32(&b, 2);
    put_metric(&b, "m", 1, 10, 1);
    put_metric(&b, "m", 1, 10, 2);
    put_u32(&b, 0);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "duplicate metric 'm' in the level at offset 20");

    /* duplicate children */
    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 0);
    put_u32(&b, 2);
    for (int i = 0; i < 2; i++) {
        put_u16(&b, 2);
        jbuf_append(&b, "c0", 2);
        put_u32(&b, 0);
        put_u32(&b, 0);
    }
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "duplicate child 'c0' in the level at offset 20");

    /* NUL inside a name */
    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 1);
    put_metric(&b, "a\0b", 3, 10, 0);
    put_u32(&b, 0);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "metric name contains a NUL byte at offset 24");

    /* non-positive frequency */
    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 1);
    put_metric(&b, "cpu", 3, 0, 0);
    put_u32(&b, 0);
    assert_int_equal(decode_buf(&b, err, sizeof err), SNAPSHOT_EFORMAT);
    assert_str_eq(err, "metric 'cpu' has frequency 0 (must be positive) at offset 24");

    /* unordered but distinct names are fine and come back sorted */
    jbuf_reset(&b);
    put_header(&b);
    put_u32(&b, 3);
    put_metric(&b, "b", 1, 10, 0);
    put_metric(&b, "\xff", 1, 10, 1);
    put_metric(&b, "a", 1, 10, 2);
    put_u32(&b, 0);
    struct ckpt_file f;
    assert_int_equal(snapshot_decode(b.data, b.len, &f, err, sizeof err), 0);
    assert_int_equal(f.host.series_count, 3);
    assert_str_eq(f.host.series[0].metric, "a");
    assert_int_equal(f.host.series[0].count, 2);
    assert_str_eq(f.host.series[1].metric, "b");
    assert_null(f.host.series[1].values);
    assert_str_eq(f.host.series[2].metric, "\xff");
    ckpt_file_free(&f);
    jbuf_free(&b);
}

static void test_encode_too_long(void **state)
{
    (void)state;
    struct ckpt_file f;
    build_fixture_tree(&f);
    free(f.host.children[1].series[0].metric);
    char *name = malloc(65537);
    memset(name, 'n', 65536);
    name[65536] = '\0';
    f.host.children[1].series[0].metric = name;
    struct jbuf out;
    jbuf_init(&out, 0);
    jbuf_puts(&out, "keep");
    assert_int_equal(snapshot_encode(&f, &out), SNAPSHOT_ETOO_LONG);
    assert_int_equal(out.len, 4);
    assert_false(out.failed);

    /* 65535 bytes is the limit and still round-trips */
    name[65535] = '\0';
    jbuf_reset(&out);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    struct ckpt_file g;
    assert_int_equal(snapshot_decode(out.data, out.len, &g, NULL, 0), 0);
    assert_tree_equal(&f, &g, false);
    ckpt_file_free(&g);
    ckpt_file_free(&f);
    jbuf_free(&out);
}

static void test_ckpt_sort_and_free(void **state)
{
    (void)state;
    struct ckpt_file f;
    build_fixture_tree(&f);
    ckpt_level_sort(&f.host);
    assert_str_eq(f.host.children[0].name, "hwthread1");
    assert_str_eq(f.host.children[1].name, "socket0");
    ckpt_file_free(&f);
    assert_int_equal(f.from, 0);
    assert_null(f.host.children);
    ckpt_file_free(&f); /* freeing twice is harmless after zeroing */
    ckpt_file_free(NULL);
    ckpt_level_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_fixture),
        cmocka_unit_test(test_reencode_fixture_bytes),
        cmocka_unit_test(test_empty_tree),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_nesting_bounded),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_encode_too_long),
        cmocka_unit_test(test_ckpt_sort_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
