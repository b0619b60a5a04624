/*
 * accept_front — accepts connections and holds each one, without a thread
 * and without libmicrohttpd, until its request head has arrived; only then
 * is it handed to the HTTP server (which may give it a thread of its own).
 *
 * Why: the server runs a thread per connection by default, and every
 * connection counts against `max-connections`. Connections that never send
 * a request (idle sockets, slow-loris heads) would take those slots from
 * everybody else. Here they cost a descriptor and a small record in one
 * epoll set, and are bounded three ways:
 *  - a client (IP address) may have at most max_per_client connections
 *    waiting here; further ones are closed at once;
 *  - a connection waiting longer than head_timeout_ms is closed;
 *  - when max_pending connections wait, the one waiting longest is closed
 *    to admit the new one, so a newcomer always gets a chance.
 * "Arrived" means: for plain HTTP, the bytes waiting in the socket (looked
 * at with MSG_PEEK, not consumed) hold the blank line ending the head, or
 * fill the peek window; for TLS, any bytes (the handshake is the server's
 * business, its later slowness is bounded by the connection guard).
 *
 * One thread owns the epoll set, the listening socket (once started) and
 * every waiting connection; a handed-off descriptor belongs to the callee.
 */
#ifndef CCMS_ACCEPT_FRONT_H
#define CCMS_ACCEPT_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct accept_front;

/* Receives a connection whose request head arrived; owns fd from then on. */
typedef void (*accept_front_handoff_fn)(void *ctx, int fd, const struct sockaddr *addr,
                                        socklen_t addr_len);

struct accept_front_options {
    int64_t head_timeout_ms;    /* > 0 */
    size_t max_pending;         /* > 0 */
    size_t max_per_client;      /* 0: no per-client limit */
    bool tls;
};

struct accept_front_stats {
    uint64_t accepted;
    uint64_t handed_off;
    uint64_t timed_out;         /* no complete head within the timeout */
    uint64_t refused_client;    /* the client had max_per_client waiting */
    uint64_t displaced;         /* closed to admit a newer one (max_pending) */
    uint64_t hung_up;           /* the client closed before its head was complete */
};

enum accept_front_error {
    ACCEPT_FRONT_ENOMEM = -4501,
    ACCEPT_FRONT_ESYS = -4502,  /* epoll/eventfd/thread creation failed: see errno */
};

/* Starts the thread on a listening, non-blocking socket; the socket belongs
 * to the front from then on (also on failure). */
int accept_front_start(int listen_fd, const struct accept_front_options *opts,
                       accept_front_handoff_fn handoff, void *ctx, struct accept_front **out);
/* Stops accepting, closes the listening socket and every waiting
 * connection, joins the thread and frees the front. NULL is a no-op. */
void accept_front_stop(struct accept_front *f);

/* A snapshot of the counters (thread-safe). */
void accept_front_stats(struct accept_front *f, struct accept_front_stats *out);
/* Connections waiting for their head right now. */
size_t accept_front_waiting(struct accept_front *f);

const char *accept_front_strerror(int code);

#endif
