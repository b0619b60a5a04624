/*
 * Unit tests of src/net/nats.c that need no server: the routing pre-scan
 * (which decides whether a message may go to one host's worker) and the
 * "not configured" paths. Everything with a real nats-server is in
 * tests/integration/test_nats.py.
 */
#include <stdio.h>

#include "testutil.h"

#include "config.h"
#include "net/nats.h"

struct classify_case {
    const char *body;
    enum nats_ingest_hosts want;
    const char *host;          /* for NATS_INGEST_ONE_HOST */
};

static const struct classify_case classify_cases[] = {
    { "", NATS_INGEST_NO_HOST, NULL },
    { "\n\n# comment\n  \n", NATS_INGEST_NO_HOST, NULL },
    { "m value=1 100\n", NATS_INGEST_NO_HOST, NULL },
    { "m,cluster=c,type=node value=1\n", NATS_INGEST_NO_HOST, NULL },
    { "m,hostname=h1 value=1 100\n", NATS_INGEST_ONE_HOST, "h1" },
    { "m,hostname=h1 value=1 100", NATS_INGEST_ONE_HOST, "h1" },
    { "m,hostname=h1 value=1 100\r\nm,cluster=x,hostname=h1,type=cpu,type-id=3 value=2\r\n",
      NATS_INGEST_ONE_HOST, "h1" },
    { "  m,host=h2 value=1\n# x,hostname=other\nn,hostname=h2 value=2\n",
      NATS_INGEST_ONE_HOST, "h2" },
    /* the later of host/hostname wins, as in ingest */
    { "m,host=a,hostname=b value=1\nm,hostname=b value=2\n", NATS_INGEST_ONE_HOST, "b" },
    { "m,hostname=b,host=a value=1\nm,host=a value=2\n", NATS_INGEST_ONE_HOST, "a" },
    { "m,hostnames=x,hostname=h value=1\n", NATS_INGEST_ONE_HOST, "h" },
    /* lines that name no host do not make a message mixed */
    { "m,hostname=h value=1\nm value=2\nm,type=node value=3\n", NATS_INGEST_ONE_HOST, "h" },
    { "m,hostname=a value=1\nm,hostname=b value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,hostname=a value=1\nm,hostname=ab value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,host=a,hostname=b value=1\nm,hostname=a value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    /* what the scan cannot read for sure is mixed (decoded in order) */
    { "m\\ x,hostname=a value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,hostname=a\\,b value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,host\\ name=a value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,hostname value=1\n", NATS_INGEST_MIXED_HOSTS, NULL },
    { "m,hostname=a value=1\nm,=x value=1\n", NATS_INGEST_ONE_HOST, "a" },
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++) {
        const struct classify_case *c = &classify_cases[i];
        const char *host = NULL;
        size_t len = 0;
        enum nats_ingest_hosts got = nats_ingest_classify(c->body, strlen(c->body), &host, &len);
        if (got != c->want)
            fail_msg("case %zu %s: got %d, want %d", i, c->body, (int)got, (int)c->want);
        if (c->want == NATS_INGEST_ONE_HOST) {
            assert_non_null(host);
            assert_int_equal(len, strlen(c->host));
            assert_memory_equal(host, c->host, len);
        }
    }
}

/* The whole body is scanned, not only its first line. */
static void test_classify_late_second_host(void **state)
{
    char body[64 * 40 + 64];
    size_t n = 0;
    const char *host = NULL;
    size_t len = 0;
    (void)state;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "m,hostname=node7 value=%d\n", i);
    assert_int_equal(nats_ingest_classify(body, n, &host, &len), NATS_INGEST_ONE_HOST);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "m,hostname=node8 value=0");
    assert_int_equal(nats_ingest_classify(body, n, &host, &len), NATS_INGEST_MIXED_HOSTS);
}

static void test_not_configured(void **state)
{
    struct ccms_config cfg = { 0 };
    struct ccms_nats_subscription sub = { .subscribe_to = "metrics", .cluster_tag = "c" };
    struct nats_ingest *ni = (struct nats_ingest *)&cfg;
    (void)state;
    cfg.nats_subscriptions = &sub;
    cfg.nats_subscription_count = 1;
    assert_int_equal(nats_ingest_start(&cfg, NULL, NULL, &ni), 0);
    assert_null(ni);
    cfg.nats_configured = true;
    cfg.nats_subscription_count = 0;
    ni = (struct nats_ingest *)&cfg;
    assert_int_equal(nats_ingest_start(&cfg, NULL, NULL, &ni), 0);
    assert_null(ni);
    nats_ingest_stop(NULL);
}

static void test_status_json(void **state)
{
    struct jbuf b;
    (void)state;
    jbuf_init(&b, 64);
    nats_ingest_status_json(&b);
    assert_false(b.failed);
    jbuf_putc(&b, '\0');
    assert_str_eq(b.data, ",\"nats\":{\"connected\":false,\"server\":\"\",\"subscriptions\":0,"
                          "\"messages\":0,"
                          "\"bytes\":0,\"lines\":0,\"accepted\":0,\"rejected\":0,\"ignored\":0,"
                          "\"errors\":0,\"reconnects\":0,\"dropped\":0,\"js_acked\":0,"
                          "\"js_redeliver_requested\":0,\"js_pending\":0,\"js_ack_pending\":0,"
                          "\"js_redelivered\":0}");
    jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_classify_late_second_host),
        cmocka_unit_test(test_not_configured),
        cmocka_unit_test(test_status_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
