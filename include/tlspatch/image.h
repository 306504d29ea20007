/* tlspatch: Windows disk images, through libguestfs.
 *
 * Each image is inspected in the libguestfs appliance; the SOFTWARE and
 * SYSTEM hives of every Windows installation are downloaded, patched on
 * the host by the same code as hive files (tp_process_hive), and
 * uploaded back atomically: a temporary name in the same folder,
 * verified by reading it back, then renamed over the original.
 */
#ifndef TLSPATCH_IMAGE_H
#define TLSPATCH_IMAGE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "tlspatch/tlspatch.h"

typedef struct {
  const char *path;     /* a file, a block device, a URI such as nbd://127.0.0.1:10809/export,
                         * or a libvirt domain's name */
  const char *format;   /* raw, qcow2, vmdk, vhdx, vpc; NULL: detect safely */
  bool domain;          /* path names a libvirt domain (-d): all its disks, in the formats
                         * its definition gives; a running one is refused for writing */
} tp_image;

typedef struct {
  int jobs;             /* -j: images (or appliance groups) in parallel */
  int share;            /* --share-appliance: images per appliance launch */
  bool force_tcg;       /* --tcg: software emulation from the start */
  bool trace;           /* -x: libguestfs traces its calls on stderr */
  const char *libvirt_uri;  /* -c: the libvirt connection of the domains (NULL: libvirt's default) */
  /* Called as an image moves on (never concurrently): its stage
   * ("launching", "inspecting", "patching", "done", "failed") with the
   * seconds since it started, or, with notice set, something the user
   * should know (a retry under software emulation). NULL: nothing. */
  void (*progress) (const char *image, const char *what, double seconds, bool notice,
                    void *ctx);
  void *progress_ctx;
  volatile sig_atomic_t *stop;  /* set by a signal: finish the images under way, start no more */
} tp_image_options;

/* Does this TARGET name a disk image: a URI, or a file whose first
 * bytes are a disk image format or a partition table? */
bool tp_image_looks_like_image (const char *arg);

/* Called once per Windows installation (or per image that failed),
 * never concurrently. The callee may not keep res. */
typedef void (*tp_image_emit) (tp_result *res, void *opaque);

/* The libguestfs in use, e.g. "1.48.6"; or why it cannot be loaded. */
void tp_image_libguestfs_version (char *buf, size_t len);

/* Process every image; results reach `emit`. */
void tp_images_process (const tp_options *opt, const tp_image_options *iopt,
                        const tp_image *images, size_t n, tp_undo_ctx *undo,
                        tp_image_emit emit, void *opaque);

#endif
