#!/usr/bin/env bash
# Installs the named tools from Debian's packages (package = tool name) when
# any is missing: `bash scripts/setup/debian-tools.sh valgrind strace`.
# Shared by the one-line installers beside it. Idempotent.
set -euo pipefail
missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]} (Debian)" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >&2
