/*
 * cleanup — see cleanup.h.
 *
 * Walk: checkpoint root -> cluster directories -> host directories (names
 * sorted, invalid names skipped) -> <stamp>.bin / <stamp>.json files. Per
 * host the selected files are collected as `struct selected`; in archive
 * mode they are decoded, turned into rows, sorted and written as one row
 * group before the next host is read.
 */
#include "archive/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/parquet.h"
#include "log.h"
#include "persist/ckpt.h"
#include "persist/jsonckpt.h"
#include "persist/nsnap.h"
#include "persist/snapshot.h"
#include "util/fsutil.h"
#include "util/names.h"
#include "util/progress.h"

/* ---- scope of a level name ------------------------------------------------ */

void cleanup_parse_scope(const char *name, const char **scope, const char **scope_id)
{
    /* Hardware scopes need a digit after the prefix (upstream's rule);
     * device scopes take any id: mount points and interface names. */
    static const struct {
        const char *prefix;
        const char *scope;
        bool digit;
    } prefixes[] = {
        {"socket", "socket", true},     {"memoryDomain", "memoryDomain", true},
        {"core", "core", true},         {"hwthread", "hwthread", true},
        {"cpu", "hwthread", true},      {"accelerator", "accelerator", true},
        {"filesystem", "filesystem", false}, {"network", "network", false},
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (strncmp(name, prefixes[i].prefix, n) != 0 || name[n] == '\0')
            continue;
        if (prefixes[i].digit && !(name[n] >= '0' && name[n] <= '9'))
            continue;
        *scope = prefixes[i].scope;
        *scope_id = name + n;
        return;
    }
    *scope = name;
    *scope_id = "";
}

/* ---- directory helpers ------------------------------------------------------ */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Sorted names of dir's entries; with want_dirs only valid-named
 * subdirectories, else only regular files. */
static int list_dir(const char *dir, bool want_dirs, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = fs_join(dir, e->d_name);
        struct stat st;
        bool keep = path && stat(path, &st) == 0 &&
                    (want_dirs ? S_ISDIR(st.st_mode) && name_is_valid(e->d_name,
                                                                     strlen(e->d_name))
                               : S_ISREG(st.st_mode));
        free(path);
        if (!keep)
            continue;
        char **grown = realloc(*names, (*count + 1) * sizeof(char *));
        char *copy = grown ? strdup(e->d_name) : NULL;
        if (grown)
            *names = grown;
        if (!copy)
            rc = -ENOMEM;
        else
            (*names)[(*count)++] = copy;
    }
    closedir(d);
    if (*count > 1)
        qsort(*names, *count, sizeof(char *), compare_strings);
    return rc;
}

/* ---- selecting files -------------------------------------------------------- */

struct selected {
    char *path;
    bool binary;
    bool native;             /* a native snapshot (.ccms) */
    struct ckpt_file file;   /* decoded (archive mode, or JSON in any mode) */
    bool decoded;
};

static bool checkpoint_name(const char *name, bool *binary, bool *native)
{
    size_t len = strlen(name);
    const char *ext = strrchr(name, '.');
    if (!ext || ext == name ||
        (strcmp(ext, ".bin") != 0 && strcmp(ext, ".json") != 0 && strcmp(ext, ".ccms") != 0))
        return false;
    for (const char *p = name; p < ext; p++)
        if ((*p < '0' || *p > '9') && !(p == name && *p == '-'))
            return false;
    *binary = strcmp(ext, ".bin") == 0;
    *native = strcmp(ext, ".ccms") == 0;
    return len > 0;
}

static int decode_checkpoint(struct selected *s)
{
    char *data;
    size_t len;
    char err[256] = "";
    int rc = fs_read_file(s->path, &data, &len);
    if (rc == 0 && s->native) {
        uint64_t lost = 0;
        rc = nsnap_to_ckpt(data, len, &s->file, &lost, err, sizeof err);
        if (rc == 0 && lost) {
            /* the file stays for inspection: its damaged blocks are not
             * archived, and deleting it would lose what they held */
            snprintf(err, sizeof err, "%" PRIu64 " damaged blocks", lost);
            ckpt_file_free(&s->file);
            rc = -1;
        }
        free(data);
    } else if (rc == 0) {
        rc = s->binary ? snapshot_decode(data, len, &s->file, err, sizeof err)
                       : jsonckpt_decode(data, len, &s->file, err, sizeof err);
        free(data);
    } else {
        snprintf(err, sizeof err, "%s", strerror(-rc));
    }
    if (rc != 0)
        log_error("cleanup: cannot decode %s (kept): %s", s->path, err);
    s->decoded = rc == 0;
    return rc;
}

static void free_selected(struct selected *sel, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(sel[i].path);
        if (sel[i].decoded)
            ckpt_file_free(&sel[i].file);
    }
    free(sel);
}

/* Decides whether the file at path (a checkpoint name) is past the cut-off;
 * decodes it when needed (JSON always, .bin when archiving). Returns 1
 * selected, 0 not selected, <0 failed (counted, kept). */
/* 1: positively outside the retention window (decoded, consistent, window
 * ended at or before cutoff); 0: inside; -1: undecodable or corrupt, kept. */
static int select_file(struct selected *s, int64_t stamp, int64_t cutoff,
                       int64_t future_tolerance)
{
    if (decode_checkpoint(s) != 0)
        return -1;
    const char *why = ckpt_file_contradiction(&s->file, stamp, future_tolerance);
    if (why) {
        log_error("cleanup: %s is corrupt (%s); kept", s->path, why);
        return -1;
    }
    return s->file.to <= cutoff ? 1 : 0;
}

static int collect_host(const char *host_dir, int64_t cutoff, bool archive,
                        int64_t future_tolerance, struct cleanup_stats *stats,
                        struct selected **out, size_t *count)
{
    char **names;
    size_t n;
    *out = NULL;
    *count = 0;
    if (list_dir(host_dir, false, &names, &n) != 0) {
        log_error("cleanup: cannot list %s", host_dir);
        stats->files_failed++;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct selected s = {0};
        if (!checkpoint_name(names[i], &s.binary, &s.native))
            continue;
        s.path = fs_join(host_dir, names[i]);
        int64_t stamp = strtoll(names[i], NULL, 10);
        int picked = s.path ? select_file(&s, stamp, cutoff, future_tolerance) : -1;
        if (picked == 1 && !archive && s.decoded) {
            ckpt_file_free(&s.file);     /* deleting needs only the path */
            s.decoded = false;
        }
        if (picked == 1) {
            struct selected *grown = realloc(*out, (*count + 1) * sizeof(s));
            if (grown) {
                *out = grown;
                (*out)[(*count)++] = s;
                continue;
            }
            picked = -1;
        }
        if (picked < 0) {
            stats->files_failed++;
            rc = -1;
        }
        free(s.path);
        if (s.decoded)
            ckpt_file_free(&s.file);
    }
    free_names(names, n);
    return rc;
}

static void delete_files(struct selected *sel, size_t count, struct cleanup_stats *stats)
{
    for (size_t i = 0; i < count; i++) {
        if (unlink(sel[i].path) == 0) {
            stats->files_deleted++;
        } else {
            log_error("cleanup: cannot delete %s: %s", sel[i].path, strerror(errno));
            stats->files_failed++;
        }
    }
}

/* ---- rows --------------------------------------------------------------------- */

struct row {
    const char *metric;
    const char *scope;
    const char *scope_id;
    int64_t timestamp;
    int64_t frequency;
    float value;
    uint32_t file;           /* index of the file (files sorted by `to`): newest wins */
};

struct row_list {
    struct row *items;
    size_t count, cap;
};

static int push_row(struct row_list *rows, const struct row *r)
{
    if (rows->count == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 4096;
        struct row *grown = realloc(rows->items, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        rows->items = grown;
        rows->cap = cap;
    }
    rows->items[rows->count++] = *r;
    return 0;
}

static int level_rows(const struct ckpt_level *l, const char *scope, const char *scope_id,
                      uint32_t file, struct row_list *rows)
{
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *s = &l->series[i];
        for (uint32_t k = 0; k < s->count; k++) {
            if (isnan(s->values[k]))
                continue;
            struct row r = {s->metric, scope, scope_id, s->start + (int64_t)k * s->frequency,
                            s->frequency, s->values[k], file};
            if (push_row(rows, &r) != 0)
                return -ENOMEM;
        }
    }
    for (size_t i = 0; i < l->child_count; i++) {
        const char *child_scope, *child_id;
        cleanup_parse_scope(l->children[i].name, &child_scope, &child_id);
        if (level_rows(&l->children[i], child_scope, child_id, file, rows) != 0)
            return -ENOMEM;
    }
    return 0;
}

static int compare_rows(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->metric, y->metric);
    if (!c)
        c = strcmp(x->scope, y->scope);
    if (!c)
        c = strcmp(x->scope_id, y->scope_id);
    if (!c)
        c = x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
    if (!c)
        c = x->file < y->file ? -1 : x->file > y->file;
    return c;
}

static bool same_sample(const struct row *x, const struct row *y)
{
    return x->timestamp == y->timestamp && strcmp(x->metric, y->metric) == 0 &&
           strcmp(x->scope, y->scope) == 0 && strcmp(x->scope_id, y->scope_id) == 0;
}

static int compare_by_to(const void *a, const void *b)
{
    const struct selected *x = a, *y = b;
    return x->file.to < y->file.to ? -1 : x->file.to > y->file.to;
}

/* Appends one host's rows, sorted, one row per sample. Row groups are cut
 * by the writer's size bound, not per host: fewer, larger groups compress
 * better (smaller than DuckDB's own files) and memory stays bounded. */
static int write_host_rows(struct parquet_writer *w, const char *cluster, const char *host,
                           struct selected *sel, size_t count, uint64_t *rows_written)
{
    if (count > 1)
        qsort(sel, count, sizeof(*sel), compare_by_to);
    struct row_list rows = {0};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = level_rows(&sel[i].file.host, "node", "", (uint32_t)i, &rows);
    if (rc == 0 && rows.count > 1)
        qsort(rows.items, rows.count, sizeof(*rows.items), compare_rows);
    for (size_t i = 0; i < rows.count && rc == 0; i++) {
        const struct row *r = &rows.items[i];
        if (i + 1 < rows.count && same_sample(r, &rows.items[i + 1]))
            continue; /* the next one comes from a newer file */
        struct parquet_row pr = {cluster, host, r->metric, r->scope, r->scope_id,
                                 r->timestamp, r->frequency, r->value};
        rc = parquet_writer_add(w, &pr);
        if (rc == 0)
            (*rows_written)++;
    }
    free(rows.items);
    return rc;
}

/* ---- per cluster ------------------------------------------------------------------ */

struct archive_target {
    char *dir;               /* <cleanup.directory>/<cluster> */
    char *name;              /* <cutoff>.parquet */
    char *tmp_path;
    struct parquet_writer *writer;
    uint64_t rows;
};

static int open_target(const struct ccms_config *cfg, const char *cluster, int64_t cutoff,
                       struct archive_target *t)
{
    t->dir = fs_join(cfg->cleanup_dir, cluster);
    if (!t->dir || fs_mkdir_p(t->dir) != 0)
        return -1;
    char name[64];
    for (int64_t stamp = cutoff;; stamp--) {
        snprintf(name, sizeof name, "%" PRId64 ".parquet", stamp);
        char *path = fs_join(t->dir, name);
        bool exists = path && access(path, F_OK) == 0;
        free(path);
        if (!exists)
            break;
    }
    t->name = strdup(name);
    size_t len = strlen(t->dir) + strlen(name) + 6;
    t->tmp_path = malloc(len);
    if (!t->name || !t->tmp_path)
        return -1;
    snprintf(t->tmp_path, len, "%s/%s.tmp", t->dir, name);
    return parquet_writer_open(t->tmp_path, &t->writer) == 0 ? 0 : -1;
}

/* Finishes the file: close (fsync), rename, fsync the directory. */
static int commit_target(struct archive_target *t)
{
    int rc = parquet_writer_close(t->writer, NULL);
    t->writer = NULL;
    char *final_path = fs_join(t->dir, t->name);
    if (rc == 0 && (!final_path || rename(t->tmp_path, final_path) != 0))
        rc = -1;
    if (rc == 0)
        rc = fs_fsync_dir(t->dir);
    free(final_path);
    return rc;
}

static void drop_target(struct archive_target *t)
{
    if (t->writer)
        parquet_writer_abort(t->writer);
    if (t->tmp_path)
        unlink(t->tmp_path);
    free(t->dir);
    free(t->name);
    free(t->tmp_path);
}

/* Removes .parquet.tmp files a crash left in the archive's cluster dir. */
static void remove_stale_tmp(const struct ccms_config *cfg, const char *cluster)
{
    char *dir = fs_join(cfg->cleanup_dir, cluster);
    char **names;
    size_t n;
    if (dir && list_dir(dir, false, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(names[i]);
            if (len > 12 && strcmp(names[i] + len - 12, ".parquet.tmp") == 0) {
                char *path = fs_join(dir, names[i]);
                if (path && unlink(path) == 0)
                    log_info("cleanup: removed unfinished archive %s", path);
                free(path);
            }
        }
        free_names(names, n);
    }
    free(dir);
}

/* The files archived so far for this cluster, deleted after the commit. */
struct done_list {
    struct selected *items;
    size_t count;
};

static int archive_host(struct archive_target *t, const struct ccms_config *cfg,
                        const char *cluster, const char *host, struct selected *sel,
                        size_t count, int64_t cutoff, struct done_list *done)
{
    if (!t->writer && open_target(cfg, cluster, cutoff, t) != 0) {
        log_error("cleanup: cannot create the archive for cluster %s in %s: %s", cluster,
                  cfg->cleanup_dir, strerror(errno));
        return -1;
    }
    if (write_host_rows(t->writer, cluster, host, sel, count, &t->rows) != 0) {
        log_error("cleanup: writing %s failed: %s", t->tmp_path, strerror(errno));
        return -1;
    }
    /* Keep only the paths: the decoded data is not needed any more. */
    struct selected *grown = realloc(done->items, (done->count + count) * sizeof(*grown));
    if (!grown)
        return -1;
    done->items = grown;
    for (size_t i = 0; i < count; i++) {
        ckpt_file_free(&sel[i].file);
        sel[i].decoded = false;
        done->items[done->count++] = sel[i];
        sel[i].path = NULL;
    }
    return 0;
}

static int cleanup_cluster(const struct ccms_config *cfg, const char *cluster, int64_t cutoff,
                           bool archive, host_filter_fn keep, void *keep_ctx,
                           struct cleanup_stats *stats, struct progress *progress)
{
    char *cluster_dir = fs_join(cfg->checkpoint_dir, cluster);
    char **hosts = NULL;
    size_t host_count = 0;
    if (!cluster_dir || list_dir(cluster_dir, true, &hosts, &host_count) != 0) {
        log_error("cleanup: cannot list %s", cluster_dir ? cluster_dir : cluster);
        free(cluster_dir);
        return -1;
    }
    if (archive)
        remove_stale_tmp(cfg, cluster);
    struct archive_target target = {0};
    struct done_list done = {0};
    int rc = 0;
    for (size_t h = 0; h < host_count && rc == 0; h++) {
        if (keep && keep(keep_ctx, cluster, hosts[h]))
            continue;   /* a node in use keeps all its files */
        char *host_dir = fs_join(cluster_dir, hosts[h]);
        struct selected *sel = NULL;
        size_t count = 0;
        /* Files that fail are counted and kept; the host's other files still go. */
        if (host_dir)
            (void)collect_host(host_dir, cutoff, archive, cfg->future_tolerance_seconds, stats,
                               &sel, &count);
        if (count > 0) {
            if (!archive)
                delete_files(sel, count, stats);
            else if (archive_host(&target, cfg, cluster, hosts[h], sel, count, cutoff, &done))
                rc = -1;
        }
        free_selected(sel, count);
        free(host_dir);
        progress_add(progress, 0, count);
    }
    if (archive && rc == 0 && target.writer) {
        if (target.rows == 0) {
            delete_files(done.items, done.count, stats); /* files without samples */
        } else if (commit_target(&target) == 0) {
            stats->parquet_files++;
            stats->rows += target.rows;
            delete_files(done.items, done.count, stats);
        } else {
            rc = -1;
        }
    }
    if (archive && rc != 0) {
        log_error("cleanup: archiving cluster %s failed; its checkpoint files are kept",
                  cluster);
        stats->clusters_failed++;
    }
    drop_target(&target);
    free_selected(done.items, done.count);
    free_names(hosts, host_count);
    free(cluster_dir);
    return rc;
}

int cleanup_run(const struct ccms_config *cfg, int64_t cutoff, host_filter_fn keep,
                void *keep_ctx, struct cleanup_stats *stats)
{
    struct cleanup_stats local = {0};
    bool archive = cfg->cleanup_mode && strcmp(cfg->cleanup_mode, "archive") == 0;
    char **clusters = NULL;
    size_t count = 0;
    int rc = 0;
    if (list_dir(cfg->checkpoint_dir, true, &clusters, &count) != 0 && errno != ENOENT) {
        log_error("cleanup: cannot list %s: %s", cfg->checkpoint_dir, strerror(errno));
        rc = -1;
    }
    struct progress progress;
    progress_begin(&progress, archive ? "archive" : "cleanup", "clusters", count, "files");
    for (size_t i = 0; i < count; i++) {
        if (cleanup_cluster(cfg, clusters[i], cutoff, archive, keep, keep_ctx, &local,
                            &progress) != 0)
            rc = -1;
        progress_add(&progress, 1, 0);
    }
    progress_end(&progress);
    free_names(clusters, count);
    if (local.files_failed)
        rc = -1;
    if (local.files_deleted || local.files_failed)
        log_info("cleanup: %" PRIu64 " checkpoint files %s, %" PRIu64 " kept after errors",
                 local.files_deleted, archive ? "archived" : "deleted", local.files_failed);
    if (stats)
        *stats = local;
    return rc;
}
