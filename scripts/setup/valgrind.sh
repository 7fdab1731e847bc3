#!/usr/bin/env bash
# Installs valgrind (Debian package) when missing: scripts/profile.sh counts
# instructions per publish with `valgrind --tool=callgrind` (stable on a
# loaded machine, unlike wall time). Idempotent.
exec bash "$(dirname "${BASH_SOURCE[0]}")/debian-tools.sh" valgrind
