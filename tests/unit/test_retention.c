/* Tests for archive/retention.c: the retention cut-off (whole buffers whose
 * end is before now - R), hosts kept by the node provider, retention when
 * the provider is down, and the oldest-first memory cap. */
#include "testutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "archive/retention.h"
#include "fake_http.h"
#include "store/store.h"

static struct store *new_store(void)
{
    struct store_metric m[] = {{"m", 10, CCMS_AGG_AVG}};
    struct store *s;
    assert_int_equal(store_create(m, 1, &s), 0);
    return s;
}

static void put_range(struct store *s, const char *host, int64_t from, int n)
{
    const char *path[] = {"c", host};
    for (int k = 0; k < n; k++)
        assert_int_equal(store_write_path(s, path, 2, 0, from + 10 * k, test_noise((uint64_t)k)),
                         0);
}

static uint64_t samples_of(struct store *s, const char *host)
{
    const char *n0[] = {"c"}, *n1[] = {host};
    size_t l0[] = {1}, l1[] = {strlen(host)};
    struct store_selector sel = {.elems = {{n0, l0, 1}, {n1, l1, 1}}, .depth = 2};
    struct store_series r;
    if (store_read(s, &sel, 0, INT64_MIN, INT64_MAX, 0, RESAMPLE_LTTB, 10000000, &r) != 0)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < r.len; i++)
        n += !isnan(r.data[i]);
    store_series_free(&r);
    return n;
}

static void test_cutoff_frees_whole_old_buffers(void **state)
{
    (void)state;
    struct store *s = new_store();
    put_range(s, "h", 100, 1025); /* buffers end at 5220, 10340, 10350 */
    struct ccms_config cfg = {.retention_seconds = 1000};
    struct retention *r;
    assert_int_equal(retention_create(s, NULL, &cfg, &r), 0);
    uint64_t freed;
    assert_int_equal(retention_free_old(r, 6220, &freed), 0); /* cut-off 5220: end < 5220? no */
    assert_int_equal(freed, 0);
    assert_int_equal(retention_free_old(r, 6221, &freed), 0); /* cut-off 5221 */
    assert_int_equal(freed, 1);
    assert_int_equal(samples_of(s, "h"), 513);
    retention_destroy(r);
    store_destroy(s);
}

static void test_node_provider_keeps_hosts_in_use(void **state)
{
    (void)state;
    struct store *s = new_store();
    put_range(s, "busy", 100, 10);
    put_range(s, "idle", 100, 10);
    struct fake_http f;
    assert_int_equal(fake_http_start(&f, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                                         "{\"usedNodes\":{\"c\":[\"busy\"]}}"), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct ccms_config cfg = {.retention_seconds = 100, .backend_url = url,
                              .backend_token = "tok"};
    struct retention *r;
    assert_int_equal(retention_create(s, NULL, &cfg, &r), 0);
    uint64_t freed;
    assert_int_equal(retention_free_old(r, 100000, &freed), 0);
    fake_http_finish(&f);
    assert_int_equal(freed, 1);
    assert_int_equal(samples_of(s, "busy"), 10);
    assert_int_equal(samples_of(s, "idle"), 0);
    assert_non_null(strstr(f.request, "GET /api/jobs/used_nodes?ts=99900 "));
    assert_non_null(strstr(f.request, "Authorization: Bearer tok\r\n"));
    retention_destroy(r);
    store_destroy(s);
}

static void test_provider_down_still_frees(void **state)
{
    (void)state;
    struct store *s = new_store();
    put_range(s, "busy", 100, 10);
    struct ccms_config cfg = {.retention_seconds = 100, .backend_url = "http://127.0.0.1:1"};
    struct retention *r;
    assert_int_equal(retention_create(s, NULL, &cfg, &r), 0);
    uint64_t freed;
    assert_int_equal(retention_free_old(r, 100000, &freed), 0);
    assert_int_equal(freed, 1);
    assert_int_equal(samples_of(s, "busy"), 0);
    retention_destroy(r);
    store_destroy(s);
}

static void test_memory_cap_frees_oldest_first(void **state)
{
    (void)state;
    struct store *s = new_store();
    put_range(s, "old", 1000, 600);      /* two buffers, the oldest data */
    put_range(s, "middle", 20000, 600);  /* two buffers */
    put_range(s, "new", 90000, 10);      /* one buffer */
    uint64_t before = store_bytes(s);
    uint64_t one = full_buffer_bytes(10);
    /* room for everything but a little more than two full buffers: the
     * oldest ones go (old's two, then middle's full one) */
    struct ccms_config cfg = {.memory_cap_bytes = (int64_t)(before - 2 * one - 1)};
    struct retention *r;
    assert_int_equal(retention_create(s, NULL, &cfg, &r), 0);
    uint64_t freed;
    assert_int_equal(retention_enforce_cap(r, &freed), 0);
    assert_true(freed >= 2 * one + 1);
    assert_true(store_bytes(s) <= (uint64_t)cfg.memory_cap_bytes);
    assert_int_equal(samples_of(s, "old"), 0);
    assert_int_equal(samples_of(s, "middle"), 600 - 512);
    assert_int_equal(samples_of(s, "new"), 10);
    /* within the cap: nothing happens; cap 0 = unlimited */
    assert_int_equal(retention_enforce_cap(r, &freed), 0);
    assert_int_equal(freed, 0);
    cfg.memory_cap_bytes = 0;
    assert_int_equal(retention_enforce_cap(r, &freed), 0);
    assert_int_equal(freed, 0);
    retention_destroy(r);
    store_destroy(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutoff_frees_whole_old_buffers),
        cmocka_unit_test(test_node_provider_keeps_hosts_in_use),
        cmocka_unit_test(test_provider_down_still_frees),
        cmocka_unit_test(test_memory_cap_frees_oldest_first),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
