//! The timer table: what is armed, `poll_timeout` as its minimum,
//! `handle_timeout` acting only on what expired.

use super::*;

fn table<const N: usize, P: RdyPolicy>(r: &RdyController<N, P>) -> StdVec<(RdyTimer, u64)> {
    let mut all: StdVec<(RdyTimer, u64)> = r.timers().map(|(timer, at)| (timer, at.0)).collect();
    all.sort_by_key(|&(_, at)| at);
    all
}

#[test]
fn poll_timeout_is_the_earliest_armed_timer() {
    let mut r = RdyController::<8>::new(config(10));
    assert_eq!(r.poll_timeout(), None, "nothing armed without connections");
    r.add_connection(A, 2500, t(0)).unwrap();
    updates(&mut r);
    assert_eq!(table(&r), [(RdyTimer::Idle(A), 1000)]);
    r.add_connection(B, 2500, t(10)).unwrap();
    updates(&mut r);
    // A was lowered 10 -> 5 at t=10: its old RDY stays reserved until 110.
    assert_eq!(
        table(&r),
        [(RdyTimer::Settle(A), 110), (RdyTimer::Idle(A), 1000),]
    );
    assert_eq!(r.poll_timeout(), Some(t(110)));
    r.handle_timeout(t(110));
    // Settled: B gets its share, and its own idle window starts.
    assert_eq!(rdys(&r, &[A, B]), [5, 5]);
    assert_eq!(
        table(&r),
        [(RdyTimer::Idle(A), 1000), (RdyTimer::Idle(B), 1110)]
    );
}

#[test]
fn handle_timeout_acts_only_on_expired_timers() {
    let mut r = RdyController::<8>::new(config(10));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 200);
    updates(&mut r);
    r.on_message(B, t(900));
    r.on_finished(B, true, t(950));
    // A's idle window (from t=100 or so) expires first; B's was renewed.
    let due = r.poll_timeout().unwrap();
    let expired: StdVec<RdyTimer> = r
        .timers()
        .filter(|&(_, at)| at <= due)
        .map(|(timer, _)| timer)
        .collect();
    assert_eq!(expired, [RdyTimer::Idle(A)]);
    r.handle_timeout(due);
    // Idle A keeps 1; B gets the rest once A's old RDY has settled.
    assert_eq!(rdys(&r, &[A, B]), [1, 5]);
    assert!(r.timers().all(|(timer, _)| timer != RdyTimer::Idle(A)));
    assert_eq!(r.poll_timeout(), Some(t(due.0 + 100)));
    assert!(r
        .timers()
        .any(|timer| timer == (RdyTimer::Settle(A), t(due.0 + 100))));
    // Early: nothing changes.
    r.handle_timeout(t(due.0 + 99));
    assert_eq!(rdys(&r, &[A, B]), [1, 5]);
    r.handle_timeout(t(due.0 + 100));
    assert_eq!(rdys(&r, &[A, B]), [1, 9]);
}

#[test]
fn backoff_and_test_timers() {
    let mut r = RdyController::<8>::new(config(10));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 200);
    r.on_message(A, t(300));
    r.on_finished(A, false, t(300));
    assert!(r.is_backing_off());
    assert_eq!(
        r.timers().find(|(timer, _)| *timer == RdyTimer::Backoff),
        Some((RdyTimer::Backoff, t(1300)))
    );
    assert!(
        r.timers()
            .all(|(timer, _)| !matches!(timer, RdyTimer::Idle(_))),
        "no idle windows while backing off"
    );
    r.handle_timeout(t(1300));
    assert_eq!(
        r.timers().find(|(timer, _)| *timer == RdyTimer::TestIdle),
        Some((RdyTimer::TestIdle, t(2300)))
    );
    assert_eq!(r.reserved(), 1, "one test RDY");
}
