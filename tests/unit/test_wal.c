/* Tests for persist/wal.c: the worked example of docs/file-formats.md
 * byte for byte, length limits, scanning the upstream-style fixture (torn
 * tail), resynchronisation after corruption at every kind of spot, every
 * truncation of a log, garbage, and the file helpers (open/append/size/
 * rotate/replay with truncation of a torn tail) on temporary directories.
 *
 * Fixtures: the repository's tests/fixtures
 * (see persist_testutil.h). */
#include "testutil.h"
#include "persist_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <zlib.h>

#include "persist/wal.h"
#include "util/jsonw.h"

#define WAL_FIXTURE "derived/checkpoints/testcluster/node002/current.wal"

struct got {
    int64_t ts;
    char metric[64];
    char sel[3][32];
    size_t sel_count;
    uint32_t bits;
};

struct collect {
    struct got recs[64];
    size_t n;
    size_t stop_after; /* 0 = never */
};

static int collect_fn(void *vctx, const struct wal_record *rec)
{
    struct collect *c = vctx;
    if (c->n < 64) {
        struct got *g = &c->recs[c->n];
        memset(g, 0, sizeof *g);
        g->ts = rec->ts;
        snprintf(g->metric, sizeof g->metric, "%.*s", (int)rec->metric_len, rec->metric);
        g->sel_count = rec->sel_count;
        for (size_t i = 0; i < rec->sel_count && i < 3; i++)
            snprintf(g->sel[i], sizeof g->sel[i], "%.*s", (int)rec->sel_lens[i], rec->sel[i]);
        memcpy(&g->bits, &rec->value, sizeof g->bits);
    }
    c->n++;
    return c->stop_after != 0 && c->n == c->stop_after ? 77 : 0;
}

static void expect_rec(const struct got *g, int64_t ts, const char *metric, const char *sel,
                       float value)
{
    assert_int_equal(g->ts, ts);
    assert_str_eq(g->metric, metric);
    if (sel == NULL) {
        assert_int_equal(g->sel_count, 0);
    } else {
        assert_int_equal(g->sel_count, 1);
        assert_str_eq(g->sel[0], sel);
    }
    assert_int_equal(g->bits, pt_bits(value));
}

/* Appends one encoded record to b; returns its size. */
static size_t put_record(struct jbuf *b, int64_t ts, const char *metric, const char *sel,
                         float value)
{
    const char *sels[1] = {sel};
    size_t lens[1] = {sel ? strlen(sel) : 0};
    size_t nsel = sel ? 1 : 0;
    size_t size = wal_record_size(strlen(metric), lens, nsel);
    uint8_t *tmp = malloc(size);
    int n = wal_record_encode(tmp, ts, metric, strlen(metric), sels, lens, nsel, value);
    assert_int_equal(n, (int)size);
    jbuf_append(b, tmp, size);
    free(tmp);
    return size;
}

static void put_file_magic(struct jbuf *b)
{
    jbuf_append(b, "\x01\xa7\x1d\xcc", 4);
}

/* The three records of the fixture, as a complete log; offsets in off[]. */
static void build_log3(struct jbuf *b, size_t off[4])
{
    jbuf_reset(b);
    put_file_magic(b);
    off[0] = b->len;
    put_record(b, 1700000210, "cpu_load", NULL, 4.0f);
    off[1] = b->len;
    put_record(b, 1700000210, "mem_bw", "socket0", 250.0f);
    off[2] = b->len;
    put_record(b, 1700000270, "cpu_user", "hwthread1", 6.5f);
    off[3] = b->len;
}

/* Scans an exact-size copy (so ASan sees overreads). */
static int scan_copy(const void *data, size_t len, struct collect *c, struct wal_scan_stats *st)
{
    uint8_t *copy = calloc(1, len ? len : 1);
    memcpy(copy, data, len);
    memset(c, 0, sizeof *c);
    int rc = wal_scan(copy, len, collect_fn, c, st);
    free(copy);
    return rc;
}

static void test_worked_example(void **state)
{
    (void)state;
    static const uint8_t expect[45] = {
        0xa1, 0xa7, 0x1d, 0xcc, 0x21, 0x00, 0x00, 0x00, 0x88, 0x09, 0xde, 0x66, 0x00, 0x00, 0x00,
        0x00, 0x08, 0x00, 0x63, 0x70, 0x75, 0x5f, 0x6c, 0x6f, 0x61, 0x64, 0x01, 0x09, 0x68, 0x77,
        0x74, 0x68, 0x72, 0x65, 0x61, 0x64, 0x30, 0x00, 0x00, 0x0c, 0x42, 0x33, 0x7d, 0x4a, 0x69};
    const char *sel[1] = {"hwthread0"};
    size_t lens[1] = {9};
    assert_int_equal(wal_record_size(8, lens, 1), 45);
    uint8_t out[64];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(wal_record_encode(out, 1725827464, "cpu_load", 8, sel, lens, 1, 35.0f), 45);
    assert_memory_equal(out, expect, 45);
    assert_int_equal(out[45], 0xEE);

    /* and it scans back */
    uint8_t file[49];
    memcpy(file, "\x01\xa7\x1d\xcc", 4);
    memcpy(file + 4, expect, 45);
    struct collect c;
    struct wal_scan_stats st;
    assert_int_equal(scan_copy(file, sizeof file, &c, &st), 0);
    assert_int_equal(st.records, 1);
    assert_int_equal(c.n, 1);
    expect_rec(&c.recs[0], 1725827464, "cpu_load", "hwthread0", 35.0f);
    assert_int_equal(st.valid_end, 49);
    assert_false(st.torn_tail);
    assert_int_equal(st.corrupt, 0);
}

static void test_encode_limits(void **state)
{
    (void)state;
    size_t big = 70000;
    char *name = malloc(big);
    memset(name, 'm', big);
    size_t max_size = wal_record_size(65535, NULL, 0);
    uint8_t *out = malloc(max_size);
    assert_int_equal(wal_record_encode(out, 1, name, 65536, NULL, NULL, 0, 1.0f), WAL_ETOO_LONG);
    assert_int_equal(wal_record_encode(out, 1, name, 65535, NULL, NULL, 0, 1.0f), (int)max_size);

    const char *sel[256];
    size_t lens[256];
    for (int i = 0; i < 256; i++) {
        sel[i] = name;
        lens[i] = 1;
    }
    uint8_t small[1024];
    lens[3] = 256;
    assert_int_equal(wal_record_encode(small, 1, "m", 1, sel, lens, 4, 1.0f), WAL_ETOO_LONG);
    lens[3] = 1;
    assert_int_equal(wal_record_encode(small, 1, "m", 1, sel, lens, 256, 1.0f), WAL_ETOO_LONG);
    int n = wal_record_encode(small, -1, "m", 1, sel, lens, 255, NAN);
    assert_int_equal(n, (int)wal_record_size(1, lens, 255));

    /* the largest selector and a negative timestamp scan back */
    uint8_t file[1100];
    memcpy(file, "\x01\xa7\x1d\xcc", 4);
    memcpy(file + 4, small, (size_t)n);
    struct collect c;
    struct wal_scan_stats st;
    assert_int_equal(scan_copy(file, 4 + (size_t)n, &c, &st), 0);
    assert_int_equal(st.records, 1);
    assert_int_equal(c.recs[0].ts, -1);
    assert_int_equal(c.recs[0].sel_count, 255);
    assert_int_equal(c.recs[0].bits, pt_bits(NAN));
    free(out);
    free(name);
}

static void test_scan_fixture(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wal = pt_fixture(WAL_FIXTURE, &len);
    assert_int_equal(len, 135);
    struct collect c;
    struct wal_scan_stats st;
    assert_int_equal(scan_copy(wal, len, &c, &st), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(st.records, 3);
    expect_rec(&c.recs[0], 1700000210, "cpu_load", NULL, 4.0f);
    expect_rec(&c.recs[1], 1700000210, "mem_bw", "socket0", 250.0f);
    expect_rec(&c.recs[2], 1700000270, "cpu_user", "hwthread1", 6.5f);
    assert_true(st.torn_tail);
    assert_int_equal(st.valid_end, 125);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.skipped_bytes, 0);

    /* our encoder produces the fixture's bytes */
    struct jbuf b;
    size_t off[4];
    jbuf_init(&b, 0);
    build_log3(&b, off);
    assert_int_equal(off[3], 125);
    assert_memory_equal(b.data, wal, 125);
    jbuf_free(&b);
    free(wal);
}

static void test_empty_and_bad_header(void **state)
{
    (void)state;
    struct collect c;
    struct wal_scan_stats st;
    memset(&st, 0xFF, sizeof st);
    assert_int_equal(scan_copy("", 0, &c, &st), 0);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.valid_end, 0);
    assert_false(st.torn_tail);

    assert_int_equal(scan_copy("\x01\xa7\x1d\xcc", 4, &c, &st), 0);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.valid_end, 4);
    assert_false(st.torn_tail);

    for (size_t n = 1; n < 4; n++)
        assert_int_equal(scan_copy("\x01\xa7\x1d", n, &c, &st), WAL_EFORMAT);

    /* a damaged (here: missing) file header is damage like any other: the
     * records after it are found by resynchronising */
    struct jbuf b;
    jbuf_init(&b, 0);
    put_record(&b, 1, "m", NULL, 1.0f);
    put_record(&b, 2, "m", NULL, 2.0f);
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.records, 2);
    assert_true(st.bad_header);
    assert_int_equal(st.valid_end, b.len);
    /* one flipped bit in the header: every record is still there */
    jbuf_free(&b);
    jbuf_init(&b, 0);
    jbuf_append(&b, "\x01\xa7\x1d\xcd", 4);
    put_record(&b, 1, "m", NULL, 1.0f);
    c.n = 0;
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 1);
    assert_true(st.bad_header);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, 4);
    jbuf_free(&b);
    /* garbage without any valid record is not a WAL */
    c.n = 0;
    static const char garbage[] = "GIF89a\xa1\xa7\x1d\xcc junk";
    assert_int_equal(scan_copy(garbage, sizeof garbage - 1, &c, &st), WAL_EFORMAT);
    assert_int_equal(c.n, 0);
    assert_int_equal(st.records, 0);

    /* no stats wanted, no callback */
    assert_int_equal(wal_scan("\x01\xa7\x1d\xcc", 4, NULL, NULL, NULL), 0);
}

static void test_every_truncation(void **state)
{
    (void)state;
    struct jbuf b;
    size_t off[4];
    jbuf_init(&b, 0);
    build_log3(&b, off);
    for (size_t n = 4; n <= off[3]; n++) {
        struct collect c;
        struct wal_scan_stats st;
        assert_int_equal(scan_copy(b.data, n, &c, &st), 0);
        size_t complete = 0;
        while (complete < 3 && off[complete + 1] <= n)
            complete++;
        assert_int_equal(st.records, complete);
        assert_int_equal(c.n, complete);
        assert_int_equal(st.valid_end, off[complete]);
        assert_int_equal(st.torn_tail, n != off[complete]);
        assert_int_equal(st.corrupt, 0);
        assert_int_equal(st.skipped_bytes, 0);
    }
    jbuf_free(&b);
}

/* Corrupting one byte of the middle record, at every offset inside it,
 * loses exactly that record. */
static void test_resync_middle_record(void **state)
{
    (void)state;
    struct jbuf b;
    size_t off[4];
    jbuf_init(&b, 0);
    build_log3(&b, off);
    for (size_t at = off[1]; at < off[2]; at++) {
        for (int flip = 0; flip < 3; flip++) {
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            copy[at] ^= (uint8_t[]){0x01, 0x80, 0xFF}[flip];
            struct collect c;
            struct wal_scan_stats st;
            assert_int_equal(scan_copy(copy, b.len, &c, &st), 0);
            if (c.n != 2)
                fail_msg("byte %zu flip %d: %zu records", at, flip, c.n);
            expect_rec(&c.recs[0], 1700000210, "cpu_load", NULL, 4.0f);
            expect_rec(&c.recs[1], 1700000270, "cpu_user", "hwthread1", 6.5f);
            assert_int_equal(st.records, 2);
            assert_int_equal(st.corrupt, 1);
            assert_int_equal(st.skipped_bytes, off[2] - off[1]);
            assert_false(st.torn_tail);
            assert_int_equal(st.valid_end, b.len);
            free(copy);
        }
    }
    jbuf_free(&b);
}

static void test_resync_cases(void **state)
{
    (void)state;
    struct jbuf b;
    size_t off[4];
    struct collect c;
    struct wal_scan_stats st;
    jbuf_init(&b, 0);

    /* garbage inserted between records 1 and 2 (contains a fake magic) */
    jbuf_reset(&b);
    put_file_magic(&b);
    put_record(&b, 1, "a", NULL, 1.0f);
    jbuf_append(&b, "xx\xa1\xa7\x1d\xcc\x10\x00\x00\x00yy", 12);
    put_record(&b, 2, "b", "s", 2.0f);
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, 12);
    assert_false(st.torn_tail);

    /* a payload_len that claims more than the file holds (but is sane) */
    build_log3(&b, off);
    b.data[off[0] + 5] = 0x01; /* payload_len += 256 */
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    expect_rec(&c.recs[0], 1700000210, "mem_bw", "socket0", 250.0f);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, off[1] - off[0]);
    assert_false(st.torn_tail);

    /* a payload_len beyond the 1 MiB limit */
    build_log3(&b, off);
    b.data[off[1] + 6] = 0x20;
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.corrupt, 1);

    /* a CRC-valid record whose inner lengths point past its payload */
    build_log3(&b, off);
    {
        uint8_t *rec = (uint8_t *)b.data + off[2];
        size_t plen = off[3] - off[2] - 12;
        rec[8 + 8] = 0xF0; /* name_len 240 > payload */
        uint32_t crc = (uint32_t)crc32(0L, rec + 8, (uInt)plen);
        for (int i = 0; i < 4; i++)
            rec[8 + plen + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, off[3] - off[2]);
    assert_int_equal(st.valid_end, off[2]);
    assert_false(st.torn_tail);

    /* garbage at the end: a corrupt tail, not a torn one */
    build_log3(&b, off);
    jbuf_append(&b, "garbage!", 8);
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, 8);
    assert_false(st.torn_tail);
    assert_int_equal(st.valid_end, off[3]);

    /* corruption, then a torn record at the end */
    build_log3(&b, off);
    b.data[off[2] + 20] ^= 0x55;
    put_record(&b, 5, "x", NULL, 5.0f);
    b.len -= 3;
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, off[3] - off[2]);
    assert_true(st.torn_tail);
    assert_int_equal(st.valid_end, off[2]);

    /* a torn record in the middle (crash, restart, appends after it) */
    build_log3(&b, off);
    b.len = off[2] + 7;
    size_t resume = b.len;
    put_record(&b, 9, "after", NULL, 9.0f);
    assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
    assert_int_equal(c.n, 3);
    expect_rec(&c.recs[2], 9, "after", NULL, 9.0f);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.skipped_bytes, resume - off[2]);
    assert_false(st.torn_tail);
    assert_int_equal(st.valid_end, b.len);

    /* 1–3 bytes of a record magic at the end are a torn tail */
    for (size_t k = 1; k < 4; k++) {
        build_log3(&b, off);
        jbuf_append(&b, "\xa1\xa7\x1d", k);
        assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
        assert_int_equal(c.n, 3);
        assert_true(st.torn_tail);
        assert_int_equal(st.corrupt, 0);
        assert_int_equal(st.valid_end, off[3]);
    }

    /* the callback stops the scan */
    build_log3(&b, off);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(wal_scan(b.data, b.len, collect_fn, &c, &st), 77);
    assert_int_equal(c.n, 2);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.valid_end, off[2]);
    jbuf_free(&b);
}

/* Random bytes and random damage: never a crash, consistent statistics. */
static void test_garbage(void **state)
{
    (void)state;
    uint64_t seed = 0x9a7ba9e;
    struct jbuf b;
    size_t off[4];
    jbuf_init(&b, 0);
    for (int iter = 0; iter < 20000; iter++) {
        build_log3(&b, off);
        if (iter % 2 == 0) {
            size_t n = pt_rand(&seed) % 300;
            b.len = 4;
            for (size_t i = 0; i < n; i++) {
                uint64_t r = pt_rand(&seed);
                /* bias towards magic bytes so that candidates appear */
                jbuf_putc(&b, (char)(r % 4 == 0 ? "\xa1\xa7\x1d\xcc"[r / 4 % 4] : (int)(r >> 8)));
            }
        } else {
            int flips = 1 + (int)(pt_rand(&seed) % 6);
            for (int k = 0; k < flips; k++)
                b.data[4 + pt_rand(&seed) % (b.len - 4)] ^= (char)(1 + pt_rand(&seed) % 255);
            b.len -= pt_rand(&seed) % 3 == 0 ? pt_rand(&seed) % (b.len - 4) : 0;
        }
        struct collect c;
        struct wal_scan_stats st;
        assert_int_equal(scan_copy(b.data, b.len, &c, &st), 0);
        assert_int_equal(st.records, c.n);
        assert_true(st.valid_end >= 4 && st.valid_end <= b.len);
        assert_true(st.skipped_bytes <= b.len - 4);
        assert_true(st.corrupt <= st.skipped_bytes);
        if (st.valid_end == b.len)
            assert_false(st.torn_tail);
    }
    jbuf_free(&b);
}

/* ---- files ----------------------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

static off_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

static void append_record(struct wal_file *w, int64_t ts, const char *metric, const char *sel,
                          float v)
{
    struct jbuf b;
    jbuf_init(&b, 0);
    put_record(&b, ts, metric, sel, v);
    assert_int_equal(wal_append(w, b.data, b.len), 0);
    jbuf_free(&b);
}

static void test_open_append_replay(void **state)
{
    (void)state;
    char *tmp = pt_tmpdir();
    char *dir = path_join(tmp, "root/cluster/host");
    char *file = path_join(dir, "current.wal");

    struct wal_file *w;
    assert_int_equal(wal_open(dir, false, &w), 0);
    assert_non_null(w);
    int dupfd = wal_dup_fd(w);
    assert_true(dupfd >= 0);
    close(dupfd);
    assert_int_equal(wal_size(w), 4);
    assert_int_equal(file_size(file), 4);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    append_record(w, 1700000210, "cpu_load", NULL, 4.0f);
    append_record(w, 1700000210, "mem_bw", "socket0", 250.0f);
    assert_int_equal(wal_sync(w), 0);
    assert_int_equal(wal_size(w), 80);
    wal_close(w);

    /* reopening keeps the content and writes no second header */
    assert_int_equal(wal_open(dir, false, &w), 0);
    assert_int_equal(wal_size(w), 80);
    append_record(w, 1700000270, "cpu_user", "hwthread1", 6.5f);
    assert_int_equal(wal_size(w), 125);
    wal_close(w);

    size_t len;
    uint8_t *fixture = pt_fixture(WAL_FIXTURE, &len);
    int fd = open(file, O_RDONLY);
    uint8_t got[200];
    assert_int_equal(read(fd, got, sizeof got), 125);
    close(fd);
    assert_memory_equal(got, fixture, 125);

    struct collect c;
    struct wal_scan_stats sst;
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(file, true, collect_fn, &c, &sst), 0);
    assert_int_equal(c.n, 3);
    assert_false(sst.torn_tail);
    assert_int_equal(sst.valid_end, 125);
    assert_int_equal(file_size(file), 125);

    free(fixture);
    free(file);
    free(dir);
    pt_rm_rf(tmp);
}

static void test_torn_tail_truncated_then_appended(void **state)
{
    (void)state;
    char *tmp = pt_tmpdir();
    char *file = path_join(tmp, "current.wal");

    /* the fixture as left by a crash: three records and a torn fourth */
    size_t len;
    uint8_t *fixture = pt_fixture(WAL_FIXTURE, &len);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, fixture, len), (ssize_t)len);
    close(fd);

    /* replay without truncation leaves the file alone */
    struct collect c;
    struct wal_scan_stats st;
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(file, false, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 3);
    assert_true(st.torn_tail);
    assert_int_equal(file_size(file), 135);

    /* with truncation the torn record goes */
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(file, true, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 3);
    assert_true(st.torn_tail);
    assert_int_equal(st.valid_end, 125);
    assert_int_equal(file_size(file), 125);

    /* new records follow valid data, and everything reads back */
    struct wal_file *w;
    assert_int_equal(wal_open(tmp, false, &w), 0);
    assert_int_equal(wal_size(w), 125);
    append_record(w, 1700000330, "cpu_load", NULL, 7.25f);
    append_record(w, 1700000330, "mem_bw", "socket1", -1.0f);
    wal_close(w);
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(file, true, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 5);
    expect_rec(&c.recs[0], 1700000210, "cpu_load", NULL, 4.0f);
    expect_rec(&c.recs[1], 1700000210, "mem_bw", "socket0", 250.0f);
    expect_rec(&c.recs[2], 1700000270, "cpu_user", "hwthread1", 6.5f);
    expect_rec(&c.recs[3], 1700000330, "cpu_load", NULL, 7.25f);
    expect_rec(&c.recs[4], 1700000330, "mem_bw", "socket1", -1.0f);
    assert_false(st.torn_tail);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.valid_end, (uint64_t)file_size(file));

    /* corruption in the middle is skipped but never truncated away */
    fd = open(file, O_RDWR);
    assert_int_equal(pwrite(fd, "\xff", 1, 60), 1);
    close(fd);
    off_t before = file_size(file);
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(file, true, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(file_size(file), before);

    /* a callback that stops the replay prevents truncation */
    fd = open(file, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\xa1\xa7", 2), 2);
    close(fd);
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    assert_int_equal(wal_replay_file(file, true, collect_fn, &c, &st), 77);
    assert_int_equal(file_size(file), before + 2);

    free(fixture);
    free(file);
    pt_rm_rf(tmp);
}

static void test_replay_errors(void **state)
{
    (void)state;
    char *tmp = pt_tmpdir();
    char *file = path_join(tmp, "current.wal");
    struct wal_scan_stats st;

    errno = 0;
    assert_int_equal(wal_replay_file(file, true, NULL, NULL, &st), WAL_EIO);
    assert_int_equal(errno, ENOENT);

    /* empty: fine, nothing to do */
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(fd);
    assert_int_equal(wal_replay_file(file, true, NULL, NULL, &st), 0);
    assert_int_equal(st.records, 0);
    assert_int_equal(file_size(file), 0);

    /* shorter than the header, or the wrong magic: not ours, left alone */
    fd = open(file, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "\x01\xa7", 2), 2);
    close(fd);
    assert_int_equal(wal_replay_file(file, true, NULL, NULL, &st), WAL_EFORMAT);
    assert_int_equal(file_size(file), 2);
    fd = open(file, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"metrics\":{}}\n", 15), 15);
    close(fd);
    assert_int_equal(wal_replay_file(file, true, NULL, NULL, &st), WAL_EFORMAT);
    assert_int_equal(file_size(file), 15);

    /* wal_open fails cleanly where the directory cannot be made */
    char *blocker = path_join(tmp, "plainfile");
    fd = open(blocker, O_WRONLY | O_CREAT, 0644);
    close(fd);
    char *below = path_join(blocker, "host");
    struct wal_file *w = (struct wal_file *)1;
    errno = 0;
    assert_int_equal(wal_open(below, false, &w), WAL_EIO);
    assert_null(w);
    assert_int_equal(errno, ENOTDIR);

    free(below);
    free(blocker);
    free(file);
    pt_rm_rf(tmp);
}

static void test_rotate(void **state)
{
    (void)state;
    char *tmp = pt_tmpdir();
    char *file = path_join(tmp, "current.wal");
    struct wal_file *w;
    assert_int_equal(wal_open(tmp, false, &w), 0);
    append_record(w, 1, "a", NULL, 1.0f);
    append_record(w, 2, "b", NULL, 2.0f);
    char *rotated = NULL;
    assert_int_equal(wal_rotate(w, 1700000000, &rotated), 0);
    char *expect = path_join(tmp, "current.wal.1700000000");
    assert_str_eq(rotated, expect);
    assert_int_equal(file_size(file), -1);

    struct collect c;
    struct wal_scan_stats st;
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(rotated, false, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 2);

    /* the next open starts a fresh log */
    assert_int_equal(wal_open(tmp, false, &w), 0);
    assert_int_equal(wal_size(w), 4);
    append_record(w, 3, "c", NULL, 3.0f);
    /* a NULL rotated_path is allowed */
    assert_int_equal(wal_rotate(w, -7, NULL), 0);
    char *second = path_join(tmp, "current.wal.-7");
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_replay_file(second, false, collect_fn, &c, &st), 0);
    assert_int_equal(c.n, 1);
    expect_rec(&c.recs[0], 3, "c", NULL, 3.0f);

    free(second);
    free(expect);
    free(rotated);
    free(file);
    pt_rm_rf(tmp);
}

/* The descriptor pool: 40 logs with room for 4 open descriptors. Appends
 * in a scattered order reopen closed logs and land in the right file; a
 * duplicated descriptor survives its log's eviction; at most 4 are open. */
static void test_descriptor_pool(void **state)
{
    (void)state;
    enum { LOGS = 40, ROUNDS = 5 };
    char *tmp = pt_tmpdir();
    struct wal_file *w[LOGS];
    char *dirs[LOGS];
    wal_set_open_limit(4);
    for (int i = 0; i < LOGS; i++) {
        char name[32];
        snprintf(name, sizeof name, "c/h%d", i);
        dirs[i] = path_join(tmp, name);
        assert_int_equal(wal_open(dirs[i], false, &w[i]), 0);
        assert_true(wal_open_count() <= 4);
    }
    int kept = wal_dup_fd(w[0]);
    assert_true(kept >= 0);
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < LOGS; k++) {
            int i = (k * 7 + r * 3) % LOGS;     /* 7 is prime to 40: every log once */
            append_record(w[i], 1000 + r, "m", NULL, (float)(i * 100 + r));
            assert_true(wal_open_count() <= 4);
        }
    assert_int_equal(fsync(kept), 0);       /* still the file of log 0 */
    close(kept);
    for (int i = 0; i < LOGS; i++)
        assert_int_equal(wal_sync(w[i]), 0);
    for (int i = 0; i < LOGS; i++)
        wal_close(w[i]);
    assert_int_equal(wal_open_count(), 0);
    wal_set_open_limit(0);

    for (int i = 0; i < LOGS; i++) {
        char *file = path_join(dirs[i], "current.wal");
        struct collect c;
        memset(&c, 0, sizeof c);
        struct wal_scan_stats st;
        assert_int_equal(wal_replay_file(file, false, collect_fn, &c, &st), 0);
        assert_int_equal(c.n, ROUNDS);
        assert_int_equal(st.corrupt, 0);
        for (int r = 0; r < ROUNDS; r++)
            expect_rec(&c.recs[r], 1000 + r, "m", NULL, (float)(i * 100 + r));
        free(file);
        free(dirs[i]);
    }
    pt_rm_rf(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_scan_fixture),
        cmocka_unit_test(test_empty_and_bad_header),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_resync_middle_record),
        cmocka_unit_test(test_resync_cases),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_open_append_replay),
        cmocka_unit_test(test_torn_tail_truncated_then_appended),
        cmocka_unit_test(test_replay_errors),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_descriptor_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
