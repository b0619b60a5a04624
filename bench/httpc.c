/* httpc — see httpc.h. */
#define _GNU_SOURCE
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int httpc_init(struct httpc *c, const char *addr, int timeout_s, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->timeout_s = timeout_s > 0 ? timeout_s : 60;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        set_err(err, err_len, "address \"%s\" is not host:port", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof c->host || strlen(colon + 1) >= sizeof c->port) {
        set_err(err, err_len, "address \"%s\" is too long", addr);
        return -1;
    }
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    strcpy(c->port, colon + 1);
    c->in_cap = 64 * 1024;
    c->in = malloc(c->in_cap);
    if (!c->in) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

void httpc_close(struct httpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->dechunk);
    c->in = c->dechunk = NULL;
    c->in_cap = c->dechunk_cap = 0;
}

static void drop_connection(struct httpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int httpc_connect(struct httpc *c, char *err, size_t err_len)
{
    if (c->fd >= 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        set_err(err, err_len, "resolving %s:%s: %s", c->host, c->port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(err, err_len, "connecting to %s:%s: %s", c->host, c->port, strerror(last_errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = c->timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (c->opened_once)
        c->reconnects++;
    c->opened_once = true;
    c->fd = fd;
    return 0;
}

static int send_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Reads more bytes into c->in. Returns bytes read, 0 on EOF, -1 on error. */
static ssize_t read_more(struct httpc *c)
{
    if (c->in_cap - c->in_len < 16 * 1024) {
        size_t ncap = c->in_cap * 2;
        char *n = realloc(c->in, ncap);
        if (!n) {
            errno = ENOMEM;
            return -1;
        }
        c->in = n;
        c->in_cap = ncap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->in_len += (size_t)n;
        return n;
    }
}

static const char *find_crlf2(const char *p, size_t len)
{
    return memmem(p, len, "\r\n\r\n", 4);
}

/* Case-insensitive header lookup inside [hdr, end); value trimmed. */
static bool header_value(const char *hdr, const char *end, const char *name, const char **val,
                         size_t *val_len)
{
    size_t nl = strlen(name);
    const char *p = hdr;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *val = v;
            *val_len = (size_t)(ve - v);
            return true;
        }
        p = eol + 2;
    }
    return false;
}

/*
 * Decodes a chunked body starting at c->in + start, reading more as needed.
 * Returns 0 with the body in c->dechunk, or -1.
 */
static int read_chunked(struct httpc *c, size_t start, size_t *body_len, char *err,
                        size_t err_len)
{
    size_t pos = start, out = 0;
    for (;;) {
        const char *eol;
        while (!(eol = memmem(c->in + pos, c->in_len - pos, "\r\n", 2))) {
            ssize_t n = read_more(c);
            if (n <= 0) {
                set_err(err, err_len, "reading chunk size: %s", n == 0 ? "EOF" : strerror(errno));
                return -1;
            }
        }
        char *endp;
        unsigned long long size = strtoull(c->in + pos, &endp, 16);
        if (endp == c->in + pos) {
            set_err(err, err_len, "bad chunk size line");
            return -1;
        }
        pos = (size_t)(eol - c->in) + 2;
        if (size == 0) {
            /* trailers, then an empty line */
            for (;;) {
                while (!(eol = memmem(c->in + pos, c->in_len - pos, "\r\n", 2))) {
                    ssize_t n = read_more(c);
                    if (n <= 0) {
                        set_err(err, err_len, "reading chunk trailer: EOF");
                        return -1;
                    }
                }
                bool empty = eol == c->in + pos;
                pos = (size_t)(eol - c->in) + 2;
                if (empty)
                    break;
            }
            *body_len = out;
            return 0;
        }
        while (c->in_len - pos < size + 2) {
            ssize_t n = read_more(c);
            if (n <= 0) {
                set_err(err, err_len, "reading chunk: %s", n == 0 ? "EOF" : strerror(errno));
                return -1;
            }
        }
        if (c->dechunk_cap < out + size + 1) {
            size_t ncap = (out + size + 1) * 2;
            char *n = realloc(c->dechunk, ncap);
            if (!n) {
                set_err(err, err_len, "out of memory");
                return -1;
            }
            c->dechunk = n;
            c->dechunk_cap = ncap;
        }
        memcpy(c->dechunk + out, c->in + pos, size);
        out += size;
        pos += size + 2;
    }
}

/* Returns 0, -1 (error), or 1 (connection was closed before any byte: retryable). */
static int request_once(struct httpc *c, const char *method, const char *target,
                        const char *extra_headers, const char *body, size_t body_len,
                        struct httpc_response *resp, char *err, size_t err_len)
{
    char head[2048];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: ccms-bench\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      method, target, c->host, c->port, body_len,
                      extra_headers ? extra_headers : "");
    if (hl < 0 || (size_t)hl >= sizeof head) {
        set_err(err, err_len, "request head too long");
        return -1;
    }
    struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, body_len}};
    if (send_all(c->fd, iov, body_len ? 2 : 1) != 0) {
        int e = errno;
        set_err(err, err_len, "sending: %s", strerror(e));
        return (e == EPIPE || e == ECONNRESET) ? 1 : -1;
    }

    c->in_len = 0;
    const char *hend;
    size_t hdr_end;
    int status;
    for (;;) {
        size_t scan_from = 0;
        while (!(hend = find_crlf2(c->in + scan_from, c->in_len - scan_from))) {
            ssize_t n = read_more(c);
            if (n == 0 && c->in_len == 0) {
                set_err(err, err_len, "connection closed before the response");
                return 1;
            }
            if (n <= 0) {
                set_err(err, err_len, "reading response head: %s",
                        n == 0 ? "EOF" : strerror(errno));
                return (n < 0 && errno == ECONNRESET && c->in_len == 0) ? 1 : -1;
            }
        }
        hdr_end = (size_t)(hend - c->in) + 4;
        if (c->in_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0) {
            set_err(err, err_len, "not an HTTP/1.x response");
            return -1;
        }
        status = atoi(c->in + 9);
        if (status >= 100 && status < 200) {
            /* interim response: drop it and read the real one */
            memmove(c->in, c->in + hdr_end, c->in_len - hdr_end);
            c->in_len -= hdr_end;
            continue;
        }
        break;
    }

    const char *hdrs = memchr(c->in, '\n', hdr_end);
    hdrs = hdrs ? hdrs + 1 : c->in + hdr_end;
    const char *hdrs_end = c->in + hdr_end - 2;
    const char *v;
    size_t vl;
    bool close_after = false;
    if (header_value(hdrs, hdrs_end, "Connection", &v, &vl) && vl == 5 &&
        strncasecmp(v, "close", 5) == 0)
        close_after = true;
    if (c->in[7] == '0')
        close_after = true;   /* HTTP/1.0 without keep-alive handling */

    size_t blen = 0;
    const char *bptr = NULL;
    bool no_body = strcmp(method, "HEAD") == 0 || status == 204 || status == 304;
    if (no_body) {
        bptr = c->in + hdr_end;
    } else if (header_value(hdrs, hdrs_end, "Transfer-Encoding", &v, &vl) &&
               vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0) {
        if (read_chunked(c, hdr_end, &blen, err, err_len) != 0)
            return -1;
        bptr = c->dechunk ? c->dechunk : "";
    } else if (header_value(hdrs, hdrs_end, "Content-Length", &v, &vl)) {
        unsigned long long cl = strtoull(v, NULL, 10);
        while (c->in_len - hdr_end < cl) {
            ssize_t n = read_more(c);
            if (n <= 0) {
                set_err(err, err_len, "reading body: %s", n == 0 ? "EOF" : strerror(errno));
                return -1;
            }
        }
        blen = (size_t)cl;
        bptr = c->in + hdr_end;
    } else {
        for (;;) {
            ssize_t n = read_more(c);
            if (n == 0)
                break;
            if (n < 0) {
                set_err(err, err_len, "reading body: %s", strerror(errno));
                return -1;
            }
        }
        close_after = true;
        blen = c->in_len - hdr_end;
        bptr = c->in + hdr_end;
    }
    resp->status = status;
    resp->body = bptr;
    resp->body_len = blen;
    if (close_after)
        drop_connection(c);
    return 0;
}

int httpc_request(struct httpc *c, const char *method, const char *target,
                  const char *extra_headers, const char *body, size_t body_len,
                  struct httpc_response *resp, char *err, size_t err_len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = c->fd < 0;
        if (fresh && httpc_connect(c, err, err_len) != 0)
            return -1;
        int rc = request_once(c, method, target, extra_headers, body, body_len, resp, err,
                              err_len);
        if (rc == 0)
            return 0;
        drop_connection(c);
        if (rc < 0 || fresh)
            return -1;
        /* a kept-alive connection died under us: retry once on a new one */
    }
    return -1;
}
