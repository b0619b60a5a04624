/*
 * names — the one rule for tree level names (cluster, host, type and
 * subtype levels). Names become directory names on disk, so they must be
 * 1..255 bytes, not "." or "..", and contain no '/', '\\', NUL or control
 * bytes (0x00-0x1F, 0x7F).
 */
#ifndef CCMS_NAMES_H
#define CCMS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 255

/* NULL when the name is valid, else a static phrase saying why not
 * ("it is empty", "it contains '/' or '\\'", ...). */
const char *name_problem(const char *name, size_t len);

static inline bool name_is_valid(const char *name, size_t len)
{
    return name_problem(name, len) == NULL;
}

#endif
