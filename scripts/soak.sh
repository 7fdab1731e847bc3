#!/usr/bin/env bash
# Soak: MINUTES (default 30) of mixed NATS and NSQ traffic through the
# toxiproxy fault proxy with periodic outages (nats-server kill -9 +
# restart, the NSQ consumer's proxy closed), sampling the client process's
# RSS and open fds. Prints the RSS slope after warm-up (KiB/min), fd
# min/max, and messages confirmed vs received; fails on a lost confirmed
# message, an fd leak, or an RSS slope above COURIER_SOAK_MAX_SLOPE_KIB
# (default 1024 KiB/min). The test is tests/soak.rs; the suite runs it for
# 2 minutes. Release build: the numbers are for the product, not debug.
#
#   scripts/soak.sh [MINUTES]
#   COURIER_SOAK_PRINT_SAMPLES=1 COURIER_SOAK_PARTS=nsq scripts/soak.sh 10
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
minutes="${1:-30}"
bash scripts/setup.sh
export PATH="$root/.tools/bin:$PATH"
export COURIER_SOAK_SECONDS=$((minutes * 60))
export COURIER_SOAK_SAMPLE_SECONDS="${COURIER_SOAK_SAMPLE_SECONDS:-5}"
exec cargo test --release -p courier-tests --test soak -- --ignored --nocapture
