/*
 * buffer — see buffer.h. Chains are short (a few buffers per day of data),
 * so every walk here is a plain linked-list walk.
 */
#include "store/buffer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Timestamps beyond this magnitude cannot be stored: slot arithmetic on
 * them could overflow int64. Nothing real is anywhere near (2^60 s). */
#define BUFFER_MAX_ABS_TIME ((int64_t)1 << 60)

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

_Static_assert(sizeof(struct buffer) == 40, "see the comment at struct buffer");

/* Bytes buffer_new allocates for cap slots (what the store counts). */
static size_t buffer_alloc_size(uint32_t cap)
{
    return sizeof(struct buffer) + (size_t)cap * sizeof(float);
}

/* Nominal time of data[0]. */
static inline int64_t buffer_first_time(const struct buffer *b)
{
    return b->start + b->frequency / 2;
}

/* One period after the last written slot's nominal time. */
static inline int64_t buffer_end(const struct buffer *b)
{
    return buffer_first_time(b) + (int64_t)b->len * b->frequency;
}

/* Allocates a buffer of cap slots (len 0); NULL when out of memory. */
static struct buffer *buffer_new(int64_t start, int64_t frequency, uint32_t cap)
{
    struct buffer *b = malloc(buffer_alloc_size(cap));
    if (!b)
        return NULL;
    b->prev = NULL;
    b->next = NULL;
    b->start = start;
    b->frequency = (int32_t)frequency; /* callers keep it within BUFFER_MAX_FREQUENCY */
    b->len = 0;
    b->cap = cap;
    b->saved = false;
    return b;
}

static void buffer_free(struct buffer *b)
{
    free(b);
}

/* Stores value at slot idx, NaN-filling any skipped slots. idx < b->cap. */
static void buffer_put(struct buffer *b, uint32_t idx, float value)
{
    while (b->len < idx)
        b->data[b->len++] = NAN;
    b->data[idx] = value;
    if (idx >= b->len)
        b->len = idx + 1;
    b->saved = false;
}

/* Creates a buffer with start and cap, links it between prev and next
 * (either may be NULL) and writes value into slot idx. */
static struct buffer *chain_insert(struct buffer *prev, struct buffer *next, int64_t start,
                                   int64_t frequency, uint32_t cap, uint32_t idx, float value,
                                   int64_t *bytes_delta)
{
    struct buffer *b = buffer_new(start, frequency, cap);
    if (!b)
        return NULL;
    *bytes_delta += (int64_t)buffer_alloc_size(cap);
    b->prev = prev;
    b->next = next;
    if (prev)
        prev->next = b;
    if (next)
        next->prev = b;
    buffer_put(b, idx, value);
    return b;
}

/* End of the time range b's capacity covers. */
static inline int64_t buffer_coverage_end(const struct buffer *b)
{
    return b->start + (int64_t)b->cap * b->frequency;
}

/* The buffer that owns time t: the oldest one whose capacity range
 * contains t. Where a new head was started mid-slot, ranges overlap by
 * less than one slot; readers and writers both use this rule, so a sample
 * is always read from where it was written. Returns the newest buffer whose
 * predecessor ends at or before t (t may lie before its start). */
static const struct buffer *chain_owner(const struct buffer *head, int64_t t)
{
    const struct buffer *b = head;
    while (b->prev && t < buffer_coverage_end(b->prev))
        b = b->prev;
    return b;
}

/* Rounds a / b (b > 0) towards +infinity, for a >= 0. */
static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/*
 * A sample at ts before buffer b (ts < b->start) and not inside b->prev.
 *
 * If b has room left at its end and reaching back does not run into
 * b->prev, b itself is moved back: its samples shift by the k slots that
 * ts needs and ts becomes slot 0. Requests that overlap in time create a
 * series at whichever timestep arrives first; the slightly older ones that
 * follow then land in the same buffer, exactly as if they had come in
 * order.
 *
 * Otherwise a new buffer on b's slot grid, laid out in whole blocks of
 * BUFFER_CAP counted back from b->start (block 1 ends at b->start, block 2
 * before it, ...), clipped so that it does not reach into b->prev. A
 * backfill arriving in any order therefore fills a few full buffers, as a
 * forward write would, instead of making one small buffer per late sample.
 */
static int chain_write_before(struct buffer *b, int64_t frequency, int64_t ts, float value,
                              int64_t *bytes_delta)
{
    int64_t f = frequency;
    int64_t k = ceil_div(b->start - ts, f);
    if (b->frequency == f && (int64_t)b->len + k <= (int64_t)b->cap &&
        (!b->prev || b->start - k * f >= buffer_coverage_end(b->prev))) {
        memmove(b->data + k, b->data, (size_t)b->len * sizeof(float));
        b->data[0] = value;
        for (int64_t i = 1; i < k; i++)
            b->data[i] = NAN;
        b->start -= k * f;
        b->len += (uint32_t)k;
        b->saved = false;
        return 0;
    }
    int64_t slot_start = b->start - ceil_div(b->start - ts, f) * f;  /* <= ts */
    int64_t block = ceil_div(b->start - slot_start, f * BUFFER_CAP);   /* >= 1 */
    int64_t block_end = b->start - (block - 1) * f * BUFFER_CAP;
    int64_t start = block_end - f * BUFFER_CAP;
    if (b->prev) {
        /* the first grid point at or after the older buffer's coverage */
        int64_t lower = buffer_coverage_end(b->prev);
        int64_t limit = b->start - ((b->start - lower) / f) * f;
        if (start < limit)
            start = limit;
    }
    /* An older buffer off b's grid (restored with another phase) may end
     * inside ts's slot: the new buffer then overlaps it by less than one
     * slot, which chain_owner resolves the same way for reads and writes. */
    if (start > slot_start)
        start = slot_start;
    uint32_t cap = (uint32_t)((block_end - start) / f);
    uint32_t idx = (uint32_t)((ts - start) / f);
    if (!chain_insert(b->prev, b, start, frequency, cap, idx, value, bytes_delta))
        return BUFFER_ENOMEM;
    return 0;
}

int chain_write(struct buffer **head, int64_t frequency, int64_t ts, float value,
                int64_t *bytes_delta)
{
    if (ts < -BUFFER_MAX_ABS_TIME || ts > BUFFER_MAX_ABS_TIME)
        return BUFFER_ERANGE;

    if (!*head) {
        *head = chain_insert(NULL, NULL, ts - frequency / 2, frequency, BUFFER_CAP, 0, value,
                             bytes_delta);
        return *head ? 0 : BUFFER_ENOMEM;
    }

    struct buffer *b = (struct buffer *)chain_owner(*head, ts);
    if (ts < b->start)
        return chain_write_before(b, frequency, ts, value, bytes_delta);
    int64_t idx = (ts - b->start) / b->frequency;
    if (idx < b->cap) {
        buffer_put(b, (uint32_t)idx, value);
        return 0;
    }
    /* Only the head can be outgrown. The new head starts at the slot of ts
     * on the chain's grid (not at ts - f/2 as upstream): a chain keeps one
     * phase, so every sample keeps its own slot when the chain is flattened
     * into a checkpoint and read back. */
    int64_t start = ts - frequency / 2;
    if (b->frequency == frequency)
        start = b->start + ((ts - b->start) / frequency) * frequency;
    struct buffer *n = chain_insert(b, NULL, start, frequency, BUFFER_CAP, 0, value, bytes_delta);
    if (!n)
        return BUFFER_ENOMEM;
    *head = n;
    return 0;
}

static struct buffer *chain_oldest(struct buffer *head)
{
    if (!head)
        return NULL;
    while (head->prev)
        head = head->prev;
    return head;
}

size_t chain_free_before(struct buffer **head, int64_t before, int64_t *bytes_delta)
{
    struct buffer *b = chain_oldest(*head);
    size_t freed = 0;
    while (b && buffer_end(b) < before) {
        struct buffer *next = b->next;
        *bytes_delta -= (int64_t)buffer_alloc_size(b->cap);
        buffer_free(b);
        freed++;
        b = next;
    }
    if (b)
        b->prev = NULL;
    else
        *head = NULL;
    return freed;
}

size_t chain_free_all(struct buffer **head, int64_t *bytes_delta)
{
    return chain_free_before(head, INT64_MAX, bytes_delta);
}

uint64_t chain_sample_count(const struct buffer *head)
{
    uint64_t n = 0;
    for (const struct buffer *b = head; b; b = b->prev)
        n += b->len;
    return n;
}

bool chain_read_range(const struct buffer *head, int64_t to, int64_t *first, int64_t *end)
{
    const struct buffer *last = head;
    while (last && last->start >= to)
        last = last->prev;
    if (!last)
        return false;
    const struct buffer *oldest = last;
    while (oldest->prev)
        oldest = oldest->prev;
    /* A buffer inserted before others (a late sample) or restored from a
     * file may begin with empty slots: the range starts at the first
     * sample, as it does when data[0] is one. */
    for (const struct buffer *b = oldest; b; b = b->next) {
        for (uint32_t i = 0; i < b->len; i++) {
            if (!isnan(b->data[i])) {
                *first = buffer_first_time(b) + (int64_t)i * b->frequency;
                *end = last->start + (int64_t)last->len * last->frequency;
                return true;
            }
        }
        if (b == last)
            break;
    }
    return false;
}

void chain_cursor_init(struct chain_cursor *c, const struct buffer *head, int64_t t)
{
    c->b = head ? chain_owner(head, t) : NULL;
}

float chain_cursor_value(struct chain_cursor *c, int64_t t)
{
    const struct buffer *b = c->b;
    if (!b)
        return NAN;
    for (;;) {
        if (t < b->start)
            return NAN;
        int64_t idx = (t - b->start) / b->frequency;
        if (idx >= b->cap) {
            if (!b->next)
                return NAN;
            b = b->next;
            c->b = b;
            continue;
        }
        return idx < b->len ? b->data[idx] : NAN;
    }
}

/* Restored series must keep all slot arithmetic far from int64 overflow
 * (the caller checks start and frequency against the same bound). */
int chain_load(struct buffer **head, int64_t frequency, int64_t start, const float *values,
               uint32_t n, int64_t *bytes_delta)
{
    int64_t lower_edge = start - frequency / 2;
    struct buffer *h = *head;
    bool after = !h || buffer_coverage_end(h) <= lower_edge;
    if (!after) {
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(values[i]))
                continue;
            int rc = chain_write(head, frequency, start + (int64_t)i * frequency, values[i],
                                 bytes_delta);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    /* Appended in blocks of BUFFER_CAP slots, as live data is kept:
     * retention can free the old part of a long series, and blocks holding
     * no sample cost nothing. */
    for (uint32_t first = 0; first < n; first += BUFFER_CAP) {
        uint32_t count = n - first < BUFFER_CAP ? n - first : BUFFER_CAP;
        bool any = false;
        for (uint32_t i = 0; i < count && !any; i++)
            any = !isnan(values[first + i]);
        if (!any)
            continue;
        while (isnan(values[first + count - 1]))
            count--;          /* no trailing NaN: len ends at the last sample */
        struct buffer *b = buffer_new(lower_edge + (int64_t)first * frequency, frequency, count);
        if (!b)
            return BUFFER_ENOMEM;
        memcpy(b->data, values + first, (size_t)count * sizeof(float));
        b->len = count;
        b->saved = true;
        b->prev = *head;
        if (b->prev)
            b->prev->next = b;
        *head = b;
        *bytes_delta += (int64_t)buffer_alloc_size(count);
    }
    return 0;
}

static void block_info(const struct buffer *b, struct chain_block *out)
{
    *out = (struct chain_block){ b->start, b->frequency, b->len, b->cap,
                                 buffer_alloc_size(b->cap), b->saved };
}

bool chain_newest_block(const struct buffer *head, struct chain_block *out)
{
    if (!head || head->len == 0)
        return false;
    block_info(head, out);
    return true;
}

int chain_for_each_block(const struct buffer *head, chain_block_fn fn, void *ctx)
{
    for (const struct buffer *b = chain_oldest((struct buffer *)head); b; b = b->next) {
        struct chain_block blk;
        block_info(b, &blk);
        int rc = fn(ctx, &blk);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int chain_for_each_sample(const struct buffer *head, int64_t from, chain_sample_fn fn,
                          void *ctx)
{
    for (const struct buffer *b = chain_oldest((struct buffer *)head); b; b = b->next) {
        int64_t t0 = buffer_first_time(b);
        for (uint32_t i = 0; i < b->len; i++) {
            int64_t t = t0 + (int64_t)i * b->frequency;
            if (t < from || isnan(b->data[i]))
                continue;
            int rc = fn(ctx, t, b->data[i]);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
