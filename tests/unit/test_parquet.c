/*
 * Tests of the Parquet writer. Every file is read back by an independent
 * reader, DuckDB (tests/tools/duckdb/read_parquet.mjs, installed by
 * scripts/install-test-tools.sh); a missing node or package fails the tests.
 * Run from the repository root, or set CCMS_DUCKDB_READER to the script.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "archive/parquet.h"

static char tmpdir[] = "/tmp/test_parquet.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* The tests write files only, directly in tmpdir. */
static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        char path[512];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return rmdir(tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

/* ---- the independent reader ---- */

static const char *reader_script(void)
{
    const char *s = getenv("CCMS_DUCKDB_READER");
    if (!s)
        s = "tests/tools/duckdb/read_parquet.mjs";
    if (access(s, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", s);
    if (access("tests/tools/duckdb/node_modules/@duckdb/node-api", R_OK) != 0 && !getenv("CCMS_DUCKDB_READER"))
        fail_msg("DuckDB reader not installed: run scripts/install-test-tools.sh");
    return s;
}

/* Appends s to cmd quoted for sh. */
static void shell_arg(char *cmd, size_t cap, const char *s)
{
    size_t n = strlen(cmd);
    if (n + 2 < cap)
        cmd[n++] = ' ';
    if (n + 1 < cap)
        cmd[n++] = '\'';
    for (; *s && n + 5 < cap; s++) {
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    if (n + 1 < cap)
        cmd[n++] = '\'';
    cmd[n] = 0;
    if (n + 8 >= cap)
        fail_msg("command too long");
}

/* Runs the reader with up to three arguments; returns its exit status (1:
 * DuckDB refused the file) and, when out is not NULL, its parsed JSON
 * output. */
static int reader_exec(json_t **out, const char *a1, const char *a2, const char *a3)
{
    char cmd[8192] = "node";
    shell_arg(cmd, sizeof cmd, reader_script());
    shell_arg(cmd, sizeof cmd, a1);
    if (a2)
        shell_arg(cmd, sizeof cmd, a2);
    if (a3)
        shell_arg(cmd, sizeof cmd, a3);
    if (!out)
        strncat(cmd, " >/dev/null 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t k; (k = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += k;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = 0;
    int st = pclose(f);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (out) {
        if (code != 0)
            fail_msg("reader failed (status %d) on %s %s", code, a1, a2 ? a2 : "");
        json_error_t err;
        *out = json_loads(buf, 0, &err);
        if (!*out)
            fail_msg("reader output is not JSON: %s", err.text);
    }
    free(buf);
    return code;
}

/* Reads the whole file: schema, rows, metadata. */
static json_t *read_file(const char *path)
{
    json_t *j;
    reader_exec(&j, path, NULL, NULL);
    return j;
}

/* Runs one SQL query over the file (views: see read_parquet.mjs). */
static json_t *query(const char *path, const char *sql)
{
    json_t *j;
    reader_exec(&j, "--query", sql, path);
    json_t *rows = json_object_get(j, "rows");
    assert_true(json_is_array(rows));
    json_incref(rows);
    json_decref(j);
    return rows;
}

/* The first row of a query, whose n columns are integers. Each reader run
 * costs a DuckDB start, so a test asks all its questions at once. */
static void query_ints(const char *path, const char *sql, long long *out, size_t n)
{
    json_t *rows = query(path, sql);
    json_t *row = json_array_get(rows, 0);
    if (json_array_size(row) != n)
        fail_msg("query %s: want %zu columns", sql, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(row, i);
        if (!json_is_integer(v))
            fail_msg("query %s: column %zu is not an integer", sql, i);
        out[i] = json_integer_value(v);
    }
    json_decref(rows);
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("%s: not an integer", key);
    return json_integer_value(v);
}

static void assert_opt_str(const char *got, const char *want)
{
    if (want == NULL) {
        if (got != NULL)
            fail_msg("want null, got \"%s\"", got);
    } else {
        if (got == NULL)
            fail_msg("want \"%s\", got null", want);
        assert_string_equal(got, want);
    }
}

/* ---- checks shared by the tests ---- */

/* docs/file-formats.md "archive", as DuckDB describes it. DuckDB prints IntType's i8
 * bitWidth as a character: 64 is '@'. */
static void check_schema(json_t *doc)
{
    static const struct {
        const char *name, *type, *physical, *converted, *logical;
    } want[8] = {
        { "cluster", "VARCHAR", "BYTE_ARRAY", "UTF8", "StringType()" },
        { "hostname", "VARCHAR", "BYTE_ARRAY", "UTF8", "StringType()" },
        { "metric", "VARCHAR", "BYTE_ARRAY", "UTF8", "StringType()" },
        { "scope", "VARCHAR", "BYTE_ARRAY", "UTF8", "StringType()" },
        { "scope_id", "VARCHAR", "BYTE_ARRAY", "UTF8", "StringType()" },
        { "timestamp", "BIGINT", "INT64", "INT_64", "IntType(bitWidth=@, isSigned=1)" },
        { "frequency", "BIGINT", "INT64", "INT_64", "IntType(bitWidth=@, isSigned=1)" },
        { "value", "FLOAT", "FLOAT", NULL, NULL },
    };
    json_t *schema = json_object_get(doc, "schema");
    assert_int_equal(json_array_size(schema), 9);
    json_t *root = json_array_get(schema, 0);
    assert_string_equal(jstr(root, "name"), "ParquetMetricRow");
    assert_int_equal(jint(root, "num_children"), 8);
    assert_null(jstr(root, "physical"));
    for (int i = 0; i < 8; i++) {
        json_t *e = json_array_get(schema, (size_t)i + 1);
        assert_string_equal(jstr(e, "name"), want[i].name);
        assert_string_equal(jstr(e, "type"), want[i].type);
        assert_string_equal(jstr(e, "physical"), want[i].physical);
        assert_string_equal(jstr(e, "repetition"), "REQUIRED");
        assert_opt_str(jstr(e, "converted"), want[i].converted);
        assert_opt_str(jstr(e, "logical"), want[i].logical);
        assert_true(json_is_null(json_object_get(e, "num_children")));
    }
    assert_string_equal(jstr(doc, "created_by"), "cc-metric-store-c");
}

static void check_float(json_t *v, float want)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (isnan(want)) {
        assert_true(s && strcmp(s, "NaN") == 0);
    } else if (isinf(want)) {
        assert_true(s && strcmp(s, want > 0 ? "Infinity" : "-Infinity") == 0);
    } else if (want == 0 && signbit(want)) {
        assert_true(s && strcmp(s, "-0") == 0);
    } else {
        if (!json_is_number(v))
            fail_msg("want %a, got a non-number", (double)want);
        double got = json_number_value(v);
        if (got != (double)want)
            fail_msg("want %a, got %a", (double)want, got);
    }
}

static void check_rows(json_t *doc, const struct parquet_row *want, size_t n)
{
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), n);
    assert_int_equal(jint(doc, "num_rows"), (long long)n);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        const char *s[5] = { want[i].cluster, want[i].hostname, want[i].metric, want[i].scope,
                             want[i].scope_id };
        for (size_t c = 0; c < 5; c++)
            assert_string_equal(json_string_value(json_array_get(r, c)), s[c]);
        assert_true(json_is_integer(json_array_get(r, 5)));
        assert_true(json_integer_value(json_array_get(r, 5)) == want[i].timestamp);
        assert_true(json_is_integer(json_array_get(r, 6)));
        assert_true(json_integer_value(json_array_get(r, 6)) == want[i].frequency);
        check_float(json_array_get(r, 7), want[i].value);
    }
}

/* Every column chunk is zstd-compressed and holds its row group's rows. */
static void check_chunks(json_t *doc)
{
    json_t *chunks = json_object_get(doc, "chunks");
    assert_int_equal(json_array_size(chunks), 8 * (size_t)jint(doc, "row_groups"));
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
        assert_string_equal(jstr(c, "compression"), "ZSTD");
        assert_int_equal(jint(c, "num_values"), jint(c, "row_group_num_rows"));
        assert_int_equal(jint(c, "column_id"), (long long)(i % 8));
    }
}

/* A query column counting layout errors: column chunks (dictionary page
 * first, if any) must tile the file from byte 4 to the footer, and every
 * row group's sizes must add up. */
#define LAYOUT_ERRORS_SQL \
    "(SELECT count(*) FROM (" \
    "   SELECT coalesce(dictionary_page_offset, data_page_offset) AS start," \
    "          data_page_offset AS data, total_compressed_size AS len," \
    "          lead(coalesce(dictionary_page_offset, data_page_offset), 1," \
    "               (SELECT file_size_bytes - footer_size - 8 FROM filemeta))" \
    "            OVER (ORDER BY row_group_id, column_id) AS next," \
    "          row_number() OVER (ORDER BY row_group_id, column_id) AS i" \
    "   FROM meta)" \
    " WHERE start + len <> next OR (i = 1 AND start <> 4)" \
    "    OR data < start) +" \
    "(SELECT count(*) FROM (" \
    "   SELECT any_value(row_group_compressed_bytes) AS want," \
    "          sum(total_compressed_size) AS got," \
    "          any_value(row_group_bytes) AS want_u," \
    "          sum(total_uncompressed_size) AS got_u" \
    "   FROM meta GROUP BY row_group_id) WHERE want <> got OR want_u <> got_u)"

static void write_rows(const char *path, const struct parquet_row *rows, size_t n, const size_t *group_ends,
                       size_t ngroups)
{
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(parquet_writer_add(w, &rows[i]), 0);
        if (g < ngroups && group_ends[g] == i + 1) {
            assert_int_equal(parquet_writer_end_row_group(w), 0);
            assert_int_equal(parquet_writer_end_row_group(w), 0); /* empty: no-op */
            g++;
        }
    }
    uint64_t total = 0;
    assert_int_equal(parquet_writer_close(w, &total), 0);
    assert_int_equal(total, n);
}

/* ---- tests ---- */

/* An archive example, one row group per host. */
static void test_archive_example(void **state)
{
    (void)state;
    static const struct parquet_row rows[] = {
        { "testcluster", "node001", "cpu_load", "node", "", 1700000030, 60, 0.5f },
        { "testcluster", "node001", "cpu_load", "node", "", 1700000090, 60, 0.7f },
        { "testcluster", "node001", "cpu_load", "node", "", 1700000150, 60, 0.9f },
        { "testcluster", "node001", "mem_used", "node", "", 1700000030, 60, 45.2f },
        { "testcluster", "node001", "mem_used", "node", "", 1700000150, 60, 47.0f },
        { "testcluster", "node001", "cpu_user", "hwthread", "0", 1700000030, 60, 12.0f },
        { "testcluster", "node001", "cpu_user", "hwthread", "0", 1700000150, 60, 13.5f },
        { "testcluster", "node002", "cpu_load", "node", "", 1700000030, 60, 1.0f },
        { "testcluster", "node002", "cpu_load", "node", "", 1700000090, 60, 2.0f },
        { "testcluster", "node002", "cpu_load", "node", "", 1700000150, 60, 3.0f },
        { "testcluster", "node002", "cpu_user", "hwthread", "1", 1700000030, 60, 5.5f },
        { "testcluster", "node002", "mem_bw", "socket", "0", 1700000030, 60, 100.0f },
        { "testcluster", "node002", "mem_bw", "socket", "0", 1700000150, 60, 200.0f },
    };
    const size_t n = sizeof rows / sizeof *rows, ends[] = { 7, 13 };
    const char *path = tmp_path("example.parquet");
    write_rows(path, rows, n, ends, 2);

    json_t *doc = read_file(path);
    check_schema(doc);
    assert_int_equal(jint(doc, "row_groups"), 2);
    check_rows(doc, rows, n);
    check_chunks(doc);
    /* strings are dictionary-encoded; statistics match the data */
    json_t *chunks = json_object_get(doc, "chunks");
    for (size_t i = 0; i < 16; i++) {
        json_t *c = json_array_get(chunks, i);
        if (i % 8 < 5)
            assert_non_null(strstr(jstr(c, "encodings"), "RLE_DICTIONARY"));
        assert_int_equal(jint(c, "stats_null_count"), 0);
    }
    json_t *host1 = json_array_get(chunks, 1), *metric1 = json_array_get(chunks, 2);
    json_t *ts2 = json_array_get(chunks, 13), *val2 = json_array_get(chunks, 15);
    assert_string_equal(jstr(host1, "stats_min_value"), "node001");
    assert_string_equal(jstr(metric1, "stats_min_value"), "cpu_load");
    assert_string_equal(jstr(metric1, "stats_max_value"), "mem_used");
    assert_string_equal(jstr(ts2, "stats_min_value"), "1700000030");
    assert_string_equal(jstr(ts2, "stats_max_value"), "1700000150");
    assert_string_equal(jstr(val2, "stats_min_value"), "1.0");
    assert_string_equal(jstr(val2, "stats_max_value"), "200.0");
    json_decref(doc);

    /* statistics are usable for filtering: the answers are right */
    long long got[4];
    query_ints(path, "SELECT (SELECT count(*) FROM data WHERE value > 40 AND hostname = 'node001'),"
                     " (SELECT count(*) FROM data WHERE scope_id = ''),"
                     " (SELECT count(*) FROM data WHERE timestamp >= 1700000150), "
                     LAYOUT_ERRORS_SQL, got, 4);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 8);
    assert_int_equal(got[2], 5);
    assert_int_equal(got[3], 0);

    /* the magic at both ends and a footer length that fits the file */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char head[4], tail[8];
    assert_int_equal(fread(head, 1, 4, f), 4);
    assert_int_equal(fseek(f, -8, SEEK_END), 0);
    long footer_end = ftell(f);
    assert_int_equal(fread(tail, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(head, "PAR1", 4);
    assert_memory_equal(tail + 4, "PAR1", 4);
    uint32_t flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
                    (uint32_t)tail[3] << 24;
    assert_true(flen > 0 && flen < (uint32_t)footer_end - 4);
}

/* Awkward values: UTF-8 and empty strings, float specials, INT64 limits. */
static void test_edge_values(void **state)
{
    (void)state;
    static const struct parquet_row rows[] = {
        { "", "", "", "", "", 0, 0, 0.0f },
        { "clüster", "hôst-β", "温度", "accelerator", "00000000:3b:00.0", INT64_MIN, INT64_MAX, -0.0f },
        { "clüster", "hôst-β", "温度", "accelerator", "00000000:3b:00.0", INT64_MAX, INT64_MIN, NAN },
        { "c", "h😀", "m'q\"\\", "socketX", "", -1, 1, INFINITY },
        { "c", "h😀", "m'q\"\\", "socketX", "", 1, -1, -INFINITY },
        { "c", "h😀", "m", "node", "", 2, 60, FLT_MAX },
        { "c", "h😀", "m", "node", "", 3, 60, -FLT_MAX },
        { "c", "h😀", "m", "node", "", 4, 60, FLT_MIN },
        { "c", "h😀", "m", "node", "", 5, 60, FLT_TRUE_MIN },
        { "c", "h😀", "m", "node", "", 6, 60, -FLT_TRUE_MIN },
        { "c", "h😀", "m", "node", "", 7, 60, 0.1f },
        { "c", "h😀", "m", "node", "", 8, 60, 16777217.0f },
        { "c", "h😀", "m", "node", "", 9, 60, 0.0f },
        { "c", "h😀", "m", "node", "", 10, 60, NAN },
        { "c", "", "m", "node", "", 11, 60, 1e-30f },
    };
    const size_t n = sizeof rows / sizeof *rows, ends[] = { 1, 3, 5, 10 };
    const char *path = tmp_path("edge.parquet");
    write_rows(path, rows, n, ends, 4);

    json_t *doc = read_file(path);
    check_schema(doc);
    assert_int_equal(jint(doc, "row_groups"), 5);
    check_rows(doc, rows, n);
    check_chunks(doc);
    json_t *chunks = json_object_get(doc, "chunks");
    /* group 0: a zero value has min -0.0 and max +0.0 */
    json_t *val = json_array_get(chunks, 7);
    assert_string_equal(jstr(val, "stats_min_value"), "-0.0");
    assert_string_equal(jstr(val, "stats_max_value"), "0.0");
    /* group 1: timestamps INT64_MIN..INT64_MAX; a NaN leaves the values
     * without min/max */
    json_t *ts = json_array_get(chunks, 8 + 5);
    assert_string_equal(jstr(ts, "stats_min_value"), "-9223372036854775808");
    assert_string_equal(jstr(ts, "stats_max_value"), "9223372036854775807");
    assert_null(jstr(json_array_get(chunks, 8 + 7), "stats_min_value"));
    assert_null(jstr(json_array_get(chunks, 8 + 7), "stats_max_value"));
    /* group 3: ±FLT_MAX and denormals */
    val = json_array_get(chunks, 24 + 7);
    assert_non_null(jstr(val, "stats_min_value"));
    assert_float_equal(strtod(jstr(val, "stats_min_value"), NULL), -FLT_MAX, FLT_MAX * 1e-6);
    assert_float_equal(strtod(jstr(val, "stats_max_value"), NULL), FLT_MAX, FLT_MAX * 1e-6);
    json_decref(doc);
    /* queries that statistics could wrongly prune (DuckDB orders NaN above
     * +Inf) */
    long long got[4];
    query_ints(path, "SELECT (SELECT count(*) FROM data WHERE isnan(value)),"
                     " (SELECT count(*) FROM data WHERE value = 'NaN'::FLOAT),"
                     " (SELECT count(*) FROM data WHERE value > 3e38),"
                     " (SELECT count(*) FROM data WHERE value < -3e38)", got, 4);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 2);
    assert_int_equal(got[2], 4);
    assert_int_equal(got[3], 2);
}

/* A file without rows is still a valid file with the schema. */
static void test_empty_file(void **state)
{
    (void)state;
    const char *path = tmp_path("empty.parquet");
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    assert_int_equal(parquet_writer_end_row_group(w), 0);
    uint64_t total = 99;
    assert_int_equal(parquet_writer_close(w, &total), 0);
    assert_int_equal(total, 0);
    json_t *doc = read_file(path);
    check_schema(doc);
    assert_int_equal(jint(doc, "row_groups"), 0);
    check_rows(doc, NULL, 0);
    json_decref(doc);
}

static int64_t isqrt_mod(int64_t i)
{
    int64_t x = i % 4096, r = 0;
    while ((r + 1) * (r + 1) <= x)
        r++;
    return r % 5;
}

/* More rows than fit one page of any column; runs of every length for the
 * RLE/bit-packed indices; every value checked by DuckDB. */
static void test_many_rows(void **state)
{
    (void)state;
    const char *path = tmp_path("many.parquet");
    const int64_t n = 1100000;
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    for (int64_t i = 0; i < n; i++) {
        char host[32], metric[32], sid[8];
        snprintf(host, sizeof host, "host%03lld", (long long)(i / 50000));
        snprintf(metric, sizeof metric, "metric_%lld", (long long)((i / 100) % 7));
        snprintf(sid, sizeof sid, "%lld", (long long)isqrt_mod(i));
        struct parquet_row r = {
            .cluster = "fritz", .hostname = host, .metric = metric,
            .scope = (i % 3) ? "core" : "node", .scope_id = sid,
            .timestamp = i, .frequency = 60 + i % 2, .value = (float)(i % 1000) / 4,
        };
        assert_int_equal(parquet_writer_add(w, &r), 0);
    }
    uint64_t total = 0;
    assert_int_equal(parquet_writer_close(w, &total), 0);
    assert_int_equal(total, (uint64_t)n);

    long long got[5];
    query_ints(path,
        "SELECT (SELECT count(*) FROM meta),"
        " (SELECT count(*) FROM data),"
        " (SELECT count(*) FROM data_rn WHERE NOT ("
        "   timestamp = file_row_number"
        "   AND cluster = 'fritz'"
        "   AND hostname = printf('host%03d', timestamp // 50000)"
        "   AND metric = 'metric_' || ((timestamp // 100) % 7)"
        "   AND scope = CASE WHEN timestamp % 3 = 0 THEN 'node' ELSE 'core' END"
        "   AND scope_id = (floor(sqrt(timestamp % 4096))::BIGINT % 5)::VARCHAR"
        "   AND frequency = 60 + timestamp % 2"
        "   AND value = ((timestamp % 1000)::FLOAT / 4))),"
        /* strings and the repetitive value column use the dictionary */
        " (SELECT count(*) FROM meta WHERE encodings LIKE '%RLE_DICTIONARY%'), "
        LAYOUT_ERRORS_SQL, got, 5);
    assert_int_equal(got[0], 8);
    assert_int_equal(got[1], n);
    assert_int_equal(got[2], 0);
    assert_int_equal(got[3], 6);
    assert_int_equal(got[4], 0);
}

/* Values too many to keep a dictionary for are stored raw; the next row
 * group starts with a dictionary again. */
static void test_distinct_values(void **state)
{
    (void)state;
    const char *path = tmp_path("distinct.parquet");
    const int64_t n = 300000;
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    for (int64_t i = 0; i < n + 100; i++) {
        float v = i >= n ? 1.0f : i % 100000 == 7 ? NAN : (float)i * 0.5f;
        struct parquet_row r = { "c", "h", "m", "node", "", i, 60, v };
        assert_int_equal(parquet_writer_add(w, &r), 0);
        if (i + 1 == n)
            assert_int_equal(parquet_writer_end_row_group(w), 0);
    }
    assert_int_equal(parquet_writer_close(w, NULL), 0);

    long long got[6];
    query_ints(path,
        "SELECT (SELECT count(*) FROM data),"
        " (SELECT count(*) FROM data_rn WHERE timestamp <> file_row_number OR NOT ("
        "   CASE WHEN timestamp >= 300000 THEN value = 1"
        "        WHEN timestamp % 100000 = 7 THEN isnan(value)"
        "        ELSE value = (timestamp * 0.5)::FLOAT END)),"
        " (SELECT count(*) FROM meta WHERE column_id = 7 AND row_group_id = 0"
        "   AND encodings NOT LIKE '%DICTIONARY%' AND stats_min_value IS NULL),"
        " (SELECT count(*) FROM meta WHERE column_id = 7 AND row_group_id = 1"
        "   AND encodings LIKE '%RLE_DICTIONARY%' AND stats_max_value = '1.0'),"
        " (SELECT count(*) FROM data WHERE isnan(value)), "
        LAYOUT_ERRORS_SQL, got, 6);
    assert_int_equal(got[0], n + 100);
    assert_int_equal(got[1], 0);
    assert_int_equal(got[2], 1);
    assert_int_equal(got[3], 1);
    assert_int_equal(got[4], 3);
    assert_int_equal(got[5], 0);
}

/* A row group ends by itself when its buffers pass PARQUET_MAX_GROUP_BYTES;
 * a dictionary over 1 MiB falls back to PLAIN. */
static void test_auto_row_groups(void **state)
{
    (void)state;
    const char *path = tmp_path("big.parquet");
    const int64_t n = 70000;
    char sid[1001];
    memset(sid, 'x', sizeof sid - 1);
    sid[sizeof sid - 1] = 0;
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    for (int64_t i = 0; i < n; i++) {
        char head[24];
        snprintf(head, sizeof head, "%010lld", (long long)i);
        memcpy(sid, head, 10);
        struct parquet_row r = { "c", "h", "m", "core", sid, i, 60, (float)i };
        assert_int_equal(parquet_writer_add(w, &r), 0);
    }
    uint64_t total = 0;
    assert_int_equal(parquet_writer_close(w, &total), 0);
    assert_int_equal(total, (uint64_t)n);

    long long got[7];
    query_ints(path,
        "SELECT (SELECT count(DISTINCT row_group_id) FROM meta),"
        " (SELECT min(row_group_num_rows) FILTER (WHERE row_group_id = 0) FROM meta),"
        " (SELECT count(*) FROM data),"
        " (SELECT count(*) FROM data_rn WHERE NOT ("
        "   timestamp = file_row_number AND cluster = 'c' AND hostname = 'h' AND metric = 'm'"
        "   AND scope = 'core' AND scope_id = printf('%010d', timestamp) || repeat('x', 990)"
        "   AND frequency = 60 AND value = timestamp::FLOAT)),"
        " (SELECT count(*) FROM meta WHERE path_in_schema = 'scope_id' AND encodings NOT LIKE '%DICTIONARY%'),"
        " (SELECT count(*) FROM meta WHERE path_in_schema = 'metric' AND encodings LIKE '%RLE_DICTIONARY%'), "
        LAYOUT_ERRORS_SQL, got, 7);
    assert_int_equal(got[0], 2);
    /* the first group ended near the bound, not at an arbitrary row count */
    assert_true(got[1] * 1000 < (long long)PARQUET_MAX_GROUP_BYTES);
    assert_true(got[1] * 1100 > (long long)PARQUET_MAX_GROUP_BYTES);
    assert_int_equal(got[2], n);
    assert_int_equal(got[3], 0);
    assert_int_equal(got[4], 2);
    assert_int_equal(got[5], 2);
    assert_int_equal(got[6], 0);
}

/* A string that cannot be buffered within the bound is refused; the writer
 * stays usable. */
static void test_oversized_string(void **state)
{
    (void)state;
    const char *path = tmp_path("oversized.parquet");
    size_t len = PARQUET_MAX_GROUP_BYTES + 1;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memset(big, 'a', len);
    big[len] = 0;
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    struct parquet_row ok = { "c", "h", "m", "node", "", 1, 60, 1.0f };
    struct parquet_row bad = { "c", "h", "m", "node", big, 2, 60, 2.0f };
    assert_int_equal(parquet_writer_add(w, &ok), 0);
    assert_int_equal(parquet_writer_add(w, &bad), PARQUET_ENOMEM);
    ok.timestamp = 3;
    assert_int_equal(parquet_writer_add(w, &ok), 0);
    free(big);
    uint64_t total = 0;
    assert_int_equal(parquet_writer_close(w, &total), 0);
    assert_int_equal(total, 2);
    long long sum;
    query_ints(path, "SELECT sum(timestamp) FROM data", &sum, 1);
    assert_int_equal(sum, 4);
}

static void test_open_missing_directory(void **state)
{
    (void)state;
    struct parquet_writer *w = (struct parquet_writer *)&w;
    errno = 0;
    assert_int_equal(parquet_writer_open(tmp_path("missing/dir/x.parquet"), &w), PARQUET_EIO);
    assert_int_equal(errno, ENOENT);
    assert_null(w);
}

/* Write errors reach the caller, also when they happen during close. */
static void test_write_errors(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        fail_msg("/dev/full is needed to provoke ENOSPC");
    struct parquet_row r = { "c", "h", "m", "node", "", 1, 60, 1.0f };

    /* small file: everything is buffered until close */
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open("/dev/full", &w), 0);
    assert_int_equal(parquet_writer_add(w, &r), 0);
    errno = 0;
    assert_int_equal(parquet_writer_close(w, NULL), PARQUET_EIO);
    assert_int_equal(errno, ENOSPC);

    /* large row group: the error comes from ending it, and sticks */
    assert_int_equal(parquet_writer_open("/dev/full", &w), 0);
    uint32_t x = 12345;
    for (int i = 0; i < 400000; i++) {   /* > 1 MiB of incompressible values */
        x = x * 1664525u + 1013904223u;
        r.value = (float)x;
        assert_int_equal(parquet_writer_add(w, &r), 0);
    }
    errno = 0;
    assert_int_equal(parquet_writer_end_row_group(w), PARQUET_EIO);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(parquet_writer_add(w, &r), PARQUET_EIO);
    assert_int_equal(parquet_writer_end_row_group(w), PARQUET_EIO);
    uint64_t total = 7;
    assert_int_equal(parquet_writer_close(w, &total), PARQUET_EIO);
    assert_int_equal(total, 7);
}

/* An aborted file has no footer, so no reader takes it for an archive. */
static void test_abort(void **state)
{
    (void)state;
    const char *path = tmp_path("aborted.parquet");
    struct parquet_writer *w;
    assert_int_equal(parquet_writer_open(path, &w), 0);
    struct parquet_row r = { "c", "h", "m", "node", "", 1, 60, 1.0f };
    for (int i = 0; i < 100; i++)
        assert_int_equal(parquet_writer_add(w, &r), 0);
    assert_int_equal(parquet_writer_end_row_group(w), 0);
    assert_int_equal(parquet_writer_add(w, &r), 0);
    parquet_writer_abort(w);
    parquet_writer_abort(NULL);
    struct stat st;
    assert_int_equal(stat(path, &st), 0); /* left for the caller to remove */
    assert_int_equal(reader_exec(NULL, path, NULL, NULL), 1); /* DuckDB's error */
}

/* The reader itself rejects what is not Parquet (so the tests can fail). */
static void test_reader_rejects_garbage(void **state)
{
    (void)state;
    const char *path = tmp_path("garbage.parquet");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("PAR1 this is not a parquet file PAR1", f);
    fclose(f);
    assert_int_equal(reader_exec(NULL, path, NULL, NULL), 1); /* DuckDB's error */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archive_example),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_distinct_values),
        cmocka_unit_test(test_auto_row_groups),
        cmocka_unit_test(test_oversized_string),
        cmocka_unit_test(test_open_missing_directory),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_reader_rejects_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
