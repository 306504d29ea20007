/* tlspatch: one mode on one hive, start to finish. */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/recover.h"
#include "tlspatch/tlspatch.h"

static int
plan (const tp_options *opt, tp_hive *hv, tp_undo_ctx *undo, tp_result *res)
{
  if (opt->mode == TP_MODE_REVERT)
    return tp_undo_plan (undo->undo_doc, hv, res);
  if (opt->settings)
    return tp_settings_plan (opt->settings, hv, res);
  if (tp_hive_kind_of (hv) == TP_HIVE_SOFTWARE)
    return tp_netfx_plan (hv, opt, res);
  if (opt->no_service) {
    tp_result_warn (res, "--no-service: the SYSTEM hive is left alone");
    return 0;
  }
  return tp_services_plan (hv, opt, res);
}

/* A recovered hive counts as a change: apply writes it back clean. */
static tp_status
decide_status (const tp_options *opt, tp_result *res)
{
  bool changes = res->n_changes || res->recovery;
  if (opt->mode == TP_MODE_CHECK)
    return (changes || res->dotnet_too_old) ? TP_STATUS_NONCOMPLIANT : TP_STATUS_COMPLIANT;
  return changes ? TP_STATUS_PATCHED : TP_STATUS_UNCHANGED;
}

static void
warn_recovery (const tp_options *opt, tp_result *res)
{
  const tp_recovery_info *info = res->recovery;
  if (!info)
    return;
  tp_result_warn (res, "hive was dirty (sequence numbers %u != %u): %s %u log entries "
                  "(%u pages, %s format) from %s%s%s",
                  info->seq_before_primary, info->seq_before_secondary,
                  opt->mode == TP_MODE_CHECK || opt->dry_run ? "recovery would replay"
                                                             : "replayed",
                  info->entries, info->pages, tp_log_format_name (info->format),
                  info->n_logs_used ? info->logs_used[0] : "?",
                  info->n_logs_used > 1 ? " and " : "",
                  info->n_logs_used > 1 ? info->logs_used[1] : "");
  if (info->stopped)
    tp_result_warn (res, "log replay stopped early: %s", info->stopped);
  if (info->bins_replaced)
    tp_result_warn (res, "%u damaged hive bins were replaced by empty ones, as Windows does",
                    info->bins_replaced);
}

tp_status
tp_process_hive (const tp_options *opt, const char *path, tp_hive_kind expect,
                 const char *label, tp_undo_ctx *undo, tp_result *res)
{
  bool writes = opt->mode != TP_MODE_CHECK && !opt->dry_run;
  res->dry_run = opt->dry_run && opt->mode != TP_MODE_CHECK;
  res->kind = expect;

  int flags = (writes ? TP_HIVE_OPEN_WRITE : 0) | (opt->no_recover ? 0 : TP_HIVE_OPEN_RECOVER);
  tp_hive *hv = tp_hive_open (path, flags, res);
  if (!hv)
    return res->status;
  tp_process_opened (opt, hv, expect, label, undo, res);
  tp_hive_close (hv);
  return res->status;
}

tp_status
tp_process_opened (const tp_options *opt, tp_hive *hv, tp_hive_kind expect,
                   const char *label, tp_undo_ctx *undo, tp_result *res)
{
  bool writes = opt->mode != TP_MODE_CHECK && !opt->dry_run;
  res->dry_run = opt->dry_run && opt->mode != TP_MODE_CHECK;
  free (res->target);
  res->target = strdup (label ? label : tp_hive_path (hv));
  res->kind = tp_hive_kind_of (hv);
  warn_recovery (opt, res);
  if (opt->mode == TP_MODE_RECOVER) {     /* any hive: SAM, NTUSER.DAT, ... */
    res->status = decide_status (opt, res);
    if (writes && tp_hive_apply (hv, res, opt->backup) < 0)
      res->status = TP_STATUS_ERROR;
  } else if (res->kind == TP_HIVE_UNKNOWN)
    tp_result_fail (res, "neither a SOFTWARE hive (no \\Microsoft) nor a SYSTEM hive "
                    "(no \\Select)");
  else if (expect != TP_HIVE_UNKNOWN && res->kind != expect)
    tp_result_fail (res, "expected a %s hive here, but it looks like a %s hive",
                    tp_hive_kind_name (expect), tp_hive_kind_name (res->kind));
  else if (plan (opt, hv, undo, res) == 0 && tp_hive_damaged (hv))
    tp_result_fail (res, "the hive is damaged: a subkey or value list on the way could not "
                    "be read, so absent values cannot be told from unreadable ones");
  else if (res->status != TP_STATUS_ERROR) {
    res->status = decide_status (opt, res);
    if (writes && (res->n_changes || res->recovery) &&
        ((undo->undo_writer && tp_undo_writer_record (undo->undo_writer, res) < 0) ||
         tp_hive_apply (hv, res, opt->backup) < 0))
      res->status = TP_STATUS_ERROR;
  }
  if (tp_hive_read_error (hv) && res->status != TP_STATUS_ERROR)
    tp_result_fail (res, "%s", tp_hive_read_error (hv));
  return res->status;
}
