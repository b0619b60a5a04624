/*
 * Tests for the smaller endpoints through their api.h functions:
 * free (src/api/free.c), debug (debug.c), healthcheck (health.c),
 * write (write.c) and the response helpers (response.c).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "store/store.h"

#define NOW 1000000

static struct store *store;
static struct ccms_config cfg;
static struct api_context ctx;
static char text[65536];
static struct api_response resp;

static int metric(const char *name)
{
    return store_metric_lookup(store, name, strlen(name));
}

static void put(const char *cluster, const char *host, const char *sub, const char *m,
                int64_t ts)
{
    const char *path[3] = { cluster, host, sub };
    assert_int_equal(store_write_path(store, path, sub ? 3 : 2, metric(m), ts, 1.0f), 0);
}

static int setup(void **state)
{
    static const struct store_metric metrics[] = {
        { "cpu_load", 60, CCMS_AGG_AVG },
        { "mem_used", 60, CCMS_AGG_AVG },
    };
    (void)state;
    cfg = (struct ccms_config){ .max_query_points = 1000, .max_line_length = 4096,
                                .max_new_levels = 1000, .future_tolerance_seconds = 3600 };
    if (store_create(metrics, 2, &store) != 0)
        return -1;
    ctx = (struct api_context){ .store = store, .cfg = &cfg };
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_destroy(store);
    store = NULL;
    return 0;
}

/* Copies the response body into text and frees the response. */
static const char *take(int rc)
{
    assert_int_equal(rc, 0);
    assert_true(resp.len < sizeof(text));
    memcpy(text, resp.body ? resp.body : "", resp.len);
    text[resp.len] = '\0';
    api_response_free(&resp);
    return text;
}

static void expect(int rc, int status, const char *content_type, const char *body)
{
    int got_status = resp.status;
    const char *got_type = resp.content_type;
    assert_str_eq(take(rc), body);
    assert_int_equal(got_status, status);
    assert_str_eq(got_type, content_type);
}

static int do_free(const char *to, const char *body)
{
    return api_free(&ctx, to, body, strlen(body), &resp);
}

/* ---- free --------------------------------------------------------------- */

static void test_free_to_parameter(void **state)
{
    (void)state;
    const char *missing = "{\"status\":\"Bad Request\",\"error\":\"'to' is a required query "
                          "parameter\"}\n";
    expect(do_free(NULL, "[]"), 400, API_CT_JSON, missing);
    expect(do_free("", "[]"), 400, API_CT_JSON, missing);
    expect(do_free("x", "[]"), 400, API_CT_JSON, "{\"status\":\"Bad Request\",\"error\":"
           "\"strconv.ParseInt: parsing \\\"x\\\": invalid syntax\"}\n");
    expect(do_free("-", "[]"), 400, API_CT_JSON, "{\"status\":\"Bad Request\",\"error\":"
           "\"strconv.ParseInt: parsing \\\"-\\\": invalid syntax\"}\n");
    expect(do_free("9223372036854775808", "[]"), 400, API_CT_JSON, "{\"status\":\"Bad Request\","
           "\"error\":\"strconv.ParseInt: parsing \\\"9223372036854775808\\\": value out of "
           "range\"}\n");
    expect(do_free("1.5", "[]"), 400, API_CT_JSON, "{\"status\":\"Bad Request\",\"error\":"
           "\"strconv.ParseInt: parsing \\\"1.5\\\": invalid syntax\"}\n");
    expect(do_free("-9223372036854775808", "[]"), 200, API_CT_TEXT, "buffers freed: 0\n");
    expect(do_free("+5", "null"), 200, API_CT_TEXT, "buffers freed: 0\n");
}

static void test_free_body_errors(void **state)
{
    (void)state;
    expect(do_free("5", ""), 400, API_CT_TEXT, "EOF\n");
    expect(do_free("5", "[[\"a\""), 400, API_CT_TEXT, "unexpected EOF\n");
    expect(do_free("5", "{}"), 400, API_CT_TEXT,
           "json: cannot unmarshal object into Go value of type [][]string\n");
    expect(do_free("5", "[1]"), 400, API_CT_TEXT,
           "json: cannot unmarshal number into Go value of type []string\n");
    expect(do_free("5", "[[\"a\",true]]"), 400, API_CT_TEXT,
           "json: cannot unmarshal bool into Go value of type string\n");
}

static void test_free_buffers(void **state)
{
    (void)state;
    put("alex", "h1", NULL, "cpu_load", 1000);
    put("alex", "h1", "cpu0", "cpu_load", 1000);
    put("alex", "h2", NULL, "cpu_load", 1000);
    put("fritz", "f1", NULL, "mem_used", 1000);
    /* nothing ends before `to` yet */
    expect(do_free("1000", "[[\"alex\"]]"), 200, API_CT_TEXT, "buffers freed: 0\n");
    /* unknown selectors free nothing and create nothing; too deep cannot exist */
    expect(do_free("99999999", "[[\"nope\",\"x\"],[\"a\",\"b\",\"c\",\"d\",\"e\"]]"), 200,
           API_CT_TEXT, "buffers freed: 0\n");
    expect(api_debug(&ctx, "nope", &resp), 400, API_CT_JSON, "{\"status\":\"Bad Request\","
           "\"error\":\"[METRICSTORE]\\u003e not found: []string{\\\"nope\\\"}\"}\n");
    /* a host subtree, then a null selector element ("") and finally the root */
    expect(do_free("99999999", "[[\"alex\",\"h1\"],[\"alex\",null]]"), 200, API_CT_TEXT,
           "buffers freed: 2\n");
    expect(do_free("99999999", "[[]]"), 200, API_CT_TEXT, "buffers freed: 2\n");
    expect(do_free("99999999", "[null]"), 200, API_CT_TEXT, "buffers freed: 0\n");
}

/* ---- debug -------------------------------------------------------------- */

static void test_debug(void **state)
{
    (void)state;
    put("alex", "a0124", NULL, "cpu_load", 1000);
    take(api_debug(&ctx, NULL, &resp));
    assert_non_null(strstr(text, "{\"data\":{"));
    assert_non_null(strstr(text, "\"a0124\":{"));
    take(api_debug(&ctx, "", &resp));
    assert_non_null(strstr(text, "\"alex\":{"));
    expect(api_debug(&ctx, "alex:a0124", &resp), 200, API_CT_JSON,
           "{\"data\":{\n\t\"cpu_load\":[{\"start\":970,\"len\":1,\"end\":1030}],\n}}\n");
    expect(api_debug(&ctx, "alex:nohost", &resp), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"[METRICSTORE]\\u003e not found: "
           "[]string{\\\"alex\\\", \\\"nohost\\\"}\"}\n");
    /* Go %#v quoting, and selectors deeper than the tree */
    expect(api_debug(&ctx, "a\"b\t:\x01:\xff:d:e", &resp), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"[METRICSTORE]\\u003e not found: "
           "[]string{\\\"a\\\\\\\"b\\\\t\\\", \\\"\\\\x01\\\", \\\"\\\\xff\\\", \\\"d\\\", "
           "\\\"e\\\"}\"}\n");
}

/* ---- healthcheck -------------------------------------------------------- */

static int do_health(const char *body)
{
    return api_healthcheck(&ctx, body, strlen(body), NOW, &resp);
}

static void test_health_errors(void **state)
{
    (void)state;
    expect(do_health(""), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"parsing request body failed: EOF\"}\n");
    expect(do_health("{\"cluster\":\"a\",\"node\":\"x\"}"), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"parsing request body failed: json: "
           "unknown field \\\"node\\\"\"}\n");
    expect(do_health("{\"nodes\":\"x\"}"), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"parsing request body failed: json: cannot "
           "unmarshal string into Go struct field HealthCheckReq.nodes of type []string\"}\n");
    expect(do_health("{\"cluster\":\"alex\",\"nodes\":null}"), 200, API_CT_JSON, "{}\n");
    expect(do_health("null"), 200, API_CT_JSON, "{}\n");
}

static void test_health_states(void **state)
{
    (void)state;
    put("hc", "n1", NULL, "cpu_load", NOW - 60);
    put("hc", "n1", NULL, "mem_used", NOW - 1000);
    put("hc", "n2", NULL, "cpu_load", NOW - 60);
    put("hc", "n2", "cpu0", "mem_used", NOW - 60);
    put("hc", "n3", NULL, "mem_used", NOW - 1000);
    expect(do_health("{\"Cluster\":\"hc\",\"nodes\":[\"n3\",\"gone01\",\"n1\",\"n2\",\"n1\"],"
                     "\"metric-names\":[\"cpu_load\",\"mem_used\"]}"),
           200, API_CT_JSON,
           "{\"gone01\":{\"State\":\"failed\",\"HealthMetrics\":\"\"},"
           "\"n1\":{\"State\":\"partial\",\"HealthMetrics\":\"{\\\"degraded\\\":[\\\"mem_used\\\"],"
           "\\\"missing\\\":[]}\"},"
           "\"n2\":{\"State\":\"full\",\"HealthMetrics\":\"{\\\"degraded\\\":[],"
           "\\\"missing\\\":[]}\"},"
           "\"n3\":{\"State\":\"failed\",\"HealthMetrics\":\"{\\\"degraded\\\":[\\\"mem_used\\\"],"
           "\\\"missing\\\":[\\\"cpu_load\\\"]}\"}}\n");
    /* unconfigured metrics are missing; no metrics at all is "full" */
    expect(do_health("{\"cluster\":\"hc\",\"nodes\":[\"n2\"],\"metric-names\":[\"x<\","
                     "\"cpu_load\"]}"),
           200, API_CT_JSON,
           "{\"n2\":{\"State\":\"partial\",\"HealthMetrics\":\"{\\\"degraded\\\":[],"
           "\\\"missing\\\":[\\\"x\\\\u003c\\\"]}\"}}\n");
    expect(do_health("{\"cluster\":\"hc\",\"nodes\":[\"n2\"]}"), 200, API_CT_JSON,
           "{\"n2\":{\"State\":\"full\",\"HealthMetrics\":\"{\\\"degraded\\\":[],"
           "\\\"missing\\\":[]}\"}}\n");
}

/* ---- write -------------------------------------------------------------- */

static int do_write(const char *cluster, const char *precision, const char *body)
{
    struct ingest_batch *batch = NULL;
    int rc = api_write_begin(&ctx, cluster, precision, NOW, &batch, &resp);
    if (rc < 0 || batch == NULL)
        return rc;
    assert_int_equal(ingest_batch_feed(batch, body, strlen(body)), 0);
    rc = api_write_finish(batch, &resp);
    ingest_batch_free(batch);
    return rc;
}

static void test_write(void **state)
{
    (void)state;
    expect(do_write("wr", "s", "cpu_load,hostname=w1 value=1.5 999000\n"), 200, API_CT_JSON, "");
    expect(do_write("wr", "", "cpu_load,hostname=w1 value=1.5 999060"), 200, API_CT_JSON, "");
    expect(do_write("wr", "h", "cpu_load,hostname=w1 value=1.5 999060"), 400, API_CT_JSON,
           "{\"status\":\"Bad Request\",\"error\":\"invalid precision \\\"h\\\": use s, ms, "
           "us or ns\"}\n");
    take(do_write("wr", NULL, "cpu_load,hostname=w1 value=2 999120\ncpu_load,hostname=w1 "
                              "value=\"x\" 999180\n"));
    assert_non_null(strstr(text, "{\"status\":\"Bad Request\",\"error\":\""));
    assert_non_null(strstr(text, "line 2"));
    expect(api_debug(&ctx, "wr:w1", &resp), 200, API_CT_JSON,
           "{\"data\":{\n\t\"cpu_load\":[{\"start\":998970,\"len\":3,\"end\":999150}],\n}}\n");
}

/* ---- helpers ------------------------------------------------------------ */

static void test_response_helpers(void **state)
{
    (void)state;
    expect(api_error(413, "too \"big\"", &resp), 413, API_CT_JSON,
           "{\"status\":\"Request Entity Too Large\",\"error\":\"too \\\"big\\\"\"}\n");
    expect(api_text(405, "Method Not Allowed\n", &resp), 405, API_CT_TEXT,
           "Method Not Allowed\n");
    assert_str_eq(api_status_text(500), "Internal Server Error");
    assert_str_eq(api_status_text(401), "Unauthorized");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_free_to_parameter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_body_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
