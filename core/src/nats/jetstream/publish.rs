//! Publishing to a stream: the headers JetStream reads from a publish.
//!
//! A publish is an ordinary NATS request to a subject the stream stores;
//! the reply is a [`PubAck`](super::PubAck) or an API error. These headers
//! make it idempotent and conditional.

use crate::nats::error::HeaderError;
use crate::nats::headers::HeaderWriter;

/// De-duplication id: a repeat within the stream's duplicate window is
/// acknowledged with `duplicate: true` and not stored again.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The publish fails unless the subject is stored by this stream.
pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
/// The publish fails unless the stream's last sequence is this.
pub const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
/// The publish fails unless the last sequence of this subject is this.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// The publish fails unless the stream's last message id is this.
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";

/// Options of one JetStream publish, written as headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublishOptions<'a> {
    /// `Nats-Msg-Id`.
    pub msg_id: Option<&'a str>,
    /// `Nats-Expected-Stream`.
    pub expected_stream: Option<&'a str>,
    /// `Nats-Expected-Last-Sequence`.
    pub expected_last_sequence: Option<u64>,
    /// `Nats-Expected-Last-Subject-Sequence`.
    pub expected_last_subject_sequence: Option<u64>,
    /// `Nats-Expected-Last-Msg-Id`.
    pub expected_last_msg_id: Option<&'a str>,
}

impl PublishOptions<'_> {
    /// True when no header is needed.
    pub fn is_empty(&self) -> bool {
        *self == PublishOptions::default()
    }

    /// Appends the headers to `writer`.
    pub fn write<S: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        writer: &mut HeaderWriter<S>,
    ) -> Result<(), HeaderError> {
        let mut num = [0u8; 20];
        if let Some(id) = self.msg_id {
            writer.insert(MSG_ID, id)?;
        }
        if let Some(s) = self.expected_stream {
            writer.insert(EXPECTED_STREAM, s)?;
        }
        if let Some(seq) = self.expected_last_sequence {
            writer.insert(EXPECTED_LAST_SEQUENCE, decimal(seq, &mut num))?;
        }
        if let Some(seq) = self.expected_last_subject_sequence {
            writer.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, decimal(seq, &mut num))?;
        }
        if let Some(id) = self.expected_last_msg_id {
            writer.insert(EXPECTED_LAST_MSG_ID, id)?;
        }
        Ok(())
    }
}

fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_on_the_wire() {
        let mut w = HeaderWriter::new([0u8; 256]).unwrap();
        PublishOptions {
            msg_id: Some("order-1"),
            expected_last_sequence: Some(0),
            expected_last_subject_sequence: Some(18446744073709551615),
            ..Default::default()
        }
        .write(&mut w)
        .unwrap();
        assert_eq!(
            w.as_bytes(),
            b"NATS/1.0\r\nNats-Msg-Id: order-1\r\nNats-Expected-Last-Sequence: 0\r\nNats-Expected-Last-Subject-Sequence: 18446744073709551615\r\n\r\n"
        );
        assert!(PublishOptions::default().is_empty());
    }
}
