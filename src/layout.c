/* tlspatch: the regf layout's functions (see layout.h). */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"

uint32_t
tp_regf_checksum (const unsigned char *base_block)
{
  uint32_t sum = 0;
  for (size_t i = 0; i < TP_BB_CHECKED_BYTES; i += 4)
    sum ^= tp_le32 (base_block + i);
  if (sum == 0xFFFFFFFFu)
    sum = 0xFFFFFFFEu;
  else if (sum == 0)
    sum = 1;
  return sum;
}

bool
tp_regf_checksum_valid (const unsigned char *base_block)
{
  uint32_t stored = tp_le32 (base_block + TP_BB_CHECKSUM), raw = 0;
  for (size_t i = 0; i < TP_BB_CHECKED_BYTES; i += 4)
    raw ^= tp_le32 (base_block + i);
  return stored == tp_regf_checksum (base_block) || stored == raw;
}

int
tp_regf_list_shape (const unsigned char *list, size_t len, size_t *count, size_t *step,
                    bool *ri)
{
  if (len < TP_LIST_ITEMS)
    return -1;
  bool is_ri = memcmp (list, "ri", 2) == 0, li = memcmp (list, "li", 2) == 0;
  bool hashed = memcmp (list, "lf", 2) == 0 || memcmp (list, "lh", 2) == 0;
  *count = tp_le16 (list + TP_LIST_COUNT);
  *step = hashed ? TP_LIST_HASHED_ITEM : TP_LIST_ITEM;
  *ri = is_ri;
  return (is_ri || li || hashed) && TP_LIST_ITEMS + *count * *step <= len ? 0 : -1;
}

/* One UTF-16 unit (or Latin-1 character) as UTF-8, at most 3 bytes. */
static char *
put_utf8 (char *o, uint32_t c)
{
  if (c < 0x80)
    *o++ = (char) c;
  else if (c < 0x800) {
    *o++ = (char) (0xC0 | c >> 6);
    *o++ = (char) (0x80 | (c & 0x3F));
  } else {
    *o++ = (char) (0xE0 | c >> 12);
    *o++ = (char) (0x80 | ((c >> 6) & 0x3F));
    *o++ = (char) (0x80 | (c & 0x3F));
  }
  return o;
}

char *
tp_regf_name_to_utf8 (const unsigned char *name, size_t len, bool compressed)
{
  char *out = malloc (len * 3 + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i += compressed ? 1 : 2) {
    uint32_t c = compressed ? name[i] : (i + 1 < len ? tp_le16 (name + i) : 0);
    if (c == 0)
      break;                    /* the editor never writes names with NUL */
    o = put_utf8 (o, c);        /* surrogates pass through as-is: names only compare */
  }
  *o = '\0';
  return out;
}

char *
tp_regf_utf16_string (const unsigned char *data, size_t len)
{
  char *out = malloc (len / 2 * 3 + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i + 1 < len; i += 2) {
    uint32_t c = tp_le16 (data + i);
    if (c == 0)
      break;
    o = put_utf8 (o, c >= 0xD800 && c < 0xE000 ? 0xFFFD : c);
  }
  *o = '\0';
  return out;
}

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
tp_regf_utf16_from_utf8 (const char *utf8, size_t *n)
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

uint16_t
tp_regf_upcase (uint16_t c)
{
  if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) ||
      (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) || (c >= 0x430 && c <= 0x44F))
    return (uint16_t) (c - 0x20);
  if (c >= 0x450 && c <= 0x45F)
    return (uint16_t) (c - 0x50);
  return c == 0xFF ? 0x178 : c;
}

int
tp_regf_name_cmp (const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
  for (size_t i = 0; i < na && i < nb; i++) {
    uint16_t x = tp_regf_upcase (a[i]), y = tp_regf_upcase (b[i]);
    if (x != y)
      return x < y ? -1 : 1;
  }
  return na < nb ? -1 : na > nb;
}

int
tp_regf_name_casecmp (const char *a, const char *b)
{
  size_t i = 0, j = 0;
  while (a[i] && b[j]) {
    size_t ii = i, jj = j;
    long x = utf8_next ((const unsigned char *) a, &ii), y = utf8_next ((const unsigned char *) b, &jj);
    if (x < 0 || y < 0)         /* not UTF-8: the bytes as they are */
      return strcmp (a + i, b + j) < 0 ? -1 : strcmp (a + i, b + j) > 0;
    if (x < 0x10000)
      x = tp_regf_upcase ((uint16_t) x);
    if (y < 0x10000)
      y = tp_regf_upcase ((uint16_t) y);
    if (x != y)
      return x < y ? -1 : 1;
    i = ii;
    j = jj;
  }
  return a[i] ? 1 : b[j] ? -1 : 0;
}

size_t
tp_regf_name_prefix (const char *s, const char *prefix)
{
  size_t i = 0, j = 0;
  while (prefix[j]) {
    size_t ii = i, jj = j;
    long x = s[i] ? utf8_next ((const unsigned char *) s, &ii) : -1;
    long y = utf8_next ((const unsigned char *) prefix, &jj);
    if (x < 0 || y < 0 ||
        (x < 0x10000 ? tp_regf_upcase ((uint16_t) x) : x) != (y < 0x10000 ? tp_regf_upcase ((uint16_t) y) : y))
      return (size_t) -1;
    i = ii;
    j = jj;
  }
  return i;
}
