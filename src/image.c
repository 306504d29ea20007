/* tlspatch: Windows disk images through libguestfs (see image.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <inttypes.h>
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
#include "guest-hive.h"

/* ------------------------------------------------------------------ */
/* Recognising images                                                 */

static bool
is_uri (const char *arg)
{
  return strstr (arg, "://") != NULL;
}

/* A block device (the disk of a broken VM attached to a rescue VM, a
 * loop device): always an image, always raw. */
static bool
is_block_device (const char *arg)
{
  struct stat st;
  return !is_uri (arg) && stat (arg, &st) == 0 && S_ISBLK (st.st_mode);
}

bool
tp_image_looks_like_image (const char *arg)
{
  if (is_uri (arg) || is_block_device (arg))
    return true;
  int fd = open (arg, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not block */
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
  int drive;                    /* index among the appliance's drives of its first */
  int n_drives;                 /* 1, or a domain's disks */
  bool device;                  /* a block device: raw, and in use when busy */
  char *canon;                  /* the image as undo records name it */
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

static double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
tell (runner *r, const char *name, double t0, const char *what, bool notice)
{
  if (!r->iopt->progress)
    return;
  pthread_mutex_lock (&r->lock);
  r->iopt->progress (name, what, now_seconds () - t0, notice, r->iopt->progress_ctx);
  pthread_mutex_unlock (&r->lock);
}

static void
stage (runner *r, const char *name, double t0, const char *what)
{
  tell (r, name, t0, what, false);
}

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static guestfs_h *
new_handle (bool tcg, bool trace)
{
  guestfs_h *g = guestfs_create ();
  if (!g)
    return NULL;
  guestfs_set_error_handler (g, NULL, NULL);   /* errors are reported per target */
  /* qemu in its own process group: a Ctrl-C on the terminal reaches
   * tlspatch only, which finishes (sync, shutdown) before it stops. */
  guestfs_set_pgroup (g, 1);
  if (trace)
    guestfs_set_trace (g, 1);   /* -x: each call on stderr, as guestfish -x */
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
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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
  if (is_uri (s->img->path) || s->device) {
    /* What an NBD server exports; a device is its bytes, and what they
     * start with (a guest's own) must not be taken for a qcow2 header
     * naming a backing file. */
    s->format = strdup ("raw");
    return;
  }
  if (vmdk_descriptor (s->img->path)) {
    s->error = strdup ("VMDK descriptor file: its extents may name any file on this host; "
                       "refusing unless the image format is given (vmdk)");
    return;
  }
  char *fmt = guestfs_disk_format (g, s->img->path);
  if (!fmt) {
    s->error = tp_guest_error (g);
    return;
  }
  if (strcmp (fmt, "unknown") == 0) {
    s->error = strdup ("cannot tell the disk image format; it must be given");
    free (fmt);
    return;
  }
  int backing = guestfs_disk_has_backing_file (g, s->img->path);
  if (backing != 0) {
    s->error = backing > 0
      ? tp_guest_strf ("%s image has a backing file; refusing to follow it unless the image format is given", fmt)
      : tp_guest_error (g);
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
  char *server = tp_guest_strf ("tcp:%s", hostport);
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

/* The drives added for one slot: 1, a domain's disks, or -1. */
static int
add_drive (guestfs_h *g, const slot *s, const char *libvirt_uri, bool readonly)
{
  if (s->img->domain)
    return libvirt_uri
      ? guestfs_add_domain (g, s->img->path, GUESTFS_ADD_DOMAIN_LIBVIRTURI, libvirt_uri,
                            GUESTFS_ADD_DOMAIN_READONLY, readonly,
                            GUESTFS_ADD_DOMAIN_READONLYDISK, "read", -1)
      : guestfs_add_domain (g, s->img->path, GUESTFS_ADD_DOMAIN_READONLY, readonly,
                            GUESTFS_ADD_DOMAIN_READONLYDISK, "read", -1);
  int rc = is_uri (s->img->path) ? add_uri_drive (g, s, readonly)
                                 : guestfs_add_drive_opts (g, s->img->path,
                                                           GUESTFS_ADD_DRIVE_OPTS_FORMAT, s->format,
                                                           GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly, -1);
  return rc == 0 ? 1 : -1;
}

/* qemu locks the bytes from 100 of an image it has open (its permission
 * and sharing bits). Any such lock held by someone else means a running
 * VM or qemu-nbd uses the image: writing under it would corrupt it. */
static bool
image_in_use (const char *path, bool device)
{
  /* A block device that is mounted, or held by device-mapper, md or
   * another exclusive opener, cannot be opened O_EXCL (EBUSY). */
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (device ? O_EXCL : 0));
  if (fd < 0)
    return errno == EBUSY;
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
  if (!err)
    return NULL;
  if (strstr (err, "lock") && (strstr (err, "write") || strstr (err, "another process"))) {
    free (err);
    return strdup ("image is in use: a running VM (qemu) holds its lock; shut the VM down first");
  }
  if (strstr (err, "live virtual machine")) {
    free (err);
    return strdup ("domain is running: writing to its disks could corrupt them; shut it down "
                   "first (check reads a running domain read-only)");
  }
  return err;
}

/* Add every usable slot's drive and launch. When KVM kills the appliance
 * (as nested virtualization often does), try once more with TCG. */
static guestfs_h *
launch (runner *r, slot *slots, size_t n, double t0, char **err)
{
  bool tcg = r->iopt->force_tcg;
  for (int attempt = 0; attempt < 2;) {
    guestfs_h *g = new_handle (tcg, r->iopt->trace);
    if (!g) {
      *err = strdup ("cannot create a libguestfs handle");
      return NULL;
    }
    int drive = 0;
    slot *refused = NULL;
    for (size_t i = 0; i < n && !refused; i++) {
      if (slots[i].error)
        continue;
      slots[i].drive = drive;
      int added = add_drive (g, &slots[i], r->iopt->libvirt_uri, !tp_options_write (r->opt));
      refused = added < 0 ? &slots[i] : NULL;
      slots[i].n_drives = added < 0 ? 0 : added;
      drive += slots[i].n_drives;
    }
    if (refused) {              /* that image alone fails: a fresh handle for the others */
      refused->error = explain_launch_error (tp_guest_error (g));
      guestfs_close (g);
      if (!refused->error)
        return NULL;            /* out of memory: the group fails */
      continue;
    }
    if (drive == 0) {           /* every image already failed on its own */
      guestfs_close (g);
      return NULL;
    }
    if (guestfs_launch (g) == 0)
      return g;
    *err = tp_guest_error (g);
    guestfs_close (g);
    if (tcg || tcg_already (r) || strstr (*err, "lock"))
      break;
    tell (r, slots[0].img->path, t0, "the appliance failed to start under KVM; "
          "retrying with software emulation (TCG)", true);
    free (*err);
    *err = NULL;
    tcg = true;
    attempt++;
  }
  *err = explain_launch_error (*err);
  return NULL;
}

/* In a shared appliance the image may be /dev/sdc: name its roots as
 * they would be in an appliance of its own (/dev/sda2), so reports and
 * undo records do not depend on how images were grouped. */
static char *
image_root_name (const char *root, size_t dev_len, int disk)
{
  if (strncmp (root, "/dev/sd", 7) == 0 && dev_len == 8 && disk >= 0 && disk < 26)
    return tp_guest_strf ("/dev/sd%c%s", 'a' + disk, root + dev_len);
  return strdup (root);
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
 * hives, as paths in that filesystem (NULL when missing). Each check is
 * a round trip to the appliance: the hive paths also prove the config
 * folder, which is only looked at on its own when they do not resolve. */
static bool
find_hives (guestfs_h *g, const char *mp, char **software, char **system)
{
  size_t mp_len = strlen (mp);
  for (size_t i = 0; i < sizeof system_roots / sizeof *system_roots; i++) {
    char *cmd = tp_guest_strf ("%s%s/system32/cmd.exe", mp, system_roots[i]);
    char *cmd_real = existing_nocase (g, cmd, false);
    free (cmd);
    if (!cmd_real)
      continue;
    char *system32 = strndup (cmd_real, (size_t) (strrchr (cmd_real, '/') - cmd_real));
    char *sw = system32 ? tp_guest_strf ("%s/config/software", system32) : NULL;
    char *sy = system32 ? tp_guest_strf ("%s/config/system", system32) : NULL;
    char *sw_real = existing_nocase (g, sw, false), *sy_real = existing_nocase (g, sy, false);
    char *config = system32 ? tp_guest_strf ("%s/config", system32) : NULL;
    char *config_real = sw_real || sy_real ? NULL : existing_nocase (g, config, true);
    bool found = sw_real || sy_real || config_real;
    if (found) {
      *software = sw_real ? strdup (sw_real + mp_len) : NULL;
      *system = sy_real ? strdup (sy_real + mp_len) : NULL;
    }
    free (cmd_real);
    free (system32);
    free (sw);
    free (sy);
    free (sw_real);
    free (sy_real);
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
    if (!slots[i].error && drive >= slots[i].drive && drive < slots[i].drive + slots[i].n_drives)
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
    int index = guestfs_device_index (g, dev ? dev : fs[i]);
    if (index >= s->drive && index < s->drive + s->n_drives &&
        strcasecmp (fs[i + 1], "BitLocker") == 0)
      bitlocker = true;
    free (dev);
  }
  free_strings (fs);
  if (s->n_drives == 0)
    return strdup ("the domain has no disks");
  return strdup (bitlocker
                 ? "the Windows volume is encrypted with BitLocker; unlock or decrypt it first"
                 : "no Windows installation found in this image");
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
  tp_guest_root **jobs = NULL;    /* pointers: the hive sessions point into each job */
  slot **owners = NULL;
  size_t n_jobs = 0;
  tp_guest_run run = { .opt = r->opt, .undo = r->undo };
  /* Each filesystem on a mountpoint of its own: one unmount for all. */
  for (size_t i = 0; fs && fs[i].path; i++) {
    slot *s = slot_of_drive (slots, n, fs[i].drive);
    char *mp = s ? tp_guest_strf ("/fs%zu", i) : NULL;
    char *software = NULL, *system = NULL;
    tp_guest_root **more = NULL, *job = NULL;
    slot **more_owners = NULL;
    bool rw = false;
    char *rw_error = NULL;
    if (!mp || guestfs_mkmountpoint (g, mp) != 0 ||
        tp_guest_mount_for_planning (&run, g, fs[i].path, mp, &rw, &rw_error) != 0 ||
        !find_hives (g, mp, &software, &system) ||
        !(more = realloc (jobs, (n_jobs + 1) * sizeof *jobs)) ||
        !(more_owners = realloc (owners, (n_jobs + 1) * sizeof *owners)) ||
        !(job = calloc (1, sizeof *job))) {
      jobs = more ? more : jobs;
      owners = more_owners ? more_owners : owners;
      free (mp);
      free (software);
      free (system);
      free (rw_error);
      continue;
    }
    jobs = more;
    owners = more_owners;
    owners[n_jobs] = s;
    jobs[n_jobs++] = job;
    *job = (tp_guest_root) { .image_name = s->canon ? s->canon : s->img->path,
                             .dev = strdup (fs[i].path), .mp = mp, .rw = rw,
                             .mount_error = rw_error,
                             .n = tp_options_want_system (r->opt) ? 2 : 1,
                             .hives = { { .kind = TP_HIVE_SOFTWARE, .guest = software },
                                        { .kind = TP_HIVE_SYSTEM, .guest = system } } };
    tp_result_init (&job->res, s->img->path);
    job->res.image = strdup (s->img->path);
    job->res.root = image_root_name (fs[i].path, fs[i].dev_len, fs[i].drive - s->drive);
    job->res.hive_label = strdup (tp_options_want_system (r->opt) ? "SOFTWARE+SYSTEM" : "SOFTWARE");
    job->res.kind = TP_HIVE_SOFTWARE;
    stage (r, name, t0, "patching");
    tp_guest_root_plan (&run, g, job);
  }
  tp_guest_roots_write (&run, g, jobs, n_jobs);   /* and unmounts everything */
  for (size_t k = 0; k < n_jobs; k++)
    if (jobs[k]->whole_file)
      tp_guest_root_whole_file (&run, g, jobs[k]);
  for (size_t k = 0; k < n_jobs; k++) {
    if (jobs[k]->in_place)
      tp_guest_root_finish (&run, jobs[k]);
    owners[k]->wrote |= jobs[k]->wrote;
    add_slot_result (owners[k], &jobs[k]->res);
    tp_guest_root_free (jobs[k]);
    free (jobs[k]);
  }
  free (owners);
  free (jobs);
  if (!fs) {
    char *e = tp_guest_error (g);
    for (size_t i = 0; i < n; i++)
      if (!slots[i].error)
        slots[i].error = tp_guest_strf ("cannot list the filesystems: %s", e);
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
    char *e = tp_guest_error (g);
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
  char *name = count > 1 ? tp_guest_strf ("%s (+%zu more)", r->images[first].path, count - 1)
                         : strdup (r->images[first].path);
  guestfs_h *probe = new_handle (false, r->iopt->trace);
  for (size_t i = 0; i < count; i++) {
    slots[i].img = &r->images[first + i];
    slots[i].drive = -1;
    bool file = !is_uri (slots[i].img->path) && !slots[i].img->domain;
    slots[i].canon = file ? realpath (slots[i].img->path, NULL) : NULL;
    struct stat st;
    bool missing = file && stat (slots[i].img->path, &st) != 0;
    slots[i].device = file && !missing && S_ISBLK (st.st_mode);
    if (slots[i].img->domain)
      ;   /* libvirt knows its disks and their formats */
    else if (missing)
      slots[i].error = strdup (strerror (errno));   /* as for a hive file, not qemu-img's words */
    else if (tp_options_write (r->opt) && file && image_in_use (slots[i].img->path, slots[i].device))
      slots[i].error = strdup (slots[i].device
                               ? "device is in use: mounted on this host, or held by another "
                                 "program (device-mapper, md, a VM); unmount or release it first"
                               : "image is in use: a running VM or qemu process holds its lock; "
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
  guestfs_h *g = launch (r, slots, count, t0, &err);
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
    free (slots[i].canon);
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
tp_image_libguestfs_version (char *buf, size_t len)
{
  char why[256];
  if (tp_gfs_load (why, sizeof why) < 0) {
    snprintf (buf, len, "not available (%s)", why);
    return;
  }
  guestfs_h *g = guestfs_create ();
  struct guestfs_version *v = g ? guestfs_version (g) : NULL;
  if (v)
    snprintf (buf, len, "%" PRIi64 ".%" PRIi64 ".%" PRIi64 "%s", v->major, v->minor, v->release,
              v->extra);
  else
    snprintf (buf, len, "not available (no handle)");
  if (v)
    guestfs_free_version (v);
  if (g)
    guestfs_close (g);
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
