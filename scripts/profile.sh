#!/usr/bin/env bash
# Instructions per message of courier-core's publish encoders, from
# callgrind (instruction counts are stable on a loaded machine, unlike wall
# time): runs core/examples/publish_loop.rs at N and 2N messages and prints
# (count(2N) - count(N)) / N, which cancels start-up. Also leaves the 2N
# profile for `callgrind_annotate`.
#
#   bash scripts/profile.sh              # NATS PUB 16 B and 1 KiB, NSQ MPUB 16 B and 1 KiB
#   bash scripts/profile.sh nats 16      # one loop and size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup/valgrind.sh
cargo build --release --quiet -p courier-core --example publish_loop
out="${TMPDIR:-/tmp}/courier-profile"
mkdir -p "$out"
n=100000
count() { # loop size messages
  valgrind --tool=callgrind --callgrind-out-file="$out/$1-$2-$3.out" \
    target/release/examples/publish_loop "$1" "$3" "$2" 2>&1 | sed -n 's/.*Collected : //p'
}
if [ $# -ge 2 ]; then runs=("$1 $2"); else runs=("nats 16" "nats 1024" "mpub 16" "mpub 1024"); fi
for run in "${runs[@]}"; do
  set -- $run
  one=$(count "$1" "$2" "$n")
  two=$(count "$1" "$2" $((2 * n)))
  echo "$1 $2 B: $(( (two - one) / n )) instructions per message  (callgrind_annotate $out/$1-$2-$((2 * n)).out)"
done
