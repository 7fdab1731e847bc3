//! courier-core: the sans-IO protocol core of courier.
//!
//! Everything here is `#![no_std]` and allocation-free: buffers are chosen by
//! the caller, input is bytes plus the current time, output is bytes to write,
//! events, and the next deadline. Nothing in this crate knows about sockets,
//! clocks, threads or allocators; drivers (the `embedded-io` ones in
//! [`drivers`], the io_uring/epoll runtime in the `courier` crate) do the IO.
//!
//! Layout, one folder per protocol:
//! - [`nats`]: NATS client protocol (framing, commands, session, subscriptions).
//! - [`nsq`]: NSQ V2 protocol (framing, commands, session, RDY control).
//! - [`amqp`]: AMQP 0-9-1 (frames, methods, session with channels and confirms).
//! - [`buf`]: fixed-capacity receive/transmit buffers shared by both.
//! - [`time`]: the `Instant` the driver passes in.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod amqp;
pub mod buf;
pub mod drivers;
pub mod nats;
pub mod nsq;
pub mod time;
