#!/bin/bash
# SOFTWARE hives other than Server 2019: 32-bit Windows, .NET 4.5.2, no
# version keys.
. "$top_srcdir/tests/lib.sh"

# 32-bit Windows 7: no Wow6432Node, which is normal.
fixture software-32bit w7.hive
run_tp apply --json w7.hive
ok "32-bit: exit 0, patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok "32-bit: two version keys set, no warning about Wow6432Node" \
  eval '[ "$(json_get ".changes | length")" = 2 ] && [ "$(json_get ".warnings | length")" = 0 ]'
ok "32-bit: regfexport sees v4.0.30319 = 1" \
  test "$(regf_value w7.hive '\Microsoft\.NETFramework\v4.0.30319' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "32-bit: .NET 4.8 reported" test "$(json_get .dotnet.version)" = 4.8

# .NET 4.5.2: KB cause 1. apply sets the values but warns; check stays 3.
fixture software-net452 n452.hive
run_tp apply --json n452.hive
ok ".NET 4.5.2: apply exits 0 and patches" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok ".NET 4.5.2: apply warns that 4.6 is needed" eval 'json_get ".warnings[]" | grep -q "4.5.2.*needs 4.6"'
ok ".NET 4.5.2: JSON says the KB is not met" test "$(json_get .dotnet.meets_kb4033999)" = false
run_tp check --json n452.hive
ok ".NET 4.5.2: check after apply is still noncompliant (exit 3)" \
  eval '[ $rc -eq 3 ] && [ "$(json_get .status)" = noncompliant ] && [ "$(json_get ".changes | length")" = 0 ]'

# No version keys at all: a warning, nothing written.
fixture software-noversions nover.hive
cp -p nover.hive nover.copy
run_tp apply --json nover.hive
ok "no version keys: exit 0, unchanged" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = unchanged ]'
ok "no version keys: warned" eval 'json_get ".warnings[]" | grep -q "no .NET version keys"'
ok "no version keys: file untouched" same_file_state nover.copy nover.hive

done_testing
