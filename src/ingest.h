/*
 * ingest — line protocol -> store writes, with per-line error accounting.
 *
 * One ingest_batch is one HTTP request body or one NATS message. Bytes are
 * fed as they arrive (any chunking); every complete line is tokenized
 * (lineproto.h), mapped to a tree path (docs/line-protocol.md, "From a line
 * to a series") and written to the store. A bad line never stops the
 * batch: it is rejected and counted, and the first few errors are kept with
 * their line numbers for the response. Lines for unconfigured metrics are
 * ignored silently (not errors).
 *
 * Per line:
 *  - cluster: the `cluster` tag, else the batch's default cluster;
 *    host: `hostname` or `host` tag (the later one wins); resolved per line.
 *  - `type=node` means host level (its type-id is ignored); otherwise
 *    type+type-id is level 3 and stype+stype-id level 4.
 *  - names (cluster, host, type level, subtype level) must be 1..255 bytes,
 *    not "." or "..", without '/', '\\', NUL or control bytes.
 *  - exactly the field `value`; float, integer or unsigned, finite as float32.
 *  - timestamp: precision given by the batch, or detected by magnitude
 *    (s, ms, us, ns); no timestamp = the batch's receive time. A sample is
 *    accepted iff its time lies in [now - retention, now + future_tolerance],
 *    whatever its series holds and in whatever order samples arrive.
 *
 * Durability: with a checkpointer, every accepted sample's WAL record is
 * ended before the host lock is released and written by the end of the
 * ingest_batch_feed() call that stored it (the records of all hosts in it
 * with one write(2), checkpoint.h); ingest_batch_finish() applies the fsync
 * policy; only then may the request be acknowledged.
 *
 * Concurrency: a batch is used by one thread at a time. It keeps the host
 * lock of the current host between lines of the same host (per-request
 * cache) and releases it whenever it moves to another host, at the end of
 * every ingest_batch_feed() call and in ingest_batch_finish(). While the
 * lock is held, a line whose tag section (its bytes between measurement
 * and fields) the host remembers from an earlier line takes the short way:
 * only its field and timestamp are parsed (store.h, store_host_find_tags);
 * the host remembers every section it was written with the long way.
 */
#ifndef CCMS_INGEST_H
#define CCMS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct checkpointer;

enum ingest_precision {
    INGEST_PRECISION_AUTO = 0,
    INGEST_PRECISION_S,
    INGEST_PRECISION_MS,
    INGEST_PRECISION_US,
    INGEST_PRECISION_NS,
};

/* Parses "s", "ms", "us", "ns" (also "u" and "n", "h"/"m" are rejected).
 * Returns 0 or -1. */
int ingest_parse_precision(const char *text, enum ingest_precision *out);

struct ingest_options {
    const char *default_cluster;   /* copied; NULL or "" = none (lines must carry a cluster tag) */
    enum ingest_precision precision;
    int64_t now;                   /* receive time, Unix seconds */
    size_t max_line_length;        /* bytes */
    unsigned max_new_levels;       /* levels one batch may create; 0 = unlimited */
    int64_t future_tolerance;      /* seconds; < 0 = no limit */
    int64_t retention;             /* seconds (retention-in-memory); <= 0 = no limit */
    struct checkpointer *checkpointer; /* WAL/durability; NULL = memory only */
};

/* Options from the configuration's limits (line length, new levels, future
 * tolerance, retention window) for a batch received at `now`; the caller
 * adds default_cluster, precision and checkpointer. */
void ingest_options_from_config(const struct ccms_config *cfg, int64_t now,
                                struct ingest_options *out);

struct ingest_result {
    uint64_t lines;                /* non-empty, non-comment lines seen */
    uint64_t accepted;             /* samples stored */
    uint64_t rejected;             /* invalid lines */
    uint64_t ignored;              /* lines of unconfigured metrics */
    bool persist_failed;           /* accepted samples could not be written to the WAL
                                      (or fsynced): the client must not count them as durable */
};

struct ingest_batch;

/* Returns 0 or -ENOMEM. */
int ingest_batch_new(struct store *s, const struct ingest_options *opts,
                     struct ingest_batch **out);

/* Feeds a chunk. Returns 0, or -ENOMEM (the batch is then unusable except
 * for finish/free). */
int ingest_batch_feed(struct ingest_batch *b, const char *data, size_t len);

/* Processes a final line without newline and releases the host lock.
 * Returns 0 or -ENOMEM. */
int ingest_batch_finish(struct ingest_batch *b);

void ingest_batch_result(const struct ingest_batch *b, struct ingest_result *out);

/* NUL-terminated summary for the client when something was rejected, e.g.
 * "2 of 5 lines rejected (3 accepted): line 2: at 2:32: expected tag value
 * after tag key \"type\", but none found; line 4: ...". At most the first 5
 * errors are quoted. Owned by the batch; "" when nothing was rejected. */
const char *ingest_batch_error_text(const struct ingest_batch *b);

void ingest_batch_free(struct ingest_batch *b);

/* Totals since start over all batches (for debug/status output). */
void ingest_totals(struct ingest_result *out);

/* Why lines were rejected (counted since start, all sources). */
enum ingest_reject_reason {
    INGEST_REJECT_SYNTAX,      /* not line protocol, or a line too long */
    INGEST_REJECT_NAME,        /* no/invalid cluster, host, type or subtype */
    INGEST_REJECT_FIELD,       /* a field other than a numeric "value" */
    INGEST_REJECT_VALUE,       /* not a finite float32 */
    INGEST_REJECT_TIME,        /* too far in the future, before the retention, out of range */
    INGEST_REJECT_LIMIT,       /* too many new levels in one request */
    INGEST_REJECT_MEMORY,      /* out of memory */
    INGEST_REJECT_REASONS
};

void ingest_rejected_by_reason(uint64_t out[INGEST_REJECT_REASONS]);

/* A short lowercase name for metric labels: "syntax", "name", ... */
const char *ingest_reject_reason_name(enum ingest_reject_reason why);

#endif
