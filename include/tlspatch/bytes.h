/* tlspatch: little-endian fields of regf structures, read and written
 * byte by byte (no alignment or host byte order assumed); and byte
 * buffers that grow with zeros. */
#ifndef TLSPATCH_BYTES_H
#define TLSPATCH_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint16_t
tp_le16 (const unsigned char *p)
{
  return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t
tp_le32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline uint64_t
tp_le64 (const unsigned char *p)
{
  return (uint64_t) tp_le32 (p) | (uint64_t) tp_le32 (p + 4) << 32;
}

static inline void
tp_put16 (unsigned char *p, uint16_t v)
{
  p[0] = v & 0xff;
  p[1] = (unsigned char) (v >> 8);
}

static inline void
tp_put32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static inline void
tp_put64 (unsigned char *p, uint64_t v)
{
  tp_put32 (p, (uint32_t) v);
  tp_put32 (p + 4, (uint32_t) (v >> 32));
}

/* Grow *buf from *len to `want` bytes (nothing when it is as long),
 * the new bytes zero. 0, or -1 out of memory (*buf unchanged). */
static inline int
tp_grow_zeroed (unsigned char **buf, size_t *len, size_t want)
{
  if (want <= *len)
    return 0;
  unsigned char *more = realloc (*buf, want);
  if (!more)
    return -1;
  memset (more + *len, 0, want - *len);
  *buf = more;
  *len = want;
  return 0;
}

#endif
