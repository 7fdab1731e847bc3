#!/usr/bin/env bash
# Builds amqp091-bench (the Go reference AMQP client github.com/rabbitmq/amqp091-go
# v1.10.0 in courier-bench's AMQP scenarios) into .tools/bin from the pinned
# go.mod in scripts/go/amqp091bench. Skipped when present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
if [ -x "$bin/amqp091-bench" ]; then exit 0; fi
echo "setup: building amqp091-bench (amqp091-go v1.10.0, go)" >&2
(cd "$root/scripts/go/amqp091bench" && GOFLAGS=-mod=mod go build -o "$bin/amqp091-bench" .)
