//! The ids the NATS session hands out: the bottom layer every other file of
//! `nats/` may use (it uses nothing).

/// Subscription id, unique for the life of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sid(pub u64);

/// Identifies an outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u64);

/// Identifies a PING; PONGs answer PINGs in order, so `Pong { ping }`
/// also answers every earlier ping of the same connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PingId(pub u64);
