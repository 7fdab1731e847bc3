#!/usr/bin/env bash
# Instructions per message of courier-core's NSQ session (PUB, MPUB,
# consume with FIN), from callgrind: runs core/examples/nsq_session_loop.rs
# at N and 2N messages and prints (count(2N) - count(N)) / N, which cancels
# start-up. Leaves the 2N profiles for `callgrind_annotate`.
#
#   bash scripts/profile_nsq.sh               # every loop
#   bash scripts/profile_nsq.sh consume 1024  # one loop and size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup/valgrind.sh
cargo build --release --quiet -p courier-core --example nsq_session_loop
out="${TMPDIR:-/tmp}/courier-profile"
mkdir -p "$out"
n=${N:-20000}
count() { # loop size messages
  valgrind --tool=callgrind --callgrind-out-file="$out/nsq-$1-$2-$3.out" \
    target/release/examples/nsq_session_loop "$1" "$3" "$2" 2>&1 | sed -n 's/.*Collected : //p'
}
if [ $# -ge 2 ]; then runs=("$1 $2"); else
  runs=("pub 16" "pub 1024" "mpub 16" "mpub 1024" "consume 16" "consume 1024"); fi
for run in "${runs[@]}"; do
  set -- $run
  one=$(count "$1" "$2" "$n")
  two=$(count "$1" "$2" $((2 * n)))
  echo "nsq $1 $2 B: $(( (two - one) / n )) instructions per message"
done
