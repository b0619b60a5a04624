/*
 * crc32 — see crc32.h. The tables are built once, on first use.
 */
#include "util/crc32.h"

#include <libdeflate.h>
#include <pthread.h>
#include <string.h>

/* From this length on libdeflate's crc32 is faster than the tables. */
#define CRC32_LIBRARY_FROM 256

static uint32_t tables[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xff];
}

uint32_t crc32_ieee(const void *data, size_t len)
{
    if (len >= CRC32_LIBRARY_FROM)
        return (uint32_t)libdeflate_crc32(0, data, len);
    pthread_once(&tables_once, build_tables);
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4); /* little-endian host: x86-64, aarch64 */
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^
              tables[5][(lo >> 16) & 0xff] ^ tables[4][lo >> 24] ^
              tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^
              tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = tables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}
