/* tlspatch: hivex referees what tlspatch wrote (see referee.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hivex.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/reader.h"
#include "tlspatch/referee.h"

typedef enum { R_DAMAGED = -1, R_ABSENT, R_FOUND } r_lookup;

/* The one of `handles` (a 0-terminated array hivex returned, freed
 * here; NULL when hivex could not read the list) whose name, by
 * `name_of`, equals `name` as Windows compares names. */
static r_lookup
match_name (hive_h *h, size_t *handles, char *(*name_of) (hive_h *, size_t), const char *name,
            size_t *out)
{
  if (!handles)
    return R_DAMAGED;
  r_lookup got = R_ABSENT;
  for (size_t i = 0; handles[i] && got == R_ABSENT; i++) {
    char *have = name_of (h, handles[i]);
    if (!have)
      got = R_DAMAGED;
    else if (tp_regf_name_casecmp (have, name) == 0) {
      *out = handles[i];
      got = R_FOUND;
    }
    free (have);
  }
  free (handles);
  return got;
}

/* The child of `node` named `name`: hivex's own lookup first (exact up
 * to ASCII case), then the names compared as Windows does. */
static r_lookup
child (hive_h *h, hive_node_h node, const char *name, hive_node_h *out)
{
  errno = 0;
  *out = hivex_node_get_child (h, node, name);
  if (*out)
    return R_FOUND;
  if (errno)
    return R_DAMAGED;
  return match_name (h, hivex_node_children (h, node), hivex_node_name, name, out);
}

/* The key at `path` ("\A\B", "" the root). */
static r_lookup
find_key (hive_h *h, const char *path, hive_node_h *out)
{
  char *copy = strdup (path), *save = NULL;
  if (!copy)
    return R_DAMAGED;
  *out = hivex_root (h);
  r_lookup got = *out ? R_FOUND : R_DAMAGED;
  for (char *part = strtok_r (copy, "\\", &save); part && got == R_FOUND;
       part = strtok_r (NULL, "\\", &save))
    got = child (h, *out, part, out);
  free (copy);
  return got;
}

/* Value `name` of `node`, by Windows' comparison. */
static r_lookup
find_value (hive_h *h, hive_node_h node, const char *name, hive_value_h *out)
{
  return match_name (h, hivex_node_values (h, node), hivex_value_key, name, out);
}

/* Does hivex read `val` as type and bytes `want`? Windows' "unset"
 * data (size 0 at offset 0xFFFFFFFF), which hivex refuses to read, must
 * have the type and no bytes. */
static bool
reads_as (hive_h *h, hive_value_h val, const tp_value *want)
{
  hive_type t;
  size_t len;
  char *data = hivex_value_value (h, val, &t, &len);
  if (!data)
    return want->len == 0 && hivex_value_type (h, val, &t, &len) == 0 && t == want->type &&
           len == 0;
  bool same = t == want->type && len == want->len &&
              (len == 0 || memcmp (data, want->data, len) == 0);
  free (data);
  return same;
}

/* Does hivex read the hive as tlspatch holds it: key `key` there (or,
 * when !key_there, gone), and value `name` (NULL: none asked about)
 * as `want` (not present: absent)? NULL when it does, else what hivex
 * sees. `written`: tlspatch made it so (a write), else it read it so
 * (an audit). */
static const char *
differs (hive_h *h, const char *key, bool key_there, const char *name, const tp_value *want,
         bool written)
{
  hive_node_h node;
  hive_value_h val;
  r_lookup got = find_key (h, key, &node);
  if (got == R_DAMAGED)
    return "cannot be read";
  if (!key_there || got == R_ABSENT)
    return (got == R_FOUND) == key_there ? NULL : key_there ? "is missing" : "was not deleted";
  if (!name)
    return NULL;
  got = find_value (h, node, name, &val);
  if (got == R_DAMAGED)
    return "has values that cannot be read";
  if (got == R_FOUND && !want->present)
    return written ? "still has the deleted value" : "has the value, which tlspatch found absent";
  if (got == R_ABSENT && want->present)
    return written ? "lacks the value set" : "lacks the value, which tlspatch found present";
  return got == R_ABSENT || reads_as (h, val, want) ? NULL : "has the value with another type or bytes";
}

/* One edit's outcome as hivex reads it: NULL when it holds. */
static const char *
check_edit (hive_h *h, const tp_regf_edit *e)
{
  static const tp_value absent = { 0 };
  bool on_value = e->op == TP_EDIT_SET_VALUE || e->op == TP_EDIT_DELETE_VALUE;
  return differs (h, e->key, e->op != TP_EDIT_DELETE_KEY, on_value ? (e->name ? e->name : "") : NULL,
                  e->op == TP_EDIT_SET_VALUE ? e->value : &absent, true);
}

static bool
edited_name (const tp_regf_edit *edits, size_t n, const char *key, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if ((edits[i].op == TP_EDIT_SET_VALUE || edits[i].op == TP_EDIT_DELETE_VALUE) &&
        tp_regf_name_casecmp (edits[i].key, key) == 0 &&
        tp_regf_name_casecmp (edits[i].name ? edits[i].name : "", name) == 0)
      return true;
  return false;
}

/* The key at `path` as tlspatch's reader sees the original, 0 when
 * absent; *bad when a list on the way cannot be read. */
static size_t
original_key (const tp_regf *r, const char *path, bool *bad)
{
  char *copy = strdup (path), *save = NULL;
  size_t nk = copy ? tp_regf_root (r) : 0;
  *bad = !nk;
  for (char *part = copy ? strtok_r (copy, "\\", &save) : NULL; part && nk;
       part = strtok_r (NULL, "\\", &save))
    nk = tp_regf_child (r, nk, part, bad);
  free (copy);
  return *bad ? 0 : nk;
}

/* Does hivex read value `val` of the written hive as tlspatch's reader
 * read record `vk` of the original (type and bytes)? A value hivex
 * cannot read (Windows' "unset" data, size 0 at offset 0xFFFFFFFF,
 * which hivex refuses) must have the same type and length fields. */
static bool
same_value (hive_h *h, hive_value_h val, const tp_regf *r, size_t vk)
{
  hive_type t;
  size_t len;
  char *data = hivex_value_value (h, val, &t, &len);
  if (!data) {
    const unsigned char *rec = r->buf + vk + TP_CELL_HEADER;
    return hivex_value_type (h, val, &t, &len) == 0 && t == tp_le32 (rec + TP_VK_TYPE) &&
           len == (tp_le32 (rec + TP_VK_DATA_SIZE) & 0x7FFFFFFF);
  }
  tp_value want = { 0 };
  bool same = tp_regf_value_data (r, vk, &want) == 0 && t == want.type && len == want.len &&
              (len == 0 || memcmp (data, want.data, len) == 0);
  tp_value_free (&want);
  free (data);
  return same;
}

/* The values of `key` no edit names: the same, in the same order, in
 * the original (tlspatch's reader) and the written hive (hivex). NULL
 * when they are, else what differs. A key the edits created has none. */
static const char *
check_others (const tp_regf *orig, hive_h *new, const char *key, const tp_regf_edit *edits,
              size_t n)
{
  hive_node_h nn;
  bool bad = false;
  size_t on = original_key (orig, key, &bad);
  r_lookup in_new = find_key (new, key, &nn);
  if (bad || in_new == R_DAMAGED)
    return "cannot be read";
  if (in_new == R_ABSENT)
    return NULL;                /* deleted: check_edit judged that */
  size_t n_old = 0;
  size_t *old = on ? tp_regf_values (orig, on, &n_old) : NULL;
  hive_value_h *vals = hivex_node_values (new, nn);
  const char *wrong = n_old == (size_t) -1 || !vals ? "has values that cannot be read" : NULL;
  size_t i = 0, j = 0;
  while (!wrong) {
    char *a = NULL, *b = NULL;  /* the next value not edited, on each side */
    for (; i < n_old && !a; i++)
      if ((a = tp_regf_value_name (orig, old[i])) && edited_name (edits, n, key, a))
        free (a), a = NULL;
    for (; vals[j] && !b; j++)
      if ((b = hivex_value_key (new, vals[j])) && edited_name (edits, n, key, b))
        free (b), b = NULL;
    if (!a && !b) {
      free (a), free (b);
      break;
    }
    if (!a || !b || strcmp (a, b) != 0)
      wrong = "has other values than before besides those changed";
    else if (!same_value (new, vals[j - 1], orig, old[i - 1]))
      wrong = "has a value not changed by the plan that differs from the original";
    free (a);
    free (b);
  }
  free (old);
  free (vals);
  return wrong;
}

/* The first edit on `key`'s values (each key is compared once). */
static bool
first_on_key (const tp_regf_edit *edits, size_t i)
{
  for (size_t j = 0; j < i; j++)
    if ((edits[j].op == TP_EDIT_SET_VALUE || edits[j].op == TP_EDIT_DELETE_VALUE) &&
        tp_regf_name_casecmp (edits[j].key, edits[i].key) == 0)
      return false;
  return true;
}

static int
judge (const tp_regf *orig, hive_h *new, const tp_regf_edit *edits, size_t n, char *why,
       size_t whylen)
{
  for (size_t i = 0; i < n; i++) {
    const tp_regf_edit *e = &edits[i];
    const char *wrong = tp_regf_edit_superseded (edits, n, i) ? NULL : check_edit (new, e);
    if (!wrong && (e->op == TP_EDIT_SET_VALUE || e->op == TP_EDIT_DELETE_VALUE) &&
        first_on_key (edits, i))
      wrong = check_others (orig, new, e->key, edits, n);
    if (wrong) {
      snprintf (why, whylen, "hivex reads key %s%s%s: it %s", e->key[0] ? e->key : "\\",
                e->name ? ", value " : "", e->name ? (e->name[0] ? e->name : "@") : "", wrong);
      return -1;
    }
  }
  return 0;
}

/* The whole tree as hivex reads it: every key's subkeys and values, and
 * each value's data cell. A dangling reference (a cell the patch freed
 * that another record still used, in a crafted hive) shows here. The
 * walk is bounded: no deeper than Windows allows, no more keys than the
 * file has room for (shared subkey lists would multiply them). */
typedef struct {
  hive_h *h;
  size_t keys, max_keys;
  char *where;                  /* the first key that cannot be read */
} walk;

static int
walk_key (walk *w, hive_node_h node, int depth)
{
  if (depth > 512 || ++w->keys > w->max_keys)
    return -1;
  hive_value_h *vals = hivex_node_values (w->h, node);
  int rc = vals ? 0 : -1;
  for (size_t i = 0; rc == 0 && vals[i]; i++) {
    size_t len;
    hive_type t;
    if (hivex_value_type (w->h, vals[i], &t, &len) != 0)
      rc = -1;
    errno = 0;                  /* 0 bytes have no cell ("unset": offset 0xFFFFFFFF) */
    if (rc == 0 && len && !hivex_value_data_cell_offset (w->h, vals[i], &len) && errno)
      rc = -1;
  }
  free (vals);
  hive_node_h *kids = rc == 0 ? hivex_node_children (w->h, node) : NULL;
  rc = kids ? 0 : -1;
  for (size_t i = 0; rc == 0 && kids[i]; i++)
    rc = walk_key (w, kids[i], depth + 1);
  free (kids);
  if (rc != 0 && !w->where)
    w->where = hivex_node_name (w->h, node);
  return rc;
}

static int
walk_all (hive_h *h, size_t file_size, const char *which, char *why, size_t whylen)
{
  walk w = { .h = h, .max_keys = file_size / 80 + 1 };   /* an nk cell takes 80 bytes or more */
  if (walk_key (&w, hivex_root (h), 0) == 0)
    return 0;
  snprintf (why, whylen, "hivex cannot read the whole %s hive (at key %s%s)", which,
            w.where ? w.where : "?", w.keys > w.max_keys ? ": more keys than it can hold" : "");
  free (w.where);
  return -1;
}

/* Whose fault: can hivex open and walk the original? */
static void
diagnose_original (const char *original, char *why, size_t whylen)
{
  struct stat st;
  hive_h *old = hivex_open (original, 0);
  if (!old)
    snprintf (why, whylen, "hivex cannot open the original hive (%s): it is damaged",
              strerror (errno));
  else if (stat (original, &st) == 0 && walk_all (old, (size_t) st.st_size, "original", why, whylen) != 0)
    snprintf (why + strlen (why), whylen - strlen (why), ": it is damaged");
  if (old)
    hivex_close (old);
}

int
tp_referee_check_written (const char *original, const tp_regf *orig, const char *written,
                          const tp_regf_edit *edits, size_t n, char *why, size_t whylen)
{
  struct stat st;
  hive_h *new = hivex_open (written, 0);
  int rc = -1;
  if (!new)
    snprintf (why, whylen, "hivex cannot open the written hive: %s", strerror (errno));
  else if (stat (written, &st) != 0)
    snprintf (why, whylen, "cannot stat the written hive: %s", strerror (errno));
  else
    rc = judge (orig, new, edits, n, why, whylen) == 0 ? 0 : -1;
  if (new)
    hivex_close (new);
  if (rc != 0)
    diagnose_original (original, why, whylen);
  return rc;
}

int
tp_referee_confirm (const char *hive, const tp_referee_seen *seen, size_t n, char *why,
                    size_t whylen)
{
  hive_h *h = hivex_open (hive, 0);
  if (!h) {
    snprintf (why, whylen, "the hive is damaged: hivex cannot open it (%s)", strerror (errno));
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *wrong = differs (h, seen[i].key, true, seen[i].name, seen[i].value, false);
    if (wrong) {
      snprintf (why, whylen, "hivex reads key %s, value %s: it %s", seen[i].key[0] ? seen[i].key : "\\",
                seen[i].name[0] ? seen[i].name : "@", wrong);
      rc = -1;
    }
  }
  hivex_close (h);
  return rc;
}
