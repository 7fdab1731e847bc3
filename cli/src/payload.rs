//! Where `courier pub` takes its messages from, and how it paces them.
//!
//! Stdin is read on its own thread and handed over through a channel, so a
//! slow producer (`tail -f log | courier pub ...`) never blocks the runtime:
//! each line goes out as it arrives, and keepalives keep being answered.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::args::PubArgs;
use crate::fail::{CliResult, Failure};

/// Lines read ahead of the publisher at most.
const STDIN_QUEUE: usize = 1024;

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
        /// Lines from the reader thread (an error ends the stream).
        lines: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        /// The current line.
        line: Vec<u8>,
        /// Stop after this many (`--count`).
        limit: Option<u64>,
        /// Lines taken so far.
        read: u64,
    },
}

/// Reads stdin line by line on a thread of its own until EOF, an error, or
/// the receiver is gone.
fn spawn_stdin_reader() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(STDIN_QUEUE);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let item = match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.ends_with(b"\n") {
                        line.pop();
                        if line.ends_with(b"\r") {
                            line.pop();
                        }
                    }
                    Ok(line)
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
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
                if std::io::stdin().is_terminal() {
                    eprintln!("reading messages from stdin, one a line; Ctrl-D ends");
                }
                PayloadSource::Lines {
                    lines: spawn_stdin_reader(),
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

    /// The next payload, waiting for stdin if need be; `None` when done.
    pub async fn next_payload(&mut self) -> CliResult<Option<&[u8]>> {
        self.take(true).await
    }

    /// The next payload if it is at hand now (always for a fixed payload;
    /// for stdin, a line already read); `None` otherwise or when done.
    /// Fills an NSQ batch without waiting for a slow stdin.
    pub async fn next_ready(&mut self) -> CliResult<Option<&[u8]>> {
        self.take(false).await
    }

    async fn take(&mut self, wait: bool) -> CliResult<Option<&[u8]>> {
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
                lines,
                line,
                limit,
                read,
            } => {
                if limit.is_some_and(|n| *read >= n) {
                    return Ok(None);
                }
                let next = if wait {
                    lines.recv().await
                } else {
                    lines.try_recv().ok()
                };
                match next {
                    None => Ok(None),
                    Some(Err(e)) => Err(Failure::other(format!("cannot read stdin: {e}"))),
                    Some(Ok(text)) => {
                        *line = text;
                        *read += 1;
                        Ok(Some(line))
                    }
                }
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
