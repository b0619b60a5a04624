/*
 * names — see names.h.
 */
#include "util/names.h"

const char *level_name_problem(const char *name, size_t len)
{
    if (len == 0)
        return "it is empty";
    if (len > NAME_MAX_LEN)
        return "it is longer than 255 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return "it contains a NUL or control byte";
    }
    return NULL;
}

const char *name_problem(const char *name, size_t len)
{
    const char *why = level_name_problem(name, len);
    if (why)
        return why;
    if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
        return "\".\" and \"..\" are not allowed";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\')
            return "it contains '/' or '\\'";
    }
    return NULL;
}
