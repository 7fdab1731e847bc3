//! Publisher-confirm waiters without an allocation per publish.
//!
//! Each publish in confirm mode takes a slot of one connection-wide slab
//! (reused through a free list, so after warm-up nothing is allocated) and
//! its [`Confirmation`] names the slot by index and generation. A channel's
//! unsettled publishes are kept in delivery-tag order, so a `multiple` ack
//! settles a prefix and a single ack is found by binary search.
//!
//! A slot is freed when its confirmation has both been settled and been
//! read (or dropped): a confirmation dropped early leaves an abandoned slot
//! that the broker's answer frees.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll, Waker};

use courier_core::amqp::ChannelId;

use super::connection::Inner;
use super::Error;

enum State {
    Free,
    /// Unsettled; the waker of whoever polled it last.
    Waiting(Option<Waker>),
    /// Settled, not read yet.
    Done(Result<(), Error>),
    /// Unsettled and nobody will read it.
    Abandoned,
}

struct Slot {
    generation: u32,
    state: State,
}

/// The slab of confirm waiters of one connection.
#[derive(Default)]
pub(crate) struct ConfirmSlab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Per channel: (delivery tag, slot) of the unsettled publishes, in tag order.
    pending: HashMap<ChannelId, VecDeque<(u64, u32)>>,
}

impl ConfirmSlab {
    /// A slot for the publish `tag` on `channel`: (index, generation).
    pub fn insert(&mut self, channel: ChannelId, tag: u64) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: State::Free,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = State::Waiting(None);
        let queue = self.pending.entry(channel).or_default();
        debug_assert!(queue.back().is_none_or(|(t, _)| *t < tag));
        queue.push_back((tag, index));
        (index, slot.generation)
    }

    /// Publishes still waiting on `channel`.
    pub fn unsettled(&self, channel: ChannelId) -> usize {
        self.pending.get(&channel).map_or(0, VecDeque::len)
    }

    /// The broker settled `tag` (and every earlier one when `multiple`);
    /// `result(tag)` says how each ends. True when any waiter was settled.
    pub fn settle(
        &mut self,
        channel: ChannelId,
        tag: u64,
        multiple: bool,
        mut result: impl FnMut(u64) -> Result<(), Error>,
    ) -> bool {
        let Some(queue) = self.pending.get_mut(&channel) else {
            return false;
        };
        let mut any = false;
        if multiple {
            while let Some(&(t, index)) = queue.front() {
                if t > tag {
                    break;
                }
                queue.pop_front();
                complete(&mut self.slots, &mut self.free, index, result(t));
                any = true;
            }
        } else if let Ok(pos) = queue.binary_search_by_key(&tag, |(t, _)| *t) {
            if let Some((t, index)) = queue.remove(pos) {
                complete(&mut self.slots, &mut self.free, index, result(t));
                any = true;
            }
        }
        any
    }

    /// Every waiter of `channel` ends with `error` (the channel closed).
    pub fn fail_channel(&mut self, channel: ChannelId, error: &Error) {
        if let Some(mut queue) = self.pending.remove(&channel) {
            for (_, index) in queue.drain(..) {
                complete(&mut self.slots, &mut self.free, index, Err(error.clone()));
            }
        }
    }

    /// Every waiter ends with `error` (the connection is gone).
    pub fn fail_all(&mut self, error: &Error) {
        for (_, queue) in self.pending.iter_mut() {
            for (_, index) in queue.drain(..) {
                complete(&mut self.slots, &mut self.free, index, Err(error.clone()));
            }
        }
    }

    fn poll(
        &mut self,
        index: u32,
        generation: u32,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return Poll::Ready(Err(gone()));
        };
        if slot.generation != generation {
            return Poll::Ready(Err(gone()));
        }
        match &mut slot.state {
            State::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => {
                let State::Done(result) = std::mem::replace(&mut slot.state, State::Free) else {
                    unreachable!("matched Done above")
                };
                self.free.push(index);
                Poll::Ready(result)
            }
            State::Free | State::Abandoned => Poll::Ready(Err(gone())),
        }
    }

    fn abandon(&mut self, index: u32, generation: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        match slot.state {
            State::Waiting(_) => slot.state = State::Abandoned,
            State::Done(_) => {
                slot.state = State::Free;
                self.free.push(index);
            }
            State::Free | State::Abandoned => {}
        }
    }
}

fn complete(slots: &mut [Slot], free: &mut Vec<u32>, index: u32, result: Result<(), Error>) {
    let slot = &mut slots[index as usize];
    match std::mem::replace(&mut slot.state, State::Free) {
        State::Waiting(waker) => {
            slot.state = State::Done(result);
            if let Some(w) = waker {
                w.wake();
            }
        }
        State::Abandoned => free.push(index),
        // Settled twice is a broker bug; keep the first answer.
        other @ (State::Done(_) | State::Free) => slot.state = other,
    }
}

fn gone() -> Error {
    Error::Disconnected("connection ended".into())
}

/// A publish waiting for its confirm: await it (Ok once the broker took
/// responsibility; [`Error::Nacked`], [`Error::Returned`] or
/// [`Error::Disconnected`] otherwise). Dropping it does not cancel the
/// publish; the outcome is then not reported. Allocates nothing: it names
/// a reused slot of its connection.
pub struct Confirmation {
    inner: ConfirmationInner,
}

enum ConfirmationInner {
    /// Not in confirm mode: already settled (at-most-once).
    Ready(Option<Result<(), Error>>),
    Slot {
        conn: Weak<Inner>,
        index: u32,
        generation: u32,
    },
    Read,
}

impl Confirmation {
    pub(crate) fn ready(result: Result<(), Error>) -> Self {
        Confirmation {
            inner: ConfirmationInner::Ready(Some(result)),
        }
    }

    pub(crate) fn slot(conn: Weak<Inner>, (index, generation): (u32, u32)) -> Self {
        Confirmation {
            inner: ConfirmationInner::Slot {
                conn,
                index,
                generation,
            },
        }
    }
}

impl Future for Confirmation {
    type Output = Result<(), Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = match &mut self.inner {
            ConfirmationInner::Ready(r) => Poll::Ready(r.take().unwrap_or_else(|| Err(gone()))),
            ConfirmationInner::Slot {
                conn,
                index,
                generation,
            } => match conn.upgrade() {
                Some(conn) => conn
                    .shared
                    .borrow_mut()
                    .confirm_slab
                    .poll(*index, *generation, cx),
                None => Poll::Ready(Err(gone())),
            },
            ConfirmationInner::Read => Poll::Ready(Err(gone())),
        };
        if out.is_ready() {
            self.inner = ConfirmationInner::Read;
        }
        out
    }
}

impl Drop for Confirmation {
    fn drop(&mut self) {
        if let ConfirmationInner::Slot {
            conn,
            index,
            generation,
        } = &self.inner
        {
            if let Some(conn) = conn.upgrade() {
                if let Ok(mut sh) = conn.shared.try_borrow_mut() {
                    sh.confirm_slab.abandon(*index, *generation);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll(slab: &mut ConfirmSlab, (i, g): (u32, u32)) -> Poll<Result<(), Error>> {
        slab.poll(i, g, &mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn multiple_and_single_acks_settle_in_tag_order_and_slots_are_reused() {
        let mut slab = ConfirmSlab::default();
        let a = slab.insert(1, 1);
        let b = slab.insert(1, 2);
        let c = slab.insert(1, 3);
        assert!(poll(&mut slab, a).is_pending());
        assert!(slab.settle(1, 3, false, |_| Err(Error::Nacked { delivery_tag: 3 })));
        assert!(slab.settle(1, 2, true, |_| Ok(())));
        assert_eq!(slab.unsettled(1), 0);
        assert_eq!(poll(&mut slab, a), Poll::Ready(Ok(())));
        assert_eq!(poll(&mut slab, b), Poll::Ready(Ok(())));
        assert_eq!(
            poll(&mut slab, c),
            Poll::Ready(Err(Error::Nacked { delivery_tag: 3 }))
        );
        // Read slots are reused: no growth in steady state.
        for tag in 4..1_000 {
            let s = slab.insert(1, tag);
            slab.settle(1, tag, false, |_| Ok(()));
            assert_eq!(poll(&mut slab, s), Poll::Ready(Ok(())));
        }
        assert_eq!(slab.slots.len(), 3);
        // A stale handle (old generation) does not read someone else's slot.
        assert!(poll(&mut slab, a).is_ready());
    }

    #[test]
    fn abandoned_and_failed_waiters_free_their_slots() {
        let mut slab = ConfirmSlab::default();
        let a = slab.insert(1, 1);
        let b = slab.insert(2, 1);
        slab.abandon(a.0, a.1);
        assert!(slab.settle(1, 1, false, |_| Ok(())));
        slab.fail_all(&Error::Disconnected("cut".into()));
        assert!(matches!(
            poll(&mut slab, b),
            Poll::Ready(Err(Error::Disconnected(_)))
        ));
        assert_eq!(slab.free.len(), 2);
        assert!(!slab.settle(2, 1, false, |_| Ok(())));
    }
}
