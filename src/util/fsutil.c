/*
 * fsutil — see fsutil.h.
 */
#include "util/fsutil.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/prom.h"
#include "util/clock.h"

/* mkdir -p; with durable, the parent of every directory created is fsynced
 * (after the creation, so the new entry is on disk). */
static int mkdir_p(const char *path, bool durable)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *p = copy + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0755) == 0) {
            if (durable) {
                char *slash = strrchr(copy, '/');
                if (slash == copy) {
                    rc = fs_fsync_dir("/");
                } else if (slash) {
                    *slash = '\0';
                    rc = fs_fsync_dir(copy);
                    *slash = '/';
                } else {
                    rc = fs_fsync_dir(".");
                }
                if (rc != 0)
                    break;
            }
        } else if (errno != EEXIST) {
            rc = -errno;
            break;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    return rc;
}

int fs_mkdir_p(const char *path)
{
    return mkdir_p(path, false);
}

int fs_mkdir_p_durable(const char *path)
{
    return mkdir_p(path, true);
}

int fs_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static struct prom_histogram fs_log_sync_hist;

int fs_log_datasync(int fd)
{
    int64_t start = clock_monotonic_ns();
    int rc = fdatasync(fd) == 0 ? 0 : -errno;
    int saved = errno;
    int64_t ns = clock_monotonic_ns() - start;
    prom_observe_ns(&fs_log_sync_hist, ns > 0 ? (uint64_t)ns : 0);
    errno = saved;
    return rc;
}

const struct prom_histogram *fs_log_sync_latency(void)
{
    return &fs_log_sync_hist;
}

int fs_write_all(int fd, const void *buf, size_t len)
{
    const char *data = buf;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char *final_path = fs_join(dir, name);
    char *tmp_path = final_path ? malloc(strlen(final_path) + 5) : NULL;
    if (!tmp_path) {
        free(final_path);
        return -ENOMEM;
    }
    sprintf(tmp_path, "%s.tmp", final_path);
    int rc = 0;
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
    } else {
        rc = fs_write_all(fd, data, len);
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        if (close(fd) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp_path, final_path) != 0)
            rc = -errno;
        if (rc != 0)
            unlink(tmp_path);
        else
            rc = fs_fsync_dir(dir);
    }
    free(tmp_path);
    free(final_path);
    return rc;
}

int fs_read_file(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the file shrank: use what was read */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

char *fs_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

char *fs_join3(const char *a, const char *b, const char *c)
{
    char *ab = fs_join(a, b);
    if (!ab)
        return NULL;
    char *abc = fs_join(ab, c);
    free(ab);
    return abc;
}

int fs_map_file(const char *path, const void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = -errno;
        } else {
            *data = p;
            *len = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}

void fs_unmap_file(const void *data, size_t len)
{
    if (data && len)
        munmap((void *)data, len);
}
