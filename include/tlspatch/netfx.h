/* tlspatch: the .NET rules of KB 4033999 (SOFTWARE hive). */
#ifndef TLSPATCH_NETFX_H
#define TLSPATCH_NETFX_H

#include <stdbool.h>

#include "tlspatch/hive.h"
#include "tlspatch/options.h"

/* KB 4033999 cause 1: the minimum Release of .NET Framework 4.6. */
#define TP_NETFX_MIN_RELEASE 393295L

/* True for a direct child of .NETFramework that names a runtime version:
 * ^v[0-9]+(\.[0-9]+)+$, ASCII case-insensitive ("v4.0.30319", not
 * "v2.0 SP1" or "policy"). */
bool tp_netfx_is_version_key (const char *name);

/* "4.7.2" for a Release number, NULL below 4.5. */
const char *tp_netfx_version_name (long release);

/* Plan SchUseStrongCrypto=1 (and SystemDefaultTlsVersions=1 when asked)
 * under every version key of both .NETFramework branches, and read the
 * installed .NET 4.x Release. Returns -1 on error (recorded in res). */
int tp_netfx_plan (tp_hive *hv, const tp_options *opt, tp_result *res);

#endif
