#!/usr/bin/env bash
# Installs strace (Debian package) when missing: scripts/nsq_syscalls.sh
# counts the syscalls of one NSQ publish round trip with `strace -f -c`
# (a count, stable on a loaded machine, unlike wall time). Idempotent.
set -euo pipefail
if command -v strace >/dev/null 2>&1; then
  exit 0
fi
echo "setup: installing strace (Debian)" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq strace >&2
