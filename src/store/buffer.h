/*
 * buffer — fixed-frequency float32 sample buffers and the chains they form.
 *
 * A buffer holds up to `cap` samples (BUFFER_CAP for live data; a buffer
 * restored from a checkpoint has cap == len). Slot i covers the half-open
 * interval [start + i*f, start + (i+1)*f); its nominal sample time is
 * start + f/2 + i*f. NaN marks a missing sample.
 *
 * A chain is a doubly linked list of buffers of one (level, metric), oldest
 * to newest, ordered by start; the level's metric slot points at the newest
 * buffer (the head). Buffers never overlap in time except by less than one
 * slot where a new head was started mid-slot.
 *
 * Nothing here locks: the caller holds the lock of the host subtree the
 * chain belongs to (see store.h). Every function that allocates or frees
 * reports the change of allocated bytes through *bytes_delta so the store
 * can keep an exact count.
 */
#ifndef CCMS_BUFFER_H
#define CCMS_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUFFER_CAP 512

enum buffer_error {
    BUFFER_ERANGE = -1001,   /* time beyond +-2^60 s: slot arithmetic could overflow */
    BUFFER_ENOMEM = -1002,
};

/* 40 bytes of header: with 512 floats a buffer is 2088 bytes, which glibc
 * serves from a 2096-byte chunk (a 48-byte header would cost 2112). */
struct buffer {
    struct buffer *prev;     /* older buffer or NULL */
    struct buffer *next;     /* newer buffer or NULL */
    int64_t start;           /* lower edge of slot 0, Unix seconds */
    int32_t frequency;       /* seconds per slot, 1 .. BUFFER_MAX_FREQUENCY */
    uint32_t len;            /* slots written (gaps inside are NaN) */
    uint32_t cap;            /* slots allocated */
    bool saved;              /* restored from disk and not written since */
    float data[];
};

#define BUFFER_MAX_FREQUENCY INT32_MAX

/* Allocates a buffer of cap slots (len 0). Returns NULL when out of memory. */
struct buffer *buffer_new(int64_t start, int64_t frequency, uint32_t cap);
void buffer_free(struct buffer *b);

/* Bytes buffer_new allocates for cap slots (what the store counts). */
size_t buffer_alloc_size(uint32_t cap);

/* Nominal time of data[0]. */
static inline int64_t buffer_first_time(const struct buffer *b)
{
    return b->start + b->frequency / 2;
}

/* One period after the last written slot's nominal time; a buffer is freed
 * by store_free(t) iff buffer_end(b) < t (docs/data-model.md). */
static inline int64_t buffer_end(const struct buffer *b)
{
    return buffer_first_time(b) + (int64_t)b->len * b->frequency;
}

/*
 * Writes (ts, value) into the chain whose newest buffer is *head (NULL for
 * an empty chain), creating buffers as needed with `frequency`. Arrival
 * order does not matter:
 *  - ts in a buffer's slot range: that slot is overwritten (or the slots
 *    up to it NaN-filled);
 *  - ts after the head's range: a new head on the chain's slot grid;
 *  - ts before a buffer and not in the older one (a gap, or before the
 *    oldest): a new buffer on the grid, laid out in blocks of BUFFER_CAP
 *    counted back from the buffer after it.
 * Which times are acceptable at all (the retention window) is the caller's
 * rule. Returns 0, BUFFER_ERANGE or BUFFER_ENOMEM.
 */
int chain_write(struct buffer **head, int64_t frequency, int64_t ts, float value,
                int64_t *bytes_delta);

/* Oldest buffer of the chain (NULL for NULL). */
struct buffer *chain_oldest(struct buffer *head);

/*
 * Frees buffers from the old end of the chain while buffer_end(b) < before.
 * *head becomes NULL if every buffer was freed. Returns the number freed.
 */
size_t chain_free_before(struct buffer **head, int64_t before, int64_t *bytes_delta);

/* Frees the whole chain; returns the number of buffers freed. */
size_t chain_free_all(struct buffer **head, int64_t *bytes_delta);

/* Number of samples (sum of len) in the chain. */
uint64_t chain_sample_count(const struct buffer *head);

/*
 * The time range a read of [from, to) can cover with this chain:
 * *first = nominal time of the chain's first sample; *end = the upper slot
 * edge after the last written slot of the newest buffer that starts before
 * `to`. Returns false when no sample lies in a buffer starting before `to`
 * (nothing to read).
 */
bool chain_read_range(const struct buffer *head, int64_t to, int64_t *first, int64_t *end);

/*
 * A read cursor for non-decreasing times t: chain_cursor_value() returns the
 * sample of the slot containing t, or NaN where the chain has no sample.
 */
struct chain_cursor {
    const struct buffer *b;
};

void chain_cursor_init(struct chain_cursor *c, const struct buffer *head, int64_t t);
float chain_cursor_value(struct chain_cursor *c, int64_t t);

#endif
