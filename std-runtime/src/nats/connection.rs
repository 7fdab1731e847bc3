//! The connection task: owns the socket, the receive buffer and the write
//! buffer; drives the core session; reconnects with jittered exponential
//! backoff over every known server.
//!
//! Per connection, a reader and a writer run side by side in one task. Reads
//! and writes are always awaited to completion (io_uring owns the buffer
//! while an operation is in flight); only a lost connection or `close`
//! drops them.
//!
//! What reaches the server: the writer copies the session's pending bytes,
//! writes them, and then reports them transmitted. A write that fails, or
//! is dropped because the reader saw the connection end first, may have put
//! any prefix of its bytes on the wire: they count as written all the same
//! (unconfirmed, reported in `Event::Disconnected`, resent only with
//! `resend_unconfirmed`), never queued again for the next connection, so
//! core NATS stays at-most-once without duplicates (see the module docs of
//! `nats`).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use courier_core::nats::{Error as CoreError, State};
use tokio::sync::oneshot;

use super::inbound::{drain_events, process_input, Processed};
use super::options::Event;
use super::shared::{apply_credentials, ConnectionState, Inner, Lifecycle, Shared};
use super::tls::{self, NatsTls};
use super::unconfirmed::{confirmation_point, resend};
use super::url::ServerAddr;
use super::Error;
use crate::reconnect::{Backoff, BackoffPolicy};
use crate::session_io::Inbound;
use crate::transport::{self, ReadHalf, WriteHalf};

/// How one connection ended.
enum Ended {
    /// `close` or every client handle dropped.
    Closed,
    /// Failed before or after the handshake.
    Failed { error: Error, was_connected: bool },
}

pub(crate) async fn run(inner: Rc<Inner>, first: oneshot::Sender<Result<(), Error>>) {
    let (rx_size, tx_size) = {
        let sh = inner.shared.borrow();
        // Pending bytes can reach the whole transmit buffer (publishes
        // buffered during an outage), so size the write copy for that once.
        (
            sh.options.receive_buffer_size,
            sh.options.transmit_buffer_size + sh.options.reconnect_buffer_size,
        )
    };
    let mut rx = Inbound::new(rx_size);
    let mut wbuf: Vec<u8> = Vec::with_capacity(tx_size);
    let mut first = Some(first);
    let mut failures = Vec::new();
    let mut backoff = {
        let o = &inner.shared.borrow().options;
        Backoff::new(
            BackoffPolicy::new(o.reconnect_delay_min, o.reconnect_delay_max)
                .healthy_after(o.reconnect_healthy_after)
                .max_attempts(o.max_reconnects),
        )
    };
    let mut round = 0usize;
    let mut ever_connected = false;
    // Servers that refused the credentials (reported once each).
    let mut refused_by = Vec::new();

    'outer: loop {
        let servers = inner.shared.borrow().servers.known.clone();
        for server in servers {
            if inner.shared.borrow().close_requested {
                break 'outer;
            }
            let started = std::time::Instant::now();
            let ended = connect_once(
                &inner,
                &server,
                &mut rx,
                &mut wbuf,
                &mut first,
                ever_connected,
            )
            .await;
            match ended {
                Ended::Closed => break 'outer,
                Ended::Failed {
                    error,
                    was_connected,
                } => {
                    lost(&inner, &server, &error, was_connected);
                    super::auth::report_refusal(&inner, &mut refused_by, &server, &error);
                    if was_connected {
                        ever_connected = true;
                        failures.clear();
                        // A connection that died within its first seconds
                        // (handshake fine, then garbage or a close) is a
                        // failed attempt: the backoff keeps growing. Either
                        // way the next attempt waits a jittered step.
                        if backoff.connection_ended(started.elapsed()) {
                            round = 0;
                        } else {
                            failures.push(format!("{server}: {error}"));
                        }
                        break;
                    }
                    if let (Some(_), Error::AuthorizationViolation { .. }) = (&first, &error) {
                        // Wrong credentials will not get better by retrying.
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Err(error));
                        }
                        break 'outer;
                    }
                    backoff.record_failure();
                    failures.push(format!("{server}: {error}"));
                }
            }
        }
        let retry_initial = inner.shared.borrow().options.retry_on_initial_connect;
        if first.is_some() && !retry_initial {
            if let Some(tx) = first.take() {
                let _ = tx.send(Err(Error::Unreachable {
                    attempts: std::mem::take(&mut failures),
                }));
            }
            break 'outer;
        }
        if let Some(tx) = first.take() {
            // retry_on_initial_connect: hand the client out now; publishes
            // go to the reconnect buffer until a server answers.
            let _ = tx.send(Ok(()));
        }
        if backoff.exhausted() {
            let error = Error::MaxReconnectsExceeded {
                attempts: backoff.failed_attempts(),
            };
            inner.shared.borrow_mut().emit(Event::Error {
                message: error.to_string(),
            });
            break 'outer;
        }
        let delay = backoff.delay_for(round);
        round = round.saturating_add(1);
        let sleep = tokio::time::sleep(delay);
        let woken = inner.wake.writer_woken();
        futures::pin_mut!(sleep, woken);
        // Sleep, but wake for close (the writer notify doubles as "look").
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = &mut woken => {
                    if inner.shared.borrow().close_requested {
                        break 'outer;
                    }
                    woken.set(inner.wake.writer_woken());
                }
            }
        }
    }
    if let Some(tx) = first.take() {
        let _ = tx.send(Err(Error::Closed));
    }
    {
        // Nothing will be written any more: say what stays unsent.
        let mut sh = inner.shared.borrow_mut();
        let unsent = sh.session.queued_bytes();
        if unsent > 0 {
            sh.emit(Event::Error {
                message: Error::NotSent { bytes: unsent }.to_string(),
            });
        }
    }
    inner.shared.borrow_mut().shut_down();
    inner.wake_all();
    inner.dispatch_events();
}

/// Bookkeeping after a connection ended with an error.
fn lost(inner: &Inner, server: &ServerAddr, error: &Error, was_connected: bool) {
    let mut sh = inner.shared.borrow_mut();
    if sh.connection_state() == ConnectionState::Closed {
        return;
    }
    // Disconnected from here on: `start` puts the session back to
    // awaiting INFO. A drain interrupted by a disconnect stays a drain (the
    // lifecycle is untouched): its flush fails and it closes, rather than
    // reopening the client for publishes.
    let now = sh.now();
    let vectored = sh.vectored.take();
    let report = sh.session.start(now);
    let mut discarded_publishes = report.discarded_publishes;
    let mut kept_publishes = report.kept_publishes;
    if let Some(v) = vectored {
        // Its control line was discarded with the old connection; queue the
        // whole publish again (copied) so it is not lost.
        let headers = v.headers.as_ref().map(|h| h.as_bytes());
        if let Err(e) = sh
            .session
            .publish(&v.subject, v.reply.as_deref(), headers, &v.payload)
        {
            let message = format!(
                "a {}-byte publish to {:?} caught by the disconnect could not be queued again ({e}); \
                 it was NOT sent",
                v.payload.len(),
                v.subject
            );
            sh.emit(Event::Error { message });
        } else {
            // The reset counted its never-finished control line as a
            // discarded publish; it is queued again whole.
            discarded_publishes = discarded_publishes.saturating_sub(1);
            kept_publishes += 1;
        }
    }
    if discarded_publishes > 0 {
        let message = format!(
            "{discarded_publishes} publishes queued for {server} could not be kept for the next \
             connection (half written, or no room left beside the handshake); they were NOT sent"
        );
        sh.emit(Event::Error { message });
    }
    let written = sh.statistics.written_bytes;
    let (wires, unconfirmed_publishes) = sh.unconfirmed.take_lost(written);
    if sh.options.resend_unconfirmed {
        let resent = resend(&mut sh, server, &wires);
        sh.statistics.resent_publishes += resent as u64;
        sh.statistics.unconfirmed_publishes += (unconfirmed_publishes - resent) as u64;
    } else {
        sh.statistics.unconfirmed_publishes += unconfirmed_publishes as u64;
    }
    if was_connected {
        // Publishes kept from the lost connection count against the
        // reconnect buffer, like the ones made during the outage.
        sh.reconnect_buffered = sh.session.held_bytes();
    }
    sh.fail_flushes(|| Error::Disconnected);
    if was_connected {
        let unconfirmed_bytes = sh
            .statistics
            .written_bytes
            .saturating_sub(sh.statistics.confirmed_bytes);
        sh.emit(Event::Disconnected {
            server: server.to_string(),
            reason: error.to_string(),
            unconfirmed_bytes,
            unconfirmed_publishes,
            kept_publishes,
            discarded_publishes,
        });
    } else {
        sh.emit(Event::ConnectFailed {
            server: server.to_string(),
            reason: error.to_string(),
        });
    }
    // The reset ended every drain (nothing more comes from the old
    // connection): act on those SubscriptionDone events now, so the drained
    // streams end and a waiting drain (woken below) returns.
    drain_events(&mut sh, &mut Processed::default());
    drop(sh);
    inner.wake_all();
    inner.dispatch_events();
}

async fn connect_once(
    inner: &Rc<Inner>,
    server: &ServerAddr,
    rx: &mut Inbound,
    wbuf: &mut Vec<u8>,
    first: &mut Option<oneshot::Sender<Result<(), Error>>>,
    ever_connected: bool,
) -> Ended {
    let timeout = inner.shared.borrow().options.connect_timeout;
    let failed = |error: Error| Ended::Failed {
        error,
        was_connected: false,
    };
    let addrs = match tokio::time::timeout(timeout, server.resolve()).await {
        Ok(Ok(a)) if !a.is_empty() => a,
        Ok(Ok(_)) => {
            return failed(Error::Io(std::io::Error::other(
                "the host name resolved to no address",
            )))
        }
        Ok(Err(e)) => return failed(Error::Io(e)),
        Err(_) => {
            return failed(Error::TimedOut {
                operation: "connect",
                after: timeout,
            })
        }
    };
    let mut last_error = None;
    let mut halves = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, transport::connect(addr)).await {
            Ok(Ok(h)) => {
                halves = Some(h);
                break;
            }
            Ok(Err(e)) => last_error = Some(Error::Io(e)),
            Err(_) => {
                last_error = Some(Error::TimedOut {
                    operation: "connect",
                    after: timeout,
                })
            }
        }
    }
    let Some((reader, writer)) = halves else {
        return failed(last_error.unwrap_or(Error::NoServers));
    };
    rx.clear();
    let tls = {
        let sh = inner.shared.borrow();
        let any_tls = sh.servers.known.iter().any(ServerAddr::is_tls);
        match NatsTls::new(&sh.options, server, any_tls) {
            Ok(t) => RefCell::new(t),
            Err(e) => return failed(e),
        }
    };
    {
        let mut sh = inner.shared.borrow_mut();
        sh.servers.leaving = None;
        apply_credentials(&mut sh, server);
        sh.servers.current = Some(server.clone());
    }
    let handshake_deadline = tokio::time::Instant::now() + timeout;
    let mut connected = false;
    let result = {
        let direct = matches!(reader.backend(), crate::runtime::Backend::Epoll);
        let read = read_loop(
            inner,
            reader,
            rx,
            &tls,
            server,
            first,
            ever_connected,
            &mut connected,
        );
        let in_flight = std::cell::Cell::new(None);
        let write = write_loop(
            inner,
            writer,
            wbuf,
            &tls,
            handshake_deadline,
            direct,
            &in_flight,
        );
        futures::pin_mut!(read, write);
        let r = match futures::future::select(read, write).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right((r, _)) => r,
        };
        // The reader saw the connection end while a write was in flight:
        // that write's future is gone with its result. Its bytes may be on
        // the wire, so they count as written (unconfirmed), never kept for
        // the next connection, which could deliver them twice.
        if let Some(write) = in_flight.take() {
            settle_write(inner, write, false);
        }
        r
    };
    match result {
        Ok(()) => Ended::Closed,
        Err(error) => {
            let error = match error {
                Error::Protocol(CoreError::AuthorizationViolation) => {
                    Error::AuthorizationViolation {
                        server: server.to_string(),
                    }
                }
                e => e,
            };
            Ended::Failed {
                error,
                was_connected: connected,
            }
        }
    }
}

/// Reads and feeds the session until the connection fails or closes.
/// `Ok(())` means a requested close.
#[allow(clippy::too_many_arguments)] // the connection's parts, borrowed for its life
async fn read_loop(
    inner: &Inner,
    mut reader: ReadHalf,
    rx: &mut Inbound,
    tls: &RefCell<NatsTls>,
    server: &ServerAddr,
    first: &mut Option<oneshot::Sender<Result<(), Error>>>,
    ever_connected: bool,
    connected: &mut bool,
) -> Result<(), Error> {
    // Set when the session could not answer (PONG, CONNECT) for lack of
    // transmit room: process the same input again once the writer made room.
    let mut blocked = false;
    loop {
        if blocked {
            // Wake the writer and wait until it made room (or the state
            // changed), then process the same input again. A real wait:
            // retrying without one never lets the writer run.
            inner
                .wake
                .signalled_after(|| inner.wake.wake_writer())
                .await;
        } else {
            let n = tls::read(tls, &mut reader, rx).await?;
            if n == 0 {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
        let (became_connected, subscriptions_ended) = {
            let mut sh = inner.shared.borrow_mut();
            if sh.close_requested {
                return Ok(());
            }
            let subscriptions = sh.receivers.subs.len();
            let was = sh.session.state() == State::Connected;
            // Publishes held for the handshake (made during the outage or
            // kept from the lost connection) are released by it.
            let held = sh.session.held_bytes();
            // Walks the held publishes: only while they are held.
            let held_publishes = if sh.session.state() == State::Connected {
                0
            } else {
                sh.session.held_publishes()
            };
            let processed = process_input(&mut sh, rx)?;
            blocked = processed.blocked;
            if sh.session.state() != State::AwaitingInfo {
                // TLS or plaintext, decided before the writer can see the
                // CONNECT the INFO just queued.
                let (requires, offers) = sh
                    .session
                    .server_info()
                    .map_or((false, false), |i| (i.tls_required, i.tls_available));
                tls.borrow_mut()
                    .after_info(requires, offers, rx.data().len())?;
            }
            if processed.info_updated {
                learn_servers(&mut sh);
            }
            if processed.lame_duck {
                sh.emit(Event::LameDuckMode {
                    server: server.to_string(),
                });
                move_away_from(&mut sh, server);
                inner.wake.wake_writer();
            }
            let subscriptions_ended = sh.receivers.subs.len() < subscriptions;
            let now_connected = sh.session.state() == State::Connected;
            let became_connected = if !was && now_connected && sh.lifecycle == Lifecycle::Open {
                sh.reconnect_buffered = 0;
                learn_servers(&mut sh);
                if ever_connected {
                    sh.statistics.reconnects += 1;
                }
                sh.emit(if ever_connected {
                    Event::Reconnected {
                        server: server.to_string(),
                        buffered_bytes_sent: held,
                        buffered_publishes_sent: held_publishes,
                    }
                } else {
                    Event::Connected {
                        server: server.to_string(),
                    }
                });
                true
            } else {
                false
            };
            (became_connected, subscriptions_ended)
        };
        if subscriptions_ended {
            // A drain may be waiting for its subscriptions to end.
            inner.wake.state_changed();
        }
        if became_connected {
            *connected = true;
            if let Some(tx) = first.take() {
                let _ = tx.send(Ok(()));
            }
            inner.wake.state_changed();
        }
        // Wake the writer only for something to send (PONG, CONNECT, the
        // released publishes) or a new state; not on every read.
        if became_connected
            || !inner.shared.borrow().session.transmit().is_empty()
            || tls.borrow().has_wire()
        {
            inner.wake.wake_writer();
        }
        inner.dispatch_events();
    }
}

/// The server in use entered lame duck mode: if another server is known,
/// put this one last in the list and have the writer end the connection
/// once everything pending is written; the reconnect then tries the others
/// first. With no other server the client stays until the server closes.
fn move_away_from(sh: &mut Shared, server: &ServerAddr) {
    if !sh.servers.known.iter().any(|s| !s.same_endpoint(server)) {
        log::info!("nats: {server} is in lame duck mode and no other server is known: staying");
        return;
    }
    if let Some(i) = sh
        .servers
        .known
        .iter()
        .position(|s| s.same_endpoint(server))
    {
        let lame = sh.servers.known.remove(i);
        sh.servers.known.push(lame);
    }
    sh.servers.leaving = Some(server.to_string());
}

/// Adds the servers INFO advertises (connect_urls) to the reconnect list.
fn learn_servers(sh: &mut Shared) {
    for s in discovered_servers(sh) {
        if !sh.servers.known.iter().any(|k| k.same_endpoint(&s)) {
            log::debug!("nats: learned server {s} from INFO");
            sh.servers.known.push(s);
        }
    }
}

fn discovered_servers(sh: &Shared) -> Vec<ServerAddr> {
    if sh.options.ignore_discovered_servers {
        return Vec::new();
    }
    sh.session
        .server_info()
        .map(|info| {
            info.connect_urls
                .iter()
                .filter_map(|u| ServerAddr::parse(u).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes what the session has pending and runs its timers, until the
/// connection fails or closes. `Ok(())` means a requested close.
///
/// `direct` (epoll): pending bytes are first written straight from the
/// session's transmit buffer with a non-blocking write, no copy; only what
/// the socket cannot take right now is copied to `wbuf` for the awaited
/// write.
async fn write_loop(
    inner: &Inner,
    mut writer: WriteHalf,
    wbuf: &mut Vec<u8>,
    tls: &RefCell<NatsTls>,
    handshake_deadline: tokio::time::Instant,
    direct: bool,
    in_flight: &std::cell::Cell<Option<WriteInFlight>>,
) -> Result<(), Error> {
    let mut parts: Vec<Bytes> = Vec::with_capacity(3);
    loop {
        // A vectored publish first: its control line heads the buffer.
        let vectored = {
            let sh = inner.shared.borrow();
            sh.vectored.as_ref().map(|v| {
                let prefix = sh
                    .session
                    .transmit()
                    .get(..v.prefix_len)
                    .unwrap_or_default();
                (
                    Bytes::copy_from_slice(prefix),
                    v.payload.clone(),
                    Bytes::from_static(v.trailer),
                )
            })
        };
        if let Some((prefix, payload, trailer)) = vectored {
            in_flight.set(Some(WriteInFlight::Vectored {
                // What a resend needs: the plaintext control line.
                prefix: prefix.clone(),
            }));
            if tls.borrow().is_active() {
                // One TLS stream: encrypt the three parts in order.
                wbuf.clear();
                {
                    let mut t = tls.borrow_mut();
                    for part in [&prefix, &payload, &trailer] {
                        t.seal(part, wbuf)?;
                    }
                }
                let (res, back) = writer.write_all(std::mem::take(wbuf)).await;
                *wbuf = back;
                if let Some(write) = in_flight.take() {
                    settle_write(inner, write, res.is_ok());
                }
                res?;
            } else {
                parts.clear();
                parts.extend([prefix, payload, trailer]);
                let (res, back) = writer.write_vectored_all(std::mem::take(&mut parts)).await;
                parts = back;
                if let Some(write) = in_flight.take() {
                    settle_write(inner, write, res.is_ok());
                }
                res?;
            }
            inner.wake.room_made();
            run_timers(inner)?;
            continue;
        }
        // Straight from the session's buffer only on a connection decided
        // to stay plaintext: TLS records must go through `seal`.
        if direct
            && tls.borrow().is_plaintext()
            && !inner.shared.borrow().session.transmit().is_empty()
        {
            let mut sh = inner.shared.borrow_mut();
            let shared = &mut *sh;
            let pending = shared.session.transmit();
            let written = match writer.try_write_now(pending) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e.into()),
            };
            if written > 0 {
                let start = shared.statistics.written_bytes;
                shared.statistics.written_bytes += written as u64;
                shared.unconfirmed.wrote(start, &pending[..written]);
                shared.session.transmitted(written);
                confirmation_point(&mut sh);
                drop(sh);
                inner.wake.room_made();
                run_timers(inner)?;
                continue;
            }
        }
        let batch = {
            let sh = inner.shared.borrow();
            let pending = sh.session.transmit();
            wbuf.clear();
            // Handshake records first, then the commands (encrypted once
            // TLS is up).
            tls.borrow_mut().seal(pending, wbuf)?;
            pending.len()
        };
        if !wbuf.is_empty() {
            if batch > 0 {
                in_flight.set(Some(WriteInFlight::Batch { len: batch }));
            }
            let (res, back) = writer.write_all(std::mem::take(wbuf)).await;
            *wbuf = back;
            if let Some(write) = in_flight.take() {
                settle_write(inner, write, res.is_ok());
            }
            res?;
            inner.wake.room_made();
            run_timers(inner)?;
            continue;
        }
        let (deadline, close) = {
            let sh = inner.shared.borrow();
            if let Some(server) = &sh.servers.leaving {
                // Everything queued is written: leave the lame duck now.
                return Err(Error::LameDuckMode {
                    server: server.clone(),
                });
            }
            let connected = sh.connection_state() == ConnectionState::Connected
                || sh.connection_state() == ConnectionState::Draining;
            let timer = sh.session.poll_timeout().map(|t| sh.to_tokio(t));
            let deadline = if connected {
                timer
            } else {
                Some(timer.map_or(handshake_deadline, |t| t.min(handshake_deadline)))
            };
            (deadline, sh.close_requested)
        };
        if close {
            let _ = writer.shutdown();
            return Ok(());
        }
        match deadline {
            Some(at) => {
                let _ = tokio::time::timeout_at(at, inner.wake.writer_woken()).await;
            }
            None => inner.wake.writer_woken().await,
        }
        {
            let sh = inner.shared.borrow();
            if sh.connection_state() == ConnectionState::Disconnected
                && tokio::time::Instant::now() >= handshake_deadline
            {
                return Err(Error::TimedOut {
                    operation: "handshake",
                    after: sh.options.connect_timeout,
                });
            }
        }
        run_timers(inner)?;
    }
}

/// A write of session bytes whose outcome is not recorded yet.
pub(crate) enum WriteInFlight {
    /// The first `len` bytes of the session's transmit buffer.
    Batch { len: usize },
    /// The session's vectored publish (its control line heads the buffer).
    Vectored { prefix: Bytes },
}

/// Records a write's bytes as written, whether it completed (`ok`), failed
/// part-way or was dropped with its connection: a write that did not
/// complete may have put any prefix on the wire, so it counts whole as
/// written (reported unconfirmed, resent only on request) instead of
/// staying queued for the next connection, which would duplicate what the
/// server did get (at-most-once by default). Only a completed write is a
/// confirmation point.
fn settle_write(inner: &Inner, write: WriteInFlight, ok: bool) {
    let mut sh = inner.shared.borrow_mut();
    match write {
        WriteInFlight::Batch { len } => {
            let start = sh.statistics.written_bytes;
            sh.statistics.written_bytes += len as u64;
            // Record the plaintext (the wire may have carried TLS records).
            let shared = &mut *sh;
            let written = shared.session.transmit().get(..len).unwrap_or_default();
            shared.unconfirmed.wrote(start, written);
            shared.session.transmitted(len);
        }
        WriteInFlight::Vectored { prefix } => {
            sh.session.transmitted(prefix.len());
            if let Some(v) = sh.vectored.take() {
                sh.statistics.written_bytes +=
                    (prefix.len() + v.payload.len() + v.trailer.len()) as u64;
                let end = sh.statistics.written_bytes;
                sh.unconfirmed
                    .wrote_publish(end, || [&prefix[..], &v.payload, v.trailer].concat());
            }
        }
    }
    if ok {
        confirmation_point(&mut sh);
    }
}

/// Fires the session's overdue timers (keepalive PING, stale connection,
/// request deadlines) and acts on the events they made. Called when the
/// writer wakes and after every write, so a busy writer does not starve
/// them.
fn run_timers(inner: &Inner) -> Result<(), Error> {
    let mut sh = inner.shared.borrow_mut();
    let now = sh.now();
    let subscriptions = sh.receivers.subs.len();
    // The timers stop while the event queue is full: take the events and
    // go on until none is due.
    while sh.session.poll_timeout().is_some_and(|at| at <= now) {
        sh.session.handle_timeout(now)?;
        if !sh.session.has_events() {
            break;
        }
        drain_events(&mut sh, &mut Processed::default());
    }
    let subscriptions_ended = sh.receivers.subs.len() < subscriptions;
    drop(sh);
    if subscriptions_ended {
        inner.wake.state_changed();
    }
    inner.dispatch_events();
    Ok(())
}
