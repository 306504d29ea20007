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
for spec in software-server2019 system software-server2019:pad software-bigdata; do
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

# Edit lists (tests/edits/*.edits, see tests/inplace.c) written in place:
# keys created and deleted. A stop after any write leaves a valid hive
# where each key and value reads old or new; a failed write rolls back.
# edit_case NAME FIXTURE EDITS [mkhive options]: leaves full.hive.
edit_case () {
  local name=$1 fix=$2 edits=$3 k n; shift 3
  fixture "$fix" orig.hive "$@"
  cp orig.hive full.hive
  n=$("$INPLACE" count orig.hive full.hive "$edits")
  ok "$name: written in place and read back by path (tp_regf_verify_edits)" test -n "$n"
  ok "$name: hivex and libregf read the result" eval 'export_reg full.hive >full.reg && regf_dump full.hive >/dev/null'
  ok "$name: the whole-file path writes the same keys and values" \
    eval '"$INPLACE" copy orig.hive copy.hive "$edits" &&
          diff <(export_reg copy.hive) full.reg && diff <(regf_dump copy.hive) <(regf_dump full.hive)'
  export_reg orig.hive >orig.reg
  local invalid= mixed= not_rolled_back=
  for k in $(seq 1 "${n:-0}"); do
    cp orig.hive stop.hive
    "$INPLACE" stop "$k" orig.hive stop.hive "$edits"
    if ! export_reg stop.hive >stop.reg 2>/dev/null || ! regf_dump stop.hive >/dev/null; then
      invalid+=" $k"
    elif LC_ALL=C grep -vxFf <(cat orig.reg full.reg) stop.reg | grep -q .; then
      mixed+=" $k"
    fi
    cp orig.hive fail.hive
    "$INPLACE" fail "$k" orig.hive fail.hive "$edits" 2>/dev/null && not_rolled_back+=" $k(exit 0)"
    cmp -s orig.hive fail.hive || not_rolled_back+=" $k"
  done
  ok "$name: stopped after each of the $n writes, hivex and libregf read a valid hive" \
    eval '[ -z "$invalid" ] || { echo "invalid after writes:$invalid"; false; }'
  ok "$name: stopped after each write, every key and value reads as before or as after" \
    eval '[ -z "$mixed" ] || { echo "torn after writes:$mixed"; false; }'
  ok "$name: whichever write fails, the file rolls back to its original bytes" \
    eval '[ -z "$not_rolled_back" ] || { echo "not rolled back:$not_rolled_back"; false; }'
}

EDITS=$top_srcdir/tests/edits
regf_dump_has () { regf_dump "$1" | grep -qF -- "$2"; }
# value_dump HIVE NAME: libregf's lines for values named NAME.
value_dump () { regf_dump "$1" | grep -A4 -- "^Value: [0-9]* $2\$"; }
# joined HIVE: hivexregedit's export with its wrapped hex lines joined.
joined () { export_reg "$1" | sed -e ':a' -e '/\\$/N; s/\\\n  //; ta'; }
created_as_written () {
  value_dump full.hive 'Odd type' | grep -q 'Data size: 5' &&
  value_dump full.hive 'Odd type' | grep -q 'aa bb cc dd ee' &&
  grep -qx '"Dword"=dword:12345678' full.reg && grep -qx '"BigEndian"=hex(5):12,34,56,78' full.reg &&
  grep -qx '"Qword"=hex(b):01,02,03,04,05,06,07,08' full.reg &&
  grep -qx '"Multi"=hex(7):61,00,62,00,00,00,63,00,00,00,00,00' full.reg &&
  grep -qx '"None"=hex(0):01,02' full.reg && grep -qx '"Small"=hex(3):01' full.reg
}
for minor in 5 3; do
  edit_case "create keys (1.$minor)" keys "$EDITS/create-keys.edits" --minor "$minor"
  ok "create keys (1.$minor): 5 new levels, their values' types and bytes as hivex and libregf read them" \
    created_as_written
  ok "create keys (1.$minor): the 20000-byte binary reads back whole (hivex, libregf)" \
    eval 'joined full.hive | grep "^\"Blob\"=hex(3):5a," | tr , "\n" | grep -c "5a$" | grep -qx 20000 &&
          value_dump full.hive Blob | grep -A2 "Data size: 20000" | grep -q "5a 5a"'
  ok "create keys (1.$minor): names stored Latin-1 and UTF-16 read back (libregf)" \
    eval 'regf_dump_has full.hive "Key path: ROOT\\Software\\Vendor\\Кириллица" &&
          regf_dump_has full.hive "Key path: ROOT\\Software\\Vendor\\Ünïcödé" &&
          regf_dump_has full.hive "Value: 0 Значение"'
  ok "create keys (1.$minor): existing neighbour values byte-exact" \
    eval 'diff <(grep -A1 -xF "[\\Software\\Vendor\\Alpha]" orig.reg) <(grep -A1 -xF "[\\Software\\Vendor\\Alpha]" full.reg) &&
          [ "$(grep "^\"Neighbour\"" orig.reg)" = "$(grep "^\"Neighbour\"" full.reg)" ]'
  want=lh; [ "$minor" = 5 ] || want=lf
  ok "create keys (1.$minor): one $want list sorted as Windows sorts (uppercase UTF-16)" \
    eval '[ "$("$INPLACE" list full.hive "\\Software\\Vendor")" = "$want 6" ] &&
          regf_dump full.hive | grep "^Key path: ROOT.Software.Vendor.[^\\]*$" | tail -3 |
            tr "\n" " " | grep -q "Zeta .*Ünïcödé .*Кириллица"'
done

# \Software\Vendor exists, 5 levels below it are created: all of them
# appear at one write (the parent's switch), never a part of them.
printf '%s\n' 'create|\Software\Vendor\N1' 'create|\Software\Vendor\N1\N2' \
  'create|\Software\Vendor\N1\N2\N3' 'create|\Software\Vendor\N1\N2\N3\N4' \
  'create|\Software\Vendor\N1\N2\N3\N4\N5' >five.edits
fixture keys orig.hive
cp orig.hive five.hive
n=$("$INPLACE" count orig.hive five.hive five.edits)
seen=
for k in $(seq 1 "${n:-0}"); do
  cp orig.hive stop.hive
  "$INPLACE" stop "$k" orig.hive stop.hive five.edits
  seen+=" $(export_reg stop.hive | grep -c '^\[\\Software\\Vendor\\N1')"
done
ok "5-level creation: the new subtree appears whole at one write (keys seen after each write:$seen)" \
  eval '[ "$(echo $seen | tr " " "\n" | sort -u | tr "\n" " ")" = "0 5 " ] &&
        [ "$(echo $seen | tr " " "\n" | uniq | wc -l)" = 2 ]'

edit_case "delete keys" keys "$EDITS/delete-keys.edits"
ok "delete keys: the subtree is gone, the rest reads as before" \
  eval 'diff <(awk "/^\[/ { skip = index(\$0, \"[\\\\Software\\\\Vendor\\\\Doomed\") == 1 } !skip" orig.reg |
               grep -v "^\"Existing\"\|^\"Neighbour\"\|^\"Z\"") <(grep -v "^\"Neighbour\"\|^\"Z\"" full.reg)'
ok "delete keys: every cell of the subtree (class names too), the deleted value and the replaced big data released" \
  test "$(( $("$INPLACE" cells orig.hive) - $("$INPLACE" cells full.hive) ))" -eq 42
ok "delete keys: libregf sees the new values" \
  test "$(regf_value full.hive '\Software\Vendor' Neighbour)" = "REG_DWORD_LITTLE_ENDIAN 7"

# More than 1012 subkeys: an ri of leaves; a list that is one stays one.
{ for i in $(seq 1 1013); do echo "create|\\Software\\Vendor\\Alpha\\K$i"; done; } >many.edits
edit_case "1013 new subkeys" keys many.edits
ok "1013 new subkeys: an ri of two lh leaves" \
  test "$("$INPLACE" list full.hive '\Software\Vendor\Alpha')" = "ri lh lh 1013"
cp full.hive ri.hive
printf '%s\n' 'create|\Software\Vendor\Alpha\K0' 'delete|\Software\Vendor\Alpha\K500' \
  'delete|\Software\Vendor\Alpha\K501' >ri.edits
cp ri.hive ri2.hive
ok "an ri list edited stays an ri (down to 1012 keys: one leaf)" \
  eval '"$INPLACE" count ri.hive ri2.hive ri.edits >/dev/null &&
        [ "$("$INPLACE" list ri2.hive "\Software\Vendor\Alpha")" = "ri lh 1012" ] &&
        regf_dump ri2.hive >/dev/null && export_reg ri2.hive | grep -c "^\[\\\\Software\\\\Vendor\\\\Alpha\\\\K" | grep -qx 1012'

done_testing
