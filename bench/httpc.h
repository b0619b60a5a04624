/*
 * httpc — a minimal blocking HTTP/1.1 client for the benchmark drivers.
 *
 * One struct httpc is one keep-alive TCP connection used by one thread,
 * one request at a time (no pipelining). It sends a request with a
 * Content-Length body in one sendmsg() loop and reads the complete answer
 * (Content-Length, chunked, or until close). The connection is (re)opened
 * lazily, so a server that closes an idle or "Connection: close" connection
 * does not fail the next request. Socket timeouts bound every call, so a
 * stuck server cannot hang a benchmark run.
 *
 * Ownership: the response body lives in the connection's buffer and stays
 * valid until the next request on the same connection.
 */
#ifndef BENCH_HTTPC_H
#define BENCH_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct httpc {
    int fd;                 /* -1 when not connected */
    char host[256];
    char port[16];
    int timeout_s;          /* send/receive timeout */
    char *in;               /* receive buffer (headers + raw body) */
    size_t in_cap, in_len;
    char *body;             /* decoded body (chunked) or points into `in` */
    char *dechunk;          /* buffer for decoded chunked bodies */
    size_t dechunk_cap;
    unsigned reconnects;    /* connections opened after the first one */
    bool opened_once;
};

struct httpc_response {
    int status;
    const char *body;       /* not NUL-terminated in general; see body_len */
    size_t body_len;
};

/* Parses "host:port" (host may be "[v6]") into c; does not connect yet.
 * Returns 0 or -1 with a message in err. */
int httpc_init(struct httpc *c, const char *addr, int timeout_s, char *err, size_t err_len);
void httpc_close(struct httpc *c);
/* Connects now (used to open all connections before timing). 0 or -1. */
int httpc_connect(struct httpc *c, char *err, size_t err_len);

/*
 * Sends `method target` with the given extra header lines (each ending in
 * "\r\n", may be NULL) and body, and reads the whole response into *resp.
 * Returns 0 (any HTTP status) or -1 on a transport/protocol error, with a
 * message in err. A request that fails because a kept-alive connection was
 * closed before anything was read is retried once on a new connection.
 */
int httpc_request(struct httpc *c, const char *method, const char *target,
                  const char *extra_headers, const char *body, size_t body_len,
                  struct httpc_response *resp, char *err, size_t err_len);

#endif
