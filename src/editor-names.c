/* tlspatch: key and value names as the editor compares and stores
 * them (UTF-16 code units, Windows' uppercase order), and lookups by
 * such names through the reader. */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "writer-int.h"

/* One character of UTF-8 at s[*i]: its code point, or -1. */
static long
utf8_next (const unsigned char *s, size_t *i)
{
  unsigned c = s[*i];
  int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3 : -1;
  if (extra < 0)
    return -1;
  long cp = extra == 0 ? (long) c : (long) (c & (0x3F >> extra));
  for (int k = 1; k <= extra; k++) {
    if ((s[*i + k] & 0xC0) != 0x80)
      return -1;
    cp = cp << 6 | (s[*i + k] & 0x3F);
  }
  static const long least[4] = { 0, 0x80, 0x800, 0x10000 };
  if (cp < least[extra] || cp > 0x10FFFF)
    return -1;
  *i += (size_t) extra + 1;
  return cp;
}

uint16_t *
tp_w_utf16 (const char *utf8, size_t *n)
{
  size_t len = strlen (utf8);
  uint16_t *out = malloc ((2 * len + 1) * sizeof *out);
  *n = 0;
  for (size_t i = 0; out && i < len;) {
    long cp = utf8_next ((const unsigned char *) utf8, &i);
    if (cp <= 0) {              /* invalid, or a NUL Windows names cannot hold */
      free (out);
      return NULL;
    }
    if (cp >= 0x10000) {
      out[(*n)++] = (uint16_t) (0xD800 + ((cp - 0x10000) >> 10));
      out[(*n)++] = (uint16_t) (0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else
      out[(*n)++] = (uint16_t) cp;
  }
  return out;
}

/* Uppercase as Windows' table does for ASCII, Latin-1, Greek and
 * Cyrillic; other characters compare as they are. */
uint16_t
tp_w_upcase (uint16_t c)
{
  if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) ||
      (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) || (c >= 0x430 && c <= 0x44F))
    return (uint16_t) (c - 0x20);
  if (c >= 0x450 && c <= 0x45F)
    return (uint16_t) (c - 0x50);
  return c == 0xFF ? 0x178 : c;
}

int
tp_w_name_cmp (const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
  for (size_t i = 0; i < na && i < nb; i++) {
    uint16_t x = tp_w_upcase (a[i]), y = tp_w_upcase (b[i]);
    if (x != y)
      return x < y ? -1 : 1;
  }
  return na < nb ? -1 : na > nb;
}

void
tp_w_path_free (tp_w_name *parts, size_t n)
{
  for (size_t i = 0; parts && i < n; i++)
    free (parts[i].u);
  free (parts);
}

tp_w_name *
tp_w_path (const char *path, size_t *n)
{
  size_t len = strlen (path);
  tp_w_name *parts = calloc (len / 2 + 2, sizeof *parts);
  *n = 0;
  if (!parts)
    return NULL;
  const char *s = path[0] == '\\' ? path + 1 : path;
  while (*s) {
    const char *end = strchr (s, '\\');
    size_t part_len = end ? (size_t) (end - s) : strlen (s);
    char *part = part_len ? strndup (s, part_len) : NULL;
    tp_w_name *name = &parts[*n];
    name->u = part ? tp_w_utf16 (part, &name->n) : NULL;
    free (part);
    if (!name->u) {                   /* "\A\\B", "\A\", or bad UTF-8 */
      tp_w_path_free (parts, *n);
      return NULL;
    }
    (*n)++;
    s += part_len + (end ? 1 : 0);
    if (end && !*s) {
      tp_w_path_free (parts, *n);
      return NULL;
    }
  }
  return parts;
}

/* Does `utf8` (a name as the reader gives it) equal `name`? -1 when it
 * cannot be read. */
static int
same_name (char *utf8, const tp_w_name *name)
{
  size_t n;
  uint16_t *u = utf8 ? tp_w_utf16 (utf8, &n) : NULL;
  int same = !utf8 ? -1 : !u ? 0 : tp_w_name_cmp (u, n, name->u, name->n) == 0;
  free (u);
  free (utf8);
  return same;
}

/* A name found twice (a hostile hive) is damage: an edit could reach
 * one and miss the other. Subkey lists are sorted (Windows searches
 * them so), where a second one would follow the first: the lookup stops
 * there, after reading what the planner's lookups read (few pages of a
 * hive read on demand). Value lists are read whole. */
size_t
tp_w_find_child (const tp_regf *r, size_t nk, const tp_w_name *name, bool *damaged)
{
  size_t n, found = 0;
  size_t *kids = tp_regf_children (r, nk, &n);
  if (n == (size_t) -1)
    *damaged = true;
  for (size_t i = 0; kids && i < n; i++) {
    int same = same_name (tp_regf_key_name (r, kids[i]), name);
    if (same < 0 || (same && found))
      *damaged = true;
    else if (same)
      found = kids[i];
    else if (found)
      break;
  }
  free (kids);
  return found;
}

size_t
tp_w_find_value (const tp_regf *r, size_t nk, const tp_w_name *name, bool *damaged)
{
  size_t n, found = 0;
  size_t *vals = tp_regf_values (r, nk, &n);
  if (n == (size_t) -1)
    *damaged = true;
  for (size_t i = 0; vals && i < n; i++) {
    int same = same_name (tp_regf_value_name (r, vals[i]), name);
    if (same < 0 || (same && found))
      *damaged = true;
    else if (same)
      found = vals[i];
  }
  free (vals);
  return found;
}
