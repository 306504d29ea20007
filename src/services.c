/* tlspatch: control sets and services (SYSTEM hive).
 *
 * KB 4033999 restarts obengine after the change. Offline, the only
 * registry way to have a service start at the next boot is Start=2
 * (automatic) in the control sets Windows will boot: \Select's Default,
 * and Current when it differs. LastKnownGood is left alone, so it stays
 * a way back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tlspatch/bytes.h"
#include "tlspatch/services.h"

int
tp_control_sets_to_boot (tp_hive *hv, char names[2][16], tp_result *res)
{
  size_t select;
  tp_lookup got = tp_hive_find_key (hv, "\\Select", &select, NULL, res);
  if (got == TP_DAMAGED)
    return -1;
  if (got == TP_ABSENT)
    return tp_result_fail (res, "no \\Select key: cannot tell which control set Windows boots");

  uint32_t def, cur;
  got = tp_hive_get_dword (hv, select, "Default", &def);
  if (got == TP_DAMAGED)
    return tp_result_fail (res, "\\Select's Default value is damaged: cannot tell which "
                           "control set Windows boots");
  if (got == TP_ABSENT)
    return tp_result_fail (res, "\\Select has no DWORD Default: cannot tell which control set "
                           "Windows boots");
  got = tp_hive_get_dword (hv, select, "Current", &cur);
  if (got == TP_DAMAGED)
    return tp_result_fail (res, "\\Select's Current value is damaged");
  if (got == TP_ABSENT)
    cur = def;

  uint32_t sets[2] = { def, cur };
  int n = def == cur ? 1 : 2;
  for (int i = 0; i < n; i++) {
    if (sets[i] == 0 || sets[i] > 999)
      return tp_result_fail (res, "\\Select names control set %u, which cannot exist", sets[i]);
    snprintf (names[i], sizeof names[i], "ControlSet%03u", sets[i]);
    char path[32];
    size_t set;
    snprintf (path, sizeof path, "\\%s", names[i]);
    got = tp_hive_find_key (hv, path, &set, NULL, res);
    if (got == TP_DAMAGED)
      return -1;
    if (got == TP_ABSENT)
      return tp_result_fail (res, "\\Select names %s, which does not exist", names[i]);
  }
  return n;
}

int
tp_service_plan_start (tp_hive *hv, const char *control_set, const char *service, tp_result *res)
{
  char *path = NULL, *stored = NULL;   /* stored: as the hive spells it */
  if (asprintf (&path, "\\%s\\Services\\%s", control_set, service) < 0)
    return tp_result_fail (res, "out of memory");
  size_t node;
  uint32_t start = 0;
  tp_value found = { 0 };       /* Start as stored: the evidence, whatever its type */
  tp_lookup got = tp_hive_find_key (hv, path, &node, &stored, res);
  tp_result scratch;            /* a damaged Start is named below, with its service */
  tp_result_init (&scratch, NULL);
  if (got == TP_FOUND && tp_hive_get_value (hv, node, "Start", &found, NULL, NULL, &scratch) != 0)
    got = TP_DAMAGED;
  else if (got == TP_FOUND && found.present && found.type == 4 && found.len == 4)
    start = tp_le32 (found.data);
  else if (got == TP_FOUND)
    got = TP_ABSENT;            /* no DWORD Start */
  else if (got == TP_ABSENT)
    tp_result_warn (res, "service %s is not installed in %s", service, control_set);
  int rc = 0;
  if (got == TP_DAMAGED)
    rc = res->error ? -1 : tp_result_fail (res, "the Start value of service %s in %s is "
                                           "damaged", service, control_set);
  unsigned char bytes[4];
  tp_value autostart = tp_value_dword (TP_SERVICE_START_AUTO, bytes);
  bool manual = got == TP_FOUND && start == TP_SERVICE_START_MANUAL;
  if (got != TP_DAMAGED && !manual)   /* nothing planned: the evidence all the same */
    rc = tp_result_add_audit (res, stored ? stored : path, "Start", &found, &autostart, false);
  if (got == TP_DAMAGED || rc < 0)
    ;
  else if (!stored)
    ;                           /* not installed: said above */
  else if (got == TP_ABSENT)
    tp_result_warn (res, "service %s in %s has no DWORD Start value; left alone",
                    service, control_set);
  else if (manual)
    rc = tp_hive_plan_value (hv, stored, "Start", &autostart, 0, res);
  else if (start == TP_SERVICE_START_AUTO)
    ;
  else if (start == TP_SERVICE_START_DISABLED)
    tp_result_warn (res, "service %s is disabled in %s; left disabled", service, control_set);
  else
    tp_result_warn (res, "service %s in %s has Start=%u (boot/system driver?); left alone",
                    service, control_set, start);
  tp_value_free (&found);
  tp_result_free (&scratch);
  free (path);
  free (stored);
  return rc;
}
