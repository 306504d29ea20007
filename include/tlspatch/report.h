/* tlspatch: results for people (a table) and for pipelines (JSON Lines). */
#ifndef TLSPATCH_REPORT_H
#define TLSPATCH_REPORT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "tlspatch/result.h"

/* One JSON object for one hive: target, hive, status, changes, warnings,
 * error, dotnet, dry_run, backup. The caller owns the object. */
json_object *tp_report_json (const tp_result *res);

/* One JSON Lines record. */
void tp_report_print_json (FILE *fp, const tp_result *res);

/* The readable table: a header, then one row per hive, with its
 * warnings (and, when verbose, its changes) indented below. */
void tp_report_print_header (FILE *fp);
void tp_report_print_row (FILE *fp, const tp_result *res, int verbose);

/* The indented lines of a row, one per item: every change (or, with
 * values false, the key changes only), in the mode's words ("would be
 * created" in check and dry runs); the warnings ("warning: ..."); what
 * makes a check noncompliant (the .NET line when it is too old, then
 * every change apply would make). */
void tp_report_print_changes (FILE *fp, const tp_result *res, bool values);
void tp_report_print_warnings (FILE *fp, const tp_result *res);
void tp_report_print_verdict (FILE *fp, const tp_result *res);

/* A value for people: 1, "text", or hex bytes with the type name. */
char *tp_report_value_string (const tp_value *v);

#endif
