//! Publisher-confirm tracking of one channel: which delivery tags await
//! the broker's `basic.ack` / `basic.nack`, in a fixed window of bits.
//!
//! Tags are assigned 1, 2, 3... from `confirm.select` on. An ack or nack
//! settles one tag, or with `multiple` every tag up to it. The window is
//! `64 × WORDS` tags from the oldest unsettled one: a publish beyond it is
//! refused (the caller waits for confirms), so memory stays fixed.

/// Unsettled delivery tags of one channel in confirm mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmTracker<const WORDS: usize> {
    /// Lowest tag that may be unsettled (all below are settled).
    base: u64,
    /// Tag the next publish gets.
    next: u64,
    outstanding: u64,
    bits: [u64; WORDS],
}

impl<const WORDS: usize> Default for ConfirmTracker<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> ConfirmTracker<WORDS> {
    /// Tags a tracker can hold unsettled at most (from the oldest one).
    pub const WINDOW: u64 = 64 * WORDS as u64;

    /// A tracker right after `confirm.select`.
    pub const fn new() -> Self {
        ConfirmTracker {
            base: 1,
            next: 1,
            outstanding: 0,
            bits: [0; WORDS],
        }
    }
    fn slot(tag: u64) -> (usize, u64) {
        let i = (tag % Self::WINDOW) as usize;
        (i / 64, 1 << (i % 64))
    }
    /// True when `tag` awaits its confirm.
    pub fn is_unsettled(&self, tag: u64) -> bool {
        if tag < self.base || tag >= self.next {
            return false;
        }
        let (w, b) = Self::slot(tag);
        self.bits[w] & b != 0
    }
    /// Unsettled publishes.
    pub const fn outstanding(&self) -> u64 {
        self.outstanding
    }
    /// The tag the next publish will get.
    pub const fn next_tag(&self) -> u64 {
        self.next
    }
    /// True when a publish now would be refused.
    pub const fn is_full(&self) -> bool {
        self.next - self.base >= Self::WINDOW
    }
    /// Records a publish; its tag, or `None` when the window is full.
    pub fn publish(&mut self) -> Option<u64> {
        if self.is_full() {
            return None;
        }
        let tag = self.next;
        let (w, b) = Self::slot(tag);
        self.bits[w] |= b;
        self.next += 1;
        self.outstanding += 1;
        Some(tag)
    }
    fn settle_one(&mut self, tag: u64) -> u64 {
        if !self.is_unsettled(tag) {
            return 0;
        }
        let (w, b) = Self::slot(tag);
        self.bits[w] &= !b;
        self.outstanding -= 1;
        1
    }
    /// Settles `tag` (and with `multiple` every tag up to it; tag 0 with
    /// `multiple` is every tag). Returns how many were unsettled before:
    /// 0 for a tag that was never published or already settled.
    pub fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        let settled = if multiple {
            let last = if tag == 0 {
                self.next.saturating_sub(1)
            } else {
                tag.min(self.next.saturating_sub(1))
            };
            let mut n = 0;
            let mut t = self.base;
            while t <= last {
                n += self.settle_one(t);
                t += 1;
            }
            n
        } else {
            self.settle_one(tag)
        };
        while self.base < self.next && !self.is_unsettled(self.base) {
            self.base += 1;
        }
        settled
    }
}
