/* tlspatch: .reg files (regedit's export format) as a list of statements.
 *
 * Accepted as regedit writes and reads them:
 *  - UTF-16LE with a BOM (what regedit exports), UTF-8 with or without a
 *    BOM, LF or CRLF line ends. A file without a BOM whose first line is
 *    REGEDIT4 is ANSI text, read as Windows-1252 (as regedit does).
 *  - The header "Windows Registry Editor Version 5.00" or "REGEDIT4" as
 *    the first non-blank line; comments (';') and blank lines.
 *  - [KEY], [-KEY]; "name"=... and @=... with "string", dword:, hex:,
 *    hex(N): (continued over lines with a trailing '\') and '-'.
 *
 * Every value becomes the exact type and bytes the registry stores: REG_SZ
 * in UTF-16LE with its NUL, dword little-endian, hex bytes as written
 * (REGEDIT4's hex(2) and hex(7) converted from ANSI to UTF-16LE as regedit
 * does on import). Anything else is an error naming the file and line.
 * The library never prints.
 *
 * Details:
 *  - Encoding: FF FE is UTF-16LE, EF BB BF UTF-8; FE FF (UTF-16BE), UTF-16
 *    without a BOM, invalid UTF-8 or UTF-16 and NUL characters are refused.
 *    With a BOM, a REGEDIT4 file is read in the BOM's encoding (its hex(2)
 *    and hex(7) are still converted from ANSI).
 *  - Lines end with LF or CRLF (a lone CR is an ordinary character);
 *    leading and trailing blanks (space, tab) are ignored; a ';' line is a
 *    comment; only blank lines may precede the header, which must match
 *    exactly (an error names the line it is on).
 *  - Keys: [KEY] and [-KEY] may be repeated; a value after [-KEY] (before
 *    the next [KEY]) is an error, where regedit would skip it silently.
 *    The path is not checked: its root (HKEY_LOCAL_MACHINE, HKLM, ...) is
 *    the caller's to map.
 *  - Values: blanks are allowed around '='; the words dword:, hex: and
 *    hex( are case-insensitive, the hex digits too. Each statement is
 *    kept in order, so a value set twice appears twice (the last wins, as
 *    in regedit).
 *  - Hex lists: bytes of 1 or 2 digits, blanks around them allowed, a
 *    trailing comma allowed; '\' at the end of a line continues the list
 *    (after "hex:" or a comma); the continued line must not be blank.
 *  - Limits: a value's data over TP_REG_MAX_DATA bytes (as stored, so after
 *    a REGEDIT4 conversion to UTF-16LE) and a file over TP_REG_MAX_FILE
 *    bytes are refused. Time and memory are linear in the file size: each
 *    statement owns a copy of its key path and name, plus about 100 bytes
 *    (a file of nothing but "@=-" lines takes about 40 times its size).
 */
#ifndef TLSPATCH_REGFILE_H
#define TLSPATCH_REGFILE_H

#include <stddef.h>
#include <stdio.h>

#include "tlspatch/result.h"

/* The limits: a bigger file, or a value with more data, is refused. */
#define TP_REG_MAX_FILE (64u * 1024 * 1024)
#define TP_REG_MAX_DATA (1024u * 1024)

typedef enum {
  TP_REG_KEY,           /* [KEY]: the key exists (regedit creates it, and missing parents) */
  TP_REG_DELETE_KEY,    /* [-KEY]: delete the key and its subtree */
  TP_REG_SET_VALUE,     /* "name"=...: set the value (in the last [KEY]) */
  TP_REG_DELETE_VALUE,  /* "name"=-: delete the value */
} tp_reg_op;

typedef struct {
  tp_reg_op op;
  char *key;            /* the key path as written, UTF-8, without brackets, e.g. "HKEY_LOCAL_MACHINE\SOFTWARE\Foo" (trailing backslashes removed) */
  char *name;           /* value name in UTF-8 (escapes resolved); "" is the default value (@); NULL for TP_REG_KEY and TP_REG_DELETE_KEY */
  tp_value value;       /* TP_REG_SET_VALUE: the exact type and bytes the registry stores; otherwise all zero (!present) */
  unsigned line;        /* the line the statement starts on (1-based) */
  size_t position;      /* TP_REG_SET_VALUE: where a new value goes in its key's value list
                         * (1 = first; 0: appended). .reg files have no syntax for it: the
                         * parser leaves 0; undo records carry it (see undo.h) */
} tp_reg_entry;

typedef struct {
  char *path;           /* the file, as given */
  int version;          /* 5 ("Windows Registry Editor Version 5.00") or 4 ("REGEDIT4") */
  tp_reg_entry *entries;
  size_t n;
} tp_reg_file;

/* Parse `len` bytes of a .reg file named `path` (for messages). 0, or -1 with
 * one line in why: "PATH:LINE: what is wrong" (nothing is kept then). */
int tp_reg_parse (const char *path, const unsigned char *buf, size_t len, tp_reg_file *out,
                  char *why, size_t whylen);
/* Read a whole file of at most TP_REG_MAX_FILE bytes (malloc'd); I/O
 * errors as "PATH: strerror". */
int tp_reg_read_file (const char *path, unsigned char **buf, size_t *len, char *why,
                      size_t whylen);

/* Read the file and parse it; I/O errors as "PATH: strerror". */
int tp_reg_load (const char *path, tp_reg_file *out, char *why, size_t whylen);
void tp_reg_file_free (tp_reg_file *f);

/* Write one value statement in the syntax the parser reads: "name" (or
 * @ for the default value) = hex(N): with the exact type and bytes, or
 * =- for an absent value; a line of its own. */
void tp_reg_put_value (FILE *fp, const char *name, const tp_value *v);

#endif
