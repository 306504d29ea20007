/* tlspatch: registry settings and their plan (see settings.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlspatch/layout.h"
#include "tlspatch/services.h"
#include "tlspatch/settings.h"

void
tp_settings_free (tp_settings *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free (s->items[i].key);
    free (s->items[i].name);
    free (s->items[i].where);
    tp_value_free (&s->items[i].value);
  }
  free (s->items);
  s->items = NULL;
  s->n = 0;
}

/* ------------------------------------------------------------------ */
/* Where a .reg key goes                                              */

/* Skip the path component `word` (case-insensitive) at *p; true when
 * it was there, followed by a backslash or the end. */
static bool
skip_component (const char **p, const char *word)
{
  size_t n = strlen (word);
  if (strncasecmp (*p, word, n) != 0 || ((*p)[n] != '\0' && (*p)[n] != '\\'))
    return false;
  *p += n;
  return true;
}

/* HKEY_LOCAL_MACHINE\SOFTWARE\X -> SOFTWARE, "\X". 0, or -1 with why. */
static int
place_key (const char *key, tp_setting *st, char *why, size_t whylen)
{
  const char *p = key;
  if (!skip_component (&p, "HKEY_LOCAL_MACHINE") && !skip_component (&p, "HKLM"))
    goto other_root;
  p += *p == '\\';
  if (skip_component (&p, "SOFTWARE"))
    st->hive = TP_HIVE_SOFTWARE;
  else if (skip_component (&p, "SYSTEM"))
    st->hive = TP_HIVE_SYSTEM;
  else
    goto other_root;
  if (st->hive == TP_HIVE_SYSTEM && *p == '\\') {
    const char *q = p + 1;
    if (skip_component (&q, "CurrentControlSet")) {
      st->boot_control_sets = true;
      p = q;
    }
  }
  st->key = strdup (p);
  if (!st->key)
    snprintf (why, whylen, "%s: out of memory", st->where);
  return st->key ? 0 : -1;

 other_root:
  snprintf (why, whylen, "%s: %s is not under HKEY_LOCAL_MACHINE\\SOFTWARE or "
            "HKEY_LOCAL_MACHINE\\SYSTEM: only those hives are written", st->where, key);
  return -1;
}

/* ------------------------------------------------------------------ */
/* Contradictions between settings                                    */

static bool
same_place (const tp_setting *a, const tp_setting *b)
{
  return a->hive == b->hive && a->boot_control_sets == b->boot_control_sets;
}

/* True when key `k` is `top` or lies under it. */
static bool
key_within (const char *k, const char *top)
{
  size_t n = tp_regf_name_prefix (k, top);
  return n != (size_t) -1 && (k[n] == '\0' || k[n] == '\\');
}

static bool
is_value (const tp_setting *s)
{
  return s->op == TP_REG_SET_VALUE || s->op == TP_REG_DELETE_VALUE;
}

/* Two settings that cannot both hold: one value set two ways, or a key
 * deleted and written. Settings that agree may repeat. */
static bool
contradict (const tp_setting *a, const tp_setting *b)
{
  if (!same_place (a, b))
    return false;
  if (is_value (a) && is_value (b))
    return tp_regf_name_casecmp (a->key, b->key) == 0 && tp_regf_name_casecmp (a->name, b->name) == 0 &&
           (a->op != b->op || !tp_value_equal (&a->value, &b->value));
  if (a->op == TP_REG_DELETE_KEY && b->op != TP_REG_DELETE_KEY)
    return key_within (b->key, a->key);
  if (b->op == TP_REG_DELETE_KEY && a->op != TP_REG_DELETE_KEY)
    return key_within (a->key, b->key);
  return false;
}

static int
check_contradictions (const tp_settings *s, const tp_setting *st, char *why, size_t whylen)
{
  for (size_t i = 0; i < s->n; i++)
    if (contradict (&s->items[i], st)) {
      snprintf (why, whylen, "%s: contradicts %s (%s)", st->where, s->items[i].where,
                st->op == TP_REG_DELETE_KEY || s->items[i].op == TP_REG_DELETE_KEY
                ? "a key deleted and written" : "the same value set differently");
      return -1;
    }
  return 0;
}

static int
add_entry (tp_settings *s, const char *path, const tp_reg_entry *e, char *why, size_t whylen)
{
  tp_setting st = { .op = e->op, .position = e->position };
  if (asprintf (&st.where, "%s:%u", path, e->line) < 0) {
    snprintf (why, whylen, "%s: out of memory", path);
    return -1;
  }
  int rc = place_key (e->key, &st, why, whylen);
  if (rc == 0 && st.op == TP_REG_DELETE_KEY && (st.key[0] == '\0' || strcmp (st.key, "\\") == 0)) {
    snprintf (why, whylen, "%s: refusing to delete a whole hive (%s)", st.where, e->key);
    rc = -1;
  }
  if (rc == 0 && e->name && !(st.name = strdup (e->name)))
    rc = -1;
  if (rc == 0 && tp_value_copy (&st.value, &e->value) < 0)
    rc = -1;
  if (rc == 0)
    rc = check_contradictions (s, &st, why, whylen);
  tp_setting *more = rc == 0 ? realloc (s->items, (s->n + 1) * sizeof *more) : NULL;
  if (rc == 0 && !more) {
    snprintf (why, whylen, "%s: out of memory", st.where);
    rc = -1;
  }
  if (rc != 0) {
    free (st.key);
    free (st.name);
    free (st.where);
    tp_value_free (&st.value);
    return -1;
  }
  s->items = more;
  s->items[s->n++] = st;
  return 0;
}

int
tp_settings_add_reg (tp_settings *s, const tp_reg_file *f, char *why, size_t whylen)
{
  for (size_t i = 0; i < f->n; i++)
    if (add_entry (s, f->path, &f->entries[i], why, whylen) < 0)
      return -1;
  return 0;
}

int
tp_settings_add_file (tp_settings *s, const char *path, char *why, size_t whylen)
{
  tp_reg_file f;
  if (tp_reg_load (path, &f, why, whylen) != 0)
    return -1;
  int rc = tp_settings_add_reg (s, &f, why, whylen);
  tp_reg_file_free (&f);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The plan                                                           */

/* Keys the plan creates or deletes so far: what the hive will hold. */
typedef struct {
  tp_result *res;
  tp_hive *hv;
} plan;

static const tp_change *
planned_key (const plan *p, const char *key, tp_change_op op)
{
  for (size_t i = 0; i < p->res->n_changes; i++) {
    const tp_change *c = &p->res->changes[i];
    if (c->op == op && (op == TP_CHANGE_DELETE_KEY ? key_within (key, c->key)
                                                   : tp_regf_name_casecmp (c->key, key) == 0))
      return c;
  }
  return NULL;
}

/* Make `path` exist: TP_FOUND with its node (stored spelling in
 * *stored), or TP_ABSENT when it is (now) planned to be created, every
 * missing level a change of its own; -1 when damaged. */
static int
ensure_key (plan *p, const char *path, size_t *node, char **stored)
{
  if (planned_key (p, path, TP_CHANGE_CREATE_KEY))
    return TP_ABSENT;
  tp_lookup got = tp_hive_find_key (p->hv, path, node, stored, p->res);
  if (got == TP_DAMAGED)
    return -1;
  if (got == TP_FOUND)
    return TP_FOUND;
  /* The missing levels, parents first: below the first level that is
   * neither in the hive nor planned, every level is missing. */
  char *copy = strdup (path);
  int rc = copy ? TP_ABSENT : tp_result_fail (p->res, "out of memory");
  bool missing = false;
  for (char *slash = copy ? strchr (copy + 1, '\\') : NULL; rc == TP_ABSENT; ) {
    if (slash)
      *slash = '\0';
    size_t at;
    if (!missing && !planned_key (p, copy, TP_CHANGE_CREATE_KEY)) {
      tp_lookup level = tp_hive_find_key (p->hv, copy, &at, NULL, p->res);
      rc = level == TP_DAMAGED ? -1 : rc;
      missing = level == TP_ABSENT;
    }
    if (rc == TP_ABSENT && missing &&
        tp_result_add_key_change (p->res, TP_CHANGE_CREATE_KEY, copy, NULL) < 0)
      rc = -1;
    if (!slash)
      break;
    *slash = '\\';
    slash = strchr (slash + 1, '\\');
  }
  free (copy);
  return rc;
}

/* A change of value `name` of `path` already planned (a setting met
 * twice: CurrentControlSet and the control set it stands for). 1 when
 * it is there with the same new value, 0 when not there, -1 when it
 * sets something else. */
static int
planned_value (const plan *p, const char *path, const char *name, const tp_value *want)
{
  for (size_t i = 0; i < p->res->n_changes; i++) {
    const tp_change *c = &p->res->changes[i];
    if (c->op == TP_CHANGE_VALUE && tp_regf_name_casecmp (c->key, path) == 0 &&
        tp_regf_name_casecmp (c->name, name) == 0)
      return tp_value_equal (&c->new_value, want) ? 1
             : tp_result_fail (p->res, "two settings want value %s of %s different", name, path);
  }
  return 0;
}

static int
plan_set (plan *p, const tp_setting *st, const char *path)
{
  int done = planned_value (p, path, st->name, &st->value);
  if (done != 0)
    return done < 0 ? -1 : 0;
  size_t node = 0;
  char *stored = NULL;
  int got = ensure_key (p, path, &node, &stored);
  int rc = got < 0 ? -1 : 0;
  tp_value absent = { 0 };
  if (got == TP_ABSENT)   /* in a key to create: its values go in the settings' order */
    rc = tp_result_add_change (p->res, path, st->name, &absent, &st->value);
  else if (got == TP_FOUND)
    rc = tp_hive_plan_value (p->hv, stored, st->name, &st->value, st->position, p->res);
  free (stored);
  return rc;
}

static int
plan_delete_value (plan *p, const tp_setting *st, const char *path)
{
  tp_value absent = { 0 };
  int done = planned_value (p, path, st->name, &absent);
  if (done != 0)
    return done < 0 ? -1 : 0;
  if (planned_key (p, path, TP_CHANGE_CREATE_KEY))
    return 0;
  size_t node;
  char *stored = NULL;
  tp_lookup got = tp_hive_find_key (p->hv, path, &node, &stored, p->res);
  if (got == TP_DAMAGED)
    return -1;
  int rc = got == TP_FOUND ? tp_hive_plan_value (p->hv, stored, st->name, &absent, 0, p->res) : 0;
  free (stored);
  return rc;
}

static int
plan_delete_key (plan *p, const char *path)
{
  if (planned_key (p, path, TP_CHANGE_DELETE_KEY))
    return 0;                   /* within a key already being deleted */
  size_t node;
  char *stored = NULL;
  tp_lookup got = tp_hive_find_key (p->hv, path, &node, &stored, p->res);
  if (got == TP_DAMAGED)
    return -1;
  int rc = 0;
  if (got == TP_FOUND) {
    tp_key_tree *tree = tp_hive_read_tree (p->hv, node, p->res);
    rc = tree ? tp_result_add_key_change (p->res, TP_CHANGE_DELETE_KEY, stored, tree) : -1;
  }
  free (stored);
  return rc;
}

static int
plan_one (plan *p, const tp_setting *st, const char *prefix)
{
  char *path = NULL;
  if (asprintf (&path, "%s%s", prefix, st->key) < 0)
    return tp_result_fail (p->res, "out of memory");
  size_t len = strlen (path);
  while (len > 0 && path[len - 1] == '\\')      /* "\" is the root: "" */
    path[--len] = '\0';
  int rc = 0;
  size_t node;
  char *stored = NULL;
  switch (st->op) {
  case TP_REG_KEY:
    rc = ensure_key (p, path, &node, &stored) < 0 ? -1 : 0;
    break;
  case TP_REG_SET_VALUE:
    rc = plan_set (p, st, path);
    break;
  case TP_REG_DELETE_VALUE:
    rc = plan_delete_value (p, st, path);
    break;
  case TP_REG_DELETE_KEY:
    rc = plan_delete_key (p, path);
    break;
  }
  free (stored);
  free (path);
  return rc;
}

int
tp_settings_plan (const tp_settings *s, tp_hive *hv, tp_result *res)
{
  plan p = { .res = res, .hv = hv };
  char sets[2][16];
  int n_sets = -1;              /* looked up when a setting needs them */
  for (size_t i = 0; i < s->n; i++) {
    const tp_setting *st = &s->items[i];
    if (st->hive != tp_hive_kind_of (hv))
      continue;
    if (!st->boot_control_sets) {
      if (plan_one (&p, st, "") < 0)
        return -1;
      continue;
    }
    if (n_sets < 0 && (n_sets = tp_control_sets_to_boot (hv, sets, res)) < 0)
      return -1;
    for (int k = 0; k < n_sets; k++) {
      char prefix[40];
      snprintf (prefix, sizeof prefix, "\\%s", sets[k]);
      if (plan_one (&p, st, prefix) < 0)
        return -1;
    }
  }
  return 0;
}
