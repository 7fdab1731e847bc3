#!/usr/bin/env bash
# Per-message cost of courier's NATS publish over TLS beside plaintext, on
# ONE nats-server (TLS listener with allow_non_tls) on a free loopback port:
# - instructions per message of the WHOLE worker process (callgrind at N and
#   2N messages: (count(2N) - count(N)) / N); the worker's connect timeout
#   is raised (--connect-timeout-s) because the TLS handshake under valgrind
#   takes longer than the client's default 2 s;
# - heap allocations per message (the worker's counting allocator) and
#   write(v)/read syscalls per message (strace -c, epoll backend, at 2N).
# Wall time on a shared machine is noise; these counts are not.
#
#   bash scripts/profile_nats_tls.sh                       # epoll, 16 B and 1 KiB
#   BIN=/tmp/other-courier-bench bash scripts/profile_nats_tls.sh
#   SIZES=16 N=50000 SCENARIOS="publish pubsub" bash scripts/profile_nats_tls.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
bash scripts/setup/valgrind.sh
bash scripts/setup/tls-profile-tools.sh
source scripts/lib/courier_bench_bin.sh
transport="${TRANSPORT:-epoll}"
n="${N:-20000}"
out="$(mktemp -d "${TMPDIR:-/tmp}/courier-tls-profile.XXXXXX")"
# A CA and a server certificate for 127.0.0.1 (what the bench generates with rcgen).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=courier profile CA" -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$out/ext.cnf"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
  -CAcreateserial -days 1 -extfile "$out/ext.cnf" -out "$out/server.pem" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$out/nats.conf" <<CONF
listen: 127.0.0.1:$port
tls { cert_file: "$out/server.pem", key_file: "$out/server.key", timeout: 30 }
allow_non_tls: true
CONF
nats-server -c "$out/nats.conf" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$out"' EXIT
sleep 0.5
worker() { # mode scenario size messages [runner...]
  local mode=$1 scenario=$2 size=$3 msgs=$4
  shift 4
  local tls=()
  if [ "$mode" = tls ]; then tls=(--tls-ca "$out/ca.pem"); fi
  "$@" "$bin" worker --client courier --scenario "$scenario" --url "nats://127.0.0.1:$port" \
    --subject "prof.$scenario" --size "$size" --msgs "$msgs" --transport "$transport" \
    --connect-timeout-s 120 --timeout-s 600 "${tls[@]}"
}
instructions() { # mode scenario size messages
  worker "$@" valgrind --tool=callgrind --callgrind-out-file="$out/$1-$2-$3-$4.out" 2>&1 >/dev/null |
    sed -n 's/.*Collected : //p'
}
syscalls() { # mode scenario size messages file
  worker "$1" "$2" "$3" "$4" strace -f -c -o "$5" \
    -e trace=write,writev,sendmsg,read,recvfrom,epoll_wait,io_uring_enter >/dev/null 2>&1
}
per_call() { # strace-at-N strace-at-2N N: (calls(2N) - calls(N)) / N for each syscall
  awk -v n="$3" '$NF ~ /^(write|writev|sendmsg|read|recvfrom|epoll_wait|io_uring_enter)$/ {
      if (FILENAME == ARGV[1]) one[$NF] = $4; else two[$NF] = $4 }
    END { for (c in two) printf "%s %.4f ", c, (two[c] - one[c]) / n }' "$1" "$2"
}
for size in ${SIZES:-16 1024}; do
  for scenario in ${SCENARIOS:-publish}; do
    for mode in plain tls; do
      one=$(instructions "$mode" "$scenario" "$size" "$n")
      two=$(instructions "$mode" "$scenario" "$size" $((2 * n)))
      allocs=$(worker "$mode" "$scenario" "$size" $((2 * n)) env | python3 -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
a, m = r.get("allocations"), r.get("messages") or 1
print("n/a" if a is None else "%.4f" % (a / m))')
      sys=$(syscalls "$mode" "$scenario" "$size" "$n" "$out/strace.1"
        syscalls "$mode" "$scenario" "$size" $((2 * n)) "$out/strace.2"
        per_call "$out/strace.1" "$out/strace.2" "$n")
      echo "$scenario $size B $mode ($transport): $(( (two - one) / n )) instr/msg, $allocs allocs/msg (measured section), syscalls/msg: $sys"
      if [ -n "${KEEP:-}" ]; then cp "$out/$mode-$scenario-$size-$((2 * n)).out" "$KEEP/"; fi
    done
  done
done
