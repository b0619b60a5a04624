/*
 * http — the libmicrohttpd server (http.h).
 *
 * One struct http_request per request, created on the handler's first call
 * (headers complete) and freed in the completion callback, which MHD calls
 * for every request however it ended. Answers that can be decided from the
 * headers (301, 404, 405, 401, 413 by Content-Length, bad write parameters)
 * are queued at once; MHD then skips the body. MHD 0.9.75 cannot queue an
 * answer while a body is still arriving, so an answer decided mid-body
 * (413, out of memory) is kept pending, the rest of the body is discarded,
 * and the answer goes out when the body ends. A request that outlives
 * read-timeout gets its answer written straight to the socket (plain HTTP)
 * and the connection is closed. An aborted /api/write is never answered
 * 200: its batch is freed unfinished, dropping the partial last line.
 */
#include "net/http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/swagger.h"
#include "log.h"
#include "net/accept_front.h"
#include "net/conn_guard.h"
#include "util/clock.h"
#include "util/prom.h"

/* Grace period for requests still running at shutdown. Unfinished uploads
 * are then aborted: they were never acknowledged, so nothing acknowledged
 * is lost, and a stalled client cannot hold up the final checkpoint. */
#define HTTP_SHUTDOWN_WAIT_MS 5000
#define HTTP_CONNECTION_MEMORY (128 * 1024)   /* headers + read buffer per connection */
#define HTTP_MEMORY_INCREMENT (16 * 1024)
#define HTTP_THREAD_STACK (512 * 1024)        /* handlers use little stack */
/* A connection must deliver its request head within this (or read-timeout
 * if shorter) before it is served at all: idle sockets go quickly. */
#define HTTP_HEAD_TIMEOUT_MS 10000

static const char http_oom_body[] =
    "{\"status\":\"Internal Server Error\",\"error\":\"out of memory\"}\n";

struct http_server {
    struct MHD_Daemon *daemon;
    const struct api_context *ctx;
    bool tls;
    atomic_int in_flight;
    struct conn_guard *guard;       /* slow-loris protection for request heads */
    struct accept_front *front;     /* accepts, holds connections until their head arrived */
};

struct http_request {
    struct http_server *srv;
    struct conn_guard_entry *guard_entry;
    enum http_route_id route;
    const char *url;                /* the cleaned path (MHD's, valid until completion) */
    int64_t started_ns;             /* monotonic, when the request head arrived */
    uint64_t received;
    struct jbuf body;               /* query, free, healthcheck */
    struct ingest_batch *batch;     /* write */
    struct api_response pending;    /* answer decided before the body ended */
    bool has_pending;
    bool pending_oom;               /* the pending answer could not be built */
    bool answered;
    int status;                     /* of the answer, for the metrics; 0 = none sent */
};

/* ---- metrics (process-wide: every server counts here) --------------------- */

#define HTTP_CODES 600

static struct {
    _Atomic uint64_t requests[HTTP_ROUTES][HTTP_CODES];
    struct prom_histogram latency[HTTP_ROUTES];
    _Atomic int64_t connections;
} http_stats;

static void http_count(const struct http_request *rq)
{
    int64_t ns = clock_monotonic_ns() - rq->started_ns;
    unsigned code = rq->status > 0 && rq->status < HTTP_CODES ? (unsigned)rq->status : 0;
    atomic_fetch_add_explicit(&http_stats.requests[rq->route][code], 1, memory_order_relaxed);
    prom_observe_ns(&http_stats.latency[rq->route], ns > 0 ? (uint64_t)ns : 0);
}

void http_metrics_write(struct jbuf *b)
{
    char labels[96];
    prom_family(b, "ccms_http_requests_total", "counter",
                "HTTP requests answered, by route and status code (code 0: the connection "
                "ended before an answer)");
    for (int r = 0; r < HTTP_ROUTES; r++)
        for (int code = 0; code < HTTP_CODES; code++) {
            uint64_t n = atomic_load_explicit(&http_stats.requests[r][code], memory_order_relaxed);
            if (n == 0)
                continue;
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", http_route_name(r), code);
            prom_u64(b, "ccms_http_requests_total", labels, n);
        }
    prom_family(b, "ccms_http_request_duration_seconds", "histogram",
                "Time from a request's head to the end of its answer, by route");
    for (int r = 0; r < HTTP_ROUTES; r++) {
        if (atomic_load_explicit(&http_stats.latency[r].count, memory_order_relaxed) == 0)
            continue;
        snprintf(labels, sizeof(labels), "route=\"%s\"", http_route_name(r));
        prom_histogram_write(b, "ccms_http_request_duration_seconds", labels,
                             &http_stats.latency[r]);
    }
    prom_family(b, "ccms_http_open_connections", "gauge",
                "HTTP connections open now (past the first request head)");
    int64_t open = atomic_load_explicit(&http_stats.connections, memory_order_relaxed);
    prom_u64(b, "ccms_http_open_connections", NULL, open > 0 ? (uint64_t)open : 0);
}

/* ---- sending ------------------------------------------------------------ */

/* A streamed answer being sent: the part at hand and the stream after it. */
struct http_stream {
    struct api_stream *stream;
    struct jbuf part;
    size_t sent;              /* bytes of part already handed to MHD */
    bool done;                /* the stream produced its last part */
};

/* MHD's content reader: copies from the current part, asking the stream
 * for the next one when it is used up, so at most about one part of the
 * answer is in memory at a time. */
static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_stream *hs = cls;
    while (hs->sent == hs->part.len) {
        if (hs->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        jbuf_reset(&hs->part);
        hs->sent = 0;
        /* room for a whole part and an entry beyond it while the buffer is
         * empty (a fresh allocation, nothing to copy), so that it does not
         * grow, copying what it holds, in the middle of a part */
        if (!jbuf_reserve(&hs->part, 2 * API_STREAM_PART)) {
            log_error("http: out of memory while streaming an answer; connection closed");
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        int rc = hs->stream->next(hs->stream, &hs->part);
        if (rc < 0) {
            log_error("http: out of memory while streaming an answer; connection closed");
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        hs->done = rc == 0;
    }
    size_t n = hs->part.len - hs->sent;
    if (n > max)
        n = max;
    memcpy(buf, hs->part.data + hs->sent, n);
    hs->sent += n;
    return (ssize_t)n;
}

static void http_stream_free(void *cls)
{
    struct http_stream *hs = cls;
    hs->stream->free(hs->stream);
    jbuf_free(&hs->part);
    free(hs);
}

/* A response for a streamed answer; takes r's body (the first part) and
 * stream. NULL when out of memory (r then still owns both). */
static struct MHD_Response *http_stream_response(struct api_response *r)
{
    struct http_stream *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->stream = r->stream;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 64 * 1024, http_stream_read, hs, http_stream_free);
    if (!resp) {
        free(hs);
        return NULL;
    }
    /* the first part becomes the part buffer as it is (no copy of up to
     * API_STREAM_PART bytes per answer) */
    jbuf_init(&hs->part, 0);
    jbuf_adopt(&hs->part, r->body, r->len);
    r->stream = NULL;      /* owned by the response now */
    r->body = NULL;
    r->len = 0;
    return resp;
}

static enum MHD_Result http_queue(struct MHD_Connection *c, struct api_response *r)
{
    struct MHD_Response *resp;
    if (r->stream) {
        resp = http_stream_response(r);
        if (resp == NULL) {
            api_response_free(r);
            return MHD_NO;
        }
    } else if (r->len > 0)
        resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        api_response_free(r);
        return MHD_NO;
    }
    if (r->len == 0)
        api_response_free(r);
    r->body = NULL;   /* MHD owns it now */
    r->len = 0;
    if (r->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status >= 400 && r->content_type != NULL && strcmp(r->content_type, API_CT_TEXT) == 0)
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result http_queue_oom(struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(http_oom_body) - 1, (void *)http_oom_body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, API_CT_JSON);
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* Keeps an answer until the request body has ended (rc < 0: none could be built). */
static void http_set_pending(struct http_request *rq, int rc, struct api_response *r)
{
    rq->has_pending = true;
    rq->pending_oom = rc < 0;
    if (rc == 0)
        rq->pending = *r;
}

static bool http_has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl != NULL && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Queues the answer an api function produced (rc < 0: could not build one). */
static enum MHD_Result http_answer(struct http_request *rq, struct MHD_Connection *c, int rc,
                                   struct api_response *r)
{
    rq->answered = true;
    rq->status = rc < 0 ? 500 : r->status;
    if (rc < 0)
        return http_queue_oom(c);
    return http_queue(c, r);
}

/* An answer known from the headers alone. Without a body it is sent when
 * MHD calls back for the (empty) end of the request, which keeps the
 * connection alive; with a body it is sent now and MHD skips the body and
 * closes the connection afterwards. */
static enum MHD_Result http_early(struct http_request *rq, struct MHD_Connection *c, int rc,
                                  struct api_response *r)
{
    if (http_has_body(c))
        return http_answer(rq, c, rc, r);
    http_set_pending(rq, rc, r);
    return MHD_YES;
}

/* Last resort while a body is still arriving: write the answer to the
 * socket ourselves and make MHD close the connection. */
static enum MHD_Result http_answer_raw(struct http_request *rq, struct MHD_Connection *c,
                                       const struct api_response *r)
{
    const union MHD_ConnectionInfo *ci;
    char head[256];
    rq->answered = true;
    rq->status = r->status;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (rq->srv->tls || ci == NULL)
        return MHD_NO;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     r->status, api_status_text(r->status),
                     r->content_type ? r->content_type : API_CT_TEXT, r->len);
    if (send(ci->connect_fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && r->len > 0)
        (void)!send(ci->connect_fd, r->body, r->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return MHD_NO;
}

/* ---- first call: headers complete --------------------------------------- */

static int64_t http_elapsed_ms(const struct http_request *rq)
{
    return (clock_monotonic_ns() - rq->started_ns) / 1000000;
}

static uint64_t http_body_limit(const struct http_request *rq)
{
    const struct ccms_config *cfg = rq->srv->ctx->cfg;
    int64_t limit = rq->route == HTTP_ROUTE_WRITE ? cfg->max_body_size : cfg->max_json_body_size;
    return limit > 0 ? (uint64_t)limit : UINT64_MAX;
}

static int http_too_large(const struct http_request *rq, struct api_response *out)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "request body larger than %llu bytes",
             (unsigned long long)http_body_limit(rq));
    return api_error(413, msg, out);
}

struct http_location {
    struct jbuf b;
    bool has_args;
};

static void http_append_encoded(struct jbuf *b, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL)
            jbuf_putc(b, (char)*p);
        else
            jbuf_printf(b, "%%%02X", *p);
    }
}

/* Appends one query parameter to the redirect target (MHD has decoded it). */
static enum MHD_Result http_append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct http_location *loc = cls;
    (void)kind;
    jbuf_putc(&loc->b, loc->has_args ? '&' : '?');
    loc->has_args = true;
    http_append_encoded(&loc->b, key);
    if (value != NULL) {
        jbuf_putc(&loc->b, '=');
        http_append_encoded(&loc->b, value);
    }
    return MHD_YES;
}

/* 301 to the cleaned path, keeping the query string. */
static enum MHD_Result http_redirect(struct http_request *rq, struct MHD_Connection *c,
                                     const char *clean)
{
    struct http_location loc = { .has_args = false };
    struct MHD_Response *resp;
    enum MHD_Result ok = MHD_NO;
    jbuf_init(&loc.b, 256);
    jbuf_puts(&loc.b, clean);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_append_arg, &loc);
    jbuf_putc(&loc.b, '\0');
    rq->answered = true;
    rq->status = 301;
    if (loc.b.failed) {
        jbuf_free(&loc.b);
        return http_queue_oom(c);
    }
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.b.data);
        ok = MHD_queue_response(c, MHD_HTTP_MOVED_PERMANENTLY, resp);
        MHD_destroy_response(resp);
    }
    jbuf_free(&loc.b);
    return ok;
}

/* 413 at once when Content-Length already says the body is too large. */
static bool http_declared_too_large(struct http_request *rq, struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    if (cl == NULL)
        return false;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return end != cl && errno == 0 && n > http_body_limit(rq);
}

static enum MHD_Result http_begin_write(struct http_request *rq, struct MHD_Connection *c)
{
    struct api_response r;
    const char *cluster = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cluster");
    const char *precision = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "precision");
    int rc = api_write_begin(rq->srv->ctx, cluster, precision, (int64_t)time(NULL), &rq->batch,
                             &r);
    if (rc < 0 || rq->batch == NULL)
        return http_early(rq, c, rc, &r);
    return MHD_YES;
}

/* MHD iterator: flags a query parameter whose decoded value holds a NUL
 * byte (C strings would silently cut it short, e.g. ?cluster=a%00b). */
static enum MHD_Result http_find_nul_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                         size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    const char **bad = cls;
    if (strlen(key) != key_size || (value != NULL && strlen(value) != value_size)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Everything that can be decided from the request line and headers. */
static enum MHD_Result http_begin(struct http_request *rq, struct MHD_Connection *c,
                                  const char *url, const char *method)
{
    struct http_route_match m;
    struct api_response r;
    char *clean = http_clean_path(url);
    int rc;
    if (clean == NULL)
        return http_answer(rq, c, -ENOMEM, NULL);
    if (strcmp(clean, url) != 0 && strcmp(method, "CONNECT") != 0) {
        enum MHD_Result ok = http_redirect(rq, c, clean);
        free(clean);
        return ok;
    }
    free(clean);
    http_route(method, url, &m);
    if (rq->srv->ctx->metrics_only) {
        struct http_route_match path_of;   /* the route of the path, whatever the method */
        http_route("GET", url, &path_of);
        if (path_of.route != HTTP_ROUTE_METRICS)
            m = (struct http_route_match){ HTTP_ROUTE_NONE, 404, NULL };
    }
    if (m.status == 0 && m.route == HTTP_ROUTE_SWAGGER && rq->srv->ctx->swagger == NULL)
        m = (struct http_route_match){ HTTP_ROUTE_NONE, 404, NULL };   /* not without -dev */
    if (m.status != 0) {
        rc = m.status == 405 ? api_text(405, "Method Not Allowed\n", &r)
                             : api_text(404, "404 page not found\n", &r);
        r.allow = m.allow;
        return http_early(rq, c, rc, &r);
    }
    rq->route = m.route;
    rq->url = url;
    /* metrics-addr is open by design; the explorer's page and assets are
     * public (the requests made from it carry the token) */
    bool open = rq->srv->ctx->metrics_only || rq->route == HTTP_ROUTE_SWAGGER;
    rc = open ? 0
              : http_authorize(rq->srv->ctx->jwt,
                               MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_AUTHORIZATION),
                               (int64_t)time(NULL), &r);
    if (rc < 0)
        return http_early(rq, c, rc == -EACCES ? 0 : rc, &r);
    const char *bad_arg = NULL;
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, http_find_nul_arg, &bad_arg);
    if (bad_arg != NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "query parameter \"%.64s\" contains a NUL byte", bad_arg);
        rc = api_error(400, msg, &r);
        return http_early(rq, c, rc, &r);
    }
    if (http_declared_too_large(rq, c))
        return http_answer(rq, c, http_too_large(rq, &r), &r);
    if (rq->route == HTTP_ROUTE_WRITE)
        return http_begin_write(rq, c);
    return MHD_YES;
}

/* ---- body chunks -------------------------------------------------------- */

static enum MHD_Result http_timeout(struct http_request *rq, struct MHD_Connection *c)
{
    struct api_response r;
    char msg[96];
    enum MHD_Result ok;
    if (rq->has_pending && !rq->pending_oom)
        return http_answer_raw(rq, c, &rq->pending);
    snprintf(msg, sizeof(msg), "request not received within %lld s",
             (long long)rq->srv->ctx->cfg->read_timeout);
    if (api_error(408, msg, &r) < 0)
        return MHD_NO;
    ok = http_answer_raw(rq, c, &r);
    api_response_free(&r);
    log_info("http: request body not received within read-timeout; connection closed");
    return ok;
}

static void http_take_chunk(struct http_request *rq, const char *data, size_t size)
{
    struct api_response r;
    rq->received += size;
    if (rq->received > http_body_limit(rq)) {
        http_set_pending(rq, http_too_large(rq, &r), &r);
    } else if (rq->route == HTTP_ROUTE_WRITE) {
        if (ingest_batch_feed(rq->batch, data, size) < 0)
            http_set_pending(rq, api_error(500, "out of memory while storing the request", &r),
                             &r);
    } else {
        jbuf_append(&rq->body, data, size);
        if (rq->body.failed)
            http_set_pending(rq, -ENOMEM, &r);
    }
}

static enum MHD_Result http_body(struct http_request *rq, struct MHD_Connection *c,
                                 const char *data, size_t size)
{
    int64_t limit_ms = rq->srv->ctx->cfg->read_timeout * 1000;
    if (rq->answered)
        return MHD_YES;
    if (limit_ms > 0 && http_elapsed_ms(rq) > limit_ms)
        return http_timeout(rq, c);
    if (!rq->has_pending)
        http_take_chunk(rq, data, size);
    return MHD_YES;
}

/* ---- last call: body complete ------------------------------------------- */

static enum MHD_Result http_finish(struct http_request *rq, struct MHD_Connection *c)
{
    const struct api_context *ctx = rq->srv->ctx;
    struct api_response r;
    const char *body = rq->body.data;
    size_t len = rq->body.len;
    int rc = 0;
    if (rq->answered)
        return MHD_YES;
    if (rq->has_pending) {
        rq->has_pending = false;
        return http_answer(rq, c, rq->pending_oom ? -ENOMEM : 0, &rq->pending);
    }
    switch (rq->route) {
    case HTTP_ROUTE_QUERY: rc = api_query(ctx, body, len, &r); break;
    case HTTP_ROUTE_WRITE: rc = api_write_finish(rq->batch, &r); break;
    case HTTP_ROUTE_FREE:
        rc = api_free(ctx, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to"), body,
                      len, &r);
        break;
    case HTTP_ROUTE_DEBUG:
        rc = api_debug(ctx, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "selector"),
                       &r);
        break;
    case HTTP_ROUTE_STATUS: rc = api_status(ctx, &r); break;
    case HTTP_ROUTE_METRICS: rc = api_metrics(ctx, &r); break;
    case HTTP_ROUTE_SWAGGER: rc = api_swagger(ctx->swagger, rq->url, &r); break;
    default: rc = api_healthcheck(ctx, body, len, (int64_t)time(NULL), &r); break;
    }
    return http_answer(rq, c, rc, &r);
}

/* ---- MHD callbacks ------------------------------------------------------ */

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size,
                                    void **con_cls)
{
    struct http_request *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        rq->srv = cls;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->guard_entry = ci ? ci->socket_context : NULL;
        conn_guard_request_started(rq->srv->guard, rq->guard_entry);
        rq->started_ns = clock_monotonic_ns();
        atomic_fetch_add(&rq->srv->in_flight, 1);
        *con_cls = rq;
        return http_begin(rq, c, url, method);
    }
    if (*upload_size > 0) {
        enum MHD_Result ok = http_body(rq, c, upload_data, *upload_size);
        *upload_size = 0;
        return ok;
    }
    return http_finish(rq, c);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_request *rq = *con_cls;
    (void)cls;
    (void)c;
    if (rq == NULL)
        return;
    if (rq->route == HTTP_ROUTE_WRITE && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
        !rq->answered)
        log_warn("http: /api/write aborted after %llu body bytes; not acknowledged",
                 (unsigned long long)rq->received);
    http_count(rq);
    ingest_batch_free(rq->batch);
    jbuf_free(&rq->body);
    api_response_free(&rq->pending);
    conn_guard_request_done(rq->srv->guard, rq->guard_entry);
    atomic_fetch_sub(&rq->srv->in_flight, 1);
    free(rq);
    *con_cls = NULL;
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_info("http: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void http_opt(struct MHD_OptionItem *opts, size_t *n, enum MHD_OPTION option,
                     intptr_t value, void *ptr)
{
    opts[(*n)++] = (struct MHD_OptionItem){ option, value, ptr };
}

/* MHD connection notifications feed the slow-loris guard. */
static void http_connection_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                                   enum MHD_ConnectionNotificationCode code)
{
    struct http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? conn_guard_opened(srv->guard, ci->connect_fd) : NULL;
        atomic_fetch_add_explicit(&http_stats.connections, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&http_stats.connections, 1, memory_order_relaxed);
        conn_guard_closed(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

static struct MHD_Daemon *http_daemon(struct http_server *srv,
                                      const struct http_tls *tls)
{
    const struct ccms_config *cfg = srv->ctx->cfg;
    /* poll, not epoll: with libmicrohttpd 0.9.75's edge-triggered epoll a
     * client's FIN that arrives together with body bytes is missed until
     * the idle timeout, so an aborted upload would hold its connection (and
     * shutdown) for read-timeout seconds. poll notices it at once; its cost
     * is linear in the connections of one thread, which the limit bounds. */
    /* No listening socket: accept_front accepts and hands over each
     * connection once its request head has arrived (MHD_add_connection,
     * which needs the ITC to wake the server's thread). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET | (tls ? MHD_USE_TLS : 0);
    /* By default every connection gets its own thread: the kernel then
     * spreads busy connections over all cores. A fixed pool lets one
     * thread accept every connection of a burst and serve them all on one
     * core (measured: 2.8 vs 4.5 M samples/s with 4 writers on 2 cores). */
    if (cfg->http_threads <= 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    struct MHD_OptionItem opts[16];
    size_t n = 0;
    http_opt(opts, &n, MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, NULL);
    http_opt(opts, &n, MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_connection_notify, srv);
    http_opt(opts, &n, MHD_OPTION_CONNECTION_TIMEOUT,
             cfg->read_timeout > 0 ? (intptr_t)cfg->read_timeout : 0, NULL);
    http_opt(opts, &n, MHD_OPTION_CONNECTION_LIMIT,
             cfg->max_connections > 0 ? (intptr_t)cfg->max_connections : 1024, NULL);
    /* one client's idle or slow connections cannot take every slot: past
     * its own limit its new connections are closed at once */
    if (cfg->max_client_connections > 0)
        http_opt(opts, &n, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                 (intptr_t)cfg->max_client_connections, NULL);
    http_opt(opts, &n, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL);
    http_opt(opts, &n, MHD_OPTION_CONNECTION_MEMORY_INCREMENT, HTTP_MEMORY_INCREMENT, NULL);
    if (cfg->http_threads > 1)
        http_opt(opts, &n, MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->http_threads, NULL);
    http_opt(opts, &n, MHD_OPTION_THREAD_STACK_SIZE, HTTP_THREAD_STACK, NULL);
    if (tls != NULL) {
        http_opt(opts, &n, MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert_pem);
        http_opt(opts, &n, MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key_pem);
        http_opt(opts, &n, MHD_OPTION_HTTPS_PRIORITIES, 0,
                 (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
    }
    http_opt(opts, &n, MHD_OPTION_END, 0, NULL);
    return MHD_start_daemon(flags, 0, NULL, NULL, http_handler, srv, MHD_OPTION_EXTERNAL_LOGGER,
                            http_mhd_log, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

static struct log_limit handoff_errors;

/* accept_front_handoff_fn: the connection's request head has arrived */
static void http_handoff(void *ctx, int fd, const struct sockaddr *addr, socklen_t addr_len)
{
    struct http_server *srv = ctx;
    /* MHD closes fd when it refuses it: max-connections or the client's
     * max-connections-per-client being served, or no memory or thread */
    if (MHD_add_connection(srv->daemon, fd, addr, addr_len) != MHD_YES)
        log_limited(&handoff_errors, LOG_WARN,
                    "http: connection closed unserved (max-connections or "
                    "max-connections-per-client reached, or out of resources): %s",
                    strerror(errno));
}

/* Connections waiting for their head: a few per allowed connection, and at
 * most a quarter of the descriptors (the host logs' pool has half). */
static size_t http_max_waiting(const struct ccms_config *cfg)
{
    size_t n = 4 * (size_t)(cfg->max_connections > 0 ? cfg->max_connections : 1024);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < n)
        n = (size_t)(rl.rlim_cur / 4);
    return n < 16 ? 16 : n;
}

int http_start(int fd, const struct api_context *ctx, const struct http_tls *tls,
               struct http_server **out, char *err, size_t err_len)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    *out = NULL;
    if (srv == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (tls != NULL && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, err_len, "libmicrohttpd was built without TLS support");
        free(srv);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, err_len, "cannot listen: %s", strerror(errno));
        free(srv);
        return -1;
    }
    srv->ctx = ctx;
    srv->tls = tls != NULL;
    atomic_init(&srv->in_flight, 0);
    if (conn_guard_start(ctx->cfg->read_timeout, &srv->guard) != 0) {
        snprintf(err, err_len, "cannot start the connection guard thread");
        free(srv);
        return -1;
    }
    srv->daemon = http_daemon(srv, tls);
    if (srv->daemon == NULL) {
        conn_guard_stop(srv->guard);
        snprintf(err, err_len, "cannot start the HTTP server%s",
                 tls ? " (check https-cert-file and https-key-file)" : "");
        free(srv);
        return -1;
    }
    const struct ccms_config *cfg = ctx->cfg;
    int64_t head_ms = cfg->read_timeout * 1000;
    struct accept_front_options fo = {
        .head_timeout_ms = head_ms > 0 && head_ms < HTTP_HEAD_TIMEOUT_MS ? head_ms
                                                                          : HTTP_HEAD_TIMEOUT_MS,
        .max_pending = http_max_waiting(cfg),
        .max_per_client = cfg->max_client_connections > 0
                              ? (size_t)cfg->max_client_connections : 0,
        .tls = tls != NULL,
    };
    int rc = accept_front_start(fd, &fo, http_handoff, srv, &srv->front);
    if (rc != 0) {
        snprintf(err, err_len, "%s: %s", accept_front_strerror(rc), strerror(errno));
        MHD_stop_daemon(srv->daemon);
        conn_guard_stop(srv->guard);
        free(srv);
        return -1;
    }
    *out = srv;
    return 0;
}

void http_stop(struct http_server *srv)
{
    struct timespec tick = { 0, 10 * 1000000 };
    int waited = 0;
    if (srv == NULL)
        return;
    accept_front_stop(srv->front);     /* no new connections from here on */
    while (atomic_load(&srv->in_flight) > 0 && waited < HTTP_SHUTDOWN_WAIT_MS) {
        nanosleep(&tick, NULL);
        waited += 10;
    }
    if (atomic_load(&srv->in_flight) > 0)
        log_error("http: requests still running after %d s; closing them",
                  HTTP_SHUTDOWN_WAIT_MS / 1000);
    MHD_stop_daemon(srv->daemon);
    conn_guard_stop(srv->guard);
    free(srv);
}
