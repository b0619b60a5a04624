/*
 * Tests for util/arena.c (alignment, chunks, ownership, freeing and reuse)
 * and for the JSON tree a query's body is parsed into (gojson_parse_in in
 * api/gojson.c): values read back from a tree in an arena, errors, a
 * parse without an arena in between (plain malloc and json_decref, which
 * ASan checks), and trees of every size the fuzzer of queries builds.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/gojson.h"
#include "util/arena.h"

static void test_alloc_align_own(void **state)
{
    (void)state;
    struct arena a = ARENA_INIT;
    assert_false(arena_owns(&a, &a));
    char *seen[3000];
    for (int i = 0; i < 3000; i++) {
        size_t size = (size_t)(i % 97) + 1;
        seen[i] = arena_alloc(&a, size);
        assert_non_null(seen[i]);
        assert_int_equal((uintptr_t)seen[i] % 16, 0);
        memset(seen[i], i & 0xff, size);             /* ASan: all of it writable */
        assert_true(arena_owns(&a, seen[i]));
        assert_true(arena_owns(&a, seen[i] + size - 1));
    }
    for (int i = 0; i < 3000; i++)                   /* nothing overlapped */
        assert_int_equal((unsigned char)seen[i][0], i & 0xff);
    char *big = arena_alloc(&a, 3 * 1024 * 1024);    /* larger than any chunk */
    assert_non_null(big);
    memset(big, 1, 3 * 1024 * 1024);
    assert_true(arena_owns(&a, big + 3 * 1024 * 1024 - 1));
    char *after = arena_alloc(&a, 10);
    assert_non_null(after);
    assert_true(arena_owns(&a, after));
    int on_stack;
    assert_false(arena_owns(&a, &on_stack));
    assert_non_null(arena_alloc(&a, 0));
    assert_null(arena_alloc(&a, SIZE_MAX));
    assert_null(arena_alloc(&a, SIZE_MAX - 8));
    arena_free_all(&a);
    assert_false(arena_owns(&a, seen[0]));
    assert_non_null(arena_alloc(&a, 100));           /* usable again */
    arena_free_all(&a);
    arena_free_all(&a);                              /* twice is harmless */
}

static void test_tree_in_arena(void **state)
{
    (void)state;
    struct arena a = ARENA_INIT;
    char err[GOJSON_ERR_MAX];
    json_t *root = NULL;
    const char *body = "{\"cluster\":\"c\",\"ids\":[0,1,2,3,4,5,6,7,8,9,10,11,12],"
                       "\"name\":\"a long name that makes the lexer grow its buffer "
                       "more than once, a long name that makes the lexer grow\","
                       "\"nested\":{\"x\":[{\"y\":1.5},{\"y\":null}]}}";
    assert_int_equal(gojson_parse_in(&a, body, strlen(body), &root, err, sizeof err), 0);
    assert_non_null(root);
    assert_true(arena_owns(&a, root));
    assert_string_equal(json_string_value(json_object_get(root, "cluster")), "c");
    json_t *ids = json_object_get(root, "ids");
    assert_int_equal(json_array_size(ids), 13);
    assert_int_equal(json_integer_value(json_array_get(ids, 12)), 12);
    json_t *x = json_object_get(json_object_get(root, "nested"), "x");
    assert_true(json_real_value(json_object_get(json_array_get(x, 0), "y")) == 1.5);

    /* a parse without an arena meanwhile: malloc'd, freed by json_decref */
    json_t *plain = NULL;
    assert_int_equal(gojson_parse("[1,\"two\",{}]", 13, &plain, err, sizeof err), 0);
    assert_false(arena_owns(&a, plain));
    json_decref(plain);

    /* the arena's tree is still whole; it goes with the arena */
    assert_string_equal(json_string_value(json_object_get(root, "cluster")), "c");
    arena_free_all(&a);

    /* errors: a message, nothing left behind (the arena is freed as after success) */
    const char *bad[] = { "", "   ", "{\"a\":", "[1,2,,3]", "{\"a\":\"unterminated",
                          "{\"x\":[{\"y\":[{\"z\":tru}]}]}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        root = (json_t *)1;
        assert_int_equal(gojson_parse_in(&a, bad[i], strlen(bad[i]), &root, err, sizeof err), -1);
        assert_null(root);
        assert_true(err[0] != '\0');
        arena_free_all(&a);
    }
}

/* Bodies of many sizes, as queries come: a long "type-ids" list and a long
 * list of queries. */
static void test_large_trees(void **state)
{
    (void)state;
    static char body[4 << 20];               /* the largest body below: about 1.3 MB */
    for (int n = 1; n <= 20000; n *= 3) {
        size_t len = (size_t)snprintf(body, sizeof body, "{\"queries\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(body + len, sizeof body - len,
                                    "%s{\"metric\":\"m%d\",\"host\":\"h%d\",\"type-ids\":[%d,%d]}",
                                    i ? "," : "", i, i, i, i + 1);
        len += (size_t)snprintf(body + len, sizeof body - len, "]}");
        struct arena a = ARENA_INIT;
        char err[GOJSON_ERR_MAX];
        json_t *root = NULL;
        assert_int_equal(gojson_parse_in(&a, body, len, &root, err, sizeof err), 0);
        json_t *q = json_object_get(root, "queries");
        assert_int_equal(json_array_size(q), (size_t)n);
        json_t *last = json_array_get(q, (size_t)n - 1);
        char want[32];
        snprintf(want, sizeof want, "h%d", n - 1);
        assert_string_equal(json_string_value(json_object_get(last, "host")), want);
        arena_free_all(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_align_own),
        cmocka_unit_test(test_tree_in_arena),
        cmocka_unit_test(test_large_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
