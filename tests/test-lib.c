/* tlspatch: unit tests of the library's pure parts (TAP output).
 * The end-to-end behaviour on real hive files is in the tests/ scripts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlspatch/bytes.h"
#include "tlspatch/reader.h"
#include "tlspatch/referee.h"
#include "tlspatch/tlspatch.h"

#include "tap.h"

static void
test_version_keys (void)
{
  static const char *yes[] = { "v2.0.50727", "v3.0", "V4.0.30319", "v1.0", "v4.5.50709", "v10.1" };
  static const char *no[] = { "v2.0 SP1", "v3.0 SP1", "policy", "Policy", "AppContext", "v4",
                              "v", "v4.", "v.4", "v4..0", "vx.0", "4.0.30319", "v4.0.30319 ",
                              "v4.0a", "Upgrades", "" };
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    ok (tp_netfx_is_version_key (yes[i]), "version key: %s", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    ok (!tp_netfx_is_version_key (no[i]), "not a version key: '%s'", no[i]);
}

static void
test_version_names (void)
{
  ok (tp_netfx_version_name (378388) == NULL, "Release 378388 is below 4.5");
  ok (strcmp (tp_netfx_version_name (379893), "4.5.2") == 0, "379893 is 4.5.2");
  ok (strcmp (tp_netfx_version_name (393295), "4.6") == 0, "393295 is 4.6");
  ok (strcmp (tp_netfx_version_name (461814), "4.7.2") == 0, "461814 is 4.7.2");
  ok (strcmp (tp_netfx_version_name (528449), "4.8") == 0, "528449 is 4.8");
  ok (strcmp (tp_netfx_version_name (533325), "4.8.1") == 0, "533325 is 4.8.1");
}

static unsigned char *
make_header (size_t size, uint32_t seq1, uint32_t seq2)
{
  unsigned char *buf = calloc (1, size);
  memcpy (buf, "regf", 4);
  tp_put32 (buf + 4, seq1);
  tp_put32 (buf + 8, seq2);
  tp_put32 (buf + 20, 1);
  tp_put32 (buf + 24, 5);
  tp_put32 (buf + 32, 1);
  tp_put32 (buf + 36, 32);
  tp_put32 (buf + 40, 4096);
  tp_put32 (buf + 508, tp_regf_checksum (buf));
  return buf;
}

static void
test_header (void)
{
  char why[256];
  tp_regf_header hdr;
  unsigned char *buf = make_header (8192, 7, 7);
  ok (tp_regf_check_primary (buf, 8192, &hdr, why, sizeof why) == 0, "clean header accepted");

  ok (tp_regf_check_primary (buf, 8191, &hdr, why, sizeof why) != 0 && strstr (why, "8 KiB"),
      "under 8 KiB refused: %s", why);
  tp_put32 (buf + 40, 8192);
  tp_put32 (buf + 508, tp_regf_checksum (buf));
  ok (tp_regf_check_primary (buf, 8192, &hdr, why, sizeof why) != 0 && strstr (why, "truncated"),
      "bins past the end refused: %s", why);
  free (buf);

  buf = make_header (8192, 8, 7);
  ok (tp_regf_check_primary (buf, 8192, &hdr, why, sizeof why) != 0 && strstr (why, "dirty"),
      "dirty hive refused: %s", why);
  ok (tp_regf_is_dirty (&hdr), "dirty state reported");
  free (buf);

  buf = make_header (8192, 1, 1);
  buf[100] ^= 1;
  ok (tp_regf_check_primary (buf, 8192, &hdr, why, sizeof why) != 0 && strstr (why, "checksum"),
      "bad checksum refused: %s", why);
  memcpy (buf, "regX", 4);
  ok (tp_regf_check_primary (buf, 8192, &hdr, why, sizeof why) != 0 && strstr (why, "signature"),
      "no signature refused: %s", why);
  free (buf);

  unsigned char zero[512] = { 0 };
  ok (tp_regf_checksum (zero) == 1, "checksum 0 is stored as 1");
  tp_put32 (zero, 0xFFFFFFFFu);
  ok (tp_regf_checksum (zero) == 0xFFFFFFFEu, "checksum -1 is stored as -2");
}

static void
test_undo_roundtrip (void)
{
  char path[] = "/tmp/tlspatch-undo-XXXXXX";
  int fd = mkstemp (path);
  close (fd);
  unlink (path);

  tp_result res;
  tp_result_init (&res, "/x/SOFTWARE");
  res.kind = TP_HIVE_SOFTWARE;
  unsigned char bytes[4];
  tp_value absent = { 0 }, one = tp_value_dword (1, bytes);
  tp_value one_copy;
  tp_value_copy (&one_copy, &one);
  unsigned char sz[] = { '1', 0, 0, 0 };
  tp_value str = { .present = true, .type = 1, .data = sz, .len = 4 };
  tp_result_add_change (&res, "\\Microsoft\\.NETFramework\\v4.0.30319", "SchUseStrongCrypto",
                        &absent, &one_copy);
  tp_result_add_change (&res, "\\Wow6432Node\\Microsoft\\.NETFramework\\v4.0.30319",
                        "Sch\"Use\\Strong", &str, &one_copy);

  tp_undo_writer *w = tp_undo_writer_new (path);
  ok (tp_undo_writer_record (w, &res) == 0, "undo record written");
  tp_undo_writer_free (w);

  w = tp_undo_writer_new (path);
  tp_result again;
  tp_result_init (&again, "/y");
  tp_result_add_change (&again, "\\A", "B", &absent, &one_copy);
  ok (tp_undo_writer_record (w, &again) != 0 && strstr (again.error, "exists"),
      "an existing undo file is never overwritten");
  tp_undo_writer_free (w);

  char why[256];
  tp_undo_doc *doc = tp_undo_load (path, why, sizeof why);
  ok (doc != NULL, "undo record parses back");
  tp_undo_free (doc);

  FILE *fp = fopen (path, "a");
  fputs ("garbage line\n", fp);
  fclose (fp);
  doc = tp_undo_load (path, why, sizeof why);
  ok (doc == NULL && strstr (why, "line"), "a damaged undo file is refused: %s", why);

  unlink (path);
  tp_value_free (&one_copy);
  tp_result_free (&res);
  tp_result_free (&again);
}

/* Build fixtures/software-server2019.reg into a new temp file `hive`
 * (a mkstemp template). 0, or -1 after a failed test line. */
static int
make_software_fixture (char *hive)
{
  const char *src = getenv ("top_srcdir"), *build = getenv ("top_builddir");
  char cmd[1024];
  int fd = mkstemp (hive);
  if (fd >= 0)
    close (fd);
  snprintf (cmd, sizeof cmd, "%s/tests/mkhive %s/fixtures/software-server2019.reg %s",
            build ? build : ".", src ? src : ".", hive);
  if (fd < 0 || system (cmd) != 0) {
    ok (0, "cannot build the fixture: %s", cmd);
    return -1;
  }
  return 0;
}

/* A hive whose \Wow6432Node subkey list is damaged: the 32-bit branch
 * must not look "absent" (which would let check say compliant). */
static void
test_damaged_list (void)
{
  char hive[] = "/tmp/tlspatch-damaged-XXXXXX";
  if (make_software_fixture (hive) < 0)
    return;
  FILE *fp = fopen (hive, "r+b");
  unsigned char *buf = calloc (1, 1 << 20);
  size_t len = fread (buf, 1, 1 << 20, fp);
  tp_regf r = { .buf = buf, .size = len, .minor = 5 };
  bool damaged = false;
  size_t wow = tp_regf_child (&r, tp_regf_root (&r), "Wow6432Node", &damaged);
  size_t list = wow ? (size_t) (buf[wow + 4 + 28] | buf[wow + 4 + 29] << 8 |
                                buf[wow + 4 + 30] << 16 | (size_t) buf[wow + 4 + 31] << 24) + 4096 : 0;
  ok (wow && list && !damaged, "found the \\Wow6432Node subkey list");
  fseek (fp, (long) list + 4, SEEK_SET);
  fwrite ("zz", 1, 2, fp);                    /* "lh" -> "zz" */
  fclose (fp);
  free (buf);

  tp_options opt;
  tp_options_init (&opt);
  opt.mode = TP_MODE_CHECK;
  tp_undo_ctx undo = { 0 };
  tp_result res;
  tp_result_init (&res, hive);
  tp_status st = tp_process_hive (&opt, hive, TP_HIVE_UNKNOWN, NULL, &undo, &res);
  ok (st == TP_STATUS_ERROR && res.error && strstr (res.error, "damaged"),
      "a damaged subkey list is an error, not an absent key: %s", res.error ? res.error : "-");
  tp_result_free (&res);
  unlink (hive);
}

/* hivex's second opinion on an audit: it agrees with what the fixture
 * holds (a value present with its bytes, one absent) and disagrees,
 * naming the key, with anything else. */
static void
test_referee_confirm (void)
{
  char hive[] = "/tmp/tlspatch-confirm-XXXXXX", why[512];
  if (make_software_fixture (hive) < 0)
    return;
  unsigned char zero[4] = { 0 }, one[4] = { 1 };
  tp_value v0 = { .present = true, .type = 4, .len = 4, .data = zero };
  tp_value v1 = { .present = true, .type = 4, .len = 4, .data = one };
  tp_value absent = { 0 };
  const char *v4 = "\\Microsoft\\.NETFramework\\v4.0.30319", *v2 = "\\Microsoft\\.NETFramework\\v2.0.50727";
  tp_referee_seen right[] = { { v4, "SchUseStrongCrypto", &v0 }, { v2, "SchUseStrongCrypto", &absent } };
  ok (tp_referee_confirm (hive, right, 2, why, sizeof why) == 0,
      "hivex confirms what the fixture holds");
  tp_referee_seen bytes[] = { { v4, "SchUseStrongCrypto", &v1 } };
  ok (tp_referee_confirm (hive, bytes, 1, why, sizeof why) < 0 && strstr (why, "v4.0.30319") &&
      strstr (why, "another type or bytes"), "hivex disagrees on bytes: %s", why);
  tp_referee_seen there[] = { { v2, "SchUseStrongCrypto", &v1 } };
  ok (tp_referee_confirm (hive, there, 1, why, sizeof why) < 0 && strstr (why, "lacks the value"),
      "hivex disagrees on presence: %s", why);
  tp_referee_seen gone[] = { { v4, "SchUseStrongCrypto", &absent } };
  ok (tp_referee_confirm (hive, gone, 1, why, sizeof why) < 0 && strstr (why, "tlspatch found absent"),
      "hivex disagrees on absence: %s", why);
  unlink (hive);
}

/* The keys that gain SchUseStrongCrypto sit close together in the
 * fixture (one 4 KiB page): their max-name / max-data hints must cover
 * the new value in the written file, read straight from its bytes (a
 * write of one key's counters once carried a neighbour's old hints). */
static void
test_hints_cover_new_values (void)
{
  char hive[] = "/tmp/tlspatch-hints-XXXXXX";
  if (make_software_fixture (hive) < 0)
    return;
  tp_options opt;
  tp_options_init (&opt);
  tp_undo_ctx undo = { 0 };
  tp_result res;
  tp_result_init (&res, hive);
  tp_status st = tp_process_hive (&opt, hive, TP_HIVE_UNKNOWN, NULL, &undo, &res);
  ok (st == TP_STATUS_PATCHED, "apply on the fixture: patched (%s)", res.error ? res.error : "-");
  tp_result_free (&res);

  FILE *fp = fopen (hive, "rb");
  unsigned char *buf = calloc (1, 1 << 20);
  size_t len = fp ? fread (buf, 1, 1 << 20, fp) : 0;
  if (fp)
    fclose (fp);
  tp_regf r = { .buf = buf, .size = len, .minor = 5 };
  static const char *const keys[][4] = {
    { "Microsoft", ".NETFramework", "v2.0.50727", NULL },
    { "Microsoft", ".NETFramework", "v3.0", NULL },
    { "Microsoft", ".NETFramework", "v4.0.30319", NULL },
    { "Wow6432Node", "Microsoft", ".NETFramework", "v2.0.50727" },
  };
  int good = 0;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    bool damaged = false;
    size_t nk = tp_regf_root (&r);
    for (size_t i = 0; nk && i < 4 && keys[k][i]; i++)
      nk = tp_regf_child (&r, nk, keys[k][i], &damaged);
    uint32_t max_name = nk ? tp_le32 (buf + nk + 4 + 60) : 0;
    uint32_t max_data = nk ? tp_le32 (buf + nk + 4 + 64) : 0;
    if (nk && max_name >= 2 * strlen ("SchUseStrongCrypto") && max_data >= 4)
      good++;
    else
      printf ("# %s\\%s: max name %u, max data %u\n", keys[k][1], keys[k][2], max_name,
              max_data);
  }
  ok (good == 4, "every key that gained the value has hints that cover it (%d of 4)", good);
  free (buf);
  unlink (hive);
}

int
main (void)
{
  test_version_keys ();
  test_version_names ();
  test_header ();
  test_undo_roundtrip ();
  test_damaged_list ();
  test_referee_confirm ();
  test_hints_cover_new_values ();
  printf ("1..%d\n", test_no);
  return failures ? 1 : 0;
}
