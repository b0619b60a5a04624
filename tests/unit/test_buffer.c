/* Tests for store/buffer.c: chain writes (upstream W1–W6 plus our late-sample
 * rules), the read cursor and range, and freeing. */
#include "testutil.h"

#include <stdlib.h>

#include "store/buffer.h"

static int64_t bytes;

static void teardown_chain(struct buffer **head)
{
    chain_free_all(head, &bytes);
    assert_int_equal(bytes, 0);
}

/* Reads the chain on the grid from..to like a single-chain store read. */
static size_t read_values(const struct buffer *head, int64_t from, int64_t to, int64_t f,
                          float *out, size_t max)
{
    int64_t first, end;
    if (!chain_read_range(head, to, &first, &end))
        return 0;
    if (first > from)
        from = first;
    int64_t w1 = end < to ? end : to;
    size_t n = 0;
    struct chain_cursor c;
    chain_cursor_init(&c, head, from);
    for (int64_t t = from; t < w1 && n < max; t += f)
        out[n++] = chain_cursor_value(&c, t);
    return n;
}

static void test_first_write_defines_grid(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    assert_int_equal(chain_write(&head, 10, 100, 42.0f, &bytes), 0);
    assert_non_null(head);
    assert_int_equal(head->start, 95);
    assert_int_equal(head->len, 1);
    assert_int_equal(buffer_first_time(head), 100);
    assert_int_equal(bytes, (int64_t)buffer_alloc_size(BUFFER_CAP));
    float v[4] = {0};
    assert_int_equal(read_values(head, 100, 110, 10, v, 4), 1);
    assert_true(v[0] == 42.0f);
    teardown_chain(&head);
}

static void test_older_than_oldest_rejected(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 42.0f, &bytes);
    assert_int_equal(chain_write(&head, 10, 50, 10.0f, &bytes), BUFFER_ETOO_OLD);
    assert_int_equal(head->len, 1);
    assert_null(head->prev);
    teardown_chain(&head);
}

static void test_nan_fill_and_overwrite(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 130, 4.0f, &bytes);
    float v[8] = {0};
    assert_int_equal(read_values(head, 100, 140, 10, v, 8), 4);
    assert_true(v[0] == 1.0f);
    assert_nan(v[1]);
    assert_nan(v[2]);
    assert_true(v[3] == 4.0f);
    chain_write(&head, 10, 100, 99.0f, &bytes);
    assert_int_equal(read_values(head, 100, 110, 10, v, 8), 1);
    assert_true(v[0] == 99.0f);
    teardown_chain(&head);
}

static void test_capacity_overflow_starts_new_head(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k <= 512; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes), 0);
    assert_non_null(head->prev);
    assert_int_equal(head->prev->start, 95);
    assert_int_equal(head->prev->len, 512);
    assert_int_equal(head->start, 5215);
    assert_int_equal(head->len, 1);
    float v[600] = {0};
    size_t n = read_values(head, 100, 5230, 10, v, 600);
    assert_int_equal(n, 513);
    for (int k = 0; k <= 512; k++)
        assert_true(v[k] == (float)k);
    /* R4: across the buffer boundary */
    n = read_values(head, 5200, 5230, 10, v, 600);
    assert_int_equal(n, 3);
    assert_true(v[0] == 510.0f && v[1] == 511.0f && v[2] == 512.0f);
    teardown_chain(&head);
}

static void test_late_sample_goes_to_older_buffer(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k <= 512; k += 2)   /* even slots only, then a new head */
        chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes);
    chain_write(&head, 10, 100 + 10 * 600, 600.0f, &bytes);
    assert_non_null(head->prev);
    /* an odd slot of the old buffer, written after the new head exists */
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 7, 7.0f, &bytes), 0);
    float v[8] = {0};
    assert_int_equal(read_values(head, 170, 180, 10, v, 8), 1);
    assert_true(v[0] == 7.0f);
    teardown_chain(&head);
}

static void test_late_sample_in_gap_inserts_buffer(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);          /* buffer A covers 95..5215 */
    chain_write(&head, 10, 100000, 2.0f, &bytes);       /* far later: new head B */
    assert_int_equal(chain_write(&head, 10, 50000, 3.0f, &bytes), 0); /* in the gap */
    struct buffer *a = chain_oldest(head);
    assert_non_null(a->next);
    struct buffer *gap = a->next;
    assert_ptr_equal(gap->next, head);
    assert_true(gap->start <= 50000 && 50000 < gap->start + 10);
    assert_true(gap->start + (int64_t)gap->cap * 10 <= head->start);
    /* on B's grid: (B.start - gap.start) is a multiple of f */
    assert_int_equal((head->start - gap->start) % 10, 0);
    float v[4] = {0};
    assert_int_equal(read_values(head, 50000, 50010, 10, v, 4), 1);
    assert_true(v[0] == 3.0f);
    /* the original samples are untouched */
    assert_int_equal(read_values(head, 100, 110, 10, v, 4), 1);
    assert_true(v[0] == 1.0f);
    assert_int_equal(read_values(head, 100000, 100010, 10, v, 4), 1);
    assert_true(v[0] == 2.0f);
    teardown_chain(&head);
}

static void test_gap_reads_nan(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 10000, 2.0f, &bytes);   /* idx 990 >= 512: new head */
    float v[2000] = {0};
    size_t n = read_values(head, 100, 10010, 10, v, 2000);
    assert_int_equal(n, 991);
    assert_true(v[0] == 1.0f);
    for (size_t i = 1; i < 990; i++)
        assert_nan(v[i]);
    assert_true(v[990] == 2.0f);
    teardown_chain(&head);
}

static void test_read_range_examples(void **state)
{
    (void)state;
    /* docs/http-api.md "Reading a series" examples, f = 10, samples at 100, 110, 120 */
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 110, 2.0f, &bytes);
    chain_write(&head, 10, 120, 3.0f, &bytes);
    float v[8] = {0};
    assert_int_equal(read_values(head, 100, 130, 10, v, 8), 3);
    assert_int_equal(read_values(head, 100, 120, 10, v, 8), 2);
    assert_int_equal(read_values(head, 50, 120, 10, v, 8), 2);
    assert_true(v[0] == 1.0f);
    assert_int_equal(read_values(head, 103, 125, 10, v, 8), 3);
    assert_true(v[2] == 3.0f);
    assert_int_equal(read_values(head, 200, 300, 10, v, 8), 0);
    assert_int_equal(read_values(head, 150, 150, 10, v, 8), 0);
    int64_t first, end;
    assert_false(chain_read_range(head, 95, &first, &end));
    assert_true(chain_read_range(head, 96, &first, &end));
    assert_int_equal(first, 100);
    assert_int_equal(end, 125);
    teardown_chain(&head);
}

static void test_free_before(void **state)
{
    (void)state;
    /* upstream W6: start 90, first write 95, len 4 -> end 135 */
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 4; k++)
        chain_write(&head, 10, 95 + 10 * k, (float)k, &bytes);
    assert_int_equal(head->start, 90);
    assert_int_equal(buffer_end(head), 135);
    assert_int_equal(chain_free_before(&head, 135, &bytes), 0);
    assert_non_null(head);
    assert_int_equal(chain_free_before(&head, 136, &bytes), 1);
    assert_null(head);
    assert_int_equal(bytes, 0);
}

static void test_free_from_old_end(void **state)
{
    (void)state;
    /* upstream F1/F2: 1025 samples -> three buffers */
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 1025; k++)
        chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes);
    assert_int_equal(chain_sample_count(head), 1025);
    assert_int_equal(chain_free_before(&head, 5220, &bytes), 0);
    assert_int_equal(chain_free_before(&head, 5221, &bytes), 1);
    assert_int_equal(chain_sample_count(head), 513);
    assert_null(chain_oldest(head)->prev);
    assert_int_equal(chain_free_before(&head, 20000, &bytes), 2);
    assert_null(head);
    assert_int_equal(bytes, 0);
}

static void test_extreme_timestamps_rejected(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    assert_int_equal(chain_write(&head, 10, INT64_MAX, 1.0f, &bytes), BUFFER_ETOO_OLD);
    assert_int_equal(chain_write(&head, 10, INT64_MIN, 1.0f, &bytes), BUFFER_ETOO_OLD);
    assert_null(head);
}

static void test_new_head_keeps_the_chain_grid(void **state)
{
    (void)state;
    /* f = 60: first sample at 1000 (start 970, so slots begin at 970 + k*60).
     * A sample just past the full buffer starts a new head at its slot on
     * the same grid, not at ts - 30: no overlap, one phase per chain. */
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 60, 1000, 1.0f, &bytes);
    int64_t old_end = 970 + 512 * 60; /* 31690 */
    chain_write(&head, 60, old_end + 10, 5.0f, &bytes);
    assert_int_equal(head->start, old_end);
    chain_write(&head, 60, old_end - 10, 4.0f, &bytes); /* last slot of the old buffer */
    assert_int_equal(head->prev->len, 512);
    float v[4] = {0};
    assert_int_equal(read_values(head, old_end - 10, old_end - 9, 60, v, 4), 1);
    assert_true(v[0] == 4.0f);
    assert_int_equal(read_values(head, old_end + 10, old_end + 11, 60, v, 4), 1);
    assert_true(v[0] == 5.0f);
    /* far ahead: still on the grid */
    chain_write(&head, 60, old_end + 100000, 6.0f, &bytes);
    assert_int_equal((head->start - 970) % 60, 0);
    teardown_chain(&head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_write_defines_grid),
        cmocka_unit_test(test_older_than_oldest_rejected),
        cmocka_unit_test(test_nan_fill_and_overwrite),
        cmocka_unit_test(test_capacity_overflow_starts_new_head),
        cmocka_unit_test(test_late_sample_goes_to_older_buffer),
        cmocka_unit_test(test_late_sample_in_gap_inserts_buffer),
        cmocka_unit_test(test_gap_reads_nan),
        cmocka_unit_test(test_read_range_examples),
        cmocka_unit_test(test_free_before),
        cmocka_unit_test(test_free_from_old_end),
        cmocka_unit_test(test_extreme_timestamps_rejected),
        cmocka_unit_test(test_new_head_keeps_the_chain_grid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
