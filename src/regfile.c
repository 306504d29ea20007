/* tlspatch: .reg file parser (see regfile.h for what is accepted). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/openfile.h"
#include "tlspatch/regfile.h"

#define HEADER_V5 "Windows Registry Editor Version 5.00"
#define HEADER_V4 "REGEDIT4"
#define SHOW_MAX 24             /* bytes of offending text quoted in a message */

typedef enum { KEY_NONE, KEY_OPEN, KEY_DELETED } key_state;

typedef struct {
  const char *path;
  char *why;
  size_t whylen;

  char *text;                   /* the file decoded to UTF-8, without NULs */
  size_t tlen, pos;             /* pos: the start of the next line */
  unsigned lineno;              /* the last line read */

  int version;
  char *key;                    /* the last [KEY], for its values */
  key_state kstate;
  tp_reg_file out;
  size_t cap;
} parser;

/* The part of a line still to read, and its line number. */
typedef struct {
  const char *s, *e;
  unsigned no;
} cursor;

static int fail (parser *p, unsigned line, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));

static int
fail (parser *p, unsigned line, const char *fmt, ...)
{
  if (!p->why || p->whylen == 0)
    return -1;
  int n = snprintf (p->why, p->whylen, "%s:%u: ", p->path, line);
  if (n >= 0 && (size_t) n < p->whylen) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (p->why + n, p->whylen - (size_t) n, fmt, ap);
    va_end (ap);
  }
  for (char *q = p->why; *q; q++)       /* one line, whatever the file held */
    if ((unsigned char) *q < 0x20 || *q == 0x7F)
      *q = '?';
  return -1;
}

/* How much of s..e to quote: at most SHOW_MAX bytes, whole characters. */
static int
show (const char *s, const char *e)
{
  if (e - s <= SHOW_MAX)
    return (int) (e - s);
  int n = SHOW_MAX;
  while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
    n--;
  return n;
}

/* ------------------------------------------------------------------ */
/* Decoding to UTF-8                                                  */

static const uint16_t cp1252_80[32] = {
  0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static uint16_t
cp1252 (unsigned char c)
{
  return c >= 0x80 && c < 0xA0 ? cp1252_80[c - 0x80] : c;
}

static size_t
put_utf8 (char *q, uint32_t cp)
{
  if (cp < 0x80) {
    q[0] = (char) cp;
    return 1;
  }
  if (cp < 0x800) {
    q[0] = (char) (0xC0 | (cp >> 6));
    q[1] = (char) (0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    q[0] = (char) (0xE0 | (cp >> 12));
    q[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
    q[2] = (char) (0x80 | (cp & 0x3F));
    return 3;
  }
  q[0] = (char) (0xF0 | (cp >> 18));
  q[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
  q[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
  q[3] = (char) (0x80 | (cp & 0x3F));
  return 4;
}

/* One code point of strict UTF-8 (no overlongs, no surrogates): its
 * length, or 0 if s does not start with one. */
static size_t
utf8_next (const unsigned char *s, size_t n, uint32_t *cp)
{
  unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, v = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, v = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, v = c & 0x07, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

static int
alloc_text (parser *p, size_t size)
{
  p->text = malloc (size);
  return p->text ? 0 : fail (p, 1, "out of memory");
}

/* Append one code point; NUL is refused. `line`: 1 + newlines so far. */
static int
put_char (parser *p, uint32_t cp, unsigned *line)
{
  if (cp == 0)
    return fail (p, *line, "NUL character in the text");
  if (cp == '\n')
    (*line)++;
  p->tlen += put_utf8 (p->text + p->tlen, cp);
  return 0;
}

static int
decode_utf8 (parser *p, const unsigned char *b, size_t n)
{
  unsigned line = 1;
  if (alloc_text (p, n + 1) < 0)
    return -1;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t k = utf8_next (b + i, n - i, &cp);
    if (k == 0)
      return fail (p, line, "invalid UTF-8 (byte 0x%02x at offset %zu)", b[i], i);
    if (put_char (p, cp, &line) < 0)
      return -1;
    i += k;
  }
  return 0;
}

static int
decode_utf16le (parser *p, const unsigned char *b, size_t n)
{
  unsigned line = 1;
  if (alloc_text (p, n / 2 * 3 + 1) < 0)
    return -1;
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint32_t cp = b[i] | (uint32_t) b[i + 1] << 8;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return fail (p, line, "invalid UTF-16 (unpaired low surrogate at offset %zu)", i);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t lo = i + 3 < n ? (b[i + 2] | (uint32_t) b[i + 3] << 8) : 0;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return fail (p, line, "invalid UTF-16 (unpaired high surrogate at offset %zu)", i);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      i += 2;
    }
    if (put_char (p, cp, &line) < 0)
      return -1;
  }
  if (n % 2)
    return fail (p, line, "UTF-16 text ends in half a character (odd size)");
  return 0;
}

static int
decode_cp1252 (parser *p, const unsigned char *b, size_t n)
{
  unsigned line = 1;
  if (alloc_text (p, n * 3 + 1) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (put_char (p, cp1252 (b[i]), &line) < 0)
      return -1;
  return 0;
}

static bool
is_space_byte (unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A file without a BOM whose first line is REGEDIT4 is ANSI text. */
static bool
starts_regedit4 (const unsigned char *b, size_t n)
{
  size_t i = 0, k = strlen (HEADER_V4);
  while (i < n && is_space_byte (b[i]))
    i++;
  if (n - i < k || memcmp (b + i, HEADER_V4, k) != 0)
    return false;
  return i + k == n || is_space_byte (b[i + k]);
}

static int
decode (parser *p, const unsigned char *b, size_t n)
{
  if (n > TP_REG_MAX_FILE)
    return fail (p, 1, "file is over the 64 MiB limit (%zu bytes)", n);
  if (n >= 2 && b[0] == 0xFF && b[1] == 0xFE)
    return decode_utf16le (p, b + 2, n - 2);
  if (n >= 2 && b[0] == 0xFE && b[1] == 0xFF)
    return fail (p, 1, "UTF-16BE text is not supported (regedit writes UTF-16LE)");
  if (n >= 3 && memcmp (b, "\xEF\xBB\xBF", 3) == 0)
    return decode_utf8 (p, b + 3, n - 3);
  if (n >= 2 && (b[0] == 0) != (b[1] == 0))
    return fail (p, 1, "UTF-16 text without a byte order mark (BOM) is not supported");
  if (starts_regedit4 (b, n))
    return decode_cp1252 (p, b, n);
  return decode_utf8 (p, b, n);
}

/* ------------------------------------------------------------------ */
/* Lines                                                              */

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static void
skip_blanks (cursor *c)
{
  while (c->s < c->e && is_blank (*c->s))
    c->s++;
}

/* The next line, without its line end, leading and trailing blanks. */
static bool
next_line (parser *p, cursor *c)
{
  if (p->pos >= p->tlen)
    return false;
  const char *s = p->text + p->pos;
  const char *nl = memchr (s, '\n', p->tlen - p->pos);
  const char *e = nl ? nl : p->text + p->tlen;
  p->pos = (size_t) (e - p->text) + (nl ? 1 : 0);
  p->lineno++;
  while (e > s && (is_blank (e[-1]) || e[-1] == '\r'))
    e--;
  *c = (cursor) { .s = s, .e = e, .no = p->lineno };
  skip_blanks (c);
  return true;
}

static bool
at_end (cursor *c)
{
  skip_blanks (c);
  return c->s == c->e;
}

static bool
eat_prefix (cursor *c, const char *prefix)
{
  size_t k = strlen (prefix);
  if ((size_t) (c->e - c->s) < k || strncasecmp (c->s, prefix, k) != 0)
    return false;
  c->s += k;
  return true;
}

static int
expect_end (parser *p, cursor *c)
{
  if (at_end (c))
    return 0;
  return fail (p, c->no, "trailing garbage after the value: '%.*s'", show (c->s, c->e), c->s);
}

/* ------------------------------------------------------------------ */
/* Entries                                                            */

static int
grow_entries (parser *p)
{
  if (p->out.n < p->cap)
    return 0;
  if (p->cap > SIZE_MAX / 2 / sizeof *p->out.entries)
    return -1;
  size_t cap = p->cap ? p->cap * 2 : 16;
  tp_reg_entry *e = realloc (p->out.entries, cap * sizeof *e);
  if (!e)
    return -1;
  p->out.entries = e;
  p->cap = cap;
  return 0;
}

/* Takes name and v->data, even on failure. */
static int
add_entry (parser *p, tp_reg_op op, const char *key, char *name, tp_value *v, unsigned line)
{
  char *k = strdup (key);
  if (!k || grow_entries (p) < 0) {
    free (k);
    free (name);
    free (v->data);
    return fail (p, line, "out of memory");
  }
  p->out.entries[p->out.n++] = (tp_reg_entry) {
    .op = op, .key = k, .name = name, .value = *v, .line = line,
  };
  return 0;
}

/* ------------------------------------------------------------------ */
/* Values                                                             */

typedef struct {
  unsigned char *d;
  size_t len, cap;
} bytes;

static int
bytes_push (parser *p, unsigned line, bytes *b, unsigned char x)
{
  if (b->len >= TP_REG_MAX_DATA)
    return fail (p, line, "value data over the 1 MiB limit (%u bytes)", TP_REG_MAX_DATA);
  if (b->len == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    unsigned char *d = realloc (b->d, cap);
    if (!d)
      return fail (p, line, "out of memory");
    b->d = d;
    b->cap = cap;
  }
  b->d[b->len++] = x;
  return 0;
}

/* The bytes of the character at c (the text is valid UTF-8). */
static int
char_len (const cursor *c)
{
  uint32_t cp;
  size_t k = utf8_next ((const unsigned char *) c->s, (size_t) (c->e - c->s), &cp);
  return k ? (int) k : 1;
}

/* "..." with the escapes \\ and \" into a new string (its bytes in *len). */
static int
parse_quoted (parser *p, cursor *c, const char *what, char **out, size_t *len)
{
  char *s = malloc ((size_t) (c->e - c->s) + 1), *q = s;
  if (!s)
    return fail (p, c->no, "out of memory");
  for (c->s++; c->s < c->e && *c->s != '"'; c->s++) {
    if (*c->s == '\\') {
      if (++c->s == c->e)
        break;
      if (*c->s != '\\' && *c->s != '"') {
        free (s);
        return fail (p, c->no, "unknown escape '\\%.*s' in the %s (only \\\\ and \\\" are allowed)",
                     char_len (c), c->s, what);
      }
    }
    *q++ = *c->s;
  }
  if (c->s == c->e) {
    free (s);
    return fail (p, c->no, "unterminated %s (no closing '\"')", what);
  }
  c->s++;
  *q = '\0';
  *out = s;
  *len = (size_t) (q - s);
  return 0;
}

/* One code point of text already checked (U+FFFD should it not be). */
static size_t
text_next (const unsigned char *s, size_t n, uint32_t *cp)
{
  size_t k = utf8_next (s, n, cp);
  if (k == 0)
    *cp = 0xFFFD, k = 1;
  return k;
}

/* UTF-8 (valid: the text was checked) to UTF-16LE with a NUL. */
static int
to_utf16 (parser *p, unsigned line, const char *s, size_t n, tp_value *v)
{
  const unsigned char *u = (const unsigned char *) s;
  size_t units = 1;
  uint32_t cp;
  for (size_t i = 0, k; i < n; i += k) {
    k = text_next (u + i, n - i, &cp);
    units += cp >= 0x10000 ? 2 : 1;
  }
  if (units * 2 > TP_REG_MAX_DATA)
    return fail (p, line, "value data over the 1 MiB limit (%u bytes)", TP_REG_MAX_DATA);
  unsigned char *d = malloc (units * 2), *q = d;
  if (!d)
    return fail (p, line, "out of memory");
  for (size_t i = 0, k; i < n; i += k) {
    k = text_next (u + i, n - i, &cp);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      uint32_t hi = 0xD800 + (cp >> 10);
      *q++ = (unsigned char) hi, *q++ = (unsigned char) (hi >> 8);
      cp = 0xDC00 + (cp & 0x3FF);
    }
    *q++ = (unsigned char) cp, *q++ = (unsigned char) (cp >> 8);
  }
  q[0] = q[1] = 0;
  *v = (tp_value) { .present = true, .type = 1, .data = d, .len = units * 2 };
  return 0;
}

static int
parse_string (parser *p, cursor *c, tp_value *v)
{
  char *s;
  size_t n;
  unsigned line = c->no;
  if (parse_quoted (p, c, "string", &s, &n) < 0)
    return -1;
  int rc = to_utf16 (p, line, s, n, v);
  free (s);
  return rc;
}

static bool
is_hex (char ch)
{
  return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}

static size_t
hex_run (const cursor *c)
{
  size_t n = 0;
  while (c->s + n < c->e && is_hex (c->s[n]))
    n++;
  return n;
}

static uint32_t
hex_value (const char *s, size_t n)
{
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    v = v << 4 | (uint32_t) (ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
  }
  return v;
}

static int
parse_dword (parser *p, cursor *c, tp_value *v)
{
  size_t n = hex_run (c);
  if (n == 0)
    return fail (p, c->no, "dword needs 1 to 8 hex digits, found '%.*s'",
                 show (c->s, c->e), c->s);
  if (n > 8)
    return fail (p, c->no, "dword over 8 hex digits: '%.*s'", show (c->s, c->e), c->s);
  uint32_t d = hex_value (c->s, n);
  c->s += n;
  if (expect_end (p, c) < 0)
    return -1;
  unsigned char *b = malloc (4);
  if (!b)
    return fail (p, c->no, "out of memory");
  for (int i = 0; i < 4; i++)
    b[i] = (unsigned char) (d >> (8 * i));
  *v = (tp_value) { .present = true, .type = 4, .data = b, .len = 4 };
  return 0;
}

/* The offending token of a hex list, for messages. */
static int
token_len (const cursor *c)
{
  const char *t = c->s;
  while (t < c->e && *t != ',' && !is_blank (*t))
    t++;
  return show (c->s, t > c->s ? t : c->s + 1);
}

/* A '\' ending the line: go on with the next one. */
static int
continue_line (parser *p, cursor *c)
{
  if (c->s + 1 != c->e)
    return fail (p, c->no, "bad hex byte '%.*s'", token_len (c), c->s);
  unsigned from = c->no;
  if (!next_line (p, c))
    return fail (p, from, "the file ends inside a continuation ('\\' on the last line)");
  if (c->s == c->e)
    return fail (p, c->no, "empty line inside a continuation (after '\\' on line %u)", from);
  return 0;
}

static int
hex_byte (parser *p, cursor *c, bytes *b)
{
  size_t n = hex_run (c);
  const char *after = c->s + n;
  if (n == 0 || (after < c->e && *after != ',' && *after != '\\' && !is_blank (*after)))
    return fail (p, c->no, "bad hex byte '%.*s'", token_len (c), c->s);
  if (n > 2)
    return fail (p, c->no, "hex byte over 2 digits: '%.*s'", token_len (c), c->s);
  if (bytes_push (p, c->no, b, (unsigned char) hex_value (c->s, n)) < 0)
    return -1;
  c->s = after;
  return 0;
}

/* aa,bb,... possibly continued over lines; empty is zero bytes. */
static int
parse_hex_list (parser *p, cursor *c, bytes *b)
{
  bool need_comma = false;
  for (;;) {
    if (at_end (c))
      return 0;
    if (*c->s == '\\' && !need_comma) {
      if (continue_line (p, c) < 0)
        return -1;
    } else if (need_comma) {
      if (*c->s != ',')
        return fail (p, c->no, "trailing garbage after hex byte: '%.*s' (expected ',')",
                     show (c->s, c->e), c->s);
      c->s++;
      need_comma = false;
    } else if (*c->s == ',') {
      return fail (p, c->no, "empty hex byte (a comma with no byte before it)");
    } else {
      if (hex_byte (p, c, b) < 0)
        return -1;
      need_comma = true;
    }
  }
}

/* REGEDIT4's REG_EXPAND_SZ and REG_MULTI_SZ hold ANSI bytes: regedit
 * stores them as UTF-16LE. */
static int
ansi_to_utf16 (parser *p, unsigned line, bytes *b)
{
  if (b->len * 2 > TP_REG_MAX_DATA)
    return fail (p, line, "value data over the 1 MiB limit (%u bytes)", TP_REG_MAX_DATA);
  unsigned char *d = malloc (b->len * 2 + 1);
  if (!d)
    return fail (p, line, "out of memory");
  for (size_t i = 0; i < b->len; i++) {
    uint16_t u = cp1252 (b->d[i]);
    d[2 * i] = (unsigned char) u;
    d[2 * i + 1] = (unsigned char) (u >> 8);
  }
  free (b->d);
  b->d = d;
  b->len *= 2;
  b->cap = b->len + 1;
  return 0;
}

static int
parse_hex_type (parser *p, cursor *c, uint32_t *type)
{
  size_t n = hex_run (c);
  if (n == 0 || n > 8 || c->s + n + 1 >= c->e || c->s[n] != ')' || c->s[n + 1] != ':')
    return fail (p, c->no, "bad hex(N): type, expected 1 to 8 hex digits and '):', found '%.*s'",
                 show (c->s, c->e), c->s);
  *type = hex_value (c->s, n);
  c->s += n + 2;
  return 0;
}

static int
parse_hex (parser *p, cursor *c, uint32_t type, tp_value *v)
{
  bytes b = { 0 };
  unsigned line = c->no;
  if (parse_hex_list (p, c, &b) < 0 ||
      (p->version == 4 && (type == 2 || type == 7) && ansi_to_utf16 (p, line, &b) < 0)) {
    free (b.d);
    return -1;
  }
  *v = (tp_value) { .present = true, .type = type, .data = b.d, .len = b.len };
  return 0;
}

/* After '=': the value's data (v) or a deletion (v->present false). */
static int
parse_rhs (parser *p, cursor *c, tp_value *v)
{
  uint32_t type = 0;
  *v = (tp_value) { 0 };
  if (at_end (c))
    return fail (p, c->no, "missing value after '='");
  if (*c->s == '-') {
    c->s++;
    return expect_end (p, c);
  }
  if (*c->s == '"')
    return parse_string (p, c, v) < 0 ? -1 : expect_end (p, c);
  if (eat_prefix (c, "dword:"))
    return parse_dword (p, c, v);
  if (eat_prefix (c, "hex:"))
    return parse_hex (p, c, 3, v);
  if (eat_prefix (c, "hex("))
    return parse_hex_type (p, c, &type) < 0 ? -1 : parse_hex (p, c, type, v);
  return fail (p, c->no, "unknown value syntax '%.*s'", show (c->s, c->e), c->s);
}

static int
parse_value (parser *p, cursor *c)
{
  unsigned line = c->no;
  if (p->kstate == KEY_NONE)
    return fail (p, line, "value before any [KEY]");
  if (p->kstate == KEY_DELETED)
    return fail (p, line, "value after [-KEY] (the key is deleted, not opened)");
  char *name;
  size_t n;
  if (*c->s == '@') {
    c->s++;
    if (!(name = strdup ("")))
      return fail (p, line, "out of memory");
  } else if (parse_quoted (p, c, "value name", &name, &n) < 0)
    return -1;
  skip_blanks (c);
  if (c->s == c->e || *c->s != '=') {
    free (name);
    return fail (p, line, "missing '=' after the value name");
  }
  c->s++;
  skip_blanks (c);
  tp_value v;
  if (parse_rhs (p, c, &v) < 0) {
    free (name);
    free (v.data);
    return -1;
  }
  return add_entry (p, v.present ? TP_REG_SET_VALUE : TP_REG_DELETE_VALUE, p->key, name, &v,
                    line);
}

/* ------------------------------------------------------------------ */
/* Keys and the file                                                  */

static int
parse_key (parser *p, cursor *c)
{
  const char *close = c->e;
  while (close > c->s && close[-1] != ']')
    close--;
  if (close == c->s)
    return fail (p, c->no, "'[' without a closing ']'");
  if (close != c->e)
    return fail (p, c->no, "trailing garbage after ']': '%.*s'", show (close, c->e), close);
  const char *s = c->s + 1, *e = close - 1;
  bool del = s < e && *s == '-';
  s += del;
  while (e > s && e[-1] == '\\')
    e--;
  if (e == s)
    return fail (p, c->no, "empty key name");
  char *key = strndup (s, (size_t) (e - s));
  if (!key)
    return fail (p, c->no, "out of memory");
  free (p->key);
  p->key = key;
  p->kstate = del ? KEY_DELETED : KEY_OPEN;
  tp_value none = { 0 };
  return add_entry (p, del ? TP_REG_DELETE_KEY : TP_REG_KEY, key, NULL, &none, c->no);
}

static bool
line_is (const cursor *c, const char *text)
{
  size_t k = strlen (text);
  return (size_t) (c->e - c->s) == k && memcmp (c->s, text, k) == 0;
}

static int
parse_header (parser *p)
{
  cursor c;
  bool got;
  while ((got = next_line (p, &c)) && c.s == c.e)
    continue;
  if (got && line_is (&c, HEADER_V5))
    p->version = 5;
  else if (got && line_is (&c, HEADER_V4))
    p->version = 4;
  else if (got)
    return fail (p, c.no, "not a .reg file: the first line is not '" HEADER_V5 "' or '"
                 HEADER_V4 "'");
  else
    return fail (p, 1, "not a .reg file: it is empty");
  return 0;
}

static int
parse_lines (parser *p)
{
  cursor c;
  if (parse_header (p) < 0)
    return -1;
  while (next_line (p, &c)) {
    int rc = 0;
    if (c.s == c.e || *c.s == ';')
      continue;
    if (*c.s == '[')
      rc = parse_key (p, &c);
    else if (*c.s == '"' || *c.s == '@')
      rc = parse_value (p, &c);
    else
      rc = fail (p, c.no, "expected [KEY], a value or a comment, found '%.*s'",
                 show (c.s, c.e), c.s);
    if (rc < 0)
      return -1;
  }
  return 0;
}

void
tp_reg_file_free (tp_reg_file *f)
{
  if (!f)
    return;
  for (size_t i = 0; i < f->n; i++) {
    free (f->entries[i].key);
    free (f->entries[i].name);
    free (f->entries[i].value.data);
  }
  free (f->entries);
  free (f->path);
  memset (f, 0, sizeof *f);
}

int
tp_reg_parse (const char *path, const unsigned char *buf, size_t len, tp_reg_file *out,
              char *why, size_t whylen)
{
  parser p = { .path = path ? path : "(input)", .why = why, .whylen = whylen };
  memset (out, 0, sizeof *out);
  int rc = decode (&p, buf, len);
  if (rc == 0)
    rc = parse_lines (&p);
  if (rc == 0) {
    p.out.path = strdup (p.path);
    p.out.version = p.version;
    if (!p.out.path)
      rc = fail (&p, p.lineno, "out of memory");
  }
  free (p.text);
  free (p.key);
  if (rc < 0)
    tp_reg_file_free (&p.out);
  else
    *out = p.out;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Files                                                              */

static int
io_error (const char *path, char *why, size_t whylen, const char *what)
{
  if (why && whylen)
    snprintf (why, whylen, "%s: %s", path, what);
  return -1;
}

/* Up to TP_REG_MAX_FILE + 1 bytes of fd (so that too big shows). */
static int
read_all (int fd, unsigned char **buf, size_t *len)
{
  size_t cap = 65536, n = 0;
  unsigned char *b = malloc (cap);
  while (b) {
    if (n == cap) {
      cap = cap * 2 > TP_REG_MAX_FILE + 1u ? TP_REG_MAX_FILE + 1u : cap * 2;
      unsigned char *nb = n < cap ? realloc (b, cap) : NULL;
      if (!nb)
        break;
      b = nb;
    }
    ssize_t r = read (fd, b + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      *buf = b;
      *len = n;
      return r < 0 ? -1 : 0;
    }
    n += (size_t) r;
  }
  if (b && n == TP_REG_MAX_FILE + 1u) {     /* full: enough to be refused */
    *buf = b;
    *len = n;
    return 0;
  }
  free (b);
  errno = ENOMEM;
  return -1;
}

int
tp_reg_read_file (const char *path, unsigned char **buf, size_t *len, char *why, size_t whylen)
{
  *buf = NULL;
  *len = 0;
  struct stat st;
  int fd = tp_open_regular (path, &st);
  if (fd < 0)
    return io_error (path, why, whylen, tp_open_error (errno));
  if (st.st_size > (off_t) TP_REG_MAX_FILE) {
    close (fd);
    if (why && whylen)
      snprintf (why, whylen, "%s: file is over the 64 MiB limit (%lld bytes)", path,
                (long long) st.st_size);
    return -1;
  }
  int rc = read_all (fd, buf, len);
  int err = errno;
  close (fd);
  if (rc < 0) {
    free (*buf);
    *buf = NULL;
    return io_error (path, why, whylen, strerror (err));
  }
  return 0;
}

int
tp_reg_load (const char *path, tp_reg_file *out, char *why, size_t whylen)
{
  memset (out, 0, sizeof *out);
  unsigned char *buf;
  size_t len;
  if (tp_reg_read_file (path, &buf, &len, why, whylen) != 0)
    return -1;
  int rc = tp_reg_parse (path, buf, len, out, why, whylen);
  free (buf);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Writing: the same syntax, back                                     */

void
tp_reg_put_value (FILE *fp, const char *name, const tp_value *v)
{
  if (!name[0])                 /* the key's default value */
    fputc ('@', fp);
  else {
    fputc ('"', fp);
    for (const char *p = name; *p; p++) {
      if (*p == '"' || *p == '\\')
        fputc ('\\', fp);
      fputc (*p, fp);
    }
    fputc ('"', fp);
  }
  if (!v->present) {
    fputs ("=-\n", fp);
    return;
  }
  /* hex(N) keeps the exact type and bytes, whatever they are; lines of
   * 16 bytes, continued as regedit does. */
  fprintf (fp, "=hex(%x):", (unsigned) v->type);
  for (size_t i = 0; i < v->len; i++)
    fprintf (fp, i == 0 ? "%02x" : (i % 16 ? ",%02x" : ",\\\n  %02x"), v->data[i]);
  fputc ('\n', fp);
}

