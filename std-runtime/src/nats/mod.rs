//! Async NATS client over the sans-IO core session.
//!
//! ```no_run
//! use futures::StreamExt;
//! courier::run(async {
//!     let client = courier::nats::ConnectOptions::new()
//!         .name("sensor-gateway")
//!         .connect(["nats://127.0.0.1:4222"])
//!         .await?;
//!     let mut sub = client.subscribe("telemetry.>").await?;
//!     client.publish("telemetry.temp", "21.5").await?;
//!     let msg = sub.next().await.expect("one message");
//!     println!("{}: {:?}", msg.subject(), msg.payload);
//!     client.drain().await
//! }).unwrap();
//! ```
//!
//! # What reached the server
//!
//! async-nats lost messages around disconnects while `publish` returned
//! `Ok` (#182, #773). courier's contract:
//!
//! - `publish` returning `Ok` means the command is queued, in order, in the
//!   transmit buffer; nothing has been written yet. While disconnected it is
//!   held (bounded by [`ConnectOptions::reconnect_buffer_size`], default
//!   8 MiB) and written right after the next handshake, behind the renewed
//!   subscriptions. A full buffer is [`Error::ReconnectBufferFull`]: that
//!   message was not queued, and nothing queued is ever dropped to make room.
//! - Bytes count as written only after the socket accepted the whole write.
//!   If the connection breaks during a write, those publishes are kept and
//!   written again after the reconnect (a message in that last write may
//!   arrive twice). Bytes the kernel already accepted when a server dies
//!   may or may not have been processed; TCP cannot tell, so courier counts
//!   them: [`Event::Disconnected`] carries `unconfirmed_publishes` (and
//!   `unconfirmed_bytes`), what was written since the last confirmation
//!   point, a PONG to a flush or to the PING the client sends by itself
//!   while publishes are unconfirmed ([`ConnectOptions::confirm_interval`],
//!   default every 1 s or 1 MiB). They add up in
//!   [`Statistics::unconfirmed_publishes`]: never counted as delivered.
//! - Opt-in at-least-once: [`ConnectOptions::resend_unconfirmed`] queues
//!   those publishes again for the next connection; a publish the old
//!   server did process then arrives twice
//!   ([`Statistics::resent_publishes`] counts them).
//! - [`Client::flush`] returning `Ok` means the server has processed every
//!   earlier command (PING/PONG). It fails with [`Error::Disconnected`] if the
//!   connection drops first and [`Error::TimedOut`] after the flush timeout:
//!   it never hangs.
//! - [`Client::unsent_bytes`] tells how much is still queued;
//!   [`Event::Disconnected`] says how many unsent publishes were kept for
//!   the next connection (and how many were lost, normally none);
//!   [`Event::Reconnected`] how many held publishes (and bytes) the
//!   handshake released.
//! - [`Client::drain`] and [`Subscriber::drain`] lose nothing the server
//!   routed: a draining subscription keeps delivering until the PONG of a
//!   PING written after its UNSUB proves the server processed the UNSUB
//!   ([`protocol_stats`](Client::protocol_stats)`.dropped_unknown_sid`
//!   stays 0).
//!
//! # Slow consumers
//!
//! Each subscriber has a bounded queue ([`PendingLimits`], nats.go's
//! 512Ki messages / 64 MiB by default). When it is full, new messages for
//! that subscriber are dropped, counted ([`Subscriber::dropped`]) and
//! reported once per overflow episode as [`Event::SlowConsumer`].
//!
//! One connection task per client owns the socket (io_uring or epoll), the
//! receive buffer and the core session; [`Client`] handles write commands
//! straight into the session's transmit buffer. See [`Error`] for what each
//! failure means, and [`Event`] for connection events.

mod client;
mod connection;
mod error;
mod message;
mod options;
mod subscriber;
mod unconfirmed;
mod url;

pub use client::{
    connect, Client, ConnectionState, EventStream, Statistics, MAX_PENDING_REQUESTS,
    MAX_SUBSCRIPTIONS, VECTORED_PAYLOAD_MIN,
};
pub use courier_core::nats::ServerInfo;
pub use error::Error;
pub use message::{HeaderMap, Message};
pub use options::{ConnectOptions, Event, PendingLimits};
pub use subscriber::Subscriber;
pub use url::{ServerAddr, DEFAULT_PORT};
