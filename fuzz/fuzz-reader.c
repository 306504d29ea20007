/* tlspatch: libFuzzer target for the lazy hive reader.
 *
 * The input is a hive file: every key and value reachable from the root
 * is walked (depth and count bounded), with names and data, as
 * tlspatch's lookups would; then the reference count over the whole
 * tree (tp_regf_count_references), asked about the root's cells. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/reader.h"
#include "tlspatch/regf.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static size_t budget;

static void
walk (const tp_regf *r, size_t nk, int depth)
{
  if (depth > 8 || budget == 0)
    return;
  budget--;
  free (tp_regf_key_name (r, nk));
  size_t nv, nc;
  size_t *values = tp_regf_values (r, nk, &nv);
  for (size_t i = 0; values && i < nv && i < 64; i++) {
    tp_value v;
    char *name = tp_regf_value_name (r, values[i]);
    if (tp_regf_value_data (r, values[i], &v) == 0)
      tp_value_free (&v);
    bool damaged = false;
    if (name)
      tp_regf_value (r, nk, name, &damaged, NULL);
    free (name);
  }
  free (values);
  size_t *kids = tp_regf_children (r, nk, &nc);
  for (size_t i = 0; kids && i < nc && i < 64; i++) {
    char *name = tp_regf_key_name (r, kids[i]);
    bool damaged = false;
    if (name)
      tp_regf_child (r, nk, name, &damaged);
    free (name);
    walk (r, kids[i], depth + 1);
  }
  free (kids);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < TP_REGF_BASE_BLOCK_SIZE)
    return 0;
  unsigned char *buf = malloc (size);
  if (!buf)
    abort ();
  memcpy (buf, data, size);
  uint32_t c = tp_regf_checksum (buf);      /* reach the reader, not the checksum test */
  for (int i = 0; i < 4; i++)
    buf[508 + i] = (unsigned char) (c >> (8 * i));
  tp_regf_header hdr;
  char why[256];
  if (tp_regf_check_primary (buf, size, &hdr, why, sizeof why) == 0) {
    tp_regf r = { .buf = buf, .size = size, .minor = hdr.minor };
    size_t root = tp_regf_root (&r);
    budget = 2000;
    if (root)
      walk (&r, root, 0);
    size_t cells[2] = { root, root + 8 }, where;
    unsigned counts[2];
    tp_regf_count_references (&r, cells, 2, counts, &where);
  }
  free (buf);
  return 0;
}
