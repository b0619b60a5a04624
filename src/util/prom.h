/*
 * prom — the Prometheus text exposition format (version 0.0.4): a writer
 * for metric families into a jbuf, and a lock-free latency histogram that
 * any module can own and observe into.
 *
 * A family is written as "# HELP", "# TYPE" and then its samples; label
 * sets are passed preformatted ("route=\"query\",code=\"200\"", or NULL),
 * and label values are escaped by prom_label_value. The caller owns the
 * jbuf; nothing here allocates except through it.
 */
#ifndef CCMS_PROM_H
#define CCMS_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jsonw.h"

/* "# HELP name help\n# TYPE name type\n"; type is "counter", "gauge" or
 * "histogram". */
void prom_family(struct jbuf *b, const char *name, const char *type, const char *help);

/* "name{labels} value\n" (labels may be NULL or ""). */
void prom_u64(struct jbuf *b, const char *name, const char *labels, uint64_t v);
void prom_f64(struct jbuf *b, const char *name, const char *labels, double v);

/* Appends a label value with \ " and newline escaped. */
void prom_label_value(struct jbuf *b, const char *v, size_t len);

/* Latency buckets, upper bounds in seconds: 100 µs to 10 s. */
#define PROM_LATENCY_BUCKETS 16

struct prom_histogram {
    _Atomic uint64_t bucket[PROM_LATENCY_BUCKETS];  /* not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

void prom_observe_ns(struct prom_histogram *h, uint64_t ns);

/* The _bucket (cumulative, le="…" and "+Inf"), _sum and _count lines of one
 * histogram; labels are added before "le". */
void prom_histogram_write(struct jbuf *b, const char *name, const char *labels,
                          const struct prom_histogram *h);

#endif
