/* tlspatch: undo records, as .reg files.
 *
 * apply --undo FILE records the previous state of every value it
 * changes: the exact type and bytes as hex(N):..., or "=-" where the
 * value was absent. Key paths carry the usual prefix
 * (HKEY_LOCAL_MACHINE\SOFTWARE or \SYSTEM), so a one-hive record is
 * accepted by `hivexregedit --merge --prefix ...`, and the whole file by
 * regedit on a running Windows. `tlspatch revert` reads it back.
 *
 * A value that apply deletes from a key is written back preceded by a
 * comment "; position: N", its place in the key's value list (1 =
 * first): revert puts it back there, so that the list is as it was.
 * Other readers take the line for a comment and append the value.
 */
#ifndef TLSPATCH_UNDO_H
#define TLSPATCH_UNDO_H

#include "tlspatch/hive.h"
#include "tlspatch/result.h"

/* Writer. The file is created (never overwritten) on the first record,
 * and each record is flushed to disk before its hive is written. */
typedef struct tp_undo_writer tp_undo_writer;

tp_undo_writer *tp_undo_writer_new (const char *path);
/* Append the old values of res's changes. -1 on error (in res). */
int tp_undo_writer_record (tp_undo_writer *w, tp_result *res);
void tp_undo_writer_free (tp_undo_writer *w);

/* Reader. */
typedef struct tp_undo_doc tp_undo_doc;

/* Parse an undo file; NULL with a one-line reason in why. */
tp_undo_doc *tp_undo_load (const char *path, char *why, size_t whylen);
void tp_undo_free (tp_undo_doc *doc);

/* Plan the changes that restore the values recorded for this hive
 * (its kind, and its name, res->target, when the record holds several
 * hives of that kind). */
int tp_undo_plan (const tp_undo_doc *doc, tp_hive *hv, tp_result *res);

#endif
