#!/bin/bash
# --undo records the previous values; revert (and hivexregedit --merge)
# restore them exactly.
. "$top_srcdir/tests/lib.sh"

fixture software-server2019 orig.hive
fixture system origsys.hive
cp orig.hive SOFTWARE
cp origsys.hive SYSTEM

run_tp apply --json --undo undo.reg SOFTWARE SYSTEM
ok "apply --undo on two hives: exit 0" expect_rc 0
ok "undo file written" test -s undo.reg
ok "undo records an absent value as =-" grep -q '^"SchUseStrongCrypto"=-$' undo.reg
ok "undo records the REG_SZ \"1\" with its exact type and bytes" \
  grep -q '^"SchUseStrongCrypto"=hex(1):31,00,00,00$' undo.reg
ok "undo records Start 3 for both boot control sets" \
  test "$(grep -c '^"Start"=hex(4):03,00,00,00$' undo.reg)" -eq 2

run_tp revert --json --undo undo.reg SOFTWARE SYSTEM
ok "revert: exit 0, both patched back" eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = reverted ]'
ok "revert: SOFTWARE exactly as before (hivexregedit export)" eval 'diff <(export_reg orig.hive) <(export_reg SOFTWARE)'
ok "revert: SYSTEM exactly as before (hivexregedit export)" eval 'diff <(export_reg origsys.hive) <(export_reg SYSTEM)'
ok "revert: libregf agrees (same export as the original)" \
  eval 'diff <(regf_dump orig.hive) <(regf_dump SOFTWARE) && diff <(regf_dump origsys.hive) <(regf_dump SYSTEM)'

cp -p SOFTWARE reverted.hive
run_tp revert --undo undo.reg SOFTWARE
ok "second revert: nothing to do, file untouched" eval '[ $rc -eq 0 ] && same_file_state reverted.hive SOFTWARE'

# An existing undo file is never overwritten; nothing is written then.
cp -p SOFTWARE before.hive
cp -p undo.reg undo.before
run_tp apply --undo undo.reg SOFTWARE SOFTWARE
ok "existing undo file: exit 1" expect_rc 1
ok "existing undo file: refused once, before any planning, one line" \
  eval 'one_line_error undo.reg "undo file already exists" && grep -q "^error  *-  *0  *undo.reg$" "$WORK/out" &&
        [ "$(wc -l <"$WORK/out")" -eq 2 ] && same_file_state undo.before undo.reg'
ok "existing undo file: hive untouched" same_file_state before.hive SOFTWARE

# hivexregedit --merge accepts a one-hive undo record.
cp orig.hive h2.hive
run_tp apply --undo undo2.reg h2.hive
ok "one-hive apply --undo: exit 0" expect_rc 0
hint=$(sed -n "s/^; or, this one hive: hivexregedit //p" undo2.reg)
ok "the one-hive record's header names the hivexregedit command that restores it" \
  test "$hint" = "--merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' HIVE FILE"
ok "hivexregedit --merge, run as the header says, accepts the undo record" \
  eval "\"\$HIVEXREGEDIT\" ${hint/HIVE FILE/h2.hive undo2.reg}"
mkdir -p elsewhere && cp -p SOFTWARE elsewhere/copy.hive 2>/dev/null || cp orig.hive elsewhere/copy.hive
"$TLSPATCH" apply -q elsewhere/copy.hive
run_tp revert --json --undo undo2.reg elsewhere/copy.hive
ok "revert with a record made for another target: done, and a warning says so" \
  eval '[ $rc -eq 0 ] && json_get ".warnings[]" | grep -q "record for a SOFTWARE hive was made for $WORK/h2.hive, not for this one"'
sorted_export () { export_reg "$1" | LC_ALL=C sort; }
ok "after hivexregedit --merge the values are as before (order aside)" \
  eval 'diff <(sorted_export orig.hive) <(sorted_export h2.hive)'

# A damaged undo file is refused before anything is touched.
printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\X]\nnonsense\n' >bad.reg
cp -p SOFTWARE before2.hive
run_tp revert --undo bad.reg SOFTWARE
ok "damaged undo file: exit 1, file untouched" eval '[ $rc -eq 1 ] && same_file_state before2.hive SOFTWARE'

# One record for several hives of a kind: each hive reverts from its own
# part, wherever that part is in the file (here the last of three).
fixture software-server2019 m1.hive
cp m1.hive m2.hive; cp m1.hive m3.hive; cp m1.hive m3.orig
run_tp apply --undo multi.reg m1.hive m2.hive m3.hive
ok "a record of several hives suggests tlspatch revert only (hivexregedit cannot merge it whole)" \
  eval '! grep -q hivexregedit multi.reg && grep -q "^; records for several hives: restore them with tlspatch revert *$" multi.reg &&
        [ "$(sed -n 6p multi.reg)" = "" ]'
run_tp revert --undo multi.reg m3.hive
ok "revert of the third of three SOFTWARE hives in one record: exit 0, restored (hivexregedit)" \
  eval '[ $rc -eq 0 ] && diff <(export_reg m3.orig) <(export_reg m3.hive)'

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
