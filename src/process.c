/* tlspatch: the pipeline every target goes through (see tlspatch.h):
 * plan (rules -> changes and status; nothing written), then commit
 * (undo record, write, verify) through one of two targets: the atomic
 * local file, or phased writes in place. */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/recover.h"
#include "tlspatch/tlspatch.h"

/* ------------------------------------------------------------------ */
/* Plan                                                               */

static int
plan_rules (const tp_options *opt, tp_hive *hv, const tp_undo_doc *undo_doc, tp_result *res)
{
  if (opt->mode == TP_MODE_REVERT)
    return tp_undo_plan (undo_doc, hv, res);
  tp_settings kb = { 0 };
  const tp_settings *s = opt->settings;
  char why[512];
  if (!s && tp_settings_add_profile (&kb, tp_profile_default (), opt, why, sizeof why) < 0)
    return tp_result_fail (res, "%s", why);
  int rc = 0;
  if (!s)
    s = &kb;
  if (tp_hive_kind_of (hv) == TP_HIVE_SYSTEM && opt->no_service && !tp_settings_touch (s, TP_HIVE_SYSTEM))
    tp_result_warn (res, "the SYSTEM hive is left alone (no service asked for)");
  else
    rc = tp_settings_plan (s, hv, res);
  tp_settings_free (&kb);
  return rc;
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

/* A check or dry run that would change something says what apply would
 * say: a hive it would refuse to write is, for check, noncompliant with
 * the reason as a warning (auditing never fails because writing would),
 * and for a dry run the error apply would meet. */
static void
foresee_refusal (const tp_options *opt, tp_hive *hv, tp_result *res)
{
  bool audit = opt->mode == TP_MODE_CHECK && res->n_changes > 0;
  bool dry = opt->dry_run && opt->mode != TP_MODE_RECOVER && res->status == TP_STATUS_PATCHED;
  char why[256];
  if (!(audit || dry) || tp_hive_refusal (hv, res, why, sizeof why) != 1)
    return;
  if (audit)
    tp_result_warn (res, "apply would refuse to write this hive: %s", why);
  else
    tp_result_fail (res, "%s would refuse to write this hive: %s", tp_mode_name (opt->mode), why);
}

tp_status
tp_plan (const tp_options *opt, tp_hive *hv, tp_hive_kind expect, const char *label,
         const tp_undo_doc *undo_doc, tp_result *res)
{
  res->mode = opt->mode;         /* planners word their warnings by it */
  res->dry_run = opt->dry_run && opt->mode != TP_MODE_CHECK;
  free (res->target);
  res->target = strdup (label ? label : tp_hive_path (hv));
  res->kind = tp_hive_kind_of (hv);
  warn_recovery (opt, res);
  if (opt->mode == TP_MODE_RECOVER)       /* any hive: SAM, NTUSER.DAT, ... */
    res->status = decide_status (opt, res);
  else if (res->kind == TP_HIVE_UNKNOWN && tp_hive_damaged (hv))
    tp_result_fail (res, "the hive is damaged: \\Microsoft or \\Select cannot be looked up, "
                    "so its kind cannot be told");
  else if (res->kind == TP_HIVE_UNKNOWN)
    tp_result_fail (res, "neither a SOFTWARE hive (no \\Microsoft) nor a SYSTEM hive "
                    "(no \\Select)");
  else if (expect != TP_HIVE_UNKNOWN && res->kind != expect)
    tp_result_fail (res, "expected a %s hive here, but it looks like a %s hive",
                    tp_hive_kind_name (expect), tp_hive_kind_name (res->kind));
  else if (plan_rules (opt, hv, undo_doc, res) == 0 && tp_hive_damaged (hv))
    tp_result_fail (res, "the hive is damaged: a subkey or value list on the way could not "
                    "be read, so absent values cannot be told from unreadable ones");
  else if (res->status != TP_STATUS_ERROR) {
    res->status = decide_status (opt, res);
    foresee_refusal (opt, hv, res);
  }
  if (tp_hive_read_error (hv) && res->status != TP_STATUS_ERROR)
    tp_result_fail (res, "%s", tp_hive_read_error (hv));
  /* A verdict that writes nothing is an audit: hivex must agree. */
  if (res->status != TP_STATUS_ERROR && !tp_plan_writes (opt, res) && opt->mode != TP_MODE_RECOVER)
    tp_hive_confirm (hv, res);
  if (tp_hive_changed (hv)) {   /* another program wrote it: the cause of any damage seen */
    free (res->error);
    res->error = NULL;
    tp_result_fail (res, "the hive file changed while it was read (another program wrote or "
                    "truncated it): nothing can be concluded; run again");
  }
  return res->status;
}

bool
tp_plan_writes (const tp_options *opt, const tp_result *res)
{
  return tp_options_write (opt) && res->status == TP_STATUS_PATCHED;
}

/* ------------------------------------------------------------------ */
/* Commit                                                             */

int
tp_commit_prepare (tp_commit_job *j)
{
  if (!j->in_place)
    return 0;
  if (tp_hive_recovered (j->hv))
    return 1;                   /* a recovery rewrites the whole file */
  if (tp_hive_make_patch (j->hv, j->res, &j->patch) != 0)
    return -1;
  j->prepared = true;
  bool fits = tp_regf_patch_tearproof (&j->patch) &&
              (!j->patch.bin_size || j->patch.bin_off <= j->target.size);
  return fits ? 0 : 1;
}

void
tp_commit_job_free (tp_commit_job *j)
{
  tp_regf_patch_free (&j->patch);
  j->prepared = false;
}

static int
commit_files (tp_commit_job *const *jobs, size_t n)
{
  int rc = 0;
  for (size_t i = 0; i < n; i++)
    if (tp_hive_apply (jobs[i]->hv, jobs[i]->res, jobs[i]->backup) < 0)
      rc = -1;
  return rc;
}

/* Every hive read back through its read function, as written. */
static int
verify_in_place (tp_commit_job *const *jobs, size_t n, char **why)
{
  for (size_t i = 0; i < n; i++) {
    const tp_regf_patch *p = &jobs[i]->patch;
    size_t size = (size_t) jobs[i]->target.size, end = p->bin_off + p->bin_size;
    if (p->bin_size && end > size)
      size = end;
    tp_result check;
    tp_result_init (&check, jobs[i]->res->target);
    int rc = tp_hive_verify_patch (jobs[i]->hv, size, &check);
    if (rc != 0)
      *why = strdup (check.error ? check.error : "verification failed");
    tp_result_free (&check);
    if (rc != 0)
      return -1;
  }
  return 0;
}

/* 0 written; -1 failed and rolled back; -2 failed, and so did the rollback. */
static int
commit_in_place (tp_commit_job *const *jobs, size_t n, const tp_commit_io *io, char **why)
{
  const tp_regf_patch **patches = calloc (n + 1, sizeof *patches);
  tp_regf_target *targets = calloc (n + 1, sizeof *targets);
  int rc = patches && targets ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    patches[i] = &jobs[i]->patch;
    targets[i] = jobs[i]->target;
  }
  if (rc != 0)
    *why = strdup ("out of memory");
  else if ((rc = tp_regf_write_in_place (patches, targets, n, io->sync, io->ctx)) != 0)
    *why = io->error ? io->error (io->ctx) : NULL;
  else if (verify_in_place (jobs, n, why) != 0)
    rc = tp_regf_roll_back_in_place (patches, targets, n, io->sync, io->ctx) == 0 ? -1 : -2;
  free (patches);
  free (targets);
  return rc;
}

int
tp_commit (tp_commit_job *const *jobs, size_t n, tp_undo_writer *undo, const tp_commit_io *io)
{
  /* A hive file must be replaceable (asked only now that something is
   * to be written: a compliant hive on a read-only volume is fine). */
  for (size_t i = 0; i < n; i++)
    if (!jobs[i]->in_place && tp_hive_check_writable (jobs[i]->hv, jobs[i]->res) < 0) {
      for (size_t k = 0; k < n; k++)
        if (k != i)
          tp_result_fail (jobs[k]->res, "not written: %s cannot be replaced", jobs[i]->res->target);
      return -1;
    }
  /* The undo records first, on disk before any hive changes: after a
   * crash the record still covers everything that may have been written. */
  for (size_t i = 0; undo && i < n; i++)
    if (tp_undo_writer_record (undo, jobs[i]->res) < 0) {
      for (size_t k = 0; k < n; k++)
        if (k != i)
          tp_result_fail (jobs[k]->res, "not written: the undo record could not be written");
      return -1;
    }
  if (n == 0 || !jobs[0]->in_place)
    return commit_files (jobs, n);
  char *why = NULL;
  int rc = commit_in_place (jobs, n, io, &why);
  for (size_t i = 0; rc != 0 && i < n; i++)
    tp_result_fail (jobs[i]->res, rc == -1
                    ? "writing in place failed (%s); every write was rolled back"
                    : "writing in place failed (%s), and so did the rollback: the hive is "
                      "valid but only partly patched; run again", why ? why : "unknown error");
  free (why);
  return rc;
}

/* ------------------------------------------------------------------ */
/* A hive file, start to finish                                       */

tp_status
tp_process_hive (const tp_options *opt, const char *path, tp_hive_kind expect,
                 const char *label, tp_undo_ctx *undo, tp_result *res)
{
  res->kind = expect;
  int flags = (tp_options_write (opt) ? TP_HIVE_OPEN_WRITE : 0) | (opt->no_recover ? 0 : TP_HIVE_OPEN_RECOVER);
  tp_hive *hv = tp_hive_open (path, flags, res);
  if (!hv) {   /* refused unread: the report still says which hive, by its file name */
    if (res->kind == TP_HIVE_UNKNOWN)
      res->kind = tp_hive_kind_from_name (path);
    return res->status;
  }
  if (tp_plan (opt, hv, expect, label, undo->undo_doc, res) != TP_STATUS_ERROR &&
      tp_plan_writes (opt, res)) {
    tp_commit_job job = { .hv = hv, .res = res, .backup = opt->backup };
    tp_commit_job *jobs[] = { &job };
    if (tp_commit (jobs, 1, undo->undo_writer, NULL) != 0)
      res->status = TP_STATUS_ERROR;
  }
  tp_hive_close (hv);
  return res->status;
}
