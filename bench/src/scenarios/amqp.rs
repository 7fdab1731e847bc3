//! The AMQP scenarios against one RabbitMQ: publish with confirms (window
//! 1 and 1,000) and consume with prefetch 1,000 and manual acks, 16 B and
//! 1 KiB, courier beside lapin, amqp091-go and (publish) a raw pre-encoded
//! publisher as the broker's ceiling. Every run's queue depth is read from
//! the broker afterwards and must match what the client claims.

use super::tools::tool_failure;
use super::{Bench, BROKER_CEILING};
use crate::rabbitmq::RabbitNode;
use crate::report::{Measurement, COURIER};
use crate::servers::find_bin;

/// lapin series.
pub const LAPIN: &str = "lapin";
/// amqp091-go series (the Go harness in scripts/go/amqp091bench).
pub const AMQP091_GO: &str = "amqp091-go";

const PREFETCH: usize = 1_000;

impl Bench {
    pub(super) fn amqp_scenarios(&mut self, node: &RabbitNode) {
        let go = find_bin("amqp091-bench");
        if go.is_none() {
            self.report.notes.push(
                "amqp091-bench not found: run scripts/setup.sh; the amqp091-go series is missing"
                    .into(),
            );
        }
        for window in [1usize, 1_000] {
            let scenario = format!("publish confirms w{window}");
            if !self.plan.wants("amqp", &scenario) {
                continue;
            }
            self.log(&format!("amqp {scenario}"));
            for size in self.plan.sizes.clone() {
                let n = match (self.plan.quick, window) {
                    (true, _) => 2_000,
                    (false, 1) => 20_000,
                    (false, _) if size <= 64 => 300_000,
                    (false, _) => 150_000,
                };
                let mut series = vec![BROKER_CEILING, COURIER, LAPIN];
                if go.is_some() {
                    series.push(AMQP091_GO);
                }
                series.retain(|c| self.available(c, "amqp-publish"));
                let scenario = scenario.clone();
                self.run_group(None, series, None, None, |bench, client| {
                    let queue = bench.unique("amqp_pub");
                    let mut m = if client == AMQP091_GO {
                        let bin = go.as_deref().expect("present");
                        bench.go_amqp(bin, node, &scenario, "publish", &queue, size, n, window)
                    } else {
                        let worker_client = if client == BROKER_CEILING {
                            "raw"
                        } else {
                            client
                        };
                        let mut args = bench.worker_args(
                            worker_client,
                            "amqp-publish",
                            &node.url(),
                            &queue,
                            size,
                            n,
                        );
                        args.extend(["--window".into(), window.to_string()]);
                        bench.worker("amqp", &scenario, client, size, args)
                    };
                    let claimed = m.claimed_in_msgs.unwrap_or(0);
                    check_depth(&mut m, node, &queue, claimed);
                    m
                });
            }
        }
        let scenario = "consume prefetch 1000";
        if !self.plan.wants("amqp", scenario) {
            return;
        }
        self.log(&format!("amqp {scenario} (prefilled queue, manual acks)"));
        for size in self.plan.sizes.clone() {
            let n = if self.plan.quick {
                5_000
            } else if size <= 64 {
                300_000
            } else {
                150_000
            };
            let mut series = vec![COURIER, LAPIN];
            if go.is_some() {
                series.push(AMQP091_GO);
            }
            series.retain(|c| self.available(c, "amqp-consume"));
            self.run_group(None, series, None, None, |bench, client| {
                let queue = bench.unique("amqp_sub");
                if let Err(e) = bench.amqp_prefill(node, &queue, size, n) {
                    return Measurement::failed(&bench.proto("amqp"), scenario, client, size, e);
                }
                let mut m = if client == AMQP091_GO {
                    let bin = go.as_deref().expect("present");
                    bench.go_amqp(bin, node, scenario, "consume", &queue, size, n, PREFETCH)
                } else {
                    let args =
                        bench.worker_args(client, "amqp-consume", &node.url(), &queue, size, n);
                    bench.worker("amqp", scenario, client, size, args)
                };
                // Everything was acked: nothing is left (unacked messages
                // go back to the queue when the client's connection closes).
                check_depth(&mut m, node, &queue, 0);
                m
            });
        }
    }

    fn amqp_prefill(
        &self,
        node: &RabbitNode,
        queue: &str,
        size: usize,
        n: u64,
    ) -> Result<(), String> {
        let args = self.worker_args("raw", "amqp-prefill", &node.url(), queue, size, n);
        let outcome = self.spawn_counterpart(args)?.wait();
        if !outcome.success {
            return Err(format!("prefill failed: {}", tool_failure(&outcome)));
        }
        match node.queue_depth(queue, false)? {
            d if d as u64 == n => Ok(()),
            d => Err(format!("prefill: the broker holds {d} of {n} messages")),
        }
    }

    /// Runs the Go harness (its own process, counted like a worker).
    #[allow(clippy::too_many_arguments)]
    fn go_amqp(
        &self,
        bin: &std::path::Path,
        node: &RabbitNode,
        scenario: &str,
        mode: &str,
        queue: &str,
        size: usize,
        n: u64,
        window_or_prefetch: usize,
    ) -> Measurement {
        let args: Vec<String> = vec![
            format!("-url={}", node.url()),
            format!("-scenario={mode}"),
            format!("-queue={queue}"),
            format!("-size={size}"),
            format!("-msgs={n}"),
            format!("-window={window_or_prefetch}"),
            format!("-prefetch={window_or_prefetch}"),
        ];
        match self.spawn_tool(bin, &args) {
            Ok(running) => self.measure_worker("amqp", scenario, AMQP091_GO, size, running.wait()),
            Err(e) => Measurement::failed(&self.proto("amqp"), scenario, AMQP091_GO, size, e),
        }
    }
}

/// Fails `m` when the broker's depth of `queue` is not `expected`; deletes
/// the queue.
fn check_depth(m: &mut Measurement, node: &RabbitNode, queue: &str, expected: u64) {
    if m.error.is_some() {
        let _ = node.queue_depth(queue, true);
        return;
    }
    match node.queue_depth(queue, true) {
        Ok(d) if d as u64 == expected => {}
        Ok(d) => {
            m.error = Some(format!(
                "the broker holds {d} messages in {queue}, the client claims {expected}"
            ))
        }
        Err(e) => m.error = Some(format!("broker check: {e}")),
    }
}
