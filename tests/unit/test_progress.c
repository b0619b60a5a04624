/* Unit tests for util/progress: the line format, the period, the summary,
 * and several threads counting into one progress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "util/progress.h"

struct lines {
    char text[16][256];
    int n;
};

static void collect(const char *line, void *ctx)
{
    struct lines *l = ctx;
    if (l->n < 16)
        snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", line);
}

static void test_format(void **state)
{
    (void)state;
    struct progress p;
    char line[256];
    progress_begin(&p, "restore", "hosts", 5000, "samples");
    p.done = 1200;
    p.amount = 24000000;
    progress_format(&p, p.start_ms + 5000, false, line, sizeof(line));
    assert_string_equal(line, "restore: 1200 of 5000 hosts (24 %), 24.0 M samples, "
                              "4.8 M samples/s, 5 s so far, about 16 s left");
    p.done = 5000;
    p.amount = 99500000;
    progress_format(&p, p.start_ms + 20000, true, line, sizeof(line));
    assert_string_equal(line, "restore: done, 5000 of 5000 hosts, 99.5 M samples, "
                              "5.0 M samples/s, 20 s in all");
    progress_end(&p);
}

static void test_format_without_total(void **state)
{
    (void)state;
    struct progress p;
    char line[256];
    progress_begin(&p, "cleanup", "clusters", 0, "files");
    p.done = 3;
    p.amount = 12345;
    progress_format(&p, p.start_ms + 10000, false, line, sizeof(line));
    assert_string_equal(line, "cleanup: 3 clusters, 12 k files, 1234 files/s, 10 s so far");
    progress_end(&p);
}

/* Short work writes nothing: neither progress nor summary lines. */
static void test_quiet_when_short(void **state)
{
    (void)state;
    struct lines l = {0};
    struct progress p;
    progress_begin(&p, "snapshot", "hosts", 3, "bytes");
    p.emit = collect;
    p.emit_ctx = &l;
    for (int i = 0; i < 3; i++)
        progress_add(&p, 1, 100);
    progress_end(&p);
    assert_int_equal(l.n, 0);
}

/* Past the period: a line per add (period 0 here), then the summary. */
static void test_lines_and_summary(void **state)
{
    (void)state;
    struct lines l = {0};
    struct progress p;
    progress_begin(&p, "export", "hosts", 4, "bytes");
    p.emit = collect;
    p.emit_ctx = &l;
    p.period_ms = 0;
    p.next_ms = p.start_ms;
    for (int i = 0; i < 4; i++)
        progress_add(&p, 1, 1000);
    progress_end(&p);
    assert_int_equal(l.n, 5);
    assert_non_null(strstr(l.text[0], "export: 1 of 4 hosts (25 %), 1000 bytes"));
    assert_non_null(strstr(l.text[3], "export: 4 of 4 hosts (100 %), 4000 bytes"));
    assert_non_null(strstr(l.text[4], "export: done, 4 of 4 hosts, 4000 bytes"));
    assert_non_null(strstr(l.text[4], "in all"));
}

struct adder {
    struct progress *p;
};

static void *add_many(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < 10000; i++)
        progress_add(a->p, 1, 3);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct lines l = {0};
    struct progress p;
    progress_begin(&p, "restore", "hosts", 40000, "samples");
    p.emit = collect;
    p.emit_ctx = &l;
    pthread_t t[4];
    struct adder a = {&p};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, add_many, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(p.done, 40000);
    assert_int_equal(p.amount, 120000);
    progress_end(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_without_total),
        cmocka_unit_test(test_quiet_when_short),
        cmocka_unit_test(test_lines_and_summary),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
