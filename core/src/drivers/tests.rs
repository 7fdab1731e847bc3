//! Driver tests with scripted in-memory transports and a simulated clock:
//! byte vectors in, bytes on the wire and events out, no sockets.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use embedded_io::ErrorKind;

use super::blocking::NatsClient;
use super::NatsEvent as Event;
use super::{asynch, Clock, DriverOptions, Error, Wait};
use crate::nats::{self, ConnectOptions};
use crate::time::{Duration, Instant};

mod publish_only;

const INFO: &[u8] = b"INFO {\"server_id\":\"T\",\"version\":\"2.10.0\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n";

/// A simulated clock the test (and the transport) moves forward.
#[derive(Clone, Default)]
struct SimClock(Rc<Cell<u64>>);

impl SimClock {
    fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.get())
    }
}

impl asynch::Timer for SimClock {
    /// Simulated time: jumps to the deadline at once.
    async fn sleep_until(&self, deadline: Instant) {
        if self.0.get() < deadline.as_millis() {
            self.0.set(deadline.as_millis());
        }
    }
}

/// What a read returns next.
enum Step {
    Bytes(Vec<u8>),
    Fail(ErrorKind),
    Eof,
}

/// A transport replaying `reads` and recording every byte written.
#[derive(Clone)]
struct Script {
    reads: Rc<RefCell<VecDeque<Step>>>,
    written: Rc<RefCell<Vec<u8>>>,
    /// At most this many bytes per write call (partial writes).
    write_chunk: usize,
    /// Writes return Ok(0) (a peer that takes nothing).
    write_zero: Rc<Cell<bool>>,
    clock: SimClock,
}

impl Script {
    fn new(clock: &SimClock) -> Self {
        Script {
            reads: Rc::default(),
            written: Rc::default(),
            write_chunk: usize::MAX,
            write_zero: Rc::default(),
            clock: clock.clone(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        self.reads
            .borrow_mut()
            .push_back(Step::Bytes(bytes.to_vec()));
    }

    fn push_step(&self, step: Step) {
        self.reads.borrow_mut().push_back(step);
    }

    /// Takes what was written so far.
    fn take_written(&self) -> String {
        let bytes = core::mem::take(&mut *self.written.borrow_mut());
        String::from_utf8(bytes).unwrap()
    }

    fn read_step(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut reads = self.reads.borrow_mut();
        match reads.pop_front() {
            // Nothing scripted: a silent server (100 ms read timeout).
            None => {
                self.clock.advance(100);
                Err(ErrorKind::TimedOut)
            }
            Some(Step::Fail(kind)) => Err(kind),
            Some(Step::Eof) => Ok(0),
            Some(Step::Bytes(bytes)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                if n < bytes.len() {
                    reads.push_front(Step::Bytes(bytes[n..].to_vec()));
                }
                Ok(n)
            }
        }
    }

    fn write_step(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.write_zero.get() {
            return Ok(0);
        }
        let n = buf.len().min(self.write_chunk);
        self.written.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl embedded_io::ErrorType for Script {
    type Error = ErrorKind;
}

impl embedded_io::Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.read_step(buf)
    }
}

impl embedded_io::Write for Script {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.write_step(buf)
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

type Client = NatsClient<Script, SimClock, [u8; 256], [u8; 256], 4, 2>;

fn options() -> ConnectOptions {
    let mut options = ConnectOptions {
        ping_interval: Duration::from_secs(1),
        ..ConnectOptions::default()
    };
    options.inbox_prefix.push_str("_INBOX.test").unwrap();
    options
}

fn client(driver: DriverOptions) -> (Client, Script, SimClock) {
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let client = NatsClient::new(
        script.clone(),
        clock.clone(),
        options(),
        driver,
        [0; 256],
        [0; 256],
    );
    (client, script, clock)
}

/// A client through the handshake, with the handshake bytes taken.
fn connected() -> (Client, Script, SimClock) {
    let (mut client, script, clock) = client(DriverOptions::default());
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    script.take_written();
    (client, script, clock)
}

#[test]
fn connect_writes_connect_and_ping_then_waits_for_pong() {
    let (mut client, script, _clock) = client(DriverOptions::default());
    script.push(INFO);
    script.push(b"PONG\r\n");
    let warning = client.connect().unwrap();
    // 1 MiB max_payload versus a 256-byte receive buffer.
    assert_eq!(
        warning,
        Some(nats::MaxPayloadWarning {
            max_payload: 1_048_576,
            rx_capacity: 256
        })
    );
    let wire = script.take_written();
    assert!(wire.starts_with("CONNECT {"), "{wire}");
    assert!(wire.ends_with("}\r\nPING\r\n"), "{wire}");
    assert_eq!(client.server_info().unwrap().version.as_str(), "2.10.0");
    assert_eq!(client.session().state(), nats::State::Connected);
}

#[test]
fn a_transmit_buffer_too_small_for_connect_fails_connect_with_the_size_needed() {
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let mut client: NatsClient<Script, SimClock, [u8; 256], [u8; 128], 4, 2> = NatsClient::new(
        script.clone(),
        clock.clone(),
        options(),
        DriverOptions::default(),
        [0; 256],
        [0; 128],
    );
    script.push(INFO);
    let needed = nats::required_tx_capacity(client.session().options()).unwrap();
    assert!(needed > 128);
    match client.connect() {
        Err(Error::Nats(nats::Error::TransmitBufferTooSmall {
            needed: n,
            capacity: 128,
        })) => assert_eq!(n, needed),
        other => panic!("expected TransmitBufferTooSmall, got {other:?}"),
    }
    assert_eq!(script.take_written(), "");
    assert!(matches!(
        client.publish("a", b"1"),
        Err(Error::Disconnected)
    ));
}

#[test]
fn connect_times_out_against_a_silent_peer() {
    let driver = DriverOptions {
        connect_timeout: Duration::from_millis(500),
        ..DriverOptions::default()
    };
    let (mut client, _script, _clock) = client(driver);
    let err = client.connect().unwrap_err();
    assert!(matches!(err, Error::TimedOut(Wait::Connect)), "{err:?}");
    assert!(err.is_fatal());
}

#[test]
fn publish_writes_the_command_at_once() {
    let (mut client, script, _clock) = connected();
    client.publish("telemetry.dev1.t", b"21.5").unwrap();
    assert_eq!(script.take_written(), "PUB telemetry.dev1.t 4\r\n21.5\r\n");
}

#[test]
fn publish_larger_than_the_transmit_buffer_goes_out_without_copying() {
    let (mut client, script, _clock) = connected();
    let payload = [b'z'; 300]; // the transmit buffer holds 256
    client.publish("big", &payload).unwrap();
    let wire = script.take_written();
    let expected = format!("PUB big 300\r\n{}\r\n", "z".repeat(300));
    assert_eq!(wire, expected);
}

#[test]
fn full_transmit_buffer_is_written_out_and_the_publish_retried() {
    let (mut client, script, _clock) = connected();
    // 135 bytes queued directly on the session, then a 135-byte publish:
    // together more than the 256-byte transmit buffer.
    let first = [b'a'; 120];
    client
        .session_mut()
        .publish("one", None, None, &first)
        .unwrap();
    let second = [b'b'; 120];
    client.publish("two", &second).unwrap();
    let wire = script.take_written();
    let expected = format!(
        "PUB one 120\r\n{}\r\nPUB two 120\r\n{}\r\n",
        "a".repeat(120),
        "b".repeat(120)
    );
    assert_eq!(wire, expected);
}

#[test]
fn control_line_too_long_for_the_transmit_buffer_is_a_typed_error() {
    let (mut client, script, _clock) = connected();
    let mut headers = nats::HeaderWriter::new([0u8; 512]).unwrap();
    headers.insert("Padding", &"p".repeat(300)).unwrap();
    let err = client
        .publish_with("subject", None, Some(headers.as_bytes()), b"x")
        .unwrap_err();
    assert!(!err.is_fatal());
    match err {
        Error::Nats(nats::Error::BufferFull(full)) => {
            assert_eq!(full.capacity, 256);
            assert!(full.needed > 256);
        }
        other => panic!("expected BufferFull, got {other:?}"),
    }
    assert_eq!(script.take_written(), "");
    // The connection is still usable.
    client.publish("subject", b"x").unwrap();
    assert_eq!(script.take_written(), "PUB subject 1\r\nx\r\n");
}

#[test]
fn partial_writes_are_completed() {
    let (mut client, mut script, _clock) = connected();
    script.write_chunk = 3;
    // The driver holds its own clone; make that one chunk writes too.
    *client.transport_mut() = script.clone();
    client.publish("a.b", b"hello").unwrap();
    assert_eq!(script.take_written(), "PUB a.b 5\r\nhello\r\n");
}

#[test]
fn a_message_split_across_reads_arrives_whole_and_borrowed() {
    let (mut client, script, _clock) = connected();
    let sid = client.subscribe("sensors.>").unwrap();
    assert_eq!(script.take_written(), "SUB sensors.> 1\r\n");
    script.push(b"MS");
    script.push(b"G sensors.t 1 _INBOX.x ");
    script.push(b"5\r\nhel");
    script.push(b"lo\r\n");
    let mut received = None;
    for _ in 0..10 {
        if let Some(Event::Message(m)) = client.next_event().unwrap() {
            assert_eq!(m.sid, sid);
            assert_eq!(m.subject, "sensors.t");
            assert_eq!(m.reply, Some("_INBOX.x"));
            received = Some(m.payload.to_vec());
            break;
        }
    }
    assert_eq!(received.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn read_timeout_is_no_data_yet_and_keepalive_pings_go_out() {
    let (mut client, script, clock) = connected();
    // A silent server: every read times out after 100 simulated ms.
    let start = clock.now();
    while clock.now() < start + Duration::from_millis(1100) {
        assert!(client.next_event().unwrap().is_none());
    }
    assert_eq!(script.take_written(), "PING\r\n");
    script.push(b"PONG\r\n");
    let mut pong = false;
    for _ in 0..3 {
        if let Some(Event::Pong { .. }) = client.next_event().unwrap() {
            pong = true;
        }
    }
    assert!(pong, "the keepalive PONG is reported");
}

#[test]
fn unanswered_keepalives_make_a_stale_connection() {
    let (mut client, _script, _clock) = connected();
    let err = loop {
        match client.next_event() {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            Error::Nats(nats::Error::StaleConnection {
                pings_outstanding: 2
            })
        ),
        "{err:?}"
    );
    assert!(err.is_fatal());
    assert!(matches!(client.next_event(), Err(Error::Disconnected)));
}

#[test]
fn server_ping_is_answered_with_pong() {
    let (mut client, script, _clock) = connected();
    script.push(b"PING\r\n");
    assert!(client.next_event().unwrap().is_none());
    assert_eq!(script.take_written(), "PONG\r\n");
}

#[test]
fn eof_is_connection_closed_then_disconnected() {
    let (mut client, script, _clock) = connected();
    script.push_step(Step::Eof);
    let err = client.next_event().unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed), "{err:?}");
    assert!(matches!(
        client.publish("a", b"b"),
        Err(Error::Disconnected)
    ));
}

#[test]
fn transport_errors_keep_their_kind() {
    let (mut client, script, _clock) = connected();
    script.push_step(Step::Fail(ErrorKind::ConnectionReset));
    let err = client.next_event().unwrap_err();
    assert_eq!(err.transport_kind(), Some(ErrorKind::ConnectionReset));
    assert!(err.is_fatal());
}

#[test]
fn a_write_that_takes_nothing_is_an_error_not_a_panic() {
    let (mut client, script, _clock) = connected();
    script.write_zero.set(true);
    let err = client.publish("a", b"b").unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed), "{err:?}");
}

#[test]
fn a_frame_that_stops_arriving_is_stalled() {
    let driver = DriverOptions {
        stall_timeout: Duration::from_millis(300),
        ..DriverOptions::default()
    };
    let (mut client, script, _clock) = client(driver);
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    script.push(b"MSG a 1 10\r\nabc");
    let err = loop {
        match client.next_event() {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match err {
        Error::Stalled { buffered, waited } => {
            assert_eq!(buffered, 15);
            assert!(waited >= Duration::from_millis(300));
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
}

#[test]
fn garbage_is_a_protocol_error() {
    let (mut client, script, _clock) = connected();
    script.push(b"\xff\xfe garbage\r\n");
    let err = client.next_event().unwrap_err();
    assert!(
        matches!(err, Error::Nats(nats::Error::Protocol(_))),
        "{err:?}"
    );
    let text = format!("{err}");
    assert!(text.contains("protocol error"), "{text}");
}

#[test]
fn flush_hands_other_events_to_the_callback() {
    let (mut client, script, _clock) = connected();
    client.subscribe("x").unwrap();
    script.take_written();
    script.push(b"MSG x 1 2\r\nhi\r\nPONG\r\n");
    let mut seen = Vec::new();
    client
        .flush(Duration::from_secs(1), |e| {
            if let Event::Message(m) = e {
                seen.push(m.payload.to_vec());
            }
        })
        .unwrap();
    assert_eq!(script.take_written(), "PING\r\n");
    assert_eq!(seen, [b"hi".to_vec()]);
}

#[test]
fn flush_without_pong_times_out() {
    let (mut client, _script, _clock) = connected();
    let err = client
        .flush(Duration::from_millis(500), |_| {})
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut(Wait::Flush)), "{err:?}");
    assert!(!err.is_fatal());
}

/// The reply subject of the request published to `subject` and the sid
/// of the inbox subscription, as written on the wire.
fn inbox_of(wire: &str, subject: &str) -> (String, String) {
    let reply = wire
        .lines()
        .find(|l| l.starts_with(&format!("PUB {subject} ")))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap_or_else(|| panic!("no PUB {subject} in {wire}"));
    let sid = wire
        .lines()
        .find(|l| l.starts_with("SUB _INBOX.test."))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap_or_else(|| panic!("no inbox SUB in {wire}"));
    (reply.into(), sid.into())
}

#[test]
fn a_request_reply_arrives_as_a_reply_event() {
    let (mut client, script, _clock) = connected();
    let id = client
        .start_request("svc.echo", None, b"ping", Duration::from_secs(1))
        .unwrap();
    let (inbox, sid) = inbox_of(&script.take_written(), "svc.echo");
    script.push(format!("MSG {inbox} {sid} 4\r\npong\r\n").as_bytes());
    let mut reply = None;
    for _ in 0..10 {
        if let Some(Event::Reply { request, message }) = client.next_event().unwrap() {
            assert_eq!(request, id);
            reply = Some(message.payload.to_vec());
            break;
        }
    }
    assert_eq!(reply.as_deref(), Some(&b"pong"[..]));
}

#[test]
fn a_503_status_reply_is_no_responders() {
    let (mut client, script, _clock) = connected();
    let id = client
        .start_request("svc.none", None, b"?", Duration::from_secs(1))
        .unwrap();
    let (inbox, sid) = inbox_of(&script.take_written(), "svc.none");
    let status = "NATS/1.0 503\r\n\r\n";
    let frame = format!(
        "HMSG {inbox} {sid} {len} {len}\r\n{status}\r\n",
        len = status.len()
    );
    script.push(frame.as_bytes());
    let mut answered = None;
    for _ in 0..10 {
        if let Some(Event::NoResponders { request }) = client.next_event().unwrap() {
            answered = Some(request);
            break;
        }
    }
    assert_eq!(answered, Some(id));
}

#[test]
fn request_that_nobody_answers_times_out() {
    let (mut client, _script, _clock) = connected();
    let err = client
        .request("svc.slow", b"?", Duration::from_millis(500), |_| (), |_| {})
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut(Wait::Request)), "{err:?}");
}

#[test]
fn auto_unsubscribe_done_is_reported_without_more_input() {
    let (mut client, script, _clock) = connected();
    let sid = client.subscribe("n").unwrap();
    client.unsubscribe_after(sid, 2).unwrap();
    assert_eq!(script.take_written(), "SUB n 1\r\nUNSUB 1 2\r\n");
    script.push(b"MSG n 1 1\r\na\r\nMSG n 1 1\r\nb\r\n");
    let mut messages = 0;
    let mut done = false;
    for _ in 0..6 {
        match client.next_event().unwrap() {
            Some(Event::Message(_)) => messages += 1,
            Some(Event::SubscriptionDone { sid: ended }) => {
                assert_eq!(ended, sid);
                done = true;
                break;
            }
            _ => {}
        }
    }
    assert_eq!(messages, 2);
    assert!(done);
}

#[test]
fn reconnect_resends_subscriptions_on_the_new_transport() {
    let (mut client, script, clock) = connected();
    client.subscribe("keep.me").unwrap();
    script.take_written();
    script.push_step(Step::Eof);
    assert!(client.next_event().is_err());

    let fresh = Script::new(&clock);
    fresh.push(INFO);
    fresh.push(b"PONG\r\n");
    client.reconnect(fresh.clone()).unwrap();
    let wire = fresh.take_written();
    assert!(wire.starts_with("CONNECT {"), "{wire}");
    assert!(wire.contains("SUB keep.me 1\r\n"), "{wire}");
    client.publish("after", b"1").unwrap();
    assert!(fresh.take_written().ends_with("PUB after 1\r\n1\r\n"));
}

#[test]
fn reset_then_connect_reuses_the_same_transport_object() {
    let (mut client, script, _clock) = connected();
    client.subscribe("in.place").unwrap();
    script.take_written();
    script.push_step(Step::Eof);
    assert!(client.next_event().unwrap_err().is_fatal());

    // The application re-opened the socket in place; the client starts over.
    client.reset();
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    let wire = script.take_written();
    assert!(wire.starts_with("CONNECT {"), "{wire}");
    assert!(wire.contains("SUB in.place 1\r\n"), "{wire}");
}

// ---- the async driver, polled by hand (no executor needed) ----

/// The same script as an async transport: reads with nothing scripted
/// stay pending (a silent server), so only a deadline ends them.
struct AsyncScript(Script);

impl embedded_io_async::ErrorType for AsyncScript {
    type Error = ErrorKind;
}

impl embedded_io_async::Read for AsyncScript {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.0.reads.borrow().is_empty() {
            core::future::pending::<()>().await;
        }
        self.0.read_step(buf)
    }
}

impl embedded_io_async::Write for AsyncScript {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.0.write_step(buf)
    }
    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Runs a future to completion; every await here completes or gives way
/// to the simulated timer within a few polls.
fn block_on<F: core::future::Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    for _ in 0..10_000 {
        if let core::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete");
}

type AsyncClient = asynch::NatsClient<AsyncScript, SimClock, [u8; 256], [u8; 256], 4, 2>;

/// An async client through the handshake (what it wrote is left to read).
fn async_connected() -> (AsyncClient, Script, SimClock) {
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let mut client = asynch::NatsClient::new(
        AsyncScript(script.clone()),
        clock.clone(),
        options(),
        DriverOptions::default(),
        [0u8; 256],
        [0u8; 256],
    );
    script.push(INFO);
    script.push(b"PONG\r\n");
    block_on(client.connect()).unwrap();
    (client, script, clock)
}

#[test]
fn async_driver_handshakes_publishes_and_receives() {
    let (mut client, script, _clock) = async_connected();
    assert!(script.take_written().ends_with("PING\r\n"));

    let sid = block_on(client.subscribe("a.*")).unwrap();
    block_on(client.publish("a.b", b"hi")).unwrap();
    assert_eq!(script.take_written(), "SUB a.* 1\r\nPUB a.b 2\r\nhi\r\n");

    script.push(b"MSG a.b 1 2\r\nhi\r\n");
    let got = block_on(async {
        loop {
            if let Some(Event::Message(m)) = client.next_event().await.unwrap() {
                break (m.sid, m.payload.to_vec());
            }
        }
    });
    assert_eq!(got, (sid, b"hi".to_vec()));
}

#[test]
fn async_driver_gives_way_to_the_keepalive_timer() {
    let (mut client, script, clock) = async_connected();
    script.take_written();

    // Nothing to read: the read stays pending, the timer wins at the
    // keepalive deadline (1 s), the next call sends the PING.
    assert!(block_on(client.next_event()).unwrap().is_none());
    assert!(clock.now() >= Instant::from_millis(1000));
    assert!(block_on(client.next_event()).unwrap().is_none());
    assert_eq!(script.take_written(), "PING\r\n");

    let err = block_on(client.flush(Duration::from_millis(200), |_| {})).unwrap_err();
    assert!(matches!(err, Error::TimedOut(Wait::Flush)), "{err:?}");
}

#[test]
fn a_lean_publish_only_client_is_much_smaller() {
    type Full = NatsClient<Script, SimClock, [u8; 2048], [u8; 2048], 1, 1>;
    type Lean = NatsClient<Script, SimClock, [u8; 2048], [u8; 2048], 1, 1, nats::EssentialInfo>;
    let (full, lean) = (core::mem::size_of::<Full>(), core::mem::size_of::<Lean>());
    std::println!(
        "blocking client with two 2 KiB buffers: {full} bytes; with EssentialInfo: {lean}"
    );
    assert!(lean + 1000 < full, "{lean} vs {full}");
    // The lean one connects and publishes like the other.
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let mut client: Lean = NatsClient::new(
        script.clone(),
        clock.clone(),
        options(),
        DriverOptions::default(),
        [0; 2048],
        [0; 2048],
    );
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    assert_eq!(client.server_info().unwrap().max_payload, 1_048_576);
    script.take_written();
    client.publish("t", b"1").unwrap();
    assert_eq!(script.take_written(), "PUB t 1\r\n1\r\n");
}

/// Renders what `next_event` hands out until it has nothing more.
fn drain_events(client: &mut Client) -> Vec<String> {
    let mut log = Vec::new();
    for _ in 0..10 {
        match client.next_event().unwrap() {
            Some(Event::Message(m)) => log.push(format!(
                "message {}",
                core::str::from_utf8(m.payload).unwrap()
            )),
            Some(other) => log.push(format!("{other:?}")),
            None => {}
        }
    }
    log
}

#[test]
fn drain_subscription_delivers_until_the_pong_then_ends() {
    let (mut client, script, _clock) = connected();
    let sid = client.subscribe("d").unwrap();
    client.drain_subscription(sid).unwrap();
    assert_eq!(script.take_written(), "SUB d 1\r\nUNSUB 1\r\nPING\r\n");
    script.push(b"MSG d 1 1\r\na\r\nPONG\r\nMSG d 1 1\r\nb\r\n");
    let log = drain_events(&mut client);
    assert_eq!(
        log,
        [
            String::from("message a"),
            format!(
                "{:?}",
                Event::Pong {
                    ping: nats::PingId(2)
                }
            ),
            format!("{:?}", Event::SubscriptionDone { sid }),
        ]
    );
    assert_eq!(client.session().stats().dropped_unknown_sid, 1);
}

#[test]
fn async_driver_drains_a_subscription() {
    let (mut client, script, _clock) = async_connected();
    let sid = block_on(client.subscribe("d")).unwrap();
    script.take_written();
    block_on(client.drain_subscription(sid)).unwrap();
    assert_eq!(script.take_written(), "UNSUB 1\r\nPING\r\n");
    script.push(b"MSG d 1 1\r\na\r\nPONG\r\n");
    let (messages, done) = block_on(async {
        let mut messages = 0;
        loop {
            match client.next_event().await.unwrap() {
                Some(Event::Message(_)) => messages += 1,
                Some(Event::SubscriptionDone { sid }) => break (messages, sid),
                _ => {}
            }
        }
    });
    assert_eq!((messages, done), (1, sid));
}

#[test]
fn a_client_from_a_config_with_default_table_sizes() {
    use super::{Buffers, Config};
    // SUBS and REQS default (4 and 2): a firmware author names only the
    // transport, the clock and the buffers.
    type Device = NatsClient<Script, SimClock, [u8; 2048], [u8; 1024]>;
    let clock = SimClock::default();
    let script = Script::new(&clock);
    let config = Config::new(Buffers::new([0u8; 2048], [0u8; 1024]))
        .client_name("edge-1")
        .unwrap()
        .token("s3cret")
        .unwrap()
        .connect_timeout(Duration::from_millis(500));
    let mut client: Device = NatsClient::with_config(script.clone(), clock.clone(), config);
    script.push(INFO);
    script.push(b"PONG\r\n");
    client.connect().unwrap();
    let connect = script.take_written();
    assert!(connect.contains(r#""name":"edge-1""#), "{connect}");
    assert!(connect.contains(r#""auth_token":"s3cret""#), "{connect}");
    // rx_capacity comes from the receive buffer, as with `new`.
    assert_eq!(client.session().options().rx_capacity, 2048);
    for _ in 0..4 {
        client.subscribe("a").unwrap();
    }
    assert!(matches!(
        client.subscribe("b"),
        Err(Error::Nats(nats::Error::SubscriptionTableFull {
            capacity: 4
        }))
    ));
}
