/*
 * log — levelled logging to stderr with systemd priority prefixes.
 *
 * Lines look like upstream's: "<6>[INFO]     message", optionally prefixed
 * with the local date and time (-logdate). Messages below the configured
 * level are discarded before formatting. Thread-safe: each line is emitted
 * with a single write(2). The module owns no memory a caller must free.
 */
#ifndef CCMS_LOG_H
#define CCMS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERR, LOG_CRIT };

/* Sets the minimum level and whether lines carry a date. Default: warn, no date. */
void log_init(enum log_level min_level, bool with_date);

/* Parses "debug", "info", "warn", "err" (alias "fatal"), "crit".
 * Returns 0, or -1 for an unknown name (out is left untouched). */
int log_parse_level(const char *name, enum log_level *out);

bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A budget for one kind of repeated message (one static struct log_limit
 * per call site): at most LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW
 * seconds are written; the others are counted, and the next line let
 * through says how many were left out ("... (and 312 more like it in the
 * last 10 s)"). A failing disk or descriptor limit then costs a few lines,
 * not one per host and request.
 */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_WINDOW 10
struct log_limit {
    _Atomic long long window;      /* monotonic seconds / LOG_LIMIT_WINDOW */
    _Atomic unsigned lines;        /* written in this window */
    _Atomic unsigned dropped;      /* left out since the last line written */
};

void log_limited(struct log_limit *lim, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_crit(...)  log_msg(LOG_CRIT, __VA_ARGS__)

#endif
