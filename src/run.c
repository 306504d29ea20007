/* tlspatch: one entry point for every kind of TARGET (see run.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "tlspatch/run.h"

/* -d, -a, a URI, or a file that starts like a disk image; with a format
 * given, any regular file that is not a hive (a raw image without a
 * partition table). */
bool
tp_run_target_is_image (const tp_run_target *t)
{
  const char *format = t->format;
  if (t->domain || t->image || tp_image_looks_like_image (t->arg))
    return true;
  struct stat st;
  char magic[4] = { 0 };
  FILE *fp = format && stat (t->arg, &st) == 0 && S_ISREG (st.st_mode) ? fopen (t->arg, "rb")
                                                                       : NULL;
  bool hive = fp && fread (magic, 1, 4, fp) == 4 && memcmp (magic, "regf", 4) == 0;
  if (fp)
    fclose (fp);
  return fp && !hive;
}

/* Every result leaves through here: it is stamped with the run's mode,
 * in whose words its status is said (tp_result_status_name). */
static void
emit (tp_result *res, void *ctx)
{
  const tp_run_ctx *run = ctx;
  res->mode = run->opt->mode;
  res->dry_run = run->opt->dry_run && run->opt->mode != TP_MODE_CHECK;
  run->emit (res, run->emit_ctx);
}

static void
emit_error (const tp_run_ctx *run, const char *target, tp_hive_kind kind, const char *why)
{
  tp_result res;
  tp_result_init (&res, target);
  res.kind = kind;
  tp_result_fail (&res, "%s", why);
  emit (&res, (void *) run);
  tp_result_free (&res);
}

/* A hive file, or a folder holding SOFTWARE and SYSTEM. */
static void
run_hive_target (const tp_run_ctx *run, const char *arg, tp_undo_ctx *undo)
{
  tp_target t;
  tp_target_resolve (arg, tp_options_want_system (run->opt), &t);
  for (size_t k = 0; k < t.n_hives; k++) {
    const char *name = t.hives[k].name ? t.hives[k].name : arg;
    if (t.hives[k].error) {
      emit_error (run, name, t.hives[k].expect, t.hives[k].error);
      continue;
    }
    tp_result res;
    tp_result_init (&res, name);
    tp_process_hive (run->opt, t.hives[k].path, t.hives[k].expect, name, undo, &res);
    emit (&res, (void *) run);
    tp_result_free (&res);
  }
  tp_target_free (&t);
}

/* The undo record to write (apply) or to restore (revert). */
static int
open_undo (const tp_run_ctx *run, tp_undo_ctx *undo)
{
  const tp_options *opt = run->opt;
  if (!opt->undo_path)
    return 0;
  char why[512];
  if (opt->mode == TP_MODE_REVERT) {
    tp_undo_doc *doc = tp_undo_load (opt->undo_path, why, sizeof why);
    if (!doc) {
      emit_error (run, opt->undo_path, TP_HIVE_UNKNOWN, why);
      return -1;
    }
    undo->undo_doc = doc;
  } else if (opt->mode == TP_MODE_APPLY && !opt->dry_run) {
    struct stat st;
    if (lstat (opt->undo_path, &st) == 0) {   /* said once, before anything is planned */
      emit_error (run, opt->undo_path, TP_HIVE_UNKNOWN, "undo file already exists; refusing to "
                  "overwrite it (move it away or choose another name); nothing was done");
      return -1;
    }
    undo->undo_writer = tp_undo_writer_new (opt->undo_path);
    if (!undo->undo_writer) {
      emit_error (run, opt->undo_path, TP_HIVE_UNKNOWN, "out of memory");
      return -1;
    }
  }
  return 0;
}

void
tp_run (const tp_run_ctx *run, const tp_run_target *targets, size_t n)
{
  tp_undo_ctx undo = { 0 };
  tp_image *images = calloc (n + 1, sizeof *images);
  size_t n_images = 0;
  if (!images) {
    emit_error (run, n ? targets[0].arg : "-", TP_HIVE_UNKNOWN, "out of memory");
    return;
  }
  if (open_undo (run, &undo) == 0) {
    /* Hive files and folders in order, then the images (in parallel
     * with jobs > 1); one failure does not stop the rest. */
    for (size_t i = 0; i < n; i++) {
      if (tp_run_target_is_image (&targets[i]))
        images[n_images++] = (tp_image) { .path = targets[i].arg, .format = targets[i].format,
                                          .domain = targets[i].domain };
      else if (run->iopt->stop && *run->iopt->stop)
        emit_error (run, targets[i].arg, TP_HIVE_UNKNOWN,
                    "interrupted before this target was started; it was not touched");
      else
        run_hive_target (run, targets[i].arg, &undo);
    }
    if (n_images)
      tp_images_process (run->opt, run->iopt, images, n_images, &undo, emit, (void *) run);
  }
  tp_undo_writer_free (undo.undo_writer);
  tp_undo_free ((tp_undo_doc *) undo.undo_doc);
  free (images);
}

void
tp_versions (char *buf, size_t len)
{
  char gfs[320];
  tp_image_libguestfs_version (gfs, sizeof gfs);
  snprintf (buf, len, "tlspatch %s\nhivex %s\nlibguestfs %s\njson-c %s\n", PACKAGE_VERSION,
            TP_HIVEX_VERSION, gfs, json_c_version ());
}
