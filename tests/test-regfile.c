/* tlspatch: tests of the .reg file parser (TAP output). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlspatch/regfile.h"
#include "tlspatch/undo.h"

#include "tap.h"

#define K "HKEY_LOCAL_MACHINE\\SOFTWARE\\Tlspatch"
#define V5 "Windows Registry Editor Version 5.00\n\n"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

/* UTF-8 text as regedit exports it: BOM, UTF-16LE, CRLF. The decoder
 * here is deliberately independent of the library's. */
static unsigned char *
utf16_crlf (const char *text, size_t *len)
{
  size_t n = strlen (text);
  unsigned char *out = malloc (4 * n + 2), *q = out;
  const unsigned char *s = (const unsigned char *) text;
  *q++ = 0xFF, *q++ = 0xFE;
  for (size_t i = 0; i < n;) {
    uint32_t cp = s[i];
    size_t k = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
    if (k > 1)
      cp &= 0x3F >> (k - 1);
    for (size_t j = 1; j < k; j++)
      cp = cp << 6 | (s[i + j] & 0x3F);
    i += k;
    if (cp == '\n')
      *q++ = '\r', *q++ = 0;
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

/* UTF-8 text to CRLF line ends, optionally after a UTF-8 BOM. */
static char *
crlf (const char *text, int bom)
{
  char *out = malloc (2 * strlen (text) + 4), *q = out;
  if (bom)
    memcpy (q, "\xEF\xBB\xBF", 3), q += 3;
  for (const char *p = text; *p; p++) {
    if (*p == '\n')
      *q++ = '\r';
    *q++ = *p;
  }
  *q = '\0';
  return out;
}

static int
parse (const char *text, tp_reg_file *f, char *why, size_t whylen)
{
  return tp_reg_parse ("t.reg", (const unsigned char *) text, strlen (text), f, why, whylen);
}

static int
entry_is (const tp_reg_file *f, size_t i, tp_reg_op op, const char *key, const char *name)
{
  if (i >= f->n)
    return 0;
  const tp_reg_entry *e = &f->entries[i];
  if (e->op != op || strcmp (e->key, key) != 0)
    return 0;
  if (!name)
    return e->name == NULL && !e->value.present;
  return e->name && strcmp (e->name, name) == 0;
}

static int
value_is (const tp_reg_file *f, size_t i, const char *name, uint32_t type, const void *bytes,
          size_t len)
{
  if (i >= f->n)
    return 0;
  const tp_reg_entry *e = &f->entries[i];
  return e->op == TP_REG_SET_VALUE && strcmp (e->name, name) == 0 && e->value.present &&
         e->value.type == type && e->value.len == len &&
         (len == 0 || memcmp (e->value.data, bytes, len) == 0);
}

/* `text` (UTF-8) must fail with "t.reg:LINE: ...WHAT...". */
static void
expect_error_bytes (const void *buf, size_t len, unsigned line, const char *what,
                    const char *label)
{
  char why[512] = "", prefix[32];
  tp_reg_file f;
  memset (&f, 0xAA, sizeof f);
  int rc = tp_reg_parse ("t.reg", buf, len, &f, why, sizeof why);
  snprintf (prefix, sizeof prefix, "t.reg:%u: ", line);
  ok (rc == -1 && strncmp (why, prefix, strlen (prefix)) == 0 && strstr (why, what) &&
      f.n == 0 && f.entries == NULL && f.path == NULL,
      "%s: %s", label, why);
  tp_reg_file_free (&f);
}

static void
expect_error (const char *text, unsigned line, const char *what, const char *label)
{
  expect_error_bytes (text, strlen (text), line, what, label);
}

/* ------------------------------------------------------------------ */
/* Accepted syntax                                                    */

static const char all_syntax[] =
  V5
  "; a comment\n"
  "   ; an indented comment\n"
  "\n"
  "[" K "\\A]\n"                                     /* line 6 */
  "@=\"d\"\n"
  "\"Sz\"=\"ab\"\n"
  "\"Esc \\\"q\\\" \\\\\"=\"x\\\\y \\\"z\\\"\"\n"
  "\"Dw\"=dword:0000000A\n"                         /* line 10 */
  "\"Dw1\"=dword:f\n"
  "\"Bin\"=hex:01,ff,7F\n"
  "\"Exp\"=hex(2):41,00,00,00\n"
  "\"Multi\"=hex(7):61,00,00,00,\\\n"               /* line 14 */
  "  62,00,00,00,\\   \n"
  "  00,00\n"
  "\"Q\"=hex(b):01,02,03,04,05,06,07,08\n"
  "\"None\"=hex(0):\n"
  "\"Empty\"=hex:\n"
  "\"Odd\"=hex(FFFF0000):1\n"                       /* line 20 */
  "\"Del\"=-\n"
  "\"Grüße 😀\"=\"Grüße 😀\"\n"
  "\n"
  "[-" K "\\Old\\\\]   \n"
  "[" K "\\Odd]Name]\t\n"                           /* line 25 */
  "\t\"Indented\" = dword:1\n"
  "\"Spaced\"=hex: 01 , 02 ,\\\n"
  "\t03\n"
  "\"Start\"=hex:\\\n"
  "  04\n"                                          /* line 30 */
  "\"Trailing comma\"=hex:05,\n";

static void
check_all_syntax (const tp_reg_file *f, const char *label)
{
  static const unsigned char sz_ab[] = { 'a', 0, 'b', 0, 0, 0 };
  static const unsigned char sz_esc[] = { 'x', 0, '\\', 0, 'y', 0, ' ', 0, '"', 0, 'z', 0,
                                          '"', 0, 0, 0 };
  static const unsigned char dw[] = { 10, 0, 0, 0 }, dw1[] = { 15, 0, 0, 0 };
  static const unsigned char bin[] = { 1, 0xff, 0x7f }, exp[] = { 0x41, 0, 0, 0 };
  static const unsigned char multi[] = { 0x61, 0, 0, 0, 0x62, 0, 0, 0, 0, 0 };
  static const unsigned char q[] = { 1, 2, 3, 4, 5, 6, 7, 8 }, one[] = { 1 };
  static const unsigned char gruesse[] = { 'G', 0, 'r', 0, 0xFC, 0, 0xDF, 0, 'e', 0, ' ', 0,
                                           0x3D, 0xD8, 0x00, 0xDE, 0, 0 };
  static const unsigned char d1[] = { 1, 0, 0, 0 }, spaced[] = { 1, 2, 3 };
  static const unsigned char four[] = { 4 }, five[] = { 5 };
  static const unsigned char sz_d[] = { 'd', 0, 0, 0 };

  ok (f->version == 5 && f->n == 25 && strcmp (f->path, "t.reg") == 0,
      "%s: version 5, 25 statements (%zu)", label, f->n);
  ok (entry_is (f, 0, TP_REG_KEY, K "\\A", NULL) && f->entries[0].line == 6,
      "%s: [KEY] on line 6", label);
  ok (value_is (f, 1, "", 1, sz_d, sizeof sz_d), "%s: @ is the default value", label);
  ok (value_is (f, 2, "Sz", 1, sz_ab, 6), "%s: \"ab\" is 6 bytes of REG_SZ", label);
  ok (value_is (f, 3, "Esc \"q\" \\", 1, sz_esc, sizeof sz_esc),
      "%s: \\\\ and \\\" in names and strings", label);
  ok (value_is (f, 4, "Dw", 4, dw, 4) && f->entries[4].line == 10,
      "%s: dword, upper case hex, line 10", label);
  ok (value_is (f, 5, "Dw1", 4, dw1, 4), "%s: dword of one digit", label);
  ok (value_is (f, 6, "Bin", 3, bin, 3), "%s: hex: is REG_BINARY", label);
  ok (value_is (f, 7, "Exp", 2, exp, 4), "%s: hex(2) bytes kept in version 5", label);
  ok (value_is (f, 8, "Multi", 7, multi, sizeof multi) && f->entries[8].line == 14,
      "%s: hex(7) over three lines, starts on line 14", label);
  ok (value_is (f, 9, "Q", 11, q, 8), "%s: hex(b) is a QWORD", label);
  ok (value_is (f, 10, "None", 0, NULL, 0), "%s: hex(0): is zero bytes of REG_NONE", label);
  ok (value_is (f, 11, "Empty", 3, NULL, 0), "%s: hex: is zero bytes", label);
  ok (value_is (f, 12, "Odd", 0xFFFF0000u, one, 1), "%s: hex(FFFF0000), one-digit byte", label);
  ok (entry_is (f, 13, TP_REG_DELETE_VALUE, K "\\A", "Del") && !f->entries[13].value.present,
      "%s: \"Del\"=- deletes", label);
  ok (value_is (f, 14, "Grüße 😀", 1, gruesse, sizeof gruesse),
      "%s: non-ASCII name and string (surrogate pair)", label);
  ok (entry_is (f, 15, TP_REG_DELETE_KEY, K "\\Old", NULL) && f->entries[15].line == 24,
      "%s: [-KEY\\\\] with trailing blanks", label);
  ok (entry_is (f, 16, TP_REG_KEY, K "\\Odd]Name", NULL),
      "%s: the key ends at the last ']'", label);
  ok (value_is (f, 17, "Indented", 4, d1, 4) && strcmp (f->entries[17].key, K "\\Odd]Name") == 0,
      "%s: indented value, blanks around '=', in the last key", label);
  ok (value_is (f, 18, "Spaced", 3, spaced, 3), "%s: blanks in a hex list", label);
  ok (value_is (f, 19, "Start", 3, four, 1), "%s: continuation right after hex:", label);
  ok (value_is (f, 20, "Trailing comma", 3, five, 1) && f->entries[20].line == 31,
      "%s: a trailing comma, line 31", label);
}

/* The tail of all_syntax, checked here to keep check_all_syntax short. */
static const char tail_syntax[] =
  "[" K "\\B\\\\\\]\n"
  "\"x\"=\"\"\n"
  "[" K "\\B]\n"
  "\"x\"=-\n";

static void
check_tail (const tp_reg_file *f, const char *label)
{
  static const unsigned char empty[] = { 0, 0 };
  ok (entry_is (f, 21, TP_REG_KEY, K "\\B", NULL) && value_is (f, 22, "x", 1, empty, 2) &&
      entry_is (f, 23, TP_REG_KEY, K "\\B", NULL) &&
      entry_is (f, 24, TP_REG_DELETE_VALUE, K "\\B", "x"),
      "%s: trailing backslashes removed, \"\" is a NUL, statements in order", label);
}

static void
test_encodings (void)
{
  size_t n = strlen (all_syntax) + strlen (tail_syntax);
  char *text = malloc (n + 1);
  snprintf (text, n + 1, "%s%s", all_syntax, tail_syntax);
  char why[512] = "";
  tp_reg_file f;

  struct { const char *label; unsigned char *buf; size_t len; } in[4];
  char *c0 = crlf (text, 0), *c1 = crlf (text, 1);
  in[0].label = "UTF-8", in[0].buf = (unsigned char *) strdup (text), in[0].len = n;
  in[1].label = "UTF-8 CRLF", in[1].buf = (unsigned char *) c0, in[1].len = strlen (c0);
  in[2].label = "UTF-8 BOM CRLF", in[2].buf = (unsigned char *) c1, in[2].len = strlen (c1);
  in[3].label = "UTF-16LE", in[3].buf = utf16_crlf (text, &in[3].len);
  for (int i = 0; i < 4; i++) {
    int rc = tp_reg_parse ("t.reg", in[i].buf, in[i].len, &f, why, sizeof why);
    ok (rc == 0, "%s parses: %s", in[i].label, rc ? why : "");
    check_all_syntax (&f, in[i].label);
    check_tail (&f, in[i].label);
    tp_reg_file_free (&f);
    free (in[i].buf);
  }
  ok (f.n == 0 && f.entries == NULL && f.path == NULL, "tp_reg_file_free empties the file");
  tp_reg_file_free (NULL);
  free (text);
}

static void
test_regedit4 (void)
{
  /* Windows-1252: e9 is é, 80 is €, 81 (undefined) stays U+0081. */
  static const char text[] =
    "\r\nREGEDIT4\r\n\r\n[" K "\\Caf\xe9]\r\n"
    "\"Caf\xe9\"=\"\xe9\x80\x81\"\r\n"
    "\"Exp\"=hex(2):25,e9,80,00\r\n"
    "\"Multi\"=hex(7):61,00,00\r\n"
    "\"Bin\"=hex:e9,80\r\n"
    "\"Sz as hex\"=hex(1):e9,00\r\n";
  static const unsigned char sz[] = { 0xE9, 0, 0xAC, 0x20, 0x81, 0, 0, 0 };
  static const unsigned char exp[] = { 0x25, 0, 0xE9, 0, 0xAC, 0x20, 0, 0 };
  static const unsigned char multi[] = { 0x61, 0, 0, 0, 0, 0 }, bin[] = { 0xE9, 0x80 };
  static const unsigned char hex1[] = { 0xE9, 0 };
  char why[512] = "";
  tp_reg_file f;
  int rc = parse (text, &f, why, sizeof why);
  ok (rc == 0 && f.version == 4 && f.n == 6, "REGEDIT4 (ANSI) parses: %s", rc ? why : "");
  ok (entry_is (&f, 0, TP_REG_KEY, K "\\Caf\xc3\xa9", NULL) && f.entries[0].line == 4,
      "REGEDIT4: Windows-1252 key name to UTF-8, after a blank first line");
  ok (value_is (&f, 1, "Caf\xc3\xa9", 1, sz, sizeof sz), "REGEDIT4: REG_SZ from Windows-1252");
  ok (value_is (&f, 2, "Exp", 2, exp, sizeof exp), "REGEDIT4: hex(2) ANSI to UTF-16LE");
  ok (value_is (&f, 3, "Multi", 7, multi, sizeof multi), "REGEDIT4: hex(7) ANSI to UTF-16LE");
  ok (value_is (&f, 4, "Bin", 3, bin, 2), "REGEDIT4: hex: bytes kept");
  ok (value_is (&f, 5, "Sz as hex", 1, hex1, 2), "REGEDIT4: hex(1) bytes kept");
  tp_reg_file_free (&f);

  /* With a BOM the text is what the BOM says, version 4 all the same. */
  size_t len;
  unsigned char *u16 = utf16_crlf ("REGEDIT4\n[" K "]\n\"E\"=hex(2):41,00\n\"S\"=\"é\"\n", &len);
  static const unsigned char e2[] = { 0x41, 0, 0, 0 }, s2[] = { 0xE9, 0, 0, 0 };
  rc = tp_reg_parse ("t.reg", u16, len, &f, why, sizeof why);
  ok (rc == 0 && f.version == 4 && value_is (&f, 1, "E", 2, e2, 4) &&
      value_is (&f, 2, "S", 1, s2, 4), "REGEDIT4 in UTF-16LE: hex(2) still converted");
  tp_reg_file_free (&f);
  free (u16);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

static void
test_header_errors (void)
{
  expect_error ("", 1, "empty", "empty file");
  expect_error ("\n\r\n  \n", 1, "empty", "blank file");
  expect_error ("REGEDIT5\n[" K "]\n", 1, "not a .reg file", "bad header");
  expect_error ("\n\nWindows Registry Editor Version 5.0\n", 3, "not a .reg file",
                "bad header after blank lines names its line");
  expect_error ("; comment\n" V5, 1, "not a .reg file", "a comment before the header");
  expect_error ("\xEF\xBB\xBFREGEDIT\n", 1, "not a .reg file", "bad header after a UTF-8 BOM");
}

static void
test_encoding_errors (void)
{
  static const unsigned char be[] = { 0xFE, 0xFF, 0, 'R', 0, 'E' };
  static const unsigned char nobom[] = { 'R', 0, 'E', 0 };
  expect_error_bytes (be, sizeof be, 1, "UTF-16BE", "UTF-16BE refused");
  expect_error_bytes (nobom, sizeof nobom, 1, "without a byte order mark", "UTF-16 without BOM");
  expect_error (V5 "[" K "]\n\"a\"=\"\xC3\x28\"\n", 4, "invalid UTF-8", "invalid UTF-8 on line 4");
  expect_error (V5 "[" K "]\n\"a\"=\"\xC0\xAF\"\n", 4, "invalid UTF-8", "overlong UTF-8");
  expect_error (V5 "[" K "]\n\"a\"=\"\xED\xA0\x80\"\n", 4, "invalid UTF-8", "UTF-8 surrogate");
  expect_error (V5 "\xF4\x90\x80\x80", 3, "invalid UTF-8", "UTF-8 over U+10FFFF");
  expect_error (V5 "[" K "]\n\"a\"=\"\xE2\x82", 4, "invalid UTF-8", "truncated UTF-8");
  static const char nul[] = V5 "[" K "]\n\"a\"=\"\0\"\n";
  expect_error_bytes (nul, sizeof nul - 1, 4, "NUL", "NUL character");

  size_t len;
  unsigned char *u = utf16_crlf (V5 "[" K "]\n\"a\"=\"xy\"\n", &len);
  unsigned char *x = memchr (u + 2, 'x', len - 2);
  x[0] = 0x00, x[1] = 0xDC;                    /* a lone low surrogate */
  expect_error_bytes (u, len, 4, "low surrogate", "UTF-16 lone low surrogate on line 4");
  x[0] = 0x00, x[1] = 0xD8;                    /* a high one before 'y' */
  expect_error_bytes (u, len, 4, "high surrogate", "UTF-16 lone high surrogate on line 4");
  expect_error_bytes (u, len - 8, 4, "high surrogate", "UTF-16 high surrogate at the end");
  x[0] = 'x', x[1] = 0;
  expect_error_bytes (u, len - 1, 4, "odd size", "UTF-16 of odd size");
  free (u);
}

static void
test_key_errors (void)
{
  expect_error (V5 "[]\n", 3, "empty key name", "[] refused");
  expect_error (V5 "[-]\n", 3, "empty key name", "[-] refused");
  expect_error (V5 "[\\\\]\n", 3, "empty key name", "[\\\\] refused");
  expect_error (V5 "[" K "\n", 3, "closing ']'", "missing ']'");
  expect_error (V5 "[" K "] x\n", 3, "after ']'", "garbage after ']'");
  expect_error (V5 "\"a\"=dword:1\n", 3, "before any [KEY]", "value before any key");
  expect_error (V5 "@=\"x\"\n", 3, "before any [KEY]", "default value before any key");
  expect_error (V5 "[-" K "]\n\"a\"=-\n", 4, "[-KEY]", "value under a deleted key");
  expect_error (V5 "[" K "]\nfoo\n", 4, "expected [KEY]", "a stray line");
}

static void
test_value_errors (void)
{
#define E(text, line, what, label) expect_error (V5 "[" K "]\n" text, line, what, label)
  E ("\"a\"=\"abc\n", 4, "unterminated string", "unterminated string");
  E ("\"a\"=\"abc\\\"\n", 4, "unterminated string", "unterminated string (escaped quote)");
  E ("\"a\"=\"abc\\\n", 4, "unterminated string", "unterminated string (backslash at end)");
  E ("\"a=dword:1\n", 4, "unterminated value name", "unterminated name");
  E ("\"a\"=\"x\\ny\"\n", 4, "unknown escape '\\n'", "\\n is not an escape");
  E ("\"a\\t\"=\"x\"\n", 4, "unknown escape '\\t' in the value name", "\\t in a name");
  E ("\"a\"=\"\\é\"\n", 4, "unknown escape '\\é'", "escape of a non-ASCII character");
  E ("\"a\"\n", 4, "missing '='", "missing '='");
  E ("\"a\" dword:1\n", 4, "missing '='", "missing '=' before data");
  E ("@\n", 4, "missing '='", "@ without '='");
  E ("\"a\"=\n", 4, "missing value", "nothing after '='");
  E ("\"a\"=word:1\n", 4, "unknown value syntax 'word:1'", "unknown value syntax");
  E ("\"a\"=str(1):\"x\"\n", 4, "unknown value syntax", "mkhive's str(N) is not regedit's");
  E ("\"a\"=\"x\" y\n", 4, "trailing garbage after the value: 'y'", "garbage after a string");
  E ("\"a\"=-x\n", 4, "trailing garbage", "garbage after '-'");
  E ("\"a\"=dword:1 2\n", 4, "trailing garbage", "garbage after a dword");
  E ("\"a\"=dword:12345678g\n", 4, "trailing garbage", "non-hex after a dword");
  E ("\"a\"=dword:123456789\n", 4, "dword over 8 hex digits", "dword over 8 digits");
  E ("\"a\"=dword:\n", 4, "1 to 8 hex digits", "dword without digits");
  E ("\"a\"=dword:-1\n", 4, "1 to 8 hex digits", "negative dword");
  E ("\"a\"=hex:01,zz\n", 4, "bad hex byte 'zz'", "bad hex byte");
  E ("\"a\"=hex:01,0x\n", 4, "bad hex byte '0x'", "bad hex byte 0x");
  E ("\"a\"=hex:01,123\n", 4, "hex byte over 2 digits: '123'", "hex byte over 2 digits");
  E ("\"a\"=hex:01,,02\n", 4, "empty hex byte", "two commas");
  E ("\"a\"=hex:,\n", 4, "empty hex byte", "a lone comma");
  E ("\"a\"=hex:01 02\n", 4, "expected ','", "hex bytes without a comma");
  E ("\"a\"=hex:01\\\n  02\n", 4, "expected ','", "'\\' must follow a comma");
  E ("\"a\"=hex:01,\\ x\n", 4, "bad hex byte", "'\\' not at the line end");
  E ("\"a\"=hex(2:01\n", 4, "bad hex(N)", "hex( without ')'");
  E ("\"a\"=hex():01\n", 4, "bad hex(N)", "hex() without a type");
  E ("\"a\"=hex(123456789):01\n", 4, "bad hex(N)", "hex(N) over 32 bits");
  E ("\"a\"=hex(2)01\n", 4, "bad hex(N)", "hex(N) without ':'");
  E ("\"a\"=hex(g):01\n", 4, "bad hex(N)", "hex(N) not hex");
#undef E
}

static void
test_continuation_errors (void)
{
  expect_error (V5 "[" K "]\n\"a\"=hex:01,\\\n", 4, "ends inside a continuation",
                "end of file after '\\'");
  expect_error (V5 "[" K "]\n\"a\"=hex:01,\\\n  02,\\", 5, "ends inside a continuation",
                "end of file after '\\', no final newline");
  expect_error (V5 "[" K "]\n\"a\"=hex:01,\\\n\n\"b\"=-\n", 5, "empty line inside a continuation",
                "blank line in a continuation");
  expect_error (V5 "[" K "]\n\"a\"=hex:01,\\\n; comment\n  02\n", 5, "bad hex byte ';'",
                "comment in a continuation");
  expect_error (V5 "[" K "]\n\"a\"=hex:01,\\\n  02,\\\n  zz\n", 6, "bad hex byte 'zz'",
                "bad byte on a continuation line names that line");
  expect_error (V5 "[" K "]\n\"a\"=\"x\",\\\n", 4, "trailing garbage",
                "strings do not continue");
}

/* A value of `n` bytes as hex, 25 bytes a line. */
static char *
big_hex (size_t n, const char *type)
{
  char *s = malloc (n * 3 + n / 25 * 4 + 256), *q = s;
  q += sprintf (q, V5 "[" K "]\n\"big\"=%s", type);
  for (size_t i = 0; i < n; i++)
    q += sprintf (q, i == 0 ? "%02x" : (i % 25 == 0 ? ",\\\n  %02x" : ",%02x"),
                  (unsigned) (i & 0xFF));
  strcpy (q, "\n");
  return s;
}

static void
test_messages (void)
{
  char why[512];
  tp_reg_file f;
  /* 23 ASCII bytes, then 'é': the 24-byte cut must not split it. */
  int rc = parse (V5 "[" K "]\n\"a\"=abcdefghijklmnopqrstuvwé and more\n", &f, why, sizeof why);
  ok (rc == -1 && strstr (why, "'abcdefghijklmnopqrstuvw'"),
      "quoted text is cut to whole characters: %s", why);
  rc = parse (V5 "[" K "]\n\"a\"=x\ry\x1b\n", &f, why, sizeof why);
  ok (rc == -1 && strstr (why, "'x?y?'"), "control characters in a message become '?': %s", why);
  char tiny[12];
  rc = parse ("x", &f, tiny, sizeof tiny);
  ok (rc == -1 && strcmp (tiny, "t.reg:1: no") == 0, "a short buffer gets the start: %s", tiny);
}

/* tp_reg_load of a file bigger than its first read. */
static void
test_load_big (void)
{
  char path[] = "/tmp/tlspatch-regfile-XXXXXX", why[512];
  char *s = big_hex (300000, "hex(3):");
  int fd = mkstemp (path);
  ssize_t w = fd >= 0 ? write (fd, s, strlen (s)) : -1;
  if (fd >= 0)
    close (fd);
  tp_reg_file f;
  int rc = w == (ssize_t) strlen (s) ? tp_reg_load (path, &f, why, sizeof why) : -1;
  ok (rc == 0 && f.n == 2 && f.entries[1].value.len == 300000,
      "a file of %zu bytes loads: %s", strlen (s), rc ? why : "");
  if (rc == 0)
    tp_reg_file_free (&f);
  unlink (path);
  free (s);
}

static void
test_limits (void)
{
  char why[512];
  tp_reg_file f;
  char *s = big_hex (TP_REG_MAX_DATA, "hex:");
  int rc = parse (s, &f, why, sizeof why);
  ok (rc == 0 && f.n == 2 && f.entries[1].value.len == TP_REG_MAX_DATA &&
      f.entries[1].value.data[TP_REG_MAX_DATA - 1] == ((TP_REG_MAX_DATA - 1) & 0xFF),
      "1 MiB of hex over 41944 lines is accepted: %s", rc ? why : "");
  tp_reg_file_free (&f);
  free (s);

  s = big_hex (TP_REG_MAX_DATA + 1, "hex:");
  /* byte 1048576 is the first on line 4 + 1048576/25 */
  expect_error (s, 4 + TP_REG_MAX_DATA / 25, "over the 1 MiB limit", "1 MiB + 1 byte refused");
  free (s);

  s = big_hex (TP_REG_MAX_DATA / 2 + 1, "hex(7):");
  char *r4 = s + strlen (V5) - strlen ("REGEDIT4\n\n");
  memcpy (r4, "REGEDIT4\n\n", strlen ("REGEDIT4\n\n"));
  expect_error (r4, 4, "over the 1 MiB limit", "REGEDIT4 hex(7) over 1 MiB once in UTF-16");
  free (s);

  size_t n = TP_REG_MAX_DATA / 2;
  s = malloc (n + 256);
  int k = sprintf (s, V5 "[" K "]\n\"a\"=\"");
  memset (s + k, 'x', n);
  strcpy (s + k + n, "\"\n");
  expect_error (s, 4, "over the 1 MiB limit",
                "a string of 512 Ki characters (1 MiB + 2 bytes) refused");
  s[k + n - 1] = '"', s[k + n] = '\n', s[k + n + 1] = '\0';
  rc = parse (s, &f, why, sizeof why);
  ok (rc == 0 && f.entries[1].value.len == TP_REG_MAX_DATA,
      "a string of exactly 1 MiB with its NUL is accepted: %s", rc ? why : "");
  tp_reg_file_free (&f);
  free (s);

  unsigned char *huge = calloc (1, TP_REG_MAX_FILE + 1u);
  memcpy (huge, V5, strlen (V5));
  expect_error_bytes (huge, TP_REG_MAX_FILE + 1u, 1, "64 MiB", "a file over 64 MiB refused");
  free (huge);
}

/* Many short statements: linear time (a quadratic parser takes minutes). */
static void
test_long_file (void)
{
  size_t n = 200000;
  char *s = malloc (n * 40 + 128), *q = s;
  q += sprintf (q, V5 "[" K "]\n");
  for (size_t i = 0; i < n; i++)
    q += sprintf (q, "\"v%zu\"=dword:%08zx\n", i, i);
  char why[512];
  tp_reg_file f;
  clock_t t0 = clock ();
  int rc = parse (s, &f, why, sizeof why);
  double secs = (double) (clock () - t0) / CLOCKS_PER_SEC;
  ok (rc == 0 && f.n == n + 1 && f.entries[n].line == n + 3 &&
      strcmp (f.entries[n].name, "v199999") == 0,
      "200000 values parse in %.2f s: %s", secs, rc ? why : "");
  tp_reg_file_free (&f);
  free (s);
}

/* ------------------------------------------------------------------ */
/* Files                                                              */

static char *
fixture (const char *name)
{
  const char *top = getenv ("top_srcdir");
  size_t n = strlen (top ? top : ".") + strlen (name) + 32;
  char *path = malloc (n);
  snprintf (path, n, "%s/fixtures/settings/%s", top ? top : ".", name);
  return path;
}

static void
check_all_types (const tp_reg_file *f, const char *label)
{
  static const unsigned char qword[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  static const unsigned char multi[] = { 0x61, 0, 0, 0, 0x62, 0, 0x63, 0, 0, 0, 0, 0 };
  uint32_t seen = 0;
  for (size_t i = 0; i < f->n; i++)
    if (f->entries[i].op == TP_REG_SET_VALUE && f->entries[i].value.type <= 11)
      seen |= 1u << f->entries[i].value.type;
  ok (f->n == 21 && seen == 0xFFF, "%s: 21 statements, every type from 0 to 11", label);
  const tp_reg_entry *e = f->n > 4 ? &f->entries[4] : NULL;
  ok (e && strcmp (e->name, "Expand") == 0 && e->value.type == 2 && e->value.len == 30 &&
      e->line == 10,
      "%s: continued hex(2) of 30 bytes on line 10", label);
  ok (value_is (f, 9, "Multi", 7, multi, sizeof multi), "%s: hex(7)", label);
  ok (value_is (f, 13, "Qword", 11, qword, 8), "%s: hex(b)", label);
  ok (value_is (f, 17, "Empty string", 1, "\0", 2), "%s: empty REG_SZ is its NUL", label);
  ok (entry_is (f, 19, TP_REG_DELETE_VALUE, K "\\Types\\Deleted", "Gone") &&
      entry_is (f, 20, TP_REG_DELETE_KEY, K "\\Obsolete", NULL),
      "%s: value and key deletions", label);
}

static void
test_fixtures (void)
{
  char why[512];
  tp_reg_file f;
  char *path = fixture ("all-types.reg");
  int rc = tp_reg_load (path, &f, why, sizeof why);
  ok (rc == 0 && f.version == 5 && strcmp (f.path, path) == 0, "all-types.reg loads: %s",
      rc ? why : "");
  check_all_types (&f, "all-types.reg");
  tp_reg_file_free (&f);

  /* The same as regedit would export it, converted here. */
  FILE *fp = fopen (path, "rb");
  char text[8192];
  size_t n = fp ? fread (text, 1, sizeof text - 1, fp) : 0, len;
  if (fp)
    fclose (fp);
  text[n] = '\0';
  unsigned char *u16 = utf16_crlf (text, &len);
  rc = tp_reg_parse (path, u16, len, &f, why, sizeof why);
  ok (rc == 0, "all-types.reg as UTF-16LE parses: %s", rc ? why : "");
  check_all_types (&f, "all-types.reg UTF-16LE");
  tp_reg_file_free (&f);
  free (u16);
  free (path);

  static const unsigned char exp[] = { 0x25, 0, 'S', 0, 'y', 0, 's', 0, 't', 0, 'e', 0, 'm', 0,
                                       'R', 0, 'o', 0, 'o', 0, 't', 0, 0x25, 0, 0, 0 };
  path = fixture ("regedit4.reg");
  rc = tp_reg_load (path, &f, why, sizeof why);
  ok (rc == 0 && f.version == 4 && f.n == 8 && value_is (&f, 4, "Expand", 2, exp, sizeof exp) &&
      f.entries[6].value.len == 24 && f.entries[7].op == TP_REG_DELETE_VALUE,
      "regedit4.reg loads: hex(2) in UTF-16LE, a continued hex: %s", rc ? why : "");
  tp_reg_file_free (&f);
  free (path);
}

static int
same_entries (const tp_reg_file *a, const tp_reg_file *b)
{
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++) {
    const tp_reg_entry *x = &a->entries[i], *y = &b->entries[i];
    if (x->op != y->op || x->line != y->line || strcmp (x->key, y->key) != 0 ||
        (x->name ? !y->name || strcmp (x->name, y->name) != 0 : y->name != NULL) ||
        x->value.present != y->value.present || x->value.type != y->value.type ||
        x->value.len != y->value.len ||
        (x->value.len && memcmp (x->value.data, y->value.data, x->value.len) != 0))
      return 0;
  }
  return 1;
}

/* The recipe of fixtures/settings/README.md: iconv and printf. */
static void
test_iconv_utf16 (void)
{
  char out[] = "/tmp/tlspatch-regfile-XXXXXX", cmd[2048], why[512];
  int fd = mkstemp (out);
  if (fd < 0 || system ("command -v iconv > /dev/null 2>&1") != 0) {
    if (fd >= 0)
      close (fd), unlink (out);
    skip (1, "no iconv");
    return;
  }
  close (fd);
  char *path = fixture ("all-types.reg");
  snprintf (cmd, sizeof cmd, "{ printf '\\377\\376'; sed 's/$/\\r/' '%s' | "
            "iconv -f UTF-8 -t UTF-16LE; } > '%s'", path, out);
  tp_reg_file a, b;
  int rc = system (cmd) == 0 ? tp_reg_load (out, &b, why, sizeof why) : -1;
  int rc2 = tp_reg_load (path, &a, why, sizeof why);
  ok (rc == 0 && rc2 == 0 && same_entries (&a, &b),
      "all-types.reg through iconv (UTF-16LE, BOM, CRLF): the same statements");
  tp_reg_file_free (&a);
  tp_reg_file_free (&b);
  unlink (out);
  free (path);
}

/* The undo records tlspatch writes are .reg files this parser reads. */
static void
test_undo_record (void)
{
  char path[] = "/tmp/tlspatch-regfile-XXXXXX", why[512];
  int fd = mkstemp (path);
  close (fd);
  unlink (path);
  tp_result res;
  tp_result_init (&res, "/x/SOFTWARE");
  res.kind = TP_HIVE_SOFTWARE;
  unsigned char bytes[4], sz[] = { '1', 0, 0, 0 };
  tp_value absent = { 0 }, one = tp_value_dword (1, bytes);
  tp_value str = { .present = true, .type = 1, .data = sz, .len = 4 };
  tp_result_add_change (&res, "\\Microsoft\\.NETFramework\\v4.0.30319", "SchUseStrongCrypto",
                        &absent, &one);
  tp_result_add_change (&res, "\\Odd]Key", "Sch\"Use\\Strong", &str, &one);
  tp_result_add_change (&res, "\\Odd]Key", "", &one, &absent);
  tp_undo_writer *w = tp_undo_writer_new (path);
  int rc = tp_undo_writer_record (w, &res);
  tp_undo_writer_free (w);
  tp_result_free (&res);

  tp_reg_file f;
  static const unsigned char dw1[] = { 1, 0, 0, 0 };
  rc = rc == 0 ? tp_reg_load (path, &f, why, sizeof why) : -1;
  ok (rc == 0 && f.n == 5 &&
      entry_is (&f, 0, TP_REG_KEY,
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319",
                NULL) &&
      entry_is (&f, 1, TP_REG_DELETE_VALUE, f.entries[0].key, "SchUseStrongCrypto") &&
      entry_is (&f, 2, TP_REG_KEY, "HKEY_LOCAL_MACHINE\\SOFTWARE\\Odd]Key", NULL) &&
      value_is (&f, 3, "Sch\"Use\\Strong", 1, sz, 4) && value_is (&f, 4, "", 4, dw1, 4),
      "an undo record written by tlspatch parses: %s", rc ? why : "");
  if (rc == 0)
    tp_reg_file_free (&f);
  unlink (path);
}

static void
test_malformed_fixtures (void)
{
  static const struct { const char *file; unsigned line; const char *what; } bad[] = {
    { "malformed-unterminated.reg", 4, "unterminated string" },
    { "malformed-before-key.reg", 4, "before any [KEY]" },
    { "malformed-continuation.reg", 5, "ends inside a continuation" },
    { "malformed-hexbyte.reg", 5, "bad hex byte '1g'" },
    { "malformed-header.reg", 1, "not a .reg file" },
    { "malformed-dword.reg", 4, "dword over 8 hex digits" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char why[512], prefix[1024];
    tp_reg_file f;
    char *path = fixture (bad[i].file);
    int rc = tp_reg_load (path, &f, why, sizeof why);
    snprintf (prefix, sizeof prefix, "%s:%u: ", path, bad[i].line);
    ok (rc == -1 && strncmp (why, prefix, strlen (prefix)) == 0 && strstr (why, bad[i].what) &&
        f.n == 0, "%s refused: %s", bad[i].file, why);
    free (path);
  }

  char why[512];
  tp_reg_file f;
  int rc = tp_reg_load ("/nonexistent/x.reg", &f, why, sizeof why);
  ok (rc == -1 && strcmp (why, "/nonexistent/x.reg: No such file or directory") == 0,
      "missing file: %s", why);
  rc = tp_reg_load ("/", &f, why, sizeof why);
  ok (rc == -1 && strcmp (why, "/: not a regular file") == 0, "a directory: %s", why);
  ok (tp_reg_parse ("t.reg", (const unsigned char *) "", 0, &f, NULL, 0) == -1,
      "no room for a reason is fine");

  char big[] = "/tmp/tlspatch-regfile-XXXXXX";
  int fd = mkstemp (big);
  rc = fd >= 0 && ftruncate (fd, TP_REG_MAX_FILE + 1) == 0 ? tp_reg_load (big, &f, why, sizeof why)
                                                            : 0;
  ok (rc == -1 && strstr (why, "over the 64 MiB limit") && f.n == 0,
      "a sparse file over 64 MiB is refused unread: %s", why);
  if (fd >= 0)
    close (fd), unlink (big);
}

int
main (void)
{
  test_encodings ();
  test_regedit4 ();
  test_header_errors ();
  test_encoding_errors ();
  test_key_errors ();
  test_value_errors ();
  test_continuation_errors ();
  test_messages ();
  test_limits ();
  test_load_big ();
  test_long_file ();
  test_fixtures ();
  test_iconv_utf16 ();
  test_undo_record ();
  test_malformed_fixtures ();
  printf ("1..%d\n", test_no);
  return failures ? 1 : 0;
}
