//! AMQP workers (one client, one scenario, in its own process), all under
//! the same rules as the Go harness (`scripts/go/amqp091bench`):
//!
//! - `amqp-publish`: declare the queue, confirm mode, a confirmed warm-up
//!   (`warmup_count`), then N publishes keeping at most `--window`
//!   unconfirmed; the clock runs from the first measured publish to the last
//!   confirm. The broker's queue depth is checked by the orchestrator.
//! - `amqp-consume`: a prefilled queue, prefetch `--prefetch`, a manual ack
//!   per message; the clock runs from the first delivery to the last ack.
//! - `amqp-prefill` (raw only): fill a queue for the consume runs.

use std::time::{Duration, Instant};

use crate::alloc_count::AllocSnapshot;
use crate::report::WorkerResult;
use crate::worker::{progress, warmup_count, WorkerArgs};

/// The raw client: the broker ceiling (`amqp-publish`) and the prefiller.
pub fn raw(args: &WorkerArgs) -> Result<WorkerResult, String> {
    let mut c = crate::amqp_raw::RawAmqp::connect(&args.url, &args.subject)?;
    let window = args.window.max(1) as u64;
    match args.scenario.as_str() {
        "amqp-prefill" => {
            let took = c.publish(&args.subject, args.size, args.msgs, 1_000, 1)?;
            Ok(WorkerResult {
                messages: args.msgs,
                elapsed_s: took.as_secs_f64(),
                ..WorkerResult::default()
            })
        }
        "amqp-publish" => {
            let w = warmup_count(args.msgs);
            c.publish(&args.subject, args.size, w, window, 1)?;
            let allocs = AllocSnapshot::now();
            let took = c.publish(&args.subject, args.size, args.msgs, window, w + 1)?;
            Ok(WorkerResult {
                messages: args.msgs,
                process_messages: Some(args.msgs + w),
                elapsed_s: took.as_secs_f64(),
                allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
                note: Some(format!(
                    "ceiling: pre-encoded basic.publish frames in 64 KiB batches, at most {window} unconfirmed"
                )),
                ..WorkerResult::default()
            })
        }
        other => Err(format!("the raw AMQP client has no scenario {other:?}")),
    }
}

fn consume_result(
    n: u64,
    first: Option<Instant>,
    last: Instant,
    allocs: AllocSnapshot,
) -> WorkerResult {
    WorkerResult {
        messages: n.saturating_sub(1),
        process_messages: Some(n),
        elapsed_s: first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
        allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
        ..WorkerResult::default()
    }
}

/// courier: `publish_with` + a window of `Confirmation`s; consume with the
/// borrowed-delivery handler (`consume_with`, its zero-allocation path).
#[cfg(feature = "courier")]
pub fn courier(args: &WorkerArgs) -> Result<WorkerResult, String> {
    use courier::amqp::{Connection, DeclareOptions, Settle};
    use courier_core::amqp::{ConsumeFlags, FieldTable, Properties};
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    let timeout = Duration::from_secs(args.timeout_s);
    let run = async {
        let conn = Connection::connect(&args.url)
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.channel().await.map_err(|e| e.to_string())?;
        ch.queue_declare(&args.subject, DeclareOptions::default(), FieldTable::EMPTY)
            .await
            .map_err(|e| e.to_string())?;
        let result = match args.scenario.as_str() {
            "amqp-publish" => {
                ch.confirm_select().await.map_err(|e| e.to_string())?;
                let body = vec![b'x'; args.size];
                let props = Properties::default();
                let window = args.window.max(1);
                let mut pending = VecDeque::with_capacity(window + 1);
                let q = args.subject.as_str();
                let w = warmup_count(args.msgs);
                courier_publish(&ch, q, &props, &body, w, window, &mut pending).await?;
                let allocs = AllocSnapshot::now();
                let started = Instant::now();
                courier_publish(&ch, q, &props, &body, args.msgs, window, &mut pending).await?;
                WorkerResult {
                    messages: args.msgs,
                    process_messages: Some(args.msgs + w),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
                    note: Some(format!("publish_with, at most {window} unconfirmed")),
                    ..WorkerResult::default()
                }
            }
            "amqp-consume" => {
                ch.qos(args.prefetch).await.map_err(|e| e.to_string())?;
                let n = args.msgs;
                let seen = Rc::new(Cell::new(0u64));
                let first = Rc::new(Cell::new(None::<Instant>));
                let done = Rc::new(tokio::sync::Notify::new());
                let (s, f, d) = (seen.clone(), first.clone(), done.clone());
                let allocs = AllocSnapshot::now();
                let _consumer = ch
                    .consume_with(&args.subject, ConsumeFlags::default(), move |_delivery| {
                        if f.get().is_none() {
                            f.set(Some(Instant::now()));
                        }
                        s.set(s.get() + 1);
                        progress(s.get());
                        if s.get() == n {
                            d.notify_one();
                        }
                        Settle::Ack
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                done.notified().await;
                // The last ack is queued; it is on the wire after a flush.
                conn.flush().await.map_err(|e| e.to_string())?;
                let mut r = consume_result(n, first.get(), Instant::now(), allocs);
                r.note = Some(format!(
                    "consume_with (borrowed deliveries), prefetch {}",
                    args.prefetch
                ));
                r
            }
            other => return Err(format!("courier has no AMQP scenario {other:?}")),
        };
        conn.close().await.map_err(|e| e.to_string())?;
        Ok(result)
    };
    courier::run(async {
        tokio::time::timeout(timeout, run)
            .await
            .unwrap_or_else(|_| Err(crate::worker::timeout_error(timeout, args.msgs)))
    })
}

/// Publishes `n`, keeping at most `window` confirmations pending.
#[cfg(feature = "courier")]
async fn courier_publish(
    ch: &courier::amqp::Channel,
    queue: &str,
    props: &courier_core::amqp::Properties<'_>,
    body: &[u8],
    n: u64,
    window: usize,
    pending: &mut std::collections::VecDeque<courier::amqp::Confirmation>,
) -> Result<(), String> {
    use courier_core::amqp::PublishFlags;
    for i in 0..n {
        let c = ch
            .publish_with("", queue, PublishFlags::default(), props, body)
            .await
            .map_err(|e| e.to_string())?;
        pending.push_back(c);
        if pending.len() >= window {
            let first = pending.pop_front().expect("non-empty");
            first.await.map_err(|e| e.to_string())?;
        }
        progress(i);
    }
    while let Some(c) = pending.pop_front() {
        c.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(not(feature = "courier"))]
pub fn courier(args: &WorkerArgs) -> Result<WorkerResult, String> {
    Err(format!(
        "courier scenario {:?}: built without the `courier` feature",
        args.scenario
    ))
}

/// lapin 4 on a multi-thread tokio runtime (its usual setup): a window of
/// `PublisherConfirm`s; a consumer stream acking each delivery.
pub fn lapin(args: &WorkerArgs) -> Result<WorkerResult, String> {
    use futures::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    use std::collections::VecDeque;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let timeout = Duration::from_secs(args.timeout_s);
    let run = async {
        let conn = Connection::connect(&args.url, ConnectionProperties::default())
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        let queue = args.subject.as_str();
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let result = match args.scenario.as_str() {
            "amqp-publish" => {
                ch.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let body = vec![b'x'; args.size];
                let window = args.window.max(1);
                let publish = |n: u64| {
                    let (ch, body) = (&ch, &body);
                    async move {
                        let mut pending = VecDeque::with_capacity(window + 1);
                        for i in 0..n {
                            let c = ch
                                .basic_publish(
                                    "".into(),
                                    queue.into(),
                                    BasicPublishOptions::default(),
                                    body,
                                    BasicProperties::default(),
                                )
                                .await
                                .map_err(|e| e.to_string())?;
                            pending.push_back(c);
                            if pending.len() >= window {
                                let c = pending.pop_front().expect("non-empty");
                                let conf = c.await.map_err(|e| e.to_string())?;
                                if !conf.is_ack() {
                                    return Err("nacked".to_string());
                                }
                            }
                            progress(i);
                        }
                        for c in pending {
                            if !c.await.map_err(|e| e.to_string())?.is_ack() {
                                return Err("nacked".to_string());
                            }
                        }
                        Ok::<(), String>(())
                    }
                };
                let w = warmup_count(args.msgs);
                publish(w).await?;
                let allocs = AllocSnapshot::now();
                let started = Instant::now();
                publish(args.msgs).await?;
                WorkerResult {
                    messages: args.msgs,
                    process_messages: Some(args.msgs + w),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    allocations: Some(AllocSnapshot::now().allocations_since(&allocs)),
                    note: Some(format!("lapin 4, at most {window} unconfirmed")),
                    ..WorkerResult::default()
                }
            }
            "amqp-consume" => {
                ch.basic_qos(args.prefetch, BasicQosOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut consumer = ch
                    .basic_consume(
                        queue.into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let allocs = AllocSnapshot::now();
                let (mut got, mut first) = (0u64, None);
                while got < args.msgs {
                    let d = consumer
                        .next()
                        .await
                        .ok_or("the consumer ended")?
                        .map_err(|e| e.to_string())?;
                    first.get_or_insert_with(Instant::now);
                    d.ack(BasicAckOptions::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    got += 1;
                    progress(got);
                }
                let mut r = consume_result(args.msgs, first, Instant::now(), allocs);
                r.note = Some(format!(
                    "lapin 4 consumer stream, prefetch {}",
                    args.prefetch
                ));
                r
            }
            other => return Err(format!("lapin has no scenario {other:?}")),
        };
        conn.close(200, "bench done".into())
            .await
            .map_err(|e| e.to_string())?;
        Ok(result)
    };
    rt.block_on(async {
        tokio::time::timeout(timeout, run)
            .await
            .unwrap_or_else(|_| Err(crate::worker::timeout_error(timeout, args.msgs)))
    })
}
