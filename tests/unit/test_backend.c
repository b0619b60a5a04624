/* Tests for net/backend.c: parsing both response shapes, rejecting bad
 * bodies, and a real HTTP round trip (status, token header) against a tiny
 * server thread. */
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* ---- a one-request HTTP server ------------------------------------------- */

struct fake {
    int listen_fd;
    int port;
    const char *response;
    char request[4096];
};

static void *serve_one(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t got = 0;
    while (got < sizeof f->request - 1 && !strstr(f->request, "\r\n\r\n")) {
        ssize_t n = read(c, f->request + got, sizeof f->request - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        f->request[got] = '\0';
    }
    ssize_t w = write(c, f->response, strlen(f->response));
    (void)w;
    close(c);
    return NULL;
}

static void start_fake(struct fake *f, pthread_t *t)
{
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &len);
    f->port = ntohs(sa.sin_port);
    pthread_create(t, NULL, serve_one, f);
}

static void test_http_round_trip(void **state)
{
    (void)state;
    struct fake f = {.response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Connection: close\r\n\r\n{\"usedNodes\":{\"c\":[\"h1\"]}}"};
    pthread_t t;
    start_fake(&f, &t);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct used_nodes u;
    assert_int_equal(backend_used_nodes(url, "secret-token", 1700000000, &u, err, sizeof err), 0);
    pthread_join(t, NULL);
    close(f.listen_fd);
    assert_true(used_nodes_contains(&u, "c", "h1"));
    used_nodes_free(&u);
    assert_non_null(strstr(f.request, "GET /api/jobs/used_nodes?ts=1700000000 HTTP/1.1"));
    assert_non_null(strstr(f.request, "Authorization: Bearer secret-token\r\n"));
}

static void test_http_errors(void **state)
{
    (void)state;
    struct fake f = {.response = "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\nno"};
    pthread_t t;
    start_fake(&f, &t);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    struct used_nodes u;
    assert_int_equal(backend_used_nodes(url, NULL, 1, &u, err, sizeof err), BACKEND_EREQUEST);
    pthread_join(t, NULL);
    close(f.listen_fd);
    assert_non_null(strstr(err, "status 401"));
    assert_null(strstr(f.request, "Authorization"));
    /* nothing listening */
    assert_int_equal(backend_used_nodes("http://127.0.0.1:1", NULL, 1, &u, err, sizeof err),
                     BACKEND_EREQUEST);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_wrapped_and_plain),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_http_round_trip),
        cmocka_unit_test(test_http_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
