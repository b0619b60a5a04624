/*
 * libFuzzer target for the api/ endpoints: the first byte picks the
 * endpoint, the rest is the request body (or the debug selector). A small
 * store with a few series (host level, hwthreads, socket/core) is built
 * once. Checks: every answer is 200 or 400 (500 only from out of memory),
 * never empty, and every JSON answer (query, healthcheck, ErrorResponse)
 * parses as JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "store/store.h"

static struct store *store;
static struct ccms_config cfg;
static struct api_context ctx;

static void fuzz_put(const char *h, const char *t3, const char *t4, int metric, int64_t ts,
                     float v)
{
    const char *path[4] = { "alex", h, t3, t4 };
    store_write_path(store, path, t4 ? 4 : t3 ? 3 : 2, metric, ts, v);
}

static void fuzz_init(void)
{
    static const struct store_metric metrics[] = {
        { "cpu_load", 60, CCMS_AGG_AVG },
        { "flops_any", 10, CCMS_AGG_SUM },
        { "mem_used", 60, CCMS_AGG_NONE },
    };
    if (store_create(metrics, 3, &store) != 0)
        abort();
    cfg.max_query_points = 20000;
    ctx = (struct api_context){ .store = store, .cfg = &cfg };
    for (int i = 0; i < 1500; i++) {
        fuzz_put("a0124", NULL, NULL, 0, 1000 + 60 * i, (float)i * 0.25f);
        fuzz_put("a0124", "hwthread0", NULL, 1, 1000 + 10 * i, (float)(i % 7));
        fuzz_put("a0124", "hwthread1", NULL, 1, 1000 + 10 * i, 3.4e38f);
    }
    fuzz_put("a0125", NULL, NULL, 0, 1000, -0.0f);
    fuzz_put("a0125", "socket0", "core0", 2, 1000, 1.5f);
    fuzz_put("a0125", "socket0", "core1", 2, 1060, 2.5f);
}

static void fuzz_check(int rc, struct api_response *r, int json)
{
    if (rc < 0)
        return;
    /* a streamed answer is checked whole */
    if (api_response_complete(r) < 0) {
        api_response_free(r);
        return;
    }
    if (r->status != 200 && r->status != 400)
        abort();
    if ((r->status != 200 || json) && (r->len == 0 || r->body[r->len - 1] != '\n'))
        abort();
    if ((r->status == 200 && json) || (r->status == 400 && r->content_type &&
                                       strcmp(r->content_type, API_CT_JSON) == 0)) {
        json_error_t err;
        json_t *v = json_loadb(r->body, r->len, JSON_ALLOW_NUL, &err);
        if (v == NULL) {
            fprintf(stderr, "invalid JSON answer: %s\n%.*s\n", err.text, (int)r->len, r->body);
            abort();
        }
        json_decref(v);
    }
    api_response_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_response r;
    char *body;
    if (store == NULL)
        fuzz_init();
    if (size == 0)
        return 0;
    /* exact-size copy so that ASan catches any overread */
    body = malloc(size);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0: fuzz_check(api_query(&ctx, body, size - 1, &r), &r, 1); break;
    case 1: fuzz_check(api_free(&ctx, "1", body, size - 1, &r), &r, 0); break;
    case 2: fuzz_check(api_healthcheck(&ctx, body, size - 1, 5000, &r), &r, 1); break;
    default: fuzz_check(api_debug(&ctx, body, &r), &r, 0); break;
    }
    free(body);
    return 0;
}
