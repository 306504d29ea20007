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
  if (tp_regf_is_dirty (hdr)) {
    snprintf (why, whylen,
              "hive is dirty (sequence numbers %u != %u): its transaction logs hold "
              "newer data that writing would discard",
              hdr->seq_primary, hdr->seq_secondary);
    return -1;
  }
  return 0;
}

/* A cell at file offset `off`: its data and size, bounds-checked. */
static const unsigned char *
cell_at (const unsigned char *buf, size_t size, size_t off, size_t *len)
{
  if (off < TP_REGF_BASE_BLOCK_SIZE || off % 4 != 0 || off + 4 > size)
    return NULL;
  int32_t raw = (int32_t) tp_le32 (buf + off);
  if (raw >= 0)                 /* unallocated */
    return NULL;
  size_t cell_size = (size_t) -(int64_t) raw;
  if (cell_size < 8 || cell_size > size - off)
    return NULL;
  *len = cell_size - 4;
  return buf + off + 4;
}

int
tp_regf_value_rewritable (const unsigned char *buf, size_t size,
                          uint32_t minor, size_t vk_off,
                          char *why, size_t whylen)
{
  size_t len;
  const unsigned char *vk = cell_at (buf, size, vk_off, &len);
  if (!vk || len < 20 || memcmp (vk, "vk", 2) != 0) {
    snprintf (why, whylen, "a value record is damaged");
    return -1;
  }
  uint16_t name_len = tp_le16 (vk + 2);
  uint32_t data_size = tp_le32 (vk + 4);
  uint32_t data_off = tp_le32 (vk + 8);
  uint16_t flags = tp_le16 (vk + 16);
  if ((size_t) name_len + 20 > len) {
    snprintf (why, whylen, "a value name runs past its record");
    return -1;
  }
  const unsigned char *name = vk + 20;
  bool ascii = flags & 1;
  for (size_t i = 0; i < name_len; i += ascii ? 1 : 2) {
    if (name[i] == 0 && (ascii || (i + 1 < name_len && name[i + 1] == 0))) {
      snprintf (why, whylen, "a value name contains a NUL character, which hivex would cut");
      return -1;
    }
  }
  if (flags & ~1u) {
    snprintf (why, whylen, "a value has flags 0x%x (e.g. a tombstone) that hivex would drop",
              flags);
    return -1;
  }
  if (data_size & 0x80000000u)          /* data inline in the record */
    return 0;
  if (data_size == 0) {
    snprintf (why, whylen, "a value has unset data (size 0, no data cell), which hivex "
              "cannot rewrite");
    return -1;
  }
  size_t data_len;
  const unsigned char *data = cell_at (buf, size, (size_t) data_off + 4096, &data_len);
  if (data_off == 0xFFFFFFFFu || !data) {
    snprintf (why, whylen, "a value's data cell is missing or damaged");
    return -1;
  }
  if (minor >= 4 && data_size > TP_REGF_BIG_DATA_LIMIT) {
    snprintf (why, whylen, "a value holds big data (%u bytes in \"db\" segments), which "
              "hivex would rewrite in a form Windows rejects", data_size);
    return -1;
  }
  if (data_len < data_size) {
    snprintf (why, whylen, "a value's data runs past its cell");
    return -1;
  }
  return 0;
}
