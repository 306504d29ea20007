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

# A big-data neighbour (a 20000-byte REG_BINARY: db record, segment list,
# two segments) in a version key: the key is written, not refused, and
# the neighbour survives byte-exact.
V4='\Microsoft\.NETFramework\v4.0.30319'
fixture software-bigdata big.hive
cp big.hive big.orig
run_tp apply --json big.hive
ok "big-data neighbour: exit 0, patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok "big-data neighbour: SchUseStrongCrypto set beside it (libregf)" \
  test "$(regf_value big.hive "$V4" SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "big-data neighbour: the key's other values byte-exact (hivexregedit)" \
  eval 'diff <(hivexregedit --export big.orig "$V4") <(hivexregedit --export big.hive "$V4" | grep -v "^\"SchUseStrongCrypto\"")'
ok "big-data neighbour: the 20000 bytes read the same (libregf)" \
  eval 'diff <(regf_dump big.orig | grep -A1260 "^Value: [0-9]* Blob$" | sed "/^$/q") \
             <(regf_dump big.hive | grep -A1260 "^Value: [0-9]* Blob$" | sed "/^$/q") &&
        regf_dump big.hive | grep -A3 "^Value: [0-9]* Blob$" | grep -q "Data size: 20000"'

# An unset neighbour (data size 0, offset 0xFFFFFFFF): hivex cannot read
# it at all, libregf calls it corrupted; it stays exactly as it was.
fixture software-unset unset.hive
cp unset.hive unset.orig
run_tp apply --json unset.hive
ok "unset neighbour: exit 0, patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok "unset neighbour: SchUseStrongCrypto set beside it (libregf)" \
  test "$(regf_value unset.hive "$V4" SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
# key_values HIVE: libregf's view of the 64-bit v4.0.30319 key, without
# the SchUseStrongCrypto value the apply adds.
key_values () {
  regf_dump "$1" | awk '/^Key path: / { k = $0 } k ~ /^Key path: ROOT.Microsoft..NETFramework.v4.0.30319$/' |
    awk '/^Value: / { skip = / SchUseStrongCrypto$/ } !skip'
}
ok "unset neighbour: every other value of the key as before, the unset one included (libregf)" \
  eval 'diff <(key_values unset.orig) <(key_values unset.hive) && key_values unset.hive | grep -q "Value: 1 Empty"'

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
