#!/usr/bin/env bash
# Installs, when missing, defmt-print 1.2.0 (crates.io, knurling-rs/defmt's
# host decoder) into .tools/bin: scripts/embedded.sh's QEMU test pipes the
# defmt firmware's semihosting output through it and asserts decoded lines.
# The first build compiles ~100 crates (a few minutes on 2 cores); its build
# directory is kept in the user's cache (as Go keeps its build cache for the
# nsq tools), so a fresh clone on the same machine only relinks. Safe to run
# repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version=1.2.0
bin="$root/.tools/bin"
# grep reads all of it: with `grep -q` the tool may die of SIGPIPE, which
# pipefail reports as "not installed".
have() { "$1" --version 2>/dev/null | grep "$version" >/dev/null; }
if have defmt-print || have "$bin/defmt-print"; then
  exit 0
fi
mkdir -p "$bin"
build="${XDG_CACHE_HOME:-$HOME/.cache}/courier/defmt-print-$version"
mkdir -p "$build"
if ! have "$build/root/bin/defmt-print"; then
  echo "setup/defmt-print: building defmt-print $version (cargo install from crates.io, once per machine)" >&2
  CARGO_TARGET_DIR="$build/target" CARGO_INCREMENTAL=0 \
    cargo install --locked --quiet --force --root "$build/root" defmt-print --version "$version"
fi
install -m 0755 "$build/root/bin/defmt-print" "$bin/defmt-print"
