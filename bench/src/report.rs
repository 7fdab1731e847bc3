//! The report: one [`Measurement`] per (protocol, scenario, payload size,
//! client), serialised as JSON, printed as a terminal table, and written as
//! Markdown tables with ratios against courier.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub use crate::ratios::{paired_ratios, PairedRatio};

/// The client name courier's own results carry; ratios are relative to it.
pub const COURIER: &str = "courier";

/// Latency percentiles in microseconds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// Largest observed.
    pub max_us: f64,
}

impl Latency {
    /// Reads the percentiles of a histogram recorded in nanoseconds.
    pub fn from_nanos(h: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p99_9_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }

    /// (label, value) pairs in percentile order, for tables and plots.
    pub fn points(&self) -> [(&'static str, f64); 5] {
        [
            ("p50", self.p50_us),
            ("p90", self.p90_us),
            ("p99", self.p99_us),
            ("p99.9", self.p99_9_us),
            ("max", self.max_us),
        ]
    }
}

/// What a worker process measured about itself (printed as one JSON line).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WorkerResult {
    /// Messages moved in the measured section.
    pub messages: u64,
    /// Messages the whole process moved, warm-up included (what per-message
    /// syscall and CPU figures divide by); `None` = same as `messages`.
    pub process_messages: Option<u64>,
    /// Wall time of the measured section, seconds.
    pub elapsed_s: f64,
    /// Per-operation latency, when the scenario has one.
    pub latency: Option<Latency>,
    /// Heap allocations in the measured section (counting allocator).
    pub allocations: Option<u64>,
    /// Which transport ran (courier: io_uring or epoll).
    pub transport: Option<String>,
    /// Anything the reader should know about this run.
    pub note: Option<String>,
    /// Messages this process published to the server in all (warm-up and
    /// round-trip requests included), to check against the server's
    /// `in_msgs`; `None` = `process_messages`.
    #[serde(default)]
    pub server_in_msgs: Option<u64>,
}

/// One client's result in one scenario at one payload size.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Measurement {
    /// `nats`, `nsq` or `tcp`.
    pub protocol: String,
    /// e.g. `publish`, `subscribe`, `pubsub`, `request`, `mpub`, `consume`.
    pub scenario: String,
    /// Series name: `courier`, `async-nats`, `nats bench`, `broker ceiling`, ...
    pub client: String,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Messages moved.
    pub messages: u64,
    /// Wall time of the measured section, seconds.
    pub elapsed_s: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Latency percentiles (per publish call, or per request round trip).
    pub latency_us: Option<Latency>,
    /// Heap allocations per message (in-process clients only).
    pub allocs_per_msg: Option<f64>,
    /// System calls per message, whole client process.
    pub syscalls_per_msg: Option<f64>,
    /// CPU time (user + system) per message, microseconds, whole client process.
    pub cpu_us_per_msg: Option<f64>,
    /// Transport that ran (courier), or the exact tool command.
    pub transport: Option<String>,
    /// Caveats.
    pub note: Option<String>,
    /// Set when the run failed; the other figures are then zero.
    pub error: Option<String>,
    /// Messages the client claims it published to the server in all
    /// (checked against the server's own count).
    #[serde(default)]
    pub claimed_in_msgs: Option<u64>,
    /// What the server's own counters said about this run, when checked.
    #[serde(default)]
    pub server_counts: Option<String>,
}

impl Measurement {
    /// A failed run: keeps its place in the report with the reason.
    pub fn failed(
        protocol: &str,
        scenario: &str,
        client: &str,
        size: usize,
        error: String,
    ) -> Self {
        Measurement {
            protocol: protocol.into(),
            scenario: scenario.into(),
            client: client.into(),
            payload_bytes: size,
            messages: 0,
            elapsed_s: 0.0,
            msgs_per_s: 0.0,
            mb_per_s: 0.0,
            latency_us: None,
            allocs_per_msg: None,
            syscalls_per_msg: None,
            cpu_us_per_msg: None,
            transport: None,
            note: None,
            error: Some(error),
            claimed_in_msgs: None,
            server_counts: None,
        }
    }

    /// Builds a measurement from counts; rates derived here.
    pub fn from_counts(
        protocol: &str,
        scenario: &str,
        client: &str,
        size: usize,
        messages: u64,
        elapsed_s: f64,
    ) -> Self {
        let msgs_per_s = if elapsed_s > 0.0 {
            messages as f64 / elapsed_s
        } else {
            0.0
        };
        Measurement {
            msgs_per_s,
            mb_per_s: msgs_per_s * size as f64 / 1e6,
            messages,
            elapsed_s,
            error: None,
            ..Measurement::failed(protocol, scenario, client, size, String::new())
        }
    }

    /// Key of the group this measurement is compared within.
    pub fn group(&self) -> (String, String, usize) {
        (
            self.protocol.clone(),
            self.scenario.clone(),
            self.payload_bytes,
        )
    }
}

/// Machine the run happened on.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Machine {
    /// `nproc`.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
}

/// The whole report.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// The command line that produced this report.
    #[serde(default)]
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Server and reference tool versions.
    pub versions: Vec<(String, String)>,
    /// Where syscall and CPU figures come from.
    pub counters: String,
    /// Sizes in bytes of courier state types, e.g. the core NATS session.
    pub state_sizes: Vec<(String, usize)>,
    /// Every result.
    pub results: Vec<Measurement>,
    /// Remarks about the run as a whole.
    pub notes: Vec<String>,
    /// Series whose server-side count differed from the client's claim
    /// (the run exits non-zero when this is not 0).
    #[serde(default)]
    pub count_mismatches: usize,
    /// courier ÷ each other client per group: the median of the per-round
    /// paired ratios, with their spread.
    #[serde(default)]
    pub ratios: Vec<PairedRatio>,
    /// How loaded the machine was: one line per pass (loadavg before and
    /// after, the busiest processes).
    #[serde(default)]
    pub load: Vec<String>,
}

impl Report {
    /// Every client that has at least one result, in first-seen order.
    pub fn clients(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for m in &self.results {
            if !seen.contains(&m.client) {
                seen.push(m.client.clone());
            }
        }
        seen
    }

    /// (protocol, scenario, size) groups in first-seen order.
    pub fn groups(&self) -> Vec<(String, String, usize)> {
        let mut seen = Vec::new();
        for m in &self.results {
            let g = m.group();
            if !seen.contains(&g) {
                seen.push(g);
            }
        }
        seen
    }

    /// The result of `client` in `group`, if any.
    pub fn find(&self, group: &(String, String, usize), client: &str) -> Option<&Measurement> {
        self.results
            .iter()
            .find(|m| &m.group() == group && m.client == client)
    }

    /// The paired ratio of courier to `other` in `group`, if computed.
    pub fn paired(&self, group: &(String, String, usize), other: &str) -> Option<&PairedRatio> {
        self.ratios.iter().find(|p| {
            p.protocol == group.0
                && p.scenario == group.1
                && p.payload_bytes == group.2
                && p.other == other
        })
    }

    /// Plain-text table for the terminal.
    pub fn terminal_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<5} {:<15} {:>6} {:<22} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "proto",
            "scenario",
            "size",
            "client",
            "msgs/s",
            "MB/s",
            "p50 us",
            "p99 us",
            "max us",
            "alloc/m",
            "sys/m",
            "cpu us/m",
            "vs cour"
        );
        for group in self.groups() {
            let courier = self.find(&group, COURIER).filter(|m| m.error.is_none());
            for m in self.results.iter().filter(|m| m.group() == group) {
                if let Some(err) = &m.error {
                    let _ = writeln!(
                        out,
                        "{:<5} {:<15} {:>6} {:<22} FAILED: {}",
                        m.protocol,
                        m.scenario,
                        human_size(m.payload_bytes),
                        m.client,
                        err
                    );
                    continue;
                }
                let lat = m.latency_us;
                let _ = writeln!(
                    out,
                    "{:<5} {:<15} {:>6} {:<22} {:>12.0} {:>9.1} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
                    m.protocol,
                    m.scenario,
                    human_size(m.payload_bytes),
                    m.client,
                    m.msgs_per_s,
                    m.mb_per_s,
                    opt(lat.map(|l| l.p50_us), 1),
                    opt(lat.map(|l| l.p99_us), 1),
                    opt(lat.map(|l| l.max_us), 0),
                    opt(m.allocs_per_msg, 2),
                    opt(m.syscalls_per_msg, 3),
                    opt(m.cpu_us_per_msg, 2),
                    ratio_text(courier, m),
                );
            }
        }
        out
    }

    /// Markdown: the headline table (msgs/s per client and courier's ratio
    /// to each), then the detail table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut protocols: Vec<String> = Vec::new();
        for m in &self.results {
            if !protocols.contains(&m.protocol) {
                protocols.push(m.protocol.clone());
            }
        }
        for protocol in &protocols {
            let mut clients: Vec<String> = Vec::new();
            for m in self.results.iter().filter(|m| &m.protocol == protocol) {
                if !clients.contains(&m.client) {
                    clients.push(m.client.clone());
                }
            }
            // courier first, then the others in run order.
            clients.sort_by_key(|c| c != COURIER);
            // Ratio columns for the other clients; courier's own variants
            // (transports, the bare core) are columns without ratios.
            let others: Vec<&String> = clients
                .iter()
                .filter(|c| !c.starts_with(COURIER) && !reference_only(c))
                .collect();
            let has_latency = self
                .results
                .iter()
                .any(|m| &m.protocol == protocol && latency_scenario(&m.scenario));
            let _ = writeln!(
                out,
                "### Headline, {}: messages/s{}, courier vs each other client\n",
                protocol.to_uppercase(),
                if has_latency {
                    " (request: p50 / p99 latency)"
                } else {
                    ""
                }
            );
            let mut header = "| scenario | payload |".to_string();
            let mut rule = "|---|---:|".to_string();
            for c in &clients {
                let _ = write!(header, " {c} |");
                rule.push_str("---:|");
            }
            for c in &others {
                let _ = write!(header, " courier ÷ {c} |");
                rule.push_str("---:|");
            }
            let _ = writeln!(out, "{header}\n{rule}");
            for group in self.groups().into_iter().filter(|g| &g.0 == protocol) {
                let mut row = format!("| {} | {} |", group.1, human_size(group.2));
                for c in &clients {
                    let cell = match self.find(&group, c) {
                        None => "".to_string(),
                        Some(m) if m.error.is_some() => "failed".to_string(),
                        Some(m) => headline_cell(m),
                    };
                    let _ = write!(row, " {cell} |");
                }
                let courier = self.find(&group, COURIER).filter(|m| m.error.is_none());
                for c in &others {
                    let cell = match self.find(&group, c) {
                        Some(m) if m.error.is_none() => match self.paired(&group, c) {
                            Some(p) => p.text(),
                            None => ratio_text(courier, m),
                        },
                        _ => "".to_string(),
                    };
                    let _ = write!(row, " {cell} |");
                }
                let _ = writeln!(out, "{row}");
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "\nRatios: throughput scenarios are courier msgs/s ÷ reference msgs/s (above 1 = courier faster); \
             request and handshake scenarios are reference p50 ÷ courier p50 (above 1 = courier answers sooner), p99 likewise. \
             Each is the median of the per-round paired ratios (both clients in the same round, minutes apart at most) \
             with their min–max; the msgs/s columns are each series' median round. `pinned`: the broker (and the \
             raw counterparts) on CPU 0, the client under test alone on CPU 1 (`taskset`).\n"
        );
        if self.count_mismatches > 0 {
            let _ = writeln!(
                out,
                "**{} series FAILED the server-side count check** (see their errors below): their numbers are not results.\n",
                self.count_mismatches
            );
        }
        let _ = writeln!(out, "### Detail\n");
        let _ = writeln!(
            out,
            "| protocol | scenario | payload | client | msgs/s | MB/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | allocs/msg | syscalls/msg | CPU µs/msg | notes |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for m in &self.results {
            if let Some(err) = &m.error {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | failed | | | | | | | | | | {} |",
                    m.protocol,
                    m.scenario,
                    human_size(m.payload_bytes),
                    m.client,
                    md_escape(err)
                );
                continue;
            }
            let lat = m.latency_us;
            let mut notes = Vec::new();
            if let Some(t) = &m.transport {
                notes.push(t.clone());
            }
            if let Some(n) = &m.note {
                notes.push(n.clone());
            }
            if let Some(c) = &m.server_counts {
                notes.push(format!("server: {c}"));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.protocol,
                m.scenario,
                human_size(m.payload_bytes),
                m.client,
                m.msgs_per_s,
                m.mb_per_s,
                opt(lat.map(|l| l.p50_us), 1),
                opt(lat.map(|l| l.p90_us), 1),
                opt(lat.map(|l| l.p99_us), 1),
                opt(lat.map(|l| l.p99_9_us), 1),
                opt(lat.map(|l| l.max_us), 0),
                opt(m.allocs_per_msg, 2),
                opt(m.syscalls_per_msg, 3),
                opt(m.cpu_us_per_msg, 2),
                md_escape(&notes.join("; ")),
            );
        }
        let _ = writeln!(out, "\n### Servers, tools and counters\n");
        for (name, version) in &self.versions {
            let _ = writeln!(out, "- {name}: `{}`", md_escape(version));
        }
        let _ = writeln!(out, "- syscalls and CPU time: {}", self.counters);
        if !self.command.is_empty() {
            let _ = writeln!(out, "- command: `{}`", md_escape(&self.command));
        }
        let _ = writeln!(
            out,
            "- machine: {} CPUs, {}, kernel {}",
            self.machine.cpus, self.machine.cpu_model, self.machine.kernel
        );
        if !self.state_sizes.is_empty() {
            let _ = writeln!(
                out,
                "\n### Connection state size\n\n| type | bytes |\n|---|---:|"
            );
            for (name, bytes) in &self.state_sizes {
                let _ = writeln!(out, "| `{}` | {} |", md_escape(name), bytes);
            }
        }
        if !self.load.is_empty() {
            let _ = writeln!(out, "\n### Machine load during the run\n");
            for l in &self.load {
                let _ = writeln!(out, "- {}", md_escape(l));
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n### Notes on this run\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// (protocol, scenario) pairs present, in run order (for plots).
    pub fn scenarios(&self) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        for m in &self.results {
            let key = (m.protocol.clone(), m.scenario.clone());
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
        seen
    }
}

impl Report {
    /// Merges repeated runs of the same plan: for every (scenario, size,
    /// client) the median successful run (by msgs/s, or by p50 latency for
    /// request scenarios) is kept and its note gives the spread. A series
    /// that failed in every run keeps the first failure.
    pub fn median_of(runs: Vec<Report>) -> Report {
        let ratios = paired_ratios(&runs);
        let mismatches: usize = runs.iter().map(|r| r.count_mismatches).sum();
        let load: Vec<String> = runs.iter().flat_map(|r| r.load.clone()).collect();
        let mut merged = Report::median_runs(runs);
        merged.ratios = ratios;
        merged.count_mismatches = mismatches;
        merged.load = load;
        merged
    }

    fn median_runs(runs: Vec<Report>) -> Report {
        let mut runs = runs.into_iter();
        let Some(mut merged) = runs.next() else {
            return Report::default();
        };
        let rest: Vec<Report> = runs.collect();
        if rest.is_empty() {
            return merged;
        }
        let total = rest.len() + 1;
        let mut results = Vec::new();
        for first in &merged.results {
            let key = (first.group(), first.client.clone());
            let mut ok: Vec<&Measurement> = std::iter::once(first)
                .chain(rest.iter().filter_map(|r| {
                    r.results
                        .iter()
                        .find(|m| (m.group(), m.client.clone()) == key)
                }))
                .filter(|m| m.error.is_none())
                .collect();
            if ok.is_empty() {
                results.push(first.clone());
                continue;
            }
            if latency_scenario(&first.scenario) {
                // Lower latency is better: sort descending so "better" is later, like msgs/s.
                ok.sort_by(|a, b| {
                    let p = |m: &Measurement| m.latency_us.map(|l| l.p50_us).unwrap_or(f64::MAX);
                    p(b).total_cmp(&p(a))
                });
            } else {
                ok.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
            }
            let mut chosen = ok[ok.len() / 2].clone();
            let spread = if latency_scenario(&first.scenario) {
                let p50 = |m: &Measurement| m.latency_us.map(|l| l.p50_us).unwrap_or(0.0);
                format!(
                    "median of {} of {total} runs by p50 (p50 {:.0}–{:.0} µs)",
                    ok.len(),
                    p50(ok[ok.len() - 1]),
                    p50(ok[0])
                )
            } else {
                format!(
                    "median of {} of {total} runs ({}–{})",
                    ok.len(),
                    human_rate(ok[0].msgs_per_s),
                    human_rate(ok[ok.len() - 1].msgs_per_s)
                )
            };
            chosen.note = Some(match chosen.note.take() {
                Some(n) => format!("{spread}; {n}"),
                None => spread,
            });
            results.push(chosen);
        }
        merged.results = results;
        for r in &rest {
            for n in &r.notes {
                if !merged.notes.contains(n) {
                    merged.notes.push(n.clone());
                }
            }
        }
        merged.notes.push(format!(
            "every series ran {total} times, interleaved within each round (order rotated each round); \
             the detail table shows each series' median run, the ratios are medians of per-round paired ratios"
        ));
        merged
    }
}

/// Whether a scenario is judged by latency rather than throughput.
pub fn latency_scenario(scenario: &str) -> bool {
    matches!(scenario, "request" | "handshake")
}

/// Series shown beside the others but never a ratio column: the same
/// clients without TLS in the TLS table (`... plaintext`).
pub fn reference_only(client: &str) -> bool {
    client.ends_with(" plaintext")
}

fn headline_cell(m: &Measurement) -> String {
    if latency_scenario(&m.scenario) {
        match m.latency_us {
            Some(l) => format!("{:.0} / {:.0} µs", l.p50_us, l.p99_us),
            None => "n/a".into(),
        }
    } else {
        human_rate(m.msgs_per_s)
    }
}

/// courier's advantage over `other` as "1.23x" (see [`Report::markdown`]).
fn ratio_text(courier: Option<&Measurement>, other: &Measurement) -> String {
    let Some(c) = courier else {
        return "-".into();
    };
    if c.client == other.client {
        return "1.00x".into();
    }
    let ratio = if latency_scenario(&other.scenario) {
        match (c.latency_us, other.latency_us) {
            (Some(c), Some(o)) if c.p50_us > 0.0 => o.p50_us / c.p50_us,
            _ => return "-".into(),
        }
    } else if other.msgs_per_s > 0.0 {
        c.msgs_per_s / other.msgs_per_s
    } else {
        return "-".into();
    };
    format!("{ratio:.2}x")
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// 16 B, 1 KiB, 64 KiB...
pub fn human_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// 1.23M/s, 456k/s...
pub fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.0}k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: &str, scenario: &str, rate: f64, p50: Option<f64>) -> Measurement {
        let mut m = Measurement::from_counts("nats", scenario, client, 16, 1000, 1000.0 / rate);
        m.latency_us = p50.map(|p| Latency {
            p50_us: p,
            p90_us: p,
            p99_us: p,
            p99_9_us: p,
            max_us: p,
        });
        m
    }

    fn report(results: Vec<Measurement>) -> Report {
        Report {
            results,
            ..Report::default()
        }
    }

    #[test]
    fn ratios_favour_courier_above_one() {
        let r = report(vec![
            run(COURIER, "publish", 2000.0, None),
            run("nats bench", "publish", 1000.0, None),
            run(COURIER, "request", 100.0, Some(50.0)),
            run("nats bench", "request", 100.0, Some(100.0)),
        ]);
        let md = r.markdown();
        // Throughput: 2000 / 1000; latency: 100 µs / 50 µs.
        assert!(
            md.contains("| publish | 16 B | 2k/s | 1k/s | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| request | 16 B | 50 / 50 µs | 100 / 100 µs | 2.00x |"),
            "{md}"
        );
    }

    #[test]
    fn median_keeps_the_middle_run_and_skips_failures() {
        let rounds = vec![
            report(vec![run(COURIER, "publish", 300.0, None)]),
            report(vec![run(COURIER, "publish", 100.0, None)]),
            report(vec![Measurement::failed(
                "nats",
                "publish",
                COURIER,
                16,
                "boom".into(),
            )]),
            report(vec![run(COURIER, "publish", 200.0, None)]),
        ];
        let merged = Report::median_of(rounds);
        assert_eq!(merged.results.len(), 1);
        let m = &merged.results[0];
        assert!((m.msgs_per_s - 200.0).abs() < 1e-6, "{m:?}");
        assert!(
            m.note
                .as_deref()
                .unwrap_or("")
                .starts_with("median of 3 of 4 runs"),
            "{m:?}"
        );
    }

    #[test]
    fn a_series_failing_everywhere_keeps_its_error() {
        let fail = || {
            report(vec![Measurement::failed(
                "nsq",
                "mpub",
                COURIER,
                16,
                "refused".into(),
            )])
        };
        let merged = Report::median_of(vec![fail(), fail()]);
        assert_eq!(merged.results[0].error.as_deref(), Some("refused"));
    }

    #[test]
    fn ratios_are_medians_of_per_round_pairs() {
        // Round rates: courier 100/300/200/900, nats bench 100/100/400/300:
        // pairs 1.0, 3.0, 0.5, 3.0 -> median 2.0, spread 0.5–3.0. The ratio
        // of the median runs (250 / 200 = 1.25) would differ.
        let rounds: Vec<Report> = [
            (100.0, 100.0),
            (300.0, 100.0),
            (200.0, 400.0),
            (900.0, 300.0),
        ]
        .iter()
        .map(|&(c, o)| {
            report(vec![
                run(COURIER, "publish", c, None),
                run("nats bench", "publish", o, None),
            ])
        })
        .collect();
        let mut with_failure = rounds.clone();
        with_failure.push(report(vec![
            run(COURIER, "publish", 5000.0, None),
            Measurement::failed("nats", "publish", "nats bench", 16, "boom".into()),
        ]));
        let merged = Report::median_of(with_failure);
        assert_eq!(merged.ratios.len(), 1, "{:?}", merged.ratios);
        let p = &merged.ratios[0];
        assert_eq!((p.median, p.min, p.max, p.rounds), (2.0, 0.5, 3.0, 4));
        assert!(merged.markdown().contains("2.00x (0.50–3.00, 4 rounds)"));
        // Request: their p50 over ours, p99 likewise.
        let req = paired_ratios(&[report(vec![
            run(COURIER, "request", 100.0, Some(50.0)),
            run("nats bench", "request", 100.0, Some(75.0)),
        ])]);
        assert_eq!((req[0].median, req[0].p99_median), (1.5, Some(1.5)));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(16), "16 B");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(1000), "1000 B");
    }
}
