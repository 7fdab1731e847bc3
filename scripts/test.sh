#!/usr/bin/env bash
# Runs every test: installs missing servers/tools first, then formatting and
# lint gates, the whole workspace's tests against real brokers, and the
# no_std probe build. .ci/run calls exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$root/.tools/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== no_std probe: courier-core linked into a #![no_std] #![no_main] binary"
(cd core/no-std-probe && cargo build --release --quiet && ./target/release/courier-no-std-probe)
echo "no_std probe: ok"
bash scripts/embedded.sh  # core for Cortex-M0/RISC-V, firmware sizes, firmware in QEMU vs real brokers
echo "== cargo test (real nats-server, nsqd, nsqlookupd on loopback)"
cargo test --workspace --no-fail-fast -- --test-threads="${COURIER_TEST_THREADS:-2}"
