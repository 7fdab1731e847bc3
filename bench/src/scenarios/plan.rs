//! How big a run is: payload sizes, message counts, timeouts.

use std::time::Duration;

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

    /// Whether any scenario of `family` (e.g. `nats tls`, `nats js`) is
    /// selected: no `--only`, or one naming the family, a scenario in it,
    /// or a prefix of it (`nats`).
    pub(super) fn wants_family(&self, family: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| o.starts_with(family) || family.starts_with(o.as_str()))
    }

    pub(super) fn wants(&self, protocol: &str, scenario: &str) -> bool {
        let name = format!("{protocol} {scenario}");
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_only(only: &[&str]) -> Plan {
        Plan {
            only: only.iter().map(|s| s.to_string()).collect(),
            ..Plan::quick()
        }
    }

    #[test]
    fn families_are_selected_by_their_name_a_scenario_or_a_prefix() {
        assert!(with_only(&[]).wants_family("nats tls"));
        assert!(with_only(&["nats"]).wants_family("nats tls"));
        assert!(with_only(&["nats"]).wants_family("nats js"));
        let tls_publish = with_only(&["nats tls publish"]);
        assert!(tls_publish.wants_family("nats tls"));
        assert!(!tls_publish.wants_family("nats js"));
        assert!(tls_publish.wants("nats tls", "publish"));
        assert!(!tls_publish.wants("nats tls", "handshake"));
        assert!(!with_only(&["nsq"]).wants_family("nats js"));
        // The plaintext table is not selected by the TLS one, nor the reverse.
        assert!(!with_only(&["nats tls"]).wants("nats", "publish"));
        assert!(!with_only(&["nats publish"]).wants("nats tls", "publish"));
        let window_1 = with_only(&["nats js publish window 1"]);
        assert!(window_1.wants("nats js", "publish window 1"));
        assert!(!window_1.wants("nats js", "fetch"));
    }
}
