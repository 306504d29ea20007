/* tlspatch: hivex, the standard hive library, referees what tlspatch
 * writes.
 *
 * tlspatch edits records itself, so that only the changed cells are
 * written (in place and crash-safe in images); a second, independent
 * reader must agree with every result before it replaces a hive. The
 * referee opens the hive written beside the original with hivex_open
 * and reads every edit back through hivex alone: created keys exist,
 * deleted keys and values are gone, set values have their type and
 * bytes, and every other value of each key whose values changed is as
 * hivex reads it in the original (same names, types, bytes, order; a
 * value hivex cannot read in the original must be as unreadable in the
 * written hive, with the same type and length).
 * Then hivex walks the whole written tree (every key, value and data
 * cell): a cell the patch released that another record still used (a
 * crafted hive sharing cells) shows as a key hivex cannot read. When
 * hivex cannot open or walk the original either, the hive is damaged
 * beyond what tlspatch's own reader met: that is an error too.
 *
 * Names are looked up as Windows compares them (layout.h), not as
 * hivex's own lookup does (ASCII case only).
 */
#ifndef TLSPATCH_REFEREE_H
#define TLSPATCH_REFEREE_H

#include <stddef.h>

#include "tlspatch/writer.h"

/* The hive at `original` (it may be a /proc/self/fd path) against the
 * one written at `written` after `edits`. 0 when hivex agrees; -1 with
 * one line in why: what hivex saw ("cannot open the original: ...",
 * "\Key: value X reads back as ...", ...). */
int tp_referee_check_written (const char *original, const char *written,
                              const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

#endif
