/*
 * Tests for src/api/query.c: APIQueryRequest decoding (Go semantics),
 * selector building (docs/http-api.md "From a query to selectors"), the per-selector pipeline
 * and the byte-exact response.
 */
#include "testutil.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "store/store.h"

static struct store *store;
static struct ccms_config cfg;
static struct api_context ctx;

static int metric(const char *name)
{
    return store_metric_lookup(store, name, strlen(name));
}

static void put(const char *host, const char *t3, const char *t4, const char *m, int64_t ts,
                float v)
{
    const char *path[4] = { "alex", host, t3, t4 };
    size_t depth = t4 ? 4 : t3 ? 3 : 2;
    assert_int_equal(store_write_path(store, path, depth, metric(m), ts, v), 0);
}

static int setup(void **state)
{
    static const struct store_metric metrics[] = {
        { "cpu_load", 60, CCMS_AGG_AVG },
        { "flops_any", 60, CCMS_AGG_SUM },
        { "mem_used", 60, CCMS_AGG_NONE },
        { "mem_bw", 60, CCMS_AGG_AVG },
    };
    (void)state;
    if (store_create(metrics, 4, &store) != 0)
        return -1;
    cfg.max_query_points = 100000;
    ctx = (struct api_context){ .store = store, .cfg = &cfg };
    /* docs/http-api.md answer example */
    put("a0124", NULL, NULL, "cpu_load", 1000, 1.0f);
    put("a0124", NULL, NULL, "cpu_load", 1060, 2.0f);
    put("a0124", NULL, NULL, "cpu_load", 1180, 4.0f);
    put("a0125", NULL, NULL, "cpu_load", 1000, 8.0f);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "hwthread%d", i);
        put("a0124", name, NULL, "flops_any", 1000, (float)(i + 1));
        put("a0124", name, NULL, "flops_any", 1060, (float)(10 * (i + 1)));
        put("a0124", name, NULL, "mem_used", 1000, 1.0f);
    }
    put("a0124", "socket0", "core0", "mem_bw", 1000, 2.0f);
    put("a0124", "socket0", "core1", "mem_bw", 1000, 4.0f);
    put("a0124", "socket1", "core0", "mem_bw", 1000, 6.0f);
    /* formatting */
    put("fmt", NULL, NULL, "cpu_load", 1000, 0.0005f);
    put("fmt", NULL, NULL, "cpu_load", 1060, -0.0f);
    put("fmt", NULL, NULL, "cpu_load", 1120, 2.5f);
    put("fmt", NULL, NULL, "cpu_load", 1180, 1234567.0f);
    put("fmt", NULL, NULL, "cpu_load", 1240, -1.0005f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_destroy(store);
    return 0;
}

/* Runs a query and returns the body (static buffer); *status gets the code. */
static const char *query(const char *body, int *status)
{
    static char text[65536];
    struct api_response r;
    assert_int_equal(api_query(&ctx, body, strlen(body), &r), 0);
    assert_int_equal(api_response_complete(&r), 0);
    assert_true(r.len < sizeof(text));
    memcpy(text, r.body ? r.body : "", r.len);
    text[r.len] = '\0';
    *status = r.status;
    assert_str_eq(r.content_type, API_CT_JSON);
    api_response_free(&r);
    return text;
}

static void expect(const char *body, int status, const char *want)
{
    int got_status;
    const char *got = query(body, &got_status);
    assert_str_eq(got, want);
    assert_int_equal(got_status, status);
}

#define ROW1 "{\"data\":[null,1.000,2.000,null,4.000],\"from\":1000,\"to\":1240,\"resolution\":60," \
             "\"avg\":2.33,\"min\":1.00,\"max\":4.00}"
#define UNKNOWN_NOSUCH "{\"error\":\"[METRICSTORE]\\u003e unknown metric: nosuch\",\"from\":0," \
                       "\"to\":0,\"resolution\":0,\"avg\":0.00,\"min\":0.00,\"max\":0.00}"

/* The answer example of docs/http-api.md ('>' escaped like Go's encoder). */
static void test_spec_example(void **state)
{
    (void)state;
    expect("{\"cluster\":\"alex\",\"from\":940,\"to\":1240,\n \"queries\":[{\"metric\":\"cpu_load\","
           "\"host\":\"a0124\"},\n {\"metric\":\"cpu_load\",\"host\":\"nohost\"},\n {\"metric\":"
           "\"nosuch\",\"host\":\"a0124\"}]}",
           200, "{\"results\":[[" ROW1 "],[],[" UNKNOWN_NOSUCH "]]}\n");
}

static void test_decode_errors(void **state)
{
    (void)state;
    expect("", 400, "{\"status\":\"Bad Request\",\"error\":\"EOF\"}\n");
    expect(" \n\t", 400, "{\"status\":\"Bad Request\",\"error\":\"EOF\"}\n");
    expect("{\"cluster\":", 400, "{\"status\":\"Bad Request\",\"error\":\"unexpected EOF\"}\n");
    expect("[1]", 400, "{\"status\":\"Bad Request\",\"error\":\"json: cannot unmarshal array "
                       "into Go value of type api.APIQueryRequest\"}\n");
    expect("{\"from\":1.5}", 400, "{\"status\":\"Bad Request\",\"error\":\"json: cannot "
           "unmarshal number 1.5 into Go struct field APIQueryRequest.from of type int64\"}\n");
    expect("{\"to\":\"5\"}", 400, "{\"status\":\"Bad Request\",\"error\":\"json: cannot "
           "unmarshal string into Go struct field APIQueryRequest.to of type int64\"}\n");
    expect("{\"with-stats\":1}", 400, "{\"status\":\"Bad Request\",\"error\":\"json: cannot "
           "unmarshal number into Go struct field APIQueryRequest.with-stats of type bool\"}\n");
    expect("{\"queries\":[{\"type-ids\":[1]}]}", 400, "{\"status\":\"Bad Request\",\"error\":"
           "\"json: cannot unmarshal number into Go struct field APIQuery.queries.type-ids of "
           "type string\"}\n");
    expect("{\"queries\":[5]}", 400, "{\"status\":\"Bad Request\",\"error\":\"json: cannot "
           "unmarshal number into Go struct field APIQueryRequest.queries of type "
           "api.APIQuery\"}\n");
    int status;
    const char *body = query("{\"cluster\" \"alex\"}", &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(body, "\"status\":\"Bad Request\""));
}

static void test_decode_lenient(void **state)
{
    (void)state;
    expect("null", 200, "{\"results\":[]}\n");
    expect("{}", 200, "{\"results\":[]}\n");
    expect("{\"queries\":null,\"for-all-nodes\":null} trailing garbage", 200,
           "{\"results\":[]}\n");
    /* unknown keys ignored, null keeps the defaults, keys case-insensitive */
    expect("{\"CLUSTER\":\"alex\",\"From\":940,\"tO\":1240,\"with-STATS\":null,\"x\":[1],"
           "\"Queries\":[{\"METRIC\":\"cpu_load\",\"Host\":\"a0124\",\"type\":null,"
           "\"resolution\":null}]}",
           200, "{\"results\":[[" ROW1 "]]}\n");
    /* Go folds U+017F (long s) to 's' */
    expect("{\"clu\xc5\xbfter\":\"alex\",\"from\":940,\"to\":1240,\"queries\":[{\"metric\":"
           "\"cpu_load\",\"host\":\"a0124\"}]}",
           200, "{\"results\":[[" ROW1 "]]}\n");
    /* duplicate keys: the last one wins */
    expect("{\"cluster\":\"nope\",\"Cluster\":\"alex\",\"from\":940,\"to\":1240,\"queries\":"
           "[{\"metric\":\"cpu_load\",\"host\":\"a0124\"}]}",
           200, "{\"results\":[[" ROW1 "]]}\n");
}

static void test_flags(void **state)
{
    (void)state;
    const char *q = "\"cluster\":\"alex\",\"from\":940,\"to\":1240,\"queries\":[{\"metric\":"
                    "\"cpu_load\",\"host\":\"a0124\"}]";
    char body[512];
    snprintf(body, sizeof(body), "{%s,\"with-stats\":false}", q);
    expect(body, 200, "{\"results\":[[{\"data\":[null,1.000,2.000,null,4.000],\"from\":1000,"
                      "\"to\":1240,\"resolution\":60,\"avg\":0.00,\"min\":0.00,\"max\":0.00}]]}\n");
    snprintf(body, sizeof(body), "{%s,\"with-data\":false}", q);
    expect(body, 200, "{\"results\":[[{\"from\":1000,\"to\":1240,\"resolution\":60,"
                      "\"avg\":2.33,\"min\":1.00,\"max\":4.00}]]}\n");
    snprintf(body, sizeof(body), "{%s,\"with-padding\":false}", q);
    expect(body, 200, "{\"results\":[[{\"data\":[1.000,2.000,null,4.000],\"from\":1000,"
                      "\"to\":1240,\"resolution\":60,\"avg\":2.33,\"min\":1.00,\"max\":4.00}]]}\n");
}

static void test_scale_by(void **state)
{
    (void)state;
    const char *head = "{\"cluster\":\"alex\",\"from\":940,\"to\":1240,\"queries\":[{\"metric\":"
                       "\"cpu_load\",\"host\":\"a0124\",\"scale-by\":";
    char body[512];
    snprintf(body, sizeof(body), "%s2.5}]}", head);
    expect(body, 200, "{\"results\":[[{\"data\":[null,2.500,5.000,null,10.000],\"from\":1000,"
                      "\"to\":1240,\"resolution\":60,\"avg\":5.83,\"min\":2.50,\"max\":10.00}]]}\n");
    snprintf(body, sizeof(body), "%s1}]}", head);
    expect(body, 200, "{\"results\":[[" ROW1 "]]}\n");
    snprintf(body, sizeof(body), "%s0}]}", head);
    expect(body, 200, "{\"results\":[[" ROW1 "]]}\n");
    /* schema.Float: null is NaN, which makes everything null (as in the Go store) */
    snprintf(body, sizeof(body), "%snull}]}", head);
    expect(body, 200, "{\"results\":[[{\"data\":[null,null,null,null,null],\"from\":1000,"
                      "\"to\":1240,\"resolution\":60,\"avg\":null,\"min\":null,\"max\":null}]]}\n");
    /* overflow to ±Inf is written as null, never an empty body (the Go store sent an empty body) */
    int status;
    snprintf(body, sizeof(body), "%s1e308}]}", head);
    const char *got = query(body, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(got, ",null,null,null],\"from\":1000,"));
    assert_non_null(strstr(got, "\"avg\":null,\"min\":1000000000000000010979063629440455417"));
    assert_non_null(strstr(got, "\"max\":null}]]}\n"));
}

static void test_number_format(void **state)
{
    (void)state;
    /* %.3f / %.2f of the float32 values; a stored -0 reads back as +0 (as upstream) */
    expect("{\"cluster\":\"alex\",\"from\":1000,\"to\":1300,\"queries\":[{\"metric\":\"cpu_load\","
           "\"host\":\"fmt\"}]}",
           200, "{\"results\":[[{\"data\":[0.001,0.000,2.500,1234567.000,-1.000],\"from\":1000,"
                "\"to\":1300,\"resolution\":60,\"avg\":246913.70,\"min\":-1.00,"
                "\"max\":1234567.00}]]}\n");
    /* negative scale: -0.000 appears, and min/max swap meaning (as in the Go store) */
    expect("{\"cluster\":\"alex\",\"from\":1000,\"to\":1300,\"queries\":[{\"metric\":\"cpu_load\","
           "\"host\":\"fmt\",\"scale-by\":-1}]}",
           200, "{\"results\":[[{\"data\":[-0.001,-0.000,-2.500,-1234567.000,1.000],\"from\":1000,"
                "\"to\":1300,\"resolution\":60,\"avg\":-246913.70,\"min\":1.00,"
                "\"max\":-1234567.00}]]}\n");
}

/* Body of one query against host a0124 over [1000, 1120) without padding. */
static const char *one(const char *query_json, int *status)
{
    static char body[1024];
    snprintf(body, sizeof(body), "{\"cluster\":\"alex\",\"from\":1000,\"to\":1120,"
             "\"with-stats\":false,\"queries\":[%s]}", query_json);
    return query(body, status);
}

static void expect_one(const char *query_json, const char *row)
{
    char want[2048];
    int status;
    snprintf(want, sizeof(want), "{\"results\":[%s]}\n", row);
    assert_str_eq(one(query_json, &status), want);
    assert_int_equal(status, 200);
}

#define ENTRY(data) "{\"data\":[" data "],\"from\":1000,\"to\":1120,\"resolution\":60," \
                    "\"avg\":0.00,\"min\":0.00,\"max\":0.00}"
#define ENTRY1(data) "{\"data\":[" data "],\"from\":1000,\"to\":1060,\"resolution\":60," \
                     "\"avg\":0.00,\"min\":0.00,\"max\":0.00}"

static void test_selectors_type(void **state)
{
    (void)state;
    /* type absent: host level, implicit descent sums all hwthreads */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type-ids\":[\"0\"]}",
               "[" ENTRY("10.000,100.000") "]");
    /* aggreg false: one entry per type-id, in type-ids order */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\","
               "\"type-ids\":[\"2\",\"0\"],\"aggreg\":false}",
               "[" ENTRY("3.000,30.000") "," ENTRY("1.000,10.000") "]");
    /* aggreg true: one entry over the group */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\","
               "\"type-ids\":[\"0\",\"1\",\"3\"],\"aggreg\":true}",
               "[" ENTRY("7.000,70.000") "]");
    /* a single id with aggreg is an exact name */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\","
               "\"type-ids\":[\"1\"],\"aggreg\":true}",
               "[" ENTRY("2.000,20.000") "]");
    /* no ids: no selector (aggreg false) or an empty group (aggreg true) */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\"}", "[]");
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\","
               "\"type-ids\":[],\"aggreg\":true}", "[]");
    /* unknown ids are swallowed: entries shift (as in the Go store) */
    expect_one("{\"metric\":\"flops_any\",\"host\":\"a0124\",\"type\":\"hwthread\","
               "\"type-ids\":[\"9\",\"3\"]}",
               "[" ENTRY("4.000,40.000") "]");
}

static void test_selectors_subtype(void **state)
{
    (void)state;
    /* aggreg false: type-ids (outer) x subtype-ids (inner) */
    expect_one("{\"metric\":\"mem_bw\",\"host\":\"a0124\",\"type\":\"socket\",\"type-ids\":"
               "[\"0\",\"1\"],\"subtype\":\"core\",\"subtype-ids\":[\"1\",\"0\"]}",
               "[" ENTRY1("4.000") "," ENTRY1("2.000") "," ENTRY1("6.000") "]");
    /* aggreg true: groups on both levels, averaged */
    expect_one("{\"metric\":\"mem_bw\",\"host\":\"a0124\",\"type\":\"socket\",\"type-ids\":"
               "[\"0\",\"1\"],\"subtype\":\"core\",\"subtype-ids\":[\"0\",\"1\"],\"aggreg\":true}",
               "[" ENTRY1("4.000") "]");
    /* subtype present without ids: nothing */
    expect_one("{\"metric\":\"mem_bw\",\"host\":\"a0124\",\"type\":\"socket\",\"type-ids\":"
               "[\"0\"],\"subtype\":\"core\"}", "[]");
    /* subtype null is absent */
    expect_one("{\"metric\":\"mem_bw\",\"host\":\"a0124\",\"type\":\"socket\",\"type-ids\":"
               "[\"0\"],\"subtype\":null,\"subtype-ids\":[\"0\"]}",
               "[" ENTRY1("3.000") "]");
}

#define ERR(msg) "{\"error\":\"" msg "\",\"from\":0,\"to\":0,\"resolution\":0," \
                 "\"avg\":0.00,\"min\":0.00,\"max\":0.00}"

static void test_error_entries(void **state)
{
    (void)state;
    int status;
    expect_one("{\"metric\":\"mem_used\",\"host\":\"a0124\"}",
               "[" ERR("[METRICSTORE]\\u003e invalid aggregation") "]");
    expect_one("{\"metric\":\"cpu_load\",\"host\":\"a0124\",\"resolution\":90}",
               "[" ERR("new sampling frequency (90) must be a multiple of old frequency (60)")
               "]");
    /* unknown metrics are reported even for unknown hosts, once per selector */
    expect_one("{\"metric\":\"nosuch\",\"host\":\"x\",\"type\":\"t\",\"type-ids\":[\"1\",\"2\"]}",
               "[" ERR("[METRICSTORE]\\u003e unknown metric: nosuch") ","
               ERR("[METRICSTORE]\\u003e unknown metric: nosuch") "]");
    assert_str_eq(query("{\"cluster\":\"alex\",\"from\":2,\"to\":1,\"queries\":[{\"metric\":"
                        "\"nosuch\",\"host\":\"a0124\"}]}", &status),
                  "{\"results\":[[" ERR("[METRICSTORE]\\u003e invalid time range") "]]}\n");
    /* from == to is allowed */
    assert_str_eq(query("{\"cluster\":\"alex\",\"from\":1000,\"to\":1000,\"queries\":[{\"metric\":"
                        "\"cpu_load\",\"host\":\"nohost\"}]}", &status),
                  "{\"results\":[[]]}\n");
}

static void test_max_points(void **state)
{
    (void)state;
    int status;
    const char *got;
    cfg.max_query_points = 5;
    /* 4 data points fit; 16 padding slots from 0 do not */
    got = query("{\"cluster\":\"alex\",\"from\":0,\"to\":1240,\"queries\":[{\"metric\":"
                "\"cpu_load\",\"host\":\"a0124\"}]}", &status);
    assert_non_null(strstr(got, "{\"results\":[[{\"error\":\"[METRICSTORE]\\u003e too many points"));
    assert_non_null(strstr(got, "max-query-points (5)"));
    assert_non_null(strstr(got, "with-padding"));
    got = query("{\"cluster\":\"alex\",\"from\":0,\"to\":1240,\"with-padding\":false,"
                "\"with-stats\":false,\"queries\":[{\"metric\":\"cpu_load\",\"host\":\"a0124\"}]}",
                &status);
    assert_str_eq(got, "{\"results\":[[{\"data\":[1.000,2.000,null,4.000],\"from\":1000,"
                       "\"to\":1240,\"resolution\":60,\"avg\":0.00,\"min\":0.00,\"max\":0.00}]]}\n");
    /* exactly at the limit: 1 padding + 4 points */
    got = query("{\"cluster\":\"alex\",\"from\":940,\"to\":1240,\"queries\":[{\"metric\":"
                "\"cpu_load\",\"host\":\"a0124\"}]}", &status);
    assert_str_eq(got, "{\"results\":[[" ROW1 "]]}\n");
    /* a from far in the past cannot overflow the padding count */
    got = query("{\"cluster\":\"alex\",\"from\":-9223372036854775808,\"to\":1240,\"queries\":"
                "[{\"metric\":\"cpu_load\",\"host\":\"a0124\"}]}", &status);
    assert_non_null(strstr(got, "too many points"));
    cfg.max_query_points = 100000;
}

static void test_for_all_nodes(void **state)
{
    (void)state;
    int status;
    /* explicit queries first, then host x metric in sorted host order */
    assert_str_eq(
        query("{\"cluster\":\"alex\",\"from\":1000,\"to\":1060,\"with-stats\":false,"
              "\"queries\":[{\"metric\":\"nosuch\",\"host\":\"a0124\"}],"
              "\"for-all-nodes\":[\"cpu_load\",\"mem_bw\"]}", &status),
        "{\"queries\":[{\"metric\":\"cpu_load\",\"host\":\"a0124\",\"resolution\":0,"
        "\"aggreg\":false},{\"metric\":\"mem_bw\",\"host\":\"a0124\",\"resolution\":0,"
        "\"aggreg\":false},{\"metric\":\"cpu_load\",\"host\":\"a0125\",\"resolution\":0,"
        "\"aggreg\":false},{\"metric\":\"mem_bw\",\"host\":\"a0125\",\"resolution\":0,"
        "\"aggreg\":false},{\"metric\":\"cpu_load\",\"host\":\"fmt\",\"resolution\":0,"
        "\"aggreg\":false},{\"metric\":\"mem_bw\",\"host\":\"fmt\",\"resolution\":0,"
        "\"aggreg\":false}],\"results\":[[" ERR("[METRICSTORE]\\u003e unknown metric: nosuch")
        "],[" ENTRY1("1.000") "],[" ENTRY1("4.000") "],[" ENTRY1("8.000") "],[],["
        ENTRY1("0.001") "],[]]}\n");
    /* an unknown cluster or an empty list generates nothing: no "queries" */
    assert_str_eq(query("{\"cluster\":\"nope\",\"for-all-nodes\":[\"cpu_load\"]}", &status),
                  "{\"results\":[]}\n");
    assert_str_eq(query("{\"cluster\":\"alex\",\"for-all-nodes\":[]}", &status),
                  "{\"results\":[]}\n");
}

/* An answer larger than one part streams: the first part comes with the
 * response, the rest from the stream, and together they are the answer
 * the query would give whole. */
static void test_large_answer_streams_in_parts(void **state)
{
    (void)state;
    struct jbuf q;
    jbuf_init(&q, 1 << 16);
    jbuf_puts(&q, "{\"cluster\":\"alex\",\"from\":-3000000,\"to\":2000,\"queries\":[");
    for (int i = 0; i < 40; i++)
        jbuf_puts(&q, i ? ",{\"metric\":\"cpu_load\",\"host\":\"a0124\"}"
                        : "{\"metric\":\"cpu_load\",\"host\":\"a0124\"}");
    jbuf_puts(&q, "]}");
    struct api_response r;
    assert_int_equal(api_query(&ctx, q.data, q.len, &r), 0);
    assert_non_null(r.stream);
    assert_true(r.len >= API_STREAM_PART);
    size_t first = r.len;
    assert_int_equal(api_response_complete(&r), 0);
    assert_null(r.stream);
    assert_true(r.len > first);
    assert_int_equal(r.body[r.len - 1], '\n');
    json_error_t err;
    json_t *v = json_loadb(r.body, r.len, 0, &err);
    assert_non_null(v);
    assert_int_equal(json_array_size(json_object_get(v, "results")), 40);
    json_decref(v);
    api_response_free(&r);
    jbuf_free(&q);
}

/* Padding is a count, not a buffer: one selector padded with 2 M nulls
 * (and typed rows of many selectors) comes in parts that stay near
 * API_STREAM_PART, and the parts together are the answer. */
static void test_padding_streams_without_buffering(void **state)
{
    (void)state;
    size_t saved = (size_t)cfg.max_query_points;
    cfg.max_query_points = 3000000;
    const char *body = "{\"cluster\":\"alex\",\"from\":-119998200,\"to\":1300,"
                       "\"with-padding\":true,\"queries\":[{\"metric\":\"cpu_load\","
                       "\"host\":\"a0124\"}]}";
    struct api_response r;
    assert_int_equal(api_query(&ctx, body, strlen(body), &r), 0);
    assert_non_null(r.stream);
    struct jbuf all;
    jbuf_init(&all, 1 << 20);
    jbuf_append(&all, r.body, r.len);
    size_t parts = 1, largest = r.len;
    int rc;
    do {
        struct jbuf part;
        jbuf_init(&part, 1024);
        rc = r.stream->next(r.stream, &part);
        assert_true(rc >= 0);
        if (part.len > largest)
            largest = part.len;
        jbuf_append(&all, part.data, part.len);
        jbuf_free(&part);
        parts++;
    } while (rc == 1);
    /* a part ends at the first slice boundary past API_STREAM_PART */
    assert_true(largest <= API_STREAM_PART + 32768 * 5 + 1024);
    assert_true(parts >= 20);
    json_error_t err;
    json_t *v = json_loadb(all.data, all.len, 0, &err);
    assert_non_null(v);
    json_t *entry = json_array_get(json_array_get(json_object_get(v, "results"), 0), 0);
    json_t *data = json_object_get(entry, "data");
    /* padding: 1000/60 - (-119998200/60) = 16 + 1999970 intervals of 60 s
     * (Go's truncating division), then the values 1, 2, null, 4 */
    const size_t pad = 1999986;
    assert_int_equal(json_array_size(data), pad + 4);
    assert_true(json_is_null(json_array_get(data, 0)));
    assert_true(json_is_null(json_array_get(data, pad - 1)));
    assert_true(json_real_value(json_array_get(data, pad)) == 1.0);
    assert_true(json_is_null(json_array_get(data, pad + 2)));
    assert_true(json_real_value(json_array_get(data, pad + 3)) == 4.0);
    assert_true(fabs(json_real_value(json_object_get(entry, "avg")) - 2.33) < 1e-9);
    json_decref(v);
    jbuf_free(&all);
    r.stream->free(r.stream);
    r.stream = NULL;
    api_response_free(&r);

    /* an answer dropped halfway frees its entry in progress */
    assert_int_equal(api_query(&ctx, body, strlen(body), &r), 0);
    assert_non_null(r.stream);
    api_response_free(&r);
    cfg.max_query_points = (int64_t)saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_answer_streams_in_parts),
        cmocka_unit_test(test_padding_streams_without_buffering),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_lenient),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_scale_by),
        cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_selectors_type),
        cmocka_unit_test(test_selectors_subtype),
        cmocka_unit_test(test_error_entries),
        cmocka_unit_test(test_max_points),
        cmocka_unit_test(test_for_all_nodes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
