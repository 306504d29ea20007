/* tlspatch: libFuzzer target for the .reg file parser.
 *
 * The input is a .reg file in any encoding. Whatever parses must hold the
 * parser's promises (an error names the file; values have a type, their
 * bytes and a name), and must come back identical when written out again
 * as a version 5 file (every value as hex(N):...) and parsed once more;
 * a UTF-8 file must parse the same, lines included, in UTF-16LE. */
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
write_entry (FILE *fp, const tp_reg_entry *e)
{
  if (e->op == TP_REG_KEY || e->op == TP_REG_DELETE_KEY) {
    fprintf (fp, "[%s%s]\n", e->op == TP_REG_DELETE_KEY ? "-" : "", e->key);
    return;
  }
  tp_reg_put_value (fp, e->name, &e->value);
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

/* Valid UTF-8 (it parsed) as regedit writes it: a BOM and UTF-16LE. */
static unsigned char *
to_utf16 (const uint8_t *s, size_t n, size_t *len)
{
  unsigned char *out = malloc (2 * n + 2), *q = out;
  check (out != NULL, "out of memory");
  *q++ = 0xFF, *q++ = 0xFE;
  for (size_t i = 0; i < n;) {
    uint32_t cp = s[i];
    size_t k = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
    if (k > 1)
      cp &= 0x3Fu >> (k - 1);
    for (size_t j = 1; j < k && i + j < n; j++)
      cp = cp << 6 | (s[i + j] & 0x3F);
    i += k;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      uint32_t hi = 0xD800 + (cp >> 10);
      *q++ = (unsigned char) hi, *q++ = (unsigned char) (hi >> 8);
      cp = 0xDC00 + (cp & 0x3FF);
    }
    *q++ = (unsigned char) cp, *q++ = (unsigned char) (cp >> 8);
  }
  *len = (size_t) (q - out);
  return out;
}

/* A UTF-8 file (no BOM, version 5) means the same in UTF-16LE, lines too. */
static void
same_in_utf16 (const uint8_t *data, size_t size, const tp_reg_file *f)
{
  if (f->version != 5 || (size >= 2 && (data[0] == 0xFF || data[0] == 0xFE || data[0] == 0xEF)))
    return;
  size_t len;
  unsigned char *u = to_utf16 (data, size, &len);
  tp_reg_file g;
  char why[512];
  int rc = tp_reg_parse ("in.reg", u, len, &g, why, sizeof why);
  if (rc != 0)
    fprintf (stderr, "fuzz-regfile: in UTF-16LE, refused: %s\n", why);
  check (rc == 0 && g.n == f->n, "in UTF-16LE, parses differently");
  for (size_t i = 0; i < f->n; i++)
    check (same_entry (&f->entries[i], &g.entries[i]) &&
           f->entries[i].line == g.entries[i].line, "in UTF-16LE, an entry differs");
  tp_reg_file_free (&g);
  free (u);
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
  same_in_utf16 (data, size, &f);
  tp_reg_file_free (&f);
  return 0;
}
