//! One (nsqd, couplet) kept connected: connect, subscribe, hand messages
//! to the workers, reconnect with backoff and jitter.

use super::*;

pub(super) fn add_keeper<H: Handler>(inner: &Rc<Inner<H>>, addr: String, couplet: usize) {
    let retired = Rc::new(Cell::new(false));
    let current = Rc::new(RefCell::new(None));
    let task = crate::spawn(keep_connected(
        inner.clone(),
        addr.clone(),
        couplet,
        retired.clone(),
        current.clone(),
    ));
    inner.state.borrow_mut().keepers.insert(
        (addr, couplet),
        Keeper {
            retired,
            current,
            task,
        },
    );
}

pub(super) fn first_round_done(st: &mut State, failure: Option<String>) {
    if st.first_round_pending > 0 {
        st.first_round_pending -= 1;
        if let Some(f) = failure {
            st.first_round_failures.push(f);
        }
    }
}

/// Connects, runs, and reconnects one (nsqd, couplet) until stopped or
/// retired (vanished from nsqlookupd).
async fn keep_connected<H: Handler>(
    inner: Rc<Inner<H>>,
    addr: String,
    couplet: usize,
    retired: Rc<Cell<bool>>,
    current: Rc<RefCell<Option<Rc<Conn>>>>,
) {
    let mut backoff = Backoff::new(reconnect_policy(&inner.config));
    // The same failure is logged once a minute with its count, not per
    // attempt.
    let mut repeats = RepeatFilter::new(REPEAT_WINDOW);
    let mut warn = |line: String| {
        if let Some(n) = repeats.check(&line, std::time::Instant::now()) {
            if n > 0 {
                log::warn!("{line} (and {n} more like it in the last minute)");
            } else {
                log::warn!("{line}");
            }
        }
    };
    let mut first = true;
    loop {
        if retired.get() || inner.state.borrow().stopping {
            break;
        }
        let id = {
            let mut st = inner.state.borrow_mut();
            st.next_id += 1;
            ConnId(st.next_id)
        };
        let (topic, channel) = inner.couplets[couplet].clone();
        let info = ConnInfo {
            id,
            addr: addr.clone(),
            topic: Some(topic),
            channel: Some(channel),
        };
        let started = std::time::Instant::now();
        match conn::open(info, inner.config.clone(), inner.clock, false).await {
            Err(e) => {
                backoff.record_failure();
                warn(format!("nsqd {addr}: {e}"));
                let mut st = inner.state.borrow_mut();
                st.last_failure = Some(format!("{addr}: {e}"));
                if first {
                    first_round_done(&mut st, Some(format!("{addr}: {e}")));
                    if e.is_definite() && st.first_round_definite.is_none() {
                        st.first_round_definite = Some(e);
                    }
                }
                drop(st);
                inner.wake.state_changed();
            }
            Ok((conn, read, write)) => {
                inner.callbacks.connect(&conn.info);
                *current.borrow_mut() = Some(conn.clone());
                let sink = ConsumerSink {
                    inner: inner.clone(),
                    first: Cell::new(first),
                };
                let result = {
                    // nsqd must finish the handshake (IDENTIFY, AUTH, SUB)
                    // within connect_timeout, as for the producer: an nsqd
                    // that never answers IDENTIFY is an error, not silence.
                    let limit = inner.config.connect_timeout;
                    let drive = conn::drive(conn.clone(), read, write, &sink);
                    let watchdog = async {
                        tokio::time::sleep(limit).await;
                        if inner.state.borrow().conns.contains_key(&id) {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        r = drive => r,
                        _ = watchdog => {
                            conn.shutdown();
                            Err(Error::TimedOut {
                                operation: "nsqd handshake",
                                after: limit,
                            })
                        }
                    }
                };
                *current.borrow_mut() = None;
                let subscribed = {
                    let mut st = inner.state.borrow_mut();
                    let was = st.conns.remove(&id).is_some();
                    st.close_waited.remove(&id);
                    st.rdy.remove_connection(id, inner.clock.now());
                    apply_rdy(&mut st);
                    let reason = match &result {
                        Ok(()) => "closed during the handshake".to_string(),
                        Err(e) => e.to_string(),
                    };
                    st.last_failure = Some(format!("{addr}: {reason}"));
                    if sink.first.get() {
                        first_round_done(&mut st, Some(format!("{addr}: {reason}")));
                        if let Err(e) = &result {
                            if e.is_definite() && st.first_round_definite.is_none() {
                                // Re-made: Error is not Clone (io::Error).
                                st.first_round_definite = e.definite_copy();
                            }
                        }
                    }
                    was
                };
                inner.rdy_wake.notify_one();
                inner.wake.state_changed();
                let error = match result {
                    Ok(()) => Error::Closed,
                    Err(e) => e,
                };
                inner.callbacks.broken(&conn.info, &error);
                // A subscription that died within its first seconds (nsqd
                // shakes hands, then sends garbage or closes) is a failed
                // attempt: the backoff keeps growing.
                if !subscribed {
                    backoff.record_failure();
                } else {
                    backoff.connection_ended(started.elapsed());
                }
                log::info!("nsqd {addr} connection ended: {error}");
            }
        }
        first = false;
        if retired.get() || inner.state.borrow().stopping {
            break;
        }
        // Every reconnect waits a jittered step, growing with the
        // failures since the last healthy connection.
        let delay = backoff.delay_for(backoff.failed_attempts().saturating_sub(1));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = inner.stop_wake.notified() => {}
        }
    }
}

struct ConsumerSink<H: Handler> {
    inner: Rc<Inner<H>>,
    /// Still in the first connection attempt (reported to `start`).
    first: Cell<bool>,
}

impl<H: Handler> Sink for ConsumerSink<H> {
    fn on_message(&self, conn: &Rc<Conn>, m: courier_core::nsq::Message<'_>) -> Result<(), Error> {
        let inner = &self.inner;
        inner.callbacks.message_received(&conn.info, &m);
        let mut st = inner.state.borrow_mut();
        let at = inner.clock.now();
        let admission = st.rdy.on_message(conn.info.id, at);
        if admission == courier_core::nsq::Admission::OverBudget {
            // nsqd sent beyond the RDY we granted: hand it back at
            // once instead of exceeding max_in_flight.
            let _ = conn.with_session(|s| s.req(&m.id, 0));
            st.rdy.on_finished(conn.info.id, true, at);
            apply_rdy(&mut st);
            return Ok(());
        }
        let in_flight = st.rdy.in_flight();
        st.max_seen_in_flight = st.max_seen_in_flight.max(in_flight);
        let mut body = st.pool.pop().unwrap_or_default();
        body.extend_from_slice(m.body);
        st.queue.push_back(Delivery {
            conn: conn.clone(),
            id: m.id,
            attempts: m.attempts,
            timestamp_ns: m.timestamp_ns,
            body,
        });
        st.busy += 1;
        apply_rdy(&mut st);
        drop(st);
        inner.work.notify_one();
        inner.rdy_wake.notify_one();
        Ok(())
    }

    fn on_event(&self, conn: &Rc<Conn>, event: Event) -> Result<(), Error> {
        let inner = &self.inner;
        match event {
            Event::Identified => inner
                .callbacks
                .identify(&conn.info, conn.negotiated().as_ref()),
            Event::Ready => {
                let (topic, channel) = match (&conn.info.topic, &conn.info.channel) {
                    (Some(t), Some(c)) => (t.as_str(), c.as_str()),
                    _ => {
                        return Err(Error::Config(
                            "consumer connection without a couplet".into(),
                        ))
                    }
                };
                conn.with_session(|s| s.subscribe(topic, channel))?;
            }
            Event::Subscribed => {
                let mut st = inner.state.borrow_mut();
                if st.stopping {
                    conn.shutdown();
                    return Ok(());
                }
                if let Err(e) =
                    st.rdy
                        .add_connection(conn.info.id, conn.max_rdy(), inner.clock.now())
                {
                    return Err(Error::Config(e.to_string()));
                }
                st.conns.insert(conn.info.id, conn.clone());
                if self.first.replace(false) {
                    first_round_done(&mut st, None);
                }
                apply_rdy(&mut st);
                drop(st);
                inner.rdy_wake.notify_one();
                inner.wake.state_changed();
            }
            Event::Closed => {
                inner.state.borrow_mut().close_waited.insert(conn.info.id);
                inner.wake.state_changed();
            }
            Event::Error(e) => log::warn!("nsqd {}: {e}", conn.info.addr),
            _ => {}
        }
        Ok(())
    }
}
