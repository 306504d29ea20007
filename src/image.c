/* tlspatch: Windows disk images through libguestfs (see image.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tlspatch/image.h"
#include "gfs.h"

/* ------------------------------------------------------------------ */
/* Recognising images                                                 */

static bool
is_uri (const char *arg)
{
  return strstr (arg, "://") != NULL;
}

bool
tp_image_looks_like_image (const char *arg)
{
  if (is_uri (arg))
    return true;
  int fd = open (arg, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  unsigned char b[512] = { 0 };
  ssize_t n = read (fd, b, sizeof b);
  unsigned char tail[512] = { 0 };
  off_t end = lseek (fd, 0, SEEK_END);
  bool vpc_footer = end >= 512 && pread (fd, tail, 512, end - 512) == 512 &&
                    memcmp (tail, "conectix", 8) == 0;
  close (fd);
  if (n >= 21 && memcmp (b, "# Disk DescriptorFile", 21) == 0)   /* a small text file */
    return true;
  if (n < 512 || memcmp (b, "regf", 4) == 0)   /* a hive's checksum may read 55 AA */
    return false;
  return memcmp (b, "QFI\xfb", 4) == 0 ||            /* qcow2 */
         memcmp (b, "KDMV", 4) == 0 ||               /* vmdk sparse */
         memcmp (b, "vhdxfile", 8) == 0 ||
         memcmp (b, "conectix", 8) == 0 || vpc_footer ||
         memcmp (b + 3, "NTFS    ", 8) == 0 ||       /* a bare NTFS volume */
         (b[510] == 0x55 && b[511] == 0xAA);         /* MBR / protective MBR */
}

/* ------------------------------------------------------------------ */
/* The run: groups of images, one appliance each, on -j threads       */

typedef struct {
  const tp_image *img;
  char *format;                 /* as added */
  char *error;                  /* the image failed as a whole */
  tp_result *results;           /* one per Windows installation */
  size_t n_results;
  bool wrote;
  int drive;                    /* index among the appliance's drives */
} slot;

typedef struct {
  const tp_options *opt;
  const tp_image_options *iopt;
  const tp_image *images;
  size_t n;
  tp_undo_ctx *undo;
  tp_image_emit emit;
  void *opaque;
  pthread_mutex_t lock;         /* next, emit, progress */
  size_t next;
} runner;

static bool
writes (const runner *r)
{
  return r->opt->mode != TP_MODE_CHECK && !r->opt->dry_run;
}

static double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line per image on a terminal: updated in place with -j 1. */
static void
stage (runner *r, const char *name, double t0, const char *what)
{
  if (!r->iopt->progress)
    return;
  pthread_mutex_lock (&r->lock);
  bool last = strcmp (what, "done") == 0 || strcmp (what, "failed") == 0;
  if (r->iopt->jobs <= 1)
    fprintf (stderr, "\r\033[K%s: %s (%.1fs)%s", name, what, now_seconds () - t0, last ? "\n" : "");
  else
    fprintf (stderr, "%s: %s (%.1fs)\n", name, what, now_seconds () - t0);
  fflush (stderr);
  pthread_mutex_unlock (&r->lock);
}

static char *
dupf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  va_end (ap);
  return s;
}

static char *
last_error (guestfs_h *g)
{
  const char *e = guestfs_last_error (g);
  char *s = strdup (e ? e : "unknown libguestfs error");
  for (char *p = s; p && *p; p++)   /* one line */
    if (*p == '\n')
      *p = ' ';
  /* libguestfs appends how to debug it; our one-line errors keep the cause. */
  static const char *const advice[] = { ". To see full error messages", " To see full error messages",
                                        ". This usually means", " This usually means" };
  for (size_t i = 0; s && i < sizeof advice / sizeof advice[0]; i++) {
    char *cut = strstr (s, advice[i]);
    if (cut)
      *cut = '\0';
  }
  return s;
}

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static guestfs_h *
new_handle (bool tcg)
{
  guestfs_h *g = guestfs_create ();
  if (!g)
    return NULL;
  guestfs_set_error_handler (g, NULL, NULL);   /* errors are reported per target */
  /* qemu in its own process group: a Ctrl-C on the terminal reaches
   * tlspatch only, which finishes (sync, shutdown) before it stops. */
  guestfs_set_pgroup (g, 1);
  if (tcg) {
    char *settings[] = { (char *) "force_tcg", NULL };
    guestfs_set_backend_settings (g, settings);
  }
  return g;
}

/* A text VMDK descriptor names its extents by path: an untrusted one
 * could make qemu open (and under apply, write) any host file. */
static bool
vmdk_descriptor (const char *path)
{
  char head[21] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  bool text = fd >= 0 && read (fd, head, sizeof head) == (ssize_t) sizeof head &&
              memcmp (head, "# Disk DescriptorFile", 21) == 0;
  if (fd >= 0)
    close (fd);
  return text;
}

/* Never let qemu guess the format of an untrusted image (CVE-2010-3851):
 * ask qemu-img on the host, and refuse an image that would pull in a
 * backing file unless the user named the format. */
static void
choose_format (guestfs_h *g, slot *s)
{
  if (s->img->format) {
    s->format = strdup (s->img->format);
    return;
  }
  if (is_uri (s->img->path)) {
    s->format = strdup ("raw");     /* what an NBD server exports */
    return;
  }
  if (vmdk_descriptor (s->img->path)) {
    s->error = strdup ("VMDK descriptor file: its extents may name any file on this host; "
                       "refusing unless you give --format vmdk");
    return;
  }
  char *fmt = guestfs_disk_format (g, s->img->path);
  if (!fmt) {
    s->error = last_error (g);
    return;
  }
  if (strcmp (fmt, "unknown") == 0) {
    s->error = strdup ("cannot tell the disk image format; give --format");
    free (fmt);
    return;
  }
  int backing = guestfs_disk_has_backing_file (g, s->img->path);
  if (backing != 0) {
    s->error = backing > 0
      ? dupf ("%s image has a backing file; refusing to follow it unless you give --format", fmt)
      : last_error (g);
    free (fmt);
    return;
  }
  s->format = fmt;
}

/* nbd://host[:port][/export] -> protocol, server, export name. */
static int
add_uri_drive (guestfs_h *g, const slot *s, bool readonly)
{
  const char *uri = s->img->path;
  const char *sep = strstr (uri, "://");
  char *protocol = strndup (uri, (size_t) (sep - uri));
  const char *rest = sep + 3;
  const char *slash = strchr (rest, '/');
  char *hostport = slash ? strndup (rest, (size_t) (slash - rest)) : strdup (rest);
  const char *export = slash ? slash + 1 : "";
  char *server = dupf ("tcp:%s", hostport);
  char *servers[] = { server, NULL };
  int rc = guestfs_add_drive_opts (g, export,
                                   GUESTFS_ADD_DRIVE_OPTS_FORMAT, s->format,
                                   GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly,
                                   GUESTFS_ADD_DRIVE_OPTS_PROTOCOL, protocol,
                                   GUESTFS_ADD_DRIVE_OPTS_SERVER, servers, -1);
  free (protocol);
  free (hostport);
  free (server);
  return rc;
}

static int
add_drive (guestfs_h *g, const slot *s, bool readonly)
{
  if (is_uri (s->img->path))
    return add_uri_drive (g, s, readonly);
  return guestfs_add_drive_opts (g, s->img->path,
                                 GUESTFS_ADD_DRIVE_OPTS_FORMAT, s->format,
                                 GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly, -1);
}

/* qemu locks the bytes from 100 of an image it has open (its permission
 * and sharing bits). Any such lock held by someone else means a running
 * VM or qemu-nbd uses the image: writing under it would corrupt it. */
static bool
image_in_use (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 200 };
  bool locked = fcntl (fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close (fd);
  return locked;
}

static bool
tcg_already (const runner *r)
{
  const char *env = getenv ("LIBGUESTFS_BACKEND_SETTINGS");
  return r->iopt->force_tcg || (env && strstr (env, "force_tcg"));
}

static char *
explain_launch_error (char *err)
{
  if (strstr (err, "lock") && (strstr (err, "write") || strstr (err, "another process"))) {
    free (err);
    return strdup ("image is in use: a running VM (qemu) holds its lock; shut the VM down first");
  }
  return err;
}

/* Add every usable slot's drive and launch. When KVM kills the appliance
 * (as nested virtualization often does), try once more with TCG. */
static guestfs_h *
launch (runner *r, slot *slots, size_t n, char **err)
{
  bool tcg = r->iopt->force_tcg;
  for (int attempt = 0; attempt < 2; attempt++) {
    guestfs_h *g = new_handle (tcg);
    if (!g) {
      *err = strdup ("cannot create a libguestfs handle");
      return NULL;
    }
    int drive = 0, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (slots[i].error)
        continue;
      slots[i].drive = drive++;
      rc = add_drive (g, &slots[i], !writes (r));
    }
    if (rc == 0 && drive > 0 && guestfs_launch (g) == 0)
      return g;
    *err = last_error (g);
    guestfs_close (g);
    if (drive == 0 || tcg || tcg_already (r) || strstr (*err, "lock"))
      break;
    fprintf (stderr, "tlspatch: %s: the appliance failed to start under KVM; "
             "retrying with software emulation (TCG)\n", slots[0].img->path);
    free (*err);
    *err = NULL;
    tcg = true;
  }
  *err = explain_launch_error (*err);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* One Windows installation                                           */

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
  if (rc == 0 && (rw ? guestfs_mount (g, root, mp) : guestfs_mount_ro (g, root, mp)) != 0) {
    char *e = last_error (g);
    rc = tp_result_fail (res, "cannot mount %s: %s", root, e);
    free (e);
  }
  return rc;
}

/* ntfs-3g may still have fallen back to read-only: prove it writes. */
static int
probe_writable (guestfs_h *g, const char *dir, tp_result *res)
{
  char *probe = dupf ("%s/.tlspatch-write-probe", dir);
  int rc = 0;
  if (!probe || guestfs_touch (g, probe) != 0 || guestfs_rm (g, probe) != 0)
    rc = tp_result_fail (res, "the Windows volume is mounted read-only (hibernation, Fast "
                         "Startup or an unclean NTFS); the image was not touched");
  free (probe);
  return rc;
}

static char *
guest_dirname (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash && slash != path ? strndup (path, (size_t) (slash - path)) : strdup ("/");
}

/* Bring the hive and its transaction logs to the host. */
static int
download_hive (guestfs_h *g, const char *guest, const char *local, tp_result *res)
{
  if (guestfs_download (g, guest, local) != 0) {
    char *e = last_error (g);
    tp_result_fail (res, "cannot download %s: %s", guest, e);
    free (e);
    return -1;
  }
  static const char *const suffixes[] = { ".LOG", ".LOG1", ".LOG2" };
  for (size_t i = 0; i < 3; i++) {
    char *want = dupf ("%s%s", guest, suffixes[i]);
    char *real = want ? guestfs_case_sensitive_path (g, want) : NULL;
    char *dst = dupf ("%s%s", local, suffixes[i]);
    int rc = 0;
    if (real && dst && guestfs_is_file (g, real) == 1 && guestfs_download (g, real, dst) != 0) {
      /* Without it a recovery could miss newer data: stop here. */
      unlink (dst);
      char *e = last_error (g);
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
  char *tmp = dupf ("%s/.%s.tlspatch-tmp", dir, basename (copy));
  char *readback = dupf ("%s.readback", local);
  char *bak = dupf ("%s.tlspatch-bak", guest);
  for (int k = 1; bak && k < 1000 && guestfs_exists (g, bak) == 1; k++) {
    free (bak);
    bak = dupf ("%s.tlspatch-bak.%d", guest, k);
  }
  char *e = NULL;
  int rc = -1;
  if (!tmp || !readback || !bak)
    tp_result_fail (res, "out of memory");
  else if (guestfs_upload (g, local, tmp) != 0 || guestfs_download (g, tmp, readback) != 0)
    tp_result_fail (res, "cannot write %s into the image: %s", tmp, e = last_error (g));
  else if (!same_file_bytes (local, readback))
    tp_result_fail (res, "the hive uploaded to %s does not read back identical", tmp);
  else if (backup && guestfs_ln (g, guest, bak) != 0)
    tp_result_fail (res, "cannot keep a backup as %s: %s", bak, e = last_error (g));
  else if (guestfs_rename (g, tmp, guest) != 0)
    tp_result_fail (res, "cannot rename %s over %s: %s", tmp, guest, e = last_error (g));
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

/* The hives of one Windows installation, as copied to the host. */
typedef struct {
  tp_hive_kind kind;
  char *guest;                  /* path in the guest */
  char *local;                  /* the host copy */
  char *label;                  /* IMAGE:ROOT:GUEST, for reports and undo */
} guest_hive;

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
    char *guest = dupf ("%s%s", h->guest, used + local_len);
    if (guest) {
      free (info->logs_used[i]);
      info->logs_used[i] = guest;
    }
  }
}

/* Run tp_process_hive on every host copy. With `rehearse`, nothing is
 * written anywhere (the plan only). Otherwise every hive is committed
 * on the host first, and only when all of them succeeded do they go
 * back into the image, stopping at the first failed upload: an image is
 * never left with SOFTWARE patched because SYSTEM failed on the host. */
static void
patch_hives (runner *r, guestfs_h *g, guest_hive *hives, size_t n, bool rehearse,
             tp_result *res, bool *wrote)
{
  tp_options hopt = *r->opt;
  hopt.backup = false;          /* the backup belongs in the image, beside the hive */
  hopt.dry_run = hopt.dry_run || rehearse;
  tp_result hres[2];
  bool all_ok = true;
  for (size_t i = 0; i < n; i++) {
    tp_result_init (&hres[i], hives[i].label);
    tp_process_hive (&hopt, hives[i].local, hives[i].kind, hives[i].label, r->undo, &hres[i]);
    name_logs_in_guest (&hres[i], &hives[i]);
    all_ok = all_ok && hres[i].status != TP_STATUS_ERROR;
  }
  for (size_t i = 0; i < n; i++) {
    if (!rehearse && writes (r) && hres[i].status == TP_STATUS_PATCHED) {
      if (!all_ok)
        tp_result_fail (&hres[i], "not written into the image, because the other hive failed");
      else if (upload_atomically (g, hives[i].local, hives[i].guest, r->opt->backup,
                                  &hres[i]) == 0)
        *wrote = true;
      else
        all_ok = false;
    }
    tp_result_merge (res, &hres[i], hives[i].kind == TP_HIVE_SOFTWARE ? "HKLM\\SOFTWARE"
                                                                      : "HKLM\\SYSTEM");
  }
  if (rehearse && !r->opt->dry_run && r->opt->mode != TP_MODE_CHECK)
    res->dry_run = false;
}

/* ------------------------------------------------------------------ */
/* Clean hives: read on demand, written in place                      */

/* A clean hive needs neither its whole bytes nor its logs: the records a
 * lookup needs are read with guestfs_pread (a few 64 KiB chunks, not the
 * 80 MB that a download moves through ntfs-3g), and the few records that
 * change are written in place in the order of writer.h's phases, each
 * phase synced before the next, so that a stop at any point leaves a
 * valid hive (and a failure rolls back). */

typedef struct {
  guestfs_h *g;
  const char *path;
} guest_file;

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

typedef struct {
  guest_file file;              /* read through the read-only mount */
  char *read_path;
  guest_file write_file;        /* the same file under the read-write mount */
  tp_hive *hv;
  tp_result res;
  int64_t size;                 /* the file's size before */
  tp_regf_patch patch;
  bool patched;                 /* patch holds writes */
} hive_in_place;

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

/* Where the patch can be written in place: its bin goes right at the
 * end of the file, and no LINK write can be torn. */
static bool
patch_fits_in_place (const hive_in_place *h)
{
  return tp_regf_patch_tearproof (&h->patch) &&
         (!h->patch.bin_size || h->patch.bin_off == (size_t) h->size);
}

/* Plan every hive read on demand. Returns 1 when a hive needs the
 * whole-file path (not clean, or a patch that cannot go in place):
 * then nothing was written or recorded. */
static int
plan_in_place (runner *r, guestfs_h *g, const char *mp, guest_hive *hives, hive_in_place *hs,
               size_t n)
{
  tp_options hopt = *r->opt;
  hopt.dry_run = true;          /* written below, in place */
  for (size_t i = 0; i < n; i++) {
    hs[i].read_path = dupf ("%s%s", mp, hives[i].guest);
    hs[i].file = (guest_file) { .g = g, .path = hs[i].read_path };
    tp_result_init (&hs[i].res, hives[i].label);
    hs[i].size = hs[i].read_path ? guestfs_filesize (g, hs[i].read_path) : -1;
    if (hs[i].size > 0)
      hs[i].hv = tp_hive_open_reader (hives[i].label, (size_t) hs[i].size, read_guest,
                                      &hs[i].file, &hs[i].res);
    if (!hs[i].hv)
      return 1;                 /* dirty, damaged or unreadable: the whole-file path decides */
    tp_process_opened (&hopt, hs[i].hv, hives[i].kind, hives[i].label, r->undo, &hs[i].res);
  }
  bool all_ok = true;
  for (size_t i = 0; i < n; i++)
    all_ok = all_ok && hs[i].res.status != TP_STATUS_ERROR;
  for (size_t i = 0; all_ok && writes (r) && i < n; i++) {
    if (hs[i].res.status != TP_STATUS_PATCHED)
      continue;
    if (tp_hive_make_patch (hs[i].hv, &hs[i].res, &hs[i].patch) != 0)
      all_ok = false;
    else if (!(hs[i].patched = true, patch_fits_in_place (&hs[i])))
      return 1;
  }
  return 0;
}

/* UTF-16LE registry string to UTF-8, up to its first NUL. */
static char *
utf16_to_utf8 (const unsigned char *p, size_t len)
{
  char *out = malloc (len / 2 * 3 + 1), *o = out;
  for (size_t i = 0; out && i + 1 < len; i += 2) {
    unsigned c = p[i] | (unsigned) p[i + 1] << 8;
    if (c == 0)
      break;
    if (c >= 0xD800 && c < 0xE000)
      c = 0xFFFD;               /* a product name has no business with surrogates */
    if (c < 0x80)
      *o++ = (char) c;
    else if (c < 0x800) {
      *o++ = (char) (0xC0 | c >> 6);
      *o++ = (char) (0x80 | (c & 0x3F));
    } else {
      *o++ = (char) (0xE0 | c >> 12);
      *o++ = (char) (0x80 | ((c >> 6) & 0x3F));
      *o++ = (char) (0x80 | (c & 0x3F));
    }
  }
  if (out)
    *o = '\0';
  return out;
}

/* ProductName from SOFTWARE, as inspection reports it. */
static char *
product_of (tp_hive *hv)
{
  tp_result scratch;
  tp_result_init (&scratch, "SOFTWARE");
  char *name = NULL;
  size_t key = tp_hive_lookup (hv, "\\Microsoft\\Windows NT\\CurrentVersion");
  tp_value v = { 0 };
  char *stored = NULL;
  if (key && tp_hive_get_value (hv, key, "ProductName", &v, &stored, &scratch) == 0 &&
      v.present && (v.type == 1 || v.type == 2))
    name = utf16_to_utf8 (v.data, v.len);
  tp_value_free (&v);
  free (stored);
  tp_result_free (&scratch);
  return name;
}

/* The whole-file path: download the hives (and logs), plan and commit
 * on the host, upload. */
static void
patch_whole_files (runner *r, guestfs_h *g, slot *s, const char *root, guest_hive *hives,
                   size_t n, const char *tmpdir, tp_result *res)
{
  for (size_t i = 0; i < n; i++) {
    hives[i].local = dupf ("%s/%s", tmpdir, tp_hive_kind_name (hives[i].kind));
    if (!hives[i].local) {
      tp_result_fail (res, "out of memory");
      return;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (download_hive (g, hives[i].guest, hives[i].local, res) < 0)
      return;
  if (!res->product) {          /* a dirty SOFTWARE: its name as recovered */
    tp_result scratch;
    tp_result_init (&scratch, hives[0].local);
    tp_hive *hv = tp_hive_open (hives[0].local, TP_HIVE_OPEN_RECOVER, &scratch);
    res->product = hv ? product_of (hv) : NULL;
    tp_hive_close (hv);
    tp_result_free (&scratch);
  }
  if (!writes (r)) {
    patch_hives (r, g, hives, n, false, res, &s->wrote);
    return;
  }
  tp_result plan;
  tp_result_init (&plan, s->img->path);
  patch_hives (r, g, hives, n, true, &plan, &s->wrote);
  bool nothing_to_write = plan.status != TP_STATUS_PATCHED;   /* changes or a recovery */
  tp_result_free (&plan);
  if (nothing_to_write) {         /* report the plan: errors, or "unchanged" */
    patch_hives (r, g, hives, n, true, res, &s->wrote);
    return;
  }
  char *config = guest_dirname (hives[0].guest);
  if (guestfs_umount_all (g) != 0) {
    char *e = last_error (g);
    tp_result_fail (res, "cannot unmount the volume to remount it for writing: %s", e);
    free (e);
  } else if (mount_root (g, root, "/", true, res) == 0 && probe_writable (g, config, res) == 0)
    patch_hives (r, g, hives, n, false, res, &s->wrote);
  free (config);
}

/* In a shared appliance the image may be /dev/sdc: name its roots as
 * they would be in an appliance of its own (/dev/sda2), so reports and
 * undo records do not depend on how images were grouped. */
static char *
image_root_name (const char *root, size_t dev_len)
{
  if (strncmp (root, "/dev/sd", 7) == 0 && dev_len == 8)
    return dupf ("/dev/sda%s", root + dev_len);
  return strdup (root);
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

/* One Windows installation of a group. Planned with its filesystem
 * mounted read-only on /; when its clean hives are to be written in
 * place it waits ("pending") and all pending roots of the group are
 * then written together, phase by phase, with one sync per phase. */
typedef struct {
  slot *s;
  char *dev;
  tp_result res;
  guest_hive hives[2];
  size_t n;
  hive_in_place hs[2];
  bool in_place;                /* hs holds the results */
  bool pending;                 /* planned in place, to be written */
  bool written;                 /* ... and written */
  bool whole_file;              /* to be done by the whole-file path */
  char *mp;                     /* where it is mounted read-only for planning */
} root_job;

static void
free_root_job (root_job *job)
{
  for (size_t i = 0; i < 2; i++) {
    free (job->hives[i].guest);
    free (job->hives[i].local);
    free (job->hives[i].label);
    free ((char *) job->hs[i].write_file.path);
    free (job->hs[i].read_path);
    tp_regf_patch_free (&job->hs[i].patch);
    tp_hive_close (job->hs[i].hv);
  }
  free (job->dev);
  free (job->mp);
}

/* Report an in-place root: its hives' results into the root's. */
static void
finish_in_place (runner *r, root_job *job)
{
  bool any_error = false;
  for (size_t i = 0; i < job->n; i++)
    any_error = any_error || job->hs[i].res.status == TP_STATUS_ERROR;
  for (size_t i = 0; i < job->n; i++) {
    tp_result *hres = &job->hs[i].res;
    if (hres->status == TP_STATUS_PATCHED && writes (r) && !job->written)
      tp_result_fail (hres, any_error ? "not written into the image, because the other hive "
                                        "failed" : "not written into the image");
    hres->dry_run = r->opt->dry_run && r->opt->mode != TP_MODE_CHECK;
    tp_result_merge (&job->res, hres, job->hives[i].kind == TP_HIVE_SOFTWARE ? "HKLM\\SOFTWARE"
                                                                            : "HKLM\\SYSTEM");
  }
}

/* Plan one root, mounted read-only on /: in place when its hives are
 * clean, else by the whole-file path right away. */
static void
plan_root (runner *r, guestfs_h *g, root_job *job)
{
  tp_result *res = &job->res;
  if (!job->hives[0].guest || (job->n == 2 && !job->hives[1].guest)) {
    tp_result_fail (res, "found no %s hive in the Windows installation on %s",
                    job->hives[0].guest ? "SYSTEM" : "SOFTWARE", res->root);
    return;
  }
  char *canon = is_uri (job->s->img->path) ? NULL : realpath (job->s->img->path, NULL);
  for (size_t i = 0; i < job->n; i++)
    job->hives[i].label = dupf ("%s:%s:%s", canon ? canon : job->s->img->path, res->root,
                                job->hives[i].guest);
  free (canon);
  if (!job->hives[0].label || (job->n == 2 && !job->hives[1].label)) {
    tp_result_fail (res, "out of memory");
    return;
  }
  if (!writes (r))              /* a write would find out anyway */
    check_ntfs_writable (g, job->dev, false, res);
  if (plan_in_place (r, g, job->mp, job->hives, job->hs, job->n) == 0) {
    job->in_place = true;
    if (job->hs[0].hv && tp_hive_kind_of (job->hs[0].hv) == TP_HIVE_SOFTWARE)
      job->res.product = product_of (job->hs[0].hv);
    bool any_error = false, any_write = false;
    for (size_t i = 0; i < job->n; i++) {
      any_error = any_error || job->hs[i].res.status == TP_STATUS_ERROR;
      any_write = any_write || job->hs[i].patched;
    }
    job->pending = any_write && !any_error;
    return;
  }
  for (size_t i = 0; i < job->n; i++) {     /* not in place: start over, later */
    tp_result_free (&job->hs[i].res);
    tp_regf_patch_free (&job->hs[i].patch);
    tp_hive_close (job->hs[i].hv);
    free (job->hs[i].read_path);
    job->hs[i] = (hive_in_place) { 0 };
  }
  job->whole_file = true;
}

/* The whole-file path for one root, with nothing else mounted. */
static void
run_whole_file (runner *r, guestfs_h *g, root_job *job)
{
  tp_result *res = &job->res;
  char tmpdir[] = "/tmp/tlspatch-image-XXXXXX";
  if (!mkdtemp (tmpdir)) {
    tp_result_fail (res, "cannot create a temporary directory: %s", strerror (errno));
    return;
  }
  if (mount_root (g, job->dev, "/", false, res) == 0) {
    res->product = product_name (g, job->hives[0].guest);
    patch_whole_files (r, g, job->s, job->dev, job->hives, job->n, tmpdir, res);
  }
  nftw (tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  if (guestfs_umount_all (g) != 0 && job->s->wrote) {
    char *e = last_error (g);
    tp_result_fail (res, "unmounting failed after writing: %s; the image may be incomplete", e);
    free (e);
  }
}

/* The system root names libguestfs's inspection tries, in its order. */
static const char *const system_roots[] = { "/windows", "/winnt", "/win32", "/win", "/reactos" };

static char *
existing_nocase (guestfs_h *g, const char *path, bool dir)
{
  char *real = path ? guestfs_case_sensitive_path (g, path) : NULL;
  if (real && (dir ? guestfs_is_dir (g, real) : guestfs_is_file (g, real)) != 1) {
    free (real);
    real = NULL;
  }
  return real;
}

/* With a filesystem mounted on `mp`: is there a Windows system root, by
 * inspection's rule (system32/config and system32/cmd.exe)? Then its
 * hives, as paths in that filesystem (NULL when missing). */
static bool
find_hives (guestfs_h *g, const char *mp, char **software, char **system)
{
  size_t mp_len = strlen (mp);
  for (size_t i = 0; i < sizeof system_roots / sizeof *system_roots; i++) {
    char *cmd = dupf ("%s%s/system32/cmd.exe", mp, system_roots[i]);
    char *cmd_real = existing_nocase (g, cmd, false);
    char *config = cmd_real ? dupf ("%s%s/system32/config", mp, system_roots[i]) : NULL;
    char *config_real = existing_nocase (g, config, true);
    if (config_real) {
      char *sw = dupf ("%s/software", config_real), *sy = dupf ("%s/system", config_real);
      char *sw_real = existing_nocase (g, sw, false), *sy_real = existing_nocase (g, sy, false);
      *software = sw_real ? strdup (sw_real + mp_len) : NULL;
      *system = sy_real ? strdup (sy_real + mp_len) : NULL;
      free (sw);
      free (sy);
      free (sw_real);
      free (sy_real);
    }
    bool found = config_real != NULL;
    free (cmd);
    free (cmd_real);
    free (config);
    free (config_real);
    if (found)
      return true;
  }
  return false;
}

/* ------------------------------------------------------------------ */
/* A group of images in one appliance                                 */

static slot *
slot_of_drive (slot *slots, size_t n, int drive)
{
  for (size_t i = 0; i < n; i++)
    if (!slots[i].error && slots[i].drive == drive)
      return &slots[i];
  return NULL;
}

static void
add_slot_result (slot *s, tp_result *res)
{
  tp_result *more = realloc (s->results, (s->n_results + 1) * sizeof *more);
  if (!more) {
    tp_result_free (res);
    return;
  }
  s->results = more;
  s->results[s->n_results++] = *res;
}

/* An image without Windows: say whether BitLocker hides it. */
static char *
why_no_windows (guestfs_h *g, const slot *s)
{
  char **fs = guestfs_list_filesystems (g);
  bool bitlocker = false;
  for (size_t i = 0; fs && fs[i] && fs[i + 1]; i += 2) {
    char *dev = guestfs_part_to_dev (g, fs[i]);
    if (guestfs_device_index (g, dev ? dev : fs[i]) == s->drive &&
        strcasecmp (fs[i + 1], "BitLocker") == 0)
      bitlocker = true;
    free (dev);
  }
  free_strings (fs);
  return strdup (bitlocker
                 ? "the Windows volume is encrypted with BitLocker; unlock or decrypt it first"
                 : "no Windows installation found in this image");
}

/* Mount a pending root read-write on its own mountpoint and prove it
 * writes; then its hives are written under that mountpoint. */
static int
ready_for_writing (runner *r, guestfs_h *g, root_job *job, size_t k)
{
  char *mp = dupf ("/tlspatch%zu", k);
  char *config = job->hives[0].guest ? guest_dirname (job->hives[0].guest) : NULL;
  char *mp_config = mp && config ? dupf ("%s%s", mp, config) : NULL;
  int rc = -1;
  if (!mp_config)
    tp_result_fail (&job->res, "out of memory");
  else if (guestfs_mkmountpoint (g, mp) != 0) {
    char *e = last_error (g);
    tp_result_fail (&job->res, "cannot make a mountpoint for writing: %s", e);
    free (e);
  } else if (mount_root (g, job->dev, mp, true, &job->res) == 0 &&
             probe_writable (g, mp_config, &job->res) == 0) {
    rc = 0;
    for (size_t i = 0; i < job->n; i++) {
      job->hs[i].write_file = (guest_file) { .g = g,
                                             .path = dupf ("%s%s", mp, job->hives[i].guest) };
      if (!job->hs[i].write_file.path)
        rc = tp_result_fail (&job->res, "out of memory");
      if (rc == 0 && job->hs[i].patched && r->undo->undo_writer &&
          tp_undo_writer_record (r->undo->undo_writer, &job->hs[i].res) < 0)
        rc = -1;
    }
  }
  free (mp);
  free (config);
  free (mp_config);
  return rc;
}

/* Write every pending root of the group: phase by phase across all
 * their hives, one sync per phase (a sync flushes every drive of the
 * appliance, so its cost is shared), then verify each hive through the
 * appliance. A failure rolls back every write of the group. */
static void
write_pending_roots (runner *r, guestfs_h *g, root_job **jobs, size_t n_jobs)
{
  size_t n = 0;
  const tp_regf_patch **patches = calloc (2 * n_jobs + 1, sizeof *patches);
  tp_regf_target *targets = calloc (2 * n_jobs + 1, sizeof *targets);
  hive_in_place **owners = calloc (2 * n_jobs + 1, sizeof *owners);
  for (size_t k = 0; patches && targets && owners && k < n_jobs; k++) {
    root_job *job = jobs[k];
    if (!job->pending || ready_for_writing (r, g, job, k) != 0) {
      job->pending = false;
      continue;
    }
    for (size_t i = 0; i < job->n; i++) {
      hive_in_place *h = &job->hs[i];
      if (!h->patched)
        continue;
      patches[n] = &h->patch;
      targets[n] = (tp_regf_target) { .write = write_target, .truncate = truncate_target,
                                      .ctx = &h->write_file, .size = (uint64_t) h->size };
      owners[n++] = h;
    }
  }
  char *err = NULL;
  int rc = n ? tp_regf_write_in_place (patches, targets, n, sync_appliance, g) : 0;
  if (rc != 0)
    err = last_error (g);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const tp_regf_patch *p = patches[i];
    size_t size = p->bin_size ? p->bin_off + p->bin_size : (size_t) owners[i]->size;
    tp_result check;
    tp_result_init (&check, owners[i]->res.target);
    owners[i]->file = owners[i]->write_file;    /* read back what was written */
    if (tp_hive_verify_patch (owners[i]->hv, size, &check) != 0) {
      err = strdup (check.error ? check.error : "verification failed");
      tp_regf_roll_back_in_place (patches, targets, n, sync_appliance, g);
      rc = -1;
    }
    tp_result_free (&check);
  }
  for (size_t k = 0; k < n_jobs; k++) {
    if (!jobs[k]->pending)
      continue;
    if (rc == 0)
      jobs[k]->s->wrote = jobs[k]->written = true;
    else
      for (size_t i = 0; i < jobs[k]->n; i++)
        if (jobs[k]->hs[i].patched)
          tp_result_fail (&jobs[k]->hs[i].res, "writing into the image failed (%s); every "
                          "write was rolled back", err ? err : "out of memory");
  }
  if (n && guestfs_umount_all (g) != 0 && rc == 0) {
    char *e = last_error (g);
    for (size_t k = 0; k < n_jobs; k++)
      if (jobs[k]->pending)
        tp_result_fail (&jobs[k]->res, "unmounting failed after writing: %s; the image may "
                        "be incomplete", e);
    free (e);
  }
  free (err);
  free (patches);
  free (targets);
  free (owners);
}

/* A filesystem that could hold a Windows system root. */
typedef struct {
  char *path;                   /* /dev/sdb2 */
  size_t dev_len;               /* strlen ("/dev/sdb") */
  int drive;                    /* the device's index: which image */
} guest_fs;

static void
free_guest_fs (guest_fs *fs)
{
  for (size_t i = 0; fs && fs[i].path; i++)
    free (fs[i].path);
  free (fs);
}

/* An NTFS boot sector ("NTFS    " at offset 3): one small read, where
 * blkid (guestfs_vfs_type) costs 0.2 s per partition under TCG. */
static bool
is_ntfs (guestfs_h *g, const char *dev)
{
  size_t got = 0;
  char *b = guestfs_pread_device (g, dev, 16, 0, &got);
  bool ntfs = b && got >= 11 && memcmp (b + 3, "NTFS    ", 8) == 0;
  free (b);
  return ntfs;
}

/* `part` is a partition of `dev` (its name, then digits). */
static bool
partition_of (const char *part, const char *dev)
{
  size_t len = strlen (dev);
  if (strncmp (part, dev, len) != 0 || !part[len])
    return false;
  for (const char *c = part + len; *c; c++)
    if (*c < '0' || *c > '9')
      return false;
  return true;
}

/* NTFS partitions, and whole disks formatted NTFS, with the drive each
 * is on. Cheaper than guestfs_list_filesystems, which also scans every
 * device for LVM, RAID and btrfs (2.5 s per disk under TCG), and than
 * part_to_dev / device_index round trips. */
static guest_fs *
ntfs_filesystems (guestfs_h *g)
{
  char **parts = guestfs_list_partitions (g);
  char **devs = guestfs_list_devices (g);
  size_t n = 0, cap = 0;
  guest_fs *out = NULL;
  bool failed = !parts || !devs;
  for (size_t d = 0; !failed && devs[d]; d++) {
    bool has_parts = false;
    for (size_t k = 0; parts[k] && !failed; k++) {
      if (!partition_of (parts[k], devs[d]))
        continue;
      has_parts = true;
      if (!is_ntfs (g, parts[k]))
        continue;
      if (n + 1 >= cap) {
        guest_fs *more = realloc (out, (cap = 2 * cap + 8) * sizeof *out);
        if (!more) {
          failed = true;
          break;
        }
        out = more;
      }
      out[n++] = (guest_fs) { .path = strdup (parts[k]), .dev_len = strlen (devs[d]),
                              .drive = (int) d };
      out[n].path = NULL;
    }
    if (!failed && !has_parts && is_ntfs (g, devs[d])) {
      guest_fs *more = realloc (out, (n + 2) * sizeof *out);
      if (!more)
        failed = true;
      else {
        out = more;
        out[n++] = (guest_fs) { .path = strdup (devs[d]), .dev_len = strlen (devs[d]),
                                .drive = (int) d };
        out[n].path = NULL;
        cap = n + 1;
      }
    }
  }
  if (!failed && !out)
    out = calloc (1, sizeof *out);
  if (failed) {
    free_guest_fs (out);
    out = NULL;
  }
  free_strings (parts);
  free_strings (devs);
  return out;
}

/* Find the Windows installations the way inspection does, but without
 * guestfs_inspect_os: that also opens every hive with hivex inside the
 * appliance, reading them whole (6 s of a one-image run under TCG, and
 * again for every image sharing an appliance). Only NTFS can hold a
 * Windows system root that ntfs-3g could write. */
static void
find_and_patch (runner *r, guestfs_h *g, slot *slots, size_t n, const char *name, double t0)
{
  stage (r, name, t0, "inspecting");
  guest_fs *fs = ntfs_filesystems (g);
  root_job **jobs = NULL;         /* pointers: the hive sessions point into each job */
  size_t n_jobs = 0;
  /* Each filesystem on a mountpoint of its own: one unmount for all. */
  for (size_t i = 0; fs && fs[i].path; i++) {
    slot *s = slot_of_drive (slots, n, fs[i].drive);
    char *mp = s ? dupf ("/ro%zu", i) : NULL;
    char *software = NULL, *system = NULL;
    root_job **more = NULL, *job = NULL;
    if (!mp || guestfs_mkmountpoint (g, mp) != 0 || guestfs_mount_ro (g, fs[i].path, mp) != 0 ||
        !find_hives (g, mp, &software, &system) ||
        !(more = realloc (jobs, (n_jobs + 1) * sizeof *jobs)) ||
        !(job = calloc (1, sizeof *job))) {
      jobs = more ? more : jobs;
      free (mp);
      free (software);
      free (system);
      continue;
    }
    jobs = more;
    jobs[n_jobs++] = job;
    *job = (root_job) { .s = s, .dev = strdup (fs[i].path), .mp = mp,
                        .n = r->opt->no_service ? 1 : 2,
                        .hives = { { .kind = TP_HIVE_SOFTWARE, .guest = software },
                                   { .kind = TP_HIVE_SYSTEM, .guest = system } } };
    tp_result_init (&job->res, s->img->path);
    job->res.image = strdup (s->img->path);
    job->res.root = image_root_name (fs[i].path, fs[i].dev_len);
    job->res.hive_label = strdup (r->opt->no_service ? "SOFTWARE" : "SOFTWARE+SYSTEM");
    job->res.kind = TP_HIVE_SOFTWARE;
    stage (r, name, t0, "patching");
    plan_root (r, g, job);
  }
  guestfs_umount_all (g);        /* nothing was written: read-only mounts */
  write_pending_roots (r, g, jobs, n_jobs);
  for (size_t k = 0; k < n_jobs; k++)
    if (jobs[k]->whole_file)
      run_whole_file (r, g, jobs[k]);
  for (size_t k = 0; k < n_jobs; k++) {
    if (jobs[k]->in_place)
      finish_in_place (r, jobs[k]);
    add_slot_result (jobs[k]->s, &jobs[k]->res);
    free_root_job (jobs[k]);
    free (jobs[k]);
  }
  free (jobs);
  if (!fs) {
    char *e = last_error (g);
    for (size_t i = 0; i < n; i++)
      if (!slots[i].error)
        slots[i].error = dupf ("cannot list the filesystems: %s", e);
    free (e);
  }
  free_guest_fs (fs);
  for (size_t i = 0; i < n; i++)
    if (!slots[i].error && slots[i].n_results == 0)
      slots[i].error = why_no_windows (g, &slots[i]);
}

/* Writes are only real once the appliance has flushed and shut down:
 * guestfs_shutdown syncs every drive first (autosync, which tlspatch
 * never turns off) and fails when that fails. */
static void
finish (guestfs_h *g, slot *slots, size_t n)
{
  bool wrote = false;
  for (size_t i = 0; i < n; i++)
    wrote |= slots[i].wrote;
  int rc = guestfs_shutdown (g);
  if (rc != 0 && wrote) {
    char *e = last_error (g);
    for (size_t i = 0; i < n; i++)
      for (size_t k = 0; slots[i].wrote && k < slots[i].n_results; k++)
        tp_result_fail (&slots[i].results[k], "the appliance failed to flush and shut down "
                        "(%s): the changes may not have reached the disk", e);
    free (e);
  }
}

static void
emit_slot (runner *r, slot *s)
{
  pthread_mutex_lock (&r->lock);
  if (s->error) {
    tp_result res;
    tp_result_init (&res, s->img->path);
    res.image = strdup (s->img->path);
    tp_result_fail (&res, "%s", s->error);
    r->emit (&res, r->opaque);
    tp_result_free (&res);
  }
  for (size_t k = 0; k < s->n_results; k++) {
    r->emit (&s->results[k], r->opaque);
    tp_result_free (&s->results[k]);
  }
  pthread_mutex_unlock (&r->lock);
}

static void
process_group (runner *r, size_t first, size_t count)
{
  double t0 = now_seconds ();
  slot *slots = calloc (count, sizeof *slots);
  char *name = count > 1 ? dupf ("%s (+%zu more)", r->images[first].path, count - 1)
                         : strdup (r->images[first].path);
  guestfs_h *probe = new_handle (false);
  for (size_t i = 0; i < count; i++) {
    slots[i].img = &r->images[first + i];
    slots[i].drive = -1;
    if (writes (r) && !is_uri (slots[i].img->path) && image_in_use (slots[i].img->path))
      slots[i].error = strdup ("image is in use: a running VM or qemu process holds its lock; "
                               "shut it down first");
    else if (probe)
      choose_format (probe, &slots[i]);
    else
      slots[i].error = strdup ("cannot create a libguestfs handle");
  }
  if (probe)
    guestfs_close (probe);

  stage (r, name, t0, "launching");
  char *err = NULL;
  guestfs_h *g = launch (r, slots, count, &err);
  if (g) {
    find_and_patch (r, g, slots, count, name, t0);
    finish (g, slots, count);
    guestfs_close (g);
  } else
    for (size_t i = 0; i < count; i++)
      if (!slots[i].error)
        slots[i].error = strdup (err ? err : "the appliance did not start");
  free (err);

  bool failed = false;
  for (size_t i = 0; i < count; i++) {
    failed |= slots[i].error != NULL;
    for (size_t k = 0; k < slots[i].n_results; k++)
      failed |= slots[i].results[k].status == TP_STATUS_ERROR;
  }
  stage (r, name, t0, failed ? "failed" : "done");   /* ends the progress line first */
  for (size_t i = 0; i < count; i++) {
    emit_slot (r, &slots[i]);
    free (slots[i].format);
    free (slots[i].error);
    free (slots[i].results);
  }
  free (slots);
  free (name);
}

static void
skip_group (runner *r, size_t first, size_t count)
{
  for (size_t i = 0; i < count; i++) {
    slot s = { .img = &r->images[first + i],
               .error = strdup ("interrupted before this image was started; it was not touched") };
    emit_slot (r, &s);
    free (s.error);
  }
}

static void *
worker (void *arg)
{
  runner *r = arg;
  size_t share = r->iopt->share > 0 ? (size_t) r->iopt->share : 1;
  for (;;) {
    pthread_mutex_lock (&r->lock);
    size_t first = r->next;
    size_t count = first < r->n ? (r->n - first < share ? r->n - first : share) : 0;
    r->next += count;
    pthread_mutex_unlock (&r->lock);
    if (count == 0)
      return NULL;
    if (r->iopt->stop && *r->iopt->stop)
      skip_group (r, first, count);
    else
      process_group (r, first, count);
  }
}

void
tp_images_process (const tp_options *opt, const tp_image_options *iopt,
                   const tp_image *images, size_t n, tp_undo_ctx *undo,
                   tp_image_emit emit, void *opaque)
{
  runner r = { .opt = opt, .iopt = iopt, .images = images, .n = n, .undo = undo,
               .emit = emit, .opaque = opaque };
  pthread_mutex_init (&r.lock, NULL);
  char why[256];
  if (tp_gfs_load (why, sizeof why) < 0) {
    for (size_t i = 0; i < n; i++) {
      slot s = { .img = &images[i], .error = why };
      emit_slot (&r, &s);
    }
    pthread_mutex_destroy (&r.lock);
    return;
  }
  size_t jobs = iopt->jobs > 1 ? (size_t) iopt->jobs : 1;
  pthread_t *threads = calloc (jobs, sizeof *threads);
  size_t started = 0;
  for (size_t i = 1; threads && i < jobs; i++) {
    if (pthread_create (&threads[i], NULL, worker, &r) != 0)
      break;                    /* fewer threads is still correct */
    started = i;
  }
  worker (&r);                  /* this thread works too */
  for (size_t i = 1; i <= started; i++)
    pthread_join (threads[i], NULL);
  free (threads);
  pthread_mutex_destroy (&r.lock);
}
