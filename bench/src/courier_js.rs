//! courier's JetStream scenarios (issue 11), written as a courier user
//! would: `js.publish` waiting for each ack (window 1), a
//! [`courier::nats::jetstream::PublishWindow`] keeping up to N acks
//! outstanding, pull consumers (`fetch` batches and the `messages()`
//! stream) acking every message, and the durable outbox (fsync per batch or
//! never). The orchestrator creates the stream and checks the server's own
//! view (STREAM.INFO / CONSUMER.INFO) afterwards.

use crate::courier_client::imp::{connect, runtime_note};
use crate::report::WorkerResult;
use crate::worker::{latency_histogram, progress, Section, WorkerArgs};
use courier::nats::jetstream::{self, ConsumerOptions, PublishOptions, PullOptions};
use courier::outbox::{FsyncPolicy, Outbox, OutboxMessage, OutboxOptions};
use std::time::{Duration, Instant};

/// Runs one `js-*` scenario on the current courier runtime.
pub async fn scenario(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let client = connect(args).await?;
    let js = jetstream::new(client).with_timeout(Duration::from_secs(10));
    let e = |e: jetstream::JetStreamError| e.to_string();
    let subject = args.subject.as_str();
    let payload = vec![b'x'; args.size];
    let window = args.batch.max(1);
    let counters = courier::stats();
    let mut result = match args.scenario.as_str() {
        "js-publish" if window == 1 => {
            let mut hist = latency_histogram();
            let section = Section::start();
            for i in 0..args.msgs {
                let t = Instant::now();
                js.publish(subject, &payload).await.map_err(e)?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
                progress(i + 1);
            }
            let mut r = section.finish(args.msgs, Some(&hist));
            r.note = Some("js.publish, each waiting for its PubAck".into());
            r
        }
        "js-publish" => {
            let w = js.publish_window(window);
            let mut options = PublishOptions::default();
            let payload = bytes::Bytes::from(payload);
            let section = Section::start();
            for i in 0..args.msgs {
                if args.msg_ids {
                    options.msg_id = Some(format!("bench-{i}"));
                }
                drop(
                    w.publish(subject, payload.clone(), &options)
                        .await
                        .map_err(e)?,
                );
                progress(i + 1);
            }
            let stats = w.wait_all(Duration::from_secs(60)).await.map_err(e)?;
            let mut r = section.finish(args.msgs, None);
            if stats.acked != args.msgs {
                return Err(format!(
                    "{} of {} publishes acked: {stats:?}",
                    stats.acked, args.msgs
                ));
            }
            r.note = Some(format!(
                "publish_window({window}), every PubAck awaited at the end{}",
                if args.msg_ids {
                    "; a Nats-Msg-Id on each"
                } else {
                    ""
                }
            ));
            r
        }
        "js-fetch" | "js-consume" => {
            // The orchestrator created the durable consumer (as it does
            // for every client); create it only when run alone.
            let consumer = match js.get_consumer(&args.stream, &args.consumer).await {
                Ok(c) => c,
                Err(_) => js
                    .create_consumer(&args.stream, &ConsumerOptions::durable(&args.consumer))
                    .await
                    .map_err(e)?,
            };
            let section = Section::start();
            let mut got = 0;
            if args.scenario == "js-fetch" {
                while got < args.msgs {
                    let batch = consumer
                        .fetch(window, Duration::from_secs(1))
                        .await
                        .map_err(e)?;
                    for m in batch {
                        m.ack().await.map_err(e)?;
                        got += 1;
                    }
                    progress(got);
                }
            } else {
                let options = PullOptions {
                    batch: window,
                    ..Default::default()
                };
                let mut stream = consumer.messages(options).await.map_err(e)?;
                while got < args.msgs {
                    let m = stream
                        .next()
                        .await
                        .ok_or("messages() ended early")?
                        .map_err(e)?;
                    m.ack().await.map_err(e)?;
                    got += 1;
                    progress(got);
                }
            }
            // The acks are fire-and-forget: a round trip puts them on the server.
            js.client().flush().await.map_err(|e| e.to_string())?;
            let mut r = section.finish(got, None);
            r.note = Some(format!(
                "{} batch {window}, explicit ack of every message, ended by a round trip",
                if args.scenario == "js-fetch" {
                    "fetch"
                } else {
                    "messages() stream"
                }
            ));
            r
        }
        "js-outbox" => {
            let dir = args.spool.clone().ok_or("js-outbox needs --spool")?;
            let mut options = OutboxOptions::new(dir);
            options.window = 256;
            options.max_bytes = 1 << 30;
            options.fsync = match args.fsync.as_str() {
                "batch" => FsyncPolicy::EveryBatch,
                "never" => FsyncPolicy::Never,
                other => return Err(format!("--fsync {other:?}: batch or never")),
            };
            let (outbox, _) = Outbox::jetstream(js.clone(), options)
                .await
                .map_err(|e| e.to_string())?;
            let batch: Vec<OutboxMessage<'_>> = (0..window)
                .map(|_| OutboxMessage {
                    subject,
                    msg_id: None,
                    payload: &payload,
                })
                .collect();
            let section = Section::start();
            let mut sent = 0u64;
            while sent < args.msgs {
                let n = (args.msgs - sent).min(window as u64) as usize;
                outbox
                    .publish_batch(&batch[..n])
                    .await
                    .map_err(|e| e.to_string())?;
                sent += n as u64;
                progress(sent);
            }
            let report = outbox.stop(Duration::from_secs(120)).await;
            if report.remaining != 0 {
                return Err(format!("{} records unconfirmed at stop", report.remaining));
            }
            let mut r = section.finish(args.msgs, None);
            r.note = Some(format!(
                "outbox, batches of {window}, fsync {}, until every record is confirmed (stop)",
                args.fsync
            ));
            r
        }
        other => return Err(format!("courier has no JetStream scenario {other:?}")),
    };
    let runtime = runtime_note(counters, args.msgs);
    result.note = Some(match result.note.take() {
        Some(n) => format!("{n}; {runtime}"),
        None => runtime,
    });
    Ok(result)
}
