#!/bin/bash
# The contender "hivex's own tools": the same work as `tlspatch apply SOFTWARE
# SYSTEM`, done the way an admin would script it with hivexregedit.
#   1. hivexregedit --export both .NETFramework branches to learn the version keys
#   2. hivexget \Select Default/Current to learn the control sets to change
#   3. hivexregedit --merge a generated .reg into SOFTWARE, and one into SYSTEM
# Usage: hivex-tools.sh SOFTWARE SYSTEM [SERVICE]
set -eu
sw=$1 sy=$2 svc=${3:-obengine}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
{
  echo 'Windows Registry Editor Version 5.00'; echo
  for b in '\Microsoft\.NETFramework' '\Wow6432Node\Microsoft\.NETFramework'; do
    hivexregedit --export "$sw" "$b" >"$tmp/x.reg" 2>/dev/null || continue
    # direct children named v<digits>(.<digits>)+
    tr -d '\r' <"$tmp/x.reg" | grep -iE "^\[$(printf '%s' "$b" | sed 's/[\\.]/\\&/g')\\\\v[0-9]+(\.[0-9]+)+\]$" |
      while IFS= read -r k; do printf '%s\n"SchUseStrongCrypto"=dword:00000001\n\n' "$k"; done
  done
} >"$tmp/software.reg"
hivexregedit --merge "$sw" "$tmp/software.reg"
def=$(hivexget "$sy" '\Select' Default) cur=$(hivexget "$sy" '\Select' Current)
{
  echo 'Windows Registry Editor Version 5.00'; echo
  for cs in $(printf '%s\n' "$def" "$cur" | sort -u); do
    k=$(printf '\\ControlSet%03d\\Services\\%s' "$cs" "$svc")
    # only a service that exists and is manual (Start 3)
    [ "$(hivexget "$sy" "$k" Start 2>/dev/null)" = 3 ] || continue
    printf '[%s]\n"Start"=dword:00000002\n\n' "$k"
  done
} >"$tmp/system.reg"
hivexregedit --merge "$sy" "$tmp/system.reg"
