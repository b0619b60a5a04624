/*
 * main — command line (Go flag syntax, README "Command line"), startup order,
 * signal handling and graceful shutdown.
 *
 * Order: flags, logging, config, listening socket (+ TLS material), then
 * privileges are dropped, then the store is built and the server started.
 * SIGINT/SIGTERM are blocked in every thread and taken with sigwait() in
 * this one, so shutdown runs as ordinary code: stop HTTP (finishing
 * requests in flight), destroy the store, "Graceful shutdown completed!".
 */
#include <curl/curl.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/gojson.h"
#include "api/swagger.h"
#include "archive/cleanup.h"
#include "archive/retention.h"
#include "config.h"
#include "log.h"
#include "net/http.h"
#include "net/jwt.h"
#include "net/nats.h"
#include "persist/checkpoint.h"
#include "persist/wal.h"
#include "store/store.h"
#include "version.h"

/* ---- flags -------------------------------------------------------------- */

struct main_flags {
    const char *config;
    const char *loglevel;
    const char *export_go;
    bool dev, logdate, version, gops, cleanup;
};

struct main_flag_def {
    const char *name;
    const char *value_name;   /* NULL for booleans */
    const char *usage;
    const char *def;          /* shown as (default "…") when set */
    size_t offset;
};

#define MAIN_FLAG_AT(f, d) ((char *)(f) + (d)->offset)

static const struct main_flag_def main_flag_defs[] = {
    { "cleanup-checkpoints", NULL,
      "Clean up old checkpoint files (delete or archive) once and exit", NULL,
      offsetof(struct main_flags, cleanup) },
    { "config", "config.json", "Specify alternative path to `config.json`", "./config.json",
      offsetof(struct main_flags, config) },
    { "dev", NULL, "Enable development component: Swagger UI at /swagger/", NULL,
      offsetof(struct main_flags, dev) },
    { "export-go", "directory",
      "Write all data of the checkpoint directory to `directory` in the Go store's formats and exit",
      NULL, offsetof(struct main_flags, export_go) },
    { "gops", NULL, "Listen via github.com/google/gops/agent (no effect in this build)", NULL,
      offsetof(struct main_flags, gops) },
    { "logdate", NULL, "Set this flag to add date and time to log messages", NULL,
      offsetof(struct main_flags, logdate) },
    { "loglevel", "[debug, info , warn (default), err, crit]",
      "Sets the logging level: `[debug, info , warn (default), err, crit]`", "warn",
      offsetof(struct main_flags, loglevel) },
    { "version", NULL, "Show version information and exit", NULL,
      offsetof(struct main_flags, version) },
};

#define MAIN_FLAG_COUNT (sizeof(main_flag_defs) / sizeof(main_flag_defs[0]))

/* Go's flag.PrintDefaults layout. */
static void main_usage(const char *prog)
{
    fprintf(stderr, "Usage of %s:\n", prog);
    for (size_t i = 0; i < MAIN_FLAG_COUNT; i++) {
        const struct main_flag_def *d = &main_flag_defs[i];
        const char *tick = strchr(d->usage, '`');
        fprintf(stderr, "  -%s%s%s\n    \t", d->name, d->value_name ? " " : "",
                d->value_name ? d->value_name : "");
        if (tick != NULL) {
            const char *end = strchr(tick + 1, '`');
            fprintf(stderr, "%.*s%.*s%s", (int)(tick - d->usage), d->usage,
                    (int)(end - tick - 1), tick + 1, end + 1);
        } else {
            fputs(d->usage, stderr);
        }
        if (d->def != NULL)
            fprintf(stderr, " (default \"%s\")", d->def);
        fputc('\n', stderr);
    }
}

/* strconv.ParseBool. */
static int main_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

static const struct main_flag_def *main_find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < MAIN_FLAG_COUNT; i++)
        if (strlen(main_flag_defs[i].name) == len && strncmp(main_flag_defs[i].name, name, len) == 0)
            return &main_flag_defs[i];
    return NULL;
}

/* One flag at argv[*i]. Returns 0, 1 (help asked) or 2 (error printed). */
static int main_parse_one(int argc, char **argv, int *i, struct main_flags *f)
{
    const char *name = argv[*i] + 1 + (argv[*i][1] == '-');
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct main_flag_def *d;
    if (len == 0 || name[0] == '-' || name[0] == '=') {
        fprintf(stderr, "bad flag syntax: %s\n", argv[*i]);
        return 2;
    }
    d = main_find_flag(name, len);
    if (d == NULL) {
        if ((len == 1 && name[0] == 'h') || (len == 4 && strncmp(name, "help", 4) == 0))
            return 1;
        fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)len, name);
        return 2;
    }
    if (d->value_name == NULL) {
        if (eq != NULL && main_parse_bool(eq + 1, (bool *)MAIN_FLAG_AT(f, d)) < 0) {
            fprintf(stderr, "invalid boolean value \"%s\" for -%s: parse error\n", eq + 1, d->name);
            return 2;
        }
        if (eq == NULL)
            *(bool *)MAIN_FLAG_AT(f, d) = true;
        return 0;
    }
    if (eq == NULL && *i + 1 >= argc) {
        fprintf(stderr, "flag needs an argument: -%s\n", d->name);
        return 2;
    }
    *(const char **)MAIN_FLAG_AT(f, d) = eq ? eq + 1 : argv[++*i];
    return 0;
}

/* Returns 0, 1 (help asked) or 2 (error printed); stops at the first
 * non-flag argument or "--", like Go's flag package. */
static int main_parse_flags(int argc, char **argv, struct main_flags *f)
{
    *f = (struct main_flags){ .config = "./config.json", .loglevel = "warn" };
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || argv[i][1] == '\0' || strcmp(argv[i], "--") == 0)
            break;
        int rc = main_parse_one(argc, argv, &i, f);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- startup ------------------------------------------------------------ */

static void main_init_logging(const struct main_flags *f)
{
    enum log_level level = LOG_DEBUG;
    if (log_parse_level(f->loglevel, &level) < 0)
        fprintf(stderr, "invalid log level \"%s\", using debug\n", f->loglevel);
    log_init(level, f->logdate);
    if (f->gops)
        fprintf(stderr, "-gops has no effect: there is no gops agent for the C implementation\n");
}

/* -dev: the Swagger UI's assets, from the npm package next to the binary
 * (a checkout: web/swagger-ui, installed by scripts/install-test-tools.sh)
 * or from the system's share directory. NULL (logged) when neither has it. */
static struct swagger_ui *main_load_swagger(void)
{
    char exe[PATH_MAX], dirs[2][PATH_MAX + 64], err[PATH_MAX + 128] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(dirs[0], sizeof(dirs[0]), "%s/web/swagger-ui/node_modules/swagger-ui-dist", exe);
    snprintf(dirs[1], sizeof(dirs[1]), "/usr/share/cc-metric-store/swagger-ui");
    for (size_t i = 0; i < 2; i++) {
        struct swagger_ui *ui = NULL;
        if (swagger_ui_load(dirs[i], &ui, err, sizeof(err)) == 0) {
            log_info("-dev: Swagger UI at /swagger/ (assets from %s)", dirs[i]);
            return ui;
        }
    }
    log_error("-dev: no Swagger UI: its assets are in neither %s nor %s (%s); install them "
              "with scripts/install-test-tools.sh", dirs[0], dirs[1], err);
    return NULL;
}

/* docs/compatibility.md (privilege drop): `group` is a group, `user` a user; supplementary
 * groups are reset when running as root. */
static int main_drop_privileges(const struct ccms_config *cfg)
{
    bool root = geteuid() == 0;
    if (cfg->group != NULL && cfg->group[0] != '\0') {
        struct group *g = getgrnam(cfg->group);
        if (g == NULL || (root && setgroups(1, &g->gr_gid) != 0) || setgid(g->gr_gid) != 0) {
            log_crit("cannot switch to group \"%s\": %s", cfg->group,
                     g ? strerror(errno) : "no such group");
            return -1;
        }
    }
    if (cfg->user != NULL && cfg->user[0] != '\0') {
        struct passwd *p = getpwnam(cfg->user);
        bool own_group = cfg->group == NULL || cfg->group[0] == '\0';
        if (p == NULL ||
            (own_group && root && initgroups(cfg->user, p->pw_gid) != 0) ||
            (own_group && setgid(p->pw_gid) != 0) || setuid(p->pw_uid) != 0) {
            log_crit("cannot switch to user \"%s\": %s", cfg->user,
                     p ? strerror(errno) : "no such user");
            return -1;
        }
    }
    return 0;
}

static int main_create_store(const struct ccms_config *cfg, struct store **out)
{
    struct store_metric *m = calloc(cfg->metric_count ? cfg->metric_count : 1, sizeof(*m));
    int rc;
    if (m == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->metric_count; i++)
        m[i] = (struct store_metric){ cfg->metrics[i].name, cfg->metrics[i].frequency,
                                      cfg->metrics[i].aggregation };
    rc = store_create(m, cfg->metric_count, out);
    free(m);
    return rc;
}

/* Opens the sockets (the API's, and main.metrics-addr's when set: *metrics_fd,
 * else -1), loads TLS material, drops privileges. */
static int main_open_listener(const struct ccms_config *cfg, int *fd, int *metrics_fd,
                              struct http_tls *tls, bool *use_tls)
{
    char err[256];
    const char *addr = cfg->addr != NULL && cfg->addr[0] != '\0' ? cfg->addr : ":0";
    *use_tls = cfg->https_cert_file && cfg->https_cert_file[0] && cfg->https_key_file &&
               cfg->https_key_file[0];
    *metrics_fd = -1;
    if (http_listen(addr, fd, err, sizeof(err)) < 0) {
        log_crit("%s", err);
        return -1;
    }
    if (cfg->metrics_addr != NULL && cfg->metrics_addr[0] != '\0' &&
        http_listen(cfg->metrics_addr, metrics_fd, err, sizeof(err)) < 0) {
        log_crit("main.metrics-addr: %s", err);
        close(*fd);
        return -1;
    }
    if (*use_tls && http_tls_load(cfg->https_cert_file, cfg->https_key_file, tls, err,
                                  sizeof(err)) < 0) {
        log_crit("%s", err);
        goto fail;
    }
    if (main_drop_privileges(cfg) < 0)
        goto fail;
    return 0;
fail:
    close(*fd);
    if (*metrics_fd >= 0)
        close(*metrics_fd);
    return -1;
}

static void main_wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    log_info("received signal %d, shutting down", sig);
}

/* Restores the checkpoint directory into the store and starts the
 * checkpoint worker. Returns 0 or -1 (logged). */
static int main_start_persistence(const struct ccms_config *cfg, struct store *store,
                                  struct checkpointer **out)
{
    struct checkpointer *cp;
    if (checkpointer_create(store, cfg, &cp) != 0) {
        log_crit("cannot create the checkpointer: out of memory");
        return -1;
    }
    /* Nodes running jobs keep all their checkpoint files (also those older
     * than the retention): their jobs' data must be whole after a restart. */
    int64_t now = (int64_t)time(NULL);
    struct used_nodes used;
    bool have_used = cfg->retention_seconds > 0 &&
                     retention_nodes_in_use(cfg, now - cfg->retention_seconds, NULL,
                                            "every host is restored from the retention "
                                            "cut-off on", &used);
    if (have_used)
        log_info("restore: %zu nodes in use are loaded with all their checkpoint files",
                 used.count);
    int rc = checkpointer_restore(cp, now, have_used ? retention_host_in_use : NULL,
                                  have_used ? &used : NULL, NULL);
    if (have_used)
        used_nodes_free(&used);
    if (rc != 0 || checkpointer_start(cp) != 0) {
        checkpointer_destroy(cp);
        return -1;
    }
    *out = cp;
    return 0;
}

/* Stops the worker and writes the final snapshot of everything unsaved. */
static void main_stop_persistence(struct checkpointer *cp)
{
    checkpointer_stop(cp);
    if (checkpointer_run(cp, (int64_t)time(NULL), NULL) != 0)
        log_error("the final checkpoint failed for some hosts; their WAL files are kept and "
                  "replayed at the next start");
}

/* Starts retention, the memory cap and checkpoint cleanup. */
static int main_start_retention(const struct ccms_config *cfg, struct store *store,
                                struct checkpointer *cp, struct retention **out)
{
    if (retention_create(store, cp, cfg, out) != 0 || retention_start(*out) != 0) {
        log_crit("cannot start the retention worker");
        return -1;
    }
    return 0;
}

/* -cleanup-checkpoints: one cleanup pass, then exit (README, "Retention, memory cap and archive"). */
static int main_cleanup_once(const struct ccms_config *cfg)
{
    bool archive = cfg->cleanup_mode && strcmp(cfg->cleanup_mode, "archive") == 0;
    struct cleanup_stats st = { 0 };
    int rc = 0;
    if (cfg->retention_seconds > 0) {
        int64_t cutoff = (int64_t)time(NULL) - cfg->retention_seconds;
        struct used_nodes used;
        bool have_used = retention_nodes_in_use(cfg, cutoff, NULL,
                                                "cleanup treats every host alike", &used);
        rc = cleanup_run(cfg, cutoff, have_used ? retention_host_in_use : NULL,
                         have_used ? &used : NULL, &st);
        if (have_used)
            used_nodes_free(&used);
    }
    printf("Cleanup done: %llu checkpoint files %s.\n", (unsigned long long)st.files_deleted,
           archive ? "archived to parquet" : "deleted");
    if (rc != 0)
        fprintf(stderr, "cleanup: %llu files could not be processed (see the log); they were "
                        "kept\n", (unsigned long long)st.files_failed);
    return rc == 0 ? 0 : 1;
}

static bool main_keep_every_host(void *ctx, const char *cluster, const char *host)
{
    (void)ctx;
    (void)cluster;
    (void)host;
    return true;
}

/* -export-go: loads the checkpoint directory whole (native and Go files,
 * logs; whatever the retention) and writes it in the Go store's layout and
 * binary format to dir (README, "Migrating"). The store must not be running
 * on the same directory. */
static int main_export_go(const struct ccms_config *cfg, const char *dir)
{
    struct store *store = NULL;
    struct checkpointer *cp = NULL;
    int rc = main_create_store(cfg, &store);
    if (rc == 0)
        rc = checkpointer_create(store, cfg, &cp);
    if (rc != 0) {
        fprintf(stderr, "export: cannot create the store: out of memory\n");
        store_destroy(store);
        return 1;
    }
    struct restore_stats rst;
    int64_t now = (int64_t)time(NULL);
    rc = checkpointer_restore(cp, now, main_keep_every_host, NULL, &rst);
    struct checkpoint_stats st = {0};
    if (rc == 0)
        rc = checkpointer_export_go(cp, dir, now, &st);
    printf("Export done: %llu samples loaded, %llu hosts written to %s (%llu bytes), %llu "
           "failed, %.3f s.\n", (unsigned long long)rst.samples,
           (unsigned long long)st.hosts_written, dir, (unsigned long long)st.bytes_written,
           (unsigned long long)st.hosts_failed, st.seconds);
    store_destroy(store);
    checkpointer_destroy(cp);
    return rc == 0 ? 0 : 1;
}

/* A verifier when `jwt-public-key` is set (else *out = NULL). Returns 0 or
 * -1 for a key that is not valid base64 (logged). */
static int main_create_jwt(const struct ccms_config *cfg, struct jwt_verifier **out)
{
    *out = NULL;
    if (cfg->jwt_public_key == NULL || cfg->jwt_public_key[0] == '\0')
        return 0;
    int rc = jwt_verifier_create(cfg->jwt_public_key, out);
    if (rc == JWT_EKEY)
        log_crit("main.jwt-public-key is not valid base64 (expected the standard base64 "
                 "encoding of a 32-byte Ed25519 public key)");
    else if (rc != 0)
        log_crit("cannot set up JWT verification: out of memory");
    return rc == 0 ? 0 : -1;
}

/* Connections and host logs hold descriptors: the soft limit on open
 * files (1024 under systemd) is raised to the hard limit, and half of it
 * is left to the logs' descriptor pool (the least recently used log is
 * closed beyond that and reopened at its next write). */
static void main_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t before = rl.rlim_cur;
        rlim_t wanted = rl.rlim_max;
        rl.rlim_cur = wanted;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn("cannot raise the open files limit from %llu to %llu: %s",
                     (unsigned long long)before, (unsigned long long)wanted, strerror(errno));
            rl.rlim_cur = before;
        }
    }
    size_t logs = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 2 > SIZE_MAX
                      ? SIZE_MAX : (size_t)(rl.rlim_cur / 2);
    if (logs < 16)
        logs = 16;
    wal_set_open_limit(logs);
    log_info("open files limit: %llu; at most %zu host logs keep a descriptor open (raise "
             "LimitNOFILE for more connections)", (unsigned long long)rl.rlim_cur, logs);
}

/* Everything after the config is loaded. Returns the exit status. */
static int main_serve(const struct ccms_config *cfg, const sigset_t *signals, bool dev)
{
    struct swagger_ui *swagger = NULL;
    struct http_tls tls = { 0 };
    struct store *store = NULL;
    struct checkpointer *cp = NULL;
    struct retention *ret = NULL;
    struct nats_ingest *nats = NULL;
    struct jwt_verifier *jwt = NULL;
    struct http_server *srv = NULL, *metrics_srv = NULL;
    char err[256];
    bool use_tls;
    int fd, metrics_fd, status = 1;
    if (main_create_jwt(cfg, &jwt) < 0)
        return 1;
    if (main_open_listener(cfg, &fd, &metrics_fd, &tls, &use_tls) < 0) {
        jwt_verifier_destroy(jwt);
        return 1;
    }
    int created = main_create_store(cfg, &store);
    if (created < 0) {
        log_crit("cannot create the metric store: %s",
                 created == STORE_ETOO_MANY_METRICS ? "too many metrics configured"
                                                    : "out of memory");
        goto out;
    }
    if (main_start_persistence(cfg, store, &cp) < 0 ||
        main_start_retention(cfg, store, cp, &ret) < 0)
        goto out;
    /* NATS (src/net/nats.h): subscribe only once the restore has finished. */
    if (nats_ingest_start(cfg, store, cp, &nats) < 0) {
        log_crit("cannot start NATS ingestion: out of memory or threads");
        goto out;
    }
    if (dev)
        swagger = main_load_swagger();
    struct api_context ctx = { .store = store, .cfg = cfg, .checkpointer = cp, .jwt = jwt,
                               .swagger = swagger };
    /* main.metrics-addr: GET /metrics alone, plain HTTP, no authentication */
    struct api_context metrics_ctx = { .store = store, .cfg = cfg, .checkpointer = cp,
                                       .metrics_only = true };
    if (http_start(fd, &ctx, use_tls ? &tls : NULL, &srv, err, sizeof(err)) < 0) {
        log_crit("%s", err);
        goto out;
    }
    fd = -1; /* owned by the server now */
    log_info("listening on %s", cfg->addr ? cfg->addr : "");
    if (metrics_fd >= 0) {
        if (http_start(metrics_fd, &metrics_ctx, NULL, &metrics_srv, err, sizeof(err)) < 0) {
            log_crit("main.metrics-addr: %s", err);
            http_stop(srv);
            goto out;
        }
        metrics_fd = -1;
        log_info("serving /metrics without authentication on %s", cfg->metrics_addr);
    }
    main_wait_for_signal(signals);
    if (metrics_srv != NULL)
        http_stop(metrics_srv);
    http_stop(srv);
    status = 0;
out:
    if (fd >= 0)
        close(fd);
    if (metrics_fd >= 0)
        close(metrics_fd);
    nats_ingest_stop(nats); /* drained before the final checkpoint */
    retention_destroy(ret);
    if (cp)
        main_stop_persistence(cp);
    store_destroy(store);
    checkpointer_destroy(cp);
    jwt_verifier_destroy(jwt);
    http_tls_free(&tls);
    swagger_ui_free(swagger);
    if (status == 0)
        printf("Graceful shutdown completed!\n");
    return status;
}

int main(int argc, char **argv)
{
    struct main_flags flags;
    struct ccms_config cfg;
    char err[512];
    sigset_t signals;
    int rc = main_parse_flags(argc, argv, &flags);
    if (rc != 0) {
        main_usage(argv[0]);
        return rc == 1 ? 0 : 2;
    }
    if (flags.version) {
        printf("Version:\t%s\nGit hash:\t%s\nBuild time:\t%s %s\n", CCMS_VERSION, CCMS_GIT_HASH,
               __DATE__, __TIME__);
        return 0;
    }
    /* Request bodies and answers of a megabyte or more get their own
     * mappings, returned to the system when freed. glibc would otherwise
     * raise this threshold after the first such free and keep every later
     * one in the heap of the thread that read it: megabytes per connection
     * thread that the samples never use. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    gojson_init();      /* jansson's allocation functions, before any thread reads them */
    /* Before any thread exists, so every thread inherits the mask. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_init_logging(&flags);
    if (config_load(flags.config, &cfg, err, sizeof(err)) < 0) {
        log_crit("%s", err);
        return 1;
    }
    if (cfg.debug_gops)
        fprintf(stderr, "main.debug.gops has no effect: there is no gops agent for the C "
                        "implementation\n");
    main_raise_fd_limit();
    /* libcurl's global state, before any thread: the node provider is
     * asked at startup (restore, cleanup) and by the retention worker. */
    if (cfg.backend_url && cfg.backend_url[0])
        curl_global_init(CURL_GLOBAL_DEFAULT);
    if (flags.cleanup) {
        rc = main_cleanup_once(&cfg);
        config_free(&cfg);
        return rc;
    }
    if (flags.export_go) {
        rc = main_export_go(&cfg, flags.export_go);
        config_free(&cfg);
        return rc;
    }
    rc = main_serve(&cfg, &signals, flags.dev);
    config_free(&cfg);
    return rc;
}
