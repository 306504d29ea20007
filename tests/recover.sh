#!/bin/bash
# tlspatch recover, and apply on dirty hives, with the real dirty hives
# Windows wrote and Windows' own recovered results (../shared/testdata,
# skipped when absent; never copied into the project).
. "$top_srcdir/tests/lib.sh"

DATA=${TLSPATCH_TESTDATA:-$top_srcdir/../shared/testdata/regf-logs}
if [ ! -d "$DATA/NewDirtyHive1" ] || [ ! -d "$DATA/OldDirtyHive" ]; then
  echo "1..0 # SKIP no test data in $DATA"; exit 0
fi
cp "$DATA"/NewDirtyHive1/NewDirtyHive* "$DATA"/OldDirtyHive/OldDirtyHive* .
chmod u+w ./*
for f in NewDirtyHive* OldDirtyHive*; do cp -p "$f" "$f.orig"; done

run_tp check --json NewDirtyHive
ok "check on a dirty hive: reports the recovery, writes nothing" \
  eval '[ "$(json_get .recovery.entries)" = 4 ] && same_file_state NewDirtyHive.orig NewDirtyHive'

run_tp recover --json NewDirtyHive OldDirtyHive
ok "recover: exit 0, both written" eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = patched ]'
ok "recover (new format): reports logs, entries, sequence numbers" \
  test "$(json_get 'select(.target | endswith("NewDirtyHive")) | .recovery | .format + " " + (.logs|length|tostring) + " " + (.entries|tostring) + " " + (.sequence_before|map(tostring)|join(","))')" = "new 2 4 3,2"
ok "NewDirtyHive1: hive bins byte-identical to Windows 10's recovery" \
  cmp <(tail -c +4097 NewDirtyHive) <(tail -c +4097 "$DATA/NewDirtyHive1/RecoveredHive_Windows10")
ok "OldDirtyHive: same keys and values as Windows 7's recovery (hivexregedit)" \
  eval 'diff <(export_reg OldDirtyHive) <(export_reg "$DATA/OldDirtyHive/RecoveredHive_Windows7")'
ok "OldDirtyHive: same keys and values as Windows 7's recovery (regfexport)" \
  eval 'diff <(regf_dump OldDirtyHive) <(regf_dump "$DATA/OldDirtyHive/RecoveredHive_Windows7")'
ok "the recovered hives are clean (libregf reads them; tlspatch finds nothing to recover)" \
  eval 'regf_dump NewDirtyHive >/dev/null && "$TLSPATCH" recover -q NewDirtyHive OldDirtyHive'
ok "the stale logs are left as they were" \
  eval 'for f in NewDirtyHive.LOG1 NewDirtyHive.LOG2 OldDirtyHive.LOG1; do same_file_state $f.orig $f || exit 1; done'

cp -p NewDirtyHive clean.copy
run_tp recover NewDirtyHive
ok "recover on a clean hive: exit 0, nothing written" eval '[ $rc -eq 0 ] && same_file_state clean.copy NewDirtyHive'

# --no-recover keeps the part-1 refusal; damaged logs are refused untouched.
for f in NewDirtyHive*.orig; do cp -p "$f" "${f%.orig}"; done
run_tp apply --no-recover NewDirtyHive
ok "--no-recover: a dirty hive is refused" eval '[ $rc -eq 1 ] && grep -q dirty "$WORK/err"'
printf 'XXXX' | dd of=NewDirtyHive.LOG1 bs=1 seek=600 conv=notrunc 2>/dev/null
printf 'XXXX' | dd of=NewDirtyHive.LOG2 bs=1 seek=600 conv=notrunc 2>/dev/null
cp -p NewDirtyHive.LOG1 l1.copy; cp -p NewDirtyHive.LOG2 l2.copy
run_tp recover NewDirtyHive
ok "damaged first log entries: exit 1, one-line error" one_line_error NewDirtyHive "recover"
ok "damaged logs: every file byte-identical" \
  eval 'same_file_state NewDirtyHive.orig NewDirtyHive && same_file_state l1.copy NewDirtyHive.LOG1 && same_file_state l2.copy NewDirtyHive.LOG2'

done_testing
