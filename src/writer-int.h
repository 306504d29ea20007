/* tlspatch: what the writer's files share (not a public header).
 *
 * writer-patch.c holds the patch being built: 4-byte edits of
 * existing records (pokes) in phases, cells released, new cells in one
 * new hive bin. editor.c turns path-addressed edits into those pokes
 * and new cells (key and value records); writer.c orders the patch
 * into phased writes with a new base block and writes it (in a copy or
 * in place); writer-verify.c reads the result back by path. The
 * dependencies go one way: writer -> editor -> writer-patch. */
#ifndef TLSPATCH_WRITER_INT_H
#define TLSPATCH_WRITER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlspatch/reader.h"
#include "tlspatch/writer.h"


/* A 4-byte edit of an existing record, as planned (merged into runs
 * of tp_regf_poke afterwards). */
typedef struct {
  size_t off;
  unsigned char bytes[4];
  tp_regf_phase phase;
  size_t record;                /* the cell it belongs to: one record's LINK edits are one change */
  size_t seq;                   /* planning order: a later edit of the same bytes wins */
} tp_w_edit32;

/* Small in-place edits of the hive, and the new bin being built. */
typedef struct {
  tp_w_edit32 *pokes;
  size_t n_pokes;
  unsigned char *bin;           /* the appended hive bin, header included */
  size_t bin_used, bin_cap, bin_size;
  size_t bin_file_off;          /* where the bin starts in the file */
  const tp_regf *r;             /* the hive as it is (loaded on demand) */
  const unsigned char *buf;
  size_t size;
  uint32_t minor;
  uint64_t now;                 /* FILETIME for new and changed keys */
  size_t *freed;                /* cells released so far: a hash set (0 = empty slot) */
  size_t freed_cap, n_freed;
  char *why;
  size_t whylen;
} tp_w_patch;

/* Record a one-line reason (printf with one string); returns -1. */
int tp_w_fail (tp_w_patch *p, const char *fmt, const char *detail);

/* Set 4 bytes of an existing record in a phase. tp_w_poke32 drops a
 * poke that changes nothing; tp_w_poke32_always keeps it (a later
 * phase putting back bytes an earlier one changed). */
int tp_w_poke32 (tp_w_patch *p, size_t record, size_t off, uint32_t v, tp_regf_phase phase);
int tp_w_poke32_always (tp_w_patch *p, size_t record, size_t off, uint32_t v,
                        tp_regf_phase phase);

/* The allocated cell at file offset `off` of the hive: its payload
 * length, or 0 when it is not one (out of bounds, free, too small). */
size_t tp_w_cell (const tp_w_patch *p, size_t off);

/* Mark the hive's cell at `off` free in RELEASE. 0 when freed now; 1
 * when it already was by this patch; -1 when it is damaged. */
int tp_w_free (tp_w_patch *p, size_t off);

/* A new cell in the new bin holding `len` bytes of `payload` (NULL:
 * zeros). Returns its file offset, 0 when out of memory. */
size_t tp_w_new_cell (tp_w_patch *p, const void *payload, size_t len);

/* Room for `cap` bytes of new bin (zero-filled). 0, or -1 when out of
 * memory. */
int tp_w_bin_reserve (tp_w_patch *p, size_t cap);

/* The payload of a new cell, by its file offset (valid until the next
 * tp_w_new_cell). */
unsigned char *tp_w_new_payload (tp_w_patch *p, size_t off);

/* The editor (editor.c): carry out edits as pokes and new cells. */
int tp_w_plan (tp_w_patch *p, const tp_regf_edit *edits, size_t n);

/* The components of a key path ("\A\B", "" or "\" the root) as UTF-16
 * names: a malloc'd array (free with tp_w_path_free), *n of them. NULL
 * when the path is invalid (an empty component, bad UTF-8). */
typedef struct {
  uint16_t *u;
  size_t n;
} tp_w_name;
tp_w_name *tp_w_path (const char *path, size_t *n);
void tp_w_path_free (tp_w_name *parts, size_t n);

/* The child of key `nk` named `name` (as Windows compares), or 0;
 * *damaged set when a list or name cannot be read. */
size_t tp_w_find_child (const tp_regf *r, size_t nk, const tp_w_name *name, bool *damaged);

/* The value of key `nk` named `name`, or 0 (*damaged as above). */
size_t tp_w_find_value (const tp_regf *r, size_t nk, const tp_w_name *name, bool *damaged);

#endif
