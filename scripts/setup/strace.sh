#!/usr/bin/env bash
# Installs strace (Debian package) when missing: scripts/nsq_syscalls.sh
# counts the syscalls of one NSQ publish round trip with `strace -f -c`
# (a count, stable on a loaded machine, unlike wall time). Idempotent.
exec bash "$(dirname "${BASH_SOURCE[0]}")/debian-tools.sh" strace
