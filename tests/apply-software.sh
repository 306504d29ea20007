#!/bin/bash
# apply/check on a realistic Windows Server 2019 SOFTWARE hive.
. "$top_srcdir/tests/lib.sh"

fixture software-server2019 orig.hive
cp -p orig.hive SOFTWARE
NET='\Microsoft\.NETFramework'
WOW='\Wow6432Node\Microsoft\.NETFramework'

# check: reports, writes nothing, exit 3
run_tp check --json SOFTWARE
ok "check on an unpatched hive exits 3" expect_rc 3
ok "check reports noncompliant with 5 pending changes" \
  test "$(json_get '.status + " " + (.changes | length | tostring)')" = "noncompliant 5"
ok "check leaves the hive byte-identical, mtime too" same_file_state orig.hive SOFTWARE

# apply --dry-run: reports, writes nothing, exit 0
run_tp apply -n --json SOFTWARE
ok "dry run exits 0 and says so: would_patch" eval '[ $rc -eq 0 ] && [ "$(json_get ".status + \" \" + (.dry_run|tostring)")" = "would_patch true" ]'
ok "dry run writes nothing" same_file_state orig.hive SOFTWARE

# apply
run_tp apply --json SOFTWARE
ok "apply exits 0" expect_rc 0
ok "apply reports patched" test "$(json_get .status)" = patched
ok "apply reports the .NET release" test "$(json_get '(.dotnet.release|tostring) + " " + .dotnet.version')" = "461814 4.7.2"
ok "changes name exactly the version keys" test "$(json_get '.changes[] | .key + " " + .name + " " + (.old|tostring) + " " + (.new|tostring)' | sort)" = "$(printf '%s\n' \
  'HKLM\SOFTWARE\Microsoft\.NETFramework\V4.0.30319 SchUseStrongCrypto 0 1' \
  'HKLM\SOFTWARE\Microsoft\.NETFramework\v2.0.50727 SchUseStrongCrypto null 1' \
  'HKLM\SOFTWARE\Microsoft\.NETFramework\v3.0 SchUseStrongCrypto null 1' \
  'HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v2.0.50727 SchUseStrongCrypto null 1' \
  'HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319 SchUseStrongCrypto 1 1' | sort)"
ok "the REG_SZ value is reported as replaced, with its text" eval 'json_get ".warnings[]" | grep -q "SchUseStrongCrypto: replacing REG_SZ .1. with REG_DWORD 1"'

# Independent reader 1: libregf sees DWORD 1 in every version key.
for key in "$NET\\v2.0.50727" "$NET\\v3.0" "$NET\\V4.0.30319" "$WOW\\v2.0.50727" "$WOW\\v3.0" "$WOW\\v4.0.30319"; do
  ok "regfexport: $key SchUseStrongCrypto is DWORD 1" \
    test "$(regf_value SOFTWARE "$key" SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
done
for key in "$NET\\policy" "$NET\\policy\\v4.0" "$NET\\v2.0 SP1" "$NET\\AppContext" "$WOW\\policy\\v4.0"; do
  ok "regfexport: $key is left alone" test "$(regf_value SOFTWARE "$key" SchUseStrongCrypto)" = ABSENT
done

# Independent reader 2: everything else is exactly as before.
without_scs () { export_reg "$1" | grep -v '^"SchUseStrongCrypto"='; }
ok "hivexregedit: nothing but SchUseStrongCrypto changed" \
  eval 'diff <(without_scs orig.hive) <(without_scs SOFTWARE)'
ok "hivexregedit: six SchUseStrongCrypto=1 now" \
  test "$(export_reg SOFTWARE | grep -c '^"SchUseStrongCrypto"=dword:00000001$')" -eq 6
ok "header: sequence numbers equal, checksum valid (libregf parses it)" regf_dump SOFTWARE
ok "owner and mode kept" test "$(stat -c %u:%g:%a SOFTWARE)" = "$(stat -c %u:%g:%a orig.hive)"
ok "no stray files beside the hive" only_files . orig.hive SOFTWARE out err .ok.out

# idempotent: a second apply writes nothing
cp -p SOFTWARE patched.hive
run_tp apply --json SOFTWARE
ok "second apply exits 0, unchanged" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = unchanged ]'
ok "second apply leaves bytes and mtime alone" same_file_state patched.hive SOFTWARE

run_tp check SOFTWARE
ok "check after apply: compliant, exit 0" expect_rc 0
ok "table output names the status" grep -q '^compliant .*SOFTWARE' "$WORK/out"

# --system-default-tls adds SystemDefaultTlsVersions=1 to every version key
cp orig.hive sdt.hive
run_tp apply --system-default-tls sdt.hive
ok "--system-default-tls: apply exits 0" expect_rc 0
ok "--system-default-tls: 6 SystemDefaultTlsVersions=1" \
  test "$(export_reg sdt.hive | grep -c '^"SystemDefaultTlsVersions"=dword:00000001$')" -eq 6
run_tp check sdt.hive
ok "check without the flag is still compliant" expect_rc 0
run_tp check --system-default-tls SOFTWARE
ok "check with the flag on a hive without them: exit 3" expect_rc 3

# an unusual owner and mode survive the rename
cp orig.hive own.hive
if chown 65534:65534 own.hive 2>/dev/null; then
  chmod 640 own.hive
  run_tp apply own.hive
  ok "owner and mode kept (65534:65534, 0640)" \
    eval '[ $rc -eq 0 ] && [ "$(stat -c %u:%g:%a own.hive)" = 65534:65534:640 ]'
else
  skip "owner: not root"
fi

# --backup keeps the original beside the hive
cp -p orig.hive bk.hive
run_tp apply --backup --json bk.hive
ok "--backup: original kept byte-identical" same_bytes orig.hive bk.hive.tlspatch-bak
ok "--backup: reported in JSON" test "$(json_get .backup)" = "$WORK/bk.hive.tlspatch-bak"

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
