#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include <float.h>
#include <pthread.h>

#include "util/jsonw.h"

/* Asserts the buffer holds exactly want (a C string). */
static void assert_buf(const struct jbuf *b, const char *want)
{
    assert_false(b->failed);
    size_t wl = strlen(want);
    if (b->len != wl || memcmp(b->data, want, wl) != 0)
        fail_msg("want [%s], got [%.*s]", want, (int)b->len, b->data ? b->data : "");
}

static void check_string(const char *in, size_t len, const char *want)
{
    struct jbuf b;
    jbuf_init(&b, 0);
    jbuf_string(&b, in, len);
    assert_buf(&b, want);
    jbuf_free(&b);
}

#define CHECK_STR(lit, want) check_string((lit), sizeof(lit) - 1, (want))

static void test_escaping(void **state)
{
    (void)state;
    CHECK_STR("", "\"\"");
    CHECK_STR("plain text 123", "\"plain text 123\"");
    CHECK_STR("a\"b\\c", "\"a\\\"b\\\\c\"");
    CHECK_STR("<script>&</script>", "\"\\u003cscript\\u003e\\u0026\\u003c/script\\u003e\"");
    CHECK_STR("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    CHECK_STR("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    CHECK_STR("nul\0byte", "\"nul\\u0000byte\"");
    CHECK_STR("/", "\"/\"");
    /* valid multibyte UTF-8 passes through */
    CHECK_STR("\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* line and paragraph separators are escaped (JavaScript-safe) */
    CHECK_STR("a\xe2\x80\xa8" "b\xe2\x80\xa9", "\"a\\u2028b\\u2029\"");
    /* the neighbours of U+2028/2029 are not */
    CHECK_STR("\xe2\x80\xa7\xe2\x80\xaa", "\"\xe2\x80\xa7\xe2\x80\xaa\"");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* each byte that does not start a valid sequence becomes one U+FFFD, as in Go */
    CHECK_STR("a\xff" "b", "\"a\\ufffdb\"");
    CHECK_STR("\x80", "\"\\ufffd\"");
    CHECK_STR("\xc3", "\"\\ufffd\"");                            /* truncated */
    CHECK_STR("\xe2\x82", "\"\\ufffd\\ufffd\"");                 /* truncated 3-byte */
    CHECK_STR("\xc0\xaf", "\"\\ufffd\\ufffd\"");                 /* overlong '/' */
    CHECK_STR("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");      /* overlong */
    CHECK_STR("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");      /* surrogate */
    CHECK_STR("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    CHECK_STR("\xf5\x80", "\"\\ufffd\\ufffd\"");
    CHECK_STR("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"");
    CHECK_STR("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");  /* U+D7FF, last before surrogates */
    CHECK_STR("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    CHECK_STR("\xc3\xa4\xff<", "\"\xc3\xa4\\ufffd\\u003c\"");
}

/* Random bytes: the output must be valid UTF-8 with no raw control bytes,
 * quotes only at both ends, and never longer than 6 bytes per input byte. */
static void test_random_bytes_give_clean_output(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    unsigned char in[64];
    struct jbuf b;
    jbuf_init(&b, 16);
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(iter % 64);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = (unsigned char)x;
        }
        jbuf_reset(&b);
        jbuf_string(&b, (const char *)in, len);
        assert_false(b.failed);
        assert_true(b.len >= 2 && b.len <= 2 + 6 * len);
        assert_int_equal(b.data[0], '"');
        assert_int_equal(b.data[b.len - 1], '"');
        for (size_t i = 1; i + 1 < b.len; i++) {
            unsigned char c = (unsigned char)b.data[i];
            assert_true(c >= 0x20);
            assert_true(c != '"' && c != '<' && c != '>' && c != '&');
            if (c == '\\') {
                i++; /* escaped character */
                continue;
            }
            if (c >= 0x80) {
                /* must be a valid sequence: lead byte, then continuation bytes */
                size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
                assert_true(c >= 0xC2 && c <= 0xF4);
                for (size_t k = 1; k < n; k++)
                    assert_true(((unsigned char)b.data[i + k] & 0xC0) == 0x80);
                i += n - 1;
            }
        }
    }
    jbuf_free(&b);
}

static void test_numbers(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 0);
    jbuf_fixed(&b, 35.0, 3);
    jbuf_putc(&b, ',');
    jbuf_fixed(&b, NAN, 3);
    jbuf_putc(&b, ',');
    jbuf_fixed(&b, INFINITY, 2);
    jbuf_putc(&b, ',');
    jbuf_fixed(&b, -INFINITY, 2);
    jbuf_putc(&b, ',');
    jbuf_fixed(&b, 2.0 / 3.0, 2);
    jbuf_putc(&b, ',');
    jbuf_fixed(&b, -0.0, 3);
    jbuf_putc(&b, ',');
    jbuf_int(&b, INT64_MIN);
    jbuf_putc(&b, ',');
    jbuf_int(&b, 1700000000);
    jbuf_putc(&b, ',');
    jbuf_float32_shortest(&b, 0.1f);
    jbuf_putc(&b, ',');
    jbuf_float32_shortest(&b, NAN);
    jbuf_putc(&b, ',');
    jbuf_float32_shortest(&b, -INFINITY);
    jbuf_putc(&b, ',');
    jbuf_float32_shortest(&b, 45.25f);
    assert_buf(&b, "35.000,null,null,null,0.67,-0.000,-9223372036854775808,1700000000,"
                   "0.1,null,null,45.25");
    jbuf_free(&b);
}

static void test_growth_and_printf(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 1);
    char want[100000];
    size_t wl = 0;
    for (int i = 0; i < 10000; i++) {
        jbuf_printf(&b, "%d;", i);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%d;", i);
    }
    assert_false(b.failed);
    assert_int_equal(b.len, wl);
    assert_memory_equal(b.data, want, wl);
    assert_true(b.cap >= b.len);

    /* a printf much longer than the free space */
    jbuf_reset(&b);
    assert_int_equal(b.len, 0);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    jbuf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, sizeof big + 1);
    assert_int_equal(b.data[0], '[');
    assert_int_equal(b.data[b.len - 1], ']');

    /* printf into a buffer that was never allocated */
    struct jbuf e;
    jbuf_init(&e, 0);
    jbuf_printf(&e, "%s-%d", "x", 7);
    assert_buf(&e, "x-7");
    jbuf_free(&e);

    jbuf_reset(&b);
    jbuf_puts(&b, "abc");
    jbuf_append(&b, "defgh", 2);
    jbuf_append(&b, NULL, 0);
    jbuf_putc(&b, '!');
    assert_buf(&b, "abcde!");
    assert_true(jbuf_reserve(&b, 1 << 20));
    assert_true(b.cap - b.len >= (1u << 20));
    jbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_steal(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 4);
    jbuf_puts(&b, "{\"a\":");
    jbuf_int(&b, 1);
    jbuf_putc(&b, '}');
    size_t len = 0;
    char *s = jbuf_steal(&b, &len);
    assert_non_null(s);
    assert_int_equal(len, 7);
    assert_str_eq(s, "{\"a\":1}");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);

    /* an empty, never-allocated buffer still yields a C string */
    jbuf_init(&b, 0);
    s = jbuf_steal(&b, &len);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_str_eq(s, "");
    free(s);

    /* the stolen-from buffer is reusable */
    jbuf_puts(&b, "again");
    s = jbuf_steal(&b, NULL);
    assert_str_eq(s, "again");
    free(s);
}

/* jbuf_adopt takes over stolen bytes without a copy and the buffer goes on
 * from them; a reset buffer that must grow starts afresh (nothing of its
 * old bytes is needed) and writes correctly, again and again. */
static void test_adopt_and_regrow(void **state)
{
    (void)state;
    struct jbuf a, b;
    jbuf_init(&a, 0);
    jbuf_puts(&a, "[1,2");
    size_t len;
    char *s = jbuf_steal(&a, &len);
    jbuf_init(&b, 16);
    jbuf_puts(&b, "old");
    jbuf_adopt(&b, s, len);          /* frees "old" (ASan: no leak) */
    assert_ptr_equal(b.data, s);
    jbuf_puts(&b, ",3]");
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "[1,2,3]", 7);
    for (int round = 0; round < 4; round++) {
        jbuf_reset(&b);
        size_t want = (size_t)1 << (12 + 3 * round);    /* 4 KB .. 2 MB */
        for (size_t i = 0; i < want; i++)
            jbuf_putc(&b, (char)('a' + (i + (size_t)round) % 26));
        assert_false(b.failed);
        assert_int_equal(b.len, want);
        for (size_t i = 0; i < want; i += 4093)
            assert_int_equal(b.data[i], (char)('a' + (i + (size_t)round) % 26));
        /* right after a reset, one append larger than the room there is */
        size_t big = b.cap * 2 + 5;
        char *block = malloc(big);
        assert_non_null(block);
        for (size_t i = 0; i < big; i++)
            block[i] = (char)('A' + i % 26);
        jbuf_reset(&b);
        jbuf_append(&b, block, big);
        assert_false(b.failed);
        assert_int_equal(b.len, big);
        assert_memory_equal(b.data, block, big);
        free(block);
    }
    jbuf_free(&b);
}

/* Fills b with n bytes of a pattern that depends on seed. */
static void fill_pattern(struct jbuf *b, size_t n, unsigned seed)
{
    assert_true(jbuf_reserve(b, n));
    for (size_t i = 0; i < n; i++)
        b->data[b->len + i] = (char)((i * 7 + seed) % 251);
    b->len += n;
}

static bool has_pattern(const struct jbuf *b, size_t from, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b->data[from + i] != (char)((i * 7 + seed) % 251))
            return false;
    return true;
}

/* A large buffer that is freed is taken again by the next buffer that
 * grows that large (its pages stay mapped), also when the growing buffer
 * already holds bytes, which move with it. */
static void test_large_buffers_are_kept(void **state)
{
    (void)state;
    /* empty the spare list (earlier tests may have left buffers in it):
     * it holds at most four, each taken by a reservation this large */
    struct jbuf held[4];
    for (int i = 0; i < 4; i++) {
        jbuf_init(&held[i], 0);
        assert_true(jbuf_reserve(&held[i], 256 * 1024));
    }
    struct jbuf a, b, c;
    jbuf_init(&a, 0);
    fill_pattern(&a, 400 * 1024, 1);
    char *kept = a.data;
    size_t kept_cap = a.cap;
    jbuf_free(&a);
    assert_null(a.data);

    jbuf_init(&b, 0);
    assert_true(jbuf_reserve(&b, 300 * 1024));
    assert_ptr_equal(b.data, kept);                 /* the same memory again */
    assert_int_equal(b.cap, kept_cap);
    assert_int_equal(b.len, 0);
    fill_pattern(&b, 300 * 1024, 2);

    jbuf_init(&c, 0);
    fill_pattern(&c, 100 * 1024, 3);                /* a small buffer of its own */
    jbuf_free(&b);
    fill_pattern(&c, 200 * 1024, 4);                /* grows into the kept one */
    assert_ptr_equal(c.data, kept);
    assert_true(has_pattern(&c, 0, 100 * 1024, 3));
    assert_true(has_pattern(&c, 100 * 1024, 200 * 1024, 4));
    jbuf_free(&c);
    for (int i = 0; i < 4; i++)
        jbuf_free(&held[i]);
}

struct spare_worker {
    unsigned seed;
    int bad;
};

static void *spare_worker_run(void *arg)
{
    struct spare_worker *w = arg;
    uint64_t x = w->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int round = 0; round < 60; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = 200 * 1024 + (size_t)(x % (1100 * 1024));
        unsigned seed = w->seed * 1000 + (unsigned)round;
        struct jbuf b;
        jbuf_init(&b, 0);
        for (size_t done = 0; done < n;) {          /* grows in steps */
            size_t step = n - done < 64 * 1024 ? n - done : 64 * 1024;
            if (!jbuf_reserve(&b, step)) {
                w->bad++;
                break;
            }
            for (size_t i = 0; i < step; i++)
                b.data[b.len + i] = (char)(((done + i) * 7 + seed) % 251);
            b.len += step;
            done += step;
        }
        if (!has_pattern(&b, 0, b.len, seed))      /* nobody else wrote into it */
            w->bad++;
        jbuf_free(&b);
    }
    return NULL;
}

/* Threads that grow and free large buffers at once never share one. */
static void test_spares_across_threads(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct spare_worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct spare_worker){ .seed = (unsigned)i + 1, .bad = 0 };
        assert_int_equal(pthread_create(&t[i], NULL, spare_worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
}

static void test_sticky_failure(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 8);
    jbuf_puts(&b, "ok");
    /* a reservation that cannot be satisfied marks the buffer failed */
    assert_false(jbuf_reserve(&b, SIZE_MAX - 1));
    assert_true(b.failed);
    jbuf_puts(&b, "more");
    jbuf_int(&b, 5);
    jbuf_fixed(&b, 1.0, 3);
    jbuf_string(&b, "x", 1);
    jbuf_printf(&b, "%d", 3);
    assert_true(b.failed);
    assert_int_equal(b.len, 2);
    assert_false(jbuf_reserve(&b, 1));
    size_t len = 99;
    char *s = jbuf_steal(&b, &len);
    assert_null(s);
    assert_int_equal(len, 0);
    assert_false(b.failed); /* steal resets */
    jbuf_free(&b);
}

static void test_fixed_list_matches_single_numbers(void **state)
{
    (void)state;
    double values[] = {0, -0.0, 1.5, NAN, INFINITY, -INFINITY, 123456.0005, 1e15, -3e300,
                       DBL_MAX, 0.0005, 2.5e-3, -17.25};
    size_t n = sizeof values / sizeof values[0];
    double scales[] = {1.0, -2.0, 1e300};
    for (size_t k = 0; k < 3; k++) {
        struct jbuf list, single;
        jbuf_init(&list, 1);
        jbuf_init(&single, 1);
        jbuf_fixed_list(&list, values, n, scales[k], 3);
        for (size_t i = 0; i < n; i++) {
            if (i)
                jbuf_putc(&single, ',');
            jbuf_fixed(&single, values[i] * scales[k], 3);
        }
        assert_false(list.failed);
        assert_int_equal(list.len, single.len);
        assert_memory_equal(list.data, single.data, list.len);
        jbuf_free(&list);
        jbuf_free(&single);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_list_matches_single_numbers),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_random_bytes_give_clean_output),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_growth_and_printf),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_adopt_and_regrow),
        cmocka_unit_test(test_sticky_failure),
        cmocka_unit_test(test_large_buffers_are_kept),
        cmocka_unit_test(test_spares_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
