/*
 * Tests for tag_cache: keys found exactly (lookalikes that share ends or
 * middles, prefixes, one byte changed), replacement, the key length limit,
 * growth through many rehashes, the start-over at TAG_CACHE_MAX entries,
 * the learnt order and the look at the predicted entry alone, and the
 * byte count it reports.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/tag_cache.h"

/* Distinct fake level pointers: the map never dereferences them. */
static struct level *fake_level(uintptr_t n)
{
    return (struct level *)(uintptr_t)(0x1000 + 16 * n);
}

static struct tag_target target(uintptr_t n, uint8_t depth, uint8_t flags)
{
    struct tag_target t = { .levels = { fake_level(n), fake_level(n + 1) }, .depth = depth,
                            .flags = flags };
    return t;
}

static void add_ok(struct tag_cache **c, const char *key, const struct tag_target *t,
                   int64_t *bytes)
{
    assert_int_equal(tag_cache_add(c, key, strlen(key), t, bytes), 0);
}

static void expect(struct tag_cache *c, const char *key, const struct tag_target *want)
{
    struct tag_target got;
    if (!tag_cache_find(c, key, strlen(key), &got))
        fail_msg("\"%s\" not found", key);
    assert_ptr_equal(got.levels[0], want->levels[0]);
    assert_ptr_equal(got.levels[1], want->levels[1]);
    assert_int_equal(got.depth, want->depth);
    assert_int_equal(got.flags, want->flags);
}

static void expect_missing(struct tag_cache *c, const char *key)
{
    struct tag_target got;
    if (tag_cache_find(c, key, strlen(key), &got))
        fail_msg("\"%s\" found, but it was never added", key);
}

/* The map learns the order entries are asked for: asked again in that
 * order, in another, with lookalikes of the predicted key (same length,
 * other bytes; a prefix; one byte longer) and keys it never held in
 * between, across the growth that moves every slot, every answer is
 * still the entry of exactly that key. */
static void test_learnt_order(void **state)
{
    (void)state;
    enum { KEYS = 700 };
    static char keys[KEYS][64];
    struct tag_target t[KEYS];
    struct tag_cache *c = NULL;
    int64_t bytes = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(keys[i], sizeof keys[i], ",hostname=n1,type=hwthread,type-id=%d", i);
        t[i] = target((uintptr_t)i * 2, (uint8_t)(i % 3), (uint8_t)(i % 2));
        add_ok(&c, keys[i], &t[i], &bytes);
        if (i % 50 == 49)               /* interleaved finds while it grows */
            for (int j = 0; j <= i; j += 7)
                expect(c, keys[j], &t[j]);
    }
    for (int round = 0; round < 3; round++)         /* the learnt order */
        for (int i = 0; i < KEYS; i++)
            expect(c, keys[i], &t[i]);
    for (int i = KEYS; i-- > 0;)                    /* backwards */
        expect(c, keys[i], &t[i]);
    for (int i = 0; i < KEYS; i++) {                /* predicted successor's lookalikes */
        expect(c, keys[i], &t[i]);
        if (i + 1 < KEYS) {
            char near[80];
            snprintf(near, sizeof near, "%s", keys[i + 1]);
            near[strlen(near) - 1] = 'x';           /* same length, one byte off */
            expect_missing(c, near);
            expect(c, keys[i], &t[i]);
            snprintf(near, sizeof near, "%s0", keys[i + 1]);   /* one byte longer */
            if (atoi(strrchr(near, '=') + 1) >= KEYS)
                expect_missing(c, near);
            expect(c, keys[i], &t[i]);
            expect_missing(c, ",hostname=n1,type=socket,type-id=0");
        }
    }
    for (int i = 0; i < KEYS; i++) {                /* a stride through the keys */
        int k = (i * 37) % KEYS;
        expect(c, keys[k], &t[k]);
    }
    tag_cache_free(&c, &bytes);
    assert_int_equal(bytes, 0);
}

/* find_next answers only for the predicted entry, and only when the text
 * holds exactly its key and then a space: the key followed by more tag
 * bytes, by nothing, or a shorter text is not it; keys with a space or a
 * backslash are never remembered (they are no tag sections). */
static void test_find_next(void **state)
{
    (void)state;
    struct tag_cache *c = NULL;
    int64_t bytes = 0;
    static const char *const keys[] = { ",h=a,type=socket,type-id=0", ",h=a,type=socket,type-id=1",
                                        ",h=a", "" };
    struct tag_target t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = target((uintptr_t)i * 2, (uint8_t)(i % 3), (uint8_t)(i % 2));
        add_ok(&c, keys[i], &t[i], &bytes);
    }
    struct tag_target got;
    size_t len;
    const char *text = ",h=a,type=socket,type-id=1 value=1";
    assert_false(tag_cache_find_next(c, text, strlen(text), &len, &got)); /* nothing learnt */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 4; i++)
            expect(c, keys[i], &t[i]);
    expect(c, keys[0], &t[0]);                      /* keys[1] comes next */
    static const char *const not_it[] = {
        ",h=a,type=socket,type-id=10 value=1", ",h=a,type=socket,type-id=1,x=y value=1",
        ",h=a,type=socket,type-id=1", ",h=a,type=socket,type-id=", ",h=a,type=socket,type-id=2 v",
        ",h=a,type=socket,type-id=1\\ value=1", "",
    };
    for (size_t i = 0; i < sizeof not_it / sizeof not_it[0]; i++)
        assert_false(tag_cache_find_next(c, not_it[i], strlen(not_it[i]), &len, &got));
    assert_true(tag_cache_find_next(c, text, strlen(text), &len, &got));
    assert_int_equal(len, strlen(keys[1]));
    assert_ptr_equal(got.levels[0], t[1].levels[0]);
    assert_int_equal(got.depth, t[1].depth);
    assert_int_equal(got.flags, t[1].flags);
    /* found counts as asked for: keys[2], then the empty key, come next */
    assert_true(tag_cache_find_next(c, ",h=a  x", 7, &len, &got));
    assert_int_equal(len, 4);
    assert_true(tag_cache_find_next(c, " value=1", 8, &len, &got));
    assert_int_equal(len, 0);
    assert_ptr_equal(got.levels[0], t[3].levels[0]);
    /* not remembered: a space or a backslash inside */
    size_t count = tag_cache_count(c);
    struct tag_target x = target(99, 1, 0);
    add_ok(&c, ",h=a b", &x, &bytes);
    add_ok(&c, ",h=a\\,b", &x, &bytes);
    assert_int_equal(tag_cache_count(c), count);
    expect_missing(c, ",h=a b");
    expect_missing(c, ",h=a\\,b");
    tag_cache_free(&c, &bytes);
    assert_int_equal(bytes, 0);
}

static void test_exact_keys(void **state)
{
    (void)state;
    struct tag_cache *c = NULL;
    int64_t bytes = 0;
    expect_missing(c, ",hostname=a");
    struct tag_target t1 = target(1, 1, 0), t2 = target(2, 2, 1), t3 = target(3, 0, 1);
    add_ok(&c, ",hostname=node01,type=hwthread,type-id=1", &t1, &bytes);
    add_ok(&c, ",hostname=node01,type=hwthread,type-id=11", &t2, &bytes);
    add_ok(&c, ",hostname=node01", &t3, &bytes);
    expect(c, ",hostname=node01,type=hwthread,type-id=1", &t1);
    expect(c, ",hostname=node01,type=hwthread,type-id=11", &t2);
    expect(c, ",hostname=node01", &t3);
    /* same ends, another middle; a prefix; one byte changed; empty */
    expect_missing(c, ",hostname=node01,type=hwXhread,type-id=1");
    expect_missing(c, ",hostname=node0");
    expect_missing(c, ",hostname=node02");
    expect_missing(c, "");
    assert_int_equal(tag_cache_count(c), 3);

    /* the same bytes again replace the target */
    add_ok(&c, ",hostname=node01", &t1, &bytes);
    expect(c, ",hostname=node01", &t1);
    assert_int_equal(tag_cache_count(c), 3);
    assert_true(bytes > 0);
    tag_cache_free(&c, &bytes);
    assert_null(c);
    assert_int_equal(bytes, 0);
    tag_cache_free(&c, &bytes);     /* freeing nothing is fine */
}

static void test_key_length_limit(void **state)
{
    (void)state;
    struct tag_cache *c = NULL;
    int64_t bytes = 0;
    char key[TAG_CACHE_MAX_KEY + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    struct tag_target t = target(7, 1, 0);
    add_ok(&c, key, &t, &bytes);        /* one byte too long: not kept */
    expect_missing(c, key);
    key[TAG_CACHE_MAX_KEY] = '\0';
    add_ok(&c, key, &t, &bytes);
    expect(c, key, &t);
    tag_cache_free(&c, &bytes);
    assert_int_equal(bytes, 0);
}

/* Thousands of keys that differ only in a few bytes inside find their own
 * entries through every growth of the table; at TAG_CACHE_MAX entries the
 * map starts over. */
static void test_many_keys_and_start_over(void **state)
{
    (void)state;
    struct tag_cache *c = NULL;
    int64_t bytes = 0;
    char key[64];
    for (uintptr_t i = 0; i < TAG_CACHE_MAX; i++) {
        snprintf(key, sizeof key, ",hostname=n,type=core,x=%05u,%05u,type-id=0", (unsigned)i,
                 (unsigned)(TAG_CACHE_MAX - i));
        struct tag_target t = target(i, 1, 0);
        add_ok(&c, key, &t, &bytes);
        if (i % 997 == 0)
            for (uintptr_t j = 0; j <= i; j += 131) {
                snprintf(key, sizeof key, ",hostname=n,type=core,x=%05u,%05u,type-id=0",
                         (unsigned)j, (unsigned)(TAG_CACHE_MAX - j));
                struct tag_target tj = target(j, 1, 0);
                expect(c, key, &tj);
            }
    }
    assert_int_equal(tag_cache_count(c), TAG_CACHE_MAX);
    /* one more: the map starts over with just that key */
    struct tag_target last = target(99999, 2, 1);
    add_ok(&c, ",hostname=n,type=core,type-id=last", &last, &bytes);
    assert_int_equal(tag_cache_count(c), 1);
    expect(c, ",hostname=n,type=core,type-id=last", &last);
    expect_missing(c, ",hostname=n,type=core,x=00000,08192,type-id=0");
    tag_cache_free(&c, &bytes);
    assert_int_equal(bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_keys),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_many_keys_and_start_over),
        cmocka_unit_test(test_learnt_order),
        cmocka_unit_test(test_find_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
