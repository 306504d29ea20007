#!/bin/bash
# The command-line contract: usage errors, exit codes, JSON Lines.
. "$top_srcdir/tests/lib.sh"

run_tp --help
ok "--help: exit 0, shows the three commands" eval '[ $rc -eq 0 ] && grep -q "tlspatch revert --undo FILE" "$WORK/out"'
run_tp -h
ok "-h is --help" eval '[ $rc -eq 0 ] && grep -q "tlspatch revert --undo FILE" "$WORK/out"'
run_tp --version
ok "--version: exit 0, tlspatch's version and hivex's, libguestfs's, json-c's" \
  eval '[ $rc -eq 0 ] && [ "$(cut -d" " -f1 "$WORK/out" | tr "\n" ,)" = "tlspatch,hivex,libguestfs,json-c," ] &&
        grep -qx "tlspatch [0-9][0-9.]*" "$WORK/out"'
ok "--version: hivex as pkg-config knows it, json-c's as its library says" \
  eval 'grep -qx "hivex $(pkg-config --modversion hivex)" "$WORK/out" &&
        grep -qx "json-c $(pkg-config --modversion json-c)" "$WORK/out"'
if command -v guestfish >/dev/null; then
  ok "--version: libguestfs is the one guestfish uses" \
    eval 'grep -qx "libguestfs $(guestfish --version | cut -d" " -f2)" "$WORK/out"'
else
  skip "--version: libguestfs (no guestfish)"
fi
cp "$WORK/out" version.out
run_tp -V
ok "-V is --version" cmp "$WORK/out" version.out

run_tp
ok "no command: exit 2" expect_rc 2
run_tp frobnicate x
ok "unknown command: exit 2" expect_rc 2
run_tp apply --bogus x
ok "unknown option: exit 2" expect_rc 2
run_tp apply
ok "no target: exit 2" expect_rc 2
run_tp revert x
ok "revert without --undo: exit 2" expect_rc 2
run_tp check --undo u.reg x
ok "check with --undo: exit 2" expect_rc 2
run_tp apply --service 'a\b' x
ok "--service with a backslash: exit 2" expect_rc 2

fixture software-server2019 a.hive
# Options that would do nothing in the mode are usage errors; nothing is read.
for args in "check --backup a.hive" "check -n a.hive" "apply --service x --no-service a.hive" \
            "revert --undo u.reg --service x a.hive" "recover --no-service a.hive" \
            "recover --system-default-tls a.hive" "apply --format qcow2 a.hive" \
            "check --format bogus a.hive" "check -a disk.img --format qcow2" \
            "check -c test:///default a.hive" "apply --format qcow2 -d dom"; do
  cp -p a.hive idle.orig
  run_tp $args
  ok "idle option, usage error: $args" eval '[ $rc -eq 2 ] && [ ! -s "$WORK/out" ] &&
    [ "$(head -1 "$WORK/err" | wc -c)" -lt 120 ] && same_file_state idle.orig a.hive'
done
fixture software-server2019 b.hive
fixture system s.hive
run_tp check --json a.hive nonexistent.hive s.hive
ok "one failing target does not stop the others (3 JSON lines)" test "$(wc -l <"$WORK/out")" -eq 3
ok "an error on any target: exit 1 even when check found noncompliance" expect_rc 1
ok "every JSON line has target, hive, status, changes, warnings, error" \
  eval 'jq -e "has(\"target\") and has(\"hive\") and has(\"status\") and (.changes|type==\"array\") and (.warnings|type==\"array\") and has(\"error\")" "$WORK/out" >/dev/null'
ok "the missing file is an error with a reason" \
  test "$(json_get 'select(.status == "error") | .error')" = "No such file or directory"
ok "the error is one line on stderr naming the target" one_line_error nonexistent.hive "No such file"

# Honest messages, one per problem.
mkdir -p notwin/Users
run_tp check --json notwin
ok "a folder that is not Windows: one object, one line saying so" \
  eval '[ $rc -eq 1 ] && [ "$(wc -l <"$WORK/out")" -eq 1 ] &&
        one_line_error "$WORK/notwin" "not a Windows volume: no Windows/System32/config/SOFTWARE or SYSTEM under it"'
run_tp check -a missing.img
ok "-a MISSING: No such file or directory, as for a plain TARGET" \
  eval '[ $rc -eq 1 ] && one_line_error missing.img "^tlspatch: .*missing.img: No such file or directory$"'
mkdir -p refused && head -c 4096 a.hive >refused/SOFTWARE
run_tp check refused/SOFTWARE
ok "a refused hive: the table still names its kind" \
  eval '[ $rc -eq 1 ] && grep -q "^error  *SOFTWARE  *0  *$WORK/refused/SOFTWARE$" "$WORK/out"'
"$TLSPATCH" check a.hive nonexistent.hive s.hive >both.out 2>&1
ok "stdout and stderr piped together: each error right after its row" \
  eval 'grep -A1 "nonexistent.hive\$" both.out | tail -1 | grep -q "^tlspatch: .*nonexistent.hive: No such file"'

run_tp check -q a.hive
ok "-q: nothing on stdout, exit 3" eval '[ $rc -eq 3 ] && [ ! -s "$WORK/out" ]'

# Audit evidence: every value a setting looks at, found and wanted.
cp a.hive ev.hive
run_tp check -v ev.hive
V4='HKLM\SOFTWARE\Microsoft\.NETFramework\V4.0.30319\SchUseStrongCrypto'
W3='HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v3.0\SchUseStrongCrypto'
W4='HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319\SchUseStrongCrypto'
ok "check -v: each version key's value as found and as wanted, in the words of what apply would do" \
  eval 'grep -qxF "    $V4: found 0, wants 1: would change" "$WORK/out" &&
        grep -qxF "    $W3: found 1, wants 1: ok" "$WORK/out" &&
        grep -qxF "    $W4: found REG_SZ \"1\", wants 1: would change" "$WORK/out" &&
        grep -qxF "    warning: $W4: would replace REG_SZ \"1\" with REG_DWORD 1" "$WORK/out" &&
        grep -q "4.7.2 (Release 461814), wants 4.6 or later: ok" "$WORK/out" && [ $rc -eq 3 ]'
run_tp check --json ev.hive
w4_audit () { json_get '.audit[] | select(.key | endswith("Wow6432Node\\Microsoft\\.NETFramework\\v4.0.30319")) | .found_type + " " + .found + " " + (.wanted|tostring) + " " + (.change|tostring)'; }
ok "check --json: the same evidence in .audit, one entry per version key" \
  eval '[ "$(json_get "[.audit[] | select(.ok)] | length")" = 1 ] && [ "$(json_get ".audit | length")" = 6 ] &&
        [ "$(w4_audit)" = "REG_SZ 1 1 true" ]'
fixture system sy.hive
run_tp check -v --service svcdisabled sy.hive
ok "check -v: each boot control set's Start, a disabled service left alone" \
  eval 'grep -qxF "    HKLM\SYSTEM\ControlSet001\Services\svcdisabled\Start: found 4, wants 2: left alone" "$WORK/out" &&
        grep -qxF "    HKLM\SYSTEM\ControlSet002\Services\svcdisabled\Start: found 4, wants 2: left alone" "$WORK/out" && [ $rc -eq 0 ]'
printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\obengine]\n"Start"="3"\n' >sz.reg
cp sy.hive sz.hive && "$TLSPATCH" apply -q --settings sz.reg sz.hive
run_tp check -v sz.hive
ok "check -v: a Start that is no DWORD is shown as stored, and left alone" \
  eval 'grep -qxF "    HKLM\SYSTEM\ControlSet001\Services\obengine\Start: found REG_SZ \"3\", wants 2: left alone" "$WORK/out"'
run_tp apply -v b.hive
ok "apply -v: the evidence in apply's words, and the .NET version" \
  eval 'grep -qxF "    $V4: found 0, wants 1: changed" "$WORK/out" && grep -q "4.7.2 (Release 461814)" "$WORK/out"'

run_tp check a.hive b.hive
ok "check: 3 when any target is not compliant" expect_rc 3

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
