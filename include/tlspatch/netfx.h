/* tlspatch: .NET Framework in a SOFTWARE hive: version keys and the
 * installed release (the rules themselves are in profiles.c). */
#ifndef TLSPATCH_NETFX_H
#define TLSPATCH_NETFX_H

#include <stdbool.h>

#include "tlspatch/hive.h"
#include "tlspatch/options.h"

/* The two .NETFramework branches, from the SOFTWARE hive's root. */
#define TP_NETFX_64 "\\Microsoft\\.NETFramework"
#define TP_NETFX_32 "\\Wow6432Node\\Microsoft\\.NETFramework"

/* KB 4033999 cause 1: the minimum Release of .NET Framework 4.6. */
#define TP_NETFX_MIN_RELEASE 393295L

/* True for a direct child of .NETFramework that names a runtime version:
 * ^v[0-9]+(\.[0-9]+)+$, ASCII case-insensitive ("v4.0.30319", not
 * "v2.0 SP1" or "policy"). */
bool tp_netfx_is_version_key (const char *name);

/* "4.7.2" for a Release number, NULL below 4.5. */
const char *tp_netfx_version_name (long release);

/* The version keys of a .NETFramework branch (a path from the hive
 * root), as the hive spells them, in its order: *names (malloc'd, each
 * name too), none when the branch is absent. 0, or -1 when it cannot be
 * read (recorded in res). */
int tp_netfx_version_keys (tp_hive *hv, const char *branch, char ***names, size_t *n,
                           tp_result *res);

/* KB 4033999's checks: read the installed .NET 4.x Release (a warning
 * below 4.6, res->dotnet_too_old) and warn when there is no
 * .NETFramework key or no version key to set. -1 on error. */
int tp_netfx_check (tp_hive *hv, tp_result *res);

#endif
