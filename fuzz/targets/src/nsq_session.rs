//! The NSQ session driven like a runtime drives it: server bytes in
//! arbitrary chunks, interleaved with publishes, SUB/RDY/FIN/REQ/TOUCH,
//! partial writes, time passing and reconnects.

use std::collections::VecDeque;

use arbitrary::{Arbitrary, Unstructured};
use courier_core::nsq::{Event, Identify, MessageId, Options, PublishId, Session, SessionError};
use courier_core::time::{Duration, Instant};

use crate::harness::{drive, SessionDriver};
use crate::split_script;

const TOPICS: &[&str] = &["t", "telemetry", "bad topic", "", "x#ephemeral"];
const PENDING: usize = 8;

#[derive(Arbitrary, Debug)]
enum Op {
    Input(u16),
    Transmit(u16),
    TransmitAll,
    Advance(u16),
    Publish {
        topic: u8,
        len: u16,
    },
    PublishMulti {
        topic: u8,
        count: u8,
    },
    PublishDeferred {
        topic: u8,
        defer_ms: u32,
    },
    Subscribe {
        topic: u8,
    },
    Ready(u16),
    Fin(bool),
    Req(bool, u32),
    Touch(bool),
    Nop,
    Close,
    Auth,
    /// The transport was lost: a new session on a new connection.
    Reconnect,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    rx: u8,
    tx: u8,
    heartbeat_ms: i16,
    feature_negotiation: bool,
}

struct Driver {
    session: Session<Vec<u8>, PENDING>,
    tx_capacity: usize,
    rx: Vec<u8>,
    rx_capacity: usize,
    now: Instant,
    identify_heartbeat: Option<i64>,
    feature_negotiation: bool,
    /// Publishes nsqd has not answered yet, oldest first (the model).
    outstanding: VecDeque<PublishId>,
    /// Ids of received messages, to FIN/REQ/TOUCH.
    last_message: Option<MessageId>,
    dead: bool,
}

/// Entry point: see [`crate::split_script`] for the input layout.
pub fn nsq_session(data: &[u8]) {
    let (script, stream) = split_script(data);
    let mut u = Unstructured::new(script);
    let setup = Setup::arbitrary(&mut u).unwrap_or(Setup {
        rx: 2,
        tx: 2,
        heartbeat_ms: 0,
        feature_negotiation: true,
    });
    let rx_capacity = [64, 1024, 4096, 1 << 20][usize::from(setup.rx % 4)];
    let tx_capacity = [32, 256, 1024, 16384][usize::from(setup.tx % 4)];
    let identify_heartbeat = match setup.heartbeat_ms {
        0 => None,
        ms => Some(i64::from(ms)),
    };
    // Session::new refuses a bad IDENTIFY (e.g. a heartbeat of 1..1000 ms)
    // with a typed error: then there is nothing to drive.
    let Some((session, tx_capacity)) = open(
        tx_capacity,
        rx_capacity,
        identify_heartbeat,
        setup.feature_negotiation,
        Instant::from_millis(1),
    ) else {
        return;
    };
    let mut d = Driver {
        session,
        tx_capacity,
        rx: Vec::new(),
        rx_capacity,
        now: Instant::from_millis(1),
        identify_heartbeat,
        feature_negotiation: setup.feature_negotiation,
        outstanding: VecDeque::new(),
        last_message: None,
        dead: false,
    };
    drive(&mut d, &mut u, stream);
}

crate::session_driver! {
    Driver,
    Op,
    check,
    fn finished(&self) -> bool {
        self.dead
    }
}

/// A session over a `tx`-byte transmit buffer, or over 16 KiB when `tx`
/// cannot hold IDENTIFY; None when IDENTIFY itself is refused (a typed
/// error, e.g. a heartbeat between 1 and 999 ms).
fn open(
    tx: usize,
    rx: usize,
    heartbeat: Option<i64>,
    feature_negotiation: bool,
    now: Instant,
) -> Option<(Session<Vec<u8>, PENDING>, usize)> {
    match new_session(tx, rx, heartbeat, feature_negotiation, now) {
        Some(s) => Some((s, tx)),
        None => new_session(16384, rx, heartbeat, feature_negotiation, now).map(|s| (s, 16384)),
    }
}

fn new_session(
    tx: usize,
    rx: usize,
    heartbeat: Option<i64>,
    feature_negotiation: bool,
    now: Instant,
) -> Option<Session<Vec<u8>, PENDING>> {
    let identify = Identify {
        client_id: Some("fuzz"),
        hostname: Some("fuzz.local"),
        user_agent: Some("courier-fuzz/0.1"),
        feature_negotiation,
        heartbeat_interval: heartbeat,
        ..Identify::default()
    };
    let mut session = Session::new(Options::new(rx), vec![0u8; tx]);
    match session.start(&identify, now) {
        Ok(()) => Some(session),
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

impl Driver {
    fn apply(&mut self, op: Op, stream: &mut &[u8]) {
        let topic = |i: u8| TOPICS[usize::from(i) % TOPICS.len()];
        let id = |own: bool, last: Option<MessageId>| match (own, last) {
            (true, Some(id)) => id,
            _ => MessageId(*b"0123456789abcdef"),
        };
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
            Op::Publish { topic: t, len } => {
                let body = vec![b'b'; usize::from(len % 2048)];
                let r = self.session.publish(topic(t), &body);
                self.track(r);
            }
            Op::PublishMulti { topic: t, count } => {
                let bodies: Vec<&[u8]> = (0..count % 8).map(|_| &b"m"[..]).collect();
                let r = self.session.publish_multi(topic(t), &bodies);
                self.track(r);
            }
            Op::PublishDeferred { topic: t, defer_ms } => {
                let r = self.session.publish_deferred(topic(t), defer_ms, b"d");
                self.track(r);
            }
            Op::Subscribe { topic: t } => self.call(|s| s.subscribe(topic(t), "ch")),
            Op::Ready(n) => self.call(|s| s.ready(u32::from(n))),
            Op::Fin(own) => {
                let id = id(own, self.last_message);
                self.call(|s| s.fin(&id))
            }
            Op::Req(own, delay) => {
                let id = id(own, self.last_message);
                self.call(|s| s.req(&id, delay))
            }
            Op::Touch(own) => {
                let id = id(own, self.last_message);
                self.call(|s| s.touch(&id))
            }
            Op::Nop => self.call(|s| s.nop()),
            Op::Close => self.call(|s| s.close()),
            Op::Auth => self.call(|s| s.auth(b"secret")),
            Op::Reconnect => self.reconnect(),
        }
    }

    fn call(&mut self, f: impl FnOnce(&mut Session<Vec<u8>, PENDING>) -> Result<(), SessionError>) {
        let before = self.session.transmit().len();
        if let Err(e) = f(&mut self.session) {
            let _ = e.to_string();
            // A refused command writes nothing.
            assert_eq!(
                self.session.transmit().len(),
                before,
                "refused command {e:?} wrote bytes"
            );
        }
    }

    fn track(&mut self, result: Result<PublishId, SessionError>) {
        match result {
            Ok(id) => {
                assert!(
                    self.outstanding.back().is_none_or(|last| *last < id),
                    "publish ids out of order"
                );
                self.outstanding.push_back(id);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    fn reconnect(&mut self) {
        // The runtime reports every unanswered publish as unconfirmed and
        // starts over on a new connection.
        let reported: Vec<PublishId> = self.session.outstanding_publishes().collect();
        assert_eq!(
            reported,
            Vec::from(self.outstanding.clone()),
            "unconfirmed publishes differ from the model"
        );
        self.outstanding.clear();
        self.rx.clear();
        self.last_message = None;
        self.dead = false;
        let (session, tx_capacity) = open(
            self.tx_capacity,
            self.rx_capacity,
            self.identify_heartbeat,
            self.feature_negotiation,
            self.now,
        )
        .expect("the same IDENTIFY was accepted at the start");
        self.session = session;
        self.tx_capacity = tx_capacity;
    }

    fn write(&mut self, n: usize) {
        let n = n.min(self.session.transmit().len());
        self.session.transmitted(n);
    }

    fn pump(&mut self) {
        for _ in 0..100_000 {
            let rx_len = self.rx.len();
            match self.session.handle_input(&self.rx, self.now) {
                Ok((used, message)) => {
                    assert!(used <= rx_len, "used {used} of {rx_len} bytes");
                    let mut progressed = used > 0 || message.is_some();
                    if let Some(m) = message {
                        self.last_message = Some(m.id);
                    }
                    while let Some(event) = self.session.poll_event() {
                        progressed = true;
                        match event {
                            Event::Published { id } | Event::PublishFailed { id, .. } => {
                                assert_eq!(
                                    self.outstanding.pop_front(),
                                    Some(id),
                                    "publish result for {id:?} out of order or unknown"
                                );
                            }
                            Event::AuthRequired => {
                                let _ = self.session.auth(b"secret");
                            }
                            _ => {}
                        }
                    }
                    if !progressed {
                        assert!(
                            rx_len < self.rx_capacity || self.session.is_closed(),
                            "stall: {rx_len} bytes fill the {}-byte receive buffer and the session wants more",
                            self.rx_capacity
                        );
                        return;
                    }
                    self.rx.drain(..used);
                }
                Err(e) => {
                    let _ = e.to_string();
                    self.dead = true;
                    // After an error the session keeps failing, never panics.
                    assert!(
                        self.session.handle_input(&self.rx, self.now).is_err(),
                        "a dead session accepted input"
                    );
                    self.reconnect();
                    return;
                }
            }
        }
        panic!("100000 frames from one receive buffer");
    }

    fn timers(&mut self) {
        let Some(deadline) = self.session.poll_timeout() else {
            return;
        };
        if deadline > self.now {
            return;
        }
        match self.session.handle_timeout(self.now) {
            Ok(()) => {
                let next = self.session.poll_timeout();
                assert!(
                    next.is_none_or(|t| t > self.now),
                    "timer at {:?} left the deadline at {next:?}",
                    self.now
                );
            }
            Err(e) => {
                let _ = e.to_string();
                self.reconnect();
            }
        }
    }

    fn check(&self) {
        let pending = self.session.transmit().len();
        assert!(
            pending <= self.tx_capacity,
            "{pending} bytes to transmit from a {}-byte buffer",
            self.tx_capacity
        );
        assert!(self.rx.len() <= self.rx_capacity);
        let reported = self.session.outstanding_publishes().count();
        assert_eq!(
            reported,
            self.outstanding.len(),
            "outstanding publishes differ from the model"
        );
    }
}
