#!/bin/bash
# Everything tlspatch must refuse: exit 1, a one-line error naming the
# target and the reason, and the input byte-identical (mtime too).
. "$top_srcdir/tests/lib.sh"

# refuse NAME FILE WORD [MODE]: apply (or MODE) on FILE is refused.
refuse () {
  local name=$1 file=$2 word=$3 mode=${4:-apply}
  cp -p "$file" "$file.copy"
  run_tp "$mode" "$file"
  ok "$name: exit 1" expect_rc 1
  ok "$name: one-line error naming the target and '$word'" one_line_error "$(basename "$file")" "$word"
  ok "$name: input byte-identical" same_file_state "$file.copy" "$file"
  rm -f "$file.copy"
}

echo "not a hive at all" >text.hive
refuse "text file" text.hive "not a registry hive"

: >empty.hive
refuse "empty file" empty.hive "empty"

fixture software-server2019 good.hive
head -c 6000 good.hive >small.hive
refuse "under 8 KiB" small.hive "8 KiB"

head -c $(( $(stat -c %s good.hive) - 4096 )) good.hive >trunc.hive
refuse "truncated" trunc.hive "truncated"

fixture software-server2019 badsum.hive --bad-checksum
refuse "bad header checksum" badsum.hive "checksum"
refuse "bad header checksum (check)" badsum.hive "checksum" check

fixture software-server2019 dirty.hive --seq 5,4
refuse "dirty hive" dirty.hive "dirty"
fixture system dirtysys.hive --seq 9,8
refuse "dirty SYSTEM hive" dirtysys.hive "dirty"
mkdir nolog
fixture system nolog/SYSTEM --seq 205,204
run_tp check nolog/SYSTEM
ok "SYSTEM copied out without its logs: one line naming the hive (absolute path), then at most 180 characters naming the logs looked for and what to do" \
  eval '[ $rc -eq 1 ] && [ $(wc -l <"$WORK/err") -eq 1 ] && msg=$(sed "s|^tlspatch: $PWD/nolog/SYSTEM: ||" "$WORK/err") &&
        [ "$msg" != "$(cat "$WORK/err")" ] && [ ${#msg} -le 180 ] &&
        grep -q "dirty (sequence numbers 205 != 204) and no log is beside it (SYSTEM.LOG1, SYSTEM.LOG2, SYSTEM.LOG): copy them beside it, or run tlspatch on the volume or image" "$WORK/err"'

# The real one: a Windows 10 1709 SYSTEM hive copied out without its logs
# (../shared/testdata, skipped when absent).
REAL=${TLSPATCH_TESTDATA:-$top_srcdir/../shared/testdata/regf-logs}/../real-hives/SYSTEM_Win10_1709_dirty_nologs
if [ -f "$REAL" ]; then
  mkdir -p real && cp "$REAL" real/SYSTEM && chmod u+w real/SYSTEM && cp -p real/SYSTEM real.orig
  run_tp apply real/SYSTEM
  ok "a real Windows 10 SYSTEM copied out without its logs: refused in one line naming the logs to copy, untouched" \
    eval 'one_line_error real/SYSTEM "no log is beside it (SYSTEM.LOG1, SYSTEM.LOG2, SYSTEM.LOG)" && same_file_state real.orig real/SYSTEM'
else
  skip "no real dirty SYSTEM hive in ../shared/testdata/real-hives"
fi

fixture neither neither.hive
refuse "neither SOFTWARE nor SYSTEM" neither.hive "neither"

fixture software-server2019 ro.hive
chmod 444 ro.hive
refuse "read-only file" ro.hive "read-only"

mkdir rodir
fixture software-server2019 rodir/SOFTWARE
chmod 555 rodir
refuse "read-only directory" rodir/SOFTWARE "read-only"
chmod 755 rodir

# A crafted hive where two keys share one value list (the patch would
# release it under the other key) is refused before anything is written
# (the pass over the whole tree counts the list's references), and a
# hive with a damaged cell away from every lookup too: byte-identical.
REGPOKE=$top_builddir/tests/regpoke
fixture software-server2019 shared.hive
"$REGPOKE" shared.hive --share-values '\Microsoft\.NETFramework\policy' '\Microsoft\.NETFramework\v2.0.50727'
refuse "a value list shared by two keys" shared.hive "is also used by another record"
cp -p shared.hive shared.copy
run_tp apply -n shared.hive
ok "a value list shared by two keys, dry run: the error apply would meet (exit 1, one line), untouched" \
  eval 'expect_rc 1 && one_line_error shared.hive "apply would refuse to write this hive" &&
        same_file_state shared.copy shared.hive'
run_tp check --json shared.hive
ok "check of a hive apply would refuse to write: noncompliant (exit 3), the reason a warning" \
  eval 'expect_rc 3 && [ "$(json_get .status)" = noncompliant ] && [ ! -s "$WORK/err" ] &&
        json_get ".warnings[]" | grep -q "^apply would refuse to write this hive: .*also used by another record" &&
        same_file_state shared.copy shared.hive'
fixture software-server2019 badcell.hive
printf '\003\000\000\000' | dd of=badcell.hive bs=1 seek=$((3 * 4096 + 32)) conv=notrunc 2>/dev/null
refuse "a damaged cell away from the lookups (hivex cannot open the original)" badcell.hive "damaged"
refuse "check, a damaged cell away from the lookups (hivex cannot confirm the verdict)" badcell.hive "hivex cannot open it" check

# A hive file with a 20 GB sparse hole past its bins is refused at once
# (it would be copied whole), untouched.
fixture software-server2019 sparse.hive
truncate -s 20G sparse.hive
before=$(stat -c '%s %Y' sparse.hive)
run_tp apply sparse.hive
ok "a 20 GB hole past the bins: exit 1, one line saying the file is far larger than its bins" \
  eval '[ $rc -eq 1 ] && one_line_error sparse.hive "far larger than its hive bins"'
ok "a 20 GB hole past the bins: size and time unchanged, no temp file" \
  eval '[ "$(stat -c "%s %Y" sparse.hive)" = "$before" ] && ! ls .sparse.hive.tlspatch-* 2>/dev/null'
rm -f sparse.hive

# Names longer than Windows allows (255 characters) are damage, and so is
# an ri naming one leaf twice: the reproducer of adversarial testing (an
# ri naming one lh 16 times, of 65,535 entries of 65,535 characters)
# made every lookup cost minutes. Run when it is at hand.
MKDOS=${TLSPATCH_REPRO:-$top_srcdir/../shared/repro}/mkdos.py
if command -v python3 >/dev/null && [ -f "$MKDOS" ]; then
  python3 "$MKDOS" 16 65535 65535 dos.hive
  cp dos.hive dos.copy
  timeout 10 "$TLSPATCH" check dos.hive >out 2>err; rc=$?
  ok "crafted hive of huge names and repeated lists: exit 1 within 10 s, input unchanged" \
    eval '[ $rc -eq 1 ] && cmp -s dos.hive dos.copy'
  python3 "$MKDOS" 1 1 300 long.hive
  refuse "check, one key name of 300 characters" long.hive "damaged" check
else
  for i in 1 2 3 4; do skip "crafted hive of huge names: ../shared/repro/mkdos.py or python3 absent"; done
fi

# A read-only file system: refused only when something must be written.
fixture software-server2019 rofs-patched.hive
"$TLSPATCH" apply -q rofs-patched.hive
mkdir rofs
if mount -t tmpfs -o size=1m tmpfs rofs 2>/dev/null; then
  cp -p rofs-patched.hive rofs/compliant.hive
  fixture software-server2019 rofs/needs.hive
  cp -p rofs/needs.hive rofs-needs.orig
  mount -o remount,ro rofs
  run_tp apply rofs/compliant.hive
  ok "read-only file system, compliant hive: apply exit 0 (nothing to write)" expect_rc 0
  run_tp recover rofs/compliant.hive
  ok "read-only file system, clean hive: recover exit 0 (nothing to write)" expect_rc 0
  run_tp apply rofs/needs.hive
  ok "read-only file system, a hive to patch: exit 1, 'read-only', byte-identical" \
    eval '[ $rc -eq 1 ] && one_line_error needs.hive "read-only" && same_file_state rofs-needs.orig rofs/needs.hive'
  umount rofs
else
  for i in 1 2 3; do skip "read-only file system: cannot mount a tmpfs here"; done
fi

# FIFOs: named as a hive, beside a dirty hive as its log, or as a
# settings file, they are refused at once (a blocking open would hang
# for ever, holding the hive's lock).
mkfifo fifo.hive
timeout 30 "$TLSPATCH" apply fifo.hive >"$WORK/out" 2>"$WORK/err"; rc=$?
ok "FIFO as the target: exit 1 at once, 'not a regular file'" \
  eval '[ $rc -eq 1 ] && one_line_error fifo.hive "not a regular file"'
fixture software-server2019 dirtyfifo.hive --seq 9,8
cp -p dirtyfifo.hive dirtyfifo.orig
mkfifo dirtyfifo.hive.LOG1
timeout 30 "$TLSPATCH" apply dirtyfifo.hive >"$WORK/out" 2>"$WORK/err"; rc=$?
ok "FIFO as a dirty hive's .LOG1: exit 1 at once, naming it, hive byte-identical" \
  eval '[ $rc -eq 1 ] && grep -q "LOG1: not a regular file" "$WORK/err" && same_file_state dirtyfifo.orig dirtyfifo.hive'
mkfifo fifo.reg
fixture software-server2019 fifoset.hive
timeout 30 "$TLSPATCH" check --settings fifo.reg fifoset.hive >"$WORK/out" 2>"$WORK/err"; rc=$?
ok "FIFO as a settings file: exit 2 at once, 'not a regular file'" \
  eval '[ $rc -eq 2 ] && one_line_error fifo.reg "not a regular file"'
rm -f fifo.hive dirtyfifo.hive.LOG1 fifo.reg

# A hard-linked hive: the patched file replaces one name only; the
# warning names the link count, and the other name keeps the old hive.
fixture software-server2019 linked.hive
ln linked.hive other-name.hive
cp -p linked.hive linked.orig
run_tp apply --json linked.hive
ok "hard link: exit 0, a warning naming the 2 names" \
  eval '[ $rc -eq 0 ] && json_get ".warnings[]" | grep -q "had 2 names (hard links)"'
ok "hard link: the other name keeps the old hive" same_bytes linked.orig other-name.hive

ok "no temp files left anywhere" eval '! ls -a . rodir | grep -q tlspatch-'

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
