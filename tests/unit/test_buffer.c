/* Tests for store/buffer.c: chain writes (upstream W1–W6 plus our late-sample
 * rules), reads and the readable range, sealing, and freeing. */
#include "testutil.h"

#include <stdlib.h>

#include "store/buffer.h"
#include "store/codec.h"

static int64_t bytes;

/* An encoded part of a few samples is allocated in one step of the
 * encoded area (64 bytes) at most. */
#define ENC_BYTES_OF_A_FEW 64

/* The chain as other modules see it: its blocks, oldest first. */
struct layout {
    size_t n;
    struct chain_block b[64];
};

static int add_block(void *ctx, const struct chain_block *blk)
{
    struct layout *l = ctx;
    if (l->n < 64)
        l->b[l->n] = *blk;
    l->n++;
    return 0;
}

static struct layout layout_of(const struct buffer *head)
{
    struct layout l;
    l.n = 0;
    chain_for_each_block(head, add_block, &l);
    return l;
}

/* Bytes of all blocks of a layout: the chain's count must equal it. */
static uint64_t blocks_bytes(const struct layout *l)
{
    uint64_t n = 0;
    for (size_t i = 0; i < l->n && i < 64; i++)
        n += l->b[i].bytes;
    return n;
}

static void teardown_chain(struct buffer **head)
{
    chain_free_all(head, &bytes);
    assert_int_equal(bytes, 0);
}

/* Reads the chain on the grid from..to like a single-chain store read. */
static size_t read_values(const struct buffer *head, int64_t from, int64_t to, int64_t f,
                          float *out, size_t max)
{
    int64_t first, end;
    if (!chain_read_range(head, to, &first, &end))
        return 0;
    if (first > from)
        from = first;
    int64_t w1 = end < to ? end : to;
    size_t n = w1 > from ? (size_t)((w1 - from + f - 1) / f) : 0;
    if (n > max)
        n = max;
    chain_read(head, from, f, n, out);
    return n;
}

static void test_first_write_defines_grid(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    assert_int_equal(chain_write(&head, 10, 100, 42.0f, &bytes), 0);
    assert_non_null(head);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.b[0].start, 95);
    assert_int_equal(l.b[0].len, 1);
    assert_int_equal(l.b[0].cap, BUFFER_CAP);
    assert_int_equal(chain_block_first_time(&l.b[0]), 100);
    assert_int_equal(bytes, (int64_t)l.b[0].bytes);
    assert_true(l.b[0].bytes <= 128);       /* a series holding one sample is small */
    float v[4] = {0};
    assert_int_equal(read_values(head, 100, 110, 10, v, 4), 1);
    assert_true(v[0] == 42.0f);
    teardown_chain(&head);
}

/* A buffer with room left moves back to take an older sample: overlapping
 * requests that create a series at a later timestep cost nothing extra. */
static void test_before_oldest_moves_a_buffer_with_room(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 42.0f, &bytes);                 /* start 95 */
    assert_int_equal(chain_write(&head, 10, 50, 10.0f, &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.b[0].start, 45);
    assert_int_equal(l.b[0].len, 6);
    assert_int_equal(bytes, (int64_t)l.b[0].bytes);
    float v[8] = {0};
    assert_int_equal(read_values(head, 0, 110, 10, v, 8), 6);
    assert_true(v[0] == 10.0f);
    for (int i = 1; i < 5; i++)
        assert_nan(v[i]);
    assert_true(v[5] == 42.0f);
    teardown_chain(&head);
}

/* A full buffer cannot move: the older sample gets a block of its own. */
static void test_before_a_full_buffer_prepends_a_block(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < BUFFER_CAP; k++)
        chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes);  /* start 95, full */
    assert_int_equal(chain_write(&head, 10, 50, 10.0f, &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 2);
    /* a whole block of 512 slots that ends where the full buffer begins */
    assert_int_equal(l.b[0].cap, BUFFER_CAP);
    assert_int_equal(l.b[0].start, 95 - 10 * BUFFER_CAP);
    float v[8] = {0};
    assert_int_equal(read_values(head, 0, 110, 10, v, 8), 6);
    assert_true(v[0] == 10.0f);
    for (int i = 1; i < 5; i++)
        assert_nan(v[i]);
    assert_true(v[5] == 0.0f);
    /* further back than one block: that block moves back if it has room
     * (it has: one sample), else the next block back, same grid */
    assert_int_equal(chain_write(&head, 10, 95 - 10 * BUFFER_CAP - 5, 7.0f, &bytes), 0);
    l = layout_of(head);
    assert_int_equal((l.b[l.n - 1].start - l.b[0].start) % 10, 0);
    assert_int_equal(read_values(head, 95 - 10 * BUFFER_CAP - 5, 95 - 10 * BUFFER_CAP + 5, 10, v,
                                 8), 1);
    assert_true(v[0] == 7.0f);
    teardown_chain(&head);
}

/* Newest first, one sample per slot: the backfill fills whole blocks, as
 * writing forward would, instead of one buffer per sample. */
static void test_reverse_order_fills_blocks(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    const int n = 3 * BUFFER_CAP;
    for (int k = n - 1; k >= 0; k--)
        assert_int_equal(chain_write(&head, 60, 1000 + 60 * (int64_t)k, (float)k, &bytes), 0);
    assert_true(layout_of(head).n <= 4);
    static float v[3 * BUFFER_CAP];
    assert_int_equal(read_values(head, 1000, 1000 + 60 * (int64_t)n, 60, v, (size_t)n),
                     (size_t)n);
    for (int k = 0; k < n; k++)
        assert_true(v[k] == (float)k);
    teardown_chain(&head);
}

/* Model-based: samples on a grid of 2,000 slots written in a random order,
 * with overwrites, read back exactly like a map slot -> last value. */
static void test_any_order_matches_model(void **state)
{
    (void)state;
    enum { SLOTS = 2000, WRITES = 6000 };
    static float model[SLOTS];
    srand(12345);
    for (int round = 0; round < 20; round++) {
        struct buffer *head = NULL;
        bytes = 0;
        for (int i = 0; i < SLOTS; i++)
            model[i] = NAN;
        for (int w = 0; w < WRITES; w++) {
            int slot = rand() % SLOTS;
            /* jitter inside the slot's half interval keeps the slot */
            int64_t ts = 100000 + 10 * (int64_t)slot + (rand() % 5) - 2;
            float value = (float)(rand() % 100000) / 8.0f;
            assert_int_equal(chain_write(&head, 10, ts, value, &bytes), 0);
            model[slot] = value;
        }
        /* buffers are ordered, never overlap, and stay on one grid */
        struct layout l = layout_of(head);
        assert_true(l.n <= 64);
        for (size_t i = 0; i + 1 < l.n; i++) {
            assert_true(l.b[i].start + (int64_t)l.b[i].cap * 10 <= l.b[i + 1].start);
            assert_int_equal((l.b[i + 1].start - l.b[i].start) % 10, 0);
            assert_true(l.b[i].cap <= BUFFER_CAP);
        }
        int64_t first, end;
        assert_true(chain_read_range(head, INT64_MAX / 2, &first, &end));
        static float bulk[SLOTS];
        chain_read(head, 100000, 10, SLOTS, bulk);
        for (int i = 0; i < SLOTS; i++) {
            if (isnan(model[i]))
                assert_nan(bulk[i]);
            else
                assert_true(bulk[i] == model[i]);
        }
        /* one value at a time (a new read at every slot) reads the same */
        for (int i = 0; i < SLOTS; i += 37) {
            float one;
            chain_read(head, 100000 + 10 * (int64_t)i, 10, 1, &one);
            if (isnan(model[i]))
                assert_nan(one);
            else
                assert_true(one == model[i]);
        }
        /* a compaction pass in between changes nothing a reader sees */
        if (round % 2)
            chain_compact(head, &bytes);
        teardown_chain(&head);
    }
}

static void test_nan_fill_and_overwrite(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 130, 4.0f, &bytes);
    float v[8] = {0};
    assert_int_equal(read_values(head, 100, 140, 10, v, 8), 4);
    assert_true(v[0] == 1.0f);
    assert_nan(v[1]);
    assert_nan(v[2]);
    assert_true(v[3] == 4.0f);
    chain_write(&head, 10, 100, 99.0f, &bytes);
    assert_int_equal(read_values(head, 100, 110, 10, v, 8), 1);
    assert_true(v[0] == 99.0f);
    teardown_chain(&head);
}

static void test_capacity_overflow_starts_new_head(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k <= 512; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.b[0].start, 95);
    assert_int_equal(l.b[0].len, 512);
    assert_int_equal(l.b[1].start, 5215);
    assert_int_equal(l.b[1].len, 1);
    float v[600] = {0};
    size_t n = read_values(head, 100, 5230, 10, v, 600);
    assert_int_equal(n, 513);
    for (int k = 0; k <= 512; k++)
        assert_true(v[k] == (float)k);
    /* R4: across the buffer boundary */
    n = read_values(head, 5200, 5230, 10, v, 600);
    assert_int_equal(n, 3);
    assert_true(v[0] == 510.0f && v[1] == 511.0f && v[2] == 512.0f);
    teardown_chain(&head);
}

static void test_late_sample_goes_to_older_buffer(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k <= 512; k += 2)   /* even slots only, then a new head */
        chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes);
    chain_write(&head, 10, 100 + 10 * 600, 600.0f, &bytes);
    assert_int_equal(layout_of(head).n, 2);
    /* an odd slot of the old buffer, written after the new head exists */
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 7, 7.0f, &bytes), 0);
    float v[8] = {0};
    assert_int_equal(read_values(head, 170, 180, 10, v, 8), 1);
    assert_true(v[0] == 7.0f);
    teardown_chain(&head);
}

static void test_late_sample_in_gap_inserts_buffer(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);          /* buffer A covers 95..5215 */
    chain_write(&head, 10, 100000, 2.0f, &bytes);       /* far later: new head B */
    assert_int_equal(chain_write(&head, 10, 50000, 3.0f, &bytes), 0); /* in the gap */
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 3);             /* A, the gap buffer, B */
    const struct chain_block *gap = &l.b[1], *b = &l.b[2];
    /* one block of the grid counted back from B, holding 50000 */
    assert_int_equal(gap->cap, BUFFER_CAP);
    assert_true(gap->start <= 50000 && 50000 < gap->start + (int64_t)gap->cap * 10);
    assert_int_equal((b->start - (gap->start + (int64_t)gap->cap * 10)) % (10 * BUFFER_CAP), 0);
    assert_true(gap->start + (int64_t)gap->cap * 10 <= b->start);
    /* on B's grid: (B.start - gap.start) is a multiple of f */
    assert_int_equal((b->start - gap->start) % 10, 0);
    float v[4] = {0};
    assert_int_equal(read_values(head, 50000, 50010, 10, v, 4), 1);
    assert_true(v[0] == 3.0f);
    /* the original samples are untouched */
    assert_int_equal(read_values(head, 100, 110, 10, v, 4), 1);
    assert_true(v[0] == 1.0f);
    assert_int_equal(read_values(head, 100000, 100010, 10, v, 4), 1);
    assert_true(v[0] == 2.0f);
    teardown_chain(&head);
}

static void test_gap_buffer_fills_a_short_gap_exactly(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);   /* A: 95 .. 5215 */
    for (int k = 0; k < BUFFER_CAP; k++)         /* B from 6095 on A's grid, full */
        chain_write(&head, 10, 6100 + 10 * k, 2.0f, &bytes);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.b[1].start, 6095);
    assert_int_equal(l.b[1].len, BUFFER_CAP);
    assert_int_equal(chain_write(&head, 10, 5500, 3.0f, &bytes), 0);
    l = layout_of(head);
    assert_int_equal(l.n, 3);                    /* A, the gap buffer, B */
    assert_int_equal(l.b[1].start, 5215);        /* clipped to A's end */
    assert_int_equal(l.b[1].cap, 88);            /* up to B's start */
    /* a second late sample in the same gap goes into the same buffer */
    assert_int_equal(chain_write(&head, 10, 6000, 4.0f, &bytes), 0);
    l = layout_of(head);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.b[1].start, 5215);
    assert_int_equal(l.b[1].len, 79);
    float v[2] = {0};
    assert_int_equal(read_values(head, 6000, 6010, 10, v, 2), 1);
    assert_true(v[0] == 4.0f);
    teardown_chain(&head);
}

static void test_gap_reads_nan(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 10000, 2.0f, &bytes);   /* idx 990 >= 512: new head */
    float v[2000] = {0};
    size_t n = read_values(head, 100, 10010, 10, v, 2000);
    assert_int_equal(n, 991);
    assert_true(v[0] == 1.0f);
    for (size_t i = 1; i < 990; i++)
        assert_nan(v[i]);
    assert_true(v[990] == 2.0f);
    teardown_chain(&head);
}

static void test_read_range_examples(void **state)
{
    (void)state;
    /* docs/http-api.md "Reading a series" examples, f = 10, samples at 100, 110, 120 */
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 10, 100, 1.0f, &bytes);
    chain_write(&head, 10, 110, 2.0f, &bytes);
    chain_write(&head, 10, 120, 3.0f, &bytes);
    float v[8] = {0};
    assert_int_equal(read_values(head, 100, 130, 10, v, 8), 3);
    assert_int_equal(read_values(head, 100, 120, 10, v, 8), 2);
    assert_int_equal(read_values(head, 50, 120, 10, v, 8), 2);
    assert_true(v[0] == 1.0f);
    assert_int_equal(read_values(head, 103, 125, 10, v, 8), 3);
    assert_true(v[2] == 3.0f);
    assert_int_equal(read_values(head, 200, 300, 10, v, 8), 0);
    assert_int_equal(read_values(head, 150, 150, 10, v, 8), 0);
    int64_t first, end;
    assert_false(chain_read_range(head, 95, &first, &end));
    assert_true(chain_read_range(head, 96, &first, &end));
    assert_int_equal(first, 100);
    assert_int_equal(end, 125);
    teardown_chain(&head);
}

static void test_free_before(void **state)
{
    (void)state;
    /* upstream W6: start 90, first write 95, len 4 -> end 135 */
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 4; k++)
        chain_write(&head, 10, 95 + 10 * k, (float)k, &bytes);
    struct layout l = layout_of(head);
    assert_int_equal(l.b[0].start, 90);
    assert_int_equal(chain_block_end(&l.b[0]), 135);
    assert_int_equal(chain_free_before(&head, 135, &bytes), 0);
    assert_non_null(head);
    assert_int_equal(chain_free_before(&head, 136, &bytes), 1);
    assert_null(head);
    assert_int_equal(bytes, 0);
}

static void test_free_from_old_end(void **state)
{
    (void)state;
    /* upstream F1/F2: 1025 samples -> three buffers */
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 1025; k++)
        chain_write(&head, 10, 100 + 10 * k, (float)k, &bytes);
    assert_int_equal(chain_sample_count(head), 1025);
    assert_int_equal(chain_free_before(&head, 5220, &bytes), 0);
    assert_int_equal(chain_free_before(&head, 5221, &bytes), 1);
    assert_int_equal(chain_sample_count(head), 513);
    assert_int_equal(layout_of(head).n, 2);
    assert_int_equal(chain_free_before(&head, 20000, &bytes), 2);
    assert_null(head);
    assert_int_equal(bytes, 0);
}

static void test_extreme_timestamps_rejected(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    assert_int_equal(chain_write(&head, 10, INT64_MAX, 1.0f, &bytes), BUFFER_ERANGE);
    assert_int_equal(chain_write(&head, 10, INT64_MIN, 1.0f, &bytes), BUFFER_ERANGE);
    assert_null(head);
}

static void test_new_head_keeps_the_chain_grid(void **state)
{
    (void)state;
    /* f = 60: first sample at 1000 (start 970, so slots begin at 970 + k*60).
     * A sample just past the full buffer starts a new head at its slot on
     * the same grid, not at ts - 30: no overlap, one phase per chain. */
    struct buffer *head = NULL;
    bytes = 0;
    chain_write(&head, 60, 1000, 1.0f, &bytes);
    int64_t old_end = 970 + 512 * 60; /* 31690 */
    chain_write(&head, 60, old_end + 10, 5.0f, &bytes);
    struct layout l = layout_of(head);
    assert_int_equal(l.b[l.n - 1].start, old_end);
    chain_write(&head, 60, old_end - 10, 4.0f, &bytes); /* last slot of the old buffer */
    l = layout_of(head);
    assert_int_equal(l.b[l.n - 2].len, 512);
    float v[4] = {0};
    assert_int_equal(read_values(head, old_end - 10, old_end - 9, 60, v, 4), 1);
    assert_true(v[0] == 4.0f);
    assert_int_equal(read_values(head, old_end + 10, old_end + 11, 60, v, 4), 1);
    assert_true(v[0] == 5.0f);
    /* far ahead: still on the grid */
    chain_write(&head, 60, old_end + 100000, 6.0f, &bytes);
    l = layout_of(head);
    assert_int_equal((l.b[l.n - 1].start - 970) % 60, 0);
    teardown_chain(&head);
}

/* ---- sealing (the block codec inside buffers) ------------------------------- */

static uint64_t encoded_bytes(const struct buffer *head)
{
    struct layout l = layout_of(head);
    uint64_t n = 0;
    for (size_t i = 0; i < l.n && i < 64; i++)
        n += l.b[i].encoded_bytes;
    return n;
}

static uint32_t raw_slots(const struct buffer *head)
{
    struct layout l = layout_of(head);
    uint32_t n = 0;
    for (size_t i = 0; i < l.n && i < 64; i++)
        n += l.b[i].raw_slots;
    return n;
}

/* A random walk with two decimals, as node collectors send. */
static float gauge(int k)
{
    return (float)((k * 37 % 101) + 1000) / 100.0f;
}

/* Filling in order: each half part is encoded once a write lands beyond
 * it (the second half together with the first, as one part), a complete
 * buffer is encoded whole when the next head starts, and every value reads
 * back bit for bit. */
static void test_in_order_fill_seals(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    /* a quarter part (32 slots) is encoded once writes are 8 slots
     * (SEAL_LAG) beyond it; the plain part never holds more than 40 */
    for (int k = 0; k < 32 + 8; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
    assert_int_equal(raw_slots(head), 40);
    assert_int_equal(encoded_bytes(head), 0);
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 40, gauge(40), &bytes), 0);
    assert_int_equal(raw_slots(head), 9);
    assert_true(encoded_bytes(head) > 0 && encoded_bytes(head) < 32 * 2);
    /* each further quarter is encoded together with those before it */
    for (int quarter = 2; quarter <= 4; quarter++) {
        int upto = 32 * quarter + 8;
        for (int k = upto - 32; k < upto; k++)
            assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
        assert_int_equal(raw_slots(head), 40);
        assert_int_equal(chain_write(&head, 10, 100 + 10 * upto, gauge(upto), &bytes), 0);
        assert_int_equal(raw_slots(head), 9);
        assert_true(encoded_bytes(head) > 0 && encoded_bytes(head) < (uint64_t)(32 * quarter * 2));
    }
    struct layout first = layout_of(head);
    assert_int_equal(first.b[0].sealed_by_encoding[CODEC_DECIMAL], 1);  /* one part of 128 */
    /* three complete buffers, and a head far enough along that its
     * predecessor is complete too */
    enum { N = 3 * BUFFER_CAP + 20 };
    for (int k = 32 * 4 + 8 + 1; k < N; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(l.b[i].raw_slots, 0);
        /* a complete buffer's four parts are merged into one */
        assert_int_equal(l.b[i].sealed_by_encoding[CODEC_DECIMAL], 1);
        assert_true(l.b[i].bytes < BUFFER_CAP * 2);     /* under 2 bytes a sample */
    }
    assert_int_equal(l.b[3].raw_slots, 20);
    assert_int_equal(blocks_bytes(&l), (uint64_t)bytes);
    static float v[N];
    assert_int_equal(read_values(head, 100, 100 + 10 * N, 10, v, N), N);
    for (int k = 0; k < N; k++)
        assert_true(v[k] == gauge(k));
    teardown_chain(&head);
}

/* Late samples and overwrites in encoded parts: they reopen them, read
 * back at once, and a compaction pass encodes them again once quiet. */
static void test_writes_into_sealed_parts(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 2 * BUFFER_CAP + 6; k++)
        if (k % 3 != 1 || k >= 2 * BUFFER_CAP)   /* every third slot missing */
            chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes);
    /* the head is not 8 slots along yet: its predecessor's last quarter
     * is still plain */
    assert_int_equal(raw_slots(head), 6 + 32);
    chain_compact(head, &bytes);                 /* written since: left alone */
    chain_compact(head, &bytes);                 /* quiet: encoded */
    assert_int_equal(raw_slots(head), 6);        /* the head waits one more pass */
    chain_compact(head, &bytes);
    assert_int_equal(raw_slots(head), 0);
    uint64_t sealed_before = encoded_bytes(head);
    /* fill the holes of the oldest buffer late, overwrite one value */
    for (int k = 1; k < BUFFER_CAP; k += 3)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, -gauge(k), &bytes), 0);
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 600, 12345.5f, &bytes), 0);
    assert_true(raw_slots(head) > 6);
    static float v[2 * BUFFER_CAP + 6];
    size_t n = read_values(head, 100, 100 + 10 * (2 * BUFFER_CAP + 6), 10, v,
                           2 * BUFFER_CAP + 6);
    assert_int_equal(n, 2 * BUFFER_CAP + 6);
    for (int k = 0; k < (int)n; k++) {
        float want = k == 600                                ? 12345.5f
                     : k % 3 != 1 || k >= 2 * BUFFER_CAP ? gauge(k)
                     : k < BUFFER_CAP                    ? -gauge(k)
                                                         : NAN;
        if (isnan(want))
            assert_nan(v[k]);
        else
            assert_true(v[k] == want);
    }
    /* first pass: the reopened buffers were written since the last one */
    chain_compact(head, &bytes);
    assert_true(raw_slots(head) > 6);
    /* second pass: quiet now, encoded again (the head too: it went quiet) */
    chain_compact(head, &bytes);
    assert_int_equal(raw_slots(head), 0);
    assert_true(encoded_bytes(head) > sealed_before);   /* more samples than before */
    n = read_values(head, 100, 100 + 10 * (2 * BUFFER_CAP + 6), 10, v, 2 * BUFFER_CAP + 6);
    assert_true(v[1] == -gauge(1) && v[600] == 12345.5f && isnan(v[601]));
    /* a new sample after the head's short last part stays plain by itself
     * (that part is encoded again with the slots after it, once they make
     * a quarter) */
    assert_int_equal(chain_write(&head, 10, 100 + 10 * (2 * BUFFER_CAP + 6), 1.5f, &bytes), 0);
    assert_int_equal(raw_slots(head), 1);
    n = read_values(head, 100 + 10 * (2 * BUFFER_CAP), 100 + 10 * (2 * BUFFER_CAP + 7), 10, v,
                    7);
    assert_int_equal(n, 7);
    assert_true(v[6] == 1.5f && v[0] == gauge(2 * BUFFER_CAP));
    /* that was an append, not a late sample: filling on in order, the
     * head's parts are sealed as they complete */
    for (int k = 2 * BUFFER_CAP + 7; k < 2 * BUFFER_CAP + 400; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
    assert_true(raw_slots(head) <= 32 + 8);
    n = read_values(head, 100 + 10 * (2 * BUFFER_CAP), 100 + 10 * (2 * BUFFER_CAP + 400), 10, v,
                    400);
    assert_int_equal(n, 400);
    for (int k = 0; k < 400; k++)
        assert_true(v[k] == (k == 6 ? 1.5f : gauge(2 * BUFFER_CAP + k)));
    teardown_chain(&head);
}

/* A few stragglers into sealed parts (requests that overlap in time) are
 * re-encoded in place: the buffer stays sealed. Past PATCH_LIMIT (8) of them
 * between two compaction passes the buffer is reopened instead. */
static void test_stragglers_patch_sealed_parts(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    enum { N = BUFFER_CAP + 40 };
    for (int k = 0; k < N; k++)
        if (k != 7 && k != 300)
            assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
    uint32_t raw_before = raw_slots(head);
    assert_int_equal(raw_before, 40);            /* the full buffer is sealed whole */
    /* the two missing samples arrive late, and one value is overwritten */
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 7, gauge(7), &bytes), 0);
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 300, gauge(300), &bytes), 0);
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 0, 99.25f, &bytes), 0);
    assert_int_equal(raw_slots(head), raw_before);
    struct layout l = layout_of(head);
    assert_int_equal(blocks_bytes(&l), (uint64_t)bytes);
    static float v[N];
    assert_int_equal(read_values(head, 100, 100 + 10 * N, 10, v, N), N);
    for (int k = 0; k < N; k++)
        assert_true(v[k] == (k == 0 ? 99.25f : gauge(k)));
    /* many late writes: the buffer is taken as written out of order */
    for (int k = 1; k < 40; k += 2)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, -gauge(k), &bytes), 0);
    assert_true(raw_slots(head) > raw_before);
    assert_int_equal(read_values(head, 100, 100 + 10 * N, 10, v, N), N);
    for (int k = 0; k < N; k++)
        assert_true(v[k] == (k == 0 ? 99.25f : k < 40 && k % 2 ? -gauge(k) : gauge(k)));
    teardown_chain(&head);
}

/* The readable range starts at the first sample; NaN written over it (a
 * missing sample sent as such) moves the start to the next one. */
static void test_range_start_follows_first_sample(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 5; k < 300; k++)
        assert_int_equal(chain_write(&head, 10, 100 + 10 * k, gauge(k), &bytes), 0);
    assert_int_equal(chain_write(&head, 10, 100 + 10 * 3, 1.0f, &bytes), 0);
    int64_t first, end;
    assert_true(chain_read_range(head, INT64_MAX, &first, &end));
    assert_int_equal(first, 130);
    assert_int_equal(chain_write(&head, 10, 130, NAN, &bytes), 0);
    assert_true(chain_read_range(head, INT64_MAX, &first, &end));
    assert_int_equal(first, 150);
    assert_int_equal(end, 100 + 10 * 300 - 5);    /* the upper edge of the last slot */
    teardown_chain(&head);
}

/* Bytes of the one buffer of a chain that holds a single sample: its
 * header, which holds the smallest plain part (4 floats) too. */
static uint64_t one_sample_bytes(void)
{
    struct buffer *head = NULL;
    int64_t b = 0;
    assert_int_equal(chain_write(&head, 60, 1000, 1.5f, &b), 0);
    uint64_t n = (uint64_t)b;
    chain_free_all(&head, &b);
    assert_int_equal(b, 0);
    return n;
}

/* Bytes of a plain part of n floats outside the header. */
static uint64_t plain_bytes(uint32_t n)
{
    return n <= 4 ? 0 : 4 * (uint64_t)n;
}

/* The head grows its plain part in steps of 4 (in the header), 8, 16, 32
 * and 40 floats: a series with a few samples costs a few bytes, each
 * step is counted exactly, and the header is one cache line. */
static void test_head_grows_in_steps(void **state)
{
    (void)state;
    uint64_t base = one_sample_bytes();
    assert_int_equal(base, 64);
    struct buffer *head = NULL;
    bytes = 0;
    static const uint32_t floats_after[] = {
        /* samples written -> floats held plain */
        [1] = 4, [4] = 4, [5] = 8, [8] = 8, [9] = 16, [16] = 16, [17] = 32, [32] = 32,
        [33] = 40, [40] = 40,
    };
    for (int k = 0; k < 40; k++) {
        assert_int_equal(chain_write(&head, 60, 1000 + 60 * k, gauge(k), &bytes), 0);
        struct layout l = layout_of(head);
        assert_int_equal(l.b[0].bytes, (uint64_t)bytes);
        assert_int_equal(l.b[0].raw_slots, k + 1);
        uint32_t want = floats_after[k + 1];
        if (want)
            assert_int_equal(l.b[0].bytes, base + plain_bytes(want));
    }
    /* the 41st sample encodes the first quarter; the plain part keeps its
     * 40 floats until the buffer is sealed whole */
    assert_int_equal(chain_write(&head, 60, 1000 + 60 * 40, gauge(40), &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.b[0].raw_slots, 9);
    uint64_t encoded_room = l.b[0].bytes - (base + plain_bytes(40));
    assert_true(encoded_room >= l.b[0].encoded_bytes &&
                encoded_room < l.b[0].encoded_bytes + ENC_BYTES_OF_A_FEW);
    teardown_chain(&head);
}

/* Late samples and overwrites into a head that holds a few samples: it
 * grows only as far as the slots it spans, and reads back every write. */
static void test_small_head_late_writes_and_overwrites(void **state)
{
    (void)state;
    uint64_t base = one_sample_bytes();
    struct buffer *head = NULL;
    bytes = 0;
    float model[8];
    for (int i = 0; i < 8; i++)
        model[i] = NAN;
    /* slots 2 and 3 first, then slot 0 (before the head: it moves back),
     * then an overwrite of slot 2 and slot 1 between them */
    const struct { int slot; float v; } writes[] = {
        { 3, 3.5f }, { 2, 2.25f }, { 0, 0.125f }, { 2, -7.0f }, { 1, 1e-3f },
    };
    int64_t t0 = 6000;
    for (size_t w = 0; w < sizeof writes / sizeof writes[0]; w++) {
        assert_int_equal(chain_write(&head, 60, t0 + 60 * writes[w].slot, writes[w].v, &bytes), 0);
        model[writes[w].slot] = writes[w].v;
        struct layout l = layout_of(head);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.b[0].bytes, (uint64_t)bytes);
        assert_int_equal(l.b[0].bytes, base);          /* 4 slots fit the smallest plain part */
        float v[4];
        chain_read(head, t0, 60, 4, v);
        for (int i = 0; i < 4; i++) {
            if (isnan(model[i]))
                assert_nan(v[i]);
            else
                assert_true(v[i] == model[i]);
        }
    }
    /* a fifth slot needs the next step */
    assert_int_equal(chain_write(&head, 60, t0 + 60 * 4, 4.0f, &bytes), 0);
    assert_int_equal((uint64_t)bytes, base + plain_bytes(8));
    teardown_chain(&head);
}

/* A head that went quiet partly grown is sealed by compaction: its plain
 * part is freed, it reads back exactly, and a new sample starts a small
 * plain part again. */
static void test_sealing_a_partly_grown_head(void **state)
{
    (void)state;
    uint64_t base = one_sample_bytes();
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 20; k++)
        assert_int_equal(chain_write(&head, 60, 1000 + 60 * k, gauge(k), &bytes), 0);
    assert_int_equal(raw_slots(head), 20);
    /* the first pass finds the head written, the second quiet once */
    assert_int_equal(chain_compact(head, &bytes), 0);
    assert_int_equal(chain_compact(head, &bytes), 0);
    assert_int_equal(chain_compact(head, &bytes), 1);
    struct layout l = layout_of(head);
    assert_int_equal(l.b[0].raw_slots, 0);
    assert_true(l.b[0].encoded_bytes > 0 && l.b[0].encoded_bytes < 20 * 4);
    assert_true(l.b[0].bytes >= base + l.b[0].encoded_bytes &&
                l.b[0].bytes < base + l.b[0].encoded_bytes + ENC_BYTES_OF_A_FEW);
    assert_int_equal(l.b[0].bytes, (uint64_t)bytes);
    uint64_t sealed_bytes = l.b[0].bytes;
    assert_int_equal(chain_write(&head, 60, 1000 + 60 * 20, gauge(20), &bytes), 0);
    l = layout_of(head);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.b[0].raw_slots, 1);
    /* the encoded part takes the header's room: the new plain part is
     * allocated outside */
    assert_int_equal((uint64_t)bytes, sealed_bytes + 4 * 4);
    float v[21];
    assert_int_equal(read_values(head, 1000, 1000 + 60 * 21, 60, v, 21), 21);
    for (int k = 0; k < 21; k++)
        assert_true(v[k] == gauge(k));
    teardown_chain(&head);
}

/* Series restored with one or a few samples cost about what they hold
 * (encoded, no plain part), and take live writes like any head. */
static void test_restore_into_small_heads(void **state)
{
    (void)state;
    uint64_t base = one_sample_bytes();
    for (uint32_t n = 1; n <= 5; n++) {
        struct buffer *head = NULL;
        bytes = 0;
        float values[5] = { 1.5f, NAN, 2.75f, 3.0f, -1.0f };
        values[n - 1] = 9.5f;                          /* the last one is a sample */
        assert_int_equal(chain_load(&head, 60, 1000, values, n, &bytes), 0);
        struct layout l = layout_of(head);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.b[0].raw_slots, 0);
        assert_true(l.b[0].saved);
        assert_int_equal(l.b[0].bytes, (uint64_t)bytes);
        assert_true(l.b[0].bytes <= base + ENC_BYTES_OF_A_FEW);
        assert_int_equal(chain_write(&head, 60, 1000 + 60 * n, 4.5f, &bytes), 0);
        float v[6];
        assert_int_equal(read_values(head, 1000, 1000 + 60 * (n + 1), 60, v, 6), n + 1);
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(values[i]))
                assert_nan(v[i]);
            else
                assert_true(v[i] == values[i]);
        }
        assert_true(v[n] == 4.5f);
        teardown_chain(&head);
    }
}

/* A buffer with room moves back to take an older sample even when its
 * front is encoded. */
static void test_moving_a_sealed_buffer_back(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    for (int k = 0; k < 300; k++)
        chain_write(&head, 10, 10000 + 10 * k, gauge(k), &bytes);
    assert_true(encoded_bytes(head) > 0);
    assert_int_equal(chain_write(&head, 10, 10000 - 50, 7.25f, &bytes), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 1);
    static float v[310];
    assert_int_equal(read_values(head, 10000 - 50, 10000 + 3000, 10, v, 310), 305);
    assert_true(v[0] == 7.25f);
    for (int i = 1; i < 5; i++)
        assert_nan(v[i]);
    for (int k = 0; k < 300; k++)
        assert_true(v[5 + k] == gauge(k));
    teardown_chain(&head);
}

/* Restored series are encoded at once and read back exactly; a write into
 * them works like any other. */
static void test_load_encodes(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    static float values[1200];
    for (int i = 0; i < 1200; i++)
        values[i] = i % 50 == 7 ? NAN : gauge(i);
    assert_int_equal(chain_load(&head, 60, 1000, values, 1200, &bytes), 0);
    assert_int_equal(raw_slots(head), 0);
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 3);
    assert_true(l.b[0].saved && l.b[2].saved);
    static float v[1200];
    assert_int_equal(read_values(head, 1000, 1000 + 60 * 1200, 60, v, 1200), 1200);
    for (int i = 0; i < 1200; i++) {
        if (isnan(values[i]))
            assert_nan(v[i]);
        else
            assert_true(v[i] == values[i]);
    }
    assert_int_equal(chain_write(&head, 60, 1000 + 60 * 7, 3.0f, &bytes), 0);
    assert_int_equal(read_values(head, 1000 + 60 * 7, 1000 + 60 * 8, 60, v, 1), 1);
    assert_true(v[0] == 3.0f);
    l = layout_of(head);
    assert_false(l.b[0].saved);
    teardown_chain(&head);
}

/* Images (native snapshots): a chain with every kind of buffer state
 * (sealed parts of each encoding, a plain tail, a few samples in the
 * header, gaps) exported and imported into an empty chain reads back the
 * same; importing it again replaces each buffer (no growth); an image that
 * overlaps another layout is written sample by sample; damaged images are
 * refused and change nothing. */
static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

struct images {
    uint8_t *data[64];
    size_t len[64];
    size_t count;
};

static int keep_image(void *ctx, const void *image, size_t len)
{
    struct images *im = ctx;
    assert_true(im->count < 64);
    im->data[im->count] = malloc(len);
    memcpy(im->data[im->count], image, len);
    im->len[im->count++] = len;
    return 0;
}

static void test_images_round_trip(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    int64_t bytes = 0;
    const int64_t f = 60, t0 = 1700000000;
    /* 1,300 slots: two full buffers and a tail; decimal walk, a constant
     * stretch, noise, gaps */
    for (int i = 0; i < 1300; i++) {
        if (i % 97 == 5)
            continue;
        float v = i < 400 ? (float)(i % 50) * 0.25f : i < 600 ? 7.0f : test_noise((uint64_t)i);
        assert_int_equal(chain_write(&head, f, t0 + f * i, v, &bytes), 0);
    }
    chain_compact(head, &bytes);
    struct buffer *small = NULL;     /* two samples: held in the header */
    assert_int_equal(chain_write(&small, f, t0, 1.5f, &bytes), 0);
    assert_int_equal(chain_write(&small, f, t0 + f, 2.5f, &bytes), 0);

    struct images im = {0};
    assert_int_equal(chain_export(head, INT64_MIN, keep_image, &im), 0);
    size_t big = im.count;
    assert_int_equal(chain_export(small, INT64_MIN, keep_image, &im), 0);
    assert_true(big >= 3);

    struct buffer *copy = NULL, *copy_small = NULL;
    int64_t copy_bytes = 0;
    uint64_t samples = 0;
    for (size_t i = 0; i < im.count; i++)
        assert_int_equal(chain_import(i < big ? &copy : &copy_small, im.data[i], im.len[i],
                                      &copy_bytes, &samples), 0);
    assert_int_equal(samples, chain_sample_count(head) - 14 /* the gaps */ + 2);
    static float want[1400], got[1400];
    chain_read(head, t0, f, 1400, want);
    chain_read(copy, t0, f, 1400, got);
    for (int i = 0; i < 1400; i++) {
        if (isnan(want[i]))
            assert_nan(got[i]);
        else
            assert_int_equal(bits_of(got[i]), bits_of(want[i]));
    }
    chain_read(copy_small, t0, f, 2, got);
    assert_true(got[0] == 1.5f && got[1] == 2.5f);
    /* importing the same images again replaces each buffer */
    int64_t before = copy_bytes;
    for (size_t i = 0; i < big; i++)
        assert_int_equal(chain_import(&copy, im.data[i], im.len[i], &copy_bytes, &samples), 0);
    assert_int_equal(copy_bytes, before);
    /* an image over data of another layout (a chain started half a
     * buffer later) is merged sample by sample */
    struct buffer *other = NULL;
    assert_int_equal(chain_write(&other, f, t0 + f * 300, 99.0f, &copy_bytes), 0);
    assert_int_equal(chain_import(&other, im.data[0], im.len[0], &copy_bytes, &samples), 0);
    chain_read(other, t0, f, 512, got);
    chain_read(head, t0, f, 512, want);
    for (int i = 0; i < 512; i++)
        if (i != 300 && !isnan(want[i]))
            assert_int_equal(bits_of(got[i]), bits_of(want[i]));
    /* damaged images: every truncation and a flipped length field */
    struct buffer *none = NULL;
    for (size_t cut = 0; cut < im.len[0]; cut += 7)
        assert_int_equal(chain_import(&none, im.data[0], cut, &copy_bytes, &samples),
                         BUFFER_ECORRUPT);
    im.data[0][12] ^= 0x01;     /* len */
    assert_int_equal(chain_import(&none, im.data[0], im.len[0], &copy_bytes, &samples),
                     BUFFER_ECORRUPT);
    assert_null(none);
    for (size_t i = 0; i < im.count; i++)
        free(im.data[i]);
    chain_free_all(&head, &bytes);
    chain_free_all(&small, &bytes);
    chain_free_all(&copy, &copy_bytes);
    chain_free_all(&copy_small, &copy_bytes);
    chain_free_all(&other, &copy_bytes);
    assert_int_equal(bytes, 0);
    assert_int_equal(copy_bytes, 0);
}

/* A full buffer sealed whole is one part (its four parts merged): reads
 * of any range, statistics of whole and partial ranges, late writes into
 * it (patched in place, then reopened past the patch budget) and its image
 * all work on that layout; images written before whole buffers existed
 * (parts of 128 slots, no flag) still load; an image with unknown bits in
 * its cap field, or a whole buffer's image read as parts, is refused. */
static void legacy_image(const float *values, uint32_t n, int64_t start, int64_t f,
                         uint8_t *out, size_t *len)
{
    /* i64 start | u32 frequency | u16 len | u16 cap | u16 sealed | ends |
     * parts of 128 slots (everything sealed) */
    uint32_t parts = (n + 127) / 128;
    uint8_t *p = out;
    memcpy(p, &start, 8);
    uint32_t f32 = (uint32_t)f;
    memcpy(p + 8, &f32, 4);
    uint16_t n16 = (uint16_t)n;
    memcpy(p + 12, &n16, 2);
    memcpy(p + 14, &n16, 2);
    memcpy(p + 16, &n16, 2);
    uint8_t *ends = p + 18, *enc = ends + 2 * parts;
    size_t at = 0;
    for (uint32_t i = 0; i < parts; i++) {
        uint32_t m = n - i * 128 < 128 ? n - i * 128 : 128;
        int rc = codec_encode(values + i * 128, m, enc + at, codec_bound(m));
        assert_true(rc > 0);
        at += (size_t)rc;
        uint16_t end = (uint16_t)at;
        memcpy(ends + 2 * i, &end, 2);
    }
    *len = (size_t)(enc + at - out);
}

/* The chain reads want[from .. from + n) on the grid t0 + i*f: the same
 * values, missing where want is NaN. */
static void check_reads(const struct buffer *head, int64_t t0, int64_t f, size_t from, size_t n,
                        const float *want)
{
    static float got[BUFFER_CAP * 4];
    assert_true(n <= BUFFER_CAP * 4);
    chain_read(head, t0 + (int64_t)from * f, f, n, got);
    for (size_t k = 0; k < n; k++)
        assert_true(isnan(want[from + k]) ? isnan(got[k]) : got[k] == want[from + k]);
}

static void check_stats(const struct buffer *head, int64_t t0, int64_t f, size_t from, size_t n,
                        const float *want)
{
    struct chain_stats st;
    chain_stats(head, t0 + (int64_t)from * f, f, n, &st);
    uint64_t count = 0;
    double sum = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = from; i < from + n; i++) {
        if (isnan(want[i]))
            continue;
        count++;
        sum += want[i];
        lo = want[i] < lo ? want[i] : lo;
        hi = want[i] > hi ? want[i] : hi;
    }
    assert_int_equal(st.count, count);
    assert_true(st.min == lo && st.max == hi);
    assert_true(fabs(st.sum - sum) <= 1e-9 * fabs(sum) + 1e-9);
}

static void test_whole_buffers(void **state)
{
    (void)state;
    struct buffer *head = NULL;
    bytes = 0;
    const int64_t f = 60, t0 = 1700000000 + 30;
    enum { N = 2 * BUFFER_CAP + 100 };
    static float want[N];
    for (int k = 0; k < N; k++) {
        want[k] = k % 41 == 3 ? NAN : gauge(k);
        if (!isnan(want[k]))
            assert_int_equal(chain_write(&head, f, t0 + f * k, want[k], &bytes), 0);
    }
    struct layout l = layout_of(head);
    assert_int_equal(l.n, 3);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(l.b[i].sealed_by_encoding[CODEC_DECIMAL], 1);
        assert_int_equal(l.b[i].raw_slots, 0);
        /* the header and the encoded bytes in an allocation of about
         * their size (less than the allocator's 16 bytes over) */
        assert_true(l.b[i].bytes >= 64 + l.b[i].encoded_bytes &&
                    l.b[i].bytes < 64 + l.b[i].encoded_bytes + 16);
    }
    assert_int_equal(blocks_bytes(&l), (uint64_t)bytes);
    check_reads(head, t0, f, 0, N, want);
    /* partial reads inside a whole part, and across two */
    check_reads(head, t0, f, 300, 400, want);
    check_stats(head, t0, f, 0, BUFFER_CAP, want);          /* from the part's header */
    check_stats(head, t0, f, 0, N, want);
    check_stats(head, t0, f, 17, 300, want);                /* decoded */
    check_stats(head, t0, f, 500, 600, want);

    /* the image of a whole buffer says so, and loads as one part */
    struct images im = {0};
    assert_int_equal(chain_export(head, INT64_MIN, keep_image, &im), 0);
    assert_int_equal(im.count, 3);
    assert_true(im.data[0][15] & 0x80);
    struct buffer *copy = NULL;
    int64_t copy_bytes = 0;
    uint64_t samples = 0;
    for (size_t i = 0; i < im.count; i++)
        assert_int_equal(chain_import(&copy, im.data[i], im.len[i], &copy_bytes, &samples), 0);
    l = layout_of(copy);
    assert_int_equal(l.b[0].sealed_by_encoding[CODEC_DECIMAL], 1);
    check_reads(copy, t0, f, 0, N, want);
    /* read as parts of 128 slots, the whole buffer's image does not add up */
    struct buffer *none = NULL;
    im.data[0][15] &= 0x7f;
    assert_int_equal(chain_import(&none, im.data[0], im.len[0], &copy_bytes, &samples),
                     BUFFER_ECORRUPT);
    /* unknown bits in the cap field */
    im.data[0][15] |= 0x84;
    assert_int_equal(chain_import(&none, im.data[0], im.len[0], &copy_bytes, &samples),
                     BUFFER_ECORRUPT);
    assert_null(none);
    for (size_t i = 0; i < im.count; i++)
        free(im.data[i]);

    /* a legacy image (parts of 128 slots) */
    static uint8_t legacy[18 + 8 + 4 * (1 + 4 * 128)];
    size_t legacy_len;
    legacy_image(want, BUFFER_CAP, t0 - f / 2, f, legacy, &legacy_len);
    struct buffer *old = NULL;
    int64_t old_bytes = 0;
    assert_int_equal(chain_import(&old, legacy, legacy_len, &old_bytes, &samples), 0);
    l = layout_of(old);                     /* merged as it loads */
    assert_int_equal(l.b[0].sealed_by_encoding[CODEC_DECIMAL], 1);
    assert_int_equal(blocks_bytes(&l), (uint64_t)old_bytes);
    check_reads(old, t0, f, 0, BUFFER_CAP, want);
    check_stats(old, t0, f, 0, BUFFER_CAP, want);
    chain_free_all(&old, &old_bytes);
    assert_int_equal(old_bytes, 0);

    /* late writes into the whole buffer: patched in place (one part still) */
    /* (values like the others: a merged part is kept only when smaller) */
    want[3] = gauge(4);
    want[200] = gauge(201);
    assert_int_equal(chain_write(&head, f, t0 + f * 3, want[3], &bytes), 0);
    assert_int_equal(chain_write(&head, f, t0 + f * 200, want[200], &bytes), 0);
    l = layout_of(head);
    assert_int_equal(l.b[0].sealed_by_encoding[CODEC_DECIMAL], 1);
    assert_int_equal(l.b[0].raw_slots, 0);
    /* past the patch budget: reopened, then sealed and merged again once quiet */
    for (int k = 5; k < 5 + 3 * 8; k += 3) {
        want[k] = gauge(k + 1);
        assert_int_equal(chain_write(&head, f, t0 + f * k, want[k], &bytes), 0);
    }
    l = layout_of(head);
    assert_true(l.b[0].raw_slots > 0);
    check_reads(head, t0, f, 0, N, want);
    chain_compact(head, &bytes);
    chain_compact(head, &bytes);
    l = layout_of(head);
    assert_int_equal(l.b[0].raw_slots, 0);
    assert_int_equal(l.b[0].sealed_by_encoding[CODEC_DECIMAL], 1);
    assert_int_equal(blocks_bytes(&l), (uint64_t)bytes);
    check_reads(head, t0, f, 0, N, want);
    check_stats(head, t0, f, 0, N, want);
    chain_free_all(&copy, &copy_bytes);
    assert_int_equal(copy_bytes, 0);
    teardown_chain(&head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_round_trip),
        cmocka_unit_test(test_first_write_defines_grid),
        cmocka_unit_test(test_before_oldest_moves_a_buffer_with_room),
        cmocka_unit_test(test_before_a_full_buffer_prepends_a_block),
        cmocka_unit_test(test_reverse_order_fills_blocks),
        cmocka_unit_test(test_any_order_matches_model),
        cmocka_unit_test(test_nan_fill_and_overwrite),
        cmocka_unit_test(test_capacity_overflow_starts_new_head),
        cmocka_unit_test(test_late_sample_goes_to_older_buffer),
        cmocka_unit_test(test_late_sample_in_gap_inserts_buffer),
        cmocka_unit_test(test_gap_buffer_fills_a_short_gap_exactly),
        cmocka_unit_test(test_gap_reads_nan),
        cmocka_unit_test(test_read_range_examples),
        cmocka_unit_test(test_free_before),
        cmocka_unit_test(test_free_from_old_end),
        cmocka_unit_test(test_extreme_timestamps_rejected),
        cmocka_unit_test(test_new_head_keeps_the_chain_grid),
        cmocka_unit_test(test_in_order_fill_seals),
        cmocka_unit_test(test_writes_into_sealed_parts),
        cmocka_unit_test(test_stragglers_patch_sealed_parts),
        cmocka_unit_test(test_range_start_follows_first_sample),
        cmocka_unit_test(test_head_grows_in_steps),
        cmocka_unit_test(test_small_head_late_writes_and_overwrites),
        cmocka_unit_test(test_sealing_a_partly_grown_head),
        cmocka_unit_test(test_restore_into_small_heads),
        cmocka_unit_test(test_moving_a_sealed_buffer_back),
        cmocka_unit_test(test_load_encodes),
        cmocka_unit_test(test_whole_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
