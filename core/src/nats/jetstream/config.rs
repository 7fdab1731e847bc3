//! Stream and consumer configurations and the API request bodies that
//! carry them, encoded as JSON into the caller's buffer (serde-json-core).
//!
//! Durations go on the wire as nanoseconds, as JetStream expects.

use core::time::Duration;

use serde::{Serialize, Serializer};

use super::error::JsError;

/// Serializes `value` as JSON into `buf`; `what` names it in the error.
pub fn encode_json<'b, T: Serialize>(
    value: &T,
    what: &'static str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], JsError> {
    let capacity = buf.len();
    match serde_json_core::to_slice(value, buf) {
        Ok(n) => Ok(&buf[..n]),
        Err(_) => Err(JsError::BufferTooSmall { what, capacity }),
    }
}

pub(crate) fn nanos<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

/// Which messages a stream keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// Until a limit (count, bytes, age) removes them.
    #[default]
    Limits,
    /// While a consumer has not acknowledged them.
    Interest,
    /// Until one consumer acknowledges them (a work queue).
    WorkQueue,
}

/// Where a stream stores messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// On disk (survives a server restart).
    #[default]
    File,
    /// In memory (lost on restart).
    Memory,
}

/// What a full stream does with a new message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// Delete the oldest message.
    #[default]
    Old,
    /// Refuse the new one (the publish gets an API error).
    New,
}

/// A stream's configuration (the fields courier sets; the server fills
/// defaults for the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct StreamConfig<'a> {
    /// Stream name.
    pub name: &'a str,
    /// Subjects stored (wildcards allowed).
    pub subjects: &'a [&'a str],
    /// Retention policy.
    pub retention: Retention,
    /// Storage type.
    pub storage: Storage,
    /// Most messages kept (None: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_msgs: Option<i64>,
    /// Most bytes kept (None: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<i64>,
    /// Oldest message age kept (None: unlimited).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub max_age: Option<Duration>,
    /// Window in which a repeated `Nats-Msg-Id` is dropped (server default 2 min).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub duplicate_window: Option<Duration>,
    /// Largest message accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_msg_size: Option<i32>,
    /// Most messages kept per subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_msgs_per_subject: Option<i64>,
    /// What to do when full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard: Option<Discard>,
    /// Replicas (1 on a single server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_replicas: Option<u32>,
}

/// Where a new consumer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// From the first message.
    #[default]
    All,
    /// From the last message.
    Last,
    /// Only messages stored after the consumer was created.
    New,
    /// From `opt_start_seq`.
    ByStartSequence,
    /// From `opt_start_time` (RFC 3339).
    ByStartTime,
    /// The last message of each subject.
    LastPerSubject,
}

/// How a consumer's messages are acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    /// Each message is acknowledged (at-least-once).
    #[default]
    Explicit,
    /// Acknowledging one acknowledges every earlier one.
    All,
    /// No acks (at-most-once).
    None,
}

/// A consumer's configuration (pull consumers: no deliver subject).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct ConsumerConfig<'a> {
    /// Name (durable or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// Durable name: the consumer outlives its clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<&'a str>,
    /// Where to start.
    pub deliver_policy: DeliverPolicy,
    /// Start sequence for [`DeliverPolicy::ByStartSequence`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    /// Start time (RFC 3339) for [`DeliverPolicy::ByStartTime`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<&'a str>,
    /// Ack policy.
    pub ack_policy: AckPolicy,
    /// Redelivery after this long without ack (server default 30 s).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub ack_wait: Option<Duration>,
    /// Deliveries at most (None: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deliver: Option<i64>,
    /// Only subjects matching this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<&'a str>,
    /// Most unacknowledged messages outstanding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ack_pending: Option<i64>,
    /// Most pull requests waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiting: Option<i64>,
    /// An idle consumer is deleted after this (ephemeral consumers).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "nanos")]
    pub inactive_threshold: Option<Duration>,
}

/// Body of `STREAM.PURGE` (empty purges everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct PurgeRequest<'a> {
    /// Only messages of this subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<&'a str>,
    /// Purge up to, not including, this sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Keep this many newest messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u64>,
}

/// Body of `CONSUMER.CREATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CreateConsumerRequest<'a> {
    /// The stream.
    pub stream_name: &'a str,
    /// The consumer.
    pub config: ConsumerConfig<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_config_json() {
        let mut buf = [0u8; 512];
        let cfg = StreamConfig {
            name: "ORDERS",
            subjects: &["orders.>", "returns.*"],
            retention: Retention::WorkQueue,
            storage: Storage::Memory,
            max_msgs: Some(1000),
            max_age: Some(Duration::from_secs(60)),
            duplicate_window: Some(Duration::from_millis(1500)),
            ..Default::default()
        };
        let json = encode_json(&cfg, "stream config", &mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(json).unwrap(),
            r#"{"name":"ORDERS","subjects":["orders.>","returns.*"],"retention":"workqueue","storage":"memory","max_msgs":1000,"max_age":60000000000,"duplicate_window":1500000000}"#
        );
    }

    #[test]
    fn consumer_request_json() {
        let mut buf = [0u8; 512];
        let req = CreateConsumerRequest {
            stream_name: "S",
            config: ConsumerConfig {
                durable_name: Some("d"),
                deliver_policy: DeliverPolicy::ByStartSequence,
                opt_start_seq: Some(42),
                ack_wait: Some(Duration::from_millis(250)),
                max_deliver: Some(3),
                filter_subject: Some("a.b"),
                ..Default::default()
            },
        };
        let json = encode_json(&req, "consumer", &mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(json).unwrap(),
            r#"{"stream_name":"S","config":{"durable_name":"d","deliver_policy":"by_start_sequence","opt_start_seq":42,"ack_policy":"explicit","ack_wait":250000000,"max_deliver":3,"filter_subject":"a.b"}}"#
        );
        let mut small = [0u8; 20];
        assert_eq!(
            encode_json(&req, "consumer", &mut small),
            Err(JsError::BufferTooSmall {
                what: "consumer",
                capacity: 20
            })
        );
    }

    #[test]
    fn purge_json() {
        let mut buf = [0u8; 64];
        let json = encode_json(&PurgeRequest::default(), "purge", &mut buf).unwrap();
        assert_eq!(json, b"{}");
        let json = encode_json(
            &PurgeRequest {
                filter: Some("a"),
                keep: Some(2),
                ..Default::default()
            },
            "purge",
            &mut buf,
        )
        .unwrap();
        assert_eq!(json, br#"{"filter":"a","keep":2}"#);
    }
}
