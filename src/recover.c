/* tlspatch: replay of transaction logs into a dirty hive (spec: "Format
 * of transaction log files", "Dirty state of a hive", "Multiple
 * transaction log files"). See recover.h for the rules.
 *
 * Everything happens on a copy of the primary's bytes; the logs are only
 * read. Every offset and size taken from the inputs is checked against
 * the buffer it points into before it is used: the inputs are hostile.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/marvin32.h"
#include "tlspatch/openfile.h"
#include "tlspatch/recover.h"
#include "tlspatch/regf.h"

#define BASE_BLOCK   TP_REGF_BASE_BLOCK_SIZE
#define SECTOR       512u           /* log sector; old-format dirty page */
#define BIN_BLOCK    4096u          /* hive bins grow in 4 KiB steps */
#define ENTRY_HEAD   40u            /* new-format entry header, before the page references */
#define MAX_BINS     0x7FFFF000u    /* stable storage ends below 2 GiB */
#define MAX_FILE     ((uint64_t) 1 << 32)
#define MAX_LOG      ((size_t) 1 << 30)   /* log bytes read: base block, entries or pages */

/* ---- Bytes ---------------------------------------------------------- */

/* ---- The primary ---------------------------------------------------- */

typedef struct {
  const unsigned char *buf;
  size_t len;
  bool bb_valid;                /* signature and checksum right */
  uint32_t seq1, seq2;
  const unsigned char *stamp;   /* 8 bytes the hive's logs must carry at offset 12 */
} primary_file;

/* -1: not a hive we can work on (why); 0: clean; 1: dirty. */
static int
classify_primary (primary_file *pf, const unsigned char *buf, size_t len,
                  char *why, size_t whylen)
{
  memset (pf, 0, sizeof *pf);
  pf->buf = buf;
  pf->len = len;
  bool signature = buf && len >= 4 && memcmp (buf, "regf", 4) == 0;
  if (!signature && (!buf || len < TP_REGF_MIN_HIVE_SIZE ||
                     memcmp (buf + BASE_BLOCK, "hbin", 4) != 0)) {
    snprintf (why, whylen, "not a registry hive (no regf signature)");
    return -1;
  }
  if (len < TP_REGF_MIN_HIVE_SIZE) {
    snprintf (why, whylen, "hive file is truncated (%zu bytes, under 8 KiB)", len);
    return -1;
  }
  pf->seq1 = tp_le32 (buf + TP_BB_SEQ1);
  pf->seq2 = tp_le32 (buf + TP_BB_SEQ2);
  pf->bb_valid = signature && tp_regf_checksum_valid (buf);
  if (pf->bb_valid) {
    uint32_t type = tp_le32 (buf + TP_BB_FILE_TYPE);
    if (type != 0) {
      snprintf (why, whylen, "not a primary hive file (file type %u: a transaction log?)", type);
      return -1;
    }
    pf->stamp = buf + 12;
    return pf->seq1 != pf->seq2;
  }
  /* A damaged base block: the first hive bin's timestamp is its backup
   * copy (spec: "Hive bin", note 3), so logs are matched against it. */
  if (memcmp (buf + BASE_BLOCK, "hbin", 4) != 0 || tp_le32 (buf + BASE_BLOCK + 4) != 0) {
    snprintf (why, whylen, "bad header checksum, and no first hive bin to match "
              "transaction logs against");
    return -1;
  }
  pf->stamp = buf + BASE_BLOCK + 20;
  return 1;
}

/* ---- The logs ------------------------------------------------------- */

typedef struct {
  const char *name;             /* for messages */
  const char *path;             /* for info->logs_used */
  const unsigned char *buf;
  size_t len;
  bool ours;                    /* a valid base block copy (of this hive, new format) */
  bool usable;                  /* ours, and offers something to replay */
  bool stamp_match;             /* its last written timestamp is the primary's */
  bool chosen;                  /* old format: the one log replayed */
  uint64_t stamp;               /* its last written timestamp (old format: which log is newer) */
  tp_log_format format;
  uint32_t seq;                 /* its base block's sequence number (both are equal) */
  uint32_t bins_size;
  /* old format */
  size_t sector;                /* clustering factor * 512 */
  const unsigned char *bitmap;
  uint32_t n_bits;              /* one per 512-byte page of hive bins data */
  size_t pages_off;
  uint32_t n_dirty;
  char why[200];                /* why it is not usable */
} log_file;

static void
log_reject (log_file *lg, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

static void
log_reject (log_file *lg, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (lg->why, sizeof lg->why, fmt, ap);
  va_end (ap);
  lg->usable = false;
}

static bool
log_present (const log_file *lg)
{
  return lg->buf && lg->len > 0;
}

/* Where an old-format log keeps things (spec: "Dirty vector", "Dirty
 * pages"): the "DIRT" vector at its second sector (Clustering factor *
 * 512 bytes in), a bitmap of one bit per 512-byte page of `bins` bytes
 * of hive bins, then the dirty pages from the next sector boundary on.
 * False when the clustering factor is not a power of two up to 8. */
typedef struct {
  size_t sector, bitmap_off, bitmap_end, pages_off;
  uint32_t n_bits;
} old_layout;

static bool
old_log_layout (const unsigned char *base_block, uint32_t bins, old_layout *l)
{
  uint32_t cf = tp_le32 (base_block + TP_BB_CLUSTERING);
  if (cf == 0 || cf > 8 || (cf & (cf - 1)) != 0)
    return false;
  l->sector = (size_t) cf * SECTOR;
  l->n_bits = bins / SECTOR;
  l->bitmap_off = l->sector + 4;
  l->bitmap_end = l->bitmap_off + (l->n_bits + 7) / 8;
  l->pages_off = (l->bitmap_end + l->sector - 1) / l->sector * l->sector;
  return true;
}

static uint32_t
count_dirty (const unsigned char *bitmap, uint32_t n_bits)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < n_bits; i++)
    n += bitmap[i / 8] >> (i % 8) & 1;
  return n;
}

/* Old format: the dirty vector and its pages, all there. */
static void
parse_old_log (log_file *lg, const primary_file *pf)
{
  old_layout l;
  if (!old_log_layout (lg->buf, lg->bins_size, &l)) {
    log_reject (lg, "unsupported clustering factor %u", tp_le32 (lg->buf + TP_BB_CLUSTERING));
    return;
  }
  if (lg->len < l.bitmap_off || memcmp (lg->buf + l.sector, "DIRT", 4) != 0) {
    log_reject (lg, "no dirty vector (DIRT) in its second sector");
    return;
  }
  if (lg->len < l.bitmap_end) {
    log_reject (lg, "truncated inside its dirty vector");
    return;
  }
  lg->sector = l.sector;
  lg->n_bits = l.n_bits;
  lg->bitmap = lg->buf + l.bitmap_off;
  lg->pages_off = l.pages_off;
  lg->n_dirty = count_dirty (lg->bitmap, lg->n_bits);
  if (lg->n_dirty == 0) {
    log_reject (lg, "holds no dirty pages");
    return;
  }
  size_t room = lg->pages_off <= lg->len ? (lg->len - lg->pages_off) / SECTOR : 0;
  if (room < lg->n_dirty) {
    log_reject (lg, "truncated (%u dirty pages, room for %zu)", lg->n_dirty, room);
    return;
  }
  /* A log written before the primary's last completed write: Windows
   * numbers the log N when the primary goes to N (Vista+) or N-1/N
   * (XP), never below the primary's secondary number. */
  if (pf->bb_valid && lg->seq < pf->seq2) {
    log_reject (lg, "older than the primary (sequence number %u, primary %u)",
                lg->seq, pf->seq2);
    return;
  }
}

/* The base block copy in the first sector (spec: "Base block" of both
 * log formats): valid, and of this hive. */
static void
parse_log_header (log_file *lg, const primary_file *pf, size_t limit)
{
  lg->ours = lg->usable = false;
  lg->format = TP_LOG_NONE;
  if (!log_present (lg)) {
    log_reject (lg, "absent or empty");
    return;
  }
  const unsigned char *b = lg->buf;
  if (lg->len < SECTOR) {
    log_reject (lg, "truncated (%zu bytes, under one sector)", lg->len);
    return;
  }
  if (memcmp (b, "regf", 4) != 0) {
    log_reject (lg, "not a transaction log (no regf signature)");
    return;
  }
  if (!tp_regf_checksum_valid (b)) {
    log_reject (lg, "bad base block checksum");
    return;
  }
  uint32_t type = tp_le32 (b + TP_BB_FILE_TYPE);
  if (type == 6)
    lg->format = TP_LOG_NEW;
  else if (type == 1 || type == 2)
    lg->format = TP_LOG_OLD;
  else {
    log_reject (lg, "not a transaction log (file type %u)", type);
    return;
  }
  if (tp_le32 (b + TP_BB_SEQ1) != tp_le32 (b + TP_BB_SEQ2)) {
    log_reject (lg, "incomplete base block (sequence numbers %u != %u)",
                tp_le32 (b + TP_BB_SEQ1), tp_le32 (b + TP_BB_SEQ2));
    return;
  }
  lg->seq = tp_le32 (b + TP_BB_SEQ1);
  lg->bins_size = tp_le32 (b + TP_BB_BINS_SIZE);
  if (lg->bins_size == 0 || lg->bins_size % BIN_BLOCK != 0 || lg->bins_size > limit) {
    log_reject (lg, "bad hive bins data size %u", lg->bins_size);
    return;
  }
  lg->stamp = tp_le64 (b + 12);
  lg->stamp_match = memcmp (b + 12, pf->stamp, 8) == 0;
  /* A new-format log carries the timestamp of the hive's creation (it is
   * no longer updated): one that differs is another hive's. Old-format
   * logs are judged by the rules for choosing between them. */
  if (lg->format == TP_LOG_NEW && !lg->stamp_match) {
    log_reject (lg, "belongs to another hive (last written timestamp differs)");
    return;
  }
  lg->ours = lg->usable = true;
  if (lg->format == TP_LOG_OLD)
    parse_old_log (lg, pf);
}

/* ---- The image being rebuilt ---------------------------------------- */

typedef struct {
  unsigned char *img;
  size_t len;
  uint32_t bins_size;
  unsigned char *touched;       /* per 4 KiB block of hive bins data: written by replay */
  size_t n_blocks;
  const primary_file *pf;       /* bytes past img's end come from here as it grows */
  tp_recovery_info *info;
} image;

/* Grow the image to `want` bytes: the primary's bytes where it has
 * them, zeros past its end. The primary is copied only as far as the
 * hive reaches, so a sparse hole past its bins costs no memory. */
static int
image_extend (image *im, size_t want)
{
  size_t had = im->len;
  if (want <= had)
    return 0;
  if (tp_grow_zeroed (&im->img, &im->len, want) < 0)
    return -1;
  if (had < im->pf->len)
    memcpy (im->img + had, im->pf->buf + had, (want < im->pf->len ? want : im->pf->len) - had);
  return tp_grow_zeroed (&im->touched, &im->n_blocks,
                         (im->len - BASE_BLOCK + BIN_BLOCK - 1) / BIN_BLOCK);
}

static int
image_init (image *im, const primary_file *pf, tp_recovery_info *info)
{
  memset (im, 0, sizeof *im);
  im->info = info;
  im->pf = pf;
  im->bins_size = pf->bb_valid ? tp_le32 (pf->buf + TP_BB_BINS_SIZE) : 0;
  /* The base block only: replay grows the image to each log's hive bins
   * data size (a hostile primary header cannot make us copy gigabytes). */
  return image_extend (im, BASE_BLOCK);
}

static void
image_free (image *im)
{
  free (im->img);
  free (im->touched);
  im->img = im->touched = NULL;
}

/* Make room for `bins` bytes of hive bins data. */
static int
image_grow (image *im, uint32_t bins)
{
  return image_extend (im, (size_t) BASE_BLOCK + bins);
}

/* Copy a page to hive bins offset `off`; the caller has checked that it
 * lies within the image. */
static void
image_write (image *im, uint32_t off, const unsigned char *src, uint32_t size)
{
  if (size == 0)
    return;
  memcpy (im->img + BASE_BLOCK + off, src, size);
  for (size_t b = off / BIN_BLOCK; b <= (off + (size_t) size - 1) / BIN_BLOCK; b++)
    im->touched[b] = 1;
}

/* A valid hive bin header at hive bins offset pos (< bins): signature,
 * its own offset, a size that is a non-zero multiple of 4 KiB and fits. */
static bool
bin_header_ok (const unsigned char *h, uint32_t pos, uint32_t bins, uint32_t *size)
{
  uint32_t sz = tp_le32 (h + TP_HBIN_SIZE);
  if (memcmp (h, "hbin", 4) != 0 || tp_le32 (h + TP_HBIN_OFFSET) != pos ||
      sz < BIN_BLOCK || sz % BIN_BLOCK != 0 || sz > bins - pos)
    return false;
  *size = sz;
  return true;
}

static void set_stopped (tp_recovery_info *info, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Keep the first reason replay ended early. */
static void
set_stopped (tp_recovery_info *info, const char *fmt, ...)
{
  if (info->stopped)
    return;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&info->stopped, fmt, ap) < 0)
    info->stopped = NULL;
  va_end (ap);
}

static int
add_log_used (tp_recovery_info *info, const log_file *lg)
{
  if (info->n_logs_used >= 2)
    return 0;
  char *s = strdup (lg->path ? lg->path : lg->name);
  if (!s)
    return -1;
  info->logs_used[info->n_logs_used++] = s;
  return 0;
}

/* ---- Old format ----------------------------------------------------- */

static bool
dirty_bit (const log_file *lg, uint32_t page)
{
  return lg->bitmap[page / 8] >> (page % 8) & 1;
}

static const unsigned char *
dirty_page (const log_file *lg, uint32_t k)
{
  return lg->buf + lg->pages_off + (size_t) k * SECTOR;   /* k < n_dirty: checked at parse */
}

/* Apply the dirty pages hive bin by hive bin. A bin whose header page is
 * dirty is checked first (spec: "Dirty pages"): replay stops at the
 * first invalid one, keeping the bins before it. */
static int
old_replay (image *im, const log_file *lg, char *why, size_t whylen)
{
  uint32_t bins = lg->bins_size, last_dirty = 0, k = 0, pos = 0;
  for (uint32_t i = 0; i < lg->n_bits; i++)
    if (dirty_bit (lg, i))
      last_dirty = i;
  if (image_grow (im, bins) < 0) {
    snprintf (why, whylen, "out of memory");
    return -1;
  }
  im->bins_size = bins;

  while (pos < bins) {
    uint32_t first = pos / SECTOR, size;
    bool hdr_dirty = dirty_bit (lg, first);
    const unsigned char *hdr = hdr_dirty ? dirty_page (lg, k) : im->img + BASE_BLOCK + pos;
    if (!bin_header_ok (hdr, pos, bins, &size)) {
      if (first > last_dirty)
        break;          /* nothing left to place; the final check judges the rest */
      char msg[160];
      if (hdr_dirty)
        snprintf (msg, sizeof msg, "its dirty hive bin at offset 0x%x is invalid", pos);
      else
        snprintf (msg, sizeof msg, "the primary's hive bin at offset 0x%x is invalid, "
                  "its dirty pages cannot be placed", pos);
      if (im->info->pages == 0) {
        snprintf (why, whylen, "transaction log %s offers no recovery: %s", lg->name, msg);
        return -1;
      }
      set_stopped (im->info, "%s: replay stopped: %s", lg->name, msg);
      return 0;
    }
    for (uint32_t p = first; p < first + size / SECTOR; p++)
      if (dirty_bit (lg, p)) {
        image_write (im, p * SECTOR, dirty_page (lg, k++), SECTOR);
        im->info->pages++;
      }
    pos += size;
  }
  return 0;
}

/* One log only, chosen as Windows 8 and later do (spec: "Multiple
 * transaction log files", "Old format"): .LOG1 (or the lone .LOG) when it
 * is valid and applicable (the primary's last written timestamp, or its
 * first bin's copy when the base block is damaged); otherwise .LOG2 when
 * it is valid and newer than .LOG1 by their timestamps (any valid .LOG2
 * when .LOG1 is not): the cumulative log of a failed write. Failing
 * both, a damaged primary, whose timestamp cannot be trusted, takes a
 * valid .LOG1 all the same. */
static log_file *
choose_old_log (log_file logs[2], const primary_file *pf)
{
  log_file *l1 = &logs[0], *l2 = &logs[1];
  bool v1 = l1->usable && l1->format == TP_LOG_OLD;
  bool v2 = l2->usable && l2->format == TP_LOG_OLD;
  if (v1 && l1->stamp_match)
    return l1;
  if (v2 && (!v1 || l2->stamp > l1->stamp))
    return l2;
  if (v1 && !pf->bb_valid)
    return l1;
  if (v1)
    log_reject (l1, "its last written timestamp differs from the primary's (another hive's log, "
                "or another write's)");
  if (v2)
    log_reject (l2, "not newer than %s, and %s's last written timestamp differs", l1->name,
                l1->name);
  return NULL;
}

static int
recover_old (image *im, const primary_file *pf, log_file *lg, char *why, size_t whylen)
{
  if (!pf->bb_valid) {
    /* Only the first Clustering factor * 512 bytes were logged; the rest
     * of a base block is reserved. */
    memset (im->img, 0, BASE_BLOCK);
    memcpy (im->img, lg->buf, lg->sector);
    im->info->base_block_from_log = true;
  }
  else
    /* The log's copy came from memory together with the pages: its root
     * cell offset is the one that matches them. */
    tp_put32 (im->img + TP_BB_ROOT, tp_le32 (lg->buf + TP_BB_ROOT));
  if (add_log_used (im->info, lg) < 0) {
    snprintf (why, whylen, "out of memory");
    return -1;
  }
  return old_replay (im, lg, why, whylen);
}

/* ---- New format ----------------------------------------------------- */

typedef struct {
  size_t off;
  uint32_t size, flags, seq, bins_size, n_refs;
} log_entry;

/* The most an entry can hold (spec: "Log entries"): its header, a
 * reference per page, each page of the hive bins data once, and up to
 * 4 KiB of padding (Windows aligns the pages: its entries carry 3.3 to
 * 4 KiB beside them). Larger sizes are not Windows' and are not read. */
static uint64_t
entry_size_max (const unsigned char *head)
{
  uint64_t refs = tp_le32 (head + 20), bins = tp_le32 (head + 16);
  return (ENTRY_HEAD + 8 * refs + bins + BIN_BLOCK + SECTOR - 1) / SECTOR * SECTOR;
}

/* Whether the 40-byte header at p can start an entry: Hash-2 (which
 * covers its first 32 bytes) and a size an entry can have. */
static bool
entry_head_ok (const unsigned char *p, char *why, size_t whylen)
{
  uint32_t size = tp_le32 (p + 4);
  if (tp_marvin32 (p, 32, TP_MARVIN32_REGF_SEED) != tp_le64 (p + 32))
    snprintf (why, whylen, "bad Hash-2");
  else if (size < SECTOR || size % SECTOR != 0 || size > entry_size_max (p))
    snprintf (why, whylen, "bad entry size %u", size);
  else
    return true;
  return false;
}

/* The entry at `off`: 1 valid, 0 no entry there (the end of the log),
 * -1 a damaged entry (why). Checks everything before anything is
 * applied, so a bad entry changes nothing. */
static int
read_entry (const log_file *lg, size_t off, size_t limit, log_entry *e,
            char *why, size_t whylen)
{
  if (off >= lg->len || lg->len - off < ENTRY_HEAD || memcmp (lg->buf + off, "HvLE", 4) != 0)
    return 0;
  const unsigned char *p = lg->buf + off;
  e->off = off;
  e->size = tp_le32 (p + 4);
  e->flags = tp_le32 (p + 8);
  e->seq = tp_le32 (p + 12);
  e->bins_size = tp_le32 (p + 16);
  e->n_refs = tp_le32 (p + 20);
  if (!entry_head_ok (p, why, whylen))
    return -1;
  if (e->size > lg->len - off) {
    snprintf (why, whylen, "truncated (entry of %u bytes, %zu left in the file)",
              e->size, lg->len - off);
    return -1;
  }
  if (tp_marvin32 (p + ENTRY_HEAD, e->size - ENTRY_HEAD, TP_MARVIN32_REGF_SEED) != tp_le64 (p + 24)) {
    snprintf (why, whylen, "bad Hash-1");
    return -1;
  }
  if (e->bins_size == 0 || e->bins_size % BIN_BLOCK != 0 || e->bins_size > limit) {
    snprintf (why, whylen, "bad hive bins data size %u", e->bins_size);
    return -1;
  }
  uint32_t room = e->size - ENTRY_HEAD;
  if (e->n_refs > room / 8) {
    snprintf (why, whylen, "%u page references do not fit in the entry", e->n_refs);
    return -1;
  }
  room -= e->n_refs * 8;
  for (uint32_t i = 0; i < e->n_refs; i++) {
    uint32_t o = tp_le32 (p + ENTRY_HEAD + 8 * i), s = tp_le32 (p + ENTRY_HEAD + 8 * i + 4);
    if ((uint64_t) o + s > e->bins_size) {
      snprintf (why, whylen, "page at 0x%x (%u bytes) beyond the hive bins data", o, s);
      return -1;
    }
    if (s > room) {
      snprintf (why, whylen, "page data runs past the end of the entry");
      return -1;
    }
    room -= s;
  }
  return 1;
}

static int
apply_entry (image *im, const log_file *lg, const log_entry *e)
{
  if (image_grow (im, e->bins_size) < 0)
    return -1;
  const unsigned char *p = lg->buf + e->off;
  const unsigned char *data = p + ENTRY_HEAD + 8 * (size_t) e->n_refs;
  for (uint32_t i = 0; i < e->n_refs; i++) {
    uint32_t o = tp_le32 (p + ENTRY_HEAD + 8 * i), s = tp_le32 (p + ENTRY_HEAD + 8 * i + 4);
    image_write (im, o, data, s);
    data += s;
    im->info->pages++;
  }
  /* The hive grows (or shrinks) with the entry; only bit 0 of the base
   * block's flags travels in entries (spec: "Log entries", notes 9, 11). */
  im->bins_size = e->bins_size;
  uint32_t flags = tp_le32 (im->img + TP_BB_FLAGS);
  tp_put32 (im->img + TP_BB_FLAGS, (flags & ~1u) | (e->flags & 1));
  im->info->entries++;
  return 0;
}

/* Dry run for a damaged primary: the last sequence number of the chain
 * that starts at the log's first entry. False (why) when it has none. */
static bool
chain_end (log_file *lg, size_t limit, uint32_t *last)
{
  size_t off = SECTOR;
  bool any = false;
  char ewhy[160];
  for (;;) {
    log_entry e;
    int r = read_entry (lg, off, limit, &e, ewhy, sizeof ewhy);
    if (r <= 0) {
      if (!any && r == 0)
        log_reject (lg, "holds no log entries");
      else if (!any)
        log_reject (lg, "first entry: %s", ewhy);
      return any;
    }
    if (any ? e.seq != *last + 1 : e.seq != lg->seq) {
      if (!any)
        log_reject (lg, "first entry has sequence number %u, its base block %u",
                    e.seq, lg->seq);
      return any;
    }
    *last = e.seq;
    any = true;
    off += e.size;
  }
}

/* Whether the first entry replayed may start the chain (spec: "Log
 * entries", notes 5 and 7): its log's sequence number, and not older
 * than the primary's last completed write (lo). It may be above the
 * primary's own number: Windows starts there (logs run ahead of a
 * primary it has not written for a while). Sets the log's reason. */
static bool
first_entry_ok (log_file *lg, const log_entry *e, uint32_t lo)
{
  if (e->seq != lg->seq)
    log_reject (lg, "first entry has sequence number %u, its base block %u", e->seq, lg->seq);
  else if (e->seq < lo)
    log_reject (lg, "stale (its entries start at %u, the primary was written at %u)", e->seq, lo);
  else
    return true;
  return false;
}

/* Replay one log, continuing the chain in *started / *last. */
static int
replay_log (image *im, log_file *lg, size_t limit, uint32_t lo, bool *started, uint32_t *last)
{
  size_t off = SECTOR;
  bool first = true, used = false;
  char ewhy[160];
  for (;; first = false) {
    log_entry e;
    int r = read_entry (lg, off, limit, &e, ewhy, sizeof ewhy);
    if (r == 0) {
      if (first && !*started)
        log_reject (lg, "holds no log entries");
      break;
    }
    if (r < 0) {
      if (!*started)
        log_reject (lg, "first entry: %s", ewhy);
      else
        set_stopped (im->info, "%s: entry at offset %zu: %s", lg->name, off, ewhy);
      break;
    }
    if (!*started) {
      if (!first_entry_ok (lg, &e, lo))
        break;
    }
    else if (e.seq != *last + 1) {
      /* Within a log this is the normal end: entries left from earlier
       * writes. Between logs it is a gap worth reporting. */
      if (first)
        set_stopped (im->info, "%s: its first entry has sequence number %u, not %u",
                     lg->name, e.seq, *last + 1);
      break;
    }
    if (apply_entry (im, lg, &e) < 0)
      return -1;
    *started = used = true;
    *last = e.seq;
    off += e.size;
  }
  return used ? add_log_used (im->info, lg) : 0;
}

static int
recover_new (image *im, const primary_file *pf, log_file logs[2], size_t limit,
             char *why, size_t whylen)
{
  log_file *order[2];
  size_t n = 0;
  uint32_t lo;
  for (int i = 0; i < 2; i++)
    if (logs[i].usable && logs[i].format == TP_LOG_NEW)
      order[n++] = &logs[i];
  /* The log with the earlier entries goes first, whatever its name. */
  if (n == 2 && order[1]->seq < order[0]->seq) {
    log_file *t = order[0];
    order[0] = order[1];
    order[1] = t;
  }

  if (pf->bb_valid)
    lo = pf->seq2;
  else {
    /* A damaged base block: only the log with the latest entries is
     * used, and its base block copy replaces the primary's. */
    log_file *pick = NULL;
    uint32_t best = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t last;
      if (chain_end (order[i], limit, &last) && (!pick || last > best)) {
        pick = order[i];
        best = last;
      }
    }
    if (!pick)
      return 1;                 /* the caller explains, from the logs' reasons */
    order[0] = pick;
    n = 1;
    memset (im->img, 0, BASE_BLOCK);
    memcpy (im->img, pick->buf, SECTOR);
    im->info->base_block_from_log = true;
    lo = pick->seq;
  }

  bool started = false;
  uint32_t last = 0;
  for (size_t i = 0; i < n; i++)
    if (replay_log (im, order[i], limit, lo, &started, &last) < 0) {
      snprintf (why, whylen, "out of memory");
      return -1;
    }
  return started ? 0 : 1;
}

/* Replace dirty hive bins that replay left invalid by empty ones (spec:
 * "Log entries", note 10), so the hive stays walkable. */
static void
replace_bad_dirty_bins (image *im)
{
  uint32_t pos = 0, size;
  while (pos < im->bins_size) {
    unsigned char *h = im->img + BASE_BLOCK + pos;
    if (bin_header_ok (h, pos, im->bins_size, &size)) {
      pos += size;
      continue;
    }
    if (im->touched[pos / BIN_BLOCK]) {
      memset (h, 0, BIN_BLOCK);
      memcpy (h, "hbin", 4);
      tp_put32 (h + TP_HBIN_OFFSET, pos);
      tp_put32 (h + TP_HBIN_SIZE, BIN_BLOCK);
      tp_put32 (h + TP_HBIN_HEADER, BIN_BLOCK - TP_HBIN_HEADER);   /* one free cell */
      im->info->bins_replaced++;
    }
    pos += BIN_BLOCK;
  }
}

/* ---- Common --------------------------------------------------------- */

/* The largest hive bins data size accepted: what Windows allows, and no
 * more than the inputs could fill (a hive grows only by bins that are
 * logged whole), so hostile sizes cannot make us allocate gigabytes. */
static size_t
bins_limit (size_t primary_len, const log_file logs[2])
{
  uint64_t total = primary_len;
  for (int i = 0; i < 2; i++)
    total += logs[i].buf ? logs[i].len : 0;
  total = total / BIN_BLOCK * BIN_BLOCK;
  return total < MAX_BINS ? (size_t) total : MAX_BINS;
}

/* One above every sequence number of the hive and its logs, including
 * entries not applied: no old entry may ever be replayed over the result
 * (see recover.h). Only intact headers count (Hash-2 checks all 32 bytes
 * of one, cheaply), so garbage cannot push the number to the limit. */
static int
seq_after (const primary_file *pf, const log_file logs[2], uint32_t *out)
{
  uint32_t max = 0;
  if (pf->bb_valid)
    max = pf->seq1 > pf->seq2 ? pf->seq1 : pf->seq2;
  for (int i = 0; i < 2; i++) {
    const log_file *lg = &logs[i];
    /* An old-format log of another write (or hive) that was not used
     * says nothing about this hive's numbers. */
    if (!lg->ours || (lg->format == TP_LOG_OLD && !lg->stamp_match && !lg->chosen))
      continue;
    if (lg->seq > max)
      max = lg->seq;
    if (lg->format != TP_LOG_NEW)
      continue;
    for (size_t off = SECTOR; off < lg->len && lg->len - off >= ENTRY_HEAD; off += SECTOR) {
      const unsigned char *p = lg->buf + off;
      if (memcmp (p, "HvLE", 4) == 0 &&
          tp_marvin32 (p, 32, TP_MARVIN32_REGF_SEED) == tp_le64 (p + 32) && tp_le32 (p + 12) > max)
        max = tp_le32 (p + 12);
    }
  }
  if (max == UINT32_MAX)
    return -1;
  *out = max + 1;
  return 0;
}

/* What makes the primary need recovery, for messages. */
static void
dirty_state (const primary_file *pf, char *buf, size_t len)
{
  if (pf->bb_valid)
    snprintf (buf, len, "hive is dirty (sequence numbers %u != %u)", pf->seq1, pf->seq2);
  else
    snprintf (buf, len, "bad header checksum");
}

/* "<state>: <why>", for a dirty primary that could not be recovered. */
static void
prefix_state (const primary_file *pf, char *why, size_t whylen)
{
  char state[64], inner[768];
  dirty_state (pf, state, sizeof state);
  snprintf (inner, sizeof inner, "%s", why);
  snprintf (why, whylen, "%s: %s", state, inner);
}

/* Why no log applies: each present log's reason. */
static void
no_log_reason (const log_file logs[2], char *why, size_t whylen)
{
  if (!log_present (&logs[0]) && !log_present (&logs[1])) {
    snprintf (why, whylen, "there is no transaction log to recover it from");
    return;
  }
  char detail[480] = "";
  for (int i = 0; i < 2; i++) {
    if (!log_present (&logs[i]))
      continue;
    size_t used = strlen (detail);
    snprintf (detail + used, sizeof detail - used, "%s%s: %s",
              used ? "; " : "", logs[i].name, logs[i].why);
  }
  snprintf (why, whylen, "no transaction log offers a recovery (%s)", detail);
}

/* Everything after replay: empty bins for bad dirty ones (new format),
 * every bin valid, clean sequence numbers, file type, size, checksum,
 * and the same header check every primary passes. */
static int
finish (image *im, const primary_file *pf, const log_file logs[2], char *why, size_t whylen)
{
  uint32_t seq, pos = 0, size;
  if (im->info->format == TP_LOG_NEW)
    replace_bad_dirty_bins (im);
  while (pos < im->bins_size) {
    if (!bin_header_ok (im->img + BASE_BLOCK + pos, pos, im->bins_size, &size)) {
      snprintf (why, whylen, "hive bin at offset 0x%x is invalid and no transaction log "
                "replaces it", pos);
      return -1;
    }
    pos += size;
  }
  if (seq_after (pf, logs, &seq) < 0) {
    snprintf (why, whylen, "sequence numbers are exhausted (0xffffffff)");
    return -1;
  }
  if (!tp_regf_size_plausible (pf->len, im->bins_size)) {
    snprintf (why, whylen, "the file (%zu bytes) is far larger than its hive bins (%u bytes): "
              "not a hive as Windows writes it", pf->len, im->bins_size);
    return -1;
  }
  if (image_extend (im, pf->len) < 0) {
    snprintf (why, whylen, "out of memory");
    return -1;
  }
  unsigned char *bb = im->img;
  tp_put32 (bb + TP_BB_SEQ1, seq);
  tp_put32 (bb + TP_BB_SEQ2, seq);
  tp_put32 (bb + TP_BB_FILE_TYPE, 0);
  tp_put32 (bb + TP_BB_BINS_SIZE, im->bins_size);
  tp_put32 (bb + TP_BB_CHECKSUM, tp_regf_checksum (bb));
  im->info->seq_after = seq;

  tp_regf_header hdr;
  char cwhy[256];
  if (tp_regf_check_primary (im->img, im->len, &hdr, cwhy, sizeof cwhy) < 0) {
    snprintf (why, whylen, "the recovered hive is not valid: %s", cwhy);
    return -1;
  }
  return 0;
}

/* Both formats side by side: new-format logs win (an old-format log
 * there is a leftover from an older Windows); the rest are ignored. */
static tp_log_format
choose_format (log_file logs[2])
{
  tp_log_format f = TP_LOG_NONE;
  for (int i = 0; i < 2; i++)
    if (logs[i].usable && (f == TP_LOG_NONE || logs[i].format == TP_LOG_NEW))
      f = logs[i].format;
  for (int i = 0; i < 2; i++)
    if (logs[i].usable && logs[i].format != f)
      log_reject (&logs[i], "old-format log ignored beside a new-format one");
  return f;
}

static int
recover (const unsigned char *primary, size_t primary_len, log_file logs[2],
         unsigned char **out, size_t *out_len, tp_recovery_info *info,
         primary_file *pf_out, char *why, size_t whylen)
{
  primary_file pf;
  image im;
  int st = classify_primary (&pf, primary, primary_len, why, whylen);
  *pf_out = pf;
  info->seq_before_primary = pf.seq1;
  info->seq_before_secondary = pf.seq2;
  if (st <= 0)
    return st;
  info->dirty = true;

  size_t limit = bins_limit (primary_len, logs);
  for (int i = 0; i < 2; i++)
    parse_log_header (&logs[i], &pf, limit);
  info->format = choose_format (logs);
  if (info->format == TP_LOG_NONE) {
    no_log_reason (logs, why, whylen);
    return -1;
  }

  if (image_init (&im, &pf, info) < 0) {
    image_free (&im);
    snprintf (why, whylen, "out of memory");
    return -1;
  }
  int rc;
  if (info->format == TP_LOG_NEW)
    rc = recover_new (&im, &pf, logs, limit, why, whylen);
  else {
    log_file *lg = choose_old_log (logs, &pf);
    if (lg)
      lg->chosen = true;
    rc = lg ? recover_old (&im, &pf, lg, why, whylen) : 1;
  }
  if (rc > 0) {
    no_log_reason (logs, why, whylen);
    rc = -1;
  }
  if (rc == 0)
    rc = finish (&im, &pf, logs, why, whylen);
  if (rc == 0) {
    *out = im.img;
    *out_len = im.len;
    im.img = NULL;
  }
  image_free (&im);
  return rc;
}

static void
start (unsigned char **out, size_t *out_len, tp_recovery_info *info, char *why, size_t whylen)
{
  memset (info, 0, sizeof *info);
  *out = NULL;
  *out_len = 0;
  if (whylen > 0)
    why[0] = '\0';
}

int
tp_recover_buffers (const unsigned char *primary, size_t primary_len,
                    const unsigned char *log1, size_t log1_len,
                    const unsigned char *log2, size_t log2_len,
                    unsigned char **out, size_t *out_len,
                    tp_recovery_info *info, char *why, size_t whylen)
{
  log_file logs[2] = {
    { .name = "log1", .buf = log1, .len = log1 ? log1_len : 0 },
    { .name = "log2", .buf = log2, .len = log2 ? log2_len : 0 },
  };
  start (out, out_len, info, why, whylen);
  primary_file pf;
  int rc = recover (primary, primary_len, logs, out, out_len, info, &pf, why, whylen);
  if (rc < 0)
    info->format = TP_LOG_NONE;
  if (rc < 0 && info->dirty)
    prefix_state (&pf, why, whylen);
  return rc;
}

/* ---- Files ---------------------------------------------------------- */

static int
read_file (const char *path, unsigned char **buf, size_t *len, char *why, size_t whylen)
{
  struct stat st;
  *buf = NULL;
  *len = 0;
  int fd = tp_open_regular (path, &st);
  if (fd < 0) {
    snprintf (why, whylen, "cannot read %s: %s", path, tp_open_error (errno));
    return -1;
  }
  if ((uint64_t) st.st_size > MAX_FILE) {
    snprintf (why, whylen, "cannot read %s: too large", path);
    close (fd);
    return -1;
  }
  size_t size = (size_t) st.st_size, got = 0;
  unsigned char *p = malloc (size ? size : 1);
  while (p && got < size) {
    ssize_t n = read (fd, p + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0) {
        snprintf (why, whylen, "cannot read %s: %s", path, strerror (errno));
        free (p);
        close (fd);
        return -1;
      }
      break;            /* shrank while we read: take what is there */
    }
    got += (size_t) n;
  }
  close (fd);
  if (!p) {
    snprintf (why, whylen, "cannot read %s: out of memory", path);
    return -1;
  }
  *buf = p;
  *len = got;
  return 0;
}

/* A log read by what it announces, not by its file size (a sparse log
 * may claim gigabytes): the base block sector, then the chain of
 * entries (new format: each entry whose header is intact, up to its
 * size) or the dirty vector and as many pages as it marks (old format).
 * At most MAX_LOG bytes; a log that shrinks while it is read is taken
 * as it is (the parser then finds it truncated). */
typedef struct {
  int fd;
  uint64_t file_size;           /* at open: memory is never reserved beyond it */
  unsigned char *p;
  size_t len, cap;
  bool error;
} log_reader;

/* Have the first `end` bytes (fewer at the end of the file). */
static void
log_fill (log_reader *r, uint64_t end)
{
  if (end > r->file_size)
    end = r->file_size;
  if (end > MAX_LOG)
    end = MAX_LOG;
  if (end <= r->len || r->error)
    return;
  if (end > r->cap) {
    size_t cap = r->cap ? r->cap : 65536;
    while (cap < end)
      cap *= 2;
    unsigned char *np = realloc (r->p, cap);
    if (!np) {
      r->error = true;
      errno = ENOMEM;
      return;
    }
    r->p = np;
    r->cap = cap;
  }
  while (r->len < end) {
    ssize_t n = pread (r->fd, r->p + r->len, end - r->len, (off_t) r->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      r->error = true;
    if (n <= 0)
      return;
    r->len += (size_t) n;
  }
}

static void
read_new_entries (log_reader *r)
{
  size_t off = SECTOR;
  for (;;) {
    char ignored[64];
    log_fill (r, (uint64_t) off + ENTRY_HEAD);
    if (r->len < off + ENTRY_HEAD || memcmp (r->p + off, "HvLE", 4) != 0 ||
        !entry_head_ok (r->p + off, ignored, sizeof ignored))
      return;
    uint32_t size = tp_le32 (r->p + off + 4);
    log_fill (r, (uint64_t) off + size);
    if (r->len < off + size)
      return;
    off += size;
  }
}

static void
read_old_pages (log_reader *r)
{
  old_layout l;
  uint32_t bins = tp_le32 (r->p + TP_BB_BINS_SIZE);
  if (bins > MAX_BINS || !old_log_layout (r->p, bins, &l))
    return;
  log_fill (r, l.bitmap_end);
  if (r->len < l.bitmap_end)
    return;
  log_fill (r, l.pages_off + (uint64_t) count_dirty (r->p + l.bitmap_off, l.n_bits) * SECTOR);
}

static int
read_log (const char *path, unsigned char **buf, size_t *len, char *why, size_t whylen)
{
  struct stat st;
  log_reader r = { .fd = tp_open_regular (path, &st) };
  *buf = NULL;
  *len = 0;
  if (r.fd < 0) {
    snprintf (why, whylen, "cannot read %s: %s", path, tp_open_error (errno));
    return -1;
  }
  r.file_size = (uint64_t) st.st_size;
  log_fill (&r, SECTOR);
  if (!r.error && r.len == SECTOR && memcmp (r.p, "regf", 4) == 0) {
    uint32_t type = tp_le32 (r.p + TP_BB_FILE_TYPE);
    if (type == 6)
      read_new_entries (&r);
    else if (type == 1 || type == 2)
      read_old_pages (&r);
  }
  int err = errno;
  close (r.fd);
  if (r.error) {
    snprintf (why, whylen, "cannot read %s: %s", path, strerror (err));
    free (r.p);
    return -1;
  }
  *buf = r.p;
  *len = r.len;
  return 0;
}

/* The logs beside the primary: paths[0] .LOG1, [1] .LOG2, [2] .LOG,
 * names compared case-insensitively, as Windows would. Two names
 * matching one suffix (possible on a case-sensitive file system) are
 * refused: we cannot tell which one Windows wrote. */
static int
find_logs (const char *primary_path, char *paths[3], char *why, size_t whylen)
{
  static const char *const suffix[3] = { ".LOG1", ".LOG2", ".LOG" };
  const char *slash = strrchr (primary_path, '/');
  const char *base = slash ? slash + 1 : primary_path;
  char *dir = slash ? strndup (primary_path, (size_t) (slash - primary_path) + 1) : strdup (".");
  size_t blen = strlen (base);
  paths[0] = paths[1] = paths[2] = NULL;
  DIR *d = dir ? opendir (dir) : NULL;
  if (!d) {
    snprintf (why, whylen, "cannot list the directory of %s: %s", primary_path,
              dir ? strerror (errno) : "out of memory");
    free (dir);
    return -1;
  }
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir (d)) != NULL) {
    if (strncasecmp (de->d_name, base, blen) != 0)
      continue;
    for (int i = 0; i < 3; i++) {
      if (strcasecmp (de->d_name + blen, suffix[i]) != 0)
        continue;
      if (paths[i]) {
        snprintf (why, whylen, "two files are %s%s (ignoring case); which one is the "
                  "transaction log is ambiguous", base, suffix[i]);
        rc = -1;
      }
      else if (asprintf (&paths[i], "%s%s", slash ? dir : "", de->d_name) < 0) {
        paths[i] = NULL;
        snprintf (why, whylen, "out of memory");
        rc = -1;
      }
    }
  }
  closedir (d);
  free (dir);
  return rc;
}

static const char *
base_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

/* One attempt with up to two log files (NULL paths are absent). -2 when
 * a log that exists cannot be read: no fallback may hide that. */
static int
recover_with_files (const unsigned char *primary, size_t primary_len,
                    char *const paths[2], unsigned char **out, size_t *out_len,
                    tp_recovery_info *info, char *why, size_t whylen)
{
  unsigned char *bufs[2] = { NULL, NULL };
  size_t lens[2] = { 0, 0 };
  log_file logs[2];
  int rc = 0;
  memset (logs, 0, sizeof logs);
  for (int i = 0; i < 2 && rc == 0; i++) {
    logs[i].name = paths[i] ? base_name (paths[i]) : (i ? "log2" : "log1");
    logs[i].path = paths[i];
    if (paths[i] && read_log (paths[i], &bufs[i], &lens[i], why, whylen) < 0)
      rc = -2;
    logs[i].buf = bufs[i];
    logs[i].len = lens[i];
  }
  if (rc == 0) {
    primary_file pf;
    start (out, out_len, info, why, whylen);
    rc = recover (primary, primary_len, logs, out, out_len, info, &pf, why, whylen);
  }
  free (bufs[0]);
  free (bufs[1]);
  return rc;
}

int
tp_recover_hive_bytes (const char *primary_path, const unsigned char *primary,
                       size_t primary_len, unsigned char **out, size_t *out_len,
                       tp_recovery_info *info, char *why, size_t whylen)
{
  primary_file pf;
  char *paths[3];
  start (out, out_len, info, why, whylen);
  int st = classify_primary (&pf, primary, primary_len, why, whylen);
  info->seq_before_primary = pf.seq1;
  info->seq_before_secondary = pf.seq2;
  if (st <= 0)
    return st;          /* clean (nothing to do, logs not even looked at) or not a hive */
  if (find_logs (primary_path, paths, why, whylen) < 0) {
    info->dirty = true;
    prefix_state (&pf, why, whylen);
    for (int i = 0; i < 3; i++)
      free (paths[i]);
    return -1;
  }
  if (!paths[0] && !paths[1] && !paths[2]) {   /* copied out without its logs */
    const char *slash = strrchr (primary_path, '/'), *base = slash ? slash + 1 : primary_path;
    char state[64];
    dirty_state (&pf, state, sizeof state);
    snprintf (why, whylen, "%s and no log is beside it (%s.LOG1, %s.LOG2, %s.LOG): "
              "copy them beside it, or run tlspatch on the volume or image", state, base, base, base);
    info->dirty = info->logs_missing = true;
    return -1;
  }

  /* The dual-logging pair first; a lone .LOG (single-log scheme, or the
   * old format before Vista) when the pair is absent or offers nothing. */
  int rc = -1;
  char first_why[512] = "";
  if (paths[0] || paths[1] || !paths[2]) {
    rc = recover_with_files (primary, primary_len, paths, out, out_len, info, why, whylen);
    snprintf (first_why, sizeof first_why, "%s", why);
  }
  if (rc == -1 && paths[2]) {
    tp_recovery_info_free (info);
    char *single[2] = { paths[2], NULL };
    rc = recover_with_files (primary, primary_len, single, out, out_len, info, why, whylen);
    if (rc < 0 && first_why[0]) {
      char second[512];
      snprintf (second, sizeof second, "%s", why);
      snprintf (why, whylen, "%s; and %s", first_why, second);
    }
  }
  if (rc < 0) {
    rc = -1;
    info->format = TP_LOG_NONE;
    info->dirty = true;
    prefix_state (&pf, why, whylen);
  }
  for (int i = 0; i < 3; i++)
    free (paths[i]);
  return rc;
}

int
tp_recover_hive (const char *primary_path, unsigned char **out, size_t *out_len,
                 tp_recovery_info *info, char *why, size_t whylen)
{
  unsigned char *primary;
  size_t len;
  start (out, out_len, info, why, whylen);
  if (read_file (primary_path, &primary, &len, why, whylen) < 0)
    return -1;
  int rc = tp_recover_hive_bytes (primary_path, primary, len, out, out_len, info, why, whylen);
  free (primary);
  return rc;
}

void
tp_recovery_info_free (tp_recovery_info *info)
{
  for (size_t i = 0; i < 2; i++) {
    free (info->logs_used[i]);
    info->logs_used[i] = NULL;
  }
  info->n_logs_used = 0;
  free (info->stopped);
  info->stopped = NULL;
}

const char *
tp_log_format_name (tp_log_format format)
{
  switch (format) {
  case TP_LOG_OLD:
    return "old";
  case TP_LOG_NEW:
    return "new";
  default:
    return "none";
  }
}
