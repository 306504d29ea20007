/* tlspatch: hivex, the standard hive library, referees what tlspatch
 * writes.
 *
 * tlspatch edits records itself, so that only the changed cells are
 * written (in place and crash-safe in images); a second, independent
 * reader must agree with every result before it replaces a hive. The
 * referee opens the hive written beside the original with hivex_open
 * and reads every edit back through hivex alone: created keys exist,
 * deleted keys and values are gone, set values have their type and
 * bytes; every other value of each key whose values changed must read
 * through hivex as tlspatch's reader read it in the original (same
 * names, types, bytes, order; a value it could not read, such as
 * Windows' "unset" data, must be as unreadable to hivex, with the same
 * type and length fields). hivex_open itself checks every bin and cell
 * of the written file. On any failure hivex opens the original and
 * walks its whole tree: when it cannot, the message says the original
 * is damaged (beyond what tlspatch's reader met on its lookups).
 *
 * A cell the patch releases that another record still uses (a crafted
 * hive sharing cells) is refused before the write, by tlspatch's own
 * pass over the whole original (tp_regf_patch_unshared, beside the
 * copy): that pass reads the tree with prefetching in 25 ms where a
 * walk of the written tree through hivex's API took 55 ms and put
 * apply on an 80 MB hive at twice the cost of copying it with fsync.
 *
 * The original is not opened by hivex on success: the written file
 * holds the same bins and cells but for the few records changed and
 * the new bin, so hivex opening it checks them too, at half the cost.
 *
 * Names are looked up as Windows compares them (layout.h), not as
 * hivex's own lookup does (ASCII case only).
 */
#ifndef TLSPATCH_REFEREE_H
#define TLSPATCH_REFEREE_H

#include <stddef.h>

#include "tlspatch/reader.h"
#include "tlspatch/writer.h"

/* The hive written at `written` after `edits`, against the original:
 * `orig` as tlspatch's reader holds it, `original` its file (it may be
 * a /proc/self/fd path), opened only to tell whose fault a failure is.
 * 0 when hivex agrees; -1 with one line in why: what hivex saw ("hivex
 * reads key \K, value V: it ...", "hivex cannot open the written hive",
 * "... original ...: it is damaged"). */
int tp_referee_check_written (const char *original, const tp_regf *orig, const char *written,
                              const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

/* One value an audit judged, as tlspatch's reader read it: `value`
 * not present means absent. */
typedef struct {
  const char *key;              /* path from the root, "\A\B" */
  const char *name;             /* "" the default value */
  const tp_value *value;
} tp_referee_seen;

/* An audit's second opinion: hivex opens `hive` and reads each judged
 * value; it must find the key, and the value present with the same
 * type and bytes, or absent, as tlspatch's reader did. 0 when it
 * agrees; -1 with one line in why ("hivex reads key \K, value V: it
 * ...", "hivex cannot open the hive: ..."). */
int tp_referee_confirm (const char *hive, const tp_referee_seen *seen, size_t n, char *why,
                        size_t whylen);

#endif
