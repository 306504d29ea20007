#!/bin/bash
# The Ansible module (contrib/ansible/library/tlspatch.py) run by
# ansible-playbook against localhost (-c local), on hive files: check mode
# writes nothing and reports changed; a run patches; a rerun is unchanged;
# a refused target fails the task with tlspatch's one-line error. Then the
# example playbook (contrib/ansible/playbook.yml) on a folder of hives.
. "$top_srcdir/tests/lib.sh"

if ! command -v ansible-playbook >/dev/null; then
  skip "ansible-playbook is not installed (Debian: ansible-core)"
  done_testing
  exit
fi
ATMP=$(mktemp -d "${TMPDIR:-/tmp}/tlspatch-ansible.XXXXXX")   # not in $WORK
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK" "$JSON_SEEN" "$ATMP"' EXIT
export ANSIBLE_LIBRARY=$top_srcdir/contrib/ansible/library ANSIBLE_LOCAL_TEMP=$ATMP/local \
       ANSIBLE_REMOTE_TEMP=$ATMP/remote ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
       ANSIBLE_PYTHON_INTERPRETER=$(command -v python3) ANSIBLE_DEPRECATION_WARNINGS=0 \
       ANSIBLE_HOME=$ATMP/home

# play ARGS...: one task of the module over the targets in vars.json, its
# registered result in $WORK/r.json (written even in check mode).
cat >"$ATMP/play.yml" <<'EOF'
- hosts: localhost
  gather_facts: false
  tasks:
    - tlspatch:
        targets: "{{ targets }}"
        executable: "{{ tlspatch }}"
        undo: "{{ undo | default(omit) }}"
      register: r
      ignore_errors: true
    - copy:
        content: "{{ r | to_nice_json }}"
        dest: "{{ out }}"
      check_mode: false
EOF
play () {
  rm -f r.json
  ansible-playbook -i localhost, -c local "$ATMP/play.yml" -e @vars.json "$@" >play.log 2>&1
}
r () { jq -r "$1" r.json; }

fixture software-2022 SOFTWARE
fixture system SYSTEM
cp -p SOFTWARE SOFTWARE.orig; cp -p SYSTEM SYSTEM.orig
jq -n --arg t "$TLSPATCH" --arg w "$WORK" \
  '{tlspatch: $t, out: "\($w)/r.json", undo: "\($w)/undo.reg", targets: ["\($w)/SOFTWARE", "\($w)/SYSTEM"]}' >vars.json

play --check --diff
ok "check mode: changed, the would-be changes as tlspatch's JSON, nothing written" \
  eval '[ "$(r .changed)" = true ] && [ "$(r "[.results[].status] | join(\",\")")" = would_patch,would_patch ] &&
        same_file_state SOFTWARE.orig SOFTWARE && same_file_state SYSTEM.orig SYSTEM && [ ! -e undo.reg ]'
ok "check mode --diff: each value before and after" \
  eval 'grep -q "^-HKLM.SOFTWARE.Microsoft..NETFramework.v2.0.50727.SchUseStrongCrypto = (absent)" play.log &&
        grep -q "^+HKLM.SOFTWARE.Microsoft..NETFramework.v2.0.50727.SchUseStrongCrypto = REG_DWORD 1" play.log &&
        grep -q "^+HKLM.SYSTEM.ControlSet001.Services.obengine.Start = REG_DWORD 2" play.log'

play
ok "run: changed, patched, an undo record" \
  eval '[ "$(r .changed)" = true ] && [ "$(r "[.results[].status] | join(\",\")")" = patched,patched ] && [ -s undo.reg ]'
ok "run: the hive holds the value (hivexregedit)" \
  test "$(value_of SOFTWARE '\Microsoft\.NETFramework\v2.0.50727' SchUseStrongCrypto)" = '"SchUseStrongCrypto"=dword:00000001'
cp -p SOFTWARE SOFTWARE.patched; cp -p undo.reg undo.first

play
ok "rerun (the undo record exists): not changed, not failed, nothing written" \
  eval '[ "$(r .changed)" = false ] && [ "$(r .failed)" != true ] && [ "$(r "[.results[].status] | join(\",\")")" = unchanged,unchanged ] &&
        same_file_state SOFTWARE.patched SOFTWARE && same_bytes undo.first undo.reg'

# The undo record exists and something would change: tlspatch's refusal.
fixture software-2022 more.hive
cp -p more.hive more.orig
jq --arg w "$WORK" '.targets = ["\($w)/more.hive"]' vars.json >v2.json && mv v2.json vars.json
play
ok "the undo record exists and a target needs the fix: the task fails with tlspatch's error, nothing written" \
  eval '[ "$(r .failed)" = true ] && r .msg | grep -q "undo file already exists" &&
        same_file_state more.orig more.hive && same_bytes undo.first undo.reg'

echo "not a hive" >text.hive; cp -p text.hive text.orig
jq --arg w "$WORK" '.targets = ["\($w)/text.hive"] | del(.undo)' vars.json >v2.json && mv v2.json vars.json
play
ok "a refused target fails the task with tlspatch's one-line error" \
  eval '[ "$(r .failed)" = true ] && r .msg | grep -q "^tlspatch: .*text.hive: .*not a registry hive" &&
        [ "$(r .msg | wc -l)" -eq 1 ] && same_file_state text.orig text.hive'

# The example playbook over a folder of hive files (images are matched
# the same way; the tests of images are tests/images.sh).
# A target tlspatch refuses (bad.hive) is reported and the others patched.
mkdir -p fleet/a
fixture software-2022 fleet/a/SOFTWARE
echo "not a hive" >fleet/a/bad.hive
ansible-playbook -i localhost, -c local "$top_srcdir/contrib/ansible/playbook.yml" \
  -e image_hosts=localhost -e "image_dir=$WORK/fleet/a" -e 'patterns=["SOFTWARE","bad.hive"]' \
  -e "undo_dir=$WORK/fleet/undo" -e "tlspatch_executable=$TLSPATCH" >fleet.log 2>&1
rc=$?
ok "example playbook: audits, then patches what needs it (the refused target reported), with an undo record" \
  eval '[ $rc -eq 0 ] && grep -q "changed=3 .*ignored=1" fleet.log && grep -q "bad.hive: not a registry hive" fleet.log && ls fleet/undo/undo-*.reg >/dev/null &&
        [ "$(value_of fleet/a/SOFTWARE "\\Microsoft\\.NETFramework\\v2.0.50727" SchUseStrongCrypto)" = "\"SchUseStrongCrypto\"=dword:00000001" ] ||
        { tail -30 fleet.log; false; }'
ansible-playbook -i localhost, -c local "$top_srcdir/contrib/ansible/playbook.yml" \
  -e image_hosts=localhost -e "image_dir=$WORK/fleet/a" -e 'patterns=["SOFTWARE","bad.hive"]' \
  -e "undo_dir=$WORK/fleet/undo" -e "tlspatch_executable=$TLSPATCH" >fleet2.log 2>&1
rc=$?
ok "example playbook again: nothing to do (changed=0)" eval '[ $rc -eq 0 ] && grep -q "changed=0" fleet2.log || { tail -30 fleet2.log; false; }'

done_testing
