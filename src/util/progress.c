/*
 * progress — progress lines for long work (see progress.h).
 */
#include "util/progress.h"

#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "util/clock.h"

static void progress_log(const char *line, void *ctx)
{
    (void)ctx;
    log_info("%s", line);
}

void progress_begin(struct progress *p, const char *what, const char *unit, uint64_t total,
                    const char *amount_unit)
{
    *p = (struct progress){ .what = what, .unit = unit, .amount_unit = amount_unit,
                            .total = total, .period_ms = PROGRESS_PERIOD_MS,
                            .emit = progress_log };
    pthread_mutex_init(&p->lock, NULL);
    p->start_ms = clock_monotonic_ms();
    p->next_ms = p->start_ms + p->period_ms;
}

/* "23.9 M", "512 k", "17": amounts at a glance. */
static void human(double v, char *out, size_t len)
{
    if (v >= 1e9)
        snprintf(out, len, "%.1f G", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, len, "%.1f M", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, len, "%.0f k", v / 1e3);
    else
        snprintf(out, len, "%.0f", v);
}

void progress_format(const struct progress *p, int64_t now_ms, bool final, char *out,
                     size_t out_len)
{
    double secs = (double)(now_ms - p->start_ms) / 1000.0;
    char amount[32], rate[32], share[32] = "", left[48] = "";
    human((double)p->amount, amount, sizeof(amount));
    human(secs > 0 ? (double)p->amount / secs : 0, rate, sizeof(rate));
    if (p->total > 0 && !final) {
        snprintf(share, sizeof(share), " (%.0f %%)", 100.0 * (double)p->done / (double)p->total);
        if (p->done > 0 && p->done < p->total)
            snprintf(left, sizeof(left), ", about %.0f s left",
                     secs * (double)(p->total - p->done) / (double)p->done);
    }
    if (p->total > 0)
        snprintf(out, out_len, "%s: %s%" PRIu64 " of %" PRIu64 " %s%s, %s %s, %s %s/s, %.0f s %s%s",
                 p->what, final ? "done, " : "", p->done, p->total, p->unit, share, amount,
                 p->amount_unit, rate, p->amount_unit, secs, final ? "in all" : "so far", left);
    else
        snprintf(out, out_len, "%s: %s%" PRIu64 " %s, %s %s, %s %s/s, %.0f s %s", p->what,
                 final ? "done, " : "", p->done, p->unit, amount, p->amount_unit, rate,
                 p->amount_unit, secs, final ? "in all" : "so far");
}

void progress_add(struct progress *p, uint64_t units, uint64_t amount)
{
    char line[256];
    bool emit = false;
    int64_t now = clock_monotonic_ms();
    pthread_mutex_lock(&p->lock);
    p->done += units;
    p->amount += amount;
    if (now >= p->next_ms) {
        progress_format(p, now, false, line, sizeof(line));
        p->next_ms = now + p->period_ms;
        p->lines++;
        emit = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (emit)
        p->emit(line, p->emit_ctx);
}

void progress_end(struct progress *p)
{
    char line[256];
    pthread_mutex_lock(&p->lock);
    bool emit = p->lines > 0;
    if (emit)
        progress_format(p, clock_monotonic_ms(), true, line, sizeof(line));
    pthread_mutex_unlock(&p->lock);
    if (emit)
        p->emit(line, p->emit_ctx);
    pthread_mutex_destroy(&p->lock);
}
