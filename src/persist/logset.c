/*
 * logset — see logset.h for the rule that makes deletion safe.
 */
#include "persist/logset.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "persist/seglog.h"
#include "util/fsutil.h"

struct log_segment {
    struct seglog_file *file;   /* NULL once closed (retired and drained, or adopted) */
    uint64_t seq;
    char *path;
    uint64_t bytes;             /* size when closed (adopted: size on disk) */
    unsigned refs;              /* references: writers, and batches that will sync it */
    unsigned writers;           /* references whose record is not written yet */
    struct log_segment *next;   /* retired list, oldest first */
};

struct logset {
    char *dir;
    char **metrics;
    size_t metric_count;
    enum ccms_fsync_policy fsync;
    pthread_mutex_t lock;
    pthread_cond_t drained;
    struct log_segment *active;
    struct log_segment *retired;        /* oldest first */
    uint64_t next_seq;
};

int logset_create(const char *dir, const char *const *metrics, size_t metric_count,
                  enum ccms_fsync_policy fsync, struct logset **out)
{
    struct logset *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return LOGSET_ENOMEM;
    pthread_mutex_init(&ls->lock, NULL);
    pthread_cond_init(&ls->drained, NULL);
    ls->dir = strdup(dir);
    ls->metrics = calloc(metric_count ? metric_count : 1, sizeof(char *));
    bool ok = ls->dir && ls->metrics;
    for (size_t i = 0; ok && i < metric_count; i++)
        ok = (ls->metrics[i] = strdup(metrics[i])) != NULL;
    ls->metric_count = metric_count;
    if (!ok) {
        logset_destroy(ls);
        return LOGSET_ENOMEM;
    }
    ls->fsync = fsync;
    ls->next_seq = 1;
    *out = ls;
    return 0;
}

static void segment_free(struct log_segment *seg)
{
    seglog_close(seg->file);
    free(seg->path);
    free(seg);
}

void logset_destroy(struct logset *ls)
{
    if (!ls)
        return;
    if (ls->active)
        segment_free(ls->active);
    while (ls->retired) {
        struct log_segment *next = ls->retired->next;
        segment_free(ls->retired);
        ls->retired = next;
    }
    for (size_t i = 0; ls->metrics && i < ls->metric_count; i++)
        free(ls->metrics[i]);
    free(ls->metrics);
    free(ls->dir);
    pthread_mutex_destroy(&ls->lock);
    pthread_cond_destroy(&ls->drained);
    free(ls);
}

/* Appends seg to the retired list, keeping it sorted by seq. */
static void retire(struct logset *ls, struct log_segment *seg)
{
    struct log_segment **at = &ls->retired;
    while (*at && (*at)->seq < seg->seq)
        at = &(*at)->next;
    seg->next = *at;
    *at = seg;
}

int logset_adopt(struct logset *ls, uint64_t seq, const char *path)
{
    struct log_segment *seg = calloc(1, sizeof(*seg));
    char *copy = strdup(path);
    if (!seg || !copy) {
        free(seg);
        free(copy);
        return LOGSET_ENOMEM;
    }
    seg->seq = seq;
    seg->path = copy;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        seg->bytes = size > 0 ? (uint64_t)size : 0;
        fclose(f);
    }
    pthread_mutex_lock(&ls->lock);
    retire(ls, seg);
    if (seq >= ls->next_seq)
        ls->next_seq = seq + 1;
    pthread_mutex_unlock(&ls->lock);
    return 0;
}

/* Failing creations repeat per request: a few lines per 10 s. */
static struct log_limit create_errors;

int logset_acquire(struct logset *ls, struct log_segment **out)
{
    pthread_mutex_lock(&ls->lock);
    int rc = 0;
    if (!ls->active) {
        struct log_segment *seg = calloc(1, sizeof(*seg));
        struct seglog_file *file = NULL;
        rc = seg ? SEGLOG_EIO : SEGLOG_ENOMEM;
        /* a number whose file exists (kept, not loaded) is skipped */
        for (int tries = 0; seg && rc == SEGLOG_EIO && tries < 16; tries++) {
            rc = seglog_create(ls->dir, ls->next_seq, (const char *const *)ls->metrics,
                               ls->metric_count, ls->fsync == CCMS_FSYNC_ALWAYS, &file);
            if (rc == SEGLOG_EIO && errno == EEXIST)
                ls->next_seq++;
            else
                break;
        }
        if (rc == 0)
            seg->path = strdup(seglog_path(file));
        if (rc != 0 || !seg->path) {
            if (rc != 0)
                log_limited(&create_errors, LOG_ERR, "WAL: cannot create a log segment in %s: %s",
                            ls->dir, rc == SEGLOG_EIO ? strerror(errno) : seglog_strerror(rc));
            seglog_close(file);
            free(seg);
            /* a failed number is not used again: the file may exist */
            ls->next_seq++;
            pthread_mutex_unlock(&ls->lock);
            return rc == SEGLOG_ENOMEM ? LOGSET_ENOMEM : LOGSET_EIO;
        }
        seg->file = file;
        seg->seq = ls->next_seq++;
        ls->active = seg;
    }
    ls->active->refs++;
    ls->active->writers++;
    *out = ls->active;
    pthread_mutex_unlock(&ls->lock);
    return rc;
}

/* Closes a retired segment nobody references any more. Under ls->lock. */
static void close_retired(struct logset *ls, struct log_segment *s)
{
    if (!s->file || s->refs > 0 || s == ls->active)
        return;
    /* with fsync "interval" its records become durable now, not only once
     * a snapshot covers them */
    if (ls->fsync != CCMS_FSYNC_NONE && seglog_sync(s->file) != 0)
        log_error("WAL: fsync of %s failed: %s", s->path, strerror(errno));
    s->bytes = seglog_size(s->file);
    seglog_close(s->file);
    s->file = NULL;
}

void logset_written(struct logset *ls, struct log_segment *seg)
{
    pthread_mutex_lock(&ls->lock);
    if (--seg->writers == 0 && seg != ls->active)
        pthread_cond_broadcast(&ls->drained);
    pthread_mutex_unlock(&ls->lock);
}

void logset_release(struct logset *ls, struct log_segment *seg)
{
    pthread_mutex_lock(&ls->lock);
    seg->refs--;
    close_retired(ls, seg);
    pthread_mutex_unlock(&ls->lock);
}

uint64_t log_segment_seq(const struct log_segment *seg)
{
    return seg->seq;
}

int log_segment_append(struct logset *ls, struct log_segment *seg, const void *data, size_t len)
{
    (void)ls;
    return seglog_append(seg->file, data, len) == 0 ? 0 : LOGSET_EIO;
}

int log_segment_sync(struct log_segment *seg)
{
    return seglog_sync(seg->file) == 0 ? 0 : LOGSET_EIO;
}

void logset_rotate(struct logset *ls, uint64_t *covered)
{
    pthread_mutex_lock(&ls->lock);
    if (ls->active) {
        retire(ls, ls->active);
        ls->active = NULL;
    }
    *covered = ls->next_seq - 1;
    /* Wait for the writers of retired segments: each is inside one piece
     * of one request (an ingest_batch_feed call). A batch that only waits to sync a
     * segment does not hold this up; the segment is closed when it is done
     * (and not deleted before). */
    for (;;) {
        bool busy = false;
        for (struct log_segment *s = ls->retired; s; s = s->next)
            busy = busy || s->writers > 0;
        if (!busy)
            break;
        pthread_cond_wait(&ls->drained, &ls->lock);
    }
    for (struct log_segment *s = ls->retired; s; s = s->next)
        close_retired(ls, s);
    pthread_mutex_unlock(&ls->lock);
}

size_t logset_drop(struct logset *ls, uint64_t covered)
{
    pthread_mutex_lock(&ls->lock);
    size_t failed = 0, dropped = 0;
    struct log_segment **at = &ls->retired;
    while (*at) {
        struct log_segment *s = *at;
        if (s->seq > covered || s->file || s->refs) {
            at = &s->next;
            continue;
        }
        if (unlink(s->path) != 0 && errno != ENOENT) {
            log_warn("WAL: cannot delete %s: %s; its data is in snapshots, the deletion is "
                     "retried at the next checkpoint run", s->path, strerror(errno));
            failed++;
            at = &s->next;
            continue;
        }
        *at = s->next;
        segment_free(s);
        dropped++;
    }
    pthread_mutex_unlock(&ls->lock);
    if (dropped)
        fs_fsync_dir(ls->dir);
    return failed;
}

int logset_sync_active(struct logset *ls)
{
    pthread_mutex_lock(&ls->lock);
    struct log_segment *seg = ls->active;
    if (seg)
        seg->refs++;        /* not a writer: a sync does not hold up a rotation */
    pthread_mutex_unlock(&ls->lock);
    if (!seg)
        return 0;
    int rc = log_segment_sync(seg);
    logset_release(ls, seg);
    return rc;
}

uint64_t logset_bytes(struct logset *ls)
{
    pthread_mutex_lock(&ls->lock);
    uint64_t total = ls->active ? seglog_size(ls->active->file) : 0;
    for (struct log_segment *s = ls->retired; s; s = s->next)
        total += s->file ? seglog_size(s->file) : s->bytes;
    pthread_mutex_unlock(&ls->lock);
    return total;
}

size_t logset_segment_count(struct logset *ls)
{
    pthread_mutex_lock(&ls->lock);
    size_t n = ls->active ? 1 : 0;
    for (struct log_segment *s = ls->retired; s; s = s->next)
        n++;
    pthread_mutex_unlock(&ls->lock);
    return n;
}
