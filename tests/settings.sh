#!/bin/bash
# --settings FILE: any .reg settings made true, audited and undone, on
# hive files and a mounted folder. Results are read back with hivex's
# and libregf's own tools.
. "$top_srcdir/tests/lib.sh"
need iconv

S=$FIXTURES/settings
fixture software-server2019 orig.hive
fixture system origsys.hive
cp -p orig.hive SOFTWARE
cp -p origsys.hive SYSTEM

# --- audit, apply, idempotence -------------------------------------------
run_tp check --json --settings "$S/hardening.reg" SOFTWARE SYSTEM
ok "check before: exit 3" expect_rc 3
ok "check writes nothing" eval 'same_file_state orig.hive SOFTWARE && same_file_state origsys.hive SYSTEM'
ok "check: SCHANNEL keys to create in both boot control sets" \
  test "$(json_get 'select(.hive == "SYSTEM") | .changes[] | select(.op == "create_key") | .key' | grep -c 'Protocols\\TLS 1\.[02]$')" -eq 4
ok "check: the five levels of the agent key, parents first" \
  test "$(json_get 'select(.hive == "SOFTWARE") | [.changes[] | select(.op == "create_key") | .key] | join(",")')" = \
  'HKLM\SOFTWARE\Contoso,HKLM\SOFTWARE\Contoso\Agent,HKLM\SOFTWARE\Contoso\Agent\Config,HKLM\SOFTWARE\Contoso\Agent\Config\Tls,HKLM\SOFTWARE\Contoso\Agent\Config\Tls\Pins'
ok "check: the CLSID subtree to delete, counted" \
  test "$(json_get '.changes[] | select(.op == "delete_key") | .key + " " + (.subkeys|tostring) + " " + (.values|tostring)')" = 'HKLM\SOFTWARE\Classes\CLSID 1 1'

run_tp apply --json --undo undo.reg --settings "$S/hardening.reg" SOFTWARE SYSTEM
ok "apply: exit 0, both patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = patched ]'
ok "regfexport: TLS 1.0 Server Enabled 0 in ControlSet001 (Current)" \
  test "$(regf_value SYSTEM '\ControlSet001\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server' Enabled)" = "REG_DWORD_LITTLE_ENDIAN 0"
ok "regfexport: TLS 1.2 Client Enabled 1 in ControlSet002 (Default)" \
  test "$(regf_value SYSTEM '\ControlSet002\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client' Enabled)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "regfexport: LastKnownGood ControlSet003 has no TLS keys" \
  test -z "$(regf_value SYSTEM '\ControlSet003\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server' Enabled)"
ok "hivexregedit: the new key's values, exact" \
  test "$(value_of SOFTWARE '\Contoso\Agent\Config\Tls\Pins' Thumbprints)" = '"Thumbprints"=hex(7):41,00,42,00,00,00,43,00,44,00,00,00,00,00'
ok "hivexregedit: QWORD" test "$(value_of SOFTWARE '\Contoso\Agent\Config\Tls\Pins' Limit)" = '"Limit"=hex(b):00,10,00,00,00,00,00,00'
ok "hivexregedit: the default value (REG_SZ \"pinned\")" eval "$HIVEXREGEDIT --export SOFTWARE '\\Contoso\\Agent\\Config\\Tls\\Pins' | grep -qx '@=hex(1):70,00,69,00,6e,00,6e,00,65,00,64,00,00,00'"
ok "regfexport: the deleted subtree is gone" eval '! regf_dump SOFTWARE | grep -q "ROOT\\\\Classes\\\\CLSID"'
ok "regfexport reads both hives without error" eval 'regf_dump SOFTWARE >/dev/null && regf_dump SYSTEM >/dev/null'
# The export without the keys the settings own, and without the two .NET
# values they set: what must not have changed.
without () {
  export_reg "$1" | awk '/^\[/ { skip = /Contoso|TLS 1\.|CLSID/ } !skip' |
    grep -v -e '^"SchUseStrongCrypto"=' -e '^"SystemDefaultTlsVersions"='
}
ok "hivexregedit: everything else unchanged" eval 'diff <(without orig.hive) <(without SOFTWARE) && diff <(without origsys.hive) <(without SYSTEM)'

run_tp check --settings "$S/hardening.reg" SOFTWARE SYSTEM
ok "check after apply: compliant, exit 0" expect_rc 0
cp -p SOFTWARE patched.hive; cp -p SYSTEM patchedsys.hive
run_tp apply --settings "$S/hardening.reg" SOFTWARE SYSTEM
ok "second apply: exit 0, both files untouched (bytes and mtime)" \
  eval '[ $rc -eq 0 ] && same_file_state patched.hive SOFTWARE && same_file_state patchedsys.hive SYSTEM'

# --- undo ------------------------------------------------------------------
ok "undo: created branches deleted from their top" \
  eval 'grep -qx "\[-HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\Contoso\]" undo.reg && ! grep -q "^\[-.*Contoso\\\\Agent" undo.reg'
ok "undo: the deleted subtree written back" grep -q '^\[HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\CLSID\\{00000000-0000-0000-0000-000000000001}\]' undo.reg
run_tp revert --json --undo undo.reg SOFTWARE SYSTEM
ok "revert: exit 0" expect_rc 0
ok "revert: SOFTWARE exactly as before (regfexport dumps)" eval 'diff <(regf_dump orig.hive) <(regf_dump SOFTWARE)'
ok "revert: SYSTEM exactly as before (regfexport dumps)" eval 'diff <(regf_dump origsys.hive) <(regf_dump SYSTEM)'
ok "revert: hivexregedit agrees" eval 'diff <(export_reg orig.hive) <(export_reg SOFTWARE) && diff <(export_reg origsys.hive) <(export_reg SYSTEM)'

# --- encodings: UTF-16LE with BOM and CRLF (as regedit writes), REGEDIT4 ------
{ printf '\xff\xfe'; sed 's/$/\r/' "$S/hardening.reg" | iconv -f UTF-8 -t UTF-16LE; } >utf16.reg
cp -p orig.hive S16; cp -p origsys.hive Y16
run_tp check --json --settings "$S/hardening.reg" S16 Y16
jq -c '.changes' "$WORK/out" >utf8.changes
run_tp check --json --settings utf16.reg S16 Y16
ok "UTF-16LE file: check exit 3" expect_rc 3
ok "UTF-16LE file: the same changes as the UTF-8 one" eval 'diff utf8.changes <(jq -c .changes "$WORK/out")'
printf 'REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso]\r\n"Name"="caf\xe9"\r\n' >ansi.reg
run_tp apply --settings ansi.reg S16
ok "REGEDIT4 (ANSI) file: exit 0" expect_rc 0
ok "REGEDIT4: the string stored as UTF-16LE" \
  test "$(value_of S16 '\Contoso' Name)" = '"Name"=hex(1):63,00,61,00,66,00,e9,00,00,00'

# --- every value type -----------------------------------------------------
if [ -f "$S/all-types.reg" ]; then
  cp -p orig.hive T
  run_tp apply --settings "$S/all-types.reg" T
  ok "all types: exit 0" expect_rc 0
  ok "all types: regfexport reads the hive" eval 'regf_dump T >/dev/null'
  for v in '"Qword"=hex(b):01,02,03,04,05,06,07,08' '"BigEndian"=hex(5):00,00,00,0a' \
           '"Odd type"=hex(ffff0000):de,ad' '"Empty binary"=hex(3):' '"Dword"=dword:0000000a' \
           '"Multi"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00'; do
    name=${v%%=*}; name=${name//\"/}
    ok "all types: $name exact" test "$(value_of T '\Tlspatch\Types' "$name")" = "$v"
  done
  run_tp check --settings "$S/all-types.reg" T
  ok "all types: check after apply exit 0" expect_rc 0
fi

# --- big data: 1 MiB written, a key holding big data deleted and restored ----
{ printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Big]\n"Mib"=hex:'
  head -c 1048576 /dev/zero | tr '\0' '\253' | od -An -v -tx1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//'
  printf '\n'; } >big.reg
cp -p orig.hive B
run_tp apply --undo bigundo.reg --settings big.reg B
ok "1 MiB value: exit 0" expect_rc 0
ok "1 MiB value: libregf reads it back whole" \
  eval 'regf_dump B | grep -A2 "^Value: 0 Mib" | grep -q "Data size: 1048576"'
run_tp check --settings big.reg B
ok "1 MiB value: check after apply exit 0" expect_rc 0

fixture software-bigdata bd.hive
cp -p bd.hive BD
printf 'Windows Registry Editor Version 5.00\n\n[-HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319]\n' >delbig.reg
run_tp apply --undo delbig.undo --settings delbig.reg BD
ok "delete a subtree holding big data: exit 0" expect_rc 0
ok "delete: hivex and libregf read the hive" eval 'export_reg BD >/dev/null && regf_dump BD >/dev/null'
run_tp revert --undo delbig.undo BD
ok "revert of the deletion: exit 0" expect_rc 0
ok "revert of the deletion: regfexport dumps identical (big data back)" eval 'diff <(regf_dump bd.hive) <(regf_dump BD)'

# --- deleted values come back with their type, bytes and place ---------------
# Two values deleted (the later one first) and one added to the same key.
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\.NETFramework]' \
  '"DbgManagedDebugger"=-' '"Added"=dword:00000001' '"InstallRoot"=-' >delval.reg
cp -p orig.hive DV
run_tp apply --json --undo delval.undo --settings delval.reg DV
ok "delete values: exit 0, ops delete_value, set_value, delete_value" \
  eval '[ $rc -eq 0 ] && [ "$(json_get "[.changes[].op] | join(\",\")")" = delete_value,set_value,delete_value ]'
ok "delete values: gone (regfexport)" \
  eval '[ "$(regf_value DV "\Microsoft\.NETFramework" DbgManagedDebugger)" = ABSENT ] &&
        [ "$(regf_value DV "\Microsoft\.NETFramework" InstallRoot)" = ABSENT ]'
ok "undo: each deleted value preceded by its place (3, then 1)" \
  test "$(grep -o '^; position: [0-9]*' delval.undo | tr '\n' ,)" = '; position: 3,; position: 1,'
run_tp revert --undo delval.undo DV
ok "revert: exit 0" expect_rc 0
ok "revert: regfexport dumps identical (values back in their places)" \
  eval 'diff <(regf_dump orig.hive) <(regf_dump DV)'
lsval () { printf 'cd %s\nlsval\n' "$2" | hivexsh "$1"; }
ok "revert: hivexsh lists the key's values in the original order" \
  eval 'diff <(lsval orig.hive "\Microsoft\.NETFramework") <(lsval DV "\Microsoft\.NETFramework")'

# --- names compare as Windows compares them, beyond ASCII ---------------------
printf '%s\n' 'Windows Registry Editor Version 5.00' '' '[HKEY_LOCAL_MACHINE\SOFTWARE\Contoso\Ünïcode Σ]' \
  '"Größe"=dword:00000001' >upper1.reg
printf '%s\n' 'Windows Registry Editor Version 5.00' '' '[HKEY_LOCAL_MACHINE\SOFTWARE\CONTOSO\üNÏCODE σ]' \
  '"GRÖSSE"=dword:00000002' '"gRÖße"=dword:00000003' >upper2.reg
cp -p orig.hive U
run_tp apply --settings upper1.reg U
ok "non-ASCII names: created" expect_rc 0
run_tp apply --json --settings upper2.reg U
ok "the same key in other case (Ü/ü, Σ/σ): found, not created again; gRÖße is Größe" \
  eval '[ $rc -eq 0 ] && [ "$(json_get ".changes[] | .op + \" \" + .key + \" \" + .name" | tr "\\\\" /)" = "set_value HKLM/SOFTWARE/Contoso/Ünïcode Σ GRÖSSE
set_value HKLM/SOFTWARE/Contoso/Ünïcode Σ Größe" ]'
ok "hivexsh reads one key with Größe=3 and GRÖSSE=2" \
  test "$(printf 'cd \\Contoso\\Ünïcode Σ\nlsval\n' | hivexsh U | tr '\n' ' ')" = '"Größe"=dword:00000003 "GRÖSSE"=dword:00000002 '

# --- refusals: usage errors, nothing touched ------------------------------
cp -p orig.hive R
for f in "$S"/malformed-*.reg; do
  [ -f "$f" ] || continue
  run_tp apply --settings "$f" R
  ok "$(basename "$f"): exit 2, one line naming the file and line" \
    eval '[ $rc -eq 2 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "$(basename "$f"):[0-9]*: " "$WORK/err"'
done
printf 'Windows Registry Editor Version 5.00\n\n[HKEY_CURRENT_USER\\Software\\X]\n"a"=dword:1\n' >hkcu.reg
run_tp apply --settings hkcu.reg R
ok "HKCU: exit 2 naming file, line and root" \
  eval '[ $rc -eq 2 ] && grep -q "hkcu.reg:3: HKEY_CURRENT_USER.*only those hives" "$WORK/err"'
printf 'Windows Registry Editor Version 5.00\n\n[HKLM\\SOFTWARE\\X]\n"a"=dword:1\n' >one.reg
printf 'Windows Registry Editor Version 5.00\n\n[HKLM\\SOFTWARE\\X]\n"a"=dword:2\n' >two.reg
run_tp check --settings one.reg --settings two.reg R
ok "two files setting one value differently: exit 2 naming both" \
  eval '[ $rc -eq 2 ] && grep -q "two.reg:4: contradicts .*one.reg:4" "$WORK/err"'
ok "refusals left the hive untouched" same_file_state orig.hive R
run_tp revert --settings one.reg --undo undo.reg R
ok "--settings with revert: usage error" expect_rc 2

# --- a mounted folder ------------------------------------------------------
mkdir -p vol/Windows/System32/config
cp orig.hive vol/Windows/System32/config/SOFTWARE
cp origsys.hive vol/Windows/System32/config/SYSTEM
run_tp check --settings "$S/hardening.reg" vol
ok "folder: check exit 3" expect_rc 3
run_tp apply --json --undo volundo.reg --settings "$S/hardening.reg" vol
ok "folder: apply exit 0, two hives patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status | tr "\n" ,)" = "patched,patched," ]'
run_tp check --settings "$S/hardening.reg" vol
ok "folder: check after apply exit 0" expect_rc 0
run_tp revert --undo volundo.reg vol
ok "folder: revert exact (regfexport)" \
  eval 'diff <(regf_dump orig.hive) <(regf_dump vol/Windows/System32/config/SOFTWARE) && diff <(regf_dump origsys.hive) <(regf_dump vol/Windows/System32/config/SYSTEM)'

# --- a REG_SZ replaced by a REG_DWORD of one byte (hex(4):01) ---------------------
printf '%s\n' 'Windows Registry Editor Version 5.00' '' \
  '[HKEY_LOCAL_MACHINE\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319]' \
  '"SchUseStrongCrypto"=hex(4):01' >short.reg
fixture software-server2019 short.hive
run_tp check --json --settings short.reg short.hive
ok "a 1-byte REG_DWORD replacing a REG_SZ: named by its type, not read as 4 bytes" \
  eval '[ $rc -eq 3 ] && json_get ".warnings[]" | grep -qx ".*SchUseStrongCrypto: would replace REG_SZ .* with REG_DWORD hex:01"'

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
