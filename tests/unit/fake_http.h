/*
 * fake_http — a one-request HTTP server on 127.0.0.1 for tests of code that
 * calls out (the cc-backend node provider). fake_http_start() binds an
 * ephemeral port and serves exactly one request in a thread with the
 * canned response; fake_http_finish() joins it. The request text is kept.
 */
#ifndef CCMS_FAKE_HTTP_H
#define CCMS_FAKE_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake_http {
    int listen_fd;
    int port;
    const char *response;
    char request[4096];
    pthread_t thread;
};

static void *fake_http_serve(void *arg)
{
    struct fake_http *f = arg;
    int c = accept(f->listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t got = 0;
    while (got < sizeof f->request - 1 && !strstr(f->request, "\r\n\r\n")) {
        ssize_t n = read(c, f->request + got, sizeof f->request - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        f->request[got] = '\0';
    }
    ssize_t w = write(c, f->response, strlen(f->response));
    (void)w;
    close(c);
    return NULL;
}

static inline int fake_http_start(struct fake_http *f, const char *response)
{
    memset(f->request, 0, sizeof f->request);
    f->response = response;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->listen_fd, 1) != 0)
        return -1;
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &len);
    f->port = ntohs(sa.sin_port);
    return pthread_create(&f->thread, NULL, fake_http_serve, f);
}

static inline void fake_http_finish(struct fake_http *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

#endif
