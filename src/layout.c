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
