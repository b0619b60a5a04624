/*
 * parquet_bench — throughput and size of the archive's Parquet writer.
 *
 * Writes synthetic archive rows (HOSTS hosts × 270 series × SAMPLES samples,
 * sorted by cluster, hostname, metric, scope, scope_id, timestamp; one row
 * group per host as the archive does) with parquet_writer_add/close and
 * reports rows/s. Then, unless --no-compare is given, has DuckDB rewrite the
 * same rows with its own zstd writer (tests/tools/duckdb/read_parquet.mjs
 * --zstd-copy; run scripts/install-test-tools.sh first) and reports bytes per
 * row of both files and per column.
 *
 * Usage (from the repository root):
 *   bench/parquet_bench [-n ROWS] [-o FILE] [-v walk2|walk1|full] [--auto-groups] [--no-compare]
 * Default: 10M rows (256 hosts, SAMPLES = ROWS / (256*270)), FILE
 * /tmp/parquet_bench.parquet, values walk2. Values are a bounded random walk
 * per series rounded to two decimals (walk2), to one decimal as in JSON
 * checkpoints (walk1), or not rounded (full float32, as in binary
 * snapshots). They are generated before the clock starts. --auto-groups
 * leaves row groups to the writer's size bound instead of one per host.
 * Throughput is reported per wall-clock and per CPU second (the CPU figure
 * is the steadier one on a shared machine; the wall time includes fsync).
 */
#include "archive/parquet.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define HOSTS 256
#define SERIES 270
#define MAX_METRICS 64

struct series {
    const char *metric;
    const char *scope;
    char scope_id[32];
};

static const char *const node_metrics[] = {
    "cpu_load", "mem_used", "mem_cached", "net_bytes_in", "net_bytes_out",
    "net_pkts_in", "net_pkts_out", "ib_recv", "ib_xmit", "lustre_read_bw",
    "lustre_write_bw", "nfs4_read", "nfs4_write", "disk_free", "cpu_user",
    "cpu_system", "cpu_idle", "cpu_iowait", "swap_used", "procs_running",
};
static const char *const socket_metrics[] = { "mem_bw", "power_pkg", "power_dram", "cpu_temp", "l3_miss" };
static const char *const memdomain_metrics[] = { "mem_bw_md", "numa_hits" };
static const char *const core_metrics[] = { "flops_any", "clock", "ipc" };
static const char *const acc_metrics[] = {
    "acc_utilization", "acc_mem_used", "acc_power", "acc_temp", "acc_clock",
    "acc_mem_clock", "nv_sm_clock", "nv_fb_used", "nv_ecc_err", "nv_pcie_bw",
};

/* 20 node + 2×5 socket + 4×2 memoryDomain + 64×3 core + 4×10 accelerator = 270,
 * sorted by (metric, scope, scope_id) as the archive orders them. */
static size_t make_series(struct series *s)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof node_metrics / sizeof *node_metrics; i++)
        s[n++] = (struct series){ node_metrics[i], "node", "" };
    for (size_t i = 0; i < sizeof socket_metrics / sizeof *socket_metrics; i++)
        for (int k = 0; k < 2; k++) {
            s[n] = (struct series){ socket_metrics[i], "socket", "" };
            snprintf(s[n++].scope_id, sizeof s->scope_id, "%d", k);
        }
    for (size_t i = 0; i < sizeof memdomain_metrics / sizeof *memdomain_metrics; i++)
        for (int k = 0; k < 4; k++) {
            s[n] = (struct series){ memdomain_metrics[i], "memoryDomain", "" };
            snprintf(s[n++].scope_id, sizeof s->scope_id, "%d", k);
        }
    for (size_t i = 0; i < sizeof core_metrics / sizeof *core_metrics; i++)
        for (int k = 0; k < 64; k++) {
            s[n] = (struct series){ core_metrics[i], "core", "" };
            snprintf(s[n++].scope_id, sizeof s->scope_id, "%d", k);
        }
    for (size_t i = 0; i < sizeof acc_metrics / sizeof *acc_metrics; i++)
        for (int k = 0; k < 4; k++) {
            s[n] = (struct series){ acc_metrics[i], "accelerator", "" };
            snprintf(s[n++].scope_id, sizeof s->scope_id, "00000000:%02x:00.0", 0x3b + k);
        }
    return n;
}

static int series_cmp(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    int r = strcmp(x->metric, y->metric);
    if (!r)
        r = strcmp(x->scope, y->scope);
    if (!r)
        r = strcmp(x->scope_id, y->scope_id);
    return r;
}

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "parquet_bench: command failed (%d): %s\n", rc, cmd);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t want = 10000000;
    const char *path = "/tmp/parquet_bench.parquet";
    int compare = 1, group_per_host = 1;
    double scale = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            want = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--no-compare"))
            compare = 0;
        else if (!strcmp(argv[i], "--auto-groups"))
            group_per_host = 0;
        else if (!strcmp(argv[i], "-v") && i + 1 < argc) {
            i++;
            scale = !strcmp(argv[i], "walk1") ? 10 : !strcmp(argv[i], "full") ? 0 : 100;
        }
        else {
            fprintf(stderr, "usage: %s [-n ROWS] [-o FILE] [-v walk2|walk1|full] [--auto-groups] [--no-compare]\n",
                    argv[0]);
            return 2;
        }
    }
    struct series s[SERIES];
    size_t ns = make_series(s);
    qsort(s, ns, sizeof *s, series_cmp);
    uint64_t samples = want / (HOSTS * ns);
    if (samples == 0)
        samples = 1;

    char hosts[HOSTS][16];
    for (int h = 0; h < HOSTS; h++)
        snprintf(hosts[h], sizeof hosts[h], "node%04d", h + 1);

    size_t nvalues = (size_t)HOSTS * ns * samples;
    float *values = malloc(nvalues * sizeof *values);
    if (!values) {
        fprintf(stderr, "parquet_bench: out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < HOSTS * ns; k++) {
        double v = (double)(rng() % 10000) / 100.0;
        for (uint64_t i = 0; i < samples; i++) {
            v += scale > 0 ? (double)((int64_t)(rng() % 201) - 100) / 100.0
                           : (double)(rng() >> 11) / 4503599627370496.0 - 1.0;
            if (v < 0)
                v = -v;
            values[k * samples + i] = (float)(scale > 0 ? round(v * scale) / scale : v);
        }
    }

    struct parquet_writer *w;
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    int rc = parquet_writer_open(path, &w);
    if (rc) {
        fprintf(stderr, "parquet_bench: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    const int64_t start = 1700000000, freq = 60;
    for (int h = 0; h < HOSTS && !rc; h++) {
        for (size_t k = 0; k < ns && !rc; k++) {
            const float *v = values + ((size_t)h * ns + k) * samples;
            for (uint64_t i = 0; i < samples && !rc; i++) {
                struct parquet_row row = {
                    .cluster = "fritz", .hostname = hosts[h], .metric = s[k].metric,
                    .scope = s[k].scope, .scope_id = s[k].scope_id,
                    .timestamp = start + (int64_t)i * freq, .frequency = freq,
                    .value = v[i],
                };
                rc = parquet_writer_add(w, &row);
            }
        }
        if (!rc && group_per_host)
            rc = parquet_writer_end_row_group(w);
    }
    uint64_t rows = 0;
    if (rc) {
        parquet_writer_abort(w);
        fprintf(stderr, "parquet_bench: write failed: %d (%s)\n", rc, strerror(errno));
        return 1;
    }
    rc = parquet_writer_close(w, &rows);
    double dt = now_s(CLOCK_MONOTONIC) - t0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    free(values);
    if (rc) {
        fprintf(stderr, "parquet_bench: close failed: %d (%s)\n", rc, strerror(errno));
        return 1;
    }
    long long ours = file_size(path);
    printf("rows            %" PRIu64 " (%d hosts x %zu series x %" PRIu64 " samples)\n",
           rows, HOSTS, ns, samples);
    printf("write+close     %.3f s, %.2f M rows/s (CPU %.3f s, %.2f M rows per CPU second)\n", dt,
           (double)rows / dt / 1e6, cpu, (double)rows / cpu / 1e6);
    printf("ours            %lld bytes, %.3f bytes/row\n", ours, (double)ours / (double)rows);
    if (!compare)
        return 0;

    char copy[4096], cmd[8192];
    snprintf(copy, sizeof copy, "%s.duckdb.parquet", path);
    snprintf(cmd, sizeof cmd, "node tests/tools/duckdb/read_parquet.mjs --zstd-copy '%s' '%s'", path, copy);
    if (run(cmd))
        return 1;
    long long theirs = file_size(copy);
    printf("duckdb zstd     %lld bytes, %.3f bytes/row\n", theirs, (double)theirs / (double)rows);
    const char *per_col =
        "SELECT path_in_schema AS col, round(sum(total_compressed_size) / any_value(n), 3) AS bytes_per_row,"
        " string_agg(DISTINCT encodings, '; ') AS enc"
        " FROM meta, (SELECT sum(row_group_num_rows) / 8 AS n FROM meta)"
        " GROUP BY path_in_schema, column_id ORDER BY column_id";
    printf("per column, ours:\n");
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "node tests/tools/duckdb/read_parquet.mjs --query \"%s\" '%s'", per_col, path);
    if (run(cmd))
        return 1;
    printf("per column, duckdb:\n");
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "node tests/tools/duckdb/read_parquet.mjs --query \"%s\" '%s'", per_col, copy);
    if (run(cmd))
        return 1;
    remove(copy);
    return 0;
}
