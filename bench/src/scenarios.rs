//! The orchestrator: starts the servers, runs every client through every
//! scenario as a separate measured process, and collects the report.

mod amqp;
mod counts;
mod jetstream;
mod js_admin;
mod nsq;
mod plan;
mod tls;
mod tools;

pub use plan::Plan;

use crate::process::{Launcher, Outcome, Running};
use crate::report::{Measurement, Report, WorkerResult, COURIER};
use crate::servers::{find_bin, NatsServer, Nsqd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tools::{add_process_counters, natscli_aggregate_rate, natscli_measurement, tool_failure};

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
        self.nats_tls_scenarios();
        self.jetstream_scenarios();
        // A quick run reaches AMQP only when asked (`--only amqp`): starting
        // RabbitMQ alone takes 10-30 s, too long for the suite's smoke run.
        let amqp_asked = !self.plan.quick || !self.plan.only.is_empty();
        if self.any_wanted("amqp") && amqp_asked {
            match crate::rabbitmq::RabbitNode::start(self.pinned.then_some(0)) {
                Ok(node) => self.amqp_scenarios(&node),
                Err(e) => self
                    .report
                    .notes
                    .push(format!("AMQP scenarios skipped: {e}")),
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
}

/// Worker `--client` value for a series name.
fn worker_name(client: &str) -> &str {
    match client {
        ASYNC_NATS => "async-nats",
        ASYNC_NATS_CT => "async-nats-ct",
        amqp::LAPIN => "lapin",
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
