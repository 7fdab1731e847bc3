#!/usr/bin/env bash
# The demo: installs nats-server if missing, starts it on a free loopback
# port, runs courier's demo program against it (an edge device publishes
# telemetry through the no_std core's blocking driver, a server-side
# consumer on the io_uring/epoll runtime receives it), then stops the server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.tools/bin:$PATH"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "demo: nats-server listening on 127.0.0.1:$port"
cargo run --quiet -p courier-examples --bin demo -- "nats://127.0.0.1:$port" "$@"
