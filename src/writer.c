/* tlspatch: a hive's edits as phased writes: pokes of existing records,
 * one new hive bin, a new base block; written into a copy of the hive
 * or in place (see writer.h; the records come from editor.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/openfile.h"
#include "tlspatch/regf.h"
#include "tlspatch/writer.h"
#include "writer-int.h"


typedef tp_w_edit32 edit32;
typedef tp_w_patch patch;

/* Close the new bin: its header, and the rest of it as one free cell. */
static size_t
finish_bin (patch *p, uint32_t bin_rel)
{
  size_t size = (p->bin_used + 4095) / 4096 * 4096;
  if (tp_w_bin_reserve (p, size) < 0)
    return 0;
  if (size > p->bin_used)
    tp_put32 (p->bin + p->bin_used, (uint32_t) (size - p->bin_used));
  memcpy (p->bin, "hbin", 4);
  tp_put32 (p->bin + 4, bin_rel);
  tp_put32 (p->bin + 8, (uint32_t) size);
  p->bin_size = size;
  return size;
}

static int
copy_all (int out, int in, size_t size)
{
  loff_t in_off = 0, out_off = 0;
  while ((size_t) in_off < size) {
    ssize_t n = copy_file_range (in, &in_off, out, &out_off, size - (size_t) in_off, 0);
    if (n > 0)
      continue;
    if (n == 0)
      return errno = EIO, -1;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
      return -1;
    char chunk[1 << 16];          /* no in-kernel copy here: do it by hand */
    size_t want = size - (size_t) in_off < sizeof chunk ? size - (size_t) in_off : sizeof chunk;
    ssize_t r = pread (in, chunk, want, in_off);
    if (r <= 0 || tp_pwrite_all (out, chunk, (size_t) r, out_off) != 0)
      return r == 0 ? (errno = EIO, -1) : -1;
    in_off += r;
    out_off += r;
  }
  return 0;
}

static uint64_t
filetime_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return ((uint64_t) ts.tv_sec + 11644473600u) * 10000000u + (uint64_t) ts.tv_nsec / 100;
}

/* New sequence numbers (above both old ones: logs can never match),
 * timestamp, hive bins size, checksum. */
static void
new_base_block (const unsigned char *old, unsigned char *bb, uint32_t bins_size)
{
  memcpy (bb, old, TP_REGF_BASE_BLOCK_SIZE);
  uint32_t s1 = tp_le32 (old + TP_BB_SEQ1), s2 = tp_le32 (old + TP_BB_SEQ2);
  uint32_t seq = (s1 > s2 ? s1 : s2) + 1;
  tp_put32 (bb + 4, seq);
  tp_put32 (bb + 8, seq);
  uint64_t ft = filetime_now ();
  tp_put32 (bb + 12, (uint32_t) ft);
  tp_put32 (bb + 16, (uint32_t) (ft >> 32));
  tp_put32 (bb + 40, bins_size);
  tp_put32 (bb + 508, tp_regf_checksum (bb));
}

/* Edits in write order: phase, offset, planning order. */
static int
compare_edits (const void *a, const void *b)
{
  const edit32 *x = a, *y = b;
  if (x->phase != y->phase)
    return x->phase < y->phase ? -1 : 1;
  if (x->off != y->off)
    return x->off < y->off ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

#define PAGE 4096
#define SECTOR 512

/* A page as it stands after the phases written so far. */
typedef struct {
  size_t start, len;
  unsigned char *bytes;
} page_state;

static page_state *
page_of (const tp_regf *r, page_state **pages, size_t *n, size_t off)
{
  size_t start = off / PAGE * PAGE;
  for (size_t i = 0; i < *n; i++)
    if ((*pages)[i].start == start)
      return &(*pages)[i];
  size_t len = r->size - start < PAGE ? r->size - start : PAGE;
  page_state *more = realloc (*pages, (*n + 1) * sizeof **pages);
  if (!more)
    return NULL;
  *pages = more;
  page_state *pg = &more[(*n)++];
  *pg = (page_state) { .start = start, .len = len, .bytes = malloc (len) };
  if (!pg->bytes || !tp_regf_load (r, start, len))
    return NULL;
  memcpy (pg->bytes, r->buf + start, len);
  return pg;
}

/* One write per 4 KiB page and phase: the edits of a page (a key's
 * counters, its neighbours') go in one write of the bytes between them,
 * as they stand after the earlier phases, with this phase's edits laid
 * over. Fewer writes, each within one page. */
static int
edits_to_runs (const tp_regf *r, edit32 *e, size_t n, tp_regf_patch *out)
{
  if (n)                        /* qsort's array must not be NULL, even empty */
    qsort (e, n, sizeof *e, compare_edits);
  out->pokes = calloc (n + 1, sizeof *out->pokes);
  page_state *pages = NULL;
  size_t n_pages = 0;
  int rc = out->pokes ? 0 : -1;
  for (size_t i = 0, j; rc == 0 && i < n; i = j) {
    size_t start = e[i].off, end = e[i].off + 4;
    for (j = i + 1; j < n && e[j].phase == e[i].phase && e[j].off / PAGE == start / PAGE; j++)
      end = e[j].off + 4 > end ? e[j].off + 4 : end;
    page_state *pg = page_of (r, &pages, &n_pages, start);
    tp_regf_poke *run = &out->pokes[out->n_pokes++];
    *run = (tp_regf_poke) { .off = start, .len = end - start, .phase = e[i].phase,
                            .bytes = malloc (end - start), .old = malloc (end - start) };
    if (!pg || end > pg->start + pg->len || !run->bytes || !run->old) {
      rc = -1;
      break;
    }
    unsigned char *at = pg->bytes + (start - pg->start);
    memcpy (run->old, at, end - start);
    for (size_t k = i; k < j; k++)
      memcpy (pg->bytes + (e[k].off - pg->start), e[k].bytes, 4);
    memcpy (run->bytes, at, end - start);
  }
  for (size_t i = 0; i < n_pages; i++)
    free (pages[i].bytes);
  free (pages);
  return rc;
}

/* Each record's LINK edits (a value's size, offset and type; a key's
 * count and list) switch it as one change: they must lie in one 512-byte
 * sector, which no stop can tear. Edits are 4-byte aligned, so a single
 * one never crosses a sector. */
static bool
links_tearproof (const edit32 *e, size_t n)
{
  for (size_t i = 0; i < n; i++)
    for (size_t k = i + 1; k < n; k++)
      if (e[i].phase == TP_PHASE_LINK && e[k].phase == TP_PHASE_LINK &&
          e[i].record == e[k].record && e[i].off / SECTOR != e[k].off / SECTOR)
        return false;
  return true;
}

static int
cmp_offset (const void *a, const void *b)
{
  size_t x = *(const size_t *) a, y = *(const size_t *) b;
  return x < y ? -1 : x > y;
}

/* The cells the patch releases, sorted, into out. */
static int
freed_cells (const patch *p, tp_regf_patch *out)
{
  out->freed = malloc ((p->n_freed + 1) * sizeof *out->freed);
  if (!out->freed)
    return -1;
  for (size_t i = 0; i < p->freed_cap; i++)
    if (p->freed[i])
      out->freed[out->n_freed++] = p->freed[i];
  qsort (out->freed, out->n_freed, sizeof *out->freed, cmp_offset);
  return 0;
}

int
tp_regf_make_patch (const tp_regf *r, const tp_regf_edit *edits, size_t n,
                    tp_regf_patch *out, char *why, size_t whylen)
{
  why[0] = '\0';
  memset (out, 0, sizeof *out);
  if (r->size < TP_REGF_BINS || !tp_regf_load (r, 0, TP_REGF_BINS)) {
    snprintf (why, whylen, "the base block cannot be read");
    return -1;
  }
  uint32_t bins_size = tp_le32 (r->buf + TP_BB_BINS_SIZE);
  patch p = { .r = r, .buf = r->buf, .size = r->size, .why = why, .whylen = whylen,
              .minor = tp_le32 (r->buf + TP_BB_MINOR), .now = filetime_now (),
              .bin_file_off = TP_REGF_BINS + (size_t) bins_size, .bin_used = 32, .bin_cap = 4096 };
  p.bin = calloc (1, p.bin_cap);
  int rc = p.bin ? tp_w_plan (&p, edits, n) : tp_w_fail (&p, "%s", "out of memory");
  if (rc == 0 && freed_cells (&p, out) != 0)
    rc = tp_w_fail (&p, "%s", "out of memory");
  free (p.freed);
  if (rc == 0 && p.bin_used > 32) {
    size_t bin_size = finish_bin (&p, bins_size);
    if (!bin_size || (uint64_t) bins_size + bin_size > 0x7FFFFFFFu)
      rc = tp_w_fail (&p, "%s", "the hive cannot grow further");
    else
      bins_size += (uint32_t) bin_size;
  }
  if (rc != 0) {
    free (p.pokes);
    free (p.bin);
    free (out->freed);
    out->freed = NULL;
    return -1;
  }
  out->tearproof = links_tearproof (p.pokes, p.n_pokes);
  int runs = edits_to_runs (r, p.pokes, p.n_pokes, out);
  free (p.pokes);
  if (runs != 0) {
    snprintf (why, whylen, "out of memory");
    free (p.bin);
    tp_regf_patch_free (out);
    return -1;
  }
  if (p.bin_size) {
    out->bin = p.bin;
    out->bin_off = p.bin_file_off;
    out->bin_size = p.bin_size;
    /* Windows leaves room past the last bin (files grow in 256 KiB
     * steps): the bin goes there, and a rollback puts those bytes back. */
    size_t bin_end = out->bin_off + out->bin_size;
    size_t old_end = r->size < bin_end ? r->size : bin_end;
    out->bin_old_len = old_end > out->bin_off ? old_end - out->bin_off : 0;
    out->bin_old = out->bin_old_len ? malloc (out->bin_old_len) : NULL;
    if (out->bin_old_len && (!out->bin_old || !tp_regf_load (r, out->bin_off, out->bin_old_len))) {
      snprintf (why, whylen, "cannot read the room past the last hive bin");
      tp_regf_patch_free (out);
      return -1;
    }
    if (out->bin_old_len)
      memcpy (out->bin_old, r->buf + out->bin_off, out->bin_old_len);
  } else
    free (p.bin);
  new_base_block (r->buf, out->base_block, bins_size);
  memcpy (out->old_base_block, r->buf, TP_REGF_BINS);
  return 0;
}

void
tp_regf_patch_free (tp_regf_patch *p)
{
  for (size_t i = 0; p->pokes && i < p->n_pokes; i++) {
    free (p->pokes[i].bytes);
    free (p->pokes[i].old);
  }
  free (p->pokes);
  free (p->bin);
  free (p->bin_old);
  free (p->freed);
  memset (p, 0, sizeof *p);
}

bool
tp_regf_patch_tearproof (const tp_regf_patch *p)
{
  for (size_t i = 0; i < p->n_pokes; i++)
    if (p->pokes[i].off / PAGE != (p->pokes[i].off + p->pokes[i].len - 1) / PAGE)
      return false;
  return p->tearproof;
}

/* One phase of one patch; `undo` writes the old bytes instead. */
static int
write_phase (const tp_regf_patch *p, const tp_regf_target *t, tp_regf_phase phase, bool undo)
{
  if (phase == TP_PHASE_HEADER)   /* everything that changes is in the first sector */
    return t->write (t->ctx, undo ? p->old_base_block : p->base_block, 512, 0);
  if (phase == TP_PHASE_GROW && p->bin_size && !undo &&
      t->write (t->ctx, p->bin, p->bin_size, p->bin_off) != 0)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < p->n_pokes; i++)
    if (p->pokes[i].phase == phase &&
        t->write (t->ctx, undo ? p->pokes[i].old : p->pokes[i].bytes, p->pokes[i].len,
                  p->pokes[i].off) != 0)
      rc = -1;
  if (phase == TP_PHASE_GROW && undo && p->bin_old_len &&
      t->write (t->ctx, p->bin_old, p->bin_old_len, p->bin_off) != 0)
    rc = -1;
  if (phase == TP_PHASE_GROW && undo && p->bin_off + p->bin_size > t->size &&
      t->truncate (t->ctx, t->size) != 0)
    rc = -1;
  return rc;
}

/* Undo phases last_phase..0, each synced before the next. Stops at the
 * first failed write or sync: the file is then left between two phases
 * or within one, a valid hive (writer.h), only not the original. */
static int
roll_back (const tp_regf_patch *const *patches, const tp_regf_target *targets, size_t n,
           int last_phase, int (*sync) (void *), void *sync_ctx)
{
  for (int phase = last_phase; phase >= 0; phase--) {
    for (size_t i = 0; i < n; i++)
      if (patches[i] && write_phase (patches[i], &targets[i], (tp_regf_phase) phase, true) != 0)
        return -1;
    if (sync (sync_ctx) != 0)
      return -1;
  }
  return 0;
}

int
tp_regf_write_in_place (const tp_regf_patch *const *patches, const tp_regf_target *targets,
                        size_t n, int (*sync) (void *), void *sync_ctx)
{
  for (int phase = 0; phase < TP_PHASE_COUNT; phase++) {
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
      if (patches[i])
        rc = write_phase (patches[i], &targets[i], (tp_regf_phase) phase, false);
    /* A barrier between phases; after the last one the caller syncs
     * (with the rest of its work: the appliance syncs at shutdown). */
    if (rc != 0 || (phase + 1 < TP_PHASE_COUNT && sync (sync_ctx) != 0))
      return roll_back (patches, targets, n, phase, sync, sync_ctx) == 0 ? -1 : -2;
  }
  return 0;
}

int
tp_regf_roll_back_in_place (const tp_regf_patch *const *patches, const tp_regf_target *targets,
                            size_t n, int (*sync) (void *), void *sync_ctx)
{
  return roll_back (patches, targets, n, TP_PHASE_COUNT - 1, sync, sync_ctx);
}

int
tp_regf_patch_unshared (const tp_regf *r, const tp_regf_patch *p, char *why, size_t whylen)
{
  if (r->load)
    return 0;
  size_t where;
  unsigned *counts = malloc ((p->n_freed + 1) * sizeof *counts);
  int walked = counts ? tp_regf_count_references (r, p->freed, p->n_freed, counts, &where) : -2;
  if (walked == -2)
    snprintf (why, whylen, "out of memory");
  else if (walked < 0)
    snprintf (why, whylen, "the hive is damaged: the record at offset 0x%zx cannot be read", where);
  for (size_t i = 0; walked == 0 && i < p->n_freed; i++)
    if (counts[i] > 1) {
      snprintf (why, whylen, "the hive is damaged: the cell at offset 0x%zx, which the change "
                "releases, is also used by another record", p->freed[i]);
      walked = -1;
    }
  free (counts);
  return walked == 0 ? 0 : -1;
}

int
tp_regf_write_patch (const tp_regf_patch *p, int out_fd, int src_fd, size_t size, char *why,
                     size_t whylen)
{
  if (copy_all (out_fd, src_fd, size) != 0) {
    snprintf (why, whylen, "%s", strerror (errno));
    return -1;
  }
  for (size_t i = 0; i < p->n_pokes; i++)
    if (tp_pwrite_all (out_fd, (const char *) p->pokes[i].bytes, p->pokes[i].len,
                    (off_t) p->pokes[i].off) != 0)
      goto io_error;
  if (p->bin_size && tp_pwrite_all (out_fd, (const char *) p->bin, p->bin_size, (off_t) p->bin_off) != 0)
    goto io_error;
  if (tp_pwrite_all (out_fd, (const char *) p->base_block, TP_REGF_BINS, 0) != 0)
    goto io_error;
  return 0;
 io_error:
  snprintf (why, whylen, "%s", strerror (errno));
  return -1;
}

int
tp_regf_write_edits (int out_fd, int src_fd, const unsigned char *buf, size_t size,
                     const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  tp_regf r = { .buf = buf, .size = size, .minor = size >= TP_REGF_BINS ? tp_le32 (buf + TP_BB_MINOR) : 0,
                .bins_end = size >= TP_REGF_BINS ? TP_REGF_BINS + (size_t) tp_le32 (buf + TP_BB_BINS_SIZE) : 0 };
  tp_regf_patch p;
  if (tp_regf_make_patch (&r, edits, n, &p, why, whylen) != 0)
    return -1;
  int rc = tp_regf_patch_unshared (&r, &p, why, whylen) == 0 &&
           tp_regf_write_patch (&p, out_fd, src_fd, size, why, whylen) == 0 ? 0 : -1;
  tp_regf_patch_free (&p);
  return rc;
}

