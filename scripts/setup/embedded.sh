#!/usr/bin/env bash
# Installs, when missing, what the embedded checks (scripts/embedded.sh) need:
#   rustc-web cargo-web rust-web-src  Debian's Rust 1.96 with the standard library's
#                                     source, for -Zbuild-std=core on targets rustup
#                                     cannot download here (/usr/bin/rustc, /usr/bin/cargo)
#   lld-16                            llvm-size-16 / ld.lld-16 (rustc links with its own rust-lld)
#   qemu-system-arm                   runs the Cortex-M firmware (mps2-an386)
#   binutils                          size -A and nm read the firmware's ARM ELF
# Safe to run repeatedly: nothing is done when every tool is present.
set -euo pipefail
say() { echo "setup/embedded: $*" >&2; }

missing=()
[ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || missing+=(rustc-web cargo-web)
[ -d /usr/lib/rustlib/src/rust/library/core ] || missing+=(rust-web-src)
command -v ld.lld-16 >/dev/null 2>&1 || missing+=(lld-16)
command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
command -v size >/dev/null 2>&1 || missing+=(binutils)  # size -A for the flash/RAM table
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
say "installing ${missing[*]} (Debian)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
