/*
 * jsonckpt — see jsonckpt.h.
 *
 * The encoder writes straight into a jbuf in upstream's key order. The
 * decoder parses with jansson and follows Go's encoding/json as upstream
 * uses it: unknown keys are ignored, a missing or null field keeps its zero
 * value, a repeated key means its last occurrence, and frequency/start/from/to
 * must be JSON integers (60.0 is refused, as Go refuses it for int64). Each
 * data element is read as a double and then rounded to float32 (upstream's
 * path); a number beyond the float32 range becomes NaN (missing), since the
 * store holds only finite samples. Like the .bin decoder it refuses a
 * non-positive frequency, bounds the nesting and returns a sorted tree.
 */
#include "persist/jsonckpt.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Levels below the host, as for .bin snapshots; the store uses two. */
#define JSONCKPT_MAX_DEPTH 8

/* ---- encoding ------------------------------------------------------------------ */

/* "-0" would read back as the integer 0; "-0.0" keeps the sign (and is what
 * upstream writes). */
static void jc_encode_value(struct jbuf *out, float v)
{
    if (v == 0.0f && signbit(v))
        jbuf_puts(out, "-0.0");
    else
        jbuf_float32_shortest(out, v);
}

static void jc_encode_level(const struct ckpt_level *l, int64_t from, int64_t to,
                            struct jbuf *out)
{
    jbuf_puts(out, "{\"metrics\":{");
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *s = &l->series[i];
        if (i > 0)
            jbuf_putc(out, ',');
        jbuf_string(out, s->metric, strlen(s->metric));
        jbuf_puts(out, ":{\"frequency\":");
        jbuf_int(out, s->frequency);
        jbuf_puts(out, ",\"start\":");
        jbuf_int(out, s->start);
        jbuf_puts(out, ",\"data\":[");
        for (uint32_t k = 0; k < s->count; k++) {
            if (k > 0)
                jbuf_putc(out, ',');
            jc_encode_value(out, s->values[k]);
        }
        jbuf_puts(out, "]}");
    }
    jbuf_puts(out, "},\"children\":{");
    for (size_t i = 0; i < l->child_count; i++) {
        const struct ckpt_level *c = &l->children[i];
        if (i > 0)
            jbuf_putc(out, ',');
        jbuf_string(out, c->name, strlen(c->name));
        jbuf_putc(out, ':');
        jc_encode_level(c, from, to, out);
    }
    jbuf_puts(out, "},\"from\":");
    jbuf_int(out, from);
    jbuf_puts(out, ",\"to\":");
    jbuf_int(out, to);
    jbuf_putc(out, '}');
}

int jsonckpt_encode(struct ckpt_file *f, struct jbuf *out)
{
    ckpt_level_sort(&f->host);
    jc_encode_level(&f->host, f->from, f->to, out);
    jbuf_putc(out, '\n');
    return out->failed ? JSONCKPT_ENOMEM : 0;
}

/* ---- decoding ------------------------------------------------------------------ */

struct jc_reader {
    char *err;
    size_t err_len;
    /* "/"-joined names of the levels and metric being read, for messages */
    char path[256];
};

__attribute__((format(printf, 2, 3)))
static int jc_fail(struct jc_reader *r, const char *fmt, ...)
{
    if (r->err == NULL || r->err_len == 0)
        return JSONCKPT_EFORMAT;
    int n = 0;
    if (r->path[0] != '\0')
        n = snprintf(r->err, r->err_len, "%s: ", r->path);
    if (n >= 0 && (size_t)n < r->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return JSONCKPT_EFORMAT;
}

/* Appends "/name" (or "name" at the top) to r->path; returns the old length
 * so the caller can restore it. Long paths are cut, control bytes shown as '?'. */
static size_t jc_path_push(struct jc_reader *r, const char *name)
{
    size_t old = strlen(r->path);
    size_t n = old;
    if (n > 0 && n + 1 < sizeof r->path)
        r->path[n++] = '/';
    for (const char *p = name; *p != '\0' && n + 1 < sizeof r->path; p++)
        r->path[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
    r->path[n] = '\0';
    return old;
}

static const char *jc_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a non-integer number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* An optional integer member: absent or null leaves *out at 0. */
static int jc_get_int(struct jc_reader *r, const json_t *obj, const char *key, int64_t *out)
{
    *out = 0;
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return jc_fail(r, "\"%s\" must be an integer, not %s", key, jc_type_name(v));
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* An optional object member: absent or null gives NULL. */
static int jc_get_object(struct jc_reader *r, const json_t *obj, const char *key,
                         json_t **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return jc_fail(r, "\"%s\" must be an object, not %s", key, jc_type_name(v));
    *out = v;
    return 0;
}

static char *jc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static int jc_decode_series(struct jc_reader *r, const char *name, const json_t *obj,
                            struct ckpt_series *s)
{
    size_t mark = jc_path_push(r, name);
    int rc = 0;
    if (!json_is_object(obj)) {
        rc = jc_fail(r, "metric must be an object, not %s", jc_type_name(obj));
        goto out;
    }
    s->metric = jc_strdup(name);
    if (s->metric == NULL) {
        rc = JSONCKPT_ENOMEM;
        goto out;
    }
    rc = jc_get_int(r, obj, "frequency", &s->frequency);
    if (rc == 0 && s->frequency <= 0)
        rc = jc_fail(r, "\"frequency\" must be positive, not %" PRId64, s->frequency);
    if (rc == 0)
        rc = jc_get_int(r, obj, "start", &s->start);
    if (rc != 0)
        goto out;

    const json_t *data = json_object_get(obj, "data");
    if (data == NULL || json_is_null(data))
        goto out;
    if (!json_is_array(data)) {
        rc = jc_fail(r, "\"data\" must be an array, not %s", jc_type_name(data));
        goto out;
    }
    size_t n = json_array_size(data);
    if (n > UINT32_MAX) {
        rc = jc_fail(r, "\"data\" has more than %" PRIu32 " values", UINT32_MAX);
        goto out;
    }
    if (n == 0)
        goto out;
    s->values = malloc(n * sizeof *s->values);
    if (s->values == NULL) {
        rc = JSONCKPT_ENOMEM;
        goto out;
    }
    s->count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(data, i);
        double d;
        if (json_is_null(v)) {
            s->values[i] = NAN;
            continue;
        } else if (json_is_integer(v)) {
            d = (double)json_integer_value(v);
        } else if (json_is_real(v)) {
            d = json_real_value(v);
        } else {
            rc = jc_fail(r, "\"data\"[%zu] must be a number or null, not %s", i,
                         jc_type_name(v));
            goto out;
        }
        float f = (float)d;
        s->values[i] = isfinite(f) ? f : NAN;
    }
out:
    r->path[mark] = '\0';
    return rc;
}

static int jc_series_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ckpt_series *)a)->metric, ((const struct ckpt_series *)b)->metric);
}

static int jc_level_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ckpt_level *)a)->name, ((const struct ckpt_level *)b)->name);
}

/* Counts are stored before the arrays are filled, over zeroed arrays, so
 * that ckpt_level_free() can release a partially decoded level. */
static int jc_decode_level(struct jc_reader *r, const json_t *obj, struct ckpt_level *l,
                           int depth)
{
    if (!json_is_object(obj))
        return jc_fail(r, "level must be an object, not %s", jc_type_name(obj));
    json_t *metrics, *children;
    int rc = jc_get_object(r, obj, "metrics", &metrics);
    if (rc == 0)
        rc = jc_get_object(r, obj, "children", &children);
    if (rc != 0)
        return rc;
    /* nested from/to only repeat the header, but a wrong type is still an error
     * (Go refuses it too) */
    int64_t ignored;
    rc = jc_get_int(r, obj, "from", &ignored);
    if (rc == 0)
        rc = jc_get_int(r, obj, "to", &ignored);
    if (rc != 0)
        return rc;

    size_t n = metrics != NULL ? json_object_size(metrics) : 0;
    if (n > 0) {
        l->series = calloc(n, sizeof *l->series);
        if (l->series == NULL)
            return JSONCKPT_ENOMEM;
        l->series_count = n;
        size_t i = 0;
        const char *key;
        json_t *value;
        json_object_foreach(metrics, key, value) {
            rc = jc_decode_series(r, key, value, &l->series[i++]);
            if (rc != 0)
                return rc;
        }
        qsort(l->series, n, sizeof *l->series, jc_series_cmp);
    }

    n = children != NULL ? json_object_size(children) : 0;
    if (n > 0) {
        if (depth >= JSONCKPT_MAX_DEPTH)
            return jc_fail(r, "levels nested deeper than %d", JSONCKPT_MAX_DEPTH);
        l->children = calloc(n, sizeof *l->children);
        if (l->children == NULL)
            return JSONCKPT_ENOMEM;
        l->child_count = n;
        size_t i = 0;
        const char *key;
        json_t *value;
        json_object_foreach(children, key, value) {
            struct ckpt_level *c = &l->children[i++];
            c->name = jc_strdup(key);
            if (c->name == NULL)
                return JSONCKPT_ENOMEM;
            size_t mark = jc_path_push(r, key);
            rc = jc_decode_level(r, value, c, depth + 1);
            r->path[mark] = '\0';
            if (rc != 0)
                return rc;
        }
        qsort(l->children, n, sizeof *l->children, jc_level_cmp);
    }
    return 0;
}

int jsonckpt_decode(const char *data, size_t len, struct ckpt_file *out, char *err,
                    size_t err_len)
{
    struct jc_reader r = {.err = err, .err_len = err_len};
    memset(out, 0, sizeof *out);
    if (err != NULL && err_len > 0)
        err[0] = '\0';

    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    if (root == NULL) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return JSONCKPT_EFORMAT;
    }
    int rc = 0;
    if (!json_is_object(root))
        rc = jc_fail(&r, "checkpoint must be an object, not %s", jc_type_name(root));
    if (rc == 0)
        rc = jc_get_int(&r, root, "from", &out->from);
    if (rc == 0)
        rc = jc_get_int(&r, root, "to", &out->to);
    if (rc == 0) {
        out->host.name = calloc(1, 1);
        if (out->host.name == NULL)
            rc = JSONCKPT_ENOMEM;
    }
    if (rc == 0)
        rc = jc_decode_level(&r, root, &out->host, 0);
    json_decref(root);
    if (rc == JSONCKPT_ENOMEM && err != NULL && err_len > 0)
        snprintf(err, err_len, "out of memory");
    if (rc != 0)
        ckpt_file_free(out);
    return rc;
}
