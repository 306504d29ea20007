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

fixture neither neither.hive
refuse "neither SOFTWARE nor SYSTEM" neither.hive "neither"

# Values hivex's rewriting of a key would break (big data, "unset") are
# never rewritten: a key holding them is patched, they stay byte-exact.
fixture software-bigdata big.hive
cp big.hive big.orig
run_tp apply big.hive
ok "big-data neighbour: the key is patched" expect_rc 0
blob () {   # the Blob value as libregf dumps it: type, size, every byte
  regf_dump "$1" | awk '/^Value: [0-9]+ Blob$/ { f = 1; next } f && /^(Value: |Key path: )/ { exit } f'
}
ok "big-data neighbour: libregf reads the 20000-byte value exactly as before" \
  eval 'blob big.hive | grep -q "Data size: 20000" && diff <(blob big.orig) <(blob big.hive)'

fixture software-unset unset.hive
run_tp apply unset.hive
ok "unset neighbour: the key is patched" expect_rc 0
unset_vk='766b050000000000ffffffff04000000'   # "vk", name 5, size 0, offset -1, REG_DWORD
ok "unset neighbour: still an unset value (data size 0, offset 0xFFFFFFFF)" \
  test "$(od -An -v -tx1 unset.hive | tr -d ' \n' | grep -o "$unset_vk" | wc -l)" -eq 1
ok "unset neighbour: SchUseStrongCrypto set beside it" \
  test "$(regf_value unset.hive '\Microsoft\.NETFramework\v4.0.30319' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"

fixture software-server2019 ro.hive
chmod 444 ro.hive
refuse "read-only file" ro.hive "read-only"

mkdir rodir
fixture software-server2019 rodir/SOFTWARE
chmod 555 rodir
refuse "read-only directory" rodir/SOFTWARE "read-only"
chmod 755 rodir

ok "no temp files left anywhere" eval '! ls -a . rodir | grep -q tlspatch-'

done_testing
