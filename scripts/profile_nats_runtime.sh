#!/usr/bin/env bash
# Instructions per message of the WHOLE courier worker process (runtime +
# core + the bench's own loop) on the NATS publish and pubsub paths, from
# callgrind: runs `courier-bench worker` at N and 2N messages against a
# nats-server on a free loopback port and prints (count(2N) - count(N)) / N.
# pubsub = one publisher and one subscriber in the same process, so
# (pubsub - publish) approximates the runtime's receive path per message.
#
#   bash scripts/profile_nats_runtime.sh                 # epoll, 16 B and 1 KiB
#   BIN=/tmp/other-courier-bench bash scripts/profile_nats_runtime.sh
#   TRANSPORT=uring SIZES="16" bash scripts/profile_nats_runtime.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
bash scripts/setup/valgrind.sh
source scripts/lib/courier_bench_bin.sh
transport="${TRANSPORT:-epoll}"
n="${N:-20000}"
out="${TMPDIR:-/tmp}/courier-profile"
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.5
count() { # scenario size messages
  valgrind --tool=callgrind --callgrind-out-file="$out/rt-$1-$2-$3.out" "$bin" worker \
    --client courier --scenario "$1" --url "nats://127.0.0.1:$port" --subject "prof.$1" \
    --size "$2" --msgs "$3" --transport "$transport" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'
}
for size in ${SIZES:-16 1024}; do
  for scenario in publish pubsub; do
    one=$(count "$scenario" "$size" "$n")
    two=$(count "$scenario" "$size" $((2 * n)))
    echo "$scenario $size B ($transport): $(( (two - one) / n )) instructions per message  (callgrind_annotate $out/rt-$scenario-$size-$((2 * n)).out)"
  done
done
