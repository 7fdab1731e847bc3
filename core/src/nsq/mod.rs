//! NSQ V2 protocol.
//!
//! - [`frame`]: the frame codec and message decoding.
//! - [`commands`]: command encoders (IDENTIFY, SUB, PUB, ...).
//! - [`error`]: nsqd's `E_*` errors.

pub mod commands;
pub mod error;
pub mod frame;

pub use commands::{CommandError, Identify, NameError};
pub use error::{ErrorCode, ServerError};
pub use frame::{decode_frame, Frame, FrameError, Message, MessageId};
