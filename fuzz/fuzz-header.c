/* tlspatch: libFuzzer target for the primary header check.
 *
 * The input is a hive file. It is checked as it is, then once more with
 * its checksum made right, so mutations reach the checks behind it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/regf.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  unsigned char *buf = calloc (1, size ? size : 1);
  tp_regf_header hdr;
  char why[256];
  if (!buf)
    abort ();
  if (size)
    memcpy (buf, data, size);
  int rc = tp_regf_check_primary (buf, size, &hdr, why, sizeof why);
  if (rc != 0 && (why[0] == '\0' || strchr (why, '\n')))
    abort ();
  if (size >= 512) {
    uint32_t c = tp_regf_checksum (buf);
    for (int i = 0; i < 4; i++)
      buf[508 + i] = (unsigned char) (c >> (8 * i));
    rc = tp_regf_check_primary (buf, size, &hdr, why, sizeof why);
    /* Accepted means clean and complete: sequence numbers equal, bins inside the file. */
    if (rc == 0 && (hdr.seq_primary != hdr.seq_secondary ||
                    (uint64_t) hdr.bins_size + TP_REGF_BASE_BLOCK_SIZE > size))
      abort ();
  }
  free (buf);
  return 0;
}
