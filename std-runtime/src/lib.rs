//! courier: the Linux runtime of courier (io_uring with an epoll fallback).
//!
//! Write one async body and run it with [`run`]; the runtime picks io_uring
//! (tokio-uring) when the kernel allows it and falls back to epoll (tokio)
//! otherwise, logging the fallback once. `COURIER_TRANSPORT=epoll|uring|auto`
//! or [`Builder::backend`] forces a backend.
//!
//! ```no_run
//! courier::run(async {
//!     println!("running on {:?}", courier::current_backend());
//! });
//! ```
//!
//! - [`nats`]: async NATS client (publish, subscribe, request/reply, flush,
//!   drain, reconnect with bounded buffering) over `courier_core::nats`.
//! - [`nsq`]: NSQ producer and consumer over `courier_core::nsq`.
//! - [`outbox`]: durable client outbox (spool directory) for JetStream and NSQ.
//! - [`reconnect`]: the one backoff-with-jitter policy every protocol's
//!   reconnect loop uses, and the filter that says a repeated error once.
//! - [`amqp`]: AMQP 0-9-1 (RabbitMQ) connection, channels, confirms, consumers,
//!   reconnect with topology recovery, over `courier_core::amqp`.
//! - [`session_io`]: the connection skeleton every protocol's connection is
//!   built on (clock, receive buffer, room in the transmit buffer, wake-ups).
//! - [`transport`]: the TCP transport with one API over io_uring and epoll.
//! - [`runtime`]: backend detection, [`run`], [`Runtime`], [`spawn`].
//! - [`stats()`]: syscalls and bytes of the runtime on this thread, for
//!   benchmarks (syscalls per message).
//!
//! The runtime is single-threaded (one per core scales out); clients and
//! tasks are not `Send` and share state without locks.
#![warn(missing_docs)]

pub mod amqp;
pub mod layers;
pub mod nats;
pub mod nsq;
pub mod outbox;
pub mod reconnect;
pub mod runtime;
pub mod session_io;
pub mod stats;
pub mod transport;

pub use runtime::{
    current_backend, run, spawn, Backend, BackendChoice, Builder, Runtime, TRANSPORT_ENV,
};
pub use stats::{stats, Stats};
pub use transport::{current_transport, Transport};
