#!/usr/bin/env bash
# Builds toxiproxy-server v2.12.0 (the fault proxy the tests/faults_* tests and
# scripts/soak.sh drive) into .tools/bin from the pinned go.mod in
# scripts/go/toxiproxy. Skipped when present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
if [ -x "$bin/toxiproxy-server" ]; then exit 0; fi
echo "setup: building toxiproxy v2.12.0 (go)" >&2
(cd "$root/scripts/go/toxiproxy" && GOFLAGS=-mod=mod go build -o "$bin/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server)
