/* Unit tests for util/prom (Prometheus text exposition). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/prom.h"

static void test_family_and_samples(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 64);
    prom_family(&b, "ccms_x_total", "counter", "Things");
    prom_u64(&b, "ccms_x_total", NULL, 18446744073709551615ull);
    prom_u64(&b, "ccms_x_total", "a=\"b\"", 0);
    prom_f64(&b, "ccms_y_seconds", "", 0.25);
    jbuf_putc(&b, '\0');
    assert_string_equal(b.data, "# HELP ccms_x_total Things\n# TYPE ccms_x_total counter\n"
                                "ccms_x_total 18446744073709551615\nccms_x_total{a=\"b\"} 0\n"
                                "ccms_y_seconds 0.25\n");
    jbuf_free(&b);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b, 16);
    const char v[] = "a\"b\\c\nd";
    prom_label_value(&b, v, sizeof(v) - 1);
    jbuf_putc(&b, '\0');
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    jbuf_free(&b);
}

/* Buckets are cumulative, "+Inf" equals the count, and a value on a bound
 * falls into that bound's bucket (le = less or equal). */
static void test_histogram(void **state)
{
    (void)state;
    static struct prom_histogram h;
    prom_observe_ns(&h, 50000);          /* 50 µs: first bucket */
    prom_observe_ns(&h, 100000);         /* exactly 0.0001 s: still the first */
    prom_observe_ns(&h, 3000000);        /* 3 ms: le 0.005 */
    prom_observe_ns(&h, 60000000000ull); /* 60 s: only +Inf */
    struct jbuf b;
    jbuf_init(&b, 256);
    prom_histogram_write(&b, "ccms_d_seconds", "route=\"q\"", &h);
    jbuf_putc(&b, '\0');
    assert_non_null(strstr(b.data, "ccms_d_seconds_bucket{route=\"q\",le=\"0.0001\"} 2\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_bucket{route=\"q\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_bucket{route=\"q\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_bucket{route=\"q\",le=\"10\"} 3\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_bucket{route=\"q\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_sum{route=\"q\"} 60.00315\n"));
    assert_non_null(strstr(b.data, "ccms_d_seconds_count{route=\"q\"} 4\n"));
    jbuf_free(&b);
}

static void test_histogram_without_labels(void **state)
{
    (void)state;
    static struct prom_histogram h;
    struct jbuf b;
    jbuf_init(&b, 256);
    prom_histogram_write(&b, "ccms_e_seconds", NULL, &h);
    jbuf_putc(&b, '\0');
    assert_non_null(strstr(b.data, "ccms_e_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(b.data, "ccms_e_seconds_sum 0\n"));
    assert_non_null(strstr(b.data, "ccms_e_seconds_count 0\n"));
    jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_without_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
