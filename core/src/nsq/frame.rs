//! NSQ V2 frame codec: `[size: i32 BE][frame type: i32 BE][data]`.
//!
//! `size` counts the frame type and the data (so it is at least 4). Frames
//! are decoded incrementally from whatever bytes the transport has read so
//! far: an incomplete frame is `Ok(None)`, a complete one borrows its data
//! from the input (zero-copy), and anything malformed is a [`FrameError`].

use core::fmt;

/// Frame type of a response (`OK`, `CLOSE_WAIT`, `_heartbeat_`, JSON).
pub const FRAME_TYPE_RESPONSE: i32 = 0;
/// Frame type of an error (`E_INVALID ...`).
pub const FRAME_TYPE_ERROR: i32 = 1;
/// Frame type of a message delivered to a consumer.
pub const FRAME_TYPE_MESSAGE: i32 = 2;

/// Bytes before a frame's data: size (4) and frame type (4).
pub const FRAME_HEADER_LEN: usize = 8;
/// Bytes before a message body: timestamp (8), attempts (2), id (16).
pub const MESSAGE_HEADER_LEN: usize = 26;
/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 16;

/// The heartbeat response nsqd sends to idle clients; answer with `NOP`.
pub const HEARTBEAT: &[u8] = b"_heartbeat_";
/// The response to most successful commands.
pub const OK: &[u8] = b"OK";
/// The response to `CLS`: nsqd will send no more messages.
pub const CLOSE_WAIT: &[u8] = b"CLOSE_WAIT";

/// A 16-byte NSQ message id (ASCII hex as nsqd sends it).
///
/// Copied out of the frame (16 bytes) so a consumer can `FIN`/`REQ` it after
/// the receive buffer moved on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// The raw 16 bytes, as written in `FIN`/`REQ`/`TOUCH`.
    pub fn as_bytes(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// A message delivered to a consumer; the body borrows the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    /// When nsqd received the message, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// How many times nsqd has delivered this message (1 on first delivery).
    pub attempts: u16,
    /// The id to `FIN`, `REQ` or `TOUCH` the message with.
    pub id: MessageId,
    /// The message body, borrowed from the receive buffer.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// Decodes the data of a message frame.
    pub fn decode(data: &'a [u8]) -> Result<Self, FrameError> {
        let too_short = FrameError::MessageTooShort { len: data.len() };
        let (header, body) = data.split_at_checked(MESSAGE_HEADER_LEN).ok_or(too_short)?;
        let (ts, rest) = header.split_first_chunk::<8>().ok_or(too_short)?;
        let (attempts, rest) = rest.split_first_chunk::<2>().ok_or(too_short)?;
        let id = rest.first_chunk::<MESSAGE_ID_LEN>().ok_or(too_short)?;
        Ok(Message {
            timestamp_ns: i64::from_be_bytes(*ts),
            attempts: u16::from_be_bytes(*attempts),
            id: MessageId(*id),
            body,
        })
    }
}

/// One decoded frame, borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Frame<'a> {
    /// A response (`OK`, `CLOSE_WAIT`, `_heartbeat_`, an IDENTIFY/AUTH JSON).
    Response(&'a [u8]),
    /// An error: `E_CODE description`; see [`crate::nsq::error::ServerError`].
    Error(&'a [u8]),
    /// A message for a consumer.
    Message(Message<'a>),
}

/// A malformed frame. The connection cannot be resynchronised after any of
/// these, so the caller must close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The frame (header included) is bigger than the receive buffer.
    FrameTooLarge {
        /// Bytes the whole frame occupies, size prefix included.
        needed: usize,
        /// Bytes the receive buffer can hold.
        capacity: usize,
    },
    /// The size prefix is negative.
    NegativeSize {
        /// The size read from the wire.
        size: i32,
    },
    /// The size prefix is smaller than the 4-byte frame type it must cover.
    SizeTooSmall {
        /// The size read from the wire.
        size: i32,
    },
    /// The frame type is not 0 (response), 1 (error) or 2 (message).
    UnknownFrameType {
        /// The frame type read from the wire.
        frame_type: i32,
    },
    /// A message frame too short for timestamp, attempts and id (26 bytes).
    MessageTooShort {
        /// Length of the message frame's data.
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::FrameTooLarge { needed, capacity } => write!(
                f,
                "nsqd sent a {needed}-byte frame but the receive buffer holds {capacity} bytes; \
                 use a receive buffer at least as large as nsqd's --max-msg-size plus 34 bytes"
            ),
            FrameError::NegativeSize { size } => write!(
                f,
                "frame size {size} is negative: the peer is not speaking NSQ V2 (check the address points at nsqd's TCP port)"
            ),
            FrameError::SizeTooSmall { size } => write!(
                f,
                "frame size {size} is smaller than the 4-byte frame type: the stream is corrupt; reconnect"
            ),
            FrameError::UnknownFrameType { frame_type } => write!(
                f,
                "unknown frame type {frame_type} (expected 0, 1 or 2): the stream is corrupt or not NSQ V2; reconnect"
            ),
            FrameError::MessageTooShort { len } => write!(
                f,
                "message frame of {len} bytes is shorter than the 26-byte message header: the stream is corrupt; reconnect"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Decodes one frame from the front of `input`.
///
/// `capacity` is the size of the caller's receive buffer: a frame that can
/// never fit is reported as soon as its 4-byte size is read, so the caller
/// does not wait forever for bytes it has no room for.
///
/// Returns `Ok(None)` when more bytes are needed, or the frame and how many
/// bytes of `input` it used.
pub fn decode_frame(
    input: &[u8],
    capacity: usize,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(size) = input.first_chunk::<4>() else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(*size);
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    if size < 4 {
        return Err(FrameError::SizeTooSmall { size });
    }
    // size >= 4 and fits in i32, so this cannot overflow usize on 32-bit.
    let total = 4 + size as usize;
    if total > capacity {
        return Err(FrameError::FrameTooLarge {
            needed: total,
            capacity,
        });
    }
    let Some(frame) = input.get(..total) else {
        // Even before the whole frame arrived, a bad type is an error now.
        if let Some(ft) = input.get(4..8).and_then(|b| b.first_chunk::<4>()) {
            check_frame_type(i32::from_be_bytes(*ft))?;
        }
        return Ok(None);
    };
    let (header, data) = frame.split_at(FRAME_HEADER_LEN);
    let frame_type = header
        .get(4..8)
        .and_then(|b| b.first_chunk::<4>())
        .map(|b| i32::from_be_bytes(*b))
        .unwrap_or(-1);
    let frame = match check_frame_type(frame_type)? {
        FRAME_TYPE_RESPONSE => Frame::Response(data),
        FRAME_TYPE_ERROR => Frame::Error(data),
        _ => Frame::Message(Message::decode(data)?),
    };
    Ok(Some((frame, total)))
}

fn check_frame_type(frame_type: i32) -> Result<i32, FrameError> {
    match frame_type {
        FRAME_TYPE_RESPONSE | FRAME_TYPE_ERROR | FRAME_TYPE_MESSAGE => Ok(frame_type),
        _ => Err(FrameError::UnknownFrameType { frame_type }),
    }
}

/// Encodes a frame (used by tests and by peers that simulate nsqd).
///
/// Returns the number of bytes written, or `None` if `out` is too small.
pub fn encode_frame(out: &mut [u8], frame_type: i32, data: &[u8]) -> Option<usize> {
    let total = FRAME_HEADER_LEN.checked_add(data.len())?;
    let size = i32::try_from(data.len().checked_add(4)?).ok()?;
    let out = out.get_mut(..total)?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out[4..8].copy_from_slice(&frame_type.to_be_bytes());
    out[8..].copy_from_slice(data);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn frame(frame_type: i32, data: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; data.len() + 8];
        encode_frame(&mut out, frame_type, data).unwrap();
        out
    }

    fn message_data(ts: i64, attempts: u16, id: &[u8; 16], body: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&ts.to_be_bytes());
        d.extend_from_slice(&attempts.to_be_bytes());
        d.extend_from_slice(id);
        d.extend_from_slice(body);
        d
    }

    #[test]
    fn decodes_ok_response() {
        let bytes = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";
        assert_eq!(
            decode_frame(bytes, 1024),
            Ok(Some((Frame::Response(b"OK"), 10)))
        );
    }

    #[test]
    fn decodes_error_captured_from_nsqd() {
        let bytes = b"\x00\x00\x00!\x00\x00\x00\x01E_AUTH_DISABLED AUTH disabled";
        assert_eq!(
            decode_frame(bytes, 1024),
            Ok(Some((
                Frame::Error(b"E_AUTH_DISABLED AUTH disabled"),
                bytes.len()
            )))
        );
    }

    #[test]
    fn decodes_message_borrowing_body() {
        let data = message_data(1_700_000_000_000_000_000, 3, b"0123456789abcdef", b"hello");
        let bytes = frame(2, &data);
        let (f, n) = decode_frame(&bytes, 1024).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        let Frame::Message(m) = f else {
            panic!("not a message: {f:?}")
        };
        assert_eq!(m.timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(m.attempts, 3);
        assert_eq!(m.id.as_bytes(), b"0123456789abcdef");
        assert_eq!(m.body, b"hello");
        assert_eq!(m.body.as_ptr(), bytes[34..].as_ptr());
    }

    #[test]
    fn empty_body_message_is_fine() {
        let data = message_data(0, 1, b"0000000000000000", b"");
        let bytes = frame(2, &data);
        let (f, _) = decode_frame(&bytes, 64).unwrap().unwrap();
        assert!(matches!(f, Frame::Message(m) if m.body.is_empty()));
    }

    #[test]
    fn incomplete_is_none() {
        let bytes = frame(0, b"OK");
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut], 64), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn two_frames_decode_one_at_a_time() {
        let mut bytes = frame(0, b"OK");
        bytes.extend(frame(0, HEARTBEAT));
        let (f, n) = decode_frame(&bytes, 64).unwrap().unwrap();
        assert_eq!((f, n), (Frame::Response(b"OK"), 10));
        let (f, _) = decode_frame(&bytes[n..], 64).unwrap().unwrap();
        assert_eq!(f, Frame::Response(HEARTBEAT));
    }

    #[test]
    fn oversized_reported_from_size_alone() {
        let bytes = 1000i32.to_be_bytes();
        assert_eq!(
            decode_frame(&bytes, 512),
            Err(FrameError::FrameTooLarge {
                needed: 1004,
                capacity: 512
            })
        );
        // Exactly fitting is fine.
        let bytes = frame(0, &[b'x'; 504]);
        assert!(decode_frame(&bytes, 512).unwrap().is_some());
    }

    #[test]
    fn bad_sizes_and_types() {
        assert_eq!(
            decode_frame(&(-1i32).to_be_bytes(), 64),
            Err(FrameError::NegativeSize { size: -1 })
        );
        assert_eq!(
            decode_frame(&3i32.to_be_bytes(), 64),
            Err(FrameError::SizeTooSmall { size: 3 })
        );
        assert_eq!(
            decode_frame(&frame(7, b"x"), 64),
            Err(FrameError::UnknownFrameType { frame_type: 7 })
        );
        // The type is checked before the data arrives.
        assert_eq!(
            decode_frame(&frame(-5, b"xxxx")[..8], 64),
            Err(FrameError::UnknownFrameType { frame_type: -5 })
        );
        assert_eq!(
            decode_frame(&frame(2, &[0u8; 25]), 64),
            Err(FrameError::MessageTooShort { len: 25 })
        );
    }

    #[test]
    fn size_exactly_four_is_an_empty_response() {
        assert_eq!(
            decode_frame(b"\x00\x00\x00\x04\x00\x00\x00\x00", 64),
            Ok(Some((Frame::Response(b""), 8)))
        );
    }

    #[test]
    fn errors_display_guidance() {
        let text = std::format!(
            "{}",
            FrameError::FrameTooLarge {
                needed: 2000,
                capacity: 1000
            }
        );
        assert!(text.contains("2000") && text.contains("1000") && text.contains("receive buffer"));
    }

    fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|d| frame(0, &d)),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|d| frame(1, &d)),
            (
                any::<i64>(),
                any::<u16>(),
                any::<[u8; 16]>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(t, a, id, b)| frame(2, &message_data(t, a, &id, &b))),
        ]
    }

    /// Decodes every frame, feeding the input in chunks split at `cuts`,
    /// like a transport that delivers bytes in arbitrary pieces.
    fn decode_all_split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut available = 0;
        let mut consumed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort();
        cuts.push(bytes.len());
        for cut in cuts {
            available = available.max(cut);
            while let Some((f, n)) = decode_frame(&bytes[consumed..available], 4096).unwrap() {
                out.push(std::format!("{f:?}").into_bytes());
                consumed += n;
            }
        }
        assert_eq!(consumed, bytes.len());
        out
    }

    proptest! {
        #[test]
        fn split_anywhere_equivalence(
            frames in proptest::collection::vec(arb_frame(), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let bytes: Vec<u8> = frames.concat();
            let whole = decode_all_split(&bytes, &[]);
            prop_assert_eq!(whole.len(), frames.len());
            prop_assert_eq!(decode_all_split(&bytes, &cuts), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), cap in 0usize..512) {
            let mut rest = &bytes[..];
            while let Ok(Some((_, n))) = decode_frame(rest, cap) {
                prop_assert!(n >= 8 && n <= rest.len() && n <= cap);
                rest = &rest[n..];
            }
        }
    }
}
