/*
 * workload — the benchmark's synthetic cluster, shared by the drivers so
 * the query driver asks for exactly what the ingest driver wrote.
 *
 * Every host sends, every 60 s, 10 node metrics, 4 per-hwthread metrics for
 * each of its hwthreads and 2 per-socket metrics for each socket (with the
 * default 64 hwthreads and 2 sockets: 270 samples per host and minute).
 * All names are metrics of the repository's config.json (the upstream
 * example configuration), frequency 60 s.
 *
 * Values behave like real gauges: every series is a random walk of its own
 * (wl_walk) in the range and with the decimals of its metric (wl_profile:
 * cpu_load 0-64 with 2 decimals, ipc 0.1-4 with 3, power 50-350 W with 1,
 * ...), not independent noise, so what a compressing store does with them
 * is what it would do with real data. The second value profile, noise,
 * sends float32 noise (9 significant digits) to show the worst case.
 */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>

#define WL_INTERVAL 60

static const char *const wl_node_metrics[] = {
    "cpu_load", "mem_used", "mem_cached", "net_bw", "file_bw",
    "net_bytes_in", "net_bytes_out", "nfs4_read", "nfs4_write", "lustre_read_bytes",
};
/* aggregation in config.json: avg, sum, sum, avg */
static const char *const wl_hwthread_metrics[] = {"cpu_user", "flops_any", "flops_dp", "ipc"};
/* aggregation in config.json: sum, sum */
static const char *const wl_socket_metrics[] = {"mem_bw", "cpu_power"};

#define WL_NODE_METRICS (sizeof wl_node_metrics / sizeof wl_node_metrics[0])
#define WL_HWTHREAD_METRICS (sizeof wl_hwthread_metrics / sizeof wl_hwthread_metrics[0])
#define WL_SOCKET_METRICS (sizeof wl_socket_metrics / sizeof wl_socket_metrics[0])

/* Host names: node0000, node0001, ... (wider when there are more hosts).
 * out must hold 32 bytes. */
static inline void wl_host_name(char *out, size_t len, long host, long hosts)
{
    char digits[24];
    int n = 0;
    unsigned long v = (unsigned long)host;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    int width = 4;
    for (long h = 10000; h < hosts; h *= 10)
        width++;
    size_t pos = 0;
    const char *prefix = "node";
    while (*prefix && pos + 1 < len)
        out[pos++] = *prefix++;
    for (int i = n; i < width && pos + 1 < len; i++)
        out[pos++] = '0';
    while (n > 0 && pos + 1 < len)
        out[pos++] = digits[--n];
    out[pos] = '\0';
}

/* Default start of the data: `hours` before now, on the 60 s grid. */
static inline int64_t wl_default_start(int64_t now, long hours)
{
    return now / WL_INTERVAL * WL_INTERVAL - (int64_t)hours * 3600;
}


/* xorshift64*: cheap deterministic values, different per series and minute
 * (both load generators send the same values). */
static inline uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static inline double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Range and decimals of a metric's values, as node collectors send them. */
struct wl_profile {
    double lo, hi;
    int decimals;
};

/* In the order of wl_node_metrics, wl_hwthread_metrics, wl_socket_metrics. */
static const struct wl_profile wl_node_profiles[] = {
    {0, 64, 2},      /* cpu_load */
    {0, 512, 2},     /* mem_used, GB */
    {0, 128, 2},     /* mem_cached, GB */
    {0, 12500, 1},   /* net_bw, MB/s */
    {0, 5000, 1},    /* file_bw, MB/s */
    {0, 1000, 2},    /* net_bytes_in, MB/s */
    {0, 1000, 2},    /* net_bytes_out, MB/s */
    {0, 500, 1},     /* nfs4_read, MB/s */
    {0, 500, 1},     /* nfs4_write, MB/s */
    {0, 2000, 1},    /* lustre_read_bytes, MB/s */
};
static const struct wl_profile wl_hwthread_profiles[] = {
    {0, 100, 2},     /* cpu_user, % */
    {0, 50, 3},      /* flops_any, GFlop/s */
    {0, 25, 3},      /* flops_dp, GFlop/s */
    {0.1, 4, 3},     /* ipc */
};
static const struct wl_profile wl_socket_profiles[] = {
    {0, 200, 2},     /* mem_bw, GB/s */
    {50, 350, 1},    /* cpu_power, W */
};

/* Decimals of the noise profile: 9 digits, more than a float32 holds. */
#define WL_NOISE_DECIMALS 9

/* Noise values in units of 10^-9 (0 .. 2.1), deterministic per seed. */
static inline void wl_noise(uint64_t seed, size_t steps, int32_t *out, size_t stride)
{
    uint64_t s = seed * 0xBF58476D1CE4E5B9ULL + 0x94D049BB133111EBULL;
    for (size_t k = 0; k < steps; k++)
        out[k * stride] = (int32_t)(rng_next(&s) >> 33);
}

/*
 * The random walk of one series over `steps` timesteps, written to
 * out[0], out[stride], ... as integers in units of 10^-decimals: a start in
 * [lo, hi), then steps of up to 2 % of the range (a quarter of them zero:
 * gauges often repeat), reflected at the bounds. Deterministic per seed.
 */
static inline void wl_walk(uint64_t seed, int decimals, double lo, double hi, size_t steps,
                           int32_t *out, size_t stride)
{
    uint64_t s = seed * 0xBF58476D1CE4E5B9ULL + 0x94D049BB133111EBULL;
    double scale = 1.0;
    for (int d = 0; d < decimals; d++)
        scale *= 10.0;
    double range = hi - lo, v = lo + rng_unit(&s) * range;
    for (size_t k = 0; k < steps; k++) {
        double r = rng_unit(&s);
        if (r >= 0.25)
            v += (rng_unit(&s) - 0.5) * 0.04 * range;
        if (v < lo)
            v = 2 * lo - v;
        if (v >= hi)
            v = 2 * hi - v - 1.0 / scale;
        out[k * stride] = (int32_t)(v * scale + 0.5);
    }
}

/* Writes the walk value `units` (10^-decimals) as decimal text, e.g.
 * 12345 with 3 decimals -> "12.345". Returns the length; out needs 16 bytes. */
static inline size_t wl_format(int32_t units, int decimals, char *out)
{
    char digits[16];
    size_t n = 0, len = 0;
    uint32_t u = units < 0 ? (uint32_t)(-(int64_t)units) : (uint32_t)units;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u || n <= (size_t)decimals);
    if (units < 0)
        out[len++] = '-';
    while (n > 0) {
        if (n == (size_t)decimals)
            out[len++] = '.';
        out[len++] = digits[--n];
    }
    return len;
}

#endif
