/* tlspatch: from a command-line TARGET to the hive files it means. */
#ifndef TLSPATCH_TARGET_H
#define TLSPATCH_TARGET_H

#include <stddef.h>

#include "tlspatch/result.h"

typedef struct {
  char *path;            /* hive file; NULL when it was expected but not found */
  char *name;            /* how reports name it: its absolute path, folders resolved,
                            the file's own name as found (a link is not followed) */
  tp_hive_kind expect;   /* kind implied by its name in a directory, else unknown */
  char *error;           /* why this entry cannot be processed, or NULL */
} tp_target_hive;

typedef struct {
  tp_target_hive *hives;
  size_t n_hives;
} tp_target;

/* A hive file stands for itself. A directory is a mounted Windows
 * volume, its Windows folder, or a System32\config folder: SOFTWARE and
 * SYSTEM are found there case-insensitively (SYSTEM only when
 * need_system). Always fills at least one entry; problems go in the
 * entries' error. */
void tp_target_resolve (const char *arg, int need_system, tp_target *t);
void tp_target_free (tp_target *t);

#endif
