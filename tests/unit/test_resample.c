/* Tests for store/resample.c: the resampling decision rule, LTTB, average
 * and simple, against buckets computed by hand. */
#include "testutil.h"

#include <stdlib.h>

#include "store/resample.h"

static void test_plan_rules(void **state)
{
    (void)state;
    size_t points;
    int64_t res;
    assert_int_equal(resample_plan(5000, 60, 0, &points, &res), 0);
    assert_int_equal(points, 5000);
    assert_int_equal(res, 60);
    assert_int_equal(resample_plan(5000, 60, 60, &points, &res), 0);
    assert_int_equal(res, 60);
    assert_int_equal(resample_plan(5000, 60, -600, &points, &res), 0);
    assert_int_equal(res, 60);
    /* not a multiple: an error whatever the length (upstream R7) */
    assert_int_equal(resample_plan(3, 60, 90, &points, &res), RESAMPLE_ENOT_MULTIPLE);
    /* too few points: unchanged, native resolution */
    assert_int_equal(resample_plan(999, 60, 600, &points, &res), 0);
    assert_int_equal(points, 999);
    assert_int_equal(res, 60);
    assert_int_equal(resample_plan(1000, 60, 600, &points, &res), 0);
    assert_int_equal(points, 100);
    assert_int_equal(res, 600);
    assert_int_equal(resample_plan(1440, 60, 120, &points, &res), 0);
    assert_int_equal(points, 720);
}

static void test_lttb_keeps_endpoints_and_peaks(void **state)
{
    (void)state;
    size_t n = 1200, m = 100;
    double *in = malloc(n * sizeof(double)), *out = malloc(m * sizeof(double));
    for (size_t i = 0; i < n; i++)
        in[i] = (double)(i % 50);
    in[600] = 1000.0; /* a spike must survive */
    resample_lttb(in, n, m, out);
    assert_true(out[0] == in[0]);
    assert_true(out[m - 1] == in[n - 1]);
    int spike = 0;
    for (size_t i = 0; i < m; i++) {
        if (out[i] == 1000.0)
            spike++;
        /* every output value is an input value */
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = in[k] == out[i];
        assert_true(found);
    }
    assert_int_equal(spike, 1);
    free(in);
    free(out);
}

static void test_lttb_small_reference(void **state)
{
    (void)state;
    /* Hand-computed with the spec's pseudo code: n = 7, m = 4 -> bucket 2.5 */
    double in[7] = {0, 5, 1, 1, 8, 2, 3};
    double out[4];
    resample_lttb(in, 7, 4, out);
    /* i=0: high=floor(2*2.5)+1=6 -> clipped to 5; mid=3; avg over idx 3..5
     * (x=4, y=11/3); candidates j=1,2 from a=0: j=1 has the larger area. */
    assert_true(out[0] == 0);
    assert_true(out[1] == 5);
    /* i=1: low=3, mid=5, high=floor(3*2.5)+1=8 -> 5; avg idx 5..5 (x=5,y=2);
     * candidates j=3,4 from a=1: j=4 (value 8) wins. */
    assert_true(out[2] == 8);
    assert_true(out[3] == 3);
}

static void test_lttb_nan_bucket(void **state)
{
    (void)state;
    size_t n = 1000, m = 10;
    double in[1000], out[10];
    for (size_t i = 0; i < n; i++)
        in[i] = (double)i;
    in[500] = NAN;
    resample_lttb(in, n, m, out);
    int nans = 0;
    for (size_t i = 0; i < m; i++)
        nans += isnan(out[i]);
    assert_true(out[0] == 0.0 && out[9] == 999.0);
    assert_true(nans <= 2);
}

static void test_lttb_two_points(void **state)
{
    (void)state;
    double in[5] = {1, 2, 3, 4, 5}, out[2];
    resample_lttb(in, 5, 2, out);
    assert_true(out[0] == 1 && out[1] == 5);
}

static void test_algo_names(void **state)
{
    (void)state;
    enum resample_algo a = RESAMPLE_SIMPLE;
    assert_int_equal(resample_algo_parse("", 0, &a), 0);
    assert_int_equal(a, RESAMPLE_LTTB);
    assert_int_equal(resample_algo_parse("lttb", 4, &a), 0);
    assert_int_equal(a, RESAMPLE_LTTB);
    assert_int_equal(resample_algo_parse("average", 7, &a), 0);
    assert_int_equal(a, RESAMPLE_AVERAGE);
    assert_int_equal(resample_algo_parse("simple", 6, &a), 0);
    assert_int_equal(a, RESAMPLE_SIMPLE);
    assert_int_equal(resample_algo_parse("LTTB", 4, &a), RESAMPLE_EUNKNOWN_ALGO);
    assert_int_equal(resample_algo_parse("averages", 8, &a), RESAMPLE_EUNKNOWN_ALGO);
    assert_int_equal(resample_algo_parse("average", 3, &a), RESAMPLE_EUNKNOWN_ALGO);
}

static void test_average_buckets(void **state)
{
    (void)state;
    /* step 3: [1,2,3] [4,NaN,6] [NaN,NaN,NaN] [10,11,12.5]; 13 is dropped */
    const double in[] = {1, 2, 3, 4, NAN, 6, NAN, NAN, NAN, 10, 11, 12.5, 13};
    double out[4];
    resample_average(in, 3, 4, out);
    assert_true(out[0] == 2.0);
    assert_true(out[1] == 5.0);            /* NaN skipped: (4 + 6) / 2 */
    assert_nan(out[2]);                    /* no sample in the bucket */
    assert_true(out[3] == 33.5 / 3.0);
}

static void test_simple_buckets(void **state)
{
    (void)state;
    const double in[] = {1, 2, 3, 4, NAN, 6, NAN, 8, 9, 10};
    double out[3];
    resample_simple(in, 3, 3, out);        /* every third sample from the first */
    assert_true(out[0] == 1.0);
    assert_true(out[1] == 4.0);
    assert_nan(out[2]);
}

/* The plan is the same for every algorithm; apply follows it. */
static void test_apply_follows_the_plan(void **state)
{
    (void)state;
    size_t n = 1205, points;
    int64_t res;
    double *in = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        in[i] = (double)i;
    assert_int_equal(resample_plan(n, 10, 600, &points, &res), 0);
    assert_int_equal(points, 20);          /* 1205 / 60 */
    assert_int_equal(res, 600);
    double out[20];
    resample_apply(RESAMPLE_AVERAGE, in, n, 60, points, out);
    for (size_t i = 0; i < points; i++)
        assert_true(out[i] == (double)(60 * i) + 29.5);
    resample_apply(RESAMPLE_SIMPLE, in, n, 60, points, out);
    for (size_t i = 0; i < points; i++)
        assert_true(out[i] == (double)(60 * i));
    resample_apply(RESAMPLE_LTTB, in, n, 60, points, out);
    assert_true(out[0] == 0.0);
    assert_true(out[points - 1] == (double)(n - 1));
    free(in);
}

/* 1000 points at a resolution of 1000 steps: one bucket. Upstream still
 * returns the first and the last point (two), so out must hold two. */
static void test_lttb_single_bucket_gives_two_points(void **state)
{
    (void)state;
    size_t n = 1000, points;
    int64_t res;
    assert_int_equal(resample_plan(n, 60, 60000, &points, &res), 0);
    assert_int_equal(points, 1);
    double *in = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        in[i] = (double)i * 0.5;
    double *out = malloc(RESAMPLE_OUT_MAX(points) * sizeof(double));
    assert_int_equal(resample_apply(RESAMPLE_LTTB, in, n, 1000, points, out), 2);
    assert_true(out[0] == 0.0);
    assert_true(out[1] == 499.5);
    assert_int_equal(resample_apply(RESAMPLE_AVERAGE, in, n, 1000, points, out), 1);
    assert_true(out[0] == 249.75);
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_rules),
        cmocka_unit_test(test_algo_names),
        cmocka_unit_test(test_average_buckets),
        cmocka_unit_test(test_simple_buckets),
        cmocka_unit_test(test_apply_follows_the_plan),
        cmocka_unit_test(test_lttb_single_bucket_gives_two_points),
        cmocka_unit_test(test_lttb_keeps_endpoints_and_peaks),
        cmocka_unit_test(test_lttb_small_reference),
        cmocka_unit_test(test_lttb_nan_bucket),
        cmocka_unit_test(test_lttb_two_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
