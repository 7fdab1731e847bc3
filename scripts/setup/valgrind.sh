#!/usr/bin/env bash
# Installs valgrind (Debian package) when missing: scripts/profile.sh counts
# instructions per publish with `valgrind --tool=callgrind` (stable on a
# loaded machine, unlike wall time). Idempotent.
set -euo pipefail
if command -v valgrind >/dev/null 2>&1; then
  exit 0
fi
echo "setup: installing valgrind (Debian)" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq valgrind >&2
