/* tlspatch: a lazy, bounds-checked reader of regf hives.
 *
 * It walks only the records a lookup needs (root, subkey lists, the key,
 * its values), straight from a read-only mapping of the file. hivex_open
 * instead scans every cell of the hive before the first lookup, which
 * costs a pass over the whole file (45 ms and the file's size in memory
 * for an 85 MB SOFTWARE) where a check needs a few pages. Every offset
 * is checked against the buffer: the input is hostile.
 *
 * Keys and values are named by the file offsets of their cells (as
 * hivex's handles are); 0 means "none".
 */
#ifndef TLSPATCH_READER_H
#define TLSPATCH_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlspatch/result.h"

typedef struct {
  const unsigned char *buf;
  size_t size;
  uint32_t minor;               /* big data exists from minor 4 on */
  /* Where the hive bins end (4096 + the base block's hive bins size),
   * when less than size: cells past it (in the room Windows leaves at
   * the end of the file) are not the hive's. 0: size. */
  size_t bins_end;
  /* A hive read on demand (inside a disk image): when set, called before
   * bytes [off, off+len) of buf are read, to fill them. False when they
   * cannot be read; the bytes then count as damaged. */
  bool (*load) (void *ctx, size_t off, size_t len);
  void *load_ctx;
} tp_regf;

/* The end of the hive's cells. */
static inline size_t
tp_regf_cells_end (const tp_regf *r)
{
  return r->bins_end && r->bins_end < r->size ? r->bins_end : r->size;
}

/* Make bytes [off, off+len) of r->buf readable (true when they are). */
static inline bool
tp_regf_load (const tp_regf *r, size_t off, size_t len)
{
  return !r->load || r->load (r->load_ctx, off, len);
}

/* Read len bytes at off into buf: 0, or -1 when they cannot all be read. */
typedef int (*tp_regf_read_fn) (void *ctx, void *buf, size_t len, uint64_t off);

/* The one cell parser: the payload of the allocated cell at file offset
 * `off` (its length in *len), or NULL when it is not one (out of
 * bounds, misaligned, free, too small, unreadable). */
const unsigned char *tp_regf_cell (const tp_regf *r, size_t off, size_t *len);

/* The root key (from the base block), or 0 when damaged. */
size_t tp_regf_root (const tp_regf *r);

/* Child of key `nk` named `name` (ASCII case-insensitive, as Windows
 * and hivex compare), or 0. A damaged list or name sets *damaged: then
 * "absent" cannot be told apart from "unreadable". */
size_t tp_regf_child (const tp_regf *r, size_t nk, const char *name, bool *damaged);

/* All children / values of a key: a malloc'd array of offsets, its
 * length in *n. NULL with *n 0 when there are none; NULL with *n
 * (size_t)-1 when a list is damaged. */
size_t *tp_regf_children (const tp_regf *r, size_t nk, size_t *n);
size_t *tp_regf_values (const tp_regf *r, size_t nk, size_t *n);

/* Names as UTF-8 (malloc'd), NULL when damaged. */
char *tp_regf_key_name (const tp_regf *r, size_t nk);
char *tp_regf_value_name (const tp_regf *r, size_t vk);

/* Value `name` of key `nk`, or 0 (*damaged as for tp_regf_child);
 * when found and position is not NULL, its place in the key's value
 * list (1 = first). */
size_t tp_regf_value (const tp_regf *r, size_t nk, const char *name, bool *damaged,
                      size_t *position);

/* A value's type and data (inline, in a cell, or big data). -1 when damaged. */
int tp_regf_value_data (const tp_regf *r, size_t vk, tp_value *out);

/* How many times each of cells[0..n) (file offsets, sorted) is
 * referenced from the hive's tree, in counts[0..n): a pass over every
 * key reached from the root (subkey lists and ri leaves, the value
 * list, values, their data, big-data segment lists and segments, class
 * names; security records are shared by design and not counted). A
 * record met again through a second reference is counted again but not
 * walked again, so the pass is linear even on a hostile hive. Windows
 * references every other cell once: a count above 1 is a hive damaged
 * by sharing. Returns 0; -1 when a key, list, value or data cell on the
 * tree cannot be read (*where: its offset); -2 out of memory. */
int tp_regf_count_references (const tp_regf *r, const size_t *cells, size_t n, unsigned *counts,
                              size_t *where);

#endif
