/*
 * response — struct api_response helpers shared by the endpoints (api.h).
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonw.h"

void api_response_free(struct api_response *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
    if (r->stream)
        r->stream->free(r->stream);
    r->stream = NULL;
}

int api_response_complete(struct api_response *r)
{
    if (!r->stream)
        return 0;
    struct jbuf b;
    jbuf_init(&b, r->len + API_STREAM_PART);
    jbuf_append(&b, r->body, r->len);
    int rc = 1;
    while (rc == 1 && !b.failed)
        rc = r->stream->next(r->stream, &b);
    if (rc < 0 || b.failed) {
        jbuf_free(&b);
        return -ENOMEM;
    }
    free(r->body);
    r->body = jbuf_steal(&b, &r->len);
    r->stream->free(r->stream);
    r->stream = NULL;
    return r->body ? 0 : -ENOMEM;
}

const char *api_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

int api_reply_jbuf(int status, const char *content_type, struct jbuf *b,
                   struct api_response *out)
{
    size_t len = 0;
    char *body = jbuf_steal(b, &len);
    if (body == NULL)
        return -ENOMEM;
    memset(out, 0, sizeof(*out));
    out->status = status;
    out->content_type = content_type;
    out->body = body;
    out->len = len;
    return 0;
}

int api_error(int status, const char *msg, struct api_response *out)
{
    struct jbuf b;
    jbuf_init(&b, 64 + strlen(msg));
    jbuf_puts(&b, "{\"status\":");
    jbuf_string(&b, api_status_text(status), strlen(api_status_text(status)));
    jbuf_puts(&b, ",\"error\":");
    jbuf_string(&b, msg, strlen(msg));
    jbuf_puts(&b, "}\n");
    return api_reply_jbuf(status, API_CT_JSON, &b, out);
}

int api_text(int status, const char *text, struct api_response *out)
{
    struct jbuf b;
    jbuf_init(&b, strlen(text) + 1);
    jbuf_puts(&b, text);
    return api_reply_jbuf(status, API_CT_TEXT, &b, out);
}
