#!/usr/bin/env bash
# JetStream rates of courier beside natscli's `nats bench js` on the same
# nats-server (memory storage), same run. Prints a markdown table.
#
#   scripts/bench_jetstream.sh [msgs]        (default 50000)
#
# The machine may be shared: numbers swing; repeat and compare ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
msgs="${1:-50000}"
store="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
nats-server -js -sd "$store" -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$store"' EXIT
sleep 0.5
url="nats://127.0.0.1:$port"
cargo build --release -q -p courier --example jetstream_rates
courier="$root/target/release/examples/jetstream_rates"

natscli() { # args... -> msgs/s
  nats -s "$url" bench js "$@" --no-progress 2>&1 | grep -Eo '[0-9,]+ msgs/sec' | head -1 | tr -d ', msgs/ec'
}
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }

echo "| case | courier msgs/s | natscli msgs/s |"
echo "|---|---|---|"
for size in 16 1024; do
  c1="$("$courier" "$url" pub "$msgs" "$size" 1 | awk '{print $5}')"
  n1="$(natscli pub sync cbench.n --msgs "$msgs" --size "$size" --storage memory --create --purge --stream NBENCH)"
  row "publish ${size} B, wait each ack (window 1 / pub sync)" "$c1" "$n1"
  c2="$("$courier" "$url" pub "$msgs" "$size" 256 | awk '{print $5}')"
  n2="$(natscli pub async cbench.n --msgs "$msgs" --size "$size" --storage memory --create --purge --batch 256 --stream NBENCH)"
  row "publish ${size} B, 256 acks in flight (window 256 / pub async --batch 256)" "$c2" "$n2"
done
c3="$("$courier" "$url" fetch "$msgs" 16 500 | awk '{print $5}')"
natscli pub async cbench.n --msgs "$msgs" --size 16 --storage memory --create --purge --stream NBENCH >/dev/null
n3="$(natscli fetch --msgs "$msgs" --batch 500 --stream NBENCH)"
row "fetch 16 B, batch 500, explicit ack" "$c3" "$n3"
c4="$("$courier" "$url" consume "$msgs" 16 500 | awk '{print $5}')"
# A fresh stream and consumer: fetch above consumed the durable's messages.
natscli pub async cbench.m --msgs "$msgs" --size 16 --storage memory --create --purge --stream NBENCH2 >/dev/null
n4="$(natscli consume --msgs "$msgs" --batch 500 --stream NBENCH2)"
row "consume stream 16 B, 500 outstanding, explicit ack" "$c4" "$n4"
c5="$("$courier" "$url" pub "$msgs" 16 256 | awk '{print $5}')"
row "publish 16 B, window 256, no msg id (outbox baseline)" "$c5" "-"
c6="$("$courier" "$url" pubid "$msgs" 16 256 | awk '{print $5}')"
row "publish 16 B, window 256, Nats-Msg-Id on each (server de-dup cost)" "$c6" "-"
spool="$(mktemp -d)"
c7="$("$courier" "$url" outbox "$msgs" 16 256 "$spool" | awk '{print $5}')"
rm -rf "$spool"; spool="$(mktemp -d)"
c8="$(OUTBOX_NO_FSYNC=1 "$courier" "$url" outbox "$msgs" 16 256 "$spool" | awk '{print $5}')"
rm -rf "$spool"
row "outbox 16 B, fsync per 256-message batch" "$c7" "-"
row "outbox 16 B, fsync never" "$c8" "-"
