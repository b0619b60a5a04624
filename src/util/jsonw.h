/*
 * jsonw — append-only growable byte buffer with JSON writing helpers.
 *
 * Responses are built into one contiguous buffer and handed to the HTTP
 * layer in a single write. Allocation failure is sticky: after the first
 * failed growth every call is a no-op and jbuf->failed is set, so callers
 * check once at the end. The buffer owns its memory; jbuf_steal() transfers
 * it to the caller (who then free()s it).
 *
 * Large buffers (256 KB to 1 MB: the parts of a streamed answer) are not
 * handed back to the allocator when freed but kept, up to four, for the
 * next buffer that grows that large: their pages stay mapped instead of
 * being faulted in again for every answer. jbuf_free(), jbuf_adopt() and a
 * growing buffer may keep or take one; this is invisible to the caller.
 */
#ifndef CCMS_JSONW_H
#define CCMS_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

void jbuf_init(struct jbuf *b, size_t initial_capacity);
void jbuf_free(struct jbuf *b);
void jbuf_reset(struct jbuf *b);                  /* len = 0, keeps memory */
/* Grows the buffer for extra more bytes (jbuf_reserve's slow path). */
bool jbuf_grow(struct jbuf *b, size_t extra);
/* Ensures room for extra bytes. Inline: the writers of the log and of
 * answers call it for every few bytes, and there is room nearly always. */
static inline bool jbuf_reserve(struct jbuf *b, size_t extra)
{
    if (!b->failed && b->cap - b->len >= extra)
        return true;
    return jbuf_grow(b, extra);
}
void jbuf_append(struct jbuf *b, const void *data, size_t len);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_putc(struct jbuf *b, char c);
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON string literal with quotes. Escapes ", \, control characters, and
 * <, >, & as \u003c \u003e \u0026 (like Go); invalid UTF-8 becomes U+FFFD. */
void jbuf_string(struct jbuf *b, const char *s, size_t len);

void jbuf_int(struct jbuf *b, int64_t v);

/* Fixed-point number with `decimals` digits after the point, byte-identical
 * to glibc printf("%.*f"); NaN and ±Inf are written as null. */
void jbuf_fixed(struct jbuf *b, double v, int decimals);

/* values[0..n) times scale, comma-separated, each like jbuf_fixed (NaN and
 * ±Inf as null). One reservation for the whole list: this writes the data
 * arrays of query answers, often a hundred thousand numbers. */
void jbuf_fixed_list(struct jbuf *b, const double *values, size_t n, double scale,
                     int decimals);

/* Shortest decimal text that reads back as the same float32 (for JSON
 * checkpoints); non-finite values are written as null. */
void jbuf_float32_shortest(struct jbuf *b, float v);

/* Hands the bytes to the caller (NUL-terminated, len in *len); b is reset to empty. */
char *jbuf_steal(struct jbuf *b, size_t *len);

/* The reverse: b (empty or not, its memory is freed) takes over data, len
 * bytes allocated with malloc, without copying them. */
void jbuf_adopt(struct jbuf *b, char *data, size_t len);

#endif
