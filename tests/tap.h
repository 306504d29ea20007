/* tlspatch tests: the few TAP helpers the C test programs share. */
#ifndef TLSPATCH_TESTS_TAP_H
#define TLSPATCH_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int test_no;
static int failures;

static void ok (int cond, const char *fmt, ...) __attribute__((format (printf, 2, 3)));

static void
ok (int cond, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  printf ("%sok %d - ", cond ? "" : "not ", ++test_no);
  vprintf (fmt, ap);
  printf ("\n");
  va_end (ap);
  if (!cond)
    failures++;
}

static inline void
skip (int n, const char *reason)
{
  for (int i = 0; i < n; i++)
    printf ("ok %d # SKIP %s\n", ++test_no, reason);
}

#endif
