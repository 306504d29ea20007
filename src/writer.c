/* tlspatch: value edits written straight into a copy of the hive
 * (see writer.h; cell layouts from the format spec). */
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
#include "tlspatch/regf.h"
#include "tlspatch/writer.h"

#define BINS 4096               /* the hive bins data starts after the base block */
#define NO_OFFSET 0xFFFFFFFFu

/* A 4-byte edit of an existing record, as planned (merged into runs
 * of tp_regf_poke afterwards). */
typedef struct {
  size_t off;
  unsigned char bytes[4];
  tp_regf_phase phase;
  size_t record;                /* the cell it belongs to: one record's LINK edits are one change */
  size_t seq;                   /* planning order: a later edit of the same bytes wins */
} edit32;

/* Small in-place edits of the copy, and the new bin being built. */
typedef struct {
  edit32 *pokes;
  size_t n_pokes;
  unsigned char *bin;           /* the appended hive bin, header included */
  size_t bin_used, bin_cap, bin_size;
  size_t bin_file_off;          /* where the bin starts in the file */
  const tp_regf *r;             /* the hive as it is (loaded on demand) */
  const unsigned char *buf;
  size_t size;
  char *why;
  size_t whylen;
} patch;

static int
fail (patch *p, const char *fmt, const char *detail)
{
  snprintf (p->why, p->whylen, fmt, detail);
  return -1;
}

/* Set 4 bytes of an existing record. A poke that changes nothing is
 * dropped: an in-place writer then touches only what differs. */
static int
poke32 (patch *p, size_t record, size_t off, uint32_t v, tp_regf_phase phase)
{
  if (tp_le32 (p->buf + off) == v)
    return 0;
  void *more = realloc (p->pokes, (p->n_pokes + 1) * sizeof *p->pokes);
  if (!more)
    return fail (p, "%s", "out of memory");
  p->pokes = more;
  p->pokes[p->n_pokes] = (edit32) { .off = off, .phase = phase, .record = record,
                                    .seq = p->n_pokes };
  tp_put32 (p->pokes[p->n_pokes].bytes, v);
  p->n_pokes++;
  return 0;
}

/* The allocated cell at file offset `off`: its payload length, or 0. */
static size_t
cell_payload (const patch *p, size_t off)
{
  size_t end = tp_regf_cells_end (p->r);
  if (off < BINS || off % 8 != 0 || off + 8 > end || !tp_regf_load (p->r, off, 4))
    return 0;
  int32_t raw = (int32_t) tp_le32 (p->buf + off);
  if (raw >= 0)
    return 0;
  size_t len = (size_t) -(int64_t) raw;
  return len >= 8 && len <= end - off && tp_regf_load (p->r, off, len) ? len - 4 : 0;
}

/* Mark a cell unallocated (its size positive), as hivex and Windows do. */
static int
free_cell (patch *p, size_t off)
{
  size_t payload = cell_payload (p, off);
  if (!payload)
    return fail (p, "%s", "a cell to release is damaged");
  return poke32 (p, off, off, (uint32_t) (payload + 4), TP_PHASE_RELEASE);
}

/* Allocate a cell in the new bin; returns its file offset, 0 on error. */
static size_t
new_cell (patch *p, const void *payload, size_t len)
{
  size_t size = (4 + len + 7) & ~(size_t) 7;
  if (p->bin_used + size > p->bin_cap) {
    size_t cap = p->bin_cap * 2 > p->bin_used + size ? p->bin_cap * 2 : p->bin_used + size;
    unsigned char *more = realloc (p->bin, cap);
    if (!more)
      return 0;
    memset (more + p->bin_cap, 0, cap - p->bin_cap);
    p->bin = more;
    p->bin_cap = cap;
  }
  unsigned char *c = p->bin + p->bin_used;
  tp_put32 (c, (uint32_t) -(int32_t) size);
  memcpy (c + 4, payload, len);
  size_t off = p->bin_file_off + p->bin_used;
  p->bin_used += size;
  return off;
}

static bool
ascii_name (const char *name)
{
  for (const char *c = name; *c; c++)
    if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
      return false;
  return strlen (name) < 0x4000;
}

/* Store the value's data in a vk payload (inline up to 4 bytes). */
static int
set_vk_data (patch *p, unsigned char *vk, const tp_value *v)
{
  tp_put32 (vk + 12, v->type);
  if (v->len <= 4) {
    tp_put32 (vk + 4, (uint32_t) v->len | 0x80000000u);
    unsigned char inline_data[4] = { 0 };
    memcpy (inline_data, v->data, v->len);
    memcpy (vk + 8, inline_data, 4);
    return 0;
  }
  if (v->len > TP_REGF_BIG_DATA_LIMIT)
    return fail (p, "%s", "values over 16344 bytes are not written");
  size_t data = new_cell (p, v->data, v->len);
  if (!data)
    return fail (p, "%s", "out of memory");
  tp_put32 (vk + 4, (uint32_t) v->len);
  tp_put32 (vk + 8, (uint32_t) (data - BINS));
  return 0;
}

/* Release the data cell of an existing value (not inline, not big data:
 * the planner refuses keys holding those). */
static int
free_vk_data (patch *p, const unsigned char *vk_payload)
{
  uint32_t size = tp_le32 (vk_payload + 4);
  uint32_t off = tp_le32 (vk_payload + 8);
  if ((size & 0x80000000u) || size == 0 || off == NO_OFFSET)
    return 0;
  return free_cell (p, (size_t) off + BINS);
}

/* Change an existing value in place: its vk record is rewritten with the
 * same name, the old data cell released. */
static int
replace_value (patch *p, size_t vk_off, const tp_value *v)
{
  size_t len = cell_payload (p, vk_off);
  const unsigned char *old = p->buf + vk_off + 4;
  if (len < 20 || memcmp (old, "vk", 2) != 0)
    return fail (p, "%s", "a value record is damaged");
  unsigned char vk[20];
  memcpy (vk, old, 20);
  if (free_vk_data (p, old) < 0 || set_vk_data (p, vk, v) < 0)
    return -1;
  for (size_t i = 4; i < 16; i += 4)   /* data size, data offset, type */
    if (poke32 (p, vk_off, vk_off + 4 + i, tp_le32 (vk + i), TP_PHASE_LINK) < 0)
      return -1;
  return 0;
}

static size_t
add_value (patch *p, const char *name, const tp_value *v)
{
  if (!ascii_name (name)) {
    fail (p, "%s", "only ASCII value names are written");
    return 0;
  }
  size_t name_len = strlen (name);
  unsigned char *vk = calloc (1, 20 + name_len);
  if (!vk) {
    fail (p, "%s", "out of memory");
    return 0;
  }
  memcpy (vk, "vk", 2);
  tp_put16 (vk + 2, (uint16_t) name_len);
  tp_put16 (vk + 16, 1);                   /* the name is ASCII */
  memcpy (vk + 20, name, name_len);
  size_t off = set_vk_data (p, vk, v) == 0 ? new_cell (p, vk, 20 + name_len) : 0;
  if (!off && !p->why[0])
    fail (p, "%s", "out of memory");
  free (vk);
  return off;
}

/* All edits of one key: values changed in place, the value list rebuilt
 * in the new bin when values come or go, the key's counters updated. */
static int
edit_key (patch *p, const tp_regf_edit *edits, size_t n, size_t nk_off)
{
  size_t nk_len = cell_payload (p, nk_off);
  const unsigned char *nk = p->buf + nk_off + 4;
  if (nk_len < 76 || memcmp (nk, "nk", 2) != 0)
    return fail (p, "%s", "a key record is damaged");
  uint32_t count = tp_le32 (nk + 36), list_off = tp_le32 (nk + 40);
  uint32_t max_name = tp_le32 (nk + 60), max_data = tp_le32 (nk + 64);

  size_t list_len = count ? cell_payload (p, (size_t) list_off + BINS) : 0;
  if (count && list_len / 4 < count)
    return fail (p, "%s", "a value list is damaged");
  uint32_t *list = calloc (count + n + 1, sizeof *list);
  if (!list)
    return fail (p, "%s", "out of memory");
  for (uint32_t i = 0; i < count; i++)
    list[i] = tp_le32 (p->buf + list_off + BINS + 4 + 4 * i);

  uint32_t new_count = count;
  bool list_changed = false;
  int rc = 0;
  for (size_t e = 0; e < n && rc == 0; e++) {
    const tp_regf_edit *ed = &edits[e];
    if (ed->nk_off != nk_off)
      continue;
    if (ed->vk_off && ed->value->present)
      rc = replace_value (p, ed->vk_off, ed->value);
    else if (ed->vk_off) {                        /* delete */
      uint32_t rel = (uint32_t) (ed->vk_off - BINS);
      uint32_t k = 0;
      for (uint32_t i = 0; i < new_count; i++)
        if (list[i] != rel)
          list[k++] = list[i];
      rc = k == new_count ? fail (p, "%s", "a value to delete is not in its key's list")
                          : free_vk_data (p, p->buf + ed->vk_off + 4);
      if (rc == 0)
        rc = free_cell (p, ed->vk_off);
      new_count = k;
      list_changed = true;
    } else if (ed->value->present) {              /* add */
      size_t off = add_value (p, ed->name, ed->value);
      if (!off)
        rc = -1;
      else {
        list[new_count++] = (uint32_t) (off - BINS);
        list_changed = true;
      }
    }
    if (rc == 0 && ed->value->present) {
      uint32_t name_bytes = 2 * (uint32_t) strlen (ed->name);   /* counted as UTF-16 */
      max_name = name_bytes > max_name ? name_bytes : max_name;
      max_data = ed->value->len > max_data ? (uint32_t) ed->value->len : max_data;
    }
  }
  if (rc == 0 && list_changed) {
    unsigned char *bytes = calloc (new_count + 1, 4);
    size_t new_list = 0;
    for (uint32_t i = 0; bytes && i < new_count; i++)
      tp_put32 (bytes + 4 * i, list[i]);
    if (bytes && new_count)
      new_list = new_cell (p, bytes, 4 * new_count);
    free (bytes);
    if (new_count && !new_list)
      rc = fail (p, "%s", "out of memory");
    if (rc == 0 && count)
      rc = free_cell (p, (size_t) list_off + BINS);
    if (rc == 0 && (poke32 (p, nk_off, nk_off + 4 + 36, new_count, TP_PHASE_LINK) < 0 ||
                    poke32 (p, nk_off, nk_off + 4 + 40, new_count ? (uint32_t) (new_list - BINS)
                                                                  : NO_OFFSET, TP_PHASE_LINK) < 0))
      rc = -1;
  }
  if (rc == 0 && (poke32 (p, nk_off, nk_off + 4 + 60, max_name, TP_PHASE_GROW) < 0 ||
                  poke32 (p, nk_off, nk_off + 4 + 64, max_data, TP_PHASE_GROW) < 0))
    rc = -1;
  free (list);
  return rc;
}

/* Close the new bin: its header, and the rest of it as one free cell. */
static size_t
finish_bin (patch *p, uint32_t bin_rel)
{
  size_t size = (p->bin_used + 4095) / 4096 * 4096;
  if (size > p->bin_cap) {
    unsigned char *more = realloc (p->bin, size);
    if (!more)
      return 0;
    memset (more + p->bin_cap, 0, size - p->bin_cap);
    p->bin = more;
    p->bin_cap = size;
  }
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
    ssize_t r = pread (in, chunk, sizeof chunk, in_off);
    if (r <= 0 || pwrite (out, chunk, (size_t) r, out_off) != r)
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
  uint32_t s1 = tp_le32 (old + 4), s2 = tp_le32 (old + 8);
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

int
tp_regf_make_patch (const tp_regf *r, const tp_regf_edit *edits, size_t n,
                    tp_regf_patch *out, char *why, size_t whylen)
{
  why[0] = '\0';
  memset (out, 0, sizeof *out);
  if (r->size < BINS || !tp_regf_load (r, 0, BINS)) {
    snprintf (why, whylen, "the base block cannot be read");
    return -1;
  }
  uint32_t bins_size = tp_le32 (r->buf + 40);
  patch p = { .r = r, .buf = r->buf, .size = r->size, .why = why, .whylen = whylen,
              .bin_file_off = BINS + (size_t) bins_size, .bin_used = 32, .bin_cap = 4096 };
  p.bin = calloc (1, p.bin_cap);
  int rc = p.bin ? 0 : fail (&p, "%s", "out of memory");
  for (size_t e = 0; e < n && rc == 0; e++) {
    bool first = true;          /* each key once, with all its edits */
    for (size_t k = 0; k < e; k++)
      first = first && edits[k].nk_off != edits[e].nk_off;
    if (first)
      rc = edit_key (&p, edits, n, edits[e].nk_off);
  }
  if (rc == 0 && p.bin_used > 32) {
    size_t bin_size = finish_bin (&p, bins_size);
    if (!bin_size || (uint64_t) bins_size + bin_size > 0x7FFFFFFFu)
      rc = fail (&p, "%s", "the hive cannot grow further");
    else
      bins_size += (uint32_t) bin_size;
  }
  if (rc != 0) {
    free (p.pokes);
    free (p.bin);
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
  memcpy (out->old_base_block, r->buf, BINS);
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

static int
write_patch (const tp_regf_patch *p, int out_fd, int src_fd, size_t size, char *why,
             size_t whylen)
{
  if (copy_all (out_fd, src_fd, size) != 0) {
    snprintf (why, whylen, "%s", strerror (errno));
    return -1;
  }
  errno = 0;
  for (size_t i = 0; i < p->n_pokes; i++)
    if (pwrite (out_fd, p->pokes[i].bytes, p->pokes[i].len, (off_t) p->pokes[i].off) !=
        (ssize_t) p->pokes[i].len)
      goto io_error;
  if (p->bin_size &&
      pwrite (out_fd, p->bin, p->bin_size, (off_t) p->bin_off) != (ssize_t) p->bin_size)
    goto io_error;
  if (pwrite (out_fd, p->base_block, BINS, 0) != BINS)
    goto io_error;
  return 0;
 io_error:
  snprintf (why, whylen, "%s", errno ? strerror (errno) : "short write");
  return -1;
}

int
tp_regf_write_edits (int out_fd, int src_fd, const unsigned char *buf, size_t size,
                     const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  tp_regf r = { .buf = buf, .size = size,
                .bins_end = size >= BINS ? BINS + (size_t) tp_le32 (buf + 40) : 0 };
  tp_regf_patch p;
  if (tp_regf_make_patch (&r, edits, n, &p, why, whylen) != 0)
    return -1;
  int rc = write_patch (&p, out_fd, src_fd, size, why, whylen);
  tp_regf_patch_free (&p);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reading the written file back                                      */

/* Where the written hive is read back from. */
typedef struct {
  tp_regf_read_fn read;
  void *ctx;
} source;

/* The allocated cell at file offset `off`: its payload (malloc'd). */
static unsigned char *
read_cell (const source *fd, size_t file_size, size_t off, size_t *len)
{
  unsigned char sz[4];
  if (off < BINS || off + 8 > file_size || fd->read (fd->ctx, sz, 4, off) != 0)
    return NULL;
  int32_t raw = (int32_t) tp_le32 (sz);
  if (raw >= 0 || (size_t) -(int64_t) raw > file_size - off || -(int64_t) raw < 8)
    return NULL;
  *len = (size_t) -(int64_t) raw - 4;
  unsigned char *p = malloc (*len);
  if (p && fd->read (fd->ctx, p, *len, off + 4) != 0) {
    free (p);
    p = NULL;
  }
  return p;
}

/* Value `name` of the key at nk_off, as written: 1 found (filled),
 * 0 absent, -1 damaged. */
static int
read_value (const source *fd, size_t file_size, size_t nk_off, const char *name, tp_value *out)
{
  size_t nk_len, list_len;
  unsigned char *nk = read_cell (fd, file_size, nk_off, &nk_len);
  if (!nk || nk_len < 76 || memcmp (nk, "nk", 2) != 0) {
    free (nk);
    return -1;
  }
  uint32_t count = tp_le32 (nk + 36), list_off = tp_le32 (nk + 40);
  uint32_t max_name = tp_le32 (nk + 60), max_data = tp_le32 (nk + 64);
  free (nk);
  if (count == 0)
    return 0;
  unsigned char *list = read_cell (fd, file_size, (size_t) list_off + BINS, &list_len);
  int found = list && list_len / 4 >= count ? 0 : -1;
  for (uint32_t i = 0; found == 0 && i < count; i++) {
    size_t vk_len;
    unsigned char *vk = read_cell (fd, file_size, (size_t) tp_le32 (list + 4 * i) + BINS, &vk_len);
    size_t name_len = vk && vk_len >= 20 ? tp_le16 (vk + 2) : 0;
    if (!vk || vk_len < 20 + name_len || memcmp (vk, "vk", 2) != 0)
      found = -1;
    else if ((tp_le16 (vk + 16) & 1) && name_len == strlen (name) &&
             strncasecmp ((const char *) vk + 20, name, name_len) == 0) {
      uint32_t size = tp_le32 (vk + 4);
      out->present = true;
      out->type = tp_le32 (vk + 12);
      out->len = size & 0x7FFFFFFFu;
      out->data = malloc (out->len ? out->len : 1);
      if (!out->data)
        found = -1;
      else if (size & 0x80000000u)
        found = out->len <= 4 ? (memcpy (out->data, vk + 8, out->len), 1) : -1;
      else {
        size_t data_len;
        unsigned char *data = read_cell (fd, file_size, (size_t) tp_le32 (vk + 8) + BINS, &data_len);
        found = data && data_len >= out->len ? (memcpy (out->data, data, out->len), 1) : -1;
        free (data);
      }
    }
    free (vk);
  }
  free (list);
  /* The key's hints (longest name in UTF-16 bytes, largest data) must
   * cover the value: readers size their buffers by them. */
  if (found == 1 && (max_name < 2 * strlen (name) || max_data < out->len))
    found = -1;
  return found;
}

int
tp_regf_verify_edits_from (tp_regf_read_fn read, void *ctx, size_t end,
                           const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  source src = { .read = read, .ctx = ctx }, *fd = &src;
  unsigned char bb[TP_REGF_BASE_BLOCK_SIZE];
  tp_regf_header hdr;
  if (read (ctx, bb, sizeof bb, 0) != 0) {
    snprintf (why, whylen, "cannot read the written hive back");
    return -1;
  }
  /* tp_regf_check_primary reads only the base block of what it is given. */
  if (tp_regf_check_primary (bb, end < sizeof bb ? sizeof bb : end, &hdr,
                             why, whylen) != 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    tp_value got = { 0 };
    int rc = read_value (fd, end, edits[i].nk_off, edits[i].name, &got);
    bool ok = rc >= 0 && tp_value_equal (&got, edits[i].value);
    tp_value_free (&got);
    if (!ok) {
      snprintf (why, whylen, "value %s does not read back as written", edits[i].name);
      return -1;
    }
  }
  return 0;
}

static int
read_fd (void *ctx, void *buf, size_t len, uint64_t off)
{
  return pread (*(int *) ctx, buf, len, (off_t) off) == (ssize_t) len ? 0 : -1;
}

int
tp_regf_verify_edits (int fd, const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  off_t end = lseek (fd, 0, SEEK_END);
  if (end < 0) {
    snprintf (why, whylen, "cannot read the written hive back");
    return -1;
  }
  return tp_regf_verify_edits_from (read_fd, &fd, (size_t) end, edits, n, why, whylen);
}
