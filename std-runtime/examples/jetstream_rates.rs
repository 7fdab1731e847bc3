//! JetStream rates of courier, for scripts/bench_jetstream.sh (which runs
//! natscli's `nats bench js` beside it on the same server).
//!
//! `jetstream_rates <url> <pub|fetch|consume|outbox> <msgs> <size> <window|batch> [spool dir]`
//!
//! - `pub`: publish with acks into a fresh memory stream; window 1 waits
//!   for each ack, larger windows keep that many acks outstanding.
//!   `pubid`: the same with a `Nats-Msg-Id` on each (as the outbox sets).
//! - `fetch` / `consume`: publishes `msgs` first, then pulls them with
//!   explicit acks (fetch batches, or the messages() stream).
//! - `outbox`: publishes through the durable outbox in batches of `window`
//!   with one fsync per batch, until every record is confirmed
//!   (`OUTBOX_NO_FSYNC=1`: never fsync, to split the cost).
//!
//! Prints one line: `<mode> <msgs> <size> <window> <msgs/s>`.

use std::time::{Duration, Instant};

use courier::nats::jetstream::{self, ConsumerOptions, PullOptions, Storage, StreamOptions};
use courier::nats::ConnectOptions;
use courier::outbox::{Outbox, OutboxMessage, OutboxOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args[1].clone();
    let mode = args[2].clone();
    let msgs: usize = args[3].parse().unwrap();
    let size: usize = args[4].parse().unwrap();
    let window: usize = args[5].parse().unwrap();
    let spool = args.get(6).cloned();
    courier::run(async move {
        let client = ConnectOptions::new()
            .connect([url.as_str()])
            .await
            .expect("connect");
        let js = jetstream::new(client);
        let _ = js.delete_stream("CBENCH").await;
        js.create_stream(
            &StreamOptions::new("CBENCH")
                .subjects(["cbench"])
                .storage(Storage::Memory),
        )
        .await
        .unwrap();
        let payload = vec![b'x'; size];
        let start = Instant::now();
        match mode.as_str() {
            "pub" if window <= 1 => {
                for _ in 0..msgs {
                    js.publish("cbench", &payload).await.unwrap();
                }
            }
            "pub" | "pubid" => {
                let w = js.publish_window(window);
                let mut opts = jetstream::PublishOptions::default();
                let payload = bytes::Bytes::from(payload.clone());
                for i in 0..msgs {
                    if mode == "pubid" {
                        opts.msg_id = Some(format!("id-{i}"));
                    }
                    drop(w.publish("cbench", payload.clone(), &opts).await.unwrap());
                }
                let s = w.wait_all(Duration::from_secs(60)).await.unwrap();
                assert_eq!(s.acked, msgs as u64, "{s:?}");
            }
            "fetch" | "consume" => {
                let w = js.publish_window(256);
                let opts = Default::default();
                let payload = bytes::Bytes::from(payload.clone());
                for _ in 0..msgs {
                    drop(w.publish("cbench", payload.clone(), &opts).await.unwrap());
                }
                w.wait_all(Duration::from_secs(60)).await.unwrap();
                let c = js
                    .create_consumer("CBENCH", &ConsumerOptions::durable("c"))
                    .await
                    .unwrap();
                let start = Instant::now();
                let mut got = 0;
                if mode == "fetch" {
                    while got < msgs {
                        for m in c.fetch(window, Duration::from_secs(1)).await.unwrap() {
                            m.ack().await.unwrap();
                            got += 1;
                        }
                    }
                } else {
                    let mut stream = c
                        .messages(PullOptions {
                            batch: window,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    while got < msgs {
                        let m = stream.next().await.unwrap().unwrap();
                        m.ack().await.unwrap();
                        got += 1;
                    }
                }
                js.client().flush().await.unwrap();
                let rate = msgs as f64 / start.elapsed().as_secs_f64();
                println!("{mode} {msgs} {size} {window} {rate:.0}");
                return;
            }
            "outbox" => {
                let dir = spool.expect("spool dir");
                let mut o = OutboxOptions::new(&dir);
                o.window = 256;
                if std::env::var_os("OUTBOX_NO_FSYNC").is_some() {
                    o.fsync = courier::outbox::FsyncPolicy::Never;
                }
                let (outbox, _) = Outbox::jetstream(js.clone(), o).await.unwrap();
                let mut sent = 0;
                while sent < msgs {
                    let n = window.min(msgs - sent);
                    let batch: Vec<OutboxMessage<'_>> = (0..n)
                        .map(|_| OutboxMessage {
                            subject: "cbench",
                            msg_id: None,
                            payload: &payload,
                        })
                        .collect();
                    outbox.publish_batch(&batch).await.unwrap();
                    sent += n;
                    tokio::task::yield_now().await;
                }
                let report = outbox.stop(Duration::from_secs(120)).await;
                assert_eq!(report.remaining, 0);
            }
            other => panic!("unknown mode {other}"),
        }
        let rate = msgs as f64 / start.elapsed().as_secs_f64();
        let info = js.stream_info("CBENCH").await.unwrap();
        assert_eq!(
            info.state.messages, msgs as u64,
            "the server stored them all"
        );
        println!("{mode} {msgs} {size} {window} {rate:.0}");
    });
}
