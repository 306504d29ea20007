/* tlspatch tests: write an apply into a copy of a hive IN PLACE, the way
 * the disk-image path writes a clean hive (tp_regf_write_in_place), and
 * stop there as a kill would, or make one write fail.
 *
 *   inplace count HIVE COPY      write it all; print the number of writes
 *   inplace stop K HIVE COPY     exit right after the K-th write (no rollback)
 *   inplace fail K HIVE COPY     the K-th write fails: everything rolls back
 *
 * HIVE is only read; COPY (a copy of it) is written. Exit 0, or 1 when
 * the write failed (fail) or nothing was to be written.
 *
 * With a third file, EDITS, the patch is not an apply but the edits
 * listed there (one a line, fields separated by '|'):
 *   create|\A\B              delete|\A\B
 *   set|\A|NAME|TYPE|DATA     unset|\A|NAME   (delete the value)
 * TYPE is a number (0x.. hex); DATA is hex:AABB.., fill:COUNT:BB (COUNT
 * bytes BB), sz:TEXT (UTF-16LE with its NUL), or empty (no bytes). The
 * count mode then also reads COPY back (tp_regf_verify_edits), and
 *   inplace copy HIVE OUT EDITS  writes the edits into OUT (an empty
 *                                file) as the whole-file path does.
 *   inplace list HIVE KEY        print the signature of KEY's subkey list
 *                                (ri: also its leaves') and its count, and
 *                                "unsorted" / "bad-hint" when the leaves'
 *                                order or lh hashes / lf hints are wrong
 *                                (checked with the C library's towupper)
 *   inplace cells HIVE           print the number of allocated cells */
#include <fcntl.h>
#include <locale.h>
#include <wchar.h>
#include <wctype.h>
#include <sys/mman.h>
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

/* ---- edit lists ---- */

typedef struct {
  tp_regf_edit *e;
  tp_value *v;
  char **lines;                 /* the edits' strings point into these */
  size_t n;
} edit_list;

static void
free_edits (edit_list *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free (l->lines[i]);
    tp_value_free (&l->v[i]);
  }
  free (l->lines);
  free (l->e);
  free (l->v);
}

static int
parse_data (const char *d, tp_value *v)
{
  size_t len = strlen (d);
  v->present = true;
  v->data = malloc (len + 2 * 1024 * 1024 + 2);
  if (!v->data)
    return -1;
  if (strncmp (d, "hex:", 4) == 0) {
    for (const char *h = d + 4; h[0] && h[1]; h += 2) {
      unsigned b;
      if (sscanf (h, "%2x", &b) != 1)
        return -1;
      v->data[v->len++] = (unsigned char) b;
    }
  } else if (strncmp (d, "fill:", 5) == 0) {
    unsigned long count;
    unsigned b;
    if (sscanf (d + 5, "%lu:%x", &count, &b) != 2 || count > 2 * 1024 * 1024)
      return -1;
    memset (v->data, (int) b, count);
    v->len = count;
  } else if (strncmp (d, "sz:", 3) == 0) {
    for (const char *c = d + 3;; c++) {
      v->data[v->len++] = (unsigned char) *c;
      v->data[v->len++] = 0;
      if (!*c)
        break;
    }
  } else if (*d)
    return -1;
  return 0;
}

static int
read_edits (const char *path, edit_list *l)
{
  FILE *f = fopen (path, "r");
  char line[4096];
  if (!f)
    return -1;
  l->e = calloc (20000, sizeof *l->e);
  l->v = calloc (20000, sizeof *l->v);
  l->lines = calloc (20000, sizeof *l->lines);
  while (l->e && l->v && l->lines && l->n < 20000 && fgets (line, sizeof line, f)) {
    line[strcspn (line, "\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    char *f1 = strdup (line), *save = NULL;
    char *op = strtok_r (f1, "|", &save), *key = strtok_r (NULL, "|", &save);
    char *name = strtok_r (NULL, "|", &save), *type = strtok_r (NULL, "|", &save);
    char *data = save ? save : (char *) "";
    tp_regf_edit *e = &l->e[l->n];
    tp_value *v = &l->v[l->n];
    l->lines[l->n] = f1;
    if (!op || !key)
      return fclose (f), -1;
    e->key = key;
    e->name = name ? name : "";
    if (strcmp (name ? name : "", "@") == 0)
      e->name = "";
    if (strcmp (op, "create") == 0)
      e->op = TP_EDIT_CREATE_KEY;
    else if (strcmp (op, "delete") == 0)
      e->op = TP_EDIT_DELETE_KEY;
    else if (strcmp (op, "unset") == 0)
      e->op = TP_EDIT_DELETE_VALUE;
    else if (strcmp (op, "set") == 0 && type) {
      e->op = TP_EDIT_SET_VALUE;
      v->type = (uint32_t) strtoul (type, NULL, 0);
      if (parse_data (data, v) != 0)
        return fclose (f), -1;
    } else
      return fclose (f), -1;
    l->n++;
  }
  fclose (f);
  for (size_t i = 0; l->e && i < l->n; i++)
    l->e[i].value = &l->v[i];
  return l->e && l->v ? 0 : -1;
}

/* The hive file, mapped, as the writer reads it. */
static int
map_hive (const char *path, tp_regf *r)
{
  int fd = open (path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0 || st.st_size < 8192)
    return -1;
  void *m = mmap (NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (m == MAP_FAILED)
    return -1;
  const unsigned char *b = m;
  *r = (tp_regf) { .buf = b, .size = (size_t) st.st_size,
                   .minor = (uint32_t) b[24] | (uint32_t) b[25] << 8,
                   .bins_end = 4096 + ((size_t) b[40] | (size_t) b[41] << 8 |
                                       (size_t) b[42] << 16 | (size_t) b[43] << 24) };
  return 0;
}

/* `inplace copy HIVE OUT EDITS`: the whole-file path, verified. */
static int
copy_mode (const char *hive, const char *out, const edit_list *l)
{
  tp_regf r;
  char why[256];
  int in = open (hive, O_RDONLY), fd = open (out, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || fd < 0 || map_hive (hive, &r) != 0)
    return perror (hive), 1;
  if (tp_regf_write_edits (fd, in, r.buf, r.size, l->e, l->n, why, sizeof why) != 0 ||
      tp_regf_verify_edits (fd, l->e, l->n, why, sizeof why) != 0) {
    fprintf (stderr, "inplace: %s\n", why);
    return 1;
  }
  return 0;
}

/* A key's name uppercased (towupper), as wide characters. */
static size_t
upper_name (const tp_regf *r, size_t nk, wchar_t *out, size_t max)
{
  char *utf8 = tp_regf_key_name (r, nk);
  size_t n = utf8 ? mbstowcs (out, utf8, max) : (size_t) -1;
  free (utf8);
  for (size_t i = 0; n != (size_t) -1 && i < n; i++)
    out[i] = (wchar_t) towupper ((wint_t) out[i]);
  return n;
}

/* Check one leaf: order (continuing from prev) and hints. */
static bool
leaf_ok (const tp_regf *r, const unsigned char *l, wchar_t *prev)
{
  bool hinted = l[1] == 'f' || l[1] == 'h';
  size_t step = hinted ? 8 : 4;
  for (unsigned i = 0; i < (unsigned) (l[2] | l[3] << 8); i++) {
    const unsigned char *e = l + 4 + step * i;
    wchar_t name[300];
    size_t n = upper_name (r, 4096 + (size_t) ((uint32_t) e[0] | (uint32_t) e[1] << 8 |
                                              (uint32_t) e[2] << 16 | (uint32_t) e[3] << 24),
                           name, 299);
    if (n == (size_t) -1)
      return false;
    name[n] = 0;
    if (prev[0] && wcscmp (prev, name) >= 0)
      return false;
    wcscpy (prev, name);
    uint32_t want = 0, got = hinted ? (uint32_t) e[4] | (uint32_t) e[5] << 8 |
                                      (uint32_t) e[6] << 16 | (uint32_t) e[7] << 24 : 0;
    for (size_t c = 0; l[1] == 'h' && c < n; c++)
      want = 37 * want + (uint32_t) name[c];
    if (l[1] == 'h' && want != got)
      return false;
  }
  return true;
}

/* `inplace list HIVE KEY`: "ri lh lh 1013", "lh 3" or "none 0". */
static int
list_mode (const char *hive, const char *key)
{
  tp_regf r;
  if (map_hive (hive, &r) != 0)
    return 1;
  size_t nk = tp_regf_root (&r);
  char *copy = strdup (key), *save = NULL;
  bool damaged = false;
  for (char *part = strtok_r (copy, "\\", &save); part && nk; part = strtok_r (NULL, "\\", &save))
    nk = tp_regf_child (&r, nk, part, &damaged);
  free (copy);
  size_t n;
  size_t *kids = nk ? tp_regf_children (&r, nk, &n) : NULL;
  if (!nk || n == (size_t) -1)
    return 1;
  free (kids);
  const unsigned char *k = r.buf + nk + 4;
  uint32_t list = (uint32_t) k[28] | (uint32_t) k[29] << 8 | (uint32_t) k[30] << 16 |
                  (uint32_t) k[31] << 24;
  if (n == 0) {
    printf ("none 0\n");
    return 0;
  }
  const unsigned char *l = r.buf + 4096 + list + 4;
  printf ("%.2s", (const char *) l);
  wchar_t prev[300] = { 0 };
  bool good = memcmp (l, "ri", 2) == 0 || leaf_ok (&r, l, prev);
  for (unsigned i = 0; memcmp (l, "ri", 2) == 0 && i < (unsigned) (l[2] | l[3] << 8); i++) {
    const unsigned char *e = l + 4 + 4 * i;
    size_t leaf = 4096 + ((size_t) e[0] | (size_t) e[1] << 8 | (size_t) e[2] << 16 |
                          (size_t) e[3] << 24);
    printf (" %.2s", (const char *) r.buf + leaf + 4);
    good = leaf_ok (&r, r.buf + leaf + 4, prev) && good;
  }
  printf (" %zu%s\n", n, good ? "" : " unsorted-or-bad-hint");
  return 0;
}

static uint32_t
le32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* `inplace cells HIVE`: allocated cells in all bins (-1: a bad bin). */
static int
cells_mode (const char *hive)
{
  tp_regf r;
  if (map_hive (hive, &r) != 0)
    return 1;
  long cells = 0;
  for (size_t bin = 4096; bin + 32 <= r.bins_end && bin + 32 <= r.size;) {
    size_t size = le32 (r.buf + bin + 8);
    if (memcmp (r.buf + bin, "hbin", 4) != 0 || size < 4096 || size % 4096 ||
        bin + size > r.size) {
      printf ("-1\n");
      return 1;
    }
    for (size_t c = bin + 32; c + 4 <= bin + size;) {
      int32_t raw = (int32_t) le32 (r.buf + c);
      size_t len = raw < 0 ? (size_t) -(int64_t) raw : (size_t) raw;
      if (len < 8 || len % 8 || c + len > bin + size) {
        printf ("-1\n");
        return 1;
      }
      cells += raw < 0;
      c += len;
    }
    bin += size;
  }
  printf ("%ld\n", cells);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], "cells") == 0)
    return cells_mode (argv[2]);
  if (argc == 4 && strcmp (argv[1], "list") == 0) {
    setlocale (LC_CTYPE, "C.UTF-8");
    return list_mode (argv[2], argv[3]);
  }
  int k = strcmp (argv[1] ? argv[1] : "", "count") == 0 ? 2
        : strcmp (argv[1] ? argv[1] : "", "copy") == 0 ? 2 : 3;
  if (argc != k + 2 && argc != k + 3) {
    fprintf (stderr, "usage: inplace count|stop K|fail K HIVE COPY [EDITS]\n"
                     "       inplace copy HIVE OUT EDITS\n");
    return 2;
  }
  if (k == 3)
    *(strcmp (argv[1], "stop") == 0 ? &stop_at : &fail_at) = atol (argv[2]);
  const char *hive = argv[k], *copy = argv[k + 1];
  edit_list list = { 0 };
  if (argc == k + 3 && read_edits (argv[k + 2], &list) != 0) {
    fprintf (stderr, "inplace: %s: cannot read the edits\n", argv[k + 2]);
    return 2;
  }
  if (strcmp (argv[1], "copy") == 0) {
    int copied = list.n ? copy_mode (hive, copy, &list) : 2;
    free_edits (&list);
    return copied;
  }

  tp_options opt;
  tp_options_init (&opt);
  opt.dry_run = true;           /* plan only: the writes are ours */
  tp_undo_ctx undo = { 0 };
  tp_result res;
  tp_result_init (&res, hive);
  tp_hive *hv = NULL;
  tp_regf_patch patch;
  char why[256];
  tp_regf r;
  if (list.n) {
    if (map_hive (hive, &r) != 0 ||
        tp_regf_make_patch (&r, list.e, list.n, &patch, why, sizeof why) != 0) {
      fprintf (stderr, "inplace: %s: %s\n", hive, why);
      return 1;
    }
  } else if (!(hv = tp_hive_open (hive, 0, &res)) ||
             tp_process_opened (&opt, hv, TP_HIVE_UNKNOWN, NULL, &undo, &res)
               != TP_STATUS_PATCHED ||
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
  if (k == 2 && rc == 0 && list.n &&
      tp_regf_verify_edits (copy_fd, list.e, list.n, why, sizeof why) != 0) {
    fprintf (stderr, "inplace: %s: %s\n", copy, why);
    rc = -1;
  }
  tp_regf_patch_free (&patch);
  free_edits (&list);
  tp_hive_close (hv);
  tp_result_free (&res);
  close (copy_fd);
  return rc == 0 ? 0 : 1;
}
