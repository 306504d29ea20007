/* tlspatch: registry settings as data, and the plan that makes a hive
 * match them.
 *
 * A setting is one statement of a .reg file, placed in a hive:
 * HKEY_LOCAL_MACHINE\SOFTWARE\... (or HKLM\...) in the SOFTWARE hive,
 * HKEY_LOCAL_MACHINE\SYSTEM\... in SYSTEM, where CurrentControlSet\...
 * stands for the control sets Windows will boot (\Select's Default, and
 * Current when it differs), as for services. Other roots are refused.
 *
 * Planning compares each setting with the hive and adds to the result
 * only what differs: keys to create (every missing level, parents
 * first), values to set or delete, keys to delete with their subtree
 * (kept in the change, for undo). A hive that already matches gets no
 * change, so a second apply writes nothing.
 */
#ifndef TLSPATCH_SETTINGS_H
#define TLSPATCH_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "tlspatch/hive.h"
#include "tlspatch/regfile.h"
#include "tlspatch/result.h"

/* What a setting asks. Every kind but TP_SETTING_REG comes from a
 * profile (profiles.h). */
typedef enum {
  TP_SETTING_REG = 0,           /* a .reg statement: op, key, name, value */
  TP_SETTING_SERVICE_START,     /* service `name` (key \Services\NAME, Start 2) starts at the
                                 * next boot: Start 3 -> 2 in the boot control sets */
  TP_SETTING_NETFX_CHECK,       /* .NET 4.6 or later is installed and has version keys (else
                                 * warn; check reports non-compliant below 4.6) */
  TP_SETTING_UPDATE_CHECK,      /* warn `text` when no subkey of `key` begins with `name` (an
                                 * update's Component Based Servicing package) */
  TP_SETTING_NOTE,              /* say `text` (a warning) */
} tp_setting_kind;

typedef struct {
  tp_setting_kind kind;
  tp_reg_op op;
  tp_hive_kind hive;
  bool boot_control_sets;       /* key is under CurrentControlSet */
  char *key;                    /* from the hive root ("\Microsoft\X"), or from the control set */
  char *name;                   /* values: "" is the default value */
  tp_value value;               /* TP_REG_SET_VALUE */
  size_t position;              /* TP_REG_SET_VALUE: where a new value goes (tp_reg_entry) */
  char *where;                  /* "FILE:LINE" or "profile NAME", for messages */
  char *text;                   /* TP_SETTING_NOTE, TP_SETTING_UPDATE_CHECK */
  /* Conditions, all of which must hold in the hive for the setting to
   * be planned: */
  bool every_version_key;       /* key is a .NETFramework branch: the setting holds for each
                                 * of its version keys (netfx.h), none when it is absent */
  bool existing_key;            /* only where the key exists: it is never created */
  char *needs_key;              /* only when this key exists (e.g. \Wow6432Node\Microsoft) */
  unsigned build_from;          /* only on Windows builds >= build_from (0: any) */
  unsigned build_below;         /* only on Windows builds < build_below (0: any); a hive whose
                                 * build is unknown gets a warning instead of the value */
} tp_setting;

typedef struct tp_settings_s {
  tp_setting *items;
  size_t n;
  bool restore;                 /* an undo record: a value of another type is put back, not
                                 * news (no "replacing it" warning) */
} tp_settings;

void tp_settings_free (tp_settings *s);   /* what s holds */

/* Add the statements of a .reg file (already parsed). -1 with one line
 * "FILE:LINE: reason" in why: a root other than HKLM\SOFTWARE or
 * HKLM\SYSTEM, or a statement that contradicts an earlier one (the same
 * value set differently, a key deleted and written). */
int tp_settings_add_reg (tp_settings *s, const tp_reg_file *f, char *why, size_t whylen);

/* Read, parse and add a .reg file. */
int tp_settings_add_file (tp_settings *s, const char *path, char *why, size_t whylen);

struct tp_profile;
struct tp_options_s;

/* Add a profile's rules (profiles.h), its base profile's first. The
 * options say which services start at the next boot (none with
 * no_service) and whether SystemDefaultTlsVersions goes under every
 * .NET version key. A rule repeated by another profile is added once;
 * one that contradicts an earlier setting fails as tp_settings_add_reg
 * does, naming both. */
int tp_settings_add_profile (tp_settings *s, const struct tp_profile *p,
                             const struct tp_options_s *opt, char *why, size_t whylen);

/* True when a setting is for hives of this kind. */
bool tp_settings_touch (const tp_settings *s, tp_hive_kind kind);

/* True when the SYSTEM hive has something to do: a service to start,
 * or settings for it (--no-service alone leaves it alone). */
bool tp_options_want_system (const struct tp_options_s *opt);

/* Plan every setting of hv's kind into res. 0, or -1 (in res): a key on
 * the way is damaged, or a key to delete is the hive's root. */
int tp_settings_plan (const tp_settings *s, tp_hive *hv, tp_result *res);

#endif
