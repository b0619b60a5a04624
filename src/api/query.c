/*
 * query — GET /api/query (docs/http-api.md, "Query"): APIQueryRequest decoding,
 * selector building, per-selector read + stats + scale + padding, and the
 * byte-exact APIQueryResponse.
 *
 * The request's strings point into the jansson tree, which lives until the
 * last part of the response is written. The response is a stream (api.h):
 * each part is about API_STREAM_PART bytes; rows, entries, padding and
 * value lists are all resumed where the previous part stopped, so an
 * answer's memory is its largest selector's values plus one part.
 */
#include "api/api.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gojson.h"
#include "log.h"

#define QUERY_ERR_PREFIX "[METRICSTORE]> "

struct query_item {
    struct gostr metric, host, type, subtype;
    bool has_type, has_subtype;
    struct gostr *type_ids, *subtype_ids;
    size_t type_id_count, subtype_id_count;
    int64_t resolution;
    double scale_by;
    bool aggreg;
};

struct query_request {
    struct gostr cluster;
    int64_t from, to;
    struct query_item *items;       /* explicit queries, then generated ones */
    size_t item_count;
    size_t explicit_count;
    struct gostr *for_all_nodes;
    size_t for_all_nodes_count;
    bool for_all_nodes_present;
    bool with_stats, with_data, with_padding;
    struct gostr resample_algo;     /* "resample-algo" as sent */
    enum resample_algo algo;
    bool algo_unknown;              /* every matched series answers an error */
    char **hosts;                   /* owned names the generated queries point to */
    size_t host_count;
};

/* Everything one selector read needs. */
struct query_run {
    const struct api_context *ctx;
    const struct query_request *req;
    const struct query_item *item;
    size_t max_points;
    size_t entries;                 /* entries written to the current row */
    uint64_t budget;                /* data points (padding included) the request may still
                                       answer: bounds the memory of one answer */
    /* The entry being written, resumed in the next part when the current
     * one is full: padding is a count, never a buffer, and values are
     * formatted a slice at a time. */
    bool in_entry;
    struct store_series series;     /* owned while in_entry */
    uint64_t pad_left;              /* leading nulls still to write */
    size_t data_next;               /* next value of series to write */
    bool data_open;                 /* "data":[ written, to be closed */
    bool wrote_value;               /* a null or value is in the list already */
    double scale;
    struct store_summary stats;
};

/* ---- decoding ---------------------------------------------------------- */

static void query_item_clear(struct query_item *q)
{
    free(q->type_ids);
    free(q->subtype_ids);
    memset(q, 0, sizeof(*q));
}

static void query_request_clear(struct query_request *r)
{
    for (size_t i = 0; i < r->item_count; i++)
        query_item_clear(&r->items[i]);
    free(r->items);
    free(r->for_all_nodes);
    for (size_t i = 0; i < r->host_count; i++)
        free(r->hosts[i]);
    free(r->hosts);
    memset(r, 0, sizeof(*r));
}

/* *string field: null makes it absent again. */
static int query_optional_string(const json_t *v, const struct gojson_where *w,
                                 struct gostr *out, bool *present, char *err, size_t err_len)
{
    *present = false;
    *out = (struct gostr){ 0 };
    if (json_is_null(v))
        return 0;
    *present = true;
    return gojson_string(v, w, out, err, err_len);
}

static int query_ids(const json_t *v, const struct gojson_where *w, struct gostr **ids,
                     size_t *count, char *err, size_t err_len)
{
    bool present;
    free(*ids);
    return gojson_strings(v, w, ids, count, &present, err, err_len);
}

/* scale-by is a cc-lib schema.Float: null decodes to NaN (kept from the Go store). */
static int query_scale(const json_t *v, const struct gojson_where *w, double *out,
                       char *err, size_t err_len)
{
    if (json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    return gojson_float(v, w, out, err, err_len);
}

static int query_item_field(struct query_item *q, const char *key, const json_t *v,
                            char *err, size_t err_len)
{
    static const char *const fields[] = { "type", "subtype", "metric", "host", "resolution",
                                          "type-ids", "subtype-ids", "scale-by", "aggreg" };
    char path[32];
    size_t f = 0;
    while (f < 9 && !gojson_key_matches(key, fields[f]))
        f++;
    if (f == 9)
        return 0;
    snprintf(path, sizeof(path), "queries.%s", fields[f]);
    struct gojson_where w = { "APIQuery", path };
    switch (f) {
    case 0: return query_optional_string(v, &w, &q->type, &q->has_type, err, err_len);
    case 1: return query_optional_string(v, &w, &q->subtype, &q->has_subtype, err, err_len);
    case 2: return gojson_string(v, &w, &q->metric, err, err_len);
    case 3: return gojson_string(v, &w, &q->host, err, err_len);
    case 4: return gojson_int64(v, &w, &q->resolution, err, err_len);
    case 5: return query_ids(v, &w, &q->type_ids, &q->type_id_count, err, err_len);
    case 6: return query_ids(v, &w, &q->subtype_ids, &q->subtype_id_count, err, err_len);
    case 7: return query_scale(v, &w, &q->scale_by, err, err_len);
    default: return gojson_bool(v, &w, &q->aggreg, err, err_len);
    }
}

static int query_parse_item(const json_t *v, struct query_item *q, char *err, size_t err_len)
{
    const char *key;
    json_t *field;
    static const struct gojson_where w = { "APIQueryRequest", "queries" };
    if (json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return gojson_type_error(v, &w, "api.APIQuery", err, err_len);
    json_object_foreach((json_t *)v, key, field) {
        int rc = query_item_field(q, key, field, err, err_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int query_parse_items(const json_t *v, struct query_request *r, char *err,
                             size_t err_len)
{
    static const struct gojson_where w = { "APIQueryRequest", "queries" };
    for (size_t i = 0; i < r->item_count; i++)
        query_item_clear(&r->items[i]);
    free(r->items);
    r->items = NULL;
    r->item_count = 0;
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return gojson_type_error(v, &w, "[]api.APIQuery", err, err_len);
    size_t n = json_array_size(v);
    if (n == 0)
        return 0;
    r->items = calloc(n, sizeof(*r->items));
    if (r->items == NULL)
        return -ENOMEM;
    r->item_count = n;
    for (size_t i = 0; i < n; i++) {
        int rc = query_parse_item(json_array_get(v, i), &r->items[i], err, err_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int query_request_field(struct query_request *r, const char *key, const json_t *v,
                               char *err, size_t err_len)
{
    static const char *const fields[] = { "cluster", "from", "to", "queries", "for-all-nodes",
                                          "with-stats", "with-data", "with-padding",
                                          "resample-algo" };
    enum { FIELDS = sizeof fields / sizeof fields[0] };
    size_t f = 0;
    while (f < FIELDS && !gojson_key_matches(key, fields[f]))
        f++;
    if (f == FIELDS)
        return 0;
    struct gojson_where w = { "APIQueryRequest", fields[f] };
    switch (f) {
    case 0: return gojson_string(v, &w, &r->cluster, err, err_len);
    case 1: return gojson_int64(v, &w, &r->from, err, err_len);
    case 2: return gojson_int64(v, &w, &r->to, err, err_len);
    case 3: return query_parse_items(v, r, err, err_len);
    case 4:
        free(r->for_all_nodes);
        return gojson_strings(v, &w, &r->for_all_nodes, &r->for_all_nodes_count,
                              &r->for_all_nodes_present, err, err_len);
    case 5: return gojson_bool(v, &w, &r->with_stats, err, err_len);
    case 6: return gojson_bool(v, &w, &r->with_data, err, err_len);
    case 7: return gojson_bool(v, &w, &r->with_padding, err, err_len);
    default: return gojson_string(v, &w, &r->resample_algo, err, err_len);
    }
}

/* Returns 0, -1 (message in err) or -ENOMEM. */
static int query_parse(const json_t *root, struct query_request *r, char *err, size_t err_len)
{
    static const struct gojson_where top = { NULL, NULL };
    const char *key;
    json_t *v;
    memset(r, 0, sizeof(*r));
    r->with_stats = r->with_data = r->with_padding = true;
    if (json_is_null(root))
        return 0;
    if (!json_is_object(root))
        return gojson_type_error(root, &top, "api.APIQueryRequest", err, err_len);
    json_object_foreach((json_t *)root, key, v) {
        int rc = query_request_field(r, key, v, err, err_len);
        if (rc < 0)
            return rc;
    }
    r->explicit_count = r->item_count;
    r->algo_unknown = resample_algo_parse(r->resample_algo.s ? r->resample_algo.s : "",
                                          r->resample_algo.len, &r->algo) != 0;
    return 0;
}

/* ---- for-all-nodes ----------------------------------------------------- */

/* Appends {metric, host} for every host of the cluster and listed metric. */
static int query_expand_all_nodes(const struct api_context *ctx, struct query_request *r)
{
    size_t extra, total;
    if (!r->for_all_nodes_present || r->for_all_nodes_count == 0)
        return 0;
    int rc = store_list_hosts(ctx->store, r->cluster.s ? r->cluster.s : "", r->cluster.len,
                              &r->hosts, &r->host_count);
    if (rc < 0)
        return -ENOMEM;
    if (__builtin_mul_overflow(r->host_count, r->for_all_nodes_count, &extra) ||
        __builtin_add_overflow(extra, r->item_count, &total) || total > SIZE_MAX / 2 /
        sizeof(struct query_item))
        return -ENOMEM;
    if (extra == 0)
        return 0;
    struct query_item *items = realloc(r->items, total * sizeof(*items));
    if (items == NULL)
        return -ENOMEM;
    memset(items + r->item_count, 0, extra * sizeof(*items));
    r->items = items;
    for (size_t h = 0; h < r->host_count; h++) {
        for (size_t m = 0; m < r->for_all_nodes_count; m++) {
            struct query_item *q = &items[r->item_count++];
            q->metric = r->for_all_nodes[m];
            q->host = (struct gostr){ r->hosts[h], strlen(r->hosts[h]) };
        }
    }
    return 0;
}

/* ---- one result entry -------------------------------------------------- */

static void query_entry_error(struct query_run *run, struct jbuf *b, const char *msg,
                              size_t len)
{
    if (run->entries++ > 0)
        jbuf_putc(b, ',');
    jbuf_puts(b, "{\"error\":");
    jbuf_string(b, msg, len);
    jbuf_puts(b, ",\"from\":0,\"to\":0,\"resolution\":0,\"avg\":0.00,\"min\":0.00,\"max\":0.00}");
}

static void query_entry_error_str(struct query_run *run, struct jbuf *b, const char *msg)
{
    query_entry_error(run, b, msg, strlen(msg));
}

static void query_too_many_points(struct query_run *run, struct jbuf *b)
{
    char msg[256];
    snprintf(msg, sizeof(msg),
             QUERY_ERR_PREFIX "too many points: the answer for one selector would exceed "
             "max-query-points (%zu); query a narrower time range or set "
             "\"with-padding\": false",
             run->max_points);
    query_entry_error_str(run, b, msg);
}

/* Number of leading nulls (§5.4 step 5): 0, or -1 when it cannot be represented. */
static int64_t query_padding(const struct query_run *run, int metric, int64_t data_from)
{
    int64_t f = store_metric_at(run->ctx->store, metric)->frequency;
    int64_t have = data_from / f, want = run->req->from / f, pad;
    if (have <= want)
        return 0;
    if (__builtin_sub_overflow(have, want, &pad))
        return -1;
    return pad;
}

/* Values (or nulls) formatted per call of query_entry_continue at most:
 * a slice is a few hundred KB of text. */
#define QUERY_SLICE 32768

/* Writes the pending entry on until it ends or the part (which started at
 * part_start) reaches API_STREAM_PART bytes. */
static void query_entry_continue(struct query_run *run, struct jbuf *b, size_t part_start)
{
    const struct store_series *s = &run->series;
    while (run->pad_left > 0 && b->len - part_start < API_STREAM_PART && !b->failed) {
        size_t n = run->pad_left < QUERY_SLICE ? (size_t)run->pad_left : QUERY_SLICE;
        if (!jbuf_reserve(b, n * 5))
            return;
        for (size_t i = 0; i < n; i++) {
            if (run->wrote_value)
                b->data[b->len++] = ',';
            memcpy(b->data + b->len, "null", 4);
            b->len += 4;
            run->wrote_value = true;
        }
        run->pad_left -= n;
    }
    while (run->data_next < s->len && b->len - part_start < API_STREAM_PART && !b->failed) {
        size_t n = s->len - run->data_next < QUERY_SLICE ? s->len - run->data_next : QUERY_SLICE;
        if (run->wrote_value)
            jbuf_putc(b, ',');
        jbuf_fixed_list(b, s->data + run->data_next, n, run->scale != 0 ? run->scale : 1.0, 3);
        run->data_next += n;
        run->wrote_value = true;
    }
    if (run->pad_left > 0 || run->data_next < s->len || b->failed)
        return;
    if (run->data_open)
        jbuf_puts(b, "],");
    /* (jbuf_int, not printf: a stats-only query writes this per series) */
    jbuf_puts(b, "\"from\":");
    jbuf_int(b, s->from);
    jbuf_puts(b, ",\"to\":");
    jbuf_int(b, s->to);
    jbuf_puts(b, ",\"resolution\":");
    jbuf_int(b, s->resolution);
    jbuf_puts(b, ",\"avg\":");
    jbuf_fixed(b, run->stats.avg, 2);
    jbuf_puts(b, ",\"min\":");
    jbuf_fixed(b, run->stats.min, 2);
    jbuf_puts(b, ",\"max\":");
    jbuf_fixed(b, run->stats.max, 2);
    jbuf_putc(b, '}');
    store_series_free(&run->series);
    run->in_entry = false;
}

/* Starts the entry of series s (taking it over) and writes what fits.
 * known: the series' statistics when s carries no data, else NULL. */
static void query_entry_data(struct query_run *run, struct jbuf *b, int metric,
                             struct store_series *s, const struct store_summary *known,
                             size_t part_start)
{
    const struct query_request *req = run->req;
    double scale = run->item->scale_by;
    struct store_summary st = { 0, 0, 0 };
    int64_t pad = req->with_padding ? query_padding(run, metric, s->from) : 0;
    if (pad < 0 || s->len > run->max_points || (uint64_t)pad > run->max_points - s->len) {
        store_series_free(s);
        query_too_many_points(run, b);
        return;
    }
    uint64_t points = req->with_data ? (uint64_t)pad + s->len : 0;
    if (points > run->budget) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 QUERY_ERR_PREFIX "too many points: this request's answer would exceed "
                 "max-query-points-per-request (%lld); split it into several requests or ask "
                 "for a coarser resolution", (long long)run->ctx->cfg->max_request_points);
        store_series_free(s);
        query_entry_error_str(run, b, msg);
        return;
    }
    run->budget -= points;
    /* NaN-skipping avg/min/max like upstream's AddStats (Go math.Min/Max on ±0) */
    if (req->with_stats && known)
        st = *known;
    else if (req->with_stats)
        store_series_summary(s->data, s->len, &st);
    if (scale != 0 && scale != 1) {
        st.avg *= scale;
        st.min *= scale;
        st.max *= scale;
    }
    if (run->entries++ > 0)
        jbuf_putc(b, ',');
    jbuf_putc(b, '{');
    bool with_data = req->with_data && pad + s->len > 0;
    if (with_data)
        jbuf_puts(b, "\"data\":[");
    run->in_entry = true;
    run->series = *s;
    memset(s, 0, sizeof *s);
    run->pad_left = with_data ? (uint64_t)pad : 0;
    run->data_next = with_data ? 0 : run->series.len;
    run->data_open = with_data;
    run->wrote_value = false;
    run->scale = scale;
    run->stats = st;
    query_entry_continue(run, b, part_start);
}

static void query_entry_read_error(struct query_run *run, struct jbuf *b, int rc, int metric)
{
    char msg[160];
    switch (rc) {
    case STORE_EINVALID_RANGE:
        query_entry_error_str(run, b, QUERY_ERR_PREFIX "invalid time range");
        break;
    case STORE_EAGGREGATION:
        query_entry_error_str(run, b, QUERY_ERR_PREFIX "invalid aggregation");
        break;
    case STORE_ERESAMPLE:
        snprintf(msg, sizeof(msg),
                 "new sampling frequency (%lld) must be a multiple of old frequency (%lld)",
                 (long long)run->item->resolution,
                 (long long)store_metric_at(run->ctx->store, metric)->frequency);
        query_entry_error_str(run, b, msg);
        break;
    case STORE_ETOO_MANY_POINTS:
        query_too_many_points(run, b);
        break;
    default:
        snprintf(msg, sizeof(msg), QUERY_ERR_PREFIX "internal error %d", rc);
        query_entry_error_str(run, b, msg);
        break;
    }
}

/* An error entry "<text><name>" for a name taken from the request. */
static void query_entry_error_named(struct query_run *run, struct jbuf *b, const char *text,
                                    const struct gostr *name)
{
    struct jbuf msg;
    jbuf_init(&msg, 64 + name->len);
    jbuf_puts(&msg, text);
    jbuf_append(&msg, name->s, name->len);
    if (msg.failed)
        b->failed = true;
    else
        query_entry_error(run, b, msg.data, msg.len);
    jbuf_free(&msg);
}

/* Upstream's text, without its "[METRICSTORE]> " prefix. */
static void query_entry_unknown_algo(struct query_run *run, struct jbuf *b)
{
    query_entry_error_named(run, b, "unknown resampler algorithm: ", &run->req->resample_algo);
}

static void query_entry_unknown_metric(struct query_run *run, struct jbuf *b)
{
    query_entry_error_named(run, b, QUERY_ERR_PREFIX "unknown metric: ", &run->item->metric);
}

/* Reads one selector and appends its entry (or nothing when not found). */
static int query_selector(struct query_run *run, const struct store_selector *sel,
                          struct jbuf *b, size_t part_start)
{
    const struct query_item *q = run->item;
    struct store_series s;
    if (run->req->from > run->req->to) {
        query_entry_error_str(run, b, QUERY_ERR_PREFIX "invalid time range");
        return 0;
    }
    int metric = store_metric_lookup(run->ctx->store, q->metric.s ? q->metric.s : "",
                                     q->metric.len);
    if (metric < 0) {
        query_entry_unknown_metric(run, b);
        return 0;
    }
    /* without data, the statistics may come from the block statistics */
    struct store_summary summary;
    int rc = run->req->with_data
                 ? store_read(run->ctx->store, sel, metric, run->req->from, run->req->to,
                              q->resolution, run->req->algo, run->max_points, &s)
                 : store_read_summary(run->ctx->store, sel, metric, run->req->from,
                                      run->req->to, q->resolution, run->req->algo,
                                      run->max_points, &s, &summary);
    if (rc == STORE_ENOMEM)
        return -ENOMEM;
    if (rc == STORE_ENOTFOUND) {
        log_debug("query: no data for metric '%.*s' on host '%.*s'", (int)q->metric.len,
                  q->metric.s ? q->metric.s : "", (int)q->host.len, q->host.s ? q->host.s : "");
        return 0;
    }
    /* As upstream: a series that was found and combined, then fails at
     * choosing the resampler (before the resolution is checked). */
    if (run->req->algo_unknown && (rc == 0 || rc == STORE_ERESAMPLE)) {
        store_series_free(&s);
        query_entry_unknown_algo(run, b);
        return 0;
    }
    if (rc < 0) {
        query_entry_read_error(run, b, rc, metric);
        return 0;
    }
    query_entry_data(run, b, metric, &s, run->req->with_data ? NULL : &summary, part_start);
    return 0;
}

/* ---- selectors (§5.3) --------------------------------------------------- */

/* Level names prefix+id for every id, in one allocation. */
struct query_names {
    const char **names;
    size_t *lens;
    size_t count;
};

static void query_names_free(struct query_names *n)
{
    if (n->names != NULL && n->count > 0)
        free((void *)n->names[0]);
    free(n->names);
    free(n->lens);
    memset(n, 0, sizeof(*n));
}

static int query_names_build(const struct gostr *prefix, const struct gostr *ids, size_t count,
                             struct query_names *out)
{
    size_t total = 0;
    memset(out, 0, sizeof(*out));
    if (count == 0)
        return 0;
    for (size_t i = 0; i < count; i++)
        total += prefix->len + ids[i].len + 1;
    char *arena = malloc(total);
    out->names = malloc(count * sizeof(*out->names));
    out->lens = malloc(count * sizeof(*out->lens));
    if (arena == NULL || out->names == NULL || out->lens == NULL) {
        free(arena);
        free(out->names);
        free(out->lens);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        out->names[i] = arena;
        out->lens[i] = prefix->len + ids[i].len;
        memcpy(arena, prefix->s, prefix->len);
        memcpy(arena + prefix->len, ids[i].s, ids[i].len);
        arena[out->lens[i]] = '\0';
        arena += out->lens[i] + 1;
    }
    out->count = count;
    return 0;
}

static struct store_selector_elem query_elem(const struct query_names *n, size_t i,
                                             size_t count)
{
    if (count == 0)
        return (struct store_selector_elem){ NULL, NULL, 0 };
    return (struct store_selector_elem){ n->names + i, n->lens + i, count };
}

/* The row being written: its selectors are produced one at a time, in the
 * order of the type ids (and, per type id, of the subtype ids). */
struct query_row {
    bool open;
    struct query_names tn, sn;
    size_t i, j;                    /* the next type id / subtype id */
};

static void query_row_clear(struct query_row *row)
{
    query_names_free(&row->tn);
    query_names_free(&row->sn);
    memset(row, 0, sizeof(*row));
}

static int query_row_open(struct query_row *row, const struct query_item *q)
{
    memset(row, 0, sizeof(*row));
    int rc = 0;
    if (q->has_type)
        rc = query_names_build(&q->type, q->type_ids, q->type_id_count, &row->tn);
    if (rc == 0 && q->has_type && q->has_subtype)
        rc = query_names_build(&q->subtype, q->subtype_ids, q->subtype_id_count, &row->sn);
    if (rc != 0)
        query_row_clear(row);
    else
        row->open = true;
    return rc;
}

/* Fills in the levels below the host that cover every type-id (and
 * subtype-id) of the row at once (sel holds cluster and host). */
static void query_row_all(const struct query_row *row, const struct query_item *q,
                          struct store_selector *sel)
{
    if (q->has_type) {
        sel->elems[2] = query_elem(&row->tn, 0, row->tn.count);
        sel->depth = 3;
    }
    if (q->has_type && q->has_subtype) {
        sel->elems[3] = query_elem(&row->sn, 0, row->sn.count);
        sel->depth = 4;
    }
}

/* Fills in the levels below the host of the row's next selector (sel holds
 * cluster and host); false when the row has no more. Aggregating queries
 * and queries without a type have one selector. */
static bool query_row_next(struct query_row *row, const struct query_item *q,
                           struct store_selector *sel)
{
    if (!q->has_type || q->aggreg) {
        if (row->i++ > 0)
            return false;
        query_row_all(row, q, sel);
        return true;
    }
    size_t per_type = q->has_subtype ? row->sn.count : 1;
    if (row->i >= row->tn.count || per_type == 0)
        return false;
    sel->elems[2] = query_elem(&row->tn, row->i, 1);
    sel->depth = 3;
    if (q->has_subtype) {
        sel->elems[3] = query_elem(&row->sn, row->j, 1);
        sel->depth = 4;
    }
    if (++row->j >= per_type) {
        row->j = 0;
        row->i++;
    }
    return true;
}

/* ---- response ---------------------------------------------------------- */

static void query_echo_generated(const struct query_request *r, struct jbuf *b)
{
    jbuf_puts(b, "\"queries\":[");
    for (size_t i = r->explicit_count; i < r->item_count; i++) {
        const struct query_item *q = &r->items[i];
        if (i > r->explicit_count)
            jbuf_putc(b, ',');
        jbuf_puts(b, "{\"metric\":");
        jbuf_string(b, q->metric.s, q->metric.len);
        jbuf_puts(b, ",\"host\":");
        jbuf_string(b, q->host.s, q->host.len);
        jbuf_puts(b, ",\"resolution\":0,\"aggreg\":false}");
    }
    jbuf_puts(b, "],");
}

/* ---- the answer, streamed -------------------------------------------------- */

/* The state of one answer between its parts. It owns the parsed request
 * and the JSON document the request's strings point into. */
struct query_stream {
    struct api_stream base;
    struct arena arena;             /* the request's JSON tree lives here */
    json_t *root;
    struct query_request req;
    struct query_run run;           /* and the entry being written */
    struct query_row row;           /* the row being written */
    size_t next_item;               /* the row to open next */
    bool opened, closed;
};

/* The selector of the current item's cluster and host (depth 2), pointing
 * into the caller's names[2] and lens[2]. */
static void query_host_selector(const struct query_stream *qs, const char *names[2],
                                size_t lens[2], struct store_selector *sel)
{
    const struct query_item *q = qs->run.item;
    const struct gostr *cluster = &qs->req.cluster;
    names[0] = cluster->s ? cluster->s : "";
    names[1] = q->host.s ? q->host.s : "";
    lens[0] = cluster->len;
    lens[1] = q->host.len;
    *sel = (struct store_selector){ .depth = 2 };
    sel->elems[0] = (struct store_selector_elem){ &names[0], &lens[0], 1 };
    sel->elems[1] = (struct store_selector_elem){ &names[1], &lens[1], 1 };
}

/* Reads the row's next selector, or closes the row. */
static int query_stream_step_row(struct query_stream *qs, struct jbuf *b, size_t part_start)
{
    const struct query_item *q = qs->run.item;
    const char *names[2];
    size_t lens[2];
    struct store_selector sel;
    query_host_selector(qs, names, lens, &sel);
    if (query_row_next(&qs->row, q, &sel))
        return query_selector(&qs->run, &sel, b, part_start);
    jbuf_putc(b, ']');
    query_row_clear(&qs->row);
    return 0;
}

/* Before a row's type-ids are read one selector at a time: the store
 * brings all their chains into the cache side by side (store_prefetch),
 * instead of each read waiting for its own cache misses in turn. */
static void query_row_prefetch(struct query_stream *qs)
{
    const struct query_item *q = qs->run.item;
    const struct query_row *row = &qs->row;
    if (!q->has_type || q->aggreg || row->tn.count < 2)
        return;
    struct store *store = qs->run.ctx->store;
    int metric = store_metric_lookup(store, q->metric.s ? q->metric.s : "", q->metric.len);
    if (metric < 0)
        return;
    const char *names[2];
    size_t lens[2];
    struct store_selector sel;
    query_host_selector(qs, names, lens, &sel);
    query_row_all(row, q, &sel);
    store_prefetch(store, &sel, metric, qs->req.from, qs->req.to);
}

/* Writes the answer on until the part reaches API_STREAM_PART bytes: the
 * entry in progress, the row's next selector, or the next row. */
static int query_stream_next(struct api_stream *base, struct jbuf *b)
{
    struct query_stream *qs = (struct query_stream *)base;
    const struct query_request *r = &qs->req;
    size_t start = b->len;     /* the part is what this call appends */
    if (!qs->opened) {
        jbuf_putc(b, '{');
        if (r->item_count > r->explicit_count)
            query_echo_generated(r, b);
        jbuf_puts(b, "\"results\":[");
        qs->opened = true;
    }
    while (b->len - start < API_STREAM_PART && !b->failed) {
        if (qs->run.in_entry) {
            query_entry_continue(&qs->run, b, start);
        } else if (qs->row.open) {
            if (query_stream_step_row(qs, b, start) < 0)
                return -ENOMEM;
        } else if (qs->next_item < r->item_count) {
            if (qs->next_item > 0)
                jbuf_putc(b, ',');
            qs->run.item = &r->items[qs->next_item++];
            qs->run.entries = 0;
            if (query_row_open(&qs->row, qs->run.item) != 0)
                return -ENOMEM;
            query_row_prefetch(qs);
            jbuf_putc(b, '[');
        } else {
            break;
        }
    }
    if (b->failed)
        return -ENOMEM;
    if (qs->run.in_entry || qs->row.open || qs->next_item < r->item_count)
        return 1;
    if (!qs->closed) {
        jbuf_puts(b, "]}\n");
        qs->closed = true;
    }
    return b->failed ? -ENOMEM : 0;
}

static void query_stream_free(struct api_stream *base)
{
    struct query_stream *qs = (struct query_stream *)base;
    if (qs->run.in_entry)
        store_series_free(&qs->run.series);
    query_row_clear(&qs->row);
    query_request_clear(&qs->req);
    arena_free_all(&qs->arena);     /* the tree with it (never json_decref'd) */
    free(qs);
}

/* The first part; the rest, if any, streams (api.h). Small answers are one
 * buffer and get a Content-Length, as the Go store's do. */
static int query_respond(struct query_stream *qs, struct api_response *out)
{
    struct jbuf b;
    jbuf_init(&b, 4096);
    int rc = query_stream_next(&qs->base, &b);
    if (rc < 0) {
        jbuf_free(&b);
        query_stream_free(&qs->base);
        return -ENOMEM;
    }
    if (api_reply_jbuf(200, API_CT_JSON, &b, out) < 0) {
        query_stream_free(&qs->base);
        return -ENOMEM;
    }
    if (rc == 0)
        query_stream_free(&qs->base);
    else
        out->stream = &qs->base;
    return 0;
}

int api_query(const struct api_context *ctx, const char *body, size_t len,
              struct api_response *out)
{
    char err[GOJSON_ERR_MAX];
    struct query_stream *qs = calloc(1, sizeof(*qs));
    if (!qs)
        return -ENOMEM;
    qs->base = (struct api_stream){query_stream_next, query_stream_free};
    if (gojson_parse_in(&qs->arena, body, len, &qs->root, err, sizeof(err)) < 0) {
        arena_free_all(&qs->arena);
        free(qs);
        return api_error(400, err, out);
    }
    int rc = query_parse(qs->root, &qs->req, err, sizeof(err));
    if (rc == 0)
        rc = query_expand_all_nodes(ctx, &qs->req);
    if (rc == 0) {
        int64_t limit = ctx->cfg->max_query_points;
        int64_t budget = ctx->cfg->max_request_points;
        qs->run = (struct query_run){.ctx = ctx, .req = &qs->req,
                                     .max_points = limit > 0 ? (size_t)limit : SIZE_MAX,
                                     .budget = budget > 0 ? (uint64_t)budget : UINT64_MAX};
        return query_respond(qs, out);
    }
    if (rc == -1)
        rc = api_error(400, err, out);
    query_stream_free(&qs->base);
    return rc;
}
