//! Pull consumers: durable or ephemeral, explicit ack.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier_core::nats::jetstream::{
    encode_json, AckPolicy, ApiOp, ConsumerConfig, CreateConsumerRequest, DeliverPolicy,
};

use super::stream::ConsumerInfo;
use super::{to_json, Context, JetStreamError};

/// Where a new consumer starts in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Deliver {
    /// Every message in the stream.
    #[default]
    All,
    /// The last message, then new ones.
    Last,
    /// Only messages stored after the consumer was created.
    New,
    /// From this stream sequence.
    BySequence(u64),
    /// From the first message stored at or after this time.
    ByTime(SystemTime),
}

/// A pull consumer's configuration (builder); the ack policy is explicit
/// unless changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    durable: Option<String>,
    deliver: Deliver,
    ack_policy: AckPolicy,
    ack_wait: Option<Duration>,
    max_deliver: Option<i64>,
    filter_subject: Option<String>,
    max_ack_pending: Option<i64>,
    inactive_threshold: Option<Duration>,
}

impl ConsumerOptions {
    /// A durable consumer: it keeps its position while no client runs.
    pub fn durable(name: impl Into<String>) -> Self {
        ConsumerOptions {
            durable: Some(name.into()),
            ..Self::ephemeral()
        }
    }
    /// An ephemeral consumer: the server names it and deletes it when idle.
    pub fn ephemeral() -> Self {
        ConsumerOptions {
            durable: None,
            deliver: Deliver::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: None,
            max_deliver: None,
            filter_subject: None,
            max_ack_pending: None,
            inactive_threshold: None,
        }
    }
    /// Where to start.
    pub fn deliver(mut self, d: Deliver) -> Self {
        self.deliver = d;
        self
    }
    /// Ack policy (explicit by default).
    pub fn ack_policy(mut self, p: AckPolicy) -> Self {
        self.ack_policy = p;
        self
    }
    /// Redeliver a message not acked within this (server default 30 s).
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = Some(d);
        self
    }
    /// Deliver each message at most this many times.
    pub fn max_deliver(mut self, n: i64) -> Self {
        self.max_deliver = Some(n);
        self
    }
    /// Only subjects matching this.
    pub fn filter_subject(mut self, s: impl Into<String>) -> Self {
        self.filter_subject = Some(s.into());
        self
    }
    /// At most this many delivered, unacknowledged messages.
    pub fn max_ack_pending(mut self, n: i64) -> Self {
        self.max_ack_pending = Some(n);
        self
    }
    /// Delete an idle (ephemeral) consumer after this.
    pub fn inactive_threshold(mut self, d: Duration) -> Self {
        self.inactive_threshold = Some(d);
        self
    }
}

/// RFC 3339 UTC time with nanoseconds, as JetStream parses it.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// A pull consumer bound to a stream.
#[derive(Clone)]
pub struct PullConsumer {
    pub(crate) ctx: Context,
    pub(crate) stream: String,
    pub(crate) name: String,
}

impl std::fmt::Debug for PullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullConsumer")
            .field("stream", &self.stream)
            .field("name", &self.name)
            .finish()
    }
}

impl PullConsumer {
    /// The consumer's name (server-generated for an ephemeral consumer).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }
    /// The consumer's state as the server has it.
    pub async fn info(&self) -> Result<ConsumerInfo, JetStreamError> {
        self.ctx.consumer_info(&self.stream, &self.name).await
    }
}

impl Context {
    /// Creates (or, with the same configuration, reuses) a pull consumer.
    pub async fn create_consumer(
        &self,
        stream: &str,
        options: &ConsumerOptions,
    ) -> Result<PullConsumer, JetStreamError> {
        let start_time = match options.deliver {
            Deliver::ByTime(t) => Some(rfc3339(t)),
            _ => None,
        };
        let (deliver_policy, opt_start_seq) = match options.deliver {
            Deliver::All => (DeliverPolicy::All, None),
            Deliver::Last => (DeliverPolicy::Last, None),
            Deliver::New => (DeliverPolicy::New, None),
            Deliver::BySequence(s) => (DeliverPolicy::ByStartSequence, Some(s)),
            Deliver::ByTime(_) => (DeliverPolicy::ByStartTime, None),
        };
        let durable = options.durable.as_deref();
        let request = CreateConsumerRequest {
            stream_name: stream,
            config: ConsumerConfig {
                name: durable,
                durable_name: durable,
                deliver_policy,
                opt_start_seq,
                opt_start_time: start_time.as_deref(),
                ack_policy: options.ack_policy,
                ack_wait: options.ack_wait,
                max_deliver: options.max_deliver,
                filter_subject: options.filter_subject.as_deref(),
                max_ack_pending: options.max_ack_pending,
                inactive_threshold: options.inactive_threshold,
                ..Default::default()
            },
        };
        let body = to_json(|buf| encode_json(&request, "consumer config", buf))?;
        let op = ApiOp::ConsumerCreate {
            stream,
            consumer: durable,
            filter: None,
        };
        let reply = self.api_request(op, &body).await?;
        let info = ConsumerInfo::from_reply(&reply.payload)?;
        Ok(PullConsumer {
            ctx: self.clone(),
            stream: stream.to_string(),
            name: info.name,
        })
    }

    /// A handle on an existing consumer (checked with a `CONSUMER.INFO`).
    pub async fn get_consumer(
        &self,
        stream: &str,
        name: &str,
    ) -> Result<PullConsumer, JetStreamError> {
        let info = self.consumer_info(stream, name).await?;
        Ok(PullConsumer {
            ctx: self.clone(),
            stream: stream.to_string(),
            name: info.name,
        })
    }

    /// A consumer's state.
    pub async fn consumer_info(
        &self,
        stream: &str,
        name: &str,
    ) -> Result<ConsumerInfo, JetStreamError> {
        let reply = self
            .api_request(ApiOp::ConsumerInfo(stream, name), b"")
            .await?;
        ConsumerInfo::from_reply(&reply.payload)
    }

    /// Deletes a consumer.
    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<(), JetStreamError> {
        let reply = self
            .api_request(ApiOp::ConsumerDelete(stream, name), b"")
            .await?;
        courier_core::nats::jetstream::decode_success(&reply.payload)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 5);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.000000005Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339(t), "2026-12-31T23:59:59.000000000Z");
    }
}
