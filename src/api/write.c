/*
 * write — POST /api/write (docs/line-protocol.md): the request's
 * ingest options and the answer once the streamed body has been fed.
 * The streaming itself (ingest_batch_feed per upload chunk, size limits)
 * is done by src/net/http.c.
 */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int api_write_begin(const struct api_context *ctx, const char *cluster, const char *precision,
                    int64_t now, struct ingest_batch **batch, struct api_response *out)
{
    const struct ccms_config *cfg = ctx->cfg;
    struct ingest_options opts;
    ingest_options_from_config(cfg, now, &opts);
    opts.default_cluster = cluster;
    opts.checkpointer = ctx->checkpointer;
    *batch = NULL;
    if (precision != NULL && *precision != '\0' &&
        ingest_parse_precision(precision, &opts.precision) < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid precision \"%.64s\": use s, ms, us or ns", precision);
        return api_error(400, msg, out);
    }
    if (ingest_batch_new(ctx->store, &opts, batch) < 0)
        return -ENOMEM;
    return 0;
}

int api_write_finish(struct ingest_batch *batch, struct api_response *out)
{
    struct ingest_result res;
    if (ingest_batch_finish(batch) < 0)
        return api_error(500, "out of memory while storing the request", out);
    ingest_batch_result(batch, &res);
    if (res.persist_failed)
        return api_error(500, "the samples are in memory but could not be written to the "
                              "write-ahead log (see the server log); retry the request", out);
    if (res.rejected > 0)
        return api_error(400, ingest_batch_error_text(batch), out);
    memset(out, 0, sizeof(*out));
    out->status = 200;
    out->content_type = API_CT_JSON;
    return 0;
}
