/* tlspatch: libFuzzer target for the record editor (writer.h).
 *
 * The input is a hive file. Edit lists built from what the reader finds
 * in it (the root's first child and grandchild, a value) are planned:
 * a subtree deleted, keys created under existing ones, values set
 * (inline, one cell, big data) and deleted. A planned patch is laid over
 * a copy of the input and read back with tp_regf_verify_edits_from,
 * which must then succeed: the editor refuses what it cannot write. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/reader.h"
#include "tlspatch/regf.h"
#include "tlspatch/writer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
  const unsigned char *buf;
  size_t size;
} memory;

static int
read_memory (void *ctx, void *buf, size_t len, uint64_t off)
{
  memory *m = ctx;
  if (off > m->size || len > m->size - off)
    return -1;
  memcpy (buf, m->buf + off, len);
  return 0;
}

/* The patch laid over a copy of the hive; verified. */
static void
apply_and_verify (const tp_regf *r, const tp_regf_patch *p, const tp_regf_edit *e, size_t n)
{
  size_t size = r->size, end = p->bin_size ? p->bin_off + p->bin_size : 0;
  size = end > size ? end : size;
  unsigned char *out = calloc (1, size);
  if (!out)
    abort ();
  memcpy (out, r->buf, r->size);
  for (size_t i = 0; i < p->n_pokes; i++)
    memcpy (out + p->pokes[i].off, p->pokes[i].bytes, p->pokes[i].len);
  if (p->bin_size)
    memcpy (out + p->bin_off, p->bin, p->bin_size);
  memcpy (out, p->base_block, TP_REGF_BASE_BLOCK_SIZE);
  memory m = { out, size };
  char why[256];
  if (tp_regf_verify_edits_from (read_memory, &m, size, e, n, why, sizeof why) != 0) {
    fprintf (stderr, "planned but does not verify: %s\n", why);
    abort ();
  }
  free (out);
}

static void
run (const tp_regf *r, const tp_regf_edit *e, size_t n)
{
  tp_regf_patch p;
  char why[256];
  if (tp_regf_make_patch (r, e, n, &p, why, sizeof why) != 0)
    return;
  tp_regf_patch_unshared (r, &p, why, sizeof why);   /* the pass over the whole tree */
  apply_and_verify (r, &p, e, n);
  tp_regf_patch_free (&p);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < TP_REGF_BASE_BLOCK_SIZE || size > (1 << 20))
    return 0;
  unsigned char *buf = malloc (size);
  if (!buf)
    abort ();
  memcpy (buf, data, size);
  /* what tlspatch writes: a clean, complete primary (the checksum fixed
   * so that the fuzzer reaches the records) */
  tp_regf_header hdr;
  char why[256];
  uint32_t sum = tp_regf_checksum (buf);
  for (int i = 0; i < 4; i++)
    buf[508 + i] = (unsigned char) (sum >> (8 * i));
  if (tp_regf_check_primary (buf, size, &hdr, why, sizeof why) != 0) {
    free (buf);
    return 0;
  }
  uint32_t bins = (uint32_t) buf[40] | (uint32_t) buf[41] << 8 | (uint32_t) buf[42] << 16 |
                  (uint32_t) buf[43] << 24;
  tp_regf r = { .buf = buf, .size = size, .minor = hdr.minor, .bins_end = 4096 + (size_t) bins };
  size_t root = tp_regf_root (&r), n = 0;
  size_t *kids = root ? tp_regf_children (&r, root, &n) : NULL;
  char *child = kids && n && n != (size_t) -1 ? tp_regf_key_name (&r, kids[0]) : NULL;
  free (kids);
  if (child && !strchr (child, '\\')) {
    char path[600], sub[700];
    snprintf (path, sizeof path, "\\%s", child);
    snprintf (sub, sizeof sub, "%s\\New\xc3\xa9", path);
    static unsigned char big[40000];
    tp_value small = { .present = true, .type = 4, .data = big, .len = 4 };
    tp_value cell = { .present = true, .type = 3, .data = big, .len = 100 };
    tp_value huge = { .present = true, .type = 3, .data = big, .len = sizeof big };
    tp_regf_edit del[] = { { .op = TP_EDIT_DELETE_KEY, .key = path } };
    tp_regf_edit add[] = {
      { .op = TP_EDIT_CREATE_KEY, .key = sub },
      { .op = TP_EDIT_SET_VALUE, .key = sub, .name = "v", .value = &huge },
      { .op = TP_EDIT_SET_VALUE, .key = path, .name = "a", .value = &small },
      { .op = TP_EDIT_SET_VALUE, .key = path, .name = "", .value = &cell },
      { .op = TP_EDIT_SET_VALUE, .key = "\\", .name = "b", .value = &huge },
    };
    run (&r, del, 1);
    run (&r, add, 5);
    size_t nv = 0, *vals = kids ? NULL : NULL;
    size_t nk = tp_regf_child (&r, root, child, &(bool) { false });
    vals = nk ? tp_regf_values (&r, nk, &nv) : NULL;
    char *vname = vals && nv && nv != (size_t) -1 ? tp_regf_value_name (&r, vals[0]) : NULL;
    if (vname) {
      tp_regf_edit val[] = {
        { .op = TP_EDIT_SET_VALUE, .key = path, .name = vname, .value = &small },
        { .op = TP_EDIT_DELETE_VALUE, .key = path, .name = vname },
      };
      run (&r, val, 1);
      run (&r, val + 1, 1);
    }
    free (vname);
    free (vals);
  }
  free (child);
  free (buf);
  return 0;
}
