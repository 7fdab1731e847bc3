//! JetStream, the persistence layer of NATS, sans-IO and without allocation.
//!
//! JetStream is an API spoken over core NATS: requests to `$JS.API.*`
//! subjects with JSON bodies, publishes answered by a `PubAck`, consumer
//! messages whose reply subject carries their metadata and takes the ack.
//! This module is the protocol part, usable on a device with the
//! [`drivers`](crate::drivers) (see `NatsClient::js_publish`):
//!
//! - [`api`]: `$JS.API.*` subjects written into the caller's buffer.
//! - [`config`]: stream / consumer configuration and request JSON.
//! - [`response`]: `PubAck`, stream and consumer info, API errors decoded.
//! - [`publish`]: `Nats-Msg-Id` and expected-sequence headers.
//! - [`ack`]: `$JS.ACK` reply-subject metadata (v1 and v2 layouts) and ack
//!   bodies (`+ACK`, `-NAK` with delay, `+WPI`, `+TERM`).
//! - [`pull`]: pull request JSON and status messages (100, 404, 408, 409).
//! - [`error`]: [`JsError`] and the API's error kinds.
//!
//! Delivery: a publish is stored once the `PubAck` arrives (a publish with
//! no ack may or may not be stored: retry with the same `Nats-Msg-Id`);
//! consumers with explicit ack are at-least-once.

pub mod ack;
pub mod api;
pub mod config;
pub mod error;
pub mod publish;
pub mod pull;
pub mod response;

pub use ack::{AckKind, AckMetadata};
pub use api::{ApiOp, ApiPrefix};
pub use config::{
    encode_json, AckPolicy, ConsumerConfig, CreateConsumerRequest, DeliverPolicy, Discard,
    PurgeRequest, Retention, Storage, StreamConfig,
};
pub use error::{ApiError, ApiErrorKind, JsError};
pub use publish::PublishOptions;
pub use pull::{Conflict, PullRequest, PullStatus};
pub use response::{
    decode_consumer_info, decode_pub_ack, decode_stream_info, decode_success, ConsumerInfo, PubAck,
    SequencePair, StreamInfo, StreamState, SuccessResponse,
};
