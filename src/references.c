/* tlspatch: who references a cell: one pass over the hive's tree (see
 * tp_regf_count_references in reader.h).
 *
 * The records of a key's subtree lie anywhere in the file, so a walk
 * that follows one reference at a time waits on memory at every cell
 * (65 ms for the 260,000 keys of an 80 MB SOFTWARE). Instead the walk
 * keeps a stack of records still to read, and reads each AHEAD records
 * after asking memory for it (a prefetch), by which time it has
 * arrived: the fetches overlap. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/reader.h"
#include "tlspatch/regf.h"

#define MAX_DEPTH 512           /* Windows' limit on key nesting */
#define AHEAD 32                /* records asked for before they are read */

typedef enum { T_KEY, T_SUBKEYS, T_LEAF, T_VALUES, T_VALUE, T_DATA } task_kind;

typedef struct {
  size_t off;
  uint32_t n;                   /* T_VALUES: the key's value count */
  uint16_t depth;               /* T_KEY, T_SUBKEYS, T_LEAF: the key's nesting */
  uint8_t kind;
} task;

typedef struct {
  const tp_regf *r;
  const size_t *cells;          /* sorted */
  size_t n;
  unsigned *counts;
  unsigned char *seen;          /* one bit per 8-byte unit: records already pushed */
  task *stack;
  size_t top, cap;
  size_t where;                 /* the first record that cannot be read */
} census;

static size_t
rel (uint32_t offset)
{
  return offset == TP_REGF_NONE ? 0 : (size_t) offset + TP_REGF_BINS;
}

/* One reference to `off`: counted when it is one of the cells asked
 * about. */
static void
count (census *c, size_t off)
{
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->cells[mid] == off) {
      c->counts[mid]++;
      return;
    }
    if (c->cells[mid] < off)
      lo = mid + 1;
    else
      hi = mid;
  }
}

/* True the first time a record is met (then it is walked). An offset
 * off the cells is walked, to be found damaged. */
static bool
first_visit (census *c, size_t off)
{
  if (off >= tp_regf_cells_end (c->r))
    return true;
  size_t bit = off / TP_CELL_ALIGN;
  bool first = !(c->seen[bit / 8] & (1u << (bit % 8)));
  c->seen[bit / 8] |= (unsigned char) (1u << (bit % 8));
  return first;
}

/* A reference to the record at `off`: counted, and the record walked
 * later unless it was met before. 0, or -1 out of memory. */
static int
refer (census *c, size_t off, task_kind kind, uint32_t n, unsigned depth)
{
  count (c, off);
  if (!first_visit (c, off))
    return 0;
  if (c->top == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 4096;
    task *more = realloc (c->stack, cap * sizeof *more);
    if (!more)
      return -1;
    c->stack = more;
    c->cap = cap;
  }
  c->stack[c->top++] = (task) { .off = off, .n = n, .depth = (uint16_t) depth, .kind = (uint8_t) kind };
  return 0;
}

/* A record of a signature, at least `min` bytes. */
static const unsigned char *
record (census *c, size_t off, const char *sig, size_t min, size_t *len)
{
  const unsigned char *p = tp_regf_cell (c->r, off, len);
  return p && *len >= min && (!sig || memcmp (p, sig, 2) == 0) ? p : NULL;
}

static int
key (census *c, const task *t)
{
  size_t len;
  const unsigned char *k = record (c, t->off, "nk", TP_NK_FIXED, &len);
  if (!k || t->depth > MAX_DEPTH)
    return 1;
  size_t class_cell = rel (tp_le32 (k + TP_NK_CLASS));
  if (class_cell && tp_le16 (k + TP_NK_CLASS_LENGTH))
    count (c, class_cell);
  uint32_t values = tp_le32 (k + TP_NK_VALUE_COUNT);
  if (values && refer (c, rel (tp_le32 (k + TP_NK_VALUE_LIST)), T_VALUES, values, 0) < 0)
    return -1;
  if (tp_le32 (k + TP_NK_SUBKEY_COUNT) == 0)
    return 0;
  return refer (c, rel (tp_le32 (k + TP_NK_SUBKEY_LIST)), T_SUBKEYS, 0, t->depth + 1u);
}

/* li, lf, lh; at the top also an ri of them. */
static int
subkeys (census *c, const task *t)
{
  size_t len, n, step;
  bool ri;
  const unsigned char *l = record (c, t->off, NULL, 0, &len);
  if (!l || tp_regf_list_shape (l, len, &n, &step, &ri) < 0 || (ri && t->kind == T_LEAF))
    return 1;
  for (size_t i = 0; i < n; i++)
    if (refer (c, rel (tp_le32 (l + TP_LIST_ITEMS + i * step)), ri ? T_LEAF : T_KEY, 0,
               t->depth) < 0)
      return -1;
  return 0;
}

static int
values (census *c, const task *t)
{
  size_t len;
  const unsigned char *l = record (c, t->off, NULL, 0, &len);
  if (!l || len / 4 < t->n)
    return 1;
  for (uint32_t i = 0; i < t->n; i++)
    if (refer (c, rel (tp_le32 (l + 4 * i)), T_VALUE, 0, 0) < 0)
      return -1;
  return 0;
}

/* Inline and unset data reference nothing. */
static int
value (census *c, const task *t)
{
  size_t len;
  const unsigned char *v = record (c, t->off, "vk", TP_VK_FIXED, &len);
  if (!v)
    return 1;
  uint32_t size = tp_le32 (v + TP_VK_DATA_SIZE);
  size_t data = rel (tp_le32 (v + TP_VK_DATA));
  if ((size & TP_VK_DATA_INLINE) || (size & ~TP_VK_DATA_INLINE) == 0 || !data)
    return 0;
  return refer (c, data, T_DATA, 0, 0);
}

/* The data cell must be one (as hivex requires); a db's segment list
 * and segments are counted where they can be read. */
static int
data (census *c, const task *t)
{
  size_t len, list_len;
  const unsigned char *d = record (c, t->off, NULL, 0, &len);
  if (!d)
    return 1;
  if (c->r->minor < 4 || len < TP_DB_FIXED || memcmp (d, "db", 2) != 0)
    return 0;
  size_t list = rel (tp_le32 (d + TP_DB_SEGMENT_LIST));
  count (c, list);
  const unsigned char *l = list ? tp_regf_cell (c->r, list, &list_len) : NULL;
  size_t segments = tp_le16 (d + TP_DB_SEGMENTS);
  for (size_t i = 0; l && i < segments && i < list_len / 4; i++)
    count (c, rel (tp_le32 (l + 4 * i)));
  return 0;
}

static int
walk (census *c)
{
  static int (*const read[]) (census *, const task *) = {
    [T_KEY] = key, [T_SUBKEYS] = subkeys, [T_LEAF] = subkeys,
    [T_VALUES] = values, [T_VALUE] = value, [T_DATA] = data,
  };
  task ahead[AHEAD];            /* a ring: popped, asked for, read AHEAD pops later */
  size_t head = 0, len = 0;
  while (c->top || len) {
    if (c->top && len < AHEAD) {
      task *t = &ahead[(head + len++) % AHEAD];
      *t = c->stack[--c->top];
      if (t->off + 128 <= tp_regf_cells_end (c->r)) {   /* an nk spans two lines */
        __builtin_prefetch (c->r->buf + t->off);
        __builtin_prefetch (c->r->buf + t->off + 64);
      }
      continue;
    }
    task t = ahead[head];
    head = (head + 1) % AHEAD;
    len--;
    int rc = read[t.kind] (c, &t);
    if (rc != 0) {
      c->where = t.off;
      return rc > 0 ? -1 : -2;
    }
  }
  return 0;
}

int
tp_regf_count_references (const tp_regf *r, const size_t *cells, size_t n, unsigned *counts,
                          size_t *where)
{
  census c = { .r = r, .cells = cells, .n = n, .counts = counts };
  memset (counts, 0, n * sizeof *counts);
  *where = 0;
  size_t root = tp_regf_root (r);
  if (!root) {
    *where = TP_REGF_BINS;
    return -1;
  }
  c.seen = calloc (tp_regf_cells_end (r) / TP_CELL_ALIGN / 8 + 1, 1);
  int rc = c.seen && refer (&c, root, T_KEY, 0, 0) == 0 ? walk (&c) : -2;
  free (c.seen);
  free (c.stack);
  *where = c.where;
  return rc;
}
