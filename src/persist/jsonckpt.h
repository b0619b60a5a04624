/*
 * jsonckpt — the JSON checkpoint format (<from>.json), docs/file-formats.md.
 *
 * Pure codec: no file I/O. The encoder writes upstream's layout and key
 * order (metrics, children, from, to / frequency, start, data), keys sorted,
 * one trailing "\n", but each value as the shortest text that round-trips
 * the float32 (not upstream's one decimal) and non-finite values as null.
 * The decoder (jansson) accepts upstream files: unknown keys ignored, data
 * elements any JSON number or null, integers required for frequency, start,
 * from and to.
 */
#ifndef CCMS_JSONCKPT_H
#define CCMS_JSONCKPT_H

#include <stddef.h>

#include "persist/ckpt.h"
#include "util/jsonw.h"

enum jsonckpt_error {
    JSONCKPT_EFORMAT = -4101,
    JSONCKPT_ENOMEM = -4102,
};

/* Appends the encoding of f to out. f's levels are sorted in place. */
int jsonckpt_encode(struct ckpt_file *f, struct jbuf *out);

/* Decodes a whole JSON checkpoint. On failure *out is empty and err holds
 * a one-line reason (with line/column for syntax errors). A data number
 * beyond the float32 range reads as NaN; frequency <= 0 and more than 8
 * levels below the host are refused. The result is sorted (ckpt_level_sort). */
int jsonckpt_decode(const char *data, size_t len, struct ckpt_file *out, char *err,
                    size_t err_len);

#endif
