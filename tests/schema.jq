# The JSON schema every tlspatch object follows, whatever the target kind
# (hive file, folder, disk image) and mode. Prints nothing for an object
# that fits; for one that does not, the object and what is wrong.
def statuses:
  { apply: ["patched", "would_patch", "unchanged", "error"],
    revert: ["reverted", "would_revert", "unchanged", "error"],
    recover: ["recovered", "would_recover", "unchanged", "error"],
    check: ["compliant", "noncompliant", "error"] };
def problems:
  [ (["mode", "target", "status", "changes", "audit", "warnings", "error", "hive", "dry_run"][] as $k
       | select(has($k) | not) | "no \($k)"),
    (. as $o | select((statuses[$o.mode] // []) | index([$o.status]) | not)
       | "status \(.status) in mode \(.mode)"),
    (select(.target | type != "string" or length == 0) | "empty target"),
    (select((.status == "error") != (.error | type == "string")) | "error and status disagree"),
    (select(.changes | type != "array") | "changes"),
    (select(.warnings | type != "array" or any(.[]; type != "string")) | "warnings"),
    (select(has("image")) | ["root", "product"][] as $k | select(has($k) | not) | "image without \($k)"),
    (.changes[]? | select((.hive == "SOFTWARE" or .hive == "SYSTEM") | not) | "change without hive"),
    (.changes[]? | . as $c | select($c.key | startswith("HKLM\\\($c.hive)\\") | not)
       | "key \(.key) not under HKLM\\\(.hive)"),
    (.audit[]? | . as $a | select(($a.key | startswith("HKLM\\\($a.hive)\\") | not)
       or ($a.name | type) != "string" or ($a.ok | type) != "boolean") | "audit entry \($a.key)"),
    (.changes[]? | select(.op | IN("set_value", "delete_value", "create_key", "delete_key") | not)
       | "op \(.op)") ];
problems as $p | select($p | length > 0) | {target, status, problems: $p}
