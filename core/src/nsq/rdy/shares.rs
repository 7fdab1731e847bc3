//! Who gets how much RDY: the even split, rotation, the backoff test, room
//! left for messages still in flight, and rebalancing within the budget.

use heapless::Vec;

use super::{Mode, RdyController, RdyPolicy};
use crate::time::Instant;

impl<const CONNS: usize, P: RdyPolicy> RdyController<CONNS, P> {
    /// The RDY the controller gives each connection now (same order as
    /// `conns`), and whether the application may override it.
    fn shares(&self, now: Instant) -> (Vec<u32, CONNS>, bool) {
        let mut targets: Vec<u32, CONNS> = Vec::new();
        for _ in 0..self.conns.len() {
            let _ = targets.push(0);
        }
        // Messages of removed connections still count against the budget
        // until they are finished: share only what is left.
        let max_in_flight = self.config.max_in_flight.saturating_sub(self.orphans);
        let eligible = self.eligible();
        match self.mode {
            Mode::Backoff { .. } => {}
            // A paused consumer (max_in_flight 0) gets no test RDY either.
            Mode::Testing { .. } if max_in_flight == 0 => {}
            Mode::Testing { conn, .. } => {
                if let Some(i) = self.index(conn) {
                    targets[i] = 1.min(self.conns[i].max_rdy);
                }
            }
            Mode::Normal if max_in_flight == 0 || eligible == 0 => {}
            Mode::Normal if eligible <= max_in_flight as usize => {
                let idle = self
                    .conns
                    .iter()
                    .filter(|c| c.max_rdy > 0 && c.idle)
                    .count();
                let use_idle = idle < eligible;
                let active = if use_idle { eligible - idle } else { eligible } as u32;
                let idle_share = if use_idle { idle as u32 } else { 0 };
                let available = max_in_flight - idle_share;
                let (per, mut extra) = (available / active, available % active);
                for (i, c) in self.conns.iter().enumerate() {
                    if c.max_rdy == 0 {
                        continue;
                    }
                    let share = if use_idle && c.idle {
                        1
                    } else if extra > 0 {
                        extra -= 1;
                        per + 1
                    } else {
                        per
                    };
                    targets[i] = share.min(c.max_rdy);
                }
                self.leave_room_for_in_flight(&mut targets, max_in_flight);
                return (targets, true);
            }
            Mode::Normal => {
                // Rotation: max_in_flight holders of RDY 1.
                let waiting = self.conns.iter().any(|c| c.max_rdy > 0 && c.rdy == 0);
                let mut holders = 0u32;
                for (i, c) in self.conns.iter().enumerate() {
                    let turn_over = c.idle || now >= c.granted_at + self.config.max_turn;
                    if c.max_rdy > 0
                        && c.rdy > 0
                        && !(waiting && turn_over)
                        && holders < max_in_flight
                    {
                        targets[i] = 1;
                        holders += 1;
                    }
                }
                let mut queue: Vec<usize, CONNS> = (0..self.conns.len())
                    .filter(|&i| self.conns[i].max_rdy > 0 && self.conns[i].rdy == 0)
                    .collect();
                queue.sort_unstable_by_key(|&i| (self.conns[i].waiting_since, i));
                for i in queue.iter().take((max_in_flight - holders) as usize) {
                    targets[*i] = 1;
                }
                self.leave_room_for_in_flight(&mut targets, max_in_flight);
            }
        }
        (targets, false)
    }

    /// Lowers `targets` so that, once every RDY has settled, the reserved
    /// total fits `budget` (max_in_flight minus orphans). A connection
    /// still handling more messages than its target (max_in_flight was
    /// lowered, or its share shrank when connections were added) reserves
    /// its in-flight count, not its target: the excess comes out of the
    /// other connections' targets, cut evenly among those with room above
    /// their own in-flight count (cutting below that frees nothing).
    /// Without this, 3 connections with 2 messages in flight on one and
    /// max_in_flight lowered to 3 kept 2 + 1 + 1 = 4 reserved (found by the
    /// `rdy` fuzz target).
    fn leave_room_for_in_flight(&self, targets: &mut [u32], budget: u32) {
        let reserved = self
            .conns
            .iter()
            .zip(targets.iter())
            .fold(0u32, |sum, (c, &t)| sum.saturating_add(c.in_flight.max(t)));
        let mut over = reserved.saturating_sub(budget);
        // Each pass cuts `over / k` (at least 1) from each of the k
        // connections with room: either one runs out of room or `over`
        // drops below k, so this ends within CONNS + 1 passes.
        while over > 0 {
            let k = self
                .conns
                .iter()
                .zip(targets.iter())
                .filter(|(c, &t)| t > c.in_flight)
                .count() as u32;
            if k == 0 {
                break;
            }
            let cut = (over / k).max(1);
            // From the back, so the first connections keep the remainder,
            // as in the even split.
            for (c, t) in self.conns.iter().zip(targets.iter_mut()).rev() {
                if over == 0 {
                    break;
                }
                let room = t.saturating_sub(c.in_flight);
                let n = cut.min(room).min(over);
                *t -= n;
                over -= n;
            }
        }
    }

    /// Re-decides every connection's RDY: settles, lowers, then raises
    /// within the budget (longest-waiting first).
    pub(super) fn rebalance(&mut self, now: Instant) {
        for c in self.conns.iter_mut() {
            if c.ceiling > c.rdy && now >= c.settle_until {
                c.ceiling = c.rdy;
            }
        }
        let (mut targets, overridable) = self.shares(now);
        for (c, target) in self.conns.iter_mut().zip(targets.iter_mut()) {
            c.share = *target;
            if overridable {
                if let Some(requested) = c.requested {
                    *target = requested.min(c.max_rdy);
                }
            }
            let target = *target;
            if target < c.rdy {
                c.rdy = target;
                c.dirty = true;
                c.settle_until = now + self.config.settle;
                if self.config.settle.as_millis() == 0 {
                    c.ceiling = target;
                }
                if target == 0 {
                    c.waiting_since = now;
                }
            }
        }
        let mut free = self.config.max_in_flight.saturating_sub(self.reserved());
        // Budget left once every lowered RDY has settled. Raising a
        // connection back up to its unsettled ceiling costs nothing now,
        // but keeps that budget for good: without this bound a removed
        // connection's in-flight messages plus the raised RDYs exceeded
        // max_in_flight after settling (found by the `rdy` fuzz target).
        let settled = self.conns.iter().fold(self.orphans, |sum, c| {
            sum.saturating_add(c.in_flight.max(c.rdy))
        });
        let mut free_settled = self.config.max_in_flight.saturating_sub(settled);
        let mut order: Vec<usize, CONNS> = (0..self.conns.len()).collect();
        order.sort_unstable_by_key(|&i| (self.conns[i].rdy > 0, self.conns[i].waiting_since, i));
        for i in order {
            let (Some(c), Some(&target)) = (self.conns.get_mut(i), targets.get(i)) else {
                continue;
            };
            if target <= c.rdy {
                continue;
            }
            let before = c.reserved();
            let before_settled = c.in_flight.max(c.rdy);
            let granted = target
                .min(before.saturating_add(free))
                .min(before_settled.saturating_add(free_settled));
            if granted <= c.rdy {
                continue;
            }
            if c.rdy == 0 {
                c.granted_at = now;
            }
            // More room: whether it stays unused is measured from now.
            c.last_activity = now;
            c.idle = false;
            c.rdy = granted;
            c.ceiling = c.ceiling.max(granted);
            c.dirty = true;
            free = free.saturating_sub(c.reserved() - before);
            free_settled = free_settled.saturating_sub(c.in_flight.max(c.rdy) - before_settled);
        }
    }
}
