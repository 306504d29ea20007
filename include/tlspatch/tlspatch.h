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
#include "tlspatch/recover.h"
#include "tlspatch/regf.h"
#include "tlspatch/report.h"
#include "tlspatch/result.h"
#include "tlspatch/services.h"
#include "tlspatch/settings.h"
#include "tlspatch/target.h"
#include "tlspatch/undo.h"

typedef struct {
  tp_undo_writer *undo_writer;      /* apply --undo */
  const tp_undo_doc *undo_doc;      /* revert --undo */
} tp_undo_ctx;

/* `expect`: the kind the hive must be (from its name in a directory),
 * or TP_HIVE_UNKNOWN to go by its content. `label`: how reports and
 * undo records name the hive (a hive copied out of a disk image is
 * named by the image), NULL for its own path. Returns res->status. */
tp_status tp_process_hive (const tp_options *opt, const char *path,
                           tp_hive_kind expect, const char *label,
                           tp_undo_ctx *undo, tp_result *res);

/* The same on a hive already open (tp_hive_open or tp_hive_open_reader);
 * the caller closes it. */
tp_status tp_process_opened (const tp_options *opt, tp_hive *hv, tp_hive_kind expect,
                             const char *label, tp_undo_ctx *undo, tp_result *res);

#define TP_EXIT_OK           0
#define TP_EXIT_ERROR        1
#define TP_EXIT_USAGE        2
#define TP_EXIT_NONCOMPLIANT 3

#endif
