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
mod url;

pub use client::{
    connect, Client, ConnectionState, EventStream, MAX_PENDING_REQUESTS, MAX_SUBSCRIPTIONS,
};
pub use courier_core::nats::ServerInfo;
pub use error::Error;
pub use message::{HeaderMap, Message};
pub use options::{ConnectOptions, Event, PendingLimits};
pub use subscriber::Subscriber;
pub use url::{ServerAddr, DEFAULT_PORT};
