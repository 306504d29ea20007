/* tlspatch - offline KB 4033999 fix for Windows registry hives
 * result.h: what one run did to one hive, and the planned changes.
 *
 * Every module reports into a tp_result: the planners add tp_change
 * entries and warnings, the session code sets the status or the error.
 * The CLI and tests read it; report.h renders it.
 */
#ifndef TLSPATCH_RESULT_H
#define TLSPATCH_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tp_recovery_info;

typedef enum {
  TP_HIVE_UNKNOWN = 0,
  TP_HIVE_SOFTWARE,
  TP_HIVE_SYSTEM,
} tp_hive_kind;

typedef enum {
  TP_MODE_APPLY,
  TP_MODE_CHECK,
  TP_MODE_REVERT,
  TP_MODE_RECOVER,            /* replay transaction logs only */
} tp_mode;

typedef enum {
  TP_STATUS_NONE = 0,       /* not decided yet */
  TP_STATUS_PATCHED,        /* apply/revert/recover wrote the hive (or would, with --dry-run) */
  TP_STATUS_UNCHANGED,      /* apply/revert/recover: nothing to change */
  TP_STATUS_COMPLIANT,      /* check: nothing to change, .NET >= 4.6 */
  TP_STATUS_NONCOMPLIANT,   /* check: apply would change something, or .NET < 4.6 */
  TP_STATUS_ERROR,          /* refused or failed; the hive is untouched */
} tp_status;

/* A registry value as bytes: present or absent, with its exact type. */
typedef struct {
  bool present;
  uint32_t type;
  unsigned char *data;
  size_t len;
} tp_value;

/* A key with its values and subkeys, as read from a hive: what a key
 * deletion takes away, kept so that undo can put it back exactly. */
typedef struct tp_key_tree {
  char *name;                   /* as stored */
  char **value_names;           /* in the key's value-list order */
  tp_value *values;
  size_t n_values;
  struct tp_key_tree *subkeys;
  size_t n_subkeys;
} tp_key_tree;

void tp_key_tree_free (tp_key_tree *t);   /* frees what t holds, not t */

typedef enum {
  TP_CHANGE_VALUE = 0,  /* a value set, replaced or deleted */
  TP_CHANGE_CREATE_KEY, /* a key created (name NULL, values absent) */
  TP_CHANGE_DELETE_KEY, /* a key deleted with its subtree (name NULL; subtree kept) */
} tp_change_op;

/* One change that apply (or revert) makes. */
typedef struct {
  tp_change_op op;
  tp_hive_kind hive;    /* the hive it is in (UNKNOWN: the result's own) */
  char *key;            /* path from the hive root, e.g. \Microsoft\.NETFramework\v4.0.30319 */
  char *name;           /* value name, in the spelling stored in the hive (NULL for keys) */
  tp_value old_value;
  tp_value new_value;   /* !present: delete the value */
  tp_key_tree *subtree; /* TP_CHANGE_DELETE_KEY: what is deleted */
  size_t position;      /* a value's place in its key's value list (1 = first): where a
                         * deleted value was (for undo), where a created one goes
                         * (0: appended) */
} tp_change;

/* Audit evidence: one value a setting looks at, as found and as wanted.
 * ok when they are equal; otherwise `change` says whether apply changes
 * it (false: left alone, a warning says why). */
typedef struct {
  tp_hive_kind hive;    /* UNKNOWN: the result's own */
  char *key;            /* path from the hive root, as stored */
  char *name;           /* value name, as stored */
  tp_value found;
  tp_value wanted;
  bool change;
} tp_audit;

typedef struct {
  char *target;         /* the hive file (absolute path when known) */
  tp_hive_kind kind;
  tp_status status;
  tp_mode mode;         /* set with dry_run by tp_run, as the result is emitted */
  bool dry_run;

  tp_change *changes;
  size_t n_changes;
  char **warnings;
  size_t n_warnings;
  tp_audit *audit;      /* every value the settings looked at */
  size_t n_audit;
  char *error;          /* one line: the reason; set together with TP_STATUS_ERROR */

  /* SOFTWARE only: \Microsoft\NET Framework Setup\NDP\v4\Full\Release, or -1. */
  bool dotnet_checked;
  long dotnet_release;
  bool dotnet_too_old;  /* KB 4033999 cause 1: .NET 4.6 or later is not installed */

  /* SOFTWARE, when a rule asked: \Microsoft\Windows NT\CurrentVersion's
   * CurrentBuildNumber (e.g. 7601), or 0 when unknown. */
  unsigned windows_build;

  char *backup;         /* --backup: where the original was kept */

  /* A dirty hive replayed from its transaction logs (NULL: it was clean). */
  struct tp_recovery_info *recovery;

  /* Disk images: one result per Windows installation (root). */
  char *image;          /* the image file or URI */
  char *root;           /* the root filesystem, e.g. /dev/sda2 */
  char *product;        /* e.g. "Windows Server 2019 Datacenter" */
  char *hive_label;     /* "SOFTWARE+SYSTEM" when it covers both hives */
} tp_result;

void tp_result_init (tp_result *res, const char *target);
void tp_result_free (tp_result *res);

/* Record a warning / an error (printf-style). tp_result_fail sets
 * TP_STATUS_ERROR, keeps the first error, and returns -1 so callers
 * can write `return tp_result_fail (res, ...)`. */
void tp_result_warn (tp_result *res, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
int tp_result_fail (tp_result *res, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Fold the result of one hive (src) into the result of its Windows
 * installation (dst): each change keeps its hive, warnings and the
 * error name the hive, the worse status wins. src is emptied. */
int tp_result_merge (tp_result *dst, tp_result *src);

/* Append a value change; the values are copied. */
int tp_result_add_change (tp_result *res, const char *key, const char *name,
                          const tp_value *old_value, const tp_value *new_value);

/* Append audit evidence; the values are copied. */
int tp_result_add_audit (tp_result *res, const char *key, const char *name,
                         const tp_value *found, const tp_value *wanted, bool change);

/* Append a key creation (subtree NULL) or deletion (subtree: what the
 * key holds, owned by res from now on, even on failure). */
int tp_result_add_key_change (tp_result *res, tp_change_op op, const char *key,
                              tp_key_tree *subtree);

void tp_value_free (tp_value *v);
int tp_value_copy (tp_value *dst, const tp_value *src);
bool tp_value_equal (const tp_value *a, const tp_value *b);
/* A REG_DWORD whose bytes live in the caller's `bytes` (thread-safe). */
tp_value tp_value_dword (uint32_t dword, unsigned char bytes[4]);

const char *tp_hive_kind_name (tp_hive_kind kind);   /* "SOFTWARE", "SYSTEM", "unknown" */
/* The kind a file's name says (SOFTWARE, SYSTEM, any case), else unknown. */
tp_hive_kind tp_hive_kind_from_name (const char *path);
/* What happened, in the words of the result's mode: apply "patched",
 * "would_patch" (dry run), "unchanged"; revert "reverted",
 * "would_revert", "unchanged"; recover "recovered", "would_recover",
 * "unchanged"; check "compliant", "noncompliant"; any mode "error". */
const char *tp_result_status_name (const tp_result *res);
const char *tp_mode_name (tp_mode mode);              /* "apply", ... */
/* The full registry path of a key of the result, e.g. HKLM\SOFTWARE\Microsoft\...
 * (hive UNKNOWN: the result's own; malloc'd, NULL when out of memory). */
char *tp_result_path (const tp_result *res, tp_hive_kind hive, const char *key);
const char *tp_reg_type_name (uint32_t type);        /* "REG_DWORD", ... */

#endif
