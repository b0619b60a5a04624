/*
 * snapshot — the binary checkpoint format (<from>.bin, magic 0xCC5B0001),
 * byte-compatible with the Go store (docs/file-formats.md).
 *
 * Pure codec: no file I/O. Encoding sorts metrics and children by name so
 * equal trees give equal bytes. Decoding accepts any order, checks every
 * length against the input and never reads past it.
 */
#ifndef CCMS_SNAPSHOT_H
#define CCMS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "persist/ckpt.h"
#include "util/jsonw.h"

#define SNAPSHOT_MAGIC 0xCC5B0001u

enum snapshot_error {
    SNAPSHOT_EFORMAT = -4001,   /* bad magic, truncated, length out of range */
    SNAPSHOT_ENOMEM = -4002,
    SNAPSHOT_ETOO_LONG = -4003, /* a name longer than 65535 bytes (encode) */
};

/* Appends the encoding of f to out. f's levels are sorted in place. */
int snapshot_encode(struct ckpt_file *f, struct jbuf *out);

/* Decodes data[0..len). On failure *out is empty and err (if not NULL)
 * holds a one-line reason with the byte offset. Also refused: a name with a
 * NUL byte, duplicate names in a level, frequency <= 0, more than 8 levels
 * below the host, trailing bytes. The result is sorted (ckpt_level_sort). */
int snapshot_decode(const void *data, size_t len, struct ckpt_file *out, char *err,
                    size_t err_len);

#endif
