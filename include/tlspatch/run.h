/* tlspatch: one entry point for every kind of TARGET.
 *
 * A TARGET is a hive file, a folder (a mounted Windows volume, its
 * Windows folder or its System32\config folder), or a disk image (a
 * file recognised by its content, a URI, or one marked as an image).
 * tp_run opens the undo record the options name, takes every target
 * through the pipeline (tlspatch.h) and hands each result to `emit`:
 * one per hive of a file or folder, one per Windows installation of an
 * image, one for a target that failed as a whole. It never prints.
 */
#ifndef TLSPATCH_RUN_H
#define TLSPATCH_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "tlspatch/image.h"
#include "tlspatch/tlspatch.h"

typedef struct {
  const char *arg;
  bool image;                   /* given as an image (-a): never taken for a hive */
  bool domain;                  /* a libvirt domain's name (-d): its disks */
  const char *format;           /* an image's format, or NULL to detect it safely */
} tp_run_target;

/* Is this target a disk image (given with -a, a URI, a file that starts
 * like one; with a format, any regular file that is not a hive)? */
bool tp_run_target_is_image (const tp_run_target *t);

typedef struct {
  const tp_options *opt;
  const tp_image_options *iopt;
  tp_image_emit emit;           /* never called concurrently */
  void *emit_ctx;
} tp_run_ctx;

void tp_run (const tp_run_ctx *run, const tp_run_target *targets, size_t n);

/* tlspatch's version and those of the libraries in use, one per line:
 * "tlspatch 0.1.0\nhivex 1.3.23\nlibguestfs 1.48.6\njson-c 0.16\n".
 * hivex's is the one built with (hivex has no call that tells). */
void tp_versions (char *buf, size_t len);

#endif
