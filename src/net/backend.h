/*
 * backend — the node provider: asks cc-backend which nodes run jobs, so
 * retention keeps their data (docs/compatibility.md "Node
 * provider").
 *
 *   GET <backend-url>/api/jobs/used_nodes?ts=<unix seconds>
 *   Authorization: Bearer <backend-token>      (when a token is configured)
 *
 * cc-backend v1.5.4 answers {"usedNodes": {"<cluster>": ["<host>", ...]}};
 * the unwrapped {"<cluster>": [...]} that the Go store expected is accepted
 * too. HTTP via libcurl (http and https), 10 s timeout.
 */
#ifndef CCMS_BACKEND_H
#define CCMS_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum backend_error {
    BACKEND_EREQUEST = -7001,   /* connection, timeout, non-200: see the message */
    BACKEND_EFORMAT = -7002,    /* the body is not the expected JSON */
    BACKEND_ENOMEM = -7003,
};

/* The set of (cluster, host) pairs in use; owned, see used_nodes_free. */
struct used_nodes {
    char **keys;                /* "<cluster>/<host>" (names never contain a slash), sorted */
    size_t count;
};

/* Asks the backend. On failure err holds a one-line reason. The request is
 * abandoned as soon as *cancel (if not NULL) becomes true, e.g. at shutdown. */
int backend_used_nodes(const char *base_url, const char *token, int64_t ts,
                       const atomic_bool *cancel, struct used_nodes *out, char *err,
                       size_t err_len);

/* Parses a response body (exposed for tests and the fuzzer). */
int backend_parse_used_nodes(const char *body, size_t len, struct used_nodes *out, char *err,
                             size_t err_len);

bool used_nodes_contains(const struct used_nodes *u, const char *cluster, const char *host);
void used_nodes_free(struct used_nodes *u);

#endif
