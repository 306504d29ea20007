/* tlspatch: the parts of the regf file format that hivex does not check
 * or hides, read straight from the file's bytes (see the format spec:
 * "Base block", "Key value", "Big data").
 *
 * Every function here treats its input as hostile: all offsets are
 * bounds-checked against the buffer.
 */
#ifndef TLSPATCH_REGF_H
#define TLSPATCH_REGF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlspatch/layout.h"

#define TP_REGF_BASE_BLOCK_SIZE 4096
#define TP_REGF_MIN_HIVE_SIZE   8192     /* a base block and one hive bin */
#define TP_REGF_MAX_ROOM        (64u << 20)  /* file bytes past the bins, beyond the bins' own size */
#define TP_REGF_BIG_DATA_LIMIT  16344    /* larger data is stored as "db" from minor 4 on */

typedef struct {
  uint32_t seq_primary;
  uint32_t seq_secondary;
  uint32_t major, minor;
  uint32_t file_type;        /* 0 primary, 1/2 old log, 6 new log */
  uint32_t format;
  uint32_t root_offset;
  uint32_t bins_size;        /* hive bins data size */
  uint32_t checksum_stored;
  uint32_t checksum_computed;
} tp_regf_header;


/* Parse and validate the base block of a PRIMARY hive file of `size`
 * bytes. Returns 0 when it is a clean, complete primary file; otherwise
 * -1 and a one-line reason in why (e.g. "not a registry hive (no regf
 * signature)", "hive is dirty ..."). `hdr` is filled as far as parsed. */
int tp_regf_check_primary (const unsigned char *buf, size_t size,
                           tp_regf_header *hdr, char *why, size_t whylen);

/* True when the base block's sequence numbers differ: the hive's
 * transaction logs hold data that is newer than the primary file. */
bool tp_regf_is_dirty (const tp_regf_header *hdr);

/* A file of `size` bytes may hold `bins` bytes of hive bins: Windows
 * grows a hive file a little ahead of its bins, never by gigabytes (a
 * sparse hole would be copied whole). */
bool tp_regf_size_plausible (uint64_t size, uint32_t bins);

#endif
