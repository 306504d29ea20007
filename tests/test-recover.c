/* tlspatch: tests of transaction log recovery (TAP output).
 *
 * Two kinds of data:
 * - real dirty hives written by Windows, with the hive Windows itself
 *   recovered from them (../shared/testdata/regf-logs, never copied into
 *   the project; skipped when absent);
 * - the project's own: a small valid hive built here, and logs of both
 *   formats written byte by byte from the spec, each bent in one way.
 */
#include <dirent.h>
#include <errno.h>
#include <hivex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/marvin32.h"
#include "tlspatch/recover.h"
#include "tlspatch/regf.h"

#include "tap.h"

/* ---- Growable byte buffers ----------------------------------------- */

typedef struct {
  unsigned char *p;
  size_t len;
} bytes;

static void
bytes_append (bytes *b, const void *src, size_t n)
{
  b->p = realloc (b->p, b->len + n + 1);
  if (src)
    memcpy (b->p + b->len, src, n);
  else
    memset (b->p + b->len, 0, n);
  b->len += n;
}

static bytes
bytes_copy (const bytes *b)
{
  bytes c = { NULL, 0 };
  bytes_append (&c, b->p, b->len);
  return c;
}

static void
bytes_free (bytes *b)
{
  free (b->p);
  b->p = NULL;
  b->len = 0;
}

static int
read_all (const char *path, bytes *b)
{
  FILE *fp = fopen (path, "rb");
  b->p = NULL;
  b->len = 0;
  if (!fp)
    return -1;
  unsigned char chunk[65536];
  size_t n;
  while ((n = fread (chunk, 1, sizeof chunk, fp)) > 0)
    bytes_append (b, chunk, n);
  fclose (fp);
  return 0;
}

static int
write_all (const char *path, const unsigned char *p, size_t len)
{
  FILE *fp = fopen (path, "wb");
  if (!fp)
    return -1;
  size_t n = len ? fwrite (p, 1, len, fp) : 0;
  return fclose (fp) == 0 && n == len ? 0 : -1;
}

/* ---- A small valid hive --------------------------------------------
 *
 * Base block, then `nbins` 4 KiB bins. Bin 0 holds the root key "ROOT"
 * with one inline REG_DWORD "Marker", its value list and a security
 * cell; every other bin is one free cell whose bytes are all 0x40 + its
 * index (so a replayed page is easy to see).
 */

#define BB 4096u
#define MARKER_OFF (BB + 0x8C)          /* the DWORD inside the vk cell */
static const unsigned char STAMP[8] = { 0x00, 0x80, 0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01 };
static const unsigned char OTHER_STAMP[8] = { 0x00, 0x40, 0x12, 0x34, 0x56, 0x78, 0xd0, 0x01 };

static void
fix_checksum (unsigned char *bb)
{
  tp_put32 (bb + 508, tp_regf_checksum (bb));
}

static void
set_seq (bytes *h, uint32_t s1, uint32_t s2)
{
  tp_put32 (h->p + 4, s1);
  tp_put32 (h->p + 8, s2);
  fix_checksum (h->p);
}

static void
bin_header (unsigned char *b, uint32_t off, uint32_t size)
{
  memcpy (b, "hbin", 4);
  tp_put32 (b + 4, off);
  tp_put32 (b + 8, size);
  if (off == 0)
    memcpy (b + 20, STAMP, 8);
}

static void
fill_bin (bytes *h, uint32_t k, unsigned char fill)
{
  memset (h->p + BB + k * 4096 + 36, fill, 4096 - 36);
}

static bytes
hive_new (uint32_t nbins, uint32_t marker)
{
  bytes h = { NULL, 0 };
  bytes_append (&h, NULL, BB + (size_t) nbins * 4096);
  unsigned char *bb = h.p;
  memcpy (bb, "regf", 4);
  memcpy (bb + 12, STAMP, 8);
  tp_put32 (bb + 20, 1);
  tp_put32 (bb + 24, 5);
  tp_put32 (bb + 32, 1);
  tp_put32 (bb + 36, 0x20);
  tp_put32 (bb + 40, nbins * 4096);
  tp_put32 (bb + 44, 1);
  memcpy (bb + 48, "T\0E\0S\0T\0", 8);

  unsigned char *b = h.p + BB;
  bin_header (b, 0, 4096);
  unsigned char *nk = b + 0x20;             /* cell of 88 bytes */
  tp_put32 (nk, (uint32_t) -88);
  memcpy (nk + 4, "nk", 2);
  nk[6] = 0x2c;                             /* hive entry, no delete, ASCII name */
  memcpy (nk + 8, STAMP, 8);
  tp_put32 (nk + 20, 0xFFFFFFFFu);             /* parent */
  tp_put32 (nk + 32, 0xFFFFFFFFu);             /* subkeys list */
  tp_put32 (nk + 36, 0xFFFFFFFFu);             /* volatile subkeys list */
  tp_put32 (nk + 40, 1);                       /* values */
  tp_put32 (nk + 44, 0x78);                    /* values list */
  tp_put32 (nk + 48, 0xA0);                    /* security */
  tp_put32 (nk + 52, 0xFFFFFFFFu);             /* class name */
  tp_put32 (nk + 64, 12);                      /* largest value name (UTF-16 bytes) */
  tp_put32 (nk + 68, 4);                       /* largest value data */
  nk[76] = 4;                               /* name length */
  memcpy (nk + 80, "ROOT", 4);
  unsigned char *vl = b + 0x78;             /* cell of 8 bytes */
  tp_put32 (vl, (uint32_t) -8);
  tp_put32 (vl + 4, 0x80);
  unsigned char *vk = b + 0x80;             /* cell of 32 bytes */
  tp_put32 (vk, (uint32_t) -32);
  memcpy (vk + 4, "vk", 2);
  vk[6] = 6;
  tp_put32 (vk + 8, 0x80000004u);              /* 4 bytes, inline */
  tp_put32 (vk + 12, marker);
  tp_put32 (vk + 16, 4);                       /* REG_DWORD */
  vk[20] = 1;                               /* ASCII name */
  memcpy (vk + 24, "Marker", 6);
  unsigned char *sk = b + 0xA0;             /* cell of 48 bytes */
  tp_put32 (sk, (uint32_t) -48);
  memcpy (sk + 4, "sk", 2);
  tp_put32 (sk + 8, 0xA0);
  tp_put32 (sk + 12, 0xA0);
  tp_put32 (sk + 16, 1);
  tp_put32 (sk + 20, 20);
  sk[24] = 1;                               /* descriptor: revision 1, */
  sk[27] = 0x80;                            /* self-relative, no owner, no ACLs */
  tp_put32 (b + 0xD0, 4096 - 0xD0);            /* the rest of bin 0 is free */

  for (uint32_t k = 1; k < nbins; k++) {
    bin_header (b + k * 4096, k * 4096, 4096);
    tp_put32 (b + k * 4096 + 32, 4096 - 32);
    fill_bin (&h, k, (unsigned char) (0x40 + k));
  }
  set_seq (&h, 10, 10);
  return h;
}

static void
set_marker (bytes *h, uint32_t v)
{
  tp_put32 (h->p + MARKER_OFF, v);
}

static uint32_t
bin_fill (const unsigned char *img, uint32_t k)
{
  return img[BB + k * 4096 + 100];
}

/* ---- Log writers (from the spec, "Format of transaction log files") -- */

/* The first sector: the base block copy with the log's file type. */
static bytes
log_start (const bytes *state, uint32_t type, uint32_t seq)
{
  bytes lg = { NULL, 0 };
  bytes_append (&lg, state->p, 512);
  tp_put32 (lg.p + 4, seq);
  tp_put32 (lg.p + 8, seq);
  tp_put32 (lg.p + 28, type);
  fix_checksum (lg.p);
  return lg;
}

typedef struct {
  uint32_t off, size;               /* in hive bins data */
} page_ref;

/* Append one HvLE entry carrying the pages of `state`. */
static size_t
log_entry (bytes *lg, const bytes *state, uint32_t seq, uint32_t flags,
           const page_ref *pages, size_t n)
{
  size_t start = lg->len, body = 40 + 8 * n;
  for (size_t i = 0; i < n; i++)
    body += pages[i].size;
  size_t size = (body + 511) / 512 * 512;
  bytes_append (lg, NULL, size);
  unsigned char *e = lg->p + start;
  memcpy (e, "HvLE", 4);
  tp_put32 (e + 4, (uint32_t) size);
  tp_put32 (e + 8, flags);
  tp_put32 (e + 12, seq);
  tp_put32 (e + 16, tp_le32 (state->p + 40));
  tp_put32 (e + 20, (uint32_t) n);
  unsigned char *d = e + 40 + 8 * n;
  for (size_t i = 0; i < n; i++) {
    tp_put32 (e + 40 + 8 * i, pages[i].off);
    tp_put32 (e + 44 + 8 * i, pages[i].size);
    memcpy (d, state->p + BB + pages[i].off, pages[i].size);
    d += pages[i].size;
  }
  tp_put64 (e + 24, tp_marvin32 (e + 40, size - 40, TP_MARVIN32_REGF_SEED));
  tp_put64 (e + 32, tp_marvin32 (e, 32, TP_MARVIN32_REGF_SEED));
  return start;
}

/* Recompute both hashes of the entry at `off`, `size` bytes long (after
 * a deliberate edit, which may have been to its size field). */
static void
rehash_entry_sized (bytes *lg, size_t off, uint32_t size)
{
  unsigned char *e = lg->p + off;
  tp_put64 (e + 24, tp_marvin32 (e + 40, size - 40, TP_MARVIN32_REGF_SEED));
  tp_put64 (e + 32, tp_marvin32 (e, 32, TP_MARVIN32_REGF_SEED));
}

static void
rehash_entry (bytes *lg, size_t off)
{
  rehash_entry_sized (lg, off, tp_le32 (lg->p + off + 4));
}

/* An old-format log: base block copy in the first sector (clustering
 * factor cf: sectors of cf * 512 bytes), DIRT vector in the second, then
 * from the next sector the dirty pages of `state` for every 4 KiB block
 * listed (Windows logs whole blocks). */
static bytes
old_log_cf (const bytes *state, uint32_t seq, const uint32_t *blocks, size_t n, uint32_t cf)
{
  size_t sector = 512 * (size_t) cf;
  bytes lg = { NULL, 0 };
  bytes_append (&lg, state->p, sector);
  tp_put32 (lg.p + 4, seq);
  tp_put32 (lg.p + 8, seq);
  tp_put32 (lg.p + 28, 1);
  tp_put32 (lg.p + 44, cf);
  fix_checksum (lg.p);
  uint32_t bins = tp_le32 (state->p + 40), nbits = bins / 512;
  size_t nbytes = (nbits + 7) / 8;
  unsigned char *bitmap = calloc (1, nbytes);
  for (size_t i = 0; i < n; i++)
    for (uint32_t p = blocks[i] * 8; p < blocks[i] * 8 + 8; p++)
      bitmap[p / 8] |= (unsigned char) (1u << (p % 8));
  bytes_append (&lg, "DIRT", 4);
  bytes_append (&lg, bitmap, nbytes);
  bytes_append (&lg, NULL, (lg.len + sector - 1) / sector * sector - lg.len);
  for (uint32_t p = 0; p < nbits; p++)
    if (bitmap[p / 8] >> (p % 8) & 1)
      bytes_append (&lg, state->p + BB + (size_t) p * 512, 512);
  free (bitmap);
  return lg;
}

static bytes
old_log (const bytes *state, uint32_t seq, const uint32_t *blocks, size_t n)
{
  return old_log_cf (state, seq, blocks, n, 1);
}

/* ---- Running recovery and reading the result ----------------------- */

typedef struct {
  int rc;
  unsigned char *out;
  size_t out_len;
  tp_recovery_info info;
  char why[1024];
} run;

static void
run_free (run *r)
{
  free (r->out);
  r->out = NULL;
  tp_recovery_info_free (&r->info);
}

/* With TLSPATCH_DUMP_CORPUS=DIR, every case is also written to DIR in
 * the input format of fuzz/fuzz-recover.c (fuzz/make-corpus.sh). */
static void
dump_case (const bytes *primary, const bytes *l1, const bytes *l2)
{
  static int n;
  const char *dir = getenv ("TLSPATCH_DUMP_CORPUS");
  if (!dir || !*dir)
    return;
  char path[512];
  unsigned char head[9] = { 0 };
  bytes all = { NULL, 0 };
  tp_put32 (head + 1, (uint32_t) primary->len);
  tp_put32 (head + 5, l1 ? (uint32_t) l1->len : 0);
  bytes_append (&all, head, sizeof head);
  bytes_append (&all, primary->p, primary->len);
  if (l1)
    bytes_append (&all, l1->p, l1->len);
  if (l2)
    bytes_append (&all, l2->p, l2->len);
  snprintf (path, sizeof path, "%s/crafted-%03d", dir, ++n);
  if (write_all (path, all.p, all.len) < 0)
    fprintf (stderr, "cannot write %s\n", path);
  bytes_free (&all);
}

static run
recover (const bytes *primary, const bytes *l1, const bytes *l2)
{
  run r;
  dump_case (primary, l1, l2);
  r.rc = tp_recover_buffers (primary->p, primary->len, l1 ? l1->p : NULL, l1 ? l1->len : 0,
                             l2 ? l2->p : NULL, l2 ? l2->len : 0,
                             &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  return r;
}

static bool
header_clean (const unsigned char *img, size_t len)
{
  tp_regf_header hdr;
  char why[256];
  return img && tp_regf_check_primary (img, len, &hdr, why, sizeof why) == 0 &&
         hdr.seq_primary == hdr.seq_secondary &&
         hdr.checksum_stored == tp_regf_checksum (img) &&
         (uint64_t) hdr.bins_size + BB <= len;
}

static char tmpdir[64];

/* Open an image with hivex through a temporary file. */
static hive_h *
hivex_of (const unsigned char *img, size_t len, const char *name)
{
  char path[128];
  snprintf (path, sizeof path, "%s/%s", tmpdir, name);
  if (write_all (path, img, len) < 0)
    return NULL;
  hive_h *h = hivex_open (path, 0);
  unlink (path);
  return h;
}

/* The Marker value as hivex reads it, or -1. */
static long
hivex_marker (const unsigned char *img, size_t len)
{
  hive_h *h = img ? hivex_of (img, len, "marker.hive") : NULL;
  if (!h)
    return -1;
  long v = -1;
  errno = 0;
  hive_value_h val = hivex_node_get_value (h, hivex_root (h), "Marker");
  if (val) {
    errno = 0;
    int32_t d = hivex_value_dword (h, val);
    if (errno == 0)
      v = (long) (uint32_t) d;
  }
  hivex_close (h);
  return v;
}

static bool
contains (const char *s, const char *part)
{
  return s && strstr (s, part) != NULL;
}

/* ---- Marvin32 --------------------------------------------------------- */

static void
test_marvin32 (void)
{
  /* Published vectors (.NET's MarvinTests), covering every tail length. */
  static const struct { const char *hex; uint64_t want; } v[] = {
    { "", UINT64_C (0x30ED35C100CD3C7D) },
    { "af", UINT64_C (0x48E73FC77D75DDC1) },
    { "e70f", UINT64_C (0xB5F6E1FC485DBFF8) },
    { "37f495", UINT64_C (0xF0B07C789B8CF7E8) },
    { "8642dc59", UINT64_C (0x7008F2E87E9CF556) },
    { "153fb79826", UINT64_C (0xE6C08C6DA2AFA997) },
    { "0932e6246c47", UINT64_C (0x6F04BF1A5EA24060) },
    { "ab427ea8d10fc7", UINT64_C (0xE11847E4F0678C41) },
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    unsigned char data[8];
    size_t n = strlen (v[i].hex) / 2;
    for (size_t k = 0; k < n; k++) {
      unsigned x;
      sscanf (v[i].hex + 2 * k, "%2x", &x);
      data[k] = (unsigned char) x;
    }
    ok (tp_marvin32 (data, n, UINT64_C (0x004FB61A001BDBCC)) == v[i].want,
        "Marvin32 of %zu bytes matches the published vector", n);
  }
}

/* ---- Real Windows data ---------------------------------------------- */

static const char *
testdata_dir (char *buf, size_t len)
{
  const char *env = getenv ("TLSPATCH_TESTDATA");
  if (env && *env)
    snprintf (buf, len, "%s", env);
  else {
    const char *top = getenv ("top_srcdir");
    snprintf (buf, len, "%s/../shared/testdata/regf-logs", top && *top ? top : ".");
  }
  return buf;
}

/* Count a difference; describe the first one. */
static void note_diff (int *diffs, char *first, size_t flen, const char *fmt, ...)
  __attribute__((format (printf, 4, 5)));

static void
note_diff (int *diffs, char *first, size_t flen, const char *fmt, ...)
{
  if ((*diffs)++ == 0) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (first, flen, fmt, ap);
    va_end (ap);
  }
}

/* Compare two hives key by key: names, values (name, type, data),
 * children, recursively. Returns the number of differences and
 * describes the first one in `first`. */
static int
compare_nodes (hive_h *a, hive_node_h na, hive_h *b, hive_node_h nb, const char *path,
               char *first, size_t flen)
{
  int diffs = 0;
  char *an = hivex_node_name (a, na), *bn = hivex_node_name (b, nb);
  char here[1024];
  snprintf (here, sizeof here, "%s\\%s", path, an ? an : "?");
#define DIFF(...) note_diff (&diffs, first, flen, __VA_ARGS__)
  if (!an || !bn || strcmp (an, bn) != 0)
    DIFF ("%s: key name differs (%s)", here, bn ? bn : "?");

  hive_value_h *av = hivex_node_values (a, na), *bv = hivex_node_values (b, nb);
  size_t ac = 0, bc = 0;
  while (av && av[ac])
    ac++;
  while (bv && bv[bc])
    bc++;
  if (!av || !bv || ac != bc)
    DIFF ("%s: %zu values against %zu", here, ac, bc);
  else
    for (size_t i = 0; i < ac; i++) {
      char *ak = hivex_value_key (a, av[i]), *bk = hivex_value_key (b, bv[i]);
      hive_type at, bt;
      size_t al = 0, bl = 0;
      char *ad = hivex_value_value (a, av[i], &at, &al);
      char *bd = hivex_value_value (b, bv[i], &bt, &bl);
      if (!ak || !bk || strcmp (ak, bk) != 0)
        DIFF ("%s: value name %s against %s", here, ak ? ak : "?", bk ? bk : "?");
      else if (!ad || !bd || at != bt || al != bl || memcmp (ad, bd, al) != 0)
        DIFF ("%s: value \"%s\" differs (type %d/%d, %zu/%zu bytes)", here, ak,
              (int) at, (int) bt, al, bl);
      free (ak); free (bk); free (ad); free (bd);
    }
  free (av);
  free (bv);

  hive_node_h *ak = hivex_node_children (a, na), *bk = hivex_node_children (b, nb);
  size_t akc = 0, bkc = 0;
  while (ak && ak[akc])
    akc++;
  while (bk && bk[bkc])
    bkc++;
  if (!ak || !bk || akc != bkc)
    DIFF ("%s: %zu subkeys against %zu", here, akc, bkc);
  else
    for (size_t i = 0; i < akc; i++) {
      char sub[256];
      int d = compare_nodes (a, ak[i], b, bk[i], here, sub, sizeof sub);
      if (d && diffs == 0)
        snprintf (first, flen, "%s", sub);
      diffs += d;
    }
#undef DIFF
  free (ak);
  free (bk);
  free (an);
  free (bn);
  return diffs;
}

/* -1 when either cannot be opened. */
static int
compare_hives (const unsigned char *a, size_t alen, const unsigned char *b, size_t blen,
               char *first, size_t flen)
{
  hive_h *ha = hivex_of (a, alen, "a.hive"), *hb = hivex_of (b, blen, "b.hive");
  int d = -1;
  snprintf (first, flen, "hivex cannot open %s", ha ? "the expected hive" : "the result");
  if (ha && hb)
    d = compare_nodes (ha, hivex_root (ha), hb, hivex_root (hb), "", first, flen);
  if (ha)
    hivex_close (ha);
  if (hb)
    hivex_close (hb);
  return d;
}

static size_t
bytes_differing (const unsigned char *a, const unsigned char *b, size_t from, size_t len)
{
  size_t n = 0;
  for (size_t i = from; i < len; i++)
    n += a[i] != b[i];
  return n;
}

static void
test_windows_new (const char *dir)
{
  char path[1100], l1p[1110], l2p[1110], wp[1100];
  snprintf (path, sizeof path, "%s/NewDirtyHive1/NewDirtyHive", dir);
  snprintf (l1p, sizeof l1p, "%s.LOG1", path);
  snprintf (l2p, sizeof l2p, "%s.LOG2", path);
  snprintf (wp, sizeof wp, "%s/NewDirtyHive1/RecoveredHive_Windows10", dir);
  bytes win, prim, l1, l2;
  int missing = 0;                          /* read all: each one sets its buffer */
  missing += read_all (wp, &win) < 0;
  missing += read_all (path, &prim) < 0;
  missing += read_all (l1p, &l1) < 0;
  missing += read_all (l2p, &l2) < 0;
  if (missing || win.len <= BB || prim.len <= BB || l1.len < 512 || l2.len < 512) {
    skip (10, "Windows 10 test data not found");
    bytes_free (&win);
    bytes_free (&prim);
    bytes_free (&l1);
    bytes_free (&l2);
    return;
  }

  run r;
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc == 0 && r.info.dirty && r.info.format == TP_LOG_NEW,
      "Windows 10 dirty hive: recovered from new-format logs %s", r.why);
  ok (r.info.n_logs_used == 2 && contains (r.info.logs_used[0], ".LOG1") &&
      contains (r.info.logs_used[1], ".LOG2"),
      "both logs used, the one with the earlier entries (.LOG1) first");
  ok (r.info.entries == 4 && r.info.seq_before_primary == 3 && r.info.seq_before_secondary == 2,
      "4 entries applied (2 from .LOG1, 3..5 from .LOG2) to a 3/2 primary");
  ok (r.info.seq_after == 6, "sequence numbers 6/6, as Windows wrote (got %u)", r.info.seq_after);
  ok (r.out && r.out_len == win.len && memcmp (r.out + BB, win.p + BB, win.len - BB) == 0,
      "hive bins byte-identical to Windows 10's recovery (offset 4096 to the end)");
  ok (r.out && r.out_len == win.len && memcmp (r.out, win.p, BB) == 0,
      "base block byte-identical to Windows 10's too");
  ok (header_clean (r.out, r.out_len), "recovered header: sequence numbers equal, checksum right");

  /* The same through buffers, logs given the other way round. */
  run s = recover (&prim, &l2, &l1);
  ok (s.rc == 0 && r.out && s.out_len == r.out_len && memcmp (s.out, r.out, r.out_len) == 0 &&
      s.info.n_logs_used == 2 && strcmp (s.info.logs_used[0], "log2") == 0,
      "logs swapped: same result, the earlier log still first");
  run_free (&s);

  /* The .LOG2 entries alone chain from the primary (3 = its primary
   * sequence number); without .LOG2 only entry 2 applies. */
  s = recover (&prim, &l1, NULL);
  ok (s.rc == 0 && s.info.entries == 1 && s.info.seq_after == 4,
      ".LOG1 alone: entry 2 applies, sequence numbers 4/4, above the primary's 3 (%s)", s.why);
  run_free (&s);
  bytes damaged = bytes_copy (&prim);
  damaged.p[100] ^= 0x55;                   /* bad checksum: base block from the log */
  s = recover (&damaged, &l1, &l2);
  ok (s.rc == 0 && s.info.base_block_from_log && s.info.n_logs_used == 1 &&
      strcmp (s.info.logs_used[0], "log2") == 0 && s.out_len == win.len &&
      memcmp (s.out + BB, win.p + BB, win.len - BB) == 0 && header_clean (s.out, s.out_len),
      "damaged base block: rebuilt from the log with the latest entries, same bins (%s)",
      s.why);
  run_free (&s);
  bytes_free (&damaged);

  run_free (&r);
  bytes_free (&win);
  bytes_free (&prim);
  bytes_free (&l1);
  bytes_free (&l2);
}

static void
test_windows_old (const char *dir)
{
  char path[1100], wp[1100], lp[1110];
  snprintf (path, sizeof path, "%s/OldDirtyHive/OldDirtyHive", dir);
  snprintf (wp, sizeof wp, "%s/OldDirtyHive/RecoveredHive_Windows7", dir);
  snprintf (lp, sizeof lp, "%s.LOG1", path);
  bytes win, prim, lg;
  int missing = 0;
  missing += read_all (wp, &win) < 0;
  missing += read_all (path, &prim) < 0;
  missing += read_all (lp, &lg) < 0;
  if (missing || win.len <= BB || prim.len <= BB || lg.len < 1024 + 28) {
    skip (6, "Windows 7 test data not found");
    bytes_free (&win);
    bytes_free (&prim);
    bytes_free (&lg);
    return;
  }
  run r;
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc == 0 && r.info.dirty && r.info.format == TP_LOG_OLD && r.info.n_logs_used == 1 &&
      contains (r.info.logs_used[0], ".LOG1"),
      "Windows 7 dirty hive: recovered from the old-format .LOG1 %s", r.why);
  ok (r.info.pages == 64 && r.info.seq_after == 6,
      "64 dirty pages applied, sequence numbers 6/6 (got %u pages, %u)",
      r.info.pages, r.info.seq_after);
  ok (header_clean (r.out, r.out_len), "recovered header: sequence numbers equal, checksum right");

  char first[512] = "";
  int d = r.out ? compare_hives (win.p, win.len, r.out, r.out_len, first, sizeof first) : -1;
  ok (d == 0, "same keys, values, types and data as Windows 7's recovery (hivex)%s%s",
      d ? ": " : "", d ? first : "");
  d = compare_hives (win.p, win.len, prim.p, prim.len, first, sizeof first);
  ok (d > 0, "the dirty primary itself differs from it (%s)", first);

  /* Not byte-identical: Windows 7 wrote the hive once more after its
   * recovery (sequence 7), stamping its own time in the first bin and
   * recomputing one key's largest value name length. Both are in pages
   * taken verbatim from the log. */
  size_t n = r.out && r.out_len == win.len ? bytes_differing (r.out, win.p, BB, win.len) : SIZE_MAX;
  printf ("# old format: %zu bytes of hive bins differ from Windows 7's file\n", n);
  ok (n == 6 && memcmp (r.out + BB + 20, lg.p + 1024 + 20, 8) == 0,
      "only 6 bytes of bins differ, all from Windows 7's later write (first bin's timestamp "
      "is the log's)");
  run_free (&r);
  bytes_free (&win);
  bytes_free (&prim);
  bytes_free (&lg);
}

/* ---- Crafted: new format -------------------------------------------- */

/* The dirty primary (write 11 under way, 10 complete) and the states
 * its entries 11, 12, 13 lead to. */
typedef struct {
  bytes primary, s11, s12, s13;
} new_fixture;

static new_fixture
new_fixture_make (void)
{
  new_fixture f;
  f.primary = hive_new (4, 1);
  set_seq (&f.primary, 11, 10);
  f.s11 = bytes_copy (&f.primary);
  set_marker (&f.s11, 2);
  f.s12 = bytes_copy (&f.s11);
  fill_bin (&f.s12, 2, 0xB2);
  f.s13 = bytes_copy (&f.s12);
  set_marker (&f.s13, 3);
  return f;
}

static void
new_fixture_free (new_fixture *f)
{
  bytes_free (&f->primary);
  bytes_free (&f->s11);
  bytes_free (&f->s12);
  bytes_free (&f->s13);
}

static const page_ref BIN0 = { 0, 4096 }, BIN2 = { 8192, 4096 };

/* A log with entries 11 (bin 0), 12 (bin 2), 13 (bin 0); offsets out. */
static bytes
new_log_3 (const new_fixture *f, size_t off[3])
{
  bytes lg = log_start (&f->primary, 6, 11);
  off[0] = log_entry (&lg, &f->s11, 11, 0, &BIN0, 1);
  off[1] = log_entry (&lg, &f->s12, 12, 0, &BIN2, 1);
  off[2] = log_entry (&lg, &f->s13, 13, 0, &BIN0, 1);
  return lg;
}

static void
test_new_crafted (void)
{
  new_fixture f = new_fixture_make ();
  size_t off[3];
  bytes lg = new_log_3 (&f, off);

  run r = recover (&f.primary, &lg, NULL);
  ok (r.rc == 0 && r.info.dirty && r.info.format == TP_LOG_NEW && r.info.entries == 3 &&
      r.info.pages == 3 && r.info.n_logs_used == 1 && !r.info.stopped,
      "new format: 3 entries replayed %s", r.why);
  ok (r.out && r.out_len == f.s13.len && memcmp (r.out + BB, f.s13.p + BB, f.s13.len - BB) == 0,
      "new format: the replayed pages landed (bins equal the final state)");
  ok (hivex_marker (r.out, r.out_len) == 3 && r.out && bin_fill (r.out, 2) == 0xB2,
      "new format: hivex reads Marker=3, bin 2 holds entry 12's page");
  ok (header_clean (r.out, r.out_len) && r.info.seq_after == 14,
      "new format: clean header, sequence numbers 14/14 (got %u)", r.info.seq_after);
  run_free (&r);

  /* The clean result is left alone, and so are its stale logs. */
  bytes clean = hive_new (4, 3);
  set_seq (&clean, 14, 14);
  r = recover (&clean, &lg, NULL);
  ok (r.rc == 0 && !r.info.dirty && r.out == NULL, "a clean hive: nothing to do, logs ignored");
  run_free (&r);
  bytes_free (&clean);

  bytes bad = bytes_copy (&lg);
  bad.p[off[0] + 48 + 200] ^= 1;            /* a torn page in entry 11 */
  r = recover (&f.primary, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "Hash-1") && !r.out,
      "new format: bad Hash-1 in the first entry refused: %s", r.why);
  run_free (&r);
  bad.p[off[0] + 48 + 200] ^= 1;
  bad.p[off[0] + 12] ^= 1;                  /* header edited, Hash-2 not */
  r = recover (&f.primary, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "Hash-2"), "new format: bad Hash-2 refused: %s", r.why);
  run_free (&r);
  bytes_free (&bad);

  bad = bytes_copy (&lg);
  bad.p[off[2] + 48 + 100] ^= 1;            /* a torn last entry: the normal crash */
  r = recover (&f.primary, &bad, NULL);
  ok (r.rc == 0 && r.info.entries == 2 && hivex_marker (r.out, r.out_len) == 2 &&
      r.out && bin_fill (r.out, 2) == 0xB2 && contains (r.info.stopped, "Hash-1"),
      "new format: bad hash in a later entry: replay stops before it, earlier ones apply (%s)",
      r.info.stopped ? r.info.stopped : r.why);
  ok (r.info.seq_after == 14,
      "new format: sequence numbers still above the unapplied entry (got %u)", r.info.seq_after);
  run_free (&r);
  bytes_free (&bad);

  bad = bytes_copy (&lg);
  tp_put32 (bad.p + off[1] + 16, 4097);        /* hive bins data size not a multiple of 4 KiB */
  rehash_entry (&bad, off[1]);
  r = recover (&f.primary, &bad, NULL);
  ok (r.rc == 0 && r.info.entries == 1 && contains (r.info.stopped, "bins data size"),
      "new format: bad hive bins data size stops replay (%s)", r.info.stopped);
  run_free (&r);
  tp_put32 (bad.p + off[1] + 16, 16384);
  tp_put32 (bad.p + off[1] + 40, 16384 - 2048);  /* page runs past the hive bins data */
  rehash_entry (&bad, off[1]);
  r = recover (&f.primary, &bad, NULL);
  ok (r.rc == 0 && r.info.entries == 1 && contains (r.info.stopped, "beyond"),
      "new format: a page outside the hive stops replay (%s)", r.info.stopped);
  run_free (&r);
  bytes_free (&bad);

  /* Sequence gaps. */
  bytes gap = log_start (&f.primary, 6, 11);
  log_entry (&gap, &f.s11, 11, 0, &BIN0, 1);
  log_entry (&gap, &f.s12, 12, 0, &BIN2, 1);
  log_entry (&gap, &f.s13, 14, 0, &BIN0, 1);
  r = recover (&f.primary, &gap, NULL);
  ok (r.rc == 0 && r.info.entries == 2 && hivex_marker (r.out, r.out_len) == 2 &&
      r.info.seq_after == 15,
      "new format: 11, 12, 14: replay stops after 12 (sequence numbers %u)", r.info.seq_after);
  run_free (&r);
  bytes_free (&gap);
  gap = log_start (&f.primary, 6, 13);
  log_entry (&gap, &f.s13, 13, 0, &BIN0, 1);
  r = recover (&f.primary, &gap, NULL);
  ok (r.rc == 0 && r.info.entries == 1 && hivex_marker (r.out, r.out_len) == 3 &&
      r.info.seq_after == 14,
      "new format: entries numbered above the primary's write apply (logs ahead) %s", r.why);
  run_free (&r);
  bytes_free (&gap);
  gap = log_start (&f.primary, 6, 8);
  log_entry (&gap, &f.s11, 8, 0, &BIN0, 1);
  log_entry (&gap, &f.s13, 9, 0, &BIN0, 1);
  r = recover (&f.primary, &gap, NULL);
  ok (r.rc < 0 && contains (r.why, "stale"), "new format: a stale log refused: %s", r.why);
  run_free (&r);
  bytes_free (&gap);
  gap = log_start (&f.primary, 6, 11);
  log_entry (&gap, &f.s11, 12, 0, &BIN0, 1);
  r = recover (&f.primary, &gap, NULL);
  ok (r.rc < 0 && contains (r.why, "base block"),
      "new format: first entry not numbered as its log refused: %s", r.why);
  run_free (&r);
  bytes_free (&gap);

  /* A log of another hive. */
  bytes other = bytes_copy (&lg);
  memcpy (other.p + 12, OTHER_STAMP, 8);
  fix_checksum (other.p);
  r = recover (&f.primary, &other, NULL);
  ok (r.rc < 0 && contains (r.why, "another hive"),
      "new format: a log of another hive refused: %s", r.why);
  run_free (&r);
  bytes_free (&other);

  /* Truncated logs. */
  bytes cut = bytes_copy (&lg);
  cut.len = off[0] + 1024;
  r = recover (&f.primary, &cut, NULL);
  ok (r.rc < 0 && contains (r.why, "truncated"),
      "new format: log cut inside its first entry refused: %s", r.why);
  run_free (&r);
  cut.len = off[1] + 600;
  r = recover (&f.primary, &cut, NULL);
  ok (r.rc == 0 && r.info.entries == 1 && hivex_marker (r.out, r.out_len) == 2 &&
      contains (r.info.stopped, "truncated"),
      "new format: log cut inside its second entry: the first applies");
  run_free (&r);
  cut.len = 300;
  r = recover (&f.primary, &cut, NULL);
  ok (r.rc < 0 && contains (r.why, "under one sector"),
      "new format: log shorter than a sector refused: %s", r.why);
  run_free (&r);
  cut.len = 512;
  r = recover (&f.primary, &cut, NULL);
  ok (r.rc < 0 && contains (r.why, "no log entries"),
      "new format: log with a base block and no entries refused: %s", r.why);
  run_free (&r);
  bytes_free (&cut);

  /* Two logs: A has 11, 12; B has 13. Either order of arguments. */
  bytes a = log_start (&f.primary, 6, 11), b = log_start (&f.primary, 6, 13);
  log_entry (&a, &f.s11, 11, 0, &BIN0, 1);
  log_entry (&a, &f.s12, 12, 0, &BIN2, 1);
  log_entry (&b, &f.s13, 13, 0, &BIN0, 1);
  run ab = recover (&f.primary, &a, &b), ba = recover (&f.primary, &b, &a);
  ok (ab.rc == 0 && ab.info.entries == 3 && hivex_marker (ab.out, ab.out_len) == 3 &&
      ab.info.n_logs_used == 2 && strcmp (ab.info.logs_used[0], "log1") == 0,
      "new format: LOG1 (11, 12) then LOG2 (13) %s", ab.why);
  ok (ba.rc == 0 && ba.out_len == ab.out_len && ab.out && memcmp (ba.out, ab.out, ab.out_len) == 0 &&
      ba.info.n_logs_used == 2 && strcmp (ba.info.logs_used[0], "log2") == 0,
      "new format: LOG1 (13) and LOG2 (11, 12): the earlier one still applies first, same result");
  run_free (&ab);
  run_free (&ba);
  bytes_free (&b);
  b = log_start (&f.primary, 6, 14);
  log_entry (&b, &f.s13, 14, 0, &BIN0, 1);
  r = recover (&f.primary, &b, &a);
  ok (r.rc == 0 && r.info.entries == 2 && r.info.n_logs_used == 1 &&
      contains (r.info.stopped, "not 13"),
      "new format: a gap between the logs stops replay after the first (%s)", r.info.stopped);
  run_free (&r);
  bytes_free (&b);
  b = log_start (&f.primary, 6, 7);          /* an older log from before the last write */
  log_entry (&b, &f.s11, 7, 0, &BIN0, 1);
  r = recover (&f.primary, &a, &b);
  ok (r.rc == 0 && r.info.entries == 2 && r.info.n_logs_used == 1 &&
      strcmp (r.info.logs_used[0], "log1") == 0,
      "new format: a stale second log is skipped, the current one applies");
  run_free (&r);
  bytes_free (&a);
  bytes_free (&b);

  /* A dirty hive with no logs at all. */
  r = recover (&f.primary, NULL, NULL);
  ok (r.rc < 0 && contains (r.why, "no transaction log"), "dirty hive without logs refused: %s",
      r.why);
  run_free (&r);

  /* A damaged base block, rebuilt from the log's copy. */
  bytes dam = bytes_copy (&f.primary);
  dam.p[200] ^= 0xFF;
  r = recover (&dam, &lg, NULL);
  ok (r.rc == 0 && r.info.base_block_from_log && r.info.entries == 3 &&
      header_clean (r.out, r.out_len) && hivex_marker (r.out, r.out_len) == 3,
      "new format: bad header checksum: base block from the log, entries applied %s", r.why);
  run_free (&r);
  r = recover (&dam, NULL, NULL);
  ok (r.rc < 0 && contains (r.why, "checksum"),
      "bad header checksum and no log refused: %s", r.why);
  run_free (&r);
  bytes_free (&dam);

  new_fixture_free (&f);
  bytes_free (&lg);
}

static void
test_new_growth (void)
{
  bytes prim = hive_new (4, 1);
  set_seq (&prim, 21, 20);
  bytes grown = hive_new (5, 1);            /* a fifth bin, all 0x44 */
  set_marker (&grown, 5);
  bytes lg = log_start (&prim, 6, 21);
  page_ref pages[2] = { { 0, 4096 }, { 16384, 4096 } };
  log_entry (&lg, &grown, 21, 1, pages, 2);
  run r = recover (&prim, &lg, NULL);
  ok (r.rc == 0 && r.out_len == BB + 5 * 4096 && r.out && tp_le32 (r.out + 40) == 5 * 4096 &&
      bin_fill (r.out, 4) == 0x44 && hivex_marker (r.out, r.out_len) == 5,
      "new format: the hive grows with the entry's hive bins data size %s", r.why);
  ok (r.out && (tp_le32 (r.out + 144) & 1) == 1, "new format: flag bit 0 restored from the entry");
  run_free (&r);

  /* A dirty page that leaves bin 2 invalid: replaced by an empty bin. */
  bytes broken = bytes_copy (&prim);
  memcpy (broken.p + BB + 8192, "junk", 4);
  bytes_free (&lg);
  lg = log_start (&prim, 6, 21);
  log_entry (&lg, &broken, 21, 0, &BIN2, 1);
  r = recover (&prim, &lg, NULL);
  ok (r.rc == 0 && r.info.bins_replaced == 1 && header_clean (r.out, r.out_len) &&
      r.out && memcmp (r.out + BB + 8192, "hbin", 4) == 0 && hivex_marker (r.out, r.out_len) == 1,
      "new format: an invalid dirty bin is replaced by an empty one %s", r.why);
  run_free (&r);
  bytes_free (&broken);
  bytes_free (&prim);
  bytes_free (&grown);
  bytes_free (&lg);
}

/* ---- Crafted: old format -------------------------------------------- */

static void
test_old_crafted (void)
{
  bytes prim = hive_new (4, 1);
  set_seq (&prim, 11, 10);
  bytes state = bytes_copy (&prim);
  set_marker (&state, 2);
  fill_bin (&state, 2, 0xB2);
  static const uint32_t blocks[2] = { 0, 2 };
  bytes lg = old_log (&state, 11, blocks, 2);

  run r = recover (&prim, &lg, NULL);
  ok (r.rc == 0 && r.info.dirty && r.info.format == TP_LOG_OLD && r.info.pages == 16 &&
      r.info.entries == 0 && !r.info.stopped,
      "old format: 16 dirty pages replayed %s", r.why);
  ok (r.out && memcmp (r.out + BB, state.p + BB, state.len - BB) == 0 &&
      hivex_marker (r.out, r.out_len) == 2 && bin_fill (r.out, 2) == 0xB2,
      "old format: the pages landed (bins equal the logged state, hivex reads Marker=2)");
  ok (header_clean (r.out, r.out_len) && r.info.seq_after == 12,
      "old format: clean header, sequence numbers 12/12 (got %u)", r.info.seq_after);
  run_free (&r);

  /* An invalid dirty bin: first one (nothing applies), later one. */
  bytes bad = bytes_copy (&lg);
  memcpy (bad.p + 1024, "junk", 4);         /* header page of bin 0 */
  r = recover (&prim, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "invalid"),
      "old format: an invalid first dirty bin refused: %s", r.why);
  run_free (&r);
  bytes_free (&bad);
  bad = bytes_copy (&lg);
  memcpy (bad.p + 1024 + 8 * 512, "junk", 4);  /* header page of bin 2 */
  r = recover (&prim, &bad, NULL);
  ok (r.rc == 0 && r.info.pages == 8 && hivex_marker (r.out, r.out_len) == 2 &&
      r.out && bin_fill (r.out, 2) == 0x42 && contains (r.info.stopped, "invalid"),
      "old format: an invalid later dirty bin stops replay, earlier bins apply (%s)",
      r.info.stopped);
  run_free (&r);
  bytes_free (&bad);

  bad = bytes_copy (&lg);
  bad.p[100] ^= 1;
  r = recover (&prim, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "checksum"), "old format: bad base block checksum refused: %s",
      r.why);
  run_free (&r);
  bytes_free (&bad);
  bad = bytes_copy (&lg);
  memcpy (bad.p + 512, "DIRX", 4);
  r = recover (&prim, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "DIRT"), "old format: no dirty vector refused: %s", r.why);
  run_free (&r);
  bytes_free (&bad);

  /* Clustering factor 8 (4 KiB sectors, before Windows 8): the vector
   * and the pages move to sector boundaries. */
  bytes big = old_log_cf (&state, 11, blocks, 2, 8);
  r = recover (&prim, &big, NULL);
  ok (r.rc == 0 && r.info.pages == 16 && r.out &&
      memcmp (r.out + BB, state.p + BB, state.len - BB) == 0,
      "old format: clustering factor 8 (DIRT at 4096, pages from 8192) %s", r.why);
  run_free (&r);
  bytes_free (&big);
  bad = old_log_cf (&state, 11, blocks, 2, 3);
  r = recover (&prim, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "clustering factor 3"),
      "old format: clustering factor 3 refused: %s", r.why);
  run_free (&r);
  bytes_free (&bad);
  bad = bytes_copy (&lg);
  bad.len = 512 + 4 + 2;                    /* the bitmap needs 4 bytes */
  r = recover (&prim, &bad, NULL);
  ok (r.rc < 0 && contains (r.why, "inside its dirty vector"),
      "old format: log cut inside its dirty vector refused: %s", r.why);
  run_free (&r);
  bytes_free (&bad);

  /* Sequence gap: a log from before the primary's last completed write. */
  bytes stale = old_log (&state, 9, blocks, 2);
  r = recover (&prim, &stale, NULL);
  ok (r.rc < 0 && contains (r.why, "older than the primary"),
      "old format: a stale log (sequence 9 < 10) refused: %s", r.why);
  run_free (&r);
  bytes_free (&stale);

  bytes other = bytes_copy (&lg);
  memcpy (other.p + 12, OTHER_STAMP, 8);
  fix_checksum (other.p);
  r = recover (&prim, &other, NULL);
  ok (r.rc < 0 && contains (r.why, "another hive"),
      "old format: a log of another hive refused: %s", r.why);
  run_free (&r);
  bytes_free (&other);

  bytes cut = bytes_copy (&lg);
  cut.len -= 512;
  r = recover (&prim, &cut, NULL);
  ok (r.rc < 0 && contains (r.why, "truncated"), "old format: truncated log refused: %s", r.why);
  run_free (&r);
  cut.len = 600;
  r = recover (&prim, &cut, NULL);
  ok (r.rc < 0 && contains (r.why, "truncated"),
      "old format: log cut in its dirty vector refused: %s", r.why);
  run_free (&r);
  bytes_free (&cut);

  /* Two logs, chosen as Windows 8 does: 10 (only bin 0 logged) and 11
   * (bins 0 and 2). .LOG1 applies whenever its timestamp is the
   * primary's; .LOG2 only when .LOG1 does not and .LOG2 is newer. */
  bytes older_state = bytes_copy (&prim);
  set_marker (&older_state, 2);
  bytes older = old_log (&older_state, 10, blocks, 1);
  run ab = recover (&prim, &older, &lg), ba = recover (&prim, &lg, &older);
  ok (ab.rc == 0 && ab.info.n_logs_used == 1 && strcmp (ab.info.logs_used[0], "log1") == 0 &&
      ab.out && bin_fill (ab.out, 2) == 0x42,
      "old format: LOG1 (10) applies, LOG2 (11) is not looked at %s", ab.why);
  ok (ba.rc == 0 && ba.info.n_logs_used == 1 && strcmp (ba.info.logs_used[0], "log1") == 0 &&
      ba.out && bin_fill (ba.out, 2) == 0xB2, "old format: LOG1 (11) and LOG2 (10): LOG1");
  run_free (&ab);
  run_free (&ba);
  bytes prev = bytes_copy (&older);           /* an earlier write's log: an older timestamp */
  tp_put64 (prev.p + 12, tp_le64 (prev.p + 12) - 1);
  fix_checksum (prev.p);
  r = recover (&prim, &prev, &lg);
  ok (r.rc == 0 && r.info.n_logs_used == 1 && strcmp (r.info.logs_used[0], "log2") == 0 &&
      r.out && bin_fill (r.out, 2) == 0xB2,
      "old format: LOG1 of an earlier write, LOG2 newer (cumulative): LOG2 %s", r.why);
  run_free (&r);
  r = recover (&prim, &lg, &prev);
  ok (r.rc == 0 && strcmp (r.info.logs_used[0], "log1") == 0,
      "old format: LOG1 current, LOG2 of an earlier write: LOG1 %s", r.why);
  run_free (&r);
  bytes newer = bytes_copy (&lg);             /* LOG2 newer than the primary and LOG1 */
  tp_put64 (newer.p + 12, tp_le64 (newer.p + 12) + 1);
  fix_checksum (newer.p);
  r = recover (&prim, &prev, &newer);
  ok (r.rc == 0 && strcmp (r.info.logs_used[0], "log2") == 0,
      "old format: LOG2 is used even when its timestamp is not the primary's %s", r.why);
  run_free (&r);
  r = recover (&prim, &newer, &prev);
  ok (r.rc < 0 && contains (r.why, "timestamp"),
      "old format: LOG1 not applicable and LOG2 older: refused: %s", r.why);
  run_free (&r);
  bytes broken = bytes_copy (&older);
  broken.p[100] ^= 1;                         /* LOG1 invalid: any valid LOG2 */
  r = recover (&prim, &broken, &prev);
  ok (r.rc == 0 && strcmp (r.info.logs_used[0], "log2") == 0,
      "old format: LOG1 invalid: LOG2, whatever its timestamp %s", r.why);
  run_free (&r);
  bytes_free (&broken);
  bytes_free (&newer);
  bytes_free (&prev);
  bytes broken_newer = bytes_copy (&lg);
  broken_newer.len -= 512;                  /* the newer log was being written: torn */
  r = recover (&prim, &older, &broken_newer);
  ok (r.rc == 0 && r.info.n_logs_used == 1 && strcmp (r.info.logs_used[0], "log1") == 0 &&
      hivex_marker (r.out, r.out_len) == 2 && r.out && bin_fill (r.out, 2) == 0x42,
      "old format: a torn newer log falls back to the previous one %s", r.why);
  run_free (&r);
  bytes_free (&broken_newer);
  bytes_free (&older);
  bytes_free (&older_state);

  /* Damaged base block: from the log; the first bin's timestamp matches. */
  bytes dam = bytes_copy (&prim);
  memset (dam.p, 0, 512);
  r = recover (&dam, &lg, NULL);
  ok (r.rc == 0 && r.info.base_block_from_log && header_clean (r.out, r.out_len) &&
      hivex_marker (r.out, r.out_len) == 2,
      "old format: a zeroed base block is rebuilt from the log %s", r.why);
  run_free (&r);
  tp_put64 (dam.p + BB + 20, tp_le64 (dam.p + BB + 20) - 1);
  r = recover (&dam, &lg, NULL);
  ok (r.rc == 0 && r.info.base_block_from_log && hivex_marker (r.out, r.out_len) == 2,
      "old format: ... also when the first bin's timestamp is older than the log's %s", r.why);
  run_free (&r);
  bytes_free (&dam);

  /* Growth: the log describes five bins, the fifth only in the log. */
  bytes grown = hive_new (5, 7);
  memcpy (grown.p + 4, prim.p + 4, 8);
  fix_checksum (grown.p);
  static const uint32_t gblocks[2] = { 0, 4 };
  bytes glog = old_log (&grown, 11, gblocks, 2);
  r = recover (&prim, &glog, NULL);
  ok (r.rc == 0 && r.out_len == BB + 5 * 4096 && hivex_marker (r.out, r.out_len) == 7 &&
      r.out && bin_fill (r.out, 4) == 0x44,
      "old format: the hive grows to the log's hive bins data size %s", r.why);
  run_free (&r);
  bytes_free (&grown);
  bytes_free (&glog);

  /* A new-format log beside an old one wins; the old one is ignored. */
  bytes nlog = log_start (&prim, 6, 11);
  log_entry (&nlog, &state, 11, 0, &BIN0, 1);
  r = recover (&prim, &lg, &nlog);
  ok (r.rc == 0 && r.info.format == TP_LOG_NEW && r.info.n_logs_used == 1 &&
      strcmp (r.info.logs_used[0], "log2") == 0 && r.out && bin_fill (r.out, 2) == 0x42,
      "an old-format log beside a new-format one is ignored %s", r.why);
  run_free (&r);
  bytes_free (&nlog);

  bytes_free (&prim);
  bytes_free (&state);
  bytes_free (&lg);
}

/* ---- Other refusals ---------------------------------------------------- */

static void
test_not_hives (void)
{
  bytes junk = { NULL, 0 };
  bytes_append (&junk, NULL, 8192);
  run r = recover (&junk, NULL, NULL);
  ok (r.rc < 0 && contains (r.why, "not a registry hive"), "zeros refused: %s", r.why);
  run_free (&r);
  bytes_free (&junk);

  bytes h = hive_new (2, 1);
  bytes lg = log_start (&h, 6, 10);
  bytes_append (&lg, NULL, 8192 - 512);
  r = recover (&lg, NULL, NULL);
  ok (r.rc < 0 && contains (r.why, "file type 6"), "a log given as the primary refused: %s",
      r.why);
  run_free (&r);
  h.len = 5000;
  r = recover (&h, NULL, NULL);
  ok (r.rc < 0 && contains (r.why, "truncated"), "a primary under 8 KiB refused: %s", r.why);
  run_free (&r);
  bytes_free (&h);
  bytes_free (&lg);

  /* Sequence numbers at their limit: nothing can be written above them. */
  bytes p = hive_new (2, 1);
  set_seq (&p, 0xFFFFFFFFu, 0xFFFFFFFEu);
  bytes state = bytes_copy (&p);
  set_marker (&state, 9);
  lg = log_start (&p, 6, 0xFFFFFFFFu);
  log_entry (&lg, &state, 0xFFFFFFFFu, 0, &BIN0, 1);
  r = recover (&p, &lg, NULL);
  ok (r.rc < 0 && contains (r.why, "exhausted"), "sequence numbers at 0xffffffff refused: %s",
      r.why);
  run_free (&r);
  bytes_free (&p);
  bytes_free (&state);
  bytes_free (&lg);
}

/* ---- Files beside the primary ------------------------------------------ */

static void
put_file (const char *dir, const char *name, const bytes *b)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  if (write_all (path, b->p, b->len) < 0)
    fprintf (stderr, "cannot write %s\n", path);
}

static void
clear_dir (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  char path[512];
  while (d && (de = readdir (d)) != NULL)
    if (de->d_name[0] != '.') {
      snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
      unlink (path);
    }
  if (d)
    closedir (d);
}

static bool
file_equals (const char *dir, const char *name, const bytes *b)
{
  char path[512];
  bytes now;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  if (read_all (path, &now) < 0)
    return false;
  bool same = now.len == b->len && memcmp (now.p, b->p, b->len) == 0;
  bytes_free (&now);
  return same;
}

static void
test_files (void)
{
  char dir[128], path[256];
  snprintf (dir, sizeof dir, "%s/files", tmpdir);
  mkdir (dir, 0700);
  snprintf (path, sizeof path, "%s/TESTHIVE", dir);
  new_fixture f = new_fixture_make ();
  size_t off[3];
  bytes lg = new_log_3 (&f, off);
  bytes a = log_start (&f.primary, 6, 11), b = log_start (&f.primary, 6, 13);
  log_entry (&a, &f.s11, 11, 0, &BIN0, 1);
  log_entry (&a, &f.s12, 12, 0, &BIN2, 1);
  log_entry (&b, &f.s13, 13, 0, &BIN0, 1);

  /* Names in any case; LOG1 holds the later entries. */
  put_file (dir, "TESTHIVE", &f.primary);
  put_file (dir, "testhive.log1", &b);
  put_file (dir, "TestHive.Log2", &a);
  run r;
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc == 0 && r.info.entries == 3 && r.info.n_logs_used == 2 &&
      contains (r.info.logs_used[0], "/TestHive.Log2") &&
      contains (r.info.logs_used[1], "/testhive.log1") && hivex_marker (r.out, r.out_len) == 3,
      "files: logs found case-insensitively, replayed in sequence order %s", r.why);
  ok (file_equals (dir, "TESTHIVE", &f.primary) && file_equals (dir, "testhive.log1", &b) &&
      file_equals (dir, "TestHive.Log2", &a), "files: nothing was modified");
  run_free (&r);

  /* Two names for one log: which is it? */
  put_file (dir, "TESTHIVE.LOG1", &lg);
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc < 0 && contains (r.why, "ambiguous"), "files: two .LOG1 spellings refused: %s", r.why);
  run_free (&r);
  clear_dir (dir);

  /* The single-log scheme: a lone .LOG (old format), empty .LOG1/.LOG2. */
  bytes state = bytes_copy (&f.primary), empty = { NULL, 0 };
  set_marker (&state, 2);
  static const uint32_t blocks[1] = { 0 };
  bytes olog = old_log (&state, 11, blocks, 1);
  put_file (dir, "TESTHIVE", &f.primary);
  put_file (dir, "TESTHIVE.LOG", &olog);
  put_file (dir, "TESTHIVE.LOG1", &empty);
  put_file (dir, "TESTHIVE.LOG2", &empty);
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc == 0 && r.info.format == TP_LOG_OLD && r.info.n_logs_used == 1 &&
      contains (r.info.logs_used[0], "TESTHIVE.LOG") && hivex_marker (r.out, r.out_len) == 2,
      "files: a lone .LOG is used when .LOG1/.LOG2 are empty %s", r.why);
  run_free (&r);
  clear_dir (dir);

  /* A log that exists but cannot be read: refused, no fallback to .LOG. */
  put_file (dir, "TESTHIVE", &f.primary);
  put_file (dir, "TESTHIVE.LOG", &olog);
  snprintf (path, sizeof path, "%s/TESTHIVE.LOG1", dir);
  mkdir (path, 0700);
  snprintf (path, sizeof path, "%s/TESTHIVE", dir);
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc < 0 && contains (r.why, "cannot read") && contains (r.why, "TESTHIVE.LOG1"),
      "files: an unreadable .LOG1 refused, not skipped: %s", r.why);
  run_free (&r);
  snprintf (path, sizeof path, "%s/TESTHIVE.LOG1", dir);
  rmdir (path);
  snprintf (path, sizeof path, "%s/TESTHIVE", dir);
  clear_dir (dir);

  put_file (dir, "TESTHIVE", &f.primary);
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc < 0 && r.info.dirty && r.info.logs_missing && strlen (r.why) <= 200 &&
      contains (r.why, "no log is beside it (TESTHIVE.LOG1, TESTHIVE.LOG2, TESTHIVE.LOG)") &&
      contains (r.why, "run tlspatch on the volume or image"),
      "files: dirty hive with no log files refused in one short line naming the logs: %s", r.why);
  run_free (&r);
  bytes clean = hive_new (4, 1);
  put_file (dir, "TESTHIVE", &clean);
  put_file (dir, "TESTHIVE.LOG1", &lg);
  r.rc = tp_recover_hive (path, &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc == 0 && !r.info.dirty && !r.out, "files: clean hive, nothing to do");
  run_free (&r);
  clear_dir (dir);
  rmdir (dir);

  r.rc = tp_recover_hive ("/nonexistent/HIVE", &r.out, &r.out_len, &r.info, r.why, sizeof r.why);
  ok (r.rc < 0 && contains (r.why, "cannot read"), "files: missing primary: %s", r.why);
  run_free (&r);

  bytes_free (&clean);
  bytes_free (&state);
  bytes_free (&olog);
  bytes_free (&a);
  bytes_free (&b);
  bytes_free (&lg);
  new_fixture_free (&f);
}

/* ---- Hostile arithmetic ------------------------------------------------
 *
 * fuzz/fuzz-recover.c found no crash in this module (see the fuzzing
 * notes in the report); these are the field values it would need to find
 * one with, each re-hashed so that only the value itself is wrong:
 * numbers that wrap around 32 bits and counts that overflow a product.
 */

static void
hostile_entry (const new_fixture *f, const char *what, uint32_t field_off, uint32_t value,
               const char *expect)
{
  size_t off[3];
  bytes lg = new_log_3 (f, off);
  uint32_t size = tp_le32 (lg.p + off[1] + 4);
  tp_put32 (lg.p + off[1] + field_off, value);
  rehash_entry_sized (&lg, off[1], size);
  run r = recover (&f->primary, &lg, NULL);
  ok (r.rc == 0 && r.info.entries == 1 && contains (r.info.stopped, expect) &&
      header_clean (r.out, r.out_len),
      "hostile entry: %s stops replay (%s)", what, r.info.stopped ? r.info.stopped : r.why);
  run_free (&r);
  bytes_free (&lg);
}

static void
test_hostile_fields (void)
{
  new_fixture f = new_fixture_make ();
  /* Entry 12 holds one page reference at +40 (offset) and +44 (size). */
  hostile_entry (&f, "page offset 0xFFFFF000 + 4096 bytes (wraps to 0)", 40, 0xFFFFF000u,
                 "beyond");
  hostile_entry (&f, "page size 0xFFFFFFFF", 44, 0xFFFFFFFFu, "beyond");
  hostile_entry (&f, "0x20000000 page references (8 * n wraps to 0)", 20, 0x20000000u,
                 "do not fit");
  hostile_entry (&f, "entry size 0xFFFFFE00", 4, 0xFFFFFE00u, "bad entry size");
  hostile_entry (&f, "hive bins data size 0xFFFFF000", 16, 0xFFFFF000u, "bins data size");

  /* Bits set past the end of the hive in the dirty vector's last byte
   * are not pages: a 3-bin hive has 24 page bits, the byte holds 32. */
  bytes prim = hive_new (3, 1);
  set_seq (&prim, 11, 10);
  bytes state = bytes_copy (&prim);
  set_marker (&state, 2);
  static const uint32_t blocks[1] = { 0 };
  bytes lg = old_log (&state, 11, blocks, 1);
  lg.p[512 + 4 + 3] = 0xFF;                 /* bits 24..31 */
  run r = recover (&prim, &lg, NULL);
  ok (r.rc == 0 && r.info.pages == 8 && hivex_marker (r.out, r.out_len) == 2,
      "hostile old log: dirty bits past the hive's end are ignored %s", r.why);
  run_free (&r);
  bytes_free (&lg);
  bytes_free (&state);
  bytes_free (&prim);
  new_fixture_free (&f);
}

int
main (void)
{
  char dir[1024];
  snprintf (tmpdir, sizeof tmpdir, "/tmp/tlspatch-recover-XXXXXX");
  if (!mkdtemp (tmpdir)) {
    perror ("mkdtemp");
    return 1;
  }
  test_marvin32 ();
  testdata_dir (dir, sizeof dir);
  test_windows_new (dir);
  test_windows_old (dir);
  test_new_crafted ();
  test_new_growth ();
  test_old_crafted ();
  test_not_hives ();
  test_files ();
  test_hostile_fields ();
  rmdir (tmpdir);
  printf ("1..%d\n", test_no);
  return failures ? 1 : 0;
}
