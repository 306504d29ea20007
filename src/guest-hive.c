/* tlspatch: the hives of a Windows installation inside a disk image
 * (see guest-hive.h). */
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-hive.h"
#include "tlspatch/layout.h"

char *
tp_guest_strf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  va_end (ap);
  return s;
}

char *
tp_guest_error (guestfs_h *g)
{
  const char *e = guestfs_last_error (g);
  char *s = strdup (e ? e : "unknown libguestfs error");
  for (char *p = s; p && *p; p++)   /* one line */
    if (*p == '\n')
      *p = ' ';
  /* libguestfs appends how to debug it; our one-line errors keep the cause. */
  static const char *const advice[] = { ". To see full error messages",
                                        " To see full error messages",
                                        ". This usually means", " This usually means" };
  for (size_t i = 0; s && i < sizeof advice / sizeof advice[0]; i++) {
    char *cut = strstr (s, advice[i]);
    if (cut)
      *cut = '\0';
  }
  return s;
}

/* ------------------------------------------------------------------ */
/* Mounting                                                           */

/* Hibernation and Fast Startup leave NTFS "in use by Windows": ntfs-3g
 * would quietly mount it read-only. Find out before touching anything. */
static int
check_ntfs_writable (guestfs_h *g, const char *dev, bool rw, tp_result *res)
{
  int probe = guestfs_ntfs_3g_probe (g, 1, dev);
  if (probe == 0)
    return 0;
  const char *why = probe == 14 ? "Windows is hibernated or was shut down with Fast Startup"
                  : probe == 15 ? "the NTFS journal is unclean (Windows did not shut down cleanly)"
                  : "ntfs-3g cannot mount it for writing";
  if (!rw) {
    tp_result_warn (res, "volume %s: %s; it cannot be written", dev, why);
    return 0;
  }
  return tp_result_fail (res, "volume %s cannot be written safely: %s (ntfs-3g probe %d). "
                         "Boot Windows and restart it (not shut down), or disable Fast "
                         "Startup (powercfg /h off), then try again; the image was not touched",
                         dev, why, probe);
}

/* A Windows system root lives on one filesystem, mounted on `mp`. */
static int
mount_root (guestfs_h *g, const char *root, const char *mp, bool rw, tp_result *res)
{
  int rc = rw ? check_ntfs_writable (g, root, true, res) : 0;
  /* norecover too: should the probe be wrong, ntfs-3g still never
   * clears an unclean journal. */
  if (rc == 0 && (rw ? guestfs_mount_options (g, "norecover", root, mp)
                     : guestfs_mount_ro (g, root, mp)) != 0) {
    char *e = tp_guest_error (g);
    rc = tp_result_fail (res, "cannot mount %s: %s", root, e);
    free (e);
  }
  return rc;
}

/* ntfs-3g falls back to read-only on a volume Windows still holds (and,
 * with norecover, on an unclean one): prove the volume mounted on `mp`
 * writes, in its folder `dir`. 0; WRITE_PROBE_READ_ONLY (nothing
 * changed, res untouched); or -1 when the probe file could be created
 * but not removed (said in res, and *wrote set: the image changed). */
enum { WRITE_PROBE_READ_ONLY = 1 };

static int
write_probe (guestfs_h *g, const char *mp, const char *dir, tp_result *res, bool *wrote)
{
  char *path = tp_guest_strf ("%s%s/.tlspatch-write-probe", mp, dir);
  int rc = 0;
  if (!path || guestfs_touch (g, path) != 0)
    rc = WRITE_PROBE_READ_ONLY;
  else if (guestfs_rm (g, path) != 0) {
    *wrote = true;
    rc = tp_result_fail (res, "cannot remove the write probe %s from the image; remove it",
                         path + strlen (mp));
  }
  free (path);
  return rc;
}

static const char read_only_volume[] =
  "the Windows volume is mounted read-only (hibernation, Fast Startup or an unclean NTFS); "
  "the image was not touched";

static char *
guest_dirname (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash && slash != path ? strndup (path, (size_t) (slash - path)) : strdup ("/");
}


/* ------------------------------------------------------------------ */
/* The whole-file path                                                */

/* Bring the hive and its transaction logs to the host. */
static int
download_hive (guestfs_h *g, const char *guest, const char *local, tp_result *res)
{
  if (guestfs_download (g, guest, local) != 0) {
    char *e = tp_guest_error (g);
    tp_result_fail (res, "cannot download %s: %s", guest, e);
    free (e);
    return -1;
  }
  static const char *const suffixes[] = { ".LOG", ".LOG1", ".LOG2" };
  for (size_t i = 0; i < 3; i++) {
    char *want = tp_guest_strf ("%s%s", guest, suffixes[i]);
    char *real = want ? guestfs_case_sensitive_path (g, want) : NULL;
    char *dst = tp_guest_strf ("%s%s", local, suffixes[i]);
    int rc = 0;
    if (real && dst && guestfs_is_file (g, real) == 1 && guestfs_download (g, real, dst) != 0) {
      /* Without it a recovery could miss newer data: stop here. */
      unlink (dst);
      char *e = tp_guest_error (g);
      rc = tp_result_fail (res, "cannot download the transaction log %s: %s", real, e);
      free (e);
    }
    free (want);
    free (real);
    free (dst);
    if (rc != 0)
      return -1;
  }
  return 0;
}

static bool
same_file_bytes (const char *a, const char *b)
{
  FILE *fa = fopen (a, "rb"), *fb = fopen (b, "rb");
  bool same = fa && fb;
  while (same) {
    int ca = getc (fa), cb = getc (fb);
    same = ca == cb;
    if (ca == EOF)
      break;
  }
  if (fa)
    fclose (fa);
  if (fb)
    fclose (fb);
  return same;
}

/* guestfs_upload truncates in place; never do that to the live hive.
 * Upload beside it, read it back, then rename over the original. */
static int
upload_atomically (guestfs_h *g, const char *local, const char *guest, bool backup,
                   tp_result *res)
{
  char *dir = guest_dirname (guest);
  char *copy = strdup (guest);
  char *tmp = tp_guest_strf ("%s/.%s.tlspatch-tmp", dir, basename (copy));
  char *readback = tp_guest_strf ("%s.readback", local);
  char *bak = tp_guest_strf ("%s.tlspatch-bak", guest);
  for (int k = 1; bak && k < 1000 && guestfs_exists (g, bak) == 1; k++) {
    free (bak);
    bak = tp_guest_strf ("%s.tlspatch-bak.%d", guest, k);
  }
  char *e = NULL;
  int rc = -1;
  if (!tmp || !readback || !bak)
    tp_result_fail (res, "out of memory");
  else if (guestfs_upload (g, local, tmp) != 0 || guestfs_download (g, tmp, readback) != 0)
    tp_result_fail (res, "cannot write %s into the image: %s", tmp, e = tp_guest_error (g));
  else if (!same_file_bytes (local, readback))
    tp_result_fail (res, "the hive uploaded to %s does not read back identical", tmp);
  else if (backup && guestfs_ln (g, guest, bak) != 0)
    tp_result_fail (res, "cannot keep a backup as %s: %s", bak, e = tp_guest_error (g));
  else if (guestfs_rename (g, tmp, guest) != 0)
    tp_result_fail (res, "cannot rename %s over %s: %s", tmp, guest, e = tp_guest_error (g));
  else {
    rc = 0;
    if (backup)
      res->backup = strdup (bak);
  }
  if (rc != 0 && tmp)
    guestfs_rm_f (g, tmp);
  if (rc != 0 && backup && bak && guestfs_exists (g, bak) == 1 && guestfs_exists (g, guest) == 1)
    guestfs_rm_f (g, bak);
  free (e);
  free (dir);
  free (copy);
  free (tmp);
  free (readback);
  free (bak);
  return rc;
}

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st; (void) flag; (void) ftw;
  return remove (path);
}

/* Name the logs a recovery used by their paths in the guest, not by
 * the host copies (which are gone when the result is read). */
static void
name_logs_in_guest (tp_result *hres, const guest_hive *h)
{
  tp_recovery_info *info = hres->recovery;
  size_t local_len = strlen (h->local);
  for (size_t i = 0; info && i < info->n_logs_used; i++) {
    const char *used = info->logs_used[i];
    if (strncmp (used, h->local, local_len) != 0)
      continue;
    char *guest = tp_guest_strf ("%s%s", h->guest, used + local_len);
    if (guest) {
      free (info->logs_used[i]);
      info->logs_used[i] = guest;
    }
  }
}

/* The host copies, opened and planned (nothing written). */
typedef struct {
  tp_hive *hv[2];
  tp_result res[2];
  size_t n;
  bool committed;               /* commit_whole_files ran */
} whole_plan;

static bool
plan_whole_files (const tp_guest_run *r, guest_hive *hives, size_t n, whole_plan *wp)
{
  bool all_ok = true;
  int flags = (tp_options_write (r->opt) ? TP_HIVE_OPEN_WRITE : 0) |
              (r->opt->no_recover ? 0 : TP_HIVE_OPEN_RECOVER);
  wp->n = n;
  for (size_t i = 0; i < n; i++) {
    tp_result_init (&wp->res[i], hives[i].label);
    wp->res[i].kind = hives[i].kind;
    wp->hv[i] = tp_hive_open (hives[i].local, flags, &wp->res[i]);
    if (wp->hv[i])
      tp_plan (r->opt, wp->hv[i], hives[i].kind, hives[i].label, r->undo->undo_doc, &wp->res[i]);
    name_logs_in_guest (&wp->res[i], &hives[i]);
    all_ok = all_ok && wp->res[i].status != TP_STATUS_ERROR;
  }
  return all_ok;
}

static bool
whole_plan_writes (const tp_guest_run *r, const whole_plan *wp)
{
  bool any = false;
  for (size_t i = 0; i < wp->n; i++)
    any = any || tp_plan_writes (r->opt, &wp->res[i]);
  return any;
}

/* Commit the planned host copies (undo records first), then put them
 * back into the image, stopping at the first failed upload: an image is
 * never left with SOFTWARE patched because SYSTEM failed on the host. */
static void
commit_whole_files (const tp_guest_run *r, guestfs_h *g, guest_hive *hives, whole_plan *wp,
                    bool *wrote)
{
  tp_commit_job jobs[2];
  tp_commit_job *ptrs[2];
  size_t n = 0;
  for (size_t i = 0; i < wp->n; i++)
    if (tp_plan_writes (r->opt, &wp->res[i])) {
      jobs[n] = (tp_commit_job) { .hv = wp->hv[i], .res = &wp->res[i] };
      ptrs[n] = &jobs[n];
      n++;
    }
  wp->committed = true;
  bool all_ok = tp_commit (ptrs, n, r->undo->undo_writer, NULL) == 0;
  for (size_t i = 0; i < wp->n; i++) {
    if (!tp_plan_writes (r->opt, &wp->res[i]) || wp->res[i].status == TP_STATUS_ERROR)
      continue;
    if (!all_ok)
      tp_result_fail (&wp->res[i], "not written into the image, because the other hive failed");
    else if (upload_atomically (g, hives[i].local, hives[i].guest, r->opt->backup,
                                &wp->res[i]) == 0)
      *wrote = true;
    else
      all_ok = false;
  }
}

static void
whole_plan_finish (const tp_guest_run *r, guest_hive *hives, whole_plan *wp, tp_result *res)
{
  for (size_t i = 0; i < wp->n; i++) {
    if (!wp->committed && tp_plan_writes (r->opt, &wp->res[i]))
      tp_result_fail (&wp->res[i], "not written into the image");
    tp_hive_close (wp->hv[i]);
    if (wp->res[i].kind == TP_HIVE_UNKNOWN)
      wp->res[i].kind = hives[i].kind;
    tp_result_merge (res, &wp->res[i]);
  }
  wp->n = 0;
}

/* ------------------------------------------------------------------ */
/* Clean hives: read on demand, written in place                      */

/* A clean hive needs neither its whole bytes nor its logs: the records a
 * lookup needs are read with guestfs_pread (a few 64 KiB chunks, not the
 * 80 MB that a download moves through ntfs-3g), and the few records that
 * change are written in place in the order of writer.h's phases, each
 * phase synced before the next, so that a stop at any point leaves a
 * valid hive (and a failure rolls back). */

static int
read_guest (void *ctx, void *buf, size_t len, uint64_t off)
{
  guest_file *f = ctx;
  for (size_t done = 0, got; done < len; done += got) {
    size_t want = len - done > (1u << 20) ? (1u << 20) : len - done;
    char *data = guestfs_pread (f->g, f->path, (int) want, (int64_t) (off + done), &got);
    if (!data || got == 0 || got > want) {
      free (data);
      return -1;
    }
    memcpy ((char *) buf + done, data, got);
    free (data);
  }
  return 0;
}

static int
write_guest (const guest_file *f, const void *buf, size_t len, uint64_t off)
{
  for (size_t done = 0; done < len;) {
    int n = guestfs_pwrite (f->g, f->path, (const char *) buf + done, len - done,
                            (int64_t) (off + done));
    if (n <= 0)
      return -1;
    done += (size_t) n;
  }
  return 0;
}

static int
write_target (void *ctx, const void *buf, size_t len, uint64_t off)
{
  return write_guest (ctx, buf, len, off);
}

static int
truncate_target (void *ctx, uint64_t size)
{
  const guest_file *f = ctx;
  return guestfs_truncate_size (f->g, f->path, (int64_t) size);
}

static int
sync_appliance (void *g)
{
  return guestfs_sync (g);
}

/* Plan every hive read on demand. Returns 1 when a hive needs the
 * whole-file path (not clean, or a patch that cannot go in place):
 * then nothing was written or recorded. */
static int
plan_in_place (const tp_guest_run *r, guestfs_h *g, const char *mp, guest_hive *hives,
               hive_in_place *hs, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    hs[i].path = tp_guest_strf ("%s%s", mp, hives[i].guest);
    hs[i].file = (guest_file) { .g = g, .path = hs[i].path };
    tp_result_init (&hs[i].res, hives[i].label);
    hs[i].size = hs[i].path ? guestfs_filesize (g, hs[i].path) : -1;
    if (hs[i].size > 0)
      hs[i].hv = tp_hive_open_reader (hives[i].label, (size_t) hs[i].size, read_guest,
                                      &hs[i].file, &hs[i].res);
    if (!hs[i].hv)
      return 1;                 /* dirty, damaged or unreadable: the whole-file path decides */
    tp_plan (r->opt, hs[i].hv, hives[i].kind, hives[i].label, r->undo->undo_doc, &hs[i].res);
  }
  bool all_ok = true;
  for (size_t i = 0; i < n; i++)
    all_ok = all_ok && hs[i].res.status != TP_STATUS_ERROR;
  for (size_t i = 0; all_ok && i < n; i++) {
    if (!tp_plan_writes (r->opt, &hs[i].res))
      continue;
    hs[i].job = (tp_commit_job) {
      .hv = hs[i].hv, .res = &hs[i].res, .in_place = true,
      .target = { .write = write_target, .truncate = truncate_target, .ctx = &hs[i].file,
                  .size = (uint64_t) hs[i].size } };
    int prepared = tp_commit_prepare (&hs[i].job);
    if (prepared < 0)
      all_ok = false;
    else if (prepared > 0)
      return 1;
  }
  return 0;
}


/* ProductName from SOFTWARE, as inspection reports it. */
static char *
product_of (tp_hive *hv)
{
  tp_result scratch;
  tp_result_init (&scratch, "SOFTWARE");
  char *name = NULL;
  size_t key = 0;
  tp_hive_find_key (hv, "\\Microsoft\\Windows NT\\CurrentVersion", &key, NULL, NULL);
  tp_value v = { 0 };
  char *stored = NULL;
  if (key && tp_hive_get_value (hv, key, "ProductName", &v, &stored, NULL, &scratch) == 0 &&
      v.present && (v.type == 1 || v.type == 2))
    name = tp_regf_utf16_string (v.data, v.len);
  tp_value_free (&v);
  free (stored);
  tp_result_free (&scratch);
  return name;
}

/* The whole-file path: download the hives (and logs), plan them on the
 * host; when something is to be written, remount read-write, commit on
 * the host and upload. */
static void
patch_whole_files (const tp_guest_run *r, guestfs_h *g, bool *wrote, const char *root,
                   guest_hive *hives, size_t n, const char *tmpdir, tp_result *res)
{
  for (size_t i = 0; i < n; i++) {
    hives[i].local = tp_guest_strf ("%s/%s", tmpdir, tp_hive_kind_name (hives[i].kind));
    if (!hives[i].local) {
      tp_result_fail (res, "out of memory");
      return;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (download_hive (g, hives[i].guest, hives[i].local, res) < 0)
      return;
  whole_plan wp = { .n = 0 };
  bool all_ok = plan_whole_files (r, hives, n, &wp);
  if (!res->product && wp.hv[0])  /* a dirty SOFTWARE: its name as recovered */
    res->product = product_of (wp.hv[0]);
  if (all_ok && whole_plan_writes (r, &wp)) {
    char *config = guest_dirname (hives[0].guest);
    if (guestfs_umount_all (g) != 0) {
      char *e = tp_guest_error (g);
      tp_result_fail (res, "cannot unmount the volume to remount it for writing: %s", e);
      free (e);
    } else if (mount_root (g, root, "/", true, res) == 0) {
      int probe = write_probe (g, "", config, res, wrote);
      if (probe == WRITE_PROBE_READ_ONLY)   /* ntfs-3g's probe passed: no reason to give */
        tp_result_fail (res, "%s", read_only_volume);
      else if (probe == 0)
        commit_whole_files (r, g, hives, &wp, wrote);
    }
    free (config);
  }
  whole_plan_finish (r, hives, &wp, res);
}

/* The same for a hive not planned in place (a clean one only: a dirty
 * one is not read twice just for its name). */
static char *
product_name (guestfs_h *g, const char *software)
{
  guest_file f = { .g = g, .path = software };
  tp_result scratch;
  tp_result_init (&scratch, software);
  int64_t size = guestfs_filesize (g, software);
  tp_hive *hv = size > 0 ? tp_hive_open_reader (software, (size_t) size, read_guest, &f,
                                                &scratch) : NULL;
  char *name = hv ? product_of (hv) : NULL;
  tp_hive_close (hv);
  tp_result_free (&scratch);
  return name;
}

/* ------------------------------------------------------------------ */
/* Roots                                                              */

void
tp_guest_root_free (tp_guest_root *job)
{
  for (size_t i = 0; i < 2; i++) {
    free (job->hives[i].guest);
    free (job->hives[i].local);
    free (job->hives[i].label);
    free (job->hs[i].path);
    tp_commit_job_free (&job->hs[i].job);
    tp_hive_close (job->hs[i].hv);
  }
  free (job->dev);
  free (job->mp);
  free (job->mount_error);
}

/* Report an in-place root: its hives' results into the root's. */
void
tp_guest_root_finish (const tp_guest_run *r, tp_guest_root *job)
{
  bool any_error = false;
  for (size_t i = 0; i < job->n; i++)
    any_error = any_error || job->hs[i].res.status == TP_STATUS_ERROR;
  for (size_t i = 0; i < job->n; i++) {
    tp_result *hres = &job->hs[i].res;
    if (tp_plan_writes (r->opt, hres) && !job->written)
      tp_result_fail (hres, any_error ? "not written into the image, because the other hive "
                                        "failed" : "not written into the image");
    if (hres->kind == TP_HIVE_UNKNOWN)
      hres->kind = job->hives[i].kind;
    tp_result_merge (&job->res, hres);
  }
}

/* Plan one root, mounted on job->mp: in place when its hives are clean,
 * else marked for the whole-file path. */
void
tp_guest_root_plan (const tp_guest_run *r, guestfs_h *g, tp_guest_root *job)
{
  tp_result *res = &job->res;
  if (!job->hives[0].guest || (job->n == 2 && !job->hives[1].guest)) {
    tp_result_fail (res, "found no %s hive in the Windows installation on %s",
                    job->hives[0].guest ? "SYSTEM" : "SOFTWARE", res->root);
    return;
  }
  for (size_t i = 0; i < job->n; i++)
    job->hives[i].label = tp_guest_strf ("%s:%s:%s", job->image_name, res->root,
                                         job->hives[i].guest);
  if (!job->hives[0].label || (job->n == 2 && !job->hives[1].label)) {
    tp_result_fail (res, "out of memory");
    return;
  }
  if (!tp_options_write (r->opt))              /* a write would find out anyway */
    check_ntfs_writable (g, job->dev, false, res);
  /* A recovery needs the logs and the whole hive; a backup, a copy. */
  bool whole = r->opt->mode == TP_MODE_RECOVER || (tp_options_write (r->opt) && r->opt->backup);
  if (!whole && plan_in_place (r, g, job->mp, job->hives, job->hs, job->n) == 0) {
    job->in_place = true;
    if (job->hs[0].hv && tp_hive_kind_of (job->hs[0].hv) == TP_HIVE_SOFTWARE)
      job->res.product = product_of (job->hs[0].hv);
    bool any_error = false, any_write = false;
    for (size_t i = 0; i < job->n; i++) {
      any_error = any_error || job->hs[i].res.status == TP_STATUS_ERROR;
      any_write = any_write || job->hs[i].job.prepared;
    }
    job->pending = any_write && !any_error;
    return;
  }
  for (size_t i = 0; i < job->n; i++) {     /* not in place: start over, later */
    tp_result_free (&job->hs[i].res);
    tp_commit_job_free (&job->hs[i].job);
    tp_hive_close (job->hs[i].hv);
    free (job->hs[i].path);
    job->hs[i] = (hive_in_place) { 0 };
  }
  job->whole_file = true;
}

/* The whole-file path for one root, with nothing else mounted. */
void
tp_guest_root_whole_file (const tp_guest_run *r, guestfs_h *g, tp_guest_root *job)
{
  tp_result *res = &job->res;
  char tmpdir[] = "/tmp/tlspatch-image-XXXXXX";
  if (!mkdtemp (tmpdir)) {
    tp_result_fail (res, "cannot create a temporary directory: %s", strerror (errno));
    return;
  }
  if (mount_root (g, job->dev, "/", false, res) == 0) {
    res->product = product_name (g, job->hives[0].guest);
    patch_whole_files (r, g, &job->wrote, job->dev, job->hives, job->n, tmpdir, res);
  }
  nftw (tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  if (guestfs_umount_all (g) != 0 && job->wrote) {
    char *e = tp_guest_error (g);
    tp_result_fail (res, "unmounting failed after writing: %s; the image may be incomplete", e);
    free (e);
  }
}

/* A pending root, mounted read-write for planning: prove it writes.
 * One that cannot be written waits for its reason until nothing is
 * mounted (needs_reason): ntfs-3g's probe must not open a mounted
 * volume. */
static int
ready_for_writing (guestfs_h *g, tp_guest_root *job)
{
  char *config = job->hives[0].guest ? guest_dirname (job->hives[0].guest) : NULL;
  int probe = !config ? tp_result_fail (&job->res, "out of memory")
            : job->rw ? write_probe (g, job->mp, config, &job->res, &job->wrote)
            : WRITE_PROBE_READ_ONLY;
  if (probe == WRITE_PROBE_READ_ONLY)
    job->needs_reason = true;
  free (config);
  return probe == 0 ? 0 : -1;
}

/* Why a root could not be written, with nothing mounted any more. */
static void
explain_not_writable (guestfs_h *g, tp_guest_root *job)
{
  check_ntfs_writable (g, job->dev, true, &job->res);   /* the reason, when it knows */
  if (job->rw)
    tp_result_fail (&job->res, "%s", read_only_volume);
  else
    tp_result_fail (&job->res, "the Windows volume could not be mounted for writing (%s); "
                    "the image was not touched", job->mount_error ? job->mount_error : "?");
}

int
tp_guest_mount_for_planning (const tp_guest_run *r, guestfs_h *g, const char *dev,
                             const char *mp, bool *rw, char **rw_error)
{
  /* norecover: ntfs-3g never clears the journal of an unclean NTFS (its
   * default "recover" would, a change); it mounts such a volume, and a
   * hibernated one, read-only, which the write probe finds before the
   * first write. noatime: a read-write mount that only reads leaves a
   * clean volume byte-identical (tests/images.sh checks it after a no-op
   * apply and after every refusal). */
  *rw = false;
  if (tp_options_write (r->opt)) {
    *rw = guestfs_mount_options (g, "noatime,norecover", dev, mp) == 0;
    if (*rw)
      return 0;
    *rw_error = tp_guest_error (g);
  }
  return guestfs_mount_ro (g, dev, mp);
}

static char *
appliance_error (void *g)
{
  return tp_guest_error (g);
}

/* Write every pending root of the group: one commit of all their hives,
 * phase by phase, one sync per phase (a sync flushes every drive of the
 * appliance, so its cost is shared); a failure rolls back every write of
 * the group. Then unmount everything. */
void
tp_guest_roots_write (const tp_guest_run *r, guestfs_h *g, tp_guest_root **jobs, size_t n_jobs)
{
  size_t n = 0;
  tp_commit_job **commits = calloc (2 * n_jobs + 1, sizeof *commits);
  for (size_t k = 0; commits && k < n_jobs; k++) {
    tp_guest_root *job = jobs[k];
    if (!job->pending || ready_for_writing (g, job) != 0) {
      job->pending = false;
      continue;
    }
    for (size_t i = 0; i < job->n; i++)
      if (job->hs[i].job.prepared)
        commits[n++] = &job->hs[i].job;
  }
  tp_commit_io io = { .sync = sync_appliance, .error = appliance_error, .ctx = g };
  int rc = !commits ? -1 : n ? tp_commit (commits, n, r->undo->undo_writer, &io) : 0;
  for (size_t k = 0; k < n_jobs; k++) {
    if (!jobs[k]->pending)
      continue;
    jobs[k]->wrote = rc != -1;  /* -1: failed, and every write was rolled back */
    jobs[k]->written = rc == 0;
    if (!commits)
      tp_result_fail (&jobs[k]->res, "out of memory");
  }
  if (guestfs_umount_all (g) != 0 && rc == 0 && n) {
    char *e = tp_guest_error (g);
    for (size_t k = 0; k < n_jobs; k++)
      if (jobs[k]->pending)
        tp_result_fail (&jobs[k]->res, "unmounting failed after writing: %s; the image may "
                        "be incomplete", e);
    free (e);
  }
  for (size_t k = 0; k < n_jobs; k++)
    if (jobs[k]->needs_reason)
      explain_not_writable (g, jobs[k]);
  free (commits);
}
