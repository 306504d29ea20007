/* tlspatch: what the user asked for, shared by every module. */
#ifndef TLSPATCH_OPTIONS_H
#define TLSPATCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "tlspatch/result.h"      /* tp_mode */

typedef struct tp_options_s {
  tp_mode mode;
  bool dry_run;               /* apply/revert: plan and report, write nothing */
  bool backup;                /* keep the original hive beside it */
  bool system_default_tls;    /* also SystemDefaultTlsVersions=1 */
  bool no_service;            /* leave the SYSTEM hive alone */
  bool no_recover;            /* refuse dirty hives instead of replaying their logs */
  const char **services;      /* service names (default: obengine) */
  size_t n_services;
  const char *undo_path;      /* apply: where to write the undo record; revert: what to read */
  /* apply/check: the settings to make true (settings.h: profiles and
   * .reg files); NULL for the default profile, kb4033999. */
  const struct tp_settings_s *settings;
} tp_options;

/* Fill with the defaults (apply, service obengine). */
void tp_options_init (tp_options *opt);

/* True when the run may write (apply, revert, recover; not a dry run).
 * Whether a hive is written also needs a plan that changes something:
 * tp_plan_writes. */
bool tp_options_write (const tp_options *opt);

#endif
