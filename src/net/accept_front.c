/*
 * accept_front — see accept_front.h.
 *
 * Waiting connections form a list in accept order. The timeout is the same
 * for all, so the oldest is always the next to expire and the one to
 * displace: expiry and displacement are O(1) from the list's head. Each
 * connection is in the epoll set edge-triggered: the bytes looked at with
 * MSG_PEEK stay in the socket, and the next event comes when more arrive.
 * Clients are counted in a small chained table keyed by the 16-byte address
 * (IPv4 as v4-mapped IPv6); an entry lives while it has waiting connections.
 */
#include "net/accept_front.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util/clock.h"
#include "util/hash.h"

#define FRONT_PEEK_MAX 16384        /* a head this long is handed off as it is */
#define FRONT_EVENTS 64
#define FRONT_CLIENT_BUCKETS 4096
#define FRONT_PAUSE_MS 100          /* out of descriptors with nobody to displace */

struct client {
    struct client *next;
    unsigned char addr[16];
    size_t waiting;
};

struct waiting {
    struct waiting *older, *newer;
    int fd;
    int64_t since_ms;
    struct client *client;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

struct accept_front {
    struct accept_front_options opts;
    accept_front_handoff_fn handoff;
    void *ctx;
    int listen_fd;
    int epoll_fd;
    int wake_fd;
    bool listen_paused;
    int64_t resume_ms;
    struct waiting *oldest, *newest;
    atomic_size_t waiting;
    struct client *clients[FRONT_CLIENT_BUCKETS];
    atomic_bool stopping;
    pthread_t thread;
    unsigned char peek[FRONT_PEEK_MAX];
    struct {
        atomic_uint_fast64_t accepted, handed_off, timed_out, refused_client, displaced, hung_up;
    } n;
};

/* epoll data for the two descriptors that are not connections */
static char listen_tag, wake_tag;

const char *accept_front_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case ACCEPT_FRONT_ENOMEM:
        return "out of memory";
    case ACCEPT_FRONT_ESYS:
        return "cannot set up the accept thread (epoll, eventfd or thread)";
    default:
        return "unknown accept_front error";
    }
}

/* ---- clients ---------------------------------------------------------------- */

static void client_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else if (ss->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
}

static struct client **client_slot(struct accept_front *f, const unsigned char key[16])
{
    struct client **p = &f->clients[hash_bytes(key, 16) % FRONT_CLIENT_BUCKETS];
    while (*p && memcmp((*p)->addr, key, 16) != 0)
        p = &(*p)->next;
    return p;
}

static void client_release(struct accept_front *f, struct client *c)
{
    if (--c->waiting > 0)
        return;
    struct client **p = client_slot(f, c->addr);
    *p = c->next;
    free(c);
}

/* ---- the waiting list ----------------------------------------------------------- */

static void waiting_unlink(struct accept_front *f, struct waiting *w)
{
    if (w->older)
        w->older->newer = w->newer;
    else
        f->oldest = w->newer;
    if (w->newer)
        w->newer->older = w->older;
    else
        f->newest = w->older;
    atomic_fetch_sub(&f->waiting, 1);
    client_release(f, w->client);
}

/* Takes w out of the epoll set and the list; the descriptor stays open. */
static void waiting_remove(struct accept_front *f, struct waiting *w)
{
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    waiting_unlink(f, w);
}

/* Counters move before the descriptor closes: whoever sees the close sees
 * the count. */
static void waiting_close(struct accept_front *f, struct waiting *w, atomic_uint_fast64_t *why)
{
    atomic_fetch_add(why, 1);
    waiting_remove(f, w);
    close(w->fd);
    free(w);
}

static void waiting_hand_off(struct accept_front *f, struct waiting *w)
{
    waiting_remove(f, w);
    atomic_fetch_add(&f->n.handed_off, 1);
    f->handoff(f->ctx, w->fd, (const struct sockaddr *)&w->addr, w->addr_len);
    free(w);
}

static void expire(struct accept_front *f, int64_t now)
{
    while (f->oldest && now - f->oldest->since_ms >= f->opts.head_timeout_ms)
        waiting_close(f, f->oldest, &f->n.timed_out);
}

/* ---- accepting ------------------------------------------------------------------ */

static struct log_limit accept_errors;

static void pause_listening(struct accept_front *f)
{
    epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, f->listen_fd, NULL);
    f->listen_paused = true;
    f->resume_ms = clock_monotonic_ms() + FRONT_PAUSE_MS;
}

static void resume_listening(struct accept_front *f)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listen_tag };
    if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->listen_fd, &ev) == 0)
        f->listen_paused = false;
    else
        f->resume_ms = clock_monotonic_ms() + FRONT_PAUSE_MS;
}

/* Registers a new connection; closes it when the client is over its limit
 * or memory runs out. */
static void admit(struct accept_front *f, int fd, const struct sockaddr_storage *addr,
                  socklen_t addr_len)
{
    unsigned char key[16];
    client_key(addr, key);
    struct client **slot = client_slot(f, key);
    if (*slot && f->opts.max_per_client && (*slot)->waiting >= f->opts.max_per_client) {
        atomic_fetch_add(&f->n.refused_client, 1);
        close(fd);
        return;
    }
    if (atomic_load(&f->waiting) >= f->opts.max_pending && f->oldest) {
        waiting_close(f, f->oldest, &f->n.displaced);
        slot = client_slot(f, key);     /* the displaced one may have freed *slot */
    }
    struct waiting *w = calloc(1, sizeof *w);
    if (!*slot && w) {
        *slot = calloc(1, sizeof **slot);
        if (*slot)
            memcpy((*slot)->addr, key, 16);
    }
    if (!w || !*slot) {
        free(w);
        close(fd);
        log_limited(&accept_errors, LOG_ERR, "http: out of memory accepting a connection");
        return;
    }
    w->fd = fd;
    w->since_ms = clock_monotonic_ms();
    w->client = *slot;
    w->addr = *addr;
    w->addr_len = addr_len;
    w->client->waiting++;
    w->older = f->newest;
    if (f->newest)
        f->newest->newer = w;
    else
        f->oldest = w;
    f->newest = w;
    atomic_fetch_add(&f->waiting, 1);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = w };
    if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_limited(&accept_errors, LOG_ERR, "http: cannot watch a new connection: %s",
                    strerror(errno));
        waiting_unlink(f, w);
        close(fd);
        free(w);
    }
}

static void accept_all(struct accept_front *f)
{
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        int fd = accept4(f->listen_fd, (struct sockaddr *)&addr, &addr_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            atomic_fetch_add(&f->n.accepted, 1);
            admit(f, fd, &addr, addr_len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EMFILE || errno == ENFILE) {
            /* the longest-waiting connection gives its descriptor to the
             * new one; with nobody waiting, try again a little later */
            if (f->oldest) {
                waiting_close(f, f->oldest, &f->n.displaced);
                continue;
            }
            log_limited(&accept_errors, LOG_WARN,
                        "http: out of file descriptors accepting connections (raise "
                        "LimitNOFILE or lower max-connections)");
            pause_listening(f);
            return;
        }
        log_limited(&accept_errors, LOG_ERR, "http: accept failed: %s", strerror(errno));
        pause_listening(f);
        return;
    }
}

/* ---- a waiting connection became readable -------------------------------------------- */

static bool head_complete(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n' || (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n'))
            return true;
    }
    return false;
}

static void readable(struct accept_front *f, struct waiting *w, uint32_t events)
{
    ssize_t n = recv(w->fd, f->peek, sizeof f->peek, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            waiting_close(f, w, &f->n.hung_up);
        return;
    }
    if (n <= 0) {
        waiting_close(f, w, &f->n.hung_up);
        return;
    }
    if (f->opts.tls || (size_t)n == sizeof f->peek || head_complete(f->peek, (size_t)n)) {
        waiting_hand_off(f, w);
        return;
    }
    /* part of a head, and the client will send no more */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        waiting_close(f, w, &f->n.hung_up);
}

/* ---- the thread ----------------------------------------------------------------- */

static void *front_main(void *arg)
{
    struct accept_front *f = arg;
    struct epoll_event events[FRONT_EVENTS];
    while (!atomic_load(&f->stopping)) {
        int64_t now = clock_monotonic_ms();
        int64_t wait_ms = 1000;
        if (f->oldest && f->oldest->since_ms + f->opts.head_timeout_ms - now < wait_ms)
            wait_ms = f->oldest->since_ms + f->opts.head_timeout_ms - now;
        if (f->listen_paused && f->resume_ms - now < wait_ms)
            wait_ms = f->resume_ms - now;
        int n = epoll_wait(f->epoll_fd, events, FRONT_EVENTS, wait_ms > 0 ? (int)wait_ms : 0);
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &listen_tag) {
                accept_all(f);
            } else if (tag == &wake_tag) {
                uint64_t count;
                if (read(f->wake_fd, &count, sizeof count) < 0) {
                    /* the stop flag is what matters, checked above */
                }
            } else {
                readable(f, tag, events[i].events);
            }
        }
        now = clock_monotonic_ms();
        expire(f, now);
        if (f->listen_paused && now >= f->resume_ms)
            resume_listening(f);
    }
    return NULL;
}

int accept_front_start(int listen_fd, const struct accept_front_options *opts,
                       accept_front_handoff_fn handoff, void *ctx, struct accept_front **out)
{
    *out = NULL;
    struct accept_front *f = calloc(1, sizeof *f);
    if (!f) {
        close(listen_fd);
        return ACCEPT_FRONT_ENOMEM;
    }
    f->opts = *opts;
    f->handoff = handoff;
    f->ctx = ctx;
    f->listen_fd = listen_fd;
    f->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &listen_tag };
    struct epoll_event wev = { .events = EPOLLIN, .data.ptr = &wake_tag };
    int saved_errno = 0;
    if (f->epoll_fd < 0 || f->wake_fd < 0 ||
        epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev) != 0 ||
        epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->wake_fd, &wev) != 0)
        saved_errno = errno;
    else
        saved_errno = pthread_create(&f->thread, NULL, front_main, f);
    if (saved_errno != 0) {
        if (f->epoll_fd >= 0)
            close(f->epoll_fd);
        if (f->wake_fd >= 0)
            close(f->wake_fd);
        close(listen_fd);
        free(f);
        errno = saved_errno;
        return ACCEPT_FRONT_ESYS;
    }
    *out = f;
    return 0;
}

void accept_front_stop(struct accept_front *f)
{
    if (!f)
        return;
    atomic_store(&f->stopping, true);
    uint64_t one = 1;
    if (write(f->wake_fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only when the counter is full: awake anyway */
    }
    pthread_join(f->thread, NULL);
    while (f->oldest)
        waiting_close(f, f->oldest, &f->n.hung_up);
    close(f->listen_fd);
    close(f->wake_fd);
    close(f->epoll_fd);
    free(f);
}

void accept_front_stats(struct accept_front *f, struct accept_front_stats *out)
{
    out->accepted = atomic_load(&f->n.accepted);
    out->handed_off = atomic_load(&f->n.handed_off);
    out->timed_out = atomic_load(&f->n.timed_out);
    out->refused_client = atomic_load(&f->n.refused_client);
    out->displaced = atomic_load(&f->n.displaced);
    out->hung_up = atomic_load(&f->n.hung_up);
}

size_t accept_front_waiting(struct accept_front *f)
{
    return atomic_load(&f->waiting);
}
