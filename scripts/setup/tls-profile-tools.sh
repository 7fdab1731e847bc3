#!/usr/bin/env bash
# Installs openssl (the test CA and server certificate) and strace (syscalls
# per message) when missing: scripts/profile_nats_tls.sh uses both (with
# valgrind, installed by scripts/setup/valgrind.sh). Idempotent.
exec bash "$(dirname "${BASH_SOURCE[0]}")/debian-tools.sh" openssl strace
