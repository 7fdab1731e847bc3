#!/usr/bin/env bash
# Installs RabbitMQ (Debian's rabbitmq-server, which brings Erlang) for the
# AMQP 0-9-1 tests (the management plugin ships with it; the tests check the
# broker's own view over its HTTP API). Also installs the Python
# reference clients kombu and pika for the interoperability tests.
# Idempotent: every step is skipped when its result is present.
#
# The Debian package would start a system broker on 5672 where a service
# manager runs (policy-rc.d stops that during the install); the tests never
# use one: each test binary starts its own node on free loopback ports with
# the management plugin enabled through its own enabled_plugins file (see
# tests/support/rabbitmq.rs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "setup/rabbitmq: $*" >&2; }

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  say "installing rabbitmq-server (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: do not start the packaged broker while installing.
  if [ -w /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # Wait for the dpkg lock: other setup steps may be installing at the same time.
  (apt-get -o DPkg::Lock::Timeout=900 update -qq &&
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends rabbitmq-server) >&2
fi

if ! python3 -c 'import kombu, pika' >/dev/null 2>&1; then
  say "installing kombu and pika (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kombu==5.5.4 pika==1.3.2
fi
