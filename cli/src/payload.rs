//! Where `courier pub` takes its messages from, and how it paces them.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use crate::args::PubArgs;
use crate::fail::{CliResult, Failure};

/// The messages to publish: one payload `count` times (from the argument
/// or `--file`), or stdin line by line.
pub enum PayloadSource {
    /// The same payload, `remaining` more times.
    Fixed {
        /// The payload.
        payload: Vec<u8>,
        /// Messages still to send.
        remaining: u64,
        /// Messages in total.
        total: u64,
    },
    /// One message per stdin line (newline removed), up to `limit`.
    Lines {
        /// Locked stdin.
        input: std::io::StdinLock<'static>,
        /// The current line.
        line: Vec<u8>,
        /// Stop after this many (`--count`).
        limit: Option<u64>,
        /// Lines read so far.
        read: u64,
    },
}

impl PayloadSource {
    /// Picks the source from the arguments.
    pub fn open(args: &PubArgs) -> CliResult<Self> {
        let fixed = match (&args.payload, &args.file) {
            (Some(_), Some(_)) => {
                return Err(Failure::usage(
                    "give the payload as an argument or with --file, not both",
                ))
            }
            (Some(text), None) => Some(text.as_bytes().to_vec()),
            (None, Some(path)) => Some(std::fs::read(path).map_err(|e| {
                Failure::usage(format!("cannot read --file {}: {e}", path.display()))
            })?),
            (None, None) => None,
        };
        Ok(match fixed {
            Some(payload) => {
                let total = args.count.unwrap_or(1);
                PayloadSource::Fixed {
                    payload,
                    remaining: total,
                    total,
                }
            }
            None => {
                let input = std::io::stdin().lock();
                if input.is_terminal() {
                    eprintln!("reading messages from stdin, one a line; Ctrl-D ends");
                }
                PayloadSource::Lines {
                    input,
                    line: Vec::new(),
                    limit: args.count,
                    read: 0,
                }
            }
        })
    }

    /// How many messages there will be, when known.
    pub fn total(&self) -> Option<u64> {
        match self {
            PayloadSource::Fixed { total, .. } => Some(*total),
            PayloadSource::Lines { limit, .. } => *limit,
        }
    }

    /// The next payload, or `None` when done.
    pub fn next_payload(&mut self) -> CliResult<Option<&[u8]>> {
        match self {
            PayloadSource::Fixed {
                payload, remaining, ..
            } => {
                if *remaining == 0 {
                    return Ok(None);
                }
                *remaining -= 1;
                Ok(Some(payload))
            }
            PayloadSource::Lines {
                input,
                line,
                limit,
                read,
            } => {
                if limit.is_some_and(|n| *read >= n) {
                    return Ok(None);
                }
                line.clear();
                let n = input
                    .read_until(b'\n', line)
                    .map_err(|e| Failure::other(format!("cannot read stdin: {e}")))?;
                if n == 0 {
                    return Ok(None);
                }
                if line.ends_with(b"\n") {
                    line.pop();
                    if line.ends_with(b"\r") {
                        line.pop();
                    }
                }
                *read += 1;
                Ok(Some(line))
            }
        }
    }
}

/// Spaces messages to `--rate` per second, on a fixed schedule from the
/// start (a slow send is caught up, not added to every later gap).
pub struct Pacer {
    rate: Option<f64>,
    start: Instant,
}

impl Pacer {
    /// A pacer for `rate` messages per second (`None`: as fast as possible).
    pub fn new(rate: Option<f64>) -> Self {
        Pacer {
            rate: rate.filter(|r| *r > 0.0 && r.is_finite()),
            start: Instant::now(),
        }
    }

    /// How long to wait before message number `sent` (0-based).
    pub fn delay(&self, sent: u64) -> Option<Duration> {
        let rate = self.rate?;
        let due = self.start + Duration::from_secs_f64(sent as f64 / rate);
        due.checked_duration_since(Instant::now())
    }

    /// Waits (async) until message number `sent` is due.
    pub async fn wait(&mut self, sent: u64) {
        if let Some(d) = self.delay(sent) {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_schedules_from_the_start() {
        let p = Pacer::new(Some(10.0));
        assert!(p.delay(0).is_none());
        let d = p.delay(5).expect("message 5 is due in about half a second");
        assert!(d <= Duration::from_millis(500));
        assert!(Pacer::new(None).delay(1_000).is_none());
        assert!(Pacer::new(Some(0.0)).delay(1_000).is_none());
    }
}
