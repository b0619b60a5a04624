/*
 * Tests for src/net/http*.c: the routing table, path cleaning, the auth
 * hook, and a real server on an ephemeral 127.0.0.1 port spoken to with
 * plain sockets (404/405/301, HEAD, bodies on GET, write streaming, limits).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/api.h"
#include "net/http.h"
#include "net/jwt.h"
#include "store/store.h"

/* ---- routing and cleaning ------------------------------------------------ */

static void expect_route(const char *method, const char *path, enum http_route_id route,
                         int status, const char *allow)
{
    struct http_route_match m;
    http_route(method, path, &m);
    assert_int_equal(m.status, status);
    assert_int_equal(m.route, route);
    if (allow == NULL)
        assert_null(m.allow);
    else
        assert_str_eq(m.allow, allow);
}

static void test_route_table(void **state)
{
    (void)state;
    expect_route("GET", "/api/query", HTTP_ROUTE_QUERY, 0, NULL);
    expect_route("GET", "/api/query/", HTTP_ROUTE_QUERY, 0, NULL);
    expect_route("HEAD", "/api/query/anything/below", HTTP_ROUTE_QUERY, 0, NULL);
    expect_route("POST", "/api/query", HTTP_ROUTE_QUERY, 0, NULL);
    expect_route("PUT", "/api/query", HTTP_ROUTE_NONE, 405, "GET, HEAD, POST");
    expect_route("POST", "/api/write", HTTP_ROUTE_WRITE, 0, NULL);
    expect_route("POST", "/api/write/", HTTP_ROUTE_WRITE, 0, NULL);
    expect_route("GET", "/api/write", HTTP_ROUTE_NONE, 405, "POST");
    expect_route("POST", "/api/free/", HTTP_ROUTE_FREE, 0, NULL);
    expect_route("DELETE", "/api/free", HTTP_ROUTE_NONE, 405, "POST");
    expect_route("GET", "/api/debug", HTTP_ROUTE_DEBUG, 0, NULL);
    expect_route("POST", "/api/debug", HTTP_ROUTE_NONE, 405, "GET, HEAD");
    expect_route("GET", "/api/healthcheck/", HTTP_ROUTE_HEALTH, 0, NULL);
    expect_route("POST", "/api/healthcheck", HTTP_ROUTE_HEALTH, 0, NULL);
    expect_route("GET", "/api/queryx", HTTP_ROUTE_NONE, 404, NULL);
    expect_route("GET", "/api", HTTP_ROUTE_NONE, 404, NULL);
    expect_route("GET", "/", HTTP_ROUTE_NONE, 404, NULL);
    expect_route("get", "/api/query", HTTP_ROUTE_NONE, 405, "GET, HEAD, POST");
}

static void expect_clean(const char *in, const char *want)
{
    char *got = http_clean_path(in);
    assert_non_null(got);
    assert_str_eq(got, want);
    free(got);
}

static void test_clean_path(void **state)
{
    (void)state;
    expect_clean("/api/query", "/api/query");
    expect_clean("/api/query/", "/api/query/");
    expect_clean("//api//query", "/api/query");
    expect_clean("/api/./query/", "/api/query/");
    expect_clean("/api/x/../query", "/api/query");
    expect_clean("/../api/query", "/api/query");
    expect_clean("/a/b/../..", "/");
    expect_clean("/a/b/../../", "/");
    expect_clean("/", "/");
    expect_clean("/.", "/");
    expect_clean("api/query", "/api/query");
    expect_clean("/a/.../b", "/a/.../b");
}

/* The upstream documentation's key and token (no exp claim). */
#define DOC_KEY "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0="
#define DOC_TOKEN "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWRtaW4iLCJyb2xlcyI6WyJST0xFX0FETUlOIiwiUk9MRV9BTkFMWVNUIiwiUk9MRV9VU0VSIl19.d-3_3FZTsadPjDEdsWrrQ7nS0edMAR4zjl-eK7rJU3HziNBfI9PDHDIpJVHTNN5E5SlLGLFXctWyKAkwhXL-Dw"

static void expect_denied(struct jwt_verifier *jwt, const char *header, const char *body)
{
    struct api_response r = { 0 };
    assert_int_equal(http_authorize(jwt, header, 1700000000, &r), -EACCES);
    assert_int_equal(r.status, 401);
    assert_str_eq(r.content_type, API_CT_TEXT);
    assert_int_equal(r.len, strlen(body));
    assert_memory_equal(r.body, body, r.len);
    api_response_free(&r);
}

static void test_authorize(void **state)
{
    (void)state;
    struct api_response r = { 0 };
    assert_int_equal(http_authorize(NULL, NULL, 0, &r), 0);
    assert_int_equal(http_authorize(NULL, "Bearer x", 0, &r), 0);
    struct jwt_verifier *jwt;
    assert_int_equal(jwt_verifier_create(DOC_KEY, &jwt), 0);
    expect_denied(jwt, NULL, "Use JWT Authentication\n");
    expect_denied(jwt, "bearer abc", "Use JWT Authentication\n");
    expect_denied(jwt, "Bearer abc", "token contains an invalid number of segments\n");
    assert_int_equal(http_authorize(jwt, "Bearer " DOC_TOKEN, 1700000000, &r), 0);
    jwt_verifier_destroy(jwt);
}

static void test_listen_addresses(void **state)
{
    (void)state;
    char err[256];
    int fd;
    assert_int_equal(http_listen("127.0.0.1:0", &fd, err, sizeof(err)), 0);
    close(fd);
    assert_int_equal(http_listen(":0", &fd, err, sizeof(err)), 0);
    close(fd);
    assert_int_equal(http_listen("nocolon", &fd, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid listen address"));
    assert_int_equal(http_listen("::1:80", &fd, err, sizeof(err)), -1);
    assert_int_equal(http_listen("127.0.0.1:", &fd, err, sizeof(err)), -1);
}

/* ---- a real server ------------------------------------------------------- */

struct fixture {
    struct store *store;
    struct ccms_config cfg;
    struct api_context ctx;
    struct http_server *srv;
    int port;
};

static struct fixture fx;

static int server_start(void)
{
    static const struct store_metric metrics[] = { { "cpu_load", 60, CCMS_AGG_AVG } };
    char err[256];
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd;
    if (store_create(metrics, 1, &fx.store) != 0)
        return -1;
    fx.cfg.max_body_size = 4096;
    fx.cfg.max_json_body_size = 1024;
    fx.cfg.max_line_length = 1024;
    fx.cfg.max_query_points = 10000;
    fx.cfg.future_tolerance_seconds = 3600;
    fx.cfg.read_timeout = 30;
    fx.cfg.write_timeout = 30;
    fx.cfg.http_threads = 2;
    fx.cfg.max_connections = 64;
    fx.ctx = (struct api_context){ .store = fx.store, .cfg = &fx.cfg };
    if (fx.cfg.jwt_public_key && jwt_verifier_create(fx.cfg.jwt_public_key, &fx.ctx.jwt) != 0)
        return -1;
    if (http_listen("127.0.0.1:0", &fd, err, sizeof(err)) != 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    fx.port = ntohs(sa.sin_port);
    return http_start(fd, &fx.ctx, NULL, &fx.srv, err, sizeof(err));
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    return server_start();
}

/* The key is set before the server starts: server threads only read cfg. */
static int setup_auth(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.cfg.jwt_public_key = "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0=";
    return server_start();
}

static int teardown(void **state)
{
    (void)state;
    http_stop(fx.srv);
    store_destroy(fx.store);
    jwt_verifier_destroy(fx.ctx.jwt);
    return 0;
}

struct reply {
    int status;
    char head[4096];
    char *body;
    size_t len;
    char raw[65536];
};

static int connect_server(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port) };
    struct timeval tv = { 10, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads until the peer closes (requests carry "Connection: close"). */
static void read_reply(int fd, struct reply *r)
{
    size_t n = 0;
    ssize_t got;
    while (n < sizeof(r->raw) - 1 && (got = recv(fd, r->raw + n, sizeof(r->raw) - 1 - n, 0)) > 0)
        n += (size_t)got;
    r->raw[n] = '\0';
    char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    memcpy(r->head, r->raw, (size_t)(end - r->raw));
    r->head[end - r->raw] = '\0';
    r->body = end + 4;
    r->len = n - (size_t)(r->body - r->raw);
    assert_int_equal(sscanf(r->raw, "HTTP/1.1 %d", &r->status), 1);
}

static void roundtrip(const char *request, size_t len, struct reply *r)
{
    int fd = connect_server();
    assert_int_equal(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);
    read_reply(fd, r);
    close(fd);
}

/* Sends "<method> <target>" with an optional body and extra headers. */
static void http(const char *method, const char *target, const char *headers, const char *body,
                 struct reply *r)
{
    char req[8192];
    int n;
    if (body != NULL)
        n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s", method, target, headers ? headers : "",
                     strlen(body), body);
    else
        n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
                     "\r\n", method, target, headers ? headers : "");
    roundtrip(req, (size_t)n, r);
}

static void expect_header(const struct reply *r, const char *line)
{
    if (strstr(r->head, line) == NULL)
        fail_msg("header \"%s\" missing in:\n%s", line, r->head);
}

static void test_server_404_405_301(void **state)
{
    (void)state;
    struct reply r;
    http("GET", "/nope", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_str_eq(r.body, "404 page not found\n");
    expect_header(&r, "Content-Type: text/plain; charset=utf-8");
    http("DELETE", "/api/query/x", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_str_eq(r.body, "Method Not Allowed\n");
    expect_header(&r, "Allow: GET, HEAD, POST");
    http("GET", "/api/write", NULL, "x", &r);
    assert_int_equal(r.status, 405);
    expect_header(&r, "Allow: POST");
    http("GET", "//api/./query?version=v2&a=b%20c", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    expect_header(&r, "Location: /api/query?version=v2&a=b%20c");
    http("GET", "/api/x/../debug/", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    expect_header(&r, "Location: /api/debug/");
}

static void test_server_write_and_query(void **state)
{
    (void)state;
    struct reply r;
    http("POST", "/api/write/?cluster=al%65x", NULL,
         "cpu_load,hostname=a0124 value=1.0 1000\ncpu_load,hostname=a0124 value=2.0 1060\n"
         "cpu_load,hostname=a0124 value=4.0 1180", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    expect_header(&r, "Content-Type: application/json");
    const char *q = "{\"cluster\":\"alex\",\"from\":940,\"to\":1240,\"queries\":[{\"metric\":"
                    "\"cpu_load\",\"host\":\"a0124\"}]}";
    const char *want = "{\"results\":[[{\"data\":[null,1.000,2.000,null,4.000],\"from\":1000,"
                       "\"to\":1240,\"resolution\":60,\"avg\":2.33,\"min\":1.00,\"max\":4.00}]]}\n";
    http("GET", "/api/query?version=v2", NULL, q, &r);
    assert_int_equal(r.status, 200);
    assert_str_eq(r.body, want);
    http("POST", "/api/query/", NULL, q, &r);
    assert_str_eq(r.body, want);
    /* HEAD answers like GET without a body */
    http("HEAD", "/api/query", NULL, q, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    http("GET", "/api/query", NULL, "", &r);
    assert_int_equal(r.status, 400);
    assert_str_eq(r.body, "{\"status\":\"Bad Request\",\"error\":\"EOF\"}\n");
}

static void test_server_other_endpoints(void **state)
{
    (void)state;
    struct reply r;
    http("POST", "/api/write?cluster=alex", NULL, "cpu_load,hostname=h value=1 1000\n", &r);
    assert_int_equal(r.status, 200);
    http("GET", "/api/debug?selector=alex%3Anohost", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "not found: []string{\\\"alex\\\", \\\"nohost\\\"}"));
    http("GET", "/api/debug/?selector=alex:h", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"cpu_load\":[{\"start\":970,\"len\":1,\"end\":1030}]"));
    http("GET", "/api/healthcheck", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_str_eq(r.body, "{\"status\":\"Bad Request\",\"error\":\"parsing request body "
                          "failed: EOF\"}\n");
    http("GET", "/api/healthcheck/", NULL, "{\"cluster\":\"alex\",\"nodes\":[\"zz\"]}", &r);
    assert_str_eq(r.body, "{\"zz\":{\"State\":\"failed\",\"HealthMetrics\":\"\"}}\n");
    http("POST", "/api/free", NULL, "[]", &r);
    assert_int_equal(r.status, 400);
    http("POST", "/api/free?to=x", NULL, "[]", &r);
    assert_int_equal(r.status, 400);
    http("POST", "/api/free?to=99999999", NULL, "[[\"alex\"]]", &r);
    assert_int_equal(r.status, 200);
    assert_str_eq(r.body, "buffers freed: 1\n");
    expect_header(&r, "Content-Type: text/plain; charset=utf-8");
}

static void test_server_limits(void **state)
{
    (void)state;
    struct reply r;
    char big[2048];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* declared too large: refused before the body is read */
    http("GET", "/api/query", NULL, big, &r);
    assert_int_equal(r.status, 413);
    assert_str_eq(r.body, "{\"status\":\"Request Entity Too Large\",\"error\":\"request body "
                          "larger than 1024 bytes\"}\n");
    /* chunked: noticed mid-body, answered when the body ends */
    char req[8192];
    int n = snprintf(req, sizeof(req), "POST /api/free?to=1 HTTP/1.1\r\nHost: t\r\n"
                     "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "%x\r\n%.*s\r\n", 1000, 1000, big);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    roundtrip(req, (size_t)n, &r);
    assert_int_equal(r.status, 413);
    /* bad precision on write */
    http("POST", "/api/write?precision=h", NULL, "cpu_load,hostname=h value=1 1000\n", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "invalid precision"));
}

static void test_server_auth(void **state)
{
    (void)state;
    struct reply r;
    http("GET", "/api/debug", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_str_eq(r.body, "Use JWT Authentication\n");
    http("POST", "/api/write", "Authorization: Bearer abc.def.ghi\r\n", "x", &r);
    assert_int_equal(r.status, 401);
    assert_str_eq(r.body, "token header is not a base64url-encoded JSON object\n");
    http("GET", "/api/debug", "Authorization: Bearer " DOC_TOKEN "\r\n", NULL, &r);
    assert_int_equal(r.status, 200);
    /* 404 and 405 need no auth */
    http("GET", "/nope", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    http("GET", "/api/free", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
}

/* Two requests on one connection: early answers keep the connection alive. */
static void test_server_keep_alive(void **state)
{
    (void)state;
    const char *two = "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /api/debug?selector=none HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct reply r;
    roundtrip(two, strlen(two), &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "HTTP/1.1 400 Bad Request"));
}

/* A client that stops mid-body never gets its write acknowledged and the
 * partial last line is not stored. */
static void test_server_aborted_write(void **state)
{
    (void)state;
    struct reply r;
    const char *req = "POST /api/write?cluster=ab HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n"
                      "\r\ncpu_load,hostname=h value=1 1000\ncpu_load,hostname=h value=12";
    int fd = connect_server();
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    char buf[256];
    assert_true(recv(fd, buf, sizeof(buf), 0) <= 0);
    close(fd);
    /* MHD ran the completion callback before it closed the connection */
    http("GET", "/api/debug?selector=ab:h", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"len\":1,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_clean_path),
        cmocka_unit_test(test_authorize),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test_setup_teardown(test_server_404_405_301, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_write_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_other_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_auth, setup_auth, teardown),
        cmocka_unit_test_setup_teardown(test_server_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_aborted_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
