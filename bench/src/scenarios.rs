//! The orchestrator: starts the servers, runs every client through every
//! scenario as a separate measured process, and collects the report.

use crate::process::{Launcher, Outcome, Running};
use crate::report::{Latency, Measurement, Report, WorkerResult, COURIER};
use crate::servers::{find_bin, NatsServer, Nsqd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Series names of the reference clients.
pub const NATS_CLI: &str = "nats bench";
/// async-nats harness series (multi-thread tokio runtime).
pub const ASYNC_NATS: &str = "async-nats";
/// async-nats harness series on a current-thread tokio runtime.
pub const ASYNC_NATS_CT: &str = "async-nats current-thread";
/// courier forced onto its epoll fallback (the `courier` series runs io_uring when the kernel allows).
pub const COURIER_EPOLL: &str = "courier epoll";
/// courier on io_uring with registered (fixed) buffers.
pub const COURIER_FIXED: &str = "courier uring-fixed";
/// courier on io_uring with zero-copy send for large writes.
pub const COURIER_ZC: &str = "courier uring-zc";
/// courier's NSQ core session under a bench-local blocking driver (no runtime).
pub const COURIER_CORE: &str = "courier-core blocking";
/// Broker-bound ceiling: pre-encoded frames written to the same server and
/// ended with a round trip (or the same feed read unparsed).
pub const BROKER_CEILING: &str = "broker ceiling";
/// nsq module's bench_writer series.
pub const BENCH_WRITER: &str = "bench_writer";
/// nsq module's bench_reader series.
pub const BENCH_READER: &str = "bench_reader";

/// How big the run is.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `quick` (a few thousand messages, for tests) or `full`.
    pub quick: bool,
    /// Payload sizes for the NATS publish sweep.
    pub publish_sizes: Vec<usize>,
    /// Payload sizes for every other scenario.
    pub sizes: Vec<usize>,
    /// Requests per request/reply run.
    pub requests: u64,
    /// How long bench_writer / bench_reader run.
    pub nsq_runfor: Duration,
    /// Only scenarios whose `protocol scenario` contains one of these.
    pub only: Vec<String>,
    /// Per-process timeout.
    pub timeout: Duration,
    /// courier transport to request (`auto`, `uring`, `epoll`).
    pub transport: String,
    /// Also run courier's NATS scenarios on the epoll fallback and the
    /// io_uring variants (registered buffers, zero-copy send), each its own series.
    pub courier_epoll: bool,
}

impl Plan {
    /// The quick plan (a few thousand messages per run).
    pub fn quick() -> Self {
        Plan {
            quick: true,
            publish_sizes: vec![16, 1024],
            sizes: vec![16, 1024],
            requests: 500,
            nsq_runfor: Duration::from_millis(500),
            only: Vec::new(),
            timeout: Duration::from_secs(30),
            transport: "auto".into(),
            courier_epoll: false,
        }
    }

    /// The full plan (what BENCHMARKS.md shows).
    pub fn full() -> Self {
        Plan {
            quick: false,
            publish_sizes: vec![16, 128, 1024, 4096, 16384, 65536, 1 << 20],
            sizes: vec![16, 1024],
            requests: 20_000,
            nsq_runfor: Duration::from_secs(2),
            only: Vec::new(),
            timeout: Duration::from_secs(60),
            transport: "auto".into(),
            courier_epoll: true,
        }
    }

    /// Messages per throughput run at `size`: about 256 MiB of payload,
    /// between 256 and 1M messages (5k in quick mode).
    pub fn messages(&self, size: usize) -> u64 {
        if self.quick {
            5_000
        } else {
            ((256u64 << 20) / size.max(1) as u64).clamp(256, 1_000_000)
        }
    }

    fn wants(&self, protocol: &str, scenario: &str) -> bool {
        let name = format!("{protocol} {scenario}");
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

/// Runs the plan and returns the report.
pub struct Bench {
    plan: Plan,
    /// Starts the client under test (on CPU 1 when pinned).
    launcher: Launcher,
    /// Starts counterparts: feeder, responder, prefiller (on CPU 0, with the
    /// broker, when pinned).
    counterparts: Launcher,
    self_exe: PathBuf,
    report: Report,
    counter: u32,
    /// Round number (0-based): the order of the series in each group is
    /// rotated by it (A B C, B C A, ...).
    round: usize,
    /// Broker on CPU 0 and the client under test on CPU 1 (`taskset`).
    pinned: bool,
}

impl Bench {
    /// Prepares one pass: round `round` (0-based), pinned or unpinned.
    pub fn new(plan: Plan, launcher: Launcher, round: usize, pinned: bool) -> Result<Self, String> {
        let self_exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let report = Report {
            mode: if plan.quick {
                "quick".into()
            } else {
                "full".into()
            },
            counters: launcher.syscall_source().into(),
            ..Report::default()
        };
        Ok(Bench {
            plan,
            counterparts: launcher.on_cpu(pinned.then_some(0)),
            launcher: launcher.on_cpu(pinned.then_some(1)),
            self_exe,
            report,
            counter: 0,
            round,
            pinned,
        })
    }

    /// Runs everything; failures of one client are recorded, not fatal.
    pub fn run(mut self) -> Report {
        self.report.machine = crate::machine::describe();
        self.report.state_sizes = crate::courier_client::state_sizes();
        self.collect_versions();
        if self.any_wanted("nats") {
            match NatsServer::start(self.pinned.then_some(0)) {
                Ok(server) => self.nats_scenarios(&server),
                Err(e) => self
                    .report
                    .notes
                    .push(format!("NATS scenarios skipped: {e}")),
            }
        }
        if self.any_wanted("nsq") {
            match Nsqd::start(self.pinned.then_some(0)) {
                Ok(nsqd) => self.nsq_scenarios(&nsqd),
                Err(e) => self
                    .report
                    .notes
                    .push(format!("NSQ scenarios skipped: {e}")),
            }
        }
        self.report
    }

    /// The in-process NATS clients of this pass that can run worker
    /// `scenario` (courier's transport variants only unpinned).
    fn nats_clients(&mut self, scenario: &str) -> Vec<&'static str> {
        let mut clients = vec![ASYNC_NATS, ASYNC_NATS_CT, COURIER];
        if !self.pinned && self.plan.courier_epoll && self.plan.transport == "auto" {
            clients.extend([COURIER_EPOLL, COURIER_FIXED, COURIER_ZC]);
        }
        clients.retain(|c| self.available(c, scenario));
        clients
    }

    /// `nats` or `nats pinned` (the pinned pass is its own table).
    fn proto(&self, base: &str) -> String {
        if self.pinned {
            format!("{base} pinned")
        } else {
            base.to_string()
        }
    }

    /// Runs one (scenario, size) group: every series in `series`, in an
    /// order rotated by the round number, each measured by `run`. With a
    /// NATS `server`, its `/varz` counters are read before and after each
    /// series and must have grown by exactly what the run claims
    /// (`in_expected`, else the measurement's own claim; `out_expected`).
    fn run_group<F>(
        &mut self,
        server: Option<&NatsServer>,
        mut series: Vec<&'static str>,
        in_expected: Option<u64>,
        out_expected: Option<u64>,
        mut run: F,
    ) where
        F: FnMut(&mut Self, &'static str) -> Measurement,
    {
        if series.is_empty() {
            return;
        }
        let turn = self.round % series.len();
        series.rotate_left(turn);
        for client in series {
            let before = server.map(NatsServer::counters);
            let mut m = run(self, client);
            if let (Some(server), Some(before)) = (server, before) {
                let after = server.counters();
                self.check_nats_counts(&mut m, before, after, in_expected, out_expected);
            }
            self.push(m);
        }
    }

    /// Fails `m` loudly (and counts the mismatch for the exit code) when
    /// nats-server's counters did not grow by what the run claims.
    fn check_nats_counts(
        &mut self,
        m: &mut Measurement,
        before: Result<(u64, u64), String>,
        after: Result<(u64, u64), String>,
        in_expected: Option<u64>,
        out_expected: Option<u64>,
    ) {
        if m.error.is_some() {
            return;
        }
        let (before, after) = match (before, after) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => {
                m.error = Some(format!("server counters unreadable: {e}"));
                return;
            }
        };
        let (grew_in, grew_out) = (after.0 - before.0, after.1 - before.1);
        let mut problems = Vec::new();
        if let Some(claim) = in_expected.or(m.claimed_in_msgs) {
            if grew_in != claim {
                problems.push(format!(
                    "nats-server in_msgs grew by {grew_in}, the run claims {claim} published"
                ));
            }
        }
        if let Some(claim) = out_expected {
            if grew_out != claim {
                problems.push(format!(
                    "nats-server out_msgs grew by {grew_out}, the run claims {claim} delivered"
                ));
            }
        }
        if problems.is_empty() {
            m.server_counts = Some(format!("/varz in_msgs +{grew_in}, out_msgs +{grew_out}"));
        } else {
            m.error = Some(format!(
                "COUNT MISMATCH: {}: messages lost or miscounted",
                problems.join("; ")
            ));
            self.report.count_mismatches += 1;
        }
    }

    fn any_wanted(&self, protocol: &str) -> bool {
        self.plan.only.is_empty()
            || self.plan.only.iter().any(|o| {
                o.starts_with(protocol) || protocol.starts_with(o.split(' ').next().unwrap_or(""))
            })
    }

    fn collect_versions(&mut self) {
        let mut versions = Vec::new();
        if let Some(bin) = find_bin("nats-server") {
            versions.push((
                "nats-server".into(),
                crate::servers::tool_version(&bin, "--version"),
            ));
        }
        if let Some(bin) = find_bin("nats") {
            versions.push((
                "natscli (nats bench)".into(),
                crate::servers::tool_version(&bin, "--version"),
            ));
        }
        if let Some(bin) = find_bin("nsqd") {
            versions.push((
                "nsqd".into(),
                crate::servers::tool_version(&bin, "--version"),
            ));
        }
        versions.push(("async-nats crate".into(), crate::ASYNC_NATS_VERSION.into()));
        self.report.versions = versions;
    }

    fn unique(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}_{}", std::process::id(), self.counter)
    }

    fn log(&self, what: &str) {
        eprintln!("courier-bench: {what}");
    }

    fn push(&mut self, mut m: Measurement) {
        if m.error.is_none() && m.messages == 0 {
            m.error = Some("moved no messages in its run (server or client stalled)".into());
        }
        match &m.error {
            Some(e) => self.log(&format!(
                "  {} {} {} B {}: FAILED {e}",
                m.protocol, m.scenario, m.payload_bytes, m.client
            )),
            None => self.log(&format!(
                "  {} {} {} B {}: {:.0} msgs/s",
                m.protocol, m.scenario, m.payload_bytes, m.client, m.msgs_per_s
            )),
        }
        self.report.results.push(m);
    }

    // ---- process plumbing -------------------------------------------------

    fn worker_args(
        &self,
        client: &str,
        scenario: &str,
        url: &str,
        subject: &str,
        size: usize,
        msgs: u64,
    ) -> Vec<String> {
        vec![
            "worker".into(),
            "--client".into(),
            worker_name(client).into(),
            "--scenario".into(),
            scenario.into(),
            "--url".into(),
            url.into(),
            "--subject".into(),
            subject.into(),
            "--size".into(),
            size.to_string(),
            "--msgs".into(),
            msgs.to_string(),
            "--timeout-s".into(),
            self.plan.timeout.as_secs().to_string(),
            "--transport".into(),
            if client == COURIER_EPOLL {
                "epoll".into()
            } else if client == COURIER_FIXED {
                "uring-fixed".into()
            } else if client == COURIER_ZC {
                "uring-zc".into()
            } else {
                self.plan.transport.clone()
            },
        ]
    }

    fn spawn_worker(&self, args: Vec<String>) -> Result<Running, String> {
        self.launcher.spawn(
            &self.self_exe,
            &args,
            &[],
            self.plan.timeout + Duration::from_secs(5),
        )
    }

    /// A raw counterpart (feeder, responder, prefiller): beside the broker
    /// when pinned, so the client under test has its CPU to itself.
    fn spawn_counterpart(&self, args: Vec<String>) -> Result<Running, String> {
        self.counterparts.spawn(
            &self.self_exe,
            &args,
            &[],
            self.plan.timeout + Duration::from_secs(5),
        )
    }

    fn spawn_tool(&self, bin: &Path, args: &[String]) -> Result<Running, String> {
        self.launcher.spawn(bin, args, &[], self.plan.timeout)
    }

    /// bench_writer / bench_reader open one connection per GOMAXPROCS;
    /// pinning it to 1 gives them one connection, like courier's run.
    fn spawn_go_nsq_tool(&self, bin: &Path, args: &[String]) -> Result<Running, String> {
        self.launcher
            .spawn(bin, args, &[("GOMAXPROCS", "1")], self.plan.timeout)
    }

    /// Turns a finished worker into a measurement.
    fn measure_worker(
        &self,
        protocol: &str,
        scenario: &str,
        client: &str,
        size: usize,
        outcome: Outcome,
    ) -> Measurement {
        let protocol = &self.proto(protocol);
        match parse_worker(&outcome) {
            Ok(w) => {
                let mut m = Measurement::from_counts(
                    protocol,
                    scenario,
                    client,
                    size,
                    w.messages,
                    w.elapsed_s,
                );
                m.latency_us = w.latency;
                let per = w.process_messages.unwrap_or(w.messages).max(1) as f64;
                m.allocs_per_msg = w.allocations.map(|a| a as f64 / w.messages.max(1) as f64);
                add_process_counters(&mut m, &[&outcome], per);
                m.transport = w.transport;
                m.note = w.note;
                m.claimed_in_msgs = Some(
                    w.server_in_msgs
                        .or(w.process_messages)
                        .unwrap_or(w.messages),
                );
                m
            }
            Err(e) => Measurement::failed(protocol, scenario, client, size, e),
        }
    }

    /// Whether `client` can run worker `scenario` in this build; notes the
    /// gap once when it cannot (courier scenarios whose API has not landed).
    fn available(&mut self, client: &str, scenario: &str) -> bool {
        if ![
            COURIER,
            COURIER_EPOLL,
            COURIER_FIXED,
            COURIER_ZC,
            COURIER_CORE,
        ]
        .contains(&client)
            || crate::courier_client::supports(scenario)
        {
            return true;
        }
        let note = format!(
            "courier: `{scenario}` not measured: the courier API it needs is not in this build"
        );
        if !self.report.notes.contains(&note) {
            self.log(&note);
            self.report.notes.push(note);
        }
        false
    }

    /// Runs a worker to completion and measures it.
    fn worker(
        &self,
        protocol: &str,
        scenario: &str,
        client: &str,
        size: usize,
        args: Vec<String>,
    ) -> Measurement {
        match self.spawn_worker(args) {
            Ok(running) => self.measure_worker(protocol, scenario, client, size, running.wait()),
            Err(e) => Measurement::failed(&self.proto(protocol), scenario, client, size, e),
        }
    }

    // ---- NATS --------------------------------------------------------------

    fn nats_scenarios(&mut self, server: &NatsServer) {
        let url = server.url();
        let natscli = find_bin("nats");
        if natscli.is_none() {
            self.report.notes.push(
                "natscli (`nats`) not found: run scripts/setup.sh; its series is missing".into(),
            );
        }
        let with_cli = |series: &mut Vec<&'static str>| {
            if natscli.is_some() {
                series.insert(0, NATS_CLI);
            }
        };
        if self.plan.wants("nats", "publish") {
            self.log("nats publish");
            let sizes = if self.pinned {
                self.plan.sizes.clone()
            } else {
                self.plan.publish_sizes.clone()
            };
            for size in sizes {
                let n = self.plan.messages(size);
                let mut series = self.nats_clients("publish");
                with_cli(&mut series);
                series.insert(0, BROKER_CEILING);
                self.run_group(Some(server), series, None, None, |bench, client| {
                    let subject = bench.unique("pub");
                    match client {
                        NATS_CLI => {
                            let cli = natscli.as_deref().expect("natscli present");
                            let mut m =
                                bench.natscli_run(cli, &url, "publish", size, n, &["pub", &subject]);
                            m.claimed_in_msgs = Some(n);
                            m
                        }
                        BROKER_CEILING => {
                            let args = bench.worker_args(
                                "raw",
                                "ceiling-publish",
                                &url,
                                &subject,
                                size,
                                n,
                            );
                            let mut m = bench.worker("nats", "publish", BROKER_CEILING, size, args);
                            m.note = Some("ceiling: the same PUB frames pre-encoded, written in 64 KiB batches to the same nats-server, ended with a PING/PONG round trip".into());
                            m
                        }
                        client => {
                            let args =
                                bench.worker_args(client, "publish", &url, &subject, size, n);
                            bench.worker("nats", "publish", client, size, args)
                        }
                    }
                });
            }
        }
        if !self.pinned && self.plan.wants("nats", "publish x4") {
            let conns = crate::worker::PUBLISH_CONNECTIONS;
            self.log(&format!(
                "nats publish x{conns} ({conns} connections in one process)"
            ));
            let scenario = format!("publish x{conns}");
            for size in self.plan.sizes.clone() {
                let n = self.plan.messages(size);
                let mut series = self.nats_clients("publish-conns");
                with_cli(&mut series);
                self.run_group(Some(server), series, None, None, |bench, client| {
                    let subject = bench.unique("pubc");
                    if client != NATS_CLI {
                        let args =
                            bench.worker_args(client, "publish-conns", &url, &subject, size, n);
                        return bench.worker("nats", &scenario, client, size, args);
                    }
                    let cli = natscli.as_deref().expect("natscli present");
                    let clients = conns.to_string();
                    let mut m = match bench.natscli_spawn(
                        cli,
                        &url,
                        size,
                        n,
                        &["pub", &subject, "--clients", &clients],
                    ) {
                        Ok((running, csv)) => {
                            let outcome = running.wait();
                            let proto = bench.proto("nats");
                            let mut m =
                                natscli_measurement(&proto, &scenario, size, n, &[&outcome], &csv);
                            // The aggregate line covers all clients start to end.
                            if let Some(rate) = natscli_aggregate_rate(&outcome.stdout) {
                                m.msgs_per_s = rate;
                                m.mb_per_s = rate * size as f64 / 1e6;
                            }
                            m
                        }
                        Err(e) => {
                            Measurement::failed(&bench.proto("nats"), &scenario, NATS_CLI, size, e)
                        }
                    };
                    m.latency_us = None;
                    m.claimed_in_msgs = Some(n);
                    m
                });
            }
        }
        if self.plan.wants("nats", "subscribe") {
            self.log("nats subscribe");
            for size in self.plan.sizes.clone() {
                let n = self.plan.messages(size);
                let mut series = self.nats_clients("subscribe");
                with_cli(&mut series);
                series.insert(0, BROKER_CEILING);
                self.run_group(Some(server), series, Some(n), Some(n), |bench, client| {
                    let proto = bench.proto("nats");
                    let fed = bench.fed_subscriber(server, size, n, 1, |bench, subject| {
                        match client {
                            NATS_CLI => {
                                let cli = natscli.as_deref().expect("natscli present");
                                bench.natscli_spawn(cli, &url, size, n, &["sub", subject])
                            }
                            BROKER_CEILING => {
                                let args = bench.worker_args(
                                    "raw",
                                    "ceiling-subscribe",
                                    &url,
                                    subject,
                                    size,
                                    n,
                                );
                                bench.spawn_worker(args).map(|r| (r, None))
                            }
                            client => {
                                let args =
                                    bench.worker_args(client, "subscribe", &url, subject, size, n);
                                bench.spawn_worker(args).map(|r| (r, None))
                            }
                        }
                    });
                    match fed {
                        Err(e) => Measurement::failed(&proto, "subscribe", client, size, e),
                        Ok((outcome, csv)) if client == NATS_CLI => {
                            natscli_measurement(&proto, "subscribe", size, n, &[&outcome], &csv)
                        }
                        Ok((outcome, _)) => {
                            let mut m = bench.measure_worker("nats", "subscribe", client, size, outcome);
                            if client == BROKER_CEILING {
                                m.note = Some("ceiling: subscribed on the same nats-server, reads the MSG bytes of the same feed without parsing them".into());
                            }
                            m
                        }
                    }
                });
            }
        }
        if self.plan.wants("nats", "pubsub") {
            self.log("nats pubsub (publisher and subscriber in the same run)");
            for size in self.plan.sizes.clone() {
                let n = self.plan.messages(size);
                let mut series = self.nats_clients("pubsub");
                with_cli(&mut series);
                self.run_group(Some(server), series, None, Some(n), |bench, client| {
                    if client == NATS_CLI {
                        let cli = natscli.as_deref().expect("natscli present");
                        let mut m = bench.natscli_pubsub(server, cli, size, n);
                        m.claimed_in_msgs = Some(n);
                        return m;
                    }
                    let subject = bench.unique("pubsub");
                    let args = bench.worker_args(client, "pubsub", &url, &subject, size, n);
                    bench.worker("nats", "pubsub", client, size, args)
                });
            }
        }
        if !self.pinned && self.plan.wants("nats", "queue") {
            self.log(&format!(
                "nats queue ({} queue-group members in one process, one shared raw feeder)",
                crate::worker::QUEUE_MEMBERS
            ));
            for size in self.plan.sizes.clone() {
                let n = self.plan.messages(size);
                let series = self.nats_clients("queue");
                self.run_group(Some(server), series, Some(n), Some(n), |bench, client| {
                    let fed = bench.fed_subscriber(
                        server,
                        size,
                        n,
                        crate::worker::QUEUE_MEMBERS,
                        |bench, subject| {
                            let args = bench.worker_args(client, "queue", &url, subject, size, n);
                            bench.spawn_worker(args).map(|r| (r, None))
                        },
                    );
                    match fed {
                        Err(e) => {
                            Measurement::failed(&bench.proto("nats"), "queue", client, size, e)
                        }
                        Ok((outcome, _)) => {
                            bench.measure_worker("nats", "queue", client, size, outcome)
                        }
                    }
                });
            }
            let note = "nats queue: no `nats bench` series (natscli 0.5 `bench sub` has no queue-group option)".to_string();
            if !self.report.notes.contains(&note) {
                self.report.notes.push(note);
            }
        }
        if self.plan.wants("nats", "request") {
            self.log("nats request/reply (one shared raw responder)");
            for size in self.plan.sizes.clone() {
                let n = self.plan.requests;
                let subject = self.unique("svc");
                let responder = match self
                    .spawn_counterpart(self.worker_args("raw", "respond", &url, &subject, size, 0))
                {
                    Ok(r) => r,
                    Err(e) => {
                        self.report
                            .notes
                            .push(format!("request/reply skipped: responder: {e}"));
                        continue;
                    }
                };
                if let Err(e) =
                    server.wait_for_subscription(&subject, 1, Duration::from_secs(10), || {
                        responder.has_exited()
                    })
                {
                    self.report
                        .notes
                        .push(format!("request/reply skipped: responder: {e}"));
                    continue;
                }
                let mut series = self.nats_clients("request");
                with_cli(&mut series);
                // Requests are judged by latency; the server's counters
                // include the responder's replies, so no count check here.
                self.run_group(None, series, None, None, |bench, client| {
                    if client == NATS_CLI {
                        let cli = natscli.as_deref().expect("natscli present");
                        return bench.natscli_run(
                            cli,
                            &url,
                            "request",
                            size,
                            n,
                            &["service", "request", &subject],
                        );
                    }
                    let args = bench.worker_args(client, "request", &url, &subject, size, n);
                    bench.worker("nats", "request", client, size, args)
                });
                responder.stop();
            }
        }
    }

    /// Starts a subscriber (via `start`), waits until the server holds its
    /// subscription, feeds `n` messages with the raw feeder, and waits for
    /// the subscriber. Returns its outcome and optional CSV path.
    fn fed_subscriber<F>(
        &mut self,
        server: &NatsServer,
        size: usize,
        n: u64,
        subscriptions: usize,
        start: F,
    ) -> Result<(Outcome, Option<tempfile::NamedTempFile>), String>
    where
        F: FnOnce(&Self, &str) -> Result<(Running, Option<tempfile::NamedTempFile>), String>,
    {
        let subject = self.unique("sub");
        let (subscriber, csv) = start(self, &subject)?;
        if let Err(e) =
            server.wait_for_subscription(&subject, subscriptions, Duration::from_secs(20), || {
                subscriber.has_exited()
            })
        {
            let outcome = subscriber.wait();
            return Err(format!(
                "{e} ({}: {})",
                outcome.status,
                outcome.stderr.trim()
            ));
        }
        let feed = self.worker_args("raw", "feed", &server.url(), &subject, size, n);
        let feeder = self.spawn_counterpart(feed)?.wait();
        if !feeder.success {
            return Err(format!(
                "feeder failed ({}): {}",
                feeder.status,
                feeder.stderr.trim()
            ));
        }
        Ok((subscriber.wait(), csv))
    }

    fn natscli_spawn(
        &self,
        cli: &Path,
        url: &str,
        size: usize,
        n: u64,
        sub_args: &[&str],
    ) -> Result<(Running, Option<tempfile::NamedTempFile>), String> {
        let csv = tempfile::Builder::new()
            .suffix(".csv")
            .tempfile()
            .map_err(|e| e.to_string())?;
        let mut args: Vec<String> = vec!["-s".into(), url.into(), "bench".into()];
        args.extend(sub_args.iter().map(|s| s.to_string()));
        args.extend([
            "--msgs".into(),
            n.to_string(),
            "--size".into(),
            size.to_string(),
            "--no-progress".into(),
            "--csv".into(),
            csv.path().display().to_string(),
        ]);
        Ok((self.spawn_tool(cli, &args)?, Some(csv)))
    }

    fn natscli_run(
        &self,
        cli: &Path,
        url: &str,
        scenario: &str,
        size: usize,
        n: u64,
        sub_args: &[&str],
    ) -> Measurement {
        match self.natscli_spawn(cli, url, size, n, sub_args) {
            Ok((running, csv)) => natscli_measurement(
                &self.proto("nats"),
                scenario,
                size,
                n,
                &[&running.wait()],
                &csv,
            ),
            Err(e) => Measurement::failed(&self.proto("nats"), scenario, NATS_CLI, size, e),
        }
    }

    fn natscli_pubsub(
        &mut self,
        server: &NatsServer,
        cli: &Path,
        size: usize,
        n: u64,
    ) -> Measurement {
        let subject = self.unique("pubsub");
        let url = server.url();
        let run = || -> Result<Measurement, String> {
            let (sub, sub_csv) = self.natscli_spawn(cli, &url, size, n, &["sub", &subject])?;
            server
                .wait_for_subscription(&subject, 1, Duration::from_secs(20), || sub.has_exited())?;
            let (publisher, _) = self.natscli_spawn(cli, &url, size, n, &["pub", &subject])?;
            let pub_outcome = publisher.wait();
            let sub_outcome = sub.wait();
            let mut m = natscli_measurement(
                &self.proto("nats"),
                "pubsub",
                size,
                n,
                &[&sub_outcome, &pub_outcome],
                &sub_csv,
            );
            if m.error.is_none() {
                m.note = Some("two processes: `nats bench sub` and `nats bench pub`; rate seen by the subscriber; CPU and syscalls of both".into());
            }
            Ok(m)
        };
        run().unwrap_or_else(|e| {
            Measurement::failed(&self.proto("nats"), "pubsub", NATS_CLI, size, e)
        })
    }

    // ---- NSQ ---------------------------------------------------------------

    fn nsq_scenarios(&mut self, nsqd: &Nsqd) {
        let writer = find_bin("bench_writer");
        let reader = find_bin("bench_reader");
        if writer.is_none() || reader.is_none() {
            self.report
                .notes
                .push("bench_writer / bench_reader not found: run scripts/setup.sh; their series are missing".into());
        }
        // (scenario, batch, compression, clients besides the reference)
        let publish_runs: [(&str, usize, &str, &[&'static str]); 4] = [
            ("mpub", 200, "none", &[COURIER, COURIER_CORE]),
            ("pub", 1, "none", &[COURIER, COURIER_CORE]),
            ("mpub snappy", 200, "snappy", &[COURIER]),
            ("mpub deflate", 200, "deflate", &[COURIER]),
        ];
        for (scenario, batch, compression, clients) in publish_runs {
            if !self.plan.wants("nsq", scenario) || (self.pinned && compression != "none") {
                continue;
            }
            self.log(&format!("nsq {scenario} (batch {batch})"));
            for size in self.plan.sizes.clone() {
                let n = match (batch, self.plan.quick) {
                    (1, true) => 2_000,
                    (1, false) => 20_000,
                    _ => self.plan.messages(size).min(500_000),
                };
                let mut series: Vec<&'static str> = Vec::new();
                if compression == "none" {
                    if writer.is_some() {
                        series.push(BENCH_WRITER);
                    }
                    series.push(BROKER_CEILING);
                }
                for &client in clients {
                    let worker_scenario = if client == COURIER_CORE {
                        "nsq-core-publish"
                    } else {
                        "nsq-publish"
                    };
                    if self.available(client, worker_scenario) {
                        series.push(client);
                    }
                }
                self.run_group(None, series, None, None, |bench, client| {
                    if client == BENCH_WRITER {
                        let bin = writer.as_deref().expect("bench_writer present");
                        return bench.bench_writer(nsqd, bin, scenario, size, batch);
                    }
                    let topic = bench.unique("pub");
                    let mut args = if client == BROKER_CEILING {
                        bench.worker_args("raw", "nsq-prefill", &nsqd.tcp_addr(), &topic, size, n)
                    } else {
                        let worker_scenario = if client == COURIER_CORE {
                            "nsq-core-publish"
                        } else {
                            "nsq-publish"
                        };
                        let mut args = bench.worker_args(
                            client,
                            worker_scenario,
                            &nsqd.tcp_addr(),
                            &topic,
                            size,
                            n,
                        );
                        args.extend(["--compression".into(), compression.into()]);
                        args
                    };
                    args.extend(["--batch".into(), batch.to_string()]);
                    let mut m = bench.worker("nsq", scenario, client, size, args);
                    if client == BROKER_CEILING {
                        m.note = Some(format!("ceiling: pre-encoded {} frames of {batch} to the same nsqd, each waiting for its OK", if batch == 1 { "PUB" } else { "MPUB" }));
                    }
                    bench.check_nsq_count(&mut m, nsqd, &topic);
                    m
                });
            }
        }
        let consume_runs: [(&str, &str, &[&'static str]); 3] = [
            ("consume", "none", &[COURIER, COURIER_CORE]),
            ("consume snappy", "snappy", &[COURIER]),
            ("consume deflate", "deflate", &[COURIER]),
        ];
        for (scenario, compression, clients) in consume_runs {
            if !self.plan.wants("nsq", scenario) || (self.pinned && compression != "none") {
                continue;
            }
            self.log(&format!(
                "nsq {scenario} (prefilled topic, max_in_flight 2500)"
            ));
            for size in self.plan.sizes.clone() {
                let prefill = if self.plan.quick {
                    5_000
                } else if size <= 64 {
                    1_000_000
                } else {
                    300_000
                };
                let mut series: Vec<&'static str> = Vec::new();
                if compression == "none" && reader.is_some() {
                    series.push(BENCH_READER);
                }
                for &client in clients {
                    let worker_scenario = if client == COURIER_CORE {
                        "nsq-core-consume"
                    } else {
                        "nsq-consume"
                    };
                    if self.available(client, worker_scenario) {
                        series.push(client);
                    }
                }
                self.run_group(None, series, None, None, |bench, client| {
                    let topic = bench.unique("consume");
                    if let Err(e) = bench.prefill(nsqd, &topic, size, prefill) {
                        return Measurement::failed(&bench.proto("nsq"), scenario, client, size, e);
                    }
                    if client == BENCH_READER {
                        let bin = reader.as_deref().expect("bench_reader present");
                        return bench.bench_reader(nsqd, bin, &topic, size, prefill);
                    }
                    let worker_scenario = if client == COURIER_CORE {
                        "nsq-core-consume"
                    } else {
                        "nsq-consume"
                    };
                    let mut args = bench.worker_args(
                        client,
                        worker_scenario,
                        &nsqd.tcp_addr(),
                        &topic,
                        size,
                        prefill,
                    );
                    args.extend([
                        "--max-in-flight".into(),
                        "2500".into(),
                        "--compression".into(),
                        compression.into(),
                    ]);
                    let started = Instant::now();
                    let running = match bench.spawn_worker(args) {
                        Ok(r) => r,
                        Err(e) => {
                            return Measurement::failed(
                                &bench.proto("nsq"),
                                scenario,
                                client,
                                size,
                                e,
                            )
                        }
                    };
                    let mark = bench.consume_mark(nsqd, &topic, prefill, started, &running);
                    let outcome = running.wait();
                    let mut m = bench.measure_worker("nsq", scenario, client, size, outcome);
                    if m.error.is_none() {
                        match mark {
                            Ok(elapsed) => {
                                let own = m.msgs_per_s;
                                let messages = crate::worker::nsq_consume_mark(prefill);
                                m.messages = messages;
                                m.elapsed_s = elapsed.as_secs_f64();
                                m.msgs_per_s = messages as f64 / m.elapsed_s;
                                m.mb_per_s = m.msgs_per_s * size as f64 / 1e6;
                                m.note = Some(format!(
                                    "{CONSUME_CLOCK}; its own first-to-last clock said {}; {}",
                                    crate::report::human_rate(own),
                                    m.note.take().unwrap_or_default()
                                ));
                            }
                            Err(e) => m.error = Some(e),
                        }
                    }
                    m
                });
            }
        }
    }

    /// Waits until nsqd's /stats shows 95% of the `prefill` messages of
    /// `topic`'s channel finished (neither queued nor in flight) and returns
    /// the time since `started` (just before the consumer was spawned).
    fn consume_mark(
        &self,
        nsqd: &Nsqd,
        topic: &str,
        prefill: u64,
        started: Instant,
        running: &Running,
    ) -> Result<Duration, String> {
        let left_at_mark = prefill - crate::worker::nsq_consume_mark(prefill);
        let deadline = started + self.plan.timeout;
        loop {
            if let Some(left) = nsqd.channel_unfinished(topic, "ch") {
                if left <= left_at_mark {
                    return Ok(started.elapsed());
                }
            }
            if running.has_exited() {
                // The worker may have finished between two polls.
                return match nsqd.channel_unfinished(topic, "ch") {
                    Some(left) if left <= left_at_mark => Ok(started.elapsed()),
                    left => Err(format!(
                        "the consumer exited with {left:?} of {prefill} messages unfinished"
                    )),
                };
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nsqd did not see 95% of {prefill} messages finished within {:?}",
                    self.plan.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Fails `m` loudly when nsqd counted a different number of messages
    /// into `topic` than the client claims it published.
    fn check_nsq_count(&mut self, m: &mut Measurement, nsqd: &Nsqd, topic: &str) {
        if m.error.is_some() {
            return;
        }
        let claimed = m.claimed_in_msgs.unwrap_or(m.messages);
        match nsqd.topic_message_count(topic) {
            Some(count) if count == claimed => {
                m.server_counts = Some(format!("nsqd message_count {count}"));
            }
            count => {
                m.error = Some(format!(
                    "COUNT MISMATCH: nsqd's message_count for the topic is {count:?}, the client claims {claimed} published"
                ));
                self.report.count_mismatches += 1;
            }
        }
    }

    fn prefill(&mut self, nsqd: &Nsqd, topic: &str, size: usize, count: u64) -> Result<(), String> {
        nsqd.create_channel(topic, "ch")?;
        let mut args = self.worker_args("raw", "nsq-prefill", &nsqd.tcp_addr(), topic, size, count);
        args.extend(["--batch".into(), "200".into()]);
        let outcome = self.spawn_counterpart(args)?.wait();
        if !outcome.success {
            return Err(format!(
                "prefill failed ({}): {}",
                outcome.status,
                outcome.stderr.trim()
            ));
        }
        Ok(())
    }

    fn bench_writer(
        &mut self,
        nsqd: &Nsqd,
        bin: &Path,
        scenario: &str,
        size: usize,
        batch: usize,
    ) -> Measurement {
        let proto = self.proto("nsq");
        let topic = self.unique("bw");
        let runfor = self.plan.nsq_runfor;
        let args = vec![
            format!("-nsqd-tcp-address={}", nsqd.tcp_addr()),
            format!("-topic={topic}"),
            format!("-size={size}"),
            format!("-batch-size={batch}"),
            format!("-runfor={}ms", runfor.as_millis()),
        ];
        let outcome = match self.spawn_go_nsq_tool(bin, &args) {
            Ok(r) => r.wait(),
            Err(e) => return Measurement::failed(&proto, scenario, BENCH_WRITER, size, e),
        };
        let Some((elapsed, _ops)) = parse_go_bench(&outcome) else {
            return Measurement::failed(
                &proto,
                scenario,
                BENCH_WRITER,
                size,
                tool_failure(&outcome),
            );
        };
        let messages = nsqd.topic_message_count(&topic).unwrap_or(0);
        let mut m =
            Measurement::from_counts(&proto, scenario, BENCH_WRITER, size, messages, elapsed);
        add_process_counters(&mut m, &[&outcome], messages.max(1) as f64);
        m.server_counts = Some(format!(
            "nsqd message_count {messages} (its rate's numerator)"
        ));
        m.note = Some(format!(
            "GOMAXPROCS=1: 1 connection like courier; MPUB batch {batch}, each waits for OK; runs {runfor:?}; count from nsqd stats"
        ));
        m
    }

    /// bench_reader on a topic prefilled with `prefill` messages, on the
    /// same clock as courier's consume runs (see [`CONSUME_CLOCK`]): it runs
    /// until nsqd shows 95% finished, then it is stopped.
    fn bench_reader(
        &mut self,
        nsqd: &Nsqd,
        bin: &Path,
        topic: &str,
        size: usize,
        prefill: u64,
    ) -> Measurement {
        let proto = self.proto("nsq");
        let args = vec![
            format!("-nsqd-tcp-address={}", nsqd.tcp_addr()),
            format!("-topic={topic}"),
            "-channel=ch".to_string(),
            format!("-size={size}"),
            "-rdy=2500".to_string(),
            format!("-runfor={}ms", self.plan.timeout.as_millis()),
        ];
        let started = Instant::now();
        let running = match self.spawn_go_nsq_tool(bin, &args) {
            Ok(r) => r,
            Err(e) => return Measurement::failed(&proto, "consume", BENCH_READER, size, e),
        };
        let mark = self.consume_mark(nsqd, topic, prefill, started, &running);
        let outcome = running.stop();
        let elapsed = match mark {
            Ok(elapsed) => elapsed,
            Err(e) => {
                return Measurement::failed(
                    &proto,
                    "consume",
                    BENCH_READER,
                    size,
                    format!("{e} ({})", tool_failure(&outcome)),
                )
            }
        };
        let messages = crate::worker::nsq_consume_mark(prefill);
        let mut m = Measurement::from_counts(
            &proto,
            "consume",
            BENCH_READER,
            size,
            messages,
            elapsed.as_secs_f64(),
        );
        add_process_counters(&mut m, &[&outcome], messages.max(1) as f64);
        m.note = Some(format!(
            "GOMAXPROCS=1: 1 connection × RDY 2500, like courier; {CONSUME_CLOCK}; stopped at the mark"
        ));
        m
    }
}

/// How NSQ consume runs are timed, the same for every client.
const CONSUME_CLOCK: &str = "clock: from starting the consumer process to nsqd's /stats showing 95% of the prefill finished (polled every 2 ms)";

/// Worker `--client` value for a series name.
fn worker_name(client: &str) -> &str {
    match client {
        ASYNC_NATS => "async-nats",
        ASYNC_NATS_CT => "async-nats-ct",
        COURIER | COURIER_EPOLL | COURIER_FIXED | COURIER_ZC | COURIER_CORE => "courier",
        _ => "raw",
    }
}

/// The JSON result on a worker's last stdout line.
fn parse_worker(outcome: &Outcome) -> Result<WorkerResult, String> {
    if !outcome.success {
        return Err(tool_failure(outcome));
    }
    let line = outcome
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("worker printed no result: {}", outcome.stderr.trim()))?;
    serde_json::from_str(line).map_err(|e| format!("worker result {line:?}: {e}"))
}

/// One line saying why a child failed.
fn tool_failure(outcome: &Outcome) -> String {
    // The last line of stderr says why; stdout's when stderr is empty.
    let detail = outcome
        .stderr
        .lines()
        .rev()
        .chain(outcome.stdout.lines().rev())
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    format!("{}: {detail}", outcome.status)
}

/// Adds syscalls and CPU per message over `per` messages, summed across
/// the processes that took part.
fn add_process_counters(m: &mut Measurement, outcomes: &[&Outcome], per: f64) {
    let syscalls: Option<u64> = outcomes.iter().map(|o| o.syscalls).sum();
    let cpu: Option<Duration> = outcomes.iter().map(|o| o.cpu).sum();
    m.syscalls_per_msg = syscalls.map(|s| s as f64 / per);
    m.cpu_us_per_msg = cpu.map(|c| c.as_secs_f64() * 1e6 / per);
}

/// natscli CSV row: MsgsPerSec, DurationSecs and (when present) latency.
fn natscli_measurement(
    protocol: &str,
    scenario: &str,
    size: usize,
    n: u64,
    outcomes: &[&Outcome],
    csv: &Option<tempfile::NamedTempFile>,
) -> Measurement {
    let fail = |e: String| Measurement::failed(protocol, scenario, NATS_CLI, size, e);
    if let Some(bad) = outcomes.iter().find(|o| !o.success) {
        return fail(tool_failure(bad));
    }
    let Some(csv) = csv else {
        return fail("no CSV".into());
    };
    let text = std::fs::read_to_string(csv.path()).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(header), Some(row)) = (lines.next(), lines.next()) else {
        return fail(format!(
            "natscli wrote no CSV row: {}",
            outcomes[0].stdout.trim()
        ));
    };
    let header: Vec<&str> = header.trim_start_matches('#').split(',').collect();
    let row: Vec<&str> = row.split(',').collect();
    let field = |name: &str| -> Option<f64> {
        let i = header.iter().position(|h| *h == name)?;
        row.get(i)?.trim().parse().ok()
    };
    let (Some(rate), Some(duration)) = (field("MsgsPerSec"), field("DurationSecs")) else {
        return fail(format!("unexpected natscli CSV header {header:?}"));
    };
    let mut m = Measurement::from_counts(protocol, scenario, NATS_CLI, size, n, duration);
    // natscli's own rate is what it reports; keep it rather than n/duration
    // (for requests its MsgCount counts both directions).
    m.msgs_per_s = rate;
    m.mb_per_s = rate * size as f64 / 1e6;
    if let (Some(p50), Some(p90), Some(p99), Some(p999), Some(max)) = (
        field("P50LatencyMicroSecs"),
        field("P90LatencyMicroSecs"),
        field("P99LatencyMicroSecs"),
        field("P99.9LatencyMicroSecs"),
        field("MaxLatencyMicroSecs"),
    ) {
        m.latency_us = Some(Latency {
            p50_us: p50,
            p90_us: p90,
            p99_us: p99,
            p99_9_us: p999,
            max_us: max,
        });
    }
    add_process_counters(&mut m, outcomes, n.max(1) as f64);
    m
}

/// natscli's "aggregated stats: 2,813,625 msgs/sec" line -> msgs/s.
fn natscli_aggregate_rate(stdout: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.contains("aggregated stats:"))?;
    let number = line
        .split("aggregated stats:")
        .nth(1)?
        .split("msgs/sec")
        .next()?;
    number.trim().replace(',', "").parse().ok()
}

/// bench_writer / bench_reader log line: "duration: 2.0009s - 4.612mb/s -
/// 302254.871ops/s - 3.308us/op" -> (seconds, ops/s).
fn parse_go_bench(outcome: &Outcome) -> Option<(f64, f64)> {
    let line = outcome
        .stderr
        .lines()
        .chain(outcome.stdout.lines())
        .find(|l| l.contains("duration:") && l.contains("ops/s"))?;
    let rest = line.split("duration:").nth(1)?;
    let mut parts = rest.split(" - ").map(str::trim);
    let duration = parse_go_duration(parts.next()?)?;
    let ops = parts
        .find(|p| p.ends_with("ops/s"))?
        .trim_end_matches("ops/s")
        .parse::<f64>()
        .ok()?;
    Some((duration, ops))
}

/// Go's Duration.String(): "2.000960307s", "300.5ms", "1m2.5s".
fn parse_go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_digit() || next == '.' {
                break;
            }
            unit.push(next);
            chars.next();
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natscli_csv_row_gives_rate_and_latency() {
        use std::io::Write as _;
        let mut csv = tempfile::NamedTempFile::new().unwrap();
        // Captured from `nats bench service request --csv` (natscli v0.5.0).
        write!(
            csv,
            "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,MinLatencyMicroSecs,AvgLatencyMicroSecs,MaxLatencyMicroSecs,P50LatencyMicroSecs,P90LatencyMicroSecs,P99LatencyMicroSecs,P99.9LatencyMicroSecs,StdDevLatencyMicroSecs\n\
             g06WkkuCCcZnZW6bAlmrAw,P0,10000,80000,5290,84652.070804,0.945045,57.565000,188.693144,1956.248000,182.060000,261.577000,361.235000,1255.601000,205.295653\n"
        )
        .unwrap();
        let outcome = Outcome {
            stdout: String::new(),
            stderr: String::new(),
            success: true,
            status: "exit code 0".into(),
            syscalls: Some(50_000),
            cpu: Some(Duration::from_millis(500)),
        };
        let m = natscli_measurement("nats", "request", 16, 5000, &[&outcome], &Some(csv));
        assert_eq!(m.error, None);
        assert_eq!(m.msgs_per_s, 5290.0);
        let l = m.latency_us.unwrap();
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (182.06, 361.235, 1956.248));
        assert_eq!(m.syscalls_per_msg, Some(10.0));
        assert_eq!(m.cpu_us_per_msg, Some(100.0));
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("2s"), Some(2.0));
        assert!((parse_go_duration("2.000960307s").unwrap() - 2.000960307).abs() < 1e-12);
        assert!((parse_go_duration("300.5ms").unwrap() - 0.3005).abs() < 1e-12);
        assert_eq!(parse_go_duration("1m2s"), Some(62.0));
    }

    #[test]
    fn go_bench_line_parses() {
        let outcome = Outcome {
            stdout: String::new(),
            stderr: "[bench_writer] 2026/11/25 12:53:06 duration: 2.000960307s - 4.612mb/s - 302254.871ops/s - 3.308us/op\n".into(),
            success: true,
            status: "exit code 0".into(),
            syscalls: None,
            cpu: None,
        };
        let (secs, ops) = parse_go_bench(&outcome).unwrap();
        assert!((secs - 2.000960307).abs() < 1e-9);
        assert!((ops - 302254.871).abs() < 1e-6);
    }
}
