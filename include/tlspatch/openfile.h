/* tlspatch: opening a file that must be a regular file, and writing
 * one whole.
 *
 * A FIFO (or a device) named as a hive, a log or a settings file would
 * block open() forever, holding the hive's lock: every such file is
 * opened without blocking, checked to be a regular file, and only then
 * switched back to blocking reads.
 */
#ifndef TLSPATCH_OPENFILE_H
#define TLSPATCH_OPENFILE_H

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* open(path, O_RDONLY) for a regular file: the descriptor with *st
 * filled in, or -1 with errno (EINVAL: not a regular file). */
static inline int
tp_open_regular (const char *path, struct stat *st)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return -1;
  int flags = fcntl (fd, F_GETFL);
  if (fstat (fd, st) != 0 || !S_ISREG (st->st_mode) || flags < 0 ||
      fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    int saved = S_ISREG (st->st_mode) ? errno : EINVAL;
    close (fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* What a failed tp_open_regular means, for a message. */
static inline const char *
tp_open_error (int err)
{
  return err == EINVAL ? "not a regular file" : strerror (err);
}

/* pwrite all of buf, looping on short counts (a write stops at 2 GiB):
 * a full disk then shows as the next call's ENOSPC, not as a stale
 * errno. 0, or -1 with errno. */
static inline int
tp_pwrite_all (int fd, const char *buf, size_t len, off_t off)
{
  while (len > 0) {
    ssize_t w = pwrite (fd, buf, len, off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w == 0 ? (errno = EIO, -1) : -1;
    buf += w;
    len -= (size_t) w;
    off += w;
  }
  return 0;
}

#endif
