#!/bin/bash
# Failures half-way and concurrent runs never damage the hive.
. "$top_srcdir/tests/lib.sh"

fixture software-server2019 orig.hive
size_kib=$(( $(stat -c %s orig.hive) / 1024 ))

# A file-size limit below the hive's size: the write fails with EFBIG.
mkdir efbig; cp -p orig.hive efbig/SOFTWARE
( ulimit -f $(( size_kib / 2 )); "$TLSPATCH" apply efbig/SOFTWARE >out 2>err ); rc=$?
ok "EFBIG: exit 1" expect_rc 1
ok "EFBIG: one-line error with the reason" one_line_error efbig/SOFTWARE "too large"
ok "EFBIG: original byte-identical" same_file_state orig.hive efbig/SOFTWARE
ok "EFBIG: no temp file left" only_files efbig SOFTWARE

# A full file system (a small tmpfs; needs root and mount, else skipped).
mkdir full
if mount -t tmpfs -o size=$(( size_kib + 8 ))k tmpfs full 2>/dev/null; then
  cp -p orig.hive full/SOFTWARE
  run_tp apply full/SOFTWARE
  ok "ENOSPC: exit 1" expect_rc 1
  ok "ENOSPC: one-line error with the reason" one_line_error full/SOFTWARE "space"
  ok "ENOSPC: original byte-identical" same_file_state orig.hive full/SOFTWARE
  ok "ENOSPC: no temp file left" only_files full SOFTWARE
  umount full
else
  for i in 1 2 3 4; do skip "ENOSPC: cannot mount a tmpfs here"; done
fi

# An undo file that cannot be written (a full file system) is not left
# behind: it would make every later run refuse, recording nothing.
mkdir undofull
if mount -t tmpfs -o size=4k tmpfs undofull 2>/dev/null; then
  head -c 1 /dev/zero >undofull/filler          # takes the tmpfs's only page
  cp -p orig.hive undo.hive
  run_tp apply --undo undofull/undo.reg undo.hive
  ok "undo on a full disk: exit 1, says why" eval '[ $rc -eq 1 ] && grep -q "undo file.*space" "$WORK/err"'
  ok "undo on a full disk: hive untouched, no undo file left" \
    eval 'same_file_state orig.hive undo.hive && [ ! -e undofull/undo.reg ]'
  rm undofull/filler
  run_tp apply --undo undofull/undo.reg undo.hive
  ok "undo after room was made: the re-run works" eval '[ $rc -eq 0 ] && grep -q SchUseStrongCrypto undofull/undo.reg'
  umount undofull
else
  for i in 1 2 3; do skip "undo ENOSPC: cannot mount a tmpfs here"; done
fi

# A full disk while a recovered (dirty) hive is copied by hand (its bytes
# are in memory, another file system: no in-kernel copy): the message
# names the real cause, not a stale error of the attempt before.
MKLOG=$top_builddir/tests/mklog
cp orig.hive new.hive
printf '%s\n' 'Windows Registry Editor Version 5.00' '' '[\Microsoft\Windows Azure Backup\Config]' \
  '"FromLog"=dword:0000002a' >add.reg
"$HIVEXREGEDIT" --merge new.hive add.reg
"$MKLOG" orig.hive new.hive dirty.hive dirty.hive.LOG1 2>/dev/null
mkdir dirtyfull
need_kib=$(( ($(stat -c %s dirty.hive) + $(stat -c %s dirty.hive.LOG1)) / 1024 + 8 ))
if mount -t tmpfs -o size=${need_kib}k tmpfs dirtyfull 2>/dev/null; then
  cp -p dirty.hive dirty.hive.LOG1 dirtyfull/
  run_tp apply dirtyfull/dirty.hive
  ok "ENOSPC copying a recovered hive: exit 1, 'No space left', no stale 'cross-device'" \
    eval '[ $rc -eq 1 ] && grep -q "No space left" "$WORK/err" && ! grep -q "cross-device" "$WORK/err"'
  ok "ENOSPC copying a recovered hive: hive and log byte-identical" \
    eval 'same_file_state dirty.hive dirtyfull/dirty.hive && same_file_state dirty.hive.LOG1 dirtyfull/dirty.hive.LOG1'
  umount dirtyfull
else
  for i in 1 2; do skip "ENOSPC on a recovered hive: cannot mount a tmpfs here"; done
fi

# Killed while writing: SIGKILL at random points leaves either the
# original or the fully patched hive, never anything else.
fixture software-server2019 patched.hive
"$TLSPATCH" apply -q patched.hive
mkdir kill
bad=0
for delay in 0 0.001 0.002 0.004 0.008 0.016; do
  cp -p orig.hive kill/SOFTWARE
  "$TLSPATCH" apply -q kill/SOFTWARE & pid=$!
  sleep $delay; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  if ! cmp -s kill/SOFTWARE orig.hive && ! regf_dump kill/SOFTWARE >/dev/null; then bad=1; fi
done
ok "SIGKILL at any point: the hive is the original or a valid patched one" test $bad -eq 0

# Concurrent runs on one hive: one patches, the others find nothing to do.
mkdir conc; cp -p orig.hive conc/SOFTWARE
for i in 1 2 3 4 5 6; do "$TLSPATCH" apply --json conc/SOFTWARE >conc.$i.json 2>&1 & done
wait
ok "concurrent: every run exits cleanly with valid JSON" eval 'cat conc.*.json | jq -e .status >/dev/null'
ok "concurrent: exactly one patched, the rest unchanged" \
  test "$(cat conc.*.json | jq -r .status | sort | uniq -c | tr -s ' ' | tr '\n' ,)" = " 1 patched, 5 unchanged,"
ok "concurrent: the result is a valid patched hive (libregf)" \
  test "$(regf_value conc/SOFTWARE '\Wow6432Node\Microsoft\.NETFramework\v4.0.30319' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "concurrent: same content as a single run" eval 'diff <(export_reg patched.hive) <(export_reg conc/SOFTWARE)'
ok "concurrent: no stray files" only_files conc SOFTWARE

# The traced runs go without LeakSanitizer ($traced_asan, tests/lib.sh).
# Another program puts a different hive in the target's place while apply
# runs (held at the exchange for 3 s by strace): the newcomer is kept,
# byte for byte, and apply says so.
race () {
  local what=$1
  mkdir "race-$what"; cp -p orig.hive "race-$what/SOFTWARE"
  fixture software-net452 "race-$what/newcomer"
  cp -p "race-$what/newcomer" "race-$what/newcomer.copy"
  ASAN_OPTIONS=$traced_asan strace -f -o /dev/null -e trace=renameat2 -e inject=renameat2:delay_enter=3000000:when=1 \
    "$TLSPATCH" apply "race-$what/SOFTWARE" >out 2>err & pid=$!
  sleep 1.5
  if [ "$what" = rename ]; then mv "race-$what/newcomer" "race-$what/SOFTWARE"
  else cat "race-$what/newcomer" >"race-$what/SOFTWARE"; rm "race-$what/newcomer"; fi
  wait $pid; rc=$?
  ok "replaced by $what during apply: exit 1, one line saying so" \
    eval '[ $rc -eq 1 ] && one_line_error SOFTWARE "another program replaced"'
  ok "replaced by $what during apply: the newcomer is kept" cmp "race-$what/newcomer.copy" "race-$what/SOFTWARE"
  ok "replaced by $what during apply: no stray files" only_files "race-$what" SOFTWARE newcomer.copy
}
if strace -o /dev/null -e inject=renameat2:delay_enter=1:when=1 true 2>/dev/null; then
  race rename
  race overwrite
else
  for i in 1 2 3 4 5 6; do skip "replaced during apply: strace cannot delay a system call here"; done
fi

# The hive truncated by another program while it is read (held after
# the open, before the mapping, by strace): one line, exit 1, no SIGBUS.
if strace -o /dev/null -e inject=fcntl:delay_exit=1:when=1 true 2>/dev/null; then
  cp -p orig.hive shrink.hive
  ASAN_OPTIONS=$traced_asan strace -o /dev/null -e trace=fcntl -e inject=fcntl:delay_exit=2000000:when=2 \
    "$TLSPATCH" check shrink.hive >out 2>err & pid=$!
  sleep 1
  truncate -s 8192 shrink.hive
  wait $pid; rc=$?
  ok "hive truncated while check reads it: exit 1 (not killed by SIGBUS), one line saying so" \
    eval '[ $rc -eq 1 ] && one_line_error shrink.hive "changed while it was read"'
else
  skip "hive truncated while check reads it: strace cannot delay a system call here"
fi

done_testing
