/* tlspatch: registry settings and their plan (see settings.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlspatch/bytes.h"
#include "tlspatch/layout.h"
#include "tlspatch/netfx.h"
#include "tlspatch/options.h"
#include "tlspatch/profiles.h"
#include "tlspatch/report.h"
#include "tlspatch/services.h"
#include "tlspatch/settings.h"

static void
setting_free (tp_setting *st)
{
  free (st->key);
  free (st->name);
  free (st->where);
  free (st->text);
  free (st->needs_key);
  tp_value_free (&st->value);
}

void
tp_settings_free (tp_settings *s)
{
  for (size_t i = 0; i < s->n; i++)
    setting_free (&s->items[i]);
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

/* True when key `k` is one of the version keys of branch `b`
 * ("B\\vN.N", netfx.h), or lies under one when `below` is true. */
static bool
version_key_of (const char *k, const char *b, bool below)
{
  size_t n = tp_regf_name_prefix (k, b);
  if (n == (size_t) -1 || k[n] != '\\')
    return false;
  const char *name = k + n + 1, *end = strchr (name, '\\');
  if (end && !below)
    return false;
  char *own = strndup (name, end ? (size_t) (end - name) : strlen (name));
  bool is = own && tp_netfx_is_version_key (own);
  free (own);
  return is;
}

/* Can a's key be b's? A setting of every version key of a branch is
 * at any "BRANCH\\vN.N". */
static bool
same_key (const tp_setting *a, const tp_setting *b)
{
  if (a->every_version_key == b->every_version_key)
    return tp_regf_name_casecmp (a->key, b->key) == 0;
  const tp_setting *pattern = a->every_version_key ? a : b, *plain = a->every_version_key ? b : a;
  return version_key_of (plain->key, pattern->key, false);
}

/* Does deleting key `top` take away what `s` writes? */
static bool
deletes (const char *top, const tp_setting *s)
{
  return key_within (s->key, top) || (s->every_version_key && version_key_of (top, s->key, true));
}

static bool
is_value (const tp_setting *s)
{
  return (s->kind == TP_SETTING_REG || s->kind == TP_SETTING_SERVICE_START) &&
         (s->op == TP_REG_SET_VALUE || s->op == TP_REG_DELETE_VALUE);
}

static bool
is_key (const tp_setting *s)
{
  return s->kind == TP_SETTING_REG || s->kind == TP_SETTING_SERVICE_START;
}

/* Two settings that cannot both hold: one value set two ways, or a key
 * deleted and written. Settings that agree may repeat. */
static bool
contradict (const tp_setting *a, const tp_setting *b)
{
  if (!same_place (a, b) || !is_key (a) || !is_key (b))
    return false;
  if (is_value (a) && is_value (b))
    return same_key (a, b) && tp_regf_name_casecmp (a->name, b->name) == 0 &&
           (a->op != b->op || !tp_value_equal (&a->value, &b->value));
  if (a->op == TP_REG_DELETE_KEY && b->op != TP_REG_DELETE_KEY)
    return deletes (a->key, b);
  if (b->op == TP_REG_DELETE_KEY && a->op != TP_REG_DELETE_KEY)
    return deletes (b->key, a);
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

/* Append st (taken over: freed on failure) unless it contradicts an
 * earlier setting. */
static int
add_setting (tp_settings *s, tp_setting *st, char *why, size_t whylen)
{
  int rc = check_contradictions (s, st, why, whylen);
  tp_setting *more = rc == 0 ? realloc (s->items, (s->n + 1) * sizeof *more) : NULL;
  if (rc == 0 && !more) {
    snprintf (why, whylen, "%s: out of memory", st->where);
    rc = -1;
  }
  if (rc != 0) {
    setting_free (st);
    return -1;
  }
  s->items = more;
  s->items[s->n++] = *st;
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
  if (rc != 0) {
    setting_free (&st);
    return -1;
  }
  return add_setting (s, &st, why, whylen);
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
/* Profiles                                                           */

static bool
same_text (const char *a, const char *b)
{
  return a == b || (a && b && strcmp (a, b) == 0);
}

/* Registry names compare case-insensitively (--service obengine and
 * --service OBENGINE are one service). */
static bool
same_name (const char *a, const char *b)
{
  return a == b || (a && b && tp_regf_name_casecmp (a, b) == 0);
}

static bool
same_setting (const tp_setting *a, const tp_setting *b)
{
  return a->kind == b->kind && a->op == b->op && same_place (a, b) && same_name (a->key, b->key) &&
         same_name (a->name, b->name) && tp_value_equal (&a->value, &b->value) &&
         same_text (a->text, b->text) && a->every_version_key == b->every_version_key &&
         a->existing_key == b->existing_key && same_text (a->needs_key, b->needs_key) &&
         a->build_from == b->build_from && a->build_below == b->build_below;
}

/* One rule as a setting; `service` names the service of a SERVICE_START
 * rule. */
static int
add_rule (tp_settings *s, const tp_profile *p, const tp_rule *r, const char *service,
          char *why, size_t whylen)
{
  tp_setting st = { .kind = r->kind, .op = TP_REG_KEY,
                    .every_version_key = r->flags & TP_RULE_EVERY_VERSION_KEY,
                    .existing_key = r->flags & TP_RULE_EXISTING_KEY,
                    .build_from = r->build_from, .build_below = r->build_below };
  unsigned char bytes[4];
  tp_value dword = tp_value_dword (r->kind == TP_SETTING_SERVICE_START ? TP_SERVICE_START_AUTO
                                                                       : r->dword, bytes);
  char *key = NULL;
  int rc = asprintf (&st.where, "profile %s", p->name) < 0 ? -1 : 0;
  if (rc == 0 && r->kind == TP_SETTING_SERVICE_START)
    rc = asprintf (&key, "%s\\%s", r->key, service) < 0 ? -1 : 0;
  if (rc == 0)
    rc = place_key (key ? key : r->key, &st, why, whylen);
  const char *name = r->kind == TP_SETTING_SERVICE_START ? "Start" : r->name;
  if (rc == 0 && (r->kind == TP_SETTING_REG || r->kind == TP_SETTING_SERVICE_START)) {
    st.op = TP_REG_SET_VALUE;
    rc = tp_value_copy (&st.value, &dword);
  }
  if (rc == 0 && name && !(st.name = strdup (name)))
    rc = -1;
  if (rc == 0 && r->text && !(st.text = strdup (r->text)))
    rc = -1;
  if (rc == 0 && r->needs_key && !(st.needs_key = strdup (r->needs_key)))
    rc = -1;
  free (key);
  for (size_t i = 0; rc == 0 && i < s->n; i++)
    if (same_setting (&s->items[i], &st)) {
      setting_free (&st);       /* a rule two profiles share */
      return 0;
    }
  if (rc != 0) {
    if (!why[0])
      snprintf (why, whylen, "profile %s: out of memory", p->name);
    setting_free (&st);
    return -1;
  }
  return add_setting (s, &st, why, whylen);
}

int
tp_settings_add_profile (tp_settings *s, const tp_profile *p, const tp_options *opt,
                         char *why, size_t whylen)
{
  why[0] = '\0';
  if (p->base && tp_settings_add_profile (s, p->base, opt, why, whylen) < 0)
    return -1;
  for (size_t i = 0; i < p->n_rules; i++) {
    const tp_rule *r = &p->rules[i];
    if ((r->flags & TP_RULE_OPTION_SDT) && !opt->system_default_tls)
      continue;
    if (r->kind != TP_SETTING_SERVICE_START) {
      if (add_rule (s, p, r, NULL, why, whylen) < 0)
        return -1;
      continue;
    }
    for (size_t k = 0; !opt->no_service && k < opt->n_services; k++)
      if (add_rule (s, p, r, opt->services[k], why, whylen) < 0)
        return -1;
  }
  return 0;
}

bool
tp_settings_touch (const tp_settings *s, tp_hive_kind kind)
{
  for (size_t i = 0; i < s->n; i++)
    if (s->items[i].hive == kind)
      return true;
  return false;
}

bool
tp_options_want_system (const tp_options *opt)
{
  return !opt->no_service || (opt->settings && tp_settings_touch (opt->settings, TP_HIVE_SYSTEM));
}

/* ------------------------------------------------------------------ */
/* The plan                                                           */

/* The plan so far (its changes in res: what the hive will hold), and
 * what was read about the hive. */
typedef struct {
  tp_result *res;
  tp_hive *hv;
  bool restore;                 /* tp_settings.restore */
  int build_known;              /* 0 not read yet, 1 known (res->windows_build), -1 unknown */
  char sets[2][16];             /* the boot control sets */
  int n_sets;                   /* -1: not looked up yet */
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
  int got;
  if (st->existing_key) {       /* never created: look, do not plan */
    got = planned_key (p, path, TP_CHANGE_CREATE_KEY) ? TP_ABSENT
          : (int) tp_hive_find_key (p->hv, path, &node, &stored, p->res);
    if (got == TP_ABSENT)
      return 0;
  } else
    got = ensure_key (p, path, &node, &stored);
  int rc = got < 0 ? -1 : 0;
  tp_value absent = { 0 };
  size_t before = p->res->n_changes;
  if (got == TP_ABSENT) {   /* in a key to create: its values go in the settings' order */
    rc = tp_result_add_audit (p->res, path, st->name, &absent, &st->value, true);
    rc = rc < 0 ? rc : tp_result_add_change (p->res, path, st->name, &absent, &st->value);
  }
  else if (got == TP_FOUND)
    rc = tp_hive_plan_value (p->hv, stored, st->name, &st->value, st->position, p->res);
  const tp_value *old = rc == 0 && !p->restore && p->res->n_changes > before
                        ? &p->res->changes[before].old_value : NULL;
  if (old && old->present && old->type != st->value.type) {
    char *was = tp_report_value_string (old), *with = NULL;
    if (st->value.type == 4 && st->value.len == 4) {
      if (asprintf (&with, "REG_DWORD %u", (unsigned) tp_le32 (st->value.data)) < 0)
        with = NULL;
    } else
      with = tp_report_value_string (&st->value);
    bool would = p->res->mode == TP_MODE_CHECK || p->res->dry_run;
    char *where = tp_result_path (p->res, TP_HIVE_UNKNOWN, stored);   /* as changes name it */
    tp_result_warn (p->res, "%s\\%s: %s %s with %s", where ? where : stored, st->name,
                    would ? "would replace" : "replacing", was ? was : "?", with ? with : "?");
    free (where);
    free (was);
    free (with);
  }
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

/* One .reg setting at `path` (its key, placed). */
static int
plan_one (plan *p, const tp_setting *st, const char *key)
{
  char *path = strdup (key);
  if (!path)
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

/* ------------------------------------------------------------------ */
/* Conditions                                                         */

#define CURRENT_VERSION "\\Microsoft\\Windows NT\\CurrentVersion"

/* A REG_SZ of decimal digits: its number, or 0. */
static unsigned
string_number (const tp_value *v)
{
  if (!v->present || (v->type != 1 && v->type != 2) || v->len < 2)
    return 0;
  unsigned long n = 0;
  size_t i = 0;
  for (; i + 1 < v->len && v->data[i + 1] == 0 && v->data[i] >= '0' && v->data[i] <= '9'; i += 2)
    if ((n = n * 10 + (v->data[i] - '0')) > 1000000)
      return 0;
  bool ends = i + 1 >= v->len || (v->data[i] == 0 && v->data[i + 1] == 0);
  return i > 0 && ends ? (unsigned) n : 0;
}

/* The Windows build (SOFTWARE: CurrentBuildNumber, or CurrentBuild)
 * into res->windows_build; -1 when a record on the way is damaged. */
static int
read_build (plan *p)
{
  p->build_known = -1;
  size_t node;
  tp_lookup got = tp_hive_find_key (p->hv, CURRENT_VERSION, &node, NULL, p->res);
  if (got != TP_FOUND)
    return got == TP_DAMAGED ? -1 : 0;
  static const char *const names[] = { "CurrentBuildNumber", "CurrentBuild" };
  for (size_t i = 0; i < 2 && p->build_known < 0; i++) {
    tp_value v = { 0 };
    if (tp_hive_get_value (p->hv, node, names[i], &v, NULL, NULL, p->res) < 0)
      return -1;
    if ((p->res->windows_build = string_number (&v)) > 0)
      p->build_known = 1;
    tp_value_free (&v);
  }
  return 0;
}

/* 1 when st's needed key and build range hold in the hive, 0 when not
 * (said, for a value or check that depends on a build nobody can read),
 * -1 on error. The needed key is looked up in the hive as it is (the
 * profiles' needed keys are never keys a plan creates). */
static int
holds (plan *p, const tp_setting *st)
{
  if (st->needs_key) {
    size_t node;
    tp_lookup got = tp_hive_find_key (p->hv, st->needs_key, &node, NULL, p->res);
    if (got != TP_FOUND)
      return got == TP_DAMAGED ? -1 : 0;
  }
  if (st->build_from || st->build_below) {
    if (p->build_known == 0 && read_build (p) < 0)
      return -1;
    if (p->build_known < 0) {
      if (st->kind == TP_SETTING_REG)
        tp_result_warn (p->res, "the Windows build is unknown (no CurrentBuildNumber under %s): "
                        "%s\\%s is not set, it depends on the build (%s)", CURRENT_VERSION,
                        st->key, st->name, st->where);
      else if (st->kind == TP_SETTING_UPDATE_CHECK)
        tp_result_warn (p->res, "the Windows build is unknown: whether %s must be installed was "
                        "not checked (%s)", st->name, st->where);
      return 0;
    }
    unsigned build = p->res->windows_build;
    if ((st->build_from && build < st->build_from) || (st->build_below && build >= st->build_below))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Every kind of setting                                              */

/* Warn st->text when no subkey of st->key begins with st->name. */
static int
plan_update_check (plan *p, const tp_setting *st)
{
  char **names;
  size_t n;
  if (tp_hive_subkey_names (p->hv, st->key, &names, &n, p->res) < 0)
    return -1;
  bool installed = false;
  for (size_t i = 0; i < n && !installed; i++)
    installed = tp_regf_name_prefix (names[i], st->name) != (size_t) -1;
  tp_hive_names_free (names, n);
  if (!installed)
    tp_result_warn (p->res, "%s", st->text);
  return 0;
}

static int
boot_control_sets (plan *p)
{
  if (p->n_sets < 0)
    p->n_sets = tp_control_sets_to_boot (p->hv, p->sets, p->res);
  return p->n_sets;
}

/* Settings planned together, to keep the order of their changes: the
 * values of one .NET branch's version keys, version key by version
 * key; the services, control set by control set. */
static size_t
group_size (const tp_setting *items, size_t n)
{
  size_t k = 1;
  if (items[0].kind == TP_SETTING_SERVICE_START)
    while (k < n && items[k].kind == TP_SETTING_SERVICE_START)
      k++;
  else if (items[0].every_version_key)
    while (k < n && items[k].every_version_key && items[k].hive == items[0].hive &&
           tp_regf_name_casecmp (items[k].key, items[0].key) == 0)
      k++;
  return k;
}

/* The services of a group (`held`: whose conditions hold), control set
 * by control set. */
static int
plan_services (plan *p, const tp_setting *group, const bool *held, size_t n)
{
  int n_sets = boot_control_sets (p);
  for (int k = 0; k < n_sets; k++)
    for (size_t i = 0; i < n; i++) {
      const char *service = strrchr (group[i].key, '\\') + 1;   /* \Services\NAME */
      if (held[i] && tp_service_plan_start (p->hv, p->sets[k], service, p->res) < 0)
        return -1;
    }
  return n_sets < 0 ? -1 : 0;
}

/* The values of a group under each version key of its branch. */
static int
plan_version_keys (plan *p, const tp_setting *group, const bool *held, size_t n)
{
  char **versions;
  size_t n_versions;
  if (tp_netfx_version_keys (p->hv, group[0].key, &versions, &n_versions, p->res) < 0)
    return -1;
  int rc = 0;
  for (size_t v = 0; rc == 0 && v < n_versions; v++) {
    char *path = NULL;
    if (asprintf (&path, "%s\\%s", group[0].key, versions[v]) < 0)
      rc = tp_result_fail (p->res, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
      rc = held[i] ? plan_one (p, &group[i], path) : 0;
    free (path);
  }
  tp_hive_names_free (versions, n_versions);
  return rc;
}

/* A .reg setting (its conditions hold): at its key, or in each boot
 * control set. */
static int
plan_reg (plan *p, const tp_setting *st)
{
  if (!st->boot_control_sets)
    return plan_one (p, st, st->key);
  int n_sets = boot_control_sets (p);
  for (int k = 0; k < n_sets; k++) {
    char *path = NULL;
    if (asprintf (&path, "\\%s%s", p->sets[k], st->key) < 0)
      return tp_result_fail (p->res, "out of memory");
    int rc = plan_one (p, st, path);
    free (path);
    if (rc < 0)
      return -1;
  }
  return n_sets < 0 ? -1 : 0;
}

/* A group of settings (group_size): each one's conditions judged once,
 * then what holds planned. */
static int
plan_group (plan *p, const tp_setting *group, size_t n)
{
  bool *held = calloc (n, sizeof *held);
  if (!held)
    return tp_result_fail (p->res, "out of memory");
  int rc = 0, any = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int ok = holds (p, &group[i]);
    rc = ok < 0 ? -1 : 0;
    any |= held[i] = ok > 0;
  }
  if (rc == 0 && any)
    switch (group[0].kind) {
    case TP_SETTING_SERVICE_START:
      rc = plan_services (p, group, held, n);
      break;
    case TP_SETTING_REG:
      rc = group[0].every_version_key ? plan_version_keys (p, group, held, n) : plan_reg (p, group);
      break;
    case TP_SETTING_NETFX_CHECK:
      rc = tp_netfx_check (p->hv, p->res);
      break;
    case TP_SETTING_UPDATE_CHECK:
      rc = plan_update_check (p, group);
      break;
    case TP_SETTING_NOTE:
      tp_result_warn (p->res, "%s", group->text);
      break;
    }
  free (held);
  return rc;
}

int
tp_settings_plan (const tp_settings *s, tp_hive *hv, tp_result *res)
{
  plan p = { .res = res, .hv = hv, .restore = s->restore, .n_sets = -1 };
  for (size_t i = 0; i < s->n; ) {
    size_t n = group_size (s->items + i, s->n - i);
    if (s->items[i].hive == tp_hive_kind_of (hv) && plan_group (&p, s->items + i, n) < 0)
      return -1;
    i += n;
  }
  return 0;
}
