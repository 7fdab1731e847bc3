//! The async-nats JetStream harness (issue 11), written as an async-nats
//! user would: `publish(..).await?.await?` for one ack at a time, a queue of
//! `PublishAckFuture`s for N outstanding, and a durable pull consumer
//! drained with `fetch()` batches or the `stream()` of messages, acking
//! each; runs end with a server round trip so the acks are on the server.

use crate::async_nats_client::{connect, server_round_trip};
use crate::report::WorkerResult;
use crate::worker::{latency_histogram, progress, Section, WorkerArgs};
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Runs one `js-*` scenario on a multi-thread tokio runtime.
pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let timeout = Duration::from_secs(args.timeout_s);
    let mut result = runtime.block_on(async {
        match tokio::time::timeout(timeout, scenario(args)).await {
            Ok(result) => result,
            Err(_) => Err(crate::worker::timeout_error(timeout, args.msgs)),
        }
    })?;
    result.transport = Some("tokio multi-thread runtime".into());
    Ok(result)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn scenario(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let client = connect(args).await?;
    let js = jetstream::new(client.clone());
    let subject = async_nats::Subject::from(args.subject.as_str());
    let payload = Bytes::from(vec![b'x'; args.size]);
    let window = args.batch.max(1);
    let result = match args.scenario.as_str() {
        "js-publish" if window == 1 => {
            let mut hist = latency_histogram();
            let section = Section::start();
            for i in 0..args.msgs {
                let t = Instant::now();
                js.publish(subject.clone(), payload.clone())
                    .await
                    .map_err(err)?
                    .await
                    .map_err(err)?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
                progress(i + 1);
            }
            let mut r = section.finish(args.msgs, Some(&hist));
            r.note = Some("publish().await?.await?: each waits for its PubAck".into());
            r
        }
        "js-publish" => {
            let mut outstanding = VecDeque::with_capacity(window);
            let section = Section::start();
            for i in 0..args.msgs {
                if outstanding.len() == window {
                    let ack: jetstream::context::PublishAckFuture =
                        outstanding.pop_front().expect("window is full");
                    ack.await.map_err(err)?;
                }
                let ack = js
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(err)?;
                outstanding.push_back(ack);
                progress(i + 1);
            }
            for ack in outstanding {
                ack.await.map_err(err)?;
            }
            let mut r = section.finish(args.msgs, None);
            r.note = Some(format!(
                "up to {window} PublishAckFutures outstanding, the oldest awaited first"
            ));
            r
        }
        "js-fetch" | "js-consume" => {
            let stream = js.get_stream(&args.stream).await.map_err(err)?;
            let consumer = stream
                .get_or_create_consumer(
                    &args.consumer,
                    pull::Config {
                        durable_name: Some(args.consumer.clone()),
                        ack_policy: AckPolicy::Explicit,
                        ..Default::default()
                    },
                )
                .await
                .map_err(err)?;
            let section = Section::start();
            let mut got = 0;
            if args.scenario == "js-fetch" {
                while got < args.msgs {
                    let mut batch = consumer
                        .fetch()
                        .max_messages(window)
                        .expires(Duration::from_secs(1))
                        .messages()
                        .await
                        .map_err(err)?;
                    while let Some(m) = batch.next().await {
                        m.map_err(err)?.ack().await.map_err(err)?;
                        got += 1;
                    }
                    progress(got);
                }
            } else {
                let mut messages = consumer
                    .stream()
                    .max_messages_per_batch(window)
                    .messages()
                    .await
                    .map_err(err)?;
                while got < args.msgs {
                    let m = messages
                        .next()
                        .await
                        .ok_or("message stream ended early")?
                        .map_err(err)?;
                    m.ack().await.map_err(err)?;
                    got += 1;
                    progress(got);
                }
            }
            server_round_trip(&client).await?;
            let mut r = section.finish(got, None);
            r.note = Some(format!(
                "{} batch {window}, explicit ack of every message, ended by a round trip",
                if args.scenario == "js-fetch" {
                    "fetch()"
                } else {
                    "stream() of messages"
                }
            ));
            r
        }
        other => return Err(format!("async-nats has no JetStream scenario {other:?}")),
    };
    Ok(result)
}
