/*
 * lineproto — streaming InfluxDB line-protocol tokenizer.
 *
 * Two independent pieces, neither of which knows anything about the store:
 *
 *  1. lp_reader splits a byte stream that arrives in arbitrary chunks into
 *     complete lines ("\n" or "\r\n"; a lone "\r" stays in the line and the
 *     tokenizer rejects it). Lines that fit in a chunk are passed without
 *     copying; only a line split across chunks is copied into the reader's
 *     carry buffer, so a body of any size is never held whole. A line longer
 *     than max_line is reported once with LP_ERR_LINE_TOO_LONG and its
 *     remaining bytes are skipped up to the next newline.
 *
 *  2. lp_parse tokenizes one complete line (without its newline) into an
 *     lp_line: measurement, tags, fields, optional timestamp. Escaped names
 *     are unescaped into a caller-provided scratch buffer (at least as long
 *     as the line); unescaped names point into the line itself. Blank lines
 *     and '#' comments yield LP_EMPTY.
 *
 * Syntax as InfluxDB's line-protocol v2 decoder (docs/line-protocol.md):
 * escapes "\," "\ " (and "\=" in tag keys/values and field keys), quoted
 * string fields with \\ \" \n \r \t, float / i / u / boolean fields, and
 * valid UTF-8 for bytes >= 0x80. Floats that are not finite (NaN, inf,
 * 1e400) are errors.
 */
#ifndef CCMS_LINEPROTO_H
#define CCMS_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_MAX_TAGS   64
#define LP_MAX_FIELDS 32

enum lp_status {
    LP_OK = 0,
    LP_EMPTY = 1,              /* blank line or comment: nothing to do */
    LP_ERR_SYNTAX = -1,        /* see lp_error for column and message */
    LP_ERR_LINE_TOO_LONG = -2, /* reported by lp_reader only */
};

enum lp_value_kind { LP_FLOAT, LP_INT, LP_UINT, LP_BOOL, LP_STRING };

struct lp_str {
    const char *ptr;
    size_t len;
};

struct lp_field {
    struct lp_str key;
    enum lp_value_kind kind;
    union {
        double f;
        int64_t i;
        uint64_t u;
        bool b;
        struct lp_str s;       /* unescaped, in scratch or the line */
    } v;
};

struct lp_line {
    struct lp_str measurement;
    struct lp_str tag_keys[LP_MAX_TAGS];
    struct lp_str tag_values[LP_MAX_TAGS];
    size_t tag_count;
    struct lp_field fields[LP_MAX_FIELDS];
    size_t field_count;
    bool has_timestamp;
    int64_t timestamp;         /* raw integer as written; precision is the caller's business */
};

struct lp_error {
    size_t column;             /* 1-based byte column of the offending byte */
    char message[160];         /* e.g. "expected tag value after tag key \"type\", but none found" */
};

/*
 * Tokenizes line[0..len) (no trailing newline; a trailing "\r" is allowed
 * and ignored). scratch must provide at least len bytes; out's strings may
 * point into line or scratch, so both must outlive the use of *out.
 * Returns LP_OK, LP_EMPTY, or LP_ERR_SYNTAX with *err filled.
 */
int lp_parse(const char *line, size_t len, char *scratch, struct lp_line *out,
             struct lp_error *err);

/*
 * Parses only the measurement at the start of line (for a cheap "is this a
 * metric we store?" check before the full parse). Returns LP_OK with *name
 * set (escapes are NOT removed: *needs_unescape tells whether the raw name
 * contains a backslash), LP_EMPTY for blank/comment lines, or LP_ERR_SYNTAX.
 */
int lp_peek_measurement(const char *line, size_t len, struct lp_str *name,
                        bool *needs_unescape, struct lp_error *err);

/*
 * What a line had that the next one is likely to repeat: the lines of one
 * request mostly carry one timestamp, so the next timestamp's bytes are
 * compared with the last one's before they are parsed. Owned by the
 * caller, one per stream of lines; zero it before its first use.
 */
#define LP_MEMO_TS_MAX 24
struct lp_memo {
    int64_t timestamp;             /* the value of ts_text */
    size_t ts_len;                 /* 0: nothing remembered */
    char ts_text[LP_MEMO_TS_MAX];  /* a timestamp as written, parsed without error */
};

/*
 * lp_parse of a line whose measurement lp_peek_measurement returned LP_OK
 * for (name and needs_unescape as it set them): the same result and errors,
 * without scanning the line's start and measurement again. memo (or NULL)
 * is consulted and updated.
 */
int lp_parse_peeked(const char *line, size_t len, struct lp_str name, bool needs_unescape,
                    char *scratch, struct lp_memo *memo, struct lp_line *out,
                    struct lp_error *err);

/*
 * The tag section of a line whose measurement lp_peek_measurement found
 * (name as it set it): the bytes from the measurement's end up to the
 * first space, [name.ptr + name.len, line + *end). Returns false when a
 * backslash comes first (escapes are left to the full parse) or there is
 * no space. Two lines with equal tag sections have equal tags, so a line
 * whose tag section was parsed before needs only lp_parse_fields.
 */
bool lp_tag_section(const char *line, size_t len, struct lp_str name, size_t *end);

/*
 * The rest of lp_parse_peeked from a tag section's end (lp_tag_section):
 * the same fields, timestamp and errors as the full parse of a line whose
 * tags are valid. out's measurement and tags are left empty.
 */
int lp_parse_fields(const char *line, size_t len, size_t end, char *scratch,
                    struct lp_memo *memo, struct lp_line *out, struct lp_error *err);

/* Called by lp_reader for each complete line. line_no is 1-based. status is
 * LP_OK, or LP_ERR_LINE_TOO_LONG (then line/len hold the first bytes of the
 * line, at most 64, for error messages). Return 0 to continue, non-zero to
 * stop feeding (lp_reader_feed then returns that value). */
typedef int (*lp_line_fn)(void *ctx, const char *line, size_t len, size_t line_no,
                          int status);

struct lp_reader {
    char *carry;               /* owned; the partial line from earlier chunks */
    size_t carry_len;
    size_t carry_cap;
    size_t max_line;
    size_t line_no;            /* lines completed so far */
    bool skipping;             /* inside an over-long line */
};

void lp_reader_init(struct lp_reader *r, size_t max_line);
void lp_reader_destroy(struct lp_reader *r);

/* Feeds a chunk; calls fn for every line completed by it. Returns 0, the
 * callback's non-zero value, or -ENOMEM. */
int lp_reader_feed(struct lp_reader *r, const char *data, size_t len, lp_line_fn fn,
                   void *ctx);

/* End of stream: delivers a final line that had no newline. */
int lp_reader_finish(struct lp_reader *r, lp_line_fn fn, void *ctx);

#endif
