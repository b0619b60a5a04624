/*
 * retention — keeps memory and the checkpoint directory within bounds:
 *
 *  - retention: every R/2 (R = retention-in-memory) buffers that ended
 *    before now - R are freed; with main.backend-url the hosts cc-backend
 *    reports in use keep theirs (when the backend cannot be asked, retention
 *    frees anyway and logs why);
 *  - memory cap: checked every second against the store's exact byte
 *    count; when over, the buffers with the oldest data are freed first,
 *    across all hosts, until under (memory-cap 0 = unlimited);
 *  - checkpoint cleanup (cleanup.h): at startup (catching up on a run that
 *    was due while the store was down) and then every R; files of hosts in
 *    use are kept;
 *  - pruning: a host whose data has all been freed (and then an empty
 *    cluster) is removed from the tree, except hosts in use;
 *  - compaction: every minute, buffers that were written out of order and
 *    have gone quiet are encoded (store_compact).
 *
 * Data only leaves memory after it is on disk: before freeing, unsaved data
 * is written by a checkpoint run, so nothing acknowledged disappears from
 * both memory and disk because of a policy.
 *
 * One background thread; the retention object owns it.
 */
#ifndef CCMS_RETENTION_H
#define CCMS_RETENTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "net/backend.h"
#include "store/store.h"

struct checkpointer;
struct retention;

/*
 * Asks the node provider (main.backend-url) which nodes run jobs at ts.
 * Returns true with *out filled (free with used_nodes_free). Returns false
 * without a provider, or when it cannot be asked: then one log line says
 * why and that `fallback` happens instead. cancel may be NULL.
 */
bool retention_nodes_in_use(const struct ccms_config *cfg, int64_t ts, const atomic_bool *cancel,
                            const char *fallback, struct used_nodes *out);

/* A host_filter_fn over a struct used_nodes: true for the nodes in use. */
bool retention_host_in_use(void *used_nodes, const char *cluster, const char *host);

/* cp may be NULL (memory only). */
int retention_create(struct store *s, struct checkpointer *cp, const struct ccms_config *cfg,
                     struct retention **out);
void retention_destroy(struct retention *r);

int retention_start(struct retention *r);
void retention_stop(struct retention *r);

/* The retention thread's families of GET /metrics (retention, memory cap,
 * cleanup and archive runs since the start), Prometheus text format. */
struct jbuf;
void retention_metrics(struct jbuf *b);

/* One retention pass at time now; *freed = buffers freed. */
int retention_free_old(struct retention *r, int64_t now, uint64_t *freed);

/* Frees oldest-first until the store is within the cap; *freed_bytes is
 * what was released. No-op when the cap is 0 or not exceeded. */
int retention_enforce_cap(struct retention *r, uint64_t *freed_bytes);

#endif
