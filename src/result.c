/* tlspatch: result bookkeeping shared by all modules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlspatch/options.h"
#include "tlspatch/recover.h"
#include "tlspatch/result.h"

void
tp_options_init (tp_options *opt)
{
  static const char *default_services[] = { "obengine" };

  memset (opt, 0, sizeof *opt);
  opt->mode = TP_MODE_APPLY;
  opt->services = default_services;
  opt->n_services = 1;
}

bool
tp_options_write (const tp_options *opt)
{
  return opt->mode != TP_MODE_CHECK && !opt->dry_run;
}

void
tp_result_init (tp_result *res, const char *target)
{
  memset (res, 0, sizeof *res);
  res->target = target ? strdup (target) : NULL;
  res->dotnet_release = -1;
}

void
tp_value_free (tp_value *v)
{
  free (v->data);
  v->data = NULL;
  v->len = 0;
  v->present = false;
}

void
tp_key_tree_free (tp_key_tree *t)
{
  if (!t)
    return;
  free (t->name);
  for (size_t i = 0; i < t->n_values; i++) {
    free (t->value_names[i]);
    tp_value_free (&t->values[i]);
  }
  free (t->value_names);
  free (t->values);
  for (size_t i = 0; i < t->n_subkeys; i++)
    tp_key_tree_free (&t->subkeys[i]);
  free (t->subkeys);
  memset (t, 0, sizeof *t);
}

static void
change_free (tp_change *c)
{
  free (c->key);
  free (c->name);
  tp_value_free (&c->old_value);
  tp_value_free (&c->new_value);
  tp_key_tree_free (c->subtree);
  free (c->subtree);
}

static void
audit_free (tp_audit *a)
{
  free (a->key);
  free (a->name);
  tp_value_free (&a->found);
  tp_value_free (&a->wanted);
}

void
tp_result_free (tp_result *res)
{
  for (size_t i = 0; i < res->n_changes; i++)
    change_free (&res->changes[i]);
  free (res->changes);
  for (size_t i = 0; i < res->n_audit; i++)
    audit_free (&res->audit[i]);
  free (res->audit);
  for (size_t i = 0; i < res->n_warnings; i++)
    free (res->warnings[i]);
  free (res->warnings);
  free (res->error);
  free (res->target);
  free (res->backup);
  if (res->recovery) {
    tp_recovery_info_free (res->recovery);
    free (res->recovery);
  }
  free (res->image);
  free (res->root);
  free (res->product);
  free (res->hive_label);
  memset (res, 0, sizeof *res);
}

static char *
vformat (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return NULL;
  return s;
}

void
tp_result_warn (tp_result *res, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = vformat (fmt, ap);
  va_end (ap);
  if (!msg)
    return;
  char **w = realloc (res->warnings, (res->n_warnings + 1) * sizeof *w);
  if (!w) {
    free (msg);
    return;
  }
  res->warnings = w;
  res->warnings[res->n_warnings++] = msg;
}

int
tp_result_fail (tp_result *res, const char *fmt, ...)
{
  res->status = TP_STATUS_ERROR;
  if (res->error)               /* the first error is the cause */
    return -1;
  va_list ap;
  va_start (ap, fmt);
  res->error = vformat (fmt, ap);
  va_end (ap);
  if (!res->error)
    res->error = strdup ("out of memory");
  return -1;
}

int
tp_value_copy (tp_value *dst, const tp_value *src)
{
  *dst = *src;
  dst->data = NULL;
  if (!src->present || src->len == 0)
    return 0;
  dst->data = malloc (src->len);
  if (!dst->data)
    return -1;
  memcpy (dst->data, src->data, src->len);
  return 0;
}

bool
tp_value_equal (const tp_value *a, const tp_value *b)
{
  if (a->present != b->present)
    return false;
  if (!a->present)
    return true;
  return a->type == b->type && a->len == b->len &&
         (a->len == 0 || memcmp (a->data, b->data, a->len) == 0);
}

tp_value
tp_value_dword (uint32_t dword, unsigned char bytes[4])
{
  bytes[0] = dword & 0xff;
  bytes[1] = (dword >> 8) & 0xff;
  bytes[2] = (dword >> 16) & 0xff;
  bytes[3] = (dword >> 24) & 0xff;
  return (tp_value) { .present = true, .type = 4, .data = bytes, .len = 4 };
}

int
tp_result_add_change (tp_result *res, const char *key, const char *name,
                      const tp_value *old_value, const tp_value *new_value)
{
  tp_change *c = realloc (res->changes, (res->n_changes + 1) * sizeof *c);
  if (!c)
    return tp_result_fail (res, "out of memory");
  res->changes = c;
  tp_change *ch = &res->changes[res->n_changes];
  memset (ch, 0, sizeof *ch);
  ch->key = strdup (key);
  ch->name = strdup (name);
  if (!ch->key || !ch->name ||
      tp_value_copy (&ch->old_value, old_value) < 0 ||
      tp_value_copy (&ch->new_value, new_value) < 0) {
    free (ch->key);
    free (ch->name);
    tp_value_free (&ch->old_value);
    return tp_result_fail (res, "out of memory");
  }
  res->n_changes++;
  return 0;
}

int
tp_result_add_audit (tp_result *res, const char *key, const char *name,
                     const tp_value *found, const tp_value *wanted, bool change)
{
  tp_audit *a = realloc (res->audit, (res->n_audit + 1) * sizeof *a);
  if (!a)
    return tp_result_fail (res, "out of memory");
  res->audit = a;
  tp_audit *e = &res->audit[res->n_audit];
  *e = (tp_audit) { .key = strdup (key), .name = strdup (name), .change = change };
  if (!e->key || !e->name || tp_value_copy (&e->found, found) < 0 ||
      tp_value_copy (&e->wanted, wanted) < 0) {
    audit_free (e);
    return tp_result_fail (res, "out of memory");
  }
  res->n_audit++;
  return 0;
}

int
tp_result_add_key_change (tp_result *res, tp_change_op op, const char *key,
                          tp_key_tree *subtree)
{
  tp_change *c = realloc (res->changes, (res->n_changes + 1) * sizeof *c);
  char *copy = c ? strdup (key) : NULL;
  if (c)
    res->changes = c;
  if (!copy) {
    tp_key_tree_free (subtree);
    free (subtree);
    return tp_result_fail (res, "out of memory");
  }
  res->changes[res->n_changes++] = (tp_change) { .op = op, .key = copy, .subtree = subtree };
  return 0;
}

/* error > needs work > fine: what a pipeline must look at first. */
static int
status_rank (tp_status s)
{
  switch (s) {
  case TP_STATUS_ERROR: return 4;
  case TP_STATUS_PATCHED: case TP_STATUS_NONCOMPLIANT: return 3;
  case TP_STATUS_UNCHANGED: case TP_STATUS_COMPLIANT: return 2;
  default: return 0;
  }
}

int
tp_result_merge (tp_result *dst, tp_result *src)
{
  const char *hive = tp_hive_kind_name (src->kind);
  /* Both arrays grown before anything moves: out of memory leaves src
   * whole, and it is still freed. */
  tp_change *all = realloc (dst->changes, (dst->n_changes + src->n_changes + 1) * sizeof *all);
  if (all)
    dst->changes = all;
  tp_audit *aud = all ? realloc (dst->audit, (dst->n_audit + src->n_audit + 1) * sizeof *aud) : NULL;
  if (aud)
    dst->audit = aud;
  if (!all || !aud) {
    tp_result_free (src);
    return tp_result_fail (dst, "out of memory");
  }
  for (size_t i = 0; i < src->n_changes; i++) {   /* moved, each with its hive */
    tp_change *c = &src->changes[i];
    if (c->hive == TP_HIVE_UNKNOWN)
      c->hive = src->kind;
    dst->changes[dst->n_changes++] = *c;
  }
  src->n_changes = 0;
  for (size_t i = 0; i < src->n_audit; i++) {
    tp_audit *a = &src->audit[i];
    if (a->hive == TP_HIVE_UNKNOWN)
      a->hive = src->kind;
    dst->audit[dst->n_audit++] = *a;
  }
  src->n_audit = 0;
  for (size_t i = 0; i < src->n_warnings; i++)
    tp_result_warn (dst, "%s: %s", hive, src->warnings[i]);
  if (src->error)
    tp_result_fail (dst, "%s: %s", hive, src->error);
  if (src->backup && !dst->backup) {   /* an image root reports its first hive's */
    dst->backup = src->backup;
    src->backup = NULL;
  }
  if (src->recovery && !dst->recovery) {
    dst->recovery = src->recovery;
    src->recovery = NULL;
  }
  if (src->windows_build)
    dst->windows_build = src->windows_build;
  if (src->dotnet_checked) {
    dst->dotnet_checked = true;
    dst->dotnet_release = src->dotnet_release;
    dst->dotnet_too_old = src->dotnet_too_old;
  }
  if (status_rank (src->status) > status_rank (dst->status))
    dst->status = src->status;
  tp_result_free (src);
  return 0;
}

const char *
tp_hive_kind_name (tp_hive_kind kind)
{
  switch (kind) {
  case TP_HIVE_SOFTWARE: return "SOFTWARE";
  case TP_HIVE_SYSTEM: return "SYSTEM";
  default: return "unknown";
  }
}

tp_hive_kind
tp_hive_kind_from_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  const char *base = slash ? slash + 1 : path;
  if (strcasecmp (base, "SOFTWARE") == 0)
    return TP_HIVE_SOFTWARE;
  if (strcasecmp (base, "SYSTEM") == 0)
    return TP_HIVE_SYSTEM;
  return TP_HIVE_UNKNOWN;
}

const char *
tp_mode_name (tp_mode mode)
{
  switch (mode) {
  case TP_MODE_APPLY: return "apply";
  case TP_MODE_CHECK: return "check";
  case TP_MODE_REVERT: return "revert";
  case TP_MODE_RECOVER: return "recover";
  default: return "?";
  }
}

const char *
tp_result_status_name (const tp_result *res)
{
  static const char *const done[] = { [TP_MODE_APPLY] = "patched", [TP_MODE_REVERT] = "reverted",
                                      [TP_MODE_RECOVER] = "recovered" };
  static const char *const would[] = { [TP_MODE_APPLY] = "would_patch",
                                       [TP_MODE_REVERT] = "would_revert",
                                       [TP_MODE_RECOVER] = "would_recover" };
  switch (res->status) {
  case TP_STATUS_PATCHED:
    if (res->mode == TP_MODE_CHECK)
      return "noncompliant";
    return res->dry_run ? would[res->mode] : done[res->mode];
  case TP_STATUS_UNCHANGED: return res->mode == TP_MODE_CHECK ? "compliant" : "unchanged";
  case TP_STATUS_COMPLIANT: return "compliant";
  case TP_STATUS_NONCOMPLIANT: return "noncompliant";
  case TP_STATUS_ERROR: return "error";
  default: return "none";
  }
}

char *
tp_result_path (const tp_result *res, tp_hive_kind hive, const char *key)
{
  char *path = NULL;
  if (hive == TP_HIVE_UNKNOWN)
    hive = res->kind;
  if (hive == TP_HIVE_UNKNOWN)
    return strdup (key);
  if (asprintf (&path, "HKLM\\%s%s", tp_hive_kind_name (hive), key) < 0)
    return NULL;
  return path;
}

const char *
tp_reg_type_name (uint32_t type)
{
  static const char *names[] = {
    "REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD",
    "REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD",
  };
  return type < sizeof names / sizeof names[0] ? names[type] : "REG_UNKNOWN";
}
