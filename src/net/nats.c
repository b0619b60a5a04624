/*
 * nats — NATS subscriptions feeding the ingest path (see nats.h).
 *
 * Threads: cnats' own (reader, flusher, reconnect, one delivery thread per
 * subscription, one for connection callbacks); ours: num-workers decoder
 * threads per subscription and one supervisor (rebuilds a connection cnats
 * closed for good, polls the drop counters, logs the counters each minute).
 *
 * Connection callbacks reach the running instance through nats_running
 * under nats_lock, never through a closure, because cnats may run them
 * after natsConnection_Destroy() returned. Message handlers get their
 * subscription as closure; nats_handlers counts the subscriptions whose
 * handler may still run (cnats' on-complete callback ends that), and no
 * subscription or worker is freed before it reaches zero.
 */
#include "net/nats.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "log.h"
#include "util/hash.h"
#include "util/prom.h"

#define NATS_QUEUE_MSGS        256           /* per worker */
#define NATS_QUEUE_BYTES       (64u << 20)   /* per subscription, all its workers */
#define NATS_PENDING_MSGS      1000000       /* cnats buffer per subscription */
#define NATS_PENDING_BYTES     (1 << 30)
#define NATS_CONNECT_TIMEOUT_MS 2000
#define NATS_RECONNECT_MIN_MS  250
#define NATS_RECONNECT_MAX_MS  5000
#define NATS_RECREATE_MIN_S    1
#define NATS_RECREATE_MAX_S    30
#define NATS_DRAIN_MS          30000
#define NATS_STATS_PERIOD_S    60
#define NATS_LOG_BURST         5             /* warnings per kind and period */

struct nats_item {
    natsMsg *msg;
    int64_t received;
};

struct nats_worker {
    struct nats_sub *sub;
    pthread_t thread;
    pthread_cond_t wake;             /* an item arrived, or closing */
    struct nats_item *ring;          /* NATS_QUEUE_MSGS slots */
    size_t head, count;
};

struct nats_sub {
    struct nats_ingest *ni;
    const char *subject;             /* borrowed from the config */
    const char *cluster_tag;
    const char *js_stream;           /* JetStream: stream and durable consumer, else NULL */
    const char *js_durable;
    natsSubscription *ns;            /* of the current connection (supervisor-owned) */
    int64_t dropped_seen;            /* cnats' drop count of ns */
    /* A subscription that failed on a live connection (a JetStream stream
     * not created yet, no JetStream leader yet) is tried again by the
     * supervisor at retry_at, the delay doubling up to NATS_RECREATE_MAX_S. */
    int64_t retry_at, retry_delay;
    unsigned failures;               /* attempts failed since the last success */
    bool drained;                    /* ns is being drained (shutdown) */
    pthread_mutex_t lock;            /* everything below */
    pthread_cond_t room, idle;
    size_t busy;                     /* messages queued or being decoded */
    size_t bytes;                    /* their payload */
    size_t waiting_for;              /* the worker a blocked producer waits for */
    bool producer_waiting, barrier_waiting, closing;
    struct nats_worker *workers;
    size_t nworkers, started;
};

struct nats_ingest {
    const struct ccms_config *cfg;
    struct store *store;
    struct checkpointer *cp;
    natsOptions *opts;
    natsConnection *conn;            /* owned by start/stop and the supervisor */
    struct nats_sub *subs;
    size_t nsubs;
    bool supervisor_started;
    pthread_t supervisor;
    uint64_t dropped_retired;        /* drops of subscriptions already destroyed */
    uint64_t logged_messages;        /* nats_totals.messages at the last info log */
    /* guarded by nats_lock */
    bool stopping, closed, ever_connected;
    int64_t recreate_at, recreate_delay;
    char logged[1024];               /* failures logged since the last connect */
    char url[256];                   /* last connected server */
};

static struct {
    _Atomic uint64_t messages, bytes, lines, accepted, rejected, ignored, errors;
    _Atomic uint64_t reconnects, dropped;
    _Atomic uint64_t acked, naked;       /* JetStream acknowledgements */
    /* JetStream consumers as the server saw them at the last look (summed
     * over the subscriptions): the lag, and what is delivered but not yet
     * acknowledged or was delivered more than once */
    _Atomic uint64_t js_pending, js_ack_pending, js_redelivered;
} nats_totals;
static _Atomic bool nats_connected;

static pthread_mutex_t nats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nats_wake = PTHREAD_COND_INITIALIZER;   /* supervisor */
static pthread_cond_t nats_done = PTHREAD_COND_INITIALIZER;   /* nats_handlers fell */
static struct nats_ingest *nats_running;
static size_t nats_handlers;

/* ---- rate-limited warnings ---------------------------------------------- */

struct nats_limiter {
    pthread_mutex_t lock;
    int64_t window;
    unsigned logged;
    uint64_t suppressed;
};

static struct nats_limiter nats_reject_limit = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct nats_limiter nats_error_limit = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct nats_limiter nats_async_limit = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Whether one more warning of this kind may be logged in this period;
 * says how many the previous period swallowed. */
static bool nats_limiter_allow(struct nats_limiter *l, const char *what)
{
    int64_t now = (int64_t)time(NULL);
    uint64_t missed = 0;
    bool ok;
    pthread_mutex_lock(&l->lock);
    if (now - l->window >= NATS_STATS_PERIOD_S) {
        missed = l->suppressed;
        l->window = now;
        l->logged = 0;
        l->suppressed = 0;
    }
    ok = l->logged < NATS_LOG_BURST;
    if (ok)
        l->logged++;
    else
        l->suppressed++;
    pthread_mutex_unlock(&l->lock);
    if (missed > 0)
        log_warn("NATS: %" PRIu64 " more %s were not logged", missed, what);
    return ok;
}

/* ---- routing pre-scan ----------------------------------------------------- */

/* The host of one line (its last host/hostname tag): 1 with *host set, 0
 * for none, -1 when a backslash or a malformed tag makes it uncertain. */
static int nats_line_host(const char *p, const char *end, const char **host, size_t *host_len)
{
    int found = 0;
    while (p < end && *p == ' ')
        p++;
    if (p == end || *p == '#' || *p == '\r')
        return 0;
    for (; p < end && *p != ',' && *p != ' '; p++)
        if (*p == '\\')
            return -1;
    while (p < end && *p == ',') {
        const char *k = ++p, *v;
        for (; p < end && *p != '=' && *p != ',' && *p != ' '; p++)
            if (*p == '\\')
                return -1;
        if (p == end || *p != '=')
            return -1;
        size_t klen = (size_t)(p - k);
        for (v = ++p; p < end && *p != ',' && *p != ' '; p++)
            if (*p == '\\')
                return -1;
        if (k[0] == 'h' && ((klen == 4 && memcmp(k, "host", 4) == 0) ||
                            (klen == 8 && memcmp(k, "hostname", 8) == 0))) {
            *host = v;
            *host_len = (size_t)(p - v);
            found = 1;
        }
    }
    return found;
}

enum nats_ingest_hosts nats_ingest_classify(const char *data, size_t len, const char **host,
                                            size_t *host_len)
{
    const char *p = data, *end = data + len, *first = NULL;
    size_t first_len = 0;
    while (len > 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *h = NULL;
        size_t hl = 0;
        int rc = nats_line_host(p, nl ? nl : end, &h, &hl);
        if (rc < 0)
            return NATS_INGEST_MIXED_HOSTS;
        if (rc > 0 && first == NULL) {
            first = h;
            first_len = hl;
        } else if (rc > 0 && (hl != first_len || memcmp(h, first, hl) != 0)) {
            return NATS_INGEST_MIXED_HOSTS;
        }
        p = nl ? nl + 1 : end;
    }
    if (first == NULL)
        return NATS_INGEST_NO_HOST;
    *host = first;
    *host_len = first_len;
    return NATS_INGEST_ONE_HOST;
}

/* ---- decoding --------------------------------------------------------------- */

static void nats_count(const struct ingest_result *res, size_t bytes, bool failed)
{
    atomic_fetch_add_explicit(&nats_totals.messages, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&nats_totals.bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&nats_totals.lines, res->lines, memory_order_relaxed);
    atomic_fetch_add_explicit(&nats_totals.accepted, res->accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&nats_totals.rejected, res->rejected, memory_order_relaxed);
    atomic_fetch_add_explicit(&nats_totals.ignored, res->ignored, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&nats_totals.errors, 1, memory_order_relaxed);
}

/* The same options as POST /api/write (src/api/write.c). */
static struct ingest_options nats_options_for(const struct nats_sub *sub, int64_t received)
{
    const struct ccms_config *cfg = sub->ni->cfg;
    struct ingest_options opts;
    ingest_options_from_config(cfg, received, &opts);
    opts.default_cluster = sub->cluster_tag;
    opts.checkpointer = sub->ni->cp;
    return opts;
}

/* One message = one ingest batch; takes ownership of msg. */
static void nats_decode(struct nats_sub *sub, natsMsg *msg, int64_t received)
{
    struct ingest_options opts = nats_options_for(sub, received);
    struct ingest_result res = { 0 };
    struct ingest_batch *b = NULL;
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    int rc = ingest_batch_new(sub->ni->store, &opts, &b);
    if (rc == 0) {
        rc = len > 0 ? ingest_batch_feed(b, data, len) : 0;
        int frc = ingest_batch_finish(b);
        rc = rc != 0 ? rc : frc;
        ingest_batch_result(b, &res);
    }
    nats_count(&res, len, rc != 0 || res.persist_failed);
    if (res.rejected > 0 && nats_limiter_allow(&nats_reject_limit, "messages with rejected lines"))
        log_warn("NATS: message on \"%s\" (subscription \"%s\"): %s", natsMsg_GetSubject(msg),
                 sub->subject, ingest_batch_error_text(b));
    if (rc != 0 && nats_limiter_allow(&nats_error_limit, "NATS storage errors"))
        log_error("NATS: out of memory while storing a message on \"%s\"; the rest of it is lost",
                  natsMsg_GetSubject(msg));
    else if (res.persist_failed && nats_limiter_allow(&nats_error_limit, "NATS storage errors"))
        log_error("NATS: samples of a message on \"%s\" are in memory but not in the write-ahead "
                  "log (see above)", natsMsg_GetSubject(msg));
    if (sub->js_stream != NULL) {
        /* JetStream: the message is acknowledged once its samples are in
         * the write-ahead log (bad lines are counted, and acknowledged
         * with the rest: redelivering them would never help); a message
         * that could not be stored is handed back for redelivery. */
        natsStatus as = rc == 0 && !res.persist_failed ? natsMsg_Ack(msg, NULL)
                                                       : natsMsg_Nak(msg, NULL);
        if (as == NATS_OK)
            atomic_fetch_add(rc == 0 && !res.persist_failed ? &nats_totals.acked
                                                            : &nats_totals.naked, 1);
        else if (nats_limiter_allow(&nats_error_limit, "NATS acknowledgements"))
            log_warn("NATS: cannot acknowledge a message on \"%s\": %s (it will be delivered "
                     "again)", natsMsg_GetSubject(msg), natsStatus_GetText(as));
    }
    ingest_batch_free(b);
    natsMsg_Destroy(msg);
}

/* ---- per-subscription queues and workers ---------------------------------- */

/* Wakes a producer blocked on a full queue only once that queue is half
 * empty: one wake per many messages instead of one per message. */
static void nats_wake_producer(struct nats_sub *sub)
{
    if (sub->producer_waiting &&
        sub->workers[sub->waiting_for].count <= NATS_QUEUE_MSGS / 2 &&
        sub->bytes <= NATS_QUEUE_BYTES / 2)
        pthread_cond_signal(&sub->room);
}

static void *nats_work(void *arg)
{
    struct nats_worker *wk = arg;
    struct nats_sub *sub = wk->sub;
    pthread_mutex_lock(&sub->lock);
    for (;;) {
        while (wk->count == 0 && !sub->closing)
            pthread_cond_wait(&wk->wake, &sub->lock);
        if (wk->count == 0)
            break;
        struct nats_item it = wk->ring[wk->head];
        wk->head = (wk->head + 1) % NATS_QUEUE_MSGS;
        wk->count--;
        pthread_mutex_unlock(&sub->lock);
        size_t len = (size_t)natsMsg_GetDataLength(it.msg);
        nats_decode(sub, it.msg, it.received);
        pthread_mutex_lock(&sub->lock);
        sub->bytes -= len;
        if (--sub->busy == 0 && sub->barrier_waiting)
            pthread_cond_signal(&sub->idle);
        nats_wake_producer(sub);
    }
    pthread_mutex_unlock(&sub->lock);
    return NULL;
}

/* Blocks while the worker's queue (or the subscription's byte budget) is
 * full: back-pressure into cnats' pending buffer, never a silent drop. */
static void nats_enqueue(struct nats_sub *sub, size_t w, natsMsg *msg, int64_t received)
{
    struct nats_worker *wk = &sub->workers[w];
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    pthread_mutex_lock(&sub->lock);
    while (wk->count == NATS_QUEUE_MSGS ||
           (sub->bytes > 0 && sub->bytes + len > NATS_QUEUE_BYTES)) {
        sub->producer_waiting = true;
        sub->waiting_for = w;
        pthread_cond_wait(&sub->room, &sub->lock);
    }
    sub->producer_waiting = false;
    wk->ring[(wk->head + wk->count) % NATS_QUEUE_MSGS] = (struct nats_item){ msg, received };
    if (wk->count++ == 0)
        pthread_cond_signal(&wk->wake); /* only an empty queue's worker sleeps */
    sub->busy++;
    sub->bytes += len;
    pthread_mutex_unlock(&sub->lock);
}

/* Waits until the workers have decoded (and acknowledged) every message
 * queued so far. */
static void nats_wait_idle(struct nats_sub *sub)
{
    pthread_mutex_lock(&sub->lock);
    sub->barrier_waiting = true;
    while (sub->busy > 0)
        pthread_cond_wait(&sub->idle, &sub->lock);
    sub->barrier_waiting = false;
    pthread_mutex_unlock(&sub->lock);
}

/* A message of several hosts: decoded here once every earlier message of
 * the subscription is done; later ones wait, since cnats delivers a
 * subscription's messages one at a time. */
static void nats_decode_in_order(struct nats_sub *sub, natsMsg *msg, int64_t received)
{
    nats_wait_idle(sub);
    nats_decode(sub, msg, received);
}

static void nats_on_message(natsConnection *nc, natsSubscription *ns, natsMsg *msg, void *closure)
{
    struct nats_sub *sub = closure;
    int64_t received = (int64_t)time(NULL);
    const char *host = NULL;
    size_t host_len = 0, w = 0;
    (void)nc;
    (void)ns;
    if (sub->nworkers > 1) {
        switch (nats_ingest_classify(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                                     &host, &host_len)) {
        case NATS_INGEST_MIXED_HOSTS:
            nats_decode_in_order(sub, msg, received);
            return;
        case NATS_INGEST_ONE_HOST:
            w = (size_t)hash_bytes(host, host_len) % sub->nworkers;
            break;
        case NATS_INGEST_NO_HOST:
            break;
        }
    }
    nats_enqueue(sub, w, msg, received);
}

static void nats_on_complete(void *closure)
{
    (void)closure;
    pthread_mutex_lock(&nats_lock);
    nats_handlers--;
    pthread_cond_broadcast(&nats_done);
    pthread_mutex_unlock(&nats_lock);
}

static int nats_sub_init(struct nats_ingest *ni, struct nats_sub *sub,
                         const struct ccms_nats_subscription *conf, size_t nworkers)
{
    sub->ni = ni;
    sub->subject = conf->subscribe_to;
    sub->cluster_tag = conf->cluster_tag;
    sub->js_stream = conf->js_stream;
    sub->js_durable = conf->js_durable;
    pthread_mutex_init(&sub->lock, NULL);
    pthread_cond_init(&sub->room, NULL);
    pthread_cond_init(&sub->idle, NULL);
    sub->workers = calloc(nworkers, sizeof(*sub->workers));
    if (sub->workers == NULL)
        return -ENOMEM;
    sub->nworkers = nworkers;
    for (size_t i = 0; i < nworkers; i++) {
        sub->workers[i].sub = sub;
        pthread_cond_init(&sub->workers[i].wake, NULL);
        sub->workers[i].ring = calloc(NATS_QUEUE_MSGS, sizeof(struct nats_item));
        if (sub->workers[i].ring == NULL)
            return -ENOMEM;
    }
    return 0;
}

static int nats_sub_start(struct nats_sub *sub)
{
    for (; sub->started < sub->nworkers; sub->started++)
        if (pthread_create(&sub->workers[sub->started].thread, NULL, nats_work,
                           &sub->workers[sub->started]) != 0)
            return -EAGAIN;
    return 0;
}

/* Lets the workers finish their queues, then joins them. */
static void nats_sub_close(struct nats_sub *sub)
{
    pthread_mutex_lock(&sub->lock);
    sub->closing = true;
    for (size_t i = 0; i < sub->nworkers; i++)
        pthread_cond_signal(&sub->workers[i].wake);
    pthread_mutex_unlock(&sub->lock);
    for (size_t i = 0; i < sub->started; i++)
        pthread_join(sub->workers[i].thread, NULL);
    sub->started = 0;
}

static void nats_sub_free(struct nats_sub *sub)
{
    for (size_t i = 0; sub->workers != NULL && i < sub->nworkers; i++) {
        pthread_cond_destroy(&sub->workers[i].wake);
        free(sub->workers[i].ring);
    }
    free(sub->workers);
    pthread_cond_destroy(&sub->room);
    pthread_cond_destroy(&sub->idle);
    pthread_mutex_destroy(&sub->lock);
}

/* ---- connection events ------------------------------------------------------ */

/* cnats' text for the last error of this thread. */
static const char *nats_lib_error(natsStatus s)
{
    const char *text = nats_GetLastError(NULL);
    return text != NULL && text[0] != '\0' ? text : natsStatus_GetText(s);
}

static const char *nats_last_error(natsConnection *nc)
{
    const char *text = NULL;
    natsStatus s = natsConnection_GetLastError(nc, &text);
    if (text != NULL && text[0] != '\0')
        return text;
    return s != NATS_OK ? natsStatus_GetText(s) : "connection lost";
}

/* Whether a failure of this kind and reason is new since the last
 * successful connect (then it is remembered): a failure that repeats every
 * attempt, or alternates with another, is logged once. Called with
 * nats_lock held. */
static bool nats_first_time(struct nats_ingest *ni, const char *kind, const char *reason)
{
    char entry[200];
    size_t used = strlen(ni->logged);
    int n = snprintf(entry, sizeof(entry), "%s: %.150s\n", kind, reason);
    if (n < 0 || strstr(ni->logged, entry) != NULL || (size_t)n >= sizeof(ni->logged) - used)
        return false;
    memcpy(ni->logged + used, entry, (size_t)n + 1);
    return true;
}

/* Connected (first time, or again after the supervisor rebuilt the
 * connection). Called with nats_lock held. */
static void nats_note_connected_locked(struct nats_ingest *ni, natsConnection *nc)
{
    if (natsConnection_GetConnectedUrl(nc, ni->url, sizeof(ni->url)) != NATS_OK)
        ni->url[0] = '\0';
    if (ni->ever_connected)
        atomic_fetch_add(&nats_totals.reconnects, 1);
    ni->ever_connected = true;
    ni->logged[0] = '\0';
    ni->recreate_delay = 0;
    atomic_store(&nats_connected, true);
    log_info("NATS: connected to %s", ni->url);
}

static void nats_on_connected(natsConnection *nc, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&nats_lock);
    if (nats_running != NULL && !nats_running->stopping)
        nats_note_connected_locked(nats_running, nc);
    pthread_mutex_unlock(&nats_lock);
}

static void nats_on_disconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&nats_lock);
    bool was = atomic_exchange(&nats_connected, false);
    if (was && nats_running != NULL && !nats_running->stopping)
        log_warn("NATS: disconnected from %s (%s); reconnecting in the background",
                 nats_running->url, nats_last_error(nc));
    pthread_mutex_unlock(&nats_lock);
}

static void nats_on_reconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&nats_lock);
    if (nats_running != NULL && !nats_running->stopping) {
        struct nats_ingest *ni = nats_running;
        if (natsConnection_GetConnectedUrl(nc, ni->url, sizeof(ni->url)) != NATS_OK)
            ni->url[0] = '\0';
        atomic_fetch_add(&nats_totals.reconnects, 1);
        atomic_store(&nats_connected, true);
        log_info("NATS: reconnected to %s", ni->url);
    }
    pthread_mutex_unlock(&nats_lock);
}

/* cnats gave up on this connection (e.g. authorization errors twice in a
 * row): the supervisor builds a new one after a growing delay. */
static void nats_on_closed(natsConnection *nc, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&nats_lock);
    struct nats_ingest *ni = nats_running;
    atomic_store(&nats_connected, false);
    if (ni != NULL && !ni->stopping) {
        const char *why = nats_last_error(nc);
        ni->recreate_delay = ni->recreate_delay == 0 ? NATS_RECREATE_MIN_S
                             : ni->recreate_delay * 2 > NATS_RECREATE_MAX_S ? NATS_RECREATE_MAX_S
                             : ni->recreate_delay * 2;
        ni->recreate_at = (int64_t)time(NULL) + ni->recreate_delay;
        ni->closed = true;
        if (nats_first_time(ni, "closed", why))
            log_warn("NATS: connection closed (%s); opening a new one, retrying with backoff "
                     "until it succeeds", why);
        pthread_cond_signal(&nats_wake);
    }
    pthread_mutex_unlock(&nats_lock);
}

/* Slow consumers are rate-limited; other errors (authorization) are logged
 * once until the next successful connect. */
static void nats_on_error(natsConnection *nc, natsSubscription *ns, natsStatus err, void *closure)
{
    (void)closure;
    if (err == NATS_SLOW_CONSUMER) {
        if (nats_limiter_allow(&nats_async_limit, "asynchronous NATS errors"))
            log_warn("NATS: subscription \"%s\" cannot keep up: messages beyond the pending "
                     "limit are dropped (counted as \"dropped\")",
                     ns != NULL ? natsSubscription_GetSubject(ns) : "?");
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "%s (%s)", natsStatus_GetText(err), nats_last_error(nc));
    pthread_mutex_lock(&nats_lock);
    if (nats_running != NULL && !nats_running->stopping &&
        nats_first_time(nats_running, "async", why))
        log_warn("NATS: %s", why);
    pthread_mutex_unlock(&nats_lock);
}

/* After every server of the list failed once: 250 ms doubling to 5 s, +10 % jitter. */
static int64_t nats_reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    int64_t d = NATS_RECONNECT_MIN_MS;
    struct timespec ts;
    (void)nc;
    (void)closure;
    for (int i = 1; i < attempts && d < NATS_RECONNECT_MAX_MS; i++)
        d *= 2;
    if (d > NATS_RECONNECT_MAX_MS)
        d = NATS_RECONNECT_MAX_MS;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return d + ts.tv_nsec % (d / 10 + 1);
}

/* ---- options -------------------------------------------------------------------- */

/* `nats.address` is a comma-separated list; a URL without scheme gets nats://. */
static natsStatus nats_set_servers(natsOptions *o, const char *address)
{
    size_t n = 0, cap = 1;
    for (const char *p = address; *p; p++)
        cap += *p == ',';
    char **urls = calloc(cap, sizeof(*urls));
    char *copy = strdup(address), *save = NULL;
    natsStatus s = urls && copy ? NATS_OK : NATS_NO_MEMORY;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; s == NATS_OK && t;
         t = strtok_r(NULL, ",", &save)) {
        t += strspn(t, " \t");
        size_t len = strcspn(t, " \t");
        if (len == 0)
            continue;
        bool scheme = strstr(t, "://") != NULL;
        urls[n] = malloc(len + 8);
        if (urls[n] == NULL) {
            s = NATS_NO_MEMORY;
            break;
        }
        snprintf(urls[n++], len + 8, "%s%.*s", scheme ? "" : "nats://", (int)len, t);
    }
    if (s == NATS_OK)
        s = n > 0 ? natsOptions_SetServers(o, (const char **)urls, (int)n) : NATS_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    free(copy);
    return s;
}

static natsStatus nats_set_behaviour(natsOptions *o)
{
    natsStatus s = natsOptions_SetName(o, "cc-metric-store");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, NATS_CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, NATS_RECONNECT_MIN_MS);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, nats_reconnect_delay, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, nats_on_connected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, nats_on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, nats_on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, nats_on_closed, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, nats_on_error, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPendingMsgs(o, NATS_PENDING_MSGS);
    return s;
}

static int nats_make_options(struct nats_ingest *ni)
{
    const struct ccms_config *cfg = ni->cfg;
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = nats_set_servers(o, cfg->nats_address);
    if (s == NATS_OK && cfg->nats_username[0] != '\0' && cfg->nats_password[0] != '\0')
        s = natsOptions_SetUserInfo(o, cfg->nats_username, cfg->nats_password);
    if (s == NATS_OK && cfg->nats_creds_file[0] != '\0')
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->nats_creds_file, NULL);
    if (s == NATS_OK)
        s = nats_set_behaviour(o);
    if (s != NATS_OK) {
        log_error("NATS: unusable nats options (address \"%s\"): %s; NATS ingestion is off",
                  cfg->nats_address, nats_lib_error(s));
        natsOptions_Destroy(o);
        return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    ni->opts = o;
    return 0;
}

/* ---- connect, subscribe, tear down -------------------------------------------- */

/* A JetStream push subscription of the durable consumer sub->js_durable
 * on sub->js_stream: created when missing, resumed where it stood when it
 * exists (after downtime the backlog is delivered first). Acknowledgements
 * are explicit (nats_decode); at most NATS_JS_MAX_ACK_PENDING messages are
 * in flight, which bounds the memory a catch-up takes. The settings apply
 * when the consumer is created; an existing one keeps its own. Measured
 * with bench/jetstream_catchup.sh: 1024 messages of 20 KB catch up about
 * twice as fast as 4096 (less memory churn in the client, same overlap). */
#define NATS_JS_MAX_ACK_PENDING 1024
/* A message delivered to a store that died before acknowledging it comes
 * again after this long (to the restarted store): storing a message takes
 * milliseconds, and a second delivery only rewrites the same values. */
#define NATS_JS_ACK_WAIT_NS ((int64_t)10 * 1000 * 1000 * 1000)

/* The durable consumer, created by us (not by the subscribe call: cnats
 * deletes a consumer it created when the subscription is drained or
 * unsubscribed at shutdown, and the store would then read the whole stream
 * again at its next start). An existing consumer is kept as it is. */
static natsStatus nats_js_consumer(jsCtx *js, struct nats_sub *sub, jsErrCode *jerr)
{
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, js, sub->js_stream, sub->js_durable, NULL, jerr) == NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        return NATS_OK;
    }
    natsInbox *inbox = NULL;
    jsConsumerConfig cc;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
        s = jsConsumerConfig_Init(&cc);
    if (s == NATS_OK) {
        cc.Durable = sub->js_durable;
        cc.DeliverSubject = inbox;
        cc.FilterSubject = sub->subject;
        cc.AckPolicy = js_AckExplicit;
        cc.DeliverPolicy = js_DeliverAll;
        cc.MaxAckPending = NATS_JS_MAX_ACK_PENDING;
        cc.AckWait = NATS_JS_ACK_WAIT_NS;
        *jerr = 0;
        s = js_AddConsumer(&ci, js, sub->js_stream, &cc, NULL, jerr);
        jsConsumerInfo_Destroy(ci);
    }
    natsInbox_Destroy(inbox);
    return s;
}

/* why: the reason of a failure, for the caller's one log line. */
static natsStatus nats_js_subscribe(struct nats_ingest *ni, struct nats_sub *sub,
                                    natsSubscription **ns, char *why, size_t why_len)
{
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, ni->conn, NULL);
    jsSubOptions so;
    jsErrCode jerr = 0;
    if (s == NATS_OK)
        s = nats_js_consumer(js, sub, &jerr);
    if (s == NATS_OK)
        s = jsSubOptions_Init(&so);
    if (s == NATS_OK) {
        so.Stream = sub->js_stream;
        so.Consumer = sub->js_durable;      /* bind to it */
        so.ManualAck = true;
        s = js_Subscribe(ns, js, sub->subject, nats_on_message, sub, NULL, &so, &jerr);
    }
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr)
            snprintf(why, why_len, "stream \"%s\" not found (create it with the NATS tools; "
                     "the store does not create streams)", sub->js_stream);
        else if (jerr != 0)
            snprintf(why, why_len, "stream \"%s\", durable \"%s\": %s (JetStream error %d)",
                     sub->js_stream, sub->js_durable, nats_lib_error(s), (int)jerr);
        else
            snprintf(why, why_len, "stream \"%s\", durable \"%s\": %s", sub->js_stream,
                     sub->js_durable, nats_lib_error(s));
    }
    jsCtx_Destroy(js);
    return s;
}

/* Schedules the next attempt of a failed subscription; logs the failure
 * once per reason until the next successful connect. */
static void nats_subscribe_failed(struct nats_ingest *ni, struct nats_sub *sub, const char *why)
{
    char kind[160];
    sub->failures++;
    sub->retry_delay = sub->retry_delay == 0 ? NATS_RECREATE_MIN_S
                       : sub->retry_delay * 2 > NATS_RECREATE_MAX_S ? NATS_RECREATE_MAX_S
                       : sub->retry_delay * 2;
    sub->retry_at = (int64_t)time(NULL) + sub->retry_delay;
    snprintf(kind, sizeof(kind), "subscribe \"%.100s\"", sub->subject);
    pthread_mutex_lock(&nats_lock);
    if (nats_first_time(ni, kind, why))
        log_error("NATS: cannot subscribe to \"%s\": %s; retrying with backoff (up to every "
                  "%d s) until it succeeds", sub->subject, why, NATS_RECREATE_MAX_S);
    pthread_mutex_unlock(&nats_lock);
}

static void nats_subscribe(struct nats_ingest *ni, struct nats_sub *sub)
{
    natsSubscription *ns = NULL;
    char why[512] = "";
    natsStatus s = sub->js_stream != NULL
        ? nats_js_subscribe(ni, sub, &ns, why, sizeof(why))
        : natsConnection_Subscribe(&ns, ni->conn, sub->subject, nats_on_message, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(ns, NATS_PENDING_MSGS, NATS_PENDING_BYTES);
    if (s == NATS_OK) {
        pthread_mutex_lock(&nats_lock);
        nats_handlers++;
        pthread_mutex_unlock(&nats_lock);
        if (natsSubscription_SetOnCompleteCB(ns, nats_on_complete, NULL) != NATS_OK) {
            nats_on_complete(NULL); /* closed already: nothing more to deliver */
            s = NATS_CONNECTION_CLOSED;
        }
    }
    if (s != NATS_OK) {
        natsSubscription_Destroy(ns);
        if (s == NATS_CONNECTION_CLOSED || natsConnection_IsClosed(ni->conn)) {
            log_debug("NATS: not subscribing to \"%s\": the connection is closed already",
                      sub->subject);
            return;     /* the next connection subscribes again */
        }
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "%s", nats_lib_error(s));
        nats_subscribe_failed(ni, sub, why);
        return;
    }
    if (sub->failures > 0)
        log_info("NATS: subscribed to \"%s\" after %u failed attempt(s)", sub->subject,
                 sub->failures);
    sub->ns = ns;
    sub->dropped_seen = 0;
    sub->failures = 0;
    sub->retry_delay = 0;
}

/* The supervisor's second try at subscriptions that failed on a live
 * connection. */
static void nats_retry_subscriptions(struct nats_ingest *ni)
{
    if (ni->conn == NULL || natsConnection_Status(ni->conn) != NATS_CONN_STATUS_CONNECTED)
        return;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < ni->nsubs; i++) {
        struct nats_sub *sub = &ni->subs[i];
        if (sub->ns == NULL && sub->failures > 0 && now >= sub->retry_at)
            nats_subscribe(ni, sub);
    }
}

static void nats_connect(struct nats_ingest *ni)
{
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_Connect(&nc, ni->opts);
    if (s == NATS_OK) {
        pthread_mutex_lock(&nats_lock);
        nats_note_connected_locked(ni, nc);
        pthread_mutex_unlock(&nats_lock);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        const char *why = nats_last_error(nc);
        pthread_mutex_lock(&nats_lock);
        if (nats_first_time(ni, "connect", why))
            log_warn("NATS: cannot connect to \"%s\" yet (%s); retrying in the background",
                     ni->cfg->nats_address, why);
        pthread_mutex_unlock(&nats_lock);
    } else {
        pthread_mutex_lock(&nats_lock);
        if (nats_first_time(ni, "connect", nats_lib_error(s)))
            log_error("NATS: cannot connect to \"%s\" (%s); retrying every %d s",
                      ni->cfg->nats_address, nats_lib_error(s), NATS_RECREATE_MAX_S);
        ni->closed = true;
        ni->recreate_at = (int64_t)time(NULL) + NATS_RECREATE_MAX_S;
        pthread_mutex_unlock(&nats_lock);
        return;
    }
    ni->conn = nc;
    for (size_t i = 0; i < ni->nsubs; i++)
        nats_subscribe(ni, &ni->subs[i]);
}

/* Sums cnats' drop counters into nats_totals.dropped (supervisor, stop). */
static void nats_poll_dropped(struct nats_ingest *ni)
{
    uint64_t total = ni->dropped_retired;
    for (size_t i = 0; i < ni->nsubs; i++) {
        struct nats_sub *sub = &ni->subs[i];
        int64_t d = 0;
        if (sub->ns != NULL && natsSubscription_GetDropped(sub->ns, &d) == NATS_OK &&
            d > sub->dropped_seen)
            sub->dropped_seen = d;
        total += (uint64_t)sub->dropped_seen;
    }
    uint64_t before = atomic_exchange(&nats_totals.dropped, total);
    if (total > before && nats_limiter_allow(&nats_async_limit, "asynchronous NATS errors"))
        log_warn("NATS: %" PRIu64 " messages dropped so far: the store cannot keep up with "
                 "the publishers", total);
}

/* Waits until no subscription handler can run any more. */
static void nats_wait_handlers(void)
{
    pthread_mutex_lock(&nats_lock);
    while (nats_handlers > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        if (pthread_cond_timedwait(&nats_done, &nats_lock, &ts) == ETIMEDOUT)
            log_warn("NATS: still draining %zu subscription(s)", nats_handlers);
    }
    pthread_mutex_unlock(&nats_lock);
}

/* Stops one subscription so that every message cnats has received is
 * still handed to nats_on_message. A drain needs a server round trip; while
 * disconnected nothing more can arrive, so the local backlog is awaited.
 * Returns whether a drain was started. */
static bool nats_drain(natsConnection *nc, natsSubscription *ns)
{
    if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED &&
        natsSubscription_DrainTimeout(ns, NATS_DRAIN_MS) == NATS_OK)
        return true;
    int pending = 0;
    for (int waited = 0; waited < NATS_DRAIN_MS; waited += 10) {
        if (natsSubscription_GetPending(ns, &pending, NULL) != NATS_OK || pending == 0)
            break;
        nats_Sleep(10);
    }
    natsSubscription_Unsubscribe(ns);
    return false;
}

/* Ends the current connection. drain: every message cnats holds is still
 * delivered (shutdown); otherwise the connection is already closed. */
/* Asks the server about every JetStream consumer (a request each; the
 * supervisor does it every NATS_LAG_PERIOD_S): how far it lags behind its
 * stream. A consumer that cannot be asked keeps its last figures. */
#define NATS_LAG_PERIOD_S 2

static void nats_poll_lag(struct nats_ingest *ni)
{
    if (ni->conn == NULL || natsConnection_Status(ni->conn) != NATS_CONN_STATUS_CONNECTED)
        return;
    jsCtx *js = NULL;
    bool any = false;
    uint64_t pending = 0, ack_pending = 0, redelivered = 0;
    for (size_t i = 0; i < ni->nsubs; i++) {
        struct nats_sub *sub = &ni->subs[i];
        jsConsumerInfo *ci = NULL;
        if (sub->js_stream == NULL)
            continue;
        if (js == NULL && natsConnection_JetStream(&js, ni->conn, NULL) != NATS_OK)
            return;
        if (js_GetConsumerInfo(&ci, js, sub->js_stream, sub->js_durable, NULL, NULL) != NATS_OK)
            continue;
        any = true;
        pending += ci->NumPending;
        ack_pending += ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
        redelivered += ci->NumRedelivered > 0 ? (uint64_t)ci->NumRedelivered : 0;
        jsConsumerInfo_Destroy(ci);
    }
    jsCtx_Destroy(js);
    if (any) {
        atomic_store(&nats_totals.js_pending, pending);
        atomic_store(&nats_totals.js_ack_pending, ack_pending);
        atomic_store(&nats_totals.js_redelivered, redelivered);
    }
}

static void nats_disconnect(struct nats_ingest *ni, bool drain)
{
    for (size_t i = 0; i < ni->nsubs; i++)
        ni->subs[i].drained = drain && ni->subs[i].ns != NULL &&
                              nats_drain(ni->conn, ni->subs[i].ns);
    if (!drain)
        natsConnection_Close(ni->conn);
    nats_wait_handlers();
    /* Messages still queued for the workers are decoded, and JetStream
     * ones acknowledged, through this connection: it must outlive them
     * (an ack on a closed connection fails and the message comes again). */
    for (size_t i = 0; i < ni->nsubs; i++)
        nats_wait_idle(&ni->subs[i]);
    for (size_t i = 0; i < ni->nsubs; i++) {
        natsStatus st = ni->subs[i].drained
                            ? natsSubscription_DrainCompletionStatus(ni->subs[i].ns) : NATS_OK;
        if (st != NATS_OK)
            log_warn("NATS: draining \"%s\" ended early (%s): messages the client still held "
                     "were lost", ni->subs[i].subject, natsStatus_GetText(st));
    }
    nats_poll_dropped(ni);
    natsConnection_Close(ni->conn);
    for (size_t i = 0; i < ni->nsubs; i++) {
        ni->dropped_retired += (uint64_t)ni->subs[i].dropped_seen;
        ni->subs[i].dropped_seen = 0;
        natsSubscription_Destroy(ni->subs[i].ns);
        ni->subs[i].ns = NULL;
    }
    natsConnection_Destroy(ni->conn);
    ni->conn = NULL;
}

/* ---- supervisor ------------------------------------------------------------------ */

static void nats_log_period(struct nats_ingest *ni)
{
    uint64_t msgs = atomic_load(&nats_totals.messages);
    if (msgs == ni->logged_messages)
        return;
    log_info("NATS: %" PRIu64 " messages since the last report; totals: %" PRIu64 " messages, %"
             PRIu64 " lines, %" PRIu64 " samples stored, %" PRIu64 " lines rejected, %" PRIu64
             " reconnects, %" PRIu64 " messages dropped",
             msgs - ni->logged_messages, msgs, atomic_load(&nats_totals.lines),
             atomic_load(&nats_totals.accepted), atomic_load(&nats_totals.rejected),
             atomic_load(&nats_totals.reconnects), atomic_load(&nats_totals.dropped));
    ni->logged_messages = msgs;
}

static void *nats_supervise(void *arg)
{
    struct nats_ingest *ni = arg;
    int64_t next_log = (int64_t)time(NULL) + NATS_STATS_PERIOD_S;
    int64_t next_lag = 0;
    pthread_mutex_lock(&nats_lock);
    while (!ni->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&nats_wake, &nats_lock, &ts);
        if (ni->stopping)
            break;
        bool rebuild = ni->closed && (int64_t)time(NULL) >= ni->recreate_at;
        if (rebuild)
            ni->closed = false;
        pthread_mutex_unlock(&nats_lock);
        nats_poll_dropped(ni);
        if ((int64_t)time(NULL) >= next_lag) {
            nats_poll_lag(ni);
            next_lag = (int64_t)time(NULL) + NATS_LAG_PERIOD_S;
        }
        if (rebuild && (ni->conn == NULL || natsConnection_IsClosed(ni->conn))) {
            if (ni->conn != NULL)
                nats_disconnect(ni, false);
            nats_connect(ni);
        }
        nats_retry_subscriptions(ni);
        if ((int64_t)time(NULL) >= next_log) {
            nats_log_period(ni);
            next_log += NATS_STATS_PERIOD_S;
        }
        pthread_mutex_lock(&nats_lock);
    }
    pthread_mutex_unlock(&nats_lock);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

static void nats_free(struct nats_ingest *ni)
{
    for (size_t i = 0; ni->subs != NULL && i < ni->nsubs; i++) {
        nats_sub_close(&ni->subs[i]);
        nats_sub_free(&ni->subs[i]);
    }
    free(ni->subs);
    natsOptions_Destroy(ni->opts);
    free(ni);
}

static int nats_create(const struct ccms_config *cfg, struct store *store,
                       struct checkpointer *cp, struct nats_ingest **out)
{
    size_t nworkers = cfg->num_workers > 0 ? (size_t)cfg->num_workers : 1;
    struct nats_ingest *ni = calloc(1, sizeof(*ni));
    int rc = ni ? 0 : -ENOMEM;
    if (ni != NULL) {
        *ni = (struct nats_ingest){ .cfg = cfg, .store = store, .cp = cp };
        ni->subs = calloc(cfg->nats_subscription_count, sizeof(*ni->subs));
        rc = ni->subs ? 0 : -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < cfg->nats_subscription_count; i++) {
        ni->nsubs = i + 1;
        rc = nats_sub_init(ni, &ni->subs[i], &cfg->nats_subscriptions[i], nworkers);
    }
    for (size_t i = 0; rc == 0 && i < ni->nsubs; i++)
        rc = nats_sub_start(&ni->subs[i]);
    if (rc != 0 && ni != NULL)
        nats_free(ni);
    *out = rc == 0 ? ni : NULL;
    return rc;
}

int nats_ingest_start(const struct ccms_config *cfg, struct store *store,
                      struct checkpointer *cp, struct nats_ingest **out)
{
    struct nats_ingest *ni = NULL;
    int rc;
    *out = NULL;
    if (!cfg->nats_configured || cfg->nats_subscription_count == 0) {
        if (cfg->nats_subscription_count > 0)
            log_warn("NATS: nats-subscriptions configured but no nats.address: not connecting");
        return 0;
    }
    pthread_mutex_lock(&nats_lock);
    rc = nats_running != NULL ? -EBUSY : 0;
    pthread_mutex_unlock(&nats_lock);
    if (rc != 0)
        return rc;
    rc = nats_create(cfg, store, cp, &ni);
    if (rc != 0)
        return rc;
    rc = nats_make_options(ni);
    if (rc != 0) {
        nats_free(ni);
        return rc == -ENOMEM ? rc : 0;
    }
    pthread_mutex_lock(&nats_lock);
    nats_running = ni;
    pthread_mutex_unlock(&nats_lock);
    for (size_t i = 0; i < ni->nsubs; i++)
        log_info("NATS: subscribing to \"%s\" (cluster-tag \"%s\", %zu decoder threads)",
                 ni->subs[i].subject, ni->subs[i].cluster_tag, ni->subs[i].nworkers);
    nats_connect(ni);
    if (pthread_create(&ni->supervisor, NULL, nats_supervise, ni) != 0) {
        nats_ingest_stop(ni);
        return -EAGAIN;
    }
    ni->supervisor_started = true;
    *out = ni;
    return 0;
}

void nats_ingest_stop(struct nats_ingest *ni)
{
    if (ni == NULL)
        return;
    pthread_mutex_lock(&nats_lock);
    ni->stopping = true;
    pthread_cond_broadcast(&nats_wake);
    pthread_mutex_unlock(&nats_lock);
    if (ni->supervisor_started)
        pthread_join(ni->supervisor, NULL);
    if (ni->conn != NULL)
        nats_disconnect(ni, true);
    atomic_store(&nats_connected, false);
    for (size_t i = 0; i < ni->nsubs; i++)
        nats_sub_close(&ni->subs[i]);
    nats_log_period(ni);
    pthread_mutex_lock(&nats_lock);
    nats_running = NULL;
    pthread_mutex_unlock(&nats_lock);
    nats_free(ni);
}

/* ---- status ---------------------------------------------------------------------------- */

static void nats_put(struct jbuf *b, const char *name, uint64_t v)
{
    jbuf_putc(b, ',');
    jbuf_string(b, name, strlen(name));
    jbuf_putc(b, ':');
    jbuf_int(b, (int64_t)v);
}

void nats_ingest_status_json(struct jbuf *b)
{
    size_t subs = 0;
    char url[sizeof(((struct nats_ingest *)0)->url)] = "";
    pthread_mutex_lock(&nats_lock);
    if (nats_running != NULL) {
        subs = nats_running->nsubs;
        memcpy(url, nats_running->url, sizeof(url));
    }
    pthread_mutex_unlock(&nats_lock);
    bool connected = atomic_load(&nats_connected);
    jbuf_puts(b, ",\"nats\":{\"connected\":");
    jbuf_puts(b, connected ? "true" : "false");
    /* the server of the current connection, for failure drills */
    jbuf_puts(b, ",\"server\":");
    jbuf_string(b, connected ? url : "", connected ? strlen(url) : 0);
    nats_put(b, "subscriptions", subs);
    nats_put(b, "messages", atomic_load(&nats_totals.messages));
    nats_put(b, "bytes", atomic_load(&nats_totals.bytes));
    nats_put(b, "lines", atomic_load(&nats_totals.lines));
    nats_put(b, "accepted", atomic_load(&nats_totals.accepted));
    nats_put(b, "rejected", atomic_load(&nats_totals.rejected));
    nats_put(b, "ignored", atomic_load(&nats_totals.ignored));
    nats_put(b, "errors", atomic_load(&nats_totals.errors));
    nats_put(b, "reconnects", atomic_load(&nats_totals.reconnects));
    nats_put(b, "dropped", atomic_load(&nats_totals.dropped));
    nats_put(b, "js_acked", atomic_load(&nats_totals.acked));
    nats_put(b, "js_redeliver_requested", atomic_load(&nats_totals.naked));
    nats_put(b, "js_pending", atomic_load(&nats_totals.js_pending));
    nats_put(b, "js_ack_pending", atomic_load(&nats_totals.js_ack_pending));
    nats_put(b, "js_redelivered", atomic_load(&nats_totals.js_redelivered));
    jbuf_putc(b, '}');
}

void nats_ingest_totals(struct ingest_result *out)
{
    *out = (struct ingest_result){
        .lines = atomic_load(&nats_totals.lines),
        .accepted = atomic_load(&nats_totals.accepted),
        .rejected = atomic_load(&nats_totals.rejected),
        .ignored = atomic_load(&nats_totals.ignored),
    };
}

static void nats_metric(struct jbuf *b, const char *name, const char *type, const char *help,
                        uint64_t v)
{
    prom_family(b, name, type, help);
    prom_u64(b, name, NULL, v);
}

void nats_ingest_metrics(struct jbuf *b)
{
    nats_metric(b, "ccms_nats_connected", "gauge", "1 while connected to a NATS server",
                atomic_load(&nats_connected) ? 1 : 0);
    nats_metric(b, "ccms_nats_messages_total", "counter", "NATS messages decoded",
                atomic_load(&nats_totals.messages));
    nats_metric(b, "ccms_nats_received_bytes_total", "counter", "Payload bytes of NATS messages",
                atomic_load(&nats_totals.bytes));
    nats_metric(b, "ccms_nats_reconnects_total", "counter", "Connections re-established",
                atomic_load(&nats_totals.reconnects));
    nats_metric(b, "ccms_nats_dropped_messages_total", "counter",
                "Messages the NATS client dropped because the store fell behind (core NATS)",
                atomic_load(&nats_totals.dropped));
    nats_metric(b, "ccms_nats_storage_errors_total", "counter",
                "Messages whose samples could not all be stored or logged",
                atomic_load(&nats_totals.errors));
    nats_metric(b, "ccms_jetstream_acks_total", "counter",
                "JetStream messages acknowledged once their samples were durable",
                atomic_load(&nats_totals.acked));
    nats_metric(b, "ccms_jetstream_naks_total", "counter",
                "JetStream messages handed back for redelivery (could not be stored)",
                atomic_load(&nats_totals.naked));
    nats_metric(b, "ccms_jetstream_consumer_pending_messages", "gauge",
                "Messages in the streams not yet delivered to this store's consumers (the lag)",
                atomic_load(&nats_totals.js_pending));
    nats_metric(b, "ccms_jetstream_consumer_ack_pending_messages", "gauge",
                "Messages delivered to this store and not yet acknowledged",
                atomic_load(&nats_totals.js_ack_pending));
    nats_metric(b, "ccms_jetstream_consumer_redelivered_messages", "gauge",
                "Messages the server currently counts as delivered more than once",
                atomic_load(&nats_totals.js_redelivered));
}
