/*
 * metrics — GET /metrics: the store's state and counters in the Prometheus
 * text exposition format (docs/metrics.md lists every family). Each module
 * writes its own families (http, nats, retention); this one adds the
 * store, ingest and persistence figures and puts them together.
 */
#include "api/api.h"
#include "archive/retention.h"
#include "net/http.h"
#include "net/nats.h"
#include "persist/checkpoint.h"
#include "util/fsutil.h"
#include "util/prom.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

#define API_CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

static void gauge(struct jbuf *b, const char *name, const char *help, uint64_t v)
{
    prom_family(b, name, "gauge", help);
    prom_u64(b, name, NULL, v);
}

static void counter(struct jbuf *b, const char *name, const char *help, uint64_t v)
{
    prom_family(b, name, "counter", help);
    prom_u64(b, name, NULL, v);
}

static void put_store(struct jbuf *b, struct store *s)
{
    struct store_stats st;
    char labels[64];
    store_get_stats(s, &st);
    gauge(b, "ccms_store_samples", "Samples held in memory", st.samples);
    gauge(b, "ccms_store_bytes", "Bytes the store holds (tree, buffers, encoded blocks)",
          st.bytes);
    gauge(b, "ccms_store_buffers", "Buffers (one per series and time span)", st.buffers);
    gauge(b, "ccms_store_levels", "Levels of the tree (clusters, hosts, sockets, cores, ...)",
          st.levels);
    gauge(b, "ccms_store_raw_slots", "Slots held as plain floats (the parts being written)",
          st.raw_slots);
    gauge(b, "ccms_store_encoded_bytes", "Bytes of encoded (sealed) buffer parts",
          st.encoded_bytes);
    gauge(b, "ccms_store_pool_bytes",
          "Bytes of pages kept for buffer headers and plain parts (used or free)",
          st.pool_bytes);
    prom_family(b, "ccms_store_sealed_blocks", "gauge", "Sealed buffer parts by encoding");
    for (int k = 0; k < CHAIN_ENCODINGS; k++) {
        snprintf(labels, sizeof(labels), "encoding=\"%s\"", chain_encoding_name(k));
        prom_u64(b, "ccms_store_sealed_blocks", labels, st.sealed_by_encoding[k]);
    }
    gauge(b, "ccms_store_metrics", "Metrics configured", store_metric_count(s));
}

static void put_ingest(struct jbuf *b, bool nats)
{
    struct ingest_result all, from_nats = { 0 };
    uint64_t by_reason[INGEST_REJECT_REASONS];
    char labels[96];
    ingest_totals(&all);
    if (nats)
        nats_ingest_totals(&from_nats);
    ingest_rejected_by_reason(by_reason);
    struct {
        const char *result;
        uint64_t total, nats;
    } rows[] = {
        { "accepted", all.accepted, from_nats.accepted },
        { "rejected", all.rejected, from_nats.rejected },
        { "ignored", all.ignored, from_nats.ignored },
    };
    prom_family(b, "ccms_ingest_lines_total", "counter",
                "Line-protocol lines by source and result: accepted (stored, one sample each), "
                "rejected (invalid), ignored (metric not configured)");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t http = rows[i].total > rows[i].nats ? rows[i].total - rows[i].nats : 0;
        snprintf(labels, sizeof(labels), "source=\"http\",result=\"%s\"", rows[i].result);
        prom_u64(b, "ccms_ingest_lines_total", labels, http);
        snprintf(labels, sizeof(labels), "source=\"nats\",result=\"%s\"", rows[i].result);
        prom_u64(b, "ccms_ingest_lines_total", labels, rows[i].nats);
    }
    prom_family(b, "ccms_ingest_rejected_lines_total", "counter",
                "Rejected lines by reason (all sources)");
    for (int r = 0; r < INGEST_REJECT_REASONS; r++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", ingest_reject_reason_name(r));
        prom_u64(b, "ccms_ingest_rejected_lines_total", labels, by_reason[r]);
    }
}

static void put_persistence(struct jbuf *b, struct checkpointer *cp)
{
    struct checkpoint_status ps;
    char labels[64];
    checkpointer_status(cp, &ps);
    snprintf(labels, sizeof(labels), "format=\"%s\"", ps.format);
    prom_family(b, "ccms_persistence_info", "gauge", "The checkpoint format written (label)");
    prom_u64(b, "ccms_persistence_info", labels, 1);
    gauge(b, "ccms_wal_bytes", "Bytes of write-ahead log segments on disk (native log)",
          ps.log_bytes);
    gauge(b, "ccms_wal_segments", "Write-ahead log segments on disk (native log)",
          ps.log_segments);
    prom_family(b, "ccms_wal_fsync_duration_seconds", "histogram",
                "Time of each fdatasync of the write-ahead log");
    prom_histogram_write(b, "ccms_wal_fsync_duration_seconds", NULL, fs_log_sync_latency());
    counter(b, "ccms_snapshot_runs_total", "Snapshot (checkpoint) runs", ps.runs);
    counter(b, "ccms_snapshot_runs_failed_total", "Snapshot runs in which some host failed",
            ps.runs_failed);
    prom_family(b, "ccms_snapshot_duration_seconds_total", "counter",
                "Time spent in snapshot runs");
    prom_f64(b, "ccms_snapshot_duration_seconds_total", NULL, ps.run_seconds);
    prom_family(b, "ccms_snapshot_last_duration_seconds", "gauge",
                "Duration of the latest snapshot run");
    prom_f64(b, "ccms_snapshot_last_duration_seconds", NULL, ps.last_run.seconds);
    gauge(b, "ccms_snapshot_last_bytes", "Bytes written by the latest snapshot run",
          ps.last_run.bytes_written);
    gauge(b, "ccms_snapshot_last_hosts_failed", "Hosts the latest snapshot run failed for",
          ps.last_run.hosts_failed);
    gauge(b, "ccms_restore_samples", "Samples loaded at startup", ps.restore.samples);
    prom_family(b, "ccms_restore_duration_seconds", "gauge", "Duration of the restore at startup");
    prom_f64(b, "ccms_restore_duration_seconds", NULL, ps.restore.seconds);
    gauge(b, "ccms_restore_lost_blocks", "Snapshot blocks that failed their checksum at startup",
          ps.restore.blocks_lost);
    gauge(b, "ccms_restore_corrupt_log_regions",
          "Corrupt write-ahead log regions skipped at startup", ps.restore.wal_corrupt);
}

int api_metrics(const struct api_context *ctx, struct api_response *out)
{
    struct jbuf b;
    jbuf_init(&b, 16384);
    prom_family(&b, "ccms_build_info", "gauge", "Version and git hash of this binary (labels)");
    jbuf_puts(&b, "ccms_build_info{version=\"");
    prom_label_value(&b, CCMS_VERSION, strlen(CCMS_VERSION));
    jbuf_puts(&b, "\",revision=\"");
    prom_label_value(&b, CCMS_GIT_HASH, strlen(CCMS_GIT_HASH));
    jbuf_puts(&b, "\"} 1\n");
    gauge(&b, "ccms_start_time_seconds", "Start of the process, Unix time",
          (uint64_t)api_start_time());
    put_store(&b, ctx->store);
    bool nats = ctx->cfg != NULL && ctx->cfg->nats_configured;
    put_ingest(&b, nats);
    if (ctx->checkpointer != NULL)
        put_persistence(&b, ctx->checkpointer);
    retention_metrics(&b);
    if (nats)
        nats_ingest_metrics(&b);
    http_metrics_write(&b);
    return api_reply_jbuf(200, API_CT_PROMETHEUS, &b, out);
}
