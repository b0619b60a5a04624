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
 *    was due while the store was down) and then every R.
 *
 * Data only leaves memory after it is on disk: before freeing, unsaved data
 * is written by a checkpoint run, so nothing acknowledged disappears from
 * both memory and disk because of a policy.
 *
 * One background thread; the retention object owns it.
 */
#ifndef CCMS_RETENTION_H
#define CCMS_RETENTION_H

#include <stdint.h>

#include "config.h"
#include "store/store.h"

struct checkpointer;
struct retention;

/* cp may be NULL (memory only). */
int retention_create(struct store *s, struct checkpointer *cp, const struct ccms_config *cfg,
                     struct retention **out);
void retention_destroy(struct retention *r);

int retention_start(struct retention *r);
void retention_stop(struct retention *r);

/* One retention pass at time now; *freed = buffers freed. */
int retention_free_old(struct retention *r, int64_t now, uint64_t *freed);

/* Frees oldest-first until the store is within the cap; *freed_bytes is
 * what was released. No-op when the cap is 0 or not exceeded. */
int retention_enforce_cap(struct retention *r, uint64_t *freed_bytes);

#endif
