# tlspatch test helpers (TAP). Sourced by every tests/*.sh.
#
# Each script works in its own scratch directory, builds the fixture
# hives it needs from fixtures/*.reg with tests/mkhive, runs tlspatch as
# a user would, and checks the result with independent readers.

set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
TLSPATCH=$top_builddir/src/tlspatch
MKHIVE=$top_builddir/tests/mkhive
FIXTURES=$top_srcdir/fixtures
HIVEXREGEDIT=${HIVEXREGEDIT:-$(command -v hivexregedit || true)}
REGFEXPORT=${REGFEXPORT:-$(command -v regfexport || true)}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlspatch-test.XXXXXX")
JSON_SEEN=$(mktemp "${TMPDIR:-/tmp}/tlspatch-json.XXXXXX")   # not in $WORK: tests count the files there
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK" "$JSON_SEEN"' EXIT
cd "$WORK" || exit 99

_t_no=0
_t_failed=0

# ASAN_OPTIONS for a tlspatch run under strace: LeakSanitizer cannot work
# under ptrace and would fail the run.
traced_asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# ok DESCRIPTION COMMAND...: one TAP case, passing when COMMAND succeeds.
ok () {
  local desc=$1; shift
  _t_no=$((_t_no + 1))
  if "$@" >"$WORK/.ok.out" 2>&1; then
    echo "ok $_t_no - $desc"
  else
    echo "not ok $_t_no - $desc"
    sed 's/^/# /' "$WORK/.ok.out" | head -n 30
    _t_failed=$((_t_failed + 1))
  fi
}

skip () {
  _t_no=$((_t_no + 1))
  echo "ok $_t_no # SKIP $1"
}

done_testing () {
  echo "1..$_t_no"
  [ "$_t_failed" -eq 0 ]
}

# fixture NAME [OUT] [mkhive options...]: build fixtures/NAME.reg into OUT
# (default NAME.hive) and print nothing.
fixture () {
  local name=$1 out=${2:-$1.hive}
  shift; [ $# -gt 0 ] && shift
  "$MKHIVE" "$@" "$FIXTURES/$name.reg" "$out"
}

# export_reg HIVE: the whole hive as .reg text, by hivex's own tool.
export_reg () {
  "$HIVEXREGEDIT" --export "$1" '\'
}

# regf_dump HIVE: the whole hive as libregf (an independent parser) sees it;
# fails when libregf reports an error.
regf_dump () {
  local out errf rc=0
  errf=$(mktemp)                # not in $WORK: tests count the files there
  out=$("$REGFEXPORT" "$1" 2>"$errf") || rc=1
  # libregf reports on stderr, or as "Unable ..." / "corrupt" lines (not
  # names such as the ErrorControl value of every service).
  if grep -qi 'error\|unable\|corrupt' "$errf" || printf '%s\n' "$out" | grep -qi '^unable\|corrupt'; then
    rc=1
  fi
  printf '%s\n' "$out"
  [ "$rc" = 0 ] || cat "$errf"
  rm -f "$errf"
  return "$rc"
}

# same_bytes A B: byte-identical files.
same_bytes () { cmp -s "$1" "$2"; }

# same_file_state A B: same bytes and same mtime (A copied with cp -p).
same_file_state () {
  cmp -s "$1" "$2" && [ "$(stat -c %Y.%y "$1")" = "$(stat -c %Y.%y "$2")" ]
}

# no_stray_files DIR: only the expected names (glob patterns) remain.
only_files () {
  local dir=$1; shift
  local f base expected
  for f in "$dir"/* "$dir"/.[!.]*; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    expected=no
    for p in "$@"; do
      case $base in $p) expected=yes ;; esac
    done
    if [ $expected = no ]; then echo "unexpected file: $f"; return 1; fi
  done
  return 0
}

# run_tp ARGS...: run tlspatch, keep stdout/stderr/exit status in
# $WORK/out, $WORK/err, $rc.
run_tp () {
  "$TLSPATCH" "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  case " $* " in *" --json "*) cat "$WORK/out" >>"$JSON_SEEN" ;; esac
  return 0
}

# schema_ok: every JSON object this script's runs printed (run_tp ... --json)
# fits the one schema of tests/schema.jq, whatever the target kind and mode.
schema_ok () {
  [ -s "$JSON_SEEN" ] || { echo "no JSON seen"; return 1; }
  local bad
  bad=$(jq -c -f "$top_srcdir/tests/schema.jq" "$JSON_SEEN") || return 1
  [ -z "$bad" ] || { printf '%s\n' "$bad" | head -5; return 1; }
  echo "$(jq -s length "$JSON_SEEN") objects"
}

expect_rc () { [ "$rc" -eq "$1" ] || { echo "exit status $rc, expected $1"; cat "$WORK/err"; return 1; }; }

# json_get FILTER: jq over the JSON Lines on $WORK/out.
json_get () { jq -r "$1" "$WORK/out"; }

# one_line_error TARGET WORD: stderr is one line naming TARGET and WORD.
one_line_error () {
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || { echo "stderr:"; cat "$WORK/err"; return 1; }
  grep -q -- "$1" "$WORK/err" && grep -qi -- "$2" "$WORK/err" || { cat "$WORK/err"; return 1; }
}

# value_of HIVE KEY NAME: the value as hivexregedit exports it ("name"=...).
value_of () {
  "$HIVEXREGEDIT" --export "$1" "$2" | awk -v n="\"$3\"=" 'index($0, n) == 1 { print; exit }'
}

need () {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "1..0 # SKIP $tool not installed"; exit 0; }
  done
}
need jq hivexregedit regfexport

# regf_value HIVE KEYPATH NAME: "TYPE DATA" of a value as libregf reads
# it (KEYPATH from the root, e.g. '\Microsoft\.NETFramework\v4.0.30319';
# matched case-insensitively), "ABSENT" when the key exists without that
# value, nothing when the key does not exist.
regf_value () {
  regf_dump "$1" | KEY="ROOT$2" NAME="$3" awk '
    /^Key path: / { if (inkey) exit; inkey = (tolower(substr($0, 11)) == tolower(ENVIRON["KEY"])); found = found || inkey; next }
    inkey && /^Value: / { sub(/^Value: [0-9]+ /, ""); invalue = ($0 == ENVIRON["NAME"]); next }
    inkey && invalue && /^Type: / { t = $0; sub(/.*\(/, "", t); sub(/\).*/, "", t); next }
    inkey && invalue && /^Data: / { sub(/^Data: /, ""); print t, $0; printed = 1; exit }
    END { if (found && !printed) print "ABSENT" }'
}
