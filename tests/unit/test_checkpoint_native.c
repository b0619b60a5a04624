/* Tests for persist/checkpoint.c in the native formats: log replay after a
 * "crash" at every level depth, segments deleted only after a complete
 * snapshot run, snapshots and increments, back-fill without merging, a
 * damaged snapshot block losing that block only, a damaged definition
 * losing only the samples that need it, one batch's records written
 * together, a host removed and created again within one segment, migration from the Go fixture tree, and the export
 * to the Go formats read back with the Go-format reader. */
#include "ckpt_testutil.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/nsnap.h"
#include "persist/seglog.h"
#include "persist/snapshot.h"
#include "util/fsutil.h"

static int count_segments(const char *dir)
{
    return count_files(dir, ".log");
}

/* The one file in dir ending in suffix (malloc'd path). */
static char *only_file(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *found = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0) {
            assert_null(found);
            found = fs_join(dir, e->d_name);
        }
    }
    closedir(d);
    assert_non_null(found);
    return found;
}

static void test_log_replay_after_crash(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    for (int k = 0; k < 10; k++)
        ingest(s, cp, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k, (float)k + 0.25f);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 123.5f);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000060, 4.0e-39f);   /* subnormal: raw */
    ingest(s, cp, "n2", "hwthread7", CPU_USER, 1700000000, 1e-40f);
    close_store(s, cp);   /* "crash": nothing but the log on disk */
    assert_int_equal(count_segments(fx->dir), 1);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n1", fx->dir);
    assert_int_equal(count_files(host_dir, "current.wal"), 0);

    struct restore_stats rs;
    s = restore_store(fx, &cp, &rs);
    assert_int_equal(rs.log_segments, 1);
    assert_int_equal(rs.log_records, 13);
    assert_int_equal(rs.samples, 13);
    for (int k = 0; k < 10; k++)
        assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k) == k + 0.25);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 123.5);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000060) == (double)4.0e-39f);
    assert_true(value_at(s, "n2", "hwthread7", CPU_USER, 1700000000) == (double)1e-40f);
    /* new writes go to a new segment; a complete run deletes both */
    ingest(s, cp, "n1", NULL, CPU_LOAD, 1700000600, 99.0f);
    assert_int_equal(count_segments(fx->dir), 2);
    struct checkpoint_stats st;
    assert_int_equal(checkpointer_run(cp, 1800000000, &st), 0);
    assert_int_equal(st.hosts_written, 2);
    assert_int_equal(count_segments(fx->dir), 0);
    assert_int_equal(count_files(host_dir, ".ccms"), 1);
    assert_int_equal(count_files(host_dir, ".bin"), 0);
    close_store(s, cp);

    s = open_store(fx, &cp, true);
    for (int k = 0; k < 10; k++)
        assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000 + 60 * k) == k + 0.25);
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000600) == 99.0);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000060) == (double)4.0e-39f);
    assert_true(value_at(s, "n2", "hwthread7", CPU_USER, 1700000000) == (double)1e-40f);
    close_store(s, cp);
}

/* A run in which one host's snapshot fails keeps every segment: the
 * failed host's samples are only there. */
static void test_segments_kept_after_a_failed_run(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "good", NULL, CPU_LOAD, 1700000000, 1.0f);
    ingest(s, cp, "bad", NULL, CPU_LOAD, 1700000000, 2.0f);
    /* a file where the host directory would go: its snapshot cannot be written */
    char path[160];
    snprintf(path, sizeof path, "%s/c", fx->dir);
    assert_int_equal(fs_mkdir_p(path), 0);
    snprintf(path, sizeof path, "%s/c/bad", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    struct checkpoint_stats st;
    assert_int_not_equal(checkpointer_run(cp, 1800000000, &st), 0);
    assert_int_equal(st.hosts_failed, 1);
    assert_int_equal(count_segments(fx->dir), 1);
    close_store(s, cp);
    unlink(path);

    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "good", NULL, CPU_LOAD, 1700000000) == 1.0);
    assert_true(value_at(s, "bad", NULL, CPU_LOAD, 1700000000) == 2.0);
    assert_int_equal(checkpointer_run(cp, 1800000000, &st), 0);
    assert_int_equal(count_segments(fx->dir), 0);
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "bad", NULL, CPU_LOAD, 1700000000) == 2.0);
    close_store(s, cp);
}

/* Sealed data (several buffers, out-of-order writes, a back-fill into an
 * older range after a snapshot) round-trips through increments; nothing
 * is merged: each run writes one more file. */
static void test_snapshots_increments_and_backfill(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    for (int k = 0; k < 1500; k++)
        ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k,
               (float)((k * 37) % 1000) / 100.0f);
    assert_int_equal(checkpointer_run(cp, 1700100000, NULL), 0);
    for (int k = 1500; k < 1600; k++)
        ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k, (float)k / 7.0f);
    ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * 5, 555.0f);
    ingest(s, cp, "n1", "hwthread0", CPU_USER, 1700000000 - 60 * 100, 7.5f);   /* before all */
    struct checkpoint_stats st;
    assert_int_equal(checkpointer_run(cp, 1700200000, &st), 0);
    assert_int_equal(st.hosts_written, 1);
    assert_int_equal(checkpointer_run(cp, 1700300000, &st), 0);
    assert_int_equal(st.hosts_written, 0);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n1", fx->dir);
    assert_int_equal(count_files(host_dir, ".ccms"), 2);
    close_store(s, cp);

    s = open_store(fx, &cp, true);
    for (int k = 0; k < 1600; k++) {
        double expect = k == 5 ? 555.0
                      : k < 1500 ? (double)((float)((k * 37) % 1000) / 100.0f)
                                 : (double)((float)k / 7.0f);
        assert_true(value_at(s, "n1", "hwthread0", CPU_USER, 1700000000 + 60 * k) == expect);
    }
    assert_true(value_at(s, "n1", "hwthread0", CPU_USER, 1700000000 - 60 * 100) == 7.5);
    close_store(s, cp);
}

/* A flipped byte inside one block of a snapshot loses that block only
 * (counted); a damaged header moves the file aside. */
static void test_damaged_block_loses_only_that_block(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n1", NULL, CPU_LOAD, 1700000000, 1.0f);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 2.0f);
    ingest(s, cp, "n1", "socket1", MEM_BW, 1700000000, 3.0f);
    assert_int_equal(checkpointer_run(cp, 1700100000, NULL), 0);
    close_store(s, cp);
    char host_dir[128];
    snprintf(host_dir, sizeof host_dir, "%s/c/n1", fx->dir);
    char *path = only_file(host_dir, ".ccms");
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(path, &data, &len), 0);
    /* blocks are sorted like the tree: host level, socket0, socket1;
     * damage the last byte of the file (the socket1 block's image) */
    data[len - 1] ^= 0x10;
    rewrite_file(path, data, len);

    struct restore_stats rs;
    s = restore_store(fx, &cp, &rs);
    assert_int_equal(rs.blocks_lost, 1);
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000) == 1.0);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 2.0);
    assert_nan(value_at(s, "n1", "socket1", MEM_BW, 1700000000));
    close_store(s, cp);

    /* the header: the file is moved aside, nothing is loaded from it */
    data[len - 1] ^= 0x10;
    data[9] ^= 0x01;
    rewrite_file(path, data, len);
    s = restore_store(fx, &cp, &rs);
    assert_int_equal(rs.files_failed, 1);
    assert_int_equal(count_files(host_dir, ".ccms.corrupt"), 1);
    close_store(s, cp);
    free(data);
    free(path);
}

/* Size of the one log segment in dir. */
static off_t segment_size(const char *dir)
{
    char *path = only_file(dir, ".log");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(path);
    return st.st_size;
}

/* One batch writing to several hosts: records that only use known ids
 * wait for checkpoint_batch_flush and go out in one append; a record that
 * defines an id is written at its commit, with everything held before it.
 * Every sample is replayed after a "crash". */
static void test_batch_writes_held_records_together(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 1.0f);   /* defines socket0 */
    off_t size = segment_size(fx->dir);

    struct checkpoint_batch *b;
    assert_int_equal(checkpoint_batch_new(cp, &b), 0);
    batch_write(s, b, "n1", "socket0", MEM_BW, 1700000060, 2.0f);
    batch_write(s, b, "n2", NULL, CPU_LOAD, 1700000060, 3.0f);
    batch_write(s, b, "n1", NULL, CPU_LOAD, 1700000060, 4.0f);
    assert_int_equal(segment_size(fx->dir), size);              /* held */
    batch_write(s, b, "n3", "socket1", MEM_BW, 1700000060, 5.0f);  /* defines: written */
    off_t with_def = segment_size(fx->dir);
    assert_true(with_def > size);
    batch_write(s, b, "n2", NULL, CPU_LOAD, 1700000120, 6.0f);
    batch_write(s, b, "n3", "socket1", MEM_BW, 1700000120, 7.0f);
    assert_int_equal(segment_size(fx->dir), with_def);
    assert_int_equal(checkpoint_batch_flush(b), 0);
    assert_true(segment_size(fx->dir) > with_def);
    off_t flushed = segment_size(fx->dir);
    assert_int_equal(checkpoint_batch_flush(b), 0);             /* nothing held: no-op */
    assert_int_equal(segment_size(fx->dir), flushed);
    batch_write(s, b, "n1", NULL, CPU_LOAD, 1700000120, 8.0f);
    assert_int_equal(checkpoint_batch_finish(b), 0);            /* finish flushes */
    assert_true(segment_size(fx->dir) > flushed);
    checkpoint_batch_free(b);
    close_store(s, cp);   /* "crash" */

    struct restore_stats rs;
    s = restore_store(fx, &cp, &rs);
    assert_int_equal(rs.samples, 8);
    assert_int_equal(rs.log_records, 8);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 1.0);
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000060) == 2.0);
    assert_true(value_at(s, "n2", NULL, CPU_LOAD, 1700000060) == 3.0);
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000060) == 4.0);
    assert_true(value_at(s, "n3", "socket1", MEM_BW, 1700000060) == 5.0);
    assert_true(value_at(s, "n2", NULL, CPU_LOAD, 1700000120) == 6.0);
    assert_true(value_at(s, "n3", "socket1", MEM_BW, 1700000120) == 7.0);
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000120) == 8.0);
    close_store(s, cp);
}

/* A batch freed with records held (an input that failed part-way) still
 * writes them: their samples are in memory. */
static void test_batch_freed_with_held_records(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    struct checkpoint_batch *b;
    assert_int_equal(checkpoint_batch_new(cp, &b), 0);
    batch_write(s, b, "n1", NULL, CPU_LOAD, 1700000000, 1.5f);
    batch_write(s, b, "n2", NULL, CPU_LOAD, 1700000000, 2.5f);
    checkpoint_batch_free(b);
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000) == 1.5);
    assert_true(value_at(s, "n2", NULL, CPU_LOAD, 1700000000) == 2.5);
    close_store(s, cp);
}

/* A record whose definition is damaged: the samples naming that level
 * are counted as unresolved; the rest loads. */
static void test_damaged_definition(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 2.0f);   /* defines socket0 */
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000060, 3.0f);   /* uses it */
    ingest(s, cp, "n1", NULL, CPU_LOAD, 1700000000, 1.0f);
    close_store(s, cp);
    char *seg = only_file(fx->dir, ".log");
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(seg, &data, &len), 0);
    /* the first record's payload starts after the header: find it by its
     * magic and damage its level name */
    size_t at = 0;
    for (size_t i = 0; i + 4 <= len; i++)
        if ((uint8_t)data[i] == 0x7A && (uint8_t)data[i + 1] == 0xD4 &&
            (uint8_t)data[i + 2] == 0x10 && (uint8_t)data[i + 3] == 0xCC) {
            at = i;
            break;
        }
    assert_true(at > 0);
    data[at + SEGLOG_RECORD_HEADER + 10] ^= 0x20;
    rewrite_file(seg, data, len);
    struct restore_stats rs;
    s = restore_store(fx, &cp, &rs);
    assert_int_equal(rs.wal_corrupt, 1);
    assert_int_equal(rs.log_unresolved, 1);
    assert_nan(value_at(s, "n1", "socket0", MEM_BW, 1700000060));
    assert_true(value_at(s, "n1", NULL, CPU_LOAD, 1700000000) == 1.0);
    close_store(s, cp);
    free(data);
    free(seg);
}

/* A host freed by retention and written again within one segment gets
 * new level ids; its old ids are defined again in the log, and the
 * replay follows the newest definition. */
static void test_host_recreated_within_a_segment(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    ingest(s, cp, "n1", "socket0", MEM_BW, 1700000000, 2.0f);
    uint64_t freed = 0;
    assert_int_equal(store_free_except(s, 1700000600, NULL, NULL, &freed), 0);
    assert_true(freed > 0);
    ingest(s, cp, "n1", "socket1", MEM_BW, 1700001000, 5.0f);   /* id 1 again, another level */
    close_store(s, cp);
    s = open_store(fx, &cp, true);
    assert_true(value_at(s, "n1", "socket1", MEM_BW, 1700001000) == 5.0);
    assert_nan(value_at(s, "n1", "socket0", MEM_BW, 1700001000));
    /* the old sample is replayed too (retention at startup is the cut-off's job) */
    assert_true(value_at(s, "n1", "socket0", MEM_BW, 1700000000) == 2.0);
    close_store(s, cp);
}

static void copy_tree(const char *from, const char *to)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "cp -r '%s/.' '%s/'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* Compares every value of an exported level (the host, or one level
 * below it) with what the store reads there; returns how many. */
static int compare_level(struct store *s, const char *cluster, const char *host,
                         const char *sub, const struct ckpt_level *l)
{
    int checked = 0;
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *x = &l->series[i];
        int m = store_metric_lookup(s, x->metric, strlen(x->metric));
        for (uint32_t k = 0; m >= 0 && k < x->count; k++) {
            if (isnan(x->values[k]))
                continue;
            double got = value_in(s, cluster, host, sub, m, x->start + (int64_t)k * x->frequency);
            if (got != (double)x->values[k])
                fail_msg("%s/%s %s at %lld: store %g, export %g", host, sub ? sub : "",
                         x->metric, (long long)(x->start + (int64_t)k * x->frequency), got,
                         (double)x->values[k]);
            checked++;
        }
    }
    for (size_t i = 0; !sub && i < l->child_count; i++)
        checked += compare_level(s, cluster, host, l->children[i].name, &l->children[i]);
    return checked;
}

/* The Go fixture tree (snapshots, a current.wal) loads; the first run
 * writes native snapshots and the Go log is deleted once they are
 * durable; then everything is exported to the Go formats and the
 * export, read with the Go-format reader, holds every value. */
static void test_migration_and_export(void **state)
{
    struct fixture *fx = *state;
    char src[1024];
    snprintf(src, sizeof src, "%s/derived/checkpoints", CCMS_FIXTURE_DIR);
    copy_tree(src, fx->dir);
    struct checkpointer *cp;
    struct restore_stats rs;
    struct store *s = restore_store(fx, &cp, &rs);
    assert_true(rs.files_loaded > 0);
    assert_true(rs.wal_records > 0);
    uint64_t loaded = rs.samples;
    assert_true(loaded > 0);
    struct checkpoint_stats st;
    assert_int_equal(checkpointer_run(cp, 1800000000, &st), 0);
    char host_dir[256];
    snprintf(host_dir, sizeof host_dir, "%s/testcluster/node002", fx->dir);
    assert_int_equal(count_files(host_dir, "current.wal"), 0);
    assert_true(count_files(host_dir, ".ccms") >= 1);

    char out[256];
    snprintf(out, sizeof out, "%s-export", fx->dir);
    assert_int_equal(checkpointer_export_go(cp, out, 1800000000, &st), 0);
    assert_true(st.hosts_written > 0);
    assert_int_equal(st.hosts_failed, 0);
    close_store(s, cp);

    /* every exported value equals what a restart of the native data reads */
    s = open_store(fx, &cp, true);
    DIR *clusters = opendir(out);
    assert_non_null(clusters);
    struct dirent *c;
    int checked = 0;
    while ((c = readdir(clusters)) != NULL) {
        if (c->d_name[0] == '.')
            continue;
        char cdir[1024];
        snprintf(cdir, sizeof cdir, "%s/%s", out, c->d_name);
        DIR *hosts = opendir(cdir);
        struct dirent *h;
        while ((h = readdir(hosts)) != NULL) {
            if (h->d_name[0] == '.')
                continue;
            char hdir[2048];
            snprintf(hdir, sizeof hdir, "%s/%s", cdir, h->d_name);
            char *bin = only_file(hdir, ".bin");
            char *data;
            size_t len;
            assert_int_equal(fs_read_file(bin, &data, &len), 0);
            struct ckpt_file f;
            char err[256];
            assert_int_equal(snapshot_decode(data, len, &f, err, sizeof err), 0);
            checked += compare_level(s, c->d_name, h->d_name, NULL, &f.host);
            ckpt_file_free(&f);
            free(data);
            free(bin);
        }
        closedir(hosts);
    }
    closedir(clusters);
    assert_true(checked > 0);
    close_store(s, cp);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    assert_int_equal(system(cmd), 0);
}

/* Writers on several threads while snapshot runs retire and delete
 * segments under them (the drain rule of logset.h; run under TSan by
 * `make tsan`): after a "crash" every sample is back. */
struct writer_arg {
    struct store *s;
    struct checkpointer *cp;
    int id;
};

enum { WRITERS = 3, WRITES = 400 };

static void *writer_main(void *p)
{
    struct writer_arg *a = p;
    char host[16];
    snprintf(host, sizeof host, "w%d", a->id);
    for (int k = 0; k < WRITES; k++)
        ingest(a->s, a->cp, host, k % 2 ? "socket0" : NULL, k % 2 ? MEM_BW : CPU_LOAD,
               1700000000 + 60 * (k / 2), (float)(a->id * 1000 + k));
    return NULL;
}

static void test_runs_while_writing(void **state)
{
    struct fixture *fx = *state;
    struct checkpointer *cp;
    struct store *s = open_store(fx, &cp, true);
    pthread_t tids[WRITERS];
    struct writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (struct writer_arg){s, cp, i};
        assert_int_equal(pthread_create(&tids[i], NULL, writer_main, &args[i]), 0);
    }
    for (int r = 0; r < 20; r++)
        assert_int_equal(checkpointer_run(cp, 1800000000 + r, NULL), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(tids[i], NULL);
    close_store(s, cp);   /* "crash": the last samples are only in the log */
    s = open_store(fx, &cp, true);
    for (int i = 0; i < WRITERS; i++) {
        char host[16];
        snprintf(host, sizeof host, "w%d", i);
        for (int k = 0; k < WRITES; k++)
            assert_true(value_at(s, host, k % 2 ? "socket0" : NULL, k % 2 ? MEM_BW : CPU_LOAD,
                                 1700000000 + 60 * (k / 2)) == (double)(float)(i * 1000 + k));
    }
    close_store(s, cp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_replay_after_crash, setup_native, teardown),
        cmocka_unit_test_setup_teardown(test_segments_kept_after_a_failed_run, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_increments_and_backfill, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_block_loses_only_that_block, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_writes_held_records_together, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_freed_with_held_records, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_definition, setup_native, teardown),
        cmocka_unit_test_setup_teardown(test_host_recreated_within_a_segment, setup_native,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migration_and_export, setup_native, teardown),
        cmocka_unit_test_setup_teardown(test_runs_while_writing, setup_native, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
