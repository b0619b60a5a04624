/*
 * seglog — the native write-ahead log: segment files shared by all hosts,
 * one record per host and request (docs/file-formats.md, "Native log").
 *
 * A segment is <directory>/wal-<seq>.log (seq: 20 decimal digits):
 *   header:  u32 magic 0xCC106001 | u16 version 1 | u16 0 | u64 seq |
 *            u32 table_len | table | u32 crc32(every header byte before it)
 *            table: u16 count, count x (u16 len, name)   the configured metrics
 *   records: u32 magic 0xCC10D47A | u32 payload_len | u32 crc32(payload) | payload
 * A record carries the samples one writer accepted for one host: its
 * cluster and host names, the definitions of levels first used in this
 * segment (a host-local level id and its names below the host), then the
 * samples as (level id, metric index into the table, time delta, value in
 * the decimal integer form when one round-trips, else the float's bits).
 * Level id 0 is the host level itself and needs no definition. Ids are
 * defined once per segment by the writer holding the host's lock, so a
 * definition always lies before its first use.
 *
 * This module is the format (record builder, scanner) and the file (create,
 * append, sync, replay). Which segment is active and when one is deleted is
 * the checkpointer's business. Pure byte functions allocate nothing but
 * the buffers they are handed.
 */
#ifndef CCMS_SEGLOG_H
#define CCMS_SEGLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jsonw.h"

#define SEGLOG_FILE_MAGIC 0xCC106001u
#define SEGLOG_RECORD_MAGIC 0xCC10D47Au
#define SEGLOG_VERSION 1
#define SEGLOG_HEADER_FIXED 20          /* header bytes before the metric table */
#define SEGLOG_RECORD_HEADER 12
#define SEGLOG_MAX_PAYLOAD (64u << 20)
#define SEGLOG_MAX_DEPTH 6              /* names below the host in one definition */
#define SEGLOG_MAX_METRICS 65535

enum seglog_error {
    SEGLOG_EIO = -4601,         /* see errno */
    SEGLOG_EFORMAT = -4602,     /* not a segment: bad header (nothing delivered) */
    SEGLOG_ENOMEM = -4603,
    SEGLOG_ETOO_LONG = -4604,   /* a name over 255 bytes, a record over the limit */
};

const char *seglog_strerror(int code);

/* ---- building one record ----------------------------------------------------- */

/* One host's record under construction. Reused: seglog_record_begin
 * starts the next one. */
struct seglog_builder {
    struct jbuf defs;
    struct jbuf samples;
    uint32_t def_count;
    uint32_t sample_count;
    int64_t prev_ts;
    char cluster[256];
    char host[256];
    uint8_t cluster_len, host_len;
    uint8_t decimals_hint;      /* the decimal count that fitted last */
};

void seglog_builder_init(struct seglog_builder *b);
void seglog_builder_free(struct seglog_builder *b);
/* Starts a record for a host (names of 1..255 bytes). */
int seglog_record_begin(struct seglog_builder *b, const char *cluster, size_t cluster_len,
                        const char *host, size_t host_len);
/* Defines level_id (>= 1) as the path names[0..depth) below the host. */
int seglog_record_def(struct seglog_builder *b, uint32_t level_id, const char *const *names,
                      const size_t *lens, size_t depth);
int seglog_record_sample(struct seglog_builder *b, uint32_t level_id, uint32_t metric,
                         int64_t ts, float value);
static inline bool seglog_record_empty(const struct seglog_builder *b)
{
    return b->def_count == 0 && b->sample_count == 0;
}
/* Appends the whole record (header, payload, checksum) to out and clears
 * the builder's defs and samples. Returns 0, SEGLOG_ENOMEM or
 * SEGLOG_ETOO_LONG. */
int seglog_record_end(struct seglog_builder *b, struct jbuf *out);

/* ---- reading ----------------------------------------------------------------- */

struct seglog_def {
    uint32_t level_id;
    uint32_t depth;
    const char *names[SEGLOG_MAX_DEPTH];   /* point into the scanned bytes */
    size_t lens[SEGLOG_MAX_DEPTH];
};

struct seglog_sample {
    int64_t ts;
    float value;
    uint32_t level_id;
    uint32_t metric;            /* index into the segment's metric table */
};

/* One decoded record; its arrays belong to the scanner and are valid
 * during the callback only. */
struct seglog_record {
    const char *cluster, *host;
    size_t cluster_len, host_len;
    const struct seglog_def *defs;
    size_t def_count;
    const struct seglog_sample *samples;
    size_t sample_count;
};

struct seglog_header {
    uint64_t seq;
    size_t metric_count;
    const char **metrics;       /* point into the scanned bytes */
    size_t *metric_lens;
};

struct seglog_scan_stats {
    uint64_t records;           /* valid records delivered */
    uint64_t samples;
    uint64_t corrupt;           /* corrupt regions skipped by resynchronising */
    uint64_t skipped_bytes;
    bool torn_tail;             /* the data ends inside an incomplete record */
    uint64_t valid_end;         /* offset after the last valid record (or the header) */
};

/* Called once with the header, then per valid record; a non-zero return
 * stops the scan and is returned. */
struct seglog_reader {
    int (*header)(void *ctx, const struct seglog_header *h);
    int (*record)(void *ctx, const struct seglog_record *r);
    void *ctx;
};

/*
 * Scans a whole segment image. A record whose checksum or contents do not
 * verify is skipped by resynchronising on the next record magic whose
 * record verifies, and counted. Returns 0, SEGLOG_EFORMAT (bad header:
 * nothing delivered), SEGLOG_ENOMEM, or a callback's non-zero value.
 */
int seglog_scan(const void *data, size_t len, const struct seglog_reader *rd,
                struct seglog_scan_stats *stats);

/* Reads the file and scans it; with truncate_torn_tail a torn or corrupt
 * tail after the last valid record is cut off. Returns like seglog_scan,
 * or SEGLOG_EIO when the file cannot be read. */
int seglog_replay_file(const char *path, bool truncate_torn_tail,
                       const struct seglog_reader *rd, struct seglog_scan_stats *stats);

/* ---- one segment file -------------------------------------------------------- */

struct seglog_file;

/* "wal-<seq>.log" into name (at least 32 bytes); seglog_parse_name is the
 * inverse (false for any other name). */
void seglog_name(uint64_t seq, char *name, size_t size);
bool seglog_parse_name(const char *name, uint64_t *seq);

/* Creates <dir>/wal-<seq>.log (it must not exist) with its header and the
 * metric table. With durable, the header and the directory entry are
 * fsynced before it returns. */
int seglog_create(const char *dir, uint64_t seq, const char *const *metrics, size_t metric_count,
                  bool durable, struct seglog_file **out);
/* Appends with one write(2) (short writes and EINTR retried). Thread-safe:
 * concurrent appends never interleave. */
int seglog_append(struct seglog_file *f, const void *data, size_t len);
/* fdatasync of everything appended so far; concurrent callers whose bytes
 * another call already covered return without a second sync. */
int seglog_sync(struct seglog_file *f);
uint64_t seglog_size(const struct seglog_file *f);
uint64_t seglog_seq(const struct seglog_file *f);
const char *seglog_path(const struct seglog_file *f);
void seglog_close(struct seglog_file *f);

#endif
