//! Publisher child process of the outbox crash tests (tests/outbox_kill.rs):
//! publishes numbered messages through a durable outbox, printing progress
//! so the test can SIGKILL it and start it again where it left off.
//!
//! `outbox_publisher <js|nsq> <server> <spool dir> <from> <to>`
//!
//! Prints `R <replayed> <corrupt>` at start, `A <n>` after the batch ending
//! with number n is appended (and fsynced), `C <confirmed>` every 50 ms,
//! and `DONE <remaining> <confirmed> <duplicates> <retries>` at the end.
//! Message n has payload `n` and `Nats-Msg-Id` `n-<n>`.

use std::io::Write;
use std::time::Duration;

use courier::nats::{jetstream, ConnectOptions};
use courier::outbox::{Outbox, OutboxMessage, OutboxOptions};

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, server, dir) = (args[1].clone(), args[2].clone(), args[3].clone());
    let from: u64 = args[4].parse().unwrap();
    let to: u64 = args[5].parse().unwrap();
    let remaining = courier::run(async move {
        let mut options = OutboxOptions::new(&dir);
        options.segment_bytes = 64 * 1024;
        options.ack_timeout = Duration::from_secs(2);
        options.backoff = (Duration::from_millis(20), Duration::from_millis(500));
        let (outbox, recovery) = if mode == "js" {
            let client = ConnectOptions::new()
                .retry_on_initial_connect(true)
                .max_reconnects(None)
                .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
                .connect([server.as_str()])
                .await
                .expect("connect");
            Outbox::jetstream(jetstream::new(client), options)
                .await
                .unwrap()
        } else {
            options.window = 200;
            Outbox::nsq(
                vec![server.clone()],
                courier::nsq::Config::default(),
                options,
            )
            .await
            .unwrap()
        };
        say(format!(
            "R {} {}",
            recovery.replayed,
            recovery.corrupt.len()
        ));
        for c in &recovery.corrupt {
            say(format!("CORRUPT {} {} {}", c.offset, c.skipped, c.reason));
        }
        let outbox = std::rc::Rc::new(outbox);
        let progress = {
            let outbox = std::rc::Rc::downgrade(&outbox);
            courier::spawn(async move {
                while let Some(outbox) = outbox.upgrade() {
                    say(format!("C {}", outbox.stats().confirmed));
                    drop(outbox);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let mut n = from;
        while n < to {
            let end = (n + 256).min(to);
            let ids: Vec<(String, String)> = (n..end)
                .map(|i| (format!("n-{i}"), i.to_string()))
                .collect();
            let batch: Vec<OutboxMessage<'_>> = ids
                .iter()
                .map(|(id, body)| OutboxMessage {
                    subject: "ob",
                    msg_id: Some(id),
                    payload: body.as_bytes(),
                })
                .collect();
            outbox.publish_batch(&batch).await.unwrap();
            say(format!("A {}", end - 1));
            n = end;
            // Let the sender and the connection run between batches (an
            // fsync per batch otherwise keeps the thread busy).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let report = outbox.stop(Duration::from_secs(120)).await;
        progress.abort();
        say(format!("C {}", report.stats.confirmed));
        say(format!(
            "DONE {} {} {} {}",
            report.remaining, report.stats.confirmed, report.stats.duplicates, report.stats.retries
        ));
        report.remaining
    });
    std::process::exit(if remaining == 0 { 0 } else { 1 });
}
