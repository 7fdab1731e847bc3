//! Frames: `[type u8][channel u16][size u32][payload][0xCE]`.
//!
//! [`parse`] finds one frame at the start of the received bytes without
//! copying; a frame larger than the receive buffer is reported from its
//! 7-byte header, before its payload arrives.

use core::fmt;

use super::ids::{
    ChannelId, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD,
};

/// Bytes of the frame header (type, channel, size).
pub const FRAME_HEADER_LEN: usize = 7;

/// The kind of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameKind {
    /// A method (class id, method id, arguments).
    Method,
    /// A content header (class, body size, properties).
    Header,
    /// A piece of a message body.
    Body,
    /// A heartbeat (channel 0, empty).
    Heartbeat,
}

/// One frame borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its kind.
    pub kind: FrameKind,
    /// Its channel (0 is the connection).
    pub channel: ChannelId,
    /// The bytes between the header and the frame-end octet.
    pub payload: &'a [u8],
}

/// Bytes that are not a well-formed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// A frame of `needed` bytes (payload plus 8) that the receive buffer
    /// of `capacity` bytes can never hold.
    TooLarge {
        /// Bytes of the whole frame.
        needed: usize,
        /// Receive buffer capacity.
        capacity: usize,
    },
    /// A frame larger than the negotiated frame-max.
    ExceedsFrameMax {
        /// Bytes of the whole frame.
        size: usize,
        /// Negotiated frame-max.
        frame_max: u32,
    },
    /// The octet after the payload was not 0xCE.
    BadFrameEnd {
        /// What was there.
        found: u8,
    },
    /// A frame type other than 1, 2, 3, 8.
    UnknownType(u8),
    /// The server answered our protocol header with its own: it does not
    /// speak 0-9-1.
    ProtocolVersion {
        /// The 4 version octets the server offered.
        offered: [u8; 4],
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { needed, capacity } => write!(
                f,
                "a frame of {needed} bytes does not fit the {capacity}-byte receive buffer"
            ),
            FrameError::ExceedsFrameMax { size, frame_max } => {
                write!(
                    f,
                    "a frame of {size} bytes exceeds the negotiated frame-max {frame_max}"
                )
            }
            FrameError::BadFrameEnd { found } => {
                write!(f, "frame ends with 0x{found:02x} instead of 0xce")
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            FrameError::ProtocolVersion { offered } => write!(
                f,
                "the server does not speak AMQP 0-9-1 (it offered {}-{}-{}-{})",
                offered[0], offered[1], offered[2], offered[3]
            ),
        }
    }
}

/// Finds one frame at the start of `input`.
///
/// `Ok(None)`: more bytes are needed. `capacity` is the receive buffer's
/// (a frame that could never fit is an error at once); `frame_max` the
/// negotiated limit (0: none yet).
pub fn parse(
    input: &[u8],
    capacity: usize,
    frame_max: u32,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if input.len() >= 8 && input.starts_with(b"AMQP") {
        let mut offered = [0u8; 4];
        offered.copy_from_slice(&input[4..8]);
        return Err(FrameError::ProtocolVersion { offered });
    }
    let Some(header) = input.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let kind = match header[0] {
        FRAME_METHOD => FrameKind::Method,
        FRAME_HEADER => FrameKind::Header,
        FRAME_BODY => FrameKind::Body,
        FRAME_HEARTBEAT => FrameKind::Heartbeat,
        // "AMQP" starts with 'A': wait for all 8 bytes of a protocol header.
        b'A' if input.len() < 8 && b"AMQP".starts_with(&input[..input.len().min(4)]) => {
            return Ok(None)
        }
        other => return Err(FrameError::UnknownType(other)),
    };
    let channel = u16::from_be_bytes([header[1], header[2]]);
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let needed = size.saturating_add(FRAME_OVERHEAD);
    if frame_max != 0 && needed > frame_max as usize {
        return Err(FrameError::ExceedsFrameMax {
            size: needed,
            frame_max,
        });
    }
    if needed > capacity {
        return Err(FrameError::TooLarge { needed, capacity });
    }
    let Some(frame) = input.get(..needed) else {
        return Ok(None);
    };
    let end = frame[needed - 1];
    if end != FRAME_END {
        return Err(FrameError::BadFrameEnd { found: end });
    }
    Ok(Some((
        Frame {
            kind,
            channel,
            payload: &frame[FRAME_HEADER_LEN..needed - 1],
        },
        needed,
    )))
}

/// Writes a frame header for a payload of `len` bytes into `out[..7]`.
pub fn write_header(out: &mut [u8], frame_type: u8, channel: ChannelId, len: usize) {
    out[0] = frame_type;
    out[1..3].copy_from_slice(&channel.to_be_bytes());
    out[3..7].copy_from_slice(&(len as u32).to_be_bytes());
}

/// The 8 bytes of a heartbeat frame.
pub const HEARTBEAT: [u8; 8] = [FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END];
