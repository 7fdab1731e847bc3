//! The async-nats harness: the same publish / subscribe / pub+sub /
//! request-reply scenarios as courier, written the way an async-nats user
//! would (`Bytes` payloads), on a multi-thread tokio runtime (worker client
//! `async-nats`) or a current-thread one (`async-nats-ct`). Every run that
//! publishes ends with a server round trip, as courier's and nats bench's do.

use crate::report::WorkerResult;
use crate::worker::{latency_histogram, warmup_count, Section, WorkerArgs};
use bytes::Bytes;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// Runs one async-nats scenario.
pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let current_thread = args.client == "async-nats-ct";
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
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
    result.transport = Some(
        if current_thread {
            "tokio current-thread runtime"
        } else {
            "tokio multi-thread runtime"
        }
        .into(),
    );
    Ok(result)
}

pub(crate) async fn connect(args: &WorkerArgs) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(ca) = &args.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    options
        .name("courier-bench async-nats")
        // A subscriber that falls behind must queue, not drop: the run
        // counts every message.
        .subscription_capacity((args.msgs as usize + 1024).max(65_536))
        .connect(args.url.as_str())
        .await
        .map_err(|e| format!("connect {}: {e}", args.url))
}

/// async-nats' `flush` only empties the client's buffer; a request to a
/// subject nobody serves comes back (no responders) after a server round
/// trip, so everything sent before it, such as a SUB, is in effect. The
/// request is one message more in the server's `in_msgs` (see
/// `server_in_msgs` in the results).
pub(crate) async fn server_round_trip(client: &async_nats::Client) -> Result<(), String> {
    client.flush().await.map_err(|e| e.to_string())?;
    match client
        .request("_courier_bench.round_trip", Bytes::new())
        .await
    {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(format!("round trip: {e}")),
        Ok(_) => Err("round trip: someone answered _courier_bench.round_trip".into()),
    }
}

async fn scenario(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let subject = async_nats::Subject::from(args.subject.as_str());
    let payload = Bytes::from(vec![b'x'; args.size]);
    let result = match args.scenario.as_str() {
        "publish" => {
            let client = connect(args).await?;
            for _ in 0..warmup_count(args.msgs) {
                client
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            server_round_trip(&client).await?;
            let mut hist = latency_histogram();
            let section = Section::start();
            for _ in 0..args.msgs {
                let t = Instant::now();
                client
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
            }
            server_round_trip(&client).await?;
            let mut result = section.finish(args.msgs, Some(&hist));
            result.process_messages = Some(args.msgs + warmup_count(args.msgs));
            result.server_in_msgs = Some(args.msgs + warmup_count(args.msgs) + 2);
            result
        }
        "subscribe" => {
            // The orchestrator feeds exactly `msgs` messages once the
            // subscription shows on the server.
            let client = connect(args).await?;
            let mut sub = client
                .subscribe(subject.clone())
                .await
                .map_err(|e| e.to_string())?;
            client.flush().await.map_err(|e| e.to_string())?;
            let first = sub.next().await.ok_or("subscription ended")?;
            drop(first);
            let section = Section::start();
            for i in 1..args.msgs {
                sub.next().await.ok_or("subscription ended early")?;
                crate::worker::progress(i + 1);
            }
            section.finish(args.msgs.saturating_sub(1), None)
        }
        "pubsub" => {
            let subscriber = connect(args).await?;
            let publisher = connect(args).await?;
            let mut sub = subscriber
                .subscribe(subject.clone())
                .await
                .map_err(|e| e.to_string())?;
            server_round_trip(&subscriber).await?;
            let msgs = args.msgs;
            let section = Section::start();
            let receiver = tokio::spawn(async move {
                for i in 0..msgs {
                    if sub.next().await.is_none() {
                        return Err("subscription ended early".to_string());
                    }
                    crate::worker::progress(i + 1);
                }
                Ok(Instant::now())
            });
            for _ in 0..msgs {
                publisher
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            server_round_trip(&publisher).await?;
            let end = receiver.await.map_err(|e| e.to_string())??;
            let mut result = section.finish_at(end, msgs, None);
            result.server_in_msgs = Some(msgs + 2);
            result
        }
        "publish-conns" => {
            // PUBLISH_CONNECTIONS connections, each publishing its share on
            // its own task, all flushed: the rate of the whole.
            let mut clients = Vec::new();
            for _ in 0..crate::worker::PUBLISH_CONNECTIONS {
                clients.push(connect(args).await?);
            }
            let share = args.msgs / clients.len() as u64;
            let section = Section::start();
            let mut tasks = Vec::new();
            for client in clients {
                let (subject, payload) = (subject.clone(), payload.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..share {
                        client
                            .publish(subject.clone(), payload.clone())
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    server_round_trip(&client).await
                }));
            }
            for task in tasks {
                task.await.map_err(|e| e.to_string())??;
            }
            let conns = crate::worker::PUBLISH_CONNECTIONS as u64;
            let mut result = section.finish(share * conns, None);
            result.server_in_msgs = Some(share * conns + conns);
            result
        }
        "queue" => {
            use crate::worker::{QueueTally, QUEUE_MEMBERS};
            use std::sync::Arc;
            let tally = Arc::new(QueueTally::new(args.msgs));
            let done = Arc::new(tokio::sync::Notify::new());
            let mut clients = Vec::new();
            for member in 0..QUEUE_MEMBERS {
                let client = connect(args).await?;
                let mut sub = client
                    .queue_subscribe(subject.clone(), "bench".into())
                    .await
                    .map_err(|e| e.to_string())?;
                client.flush().await.map_err(|e| e.to_string())?;
                let (tally, done) = (tally.clone(), done.clone());
                tokio::spawn(async move {
                    while sub.next().await.is_some() {
                        if tally.record(member) {
                            done.notify_one();
                        }
                    }
                });
                clients.push(client);
            }
            let allocs = crate::alloc_count::AllocSnapshot::now();
            done.notified().await;
            tally.result(allocs)
        }
        "handshake" => {
            // Each connect: TCP, INFO, (TLS handshake), CONNECT + PING, and
            // the server's PONG, which async-nats' connector awaits before
            // `connect` returns; timed to its return, then dropped.
            let mut hist = latency_histogram();
            let section = Section::start();
            for i in 0..args.msgs {
                let t = Instant::now();
                let client = connect(args).await?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
                drop(client);
                crate::worker::progress(i + 1);
            }
            let mut result = section.finish(args.msgs, Some(&hist));
            result.note = Some("connect (to the PONG of CONNECT+PING), then dropped".into());
            result
        }
        "request" => {
            let client = connect(args).await?;
            let warmup = warmup_count(args.msgs).min(100);
            for _ in 0..warmup {
                client
                    .request(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let mut hist = latency_histogram();
            let section = Section::start();
            for _ in 0..args.msgs {
                let t = Instant::now();
                client
                    .request(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                hist.saturating_record(t.elapsed().as_nanos() as u64);
            }
            let mut result = section.finish(args.msgs, Some(&hist));
            result.process_messages = Some(args.msgs + warmup);
            result
        }
        other => return Err(format!("async-nats has no scenario {other:?}")),
    };
    Ok(result)
}
