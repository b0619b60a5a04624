/* Tests for store/level.c: sorted children, creation, removal, slots and
 * the byte accounting that the store's memory figure relies on. */
#include "testutil.h"

#include <stdio.h>

#include "store/level.h"

static void test_children_sorted_and_found(void **state)
{
    (void)state;
    int64_t bytes = 0;
    struct level *root = level_new("", 0, 0, &bytes);
    const char *names[] = {"hwthread10", "hwthread2", "socket0", "a", "hwthread1", "zz"};
    for (size_t i = 0; i < 6; i++) {
        struct level *c;
        bool created;
        assert_int_equal(level_get_or_create_child(root, names[i], strlen(names[i]), &c,
                                                   &created, &bytes), 0);
        assert_true(created);
        assert_int_equal(c->depth, 1);
        assert_non_null(c->upper);                  /* a cluster level: locked */
        assert_ptr_equal(c->upper->parent, root);
    }
    assert_int_equal(root->child_count, 6);
    for (uint32_t i = 1; i < root->child_count; i++)
        assert_true(strcmp(root->children[i - 1]->name, root->children[i]->name) < 0);
    for (size_t i = 0; i < 6; i++) {
        struct level *c = level_find_child(root, names[i], strlen(names[i]));
        assert_non_null(c);
        assert_string_equal(c->name, names[i]);
    }
    assert_null(level_find_child(root, "hwthread", 8));
    assert_null(level_find_child(root, "b", 1));
    struct level *again;
    bool created = true;
    level_get_or_create_child(root, "socket0", 7, &again, &created, &bytes);
    assert_false(created);
    assert_int_equal(root->child_count, 6);
    level_destroy(root, 4, &bytes, NULL);
    assert_int_equal(bytes, 0);
}

static void test_prefix_names_are_distinct(void **state)
{
    (void)state;
    int64_t bytes = 0;
    struct level *root = level_new("", 0, 0, &bytes);
    struct level *a, *b;
    level_get_or_create_child(root, "ab", 2, &a, NULL, &bytes);
    level_get_or_create_child(root, "a", 1, &b, NULL, &bytes);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(level_find_child(root, "a", 1), b);
    assert_ptr_equal(level_find_child(root, "ab", 2), a);
    level_destroy(root, 1, &bytes, NULL);
    assert_int_equal(bytes, 0);
}

static void test_many_children_and_removal(void **state)
{
    (void)state;
    int64_t bytes = 0;
    struct level *root = level_new("", 0, 0, &bytes);
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "host%04d", (i * 7919) % 2000);
        struct level *c;
        assert_int_equal(level_get_or_create_child(root, name, strlen(name), &c, NULL, &bytes),
                         0);
    }
    assert_int_equal(root->child_count, 2000);
    for (uint32_t i = root->child_count; i-- > 0;)
        if (i % 2 == 0)
            level_remove_child_at(root, i, 3, &bytes);
    assert_int_equal(root->child_count, 1000);
    assert_null(level_find_child(root, "host0000", 8));
    assert_non_null(level_find_child(root, "host0001", 8));
    level_destroy(root, 3, &bytes, NULL);
    assert_int_equal(bytes, 0);
}

/* Chains are found the same way on levels with few and with many metrics
 * (a walk up to 16, a binary search beyond): every count from 1 to 40, the
 * metrics added in a scrambled order, each found at its sorted place and
 * the ones never added not found. */
static void test_chain_lookup_any_count(void **state)
{
    (void)state;
    for (int count = 1; count <= 40; count++) {
        int64_t bytes = 0;
        struct level *l = level_new("h", 1, 2, &bytes);
        for (int k = 0; k < count; k++) {
            int metric = 2 * ((k * 41) % count) + 1;          /* odd metrics, scrambled */
            struct buffer **head = level_chain_slot(l, metric, &bytes);
            assert_non_null(head);
            assert_int_equal(chain_write(head, 60, 1000, (float)metric, &bytes), 0);
        }
        assert_int_equal(l->chain_count, count);
        for (int metric = 0; metric <= 2 * count + 1; metric++) {
            struct buffer *head = level_chain_head(l, metric);
            if (metric % 2 == 0 || metric > 2 * count - 1) {
                assert_null(head);
                continue;
            }
            assert_non_null(head);
            struct buffer **slot = level_chain_slot(l, metric, &bytes);
            assert_ptr_equal(*slot, head);
            assert_int_equal(level_chain_metric(l, (uint32_t)(slot - l->heads)), metric);
        }
        assert_int_equal(l->chain_count, count);              /* finding added nothing */
        uint64_t freed = 0;
        level_destroy(l, 2 * count + 2, &bytes, &freed);
        assert_int_equal(freed, (uint64_t)count);
        assert_int_equal(bytes, 0);
    }
}

/* A level holds chains only for the metrics written there, kept sorted by
 * metric whatever order they come in; each costs a small entry. */
static void test_chains_and_emptiness(void **state)
{
    (void)state;
    int64_t bytes = 0;
    struct level *l = level_new("h", 1, 2, &bytes);
    int64_t empty = bytes;
    assert_true(level_is_empty(l, 40));
    assert_null(level_chain_head(l, 3));
    struct buffer **head = level_chain_slot(l, 3, &bytes);
    assert_non_null(head);
    assert_true(level_is_empty(l, 40));               /* a chain without buffers */
    assert_int_equal(chain_write(head, 60, 1000, 1.0f, &bytes), 0);
    assert_false(level_is_empty(l, 40));
    assert_non_null(level_chain_head(l, 3));
    /* metrics in any order: sorted, each found again, the same slot */
    const int order[] = { 39, 0, 17, 5, 2, 30 };
    for (size_t i = 0; i < 6; i++) {
        head = level_chain_slot(l, order[i], &bytes);
        assert_non_null(head);
        assert_int_equal(chain_write(head, 60, 1000 + order[i], (float)order[i], &bytes), 0);
    }
    assert_int_equal(l->chain_count, 7);
    for (uint32_t i = 1; i < l->chain_count; i++)
        assert_true(level_chain_metric(l, i - 1) < level_chain_metric(l, i));
    for (size_t i = 0; i < 6; i++) {
        struct buffer **slot = level_chain_slot(l, order[i], &bytes);
        assert_true(slot >= l->heads && slot < l->heads + l->chain_count);
        assert_int_equal(level_chain_metric(l, (uint32_t)(slot - l->heads)), order[i]);
        assert_non_null(*slot);
        assert_ptr_equal(*slot, level_chain_head(l, order[i]));
    }
    assert_null(level_chain_head(l, 1));
    assert_null(level_chain_head(l, 40));
    /* exactly 10 bytes per chain (head and metric), none for the 33
     * configured metrics not written here; each chain's one buffer holds
     * one sample */
    for (uint32_t i = 0; i < l->chain_count; i++)
        assert_int_equal(chain_sample_count(l->heads[i]), 1);
    int64_t one_sample = 0;
    struct buffer *probe = NULL;
    assert_int_equal(chain_write(&probe, 60, 1000, 1.0f, &one_sample), 0);
    int64_t probe_bytes = one_sample;
    chain_free_all(&probe, &one_sample);
    assert_int_equal(bytes - empty, 7 * (10 + probe_bytes));
    uint64_t freed = 0;
    level_destroy(l, 40, &bytes, &freed);
    assert_int_equal(freed, 7);
    assert_int_equal(bytes, 0);
}

static void test_name_too_long(void **state)
{
    (void)state;
    int64_t bytes = 0;
    char name[300];
    memset(name, 'x', sizeof name);
    assert_null(level_new(name, 256, 1, &bytes));
    struct level *l = level_new(name, 255, 1, &bytes);
    assert_non_null(l);
    level_destroy(l, 1, &bytes, NULL);
    assert_int_equal(bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_sorted_and_found),
        cmocka_unit_test(test_prefix_names_are_distinct),
        cmocka_unit_test(test_many_children_and_removal),
        cmocka_unit_test(test_chains_and_emptiness),
        cmocka_unit_test(test_chain_lookup_any_count),
        cmocka_unit_test(test_name_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
