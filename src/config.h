/*
 * config — config.json -> struct ccms_config: parsing, validation, defaults.
 *
 * Accepts every cc-metric-store v1.5.4 configuration (README, "Configuration") plus
 * our optional additions (README "Configuration"). Unknown keys anywhere are
 * rejected with a message naming the key path. Durations are Go duration
 * strings ("48h", "1h30m"). The struct owns all its strings; config_free()
 * releases them. Nothing here starts threads or touches the store.
 */
#ifndef CCMS_CONFIG_H
#define CCMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ccms_aggregation { CCMS_AGG_NONE = 0, CCMS_AGG_SUM, CCMS_AGG_AVG };

enum ccms_fsync_policy { CCMS_FSYNC_NONE = 0, CCMS_FSYNC_INTERVAL, CCMS_FSYNC_ALWAYS };

struct ccms_metric_config {
    char *name;
    int64_t frequency;                  /* seconds, > 0 */
    enum ccms_aggregation aggregation;  /* unknown strings warn and mean NONE, as upstream */
};

struct ccms_nats_subscription {
    char *subscribe_to;                 /* subject, wildcards allowed */
    char *cluster_tag;                  /* default cluster, "" if absent */
    /* "jetstream" (ours): {"stream": …, "durable": …}; both NULL = core NATS */
    char *js_stream;
    char *js_durable;
};

struct ccms_config {
    /* section "main" (upstream keys) */
    char *addr;                         /* "host:port"; default "127.0.0.1:8082" when absent */
    char *metrics_addr;                 /* our addition: GET /metrics alone, without auth, on
                                           this "host:port"; "" = none */
    char *https_cert_file;
    char *https_key_file;
    char *user;
    char *group;
    char *backend_url;
    char *jwt_public_key;
    char *debug_dump_to_file;           /* accepted, unused (as upstream) */
    bool debug_gops;                    /* accepted, no effect in C */

    /* section "main" (our additions; see README) */
    char *backend_token;                /* "backend-token": bearer token for the node provider */
    int64_t max_body_size;              /* "max-body-size" bytes for /api/write; 413 beyond. default 64 MiB */
    int64_t max_json_body_size;         /* "max-json-body-size" bytes for query/free/healthcheck. default 64 MiB */
    int64_t max_line_length;            /* "max-line-length" bytes per line-protocol line. default 1 MiB */
    int64_t max_query_points;           /* "max-query-points" per selector (incl. padding). default 10,000,000 */
    int64_t max_request_points;         /* "max-query-points-per-request": data points one query
                                           request may answer in all. default 20,000,000 */
    int64_t max_new_levels;             /* "max-new-levels-per-request". default 100,000 */
    int64_t read_timeout;               /* "read-timeout" seconds: idle limit and whole-request limit. default 30 */
    int64_t write_timeout;              /* "write-timeout" seconds. default 30 */
    int64_t http_threads;               /* "http-threads": 0 (default) = a thread per connection,
                                           N > 0 = a pool of N threads */
    int64_t max_connections;            /* "max-connections"; default 1024 */
    int64_t max_client_connections;     /* "max-connections-per-client": connections one IP
                                           address may hold; default 128 */

    /* section "metrics" */
    struct ccms_metric_config *metrics;
    size_t metric_count;

    /* section "metric-store" */
    int64_t retention_seconds;          /* "retention-in-memory" (required); <= 0 disables retention */
    int64_t memory_cap_bytes;           /* "memory-cap" GB * 1e9 (required); 0 = unlimited */
    int64_t checkpoint_interval_seconds;/* default 12h; must be > 0 */
    int64_t num_workers;                /* default min(ncpu/2+1, 10) when absent or <= 0 */
    char *file_format;                  /* "wal" (default) or "json" */
    char *checkpoint_dir;               /* default "./var/checkpoints" */
    int64_t max_wal_size;               /* bytes, 0 = unlimited */
    bool write_go_formats;              /* "checkpoints.write-go-formats" (ours): with
                                           file-format "wal", write the Go store's .bin and
                                           current.wal instead of the native formats */
    enum ccms_fsync_policy fsync;       /* "checkpoints.fsync" (ours): none | interval | always */
    char *cleanup_mode;                 /* "delete" (default) or "archive" */
    char *cleanup_dir;                  /* required for "archive" */
    int64_t future_tolerance_seconds;   /* "future-tolerance" (ours), default 1h */
    struct ccms_nats_subscription *nats_subscriptions;
    size_t nats_subscription_count;

    /* section "nats" (optional) */
    bool nats_configured;               /* section present with a non-empty address */
    char *nats_address;
    char *nats_username;
    char *nats_password;
    char *nats_creds_file;
};

/*
 * Reads and validates the file at path. On success fills *out (caller frees
 * with config_free) and returns 0. On failure returns -1 and writes a
 * one-line, human-readable reason into err (e.g. "unknown key
 * \"metric-store.retention\""); *out is then zeroed and owns nothing.
 * Warnings (e.g. unknown aggregation) are logged through log.h.
 */
int config_load(const char *path, struct ccms_config *out, char *err, size_t err_len);

/* Same as config_load but from a JSON text (used by tests and the fuzzer). */
int config_parse(const char *json_text, size_t len, struct ccms_config *out,
                 char *err, size_t err_len);

void config_free(struct ccms_config *cfg);

/* Index of the metric in cfg->metrics, or -1. */
int config_metric_index(const struct ccms_config *cfg, const char *name);

#endif
