//! NSQ parsers: frames, messages, error frames, IDENTIFY and AUTH responses.

use courier_core::nsq::frame::{decode_frame, Frame};
use courier_core::nsq::identify::{parse_auth_response, parse_identify_response};
use courier_core::nsq::{IdentifyReply, ServerError};

fn capacity(selector: u8) -> usize {
    match selector % 4 {
        0 => 8,
        1 => 64,
        2 => 1024,
        _ => 1 << 20,
    }
}

/// `decode_frame` over a stream, and every frame's contents decoded as the
/// session would (messages, `E_*` errors, JSON responses).
pub fn nsq_frame(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let capacity = capacity(selector);
    let mut rest = &stream[..stream.len().min(capacity)];
    loop {
        match decode_frame(rest, capacity) {
            Ok(Some((frame, used))) => {
                assert!(
                    used >= 8 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                check_frame(&frame, used);
                for cut in [used - 1, used / 2, 3] {
                    if cut > 0 && cut < used {
                        assert_eq!(
                            decode_frame(&rest[..cut], capacity),
                            Ok(None),
                            "a {used}-byte frame cut at {cut} must need more bytes"
                        );
                    }
                }
                rest = &rest[used..];
            }
            Ok(None) => {
                assert!(
                    rest.len() < capacity,
                    "stall: {} buffered bytes fill a {capacity}-byte buffer and the decoder wants more",
                    rest.len()
                );
                break;
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
    }
}

fn check_frame(frame: &Frame<'_>, used: usize) {
    match frame {
        Frame::Response(data) => {
            assert_eq!(data.len() + 8, used);
            nsq_response(data);
        }
        Frame::Error(data) => {
            assert_eq!(data.len() + 8, used);
            let error = ServerError::parse(data);
            let _ = (error.to_string(), error.is_fatal());
        }
        Frame::Message(message) => {
            assert_eq!(message.body.len() + 8 + 26, used);
            let _ = message.id.to_string();
        }
    }
}

/// A response frame's data read as IDENTIFY's and AUTH's answer.
pub fn nsq_response(data: &[u8]) {
    match parse_identify_response(data) {
        Ok(IdentifyReply::Negotiated(response)) => {
            let _ = response.compression();
        }
        Ok(IdentifyReply::Ok) => assert_eq!(data, b"OK"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Err(e) = parse_auth_response(data) {
        let _ = e.to_string();
    }
}
