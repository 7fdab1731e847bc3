//! The IO tasks of one connection generation (epoch): the reader feeds
//! the session what the socket gives, the writer sends what the session
//! queued (a large body vectored from its bytes, `large_body`), the timer
//! runs the session's deadlines on the shared [`Clock`](crate::session_io::Clock).
//! A task whose epoch is no longer the connection's stops.

use std::rc::Rc;
use std::time::Duration;

use courier_core::amqp::Event;

use super::connection::{clock, now, Inner};
use super::tls::SharedTls;
use super::Error;
use crate::session_io::Inbound;
use crate::transport::{ReadHalf, WriteHalf};

/// Starts the reader, writer and timer of connection generation `epoch`.
pub(crate) fn spawn_io(
    inner: &Rc<Inner>,
    read: ReadHalf,
    write: WriteHalf,
    tls: Option<SharedTls>,
    epoch: u64,
) {
    let o = &inner.shared.borrow().topology.options;
    let (rx, tx) = (o.rx_capacity, o.tx_capacity);
    let buf = Inbound::new(rx);
    crate::spawn(reader(inner.clone(), read, buf, tls.clone(), epoch));
    crate::spawn(writer(inner.clone(), write, tx, tls, epoch));
    crate::spawn(timer(Rc::downgrade(inner), epoch));
    inner.wake.wake_writer();
}

async fn reader(
    inner: Rc<Inner>,
    mut read: ReadHalf,
    mut buf: Inbound,
    tls: Option<SharedTls>,
    epoch: u64,
) {
    loop {
        let res = super::tls::read(tls.as_ref(), &mut read, &mut buf).await;
        if inner.shared.borrow().epoch != epoch {
            return;
        }
        match res {
            Ok(0) => {
                let e = inner.shared.borrow_mut().session.connection_lost();
                inner.lost(epoch, Error::Protocol(e));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                inner.shared.borrow_mut().session.connection_lost();
                inner.lost(epoch, e);
                return;
            }
        }
        loop {
            let mut guard = inner.shared.borrow_mut();
            let result = guard.session.handle_input(buf.data(), now());
            let used = match result {
                Ok((used, delivery)) => {
                    if let Some(d) = delivery {
                        guard = super::consumers::deliver(&inner, guard, d);
                    }
                    used
                }
                Err(e) => {
                    drop(guard);
                    inner.wake.wake_writer();
                    inner.lost(epoch, Error::Protocol(e));
                    return;
                }
            };
            let sh = &mut *guard;
            let mut any = false;
            while let Some(ev) = sh.session.poll_event() {
                any = true;
                let closed = matches!(ev, Event::Closed);
                inner.on_event(sh, ev);
                if closed {
                    sh.closed = Some(Error::Disconnected("closed by the application".into()));
                }
            }
            buf.consume(used);
            if used == 0 && !any {
                break;
            }
        }
        inner.wake.wake_writer();
        if inner.shared.borrow().closed.is_some() {
            inner.fail(Error::Disconnected("closed".into()));
            return;
        }
    }
}

async fn writer(
    inner: Rc<Inner>,
    mut write: WriteHalf,
    capacity: usize,
    tls: Option<SharedTls>,
    epoch: u64,
) {
    let mut out = Vec::with_capacity(capacity);
    loop {
        if inner.shared.borrow().epoch != epoch {
            let _ = write.shutdown();
            return;
        }
        // A large body due now: written from the caller's buffer.
        let body = {
            let mut sh = inner.shared.borrow_mut();
            match (sh.session.transmit().is_empty(), sh.session.pending_body()) {
                (true, Some(plan)) => {
                    sh.writing = true;
                    Some((plan, sh.large_body.take()))
                }
                _ => None,
            }
        };
        if let Some((plan, body)) = body {
            let res = match body {
                Some(b) => {
                    super::large_body::write_body(&mut write, tls.as_ref(), plan, &b, &mut out)
                        .await
                }
                None => Err(Error::Io("large body: its bytes are gone".into())),
            };
            {
                let mut sh = inner.shared.borrow_mut();
                sh.writing = false;
                if sh.epoch == epoch {
                    sh.session.body_transmitted();
                }
            }
            inner.wake.room_made();
            if let Err(e) = res {
                inner.lost(epoch, e);
                return;
            }
            continue;
        }
        // None: nothing to write; Some(done): the connection ended.
        let idle = {
            let mut sh = inner.shared.borrow_mut();
            super::consumers::write_deferred(&mut sh);
            let pending = sh.session.transmit();
            let handshake = tls.as_ref().is_some_and(|t| t.borrow().has_wire());
            if pending.is_empty() && !handshake {
                if sh.session.pending_body().is_some() {
                    continue;
                }
                Some(Ok(sh.closed.is_some()))
            } else {
                out.clear();
                let sealed = match &tls {
                    Some(t) => super::tls::seal(&mut t.borrow_mut(), pending, &mut out),
                    None => {
                        out.extend_from_slice(pending);
                        Ok(())
                    }
                };
                let n = pending.len();
                sh.session.transmitted(n);
                sh.writing = true;
                sealed.err().map(Err)
            }
        };
        match idle {
            Some(Err(e)) => {
                inner.shared.borrow_mut().writing = false;
                inner.lost(epoch, e);
                return;
            }
            Some(Ok(true)) => {
                let _ = write.shutdown();
                return;
            }
            Some(Ok(false)) if tls.is_none() => {
                // Idle: lend the write half to `write_now` until woken.
                lend(&inner, epoch, write);
                inner.wake.writer_woken().await;
                match take_back(&inner, epoch) {
                    Some(w) => write = w,
                    // A newer generation's writer owns the slot now.
                    None => return,
                }
                continue;
            }
            Some(Ok(false)) => {
                inner.wake.writer_woken().await;
                continue;
            }
            None => {}
        }
        inner.wake.room_made();
        let (res, o) = write.write_all(out).await;
        out = o;
        inner.shared.borrow_mut().writing = false;
        inner.wake.room_made();
        if let Err(e) = res {
            inner.lost(epoch, Error::Io(e.to_string()));
            return;
        }
    }
}

/// Puts the idle writer's half where [`write_now`] finds it; a half an
/// older generation left there is shut down.
fn lend(inner: &Inner, epoch: u64, write: WriteHalf) {
    if let Some((old, mut w)) = inner.direct.replace(Some((epoch, write))) {
        if old != epoch {
            let _ = w.shutdown();
        }
    }
}

/// The writer of `epoch` takes its half back; `None` when a newer
/// generation's half is there (it is left in place).
fn take_back(inner: &Inner, epoch: u64) -> Option<WriteHalf> {
    let mut slot = inner.direct.borrow_mut();
    match slot.take() {
        Some((e, w)) if e == epoch => Some(w),
        other => {
            *slot = other;
            None
        }
    }
}

/// Writes the session's pending bytes from the caller's task with one
/// non-blocking `send(2)` while the writer is idle (its half lent, no
/// write or large body in flight, no deferred handler answers waiting to
/// go first). True when everything pending went out; false when the writer
/// must run (busy, bytes left over, a body due, `WouldBlock`, or an error
/// its own next write reports and ends the connection with).
pub(crate) fn write_now(inner: &Inner) -> bool {
    let Ok(mut slot) = inner.direct.try_borrow_mut() else {
        return false;
    };
    let Some((epoch, write)) = slot.as_mut() else {
        return false;
    };
    let Ok(mut sh) = inner.shared.try_borrow_mut() else {
        return false;
    };
    if sh.epoch != *epoch || sh.writing || sh.closed.is_some() || !sh.deferred.is_empty() {
        return false;
    }
    let pending = sh.session.transmit();
    if pending.is_empty() {
        return sh.session.pending_body().is_none();
    }
    match write.try_write_now(pending) {
        Ok(n) => {
            sh.session.transmitted(n);
            let all = sh.session.transmit().is_empty() && sh.session.pending_body().is_none();
            drop(sh);
            inner.wake.room_made();
            all
        }
        Err(_) => false,
    }
}

async fn timer(inner: std::rc::Weak<Inner>, epoch: u64) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let at = strong.shared.borrow().session.poll_timeout();
        if strong.shared.borrow().closed.is_some() || strong.shared.borrow().epoch != epoch {
            return;
        }
        drop(strong);
        // At most 250 ms: a closed or replaced connection is noticed.
        let _ = tokio::time::timeout(Duration::from_millis(250), clock().sleep_until(at)).await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.shared.borrow().epoch != epoch {
            return;
        }
        let result = strong.shared.borrow_mut().session.handle_timeout(now());
        match result {
            Ok(()) => strong.wake.wake_writer(),
            Err(e) => {
                strong.wake.wake_writer();
                strong.lost(epoch, Error::Protocol(e));
                return;
            }
        }
    }
}
