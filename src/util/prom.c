/*
 * prom — Prometheus text exposition (see prom.h).
 */
#include "util/prom.h"

#include <stdio.h>
#include <string.h>

static const double prom_bounds[PROM_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void prom_family(struct jbuf *b, const char *name, const char *type, const char *help)
{
    jbuf_puts(b, "# HELP ");
    jbuf_puts(b, name);
    jbuf_putc(b, ' ');
    jbuf_puts(b, help);
    jbuf_puts(b, "\n# TYPE ");
    jbuf_puts(b, name);
    jbuf_putc(b, ' ');
    jbuf_puts(b, type);
    jbuf_putc(b, '\n');
}

static void prom_head(struct jbuf *b, const char *name, const char *labels)
{
    jbuf_puts(b, name);
    if (labels != NULL && labels[0] != '\0') {
        jbuf_putc(b, '{');
        jbuf_puts(b, labels);
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ' ');
}

void prom_u64(struct jbuf *b, const char *name, const char *labels, uint64_t v)
{
    char num[24];
    prom_head(b, name, labels);
    snprintf(num, sizeof(num), "%llu\n", (unsigned long long)v);
    jbuf_puts(b, num);
}

void prom_f64(struct jbuf *b, const char *name, const char *labels, double v)
{
    char num[40];
    prom_head(b, name, labels);
    snprintf(num, sizeof(num), "%.9g\n", v);
    jbuf_puts(b, num);
}

void prom_label_value(struct jbuf *b, const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\\' || v[i] == '"') {
            jbuf_putc(b, '\\');
            jbuf_putc(b, v[i]);
        } else if (v[i] == '\n') {
            jbuf_puts(b, "\\n");
        } else {
            jbuf_putc(b, v[i]);
        }
    }
}

void prom_observe_ns(struct prom_histogram *h, uint64_t ns)
{
    double s = (double)ns * 1e-9;
    int i = 0;
    while (i < PROM_LATENCY_BUCKETS && s > prom_bounds[i])
        i++;
    if (i < PROM_LATENCY_BUCKETS)
        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void prom_histogram_write(struct jbuf *b, const char *name, const char *labels,
                          const struct prom_histogram *h)
{
    char series[160], lab[256];
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    uint64_t cumulative = 0;
    /* count first: a bucket observed meanwhile then never exceeds it */
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    uint64_t sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (int i = 0; i < PROM_LATENCY_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (cumulative > count)
            cumulative = count;
        snprintf(lab, sizeof(lab), "%s%sle=\"%g\"", labels ? labels : "", sep, prom_bounds[i]);
        prom_u64(b, series, lab, cumulative);
    }
    snprintf(lab, sizeof(lab), "%s%sle=\"+Inf\"", labels ? labels : "", sep);
    prom_u64(b, series, lab, count);
    snprintf(series, sizeof(series), "%s_sum", name);
    prom_f64(b, series, labels, (double)sum_ns * 1e-9);
    snprintf(series, sizeof(series), "%s_count", name);
    prom_u64(b, series, labels, count);
}
