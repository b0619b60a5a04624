/*
 * conn_guard — see conn_guard.h. Records form a doubly linked list so
 * opening and closing are O(1); the sweep walks the list once a second.
 */
#include "net/conn_guard.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "util/clock.h"

struct conn_guard_entry {
    struct conn_guard_entry *prev, *next;
    int fd;
    bool in_request;
    bool shut;
    int64_t waiting_since_ms;   /* when it started waiting for a request head */
};

struct conn_guard {
    int64_t timeout_ms;
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t wake;
    struct conn_guard_entry *head;
    bool stopping;
    pthread_t thread;
};

/* Shuts down connections that waited too long for a request head. The lock
 * is held, and MHD cannot close (and reuse) an fd whose CLOSED notification
 * waits for that lock, so the fd is still this connection's. */
static void sweep(struct conn_guard *g)
{
    int64_t now = clock_monotonic_ms();
    for (struct conn_guard_entry *e = g->head; e; e = e->next) {
        if (e->in_request || e->shut || now - e->waiting_since_ms < g->timeout_ms)
            continue;
        shutdown(e->fd, SHUT_RDWR);
        e->shut = true;
        log_info("http: closed a connection that sent no complete request within %lld s",
                 (long long)(g->timeout_ms / 1000));
    }
}

static void *guard_main(void *arg)
{
    struct conn_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&g->wake, &g->lock, &deadline);
        if (!g->stopping)
            sweep(g);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int conn_guard_start(int64_t timeout_seconds, struct conn_guard **out)
{
    *out = NULL;
    if (timeout_seconds <= 0)
        return 0;
    struct conn_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->timeout_ms = timeout_seconds * 1000;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void conn_guard_stop(struct conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    while (g->head) {
        struct conn_guard_entry *e = g->head;
        g->head = e->next;
        free(e);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

struct conn_guard_entry *conn_guard_opened(struct conn_guard *g, int fd)
{
    if (!g)
        return NULL;
    struct conn_guard_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->fd = fd;
    e->waiting_since_ms = clock_monotonic_ms();
    pthread_mutex_lock(&g->lock);
    e->next = g->head;
    if (g->head)
        g->head->prev = e;
    g->head = e;
    pthread_mutex_unlock(&g->lock);
    return e;
}

void conn_guard_request_started(struct conn_guard *g, struct conn_guard_entry *e)
{
    if (!g || !e)
        return;
    pthread_mutex_lock(&g->lock);
    e->in_request = true;
    pthread_mutex_unlock(&g->lock);
}

void conn_guard_request_done(struct conn_guard *g, struct conn_guard_entry *e)
{
    if (!g || !e)
        return;
    pthread_mutex_lock(&g->lock);
    e->in_request = false;
    e->waiting_since_ms = clock_monotonic_ms();
    pthread_mutex_unlock(&g->lock);
}

void conn_guard_closed(struct conn_guard *g, struct conn_guard_entry *e)
{
    if (!g || !e)
        return;
    pthread_mutex_lock(&g->lock);
    if (e->prev)
        e->prev->next = e->next;
    else
        g->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    pthread_mutex_unlock(&g->lock);
    free(e);
}
