//! Reading what the reference tools print: natscli's CSV and aggregate
//! line, bench_writer / bench_reader's duration line, and why a child failed.

use super::NATS_CLI;
use crate::process::Outcome;
use crate::report::{Latency, Measurement};
use std::time::Duration;

/// One line saying why a child failed.
pub(super) fn tool_failure(outcome: &Outcome) -> String {
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
pub(super) fn add_process_counters(m: &mut Measurement, outcomes: &[&Outcome], per: f64) {
    let syscalls: Option<u64> = outcomes.iter().map(|o| o.syscalls).sum();
    let cpu: Option<Duration> = outcomes.iter().map(|o| o.cpu).sum();
    m.syscalls_per_msg = syscalls.map(|s| s as f64 / per);
    m.cpu_us_per_msg = cpu.map(|c| c.as_secs_f64() * 1e6 / per);
}

/// natscli CSV row: MsgsPerSec, DurationSecs and (when present) latency.
pub(super) fn natscli_measurement(
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
pub(super) fn natscli_aggregate_rate(stdout: &str) -> Option<f64> {
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
pub(super) fn parse_go_bench(outcome: &Outcome) -> Option<(f64, f64)> {
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
pub(super) fn parse_go_duration(text: &str) -> Option<f64> {
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
