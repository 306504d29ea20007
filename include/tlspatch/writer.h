/* tlspatch: write a hive with a few values changed, without rewriting it.
 *
 * hivex_commit rebuilds the whole file from a full in-memory copy and
 * rewrites every value of a key it touches. For a handful of DWORDs
 * that costs a copy of the hive in memory and risks the key's other
 * values (hivex-notes.md). Instead: the hive's bytes are copied to the
 * output in the kernel (copy_file_range), the changed value records are
 * edited in place, new records go into ONE new hive bin appended at the
 * end, and the base block gets new sequence numbers and checksum. Every
 * other byte stays as it was.
 */
#ifndef TLSPATCH_WRITER_H
#define TLSPATCH_WRITER_H

#include <stddef.h>

#include "tlspatch/result.h"

typedef struct {
  size_t nk_off;            /* file offset of the key's nk cell (a hivex node handle) */
  size_t vk_off;            /* file offset of the value's vk cell, 0 when absent */
  const char *name;         /* value name (ASCII) */
  const tp_value *value;    /* the new value; !present deletes it */
} tp_regf_edit;

/* Write src (the hive's `size` bytes, readable as `buf` and from
 * `src_fd`) with the edits applied to `out_fd`, an empty file. Returns
 * 0, or -1 with a one-line reason in why (nothing is promised about
 * out_fd then). */
int tp_regf_write_edits (int out_fd, int src_fd, const unsigned char *buf, size_t size,
                         const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

/* Read the written file back through fd: a clean base block, and each
 * edited value exactly as intended (absent where deleted). */
int tp_regf_verify_edits (int fd, const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

#endif
