//! The channel table: which channel numbers are in use, their state, and
//! the confirm tracker of channels in confirm mode.

use heapless::Vec;

use super::confirms::ConfirmTracker;
use crate::amqp::ids::ChannelId;

/// Where a channel is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelState {
    /// `channel.open` sent, waiting for open-ok.
    Opening,
    /// Usable.
    Open,
    /// `channel.close` sent, waiting for close-ok; the server's other
    /// frames for it are dropped, as the spec asks.
    Closing,
}

/// One channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSlot<const WORDS: usize> {
    /// Its number.
    pub id: ChannelId,
    /// Its state.
    pub state: ChannelState,
    /// Confirm tracking, from `confirm.select` on.
    pub confirms: Option<ConfirmTracker<WORDS>>,
    /// False while the server paused content with `channel.flow`.
    pub flow_active: bool,
}

impl<const WORDS: usize> ChannelSlot<WORDS> {
    /// Unsettled publishes (0 outside confirm mode).
    pub fn unconfirmed(&self) -> u64 {
        self.confirms.as_ref().map_or(0, |c| c.outstanding())
    }
}

/// Up to `N` channels.
#[derive(Clone, Debug, Default)]
pub struct Channels<const N: usize, const WORDS: usize> {
    slots: Vec<ChannelSlot<WORDS>, N>,
}

impl<const N: usize, const WORDS: usize> Channels<N, WORDS> {
    /// No channels.
    pub const fn new() -> Self {
        Channels { slots: Vec::new() }
    }
    /// Takes the lowest free number up to `channel_max` (0: no limit but
    /// the table's); `None` when every number or slot is taken.
    pub fn allocate(&mut self, channel_max: u16) -> Option<ChannelId> {
        let max = if channel_max == 0 {
            u16::MAX
        } else {
            channel_max
        };
        if self.slots.is_full() {
            return None;
        }
        let id = (1..=max).find(|id| self.get(*id).is_none())?;
        self.slots
            .push(ChannelSlot {
                id,
                state: ChannelState::Opening,
                confirms: None,
                flow_active: true,
            })
            .ok()?;
        Some(id)
    }
    /// The channel `id`.
    pub fn get(&self, id: ChannelId) -> Option<&ChannelSlot<WORDS>> {
        self.slots.iter().find(|s| s.id == id)
    }
    /// The channel `id`, mutably.
    pub fn get_mut(&mut self, id: ChannelId) -> Option<&mut ChannelSlot<WORDS>> {
        self.slots.iter_mut().find(|s| s.id == id)
    }
    /// Forgets channel `id`; its slot as it was.
    pub fn remove(&mut self, id: ChannelId) -> Option<ChannelSlot<WORDS>> {
        let i = self.slots.iter().position(|s| s.id == id)?;
        Some(self.slots.swap_remove(i))
    }
    /// Every channel.
    pub fn iter(&self) -> impl Iterator<Item = &ChannelSlot<WORDS>> {
        self.slots.iter()
    }
    /// Forgets every channel.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}
