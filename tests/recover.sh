#!/bin/bash
# tlspatch recover, and apply on dirty hives, with the real dirty hives
# Windows wrote and Windows' own recovered results (../shared/testdata,
# skipped when absent; never copied into the project).
. "$top_srcdir/tests/lib.sh"

MKLOG=$top_builddir/tests/mklog

# --- our own dirty SOFTWARE hive: a log entry newer than the primary -------
# OLD is the fixture; NEW adds a value through hivex; mklog writes OLD as
# a dirty primary plus a .LOG1 whose entry holds NEW's changed pages.
fixture software-server2019 old.hive
cp old.hive new.hive
printf '%s\n' 'Windows Registry Editor Version 5.00' '' '[\Microsoft\Windows Azure Backup\Config]' \
  '"FromLog"=dword:0000002a' >add.reg
"$HIVEXREGEDIT" --merge new.hive add.reg
mkdir -p vol/Windows/System32/config
"$MKLOG" old.hive new.hive vol/Windows/System32/config/SOFTWARE vol/Windows/System32/config/SOFTWARE.LOG1 2>/dev/null
fixture system vol/Windows/System32/config/SYSTEM
cfg=vol/Windows/System32/config
cp -p $cfg/SOFTWARE dirty.orig; cp -p $cfg/SOFTWARE.LOG1 log.orig

run_tp check --json vol
ok "check on a dirty SOFTWARE: noncompliant, reports the recovery, writes nothing" \
  eval '[ $rc -eq 3 ] && [ "$(json_get "select(.hive == \"SOFTWARE\") | .recovery.entries")" = 1 ] && same_file_state dirty.orig $cfg/SOFTWARE'

cp -p $cfg/SOFTWARE r.hive; cp -p $cfg/SOFTWARE.LOG1 r.hive.LOG1
run_tp recover r.hive
ok "recover: the hive bins are exactly the newer state from the log" \
  eval '[ $rc -eq 0 ] && cmp <(tail -c +4097 r.hive) <(tail -c +4097 new.hive)'

run_tp apply --json vol
ok "apply on a dirty SOFTWARE (directory): exit 0, patched" \
  eval '[ $rc -eq 0 ] && [ "$(json_get "select(.hive == \"SOFTWARE\") | .status")" = patched ]'
ok "apply: the value that was only in the log survived (regfexport)" \
  test "$(regf_value $cfg/SOFTWARE '\Microsoft\Windows Azure Backup\Config' FromLog)" = "REG_DWORD_LITTLE_ENDIAN 42"
ok "apply: and the fix is there too, in the same write" \
  test "$(regf_value $cfg/SOFTWARE '\Microsoft\.NETFramework\V4.0.30319' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "apply: the result is clean (check: compliant, nothing to recover)" \
  eval '"$TLSPATCH" check --json vol >out2; [ $? -eq 0 ] && [ "$(jq -r .recovery out2 | sort -u)" = null ]'
ok "apply: the stale log is left as it was" same_file_state log.orig $cfg/SOFTWARE.LOG1

"$MKLOG" --bad-hash old.hive new.hive bad.hive bad.hive.LOG1 2>/dev/null
cp -p bad.hive bad.orig; cp -p bad.hive.LOG1 badlog.orig
run_tp apply bad.hive
ok "a log whose first entry has a bad hash: exit 1, one-line error" one_line_error bad.hive "no transaction log offers a recovery"
ok "bad hash: hive and log byte-identical" \
  eval 'same_file_state bad.orig bad.hive && same_file_state badlog.orig bad.hive.LOG1'

# --- one crafted case per recovery rule (regf-format-specification.md) ------
# bins_of HIVE: its hive bins after the first bin's header (a damaged
# primary's first bin keeps its own timestamp).
bins_of () { tail -c +4129 "$1"; }
recovered_as_new () { [ $rc -eq 0 ] && cmp <(bins_of "$1") <(bins_of new.hive); }

"$MKLOG" --ahead 30 old.hive new.hive ahead.hive ahead.hive.LOG1 2>/dev/null
run_tp recover --json ahead.hive
ok "new format: entries numbered above the primary's write apply (logs ahead, as Windows 10 leaves them)" \
  recovered_as_new ahead.hive

"$MKLOG" old.hive new.hive split.hive split.hive.LOG1 split.hive.LOG2 2>/dev/null
run_tp recover --json split.hive
ok "new format: entries N in .LOG2 and N+1 in .LOG1: both apply, .LOG2 first, whatever the names" \
  eval 'recovered_as_new split.hive && [ "$(json_get ".recovery.logs | map(split(\"/\") | last) | join(\" \")")" = "split.hive.LOG2 split.hive.LOG1" ]'

# A bad header checksum, in both formats (the old one's first bin keeps
# an older timestamp, as Windows 7 leaves it: not demanded).
for fmt in new old; do
  "$MKLOG" $([ $fmt = old ] && echo --old) --damage old.hive new.hive dam-$fmt.hive dam-$fmt.hive.LOG1 2>/dev/null
  run_tp recover --json dam-$fmt.hive
  ok "$fmt format: a bad header checksum: the base block comes from the log, the replay applies" \
    eval 'recovered_as_new dam-$fmt.hive && [ "$(json_get .recovery.base_block_from_log)" = true ] &&
          [ "$(json_get .recovery.format)" = $fmt ] && regf_dump dam-$fmt.hive >/dev/null'
done

"$MKLOG" --stale old.hive new.hive stale.hive stale.hive.LOG1 2>/dev/null
cp -p stale.hive stale.orig
run_tp recover stale.hive
ok "new format: entries older than the primary's last completed write: refused, one line, untouched" \
  eval 'one_line_error stale.hive stale && same_file_state stale.orig stale.hive'

"$MKLOG" --old old.hive new.hive o.hive o.hive.LOG1 2>/dev/null
run_tp recover --json o.hive
ok "old format: the dirty pages of .LOG1 apply" \
  eval 'recovered_as_new o.hive && [ "$(json_get .recovery.format)" = old ]'

"$MKLOG" --old old.hive new.hive cum.hive cum.hive.LOG1 cum.hive.LOG2 2>/dev/null
run_tp recover --json cum.hive
ok "old format: .LOG1 from an older write, .LOG2 newer and cumulative: .LOG2 alone applies" \
  eval 'recovered_as_new cum.hive && [ "$(json_get ".recovery.logs | map(split(\"/\") | last) | join(\" \")")" = cum.hive.LOG2 ]'
"$MKLOG" --old old.hive new.hive one.hive one.hive.LOG1 one.hive.LOG2 2>/dev/null
rm one.hive.LOG2
cp -p one.hive one.orig
run_tp recover one.hive
ok "old format: the older write's .LOG1 alone does not apply to a valid primary: refused, untouched" \
  eval 'one_line_error one.hive timestamp && same_file_state one.orig one.hive'

# --- sparse files: read by what they announce, memory bounded ---------------
# A 1.5 GB log (a sparse hole after its entry) is read by its entries:
# strace counts the bytes read from it. A dirty primary with a bad
# checksum and a 2 GB hole is refused as far larger than its bins,
# without copying the hole (GNU time's peak RSS).
"$MKLOG" old.hive new.hive sp.hive sp.hive.LOG1 2>/dev/null
log_bytes=$(stat -c %s sp.hive.LOG1)
truncate -s 1536M sp.hive.LOG1
ASAN_OPTIONS=$traced_asan strace -f -y -e trace=read,pread64 -o sp.trace "$TLSPATCH" recover sp.hive >/dev/null 2>&1; rc=$?
read_from_log=$(grep 'sp\.hive\.LOG1>' sp.trace | sed -n 's/.*= \([0-9]*\)$/\1/p' | awk '{s += $1} END {print s + 0}')
ok "a 1.5 GB sparse log: recovered, and only its base block and entry are read, with a look at the next sector ($read_from_log of $log_bytes bytes)" \
  eval 'recovered_as_new sp.hive && [ "$read_from_log" -le $((log_bytes + 512)) ]'
"$MKLOG" --damage old.hive new.hive hole.hive hole.hive.LOG1 2>/dev/null
truncate -s 2G hole.hive
cp -p hole.hive hole.orig 2>/dev/null || cp --sparse=always -p hole.hive hole.orig
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f %M -o rss.txt "$TLSPATCH" check hole.hive >"$WORK/out" 2>"$WORK/err"; rc=$?
  rss=$(tail -n 1 rss.txt)
  ok "a dirty 2 GB sparse primary with a bad checksum: refused as far larger than its bins, in $rss KiB of memory" \
    eval 'one_line_error hole.hive "far larger than its hive bins" && [ "$rss" -lt 400000 ] && same_file_state hole.orig hole.hive'
else
  skip "GNU time is not installed (/usr/bin/time)"
fi
rm -f hole.hive hole.orig sp.hive.LOG1

# --- real dirty hives from Windows -------------------------------------------
DATA=${TLSPATCH_TESTDATA:-$top_srcdir/../shared/testdata/regf-logs}
if [ ! -d "$DATA/NewDirtyHive1" ] || [ ! -d "$DATA/OldDirtyHive" ]; then
  for i in $(seq 18); do skip "no Windows test data in $DATA"; done
  done_testing; exit
fi
cp "$DATA"/NewDirtyHive1/NewDirtyHive* "$DATA"/OldDirtyHive/OldDirtyHive* .
chmod u+w ./*
for f in NewDirtyHive* OldDirtyHive*; do cp -p "$f" "$f.orig"; done

run_tp check --json NewDirtyHive
ok "check on a dirty hive: reports the recovery, writes nothing" \
  eval '[ "$(json_get .recovery.entries)" = 4 ] && same_file_state NewDirtyHive.orig NewDirtyHive'

run_tp recover --json NewDirtyHive OldDirtyHive
ok "recover: exit 0, both written" eval '[ $rc -eq 0 ] && [ "$(json_get .status | sort -u)" = recovered ]'
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
ok "OldDirtyHive: hive bins byte-identical to Windows 7's but for the 6 bytes Windows 7 wrote after its recovery (first bin's timestamp; one key's largest value name length, 24 -> 2)" \
  test "$(cmp -l <(tail -c +4097 OldDirtyHive) <(tail -c +4097 "$DATA/OldDirtyHive/RecoveredHive_Windows7") | awk '{print $1}' | tr '\n' ' ')" = "21 22 23 24 25 437705 "
ok "the stale logs are left as they were" \
  eval '( for f in NewDirtyHive.LOG1 NewDirtyHive.LOG2 OldDirtyHive.LOG1; do same_file_state $f.orig $f || exit 1; done )'

# Old format, base block damaged: the log's copy replaces it, although the
# first bin's timestamp (Windows 7's backup copy) is older than the log's.
cp OldDirtyHive.orig od.hive; cp OldDirtyHive.LOG1.orig od.hive.LOG1
printf '\x55' | dd of=od.hive bs=1 seek=100 conv=notrunc 2>/dev/null
run_tp recover --json od.hive
ok "OldDirtyHive with a bad header checksum: recovered from the log's base block, same bins" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .recovery.base_block_from_log)" = true ] && cmp <(tail -c +4097 od.hive) <(tail -c +4097 OldDirtyHive)'

# Windows 10 logs ahead of their primary (yarp's result beside them), and
# an NTUSER.DAT whose .LOG2 is stale: same bins as yarp's recovery.
for case in UsrClassAhead:UsrClass.dat NtuserTransactions:transactions_NTUSER.DAT; do
  dir=${case%%:*} hive=${case#*:}
  if [ ! -d "$DATA/$dir" ]; then skip "no $dir in $DATA"; skip "no $dir in $DATA"; continue; fi
  cp "$DATA/$dir"/* .; chmod u+w ./*
  run_tp recover --json "$hive"
  ok "$dir: recovered, hive bins byte-identical to yarp's recovery" \
    eval '[ $rc -eq 0 ] && cmp <(tail -c +4097 "$hive") <(tail -c +4097 RecoveredHive_yarp)'
  ok "$dir: the same tree as yarp's recovery (regfexport)" \
    eval 'diff <(regf_dump "$hive") <(regf_dump RecoveredHive_yarp)'
done

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

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
