#!/usr/bin/env bash
# Instructions per message through the facade (courier::mom) and through
# the native NATS API, 1 KiB payloads, send + receive on one runtime:
# callgrind runs of tests/mom_perf.rs `instructions_profile` with N and 2N
# messages; (count(2N) - count(N)) / N cancels the fixed costs (connects,
# buffers). Instruction counts do not depend on the machine's load, unlike
# msgs/s. Needs valgrind. Usage: scripts/mom_profile.sh [N]   (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH" CARGO_INCREMENTAL=0
N=${1:-5000}
bin=$(cargo test --release -p courier-tests --test mom_perf --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*mom_perf[^"]*\)".*/\1/p' | tail -1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f /tmp/mom_profile.$$.*' EXIT
sleep 0.5
count() { # mode recv n
    MOM_PROFILE=$1 MOM_PROFILE_RECV=$2 MOM_PROFILE_N=$3 MOM_PROFILE_NATS="nats://127.0.0.1:$port" \
        valgrind --tool=callgrind --callgrind-out-file=/tmp/mom_profile.$$.out \
        "$bin" --ignored --exact instructions_profile --test-threads=1 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for recv in 1 0; do
    what=$([ "$recv" = 1 ] && echo "send+receive" || echo "send only")
    for mode in native facade; do
        a=$(count $mode $recv "$N"); b=$(count $mode $recv $((2 * N)))
        echo "$mode $what: $(( (b - a) / N )) instructions per 1 KiB message"
    done
done
