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

bool name_is_valid(const char *name, size_t len);

#endif
