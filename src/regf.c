/* tlspatch: raw checks on regf bytes that hivex does not make. */
#include <stdio.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/regf.h"

bool
tp_regf_is_dirty (const tp_regf_header *hdr)
{
  return hdr->seq_primary != hdr->seq_secondary;
}

int
tp_regf_check_primary (const unsigned char *buf, size_t size,
                       tp_regf_header *hdr, char *why, size_t whylen)
{
  memset (hdr, 0, sizeof *hdr);
  if (size < 4 || memcmp (buf, "regf", 4) != 0) {
    snprintf (why, whylen, "not a registry hive (no regf signature)");
    return -1;
  }
  if (size < TP_REGF_MIN_HIVE_SIZE) {
    snprintf (why, whylen, "hive file is truncated (%zu bytes, under 8 KiB)", size);
    return -1;
  }
  hdr->seq_primary = tp_le32 (buf + TP_BB_SEQ1);
  hdr->seq_secondary = tp_le32 (buf + TP_BB_SEQ2);
  hdr->major = tp_le32 (buf + TP_BB_MAJOR);
  hdr->minor = tp_le32 (buf + TP_BB_MINOR);
  hdr->file_type = tp_le32 (buf + TP_BB_FILE_TYPE);
  hdr->format = tp_le32 (buf + TP_BB_FILE_FORMAT);
  hdr->root_offset = tp_le32 (buf + TP_BB_ROOT);
  hdr->bins_size = tp_le32 (buf + TP_BB_BINS_SIZE);
  hdr->checksum_stored = tp_le32 (buf + TP_BB_CHECKSUM);
  hdr->checksum_computed = tp_regf_checksum (buf);

  if (!tp_regf_checksum_valid (buf)) {
    snprintf (why, whylen,
              "bad header checksum (stored 0x%08x, computed 0x%08x): the hive "
              "is damaged or was being written",
              hdr->checksum_stored, hdr->checksum_computed);
    return -1;
  }
  if (hdr->major != 1 || hdr->minor < 2 || hdr->minor > 6) {
    snprintf (why, whylen, "unsupported hive version %u.%u", hdr->major, hdr->minor);
    return -1;
  }
  if (hdr->file_type != 0) {
    snprintf (why, whylen, "not a primary hive file (file type %u: a transaction log?)",
              hdr->file_type);
    return -1;
  }
  if (hdr->format != 1) {
    snprintf (why, whylen, "unsupported hive file format %u", hdr->format);
    return -1;
  }
  if (hdr->bins_size < TP_HBIN_ALIGN || hdr->bins_size % TP_HBIN_ALIGN != 0 ||
      (uint64_t) hdr->bins_size + TP_REGF_BASE_BLOCK_SIZE > size) {
    snprintf (why, whylen,
              "hive file is truncated (header says %u bytes of hive bins, file has %zu)",
              hdr->bins_size, size > TP_REGF_BINS ? size - TP_REGF_BINS : 0);
    return -1;
  }
  if (!tp_regf_size_plausible (size, hdr->bins_size)) {
    snprintf (why, whylen,
              "the file (%zu bytes) is far larger than its hive bins (%u bytes): not a hive "
              "as Windows writes it", size, hdr->bins_size);
    return -1;
  }
  if (tp_regf_is_dirty (hdr)) {
    snprintf (why, whylen,
              "hive is dirty (sequence numbers %u != %u): its transaction logs hold "
              "newer data that writing would discard",
              hdr->seq_primary, hdr->seq_secondary);
    return -1;
  }
  return 0;
}

bool
tp_regf_size_plausible (uint64_t size, uint32_t bins)
{
  uint64_t used = (uint64_t) TP_REGF_BASE_BLOCK_SIZE + bins;
  return size <= used || size - used <= (uint64_t) bins + TP_REGF_MAX_ROOM;
}
