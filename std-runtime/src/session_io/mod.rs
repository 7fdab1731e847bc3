//! The connection skeleton every protocol's runtime connection is built on.
//!
//! A protocol connection (NSQ today; NATS and AMQP next) is its sans-IO core
//! session plus these protocol-free pieces, so each protocol adds only its
//! session and its events:
//!
//! - [`Clock`]: the one clock that feeds the core session its `Instant`s and
//!   turns the session's deadlines (`poll_timeout`) into tokio deadlines.
//! - [`Inbound`]: the receive side: the bytes the transport read (a
//!   [`ReadBuffer`](crate::transport::ReadBuffer) lent to the kernel) and,
//!   once TLS or compression is layered on, the decoded bytes the session
//!   parses. One `data()` / `consume()` whatever the layers.
//! - [`room`]: what to do when the session's transmit buffer is full
//!   (`BufferFull` / `Capacity`): move pending bytes on and retry
//!   ([`retry_after_flush`]), or wake the writer and wait for room
//!   ([`wait_for_room`]).
//! - [`Wakeups`]: the writer's wake-up, "room was made" and "state changed"
//!   signals, registered before the condition is checked so no wake-up is
//!   lost (no polling with `sleep`).
//! - Reconnect backoff with jitter: [`crate::reconnect`] (re-exported here).
//!
//! The pieces are independent: a connection takes the ones it needs.

mod clock;
mod inbound;
pub mod room;
mod wake;

pub use clock::Clock;
pub use inbound::Inbound;
pub use room::{retry_after_flush, wait_for_room};
pub use wake::Wakeups;

pub use crate::reconnect::{Backoff, BackoffPolicy, Jitter};
