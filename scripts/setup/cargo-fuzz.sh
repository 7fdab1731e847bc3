#!/usr/bin/env bash
# Installs cargo-fuzz (libFuzzer driver for `cargo +nightly fuzz`) when missing.
# Only scripts/fuzz.sh needs it; CI (scripts/test.sh) replays the corpora on
# the stable toolchain instead and does not run this.
set -euo pipefail
if command -v cargo-fuzz >/dev/null 2>&1; then exit 0; fi
echo "setup: installing cargo-fuzz 0.13.1 (crates.io)" >&2
cargo install --locked cargo-fuzz --version 0.13.1
