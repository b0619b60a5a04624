/*
 * Tests for ingest through the real store: tag -> path mapping
 * (docs/line-protocol.md), timestamps and
 * precision, per-line rejection and the error text, name rules, future
 * tolerance, unconfigured metrics, the new-level budget, chunking
 * independence and the host lock being released after every feed.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "ingest.h"
#include "store/store.h"

#define NOW 1700000000LL
#define FREQ 10

enum { M_CPU_LOAD, M_FLOPS_ANY, M_MEM_BW, M_ACC_POWER, M_X, M_MEM_USED, M_NFS4_READ, M_SPACE };

static const struct store_metric test_metrics[] = {
    { "cpu_load", FREQ, CCMS_AGG_AVG },  { "flops_any", FREQ, CCMS_AGG_SUM },
    { "mem_bw", FREQ, CCMS_AGG_SUM },    { "acc_power", FREQ, CCMS_AGG_SUM },
    { "x", FREQ, CCMS_AGG_NONE },        { "mem_used", FREQ, CCMS_AGG_NONE },
    { "nfs4_read", FREQ, CCMS_AGG_SUM }, { "m e,t", FREQ, CCMS_AGG_NONE },
};

static struct store *new_store(void)
{
    struct store *s = NULL;
    assert_int_equal(store_create(test_metrics, sizeof test_metrics / sizeof test_metrics[0], &s), 0);
    return s;
}

static struct ingest_options default_opts(void)
{
    struct ingest_options o = {
        .default_cluster = "alex",
        .precision = INGEST_PRECISION_AUTO,
        .now = NOW,
        .max_line_length = 1 << 20,
        .max_new_levels = 0,
        .future_tolerance = 3600,
    };
    return o;
}

struct run_result {
    struct ingest_result r;
    char text[4096];
};

/* Feeds body in chunks of `chunk` bytes (0 = whole) and finishes. */
static void run_chunked(struct store *s, const struct ingest_options *o, const char *body,
                        size_t chunk, struct run_result *out)
{
    struct ingest_batch *b = NULL;
    assert_int_equal(ingest_batch_new(s, o, &b), 0);
    size_t len = strlen(body);
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(ingest_batch_feed(b, body + off, n), 0);
    }
    assert_int_equal(ingest_batch_finish(b), 0);
    ingest_batch_result(b, &out->r);
    snprintf(out->text, sizeof out->text, "%s", ingest_batch_error_text(b));
    ingest_batch_free(b);
}

static void run(struct store *s, const struct ingest_options *o, const char *body,
                struct run_result *out)
{
    run_chunked(s, o, body, 0, out);
}

/* The sample of `metric` at ts at path[0..depth), or NaN if there is none. */
static double read_at(struct store *s, const char *const *path, size_t depth, int metric,
                      int64_t ts)
{
    struct store_selector sel = { .depth = depth };
    size_t lens[STORE_MAX_DEPTH];
    for (size_t i = 0; i < depth; i++) {
        lens[i] = strlen(path[i]);
        sel.elems[i].names = &path[i];
        sel.elems[i].lens = &lens[i];
        sel.elems[i].count = 1;
    }
    struct store_series out;
    int rc = store_read(s, &sel, metric, ts, ts + FREQ, FREQ, RESAMPLE_LTTB, 1000000, &out);
    if (rc != 0)
        return NAN;
    double v = NAN;
    if (out.len > 0 && ts >= out.from && (size_t)((ts - out.from) / out.resolution) < out.len)
        v = out.data[(ts - out.from) / out.resolution];
    store_series_free(&out);
    return v;
}

#define PATH(...) ((const char *const[]){ __VA_ARGS__ })
#define NPATH(...) (sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))
#define READ(s, m, ts, ...) read_at((s), PATH(__VA_ARGS__), NPATH(__VA_ARGS__), (m), (ts))

static void assert_value(double got, double want)
{
    if (!(got == want))
        fail_msg("read %.17g, expected %.17g", got, want);
}

static uint64_t level_count(struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    return st.levels;
}

/* ---- mapping ------------------------------------------------------------- */

static void test_path_mapping(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "cpu_load,cluster=alex,hostname=a0124,type=node value=1 1700000000\n"
        "cpu_load,hostname=a0125,type=node value=2 1700000000\n"
        "flops_any,cluster=alex,hostname=a0124,type=hwthread,type-id=5 value=3 1700000000\n"
        "mem_bw,cluster=alex,host=a0124,type-id=1,type=socket value=4 1700000000\n"
        "acc_power,cluster=alex,hostname=a0124,type=accelerator,type-id=00000000:49:00.0 value=5 1700000000\n"
        "x,cluster=alex,hostname=a0124,type=socket,type-id=0,stype=core,stype-id=3 value=6 1700000000\n"
        "mem_used,cluster=alex,hostname=a0124,type=node,type-id=0 value=7 1700000000\n"
        "nfs4_read,cluster=alex,hostname=a0124,type=node,stype=filesystem,stype-id=/home value=8 1700000000\n"
        "x,cluster=alex,hostname=a0124,type=socket,type-id=1,subtype=core,stype-id=2 value=9 1700000000\n"
        "x,cluster=alex,hostname=a0124,type-id=7 value=10 1700000000\n"
        "x,cluster=fritz,unit=GB/s,host=f1,hostname=f2,function=foo value=11 1700000000\n"
        "x,hostname=h,cluster=other value=12 1700000000\n",
        &res);
    assert_str_eq(res.text, "");
    assert_int_equal(res.r.lines, 12);
    assert_int_equal(res.r.accepted, 12);
    assert_int_equal(res.r.rejected, 0);

    assert_value(READ(s, M_CPU_LOAD, NOW, "alex", "a0124"), 1);
    assert_value(READ(s, M_CPU_LOAD, NOW, "alex", "a0125"), 2);
    assert_value(READ(s, M_FLOPS_ANY, NOW, "alex", "a0124", "hwthread5"), 3);
    assert_value(READ(s, M_MEM_BW, NOW, "alex", "a0124", "socket1"), 4);
    assert_value(READ(s, M_ACC_POWER, NOW, "alex", "a0124", "accelerator00000000:49:00.0"), 5);
    assert_value(READ(s, M_X, NOW, "alex", "a0124", "socket0", "core3"), 6);
    /* docs/line-protocol.md: type=node is host level, its type-id ignored (upstream: "0") */
    assert_value(READ(s, M_MEM_USED, NOW, "alex", "a0124"), 7);
    assert_nan(READ(s, M_MEM_USED, NOW, "alex", "a0124", "0"));
    assert_value(READ(s, M_NFS4_READ, NOW, "alex", "a0124"), 8);
    assert_value(READ(s, M_X, NOW, "alex", "a0124", "socket1", "core2"), 9);
    assert_value(READ(s, M_X, NOW, "alex", "a0124", "7"), 10);
    /* the later of host/hostname wins, other tags are ignored */
    assert_value(READ(s, M_X, NOW, "fritz", "f2"), 11);
    assert_nan(READ(s, M_X, NOW, "fritz", "f1"));
    assert_value(READ(s, M_X, NOW, "other", "h"), 12);
    store_destroy(s);
}

/* Cluster and host are resolved per line (the Go store reused the previous line's). */
static void test_no_cross_line_leakage(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "x,cluster=c1,hostname=h1 value=1 1700000000\n"
        "x,hostname=h1 value=2 1700000000\n"
        "x,cluster=c1 value=3 1700000000\n"
        "x,cluster=c1,hostname=h1,type=socket,type-id=0 value=4 1700000000\n"
        "x,cluster=c1,hostname=h1 value=5 1700000010\n",
        &res);
    assert_int_equal(res.r.accepted, 4);
    assert_int_equal(res.r.rejected, 1);  /* line 3: no host */
    assert_value(READ(s, M_X, NOW, "c1", "h1"), 1);
    assert_value(READ(s, M_X, NOW, "alex", "h1"), 2);
    assert_value(READ(s, M_X, NOW, "c1", "h1", "socket0"), 4);
    assert_value(READ(s, M_X, NOW + 10, "c1", "h1"), 5);
    assert_non_null(strstr(res.text, "line 3: no host"));
    store_destroy(s);
}

/* Names are compared as words (overlapping ones for 4 to 16 bytes): hosts,
 * clusters and type levels whose names differ in one byte, at every
 * position and for every length from 1 to 20, are told apart line by line
 * while the previous line's host is still locked. */
static void test_names_differing_in_one_byte(void **state)
{
    (void)state;
    struct ingest_options o = default_opts();
    static char body[1 << 16];
    for (size_t len = 1; len <= 20; len++) {
        for (size_t at = 0; at < len; at++) {
            struct store *s = new_store();
            char a[24], b[24];
            memset(a, 'n', len);
            memcpy(b, a, len);
            b[at] = 'm';
            a[len] = b[len] = '\0';
            /* host a, host b, cluster b with host a, then type levels a and b */
            snprintf(body, sizeof body,
                     "x,hostname=%s value=1 %lld\n"
                     "x,hostname=%s value=2 %lld\n"
                     "x,cluster=%s,hostname=%s value=3 %lld\n"
                     "x,hostname=h,type=%s,type-id=0 value=4 %lld\n"
                     "x,hostname=h,type=%s,type-id=0 value=5 %lld\n",
                     a, NOW, b, NOW, b, a, NOW, a, NOW, b, NOW);
            struct run_result res;
            run(s, &o, body, &res);
            assert_int_equal(res.r.accepted, 5);
            char ta[32], tb[32];
            snprintf(ta, sizeof ta, "%s0", a);
            snprintf(tb, sizeof tb, "%s0", b);
            assert_value(READ(s, M_X, NOW, "alex", a), 1);
            assert_value(READ(s, M_X, NOW, "alex", b), 2);
            assert_value(READ(s, M_X, NOW, b, a), 3);
            assert_value(READ(s, M_X, NOW, "alex", "h", ta), 4);
            assert_value(READ(s, M_X, NOW, "alex", "h", tb), 5);
            store_destroy(s);
        }
    }
}

/* Lines whose tag section the locked host has seen take the short way
 * (tag_cache.h): a section without a cluster tag follows each request's
 * default cluster; a level removed by a free is created again, not
 * written through a stale entry; a bad field reads the same error either
 * way; escaped sections and type and subtype levels land where the long
 * way puts them. Every value is read back. */
static void test_remembered_tag_sections(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    static char body[4096];

    /* request 1 (default cluster alex) teaches host alex/h its sections */
    snprintf(body, sizeof body,
             "x,hostname=h value=1 %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=2 %lld\n"
             "x,hostname=h,type=socket,type-id=0,stype=core,stype-id=3 value=3 %lld\n"
             "x,hostname=h,type=socket,type-id=\\ 1 value=4 %lld\n",
             NOW, NOW, NOW, NOW);
    run(s, &o, body, &res);
    assert_int_equal(res.r.accepted, 4);

    /* request 2 (default cluster c2): alex/h is locked by a line with a
     * cluster tag, then the same section without one must go to c2/h */
    o.default_cluster = "c2";
    snprintf(body, sizeof body,
             "x,cluster=alex,hostname=h value=10 %lld\n"
             "x,hostname=h value=11 %lld\n"
             "x,cluster=alex,hostname=h,type=socket,type-id=0 value=12 %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=13 %lld\n",
             NOW + 10, NOW + 10, NOW + 10, NOW + 10);
    run(s, &o, body, &res);
    assert_int_equal(res.r.accepted, 4);
    assert_value(READ(s, M_X, NOW + 10, "alex", "h"), 10);
    assert_value(READ(s, M_X, NOW + 10, "c2", "h"), 11);
    assert_value(READ(s, M_X, NOW + 10, "alex", "h", "socket0"), 12);
    assert_value(READ(s, M_X, NOW + 10, "c2", "h", "socket0"), 13);

    /* request 3 (alex again): every section is remembered now */
    o.default_cluster = "alex";
    snprintf(body, sizeof body,
             "x,hostname=h value=21 %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=22 %lld\n"
             "x,hostname=h,type=socket,type-id=0,stype=core,stype-id=3 value=23 %lld\n"
             "x,hostname=h,type=socket,type-id=\\ 1 value=24 %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=oops %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=25 %lld\n",
             NOW + 20, NOW + 20, NOW + 20, NOW + 20, NOW + 20, NOW + 30);
    run(s, &o, body, &res);
    assert_int_equal(res.r.accepted, 5);
    assert_int_equal(res.r.rejected, 1);
    const char *bad = ":42: value for field \"value\" (\"oops\") has unrecognized type";
    if (!strstr(res.text, "line 5: at 5:42: value for field"))
        fail_msg("got: %s", res.text);
    assert_non_null(strstr(res.text, bad));
    assert_value(READ(s, M_X, NOW + 20, "alex", "h"), 21);
    assert_value(READ(s, M_X, NOW + 20, "alex", "h", "socket0"), 22);
    assert_value(READ(s, M_X, NOW + 20, "alex", "h", "socket0", "core3"), 23);
    assert_value(READ(s, M_X, NOW + 20, "alex", "h", "socket 1"), 24);
    assert_value(READ(s, M_X, NOW + 30, "alex", "h", "socket0"), 25);

    /* the same bad line the long way (a fresh store): the same message */
    struct store *fresh = new_store();
    struct run_result once;
    run(fresh, &o, "x,hostname=h,type=socket,type-id=0 value=oops 1700000020\n", &once);
    assert_non_null(strstr(once.text, "line 1: at 1:42: value for field"));
    assert_non_null(strstr(once.text, bad));
    store_destroy(fresh);

    /* a free of everything below alex/h removes its levels: the
     * remembered sections must not lead to them any more */
    uint64_t freed = 0;
    const char *path[] = { "alex", "h" };
    size_t lens[] = { 4, 1 };
    assert_int_equal(store_free(s, path, lens, 2, NOW + 3600, &freed), 0);
    assert_true(freed > 0);
    snprintf(body, sizeof body,
             "x,hostname=h value=31 %lld\n"
             "x,hostname=h,type=socket,type-id=0 value=32 %lld\n"
             "x,hostname=h,type=socket,type-id=0,stype=core,stype-id=3 value=33 %lld\n",
             NOW + 40, NOW + 40, NOW + 40);
    run(s, &o, body, &res);
    assert_int_equal(res.r.accepted, 3);
    assert_value(READ(s, M_X, NOW + 40, "alex", "h"), 31);
    assert_value(READ(s, M_X, NOW + 40, "alex", "h", "socket0"), 32);
    assert_value(READ(s, M_X, NOW + 40, "alex", "h", "socket0", "core3"), 33);
    assert_true(isnan(READ(s, M_X, NOW + 20, "alex", "h", "socket0")));

    /* what the hosts remember is counted: c2/h its two sections, alex/h
     * the three written since the free (the four before it forgotten) */
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.tag_sections, 5);
    assert_true(st.tag_section_bytes > 0 && st.tag_section_bytes < st.bytes);
    store_destroy(s);
}

/* The child cache maps level names of the locked host to their levels:
 * names that share their first and last 8 bytes (one cache slot), the
 * same type with and without a subtype, a host switch and a chunk
 * boundary (the host lock is released) all reach the right level, and
 * invalid names are rejected whether a valid one was cached or not. */
static void test_child_cache(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    static char body[64 * 1024];
    char long_name[256];
    memset(long_name, 'c', 255);
    long_name[255] = '\0';
    size_t n = 0;
    /* round-robin over 300 levels of one host, twice, then the second host */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++)
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "x,hostname=h1,type=hwthread,type-id=%d value=%d %lld\n", i,
                                  1000 * round + i, NOW + 10 * round);
    /* same first and last 8 bytes, same length: one slot, two levels */
    n += (size_t)snprintf(body + n, sizeof body - n,
                          "x,hostname=h1,type=abcdefghAAijklmnop value=1 %lld\n"
                          "x,hostname=h1,type=abcdefghBBijklmnop value=2 %lld\n"
                          "x,hostname=h1,type=abcdefghAAijklmnop value=3 %lld\n"
                          "x,hostname=h1,type=socket,type-id=0 value=4 %lld\n"
                          "x,hostname=h1,type=socket,type-id=0,stype=core,stype-id=1 value=5 %lld\n"
                          "x,hostname=h1,type=socket,type-id=0 value=6 %lld\n"
                          "x,hostname=h2,type=socket,type-id=0 value=7 %lld\n"
                          "x,hostname=h1,type=socket,type-id=0 value=8 %lld\n"
                          "x,hostname=h1,type=socket,type-id=0,stype=%s,stype-id=1 value=9 %lld\n",
                          NOW, NOW, NOW + 10, NOW + 20, NOW, NOW + 30, NOW, NOW + 40, long_name,
                          NOW);
    /* fed in 1,000-byte chunks: the lock is released between them */
    for (size_t chunk = 0; chunk <= 1000; chunk += 1000) {
        struct run_result res;
        run_chunked(s, &o, body, chunk, &res);
        assert_int_equal(res.r.accepted, 608);
        assert_int_equal(res.r.rejected, 1);
        assert_non_null(strstr(res.text, "line 609: invalid subtype level name: it is longer"));
        char name[32];
        for (int i = 0; i < 300; i++) {
            snprintf(name, sizeof name, "hwthread%d", i);
            assert_value(READ(s, M_X, NOW, "alex", "h1", name), i);
            assert_value(READ(s, M_X, NOW + 10, "alex", "h1", name), 1000 + i);
        }
        assert_value(READ(s, M_X, NOW, "alex", "h1", "abcdefghAAijklmnop"), 1);
        assert_value(READ(s, M_X, NOW + 10, "alex", "h1", "abcdefghAAijklmnop"), 3);
        assert_value(READ(s, M_X, NOW, "alex", "h1", "abcdefghBBijklmnop"), 2);
        assert_value(READ(s, M_X, NOW + 20, "alex", "h1", "socket0"), 4);
        assert_value(READ(s, M_X, NOW + 30, "alex", "h1", "socket0"), 6);
        assert_value(READ(s, M_X, NOW + 40, "alex", "h1", "socket0"), 8);
        assert_value(READ(s, M_X, NOW, "alex", "h1", "socket0", "core1"), 5);
        assert_value(READ(s, M_X, NOW, "alex", "h2", "socket0"), 7);
    }
    store_destroy(s);
}

static void test_escaped_metric_name(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o, "m\\ e\\,t,hostname=h\\ 1 value=3 1700000000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    assert_value(READ(s, M_SPACE, NOW, "alex", "h 1"), 3);
    store_destroy(s);
}

/* A line that starts with the measurement of the line before skips its
 * scan (ingest_same_measurement), and one whose tag section is the one
 * that came next last time skips the scan for the section's end
 * (store_host_find_next_tags): every line of this body must count and
 * store exactly as when each line is a request of its own (where nothing
 * is remembered from a line before and no host is locked). */
static void test_same_measurement_as_line_before(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "cpu_load,hostname=h1 value=1 1700000000",
        "cpu_load,hostname=h1 value=2 1700000010",
        "cpu_load value=3 1700000020",             /* no host: rejected */
        "cpu_loadx,hostname=h1 value=4 1700000020", /* longer: not configured */
        "cpu_load\r",                             /* a measurement alone */
        "cpu_load\r,hostname=h1 value=4 1700000020",
        "cpu_load,hostname=h2 value=5 1700000000\r",
        "cpu_load,hostname=h2 value=55 1700000010\r",
        "m\\ e\\,t,hostname=h1 value=6 1700000000", /* escaped: not remembered */
        "m\\ e\\,t,hostname=h1 value=7 1700000010",
        "m\\ e\\,t\\,hostname=h1 value=8 1700000010",
        "nothing,hostname=h1 value=1 1700000000",
        "nothing,hostname=h1 value=2 1700000000",   /* not configured, remembered */
        "nothing",
        "cpu_load,hostname=h1 value=8 1700000020",
        "cpu_load  value=9",
        "cpu_load,,hostname=h1 value=10 1700000030",
        "cpu_load, value=11",
        "cpu_load,hostname=h1 value=12 1700000030",
        " cpu_load,hostname=h1 value=13 1700000040",
        "cpu_load,hostname=h1 value=14 1700000050",
        "#cpu_load,hostname=h1 value=15 1700000060",
        "cpu_load,hostname=h1 value=16 1700000060",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=17 1700000060",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=18 1700000070",
        /* a learnt order of sections, then lookalikes of the predicted one */
        "cpu_load,hostname=h1,type=socket,type-id=1 value=19 1700000070",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=20 1700000080",
        "cpu_load,hostname=h1,type=socket,type-id=1 value=21 1700000080",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=22 1700000090",
        "cpu_load,hostname=h1,type=socket,type-id=10 value=23 1700000090",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=24 1700000100",
        "cpu_load,hostname=h1,type=socket,type-id=1,x=y value=25 1700000100",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=26 1700000110",
        "cpu_load,hostname=h1,type=socket,type-id=1\\ value=27 1700000110",
        "cpu_load,hostname=h1,type=socket,type-id=0 value=28 1700000120",
        "cpu_load,hostname=h1,type=socket,type-id=1 value=29",
        "cpu_load,hostname=h1,type=socket,type-id=1 value=30 1700000120",
    };
    const size_t count = sizeof lines / sizeof lines[0];
    struct store *together = new_store(), *apart = new_store();
    struct ingest_options o = default_opts();
    char body[4096];
    size_t used = 0;
    struct ingest_result sum = {0};
    for (size_t i = 0; i < count; i++) {
        char line[256];
        snprintf(line, sizeof line, "%s\n", lines[i]);
        used += (size_t)snprintf(body + used, sizeof body - used, "%s", line);
        struct run_result one;
        run(apart, &o, line, &one);
        sum.lines += one.r.lines;
        sum.accepted += one.r.accepted;
        sum.rejected += one.r.rejected;
        sum.ignored += one.r.ignored;
    }
    struct run_result all;
    run(together, &o, body, &all);
    assert_int_equal(all.r.lines, sum.lines);
    assert_int_equal(all.r.accepted, sum.accepted);
    assert_int_equal(all.r.rejected, sum.rejected);
    assert_int_equal(all.r.ignored, sum.ignored);
    assert_int_equal(all.r.accepted, 24);
    for (int64_t t = NOW; t <= NOW + 120; t += FREQ) {
        double a = READ(together, M_CPU_LOAD, t, "alex", "h1");
        double b = READ(apart, M_CPU_LOAD, t, "alex", "h1");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
        a = READ(together, M_CPU_LOAD, t, "alex", "h2");
        b = READ(apart, M_CPU_LOAD, t, "alex", "h2");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
        a = READ(together, M_CPU_LOAD, t, "alex", "h1", "socket0");
        b = READ(apart, M_CPU_LOAD, t, "alex", "h1", "socket0");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
        a = READ(together, M_CPU_LOAD, t, "alex", "h1", "socket1");
        b = READ(apart, M_CPU_LOAD, t, "alex", "h1", "socket1");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
        a = READ(together, M_CPU_LOAD, t, "alex", "h1", "socket10");
        b = READ(apart, M_CPU_LOAD, t, "alex", "h1", "socket10");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
        a = READ(together, M_SPACE, t, "alex", "h1");
        b = READ(apart, M_SPACE, t, "alex", "h1");
        assert_true(memcmp(&a, &b, sizeof a) == 0);
    }
    assert_value(READ(together, M_CPU_LOAD, NOW + 20, "alex", "h1"), 8);
    assert_value(READ(together, M_SPACE, NOW + 10, "alex", "h1"), 7);
    store_destroy(together);
    store_destroy(apart);
}

/* ---- values and timestamps --------------------------------------------- */

static void test_values(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "x,hostname=i value=-7i 1700000000\n"
        "x,hostname=u value=18446744073709551615u 1700000000\n"
        "x,hostname=f value=1.5e3 1700000000\n"
        "x,hostname=last value=1,value=2 1700000000\n"
        "x,hostname=big value=1e39 1700000000\n"
        "x,hostname=max value=-3.4e38 1700000000\n"
        "x,hostname=str value=\"12\" 1700000000\n"
        "x,hostname=bool value=true 1700000000\n"
        "x,hostname=other value=1,other=2 1700000000\n"
        "x,hostname=nan value=NaN 1700000000\n"
        "x,hostname=inf value=1e400 1700000000\n",
        &res);
    assert_int_equal(res.r.lines, 11);
    assert_int_equal(res.r.accepted, 5);
    assert_int_equal(res.r.rejected, 6);
    assert_value(READ(s, M_X, NOW, "alex", "i"), -7);
    assert_value(READ(s, M_X, NOW, "alex", "u"), (double)(float)18446744073709551615.0);
    assert_value(READ(s, M_X, NOW, "alex", "f"), 1500);
    assert_value(READ(s, M_X, NOW, "alex", "last"), 2);
    assert_value(READ(s, M_X, NOW, "alex", "max"), (double)-3.4e38f);
    assert_nan(READ(s, M_X, NOW, "alex", "big"));
    assert_nan(READ(s, M_X, NOW, "alex", "str"));
    assert_non_null(strstr(res.text, "line 5: value 1e+39 cannot be stored: not a finite float32"));
    assert_non_null(strstr(res.text, "line 7: unsupported value type string"));
    assert_non_null(strstr(res.text, "line 8: unsupported value type boolean"));
    assert_non_null(strstr(res.text, "line 9: unknown field \"other\""));
    assert_non_null(strstr(res.text, "and 1 more"));
    /* nothing at all was created for the rejected lines */
    const char *const cl[] = { "alex" };
    char **hosts;
    size_t n;
    assert_int_equal(store_list_hosts(s, cl[0], 4, &hosts, &n), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        free(hosts[i]);
    free(hosts);
    store_destroy(s);
}

static void test_precision(void **state)
{
    (void)state;
    enum ingest_precision p;
    assert_int_equal(ingest_parse_precision("s", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_S);
    assert_int_equal(ingest_parse_precision("ms", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_MS);
    assert_int_equal(ingest_parse_precision("us", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_US);
    assert_int_equal(ingest_parse_precision("u", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_US);
    assert_int_equal(ingest_parse_precision("ns", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_NS);
    assert_int_equal(ingest_parse_precision("n", &p), 0);
    assert_int_equal(p, INGEST_PRECISION_NS);
    assert_int_equal(ingest_parse_precision("h", &p), -1);
    assert_int_equal(ingest_parse_precision("m", &p), -1);
    assert_int_equal(ingest_parse_precision("", &p), -1);
    assert_int_equal(ingest_parse_precision("sec", &p), -1);
    assert_int_equal(ingest_parse_precision(NULL, &p), -1);

    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    /* by magnitude */
    run(s, &o,
        "x,hostname=s value=1 1700000000\n"
        "x,hostname=ms value=2 1700000000999\n"
        "x,hostname=us value=3 1700000000999999\n"
        "x,hostname=ns value=4 1700000000999999999\n"
        "x,hostname=small value=5 99999999990\n",
        &res);
    assert_int_equal(res.r.rejected, 1);
    assert_value(READ(s, M_X, NOW, "alex", "s"), 1);
    assert_value(READ(s, M_X, NOW, "alex", "ms"), 2);
    assert_value(READ(s, M_X, NOW, "alex", "us"), 3);
    assert_value(READ(s, M_X, NOW, "alex", "ns"), 4);
    /* just below 1e11: still seconds (year 5138, so: in the future) */
    assert_int_equal(res.r.accepted, 4);
    assert_non_null(strstr(res.text, "line 5: timestamp 99999999990 is more than 3600 s in the future"));

    /* ?precision overrides: 1700000000000 read as ms, not as far-future seconds */
    o.precision = INGEST_PRECISION_MS;
    run(s, &o, "x,hostname=p value=6 1700000010000\nx,hostname=p value=7 1700000020999\n", &res);
    assert_int_equal(res.r.accepted, 2);
    assert_value(READ(s, M_X, NOW + 10, "alex", "p"), 6);
    assert_value(READ(s, M_X, NOW + 20, "alex", "p"), 7);
    o.precision = INGEST_PRECISION_S;
    run(s, &o, "x,hostname=p value=8 1700000000000\n", &res);
    assert_int_equal(res.r.rejected, 1);
    o.precision = INGEST_PRECISION_NS;
    run(s, &o, "x,hostname=q value=9 1700000000000000000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    assert_value(READ(s, M_X, NOW, "alex", "q"), 9);
    o.precision = INGEST_PRECISION_US;
    run(s, &o, "x,hostname=q value=10 1700000010000000\n", &res);
    assert_value(READ(s, M_X, NOW + 10, "alex", "q"), 10);
    store_destroy(s);
}

static void test_missing_timestamp_and_negative(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o, "x,hostname=a value=1 1699999000\nx,hostname=a value=2\n", &res);
    assert_int_equal(res.r.accepted, 2);
    /* no timestamp = the receive time, not the previous line's time */
    assert_value(READ(s, M_X, NOW, "alex", "a"), 2);
    assert_value(READ(s, M_X, NOW - 1000, "alex", "a"), 1);

    /* floor division for negative milliseconds */
    o.precision = INGEST_PRECISION_MS;
    o.now = 0;
    run(s, &o, "x,hostname=neg value=3 -1500\n", &res);
    assert_int_equal(res.r.accepted, 1);
    assert_value(READ(s, M_X, -2, "alex", "neg"), 3);
    store_destroy(s);
}

static void test_future_tolerance(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "x,hostname=a value=1 1700003600\n"
        "x,hostname=b value=2 1700003601\n",
        &res);
    assert_int_equal(res.r.accepted, 1);
    assert_int_equal(res.r.rejected, 1);
    assert_value(READ(s, M_X, NOW + 3600, "alex", "a"), 1);
    assert_str_eq(res.text, "1 of 2 lines rejected (1 accepted): line 2: timestamp 1700003601 is "
                            "more than 3600 s in the future");
    o.future_tolerance = -1;
    run(s, &o, "x,hostname=b value=2 1800000000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    o.future_tolerance = 0;
    run(s, &o, "x,hostname=c value=2 1700000001\nx,hostname=c value=3 1700000000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    assert_int_equal(res.r.rejected, 1);
    store_destroy(s);
}

static void test_retention_window(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    o.retention = 48 * 3600;
    struct run_result res;
    /* arrival order does not matter inside [now - retention, now + tolerance] */
    run(s, &o,
        "x,hostname=a value=1 1699997000\n"      /* now - 50 min */
        "x,hostname=a value=2 1699996400\n"      /* now - 60 min: before the series' data */
        "x,hostname=a value=3 1699827200\n"      /* now - 48 h exactly */
        "x,hostname=a value=4 1699827199\n",     /* one second too old */
        &res);
    assert_int_equal(res.r.accepted, 3);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "line 4: timestamp 1699827199 is older than the retention "
                                     "window (retention-in-memory 172800 s before 1700000000)"));
    assert_value(READ(s, M_X, 1699997000, "alex", "a"), 1);
    assert_value(READ(s, M_X, 1699996400, "alex", "a"), 2);
    assert_value(READ(s, M_X, 1699827200, "alex", "a"), 3);
    /* retention <= 0: no lower bound */
    o.retention = 0;
    run(s, &o, "x,hostname=a value=5 1000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    store_destroy(s);
}

/* ---- errors and accounting ---------------------------------------------- */

static void test_bad_lines_counted(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "# header comment\n"
        "cpu_load,cluster=alex,hostname=a0124,type=node value=35.0 1700000000\n"
        "cpu_load,cluster=alex,hostname=a0124,type= value=1 1700000000\n"
        "\n"
        "unknown_metric,whatever,,=garbage value=\"x\" nonsense\n"
        "flops_any,cluster=alex,hostname=a0124,type=hwthread,type-id=1 value=7i 1700000000\n"
        ",bad measurement\n",
        &res);
    assert_int_equal(res.r.lines, 5);
    assert_int_equal(res.r.accepted, 2);
    assert_int_equal(res.r.rejected, 2);
    assert_int_equal(res.r.ignored, 1);
    assert_str_eq(res.text,
                  "2 of 5 lines rejected (2 accepted, 1 ignored): "
                  "line 3: at 3:43: expected tag value after tag key \"type\", but none found; "
                  "line 7: at 7:1: invalid character ',' found at start of measurement name");
    assert_value(READ(s, M_CPU_LOAD, NOW, "alex", "a0124"), 35);
    assert_value(READ(s, M_FLOPS_ANY, NOW, "alex", "a0124", "hwthread1"), 7);
    store_destroy(s);
}

static void test_error_text_limit(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o, "x v\nx v\nx v\nx v\nx v\nx v\nx v\nx,hostname=h value=1\n", &res);
    assert_int_equal(res.r.rejected, 7);
    assert_int_equal(res.r.accepted, 1);
    assert_non_null(strstr(res.text, "7 of 8 lines rejected (1 accepted): line 1: at 1:4: want '='"));
    assert_non_null(strstr(res.text, "; line 5: at 5:4:"));
    assert_null(strstr(res.text, "line 6:"));
    assert_non_null(strstr(res.text, "; and 2 more"));

    /* nothing rejected: empty text */
    run(s, &o, "x,hostname=h value=1\n", &res);
    assert_str_eq(res.text, "");
    store_destroy(s);
}

static void test_unknown_metrics_ignored(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    uint64_t before = level_count(s);
    run(s, &o,
        "event,hostname=h event=\"job started\" 1700000000\n"
        "log,hostname=h log=\"x\"\n"
        "control,hostname=h control=\"stop\"\n"
        "nothing_configured,=,= \x01 broken\n"
        "  \n"
        "# just a comment\n",
        &res);
    assert_int_equal(res.r.lines, 4);
    assert_int_equal(res.r.ignored, 4);
    assert_int_equal(res.r.rejected, 0);
    assert_int_equal(res.r.accepted, 0);
    assert_str_eq(res.text, "");
    assert_int_equal(level_count(s), before);
    store_destroy(s);
}

static void test_names_rejected(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    char host255[256], host256[257], line[1024];
    memset(host255, 'h', 255);
    host255[255] = '\0';
    memset(host256, 'h', 256);
    host256[256] = '\0';

    uint64_t before = level_count(s);
    run(s, &o,
        "x,hostname=.. value=1\n"
        "x,hostname=. value=1\n"
        "x,hostname=a/b value=1\n"
        "x,hostname=a\\b value=1\n"
        "x,cluster=..,hostname=h value=1\n"
        "x,cluster=c/d,hostname=h value=1\n"
        "x,cluster=c value=1\n"
        "x,hostname=h\x01 value=1\n",
        &res);
    assert_int_equal(res.r.rejected, 8);
    assert_int_equal(res.r.accepted, 0);
    assert_int_equal(level_count(s), before);
    assert_non_null(strstr(res.text, "line 1: invalid host name \"..\": \".\" and \"..\" are not allowed"));
    assert_non_null(strstr(res.text, "line 3: invalid host name \"a/b\": it contains '/' or '\\'"));
    assert_non_null(strstr(res.text, "line 4: invalid host name \"a\\\\b\""));

    /* type and subtype levels are no paths: only NUL and control bytes are
     * refused (a tag value cannot carry them, an escaped line can) */
    run(s, &o,
        "x,hostname=h,type=socket,type-id=0\x01 value=1\n"
        "x,hostname=h\x01 value=1\n",
        &res);
    assert_int_equal(res.r.rejected, 2);
    assert_non_null(strstr(res.text, "line 2: at 2:13: "));
    assert_int_equal(level_count(s), before);

    snprintf(line, sizeof line, "x,hostname=%s value=1 1700000000\n", host256);
    run(s, &o, line, &res);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "longer than 255 bytes"));
    snprintf(line, sizeof line, "x,hostname=h,type=%s,type-id=0 value=1 1700000000\n", host255);
    run(s, &o, line, &res);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "line 1: invalid type level name: it is longer than 255 bytes"));
    assert_int_equal(level_count(s), before);

    snprintf(line, sizeof line, "x,hostname=%s value=1 1700000000\n", host255);
    run(s, &o, line, &res);
    assert_int_equal(res.r.accepted, 1);
    assert_value(READ(s, M_X, NOW, "alex", host255), 1);

    /* no cluster tag and no default cluster */
    o.default_cluster = NULL;
    run(s, &o, "x,hostname=h value=1\n", &res);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "no cluster"));
    o.default_cluster = "";
    run(s, &o, "x,hostname=h value=1\nx,cluster=ok,hostname=h value=1 1700000000\n", &res);
    assert_int_equal(res.r.rejected, 1);
    assert_int_equal(res.r.accepted, 1);
    /* the default cluster is checked like a tag value */
    o.default_cluster = "bad\x01name";
    run(s, &o, "x,hostname=h value=1\n", &res);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "invalid cluster name \"bad\\x01name\": it contains a NUL or control byte"));
    o.default_cluster = "..";
    run(s, &o, "x,hostname=h value=1\n", &res);
    assert_int_equal(res.r.rejected, 1);
    store_destroy(s);
}

/* Device scopes of the newest cc-backend: mount points and interface names
 * as type-ids; only cluster and host carry the path rules. */
static void test_device_scopes(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    run(s, &o,
        "x,hostname=h1,type=filesystem,type-id=/home value=1 1700000000\n"
        "x,hostname=h1,type=filesystem,type-id=/scratch/a.b-c value=2 1700000000\n"
        "x,hostname=h1,type=network,type-id=ib0 value=3 1700000000\n"
        "x,hostname=h1,type=filesystem,type-id=.. value=4 1700000000\n"
        "x,hostname=h1,type=socket,type-id=0,stype=filesystem,stype-id=/home value=5 1700000000\n"
        "x,hostname=h2,type=node,stype=filesystem,stype-id=/home value=6 1700000000\n",
        &res);
    assert_int_equal(res.r.rejected, 0);
    assert_int_equal(res.r.accepted, 6);
    assert_value(READ(s, M_X, NOW, "alex", "h1", "filesystem/home"), 1);
    assert_value(READ(s, M_X, NOW, "alex", "h1", "filesystem/scratch/a.b-c"), 2);
    assert_value(READ(s, M_X, NOW, "alex", "h1", "networkib0"), 3);
    assert_value(READ(s, M_X, NOW, "alex", "h1", "filesystem.."), 4);
    assert_value(READ(s, M_X, NOW, "alex", "h1", "socket0", "filesystem/home"), 5);
    /* type=node: host level, the subtype is ignored */
    assert_value(READ(s, M_X, NOW, "alex", "h2"), 6);
    store_destroy(s);
}

static void test_new_level_limit(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    o.max_new_levels = 3;
    run(s, &o,
        "x,cluster=c1,hostname=h1 value=1 1700000000\n"                      /* +2 */
        "x,cluster=c1,hostname=h1,type=cpu,type-id=0 value=2 1700000000\n"   /* +1 */
        "x,cluster=c1,hostname=h1,type=cpu,type-id=1 value=3 1700000000\n"   /* over */
        "x,cluster=c1,hostname=h1,type=cpu,type-id=0 value=4 1700000010\n"   /* exists */
        "x,cluster=c1,hostname=h2 value=5 1700000000\n"                      /* over */
        "x,cluster=c1,hostname=h1 value=6 1700000010\n",                     /* exists */
        &res);
    assert_int_equal(res.r.accepted, 4);
    assert_int_equal(res.r.rejected, 2);
    assert_non_null(strstr(res.text, "line 3: too many new levels in one request (limit 3)"));
    assert_non_null(strstr(res.text, "line 5: too many new levels in one request (limit 3)"));
    assert_nan(READ(s, M_X, NOW, "c1", "h1", "cpu1"));
    assert_nan(READ(s, M_X, NOW, "c1", "h2"));
    assert_value(READ(s, M_X, NOW + 10, "c1", "h1", "cpu0"), 4);

    /* the budget is per batch; one level left is enough for a host in an existing cluster */
    o.max_new_levels = 1;
    run(s, &o,
        "x,cluster=c2,hostname=h1 value=1 1700000000\n"   /* needs 2 */
        "x,cluster=c1,hostname=h3 value=2 1700000000\n"   /* needs 1 */
        "x,cluster=c1,hostname=h4 value=3 1700000000\n",  /* over */
        &res);
    assert_int_equal(res.r.accepted, 1);
    assert_int_equal(res.r.rejected, 2);
    assert_value(READ(s, M_X, NOW, "c1", "h3"), 2);
    assert_nan(READ(s, M_X, NOW, "c1", "h4"));

    /* subtype level: one left is enough when the type level exists */
    run(s, &o,
        "x,cluster=c1,hostname=h1,type=cpu,type-id=0,stype=core,stype-id=0 value=1 1700000000\n"
        "x,cluster=c1,hostname=h1,type=gpu,type-id=0,stype=core,stype-id=0 value=1 1700000000\n",
        &res);
    assert_int_equal(res.r.accepted, 1);
    assert_int_equal(res.r.rejected, 1);

    /* 0 = unlimited */
    o.max_new_levels = 0;
    run(s, &o, "x,cluster=c9,hostname=h1,type=a,type-id=1,stype=b,stype-id=2 value=1 1700000000\n", &res);
    assert_int_equal(res.r.accepted, 1);
    store_destroy(s);
}

static void test_long_lines(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct run_result res;
    o.max_line_length = 40;
    run(s, &o,
        "x,hostname=a value=1 1700000000\n"
        "x,hostname=b,unit=a_very_long_unit_name_that_does_not_fit value=2 1700000000\n"
        "x,hostname=c value=3 1700000000\n",
        &res);
    assert_int_equal(res.r.lines, 3);
    assert_int_equal(res.r.accepted, 2);
    assert_int_equal(res.r.rejected, 1);
    assert_non_null(strstr(res.text, "line 2: line too long (more than 40 bytes)"));
    assert_value(READ(s, M_X, NOW, "alex", "c"), 3);
    store_destroy(s);
}

/* ---- chunking ----------------------------------------------------------- */

static const char chunk_body[] =
    "cpu_load,cluster=alex,hostname=a0124,type=node value=35.0 1700000000\r\n"
    "flops_any,cluster=alex,hostname=a0124,type=hwthread,type-id=0 value=1.5 1700000000\n"
    "flops_any,cluster=alex,hostname=a0124,type=hwthread,type-id=1 value=2.5 1700000000\n"
    "flops_any,cluster=alex,hostname=a0125,type=hwthread,type-id=0 value=3.5 1700000000\n"
    "cpu_load,,line\n"
    "cpu_load,hostname=a0124,type= value=1\n"
    "# comment\n"
    "\n"
    "mem_bw,hostname=a0125,type=socket,type-id=0 value=12i 1700000000000\n"
    "unknown v=1\n"
    "x,hostname=a0124 value=\"s\"\n"
    "cpu_load,hostname=a0126 value=4 1700000000";

static void check_chunk_store(struct store *s)
{
    assert_value(READ(s, M_CPU_LOAD, NOW, "alex", "a0124"), 35);
    assert_value(READ(s, M_FLOPS_ANY, NOW, "alex", "a0124", "hwthread0"), 1.5);
    assert_value(READ(s, M_FLOPS_ANY, NOW, "alex", "a0124", "hwthread1"), 2.5);
    assert_value(READ(s, M_FLOPS_ANY, NOW, "alex", "a0125", "hwthread0"), 3.5);
    assert_value(READ(s, M_MEM_BW, NOW, "alex", "a0125", "socket0"), 12);
    assert_value(READ(s, M_CPU_LOAD, NOW, "alex", "a0126"), 4);
}

static void test_bytewise_identical(void **state)
{
    (void)state;
    struct ingest_options o = default_opts();
    struct run_result whole, part;
    struct store *s1 = new_store();
    run(s1, &o, chunk_body, &whole);
    assert_int_equal(whole.r.lines, 10);
    assert_int_equal(whole.r.accepted, 6);
    assert_int_equal(whole.r.rejected, 3);
    assert_int_equal(whole.r.ignored, 1);
    check_chunk_store(s1);

    static const size_t chunk_sizes[] = { 1, 2, 3, 7, 64 };
    for (size_t i = 0; i < sizeof chunk_sizes / sizeof chunk_sizes[0]; i++) {
        struct store *s2 = new_store();
        run_chunked(s2, &o, chunk_body, chunk_sizes[i], &part);
        assert_memory_equal(&whole.r, &part.r, sizeof whole.r);
        assert_str_eq(whole.text, part.text);
        check_chunk_store(s2);
        struct store_stats a, b;
        store_get_stats(s1, &a);
        store_get_stats(s2, &b);
        assert_int_equal(a.levels, b.levels);
        assert_int_equal(a.samples, b.samples);
        store_destroy(s2);
    }
    store_destroy(s1);
}

/* ---- locking and totals ------------------------------------------------- */

static void test_host_lock_released(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct store_host h;
    assert_int_equal(store_host_lock(s, "alex", 4, "a", 1, true, NULL, &h), 0);
    struct level *host_level = h.level;
    store_host_unlock(&h);

    struct ingest_batch *b;
    assert_int_equal(ingest_batch_new(s, &o, &b), 0);
    static const char body[] = "x,hostname=a value=1 1700000000\nx,hostname=a value=2 17000000";
    assert_int_equal(ingest_batch_feed(b, body, sizeof body - 1), 0);
    /* between feeds the batch holds no lock */
    assert_int_equal(pthread_rwlock_trywrlock(level_lock(host_level)), 0);
    pthread_rwlock_unlock(level_lock(host_level));
    assert_int_equal(ingest_batch_feed(b, "10\n", 3), 0);
    assert_int_equal(pthread_rwlock_trywrlock(level_lock(host_level)), 0);
    pthread_rwlock_unlock(level_lock(host_level));
    assert_int_equal(ingest_batch_finish(b), 0);
    struct ingest_result r;
    ingest_batch_result(b, &r);
    assert_int_equal(r.accepted, 2);
    ingest_batch_free(b);
    assert_value(READ(s, M_X, NOW + 10, "alex", "a"), 2);

    /* the final line without newline is processed by finish, which unlocks */
    assert_int_equal(ingest_batch_new(s, &o, &b), 0);
    assert_int_equal(ingest_batch_feed(b, "x,hostname=a value=3 1700000020", 31), 0);
    assert_int_equal(ingest_batch_finish(b), 0);
    assert_int_equal(pthread_rwlock_trywrlock(level_lock(host_level)), 0);
    pthread_rwlock_unlock(level_lock(host_level));
    ingest_batch_free(b);
    assert_value(READ(s, M_X, NOW + 20, "alex", "a"), 3);
    store_destroy(s);
}

struct thread_arg {
    struct store *s;
    int id;
};

static void *ingest_thread(void *p)
{
    struct thread_arg *a = p;
    struct ingest_options o = default_opts();
    o.now = NOW + 1000 * FREQ;
    char line[128];
    struct ingest_batch *b;
    if (ingest_batch_new(a->s, &o, &b) != 0)
        return (void *)1;
    for (int i = 0; i < 2000; i++) {
        /* alternate between a private host and a shared one */
        int n = snprintf(line, sizeof line, "x,hostname=%s value=%d %lld\n",
                         i % 2 ? "shared" : (a->id ? "t1" : "t0"), i, NOW + (i / 2) * FREQ);
        if (ingest_batch_feed(b, line, (size_t)n) != 0)
            return (void *)1;
    }
    ingest_batch_finish(b);
    struct ingest_result r;
    ingest_batch_result(b, &r);
    ingest_batch_free(b);
    return r.accepted == 2000 ? NULL : (void *)1;
}

static void test_concurrent_batches(void **state)
{
    (void)state;
    struct store *s = new_store();
    pthread_t t[2];
    struct thread_arg args[2] = { { s, 0 }, { s, 1 } };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, ingest_thread, &args[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    assert_value(READ(s, M_X, NOW + 999 * FREQ, "alex", "t0"), 1998);
    assert_value(READ(s, M_X, NOW + 999 * FREQ, "alex", "t1"), 1998);
    assert_value(READ(s, M_X, NOW + 999 * FREQ, "alex", "shared"), 1999);
    store_destroy(s);
}

static void test_totals(void **state)
{
    (void)state;
    struct store *s = new_store();
    struct ingest_options o = default_opts();
    struct ingest_result before, after;
    struct run_result res;
    ingest_totals(&before);
    run(s, &o, "x,hostname=a value=1 1700000000\nx v\nnope v=1\n# c\n", &res);
    ingest_totals(&after);
    assert_int_equal(after.lines - before.lines, 3);
    assert_int_equal(after.accepted - before.accepted, 1);
    assert_int_equal(after.rejected - before.rejected, 1);
    assert_int_equal(after.ignored - before.ignored, 1);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_mapping),
        cmocka_unit_test(test_no_cross_line_leakage),
        cmocka_unit_test(test_child_cache),
        cmocka_unit_test(test_names_differing_in_one_byte),
        cmocka_unit_test(test_remembered_tag_sections),
        cmocka_unit_test(test_escaped_metric_name),
        cmocka_unit_test(test_same_measurement_as_line_before),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_precision),
        cmocka_unit_test(test_missing_timestamp_and_negative),
        cmocka_unit_test(test_future_tolerance),
        cmocka_unit_test(test_retention_window),
        cmocka_unit_test(test_bad_lines_counted),
        cmocka_unit_test(test_error_text_limit),
        cmocka_unit_test(test_unknown_metrics_ignored),
        cmocka_unit_test(test_names_rejected),
        cmocka_unit_test(test_device_scopes),
        cmocka_unit_test(test_new_level_limit),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_bytewise_identical),
        cmocka_unit_test(test_host_lock_released),
        cmocka_unit_test(test_concurrent_batches),
        cmocka_unit_test(test_totals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
