//! The NSQ RDY controller against a model of nsqd: nsqd applies each RDY
//! the controller hands out and sends a message on a connection only while
//! that connection's in-flight count is below the RDY it applies. Messages
//! then must always be admitted, `max_in_flight` must hold, and a consumer
//! with free budget must never be left without RDY anywhere.

use arbitrary::{Arbitrary, Unstructured};
use courier_core::nsq::{Admission, ConnId, RdyConfig, RdyController};
use courier_core::time::{Duration, Instant};

const CONNS: usize = 4;

#[derive(Arbitrary, Debug)]
enum Op {
    AddConn {
        id: u8,
        max_rdy: u16,
    },
    RemoveConn(u8),
    /// nsqd sends a message on this connection if its RDY allows.
    Deliver(u8),
    /// A misbehaving nsqd sends a message whatever the RDY.
    Rogue(u8),
    /// The handler finishes the oldest message of a connection.
    Finish {
        conn: u8,
        success: bool,
    },
    SetMaxInFlight(u8),
    Advance(u16),
    /// Enough time passes for every timer (settle, idle, turn, backoff) to run.
    Settle,
}

struct Conn {
    id: ConnId,
    /// The RDY nsqd applies (the last one the controller handed out).
    applied: u32,
    max_rdy: u32,
    /// Messages nsqd sent that are not finished (admitted or not).
    in_flight: u32,
}

struct Model {
    rdy: RdyController<CONNS>,
    conns: Vec<Conn>,
    /// In-flight messages of removed connections (still to be finished).
    orphans: Vec<ConnId>,
    now: Instant,
    max_in_flight: u32,
    /// When max_in_flight was last lowered: reserved budget may exceed the
    /// new value until lowered RDYs settle.
    lowered_at: Option<Instant>,
    rogue: bool,
}

/// Entry point: the whole input is the operation script.
pub fn rdy(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let max_in_flight = u32::from(u.arbitrary::<u8>().unwrap_or(4) % 12);
    let config = RdyConfig {
        max_in_flight,
        idle_timeout: Duration::from_millis(50),
        max_turn: Duration::from_millis(100),
        settle: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
    };
    let mut m = Model {
        rdy: RdyController::new(config),
        conns: Vec::new(),
        orphans: Vec::new(),
        now: Instant::from_millis(1),
        max_in_flight,
        lowered_at: None,
        rogue: false,
    };
    let mut steps = 0;
    while !u.is_empty() && steps < 5_000 {
        steps += 1;
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if crate::trace() {
            eprintln!("{op:?}");
        }
        m.apply(op);
        m.apply_updates();
        m.check();
    }
}

impl Model {
    fn conn_index(&self, i: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(i) % self.conns.len())
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::AddConn { id, max_rdy } => {
                let id = ConnId(u64::from(id % 8));
                let max_rdy = u32::from(max_rdy % 2600).max(1);
                // The runtime never reuses an id while a message from it is
                // still being handled (ConnId's contract).
                if self.orphans.contains(&id) {
                    return;
                }
                let known = self.conns.iter().any(|c| c.id == id);
                let full = self.conns.len() == CONNS;
                match self.rdy.add_connection(id, max_rdy, self.now) {
                    Ok(()) => {
                        assert!(!known && !full, "added {id:?} twice or beyond capacity");
                        self.conns.push(Conn {
                            id,
                            applied: 0,
                            max_rdy,
                            in_flight: 0,
                        });
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        assert!(known || full, "refused {id:?}: {e}");
                    }
                }
            }
            Op::RemoveConn(i) => {
                if let Some(i) = self.conn_index(i) {
                    let c = self.conns.remove(i);
                    self.rdy.remove_connection(c.id, self.now);
                    assert_eq!(self.rdy.rdy(c.id), None);
                    self.orphans
                        .extend(std::iter::repeat_n(c.id, c.in_flight as usize));
                }
            }
            Op::Deliver(i) => {
                if let Some(i) = self.conn_index(i) {
                    let c = &mut self.conns[i];
                    if c.in_flight < c.applied {
                        c.in_flight += 1;
                        let id = c.id;
                        let admission = self.rdy.on_message(id, self.now);
                        assert_eq!(
                            admission,
                            Admission::Within,
                            "nsqd honoured RDY on {id:?} but the message was over budget"
                        );
                    }
                }
            }
            Op::Rogue(i) => {
                if let Some(i) = self.conn_index(i) {
                    self.rogue = true;
                    self.conns[i].in_flight += 1;
                    let id = self.conns[i].id;
                    if self.rdy.on_message(id, self.now) == Admission::OverBudget {
                        // The runtime REQs it at once: not a handler failure.
                        self.conns[i].in_flight -= 1;
                        self.rdy.on_finished(id, true, self.now);
                    }
                }
            }
            Op::Finish { conn, success } => {
                let total = self.conns.len() + self.orphans.len();
                if total == 0 {
                    return;
                }
                let k = usize::from(conn) % total;
                if k < self.conns.len() {
                    let c = &mut self.conns[k];
                    if c.in_flight > 0 {
                        c.in_flight -= 1;
                        let id = c.id;
                        self.rdy.on_finished(id, success, self.now);
                    }
                } else {
                    let id = self.orphans.swap_remove(k - self.conns.len());
                    self.rdy.on_finished(id, success, self.now);
                }
            }
            Op::SetMaxInFlight(n) => {
                let n = u32::from(n % 12);
                if n < self.max_in_flight {
                    self.lowered_at = Some(self.now);
                }
                self.max_in_flight = n;
                self.rdy.set_max_in_flight(n, self.now);
            }
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms % 1000));
                self.timers();
            }
            Op::Settle => {
                // Run every timer that comes due over a long stretch.
                let end = self.now + Duration::from_millis(1_000);
                for _ in 0..10_000 {
                    self.apply_updates();
                    match self.rdy.poll_timeout() {
                        Some(t) if t <= end => {
                            self.now = self.now.max(t);
                            self.timers();
                        }
                        _ => break,
                    }
                }
                self.now = end;
                self.timers();
                self.apply_updates();
                self.check_not_starved();
            }
        }
    }

    fn timers(&mut self) {
        if self.rdy.poll_timeout().is_some_and(|t| t <= self.now) {
            self.rdy.handle_timeout(self.now);
            let next = self.rdy.poll_timeout();
            assert!(
                next.is_none_or(|t| t > self.now),
                "handle_timeout({:?}) left the next deadline at {next:?}: the runtime would spin",
                self.now
            );
        }
    }

    /// nsqd applies every RDY the controller hands out.
    fn apply_updates(&mut self) {
        let mut n = 0;
        while let Some((id, count)) = self.rdy.poll_update() {
            n += 1;
            assert!(n <= 100, "poll_update never returns None");
            let c = self
                .conns
                .iter_mut()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("RDY {count} for unknown {id:?}"));
            assert!(
                count <= c.max_rdy,
                "RDY {count} above max_rdy_count {} on {id:?}",
                c.max_rdy
            );
            c.applied = count;
        }
    }

    fn check(&self) {
        let model: u32 =
            self.conns.iter().map(|c| c.in_flight).sum::<u32>() + self.orphans.len() as u32;
        assert_eq!(
            self.rdy.in_flight(),
            model,
            "in-flight count differs from the model"
        );
        for c in &self.conns {
            let rdy = self.rdy.rdy(c.id).expect("registered connection");
            assert!(rdy <= c.max_rdy);
        }
        let settled = self
            .lowered_at
            .is_none_or(|t| self.now >= t + Duration::from_millis(20));
        if settled && !self.rogue {
            assert!(
                self.rdy.reserved() <= self.max_in_flight.max(self.rdy.in_flight()),
                "reserved {} above max_in_flight {} (in flight {})",
                self.rdy.reserved(),
                self.max_in_flight,
                self.rdy.in_flight()
            );
        }
        if !self.rogue && self.lowered_at.is_none() {
            assert!(
                self.rdy.in_flight() <= self.max_in_flight,
                "max_in_flight exceeded"
            );
        }
    }

    /// With nothing in flight, free budget (not reserved by a settling
    /// RDY) and no backoff, some connection can receive. (With messages in flight the documented policy can stall:
    /// an idle connection keeps RDY 1 even while its one message is being
    /// handled, so if the busy ones are capped by max_rdy_count nothing
    /// more flows until a handler finishes; see the closing note.)
    fn check_not_starved(&self) {
        if self.rdy.is_backing_off()
            || self.conns.is_empty()
            || self.rdy.in_flight() > 0
            // A lowered RDY keeps its budget until it settles (the
            // rotation's turn change): no RDY anywhere for `settle` is the
            // design, not starvation.
            || self.rdy.reserved() >= self.max_in_flight
        {
            return;
        }
        // Only connections nsqd lets take more (in flight below its
        // max_rdy_count) can be given a slot.
        if self.conns.iter().all(|c| c.in_flight >= c.max_rdy) {
            return;
        }
        let open = self.conns.iter().any(|c| c.applied > c.in_flight);
        assert!(
            open,
            "starved: max_in_flight {} with {} in flight, but no connection has a free RDY slot",
            self.max_in_flight,
            self.rdy.in_flight()
        );
    }
}
