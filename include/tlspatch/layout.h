/* tlspatch: the regf file layout, described once.
 *
 * Every offset of the base block, hive bins, cells and records that the
 * reader, the editor, the recovery and the checks use is named here,
 * each field with what it holds (regf-format-specification.md: "Base
 * block", "Hive bin", "Cell", the records). Record offsets are from the
 * start of the cell's payload (its signature), after the 4-byte cell
 * size. Offsets stored in records are relative to the start of the hive
 * bins (file offset - TP_REGF_BINS); TP_REGF_NONE points nowhere.
 *
 * Also here: the base block checksum and the codecs of key and value
 * names (Latin-1 "compressed" or UTF-16LE on disk, UTF-8 in memory).
 */
#ifndef TLSPATCH_LAYOUT_H
#define TLSPATCH_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- File ---------------------------------------------------------- */
#define TP_REGF_BINS            4096    /* the hive bins data starts after the base block */
#define TP_REGF_NONE            0xFFFFFFFFu

/* ---- Base block (file offset 0, 4096 bytes) ------------------------ */
#define TP_BB_SIGNATURE         0       /* "regf" */
#define TP_BB_SEQ1              4       /* primary sequence number: bumped before a write */
#define TP_BB_SEQ2              8       /* secondary: set equal after it; differ = dirty */
#define TP_BB_TIMESTAMP         12      /* FILETIME of the last write (8 bytes) */
#define TP_BB_MAJOR             20      /* 1 */
#define TP_BB_MINOR             24      /* 3, 4, 5 (big data from 4, lh lists from 5) */
#define TP_BB_FILE_TYPE         28      /* 0 primary, 1/2 old-format log, 6 new-format log */
#define TP_BB_FILE_FORMAT       32      /* 1: direct memory load */
#define TP_BB_ROOT              36      /* root key's nk cell (relative) */
#define TP_BB_BINS_SIZE         40      /* hive bins data size, a multiple of 4096 */
#define TP_BB_CLUSTERING        44      /* clustering factor (log files: sectors per cluster) */
#define TP_BB_FILE_NAME         48      /* the last 31 UTF-16 units of the hive's path (64 bytes) */
#define TP_BB_FLAGS             144     /* bit 0: a KTM transaction is pending */
#define TP_BB_CHECKSUM          508     /* XOR-32 of bytes 0-507 (tp_regf_checksum) */
#define TP_BB_CHECKED_BYTES     508
#define TP_BB_SECTOR            512     /* everything a write changes lies in the first sector */

/* ---- Hive bin (4096-byte aligned, 32-byte header) ------------------ */
#define TP_HBIN_SIGNATURE       0       /* "hbin" */
#define TP_HBIN_OFFSET          4       /* this bin's offset (relative) */
#define TP_HBIN_SIZE            8       /* a multiple of 4096 */
#define TP_HBIN_HEADER          32      /* the first cell follows */
#define TP_HBIN_ALIGN           4096

/* ---- Cell: a 4-byte size, then the payload --------------------------
 * size < 0: allocated, -size bytes in all; size > 0: free. 8-aligned. */
#define TP_CELL_HEADER          4
#define TP_CELL_ALIGN           8

/* ---- Key node "nk" ---------------------------------------------------- */
#define TP_NK_SIGNATURE         0       /* "nk" */
#define TP_NK_FLAGS             2       /* TP_NK_COMP_NAME, root 0x04, ... (16 bits) */
#define TP_NK_LAST_WRITTEN      4       /* FILETIME (8 bytes) */
#define TP_NK_ACCESS_BITS       12
#define TP_NK_PARENT            16      /* the parent's nk (relative) */
#define TP_NK_SUBKEY_COUNT      20
#define TP_NK_VOLATILE_COUNT    24
#define TP_NK_SUBKEY_LIST       28      /* li / lf / lh / ri (relative) */
#define TP_NK_VOLATILE_LIST     32
#define TP_NK_VALUE_COUNT       36
#define TP_NK_VALUE_LIST        40      /* an array of vk offsets (relative) */
#define TP_NK_SECURITY          44      /* the sk (relative) */
#define TP_NK_CLASS             48      /* the class name's cell (relative) */
#define TP_NK_MAX_SUBKEY_NAME   52      /* longest subkey name, UTF-16 bytes (low 16 bits; the rest flags) */
#define TP_NK_MAX_CLASS         56      /* longest subkey class, bytes */
#define TP_NK_MAX_VALUE_NAME    60      /* longest value name, UTF-16 bytes */
#define TP_NK_MAX_VALUE_DATA    64      /* largest value data, bytes */
#define TP_NK_WORK_VAR          68
#define TP_NK_NAME_LENGTH       72      /* bytes (16 bits) */
#define TP_NK_CLASS_LENGTH      74      /* bytes (16 bits) */
#define TP_NK_NAME              76      /* the name follows */
#define TP_NK_FIXED             76
#define TP_NK_COMP_NAME         0x0020  /* the name is Latin-1 ("compressed"), else UTF-16LE */
#define TP_NK_MAX_NAME_CHARS    255     /* Windows' limit on a key name: longer is damage */

/* ---- Key value "vk" --------------------------------------------------- */
#define TP_VK_SIGNATURE         0       /* "vk" */
#define TP_VK_NAME_LENGTH       2       /* bytes; 0: the key's default value */
#define TP_VK_DATA_SIZE         4       /* bytes; TP_VK_DATA_INLINE set: in the offset field */
#define TP_VK_DATA              8       /* the data's cell (relative), or the data itself */
#define TP_VK_TYPE              12      /* REG_* */
#define TP_VK_FLAGS             16      /* TP_VK_COMP_NAME; 0x0002 tombstone */
#define TP_VK_SPARE             18
#define TP_VK_NAME              20      /* the name follows */
#define TP_VK_FIXED             20
#define TP_VK_DATA_INLINE       0x80000000u     /* 4 bytes or less, stored in TP_VK_DATA */
#define TP_VK_COMP_NAME         0x0001

/* ---- Security "sk" ---------------------------------------------------- */
#define TP_SK_SIGNATURE         0       /* "sk" */
#define TP_SK_FLINK             4       /* next sk in the hive's ring (relative) */
#define TP_SK_BLINK             8       /* previous sk */
#define TP_SK_REFERENCES        12      /* keys that use it */
#define TP_SK_DESCRIPTOR_SIZE   16
#define TP_SK_FIXED             20

/* ---- Big data "db" (minor >= 4, data over TP_REGF_BIG_DATA_LIMIT) ----- */
#define TP_DB_SIGNATURE         0       /* "db" */
#define TP_DB_SEGMENTS          2       /* number of segments (16 bits) */
#define TP_DB_SEGMENT_LIST      4       /* an array of segment cells (relative) */
#define TP_DB_FIXED             8
#define TP_DB_SEGMENT_SIZE      16344   /* bytes of data in each full segment */

/* ---- Subkey lists ----------------------------------------------------
 * "li": offsets; "lf": offset + first 4 name characters; "lh": offset +
 * name hash (tp_regf_name_hash); "ri": offsets of li/lf/lh lists. */
#define TP_LIST_SIGNATURE       0
#define TP_LIST_COUNT           2       /* 16 bits */
#define TP_LIST_ITEMS           4
#define TP_LIST_ITEM            4       /* li, ri: one offset */
#define TP_LIST_HASHED_ITEM     8       /* lf, lh: an offset and a hint */

/* ---- Functions -------------------------------------------------------- */

/* XOR-32 of the base block's first 508 bytes, with the spec's special
 * cases (0 is stored as 1, 0xFFFFFFFF as 0xFFFFFFFE). */
uint32_t tp_regf_checksum (const unsigned char *base_block);

/* The stored checksum is right: the spec's, or the raw XOR that hivex
 * writes (a clean hive hivex wrote must not look damaged). */
bool tp_regf_checksum_valid (const unsigned char *base_block);

/* A subkey list's payload of `len` bytes: 0 with its element count,
 * the step between elements (TP_LIST_ITEM or TP_LIST_HASHED_ITEM) and
 * whether it is an ri (its elements are lists); -1 when it is not a
 * list or its elements do not fit. Element i's offset (relative) is at
 * list + TP_LIST_ITEMS + i * step. */
int tp_regf_list_shape (const unsigned char *list, size_t len, size_t *count, size_t *step,
                        bool *ri);

/* A name as stored (Latin-1 when `compressed`, else UTF-16LE; `len`
 * bytes) in UTF-8, up to a NUL (malloc'd; NULL when out of memory).
 * UTF-16 surrogates pass through one unit at a time (names only
 * compare); product names and such use tp_regf_utf16_string. */
char *tp_regf_name_to_utf8 (const unsigned char *name, size_t len, bool compressed);

/* Names compared as Windows compares (and orders) them: code units
 * uppercased by its table for ASCII, Latin-1, Greek and Cyrillic, the
 * others as they are. The one comparison of names: the reader's
 * lookups, the planner's and the editor's all use it. */
uint16_t tp_regf_upcase (uint16_t c);
int tp_regf_name_cmp (const uint16_t *a, size_t na, const uint16_t *b, size_t nb);
/* The same on UTF-8 names and paths (bytes compared as they are from
 * the first invalid sequence on). */
int tp_regf_name_casecmp (const char *a, const char *b);
/* The length in bytes of s's part that equals `prefix` so compared, or
 * (size_t) -1 when s does not start with it. */
size_t tp_regf_name_prefix (const char *s, const char *prefix);

/* A UTF-8 name as UTF-16 code units (malloc'd, *n units); 3-byte
 * encodings of surrogates (what tp_regf_name_to_utf8 gives for UTF-16
 * names that are not valid UTF-16) give those units. NULL when invalid
 * or holding a NUL. */
uint16_t *tp_regf_utf16_from_utf8 (const char *utf8, size_t *n);

/* A REG_SZ's UTF-16LE data as UTF-8 up to its first NUL; surrogates
 * become U+FFFD (malloc'd; NULL when out of memory). */
char *tp_regf_utf16_string (const unsigned char *data, size_t len);

#endif
