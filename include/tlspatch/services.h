/* tlspatch: control sets and services (SYSTEM hive). */
#ifndef TLSPATCH_SERVICES_H
#define TLSPATCH_SERVICES_H

#include <stddef.h>

#include "tlspatch/hive.h"
#include "tlspatch/options.h"

#define TP_SERVICE_START_AUTO     2
#define TP_SERVICE_START_MANUAL   3
#define TP_SERVICE_START_DISABLED 4

/* The control sets Windows will boot, from \Select: Default, then
 * Current when it differs. Fills names[] ("ControlSet001") and returns
 * their count (1 or 2), or -1 with the reason in res. */
int tp_control_sets_to_boot (tp_hive *hv, char names[2][16], tp_result *res);

/* Plan Start 3 -> 2 for `service` in `control_set`, so it starts (with
 * the new settings) at the next boot; warn when it is not installed,
 * disabled, or has another Start. -1 on error (in res). */
int tp_service_plan_start (tp_hive *hv, const char *control_set, const char *service,
                           tp_result *res);

#endif
