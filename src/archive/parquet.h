/*
 * parquet — a streaming writer for the archive's Parquet files
 * (docs/file-formats.md, "archive"): one flat schema "ParquetMetricRow" with eight
 * required columns
 *   cluster, hostname, metric, scope, scope_id : BYTE_ARRAY (STRING/UTF8)
 *   timestamp, frequency                       : INT64 (INT_64)
 *   value                                      : FLOAT
 * Pages are zstd-compressed; the footer (FileMetaData) is Thrift compact
 * protocol, written by hand because Debian 12 has no Parquet library.
 *
 * Rows are buffered column by column for the current row group only; a
 * row group is written when the caller ends it or when it grows past
 * PARQUET_MAX_GROUP_BYTES, so memory stays bounded however many rows a file
 * gets. The caller supplies rows in the order it wants them stored.
 *
 * The writer owns its file descriptor and buffers. It writes to the path it
 * is given; the caller passes a ".tmp" path and renames after a successful
 * parquet_writer_close(), which fsyncs the file.
 */
#ifndef CCMS_PARQUET_H
#define CCMS_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#define PARQUET_MAX_GROUP_BYTES (64u << 20)

enum parquet_error {
    PARQUET_EIO = -6001,     /* see errno */
    PARQUET_ENOMEM = -6002,
};

struct parquet_row {
    const char *cluster;
    const char *hostname;
    const char *metric;
    const char *scope;
    const char *scope_id;
    int64_t timestamp;
    int64_t frequency;
    float value;
};

struct parquet_writer;

/* Creates (truncating) the file at path and writes the leading magic. */
int parquet_writer_open(const char *path, struct parquet_writer **out);

/* Appends one row to the current row group (strings are copied). */
int parquet_writer_add(struct parquet_writer *w, const struct parquet_row *row);

/* Writes the buffered rows as one row group (no-op when empty). */
int parquet_writer_end_row_group(struct parquet_writer *w);

/* Ends the last row group, writes the footer, fsyncs and closes the file,
 * and frees the writer. *rows (if not NULL) = rows written in total.
 * On failure the file is left for the caller to remove. */
int parquet_writer_close(struct parquet_writer *w, uint64_t *rows);

/* Closes without a footer and frees the writer (the caller removes the file). */
void parquet_writer_abort(struct parquet_writer *w);

#endif
