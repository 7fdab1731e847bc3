//! Errors nsqd reports in error frames (`E_CODE description`).
//!
//! Every code nsqd sends is a variant of [`ErrorCode`]; [`ServerError`]
//! keeps the code and nsqd's own words (copied into a small fixed string,
//! truncated if longer) so the error outlives the receive buffer.

use core::fmt;

/// Longest part of nsqd's description that [`ServerError`] keeps.
pub const SERVER_TEXT_CAPACITY: usize = 104;

/// An `E_*` code from an nsqd error frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorCode {
    /// `E_INVALID`: the command was malformed or not allowed in this state.
    Invalid,
    /// `E_BAD_BODY`: a command's body (IDENTIFY JSON, MPUB) was malformed.
    BadBody,
    /// `E_BAD_TOPIC`: invalid topic name.
    BadTopic,
    /// `E_BAD_CHANNEL`: invalid channel name.
    BadChannel,
    /// `E_BAD_MESSAGE`: a published message was empty or too big.
    BadMessage,
    /// `E_PUB_FAILED`: nsqd could not accept a PUB (e.g. it is exiting).
    PubFailed,
    /// `E_MPUB_FAILED`: nsqd could not accept an MPUB.
    MpubFailed,
    /// `E_DPUB_FAILED`: nsqd could not accept a DPUB.
    DpubFailed,
    /// `E_FIN_FAILED`: FIN for a message not in flight (timed out, or twice).
    FinFailed,
    /// `E_REQ_FAILED`: REQ for a message not in flight.
    ReqFailed,
    /// `E_TOUCH_FAILED`: TOUCH for a message not in flight.
    TouchFailed,
    /// `E_AUTH_FAILED`: the auth server rejected the secret or was unreachable.
    AuthFailed,
    /// `E_UNAUTHORIZED`: the identity may not do this (topic/channel/PUB).
    Unauthorized,
    /// `E_AUTH_DISABLED`: AUTH sent to an nsqd without `--auth-http-address`.
    AuthDisabled,
    /// `E_AUTH_FIRST`: a command before AUTH on an nsqd that requires it.
    AuthFirst,
    /// A code this client does not know; treated as fatal.
    Unknown,
}

impl ErrorCode {
    /// Maps the code word (`E_INVALID`) to a variant.
    pub fn from_code(code: &[u8]) -> Self {
        match code {
            b"E_INVALID" => ErrorCode::Invalid,
            b"E_BAD_BODY" => ErrorCode::BadBody,
            b"E_BAD_TOPIC" => ErrorCode::BadTopic,
            b"E_BAD_CHANNEL" => ErrorCode::BadChannel,
            b"E_BAD_MESSAGE" => ErrorCode::BadMessage,
            b"E_PUB_FAILED" => ErrorCode::PubFailed,
            b"E_MPUB_FAILED" => ErrorCode::MpubFailed,
            b"E_DPUB_FAILED" => ErrorCode::DpubFailed,
            b"E_FIN_FAILED" => ErrorCode::FinFailed,
            b"E_REQ_FAILED" => ErrorCode::ReqFailed,
            b"E_TOUCH_FAILED" => ErrorCode::TouchFailed,
            b"E_AUTH_FAILED" => ErrorCode::AuthFailed,
            b"E_UNAUTHORIZED" => ErrorCode::Unauthorized,
            b"E_AUTH_DISABLED" => ErrorCode::AuthDisabled,
            b"E_AUTH_FIRST" => ErrorCode::AuthFirst,
            _ => ErrorCode::Unknown,
        }
    }

    /// The code word as nsqd spells it (`"E_UNKNOWN"` for unknown codes).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "E_INVALID",
            ErrorCode::BadBody => "E_BAD_BODY",
            ErrorCode::BadTopic => "E_BAD_TOPIC",
            ErrorCode::BadChannel => "E_BAD_CHANNEL",
            ErrorCode::BadMessage => "E_BAD_MESSAGE",
            ErrorCode::PubFailed => "E_PUB_FAILED",
            ErrorCode::MpubFailed => "E_MPUB_FAILED",
            ErrorCode::DpubFailed => "E_DPUB_FAILED",
            ErrorCode::FinFailed => "E_FIN_FAILED",
            ErrorCode::ReqFailed => "E_REQ_FAILED",
            ErrorCode::TouchFailed => "E_TOUCH_FAILED",
            ErrorCode::AuthFailed => "E_AUTH_FAILED",
            ErrorCode::Unauthorized => "E_UNAUTHORIZED",
            ErrorCode::AuthDisabled => "E_AUTH_DISABLED",
            ErrorCode::AuthFirst => "E_AUTH_FIRST",
            ErrorCode::Unknown => "E_UNKNOWN",
        }
    }

    /// True when nsqd closes the connection after this error.
    ///
    /// Only FIN/REQ/TOUCH failures leave the connection usable (the message
    /// already timed out and will be redelivered); every other code is sent
    /// by nsqd just before it hangs up.
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            ErrorCode::FinFailed | ErrorCode::ReqFailed | ErrorCode::TouchFailed
        )
    }

    /// What the application can do about it.
    fn advice(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "a command was malformed or sent in the wrong state; this is a client bug, please report it",
            ErrorCode::BadBody => "a command body was malformed (IDENTIFY settings out of nsqd's range, or an empty MPUB); check the IDENTIFY options",
            ErrorCode::BadTopic => "use a topic name of 1-64 characters from [.a-zA-Z0-9_-], optionally ending in #ephemeral",
            ErrorCode::BadChannel => "use a channel name of 1-64 characters from [.a-zA-Z0-9_-], optionally ending in #ephemeral",
            ErrorCode::BadMessage => "messages must be non-empty and no larger than nsqd's --max-msg-size (and MPUB batches no larger than --max-body-size)",
            ErrorCode::PubFailed | ErrorCode::MpubFailed | ErrorCode::DpubFailed => {
                "nsqd could not take the message (it may be exiting); publish again, to another nsqd if possible"
            }
            ErrorCode::FinFailed | ErrorCode::ReqFailed | ErrorCode::TouchFailed => {
                "the message was no longer in flight (it timed out and will be redelivered); make handlers faster, TOUCH long-running ones, or raise msg_timeout"
            }
            ErrorCode::AuthFailed => "check the auth secret and that nsqd's auth server is reachable",
            ErrorCode::Unauthorized => "the auth identity lacks permission for this topic/channel or command; ask for the permission",
            ErrorCode::AuthDisabled => "nsqd has no auth server configured; do not send an auth secret to it",
            ErrorCode::AuthFirst => "nsqd requires AUTH before other commands; configure an auth secret",
            ErrorCode::Unknown => "an error code this client does not know; the connection is closed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error frame from nsqd, with the server's description kept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerError {
    /// The `E_*` code.
    pub code: ErrorCode,
    /// nsqd's text after the code (for unknown codes, the whole frame),
    /// truncated to [`SERVER_TEXT_CAPACITY`] bytes at a character boundary.
    pub text: heapless::String<SERVER_TEXT_CAPACITY, u8>,
}

impl ServerError {
    /// Parses the data of an error frame: `E_CODE description`.
    pub fn parse(data: &[u8]) -> Self {
        let (code_word, rest) = match data.iter().position(|&b| b == b' ') {
            Some(at) => (&data[..at], &data[at + 1..]),
            None => (data, &data[data.len()..]),
        };
        let code = ErrorCode::from_code(code_word);
        let text_source = if code == ErrorCode::Unknown {
            data
        } else {
            rest
        };
        ServerError {
            code,
            text: copy_text(text_source),
        }
    }

    /// True when nsqd closes the connection after this error.
    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }
}

/// Copies the longest valid UTF-8 prefix that fits.
fn copy_text<const N: usize>(bytes: &[u8]) -> heapless::String<N, u8> {
    let valid = match core::str::from_utf8(bytes) {
        Ok(s) => s,
        // `valid_up_to` bytes are valid UTF-8 by definition.
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    };
    let mut end = valid.len().min(N);
    while !valid.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = heapless::String::new();
    // Cannot fail: at most N bytes.
    let _ = out.push_str(&valid[..end]);
    out
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nsqd error {}", self.code)?;
        if !self.text.is_empty() {
            write!(f, " ({})", self.text)?;
        }
        let survives = if self.is_fatal() {
            "the connection is closed"
        } else {
            "the connection stays open"
        };
        write!(f, ": {survives}; {}", self.code.advice())
    }
}

impl core::error::Error for ServerError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn parses_captured_errors() {
        let e = ServerError::parse(b"E_BAD_TOPIC SUB topic name \"bad!topic\" is not valid");
        assert_eq!(e.code, ErrorCode::BadTopic);
        assert_eq!(e.text.as_str(), "SUB topic name \"bad!topic\" is not valid");
        assert!(e.is_fatal());
        let e = ServerError::parse(b"E_AUTH_DISABLED AUTH disabled");
        assert_eq!(e.code, ErrorCode::AuthDisabled);
        let e = ServerError::parse(b"E_INVALID cannot FIN in current state");
        assert_eq!(e.code, ErrorCode::Invalid);
    }

    #[test]
    fn fatality_matches_nsqd() {
        for code in [
            "E_INVALID",
            "E_BAD_BODY",
            "E_BAD_TOPIC",
            "E_BAD_CHANNEL",
            "E_BAD_MESSAGE",
            "E_PUB_FAILED",
            "E_MPUB_FAILED",
            "E_DPUB_FAILED",
            "E_AUTH_FAILED",
            "E_UNAUTHORIZED",
            "E_AUTH_DISABLED",
            "E_AUTH_FIRST",
        ] {
            let c = ErrorCode::from_code(code.as_bytes());
            assert_eq!(c.as_str(), code);
            assert!(c.is_fatal(), "{code}");
        }
        for code in ["E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"] {
            let c = ErrorCode::from_code(code.as_bytes());
            assert_eq!(c.as_str(), code);
            assert!(!c.is_fatal(), "{code}");
        }
    }

    #[test]
    fn unknown_code_keeps_whole_text_and_is_fatal() {
        let e = ServerError::parse(b"E_NEW_THING something");
        assert_eq!(e.code, ErrorCode::Unknown);
        assert_eq!(e.text.as_str(), "E_NEW_THING something");
        assert!(e.is_fatal());
        let e = ServerError::parse(b"");
        assert_eq!(e.code, ErrorCode::Unknown);
    }

    #[test]
    fn long_and_invalid_text_is_truncated_safely() {
        let mut long = std::vec::Vec::from(&b"E_INVALID "[..]);
        long.extend(core::iter::repeat_n("é".as_bytes(), 100).flatten());
        let e = ServerError::parse(&long);
        assert_eq!(e.text.len(), 104);
        let e = ServerError::parse(b"E_INVALID ok\xffrest");
        assert_eq!(e.text.as_str(), "ok");
    }

    #[test]
    fn display_says_what_and_what_to_do() {
        let e = ServerError::parse(b"E_FIN_FAILED FIN 0123 failed");
        let s = e.to_string();
        assert!(s.contains("E_FIN_FAILED"), "{s}");
        assert!(s.contains("stays open"), "{s}");
        assert!(s.contains("msg_timeout"), "{s}");
        let s = ServerError::parse(b"E_BAD_CHANNEL x").to_string();
        assert!(s.contains("is closed") && s.contains("#ephemeral"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let e = ServerError::parse(&bytes);
            let _ = e.to_string();
        }
    }
}
