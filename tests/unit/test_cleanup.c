/* Tests for archive/cleanup.c: scope parsing (upstream P1 vectors),
 * selection by window end, delete mode, archive mode's file handling
 * (the Parquet content is checked with DuckDB by the integration tests),
 * stale .tmp removal and keeping files when the archive cannot be written. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/cleanup.h"
#include "persist/snapshot.h"
#include "util/fsutil.h"

static void test_parse_scope(void **state)
{
    (void)state;
    const char *cases[][3] = {
        {"socket0", "socket", "0"},       {"socket12", "socket", "12"},
        {"core0", "core", "0"},           {"core127", "core", "127"},
        {"cpu0", "hwthread", "0"},        {"hwthread5", "hwthread", "5"},
        {"memoryDomain0", "memoryDomain", "0"}, {"accelerator0", "accelerator", "0"},
        {"unknown", "unknown", ""},       {"socketX", "socketX", ""},
        {"accelerator00000000:3b:00.0", "accelerator", "00000000:3b:00.0"},
        {"acceleratorGPU", "acceleratorGPU", ""},
        {"filesystem/home", "filesystem", "/home"},
        {"filesystem/scratch/a.b", "filesystem", "/scratch/a.b"},
        {"networkib0", "network", "ib0"},  {"networketh-1.2", "network", "eth-1.2"},
        {"filesystem", "filesystem", ""},  {"network", "network", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *scope, *id;
        cleanup_parse_scope(cases[i][0], &scope, &id);
        assert_string_equal(scope, cases[i][1]);
        assert_string_equal(id, cases[i][2]);
    }
}

struct tree {
    char root[64];
    char ckpt[128];
    char archive[128];
};

static int setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    snprintf(t->root, sizeof t->root, "/tmp/ccms-cleanup-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->ckpt, sizeof t->ckpt, "%s/ckpt", t->root);
    snprintf(t->archive, sizeof t->archive, "%s/archive", t->root);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tree *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->root);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

/* A .bin named <name_stamp>.bin with window [from, to) and one sample. */
static void write_bin(const char *dir, int64_t name_stamp, int64_t from, int64_t to)
{
    float v = 1.5f;
    struct ckpt_series series = {.metric = "cpu_load", .frequency = 60, .start = from,
                                 .values = &v, .count = 1};
    struct ckpt_file f = {.from = from, .to = to, .host = {.name = "", .series = &series,
                                                           .series_count = 1}};
    struct jbuf out;
    jbuf_init(&out, 256);
    assert_int_equal(snapshot_encode(&f, &out), 0);
    char name[64];
    snprintf(name, sizeof name, "%lld.bin", (long long)name_stamp);
    assert_int_equal(fs_mkdir_p(dir), 0);
    assert_int_equal(fs_write_atomic(dir, name, out.data, out.len), 0);
    jbuf_free(&out);
}

static bool exists(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    bool e = access(p, F_OK) == 0;
    free(p);
    return e;
}

static void touch(const char *dir, const char *name, const char *text)
{
    char *p = fs_join(dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static void test_delete_selects_by_window_end(void **state)
{
    struct tree *t = *state;
    char host[160];
    snprintf(host, sizeof host, "%s/c/h", t->ckpt);
    write_bin(host, 1000, 1000, 2000);   /* ended before the cut-off: deleted */
    write_bin(host, 2000, 2000, 9000);   /* started before, ends after: kept */
    write_bin(host, 8000, 8000, 9500);   /* kept */
    touch(host, "current.wal", "x");
    touch(host, "500.bin", "garbage");   /* undecodable: kept, counted */
    struct ccms_config cfg = {.checkpoint_dir = t->ckpt, .cleanup_mode = "delete"};
    struct cleanup_stats st;
    assert_int_equal(cleanup_run(&cfg, 5000, NULL, NULL, &st), -1);
    assert_int_equal(st.files_deleted, 1);
    assert_int_equal(st.files_failed, 1);
    assert_false(exists(host, "1000.bin"));
    assert_true(exists(host, "2000.bin"));
    assert_true(exists(host, "8000.bin"));
    assert_true(exists(host, "current.wal"));
    assert_true(exists(host, "500.bin"));
}

static void test_archive_writes_then_deletes(void **state)
{
    struct tree *t = *state;
    char host[160], cluster_archive[160];
    snprintf(host, sizeof host, "%s/c/h", t->ckpt);
    snprintf(cluster_archive, sizeof cluster_archive, "%s/c", t->archive);
    write_bin(host, 1000, 1000, 2000);
    write_bin(host, 3000, 3000, 4000);
    assert_int_equal(fs_mkdir_p(cluster_archive), 0);
    touch(cluster_archive, "42.parquet.tmp", "left by a crash");
    struct ccms_config cfg = {.checkpoint_dir = t->ckpt, .cleanup_mode = "archive",
                              .cleanup_dir = t->archive};
    struct cleanup_stats st;
    assert_int_equal(cleanup_run(&cfg, 5000, NULL, NULL, &st), 0);
    assert_int_equal(st.files_deleted, 2);
    assert_int_equal(st.parquet_files, 1);
    assert_int_equal(st.rows, 2);
    assert_true(exists(cluster_archive, "5000.parquet"));
    assert_false(exists(cluster_archive, "5000.parquet.tmp"));
    assert_false(exists(cluster_archive, "42.parquet.tmp"));
    assert_false(exists(host, "1000.bin"));
    /* a second run in the same second does not overwrite the first archive */
    write_bin(host, 1500, 1500, 2500);
    assert_int_equal(cleanup_run(&cfg, 5000, NULL, NULL, &st), 0);
    assert_true(exists(cluster_archive, "4999.parquet"));
}

static void test_archive_failure_keeps_files(void **state)
{
    struct tree *t = *state;
    char host[160];
    snprintf(host, sizeof host, "%s/c/h", t->ckpt);
    write_bin(host, 1000, 1000, 2000);
    /* a regular file where the archive's cluster directory must go */
    assert_int_equal(fs_mkdir_p(t->archive), 0);
    touch(t->archive, "c", "not a directory");
    struct ccms_config cfg = {.checkpoint_dir = t->ckpt, .cleanup_mode = "archive",
                              .cleanup_dir = t->archive};
    struct cleanup_stats st;
    assert_int_equal(cleanup_run(&cfg, 5000, NULL, NULL, &st), -1);
    assert_int_equal(st.files_deleted, 0);
    assert_int_equal(st.clusters_failed, 1);
    assert_true(exists(host, "1000.bin"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_scope),
        cmocka_unit_test_setup_teardown(test_delete_selects_by_window_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_writes_then_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_failure_keeps_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
