#!/usr/bin/env bash
# Where the suite's time goes: runs each test target of the workspace on its
# own (`cargo test -p PKG --lib|--test NAME|--doc`, 2 test threads, as
# scripts/test.sh does) and prints one line per target, slowest first:
# "seconds package:target result". Build first (`cargo test --workspace
# --no-run`) so the times are run times, not compile times. The soak
# (#[ignore]d, 2 minutes) is not run. Usage: bash scripts/suite_times.sh [PKG...]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
only=" $* "
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        kind = t["kind"][0]
        if kind == "lib" and t.get("test", True):
            print(p["name"], "lib", t["name"])
            if t.get("doctest", True):
                print(p["name"], "doc", t["name"])
        elif kind == "test":
            print(p["name"], "test", t["name"])
' | while read -r pkg kind name; do
  [ "$only" != "  " ] && [[ "$only" != *" $pkg "* ]] && continue
  case "$kind" in
    lib) sel=(--lib) ;;
    doc) sel=(--doc) ;;
    *) sel=(--test "$name") ;;
  esac
  start=$(date +%s%N)
  res=$(cargo test -q -p "$pkg" "${sel[@]}" -- --test-threads="${COURIER_TEST_THREADS:-2}" 2>&1 |
    grep -E '^test result' | tail -1 | sed 's/; finished in.*//; s/test result: //')
  end=$(date +%s%N)
  secs=$(( (end - start) / 1000000 ))
  printf '%d.%03d %s:%s%s %s\n' $((secs / 1000)) $((secs % 1000)) "$pkg" "$name" \
    "$([ "$kind" = doc ] && echo ' (doc)')" "${res:-NO RESULT (failed to build or run)}" |
    tee -a "$out" >&2
done
echo "== slowest first" >&2
sort -rn "$out"
awk '{s += $1} END {printf "sum of targets: %.1f s\n", s}' "$out"
