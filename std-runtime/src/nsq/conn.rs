//! One nsqd connection: socket (io_uring or epoll), stream layers (TLS,
//! compression) and the core [`Session`], driven by a reader, a writer and
//! a heartbeat timer running side by side in one task.
//!
//! Commands (FIN, RDY, PUB...) are written into the session's transmit
//! buffer, passed through the layers into `out` at once, and the writer
//! sends `out` as one write per wake-up, so many commands batch into one
//! syscall / submission.
//!
//! With no layer active (plaintext, no compression) the layers would only
//! copy: then the bytes are written straight from the session's transmit
//! buffer with a non-blocking write (the direct write below, and the
//! writer on a readiness socket), and only what the socket does not take
//! at once is copied into `out` for an awaited write. An MPUB of 200 KiB
//! is then copied once (into the session), not twice.
//!
//! The exception is a command somebody waits on alone (a PUB with nothing
//! else in flight): [`Conn::with_session_now`] writes it from the caller's
//! task when the writer is idle, one non-blocking `send(2)`, which on a
//! latency-bound publish loop saves the writer's wake-up and, on io_uring,
//! a write submission and its completion per round trip.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use courier_core::nsq::{
    CommandError, ConnId, Event, Identify, Message, Options, Session, SessionError,
};

use super::config::{host_name, Compression, Config};
use super::Error;
use crate::layers::{Codec, Stack, TlsLayer};
use crate::session_io::{retry_after_flush, Clock, Inbound, Wakeups};
use crate::transport::{self, ReadHalf, WriteHalf};

/// Pending command bytes that are encoded through the layers at once
/// instead of waiting for the writer.
const FLUSH_THRESHOLD: usize = 256 * 1024;

/// nsqd's `--max-rdy-count` default: the RDY limit assumed when nsqd did not
/// announce one (feature negotiation off).
pub(crate) const NSQD_DEFAULT_MAX_RDY_COUNT: u32 = 2500;

/// Commands that may await nsqd's answer at once on one connection.
pub(crate) const PENDING: usize = 1024;

pub(crate) type CoreSession = Session<Vec<u8>, PENDING>;

/// Which nsqd a connection talks to and what for (given to callbacks).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The consumer-wide connection id (also used by the RDY controller).
    pub id: ConnId,
    /// `host:port` as given or discovered.
    pub addr: String,
    /// The subscribed topic (consumer connections).
    pub topic: Option<String>,
    /// The subscribed channel (consumer connections).
    pub channel: Option<String>,
}

/// What a connection reports to its owner (producer or consumer).
pub(crate) trait Sink {
    /// A message; its body borrows the receive buffer.
    fn on_message(&self, conn: &Rc<Conn>, message: Message<'_>) -> Result<(), Error> {
        let _ = (conn, message);
        Ok(())
    }
    /// An event other than the handshake steps the connection handles.
    fn on_event(&self, conn: &Rc<Conn>, event: Event) -> Result<(), Error>;
}

struct State {
    session: CoreSession,
    stack: Stack,
    out: Vec<u8>,
}

impl State {
    /// Moves the session's pending commands through the layers into `out`.
    fn flush_session(&mut self) -> Result<(), Error> {
        let State {
            session,
            stack,
            out,
        } = self;
        let pending = session.transmit();
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len();
        stack.encode(pending, out)?;
        session.transmitted(n);
        Ok(())
    }

    /// True when bytes may go to the socket straight from the session's
    /// transmit buffer: no layer to pass them through, nothing queued
    /// before them in `out`.
    fn direct(&self) -> bool {
        self.stack.is_passthrough() && self.out.is_empty()
    }

    /// One non-blocking write of the session's pending bytes straight from
    /// its transmit buffer (only when [`State::direct`]); what the socket
    /// does not take stays pending, in order. Returns true when nothing is
    /// left pending. `WouldBlock` is not an error (the caller falls back to
    /// the awaited write); other errors are.
    fn write_direct(&mut self, write: &mut WriteHalf) -> std::io::Result<bool> {
        debug_assert!(self.direct());
        let pending = self.session.transmit();
        if pending.is_empty() {
            return Ok(true);
        }
        match write.try_write_now(pending) {
            Ok(n) => {
                self.session.transmitted(n);
                Ok(self.session.transmit().is_empty())
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Hands the commands the session queued while reading (answers to
    /// heartbeats, FIN/RDY of a handler) on to the writer. With no layer
    /// they stay in the session's buffer, where the writer finds them
    /// without a copy, unless that buffer is filling up.
    fn hand_over(&mut self) -> Result<(), Error> {
        if self.stack.is_passthrough() && self.session.transmit().len() < FLUSH_THRESHOLD {
            return Ok(());
        }
        self.flush_session()
    }
}

/// A live nsqd connection shared by its driver and its owner.
pub(crate) struct Conn {
    pub(crate) info: ConnInfo,
    host: String,
    config: Rc<Config>,
    /// The owner's clock (shared with the consumer's RDY controller).
    clock: Clock,
    state: RefCell<State>,
    /// The sending half while no write is in flight; the writer takes it
    /// for each write, so `Some` means "idle: a direct write may go now".
    writer: RefCell<Option<WriteHalf>>,
    wake: Wakeups,
    /// Close requested: the writer exits once `out` is flushed.
    shutting_down: Cell<bool>,
    ended: Cell<bool>,
    /// nsqd answered IDENTIFY: from then on the peer is known to be nsqd.
    identified: Cell<bool>,
    /// The writer writes straight from the session's buffer (readiness
    /// sockets: a non-blocking `send` is the write itself there; on
    /// io_uring the writer keeps its batched submissions).
    writer_direct: Cell<bool>,
}

impl Conn {
    /// Runs `f` on the session and wakes the writer.
    ///
    /// The command stays in the session's transmit buffer until the writer
    /// runs (or [`FLUSH_THRESHOLD`] bytes are pending), so the FINs, RDYs and
    /// publishes of one scheduling round go through the layers together:
    /// one snappy chunk, one DEFLATE sync flush, one TLS record instead of
    /// one per command.
    pub(crate) fn with_session<R>(
        &self,
        f: impl FnMut(&mut CoreSession) -> Result<R, SessionError>,
    ) -> Result<R, Error> {
        let r = self.with_session_quiet(f)?;
        self.wake.wake_writer();
        Ok(r)
    }

    /// Runs `f` on the session without waking the writer.
    fn with_session_quiet<R>(
        &self,
        mut f: impl FnMut(&mut CoreSession) -> Result<R, SessionError>,
    ) -> Result<R, Error> {
        if self.ended.get() {
            return Err(Error::Disconnected);
        }
        let mut st = self.state.borrow_mut();
        // Make room by moving what is pending on, then retry once.
        let r = retry_after_flush(
            &mut *st,
            |st| f(&mut st.session),
            |e, st| {
                matches!(e, SessionError::Command(CommandError::Capacity(_)))
                    && !st.session.transmit().is_empty()
            },
            State::flush_session,
        )?;
        if st.session.transmit().len() >= FLUSH_THRESHOLD {
            st.flush_session()?;
        }
        Ok(r)
    }

    /// Like [`Conn::with_session`], then writes what is pending at once from
    /// this task when the writer is idle (nothing queued in `out`, no write
    /// in flight): one non-blocking write instead of waking the writer task.
    /// Whatever the kernel does not take right away is left to the writer,
    /// in order. For commands the caller then waits on alone; commands
    /// issued in bursts batch better through [`Conn::with_session`].
    pub(crate) fn with_session_now<R>(
        &self,
        f: impl FnMut(&mut CoreSession) -> Result<R, SessionError>,
    ) -> Result<R, Error> {
        let r = self.with_session_quiet(f)?;
        if !self.transmit_now() {
            self.wake.wake_writer();
        }
        Ok(r)
    }

    /// Writes the pending commands through the idle writer; false when the
    /// writer has to run (busy, bytes left over, or an error it will see).
    fn transmit_now(&self) -> bool {
        let Ok(mut slot) = self.writer.try_borrow_mut() else {
            return false;
        };
        let Some(write) = slot.as_mut() else {
            return false;
        };
        let mut st = self.state.borrow_mut();
        if st.direct() {
            // No layer: no copy into `out` either.
            return st.write_direct(write).unwrap_or(false);
        }
        if !st.out.is_empty() || st.flush_session().is_err() {
            return false;
        }
        if st.out.is_empty() {
            return true;
        }
        match write.try_write_now(&st.out) {
            Ok(n) if n == st.out.len() => {
                st.out.clear();
                true
            }
            Ok(n) => {
                st.out.drain(..n);
                false
            }
            // WouldBlock: the writer waits for room; other errors: the
            // writer's next write reports them and ends the connection.
            Err(_) => false,
        }
    }

    /// The negotiated `max_rdy_count` ([`NSQD_DEFAULT_MAX_RDY_COUNT`] if
    /// unknown).
    pub(crate) fn max_rdy(&self) -> u32 {
        self.state
            .borrow()
            .session
            .negotiated()
            .map(|n| n.max_rdy_count.clamp(0, u32::MAX as i64) as u32)
            .unwrap_or(NSQD_DEFAULT_MAX_RDY_COUNT)
    }

    /// The settings nsqd negotiated in IDENTIFY.
    pub(crate) fn negotiated(&self) -> Option<courier_core::nsq::IdentifyResponse> {
        self.state.borrow().session.negotiated().cloned()
    }

    fn offers_tls(&self) -> bool {
        self.state
            .borrow()
            .session
            .negotiated()
            .is_some_and(|n| n.tls_v1)
    }

    /// True once the driver stopped (socket closed or failed).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.get()
    }

    /// Flushes what is queued, then closes the socket and ends the driver.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.set(true);
        self.wake.wake_writer();
    }
}

/// Parses `host:port` into the host (for TLS names) and socket addresses.
pub(crate) async fn resolve(addr: &str) -> Result<(String, Vec<SocketAddr>), Error> {
    let invalid = |reason: &str| Error::InvalidAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    port.parse::<u16>().map_err(|_| invalid("bad port"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| invalid(&e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(invalid("resolves to no address"));
    }
    Ok((host, addrs))
}

/// Connects to `addr` and writes the magic and IDENTIFY. The handshake
/// completes inside [`drive`] ([`Event::Ready`] reaches the sink).
///
/// `round_trips`: the connection mostly waits for one answer at a time (a
/// producer), so it runs on readiness (epoll) even on an io_uring runtime
/// (see [`transport::connect_readiness`]).
pub(crate) async fn open(
    info: ConnInfo,
    config: Rc<Config>,
    clock: Clock,
    round_trips: bool,
) -> Result<(Rc<Conn>, ReadHalf, WriteHalf), Error> {
    let (host, addrs) = resolve(&info.addr).await?;
    let mut last = None;
    let mut halves = None;
    for a in addrs {
        let connect = async {
            if round_trips {
                transport::connect_readiness(a).await
            } else {
                transport::connect(a).await
            }
        };
        match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(h)) => {
                halves = Some(h);
                break;
            }
            Ok(Err(e)) => last = Some(Error::Io(e)),
            Err(_) => {
                last = Some(Error::TimedOut {
                    operation: "connect",
                    after: config.connect_timeout,
                })
            }
        }
    }
    let Some((read, write)) = halves else {
        return Err(last.unwrap_or(Error::NoNodes));
    };
    let hostname = config.hostname.clone().unwrap_or_else(host_name);
    let client_id = config.client_id.clone().unwrap_or_else(|| hostname.clone());
    let (snappy, deflate, deflate_level) = match config.compression {
        Compression::None => (false, false, None),
        Compression::Snappy => (true, false, None),
        Compression::Deflate { level } => (false, true, Some(level.clamp(1, 9))),
    };
    let identify = Identify {
        client_id: Some(&client_id),
        hostname: Some(&hostname),
        user_agent: Some(&config.user_agent),
        feature_negotiation: true,
        heartbeat_interval: config.heartbeat_interval.map(|d| d.as_millis() as i64),
        tls_v1: config.tls.is_some(),
        snappy,
        deflate,
        deflate_level,
        sample_rate: config.sample_rate,
        msg_timeout: config.msg_timeout.map(|d| d.as_millis() as u32),
        ..Identify::default()
    };
    let mut session = CoreSession::new(
        Options::new(config.max_frame_size),
        vec![0; config.max_command_size],
    );
    session.start(&identify, clock.now())?;
    let mut state = State {
        session,
        stack: Stack::new(),
        out: Vec::with_capacity(64 * 1024),
    };
    state.flush_session()?;
    let conn = Rc::new(Conn {
        info,
        host,
        config,
        clock,
        state: RefCell::new(state),
        writer: RefCell::new(None),
        wake: Wakeups::new(),
        shutting_down: Cell::new(false),
        ended: Cell::new(false),
        identified: Cell::new(false),
        writer_direct: Cell::new(false),
    });
    conn.wake.wake_writer();
    Ok((conn, read, write))
}

/// Runs the connection until it fails or [`Conn::shutdown`] flushed and
/// closed it (`Ok`).
pub(crate) async fn drive<S: Sink>(
    conn: Rc<Conn>,
    read: ReadHalf,
    write: WriteHalf,
    sink: &S,
) -> Result<(), Error> {
    conn.writer_direct
        .set(matches!(read.backend(), crate::runtime::Backend::Epoll));
    conn.writer.replace(Some(write));
    let result = {
        let reader = read_loop(&conn, read, sink);
        let writer = write_loop(&conn);
        let timer = heartbeat_loop(&conn);
        tokio::select! {
            r = reader => r,
            r = writer => r,
            r = timer => r,
        }
    };
    conn.ended.set(true);
    result
}

async fn heartbeat_loop(conn: &Conn) -> Result<(), Error> {
    loop {
        let deadline = conn.state.borrow().session.poll_timeout();
        conn.clock.sleep_until(deadline).await;
        conn.state
            .borrow_mut()
            .session
            .handle_timeout(conn.clock.now())?;
    }
}

async fn write_loop(conn: &Conn) -> Result<(), Error> {
    let mut spare: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        if conn.writer_direct.get() && conn.state.borrow().direct() {
            let mut slot = conn.writer.borrow_mut();
            let Some(write) = slot.as_mut() else {
                return Err(Error::Disconnected);
            };
            // What the socket does not take now is copied below and
            // awaited.
            conn.state.borrow_mut().write_direct(write)?;
        }
        let idle = {
            let mut st = conn.state.borrow_mut();
            st.flush_session()?;
            let idle = st.out.is_empty();
            if !idle {
                std::mem::swap(&mut st.out, &mut spare);
            }
            idle
        };
        if idle {
            if conn.shutting_down.get() {
                if let Some(write) = conn.writer.borrow_mut().as_mut() {
                    let _ = write.shutdown();
                }
                return Ok(());
            }
            conn.wake.writer_woken().await;
            continue;
        }
        // Taken for the write, so a direct write cannot interleave.
        let Some(mut write) = conn.writer.borrow_mut().take() else {
            return Err(Error::Disconnected);
        };
        let (res, mut buf) = write.write_all(spare).await;
        conn.writer.replace(Some(write));
        buf.clear();
        spare = buf;
        res?;
    }
}

async fn read_loop<S: Sink>(conn: &Rc<Conn>, mut read: ReadHalf, sink: &S) -> Result<(), Error> {
    let mut inbound = Inbound::new(conn.config.max_frame_size);
    loop {
        let n = read.read(inbound.wire()).await?;
        if n == 0 {
            if conn.shutting_down.get() {
                return Ok(());
            }
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "nsqd closed the connection",
            )));
        }
        process(conn, &mut inbound, sink)?;
    }
}

/// A session error before nsqd answered IDENTIFY means the peer is not
/// nsqd at all (its HTTP port answers `HTTP/1.1 400`, which reads as a
/// 1.2 GB frame): say that instead of the frame error. nsqd's own errors
/// (`E_BAD_BODY`...) stay what they are.
fn handshake_error(conn: &Conn, input: &[u8], error: SessionError) -> Error {
    if conn.identified.get() || matches!(error, SessionError::Server(_)) {
        return error.into();
    }
    let detail = if input.starts_with(b"HTTP/") {
        "it answered with HTTP".to_string()
    } else {
        let shown: String = String::from_utf8_lossy(&input[..input.len().min(24)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        format!("it sent {shown:?}: {error}")
    };
    Error::NotNsqd {
        addr: conn.info.addr.clone(),
        detail,
    }
}

/// Reads every whole frame `inbound` holds: messages to the sink as they
/// come, then the owned events each frame made (handshake steps handled
/// here, the rest to the sink), and moves the answers on to the writer.
fn process<S: Sink>(conn: &Rc<Conn>, inbound: &mut Inbound, sink: &S) -> Result<(), Error> {
    loop {
        {
            let mut st = conn.state.borrow_mut();
            let st = &mut *st;
            if !st.stack.is_passthrough() {
                let (stack, out) = (&mut st.stack, &mut st.out);
                if inbound.decode(|wire, plain| stack.decode(wire, plain, out))? {
                    // The layers may have answered (TLS): send it.
                    conn.wake.wake_writer();
                }
            }
        }
        let input: &[u8] = inbound.data();
        let handled = conn
            .state
            .borrow_mut()
            .session
            .handle_input(input, conn.clock.now());
        let (consumed, message) = match handled {
            Ok(r) => r,
            Err(e) => return Err(handshake_error(conn, input, e)),
        };
        let got_message = message.is_some();
        if let Some(m) = message {
            sink.on_message(conn, m)?;
        }
        inbound.consume(consumed);
        let events = on_events(conn, inbound, sink)?;
        conn.state.borrow_mut().hand_over()?;
        conn.wake.wake_writer();
        if consumed == 0 && !got_message && events == 0 {
            return Ok(());
        }
    }
}

/// Polls the session's events: acts on the handshake steps (TLS,
/// compression, AUTH) before another byte is parsed, hands the rest to the
/// sink. Returns how many there were.
fn on_events<S: Sink>(conn: &Rc<Conn>, inbound: &mut Inbound, sink: &S) -> Result<usize, Error> {
    let mut count = 0;
    loop {
        let Some(event) = conn.state.borrow_mut().session.poll_event() else {
            return Ok(count);
        };
        count += 1;
        match event {
            Event::Identified => {
                conn.identified.set(true);
                if conn.config.tls.is_some() && !conn.offers_tls() {
                    // Never fall back to plaintext when TLS was asked for.
                    return Err(Error::Config(format!(
                        "TLS is configured but nsqd {} does not offer it (start nsqd with \
                         --tls-cert/--tls-key); refusing to continue in plaintext",
                        conn.info.addr
                    )));
                }
                sink.on_event(conn, Event::Identified)?;
            }
            Event::StartTls => {
                let tls = conn.config.tls.as_ref().ok_or_else(|| {
                    Error::Config("nsqd agreed to TLS that was not asked for".into())
                })?;
                let layer = TlsLayer::new(tls.build()?, tls.name_for(&conn.host)?)?;
                let mut st = conn.state.borrow_mut();
                let st = &mut *st;
                st.stack.start_tls(layer, &mut st.out);
            }
            Event::StartCompression(c) => {
                let codec = match c {
                    courier_core::nsq::Compression::Snappy => Codec::snappy(),
                    courier_core::nsq::Compression::Deflate { level } => {
                        Codec::deflate(level.clamp(1, 9))
                    }
                };
                let mut st = conn.state.borrow_mut();
                st.stack.start_compression(codec);
                if inbound.is_layered() {
                    // Decrypted bytes after the OK are already compressed.
                    let stack = &mut st.stack;
                    inbound.redecode(|rest, plain| stack.decode_decrypted(rest, plain))?;
                }
            }
            Event::AuthRequired => {
                let secret = conn
                    .config
                    .auth_secret
                    .as_ref()
                    .ok_or(Error::AuthRequired)?;
                conn.state.borrow_mut().session.auth(secret)?;
            }
            other => sink.on_event(conn, other)?,
        }
    }
}
