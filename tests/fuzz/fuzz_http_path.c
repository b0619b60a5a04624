/*
 * libFuzzer target for what the HTTP layer does with attacker-chosen
 * request lines and headers before any endpoint runs: path cleaning (the
 * 301 target), routing, and the auth hook with an arbitrary Authorization
 * header. The first byte picks the method; the rest is split at the first
 * newline into path and header value.
 *
 * Checks: a cleaned path is absolute, has no empty, "." or ".." segment,
 * keeps a trailing slash, is never longer than the input + 2 and is a fixed
 * point (cleaning it again changes nothing); routing answers 0, 404 or 405
 * (405 always with an Allow header), and 0 only under /api/, /metrics and
 * /swagger; the auth hook never allows a header
 * that is not exactly "Bearer " + a token the verifier accepts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/jwt.h"

/* Whether a path is one the server answers at all: the API, /metrics,
 * and the API explorer under /swagger. */
static bool served_path(const char *clean)
{
    static const char *const roots[] = { "/metrics", "/swagger" };
    if (strncmp(clean, "/api/", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(clean, roots[i], n) == 0 && (clean[n] == '\0' || clean[n] == '/'))
            return true;
    }
    return false;
}

static void check_clean(const char *path, size_t len)
{
    char *clean = http_clean_path(path);
    if (clean == NULL)
        return;
    size_t n = strlen(clean);
    if (clean[0] != '/' || n > len + 2 || strstr(clean, "//") != NULL)
        abort();
    /* no "." or ".." segment */
    for (const char *seg = clean + 1; *seg != '\0';) {
        const char *end = strchr(seg, '/');
        size_t sl = end ? (size_t)(end - seg) : strlen(seg);
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        if (end == NULL)
            break;
        seg = end + 1;
    }
    if (len > 0 && path[len - 1] == '/' && clean[n - 1] != '/')
        abort();
    char *again = http_clean_path(clean);
    if (again != NULL && strcmp(again, clean) != 0)
        abort();
    free(again);

    static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS" };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct http_route_match m;
        http_route(methods[i], clean, &m);
        if (m.status != 0 && m.status != 404 && m.status != 405)
            abort();
        if ((m.status == 405) != (m.allow != NULL))
            abort();
        if (m.status == 0 && (m.route == HTTP_ROUTE_NONE || !served_path(clean)))
            abort();
    }
    free(clean);
}

static void check_auth(const char *header)
{
    static struct jwt_verifier *v;
    if (v == NULL && jwt_verifier_create("kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0=", &v) != 0)
        abort();
    struct api_response deny = { 0 };
    int rc = http_authorize(v, header, 1700000000, &deny);
    if (rc == 0) {
        /* allowed: must be exactly "Bearer " + a verifying token */
        const char *reason = NULL;
        if (strncmp(header, "Bearer ", 7) != 0 ||
            jwt_verify(v, header + 7, strlen(header + 7), 1700000000, &reason) != 0)
            abort();
        return;
    }
    if (rc == -EACCES) {
        if (deny.status != 401 || deny.len == 0 || deny.body[deny.len - 1] != '\n')
            abort();
        api_response_free(&deny);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* exact-size copies so that ASan catches any overread */
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    const char *nl = memchr(rest, '\n', rest_len);
    size_t path_len = nl ? (size_t)(nl - rest) : rest_len;
    char *path = malloc(path_len + 1);
    memcpy(path, rest, path_len);
    path[path_len] = '\0';
    check_clean(path, strlen(path));
    if (nl != NULL) {
        size_t hlen = rest_len - path_len - 1;
        char *header = malloc(hlen + 1);
        memcpy(header, nl + 1, hlen);
        header[hlen] = '\0';
        check_auth(header);
        free(header);
    }
    free(path);
    return 0;
}
