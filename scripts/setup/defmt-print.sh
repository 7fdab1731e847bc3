#!/usr/bin/env bash
# Installs, when missing, defmt-print 1.2.0 (crates.io, knurling-rs/defmt's
# host decoder) into .tools/bin: scripts/embedded.sh's QEMU test pipes the
# defmt firmware's semihosting output through it and asserts decoded lines.
# A one-time build of ~100 crates (a few minutes on 2 cores); its build
# directory is deleted afterwards. Safe to run repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version=1.2.0
bin="$root/.tools/bin"
have() { "$1" --version 2>/dev/null | grep -q "$version"; }
if have defmt-print || have "$bin/defmt-print"; then
  exit 0
fi
echo "setup/defmt-print: installing defmt-print $version (cargo install, crates.io)" >&2
mkdir -p "$bin"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
CARGO_TARGET_DIR="$build" CARGO_INCREMENTAL=0 \
  cargo install --locked --quiet --root "$build/root" defmt-print --version "$version"
install -m 0755 "$build/root/bin/defmt-print" "$bin/defmt-print"
