//! JetStream (issue 11) in the same harness: publish with acks (window 1
//! and 256, 16 B and 1 KiB) beside `nats bench js pub sync` /
//! `nats bench js pub async --batch 256` and async-nats; pull consumers
//! (fetch batches, and the continuous consume) beside `nats bench js fetch`
//! / `nats bench js consume` and async-nats; courier's outbox (fsync per
//! 256-message batch, and never) beside the same publishes without it.
//!
//! One nats-server with JetStream per pass; every series gets a fresh
//! memory-storage stream created the same way by the orchestrator (consume
//! groups: one prefilled stream, a durable pull consumer per series, created
//! by the orchestrator: explicit ack, deliver all), the series
//! of a group interleaved in the rotated order of the round. Afterwards the
//! server's own view is checked: STREAM.INFO must hold exactly the messages
//! the client claims it published, CONSUMER.INFO must show every message
//! delivered and acked. A mismatch fails the series and the run.

use super::js_admin::JsAdmin;
use super::tools::natscli_measurement;
use super::{Bench, ASYNC_NATS, NATS_CLI};
use crate::report::{Measurement, COURIER};
use crate::servers::{find_bin, NatsServer};
use std::path::Path;

/// Protocol label of the JetStream table.
pub const NATS_JS: &str = "nats js";
/// courier's outbox with `FsyncPolicy::Never` (no ratio column).
pub const COURIER_OUTBOX_NO_FSYNC: &str = "courier outbox, fsync never";
/// The same publishes without the outbox (courier, window 256): the
/// `courier ÷ no outbox` ratio is the outbox's cost.
pub const NO_OUTBOX: &str = "no outbox (courier window 256)";

/// The same with a unique `Nats-Msg-Id` on each message, as the outbox
/// sends them: splits the server's de-duplication cost from the outbox's.
pub const NO_OUTBOX_MSG_ID: &str = "no outbox, msg ids (courier window 256)";

/// How a series' result is checked against the server.
enum Check<'a> {
    /// STREAM.INFO of this stream must hold the claimed messages.
    Stream(&'a str),
    /// CONSUMER.INFO: all `n` delivered and acked.
    Consumer(&'a str, &'a str, u64),
}

impl Bench {
    /// The JetStream table; a no-op unless `--only` selects it (or nothing).
    pub(super) fn jetstream_scenarios(&mut self) {
        if !self.plan.wants_family(NATS_JS) {
            return;
        }
        let store = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return self.report.notes.push(format!("JetStream skipped: {e}")),
        };
        let config = format!(
            "jetstream {{\n  store_dir: {:?}\n  max_memory_store: 4294967296\n}}\n",
            store.path()
        );
        let server = match NatsServer::start_with(self.pinned.then_some(0), &config) {
            Ok(s) => s,
            Err(e) => return self.report.notes.push(format!("JetStream skipped: {e}")),
        };
        let admin = match JsAdmin::connect(&server.url()) {
            Ok(a) => a,
            Err(e) => return self.report.notes.push(format!("JetStream skipped: {e}")),
        };
        let natscli = find_bin("nats");
        let cli = natscli.as_deref();
        let mut clients = vec![ASYNC_NATS, COURIER];
        clients.retain(|c| self.available(c, "js-publish"));
        if natscli.is_some() {
            clients.insert(0, NATS_CLI);
        }
        let quick = self.plan.quick;
        for window in [1usize, 256] {
            let scenario = format!("publish window {window}");
            if !self.plan.wants(NATS_JS, &scenario) {
                continue;
            }
            self.log(&format!(
                "nats js {scenario} (fresh memory stream per series)"
            ));
            let n = match (quick, window) {
                (true, 1) => 500,
                (true, _) => 5_000,
                (false, 1) => 20_000,
                (false, _) => 200_000,
            };
            for size in self.plan.sizes.clone() {
                self.run_group(None, clients.clone(), None, None, |bench, series| {
                    let (stream, subject) = (bench.unique("JSP"), bench.unique("jsp"));
                    if let Err(e) = admin.create_stream(&stream, &subject) {
                        return Measurement::failed(
                            &bench.proto(NATS_JS),
                            &scenario,
                            series,
                            size,
                            e,
                        );
                    }
                    let natscli_mode = if window == 1 { "sync" } else { "async" };
                    let batch = window.to_string();
                    let mut cli_args =
                        vec!["js", "pub", natscli_mode, &subject, "--stream", &stream];
                    if window > 1 {
                        cli_args.extend(["--batch", &batch]);
                    }
                    let m = bench.js_series(
                        cli,
                        &server,
                        series,
                        "js-publish",
                        &cli_args,
                        &scenario,
                        &stream,
                        &subject,
                        size,
                        n,
                        window,
                        &[],
                    );
                    let m = bench.js_check(&admin, m, Check::Stream(&stream));
                    admin.delete_stream(&stream);
                    m
                });
            }
        }
        for (scenario, worker, natscli_mode) in [
            ("fetch", "js-fetch", "fetch"),
            ("consume", "js-consume", "consume"),
        ] {
            if !self.plan.wants(NATS_JS, scenario) {
                continue;
            }
            let (size, n) = (16, if quick { 5_000 } else { 200_000 });
            self.log(&format!(
                "nats js {scenario} 16 B (one prefilled stream, a durable consumer per series)"
            ));
            let (stream, subject) = (self.unique("JSC"), self.unique("jsc"));
            if let Err(e) = admin
                .create_stream(&stream, &subject)
                .and_then(|_| admin.prefill(&subject, size, n))
            {
                self.report
                    .notes
                    .push(format!("nats js {scenario} skipped: prefill: {e}"));
                continue;
            }
            self.run_group(None, clients.clone(), None, None, |bench, series| {
                let consumer = bench.unique("c");
                if let Err(e) = admin.create_consumer(&stream, &consumer) {
                    return Measurement::failed(&bench.proto(NATS_JS), scenario, series, size, e);
                }
                let cli_args = [
                    "js",
                    natscli_mode,
                    "--stream",
                    &stream,
                    "--consumer",
                    &consumer,
                    "--batch",
                    "500",
                ];
                let m = bench.js_series(
                    cli,
                    &server,
                    series,
                    worker,
                    &cli_args,
                    scenario,
                    &stream,
                    &subject,
                    size,
                    n,
                    500,
                    &["--consumer", &consumer],
                );
                bench.js_check(&admin, m, Check::Consumer(&stream, &consumer, n))
            });
            admin.delete_stream(&stream);
        }
        if self.plan.wants(NATS_JS, "outbox") && self.available(COURIER, "js-outbox") {
            let (size, n) = (16, if quick { 5_000 } else { 100_000 });
            self.log("nats js outbox 16 B (batches of 256; spool in a temp dir)");
            let series = vec![
                COURIER,
                COURIER_OUTBOX_NO_FSYNC,
                NO_OUTBOX,
                NO_OUTBOX_MSG_ID,
            ];
            self.run_group(None, series, None, None, |bench, series| {
                let (stream, subject) = (bench.unique("JSO"), bench.unique("jso"));
                if let Err(e) = admin.create_stream(&stream, &subject) {
                    return Measurement::failed(&bench.proto(NATS_JS), "outbox", series, size, e);
                }
                let spool = match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(e) => {
                        return Measurement::failed(
                            &bench.proto(NATS_JS),
                            "outbox",
                            series,
                            size,
                            e.to_string(),
                        )
                    }
                };
                let spool_path = spool.path().display().to_string();
                let extra: Vec<&str> = match series {
                    COURIER => vec!["--spool", &spool_path, "--fsync", "batch"],
                    COURIER_OUTBOX_NO_FSYNC => vec!["--spool", &spool_path, "--fsync", "never"],
                    NO_OUTBOX_MSG_ID => vec!["--msg-ids"],
                    _ => vec![],
                };
                let worker = if series.starts_with("no outbox") {
                    "js-publish"
                } else {
                    "js-outbox"
                };
                let m = bench.js_series(
                    cli,
                    &server,
                    series,
                    worker,
                    &[],
                    "outbox",
                    &stream,
                    &subject,
                    size,
                    n,
                    256,
                    &extra,
                );
                let m = bench.js_check(&admin, m, Check::Stream(&stream));
                admin.delete_stream(&stream);
                m
            });
        }
        drop(server);
        drop(store);
    }

    /// Runs one series: natscli with `cli_args`, or the worker (`worker`
    /// scenario, `window` as its batch, `extra` arguments).
    #[allow(clippy::too_many_arguments)]
    fn js_series(
        &self,
        cli: Option<&Path>,
        server: &NatsServer,
        series: &'static str,
        worker: &str,
        cli_args: &[&str],
        scenario: &str,
        stream: &str,
        subject: &str,
        size: usize,
        n: u64,
        window: usize,
        extra: &[&str],
    ) -> Measurement {
        let proto = self.proto(NATS_JS);
        let url = server.url();
        let mut m = if series == NATS_CLI {
            match cli
                .ok_or_else(|| "natscli not found".to_string())
                .and_then(|cli| self.natscli_spawn(cli, &url, size, n, cli_args))
            {
                Ok((running, csv)) => {
                    natscli_measurement(&proto, scenario, size, n, &[&running.wait()], &csv)
                }
                Err(e) => Measurement::failed(&proto, scenario, series, size, e),
            }
        } else {
            let client = if series == ASYNC_NATS {
                ASYNC_NATS
            } else {
                COURIER
            };
            let mut args = self.worker_args(client, worker, &url, subject, size, n);
            args.extend([
                "--stream".to_string(),
                stream.to_string(),
                "--batch".into(),
                window.to_string(),
            ]);
            args.extend(extra.iter().map(|s| s.to_string()));
            self.worker(NATS_JS, scenario, series, size, args)
        };
        m.client = series.to_string();
        if series == NATS_CLI && m.error.is_none() {
            m.note = Some(format!("`nats bench {}`", cli_args.join(" ")));
        }
        m
    }

    /// Checks the server's own view of a series (see [`Check`]).
    fn js_check(&mut self, admin: &JsAdmin, mut m: Measurement, check: Check<'_>) -> Measurement {
        if m.error.is_some() {
            return m;
        }
        let claimed = m.messages;
        let verdict = match check {
            Check::Stream(stream) => admin.stream_messages(stream).map(|held| {
                let text = format!("STREAM.INFO: {held} messages stored");
                (held == claimed, text)
            }),
            Check::Consumer(stream, consumer, n) => {
                admin.consumer_state(stream, consumer, n).map(|s| {
                    let text = format!(
                        "CONSUMER.INFO: ack floor {}, {} ack pending, {} undelivered",
                        s.ack_floor, s.ack_pending, s.pending
                    );
                    (
                        s.ack_floor == n
                            && s.ack_pending == 0
                            && s.pending == 0
                            && claimed >= n.saturating_sub(1),
                        text,
                    )
                })
            }
        };
        match verdict {
            Ok((true, text)) => m.server_counts = Some(text),
            Ok((false, text)) => {
                m.error = Some(format!(
                    "COUNT MISMATCH: {text}; the client claims {claimed}"
                ));
                self.report.count_mismatches += 1;
            }
            Err(e) => m.error = Some(format!("server view unreadable: {e}")),
        }
        m
    }
}
