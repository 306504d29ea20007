/* tlspatch: results for people and for pipelines. */
#include <stdlib.h>
#include <string.h>

#include "tlspatch/netfx.h"
#include "tlspatch/recover.h"
#include "tlspatch/report.h"

static uint32_t
value_dword (const tp_value *v)
{
  return (uint32_t) v->data[0] | (uint32_t) v->data[1] << 8 |
         (uint32_t) v->data[2] << 16 | (uint32_t) v->data[3] << 24;
}

static bool
is_dword (const tp_value *v)
{
  return v->present && v->type == 4 && v->len == 4;
}

/* REG_SZ / REG_EXPAND_SZ holding plain ASCII UTF-16LE: its text. */
static char *
ascii_string (const tp_value *v)
{
  if (!v->present || (v->type != 1 && v->type != 2) || v->len % 2)
    return NULL;
  char *s = malloc (v->len / 2 + 1);
  if (!s)
    return NULL;
  size_t n = 0;
  for (size_t i = 0; i + 1 < v->len; i += 2) {
    if (v->data[i + 1] != 0 || (v->data[i] != 0 && (v->data[i] < 0x20 || v->data[i] > 0x7e))) {
      free (s);
      return NULL;
    }
    if (v->data[i] == 0)
      break;
    s[n++] = (char) v->data[i];
  }
  s[n] = '\0';
  return s;
}

static char *
hex_string (const tp_value *v)
{
  char *s = malloc (v->len * 2 + 1);
  if (!s)
    return NULL;
  for (size_t i = 0; i < v->len; i++)
    snprintf (s + 2 * i, 3, "%02x", v->data[i]);
  s[v->len * 2] = '\0';
  return s;
}

/* DWORD -> number, ASCII string -> string, absent -> null, anything
 * else -> its bytes in hex. The type goes in a field of its own. */
static json_object *
value_json (const tp_value *v)
{
  if (!v->present)
    return NULL;
  if (is_dword (v))
    return json_object_new_int64 (value_dword (v));
  char *s = ascii_string (v);
  if (!s)
    s = hex_string (v);
  json_object *o = json_object_new_string (s ? s : "");
  free (s);
  return o;
}

static json_object *
type_json (const tp_value *v)
{
  return v->present ? json_object_new_string (tp_reg_type_name (v->type)) : NULL;
}

static const char *
change_op_name (const tp_change *c)
{
  if (c->op == TP_CHANGE_CREATE_KEY)
    return "create_key";
  if (c->op == TP_CHANGE_DELETE_KEY)
    return "delete_key";
  return c->new_value.present ? "set_value" : "delete_value";
}

/* Keys and values below a deleted key, counted. */
static void
count_tree (const tp_key_tree *t, size_t *keys, size_t *values)
{
  *values += t->n_values;
  for (size_t i = 0; i < t->n_subkeys; i++) {
    ++*keys;
    count_tree (&t->subkeys[i], keys, values);
  }
}

/* "hive" and "key" (the full registry path) of a change or an audit entry. */
static void
add_location (json_object *o, const tp_result *res, tp_hive_kind hive, const char *key)
{
  char *path = tp_result_path (res, hive, key);
  if (hive == TP_HIVE_UNKNOWN)
    hive = res->kind;
  json_object_object_add (o, "hive", hive != TP_HIVE_UNKNOWN
                          ? json_object_new_string (tp_hive_kind_name (hive)) : NULL);
  json_object_object_add (o, "key", json_object_new_string (path ? path : key));
  free (path);
}

static json_object *
change_json (const tp_result *res, const tp_change *c)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "op", json_object_new_string (change_op_name (c)));
  add_location (o, res, c->hive, c->key);
  json_object_object_add (o, "name", c->name ? json_object_new_string (c->name) : NULL);
  if (c->op == TP_CHANGE_DELETE_KEY && c->subtree) {
    size_t keys = 0, values = 0;
    count_tree (c->subtree, &keys, &values);
    json_object_object_add (o, "subkeys", json_object_new_int64 ((int64_t) keys));
    json_object_object_add (o, "values", json_object_new_int64 ((int64_t) values));
  }
  if (c->op != TP_CHANGE_VALUE)
    return o;
  json_object_object_add (o, "old", value_json (&c->old_value));
  json_object_object_add (o, "new", value_json (&c->new_value));
  json_object_object_add (o, "old_type", type_json (&c->old_value));
  json_object_object_add (o, "new_type", type_json (&c->new_value));
  return o;
}

/* What the audit of one value concluded, in the result's words. */
static const char *
audit_verdict (const tp_result *res, const tp_audit *a)
{
  if (!a->change)
    return tp_value_equal (&a->found, &a->wanted) ? "ok" : "left alone";
  if (res->mode == TP_MODE_CHECK || res->dry_run)
    return "would change";
  return res->status == TP_STATUS_ERROR ? "not changed (error)" : "changed";
}

static json_object *
audit_json (const tp_result *res, const tp_audit *a)
{
  json_object *o = json_object_new_object ();
  add_location (o, res, a->hive, a->key);
  json_object_object_add (o, "name", json_object_new_string (a->name));
  json_object_object_add (o, "found", value_json (&a->found));
  json_object_object_add (o, "found_type", type_json (&a->found));
  json_object_object_add (o, "wanted", value_json (&a->wanted));
  json_object_object_add (o, "wanted_type", type_json (&a->wanted));
  json_object_object_add (o, "ok", json_object_new_boolean (tp_value_equal (&a->found, &a->wanted)));
  json_object_object_add (o, "change", json_object_new_boolean (a->change));
  return o;
}

static json_object *
dotnet_json (const tp_result *res)
{
  if (!res->dotnet_checked)
    return NULL;
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "release", res->dotnet_release >= 0
                          ? json_object_new_int64 (res->dotnet_release) : NULL);
  const char *name = tp_netfx_version_name (res->dotnet_release);
  json_object_object_add (o, "version", name ? json_object_new_string (name) : NULL);
  json_object_object_add (o, "meets_kb4033999", json_object_new_boolean (!res->dotnet_too_old));
  return o;
}

static json_object *
recovery_json (const tp_result *res)
{
  const tp_recovery_info *info = res->recovery;
  if (!info)
    return NULL;
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "format", json_object_new_string (tp_log_format_name (info->format)));
  json_object *logs = json_object_new_array ();
  for (size_t i = 0; i < info->n_logs_used; i++)
    json_object_array_add (logs, json_object_new_string (info->logs_used[i]));
  json_object_object_add (o, "logs", logs);
  json_object_object_add (o, "entries", json_object_new_int64 (info->entries));
  json_object_object_add (o, "pages", json_object_new_int64 (info->pages));
  json_object *before = json_object_new_array ();
  json_object_array_add (before, json_object_new_int64 (info->seq_before_primary));
  json_object_array_add (before, json_object_new_int64 (info->seq_before_secondary));
  json_object_object_add (o, "sequence_before", before);
  json_object_object_add (o, "sequence_after", json_object_new_int64 (info->seq_after));
  json_object_object_add (o, "base_block_from_log", json_object_new_boolean (info->base_block_from_log));
  json_object_object_add (o, "stopped", info->stopped ? json_object_new_string (info->stopped) : NULL);
  return o;
}

json_object *
tp_report_json (const tp_result *res)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "mode", json_object_new_string (tp_mode_name (res->mode)));
  json_object_object_add (o, "target", json_object_new_string (res->target ? res->target : ""));
  json_object_object_add (o, "hive", res->hive_label ? json_object_new_string (res->hive_label)
                          : res->kind == TP_HIVE_UNKNOWN ? NULL
                          : json_object_new_string (tp_hive_kind_name (res->kind)));
  if (res->image) {
    json_object_object_add (o, "image", json_object_new_string (res->image));
    json_object_object_add (o, "root", res->root ? json_object_new_string (res->root) : NULL);
    json_object_object_add (o, "product", res->product ? json_object_new_string (res->product)
                            : NULL);
  }
  json_object_object_add (o, "status", json_object_new_string (tp_result_status_name (res)));
  json_object_object_add (o, "dry_run", json_object_new_boolean (res->dry_run));
  json_object *changes = json_object_new_array ();
  for (size_t i = 0; i < res->n_changes; i++)
    json_object_array_add (changes, change_json (res, &res->changes[i]));
  json_object_object_add (o, "changes", changes);
  json_object *warnings = json_object_new_array ();
  for (size_t i = 0; i < res->n_warnings; i++)
    json_object_array_add (warnings, json_object_new_string (res->warnings[i]));
  json_object_object_add (o, "warnings", warnings);
  json_object_object_add (o, "error", res->error ? json_object_new_string (res->error) : NULL);
  json_object *audit = json_object_new_array ();
  for (size_t i = 0; i < res->n_audit; i++)
    json_object_array_add (audit, audit_json (res, &res->audit[i]));
  json_object_object_add (o, "audit", audit);
  json_object_object_add (o, "dotnet", dotnet_json (res));
  if (res->windows_build)
    json_object_object_add (o, "windows_build", json_object_new_int64 (res->windows_build));
  json_object_object_add (o, "backup", res->backup ? json_object_new_string (res->backup) : NULL);
  json_object_object_add (o, "recovery", recovery_json (res));
  return o;
}

void
tp_report_print_json (FILE *fp, const tp_result *res)
{
  json_object *o = tp_report_json (res);
  fprintf (fp, "%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
}

char *
tp_report_value_string (const tp_value *v)
{
  char *out = NULL;
  if (!v->present)
    return strdup ("(absent)");
  if (is_dword (v)) {
    if (asprintf (&out, "%u", value_dword (v)) < 0)
      return NULL;
    return out;
  }
  char *s = ascii_string (v);
  bool text = s != NULL;
  if (!s)
    s = hex_string (v);
  if (!s || asprintf (&out, text ? "%s \"%s\"" : "%s hex:%s", tp_reg_type_name (v->type), s) < 0)
    out = NULL;
  free (s);
  return out;
}

void
tp_report_print_header (FILE *fp)
{
  fprintf (fp, "%-13s %-15s %-8s %s\n", "STATUS", "HIVE", "CHANGES", "TARGET");
}

static void
print_dotnet (FILE *fp, const tp_result *res)
{
  if (!res->dotnet_checked)
    return;
  const char *name = tp_netfx_version_name (res->dotnet_release);
  const char *verdict = res->dotnet_too_old ? "wants 4.6 or later: not compliant"
                                            : "wants 4.6 or later: ok";
  if (res->dotnet_release >= 0)
    fprintf (fp, "    .NET Framework %s (Release %ld), %s\n", name ? name : "4.0",
             res->dotnet_release, verdict);
  else
    fprintf (fp, "    .NET Framework 4.5 or later: not installed, %s\n", verdict);
}

void
tp_report_print_changes (FILE *fp, const tp_result *res, bool values)
{
  bool would = res->mode == TP_MODE_CHECK || res->dry_run;
  for (size_t i = 0; i < res->n_changes; i++) {
    const tp_change *c = &res->changes[i];
    if (!values && c->op == TP_CHANGE_VALUE)
      continue;
    char *path = tp_result_path (res, c->hive, c->key);
    const char *key = path ? path : c->key;
    size_t keys = 0, nvalues = 0;
    if (c->subtree)
      count_tree (c->subtree, &keys, &nvalues);
    if (c->op == TP_CHANGE_CREATE_KEY)
      fprintf (fp, "    %s: key %s\n", key, would ? "would be created" : "created");
    if (c->op == TP_CHANGE_DELETE_KEY)
      fprintf (fp, "    %s: key %s (%zu subkeys, %zu values)\n", key,
               would ? "would be deleted" : "deleted", keys, nvalues);
    if (c->op == TP_CHANGE_VALUE) {
      char *o = tp_report_value_string (&c->old_value);
      char *n = tp_report_value_string (&c->new_value);
      fprintf (fp, "    %s\\%s: %s -> %s\n", key, c->name, o ? o : "?", n ? n : "?");
      free (o);
      free (n);
    }
    free (path);
  }
}

static void
print_evidence (FILE *fp, const tp_result *res)
{
  for (size_t i = 0; i < res->n_audit; i++) {
    const tp_audit *a = &res->audit[i];
    char *path = tp_result_path (res, a->hive, a->key);
    char *f = tp_report_value_string (&a->found);
    char *w = tp_report_value_string (&a->wanted);
    fprintf (fp, "    %s\\%s: found %s, wants %s: %s\n", path ? path : a->key, a->name,
             f ? f : "?", w ? w : "?", audit_verdict (res, a));
    free (path);
    free (f);
    free (w);
  }
}

void
tp_report_print_warnings (FILE *fp, const tp_result *res)
{
  for (size_t i = 0; i < res->n_warnings; i++)
    fprintf (fp, "    warning: %s\n", res->warnings[i]);
}

void
tp_report_print_row (FILE *fp, const tp_result *res, int verbose)
{
  const char *hive = res->hive_label ? res->hive_label
                     : res->kind == TP_HIVE_UNKNOWN ? "-" : tp_hive_kind_name (res->kind);
  if (res->image)
    fprintf (fp, "%-13s %-15s %-8zu %s %s%s%s%s\n", tp_result_status_name (res), hive, res->n_changes,
             res->image, res->root ? res->root : "", res->product ? " (" : "",
             res->product ? res->product : "", res->product ? ")" : "");
  else
    fprintf (fp, "%-13s %-15s %-8zu %s\n", tp_result_status_name (res), hive, res->n_changes,
             res->target ? res->target : "");
  if (verbose)
    print_dotnet (fp, res);
  if (verbose || res->dry_run || res->status == TP_STATUS_NONCOMPLIANT)
    tp_report_print_changes (fp, res, !verbose);   /* with -v, values are in the evidence */
  if (verbose)
    print_evidence (fp, res);
  tp_report_print_warnings (fp, res);
}

void
tp_report_print_verdict (FILE *fp, const tp_result *res)
{
  if (res->dotnet_too_old)
    print_dotnet (fp, res);
  tp_report_print_changes (fp, res, true);
}
