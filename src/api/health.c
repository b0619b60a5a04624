/*
 * health — GET /api/healthcheck (docs/http-api.md, "Healthcheck"): per-node metric
 * freshness in upstream's {"<node>":{"State":…,"HealthMetrics":"<json>"}}
 * shape, nodes sorted and deduplicated like a Go map.
 */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gojson.h"

struct health_request {
    struct gostr cluster;
    struct gostr *nodes;
    size_t node_count;
    struct gostr *metrics;
    size_t metric_count;
};

static void health_request_clear(struct health_request *r)
{
    free(r->nodes);
    free(r->metrics);
    memset(r, 0, sizeof(*r));
}

static int health_unknown_field(const char *key, char *err, size_t err_len)
{
    struct jbuf q;
    jbuf_init(&q, 32);
    gojson_quote(&q, key, strlen(key));
    jbuf_putc(&q, '\0');
    snprintf(err, err_len, "json: unknown field %s", q.failed ? "?" : q.data);
    jbuf_free(&q);
    return -1;
}

static int health_field(struct health_request *r, const char *key, const json_t *v, char *err,
                        size_t err_len)
{
    bool present;
    if (gojson_key_matches(key, "cluster")) {
        struct gojson_where w = { "HealthCheckReq", "cluster" };
        return gojson_string(v, &w, &r->cluster, err, err_len);
    }
    if (gojson_key_matches(key, "nodes")) {
        struct gojson_where w = { "HealthCheckReq", "nodes" };
        free(r->nodes);
        return gojson_strings(v, &w, &r->nodes, &r->node_count, &present, err, err_len);
    }
    if (gojson_key_matches(key, "metric-names")) {
        struct gojson_where w = { "HealthCheckReq", "metric-names" };
        free(r->metrics);
        return gojson_strings(v, &w, &r->metrics, &r->metric_count, &present, err, err_len);
    }
    return health_unknown_field(key, err, err_len);
}

/* Decodes like Go with DisallowUnknownFields. Returns 0, -1 or -ENOMEM. */
static int health_parse(const json_t *root, struct health_request *r, char *err,
                        size_t err_len)
{
    static const struct gojson_where top = { NULL, NULL };
    const char *key;
    json_t *v;
    memset(r, 0, sizeof(*r));
    if (json_is_null(root))
        return 0;
    if (!json_is_object(root))
        return gojson_type_error(root, &top, "api.HealthCheckReq", err, err_len);
    json_object_foreach((json_t *)root, key, v) {
        int rc = health_field(r, key, v, err, err_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int health_cmp(const void *a, const void *b)
{
    const struct gostr *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts the nodes and drops duplicates (a Go map's keys, in encoding order). */
static void health_unique_nodes(struct health_request *r)
{
    size_t n = 0;
    if (r->node_count == 0)
        return;
    qsort(r->nodes, r->node_count, sizeof(*r->nodes), health_cmp);
    for (size_t i = 1; i < r->node_count; i++)
        if (health_cmp(&r->nodes[n], &r->nodes[i]) != 0)
            r->nodes[++n] = r->nodes[i];
    r->node_count = n + 1;
}

static void health_list(struct jbuf *b, const struct health_request *r,
                        const enum store_health *st, enum store_health which)
{
    size_t n = 0;
    jbuf_putc(b, '[');
    for (size_t i = 0; i < r->metric_count; i++) {
        if (st[i] != which)
            continue;
        if (n++ > 0)
            jbuf_putc(b, ',');
        jbuf_string(b, r->metrics[i].s, r->metrics[i].len);
    }
    jbuf_putc(b, ']');
}

/* Appends {"State":…,"HealthMetrics":…} for one existing node. */
static void health_node(struct jbuf *b, const struct health_request *r,
                        const enum store_health *st)
{
    struct jbuf inner;
    size_t bad = 0;
    const char *state;
    for (size_t i = 0; i < r->metric_count; i++)
        bad += st[i] != STORE_HEALTHY;
    state = bad == 0 ? "full" : bad == r->metric_count ? "failed" : "partial";
    jbuf_init(&inner, 64);
    jbuf_puts(&inner, "{\"degraded\":");
    health_list(&inner, r, st, STORE_DEGRADED);
    jbuf_puts(&inner, ",\"missing\":");
    health_list(&inner, r, st, STORE_MISSING);
    jbuf_putc(&inner, '}');
    if (inner.failed)
        b->failed = true;
    jbuf_printf(b, "{\"State\":\"%s\",\"HealthMetrics\":", state);
    jbuf_string(b, inner.data ? inner.data : "", inner.failed ? 0 : inner.len);
    jbuf_putc(b, '}');
    jbuf_free(&inner);
}

static int health_respond(const struct api_context *ctx, const struct health_request *r,
                          int64_t now, struct api_response *out)
{
    size_t n = r->metric_count;
    int *metrics = malloc((n ? n : 1) * sizeof(*metrics));
    enum store_health *st = malloc((n ? n : 1) * sizeof(*st));
    const char *cluster = r->cluster.s ? r->cluster.s : "";
    struct jbuf b;
    jbuf_init(&b, 256);
    if (metrics == NULL || st == NULL)
        b.failed = true;
    for (size_t i = 0; i < n && !b.failed; i++)
        metrics[i] = store_metric_lookup(ctx->store, r->metrics[i].s, r->metrics[i].len);
    jbuf_putc(&b, '{');
    for (size_t i = 0; i < r->node_count && !b.failed; i++) {
        const struct gostr *node = &r->nodes[i];
        int rc = store_health(ctx->store, cluster, r->cluster.len, node->s, node->len, metrics,
                              n, now, st);
        jbuf_puts(&b, i ? "," : "");
        jbuf_string(&b, node->s, node->len);
        jbuf_putc(&b, ':');
        if (rc == STORE_ENOTFOUND)
            jbuf_puts(&b, "{\"State\":\"failed\",\"HealthMetrics\":\"\"}");
        else if (rc < 0)
            b.failed = true;
        else
            health_node(&b, r, st);
    }
    jbuf_puts(&b, "}\n");
    free(metrics);
    free(st);
    if (b.failed) {
        jbuf_free(&b);
        return -ENOMEM;
    }
    return api_reply_jbuf(200, API_CT_JSON, &b, out);
}

int api_healthcheck(const struct api_context *ctx, const char *body, size_t len, int64_t now,
                    struct api_response *out)
{
    char err[GOJSON_ERR_MAX], msg[GOJSON_ERR_MAX + 64];
    struct health_request req;
    json_t *root;
    int rc;
    if (gojson_parse(body, len, &root, err, sizeof(err)) < 0) {
        snprintf(msg, sizeof(msg), "parsing request body failed: %s", err);
        return api_error(400, msg, out);
    }
    rc = health_parse(root, &req, err, sizeof(err));
    if (rc == -1) {
        snprintf(msg, sizeof(msg), "parsing request body failed: %s", err);
        rc = api_error(400, msg, out);
    } else if (rc == 0) {
        health_unique_nodes(&req);
        rc = health_respond(ctx, &req, now, out);
    }
    health_request_clear(&req);
    json_decref(root);
    return rc;
}
