//! The NSQ scenarios: publish (MPUB / PUB) and consume, beside bench_writer
//! and bench_reader, with nsqd's own counts checked.

use super::tools::{add_process_counters, parse_go_bench, tool_failure};
use super::{Bench, BENCH_READER, BENCH_WRITER, BROKER_CEILING, COURIER_CORE};
use crate::process::Running;
use crate::report::{Measurement, COURIER};
use crate::servers::{find_bin, Nsqd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How NSQ consume runs are timed, the same for every client.
const CONSUME_CLOCK: &str = "clock: from starting the consumer process to nsqd's /stats showing 95% of the prefill finished (polled every 2 ms)";

impl Bench {
    pub(super) fn nsq_scenarios(&mut self, nsqd: &Nsqd) {
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
