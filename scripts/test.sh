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
echo "== cargo test (real nats-server, nsqd, nsqlookupd, RabbitMQ on loopback)"
cargo test --workspace --no-run --quiet
# The 2-minute soak (tests/soak.rs, #[ignore]d) mostly waits on its outages:
# it runs beside the rest of the suite instead of after it.
# Its binary is started directly: a second cargo would wait for the
# build-directory lock the first one holds.
soak_log="$root/target/soak-suite.log"
soak_bin="$(cargo test -p courier-tests --test soak --no-run 2>&1 |
  sed -n 's/.*(\(target\/debug\/deps\/soak-[^)]*\)).*/\1/p' | tail -1)"
(cd tests && "$root/$soak_bin" --ignored --nocapture >"$soak_log" 2>&1) &
soak_pid=$!
status=0
cargo test --workspace --no-fail-fast -- --test-threads="${COURIER_TEST_THREADS:-2}" || status=$?
soak_status=0
wait "$soak_pid" || soak_status=$?
echo "== soak (ran beside the suite): exit $soak_status"
grep -E '^soak:|test result|panicked|FAILED' "$soak_log" || cat "$soak_log"
[ "$status" -eq 0 ] && [ "$soak_status" -eq 0 ]
