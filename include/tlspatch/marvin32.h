/* tlspatch: the Marvin32 hash, which guards new-format transaction log
 * entries (spec: "Log entries", Hash-1 and Hash-2).
 *
 * Marvin32 is not a MAC: its seed is public, so a valid hash only proves
 * an entry was written in full, never that it is trustworthy.
 */
#ifndef TLSPATCH_MARVIN32_H
#define TLSPATCH_MARVIN32_H

#include <stddef.h>
#include <stdint.h>

/* The seed of registry log entries. The spec writes it as the bytes
 * "82 EF 4D 88 7A 4E 55 C5": those are the digits of this 64-bit number,
 * most significant first (checked against logs written by Windows 10),
 * not its little-endian storage. */
#define TP_MARVIN32_REGF_SEED UINT64_C (0x82EF4D887A4E55C5)

/* The 64-bit Marvin32 of len bytes: high word p1, low word p0, as Windows
 * stores it (little-endian) in a log entry. */
uint64_t tp_marvin32 (const unsigned char *data, size_t len, uint64_t seed);

#endif
