/* mklog: a test-only writer of new-format ("HvLE") transaction logs.
 *
 * Given a clean hive OLD and a later state NEW of the same hive, it
 * writes what Windows leaves after a crash between flushing the log and
 * writing the primary: DIRTY (OLD's bytes with its sequence numbers out
 * of step) and LOG (a base block copy and one log entry holding every
 * 4 KiB page of hive bins that differs in NEW). Recovering DIRTY with
 * LOG must give NEW's hive bins.
 *
 *   mklog [--bad-hash] OLD NEW DIRTY LOG
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/marvin32.h"
#include "tlspatch/regf.h"

static unsigned char *
slurp (const char *path, size_t *len)
{
  FILE *fp = fopen (path, "rb");
  if (!fp)
    return NULL;
  fseek (fp, 0, SEEK_END);
  *len = (size_t) ftell (fp);
  rewind (fp);
  unsigned char *buf = malloc (*len ? *len : 1);
  if (buf && fread (buf, 1, *len, fp) != *len) {
    free (buf);
    buf = NULL;
  }
  fclose (fp);
  return buf;
}

static int
spill (const char *path, const unsigned char *buf, size_t len)
{
  FILE *fp = fopen (path, "wb");
  if (!fp || fwrite (buf, 1, len, fp) != len || fclose (fp) != 0) {
    perror (path);
    return -1;
  }
  return 0;
}

int
main (int argc, char **argv)
{
  int bad_hash = argc > 1 && strcmp (argv[1], "--bad-hash") == 0;
  if (argc - bad_hash != 5) {
    fprintf (stderr, "usage: mklog [--bad-hash] OLD NEW DIRTY LOG\n");
    return 2;
  }
  char **arg = argv + 1 + bad_hash;
  size_t old_len, new_len;
  unsigned char *old = slurp (arg[0], &old_len), *new = slurp (arg[1], &new_len);
  if (!old || !new || old_len < 8192 || new_len < 8192) {
    fprintf (stderr, "mklog: cannot read the hives\n");
    return 1;
  }
  uint32_t seq = tp_le32 (old + 4);
  uint32_t new_bins = tp_le32 (new + 40);

  /* The primary: a write began (primary sequence number raised), never ended. */
  tp_put32 (old + 4, seq + 1);
  tp_put32 (old + 508, tp_regf_checksum (old));

  /* The log: the base block copy (file type 6), then one entry. */
  size_t npages = 0, cap = new_bins / 4096;
  uint32_t *pages = calloc (cap ? cap : 1, sizeof *pages);
  for (uint32_t off = 0; off + 4096 <= new_bins; off += 4096)
    if (4096 + off + 4096 > old_len || memcmp (old + 4096 + off, new + 4096 + off, 4096) != 0)
      pages[npages++] = off;
  size_t body = 40 + 8 * npages + 4096 * npages;
  size_t entry_size = (body + 511) / 512 * 512;
  size_t log_len = 512 + entry_size;
  unsigned char *log = calloc (1, log_len);
  memcpy (log, old, 512);
  tp_put32 (log + 4, seq + 1);
  tp_put32 (log + 8, seq + 1);
  tp_put32 (log + 28, 6);
  tp_put32 (log + 508, tp_regf_checksum (log));

  unsigned char *e = log + 512;
  memcpy (e, "HvLE", 4);
  tp_put32 (e + 4, (uint32_t) entry_size);
  tp_put32 (e + 12, seq + 1);
  tp_put32 (e + 16, new_bins);
  tp_put32 (e + 20, (uint32_t) npages);
  unsigned char *ref = e + 40, *data = e + 40 + 8 * npages;
  for (size_t i = 0; i < npages; i++) {
    tp_put32 (ref + 8 * i, pages[i]);
    tp_put32 (ref + 8 * i + 4, 4096);
    memcpy (data + 4096 * i, new + 4096 + pages[i], 4096);
  }
  tp_put64 (e + 24, tp_marvin32 (e + 40, entry_size - 40, TP_MARVIN32_REGF_SEED) ^ (bad_hash ? 1 : 0));
  tp_put64 (e + 32, tp_marvin32 (e, 32, TP_MARVIN32_REGF_SEED));

  int rc = spill (arg[2], old, old_len) || spill (arg[3], log, log_len);
  fprintf (stderr, "mklog: %zu dirty pages, sequence %u -> %u\n", npages, seq, seq + 1);
  free (old);
  free (new);
  free (pages);
  free (log);
  return rc ? 1 : 0;
}
