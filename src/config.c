/*
 * config — see config.h.
 *
 * The JSON text is parsed with jansson (first value only, as upstream), the
 * `<name>-file` references are resolved, and each section is decoded
 * strictly: every object is first checked against its list of known keys,
 * then its values are type-checked and range-checked. Defaults are filled in
 * before decoding, so a key that is absent (or null) keeps its default.
 * Error messages name the offending key by its dotted path.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util/duration.h"

/* Config files and referenced section files larger than this are refused. */
#define CFG_MAX_FILE_SIZE (64 * 1024 * 1024)
/* Longest rendered key path in a message; longer ones end in "...". */
#define CFG_PATH_MAX 256
/* A metric sampled less often than once a year is a typo. */
#define CFG_MAX_FREQUENCY (365LL * 24 * 3600)
/* The store keeps a 16-bit metric index per series (STORE_MAX_METRICS). */
#define CFG_MAX_METRICS 65535
#define CFG_NS_PER_S 1000000000LL
#define CFG_GB 1000000000LL

struct cfg_ctx {
    char *err;
    size_t err_len;
};

__attribute__((format(printf, 2, 3))) static int cfg_fail(struct cfg_ctx *ctx, const char *fmt, ...)
{
    if (ctx->err != NULL && ctx->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, ctx->err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int cfg_oom(struct cfg_ctx *ctx)
{
    return cfg_fail(ctx, "out of memory while loading the configuration");
}

/*
 * Renders parent + "." + key (or just key when parent is empty) into dst,
 * with quotes, backslashes and control bytes shown as \xNN so the message
 * stays on one line; truncated with "..." if too long.
 */
static void cfg_path(char *dst, const char *parent, const char *key)
{
    size_t n = 0;
    size_t limit = CFG_PATH_MAX - 4; /* room for "..." and NUL */
    bool truncated = false;
    if (parent != NULL && parent[0] != '\0') {
        size_t pl = strlen(parent);
        if (pl > limit) {
            pl = limit;
            truncated = true;
        }
        memcpy(dst, parent, pl);
        n = pl;
        if (n < limit)
            dst[n++] = '.';
    }
    for (const unsigned char *k = (const unsigned char *)key; *k != '\0' && !truncated; k++) {
        if (*k < 0x20 || *k == 0x7f || *k == '"' || *k == '\\') {
            if (n + 4 > limit) {
                truncated = true;
                break;
            }
            n += (size_t)snprintf(dst + n, 5, "\\x%02x", *k);
        } else {
            if (n + 1 > limit) {
                truncated = true;
                break;
            }
            dst[n++] = (char)*k;
        }
    }
    if (truncated) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static int cfg_check_keys(struct cfg_ctx *ctx, json_t *obj, const char *path,
                          const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        (void)value;
        bool known = false;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(key, *a) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            char p[CFG_PATH_MAX];
            cfg_path(p, path, key);
            return cfg_fail(ctx, "unknown key \"%s\"", p);
        }
    }
    return 0;
}

/* Present and not null. */
static json_t *cfg_get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int cfg_type_error(struct cfg_ctx *ctx, const char *path, const char *key, const char *what)
{
    char p[CFG_PATH_MAX];
    cfg_path(p, path, key);
    return cfg_fail(ctx, "\"%s\" must be %s", p, what);
}

/* Replaces *dst (owned) with the string at key, if present. */
static int cfg_string(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key,
                      char **dst)
{
    json_t *v = cfg_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return cfg_type_error(ctx, path, key, "a string");
    /* jansson strings may hold NUL bytes only with JSON_ALLOW_NUL, which we
     * do not pass, so the C string is the whole value. */
    char *copy = strdup(json_string_value(v));
    if (copy == NULL)
        return cfg_oom(ctx);
    free(*dst);
    *dst = copy;
    return 0;
}

static int cfg_int(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key,
                   int64_t *dst, bool *present)
{
    json_t *v = cfg_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return cfg_type_error(ctx, path, key, "an integer");
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

static int cfg_bool(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key, bool *dst)
{
    json_t *v = cfg_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return cfg_type_error(ctx, path, key, "a boolean");
    *dst = json_is_true(v);
    return 0;
}

/* Positive durations round up to whole seconds so that "500ms" never turns
 * into 0 ("disabled"); negative ones truncate toward zero. */
static int64_t cfg_ns_to_seconds(int64_t ns)
{
    if (ns > 0)
        return ns / CFG_NS_PER_S + (ns % CFG_NS_PER_S != 0);
    return ns / CFG_NS_PER_S;
}

static int cfg_duration(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key,
                        int64_t *seconds, bool *present)
{
    json_t *v = cfg_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return cfg_type_error(ctx, path, key, "a duration string such as \"30s\" or \"12h\"");
    int64_t ns;
    if (duration_parse(json_string_value(v), &ns) != 0) {
        char p[CFG_PATH_MAX], val[CFG_PATH_MAX];
        cfg_path(p, path, key);
        cfg_path(val, NULL, json_string_value(v));
        return cfg_fail(ctx, "\"%s\": invalid duration \"%s\" (use e.g. \"30s\", \"1h30m\", \"48h\")",
                        p, val);
    }
    *seconds = cfg_ns_to_seconds(ns);
    return 0;
}

/* The object at key, NULL when absent or null. */
static int cfg_object(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key,
                      json_t **dst)
{
    json_t *v = cfg_get(obj, key);
    *dst = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return cfg_type_error(ctx, path, key, "an object");
    *dst = v;
    return 0;
}

static int cfg_range_error(struct cfg_ctx *ctx, const char *path, const char *key, const char *what)
{
    char p[CFG_PATH_MAX];
    cfg_path(p, path, key);
    return cfg_fail(ctx, "\"%s\" %s", p, what);
}

static long cfg_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

/* ---- files ------------------------------------------------------------ */

/*
 * Reads a whole file (at most CFG_MAX_FILE_SIZE). With regular_only, devices
 * and FIFOs are refused without blocking on them (the -file references come
 * from the config text, which the fuzzer also controls).
 * Returns 0, or -1 with a message in ctx prefixed by what.
 */
static int cfg_read_file(struct cfg_ctx *ctx, const char *what, const char *path, bool regular_only,
                         char **data, size_t *len)
{
    char shown[CFG_PATH_MAX];
    cfg_path(shown, NULL, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cfg_fail(ctx, "%s \"%s\": %s", what, shown, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cfg_fail(ctx, "%s \"%s\": %s", what, shown, strerror(e));
    }
    if (S_ISDIR(st.st_mode) || (regular_only && !S_ISREG(st.st_mode))) {
        close(fd);
        return cfg_fail(ctx, "%s \"%s\": not a regular file", what, shown);
    }
    if (!S_ISREG(st.st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }

    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < CFG_MAX_FILE_SIZE
                     ? (size_t)st.st_size + 1
                     : 4096;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return cfg_oom(ctx);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > CFG_MAX_FILE_SIZE) {
                free(buf);
                close(fd);
                return cfg_fail(ctx, "%s \"%s\": larger than %d bytes", what, shown,
                                CFG_MAX_FILE_SIZE);
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                close(fd);
                return cfg_oom(ctx);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return cfg_fail(ctx, "%s \"%s\": %s", what, shown, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

/* Parses the first JSON value of text; origin names the source in messages
 * (NULL for config text given directly). Returns a new reference or NULL. */
static json_t *cfg_parse_json(struct cfg_ctx *ctx, const char *origin, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_DISABLE_EOF_CHECK, &jerr);
    if (root == NULL) {
        if (origin != NULL)
            cfg_fail(ctx, "%s: invalid JSON at line %d, column %d: %s", origin, jerr.line,
                     jerr.column, jerr.text);
        else
            cfg_fail(ctx, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                     jerr.text);
    }
    return root;
}

/*
 * Resolves section `name` of root, either inline or via "<name>-file".
 * *section gets a new reference, or NULL when the section is absent or null.
 */
static int cfg_section(struct cfg_ctx *ctx, json_t *root, const char *name, json_t **section)
{
    char file_key[32];
    snprintf(file_key, sizeof file_key, "%s-file", name);
    json_t *inline_v = cfg_get(root, name);
    json_t *file_v = cfg_get(root, file_key);
    *section = NULL;

    if (inline_v != NULL && file_v != NULL)
        return cfg_fail(ctx, "both \"%s\" and \"%s\" are given; use one of them", name, file_key);
    if (file_v != NULL) {
        if (!json_is_string(file_v))
            return cfg_type_error(ctx, NULL, file_key, "a file path string");
        char *text;
        size_t len;
        if (cfg_read_file(ctx, file_key, json_string_value(file_v), true, &text, &len) != 0)
            return -1;
        char origin[CFG_PATH_MAX + 40];
        char shown[CFG_PATH_MAX];
        cfg_path(shown, NULL, json_string_value(file_v));
        snprintf(origin, sizeof origin, "%s \"%s\"", file_key, shown);
        json_t *v = cfg_parse_json(ctx, origin, text, len);
        free(text);
        if (v == NULL)
            return -1;
        if (!json_is_object(v)) {
            json_decref(v);
            return cfg_fail(ctx, "%s: the \"%s\" section must be a JSON object", origin, name);
        }
        *section = v;
        return 0;
    }
    if (inline_v != NULL) {
        if (!json_is_object(inline_v))
            return cfg_type_error(ctx, NULL, name, "an object");
        *section = json_incref(inline_v);
    }
    return 0;
}

/* ---- sections --------------------------------------------------------- */

static int cfg_debug(struct cfg_ctx *ctx, json_t *parent, const char *path, char **dump_to_file,
                     bool *gops)
{
    static const char *const keys[] = {"dump-to-file", "gops", NULL};
    json_t *dbg;
    char p[CFG_PATH_MAX];
    if (cfg_object(ctx, parent, path, "debug", &dbg) != 0)
        return -1;
    if (dbg == NULL)
        return 0;
    cfg_path(p, path, "debug");
    if (cfg_check_keys(ctx, dbg, p, keys) != 0)
        return -1;
    if (cfg_bool(ctx, dbg, p, "gops", gops) != 0)
        return -1;
    if (dump_to_file != NULL)
        return cfg_string(ctx, dbg, p, "dump-to-file", dump_to_file);
    char *ignored = NULL;
    int rc = cfg_string(ctx, dbg, p, "dump-to-file", &ignored);
    free(ignored);
    return rc;
}

/* An optional positive integer limit. */
static int cfg_limit(struct cfg_ctx *ctx, json_t *obj, const char *path, const char *key,
                     int64_t *dst)
{
    bool present;
    if (cfg_int(ctx, obj, path, key, dst, &present) != 0)
        return -1;
    if (present && *dst <= 0)
        return cfg_range_error(ctx, path, key, "must be greater than 0");
    return 0;
}

static int cfg_main(struct cfg_ctx *ctx, json_t *sec, struct ccms_config *c)
{
    static const char *const keys[] = {
        "addr", "https-cert-file", "https-key-file", "user", "group", "backend-url",
        "debug", "jwt-public-key", "backend-token", "max-body-size", "max-json-body-size",
        "max-line-length", "max-query-points", "max-query-points-per-request",
        "max-new-levels-per-request", "max-connections-per-client", "read-timeout",
        "write-timeout", "http-threads", "max-connections", "metrics-addr", NULL,
    };
    const char *p = "main";
    if (cfg_check_keys(ctx, sec, p, keys) != 0)
        return -1;
    if (cfg_string(ctx, sec, p, "addr", &c->addr) != 0 ||
        cfg_string(ctx, sec, p, "https-cert-file", &c->https_cert_file) != 0 ||
        cfg_string(ctx, sec, p, "https-key-file", &c->https_key_file) != 0 ||
        cfg_string(ctx, sec, p, "user", &c->user) != 0 ||
        cfg_string(ctx, sec, p, "group", &c->group) != 0 ||
        cfg_string(ctx, sec, p, "backend-url", &c->backend_url) != 0 ||
        cfg_string(ctx, sec, p, "jwt-public-key", &c->jwt_public_key) != 0 ||
        cfg_string(ctx, sec, p, "backend-token", &c->backend_token) != 0 ||
        cfg_string(ctx, sec, p, "metrics-addr", &c->metrics_addr) != 0 ||
        cfg_debug(ctx, sec, p, &c->debug_dump_to_file, &c->debug_gops) != 0)
        return -1;
    if (c->addr[0] == '\0') {
        /* upstream would listen on a random port of every interface */
        char *def = strdup("127.0.0.1:8082");
        if (def == NULL)
            return cfg_oom(ctx);
        free(c->addr);
        c->addr = def;
    }

    if (cfg_limit(ctx, sec, p, "max-body-size", &c->max_body_size) != 0 ||
        cfg_limit(ctx, sec, p, "max-json-body-size", &c->max_json_body_size) != 0 ||
        cfg_limit(ctx, sec, p, "max-line-length", &c->max_line_length) != 0 ||
        cfg_limit(ctx, sec, p, "max-query-points", &c->max_query_points) != 0 ||
        cfg_limit(ctx, sec, p, "max-query-points-per-request", &c->max_request_points) != 0 ||
        cfg_limit(ctx, sec, p, "max-new-levels-per-request", &c->max_new_levels) != 0 ||
        cfg_limit(ctx, sec, p, "http-threads", &c->http_threads) != 0 ||
        cfg_limit(ctx, sec, p, "max-connections", &c->max_connections) != 0 ||
        cfg_limit(ctx, sec, p, "max-connections-per-client", &c->max_client_connections) != 0)
        return -1;

    bool present;
    if (cfg_duration(ctx, sec, p, "read-timeout", &c->read_timeout, &present) != 0)
        return -1;
    if (present && c->read_timeout <= 0)
        return cfg_range_error(ctx, p, "read-timeout", "must be greater than 0");
    if (cfg_duration(ctx, sec, p, "write-timeout", &c->write_timeout, &present) != 0)
        return -1;
    if (present && c->write_timeout <= 0)
        return cfg_range_error(ctx, p, "write-timeout", "must be greater than 0");
    return 0;
}

static int cfg_metric_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ccms_metric_config *)a)->name,
                  ((const struct ccms_metric_config *)b)->name);
}

static int cfg_metrics(struct cfg_ctx *ctx, json_t *sec, struct ccms_config *c)
{
    static const char *const keys[] = {"frequency", "aggregation", NULL};
    size_t count = json_object_size(sec);
    if (count == 0)
        return 0;
    if (count > CFG_MAX_METRICS)
        return cfg_fail(ctx, "\"metrics\" has %zu entries; at most %d are supported", count,
                        CFG_MAX_METRICS);
    c->metrics = calloc(count, sizeof *c->metrics);
    if (c->metrics == NULL)
        return cfg_oom(ctx);

    const char *name;
    json_t *m;
    json_object_foreach(sec, name, m) {
        char p[CFG_PATH_MAX];
        cfg_path(p, "metrics", name);
        if (!json_is_object(m))
            return cfg_fail(ctx, "\"%s\" must be an object with \"frequency\" and \"aggregation\"", p);
        if (cfg_check_keys(ctx, m, p, keys) != 0)
            return -1;

        struct ccms_metric_config *mc = &c->metrics[c->metric_count];
        json_t *freq = json_object_get(m, "frequency");
        if (freq == NULL || json_is_null(freq))
            return cfg_fail(ctx, "\"%s.frequency\" is required", p);
        if (!json_is_integer(freq) || json_integer_value(freq) <= 0 ||
            json_integer_value(freq) > CFG_MAX_FREQUENCY)
            return cfg_fail(ctx, "\"%s.frequency\" must be an integer > 0 (seconds, at most %lld)",
                            p, (long long)CFG_MAX_FREQUENCY);
        mc->frequency = (int64_t)json_integer_value(freq);

        json_t *agg = json_object_get(m, "aggregation");
        if (agg == NULL)
            return cfg_fail(ctx, "\"%s.aggregation\" is required (\"sum\", \"avg\" or null)", p);
        if (json_is_null(agg)) {
            mc->aggregation = CCMS_AGG_NONE;
        } else if (!json_is_string(agg)) {
            return cfg_fail(ctx, "\"%s.aggregation\" must be \"sum\", \"avg\" or null", p);
        } else {
            const char *a = json_string_value(agg);
            if (strcmp(a, "sum") == 0) {
                mc->aggregation = CCMS_AGG_SUM;
            } else if (strcmp(a, "avg") == 0) {
                mc->aggregation = CCMS_AGG_AVG;
            } else {
                mc->aggregation = CCMS_AGG_NONE;
                if (a[0] != '\0') {
                    char shown[CFG_PATH_MAX];
                    cfg_path(shown, NULL, a);
                    log_warn("config: metric \"%s\": unknown aggregation \"%s\", "
                             "children of this metric will not be combined",
                             p + strlen("metrics."), shown);
                }
            }
        }

        mc->name = strdup(name);
        if (mc->name == NULL)
            return cfg_oom(ctx);
        c->metric_count++;
    }
    qsort(c->metrics, c->metric_count, sizeof *c->metrics, cfg_metric_cmp);
    return 0;
}

static int cfg_checkpoints(struct cfg_ctx *ctx, json_t *ms, struct ccms_config *c)
{
    static const char *const keys[] = {"file-format", "directory", "max-wal-size", "fsync",
                                       "write-go-formats", NULL};
    const char *p = "metric-store.checkpoints";
    json_t *sec;
    if (cfg_object(ctx, ms, "metric-store", "checkpoints", &sec) != 0)
        return -1;
    if (sec == NULL)
        return 0;
    if (cfg_check_keys(ctx, sec, p, keys) != 0)
        return -1;
    if (cfg_string(ctx, sec, p, "file-format", &c->file_format) != 0 ||
        cfg_string(ctx, sec, p, "directory", &c->checkpoint_dir) != 0)
        return -1;
    if (strcmp(c->file_format, "wal") != 0 && strcmp(c->file_format, "json") != 0) {
        /* upstream treats every value other than "wal" as JSON checkpoints */
        char shown[CFG_PATH_MAX];
        cfg_path(shown, NULL, c->file_format);
        log_warn("config: \"%s.file-format\" is \"%s\"; using \"json\" (known: \"wal\", \"json\")",
                 p, shown);
        char *json = strdup("json");
        if (json == NULL)
            return cfg_oom(ctx);
        free(c->file_format);
        c->file_format = json;
    }
    if (c->checkpoint_dir[0] == '\0')
        return cfg_range_error(ctx, p, "directory", "must not be empty");

    if (cfg_bool(ctx, sec, p, "write-go-formats", &c->write_go_formats) != 0)
        return -1;
    bool present;
    if (cfg_int(ctx, sec, p, "max-wal-size", &c->max_wal_size, &present) != 0)
        return -1;
    if (present && c->max_wal_size < 0)
        return cfg_range_error(ctx, p, "max-wal-size", "must be >= 0 (bytes, 0 = unlimited)");

    json_t *fs = cfg_get(sec, "fsync");
    if (fs != NULL) {
        const char *v = json_is_string(fs) ? json_string_value(fs) : "";
        if (strcmp(v, "none") == 0)
            c->fsync = CCMS_FSYNC_NONE;
        else if (strcmp(v, "interval") == 0)
            c->fsync = CCMS_FSYNC_INTERVAL;
        else if (strcmp(v, "always") == 0)
            c->fsync = CCMS_FSYNC_ALWAYS;
        else
            return cfg_range_error(ctx, p, "fsync",
                                   "must be \"none\", \"interval\" or \"always\"");
    }
    return 0;
}

static int cfg_cleanup(struct cfg_ctx *ctx, json_t *ms, struct ccms_config *c)
{
    static const char *const keys[] = {"mode", "directory", NULL};
    const char *p = "metric-store.cleanup";
    json_t *sec;
    if (cfg_object(ctx, ms, "metric-store", "cleanup", &sec) != 0)
        return -1;
    if (sec == NULL)
        return 0;
    if (cfg_check_keys(ctx, sec, p, keys) != 0)
        return -1;
    json_t *mode = cfg_get(sec, "mode");
    if (mode != NULL) {
        if (!json_is_string(mode) || (strcmp(json_string_value(mode), "delete") != 0 &&
                                      strcmp(json_string_value(mode), "archive") != 0))
            return cfg_range_error(ctx, p, "mode", "must be \"delete\" or \"archive\"");
        char *m = strdup(json_string_value(mode));
        if (m == NULL)
            return cfg_oom(ctx);
        free(c->cleanup_mode);
        c->cleanup_mode = m;
    }
    if (cfg_string(ctx, sec, p, "directory", &c->cleanup_dir) != 0)
        return -1;
    if (strcmp(c->cleanup_mode, "archive") == 0 && c->cleanup_dir[0] == '\0')
        return cfg_fail(ctx, "\"%s.directory\" is required when \"%s.mode\" is \"archive\"", p, p);
    return 0;
}

static int cfg_subscriptions(struct cfg_ctx *ctx, json_t *ms, struct ccms_config *c)
{
    static const char *const keys[] = {"subscribe-to", "cluster-tag", "jetstream", NULL};
    static const char *const js_keys[] = {"stream", "durable", NULL};
    json_t *arr = cfg_get(ms, "nats-subscriptions");
    if (arr == NULL)
        return 0;
    if (!json_is_array(arr))
        return cfg_type_error(ctx, "metric-store", "nats-subscriptions", "an array of objects");
    size_t count = json_array_size(arr);
    if (count == 0)
        return 0;
    c->nats_subscriptions = calloc(count, sizeof *c->nats_subscriptions);
    if (c->nats_subscriptions == NULL)
        return cfg_oom(ctx);
    for (size_t i = 0; i < count; i++) {
        char p[CFG_PATH_MAX];
        snprintf(p, sizeof p, "metric-store.nats-subscriptions[%zu]", i);
        json_t *e = json_array_get(arr, i);
        if (!json_is_object(e))
            return cfg_fail(ctx, "\"%s\" must be an object", p);
        if (cfg_check_keys(ctx, e, p, keys) != 0)
            return -1;
        struct ccms_nats_subscription *s = &c->nats_subscriptions[i];
        c->nats_subscription_count = i + 1;
        s->subscribe_to = strdup("");
        s->cluster_tag = strdup("");
        if (s->subscribe_to == NULL || s->cluster_tag == NULL)
            return cfg_oom(ctx);
        if (cfg_string(ctx, e, p, "subscribe-to", &s->subscribe_to) != 0 ||
            cfg_string(ctx, e, p, "cluster-tag", &s->cluster_tag) != 0)
            return -1;
        if (s->subscribe_to[0] == '\0')
            return cfg_fail(ctx, "\"%s.subscribe-to\" is required (a NATS subject)", p);
        json_t *js = cfg_get(e, "jetstream");
        if (js == NULL)
            continue;
        char jp[CFG_PATH_MAX + 16];
        snprintf(jp, sizeof jp, "%s.jetstream", p);
        if (!json_is_object(js))
            return cfg_type_error(ctx, p, "jetstream", "an object with \"stream\" and \"durable\"");
        if (cfg_check_keys(ctx, js, jp, js_keys) != 0)
            return -1;
        s->js_stream = strdup("");
        s->js_durable = strdup("");
        if (s->js_stream == NULL || s->js_durable == NULL)
            return cfg_oom(ctx);
        if (cfg_string(ctx, js, jp, "stream", &s->js_stream) != 0 ||
            cfg_string(ctx, js, jp, "durable", &s->js_durable) != 0)
            return -1;
        if (s->js_stream[0] == '\0' || s->js_durable[0] == '\0')
            return cfg_fail(ctx, "\"%s\" needs \"stream\" (the stream's name) and \"durable\" "
                                 "(this store's consumer name)", jp);
    }
    return 0;
}

static int cfg_metric_store(struct cfg_ctx *ctx, json_t *sec, struct ccms_config *c)
{
    static const char *const keys[] = {
        "retention-in-memory", "memory-cap", "checkpoint-interval", "num-workers",
        "checkpoints", "cleanup", "nats-subscriptions", "debug", "future-tolerance", NULL,
    };
    const char *p = "metric-store";
    if (cfg_check_keys(ctx, sec, p, keys) != 0)
        return -1;

    bool present;
    if (cfg_duration(ctx, sec, p, "retention-in-memory", &c->retention_seconds, &present) != 0)
        return -1;
    if (!present)
        return cfg_fail(ctx, "\"metric-store.retention-in-memory\" is required (e.g. \"48h\")");

    /* Upstream takes whole GB; a fraction ("0.5") is accepted too. */
    json_t *cap = cfg_get(sec, "memory-cap");
    if (cap == NULL)
        return cfg_fail(ctx, "\"metric-store.memory-cap\" is required (GB, 0 = unlimited)");
    if (!json_is_number(cap))
        return cfg_type_error(ctx, p, "memory-cap", "a number");
    double cap_gb = json_number_value(cap);
    if (!(cap_gb >= 0) || cap_gb > (double)(INT64_MAX / CFG_GB))
        return cfg_range_error(ctx, p, "memory-cap", "must be a number >= 0 (GB, 0 = unlimited)");
    c->memory_cap_bytes = (int64_t)llround(cap_gb * (double)CFG_GB);

    if (cfg_duration(ctx, sec, p, "checkpoint-interval", &c->checkpoint_interval_seconds,
                     &present) != 0)
        return -1;
    if (c->checkpoint_interval_seconds <= 0)
        return cfg_range_error(ctx, p, "checkpoint-interval", "must be greater than 0");

    int64_t workers = 0;
    if (cfg_int(ctx, sec, p, "num-workers", &workers, &present) != 0)
        return -1;
    if (workers > 0)
        c->num_workers = workers;

    if (cfg_duration(ctx, sec, p, "future-tolerance", &c->future_tolerance_seconds, &present) != 0)
        return -1;
    if (c->future_tolerance_seconds < 0)
        return cfg_range_error(ctx, p, "future-tolerance", "must not be negative");

    if (cfg_checkpoints(ctx, sec, c) != 0 || cfg_cleanup(ctx, sec, c) != 0 ||
        cfg_subscriptions(ctx, sec, c) != 0 || cfg_debug(ctx, sec, p, NULL, &(bool){false}) != 0)
        return -1;
    return 0;
}

static int cfg_nats(struct cfg_ctx *ctx, json_t *sec, struct ccms_config *c)
{
    static const char *const keys[] = {"address", "username", "password", "creds-file-path", NULL};
    const char *p = "nats";
    if (cfg_check_keys(ctx, sec, p, keys) != 0)
        return -1;
    if (cfg_string(ctx, sec, p, "address", &c->nats_address) != 0 ||
        cfg_string(ctx, sec, p, "username", &c->nats_username) != 0 ||
        cfg_string(ctx, sec, p, "password", &c->nats_password) != 0 ||
        cfg_string(ctx, sec, p, "creds-file-path", &c->nats_creds_file) != 0)
        return -1;
    c->nats_configured = c->nats_address[0] != '\0';
    return 0;
}

/* ---- top level -------------------------------------------------------- */

static int cfg_defaults(struct ccms_config *c)
{
    memset(c, 0, sizeof *c);
    struct {
        char **dst;
        const char *value;
    } strings[] = {
        {&c->addr, "127.0.0.1:8082"},
        {&c->metrics_addr, ""},
        {&c->https_cert_file, ""},
        {&c->https_key_file, ""},
        {&c->user, ""},
        {&c->group, ""},
        {&c->backend_url, ""},
        {&c->jwt_public_key, ""},
        {&c->debug_dump_to_file, ""},
        {&c->backend_token, ""},
        {&c->file_format, "wal"},
        {&c->checkpoint_dir, "./var/checkpoints"},
        {&c->cleanup_mode, "delete"},
        {&c->cleanup_dir, ""},
        {&c->nats_address, ""},
        {&c->nats_username, ""},
        {&c->nats_password, ""},
        {&c->nats_creds_file, ""},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        *strings[i].dst = strdup(strings[i].value);
        if (*strings[i].dst == NULL)
            return -1;
    }
    long ncpu = cfg_ncpu();
    c->max_body_size = 64LL << 20;
    c->max_json_body_size = 64LL << 20;
    c->max_line_length = 1LL << 20;
    c->max_query_points = 10000000;
    c->max_request_points = 20000000;
    c->max_new_levels = 100000;
    c->read_timeout = 30;
    c->write_timeout = 30;
    c->http_threads = 0; /* one thread per connection */
    c->max_connections = 1024;
    c->max_client_connections = 128;
    c->checkpoint_interval_seconds = 12 * 3600;
    c->num_workers = ncpu / 2 + 1 < 10 ? ncpu / 2 + 1 : 10;
    c->fsync = CCMS_FSYNC_NONE;
    c->future_tolerance_seconds = 3600;
    return 0;
}

static int cfg_decode(struct cfg_ctx *ctx, json_t *root, struct ccms_config *c)
{
    static const char *const top_keys[] = {
        "main", "main-file", "metrics", "metrics-file", "metric-store", "nats", "nats-file", NULL,
    };
    json_t *sec_main = NULL, *sec_metrics = NULL, *sec_store = NULL, *sec_nats = NULL;
    int rc = -1;

    if (!json_is_object(root)) {
        cfg_fail(ctx, "the configuration must be a JSON object of sections");
        goto out;
    }
    /* Upstream's order: a missing main section is reported before anything
     * else (this is also what a pre-1.5 configuration file runs into). */
    if (cfg_section(ctx, root, "main", &sec_main) != 0)
        goto out;
    if (sec_main == NULL) {
        cfg_fail(ctx, "main configuration must be present");
        goto out;
    }
    if (cfg_check_keys(ctx, root, "", top_keys) != 0)
        goto out;
    if (cfg_main(ctx, sec_main, c) != 0)
        goto out;

    if (cfg_section(ctx, root, "metrics", &sec_metrics) != 0)
        goto out;
    if (sec_metrics == NULL) {
        cfg_fail(ctx, "missing metrics configuration");
        goto out;
    }
    if (cfg_metrics(ctx, sec_metrics, c) != 0)
        goto out;

    sec_store = cfg_get(root, "metric-store");
    if (sec_store == NULL) {
        cfg_fail(ctx, "missing metricstore configuration");
        goto out;
    }
    if (!json_is_object(sec_store)) {
        sec_store = NULL;
        cfg_type_error(ctx, NULL, "metric-store", "an object");
        goto out;
    }
    json_incref(sec_store);
    if (cfg_metric_store(ctx, sec_store, c) != 0)
        goto out;

    if (cfg_section(ctx, root, "nats", &sec_nats) != 0)
        goto out;
    if (sec_nats != NULL && cfg_nats(ctx, sec_nats, c) != 0)
        goto out;
    rc = 0;
out:
    json_decref(sec_main);
    json_decref(sec_metrics);
    json_decref(sec_store);
    json_decref(sec_nats);
    return rc;
}

static int cfg_parse_text(const char *origin, const char *text, size_t len,
                          struct ccms_config *out, char *err, size_t err_len)
{
    struct cfg_ctx ctx = {err, err_len};
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (cfg_defaults(out) != 0) {
        config_free(out);
        return cfg_oom(&ctx);
    }
    json_t *root = cfg_parse_json(&ctx, origin, text, len);
    int rc = root != NULL ? cfg_decode(&ctx, root, out) : -1;
    json_decref(root);
    if (rc != 0)
        config_free(out);
    return rc;
}

int config_parse(const char *json_text, size_t len, struct ccms_config *out, char *err,
                 size_t err_len)
{
    return cfg_parse_text(NULL, json_text, len, out, err, err_len);
}

int config_load(const char *path, struct ccms_config *out, char *err, size_t err_len)
{
    struct cfg_ctx ctx = {err, err_len};
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    if (cfg_read_file(&ctx, "config file", path, false, &text, &len) != 0)
        return -1;
    char origin[CFG_PATH_MAX];
    cfg_path(origin, NULL, path);
    int rc = cfg_parse_text(origin, text, len, out, err, err_len);
    free(text);
    return rc;
}

void config_free(struct ccms_config *cfg)
{
    if (cfg == NULL)
        return;
    char *strings[] = {
        cfg->addr, cfg->metrics_addr, cfg->https_cert_file, cfg->https_key_file, cfg->user, cfg->group,
        cfg->backend_url, cfg->jwt_public_key, cfg->debug_dump_to_file, cfg->backend_token,
        cfg->file_format, cfg->checkpoint_dir, cfg->cleanup_mode, cfg->cleanup_dir,
        cfg->nats_address, cfg->nats_username, cfg->nats_password, cfg->nats_creds_file,
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        free(strings[i]);
    for (size_t i = 0; i < cfg->metric_count; i++)
        free(cfg->metrics[i].name);
    free(cfg->metrics);
    for (size_t i = 0; i < cfg->nats_subscription_count; i++) {
        free(cfg->nats_subscriptions[i].subscribe_to);
        free(cfg->nats_subscriptions[i].cluster_tag);
        free(cfg->nats_subscriptions[i].js_stream);
        free(cfg->nats_subscriptions[i].js_durable);
    }
    free(cfg->nats_subscriptions);
    memset(cfg, 0, sizeof *cfg);
}

int config_metric_index(const struct ccms_config *cfg, const char *name)
{
    if (cfg == NULL || name == NULL || cfg->metric_count == 0)
        return -1;
    size_t lo = 0, hi = cfg->metric_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, cfg->metrics[mid].name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}
