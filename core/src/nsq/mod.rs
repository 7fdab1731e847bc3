//! NSQ V2 protocol: sans-IO, `no_std`, allocation-free.
//!
//! - [`frame`]: the frame codec and message decoding (bodies borrowed).
//! - [`commands`]: command encoders (IDENTIFY, AUTH, SUB, RDY, FIN, REQ,
//!   TOUCH, CLS, NOP, PUB, MPUB, DPUB), names and sizes checked first.
//! - [`error`]: nsqd's `E_*` errors, and which ones close the connection.
//! - [`identify`]: nsqd's IDENTIFY and AUTH responses.
//! - [`session`]: one connection's state machine (handshake with TLS,
//!   compression and AUTH steps, heartbeats, in-order publish results).
//! - [`rdy`]: the RDY controller for a consumer's connections
//!   (`max_in_flight` across them, rotation, idle redistribution, backoff).
//!
//! A producer over any transport, driven with byte vectors:
//!
//! ```
//! use courier_core::nsq::{Event, Identify, Options, Session};
//! use courier_core::time::Instant;
//!
//! let identify = Identify { feature_negotiation: true, ..Identify::default() };
//! let mut session: Session<[u8; 512], 8> = Session::new(Options::new(4096), [0u8; 512]);
//! session.start(&identify, Instant(0)).unwrap();
//! assert!(session.transmit().starts_with(b"  V2IDENTIFY\n"));
//! let n = session.transmit().len();
//! session.transmitted(n);
//!
//! // nsqd answers IDENTIFY with its settings (a response frame).
//! let json = br#"{"max_rdy_count":2500,"version":"1.3.0"}"#;
//! let mut frame = ((json.len() + 4) as i32).to_be_bytes().to_vec();
//! frame.extend_from_slice(&0i32.to_be_bytes());
//! frame.extend_from_slice(json);
//! assert_eq!(session.handle_input(&frame, Instant(1)).unwrap(), (frame.len(), None));
//! assert_eq!(session.poll_event(), Some(Event::Identified));
//! assert_eq!(session.poll_event(), Some(Event::Ready));
//!
//! let id = session.publish("telemetry", b"21.5C").unwrap();
//! assert_eq!(session.transmit(), b"PUB telemetry\n\x00\x00\x00\x0521.5C");
//! let ok = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";
//! assert_eq!(session.handle_input(ok, Instant(2)).unwrap(), (10, None));
//! assert_eq!(session.poll_event(), Some(Event::Published { id }));
//! ```

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
pub use rdy::{Admission, ConnId, RdyConfig, RdyController, RdyPolicy, RdyTimer};
pub use session::{Event, Options, PublishId, Session, SessionError, State, EVENT_QUEUE};
