/*
 * ingest — line protocol -> store writes (see ingest.h).
 *
 * Decisions not spelled out in the header:
 *  - Precision by magnitude (INGEST_PRECISION_AUTO): |t| < 1e11 is seconds
 *    (1e11 s is the year 5138), < 1e14 milliseconds, < 1e17 microseconds,
 *    anything larger nanoseconds. Every such value is the same instant
 *    range (1973..5138) in its unit, so current data of any precision is
 *    classified right; only millisecond-or-finer stamps before 1973 are
 *    taken for a coarser unit. Conversion to seconds floors.
 *  - Tag mapping (docs/line-protocol.md, "From a line to a series"): `type` + `type-id`
 *    (concatenated in that order whatever the tag order; repeated tags are
 *    concatenated as upstream does), the subtype prefix from `stype` (the
 *    cc-specifications name) or `subtype` (the key upstream's code reads)
 *    plus `stype-id`. `type=node` puts the sample at host level.
 *  - Several `value` fields: the last one wins (upstream).
 *  - future_tolerance < 0 disables the future check; max_line_length 0
 *    means no line limit.
 *  - max_new_levels: a line whose cluster/host/type levels do not exist yet
 *    is rejected when creating them would exceed the batch's budget; the
 *    existence of the missing levels is checked first, so nothing is
 *    created for a rejected line.
 */
#include "ingest.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"
#include "persist/checkpoint.h"
#include "store/level.h"
#include "util/hash.h"
#include "util/le.h"
#include "util/names.h"

#define INGEST_KEPT_ERRORS 5
#define INGEST_ERROR_MAX 400
#define INGEST_METRIC_CACHE 128
/* Entries of the child cache (a power of two): collectors send each metric
 * for every hwthread of a host in turn, so the levels of one host are
 * visited round-robin; 1,024 entries hold a host's hwthreads, sockets and
 * GPUs with few collisions. */
#define INGEST_CHILD_CACHE_BITS 10
#define INGEST_CHILD_CACHE (1u << INGEST_CHILD_CACHE_BITS)

/* Result of resolving a line's levels: the line is rejected with a message. */
#define INGEST_REJECT 1

struct ingest_name {
    char buf[LEVEL_MAX_NAME];
    size_t len;
    bool too_long;
};

struct ingest_batch {
    struct store *store;
    struct ingest_options opts;
    char *default_cluster;
    size_t default_cluster_len;

    struct lp_reader reader;
    char *scratch;
    size_t scratch_cap;
    struct lp_line line;
    struct lp_memo memo;             /* the last timestamp (lineproto.h) */

    struct ingest_result res;
    struct ingest_result flushed;  /* part of res already added to the totals */
    unsigned new_levels;
    bool failed;

    /* WAL records of the accepted samples, written at every host release. */
    struct checkpoint_batch *wal;
    bool persist_failed;

    /* Host cache: the host write-locked for the current run of lines. */
    bool locked;
    struct store_host host;
    char cluster[LEVEL_MAX_NAME];
    size_t cluster_len;
    char hostname[LEVEL_MAX_NAME];
    size_t host_len;

    /* Child cache: type/subtype levels below the locked host, found by the
     * hash of their names and checked against the levels' own names. An
     * entry is valid while its gen is child_gen: releasing the host lock
     * (after which levels may go) moves child_gen on. */
    uint32_t child_gen;
    struct child_entry {
        struct level *levels[2];    /* the type level, and the subtype level at depth 2 */
        uint32_t gen;
        uint32_t depth;
    } child_cache[INGEST_CHILD_CACHE];

    /* Metric cache: the last measurement (raw bytes) and its index. */
    char metric_raw[INGEST_METRIC_CACHE];
    size_t metric_raw_len;          /* 0 = empty cache */
    int metric_index;
    bool metric_raw_plain;          /* no backslash in it (ingest_same_measurement) */

    /* Whether the cluster of the last budget check exists (see
     * ingest_cluster_exists); invalidated whenever levels are created. */
    bool cluster_checked;
    bool cluster_found;
    char checked_cluster[LEVEL_MAX_NAME];
    size_t checked_cluster_len;

    unsigned kept;
    char errors[INGEST_KEPT_ERRORS][INGEST_ERROR_MAX];
    char *error_text;
    size_t error_text_cap;
};

static _Atomic uint64_t total_lines, total_accepted, total_rejected, total_ignored;

/* ---- small helpers ------------------------------------------------------ */

void ingest_options_from_config(const struct ccms_config *cfg, int64_t now,
                                struct ingest_options *out)
{
    *out = (struct ingest_options){
        .precision = INGEST_PRECISION_AUTO,
        .now = now,
        .max_line_length = cfg->max_line_length > 0 ? (size_t)cfg->max_line_length : SIZE_MAX,
        .max_new_levels = cfg->max_new_levels > 0 && cfg->max_new_levels <= UINT32_MAX
                              ? (unsigned)cfg->max_new_levels : 0,
        .future_tolerance = cfg->future_tolerance_seconds,
        .retention = cfg->retention_seconds,
    };
}

int ingest_parse_precision(const char *text, enum ingest_precision *out)
{
    if (!text)
        return -1;
    if (!strcmp(text, "s"))
        *out = INGEST_PRECISION_S;
    else if (!strcmp(text, "ms"))
        *out = INGEST_PRECISION_MS;
    else if (!strcmp(text, "us") || !strcmp(text, "u"))
        *out = INGEST_PRECISION_US;
    else if (!strcmp(text, "ns") || !strcmp(text, "n"))
        *out = INGEST_PRECISION_NS;
    else
        return -1;
    return 0;
}

static int64_t ingest_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

static int64_t ingest_to_seconds(int64_t t, enum ingest_precision p)
{
    if (p == INGEST_PRECISION_AUTO) {
        if (t > -100000000000LL && t < 100000000000LL)
            p = INGEST_PRECISION_S;
        else if (t > -100000000000000LL && t < 100000000000000LL)
            p = INGEST_PRECISION_MS;
        else if (t > -100000000000000000LL && t < 100000000000000000LL)
            p = INGEST_PRECISION_US;
        else
            p = INGEST_PRECISION_NS;
    }
    switch (p) {
    case INGEST_PRECISION_MS: return ingest_floor_div(t, 1000);
    case INGEST_PRECISION_US: return ingest_floor_div(t, 1000000);
    case INGEST_PRECISION_NS: return ingest_floor_div(t, 1000000000);
    default: return t;
    }
}

/* Whether a[0..alen) and b[0..blen) hold the same bytes. Called several
 * times a line (host, cluster, metric, level names of 4 to 16 bytes):
 * le_same_bytes compares those by words instead of by a call. */
static inline __attribute__((always_inline)) bool ingest_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && le_same_bytes(a, b, alen);
}

#define KEY_IS(k, lit) ingest_eq((k).ptr, (k).len, lit, sizeof(lit) - 1)

/* Quotes a name for an error message (shortened, bytes < 0x20 etc. escaped). */
static void ingest_quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0, max = 64;
    bool cut = n > max;
    if (cut)
        n = max;
    dst[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    if (cut && o + 5 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

static void ingest_name_append(struct ingest_name *nm, const char *s, size_t n)
{
    if (nm->too_long || n > LEVEL_MAX_NAME - nm->len) {
        nm->too_long = true;
        return;
    }
    memcpy(nm->buf + nm->len, s, n);
    nm->len += n;
}

/* Upstream builds "<type><type-id>" whatever the tag order: the type goes
 * in front of anything collected so far. */
static void ingest_name_prepend(struct ingest_name *nm, const char *s, size_t n)
{
    if (nm->too_long || n > LEVEL_MAX_NAME - nm->len) {
        nm->too_long = true;
        return;
    }
    memmove(nm->buf + n, nm->buf, nm->len);
    memcpy(nm->buf, s, n);
    nm->len += n;
}

/* ---- error accounting --------------------------------------------------- */

static _Atomic uint64_t total_rejected_by[INGEST_REJECT_REASONS];

__attribute__((format(printf, 4, 5))) static int ingest_reject(struct ingest_batch *b,
                                                                enum ingest_reject_reason why,
                                                                size_t line_no, const char *fmt,
                                                                ...)
{
    b->res.rejected++;
    atomic_fetch_add_explicit(&total_rejected_by[why], 1, memory_order_relaxed);
    if (b->kept < INGEST_KEPT_ERRORS) {
        char *e = b->errors[b->kept++];
        int k = snprintf(e, INGEST_ERROR_MAX, "line %zu: ", line_no);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e + k, INGEST_ERROR_MAX - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return INGEST_REJECT;
}

static void ingest_reject_syntax(struct ingest_batch *b, size_t line_no, const struct lp_error *err)
{
    ingest_reject(b, INGEST_REJECT_SYNTAX, line_no, "at %zu:%zu: %s", line_no, err->column,
                  err->message);
}

static void ingest_flush_totals(struct ingest_batch *b)
{
    atomic_fetch_add_explicit(&total_lines, b->res.lines - b->flushed.lines, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_accepted, b->res.accepted - b->flushed.accepted,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&total_rejected, b->res.rejected - b->flushed.rejected,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&total_ignored, b->res.ignored - b->flushed.ignored,
                              memory_order_relaxed);
    b->flushed = b->res;
}

void ingest_rejected_by_reason(uint64_t out[INGEST_REJECT_REASONS])
{
    for (int i = 0; i < INGEST_REJECT_REASONS; i++)
        out[i] = atomic_load_explicit(&total_rejected_by[i], memory_order_relaxed);
}

const char *ingest_reject_reason_name(enum ingest_reject_reason why)
{
    static const char *const names[INGEST_REJECT_REASONS] = {
        [INGEST_REJECT_SYNTAX] = "syntax", [INGEST_REJECT_NAME] = "name",
        [INGEST_REJECT_FIELD] = "field",   [INGEST_REJECT_VALUE] = "value",
        [INGEST_REJECT_TIME] = "timestamp", [INGEST_REJECT_LIMIT] = "limit",
        [INGEST_REJECT_MEMORY] = "memory",
    };
    return (unsigned)why < INGEST_REJECT_REASONS ? names[why] : "unknown";
}

void ingest_totals(struct ingest_result *out)
{
    out->lines = atomic_load_explicit(&total_lines, memory_order_relaxed);
    out->accepted = atomic_load_explicit(&total_accepted, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&total_rejected, memory_order_relaxed);
    out->ignored = atomic_load_explicit(&total_ignored, memory_order_relaxed);
}

/* ---- tree resolution with the per-batch cache ---------------------------- */

/* Releases the cached host lock; its WAL records are ended first, while
 * the host is still locked (checkpoint.h: the batch holds the log segment
 * until they are written, so a snapshot run waits for them). */
static void ingest_release_host(struct ingest_batch *b)
{
    if (b->locked) {
        if (checkpoint_batch_commit(b->wal, &b->host) != 0)
            b->persist_failed = true;
        store_host_unlock(&b->host);
        b->locked = false;
    }
    if (++b->child_gen == 0) {          /* wrapped: no entry may look valid */
        memset(b->child_cache, 0, sizeof b->child_cache);
        b->child_gen = 1;
    }
}

/* The cache entry for the level names[0..depth): level names of one host
 * differ in their ids, at the end, which hash_name_ends tells apart
 * cheaply; a hit is checked against the level's own names. */
static struct child_entry *ingest_child_slot(struct ingest_batch *b, const char *const *names,
                                             const size_t *lens, size_t depth)
{
    uint64_t h = hash_name_ends(names[0], lens[0]);
    if (depth == 2)
        h = (h ^ (hash_name_ends(names[1], lens[1]) >> 7)) * 0x9E3779B97F4A7C15ull;
    return &b->child_cache[h >> (64 - INGEST_CHILD_CACHE_BITS)];
}

/* The level of entry e if it is valid for the locked host and holds
 * names[0..depth), else NULL. Its names were checked when it was cached. */
static struct level *ingest_child_hit(const struct ingest_batch *b, const struct child_entry *e,
                                      const char *const *names, const size_t *lens, size_t depth)
{
    if (e->gen != b->child_gen || e->depth != depth)
        return NULL;
    for (size_t i = 0; i < depth; i++)
        if (!ingest_eq(e->levels[i]->name, e->levels[i]->name_len, names[i], lens[i]))
            return NULL;
    return e->levels[depth - 1];
}

static unsigned ingest_budget_left(const struct ingest_batch *b)
{
    return b->new_levels >= b->opts.max_new_levels ? 0 : b->opts.max_new_levels - b->new_levels;
}

static void ingest_count_created(struct ingest_batch *b, unsigned created)
{
    if (created) {
        b->new_levels += created;
        b->cluster_checked = false;
    }
}

/* Whether the cluster level exists (only asked when exactly one new level
 * is left in the budget, so the cost of listing the clusters is rare). */
static int ingest_cluster_exists(struct ingest_batch *b, const char *cl, size_t cl_len, bool *out)
{
    if (b->cluster_checked && ingest_eq(b->checked_cluster, b->checked_cluster_len, cl, cl_len)) {
        *out = b->cluster_found;
        return 0;
    }
    char **names = NULL;
    size_t count = 0;
    int rc = store_list_clusters(b->store, &names, &count);
    if (rc != 0)
        return rc;
    bool found = false;
    for (size_t i = 0; i < count; i++) {
        if (!found && ingest_eq(names[i], strlen(names[i]), cl, cl_len))
            found = true;
        free(names[i]);
    }
    free(names);
    b->cluster_checked = true;
    b->cluster_found = found;
    memcpy(b->checked_cluster, cl, cl_len);
    b->checked_cluster_len = cl_len;
    *out = found;
    return 0;
}

/* Locks [cl, host] (creating it within the budget). Returns 0, INGEST_REJECT
 * (budget exhausted; already counted) or STORE_ENOMEM. */
static int ingest_lock_host(struct ingest_batch *b, size_t line_no, const char *cl, size_t cl_len,
                            const char *host, size_t host_len)
{
    if (b->locked && ingest_eq(b->hostname, b->host_len, host, host_len) &&
        ingest_eq(b->cluster, b->cluster_len, cl, cl_len))
        return 0;
    ingest_release_host(b);

    unsigned created = 0;
    int rc;
    if (b->opts.max_new_levels == 0) {
        rc = store_host_lock(b->store, cl, cl_len, host, host_len, true, &created, &b->host);
    } else {
        rc = store_host_lock(b->store, cl, cl_len, host, host_len, false, NULL, &b->host);
        if (rc == STORE_ENOTFOUND) {
            unsigned left = ingest_budget_left(b), need = 2;
            if (left == 1) {
                bool exists = false;
                rc = ingest_cluster_exists(b, cl, cl_len, &exists);
                if (rc != 0)
                    return rc;
                if (exists)
                    need = 1;
            }
            if (need > left)
                return ingest_reject(b, INGEST_REJECT_LIMIT, line_no,
                                     "too many new levels in one request (limit %u): not creating host",
                                     b->opts.max_new_levels);
            rc = store_host_lock(b->store, cl, cl_len, host, host_len, true, &created, &b->host);
        }
    }
    ingest_count_created(b, created);
    if (rc != 0)
        return rc;
    b->locked = true;
    memcpy(b->cluster, cl, cl_len);
    b->cluster_len = cl_len;
    memcpy(b->hostname, host, host_len);
    b->host_len = host_len;
    return 0;
}

/* The level names[0..depth) below the locked host. Returns 0,
 * INGEST_REJECT or STORE_ENOMEM. */
static int ingest_child(struct ingest_batch *b, size_t line_no, const char *const *names,
                        const size_t *lens, size_t depth, struct child_entry *e,
                        struct level **out)
{
    if (depth == 0) {
        *out = b->host.level;
        return 0;
    }
    struct level *cached = ingest_child_hit(b, e, names, lens, depth);
    if (cached) {
        *out = cached;
        return 0;
    }
    unsigned created = 0;
    int rc;
    if (b->opts.max_new_levels == 0) {
        rc = store_host_child(&b->host, names, lens, depth, true, &created, out);
    } else {
        rc = store_host_child(&b->host, names, lens, depth, false, NULL, out);
        if (rc == STORE_ENOTFOUND) {
            unsigned left = ingest_budget_left(b), need = (unsigned)depth;
            if (depth == 2 && left == 1) {
                struct level *parent;
                if (store_host_child(&b->host, names, lens, 1, false, NULL, &parent) == 0)
                    need = 1;
            }
            if (need > left)
                return ingest_reject(b, INGEST_REJECT_LIMIT, line_no,
                                     "too many new levels in one request (limit %u): not creating %s",
                                     b->opts.max_new_levels,
                                     depth == 1 ? "type level" : "subtype level");
            rc = store_host_child(&b->host, names, lens, depth, true, &created, out);
        }
    }
    ingest_count_created(b, created);
    if (rc != 0)
        return rc;
    struct level *type_level = *out;
    if (depth == 2 && store_host_child(&b->host, names, lens, 1, false, NULL, &type_level) != 0)
        return 0;                       /* not cached; cannot happen under the host lock */
    *e = (struct child_entry){ .levels = { type_level, *out }, .gen = b->child_gen,
                               .depth = (uint32_t)depth };
    return 0;
}

/* ---- one line ------------------------------------------------------------ */

static int ingest_metric_index(struct ingest_batch *b, struct lp_str raw, bool needs_unescape)
{
    if (b->metric_raw_len && ingest_eq(b->metric_raw, b->metric_raw_len, raw.ptr, raw.len))
        return b->metric_index;
    const char *name = raw.ptr;
    size_t len = raw.len;
    if (needs_unescape) {
        /* measurement escapes: "\," and "\ " */
        char *o = b->scratch;
        for (size_t i = 0; i < raw.len; i++) {
            char next = i + 1 < raw.len ? raw.ptr[i + 1] : 0;
            if (raw.ptr[i] == '\\' && (next == ',' || next == ' '))
                i++;
            *o++ = raw.ptr[i];
        }
        name = b->scratch;
        len = (size_t)(o - b->scratch);
    }
    int idx = store_metric_lookup(b->store, name, len);
    if (raw.len <= INGEST_METRIC_CACHE) {
        memcpy(b->metric_raw, raw.ptr, raw.len);
        b->metric_raw_len = raw.len;
        b->metric_index = idx;
        b->metric_raw_plain = !needs_unescape;
    }
    return idx;
}

/* Whether line starts with the last measurement, without escapes, and a
 * ',' or ' ' after it: lp_peek_measurement would find exactly those bytes
 * (a measurement starts with neither ' ' nor '#', so the line is no blank
 * or comment line, and no escape can carry the scan past that byte). */
static bool ingest_same_measurement(const struct ingest_batch *b, const char *line, size_t len)
{
    size_t n = b->metric_raw_len;
    return n > 0 && b->metric_raw_plain && len > n && (line[n] == ',' || line[n] == ' ') &&
           ingest_eq(b->metric_raw, n, line, n);
}

static int ingest_grow_scratch(struct ingest_batch *b, size_t len)
{
    if (len <= b->scratch_cap)
        return 0;
    size_t cap = b->scratch_cap ? b->scratch_cap : 4096;
    while (cap < len)
        cap *= 2;
    char *p = realloc(b->scratch, cap);
    if (!p)
        return -ENOMEM;
    b->scratch = p;
    b->scratch_cap = cap;
    return 0;
}

/* path: the name becomes a directory name (cluster, host), with the
 * stricter rule of names.h; type and subtype level names do not. */
static bool ingest_check_name(struct ingest_batch *b, size_t line_no, const char *what,
                              bool path, const char *s, size_t n)
{
    const char *why = path ? name_problem(s, n) : level_name_problem(s, n);
    if (!why)
        return true;
    char q[160];
    ingest_quote(q, sizeof q, s, n);
    ingest_reject(b, INGEST_REJECT_NAME, line_no, "invalid %s name %s: %s", what, q, why);
    return false;
}

/* Where a line goes: taken from its tags (docs/line-protocol.md). */
struct ingest_target {
    const char *cluster;
    size_t cluster_len;
    const char *host;
    size_t host_len;
    struct ingest_name type;
    struct ingest_name stype;
    bool node;                      /* type=node: host level */
    const char *names[2];           /* the levels below the host, once checked */
    size_t lens[2];
    size_t depth;
    struct child_entry *slot;       /* their entry in the child cache (depth > 0) */
    struct level *child;            /* that level, when the child cache had it */
    const char *tags;               /* the line's tag section (lp_tag_section), or NULL */
    size_t tags_len;
};

/* Flags of a remembered tag section (store_host_remember_tags): its lines
 * carry no cluster tag and went to the request's default cluster. */
#define TAGS_DEFAULT_CLUSTER 1u

/* Upstream builds "<type><type-id>" whatever the tag order: a (s)type value
 * goes in front of the ids collected so far. */
static void ingest_add_prefix(struct ingest_name *nm, struct lp_str v)
{
    if (nm->len == 0)
        ingest_name_append(nm, v.ptr, v.len);
    else
        ingest_name_prepend(nm, v.ptr, v.len);
}

/* The tag keys ingest reads. */
enum tag_key { TAG_OTHER, TAG_HOST, TAG_CLUSTER, TAG_TYPE, TAG_TYPE_ID, TAG_STYPE, TAG_STYPE_ID };

/* Which key k is: by its length first, then one comparison of a known
 * length (which the compiler does in a register or two). */
static enum tag_key ingest_tag_key(struct lp_str k)
{
    switch (k.len) {
    case 4:
        return memcmp(k.ptr, "host", 4) == 0 ? TAG_HOST
             : memcmp(k.ptr, "type", 4) == 0 ? TAG_TYPE : TAG_OTHER;
    case 5:
        return memcmp(k.ptr, "stype", 5) == 0 ? TAG_STYPE : TAG_OTHER;
    case 7:
        return memcmp(k.ptr, "type-id", 7) == 0 ? TAG_TYPE_ID
             : memcmp(k.ptr, "cluster", 7) == 0 ? TAG_CLUSTER
             : memcmp(k.ptr, "subtype", 7) == 0 ? TAG_STYPE : TAG_OTHER;
    case 8:
        return memcmp(k.ptr, "hostname", 8) == 0 ? TAG_HOST
             : memcmp(k.ptr, "stype-id", 8) == 0 ? TAG_STYPE_ID : TAG_OTHER;
    default:
        return TAG_OTHER;
    }
}

static void ingest_read_tags(const struct ingest_batch *b, const struct lp_line *ln,
                             struct ingest_target *t)
{
    /* field by field: the name buffers are large and only their lengths
     * need to start at zero */
    t->cluster = b->default_cluster;
    t->cluster_len = b->default_cluster_len;
    t->host = NULL;
    t->host_len = 0;
    t->type.len = 0;
    t->type.too_long = false;
    t->stype.len = 0;
    t->stype.too_long = false;
    t->node = false;
    t->names[0] = t->names[1] = NULL;
    t->lens[0] = t->lens[1] = 0;
    t->depth = 0;
    t->slot = NULL;
    t->child = NULL;
    for (size_t i = 0; i < ln->tag_count; i++) {
        struct lp_str v = ln->tag_values[i];
        switch (ingest_tag_key(ln->tag_keys[i])) {
        case TAG_HOST:
            t->host = v.ptr;
            t->host_len = v.len;
            break;
        case TAG_CLUSTER:
            t->cluster = v.ptr;
            t->cluster_len = v.len;
            break;
        case TAG_TYPE:
            if (ingest_eq(v.ptr, v.len, "node", 4))
                t->node = true;
            else
                ingest_add_prefix(&t->type, v);
            break;
        case TAG_TYPE_ID:
            ingest_name_append(&t->type, v.ptr, v.len);
            break;
        case TAG_STYPE:
            ingest_add_prefix(&t->stype, v);
            break;
        case TAG_STYPE_ID:
            ingest_name_append(&t->stype, v.ptr, v.len);
            break;
        case TAG_OTHER:
            break;
        }
    }
}

/* Checks cluster and host (unless they are the cached, already checked
 * ones). Returns false when the line was rejected. */
static bool ingest_check_host(struct ingest_batch *b, size_t line_no,
                              const struct ingest_target *t, bool host_cached)
{
    if (host_cached)
        return true;
    if (t->cluster_len == 0) {
        ingest_reject(b, INGEST_REJECT_NAME, line_no,
                      "no cluster: the line has no cluster tag and the request no default cluster");
        return false;
    }
    if (t->host_len == 0) {
        ingest_reject(b, INGEST_REJECT_NAME, line_no, "no host: the line has no hostname or host tag");
        return false;
    }
    return ingest_check_name(b, line_no, "cluster", true, t->cluster, t->cluster_len) &&
           ingest_check_name(b, line_no, "host", true, t->host, t->host_len);
}

/* Checks the type and subtype level names and fills t->names. Returns
 * false when the line was rejected. */
static bool ingest_check_levels(struct ingest_batch *b, size_t line_no, struct ingest_target *t,
                                bool host_cached)
{
    t->child = NULL;
    if (t->node || (t->type.len == 0 && !t->type.too_long))
        return true;
    if (t->type.too_long) {
        ingest_reject(b, INGEST_REJECT_NAME, line_no, "invalid type level name: it is longer than 255 bytes");
        return false;
    }
    t->names[0] = t->type.buf;
    t->lens[0] = t->type.len;
    t->depth = 1;
    bool has_stype = t->stype.len > 0 || t->stype.too_long;
    if (has_stype && !t->stype.too_long) {
        t->names[1] = t->stype.buf;
        t->lens[1] = t->stype.len;
        t->depth = 2;
    }
    /* the names are hashed once a line; a level found in the cache of
     * the locked host was checked when it was cached */
    t->slot = ingest_child_slot(b, t->names, t->lens, t->depth);
    if (host_cached && !t->stype.too_long)
        t->child = ingest_child_hit(b, t->slot, t->names, t->lens, t->depth);
    if (!t->child && !ingest_check_name(b, line_no, "type level", false, t->type.buf, t->type.len))
        return false;
    if (!has_stype)
        return true;
    if (t->stype.too_long) {
        ingest_reject(b, INGEST_REJECT_NAME, line_no, "invalid subtype level name: it is longer than 255 bytes");
        return false;
    }
    return t->child ||
           ingest_check_name(b, line_no, "subtype level", false, t->stype.buf, t->stype.len);
}

/* The number in the field "value" (the last one wins). Returns false when
 * the line was rejected. */
static bool ingest_read_value(struct ingest_batch *b, size_t line_no, const struct lp_line *ln,
                              double *value)
{
    *value = 0;
    for (size_t i = 0; i < ln->field_count; i++) {
        const struct lp_field *f = &ln->fields[i];
        if (!KEY_IS(f->key, "value")) {
            char q[160];
            ingest_quote(q, sizeof q, f->key.ptr, f->key.len);
            ingest_reject(b, INGEST_REJECT_FIELD, line_no, "unknown field %s: only the field \"value\" is accepted", q);
            return false;
        }
        switch (f->kind) {
        case LP_FLOAT: *value = f->v.f; break;
        case LP_INT: *value = (double)f->v.i; break;
        case LP_UINT: *value = (double)f->v.u; break;
        case LP_BOOL:
        case LP_STRING:
            ingest_reject(b, INGEST_REJECT_FIELD, line_no, "unsupported value type %s for field \"value\": a number is required",
                          f->kind == LP_BOOL ? "boolean" : "string");
            return false;
        }
    }
    if (!(fabs(*value) <= FLT_MAX)) {
        ingest_reject(b, INGEST_REJECT_VALUE, line_no, "value %g cannot be stored: not a finite float32", *value);
        return false;
    }
    return true;
}

/* The sample time in seconds. Returns false when the line was rejected. */
static bool ingest_read_time(struct ingest_batch *b, size_t line_no, const struct lp_line *ln,
                             int64_t *ts)
{
    *ts = ln->has_timestamp ? ingest_to_seconds(ln->timestamp, b->opts.precision) : b->opts.now;
    if (b->opts.future_tolerance >= 0 && *ts > b->opts.now &&
        *ts - b->opts.now > b->opts.future_tolerance) {
        ingest_reject(b, INGEST_REJECT_TIME, line_no, "timestamp %" PRId64 " is more than %" PRId64 " s in the future",
                      *ts, b->opts.future_tolerance);
        return false;
    }
    if (b->opts.retention > 0 && *ts < b->opts.now - b->opts.retention) {
        ingest_reject(b, INGEST_REJECT_TIME, line_no,
                      "timestamp %" PRId64 " is older than the retention window "
                      "(retention-in-memory %" PRId64 " s before %" PRId64 ")",
                      *ts, b->opts.retention, b->opts.now);
        return false;
    }
    return true;
}

/* Stores the sample in level lvl (names[0..depth) below the locked host)
 * and queues its WAL record. Returns 0 (stored or rejected) or -ENOMEM. */
static int ingest_store_sample(struct ingest_batch *b, size_t line_no, int metric,
                               struct level *lvl, const char *const *names, const size_t *lens,
                               size_t depth, int64_t ts, double value)
{
    int rc = store_write(&b->host, lvl, metric, ts, (float)value);
    if (rc == 0) {
        b->res.accepted++;
        if (checkpoint_batch_add(b->wal, &b->host, lvl, metric, names, lens, depth, ts,
                                 (float)value) != 0)
            b->persist_failed = true;
        return 0;
    }
    if (rc == STORE_ERANGE) {
        ingest_reject(b, INGEST_REJECT_TIME, line_no, "timestamp %" PRId64 " is out of range for %s", ts,
                      store_metric_at(b->store, metric)->name);
        return 0;
    }
    ingest_reject(b, INGEST_REJECT_MEMORY, line_no, "out of memory");
    return -ENOMEM;
}

/* After a line was stored the long way: the locked host remembers its tag
 * section, so that later lines with the same bytes take ingest_cached_line.
 * Only when the child cache entry holds the levels the line went to. */
static void ingest_remember_tags(struct ingest_batch *b, const struct ingest_target *t,
                                 struct level *lvl)
{
    if (!t->tags)
        return;
    struct tag_target tt = { .levels = { NULL, NULL }, .depth = (uint8_t)t->depth,
                             .flags = t->cluster == b->default_cluster ? TAGS_DEFAULT_CLUSTER : 0 };
    if (t->depth > 0) {
        const struct child_entry *e = t->slot;
        if (e->gen != b->child_gen || e->depth != t->depth || e->levels[t->depth - 1] != lvl)
            return;
        tt.levels[0] = e->levels[0];
        tt.levels[1] = t->depth == 2 ? e->levels[1] : NULL;
    }
    /* out of memory: the next line takes the long way again */
    (void)store_host_remember_tags(&b->host, t->tags, t->tags_len, &tt);
}

/* Locks the line's host, finds its level and stores the sample. Returns 0
 * (stored or rejected) or -ENOMEM. */
static int ingest_write(struct ingest_batch *b, size_t line_no, int metric,
                        const struct ingest_target *t, int64_t ts, double value)
{
    int rc = ingest_lock_host(b, line_no, t->cluster, t->cluster_len, t->host, t->host_len);
    struct level *lvl = t->child;     /* the host was locked already: still valid */
    if (rc == 0 && !lvl)
        rc = ingest_child(b, line_no, t->names, t->lens, t->depth, t->slot, &lvl);
    if (rc == INGEST_REJECT)
        return 0;
    if (rc != 0) {
        ingest_reject(b, INGEST_REJECT_MEMORY, line_no, "out of memory");
        return -ENOMEM;
    }
    size_t accepted = b->res.accepted;
    rc = ingest_store_sample(b, line_no, metric, lvl, t->names, t->lens, t->depth, ts, value);
    if (rc == 0 && b->res.accepted > accepted)
        ingest_remember_tags(b, t, lvl);
    return rc;
}

/*
 * A line whose tag section (ending at tags_end) the locked host remembers,
 * with target *t: the same bytes mean the same tags, so only its fields are
 * parsed and its sample goes to the remembered level (names checked,
 * levels found when the section was first seen). The checks after the
 * tags are the long way's, in its order. Returns 0 / -ENOMEM as
 * ingest_write, or 1 when the line must take the long way (the section
 * relied on the default cluster, and this request has another).
 */
static int ingest_cached_line(struct ingest_batch *b, const char *line, size_t len,
                              size_t line_no, int metric, size_t tags_end,
                              const struct tag_target *t)
{
    if ((t->flags & TAGS_DEFAULT_CLUSTER) &&
        !ingest_eq(b->default_cluster, b->default_cluster_len, b->cluster, b->cluster_len))
        return 1;
    struct lp_error err;
    if (lp_parse_fields(line, len, tags_end, b->scratch, &b->memo, &b->line, &err) != LP_OK) {
        ingest_reject_syntax(b, line_no, &err);
        return 0;
    }
    double value;
    int64_t ts;
    if (!ingest_read_value(b, line_no, &b->line, &value) ||
        !ingest_read_time(b, line_no, &b->line, &ts))
        return 0;
    const char *names[2] = { NULL, NULL };
    size_t lens[2] = { 0, 0 };
    for (size_t i = 0; i < t->depth; i++) {
        names[i] = t->levels[i]->name;
        lens[i] = t->levels[i]->name_len;
    }
    struct level *lvl = t->depth ? t->levels[t->depth - 1] : b->host.level;
    return ingest_store_sample(b, line_no, metric, lvl, names, lens, t->depth, ts, value);
}

/* Maps a parsed line to its level and writes it. Returns 0 (stored or
 * rejected) or -ENOMEM. */
static int ingest_store_line(struct ingest_batch *b, size_t line_no, int metric,
                             const char *tags, size_t tags_len)
{
    struct ingest_target t;
    ingest_read_tags(b, &b->line, &t);
    t.tags = tags;
    t.tags_len = tags_len;
    /* names equal to the cached ones were validated when they were cached */
    bool host_cached = b->locked && ingest_eq(b->hostname, b->host_len, t.host, t.host_len) &&
                       ingest_eq(b->cluster, b->cluster_len, t.cluster, t.cluster_len);
    double value;
    int64_t ts;
    if (!ingest_check_host(b, line_no, &t, host_cached) ||
        !ingest_check_levels(b, line_no, &t, host_cached) ||
        !ingest_read_value(b, line_no, &b->line, &value) ||
        !ingest_read_time(b, line_no, &b->line, &ts))
        return 0;
    return ingest_write(b, line_no, metric, &t, ts, value);
}

static int ingest_line(void *ctx, const char *line, size_t len, size_t line_no, int status)
{
    struct ingest_batch *b = ctx;
    struct lp_error err;

    if (status == LP_ERR_LINE_TOO_LONG) {
        b->res.lines++;
        ingest_reject(b, INGEST_REJECT_SYNTAX, line_no, "line too long (more than %zu bytes)", b->reader.max_line);
        return 0;
    }
    struct lp_str raw;
    bool needs_unescape = false;
    bool same = ingest_same_measurement(b, line, len);
    if (same) {
        raw = (struct lp_str){ line, b->metric_raw_len };
    } else {
        int rc = lp_peek_measurement(line, len, &raw, &needs_unescape, &err);
        if (rc == LP_EMPTY)
            return 0;
        if (rc != LP_OK) {
            b->res.lines++;
            ingest_reject_syntax(b, line_no, &err);
            return 0;
        }
    }
    b->res.lines++;
    if (ingest_grow_scratch(b, len) != 0) {
        ingest_reject(b, INGEST_REJECT_MEMORY, line_no, "out of memory");
        return -ENOMEM;
    }
    int metric = same ? b->metric_index : ingest_metric_index(b, raw, needs_unescape);
    if (metric < 0) {
        b->res.ignored++;
        return 0;
    }
    int rc;
    size_t tags_end, tags_len;
    const char *tags = raw.ptr + raw.len;
    struct tag_target tt;
    /* the host's next section, as it came last time; else a scan for the
     * section's end and a lookup of its bytes */
    bool known = b->locked && store_host_find_next_tags(&b->host, tags, (size_t)(line + len - tags),
                                                        &tags_len, &tt);
    if (known) {
        tags_end = (size_t)(tags + tags_len - line);
    } else if (lp_tag_section(line, len, raw, &tags_end)) {
        known = b->locked && store_host_find_tags(&b->host, tags, (size_t)(line + tags_end - tags),
                                                  &tt);
    } else {
        tags = NULL;
    }
    if (known) {
        rc = ingest_cached_line(b, line, len, line_no, metric, tags_end, &tt);
        if (rc <= 0)
            return rc;
    }
    rc = lp_parse_peeked(line, len, raw, needs_unescape, b->scratch, &b->memo, &b->line, &err);
    if (rc != LP_OK) {
        ingest_reject_syntax(b, line_no, &err);
        return 0;
    }
    return ingest_store_line(b, line_no, metric, tags, tags ? (size_t)(line + tags_end - tags) : 0);
}

/* ---- batch --------------------------------------------------------------- */

int ingest_batch_new(struct store *s, const struct ingest_options *opts, struct ingest_batch **out)
{
    struct ingest_batch *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->store = s;
    b->opts = *opts;
    b->child_gen = 1;                   /* the zeroed entries are not valid */
    const char *dc = opts->default_cluster ? opts->default_cluster : "";
    b->default_cluster_len = strlen(dc);
    b->default_cluster = strdup(dc);
    b->error_text_cap = 160 + INGEST_KEPT_ERRORS * (INGEST_ERROR_MAX + 2);
    b->error_text = malloc(b->error_text_cap);
    if (!b->default_cluster || !b->error_text) {
        free(b->default_cluster);
        free(b->error_text);
        free(b);
        return -ENOMEM;
    }
    if (checkpoint_batch_new(opts->checkpointer, &b->wal) != 0) {
        free(b->default_cluster);
        free(b->error_text);
        free(b);
        return -ENOMEM;
    }
    b->error_text[0] = '\0';
    b->opts.default_cluster = b->default_cluster;
    lp_reader_init(&b->reader, opts->max_line_length);
    *out = b;
    return 0;
}

int ingest_batch_feed(struct ingest_batch *b, const char *data, size_t len)
{
    if (b->failed)
        return -ENOMEM;
    int rc = lp_reader_feed(&b->reader, data, len, ingest_line, b);
    ingest_release_host(b);
    /* nothing waits for the next piece: a snapshot run must not */
    if (checkpoint_batch_flush(b->wal) != 0)
        b->persist_failed = true;
    ingest_flush_totals(b);
    if (rc != 0) {
        b->failed = true;
        return -ENOMEM;
    }
    return 0;
}

int ingest_batch_finish(struct ingest_batch *b)
{
    int rc = 0;
    if (!b->failed)
        rc = lp_reader_finish(&b->reader, ingest_line, b);
    ingest_release_host(b);
    if (checkpoint_batch_finish(b->wal) != 0)
        b->persist_failed = true;
    ingest_flush_totals(b);
    if (rc != 0 || b->failed) {
        b->failed = true;
        return -ENOMEM;
    }
    return 0;
}

void ingest_batch_result(const struct ingest_batch *b, struct ingest_result *out)
{
    *out = b->res;
    out->persist_failed = b->persist_failed;
}

const char *ingest_batch_error_text(const struct ingest_batch *b)
{
    char *t = b->error_text;
    size_t cap = b->error_text_cap, o;
    if (b->res.rejected == 0) {
        t[0] = '\0';
        return t;
    }
    o = (size_t)snprintf(t, cap, "%" PRIu64 " of %" PRIu64 " lines rejected (%" PRIu64 " accepted",
                         b->res.rejected, b->res.lines, b->res.accepted);
    if (b->res.ignored)
        o += (size_t)snprintf(t + o, cap - o, ", %" PRIu64 " ignored", b->res.ignored);
    o += (size_t)snprintf(t + o, cap - o, "): ");
    for (unsigned i = 0; i < b->kept && o < cap; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s%s", i ? "; " : "", b->errors[i]);
    if (b->res.rejected > b->kept && o < cap)
        snprintf(t + o, cap - o, "; and %" PRIu64 " more", b->res.rejected - b->kept);
    return t;
}

void ingest_batch_free(struct ingest_batch *b)
{
    if (!b)
        return;
    ingest_release_host(b);
    checkpoint_batch_free(b->wal);
    lp_reader_destroy(&b->reader);
    free(b->scratch);
    free(b->default_cluster);
    free(b->error_text);
    free(b);
}
