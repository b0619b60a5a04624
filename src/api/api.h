/*
 * api — the five HTTP endpoints as plain functions (docs/http-api.md).
 *
 * Nothing here knows about sockets or libmicrohttpd: each endpoint takes the
 * already-read request body and query parameters and fills a struct
 * api_response (status, content type, body bytes). src/net/http.c routes
 * requests here and sends the result; the unit tests and the fuzzer call the
 * functions directly.
 *
 * Every endpoint function returns 0 with *out filled (also for 4xx answers),
 * or -ENOMEM when not even the answer could be built; *out then owns
 * nothing and the caller answers 500 itself. The response owns its body
 * (api_response_free); content_type and allow point to static strings.
 * The context is read-only and may be shared by all server threads.
 */
#ifndef CCMS_API_H
#define CCMS_API_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ingest.h"
#include "store/store.h"
#include "util/jsonw.h"

#define API_CT_JSON "application/json"
#define API_CT_TEXT "text/plain; charset=utf-8"

struct checkpointer;
struct jwt_verifier;

struct api_context {
    struct store *store;
    const struct ccms_config *cfg;   /* limits: max_query_points, ingest limits */
    struct checkpointer *checkpointer; /* durability of writes; NULL = memory only */
    struct jwt_verifier *jwt;        /* token verification; NULL = no authentication */
    bool metrics_only;               /* serve GET /metrics alone (main.metrics-addr) */
    const struct swagger_ui *swagger; /* -dev: the API explorer (api/swagger.h), else NULL */
};

/*
 * An answer too large to build at once (a query): it is produced piece by
 * piece while it is sent. next() appends the following part to out and
 * returns 1 while more follows, 0 after the last part, or -ENOMEM (the
 * answer is then cut off: the client sees an incomplete body). free()
 * releases the stream. The stream owns everything it reads from.
 */
#define API_STREAM_PART (256 * 1024)   /* bytes a part aims at (one entry may exceed it) */

struct api_stream {
    int (*next)(struct api_stream *s, struct jbuf *out);
    void (*free)(struct api_stream *s);
};

struct api_response {
    int status;
    const char *content_type;   /* static; NULL = no Content-Type header */
    const char *allow;          /* static value of the Allow header, or NULL */
    char *body;                 /* malloc'd, owned; may be NULL when len == 0 */
    size_t len;
    struct api_stream *stream;  /* owned; the body is then its first part, the rest
                                   follows from stream->next (no Content-Length) */
};

void api_response_free(struct api_response *r);

/* Pulls a streamed answer's remaining parts into its body (for callers
 * that want it whole: tests, the fuzzer). 0, or -ENOMEM (r then owns what
 * it had). */
int api_response_complete(struct api_response *r);

/* Standard reason phrase ("Bad Request"), "Unknown" for codes we never send. */
const char *api_status_text(int status);

/* ErrorResponse {"status":"<reason>","error":"<msg>"} + "\n", application/json. */
int api_error(int status, const char *msg, struct api_response *out);

/* Moves the bytes of b (JSON or text) into *out as the body; b is emptied.
 * -ENOMEM if b had failed. */
int api_reply_jbuf(int status, const char *content_type, struct jbuf *b,
                   struct api_response *out);

/* Plain text body (text/plain; charset=utf-8), sent as given. */
int api_text(int status, const char *text, struct api_response *out);

/* GET /api/query: body is the APIQueryRequest JSON (only its first value is read). */
int api_query(const struct api_context *ctx, const char *body, size_t len,
              struct api_response *out);

/* POST /api/free: to = the decoded `to` query parameter (NULL if absent),
 * body = JSON array of selectors. */
int api_free(const struct api_context *ctx, const char *to, const char *body, size_t len,
             struct api_response *out);

/* GET /api/debug: selector = the decoded `selector` parameter (NULL if absent). */
int api_debug(const struct api_context *ctx, const char *selector, struct api_response *out);

/* GET /api/healthcheck at time now (Unix seconds). */
int api_healthcheck(const struct api_context *ctx, const char *body, size_t len, int64_t now,
                    struct api_response *out);

/* GET /api/status (ours, not upstream's): what the store holds and what
 * ingest has done since the start, as one JSON object. */
int api_status(const struct api_context *ctx, struct api_response *out);

/* When the process started (Unix seconds): uptime in /api/status,
 * ccms_start_time_seconds in /metrics. */
int64_t api_start_time(void);

/* GET /metrics: the Prometheus text exposition (docs/metrics.md). */
int api_metrics(const struct api_context *ctx, struct api_response *out);

/*
 * POST /api/write, first half: creates the ingest batch for one request.
 * cluster and precision are the decoded query parameters (NULL if absent).
 * On success *batch is set and *out is untouched; for a bad `precision`
 * *batch stays NULL and *out holds the 400 answer.
 */
int api_write_begin(const struct api_context *ctx, const char *cluster, const char *precision,
                    int64_t now, struct ingest_batch **batch, struct api_response *out);

/* POST /api/write, second half, once the whole body was fed: finishes the
 * batch and answers 200 with an empty body, or 400 naming the rejected
 * lines. The caller still frees the batch. */
int api_write_finish(struct ingest_batch *batch, struct api_response *out);

#endif
