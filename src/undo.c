/* tlspatch: undo records as .reg files (see undo.h for the format). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlspatch/layout.h"
#include "tlspatch/settings.h"
#include "tlspatch/undo.h"

#define REG_HEADER "Windows Registry Editor Version 5.00"
#define PREFIX_SOFTWARE "HKEY_LOCAL_MACHINE\\SOFTWARE"
#define PREFIX_SYSTEM "HKEY_LOCAL_MACHINE\\SYSTEM"

static const char *
kind_prefix (tp_hive_kind kind)
{
  return kind == TP_HIVE_SYSTEM ? PREFIX_SYSTEM : PREFIX_SOFTWARE;
}

/* ------------------------------------------------------------------ */
/* Writer                                                             */

struct tp_undo_writer {
  char *path;
  int fd;                       /* -1 until the first record */
  size_t n_records;
  off_t hint_at;                /* the header's hivexregedit line, true for one record only */
  size_t hint_len;
  pthread_mutex_t lock;         /* images are patched in parallel (-j) */
};

tp_undo_writer *
tp_undo_writer_new (const char *path)
{
  tp_undo_writer *w = calloc (1, sizeof *w);
  if (!w)
    return NULL;
  w->fd = -1;
  pthread_mutex_init (&w->lock, NULL);
  w->path = strdup (path);
  if (!w->path) {
    free (w);
    return NULL;
  }
  return w;
}

void
tp_undo_writer_free (tp_undo_writer *w)
{
  if (!w)
    return;
  if (w->fd >= 0)
    close (w->fd);
  pthread_mutex_destroy (&w->lock);
  free (w->path);
  free (w);
}

/* True when `key` lies strictly under a key that change `upto` or an
 * earlier one of res creates: undo deletes that one, and with it all. */
static bool
within_created (const tp_result *res, size_t upto, const char *key, bool strictly)
{
  for (size_t i = 0; i <= upto && i < res->n_changes; i++) {
    const tp_change *c = &res->changes[i];
    size_t n = c->op == TP_CHANGE_CREATE_KEY ? tp_regf_name_prefix (key, c->key) : (size_t) -1;
    if (n != (size_t) -1 && (key[n] == '\\' || (!strictly && key[n] == '\0')))
      return true;
  }
  return false;
}

/* A deleted key as it was: the key, its values in order, its subkeys. */
static void
put_tree (FILE *fp, const char *prefix, const char *path, const tp_key_tree *t)
{
  fprintf (fp, "[%s%s]\n", prefix, path);
  for (size_t i = 0; i < t->n_values; i++) {
    tp_reg_put_value (fp, t->value_names[i], &t->values[i]);
  }
  fputc ('\n', fp);
  for (size_t i = 0; i < t->n_subkeys; i++) {
    char *sub = NULL;
    if (asprintf (&sub, "%s\\%s", path, t->subkeys[i].name) >= 0)
      put_tree (fp, prefix, sub, &t->subkeys[i]);
    free (sub);
  }
}

/* What puts the hive back: created keys deleted (the topmost of each
 * created branch), deleted keys written back whole, values as they
 * were. */
static void
format_record (FILE *fp, const tp_result *res)
{
  const char *prefix = kind_prefix (res->kind);
  fprintf (fp, "; target: %s\n", res->target);
  const char *last_key = NULL;
  for (size_t i = 0; i < res->n_changes; i++) {
    const tp_change *c = &res->changes[i];
    if (c->op == TP_CHANGE_CREATE_KEY) {
      if (!within_created (res, i, c->key, true))
        fprintf (fp, "%s[-%s%s]\n", last_key ? "\n" : "", prefix, c->key);
      last_key = NULL;
      continue;
    }
    if (c->op == TP_CHANGE_DELETE_KEY) {
      if (last_key)
        fputc ('\n', fp);
      if (c->subtree)
        put_tree (fp, prefix, c->key, c->subtree);
      last_key = NULL;
      continue;
    }
    if (within_created (res, i, c->key, false))
      continue;
    if (!last_key || strcmp (last_key, c->key) != 0) {
      if (last_key)
        fputc ('\n', fp);
      fprintf (fp, "[%s%s]\n", prefix, c->key);
      last_key = c->key;
    }
    if (c->position && c->old_value.present && !c->new_value.present)
      fprintf (fp, "; position: %zu\n", c->position);
    tp_reg_put_value (fp, c->name, &c->old_value);
  }
  fputc ('\n', fp);
}

static int
create_file (tp_undo_writer *w, tp_result *res)
{
  w->fd = open (w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    if (errno == EEXIST)
      return tp_result_fail (res, "undo file %s already exists; refusing to overwrite it "
                             "(move it away or choose another name)", w->path);
    return tp_result_fail (res, "cannot create undo file %s: %s", w->path, strerror (errno));
  }
  char stamp[32], head[512];
  time_t now = time (NULL);
  strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
  int n = snprintf (head, sizeof head, REG_HEADER "\n\n"
                    "; tlspatch " PACKAGE_VERSION " undo record, %s: the values as they were.\n"
                    "; Restore: tlspatch revert --undo FILE TARGET\n", stamp);
  int hint = snprintf (head + n, sizeof head - (size_t) n,
                       "; or, this one hive: hivexregedit --merge --prefix '%s' HIVE FILE\n\n",
                       kind_prefix (res->kind));
  w->hint_at = n;
  w->hint_len = (size_t) hint - 2;   /* the line, without its newline and the blank line */
  errno = 0;
  if (write (w->fd, head, (size_t) (n + hint)) != n + hint)
    return tp_result_fail (res, "cannot write undo file %s: %s", w->path,
                           strerror (errno ? errno : EIO));
  /* The new name must survive a crash too. */
  char *copy = strdup (w->path);
  int dir = copy ? open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  int synced = dir >= 0 && fsync (dir) == 0;
  if (dir >= 0)
    close (dir);
  free (copy);
  if (!synced)
    return tp_result_fail (res, "cannot sync the folder of undo file %s", w->path);
  return 0;
}

static int record_locked (tp_undo_writer *w, tp_result *res);

int
tp_undo_writer_record (tp_undo_writer *w, tp_result *res)
{
  if (res->n_changes == 0)
    return 0;
  pthread_mutex_lock (&w->lock);
  int rc = record_locked (w, res);
  pthread_mutex_unlock (&w->lock);
  return rc;
}

/* A file this run created and could not complete goes again: left
 * empty or half-written, it would make every later run refuse (it
 * exists) while recording nothing. */
static void
forget_file (tp_undo_writer *w)
{
  if (w->fd < 0)
    return;                     /* never opened: it is someone else's */
  close (w->fd);
  w->fd = -1;
  unlink (w->path);
}

/* A second record makes the header's hivexregedit line untrue: it is
 * overwritten in place by a comment of the same length, so that the
 * file stays valid whatever part of the write lands. */
static void
drop_hint (tp_undo_writer *w, tp_result *res)
{
  static const char note[] = "; records for several hives: restore them with tlspatch revert";
  char line[512];
  if (w->hint_len >= sizeof line || w->hint_len < sizeof note - 1)
    return;
  memset (line, ' ', w->hint_len);
  memcpy (line, note, sizeof note - 1);
  if (pwrite (w->fd, line, w->hint_len, w->hint_at) != (ssize_t) w->hint_len || fsync (w->fd) != 0)
    tp_result_warn (res, "undo file %s: its header still suggests hivexregedit, which cannot "
                    "restore a record of several hives", w->path);
}

static int
record_locked (tp_undo_writer *w, tp_result *res)
{
  bool fresh = w->fd < 0;
  if (fresh && create_file (w, res) < 0) {
    forget_file (w);
    return -1;
  }

  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream (&buf, &len);
  if (!mem)
    return tp_result_fail (res, "out of memory");
  format_record (mem, res);
  fclose (mem);

  /* The record must be on disk before the hive changes: after a crash
   * the undo file still describes everything that may have been written. */
  int rc = 0;
  off_t before = lseek (w->fd, 0, SEEK_END);
  errno = 0;
  if (before < 0 || write (w->fd, buf, len) != (ssize_t) len || fsync (w->fd) != 0) {
    rc = tp_result_fail (res, "cannot write undo file %s: %s", w->path,
                         strerror (errno ? errno : EIO));
    /* Never leave half a record: later records would make the file unreadable. */
    if (fresh)
      forget_file (w);
    else if (before >= 0 && ftruncate (w->fd, before) == 0)
      fsync (w->fd);
  } else if (++w->n_records == 2)
    drop_hint (w, res);
  free (buf);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reader                                                             */

/* An undo file is a .reg file whose records each start with a
 * "; target: LABEL" comment; each record is read as settings. */
typedef struct {
  char *target;
  tp_hive_kind kind;
  tp_settings settings;
} undo_record;

struct tp_undo_doc {
  undo_record *records;
  size_t n;
};

void
tp_undo_free (tp_undo_doc *doc)
{
  if (!doc)
    return;
  for (size_t i = 0; i < doc->n; i++) {
    free (doc->records[i].target);
    tp_settings_free (&doc->records[i].settings);
  }
  free (doc->records);
  free (doc);
}

/* Add a record: the statements `entries` (a slice of the parsed file),
 * for one hive. */
static int
add_record (tp_undo_doc *doc, const tp_reg_file *f, const tp_reg_entry *entries, size_t n,
            const char *target, char *why, size_t whylen)
{
  undo_record *more = realloc (doc->records, (doc->n + 1) * sizeof *more);
  if (!more) {
    snprintf (why, whylen, "out of memory");
    return -1;
  }
  doc->records = more;
  undo_record *rec = &doc->records[doc->n++];
  *rec = (undo_record) { .target = target ? strdup (target) : NULL };
  tp_reg_file slice = { .path = f->path, .version = f->version,
                        .entries = (tp_reg_entry *) entries, .n = n };
  rec->settings.restore = true;
  if (tp_settings_add_reg (&rec->settings, &slice, why, whylen) != 0)
    return -1;
  rec->kind = rec->settings.n ? rec->settings.items[0].hive : TP_HIVE_UNKNOWN;
  for (size_t i = 0; i < rec->settings.n; i++)
    if (rec->settings.items[i].hive != rec->kind) {
      snprintf (why, whylen, "%s: one record names two hives", rec->settings.items[i].where);
      return -1;
    }
  return 0;
}

/* A record starts at its "; target: LABEL" comment line. */
typedef struct {
  char *target;
  unsigned line;
} record_start;

/* The comment lines tlspatch writes, in one pass over the text:
 * "; target: LABEL" starts a record (into starts, at most max of them;
 * their count is returned); "; position: N" gives the value statement
 * on the next line its place in its key's value list (see undo.h). */
static size_t
read_comments (const char *text, size_t len, tp_reg_file *f, record_start *starts, size_t max)
{
  static const char target[] = "; target: ", position[] = "; position: ";
  size_t n = 0, e = 0;
  unsigned line = 1;
  for (size_t at = 0; at < len; line++) {
    const char *nl = memchr (text + at, '\n', len - at);
    size_t end = nl ? (size_t) (nl - text) + 1 : len, tl = sizeof target - 1, pl = sizeof position - 1;
    if (n < max && end - at >= tl && memcmp (text + at, target, tl) == 0) {
      starts[n] = (record_start) { .target = strndup (text + at + tl, end - at - tl), .line = line };
      if (starts[n].target)
        starts[n].target[strcspn (starts[n].target, "\r\n")] = '\0';
      n++;
    } else if (end - at > pl && memcmp (text + at, position, pl) == 0) {
      while (e < f->n && f->entries[e].line <= line)
        e++;
      if (e < f->n && f->entries[e].line == line + 1 && f->entries[e].op == TP_REG_SET_VALUE)
        f->entries[e].position = strtoul (text + at + pl, NULL, 10);
    }
    at = end;
  }
  return n;
}

/* The file is parsed once; each statement belongs to the record whose
 * "; target:" line comes last before it. A file without such lines (a
 * plain .reg file) is one record, for any hive. */
static int
split_records (tp_undo_doc *doc, const tp_reg_file *f, const record_start *starts, size_t n,
               char *why, size_t whylen)
{
  if (n == 0)
    return add_record (doc, f, f->entries, f->n, NULL, why, whylen);
  size_t e = 0;
  while (e < f->n && f->entries[e].line < starts[0].line)
    e++;                        /* statements before the first record: none in ours */
  for (size_t i = 0; i < n; i++) {
    size_t first = e;
    while (e < f->n && (i + 1 == n || f->entries[e].line < starts[i + 1].line))
      e++;
    if (add_record (doc, f, f->entries + first, e - first, starts[i].target, why, whylen) != 0)
      return -1;
  }
  return 0;
}

tp_undo_doc *
tp_undo_load (const char *path, char *why, size_t whylen)
{
  size_t len;
  unsigned char *text;
  char prefixed[512];
  if (tp_reg_read_file (path, &text, &len, prefixed, sizeof prefixed) != 0) {
    snprintf (why, whylen, "cannot read undo file %s", prefixed);
    return NULL;
  }
  tp_reg_file f;
  if (tp_reg_parse (path, text, len, &f, why, whylen) != 0) {
    free (text);
    return NULL;
  }
  tp_undo_doc *doc = calloc (1, sizeof *doc);
  size_t max = len / 10 + 1;    /* a "; target: " line takes more than 10 bytes */
  record_start *starts = doc ? calloc (max, sizeof *starts) : NULL;
  size_t n = starts ? read_comments ((const char *) text, len, &f, starts, max) : 0;
  int rc = starts ? split_records (doc, &f, starts, n, why, whylen) : -1;
  if (!starts)
    snprintf (why, whylen, "cannot read undo file %s: out of memory", path);
  size_t settings = 0;
  for (size_t i = 0; doc && i < doc->n; i++)
    settings += doc->records[i].settings.n;
  if (rc == 0 && settings == 0) {
    snprintf (why, whylen, "undo file %s records nothing", path);
    rc = -1;
  }
  for (size_t i = 0; i < n; i++)
    free (starts[i].target);
  free (starts);
  free (text);
  tp_reg_file_free (&f);
  if (rc != 0) {
    tp_undo_free (doc);
    return NULL;
  }
  return doc;
}

/* The record for this hive: its kind, and its label when the file holds
 * records for several hives of that kind. */
static const undo_record *
pick_record (const tp_undo_doc *doc, tp_hive *hv, const char *name, bool *ambiguous)
{
  const undo_record *only = NULL;
  *ambiguous = false;
  for (size_t i = 0; i < doc->n; i++) {
    const undo_record *r = &doc->records[i];
    if (r->kind != tp_hive_kind_of (hv) || !r->settings.n)
      continue;
    if (r->target && strcmp (r->target, name) == 0) {
      *ambiguous = false;       /* other hives' records before it do not matter */
      return r;
    }
    if (only && (!only->target || !r->target || strcmp (only->target, r->target) != 0))
      *ambiguous = true;
    only = r;
  }
  return *ambiguous ? NULL : only;
}

int
tp_undo_plan (const tp_undo_doc *doc, tp_hive *hv, tp_result *res)
{
  bool ambiguous;
  const undo_record *rec = pick_record (doc, hv, res->target ? res->target : "", &ambiguous);
  if (ambiguous)
    return tp_result_fail (res, "the undo file holds records for several %s hives, none "
                           "for this one", tp_hive_kind_name (tp_hive_kind_of (hv)));
  if (!rec) {
    tp_result_warn (res, "the undo file records nothing for this %s hive",
                    tp_hive_kind_name (tp_hive_kind_of (hv)));
    return 0;
  }
  if (rec->target && strcmp (rec->target, res->target ? res->target : "") != 0)
    tp_result_warn (res, "the undo file's record for a %s hive was made for %s, not for this "
                    "one; its values are restored here", tp_hive_kind_name (rec->kind), rec->target);
  return tp_settings_plan (&rec->settings, hv, res);
}
