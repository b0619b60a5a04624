/*
 * Tests for accept_front: real sockets on 127.0.0.1, a hand-off callback
 * that collects descriptors. Waits are bounded by a count of short sleeps
 * (a generous 5 s in all), never by the machine's speed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/accept_front.h"

struct collected {
    pthread_mutex_t lock;
    int fds[16];
    size_t n;
};

static void collect(void *ctx, int fd, const struct sockaddr *addr, socklen_t addr_len)
{
    struct collected *c = ctx;
    assert_true(addr_len >= sizeof(struct sockaddr_in));
    assert_int_equal(addr->sa_family, AF_INET);
    pthread_mutex_lock(&c->lock);
    if (c->n < 16)
        c->fds[c->n++] = fd;
    else
        close(fd);
    pthread_mutex_unlock(&c->lock);
}

static size_t collected_count(struct collected *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Waits (at most 5 s) until the collector holds n descriptors. */
static void wait_collected(struct collected *c, size_t n)
{
    for (int i = 0; i < 500 && collected_count(c) < n; i++)
        pause_ms(10);
    assert_int_equal(collected_count(c), n);
}

/* True when the server closed the socket (EOF within 5 s). */
static bool closed_by_server(int fd)
{
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b;
    ssize_t r = recv(fd, &b, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Still open: nothing to read and no EOF for 50 ms. */
static bool still_open(int fd)
{
    struct timeval tv = { 0, 50000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b;
    ssize_t r = recv(fd, &b, 1, 0);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct fixture {
    int port;
    struct accept_front *front;
    struct collected got;
};

static void start(struct fixture *fx, struct accept_front_options opts)
{
    memset(fx, 0, sizeof *fx);
    pthread_mutex_init(&fx->got.lock, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(listen(lfd, 64), 0);
    fx->port = ntohs(sa.sin_port);
    assert_int_equal(accept_front_start(lfd, &opts, collect, &fx->got, &fx->front), 0);
}

static void stop(struct fixture *fx)
{
    accept_front_stop(fx->front);
    for (size_t i = 0; i < fx->got.n; i++)
        close(fx->got.fds[i]);
    pthread_mutex_destroy(&fx->got.lock);
}

static int dial(struct fixture *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

static const struct accept_front_options defaults = {
    .head_timeout_ms = 5000, .max_pending = 64, .max_per_client = 8,
};

/* A head in two pieces is handed off only once complete, unconsumed. */
static void test_hands_off_complete_heads(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, defaults);
    int c = dial(&fx);
    send_str(c, "GET /api/status HTTP/1.1\r\nHost: x\r\n");
    pause_ms(100);
    assert_int_equal(collected_count(&fx.got), 0);
    send_str(c, "\r\n");
    wait_collected(&fx.got, 1);
    static const char head[] = "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[64] = { 0 };
    assert_int_equal(recv(fx.got.fds[0], buf, sizeof buf - 1, 0), (ssize_t)strlen(head));
    assert_string_equal(buf, head);
    /* bare LF line ends count too */
    int d = dial(&fx);
    send_str(d, "GET / HTTP/1.0\n\n");
    wait_collected(&fx.got, 2);
    struct accept_front_stats st;
    accept_front_stats(fx.front, &st);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.handed_off, 2);
    assert_int_equal(accept_front_waiting(fx.front), 0);
    close(c);
    close(d);
    stop(&fx);
}

/* A head that fills the peek window is handed off as it is (the server
 * answers it); TLS connections at their first byte. */
static void test_long_heads_and_tls(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, defaults);
    int c = dial(&fx);
    char big[20000];
    memset(big, 'a', sizeof big);
    size_t sent = 0;
    while (sent < sizeof big) {
        ssize_t n = send(c, big + sent, sizeof big - sent, 0);
        assert_true(n > 0);
        sent += (size_t)n;
    }
    wait_collected(&fx.got, 1);
    close(c);
    stop(&fx);

    struct accept_front_options tls = defaults;
    tls.tls = true;
    start(&fx, tls);
    c = dial(&fx);
    send_str(c, "\x16");
    wait_collected(&fx.got, 1);
    close(c);
    stop(&fx);
}

/* Past max_per_client a client's new connections are closed at once; the
 * waiting ones stay. */
static void test_per_client_limit(void **state)
{
    (void)state;
    struct accept_front_options o = defaults;
    o.max_per_client = 2;
    struct fixture fx;
    start(&fx, o);
    int a = dial(&fx), b = dial(&fx), c = dial(&fx);
    assert_true(closed_by_server(c));
    assert_true(still_open(a));
    assert_true(still_open(b));
    struct accept_front_stats st;
    accept_front_stats(fx.front, &st);
    assert_int_equal(st.refused_client, 1);
    assert_int_equal(accept_front_waiting(fx.front), 2);
    /* one of them leaves: room for a new one */
    close(a);
    for (int i = 0; i < 500 && accept_front_waiting(fx.front) != 1; i++)
        pause_ms(10);
    int d = dial(&fx);
    assert_true(still_open(d));
    send_str(d, "GET / HTTP/1.1\r\n\r\n");
    wait_collected(&fx.got, 1);
    accept_front_stats(fx.front, &st);
    assert_int_equal(st.hung_up, 1);
    close(b);
    close(c);
    close(d);
    stop(&fx);
}

/* With max_pending waiting, the oldest is displaced by a newcomer. */
static void test_oldest_displaced_when_full(void **state)
{
    (void)state;
    struct accept_front_options o = defaults;
    o.max_pending = 2;
    o.max_per_client = 0;
    struct fixture fx;
    start(&fx, o);
    int a = dial(&fx);
    assert_true(still_open(a));
    int b = dial(&fx);
    assert_true(still_open(b));
    int c = dial(&fx);
    assert_true(closed_by_server(a));
    assert_true(still_open(b));
    assert_true(still_open(c));
    struct accept_front_stats st;
    accept_front_stats(fx.front, &st);
    assert_int_equal(st.displaced, 1);
    close(a);
    close(b);
    close(c);
    stop(&fx);
}

/* No complete head within the timeout: closed; a partial head and EOF:
 * closed at once. */
static void test_timeout_and_hang_up(void **state)
{
    (void)state;
    struct accept_front_options o = defaults;
    o.head_timeout_ms = 200;
    struct fixture fx;
    start(&fx, o);
    int a = dial(&fx);
    send_str(a, "GET / HT");
    assert_true(closed_by_server(a));
    int b = dial(&fx);
    send_str(b, "GET / HT");
    shutdown(b, SHUT_WR);
    assert_true(closed_by_server(b));
    struct accept_front_stats st;
    accept_front_stats(fx.front, &st);
    assert_int_equal(st.timed_out + st.hung_up, 2);
    assert_true(st.timed_out >= 1);
    assert_int_equal(st.handed_off, 0);
    assert_int_equal(collected_count(&fx.got), 0);
    close(a);
    close(b);
    stop(&fx);
}

/* Stopping closes the waiting connections and the listening socket. */
static void test_stop_closes_everything(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, defaults);
    int a = dial(&fx);
    assert_true(still_open(a));
    int port = fx.port;
    stop(&fx);
    assert_true(closed_by_server(a));
    close(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    assert_string_equal(accept_front_strerror(ACCEPT_FRONT_ENOMEM), "out of memory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hands_off_complete_heads),
        cmocka_unit_test(test_long_heads_and_tls),
        cmocka_unit_test(test_per_client_limit),
        cmocka_unit_test(test_oldest_displaced_when_full),
        cmocka_unit_test(test_timeout_and_hang_up),
        cmocka_unit_test(test_stop_closes_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
