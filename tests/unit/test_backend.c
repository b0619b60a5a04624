/* Tests for net/backend.c: parsing both response shapes, rejecting bad
 * bodies, and a real HTTP round trip (status, token header) against a tiny
 * server thread. */
#include "testutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "fake_http.h"
#include "net/backend.h"

static void test_parse_wrapped_and_plain(void **state)
{
    (void)state;
    const char *wrapped = "{\"usedNodes\":{\"fritz\":[\"f0201\",\"f0202\"],\"alex\":[\"a0124\"]}}";
    struct used_nodes u;
    char err[256];
    assert_int_equal(backend_parse_used_nodes(wrapped, strlen(wrapped), &u, err, sizeof err), 0);
    assert_int_equal(u.count, 3);
    assert_true(used_nodes_contains(&u, "fritz", "f0202"));
    assert_true(used_nodes_contains(&u, "alex", "a0124"));
    assert_false(used_nodes_contains(&u, "alex", "f0201"));
    assert_false(used_nodes_contains(&u, "fritz", "f020"));
    used_nodes_free(&u);
    const char *plain = "{\"fritz\":[\"f0201\"],\"empty\":[],\"none\":null}";
    assert_int_equal(backend_parse_used_nodes(plain, strlen(plain), &u, err, sizeof err), 0);
    assert_int_equal(u.count, 1);
    assert_true(used_nodes_contains(&u, "fritz", "f0201"));
    used_nodes_free(&u);
    assert_int_equal(backend_parse_used_nodes("{}", 2, &u, err, sizeof err), 0);
    assert_int_equal(u.count, 0);
    assert_false(used_nodes_contains(&u, "a", "b"));
    used_nodes_free(&u);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = {"", "[", "[]", "{\"usedNodes\":[1]}", "{\"c\":[1]}", "{\"c\":\"h\"}",
                         "\x01\x02", "{\"usedNodes\":{\"c\":[\"h\",2]}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct used_nodes u;
        char err[256] = "";
        assert_int_equal(backend_parse_used_nodes(bad[i], strlen(bad[i]), &u, err, sizeof err),
                         BACKEND_EFORMAT);
        assert_true(strlen(err) > 0);
        assert_int_equal(u.count, 0);
    }
}

static void test_http_round_trip(void **state)
{
    (void)state;
    struct fake_http f;
    assert_int_equal(fake_http_start(&f, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         "Connection: close\r\n\r\n"
                                         "{\"usedNodes\":{\"c\":[\"h1\"]}}"), 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct used_nodes u;
    assert_int_equal(backend_used_nodes(url, "secret-token", 1700000000, NULL, &u, err, sizeof err), 0);
    fake_http_finish(&f);
    assert_true(used_nodes_contains(&u, "c", "h1"));
    used_nodes_free(&u);
    assert_non_null(strstr(f.request, "GET /api/jobs/used_nodes?ts=1700000000 HTTP/1.1"));
    assert_non_null(strstr(f.request, "Authorization: Bearer secret-token\r\n"));
}

static void test_http_errors(void **state)
{
    (void)state;
    struct fake_http f;
    assert_int_equal(fake_http_start(&f, "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\nno"), 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct used_nodes u;
    assert_int_equal(backend_used_nodes(url, NULL, 1, NULL, &u, err, sizeof err), BACKEND_EREQUEST);
    fake_http_finish(&f);
    assert_non_null(strstr(err, "status 401"));
    assert_null(strstr(f.request, "Authorization"));
    /* nothing listening */
    assert_int_equal(backend_used_nodes("http://127.0.0.1:1", NULL, 1, NULL, &u, err, sizeof err),
                     BACKEND_EREQUEST);
}

static void test_cancel_abandons_a_hanging_backend(void **state)
{
    (void)state;
    /* A listener that never answers: the kernel completes the handshake,
     * so only the cancel flag can end the request before the timeout. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    atomic_bool cancel = true;
    struct used_nodes u;
    assert_int_equal(backend_used_nodes(url, NULL, 1, &cancel, &u, err, sizeof err),
                     BACKEND_EREQUEST);
    assert_non_null(strstr(err, "callback"));
    close(fd);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_wrapped_and_plain),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_http_round_trip),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_cancel_abandons_a_hanging_backend),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
