/*
 * http — the HTTP server (libmicrohttpd, a thread per connection or a
 * pool): Go ServeMux-compatible routing (docs/http-api.md, "Routing"),
 * request limits, streaming of /api/write bodies into ingest batches, the
 * auth hook, and optional TLS. Endpoint logic lives in src/api/ (api.h).
 * Connections are accepted by accept_front (accept_front.h) and reach
 * libmicrohttpd only once their request head has arrived.
 *
 * Lifecycle: http_listen() binds the socket first (before privileges are
 * dropped), http_start() listens and serves it with the given api_context
 * (which must outlive the server), http_stop() stops accepting, waits for requests in
 * flight (at most 30 s) and frees the server. The listening fd belongs to
 * the server once http_start() succeeded.
 */
#ifndef CCMS_HTTP_H
#define CCMS_HTTP_H

#include <stddef.h>

#include "api/api.h"
#include "config.h"

enum http_route_id {
    HTTP_ROUTE_NONE = 0,
    HTTP_ROUTE_QUERY,
    HTTP_ROUTE_WRITE,
    HTTP_ROUTE_FREE,
    HTTP_ROUTE_DEBUG,
    HTTP_ROUTE_HEALTH,
    HTTP_ROUTE_STATUS,
    HTTP_ROUTE_METRICS,
    HTTP_ROUTE_SWAGGER,         /* -dev only: the API explorer, without authentication */
    HTTP_ROUTES
};

/* The lowercase name of a route for metric labels ("query", ...; "other"
 * for requests no route took: 404, 405, redirects). */
const char *http_route_name(enum http_route_id route);

/* Appends the HTTP server's own metrics (requests by route and status,
 * their latency, open connections) in the Prometheus text format. */
struct jbuf;
void http_metrics_write(struct jbuf *b);

struct http_route_match {
    enum http_route_id route;   /* set when status == 0 */
    int status;                 /* 0 = dispatch, 404 unknown path, 405 wrong method */
    const char *allow;          /* Allow header value for 405 (static) */
};

/* Routes a cleaned path: exact "/api/x" or anything below "/api/x/".
 * GET routes also answer HEAD; query and healthcheck also accept POST. */
void http_route(const char *method, const char *path, struct http_route_match *out);

/* Go ServeMux's cleanPath: "//a/./b/../c/" -> "/a/c/". Returns a malloc'd
 * string (NULL when out of memory); the request is redirected (301) to it
 * when it differs from the path asked for. */
char *http_clean_path(const char *path);

/*
 * The authentication hook (docs/http-api.md, "Authentication"), applied to every routed
 * request. Returns 0 to allow; -EACCES with *deny filled (401, text/plain,
 * "Use JWT Authentication" without a "Bearer " header, else the reason the
 * token was rejected); -ENOMEM. Without a verifier (no `jwt-public-key`)
 * everything is allowed.
 */
int http_authorize(struct jwt_verifier *jwt, const char *authorization, int64_t now,
                   struct api_response *deny);

/* Binds addr ("host:port", "[v6]:port", ":port" = all interfaces, dual
 * stack) without listening yet: a privileged port can be bound before the
 * privilege drop, and connections are refused (not queued) until
 * http_start listens, after the restore. Returns 0 with *fd set, or -1
 * with a message. */
int http_listen(const char *addr, int *fd, char *err, size_t err_len);

/* PEM material for HTTPS, read before privileges are dropped. */
struct http_tls {
    char *cert_pem;
    char *key_pem;
};

/* Reads both files. Returns 0, or -1 with a message naming the file. */
int http_tls_load(const char *cert_file, const char *key_file, struct http_tls *out,
                  char *err, size_t err_len);
void http_tls_free(struct http_tls *tls);

struct http_server;

/* Serves fd with ctx->cfg's limits (threads, timeouts, body sizes,
 * connections). tls NULL = plain HTTP; otherwise TLS >= 1.2 (tls must
 * outlive the server). Returns 0, or -1 with a message. */
int http_start(int fd, const struct api_context *ctx, const struct http_tls *tls,
               struct http_server **out, char *err, size_t err_len);

/* Stops accepting, waits up to 30 s for running requests, stops the
 * threads, closes every connection and frees srv. */
void http_stop(struct http_server *srv);

#endif
