/* tlspatch: lazy, bounds-checked regf reader (see reader.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlspatch/bytes.h"
#include "tlspatch/reader.h"
#include "tlspatch/regf.h"

#define BINS 4096
#define MAX_LIST 0x100000u      /* far above Windows' limits; bounds hostile counts */

/* Payload of the allocated cell at file offset `off`; its length in *len. */
static const unsigned char *
cell (const tp_regf *r, size_t off, size_t *len)
{
  size_t end = tp_regf_cells_end (r);
  if (off < BINS || off % 8 != 0 || off > end || end - off < 8 || !tp_regf_load (r, off, 4))
    return NULL;
  int32_t raw = (int32_t) tp_le32 (r->buf + off);
  if (raw >= 0)
    return NULL;
  size_t size = (size_t) -(int64_t) raw;
  if (size < 8 || size > end - off || !tp_regf_load (r, off, size))
    return NULL;
  *len = size - 4;
  return r->buf + off + 4;
}

/* A record of a given signature, at least `min` bytes long. */
static const unsigned char *
record (const tp_regf *r, size_t off, const char *sig, size_t min, size_t *len)
{
  const unsigned char *p = cell (r, off, len);
  return p && *len >= min && memcmp (p, sig, 2) == 0 ? p : NULL;
}

static size_t
rel (uint32_t offset)
{
  return offset == 0xFFFFFFFFu ? 0 : (size_t) offset + BINS;
}

size_t
tp_regf_root (const tp_regf *r)
{
  size_t len;
  if (r->size < BINS || !tp_regf_load (r, 0, BINS))
    return 0;
  size_t root = rel (tp_le32 (r->buf + 36));
  return record (r, root, "nk", 76, &len) ? root : 0;
}

/* Latin-1 (compressed) or UTF-16LE name to UTF-8. */
static char *
name_to_utf8 (const unsigned char *name, size_t len, bool compressed)
{
  char *out = malloc (len * 3 + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i += compressed ? 1 : 2) {
    uint32_t c = compressed ? name[i] : (i + 1 < len ? tp_le16 (name + i) : 0);
    if (c == 0)
      break;                    /* the writer refuses names with NUL */
    if (c < 0x80)
      *o++ = (char) c;
    else if (c < 0x800) {
      *o++ = (char) (0xC0 | c >> 6);
      *o++ = (char) (0x80 | (c & 0x3F));
    } else {                    /* surrogates pass through as-is: names only compare */
      *o++ = (char) (0xE0 | c >> 12);
      *o++ = (char) (0x80 | ((c >> 6) & 0x3F));
      *o++ = (char) (0x80 | (c & 0x3F));
    }
  }
  *o = '\0';
  return out;
}

char *
tp_regf_key_name (const tp_regf *r, size_t nk)
{
  size_t len;
  const unsigned char *k = record (r, nk, "nk", 76, &len);
  if (!k || (size_t) tp_le16 (k + 72) > len - 76)
    return NULL;
  return name_to_utf8 (k + 76, tp_le16 (k + 72), tp_le16 (k + 2) & 0x20);
}

char *
tp_regf_value_name (const tp_regf *r, size_t vk)
{
  size_t len;
  const unsigned char *v = record (r, vk, "vk", 20, &len);
  if (!v || (size_t) tp_le16 (v + 2) > len - 20)
    return NULL;
  return name_to_utf8 (v + 20, tp_le16 (v + 2), tp_le16 (v + 16) & 1);
}

/* Append the key offsets of one subkey list (li, lf, lh; an ri when
 * `depth` allows). Returns -1 when damaged. */
static int
collect_list (const tp_regf *r, size_t list, int depth, size_t **out, size_t *n, size_t *cap)
{
  size_t len;
  const unsigned char *l = cell (r, list, &len);
  if (!l || len < 4)
    return -1;
  uint16_t count = tp_le16 (l + 2);
  bool ri = memcmp (l, "ri", 2) == 0, li = memcmp (l, "li", 2) == 0;
  bool hashed = memcmp (l, "lf", 2) == 0 || memcmp (l, "lh", 2) == 0;
  size_t step = hashed ? 8 : 4;
  if ((!ri && !li && !hashed) || (ri && depth > 0) || 4 + (size_t) count * step > len)
    return -1;
  for (size_t i = 0; i < count; i++) {
    size_t off = rel (tp_le32 (l + 4 + i * step));
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
  const unsigned char *k = record (r, nk, "nk", 76, &len);
  *n = 0;
  if (!k)
    goto damaged;
  if (tp_le32 (k + 20) == 0)
    return NULL;
  if (collect_list (r, rel (tp_le32 (k + 28)), 0, &out, n, &cap) < 0)
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
  const unsigned char *k = record (r, nk, "nk", 76, &len);
  *n = 0;
  if (!k) {
    *n = (size_t) -1;
    return NULL;
  }
  uint32_t count = tp_le32 (k + 36);
  if (count == 0)
    return NULL;
  const unsigned char *l = cell (r, rel (tp_le32 (k + 40)), &list_len);
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
  for (size_t i = 0; kids && i < n && !found; i++) {
    char *kid = tp_regf_key_name (r, kids[i]);
    if (!kid)
      *damaged = true;
    else if (strcasecmp (kid, name) == 0)
      found = kids[i];
    free (kid);
  }
  free (kids);
  return found;
}

size_t
tp_regf_value (const tp_regf *r, size_t nk, const char *name, bool *damaged)
{
  size_t n, found = 0;
  size_t *vals = tp_regf_values (r, nk, &n);
  if (n == (size_t) -1)
    *damaged = true;
  for (size_t i = 0; vals && i < n && !found; i++) {
    char *v = tp_regf_value_name (r, vals[i]);
    if (!v)
      *damaged = true;
    else if (strcasecmp (v, name) == 0)
      found = vals[i];
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
  uint16_t segments = tp_le16 (db + 2);
  const unsigned char *list = db_len >= 8 ? cell (r, rel (tp_le32 (db + 4)), &list_len) : NULL;
  if (!list || list_len / 4 < segments)
    return -1;
  size_t done = 0;
  for (uint16_t i = 0; i < segments && done < out->len; i++) {
    size_t seg_len;
    const unsigned char *seg = cell (r, rel (tp_le32 (list + 4 * i)), &seg_len);
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
  const unsigned char *v = record (r, vk, "vk", 20, &len);
  if (!v)
    return -1;
  uint32_t size = tp_le32 (v + 4);
  out->present = true;
  out->type = tp_le32 (v + 12);
  out->len = size & 0x7FFFFFFFu;
  if (((size & 0x80000000u) && out->len > 4) || out->len > r->size)
    return -1;
  out->data = malloc (out->len ? out->len : 1);
  if (!out->data)
    return -1;
  if (size & 0x80000000u) {
    memcpy (out->data, v + 8, out->len);
    return 0;
  }
  if (out->len == 0)
    return 0;
  size_t data_len;
  const unsigned char *data = cell (r, rel (tp_le32 (v + 8)), &data_len);
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
