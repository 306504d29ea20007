/* tlspatch: Marvin32, written from its public description. */
#include "tlspatch/marvin32.h"

static uint32_t
rotl32 (uint32_t x, unsigned n)
{
  return x << n | x >> (32 - n);
}

/* The mixing step, applied after each 32-bit word is added to p0. */
static void
marvin_block (uint32_t *p0, uint32_t *p1)
{
  *p1 ^= *p0;
  *p0 = rotl32 (*p0, 20);
  *p0 += *p1;
  *p1 = rotl32 (*p1, 9);
  *p1 ^= *p0;
  *p0 = rotl32 (*p0, 27);
  *p0 += *p1;
  *p1 = rotl32 (*p1, 19);
}

uint64_t
tp_marvin32 (const unsigned char *data, size_t len, uint64_t seed)
{
  uint32_t p0 = (uint32_t) seed;
  uint32_t p1 = (uint32_t) (seed >> 32);
  size_t i = 0;

  for (; len - i >= 4; i += 4) {
    p0 += (uint32_t) data[i] | (uint32_t) data[i + 1] << 8 |
          (uint32_t) data[i + 2] << 16 | (uint32_t) data[i + 3] << 24;
    marvin_block (&p0, &p1);
  }

  /* The last 0-3 bytes, little-endian, followed by a 0x80 marker byte,
   * so that inputs differing only in trailing zeros hash differently. */
  size_t rest = len - i;
  uint32_t last = (uint32_t) 0x80 << (8 * rest);
  for (size_t k = 0; k < rest; k++)
    last |= (uint32_t) data[i + k] << (8 * k);
  p0 += last;
  marvin_block (&p0, &p1);
  marvin_block (&p0, &p1);

  return (uint64_t) p1 << 32 | p0;
}
