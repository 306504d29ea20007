#!/bin/bash
# --profile: kb4033999 and pci on SOFTWARE/SYSTEM pairs of Windows Server
# 2008 R2 (with and without KB3140245), 2012 R2, 2019, 2022 and a 32-bit
# Windows 7, as hive files and as a mounted folder. Results are read back
# with hivexregedit and libregf's regfexport.
. "$top_srcdir/tests/lib.sh"

P='\ControlSet001\Control\SecurityProviders\SCHANNEL\Protocols'
WINHTTP='\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp'
WINHTTP32='\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp'
dword () { echo "REG_DWORD_LITTLE_ENDIAN $1"; }
sw () { json_get "select(.hive == \"SOFTWARE\") | $1"; }
sy () { json_get "select(.hive == \"SYSTEM\") | $1"; }

# --- the command line ---------------------------------------------------------
run_tp profiles
ok "profiles: lists kb4033999 and pci, exit 0" \
  eval '[ $rc -eq 0 ] && grep -q "^kb4033999 " out && grep -q "^pci " out'
run_tp profiles pci
ok "profiles pci: .reg sections for SCHANNEL in CurrentControlSet" \
  grep -qx '\[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0\\Server\]' out
ok "profiles pci: TLS 1.2 Enabled 1, DisabledByDefault 0" \
  eval 'grep -A2 -x ".*Protocols\\\\TLS 1.2\\\\Client\]" out | tr "\n" " " | grep -q "\"Enabled\"=dword:00000001 \"DisabledByDefault\"=dword:00000000"'
ok "profiles pci: WinHTTP 0x800 below build 9600, KB3140245 spelled out, TLS 1.3 absent" \
  eval 'grep -q "^\"DefaultSecureProtocols\"=dword:00000800" out && grep -q "below 9600" out && grep -q Package_for_KB3140245 out && ! grep -q "TLS 1.3" out'
ok "profiles pci: includes kb4033999's rules" grep -q 'everything profile kb4033999 does' out
run_tp profiles nope
ok "profiles nope: usage error, one line" eval '[ $rc -eq 2 ] && grep -q "no profile .nope." err'
run_tp --help
ok "--help lists the profiles" eval 'grep -q "^ *kb4033999 " out && grep -q "^ *pci " out'
fixture software-2008r2 s08.hive
run_tp apply --profile nope s08.hive
ok "apply --profile nope: usage error" expect_rc 2
run_tp revert --undo x.reg --profile pci s08.hive
ok "revert --profile: usage error" expect_rc 2

# --- Server 2008 R2 without KB3140245 --------------------------------------------
fixture software-2008r2 orig08.hive
fixture system-2008r2 origsys08.hive
cp -p orig08.hive SOFTWARE; cp -p origsys08.hive SYSTEM
run_tp check --json --profile pci SOFTWARE SYSTEM
ok "2008 R2: check before, exit 3, nothing written" \
  eval '[ $rc -eq 3 ] && same_file_state orig08.hive SOFTWARE && same_file_state origsys08.hive SYSTEM'
run_tp apply --json --undo undo08.reg --profile pci SOFTWARE SYSTEM
ok "2008 R2: apply exit 0, both patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = patched ]'
ok "2008 R2: JSON says build 7601" test "$(sw .windows_build)" = 7601
ok "2008 R2: WinHttp DefaultSecureProtocols 0x800 (regfexport)" \
  test "$(regf_value SOFTWARE "$WINHTTP" DefaultSecureProtocols)" = "$(dword 2048)"
ok "2008 R2: ... and in the 32-bit branch, its keys created (regfexport)" \
  test "$(regf_value SOFTWARE "$WINHTTP32" DefaultSecureProtocols)" = "$(dword 2048)"
ok "2008 R2: warns that KB3140245 is missing" eval 'sw ".warnings[]" | grep -q "KB3140245 is not installed"'
ok "2008 R2: says TLS 1.2 is off by default there, and warns about RDP" \
  eval 'sw ".warnings[]" | grep "TLS 1.2 is off by default" | grep -q "Remote Desktop"'
ok "2008 R2: SystemDefaultTlsVersions 0 -> 1 in 64-bit v2.0.50727 (hivexregedit)" \
  test "$(value_of SOFTWARE '\Microsoft\.NETFramework\v2.0.50727' SystemDefaultTlsVersions)" = '"SystemDefaultTlsVersions"=dword:00000001'
ok "2008 R2: SystemDefaultTlsVersions in all four v2/v4 keys, SchUseStrongCrypto in all four" \
  eval '[ "$(sw ".changes[] | select(.name == \"SystemDefaultTlsVersions\") | .key" | wc -l)" -eq 4 ] &&
        [ "$(sw ".changes[] | select(.name == \"SchUseStrongCrypto\") | .key" | wc -l)" -eq 4 ]'
ok "2008 R2: TLS 1.0 Server Enabled 0xffffffff -> 0, DisabledByDefault 1 (hivexregedit)" \
  eval '[ "$(value_of SYSTEM "$P\\TLS 1.0\\Server" Enabled)" = "\"Enabled\"=dword:00000000" ] &&
        [ "$(value_of SYSTEM "$P\\TLS 1.0\\Server" DisabledByDefault)" = "\"DisabledByDefault\"=dword:00000001" ]'
ok "2008 R2: TLS 1.2 Client's REG_SZ values are DWORDs now, with a warning" \
  eval '[ "$(regf_value SYSTEM "$P\\TLS 1.2\\Client" Enabled)" = "$(dword 1)" ] &&
        [ "$(regf_value SYSTEM "$P\\TLS 1.2\\Client" DisabledByDefault)" = "$(dword 0)" ] &&
        sy ".warnings[]" | grep -q "TLS 1.2\\\\Client\\\\Enabled: replacing REG_SZ .1. with REG_DWORD 1"'
ok "2008 R2: every protocol key, Client and Server, SSL 2.0 to TLS 1.1 off (regfexport)" \
  eval '( for p in "SSL 2.0" "SSL 3.0" "TLS 1.0" "TLS 1.1"; do for s in Client Server; do
          [ "$(regf_value SYSTEM "$P\\$p\\$s" Enabled)" = "$(dword 0)" ] &&
          [ "$(regf_value SYSTEM "$P\\$p\\$s" DisabledByDefault)" = "$(dword 1)" ] || exit 1; done; done )'
ok "2008 R2: TLS 1.3 not created" test -z "$(regf_value SYSTEM "$P\\TLS 1.3\\Client" Enabled)"
ok "2008 R2: obengine Start 2" test "$(regf_value SYSTEM '\ControlSet001\Services\obengine' Start)" = "$(dword 2)"
ok "2008 R2: LastKnownGood ControlSet002 untouched (hivexregedit)" \
  eval 'diff <($HIVEXREGEDIT --export origsys08.hive "\\ControlSet002") <($HIVEXREGEDIT --export SYSTEM "\\ControlSet002")'
ok "2008 R2: both hives read by regfexport without error" eval 'regf_dump SOFTWARE >/dev/null && regf_dump SYSTEM >/dev/null'
run_tp check --profile pci SOFTWARE SYSTEM
ok "2008 R2: check after apply, exit 0, the KB3140245 warning still said" \
  eval '[ $rc -eq 0 ] && grep -q "warning: KB3140245 is not installed" out'
cp -p SOFTWARE patched08.hive; cp -p SYSTEM patchedsys08.hive
run_tp apply --profile pci SOFTWARE SYSTEM
ok "2008 R2: second apply writes nothing (bytes and mtime)" \
  eval '[ $rc -eq 0 ] && same_file_state patched08.hive SOFTWARE && same_file_state patchedsys08.hive SYSTEM'
ok "2008 R2: the undo record deletes the created SCHANNEL keys from their top" \
  eval 'grep -qx "\[-HKEY_LOCAL_MACHINE\\\\SYSTEM\\\\ControlSet001\\\\Control\\\\SecurityProviders\\\\SCHANNEL\\\\Protocols\\\\SSL 3.0\]" undo08.reg'
run_tp revert --json --undo undo08.reg SOFTWARE SYSTEM
ok "2008 R2: revert puts the REG_SZ values back without calling it a replacement" \
  eval '[ $rc -eq 0 ] && ! json_get ".warnings[]" | grep -q replacing'
ok "2008 R2: revert exact (hivexregedit dumps of both hives)" \
  eval '[ $rc -eq 0 ] && diff <(export_reg orig08.hive) <(export_reg SOFTWARE) && diff <(export_reg origsys08.hive) <(export_reg SYSTEM)'
run_tp check --profile pci SOFTWARE SYSTEM
ok "2008 R2: the table shows every change and the warnings (check after revert)" \
  eval '[ $rc -eq 3 ] && grep -q "TLS 1.0.Server.Enabled: 4294967295 -> 0" out && grep -q "WinHttp.DefaultSecureProtocols: (absent) -> 2048" out &&
        grep -q "warning: KB3140245" out && grep -q "warning: .*: would replace REG_SZ .*. with REG_DWORD" out && ! grep -q replacing out'

# --- Server 2008 R2 with KB3140245 -------------------------------------------------
{ cat "$FIXTURES/software-2008r2.reg"; printf '\n%s\n' \
  '[\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages\Package_for_KB3140245~31bf3856ad364e35~amd64~~6.1.1.1]' \
  '"CurrentState"=dword:00000070'; } >kb.reg
"$MKHIVE" kb.reg kb08.hive
run_tp apply --json --profile pci kb08.hive
ok "2008 R2 with KB3140245: WinHttp still set (build 7601), no KB3140245 warning" \
  eval '[ $rc -eq 0 ] && [ "$(regf_value kb08.hive "$WINHTTP" DefaultSecureProtocols)" = "$(dword 2048)" ] && ! json_get ".warnings[]" | grep -q KB3140245'

# --- Server 2012 R2 ----------------------------------------------------------------
fixture software-2012r2 s12.hive
fixture system sys12.hive
run_tp check --json --profile pci s12.hive sys12.hive
ok "2012 R2: check exit 3, build 9600" eval '[ $rc -eq 3 ] && [ "$(sw .windows_build)" = 9600 ]'
run_tp apply --json --profile pci s12.hive sys12.hive
ok "2012 R2: both patched, TLS 1.2 Server written explicitly (regfexport)" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = patched ] && [ "$(regf_value sys12.hive "$P\\TLS 1.2\\Server" Enabled)" = "$(dword 1)" ]'
ok "2012 R2: WinHttp left alone (build 9600 has TLS 1.2), no KB3140245 warning" \
  eval '[ "$(regf_value s12.hive "$WINHTTP" DefaultSecureProtocols)" = ABSENT ] &&
        [ "$(regf_value s12.hive "$WINHTTP32" DefaultSecureProtocols)" = ABSENT ] && ! json_get ".warnings[]" | grep -q KB3140245'
ok "2012 R2: SystemDefaultTlsVersions 1 in the four v2/v4 keys (regfexport)" \
  eval '( for k in "\\Microsoft\\.NETFramework\\v2.0.50727" "\\Microsoft\\.NETFramework\\v4.0.30319" \
                "\\Wow6432Node\\Microsoft\\.NETFramework\\v2.0.50727" "\\Wow6432Node\\Microsoft\\.NETFramework\\v4.0.30319"; do
          [ "$(regf_value s12.hive "$k" SystemDefaultTlsVersions)" = "$(dword 1)" ] || exit 1; done )'
run_tp check --profile pci s12.hive sys12.hive
ok "2012 R2: check after, exit 0" expect_rc 0

# --- Server 2019 (three control sets: Current 1, Default 2, LastKnownGood 3) ----------
fixture software-server2019 s19.hive
fixture system sys19.hive
cp -p sys19.hive sys19.orig
run_tp apply --json --profile pci s19.hive sys19.hive
ok "2019: patched, build 17763, WinHttp left alone" \
  eval '[ $rc -eq 0 ] && [ "$(sw .windows_build)" = 17763 ] && [ "$(regf_value s19.hive "$WINHTTP" DefaultSecureProtocols)" = ABSENT ]'
ok "2019: SCHANNEL in ControlSet001 (Current) and ControlSet002 (Default), not 003 (regfexport)" \
  eval '[ "$(regf_value sys19.hive "$P\\TLS 1.1\\Server" Enabled)" = "$(dword 0)" ] &&
        [ "$(regf_value sys19.hive "${P/001/002}\\TLS 1.1\\Server" Enabled)" = "$(dword 0)" ] &&
        [ -z "$(regf_value sys19.hive "${P/001/003}\\TLS 1.1\\Server" Enabled)" ]'
ok "2019: 20 SCHANNEL values per boot control set" \
  test "$(sy '.changes[] | select(.name == "Enabled" or .name == "DisabledByDefault") | .key' | grep -c ControlSet002)" -eq 20
run_tp check --profile pci s19.hive sys19.hive
ok "2019: check after, exit 0" expect_rc 0

# --- Server 2022: build only in CurrentBuild, TLS 1.3 present, no obengine -------------
fixture software-2022 s22.hive
fixture system-2022 sys22.hive
cp -p sys22.hive sys22.orig
run_tp apply --json --profile pci s22.hive sys22.hive
ok "2022: patched, build 20348 read from CurrentBuild" eval '[ $rc -eq 0 ] && [ "$(sw .windows_build)" = 20348 ]'
ok "2022: only what differs: SystemDefaultTlsVersions in 64-bit v2 and 32-bit v4, none where already 1" \
  test "$(sw '[.changes[] | select(.name == "SystemDefaultTlsVersions") | .key] | join(",")')" = \
  'HKLM\SOFTWARE\Microsoft\.NETFramework\v2.0.50727,HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319'
ok "2022: TLS 1.3 keys untouched (hivexregedit)" \
  eval 'diff <($HIVEXREGEDIT --export sys22.orig "$P\\TLS 1.3") <($HIVEXREGEDIT --export sys22.hive "$P\\TLS 1.3")'
ok "2022: obengine not installed: said, not an error" eval 'sy ".warnings[]" | grep -q "service obengine is not installed"'

# --- 32-bit Windows 7 (no Wow6432Node) ------------------------------------------------
fixture software-32bit s32.hive
run_tp apply --json --profile pci s32.hive
ok "32-bit Windows 7: WinHttp 0x800 in the only branch, its keys created" \
  eval '[ $rc -eq 0 ] && [ "$(regf_value s32.hive "$WINHTTP" DefaultSecureProtocols)" = "$(dword 2048)" ]'
ok "32-bit Windows 7: no Wow6432Node created" eval '! regf_dump s32.hive | grep -qi "^Key path: ROOT\\\\Wow6432Node"'
ok "32-bit Windows 7: the build 7601 note and the KB3140245 warning" \
  eval 'json_get ".warnings[]" | grep -q "Remote Desktop" && json_get ".warnings[]" | grep -q KB3140245'

# --- a build nobody can read, .NET below 4.6 ---------------------------------------------
grep -v '^"CurrentBuild' "$FIXTURES/software-2008r2.reg" >nobuild.reg
"$MKHIVE" nobuild.reg nobuild.hive
run_tp apply --json --profile pci nobuild.hive
ok "unknown build: what needs no build is set, WinHttp is not, and the warning names it" \
  eval '[ $rc -eq 0 ] && [ "$(regf_value nobuild.hive "$WINHTTP" DefaultSecureProtocols)" = ABSENT ] &&
        [ "$(regf_value nobuild.hive "\\Microsoft\\.NETFramework\\v4.0.30319" SystemDefaultTlsVersions)" = "$(dword 1)" ] &&
        json_get ".warnings[]" | grep "Windows build is unknown" | grep -q "WinHttp.DefaultSecureProtocols"'
grep -v '^"CurrentBuild' "$FIXTURES/software-32bit.reg" >nobuild32.reg
"$MKHIVE" nobuild32.reg nobuild32.hive
run_tp check --json --profile pci nobuild32.hive
ok "unknown build: the KB3140245 check said not made; 32-bit: nothing said of Wow6432Node" \
  eval 'json_get ".warnings[]" | grep -q "whether Package_for_KB3140245 must be installed was not checked" &&
        ! json_get ".warnings[]" | grep -q Wow6432Node'
fixture software-net452 old.hive
run_tp apply --profile pci old.hive
run_tp check --profile pci old.hive
ok ".NET 4.5.2: check still exits 3 after apply" expect_rc 3

# --- profiles and settings combined -------------------------------------------------------
fixture software-2008r2 c.hive
fixture system-2008r2 csys.hive
run_tp check --json --profile pci c.hive csys.hive
mv out pci.json
run_tp check --json --profile kb4033999 --profile pci c.hive csys.hive
ok "kb4033999 + pci: the same changes as pci alone (no value twice)" \
  eval '[ $rc -eq 3 ] && diff <(jq -c .changes pci.json) <(jq -c .changes out)'
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server]' \
  '"Enabled"=dword:00000001' >tls10on.reg
cp -p csys.hive csys.orig
run_tp apply --profile pci --settings tls10on.reg csys.hive
ok "pci + a .reg that turns TLS 1.0 back on: usage error naming both, one line, nothing written" \
  eval '[ $rc -eq 2 ] && one_line_error tls10on.reg:4 "profile pci" && same_file_state csys.orig csys.hive'
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[HKEY_LOCAL_MACHINE\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319]' \
  '"SchUseStrongCrypto"=dword:00000000' >weak.reg
run_tp check --profile kb4033999 --settings weak.reg c.hive
ok "kb4033999 + a .reg with SchUseStrongCrypto 0 under a version key: usage error" \
  eval '[ $rc -eq 2 ] && one_line_error weak.reg:4 "profile kb4033999"'
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client]' \
  '"Enabled"=dword:00000001' '' '[HKLM\SOFTWARE\Contoso]' '"Tls"=dword:00000001' >agree.reg
run_tp check --json --profile pci --settings agree.reg c.hive csys.hive
ok "pci + a .reg that agrees: combined, each value once" \
  eval '[ $rc -eq 3 ] && [ "$(json_get ".changes[] | select(.name == \"Enabled\") | .key" | grep -c "TLS 1.2.Client")" -eq 1 ] &&
        [ "$(json_get ".changes[] | select(.name == \"Tls\") | .key")" = "HKLM\\SOFTWARE\\Contoso" ]'
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[-HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\.NETFramework\V4.0.30319\Sub]' >delv4.reg
run_tp check --settings delv4.reg --profile kb4033999 c.hive
ok "kb4033999 + a .reg deleting a key under a version key: usage error" \
  eval '[ $rc -eq 2 ] && one_line_error delv4.reg:3 "a key deleted and written"'
cp -p csys.hive csys.twice
run_tp check --json --service obengine --service OBENGINE csys.twice
ok "--service obengine --service OBENGINE: Start planned once per control set" \
  test "$(json_get '.changes[] | select(.name == "Start") | .key' | wc -l)" -eq 1
run_tp apply --json --profile pci --no-service c.hive csys.hive
ok "pci --no-service: SCHANNEL set, obengine left manual" \
  eval '[ $rc -eq 0 ] && [ "$(regf_value csys.hive "$P\\TLS 1.0\\Client" Enabled)" = "$(dword 0)" ] &&
        [ "$(regf_value csys.hive "\\ControlSet001\\Services\\obengine" Start)" = "$(dword 3)" ]'

# --- a mounted folder ---------------------------------------------------------------------
mkdir -p vol/Windows/System32/config
fixture software-2008r2 vol/Windows/System32/config/SOFTWARE
fixture system-2008r2 vol/Windows/System32/config/SYSTEM
run_tp check --profile pci vol
ok "folder: check before, exit 3" expect_rc 3
run_tp apply --json --undo volundo.reg --profile pci vol
ok "folder: apply, SOFTWARE and SYSTEM patched" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .hive | sort | tr "\n" " ")" = "SOFTWARE SYSTEM " ] && [ "$(json_get .status | sort -u)" = patched ]'
run_tp check --profile pci vol
ok "folder: check after, exit 0" expect_rc 0
run_tp revert --undo volundo.reg vol
ok "folder: revert exact (regfexport dumps)" \
  eval 'diff <(regf_dump orig08.hive) <(regf_dump vol/Windows/System32/config/SOFTWARE) && diff <(regf_dump origsys08.hive) <(regf_dump vol/Windows/System32/config/SYSTEM)'

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
