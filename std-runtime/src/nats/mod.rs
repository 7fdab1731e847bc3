//! Async NATS client over the sans-IO core session ([`jetstream`] adds
//! streams, pull consumers and acknowledged publishes).
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
//! # TLS and authentication
//!
//! `tls://` URLs, [`ConnectOptions::tls`] / [`ConnectOptions::tls_ca_file`]
//! (verified against the dialled host; mutual TLS with
//! [`ConnectOptions::tls_client_cert_files`]) and
//! [`ConnectOptions::tls_first`]; see the `tls` module docs for when TLS
//! starts and why it never falls back to plaintext. Token and
//! user/password travel in CONNECT (inside TLS when TLS is on); NKey and
//! JWT `.creds` ([`ConnectOptions::nkey_file`],
//! [`ConnectOptions::credentials_file`], [`NkeyAuth`]) sign each server's
//! nonce, again on every reconnect. Refused credentials are
//! [`Error::AuthorizationViolation`] at connect and
//! [`Event::AuthorizationViolation`] (once per server) on reconnects;
//! permission violations are [`Event::PermissionViolation`] and leave the
//! connection up. Delivery guarantees are the same over TLS.
//!
//! One connection task per client owns the socket (io_uring or epoll), the
//! receive buffer and the core session; [`Client`] handles write commands
//! straight into the session's transmit buffer. See [`Error`] for what each
//! failure means, and [`Event`] for connection events.

mod auth;
mod client;
mod connection;
mod error;
mod inbound;
pub mod jetstream;
mod message;
mod options;
mod shared;
mod subscriber;
mod tls;
mod unconfirmed;
mod url;

pub use crate::layers::TlsConfig;
pub use auth::NkeyAuth;
pub use client::{connect, Client, EventStream};
pub use courier_core::nats::ServerInfo;
pub use error::Error;
pub use message::{HeaderMap, Message};
pub use options::{ConnectOptions, Event, PendingLimits};
pub use shared::{
    ConnectionState, Statistics, MAX_PENDING_REQUESTS, MAX_SUBSCRIPTIONS, VECTORED_PAYLOAD_MIN,
};
pub use subscriber::Subscriber;
pub use url::{ServerAddr, DEFAULT_PORT};
