//! NATS over TLS (issue 10): publish 16 B / 1 KiB, subscribe 16 B, request
//! 16 B and the connect handshake, each client over TLS beside the same
//! client in plaintext, against ONE nats-server whose client port speaks
//! TLS and, with `allow_non_tls`, plaintext too; the series of each group
//! interleave in the rotated order of the round like every other group.
//!
//! TLS series carry the plain names (`courier`, `async-nats`, `nats bench`)
//! so the ratio columns are TLS against TLS; the plaintext series are
//! `... plaintext` (shown, never a ratio column). Every client verifies the
//! server against the run's CA (rcgen): courier `tls_ca_file`, async-nats
//! `add_root_certificates` + `require_tls`, natscli `--tlsca`. Counterparts
//! (feeder, responder) stay plaintext: they are the same for every client.

use super::tools::natscli_measurement;
use super::{Bench, ASYNC_NATS, NATS_CLI};
use crate::report::{Measurement, COURIER};
use crate::servers::{find_bin, NatsServer};
use crate::tls_pki::BenchPki;
use std::path::Path;
use std::time::Duration;

/// Protocol label of the TLS table.
pub const NATS_TLS: &str = "nats tls";
/// courier without TLS on the same server (reference column).
pub const COURIER_PLAIN: &str = "courier plaintext";
/// async-nats without TLS on the same server (reference column).
pub const ASYNC_NATS_PLAIN: &str = "async-nats plaintext";
/// `nats bench` without TLS on the same server (reference column).
pub const NATS_CLI_PLAIN: &str = "nats bench plaintext";

/// Whether `series` is one of the TLS ones.
fn is_tls(series: &str) -> bool {
    !crate::report::reference_only(series)
}

/// Worker `--client` of a series.
fn base(series: &str) -> &'static str {
    match series {
        COURIER | COURIER_PLAIN => COURIER,
        _ => ASYNC_NATS,
    }
}

impl Bench {
    /// The TLS table; a no-op unless `--only` selects it (or nothing).
    pub(super) fn nats_tls_scenarios(&mut self) {
        if !self.plan.wants_family(NATS_TLS) {
            return;
        }
        let pki = match BenchPki::generate() {
            Ok(p) => p,
            Err(e) => {
                return self
                    .report
                    .notes
                    .push(format!("TLS scenarios skipped: {e}"))
            }
        };
        let server = match NatsServer::start_with(self.pinned.then_some(0), &pki.nats_config()) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .report
                    .notes
                    .push(format!("TLS scenarios skipped: {e}"))
            }
        };
        let natscli = find_bin("nats");
        let ca = pki.ca_file.display().to_string();
        let mut clients = vec![COURIER, ASYNC_NATS, COURIER_PLAIN, ASYNC_NATS_PLAIN];
        clients.retain(|c| self.available(base(c), "publish"));
        let mut with_cli = clients.clone();
        if natscli.is_some() {
            with_cli.insert(0, NATS_CLI);
            with_cli.insert(1, NATS_CLI_PLAIN);
        }
        let cli = natscli.as_deref();
        if self.plan.wants(NATS_TLS, "publish") {
            self.log("nats tls publish (TLS beside plaintext, same server)");
            for size in self.plan.sizes.clone() {
                let n = self.plan.messages(size);
                self.run_group(
                    Some(&server),
                    with_cli.clone(),
                    None,
                    None,
                    |bench, series| {
                        let subject = bench.unique("tlspub");
                        let mut m = bench
                            .tls_series(&server, cli, &ca, series, "publish", &subject, size, n);
                        if series.starts_with(NATS_CLI) {
                            m.claimed_in_msgs = Some(n);
                        }
                        m
                    },
                );
            }
        }
        if self.plan.wants(NATS_TLS, "subscribe") {
            self.log("nats tls subscribe 16 B (one shared plaintext raw feeder)");
            let (size, n) = (16, self.plan.messages(16));
            self.run_group(
                Some(&server),
                with_cli.clone(),
                Some(n),
                Some(n),
                |bench, series| {
                    let fed = bench.fed_subscriber(&server, size, n, 1, |bench, subject| {
                        bench.tls_spawn(&server, cli, &ca, series, "subscribe", subject, size, n)
                    });
                    bench.tls_finish(series, "subscribe", size, n, fed)
                },
            );
        }
        if self.plan.wants(NATS_TLS, "request") {
            self.log("nats tls request 16 B (one shared plaintext raw responder)");
            let (size, n) = (16, self.plan.requests);
            let subject = self.unique("tlssvc");
            let args = self.worker_args("raw", "respond", &server.url(), &subject, size, 0);
            match self.spawn_counterpart(args) {
                Err(e) => self
                    .report
                    .notes
                    .push(format!("TLS request skipped: responder: {e}")),
                Ok(responder) => {
                    let ready =
                        server.wait_for_subscription(&subject, 1, Duration::from_secs(10), || {
                            responder.has_exited()
                        });
                    match ready {
                        Err(e) => self.report.notes.push(format!("TLS request skipped: {e}")),
                        Ok(()) => {
                            self.run_group(None, with_cli.clone(), None, None, |bench, series| {
                                bench.tls_series(
                                    &server, cli, &ca, series, "request", &subject, size, n,
                                )
                            })
                        }
                    }
                    responder.stop();
                }
            }
        }
        if self.plan.wants(NATS_TLS, "handshake") {
            self.log("nats tls handshake (connect to the first PONG, 100 connects)");
            let n = if self.plan.quick {
                20
            } else {
                crate::worker::HANDSHAKES
            };
            self.run_group(None, clients.clone(), None, None, |bench, series| {
                let subject = bench.unique("hs");
                bench.tls_series(&server, cli, &ca, series, "handshake", &subject, 0, n)
            });
        }
    }

    /// Starts one series of the TLS table: the worker or natscli, with TLS
    /// configured for the TLS series.
    #[allow(clippy::too_many_arguments)]
    fn tls_spawn(
        &self,
        server: &NatsServer,
        cli: Option<&Path>,
        ca: &str,
        series: &str,
        scenario: &str,
        subject: &str,
        size: usize,
        n: u64,
    ) -> Result<(crate::process::Running, Option<tempfile::NamedTempFile>), String> {
        let tls = is_tls(series);
        let url = if tls { server.tls_url() } else { server.url() };
        if series.starts_with(NATS_CLI) {
            let cli = cli.ok_or("natscli not found")?;
            let mut sub: Vec<&str> = match scenario {
                "publish" => vec!["pub", subject],
                "subscribe" => vec!["sub", subject],
                "request" => vec!["service", "request", subject],
                other => return Err(format!("natscli has no TLS scenario {other}")),
            };
            if tls {
                sub.extend(["--tlsca", ca]);
            }
            return self.natscli_spawn(cli, &url, size, n, &sub);
        }
        let mut args = self.worker_args(base(series), scenario, &url, subject, size, n);
        if tls {
            args.extend(["--tls-ca".to_string(), ca.to_string()]);
        }
        self.spawn_worker(args).map(|r| (r, None))
    }

    /// Measures a finished series of the TLS table under its own name.
    fn tls_finish(
        &self,
        series: &'static str,
        scenario: &str,
        size: usize,
        n: u64,
        done: Result<(crate::process::Outcome, Option<tempfile::NamedTempFile>), String>,
    ) -> Measurement {
        let proto = self.proto(NATS_TLS);
        let mut m = match done {
            Err(e) => Measurement::failed(&proto, scenario, series, size, e),
            Ok((outcome, csv)) if series.starts_with(NATS_CLI) => {
                natscli_measurement(&proto, scenario, size, n, &[&outcome], &csv)
            }
            Ok((outcome, _)) => self.measure_worker(NATS_TLS, scenario, series, size, outcome),
        };
        m.client = series.to_string();
        let how = if is_tls(series) {
            "TLS (verified against the run's CA)"
        } else {
            "plaintext"
        };
        m.note = Some(match m.note.take() {
            Some(note) => format!("{how}; {note}"),
            None => how.to_string(),
        });
        m
    }

    /// Starts a series and waits for it.
    #[allow(clippy::too_many_arguments)]
    fn tls_series(
        &self,
        server: &NatsServer,
        cli: Option<&Path>,
        ca: &str,
        series: &'static str,
        scenario: &str,
        subject: &str,
        size: usize,
        n: u64,
    ) -> Measurement {
        let done = self
            .tls_spawn(server, cli, ca, series, scenario, subject, size, n)
            .map(|(running, csv)| (running.wait(), csv));
        self.tls_finish(series, scenario, size, n, done)
    }
}
