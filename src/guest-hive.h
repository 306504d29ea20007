/* tlspatch: the hives of a Windows installation inside a disk image,
 * for image.c (internal).
 *
 * A root is planned with its filesystem mounted: read-write (noatime,
 * so that reading changes nothing; norecover, so that ntfs-3g never
 * clears an unclean journal) when the run writes, else read-only. Clean hives
 * are read on demand (guestfs_pread, 64 KiB chunks) and their patches
 * written in place (writer.h's phases); all pending roots of one
 * appliance are written together, one sync per phase. Anything else (a
 * dirty hive, recover, --backup, a patch that cannot go in place) takes
 * the whole-file path: download, patch on the host, upload beside the
 * hive, read back, rename.
 */
#ifndef TLSPATCH_GUEST_HIVE_H
#define TLSPATCH_GUEST_HIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "tlspatch/tlspatch.h"
#include "gfs.h"

/* What a run asks of every root. */
typedef struct {
  const tp_options *opt;
  tp_undo_ctx *undo;
} tp_guest_run;

/* The hives of one Windows installation, as copied to the host. */
typedef struct {
  tp_hive_kind kind;
  char *guest;                  /* path in the guest */
  char *local;                  /* the host copy */
  char *label;                  /* IMAGE:ROOT:GUEST, for reports and undo */
} guest_hive;

/* A file in the appliance. */
typedef struct {
  guestfs_h *g;
  const char *path;
} guest_file;

/* One hive of a root planned in place: read on demand and written
 * through the same mount (job's target). */
typedef struct {
  char *path;                   /* under the root's mountpoint */
  guest_file file;
  tp_hive *hv;
  tp_result res;
  int64_t size;                 /* the file's size before */
  tp_commit_job job;            /* prepared: its patch is to be written */
} hive_in_place;

/* One Windows installation of a group. Planned with its filesystem
 * mounted on `mp`; when its clean hives are to be written in place it
 * waits ("pending") and all pending roots of the group are then written
 * together, phase by phase, with one sync per phase. */
typedef struct {
  const char *image_name;       /* the image as undo records name it (canonical path) */
  char *dev;
  tp_result res;
  guest_hive hives[2];
  size_t n;
  hive_in_place hs[2];
  bool in_place;                /* hs holds the results */
  bool pending;                 /* planned in place, to be written */
  bool written;                 /* ... and written */
  bool whole_file;              /* to be done by the whole-file path */
  char *mp;                     /* where it is mounted for planning */
  bool rw;                      /* ... read-write (an apply on a volume ntfs-3g may write) */
  char *mount_error;            /* why a read-write mount failed */
  bool needs_reason;            /* could not be written: ask ntfs-3g's probe once unmounted */
  bool wrote;                   /* something reached the image */
} tp_guest_root;


/* Mount the filesystem `dev` on `mp` for planning: read-write when the
 * run writes and ntfs-3g allows it (*rw), else read-only (*rw_error says
 * why, malloc'd). */
int tp_guest_mount_for_planning (const tp_guest_run *r, guestfs_h *g, const char *dev,
                                 const char *mp, bool *rw, char **rw_error);

/* Plan the root (its hives' paths, labels and result filled in): in
 * place, or marked whole_file. */
void tp_guest_root_plan (const tp_guest_run *r, guestfs_h *g, tp_guest_root *job);

/* Write every pending root (mounted read-write where planned), then
 * unmount everything. */
void tp_guest_roots_write (const tp_guest_run *r, guestfs_h *g, tp_guest_root **jobs,
                           size_t n_jobs);

/* The whole-file path for a root marked so; nothing may be mounted. */
void tp_guest_root_whole_file (const tp_guest_run *r, guestfs_h *g, tp_guest_root *job);

/* Fold an in-place root's hive results into job->res. */
void tp_guest_root_finish (const tp_guest_run *r, tp_guest_root *job);
void tp_guest_root_free (tp_guest_root *job);

/* printf into a malloc'd string (NULL when out of memory). */
char *tp_guest_strf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* libguestfs's last error as one malloc'd line. */
char *tp_guest_error (guestfs_h *g);

#endif
