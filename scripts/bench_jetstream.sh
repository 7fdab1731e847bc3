#!/usr/bin/env bash
# JetStream rates of courier beside natscli's `nats bench js` and async-nats
# on the same nats-server, same rounds: now part of courier-bench (the
# `nats js` table: interleaved rotated rounds, paired ratios, STREAM.INFO /
# CONSUMER.INFO checks). This wrapper runs that table alone and writes its
# section of BENCHMARKS.md; see scripts/bench_columns.sh.
#
#   scripts/bench_jetstream.sh [courier-bench flags]    e.g. --quick, --repeat 3
#
# (The older standalone runner, `cargo run --release -p courier --example
# jetstream_rates`, still exists for a single quick number.)
exec bash "$(dirname "${BASH_SOURCE[0]}")/bench_columns.sh" js "$@"
