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

typedef struct {
  tp_reg_op op;
  tp_hive_kind hive;
  bool boot_control_sets;       /* key is under CurrentControlSet */
  char *key;                    /* from the hive root ("\Microsoft\X"), or from the control set */
  char *name;                   /* values: "" is the default value */
  tp_value value;               /* TP_REG_SET_VALUE */
  size_t position;              /* TP_REG_SET_VALUE: where a new value goes (tp_reg_entry) */
  char *where;                  /* "FILE:LINE", for messages */
} tp_setting;

typedef struct tp_settings_s {
  tp_setting *items;
  size_t n;
} tp_settings;

void tp_settings_free (tp_settings *s);   /* what s holds */

/* Add the statements of a .reg file (already parsed). -1 with one line
 * "FILE:LINE: reason" in why: a root other than HKLM\SOFTWARE or
 * HKLM\SYSTEM, or a statement that contradicts an earlier one (the same
 * value set differently, a key deleted and written). */
int tp_settings_add_reg (tp_settings *s, const tp_reg_file *f, char *why, size_t whylen);

/* Read, parse and add a .reg file. */
int tp_settings_add_file (tp_settings *s, const char *path, char *why, size_t whylen);

/* Plan every setting of hv's kind into res. 0, or -1 (in res): a key on
 * the way is damaged, or a key to delete is the hive's root. */
int tp_settings_plan (const tp_settings *s, tp_hive *hv, tp_result *res);

#endif
