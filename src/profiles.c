/* tlspatch: the profiles' tables (see profiles.h). Every value and its
 * source is in docs: registry-settings.md and tls-profiles.md of the
 * reference notes, summed up in the README's "PCI TLS hardening". */
#include <string.h>

#include "tlspatch/netfx.h"
#include "tlspatch/profiles.h"

#define SW "HKEY_LOCAL_MACHINE\\SOFTWARE"
#define SYS "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet"
#define NETFX_64 SW TP_NETFX_64
#define NETFX_32 SW TP_NETFX_32
#define WINHTTP "Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp"
#define PROTOCOLS SYS "\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\"

/* Windows 8.1 / Server 2012 R2: WinHTTP has TLS 1.2 by default from here. */
#define BUILD_WINHTTP_TLS12 9600

#define STRONG_WHY "KB 4033999: .NET passes SCH_USE_STRONG_CRYPTO to SCHANNEL (no SSL 3.0, " \
  "no RC4; TLS 1.2 allowed)"
#define SDT_WHY "let SCHANNEL choose the TLS version (the system's, TLS 1.2 here)"

/* ------------------------------------------------------------------ */
/* kb4033999                                                          */

static const tp_rule kb4033999_rules[] = {
  { .kind = TP_SETTING_NETFX_CHECK, .key = SW,
    .text = "KB 4033999 needs .NET Framework 4.6 or later" },
  { .kind = TP_SETTING_REG, .key = NETFX_64, .name = "SchUseStrongCrypto", .dword = 1,
    .flags = TP_RULE_EVERY_VERSION_KEY, .text = STRONG_WHY },
  { .kind = TP_SETTING_REG, .key = NETFX_64, .name = "SystemDefaultTlsVersions", .dword = 1,
    .flags = TP_RULE_EVERY_VERSION_KEY | TP_RULE_OPTION_SDT, .text = SDT_WHY },
  { .kind = TP_SETTING_REG, .key = NETFX_32, .name = "SchUseStrongCrypto", .dword = 1,
    .flags = TP_RULE_EVERY_VERSION_KEY, .text = STRONG_WHY " (32-bit programs)" },
  { .kind = TP_SETTING_REG, .key = NETFX_32, .name = "SystemDefaultTlsVersions", .dword = 1,
    .flags = TP_RULE_EVERY_VERSION_KEY | TP_RULE_OPTION_SDT, .text = SDT_WHY " (32-bit programs)" },
  { .kind = TP_SETTING_SERVICE_START, .key = SYS "\\Services",
    .text = "KB 4033999 restarts obengine after the change; offline, it starts at the next boot" },
};

static const tp_profile kb4033999 = {
  .name = "kb4033999",
  .brief = "KB 4033999: .NET strong crypto, obengine",
  .summary = "KB 4033999: .NET strong crypto under every version key, obengine started at "
             "the next boot (the default)",
  .rules = kb4033999_rules,
  .n_rules = sizeof kb4033999_rules / sizeof kb4033999_rules[0],
};

/* ------------------------------------------------------------------ */
/* pci                                                                */

#define PROTOCOL_SIDE(p, side, enabled, why)                                    \
  { .kind = TP_SETTING_REG, .key = PROTOCOLS p "\\" side, .name = "Enabled",    \
    .dword = (enabled), .text = why },                                          \
  { .kind = TP_SETTING_REG, .key = PROTOCOLS p "\\" side, .name = "DisabledByDefault", \
    .dword = !(enabled), .text = why }
#define PROTOCOL(p, enabled, why) \
  PROTOCOL_SIDE (p, "Client", enabled, why), PROTOCOL_SIDE (p, "Server", enabled, why)

#define OFF_WHY "PCI DSS: no SSL, no early TLS"
#define SDT_V(branch, v, why)                                                   \
  { .kind = TP_SETTING_REG, .key = branch "\\" v, .name = "SystemDefaultTlsVersions", \
    .dword = 1, .flags = TP_RULE_EXISTING_KEY, .text = why }

static const tp_rule pci_rules[] = {
  PROTOCOL ("SSL 2.0", 0, OFF_WHY " (SSL 2.0 is gone from Windows 10 1607 / Server 2016 on; "
            "harmless there)"),
  PROTOCOL ("SSL 3.0", 0, OFF_WHY),
  PROTOCOL ("TLS 1.0", 0, OFF_WHY),
  PROTOCOL ("TLS 1.1", 0, OFF_WHY),
  PROTOCOL ("TLS 1.2", 1, "TLS 1.2 on (off by default on Windows 7 / Server 2008 R2; on by "
            "default from 2012, written to make the audit explicit)"),
  SDT_V (NETFX_64, "v4.0.30319", ".NET 4.x: " SDT_WHY),
  SDT_V (NETFX_64, "v2.0.50727", ".NET 3.5: " SDT_WHY " (honoured with KB3154518/19/20 "
         "or later)"),
  SDT_V (NETFX_32, "v4.0.30319", ".NET 4.x, 32-bit programs: " SDT_WHY),
  SDT_V (NETFX_32, "v2.0.50727", ".NET 3.5, 32-bit programs: " SDT_WHY),
  { .kind = TP_SETTING_REG, .key = SW "\\" WINHTTP, .name = "DefaultSecureProtocols",
    .dword = 0x800, .build_below = BUILD_WINHTTP_TLS12,
    .text = "WinHTTP: TLS 1.2 only (0x800); from build 9600 on WinHTTP has TLS 1.2 by "
            "default and the value would only narrow it" },
  { .kind = TP_SETTING_REG, .key = SW "\\Wow6432Node\\" WINHTTP, .name = "DefaultSecureProtocols",
    .dword = 0x800, .build_below = BUILD_WINHTTP_TLS12, .needs_key = "\\Wow6432Node\\Microsoft",
    .text = "WinHTTP, 32-bit programs: TLS 1.2 only (0x800)" },
  { .kind = TP_SETTING_UPDATE_CHECK,
    .key = SW "\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Packages",
    .name = "Package_for_KB3140245", .build_below = BUILD_WINHTTP_TLS12,
    .text = "KB3140245 is not installed: WinHTTP ignores DefaultSecureProtocols without it, "
            "so programs using WinHTTP keep TLS 1.0 (and fail once it is off); install it" },
  { .kind = TP_SETTING_NOTE, .key = SW, .build_from = 7600, .build_below = 7602,
    .text = "Windows 7 / Server 2008 R2: TLS 1.2 is off by default here; the SCHANNEL "
            "TLS 1.2 keys of the SYSTEM hive are what turns it on. Remote Desktop fails with "
            "\"an internal error\" when TLS 1.0 is off and RDP has no TLS 1.2 (KB3080079): "
            "install that update before the next boot" },
  { .kind = TP_SETTING_NOTE, .key = SW, .build_from = 6000, .build_below = 7600,
    .text = "Windows Vista / Server 2008: SCHANNEL has TLS 1.2 only with KB4019276; "
            "without it no TLS protocol is left once TLS 1.0 is off" },
};

static const tp_profile pci = {
  .name = "pci",
  .brief = "TLS 1.2 only: SCHANNEL, .NET, WinHTTP",
  .summary = "PCI DSS TLS hardening: kb4033999, and TLS 1.2 only in SCHANNEL, .NET and "
             "WinHTTP, per Windows version",
  .base = &kb4033999,
  .rules = pci_rules,
  .n_rules = sizeof pci_rules / sizeof pci_rules[0],
};

/* ------------------------------------------------------------------ */

static const tp_profile *const all_profiles[] = { &kb4033999, &pci };

const tp_profile *const *
tp_profiles (size_t *n)
{
  *n = sizeof all_profiles / sizeof all_profiles[0];
  return all_profiles;
}

const tp_profile *
tp_profile_default (void)
{
  return &kb4033999;
}

const tp_profile *
tp_profile_find (const char *name)
{
  for (size_t i = 0; i < sizeof all_profiles / sizeof all_profiles[0]; i++)
    if (strcmp (all_profiles[i]->name, name) == 0)
      return all_profiles[i];
  return NULL;
}

/* ------------------------------------------------------------------ */
/* As a Windows admin reads it                                        */

static bool
same_section (const tp_rule *a, const tp_rule *b)
{
  return a->kind == TP_SETTING_REG && b->kind == TP_SETTING_REG && strcmp (a->key, b->key) == 0 &&
         a->flags == b->flags && a->build_from == b->build_from &&
         a->build_below == b->build_below && a->needs_key == b->needs_key &&
         a->text == b->text;
}

static void
write_builds (FILE *fp, const tp_rule *r)
{
  if (r->build_from && r->build_below)
    fprintf (fp, "; only on Windows builds %u to %u", r->build_from, r->build_below - 1);
  else if (r->build_below)
    fprintf (fp, "; only on Windows builds below %u", r->build_below);
  else if (r->build_from)
    fprintf (fp, "; only on Windows builds %u and later", r->build_from);
  else
    return;
  fputs (" (SOFTWARE \\Microsoft\\Windows NT\\CurrentVersion, CurrentBuildNumber)\n", fp);
}

static void
write_section_head (FILE *fp, const tp_rule *r)
{
  fprintf (fp, "\n; %s\n", r->text);
  write_builds (fp, r);
  if (r->flags & TP_RULE_OPTION_SDT)
    fputs ("; only with --system-default-tls\n", fp);
  if (r->flags & TP_RULE_EXISTING_KEY)
    fputs ("; only where the key exists: it is not created\n", fp);
  if (r->needs_key)
    fprintf (fp, "; only when the key %s exists in the same hive\n", r->needs_key);
  if (r->flags & TP_RULE_EVERY_VERSION_KEY)
    fprintf (fp, "; under every version key (v<major>.<minor>..., e.g. v4.0.30319) of the "
             "branch, when it exists\n[%s\\v*]\n", r->key);
  else
    fprintf (fp, "[%s]\n", r->key);
}

static void
write_check (FILE *fp, const tp_rule *r)
{
  fputc ('\n', fp);
  write_builds (fp, r);
  switch (r->kind) {
  case TP_SETTING_SERVICE_START:
    fprintf (fp, "; rule: %s: each service asked for (--service, default obengine) gets\n"
             ";   Start 3 (manual) -> 2 (automatic) in %s\\NAME;\n"
             ";   other Start values are left alone, with a warning\n", r->text, r->key);
    break;
  case TP_SETTING_NETFX_CHECK:
    fprintf (fp, "; rule: %s (SOFTWARE \\Microsoft\\NET Framework Setup\\NDP\\v4\\Full, "
             "Release >= 393295);\n;   without it: a warning, and check exits 3\n", r->text);
    break;
  case TP_SETTING_UPDATE_CHECK:
    fprintf (fp, "; rule: when no key under %s\n;   begins with %s, warn: %s\n",
             r->key, r->name, r->text);
    break;
  default:
    fprintf (fp, "; note (a warning): %s\n", r->text);
    break;
  }
}

static void
write_rules (FILE *fp, const tp_profile *p)
{
  for (size_t i = 0; i < p->n_rules; i++) {
    const tp_rule *r = &p->rules[i];
    if (r->kind != TP_SETTING_REG) {
      write_check (fp, r);
      continue;
    }
    if (i == 0 || !same_section (&p->rules[i - 1], r))
      write_section_head (fp, r);
    fprintf (fp, "\"%s\"=dword:%08x\n", r->name, r->dword);
  }
}

void
tp_profile_write (FILE *fp, const tp_profile *p)
{
  fprintf (fp, "Windows Registry Editor Version 5.00\n\n"
           "; tlspatch profile %s: %s\n"
           "; CurrentControlSet stands for the control sets Windows will boot (\\Select's "
           "Default,\n; and Current when it differs). Values are set only where they differ.\n",
           p->name, p->summary);
  if (p->base) {
    fprintf (fp, "\n; ---- everything profile %s does:\n", p->base->name);
    write_rules (fp, p->base);
    fprintf (fp, "\n; ---- and:\n");
  }
  write_rules (fp, p);
}
