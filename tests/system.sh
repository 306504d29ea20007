#!/bin/bash
# SYSTEM hive: obengine marked for a clean start in the control sets
# Windows boots (Default=2 and Current=1), LastKnownGood (3) untouched.
. "$top_srcdir/tests/lib.sh"

fixture system orig.hive
cp -p orig.hive SYSTEM

start_of () { regf_value SYSTEM "\\$1\\Services\\$2" Start; }

run_tp check --json SYSTEM
ok "check: obengine manual in the boot control sets, exit 3" expect_rc 3
ok "check writes nothing" same_file_state orig.hive SYSTEM

run_tp apply --json SYSTEM
ok "apply exits 0, patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok "changes: Start 3 -> 2 in ControlSet002 (Default) and ControlSet001 (Current)" \
  test "$(json_get '.changes[] | .key + " " + .name + " " + (.old|tostring) + " " + (.new|tostring)')" = \
  "$(printf '%s\n' 'HKLM\SYSTEM\ControlSet002\Services\obengine Start 3 2' 'HKLM\SYSTEM\ControlSet001\Services\obengine Start 3 2')"
ok "regfexport: ControlSet001 obengine Start 2" test "$(start_of ControlSet001 obengine)" = "REG_DWORD_LITTLE_ENDIAN 2"
ok "regfexport: ControlSet002 obengine Start 2" test "$(start_of ControlSet002 obengine)" = "REG_DWORD_LITTLE_ENDIAN 2"
ok "regfexport: LastKnownGood ControlSet003 untouched (3)" test "$(start_of ControlSet003 obengine)" = "REG_DWORD_LITTLE_ENDIAN 3"
without_start () { export_reg "$1" | grep -v '^"Start"='; }
ok "hivexregedit: nothing but Start values changed" eval 'diff <(without_start orig.hive) <(without_start SYSTEM)'

cp -p SYSTEM patched.hive
run_tp apply SYSTEM
ok "second apply: exit 0, file untouched" eval '[ $rc -eq 0 ] && same_file_state patched.hive SYSTEM'
run_tp check SYSTEM
ok "check after apply: compliant" expect_rc 0

# Other services: disabled stays disabled, automatic stays, absent is reported.
cp orig.hive other.hive
run_tp apply --json --service svcdisabled --service svcauto --service nosuchsvc --service SVCMANUAL other.hive
ok "several --service: exit 0" expect_rc 0
ok "only svcmanual (matched case-insensitively) changes" \
  test "$(json_get '[.changes[].key] | join(",")')" = 'HKLM\SYSTEM\ControlSet002\Services\svcmanual,HKLM\SYSTEM\ControlSet001\Services\svcmanual'
ok "disabled service: warned, left disabled" eval 'json_get ".warnings[]" | grep -q "svcdisabled is disabled in ControlSet002"'
ok "regfexport: svcdisabled still 4" test "$(regf_value other.hive '\ControlSet002\Services\svcdisabled' Start)" = "REG_DWORD_LITTLE_ENDIAN 4"
ok "absent service: reported, not an error" eval 'json_get ".warnings[]" | grep -q "nosuchsvc is not installed in ControlSet002"'
ok "obengine is not touched when not asked for" test "$(regf_value other.hive '\ControlSet001\Services\obengine' Start)" = "REG_DWORD_LITTLE_ENDIAN 3"

# --no-service leaves the SYSTEM hive alone
cp -p orig.hive nosvc.hive
run_tp apply --no-service nosvc.hive
ok "--no-service: exit 0, hive untouched" eval '[ $rc -eq 0 ] && same_file_state orig.hive nosvc.hive'

# Missing \Select or control set: clear error, file untouched
fixture system-noselect noselect.hive
cp -p noselect.hive noselect.copy
run_tp apply noselect.hive
ok "no \\Select: exit 1" expect_rc 1
ok "no \\Select: one-line error naming the hive and Select" one_line_error noselect.hive 'Select'
ok "no \\Select: hive untouched" same_file_state noselect.copy noselect.hive

fixture system-missingcs missingcs.hive
cp -p missingcs.hive missingcs.copy
run_tp check missingcs.hive
ok "missing control set: exit 1" expect_rc 1
ok "missing control set: error names ControlSet002" one_line_error missingcs.hive 'ControlSet002'
ok "missing control set: hive untouched" same_file_state missingcs.copy missingcs.hive

# Damage is never absence: obengine's Start records in both boot control
# sets claim a data size that points past any cell. Read as "no DWORD
# Start" they would make check say compliant.
cp orig.hive damaged.hive
for cs in ControlSet001 ControlSet002; do
  "$top_builddir/tests/regpoke" damaged.hive "\\$cs\\Services\\obengine" Start size 00100000
done
cp -p damaged.hive damaged.copy
for mode in check apply; do
  run_tp $mode damaged.hive
  ok "damaged Start records: $mode exits 1" expect_rc 1
  ok "damaged Start records: $mode names the damage" one_line_error damaged.hive 'Start value of service obengine in ControlSet002 is damaged'
  ok "damaged Start records: $mode leaves the hive untouched" same_file_state damaged.copy damaged.hive
done

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
