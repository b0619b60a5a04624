/* libFuzzer target: arbitrary bytes as a cc-backend used_nodes response. */
#include <stdint.h>
#include <stdlib.h>

#include "net/backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct used_nodes u;
    char err[256];
    if (backend_parse_used_nodes((const char *)data, size, &u, err, sizeof err) == 0) {
        for (size_t i = 0; i < u.count; i++)
            if (!u.keys[i])
                abort();
        used_nodes_free(&u);
    }
    return 0;
}
