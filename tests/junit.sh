#!/bin/bash
# --junit FILE: a JUnit XML report for CI servers, one test case per hive
# (or Windows installation), checked by xmllint against tests/junit.xsd
# (the elements and attributes Jenkins and GitLab read); written
# atomically; the exit status and the hives are as without it.
. "$top_srcdir/tests/lib.sh"

XMLLINT=${XMLLINT:-$(command -v xmllint || true)}
if [ -z "$XMLLINT" ]; then
  skip "xmllint is not installed (Debian: libxml2-utils)"
  done_testing
  exit
fi
XSD=$top_srcdir/tests/junit.xsd

valid () { "$XMLLINT" --noout --schema "$XSD" "$1"; }
# xpath FILE EXPR: the string value of EXPR in FILE.
xpath () { "$XMLLINT" --xpath "string($2)" "$1"; }
# is FILE EXPR WANT: EXPR's value in FILE is WANT.
is () {
  local got
  got=$(xpath "$1" "$2")
  [ "$got" = "$3" ] || { echo "$2: '$got', expected '$3'"; return 1; }
}
no_temp_files () { ! ls -A "${1:-.}" | grep -q 'tlspatch-'; }

fixture software-2022 SOFTWARE
fixture system SYSTEM
fixture software-net452 net452.hive
fixture system-2022 sys2022.hive
cp -p SOFTWARE SOFTWARE.orig
cp -p SYSTEM SYSTEM.orig

# A check: two noncompliant hives, one compliant with a warning, one missing.
run_tp check --junit check.xml SOFTWARE SYSTEM sys2022.hive missing
ok "check --junit: exit status as without it (1: one target failed)" expect_rc 1
ok "check --junit: the report fits the JUnit schema" valid check.xml
ok "check --junit: one test case per hive" is check.xml "count(//testcase)" 4
ok "check --junit: counts on the suite" \
   eval 'is check.xml "/testsuites/testsuite/@tests" 4 && is check.xml "/testsuites/testsuite/@failures" 2 &&
         is check.xml "/testsuites/testsuite/@errors" 1 && is check.xml "/testsuites/@failures" 2'
ok "check --junit: a noncompliant hive is a failure listing what would change" \
   eval 'is check.xml "//testcase[@name=\"$WORK/SYSTEM (SYSTEM)\"]/failure/@message" "noncompliant: 2 changes would be made" &&
         xpath check.xml "//testcase[@name=\"$WORK/SYSTEM (SYSTEM)\"]/failure" | grep -q "HKLM.SYSTEM.ControlSet001.Services.obengine.Start: 3 -> 2"'
ok "check --junit: a compliant hive passes, its warning in system-out" \
   eval 'is check.xml "count(//testcase[@name=\"$WORK/sys2022.hive (SYSTEM)\"]/*[self::failure or self::error])" 0 &&
         xpath check.xml "//testcase[@name=\"$WORK/sys2022.hive (SYSTEM)\"]/system-out" | grep -q "warning: service obengine is not installed"'
ok "check --junit: a missing target is an error with its reason" \
   is check.xml "//testcase[@name=\"$WORK/missing\"]/error/@message" "No such file or directory"
ok "check --junit: the test cases are named for the mode" is check.xml "//testcase[1]/@classname" "tlspatch.check"
ok "check --junit: the hives are byte-identical" eval 'same_file_state SOFTWARE.orig SOFTWARE && same_file_state SYSTEM.orig SYSTEM'
ok "check --junit: no temporary file is left" no_temp_files

run_tp check --junit net452.xml net452.hive
ok "check --junit: .NET too old: exit 3, the failure says so" \
   eval 'expect_rc 3 && valid net452.xml && xpath net452.xml "//failure/@message" | grep -q ".NET Framework 4.6 or later is not installed" &&
         xpath net452.xml "//failure" | grep -q "NET Framework 4.5.2 (Release 379893), wants 4.6 or later: not compliant"'

run_tp check --junit ok.xml sys2022.hive
ok "check --junit: compliant: exit 0, no failure" \
   eval 'expect_rc 0 && valid ok.xml && is ok.xml "/testsuites/@failures" 0 && is ok.xml "count(//testcase)" 1'

# apply: the cases pass and say what changed; a second run changes nothing.
run_tp apply --junit apply.xml SOFTWARE SYSTEM
ok "apply --junit: exit 0, the report fits the schema" eval 'expect_rc 0 && valid apply.xml'
ok "apply --junit: what changed is in system-out" \
   eval 'xpath apply.xml "//testcase[@name=\"$WORK/SOFTWARE (SOFTWARE)\"]/system-out" |
         grep -q "HKLM.SOFTWARE.Microsoft..NETFramework.v2.0.50727.SchUseStrongCrypto: (absent) -> 1" &&
         is apply.xml "count(//failure|//error)" 0 && is apply.xml "//testcase[1]/@classname" "tlspatch.apply"'
ok "apply --junit: the hive holds what the report says (hivexregedit)" \
   eval '[ "$(value_of SOFTWARE "\\Microsoft\\.NETFramework\\v2.0.50727" SchUseStrongCrypto)" = "\"SchUseStrongCrypto\"=dword:00000001" ]'
ino=$(stat -c %i apply.xml)
run_tp apply --junit apply.xml SOFTWARE SYSTEM
ok "apply --junit again: the report is replaced by a new file (renamed over it)" \
   eval 'expect_rc 0 && valid apply.xml && [ "$(stat -c %i apply.xml)" != "$ino" ] && is apply.xml "count(//system-out)" 0'

# dry run, revert and recover write reports too.
fixture software-2022 dry.hive
run_tp apply -n --undo dry.reg --junit dry.xml dry.hive
ok "apply -n --junit: would-be changes in system-out, nothing written" \
   eval 'expect_rc 0 && valid dry.xml && xpath dry.xml "//system-out" | grep -q "SchUseStrongCrypto: (absent) -> 1" && [ ! -e dry.reg ]'
fixture software-2022 rev.hive
run_tp apply --undo rev.reg rev.hive
run_tp revert --undo rev.reg --junit revert.xml rev.hive
ok "revert --junit" eval 'expect_rc 0 && valid revert.xml && is revert.xml "//testcase/@classname" "tlspatch.revert" &&
                         xpath revert.xml "//system-out" | grep -q "SchUseStrongCrypto: 1 -> (absent)"'
run_tp recover --junit recover.xml rev.hive
ok "recover --junit (a clean hive)" eval 'expect_rc 0 && valid recover.xml && is recover.xml "//testcase/@classname" "tlspatch.recover"'

# Where the report cannot go, nothing is touched: the hive is not even read.
mkdir adir
cp -p SOFTWARE.orig keep.hive
for bad in adir nodir/r.xml; do
  run_tp apply --junit "$bad" SOFTWARE.orig
  ok "apply --junit $bad: refused up front in one line, the hive untouched" \
     eval 'expect_rc 1 && one_line_error "$bad" "JUnit" && ! grep -q . "$WORK/out" && same_file_state keep.hive SOFTWARE.orig'
done
ln -s apply.xml link.xml
run_tp check --junit link.xml SYSTEM
ok "check --junit SYMLINK: refused (only a regular file is replaced)" \
   eval 'expect_rc 1 && one_line_error link.xml "not a regular file" && [ -L link.xml ]'
chmod a-w adir
if [ "$(id -u)" -ne 0 ]; then
  run_tp check --junit adir/r.xml SYSTEM
  ok "check --junit in a read-only directory: refused" eval 'expect_rc 1 && one_line_error adir/r.xml "Permission denied"'
fi
chmod u+w adir

# The report never replaces the undo record or a target: usage error.
fixture software-2022 clash.hive
cp -p clash.hive clash.orig
run_tp apply --undo clash.reg --junit ./clash.reg clash.hive
ok "--junit naming the undo record: usage error, nothing written" \
  eval 'expect_rc 2 && [ ! -e clash.reg ] && same_file_state clash.orig clash.hive'
run_tp check --junit clash.hive clash.hive
ok "--junit naming a TARGET: usage error, the hive untouched" \
  eval 'expect_rc 2 && grep -q "names a TARGET" "$WORK/err" && same_file_state clash.orig clash.hive'

# A refused target's planned changes were not made: not in system-out.
chmod 444 clash.hive
run_tp apply --junit ro.xml clash.hive
ok "apply --junit on a read-only hive: an error, and no change listed as made" \
  eval 'expect_rc 1 && valid ro.xml && xpath ro.xml "//error/@message" | grep -q "read-only" &&
        is ro.xml "count(//system-out)" 0'
chmod 644 clash.hive

# A replaced report keeps its permissions.
chmod 600 ok.xml
run_tp check --junit ok.xml sys2022.hive
ok "a replaced report keeps its mode (0600)" test "$(stat -c %a ok.xml)" = 600

# Names XML cannot hold (a control character, bytes that are not UTF-8)
# still make a well-formed report.
cp -p SYSTEM.orig "$(printf 'odd\001\377name')"
cp -p SYSTEM.orig "$(printf 'sur\355\240\200rogate')"   # UTF-16 surrogate, encoded as UTF-8
run_tp check --junit odd.xml "$(printf 'odd\001\377name')" "$(printf 'sur\355\240\200rogate')"
ok "check --junit: target names that are not UTF-8 or XML characters still give a valid report" \
   eval 'expect_rc 3 && valid odd.xml && xpath odd.xml "//testcase[1]/@name" | grep -q "odd??name (SYSTEM)" &&
         xpath odd.xml "//testcase[2]/@name" | grep -q "sur???rogate (SYSTEM)"'

# A folder: one case per hive, named by the hive file.
mkdir -p vol/Windows/System32/config
fixture software-2022 vol/Windows/System32/config/SOFTWARE
fixture system vol/Windows/System32/config/SYSTEM
run_tp check --junit vol.xml vol
ok "check --junit FOLDER: one case per hive" \
   eval 'expect_rc 3 && valid vol.xml && is vol.xml "count(//testcase)" 2 &&
         is vol.xml "//testcase[2]/@name" "$WORK/vol/Windows/System32/config/SYSTEM (SYSTEM)"'
ok "no temporary file is left anywhere" eval 'no_temp_files && no_temp_files adir'

done_testing
