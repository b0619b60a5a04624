/*
 * faultinject — an LD_PRELOAD shim that makes chosen file-system calls of a
 * process fail (or kill it), for the integration tests of failure modes.
 *
 *   CCMS_FAULTS='<rule>;<rule>;...' LD_PRELOAD=build/faultinject.so ./cc-metric-store ...
 *
 * A rule is  <call>:<path pattern>:<effect>[:<nth>]
 *   call     open (any open), open_w (an open with write access or O_CREAT),
 *            open_r (a read-only open), write, fsync (also fdatasync),
 *            rename (matched on the source or the target), unlink,
 *            ftruncate
 *   pattern  fnmatch(3) pattern on the path ("*" matches "/" too); for
 *            write/fsync/ftruncate the path of the descriptor
 *   effect   an errno name (EACCES, EPERM, EROFS, EIO, ENOSPC, EMFILE,
 *            EDQUOT) to fail with, KILL to raise SIGKILL instead, or
 *            DELAY<ms> to sleep that long and then make the call: delayed
 *            calls of all threads wait one after another, so N of them take
 *            at least N × ms however many threads make them (slow work for
 *            the progress-log tests)
 *   nth      only the nth matching call (1-based); absent or 0 = every one
 *
 * The first rule that matches a call decides. Calls no rule matches go to
 * libc unchanged. Nothing is allocated after the rules are parsed, so the
 * shim is safe in any thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum call { C_OPEN, C_OPEN_W, C_OPEN_R, C_WRITE, C_FSYNC, C_RENAME, C_UNLINK, C_FTRUNCATE };

struct rule {
    enum call call;
    char pattern[PATH_MAX];
    int err;                 /* 0 = KILL (unless delay_ms) */
    long delay_ms;           /* DELAY<ms>: sleep, then make the call */
    long nth;
    _Atomic long seen;
};

#define MAX_RULES 16
static struct rule rules[MAX_RULES];
static int rule_count = -1;  /* -1: not parsed yet */

static const struct { const char *name; int value; } errnos[] = {
    {"EACCES", EACCES}, {"EPERM", EPERM}, {"EROFS", EROFS}, {"EIO", EIO},
    {"ENOSPC", ENOSPC}, {"EMFILE", EMFILE}, {"EDQUOT", EDQUOT}, {"KILL", 0},
};

static const struct { const char *name; enum call call; } calls[] = {
    {"open", C_OPEN}, {"open_w", C_OPEN_W}, {"open_r", C_OPEN_R}, {"write", C_WRITE},
    {"fsync", C_FSYNC}, {"rename", C_RENAME}, {"unlink", C_UNLINK}, {"ftruncate", C_FTRUNCATE},
};

static void parse_rules(void)
{
    rule_count = 0;
    const char *spec = getenv("CCMS_FAULTS");
    if (!spec)
        return;
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *r = strtok_r(buf, ";", &save); r && rule_count < MAX_RULES;
         r = strtok_r(NULL, ";", &save)) {
        char *f[4] = {0};
        int n = 0;
        for (char *p = r; n < 4 && p; n++) {
            f[n] = p;
            p = strchr(p, ':');
            if (p)
                *p++ = '\0';
        }
        if (n < 3)
            continue;
        struct rule *ru = &rules[rule_count];
        size_t i;
        for (i = 0; i < sizeof calls / sizeof calls[0] && strcmp(calls[i].name, f[0]); i++)
            ;
        if (i == sizeof calls / sizeof calls[0])
            continue;
        ru->call = calls[i].call;
        snprintf(ru->pattern, sizeof ru->pattern, "%s", f[1]);
        ru->delay_ms = strncmp(f[2], "DELAY", 5) == 0 ? strtol(f[2] + 5, NULL, 10) : 0;
        for (i = 0; i < sizeof errnos / sizeof errnos[0] && strcmp(errnos[i].name, f[2]); i++)
            ;
        if (i == sizeof errnos / sizeof errnos[0] && ru->delay_ms <= 0)
            continue;
        ru->err = ru->delay_ms > 0 ? 0 : errnos[i].value;
        ru->nth = f[3] ? strtol(f[3], NULL, 10) : 0;
        rule_count++;
    }
}

static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;

/* A DELAY rule: sleeps, one delayed call at a time. */
static void delay(const struct rule *r)
{
    struct timespec ts = { r->delay_ms / 1000, (r->delay_ms % 1000) * 1000000L };
    pthread_mutex_lock(&delay_lock);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    pthread_mutex_unlock(&delay_lock);
}

/* The rule that fails this call, or NULL (also after a DELAY rule slept). */
static struct rule *match(enum call call, const char *path, const char *path2)
{
    if (rule_count < 0)
        parse_rules();
    for (int i = 0; i < rule_count; i++) {
        struct rule *r = &rules[i];
        bool kind = r->call == call || (r->call == C_OPEN && (call == C_OPEN_W || call == C_OPEN_R));
        if (!kind)
            continue;
        if ((!path || fnmatch(r->pattern, path, 0) != 0) &&
            (!path2 || fnmatch(r->pattern, path2, 0) != 0))
            continue;
        long k = atomic_fetch_add(&r->seen, 1) + 1;
        if (r->nth != 0 && k != r->nth)
            continue;
        if (r->delay_ms > 0) {
            int saved = errno;
            delay(r);
            errno = saved;
            return NULL;
        }
        return r;
    }
    return NULL;
}

/* Applies a matched rule: kills, or sets errno and returns -1. */
static int fail(struct rule *r)
{
    if (r->err == 0)
        raise(SIGKILL);
    errno = r->err;
    return -1;
}

static const char *fd_path(int fd, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return buf;
}

/* The libc function this shim wraps, looked up once. */
#define NEXT(name) \
    static __typeof__(&name) next_##name; \
    if (!next_##name) \
        next_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static enum call open_kind(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) ? C_OPEN_W : C_OPEN_R;
}

/* The mode argument of open/openat, present only when a file may be created. */
#define OPEN_MODE(flags, last, mode) \
    do { \
        if ((flags) & (O_CREAT | O_TMPFILE)) { \
            va_list ap; \
            va_start(ap, last); \
            (mode) = (mode_t)va_arg(ap, int); \
            va_end(ap); \
        } \
    } while (0)

/* open(path) is openat(AT_FDCWD, path): one place decides. */
int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, flags, mode);
    return openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    NEXT(openat);
    mode_t mode = 0;
    OPEN_MODE(flags, flags, mode);
    struct rule *r = match(open_kind(flags), path, NULL);
    if (r)
        return fail(r);
    return next_openat(dirfd, path, flags, mode);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    NEXT(write);
    if (rule_count != 0 && fd > 2) {
        char p[PATH_MAX];
        struct rule *r = match(C_WRITE, fd_path(fd, p, sizeof p), NULL);
        if (r)
            return fail(r);
    }
    return next_write(fd, buf, count);
}

static int sync_common(int fd, int (*real)(int))
{
    if (rule_count != 0) {
        char p[PATH_MAX];
        struct rule *r = match(C_FSYNC, fd_path(fd, p, sizeof p), NULL);
        if (r)
            return fail(r);
    }
    return real(fd);
}

int fsync(int fd)
{
    NEXT(fsync);
    return sync_common(fd, next_fsync);
}

int fdatasync(int fd)
{
    NEXT(fdatasync);
    return sync_common(fd, next_fdatasync);
}

int ftruncate(int fd, off_t length)
{
    NEXT(ftruncate);
    if (rule_count != 0) {
        char p[PATH_MAX];
        struct rule *r = match(C_FTRUNCATE, fd_path(fd, p, sizeof p), NULL);
        if (r)
            return fail(r);
    }
    return next_ftruncate(fd, length);
}

int rename(const char *from, const char *to)
{
    NEXT(rename);
    struct rule *r = match(C_RENAME, from, to);
    if (r)
        return fail(r);
    return next_rename(from, to);
}

int unlink(const char *path)
{
    NEXT(unlink);
    struct rule *r = match(C_UNLINK, path, NULL);
    if (r)
        return fail(r);
    return next_unlink(path);
}
