//! Backoff after failures, the replenish policy, limits, over-budget messages.

use super::*;

#[test]
fn backoff_sequence() {
    let mut r = RdyController::<8>::new(config(4));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 100);
    updates(&mut r);
    r.on_message(A, t(100));
    r.on_message(B, t(100));
    // A handler fails: RDY 0 everywhere for 1 s.
    r.on_finished(A, false, t(200));
    assert!(r.is_backing_off());
    assert_eq!(r.backoff_level(), 1);
    assert_eq!(updates(&mut r), [(1, 0), (2, 0)]);
    // The other in-flight message fails too: no longer backoff.
    r.on_finished(B, false, t(250));
    assert_eq!(r.backoff_level(), 1);
    assert_eq!(r.poll_timeout(), Some(t(300)).min(Some(t(1200))));
    run_until(&mut r, 1199);
    assert_eq!(rdys(&r, &[A, B]), [0, 0]);
    // Backoff over: a test RDY 1 on one connection.
    run_until(&mut r, 1200);
    assert_eq!(updates(&mut r), [(1, 1)]);
    // The test message fails: 2 s backoff.
    r.on_message(A, t(1300));
    r.on_finished(A, false, t(1310));
    assert_eq!(r.backoff_level(), 2);
    assert_eq!(updates(&mut r), [(1, 0)]);
    run_until(&mut r, 3309);
    assert_eq!(rdys(&r, &[A, B]), [0, 0]);
    run_until(&mut r, 3310);
    assert_eq!(rdys(&r, &[A, B]), [1, 0]);
    // No message on the test connection: the test moves on to B (the
    // budget of 4 has room while A's RDY 1 settles).
    run_until(&mut r, 4309);
    assert_eq!(rdys(&r, &[A, B]), [1, 0]);
    run_until(&mut r, 4310);
    assert_eq!(rdys(&r, &[A, B]), [0, 1]);
    // Success: back to normal flow.
    r.on_message(B, t(4500));
    r.on_finished(B, true, t(4510));
    assert!(!r.is_backing_off());
    assert_eq!(r.backoff_level(), 0);
    run_until(&mut r, 4700);
    assert_eq!(rdys(&r, &[A, B]), [2, 2]);
}

#[test]
fn backoff_is_capped() {
    let mut r = RdyController::<8>::new(config(1));
    r.add_connection(A, 2500, t(0)).unwrap();
    updates(&mut r);
    let mut now = 0;
    let mut durations = StdVec::new();
    for _ in 0..4 {
        r.on_message(A, t(now));
        r.on_finished(A, false, t(now));
        assert_eq!(updates(&mut r), [(1, 0)]);
        let failed_at = now;
        // Step timers until the test RDY 1 is issued.
        while r.rdy(A) != Some(1) {
            now = r.poll_timeout().unwrap().0;
            r.handle_timeout(t(now));
        }
        assert_eq!(updates(&mut r), [(1, 1)]);
        durations.push(now - failed_at);
    }
    assert_eq!(durations, [1000, 2000, 3000, 3000]);
}

#[test]
fn replenish_policy_can_override() {
    struct Double(StdVec<(u64, u32, u32)>);
    impl RdyPolicy for Double {
        fn rdy_replenish(&mut self, conn: ConnId, current: u32, original: u32) -> u32 {
            self.0.push((conn.0, current, original));
            original * 2
        }
    }
    let mut r = RdyController::<8, Double>::with_policy(config(100), Double(StdVec::new()));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 200);
    r.set_max_in_flight(8, t(200));
    run_until(&mut r, 400);
    assert_eq!(rdys(&r, &[A, B]), [4, 4]);
    // Window of A drains to 25 %: the policy is asked and wants 8.
    for _ in 0..3 {
        r.on_message(A, t(500));
    }
    assert_eq!(r.policy_mut().0, [(1, 1, 4)]);
    // Budget is full (B holds 4), so A grows only as far as allowed.
    assert_eq!(r.rdy(A), Some(4));
    r.remove_connection(B, t(600));
    assert_eq!(r.rdy(A), Some(8));
    assert!(r.reserved() <= 8);
}

#[test]
fn default_policy_sends_no_redundant_rdy() {
    let mut r = RdyController::<8>::new(config(4));
    r.add_connection(A, 2500, t(0)).unwrap();
    assert_eq!(updates(&mut r), [(1, 4)]);
    for i in 0..100 {
        r.on_message(A, t(i));
        r.on_finished(A, true, t(i));
    }
    assert_eq!(updates(&mut r), [], "nsqd's window refills without RDY");
}

#[test]
fn removed_connection_in_flight_still_counted() {
    let mut r = RdyController::<8>::new(config(2));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 100);
    r.on_message(A, t(100));
    r.remove_connection(A, t(110));
    // A's message is still being handled: B gets only 1.
    assert_eq!(r.rdy(B), Some(1));
    assert_eq!(r.in_flight(), 1);
    r.on_finished(A, true, t(120));
    assert_eq!(r.rdy(B), Some(2));
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn over_budget_messages_are_flagged() {
    let mut r = RdyController::<8>::new(config(1));
    r.add_connection(A, 2500, t(0)).unwrap();
    assert_eq!(r.on_message(A, t(1)), Admission::Within);
    assert_eq!(r.on_message(A, t(1)), Admission::OverBudget);
    assert_eq!(r.on_message(C, t(1)), Admission::OverBudget);
}

#[test]
fn connection_limits() {
    let mut r = RdyController::<2>::new(config(1));
    r.add_connection(A, 1, t(0)).unwrap();
    assert_eq!(
        r.add_connection(A, 1, t(0)),
        Err(RdyError::DuplicateConnection(A))
    );
    r.add_connection(B, 1, t(0)).unwrap();
    let e = r.add_connection(C, 1, t(0)).unwrap_err();
    assert_eq!(e, RdyError::TooManyConnections { capacity: 2 });
    assert!(std::format!("{e}").contains("CONNS"));
}

#[test]
fn zero_max_in_flight_pauses() {
    let mut r = RdyController::<4>::new(config(3));
    r.add_connection(A, 10, t(0)).unwrap();
    updates(&mut r);
    r.set_max_in_flight(0, t(1));
    assert_eq!(updates(&mut r), [(1, 0)]);
    r.set_max_in_flight(3, t(2));
    run_until(&mut r, 200);
    assert_eq!(updates(&mut r), [(1, 3)]);
}
