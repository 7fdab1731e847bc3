//! Pull requests (`CONSUMER.MSG.NEXT`) and the status messages the server
//! answers them with instead of, or between, messages.

use core::time::Duration;

use serde::Serialize;

use super::config::nanos;
use crate::nats::headers::Headers;

/// Body of a pull request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct PullRequest {
    /// Messages wanted at most.
    pub batch: usize,
    /// The request ends after this long (a 408 status says so).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub expires: Option<Duration>,
    /// Bytes wanted at most (a 409 "Message Size Exceeds MaxBytes" when one
    /// message alone is larger).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// Answer at once with 404 when nothing is pending.
    #[serde(skip_serializing_if = "is_false")]
    pub no_wait: bool,
    /// The server sends a status 100 heartbeat when idle this long; a
    /// client that misses two knows the pull is gone.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub idle_heartbeat: Option<Duration>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Header with the messages a terminated pull did not deliver.
pub const PENDING_MESSAGES: &str = "Nats-Pending-Messages";
/// Header with the bytes a terminated pull did not deliver.
pub const PENDING_BYTES: &str = "Nats-Pending-Bytes";

/// Why the server ended a pull request with 409.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// The next message is larger than the request's max_bytes.
    MessageSizeExceedsMaxBytes,
    /// Too many pull requests are waiting on the consumer.
    ExceededMaxWaiting,
    /// The batch, expires or max_bytes exceeds the consumer's limit.
    ExceededLimit,
    /// The consumer was deleted: stop pulling.
    ConsumerDeleted,
    /// The consumer is a push consumer: pulls are not allowed.
    ConsumerIsPushBased,
    /// A leadership change ended the pull: pull again.
    LeadershipChange,
    /// The server shuts down: pull again after reconnecting.
    ServerShutdown,
    /// The batch completed (a request with a heartbeat).
    BatchCompleted,
    /// Another reason (the description says which).
    Other,
}

/// What a message received on a pull's inbox is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullStatus {
    /// A stream message (no status).
    Message,
    /// Status 100 "Idle Heartbeat": the pull is alive.
    IdleHeartbeat,
    /// Status 100 flow control request (push consumers).
    FlowControl,
    /// Status 404: nothing pending (a `no_wait` pull).
    NoMessages,
    /// Status 408: the request expired; `pending_*` it did not deliver.
    RequestTimeout {
        /// Messages not delivered.
        pending_messages: u64,
        /// Bytes not delivered.
        pending_bytes: u64,
    },
    /// Status 409: the server ended the pull.
    Conflict {
        /// Why.
        kind: Conflict,
        /// Messages not delivered.
        pending_messages: u64,
        /// Bytes not delivered.
        pending_bytes: u64,
    },
    /// Another status code.
    Other(u16),
}

impl PullStatus {
    /// Classifies by the status code and headers (`None`: a message).
    pub fn classify(status: Option<u16>, headers: Option<&Headers<'_>>) -> Self {
        let Some(code) = status else {
            return PullStatus::Message;
        };
        let description = headers.map(|h| h.description()).unwrap_or_default();
        let pending = |name| {
            headers
                .and_then(|h| h.get(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let has = |needle: &str| contains_ignore_case(description, needle);
        match code {
            100 if has("flow") => PullStatus::FlowControl,
            100 => PullStatus::IdleHeartbeat,
            404 => PullStatus::NoMessages,
            408 => PullStatus::RequestTimeout {
                pending_messages: pending(PENDING_MESSAGES),
                pending_bytes: pending(PENDING_BYTES),
            },
            409 => {
                let kind = if has("maxbytes") {
                    Conflict::MessageSizeExceedsMaxBytes
                } else if has("max waiting") || has("maxwaiting") {
                    Conflict::ExceededMaxWaiting
                } else if has("exceeded max") {
                    Conflict::ExceededLimit
                } else if has("consumer deleted") {
                    Conflict::ConsumerDeleted
                } else if has("push based") {
                    Conflict::ConsumerIsPushBased
                } else if has("leadership") {
                    Conflict::LeadershipChange
                } else if has("shutdown") {
                    Conflict::ServerShutdown
                } else if has("batch completed") {
                    Conflict::BatchCompleted
                } else {
                    Conflict::Other
                };
                PullStatus::Conflict {
                    kind,
                    pending_messages: pending(PENDING_MESSAGES),
                    pending_bytes: pending(PENDING_BYTES),
                }
            }
            other => PullStatus::Other(other),
        }
    }

    /// True when the pull request this status answers is over (the client
    /// must count its budget back and may pull again).
    pub fn ends_pull(&self) -> bool {
        matches!(
            self,
            PullStatus::NoMessages
                | PullStatus::RequestTimeout { .. }
                | PullStatus::Conflict { .. }
        )
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::jetstream::config::encode_json;

    #[test]
    fn pull_request_json() {
        let mut buf = [0u8; 128];
        let req = PullRequest {
            batch: 10,
            expires: Some(Duration::from_secs(5)),
            max_bytes: Some(4096),
            idle_heartbeat: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        assert_eq!(
            encode_json(&req, "pull", &mut buf).unwrap(),
            br#"{"batch":10,"expires":5000000000,"max_bytes":4096,"idle_heartbeat":500000000}"#
        );
        let req = PullRequest {
            batch: 1,
            no_wait: true,
            ..Default::default()
        };
        assert_eq!(
            encode_json(&req, "pull", &mut buf).unwrap(),
            br#"{"batch":1,"no_wait":true}"#
        );
    }

    fn status(raw: &[u8]) -> PullStatus {
        let h = Headers::parse_received(raw).unwrap();
        PullStatus::classify(h.status(), Some(&h))
    }

    #[test]
    fn statuses() {
        assert_eq!(PullStatus::classify(None, None), PullStatus::Message);
        assert_eq!(
            status(b"NATS/1.0 100 Idle Heartbeat\r\n\r\n"),
            PullStatus::IdleHeartbeat
        );
        assert_eq!(
            status(b"NATS/1.0 100 FlowControl Request\r\n\r\n"),
            PullStatus::FlowControl
        );
        assert_eq!(
            status(b"NATS/1.0 404 No Messages\r\n\r\n"),
            PullStatus::NoMessages
        );
        assert_eq!(
            status(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 120\r\n\r\n"),
            PullStatus::RequestTimeout { pending_messages: 3, pending_bytes: 120 }
        );
        let conflicts: [(&[u8], Conflict); 6] = [
            (
                b"NATS/1.0 409 Message Size Exceeds MaxBytes\r\n\r\n",
                Conflict::MessageSizeExceedsMaxBytes,
            ),
            (
                b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n",
                Conflict::ExceededMaxWaiting,
            ),
            (
                b"NATS/1.0 409 Consumer Deleted\r\n\r\n",
                Conflict::ConsumerDeleted,
            ),
            (
                b"NATS/1.0 409 Leadership Change\r\n\r\n",
                Conflict::LeadershipChange,
            ),
            (
                b"NATS/1.0 409 Server Shutdown\r\n\r\n",
                Conflict::ServerShutdown,
            ),
            (b"NATS/1.0 409 Something New\r\n\r\n", Conflict::Other),
        ];
        for (raw, kind) in conflicts {
            assert!(
                matches!(status(raw), PullStatus::Conflict { kind: k, .. } if k == kind),
                "{raw:?}"
            );
        }
        assert_eq!(status(b"NATS/1.0 503\r\n\r\n"), PullStatus::Other(503));
        assert!(status(b"NATS/1.0 404 No Messages\r\n\r\n").ends_pull());
        assert!(!status(b"NATS/1.0 100 Idle Heartbeat\r\n\r\n").ends_pull());
    }

    proptest::proptest! {
        #[test]
        fn classify_never_panics(code in 0u16..1000, desc in "[ -~]{0,40}", n in "[ -~]{0,12}") {
            let mut buf = [0u8; 256];
            let mut w = crate::nats::jetstream::api::SliceWriter::new(&mut buf);
            core::fmt::Write::write_fmt(&mut w, format_args!("NATS/1.0 {code} {desc}\r\nNats-Pending-Messages: {n}\r\n\r\n")).unwrap();
            let raw = w.into_bytes();
            if let Ok(h) = Headers::parse_received(raw) {
                let _ = PullStatus::classify(h.status(), Some(&h));
            }
        }
    }
}
