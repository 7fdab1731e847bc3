//! Server-side counts: a run counts only when the broker's own counters
//! grew by exactly what the client claims. A mismatch fails the series and
//! makes the whole run exit non-zero.

use super::Bench;
use crate::report::Measurement;
use crate::servers::Nsqd;

impl Bench {
    /// Fails `m` loudly (and counts the mismatch for the exit code) when
    /// nats-server's counters did not grow by what the run claims.
    pub(super) fn check_nats_counts(
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

    /// Fails `m` loudly when nsqd counted a different number of messages
    /// into `topic` than the client claims it published.
    pub(super) fn check_nsq_count(&mut self, m: &mut Measurement, nsqd: &Nsqd, topic: &str) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Launcher;
    use crate::scenarios::Plan;

    fn bench() -> Bench {
        Bench::new(Plan::quick(), Launcher::probe(false), 0, false).expect("bench")
    }

    fn ok(claimed: Option<u64>) -> Measurement {
        let mut m = Measurement::from_counts("nats", "publish", "courier", 16, 1000, 1.0);
        m.claimed_in_msgs = claimed;
        m
    }

    #[test]
    fn matching_counts_are_recorded() {
        let mut b = bench();
        let mut m = ok(Some(1100));
        b.check_nats_counts(&mut m, Ok((50, 7)), Ok((1150, 7)), None, Some(0));
        assert_eq!(m.error, None);
        assert_eq!(
            m.server_counts.as_deref(),
            Some("/varz in_msgs +1100, out_msgs +0")
        );
        assert_eq!(b.report.count_mismatches, 0);
    }

    #[test]
    fn a_lost_message_fails_the_series_and_the_run() {
        let mut b = bench();
        // The client claims 1100 published, the server saw 1099.
        let mut m = ok(Some(1100));
        b.check_nats_counts(&mut m, Ok((0, 0)), Ok((1099, 0)), None, None);
        let error = m.error.clone().unwrap_or_default();
        assert!(error.starts_with("COUNT MISMATCH"), "{error}");
        assert!(
            error.contains("in_msgs grew by 1099, the run claims 1100"),
            "{error}"
        );
        // A subscriber that claims all 1000 while the server delivered 998.
        let mut m = ok(None);
        b.check_nats_counts(&mut m, Ok((0, 0)), Ok((1000, 998)), Some(1000), Some(1000));
        assert!(m.error.unwrap_or_default().contains("out_msgs grew by 998"));
        assert_eq!(b.report.count_mismatches, 2);
        // Unreadable counters fail too, without counting as a mismatch.
        let mut m = ok(Some(1));
        b.check_nats_counts(&mut m, Err("refused".into()), Ok((1, 0)), None, None);
        assert!(m.error.unwrap_or_default().contains("unreadable"));
        // A failed run is left as it is.
        let mut m = Measurement::failed("nats", "publish", "courier", 16, "boom".into());
        b.check_nats_counts(&mut m, Ok((0, 0)), Ok((5, 0)), Some(1), None);
        assert_eq!(m.error.as_deref(), Some("boom"));
        assert_eq!(b.report.count_mismatches, 2);
    }
}
