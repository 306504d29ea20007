/* tlspatch: the JUnit XML report (junit.h), built with libxml2.
 *
 * The elements and attributes are the ones Jenkins' JUnit schema and
 * GitLab's test report parser read:
 *   <testsuites name tests failures errors time>
 *     <testsuite name tests failures errors skipped time timestamp hostname>
 *       <testcase classname name>
 *         <failure message type>text</failure> | <error message type/>
 *         <system-out>text</system-out>
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/tree.h>
#include <libxml/xmlstring.h>

#include "tlspatch/junit.h"
#include "tlspatch/openfile.h"
#include "tlspatch/report.h"

struct tp_junit {
  char *path;           /* the report */
  char *tmp;            /* its temporary file, beside it (NULL once renamed) */
  char *dir;            /* the directory both are in */
  int fd;
  tp_mode mode;
  mode_t keep_mode;     /* the replaced report's permissions; -1: a new file's */
  xmlDocPtr doc;
  xmlNodePtr suites, suite;
  unsigned long tests, failures, errors;
  struct timespec start;
  time_t started;
};

/* Text that XML can hold: valid UTF-8 without control characters other
 * than tab and newline; anything else becomes '?'. malloc'd. */
static char *
xml_text (const char *s)
{
  size_t n = strlen (s);
  char *out = malloc (n + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    int len = (int) (n - i > 4 ? 4 : n - i);
    int c = xmlGetUTF8Char ((const xmlChar *) s + i, &len);
    bool ok = c >= 0 && (c >= 0x20 || c == '\t' || c == '\n') && c != 0xFFFE && c != 0xFFFF &&
              (c < 0xD800 || c > 0xDFFF) && c <= 0x10FFFF;   /* XML 1.0's Char */
    if (!ok) {
      out[o++] = '?';
      i++;
      continue;
    }
    memcpy (out + o, s + i, (size_t) len);
    o += (size_t) len;
    i += (size_t) len;
  }
  out[o] = 0;
  return out;
}

static int
set_attr (xmlNodePtr node, const char *name, const char *value)
{
  char *v = xml_text (value);
  xmlAttrPtr a = v ? xmlSetProp (node, BAD_CAST name, BAD_CAST v) : NULL;
  free (v);
  return a ? 0 : -1;
}

static int
set_count (xmlNodePtr node, const char *name, unsigned long n)
{
  char buf[32];
  snprintf (buf, sizeof buf, "%lu", n);
  return set_attr (node, name, buf);
}

/* A child element holding text (NULL or "": none). */
static xmlNodePtr
add_child (xmlNodePtr parent, const char *name, const char *text)
{
  xmlNodePtr node = xmlNewChild (parent, NULL, BAD_CAST name, NULL);
  if (!node || !text || !*text)
    return node;
  char *t = xml_text (text);
  xmlNodePtr content = t ? xmlNewText (BAD_CAST t) : NULL;
  free (t);
  if (!content || !xmlAddChild (node, content)) {
    xmlFreeNode (content);
    return NULL;
  }
  return node;
}

tp_junit *
tp_junit_open (const char *path, tp_mode mode, char *why, size_t len)
{
  struct stat st;
  bool exists = lstat (path, &st) == 0;
  if (exists && !S_ISREG (st.st_mode)) {
    snprintf (why, len, "%s: not a regular file: the JUnit report replaces a file or creates one", path);
    return NULL;
  }
  tp_junit *j = calloc (1, sizeof *j);
  if (j)
    j->fd = -1;
  char *copy = strdup (path), *base = strdup (path);
  if (!j || !copy || !base || !(j->path = strdup (path)) || !(j->dir = strdup (dirname (copy))) ||
      asprintf (&j->tmp, "%s/.%s.tlspatch-XXXXXX", j->dir, basename (base)) < 0) {
    snprintf (why, len, "out of memory");
    if (j)
      j->tmp = NULL;
    goto fail;
  }
  j->fd = mkostemp (j->tmp, O_CLOEXEC);   /* not inherited by qemu and its helpers */
  if (j->fd < 0) {
    snprintf (why, len, "%s: cannot write the JUnit report there: %s", path, strerror (errno));
    free (j->tmp);
    j->tmp = NULL;
    goto fail;
  }
  j->mode = mode;
  j->keep_mode = exists ? (st.st_mode & 07777) : (mode_t) -1;
  clock_gettime (CLOCK_MONOTONIC, &j->start);
  j->started = time (NULL);
  char name[64];
  snprintf (name, sizeof name, "tlspatch %s", tp_mode_name (mode));
  if (!(j->doc = xmlNewDoc (BAD_CAST "1.0")) ||
      !(j->suites = xmlNewDocNode (j->doc, NULL, BAD_CAST "testsuites", NULL)))
    goto oom;
  xmlDocSetRootElement (j->doc, j->suites);
  if (!(j->suite = add_child (j->suites, "testsuite", NULL)) ||
      set_attr (j->suites, "name", "tlspatch") || set_attr (j->suite, "name", name))
    goto oom;
  free (copy);
  free (base);
  return j;
 oom:
  snprintf (why, len, "out of memory");
 fail:
  free (copy);
  free (base);
  tp_junit_free (j);
  return NULL;
}

/* The case's name: the hive file, or the image and its root, with the
 * hive in parentheses. */
static char *
case_name (const tp_result *res)
{
  const char *hive = res->hive_label ? res->hive_label
                     : res->kind == TP_HIVE_UNKNOWN ? NULL : tp_hive_kind_name (res->kind);
  char *name = NULL;
  int rc;
  if (res->image)
    rc = asprintf (&name, "%s%s%s%s%s%s", res->image, res->root ? " " : "", res->root ? res->root : "",
                   hive ? " (" : "", hive ? hive : "", hive ? ")" : "");
  else
    rc = asprintf (&name, "%s%s%s%s", res->target ? res->target : "?", hive ? " (" : "",
                   hive ? hive : "", hive ? ")" : "");
  return rc < 0 ? NULL : name;
}

/* What a printer writes, as a string (NULL when out of memory). */
static char *
printed (void (*print) (FILE *, const tp_result *), const tp_result *res)
{
  char *buf = NULL;
  size_t size = 0;
  FILE *fp = open_memstream (&buf, &size);
  if (!fp)
    return NULL;
  print (fp, res);
  if (fclose (fp) != 0) {
    free (buf);
    return NULL;
  }
  return buf;
}

static void
print_out (FILE *fp, const tp_result *res)
{
  if (res->product)
    fprintf (fp, "    %s\n", res->product);
  if (res->status != TP_STATUS_NONCOMPLIANT && res->status != TP_STATUS_ERROR)
    tp_report_print_changes (fp, res, true);   /* an error's changes were not made */
  tp_report_print_warnings (fp, res);
}

static int
add_verdict (tp_junit *j, xmlNodePtr tc, const tp_result *res)
{
  if (res->status == TP_STATUS_ERROR) {
    j->errors++;
    xmlNodePtr e = add_child (tc, "error", NULL);
    return e && !set_attr (e, "message", res->error ? res->error : "failed") &&
           !set_attr (e, "type", "error") ? 0 : -1;
  }
  if (res->status != TP_STATUS_NONCOMPLIANT)
    return 0;
  j->failures++;
  char *message = NULL;
  int rc = asprintf (&message, "noncompliant: %zu change%s would be made%s", res->n_changes,
                     res->n_changes == 1 ? "" : "s",
                     res->dotnet_too_old ? "; .NET Framework 4.6 or later is not installed" : "");
  char *text = rc < 0 ? NULL : printed (tp_report_print_verdict, res);
  xmlNodePtr f = text ? add_child (tc, "failure", text) : NULL;
  rc = f && !set_attr (f, "message", message) && !set_attr (f, "type", "noncompliant") ? 0 : -1;
  free (message);
  free (text);
  return rc;
}

int
tp_junit_add (tp_junit *j, const tp_result *res)
{
  char classname[64];
  snprintf (classname, sizeof classname, "tlspatch.%s", tp_mode_name (j->mode));
  char *name = case_name (res);
  char *out = printed (print_out, res);
  xmlNodePtr tc = name && out ? add_child (j->suite, "testcase", NULL) : NULL;
  int rc = tc && !set_attr (tc, "classname", classname) && !set_attr (tc, "name", name) &&
           add_verdict (j, tc, res) == 0 && (!*out || add_child (tc, "system-out", out)) ? 0 : -1;
  j->tests++;
  free (name);
  free (out);
  return rc;
}

static int
set_totals (tp_junit *j)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  char seconds[32], stamp[32], host[256] = "localhost";
  snprintf (seconds, sizeof seconds, "%.3f", (double) (now.tv_sec - j->start.tv_sec) +
            (double) (now.tv_nsec - j->start.tv_nsec) / 1e9);
  struct tm tm;
  strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", gmtime_r (&j->started, &tm));
  if (gethostname (host, sizeof host - 1) != 0 || !host[0])
    strcpy (host, "localhost");
  host[sizeof host - 1] = 0;
  xmlNodePtr nodes[2] = { j->suites, j->suite };
  for (int i = 0; i < 2; i++)
    if (set_count (nodes[i], "tests", j->tests) || set_count (nodes[i], "failures", j->failures) ||
        set_count (nodes[i], "errors", j->errors) || set_attr (nodes[i], "time", seconds))
      return -1;
  return set_count (j->suite, "skipped", 0) || set_attr (j->suite, "timestamp", stamp) ||
         set_attr (j->suite, "hostname", host) ? -1 : 0;
}

int
tp_junit_commit (tp_junit *j, char *why, size_t len)
{
  xmlChar *xml = NULL;
  int size = 0;
  if (set_totals (j) == 0)
    xmlDocDumpFormatMemoryEnc (j->doc, &xml, &size, "UTF-8", 1);
  if (!xml) {
    snprintf (why, len, "%s: out of memory building the JUnit report", j->path);
    return -1;
  }
  mode_t mask = umask (0);
  umask (mask);
  int rc = tp_pwrite_all (j->fd, (const char *) xml, (size_t) size, 0);
  if (rc == 0)
    rc = fchmod (j->fd, j->keep_mode != (mode_t) -1 ? j->keep_mode : 0666 & ~mask);
  if (rc == 0)
    rc = fsync (j->fd);
  if (rc == 0)
    rc = rename (j->tmp, j->path);
  xmlFree (xml);
  if (rc != 0) {
    snprintf (why, len, "%s: cannot write the JUnit report: %s", j->path, strerror (errno));
    return -1;
  }
  free (j->tmp);
  j->tmp = NULL;
  int dir = open (j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync (dir);
    close (dir);
  }
  return 0;
}

void
tp_junit_free (tp_junit *j)
{
  if (!j)
    return;
  if (j->tmp) {
    unlink (j->tmp);
    free (j->tmp);
  }
  if (j->fd >= 0)
    close (j->fd);
  if (j->doc)
    xmlFreeDoc (j->doc);
  free (j->path);
  free (j->dir);
  free (j);
}
