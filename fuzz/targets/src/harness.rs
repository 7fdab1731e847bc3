//! The loop every stateful target shares: run the operation script against
//! a driver, checking its invariants after each step, then hand it what
//! the script left of the server's bytes in 1500-byte reads with the client
//! writing everything between reads. One loop instead of a copy per
//! protocol.

use arbitrary::{Arbitrary, Unstructured};

use crate::take;

/// The most operations one input may script.
const MAX_STEPS: usize = 2_000;

/// A session driver as the shared loop sees it.
pub trait SessionDriver {
    /// One scripted operation.
    type Op: for<'a> Arbitrary<'a> + core::fmt::Debug;
    /// Performs `op`, taking server bytes from `stream` where it reads.
    fn apply(&mut self, op: Self::Op, stream: &mut &[u8]);
    /// Asserts the invariants that hold between operations.
    fn check(&self);
    /// Hands the buffered server bytes to the session until it needs more.
    fn pump(&mut self);
    /// The transport wrote up to `n` of the pending bytes.
    fn write(&mut self, n: usize);
    /// The receive buffer and its capacity.
    fn rx(&mut self) -> (&mut Vec<u8>, usize);
    /// True when the driver stopped taking input (the rest is ignored).
    fn finished(&self) -> bool {
        false
    }
    /// Whether the final loop fails on a full receive buffer that consumed
    /// nothing (a driver whose `pump` asserts that itself says false).
    fn checks_stalls(&self) -> bool {
        true
    }
    /// Prints `op` for `FUZZ_TRACE=1`.
    fn trace(&self, op: &Self::Op) {
        eprintln!("{op:?}");
    }
    /// The transport read up to `n` server bytes (as many as fit).
    fn feed(&mut self, stream: &mut &[u8], n: usize) {
        let (rx, capacity) = self.rx();
        let room = capacity - rx.len();
        rx.extend_from_slice(take(stream, n.min(room)));
    }
}

/// Runs the script in `u` against `d`, then the rest of `stream`.
pub fn drive<D: SessionDriver>(d: &mut D, u: &mut Unstructured<'_>, mut stream: &[u8]) {
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let Ok(op) = D::Op::arbitrary(u) else { break };
        if crate::trace() {
            d.trace(&op);
        }
        d.apply(op, &mut stream);
        d.check();
    }
    // Whatever the script left of the server's bytes arrives now, with the
    // client writing everything it has between reads.
    while !stream.is_empty() && !d.finished() {
        let before = stream.len();
        d.feed(&mut stream, 1500);
        d.pump();
        d.write(usize::MAX);
        d.check();
        if d.checks_stalls() && stream.len() == before && !d.finished() {
            let (rx, capacity) = d.rx();
            if rx.len() == capacity {
                panic!("stall: receive buffer full and nothing consumed");
            }
        }
    }
}

/// Implements [`SessionDriver`] for a target's `Driver` from its inherent
/// `apply`, `pump`, `write`, its check method and its `rx`/`rx_capacity`
/// fields; further items override the trait's provided methods.
#[macro_export]
macro_rules! session_driver {
    ($driver:ty, $op:ty, $check:ident $(, $($extra:tt)+)?) => {
        impl $crate::harness::SessionDriver for $driver {
            type Op = $op;
            fn apply(&mut self, op: $op, stream: &mut &[u8]) {
                <$driver>::apply(self, op, stream);
            }
            fn check(&self) {
                <$driver>::$check(self);
            }
            fn pump(&mut self) {
                <$driver>::pump(self);
            }
            fn write(&mut self, n: usize) {
                <$driver>::write(self, n);
            }
            fn rx(&mut self) -> (&mut Vec<u8>, usize) {
                (&mut self.rx, self.rx_capacity)
            }
            $($($extra)+)?
        }
    };
}
