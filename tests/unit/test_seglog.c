/* Tests for persist/seglog.c: records round-trip (definitions, every
 * value form, time deltas of both signs), the header's metric table, torn
 * tails at every length, resynchronisation after damage anywhere, garbage,
 * and the file helpers (create, append, sync, replay with truncation). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/seglog.h"
#include "util/fsutil.h"
#include "util/jsonw.h"

static const char *const METRICS[] = {"cpu_load", "clock", "ipc", "mem_used"};

/* A segment image: the header as seglog_create writes it, then records. */
static char *tmpdir_new(void)
{
    char *dir = strdup("/tmp/ccms-seglog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void tmpdir_free(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* The header bytes of a fresh segment with METRICS. */
static void header_image(struct jbuf *out)
{
    char *dir = tmpdir_new();
    struct seglog_file *f;
    assert_int_equal(seglog_create(dir, 7, METRICS, 4, false, &f), 0);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(seglog_path(f), &data, &len), 0);
    jbuf_append(out, data, len);
    free(data);
    seglog_close(f);
    tmpdir_free(dir);
}

struct seen {
    uint64_t seq;
    size_t metric_count;
    size_t records;
    size_t defs;
    struct seglog_sample samples[4096];
    size_t n;
    char last_host[64];
    char def_names[8][64];
};

static int on_header(void *ctx, const struct seglog_header *h)
{
    struct seen *s = ctx;
    s->seq = h->seq;
    s->metric_count = h->metric_count;
    for (size_t i = 0; i < h->metric_count; i++)
        assert_memory_equal(h->metrics[i], METRICS[i], h->metric_lens[i]);
    return 0;
}

static int on_record(void *ctx, const struct seglog_record *r)
{
    struct seen *s = ctx;
    s->records++;
    snprintf(s->last_host, sizeof s->last_host, "%.*s/%.*s", (int)r->cluster_len, r->cluster,
             (int)r->host_len, r->host);
    for (size_t i = 0; i < r->def_count; i++) {
        if (s->defs < 8) {
            char *o = s->def_names[s->defs];
            o[0] = 0;
            for (size_t k = 0; k < r->defs[i].depth; k++)
                snprintf(o + strlen(o), 64 - strlen(o), "/%.*s", (int)r->defs[i].lens[k],
                         r->defs[i].names[k]);
        }
        s->defs++;
    }
    for (size_t i = 0; i < r->sample_count && s->n < 4096; i++)
        s->samples[s->n++] = r->samples[i];
    return 0;
}

static const struct seglog_reader READER_TEMPLATE = {on_header, on_record, NULL};

/* Scans len bytes of data into *s (cleared first); -> seglog_scan's code. */
static int scan_into(const void *data, size_t len, struct seen *s, struct seglog_scan_stats *st)
{
    struct seglog_reader rd = READER_TEMPLATE;
    memset(s, 0, sizeof(*s));
    rd.ctx = s;
    return seglog_scan(data, len, &rd, st);
}

static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* One record of host c/h with two definitions and samples of every form. */
static const float VALUES[] = {
    0.0f, -0.0f, 1.5f, 12.34f, -7.125f, 3600.0f, 0.001f, FLT_MAX, -FLT_MAX, FLT_MIN,
    1e-40f /* subnormal */, 123456.789f, 0.1f, 4.097f, 1e20f, -3.0f,
};
#define NVALUES (sizeof VALUES / sizeof VALUES[0])

static void build_record(struct jbuf *out, const char *host)
{
    struct seglog_builder b;
    seglog_builder_init(&b);
    assert_int_equal(seglog_record_begin(&b, "c", 1, host, strlen(host)), 0);
    const char *names[2] = {"socket0", "core3"};
    size_t lens[2] = {7, 5};
    assert_int_equal(seglog_record_def(&b, 1, names, lens, 1), 0);
    assert_int_equal(seglog_record_def(&b, 2, names, lens, 2), 0);
    for (size_t i = 0; i < NVALUES; i++) {
        /* times jump forward and back, far and near */
        int64_t ts = 1700000000 + (int64_t)(i % 3) * 60 - (int64_t)(i % 5) * 3600;
        assert_int_equal(seglog_record_sample(&b, (uint32_t)(i % 3), (uint32_t)(i % 4), ts,
                                              VALUES[i]), 0);
    }
    assert_int_equal(seglog_record_end(&b, out), 0);
    seglog_builder_free(&b);
}

static void check_record_samples(const struct seen *s, size_t first)
{
    for (size_t i = 0; i < NVALUES; i++) {
        const struct seglog_sample *x = &s->samples[first + i];
        int64_t ts = 1700000000 + (int64_t)(i % 3) * 60 - (int64_t)(i % 5) * 3600;
        assert_int_equal(x->ts, ts);
        assert_int_equal(x->level_id, i % 3);
        assert_int_equal(x->metric, i % 4);
        assert_int_equal(bits_of(x->value), bits_of(VALUES[i]));
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    struct jbuf img;
    jbuf_init(&img, 1024);
    header_image(&img);
    build_record(&img, "h1");
    build_record(&img, "h2");
    struct seen *s = calloc(1, sizeof(*s));
    struct seglog_scan_stats st;
    assert_int_equal(scan_into(img.data, img.len, s, &st), 0);
    assert_int_equal(s->seq, 7);
    assert_int_equal(s->metric_count, 4);
    assert_int_equal(s->records, 2);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.samples, 2 * NVALUES);
    assert_int_equal(st.corrupt, 0);
    assert_false(st.torn_tail);
    assert_int_equal(st.valid_end, img.len);
    assert_str_eq(s->last_host, "c/h2");
    assert_int_equal(s->defs, 4);
    assert_str_eq(s->def_names[0], "/socket0");
    assert_str_eq(s->def_names[1], "/socket0/core3");
    check_record_samples(s, 0);
    check_record_samples(s, NVALUES);
    free(s);
    jbuf_free(&img);
}

/* A whole timestep of a host with gauges of 1-3 decimals: a few bytes a
 * sample, not the 44 of a Go log record. */
static void test_realistic_size(void **state)
{
    (void)state;
    struct jbuf rec;
    jbuf_init(&rec, 4096);
    struct seglog_builder b;
    seglog_builder_init(&b);
    assert_int_equal(seglog_record_begin(&b, "fritz", 5, "f0123", 5), 0);
    uint64_t x = 12345;
    for (uint32_t level = 0; level < 65; level++)
        for (uint32_t m = 0; m < 4; m++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            float v = (float)((double)((x >> 40) % 6401) / 100.0);   /* a load, 0 .. 64.00 */
            assert_int_equal(seglog_record_sample(&b, level, m, 1700000040, v), 0);
        }
    assert_int_equal(seglog_record_end(&b, &rec), 0);
    assert_true(rec.len * 2 < 260 * 13);   /* below 6.5 bytes a sample */
    seglog_builder_free(&b);
    jbuf_free(&rec);
}

static void test_limits(void **state)
{
    (void)state;
    struct seglog_builder b;
    seglog_builder_init(&b);
    char long_name[300];
    memset(long_name, 'x', sizeof long_name);
    assert_int_equal(seglog_record_begin(&b, long_name, 256, "h", 1), SEGLOG_ETOO_LONG);
    assert_int_equal(seglog_record_begin(&b, "c", 1, "", 0), SEGLOG_ETOO_LONG);
    assert_int_equal(seglog_record_begin(&b, "c", 1, "h", 1), 0);
    const char *names[1] = {long_name};
    size_t lens[1] = {256};
    assert_int_equal(seglog_record_def(&b, 1, names, lens, 1), SEGLOG_ETOO_LONG);
    lens[0] = 3;
    assert_int_equal(seglog_record_def(&b, 0, names, lens, 1), SEGLOG_ETOO_LONG);
    assert_int_equal(seglog_record_def(&b, 1, names, lens, SEGLOG_MAX_DEPTH + 1),
                     SEGLOG_ETOO_LONG);
    assert_true(seglog_record_empty(&b));
    seglog_builder_free(&b);
    uint64_t seq;
    char name[32];
    seglog_name(42, name, sizeof name);
    assert_str_eq(name, "wal-00000000000000000042.log");
    assert_true(seglog_parse_name(name, &seq));
    assert_int_equal(seq, 42);
    assert_false(seglog_parse_name("wal-0000000000000000004x.log", &seq));
    assert_false(seglog_parse_name("wal-42.log", &seq));
    assert_false(seglog_parse_name("wal-99999999999999999999.log", &seq));
    assert_false(seglog_parse_name("current.wal", &seq));
}

/* Every cut of a two-record log delivers the records wholly before the
 * cut and reports a torn tail when the cut is inside one. */
static void test_every_truncation(void **state)
{
    (void)state;
    struct jbuf img;
    jbuf_init(&img, 1024);
    header_image(&img);
    size_t header_len = img.len;
    build_record(&img, "h1");
    size_t first_end = img.len;
    build_record(&img, "h2");
    struct seen *s = calloc(1, sizeof(*s));
    for (size_t cut = 0; cut <= img.len; cut++) {
        struct seglog_scan_stats st;
        int rc = scan_into(img.data, cut, s, &st);
        if (cut < header_len) {
            assert_int_equal(rc, SEGLOG_EFORMAT);
            assert_int_equal(s->records, 0);
            continue;
        }
        assert_int_equal(rc, 0);
        size_t want = cut >= img.len ? 2 : cut >= first_end ? 1 : 0;
        assert_int_equal(s->records, want);
        bool torn = cut != header_len && cut != first_end && cut != img.len;
        assert_int_equal(st.torn_tail, torn);
        assert_int_equal(st.corrupt, 0);
        assert_int_equal(st.valid_end, want == 2 ? img.len : want == 1 ? first_end : header_len);
    }
    free(s);
    jbuf_free(&img);
}

/* A flipped byte anywhere in the middle record loses that record only. */
static void test_damage_resync(void **state)
{
    (void)state;
    struct jbuf img;
    jbuf_init(&img, 1024);
    header_image(&img);
    build_record(&img, "h1");
    size_t mid_start = img.len;
    build_record(&img, "h2");
    size_t mid_end = img.len;
    build_record(&img, "h3");
    struct seen *s = calloc(1, sizeof(*s));
    for (size_t at = mid_start; at < mid_end; at++) {
        char *copy = malloc(img.len);
        memcpy(copy, img.data, img.len);
        copy[at] ^= 0x5a;
        struct seglog_scan_stats st;
        assert_int_equal(scan_into(copy, img.len, s, &st), 0);
        assert_int_equal(s->records, 2);
        assert_str_eq(s->last_host, "c/h3");
        assert_int_equal(st.corrupt, 1);
        assert_false(st.torn_tail);
        check_record_samples(s, 0);
        check_record_samples(s, NVALUES);
        free(copy);
    }
    /* a damaged header: the segment is refused whole */
    for (size_t at = 0; at < 24; at++) {
        char *copy = malloc(img.len);
        memcpy(copy, img.data, img.len);
        copy[at] ^= 0x01;
        struct seglog_scan_stats st;
        assert_int_equal(scan_into(copy, img.len, s, &st), SEGLOG_EFORMAT);
        assert_int_equal(s->records, 0);
        free(copy);
    }
    free(s);
    jbuf_free(&img);
}

/* A record whose checksum verifies but whose contents do not hold
 * together (a metric index beyond the table) is skipped like damage. */
static void test_bad_contents_with_valid_checksum(void **state)
{
    (void)state;
    struct jbuf img;
    jbuf_init(&img, 1024);
    header_image(&img);
    struct seglog_builder b;
    seglog_builder_init(&b);
    assert_int_equal(seglog_record_begin(&b, "c", 1, "h", 1), 0);
    assert_int_equal(seglog_record_sample(&b, 0, 9, 1700000000, 1.0f), 0);
    assert_int_equal(seglog_record_end(&b, &img), 0);
    seglog_builder_free(&b);
    build_record(&img, "h2");
    struct seen *s = calloc(1, sizeof(*s));
    struct seglog_scan_stats st;
    assert_int_equal(scan_into(img.data, img.len, s, &st), 0);
    assert_int_equal(s->records, 1);
    assert_int_equal(st.corrupt, 1);
    free(s);
    jbuf_free(&img);
}

static void test_garbage(void **state)
{
    (void)state;
    struct jbuf img;
    jbuf_init(&img, 1024);
    header_image(&img);
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 200; round++) {
        struct jbuf g;
        jbuf_init(&g, 4096);
        jbuf_append(&g, img.data, img.len);
        size_t n = 1 + (size_t)(round * 37 % 3000);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char c = (char)x;
            jbuf_append(&g, &c, 1);
        }
        struct seen *s = calloc(1, sizeof(*s));
        struct seglog_scan_stats st;
        assert_int_equal(scan_into(g.data, g.len, s, &st), 0);
        assert_int_equal(s->records, 0);
        free(s);
        jbuf_free(&g);
    }
    jbuf_free(&img);
}

static void test_file_append_replay(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct seglog_file *f;
    assert_int_equal(seglog_create(dir, 3, METRICS, 4, true, &f), 0);
    struct seglog_file *dup;
    assert_int_equal(seglog_create(dir, 3, METRICS, 4, false, &dup), SEGLOG_EIO);
    struct jbuf rec;
    jbuf_init(&rec, 1024);
    build_record(&rec, "h1");
    assert_int_equal(seglog_append(f, rec.data, rec.len), 0);
    assert_int_equal(seglog_sync(f), 0);
    assert_int_equal(seglog_sync(f), 0);
    uint64_t good = seglog_size(f);
    /* a torn write: half a record */
    assert_int_equal(seglog_append(f, rec.data, rec.len / 2), 0);
    char *path = strdup(seglog_path(f));
    seglog_close(f);
    struct seen *s = calloc(1, sizeof(*s));
    struct seglog_reader rd = READER_TEMPLATE;
    rd.ctx = s;
    struct seglog_scan_stats st;
    assert_int_equal(seglog_replay_file(path, true, &rd, &st), 0);
    assert_int_equal(s->records, 1);
    assert_true(st.torn_tail);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, good);
    /* a missing file */
    assert_int_equal(seglog_replay_file("/nonexistent/wal-00000000000000000001.log", false, &rd,
                                        &st), SEGLOG_EIO);
    free(s);
    free(path);
    jbuf_free(&rec);
    tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_realistic_size),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_damage_resync),
        cmocka_unit_test(test_bad_contents_with_valid_checksum),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_file_append_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
