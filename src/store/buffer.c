/*
 * buffer — see buffer.h. Chains are short (a few buffers per day of data),
 * so every walk here is a plain linked-list walk.
 */
#include "store/buffer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/codec.h"
#include "util/le.h"
#include "util/slab.h"

/* Timestamps beyond this magnitude cannot be stored: slot arithmetic on
 * them could overflow int64. Nothing real is anywhere near (2^60 s). */
#define BUFFER_MAX_ABS_TIME ((int64_t)1 << 60)

/*
 * A buffer's slots [0, sealed_slots) are held encoded (codec.h) in
 * sub-blocks of SUB slots, the last one possibly shorter; enc_end[i] is the
 * end offset in enc of sub-block i (a DECIMAL sub-block carries its own
 * statistics, which chain_stats reads). Slots [sealed_slots, len) are plain
 * floats in raw (raw_cap allocated, grown in steps up to RAW_STEADY as the
 * buffer fills, so a series that holds a few samples costs a few bytes).
 * Only the last sub-block can be short: sealed_slots need not be a
 * multiple of SUB. Sealing on from a short last sub-block encodes it again
 * together with the slots that follow (seal_upto).
 *
 * Sealing: while a buffer fills in order, each quarter of a sub-block is
 * encoded once writes have gone SEAL_LAG slots beyond it (together with
 * the quarters before it in the same sub-block), and a buffer that
 * stopped being the head is sealed whole once the new head has SEAL_LAG
 * slots. A late write into a
 * sealed sub-block (a straggler) re-encodes that one part in place; after
 * PATCH_LIMIT of those between two compaction passes the buffer is taken
 * as written out of order: the next late write decodes the part and every
 * later one back into raw ("reopens" them) and marks the buffer churning,
 * and it is not sealed eagerly again until chain_compact finds it
 * untouched, so data arriving out of order is not encoded again for every
 * sample.
 *
 * Whole buffers: a full buffer sealed whole is merged into one part of
 * all its slots when that is smaller (it nearly always is: three part
 * headers with their statistics fewer, about 60 bytes a buffer). `whole`
 * marks it; every walk over parts takes its part size from part_slots(),
 * so reads, late writes, reopening and images work on either layout.
 */
#define SUB 128
#define SUBS (BUFFER_CAP / SUB)
/* A filling buffer is sealed a quarter part at a time: the first quarter
 * of a part is encoded alone, then again together with each quarter that
 * follows (a part's values compress as one block; the plain part of every
 * series' newest buffer stays small, and across thousands of series that
 * plain part is a good share of the store: 40 floats here against 1.2
 * bytes a sample encoded). Each value is encoded 2.5 times on average. */
#define SEAL_STEP (SUB / 4)
#define RAW_MIN 4
/* Writes this many slots past a quarter before it is encoded: requests
 * that overlap in time deliver a series' samples slightly out of order (a
 * few slots with a few connections), and a part encoded too early would be
 * re-encoded for every straggler. */
#define SEAL_LAG 8
/* The plain part of a buffer filling in order never holds more than this:
 * a quarter part and the lag behind it. It grows in steps up to here and
 * then keeps its size until the buffer is sealed whole (shrinking it after each part
 * would only leave a hole behind it in the heap, which its own growth
 * takes back a few samples later). */
#define RAW_STEADY (SEAL_STEP + SEAL_LAG)
/* The encoded part is allocated in steps of this, the allocator's own
 * granularity: every length gets a block of its size. Steps of 64 bytes (a
 * few size classes that freed blocks would fit again) left more room in
 * holes than they saved: RSS 1.676 against 1.560 bytes a sample on the
 * 256-host benchmark, where every series' newest part grows at the same
 * time. */
#define ENC_STEP 16
/* Late writes into sealed parts that are re-encoded in place between two
 * compaction passes; past that the buffer is taken as written out of
 * order and reopened (its parts decoded back to raw until it is quiet). */
#define PATCH_LIMIT 8
/* first_sample when no slot holds a sample, and when the lowest sample was
 * overwritten by NaN (found again by a scan when a read needs it). */
#define NO_SAMPLE 0x3FE
#define FIRST_UNKNOWN 0x3FF

/* Bytes to allocate for len encoded bytes: the least 16k + 8 >= len. glibc
 * gives a request of 16k + 8 bytes exactly a 16k + 16 byte block (its
 * 8-byte size field included), so nothing of the block is padding. */
static inline size_t enc_cap_for(size_t len)
{
    return len <= ENC_STEP + 8 ? ENC_STEP + 8 : (len - 8 + ENC_STEP - 1) / ENC_STEP * ENC_STEP + 8;
}

_Static_assert(SUB <= CODEC_MAX_VALUES, "a sub-block is one codec block");
_Static_assert(CODEC_RAW == 0 && CODEC_CONST == 1 && CODEC_DECIMAL == 2 && CODEC_BITS == 3 &&
               CHAIN_ENCODINGS == 4,
               "chain encodings are the codec's kinds");

/* The header takes one cache line, and a plain part of up to TINY_RAW
 * floats lives inside it (in the room the encoded part's pointer and ends
 * take once something is encoded): a series holding a few samples costs
 * the header and nothing else. Counts are at most BUFFER_CAP, which fits
 * the 10-bit fields. */
#define TINY_RAW 4

struct buffer {
    struct buffer *prev;     /* older buffer or NULL */
    struct buffer *next;     /* newer buffer or NULL */
    int64_t start;           /* lower edge of slot 0, Unix seconds */
    union {
        struct {             /* while raw != tiny_raw */
            uint8_t *enc;
            uint16_t enc_end[SUBS];
        };
        /* raw points here while raw_cap <= TINY_RAW and nothing is
         * encoded (sealed_slots and enc_cap are 0) */
        float tiny_raw[TINY_RAW];
    };
    float *raw;              /* slots [sealed_slots, len) */
    int32_t frequency;       /* seconds per slot, 1 .. BUFFER_MAX_FREQUENCY */
    uint16_t len;            /* slots written (gaps inside are NaN) */
    uint16_t raw_cap;        /* floats allocated at raw */
    uint16_t sealed_slots;   /* slots held encoded */
    uint16_t enc_cap;        /* bytes allocated at enc (enc_cap_for its bytes) */
    uint16_t cap : 10;       /* slots it can hold */
    uint16_t patches : 4;    /* sealed parts re-encoded for a late write since chain_compact */
    uint16_t whole : 1;      /* the sealed slots are one part (parts of BUFFER_CAP slots) */
    uint16_t first_sample : 10;  /* lowest slot holding a sample, or NO_SAMPLE / FIRST_UNKNOWN */
    uint16_t quiet_passes : 2;   /* chain_compact passes without a write (saturates at 1) */
    uint16_t saved : 1;      /* restored from disk and not written since */
    uint16_t touched : 1;    /* written since the last chain_compact */
    uint16_t churn : 1;      /* a sealed sub-block was reopened: no eager sealing */
    uint16_t prev_done : 1;  /* head only: its predecessor was looked at (sealed) */
};

_Static_assert(sizeof(struct buffer) == 64, "a buffer header is one cache line");
_Static_assert(BUFFER_CAP < NO_SAMPLE && NO_SAMPLE < FIRST_UNKNOWN && FIRST_UNKNOWN < 1024,
               "slot numbers and their markers fit the 10-bit fields");
_Static_assert(PATCH_LIMIT < 16, "patches fits its 4 bits");
_Static_assert(TINY_RAW == RAW_MIN, "the smallest plain part is the one in the header");

/* Slots per sealed part: SUB, or the whole buffer once merged. */
static inline uint32_t part_slots(const struct buffer *b)
{
    return b->whole ? BUFFER_CAP : SUB;
}

static inline bool raw_is_tiny(const struct buffer *b)
{
    return b->raw == b->tiny_raw;
}

static size_t buffer_enc_len(const struct buffer *b)
{
    return b->sealed_slots ? b->enc_end[(b->sealed_slots - 1) / part_slots(b)] : 0;
}

/* Bytes the buffer holds (what the store counts). */
static size_t buffer_bytes(const struct buffer *b)
{
    size_t raw = raw_is_tiny(b) ? 0 : (size_t)b->raw_cap * sizeof(float);
    return sizeof(struct buffer) + b->enc_cap + raw;
}

/* Nominal time of slot 0. */
static inline int64_t buffer_first_time(const struct buffer *b)
{
    return b->start + b->frequency / 2;
}

/* One period after the last written slot's nominal time. */
static inline int64_t buffer_end(const struct buffer *b)
{
    return buffer_first_time(b) + (int64_t)b->len * b->frequency;
}

/* Every buffer header of the process: a store holds one per 512 samples
 * of each series, hundreds of thousands, which the general allocator
 * would each make 16 bytes larger. */
static struct slab buffer_headers = SLAB_INIT(sizeof(struct buffer));

/* Allocates an empty buffer of cap slots; NULL when out of memory. */
static struct buffer *buffer_new(int64_t start, int64_t frequency, uint32_t cap)
{
    struct buffer *b = slab_alloc(&buffer_headers);
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    b->start = start;
    b->frequency = (int32_t)frequency; /* callers keep it within BUFFER_MAX_FREQUENCY */
    b->cap = cap;
    b->first_sample = NO_SAMPLE;
    return b;
}

/* Keeps first_sample right after value was stored at slot idx. */
static void note_first_sample(struct buffer *b, uint32_t idx, float value)
{
    if (!isnan(value)) {
        if (b->first_sample == NO_SAMPLE ||
            (b->first_sample != FIRST_UNKNOWN && idx < b->first_sample))
            b->first_sample = (uint16_t)idx;
    } else if (b->first_sample == idx) {
        b->first_sample = FIRST_UNKNOWN;
    }
}

/* Plain parts of exactly RAW_STEADY floats, the size the plain part of
 * every filling buffer keeps, come from a slab as the headers do: one per
 * series being written, side by side in the order ingest first reached
 * them. Others (smaller while a buffer starts, larger after out-of-order
 * writes) come from malloc; raw_cap tells which. */
static struct slab steady_raws = SLAB_INIT(RAW_STEADY * sizeof(float));

uint64_t chain_pool_bytes(void)
{
    return (uint64_t)slab_page_bytes(&buffer_headers) + (uint64_t)slab_page_bytes(&steady_raws);
}

static float *raw_alloc(uint32_t cap)
{
    return cap == RAW_STEADY ? slab_alloc(&steady_raws) : malloc((size_t)cap * sizeof(float));
}

static void raw_release(float *raw, uint32_t cap)
{
    if (cap == RAW_STEADY)
        slab_free(&steady_raws, raw);
    else
        free(raw);
}

static void buffer_free(struct buffer *b)
{
    if (!raw_is_tiny(b)) {
        free(b->enc);
        raw_release(b->raw, b->raw_cap);
    }
    slab_free(&buffer_headers, b);
}

/* ---- sealing ------------------------------------------------------------------ */

/* Slots of sealed sub-block i. */
static uint32_t sub_len(const struct buffer *b, uint32_t i)
{
    uint32_t part = part_slots(b), first = i * part;
    return b->sealed_slots - first < part ? b->sealed_slots - first : part;
}

/* Decodes sealed sub-block i into out (sub_len values). An encoded block
 * this module wrote always decodes; should memory have been corrupted,
 * the slots read as missing rather than as garbage. */
static void sub_decode(const struct buffer *b, uint32_t i, float *out)
{
    size_t from = i ? b->enc_end[i - 1] : 0;
    uint32_t n = sub_len(b, i);
    if (codec_decode(b->enc + from, b->enc_end[i] - from, n, out) != 0)
        for (uint32_t k = 0; k < n; k++)
            out[k] = NAN;
}

/* The header's room goes back to the encoded part (nothing encoded yet). */
static void header_room_to_encoded(struct buffer *b)
{
    b->enc = NULL;
    memset(b->enc_end, 0, sizeof b->enc_end);
}

/* Moves a plain part held in the header to the heap, into cap floats
 * (>= the raw slots in use): the plain part grows past TINY_RAW, or the
 * encoded part is about to take the header's room. */
static int raw_leave_header(struct buffer *b, uint32_t cap, int64_t *bytes_delta)
{
    float *raw = raw_alloc(cap);
    if (!raw)
        return BUFFER_ENOMEM;
    uint32_t keep = cap < b->raw_cap ? cap : b->raw_cap;
    memcpy(raw, b->tiny_raw, (size_t)keep * sizeof(float));
    header_room_to_encoded(b);
    *bytes_delta += (int64_t)((size_t)cap * sizeof(float));
    b->raw = raw;
    b->raw_cap = (uint16_t)cap;
    return 0;
}

/* Resizes raw to hold `want` floats (>= the raw slots in use). Up to
 * TINY_RAW floats are held in the header while nothing is encoded. */
static int raw_resize(struct buffer *b, uint32_t want, int64_t *bytes_delta)
{
    if (want == b->raw_cap)
        return 0;
    bool fits_header = want > 0 && want <= TINY_RAW && b->enc_cap == 0;
    if (raw_is_tiny(b)) {
        if (fits_header) {
            b->raw_cap = (uint16_t)want;
        } else if (want == 0) {
            header_room_to_encoded(b);
            b->raw = NULL;
            b->raw_cap = 0;
        } else {
            return raw_leave_header(b, want, bytes_delta);
        }
        return 0;
    }
    if (fits_header) {
        /* nothing is encoded: enc is NULL and the header's room is free */
        float *old = b->raw;
        uint32_t keep = want < b->raw_cap ? want : b->raw_cap;
        if (keep)
            memcpy(b->tiny_raw, old, (size_t)keep * sizeof(float));
        raw_release(old, b->raw_cap);
        *bytes_delta -= (int64_t)((size_t)b->raw_cap * sizeof(float));
        b->raw = b->tiny_raw;
        b->raw_cap = (uint16_t)want;
        return 0;
    }
    /* a new allocation and a copy (a plain part is resized a few times in
     * a buffer's life, and the steady size lives in a slab, not realloc's
     * reach) */
    float *raw = NULL;
    if (want) {
        raw = raw_alloc(want);
        if (!raw)
            return BUFFER_ENOMEM;
        uint32_t keep = want < b->raw_cap ? want : b->raw_cap;
        if (keep)
            memcpy(raw, b->raw, (size_t)keep * sizeof(float));
    }
    raw_release(b->raw, b->raw_cap);
    *bytes_delta += ((int64_t)want - (int64_t)b->raw_cap) * (int64_t)sizeof(float);
    b->raw = raw;
    b->raw_cap = (uint16_t)want;
    return 0;
}

/* Room in raw for slot idx (>= sealed_slots), growing geometrically. */
static int raw_reserve(struct buffer *b, uint32_t idx, int64_t *bytes_delta)
{
    uint32_t need = idx - b->sealed_slots + 1;
    if (need <= b->raw_cap)
        return 0;
    uint32_t room = b->cap - b->sealed_slots;
    uint32_t want = b->raw_cap ? b->raw_cap * 2 : RAW_MIN;
    if (b->raw_cap < RAW_STEADY && want > RAW_STEADY)
        want = RAW_STEADY;
    if (want < need)
        want = need;
    if (want > room)
        want = room;
    return raw_resize(b, want, bytes_delta);
}

/* Encodes the raw slots [sealed_slots, upto) as sub-blocks (upto is a
 * multiple of SUB, or len). Leaves the buffer as it was when memory runs
 * out: sealing is an optimisation, never a condition for a write. */
static void seal_upto(struct buffer *b, uint32_t upto, int64_t *bytes_delta)
{
    if (upto <= b->sealed_slots)
        return;
    if (raw_is_tiny(b) && raw_leave_header(b, b->raw_cap, bytes_delta) != 0)
        return;
    uint32_t done = b->sealed_slots, part = part_slots(b);
    /* A short last part (quarters sealed while filling, or what a quiet pass
     * sealed) is encoded again together with the slots that follow it:
     * encoding starts at its first slot and keeps the bytes before it. */
    uint32_t from = done / part * part;
    size_t keep = from ? b->enc_end[from / part - 1] : 0;
    uint16_t ends[SUBS];
    size_t grown = keep;
    /* encode into a scratch area first: the allocation is sized once (a
     * whole buffer's one part fits it too) */
    uint8_t scratch[SUBS * (1 + 4 * SUB)];
    _Static_assert(SUBS * (1 + 4 * SUB) >= 1 + 4 * BUFFER_CAP, "one whole part fits");
    size_t added = 0;
    float merged[BUFFER_CAP];
    for (uint32_t first = from; first < upto; first += part) {
        uint32_t n = upto - first < part ? upto - first : part;
        const float *values = b->raw + (first - done);
        int len = 0;
        if (first < done) {
            /* the short part goes on with the slots after it */
            uint32_t have = done - first;
            size_t at = first ? b->enc_end[first / part - 1] : 0;
            len = codec_extend(b->enc + at, b->enc_end[first / part] - at, have, b->raw,
                               n - have, scratch + added, sizeof scratch - added);
            if (len == CODEC_ECORRUPT) {
                /* (as every read takes it: its slots missing) */
                sub_decode(b, first / part, merged);
                memcpy(merged + have, b->raw, (size_t)(n - have) * sizeof(float));
                values = merged;
                len = 0;
            }
        }
        if (len == 0)
            len = codec_encode(values, n, scratch + added, sizeof scratch - added);
        if (len <= 0)
            return;
        added += (size_t)len;
        grown += (size_t)len;
        ends[first / part] = (uint16_t)grown;
    }
    size_t cap = enc_cap_for(grown);
    if (cap != b->enc_cap) {
        uint8_t *enc = realloc(b->enc, cap);
        if (!enc)
            return;
        b->enc = enc;
        *bytes_delta += (int64_t)cap - (int64_t)b->enc_cap;
        b->enc_cap = (uint16_t)cap;
    }
    memcpy(b->enc + keep, scratch, added);
    uint32_t left = b->len - upto;
    if (left > 0)
        memmove(b->raw, b->raw + (upto - done), (size_t)left * sizeof(float));
    for (uint32_t i = from / part; i * part < upto; i++)
        b->enc_end[i] = ends[i];
    b->sealed_slots = (uint16_t)upto;
    /* the raw part keeps its size (RAW_STEADY) while the buffer fills, goes
     * back to it after out-of-order writes made it larger, and is freed
     * when nothing is left */
    uint32_t want = b->raw_cap;
    if (left == 0)
        want = 0;
    else if (want > RAW_STEADY && left <= RAW_STEADY)
        want = RAW_STEADY;
    if (want < b->raw_cap)
        raw_resize(b, want, bytes_delta);   /* shrinking cannot lose data */
}

/* A full buffer being sealed whole becomes one part of all its slots when
 * that is smaller than its parts: the parts sealed so far and its plain
 * slots are joined (codec_concat, the same bytes as encoding the buffer at
 * once) and its allocation is resized once, to that size. A full buffer
 * only changes again by late writes, which work on either layout. Returns
 * whether it merged (false: nothing changed). */
static bool merge_whole(struct buffer *b, int64_t *bytes_delta)
{
    if (b->whole || b->len < b->cap || b->cap <= SUB)
        return false;           /* (cap > SUB: the plain part is not in the header) */
    const uint8_t *parts[SUBS + 1];
    size_t lens[SUBS + 1];
    uint32_t ns[SUBS + 1], count = 0;
    for (uint32_t i = 0; i * SUB < b->sealed_slots; i++, count++) {
        size_t from = i ? b->enc_end[i - 1] : 0;
        parts[i] = b->enc + from;
        lens[i] = b->enc_end[i] - from;
        ns[i] = sub_len(b, i);
    }
    size_t used = buffer_enc_len(b);
    uint8_t tail[1 + 4 * BUFFER_CAP];
    uint32_t plain = b->len - b->sealed_slots;
    if (plain > 0) {
        int tail_len = codec_encode(b->raw, plain, tail, sizeof tail);
        if (tail_len <= 0)
            return false;
        parts[count] = tail;
        lens[count] = (size_t)tail_len;
        ns[count++] = plain;
        used += (size_t)tail_len;
    }
    uint8_t joined[1 + 4 * BUFFER_CAP];
    const uint8_t *out = joined;
    int len;
    if (count == 1 && plain > 0) {
        out = tail;             /* nothing sealed yet: the one block is it */
        len = (int)lens[0];
    } else {
        len = codec_concat(parts, lens, ns, count, joined, sizeof joined);
        if (len <= 0 || (size_t)len >= used)
            return false;       /* the parts stay: still correct */
    }
    /* Resized where it is, once: the bytes of the parts sealed while the
     * buffer filled are about those of the one part, so the allocation
     * mostly shrinks or grows a little in place. A new allocation would
     * come from the heap of the thread that seals, often not the one that
     * grew the parts, and the old one would stay a hole there. */
    size_t cap = enc_cap_for((size_t)len);
    if (cap <= b->enc_cap)
        memcpy(b->enc, out, (size_t)len);
    uint8_t *enc = realloc(b->enc, cap);
    if (!enc) {
        if (cap > b->enc_cap)
            return false;       /* nothing changed */
        cap = b->enc_cap;       /* keeps the larger block: still correct */
    } else {
        b->enc = enc;
    }
    if (cap > b->enc_cap)
        memcpy(b->enc, out, (size_t)len);
    *bytes_delta += (int64_t)cap - (int64_t)b->enc_cap;
    b->enc_cap = (uint16_t)cap;
    memset(b->enc_end, 0, sizeof b->enc_end);
    b->enc_end[0] = (uint16_t)len;
    b->sealed_slots = b->len;
    b->whole = true;
    if (plain > 0)
        raw_resize(b, 0, bytes_delta);  /* freeing cannot fail */
    return true;
}

static void seal_all(struct buffer *b, int64_t *bytes_delta)
{
    if (!merge_whole(b, bytes_delta))
        seal_upto(b, b->len, bytes_delta);
    b->churn = false;
}

/* Decodes sealed sub-blocks from the one holding slot idx on back into raw:
 * afterwards sealed_slots <= idx and is a multiple of the part size (0
 * for a whole buffer, which is one part). */
static int reopen_from(struct buffer *b, uint32_t idx, int64_t *bytes_delta)
{
    uint32_t from = idx / part_slots(b) * part_slots(b);
    if (from >= b->sealed_slots)
        return 0;
    uint32_t raw_used = b->len - b->sealed_slots;
    uint32_t now_raw = b->len - from;
    uint32_t want = b->raw_cap;
    if (want < now_raw)
        want = now_raw;
    float *raw = raw_alloc(want);
    if (!raw)
        return BUFFER_ENOMEM;
    uint32_t part = part_slots(b);
    for (uint32_t i = from / part; i * part < b->sealed_slots; i++)
        sub_decode(b, i, raw + (i * part - from));
    if (raw_used > 0)
        memcpy(raw + (b->sealed_slots - from), b->raw, (size_t)raw_used * sizeof(float));
    raw_release(b->raw, b->raw_cap);
    b->raw = raw;
    *bytes_delta += ((int64_t)want - (int64_t)b->raw_cap) * (int64_t)sizeof(float);
    b->raw_cap = want;
    b->sealed_slots = (uint16_t)from;
    if (from == 0)
        b->whole = false;       /* (a whole buffer reopens from its slot 0) */
    size_t enc_after = buffer_enc_len(b);
    size_t cap = enc_after ? enc_cap_for(enc_after) : 0;
    if (cap == 0) {
        free(b->enc);
        b->enc = NULL;
    } else if (cap != b->enc_cap) {
        uint8_t *fitted = realloc(b->enc, cap);
        if (fitted)
            b->enc = fitted;
        else
            cap = b->enc_cap;    /* keeps the larger block: still correct */
    }
    *bytes_delta += (int64_t)cap - (int64_t)b->enc_cap;
    b->enc_cap = (uint16_t)cap;
    b->churn = true;
    return 0;
}

/* The value of slot idx < len; cache holds one decoded sub-block. */
struct sub_cache {
    const struct buffer *b;
    uint32_t sub;
    float *values;           /* BUFFER_CAP floats */
};

/* The decoded values of sealed part sub of b, decoded only if the cache
 * does not hold them already. */
static const float *sub_cached(const struct buffer *b, uint32_t sub, struct sub_cache *c)
{
    if (c->b != b || c->sub != sub) {
        sub_decode(b, sub, c->values);
        c->b = b;
        c->sub = sub;
    }
    return c->values;
}

static float buffer_get(const struct buffer *b, uint32_t idx, struct sub_cache *c)
{
    if (idx >= b->sealed_slots)
        return b->raw[idx - b->sealed_slots];
    return sub_cached(b, idx / part_slots(b), c)[idx % part_slots(b)];
}

/* Writes value into sealed slot idx by re-encoding its part in place (a
 * straggler of an otherwise ordered stream: the buffer stays sealed).
 * Returns 0, or BUFFER_ENOMEM with nothing changed. */
static int patch_sealed(struct buffer *b, uint32_t idx, float value, int64_t *bytes_delta)
{
    uint32_t part = part_slots(b), sub = idx / part, n = sub_len(b, sub);
    float values[BUFFER_CAP];
    sub_decode(b, sub, values);
    values[idx % part] = value;
    uint8_t encoded[1 + 4 * BUFFER_CAP];
    int len = codec_encode(values, n, encoded, sizeof encoded);
    if (len <= 0)
        return BUFFER_ENOMEM;
    size_t from = sub ? b->enc_end[sub - 1] : 0, to = b->enc_end[sub];
    size_t total = buffer_enc_len(b) - (to - from) + (size_t)len;
    size_t cap = enc_cap_for(total);
    if (cap > b->enc_cap) {
        uint8_t *enc = realloc(b->enc, cap);
        if (!enc)
            return BUFFER_ENOMEM;
        b->enc = enc;
        *bytes_delta += (int64_t)cap - (int64_t)b->enc_cap;
        b->enc_cap = (uint16_t)cap;
    }
    memmove(b->enc + from + len, b->enc + to, buffer_enc_len(b) - to);
    memcpy(b->enc + from, encoded, (size_t)len);
    for (uint32_t i = sub; i * part < b->sealed_slots; i++)
        b->enc_end[i] = (uint16_t)(b->enc_end[i] + (size_t)len - (to - from));
    b->patches++;
    return 0;
}

/* Stores value at slot idx (< cap), NaN-filling any skipped slots. */
static int buffer_put(struct buffer *b, uint32_t idx, float value, int64_t *bytes_delta)
{
    if (idx < b->sealed_slots && !b->churn && b->patches < PATCH_LIMIT) {
        if (patch_sealed(b, idx, value, bytes_delta) != 0)
            return BUFFER_ENOMEM;
        note_first_sample(b, idx, value);
        b->saved = false;
        b->touched = true;
        b->quiet_passes = 0;
        return 0;
    }
    /* a late write past the patch budget: written out of order */
    if (idx < b->sealed_slots && reopen_from(b, idx, bytes_delta) != 0)
        return BUFFER_ENOMEM;
    /* filling in order: the quarters before the one written are done
     * (sealed before the write, so that the plain part never needs more
     * than RAW_STEADY slots; quarters completed by a jump over a gap are
     * sealed at the next write) */
    if (!b->churn && idx >= SEAL_LAG) {
        uint32_t upto = (idx - SEAL_LAG) / SEAL_STEP * SEAL_STEP;
        if (upto > b->len / SEAL_STEP * SEAL_STEP)
            upto = b->len / SEAL_STEP * SEAL_STEP;
        if (upto > b->sealed_slots)
            seal_upto(b, upto, bytes_delta);
    }
    uint32_t top = idx >= b->len ? idx : (uint32_t)b->len - 1;
    if (raw_reserve(b, top, bytes_delta) != 0)
        return BUFFER_ENOMEM;
    while (b->len < idx)
        b->raw[b->len++ - b->sealed_slots] = NAN;
    b->raw[idx - b->sealed_slots] = value;
    if (idx >= b->len)
        b->len = idx + 1;
    note_first_sample(b, idx, value);
    b->saved = false;
    b->touched = true;
    b->quiet_passes = 0;
    return 0;
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
    int64_t delta = (int64_t)sizeof(struct buffer);
    if (buffer_put(b, idx, value, &delta) != 0) {
        buffer_free(b);
        return NULL;
    }
    *bytes_delta += delta;
    b->prev = prev;
    b->next = next;
    if (prev)
        prev->next = b;
    if (next)
        next->prev = b;
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
    /* Overlaps are shorter than the newer buffer's first slot: a time past
     * it is b's without a look at the older buffer (another cache miss on
     * every write). */
    while (b->prev && t < b->start + b->frequency && t < buffer_coverage_end(b->prev))
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
        /* the samples move: everything goes back to raw first */
        if (reopen_from(b, 0, bytes_delta) != 0 ||
            raw_reserve(b, b->len + (uint32_t)k - 1, bytes_delta) != 0)
            return BUFFER_ENOMEM;
        memmove(b->raw + k, b->raw, (size_t)b->len * sizeof(float));
        b->raw[0] = value;
        for (int64_t i = 1; i < k; i++)
            b->raw[i] = NAN;
        b->start -= k * f;
        b->len += (uint32_t)k;
        if (b->first_sample < NO_SAMPLE)
            b->first_sample = (uint16_t)(b->first_sample + k);
        note_first_sample(b, 0, value);
        b->saved = false;
        b->touched = true;
        b->quiet_passes = 0;
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
        int rc = buffer_put(b, (uint32_t)idx, value, bytes_delta);
        /* the head has moved on: its predecessor is complete (looked at
         * once, not at every write: it is another cache line) */
        if (rc == 0 && !b->prev_done && idx >= SEAL_LAG && b == *head) {
            struct buffer *p = b->prev;
            if (p && !p->churn && p->sealed_slots < p->len)
                seal_all(p, bytes_delta);
            b->prev_done = true;
        }
        return rc;
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
        *bytes_delta -= (int64_t)buffer_bytes(b);
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

/* Asks for the first bytes of b's sealed parts and of its plain part: a
 * read of the buffer follows, and these are a cache miss each. */
static void prefetch_parts(const struct buffer *b)
{
    for (uint32_t i = 0; i * part_slots(b) < b->sealed_slots; i++)
        __builtin_prefetch(b->enc + (i ? b->enc_end[i - 1] : 0));
    if (b->len > b->sealed_slots)
        __builtin_prefetch(b->raw);
}

void chain_prefetch(const struct buffer *const *heads, size_t count, int64_t from, int64_t to)
{
    enum { BATCH = 64 };
    const struct buffer *at[BATCH];
    for (size_t base = 0; base < count; base += BATCH) {
        size_t n = count - base < BATCH ? count - base : BATCH;
        for (size_t i = 0; i < n; i++)
            at[i] = heads[base + i];
        /* each round reads one header per chain: the loads of a round do
         * not depend on each other, so their misses overlap */
        for (bool any = true; any;) {
            any = false;
            for (size_t i = 0; i < n; i++) {
                const struct buffer *b = at[i];
                if (!b)
                    continue;
                if (b->prev)
                    __builtin_prefetch(b->prev);
                if (b->start < to && buffer_coverage_end(b) > from)
                    prefetch_parts(b);
                at[i] = b->prev;
                any = true;
            }
        }
    }
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
     * sample, as it does when slot 0 holds one. */
    float values[BUFFER_CAP];
    struct sub_cache cache = { NULL, 0, values };
    for (const struct buffer *b = oldest; b; b = b->next) {
        uint32_t i = b->first_sample;
        if (i == FIRST_UNKNOWN)
            for (i = 0; i < b->len && isnan(buffer_get(b, i, &cache)); i++)
                ;
        if (i < b->len) {
            *first = buffer_first_time(b) + (int64_t)i * b->frequency;
            *end = last->start + (int64_t)last->len * last->frequency;
            return true;
        }
        if (b == last)
            break;
    }
    return false;
}

/* Copies slots [idx, idx + count) of b (all < cap) into out: decoded
 * parts, plain floats, NaN past len. cache keeps the last decoded part. */
static void buffer_copy(const struct buffer *b, uint32_t idx, uint32_t count, float *out,
                        struct sub_cache *cache)
{
    uint32_t part = part_slots(b);
    while (count > 0) {
        uint32_t n;
        if (idx >= b->len) {
            for (n = 0; n < count; n++)
                out[n] = NAN;
        } else if (idx >= b->sealed_slots) {
            n = b->len - idx < count ? b->len - idx : count;
            memcpy(out, b->raw + (idx - b->sealed_slots), (size_t)n * sizeof(float));
        } else if (idx % part == 0 && count >= sub_len(b, idx / part)) {
            /* a whole part: decoded where it is wanted */
            n = sub_len(b, idx / part);
            sub_decode(b, idx / part, out);
        } else {
            uint32_t sub = idx / part;
            uint32_t end = sub * part + sub_len(b, sub);
            n = end - idx < count ? end - idx : count;
            memcpy(out, sub_cached(b, sub, cache) + (idx - sub * part), (size_t)n * sizeof(float));
        }
        idx += n;
        count -= n;
        out += n;
    }
}

/*
 * The walk of a read at t0, t0 + step, ... (n times): calls visit for each
 * run of slots [idx, idx + run) of buffer b that the read takes in order
 * (with step equal to b's frequency a run is as long as b allows, else one
 * slot), and with b NULL for a time no buffer holds (one point). k is the
 * index of the run's first point. chain_read and chain_stats both walk
 * this way, so they see the same slots.
 */
typedef void (*walk_fn)(void *ctx, const struct buffer *b, uint32_t idx, uint32_t run, size_t k);

static void chain_walk(const struct buffer *head, int64_t t0, int64_t step, size_t n,
                       walk_fn visit, void *ctx)
{
    const struct buffer *b = head ? chain_owner(head, t0) : NULL;
    int64_t t = t0;
    size_t k = 0;
    while (k < n) {
        if (!b || t < b->start) {
            visit(ctx, NULL, 0, 1, k++);
            t += step;
            continue;
        }
        int64_t idx = (t - b->start) / b->frequency;
        if (idx >= b->cap) {
            b = b->next;
            continue;
        }
        uint32_t run = 1;
        if (step == b->frequency) {
            run = b->cap - (uint32_t)idx;
            if (run > n - k)
                run = (uint32_t)(n - k);
        }
        visit(ctx, b, (uint32_t)idx, run, k);
        k += run;
        t += (int64_t)run * step;
    }
}

struct read_walk {
    float *out;
    struct sub_cache cache;
};

static void read_visit(void *ctx, const struct buffer *b, uint32_t idx, uint32_t run, size_t k)
{
    struct read_walk *w = ctx;
    if (!b)
        w->out[k] = NAN;
    else
        buffer_copy(b, idx, run, w->out + k, &w->cache);
}

void chain_read(const struct buffer *head, int64_t t0, int64_t step, size_t n, float *out)
{
    float values[BUFFER_CAP];
    struct read_walk w = { out, { NULL, 0, values } };
    chain_walk(head, t0, step, n, read_visit, &w);
}

/* Adds the samples of slots [idx, idx + count) of b (all < cap) to acc:
 * whole sealed parts from their statistics, the rest value by value. */
static void buffer_stats(const struct buffer *b, uint32_t idx, uint32_t count,
                         struct codec_stats *acc, struct sub_cache *cache)
{
    if (idx >= b->len)
        return;
    if (count > b->len - idx)
        count = b->len - idx;
    if (b->next)
        __builtin_prefetch(b->next);
    uint32_t part = part_slots(b);
    while (count > 0) {
        uint32_t n;
        if (idx >= b->sealed_slots) {
            n = count;
            codec_stats_values(b->raw + (idx - b->sealed_slots), n, acc);
        } else if (idx % part == 0 && count >= sub_len(b, idx / part)) {
            uint32_t sub = idx / part;
            size_t from = sub ? b->enc_end[sub - 1] : 0;
            n = sub_len(b, sub);
            /* a block that does not read (memory corrupted) holds nothing,
             * as sub_decode has it */
            (void)codec_stats(b->enc + from, b->enc_end[sub] - from, n, acc);
        } else {
            uint32_t sub = idx / part;
            uint32_t end = sub * part + sub_len(b, sub);
            n = end - idx < count ? end - idx : count;
            codec_stats_values(sub_cached(b, sub, cache) + (idx - sub * part), n, acc);
        }
        idx += n;
        count -= n;
    }
}

struct stats_walk {
    struct codec_stats acc;
    struct sub_cache cache;
};

static void stats_visit(void *ctx, const struct buffer *b, uint32_t idx, uint32_t run, size_t k)
{
    struct stats_walk *w = ctx;
    (void)k;
    if (b)
        buffer_stats(b, idx, run, &w->acc, &w->cache);
}

void chain_stats(const struct buffer *head, int64_t t0, int64_t step, size_t n,
                 struct chain_stats *out)
{
    float values[BUFFER_CAP];
    struct stats_walk w = { CODEC_STATS_EMPTY, { NULL, 0, values } };
    chain_walk(head, t0, step, n, stats_visit, &w);
    *out = (struct chain_stats){ w.acc.count, w.acc.sum, w.acc.min, w.acc.max };
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
        int64_t delta = (int64_t)sizeof(struct buffer);
        if (!b || raw_resize(b, count, &delta) != 0) {
            if (b)
                buffer_free(b);
            return BUFFER_ENOMEM;
        }
        memcpy(b->raw, values + first, (size_t)count * sizeof(float));
        b->len = count;
        for (uint32_t i = count; i-- > 0;)
            note_first_sample(b, i, values[first + i]);
        seal_all(b, &delta);            /* restored data is cold */
        b->saved = true;
        b->prev = *head;
        if (b->prev)
            b->prev->next = b;
        *head = b;
        *bytes_delta += delta;
    }
    return 0;
}

const char *chain_encoding_name(int encoding)
{
    return codec_kind_name(encoding);
}

static void block_info(const struct buffer *b, struct chain_block *out)
{
    *out = (struct chain_block){ .start = b->start, .frequency = b->frequency, .len = b->len,
                                 .cap = b->cap, .bytes = buffer_bytes(b), .saved = b->saved,
                                 .raw_slots = b->len - b->sealed_slots,
                                 .encoded_bytes = buffer_enc_len(b) };
    for (uint32_t i = 0; i * part_slots(b) < b->sealed_slots; i++) {
        size_t from = i ? b->enc_end[i - 1] : 0;
        int kind = codec_kind_of(b->enc + from, b->enc_end[i] - from);
        if (kind >= 0 && kind < CHAIN_ENCODINGS)
            out->sealed_by_encoding[kind]++;
    }
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
    float values[BUFFER_CAP];
    struct sub_cache cache = { NULL, 0, values };
    for (const struct buffer *b = chain_oldest((struct buffer *)head); b; b = b->next) {
        int64_t t0 = buffer_first_time(b);
        for (uint32_t i = 0; i < b->len; i++) {
            int64_t t = t0 + (int64_t)i * b->frequency;
            if (t < from)
                continue;
            float v = buffer_get(b, i, &cache);
            if (isnan(v))
                continue;
            int rc = fn(ctx, t, v);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

size_t chain_compact(struct buffer *head, int64_t *bytes_delta)
{
    size_t sealed = 0;
    for (struct buffer *b = head; b; b = b->prev) {
        b->patches = 0;
        if (b->touched) {
            b->touched = false;
            continue;
        }
        /* the head may get its next sample any time: it is sealed only
         * after two quiet passes */
        if (b == head && b->quiet_passes < 1) {
            b->quiet_passes++;
            continue;
        }
        if (b->sealed_slots < b->len) {
            seal_all(b, bytes_delta);
            sealed++;
        }
        b->churn = false;
    }
    return sealed;
}

/* ---- images (native snapshots) ------------------------------------------------ */

/*
 * A buffer's image is its state as bytes, little-endian:
 *   i64 start | u32 frequency | u16 len | u16 cap | u16 sealed_slots |
 *   parts x u16 enc_end (parts = sealed sub-blocks) | the encoded bytes |
 *   (len - sealed_slots) x u32 float bits of the plain part
 * so a snapshot writes and loads sealed data without decoding it. The
 * cap field's top bit (IMAGE_WHOLE) says the sealed slots are one part
 * (a whole buffer); otherwise parts are of SUB slots. Images written
 * before whole buffers existed never have it set.
 */
#define IMAGE_HEADER 18
#define IMAGE_WHOLE 0x8000u
#define IMAGE_CAP_MASK 0x3FFu

struct image_view {
    int64_t start;
    int64_t frequency;
    uint32_t len, cap, sealed, parts;
    uint32_t part;              /* slots per part */
    bool whole;
    uint16_t enc_end[SUBS];
    const uint8_t *enc;
    size_t enc_len;
    const uint8_t *raw;
    uint64_t present;           /* slots holding a sample */
};

static size_t image_size(const struct buffer *b)
{
    uint32_t parts = (b->sealed_slots + part_slots(b) - 1) / part_slots(b);
    return IMAGE_HEADER + 2 * (size_t)parts + buffer_enc_len(b) +
           4 * (size_t)(b->len - b->sealed_slots);
}

static void image_write(const struct buffer *b, uint8_t *p)
{
    uint32_t parts = (b->sealed_slots + part_slots(b) - 1) / part_slots(b);
    le_put(p, (uint64_t)b->start, 8);
    le_put(p + 8, (uint32_t)b->frequency, 4);
    le_put(p + 12, b->len, 2);
    le_put(p + 14, b->cap | (b->whole ? IMAGE_WHOLE : 0), 2);
    le_put(p + 16, b->sealed_slots, 2);
    p += IMAGE_HEADER;
    for (uint32_t i = 0; i < parts; i++, p += 2)
        le_put(p, b->enc_end[i], 2);
    size_t enc = buffer_enc_len(b);
    if (enc)
        memcpy(p, b->enc, enc);
    p += enc;
    for (uint32_t i = b->sealed_slots; i < b->len; i++, p += 4) {
        uint32_t bits;
        memcpy(&bits, &b->raw[i - b->sealed_slots], 4);
        le_put(p, bits, 4);
    }
}

int chain_export(const struct buffer *head, int64_t from, chain_image_fn fn, void *ctx)
{
    uint8_t *scratch = NULL;
    size_t scratch_cap = 0;
    int rc = 0;
    for (const struct buffer *b = chain_oldest((struct buffer *)head); b && rc == 0;
         b = b->next) {
        if (b->len == 0 || buffer_end(b) <= from)
            continue;
        size_t size = image_size(b);
        if (size > scratch_cap) {
            uint8_t *grown = realloc(scratch, size);
            if (!grown) {
                rc = BUFFER_ENOMEM;
                break;
            }
            scratch = grown;
            scratch_cap = size;
        }
        image_write(b, scratch);
        rc = fn(ctx, scratch, size);
    }
    free(scratch);
    return rc;
}

/* Parses and checks an image: every field in range, the parts' ends
 * increasing, each part a block of its slot count that the codec accepts,
 * the length exact. */
static int image_parse(const void *image, size_t size, struct image_view *v)
{
    const uint8_t *p = image;
    if (size < IMAGE_HEADER)
        return BUFFER_ECORRUPT;
    v->start = (int64_t)le_get(p, 8);
    v->frequency = (int64_t)le_get(p + 8, 4);
    v->len = (uint32_t)le_get(p + 12, 2);
    uint32_t cap_field = (uint32_t)le_get(p + 14, 2);
    v->sealed = (uint32_t)le_get(p + 16, 2);
    if ((cap_field & ~(IMAGE_WHOLE | IMAGE_CAP_MASK)) != 0)
        return BUFFER_ECORRUPT;
    v->cap = cap_field & IMAGE_CAP_MASK;
    v->whole = (cap_field & IMAGE_WHOLE) != 0;
    v->part = v->whole ? BUFFER_CAP : SUB;
    if (v->frequency < 1 || v->frequency > BUFFER_MAX_FREQUENCY || v->cap == 0 ||
        v->cap > BUFFER_CAP || v->len == 0 || v->len > v->cap || v->sealed > v->len ||
        v->start > BUFFER_MAX_ABS_TIME || v->start < -BUFFER_MAX_ABS_TIME)
        return BUFFER_ECORRUPT;
    v->parts = (v->sealed + v->part - 1) / v->part;
    if (size < IMAGE_HEADER + 2 * (size_t)v->parts)
        return BUFFER_ECORRUPT;
    const uint8_t *ends = p + IMAGE_HEADER;
    size_t prev = 0;
    for (uint32_t i = 0; i < v->parts; i++) {
        v->enc_end[i] = (uint16_t)le_get(ends + 2 * i, 2);
        if (v->enc_end[i] <= prev)
            return BUFFER_ECORRUPT;
        prev = v->enc_end[i];
    }
    v->enc_len = prev;
    v->enc = ends + 2 * (size_t)v->parts;
    size_t want = IMAGE_HEADER + 2 * (size_t)v->parts + v->enc_len + 4 * (size_t)(v->len - v->sealed);
    if (size != want)
        return BUFFER_ECORRUPT;
    v->raw = v->enc + v->enc_len;
    /* every part is checked (lengths and header, no decoding) and its
     * samples counted */
    v->present = 0;
    for (uint32_t i = 0; i < v->parts; i++) {
        size_t from = i ? v->enc_end[i - 1] : 0;
        uint32_t n = v->sealed - i * v->part < v->part ? v->sealed - i * v->part : v->part, m;
        if (codec_count(v->enc + from, v->enc_end[i] - from, n, &m) != 0)
            return BUFFER_ECORRUPT;
        v->present += m;
    }
    for (uint32_t i = v->sealed; i < v->len; i++) {
        uint32_t bits = (uint32_t)le_get(v->raw + 4 * (size_t)(i - v->sealed), 4);
        v->present += (bits & 0x7f800000u) != 0x7f800000u || (bits & 0x7fffffu) == 0;
    }
    return 0;
}

/* The values of a parsed image (v->len of them). */
static void image_values(const struct image_view *v, float *out)
{
    for (uint32_t i = 0; i < v->parts; i++) {
        size_t from = i ? v->enc_end[i - 1] : 0;
        uint32_t n = v->sealed - i * v->part < v->part ? v->sealed - i * v->part : v->part;
        if (codec_decode(v->enc + from, v->enc_end[i] - from, n, out + i * v->part) != 0)
            for (uint32_t k = 0; k < n; k++)
                out[i * v->part + k] = NAN;
    }
    for (uint32_t i = v->sealed; i < v->len; i++) {
        uint32_t bits = (uint32_t)le_get(v->raw + 4 * (size_t)(i - v->sealed), 4);
        memcpy(&out[i], &bits, 4);
    }
}

int chain_image_values(const void *image, size_t size, int64_t *start, int64_t *frequency,
                       float *values, uint32_t *n)
{
    struct image_view v;
    int rc = image_parse(image, size, &v);
    if (rc != 0)
        return rc;
    image_values(&v, values);
    *start = v.start + v.frequency / 2;
    *frequency = v.frequency;
    *n = v.len;
    return 0;
}

/* A buffer holding exactly the image's state. */
static struct buffer *buffer_from_image(const struct image_view *v, int64_t *bytes_delta)
{
    struct buffer *b = buffer_new(v->start, v->frequency, v->cap);
    if (!b)
        return NULL;
    int64_t delta = (int64_t)sizeof(struct buffer);
    uint32_t plain = v->len - v->sealed;
    if (v->parts) {
        size_t cap = enc_cap_for(v->enc_len);
        uint8_t *enc = malloc(cap);
        if (!enc) {
            slab_free(&buffer_headers, b);
            return NULL;
        }
        memcpy(enc, v->enc, v->enc_len);
        /* the header's room now holds the encoded part's pointer and ends */
        b->raw = NULL;
        b->enc = enc;
        memcpy(b->enc_end, v->enc_end, sizeof b->enc_end);
        b->enc_cap = (uint16_t)cap;
        b->sealed_slots = (uint16_t)v->sealed;
        b->whole = v->whole;
        delta += (int64_t)cap;
    }
    if (plain && raw_resize(b, plain, &delta) != 0) {
        buffer_free(b);
        return NULL;
    }
    for (uint32_t i = 0; i < plain; i++) {
        uint32_t bits = (uint32_t)le_get(v->raw + 4 * (size_t)i, 4);
        memcpy(&b->raw[i], &bits, 4);
    }
    b->len = (uint16_t)v->len;
    b->first_sample = FIRST_UNKNOWN;
    b->saved = true;
    b->prev_done = true;
    *bytes_delta += delta;
    return b;
}

int chain_import(struct buffer **head, const void *image, size_t size, int64_t *bytes_delta,
                 uint64_t *samples)
{
    struct image_view v;
    int rc = image_parse(image, size, &v);
    if (rc != 0)
        return rc;
    struct buffer *h = *head;
    struct buffer *same = h;
    while (same && same->start > v.start)
        same = same->prev;
    bool replace = same && same->start == v.start && same->frequency == v.frequency &&
                   same->cap == v.cap;
    bool after = !h || buffer_coverage_end(h) <= v.start;
    if (after || replace) {
        /* the common case: whole buffers in order, or a newer copy of one */
        struct buffer *b = buffer_from_image(&v, bytes_delta);
        if (!b)
            return BUFFER_ENOMEM;
        /* a full buffer in parts (written before whole buffers existed)
         * is merged as a live one is */
        merge_whole(b, bytes_delta);
        if (replace) {
            b->prev = same->prev;
            b->next = same->next;
            if (b->prev)
                b->prev->next = b;
            if (b->next)
                b->next->prev = b;
            else
                *head = b;
            *bytes_delta -= (int64_t)buffer_bytes(same);
            buffer_free(same);
        } else {
            b->prev = h;
            if (h)
                h->next = b;
            *head = b;
        }
        *samples += v.present;
        return 0;
    }
    /* overlapping data of another layout: written sample by sample */
    float values[BUFFER_CAP];
    image_values(&v, values);
    int64_t t0 = v.start + v.frequency / 2;
    for (uint32_t i = 0; i < v.len; i++) {
        if (isnan(values[i]))
            continue;
        rc = chain_write(head, v.frequency, t0 + (int64_t)i * v.frequency, values[i],
                         bytes_delta);
        if (rc != 0)
            return rc;
    }
    *samples += v.present;
    return 0;
}
