/*
 * host_filter — one callback type for "leave this host alone": retention,
 * restore and cleanup use it for the nodes cc-backend reports as running
 * jobs (net/backend.h, archive/retention.h). ctx is the caller's.
 */
#ifndef CCMS_HOST_FILTER_H
#define CCMS_HOST_FILTER_H

#include <stdbool.h>

typedef bool (*host_filter_fn)(void *ctx, const char *cluster, const char *host);

#endif
