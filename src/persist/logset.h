/*
 * logset — the segments of the native write-ahead log (seglog.h) and their
 * life: one active segment that every writer appends to, retired segments
 * waiting for a snapshot run that covers them, deletion after it.
 *
 * The rule that makes deletion safe: a writer holds the segment it appends
 * to from before it encodes a record until the record is written, and it
 * writes the samples to memory before the record. (An ingest batch holds it
 * across the hosts of one piece of a request and writes their records
 * together, checkpoint.h.)
 * logset_rotate() retires the active segment and returns only when no
 * writer holds a retired one any more; so a snapshot run that starts after
 * it sees in memory every sample of every retired segment, and once all its
 * snapshots are durable logset_drop() may delete them. (A batch that still
 * has to fsync a segment keeps a reference but is no writer: the segment
 * stays open, and on disk, until it lets go.)
 *
 * Segments found on disk at startup are adopted as retired (their records
 * were replayed into memory): the first complete snapshot run deletes them.
 * Thread-safe.
 */
#ifndef CCMS_LOGSET_H
#define CCMS_LOGSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum logset_error {
    LOGSET_EIO = -4801,         /* see errno */
    LOGSET_ENOMEM = -4802,
};

struct logset;
struct log_segment;

/* metrics (copied) name the configured metrics in index order: every
 * segment's header carries them. */
int logset_create(const char *dir, const char *const *metrics, size_t metric_count,
                  enum ccms_fsync_policy fsync, struct logset **out);
void logset_destroy(struct logset *ls);

/* A segment found on disk and replayed: retired until the next complete
 * run; new segments are numbered after it. */
int logset_adopt(struct logset *ls, uint64_t seq, const char *path);

/* The active segment (created on first use), with a reference for the
 * caller as its writer. logset_written() ends the writing (the record is
 * written, or will not be); logset_release() drops the reference (after a
 * sync, if the caller syncs). Returns 0 or LOGSET_EIO / LOGSET_ENOMEM. */
int logset_acquire(struct logset *ls, struct log_segment **out);
void logset_written(struct logset *ls, struct log_segment *seg);
void logset_release(struct logset *ls, struct log_segment *seg);
uint64_t log_segment_seq(const struct log_segment *seg);
/* One write(2) of a whole record (or several). */
int log_segment_append(struct logset *ls, struct log_segment *seg, const void *data, size_t len);
int log_segment_sync(struct log_segment *seg);

/* Retires the active segment and waits until no writer holds a reference
 * to a retired segment. *covered is the newest retired sequence number:
 * what logset_drop may delete once a run that started after this call has
 * made every snapshot durable. */
void logset_rotate(struct logset *ls, uint64_t *covered);
/* Deletes the retired segments numbered <= covered. Returns how many
 * could not be deleted (kept, retried at the next drop). */
size_t logset_drop(struct logset *ls, uint64_t covered);

/* fsync "interval": syncs the active segment if it grew since. */
int logset_sync_active(struct logset *ls);

/* Bytes in all segments on disk (for max-wal-size and /api/status). */
uint64_t logset_bytes(struct logset *ls);
size_t logset_segment_count(struct logset *ls);

#endif
