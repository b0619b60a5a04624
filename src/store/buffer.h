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
 * can keep an exact count. A chain is known to other modules only by its
 * head pointer: they write through chain_write/chain_load, read through
 * chain_read and the visitors below, and never see a buffer's layout.
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
    BUFFER_ECORRUPT = -1003, /* an image that is not a buffer this module wrote */
};

/* One buffer of a chain; its layout is this module's business (a block
 * codec replaces it without touching any other module). */
struct buffer;

#define BUFFER_MAX_FREQUENCY INT32_MAX

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

/*
 * Adds a restored series: values[i] (NaN = missing) is the sample at
 * start + i*frequency. A series after the chain's capacity is appended as
 * blocks of BUFFER_CAP slots (blocks without a sample are left out, each
 * ends at its last sample, all marked saved); otherwise its samples are
 * written one by one like live ones. Returns 0 or BUFFER_ENOMEM (the
 * samples added so far stay).
 */
int chain_load(struct buffer **head, int64_t frequency, int64_t start, const float *values,
               uint32_t n, int64_t *bytes_delta);

/*
 * Frees buffers from the old end of the chain while their chain_block_end()
 * is before `before`.
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
 * A hint before reading several chains over [from, to): walks them back
 * side by side, one buffer of each per round, asking the memory for every
 * header and for the parts of the buffers that overlap the range, so that
 * the cache misses of the chains overlap instead of following each other
 * in the reads. It changes nothing and answers nothing; the caller holds
 * the lock the reads will.
 */
void chain_prefetch(const struct buffer *const *heads, size_t count, int64_t from, int64_t to);

/* Bytes of the pages that buffer headers and the steady plain parts of
 * filling buffers are carved from, in use or free for the next ones: the
 * process keeps them, so after data is dropped they stay (the store's
 * count falls, this does not). One figure for the whole process. */
uint64_t chain_pool_bytes(void);

/* Encodings a sealed part can have, numbered 0 .. CHAIN_ENCODINGS-1, and
 * their names ("raw", "const", "decimal", "bits"). */
#define CHAIN_ENCODINGS 4
const char *chain_encoding_name(int encoding);

/* What a buffer looks like from outside: its place on the time grid, its
 * fill, the bytes it holds and how they are encoded. */
struct chain_block {
    int64_t start;              /* lower edge of slot 0 */
    int64_t frequency;
    uint32_t len;               /* slots written */
    uint32_t cap;               /* slots it can hold */
    uint64_t bytes;             /* allocated for it */
    bool saved;                 /* restored from disk and not written since */
    uint32_t raw_slots;         /* slots held as plain floats */
    uint64_t encoded_bytes;     /* bytes of its encoded part */
    uint32_t sealed_by_encoding[CHAIN_ENCODINGS];   /* encoded sub-blocks per codec kind */
};

/* Nominal time of the block's first slot, and one period after its last
 * written slot (a block is freed by chain_free_before(t) iff end < t). */
static inline int64_t chain_block_first_time(const struct chain_block *b)
{
    return b->start + b->frequency / 2;
}

static inline int64_t chain_block_end(const struct chain_block *b)
{
    return chain_block_first_time(b) + (int64_t)b->len * b->frequency;
}

/* The newest buffer (health checks look at its end); false for an empty
 * chain or an empty newest buffer. */
bool chain_newest_block(const struct buffer *head, struct chain_block *out);

/* Calls fn for every buffer, oldest first; a non-zero return stops the
 * walk and is returned. */
typedef int (*chain_block_fn)(void *ctx, const struct chain_block *block);
int chain_for_each_block(const struct buffer *head, chain_block_fn fn, void *ctx);

/* Calls fn for every sample (not NaN) with nominal time >= from, oldest
 * first; a non-zero return stops the walk and is returned. */
typedef int (*chain_sample_fn)(void *ctx, int64_t t, float value);
int chain_for_each_sample(const struct buffer *head, int64_t from, chain_sample_fn fn,
                          void *ctx);

/*
 * Seals (encodes) every buffer not written since the previous pass, and
 * the head after two quiet passes. Buffers that filled in order are sealed
 * as they go; this pass catches the ones written out of order, which are
 * left raw while samples keep arriving for them. Returns the number of
 * buffers sealed.
 */
size_t chain_compact(struct buffer *head, int64_t *bytes_delta);

/*
 * Reads n samples at t0, t0 + step, ... into out: the sample of the slot
 * containing each time, NaN where the chain has none. Decodes each sealed
 * part once per call. step > 0.
 */
void chain_read(const struct buffer *head, int64_t t0, int64_t step, size_t n, float *out);

/* How many samples, their sum (doubles added in slot order, part by
 * part), the smallest and the largest (-0 below +0; meaningless while
 * count is 0). */
struct chain_stats {
    uint64_t count;
    double sum;
    float min, max;
};

/*
 * The statistics of the samples chain_read(head, t0, step, n, ...) would
 * read. With step equal to the chain's frequency, sealed parts that lie
 * wholly inside are not decoded: their statistics are kept with them.
 */
void chain_stats(const struct buffer *head, int64_t t0, int64_t step, size_t n,
                 struct chain_stats *out);

/* ---- images: buffers as bytes (native snapshots) ---------------------------- */

/* Calls fn with the image of every buffer holding a slot whose nominal
 * time is >= from (oldest first): the buffer's state as bytes, sealed
 * parts as they are encoded, so that writing and loading them costs about
 * a copy. The bytes are valid during the call; their layout is this
 * module's. A non-zero return stops the walk and is returned (also
 * BUFFER_ENOMEM). */
typedef int (*chain_image_fn)(void *ctx, const void *image, size_t len);
int chain_export(const struct buffer *head, int64_t from, chain_image_fn fn, void *ctx);

/*
 * Adds a buffer from its image. It becomes the chain's new head when it
 * starts after the head's range, and replaces a buffer with the same grid
 * (a newer copy of it); otherwise its samples are written one by one.
 * Every field and encoded part is checked first. Adds the image's
 * samples to *samples. Returns 0, BUFFER_ECORRUPT (nothing changed) or
 * BUFFER_ENOMEM.
 */
int chain_import(struct buffer **head, const void *image, size_t len, int64_t *bytes_delta,
                 uint64_t *samples);

/* The samples of an image: values[i] (NaN = missing) at *start + i *
 * *frequency, *n of them (values has room for BUFFER_CAP). Returns 0 or
 * BUFFER_ECORRUPT. */
int chain_image_values(const void *image, size_t len, int64_t *start, int64_t *frequency,
                       float *values, uint32_t *n);

#endif
