/* tlspatch: path-addressed edits as record writes (see writer.h).
 *
 * The edits are first applied, in order, to a model of the keys they
 * reach (resolved with the reader); then the model is written out:
 * created keys as whole new subtrees in the new bin, existing keys'
 * changed value and subkey lists as new lists switched in LINK,
 * replaced values switched in place, deleted subtrees released.
 *
 * The records' fields are named in layout.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/regf.h"
#include "writer-int.h"

#define MAX_KEY_NAME 255        /* UTF-16 units */
#define MAX_VALUE_NAME 16383
#define MAX_DEPTH 512           /* Windows' limit on key nesting */

/* A value of a key the edits reach. */
typedef struct {
  tp_w_name name;
  size_t vk_off;                /* the existing record, 0 for a new value */
  const tp_value *set;          /* the new value, or NULL: unchanged */
  bool deleted;
  unsigned position;            /* a new value's place (tp_regf_edit), 0: appended */
} val_st;

/* A key the edits reach: an existing one (nk_off) or a created one. */
typedef struct key_st {
  struct key_st *parent;
  size_t nk_off;                /* 0 for a created key */
  tp_w_name name;
  bool deleted;
  struct key_st **sub;          /* keys reached below this one */
  size_t n_sub;
  bool kids_changed;            /* keys created or deleted right below */
  val_st *vals;                 /* loaded on the first value edit */
  size_t n_vals;
  bool vals_loaded;
} key_st;

/* Security records whose reference counts change. */
typedef struct {
  size_t off;
  uint32_t plus, minus;
} sk_count;

typedef struct {
  tp_w_patch *p;
  key_st *root;
  sk_count *sks;
  size_t n_sks;
} editor;

static int
oom (editor *ed)
{
  return tp_w_fail (ed->p, "%s", "out of memory");
}

/* ------------------------------------------------------------------ */
/* The model                                                          */

static void
key_free (key_st *k)
{
  for (size_t i = 0; i < k->n_sub; i++)
    key_free (k->sub[i]);
  for (size_t i = 0; i < k->n_vals; i++)
    free (k->vals[i].name.u);
  free (k->vals);
  free (k->sub);
  free (k->name.u);
  free (k);
}

static key_st *
key_add (key_st *parent, size_t nk_off, const tp_w_name *name)
{
  key_st *k = calloc (1, sizeof *k);
  key_st **more = realloc (parent->sub, (parent->n_sub + 1) * sizeof *more);
  uint16_t *u = malloc ((name->n + 1) * sizeof *u);
  if (!k || !more || !u) {
    free (k);
    free (u);
    if (more)
      parent->sub = more;
    return NULL;
  }
  memcpy (u, name->u, name->n * sizeof *u);
  *k = (key_st) { .parent = parent, .nk_off = nk_off, .name = { u, name->n } };
  parent->sub = more;
  parent->sub[parent->n_sub++] = k;
  return k;
}

/* The live child of k named `name`: one the edits reached, or one on
 * disk (then added to the model). NULL when absent or on error. */
static key_st *
child (editor *ed, key_st *k, const tp_w_name *name, int *err)
{
  for (size_t i = 0; i < k->n_sub; i++)
    if (!k->sub[i]->deleted &&
        tp_regf_name_cmp (k->sub[i]->name.u, k->sub[i]->name.n, name->u, name->n) == 0)
      return k->sub[i];
  if (!k->nk_off)
    return NULL;
  bool damaged = false;
  size_t off = tp_w_find_child (ed->p->r, k->nk_off, name, &damaged);
  if (damaged) {
    *err = tp_w_fail (ed->p, "%s", "a subkey list on the path is damaged");
    return NULL;
  }
  for (size_t i = 0; off && i < k->n_sub; i++)
    if (k->sub[i]->nk_off == off)
      return NULL;              /* deleted by an earlier edit */
  key_st *c = off ? key_add (k, off, name) : NULL;
  if (off && !c)
    *err = oom (ed);
  return c;
}

/* The key at `parts[0..n)`, or NULL (*err -1 on error). */
static key_st *
resolve (editor *ed, const tp_w_name *parts, size_t n, int *err)
{
  key_st *k = ed->root;
  for (size_t i = 0; k && i < n; i++)
    k = child (ed, k, &parts[i], err);
  return k;
}

static int
compare_vals (const void *a, const void *b)
{
  const val_st *x = *(const val_st *const *) a, *y = *(const val_st *const *) b;
  return tp_regf_name_cmp (x->name.u, x->name.n, y->name.u, y->name.n);
}

/* Two values of one name (a hostile hive): an edit could reach one and
 * miss the other, so the key is refused. */
static int
check_unique (editor *ed, const key_st *k)
{
  const val_st **sorted = calloc (k->n_vals + 1, sizeof *sorted);
  if (!sorted)
    return oom (ed);
  for (size_t i = 0; i < k->n_vals; i++)
    sorted[i] = &k->vals[i];
  if (k->n_vals)
    qsort (sorted, k->n_vals, sizeof *sorted, compare_vals);
  int rc = 0;
  for (size_t i = 1; i < k->n_vals && rc == 0; i++)
    if (compare_vals (&sorted[i - 1], &sorted[i]) == 0)
      rc = tp_w_fail (ed->p, "%s", "a key holds two values of the same name");
  free (sorted);
  return rc;
}

/* The values of an existing key, into the model. */
static int
load_values (editor *ed, key_st *k)
{
  if (k->vals_loaded)
    return 0;
  k->vals_loaded = true;
  if (!k->nk_off)
    return 0;
  size_t n;
  size_t *offs = tp_regf_values (ed->p->r, k->nk_off, &n);
  if (n == (size_t) -1)
    return tp_w_fail (ed->p, "%s", "a value list is damaged");
  k->vals = calloc (n + 1, sizeof *k->vals);
  int rc = k->vals ? 0 : oom (ed);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *utf8 = tp_regf_value_name (ed->p->r, offs[i]);
    val_st *v = &k->vals[k->n_vals];
    v->name.u = utf8 ? tp_regf_utf16_from_utf8 (utf8, &v->name.n) : NULL;
    v->vk_off = offs[i];
    free (utf8);
    if (!v->name.u)
      rc = tp_w_fail (ed->p, "%s", "a value record is damaged");
    else
      k->n_vals++;
  }
  free (offs);
  return rc == 0 ? check_unique (ed, k) : rc;
}

static val_st *
find_val (key_st *k, const tp_w_name *name)
{
  for (size_t i = 0; i < k->n_vals; i++)
    if (!k->vals[i].deleted &&
        tp_regf_name_cmp (k->vals[i].name.u, k->vals[i].name.n, name->u, name->n) == 0)
      return &k->vals[i];
  return NULL;
}

static int
set_value (editor *ed, key_st *k, const tp_w_name *name, const tp_value *v, unsigned position)
{
  if (!v || !v->present)
    return tp_w_fail (ed->p, "%s", "a value to set has no data");
  if (v->len > TP_REGF_MAX_DATA)
    return tp_w_fail (ed->p, "%s", "values over 1 MiB are not written");
  if (name->n > MAX_VALUE_NAME)
    return tp_w_fail (ed->p, "%s", "a value name is over 16383 characters");
  if (load_values (ed, k) < 0)
    return -1;
  val_st *old = find_val (k, name);
  if (old) {
    old->set = v;
    return 0;
  }
  for (size_t i = 0; i < k->n_vals; i++)   /* deleted earlier in the list: back in place */
    if (k->vals[i].deleted && k->vals[i].vk_off &&
        tp_regf_name_cmp (k->vals[i].name.u, k->vals[i].name.n, name->u, name->n) == 0) {
      k->vals[i].deleted = false;
      k->vals[i].set = v;
      return 0;
    }
  val_st *more = realloc (k->vals, (k->n_vals + 1) * sizeof *more);
  uint16_t *u = malloc ((name->n + 1) * sizeof *u);
  if (!more || !u) {
    free (u);
    if (more)
      k->vals = more;
    return oom (ed);
  }
  k->vals = more;
  memcpy (u, name->u, name->n * sizeof *u);
  k->vals[k->n_vals++] = (val_st) { .name = { u, name->n }, .set = v, .position = position };
  return 0;
}

static int
delete_value (editor *ed, key_st *k, const tp_w_name *name, const char *utf8)
{
  if (load_values (ed, k) < 0)
    return -1;
  val_st *v = find_val (k, name);
  if (!v)
    return tp_w_fail (ed->p, "value %s to delete does not exist", utf8);
  v->deleted = true;
  v->set = NULL;
  return 0;
}

/* One edit, applied to the model. */
static int
apply_edit (editor *ed, const tp_regf_edit *e)
{
  size_t n;
  tp_w_name *parts = tp_w_path (e->key ? e->key : "", &n);
  if (!parts)
    return tp_w_fail (ed->p, "invalid key path %s", e->key ? e->key : "(null)");
  int rc = 0;
  bool on_key = e->op == TP_EDIT_CREATE_KEY || e->op == TP_EDIT_DELETE_KEY;
  key_st *k = resolve (ed, parts, on_key && n ? n - 1 : n, &rc);
  tp_w_name vname = { NULL, 0 };
  if (rc == 0 && !on_key && !(vname.u = tp_regf_utf16_from_utf8 (e->name ? e->name : "", &vname.n)))
    rc = tp_w_fail (ed->p, "invalid value name in %s", e->key);
  if (rc == 0 && !k)
    rc = tp_w_fail (ed->p, on_key ? "the parent of key %s does not exist"
                                  : "key %s does not exist", e->key);
  if (rc == 0 && on_key && n == 0)
    rc = tp_w_fail (ed->p, "%s", "the root key cannot be created or deleted");
  if (rc == 0 && e->op == TP_EDIT_SET_VALUE)
    rc = set_value (ed, k, &vname, e->value, e->position);
  else if (rc == 0 && e->op == TP_EDIT_DELETE_VALUE)
    rc = delete_value (ed, k, &vname, e->name ? e->name : "");
  else if (rc == 0 && on_key) {
    key_st *c = child (ed, k, &parts[n - 1], &rc);
    if (rc == 0 && e->op == TP_EDIT_CREATE_KEY) {
      if (c)
        rc = tp_w_fail (ed->p, "key %s to create exists", e->key);
      else if (parts[n - 1].n > MAX_KEY_NAME)
        rc = tp_w_fail (ed->p, "key name %s is over 255 characters", e->key);
      else if (!key_add (k, 0, &parts[n - 1]))
        rc = oom (ed);
    } else if (rc == 0) {
      if (!c)
        rc = tp_w_fail (ed->p, "key %s to delete does not exist", e->key);
      else
        c->deleted = true;
    }
    k->kids_changed = true;
  } else if (rc == 0)
    rc = tp_w_fail (ed->p, "unknown edit on %s", e->key);
  free (vname.u);
  tp_w_path_free (parts, n);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reference counts of security records                               */

static int
sk_change (editor *ed, size_t sk_rel, int delta)
{
  size_t off = (size_t) sk_rel + TP_REGF_BINS;
  sk_count *c = NULL;
  for (size_t i = 0; i < ed->n_sks && !c; i++)
    if (ed->sks[i].off == off)
      c = &ed->sks[i];
  if (!c) {
    size_t len = tp_w_cell (ed->p, off);
    if (sk_rel == TP_REGF_NONE || len < 16 || memcmp (ed->p->buf + off + 4, "sk", 2) != 0)
      return tp_w_fail (ed->p, "%s", "a key's security record is damaged");
    sk_count *more = realloc (ed->sks, (ed->n_sks + 1) * sizeof *more);
    if (!more)
      return oom (ed);
    ed->sks = more;
    c = &ed->sks[ed->n_sks++];
    *c = (sk_count) { .off = off };
  }
  if (delta > 0)
    c->plus++;
  else
    c->minus++;
  return 0;
}

/* Counts only grow in GROW (new keys may point at the sk before the
 * parents link them); they shrink in RELEASE, when the deleted keys
 * are unlinked. An sk that reaches 0 stays where it is (writer.h). */
static int
sk_write (editor *ed)
{
  for (size_t i = 0; i < ed->n_sks; i++) {
    sk_count *c = &ed->sks[i];
    size_t field = c->off + 4 + 12;
    uint32_t count = tp_le32 (ed->p->buf + field);
    uint64_t grown = (uint64_t) count + c->plus;
    if (grown > 0xFFFFFFFFu)
      return tp_w_fail (ed->p, "%s", "a security record's reference count overflows");
    uint32_t final = c->minus > grown ? 0 : (uint32_t) (grown - c->minus);
    if (c->plus && tp_w_poke32 (ed->p, c->off, field, (uint32_t) grown, TP_PHASE_GROW) < 0)
      return -1;
    if (c->minus && tp_w_poke32_always (ed->p, c->off, field, final, TP_PHASE_RELEASE) < 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Values                                                             */

static bool
latin1 (const tp_w_name *name)
{
  for (size_t i = 0; i < name->n; i++)
    if (name->u[i] > 0xFF)
      return false;
  return true;
}

/* The name's bytes as stored (Latin-1 or UTF-16LE) into out. */
static size_t
store_name (unsigned char *out, const tp_w_name *name)
{
  bool narrow = latin1 (name);
  for (size_t i = 0; i < name->n; i++) {
    if (narrow)
      out[i] = (unsigned char) name->u[i];
    else
      tp_put16 (out + 2 * i, name->u[i]);
  }
  return narrow ? name->n : 2 * name->n;
}

/* Big data: a db record, a list of segment offsets, segments of 16344
 * bytes (the last one shorter). Returns the db's file offset, 0. */
static size_t
new_big_data (tp_w_patch *p, const tp_value *v)
{
  size_t n_seg = (v->len + TP_REGF_BIG_DATA_LIMIT - 1) / TP_REGF_BIG_DATA_LIMIT;
  size_t list = tp_w_new_cell (p, NULL, 4 * n_seg);
  for (size_t i = 0; list && i < n_seg; i++) {
    size_t start = i * TP_REGF_BIG_DATA_LIMIT;
    size_t len = v->len - start < TP_REGF_BIG_DATA_LIMIT ? v->len - start
                                                         : TP_REGF_BIG_DATA_LIMIT;
    size_t seg = tp_w_new_cell (p, v->data + start, len);
    if (!seg)
      return 0;
    tp_put32 (tp_w_new_payload (p, list) + 4 * i, (uint32_t) (seg - TP_REGF_BINS));
  }
  unsigned char db[8] = "db";
  tp_put16 (db + TP_DB_SEGMENTS, (uint16_t) n_seg);
  tp_put32 (db + TP_DB_SEGMENT_LIST, (uint32_t) (list - TP_REGF_BINS));
  return list ? tp_w_new_cell (p, db, sizeof db) : 0;
}

/* Store a value's data: the vk's size and offset fields. */
static int
new_data (tp_w_patch *p, const tp_value *v, uint32_t *size, uint32_t *off)
{
  if (v->len <= 4) {            /* empty data too: inline, size 0, as hivex reads it */
    unsigned char inline_data[4] = { 0 };
    if (v->len)                 /* no data pointer for empty data */
      memcpy (inline_data, v->data, v->len);
    *size = (uint32_t) v->len | 0x80000000u;
    *off = tp_le32 (inline_data);
    return 0;
  }
  bool big = p->minor >= 4 && v->len > TP_REGF_BIG_DATA_LIMIT;
  size_t cell = big ? new_big_data (p, v) : tp_w_new_cell (p, v->data, v->len);
  if (!cell)
    return tp_w_fail (p, "%s", "out of memory");
  *size = (uint32_t) v->len;
  *off = (uint32_t) (cell - TP_REGF_BINS);
  return 0;
}

/* Release an existing value's data: its cell, or its db record with
 * the segment list and segments. Inline and unset data hold no cell. */
static int
free_data (tp_w_patch *p, const unsigned char *vk)
{
  uint32_t size = tp_le32 (vk + TP_VK_DATA_SIZE), rel = tp_le32 (vk + TP_VK_DATA);
  if ((size & 0x80000000u) || size == 0 || rel == TP_REGF_NONE)
    return 0;
  size_t off = (size_t) rel + TP_REGF_BINS, len = tp_w_cell (p, off);
  const unsigned char *db = p->buf + off + 4;
  if (len && p->minor >= 4 && size > TP_REGF_BIG_DATA_LIMIT && len >= 8 &&
      memcmp (db, "db", 2) == 0) {
    size_t n_seg = tp_le16 (db + TP_DB_SEGMENTS), list = (size_t) tp_le32 (db + TP_DB_SEGMENT_LIST) + TP_REGF_BINS;
    if (tp_w_cell (p, list) / 4 < n_seg)
      return tp_w_fail (p, "%s", "a big-data segment list is damaged");
    for (size_t i = 0; i < n_seg; i++)
      if (tp_w_free (p, (size_t) tp_le32 (p->buf + list + 4 + 4 * i) + TP_REGF_BINS) < 0)
        return -1;
    if (tp_w_free (p, list) < 0)
      return -1;
  }
  return tp_w_free (p, off) < 0 ? -1 : 0;
}

/* A new vk record; its file offset, 0 on error. */
static size_t
new_vk (tp_w_patch *p, const val_st *v)
{
  unsigned char *vk = calloc (1, TP_VK_FIXED + 2 * v->name.n);
  if (!vk) {
    tp_w_fail (p, "%s", "out of memory");
    return 0;
  }
  uint32_t size, data;
  size_t name_len = store_name (vk + TP_VK_FIXED, &v->name);
  memcpy (vk, "vk", 2);
  tp_put16 (vk + TP_VK_NAME_LENGTH, (uint16_t) name_len);
  tp_put32 (vk + TP_VK_TYPE, v->set->type);
  tp_put16 (vk + TP_VK_FLAGS, name_len && latin1 (&v->name) ? TP_VK_COMP_NAME : 0);
  size_t off = 0;
  if (new_data (p, v->set, &size, &data) == 0) {
    tp_put32 (vk + TP_VK_DATA_SIZE, size);
    tp_put32 (vk + TP_VK_DATA, data);
    if (!(off = tp_w_new_cell (p, vk, TP_VK_FIXED + name_len)))
      tp_w_fail (p, "%s", "out of memory");
  }
  free (vk);
  return off;
}

/* An existing value switched to new data in place (its size, offset
 * and type in one LINK change); the old data released. */
static int
replace_vk (tp_w_patch *p, size_t vk_off, const tp_value *v)
{
  size_t len = tp_w_cell (p, vk_off);
  const unsigned char *vk = p->buf + vk_off + 4;
  uint32_t size, data;
  if (len < TP_VK_FIXED || memcmp (vk, "vk", 2) != 0)
    return tp_w_fail (p, "%s", "a value record is damaged");
  if (free_data (p, vk) < 0 || new_data (p, v, &size, &data) < 0)
    return -1;
  if (tp_w_poke32 (p, vk_off, vk_off + TP_CELL_HEADER + TP_VK_DATA_SIZE, size, TP_PHASE_LINK) < 0 ||
      tp_w_poke32 (p, vk_off, vk_off + TP_CELL_HEADER + TP_VK_DATA, data, TP_PHASE_LINK) < 0 ||
      tp_w_poke32 (p, vk_off, vk_off + TP_CELL_HEADER + TP_VK_TYPE, v->type, TP_PHASE_LINK) < 0)
    return -1;
  return 0;
}

static int
release_vk (tp_w_patch *p, size_t vk_off)
{
  size_t len = tp_w_cell (p, vk_off);
  if (len < TP_VK_FIXED || memcmp (p->buf + vk_off + 4, "vk", 2) != 0)
    return tp_w_fail (p, "%s", "a value record is damaged");
  return free_data (p, p->buf + vk_off + 4) < 0 || tp_w_free (p, vk_off) < 0 ? -1 : 0;
}

/* The hints a key's values need: max name (UTF-16 bytes), max data. */
static void
value_hints (const key_st *k, uint32_t *name, uint32_t *data)
{
  for (size_t i = 0; i < k->n_vals; i++)
    if (k->vals[i].set && !k->vals[i].deleted) {
      uint32_t nb = 2 * (uint32_t) k->vals[i].name.n;
      *name = nb > *name ? nb : *name;
      *data = k->vals[i].set->len > *data ? (uint32_t) k->vals[i].set->len : *data;
    }
}

/* A placed value: its position, and its index in the key's model. */
typedef struct {
  unsigned position;
  size_t index;
} placed;

static int
compare_placed (const void *a, const void *b)
{
  const placed *x = a, *y = b;
  if (x->position != y->position)
    return x->position < y->position ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* The order of a key's new value list, as indexes into k->vals (room
 * for k->n_vals): the values kept or appended in their order, then
 * each placed value inserted at its position, the smallest first.
 * Returns the count, or (size_t) -1 when out of memory. */
static size_t
value_order (const key_st *k, size_t *order)
{
  placed *pl = calloc (k->n_vals + 1, sizeof *pl);
  if (!pl)
    return (size_t) -1;
  size_t n = 0, n_pl = 0;
  for (size_t i = 0; i < k->n_vals; i++) {
    if (k->vals[i].deleted)
      continue;
    if (k->vals[i].position && !k->vals[i].vk_off)
      pl[n_pl++] = (placed) { k->vals[i].position, i };
    else
      order[n++] = i;
  }
  qsort (pl, n_pl, sizeof *pl, compare_placed);
  for (size_t j = 0; j < n_pl; j++) {
    size_t at = pl[j].position - 1 < n ? pl[j].position - 1 : n;
    memmove (order + at + 1, order + at, (n - at) * sizeof *order);
    order[at] = pl[j].index;
    n++;
  }
  free (pl);
  return n;
}

/* The values of a created key: their records and list (file offset of
 * the list, 0 when there are none; -1 on error). */
static int
new_values (tp_w_patch *p, const key_st *k, uint32_t *count, uint32_t *list)
{
  uint32_t *offs = calloc (k->n_vals + 1, sizeof *offs);
  size_t *order = calloc (k->n_vals + 1, sizeof *order);
  size_t n = offs && order ? value_order (k, order) : (size_t) -1;
  int rc = n == (size_t) -1 ? tp_w_fail (p, "%s", "out of memory") : 0;
  *count = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t vk = new_vk (p, &k->vals[order[i]]);
    if (!vk)
      rc = -1;
    else
      tp_put32 ((unsigned char *) &offs[(*count)++], (uint32_t) (vk - TP_REGF_BINS));
  }
  size_t cell = rc == 0 && *count ? tp_w_new_cell (p, offs, 4 * *count) : 0;
  free (offs);
  free (order);
  if (rc == 0 && *count && !cell)
    rc = tp_w_fail (p, "%s", "out of memory");
  *list = *count ? (uint32_t) (cell - TP_REGF_BINS) : TP_REGF_NONE;
  return rc;
}

/* An existing key's new value records and list entries (`offs`, in the
 * list's order): replaced values switched in place, new ones written,
 * deleted ones released. *relist: the list itself changes. */
static int
value_records (tp_w_patch *p, const key_st *k, uint32_t *offs, uint32_t *count, bool *relist)
{
  size_t *order = calloc (k->n_vals + 1, sizeof *order);
  size_t n = order ? value_order (k, order) : (size_t) -1;
  if (n == (size_t) -1) {
    free (order);
    return tp_w_fail (p, "%s", "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < k->n_vals; i++)
    if (k->vals[i].deleted && k->vals[i].vk_off) {
      *relist = true;
      rc = release_vk (p, k->vals[i].vk_off);
    }
  *count = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const val_st *v = &k->vals[order[i]];
    size_t off = v->vk_off;
    if (off && v->set)
      rc = replace_vk (p, off, v->set);
    else if (!off) {
      *relist = true;
      off = new_vk (p, v);
      rc = off ? 0 : -1;
    }
    tp_put32 ((unsigned char *) &offs[(*count)++], (uint32_t) (off - TP_REGF_BINS));
  }
  free (order);
  return rc;
}

/* An existing key's value edits: replaced values switched in place,
 * added or deleted ones through a new list. */
static int
edit_values (tp_w_patch *p, const key_st *k)
{
  const unsigned char *nk = p->buf + k->nk_off + 4;
  uint32_t old_count = tp_le32 (nk + TP_NK_VALUE_COUNT), old_list = tp_le32 (nk + TP_NK_VALUE_LIST);
  uint32_t max_name = tp_le32 (nk + TP_NK_MAX_VALUE_NAME), max_data = tp_le32 (nk + TP_NK_MAX_VALUE_DATA);
  uint32_t *offs = calloc (k->n_vals + 1, sizeof *offs);
  if (!offs)
    return tp_w_fail (p, "%s", "out of memory");
  bool relist = false;
  uint32_t count = 0;
  int rc = value_records (p, k, offs, &count, &relist);
  if (rc == 0 && relist) {
    size_t cell = count ? tp_w_new_cell (p, offs, 4 * (size_t) count) : 0;
    if (count && !cell)
      rc = tp_w_fail (p, "%s", "out of memory");
    else if ((old_count && tp_w_free (p, (size_t) old_list + TP_REGF_BINS) < 0) ||
             tp_w_poke32 (p, k->nk_off, k->nk_off + TP_CELL_HEADER + TP_NK_VALUE_COUNT, count, TP_PHASE_LINK) < 0 ||
             tp_w_poke32 (p, k->nk_off, k->nk_off + TP_CELL_HEADER + TP_NK_VALUE_LIST,
                          count ? (uint32_t) (cell - TP_REGF_BINS) : TP_REGF_NONE, TP_PHASE_LINK) < 0)
      rc = -1;
  }
  free (offs);
  value_hints (k, &max_name, &max_data);
  size_t at = k->nk_off + 4;
  bool changed = relist;
  for (size_t i = 0; i < k->n_vals; i++)
    changed = changed || k->vals[i].set;
  if (rc == 0 && (tp_w_poke32 (p, k->nk_off, at + TP_NK_MAX_VALUE_NAME, max_name, TP_PHASE_GROW) < 0 ||
                  tp_w_poke32 (p, k->nk_off, at + TP_NK_MAX_VALUE_DATA, max_data, TP_PHASE_GROW) < 0))
    rc = -1;
  /* the key's last-written time, as Windows sets it on a value change */
  if (rc == 0 && changed &&
      (tp_w_poke32 (p, k->nk_off, at + TP_NK_LAST_WRITTEN, (uint32_t) p->now, TP_PHASE_GROW) < 0 ||
       tp_w_poke32 (p, k->nk_off, at + TP_NK_LAST_WRITTEN + 4, (uint32_t) (p->now >> 32), TP_PHASE_GROW) < 0))
    rc = -1;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Subkey lists                                                       */

/* One entry of a subkey list being built. */
typedef struct {
  uint32_t rel;                 /* the nk's offset */
  tp_w_name name;               /* borrowed */
  bool kept;                    /* from the old list: its hint is kept */
  uint32_t hint;
} list_entry;

static int
compare_entries (const void *a, const void *b)
{
  const list_entry *x = a, *y = b;
  return tp_regf_name_cmp (x->name.u, x->name.n, y->name.u, y->name.n);
}

/* lh: h = 37 * h + uppercased code unit; lf: the first 4 characters as
 * Latin-1 (a first byte 0 when one is not). */
static uint32_t
name_hint (const tp_w_name *name, bool hash)
{
  uint32_t h = 0;
  unsigned char first4[4] = { 0 };
  for (size_t i = 0; i < name->n; i++) {
    uint16_t c = tp_regf_upcase (name->u[i]);
    h = 37 * h + c;
    if (i < 4)
      first4[i] = name->u[i] < 0x100 ? (unsigned char) name->u[i] : 0;
  }
  if (!hash && !latin1 (name))
    first4[0] = 0;
  return hash ? h : tp_le32 (first4);
}

/* A leaf of `type` ("lh", "lf", "li") holding entries[0..n). */
static size_t
new_leaf (tp_w_patch *p, const char *type, const list_entry *e, size_t n)
{
  bool hinted = type[1] != 'i';
  size_t step = hinted ? 8 : 4;
  size_t cell = tp_w_new_cell (p, NULL, 4 + step * n);
  if (!cell)
    return 0;
  unsigned char *l = tp_w_new_payload (p, cell);
  memcpy (l, type, 2);
  tp_put16 (l + 2, (uint16_t) n);
  for (size_t i = 0; i < n; i++) {
    tp_put32 (l + 4 + step * i, e[i].rel);
    if (hinted)
      tp_put32 (l + 8 + step * i, e[i].kept ? e[i].hint : name_hint (&e[i].name, type[1] == 'h'));
  }
  return cell;
}

/* A list of entries in their order: one leaf, or an ri of leaves of at
 * most TP_REGF_LEAF_LIMIT entries (when `ri` or longer than that). */
static size_t
new_list (tp_w_patch *p, const char *type, bool ri, const list_entry *e, size_t n)
{
  if (!ri && n <= TP_REGF_LEAF_LIMIT)
    return new_leaf (p, type, e, n);
  size_t leaves = (n + TP_REGF_LEAF_LIMIT - 1) / TP_REGF_LEAF_LIMIT;
  uint32_t *offs = calloc (leaves + 1, sizeof *offs);
  size_t done = 0, root = 0;
  for (size_t i = 0; offs && i < leaves; i++) {
    size_t take = (n - done) / (leaves - i);       /* even leaves */
    size_t leaf = new_leaf (p, type, e + done, take);
    if (!leaf)
      break;
    tp_put32 ((unsigned char *) &offs[i], (uint32_t) (leaf - TP_REGF_BINS));
    done += take;
  }
  if (offs && done == n && (root = tp_w_new_cell (p, NULL, 4 + 4 * leaves))) {
    unsigned char *r = tp_w_new_payload (p, root);
    memcpy (r, "ri", 2);
    tp_put16 (r + 2, (uint16_t) leaves);
    memcpy (r + 4, offs, 4 * leaves);
  }
  free (offs);
  return root;
}

/* The cells of an existing subkey list (an ri's leaves too), each
 * element's nk passed to `each` when given; `release` frees the list
 * cells. -1 when damaged. */
static int
walk_list (editor *ed, size_t off, bool in_ri, int depth, int (*each) (editor *, size_t, int),
           bool release)
{
  tp_w_patch *p = ed->p;
  size_t len = tp_w_cell (p, off), n, step;
  const unsigned char *l = p->buf + off + TP_CELL_HEADER;
  bool ri;
  if (!len || tp_regf_list_shape (l, len, &n, &step, &ri) < 0 || (ri && in_ri))
    return tp_w_fail (p, "%s", "a subkey list is damaged");
  for (size_t i = 0; i < n; i++) {
    size_t elem = (size_t) tp_le32 (l + TP_LIST_ITEMS + i * step) + TP_REGF_BINS;
    int rc = ri ? walk_list (ed, elem, true, depth, each, release)
                : each ? each (ed, elem, depth) : 0;
    if (rc < 0)
      return -1;
  }
  return release && tp_w_free (p, off) < 0 ? -1 : 0;
}

/* Release an existing key and everything below it. */
static int
release_key (editor *ed, size_t nk_off, int depth)
{
  tp_w_patch *p = ed->p;
  size_t len = tp_w_cell (p, nk_off);
  const unsigned char *nk = p->buf + nk_off + 4;
  if (len < TP_NK_FIXED || memcmp (nk, "nk", 2) != 0)
    return tp_w_fail (p, "%s", "a key record to delete is damaged");
  if (depth > MAX_DEPTH)
    return tp_w_fail (p, "%s", "the keys to delete nest too deep");
  int freed = tp_w_free (p, nk_off);
  if (freed != 0)               /* met twice: a loop in the hive */
    return freed < 0 ? -1 : tp_w_fail (p, "%s", "a key to delete is listed twice");
  if (tp_le32 (nk + TP_NK_SUBKEY_COUNT) && walk_list (ed, (size_t) tp_le32 (nk + TP_NK_SUBKEY_LIST) + TP_REGF_BINS, false,
                                      depth + 1, release_key, true) < 0)
    return -1;
  uint32_t n_vals = tp_le32 (nk + TP_NK_VALUE_COUNT);
  size_t list = (size_t) tp_le32 (nk + TP_NK_VALUE_LIST) + TP_REGF_BINS;
  if (n_vals && tp_w_cell (p, list) / 4 < n_vals)
    return tp_w_fail (p, "%s", "a value list to delete is damaged");
  for (uint32_t i = 0; i < n_vals; i++)
    if (release_vk (p, (size_t) tp_le32 (p->buf + list + 4 + 4 * i) + TP_REGF_BINS) < 0)
      return -1;
  if (n_vals && tp_w_free (p, list) < 0)
    return -1;
  uint32_t class_off = tp_le32 (nk + TP_NK_CLASS);
  if (class_off != TP_REGF_NONE && tp_le16 (nk + TP_NK_CLASS_LENGTH) && tp_w_free (p, (size_t) class_off + TP_REGF_BINS) < 0)
    return -1;
  return sk_change (ed, tp_le32 (nk + TP_NK_SECURITY), -1);
}

static int emit_new_key (editor *ed, key_st *k, size_t parent, uint32_t sk, size_t *out);

/* The list type an existing key's rebuilt list keeps: its own (an ri's
 * leaves'), or by hive version for a key that had none. */
static int
list_type (editor *ed, const unsigned char *nk, char type[3], bool *ri)
{
  tp_w_patch *p = ed->p;
  strcpy (type, p->minor >= 5 ? "lh" : p->minor >= 3 ? "lf" : "li");
  *ri = false;
  if (tp_le32 (nk + TP_NK_SUBKEY_COUNT) == 0)
    return 0;
  size_t off = (size_t) tp_le32 (nk + TP_NK_SUBKEY_LIST) + TP_REGF_BINS, len = tp_w_cell (p, off);
  if (len >= 8 && memcmp (p->buf + off + 4, "ri", 2) == 0) {
    *ri = true;
    off = (size_t) tp_le32 (p->buf + off + 8) + TP_REGF_BINS;
    len = tp_w_cell (p, off);
  }
  if (len < 4)
    return tp_w_fail (p, "%s", "a subkey list is damaged");
  const unsigned char *l = p->buf + off + 4;
  if (memcmp (l, "lh", 2) != 0 && memcmp (l, "lf", 2) != 0 && memcmp (l, "li", 2) != 0)
    return tp_w_fail (p, "%s", "a subkey list is damaged");
  memcpy (type, l, 2);
  return 0;
}

/* The elements of an existing subkey list in order (an ri's leaves
 * flattened), with their hints (lf, lh), at most `max` of them. */
static int
old_elements (tp_w_patch *p, size_t off, bool in_ri, list_entry *out, size_t *n, size_t max)
{
  size_t len = tp_w_cell (p, off), count, step;
  const unsigned char *l = p->buf + off + TP_CELL_HEADER;
  bool ri;
  if (!len || tp_regf_list_shape (l, len, &count, &step, &ri) < 0 || (ri && in_ri))
    return tp_w_fail (p, "%s", "a subkey list is damaged");
  for (size_t i = 0; i < count; i++) {
    uint32_t rel = tp_le32 (l + TP_LIST_ITEMS + i * step);
    if (ri && old_elements (p, (size_t) rel + TP_REGF_BINS, true, out, n, max) < 0)
      return -1;
    if (ri)
      continue;
    if (*n == max)
      return tp_w_fail (p, "%s", "a subkey list is longer than its key's count");
    out[(*n)++] = (list_entry) { .rel = rel, .kept = true,
                                 .hint = step == TP_LIST_HASHED_ITEM
                                         ? tp_le32 (l + TP_LIST_ITEMS + 4 + i * step) : 0 };
  }
  return 0;
}

static int
compare_names (const void *a, const void *b)
{
  const tp_w_name *x = *(const tp_w_name *const *) a, *y = *(const tp_w_name *const *) b;
  return tp_regf_name_cmp (x->u, x->n, y->u, y->n);
}

/* The names of a list's old entries (into names[] and the entries);
 * two of one name (a hostile hive, in any order) are refused: the
 * edit could reach one and its verification the other. */
static int
old_names (tp_w_patch *p, list_entry *e, tp_w_name *names, size_t n)
{
  const tp_w_name **sorted = calloc (n + 1, sizeof *sorted);
  int rc = sorted ? 0 : tp_w_fail (p, "%s", "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *utf8 = tp_regf_key_name (p->r, (size_t) e[i].rel + TP_REGF_BINS);
    names[i].u = utf8 ? tp_regf_utf16_from_utf8 (utf8, &names[i].n) : NULL;
    free (utf8);
    if (!names[i].u)
      rc = tp_w_fail (p, "%s", "a key name is damaged");
    e[i].name = names[i];
    sorted[i] = &names[i];
  }
  if (rc == 0 && n)
    qsort (sorted, n, sizeof *sorted, compare_names);
  for (size_t i = 1; rc == 0 && i < n; i++)
    if (compare_names (&sorted[i - 1], &sorted[i]) == 0)
      rc = tp_w_fail (p, "%s", "a key holds two subkeys of the same name");
  free (sorted);
  return rc;
}

/* New entries e[n_old..n) put in order among the old ones e[0..n_old)
 * (whose order stays as Windows left it). */
static int
merge_new (tp_w_patch *p, list_entry *e, size_t n_old, size_t n)
{
  if (n > n_old)
    qsort (e + n_old, n - n_old, sizeof *e, compare_entries);
  list_entry *m = calloc (n + 1, sizeof *m);
  if (!m)
    return tp_w_fail (p, "%s", "out of memory");
  for (size_t i = 0, j = n_old, k = 0; k < n; k++)
    m[k] = j < n && (i == n_old || compare_entries (&e[j], &e[i]) < 0) ? e[j++] : e[i++];
  memcpy (e, m, n * sizeof *e);
  free (m);
  return 0;
}

/* The entries of an existing key's new subkey list: its children on
 * disk but those deleted (released here), then its created ones, in
 * order. Names land in names[] (the caller frees them). */
static int
collect_kids (editor *ed, key_st *k, const unsigned char *nk, list_entry **out, size_t *n,
              tp_w_name **names)
{
  tp_w_patch *p = ed->p;
  size_t count = tp_le32 (nk + TP_NK_SUBKEY_COUNT), n_disk = 0;
  if (count > 0x100000)
    return tp_w_fail (p, "%s", "a subkey count is damaged");
  *out = calloc (count + k->n_sub + 1, sizeof **out);
  *names = calloc (count + 1, sizeof **names);
  if (!*out || !*names)
    return tp_w_fail (p, "%s", "out of memory");
  if (count && old_elements (p, (size_t) tp_le32 (nk + TP_NK_SUBKEY_LIST) + TP_REGF_BINS, false, *out, &n_disk, count) < 0)
    return -1;
  if (old_names (p, *out, *names, n_disk) < 0)
    return -1;
  for (size_t i = 0; i < n_disk; i++) {
    size_t off = (size_t) (*out)[i].rel + TP_REGF_BINS;
    bool gone = false;
    for (size_t s = 0; s < k->n_sub; s++)
      gone = gone || (k->sub[s]->nk_off == off && k->sub[s]->deleted);
    if (gone && release_key (ed, off, 0) < 0)
      return -1;
    if (!gone)
      (*out)[(*n)++] = (*out)[i];
  }
  size_t n_old = *n;
  for (size_t s = 0; s < k->n_sub; s++) {
    size_t off;
    key_st *c = k->sub[s];
    if (c->nk_off || c->deleted)
      continue;
    if (emit_new_key (ed, c, k->nk_off, tp_le32 (nk + TP_NK_SECURITY), &off) < 0)
      return -1;
    (*out)[(*n)++] = (list_entry) { .rel = (uint32_t) (off - TP_REGF_BINS), .name = c->name };
  }
  return merge_new (p, *out, n_old, *n);
}

/* An existing key whose subkeys come or go: a new list, switched with
 * the count in LINK, the old list released; hints and time in GROW. */
static int
edit_subkeys (editor *ed, key_st *k)
{
  tp_w_patch *p = ed->p;
  size_t at = k->nk_off + 4;
  const unsigned char *nk = p->buf + at;
  char type[3];
  bool ri;
  list_entry *e = NULL;
  tp_w_name *names = NULL;
  size_t n = 0, list = 0, n_names = tp_le32 (nk + TP_NK_SUBKEY_COUNT);
  uint32_t max_sub = tp_le32 (nk + TP_NK_MAX_SUBKEY_NAME);
  int rc = list_type (ed, nk, type, &ri);
  if (rc == 0)
    rc = collect_kids (ed, k, nk, &e, &n, &names);
  if (rc == 0 && n && !(list = new_list (p, type, ri, e, n)))
    rc = tp_w_fail (p, "%s", "out of memory");
  for (size_t s = 0; s < k->n_sub; s++)
    if (!k->sub[s]->nk_off && !k->sub[s]->deleted && 2 * k->sub[s]->name.n > (max_sub & 0xFFFF))
      max_sub = (max_sub & 0xFFFF0000u) | (uint32_t) (2 * k->sub[s]->name.n);
  if (rc == 0 && tp_le32 (nk + TP_NK_SUBKEY_COUNT))
    rc = walk_list (ed, (size_t) tp_le32 (nk + TP_NK_SUBKEY_LIST) + TP_REGF_BINS, false, 0, NULL, true);
  if (rc == 0 && (tp_w_poke32 (p, k->nk_off, at + TP_NK_MAX_SUBKEY_NAME, max_sub, TP_PHASE_GROW) < 0 ||
                  tp_w_poke32 (p, k->nk_off, at + TP_NK_LAST_WRITTEN, (uint32_t) p->now, TP_PHASE_GROW) < 0 ||
                  tp_w_poke32 (p, k->nk_off, at + TP_NK_LAST_WRITTEN + 4, (uint32_t) (p->now >> 32), TP_PHASE_GROW) < 0 ||
                  tp_w_poke32 (p, k->nk_off, at + TP_NK_SUBKEY_COUNT, (uint32_t) n, TP_PHASE_LINK) < 0 ||
                  tp_w_poke32 (p, k->nk_off, at + TP_NK_SUBKEY_LIST, n ? (uint32_t) (list - TP_REGF_BINS) : TP_REGF_NONE,
                               TP_PHASE_LINK) < 0))
    rc = -1;
  for (size_t i = 0; names && i < n_names; i++)
    free (names[i].u);
  free (names);
  free (e);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Created keys                                                       */

/* The subkeys of a created key (all created too): their list. */
static int
new_subkeys (editor *ed, key_st *k, size_t self, uint32_t sk, uint32_t *count,
             uint32_t *list, uint32_t *max_sub)
{
  tp_w_patch *p = ed->p;
  list_entry *e = calloc (k->n_sub + 1, sizeof *e);
  if (!e)
    return tp_w_fail (p, "%s", "out of memory");
  size_t n = 0;
  int rc = 0;
  for (size_t s = 0; rc == 0 && s < k->n_sub; s++) {
    size_t off;
    key_st *c = k->sub[s];
    if (c->deleted)
      continue;
    rc = emit_new_key (ed, c, self, sk, &off);
    e[n++] = (list_entry) { .rel = (uint32_t) (off - TP_REGF_BINS), .name = c->name };
    *max_sub = 2 * c->name.n > *max_sub ? 2 * (uint32_t) c->name.n : *max_sub;
  }
  size_t cell = 0;
  if (rc == 0 && n)
    qsort (e, n, sizeof *e, compare_entries);
  if (rc == 0 && n && !(cell = new_list (p, p->minor >= 5 ? "lh" : p->minor >= 3 ? "lf" : "li",
                                         false, e, n)))
    rc = tp_w_fail (p, "%s", "out of memory");
  *count = (uint32_t) n;
  *list = n ? (uint32_t) (cell - TP_REGF_BINS) : TP_REGF_NONE;
  free (e);
  return rc;
}

/* A created key with its values and created subkeys, all in the new
 * bin; its file offset in *out. */
static int
emit_new_key (editor *ed, key_st *k, size_t parent, uint32_t sk, size_t *out)
{
  tp_w_patch *p = ed->p;
  unsigned char name[2 * MAX_KEY_NAME];
  size_t name_len = store_name (name, &k->name);
  size_t self = tp_w_new_cell (p, NULL, TP_NK_FIXED + name_len);
  if (!self)
    return tp_w_fail (p, "%s", "out of memory");
  *out = self;
  uint32_t n_vals = 0, vals = TP_REGF_NONE, n_sub = 0, subs = TP_REGF_NONE, max_sub = 0, max_name = 0, max_data = 0;
  if (new_values (p, k, &n_vals, &vals) < 0 ||
      new_subkeys (ed, k, self, sk, &n_sub, &subs, &max_sub) < 0 || sk_change (ed, sk, 1) < 0)
    return -1;
  value_hints (k, &max_name, &max_data);
  unsigned char *nk = tp_w_new_payload (p, self);
  memcpy (nk, "nk", 2);
  tp_put16 (nk + TP_NK_FLAGS, latin1 (&k->name) ? TP_NK_COMP_NAME : 0);
  tp_put64 (nk + TP_NK_LAST_WRITTEN, p->now);
  tp_put32 (nk + TP_NK_PARENT, (uint32_t) (parent - TP_REGF_BINS));
  tp_put32 (nk + TP_NK_SUBKEY_COUNT, n_sub);
  tp_put32 (nk + TP_NK_SUBKEY_LIST, subs);
  tp_put32 (nk + TP_NK_VOLATILE_LIST, TP_REGF_NONE);             /* volatile subkeys: none on disk */
  tp_put32 (nk + TP_NK_VALUE_COUNT, n_vals);
  tp_put32 (nk + TP_NK_VALUE_LIST, vals);
  tp_put32 (nk + TP_NK_SECURITY, sk);
  tp_put32 (nk + TP_NK_CLASS, TP_REGF_NONE);             /* no class name */
  tp_put32 (nk + TP_NK_MAX_SUBKEY_NAME, max_sub);
  tp_put32 (nk + TP_NK_MAX_VALUE_NAME, max_name);
  tp_put32 (nk + TP_NK_MAX_VALUE_DATA, max_data);
  tp_put16 (nk + TP_NK_NAME_LENGTH, (uint16_t) name_len);
  memcpy (nk + TP_NK_FIXED, name, name_len);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Writing the model out                                              */

/* An existing key and the keys reached below it. */
static int
emit_key (editor *ed, key_st *k)
{
  tp_w_patch *p = ed->p;
  size_t len = tp_w_cell (p, k->nk_off);
  if (len < TP_NK_FIXED || memcmp (p->buf + k->nk_off + 4, "nk", 2) != 0)
    return tp_w_fail (p, "%s", "a key record is damaged");
  if (k->vals_loaded && edit_values (p, k) < 0)
    return -1;
  if (k->kids_changed && edit_subkeys (ed, k) < 0)
    return -1;
  for (size_t s = 0; s < k->n_sub; s++)
    if (k->sub[s]->nk_off && !k->sub[s]->deleted && emit_key (ed, k->sub[s]) < 0)
      return -1;
  return 0;
}

int
tp_w_plan (tp_w_patch *p, const tp_regf_edit *edits, size_t n)
{
  editor ed = { .p = p, .root = calloc (1, sizeof (key_st)) };
  if (!ed.root)
    return tp_w_fail (p, "%s", "out of memory");
  ed.root->nk_off = tp_regf_root (p->r);
  int rc = ed.root->nk_off ? 0 : tp_w_fail (p, "%s", "the root key is damaged");
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = apply_edit (&ed, &edits[i]);
  if (rc == 0)
    rc = emit_key (&ed, ed.root);
  if (rc == 0)
    rc = sk_write (&ed);
  key_free (ed.root);
  free (ed.sks);
  return rc;
}
