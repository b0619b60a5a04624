/*
 * http_route — routing table, path cleaning and the auth hook (http.h).
 */
#include "net/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/jwt.h"

struct http_route_def {
    const char *path;
    enum http_route_id route;
    bool get;      /* GET and HEAD */
    bool post;
    const char *allow;
};

static const struct http_route_def http_routes[] = {
    { "/api/query", HTTP_ROUTE_QUERY, true, true, "GET, HEAD, POST" },
    { "/api/write", HTTP_ROUTE_WRITE, false, true, "POST" },
    { "/api/free", HTTP_ROUTE_FREE, false, true, "POST" },
    { "/api/debug", HTTP_ROUTE_DEBUG, true, false, "GET, HEAD" },
    { "/api/healthcheck", HTTP_ROUTE_HEALTH, true, true, "GET, HEAD, POST" },
    { "/api/status", HTTP_ROUTE_STATUS, true, false, "GET, HEAD" },
    { "/metrics", HTTP_ROUTE_METRICS, true, false, "GET, HEAD" },
    { "/swagger", HTTP_ROUTE_SWAGGER, true, false, "GET, HEAD" },
};

const char *http_route_name(enum http_route_id route)
{
    static const char *const names[HTTP_ROUTES] = {
        [HTTP_ROUTE_NONE] = "other",    [HTTP_ROUTE_QUERY] = "query",
        [HTTP_ROUTE_WRITE] = "write",   [HTTP_ROUTE_FREE] = "free",
        [HTTP_ROUTE_DEBUG] = "debug",   [HTTP_ROUTE_HEALTH] = "healthcheck",
        [HTTP_ROUTE_STATUS] = "status", [HTTP_ROUTE_METRICS] = "metrics",
        [HTTP_ROUTE_SWAGGER] = "swagger",
    };
    return (unsigned)route < HTTP_ROUTES ? names[route] : "other";
}

static bool http_path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (strncmp(pattern, path, n) != 0)
        return false;
    return path[n] == '\0' || path[n] == '/';
}

void http_route(const char *method, const char *path, struct http_route_match *out)
{
    *out = (struct http_route_match){ HTTP_ROUTE_NONE, 404, NULL };
    for (size_t i = 0; i < sizeof(http_routes) / sizeof(http_routes[0]); i++) {
        const struct http_route_def *r = &http_routes[i];
        if (!http_path_matches(r->path, path))
            continue;
        bool ok = (r->get && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) ||
                  (r->post && strcmp(method, "POST") == 0);
        if (ok)
            *out = (struct http_route_match){ r->route, 0, NULL };
        else
            *out = (struct http_route_match){ HTTP_ROUTE_NONE, 405, r->allow };
        return;
    }
}

/* Go's path.Clean on an absolute path, written into out (room for
 * strlen(p) + 1 bytes). */
static void http_clean_abs(const char *p, char *out)
{
    size_t w = 1;
    out[0] = '/';
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (w > 1 && out[w - 1] != '/')
                w--;
            if (w > 1)
                w--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (w > 1)
                out[w++] = '/';
            memcpy(out + w, p, len);
            w += len;
        }
        p += len + (end != NULL);
    }
    out[w] = '\0';
}

char *http_clean_path(const char *path)
{
    size_t len = strlen(path);
    char *out = malloc(len + 3);
    if (out == NULL)
        return NULL;
    http_clean_abs(path, out);
    if (len > 0 && path[len - 1] == '/' && strcmp(out, "/") != 0)
        strcat(out, "/");
    return out;
}

int http_authorize(struct jwt_verifier *jwt, const char *authorization, int64_t now,
                   struct api_response *deny)
{
    if (jwt == NULL)
        return 0;
    if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0) {
        int rc = api_text(401, "Use JWT Authentication\n", deny);
        return rc < 0 ? rc : -EACCES;
    }
    const char *token = authorization + 7, *reason = NULL;
    int rc = jwt_verify(jwt, token, strlen(token), now, &reason);
    if (rc == 0)
        return 0;
    if (rc == JWT_ENOMEM)
        return -ENOMEM;
    char msg[128];
    snprintf(msg, sizeof(msg), "%s\n", reason);
    rc = api_text(401, msg, deny);
    return rc < 0 ? rc : -EACCES;
}
