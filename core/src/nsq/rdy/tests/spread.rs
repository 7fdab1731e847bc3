//! The even split, rotation with fewer RDY than connections, idle windows.

use super::*;

#[test]
fn spreads_max_in_flight_evenly() {
    let mut r = RdyController::<8>::new(config(10));
    r.add_connection(A, 2500, t(0)).unwrap();
    assert_eq!(updates(&mut r), [(1, 10)]);
    r.add_connection(B, 2500, t(0)).unwrap();
    r.add_connection(C, 2500, t(0)).unwrap();
    // A is lowered at once; B and C are raised once A's lowered RDY
    // settled (nsqd may still send under RDY 10 until then).
    assert_eq!(rdys(&r, &[A, B, C]), [4, 0, 0]);
    assert_eq!(r.reserved(), 10);
    assert!(r.reserved() <= 10);
    run_until(&mut r, 100);
    assert_eq!(rdys(&r, &[A, B, C]), [4, 3, 3]);
    assert_eq!(r.reserved(), 10);
    assert_eq!(updates(&mut r), [(1, 4), (2, 3), (3, 3)]);
}

#[test]
fn respects_max_rdy_count() {
    let mut r = RdyController::<8>::new(config(100));
    r.add_connection(A, 3, t(0)).unwrap();
    assert_eq!(updates(&mut r), [(1, 3)]);
    r.add_connection(B, 0, t(0)).unwrap();
    assert_eq!(r.rdy(B), Some(0));
}

#[test]
fn max_in_flight_one_with_three_connections_rotates() {
    let mut r = RdyController::<8>::new(config(1));
    for id in [A, B, C] {
        r.add_connection(id, 2500, t(0)).unwrap();
    }
    assert_eq!(rdys(&r, &[A, B, C]), [1, 0, 0]);
    assert_eq!(updates(&mut r), [(1, 1)]);
    // A delivers one message; while it is in flight nobody else gets RDY.
    assert_eq!(r.on_message(A, t(10)), Admission::Within);
    assert_eq!(r.reserved(), 1);
    r.on_finished(A, true, t(20));
    // A then stays silent: idle after 1 s, its RDY goes back, and after
    // the settle time the longest waiter (B) gets it.
    let mut holders = StdVec::new();
    let mut now = 20;
    while holders.len() < 6 {
        now = r.poll_timeout().unwrap().0;
        r.handle_timeout(t(now));
        assert!(r.reserved() <= 1, "budget exceeded at {now}");
        for (id, n) in updates(&mut r) {
            if n == 1 {
                holders.push(id);
            }
        }
    }
    assert_eq!(holders, [2, 3, 1, 2, 3, 1], "every connection gets a turn");
    assert!(now < 10_000, "turns come quickly when connections are idle");
}

#[test]
fn fewer_max_in_flight_than_connections_never_exceeds_budget() {
    let ids: StdVec<ConnId> = (0..5).map(ConnId).collect();
    let mut r = RdyController::<8>::new(config(2));
    for &id in &ids {
        r.add_connection(id, 2500, t(0)).unwrap();
    }
    // The first connection got 2 and lowers to 1; once that settled
    // the second gets the freed slot.
    assert_eq!(rdys(&r, &ids), [1, 0, 0, 0, 0]);
    run_until(&mut r, 100);
    assert_eq!(rdys(&r, &ids), [1, 1, 0, 0, 0]);
    let mut turns = [0u32; 5];
    for now in (0..20_000).step_by(50) {
        r.handle_timeout(t(now));
        assert!(r.reserved() <= 2);
        for (id, n) in updates(&mut r) {
            if n > 0 {
                turns[id as usize] += 1;
            }
        }
        assert!(rdys(&r, &ids).iter().sum::<u32>() <= 2);
    }
    assert!(turns.iter().all(|&n| n >= 2), "turns {turns:?}");
}

#[test]
fn idle_connections_do_not_starve_busy_ones() {
    let mut r = RdyController::<8>::new(config(1));
    r.add_connection(A, 2500, t(0)).unwrap(); // idle nsqd
    r.add_connection(B, 2500, t(0)).unwrap(); // nsqd with a backlog
    assert_eq!(rdys(&r, &[A, B]), [1, 0]);
    run_until(&mut r, 1100);
    assert_eq!(rdys(&r, &[A, B]), [0, 1], "idle A gave its RDY to B");
    // B is busy: it keeps RDY while it delivers, for a whole turn.
    let mut now = 1100;
    while now < 6000 {
        assert_eq!(r.on_message(B, t(now)), Admission::Within);
        r.on_finished(B, true, t(now + 5));
        now += 10;
        run_until(&mut r, now);
        if now < 6000 {
            assert_eq!(r.rdy(B), Some(1), "at {now}");
        }
    }
    // After its turn, A is given a chance, then B gets it back.
    run_until(&mut r, 6300);
    assert_eq!(rdys(&r, &[A, B]), [1, 0]);
    run_until(&mut r, 7500);
    assert_eq!(rdys(&r, &[A, B]), [0, 1]);
}

#[test]
fn idle_connection_shrinks_to_one_when_connections_fit() {
    let mut r = RdyController::<8>::new(config(10));
    r.add_connection(A, 2500, t(0)).unwrap();
    r.add_connection(B, 2500, t(0)).unwrap();
    run_until(&mut r, 100);
    assert_eq!(rdys(&r, &[A, B]), [5, 5]);
    // B stays busy (a full window is never idle), A is silent.
    for _ in 0..5 {
        r.on_message(B, t(200));
    }
    run_until(&mut r, 1300);
    assert_eq!(rdys(&r, &[A, B]), [1, 9]);
    assert!(r.reserved() <= 10);
    // A message on A makes it active again: back to 5/5.
    r.on_message(A, t(1400));
    run_until(&mut r, 1600);
    assert_eq!(rdys(&r, &[A, B]), [5, 5]);
    assert!(r.reserved() <= 10);
}
