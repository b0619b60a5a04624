/*
 * libFuzzer target for lineproto: the input (after its first byte) is a
 * request body, read once whole and once split into two chunks at a
 * position taken from the first byte. Both reads must deliver the same
 * lines; every line is tokenized by lp_parse and lp_peek_measurement and
 * the results are checked for consistency (strings inside the line or the
 * scratch buffer, finite floats, errors with a column inside the line);
 * after a peek, lp_parse_peeked must give exactly lp_parse's result, and
 * for a line whose tag section is valid so must lp_parse_fields from the
 * section's end. Both get the timestamp memo the lines before left (as
 * ingest passes it), so a remembered timestamp must never change a result.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

struct fuzz_ctx {
    uint64_t hash;
    size_t lines;
    size_t max_line;
};

static void fuzz_hash(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ULL;
    }
}

static void check_inside(struct lp_str s, const char *line, const char *scratch, size_t len)
{
    bool in_line = s.ptr >= line && s.ptr + s.len <= line + len;
    bool in_scratch = s.ptr >= scratch && s.ptr + s.len <= scratch + len;
    if (!in_line && !in_scratch)
        abort();
}

/* Carried from line to line (and input to input): whatever it holds, the
 * parses that consult it must give lp_parse's result. */
static struct lp_memo memo;

static void check_line(const char *data, size_t len)
{
    /* exact-size heap copies so that ASan catches any overread */
    char *line = malloc(len ? len : 1);
    char *scratch = malloc(len ? len : 1);
    if (!line || !scratch)
        abort();
    memcpy(line, data, len);

    static struct lp_line out;
    struct lp_error err, perr;
    memset(&err, 0, sizeof err);
    int rc = lp_parse(line, len, scratch, &out, &err);
    struct lp_str name;
    bool esc;
    int prc = lp_peek_measurement(line, len, &name, &esc, &perr);

    switch (rc) {
    case LP_EMPTY:
        assert(prc == LP_EMPTY);
        break;
    case LP_ERR_SYNTAX:
        assert(err.column >= 1 && err.column <= len + 1);
        assert(memchr(err.message, '\0', sizeof err.message) != NULL);
        assert(err.message[0] != '\0');
        if (prc == LP_ERR_SYNTAX) {
            /* an error in the measurement is the same error either way */
            assert(perr.column == err.column);
            assert(strcmp(perr.message, err.message) == 0);
        } else {
            assert(prc == LP_OK);
        }
        break;
    case LP_OK:
        assert(prc == LP_OK);
        assert(out.measurement.len > 0);
        assert(out.field_count >= 1 && out.field_count <= LP_MAX_FIELDS);
        assert(out.tag_count <= LP_MAX_TAGS);
        check_inside(out.measurement, line, scratch, len);
        assert(name.ptr >= line && name.ptr + name.len <= line + len);
        assert(esc || (name.len == out.measurement.len &&
                       memcmp(name.ptr, out.measurement.ptr, name.len) == 0));
        assert(name.len >= out.measurement.len);
        for (size_t i = 0; i < out.tag_count; i++) {
            assert(out.tag_keys[i].len > 0 && out.tag_values[i].len > 0);
            check_inside(out.tag_keys[i], line, scratch, len);
            check_inside(out.tag_values[i], line, scratch, len);
        }
        for (size_t i = 0; i < out.field_count; i++) {
            const struct lp_field *f = &out.fields[i];
            assert(f->key.len > 0);
            check_inside(f->key, line, scratch, len);
            if (f->kind == LP_STRING)
                check_inside(f->v.s, line, scratch, len);
            if (f->kind == LP_FLOAT)
                assert(isfinite(f->v.f));
        }
        break;
    default:
        abort();
    }
    if (prc == LP_OK) {
        /* lp_parse_peeked (what ingest calls after the peek) gives exactly
         * lp_parse's result: status, error, and every token */
        static struct lp_line again;
        struct lp_error err2;
        memset(&err2, 0, sizeof err2);
        char *scratch2 = malloc(len ? len : 1);
        if (!scratch2)
            abort();
        int rc2 = lp_parse_peeked(line, len, name, esc, scratch2, &memo, &again, &err2);
        assert(rc2 == rc);
        if (rc == LP_ERR_SYNTAX) {
            assert(err2.column == err.column && strcmp(err2.message, err.message) == 0);
        } else {
            assert(again.tag_count == out.tag_count && again.field_count == out.field_count);
            assert(again.has_timestamp == out.has_timestamp && again.timestamp == out.timestamp);
#define SAME_STR(a, b) assert((a).len == (b).len && memcmp((a).ptr, (b).ptr, (a).len) == 0)
            SAME_STR(again.measurement, out.measurement);
            for (size_t i = 0; i < out.tag_count; i++) {
                SAME_STR(again.tag_keys[i], out.tag_keys[i]);
                SAME_STR(again.tag_values[i], out.tag_values[i]);
            }
            for (size_t i = 0; i < out.field_count; i++) {
                SAME_STR(again.fields[i].key, out.fields[i].key);
                assert(again.fields[i].kind == out.fields[i].kind);
                switch (out.fields[i].kind) {
                case LP_STRING: SAME_STR(again.fields[i].v.s, out.fields[i].v.s); break;
                case LP_FLOAT:
                    assert(memcmp(&again.fields[i].v.f, &out.fields[i].v.f, sizeof(double)) == 0);
                    break;
                case LP_INT: assert(again.fields[i].v.i == out.fields[i].v.i); break;
                case LP_UINT: assert(again.fields[i].v.u == out.fields[i].v.u); break;
                case LP_BOOL: assert(again.fields[i].v.b == out.fields[i].v.b); break;
                }
            }
#undef SAME_STR
        }
        free(scratch2);
    }
    size_t tags_end;
    if (prc == LP_OK && lp_tag_section(line, len, name, &tags_end)) {
        /* a line whose tag section parses (the same section followed by a
         * valid field does) is parsed by lp_parse_fields from the section's
         * end exactly as by lp_parse: what ingest relies on for a line whose
         * section it has seen before */
        char *probe = malloc(tags_end + 9);
        char *scratch3 = malloc(len + 9);
        if (!probe || !scratch3)
            abort();
        memcpy(probe, line, tags_end);
        memcpy(probe + tags_end, " value=0", 8);
        static struct lp_line tags_only, fields;
        struct lp_error perr2, ferr;
        memset(&ferr, 0, sizeof ferr);
        if (lp_parse(probe, tags_end + 8, scratch3, &tags_only, &perr2) == LP_OK) {
            int frc = lp_parse_fields(line, len, tags_end, scratch3, &memo, &fields, &ferr);
            assert(frc == rc);
            if (rc == LP_ERR_SYNTAX) {
                assert(ferr.column == err.column && strcmp(ferr.message, err.message) == 0);
            } else {
                assert(fields.field_count == out.field_count && fields.tag_count == 0);
                assert(fields.has_timestamp == out.has_timestamp && fields.timestamp == out.timestamp);
                for (size_t i = 0; i < out.field_count; i++) {
                    assert(fields.fields[i].key.len == out.fields[i].key.len &&
                           memcmp(fields.fields[i].key.ptr, out.fields[i].key.ptr,
                                  out.fields[i].key.len) == 0);
                    assert(fields.fields[i].kind == out.fields[i].kind);
                    if (out.fields[i].kind == LP_FLOAT)
                        assert(memcmp(&fields.fields[i].v.f, &out.fields[i].v.f, sizeof(double)) == 0);
                    else if (out.fields[i].kind == LP_INT)
                        assert(fields.fields[i].v.i == out.fields[i].v.i);
                    else if (out.fields[i].kind == LP_UINT)
                        assert(fields.fields[i].v.u == out.fields[i].v.u);
                    else if (out.fields[i].kind == LP_BOOL)
                        assert(fields.fields[i].v.b == out.fields[i].v.b);
                    else
                        assert(fields.fields[i].v.s.len == out.fields[i].v.s.len &&
                               memcmp(fields.fields[i].v.s.ptr, out.fields[i].v.s.ptr,
                                      out.fields[i].v.s.len) == 0);
                }
            }
        }
        free(probe);
        free(scratch3);
    }
    free(line);
    free(scratch);
}

static int on_line(void *vctx, const char *line, size_t len, size_t line_no, int status)
{
    struct fuzz_ctx *c = vctx;
    c->lines++;
    assert(line_no == c->lines);
    assert(status == LP_OK || status == LP_ERR_LINE_TOO_LONG);
    if (status == LP_ERR_LINE_TOO_LONG)
        assert(len <= 64 && len <= c->max_line + 1);
    else
        assert(len <= c->max_line && memchr(line, '\n', len) == NULL);
    fuzz_hash(&c->hash, &line_no, sizeof line_no);
    fuzz_hash(&c->hash, &status, sizeof status);
    fuzz_hash(&c->hash, &len, sizeof len);
    fuzz_hash(&c->hash, line, len);
    if (status == LP_OK)
        check_line(line, len);
    return 0;
}

static void read_body(const uint8_t *body, size_t size, size_t split, size_t max_line,
                      struct fuzz_ctx *c)
{
    struct lp_reader r;
    lp_reader_init(&r, max_line);
    c->hash = 14695981039346656037ULL;
    c->lines = 0;
    c->max_line = max_line;
    /* each chunk in its own exact-size allocation */
    size_t parts[2] = { split, size - split };
    size_t off = 0;
    for (int i = 0; i < 2; i++) {
        char *chunk = malloc(parts[i] ? parts[i] : 1);
        if (!chunk)
            abort();
        memcpy(chunk, body + off, parts[i]);
        if (lp_reader_feed(&r, chunk, parts[i], on_line, c) != 0)
            abort();
        free(chunk);
        off += parts[i];
    }
    if (lp_reader_finish(&r, on_line, c) != 0)
        abort();
    lp_reader_destroy(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    size_t split = n ? (size_t)ctl * n / 255 : 0;
    /* a small limit sometimes, so over-long lines are exercised */
    size_t max_line = (ctl & 1) ? 4096 : 48;

    struct fuzz_ctx whole, parts;
    read_body(body, n, n, max_line, &whole);
    read_body(body, n, split, max_line, &parts);
    if (whole.hash != parts.hash || whole.lines != parts.lines)
        abort();
    return 0;
}
