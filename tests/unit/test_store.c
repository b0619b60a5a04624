/* Tests for store/store.c: writes through paths, selector matching,
 * deterministic aggregation, resampling, free, debug dump, health, stats,
 * and concurrent writers/readers/free (run under TSan by `make tsan`). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

enum { M_M, M_SUM, M_AVG, M_NONE, M_COUNT };

static struct store *new_store(void)
{
    struct store_metric metrics[M_COUNT] = {
        {"m", 10, CCMS_AGG_AVG},
        {"s", 10, CCMS_AGG_SUM},
        {"a", 10, CCMS_AGG_AVG},
        {"n", 10, CCMS_AGG_NONE},
    };
    struct store *s;
    assert_int_equal(store_create(metrics, M_COUNT, &s), 0);
    return s;
}

static void put(struct store *s, const char *cluster, const char *host, const char *type,
                const char *sub, int metric, int64_t ts, float v)
{
    const char *path[4] = {cluster, host, type, sub};
    size_t depth = sub ? 4 : type ? 3 : 2;
    assert_int_equal(store_write_path(s, path, depth, metric, ts, v), 0);
}

/* Selector helper: [c, h] plus optional group of names at depth 3. */
struct sel_storage {
    const char *names[4][8];
    size_t lens[4][8];
    struct store_selector sel;
};

static struct store_selector *make_sel(struct sel_storage *st, const char *c, const char *h,
                                       const char **group, size_t group_count)
{
    memset(st, 0, sizeof(*st));
    st->names[0][0] = c;
    st->names[1][0] = h;
    st->lens[0][0] = strlen(c);
    st->lens[1][0] = strlen(h);
    st->sel.depth = group ? 3 : 2;
    for (size_t i = 0; i < 2; i++) {
        st->sel.elems[i].names = st->names[i];
        st->sel.elems[i].lens = st->lens[i];
        st->sel.elems[i].count = 1;
    }
    if (group) {
        for (size_t k = 0; k < group_count; k++) {
            st->names[2][k] = group[k];
            st->lens[2][k] = strlen(group[k]);
        }
        st->sel.elems[2].names = st->names[2];
        st->sel.elems[2].lens = st->lens[2];
        st->sel.elems[2].count = group_count;
    }
    return &st->sel;
}

/* Metric indexes are 16 bits in the tree: the last index that fits is
 * written and read back, and a store with more metrics is refused. */
static void test_metric_count_limit(void **state)
{
    (void)state;
    static struct store_metric metrics[STORE_MAX_METRICS + 1];
    static char names[STORE_MAX_METRICS + 1][16];
    for (int i = 0; i <= STORE_MAX_METRICS; i++) {
        snprintf(names[i], sizeof names[i], "m%05d", i);
        metrics[i] = (struct store_metric){ names[i], 10, CCMS_AGG_AVG };
    }
    struct store *s;
    assert_int_equal(store_create(metrics, STORE_MAX_METRICS + 1, &s), STORE_ETOO_MANY_METRICS);
    assert_int_equal(store_create(metrics, STORE_MAX_METRICS, &s), 0);
    int last = STORE_MAX_METRICS - 1;
    put(s, "c", "h", NULL, NULL, last, 100, 1.5f);
    put(s, "c", "h", NULL, NULL, 0, 100, 2.5f);
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), last, 100, 110, 0,
                                RESAMPLE_LTTB, 1000, &r), 0);
    assert_int_equal(r.len, 1);
    assert_true(r.data[0] == 1.5f);
    store_series_free(&r);
    assert_int_equal(store_read(s, &st.sel, 0, 100, 110, 0, RESAMPLE_LTTB, 1000, &r), 0);
    assert_true(r.data[0] == 2.5f);
    store_series_free(&r);
    store_destroy(s);
}

static void test_read_single_chain(void **state)
{
    (void)state;
    struct store *s = new_store();
    put(s, "c", "h", NULL, NULL, M_M, 100, 1);
    put(s, "c", "h", NULL, NULL, M_M, 110, 2);
    put(s, "c", "h", NULL, NULL, M_M, 120, 3);
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), M_M, 50, 120, 0, RESAMPLE_LTTB, 1000, &r),
                     0);
    assert_int_equal(r.from, 100);
    assert_int_equal(r.to, 120);
    assert_int_equal(r.len, 2);
    assert_int_equal(r.resolution, 10);
    assert_true(r.data[0] == 1 && r.data[1] == 2);
    store_series_free(&r);
    assert_int_equal(store_read(s, &st.sel, M_M, 103, 125, 0, RESAMPLE_LTTB, 1000, &r), 0);
    assert_int_equal(r.from, 103);
    assert_int_equal(r.to, 133);
    assert_int_equal(r.len, 3);
    store_series_free(&r);
    assert_int_equal(store_read(s, &st.sel, M_M, 130, 120, 0, RESAMPLE_LTTB, 1000, &r), STORE_EINVALID_RANGE);
    assert_int_equal(store_read(s, &st.sel, M_SUM, 0, 1000, 0, RESAMPLE_LTTB, 1000, &r), STORE_ENOTFOUND);
    assert_int_equal(store_read(s, make_sel(&st, "c", "nohost", NULL, 0), M_M, 0, 1000, 0, RESAMPLE_LTTB, 1000,
                                &r), STORE_ENOTFOUND);
    assert_int_equal(store_read(s, make_sel(&st, "", "h", NULL, 0), M_M, 0, 1000, 0, RESAMPLE_LTTB, 1000, &r),
                     STORE_ENOTFOUND);
    store_destroy(s);
}

/* store_prefetch is a hint: on 100 chains (more than one batch of the
 * side-by-side walk) of two buffers and sealed parts each, on selectors
 * that match nothing, an unknown metric and an empty range, it changes no
 * answer and no byte count (and ASan checks that its walk reads only what
 * the store holds). */
static void test_prefetch_changes_nothing(void **state)
{
    (void)state;
    enum { TYPES = 100, SAMPLES = 700 };
    struct store *s = new_store();
    static char type_names[TYPES][16];
    static const char *names[TYPES];
    static size_t lens[TYPES];
    for (int t = 0; t < TYPES; t++) {
        snprintf(type_names[t], sizeof type_names[t], "t%d", t);
        names[t] = type_names[t];
        lens[t] = strlen(names[t]);
        for (int i = 0; i < SAMPLES; i++)
            if ((i + t) % 13 != 0)
                put(s, "c", "h", type_names[t], NULL, M_M, 1000 + 10 * i, (float)(t * 1000 + i) / 4);
    }
    put(s, "c", "h", NULL, NULL, M_SUM, 1000, 1);
    struct sel_storage st;
    struct store_selector *all = make_sel(&st, "c", "h", NULL, 0);
    all->depth = 3;
    all->elems[2] = (struct store_selector_elem){ names, lens, TYPES };
    struct store_summary before[TYPES], after;
    struct store_series r;
    struct sel_storage one;
    for (int pass = 0; pass < 2; pass++) {
        struct store_stats st0, st1;
        store_get_stats(s, &st0);
        store_prefetch(s, all, M_M, 1000, 1000 + 10 * SAMPLES);
        store_prefetch(s, all, M_M, 5000, 1000);                 /* empty range */
        store_prefetch(s, all, M_SUM, 1000, 9000);                /* no such chains */
        store_prefetch(s, all, -1, 1000, 9000);
        store_prefetch(s, all, M_COUNT, 1000, 9000);
        store_prefetch(s, make_sel(&one, "c", "nohost", NULL, 0), M_M, 1000, 9000);
        store_get_stats(s, &st1);
        assert_int_equal(st0.bytes, st1.bytes);
        for (int t = 0; t < TYPES; t++) {
            const char *group[1] = { type_names[t] };
            assert_int_equal(store_read_summary(s, make_sel(&one, "c", "h", group, 1), M_M, 1000,
                                                1000 + 10 * SAMPLES, 0, RESAMPLE_LTTB, 100000, &r,
                                                pass ? &after : &before[t]),
                             0);
            if (pass)
                assert_memory_equal(&after, &before[t], sizeof after);
        }
    }
    store_destroy(s);
}

static void test_sum_and_implicit_descent(void **state)
{
    (void)state;
    /* upstream R5 */
    struct store *s = new_store();
    put(s, "c", "h", "hwthread0", NULL, M_SUM, 100, 3);
    put(s, "c", "h", "hwthread0", NULL, M_SUM, 110, 5);
    put(s, "c", "h", "hwthread1", NULL, M_SUM, 100, 2);
    put(s, "c", "h", "hwthread1", NULL, M_SUM, 110, 1);
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), M_SUM, 100, 120, 0, RESAMPLE_LTTB, 1000,
                                &r), 0);
    assert_int_equal(r.len, 2);
    assert_true(r.data[0] == 5 && r.data[1] == 6);
    store_series_free(&r);
    const char *ids[] = {"hwthread0", "hwthread1"};
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", ids, 2), M_SUM, 100, 120, 0, RESAMPLE_LTTB, 1000, &r),
                     0);
    assert_true(r.data[0] == 5 && r.data[1] == 6);
    store_series_free(&r);
    /* a single group member is not aggregated */
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", ids + 1, 1), M_SUM, 100, 120, 0, RESAMPLE_LTTB, 1000,
                                &r), 0);
    assert_true(r.data[0] == 2 && r.data[1] == 1);
    store_series_free(&r);
    /* an empty group matches nothing */
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", ids, 0), M_SUM, 100, 120, 0, RESAMPLE_LTTB, 1000, &r),
                     STORE_ENOTFOUND);
    store_destroy(s);
}

static void test_host_chain_hides_children(void **state)
{
    (void)state;
    struct store *s = new_store();
    put(s, "c", "h", NULL, NULL, M_SUM, 100, 7);
    put(s, "c", "h", "socket0", NULL, M_SUM, 100, 100);
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), M_SUM, 100, 110, 0, RESAMPLE_LTTB, 100, &r),
                     0);
    assert_int_equal(r.len, 1);
    assert_true(r.data[0] == 7);
    store_series_free(&r);
    store_destroy(s);
}

static void test_avg_and_invalid_aggregation(void **state)
{
    (void)state;
    struct store *s = new_store();
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "core%d", k);
        put(s, "c", "h", name, NULL, M_AVG, 100, (float)(k + 1));
        put(s, "c", "h", name, NULL, M_NONE, 100, 1);
    }
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), M_AVG, 100, 110, 0, RESAMPLE_LTTB, 100, &r),
                     0);
    /* (1 + 2 + 3) * (1.0 / 3), multiplication by the reciprocal */
    assert_true(r.data[0] == 6.0 * (1.0 / 3.0));
    store_series_free(&r);
    assert_int_equal(store_read(s, &st.sel, M_NONE, 100, 110, 0, RESAMPLE_LTTB, 100, &r), STORE_EAGGREGATION);
    const char *one[] = {"core1"};
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", one, 1), M_NONE, 100, 110, 0, RESAMPLE_LTTB, 100, &r),
                     0);
    store_series_free(&r);
    store_destroy(s);
}

static void test_union_window_any_order(void **state)
{
    (void)state;
    /* Chains covering different ranges: the window is their union and a
     * point missing in any chain is NaN, whatever the visiting order. */
    struct store *s = new_store();
    for (int64_t t = 100; t < 200; t += 10)
        put(s, "c", "h", "hwthread0", NULL, M_SUM, t, 1);
    for (int64_t t = 150; t < 250; t += 10)
        put(s, "c", "h", "hwthread1", NULL, M_SUM, t, 2);
    struct sel_storage st;
    struct store_series r1, r2;
    const char *order1[] = {"hwthread0", "hwthread1"};
    const char *order2[] = {"hwthread1", "hwthread0"};
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", order1, 2), M_SUM, 0, 1000, 0, RESAMPLE_LTTB, 1000,
                                &r1), 0);
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", order2, 2), M_SUM, 0, 1000, 0, RESAMPLE_LTTB, 1000,
                                &r2), 0);
    assert_int_equal(r1.from, 100);
    assert_int_equal(r1.len, 15);
    assert_int_equal(r1.to, 250);
    assert_int_equal(r2.from, r1.from);
    assert_int_equal(r2.len, r1.len);
    for (size_t k = 0; k < r1.len; k++) {
        int64_t t = r1.from + 10 * (int64_t)k;
        if (t >= 150 && t < 200)
            assert_true(r1.data[k] == 3.0);
        else
            assert_nan(r1.data[k]);
        assert_memory_equal(&r1.data[k], &r2.data[k], sizeof(double));
    }
    store_series_free(&r1);
    store_series_free(&r2);
    store_destroy(s);
}

static void test_resolution(void **state)
{
    (void)state;
    struct store *s = new_store();
    for (int k = 0; k < 1200; k++)
        put(s, "c", "h", NULL, NULL, M_M, 100 + 10 * k, (float)k);
    struct sel_storage st;
    struct store_series r;
    make_sel(&st, "c", "h", NULL, 0);
    assert_int_equal(store_read(s, &st.sel, M_M, 0, 100000, 15, RESAMPLE_LTTB, 100000, &r), STORE_ERESAMPLE);
    assert_int_equal(store_read(s, &st.sel, M_M, 0, 100000, 100, RESAMPLE_LTTB, 100000, &r), 0);
    assert_int_equal(r.resolution, 100);
    assert_int_equal(r.len, 120);
    assert_true(r.data[0] == 0 && r.data[119] == 1199);
    store_series_free(&r);
    assert_int_equal(store_read(s, &st.sel, M_M, 100, 200, 100, RESAMPLE_LTTB, 100000, &r), 0);
    assert_int_equal(r.resolution, 10); /* < 1000 points: native */
    store_series_free(&r);
    store_destroy(s);
}

static void test_points_bounded_by_data(void **state)
{
    (void)state;
    struct store *s = new_store();
    put(s, "c", "h", NULL, NULL, M_M, 1000000, 1);
    struct sel_storage st;
    struct store_series r;
    make_sel(&st, "c", "h", NULL, 0);
    assert_int_equal(store_read(s, &st.sel, M_M, INT64_MIN, INT64_MAX, 0, RESAMPLE_LTTB, 10, &r), 0);
    assert_int_equal(r.len, 1);
    store_series_free(&r);
    put(s, "c", "h", NULL, NULL, M_M, 1000000 + 10 * 100000, 2); /* a far gap */
    assert_int_equal(store_read(s, &st.sel, M_M, INT64_MIN, INT64_MAX, 0, RESAMPLE_LTTB, 1000, &r),
                     STORE_ETOO_MANY_POINTS);
    store_destroy(s);
}

static void test_free_rules(void **state)
{
    (void)state;
    struct store *s = new_store();
    for (int k = 0; k < 1025; k++)
        put(s, "c", "h", NULL, NULL, M_M, 100 + 10 * k, (float)k);
    put(s, "c", "other", "socket0", NULL, M_M, 100, 1);
    const char *path[] = {"c", "h"};
    size_t lens[] = {1, 1};
    uint64_t freed;
    store_free(s, path, lens, 2, 5220, &freed);
    assert_int_equal(freed, 0);
    store_free(s, path, lens, 2, 5221, &freed);
    assert_int_equal(freed, 1);
    struct sel_storage st;
    struct store_series r;
    assert_int_equal(store_read(s, make_sel(&st, "c", "h", NULL, 0), M_M, 0, 20000, 0, RESAMPLE_LTTB, 100000,
                                &r), 0);
    assert_int_equal(r.from, 5220);
    assert_int_equal(r.len, 513);
    store_series_free(&r);
    store_free(s, path, lens, 2, 20000, &freed);
    assert_int_equal(freed, 2);
    assert_int_equal(store_read(s, &st.sel, M_M, 0, 20000, 0, RESAMPLE_LTTB, 100000, &r), STORE_ENOTFOUND);
    /* the host level itself stays; a free of the cluster removes it and the
     * now-empty socket level of "other" */
    char **hosts;
    size_t count;
    store_list_hosts(s, "c", 1, &hosts, &count);
    assert_int_equal(count, 2);
    for (size_t i = 0; i < count; i++)
        free(hosts[i]);
    free(hosts);
    store_free(s, path, lens, 1, 20000, &freed);
    assert_int_equal(freed, 1);
    store_list_hosts(s, "c", 1, &hosts, &count);
    assert_int_equal(count, 0);
    free(hosts);
    /* freeing a path that does not exist creates nothing */
    const char *ghost[] = {"x", "y", "z"};
    size_t ghost_lens[] = {1, 1, 1};
    store_free(s, ghost, ghost_lens, 3, 20000, &freed);
    assert_int_equal(freed, 0);
    struct jbuf dump;
    jbuf_init(&dump, 64);
    assert_int_equal(store_debug_dump(s, NULL, NULL, 0, &dump), 0);
    jbuf_putc(&dump, '\0');
    assert_string_equal(dump.data, "{\"data\":{\n\t\"c\":{\n\t},\n}}\n");
    jbuf_free(&dump);
    store_free(s, NULL, NULL, 0, 20000, &freed);
    struct store_stats stats;
    store_get_stats(s, &stats);
    assert_int_equal(stats.levels, 1);
    assert_int_equal(stats.buffers, 0);
    store_destroy(s);
}

static void test_debug_dump_format(void **state)
{
    (void)state;
    struct store_metric metrics[] = {{"cpu_load", 60, CCMS_AGG_NONE},
                                     {"cpu_user", 60, CCMS_AGG_AVG}};
    struct store *s;
    store_create(metrics, 2, &s);
    const char *p1[] = {"alex", "a0124"};
    store_write_path(s, p1, 2, 0, 1000, 1);
    store_write_path(s, p1, 2, 0, 1060, 2);
    store_write_path(s, p1, 2, 0, 1120, 3);
    const char *p2[] = {"alex", "a0124", "hwthread0"};
    for (int k = 0; k < 514; k++)
        store_write_path(s, p2, 3, 1, 1000 + 60 * k, 1);
    struct jbuf out;
    jbuf_init(&out, 256);
    assert_int_equal(store_debug_dump(s, NULL, NULL, 0, &out), 0);
    jbuf_putc(&out, '\0');
    assert_string_equal(out.data,
                        "{\"data\":{\n"
                        "\t\"alex\":{\n"
                        "\t\t\"a0124\":{\n"
                        "\t\t\t\"cpu_load\":[{\"start\":970,\"len\":3,\"end\":1150}],\n"
                        "\t\t\t\"hwthread0\":{\n"
                        "\t\t\t\t\"cpu_user\":[{\"start\":970,\"len\":512,\"end\":31690},"
                        "{\"start\":31690,\"len\":2,\"end\":31810}],\n"
                        "\t\t\t},\n"
                        "\t\t},\n"
                        "\t},\n"
                        "}}\n");
    jbuf_reset(&out);
    const char *sel[] = {"alex", "a0124", "hwthread0"};
    size_t lens[] = {4, 5, 9};
    assert_int_equal(store_debug_dump(s, sel, lens, 3, &out), 0);
    jbuf_putc(&out, '\0');
    assert_string_equal(out.data, "{\"data\":{\n\t\"cpu_user\":[{\"start\":970,\"len\":512,"
                                  "\"end\":31690},{\"start\":31690,\"len\":2,\"end\":31810}],\n"
                                  "}}\n");
    jbuf_reset(&out);
    const char *missing[] = {"alex", "nohost"};
    size_t missing_lens[] = {4, 6};
    assert_int_equal(store_debug_dump(s, missing, missing_lens, 2, &out), STORE_ENOTFOUND);
    jbuf_free(&out);
    store_destroy(s);
}

static void test_health(void **state)
{
    (void)state;
    struct store *s = new_store();
    int64_t now = 100000;
    for (int64_t t = now - 100; t <= now; t += 10)
        put(s, "c", "n1", NULL, NULL, M_M, t, 1);          /* fresh */
    for (int64_t t = now - 150; t <= now - 100; t += 10)
        put(s, "c", "n1", "cpu0", NULL, M_SUM, t, 1);      /* stale */
    int metrics[] = {M_M, M_SUM, M_AVG, -1};
    enum store_health h[4];
    assert_int_equal(store_health(s, "c", 1, "n1", 2, metrics, 4, now, h), 0);
    assert_int_equal(h[0], STORE_HEALTHY);
    assert_int_equal(h[1], STORE_DEGRADED);
    assert_int_equal(h[2], STORE_MISSING);
    assert_int_equal(h[3], STORE_MISSING);
    assert_int_equal(store_health(s, "c", 1, "n2", 2, metrics, 4, now, h), STORE_ENOTFOUND);
    /* H12 boundary: one sample at now-50 is healthy (45 <= 50) */
    put(s, "c", "n3", NULL, NULL, M_M, now - 50, 1);
    assert_int_equal(store_health(s, "c", 1, "n3", 2, metrics, 1, now, h), 0);
    assert_int_equal(h[0], STORE_HEALTHY);
    store_destroy(s);
}

static void test_stats_and_bytes(void **state)
{
    (void)state;
    struct store *s = new_store();
    uint64_t empty = store_bytes(s);
    assert_true(empty > 0);
    for (int k = 0; k < 600; k++)
        put(s, "c", "h", "hwthread0", NULL, M_M, 100 + 10 * k, test_noise((uint64_t)k));
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.samples, 600);
    assert_int_equal(st.buffers, 2);
    assert_int_equal(st.levels, 4);
    /* a complete buffer and a head of 88 plain floats (room for 128), plus
     * the levels created on the way */
    assert_true(st.bytes >= empty + full_buffer_bytes(10) + 88 * sizeof(float));
    assert_true(st.bytes < empty + full_buffer_bytes(10) + 128 * sizeof(float) + 2048);
    assert_int_equal(store_metric_lookup(s, "s", 1), M_SUM);
    assert_int_equal(store_metric_lookup(s, "sx", 1), M_SUM); /* length-limited */
    assert_int_equal(store_metric_lookup(s, "x", 1), -1);
    assert_int_equal(store_metric_lookup(s, "ss", 2), -1);
    store_destroy(s);
}

static void test_cutoff_for_bytes_oldest_first(void **state)
{
    (void)state;
    struct store *s = new_store();
    /* host a: old data (two buffers); host b: newer data (one buffer) */
    for (int k = 0; k < 700; k++)
        put(s, "c", "a", NULL, NULL, M_M, 1000 + 10 * k, test_noise((uint64_t)k));
    for (int k = 0; k < 10; k++)
        put(s, "c", "b", NULL, NULL, M_M, 100000 + 10 * k, 2);
    uint64_t one = full_buffer_bytes(10);
    int64_t cutoff;
    assert_int_equal(store_cutoff_for_bytes(s, one, &cutoff), 0);
    uint64_t freed;
    store_free(s, NULL, NULL, 0, cutoff, &freed);
    assert_int_equal(freed, 1); /* only host a's oldest buffer */
    assert_int_equal(store_cutoff_for_bytes(s, 2 * one, &cutoff), 0);
    store_free(s, NULL, NULL, 0, cutoff, &freed);
    assert_int_equal(freed, 2);
    assert_int_equal(store_cutoff_for_bytes(s, 1, &cutoff), 0);
    assert_int_equal(cutoff, INT64_MAX); /* nothing left to free */
    store_destroy(s);
}

/* ---- concurrency: writers on distinct and shared hosts, readers, free --- */

struct worker {
    struct store *s;
    int id;
};

static void *writer_main(void *arg)
{
    struct worker *w = arg;
    char host[16];
    for (int k = 0; k < 3000; k++) {
        snprintf(host, sizeof host, "h%d", (w->id + k) % 6);
        const char *path[] = {"c", host, k % 2 ? "hwthread0" : "hwthread1"};
        store_write_path(w->s, path, 3, M_SUM, 1000 + 10 * (k / 6), (float)k);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    struct worker *w = arg;
    struct sel_storage st;
    for (int k = 0; k < 2000; k++) {
        char host[16];
        snprintf(host, sizeof host, "h%d", k % 6);
        struct store_series r;
        store_prefetch(w->s, make_sel(&st, "c", host, NULL, 0), M_SUM, 0, 100000);
        if (store_read(w->s, &st.sel, M_SUM, 0, 100000, 0, RESAMPLE_LTTB, 100000, &r) == 0)
            store_series_free(&r);
        if (k % 100 == 0) {
            uint64_t freed;
            store_free(w->s, NULL, NULL, 0, 1000 + k, &freed);
            struct jbuf out;
            jbuf_init(&out, 64);
            store_debug_dump(w->s, NULL, NULL, 0, &out);
            jbuf_free(&out);
            char **hosts;
            size_t count;
            if (store_list_hosts(w->s, "c", 1, &hosts, &count) == 0) {
                for (size_t i = 0; i < count; i++)
                    free(hosts[i]);
                free(hosts);
            }
        }
    }
    return NULL;
}

static void test_concurrent_access(void **state)
{
    (void)state;
    struct store *s = new_store();
    pthread_t threads[6];
    struct worker workers[6];
    for (int i = 0; i < 6; i++) {
        workers[i] = (struct worker){s, i};
        pthread_create(&threads[i], NULL, i < 4 ? writer_main : reader_main, &workers[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(threads[i], NULL);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_true(st.samples > 0);
    uint64_t freed;
    store_free(s, NULL, NULL, 0, INT64_MAX, &freed);
    store_get_stats(s, &st);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.levels, 1);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_count_limit),
        cmocka_unit_test(test_read_single_chain),
        cmocka_unit_test(test_prefetch_changes_nothing),
        cmocka_unit_test(test_sum_and_implicit_descent),
        cmocka_unit_test(test_host_chain_hides_children),
        cmocka_unit_test(test_avg_and_invalid_aggregation),
        cmocka_unit_test(test_union_window_any_order),
        cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_points_bounded_by_data),
        cmocka_unit_test(test_free_rules),
        cmocka_unit_test(test_debug_dump_format),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_stats_and_bytes),
        cmocka_unit_test(test_cutoff_for_bytes_oldest_first),
        cmocka_unit_test(test_concurrent_access),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
