#!/bin/bash
# Installed like a tool: the man page and --help name the same options, and
# bash completion offers modes, options, profiles and formats.
. "$top_srcdir/tests/lib.sh"

POD=$top_srcdir/docs/tlspatch.pod
help_opts () { "$TLSPATCH" --help | grep -o -- '^  \(-[a-zA-Z], \)\?--\?[a-z][a-z-]*' | tr ',' '\n' | tr -d ' ' | grep . | sort -u; }
man_opts () { sed -n 's/^=item B<\(-[^>]*\)>\(, B<\(-[^>]*\)>\)\?.*/\1 \3/p' "$POD" | tr ' ' '\n' | grep . | sort -u; }
ok "--help and the man page name the same options" eval 'diff <(help_opts) <(man_opts)'
ok "the option lists are not empty (at least 20 options)" test "$(help_opts | wc -l)" -ge 20
for section in NAME SYNOPSIS DESCRIPTION MODES OPTIONS "EXIT STATUS" FILES EXAMPLES SAFETY "SEE ALSO"; do
  ok "man page section: $section" grep -qx "=head1 $section" "$POD"
done
if command -v podchecker >/dev/null; then
  ok "podchecker: the man page source has no errors" podchecker "$POD"
else
  skip "podchecker not installed"
fi

COMP=$top_srcdir/contrib/bash-completion/tlspatch
if [ -r /usr/share/bash-completion/bash_completion ]; then
  complete_words () {   # complete_words WORD...: what completion offers for the last word
    bash -c '. /usr/share/bash-completion/bash_completion; . "$1"; shift
             COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
             _tlspatch "$1" "${!#}" "${@: -2:1}"; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@" | sort | tr '\n' ' '
  }
  ok "completion: the modes" test "$(complete_words "$TLSPATCH" "")" = "apply check profiles recover revert "
  ok "completion: the profiles after --profile" test "$(complete_words "$TLSPATCH" check --profile "")" = "kb4033999 pci "
  ok "completion: the formats after --format" test "$(complete_words "$TLSPATCH" apply --format q)" = "qcow2 "
  ok "completion: options" eval '[[ "$(complete_words "$TLSPATCH" apply --no)" == "--no-recover --no-service " ]]'
  touch fix.reg other.txt report.xml
  ok "completion: .reg files after --settings" test "$(complete_words "$TLSPATCH" apply --settings "")" = "fix.reg "
  ok "completion: .xml files after --junit" test "$(complete_words "$TLSPATCH" check --junit "")" = "report.xml "
else
  for i in 1 2 3 4 5 6; do skip "bash-completion not installed"; done
fi
done_testing
