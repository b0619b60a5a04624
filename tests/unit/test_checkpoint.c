/* Tests for persist/checkpoint.c: snapshot + restore round trips in both
 * formats, WAL replay after a "crash", back-dated samples, the Go fixture
 * tree, and restores that survive stray and broken files.
 *
 * Fixtures are read from the repository's tests/fixtures. */
#include "testutil.h"

#include <time.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_testutil.h"
#include "util/fsutil.h"

static void test_wal_replay_after_crash(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    for (int k = 0; k < 10; k++)
        ingest(s, cp, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k, (float)k + 0.25f);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 123.5f);
    /* "crash": no snapshot, just drop everything in memory */
    close_store(s, cp);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n1", fx->dir);
    assert_int_equal(count_files(host_dir, "current.wal"), 1);

    s = open_store(fx, &cp, true);
    for (int k = 0; k < 10; k++)
        assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k) == k + 0.25);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 123.5);
    /* the replayed data goes into the next snapshot, then the WAL is gone */
    struct checkpoint_stats st;
    assert_int_equal(checkpointer_run(cp, 1800000000, &st), 0);
    assert_int_equal(st.hosts_written, 1);
    assert_int_equal(count_files(host_dir, ".bin"), 1);
    assert_int_equal(count_files(host_dir, "current.wal"), 0);
    close_store(s, cp);

    s = open_store(fx, &cp, true);
    for (int k = 0; k < 10; k++)
        assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k) == k + 0.25);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 123.5);
    close_store(s, cp);
}

static void test_snapshot_round_trip_and_increments(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    for (int k = 0; k < 600; k++)
        ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k, (float)k / 7.0f);
    assert_int_equal(checkpointer_run(cp, 1700040000, NULL), 0);
    /* a later increment and a back-dated sample into the older range */
    for (int k = 600; k < 700; k++)
        ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k, (float)k / 7.0f);
    ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * 5, 555.0f);
    struct checkpoint_stats st;
    assert_int_equal(checkpointer_run(cp, 1700050000, &st), 0);
    assert_int_equal(st.hosts_written, 1);
    /* nothing new: nothing written */
    assert_int_equal(checkpointer_run(cp, 1700060000, &st), 0);
    assert_int_equal(st.hosts_written, 0);
    close_store(s, cp);

    s = open_store(fx, &cp, true);
    for (int k = 0; k < 700; k++) {
        double expect = k == 5 ? 555.0 : (double)((float)k / 7.0f);
        assert_true(value_at(s, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k) == expect);
    }
    close_store(s, cp);
}

/* Hosts are restored on several threads: 40 hosts, each with a snapshot
 * and a WAL written after it, come back whole, and the counts of every
 * thread are added up. */
static void test_many_hosts_restored_in_parallel(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    enum { HOSTS = 40, STEPS = 30 };
    char host[16];
    for (int h = 0; h < HOSTS; h++) {
        snprintf(host, sizeof host, "n%02d", h);
        for (int k = 0; k < STEPS; k++)
            ingest(s, cp, host, "socket0", MEM_BW, 1700000000 + 60 * k, (float)(h * 100 + k));
    }
    assert_int_equal(checkpointer_run(cp, 1700040000, NULL), 0);
    for (int h = 0; h < HOSTS; h++) {
        snprintf(host, sizeof host, "n%02d", h);
        ingest(s, cp, host, NULL, CPU_LOAD, 1700000000 + 60 * STEPS, (float)h + 0.5f);
    }
    close_store(s, cp);

    assert_int_equal(store_create(METRICS, 4, &s), 0);
    assert_int_equal(checkpointer_create(s, &fx->cfg, &cp), 0);
    struct restore_stats rs;
    assert_int_equal(checkpointer_restore(cp, 1800000000, NULL, NULL, &rs), 0);
    assert_int_equal(rs.files_loaded, HOSTS);
    assert_int_equal(rs.files_failed, 0);
    assert_int_equal(rs.samples, HOSTS * STEPS);
    assert_int_equal(rs.wal_records, HOSTS);
    for (int h = 0; h < HOSTS; h++) {
        snprintf(host, sizeof host, "n%02d", h);
        for (int k = 0; k < STEPS; k++)
            assert_true(value_at(s, host, "socket0", MEM_BW, 1700000000 + 60 * k) ==
                        (double)(float)(h * 100 + k));
        assert_true(value_at(s, host, NULL, CPU_LOAD, 1700000000 + 60 * STEPS) ==
                    (double)((float)h + 0.5f));
    }
    close_store(s, cp);
}

static void test_json_format_round_trip(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.file_format = "json";
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n2", NULL, MEM_USED, 1700000000, 45.25f);
    ingest(s, cp, "n2", NULL, MEM_USED, 1700000120, 0.1f);
    assert_int_equal(checkpointer_run(cp, 1700001000, NULL), 0);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n2", fx->dir);
    assert_int_equal(count_files(host_dir, ".json"), 1);
    assert_int_equal(count_files(host_dir, "current.wal"), 0);
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "n2", NULL, MEM_USED, 1700000000) == 45.25);
    assert_true(value_at(s, "n2", NULL, MEM_USED, 1700000120) == (double)0.1f);
    assert_nan(value_at(s, "n2", NULL, MEM_USED, 1700000060));
    close_store(s, cp);
}

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(from, &data, &len), 0);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

static const char *testdata(void)
{
    return CCMS_FIXTURE_DIR;
}

static void test_go_fixture_tree_loads(void **state)
{
    struct fixture *fx = *state;
    char src[512], dst[512];
    snprintf(dst, sizeof dst, "%s/testcluster/node001", fx->dir);
    assert_int_equal(fs_mkdir_p(dst), 0);
    snprintf(dst, sizeof dst, "%s/testcluster/node002", fx->dir);
    assert_int_equal(fs_mkdir_p(dst), 0);
    const char *files[] = {"node001/1700000000.json", "node002/1700000000.bin",
                           "node002/current.wal"};
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/derived/checkpoints/testcluster/%s", testdata(), files[i]);
        snprintf(dst, sizeof dst, "%s/testcluster/%s", fx->dir, files[i]);
        copy_file(src, dst);
    }
    struct store *s;
    struct checkpointer *cp;
    assert_int_equal(store_create(METRICS, 4, &s), 0);
    assert_int_equal(checkpointer_create(s, &fx->cfg, &cp), 0);
    struct restore_stats rs;
    assert_int_equal(checkpointer_restore(cp, 1800000000, NULL, NULL, &rs), 0);
    assert_int_equal(rs.files_loaded, 2);
    assert_int_equal(rs.files_failed, 0);
    assert_int_equal(rs.wal_records, 3);
    assert_int_equal(rs.wal_torn, 1);

    const char *tc[] = {"testcluster"};
    size_t tcl[] = {11};
    struct {
        const char *host, *sub;
        int metric;
        int64_t t;
        double v;
    } expect[] = {
        {"node001", NULL, CPU_LOAD, 1700000030, 0.5f},
        {"node001", NULL, CPU_LOAD, 1700000150, 0.9f},
        {"node001", NULL, MEM_USED, 1700000030, 45.2f},
        {"node001", NULL, MEM_USED, 1700000090, NAN},
        {"node001", "hwthread0", CPU_USER, 1700000150, 13.5f},
        {"node002", NULL, CPU_LOAD, 1700000090, 2.0},
        {"node002", NULL, CPU_LOAD, 1700000210, 4.0},     /* from the WAL */
        {"node002", "socket0", MEM_BW, 1700000030, 100.0},
        {"node002", "socket0", MEM_BW, 1700000090, NAN},
        {"node002", "socket0", MEM_BW, 1700000210, 250.0}, /* WAL */
        {"node002", "hwthread1", CPU_USER, 1700000270, 6.5}, /* WAL */
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        const char *n1[] = {expect[i].host}, *n2[] = {expect[i].sub};
        size_t l1[] = {7}, l2[] = {expect[i].sub ? strlen(expect[i].sub) : 0};
        struct store_selector sel = {.elems = {{tc, tcl, 1}, {n1, l1, 1}, {n2, l2, 1}},
                                     .depth = expect[i].sub ? 3 : 2};
        struct store_series r;
        assert_int_equal(store_read(s, &sel, expect[i].metric, expect[i].t, expect[i].t + 1, 0, RESAMPLE_LTTB,
                                    10, &r), 0);
        assert_int_equal(r.len, 1);
        if (isnan(expect[i].v))
            assert_nan(r.data[0]);
        else
            assert_true(r.data[0] == expect[i].v);
        store_series_free(&r);
    }
    /* the torn tail was cut off: the WAL now ends after record 3 */
    snprintf(dst, sizeof dst, "%s/testcluster/node002/current.wal", fx->dir);
    struct stat st;
    assert_int_equal(stat(dst, &st), 0);
    assert_int_equal(st.st_size, 125);
    close_store(s, cp);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_bad_and_stray_files_do_not_stop_restore(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "good", NULL, CPU_LOAD, 1700000000, 1.0f);
    assert_int_equal(checkpointer_run(cp, 1700001000, NULL), 0);
    close_store(s, cp);

    char path[256];
    snprintf(path, sizeof path, "%s/stray.txt", fx->dir);
    write_text(path, "not a cluster");
    snprintf(path, sizeof path, "%s/c/stray-host-file", fx->dir);
    write_text(path, "not a host");
    snprintf(path, sizeof path, "%s/c/good/1600000000.bin", fx->dir);
    write_text(path, "garbage that is not a snapshot");
    snprintf(path, sizeof path, "%s/c/good/abc.json", fx->dir);
    write_text(path, "{}");
    snprintf(path, sizeof path, "%s/c/good/1600000001.json", fx->dir);
    write_text(path, "{\"metrics\":{\"cpu_load\":{\"frequency\":60,\"start\":16");
    snprintf(path, sizeof path, "%s/c/good/1600000002.bin.tmp", fx->dir);
    write_text(path, "half-written");
    snprintf(path, sizeof path, "%s/c/bad", fx->dir);
    assert_int_equal(fs_mkdir_p(path), 0);
    snprintf(path, sizeof path, "%s/c/bad/current.wal", fx->dir);
    write_text(path, "XXXXnot a wal");

    struct restore_stats rs;
    assert_int_equal(store_create(METRICS, 4, &s), 0);
    assert_int_equal(checkpointer_create(s, &fx->cfg, &cp), 0);
    assert_int_equal(checkpointer_restore(cp, 1800000000, NULL, NULL, &rs), 0);
    assert_int_equal(rs.files_loaded, 1);
    assert_int_equal(rs.files_failed, 2);
    assert_true(rs.entries_ignored >= 3);
    assert_true(value_at(s, "good", NULL, CPU_LOAD, 1700000000) == 1.0);
    snprintf(path, sizeof path, "%s/c/good/1600000002.bin.tmp", fx->dir);
    assert_int_equal(access(path, F_OK), -1);
    close_store(s, cp);
}

static void test_fsync_always_and_retention_cutoff(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.fsync = CCMS_FSYNC_ALWAYS;
    fx->cfg.retention_seconds = 3600;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, false);
    ingest(s, cp, "n3", NULL, CPU_LOAD, 1799999000, 3.0f);   /* within 1 h of restore time */
    ingest(s, cp, "n3", NULL, MEM_USED, 1700000000, 4.0f);   /* far older than retention */
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "n3", NULL, CPU_LOAD, 1799999000) == 3.0);
    assert_nan(value_at(s, "n3", NULL, MEM_USED, 1700000000));
    close_store(s, cp);
}

static void test_backfill_merges_files_in_go_order(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n4", NULL, CPU_LOAD, 1700000100, 1.0f);
    assert_int_equal(checkpointer_run(cp, 1700001000, NULL), 0);
    ingest(s, cp, "n4", NULL, CPU_LOAD, 1700009000, 2.0f); /* a plain later delta */
    assert_int_equal(checkpointer_run(cp, 1700010000, NULL), 0);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n4", fx->dir);
    assert_int_equal(count_files(host_dir, ".bin"), 2);
    /* back-filled into the range both files cover: one merged file, so that
     * in name order no series starts before the one loaded before it */
    ingest(s, cp, "n4", NULL, CPU_LOAD, 1700000220, 3.0f);
    assert_int_equal(checkpointer_run(cp, 1700011000, NULL), 0);
    assert_int_equal(count_files(host_dir, ".bin"), 1);
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "n4", NULL, CPU_LOAD, 1700000100) == 1.0);
    assert_true(value_at(s, "n4", NULL, CPU_LOAD, 1700000220) == 3.0);
    assert_true(value_at(s, "n4", NULL, CPU_LOAD, 1700009000) == 2.0);
    close_store(s, cp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wal_replay_after_crash, setup_go, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip_and_increments, setup_go,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_hosts_restored_in_parallel, setup_go, teardown),
        cmocka_unit_test_setup_teardown(test_json_format_round_trip, setup_go, teardown),
        cmocka_unit_test_setup_teardown(test_go_fixture_tree_loads, setup_go, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_stray_files_do_not_stop_restore, setup_go,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fsync_always_and_retention_cutoff, setup_go,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backfill_merges_files_in_go_order, setup_go,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
