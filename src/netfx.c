/* tlspatch: .NET Framework in a SOFTWARE hive.
 *
 * KB 4033999: "Under each of these registry keys, locate the subkeys
 * that indicate a version" and add SchUseStrongCrypto=1, for the 64-bit
 * and the 32-bit (Wow6432Node) view. Which keys those are is decided
 * here; the values are rules of the profiles (profiles.c). The version
 * pattern: v2.0.50727 and V4.0.30319 yes, "v2.0 SP1" and policy no.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/netfx.h"

#define NDP_V4_FULL "\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"

bool
tp_netfx_is_version_key (const char *name)
{
  if (name[0] != 'v' && name[0] != 'V')
    return false;
  const char *p = name + 1;
  int groups = 0;
  for (;;) {
    if (*p < '0' || *p > '9')
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
    groups++;
    if (*p == '\0')
      return groups >= 2;
    if (*p != '.')
      return false;
    p++;
  }
}

const char *
tp_netfx_version_name (long release)
{
  static const struct { long min; const char *name; } versions[] = {
    { 533320, "4.8.1" }, { 528040, "4.8" }, { 461808, "4.7.2" },
    { 461308, "4.7.1" }, { 460798, "4.7" }, { 394802, "4.6.2" },
    { 394254, "4.6.1" }, { 393295, "4.6" }, { 379893, "4.5.2" },
    { 378675, "4.5.1" }, { 378389, "4.5" },
  };
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
    if (release >= versions[i].min)
      return versions[i].name;
  return NULL;
}

static int
read_release (tp_hive *hv, tp_result *res)
{
  res->dotnet_checked = true;
  size_t full;
  uint32_t release;
  tp_lookup got = tp_hive_find_key (hv, NDP_V4_FULL, &full, NULL, res);
  if (got == TP_DAMAGED)
    return -1;
  if (got == TP_FOUND)
    got = tp_hive_get_dword (hv, full, "Release", &release);
  if (got == TP_DAMAGED)
    return tp_result_fail (res, "the .NET Release value under %s is damaged", NDP_V4_FULL);
  if (got == TP_FOUND)
    res->dotnet_release = (long) release;

  if (res->dotnet_release < TP_NETFX_MIN_RELEASE) {
    res->dotnet_too_old = true;
    const char *name = tp_netfx_version_name (res->dotnet_release);
    if (name)
      tp_result_warn (res, ".NET Framework %s (Release %ld) is installed; KB 4033999 needs "
                      "4.6 or later: install it, the registry change alone is not enough",
                      name, res->dotnet_release);
    else
      tp_result_warn (res, ".NET Framework 4.6 or later is not installed (no Release under "
                      "%s); KB 4033999 needs it", NDP_V4_FULL);
  }
  return 0;
}

int
tp_netfx_version_keys (tp_hive *hv, const char *branch, char ***names, size_t *n_names,
                       tp_result *res)
{
  size_t n;
  if (tp_hive_subkey_names (hv, branch, names, &n, res) < 0)
    return -1;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (tp_netfx_is_version_key ((*names)[i]))
      (*names)[kept++] = (*names)[i];
    else
      free ((*names)[i]);
  *n_names = kept;
  return 0;
}

/* The number of version keys under branch, or -1. */
static long
count_versions (tp_hive *hv, const char *branch, tp_result *res)
{
  char **names;
  size_t n;
  if (tp_netfx_version_keys (hv, branch, &names, &n, res) < 0)
    return -1;
  tp_hive_names_free (names, n);
  return (long) n;
}

int
tp_netfx_check (tp_hive *hv, tp_result *res)
{
  if (read_release (hv, res) < 0)
    return -1;
  size_t node;
  tp_lookup got = tp_hive_find_key (hv, TP_NETFX_64, &node, NULL, res);
  if (got == TP_DAMAGED)
    return -1;
  if (got == TP_ABSENT)
    tp_result_warn (res, "no %s key: .NET Framework does not seem to be installed", TP_NETFX_64);
  /* 32-bit Windows has no Wow6432Node: that is normal, not a warning. */
  long n64 = count_versions (hv, TP_NETFX_64, res), n32 = n64 < 0 ? -1 : count_versions (hv, TP_NETFX_32, res);
  if (n32 < 0)
    return -1;
  if (n64 + n32 == 0)
    tp_result_warn (res, "no .NET version keys (v<major>.<minor>...) under %s or %s: "
                    "nothing to set", TP_NETFX_64, TP_NETFX_32);
  return 0;
}
