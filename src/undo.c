/* tlspatch: undo records as .reg files (see undo.h for the format). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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

static void
put_quoted (FILE *fp, const char *name)
{
  if (name[0] == '\0') {        /* the key's default value */
    fputc ('@', fp);
    return;
  }
  fputc ('"', fp);
  for (const char *p = name; *p; p++) {
    if (*p == '"' || *p == '\\')
      fputc ('\\', fp);
    fputc (*p, fp);
  }
  fputc ('"', fp);
}

static void
put_value (FILE *fp, const tp_value *v)
{
  if (!v->present) {
    fputs ("=-\n", fp);
    return;
  }
  /* hex(N) keeps the exact type and bytes, whatever they are. */
  fprintf (fp, "=hex(%x):", v->type);
  for (size_t i = 0; i < v->len; i++)
    fprintf (fp, i ? ",%02x" : "%02x", v->data[i]);
  fputc ('\n', fp);
}

static void
format_record (FILE *fp, const tp_result *res)
{
  fprintf (fp, "; target: %s\n", res->target);
  const char *last_key = NULL;
  for (size_t i = 0; i < res->n_changes; i++) {
    const tp_change *c = &res->changes[i];
    if (!last_key || strcmp (last_key, c->key) != 0) {
      if (last_key)
        fputc ('\n', fp);
      fprintf (fp, "[%s%s]\n", kind_prefix (res->kind), c->key);
      last_key = c->key;
    }
    put_quoted (fp, c->name);
    put_value (fp, &c->old_value);
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
  char stamp[32];
  time_t now = time (NULL);
  strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime (&now));
  if (dprintf (w->fd,
               REG_HEADER "\n\n"
               "; tlspatch " PACKAGE_VERSION " undo record, %s: the values as they were.\n"
               "; Restore: tlspatch revert --undo FILE TARGET\n"
               "; or, one hive: hivexregedit --merge --prefix '" PREFIX_SOFTWARE "' HIVE FILE\n\n",
               stamp) < 0)
    return tp_result_fail (res, "cannot write undo file %s: %s", w->path, strerror (errno));
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

static int
record_locked (tp_undo_writer *w, tp_result *res)
{
  if (w->fd < 0 && create_file (w, res) < 0)
    return -1;

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
    if (before >= 0 && ftruncate (w->fd, before) == 0)
      fsync (w->fd);
  }
  free (buf);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reader                                                             */

typedef struct {
  char *target;                 /* from the last "; target:" comment */
  tp_hive_kind kind;
  char *key;
  char *name;
  tp_value value;
} undo_entry;

struct tp_undo_doc {
  undo_entry *entries;
  size_t n;
};

void
tp_undo_free (tp_undo_doc *doc)
{
  if (!doc)
    return;
  for (size_t i = 0; i < doc->n; i++) {
    free (doc->entries[i].target);
    free (doc->entries[i].key);
    free (doc->entries[i].name);
    tp_value_free (&doc->entries[i].value);
  }
  free (doc->entries);
  free (doc);
}

/* "name" with \\ and \" escapes, or @. Returns a pointer past it. */
static const char *
parse_name (const char *p, char **out)
{
  if (*p == '@') {
    *out = strdup ("");
    return p + 1;
  }
  if (*p != '"')
    return NULL;
  char *s = malloc (strlen (p) + 1), *q = s;
  if (!s)
    return NULL;
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1])
      p++;
    *q++ = *p;
  }
  *q = '\0';
  if (*p != '"') {
    free (s);
    return NULL;
  }
  *out = s;
  return p + 1;
}

static int
parse_hex_bytes (const char *p, tp_value *v)
{
  size_t cap = strlen (p) / 2 + 1;
  v->data = malloc (cap);
  if (!v->data)
    return -1;
  v->len = 0;
  while (*p) {
    if (*p == ',' || isspace ((unsigned char) *p)) {
      p++;
      continue;
    }
    if (!isxdigit ((unsigned char) p[0]) || !isxdigit ((unsigned char) p[1]))
      return -1;
    char byte[3] = { p[0], p[1], 0 };
    v->data[v->len++] = (unsigned char) strtoul (byte, NULL, 16);
    p += 2;
  }
  return 0;
}

/* =-  |  =hex(N):aa,bb  |  =hex:aa  |  =dword:XXXXXXXX */
static int
parse_rhs (const char *p, tp_value *v)
{
  memset (v, 0, sizeof *v);
  if (strcmp (p, "=-") == 0)
    return 0;
  v->present = true;
  char *end;
  if (strncmp (p, "=dword:", 7) == 0 && strlen (p + 7) == 8) {
    unsigned long d = strtoul (p + 7, &end, 16);
    if (*end)
      return -1;
    unsigned char bytes[4];
    tp_value dw = tp_value_dword ((uint32_t) d, bytes);
    return tp_value_copy (v, &dw);
  }
  if (strncmp (p, "=hex:", 5) == 0) {
    v->type = 3;
    return parse_hex_bytes (p + 5, v);
  }
  if (strncmp (p, "=hex(", 5) == 0) {
    unsigned long t = strtoul (p + 5, &end, 16);
    if (end == p + 5 || strncmp (end, "):", 2) != 0)
      return -1;
    v->type = (uint32_t) t;
    return parse_hex_bytes (end + 2, v);
  }
  return -1;
}

static int
parse_key (const char *line, tp_hive_kind *kind, char **key)
{
  size_t n = strlen (line);
  if (n < 2 || line[n - 1] != ']')
    return -1;
  const char *inner = line + 1;
  size_t ls = strlen (PREFIX_SOFTWARE), ly = strlen (PREFIX_SYSTEM);
  if (strncasecmp (inner, PREFIX_SOFTWARE, ls) == 0 && (inner[ls] == '\\' || inner[ls] == ']')) {
    *kind = TP_HIVE_SOFTWARE;
    inner += ls;
  } else if (strncasecmp (inner, PREFIX_SYSTEM, ly) == 0 &&
             (inner[ly] == '\\' || inner[ly] == ']')) {
    *kind = TP_HIVE_SYSTEM;
    inner += ly;
  } else
    return -1;
  *key = strndup (inner, (size_t) (line + n - 1 - inner));
  return *key ? 0 : -1;
}

static int
add_entry (tp_undo_doc *doc, const char *target, tp_hive_kind kind, const char *key,
           char *name, tp_value *v)
{
  undo_entry *e = realloc (doc->entries, (doc->n + 1) * sizeof *e);
  if (!e)
    return -1;
  doc->entries = e;
  doc->entries[doc->n++] = (undo_entry) {
    .target = target ? strdup (target) : NULL, .kind = kind,
    .key = strdup (key), .name = name, .value = *v,
  };
  return 0;
}

static void
chomp (char *line)
{
  size_t n = strlen (line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
    line[--n] = '\0';
}

tp_undo_doc *
tp_undo_load (const char *path, char *why, size_t whylen)
{
  FILE *fp = fopen (path, "re");
  if (!fp) {
    snprintf (why, whylen, "cannot read undo file %s: %s", path, strerror (errno));
    return NULL;
  }
  tp_undo_doc *doc = calloc (1, sizeof *doc);
  char *line = NULL, *target = NULL, *key = NULL;
  size_t cap = 0, lineno = 0;
  tp_hive_kind kind = TP_HIVE_UNKNOWN;
  bool ok = doc != NULL;
  while (ok && getline (&line, &cap, fp) >= 0) {
    lineno++;
    chomp (line);
    if (strncmp (line, "; target: ", 10) == 0) {
      free (target);
      target = strdup (line + 10);
    } else if (line[0] == '\0' || line[0] == ';' || strstr (line, REG_HEADER))
      continue;
    else if (line[0] == '[') {
      free (key);
      key = NULL;
      ok = parse_key (line, &kind, &key) == 0;
    } else {
      char *name = NULL;
      tp_value v = { 0 };
      const char *rest = key ? parse_name (line, &name) : NULL;
      ok = rest && parse_rhs (rest, &v) == 0 &&
           add_entry (doc, target, kind, key, name, &v) == 0;
      if (!ok) {
        free (name);
        tp_value_free (&v);
      }
    }
  }
  if (!ok)
    snprintf (why, whylen, "undo file %s, line %zu: not a tlspatch undo record line",
              path, lineno);
  else if (doc->n == 0) {
    snprintf (why, whylen, "undo file %s records no values", path);
    ok = false;
  }
  free (line);
  free (target);
  free (key);
  fclose (fp);
  if (!ok) {
    tp_undo_free (doc);
    return NULL;
  }
  return doc;
}

/* The record for this hive: its kind, and its path when the file holds
 * records for several hives of that kind. */
static const char *
pick_target (const tp_undo_doc *doc, tp_hive *hv, const char *name, bool *ambiguous)
{
  const char *only = NULL;
  *ambiguous = false;
  for (size_t i = 0; i < doc->n; i++) {
    const undo_entry *e = &doc->entries[i];
    if (e->kind != tp_hive_kind_of (hv) || !e->target)
      continue;
    if (strcmp (e->target, name) == 0) {
      *ambiguous = false;       /* other hives' records before it do not matter */
      return e->target;
    }
    if (only && strcmp (only, e->target) != 0)
      *ambiguous = true;
    only = e->target;
  }
  return *ambiguous ? NULL : only;
}

static bool
already_planned (const tp_result *res, const char *key, const char *name)
{
  for (size_t i = 0; i < res->n_changes; i++)
    if (strcasecmp (res->changes[i].key, key) == 0 &&
        strcasecmp (res->changes[i].name, name) == 0)
      return true;
  return false;
}

int
tp_undo_plan (const tp_undo_doc *doc, tp_hive *hv, tp_result *res)
{
  bool ambiguous;
  const char *target = pick_target (doc, hv, res->target ? res->target : "", &ambiguous);
  if (ambiguous)
    return tp_result_fail (res, "the undo file holds records for several %s hives, none "
                           "for this one", tp_hive_kind_name (tp_hive_kind_of (hv)));
  size_t used = 0;
  for (size_t i = 0; i < doc->n; i++) {
    const undo_entry *e = &doc->entries[i];
    if (e->kind != tp_hive_kind_of (hv) ||
        (target && e->target && strcmp (e->target, target) != 0))
      continue;
    used++;
    if (already_planned (res, e->key, e->name))
      continue;                 /* the first record of a value is the oldest */
    if (!tp_hive_lookup (hv, e->key)) {
      tp_result_warn (res, "key %s no longer exists; its values are not restored", e->key);
      continue;
    }
    if (tp_hive_plan_value (hv, e->key, e->name, &e->value, res) < 0)
      return -1;
  }
  if (used == 0)
    tp_result_warn (res, "the undo file records nothing for this %s hive",
                    tp_hive_kind_name (tp_hive_kind_of (hv)));
  return 0;
}
