/* tlspatch: libFuzzer target for the .reg file parser.
 *
 * The input is a .reg file in any encoding. Whatever parses must hold the
 * parser's promises (an error names the file; values have a type, their
 * bytes and a name), and must come back identical when written out again
 * as a version 5 file (every value as hex(N):...) and parsed once more. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlspatch/regfile.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (int cond, const char *what)
{
  if (!cond) {
    fprintf (stderr, "fuzz-regfile: %s\n", what);
    abort ();
  }
}

static void
check_entry (const tp_reg_entry *e)
{
  check (e->key && e->key[0] && e->line > 0, "entry without a key or a line");
  check (e->key[strlen (e->key) - 1] != '\\', "key ends in a backslash");
  if (e->op == TP_REG_KEY || e->op == TP_REG_DELETE_KEY) {
    check (!e->name && !e->value.present && !e->value.data, "key statement with a value");
    return;
  }
  check (e->name != NULL, "value without a name");
  check (e->value.present == (e->op == TP_REG_SET_VALUE), "value presence");
  check (e->value.len <= TP_REG_MAX_DATA, "value over 1 MiB");
  check (e->value.len == 0 || e->value.data, "value bytes missing");
}

static void
put_name (FILE *fp, const char *name)
{
  if (!name[0]) {
    fputc ('@', fp);
    return;
  }
  fputc ('"', fp);
  for (const char *p = name; *p; p++) {
    if (*p == '"' || *p == '\\')
      fputc ('\\', fp);
    fputc (*p, fp);
  }
  fputc ('"', fp);
}

static void
write_entry (FILE *fp, const tp_reg_entry *e)
{
  if (e->op == TP_REG_KEY || e->op == TP_REG_DELETE_KEY) {
    fprintf (fp, "[%s%s]\n", e->op == TP_REG_DELETE_KEY ? "-" : "", e->key);
    return;
  }
  put_name (fp, e->name);
  if (e->op == TP_REG_DELETE_VALUE) {
    fputs ("=-\n", fp);
    return;
  }
  fprintf (fp, "=hex(%x):", (unsigned) e->value.type);
  for (size_t i = 0; i < e->value.len; i++)
    fprintf (fp, i == 0 ? "%02x" : (i % 16 ? ",%02x" : ",\\\n  %02x"), e->value.data[i]);
  fputc ('\n', fp);
}

static int
same_entry (const tp_reg_entry *a, const tp_reg_entry *b)
{
  return a->op == b->op && strcmp (a->key, b->key) == 0 &&
         (a->name ? b->name && strcmp (a->name, b->name) == 0 : !b->name) &&
         a->value.present == b->value.present && a->value.type == b->value.type &&
         a->value.len == b->value.len &&
         (a->value.len == 0 || memcmp (a->value.data, b->value.data, a->value.len) == 0);
}

static void
roundtrip (const tp_reg_file *f)
{
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&text, &len);
  check (fp != NULL, "open_memstream");
  fputs ("Windows Registry Editor Version 5.00\n\n", fp);
  for (size_t i = 0; i < f->n; i++)
    write_entry (fp, &f->entries[i]);
  fclose (fp);

  tp_reg_file g;
  char why[512];
  int rc = tp_reg_parse ("again.reg", (const unsigned char *) text, len, &g, why, sizeof why);
  if (rc != 0)
    fprintf (stderr, "fuzz-regfile: written back, refused: %s\n", why);
  check (rc == 0 && g.n == f->n && g.version == 5, "written back, parses differently");
  for (size_t i = 0; i < f->n; i++)
    check (same_entry (&f->entries[i], &g.entries[i]), "written back, an entry differs");
  tp_reg_file_free (&g);
  free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  tp_reg_file f;
  char why[512];
  if (tp_reg_parse ("in.reg", data, size, &f, why, sizeof why) != 0) {
    check (strncmp (why, "in.reg:", 7) == 0 && f.n == 0 && !f.entries && !f.path,
           "an error without the file name, or with entries kept");
    for (const char *p = why; *p; p++)
      check ((unsigned char) *p >= 0x20 && *p != 0x7F, "a control character in an error");
    return 0;
  }
  check (f.version == 4 || f.version == 5, "version");
  check (f.path && strcmp (f.path, "in.reg") == 0, "path");
  for (size_t i = 0; i < f.n; i++)
    check_entry (&f.entries[i]);
  roundtrip (&f);
  tp_reg_file_free (&f);
  return 0;
}
