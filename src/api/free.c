/*
 * free — POST /api/free (docs/http-api.md, "Free"; differences in docs/compatibility.md:
 * a non-integer `to` is a 400, and free never creates levels).
 */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gojson.h"

/* Go's strconv.ParseInt(text, 10, 64) including its error texts. */
static int free_parse_to(const char *text, int64_t *out, struct jbuf *err)
{
    const char *p = text;
    bool neg = *p == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    const char *why = NULL;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '\0')
        why = "invalid syntax";
    for (; *p != '\0' && why == NULL; p++) {
        if (*p < '0' || *p > '9')
            why = "invalid syntax";
        else if (v > (limit - (uint64_t)(*p - '0')) / 10)
            why = "value out of range";
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (why != NULL) {
        jbuf_puts(err, "strconv.ParseInt: parsing ");
        gojson_quote(err, text, strlen(text));
        jbuf_printf(err, ": %s", why);
        return -1;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* One selector: a JSON array of strings (null elements are ""), or null = root. */
static int free_check_selector(const json_t *sel, char *err, size_t err_len)
{
    static const struct gojson_where w = { NULL, NULL };
    size_t i;
    json_t *name;
    if (json_is_null(sel))
        return 0;
    if (!json_is_array(sel))
        return gojson_type_error(sel, &w, "[]string", err, err_len);
    json_array_foreach(sel, i, name) {
        if (!json_is_null(name) && !json_is_string(name))
            return gojson_type_error(name, &w, "string", err, err_len);
    }
    return 0;
}

static int free_check_body(const json_t *root, char *err, size_t err_len)
{
    static const struct gojson_where w = { NULL, NULL };
    size_t i;
    json_t *sel;
    if (json_is_null(root))
        return 0;
    if (!json_is_array(root))
        return gojson_type_error(root, &w, "[][]string", err, err_len);
    json_array_foreach(root, i, sel) {
        if (free_check_selector(sel, err, err_len) < 0)
            return -1;
    }
    return 0;
}

/* Frees below one selector; levels deeper than the tree cannot exist. */
static int free_selector(const struct api_context *ctx, const json_t *sel, int64_t to,
                         uint64_t *total)
{
    const char *names[STORE_MAX_DEPTH];
    size_t lens[STORE_MAX_DEPTH];
    size_t depth = json_is_array(sel) ? json_array_size(sel) : 0;
    uint64_t freed = 0;
    if (depth > STORE_MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < depth; i++) {
        const json_t *name = json_array_get(sel, i);
        names[i] = json_is_string(name) ? json_string_value(name) : "";
        lens[i] = json_is_string(name) ? json_string_length(name) : 0;
    }
    int rc = store_free(ctx->store, names, lens, depth, to, &freed);
    *total += freed;
    return rc < 0 ? -ENOMEM : 0;
}

static int free_run(const struct api_context *ctx, const json_t *root, int64_t to,
                    struct api_response *out)
{
    uint64_t total = 0;
    size_t i;
    json_t *sel;
    char text[48];
    if (json_is_array(root)) {
        json_array_foreach(root, i, sel) {
            if (free_selector(ctx, sel, to, &total) < 0)
                return api_error(500, "out of memory while freeing buffers", out);
        }
    }
    snprintf(text, sizeof(text), "buffers freed: %llu\n", (unsigned long long)total);
    return api_text(200, text, out);
}

int api_free(const struct api_context *ctx, const char *to_text, const char *body, size_t len,
             struct api_response *out)
{
    char err[GOJSON_ERR_MAX + 2];
    struct jbuf msg;
    int64_t to;
    json_t *root;
    int rc;
    if (to_text == NULL || *to_text == '\0')
        return api_error(400, "'to' is a required query parameter", out);
    jbuf_init(&msg, 64);
    if (free_parse_to(to_text, &to, &msg) < 0) {
        jbuf_putc(&msg, '\0');
        rc = msg.failed ? -ENOMEM : api_error(400, msg.data, out);
        jbuf_free(&msg);
        return rc;
    }
    jbuf_free(&msg);
    if (gojson_parse(body, len, &root, err, GOJSON_ERR_MAX) < 0 ||
        free_check_body(root, err, GOJSON_ERR_MAX) < 0) {
        json_decref(root);
        strcat(err, "\n");
        return api_text(400, err, out);
    }
    rc = free_run(ctx, root, to, out);
    json_decref(root);
    return rc;
}
