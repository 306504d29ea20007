/* mklog: a test-only writer of transaction logs, in both formats.
 *
 * Given a clean hive OLD and a later state NEW of the same hive, it
 * writes what Windows leaves after a crash between flushing the log and
 * writing the primary: DIRTY (OLD's bytes with its sequence numbers out
 * of step) and LOG (a base block copy and the 4 KiB pages of hive bins
 * that differ in NEW). Recovering DIRTY with its logs gives NEW's hive
 * bins, unless an option below says otherwise.
 *
 *   mklog [OPTIONS] OLD NEW DIRTY LOG [LOG2]
 *
 * New format (HvLE entries, the default):
 *   --bad-hash   the first entry's Hash-1 is wrong (nothing applies)
 *   --ahead K    the entries are numbered K above the primary's write
 *                under way (Windows 10 leaves such logs: they apply)
 *   --stale      the entries are numbered below the primary's last
 *                completed write (refused)
 *   LOG2         the pages are split into two entries, N in LOG2 and
 *                N + 1 in LOG: the log named first holds the later one
 * Old format (--old: a DIRT dirty vector and 512-byte dirty pages):
 *   LOG2         LOG is an older write's log (an earlier timestamp, only
 *                the first changed page) and LOG2 the newer cumulative
 *                one with every page: Windows 8 and later use LOG2
 * Both:
 *   --damage     DIRTY's base block checksum is wrong (the base block
 *                comes from a log); in the old format its first bin's
 *                timestamp is also older, as Windows 7 leaves it
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/marvin32.h"
#include "tlspatch/regf.h"

typedef struct {
  bool bad_hash, stale, damage, old;
  uint32_t ahead;
} options;

typedef struct {
  unsigned char *p;
  size_t len;
} buf;

static int
slurp (const char *path, buf *b)
{
  FILE *fp = fopen (path, "rb");
  if (!fp)
    return -1;
  fseek (fp, 0, SEEK_END);
  b->len = (size_t) ftell (fp);
  rewind (fp);
  b->p = malloc (b->len ? b->len : 1);
  int rc = b->p && fread (b->p, 1, b->len, fp) == b->len ? 0 : -1;
  fclose (fp);
  return rc;
}

static int
spill (const char *path, const buf *b)
{
  FILE *fp = fopen (path, "wb");
  if (!fp || fwrite (b->p, 1, b->len, fp) != b->len || fclose (fp) != 0) {
    perror (path);
    return -1;
  }
  return 0;
}

/* A log's first sector: the base block copy with file type `type`,
 * both sequence numbers `seq`. */
static buf
log_start (const buf *old, uint32_t type, uint32_t seq, size_t len)
{
  buf lg = { calloc (1, len), len };
  memcpy (lg.p, old->p, 512);
  tp_put32 (lg.p + 4, seq);
  tp_put32 (lg.p + 8, seq);
  tp_put32 (lg.p + 28, type);
  tp_put32 (lg.p + 508, tp_regf_checksum (lg.p));
  return lg;
}

static size_t
entry_size (size_t n)
{
  return (40 + 8 * n + 4096 * n + 511) / 512 * 512;
}

/* One HvLE entry at e holding pages[0..n) of NEW; returns its size. */
static size_t
put_entry (unsigned char *e, const buf *new, const uint32_t *pages, size_t n, uint32_t seq,
           bool bad_hash)
{
  size_t size = entry_size (n);
  memcpy (e, "HvLE", 4);
  tp_put32 (e + 4, (uint32_t) size);
  tp_put32 (e + 12, seq);
  tp_put32 (e + 16, tp_le32 (new->p + 40));
  tp_put32 (e + 20, (uint32_t) n);
  for (size_t i = 0; i < n; i++) {
    tp_put32 (e + 40 + 8 * i, pages[i]);
    tp_put32 (e + 44 + 8 * i, 4096);
    memcpy (e + 40 + 8 * n + 4096 * i, new->p + 4096 + pages[i], 4096);
  }
  tp_put64 (e + 24, tp_marvin32 (e + 40, size - 40, TP_MARVIN32_REGF_SEED) ^ (bad_hash ? 1 : 0));
  tp_put64 (e + 32, tp_marvin32 (e, 32, TP_MARVIN32_REGF_SEED));
  return size;
}

/* A new-format log whose entries, numbered from `seq`, hold the pages in
 * `parts` groups (one entry each). */
static buf
new_log (const buf *old, const buf *new, const uint32_t *pages, const size_t *counts,
         size_t parts, uint32_t seq, bool bad_hash)
{
  size_t len = 512;
  for (size_t i = 0; i < parts; i++)
    len += entry_size (counts[i]);
  buf lg = log_start (old, 6, seq, len);
  size_t off = 512;
  for (size_t i = 0; i < parts; i++) {
    off += put_entry (lg.p + off, new, pages, counts[i], seq + (uint32_t) i, bad_hash && i == 0);
    pages += counts[i];
  }
  return lg;
}

/* An old-format log (clustering factor 1): DIRT and a bitmap of 512-byte
 * pages, then those pages of NEW, for the 4 KiB blocks in pages[0..n). */
static buf
old_log (const buf *old, const buf *new, const uint32_t *pages, size_t n, uint32_t seq)
{
  uint32_t bins = tp_le32 (new->p + 40);
  size_t vec = (512 + 4 + bins / 512 / 8 + 511) / 512 * 512;
  buf lg = log_start (old, 1, seq, vec + (size_t) n * 4096);
  tp_put32 (lg.p + 40, bins);
  tp_put32 (lg.p + 508, tp_regf_checksum (lg.p));
  memcpy (lg.p + 512, "DIRT", 4);
  size_t at = vec;
  for (uint32_t blk = 0; blk < bins / 4096; blk++)
    for (size_t i = 0; i < n; i++)
      if (pages[i] == blk * 4096) {
        lg.p[516 + blk] = 0xFF;         /* 8 bits: the block's eight 512-byte pages */
        memcpy (lg.p + at, new->p + 4096 + pages[i], 4096);
        at += 4096;
      }
  return lg;
}

static int
parse (int argc, char **argv, options *o, int *first)
{
  int i = 1;
  memset (o, 0, sizeof *o);
  for (; i < argc && strncmp (argv[i], "--", 2) == 0; i++) {
    if (strcmp (argv[i], "--bad-hash") == 0)
      o->bad_hash = true;
    else if (strcmp (argv[i], "--stale") == 0)
      o->stale = true;
    else if (strcmp (argv[i], "--damage") == 0)
      o->damage = true;
    else if (strcmp (argv[i], "--old") == 0)
      o->old = true;
    else if (strcmp (argv[i], "--ahead") == 0 && i + 1 < argc)
      o->ahead = (uint32_t) strtoul (argv[++i], NULL, 10);
    else
      return -1;
  }
  *first = i;
  return argc - i == 4 || argc - i == 5 ? 0 : -1;
}

int
main (int argc, char **argv)
{
  options o;
  int a;
  if (parse (argc, argv, &o, &a) < 0) {
    fprintf (stderr, "usage: mklog [--old] [--bad-hash] [--ahead K] [--stale] [--damage] "
             "OLD NEW DIRTY LOG [LOG2]\n");
    return 2;
  }
  buf old, new;
  if (slurp (argv[a], &old) < 0 || slurp (argv[a + 1], &new) < 0 || old.len < 8192 ||
      new.len < 8192) {
    fprintf (stderr, "mklog: cannot read the hives\n");
    return 1;
  }
  const char *log2_path = argc - a == 5 ? argv[a + 4] : NULL;
  uint32_t seq = tp_le32 (old.p + 4), new_bins = tp_le32 (new.p + 40);

  /* The primary: a write began (primary sequence number raised), never ended. */
  tp_put32 (old.p + 4, seq + 1);
  tp_put32 (old.p + 508, tp_regf_checksum (old.p));

  size_t npages = 0;
  uint32_t *pages = calloc (new_bins / 4096 + 1, sizeof *pages);
  for (uint32_t off = 0; off + 4096 <= new_bins; off += 4096)
    if (4096 + off + 4096 > old.len || memcmp (old.p + 4096 + off, new.p + 4096 + off, 4096) != 0)
      pages[npages++] = off;

  uint32_t first = o.stale ? seq - 1 : seq + 1 + o.ahead;
  buf log, log2 = { NULL, 0 };
  if (o.old && log2_path) {
    log2 = old_log (&old, &new, pages, npages, seq + 1);
    log = old_log (&old, &new, pages, npages ? 1 : 0, seq);
    tp_put64 (log.p + 12, tp_le64 (old.p + 12) - 10000000);    /* one second older */
    tp_put32 (log.p + 508, tp_regf_checksum (log.p));
  }
  else if (o.old)
    log = old_log (&old, &new, pages, npages, seq + 1);
  else if (log2_path && npages >= 2) {
    size_t counts[2] = { npages / 2, npages - npages / 2 };
    log2 = new_log (&old, &new, pages, counts, 1, first, o.bad_hash);
    log = new_log (&old, &new, pages + counts[0], counts + 1, 1, first + 1, false);
  }
  else {
    size_t counts[1] = { npages };
    log = new_log (&old, &new, pages, counts, 1, first, o.bad_hash);
  }

  if (o.damage && o.old)
    tp_put64 (old.p + 4096 + 20, tp_le64 (old.p + 12) - 864000000000);   /* a day older */
  if (o.damage)
    old.p[508] ^= 0x5A;
  int rc = spill (argv[a + 2], &old) || spill (argv[a + 3], &log) ||
           (log2_path && log2.p && spill (log2_path, &log2));
  fprintf (stderr, "mklog: %zu dirty pages, %s format, entries from %u, primary %u/%u\n",
           npages, o.old ? "old" : "new", first, seq + 1, seq);
  free (old.p);
  free (new.p);
  free (pages);
  free (log.p);
  free (log2.p);
  return rc ? 1 : 0;
}
