/* tlspatch: the library's entry point, as the CLI and the tests use it.
 *
 * tp_process_hive runs one mode (apply, check, revert) on one hive file
 * and fills a tp_result: open and validate, plan, record undo, write
 * atomically. It never stops the caller: failures become TP_STATUS_ERROR.
 */
#ifndef TLSPATCH_TLSPATCH_H
#define TLSPATCH_TLSPATCH_H

#include "tlspatch/hive.h"
#include "tlspatch/netfx.h"
#include "tlspatch/options.h"
#include "tlspatch/profiles.h"
#include "tlspatch/recover.h"
#include "tlspatch/regf.h"
#include "tlspatch/report.h"
#include "tlspatch/result.h"
#include "tlspatch/services.h"
#include "tlspatch/settings.h"
#include "tlspatch/target.h"
#include "tlspatch/undo.h"
#include "tlspatch/writer.h"

typedef struct {
  tp_undo_writer *undo_writer;      /* apply --undo */
  const tp_undo_doc *undo_doc;      /* revert --undo */
} tp_undo_ctx;

/* The pipeline, the same for every target: a hive file, a hive in a
 * mounted folder, a hive inside a disk image.
 *
 *   open    tp_hive_open (a local file) or tp_hive_open_reader (read on
 *           demand through a function, e.g. inside an image)
 *   plan    tp_plan: the rules (KB 4033999, settings, or an undo record)
 *           evaluated against the hive: changes, warnings, status.
 *           Nothing is written.
 *   commit  tp_commit, when tp_plan_writes: the undo record, then the
 *           write through one of two targets, then verification:
 *             file      a temp file beside the hive, fsync, read back,
 *                       rename over it, fsync the folder;
 *             in place  the patch's phases written into the file with
 *                       a sync between them (writer.h), read back; a
 *                       failure rolls every write back. */

/* `expect`: the kind the hive must be (from its name in a directory),
 * or TP_HIVE_UNKNOWN to go by its content. `label`: how reports and
 * undo records name the hive, NULL for its own path. `undo_doc`: the
 * record revert restores. Returns res->status. */
tp_status tp_plan (const tp_options *opt, tp_hive *hv, tp_hive_kind expect, const char *label,
                   const tp_undo_doc *undo_doc, tp_result *res);

/* True when the plan in res is to be written (apply, revert, recover;
 * not a dry run; something changes). */
bool tp_plan_writes (const tp_options *opt, const tp_result *res);

/* One hive to commit. */
typedef struct {
  tp_hive *hv;
  tp_result *res;               /* its plan; failures are recorded here */
  bool in_place;                /* else the atomic local file (hv opened with tp_hive_open) */
  bool backup;                  /* file: keep the original as HIVE.tlspatch-bak */
  tp_regf_target target;        /* in place: the file's writes and its size */
  tp_regf_patch patch;          /* in place: made by tp_commit_prepare */
  bool prepared;
} tp_commit_job;

/* In place: make the patch. 0; 1 when it cannot go in place (a
 * recovered hive, a new bin that would not start within or at the end
 * of the file, a change a stop could tear): use the file target; -1 on
 * error (in res). */
int tp_commit_prepare (tp_commit_job *j);
void tp_commit_job_free (tp_commit_job *j);

/* How in-place writes reach the disk: sync between phases; error(ctx)
 * describes the last failure (malloc'd, or NULL). */
typedef struct {
  int (*sync) (void *ctx);
  char *(*error) (void *ctx);
  void *ctx;
} tp_commit_io;

/* Commit jobs (all of one target kind): the undo records first, each
 * flushed; then the files one by one, or the in-place patches together,
 * phase by phase with one sync per phase, then each read back; any
 * failure rolls back every job. 0; -1 failed, nothing changed (or, for
 * files, not the hives that failed); -2 failed in place and so did the
 * rollback (the hives are valid, partly patched). Reasons in the jobs'
 * results. */
int tp_commit (tp_commit_job *const *jobs, size_t n, tp_undo_writer *undo,
               const tp_commit_io *io);

/* A hive file, start to finish: open, plan, commit to the file. */
tp_status tp_process_hive (const tp_options *opt, const char *path, tp_hive_kind expect,
                           const char *label, tp_undo_ctx *undo, tp_result *res);

#define TP_EXIT_OK           0
#define TP_EXIT_ERROR        1
#define TP_EXIT_USAGE        2
#define TP_EXIT_NONCOMPLIANT 3

#endif
