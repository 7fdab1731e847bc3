#!/usr/bin/env bash
# Instructions per RECEIVED NATS message in courier-core's session, from
# callgrind: runs core/examples/receive_loop.rs at N and 2N messages and
# prints (count(2N) - count(N)) / N, which cancels start-up (as
# scripts/profile.sh does for publishes).
#
#   bash scripts/profile_nats_recv.sh          # 16 B and 1 KiB payloads
#   bash scripts/profile_nats_recv.sh 16       # one size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup/valgrind.sh
cargo build --release --quiet -p courier-core --example receive_loop
out="${TMPDIR:-/tmp}/courier-profile"
mkdir -p "$out"
n=100000
count() { # size messages
  valgrind --tool=callgrind --callgrind-out-file="$out/recv-$1-$2.out" \
    target/release/examples/receive_loop "$2" "$1" 2>&1 | sed -n 's/.*Collected : //p'
}
if [ $# -ge 1 ]; then sizes=("$1"); else sizes=(16 1024); fi
for size in "${sizes[@]}"; do
  one=$(count "$size" "$n")
  two=$(count "$size" $((2 * n)))
  echo "recv $size B: $(( (two - one) / n )) instructions per message  (callgrind_annotate $out/recv-$size-$((2 * n)).out)"
done
