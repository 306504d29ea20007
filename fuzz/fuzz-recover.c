/* tlspatch: libFuzzer target for transaction log recovery.
 *
 * Input: one flags byte, the primary's length and log1's length (32-bit
 * little-endian, clipped to what is left), then the primary, log1, and
 * log2 (the rest). Each part is copied into a buffer of its exact size,
 * so AddressSanitizer catches a read past any one of them.
 *
 * Flags ask the harness to repair what a mutation breaks, so that
 * mutated structure reaches the replay code instead of dying at the
 * first check: bit 0 the primary's header checksum, bit 1 the logs'
 * base block checksums, bit 2 the hashes of every log entry.
 *
 * On success the result must honour the contract in recover.h: a clean
 * primary gives no image; otherwise the image passes the primary header
 * check with equal sequence numbers. Two properties are checked too:
 * - new format: the logs' order of arguments does not matter when their
 *   sequence numbers differ (Windows goes by content, not by file name;
 *   in the old format .LOG1 comes first, as it does for Windows);
 * - the recovered image, made dirty again, takes nothing from the same
 *   logs: the stale logs left beside it can never be replayed over it.
 * Anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/marvin32.h"
#include "tlspatch/recover.h"
#include "tlspatch/regf.h"

static void
fix_checksum (unsigned char *p, size_t len)
{
  uint32_t c;
  if (len < 512)
    return;
  c = tp_regf_checksum (p);
  for (int i = 0; i < 4; i++)
    p[508 + i] = (unsigned char) (c >> (8 * i));
}

/* Re-hash every entry along the size chain from offset 512. */
static void
fix_entries (unsigned char *p, size_t len)
{
  size_t off = 512;
  while (off < len && len - off >= 40 && memcmp (p + off, "HvLE", 4) == 0) {
    uint32_t size = tp_le32 (p + off + 4);
    if (size < 512 || size % 512 != 0 || size > len - off)
      break;
    tp_put64 (p + off + 24, tp_marvin32 (p + off + 40, size - 40, TP_MARVIN32_REGF_SEED));
    tp_put64 (p + off + 32, tp_marvin32 (p + off, 32, TP_MARVIN32_REGF_SEED));
    off += size;
  }
}

static unsigned char *
part (const uint8_t *src, size_t len)
{
  unsigned char *p = malloc (len ? len : 1);
  if (p && len)
    memcpy (p, src, len);
  return p;
}

/* Swapping new-format logs changes nothing when their numbers differ. */
static void
check_order (const unsigned char *prim, size_t plen, const unsigned char *l1, size_t l1len,
             const unsigned char *l2, size_t l2len, int rc, const unsigned char *out,
             size_t out_len, const tp_recovery_info *info)
{
  if (l1len < 32 || l2len < 32 || tp_le32 (l1 + 4) == tp_le32 (l2 + 4) ||
      tp_le32 (l1 + 28) != 6 || tp_le32 (l2 + 28) != 6)
    return;
  unsigned char *o2 = NULL;
  size_t o2_len = 0;
  tp_recovery_info i2;
  char why[512];
  int rc2 = tp_recover_buffers (prim, plen, l2, l2len, l1, l1len, &o2, &o2_len, &i2,
                                why, sizeof why);
  if (rc2 != rc || o2_len != out_len || (out_len && memcmp (o2, out, out_len) != 0) ||
      i2.entries != info->entries || i2.pages != info->pages ||
      i2.n_logs_used != info->n_logs_used || i2.seq_after != info->seq_after)
    abort ();
  free (o2);
  tp_recovery_info_free (&i2);
}

/* The result, dirty again (a write started after it), with the same
 * logs: nothing applies. */
static void
check_stale_logs (unsigned char *out, size_t out_len, uint32_t seq,
                  const unsigned char *l1, size_t l1len,
                  const unsigned char *l2, size_t l2len)
{
  if (seq == UINT32_MAX)
    return;
  tp_put32 (out + 4, seq + 1);
  tp_put32 (out + 8, seq);
  tp_put32 (out + 508, tp_regf_checksum (out));
  unsigned char *o2 = NULL;
  size_t o2_len = 0;
  tp_recovery_info i2;
  char why[512];
  int rc = tp_recover_buffers (out, out_len, l1len ? l1 : NULL, l1len, l2len ? l2 : NULL,
                               l2len, &o2, &o2_len, &i2, why, sizeof why);
  if (rc == 0)
    abort ();
  free (o2);
  tp_recovery_info_free (&i2);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 9)
    return 0;
  unsigned flags = data[0];
  size_t rest = size - 9;
  size_t plen = tp_le32 (data + 1), l1len = tp_le32 (data + 5);
  if (plen > rest)
    plen = rest;
  if (l1len > rest - plen)
    l1len = rest - plen;
  size_t l2len = rest - plen - l1len;
  const uint8_t *src = data + 9;
  unsigned char *prim = part (src, plen);
  unsigned char *l1 = part (src + plen, l1len);
  unsigned char *l2 = part (src + plen + l1len, l2len);
  if (!prim || !l1 || !l2)
    abort ();

  if (flags & 1)
    fix_checksum (prim, plen);
  if (flags & 2) {
    fix_checksum (l1, l1len);
    fix_checksum (l2, l2len);
  }
  if (flags & 4) {
    fix_entries (l1, l1len);
    fix_entries (l2, l2len);
  }

  unsigned char *out = NULL;
  size_t out_len = 0;
  tp_recovery_info info;
  char why[512];
  int rc = tp_recover_buffers (prim, plen, l1len ? l1 : NULL, l1len, l2len ? l2 : NULL, l2len,
                               &out, &out_len, &info, why, sizeof why);
  if (rc == 0 && info.dirty) {
    tp_regf_header hdr;
    char cwhy[256];
    if (!out || tp_regf_check_primary (out, out_len, &hdr, cwhy, sizeof cwhy) != 0 ||
        hdr.seq_primary != info.seq_after || info.n_logs_used == 0 ||
        (uint64_t) hdr.bins_size + 4096 > out_len)
      abort ();
  }
  else if (rc == 0 && out)
    abort ();                   /* clean: nothing to do, no image */
  else if (rc != 0 && (out || why[0] == '\0' || strchr (why, '\n')))
    abort ();                   /* a refusal is one line and no image */
  check_order (prim, plen, l1, l1len, l2, l2len, rc, out, out_len, &info);
  if (rc == 0 && out)
    check_stale_logs (out, out_len, info.seq_after, l1, l1len, l2, l2len);
  free (out);
  tp_recovery_info_free (&info);
  free (prim);
  free (l1);
  free (l2);
  return 0;
}
