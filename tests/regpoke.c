/* regpoke: damage one field of a value record in a hive file, for the
 * tests that prove damage is never taken for absence.
 *
 *   regpoke HIVE KEY VALUE FIELD HEX
 *
 * KEY is a path from the root (\A\B), VALUE a value name, FIELD one of
 * the vk record's fields: size (data size, offset 4 of the payload),
 * offset (data offset, 8) or type (12). HEX is the new 32-bit value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/reader.h"

int
main (int argc, char **argv)
{
  if (argc != 6) {
    fprintf (stderr, "usage: regpoke HIVE KEY VALUE size|offset|type HEX\n");
    return 2;
  }
  static const char *const fields[] = { "size", "offset", "type" };
  size_t field = 0;
  while (field < 3 && strcmp (argv[4], fields[field]) != 0)
    field++;
  if (field == 3) {
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
  bool damaged = false;
  size_t nk = tp_regf_root (&r);
  char *path = strdup (argv[2]), *save = NULL;
  for (char *part = strtok_r (path, "\\", &save); part && nk; part = strtok_r (NULL, "\\", &save))
    nk = tp_regf_child (&r, nk, part, &damaged);
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
  free (path);
  free (buf);
  return 0;
}
