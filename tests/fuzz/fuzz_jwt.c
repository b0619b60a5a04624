/* libFuzzer target: arbitrary bytes as a bearer token against a verifier
 * with the upstream documentation key. Checks that nothing crashes and
 * that a token is never accepted unless it verifies twice (cache path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jwt_verifier *v;
    if (!v && jwt_verifier_create("kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0=", &v) != 0)
        abort();
    const char *reason = NULL;
    int first = jwt_verify(v, (const char *)data, size, 1700000000, &reason);
    int second = jwt_verify(v, (const char *)data, size, 1700000000, &reason);
    if (first != second)
        abort();
    return 0;
}
