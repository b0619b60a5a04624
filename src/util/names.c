/*
 * names — see names.h.
 */
#include "util/names.h"

bool name_is_valid(const char *name, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}
