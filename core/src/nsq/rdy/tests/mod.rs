//! RDY controller tests. Files: `spread` (even split, rotation, idle),
//! `backoff` (backoff, replenish policy, limits), `model` (a model-based
//! proptest against simulated nsqd connections), `table` (the timer table).

mod backoff;
mod model;
mod spread;
mod table;

use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::vec::Vec as StdVec;

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

fn config(max_in_flight: u32) -> RdyConfig {
    RdyConfig {
        max_in_flight,
        idle_timeout: Duration::from_millis(1000),
        max_turn: Duration::from_millis(5000),
        settle: Duration::from_millis(100),
        backoff_base: Duration::from_millis(1000),
        backoff_max: Duration::from_millis(3000),
    }
}

fn t(ms: u64) -> Instant {
    Instant(ms)
}

/// Drains RDY updates, as the runtime would write them.
fn updates<const N: usize, P: RdyPolicy>(r: &mut RdyController<N, P>) -> StdVec<(u64, u32)> {
    let mut out = StdVec::new();
    while let Some((id, n)) = r.poll_update() {
        out.push((id.0, n));
    }
    out
}

fn rdys<const N: usize, P: RdyPolicy>(r: &RdyController<N, P>, ids: &[ConnId]) -> StdVec<u32> {
    ids.iter().map(|&id| r.rdy(id).unwrap()).collect()
}

/// Runs timers up to `until`, like a runtime sleeping on poll_timeout.
fn run_until<const N: usize, P: RdyPolicy>(r: &mut RdyController<N, P>, until: u64) {
    while let Some(at) = r.poll_timeout() {
        if at.0 > until {
            break;
        }
        r.handle_timeout(at);
    }
}
