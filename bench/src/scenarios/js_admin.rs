//! The orchestrator's own JetStream connection (async-nats, in process,
//! outside every measured client): it creates each series' stream the same
//! way for every client, prefills streams for the consume scenarios, and
//! reads the server's own view afterwards (`$JS.API.STREAM.INFO`,
//! `$JS.API.CONSUMER.INFO`) to check what each client claims.

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A JetStream admin connection on its own current-thread runtime.
pub struct JsAdmin {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
}

/// What CONSUMER.INFO says about a drained consumer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsumerState {
    /// Stream sequence of the ack floor (every message up to it acked).
    pub ack_floor: u64,
    /// Delivered, not yet acked.
    pub ack_pending: usize,
    /// In the stream, not yet delivered.
    pub pending: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl JsAdmin {
    /// Connects to the server at `url`.
    pub fn connect(url: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let client = runtime
            .block_on(async_nats::connect(url))
            .map_err(|e| format!("JetStream admin connect {url}: {e}"))?;
        let js = jetstream::new(client);
        Ok(JsAdmin { runtime, js })
    }

    /// A fresh memory-storage stream `name` on `subject` (limits retention,
    /// no size limit beyond the server's).
    pub fn create_stream(&self, name: &str, subject: &str) -> Result<(), String> {
        let config = stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        };
        self.runtime
            .block_on(self.js.create_stream(config))
            .map(drop)
            .map_err(|e| format!("create stream {name}: {e}"))
    }

    /// A durable pull consumer `name` on `stream`: explicit ack, deliver
    /// all (what `nats bench js fetch/consume` expect to find).
    pub fn create_consumer(&self, stream: &str, name: &str) -> Result<(), String> {
        use async_nats::jetstream::consumer::{pull, AckPolicy};
        self.runtime
            .block_on(async {
                let s = self.js.get_stream(stream).await.map_err(err)?;
                s.create_consumer(pull::Config {
                    durable_name: Some(name.to_string()),
                    ack_policy: AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .map(drop)
                .map_err(err)
            })
            .map_err(|e| format!("create consumer {name} on {stream}: {e}"))
    }

    /// Deletes `name` (frees its memory); errors are ignored.
    pub fn delete_stream(&self, name: &str) {
        let _ = self.runtime.block_on(self.js.delete_stream(name));
    }

    /// Messages the server holds in `name` (STREAM.INFO).
    pub fn stream_messages(&self, name: &str) -> Result<u64, String> {
        self.runtime.block_on(async {
            let mut s = self.js.get_stream(name).await.map_err(err)?;
            Ok(s.info().await.map_err(err)?.state.messages)
        })
    }

    /// Publishes `n` messages of `size` bytes to `subject` with up to 256
    /// acks outstanding, every ack awaited.
    pub fn prefill(&self, subject: &str, size: usize, n: u64) -> Result<(), String> {
        let payload = Bytes::from(vec![b'x'; size]);
        let subject = subject.to_string();
        self.runtime.block_on(async {
            let mut outstanding = VecDeque::new();
            for _ in 0..n {
                if outstanding.len() == 256 {
                    let ack: jetstream::context::PublishAckFuture =
                        outstanding.pop_front().expect("full");
                    ack.await.map_err(err)?;
                }
                let ack = self
                    .js
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(err)?;
                outstanding.push_back(ack);
            }
            for ack in outstanding {
                ack.await.map_err(err)?;
            }
            Ok(())
        })
    }

    /// CONSUMER.INFO of `consumer` on `stream`, polled until every one of
    /// `expected` messages is acked or 3 s pass (acks are asynchronous).
    pub fn consumer_state(
        &self,
        stream: &str,
        consumer: &str,
        expected: u64,
    ) -> Result<ConsumerState, String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        self.runtime.block_on(async {
            let s = self.js.get_stream(stream).await.map_err(err)?;
            loop {
                let info = s.consumer_info(consumer).await.map_err(err)?;
                let state = ConsumerState {
                    ack_floor: info.ack_floor.stream_sequence,
                    ack_pending: info.num_ack_pending,
                    pending: info.num_pending,
                };
                if (state.ack_floor >= expected && state.ack_pending == 0)
                    || Instant::now() > deadline
                {
                    return Ok(state);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
}
