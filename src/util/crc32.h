/*
 * crc32 — CRC-32/IEEE (the zlib/Ethernet CRC: reflected polynomial
 * 0xEDB88320, init and final XOR 0xFFFFFFFF), as every file format here
 * requires (the Go log per record, the native log per host record, native
 * snapshots per block).
 *
 * Short inputs (the ~35-byte payloads of Go log records) go through a
 * slicing-by-8 table loop, several times faster than a library call there;
 * long ones (log records of whole hosts, snapshot blocks: hundreds of
 * megabytes at a restart) through libdeflate's crc32, which uses the CPU's
 * carry-less multiply (PCLMUL) where there is one. Results are identical
 * to zlib's crc32(0, data, len); the unit test checks both paths.
 */
#ifndef CCMS_CRC32_H
#define CCMS_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32_ieee(const void *data, size_t len);

#endif
