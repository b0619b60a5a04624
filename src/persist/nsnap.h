/*
 * nsnap — the native snapshot format (<stamp>.ccms in a host directory;
 * docs/file-formats.md, "Native snapshot"): the host's buffers as they are
 * in memory, each in its own checksummed block, so that writing and loading
 * cost about a copy and a flipped bit loses one block, not the file.
 *
 *   header: u32 magic 0xCC5A0001 | u16 version | u16 0 | i64 from | i64 to |
 *           u32 crc32(the 24 bytes before it)
 *   version 2 (written now) may hold images of whole buffers (one sealed
 *   part); version 1 files, whose images never do, are read as well. An
 *   earlier binary refuses a version 2 file whole instead of taking every
 *   whole buffer's block for a corrupt one.
 *   blocks: u32 magic 0xCC5B10CC | u32 body_len | u32 crc32(body) | body
 *   body:   u8 depth | depth x (u8 len, name)   the level below the host
 *           u16 metric_len | metric | buffer image (buffer.h, chain_export)
 *
 * Pure codec: no file I/O. The encoder appends to a jbuf; the scanner
 * checks every length against its input and never reads past it.
 */
#ifndef CCMS_NSNAP_H
#define CCMS_NSNAP_H

#include <stddef.h>
#include <stdint.h>

#include "persist/ckpt.h"
#include "util/jsonw.h"

#define NSNAP_MAGIC 0xCC5A0001u
#define NSNAP_BLOCK_MAGIC 0xCC5B10CCu
#define NSNAP_VERSION 2
#define NSNAP_OLDEST_VERSION 1
#define NSNAP_HEADER 28
#define NSNAP_BLOCK_HEADER 12
#define NSNAP_MAX_DEPTH 2              /* levels below the host (type, subtype) */
#define NSNAP_MAX_BLOCK (1u << 20)

enum nsnap_error {
    NSNAP_EFORMAT = -4701,      /* bad header (nothing delivered) */
    NSNAP_ENOMEM = -4702,
    NSNAP_ETOO_LONG = -4703,    /* a name too long for the format (encode) */
};

const char *nsnap_strerror(int code);

/* Appends the header. */
void nsnap_begin(struct jbuf *out, int64_t from, int64_t to);
/* Appends one block: the buffer image of metric at the level names[0..depth)
 * below the host. Returns 0 or NSNAP_ETOO_LONG (out->failed on ENOMEM). */
int nsnap_add_block(struct jbuf *out, const char *const *names, const size_t *lens,
                    size_t depth, const char *metric, size_t metric_len, const void *image,
                    size_t image_len);

struct nsnap_block {
    size_t depth;
    const char *names[NSNAP_MAX_DEPTH];   /* point into the scanned bytes */
    size_t lens[NSNAP_MAX_DEPTH];
    const char *metric;
    size_t metric_len;
    const void *image;
    size_t image_len;
};

struct nsnap_stats {
    uint64_t blocks;            /* delivered */
    uint64_t corrupt;           /* damaged regions skipped (each loses a block or more) */
    uint64_t skipped_bytes;
};

/* Checks the header only: 0 (from/to out) or NSNAP_EFORMAT. */
int nsnap_header(const void *data, size_t len, int64_t *from, int64_t *to);

/* Per block that verifies; a non-zero return stops the scan and is returned. */
typedef int (*nsnap_block_fn)(void *ctx, const struct nsnap_block *b);

/* Checks the header (from/to out) and delivers every block whose checksum
 * verifies, resynchronising on the next block magic after damage. Returns
 * 0, NSNAP_EFORMAT, or fn's value. */
int nsnap_scan(const void *data, size_t len, int64_t *from, int64_t *to, nsnap_block_fn fn,
               void *ctx, struct nsnap_stats *stats);

/* Decodes a whole file into the checkpoint form (for the archive and the
 * export to the Go formats): one series per level and metric, blocks
 * merged (a later block wins a slot both hold). Blocks that are damaged,
 * or whose image does not decode, are left out and counted in *lost (may
 * be NULL). On failure *out is empty and err holds a one-line reason. */
int nsnap_to_ckpt(const void *data, size_t len, struct ckpt_file *out, uint64_t *lost,
                  char *err, size_t err_len);

#endif
