/*
 * wal — see wal.h. Record layout and CRC as in docs/file-formats.md.
 *
 * Reading differs from upstream on purpose (docs/compatibility.md): a bad record does not
 * end the replay. The scanner looks for the next offset holding a complete
 * record that parses and whose CRC verifies, counts the skipped region, and
 * goes on. Only when no valid record follows is the rest a tail: a torn tail
 * if it starts like a record that was cut short, otherwise a corrupt one.
 * Like upstream, bytes after the value inside a payload are ignored.
 */
#include "persist/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32.h"
#include "util/fsutil.h"
#include "util/le.h"

#define WAL_NAME "current.wal"
#define WAL_HEADER_SIZE 4
#define WAL_RECORD_OVERHEAD 12          /* magic, payload_len, crc */
#define WAL_MIN_PAYLOAD (8 + 2 + 1 + 4) /* ts, name_len, count, value */

struct wal_file {
    int fd;                      /* -1 while closed by the descriptor pool */
    unsigned busy;               /* calls using fd right now: never evicted */
    uint64_t size;
    char *dir;
    char *path;                  /* <dir>/current.wal */
    struct wal_file *newer, *older;   /* the pool's list of open files */
};

/*
 * The descriptor pool. A host's log stays a wal_file from its first write
 * to its next snapshot, but its descriptor is only a cache: when more than
 * wal_open_limit logs are open, the least recently used one is closed and
 * reopened (O_APPEND) at its next use. So a write to 150,000 hosts needs no
 * 150,000 descriptors. The pool's mutex guards fd, busy and the list of
 * every wal_file; a descriptor is used only between pool_acquire and
 * pool_release (busy > 0), so an evicting thread never closes a descriptor
 * another thread is writing to. Callers serialise the calls on one
 * wal_file (host lock); the pool serialises across files.
 */
static struct {
    pthread_mutex_t lock;
    struct wal_file *newest, *oldest;
    size_t open;
    size_t limit;                /* 0: no limit */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- records -------------------------------------------------------------------- */

size_t wal_record_size(size_t metric_len, const size_t *sel_lens, size_t sel_count)
{
    size_t n = WAL_RECORD_OVERHEAD + WAL_MIN_PAYLOAD + metric_len;
    for (size_t i = 0; i < sel_count; i++)
        n += 1 + sel_lens[i];
    return n;
}

int wal_record_encode(uint8_t *out, int64_t ts, const char *metric, size_t metric_len,
                      const char *const *sel, const size_t *sel_lens, size_t sel_count,
                      float value)
{
    if (metric_len > UINT16_MAX || sel_count > WAL_MAX_SELECTOR)
        return WAL_ETOO_LONG;
    for (size_t i = 0; i < sel_count; i++)
        if (sel_lens[i] > UINT8_MAX)
            return WAL_ETOO_LONG;
    size_t total = wal_record_size(metric_len, sel_lens, sel_count);
    size_t payload_len = total - WAL_RECORD_OVERHEAD;

    uint8_t *p = out;
    le_put(p, WAL_RECORD_MAGIC, 4);
    le_put(p + 4, payload_len, 4);
    p += 8;
    uint8_t *payload = p;
    le_put(p, (uint64_t)ts, 8);
    le_put(p + 8, metric_len, 2);
    p += 10;
    memcpy(p, metric, metric_len);
    p += metric_len;
    *p++ = (uint8_t)sel_count;
    for (size_t i = 0; i < sel_count; i++) {
        *p++ = (uint8_t)sel_lens[i];
        memcpy(p, sel[i], sel_lens[i]);
        p += sel_lens[i];
    }
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    le_put(p, bits, 4);
    p += 4;
    le_put(p, crc32_ieee(payload, payload_len), 4);
    return (int)total;
}

/* ---- scanning ------------------------------------------------------------------- */

enum wal_parse {
    WAL_PARSE_OK,
    WAL_PARSE_SHORT, /* a plausible record start that the input cuts off */
    WAL_PARSE_BAD,
};

static bool wal_parse_payload(const uint8_t *p, size_t n, struct wal_record *rec)
{
    if (n < WAL_MIN_PAYLOAD)
        return false;
    rec->ts = (int64_t)le_get(p, 8);
    rec->metric_len = (size_t)le_get(p + 8, 2);
    size_t pos = 10;
    if (rec->metric_len > n - pos)
        return false;
    rec->metric = (const char *)p + pos;
    pos += rec->metric_len;
    if (pos >= n)
        return false;
    rec->sel_count = p[pos++];
    for (size_t i = 0; i < rec->sel_count; i++) {
        if (pos >= n)
            return false;
        size_t m = p[pos++];
        if (m > n - pos)
            return false;
        rec->sel[i] = (const char *)p + pos;
        rec->sel_lens[i] = m;
        pos += m;
    }
    if (n - pos < 4)
        return false;
    uint32_t bits = (uint32_t)le_get(p + pos, 4);
    memcpy(&rec->value, &bits, sizeof bits);
    return true;
}

/* Classifies the bytes at p[0..avail) as a record start; on OK fills rec
 * and *size. */
static enum wal_parse wal_parse_at(const uint8_t *p, size_t avail, struct wal_record *rec,
                                   size_t *size)
{
    static const uint8_t magic[4] = {0xA1, 0xA7, 0x1D, 0xCC};
    if (avail < 4)
        return memcmp(p, magic, avail) == 0 ? WAL_PARSE_SHORT : WAL_PARSE_BAD;
    if (memcmp(p, magic, 4) != 0)
        return WAL_PARSE_BAD;
    if (avail < 8)
        return WAL_PARSE_SHORT;
    size_t payload_len = (size_t)le_get(p + 4, 4);
    if (payload_len > WAL_MAX_PAYLOAD || payload_len < WAL_MIN_PAYLOAD)
        return WAL_PARSE_BAD;
    if (avail < WAL_RECORD_OVERHEAD + payload_len)
        return WAL_PARSE_SHORT;
    const uint8_t *payload = p + 8;
    if (!wal_parse_payload(payload, payload_len, rec))
        return WAL_PARSE_BAD;
    uint32_t crc = (uint32_t)le_get(payload + payload_len, 4);
    if (crc32_ieee(payload, payload_len) != crc)
        return WAL_PARSE_BAD;
    *size = WAL_RECORD_OVERHEAD + payload_len;
    return WAL_PARSE_OK;
}

/* First offset in [from, len) where parsing a record gives `want` (a valid
 * record, or one cut off by the end), or len. Only offsets holding the
 * first magic byte are examined. */
static size_t wal_find(const uint8_t *p, size_t len, size_t from, enum wal_parse want,
                       struct wal_record *rec)
{
    size_t size;
    for (size_t q = from; q < len; q++) {
        const uint8_t *hit = memchr(p + q, 0xA1, len - q);
        if (hit == NULL)
            break;
        q = (size_t)(hit - p);
        if (wal_parse_at(p + q, len - q, rec, &size) == want)
            return q;
    }
    return len;
}

int wal_scan(const void *data, size_t len, wal_record_fn fn, void *ctx,
             struct wal_scan_stats *stats)
{
    const uint8_t *p = data;
    struct wal_scan_stats st;
    memset(&st, 0, sizeof st);
    int rc = 0;
    if (len == 0)
        goto out;
    /* large (4 KiB) because of the selector arrays; one per scan */
    struct wal_record rec;
    size_t pos = WAL_HEADER_SIZE;
    if (len < WAL_HEADER_SIZE || le_get(p, 4) != WAL_FILE_MAGIC) {
        /* a damaged header is damage like any other: resynchronise */
        pos = wal_find(p, len, 0, WAL_PARSE_OK, &rec);
        if (pos >= len) {
            rc = WAL_EFORMAT;
            goto out;
        }
        st.bad_header = true;
        st.corrupt++;
        st.skipped_bytes += pos;
    }
    st.valid_end = pos;
    while (pos < len) {
        size_t size = 0;
        enum wal_parse kind = wal_parse_at(p + pos, len - pos, &rec, &size);
        if (kind == WAL_PARSE_OK) {
            pos += size;
            st.records++;
            st.valid_end = pos;
            if (fn != NULL && (rc = fn(ctx, &rec)) != 0)
                break;
            continue;
        }
        size_t next = wal_find(p, len, pos + 1, WAL_PARSE_OK, &rec);
        if (next < len) {
            st.corrupt++;
            st.skipped_bytes += next - pos;
            pos = next;
            continue;
        }
        /* nothing valid follows: what remains is the tail */
        size_t torn = kind == WAL_PARSE_SHORT ? pos : wal_find(p, len, pos + 1, WAL_PARSE_SHORT, &rec);
        if (torn > pos) {
            st.corrupt++;
            st.skipped_bytes += torn - pos;
        }
        st.torn_tail = torn < len;
        break;
    }
out:
    if (stats != NULL)
        *stats = st;
    return rc;
}

/* ---- files ---------------------------------------------------------------------- */

void wal_set_open_limit(size_t limit)
{
    pthread_mutex_lock(&pool.lock);
    pool.limit = limit;
    pthread_mutex_unlock(&pool.lock);
}

size_t wal_open_count(void)
{
    pthread_mutex_lock(&pool.lock);
    size_t n = pool.open;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

/* pool.lock held */
static void pool_unlink(struct wal_file *w)
{
    if (w->newer)
        w->newer->older = w->older;
    else if (pool.newest == w)
        pool.newest = w->older;
    if (w->older)
        w->older->newer = w->newer;
    else if (pool.oldest == w)
        pool.oldest = w->newer;
    w->newer = w->older = NULL;
}

/* pool.lock held */
static void pool_push_newest(struct wal_file *w)
{
    w->older = pool.newest;
    w->newer = NULL;
    if (pool.newest)
        pool.newest->newer = w;
    pool.newest = w;
    if (!pool.oldest)
        pool.oldest = w;
}

/* pool.lock held. Closes the descriptor of the least recently used idle
 * file; false when every open file is busy. A closed file has been written
 * with write(2) only: its data is in the page cache, and a later fsync on
 * a new descriptor of the same file makes it durable. */
static bool pool_evict_one(void)
{
    for (struct wal_file *v = pool.oldest; v != NULL; v = v->newer) {
        if (v->busy || v->fd < 0)
            continue;
        pool_unlink(v);
        close(v->fd);
        v->fd = -1;
        pool.open--;
        return true;
    }
    return false;
}

/* pool.lock held. Opens w's file for appending, making room first. */
static int pool_open_locked(struct wal_file *w)
{
    while (pool.limit && pool.open >= pool.limit && pool_evict_one()) {
    }
    for (int attempt = 0;; attempt++) {
        w->fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (w->fd >= 0)
            break;
        /* descriptors ran out below the limit (connections, snapshots):
         * give back half of the pool once and retry */
        if (errno != EMFILE && errno != ENFILE)
            return WAL_EIO;
        if (attempt > 0 || pool.open == 0)
            return WAL_EIO;
        for (size_t n = pool.open / 2 + 1; n > 0 && pool_evict_one(); n--) {
        }
    }
    pool.open++;
    pool_push_newest(w);
    return 0;
}

/* Returns w's descriptor, reopened if the pool closed it, and marks it
 * busy until pool_release. */
static int pool_acquire(struct wal_file *w, int *fd)
{
    pthread_mutex_lock(&pool.lock);
    int rc = 0;
    if (w->fd < 0) {
        rc = pool_open_locked(w);
    } else if (pool.newest != w) {
        pool_unlink(w);
        pool_push_newest(w);
    }
    if (rc == 0) {
        w->busy++;
        *fd = w->fd;
    }
    int saved_errno = errno;
    pthread_mutex_unlock(&pool.lock);
    errno = saved_errno;
    return rc;
}

static void pool_release(struct wal_file *w)
{
    pthread_mutex_lock(&pool.lock);
    w->busy--;
    pthread_mutex_unlock(&pool.lock);
}

/* Takes w out of the pool and closes its descriptor (if open). Returns
 * close(2)'s result. */
static int pool_forget(struct wal_file *w)
{
    pthread_mutex_lock(&pool.lock);
    int rc = 0;
    if (w->fd >= 0) {
        pool_unlink(w);
        rc = close(w->fd);
        w->fd = -1;
        pool.open--;
    }
    int saved_errno = errno;
    pthread_mutex_unlock(&pool.lock);
    errno = saved_errno;
    return rc;
}

static void wal_free(struct wal_file *w)
{
    free(w->dir);
    free(w->path);
    free(w);
}

int wal_open(const char *dir, bool durable, struct wal_file **out)
{
    *out = NULL;
    struct wal_file *w = calloc(1, sizeof *w);
    if (w == NULL || (w->dir = strdup(dir)) == NULL || (w->path = fs_join(dir, WAL_NAME)) == NULL) {
        if (w)
            wal_free(w);
        errno = ENOMEM;
        return WAL_EIO;
    }
    w->fd = -1;
    int fd = -1;
    struct stat st;
    int mk = durable ? fs_mkdir_p_durable(dir) : fs_mkdir_p(dir);
    if (mk != 0) {
        errno = -mk;
        goto fail;
    }
    if (pool_acquire(w, &fd) != 0)
        goto fail;
    if (fstat(fd, &st) != 0)
        goto fail;
    w->size = (uint64_t)st.st_size;
    if (w->size == 0) {
        uint8_t magic[4];
        le_put(magic, WAL_FILE_MAGIC, 4);
        if (fs_write_all(fd, magic, sizeof magic) != 0)
            goto fail;
        w->size = sizeof magic;
        /* a new file: its directory entry must survive a power loss too */
        if (durable) {
            int d = fs_fsync_dir(dir);
            if (d != 0) {
                errno = -d;
                goto fail;
            }
        }
    }
    pool_release(w);
    *out = w;
    return 0;
fail:;
    int saved_errno = errno;
    if (fd >= 0)
        pool_release(w);
    pool_forget(w);
    wal_free(w);
    errno = saved_errno;
    return WAL_EIO;
}

int wal_append(struct wal_file *w, const void *data, size_t len)
{
    int fd;
    if (pool_acquire(w, &fd) != 0)
        return WAL_EIO;
    int rc = 0;
    if (fs_write_all(fd, data, len) == 0) {
        w->size += len;
    } else {
        /* A partial record must not stay in front of later appends: cut
         * the file back to where this append started. */
        int saved_errno = errno;
        struct stat st;
        if (ftruncate(fd, (off_t)w->size) != 0 && fstat(fd, &st) == 0)
            w->size = (uint64_t)st.st_size;
        errno = saved_errno;
        rc = WAL_EIO;
    }
    int saved_errno = errno;
    pool_release(w);
    errno = saved_errno;
    return rc;
}

int wal_sync(struct wal_file *w)
{
    int fd;
    if (pool_acquire(w, &fd) != 0)
        return WAL_EIO;
    int rc = fs_log_datasync(fd) == 0 ? 0 : WAL_EIO;
    int saved_errno = errno;
    pool_release(w);
    errno = saved_errno;
    return rc;
}

uint64_t wal_size(const struct wal_file *w)
{
    return w->size;
}

int wal_dup_fd(struct wal_file *w)
{
    int fd;
    if (pool_acquire(w, &fd) != 0)
        return -1;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    int saved_errno = errno;
    pool_release(w);
    errno = saved_errno;
    return copy;
}

int wal_rotate(struct wal_file *w, int64_t suffix, char **rotated_path)
{
    if (rotated_path != NULL)
        *rotated_path = NULL;
    char name[64];
    snprintf(name, sizeof name, WAL_NAME ".%lld", (long long)suffix);
    char *to = fs_join(w->dir, name);
    int rc = 0;
    if (pool_forget(w) != 0 && errno != EINTR)
        rc = WAL_EIO;
    int saved_errno = errno;
    if (rc == 0 && to == NULL) {
        rc = WAL_EIO;
        saved_errno = ENOMEM;
    }
    if (rc == 0 && rename(w->path, to) != 0) {
        rc = WAL_EIO;
        saved_errno = errno;
    }
    if (rc == 0 && rotated_path != NULL) {
        *rotated_path = to;
        to = NULL;
    }
    free(to);
    wal_free(w);
    errno = saved_errno;
    return rc;
}

void wal_close(struct wal_file *w)
{
    if (w == NULL)
        return;
    pool_forget(w);
    wal_free(w);
}

static int wal_read_all(int fd, uint8_t **data, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    size_t cap = (size_t)st.st_size;
    uint8_t *buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved_errno = errno;
            free(buf);
            errno = saved_errno;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *data = buf;
    *len = n;
    return 0;
}

int wal_replay_file(const char *path, bool truncate_torn_tail, wal_record_fn fn, void *ctx,
                    struct wal_scan_stats *stats)
{
    if (stats != NULL)
        memset(stats, 0, sizeof *stats);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return WAL_EIO;
    uint8_t *data = NULL;
    size_t len = 0;
    int read_rc = wal_read_all(fd, &data, &len);
    int saved_errno = errno;
    close(fd);
    if (read_rc != 0) {
        errno = saved_errno;
        return WAL_EIO;
    }
    struct wal_scan_stats st;
    int rc = wal_scan(data, len, fn, ctx, &st);
    free(data);
    /* not after WAL_EFORMAT (not our file), when fn stopped early (the bytes
     * after its record were never looked at) nor with a damaged header
     * (the caller starts a new file instead) */
    if (rc == 0 && truncate_torn_tail && st.valid_end < len && !st.bad_header) {
        int wfd = open(path, O_WRONLY | O_CLOEXEC);
        if (wfd < 0 || ftruncate(wfd, (off_t)st.valid_end) != 0 || fsync(wfd) != 0)
            rc = WAL_EREPAIR;
        saved_errno = errno;
        if (wfd >= 0)
            close(wfd);
        errno = saved_errno;
    }
    if (stats != NULL)
        *stats = st;
    return rc;
}
