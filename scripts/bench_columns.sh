#!/usr/bin/env bash
# One family of benchmark columns alone, into its own section of
# BENCHMARKS.md (replaced in place between its markers; the rest of the file
# is kept): the NATS-over-TLS columns of issue 10 or the JetStream columns of
# issue 11, with the same harness as scripts/bench.sh (interleaved rotated
# rounds, paired-ratio medians with spread, server-side count checks).
#
#   bash scripts/bench_columns.sh tls          # 5 rounds, unpinned: a few minutes
#   bash scripts/bench_columns.sh js
#   bash scripts/bench_columns.sh all          # both
#   bash scripts/bench_columns.sh amqp         # RabbitMQ: courier, lapin, amqp091-go
#   bash scripts/bench_columns.sh "nats js publish window 1"   # any --only text
#   ROUNDS=7 bash scripts/bench_columns.sh tls --pinning both  # more flags go to courier-bench
#   (default: --repeat ${ROUNDS:-5} --pinning unpinned unless given)
#   bash scripts/bench_columns.sh js --quick   # smoke run (numbers meaningless)
#
# Run it on a quiet machine for numbers that mean anything; the section
# records the load average before and after the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
family="${1:?usage: bench_columns.sh tls|js|all|'ONLY TEXT' [courier-bench flags]}"
shift
case "$family" in
  tls) only=(--only "nats tls"); title="NATS over TLS (issue 10)" ;;
  js) only=(--only "nats js"); title="JetStream and the outbox (issue 11)" ;;
  all) only=(--only "nats tls" --only "nats js"); title="NATS over TLS (issue 10) and JetStream (issue 11)" ;;
  amqp) only=(--only "amqp"); title="AMQP 0-9-1 (issue 12): RabbitMQ, courier vs lapin and amqp091-go" ;;
  *) only=(--only "$family"); title="$family" ;;
esac
# One section per family and flag set: a pinned or --quick run does not
# replace the unpinned full one.
slug="$(printf '%s' "$family $*" | tr -c 'A-Za-z0-9' '-' | sed 's/-*$//')"
out="bench/results/$slug"
mkdir -p "$out"
for tool in nats-server nats amqp091-bench rabbitmq-server; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool missing; running scripts/setup.sh" >&2
    bash scripts/setup.sh
    break
  fi
done
cargo build --release -p courier-bench
defaults=()
case " $* " in *" --repeat"*) ;; *) defaults+=(--repeat "${ROUNDS:-5}") ;; esac
case " $* " in *" --pinning"*) ;; *) defaults+=(--pinning unpinned) ;; esac
cmd=(./target/release/courier-bench "${only[@]}" "${defaults[@]}"
  --json "$out/bench.json" --markdown "$out/tables.md" "$@")
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
status=0
"${cmd[@]}" | tee "$out/terminal.txt" || status=$?
elapsed=$(( $(date +%s) - started ))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
[ -f "$out/tables.md" ] || { echo "bench: no tables written" >&2; exit 1; }

section="$(mktemp)"
trap 'rm -f "$section"' EXIT
{
  echo "## $title: \`bash scripts/bench_columns.sh $family$( [ $# -gt 0 ] && printf ' %q' "$@" )\`"
  echo
  echo "Generated on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s; load average (1/5/15 min) ${load_before} before,"
  echo "${load_after} after, on $(nproc) CPUs. With a load average above about 1 on this 2-core machine the numbers are"
  echo "NOISY: compare the ratios (paired per round) rather than the rates, and claim no target from them."
  echo
  echo '```sh'
  printf '%q ' "${cmd[@]}" | sed 's/ $//'
  echo
  echo '```'
  echo
  case "$family" in tls | all | "nats tls"*) cat <<'TXT'
What the TLS columns measure (table `NATS TLS`): one nats-server whose client port takes TLS and, with
`allow_non_tls`, plaintext too; a CA and server certificate generated for the run (rcgen); every TLS client verifies
the server against that CA (courier `tls_ca_file` with a `tls://` URL, async-nats `add_root_certificates` +
`require_tls`, natscli `--tlsca`). `courier`, `async-nats`, `nats bench` are over TLS (TLS 1.3 where both ends
offer it); `... plaintext` are the same clients on the same server without TLS (shown, never a ratio column).
- **publish** 16 B / 1 KiB: one connection publishes N messages (1M at 16 B, 256 MiB of payload at 1 KiB), ended
  by a round trip; /varz `in_msgs` must grow by exactly the claim.
- **subscribe** 16 B: a shared plaintext raw feeder publishes N messages; rate from the first to the last received;
  /varz in and out checked.
- **request** 16 B: sequential requests to a shared plaintext raw responder; p50 / p99 per round trip.
- **handshake**: 100 connects, each timed from dialling until `connect` returns, which for both courier and
  async-nats is the server's PONG to CONNECT+PING (TCP, INFO, the TLS handshake, CONNECT, PING/PONG), then closed;
  p50 / p99. natscli has no such bench.
- allocs/msg (in-process clients, measured section only) and syscalls/msg (`perf stat`, whole process) in the
  detail table are the TLS figures asked for by issue 10.

TXT
  ;; esac
  case "$family" in js | all | "nats js"*) cat <<'TXT'
What the JetStream columns measure (table `NATS JS`): one nats-server with JetStream; every series gets a fresh
memory-storage stream created the same way by the harness's own connection (consume groups: one prefilled stream and
a durable pull consumer per series, explicit ack, deliver all). After each series the server's own view is checked:
STREAM.INFO must hold exactly the messages the client claims, CONSUMER.INFO must show every message delivered and
acked; a mismatch fails the series and the run.
- **publish window 1** (16 B, 1 KiB; 20k messages): each publish waits for its PubAck. courier `js.publish`,
  async-nats `publish().await?.await?`, `nats bench js pub sync`.
- **publish window 256** (200k messages): up to 256 acks outstanding. courier `publish_window(256)`, async-nats a
  queue of 256 `PublishAckFuture`s (oldest awaited first), `nats bench js pub async --batch 256`.
- **fetch** / **consume** 16 B (200k prefilled): batches of 500, every message acked, ended by a round trip.
  courier `fetch(500, 1 s)` / `messages()` with batch 500, async-nats `fetch().max_messages(500)` /
  `stream().max_messages_per_batch(500)`, `nats bench js fetch` / `js consume --batch 500`.
- **outbox** 16 B (100k messages, batches of 256, until every record is confirmed): `courier` = the durable outbox
  with one fsync per 256-message batch (spool in a temp dir on the machine's disk); `courier outbox, fsync never`;
  `no outbox` = the same publishes through `publish_window(256)`; `no outbox, msg ids` = the same with a
  `Nats-Msg-Id` on each, as the outbox sends them. `courier ÷ no outbox` is the outbox's cost: the issue 11
  target (overhead ≤ 2× the plain JetStream publish time) means a ratio ≥ 0.5.

TXT
  ;; esac
  cat "$out/tables.md"
  echo
  echo "Raw data: [\`$out/bench.json\`]($out/bench.json); terminal output: [\`$out/terminal.txt\`]($out/terminal.txt)."
} > "$section"
python3 - "$slug" "$section" <<'PY'
import sys
slug, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = f"<!-- bench_columns:{slug} begin -->", f"<!-- bench_columns:{slug} end -->"
text = open("BENCHMARKS.md").read()
block = f"{begin}\n{section.rstrip()}\n{end}"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
echo "bench: wrote the \"$title\" section of BENCHMARKS.md and $out/ in ${elapsed} s" >&2
exit "$status"
