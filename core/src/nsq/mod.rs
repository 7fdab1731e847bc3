//! NSQ V2 protocol.
//!
//! - [`frame`]: the frame codec and message decoding.
//! - [`commands`]: command encoders (IDENTIFY, SUB, PUB, ...).
//! - [`error`]: nsqd's `E_*` errors.
//! - [`identify`]: nsqd's IDENTIFY and AUTH responses.
//! - [`rdy`]: the RDY controller (max_in_flight across connections, backoff).
//! - [`session`]: the connection state machine (handshake, heartbeats, publishes).

pub mod commands;
pub mod error;
pub mod frame;
pub mod identify;
pub mod rdy;
pub mod session;

pub use commands::{CommandError, Identify, NameError};
pub use error::{ErrorCode, ServerError};
pub use frame::{decode_frame, Frame, FrameError, Message, MessageId};
pub use identify::{AuthResponse, Compression, IdentifyReply, IdentifyResponse, ResponseError};
pub use rdy::{Admission, ConnId, RdyConfig, RdyController, RdyPolicy};
pub use session::{Event, PublishId, Session, SessionError};
