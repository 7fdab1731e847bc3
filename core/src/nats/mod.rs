//! NATS client protocol, sans-IO.
//!
//! - [`parser`]: incremental, zero-copy parser of server operations.
//! - `commands` (crate-private): encoders of client operations; their sizes
//!   are public through [`Session::publish_size`] and [`CONNECT_MAX`].
//! - [`headers`]: NATS/1.0 header blocks, read and written without allocation.
//! - [`subject`]: subject / queue group validation and wildcard matching.
//! - [`info`]: the server's INFO in fixed-capacity types.
//! - [`jetstream`]: the JetStream API (subjects, JSON, acks, pull statuses).
//! - [`subscriptions`]: the subscription table (sids, queue groups, auto-unsubscribe).
//! - [`auth`]: NKey/JWT nonce signing through a driver-supplied [`auth::Authenticator`].
//! - [`session`]: the connection state machine drivers run ([`Session`]).
//!
//! A driver owns the transport and a receive buffer; it feeds received
//! bytes to [`Session::handle_input`], writes [`Session::transmit`], and
//! calls [`Session::handle_timeout`] at [`Session::poll_timeout`].

pub mod auth;
pub(crate) mod commands;
mod connect_json;
pub mod error;
pub mod headers;
pub mod ids;
pub mod info;
mod info_scan;
pub mod jetstream;
mod outbox;
pub mod parser;
pub mod session;
pub mod subject;
pub mod subscriptions;

pub use commands::{Connect, CONNECT_MAX, LANG, VERSION};
pub use error::{Error, HeaderError, InfoError, ProtocolError, ServerErrorKind, SubjectError};
pub use headers::{CheckedBlock, HeaderWriter, Headers};
pub use ids::{PingId, RequestId, Sid};
pub use info::{EssentialInfo, InfoStorage, ServerInfo};
pub use outbox::client_command;
pub use session::{
    required_tx_capacity, set_str, ConnectOptions, Credentials, Event, MaxPayloadWarning, Message,
    OptionTooLong, Received, ResetReport, Session, State, Stats,
};
pub use subscriptions::{Subscription, SubscriptionTable};
