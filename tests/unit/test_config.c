#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

#include "config.h"
#include "log.h"

/* The upstream example files, in the repository's tests/fixtures. */
static const char *testdata_dir(void)
{
    return CCMS_FIXTURE_DIR;
}

static long ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

#define MAIN_MIN "\"main\":{}"
#define METRICS_MIN "\"metrics\":{\"cpu_load\":{\"frequency\":60,\"aggregation\":null}}"
#define STORE_MIN "\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":100}"
#define STORE_WITH(extra) \
    "\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":100," extra "}"
#define CONFIG_MIN "{" MAIN_MIN "," METRICS_MIN "," STORE_MIN "}"

static bool all_zero(const struct ccms_config *c)
{
    static const struct ccms_config zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void expect_ok(const char *text, struct ccms_config *c)
{
    char err[512] = "";
    if (config_parse(text, strlen(text), c, err, sizeof err) != 0)
        fail_msg("rejected: %s\n  config: %s", err, text);
}

/* Expects rejection with a message containing want (or equal to it when exact). */
static void expect_err(const char *text, size_t len, const char *want, bool exact)
{
    struct ccms_config c;
    char err[512] = "";
    memset(&c, 0x5a, sizeof c);
    int rc = config_parse(text, len, &c, err, sizeof err);
    if (rc != -1)
        fail_msg("accepted (rc %d), want error \"%s\"\n  config: %.*s", rc, want, (int)len, text);
    assert_true(all_zero(&c));
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (want != NULL && (exact ? strcmp(err, want) != 0 : strstr(err, want) == NULL))
        fail_msg("error \"%s\", want %s\"%s\"\n  config: %.*s", err, exact ? "" : "one containing ",
                 want, (int)len, text);
}

#define EXPECT_ERR(text, want) expect_err((text), strlen(text), (want), false)

/* ---- the shipped files ---------------------------------------------- */

static void test_upstream_config_loads(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/upstream-config.json", testdata_dir());
    struct ccms_config c;
    char err[512] = "";
    if (config_load(path, &c, err, sizeof err) != 0)
        fail_msg("%s: %s", path, err);

    assert_str_eq(c.addr, "0.0.0.0:8082");
    assert_str_eq(c.https_cert_file, "");
    assert_str_eq(c.https_key_file, "");
    assert_str_eq(c.jwt_public_key, "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0=");
    assert_true(c.nats_configured);
    assert_str_eq(c.nats_address, "nats://0.0.0.0:4222");
    assert_str_eq(c.nats_username, "root");
    assert_str_eq(c.nats_password, "root");
    assert_str_eq(c.nats_creds_file, "");
    assert_str_eq(c.file_format, "wal");
    assert_str_eq(c.checkpoint_dir, "./var/checkpoints");
    assert_int_equal(c.checkpoint_interval_seconds, 12 * 3600);
    assert_int_equal(c.memory_cap_bytes, 100LL * 1000000000LL);
    assert_int_equal(c.retention_seconds, 48 * 3600);
    assert_str_eq(c.cleanup_mode, "archive");
    assert_str_eq(c.cleanup_dir, "./var/archive");
    assert_int_equal(c.nats_subscription_count, 2);
    assert_str_eq(c.nats_subscriptions[0].subscribe_to, "hpc-nats");
    assert_str_eq(c.nats_subscriptions[0].cluster_tag, "fritz");
    assert_str_eq(c.nats_subscriptions[1].subscribe_to, "hpc-nats");
    assert_str_eq(c.nats_subscriptions[1].cluster_tag, "alex");

    assert_int_equal(c.metric_count, 41);
    for (size_t i = 0; i < c.metric_count; i++) {
        assert_int_equal(config_metric_index(&c, c.metrics[i].name), (int)i);
        assert_int_equal(c.metrics[i].frequency, 60);
    }
    int i = config_metric_index(&c, "cpu_load");
    assert_true(i >= 0);
    assert_int_equal(c.metrics[i].aggregation, CCMS_AGG_NONE);
    i = config_metric_index(&c, "acc_mem_used");
    assert_true(i >= 0);
    assert_int_equal(c.metrics[i].aggregation, CCMS_AGG_SUM);
    i = config_metric_index(&c, "vectorization_ratio");
    assert_true(i >= 0);
    assert_int_equal(c.metrics[i].aggregation, CCMS_AGG_AVG);
    assert_int_equal(config_metric_index(&c, "debug_metric") >= 0, 1);
    assert_int_equal(config_metric_index(&c, "cpu_loa"), -1);
    assert_int_equal(config_metric_index(&c, "cpu_load2"), -1);
    assert_int_equal(config_metric_index(&c, ""), -1);
    assert_int_equal(config_metric_index(&c, "zzz"), -1);
    assert_int_equal(config_metric_index(&c, "aaa"), -1);
    config_free(&c);
    assert_true(all_zero(&c));
    config_free(&c); /* twice is harmless */
}

static void test_legacy_config_rejected(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/upstream-config-nats.json", testdata_dir());
    struct ccms_config c;
    char err[512] = "";
    assert_int_equal(config_load(path, &c, err, sizeof err), -1);
    assert_str_eq(err, "main configuration must be present");
    assert_true(all_zero(&c));
}

/* The repository's default config.json (tests run from the repository root). */
static void test_repository_config_loads(void **state)
{
    (void)state;
    struct ccms_config c, up;
    char err[512] = "";
    if (config_load("config.json", &c, err, sizeof err) != 0)
        fail_msg("config.json: %s", err);
    assert_str_eq(c.addr, "127.0.0.1:8082");
    assert_str_eq(c.jwt_public_key, "");
    assert_false(c.nats_configured);
    assert_int_equal(c.nats_subscription_count, 0);
    assert_str_eq(c.file_format, "wal");
    assert_str_eq(c.checkpoint_dir, "./var/checkpoints");
    assert_int_equal(c.checkpoint_interval_seconds, 12 * 3600);
    assert_int_equal(c.retention_seconds, 48 * 3600);
    assert_int_equal(c.memory_cap_bytes, 100LL * 1000000000LL);
    assert_str_eq(c.cleanup_mode, "delete");

    /* same 41 metrics as upstream's example */
    char path[1024];
    snprintf(path, sizeof path, "%s/upstream-config.json", testdata_dir());
    if (config_load(path, &up, err, sizeof err) != 0)
        fail_msg("%s: %s", path, err);
    assert_int_equal(c.metric_count, 41);
    assert_int_equal(c.metric_count, up.metric_count);
    for (size_t i = 0; i < c.metric_count; i++) {
        assert_str_eq(c.metrics[i].name, up.metrics[i].name);
        assert_int_equal(c.metrics[i].frequency, up.metrics[i].frequency);
        assert_int_equal(c.metrics[i].aggregation, up.metrics[i].aggregation);
    }
    config_free(&up);
    config_free(&c);
}

/* ---- defaults and accepted variants ----------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct ccms_config c;
    expect_ok(CONFIG_MIN, &c);
    assert_str_eq(c.addr, "127.0.0.1:8082");
    assert_str_eq(c.https_cert_file, "");
    assert_str_eq(c.https_key_file, "");
    assert_str_eq(c.user, "");
    assert_str_eq(c.group, "");
    assert_str_eq(c.backend_url, "");
    assert_str_eq(c.backend_token, "");
    assert_str_eq(c.metrics_addr, "");
    assert_str_eq(c.jwt_public_key, "");
    assert_str_eq(c.debug_dump_to_file, "");
    assert_false(c.debug_gops);
    assert_int_equal(c.max_body_size, 64LL << 20);
    assert_int_equal(c.max_json_body_size, 64LL << 20);
    assert_int_equal(c.max_line_length, 1LL << 20);
    assert_int_equal(c.max_query_points, 10000000);
    assert_int_equal(c.max_new_levels, 100000);
    assert_int_equal(c.read_timeout, 30);
    assert_int_equal(c.write_timeout, 30);
    assert_int_equal(c.http_threads, 0);
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.metric_count, 1);
    assert_str_eq(c.metrics[0].name, "cpu_load");
    assert_int_equal(c.metrics[0].frequency, 60);
    assert_int_equal(c.metrics[0].aggregation, CCMS_AGG_NONE);
    assert_int_equal(c.retention_seconds, 48 * 3600);
    assert_int_equal(c.memory_cap_bytes, 100LL * 1000000000LL);
    assert_int_equal(c.checkpoint_interval_seconds, 12 * 3600);
    long want_workers = ncpu() / 2 + 1 < 10 ? ncpu() / 2 + 1 : 10;
    assert_int_equal(c.num_workers, want_workers);
    assert_str_eq(c.file_format, "wal");
    assert_str_eq(c.checkpoint_dir, "./var/checkpoints");
    assert_int_equal(c.max_wal_size, 0);
    assert_int_equal(c.fsync, CCMS_FSYNC_NONE);
    assert_str_eq(c.cleanup_mode, "delete");
    assert_str_eq(c.cleanup_dir, "");
    assert_int_equal(c.future_tolerance_seconds, 3600);
    assert_int_equal(c.nats_subscription_count, 0);
    assert_null(c.nats_subscriptions);
    assert_false(c.nats_configured);
    assert_str_eq(c.nats_address, "");
    assert_str_eq(c.nats_username, "");
    assert_str_eq(c.nats_password, "");
    assert_str_eq(c.nats_creds_file, "");
    config_free(&c);
}

static void test_every_key(void **state)
{
    (void)state;
    const char *text =
        "{\"main\":{\"addr\":\"10.0.0.1:9000\",\"https-cert-file\":\"c.pem\","
        "\"https-key-file\":\"k.pem\",\"user\":\"u\",\"group\":\"g\","
        "\"backend-url\":\"http://b:8080\",\"debug\":{\"dump-to-file\":\"d\",\"gops\":true},"
        "\"jwt-public-key\":\"key\",\"backend-token\":\"tok\",\"max-body-size\":1000,"
        "\"max-json-body-size\":2000,\"max-line-length\":3000,\"max-query-points\":4000,"
        "\"max-new-levels-per-request\":5000,\"read-timeout\":\"1m\",\"write-timeout\":\"1500ms\","
        "\"http-threads\":3,\"max-connections\":77,\"metrics-addr\":\"127.0.0.1:9182\"},"
        "\"metrics\":{\"b\":{\"frequency\":10,\"aggregation\":\"sum\"},"
        "\"a\":{\"frequency\":1,\"aggregation\":\"avg\"},\"c\":{\"frequency\":5,\"aggregation\":\"\"}},"
        "\"metric-store\":{\"retention-in-memory\":\"1h30m\",\"memory-cap\":0,"
        "\"checkpoint-interval\":\"10m\",\"num-workers\":7,"
        "\"checkpoints\":{\"file-format\":\"json\",\"directory\":\"/data/ck\",\"max-wal-size\":123,"
        "\"fsync\":\"always\"},\"cleanup\":{\"mode\":\"archive\",\"directory\":\"/data/ar\"},"
        "\"nats-subscriptions\":[{\"subscribe-to\":\"s1\"},{\"subscribe-to\":\"s2.>\","
        "\"cluster-tag\":\"t2\",\"jetstream\":{\"stream\":\"M\",\"durable\":\"d1\"}}],\"debug\":{\"dump-to-file\":\"x\",\"gops\":false},"
        "\"future-tolerance\":\"5m\"},"
        "\"nats\":{\"address\":\"nats://n:4222\",\"username\":\"nu\",\"password\":\"np\","
        "\"creds-file-path\":\"/c.creds\"}}";
    struct ccms_config c;
    expect_ok(text, &c);
    assert_str_eq(c.addr, "10.0.0.1:9000");
    assert_str_eq(c.https_cert_file, "c.pem");
    assert_str_eq(c.https_key_file, "k.pem");
    assert_str_eq(c.user, "u");
    assert_str_eq(c.group, "g");
    assert_str_eq(c.backend_url, "http://b:8080");
    assert_str_eq(c.debug_dump_to_file, "d");
    assert_true(c.debug_gops);
    assert_str_eq(c.jwt_public_key, "key");
    assert_str_eq(c.backend_token, "tok");
    assert_str_eq(c.metrics_addr, "127.0.0.1:9182");
    assert_int_equal(c.max_body_size, 1000);
    assert_int_equal(c.max_json_body_size, 2000);
    assert_int_equal(c.max_line_length, 3000);
    assert_int_equal(c.max_query_points, 4000);
    assert_int_equal(c.max_new_levels, 5000);
    assert_int_equal(c.read_timeout, 60);
    assert_int_equal(c.write_timeout, 2); /* sub-second parts round up */
    assert_int_equal(c.http_threads, 3);
    assert_int_equal(c.max_connections, 77);
    /* metrics are kept sorted by name */
    assert_int_equal(c.metric_count, 3);
    assert_str_eq(c.metrics[0].name, "a");
    assert_int_equal(c.metrics[0].aggregation, CCMS_AGG_AVG);
    assert_int_equal(c.metrics[0].frequency, 1);
    assert_str_eq(c.metrics[1].name, "b");
    assert_int_equal(c.metrics[1].aggregation, CCMS_AGG_SUM);
    assert_str_eq(c.metrics[2].name, "c");
    assert_int_equal(c.metrics[2].aggregation, CCMS_AGG_NONE);
    assert_int_equal(config_metric_index(&c, "b"), 1);
    assert_int_equal(c.retention_seconds, 5400);
    assert_int_equal(c.memory_cap_bytes, 0);
    assert_int_equal(c.checkpoint_interval_seconds, 600);
    assert_int_equal(c.num_workers, 7);
    assert_str_eq(c.file_format, "json");
    assert_str_eq(c.checkpoint_dir, "/data/ck");
    assert_int_equal(c.max_wal_size, 123);
    assert_int_equal(c.fsync, CCMS_FSYNC_ALWAYS);
    assert_str_eq(c.cleanup_mode, "archive");
    assert_str_eq(c.cleanup_dir, "/data/ar");
    assert_int_equal(c.nats_subscription_count, 2);
    assert_str_eq(c.nats_subscriptions[0].subscribe_to, "s1");
    assert_str_eq(c.nats_subscriptions[0].cluster_tag, "");
    assert_str_eq(c.nats_subscriptions[1].subscribe_to, "s2.>");
    assert_str_eq(c.nats_subscriptions[1].cluster_tag, "t2");
    assert_null(c.nats_subscriptions[0].js_stream);
    assert_str_eq(c.nats_subscriptions[1].js_stream, "M");
    assert_str_eq(c.nats_subscriptions[1].js_durable, "d1");
    assert_int_equal(c.future_tolerance_seconds, 300);
    assert_true(c.nats_configured);
    assert_str_eq(c.nats_address, "nats://n:4222");
    assert_str_eq(c.nats_username, "nu");
    assert_str_eq(c.nats_password, "np");
    assert_str_eq(c.nats_creds_file, "/c.creds");
    config_free(&c);
}

static void test_accepted_variants(void **state)
{
    (void)state;
    struct ccms_config c;

    /* cleanup null or {} means delete (upstream crashes / rejects) */
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":null") "}", &c);
    assert_str_eq(c.cleanup_mode, "delete");
    config_free(&c);
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{}") "}", &c);
    assert_str_eq(c.cleanup_mode, "delete");
    config_free(&c);
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{\"directory\":\"/x\"}") "}",
              &c);
    assert_str_eq(c.cleanup_mode, "delete");
    assert_str_eq(c.cleanup_dir, "/x");
    config_free(&c);

    /* checkpoints object without file-format keeps "wal" */
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"directory\":\"d\"}") "}",
              &c);
    assert_str_eq(c.file_format, "wal");
    assert_str_eq(c.checkpoint_dir, "d");
    config_free(&c);

    /* num-workers <= 0 means the default */
    long want_workers = ncpu() / 2 + 1 < 10 ? ncpu() / 2 + 1 : 10;
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"num-workers\":0") "}", &c);
    assert_int_equal(c.num_workers, want_workers);
    config_free(&c);
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"num-workers\":-3") "}", &c);
    assert_int_equal(c.num_workers, want_workers);
    config_free(&c);

    /* retention <= 0 is allowed (disables retention) */
    expect_ok("{" MAIN_MIN "," METRICS_MIN
              ",\"metric-store\":{\"retention-in-memory\":\"-1h\",\"memory-cap\":0}}",
              &c);
    assert_int_equal(c.retention_seconds, -3600);
    config_free(&c);
    expect_ok("{" MAIN_MIN "," METRICS_MIN
              ",\"metric-store\":{\"retention-in-memory\":\"0\",\"memory-cap\":0}}",
              &c);
    assert_int_equal(c.retention_seconds, 0);
    config_free(&c);

    /* null leaves optional values at their defaults */
    expect_ok("{\"main\":{\"addr\":null,\"jwt-public-key\":null,\"max-body-size\":null},"
              METRICS_MIN "," STORE_WITH("\"checkpoints\":null,\"nats-subscriptions\":null,"
                                         "\"checkpoint-interval\":null") ",\"nats\":null}",
              &c);
    assert_str_eq(c.addr, "127.0.0.1:8082");
    assert_int_equal(c.max_body_size, 64LL << 20);
    assert_int_equal(c.checkpoint_interval_seconds, 12 * 3600);
    assert_false(c.nats_configured);
    config_free(&c);

    /* empty addr means the default, not a random port (upstream C4) */
    expect_ok("{\"main\":{\"addr\":\"\"}," METRICS_MIN "," STORE_MIN "}", &c);
    assert_str_eq(c.addr, "127.0.0.1:8082");
    config_free(&c);

    /* nats without address is not configured */
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"nats\":{\"username\":\"u\"}}", &c);
    assert_false(c.nats_configured);
    assert_str_eq(c.nats_username, "u");
    config_free(&c);

    /* an empty metrics object is allowed */
    expect_ok("{" MAIN_MIN ",\"metrics\":{}," STORE_MIN "}", &c);
    assert_int_equal(c.metric_count, 0);
    assert_int_equal(config_metric_index(&c, "cpu_load"), -1);
    config_free(&c);

    /* fsync policies */
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"fsync\":\"interval\"}") "}",
              &c);
    assert_int_equal(c.fsync, CCMS_FSYNC_INTERVAL);
    config_free(&c);
    expect_ok("{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"fsync\":\"none\"}") "}",
              &c);
    assert_int_equal(c.fsync, CCMS_FSYNC_NONE);
    config_free(&c);

    /* only the first JSON value is read */
    expect_ok(CONFIG_MIN " trailing garbage {", &c);
    config_free(&c);
    expect_ok(CONFIG_MIN CONFIG_MIN, &c);
    config_free(&c);

    /* memory-cap at the largest value that fits in bytes */
    expect_ok("{" MAIN_MIN "," METRICS_MIN
              ",\"metric-store\":{\"retention-in-memory\":\"1h\",\"memory-cap\":9223372036}}",
              &c);
    assert_int_equal(c.memory_cap_bytes, 9223372036LL * 1000000000LL);
    config_free(&c);

    /* a fraction of a GB (ours; upstream takes whole GB only) */
    expect_ok("{" MAIN_MIN "," METRICS_MIN
              ",\"metric-store\":{\"retention-in-memory\":\"1h\",\"memory-cap\":0.0015}}",
              &c);
    assert_int_equal(c.memory_cap_bytes, 1500000);
    config_free(&c);
}

/* Runs fn with stderr captured into buf (small outputs only: fits the pipe). */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], buf + n, cap - n - 1)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
}

struct parse_job {
    const char *text;
    struct ccms_config *cfg;
    int rc;
};

static void run_parse(void *arg)
{
    struct parse_job *j = arg;
    char err[256];
    j->rc = config_parse(j->text, strlen(j->text), j->cfg, err, sizeof err);
}

/* Upstream test C1: an unknown aggregation warns and means none. */
static void test_unknown_aggregation_warns(void **state)
{
    (void)state;
    struct ccms_config c;
    struct parse_job job = {
        "{" MAIN_MIN ",\"metrics\":{\"cpu_load\":{\"frequency\":60,\"aggregation\":\"invalid\"},"
        "\"mem\":{\"frequency\":60,\"aggregation\":\"\"}}," STORE_MIN "}",
        &c, -1};
    char out[2048];
    log_init(LOG_WARN, false);
    capture_stderr(run_parse, &job, out, sizeof out);
    assert_int_equal(job.rc, 0);
    assert_int_equal(c.metrics[config_metric_index(&c, "cpu_load")].aggregation, CCMS_AGG_NONE);
    assert_int_equal(c.metrics[config_metric_index(&c, "mem")].aggregation, CCMS_AGG_NONE);
    config_free(&c);
    assert_non_null(strstr(out, "<4>[WARNING]"));
    assert_non_null(strstr(out, "cpu_load"));
    assert_non_null(strstr(out, "invalid"));
    assert_null(strstr(out, "mem")); /* "" is a documented spelling of none */

    /* an unknown file-format warns and means JSON checkpoints, as upstream */
    job.text = "{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"file-format\":\"avro\"}") "}";
    capture_stderr(run_parse, &job, out, sizeof out);
    assert_int_equal(job.rc, 0);
    assert_str_eq(c.file_format, "json");
    config_free(&c);
    assert_non_null(strstr(out, "avro"));
}

/* ---- errors ----------------------------------------------------------- */

static void test_missing_sections(void **state)
{
    (void)state;
    const char *t;
    t = "{}";
    expect_err(t, strlen(t), "main configuration must be present", true);
    t = "{\"main\":null," METRICS_MIN "," STORE_MIN "}";
    expect_err(t, strlen(t), "main configuration must be present", true);
    t = "{" METRICS_MIN "," STORE_MIN "}";
    expect_err(t, strlen(t), "main configuration must be present", true);
    t = "{" MAIN_MIN "," STORE_MIN "}";
    expect_err(t, strlen(t), "missing metrics configuration", true);
    t = "{" MAIN_MIN ",\"metrics\":null," STORE_MIN "}";
    expect_err(t, strlen(t), "missing metrics configuration", true);
    t = "{" MAIN_MIN "," METRICS_MIN "}";
    expect_err(t, strlen(t), "missing metricstore configuration", true);
    t = "{" MAIN_MIN "," METRICS_MIN ",\"metric-store\":null}";
    expect_err(t, strlen(t), "missing metricstore configuration", true);
}

struct err_case {
    const char *text;
    const char *want;
};

static const struct err_case type_and_range_cases[] = {
    {"{\"main\":[]," METRICS_MIN "," STORE_MIN "}", "\"main\" must be an object"},
    {"{\"main\":{\"addr\":5}," METRICS_MIN "," STORE_MIN "}", "\"main.addr\" must be a string"},
    {"{\"main\":{\"user\":true}," METRICS_MIN "," STORE_MIN "}", "\"main.user\" must be a string"},
    {"{\"main\":{\"debug\":{\"gops\":\"yes\"}}," METRICS_MIN "," STORE_MIN "}",
     "\"main.debug.gops\" must be a boolean"},
    {"{\"main\":{\"debug\":[]}," METRICS_MIN "," STORE_MIN "}", "\"main.debug\" must be an object"},
    {"{\"main\":{\"max-body-size\":0}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-body-size\" must be greater than 0"},
    {"{\"main\":{\"max-line-length\":-1}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-line-length\" must be greater than 0"},
    {"{\"main\":{\"max-query-points\":1.5}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-query-points\" must be an integer"},
    {"{\"main\":{\"http-threads\":\"4\"}," METRICS_MIN "," STORE_MIN "}",
     "\"main.http-threads\" must be an integer"},
    {"{\"main\":{\"max-connections\":0}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-connections\" must be greater than 0"},
    {"{\"main\":{\"max-new-levels-per-request\":0}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-new-levels-per-request\" must be greater than 0"},
    {"{\"main\":{\"max-json-body-size\":false}," METRICS_MIN "," STORE_MIN "}",
     "\"main.max-json-body-size\" must be an integer"},
    {"{\"main\":{\"read-timeout\":30}," METRICS_MIN "," STORE_MIN "}",
     "\"main.read-timeout\" must be a duration string"},
    {"{\"main\":{\"read-timeout\":\"30\"}," METRICS_MIN "," STORE_MIN "}",
     "\"main.read-timeout\": invalid duration \"30\""},
    {"{\"main\":{\"write-timeout\":\"0s\"}," METRICS_MIN "," STORE_MIN "}",
     "\"main.write-timeout\" must be greater than 0"},
    {"{\"main\":{\"read-timeout\":\"-5s\"}," METRICS_MIN "," STORE_MIN "}",
     "\"main.read-timeout\" must be greater than 0"},

    {"{" MAIN_MIN ",\"metrics\":[]," STORE_MIN "}", "\"metrics\" must be an object"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":5}," STORE_MIN "}", "\"metrics.x\" must be an object"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"aggregation\":null}}," STORE_MIN "}",
     "\"metrics.x.frequency\" is required"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":0,\"aggregation\":null}}," STORE_MIN "}",
     "\"metrics.x.frequency\" must be an integer > 0"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":-60,\"aggregation\":null}}," STORE_MIN "}",
     "\"metrics.x.frequency\" must be an integer > 0"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":1.5,\"aggregation\":null}}," STORE_MIN "}",
     "\"metrics.x.frequency\" must be an integer > 0"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":\"60\",\"aggregation\":null}}," STORE_MIN "}",
     "\"metrics.x.frequency\" must be an integer > 0"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":99999999999,\"aggregation\":null}}," STORE_MIN
     "}",
     "\"metrics.x.frequency\" must be an integer > 0"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":60}}," STORE_MIN "}",
     "\"metrics.x.aggregation\" is required"},
    {"{" MAIN_MIN ",\"metrics\":{\"x\":{\"frequency\":60,\"aggregation\":1}}," STORE_MIN "}",
     "\"metrics.x.aggregation\" must be \"sum\", \"avg\" or null"},

    {"{" MAIN_MIN "," METRICS_MIN ",\"metric-store\":5}", "\"metric-store\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN ",\"metric-store\":{\"memory-cap\":100}}",
     "\"metric-store.retention-in-memory\" is required"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":48,\"memory-cap\":100}}",
     "\"metric-store.retention-in-memory\" must be a duration string"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":\"2d\",\"memory-cap\":100}}",
     "\"metric-store.retention-in-memory\": invalid duration \"2d\""},
    {"{" MAIN_MIN "," METRICS_MIN ",\"metric-store\":{\"retention-in-memory\":\"48h\"}}",
     "\"metric-store.memory-cap\" is required"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":null}}",
     "\"metric-store.memory-cap\" is required"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":-1}}",
     "\"metric-store.memory-cap\" must be a number >= 0"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":9223372037}}",
     "\"metric-store.memory-cap\" must be a number >= 0"},
    {"{" MAIN_MIN "," METRICS_MIN
     ",\"metric-store\":{\"retention-in-memory\":\"48h\",\"memory-cap\":\"100\"}}",
     "\"metric-store.memory-cap\" must be a number"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoint-interval\":\"0s\"") "}",
     "\"metric-store.checkpoint-interval\" must be greater than 0"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoint-interval\":\"-1h\"") "}",
     "\"metric-store.checkpoint-interval\" must be greater than 0"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoint-interval\":\"12\"") "}",
     "\"metric-store.checkpoint-interval\": invalid duration \"12\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"num-workers\":\"4\"") "}",
     "\"metric-store.num-workers\" must be an integer"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"future-tolerance\":\"-1s\"") "}",
     "\"metric-store.future-tolerance\" must not be negative"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"future-tolerance\":3600") "}",
     "\"metric-store.future-tolerance\" must be a duration string"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":5") "}",
     "\"metric-store.checkpoints\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"max-wal-size\":-1}") "}",
     "\"metric-store.checkpoints.max-wal-size\" must be >= 0"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"fsync\":\"sometimes\"}") "}",
     "\"metric-store.checkpoints.fsync\" must be \"none\", \"interval\" or \"always\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"fsync\":true}") "}",
     "\"metric-store.checkpoints.fsync\" must be \"none\", \"interval\" or \"always\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"directory\":\"\"}") "}",
     "\"metric-store.checkpoints.directory\" must not be empty"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"file-format\":1}") "}",
     "\"metric-store.checkpoints.file-format\" must be a string"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{\"mode\":\"keep\"}") "}",
     "\"metric-store.cleanup.mode\" must be \"delete\" or \"archive\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{\"mode\":\"archive\"}") "}",
     "\"metric-store.cleanup.directory\" is required when \"metric-store.cleanup.mode\" is "
     "\"archive\""},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"cleanup\":{\"mode\":\"archive\",\"directory\":\"\"}") "}",
     "\"metric-store.cleanup.directory\" is required"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{\"directory\":5}") "}",
     "\"metric-store.cleanup.directory\" must be a string"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":\"delete\"") "}",
     "\"metric-store.cleanup\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"nats-subscriptions\":{}") "}",
     "\"metric-store.nats-subscriptions\" must be an array of objects"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"nats-subscriptions\":[5]") "}",
     "\"metric-store.nats-subscriptions[0]\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"nats-subscriptions\":[{\"cluster-tag\":\"a\"}]") "}",
     "\"metric-store.nats-subscriptions[0].subscribe-to\" is required"},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\"},{\"subscribe-to\":1}]") "}",
     "\"metric-store.nats-subscriptions[1].subscribe-to\" must be a string"},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\",\"cluster-tag\":[]}]") "}",
     "\"metric-store.nats-subscriptions[0].cluster-tag\" must be a string"},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\",\"jetstream\":1}]") "}",
     "\"metric-store.nats-subscriptions[0].jetstream\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\",\"jetstream\":{\"stream\":\"S\"}}]") "}",
     "\"metric-store.nats-subscriptions[0].jetstream\" needs \"stream\""},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\",\"jetstream\":{\"stream\":\"S\",\"durable\":\"d\",\"x\":1}}]") "}",
     "unknown key \"metric-store.nats-subscriptions[0].jetstream.x\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"debug\":{\"gops\":1}") "}",
     "\"metric-store.debug.gops\" must be a boolean"},

    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"nats\":[]}", "\"nats\" must be an object"},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"nats\":{\"address\":5}}",
     "\"nats.address\" must be a string"},
};

static void test_type_and_range_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof type_and_range_cases / sizeof type_and_range_cases[0]; i++)
        EXPECT_ERR(type_and_range_cases[i].text, type_and_range_cases[i].want);
}

static const struct err_case unknown_key_cases[] = {
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"foo\":1}", "unknown key \"foo\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"metric-store-file\":\"x.json\"}",
     "unknown key \"metric-store-file\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"http-api\":{}}", "unknown key \"http-api\""},
    {"{\"main\":{\"adr\":\"x\"}," METRICS_MIN "," STORE_MIN "}", "unknown key \"main.adr\""},
    {"{\"main\":{\"debug\":{\"gopz\":true}}," METRICS_MIN "," STORE_MIN "}",
     "unknown key \"main.debug.gopz\""},
    {"{" MAIN_MIN ",\"metrics\":{\"cpu\":{\"frequency\":60,\"aggregation\":null,\"unit\":\"%\"}},"
     STORE_MIN "}",
     "unknown key \"metrics.cpu.unit\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"retention\":\"1h\"") "}",
     "unknown key \"metric-store.retention\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"checkpoints\":{\"intervall\":\"1h\"}") "}",
     "unknown key \"metric-store.checkpoints.intervall\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"cleanup\":{\"dir\":\"x\"}") "}",
     "unknown key \"metric-store.cleanup.dir\""},
    {"{" MAIN_MIN "," METRICS_MIN
     "," STORE_WITH("\"nats-subscriptions\":[{\"subscribe-to\":\"a\"},{\"subject\":\"b\"}]") "}",
     "unknown key \"metric-store.nats-subscriptions[1].subject\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_WITH("\"debug\":{\"x\":1}") "}",
     "unknown key \"metric-store.debug.x\""},
    {"{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"nats\":{\"address\":\"n\",\"user\":\"u\"}}",
     "unknown key \"nats.user\""},
    /* key bytes that would break the message line are shown escaped */
    {"{\"main\":{\"a\\\"b\\n\":1}," METRICS_MIN "," STORE_MIN "}",
     "unknown key \"main.a\\x22b\\x0a\""},
};

static void test_unknown_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof unknown_key_cases / sizeof unknown_key_cases[0]; i++)
        expect_err(unknown_key_cases[i].text, strlen(unknown_key_cases[i].text),
                   unknown_key_cases[i].want, true);
}

/* ---- file references ---------------------------------------------------- */

static void write_temp(char *path_template, const char *content)
{
    int fd = mkstemp(path_template);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
}

static void test_file_references(void **state)
{
    (void)state;
    char main_path[] = "/tmp/ccms-test-main-XXXXXX";
    char metrics_path[] = "/tmp/ccms-test-metrics-XXXXXX";
    char nats_path[] = "/tmp/ccms-test-nats-XXXXXX";
    char bad_path[] = "/tmp/ccms-test-bad-XXXXXX";
    char arr_path[] = "/tmp/ccms-test-arr-XXXXXX";
    char top_path[] = "/tmp/ccms-test-top-XXXXXX";
    write_temp(main_path, "{\"addr\":\"1.2.3.4:5\"}");
    write_temp(metrics_path, "{\"m1\":{\"frequency\":10,\"aggregation\":\"sum\"},"
                             "\"m2\":{\"frequency\":20,\"aggregation\":\"avg\"}}");
    write_temp(nats_path, "{\"address\":\"nats://x:4222\"}");
    write_temp(bad_path, "{\"addr\":");
    write_temp(arr_path, "[1,2]");

    char text[2048];
    struct ccms_config c;
    snprintf(text, sizeof text,
             "{\"main-file\":\"%s\",\"metrics-file\":\"%s\"," STORE_MIN ",\"nats-file\":\"%s\"}",
             main_path, metrics_path, nats_path);
    expect_ok(text, &c);
    assert_str_eq(c.addr, "1.2.3.4:5");
    assert_int_equal(c.metric_count, 2);
    assert_int_equal(c.metrics[config_metric_index(&c, "m2")].frequency, 20);
    assert_true(c.nats_configured);
    assert_str_eq(c.nats_address, "nats://x:4222");
    config_free(&c);

    /* config_load resolves references the same way */
    snprintf(text, sizeof text, "{\"main-file\":\"%s\"," METRICS_MIN "," STORE_MIN "}", main_path);
    write_temp(top_path, text);
    char err[512];
    assert_int_equal(config_load(top_path, &c, err, sizeof err), 0);
    assert_str_eq(c.addr, "1.2.3.4:5");
    config_free(&c);

    /* both forms of one section */
    snprintf(text, sizeof text, "{" MAIN_MIN ",\"main-file\":\"%s\"," METRICS_MIN "," STORE_MIN "}",
             main_path);
    EXPECT_ERR(text, "both \"main\" and \"main-file\"");

    /* unreadable, malformed, wrong type */
    snprintf(text, sizeof text, "{\"main-file\":\"/nonexistent/ccms.json\"," METRICS_MIN
             "," STORE_MIN "}");
    EXPECT_ERR(text, "main-file \"/nonexistent/ccms.json\": No such file or directory");
    snprintf(text, sizeof text, "{" MAIN_MIN ",\"metrics-file\":\"%s\"," STORE_MIN "}", bad_path);
    EXPECT_ERR(text, "invalid JSON at line 1");
    snprintf(text, sizeof text, "{" MAIN_MIN "," METRICS_MIN "," STORE_MIN ",\"nats-file\":\"%s\"}",
             arr_path);
    EXPECT_ERR(text, "must be a JSON object");
    EXPECT_ERR("{\"main-file\":42," METRICS_MIN "," STORE_MIN "}",
               "\"main-file\" must be a file path string");
    /* devices and directories are refused without reading them */
    EXPECT_ERR("{\"main-file\":\"/dev/zero\"," METRICS_MIN "," STORE_MIN "}",
               "not a regular file");
    EXPECT_ERR("{\"main-file\":\"/tmp\"," METRICS_MIN "," STORE_MIN "}", "not a regular file");
    /* a referenced section is decoded as strictly as an inline one */
    snprintf(text, sizeof text, "{\"main-file\":\"%s\",\"metrics-file\":\"%s\"," STORE_MIN "}",
             metrics_path, metrics_path);
    EXPECT_ERR(text, "unknown key \"main.m1\"");

    unlink(main_path);
    unlink(metrics_path);
    unlink(nats_path);
    unlink(bad_path);
    unlink(arr_path);
    unlink(top_path);
}

/* ---- garbage ------------------------------------------------------------ */

static void test_garbage(void **state)
{
    (void)state;
    expect_err("", 0, "invalid JSON at line", false);
    expect_err("[]", 2, "must be a JSON object", false);
    expect_err("{", 1, "invalid JSON at line 1", false);
    expect_err("null", 4, "invalid JSON", false);
    expect_err("42", 2, "invalid JSON", false);
    expect_err("\"main\"", 6, "invalid JSON", false);
    expect_err("{\"main\":", 8, "invalid JSON", false);
    expect_err("\xff\xfe\x00junk", 7, "invalid JSON", false);
    expect_err("{\"main\":{}}\0", 12, "missing metrics configuration", true);
    expect_err("{\"ma\0in\":{}}", 12, "invalid JSON", false);
    expect_err("{\"main\":{\"addr\":\"\xc3\x28\"}}", 22, "invalid JSON", false);
    EXPECT_ERR("{\n  \"main\": {},\n  \"metrics\": {,}\n}", "invalid JSON at line 3, column");
    EXPECT_ERR("{\"main\":{\"max-body-size\":99999999999999999999999}}", "invalid JSON");

    /* deep nesting */
    char deep[20001];
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = '\0';
    expect_err(deep, 20000, NULL, false);

    /* random binary junk, with and without a valid prefix */
    uint64_t x = 0x2545F4914F6CDD1DULL;
    char junk[300];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)(iter % 299) + 1;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk[i] = (char)x;
        }
        if (iter % 2 == 1 && len > 10)
            memcpy(junk, "{\"main\":{", 9);
        expect_err(junk, len, NULL, false);
    }
}

static void test_load_errors_and_small_err_buffer(void **state)
{
    (void)state;
    struct ccms_config c;
    char err[512];
    memset(&c, 0x33, sizeof c);
    assert_int_equal(config_load("/nonexistent/dir/config.json", &c, err, sizeof err), -1);
    assert_true(all_zero(&c));
    assert_non_null(strstr(err, "/nonexistent/dir/config.json"));
    assert_non_null(strstr(err, "No such file or directory"));

    assert_int_equal(config_load("/tmp", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));

    /* a syntax error in a file names the file, line and column */
    char path[] = "/tmp/ccms-test-syntax-XXXXXX";
    write_temp(path, "{\n \"main\": {}\n \"metrics\": {}\n}\n");
    assert_int_equal(config_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 3, column"));
    unlink(path);

    /* the message is truncated to the buffer, never overflows it */
    char tiny[8];
    memset(tiny, 'Z', sizeof tiny);
    assert_int_equal(config_parse("{}", 2, &c, tiny, sizeof tiny), -1);
    assert_int_equal(tiny[7], '\0');
    assert_int_equal(strncmp(tiny, "main co", 7), 0);
    /* no buffer at all */
    assert_int_equal(config_parse("{}", 2, &c, NULL, 0), -1);
    assert_true(all_zero(&c));
}

static void test_metric_index_many(void **state)
{
    (void)state;
    /* 500 metrics in reverse order: every one is found at its sorted index */
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "{" MAIN_MIN "," STORE_MIN ",\"metrics\":{");
    for (int i = 499; i >= 0; i--)
        n += (size_t)snprintf(text + n, cap - n, "%s\"m%03d\":{\"frequency\":%d,\"aggregation\":\"sum\"}",
                              i == 499 ? "" : ",", i, i + 1);
    snprintf(text + n, cap - n, "}}");
    struct ccms_config c;
    expect_ok(text, &c);
    assert_int_equal(c.metric_count, 500);
    char name[16];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "m%03d", i);
        int idx = config_metric_index(&c, name);
        assert_int_equal(idx, i);
        assert_int_equal(c.metrics[idx].frequency, i + 1);
    }
    assert_int_equal(config_metric_index(&c, "m500"), -1);
    assert_int_equal(config_metric_index(&c, "m"), -1);
    assert_int_equal(config_metric_index(NULL, "m001"), -1);
    config_free(&c);
    free(text);
}

/* The store keeps 16-bit metric indexes: 65,535 metrics load, one more
 * is refused with a message that says why. */
static void test_metric_count_limit(void **state)
{
    (void)state;
    size_t cap = 65536 * 48 + 256;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int count = 65535; count <= 65536; count++) {
        size_t n = (size_t)snprintf(text, cap, "{" MAIN_MIN "," STORE_MIN ",\"metrics\":{");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(text + n, cap - n, "%s\"m%05d\":{\"frequency\":60,"
                                  "\"aggregation\":null}", i ? "," : "", i);
        snprintf(text + n, cap - n, "}}");
        if (count == 65535) {
            struct ccms_config c;
            expect_ok(text, &c);
            assert_int_equal(c.metric_count, 65535);
            config_free(&c);
        } else {
            EXPECT_ERR(text, "\"metrics\" has 65536 entries; at most 65535 are supported");
        }
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_config_loads),
        cmocka_unit_test(test_legacy_config_rejected),
        cmocka_unit_test(test_repository_config_loads),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_unknown_aggregation_warns),
        cmocka_unit_test(test_missing_sections),
        cmocka_unit_test(test_type_and_range_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_file_references),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_load_errors_and_small_err_buffer),
        cmocka_unit_test(test_metric_index_many),
        cmocka_unit_test(test_metric_count_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
