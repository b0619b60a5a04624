/*
 * checkpoint — durability: restore at startup, the log records written by
 * ingest, periodic and final snapshots, fsync policy, the export to the Go
 * formats.
 *
 * On disk (docs/file-formats.md), in one of three modes:
 *  - native (file-format "wal", the default): log segments shared by all
 *    hosts (seglog.h, managed by logset.h) and per-host <from>.ccms
 *    snapshots of the buffers as they are in memory (nsnap.h);
 *  - Go formats (checkpoints.write-go-formats): per-host current.wal and
 *    <from>.bin snapshots;
 *  - json: <from>.json checkpoints, no log.
 * Every format is read at startup whatever the mode (the migration path).
 *
 * Every host carries (in level->host_data, guarded by the host lock):
 *  - dirty_from: the oldest sample time written since its last snapshot;
 *  - Go formats: its open current.wal and the WAL files rotated away by
 *    snapshots whose file is not yet durable;
 *  - native: the last level id it handed out (a level's id and the segment
 *    that defined it live in the level, see level.h).
 * A snapshot of a host holds every sample from dirty_from on, whatever its
 * timestamp (late, back-filled or replayed from a log), so a log can be
 * deleted once the snapshot is durable and nothing acknowledged is lost:
 * a host's current.wal with its own snapshot, the native segments once a
 * whole run (which starts by retiring them) has made every host durable.
 * Files are written to .tmp, fsynced, renamed and the directory fsynced.
 * On restore, each host's files are applied in the order they were written
 * (by their `to`), its Go logs after them, the native segments last; a bad
 * file or block is logged, counted and skipped.
 *
 * Ingest side: a checkpoint_batch collects the log records of one request.
 * checkpoint_batch_commit() ends those of the current host while the
 * caller still holds the host's write lock: the Go format appends them to
 * the host's log at once; the native format holds them (up to 256 KB) and
 * checkpoint_batch_flush() appends all held records with one write(2), at
 * the end of every piece of the request the caller stores. A native record
 * that defines series ids is written before the host is unlocked, so no
 * record can use an id ahead of its definition. checkpoint_batch_finish()
 * flushes and applies the fsync policy before the request is answered.
 *
 * Threads: one background worker (periodic snapshots, fsync "interval",
 * early snapshots once the log passed max-wal-size). Runs never overlap
 * (run_lock).
 */
#ifndef CCMS_CHECKPOINT_H
#define CCMS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store/store.h"

enum checkpoint_error {
    CHECKPOINT_EIO = -4301,
    CHECKPOINT_ENOMEM = -4302,
};

struct checkpointer;

struct restore_stats {
    uint64_t files_loaded;
    uint64_t files_failed;      /* undecodable or unreadable: logged and skipped */
    uint64_t files_too_old;     /* window ends before the retention cut-off */
    uint64_t entries_ignored;   /* stray files and directories */
    uint64_t samples;
    uint64_t wal_files;
    uint64_t wal_records;
    uint64_t wal_corrupt;       /* corrupt regions skipped */
    uint64_t wal_torn;          /* files that ended in a torn record */
    uint64_t blocks_lost;       /* native snapshot blocks damaged (each detected by its
                                   checksum) or unusable: left out */
    uint64_t log_segments;      /* native log segments replayed */
    uint64_t log_records;
    uint64_t log_unresolved;    /* samples naming a level whose definition was lost */
    double seconds;
};

struct checkpoint_stats {
    uint64_t hosts_written;
    uint64_t hosts_failed;
    uint64_t bytes_written;
    double seconds;
};

/* What the persistence layer has done, for /api/status. */
struct checkpoint_status {
    const char *format;         /* "native", "go" or "json" */
    uint64_t log_bytes;         /* native log segments on disk */
    uint64_t log_segments;
    struct restore_stats restore;       /* the restore at startup */
    struct checkpoint_stats last_run;   /* the latest snapshot run */
    uint64_t runs;                      /* snapshot runs since the start */
    uint64_t runs_failed;               /* runs in which some host failed */
    double run_seconds;                 /* summed over all runs */
};

void checkpointer_status(struct checkpointer *cp, struct checkpoint_status *out);

/* Creates the checkpointer and installs its host cleanup hook in the store. */
int checkpointer_create(struct store *s, const struct ccms_config *cfg,
                        struct checkpointer **out);
void checkpointer_destroy(struct checkpointer *cp);

/* Loads every checkpoint file and WAL under the checkpoint directory
 * (created if missing) into the store. now - retention is the cut-off,
 * except for hosts keep() names (nodes running jobs): those are loaded
 * whole. keep may be NULL (else it is called from several threads: hosts
 * are restored in parallel, one thread per core). Returns 0, or
 * CHECKPOINT_EIO when the directory cannot be created/read. */
int checkpointer_restore(struct checkpointer *cp, int64_t now, host_filter_fn keep,
                         void *keep_ctx, struct restore_stats *st);

/* Starts the background worker. */
int checkpointer_start(struct checkpointer *cp);
/* Stops the worker (no final snapshot; call checkpointer_run for that). */
void checkpointer_stop(struct checkpointer *cp);

/* Snapshots every host with unsaved data; now is the window end. Returns 0
 * or the first error (other hosts are still tried). */
int checkpointer_run(struct checkpointer *cp, int64_t now, struct checkpoint_stats *st);

/* Writes everything the store holds, host by host, in the Go store's layout
 * and binary format: <dir>/<cluster>/<host>/<from>.bin (one file per host,
 * written crash-safely), for going back to the Go store. Returns 0 or the
 * first error (other hosts are still tried). */
int checkpointer_export_go(struct checkpointer *cp, const char *dir, int64_t now,
                           struct checkpoint_stats *stats);

/* ---- ingest side ---------------------------------------------------------- */

struct checkpoint_batch;

/* cp may be NULL (no persistence): the batch then does nothing. */
int checkpoint_batch_new(struct checkpointer *cp, struct checkpoint_batch **out);

/* Records one accepted sample of the write-locked host h, written to
 * level (sel[0..sel_count) = its names below the host) and metric. */
int checkpoint_batch_add(struct checkpoint_batch *b, struct store_host *h, struct level *level,
                         int metric, const char *const *sel, const size_t *sel_lens,
                         size_t sel_count, int64_t ts, float value);

/* Ends the current host's records and marks the host dirty: the Go format
 * appends them to the host's WAL now, the native format holds them for
 * checkpoint_batch_flush (or writes them now, see above). Call with h still
 * write-locked, before unlocking or switching host. Returns 0,
 * CHECKPOINT_EIO or CHECKPOINT_ENOMEM (the records are then not durable). */
int checkpoint_batch_commit(struct checkpoint_batch *b, struct store_host *h);

/* Appends the held native records with one write(2). Call after the last
 * commit of every piece of input the caller stores (while records are held,
 * the batch holds the log segment, and a snapshot run waits for it).
 * Returns 0 or CHECKPOINT_EIO. */
int checkpoint_batch_flush(struct checkpoint_batch *b);

/* Flushes, then applies the fsync policy to every WAL the batch wrote.
 * Returns 0 or CHECKPOINT_EIO. */
int checkpoint_batch_finish(struct checkpoint_batch *b);

void checkpoint_batch_free(struct checkpoint_batch *b);

#endif
