//! The NATS session driven like a runtime drives it: server bytes in
//! arbitrary chunks, interleaved with client calls, partial writes, time
//! passing and transport resets.

use std::collections::HashSet;

use arbitrary::{Arbitrary, Unstructured};
use courier_core::nats::{
    required_tx_capacity, ConnectOptions, Error, Event, Received, RequestId, Session, Sid, State,
};
use courier_core::time::{Duration, Instant};

use crate::harness::{drive, SessionDriver};
use crate::split_script;

/// Subjects the script picks from, invalid ones included.
const SUBJECTS: &[&str] = &[
    "a",
    "telemetry.temp",
    "a.*",
    "a.>",
    "",
    "bad subject",
    "_INBOX.x.1",
    "a..b",
];

#[derive(Arbitrary, Debug)]
enum Op {
    /// The transport read up to this many server bytes.
    Input(u16),
    /// The transport wrote this many of the pending bytes.
    Transmit(u16),
    /// The transport wrote everything pending.
    TransmitAll,
    /// Time passes (ms); timers that are due run.
    Advance(u16),
    Publish {
        subject: u8,
        len: u16,
        reply: bool,
        headers: bool,
    },
    Subscribe {
        subject: u8,
        queue: bool,
    },
    Unsubscribe(u8),
    UnsubscribeDraining(u8),
    UnsubscribeAfter(u8, u8),
    Request {
        subject: u8,
        timeout_ms: u16,
    },
    CancelRequest(u8),
    Ping,
    /// The transport was lost: reset and reconnect.
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    rx: u8,
    tx: u8,
    ping_interval_ms: u16,
    max_pings_out: u8,
    verbose: bool,
    headers: bool,
    inbox: bool,
}

struct Driver {
    session: Session<Vec<u8>, 8, 4>,
    tx_capacity: usize,
    rx: Vec<u8>,
    rx_capacity: usize,
    now: Instant,
    sids: Vec<Sid>,
    requests: Vec<RequestId>,
    /// Requests not yet answered, timed out or cancelled.
    live_requests: HashSet<u64>,
    ended_subs: HashSet<u64>,
}

/// Entry point: see [`crate::split_script`] for the input layout.
pub fn nats_session(data: &[u8]) {
    let (script, stream) = split_script(data);
    let mut u = Unstructured::new(script);
    let setup = Setup::arbitrary(&mut u).unwrap_or(Setup {
        rx: 3,
        tx: 2,
        ping_interval_ms: 0,
        max_pings_out: 2,
        verbose: false,
        headers: true,
        inbox: true,
    });
    let rx_capacity = [64, 512, 4096, 65536][usize::from(setup.rx % 4)];
    let mut options = ConnectOptions {
        rx_capacity,
        verbose: setup.verbose,
        headers: setup.headers,
        ping_interval: Duration::from_millis(u64::from(setup.ping_interval_ms)),
        max_pings_out: u32::from(setup.max_pings_out % 4),
        ..ConnectOptions::default()
    };
    if setup.inbox {
        let _ = courier_core::nats::set_str(&mut options.inbox_prefix, "_INBOX.x");
    }
    let required = required_tx_capacity(&options).expect("default CONNECT fits");
    let tx_capacity = required.max([0, 256, 1024, 8192][usize::from(setup.tx % 4)]);
    let mut d = Driver {
        session: Session::new(options, vec![0u8; tx_capacity]),
        tx_capacity,
        rx: Vec::with_capacity(rx_capacity),
        rx_capacity,
        now: Instant::from_millis(1),
        sids: Vec::new(),
        requests: Vec::new(),
        live_requests: HashSet::new(),
        ended_subs: HashSet::new(),
    };
    drive(&mut d, &mut u, stream);
}

crate::session_driver!(Driver, Op, check_output);

impl Driver {
    fn apply(&mut self, op: Op, stream: &mut &[u8]) {
        let subject = |i: u8| SUBJECTS[usize::from(i) % SUBJECTS.len()];
        match op {
            Op::Input(n) => {
                self.feed(stream, usize::from(n));
                self.pump();
            }
            Op::Transmit(n) => self.write(usize::from(n)),
            Op::TransmitAll => self.write(usize::MAX),
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                self.timers();
            }
            Op::Publish {
                subject: s,
                len,
                reply,
                headers,
            } => {
                let payload = vec![b'x'; usize::from(len % 4096)];
                let headers = headers.then_some(&b"NATS/1.0\r\nA: b\r\n\r\n"[..]);
                let reply = reply.then_some("reply.to");
                let queued = self.session.queued_bytes();
                match self.session.publish(subject(s), reply, headers, &payload) {
                    Ok(()) => assert!(
                        self.session.queued_bytes() > queued,
                        "publish Ok queued nothing"
                    ),
                    Err(e) => {
                        assert_eq!(
                            self.session.queued_bytes(),
                            queued,
                            "failed publish {e:?} left bytes"
                        );
                        let _ = e.to_string();
                    }
                }
            }
            Op::Subscribe { subject: s, queue } => {
                if let Ok(sid) = self.session.subscribe(subject(s), queue.then_some("q")) {
                    assert!(!self.sids.contains(&sid), "sid {sid:?} reused");
                    self.sids.push(sid);
                }
            }
            Op::Unsubscribe(i) => {
                if let Some(&sid) = pick(&self.sids, i) {
                    let _ = self.session.unsubscribe(sid);
                }
            }
            Op::UnsubscribeDraining(i) => {
                if let Some(&sid) = pick(&self.sids, i) {
                    let _ = self.session.unsubscribe_draining(sid);
                }
            }
            Op::UnsubscribeAfter(i, max) => {
                if let Some(&sid) = pick(&self.sids, i) {
                    let _ = self.session.unsubscribe_after(sid, u64::from(max));
                }
            }
            Op::Request {
                subject: s,
                timeout_ms,
            } => {
                let timeout = Duration::from_millis(u64::from(timeout_ms) + 1);
                if let Ok(id) = self
                    .session
                    .request(subject(s), None, b"q", self.now, timeout)
                {
                    assert!(self.live_requests.insert(id.0), "request id {id:?} reused");
                    self.requests.push(id);
                }
            }
            Op::CancelRequest(i) => {
                if let Some(&id) = pick(&self.requests, i) {
                    let was_live = self.live_requests.remove(&id.0);
                    assert_eq!(
                        self.session.cancel_request(id),
                        was_live,
                        "cancel of {id:?}"
                    );
                }
            }
            Op::Ping => {
                let connected = self.session.state() == State::Connected;
                match self.session.ping() {
                    Ok(_) => assert!(connected),
                    Err(Error::NotConnected) => assert!(!connected),
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
            Op::Reset => self.reset(),
        }
    }

    fn write(&mut self, n: usize) {
        let n = n.min(self.session.transmit().len());
        self.session.transmitted(n);
    }

    fn reset(&mut self) {
        let report = self.session.start(self.now);
        assert!(report.discarded_publishes <= report.discarded_bytes);
        assert_eq!(self.session.state(), State::AwaitingInfo);
        self.rx.clear();
        // Drains the reset ended come out at once, without a timer.
        self.poll_events();
        assert!(!self.session.has_events());
    }

    /// Checks and drops every owned event waiting; returns how many.
    fn poll_events(&mut self) -> usize {
        let mut n = 0;
        while let Some(event) = self.session.poll_event() {
            check_event(
                &event,
                &mut self.live_requests,
                &mut self.ended_subs,
                self.session.state(),
            );
            n += 1;
        }
        n
    }

    /// Hands the buffered bytes to the session until it needs more.
    fn pump(&mut self) {
        let mut retried = false;
        for _ in 0..100_000 {
            let polled = self.poll_events();
            let rx_len = self.rx.len();
            let result = self.session.handle_input(&self.rx, self.now);
            let used = match result {
                Ok((used, received)) => {
                    assert!(used <= rx_len, "used {used} of {rx_len} bytes");
                    let progressed = used > 0 || received.is_some() || polled > 0;
                    if let Some(received) = received {
                        check_received(&received, &mut self.live_requests);
                    }
                    if !progressed {
                        assert!(
                            self.session.state() == State::Closed || rx_len < self.rx_capacity,
                            "stall: {rx_len} bytes fill the {}-byte receive buffer, session in {:?} wants more",
                            self.rx_capacity,
                            self.session.state()
                        );
                        return;
                    }
                    retried = false;
                    used
                }
                Err(e) => {
                    let _ = e.to_string();
                    if e.is_fatal() {
                        assert_eq!(
                            self.session.state(),
                            State::Closed,
                            "fatal {e:?} left the session open"
                        );
                        self.reset();
                        return;
                    }
                    // Non-fatal here means "write out transmit and call again".
                    assert!(
                        !retried,
                        "non-fatal {e:?} again with an empty transmit buffer: the driver would spin"
                    );
                    retried = true;
                    self.write(usize::MAX);
                    0
                }
            };
            self.rx.drain(..used);
        }
        panic!("100000 operations from one receive buffer");
    }

    fn timers(&mut self) {
        for _ in 0..1_000 {
            if self.session.poll_timeout().is_none_or(|t| t > self.now) {
                return;
            }
            match self.session.handle_timeout(self.now) {
                Ok(()) if self.poll_events() > 0 => {}
                Ok(()) => {
                    let next = self.session.poll_timeout();
                    assert!(
                        next.is_none_or(|t| t > self.now),
                        "handle_timeout({:?}) returned nothing but the next deadline is {next:?} (state {:?}): the driver would spin",
                        self.now,
                        self.session.state()
                    );
                    return;
                }
                Err(e) => {
                    let _ = e.to_string();
                    assert!(e.is_fatal(), "timer error {e:?} must be fatal");
                    self.reset();
                }
            }
        }
        panic!("1000 timer events at one instant");
    }

    fn check_output(&self) {
        let pending = self.session.transmit().len();
        assert!(
            pending <= self.tx_capacity,
            "{pending} bytes to transmit from a {}-byte buffer",
            self.tx_capacity
        );
        assert!(self.session.queued_bytes() <= self.tx_capacity);
        assert!(self.rx.len() <= self.rx_capacity);
    }
}

fn pick<T>(items: &[T], i: u8) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(i) % items.len())
    }
}

fn check_received(received: &Received<'_>, live: &mut HashSet<u64>) {
    match received {
        Received::Reply { request, message } => {
            assert!(
                live.remove(&request.0),
                "reply for {request:?} that is not waiting"
            );
            let _ = message.payload.len();
        }
        Received::Message(message) => {
            if let Some(headers) = message.headers {
                for (name, value) in headers.iter() {
                    let _ = (name, value);
                }
            }
        }
        _ => {}
    }
}

fn check_event(event: &Event, live: &mut HashSet<u64>, ended: &mut HashSet<u64>, state: State) {
    match event {
        Event::Connected { .. } => assert_eq!(state, State::Connected),
        Event::NoResponders { request } | Event::RequestTimedOut { request } => {
            assert!(
                live.remove(&request.0),
                "{event:?} for a request that is not waiting"
            );
        }
        Event::SubscriptionDone { sid } => {
            assert!(ended.insert(sid.0), "subscription {sid:?} ended twice");
        }
        _ => {}
    }
}
