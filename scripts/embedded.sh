#!/usr/bin/env bash
# The embedded checks of issue 14, run by scripts/test.sh:
#  1. courier-core built for thumbv6m-none-eabi (Cortex-M0: no compare-and-swap
#     atomics) and riscv32imc-unknown-none-elf (32-bit RISC-V) with Debian's
#     rustc 1.96 and -Zbuild-std=core (rustup cannot add targets here);
#  2. the firmware (examples/firmware) for thumbv7em-none-eabihf (Cortex-M4F,
#     QEMU's mps2-an386), which links courier-core for that target too;
#  3. the flash/RAM table of each firmware from its ELF sections;
#  4. the firmware run in QEMU against real brokers (tests/firmware_qemu.rs).
# The rustup toolchain of rust-toolchain.toml stays the one for everything else;
# the Debian pair builds into target/embedded so it never fights target/.
#
#   scripts/embedded.sh            all of the above
#   scripts/embedded.sh build      1-3 only (no QEMU run)
#   scripts/embedded.sh sizes      1-3, plus every firmware built with defmt logging:
#                                  its table and flash by crate (scripts/elf_crates.py);
#                                  no QEMU run
# The CI run builds one defmt firmware (nats_publish_only, DEFMT_LOG=info) and
# the QEMU test decodes its log with defmt-print (scripts/setup/defmt-print.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup/embedded.sh
bash scripts/setup/defmt-print.sh
export PATH="$root/.tools/bin:$PATH"

export CARGO_TARGET_DIR="$root/target/embedded"
deb_cargo() { RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo "$@"; }
fw="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release"
start=$SECONDS

echo "== courier-core (with its defmt::Format derives) for thumbv6m-none-eabi and"
echo "   riscv32imc-unknown-none-elf (Debian rustc, build-std)"
deb_cargo build --quiet -Zbuild-std=core --release -p courier-core --features defmt \
  --target thumbv6m-none-eabi --target riscv32imc-unknown-none-elf
# Flash = .vector_table + .text + .rodata + .data (what is programmed);
# static RAM = .data + .bss. The client and its buffers live on main's stack:
# each firmware prints its stack high-water mark when it exits in QEMU.
size_table() { # dir
  printf '%-20s %7s %7s %6s %6s %7s\n' firmware .text .rodata .data .bss flash
  for bin in $bins; do
    size -A "$1/$bin" | awk -v bin="$bin" '
      $1==".vector_table"{v=$2} $1==".text"{t=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2}
      END { printf "%-20s %7d %7d %6d %6d %7d\n", bin, t, r, d, b, v+t+r+d }'
  done
}
all_bins="nats_publish_only nats_telemetry nsq_publisher nsq_consumer nsq_consumer_deflate nats_tls"
bins="$all_bins"
# The TLS client's crates in nats_tls (embedded-tls and the RustCrypto code
# it pulls in), for the flash-by-crate share.
tls_crates="embedded_tls,der,const_oid,p256,primeorder,ecdsa,elliptic_curve,crypto_bigint,sec1,aes,aes_gcm,ghash,ctr,sha2,hkdf,hmac,digest,generic_array,subtle,rand_chacha,ppv_lite86"
fw_build() { # extra cargo args
  (cd examples/firmware && deb_cargo build --quiet -Zbuild-std=core --release \
    --target thumbv7em-none-eabihf "$@")
}

# defmt builds log at info level (without DEFMT_LOG defmt-macros keep only
# error! calls, and the firmware's lines would be compiled out). They share
# the target dir with the text builds (same file names), so each defmt ELF
# is copied to $fw/defmt/ before the text build replaces it.
export DEFMT_LOG=info
defmt_build() { # features bin...
  local features="$1"; shift
  fw_build --features "$features" $(printf -- '--bin %s ' "$@")
  mkdir -p "$fw/defmt"
  for bin in "$@"; do cp "$fw/$bin" "$fw/defmt/$bin"; done
}

echo "== firmware for thumbv7em-none-eabihf (mps2-an386), opt-level z, fat LTO, defmt logs"
if [ "${1:-}" = sizes ]; then
  defmt_build defmt nats_publish_only nats_telemetry nsq_publisher nsq_consumer
  defmt_build defmt,deflate nsq_consumer_deflate
  defmt_build defmt,tls nats_tls
else
  defmt_build defmt nats_publish_only # its log is decoded by the QEMU test
fi
echo "== firmware for thumbv7em-none-eabihf (mps2-an386), opt-level z, fat LTO, text logs"
fw_build --bins
fw_build --features deflate --bin nsq_consumer_deflate
# TLS 1.3 (embedded-tls, feature `tls`): its own LTO build, so no other
# firmware compiles the TLS client.
fw_build --features tls --bin nats_tls
size_table "$fw"
echo "== flash by crate: nats_tls (text logs)"
python3 scripts/elf_crates.py "$fw/nats_tls" --sum "TLS client=$tls_crates"
echo "embedded builds: $((SECONDS - start)) s"

echo "== the same firmware logging with defmt (DEFMT_LOG=info)"
(bins=nats_publish_only; [ "${1:-}" = sizes ] && bins="$all_bins"; size_table "$fw/defmt")
if [ "${1:-}" = sizes ]; then
  for bin in $bins; do
    echo "== flash by crate: $bin (defmt)"
    python3 scripts/elf_crates.py "$fw/defmt/$bin" --sum "TLS client=$tls_crates"
  done
  exit 0
fi
if [ "${1:-}" = build ]; then
  exit 0
fi
echo "== firmware in QEMU against real brokers"
COURIER_FIRMWARE_DIR="$fw" CARGO_TARGET_DIR="$root/target" \
  cargo test --quiet -p courier-tests --test firmware_qemu -- --ignored --test-threads=1 --nocapture
echo "embedded checks: $((SECONDS - start)) s"
