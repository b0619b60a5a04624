/*
 * lp_parse_bench — lines/s of lp_reader + lp_parse (tokenizer only, no
 * store) on a body of ~80-byte lines like cc-metric-collector sends,
 * fed in 64 KiB chunks as an HTTP body would arrive.
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -I../src -o lp_parse_bench lp_parse_bench.c ../src/lineproto.c -lm
 *   ./lp_parse_bench [seconds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lineproto.h"

struct bench_ctx {
    char scratch[1 << 16];
    struct lp_line line;
    unsigned long long lines, errors;
    double sum;
};

static int on_line(void *vctx, const char *line, size_t len, size_t line_no, int status)
{
    struct bench_ctx *c = vctx;
    struct lp_error err;
    (void)line_no;
    if (status != LP_OK || lp_parse(line, len, c->scratch, &c->line, &err) != LP_OK) {
        c->errors++;
        return 0;
    }
    c->lines++;
    c->sum += c->line.fields[0].v.f;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    static const char *metrics[] = { "cpu_load", "flops_any", "mem_bw", "cpu_user", "ipc" };
    size_t cap = 8 << 20, len = 0, nlines = 0, bytes_per_line = 0;
    char *body = malloc(cap);
    if (!body)
        return 1;
    while (len + 256 < cap) {
        int n = snprintf(body + len, cap - len,
                         "%s,cluster=fritz,hostname=f%04zu,type=hwthread,type-id=%zu value=%zu.%03zu "
                         "1725827464\n",
                         metrics[nlines % 5], (nlines / 72) % 1000, nlines % 72, nlines % 1000,
                         (nlines * 7) % 1000);
        len += (size_t)n;
        nlines++;
    }
    bytes_per_line = len / nlines;

    struct bench_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    unsigned long long bytes = 0;
    double t0 = now_s(), t;
    do {
        struct lp_reader r;
        lp_reader_init(&r, 1 << 20);
        for (size_t off = 0; off < len; off += 65536) {
            size_t n = len - off < 65536 ? len - off : 65536;
            lp_reader_feed(&r, body + off, n, on_line, c);
        }
        lp_reader_finish(&r, on_line, c);
        lp_reader_destroy(&r);
        bytes += len;
        t = now_s();
    } while (t - t0 < seconds);

    printf("%zu-byte lines: %.2f M lines/s, %.0f MB/s (%llu lines, %llu errors, checksum %.0f)\n",
           bytes_per_line, (double)c->lines / (t - t0) / 1e6, (double)bytes / (t - t0) / 1e6,
           c->lines, c->errors, c->sum);
    int rc = c->errors ? 1 : 0;
    free(c);
    free(body);
    return rc;
}
