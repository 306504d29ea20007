#!/bin/bash
# Directory targets: a mounted Windows volume, its Windows folder, or
# its config folder, with names in any case.
. "$top_srcdir/tests/lib.sh"

mkvolume () {
  mkdir -p "$1/WINDOWS/system32/Config"
  fixture software-server2019 "$1/WINDOWS/system32/Config/software"
  fixture system "$1/WINDOWS/system32/Config/SYSTEM"
  echo "not a hive" >"$1/WINDOWS/system32/Config/SOFTWARE.LOG1"
}

for form in "" /WINDOWS /WINDOWS/system32/Config; do
  rm -rf vol; mkvolume vol
  run_tp apply --json "vol$form"
  ok "apply vol$form: exit 0" expect_rc 0
  ok "apply vol$form: two JSON lines, SOFTWARE and SYSTEM patched" \
    test "$(json_get '.hive + " " + .status' | tr '\n' ,)" = "SOFTWARE patched,SYSTEM patched,"
  ok "apply vol$form: found the hives whatever their case" \
    test "$(json_get .target | tr '\n' ,)" = "$WORK/vol/WINDOWS/system32/Config/software,$WORK/vol/WINDOWS/system32/Config/SYSTEM,"
done
ok "regfexport: obengine Start 2 in the volume's SYSTEM" \
  test "$(regf_value vol/WINDOWS/system32/Config/SYSTEM '\ControlSet002\Services\obengine' Start)" = "REG_DWORD_LITTLE_ENDIAN 2"

run_tp check vol
ok "check on the patched volume: compliant" expect_rc 0

# A volume without SYSTEM: SOFTWARE is still patched, the run fails.
rm -rf vol2; mkvolume vol2; rm vol2/WINDOWS/system32/Config/SYSTEM
run_tp apply --json vol2
ok "missing SYSTEM: exit 1" expect_rc 1
ok "missing SYSTEM: SOFTWARE patched all the same" test "$(json_get 'select(.hive == "SOFTWARE") | .status')" = patched
ok "missing SYSTEM: error names it" grep -q 'no SYSTEM hive found under vol2' "$WORK/err"
run_tp apply --no-service vol2
ok "missing SYSTEM with --no-service: exit 0" expect_rc 0

mkdir empty
run_tp check empty
ok "directory without hives: exit 1, says so in one line" eval '[ $rc -eq 1 ] && one_line_error "$WORK/empty" "not a Windows volume"'

# A hive that is a symbolic link leading out of the folder (an untrusted
# NTFS volume can carry one) is refused, the file it points to untouched;
# a link that stays inside the folder is followed.
rm -rf vol3 outside; mkvolume vol3; mkdir outside
mv vol3/WINDOWS/system32/Config/software outside/SOFTWARE
cp -p outside/SOFTWARE outside.copy
ln -s "$WORK/outside/SOFTWARE" vol3/WINDOWS/system32/Config/software
run_tp apply vol3
ok "hive linked out of the folder: exit 1, one line saying it leads out" \
  eval '[ $rc -eq 1 ] && grep -q "software: it leads out of the folder vol3" "$WORK/err" && [ "$(wc -l <"$WORK/err")" -eq 1 ]'
ok "hive linked out of the folder: the file outside is untouched" same_file_state outside.copy outside/SOFTWARE
run_tp check --json vol3
ok "one naming for every report: the refused link and the checked SYSTEM are absolute paths under the folder, each file as found" \
  test "$(json_get .target | tr '\n' ,)" = "$WORK/vol3/WINDOWS/system32/Config/software,$WORK/vol3/WINDOWS/system32/Config/SYSTEM,"
run_tp check --json ./vol3/../vol3/WINDOWS/system32/Config/nothere
ok "... and a missing hive file given relatively is named the same way" \
  test "$(json_get .target)" = "$WORK/vol3/WINDOWS/system32/Config/nothere"
rm vol3/WINDOWS/system32/Config/software
mv outside/SOFTWARE vol3/WINDOWS/real-software
ln -s ../../real-software vol3/WINDOWS/system32/Config/software
run_tp apply vol3
ok "hive linked within the folder: patched" expect_rc 0

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
