/* tlspatch: resolve a TARGET argument to hive files.
 *
 * Windows paths are case-insensitive and mounted volumes (ntfs-3g, a
 * copied folder) keep whatever case the files had, so every step of
 * the walk matches names case-insensitively.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "tlspatch/target.h"

/* DIR/name with name matched case-insensitively; NULL if absent or not
 * of the wanted type (S_IFDIR / S_IFREG). */
static char *
find_entry (const char *dir, const char *name, mode_t type)
{
  DIR *d = opendir (dir);
  if (!d)
    return NULL;
  char *found = NULL;
  struct dirent *de;
  while (!found && (de = readdir (d)) != NULL) {
    if (strcasecmp (de->d_name, name) != 0)
      continue;
    char *path = NULL;
    struct stat st;
    if (asprintf (&path, "%s/%s", dir, de->d_name) < 0)
      break;
    if (stat (path, &st) == 0 && (st.st_mode & S_IFMT) == type)
      found = path;
    else
      free (path);
  }
  closedir (d);
  return found;
}

/* The config folder under a volume root, a Windows folder, a System32
 * folder, or the folder itself. */
static char *
find_config_dir (const char *dir)
{
  static const char *const walks[][3] = {
    { "Windows", "System32", "config" },
    { "System32", "config", NULL },
    { "config", NULL, NULL },
  };
  for (size_t w = 0; w < sizeof walks / sizeof walks[0]; w++) {
    char *cur = strdup (dir);
    for (size_t i = 0; cur && i < 3 && walks[w][i]; i++) {
      char *next = find_entry (cur, walks[w][i], S_IFDIR);
      free (cur);
      cur = next;
    }
    if (cur)
      return cur;
  }
  return strdup (dir);
}

/* The absolute path of `path` with its folders resolved and its last
 * component as it is: one name for a hive in every report (success or
 * refusal, file or folder target), and never the far end of a link. */
static char *
target_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  char *dir = slash ? strndup (path, (size_t) (slash - path) + 1) : strdup (".");
  char *real = dir ? realpath (dir, NULL) : NULL, *name = NULL;
  const char *base = slash ? slash + 1 : path;
  if (!real || asprintf (&name, "%s%s%s", real, strcmp (real, "/") ? "/" : "", base) < 0)
    name = strdup (path);
  free (dir);
  free (real);
  return name;
}

static void
add_hive (tp_target *t, char *path, tp_hive_kind expect, char *error)
{
  tp_target_hive *h = realloc (t->hives, (t->n_hives + 1) * sizeof *h);
  if (!h) {
    free (path);
    free (error);
    return;
  }
  t->hives = h;
  t->hives[t->n_hives++] = (tp_target_hive) {
    .path = path, .name = path ? target_name (path) : NULL, .expect = expect, .error = error };
}

/* Where `path` leads when that is outside the folder `root` (resolved):
 * a symbolic link on an untrusted volume (ntfs-3g shows NTFS links as
 * such) must not make tlspatch patch a file elsewhere. NULL when inside. */
static char *
leads_out (const char *root, const char *path)
{
  char *real = realpath (path, NULL);
  size_t n = strlen (root);
  if (real && strncmp (real, root, n) == 0 && (real[n] == '/' || root[n - 1] == '/'))
    return (free (real), NULL);
  return real ? real : strdup ("?");
}

static void
add_from_dir (tp_target *t, const char *arg, const char *root, const char *config,
              const char *name, tp_hive_kind kind)
{
  char *path = find_entry (config, name, S_IFREG);
  char *error = NULL, *out = path ? leads_out (root, path) : NULL;
  if (out) {
    if (asprintf (&error, "it leads out of the folder %s (a symbolic link to %s): refused", arg, out) < 0)
      error = NULL;
    free (out);
  }
  if (!path) {
    if (asprintf (&error, "no %s hive found under %s", name, arg) < 0)
      error = NULL;
    if (asprintf (&path, "%s/%s", config, name) < 0)
      path = NULL;
  }
  add_hive (t, path, kind, error);
}

void
tp_target_resolve (const char *arg, int need_system, tp_target *t)
{
  memset (t, 0, sizeof *t);
  struct stat st;
  if (stat (arg, &st) != 0 || !S_ISDIR (st.st_mode)) {
    add_hive (t, strdup (arg), TP_HIVE_UNKNOWN, NULL);   /* tp_hive_open says why not */
    return;
  }
  char *config = find_config_dir (arg), *root = realpath (arg, NULL);
  if (!config || !root) {
    add_hive (t, strdup (arg), TP_HIVE_UNKNOWN, strdup ("out of memory"));
    free (config);
    free (root);
    return;
  }
  char *software = find_entry (config, "SOFTWARE", S_IFREG);
  char *system = need_system ? find_entry (config, "SYSTEM", S_IFREG) : NULL;
  if (!software && !system) {   /* one line for the folder, not one per missing hive */
    char *error = NULL;
    if (asprintf (&error, "not a Windows volume: no Windows/System32/config/SOFTWARE%s under it",
                  need_system ? " or SYSTEM" : "") < 0)
      error = strdup ("out of memory");   /* never NULL: the folder is no hive */
    add_hive (t, strdup (root), TP_HIVE_UNKNOWN, error);
  } else {
    add_from_dir (t, arg, root, config, "SOFTWARE", TP_HIVE_SOFTWARE);
    if (need_system)
      add_from_dir (t, arg, root, config, "SYSTEM", TP_HIVE_SYSTEM);
  }
  free (software);
  free (system);
  free (config);
  free (root);
}

void
tp_target_free (tp_target *t)
{
  for (size_t i = 0; i < t->n_hives; i++) {
    free (t->hives[i].path);
    free (t->hives[i].name);
    free (t->hives[i].error);
  }
  free (t->hives);
  memset (t, 0, sizeof *t);
}
