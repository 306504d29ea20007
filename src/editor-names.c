/* tlspatch: key and value names as the editor compares and stores
 * them (UTF-16 code units, Windows' uppercase order), and lookups by
 * such names through the reader. */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "writer-int.h"

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
    name->u = part ? tp_regf_utf16_from_utf8 (part, &name->n) : NULL;
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
  uint16_t *u = utf8 ? tp_regf_utf16_from_utf8 (utf8, &n) : NULL;
  int same = !utf8 ? -1 : !u ? 0 : tp_regf_name_cmp (u, n, name->u, name->n) == 0;
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
