/*
 * persist_testutil — helpers shared by the persistence unit tests
 * (test_snapshot.c, test_jsonckpt.c, test_wal.c): fixture files, temporary
 * directories, random checkpoint trees and tree comparison.
 *
 * Fixtures come from the repository's tests/fixtures (CCMS_FIXTURE_DIR).
 * A missing fixture fails the test with a message naming the path.
 */
#ifndef CCMS_PERSIST_TESTUTIL_H
#define CCMS_PERSIST_TESTUTIL_H

#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/ckpt.h"

/* Reads tests/fixtures/<rel> whole; the caller frees. */
static inline uint8_t *pt_fixture(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", CCMS_FIXTURE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- temporary directories -------------------------------------------------- */

static inline char *pt_tmpdir(void)
{
    char tmpl[] = "/tmp/ccms-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static inline int pt_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void pt_rm_rf(char *dir)
{
    assert_int_equal(nftw(dir, pt_rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

/* ---- deterministic random numbers ------------------------------------------- */

static inline uint64_t pt_rand(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* A random float: mostly ordinary values, sometimes any bit pattern
 * (NaNs with payloads, infinities, subnormals, -0) unless finite_only. */
static inline float pt_rand_float(uint64_t *s, bool finite_only)
{
    uint32_t bits = (uint32_t)pt_rand(s);
    float v;
    switch (pt_rand(s) % 4) {
    case 0:
        v = (float)(pt_rand(s) % 100000) / 10.0f;
        break;
    case 1:
        v = (float)((double)(int64_t)pt_rand(s) / 1e12);
        break;
    default:
        memcpy(&v, &bits, sizeof v);
    }
    if (finite_only && !isfinite(v))
        v = 1.5f;
    return v;
}

/* ---- checkpoint trees -------------------------------------------------------- */

static inline char *pt_strdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* A name unique within its level: random characters from `alphabet`
 * (pieces separated by '|', none containing '#'), then "#<index>". */
static inline char *pt_rand_name(uint64_t *s, const char *const *pieces, size_t npieces,
                                 size_t index)
{
    char buf[256];
    size_t n = 0;
    size_t k = pt_rand(s) % 6;
    for (size_t i = 0; i < k; i++) {
        const char *p = pieces[pt_rand(s) % npieces];
        size_t m = strlen(p);
        memcpy(buf + n, p, m);
        n += m;
    }
    snprintf(buf + n, sizeof buf - n, "#%zu", index);
    return pt_strdup(buf);
}

struct pt_tree_opts {
    const char *const *pieces; /* name characters, none containing '#' or NUL */
    size_t npieces;
    bool finite_only;          /* values: only finite floats (plus NaN) */
    int max_depth;             /* levels below the host */
};

static inline void pt_rand_level(uint64_t *s, const struct pt_tree_opts *o, struct ckpt_level *l,
                                 int depth)
{
    l->series_count = pt_rand(s) % 4;
    l->series = l->series_count ? calloc(l->series_count, sizeof *l->series) : NULL;
    for (size_t i = 0; i < l->series_count; i++) {
        struct ckpt_series *se = &l->series[i];
        se->metric = pt_rand_name(s, o->pieces, o->npieces, i);
        se->frequency = 1 + (int64_t)(pt_rand(s) % 3600);
        se->start = (int64_t)(pt_rand(s) % 4000000000u) - 100;
        se->count = (uint32_t)(pt_rand(s) % 20);
        se->values = se->count ? malloc(se->count * sizeof(float)) : NULL;
        for (uint32_t k = 0; k < se->count; k++) {
            se->values[k] = (pt_rand(s) % 8 == 0) ? NAN : pt_rand_float(s, o->finite_only);
        }
    }
    l->child_count = depth < o->max_depth ? pt_rand(s) % 3 : 0;
    l->children = l->child_count ? calloc(l->child_count, sizeof *l->children) : NULL;
    for (size_t i = 0; i < l->child_count; i++) {
        l->children[i].name = pt_rand_name(s, o->pieces, o->npieces, i);
        pt_rand_level(s, o, &l->children[i], depth + 1);
    }
}

static inline void pt_rand_file(uint64_t *s, const struct pt_tree_opts *o, struct ckpt_file *f)
{
    memset(f, 0, sizeof *f);
    f->from = (int64_t)(pt_rand(s) % 2000000000u);
    f->to = f->from + (int64_t)(pt_rand(s) % 100000);
    f->host.name = pt_strdup("");
    pt_rand_level(s, o, &f->host, 0);
}

/* Bitwise equality of two trees (values compared as bit patterns unless
 * nan_equal, where any two NaNs match). Level names of the host are not
 * compared. Returns a description of the first difference, or NULL. */
static inline const char *pt_level_diff(const struct ckpt_level *a, const struct ckpt_level *b,
                                        bool nan_equal)
{
    if (a->series_count != b->series_count)
        return "series count";
    if (a->child_count != b->child_count)
        return "child count";
    for (size_t i = 0; i < a->series_count; i++) {
        const struct ckpt_series *x = &a->series[i], *y = &b->series[i];
        if (strcmp(x->metric, y->metric) != 0)
            return "metric name";
        if (x->frequency != y->frequency || x->start != y->start)
            return "frequency/start";
        if (x->count != y->count)
            return "value count";
        for (uint32_t k = 0; k < x->count; k++) {
            if (nan_equal && isnan(x->values[k]) && isnan(y->values[k]))
                continue;
            if (memcmp(&x->values[k], &y->values[k], sizeof(float)) != 0)
                return "value bits";
        }
    }
    for (size_t i = 0; i < a->child_count; i++) {
        if (strcmp(a->children[i].name, b->children[i].name) != 0)
            return "child name";
        const char *d = pt_level_diff(&a->children[i], &b->children[i], nan_equal);
        if (d != NULL)
            return d;
    }
    return NULL;
}

#define assert_tree_equal(a, b, nan_equal)                                          \
    do {                                                                            \
        assert_true((a)->from == (b)->from && (a)->to == (b)->to);                  \
        const char *pt_d = pt_level_diff(&(a)->host, &(b)->host, (nan_equal));      \
        if (pt_d != NULL)                                                           \
            fail_msg("trees differ: %s", pt_d);                                     \
    } while (0)

/* Finds a child level / series by name (NULL if absent). */
static inline const struct ckpt_level *pt_child(const struct ckpt_level *l, const char *name)
{
    for (size_t i = 0; i < l->child_count; i++)
        if (strcmp(l->children[i].name, name) == 0)
            return &l->children[i];
    return NULL;
}

static inline const struct ckpt_series *pt_series(const struct ckpt_level *l, const char *metric)
{
    for (size_t i = 0; i < l->series_count; i++)
        if (strcmp(l->series[i].metric, metric) == 0)
            return &l->series[i];
    return NULL;
}

static inline uint32_t pt_bits(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

#endif
