# Sourced by the profile scripts (from the checkout's root): sets $bin to the
# courier-bench binary to profile, BIN when given, else the release build
# (built now).
bin="${BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet -p courier-bench
  bin=target/release/courier-bench
fi
