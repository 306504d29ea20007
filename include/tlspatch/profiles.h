/* tlspatch: profiles, named sets of rules kept as data.
 *
 * A profile is a table of rules: values to make true (in .reg spelling,
 * so an admin can read them), with the conditions under which they hold
 * (a Windows build range, a key that must exist), and the checks that
 * come with them (a service to start, .NET 4.6, an update installed).
 * tp_settings_add_profile (settings.h) turns a table into settings; one
 * planner makes them true. Adding a profile is adding a table here.
 *
 *   kb4033999  KB 4033999: SchUseStrongCrypto=1 under every .NET version
 *              key, obengine started at the next boot (the default)
 *   pci        kb4033999, and TLS 1.2 only: SCHANNEL protocols, .NET
 *              SystemDefaultTlsVersions, WinHTTP below build 9600
 */
#ifndef TLSPATCH_PROFILES_H
#define TLSPATCH_PROFILES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tlspatch/settings.h"

enum {
  TP_RULE_EVERY_VERSION_KEY = 1,  /* key is a .NETFramework branch: each version key */
  TP_RULE_EXISTING_KEY = 2,       /* only where the key exists (never created) */
  TP_RULE_OPTION_SDT = 4,         /* only with tp_options.system_default_tls */
};

typedef struct {
  tp_setting_kind kind;
  const char *key;              /* HKEY_LOCAL_MACHINE\SOFTWARE\... or \SYSTEM\CurrentControlSet\...;
                                 * SERVICE_START: NULL (the options' services) */
  const char *name;             /* the value; UPDATE_CHECK: the package name's start */
  uint32_t dword;               /* REG: the value is this REG_DWORD */
  unsigned flags;               /* TP_RULE_* */
  const char *needs_key;        /* only when this key exists (from the hive root) */
  unsigned build_from, build_below;   /* only on builds in [from, below); 0: no bound */
  const char *text;             /* REG: why (a comment for people); NOTE, UPDATE_CHECK:
                                 * what to say */
} tp_rule;

typedef struct tp_profile {
  const char *name;
  const char *brief;            /* a few words, for --help */
  const char *summary;          /* one line */
  const struct tp_profile *base;  /* everything it does too, or NULL */
  const tp_rule *rules;
  size_t n_rules;
} tp_profile;

/* The profile called `name`, or NULL. */
const tp_profile *tp_profile_find (const char *name);

/* Every profile, the default first; *n their count. */
const tp_profile *const *tp_profiles (size_t *n);

/* The default profile (kb4033999). */
const tp_profile *tp_profile_default (void);

/* Write p as a Windows admin reads it: .reg sections, each group of
 * rules under a comment saying when it holds, its base's rules first. */
void tp_profile_write (FILE *fp, const tp_profile *p);

#endif
