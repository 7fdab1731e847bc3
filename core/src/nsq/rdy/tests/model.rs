//! A model-based proptest: simulated nsqd connections that honour RDY as a
//! window, random messages, finishes, failures, timers; the invariant is
//! checked after every step.

use super::*;

/// Operations on the simulated consumer: nsqd sends only within the RDY
/// it has applied, and applies every RDY within `settle`.
#[derive(Clone, Debug)]
enum Op {
    Add(u32),
    Remove(usize),
    Deliver(usize),
    Finish(usize, bool),
    FinishOrphan,
    Apply(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u32..6).prop_map(Op::Add),
        1 => any::<usize>().prop_map(Op::Remove),
        6 => any::<usize>().prop_map(Op::Deliver),
        5 => (any::<usize>(), proptest::bool::weighted(0.9)).prop_map(|(i, s)| Op::Finish(i, s)),
        1 => Just(Op::FinishOrphan),
        3 => any::<usize>().prop_map(Op::Apply),
        3 => (0u64..800).prop_map(Op::Advance),
    ]
}

struct SimConn {
    id: ConnId,
    applied: u32,
    /// RDY values written but not yet applied by nsqd: (sent at, value).
    transit: VecDeque<(u64, u32)>,
    in_flight: u32,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn invariant_holds_for_random_traffic(
        max_in_flight in 1u32..6,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let cfg = config(max_in_flight);
        let settle = cfg.settle.as_millis();
        let mut r = RdyController::<6>::new(cfg);
        let mut sim: StdVec<SimConn> = StdVec::new();
        let mut orphans = 0u32;
        let mut next_id = 0u64;
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Add(max_rdy) => {
                    next_id += 1;
                    if r.add_connection(ConnId(next_id), max_rdy, t(now)).is_ok() {
                        sim.push(SimConn { id: ConnId(next_id), applied: 0, transit: VecDeque::new(), in_flight: 0 });
                    }
                }
                Op::Remove(i) if !sim.is_empty() => {
                    let c = sim.remove(i % sim.len());
                    orphans += c.in_flight;
                    r.remove_connection(c.id, t(now));
                }
                Op::Deliver(i) if !sim.is_empty() => {
                    let len = sim.len();
                    let c = &mut sim[i % len];
                    if c.in_flight < c.applied {
                        c.in_flight += 1;
                        prop_assert_eq!(r.on_message(c.id, t(now)), Admission::Within);
                    }
                }
                Op::Finish(i, success) if !sim.is_empty() => {
                    let len = sim.len();
                    let c = &mut sim[i % len];
                    if c.in_flight > 0 {
                        c.in_flight -= 1;
                        r.on_finished(c.id, success, t(now));
                    }
                }
                Op::FinishOrphan if orphans > 0 => {
                    orphans -= 1;
                    r.on_finished(ConnId(0), true, t(now));
                }
                Op::Apply(i) if !sim.is_empty() => {
                    let len = sim.len();
                    let c = &mut sim[i % len];
                    if let Some((_, v)) = c.transit.pop_front() {
                        c.applied = v;
                    }
                }
                Op::Advance(ms) => {
                    let target = now + ms;
                    // Step through the controller's deadlines.
                    loop {
                        let next = r.poll_timeout().map_or(target, |d| d.0.clamp(now, target));
                        // nsqd applies RDYs within `settle` of sending.
                        for c in sim.iter_mut() {
                            while c.transit.front().is_some_and(|&(at, _)| at + settle <= next) {
                                c.applied = c.transit.pop_front().unwrap().1;
                            }
                        }
                        now = next;
                        r.handle_timeout(t(now));
                        while let Some((id, n)) = r.poll_update() {
                            let c = sim.iter_mut().find(|c| c.id == id).unwrap();
                            c.transit.push_back((now, n));
                        }
                        if now >= target {
                            break;
                        }
                    }
                }
                _ => {}
            }
            while let Some((id, n)) = r.poll_update() {
                let c = sim.iter_mut().find(|c| c.id == id).unwrap();
                c.transit.push_back((now, n));
            }
            // What the application sees: un-finished messages.
            let in_flight: u32 = sim.iter().map(|c| c.in_flight).sum::<u32>() + orphans;
            prop_assert!(in_flight <= max_in_flight, "in flight {} > {}", in_flight, max_in_flight);
            prop_assert_eq!(r.in_flight(), in_flight);
            // What nsqd could still send: every RDY it applies or will.
            let potential: u32 = sim
                .iter()
                .map(|c| c.transit.iter().map(|&(_, v)| v).fold(c.applied.max(c.in_flight), u32::max))
                .sum::<u32>() + orphans;
            prop_assert!(potential <= max_in_flight, "potential {} > {}", potential, max_in_flight);
            prop_assert!(r.reserved() <= max_in_flight);
        }
    }

    /// Whatever happened before, once every nsqd has a backlog and
    /// handlers succeed, every connection gets RDY within a bounded time
    /// and the backoff ends: nothing starves.
    #[test]
    fn every_connection_gets_a_turn(
        max_in_flight in 1u32..5,
        conns in 1usize..6,
        failures in proptest::collection::vec(any::<bool>(), 0..5),
    ) {
        let cfg = config(max_in_flight);
        let mut r = RdyController::<6>::new(cfg);
        let mut in_flight = [0u32; 6];
        for i in 0..conns {
            r.add_connection(ConnId(i as u64), 2500, t(0)).unwrap();
        }
        // A few results first (over-budget ones are REQ'd by the
        // runtime, which also reports them finished), so the test also
        // covers leaving backoff.
        for (k, fail) in failures.iter().enumerate() {
            let id = ConnId((k % conns) as u64);
            let admitted = r.on_message(id, t(0)) == Admission::Within;
            r.on_finished(id, !admitted || !fail, t(0));
        }
        let mut got_turn = [false; 6];
        let mut now = 0u64;
        let bound = 2 * conns as u64 * (5000 + 1000 + 100) + 2 * 3000 + 10_000;
        while now < bound {
            // Every nsqd has a backlog: it fills whatever RDY allows.
            for i in 0..conns {
                let id = ConnId(i as u64);
                let rdy = r.rdy(id).unwrap();
                if rdy > 0 {
                    got_turn[i] = true;
                }
                if in_flight[i] < rdy {
                    prop_assert_eq!(r.on_message(id, t(now)), Admission::Within);
                    in_flight[i] += 1;
                }
            }
            prop_assert!(in_flight.iter().sum::<u32>() <= max_in_flight);
            now += 50;
            for (i, n) in in_flight.iter_mut().enumerate().take(conns) {
                if *n > 0 {
                    *n -= 1;
                    r.on_finished(ConnId(i as u64), true, t(now));
                }
            }
            r.handle_timeout(t(now));
            while r.poll_update().is_some() {}
        }
        prop_assert!(!r.is_backing_off());
        prop_assert!(got_turn[..conns].iter().all(|&g| g), "turns {:?}", got_turn);
    }
}
