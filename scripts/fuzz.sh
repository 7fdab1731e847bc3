#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, bodies in fuzz/targets) for
# SECONDS each (default 60) with cargo-fuzz on the nightly toolchain, then
# prints executions, coverage (libFuzzer's cov = edges, ft = features) and
# findings per target. New coverage-increasing inputs go to
# fuzz/corpus/<target>; crashes to fuzz/artifacts/<target>/. A finding must
# become a file in fuzz/regressions/<target>/ (replayed by the stable suite:
# cargo test -p courier-fuzz-targets) and a fix in the core.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_JOBS=1 FUZZ_CMIN=1 scripts/fuzz.sh 180   # minimise corpora afterwards
#
# Exits 1 when any target found something. Needs cargo-fuzz
# (scripts/setup/cargo-fuzz.sh); the normal suite does not.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
shift || true
bash scripts/setup/cargo-fuzz.sh
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^courier-fuzz$')
targets="${*:-$all}"
echo "== building fuzz targets (nightly, ASan + libFuzzer)"
cargo +nightly fuzz build -O >/dev/null
mkdir -p fuzz/logs
summary=()
failed=0
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  echo "== $t: ${seconds}s"
  log="fuzz/logs/$t.log"
  # -rss_limit_mb: the targets allocate little; a leak shows up early.
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=1024 \
    -timeout=10 >"$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
  after=$(ls "fuzz/artifacts/$t" | wc -l)
  found=$((after - before))
  [ "$found" -gt 0 ] && failed=1
  if grep -q "panicked at" "$log"; then
    echo "   finding: $(grep -m1 -A1 'panicked at' "$log" | tr '\n' ' ')"
  fi
  summary+=("$(printf '%-14s %12s %8s %8s %8s %8s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found")")
  if [ "${FUZZ_CMIN:-0}" = 1 ]; then
    cargo +nightly fuzz cmin -O "$t" "fuzz/corpus/$t" >>"$log" 2>&1 || true
  fi
done
echo
printf '%-14s %12s %8s %8s %8s %8s\n' target executions edges features corpus findings
printf '%s\n' "${summary[@]}"
echo "(logs: fuzz/logs/<target>.log; crashes: fuzz/artifacts/<target>/)"
exit "$failed"
