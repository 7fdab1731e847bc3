#!/usr/bin/env bash
# One family of benchmark columns alone, into its own section of
# BENCHMARKS.md (replaced in place between its markers; the rest of the file
# is kept): the NATS-over-TLS columns of issue 10 or the JetStream columns of
# issue 11, with the same harness as scripts/bench.sh (interleaved rotated
# rounds, paired-ratio medians with spread, server-side count checks).
#
#   bash scripts/bench_columns.sh tls          # 5 rounds, unpinned: a few minutes
#   bash scripts/bench_columns.sh js
#   bash scripts/bench_columns.sh all          # both
#   bash scripts/bench_columns.sh "nats js publish window 1"   # any --only text
#   ROUNDS=7 bash scripts/bench_columns.sh tls --pinning both  # more flags go to courier-bench
#   (default: --repeat ${ROUNDS:-5} --pinning unpinned unless given)
#   bash scripts/bench_columns.sh js --quick   # smoke run (numbers meaningless)
#
# Run it on a quiet machine for numbers that mean anything; the section
# records the load average before and after the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
family="${1:?usage: bench_columns.sh tls|js|all|'ONLY TEXT' [courier-bench flags]}"
shift
case "$family" in
  tls) only=(--only "nats tls"); title="NATS over TLS (issue 10)" ;;
  js) only=(--only "nats js"); title="JetStream and the outbox (issue 11)" ;;
  all) only=(--only "nats tls" --only "nats js"); title="NATS over TLS (issue 10) and JetStream (issue 11)" ;;
  *) only=(--only "$family"); title="$family" ;;
esac
slug="$(printf '%s' "$family" | tr -c 'A-Za-z0-9' '-')"
out="bench/results/$slug"
mkdir -p "$out"
for tool in nats-server nats; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool missing; running scripts/setup.sh" >&2
    bash scripts/setup.sh
    break
  fi
done
cargo build --release -p courier-bench
defaults=()
case " $* " in *" --repeat"*) ;; *) defaults+=(--repeat "${ROUNDS:-5}") ;; esac
case " $* " in *" --pinning"*) ;; *) defaults+=(--pinning unpinned) ;; esac
cmd=(./target/release/courier-bench "${only[@]}" "${defaults[@]}"
  --json "$out/bench.json" --markdown "$out/tables.md" "$@")
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
status=0
"${cmd[@]}" | tee "$out/terminal.txt" || status=$?
elapsed=$(( $(date +%s) - started ))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
[ -f "$out/tables.md" ] || { echo "bench: no tables written" >&2; exit 1; }

section="$(mktemp)"
trap 'rm -f "$section"' EXIT
{
  echo "## $title: \`bash scripts/bench_columns.sh $family$( [ $# -gt 0 ] && printf ' %q' "$@" )\`"
  echo
  echo "Generated on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s; load average (1/5/15 min) ${load_before} before,"
  echo "${load_after} after, on $(nproc) CPUs. With a load average above about 1 on this 2-core machine the numbers are"
  echo "NOISY: compare the ratios (paired per round) rather than the rates, and claim no target from them."
  echo
  echo '```sh'
  echo "${cmd[*]}"
  echo '```'
  echo
  cat "$out/tables.md"
  echo
  echo "Raw data: [\`$out/bench.json\`]($out/bench.json); terminal output: [\`$out/terminal.txt\`]($out/terminal.txt)."
} > "$section"
python3 - "$slug" "$section" <<'PY'
import sys
slug, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = f"<!-- bench_columns:{slug} begin -->", f"<!-- bench_columns:{slug} end -->"
text = open("BENCHMARKS.md").read()
block = f"{begin}\n{section.rstrip()}\n{end}"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
echo "bench: wrote the \"$title\" section of BENCHMARKS.md and $out/ in ${elapsed} s" >&2
exit "$status"
