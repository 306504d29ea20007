/* tlspatch: the patch being built: pokes of existing records (4 bytes
 * each, in phases), cells released, and new cells in the new hive bin
 * (see writer-int.h). editor.c fills it; writer.c writes it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/regf.h"
#include "writer-int.h"

typedef tp_w_edit32 edit32;
typedef tp_w_patch patch;

int
tp_w_fail (patch *p, const char *fmt, const char *detail)
{
  snprintf (p->why, p->whylen, fmt, detail);
  return -1;
}

static int
add_poke (patch *p, size_t record, size_t off, uint32_t v, tp_regf_phase phase)
{
  void *more = realloc (p->pokes, (p->n_pokes + 1) * sizeof *p->pokes);
  if (!more)
    return tp_w_fail (p, "%s", "out of memory");
  p->pokes = more;
  p->pokes[p->n_pokes] = (edit32) { .off = off, .phase = phase, .record = record,
                                    .seq = p->n_pokes };
  tp_put32 (p->pokes[p->n_pokes].bytes, v);
  p->n_pokes++;
  return 0;
}

/* A poke that changes nothing is dropped: an in-place writer then
 * touches only what differs. The bytes were loaded by tp_w_cell. */
int
tp_w_poke32 (patch *p, size_t record, size_t off, uint32_t v, tp_regf_phase phase)
{
  return tp_le32 (p->buf + off) == v ? 0 : add_poke (p, record, off, v, phase);
}

int
tp_w_poke32_always (patch *p, size_t record, size_t off, uint32_t v, tp_regf_phase phase)
{
  return add_poke (p, record, off, v, phase);
}

size_t
tp_w_cell (const patch *p, size_t off)
{
  size_t len;
  return tp_regf_cell (p->r, off, &len) ? len : 0;
}

/* The set of released cells: open addressing on the offset. */
static int
freed_add (patch *p, size_t off)
{
  if (2 * (p->n_freed + 1) > p->freed_cap) {
    size_t cap = p->freed_cap ? 2 * p->freed_cap : 64;
    size_t *set = calloc (cap, sizeof *set);
    if (!set)
      return -1;
    for (size_t i = 0; i < p->freed_cap; i++)
      for (size_t h = p->freed[i] / 8 % cap; p->freed[i]; h = (h + 1) % cap)
        if (!set[h]) {
          set[h] = p->freed[i];
          break;
        }
    free (p->freed);
    p->freed = set;
    p->freed_cap = cap;
  }
  for (size_t h = off / 8 % p->freed_cap;; h = (h + 1) % p->freed_cap) {
    if (p->freed[h] == off)
      return 1;
    if (!p->freed[h]) {
      p->freed[h] = off;
      p->n_freed++;
      return 0;
    }
  }
}

/* Mark a cell unallocated (its size positive), as hivex and Windows do. */
int
tp_w_free (patch *p, size_t off)
{
  size_t payload = tp_w_cell (p, off);
  if (!payload)
    return tp_w_fail (p, "%s", "a cell to release is damaged");
  int seen = freed_add (p, off);
  if (seen != 0)
    return seen < 0 ? tp_w_fail (p, "%s", "out of memory") : 1;
  return tp_w_poke32 (p, off, off, (uint32_t) (payload + 4), TP_PHASE_RELEASE);
}

int
tp_w_bin_reserve (patch *p, size_t cap)
{
  return tp_grow_zeroed (&p->bin, &p->bin_cap, cap);
}

size_t
tp_w_new_cell (patch *p, const void *payload, size_t len)
{
  size_t size = (4 + len + 7) & ~(size_t) 7, need = p->bin_used + size;
  if (need > p->bin_cap && tp_w_bin_reserve (p, p->bin_cap * 2 > need ? p->bin_cap * 2 : need) < 0)
    return 0;
  unsigned char *c = p->bin + p->bin_used;
  tp_put32 (c, (uint32_t) -(int32_t) size);
  if (payload)
    memcpy (c + 4, payload, len);
  size_t off = p->bin_file_off + p->bin_used;
  p->bin_used += size;
  return off;
}

unsigned char *
tp_w_new_payload (patch *p, size_t off)
{
  return p->bin + (off - p->bin_file_off) + 4;
}
