//! Paired ratios: courier ÷ each other client, round by round (both ran in
//! the same round, minutes apart at most), summarised by median and spread.

use crate::report::{latency_scenario, reference_only, Measurement, Report, COURIER};
use serde::{Deserialize, Serialize};

/// courier ÷ one other client in one group, over the rounds where both ran:
/// throughput as courier msgs/s ÷ theirs, request latency as their p50 ÷
/// courier's p50 (above 1 = courier better, both ways).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PairedRatio {
    /// Protocol label (`nats`, `nats pinned`, ...).
    pub protocol: String,
    /// Scenario.
    pub scenario: String,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// The other client.
    pub other: String,
    /// Median of the per-round ratios.
    pub median: f64,
    /// Smallest per-round ratio.
    pub min: f64,
    /// Largest per-round ratio.
    pub max: f64,
    /// Rounds in which both succeeded.
    pub rounds: usize,
    /// For request scenarios: median of the per-round p99 ratios.
    #[serde(default)]
    pub p99_median: Option<f64>,
}

impl PairedRatio {
    /// "0.74x (0.51–0.94, 7 rounds)".
    pub fn text(&self) -> String {
        let p99 = self
            .p99_median
            .map(|p| format!("; p99 {p:.2}x"))
            .unwrap_or_default();
        let rounds = if self.rounds == 1 { "round" } else { "rounds" };
        format!(
            "{:.2}x ({:.2}–{:.2}, {} {rounds}{p99})",
            self.median, self.min, self.max, self.rounds
        )
    }
}

/// Paired ratio of one round, or None when either side failed.
fn round_ratio(courier: &Measurement, other: &Measurement) -> Option<(f64, Option<f64>)> {
    if courier.error.is_some() || other.error.is_some() {
        return None;
    }
    if latency_scenario(&other.scenario) {
        let (c, o) = (courier.latency_us?, other.latency_us?);
        if c.p50_us <= 0.0 || c.p99_us <= 0.0 {
            return None;
        }
        Some((o.p50_us / c.p50_us, Some(o.p99_us / c.p99_us)))
    } else if other.msgs_per_s > 0.0 {
        Some((courier.msgs_per_s / other.msgs_per_s, None))
    } else {
        None
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Paired ratios over `runs` (one report per round): for every group and
/// every client other than courier's own variants, courier's ratio in each
/// round where both ran, summarised by median and min–max.
pub fn paired_ratios(runs: &[Report]) -> Vec<PairedRatio> {
    let mut out = Vec::new();
    let mut groups = Vec::new();
    for r in runs {
        for g in r.groups() {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    for group in groups {
        let mut others: Vec<String> = Vec::new();
        for r in runs {
            for m in r.results.iter().filter(|m| m.group() == group) {
                if !m.client.starts_with(COURIER)
                    && !reference_only(&m.client)
                    && !others.contains(&m.client)
                {
                    others.push(m.client.clone());
                }
            }
        }
        for other in others {
            let mut ratios = Vec::new();
            let mut p99s = Vec::new();
            for r in runs {
                let (Some(c), Some(o)) = (r.find(&group, COURIER), r.find(&group, &other)) else {
                    continue;
                };
                if let Some((ratio, p99)) = round_ratio(c, o) {
                    ratios.push(ratio);
                    p99s.extend(p99);
                }
            }
            if ratios.is_empty() {
                continue;
            }
            ratios.sort_by(f64::total_cmp);
            p99s.sort_by(f64::total_cmp);
            out.push(PairedRatio {
                protocol: group.0.clone(),
                scenario: group.1.clone(),
                payload_bytes: group.2,
                other,
                median: median(&ratios),
                min: ratios[0],
                max: ratios[ratios.len() - 1],
                rounds: ratios.len(),
                p99_median: (!p99s.is_empty()).then(|| median(&p99s)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(client: &str, rate: f64) -> Measurement {
        Measurement::from_counts("nats tls", "publish", client, 16, rate as u64, 1.0)
    }

    #[test]
    fn plaintext_reference_series_get_no_ratio_and_tls_ones_do() {
        let rounds: Vec<Report> = [(300.0, 200.0, 600.0), (200.0, 400.0, 500.0)]
            .iter()
            .map(|&(courier, cli, plain)| Report {
                results: vec![
                    result(COURIER, courier),
                    result("nats bench", cli),
                    result("nats bench plaintext", plain),
                ],
                ..Report::default()
            })
            .collect();
        let ratios = paired_ratios(&rounds);
        assert_eq!(ratios.len(), 1, "{ratios:?}");
        let r = &ratios[0];
        assert_eq!(r.other, "nats bench");
        assert_eq!((r.min, r.max, r.rounds), (0.5, 1.5, 2));
        assert_eq!(r.median, 1.0);
    }
}
