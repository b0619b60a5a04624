/*
 * debug — GET /api/debug (docs/http-api.md, "Debug"): the store's pseudo-JSON
 * dump of the level named by `selector` ("alex:a0124", ':'-separated).
 */
#include "api/api.h"

#include <errno.h>
#include <string.h>

#include "api/gojson.h"

/* "[METRICSTORE]> not found: []string{"alex", "nohost"}" (Go's %#v of
 * the ':'-separated selector). */
static int debug_not_found(const char *selector, struct api_response *out)
{
    struct jbuf msg;
    const char *p = selector;
    int rc;
    jbuf_init(&msg, 128);
    jbuf_puts(&msg, "[METRICSTORE]> not found: []string{");
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        gojson_quote(&msg, p, len);
        if (colon == NULL)
            break;
        jbuf_puts(&msg, ", ");
        p = colon + 1;
    }
    jbuf_puts(&msg, "}");
    jbuf_putc(&msg, '\0');
    rc = msg.failed ? -ENOMEM : api_error(400, msg.data, out);
    jbuf_free(&msg);
    return rc;
}

/* Splits selector on ':' into at most max names; returns the count, or
 * max + 1 when there are more components than the tree has levels. */
static size_t debug_split(const char *selector, const char **names, size_t *lens, size_t max)
{
    size_t depth = 0;
    const char *p = selector;
    if (selector == NULL || *selector == '\0')
        return 0;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (depth == max)
            return max + 1;
        names[depth] = p;
        lens[depth++] = len;
        if (colon == NULL)
            return depth;
        p = colon + 1;
    }
}

int api_debug(const struct api_context *ctx, const char *selector, struct api_response *out)
{
    const char *names[STORE_MAX_DEPTH + 1];
    size_t lens[STORE_MAX_DEPTH + 1];
    size_t depth = debug_split(selector, names, lens, STORE_MAX_DEPTH);
    struct jbuf b;
    int rc;
    if (depth > STORE_MAX_DEPTH)
        return debug_not_found(selector, out);
    jbuf_init(&b, 4096);
    rc = store_debug_dump(ctx->store, names, lens, depth, &b);
    if (rc == STORE_ENOTFOUND) {
        jbuf_free(&b);
        return debug_not_found(selector ? selector : "", out);
    }
    if (rc < 0) {
        jbuf_free(&b);
        return -ENOMEM;
    }
    return api_reply_jbuf(200, API_CT_JSON, &b, out);
}
