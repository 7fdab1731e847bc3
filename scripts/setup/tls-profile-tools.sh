#!/usr/bin/env bash
# Installs openssl (the test CA and server certificate) and strace (syscalls
# per message) when missing: scripts/profile_nats_tls.sh uses both (with
# valgrind, installed by scripts/setup/valgrind.sh). Idempotent.
set -euo pipefail
missing=()
for tool in openssl strace; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]} (Debian)" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >&2
