//! RDY controller regressions found by the `rdy` fuzz target
//! (fuzz/targets/src/rdy.rs): nsqd is modelled as applying each RDY the
//! controller hands out and sending while a connection's in-flight count
//! is below it.

use courier_core::nsq::{Admission, ConnId, RdyConfig, RdyController};
use courier_core::time::{Duration, Instant};

struct Nsqd {
    /// (connection, RDY applied, in flight)
    conns: Vec<(ConnId, u32, u32)>,
}

impl Nsqd {
    fn apply(&mut self, rdy: &mut RdyController<4>) {
        while let Some((id, n)) = rdy.poll_update() {
            if let Some(c) = self.conns.iter_mut().find(|c| c.0 == id) {
                c.1 = n;
            }
        }
    }

    /// nsqd sends one message on `id` if its RDY allows.
    fn deliver(&mut self, rdy: &mut RdyController<4>, id: ConnId, now: Instant) {
        let c = self.conns.iter_mut().find(|c| c.0 == id).unwrap();
        if c.2 < c.1 {
            c.2 += 1;
            assert_eq!(rdy.on_message(id, now), Admission::Within);
        }
        self.apply(rdy);
    }
}

fn run_timers(
    rdy: &mut RdyController<4>,
    nsqd: &mut Nsqd,
    from: Instant,
    until: Instant,
) -> Instant {
    let mut now = from;
    while let Some(t) = rdy.poll_timeout().filter(|&t| t <= until) {
        now = now.max(t);
        rdy.handle_timeout(now);
        nsqd.apply(rdy);
    }
    rdy.handle_timeout(until);
    nsqd.apply(rdy);
    until
}

/// Found by fuzzing: max_in_flight lowered from 5 to 3, then a connection
/// with a message still in flight removed. A connection whose lowered RDY
/// was still settling was raised back to its old value "for free" (that
/// budget looked reserved by the unsettled ceiling), so after every RDY
/// settled the controller kept sum(RDY) + the orphaned message = 4 > 3:
/// nsqd could have 4 messages out against max_in_flight 3.
#[test]
fn removing_a_connection_while_lowered_rdys_settle_keeps_max_in_flight() {
    let config = RdyConfig {
        max_in_flight: 5,
        idle_timeout: Duration::from_millis(50),
        max_turn: Duration::from_millis(100),
        settle: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
    };
    let (a, b, c) = (ConnId(1), ConnId(2), ConnId(0));
    let mut rdy = RdyController::<4>::new(config);
    let mut nsqd = Nsqd {
        conns: vec![(a, 0, 0), (b, 0, 0), (c, 0, 0)],
    };
    let mut now = Instant::from_millis(1);
    rdy.add_connection(a, 2500, now).unwrap();
    nsqd.apply(&mut rdy);
    rdy.add_connection(b, 2, now).unwrap();
    nsqd.apply(&mut rdy);
    nsqd.deliver(&mut rdy, a, now);
    nsqd.deliver(&mut rdy, b, now);
    nsqd.deliver(&mut rdy, a, now);
    rdy.add_connection(c, 1, now).unwrap();
    nsqd.apply(&mut rdy);
    now = run_timers(&mut rdy, &mut nsqd, now, Instant::from_millis(16));
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    nsqd.deliver(&mut rdy, a, now);
    // Finish one of a's messages.
    nsqd.conns[0].2 -= 1;
    rdy.on_finished(a, true, now);
    nsqd.apply(&mut rdy);
    rdy.set_max_in_flight(3, now);
    nsqd.apply(&mut rdy);
    rdy.remove_connection(a, now);
    nsqd.conns.remove(0);
    nsqd.apply(&mut rdy);
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    let _ = now;
    assert!(
        rdy.reserved() <= 3,
        "reserved {} (in flight {}) above max_in_flight 3 after every RDY settled",
        rdy.reserved(),
        rdy.in_flight()
    );
}

/// Found by fuzzing: max_in_flight set to 0 (pause) while the controller
/// was testing after a backoff (its connection removed and another added
/// meanwhile). The test connection kept its RDY 1 after every RDY settled,
/// so a paused consumer could still receive.
#[test]
fn pausing_during_a_backoff_test_pauses_the_test_connection_too() {
    let config = RdyConfig {
        max_in_flight: 2,
        idle_timeout: Duration::from_millis(50),
        max_turn: Duration::from_millis(100),
        settle: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
    };
    let a = ConnId(0);
    let mut rdy = RdyController::<4>::new(config);
    let mut nsqd = Nsqd {
        conns: vec![(a, 0, 0)],
    };
    let mut now = Instant::from_millis(1);
    rdy.add_connection(a, 244, now).unwrap();
    nsqd.apply(&mut rdy);
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(2000));
    nsqd.deliver(&mut rdy, a, now);
    nsqd.conns[0].2 -= 1;
    rdy.on_finished(a, false, now);
    nsqd.apply(&mut rdy);
    assert!(rdy.is_backing_off());
    rdy.remove_connection(a, now);
    nsqd.conns.clear();
    rdy.add_connection(a, 32, now).unwrap();
    nsqd.conns.push((a, 0, 0));
    nsqd.apply(&mut rdy);
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    rdy.set_max_in_flight(0, now);
    nsqd.apply(&mut rdy);
    let _ = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    assert_eq!(
        (rdy.rdy(a), rdy.reserved()),
        (Some(0), 0),
        "paused (max_in_flight 0) but the connection still has RDY"
    );
}

/// Found by fuzzing: a connection removed with a message in flight, then
/// max_in_flight lowered to 3. The remaining connection's share was the
/// whole max_in_flight, ignoring the orphaned message: RDY 3 + 1 orphan =
/// 4 reserved against 3, and nsqd could have 4 messages out.
#[test]
fn shares_leave_room_for_messages_of_removed_connections() {
    let config = RdyConfig {
        max_in_flight: 8,
        idle_timeout: Duration::from_millis(50),
        max_turn: Duration::from_millis(100),
        settle: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
    };
    let (a, b) = (ConnId(1), ConnId(7));
    let mut rdy = RdyController::<4>::new(config);
    let mut nsqd = Nsqd {
        conns: vec![(a, 0, 0), (b, 0, 0)],
    };
    let mut now = Instant::from_millis(1);
    rdy.add_connection(a, 6596, now).unwrap();
    rdy.add_connection(b, 65535, now).unwrap();
    nsqd.apply(&mut rdy);
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(2000));
    nsqd.deliver(&mut rdy, b, now);
    rdy.remove_connection(b, now);
    nsqd.conns.remove(1);
    nsqd.apply(&mut rdy);
    rdy.set_max_in_flight(3, now);
    nsqd.apply(&mut rdy);
    nsqd.deliver(&mut rdy, a, now);
    let _ = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    assert!(
        rdy.reserved() <= 3,
        "reserved {} (in flight {}) above max_in_flight 3 after every RDY settled",
        rdy.reserved(),
        rdy.in_flight()
    );
}

/// Found by fuzzing: with 3 connections, one holding 2 messages in flight,
/// max_in_flight lowered to 3. Each connection got a share of 1, so the
/// busy one's 2 in-flight messages + 1 + 1 = 4 stayed reserved against 3
/// until those handlers finished: nsqd could have 4 messages out.
#[test]
fn shares_leave_room_for_in_flight_above_a_connections_share() {
    let config = RdyConfig {
        max_in_flight: 6,
        idle_timeout: Duration::from_millis(50),
        max_turn: Duration::from_millis(100),
        settle: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
    };
    let (a, b, c) = (ConnId(0), ConnId(1), ConnId(2));
    let mut rdy = RdyController::<4>::new(config);
    let mut nsqd = Nsqd {
        conns: vec![(a, 0, 0), (b, 0, 0), (c, 0, 0)],
    };
    let mut now = Instant::from_millis(1);
    for id in [a, b, c] {
        rdy.add_connection(id, 2500, now).unwrap();
        nsqd.apply(&mut rdy);
    }
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(30));
    assert_eq!(rdy.rdy(a), Some(2));
    nsqd.deliver(&mut rdy, a, now);
    nsqd.deliver(&mut rdy, a, now);
    rdy.set_max_in_flight(3, now);
    nsqd.apply(&mut rdy);
    // a's handlers are still running after every lowered RDY settled.
    now = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    assert!(
        rdy.reserved() <= 3,
        "reserved {} (in flight {}) above max_in_flight 3 after every RDY settled",
        rdy.reserved(),
        rdy.in_flight()
    );
    // Once a's handlers finish, the budget goes back to the others.
    for _ in 0..2 {
        nsqd.conns[0].2 -= 1;
        rdy.on_finished(a, true, now);
        nsqd.apply(&mut rdy);
    }
    let _ = run_timers(&mut rdy, &mut nsqd, now, now + Duration::from_millis(1000));
    assert!(rdy.reserved() <= 3);
    for id in [a, b, c] {
        assert!(rdy.rdy(id).unwrap() >= 1, "{id:?} starved with free budget");
    }
}
