/* tlspatch: lazy, bounds-checked regf reader (see reader.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/reader.h"
#include "tlspatch/regf.h"

#define MAX_LIST 0x100000u      /* far above Windows' limits; bounds hostile counts */

const unsigned char *
tp_regf_cell (const tp_regf *r, size_t off, size_t *len)
{
  size_t end = tp_regf_cells_end (r);
  if (off < TP_REGF_BINS || off % TP_CELL_ALIGN != 0 || off > end || end - off < 8 ||
      !tp_regf_load (r, off, TP_CELL_HEADER))
    return NULL;
  int32_t raw = (int32_t) tp_le32 (r->buf + off);
  if (raw >= 0)
    return NULL;
  size_t size = (size_t) -(int64_t) raw;
  if (size < 8 || size > end - off || !tp_regf_load (r, off, size))
    return NULL;
  *len = size - TP_CELL_HEADER;
  return r->buf + off + TP_CELL_HEADER;
}


/* A record of a given signature, at least `min` bytes long. */
static const unsigned char *
record (const tp_regf *r, size_t off, const char *sig, size_t min, size_t *len)
{
  const unsigned char *p = tp_regf_cell (r, off, len);
  return p && *len >= min && memcmp (p, sig, 2) == 0 ? p : NULL;
}

static size_t
rel (uint32_t offset)
{
  return offset == TP_REGF_NONE ? 0 : (size_t) offset + TP_REGF_BINS;
}

size_t
tp_regf_root (const tp_regf *r)
{
  size_t len;
  if (r->size < TP_REGF_BINS || !tp_regf_load (r, 0, TP_REGF_BINS))
    return 0;
  size_t root = rel (tp_le32 (r->buf + TP_BB_ROOT));
  return record (r, root, "nk", TP_NK_FIXED, &len) ? root : 0;
}

char *
tp_regf_key_name (const tp_regf *r, size_t nk)
{
  size_t len;
  const unsigned char *k = record (r, nk, "nk", TP_NK_FIXED, &len);
  size_t bytes = k ? tp_le16 (k + TP_NK_NAME_LENGTH) : 0;
  bool latin1 = k && (tp_le16 (k + TP_NK_FLAGS) & TP_NK_COMP_NAME);
  /* A hostile hive's 65,535-character names would make every lookup
   * convert megabytes: longer than Windows allows is damage. */
  if (!k || bytes > len - TP_NK_FIXED || bytes > TP_NK_MAX_NAME_CHARS * (latin1 ? 1u : 2u))
    return NULL;
  return tp_regf_name_to_utf8 (k + TP_NK_NAME, bytes, latin1);
}

char *
tp_regf_value_name (const tp_regf *r, size_t vk)
{
  size_t len;
  const unsigned char *v = record (r, vk, "vk", TP_VK_FIXED, &len);
  if (!v || (size_t) tp_le16 (v + TP_VK_NAME_LENGTH) > len - TP_VK_FIXED)
    return NULL;
  return tp_regf_name_to_utf8 (v + TP_VK_NAME, tp_le16 (v + TP_VK_NAME_LENGTH),
                               tp_le16 (v + TP_VK_FLAGS) & TP_VK_COMP_NAME);
}

static int
cmp_offset (const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
  return x < y ? -1 : x > y;
}

/* Does an ri name one leaf twice (Windows never does; a hostile hive
 * multiplies a lookup's work so)? */
static bool
ri_repeats (const unsigned char *ri, size_t count)
{
  uint32_t *offs = malloc ((count + 1) * sizeof *offs);
  if (!offs)
    return true;
  for (size_t i = 0; i < count; i++)
    offs[i] = tp_le32 (ri + TP_LIST_ITEMS + i * TP_LIST_ITEM);
  qsort (offs, count, sizeof *offs, cmp_offset);
  bool twice = false;
  for (size_t i = 1; i < count && !twice; i++)
    twice = offs[i] == offs[i - 1];
  free (offs);
  return twice;
}

/* Append the key offsets of one subkey list (li, lf, lh; an ri when
 * `depth` allows). Returns -1 when damaged. */
static int
collect_list (const tp_regf *r, size_t list, int depth, size_t **out, size_t *n, size_t *cap)
{
  size_t len, count, step;
  bool ri;
  const unsigned char *l = tp_regf_cell (r, list, &len);
  if (!l || tp_regf_list_shape (l, len, &count, &step, &ri) < 0 || (ri && depth > 0) ||
      (ri && ri_repeats (l, count)))
    return -1;
  for (size_t i = 0; i < count; i++) {
    size_t off = rel (tp_le32 (l + TP_LIST_ITEMS + i * step));
    if (ri) {
      if (collect_list (r, off, depth + 1, out, n, cap) < 0)
        return -1;
      continue;
    }
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 16;
      size_t *more = *cap <= MAX_LIST ? realloc (*out, *cap * sizeof *more) : NULL;
      if (!more)
        return -1;
      *out = more;
    }
    (*out)[(*n)++] = off;
  }
  return 0;
}

size_t *
tp_regf_children (const tp_regf *r, size_t nk, size_t *n)
{
  size_t len, cap = 0;
  size_t *out = NULL;
  const unsigned char *k = record (r, nk, "nk", TP_NK_FIXED, &len);
  *n = 0;
  if (!k)
    goto damaged;
  if (tp_le32 (k + TP_NK_SUBKEY_COUNT) == 0)
    return NULL;
  if (collect_list (r, rel (tp_le32 (k + TP_NK_SUBKEY_LIST)), 0, &out, n, &cap) < 0)
    goto damaged;
  return out;
 damaged:
  free (out);
  *n = (size_t) -1;
  return NULL;
}

size_t *
tp_regf_values (const tp_regf *r, size_t nk, size_t *n)
{
  size_t len, list_len;
  const unsigned char *k = record (r, nk, "nk", TP_NK_FIXED, &len);
  *n = 0;
  if (!k) {
    *n = (size_t) -1;
    return NULL;
  }
  uint32_t count = tp_le32 (k + TP_NK_VALUE_COUNT);
  if (count == 0)
    return NULL;
  const unsigned char *l = tp_regf_cell (r, rel (tp_le32 (k + TP_NK_VALUE_LIST)), &list_len);
  size_t *out = l && count <= MAX_LIST && list_len / 4 >= count ? malloc (count * sizeof *out)
                                                                 : NULL;
  if (!out) {
    *n = (size_t) -1;
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++)
    out[i] = rel (tp_le32 (l + 4 * i));
  *n = count;
  return out;
}

size_t
tp_regf_child (const tp_regf *r, size_t nk, const char *name, bool *damaged)
{
  size_t n, found = 0;
  size_t *kids = tp_regf_children (r, nk, &n);
  if (n == (size_t) -1)
    *damaged = true;
  bool bad = false;             /* the first unreadable name ends the search */
  for (size_t i = 0; kids && i < n && !found && !bad; i++) {
    char *kid = tp_regf_key_name (r, kids[i]);
    if (!kid)
      *damaged = bad = true;
    else if (tp_regf_name_casecmp (kid, name) == 0)
      found = kids[i];
    free (kid);
  }
  free (kids);
  return found;
}

size_t
tp_regf_value (const tp_regf *r, size_t nk, const char *name, bool *damaged, size_t *position)
{
  size_t n, found = 0;
  size_t *vals = tp_regf_values (r, nk, &n);
  if (n == (size_t) -1)
    *damaged = true;
  for (size_t i = 0; vals && i < n && !found; i++) {
    char *v = tp_regf_value_name (r, vals[i]);
    if (!v)
      *damaged = true;
    else if (tp_regf_name_casecmp (v, name) == 0) {
      found = vals[i];
      if (position)
        *position = i + 1;
    }
    free (v);
  }
  free (vals);
  return found;
}

/* Big data: a db record listing segments of up to 16344 bytes. */
static int
big_data (const tp_regf *r, const unsigned char *db, size_t db_len, tp_value *out)
{
  size_t list_len;
  uint16_t segments = tp_le16 (db + TP_DB_SEGMENTS);
  const unsigned char *list = db_len >= TP_DB_FIXED
                             ? tp_regf_cell (r, rel (tp_le32 (db + TP_DB_SEGMENT_LIST)), &list_len) : NULL;
  if (!list || list_len / 4 < segments)
    return -1;
  size_t done = 0;
  for (uint16_t i = 0; i < segments && done < out->len; i++) {
    size_t seg_len;
    const unsigned char *seg = tp_regf_cell (r, rel (tp_le32 (list + 4 * i)), &seg_len);
    size_t take = out->len - done < TP_REGF_BIG_DATA_LIMIT ? out->len - done
                                                           : TP_REGF_BIG_DATA_LIMIT;
    if (!seg || seg_len < take)
      return -1;
    memcpy (out->data + done, seg, take);
    done += take;
  }
  return done == out->len ? 0 : -1;
}

int
tp_regf_value_data (const tp_regf *r, size_t vk, tp_value *out)
{
  size_t len;
  memset (out, 0, sizeof *out);
  const unsigned char *v = record (r, vk, "vk", TP_VK_FIXED, &len);
  if (!v)
    return -1;
  uint32_t size = tp_le32 (v + TP_VK_DATA_SIZE);
  out->present = true;
  out->type = tp_le32 (v + TP_VK_TYPE);
  out->len = size & ~TP_VK_DATA_INLINE;
  if (((size & TP_VK_DATA_INLINE) && out->len > 4) || out->len > r->size)
    return -1;
  out->data = malloc (out->len ? out->len : 1);
  if (!out->data)
    return -1;
  if (size & TP_VK_DATA_INLINE) {
    memcpy (out->data, v + TP_VK_DATA, out->len);
    return 0;
  }
  if (out->len == 0)
    return 0;
  size_t data_len;
  const unsigned char *data = tp_regf_cell (r, rel (tp_le32 (v + TP_VK_DATA)), &data_len);
  if (!data)
    goto damaged;
  if (r->minor >= 4 && out->len > TP_REGF_BIG_DATA_LIMIT && data_len >= 8 &&
      memcmp (data, "db", 2) == 0) {
    if (big_data (r, data, data_len, out) < 0)
      goto damaged;
    return 0;
  }
  if (data_len < out->len)
    goto damaged;
  memcpy (out->data, data, out->len);
  return 0;
 damaged:
  tp_value_free (out);
  return -1;
}
