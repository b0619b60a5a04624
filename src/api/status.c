/*
 * status — GET /api/status: a JSON snapshot of the store's size and the
 * ingest counters, for operators and the benchmarks (bytes per sample).
 *
 *   {"store":{"bytes":…,"samples":…,"buffers":…,"levels":…,"metrics":…,
 *             "bytes_per_sample":…,"raw_slots":…,"encoded_bytes":…,
 *             "tag_sections":…,"tag_section_bytes":…,"pool_bytes":…,
 *             "sealed_blocks":{"raw":…,"const":…,"decimal":…,"bits":…}},
 *    "ingest":{"lines":…,"accepted":…,"rejected":…,"ignored":…},
 *    "persistence":{"format":"native"|"go"|"json","log_bytes":…,"log_segments":…,
 *                   "snapshot_runs":…,"snapshot_runs_failed":…,
 *                   "last_run":{"hosts_written":…,"hosts_failed":…,"bytes":…,"seconds":…},
 *                   "restore":{"samples":…,"files":…,"files_failed":…,"blocks_lost":…,
 *                              "log_records":…,"log_corrupt":…,"log_unresolved":…,
 *                              "seconds":…}}  (with persistence),
 *    "nats":{…} (only when NATS is configured, see net/nats.h),
 *    "uptime":…}
 */
#include "api/api.h"
#include "net/nats.h"
#include "persist/checkpoint.h"

#include <string.h>
#include <time.h>

static int64_t process_start;

__attribute__((constructor)) static void status_note_start(void)
{
    process_start = (int64_t)time(NULL);
}

int64_t api_start_time(void)
{
    return process_start;
}

static void put_counter(struct jbuf *b, const char *name, uint64_t v, bool first)
{
    if (!first)
        jbuf_putc(b, ',');
    jbuf_string(b, name, strlen(name));
    jbuf_putc(b, ':');
    jbuf_int(b, (int64_t)v);
}

static void put_persistence(struct jbuf *b, struct checkpointer *cp)
{
    struct checkpoint_status ps;
    checkpointer_status(cp, &ps);
    jbuf_puts(b, ",\"persistence\":{\"format\":");
    jbuf_string(b, ps.format, strlen(ps.format));
    put_counter(b, "log_bytes", ps.log_bytes, false);
    put_counter(b, "log_segments", ps.log_segments, false);
    put_counter(b, "snapshot_runs", ps.runs, false);
    put_counter(b, "snapshot_runs_failed", ps.runs_failed, false);
    jbuf_puts(b, ",\"last_run\":{");
    put_counter(b, "hosts_written", ps.last_run.hosts_written, true);
    put_counter(b, "hosts_failed", ps.last_run.hosts_failed, false);
    put_counter(b, "bytes", ps.last_run.bytes_written, false);
    jbuf_puts(b, ",\"seconds\":");
    jbuf_fixed(b, ps.last_run.seconds, 3);
    jbuf_puts(b, "},\"restore\":{");
    put_counter(b, "samples", ps.restore.samples, true);
    put_counter(b, "files", ps.restore.files_loaded, false);
    put_counter(b, "files_failed", ps.restore.files_failed, false);
    put_counter(b, "blocks_lost", ps.restore.blocks_lost, false);
    put_counter(b, "log_records", ps.restore.log_records + ps.restore.wal_records, false);
    put_counter(b, "log_corrupt", ps.restore.wal_corrupt, false);
    put_counter(b, "log_unresolved", ps.restore.log_unresolved, false);
    jbuf_puts(b, ",\"seconds\":");
    jbuf_fixed(b, ps.restore.seconds, 3);
    jbuf_puts(b, "}}");
}

int api_status(const struct api_context *ctx, struct api_response *out)
{
    struct store_stats st;
    struct ingest_result in;
    store_get_stats(ctx->store, &st);
    ingest_totals(&in);
    struct jbuf b;
    jbuf_init(&b, 256);
    jbuf_puts(&b, "{\"store\":{");
    put_counter(&b, "bytes", st.bytes, true);
    put_counter(&b, "samples", st.samples, false);
    put_counter(&b, "buffers", st.buffers, false);
    put_counter(&b, "levels", st.levels, false);
    put_counter(&b, "metrics", store_metric_count(ctx->store), false);
    jbuf_puts(&b, ",\"bytes_per_sample\":");
    jbuf_fixed(&b, st.samples ? (double)st.bytes / (double)st.samples : 0.0, 3);
    put_counter(&b, "raw_slots", st.raw_slots, false);
    put_counter(&b, "encoded_bytes", st.encoded_bytes, false);
    put_counter(&b, "tag_sections", st.tag_sections, false);
    put_counter(&b, "tag_section_bytes", st.tag_section_bytes, false);
    put_counter(&b, "pool_bytes", st.pool_bytes, false);
    jbuf_puts(&b, ",\"sealed_blocks\":{");
    for (int k = 0; k < CHAIN_ENCODINGS; k++)
        put_counter(&b, chain_encoding_name(k), st.sealed_by_encoding[k], k == 0);
    jbuf_puts(&b, "}},\"ingest\":{");
    put_counter(&b, "lines", in.lines, true);
    put_counter(&b, "accepted", in.accepted, false);
    put_counter(&b, "rejected", in.rejected, false);
    put_counter(&b, "ignored", in.ignored, false);
    jbuf_putc(&b, '}');
    if (ctx->checkpointer != NULL)
        put_persistence(&b, ctx->checkpointer);
    if (ctx->cfg != NULL && ctx->cfg->nats_configured)
        nats_ingest_status_json(&b);
    jbuf_puts(&b, ",\"uptime\":");
    jbuf_int(&b, (int64_t)time(NULL) - process_start);
    jbuf_puts(&b, "}\n");
    return api_reply_jbuf(200, API_CT_JSON, &b, out);
}
