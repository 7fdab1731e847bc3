//! The worker side: `courier-bench worker ...` runs ONE client in ONE
//! scenario inside its own process, so the orchestrator can count that
//! process's syscalls and CPU time, and the counting allocator sees only
//! that client. It prints a [`WorkerResult`] as its last stdout line.

use crate::alloc_count::AllocSnapshot;
use crate::rawproto;
use crate::report::{Latency, WorkerResult};
use clap::Args;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Arguments of the hidden `worker` subcommand.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// `raw`, `async-nats` (multi-thread tokio), `async-nats-ct`
    /// (current-thread tokio) or `courier`.
    #[arg(long)]
    pub client: String,
    /// Scenario: publish, subscribe, pubsub, request, respond, feed,
    /// ceiling-publish, ceiling-subscribe, nsq-prefill, nsq-publish, nsq-consume.
    #[arg(long)]
    pub scenario: String,
    /// Server URL or `host:port`.
    #[arg(long)]
    pub url: String,
    /// Subject (NATS) or topic (NSQ).
    #[arg(long, default_value = "bench")]
    pub subject: String,
    /// Payload bytes.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Messages in the measured section.
    #[arg(long, default_value_t = 10_000)]
    pub msgs: u64,
    /// NSQ MPUB batch size (1 = PUB).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// NSQ consumer max_in_flight.
    #[arg(long, default_value_t = 2500)]
    pub max_in_flight: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// NSQ stream compression for courier: `none`, `snappy` or `deflate`.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Transport for courier: `auto`, `uring` or `epoll`.
    #[arg(long, default_value = "auto")]
    pub transport: String,
    /// courier's NATS connect timeout in seconds (default: the client's
    /// own, 2 s). Raise it to run the worker under valgrind, whose slow
    /// TLS handshake would otherwise time out.
    #[arg(long)]
    pub connect_timeout_s: Option<u64>,
    /// TLS: trust this CA file (PEM) and require TLS (courier, async-nats).
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// JetStream: the stream (created by the orchestrator).
    #[arg(long, default_value = "BENCH")]
    pub stream: String,
    /// JetStream: the durable pull consumer the client creates and drains.
    #[arg(long, default_value = "bench")]
    pub consumer: String,
    /// Outbox: the spool directory (`js-outbox` with courier).
    #[arg(long)]
    pub spool: Option<std::path::PathBuf>,
    /// JetStream publish: a unique `Nats-Msg-Id` on each message (what the
    /// outbox sets), so the server's de-duplication cost shows on its own.
    #[arg(long)]
    pub msg_ids: bool,
    /// Outbox fsync policy: `batch` (one fsync per appended batch) or `never`.
    #[arg(long, default_value = "batch")]
    pub fsync: String,
    /// AMQP publish: unconfirmed publishes at most.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// AMQP consume: basic.qos prefetch.
    #[arg(long, default_value_t = 1000)]
    pub prefetch: u16,
}

/// Messages the running scenario has handled so far; a timeout reports
/// it, so a stuck run says how far it got (e.g. messages lost upstream).
pub static PROGRESS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records progress (cheap: one relaxed store).
pub fn progress(done: u64) {
    PROGRESS.store(done, std::sync::atomic::Ordering::Relaxed);
}

/// "timed out after 60s with 1234 of 5000 messages handled".
pub fn timeout_error(timeout: Duration, expected: u64) -> String {
    format!(
        "timed out after {timeout:?} with {} of {expected} messages handled",
        PROGRESS.load(std::sync::atomic::Ordering::Relaxed)
    )
}

/// The message at which an NSQ consume run stops its clock: 95% of the
/// prefill. nsqd writes the last partial output buffer only on its
/// `output_buffer_timeout` tick (250 ms by default) once the channel is
/// empty, which would otherwise add up to 250 ms of idle tail to the run.
#[cfg_attr(not(feature = "courier"), allow(dead_code))]
pub fn nsq_consume_mark(msgs: u64) -> u64 {
    (msgs * 95 / 100).max(1)
}

/// Note for NSQ consume runs about the clock mark.
#[cfg_attr(not(feature = "courier"), allow(dead_code))]
pub const NSQ_CONSUME_NOTE: &str =
    "rate over the first 95% of the prefill (nsqd flushes its last partial buffer on a 250 ms tick)";

/// Connections opened (and timed) in the `handshake` scenario.
pub const HANDSHAKES: u64 = 100;

/// Publishing connections in the `publish-conns` scenario.
pub const PUBLISH_CONNECTIONS: usize = 4;

/// Queue-group members in the `queue` scenario.
pub const QUEUE_MEMBERS: usize = 4;

/// Shared tally of a queue-group run: total delivered, per member, first
/// arrival and the moment the last expected message arrived.
pub struct QueueTally {
    total: std::sync::atomic::AtomicU64,
    per_member: [std::sync::atomic::AtomicU64; QUEUE_MEMBERS],
    first: std::sync::OnceLock<Instant>,
    last: std::sync::OnceLock<Instant>,
    expected: u64,
}

impl QueueTally {
    /// A tally expecting `expected` messages in all.
    pub fn new(expected: u64) -> Self {
        QueueTally {
            total: Default::default(),
            per_member: Default::default(),
            first: Default::default(),
            last: Default::default(),
            expected,
        }
    }

    /// Counts one delivery to `member`; true when it was the last expected.
    pub fn record(&self, member: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self.first.get_or_init(Instant::now);
        if let Some(count) = self.per_member.get(member) {
            count.fetch_add(1, Relaxed);
        }
        let total = self.total.fetch_add(1, Relaxed) + 1;
        progress(total);
        if total == self.expected {
            let _ = self.last.set(Instant::now());
            return true;
        }
        false
    }

    /// The result: rate from first to last delivery, and how the
    /// messages spread over the members.
    pub fn result(&self, allocs: AllocSnapshot) -> WorkerResult {
        use std::sync::atomic::Ordering::Relaxed;
        let elapsed = match (self.first.get(), self.last.get()) {
            (Some(first), Some(last)) => last.duration_since(*first),
            _ => Duration::ZERO,
        };
        let spread: Vec<String> = self
            .per_member
            .iter()
            .map(|c| c.load(Relaxed).to_string())
            .collect();
        WorkerResult {
            messages: self.expected.saturating_sub(1),
            process_messages: Some(self.expected),
            elapsed_s: elapsed.as_secs_f64(),
            allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
            note: Some(format!(
                "{QUEUE_MEMBERS} queue members (one connection each) got {}",
                spread.join(" / ")
            )),
            ..WorkerResult::default()
        }
    }
}

/// A latency histogram in nanoseconds, allocated up front so recording
/// never allocates inside a measured section.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("valid histogram bounds")
}

/// Warm-up messages before a measured section: connections, buffers and
/// caches settle so the section shows the steady state.
pub fn warmup_count(msgs: u64) -> u64 {
    (msgs / 10).clamp(1, 1000)
}

/// Times a measured section and counts its allocations.
pub struct Section {
    started: Instant,
    allocs: AllocSnapshot,
}

impl Section {
    /// Starts measuring now.
    pub fn start() -> Self {
        Section {
            allocs: AllocSnapshot::now(),
            started: Instant::now(),
        }
    }

    /// Ends the section: a result for `messages` with `latency`.
    pub fn finish(self, messages: u64, latency: Option<&Histogram<u64>>) -> WorkerResult {
        self.finish_at(Instant::now(), messages, latency)
    }

    /// Like [`Section::finish`] with an explicit end (e.g. the last message).
    pub fn finish_at(
        self,
        end: Instant,
        messages: u64,
        latency: Option<&Histogram<u64>>,
    ) -> WorkerResult {
        let allocations = AllocSnapshot::now().allocations_since(&self.allocs);
        WorkerResult {
            messages,
            process_messages: None,
            elapsed_s: end.saturating_duration_since(self.started).as_secs_f64(),
            latency: latency.and_then(Latency::from_nanos),
            allocations: Some(allocations),
            transport: None,
            note: None,
            server_in_msgs: None,
        }
    }
}

/// Runs the worker and prints its result; the exit code says whether it worked.
pub fn run(args: WorkerArgs) -> i32 {
    let amqp = args.scenario.starts_with("amqp-");
    let outcome = match args.client.as_str() {
        "raw" if amqp => crate::amqp_workers::raw(&args),
        "courier" if amqp => crate::amqp_workers::courier(&args),
        "lapin" => crate::amqp_workers::lapin(&args),
        "raw" => run_raw(&args),
        "async-nats" | "async-nats-ct" if args.scenario.starts_with("js-") => {
            crate::async_nats_js::run(&args)
        }
        "async-nats" | "async-nats-ct" => crate::async_nats_client::run(&args),
        "courier" => crate::courier_client::run(&args),
        other => Err(format!("unknown client {other:?}")),
    };
    match outcome {
        Ok(result) => {
            println!(
                "{}",
                serde_json::to_string(&result).expect("result serialises")
            );
            0
        }
        Err(e) => {
            eprintln!("worker {} {}: {e}", args.client, args.scenario);
            1
        }
    }
}

fn timed(messages: u64, elapsed: Duration, allocs: AllocSnapshot) -> WorkerResult {
    WorkerResult {
        messages,
        elapsed_s: elapsed.as_secs_f64(),
        allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
        ..WorkerResult::default()
    }
}

fn run_raw(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let allocs = AllocSnapshot::now();
    match args.scenario.as_str() {
        "feed" => {
            let took = rawproto::nats_feed(&args.url, &args.subject, args.size, args.msgs)?;
            Ok(timed(args.msgs, took, allocs))
        }
        "respond" => {
            rawproto::nats_respond(&args.url, &args.subject)?;
            Ok(WorkerResult::default())
        }
        // The broker-bound publish ceiling: what the feeder does, timed.
        "ceiling-publish" => {
            let took = rawproto::nats_feed(&args.url, &args.subject, args.size, args.msgs)?;
            Ok(timed(args.msgs, took, allocs))
        }
        "ceiling-subscribe" => {
            let took = rawproto::ceiling_subscribe(&args.url, &args.subject, args.size, args.msgs)?;
            Ok(timed(args.msgs, took, allocs))
        }
        "nsq-prefill" => {
            let started = Instant::now();
            rawproto::nsq_prefill(
                &args.url,
                &args.subject,
                args.size,
                args.msgs,
                args.batch.max(1),
            )?;
            Ok(timed(args.msgs, started.elapsed(), allocs))
        }
        other => Err(format!("the raw client has no scenario {other:?}")),
    }
}
