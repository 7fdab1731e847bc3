//! courier's NSQ core (`courier_core::nsq::Session`) driven by a small
//! blocking std-socket loop, for as long as the courier runtime has no NSQ
//! producer/consumer: it measures the sans-IO core (parsing, command
//! encoding, FIN) with the simplest possible driver. Publishes wait for
//! nsqd's OK before the next one, as bench_writer does.

use crate::report::WorkerResult;
use crate::worker::{Section, WorkerArgs};
use courier_core::nsq::{Event, Identify, Message, Options, Session};
use courier_core::time::Instant as CoreInstant;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Commands that may await nsqd's answer at once.
const PENDING: usize = 16;

/// How this series is driven, for the report.
pub const TRANSPORT: &str =
    "courier-core NSQ session + bench-local blocking std::net driver (no runtime)";

/// What one frame gave: a message (borrowing the receive buffer) or an
/// owned session event.
enum Got<'a> {
    Message(Message<'a>),
    Event(Event),
}

struct Driver {
    stream: TcpStream,
    session: Session<Box<[u8]>, PENDING>,
    rx: Box<[u8]>,
    start: usize,
    end: usize,
    epoch: Instant,
    deadline: Instant,
}

impl Driver {
    fn connect(
        addr: &str,
        rx_capacity: usize,
        tx_capacity: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(timeout)).ok();
        let identify = Identify {
            client_id: Some("courier-bench"),
            hostname: Some("courier-bench"),
            user_agent: Some("courier-bench"),
            feature_negotiation: true,
            ..Identify::default()
        };
        let epoch = Instant::now();
        let mut session = Session::new(
            Options::new(rx_capacity),
            vec![0u8; tx_capacity].into_boxed_slice(),
        );
        session
            .start(&identify, CoreInstant::from_millis(0))
            .map_err(|e| e.to_string())?;
        let mut driver = Driver {
            stream,
            session,
            rx: vec![0u8; rx_capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            epoch,
            deadline: epoch + timeout,
        };
        driver.flush()?;
        let mut ready = false;
        while !ready {
            driver.poll(|_, event| {
                if matches!(event, Got::Event(Event::Ready)) {
                    ready = true;
                }
                Ok(())
            })?;
        }
        Ok(driver)
    }

    fn now(&self) -> CoreInstant {
        CoreInstant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// Writes everything the session has queued.
    fn flush(&mut self) -> Result<(), String> {
        while !self.session.transmit().is_empty() {
            let n = self
                .stream
                .write(self.session.transmit())
                .map_err(|e| format!("write: {e}"))?;
            self.session.transmitted(n);
        }
        Ok(())
    }

    /// Reads once and hands every complete frame's event to `on_event`
    /// (which may queue commands on the session), then flushes.
    fn poll<F>(&mut self, mut on_event: F) -> Result<(), String>
    where
        F: FnMut(&mut Session<Box<[u8]>, PENDING>, Got<'_>) -> Result<(), String>,
    {
        if Instant::now() > self.deadline {
            return Err("timed out".into());
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.rx.len() {
            self.rx.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self
            .stream
            .read(&mut self.rx[self.end..])
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("nsqd closed the connection".into());
        }
        self.end += n;
        let now = self.now();
        loop {
            let (used, message) = self
                .session
                .handle_input(&self.rx[self.start..self.end], now)
                .map_err(|e| e.to_string())?;
            let mut progressed = used > 0;
            if let Some(message) = message {
                progressed = true;
                on_event(&mut self.session, Got::Message(message))?;
            }
            self.start += used;
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                on_event(&mut self.session, Got::Event(event))?;
            }
            if !progressed {
                break;
            }
        }
        self.flush()
    }
}

/// Runs an NSQ scenario: `nsq-publish` (PUB, or MPUB batches of
/// `--batch`) or `nsq-consume` (max_in_flight `--max-in-flight`).
pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let timeout = Duration::from_secs(args.timeout_s);
    let rx_capacity = (args.size + 64).max(64 * 1024);
    let mut result = match args.scenario.as_str() {
        "nsq-core-publish" => {
            let batch = args.batch.max(1);
            let tx_capacity = batch * (args.size + 4) + 256;
            let mut driver = Driver::connect(&args.url, rx_capacity, tx_capacity, timeout)?;
            let body = vec![b'x'; args.size];
            let bodies: Vec<&[u8]> = vec![body.as_slice(); batch];
            let section = Section::start();
            let mut sent = 0u64;
            while sent < args.msgs {
                let n = (args.msgs - sent).min(batch as u64) as usize;
                let id = if batch == 1 {
                    driver.session.publish(&args.subject, &body)
                } else {
                    driver.session.publish_multi(&args.subject, &bodies[..n])
                }
                .map_err(|e| e.to_string())?;
                driver.flush()?;
                let mut done = false;
                while !done {
                    driver.poll(|_, event| match event {
                        Got::Event(Event::Published { id: got }) if got == id => {
                            done = true;
                            Ok(())
                        }
                        Got::Event(Event::PublishFailed { error, .. }) => {
                            Err(format!("nsqd refused: {error}"))
                        }
                        _ => Ok(()),
                    })?;
                }
                sent += n as u64;
            }
            section.finish(args.msgs, None)
        }
        "nsq-core-consume" => {
            let tx_capacity = 64 * 1024;
            let mut driver = Driver::connect(&args.url, rx_capacity, tx_capacity, timeout)?;
            driver
                .session
                .subscribe(&args.subject, "ch")
                .map_err(|e| e.to_string())?;
            driver.flush()?;
            let mut subscribed = false;
            while !subscribed {
                driver.poll(|_, event| {
                    if matches!(event, Got::Event(Event::Subscribed)) {
                        subscribed = true;
                    }
                    Ok(())
                })?;
            }
            driver
                .session
                .ready(args.max_in_flight)
                .map_err(|e| e.to_string())?;
            driver.flush()?;
            let mut received = 0u64;
            let mut section = None;
            let mark = crate::worker::nsq_consume_mark(args.msgs);
            let mut at_mark = None;
            while received < args.msgs {
                driver.poll(|session, event| {
                    if let Got::Message(message) = event {
                        if received == 0 {
                            section = Some(Section::start());
                        }
                        received += 1;
                        if received == mark {
                            at_mark = Some(Instant::now());
                        }
                        session.fin(&message.id).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })?;
            }
            let mut result = section.ok_or("no message arrived")?.finish_at(
                at_mark.unwrap_or_else(Instant::now),
                mark.saturating_sub(1),
                None,
            );
            result.note = Some(crate::worker::NSQ_CONSUME_NOTE.into());
            result
        }
        other => return Err(format!("courier NSQ has no scenario {other:?}")),
    };
    result.process_messages = Some(args.msgs);
    result.transport = Some(TRANSPORT.into());
    Ok(result)
}
