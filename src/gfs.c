/* tlspatch: load libguestfs on first use (see gfs.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define TP_GFS_NO_REMAP
#include "gfs.h"

#define TP_GFS_DEFINE(name) __typeof__ (&name) tp_gfs_##name;
TP_GFS_FUNCTIONS (TP_GFS_DEFINE)
#undef TP_GFS_DEFINE

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void
load (void)
{
  void *lib = dlopen ("libguestfs.so.0", RTLD_NOW | RTLD_GLOBAL);
  if (!lib) {
    snprintf (load_error, sizeof load_error,
              "disk images need libguestfs, which cannot be loaded (install libguestfs0): %s",
              dlerror ());
    return;
  }
#define TP_GFS_RESOLVE(name) \
  if (!load_error[0] && !(*(void **) &tp_gfs_##name = dlsym (lib, #name))) \
    snprintf (load_error, sizeof load_error, "libguestfs lacks %s: too old", #name);
  TP_GFS_FUNCTIONS (TP_GFS_RESOLVE)
#undef TP_GFS_RESOLVE
}

int
tp_gfs_load (char *why, size_t whylen)
{
  pthread_once (&once, load);
  if (load_error[0]) {
    snprintf (why, whylen, "%s", load_error);
    return -1;
  }
  return 0;
}
