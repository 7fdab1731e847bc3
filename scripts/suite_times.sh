#!/usr/bin/env bash
# Where the suite's time goes: builds the workspace's tests as scripts/test.sh
# does (`cargo test --workspace --no-run`, so features unify the same way and
# nothing is rebuilt per package), then runs each test binary on its own from
# its package directory with 2 test threads and prints one line per binary,
# slowest first: "seconds package:target result", and their sum. Doc tests
# and the #[ignore]d soak are not run. Usage: bash scripts/suite_times.sh [FILTER]
# (FILTER: only targets whose "package:target" contains it).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
filter="${1:-}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    t = m["target"]
    pkg_dir = os.path.dirname(m["manifest_path"])
    where, _, frag = m["package_id"].partition("#")
    name = frag.split("@")[0] if "@" in frag else where.rstrip("/").split("/")[-1]
    print(m["executable"], pkg_dir, name + ":" + t["name"])
' | while read -r exe dir label; do
  [ -n "$filter" ] && [[ "$label" != *"$filter"* ]] && continue
  start=$(date +%s%N)
  res=$(cd "$dir" && "$exe" --test-threads="${COURIER_TEST_THREADS:-2}" 2>&1 |
    grep -E '^test result' | tail -1 | sed 's/; finished in.*//; s/test result: //')
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  printf '%d.%03d %s %s\n' $((ms / 1000)) $((ms % 1000)) "$label" "${res:-NO RESULT}" | tee -a "$out" >&2
done
echo "== slowest first" >&2
sort -rn "$out"
awk '{s += $1} END {printf "sum of binaries: %.1f s\n", s}' "$out"
