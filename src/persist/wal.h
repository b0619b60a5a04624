/*
 * wal — write-ahead log files (current.wal), byte-compatible with the Go
 * store (docs/file-formats.md): file magic 0xCC1DA701, then records
 *   u32 magic 0xCC1DA7A1 | u32 payload_len | payload | u32 crc32(payload)
 *   payload: i64 ts | u16 name_len | name | u8 n | n x (u8 len | bytes) | u32 float32 bits
 *
 * Three parts:
 *  - record encoding (wal_record_encode) used by ingest to build one batch
 *    of records per host, written with a single write(2);
 *  - struct wal_file, one current.wal of a host: append, fsync, rotate
 *    (close + rename so a new file starts; the old one is deleted by the
 *    checkpointer once the snapshot holding its data is durable). Its
 *    descriptor comes from a process-wide pool with a limit: the least
 *    recently used log is closed and reopened at its next use, so hosts do
 *    not cost a descriptor each;
 *  - scanning/replay: every valid record is delivered; a torn tail is
 *    reported with the offset where valid data ends (the caller truncates
 *    before appending); a corrupt record is skipped by resynchronising on
 *    the next record magic whose CRC verifies, and counted.
 * Calls on one wal_file are serialised by its owner (the host lock); the
 * pool behind them is thread-safe.
 */
#ifndef CCMS_WAL_H
#define CCMS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_FILE_MAGIC 0xCC1DA701u
#define WAL_RECORD_MAGIC 0xCC1DA7A1u
#define WAL_MAX_PAYLOAD (1u << 20)
#define WAL_MAX_SELECTOR 255

enum wal_error {
    WAL_EIO = -4201,        /* see errno */
    WAL_EFORMAT = -4202,    /* not a WAL file: bad file magic and no valid record */
    WAL_ETOO_LONG = -4203,
    WAL_EREPAIR = -4204,    /* replayed, but a torn tail could not be cut off */  /* name > 65535 or component > 255 bytes */
};

/* Bytes a record for this metric and selector needs. */
size_t wal_record_size(size_t metric_len, const size_t *sel_lens, size_t sel_count);

/* Encodes one record into out (at least wal_record_size() bytes). Returns
 * the bytes written, or WAL_ETOO_LONG. */
int wal_record_encode(uint8_t *out, int64_t ts, const char *metric, size_t metric_len,
                      const char *const *sel, const size_t *sel_lens, size_t sel_count,
                      float value);

/* ---- one host's log file ---------------------------------------------------- */

struct wal_file;

/* Opens (creating directories and the file with its magic as needed)
 * <dir>/current.wal for appending. dir is the host directory. With durable
 * (fsync "always"), what it creates is made durable before it returns: the
 * new file and its magic, and the directory entries of the file and of
 * every directory created for it. */
int wal_open(const char *dir, bool durable, struct wal_file **out);
/* Appends len bytes with write(2) (retrying short writes and EINTR). */
int wal_append(struct wal_file *w, const void *data, size_t len);
int wal_sync(struct wal_file *w);
/* The file's size in bytes, header included. */
uint64_t wal_size(const struct wal_file *w);
/* A new descriptor of the file (close-on-exec; the caller closes it), for
 * an fsync after the host lock is released: it stays valid when the pool
 * closes its own or a snapshot rotates the log. -1 and errno on failure. */
int wal_dup_fd(struct wal_file *w);
/* At most limit logs keep a descriptor open (0: no limit; the default).
 * Set once at start from the open files limit. */
void wal_set_open_limit(size_t limit);
/* Logs holding a descriptor right now. */
size_t wal_open_count(void);
/* Closes the file and renames it to <dir>/current.wal.<suffix>; the next
 * wal_open starts a new current.wal. *rotated_path (malloc'd) names the
 * renamed file. The wal_file is freed in any case. */
int wal_rotate(struct wal_file *w, int64_t suffix, char **rotated_path);
void wal_close(struct wal_file *w);

/* ---- reading ---------------------------------------------------------------- */

struct wal_record {
    int64_t ts;
    const char *metric;         /* points into the scanned bytes */
    size_t metric_len;
    const char *sel[WAL_MAX_SELECTOR];
    size_t sel_lens[WAL_MAX_SELECTOR];
    size_t sel_count;
    float value;
};

struct wal_scan_stats {
    uint64_t records;           /* valid records delivered */
    uint64_t corrupt;           /* corrupt regions skipped by resynchronising */
    uint64_t skipped_bytes;     /* bytes inside those regions */
    bool torn_tail;             /* the data ends inside an incomplete record */
    bool bad_header;            /* the file magic is damaged (records were still found) */
    uint64_t valid_end;         /* offset just after the last valid record (or the header) */
};

/* Called per valid record; return non-zero to stop the scan: wal_scan and
 * wal_replay_file then return that value (and do not truncate), with stats
 * covering the bytes up to the end of that record. */
typedef int (*wal_record_fn)(void *ctx, const struct wal_record *rec);

/* Scans a whole WAL image (file magic included). A damaged file magic is
 * treated like damage in the middle: the scan resynchronises on the first
 * valid record and sets stats->bad_header. Returns 0, or WAL_EFORMAT when
 * the magic is wrong and no valid record follows (nothing delivered). An
 * empty input is a valid, empty log. */
int wal_scan(const void *data, size_t len, wal_record_fn fn, void *ctx,
             struct wal_scan_stats *stats);

/* Reads the file at path (opened read-only: a log that cannot be written is
 * still replayed) and scans it. With truncate_torn_tail, a torn or corrupt
 * tail after the last valid record is then cut off with ftruncate(2) on a
 * second, writable descriptor so that later appends follow valid data.
 * Returns 0, WAL_EFORMAT, WAL_EIO (the file could not be read: nothing was
 * replayed) or WAL_EREPAIR (every record was replayed, but the tail could
 * not be cut: see errno). */
int wal_replay_file(const char *path, bool truncate_torn_tail, wal_record_fn fn, void *ctx,
                    struct wal_scan_stats *stats);

#endif
