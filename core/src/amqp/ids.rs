//! Numbers of the AMQP 0-9-1 wire: frame types, class and method ids, reply
//! codes. The bottom layer: nothing here depends on another amqp module.

/// Protocol header a client sends first: `AMQP` 0 0-9-1.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// Frame type of a method frame.
pub const FRAME_METHOD: u8 = 1;
/// Frame type of a content header frame.
pub const FRAME_HEADER: u8 = 2;
/// Frame type of a content body frame.
pub const FRAME_BODY: u8 = 3;
/// Frame type of a heartbeat frame.
pub const FRAME_HEARTBEAT: u8 = 8;
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// Bytes a frame adds around its payload: type, channel, size, frame-end.
pub const FRAME_OVERHEAD: usize = 8;
/// The smallest frame-max a peer may negotiate (spec: 4096).
pub const FRAME_MIN_SIZE: u32 = 4096;

/// A channel number; 0 is the connection itself.
pub type ChannelId = u16;

/// Class ids.
pub mod class {
    /// connection
    pub const CONNECTION: u16 = 10;
    /// channel
    pub const CHANNEL: u16 = 20;
    /// exchange
    pub const EXCHANGE: u16 = 40;
    /// queue
    pub const QUEUE: u16 = 50;
    /// basic
    pub const BASIC: u16 = 60;
    /// confirm (RabbitMQ extension)
    pub const CONFIRM: u16 = 85;
    /// tx
    pub const TX: u16 = 90;
}

/// A reply code of `connection.close` / `channel.close` / `basic.return`,
/// classified. [`ReplyCode::is_connection_level`] tells whether the code
/// ends the whole connection (a "hard error") or only the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyCode {
    /// 200: normal close.
    Success,
    /// 311: the message was too large (channel).
    ContentTooLarge,
    /// 312: a mandatory message found no queue (basic.return).
    NoRoute,
    /// 313: an immediate message found no consumer (basic.return).
    NoConsumers,
    /// 320: an operator closed the connection (connection).
    ConnectionForced,
    /// 402: invalid virtual host path (connection).
    InvalidPath,
    /// 403: wrong credentials or no permission (channel or connection).
    AccessRefused,
    /// 404: the exchange or queue does not exist (channel).
    NotFound,
    /// 405: exclusive queue of another connection (channel).
    ResourceLocked,
    /// 406: declare with different arguments, or an unknown delivery tag (channel).
    PreconditionFailed,
    /// 501: malformed frame (connection).
    FrameError,
    /// 502: malformed method arguments (connection).
    SyntaxError,
    /// 503: a method not allowed now (connection).
    CommandInvalid,
    /// 504: a channel not open (connection).
    ChannelError,
    /// 505: a frame out of sequence (connection).
    UnexpectedFrame,
    /// 506: the server ran out of a resource (connection).
    ResourceError,
    /// 530: not allowed, e.g. a vhost the user may not open (connection).
    NotAllowed,
    /// 540: not implemented (connection).
    NotImplemented,
    /// 541: the server's internal error (connection).
    InternalError,
    /// A code this client does not know.
    Other(u16),
}

impl ReplyCode {
    /// Classifies a numeric code.
    pub const fn from_u16(code: u16) -> Self {
        match code {
            200 => ReplyCode::Success,
            311 => ReplyCode::ContentTooLarge,
            312 => ReplyCode::NoRoute,
            313 => ReplyCode::NoConsumers,
            320 => ReplyCode::ConnectionForced,
            402 => ReplyCode::InvalidPath,
            403 => ReplyCode::AccessRefused,
            404 => ReplyCode::NotFound,
            405 => ReplyCode::ResourceLocked,
            406 => ReplyCode::PreconditionFailed,
            501 => ReplyCode::FrameError,
            502 => ReplyCode::SyntaxError,
            503 => ReplyCode::CommandInvalid,
            504 => ReplyCode::ChannelError,
            505 => ReplyCode::UnexpectedFrame,
            506 => ReplyCode::ResourceError,
            530 => ReplyCode::NotAllowed,
            540 => ReplyCode::NotImplemented,
            541 => ReplyCode::InternalError,
            other => ReplyCode::Other(other),
        }
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        match self {
            ReplyCode::Success => 200,
            ReplyCode::ContentTooLarge => 311,
            ReplyCode::NoRoute => 312,
            ReplyCode::NoConsumers => 313,
            ReplyCode::ConnectionForced => 320,
            ReplyCode::InvalidPath => 402,
            ReplyCode::AccessRefused => 403,
            ReplyCode::NotFound => 404,
            ReplyCode::ResourceLocked => 405,
            ReplyCode::PreconditionFailed => 406,
            ReplyCode::FrameError => 501,
            ReplyCode::SyntaxError => 502,
            ReplyCode::CommandInvalid => 503,
            ReplyCode::ChannelError => 504,
            ReplyCode::UnexpectedFrame => 505,
            ReplyCode::ResourceError => 506,
            ReplyCode::NotAllowed => 530,
            ReplyCode::NotImplemented => 540,
            ReplyCode::InternalError => 541,
            ReplyCode::Other(c) => c,
        }
    }

    /// True for the spec's "hard errors" that close the whole connection.
    pub const fn is_connection_level(self) -> bool {
        matches!(
            self,
            ReplyCode::ConnectionForced
                | ReplyCode::InvalidPath
                | ReplyCode::FrameError
                | ReplyCode::SyntaxError
                | ReplyCode::CommandInvalid
                | ReplyCode::ChannelError
                | ReplyCode::UnexpectedFrame
                | ReplyCode::ResourceError
                | ReplyCode::NotAllowed
                | ReplyCode::NotImplemented
                | ReplyCode::InternalError
        )
    }
}
