/*
 * progress — progress lines for long work: the restore at startup,
 * snapshot runs, the Go export, cleanup and archive passes.
 *
 * The work counts units (hosts, clusters) out of a total known up front,
 * and an amount (samples, bytes, files) it handles. Once the work has run
 * longer than PROGRESS_PERIOD_MS, a line at info level reports every
 * PROGRESS_PERIOD_MS what is done, the rate and the time left:
 *
 *   restore: 1200 of 5000 hosts (24 %), 23.9 M samples, 4.8 M samples/s, 5 s so far, about 16 s left
 *
 * and progress_end() adds a summary line, but only when such lines were
 * written (short work keeps the one summary its caller logs anyway).
 *
 * Thread-safe: any number of threads may call progress_add() on one
 * struct progress. The caller owns the struct (on the stack, usually);
 * progress_end() releases what progress_begin() set up.
 */
#ifndef CCMS_PROGRESS_H
#define CCMS_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRESS_PERIOD_MS 5000

struct progress {
    const char *what;           /* "restore", "snapshot", ... (static strings) */
    const char *unit;           /* "hosts" */
    const char *amount_unit;    /* "samples", "bytes", "files" */
    uint64_t total;             /* units to do; 0 = not known (no percentage, no ETA) */
    int64_t period_ms;          /* PROGRESS_PERIOD_MS; a test may lower it */
    /* where lines go: log_info by default; a test may collect them */
    void (*emit)(const char *line, void *ctx);
    void *emit_ctx;
    pthread_mutex_t lock;       /* everything below */
    uint64_t done, amount;
    int64_t start_ms, next_ms;
    unsigned lines;             /* progress lines written */
};

void progress_begin(struct progress *p, const char *what, const char *unit, uint64_t total,
                    const char *amount_unit);

/* units more done, amount more handled; may write a progress line. */
void progress_add(struct progress *p, uint64_t units, uint64_t amount);

/* The summary line (when progress lines were written), and the cleanup. */
void progress_end(struct progress *p);

/* The text of a progress line at now_ms (since p->start_ms), for the
 * emitter and the tests: done, percentage and ETA when the total is
 * known, amount and its rate. */
void progress_format(const struct progress *p, int64_t now_ms, bool final, char *out,
                     size_t out_len);

#endif
