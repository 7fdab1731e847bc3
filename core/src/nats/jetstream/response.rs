//! JetStream API responses decoded with serde-json-core, borrowing the
//! reply's bytes. Fields a client does not act on are skipped, so newer
//! servers' extra fields do not break decoding.
//!
//! Every response may be `{"error":{...}}` instead: [`decode`] turns that
//! into [`JsError::Api`] before decoding the expected shape.

use serde::Deserialize;

use super::error::{ApiError, JsError};

#[derive(Deserialize)]
struct WireError<'a> {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default, borrow)]
    description: &'a str,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    error: Option<WireError<'a>>,
}

/// Decodes a JetStream API response: the API's error as [`JsError::Api`],
/// else `T`; anything else is [`JsError::MalformedResponse`] naming `what`.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8], what: &'static str) -> Result<T, JsError> {
    let malformed = JsError::MalformedResponse { what };
    let (envelope, _) =
        serde_json_core::from_slice::<Envelope<'a>>(payload).map_err(|_| malformed.clone())?;
    if let Some(e) = envelope.error {
        return Err(ApiError::new(e.code, e.err_code, e.description).into());
    }
    serde_json_core::from_slice::<T>(payload)
        .map(|(t, _)| t)
        .map_err(|_| malformed)
}

/// The stream's acknowledgement of a publish: the message is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct PubAck<'a> {
    /// Stream that stored it.
    pub stream: &'a str,
    /// Its sequence in the stream.
    pub seq: u64,
    /// True when its `Nats-Msg-Id` was seen within the duplicate window:
    /// the stream already had it and did not store it again.
    #[serde(default)]
    pub duplicate: bool,
    /// JetStream domain, if any.
    #[serde(default)]
    pub domain: Option<&'a str>,
}

/// Decodes a publish acknowledgement.
pub fn decode_pub_ack(payload: &[u8]) -> Result<PubAck<'_>, JsError> {
    decode(payload, "publish acknowledgement")
}

/// A stream's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
pub struct StreamState {
    /// Messages stored.
    #[serde(default)]
    pub messages: u64,
    /// Bytes stored.
    #[serde(default)]
    pub bytes: u64,
    /// First sequence held.
    #[serde(default)]
    pub first_seq: u64,
    /// Last sequence assigned.
    #[serde(default)]
    pub last_seq: u64,
    /// Consumers.
    #[serde(default)]
    pub consumer_count: u64,
}

#[derive(Deserialize)]
struct NameOnly<'a> {
    #[serde(borrow)]
    name: &'a str,
}

#[derive(Deserialize)]
struct WireStreamInfo<'a> {
    #[serde(borrow)]
    config: NameOnly<'a>,
    #[serde(default)]
    state: StreamState,
}

/// `STREAM.INFO` / `STREAM.CREATE` / `STREAM.UPDATE` reply (name and state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamInfo<'a> {
    /// Stream name.
    pub name: &'a str,
    /// Counters.
    pub state: StreamState,
}

/// Decodes a stream info reply.
pub fn decode_stream_info(payload: &[u8]) -> Result<StreamInfo<'_>, JsError> {
    let wire: WireStreamInfo<'_> = decode(payload, "stream info")?;
    Ok(StreamInfo {
        name: wire.config.name,
        state: wire.state,
    })
}

/// A pair of consumer and stream sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
pub struct SequencePair {
    /// Consumer sequence.
    #[serde(default)]
    pub consumer_seq: u64,
    /// Stream sequence.
    #[serde(default)]
    pub stream_seq: u64,
}

/// `CONSUMER.INFO` / `CONSUMER.CREATE` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct ConsumerInfo<'a> {
    /// Stream.
    pub stream_name: &'a str,
    /// Consumer name (generated for ephemeral consumers).
    pub name: &'a str,
    /// Last delivered.
    #[serde(default)]
    pub delivered: SequencePair,
    /// Everything up to here is acknowledged.
    #[serde(default)]
    pub ack_floor: SequencePair,
    /// Delivered, not yet acknowledged.
    #[serde(default)]
    pub num_ack_pending: u64,
    /// Delivered more than once, not yet acknowledged.
    #[serde(default)]
    pub num_redelivered: u64,
    /// Pull requests waiting.
    #[serde(default)]
    pub num_waiting: u64,
    /// Messages not yet delivered.
    #[serde(default)]
    pub num_pending: u64,
}

/// Decodes a consumer info reply.
pub fn decode_consumer_info(payload: &[u8]) -> Result<ConsumerInfo<'_>, JsError> {
    decode(payload, "consumer info")
}

/// `STREAM.DELETE` / `CONSUMER.DELETE` / `STREAM.PURGE` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct SuccessResponse {
    /// The server did it.
    pub success: bool,
    /// Messages removed (purge only).
    #[serde(default)]
    pub purged: u64,
}

/// Decodes a delete or purge reply.
pub fn decode_success(payload: &[u8]) -> Result<SuccessResponse, JsError> {
    decode(payload, "delete/purge reply")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::jetstream::ApiErrorKind;

    #[test]
    fn pub_ack_plain_and_duplicate() {
        let ack = decode_pub_ack(br#"{"stream":"ORDERS","seq":7}"#).unwrap();
        assert_eq!(
            ack,
            PubAck {
                stream: "ORDERS",
                seq: 7,
                duplicate: false,
                domain: None
            }
        );
        let ack =
            decode_pub_ack(br#"{"stream":"ORDERS", "seq":7,"duplicate":true,"domain":"hub"}"#)
                .unwrap();
        assert!(ack.duplicate);
        assert_eq!(ack.domain, Some("hub"));
    }

    #[test]
    fn api_errors_are_typed() {
        let cases: [(&[u8], ApiErrorKind, u32); 4] = [
            (
                br#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
                ApiErrorKind::StreamNotFound,
                10059,
            ),
            (
                br#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}}"#,
                ApiErrorKind::ConsumerNotFound,
                10014,
            ),
            (
                br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"S","seq":0}"#,
                ApiErrorKind::WrongLastSequence,
                10071,
            ),
            (
                br#"{"error":{"code":400,"err_code":19999,"description":"new \"thing\""}}"#,
                ApiErrorKind::Other,
                19999,
            ),
        ];
        for (json, kind, err_code) in cases {
            match decode_pub_ack(json) {
                Err(JsError::Api(e)) => {
                    assert_eq!(e.kind, kind);
                    assert_eq!(e.err_code, err_code);
                    assert!(e.code == 404 || e.code == 400);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn stream_info_skips_unknown_fields() {
        let json = br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","total":0,"config":{"name":"S","subjects":["s.>"],"retention":"limits","max_consumers":-1,"max_age":0,"placement":{"tags":[]},"metadata":{"_nats.ver":"2.15.1"}},"created":"2026-01-01T00:00:00.5Z","state":{"messages":3,"bytes":120,"first_seq":1,"first_ts":"2026-01-01T00:00:01Z","last_seq":3,"last_ts":"0001-01-01T00:00:00Z","num_subjects":1,"consumer_count":2},"cluster":{"leader":"x"},"ts":"2026"}"#;
        let info = decode_stream_info(json).unwrap();
        assert_eq!(info.name, "S");
        assert_eq!(
            info.state,
            StreamState {
                messages: 3,
                bytes: 120,
                first_seq: 1,
                last_seq: 3,
                consumer_count: 2
            }
        );
    }

    #[test]
    fn consumer_info_and_success() {
        let json = br#"{"stream_name":"S","name":"d","created":"x","config":{"ack_policy":"explicit"},"delivered":{"consumer_seq":5,"stream_seq":9,"last_active":"x"},"ack_floor":{"consumer_seq":4,"stream_seq":8},"num_ack_pending":1,"num_redelivered":0,"num_waiting":2,"num_pending":10,"ts":"x"}"#;
        let info = decode_consumer_info(json).unwrap();
        assert_eq!(info.name, "d");
        assert_eq!(
            info.delivered,
            SequencePair {
                consumer_seq: 5,
                stream_seq: 9
            }
        );
        assert_eq!(info.num_pending, 10);
        assert_eq!(
            decode_success(br#"{"success":true,"purged":12}"#).unwrap(),
            SuccessResponse {
                success: true,
                purged: 12
            }
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for junk in [&b""[..], b"{", b"[1,2]", b"\xff\xfe", br#"{"stream":1}"#] {
            assert!(matches!(
                decode_pub_ack(junk),
                Err(JsError::MalformedResponse { .. })
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_pub_ack(&bytes);
            let _ = decode_stream_info(&bytes);
            let _ = decode_consumer_info(&bytes);
            let _ = decode_success(&bytes);
        }

        #[test]
        fn pub_ack_roundtrip(stream in "[A-Za-z0-9_-]{1,32}", seq in proptest::num::u64::ANY, dup: bool) {
            let mut buf = [0u8; 128];
            let mut w = crate::nats::jetstream::api::SliceWriter::new(&mut buf);
            core::fmt::Write::write_fmt(&mut w, format_args!(r#"{{"stream":"{stream}","seq":{seq},"duplicate":{dup}}}"#)).unwrap();
            let n = w.len();
            let ack = decode_pub_ack(&buf[..n]).unwrap();
            proptest::prop_assert_eq!(ack.stream, stream.as_str());
            proptest::prop_assert_eq!(ack.seq, seq);
            proptest::prop_assert_eq!(ack.duplicate, dup);
        }
    }
}
