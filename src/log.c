/*
 * log — see log.h. Each line is formatted into one buffer and emitted with a
 * single write(2), so concurrent lines never interleave (for lines up to
 * PIPE_BUF bytes even when stderr is a pipe shared with other processes).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_min_level = LOG_WARN;
static atomic_bool log_with_date = false;

/* systemd (sd-daemon) priority prefixes, padded like upstream's ccLogger. */
static const char *const log_prefixes[] = {
    [LOG_DEBUG] = "<7>[DEBUG]    ",
    [LOG_INFO] = "<6>[INFO]     ",
    [LOG_WARN] = "<4>[WARNING]  ",
    [LOG_ERR] = "<3>[ERROR]    ",
    [LOG_CRIT] = "<2>[CRITICAL] ",
};

#define LOG_STACK_LINE 1024
/* Longer messages are cut here rather than allocating without bound. */
#define LOG_MAX_LINE (64 * 1024)

void log_init(enum log_level min_level, bool with_date)
{
    if (min_level < LOG_DEBUG)
        min_level = LOG_DEBUG;
    if (min_level > LOG_CRIT)
        min_level = LOG_CRIT;
    atomic_store(&log_min_level, (int)min_level);
    atomic_store(&log_with_date, with_date);
}

int log_parse_level(const char *name, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
        {"err", LOG_ERR},     {"fatal", LOG_ERR}, {"crit", LOG_CRIT},
    };
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

static void log_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing stderr */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Writes "<prefix>[date ]" into buf (which has room for it); returns its length. */
static size_t log_format_head(char *buf, size_t cap, enum log_level level)
{
    size_t n = strlen(log_prefixes[level]);
    memcpy(buf, log_prefixes[level], n);
    if (atomic_load_explicit(&log_with_date, memory_order_relaxed)) {
        /* Same layout as Go's log.LstdFlags, after the priority prefix so
         * journald still sees the priority at the start of the line. */
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm) != NULL)
            n += strftime(buf + n, cap - n, "%Y/%m/%d %H:%M:%S ", &tm);
    }
    return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < LOG_DEBUG || level > LOG_CRIT || !log_enabled(level))
        return;

    char stack[LOG_STACK_LINE];
    char *buf = stack;
    size_t head = log_format_head(stack, sizeof stack, level);

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(stack + head, sizeof stack - head, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;

    size_t body = (size_t)m;
    size_t cap = sizeof stack;
    if (head + body + 2 > sizeof stack) {
        if (body > LOG_MAX_LINE)
            body = LOG_MAX_LINE;
        cap = head + body + 2;
        char *big = malloc(cap);
        if (big == NULL) {
            body = sizeof stack - head - 2; /* keep the truncated stack copy */
            cap = sizeof stack;
        } else {
            memcpy(big, stack, head);
            va_start(ap, fmt);
            vsnprintf(big + head, cap - head, fmt, ap);
            va_end(ap);
            buf = big;
        }
    }

    /* Names from requests end up in messages: control bytes are replaced
     * so nobody can forge extra log lines (or journal priorities). */
    while (body > 0 && buf[head + body - 1] == '\n')
        body--;
    for (size_t i = head; i < head + body; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            buf[i] = '?';
    }
    size_t len = head + body;
    buf[len++] = '\n';
    log_write_all(buf, len);
    if (buf != stack)
        free(buf);
}

void log_limited(struct log_limit *lim, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long window = (long long)ts.tv_sec / LOG_LIMIT_WINDOW;
    long long seen = atomic_load(&lim->window);
    if (seen != window && atomic_compare_exchange_strong(&lim->window, &seen, window))
        atomic_store(&lim->lines, 0);
    if (atomic_fetch_add(&lim->lines, 1) >= LOG_LIMIT_BURST) {
        atomic_fetch_add(&lim->dropped, 1);
        return;
    }
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    unsigned dropped = atomic_exchange(&lim->dropped, 0);
    if (dropped)
        log_msg(level, "%s (and %u more like it left out of the log)", text, dropped);
    else
        log_msg(level, "%s", text);
}
