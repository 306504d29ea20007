/* tlspatch: hive session and safe commit.
 *
 * Why so careful: hivex_commit truncates and rewrites in place (a full
 * disk or a kill leaves a broken hive), marks dirty hives clean, and its
 * set_value mangles some kinds of existing values (hivex-notes.md).
 * So: validate the bytes first, read them lazily with reader.c (damage
 * is never taken for absence), and write with writer.c (a copy with a
 * few records edited, the key's other values untouched) through a
 * verified temp file and a rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/filemap.h"
#include "tlspatch/hive.h"
#include "tlspatch/openfile.h"
#include "tlspatch/reader.h"
#include "tlspatch/referee.h"
#include "tlspatch/recover.h"
#include "tlspatch/writer.h"

struct tp_hive {
  char *path;                   /* canonical path of the hive file */
  int fd;                       /* open on the file; holds the lock */
  struct stat st;
  const unsigned char *map;     /* read-only view of the bytes we parse */
  size_t size;
  unsigned char *recovered;     /* the image replayed from the logs (map points here) */
  int memfd;                    /* holds the recovered image for the writer, or -1 */
  const unsigned char *file_map;  /* the file as it is on disk */
  tp_filemap *filemap;          /* its mapping (a file shrinking under it reads zeros) */
  size_t file_size;
  tp_regf_header hdr;
  tp_regf reader;
  bool damaged;                 /* a lookup met a damaged list or record */
  tp_hive_kind kind;
  /* A hive read on demand (tp_hive_open_reader): no file, no lock. */
  tp_regf_read_fn read;
  void *read_ctx;
  struct chunk_cache *cache;    /* its bytes (map points into it) */
  char *read_error;             /* the first failed read */
  tp_regf_edit *edits;          /* what tp_hive_make_patch planned */
  size_t n_edits;
  struct seen *seen;            /* every value tp_hive_plan_value judged, as read */
  size_t n_seen;
};

struct seen {
  char *key, *name;
  tp_value value;
};

bool tp_hive_recovered (const tp_hive *hv) { return hv->recovered != NULL; }
bool tp_hive_damaged (const tp_hive *hv) { return hv->damaged; }
const char *tp_hive_read_error (const tp_hive *hv) { return hv->read_error; }
tp_hive_kind tp_hive_kind_of (const tp_hive *hv) { return hv->kind; }
const char *tp_hive_path (const tp_hive *hv) { return hv->path; }

/* Root bypasses permission bits, so "read-only" is judged from the mode
 * too: a file or folder nobody may write is one the user meant to keep. */
int
tp_hive_check_writable (tp_hive *hv, tp_result *res)
{
  if (access (hv->path, W_OK) != 0 || (hv->st.st_mode & 0222) == 0)
    return tp_result_fail (res, "hive file is read-only");

  char *copy = strdup (hv->path);
  if (!copy)
    return tp_result_fail (res, "out of memory");
  const char *dir = dirname (copy);
  struct stat dst;
  struct statvfs vfs;
  int rc = 0;
  if (stat (dir, &dst) != 0 || access (dir, W_OK) != 0 || (dst.st_mode & 0222) == 0)
    rc = tp_result_fail (res, "directory %s is read-only: the hive cannot be replaced safely",
                         dir);
  else if (statvfs (dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
    rc = tp_result_fail (res, "file system is mounted read-only");
  free (copy);
  return rc;
}

/* Take the write lock on the file at hv->path. Another tlspatch may
 * have replaced the file while we waited: then lock the new one. */
static int
lock_current_file (tp_hive *hv, tp_result *res)
{
  for (int tries = 0; tries < 100; tries++) {
    if (flock (hv->fd, LOCK_EX) != 0)
      return tp_result_fail (res, "cannot lock hive: %s", strerror (errno));
    struct stat now;
    if (stat (hv->path, &now) != 0)
      return tp_result_fail (res, "hive disappeared while waiting for the lock");
    if (now.st_dev == hv->st.st_dev && now.st_ino == hv->st.st_ino)
      return 0;
    int fd = tp_open_regular (hv->path, &hv->st);
    if (fd < 0)
      return tp_result_fail (res, "cannot reopen hive: %s", tp_open_error (errno));
    close (hv->fd);
    hv->fd = fd;
  }
  return tp_result_fail (res, "hive keeps being replaced by another process");
}

static tp_hive_kind
classify (tp_hive *hv)
{
  size_t node;
  bool software = tp_hive_find_key (hv, "\\Microsoft", &node, NULL, NULL) == TP_FOUND;
  bool system = tp_hive_find_key (hv, "\\Select", &node, NULL, NULL) == TP_FOUND;
  if (software == system)
    return TP_HIVE_UNKNOWN;
  return software ? TP_HIVE_SOFTWARE : TP_HIVE_SYSTEM;
}

/* A dirty hive (or one whose base block is damaged) may be recovered
 * from its transaction logs: replay them in memory, and keep the result
 * in an anonymous file for the writer, so the original stays untouched
 * until the atomic commit. */
static int
recover_in_memory (tp_hive *hv, const char *first_why, tp_result *res)
{
  tp_recovery_info *info = calloc (1, sizeof *info);
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[768];
  if (!info)
    return tp_result_fail (res, "out of memory");
  int rc = tp_recover_hive_bytes (hv->path, hv->file_map, hv->file_size, &buf, &len, info,
                                  why, sizeof why);
  if (rc != 0 || !info->dirty || !buf) {
    tp_result_fail (res, "%s", rc != 0 ? why : first_why);
    tp_recovery_info_free (info);
    free (info);
    free (buf);
    return -1;
  }
  res->recovery = info;
  hv->recovered = buf;
  hv->map = buf;
  hv->size = len;
  if (tp_regf_check_primary (hv->map, hv->size, &hv->hdr, why, sizeof why) != 0)
    return tp_result_fail (res, "the hive recovered from its logs is not valid: %s", why);
  hv->memfd = memfd_create ("tlspatch-recovered", MFD_CLOEXEC);
  if (hv->memfd < 0 || tp_pwrite_all (hv->memfd, (const char *) buf, len, 0) != 0)
    return tp_result_fail (res, "cannot hold the recovered hive: %s", strerror (errno));
  return 0;
}

static int
map_and_validate (tp_hive *hv, int flags, tp_result *res)
{
  hv->file_size = hv->size = (size_t) hv->st.st_size;
  if (hv->size == 0)
    return tp_result_fail (res, "not a registry hive (empty file)");
  hv->filemap = tp_filemap_open (hv->fd, hv->size);
  if (!hv->filemap)
    return tp_result_fail (res, "cannot read hive: %s", strerror (errno));
  hv->file_map = hv->map = tp_filemap_bytes (hv->filemap);

  char why[256];
  if (tp_regf_check_primary (hv->map, hv->size, &hv->hdr, why, sizeof why) == 0)
    return 0;
  bool recoverable = tp_regf_is_dirty (&hv->hdr) ||
                     (hv->size >= TP_REGF_BASE_BLOCK_SIZE && memcmp (hv->map, "regf", 4) == 0 &&
                      hv->hdr.checksum_stored != hv->hdr.checksum_computed);
  if ((flags & TP_HIVE_OPEN_RECOVER) && recoverable)
    return recover_in_memory (hv, why, res);
  return tp_result_fail (res, "%s", why);
}

static bool load_on_demand (void *ctx, size_t off, size_t len);

static int
start_reader (tp_hive *hv, tp_result *res)
{
  hv->reader = (tp_regf) { .buf = hv->map, .size = hv->size, .minor = hv->hdr.minor,
                           .bins_end = TP_REGF_BINS + (size_t) hv->hdr.bins_size,
                           .load = hv->read ? load_on_demand : NULL, .load_ctx = hv };
  if (!tp_regf_root (&hv->reader))
    return tp_result_fail (res, "the hive's root key is missing or damaged");
  return 0;
}

tp_hive *
tp_hive_open (const char *path, int flags, tp_result *res)
{
  tp_hive *hv = calloc (1, sizeof *hv);
  if (!hv) {
    tp_result_fail (res, "out of memory");
    return NULL;
  }
  hv->fd = hv->memfd = -1;
  hv->path = realpath (path, NULL);
  if (!hv->path) {
    tp_result_fail (res, "%s", strerror (errno));
    goto fail;
  }
  hv->fd = tp_open_regular (hv->path, &hv->st);
  if (hv->fd < 0) {
    tp_result_fail (res, errno == EINVAL ? "%s" : "cannot open: %s", tp_open_error (errno));
    goto fail;
  }
  if ((flags & TP_HIVE_OPEN_WRITE) &&
      lock_current_file (hv, res) < 0)
    goto fail;
  if (map_and_validate (hv, flags, res) < 0 || start_reader (hv, res) < 0)
    goto fail;
  hv->kind = classify (hv);
  return hv;

 fail:
  tp_hive_close (hv);
  return NULL;
}

static tp_regf_edit *plan_edits (tp_result *res);

/* ------------------------------------------------------------------ */
/* A hive read on demand                                              */

/* Reads go in chunks: a lookup touches a few dozen records spread over
 * the file, and each read inside an appliance costs a round trip. The
 * bytes land in an anonymous mapping: untouched pages cost nothing. */
#define CHUNK (64 * 1024)

struct chunk_cache {
  unsigned char *buf;
  unsigned char *loaded;        /* one flag per chunk */
  size_t size, map_len;
  tp_regf_read_fn read;
  void *ctx;
};

static void
cache_free (struct chunk_cache *c)
{
  if (c && c->buf)
    munmap (c->buf, c->map_len);
  if (c)
    free (c->loaded);
  free (c);
}

static struct chunk_cache *
cache_new (size_t size, tp_regf_read_fn read, void *ctx)
{
  struct chunk_cache *c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  *c = (struct chunk_cache) { .size = size, .map_len = size ? size : 1, .read = read,
                              .ctx = ctx, .loaded = calloc (size / CHUNK + 1, 1) };
  void *m = mmap (NULL, c->map_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  c->buf = m == MAP_FAILED ? NULL : m;
  if (!c->buf || !c->loaded) {
    cache_free (c);
    return NULL;
  }
  return c;
}

/* Bring bytes [off, off+len) in. 0, or -1 with the failed chunk's
 * start in *failed. */
static int
cache_fill (struct chunk_cache *c, size_t off, size_t len, size_t *failed)
{
  if (off > c->size || len > c->size - off)
    return *failed = off, -1;
  for (size_t k = off / CHUNK; len && k <= (off + len - 1) / CHUNK; k++) {
    size_t start = k * CHUNK, n = c->size - start < CHUNK ? c->size - start : CHUNK;
    if (!c->loaded[k] && c->read (c->ctx, c->buf + start, n, start) != 0)
      return *failed = start, -1;
    c->loaded[k] = 1;
  }
  return 0;
}

static bool
load_on_demand (void *ctx, size_t off, size_t len)
{
  tp_hive *hv = ctx;
  size_t failed;
  if (cache_fill (hv->cache, off, len, &failed) == 0)
    return true;
  if (!hv->read_error &&
      asprintf (&hv->read_error, "cannot read the hive at offset %zu", failed) < 0)
    hv->read_error = NULL;
  return false;
}

tp_hive *
tp_hive_open_reader (const char *label, size_t size, tp_regf_read_fn read, void *ctx,
                     tp_result *res)
{
  tp_hive *hv = calloc (1, sizeof *hv);
  if (!hv) {
    tp_result_fail (res, "out of memory");
    return NULL;
  }
  hv->fd = hv->memfd = -1;
  hv->path = strdup (label);
  hv->read = read;
  hv->read_ctx = ctx;
  hv->size = hv->file_size = size;
  hv->cache = cache_new (size, read, ctx);
  if (!hv->cache || !hv->path) {
    tp_result_fail (res, "out of memory");
    goto fail;
  }
  hv->map = hv->cache->buf;
  char why[256];
  if (size < TP_REGF_BASE_BLOCK_SIZE || !load_on_demand (hv, 0, TP_REGF_BASE_BLOCK_SIZE)) {
    tp_result_fail (res, "%s", hv->read_error ? hv->read_error : "not a registry hive (too short)");
    goto fail;
  }
  if (tp_regf_check_primary (hv->map, hv->size, &hv->hdr, why, sizeof why) != 0) {
    tp_result_fail (res, "%s", why);
    goto fail;
  }
  if (start_reader (hv, res) < 0)
    goto fail;
  hv->kind = classify (hv);
  return hv;

 fail:
  tp_hive_close (hv);
  return NULL;
}

/* res's changes as the writes to make, remembered for
 * tp_hive_verify_patch: 0; 1 with the reason in why; -1 when out of
 * memory (recorded in res). */
static int
make_patch (tp_hive *hv, tp_result *res, tp_regf_patch *out, char *why, size_t len)
{
  free (hv->edits);
  hv->n_edits = 0;
  hv->edits = plan_edits (res);
  if (!hv->edits)
    return -1;
  hv->n_edits = res->n_changes;
  char cause[256];
  if (tp_regf_make_patch (&hv->reader, hv->edits, hv->n_edits, out, cause, sizeof cause) == 0)
    return 0;
  snprintf (why, len, "cannot plan the writes: %s%s%s", cause, hv->read_error ? ": " : "",
            hv->read_error ? hv->read_error : "");
  return 1;
}

int
tp_hive_make_patch (tp_hive *hv, tp_result *res, tp_regf_patch *out)
{
  char why[512];
  int rc = make_patch (hv, res, out, why, sizeof why);
  return rc == 1 ? tp_result_fail (res, "%s", why) : rc;
}

int
tp_hive_refusal (tp_hive *hv, tp_result *res, char *why, size_t len)
{
  tp_regf_patch patch;
  int rc = make_patch (hv, res, &patch, why, len);
  if (rc != 0)
    return rc;
  rc = tp_regf_patch_unshared (&hv->reader, &patch, why, len) != 0 ? 1 : 0;
  tp_regf_patch_free (&patch);
  return rc;
}

/* The hive as written, read afresh (nothing from the planning reads)
 * through a cache of its own: the verification reads a few dozen small
 * records. */
static int
read_fresh (void *ctx, void *buf, size_t len, uint64_t off)
{
  struct chunk_cache *c = ctx;
  size_t failed;
  if (cache_fill (c, (size_t) off, len, &failed) != 0)
    return -1;
  memcpy (buf, c->buf + off, len);
  return 0;
}

int
tp_hive_verify_patch (tp_hive *hv, size_t size, tp_result *res)
{
  char why[256] = "out of memory";
  struct chunk_cache *fresh = cache_new (size, hv->read, hv->read_ctx);
  int rc = fresh ? tp_regf_verify_edits_from (read_fresh, fresh, size, hv->edits, hv->n_edits,
                                              why, sizeof why) : -1;
  cache_free (fresh);
  if (rc != 0)
    return tp_result_fail (res, "verification of the written hive failed: %s", why);
  return 0;
}

void
tp_hive_close (tp_hive *hv)
{
  if (!hv)
    return;
  cache_free (hv->cache);
  free (hv->read_error);
  free (hv->edits);
  for (size_t i = 0; i < hv->n_seen; i++) {
    free (hv->seen[i].key);
    free (hv->seen[i].name);
    tp_value_free (&hv->seen[i].value);
  }
  free (hv->seen);
  tp_filemap_close (hv->filemap);
  free (hv->recovered);
  if (hv->memfd >= 0)
    close (hv->memfd);
  if (hv->fd >= 0)
    close (hv->fd);             /* releases the lock */
  free (hv->path);
  free (hv);
}

tp_lookup
tp_hive_find_key (tp_hive *hv, const char *path, size_t *node, char **stored, tp_result *res)
{
  *node = tp_regf_root (&hv->reader);
  if (stored)
    *stored = strdup ("");
  char *copy = strdup (path), *save = NULL;
  if (!copy || (stored && !*stored) || !*node) {
    free (copy);
    hv->damaged = hv->damaged || !*node;
    return TP_DAMAGED;
  }
  tp_lookup found = TP_FOUND;
  for (char *part = strtok_r (copy, "\\", &save); part && found == TP_FOUND;
       part = strtok_r (NULL, "\\", &save)) {
    bool damaged = false;
    *node = tp_regf_child (&hv->reader, *node, part, &damaged);
    char *name = *node && stored ? tp_regf_key_name (&hv->reader, *node) : NULL;
    char *longer = NULL;
    if (damaged || (*node && stored && (!name || asprintf (&longer, "%s\\%s", *stored, name) < 0)))
      found = TP_DAMAGED;
    else if (!*node)
      found = TP_ABSENT;
    free (name);
    if (longer) {
      free (*stored);
      *stored = longer;
    }
  }
  hv->damaged = hv->damaged || found == TP_DAMAGED;
  if (found == TP_DAMAGED && res)
    tp_result_fail (res, "key %s cannot be looked up: a key on the way is damaged", path);
  free (copy);
  if (found != TP_FOUND && stored) {
    free (*stored);
    *stored = NULL;
  }
  return found;
}

/* One key's values, into t. */
static int
read_tree_values (tp_hive *hv, size_t node, tp_key_tree *t)
{
  size_t n;
  size_t *vals = tp_regf_values (&hv->reader, node, &n);
  if (n == (size_t) -1)
    return -1;
  t->value_names = calloc (n + 1, sizeof *t->value_names);
  t->values = calloc (n + 1, sizeof *t->values);
  int rc = t->value_names && t->values ? 0 : -1;
  for (size_t i = 0; i < n && rc == 0; i++) {
    t->value_names[i] = tp_regf_value_name (&hv->reader, vals[i]);
    if (!t->value_names[i] || tp_regf_value_data (&hv->reader, vals[i], &t->values[i]) < 0) {
      free (t->value_names[i]);
      rc = -1;
    } else
      t->n_values++;
  }
  free (vals);
  return rc;
}

static int
read_tree (tp_hive *hv, size_t node, tp_key_tree *t, int depth)
{
  size_t n;
  t->name = tp_regf_key_name (&hv->reader, node);
  if (!t->name || depth > 512 || read_tree_values (hv, node, t) < 0)
    return -1;
  size_t *kids = tp_regf_children (&hv->reader, node, &n);
  if (n == (size_t) -1)
    return -1;
  t->subkeys = calloc (n + 1, sizeof *t->subkeys);
  int rc = t->subkeys ? 0 : -1;
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = read_tree (hv, kids[i], &t->subkeys[i], depth + 1);
    t->n_subkeys++;             /* freed with the rest, even half-read */
  }
  free (kids);
  return rc;
}

tp_key_tree *
tp_hive_read_tree (tp_hive *hv, size_t node, tp_result *res)
{
  tp_key_tree *t = calloc (1, sizeof *t);
  if (t && read_tree (hv, node, t, 0) == 0)
    return t;
  hv->damaged = true;
  tp_key_tree_free (t);
  free (t);
  tp_result_fail (res, "a key to delete cannot be read whole: its subtree is damaged");
  return NULL;
}

size_t *
tp_hive_children (tp_hive *hv, size_t node, size_t *n)
{
  return tp_regf_children (&hv->reader, node, n);
}

size_t *
tp_hive_values (tp_hive *hv, size_t node, size_t *n)
{
  return tp_regf_values (&hv->reader, node, n);
}

char *
tp_hive_key_name (tp_hive *hv, size_t node)
{
  return tp_regf_key_name (&hv->reader, node);
}

void
tp_hive_names_free (char **names, size_t n)
{
  for (size_t i = 0; names && i < n; i++)
    free (names[i]);
  free (names);
}

int
tp_hive_subkey_names (tp_hive *hv, const char *path, char ***names, size_t *n_names,
                      tp_result *res)
{
  *names = NULL;
  *n_names = 0;
  size_t node, n;
  tp_lookup got = tp_hive_find_key (hv, path, &node, NULL, res);
  if (got != TP_FOUND)
    return got == TP_DAMAGED ? -1 : 0;
  size_t *children = tp_hive_children (hv, node, &n);
  if (n == (size_t) -1)
    return tp_result_fail (res, "cannot list %s: its subkey list is damaged", path);
  char **out = calloc (n + 1, sizeof *out);
  int rc = out ? 0 : tp_result_fail (res, "out of memory");
  for (size_t i = 0; i < n && rc == 0; i++)
    if (!(out[i] = tp_hive_key_name (hv, children[i])))
      rc = tp_result_fail (res, "cannot read a key name under %s", path);
  free (children);
  if (rc != 0) {
    tp_hive_names_free (out, n);
    return -1;
  }
  *names = out;
  *n_names = n;
  return 0;
}

int
tp_hive_get_value (tp_hive *hv, size_t node, const char *name, tp_value *v,
                   char **stored_name, size_t *position, tp_result *res)
{
  memset (v, 0, sizeof *v);
  if (stored_name)
    *stored_name = NULL;
  size_t val = tp_regf_value (&hv->reader, node, name, &hv->damaged, position);
  if (!val)
    return 0;
  if (tp_regf_value_data (&hv->reader, val, v) < 0) {
    hv->damaged = true;         /* never to be taken for "absent" */
    return tp_result_fail (res, "cannot read value %s: its record is damaged", name);
  }
  if (stored_name && !(*stored_name = tp_regf_value_name (&hv->reader, val))) {
    tp_value_free (v);
    return tp_result_fail (res, "cannot read value name %s", name);
  }
  return 0;
}

tp_lookup
tp_hive_get_dword (tp_hive *hv, size_t node, const char *name, uint32_t *out)
{
  tp_value v;
  tp_result scratch;
  tp_result_init (&scratch, NULL);
  tp_lookup found = TP_ABSENT;
  if (tp_hive_get_value (hv, node, name, &v, NULL, NULL, &scratch) != 0)
    found = TP_DAMAGED;
  else if (v.present && v.type == 4 && v.len == 4) {
    *out = tp_le32 (v.data);
    found = TP_FOUND;
  }
  tp_value_free (&v);
  tp_result_free (&scratch);
  return found;
}

/* Keep what an audit judged, for hivex to confirm (tp_hive_confirm). */
static int
remember_seen (tp_hive *hv, const char *key, const char *name, const tp_value *v)
{
  struct seen *more = realloc (hv->seen, (hv->n_seen + 1) * sizeof *more);
  if (!more)
    return -1;
  hv->seen = more;
  struct seen *s = &hv->seen[hv->n_seen];
  s->key = strdup (key);
  s->name = strdup (name);
  if (!s->key || !s->name || tp_value_copy (&s->value, v) < 0) {
    free (s->key);
    free (s->name);
    return -1;
  }
  hv->n_seen++;
  return 0;
}

int
tp_hive_confirm (tp_hive *hv, tp_result *res)
{
  if (hv->read || hv->n_seen == 0)
    return 0;                   /* read on demand (an image): see README */
  tp_referee_seen *list = calloc (hv->n_seen, sizeof *list);
  if (!list)
    return tp_result_fail (res, "out of memory");
  for (size_t i = 0; i < hv->n_seen; i++)
    list[i] = (tp_referee_seen) { .key = hv->seen[i].key, .name = hv->seen[i].name,
                                  .value = &hv->seen[i].value };
  char hive[64], why[512];
  snprintf (hive, sizeof hive, "/proc/self/fd/%d", hv->memfd >= 0 ? hv->memfd : hv->fd);
  int rc = tp_referee_confirm (hive, list, hv->n_seen, why, sizeof why);
  free (list);
  return rc == 0 ? 0 : tp_result_fail (res, "%s: the verdict cannot be confirmed", why);
}

int
tp_hive_plan_value (tp_hive *hv, const char *key_path, const char *name,
                    const tp_value *want, size_t position, tp_result *res)
{
  size_t node;
  tp_lookup got = tp_hive_find_key (hv, key_path, &node, NULL, res);
  if (got != TP_FOUND)
    return got == TP_DAMAGED ? -1 : tp_result_fail (res, "key %s not found", key_path);
  tp_value cur;
  char *stored = NULL;
  size_t at = 0;
  if (tp_hive_get_value (hv, node, name, &cur, &stored, &at, res) < 0)
    return -1;
  bool differs = !tp_value_equal (&cur, want);
  int rc = remember_seen (hv, key_path, stored ? stored : name, &cur);
  if (rc == 0)
    rc = tp_result_add_audit (res, key_path, stored ? stored : name, &cur, want, differs);
  if (rc == 0 && differs) {   /* the key's other values are never rewritten */
    rc = tp_result_add_change (res, key_path, stored ? stored : name, &cur, want);
    if (rc == 0)
      res->changes[res->n_changes - 1].position = !want->present ? at : !cur.present ? position : 0;
  }
  free (stored);
  tp_value_free (&cur);
  return rc;
}

/* The changes as path-addressed edits (keys created or deleted, values
 * set or deleted); the writer finds the keys and values itself. */
static tp_regf_edit *
plan_edits (tp_result *res)
{
  tp_regf_edit *edits = calloc (res->n_changes + 1, sizeof *edits);
  if (!edits) {
    tp_result_fail (res, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < res->n_changes; i++) {
    const tp_change *c = &res->changes[i];
    tp_regf_op op = c->op == TP_CHANGE_CREATE_KEY ? TP_EDIT_CREATE_KEY
                  : c->op == TP_CHANGE_DELETE_KEY ? TP_EDIT_DELETE_KEY
                  : c->new_value.present ? TP_EDIT_SET_VALUE : TP_EDIT_DELETE_VALUE;
    edits[i] = (tp_regf_edit) { .op = op, .key = c->key, .name = c->name,
                                .value = op == TP_EDIT_SET_VALUE ? &c->new_value : NULL,
                                .position = op == TP_EDIT_SET_VALUE ? c->position : 0 };
  }
  return edits;
}

/* Re-open the written file and read every edited value back from it. */
static int
verify_written (const char *tmp, const tp_regf_edit *edits, size_t n, tp_result *res)
{
  char why[256];
  int fd = open (tmp, O_RDONLY | O_CLOEXEC);
  int rc = fd < 0 ? -1 : tp_regf_verify_edits (fd, edits, n, why, sizeof why);
  if (fd < 0)
    snprintf (why, sizeof why, "%s", strerror (errno));
  if (fd >= 0)
    close (fd);
  if (rc != 0)
    return tp_result_fail (res, "verification of the written hive failed: %s "
                           "(the original is untouched)", why);
  return 0;
}

/* hivex, an independent reader, must agree: the original (as read:
 * replayed from its logs when it was dirty) against the written file. */
static int
referee_written (tp_hive *hv, const char *tmp, const tp_regf_edit *edits, size_t n,
                 tp_result *res)
{
  char original[64], why[512];
  snprintf (original, sizeof original, "/proc/self/fd/%d", hv->memfd >= 0 ? hv->memfd : hv->fd);
  if (tp_referee_check_written (original, &hv->reader, tmp, edits, n, why, sizeof why) != 0)
    return tp_result_fail (res, "%s (the original is untouched)", why);
  return 0;
}

/* Work that runs beside the writes (in a thread; inline when no thread
 * can be started): the fsync of the written file, and the check that
 * the patch frees no shared cell, which reads the whole original. */
typedef struct {
  pthread_t thread;
  bool threaded;
} beside;

static void
start_beside (beside *b, void *(*fn) (void *), void *arg)
{
  b->threaded = pthread_create (&b->thread, NULL, fn, arg) == 0;
  if (!b->threaded)
    fn (arg);
}

static void
join_beside (beside *b)
{
  if (b->threaded)
    pthread_join (b->thread, NULL);
  b->threaded = false;
}

typedef struct {
  int fd, rc, err;
} sync_job;

static void *
sync_in_background (void *arg)
{
  sync_job *j = arg;
  j->rc = fsync (j->fd);
  j->err = errno;
  return NULL;
}

typedef struct {
  const tp_regf *reader;
  const tp_regf_patch *patch;
  int rc;
  char why[256];
} unshared_job;

static void *
unshared_in_background (void *arg)
{
  unshared_job *j = arg;
  j->rc = tp_regf_patch_unshared (j->reader, j->patch, j->why, sizeof j->why);
  return NULL;
}

static int
fsync_path (const char *path, int flags)
{
  int fd = open (path, flags | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync (fd);
  close (fd);
  return rc;
}

/* Is `now` still the file that was read (`then`): the same device and
 * inode, size and modification time? */
static bool
unchanged (const struct stat *then, const struct stat *now)
{
  return then->st_dev == now->st_dev && then->st_ino == now->st_ino &&
         then->st_size == now->st_size && then->st_mtim.tv_sec == now->st_mtim.tv_sec &&
         then->st_mtim.tv_nsec == now->st_mtim.tv_nsec;
}

#define REPLACED "another program replaced or changed the hive while it was patched: " \
                 "its file is left in place, nothing was written"

/* Before the hive is replaced: the file held and the file the path
 * names must still be the one that was read (the lock keeps other
 * tlspatch runs out, not other programs). */
static int
check_unchanged (tp_hive *hv, tp_result *res)
{
  struct stat held, named;
  if (fstat (hv->fd, &held) != 0 || stat (hv->path, &named) != 0 ||
      !unchanged (&hv->st, &held) || !unchanged (&hv->st, &named) ||
      tp_filemap_shrunk (hv->filemap))
    return tp_result_fail (res, "%s", REPLACED);
  return 0;
}

bool
tp_hive_changed (const tp_hive *hv)
{
  struct stat held;
  if (!hv->filemap)
    return false;               /* read on demand: its owner answers */
  return tp_filemap_shrunk (hv->filemap) || fstat (hv->fd, &held) != 0 ||
         !unchanged (&hv->st, &held);
}

/* Put the written file `tmp` in the hive's place. An atomic exchange:
 * what it swapped out must be the file that was read, else it is
 * swapped back (a program that renamed its hive over the path after
 * check_unchanged keeps it). A file system without the exchange gets a
 * plain rename after the check. Returns 0; -1 when tmp still holds the
 * written file (to be removed); -2 when tmp holds the other program's
 * file (kept, named in the message). */
static int
replace_hive (tp_hive *hv, const char *tmp, tp_result *res)
{
  struct stat out;
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, hv->path, RENAME_EXCHANGE) != 0) {
    if ((errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) && rename (tmp, hv->path) == 0)
      return 0;
    tp_result_fail (res, "cannot replace the hive: %s (the original is untouched)", strerror (errno));
    return -1;
  }
  if (lstat (tmp, &out) == 0 && unchanged (&hv->st, &out)) {
    unlink (tmp);               /* the old hive */
    return 0;
  }
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, hv->path, RENAME_EXCHANGE) == 0) {
    tp_result_fail (res, "%s", REPLACED);
    return -1;
  }
  tp_result_fail (res, "another program replaced the hive while it was patched, and its file "
                  "could not be put back (%s): it is now %s", strerror (errno), tmp);
  return -2;
}

/* Keep the original beside the hive: a hard link costs no copy. */
static int
make_backup (tp_hive *hv, tp_result *res)
{
  char *bak = NULL;
  for (int n = 0; n < 1000; n++) {
    free (bak);
    bak = NULL;
    int len = n == 0 ? asprintf (&bak, "%s.tlspatch-bak", hv->path)
                     : asprintf (&bak, "%s.tlspatch-bak.%d", hv->path, n);
    if (len < 0)
      return tp_result_fail (res, "out of memory");
    if (link (hv->path, bak) == 0) {
      res->backup = bak;
      return 0;
    }
    if (errno != EEXIST)
      break;
  }
  tp_result_fail (res, "cannot keep a backup as %s: %s", bak, strerror (errno));
  free (bak);
  return -1;
}

/* The written file on disk, read back, refereed, and the pass over the
 * original judged: 0 when all hold, else -1 with the first failure in
 * res. The file goes to disk while it is read back (both read the
 * page cache). The pass over the original (done with the copy, as a
 * rule) and hivex's reading of the written file each touch the whole
 * hive: one after the other, the original's pages let go in between,
 * the process holds one copy of it in memory, not two. */
static int
settle_written (tp_hive *hv, int fd, const char *tmp, const tp_regf_edit *edits,
                beside *unshared, const unshared_job *uj, tp_result *res)
{
  sync_job sj = { .fd = fd };
  beside syncer;
  start_beside (&syncer, sync_in_background, &sj);
  join_beside (unshared);
  if (hv->filemap)
    tp_filemap_release (hv->filemap);
  int checked = uj->rc != 0 ? tp_result_fail (res, "%s (the original is untouched)", uj->why)
              : verify_written (tmp, edits, res->n_changes, res) < 0 ||
                referee_written (hv, tmp, edits, res->n_changes, res) < 0 ? -1 : 0;
  join_beside (&syncer);
  if (checked == 0 && sj.rc != 0)
    checked = tp_result_fail (res, "writing the new hive failed: %s (the original is untouched)",
                              strerror (sj.err));
  return checked;
}

static int
commit_atomically (tp_hive *hv, tp_result *res, bool backup)
{
  char *dir_copy = strdup (hv->path), *base_copy = strdup (hv->path), *tmp = NULL;
  const char *dir = dir_copy ? dirname (dir_copy) : NULL;
  if (!dir || !base_copy ||
      asprintf (&tmp, "%s/.%s.tlspatch-XXXXXX", dir, basename (base_copy)) < 0) {
    free (dir_copy);
    free (base_copy);
    return tp_result_fail (res, "out of memory");
  }
  int rc = -1;
  tp_regf_edit *edits = NULL;
  tp_regf_patch patch = { 0 };
  beside unshared = { 0 };
  unshared_job uj = { .reader = &hv->reader, .patch = &patch };
  int fd = mkstemp (tmp);
  if (fd < 0) {
    tp_result_fail (res, "cannot create a temporary file beside the hive: %s", strerror (errno));
    goto out_free;
  }
  char why[256];
  edits = plan_edits (res);
  if (!edits)
    goto out_unlink;
  if (tp_regf_make_patch (&hv->reader, edits, res->n_changes, &patch, why, sizeof why) != 0) {
    tp_result_fail (res, "cannot plan the writes: %s (the original is untouched)", why);
    goto out_unlink;
  }
  /* The pass over the whole original runs while the copy is written. */
  start_beside (&unshared, unshared_in_background, &uj);
  if (tp_regf_write_patch (&patch, fd, hv->memfd >= 0 ? hv->memfd : hv->fd, hv->size,
                           why, sizeof why) != 0) {
    tp_result_fail (res, "writing the new hive failed: %s (the original is untouched)", why);
    goto out_unlink;
  }
  if (fchown (fd, hv->st.st_uid, hv->st.st_gid) != 0) {
    if (geteuid () == 0) {
      tp_result_fail (res, "cannot keep the hive's owner: %s", strerror (errno));
      goto out_unlink;
    }
    tp_result_warn (res, "the hive now belongs to you: only root can keep its owner %u:%u",
                    (unsigned) hv->st.st_uid, (unsigned) hv->st.st_gid);
  }
  if (fchmod (fd, hv->st.st_mode & 07777) != 0) {
    tp_result_fail (res, "writing the new hive failed: %s (the original is untouched)",
                    strerror (errno));
    goto out_unlink;
  }
  if (settle_written (hv, fd, tmp, edits, &unshared, &uj, res) < 0 || check_unchanged (hv, res) < 0)
    goto out_unlink;
  if (backup && make_backup (hv, res) < 0)
    goto out_unlink;
  if (hv->st.st_nlink > 1)      /* as read at open, before any backup link */
    tp_result_warn (res, "the hive file had %lu names (hard links): only this one now holds "
                    "the patched hive, the others keep the old one", (unsigned long) hv->st.st_nlink);
  int replaced = replace_hive (hv, tmp, res);
  if (replaced != 0) {
    if (res->backup) {
      unlink (res->backup);
      free (res->backup);
      res->backup = NULL;
    }
    if (replaced == -2)
      goto out_close;
    goto out_unlink;
  }
  if (fsync_path (dir, O_RDONLY | O_DIRECTORY) != 0) {
    tp_result_fail (res, "the hive was replaced but the directory could not be synced: %s",
                    strerror (errno));
    goto out_close;
  }
  rc = 0;
  goto out_close;

 out_unlink:
  unlink (tmp);
 out_close:
  close (fd);
 out_free:
  join_beside (&unshared);
  tp_regf_patch_free (&patch);
  free (edits);
  free (tmp);
  free (dir_copy);
  free (base_copy);
  return rc;
}

int
tp_hive_apply (tp_hive *hv, tp_result *res, bool backup)
{
  if (res->n_changes == 0 && !hv->recovered)   /* nothing changes: the file is not touched */
    return 0;
  if (hv->read)
    return tp_result_fail (res, "internal error: a hive read on demand is written by its owner");
  return commit_atomically (hv, res, backup);
}
