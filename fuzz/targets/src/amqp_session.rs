//! The AMQP session driven like a runtime drives it: server bytes in
//! arbitrary chunks, interleaved with client calls (channels, declares,
//! publishes, consumers, acks, confirms, close), partial writes, time
//! passing and lost transports.

use arbitrary::{Arbitrary, Unstructured};
use courier_core::amqp::methods::{Exchange, Queue};
use courier_core::amqp::session::EVENT_QUEUE;
use courier_core::amqp::{
    ChannelId, ConsumeFlags, Error, Event, FieldTable, Options, Properties, PublishFlags, Session,
    State,
};
use courier_core::time::{Duration, Instant};

use crate::harness::{drive, SessionDriver};
use crate::split_script;

/// Names the script picks from (queues, exchanges, tags), odd ones included.
const NAMES: &[&str] = &["", "q", "amq.direct", "ctag", "a.b.c", "\u{e9}t\u{e9}"];

/// One client operation or transport event; the variant order is part of
/// the seed format (`tests/amqp_seeds.rs` writes scripts by index).
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// The transport read up to this many server bytes.
    Input(u16),
    /// The transport wrote this many of the pending bytes.
    Transmit(u16),
    /// The transport wrote everything pending.
    TransmitAll,
    /// Time passes (ms); timers that are due run.
    Advance(u16),
    /// Time passes (s).
    AdvanceSecs(u8),
    OpenChannel,
    CloseChannel(u8),
    ConfirmSelect(u8),
    DeclareQueue {
        channel: u8,
        name: u8,
        passive: bool,
    },
    DeclareExchange {
        channel: u8,
        name: u8,
    },
    Qos {
        channel: u8,
        prefetch: u16,
    },
    Consume {
        channel: u8,
        queue: u8,
        no_ack: bool,
    },
    Cancel {
        channel: u8,
        tag: u8,
    },
    Publish {
        channel: u8,
        len: u16,
        mandatory: bool,
        persistent: bool,
    },
    Ack {
        channel: u8,
        tag: u8,
        multiple: bool,
    },
    Nack {
        channel: u8,
        tag: u8,
        multiple: bool,
        requeue: bool,
    },
    Reject {
        channel: u8,
        tag: u8,
    },
    Close,
    /// The transport was lost: start again on a new one.
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    rx: u8,
    tx: u8,
    heartbeat: u8,
    frame_max: u8,
}

type AmqpSession = Session<Vec<u8>, 4, 1>;

struct Driver {
    session: AmqpSession,
    tx_capacity: usize,
    rx: Vec<u8>,
    rx_capacity: usize,
    now: Instant,
    /// Channels handed out by `open_channel` (maybe closed since).
    channels: Vec<ChannelId>,
    /// Delivery tags seen, to ack with.
    tags: Vec<u64>,
}

/// Entry point: see [`crate::split_script`] for the input layout.
pub fn amqp_session(data: &[u8]) {
    let (script, stream) = split_script(data);
    let mut u = Unstructured::new(script);
    let setup = Setup::arbitrary(&mut u).unwrap_or(Setup {
        rx: 3,
        tx: 2,
        heartbeat: 0,
        frame_max: 0,
    });
    let rx_capacity = [512, 4096, 32 * 1024, 256 * 1024][usize::from(setup.rx % 4)];
    let tx_capacity = [1024, 4096, 16 * 1024, 256 * 1024][usize::from(setup.tx % 4)];
    let options = Options {
        heartbeat: [0, 1, 5, 60][usize::from(setup.heartbeat % 4)],
        frame_max: [131_072, 4096, 0, 512][usize::from(setup.frame_max % 4)],
        handshake_timeout: Duration::from_secs(10),
        rx_capacity,
        ..Options::default()
    };
    let mut d = Driver {
        session: AmqpSession::new(options, vec![0u8; tx_capacity]),
        tx_capacity,
        rx: Vec::with_capacity(rx_capacity),
        rx_capacity,
        now: Instant::from_millis(1),
        channels: Vec::new(),
        tags: Vec::new(),
    };
    d.session.start(d.now);
    assert_eq!(d.session.state(), State::AwaitingStart);
    drive(&mut d, &mut u, stream);
}

crate::session_driver! {
    Driver,
    Op,
    check_output,
    /// `pump` asserts stalls itself and restarts a closed session.
    fn checks_stalls(&self) -> bool {
        false
    }
    fn trace(&self, op: &Op) {
        eprintln!("{op:?} (state {:?})", self.session.state());
    }
}

impl Driver {
    fn apply(&mut self, op: Op, stream: &mut &[u8]) {
        let name = |i: u8| NAMES[usize::from(i) % NAMES.len()];
        match op {
            Op::Input(n) => {
                self.feed(stream, usize::from(n));
                self.pump();
            }
            Op::Transmit(n) => self.write(usize::from(n)),
            Op::TransmitAll => self.write(usize::MAX),
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms))),
            Op::AdvanceSecs(s) => self.advance(Duration::from_secs(u64::from(s))),
            Op::OpenChannel => {
                let open = self.session.state() == State::Open;
                let result = self.session.open_channel();
                if let Ok(id) = result {
                    assert!(open, "open_channel Ok outside State::Open");
                    assert!(id != 0, "channel 0 handed out");
                    self.channels.push(id);
                }
                self.after_call("open_channel", result.map(|_| ()));
            }
            Op::CloseChannel(c) => {
                let ch = self.channel(c);
                let r = self.session.close_channel(ch);
                self.after_call("close_channel", r);
            }
            Op::ConfirmSelect(c) => {
                let ch = self.channel(c);
                let r = self.session.confirm_select(ch);
                self.after_call("confirm_select", r);
            }
            Op::DeclareQueue {
                channel,
                name: n,
                passive,
            } => {
                let ch = self.channel(channel);
                let r = self.session.call(
                    ch,
                    Queue::Declare {
                        queue: name(n).into(),
                        passive,
                        durable: false,
                        exclusive: false,
                        auto_delete: true,
                        nowait: false,
                        arguments: FieldTable::EMPTY,
                    },
                );
                self.after_call("queue.declare", r);
            }
            Op::DeclareExchange { channel, name: n } => {
                let ch = self.channel(channel);
                let r = self.session.call(
                    ch,
                    Exchange::Declare {
                        exchange: name(n).into(),
                        kind: "direct".into(),
                        passive: false,
                        durable: false,
                        auto_delete: false,
                        internal: false,
                        nowait: false,
                        arguments: FieldTable::EMPTY,
                    },
                );
                self.after_call("exchange.declare", r);
            }
            Op::Qos { channel, prefetch } => {
                let ch = self.channel(channel);
                let r = self.session.qos(ch, prefetch, false);
                self.after_call("qos", r);
            }
            Op::Consume {
                channel,
                queue,
                no_ack,
            } => {
                let ch = self.channel(channel);
                let flags = ConsumeFlags {
                    no_ack,
                    exclusive: false,
                };
                let r = self
                    .session
                    .consume(ch, name(queue), "ctag", flags, FieldTable::EMPTY);
                self.after_call("consume", r);
            }
            Op::Cancel { channel, tag } => {
                let ch = self.channel(channel);
                let r = self.session.cancel(ch, name(tag));
                self.after_call("cancel", r);
            }
            Op::Publish {
                channel,
                len,
                mandatory,
                persistent,
            } => {
                let ch = self.channel(channel);
                let body = vec![b'x'; usize::from(len % 8192)];
                let mut props = Properties::default().content_type("text/plain");
                if persistent {
                    props = props.persistent();
                }
                let confirming = self.session.channel(ch).map(|s| s.confirms.is_some());
                let r =
                    self.session
                        .publish(ch, "", "q", PublishFlags { mandatory }, &props, &body);
                if let Ok(tag) = r {
                    assert_eq!(
                        tag.is_some(),
                        confirming == Some(true),
                        "publish tag {tag:?} on a channel with confirms {confirming:?}"
                    );
                }
                self.after_call("publish", r.map(|_| ()));
            }
            Op::Ack {
                channel,
                tag,
                multiple,
            } => {
                let (ch, tag) = (self.channel(channel), self.tag(tag));
                let r = self.session.ack(ch, tag, multiple);
                self.after_call("ack", r);
            }
            Op::Nack {
                channel,
                tag,
                multiple,
                requeue,
            } => {
                let (ch, tag) = (self.channel(channel), self.tag(tag));
                let r = self.session.nack(ch, tag, multiple, requeue);
                self.after_call("nack", r);
            }
            Op::Reject { channel, tag } => {
                let (ch, tag) = (self.channel(channel), self.tag(tag));
                let r = self.session.reject(ch, tag, false);
                self.after_call("reject", r);
            }
            Op::Close => {
                let open = self.session.state() == State::Open;
                let r = self.session.close(self.now);
                if r.is_ok() {
                    assert!(open);
                    assert_eq!(self.session.state(), State::Closing);
                }
                self.after_call("close", r);
            }
            Op::Reset => self.restart(true),
        }
    }

    /// A channel the script names: one handed out (open or not), or a
    /// number never opened.
    fn channel(&self, i: u8) -> ChannelId {
        if self.channels.is_empty() || i >= 200 {
            ChannelId::from(i % 8)
        } else {
            self.channels[usize::from(i) % self.channels.len()]
        }
    }

    fn tag(&self, i: u8) -> u64 {
        if self.tags.is_empty() || i >= 200 {
            u64::from(i)
        } else {
            self.tags[usize::from(i) % self.tags.len()]
        }
    }

    /// Checks a client call's outcome: fatal errors close the session.
    fn after_call(&mut self, what: &str, result: Result<(), Error>) {
        if let Err(e) = result {
            let _ = e.to_string();
            if e.is_fatal() {
                assert_eq!(
                    self.session.state(),
                    State::Closed,
                    "fatal {e:?} from {what} left the session open"
                );
                self.restart(false);
            }
        }
        self.drain();
    }

    fn write(&mut self, n: usize) {
        let n = n.min(self.session.transmit().len());
        self.session.transmitted(n);
    }

    /// The transport is gone (`lost`: mid-connection; otherwise after a
    /// fatal error): a new one, a new handshake.
    fn restart(&mut self, lost: bool) {
        if lost {
            let e = self.session.connection_lost();
            assert!(e.is_fatal(), "connection_lost gave non-fatal {e:?}");
            assert_eq!(self.session.state(), State::Closed);
        }
        let report = self.session.start(self.now);
        assert!(report.unsent_bytes <= self.tx_capacity);
        assert_eq!(self.session.state(), State::AwaitingStart);
        assert!(self.session.poll_event().is_none(), "events survived start");
        self.rx.clear();
        self.channels.clear();
        self.tags.clear();
    }

    /// Drains the events; a handful at most can be queued.
    fn drain(&mut self) {
        let mut n = 0;
        while let Some(event) = self.session.poll_event() {
            n += 1;
            assert!(n <= EVENT_QUEUE, "more than {EVENT_QUEUE} events queued");
            self.check_event(&event);
        }
    }

    fn check_event(&self, event: &Event) {
        let _ = format!("{event:?}");
        match event {
            Event::Connected { tune, .. } => {
                assert_eq!(self.session.state(), State::Open);
                assert_eq!(*tune, self.session.tune());
            }
            Event::ChannelOpened { channel } => {
                assert!(*channel != 0, "channel 0 opened");
            }
            Event::Confirm {
                settled, multiple, ..
            } => {
                assert!(*multiple || *settled <= 1, "one tag settled {settled}");
            }
            _ => {}
        }
    }

    /// Hands the buffered bytes to the session until it needs more.
    fn pump(&mut self) {
        let mut retried = false;
        for _ in 0..100_000 {
            let rx_len = self.rx.len();
            let result = self.session.handle_input(&self.rx, self.now);
            let used = match result {
                Ok((used, delivery)) => {
                    assert!(used <= rx_len, "used {used} of {rx_len} bytes");
                    if let Some(d) = &delivery {
                        assert!(used > 0, "a delivery from no bytes");
                        let mut total = 0u64;
                        for chunk in d.body.chunks() {
                            total += chunk.len() as u64;
                        }
                        assert_eq!(total, d.body.len(), "body chunks and length differ");
                        let _ = (d.properties, d.exchange, d.routing_key);
                        if let Some(tag) = d.delivery_tag() {
                            self.tags.push(tag);
                        }
                    }
                    let progressed = used > 0 || delivery.is_some();
                    let state = self.session.state();
                    let mut drained = 0;
                    while let Some(event) = self.session.poll_event() {
                        drained += 1;
                        assert!(drained <= EVENT_QUEUE, "more than {EVENT_QUEUE} events");
                        self.check_event(&event);
                    }
                    if !progressed {
                        if drained > 0 {
                            // A full event queue held the input back.
                            continue;
                        }
                        assert!(
                            state == State::Closed || rx_len < self.rx_capacity,
                            "stall: {rx_len} bytes fill the {}-byte receive buffer, session in {state:?} wants more",
                            self.rx_capacity,
                        );
                        if state == State::Closed {
                            self.restart(false);
                        }
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
                        self.drain();
                        self.restart(false);
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
            self.check_output();
        }
        panic!("100000 operations from one receive buffer");
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        for _ in 0..1_000 {
            if self.session.poll_timeout().is_none_or(|t| t > self.now) {
                return;
            }
            match self.session.handle_timeout(self.now) {
                Ok(()) => {
                    let next = self.session.poll_timeout();
                    assert!(
                        next.is_none_or(|t| t > self.now),
                        "handle_timeout({:?}) left the next deadline at {next:?} (state {:?}): the driver would spin",
                        self.now,
                        self.session.state()
                    );
                    self.drain();
                    self.check_output();
                    return;
                }
                Err(e) => {
                    let _ = e.to_string();
                    assert!(e.is_fatal(), "timer error {e:?} must be fatal");
                    assert_eq!(
                        self.session.state(),
                        State::Closed,
                        "timer error {e:?} left the session open"
                    );
                    assert!(
                        self.session.poll_timeout().is_none(),
                        "a closed session keeps timers"
                    );
                    self.restart(false);
                }
            }
        }
        panic!("1000 timer rounds at one instant");
    }

    fn check_output(&self) {
        let pending = self.session.transmit().len();
        assert!(
            pending <= self.tx_capacity,
            "{pending} bytes to transmit from a {}-byte buffer",
            self.tx_capacity
        );
        assert_eq!(self.session.tx_capacity(), self.tx_capacity);
        assert!(pending + self.session.tx_available() <= self.tx_capacity);
        assert!(self.rx.len() <= self.rx_capacity);
    }
}
