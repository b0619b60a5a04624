/*
 * conn_guard — closes connections that do not deliver a complete request
 * head within the read timeout (slow-loris clients).
 *
 * libmicrohttpd only has an idle timeout, which a client resets by sending
 * one byte at a time, and it calls the server only once the headers are
 * complete. The guard learns about every connection from MHD's connection
 * notifications, is told when a request starts and ends, and a background
 * thread shuts down (shutdown(2)) every connection that has been waiting
 * for a request head for longer than the timeout; MHD then closes it.
 * Bodies are limited separately by http.c (whole-request deadline).
 *
 * The guard owns one small record per open connection and its thread; all
 * state is behind one mutex, which the MHD callbacks and the thread share.
 */
#ifndef CCMS_CONN_GUARD_H
#define CCMS_CONN_GUARD_H

#include <stdint.h>

struct conn_guard;
struct conn_guard_entry;

/* Starts the guard thread. timeout_seconds <= 0 disables it (*out = NULL). */
int conn_guard_start(int64_t timeout_seconds, struct conn_guard **out);
/* Stops the thread and frees the guard; call after the server stopped. */
void conn_guard_stop(struct conn_guard *g);

/* MHD_CONNECTION_NOTIFY_STARTED: returns the record to keep as the socket
 * context (NULL when out of memory: that connection is then not guarded). */
struct conn_guard_entry *conn_guard_opened(struct conn_guard *g, int fd);
/* A request head arrived / the request finished (keep-alive waits again). */
void conn_guard_request_started(struct conn_guard *g, struct conn_guard_entry *e);
void conn_guard_request_done(struct conn_guard *g, struct conn_guard_entry *e);
/* MHD_CONNECTION_NOTIFY_CLOSED: frees the record. */
void conn_guard_closed(struct conn_guard *g, struct conn_guard_entry *e);

#endif
