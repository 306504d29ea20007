/* tlspatch tests: write an apply into a copy of a hive IN PLACE, the way
 * the disk-image path writes a clean hive (tp_regf_write_in_place), and
 * stop there as a kill would, or make one write fail.
 *
 *   inplace count HIVE COPY      write it all; print the number of writes
 *   inplace stop K HIVE COPY     exit right after the K-th write (no rollback)
 *   inplace fail K HIVE COPY     the K-th write fails: everything rolls back
 *
 * HIVE is only read; COPY (a copy of it) is written. Exit 0, or 1 when
 * the write failed (fail) or nothing was to be written. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/tlspatch.h"

static int copy_fd = -1;
static long writes, stop_at, fail_at;

static int
write_copy (void *ctx, const void *buf, size_t len, uint64_t off)
{
  (void) ctx;
  if (++writes == fail_at)
    return -1;
  if (pwrite (copy_fd, buf, len, (off_t) off) != (ssize_t) len)
    return -1;
  if (writes == stop_at)
    _exit (0);                  /* as a kill -9: no rollback, no sync */
  return 0;
}

static int
truncate_copy (void *ctx, uint64_t size)
{
  (void) ctx;
  return ftruncate (copy_fd, (off_t) size);
}

static int
sync_copy (void *ctx)
{
  (void) ctx;
  return fsync (copy_fd);
}

int
main (int argc, char **argv)
{
  int k = strcmp (argv[1] ? argv[1] : "", "count") == 0 ? 2 : 3;
  if (argc != k + 2) {
    fprintf (stderr, "usage: inplace count|stop K|fail K HIVE COPY\n");
    return 2;
  }
  if (k == 3)
    *(strcmp (argv[1], "stop") == 0 ? &stop_at : &fail_at) = atol (argv[2]);
  const char *hive = argv[k], *copy = argv[k + 1];

  tp_options opt;
  tp_options_init (&opt);
  tp_result res;
  tp_result_init (&res, hive);
  tp_hive *hv = tp_hive_open (hive, 0, &res);
  tp_regf_patch patch;
  if (!hv || tp_plan (&opt, hv, TP_HIVE_UNKNOWN, NULL, NULL, &res) != TP_STATUS_PATCHED ||
      tp_hive_make_patch (hv, &res, &patch) != 0) {
    fprintf (stderr, "inplace: %s: %s\n", hive, res.error ? res.error : "nothing to write");
    return 1;
  }
  struct stat st;
  copy_fd = open (copy, O_RDWR);
  if (copy_fd < 0 || fstat (copy_fd, &st) != 0) {
    perror (copy);
    return 1;
  }
  const tp_regf_patch *patches[1] = { &patch };
  tp_regf_target target = { .write = write_copy, .truncate = truncate_copy,
                            .size = (uint64_t) st.st_size };
  int rc = tp_regf_write_in_place (patches, &target, 1, sync_copy, NULL);
  if (k == 2)
    printf ("%ld\n", writes);
  tp_regf_patch_free (&patch);
  tp_hive_close (hv);
  tp_result_free (&res);
  close (copy_fd);
  return rc == 0 ? 0 : 1;
}
