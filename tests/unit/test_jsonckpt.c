/* Tests for persist/jsonckpt.c: the upstream JSON fixture decoded field by
 * field, exact encoder output (key order, sorting, escaping, shortest float32
 * text, null for NaN/Inf), bit-exact round trips of random float32 values and
 * random trees, upstream one-decimal files, Go-like leniency (unknown keys,
 * missing fields) and clear refusals (syntax, wrong types, truncations,
 * nesting).
 *
 * Fixtures: the repository's tests/fixtures
 * (see persist_testutil.h). */
#include "testutil.h"
#include "persist_testutil.h"

#include <stdlib.h>

#include "persist/jsonckpt.h"

#define JSON_FIXTURE "derived/checkpoints/testcluster/node001/1700000000.json"

/* The fixture decoded and written back by our encoder: same layout, values
 * in shortest float32 form (45.2 stays 45.2, 47.0 becomes 47). */
static const char fixture_reencoded[] =
    "{\"metrics\":{\"cpu_load\":{\"frequency\":60,\"start\":1700000030,\"data\":[0.5,0.7,0.9]},"
    "\"mem_used\":{\"frequency\":60,\"start\":1700000030,\"data\":[45.2,null,47]}},"
    "\"children\":{\"hwthread0\":{\"metrics\":{\"cpu_user\":{\"frequency\":60,"
    "\"start\":1700000030,\"data\":[12,null,13.5]}},\"children\":{},\"from\":1700000000,"
    "\"to\":1700043200}},\"from\":1700000000,\"to\":1700043200}\n";

static int decode_str(const char *text, struct ckpt_file *f, char *err, size_t err_len)
{
    /* exact-size copy without terminator, so ASan sees any overread */
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    int rc = jsonckpt_decode(copy, n, f, err, err_len);
    free(copy);
    return rc;
}

static char *encode_str(struct ckpt_file *f)
{
    struct jbuf out;
    jbuf_init(&out, 0);
    assert_int_equal(jsonckpt_encode(f, &out), 0);
    return jbuf_steal(&out, NULL);
}

static void test_decode_fixture(void **state)
{
    (void)state;
    size_t len;
    char *json = (char *)pt_fixture(JSON_FIXTURE, &len);
    assert_int_equal(len, 345);
    struct ckpt_file f;
    char err[256];
    assert_int_equal(jsonckpt_decode(json, len, &f, err, sizeof err), 0);
    assert_int_equal(f.from, 1700000000);
    assert_int_equal(f.to, 1700043200);
    assert_str_eq(f.host.name, "");
    assert_int_equal(f.host.series_count, 2);

    const struct ckpt_series *s = pt_series(&f.host, "cpu_load");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 3);
    assert_true(s->values[0] == 0.5f && s->values[1] == 0.7f && s->values[2] == 0.9f);

    s = pt_series(&f.host, "mem_used");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 3);
    assert_true(s->values[0] == 45.2f);
    assert_nan(s->values[1]);
    assert_true(s->values[2] == 47.0f);

    assert_int_equal(f.host.child_count, 1);
    const struct ckpt_level *hw = pt_child(&f.host, "hwthread0");
    assert_non_null(hw);
    assert_int_equal(hw->child_count, 0);
    assert_int_equal(hw->series_count, 1);
    s = pt_series(hw, "cpu_user");
    assert_non_null(s);
    assert_int_equal(s->frequency, 60);
    assert_int_equal(s->start, 1700000030);
    assert_int_equal(s->count, 3);
    assert_true(s->values[0] == 12.0f);
    assert_nan(s->values[1]);
    assert_true(s->values[2] == 13.5f);

    char *text = encode_str(&f);
    assert_str_eq(text, fixture_reencoded);
    free(text);
    ckpt_file_free(&f);
    free(json);
}

static void add_series(struct ckpt_level *l, const char *metric, int64_t freq, int64_t start,
                       const float *v, uint32_t n)
{
    l->series = realloc(l->series, (l->series_count + 1) * sizeof *l->series);
    struct ckpt_series *s = &l->series[l->series_count++];
    s->metric = pt_strdup(metric);
    s->frequency = freq;
    s->start = start;
    s->count = n;
    s->values = n ? malloc(n * sizeof(float)) : NULL;
    if (n)
        memcpy(s->values, v, n * sizeof(float));
}

static struct ckpt_level *add_child(struct ckpt_level *l, const char *name)
{
    l->children = realloc(l->children, (l->child_count + 1) * sizeof *l->children);
    struct ckpt_level *c = &l->children[l->child_count++];
    memset(c, 0, sizeof *c);
    c->name = pt_strdup(name);
    return c;
}

static void test_encode_exact(void **state)
{
    (void)state;
    struct ckpt_file f = {.from = 1700000000, .to = 1700043200};
    f.host.name = pt_strdup("");
    /* inserted out of order: the encoder sorts */
    add_series(&f.host, "mem_used", 60, 1700000030, (float[]){45.25f, NAN, 47.0f}, 3);
    add_series(&f.host, "cpu_load", 60, 1700000030, (float[]){0.5f, 0.7f, 0.9f}, 3);
    struct ckpt_level *sock = add_child(&f.host, "socket0");
    add_series(sock, "mem_bw", 10, -20, (float[]){INFINITY, -INFINITY, -0.0f, 1e20f, 1e-7f}, 5);
    add_series(sock, "empty", 1, 0, NULL, 0);
    add_child(sock, "memoryDomain1");
    struct ckpt_level *hw = add_child(&f.host, "hwthread0");
    add_series(hw, "cpu_user", 60, 1700000030, (float[]){12.0f, NAN, 13.5f}, 3);

    char *text = encode_str(&f);
    assert_str_eq(
        text,
        "{\"metrics\":{\"cpu_load\":{\"frequency\":60,\"start\":1700000030,\"data\":[0.5,0.7,0.9]},"
        "\"mem_used\":{\"frequency\":60,\"start\":1700000030,\"data\":[45.25,null,47]}},"
        "\"children\":{\"hwthread0\":{\"metrics\":{\"cpu_user\":{\"frequency\":60,"
        "\"start\":1700000030,\"data\":[12,null,13.5]}},\"children\":{},\"from\":1700000000,"
        "\"to\":1700043200},\"socket0\":{\"metrics\":{\"empty\":{\"frequency\":1,\"start\":0,"
        "\"data\":[]},\"mem_bw\":{\"frequency\":10,\"start\":-20,"
        "\"data\":[null,null,-0.0,1e+20,1e-07]}},\"children\":{\"memoryDomain1\":{\"metrics\":{},"
        "\"children\":{},\"from\":1700000000,\"to\":1700043200}},\"from\":1700000000,"
        "\"to\":1700043200}},\"from\":1700000000,\"to\":1700043200}\n");

    /* and back: infinities read as NaN, -0 keeps its sign */
    struct ckpt_file g;
    char err[256];
    assert_int_equal(decode_str(text, &g, err, sizeof err), 0);
    const struct ckpt_series *s = pt_series(pt_child(&g.host, "socket0"), "mem_bw");
    assert_non_null(s);
    assert_nan(s->values[0]);
    assert_nan(s->values[1]);
    assert_int_equal(pt_bits(s->values[2]), 0x80000000u);
    assert_true(s->values[3] == 1e20f && s->values[4] == 1e-7f);
    assert_null(pt_series(pt_child(&g.host, "socket0"), "empty")->values);
    free(text);
    ckpt_file_free(&f);
    ckpt_file_free(&g);

    /* the empty tree */
    struct ckpt_file e = {0};
    e.host.name = pt_strdup("");
    text = encode_str(&e);
    assert_str_eq(text, "{\"metrics\":{},\"children\":{},\"from\":0,\"to\":0}\n");
    free(text);
    ckpt_file_free(&e);
}

static void test_encode_escapes_names(void **state)
{
    (void)state;
    struct ckpt_file f = {.from = 1, .to = 2};
    f.host.name = pt_strdup("");
    add_series(&f.host, "a\"b\\c", 1, 0, NULL, 0);
    add_series(&f.host, "<x>&\n\x01", 1, 0, NULL, 0);
    add_child(&f.host, "\xc3\xa9\xe2\x80\xa8");
    char *text = encode_str(&f);
    assert_str_eq(text, "{\"metrics\":{\"\\u003cx\\u003e\\u0026\\n\\u0001\":"
                        "{\"frequency\":1,\"start\":0,\"data\":[]},"
                        "\"a\\\"b\\\\c\":{\"frequency\":1,\"start\":0,\"data\":[]}},"
                        "\"children\":{\"\xc3\xa9\\u2028\":{\"metrics\":{},\"children\":{},"
                        "\"from\":1,\"to\":2}},\"from\":1,\"to\":2}\n");
    free(text);
    ckpt_file_free(&f);
}

static void test_float32_round_trip_bit_exact(void **state)
{
    (void)state;
    uint64_t seed = 0xf10a7;
    enum { N = 200000 };
    struct ckpt_file f = {.from = 0, .to = 1};
    f.host.name = pt_strdup("");
    float *v = malloc(N * sizeof(float));
    for (uint32_t i = 0; i < N; i++) {
        do {
            uint32_t bits = (uint32_t)pt_rand(&seed);
            if (i < 64) /* the extremes: zeros, subnormals, FLT_MAX, around 1 */
                bits = (uint32_t[]){0, 0x80000000u, 1, 0x80000001u, 0x007fffffu, 0x00800000u,
                                    0x7f7fffffu, 0xff7fffffu, 0x3f800000u, 0x3f7fffffu,
                                    0x3f800001u}[i % 11] ^ (i >= 11 ? (i & 1) : 0);
            memcpy(&v[i], &bits, sizeof bits);
        } while (!isfinite(v[i]));
    }
    add_series(&f.host, "m", 1, 0, v, N);
    char *text = encode_str(&f);
    struct ckpt_file g;
    char err[256];
    assert_int_equal(jsonckpt_decode(text, strlen(text), &g, err, sizeof err), 0);
    assert_int_equal(g.host.series[0].count, N);
    for (uint32_t i = 0; i < N; i++)
        if (pt_bits(g.host.series[0].values[i]) != pt_bits(v[i]))
            fail_msg("value %u: %08x read back as %08x", i, pt_bits(v[i]),
                     pt_bits(g.host.series[0].values[i]));
    free(text);
    free(v);
    ckpt_file_free(&f);
    ckpt_file_free(&g);
}

static const char *const json_pieces[] = {
    "a", "z", "_", "0", " ", "/", "\"", "\\", "<", "&", "\n", "\x1f",
    "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
};

static void test_random_trees_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 0x7ee5;
    struct pt_tree_opts o = {json_pieces, sizeof json_pieces / sizeof *json_pieces, true, 3};
    for (int iter = 0; iter < 300; iter++) {
        struct ckpt_file f, g;
        pt_rand_file(&seed, &o, &f);
        char *a = encode_str(&f);
        char err[256];
        if (jsonckpt_decode(a, strlen(a), &g, err, sizeof err) != 0)
            fail_msg("iteration %d: %s", iter, err);
        assert_tree_equal(&f, &g, true);
        char *b = encode_str(&g);
        assert_str_eq(a, b);
        free(a);
        free(b);
        ckpt_file_free(&f);
        ckpt_file_free(&g);
    }
}

/* Files as the Go store writes them: one decimal, -0.0, huge fixed-point. */
static void test_upstream_one_decimal(void **state)
{
    (void)state;
    const char *text =
        "{\"metrics\":{\"ipc\":{\"frequency\":60,\"start\":1725827430,"
        "\"data\":[35.0,0.5,1.2,0.3,0.1,1234.6,-0.0,"
        "339999995214436424907732413799364296704.0,null]}},"
        "\"children\":{},\"from\":1725827400,\"to\":1725870600}\n";
    struct ckpt_file f;
    char err[256];
    assert_int_equal(decode_str(text, &f, err, sizeof err), 0);
    const struct ckpt_series *s = pt_series(&f.host, "ipc");
    assert_non_null(s);
    assert_int_equal(s->count, 9);
    const float expect[] = {35.0f, 0.5f, 1.2f, 0.3f, 0.1f, 1234.6f, -0.0f, 3.4e38f};
    for (int i = 0; i < 8; i++)
        assert_int_equal(pt_bits(s->values[i]), pt_bits(expect[i]));
    assert_nan(s->values[8]);
    assert_int_equal(f.from, 1725827400);
    assert_int_equal(f.to, 1725870600);
    ckpt_file_free(&f);
}

static void test_lenient_like_go(void **state)
{
    (void)state;
    struct ckpt_file f;
    char err[256];
    /* unknown keys anywhere, missing keys, null fields, integer data, nested
     * from/to that differ from the header, a repeated key (last wins), a
     * number beyond float32 range (NaN) */
    const char *text =
        "{\"version\":3,\"metrics\":{\"b\":{\"frequency\":10,\"data\":[1,2e0,-3,1e39,null],"
        "\"unit\":\"x\"},\"a\":{\"frequency\":5,\"start\":null}},"
        "\"children\":{\"c\":{\"from\":99,\"to\":98,\"extra\":[{}]},"
        "\"d\":{\"metrics\":null,\"children\":{\"e\":{}}}},"
        "\"from\":7,\"from\":8}";
    assert_int_equal(decode_str(text, &f, err, sizeof err), 0);
    assert_int_equal(f.from, 8);
    assert_int_equal(f.to, 0);
    assert_int_equal(f.host.series_count, 2);
    assert_str_eq(f.host.series[0].metric, "a");
    assert_int_equal(f.host.series[0].start, 0);
    assert_int_equal(f.host.series[0].count, 0);
    const struct ckpt_series *b = &f.host.series[1];
    assert_str_eq(b->metric, "b");
    assert_int_equal(b->frequency, 10);
    assert_int_equal(b->count, 5);
    assert_true(b->values[0] == 1.0f && b->values[1] == 2.0f && b->values[2] == -3.0f);
    assert_nan(b->values[3]);
    assert_nan(b->values[4]);
    assert_int_equal(f.host.child_count, 2);
    assert_str_eq(f.host.children[0].name, "c");
    assert_str_eq(f.host.children[1].name, "d");
    assert_int_equal(f.host.children[1].child_count, 1);
    assert_str_eq(f.host.children[1].children[0].name, "e");
    ckpt_file_free(&f);

    /* whitespace and a missing trailing newline are fine */
    assert_int_equal(decode_str(" { \"metrics\" : { } }\r\n\t", &f, err, sizeof err), 0);
    ckpt_file_free(&f);
}

struct bad_case {
    const char *text;
    const char *message; /* expected err (exact) */
};

static void test_refusals(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", "line 1 column 0: '[' or '{' expected near end of file"},
        {"[]", "checkpoint must be an object, not an array"},
        {"{\"from\":1.5}", "\"from\" must be an integer, not a non-integer number"},
        {"{\"to\":\"1\"}", "\"to\" must be an integer, not a string"},
        {"{\"metrics\":[]}", "\"metrics\" must be an object, not an array"},
        {"{\"children\":{\"x\":1}}", "x: level must be an object, not an integer"},
        {"{\"children\":{\"x\":{\"children\":{\"y\":{\"metrics\":{\"m\":{\"frequency\":60.0}}}}}}}",
         "x/y/m: \"frequency\" must be an integer, not a non-integer number"},
        {"{\"metrics\":{\"m\":{\"frequency\":0}}}", "m: \"frequency\" must be positive, not 0"},
        {"{\"metrics\":{\"m\":{\"frequency\":-60}}}", "m: \"frequency\" must be positive, not -60"},
        {"{\"metrics\":{\"m\":{\"frequency\":60,\"start\":true}}}",
         "m: \"start\" must be an integer, not a boolean"},
        {"{\"metrics\":{\"m\":{\"frequency\":60,\"data\":{}}}}",
         "m: \"data\" must be an array, not an object"},
        {"{\"metrics\":{\"m\":{\"frequency\":60,\"data\":[1,\"2\"]}}}",
         "m: \"data\"[1] must be a number or null, not a string"},
        {"{\"metrics\":{\"m\":{\"frequency\":60,\"data\":[[1]]}}}",
         "m: \"data\"[0] must be a number or null, not an array"},
        {"{\"metrics\":{\"m\":null}}", "m: metric must be an object, not null"},
        {"{\"metrics\":{\"m\":{\"frequency\":60,\"data\":[NaN]}}}",
         "line 1 column 43: invalid token near 'NaN'"},
        {"{\"from\":99999999999999999999}",
         "line 1 column 28: too big integer near '99999999999999999999'"},
        {"{\"metrics\":{}} x", "line 1 column 16: end of file expected near 'x'"},
        {"{\"m\\u0000\":1}",
         "line 1 column 10: NUL byte in object key not supported near '\"m\\u0000\"'"},
        {"{\"a\":\"\xff\"}", "line 1 column 6: unable to decode byte 0xff near '\"'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct ckpt_file f;
        memset(&f, 0x5A, sizeof f);
        char err[256];
        int rc = decode_str(cases[i].text, &f, err, sizeof err);
        if (rc != JSONCKPT_EFORMAT)
            fail_msg("case %zu (%s): rc %d", i, cases[i].text, rc);
        if (strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu: got '%s', expected '%s'", i, err, cases[i].message);
        assert_null(f.host.name);
        assert_null(f.host.series);
        assert_null(f.host.children);
    }
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    size_t len;
    char *json = (char *)pt_fixture(JSON_FIXTURE, &len);
    assert_true(len > 2 && json[len - 1] == '\n' && json[len - 2] == '}');
    for (size_t n = 0; n < len - 1; n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, json, n);
        struct ckpt_file f;
        char err[256] = "";
        int rc = jsonckpt_decode(cut, n, &f, err, sizeof err);
        if (rc != JSONCKPT_EFORMAT)
            fail_msg("prefix of %zu bytes: rc %d", n, rc);
        assert_true(strncmp(err, "line 1 column ", 14) == 0);
        free(cut);
    }
    /* without the newline it is still the whole object */
    struct ckpt_file f;
    assert_int_equal(jsonckpt_decode(json, len - 1, &f, NULL, 0), 0);
    ckpt_file_free(&f);
    free(json);
}

static void nested_json(char *buf, size_t cap, int depth)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "{");
    for (int d = 0; d < depth; d++)
        n += (size_t)snprintf(buf + n, cap - n, "\"children\":{\"x\":{");
    n += (size_t)snprintf(buf + n, cap - n, "\"metrics\":{\"m\":{\"frequency\":1}}");
    for (int d = 0; d < depth; d++)
        n += (size_t)snprintf(buf + n, cap - n, "}}");
    snprintf(buf + n, cap - n, "}");
}

static void test_nesting_bounded(void **state)
{
    (void)state;
    char buf[4096];
    struct ckpt_file f;
    char err[256];
    nested_json(buf, sizeof buf, 8);
    assert_int_equal(decode_str(buf, &f, err, sizeof err), 0);
    const struct ckpt_level *l = &f.host;
    for (int d = 0; d < 8; d++)
        l = pt_child(l, "x");
    assert_non_null(pt_series(l, "m"));
    ckpt_file_free(&f);
    nested_json(buf, sizeof buf, 9);
    assert_int_equal(decode_str(buf, &f, err, sizeof err), JSONCKPT_EFORMAT);
    assert_str_eq(err, "x/x/x/x/x/x/x/x: levels nested deeper than 8");

    /* deep plain JSON nesting is refused by the parser, not by the stack */
    size_t deep = 200000;
    char *big = malloc(2 * deep + 1);
    memset(big, '[', deep);
    memset(big + deep, ']', deep);
    assert_int_equal(jsonckpt_decode(big, 2 * deep, &f, err, sizeof err), JSONCKPT_EFORMAT);
    free(big);
}

static void test_random_corruption(void **state)
{
    (void)state;
    size_t len;
    char *json = (char *)pt_fixture(JSON_FIXTURE, &len);
    char *buf = malloc(len);
    uint64_t seed = 0xc0de;
    int decoded = 0;
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(buf, json, len);
        int flips = 1 + (int)(pt_rand(&seed) % 3);
        for (int k = 0; k < flips; k++)
            buf[pt_rand(&seed) % len] = (char)(pt_rand(&seed) % 256);
        struct ckpt_file f, g;
        char err[256];
        if (jsonckpt_decode(buf, len, &f, err, sizeof err) != 0) {
            assert_true(err[0] != '\0');
            continue;
        }
        decoded++;
        char *text = encode_str(&f);
        assert_int_equal(jsonckpt_decode(text, strlen(text), &g, err, sizeof err), 0);
        assert_tree_equal(&f, &g, true);
        free(text);
        ckpt_file_free(&f);
        ckpt_file_free(&g);
    }
    assert_true(decoded > 100);
    free(buf);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_fixture),
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_encode_escapes_names),
        cmocka_unit_test(test_float32_round_trip_bit_exact),
        cmocka_unit_test(test_random_trees_round_trip),
        cmocka_unit_test(test_upstream_one_decimal),
        cmocka_unit_test(test_lenient_like_go),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_nesting_bounded),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
