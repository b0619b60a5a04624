/*
 * nats — line-protocol ingestion from NATS subscriptions (README "NATS",
 * docs/compatibility.md).
 *
 * One cnats connection to `nats.address` (a comma-separated server list;
 * user/password when both are non-empty; a .creds file when configured).
 * Every `metric-store.nats-subscriptions` entry is one plain subscription
 * (or, with "jetstream", a push subscription of a durable JetStream
 * consumer whose messages are acknowledged once stored in the log, see
 * README "JetStream"),
 * and every message on it is one ingest batch (ingest.h) exactly like a
 * POST /api/write body: the entry's `cluster-tag` is the default cluster
 * (only for that subscription), the receive time is "now", the limits are
 * the HTTP ones and the checkpointer gives the WAL durability. A bad line
 * never drops the rest of its message; rejected lines are counted and
 * logged at warn level (rate-limited). Nothing is sent back.
 *
 * Workers and ordering: each subscription has `num-workers` decoder
 * threads, each with a bounded queue. A message whose lines all name one
 * host goes to the worker that owns that host (hash of the name), so the
 * samples of a host are decoded in arrival order while different hosts
 * decode in parallel. A message that mixes hosts (or that the cheap
 * pre-scan cannot classify) is a barrier: the subscription's delivery
 * thread waits until its workers are idle and decodes it itself. When a
 * queue is full the delivery thread blocks; cnats then buffers up to its
 * pending limits (1,000,000 messages / 1 GiB per subscription) and only
 * beyond them drops messages, which are counted as "dropped".
 *
 * Connection: never given up. cnats reconnects forever (backoff 250 ms
 * doubling to 5 s), also after a failed first connect; when cnats closes
 * the connection for good (repeated authorization errors) a supervisor
 * thread builds a new one after a backoff (1 s doubling to 30 s). State
 * changes are logged once each (disconnected, reconnected, closed), never
 * per attempt. Every 60 s with traffic the counters are logged at info.
 *
 * Ownership: the module owns its threads, the connection and every
 * received message; it borrows cfg, store and checkpointer, which must
 * outlive nats_ingest_stop(). Counters are process-wide, like
 * ingest_totals().
 */
#ifndef CCMS_NATS_H
#define CCMS_NATS_H

#include <stddef.h>

#include "config.h"
#include "store/store.h"
#include "util/jsonw.h"

struct checkpointer;
struct nats_ingest;

/*
 * Connects and subscribes; call after the checkpointer has restored the
 * store (src/main.c). *out is NULL when NATS is not configured, has no
 * subscriptions, or its options are unusable (logged; the process runs on
 * without NATS, as upstream). Returns 0, or -ENOMEM / -EAGAIN (threads) /
 * -EBUSY (an instance is already running: one per process) with nothing
 * left running.
 */
int nats_ingest_start(const struct ccms_config *cfg, struct store *store,
                      struct checkpointer *cp, struct nats_ingest **out);

/*
 * Drains the subscriptions (every message cnats has received is decoded
 * and stored), joins the workers, closes the connection and frees ni.
 * Call before the final checkpoint. NULL is a no-op.
 */
void nats_ingest_stop(struct nats_ingest *ni);

/*
 * Appends `,"nats":{"connected":…,"subscriptions":…,"messages":…,"bytes":…,
 * "lines":…,"accepted":…,"rejected":…,"ignored":…,"errors":…,
 * "reconnects":…,"dropped":…,"js_acked":…,"js_redeliver_requested":…,
 * "js_pending":…,"js_ack_pending":…,"js_redelivered":…}` (process totals;
 * js_acked and js_redeliver_requested count this store's JetStream
 * acknowledgements and naks, the last three are the consumers' lag as the
 * server reported it at the last look, every 2 s) for GET /api/status.
 */
void nats_ingest_status_json(struct jbuf *b);

/* The lines of NATS messages since the start (lines, accepted, rejected,
 * ignored; part of ingest_totals), for per-source figures. */
struct ingest_result;
void nats_ingest_totals(struct ingest_result *out);

/* The NATS families of GET /metrics (connection, messages, drops,
 * JetStream acknowledgements and consumer lag), Prometheus text format. */
void nats_ingest_metrics(struct jbuf *b);

enum nats_ingest_hosts {
    NATS_INGEST_NO_HOST = 0,   /* no line names a host (all rejected or comments) */
    NATS_INGEST_ONE_HOST,      /* every line that names a host names the same one */
    NATS_INGEST_MIXED_HOSTS,   /* several hosts, or a line the pre-scan cannot read */
};

/*
 * The routing pre-scan of one message: which host its lines write to, as
 * ingest resolves it (the last `host` or `hostname` tag of a line). For
 * NATS_INGEST_ONE_HOST, host and host_len give the name inside data. A backslash in
 * the measurement or tags makes the message MIXED (safe: decoded in order).
 */
enum nats_ingest_hosts nats_ingest_classify(const char *data, size_t len, const char **host,
                                            size_t *host_len);

#endif
