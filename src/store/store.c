/*
 * store — see store.h for the locking and ownership rules.
 */
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/resample.h"
#include "util/hash.h"

struct store {
    struct store_metric *metrics;  /* names owned */
    size_t metric_count;
    int *metric_index;             /* open-addressing table of metric indexes, -1 = empty */
    size_t metric_index_mask;
    struct level *root;
    _Atomic int64_t bytes;
    store_host_cleanup_fn host_cleanup;
    void *host_cleanup_ctx;
};

/* ---- metric registry ---------------------------------------------------- */

static int build_metric_index(struct store *s)
{
    size_t size = 16;
    while (size < s->metric_count * 2)
        size *= 2;
    s->metric_index = malloc(size * sizeof(int));
    if (!s->metric_index)
        return -ENOMEM;
    for (size_t i = 0; i < size; i++)
        s->metric_index[i] = -1;
    s->metric_index_mask = size - 1;
    for (size_t m = 0; m < s->metric_count; m++) {
        const char *name = s->metrics[m].name;
        size_t slot = hash_bytes(name, strlen(name)) & s->metric_index_mask;
        while (s->metric_index[slot] >= 0)
            slot = (slot + 1) & s->metric_index_mask;
        s->metric_index[slot] = (int)m;
    }
    return 0;
}

int store_metric_lookup(const struct store *s, const char *name, size_t len)
{
    size_t slot = hash_bytes(name, len) & s->metric_index_mask;
    for (;;) {
        int m = s->metric_index[slot];
        if (m < 0)
            return -1;
        const char *candidate = s->metrics[m].name;
        if (strncmp(candidate, name, len) == 0 && candidate[len] == '\0')
            return m;
        slot = (slot + 1) & s->metric_index_mask;
    }
}

size_t store_metric_count(const struct store *s)
{
    return s->metric_count;
}

const struct store_metric *store_metric_at(const struct store *s, int index)
{
    if (index < 0 || (size_t)index >= s->metric_count)
        return NULL;
    return &s->metrics[index];
}

/* ---- lifetime ----------------------------------------------------------- */

static void account(struct store *s, int64_t delta)
{
    if (delta)
        atomic_fetch_add_explicit(&s->bytes, delta, memory_order_relaxed);
}

int store_create(const struct store_metric *metrics, size_t count, struct store **out)
{
    if (count > STORE_MAX_METRICS)
        return STORE_ETOO_MANY_METRICS;
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return STORE_ENOMEM;
    s->metrics = calloc(count ? count : 1, sizeof(*s->metrics));
    if (!s->metrics)
        goto fail;
    s->metric_count = count;
    for (size_t i = 0; i < count; i++) {
        s->metrics[i] = metrics[i];
        s->metrics[i].name = strdup(metrics[i].name);
        if (!s->metrics[i].name)
            goto fail;
    }
    if (build_metric_index(s) != 0)
        goto fail;
    int64_t delta = 0;
    s->root = level_new("", 0, 0, &delta);
    if (!s->root)
        goto fail;
    account(s, delta);
    *out = s;
    return 0;
fail:
    store_destroy(s);
    return STORE_ENOMEM;
}

static void cleanup_host(struct store *s, struct level *h)
{
    if (s->host_cleanup && h->upper->host_data)
        s->host_cleanup(s->host_cleanup_ctx, h);
}

void store_set_host_cleanup(struct store *s, store_host_cleanup_fn fn, void *ctx)
{
    s->host_cleanup = fn;
    s->host_cleanup_ctx = ctx;
}

void store_destroy(struct store *s)
{
    if (!s)
        return;
    if (s->root) {
        for (uint32_t c = 0; c < s->root->child_count; c++) {
            struct level *cl = s->root->children[c];
            for (uint32_t h = 0; h < cl->child_count; h++)
                cleanup_host(s, cl->children[h]);
        }
    }
    int64_t delta = 0;
    level_destroy(s->root, s->metric_count, &delta, NULL);
    if (s->metrics) {
        for (size_t i = 0; i < s->metric_count; i++)
            free((char *)s->metrics[i].name);
    }
    free(s->metrics);
    free(s->metric_index);
    free(s);
}

uint64_t store_bytes(const struct store *s)
{
    int64_t b = atomic_load_explicit(&((struct store *)s)->bytes, memory_order_relaxed);
    return b > 0 ? (uint64_t)b : 0;
}

/* ---- host locking ------------------------------------------------------- */

static int find_host_fast(struct store *s, const char *cluster, size_t cluster_len,
                          const char *host, size_t host_len, bool write, struct level **out)
{
    int rc = STORE_ENOTFOUND;
    pthread_rwlock_rdlock(level_lock(s->root));
    struct level *c = level_find_child(s->root, cluster, cluster_len);
    if (c) {
        pthread_rwlock_rdlock(level_lock(c));
        pthread_rwlock_unlock(level_lock(s->root));
        struct level *h = level_find_child(c, host, host_len);
        if (h) {
            if (write)
                pthread_rwlock_wrlock(level_lock(h));
            else
                pthread_rwlock_rdlock(level_lock(h));
            *out = h;
            rc = 0;
        }
        pthread_rwlock_unlock(level_lock(c));
    } else {
        pthread_rwlock_unlock(level_lock(s->root));
    }
    return rc;
}

/* Slow path: creates missing levels under write locks (root, then cluster). */
static int create_host(struct store *s, const char *cluster, size_t cluster_len,
                       const char *host, size_t host_len, unsigned *created, struct level **out)
{
    int64_t delta = 0;
    bool made;
    struct level *c, *h;
    pthread_rwlock_wrlock(level_lock(s->root));
    if (level_get_or_create_child(s->root, cluster, cluster_len, &c, &made, &delta) != 0) {
        pthread_rwlock_unlock(level_lock(s->root));
        account(s, delta);
        return STORE_ENOMEM;
    }
    if (made && created)
        (*created)++;
    pthread_rwlock_wrlock(level_lock(c));
    pthread_rwlock_unlock(level_lock(s->root));
    int rc = level_get_or_create_child(c, host, host_len, &h, &made, &delta);
    if (rc == 0) {
        if (made && created)
            (*created)++;
        pthread_rwlock_wrlock(level_lock(h));
        *out = h;
    }
    pthread_rwlock_unlock(level_lock(c));
    account(s, delta);
    return rc == 0 ? 0 : STORE_ENOMEM;
}

int store_host_lock(struct store *s, const char *cluster, size_t cluster_len,
                    const char *host, size_t host_len, bool create, unsigned *created,
                    struct store_host *out)
{
    struct level *h;
    int rc = find_host_fast(s, cluster, cluster_len, host, host_len, true, &h);
    if (rc == STORE_ENOTFOUND && create)
        rc = create_host(s, cluster, cluster_len, host, host_len, created, &h);
    if (rc != 0)
        return rc;
    out->store = s;
    out->level = h;
    out->write = true;
    return 0;
}

int store_host_lock_read(struct store *s, const char *cluster, size_t cluster_len,
                         const char *host, size_t host_len, struct store_host *out)
{
    struct level *h;
    int rc = find_host_fast(s, cluster, cluster_len, host, host_len, false, &h);
    if (rc != 0)
        return rc;
    out->store = s;
    out->level = h;
    out->write = false;
    return 0;
}

void store_host_unlock(struct store_host *h)
{
    if (h->level)
        pthread_rwlock_unlock(level_lock(h->level));
    h->level = NULL;
}

int store_host_child(struct store_host *h, const char *const *names, const size_t *lens,
                     size_t depth, bool create, unsigned *created, struct level **out)
{
    struct level *l = h->level;
    int64_t delta = 0;
    int rc = 0;
    for (size_t i = 0; i < depth && rc == 0; i++) {
        struct level *child = level_find_child(l, names[i], lens[i]);
        if (!child && create && h->write) {
            if (level_get_or_create_child(l, names[i], lens[i], &child, NULL, &delta) != 0) {
                rc = STORE_ENOMEM;
                break;
            }
            if (created)
                (*created)++;
        }
        if (!child)
            rc = STORE_ENOTFOUND;
        l = child;
    }
    account(h->store, delta);
    if (rc == 0)
        *out = l;
    return rc;
}

bool store_host_find_tags(struct store_host *h, const char *tags, size_t len,
                          struct tag_target *out)
{
    if (!h->write)
        return false;       /* finding learns the order of the lines */
    return tag_cache_find(h->level->upper->tags, tags, len, out);
}

bool store_host_find_next_tags(struct store_host *h, const char *text, size_t avail,
                               size_t *len, struct tag_target *out)
{
    if (!h->write)
        return false;
    return tag_cache_find_next(h->level->upper->tags, text, avail, len, out);
}

int store_host_remember_tags(struct store_host *h, const char *tags, size_t len,
                             const struct tag_target *t)
{
    int64_t delta = 0;
    int rc = tag_cache_add(&h->level->upper->tags, tags, len, t, &delta);
    account(h->store, delta);
    return rc == 0 ? 0 : STORE_ENOMEM;
}

int store_write(struct store_host *h, struct level *l, int metric, int64_t ts, float value)
{
    struct store *s = h->store;
    int64_t delta = 0;
    struct buffer **head = level_chain_slot(l, metric, &delta);
    if (!head) {
        account(s, delta);
        return STORE_ENOMEM;
    }
    int rc = chain_write(head, s->metrics[metric].frequency, ts, value, &delta);
    account(s, delta);
    if (rc == BUFFER_ERANGE)
        return STORE_ERANGE;
    if (rc == BUFFER_ENOMEM)
        return STORE_ENOMEM;
    return 0;
}

int store_write_path(struct store *s, const char *const *path, size_t depth, int metric,
                     int64_t ts, float value)
{
    if (depth < 2 || depth > STORE_MAX_DEPTH || metric < 0 ||
        (size_t)metric >= s->metric_count)
        return STORE_ENOTFOUND;
    size_t lens[STORE_MAX_DEPTH];
    for (size_t i = 0; i < depth; i++)
        lens[i] = strlen(path[i]);
    struct store_host h;
    int rc = store_host_lock(s, path[0], lens[0], path[1], lens[1], true, NULL, &h);
    if (rc != 0)
        return rc;
    struct level *l;
    rc = store_host_child(&h, path + 2, lens + 2, depth - 2, true, NULL, &l);
    if (rc == 0)
        rc = store_write(&h, l, metric, ts, value);
    store_host_unlock(&h);
    return rc;
}

/* Restored series must keep all slot arithmetic far from int64 overflow. */
#define STORE_MAX_LOAD_TIME ((int64_t)1 << 60)

int store_load_series(struct store_host *h, struct level *l, int metric, int64_t frequency,
                      int64_t start, const float *values, uint32_t n)
{
    struct store *s = h->store;
    if (frequency <= 0 || frequency > BUFFER_MAX_FREQUENCY ||
        frequency > STORE_MAX_LOAD_TIME / ((int64_t)n + 1) ||
        start < -STORE_MAX_LOAD_TIME || start > STORE_MAX_LOAD_TIME)
        return STORE_ERANGE;
    int64_t delta = 0;
    struct buffer **head = level_chain_slot(l, metric, &delta);
    if (!head) {
        account(s, delta);
        return STORE_ENOMEM;
    }
    int rc = chain_load(head, frequency, start, values, n, &delta);
    if (rc == BUFFER_ENOMEM)
        rc = STORE_ENOMEM;
    account(s, delta);
    return rc;
}

int store_load_image(struct store_host *h, struct level *l, int metric, const void *image,
                     size_t len, uint64_t *samples)
{
    struct store *s = h->store;
    int64_t delta = 0;
    struct buffer **head = level_chain_slot(l, metric, &delta);
    int rc = head ? chain_import(head, image, len, &delta, samples) : BUFFER_ENOMEM;
    account(s, delta);
    return rc == BUFFER_ENOMEM ? STORE_ENOMEM : rc == BUFFER_ECORRUPT ? STORE_ECORRUPT : rc;
}

/* ---- reading ------------------------------------------------------------ */

/* The chains one read combines. Most reads take one chain (a query item
 * per hwthread, as cc-backend sends them): a few heads live in the list
 * itself, and only more take an allocation. Start from CHAIN_LIST_EMPTY;
 * chain_list_free releases it. */
#define CHAIN_LIST_INLINE 8
struct chain_list {
    const struct buffer **heads;    /* inline_heads, or allocated */
    size_t count;
    size_t cap;
    bool failed;
    const struct buffer *inline_heads[CHAIN_LIST_INLINE];
};
#define CHAIN_LIST_EMPTY ((struct chain_list){ .heads = NULL })

static void chain_list_free(struct chain_list *list)
{
    if (list->heads != list->inline_heads)
        free(list->heads);
}

static void chain_list_add(struct chain_list *list, const struct buffer *head)
{
    if (list->count == 0 && list->cap == 0) {
        list->heads = list->inline_heads;
        list->cap = CHAIN_LIST_INLINE;
    }
    if (list->count == list->cap) {
        size_t cap = list->cap * 2;
        const struct buffer **h = malloc(cap * sizeof(*h));
        if (!h) {
            list->failed = true;
            return;
        }
        memcpy(h, list->heads, list->count * sizeof(*h));
        chain_list_free(list);
        list->heads = h;
        list->cap = cap;
    }
    list->heads[list->count++] = head;
}

/* docs/http-api.md "From a query to selectors": with the selector exhausted, take this level's chain or
 * else the top-most chains on every branch below. */
static void collect_topmost(const struct level *l, int metric, struct chain_list *list)
{
    struct buffer *head = level_chain_head(l, metric);
    if (head) {
        chain_list_add(list, head);
        return;
    }
    for (uint32_t i = 0; i < l->child_count; i++)
        collect_topmost(l->children[i], metric, list);
}

static void collect_chains(const struct level *l, const struct store_selector *sel, size_t i,
                           int metric, struct chain_list *list)
{
    if (i == sel->depth) {
        collect_topmost(l, metric, list);
        return;
    }
    const struct store_selector_elem *e = &sel->elems[i];
    for (size_t k = 0; k < e->count; k++) {
        if (e->lens[k] == 0)
            continue; /* an empty name never matches */
        const struct level *child = level_find_child(l, e->names[k], e->lens[k]);
        if (child)
            collect_chains(child, sel, i + 1, metric, list);
    }
}

/* The union of the chains' ranges, clipped to [from, to): *w0 is the first
 * grid time, *n the number of points on the grid w0 + k*f. */
static void read_window(const struct chain_list *list, int64_t from, int64_t to, int64_t f,
                        int64_t *w0, uint64_t *n)
{
    int64_t first = INT64_MAX, end = INT64_MIN;
    for (size_t i = 0; i < list->count; i++) {
        int64_t cf, ce;
        if (!chain_read_range(list->heads[i], to, &cf, &ce))
            continue;
        if (cf < first)
            first = cf;
        if (ce > end)
            end = ce;
    }
    *n = 0;
    *w0 = from;
    if (first == INT64_MAX)
        return;
    if (first > from)
        *w0 = first;
    int64_t w1 = end < to ? end : to;
    if (w1 > *w0)
        *n = ((uint64_t)w1 - (uint64_t)*w0 + (uint64_t)f - 1) / (uint64_t)f;
}

/* Sums every chain sampled at w0 + k*f into acc[0..n); NaN propagates. */
static void read_accumulate(const struct chain_list *list, int64_t w0, int64_t f, double *acc,
                            size_t n)
{
    for (size_t k = 0; k < n; k++)
        acc[k] = 0.0;
    /* a day at 60 s in one piece: each sealed part is decoded once */
    float part[2048];
    for (size_t i = 0; i < list->count; i++) {
        for (size_t k0 = 0; k0 < n; k0 += 2048) {
            size_t m = n - k0 < 2048 ? n - k0 : 2048;
            chain_read(list->heads[i], w0 + (int64_t)k0 * f, f, m, part);
            for (size_t k = 0; k < m; k++)
                acc[k0 + k] += (double)part[k];
        }
    }
}

/* Collects the chains of the locked host that the selector matches into
 * *list (the caller frees it with chain_list_free) and their read window. */
static int read_plan(struct store *s, const struct level *host, const struct store_selector *sel,
                     int metric, int64_t from, int64_t to, size_t max_points,
                     struct chain_list *list, int64_t *w0, uint64_t *n)
{
    collect_chains(host, sel, 2, metric, list);
    if (list->failed)
        return STORE_ENOMEM;
    if (list->count == 0)
        return STORE_ENOTFOUND;
    /* the headers and the parts in range, asked for before the walks that
     * read them (already in the cache after a store_prefetch) */
    chain_prefetch(list->heads, list->count, from, to);
    if (list->count > 1 && s->metrics[metric].aggregation == CCMS_AGG_NONE)
        return STORE_EAGGREGATION;
    read_window(list, from, to, s->metrics[metric].frequency, w0, n);
    if (*n > max_points)
        return STORE_ETOO_MANY_POINTS;
    return 0;
}

/* Reads the planned chains into *out, combined by the metric's aggregation
 * (not resampled). */
static int read_data(struct store *s, int metric, const struct chain_list *list, int64_t w0,
                     uint64_t n, struct store_series *out)
{
    int64_t f = s->metrics[metric].frequency;
    if (!(out->data = malloc((n ? n : 1) * sizeof(double))))
        return STORE_ENOMEM;
    read_accumulate(list, w0, f, out->data, n);
    if (list->count > 1 && s->metrics[metric].aggregation == CCMS_AGG_AVG) {
        double scale = 1.0 / (double)list->count;
        for (size_t k = 0; k < n; k++)
            out->data[k] *= scale;
    }
    out->len = n;
    out->from = w0;
    out->to = w0 + (int64_t)n * f;
    out->resolution = f;
    return 0;
}

static int resample_series(struct store_series *series, int64_t f, int64_t resolution,
                           enum resample_algo algo)
{
    size_t points;
    int64_t res;
    if (resample_plan(series->len, f, resolution, &points, &res) != 0)
        return STORE_ERESAMPLE;
    series->resolution = res;
    if (points == series->len)
        return 0;
    double *out = malloc(RESAMPLE_OUT_MAX(points) * sizeof(double));
    if (!out)
        return STORE_ENOMEM;
    size_t written = resample_apply(algo, series->data, series->len, (size_t)(res / f), points, out);
    free(series->data);
    series->data = out;
    series->len = written;
    return 0;
}

/* Checks what store_read and store_read_summary both take. */
static bool read_args_ok(const struct store *s, const struct store_selector *sel, int metric)
{
    return metric >= 0 && (size_t)metric < s->metric_count && sel->depth >= 2 &&
           sel->depth <= STORE_MAX_DEPTH && sel->elems[0].count == 1 &&
           sel->elems[1].count == 1 && sel->elems[0].lens[0] != 0 && sel->elems[1].lens[0] != 0;
}

/*
 * What store_read and store_read_summary share: checks the arguments,
 * read-locks the host, plans the read and either reads the data (not yet
 * resampled) or, with summary and when one chain is read at its own
 * frequency, only the statistics of its samples (*direct true, out without
 * data). Each chain is looked up and read once.
 */
static int read_locked(struct store *s, const struct store_selector *sel, int metric,
                       int64_t from, int64_t to, int64_t resolution, size_t max_points,
                       struct store_series *out, struct store_summary *summary, bool *direct)
{
    memset(out, 0, sizeof(*out));
    *direct = false;
    if (from > to)
        return STORE_EINVALID_RANGE;
    if (!read_args_ok(s, sel, metric))
        return STORE_ENOTFOUND;
    struct store_host h;
    int rc = store_host_lock_read(s, sel->elems[0].names[0], sel->elems[0].lens[0],
                                  sel->elems[1].names[0], sel->elems[1].lens[0], &h);
    if (rc != 0)
        return rc;
    struct chain_list list = CHAIN_LIST_EMPTY;
    int64_t f = s->metrics[metric].frequency;
    int64_t w0;
    uint64_t n;
    size_t points;
    int64_t res;
    rc = read_plan(s, h.level, sel, metric, from, to, max_points, &list, &w0, &n);
    *direct = rc == 0 && summary && list.count == 1 &&
              resample_plan((size_t)n, f, resolution, &points, &res) == 0 && points == n;
    if (*direct) {
        struct chain_stats cs;
        chain_stats(list.heads[0], w0, f, (size_t)n, &cs);
        if (cs.count == 0)
            *summary = (struct store_summary){ NAN, NAN, NAN };
        else
            /* + 0.0: a read sums into zeros (read_accumulate), so -0 reads as +0 */
            *summary = (struct store_summary){ cs.sum / (double)cs.count,
                                               (double)cs.min + 0.0, (double)cs.max + 0.0 };
        *out = (struct store_series){ NULL, (size_t)n, w0, w0 + (int64_t)n * f, res };
    } else if (rc == 0) {
        rc = read_data(s, metric, &list, w0, n, out);
    }
    chain_list_free(&list);
    store_host_unlock(&h);
    return rc;
}

void store_prefetch(struct store *s, const struct store_selector *sel, int metric, int64_t from,
                    int64_t to)
{
    if (from > to || !read_args_ok(s, sel, metric))
        return;
    struct store_host h;
    if (store_host_lock_read(s, sel->elems[0].names[0], sel->elems[0].lens[0],
                             sel->elems[1].names[0], sel->elems[1].lens[0], &h) != 0)
        return;
    struct chain_list list = CHAIN_LIST_EMPTY;
    collect_chains(h.level, sel, 2, metric, &list);
    if (!list.failed)
        chain_prefetch(list.heads, list.count, from, to);
    chain_list_free(&list);
    store_host_unlock(&h);
}

int store_read(struct store *s, const struct store_selector *sel, int metric, int64_t from,
               int64_t to, int64_t resolution, enum resample_algo algo, size_t max_points,
               struct store_series *out)
{
    bool direct;
    int rc = read_locked(s, sel, metric, from, to, resolution, max_points, out, NULL, &direct);
    /* The resampling rule is checked even for short series (upstream R7). */
    if (rc == 0)
        rc = resample_series(out, s->metrics[metric].frequency, resolution, algo);
    if (rc != 0)
        store_series_free(out);
    return rc;
}

void store_series_summary(const double *data, size_t len, struct store_summary *out)
{
    double sum = 0, mn = 0, mx = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        double x = data[i];
        if (isnan(x))
            continue;
        if (n == 0 || x < mn || (x == 0 && mn == 0 && signbit(x)))
            mn = x;
        if (n == 0 || x > mx || (x == 0 && mx == 0 && !signbit(x)))
            mx = x;
        n++;
        sum += x;
    }
    if (n == 0)
        *out = (struct store_summary){ NAN, NAN, NAN };
    else
        *out = (struct store_summary){ sum / (double)n, mn, mx };
}

int store_read_summary(struct store *s, const struct store_selector *sel, int metric, int64_t from,
                     int64_t to, int64_t resolution, enum resample_algo algo, size_t max_points,
                     struct store_series *out, struct store_summary *summary)
{
    bool direct;
    int rc = read_locked(s, sel, metric, from, to, resolution, max_points, out, summary,
                         &direct);
    if (rc != 0 || direct)
        return rc;
    /* several chains combined, or resampled: from the data */
    rc = resample_series(out, s->metrics[metric].frequency, resolution, algo);
    if (rc == 0)
        store_series_summary(out->data, out->len, summary);
    free(out->data);
    out->data = NULL;
    if (rc != 0)
        out->len = 0;
    return rc;
}

void store_series_free(struct store_series *series)
{
    free(series->data);
    series->data = NULL;
    series->len = 0;
}

/* Copies the names of l's children; the caller holds l's lock. */
static int copy_child_names(const struct level *l, char ***names, size_t *count)
{
    char **list = malloc((l->child_count ? l->child_count : 1) * sizeof(char *));
    if (!list)
        return STORE_ENOMEM;
    for (uint32_t i = 0; i < l->child_count; i++) {
        list[i] = strdup(l->children[i]->name);
        if (!list[i]) {
            while (i-- > 0)
                free(list[i]);
            free(list);
            return STORE_ENOMEM;
        }
    }
    *names = list;
    *count = l->child_count;
    return 0;
}

int store_list_clusters(struct store *s, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    pthread_rwlock_rdlock(level_lock(s->root));
    int rc = copy_child_names(s->root, names, count);
    pthread_rwlock_unlock(level_lock(s->root));
    return rc;
}

int store_list_hosts(struct store *s, const char *cluster, size_t cluster_len, char ***names,
                     size_t *count)
{
    *names = NULL;
    *count = 0;
    pthread_rwlock_rdlock(level_lock(s->root));
    struct level *c = level_find_child(s->root, cluster, cluster_len);
    if (c)
        pthread_rwlock_rdlock(level_lock(c));
    pthread_rwlock_unlock(level_lock(s->root));
    if (!c)
        return 0;
    int rc = copy_child_names(c, names, count);
    pthread_rwlock_unlock(level_lock(c));
    return rc;
}

/* ---- free --------------------------------------------------------------- */

/* Frees old buffers in l's subtree and removes children left empty. The
 * caller holds the lock of `host`, which is l or above it. A level removed
 * below the host empties the host's tag sections (they point at levels). */
static uint64_t free_subtree(struct store *s, struct level *host, struct level *l, int64_t before,
                             int64_t *delta)
{
    uint64_t freed = 0;
    for (uint32_t i = 0; i < l->chain_count; i++)
        if (l->heads[i])
            freed += chain_free_before(&l->heads[i], before, delta);
    for (uint32_t i = l->child_count; i-- > 0;) {
        struct level *c = l->children[i];
        freed += free_subtree(s, host, c, before, delta);
        if (level_is_empty(c, s->metric_count)) {
            tag_cache_free(&host->upper->tags, delta);
            level_remove_child_at(l, i, s->metric_count, delta);
        }
    }
    return freed;
}

/* Which hosts a free pass leaves alone (NULL keep: none). */
struct free_filter {
    host_filter_fn keep;
    void *ctx;
};

/* Frees in every host of a cluster (read-locked by the caller) that the
 * filter does not keep; returns whether some host ended up empty. */
static bool free_hosts(struct store *s, struct level *c, const struct free_filter *filter,
                       int64_t before, uint64_t *freed, int64_t *delta)
{
    bool some_empty = false;
    for (uint32_t i = 0; i < c->child_count; i++) {
        struct level *h = c->children[i];
        if (filter->keep && filter->keep(filter->ctx, c->name, h->name))
            continue;
        pthread_rwlock_wrlock(level_lock(h));
        *freed += free_subtree(s, h, h, before, delta);
        some_empty |= level_is_empty(h, s->metric_count);
        pthread_rwlock_unlock(level_lock(h));
    }
    return some_empty;
}

/* Removes empty children of a root or cluster level. The caller holds p's
 * write lock; each child's lock is taken so nobody is inside it. */
static void remove_empty_children(struct store *s, struct level *p, int64_t *delta)
{
    for (uint32_t i = p->child_count; i-- > 0;) {
        struct level *c = p->children[i];
        pthread_rwlock_wrlock(level_lock(c));
        bool empty = level_is_empty(c, s->metric_count);
        if (empty && c->depth == 2)
            cleanup_host(s, c);
        pthread_rwlock_unlock(level_lock(c));
        if (empty)
            level_remove_child_at(p, i, s->metric_count, delta);
    }
}

/* Frees in a cluster; removes hosts left empty. The caller holds the root
 * lock (read or write), so the cluster cannot disappear meanwhile. Returns
 * whether the cluster has no hosts left. */
static bool free_cluster(struct store *s, struct level *c, const struct free_filter *filter,
                         int64_t before, uint64_t *freed, int64_t *delta)
{
    pthread_rwlock_rdlock(level_lock(c));
    bool some_empty = free_hosts(s, c, filter, before, freed, delta);
    bool now_empty = c->child_count == 0;
    pthread_rwlock_unlock(level_lock(c));
    if (some_empty) {
        pthread_rwlock_wrlock(level_lock(c));
        remove_empty_children(s, c, delta);
        now_empty = c->child_count == 0;
        pthread_rwlock_unlock(level_lock(c));
    }
    return now_empty;
}

static void free_root(struct store *s, const struct free_filter *filter, int64_t before,
                      uint64_t *freed, int64_t *delta)
{
    struct level *root = s->root;
    bool some_empty = false;
    pthread_rwlock_rdlock(level_lock(root));
    for (uint32_t i = 0; i < root->child_count; i++)
        some_empty |= free_cluster(s, root->children[i], filter, before, freed, delta);
    pthread_rwlock_unlock(level_lock(root));
    if (some_empty) {
        pthread_rwlock_wrlock(level_lock(root));
        remove_empty_children(s, root, delta);
        pthread_rwlock_unlock(level_lock(root));
    }
}

int store_free_except(struct store *s, int64_t before, host_filter_fn keep, void *ctx,
                      uint64_t *freed)
{
    int64_t delta = 0;
    struct free_filter filter = {keep, ctx};
    *freed = 0;
    free_root(s, &filter, before, freed, &delta);
    account(s, delta);
    return 0;
}

int store_free(struct store *s, const char *const *path, const size_t *lens, size_t depth,
               int64_t before, uint64_t *freed)
{
    int64_t delta = 0;
    *freed = 0;
    static const struct free_filter everything = {NULL, NULL};
    if (depth == 0) {
        free_root(s, &everything, before, freed, &delta);
    } else if (depth == 1) {
        pthread_rwlock_rdlock(level_lock(s->root));
        struct level *c = level_find_child(s->root, path[0], lens[0]);
        if (c)
            free_cluster(s, c, &everything, before, freed, &delta);
        pthread_rwlock_unlock(level_lock(s->root));
    } else if (depth <= STORE_MAX_DEPTH) {
        struct store_host h;
        if (store_host_lock(s, path[0], lens[0], path[1], lens[1], false, NULL, &h) == 0) {
            struct level *l;
            if (store_host_child(&h, path + 2, lens + 2, depth - 2, false, NULL, &l) == 0)
                *freed = free_subtree(s, h.level, l, before, &delta);
            store_host_unlock(&h);
        }
    }
    account(s, delta);
    return 0;
}

/* ---- debug dump ----------------------------------------------------------- */

static void indent(struct jbuf *out, unsigned depth)
{
    for (unsigned i = 0; i < depth; i++)
        jbuf_putc(out, '\t');
}

struct dump_ctx {
    struct jbuf *out;
    bool first;
};

/* chain_block_fn: one buffer as {"start":..,"len":..,"end":..} */
static int dump_block(void *ctx, const struct chain_block *b)
{
    struct dump_ctx *d = ctx;
    struct jbuf *out = d->out;
    if (!d->first)
        jbuf_putc(out, ',');
    d->first = false;
    jbuf_puts(out, "{\"start\":");
    jbuf_int(out, b->start);
    jbuf_puts(out, ",\"len\":");
    jbuf_int(out, b->len);
    jbuf_puts(out, ",\"end\":");
    jbuf_int(out, b->start + b->frequency * (int64_t)b->len);
    if (b->saved)
        jbuf_puts(out, ",\"saved\":true");
    jbuf_putc(out, '}');
    return 0;
}

static void dump_chain(struct jbuf *out, const struct buffer *head)
{
    struct dump_ctx d = { out, true };
    jbuf_putc(out, '[');
    chain_for_each_block(head, dump_block, &d);
    jbuf_putc(out, ']');
}

/* Dumps l at the given indentation. Root, cluster and host levels are
 * read-locked while their part is written; levels below a host are guarded
 * by the host's lock. */
static void dump_level(struct store *s, struct level *l, unsigned depth, bool lock_self,
                       struct jbuf *out)
{
    bool locks = lock_self && l->depth <= LEVEL_LOCKED_DEPTH;
    if (locks)
        pthread_rwlock_rdlock(level_lock(l));
    jbuf_puts(out, "{\n");
    for (uint32_t i = 0; i < l->chain_count; i++) {
        const struct buffer *head = l->heads[i];
        if (!head)
            continue;
        const char *name = s->metrics[level_chain_metric(l, i)].name;
        indent(out, depth + 1);
        jbuf_string(out, name, strlen(name));
        jbuf_putc(out, ':');
        dump_chain(out, head);
        jbuf_puts(out, ",\n");
    }
    for (uint32_t i = 0; i < l->child_count; i++) {
        struct level *c = l->children[i];
        indent(out, depth + 1);
        jbuf_string(out, c->name, c->name_len);
        jbuf_putc(out, ':');
        dump_level(s, c, depth + 1, true, out);
        jbuf_puts(out, ",\n");
    }
    indent(out, depth);
    jbuf_putc(out, '}');
    if (locks)
        pthread_rwlock_unlock(level_lock(l));
}

int store_debug_dump(struct store *s, const char *const *path, const size_t *lens,
                     size_t depth, struct jbuf *out)
{
    if (depth > STORE_MAX_DEPTH)
        return STORE_ENOTFOUND;
    if (depth < 2) {
        struct level *l = s->root;
        if (depth == 1) {
            pthread_rwlock_rdlock(level_lock(s->root));
            l = level_find_child(s->root, path[0], lens[0]);
            if (l) {
                jbuf_puts(out, "{\"data\":");
                dump_level(s, l, 0, true, out);
                jbuf_puts(out, "}\n");
            }
            pthread_rwlock_unlock(level_lock(s->root));
            return l ? 0 : STORE_ENOTFOUND;
        }
        jbuf_puts(out, "{\"data\":");
        dump_level(s, l, 0, true, out);
        jbuf_puts(out, "}\n");
        return 0;
    }
    struct store_host h;
    if (store_host_lock_read(s, path[0], lens[0], path[1], lens[1], &h) != 0)
        return STORE_ENOTFOUND;
    struct level *l;
    int rc = store_host_child(&h, path + 2, lens + 2, depth - 2, false, NULL, &l);
    if (rc == 0) {
        /* The host lock is already held: dump without taking it again. */
        jbuf_puts(out, "{\"data\":");
        dump_level(s, l, 0, false, out);
        jbuf_puts(out, "}\n");
    }
    store_host_unlock(&h);
    return rc;
}

/* ---- memory cap ----------------------------------------------------------- */

struct buffer_age {
    int64_t end;
    uint64_t bytes;
};

struct age_list {
    struct buffer_age *items;
    size_t count, cap;
    bool failed;
};

/* chain_block_fn */
static int add_age(void *ctx, const struct chain_block *b)
{
    struct age_list *ages = ctx;
    if (ages->count == ages->cap) {
        size_t cap = ages->cap ? ages->cap * 2 : 1024;
        struct buffer_age *grown = realloc(ages->items, cap * sizeof(*grown));
        if (!grown) {
            ages->failed = true;
            return -1;
        }
        ages->items = grown;
        ages->cap = cap;
    }
    ages->items[ages->count++] = (struct buffer_age){chain_block_end(b), b->bytes};
    return 0;
}

static void collect_ages(const struct level *l, size_t metric_count, struct age_list *ages)
{
    (void)metric_count;
    for (uint32_t i = 0; i < l->chain_count && !ages->failed; i++)
        chain_for_each_block(l->heads[i], add_age, ages);
    for (uint32_t i = 0; i < l->child_count && !ages->failed; i++)
        collect_ages(l->children[i], metric_count, ages);
}

static int compare_age(const void *a, const void *b)
{
    const struct buffer_age *x = a, *y = b;
    return x->end < y->end ? -1 : x->end > y->end;
}

int store_cutoff_for_bytes(struct store *s, uint64_t bytes, int64_t *cutoff)
{
    struct age_list ages = {0};
    pthread_rwlock_rdlock(level_lock(s->root));
    for (uint32_t c = 0; c < s->root->child_count; c++) {
        struct level *cl = s->root->children[c];
        pthread_rwlock_rdlock(level_lock(cl));
        for (uint32_t h = 0; h < cl->child_count; h++) {
            struct level *host = cl->children[h];
            pthread_rwlock_rdlock(level_lock(host));
            collect_ages(host, s->metric_count, &ages);
            pthread_rwlock_unlock(level_lock(host));
        }
        pthread_rwlock_unlock(level_lock(cl));
    }
    pthread_rwlock_unlock(level_lock(s->root));
    if (ages.failed) {
        free(ages.items);
        return STORE_ENOMEM;
    }
    if (ages.count > 1)
        qsort(ages.items, ages.count, sizeof(*ages.items), compare_age);
    uint64_t sum = 0;
    *cutoff = INT64_MAX;
    for (size_t i = 0; i < ages.count; i++) {
        sum += ages.items[i].bytes;
        if (sum >= bytes) {
            *cutoff = ages.items[i].end + 1;
            break;
        }
    }
    free(ages.items);
    return 0;
}

/* ---- health and statistics ---------------------------------------------- */

/* Sets *found if some non-empty head buffer exists for metric in l's
 * subtree and *stale if any such head is stale at now. */
static void health_walk(const struct level *l, int metric, int64_t now, bool *found, bool *stale)
{
    struct chain_block head;
    if (chain_newest_block(level_chain_head(l, metric), &head)) {
        *found = true;
        if (now - (head.start + head.frequency * (int64_t)head.len) > 5 * head.frequency)
            *stale = true;
    }
    for (uint32_t i = 0; i < l->child_count; i++)
        health_walk(l->children[i], metric, now, found, stale);
}

int store_health(struct store *s, const char *cluster, size_t cluster_len, const char *node,
                 size_t node_len, const int *metrics, size_t count, int64_t now,
                 enum store_health *out)
{
    struct store_host h;
    if (cluster_len == 0 || node_len == 0 ||
        store_host_lock_read(s, cluster, cluster_len, node, node_len, &h) != 0)
        return STORE_ENOTFOUND;
    for (size_t i = 0; i < count; i++) {
        bool found = false, stale = false;
        if (metrics[i] >= 0 && (size_t)metrics[i] < s->metric_count)
            health_walk(h.level, metrics[i], now, &found, &stale);
        out[i] = !found ? STORE_MISSING : stale ? STORE_DEGRADED : STORE_HEALTHY;
    }
    store_host_unlock(&h);
    return 0;
}

/* chain_block_fn */
static int count_block(void *ctx, const struct chain_block *b)
{
    struct store_stats *st = ctx;
    st->buffers++;
    st->samples += b->len;
    st->raw_slots += b->raw_slots;
    st->encoded_bytes += b->encoded_bytes;
    for (int k = 0; k < CHAIN_ENCODINGS; k++)
        st->sealed_by_encoding[k] += b->sealed_by_encoding[k];
    return 0;
}

static void stats_walk(const struct store *s, struct level *l, struct store_stats *st)
{
    st->levels++;
    if (l->depth == 2) {
        st->tag_sections += tag_cache_count(l->upper->tags);
        st->tag_section_bytes += tag_cache_bytes(l->upper->tags);
    }
    for (uint32_t i = 0; i < l->chain_count; i++)
        chain_for_each_block(l->heads[i], count_block, st);
    for (uint32_t i = 0; i < l->child_count; i++) {
        struct level *c = l->children[i];
        if (c->depth <= LEVEL_LOCKED_DEPTH)
            pthread_rwlock_rdlock(level_lock(c));
        stats_walk(s, c, st);
        if (c->depth <= LEVEL_LOCKED_DEPTH)
            pthread_rwlock_unlock(level_lock(c));
    }
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(level_lock(s->root));
    stats_walk(s, s->root, out);
    pthread_rwlock_unlock(level_lock(s->root));
    out->bytes = store_bytes(s);
    out->pool_bytes = chain_pool_bytes();
}

/* Compacts every chain of l and below (the host's write lock is held). */
static void compact_level(struct store *s, struct level *l, int64_t *delta, uint64_t *sealed)
{
    (void)s;
    for (uint32_t i = 0; i < l->chain_count; i++)
        *sealed += chain_compact(l->heads[i], delta);
    for (uint32_t i = 0; i < l->child_count; i++)
        compact_level(s, l->children[i], delta, sealed);
}

void store_compact(struct store *s, uint64_t *sealed)
{
    *sealed = 0;
    char **clusters = NULL;
    size_t cluster_count = 0;
    if (store_list_clusters(s, &clusters, &cluster_count) != 0)
        return;
    for (size_t c = 0; c < cluster_count; c++) {
        char **hosts = NULL;
        size_t host_count = 0;
        size_t clen = strlen(clusters[c]);
        if (store_list_hosts(s, clusters[c], clen, &hosts, &host_count) != 0)
            continue;
        for (size_t i = 0; i < host_count; i++) {
            struct store_host h;
            if (store_host_lock(s, clusters[c], clen, hosts[i], strlen(hosts[i]), false, NULL,
                                &h) != 0)
                continue;
            int64_t delta = 0;
            compact_level(s, h.level, &delta, sealed);
            account(s, delta);
            store_host_unlock(&h);
        }
        for (size_t i = 0; i < host_count; i++)
            free(hosts[i]);
        free(hosts);
        free(clusters[c]);
    }
    free(clusters);
}
