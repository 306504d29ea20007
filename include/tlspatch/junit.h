/* tlspatch: a JUnit XML report, the test report CI servers (GitLab,
 * Jenkins) display.
 *
 * One <testcase> per result (a hive file, or a Windows installation of
 * an image), in one <testsuite> named after the mode:
 *   - a noncompliant check is a <failure>: its message says why, its
 *     text lists what apply would change;
 *   - a refused or failed target is an <error> with its one-line reason;
 *   - what changed (or would) and the warnings are the case's <system-out>.
 *
 * The report is written atomically: a temporary file beside FILE is
 * created when the report is opened (so a FILE that cannot be written
 * is known before any target is touched), filled, synced and renamed
 * over FILE at the end. FILE must be absent or a regular file.
 */
#ifndef TLSPATCH_JUNIT_H
#define TLSPATCH_JUNIT_H

#include <stddef.h>

#include "tlspatch/result.h"

typedef struct tp_junit tp_junit;

/* NULL with the reason in why (naming path) when the report cannot be
 * written there. */
tp_junit *tp_junit_open (const char *path, tp_mode mode, char *why, size_t len);

/* One test case for one result; 0, or -1 when out of memory. */
int tp_junit_add (tp_junit *j, const tp_result *res);

/* Write, sync and rename the report over its path; 0, or -1 with the
 * reason in why. */
int tp_junit_commit (tp_junit *j, char *why, size_t len);

/* Free the report; one not committed leaves no file behind. */
void tp_junit_free (tp_junit *j);

#endif
