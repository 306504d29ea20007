#!/bin/bash
# The contender "virt-win-reg": the same work as `tlspatch apply IMAGE`.
#   1. virt-win-reg export of HKLM\SOFTWARE\Microsoft\.NETFramework and of the
#      Wow6432Node branch (one appliance launch each) to learn the version keys
#   2. one virt-win-reg --merge of a .reg for both hives (SchUseStrongCrypto in
#      every version key, obengine Start 2 in ControlSet001, the \Select Default
#      of the benchmark's SYSTEM hive)
# Usage: virt-win-reg.sh IMAGE FORMAT
set -eu
img=$1 fmt=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
{
  echo 'Windows Registry Editor Version 5.00'; echo
  for b in 'HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\.NETFramework' \
           'HKEY_LOCAL_MACHINE\SOFTWARE\Wow6432Node\Microsoft\.NETFramework'; do
    virt-win-reg --format="$fmt" "$img" "$b" >"$tmp/x.reg" 2>/dev/null || continue
    tr -d '\r' <"$tmp/x.reg" | grep -iE "^\[$(printf '%s' "$b" | sed 's/[\\.]/\\&/g')\\\\v[0-9]+(\.[0-9]+)+\]$" |
      while IFS= read -r k; do printf '%s\n"SchUseStrongCrypto"=dword:00000001\n\n' "$k"; done
  done
  printf '[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\obengine]\n"Start"=dword:00000002\n\n'
} >"$tmp/merge.reg"
virt-win-reg --format="$fmt" --merge "$img" "$tmp/merge.reg"
