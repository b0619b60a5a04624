/*
 * fuzz_config — feeds arbitrary bytes to config_parse. Every input must
 * either load (and then free cleanly) or be rejected with a message; the
 * sanitizers catch leaks, overflows and undefined behaviour on both paths.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_init(LOG_CRIT, false); /* unknown-aggregation warnings would flood the output */
        quiet = 1;
    }
    struct ccms_config cfg;
    char err[256];
    err[0] = '\0';
    if (config_parse((const char *)data, size, &cfg, err, sizeof err) == 0) {
        for (size_t i = 0; i < cfg.metric_count; i++) {
            if (config_metric_index(&cfg, cfg.metrics[i].name) != (int)i)
                __builtin_trap();
        }
        config_free(&cfg);
    } else if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL) {
        __builtin_trap(); /* every rejection carries a terminated message */
    }
    return 0;
}
