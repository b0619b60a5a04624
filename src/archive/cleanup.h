/*
 * cleanup — removes checkpoint files that have left the retention window,
 * deleting them (cleanup.mode "delete") or first archiving their samples to
 * Parquet ("archive"), docs/file-formats.md "archive", with these rules:
 *
 *  - a file is selected when its window END (`to` in the file) is at or
 *    before the cut-off, so a file still holding samples inside the
 *    retention window is never removed (upstream selected by window start);
 *  - one Parquet file per cluster and run, <directory>/<cluster>/<cutoff>.parquet,
 *    written to .tmp, fsynced, renamed, directory fsynced; only then are the
 *    archived checkpoint files deleted, so a crash loses nothing and leaves
 *    no partial .parquet (a stale .parquet.tmp is removed by the next run);
 *  - rows sorted by (cluster, hostname, metric, scope, scope_id, timestamp);
 *    row groups are cut by size (PARQUET_MAX_GROUP_BYTES), not per host; a
 *    sample present in several files is written once (the newest file
 *    wins); only one host's rows (plus one row group) are in memory at once;
 *  - an undecodable file is logged, counted and kept.
 *
 * current.wal, rotated WAL files and anything else are never touched.
 */
#ifndef CCMS_CLEANUP_H
#define CCMS_CLEANUP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util/host_filter.h"

struct cleanup_stats {
    uint64_t files_deleted;     /* checkpoint files removed (archived or not) */
    uint64_t files_failed;      /* undecodable or undeletable: kept */
    uint64_t rows;              /* Parquet rows written */
    uint64_t parquet_files;
    uint64_t clusters_failed;   /* archive could not be written: files kept */
};

/*
 * One pass over cfg->checkpoint_dir for files whose window ended at or
 * before cutoff (Unix seconds). Archives when cfg->cleanup_mode is
 * "archive". Hosts for which keep() is true (nodes running jobs) are left
 * alone; keep may be NULL. Returns 0, or -1 when something failed (details
 * logged and counted in *stats; other clusters and hosts are still
 * processed).
 */
int cleanup_run(const struct ccms_config *cfg, int64_t cutoff, host_filter_fn keep,
                void *keep_ctx, struct cleanup_stats *stats);

/*
 * The archive's (scope, scope_id) of a level name (docs/file-formats.md, "archive"):
 * "socket12" -> ("socket", "12"), "cpu3" -> ("hwthread", "3"),
 * "accelerator00000000:3b:00.0" -> ("accelerator", "00000000:3b:00.0"),
 * "filesystem/home" -> ("filesystem", "/home"), "networkib0" ->
 * ("network", "ib0"), anything else -> (name, ""). *scope is a static string or name itself;
 * *scope_id points into name (or to "").
 */
void cleanup_parse_scope(const char *name, const char **scope, const char **scope_id);

#endif
