#!/usr/bin/env bash
# Syscalls per NSQ publish round trip (issue 9), counted with `strace -f -c`
# on `courier-bench worker --scenario nsq-publish` against an nsqd started
# here on free loopback ports (killed at the end). A count, so it means
# something on a loaded machine, where wall time does not.
#
#   bash scripts/nsq_syscalls.sh                 # PUB 16 B and MPUB 200 x 16 B, epoll and io_uring
#   N=20000 PROFILE=release bash scripts/nsq_syscalls.sh
#
# Prints, per transport and batch size, each syscall's calls per round trip.
# Exits 1 when the epoll transport needs more than MAX_EPOLL (default 3:
# sendto, epoll_wait, recvfrom) or io_uring more than MAX_URING (default 4:
# + tokio-uring's empty io_uring_enter at park) syscalls per round trip: the
# regression check for the zero-timeout epoll_wait that runtime.rs's
# RepollWhenWoken removed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
bash scripts/setup/strace.sh
profile="${PROFILE:-debug}"
if [ "$profile" = release ]; then
  CARGO_INCREMENTAL=0 cargo build --release --quiet -p courier-bench
else
  CARGO_INCREMENTAL=0 cargo build --quiet -p courier-bench
fi
bin="target/$profile/courier-bench"
n="${N:-5000}"
max_epoll="${MAX_EPOLL:-3}"
max_uring="${MAX_URING:-4}"
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tcp="$(free_port)"
http="$(free_port)"
nsqd --tcp-address="127.0.0.1:$tcp" --http-address="127.0.0.1:$http" --data-path="$work" \
  --mem-queue-size=100000000 >"$work/nsqd.log" 2>&1 &
nsqd_pid=$!
trap 'kill "$nsqd_pid" 2>/dev/null; wait "$nsqd_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$tcp") 2>/dev/null; then break; fi
  sleep 0.1
done
status=0
for transport in epoll uring; do
  for batch in 1 200; do
    msgs=$((n * batch))
    strace -f -c -o "$work/strace.out" "$bin" worker --client courier --scenario nsq-publish \
      --url "127.0.0.1:$tcp" --subject t --size 16 --msgs "$msgs" --batch "$batch" \
      --transport "$transport" >/dev/null
    # Round trips: one per PUB, one per MPUB of `batch` (+1 for IDENTIFY).
    line=$(python3 - "$work/strace.out" "$n" <<'PY'
import sys
path, trips = sys.argv[1], int(sys.argv[2])
hot = ("sendto", "recvfrom", "epoll_wait", "io_uring_enter", "write", "read", "futex")
calls = {}
for row in open(path):
    f = row.split()
    if len(f) >= 5 and f[-1] in hot and f[3].isdigit():
        calls[f[-1]] = int(f[3])
total = sum(calls.values()) / trips
print(f"{total:.2f} " + " ".join(f"{k}={v / trips:.2f}" for k, v in sorted(calls.items())))
PY
)
    total="${line%% *}"
    echo "nsq publish 16 B batch $batch, $transport: ${line#* } -> $total syscalls per round trip"
    max="$max_epoll"
    if [ "$transport" = uring ]; then max="$max_uring"; fi
    if python3 -c "import sys; sys.exit(0 if float('$total') > $max + 0.25 else 1)"; then
      echo "  FAIL: more than $max syscalls per round trip on $transport" >&2
      status=1
    fi
  done
done
exit "$status"
