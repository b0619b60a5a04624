/*
 * fsutil — small crash-safe file helpers shared by persistence and archive.
 */
#ifndef CCMS_FSUTIL_H
#define CCMS_FSUTIL_H

#include <stddef.h>

/* mkdir -p with mode 0755. Returns 0 or -errno. */
int fs_mkdir_p(const char *path);

/* The same, and every directory it creates is made durable: the parent of
 * each new directory is fsynced. Returns 0 or -errno. */
int fs_mkdir_p_durable(const char *path);

/* fsync(2) of a directory, so renames and creations in it are durable.
 * Returns 0 or -errno. */
int fs_fsync_dir(const char *path);

/* fdatasync(2) of a write-ahead log, timed into a process-wide latency
 * histogram (fs_log_sync_latency, for GET /metrics). Returns 0 or -errno
 * (errno is left set). */
int fs_log_datasync(int fd);
struct prom_histogram;
const struct prom_histogram *fs_log_sync_latency(void);

/* write(2) of all len bytes, retrying short writes and EINTR. Returns 0 or
 * -errno (errno is left set). */
int fs_write_all(int fd, const void *data, size_t len);

/* Writes data to <dir>/<name>.tmp, fsyncs it, renames it to <dir>/<name>
 * and fsyncs dir. On failure the .tmp file is removed. Returns 0 or -errno. */
int fs_write_atomic(const char *dir, const char *name, const void *data, size_t len);

/* Reads a whole file into a malloc'd buffer (NUL-terminated, length in
 * *len). Returns 0 or -errno. */
int fs_read_file(const char *path, char **data, size_t *len);

/* Maps a whole file read-only, its pages read in at once (for large files
 * read front to back once: no copy, no fresh heap pages to fault in).
 * *len = 0 and *data = NULL for an empty file. Release with fs_unmap_file.
 * Returns 0 or -errno. */
int fs_map_file(const char *path, const void **data, size_t *len);
void fs_unmap_file(const void *data, size_t len);

/* malloc'd "a/b" (or "a/b/c" with fs_join3). NULL when out of memory. */
char *fs_join(const char *a, const char *b);
char *fs_join3(const char *a, const char *b, const char *c);

#endif
