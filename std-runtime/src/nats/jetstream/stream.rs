//! Streams: create, update, info, delete, purge.

use std::time::Duration;

use courier_core::nats::jetstream::{
    self as core_js, encode_json, ApiOp, Discard, PurgeRequest, Retention, Storage, StreamConfig,
};

use super::{to_json, Context, JetStreamError, SequencePair, StreamState};

/// A stream's configuration (builder).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    name: String,
    subjects: Vec<String>,
    retention: Retention,
    storage: Storage,
    max_msgs: Option<i64>,
    max_bytes: Option<i64>,
    max_age: Option<Duration>,
    duplicate_window: Option<Duration>,
    max_msg_size: Option<i32>,
    discard: Option<Discard>,
}

impl StreamOptions {
    /// A stream named `name` (file storage, limits retention, no limits).
    pub fn new(name: impl Into<String>) -> Self {
        StreamOptions {
            name: name.into(),
            ..Default::default()
        }
    }
    /// The subjects it stores (wildcards allowed).
    pub fn subjects<I: IntoIterator<Item = S>, S: Into<String>>(mut self, subjects: I) -> Self {
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self
    }
    /// Retention: limits, interest or work queue.
    pub fn retention(mut self, r: Retention) -> Self {
        self.retention = r;
        self
    }
    /// Storage: file or memory.
    pub fn storage(mut self, s: Storage) -> Self {
        self.storage = s;
        self
    }
    /// Most messages kept.
    pub fn max_msgs(mut self, n: i64) -> Self {
        self.max_msgs = Some(n);
        self
    }
    /// Most bytes kept.
    pub fn max_bytes(mut self, n: i64) -> Self {
        self.max_bytes = Some(n);
        self
    }
    /// Oldest message age kept.
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = Some(d);
        self
    }
    /// `Nats-Msg-Id` de-duplication window (server default 2 minutes).
    pub fn duplicate_window(mut self, d: Duration) -> Self {
        self.duplicate_window = Some(d);
        self
    }
    /// Largest message accepted.
    pub fn max_msg_size(mut self, n: i32) -> Self {
        self.max_msg_size = Some(n);
        self
    }
    /// What a full stream discards.
    pub fn discard(mut self, d: Discard) -> Self {
        self.discard = Some(d);
        self
    }
    /// The stream name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn json(&self) -> Result<Vec<u8>, JetStreamError> {
        let subjects: Vec<&str> = self.subjects.iter().map(String::as_str).collect();
        let config = StreamConfig {
            name: &self.name,
            subjects: &subjects,
            retention: self.retention,
            storage: self.storage,
            max_msgs: self.max_msgs,
            max_bytes: self.max_bytes,
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            max_msg_size: self.max_msg_size,
            discard: self.discard,
            ..Default::default()
        };
        to_json(|buf| encode_json(&config, "stream config", buf))
    }
}

/// A stream's name and counters as the server reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Name.
    pub name: String,
    /// Counters (messages, bytes, first/last sequence, consumers).
    pub state: StreamState,
}

/// A consumer's state as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Stream.
    pub stream: String,
    /// Consumer name.
    pub name: String,
    /// Last delivered.
    pub delivered: SequencePair,
    /// Acknowledged up to here.
    pub ack_floor: SequencePair,
    /// Delivered, not acknowledged.
    pub num_ack_pending: u64,
    /// Redelivered, not acknowledged.
    pub num_redelivered: u64,
    /// Pull requests waiting.
    pub num_waiting: u64,
    /// Not yet delivered.
    pub num_pending: u64,
}

impl ConsumerInfo {
    pub(crate) fn from_reply(payload: &[u8]) -> Result<Self, JetStreamError> {
        let c = core_js::decode_consumer_info(payload)?;
        Ok(ConsumerInfo {
            stream: c.stream_name.to_string(),
            name: c.name.to_string(),
            delivered: c.delivered,
            ack_floor: c.ack_floor,
            num_ack_pending: c.num_ack_pending,
            num_redelivered: c.num_redelivered,
            num_waiting: c.num_waiting,
            num_pending: c.num_pending,
        })
    }
}

fn stream_info(payload: &[u8]) -> Result<StreamInfo, JetStreamError> {
    let info = core_js::decode_stream_info(payload)?;
    Ok(StreamInfo {
        name: info.name.to_string(),
        state: info.state,
    })
}

impl Context {
    /// Creates a stream; [`ApiErrorKind::StreamNameInUse`](super::ApiErrorKind)
    /// when one of that name exists with another configuration (the same
    /// configuration succeeds: creating is idempotent).
    pub async fn create_stream(
        &self,
        options: &StreamOptions,
    ) -> Result<StreamInfo, JetStreamError> {
        let body = options.json()?;
        let reply = self
            .api_request(ApiOp::StreamCreate(&options.name), &body)
            .await?;
        stream_info(&reply.payload)
    }

    /// Replaces a stream's configuration.
    pub async fn update_stream(
        &self,
        options: &StreamOptions,
    ) -> Result<StreamInfo, JetStreamError> {
        let body = options.json()?;
        let reply = self
            .api_request(ApiOp::StreamUpdate(&options.name), &body)
            .await?;
        stream_info(&reply.payload)
    }

    /// The stream's counters as the server has them.
    pub async fn stream_info(&self, name: &str) -> Result<StreamInfo, JetStreamError> {
        let reply = self.api_request(ApiOp::StreamInfo(name), b"").await?;
        stream_info(&reply.payload)
    }

    /// Deletes a stream and its messages.
    pub async fn delete_stream(&self, name: &str) -> Result<(), JetStreamError> {
        let reply = self.api_request(ApiOp::StreamDelete(name), b"").await?;
        core_js::decode_success(&reply.payload)?;
        Ok(())
    }

    /// Removes messages (all, those of `subject`, or all but the newest
    /// `keep`); returns how many were removed.
    pub async fn purge_stream(
        &self,
        name: &str,
        subject: Option<&str>,
        keep: Option<u64>,
    ) -> Result<u64, JetStreamError> {
        let req = PurgeRequest {
            filter: subject,
            keep,
            seq: None,
        };
        let body = to_json(|buf| encode_json(&req, "purge request", buf))?;
        let reply = self.api_request(ApiOp::StreamPurge(name), &body).await?;
        Ok(core_js::decode_success(&reply.payload)?.purged)
    }
}
