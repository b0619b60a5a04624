/*
 * ckpt — the in-memory form of one checkpoint file (.bin snapshot or .json
 * checkpoint): one host subtree with, per level, one series per metric.
 *
 * Codecs (snapshot.h, jsonckpt.h) translate between bytes and this form;
 * checkpoint.c translates between this form and the store. A ckpt_file owns
 * all its names, arrays and values; ckpt_file_free() releases them.
 *
 * A series is (frequency f, start s0, values v[0..n)): v[i] is the sample
 * whose nominal time is s0 + i*f; NaN = missing.
 */
#ifndef CCMS_CKPT_H
#define CCMS_CKPT_H

#include <stddef.h>
#include <stdint.h>

struct ckpt_series {
    char *metric;          /* owned, NUL-terminated */
    int64_t frequency;
    int64_t start;         /* nominal time of values[0], Unix seconds */
    float *values;         /* owned; count floats (NULL when count == 0) */
    uint32_t count;
};

struct ckpt_level {
    char *name;            /* owned; "" for the host level itself */
    struct ckpt_series *series;
    size_t series_count;
    struct ckpt_level *children;
    size_t child_count;
};

struct ckpt_file {
    int64_t from;          /* window start (Unix s) */
    int64_t to;            /* window end (Unix s) */
    struct ckpt_level host;
};

/* Frees everything the file owns and zeroes it. */
void ckpt_file_free(struct ckpt_file *f);
void ckpt_level_free(struct ckpt_level *l);

/* Sorts series by metric name and children by name (byte order), recursively,
 * so encoders produce deterministic bytes. */
void ckpt_level_sort(struct ckpt_level *l);

/*
 * Whether a decoded file agrees with itself and with its name's <stamp>: a
 * window that ends before it starts, a window end a day before the file's
 * own samples, or a day before its name is damage (a flipped bit in the
 * header), not age. Such a file must never be skipped as "too old" or
 * deleted by the cleanup. future_slack: how far samples may lie ahead of
 * the time they were written (future-tolerance; < 0 = unbounded, then the
 * samples are not compared). Returns NULL, or a static phrase saying what
 * contradicts what.
 */
const char *ckpt_file_contradiction(const struct ckpt_file *f, int64_t stamp,
                                    int64_t future_slack);

#endif
