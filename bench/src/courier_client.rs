//! courier's side of every scenario, written the way a courier user would:
//! one single-threaded courier runtime (io_uring, or epoll where refused),
//! `&[u8]` payloads.

use crate::report::WorkerResult;
use crate::worker::WorkerArgs;

/// Whether this build can run courier in worker `scenario`.
pub fn supports(scenario: &str) -> bool {
    cfg!(feature = "courier")
        && matches!(
            scenario,
            "publish"
                | "subscribe"
                | "pubsub"
                | "queue"
                | "publish-conns"
                | "request"
                | "handshake"
                | "js-publish"
                | "js-fetch"
                | "js-consume"
                | "js-outbox"
                | "nsq-publish"
                | "nsq-consume"
                | "nsq-core-publish"
                | "nsq-core-consume"
                | "amqp-publish"
                | "amqp-consume"
        )
}

/// Sizes in bytes of courier's connection-state types, for the report.
pub fn state_sizes() -> Vec<(String, usize)> {
    #[cfg(feature = "courier")]
    {
        imp::state_sizes()
    }
    #[cfg(not(feature = "courier"))]
    Vec::new()
}

/// Runs one courier scenario.
pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
    #[cfg(feature = "courier")]
    {
        imp::run(args)
    }
    #[cfg(not(feature = "courier"))]
    Err(format!(
        "courier scenario {:?}: this courier-bench was built without the `courier` feature",
        args.scenario
    ))
}

#[cfg(feature = "courier")]
pub(crate) mod imp {
    use super::*;
    use crate::worker::{latency_histogram, warmup_count, Section};
    use courier::nats::{ConnectOptions, PendingLimits};
    use courier::BackendChoice;
    use std::time::{Duration, Instant};

    pub fn state_sizes() -> Vec<(String, usize)> {
        use courier_core::nats::Session as NatsSession;
        use courier_core::nsq::Session as NsqSession;
        use std::mem::size_of;
        vec![
            (
                "courier_core::nats::Session<&mut [u8], 0, 0> (publish-only; transmit buffer borrowed, not counted)".into(),
                size_of::<NatsSession<&'static mut [u8], 0, 0>>(),
            ),
            (
                "courier_core::nats::Session<[u8; 512], 0, 0> (publish-only, 512 B transmit buffer inside)".into(),
                size_of::<NatsSession<[u8; 512], 0, 0>>(),
            ),
            (
                "courier_core::nats::Session<&mut [u8], 4, 2> (4 subscriptions, 2 pending requests)".into(),
                size_of::<NatsSession<&'static mut [u8], 4, 2>>(),
            ),
            (
                "courier_core::nats::Session<Box<[u8]>, 1024, 1024> (what the courier runtime embeds)".into(),
                size_of::<NatsSession<Box<[u8]>, 1024, 1024>>(),
            ),
            (
                "courier_core::nsq::Session<&mut [u8], 0> (NSQ, no pending publishes)".into(),
                size_of::<NsqSession<&'static mut [u8], 0>>(),
            ),
        ]
    }

    pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
        if args.scenario.starts_with("nsq-core-") {
            return crate::courier_nsq::run(args);
        }
        let choice: BackendChoice = args.transport.parse().map_err(|e| format!("{e}"))?;
        let runtime = courier::Runtime::builder()
            .backend(choice)
            .build()
            .map_err(|e| format!("courier runtime: {e}"))?;
        // What actually ran (a refused variant falls back and says so).
        let transport = runtime.transport().to_string();
        let timeout = Duration::from_secs(args.timeout_s);
        let mut result = runtime.block_on(async {
            match tokio::time::timeout(timeout, scenario(args)).await {
                Ok(result) => result,
                Err(_) => Err(crate::worker::timeout_error(timeout, args.msgs)),
            }
        })?;
        result.transport = Some(transport);
        Ok(result)
    }

    pub(crate) async fn connect(args: &WorkerArgs) -> Result<courier::nats::Client, String> {
        let mut options = ConnectOptions::new();
        if let Some(ca) = &args.tls_ca {
            // Verified against the run's CA, as a user would configure it.
            options = options
                .tls_ca_file(ca)
                .map_err(|e| format!("tls_ca_file: {e}"))?;
        }
        if let Some(secs) = args.connect_timeout_s {
            options = options.connect_timeout(Duration::from_secs(secs));
        }
        options
            .name("courier-bench courier")
            // A subscriber that falls behind must queue, not drop: the run
            // counts every message.
            .pending_limits(PendingLimits {
                messages: (args.msgs as usize + 1024).max(512 * 1024),
                bytes: usize::MAX / 2,
            })
            .connect([args.url.as_str()])
            .await
            .map_err(|e| format!("connect {}: {e}", args.url))
    }

    /// Runtime counters per message, for the note (io_uring submissions are
    /// not syscalls, so perf alone under-counts the work on that backend).
    pub(crate) fn runtime_note(before: courier::Stats, messages: u64) -> String {
        let after = courier::stats();
        let per = messages.max(1) as f64;
        format!(
            "runtime: {:.4} reads, {:.4} writes, {:.4} ring submissions per msg",
            after.reads.saturating_sub(before.reads) as f64 / per,
            after.writes.saturating_sub(before.writes) as f64 / per,
            after.submissions.saturating_sub(before.submissions) as f64 / per,
        )
    }

    async fn scenario(args: &WorkerArgs) -> Result<WorkerResult, String> {
        let subject = args.subject.as_str();
        let payload = vec![b'x'; args.size];
        let e = |e: courier::nats::Error| e.to_string();
        let result = match args.scenario.as_str() {
            "publish" => {
                let client = connect(args).await?;
                let warmup = warmup_count(args.msgs);
                for _ in 0..warmup {
                    client.publish(subject, &payload).await.map_err(e)?;
                }
                client.flush().await.map_err(e)?;
                let mut hist = latency_histogram();
                let counters = courier::stats();
                let section = Section::start();
                for _ in 0..args.msgs {
                    let t = Instant::now();
                    client.publish(subject, &payload).await.map_err(e)?;
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                }
                client.flush().await.map_err(e)?;
                let mut result = section.finish(args.msgs, Some(&hist));
                result.process_messages = Some(args.msgs + warmup);
                result.note = Some(runtime_note(counters, args.msgs));
                result
            }
            "subscribe" => {
                let client = connect(args).await?;
                let mut sub = client.subscribe(subject).await.map_err(e)?;
                client.flush().await.map_err(e)?;
                sub.next().await.ok_or("subscription ended")?;
                let counters = courier::stats();
                let section = Section::start();
                for i in 1..args.msgs {
                    sub.next().await.ok_or("subscription ended early")?;
                    crate::worker::progress(i + 1);
                }
                let mut result = section.finish(args.msgs.saturating_sub(1), None);
                result.process_messages = Some(args.msgs);
                result.note = Some(runtime_note(counters, args.msgs));
                result
            }
            "pubsub" => {
                let subscriber = connect(args).await?;
                let publisher = connect(args).await?;
                let mut sub = subscriber.subscribe(subject).await.map_err(e)?;
                subscriber.flush().await.map_err(e)?;
                let msgs = args.msgs;
                let counters = courier::stats();
                let section = Section::start();
                let receive = async {
                    for i in 0..msgs {
                        if sub.next().await.is_none() {
                            return Err("subscription ended early".to_string());
                        }
                        crate::worker::progress(i + 1);
                    }
                    Ok(Instant::now())
                };
                let publish = async {
                    for _ in 0..msgs {
                        publisher.publish(subject, &payload).await.map_err(e)?;
                    }
                    publisher.flush().await.map_err(e)
                };
                let (end, published) = futures::join!(receive, publish);
                published?;
                let mut result = section.finish_at(end?, msgs, None);
                result.note = Some(runtime_note(counters, msgs));
                result
            }
            "request" => {
                let client = connect(args).await?;
                let warmup = warmup_count(args.msgs).min(100);
                for _ in 0..warmup {
                    client.request(subject, &payload).await.map_err(e)?;
                }
                let mut hist = latency_histogram();
                let counters = courier::stats();
                let section = Section::start();
                for _ in 0..args.msgs {
                    let t = Instant::now();
                    client.request(subject, &payload).await.map_err(e)?;
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                }
                let mut result = section.finish(args.msgs, Some(&hist));
                result.process_messages = Some(args.msgs + warmup);
                result.note = Some(runtime_note(counters, args.msgs));
                result
            }
            "handshake" => {
                // Each connect: TCP, INFO, (TLS handshake), CONNECT + PING,
                // and the server's PONG, which `connect` awaits (as
                // async-nats' does); timed to its return, then closed.
                let mut hist = latency_histogram();
                let counters = courier::stats();
                let section = Section::start();
                for i in 0..args.msgs {
                    let t = Instant::now();
                    let client = connect(args).await?;
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                    client.close().await.map_err(e)?;
                    crate::worker::progress(i + 1);
                }
                let mut result = section.finish(args.msgs, Some(&hist));
                result.note = Some(format!(
                    "connect (to the PONG of CONNECT+PING), then closed; allocations include the close; {}",
                    runtime_note(counters, args.msgs)
                ));
                result
            }
            "publish-conns" => {
                // PUBLISH_CONNECTIONS clients on this one runtime thread,
                // each publishing its share, all flushed.
                let mut clients = Vec::new();
                for _ in 0..crate::worker::PUBLISH_CONNECTIONS {
                    clients.push(connect(args).await?);
                }
                let share = args.msgs / clients.len() as u64;
                let counters = courier::stats();
                let section = Section::start();
                let publishers = clients.iter().map(|client| {
                    let payload = &payload;
                    async move {
                        for _ in 0..share {
                            client.publish(subject, payload).await?;
                        }
                        client.flush().await
                    }
                });
                for outcome in futures::future::join_all(publishers).await {
                    outcome.map_err(e)?;
                }
                let total = share * crate::worker::PUBLISH_CONNECTIONS as u64;
                let mut result = section.finish(total, None);
                result.note = Some(runtime_note(counters, total));
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
                    let mut sub = client.queue_subscribe(subject, "bench").await.map_err(e)?;
                    client.flush().await.map_err(e)?;
                    let (tally, done) = (tally.clone(), done.clone());
                    courier::spawn(async move {
                        while sub.next().await.is_some() {
                            if tally.record(member) {
                                done.notify_one();
                            }
                        }
                    });
                    clients.push(client);
                }
                let counters = courier::stats();
                let allocs = crate::alloc_count::AllocSnapshot::now();
                done.notified().await;
                let mut result = tally.result(allocs);
                result.note = Some(format!(
                    "{}; {}",
                    result.note.unwrap_or_default(),
                    runtime_note(counters, args.msgs)
                ));
                result
            }
            js if js.starts_with("js-") => crate::courier_js::scenario(args).await?,
            "nsq-publish" => nsq_publish(args).await?,
            "nsq-consume" => nsq_consume(args).await?,
            other => return Err(format!("courier has no scenario {other:?} in this build")),
        };
        Ok(result)
    }

    fn nsq_config(args: &WorkerArgs) -> Result<courier::nsq::Config, String> {
        use courier::nsq::Compression;
        let compression = match args.compression.as_str() {
            "none" => Compression::None,
            "snappy" => Compression::Snappy,
            "deflate" => Compression::Deflate { level: 6 },
            other => {
                return Err(format!(
                    "unknown compression {other:?}: none, snappy or deflate"
                ))
            }
        };
        Ok(courier::nsq::Config {
            compression,
            client_id: Some("courier-bench".into()),
            ..courier::nsq::Config::default()
        })
    }

    /// PUB (batch 1) or MPUB batches, each waiting for nsqd's OK.
    async fn nsq_publish(args: &WorkerArgs) -> Result<WorkerResult, String> {
        let producer = courier::nsq::Producer::new([args.url.clone()], nsq_config(args)?)
            .map_err(|e| e.to_string())?;
        producer.connect().await.map_err(|e| e.to_string())?;
        let body = vec![b'x'; args.size];
        let batch = args.batch.max(1);
        let bodies: Vec<&[u8]> = vec![body.as_slice(); batch];
        let counters = courier::stats();
        let section = Section::start();
        let mut sent = 0u64;
        while sent < args.msgs {
            let n = (args.msgs - sent).min(batch as u64) as usize;
            if batch == 1 {
                producer.publish(&args.subject, &body).await
            } else {
                producer.multi_publish(&args.subject, &bodies[..n]).await
            }
            .map_err(|e| e.to_string())?;
            sent += n as u64;
        }
        let mut result = section.finish(args.msgs, None);
        result.note = Some(runtime_note(counters, args.msgs));
        producer.stop().await;
        Ok(result)
    }

    /// Counts messages; the handler returning Ok makes the consumer FIN.
    struct Counter {
        target: u64,
        seen: std::rc::Rc<std::cell::Cell<u64>>,
        first: std::rc::Rc<std::cell::Cell<Option<Instant>>>,
        last: std::rc::Rc<std::cell::Cell<Option<Instant>>>,
        done: std::rc::Rc<tokio::sync::Notify>,
    }

    impl courier::nsq::Handler for Counter {
        type Class = ();
        type Context = ();
        fn classify(&self, _: &courier::nsq::Message) -> Option<((), ())> {
            Some(((), ()))
        }
        async fn handle(
            &self,
            _: (),
            _: (),
            _: &courier::nsq::Message,
        ) -> Result<(), courier::nsq::HandlerError> {
            let seen = self.seen.get() + 1;
            self.seen.set(seen);
            crate::worker::progress(seen);
            if seen == 1 {
                self.first.set(Some(Instant::now()));
            }
            if seen == crate::worker::nsq_consume_mark(self.target) {
                self.last.set(Some(Instant::now()));
            }
            if seen == self.target {
                self.done.notify_one();
            }
            Ok(())
        }
    }

    /// Consumes `msgs` prefilled messages with max_in_flight, FIN after
    /// each handler returns.
    async fn nsq_consume(args: &WorkerArgs) -> Result<WorkerResult, String> {
        use std::cell::Cell;
        use std::rc::Rc;
        let seen = Rc::new(Cell::new(0));
        let first = Rc::new(Cell::new(None));
        let last = Rc::new(Cell::new(None));
        let done = Rc::new(tokio::sync::Notify::new());
        let handler = Counter {
            target: args.msgs,
            seen: seen.clone(),
            first: first.clone(),
            last: last.clone(),
            done: done.clone(),
        };
        let counters = courier::stats();
        let section = Section::start();
        let consumer = courier::nsq::Consumer::builder(
            [(args.subject.as_str(), "ch")],
            courier::nsq::ServerNodes::new([args.url.clone()]),
            args.max_in_flight,
            handler,
        )
        .config(nsq_config(args)?)
        .start()
        .await
        .map_err(|e| e.to_string())?;
        done.notified().await;
        let (Some(first), Some(last)) = (first.get(), last.get()) else {
            return Err("no messages arrived".into());
        };
        // The section's allocation count covers the whole consume; its
        // clock is re-based on the first and last message.
        let mut result = section.finish(args.msgs, None);
        result.elapsed_s = last.duration_since(first).as_secs_f64();
        result.messages = crate::worker::nsq_consume_mark(args.msgs).saturating_sub(1);
        result.process_messages = Some(args.msgs);
        result.note = Some(format!(
            "{}; {}; max in flight seen {}",
            crate::worker::NSQ_CONSUME_NOTE,
            runtime_note(counters, args.msgs),
            consumer.max_seen_in_flight()
        ));
        consumer.stop().await;
        Ok(result)
    }
}
