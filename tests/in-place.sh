#!/bin/bash
# A clean hive inside a disk image is written in place, phase by phase
# (writer.h), not re-uploaded whole. Stopped after any one of those
# writes (as by kill -9), the hive must still be valid for hivex and
# libregf, every value must read as before or as after, and a second
# apply must finish the job. A failed write must roll every byte back.
. "$top_srcdir/tests/lib.sh"
INPLACE="$top_builddir/tests/inplace"

# name[:pad]: pad the hive file with zeros to 256 KiB, as Windows leaves
# room past the last bin (its hive files grow in 256 KiB steps).
for spec in software-server2019 system software-server2019:pad; do
  name=${spec%%:*}
  fixture "$name" orig.hive
  [ "$spec" = "$name" ] || truncate -s 256K orig.hive
  name=$spec
  cp orig.hive applied.hive
  run_tp apply applied.hive
  cp orig.hive full.hive
  n=$("$INPLACE" count orig.hive full.hive)
  ok "$name: written in place, the hive reads as tlspatch apply writes it (hivexregedit, libregf)" \
    eval 'diff <(export_reg applied.hive) <(export_reg full.hive) &&
          diff <(regf_dump applied.hive) <(regf_dump full.hive)'
  ok "$name: the in-place writes are few ($n)" test "$n" -ge 3 -a "$n" -le 40
  export_reg orig.hive >orig.reg
  export_reg full.hive >full.reg

  invalid= mixed= unfinished= not_rolled_back=
  for k in $(seq 1 "$n"); do
    cp orig.hive stop.hive
    "$INPLACE" stop "$k" orig.hive stop.hive
    if ! export_reg stop.hive >stop.reg || ! regf_dump stop.hive >/dev/null; then
      invalid+=" $k"
    elif grep -vxFf <(cat orig.reg full.reg) stop.reg | grep -q .; then
      mixed+=" $k"
    fi
    run_tp apply stop.hive
    diff -q <(export_reg stop.hive) full.reg >/dev/null || unfinished+=" $k"

    cp orig.hive fail.hive
    "$INPLACE" fail "$k" orig.hive fail.hive 2>/dev/null && not_rolled_back+=" $k(exit 0)"
    cmp -s orig.hive fail.hive || not_rolled_back+=" $k"
  done
  ok "$name: stopped after each of the $n writes, hivex and libregf read a valid hive" \
    eval '[ -z "$invalid" ] || { echo "invalid after writes:$invalid"; false; }'
  ok "$name: stopped after each write, every line reads as before or as after" \
    eval '[ -z "$mixed" ] || { echo "torn after writes:$mixed"; false; }'
  ok "$name: after each stop, a second apply finishes the job" \
    eval '[ -z "$unfinished" ] || { echo "not finished after writes:$unfinished"; false; }'
  ok "$name: whichever write fails, the file rolls back to its original bytes" \
    eval '[ -z "$not_rolled_back" ] || { echo "not rolled back:$not_rolled_back"; false; }'
done

done_testing
