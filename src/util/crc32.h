/*
 * crc32 — CRC-32/IEEE (the zlib/Ethernet CRC: reflected polynomial
 * 0xEDB88320, init and final XOR 0xFFFFFFFF), as the WAL format requires.
 *
 * Slicing-by-8: eight bytes per step from eight 1 KiB tables, which is
 * several times faster than zlib's crc32() on the ~35-byte payloads of WAL
 * records (every ingested sample computes one). Results are identical to
 * zlib's crc32(0, data, len); the unit test checks that.
 */
#ifndef CCMS_CRC32_H
#define CCMS_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32_ieee(const void *data, size_t len);

#endif
