/*
 * names — the rules for tree level names, one per kind:
 *  - cluster and host names become directory names on disk, so they must
 *    be 1..255 bytes, not "." or "..", and contain no '/', '\\', NUL or
 *    control bytes (0x00-0x1F, 0x7F);
 *  - type and subtype level names ("hwthread3", "filesystem/home",
 *    "networkib0") never become paths; they must be 1..255 bytes (a WAL
 *    selector element's length is one byte) without NUL or control bytes.
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

/* The same for a type or subtype level name. */
const char *level_name_problem(const char *name, size_t len);

static inline bool level_name_is_valid(const char *name, size_t len)
{
    return level_name_problem(name, len) == NULL;
}

#endif
