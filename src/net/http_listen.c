/*
 * http_listen — opening the listening socket and reading TLS material
 * (http.h). Both happen before privileges are dropped.
 */
#include "net/http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/fsutil.h"

/* Splits "host:port" / "[v6]:port" / ":port" into host (maybe "") and port. */
static int http_split_addr(const char *addr, char *host, size_t host_len, char *port,
                           size_t port_len)
{
    const char *colon, *h = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = addr + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            return -1;
        hl = (size_t)(colon - addr);
    }
    if (hl >= host_len || strlen(colon + 1) >= port_len || colon[1] == '\0')
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int http_bind_one(const struct addrinfo *ai, bool dual_stack)
{
    int one = 1, zero = 0;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (dual_stack && ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    /* bound only: listen(2) comes in http_start, once the store is ready,
     * so no connection is accepted during the restore */
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* With an empty host Go listens on every interface: try [::] dual stack
 * first, then 0.0.0.0 (hosts without IPv6). */
static int http_bind_any(const char *host, const char *port, int *fd, char *err,
                         size_t err_len)
{
    static const int families[] = { AF_INET6, AF_INET, AF_UNSPEC };
    int gai = 0, saved = 0;
    bool any = host[0] == '\0';
    for (size_t f = any ? 0 : 2; f < 3; f++) {
        struct addrinfo hints = { .ai_family = families[f], .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE };
        struct addrinfo *res = NULL;
        gai = getaddrinfo(any ? NULL : host, port, &hints, &res);
        for (struct addrinfo *ai = res; gai == 0 && ai != NULL; ai = ai->ai_next) {
            *fd = http_bind_one(ai, any);
            if (*fd >= 0) {
                freeaddrinfo(res);
                return 0;
            }
            saved = errno;
        }
        if (res != NULL)
            freeaddrinfo(res);
    }
    if (saved == 0)
        snprintf(err, err_len, "cannot resolve %s:%s: %s", host, port, gai_strerror(gai));
    else
        snprintf(err, err_len, "cannot bind %s:%s: %s", host, port, strerror(saved));
    return -1;
}

int http_listen(const char *addr, int *fd, char *err, size_t err_len)
{
    char host[256], port[64];
    *fd = -1;
    if (addr == NULL || http_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, err_len, "invalid listen address \"%s\" (expected host:port)",
                 addr ? addr : "");
        return -1;
    }
    return http_bind_any(host, port, fd, err, err_len);
}

/* PEM files are small; anything else is a configuration mistake. */
#define HTTP_MAX_PEM_BYTES (1 << 20)

static char *http_read_file(const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode) || st.st_size > HTTP_MAX_PEM_BYTES) {
        snprintf(err, err_len, "cannot read %s: %s", path,
                 S_ISDIR(st.st_mode) ? "it is a directory, not a PEM file"
                                     : "not a regular file of at most 1 MiB");
        return NULL;
    }
    char *data;
    size_t len;
    int rc = fs_read_file(path, &data, &len);
    if (rc != 0) {
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(-rc));
        return NULL;
    }
    return data;
}

int http_tls_load(const char *cert_file, const char *key_file, struct http_tls *out,
                  char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    errno = 0;
    out->cert_pem = http_read_file(cert_file, err, err_len);
    if (out->cert_pem == NULL)
        return -1;
    out->key_pem = http_read_file(key_file, err, err_len);
    if (out->key_pem == NULL) {
        http_tls_free(out);
        return -1;
    }
    return 0;
}

void http_tls_free(struct http_tls *tls)
{
    free(tls->cert_pem);
    if (tls->key_pem != NULL)
        explicit_bzero(tls->key_pem, strlen(tls->key_pem));
    free(tls->key_pem);
    memset(tls, 0, sizeof(*tls));
}
