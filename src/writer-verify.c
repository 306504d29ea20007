/* tlspatch: a written hive read back by path, and the edits checked
 * against it (see tp_regf_verify_edits in writer.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/regf.h"
#include "writer-int.h"

#define CHUNK 4096

/* The written hive, read through a function in 4 KiB chunks on demand. */
typedef struct {
  tp_regf_read_fn read;
  void *ctx;
  unsigned char *buf;
  unsigned char *loaded;
  size_t size;
} source;

static bool
load (void *ctx, size_t off, size_t len)
{
  source *s = ctx;
  if (off > s->size || len > s->size - off)
    return false;
  for (size_t k = off / CHUNK; len && k <= (off + len - 1) / CHUNK; k++) {
    size_t start = k * CHUNK, n = s->size - start < CHUNK ? s->size - start : CHUNK;
    if (!s->loaded[k] && s->read (s->ctx, s->buf + start, n, start) != 0)
      return false;
    s->loaded[k] = 1;
  }
  return true;
}

/* Is path a (component by component) equal to or below path b? */
static bool
within (const char *a, const char *b)
{
  size_t na, nb;
  tp_w_name *pa = tp_w_path (a, &na), *pb = tp_w_path (b, &nb);
  bool in = pa && pb && nb <= na;
  for (size_t i = 0; in && i < nb; i++)
    in = tp_regf_name_cmp (pa[i].u, pa[i].n, pb[i].u, pb[i].n) == 0;
  tp_w_path_free (pa, na);
  tp_w_path_free (pb, nb);
  return in;
}

static bool
same_value_name (const char *a, const char *b)
{
  size_t na, nb;
  uint16_t *ua = tp_regf_utf16_from_utf8 (a, &na), *ub = tp_regf_utf16_from_utf8 (b, &nb);
  bool same = ua && ub && tp_regf_name_cmp (ua, na, ub, nb) == 0;
  free (ua);
  free (ub);
  return same;
}

bool
tp_regf_edit_superseded (const tp_regf_edit *edits, size_t n, size_t i)
{
  const tp_regf_edit *e = &edits[i];
  bool on_value = e->op == TP_EDIT_SET_VALUE || e->op == TP_EDIT_DELETE_VALUE;
  for (size_t j = i + 1; j < n; j++) {
    const tp_regf_edit *l = &edits[j];
    if (l->op == TP_EDIT_DELETE_KEY && within (e->key, l->key))
      return true;
    if (e->op == TP_EDIT_DELETE_KEY && l->op == TP_EDIT_CREATE_KEY && within (l->key, e->key))
      return true;
    if (on_value && (l->op == TP_EDIT_SET_VALUE || l->op == TP_EDIT_DELETE_VALUE) &&
        within (e->key, l->key) && within (l->key, e->key) && same_value_name (e->name, l->name))
      return true;
  }
  return false;
}

/* The key at `path`, 0 when absent; -1 in *bad when unreadable. */
static size_t
lookup (const tp_regf *r, const char *path, size_t *last_parent, tp_w_name *last, bool *bad)
{
  size_t n, node = tp_regf_root (r);
  tp_w_name *parts = tp_w_path (path, &n);
  *bad = !parts || !node;
  for (size_t i = 0; !*bad && node && i < n; i++) {
    *last_parent = node;
    node = tp_w_find_child (r, node, &parts[i], bad);
  }
  if (last && parts && n) {
    last->n = parts[n - 1].n;
    last->u = NULL;
  }
  tp_w_path_free (parts, n);
  return *bad ? 0 : node;
}

/* A field of an nk record (its payload offset `field`), 0 if damaged. */
static uint32_t
nk_field (const tp_regf *r, size_t nk, size_t field)
{
  if (nk + 4 + field + 4 > tp_regf_cells_end (r) || !tp_regf_load (r, nk, 4 + field + 4))
    return 0;
  return tp_le32 (r->buf + nk + 4 + field);
}

/* One edit's outcome: NULL when it holds, else what is wrong. */
static const char *
check_edit (const tp_regf *r, const tp_regf_edit *e)
{
  bool bad = false;
  size_t parent = 0;
  tp_w_name last = { NULL, 0 };
  size_t nk = lookup (r, e->key, &parent, &last, &bad);
  if (bad)
    return "cannot be read back";
  if (e->op == TP_EDIT_DELETE_KEY)
    return nk ? "was not deleted" : NULL;
  if (!nk)
    return "is missing";
  if (e->op == TP_EDIT_CREATE_KEY)
    return (nk_field (r, parent, TP_NK_MAX_SUBKEY_NAME) & 0xFFFF) < 2 * last.n ? "is beyond its parent's hints"
                                                             : NULL;
  size_t n_name;
  uint16_t *u = tp_regf_utf16_from_utf8 (e->name ? e->name : "", &n_name);
  tp_w_name name = { u, n_name };
  size_t vk = u ? tp_w_find_value (r, nk, &name, &bad) : 0;
  free (u);
  if (!u || bad)
    return "cannot be read back";
  if (e->op == TP_EDIT_DELETE_VALUE)
    return vk ? "still has the deleted value" : NULL;
  tp_value got = { 0 };
  const char *wrong = NULL;
  if (!vk || tp_regf_value_data (r, vk, &got) < 0 || !tp_value_equal (&got, e->value))
    wrong = "does not read back as written";
  else if (nk_field (r, nk, TP_NK_MAX_VALUE_NAME) < 2 * n_name ||
           nk_field (r, nk, TP_NK_MAX_VALUE_DATA) < got.len)
    wrong = "has hints that do not cover the value";
  tp_value_free (&got);
  return wrong;
}

int
tp_regf_verify_edits_from (tp_regf_read_fn read, void *ctx, size_t end,
                           const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  unsigned char bb[TP_REGF_BASE_BLOCK_SIZE];
  tp_regf_header hdr;
  if (read (ctx, bb, sizeof bb, 0) != 0) {
    snprintf (why, whylen, "cannot read the written hive back");
    return -1;
  }
  /* tp_regf_check_primary reads only the base block of what it is given. */
  if (tp_regf_check_primary (bb, end < sizeof bb ? sizeof bb : end, &hdr, why, whylen) != 0)
    return -1;
  source src = { .read = read, .ctx = ctx, .size = end, .loaded = calloc (end / CHUNK + 1, 1) };
  void *m = mmap (NULL, end, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
  src.buf = m == MAP_FAILED ? NULL : m;
  if (!src.buf || !src.loaded) {
    snprintf (why, whylen, "out of memory");
    free (src.loaded);
    if (src.buf)
      munmap (src.buf, end);
    return -1;
  }
  tp_regf r = { .buf = src.buf, .size = end, .minor = hdr.minor,
                .bins_end = TP_REGF_BINS + (size_t) hdr.bins_size, .load = load, .load_ctx = &src };
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *wrong = tp_regf_edit_superseded (edits, n, i) ? NULL : check_edit (&r, &edits[i]);
    if (wrong && edits[i].op == TP_EDIT_SET_VALUE)
      rc = -1, snprintf (why, whylen, "value %s of %s %s", edits[i].name, edits[i].key, wrong);
    else if (wrong && edits[i].op == TP_EDIT_DELETE_VALUE)
      rc = -1, snprintf (why, whylen, "key %s %s %s", edits[i].key, wrong, edits[i].name);
    else if (wrong)
      rc = -1, snprintf (why, whylen, "key %s %s", edits[i].key, wrong);
  }
  free (src.loaded);
  munmap (src.buf, end);
  return rc;
}

static int
read_fd (void *ctx, void *buf, size_t len, uint64_t off)
{
  return pread (*(int *) ctx, buf, len, (off_t) off) == (ssize_t) len ? 0 : -1;
}

int
tp_regf_verify_edits (int fd, const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  off_t end = lseek (fd, 0, SEEK_END);
  if (end < 0) {
    snprintf (why, whylen, "cannot read the written hive back");
    return -1;
  }
  return tp_regf_verify_edits_from (read_fd, &fd, (size_t) end, edits, n, why, whylen);
}
