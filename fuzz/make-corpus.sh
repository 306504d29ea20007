#!/bin/sh
# Build seed corpora for the fuzz targets (never committed: they are
# generated, and part of them comes from test data we may not ship).
#
#   fuzz/make-corpus.sh [OUTDIR]        default: fuzz/corpus
#
# OUTDIR/recover (fuzz-recover): every crafted case of tests/test-recover.c
# (primary and logs, valid and bent), the fixture hives clean and dirty,
# and Windows' new-format sample when ../shared/testdata is present.
# OUTDIR/header (fuzz-header): the fixture hives.
# OUTDIR/regfile (fuzz-regfile): fixtures/settings/*.reg as they are, and
# as regedit exports them (UTF-16LE with a BOM and CRLF, when iconv exists).
# Needs a C compiler ($CC, default cc) and libhivex (the test links it).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/fuzz/corpus}
cc=${CC:-cc}
data=${TLSPATCH_TESTDATA:-$top/../shared/testdata/regf-logs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

mkdir -p "$out/recover" "$out/header" "$out/regfile"

"$cc" -std=c11 -D_GNU_SOURCE -O1 -o "$work/mkhive" "$top/tests/mkhive.c"
"$cc" -std=c11 -D_GNU_SOURCE -O1 -I"$top/include" -o "$work/test-recover" \
  "$top/src/recover.c" "$top/src/marvin32.c" "$top/src/regf.c" "$top/src/layout.c" \
  "$top/tests/test-recover.c" -lhivex

# A 32-bit little-endian number, as raw bytes.
le32 () {
  n=$1
  for _ in 1 2 3 4; do
    # shellcheck disable=SC2059 # the format is the octal escape of one byte
    printf "\\$(printf %03o $((n & 255)))"
    n=$((n >> 8))
  done
}

size () {
  if [ -n "${1:-}" ]; then wc -c < "$1" | tr -d ' '; else echo 0; fi
}

# pack OUT PRIMARY [LOG1 [LOG2]]: the input format of fuzz-recover.c.
pack () {
  dest=$1 primary=$2 log1=${3:-} log2=${4:-}
  {
    printf '\000'
    le32 "$(size "$primary")"
    le32 "$(size "$log1")"
    cat "$primary" ${log1:+"$log1"} ${log2:+"$log2"}
  } > "$dest"
}

# The crafted cases, written by the test itself.
TLSPATCH_DUMP_CORPUS="$out/recover" TLSPATCH_TESTDATA="$work/none" top_srcdir="$top" \
  "$work/test-recover" > "$work/test.log" || {
  echo "make-corpus: tests/test-recover failed, see below" >&2
  grep -v '^ok' "$work/test.log" >&2
  exit 1
}

for reg in "$top"/fixtures/*.reg; do
  name=$(basename "$reg" .reg)
  "$work/mkhive" "$reg" "$work/$name.hive"
  "$work/mkhive" --seq 5,4 "$reg" "$work/$name.dirty"
  cp "$work/$name.hive" "$out/header/$name"
  pack "$out/recover/fixture-$name-clean" "$work/$name.hive"
  pack "$out/recover/fixture-$name-dirty" "$work/$name.dirty"
done

# Windows 10's sample, cut to what replay reads: the primary up to the
# end of its hive bins (4096 + 0x5000), .LOG2 up to the end of its entries.
new=$data/NewDirtyHive1
if [ -r "$new/NewDirtyHive" ]; then
  head -c 24576 "$new/NewDirtyHive" > "$work/p"
  head -c 40960 "$new/NewDirtyHive.LOG2" > "$work/l2"
  pack "$out/recover/windows10" "$work/p" "$new/NewDirtyHive.LOG1" "$work/l2"
fi

for reg in "$top"/fixtures/settings/*.reg; do
  name=$(basename "$reg" .reg)
  cp "$reg" "$out/regfile/$name"
  if command -v iconv > /dev/null; then
    { printf '\377\376'; sed 's/$/\r/' "$reg" | iconv -f UTF-8 -t UTF-16LE; } > "$out/regfile/$name-utf16"
  fi
done
# REGEDIT4 with Windows-1252 bytes, and the rarer syntax of version 5.
printf 'REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Caf\351]\r\n"\351"="\200\201"\r\n"e"=hex(2):25,e9,00\r\n' \
  > "$out/regfile/regedit4-ansi"
printf 'Windows Registry Editor Version 5.00\n[-A\\B\\]\n[A]B]  \n @ = "x\\"\\\\"\n"q"=hex(b):1,2,\\ \n\t3\n"d"=-\n' \
  > "$out/regfile/syntax"

count () { find "$1" -type f | wc -l | tr -d ' '; }
echo "make-corpus: $(count "$out/recover") recover seeds, $(count "$out/header") header seeds," \
  "$(count "$out/regfile") regfile seeds in $out"
