/*
 * libFuzzer target for store/buffer.c, model-based: the input is a list of
 * operations on one chain (write a sample at a slot, in any order; free
 * buffers that ended before a time; a compaction pass, which seals what
 * was not written since the previous one; a snapshot, whose images must
 * load into an empty chain that reads the same) applied to the chain and to a plain
 * array model (slot -> value or NaN). After every operation the chain must
 * read back exactly like the model where the chain holds data, start its
 * readable range at the model's first sample, give the statistics of
 * what it reads (from part statistics where it can), keep its
 * buffers ordered, non-overlapping and on one slot grid, and account its
 * bytes exactly.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/buffer.h"

#define SLOTS 4096           /* model size: 8 blocks of 512 */
#define F 10
#define T0 1000000

static float model[SLOTS];

struct walk {
    int64_t counted;
    bool have_prev;
    struct chain_block prev;
};

/* chain_block_fn: blocks are well-formed, ordered and on one grid */
static int check_block(void *ctx, const struct chain_block *b)
{
    struct walk *w = ctx;
    w->counted += (int64_t)b->bytes;
    if (b->len > b->cap || b->cap == 0 || b->cap > BUFFER_CAP || b->frequency != F)
        abort();
    if (w->have_prev && (w->prev.start + (int64_t)w->prev.cap * F > b->start ||
                         (b->start - w->prev.start) % F != 0))
        abort();
    w->prev = *b;
    w->have_prev = true;
    return 0;
}

static void check(const struct buffer *head, int64_t bytes)
{
    struct walk w = { 0, false, { 0 } };
    chain_for_each_block(head, check_block, &w);
    int64_t counted = w.counted;
    if (counted != bytes)
        abort();
    static float got[SLOTS];
    chain_read(head, T0, F, SLOTS, got);
    int first = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (isnan(model[i]) ? !isnan(got[i]) : memcmp(&got[i], &model[i], sizeof got[i]) != 0)
            abort();
        if (first < 0 && !isnan(model[i]))
            first = i;
    }
    /* the statistics of a read are those of the values it gives: exact
     * count, min and max, the sum up to the rounding of the additions;
     * also for a window that starts inside a part */
    for (int from = 0; from < SLOTS; from += 1500) {
        struct chain_stats st;
        chain_stats(head, T0 + (int64_t)from * F, F, SLOTS - from, &st);
        uint64_t count = 0;
        double sum = 0, mn = 0, mx = 0;
        for (int i = from; i < SLOTS; i++) {
            if (isnan(got[i]))
                continue;
            double x = got[i];
            if (count == 0 || x < mn || (x == 0 && mn == 0 && signbit(x)))
                mn = x;
            if (count == 0 || x > mx || (x == 0 && mx == 0 && !signbit(x)))
                mx = x;
            count++;
            sum += x;
        }
        if (st.count != count)
            abort();
        if (count > 0 && ((double)st.min != mn || (double)st.max != mx ||
                          signbit(st.min) != signbit(mn) || signbit(st.max) != signbit(mx) ||
                          fabs(st.sum - sum) > 1e-9 * (fabs(sum) + 1)))
            abort();
    }
    /* the readable range starts at the first sample (a NaN written over
     * it moves that start) */
    int64_t range_first, range_end;
    bool any = chain_read_range(head, INT64_MAX, &range_first, &range_end);
    if (any != (first >= 0) || (any && range_first != T0 + (int64_t)first * F))
        abort();
}

struct copy {
    struct buffer *head;
    int64_t bytes;
};

/* chain_image_fn: each image goes into the copy */
static int import_image(void *ctx, const void *image, size_t len)
{
    struct copy *c = ctx;
    uint64_t samples = 0;
    if (chain_import(&c->head, image, len, &c->bytes, &samples) != 0)
        abort();
    return 0;
}

/* The chain's images (what a native snapshot holds) load into an empty
 * chain that reads exactly like the model and counts its bytes exactly. */
static void check_images(const struct buffer *head)
{
    struct copy c = { NULL, 0 };
    if (chain_export(head, INT64_MIN, import_image, &c) != 0)
        abort();
    static float got[SLOTS];
    chain_read(c.head, T0, F, SLOTS, got);
    for (int i = 0; i < SLOTS; i++)
        if (isnan(model[i]) ? !isnan(got[i]) : memcmp(&got[i], &model[i], sizeof got[i]) != 0)
            abort();
    chain_free_all(&c.head, &c.bytes);
    if (c.bytes != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buffer *head = NULL;
    int64_t bytes = 0;
    for (int i = 0; i < SLOTS; i++)
        model[i] = NAN;
    /* 3 bytes per operation: op/slot high bits, slot low bits, value */
    for (size_t p = 0; p + 3 <= size; p += 3) {
        int slot = ((data[p] & 0x0f) << 8 | data[p + 1]) % SLOTS;
        if ((data[p] >> 4) == 0xe && data[p + 2] < 64) {
            chain_compact(head, &bytes);
        } else if ((data[p] >> 4) == 0xe && data[p + 2] < 72) {
            check_images(head);
        } else if ((data[p] >> 4) == 0xf) {
            /* free everything that ended before slot: the model forgets
             * whole buffers only, so rebuild it from what is left */
            chain_free_before(&head, T0 + (int64_t)slot * F, &bytes);
            static float left[SLOTS];
            chain_read(head, T0, F, SLOTS, left);
            for (int i = 0; i < SLOTS; i++)
                if (!isnan(model[i]) && isnan(left[i]))
                    model[i] = NAN;
        } else {
            /* The first sample of a chain defines its slot grid: on the
             * model's nominal time, the grid's slots are [t-5, t+5), and
             * a jitter of up to +-4 s keeps every later sample in its slot. */
            int jitter = head ? (int)(data[p] >> 4) % 9 - 4 : 0;
            int64_t ts = T0 + (int64_t)slot * F + jitter;
            /* values with two decimals mostly (the encoder's DECIMAL
             * case), some that need 8, -0 (RAW) and NaN (a missing
             * sample written over one) */
            float v = data[p + 2] == 255 ? -0.0f
                      : data[p + 2] == 254 ? NAN
                      : data[p + 2] >= 240 ? (float)data[p + 1] * 1.00000001e-3f + 1.0f
                                           : (float)data[p + 2] / 4.0f;
            if (chain_write(&head, F, ts, v, &bytes) != 0)
                abort();
            model[slot] = v;
        }
        check(head, bytes);
    }
    chain_free_all(&head, &bytes);
    if (bytes != 0 || head)
        abort();
    return 0;
}
