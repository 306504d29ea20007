/* regpoke: damage one field of a value record in a hive file, for the
 * tests that prove damage is never taken for absence.
 *
 *   regpoke HIVE KEY VALUE FIELD HEX
 *
 * KEY is a path from the root (\A\B), VALUE a value name, FIELD one of
 * the vk record's fields: size (data size, offset 4 of the payload),
 * offset (data offset, 8) or type (12). HEX is the new 32-bit value.
 *
 *   regpoke HIVE --share-values KEY FROM
 *
 * makes KEY use FROM's value list (count, list and hints): one list
 * referenced by two keys, as a crafted hive may have it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/reader.h"

static size_t
find_key (const tp_regf *r, const char *key)
{
  bool damaged = false;
  size_t nk = tp_regf_root (r);
  char *path = strdup (key), *save = NULL;
  for (char *part = strtok_r (path, "\\", &save); part && nk; part = strtok_r (NULL, "\\", &save))
    nk = tp_regf_child (r, nk, part, &damaged);
  free (path);
  return nk;
}

static int
share_values (FILE *fp, const tp_regf *r, const char *key, const char *from)
{
  size_t nk = find_key (r, key), src = find_key (r, from);
  if (!nk || !src) {
    fprintf (stderr, "regpoke: %s or %s not found\n", key, from);
    return 1;
  }
  static const size_t fields[] = { TP_NK_VALUE_COUNT, TP_NK_VALUE_LIST, TP_NK_MAX_VALUE_NAME,
                                   TP_NK_MAX_VALUE_DATA };
  for (size_t i = 0; i < 4; i++)
    if (fseek (fp, (long) (nk + TP_CELL_HEADER + fields[i]), SEEK_SET) != 0 ||
        fwrite (r->buf + src + TP_CELL_HEADER + fields[i], 1, 4, fp) != 4)
      return 1;
  return fclose (fp) != 0;
}

int
main (int argc, char **argv)
{
  bool share = argc == 5 && strcmp (argv[2], "--share-values") == 0;
  if (argc != 6 && !share) {
    fprintf (stderr, "usage: regpoke HIVE KEY VALUE size|offset|type HEX\n"
             "       regpoke HIVE --share-values KEY FROM\n");
    return 2;
  }
  static const char *const fields[] = { "size", "offset", "type" };
  size_t field = 0;
  while (!share && field < 3 && strcmp (argv[4], fields[field]) != 0)
    field++;
  if (!share && field == 3) {
    fprintf (stderr, "regpoke: unknown field %s\n", argv[4]);
    return 2;
  }
  FILE *fp = fopen (argv[1], "r+b");
  if (!fp || fseek (fp, 0, SEEK_END) != 0) {
    perror (argv[1]);
    return 1;
  }
  long size = ftell (fp);
  unsigned char *buf = malloc ((size_t) size);
  rewind (fp);
  if (!buf || fread (buf, 1, (size_t) size, fp) != (size_t) size) {
    fprintf (stderr, "regpoke: cannot read %s\n", argv[1]);
    return 1;
  }
  tp_regf r = { .buf = buf, .size = (size_t) size, .minor = tp_le32 (buf + 24),
                .bins_end = 4096 + (size_t) tp_le32 (buf + 40) };
  if (share) {
    int rc = share_values (fp, &r, argv[3], argv[4]);
    free (buf);
    return rc;
  }
  bool damaged = false;
  size_t nk = find_key (&r, argv[2]);
  size_t vk = nk ? tp_regf_value (&r, nk, argv[3], &damaged, NULL) : 0;
  if (!vk) {
    fprintf (stderr, "regpoke: %s\\%s not found\n", argv[2], argv[3]);
    return 1;
  }
  unsigned char bytes[4];
  tp_put32 (bytes, (uint32_t) strtoul (argv[5], NULL, 16));
  if (fseek (fp, (long) (vk + 4 + 4 + 4 * field), SEEK_SET) != 0 || fwrite (bytes, 1, 4, fp) != 4 ||
      fclose (fp) != 0) {
    perror (argv[1]);
    return 1;
  }
  free (buf);
  return 0;
}
