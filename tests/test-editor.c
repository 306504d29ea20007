/* tlspatch: unit tests of the record editor (writer.h) on
 * fixtures/keys.reg: refused edit lists, the records it writes (empty
 * and 1 MiB values, names, security reference counts, hints), and edit
 * lists whose later edits undo earlier ones. Each written hive is read
 * back with tp_regf_verify_edits. TAP output. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/reader.h"
#include "tlspatch/writer.h"

#include "tap.h"

typedef struct {
  unsigned char *buf;
  size_t size;
  tp_regf r;
} hive;

static int
load (const char *path, hive *h)
{
  int fd = open (path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0)
    return -1;
  h->size = (size_t) st.st_size;
  h->buf = malloc (h->size);
  ssize_t n = h->buf ? pread (fd, h->buf, h->size, 0) : -1;
  close (fd);
  if (n != (ssize_t) h->size)
    return -1;
  h->r = (tp_regf) { .buf = h->buf, .size = h->size, .minor = tp_le32 (h->buf + 24),
                     .bins_end = 4096 + (size_t) tp_le32 (h->buf + 40) };
  return 0;
}

/* fixtures/keys.reg built with mkhive (extra options in `opts`). */
static int
make_fixture (const char *opts, hive *h)
{
  const char *src = getenv ("top_srcdir"), *build = getenv ("top_builddir");
  char path[] = "/tmp/tlspatch-editor-XXXXXX", cmd[1024];
  int fd = mkstemp (path);
  if (fd >= 0)
    close (fd);
  snprintf (cmd, sizeof cmd, "%s/tests/mkhive %s %s/fixtures/keys.reg %s", build ? build : ".",
            opts, src ? src : ".", path);
  int rc = fd >= 0 && system (cmd) == 0 ? load (path, h) : -1;
  unlink (path);
  if (rc != 0)
    ok (0, "cannot build the fixture: %s", cmd);
  return rc;
}

/* Write `e` into a copy of `in` (the whole-file path), verify it, and
 * load the result into `out` (NULL: not needed). 0, or -1 with why. */
static int
edit (const hive *in, const tp_regf_edit *e, size_t n, hive *out, char *why, size_t whylen)
{
  char src[] = "/tmp/tlspatch-editor-XXXXXX", dst[] = "/tmp/tlspatch-editor-XXXXXX";
  int sfd = mkstemp (src), dfd = mkstemp (dst);
  int rc = sfd >= 0 && dfd >= 0 && pwrite (sfd, in->buf, in->size, 0) == (ssize_t) in->size
           ? 0 : -1;
  if (rc != 0)
    snprintf (why, whylen, "cannot make temp files");
  if (rc == 0)
    rc = tp_regf_write_edits (dfd, sfd, in->buf, in->size, e, n, why, whylen);
  if (rc == 0)
    rc = tp_regf_verify_edits (dfd, e, n, why, whylen);
  if (rc == 0 && out && load (dst, out) != 0)
    rc = -1, snprintf (why, whylen, "cannot read the result");
  close (sfd);
  close (dfd);
  unlink (src);
  unlink (dst);
  return rc;
}

/* The key at a path (ASCII names), 0 when absent. */
static size_t
key (const hive *h, const char *path)
{
  char *copy = strdup (path), *save = NULL;
  size_t nk = tp_regf_root (&h->r);
  bool damaged = false;
  for (char *p = strtok_r (copy, "\\", &save); p && nk; p = strtok_r (NULL, "\\", &save))
    nk = tp_regf_child (&h->r, nk, p, &damaged);
  free (copy);
  return nk;
}

/* A 32-bit field of a record's payload. */
static uint32_t
field (const hive *h, size_t cell, size_t off)
{
  return tp_le32 (h->buf + cell + 4 + off);
}

static tp_regf_edit
set (const char *k, const char *name, const tp_value *v)
{
  return (tp_regf_edit) { .op = TP_EDIT_SET_VALUE, .key = k, .name = name, .value = v };
}

static tp_regf_edit
op (tp_regf_op o, const char *k, const char *name)
{
  return (tp_regf_edit) { .op = o, .key = k, .name = name };
}

static void
refused (const hive *h, const tp_regf_edit *e, size_t n, const char *word, const char *what)
{
  char why[256] = "";
  int rc = edit (h, e, n, NULL, why, sizeof why);
  ok (rc != 0 && strstr (why, word) && !strchr (why, '\n'), "refused: %s (%s)", what, why);
}

static void
test_refusals (const hive *h)
{
  unsigned char d[4] = { 1, 0, 0, 0 };
  tp_value dword = { .present = true, .type = 4, .data = d, .len = 4 };
  tp_value huge = { .present = true, .type = 3, .data = d, .len = TP_REGF_MAX_DATA + 1 };
  tp_regf_edit e[2];
  e[0] = op (TP_EDIT_DELETE_KEY, "\\Software\\Nope", NULL);
  refused (h, e, 1, "does not exist", "deleting a missing key");
  e[0] = op (TP_EDIT_CREATE_KEY, "\\software\\VENDOR", NULL);
  refused (h, e, 1, "exists", "creating an existing key (case-insensitive)");
  e[0] = op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Alpha", NULL);
  e[1] = set ("\\Software\\Vendor\\Alpha", "A", &dword);
  refused (h, e, 2, "does not exist", "a value in a key deleted earlier in the list");
  e[0] = op (TP_EDIT_CREATE_KEY, "\\Nope\\Child", NULL);
  refused (h, e, 1, "parent", "creating a key whose parent is missing");
  e[0] = op (TP_EDIT_DELETE_KEY, "\\", NULL);
  refused (h, e, 1, "root", "deleting the root");
  e[0] = op (TP_EDIT_DELETE_VALUE, "\\Software", "Nope");
  refused (h, e, 1, "does not exist", "deleting a missing value");
  e[0] = set ("\\Software", "Huge", &huge);
  refused (h, e, 1, "1 MiB", "a value over 1 MiB");
  e[0] = op (TP_EDIT_CREATE_KEY, "\\Software\\\\Empty", NULL);
  refused (h, e, 1, "invalid", "an empty path component");
}

static void
test_empty_and_huge (const hive *h5, const hive *h3)
{
  static unsigned char mib[TP_REGF_MAX_DATA];
  memset (mib, 0x3c, sizeof mib);
  mib[0] = 1;
  mib[sizeof mib - 1] = 2;
  tp_value empty = { .present = true, .type = 1, .data = mib, .len = 0 };
  tp_value big = { .present = true, .type = 3, .data = mib, .len = sizeof mib };
  tp_regf_edit e[2] = { set ("\\Software", "Empty", &empty), set ("\\Software", "Mib", &big) };
  char why[256] = "";
  hive out = { 0 };
  int rc = edit (h5, e, 2, &out, why, sizeof why);
  ok (rc == 0, "an empty and a 1 MiB value written and read back (1.5): %s", rc ? why : "ok");
  bool damaged = false;
  size_t sw = rc == 0 ? key (&out, "\\Software") : 0;
  size_t vk = sw ? tp_regf_value (&out.r, sw, "Empty", &damaged, NULL) : 0;
  ok (vk && field (&out, vk, 4) == 0x80000000u && field (&out, vk, 8) == 0,
      "the empty value: inline, size 0 (hivex cannot read size 0 with offset 0xFFFFFFFF)");
  vk = sw ? tp_regf_value (&out.r, sw, "Mib", &damaged, NULL) : 0;
  size_t db = vk ? (size_t) field (&out, vk, 8) + 4096 : 0;
  ok (db && memcmp (out.buf + db + 4, "db", 2) == 0 && tp_le16 (out.buf + db + 6) == 65,
      "the 1 MiB value: a db record with 65 segments");
  ok (sw && field (&out, sw, 64) >= sizeof mib, "the key's max-data hint covers 1 MiB");
  free (out.buf);
  out.buf = NULL;

  rc = edit (h3, e, 2, &out, why, sizeof why);
  ok (rc == 0, "an empty and a 1 MiB value written and read back (1.3): %s", rc ? why : "ok");
  sw = rc == 0 ? key (&out, "\\Software") : 0;
  vk = sw ? tp_regf_value (&out.r, sw, "Mib", &damaged, NULL) : 0;
  size_t cell = vk ? (size_t) field (&out, vk, 8) + 4096 : 0;
  ok (cell && (uint32_t) -(int32_t) tp_le32 (out.buf + cell) >= sizeof mib + 4,
      "1.3 has no big data: the 1 MiB value is one cell");
  free (out.buf);
}

static void
test_names_and_hints (hive *h)
{
  unsigned char d[4] = { 7, 0, 0, 0 };
  tp_value dword = { .present = true, .type = 4, .data = d, .len = 4 };
  char long_name[300] = "\\Software\\";
  memset (long_name + strlen (long_name), 'n', 200);
  /* flags in the high bits of the max-subkey-name field must stay */
  size_t sw = key (h, "\\Software");
  tp_put32 (h->buf + sw + 4 + 52, tp_le32 (h->buf + sw + 4 + 52) | 0x00050000u);
  tp_regf_edit e[] = {
    op (TP_EDIT_CREATE_KEY, "\\Software\\Caf\xc3\xa9", NULL),
    set ("\\Software\\Caf\xc3\xa9", "\xd0\x98\xd0\xbc\xd1\x8f", &dword),
    op (TP_EDIT_CREATE_KEY, long_name, NULL),
    set ("\\Software", "", &dword),
  };
  char why[256] = "";
  hive out = { 0 };
  int rc = edit (h, e, 4, &out, why, sizeof why);
  ok (rc == 0, "names written and read back: %s", rc ? why : "ok");
  bool damaged = false;
  size_t cafe = rc == 0 ? key (&out, "\\Software") : 0;
  size_t sw2 = cafe;
  size_t n, *kids = cafe ? tp_regf_children (&out.r, cafe, &n) : NULL;
  cafe = 0;
  for (size_t i = 0; kids && i < n && !cafe; i++) {
    char *name = tp_regf_key_name (&out.r, kids[i]);
    if (name && strcmp (name, "Caf\xc3\xa9") == 0)
      cafe = kids[i];
    free (name);
  }
  free (kids);
  ok (cafe && (tp_le16 (out.buf + cafe + 6) & 0x20) && tp_le16 (out.buf + cafe + 4 + 72) == 4,
      "a Latin-1 key name is stored compressed (flag 0x20, 4 bytes)");
  size_t *list = cafe ? tp_regf_values (&out.r, cafe, &n) : NULL;
  size_t vals = list && n == 1 ? list[0] : 0;
  free (list);
  ok (vals && tp_le16 (out.buf + vals + 4 + 16) == 0 && tp_le16 (out.buf + vals + 4 + 2) == 6,
      "a Cyrillic value name is stored UTF-16LE (flag 0, 6 bytes)");
  ok (sw2 && field (&out, sw2, 52) == (0x00050000u | 400),
      "the parent's max subkey name: low 16 bits 400 (200 UTF-16 chars), flags kept");
  size_t def = sw2 ? tp_regf_value (&out.r, sw2, "", &damaged, NULL) : 0;
  ok (def && tp_le16 (out.buf + def + 4 + 2) == 0, "the default value has an empty name");
  free (out.buf);
}

/* The root's sk and its reference count. */
static uint32_t
sk_count (const hive *h, size_t *sk)
{
  *sk = (size_t) field (h, tp_regf_root (&h->r), 44) + 4096;
  return field (h, *sk, 12);
}

static void
test_sk_counts (const hive *h)
{
  size_t sk, sk2;
  uint32_t before = sk_count (h, &sk);
  size_t child = key (h, "\\Software\\Vendor\\Doomed\\Child");
  size_t own = child ? (size_t) field (h, child, 44) + 4096 : 0;
  ok (own && own != sk && field (h, own, 12) == 1 && field (h, sk, 4) == own - 4096,
      "the fixture: Doomed\\Child has an sk of its own, count 1, after the shared one");
  tp_regf_edit e[] = {
    op (TP_EDIT_CREATE_KEY, "\\Software\\One", NULL),
    op (TP_EDIT_CREATE_KEY, "\\Software\\One\\Two", NULL),
    op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Doomed", NULL),
  };
  char why[256] = "";
  hive out = { 0 };
  int rc = edit (h, e, 3, &out, why, sizeof why);
  uint32_t after = rc == 0 ? sk_count (&out, &sk2) : 0;
  ok (rc == 0 && sk2 == sk && after == before + 2 - 3,
      "the shared sk's count: %u + 2 created - 3 deleted = %u (%s)", before, after,
      rc ? why : "ok");
  ok (rc == 0 && memcmp (out.buf + sk + 4, "sk", 2) == 0 && (int32_t) tp_le32 (out.buf + sk) < 0,
      "the shared sk stays allocated");
  ok (rc == 0 && own && field (&out, own, 12) == 0 && (int32_t) tp_le32 (out.buf + own) < 0 &&
      field (&out, sk, 4) == own - 4096 && field (&out, sk, 8) == own - 4096 &&
      field (&out, own, 4) == sk - 4096,
      "an sk whose count reaches 0 stays allocated and linked, count 0");
  free (out.buf);
}

static void
test_sequences (const hive *h)
{
  unsigned char d[4] = { 9, 0, 0, 0 };
  tp_value dword = { .present = true, .type = 4, .data = d, .len = 4 };
  tp_regf_edit e[] = {
    op (TP_EDIT_CREATE_KEY, "\\Software\\Temp", NULL),
    set ("\\Software\\Temp", "V", &dword),
    op (TP_EDIT_DELETE_KEY, "\\Software\\Temp", NULL),
    op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Alpha", NULL),
    op (TP_EDIT_CREATE_KEY, "\\Software\\Vendor\\ALPHA", NULL),
    set ("\\Software\\Vendor\\alpha", "B", &dword),
    op (TP_EDIT_DELETE_VALUE, "\\Software\\Vendor", "Existing"),
    set ("\\Software\\Vendor", "existing", &dword),
    op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Doomed\\Child", NULL),
    op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Doomed", NULL),
  };
  char why[256] = "";
  hive out = { 0 };
  int rc = edit (h, e, sizeof e / sizeof e[0], &out, why, sizeof why);
  ok (rc == 0, "later edits undoing earlier ones: written and verified (%s)", rc ? why : "ok");
  bool damaged = false;
  size_t alpha = rc == 0 ? key (&out, "\\Software\\Vendor\\Alpha") : 0;
  ok (alpha && !tp_regf_value (&out.r, alpha, "A", &damaged, NULL) &&
      tp_regf_value (&out.r, alpha, "B", &damaged, NULL),
      "a key deleted and created again has only its new values");
  ok (rc == 0 && !key (&out, "\\Software\\Temp") && !key (&out, "\\Software\\Vendor\\Doomed"),
      "a key created and deleted in one list, and a subtree deleted child first, are gone");
  size_t vendor = rc == 0 ? key (&out, "\\Software\\Vendor") : 0;
  size_t ex = vendor ? tp_regf_value (&out.r, vendor, "Existing", &damaged, NULL) : 0;
  ok (ex && field (&out, ex, 12) == 4, "a value deleted and set again holds the new value");
  free (out.buf);
}

/* The names of a key's values in list order, joined by commas. */
static void
value_names (const hive *h, const char *path, char *out, size_t outlen)
{
  size_t nk = key (h, path), n = 0;
  size_t *offs = nk ? tp_regf_values (&h->r, nk, &n) : NULL;
  out[0] = '\0';
  for (size_t i = 0; offs && i < n; i++) {
    char *name = tp_regf_value_name (&h->r, offs[i]);
    size_t used = strlen (out);
    snprintf (out + used, outlen - used, "%s%s", i ? "," : "", name ? name : "?");
    free (name);
  }
  free (offs);
}

/* Values placed by position: inserted in increasing position whatever
 * the order of the edits, after the kept and appended ones are laid
 * out; a position past the end is last. */
static void
test_positions (hive *h)
{
  tp_value dword = { .present = true, .type = 4, .data = (unsigned char *) "\1\0\0\0", .len = 4 };
  tp_regf_edit e[] = {
    op (TP_EDIT_DELETE_VALUE, "\\Software\\Vendor", "Existing"),
    op (TP_EDIT_DELETE_VALUE, "\\Software\\Vendor", ""),
    set ("\\Software\\Vendor", "New", &dword),
    set ("\\Software\\Vendor", "", &dword),
    set ("\\Software\\Vendor", "Existing", &dword),
    op (TP_EDIT_CREATE_KEY, "\\Software\\Placed", NULL),
    set ("\\Software\\Placed", "A", &dword),
    set ("\\Software\\Placed", "B", &dword),
    set ("\\Software\\Placed", "Far", &dword),
  };
  e[3].position = 3;
  e[4].position = 1;
  e[7].position = 1;
  e[8].position = 99;
  char why[256] = "", names[256];
  hive out = { 0 };
  int rc = edit (h, e, sizeof e / sizeof e[0], &out, why, sizeof why);
  ok (rc == 0, "values placed by position: written and verified (%s)", rc ? why : "ok");
  value_names (&out, "\\Software\\Vendor", names, sizeof names);
  ok (rc == 0 && strcmp (names, "Existing,Neighbour,,New") == 0,
      "an existing key: deleted values back at positions 1 and 3, the new one last (%s)", names);
  value_names (&out, "\\Software\\Placed", names, sizeof names);
  ok (rc == 0 && strcmp (names, "B,A,Far") == 0,
      "a created key: B placed first, a position past the end last (%s)", names);
  free (out.buf);
}

/* Existing entries keep their hashes as found (Windows' own uppercase
 * table may differ from ours beyond Latin-1, Greek and Cyrillic); new
 * ones go in by name. */
static void
test_existing_entries_kept (hive *h)
{
  size_t vendor = key (h, "\\Software\\Vendor");
  size_t list = vendor ? (size_t) field (h, vendor, 28) + 4096 : 0;
  unsigned char *l = list ? h->buf + list + 4 : NULL;
  ok (l && memcmp (l, "lh", 2) == 0 && tp_le16 (l + 2) == 3, "the fixture: Vendor has an lh of 3");
  if (!l)
    return;
  uint32_t hash = tp_le32 (l + 16);
  tp_put32 (l + 16, 0x12345678u);              /* Doomed's hash, as "Windows" wrote it */
  tp_regf_edit e[] = { op (TP_EDIT_CREATE_KEY, "\\Software\\Vendor\\Beta", NULL) };
  char why[256] = "";
  hive out = { 0 };
  int rc = edit (h, e, 1, &out, why, sizeof why);
  size_t v2 = rc == 0 ? key (&out, "\\Software\\Vendor") : 0;
  unsigned char *m = v2 ? out.buf + (size_t) field (&out, v2, 28) + 4096 + 4 : NULL;
  char *name = m ? tp_regf_key_name (&out.r, (size_t) tp_le32 (m + 12) + 4096) : NULL;
  ok (m && tp_le16 (m + 2) == 4 && memcmp (m + 4, l + 4, 8) == 0 &&
      memcmp (m + 20, l + 12, 16) == 0, "old entries keep their order and hashes (%s)",
      rc ? why : "ok");
  ok (name && strcmp (name, "Beta") == 0,
      "the new key goes in by name (after Alpha, before Doomed)");
  free (name);
  tp_put32 (l + 16, hash);
  free (out.buf);
}

/* A hostile hive with two values of one name (case aside), or two
 * subkeys of one name: edits there are refused. */
static void
test_duplicates (hive *h)
{
  bool damaged = false;
  size_t doomed = key (h, "\\Software\\Vendor\\Doomed");
  size_t huge = doomed ? tp_regf_value (&h->r, doomed, "Huge", &damaged, NULL) : 0;
  unsigned char d[4] = { 1, 0, 0, 0 };
  tp_value dword = { .present = true, .type = 4, .data = d, .len = 4 };
  ok (huge != 0, "the fixture: Doomed holds Huge");
  if (!huge)
    return;
  memcpy (h->buf + huge + 4 + 20, "BLOB", 4);
  tp_regf_edit e[] = { set ("\\Software\\Vendor\\Doomed", "Blob", &dword) };
  refused (h, e, 1, "two values", "a value in a key holding two values of its name");
  memcpy (h->buf + huge + 4 + 20, "Huge", 4);
  /* Doomed, next to Alpha in the sorted list, renamed ALPHA */
  size_t doomed_nk = key (h, "\\Software\\Vendor\\Doomed");
  tp_put16 (h->buf + doomed_nk + 4 + 72, 5);
  memcpy (h->buf + doomed_nk + 4 + 76, "ALPHA", 5);
  tp_regf_edit c[] = { op (TP_EDIT_CREATE_KEY, "\\Software\\Vendor\\Alpha\\X", NULL) };
  refused (h, c, 1, "damaged", "a key under a name listed twice");
  tp_put16 (h->buf + doomed_nk + 4 + 72, 6);
  memcpy (h->buf + doomed_nk + 4 + 76, "Doomed", 6);
  /* Zeta, apart from Alpha (an unsorted list), renamed ALPHA */
  size_t zeta = key (h, "\\Software\\Vendor\\Zeta");
  if (!zeta || (uint32_t) -(int32_t) tp_le32 (h->buf + zeta) < 4 + 76 + 5)
    return;
  tp_put16 (h->buf + zeta + 4 + 72, 5);
  memcpy (h->buf + zeta + 4 + 76, "ALPHA", 5);
  tp_regf_edit del[] = { op (TP_EDIT_DELETE_KEY, "\\Software\\Vendor\\Alpha", NULL) };
  refused (h, del, 1, "two subkeys", "deleting a key whose name is listed twice, apart");
  tp_put16 (h->buf + zeta + 4 + 72, 4);
  memcpy (h->buf + zeta + 4 + 76, "Zeta\0", 5);
}

int
main (void)
{
  hive h5 = { 0 }, h3 = { 0 };
  if (make_fixture ("", &h5) == 0 && make_fixture ("--minor 3", &h3) == 0) {
    test_refusals (&h5);
    test_empty_and_huge (&h5, &h3);
    test_sk_counts (&h5);
    test_sequences (&h5);
    test_existing_entries_kept (&h5);
    test_positions (&h5);
    test_duplicates (&h5);
    test_names_and_hints (&h5);
  }
  free (h5.buf);
  free (h3.buf);
  printf ("1..%d\n", test_no);
  return failures ? 1 : 0;
}
