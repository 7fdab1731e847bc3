//! The outbox in-process against a real `nats-server -js`: bounded bytes
//! (OutboxFull or Block), stop() with a deadline reporting what remains,
//! the fsync policies, a record the stream refuses reported (never
//! dropped silently), and the default `Nats-Msg-Id` de-duplicating a
//! replay of records the stream already stored.

use std::time::Duration;

use courier::nats::jetstream::{self, Context, StreamOptions};
use courier::nats::ConnectOptions;
use courier::outbox::{FsyncPolicy, Outbox, OutboxError, OutboxOptions, WhenFull};
use courier_tests::jetstream::JetStreamServer;

async fn js(url: &str) -> Context {
    let client = ConnectOptions::new()
        .retry_on_initial_connect(true)
        .max_reconnects(None)
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
        .connect([url])
        .await
        .unwrap();
    jetstream::new(client)
}

fn options(dir: &std::path::Path) -> OutboxOptions {
    let mut o = OutboxOptions::new(dir);
    o.ack_timeout = Duration::from_millis(500);
    o.backoff = (Duration::from_millis(10), Duration::from_millis(100));
    o
}

#[test]
fn full_outbox_errors_or_blocks_and_stop_reports_what_remains() {
    let mut server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        js(&url)
            .await
            .create_stream(&StreamOptions::new("F").subjects(["f.>"]))
            .await
            .unwrap();
    });
    server.kill(); // nothing is confirmed while the broker is down
    let spool = tempfile::tempdir().unwrap();
    courier::run(async {
        let mut o = options(spool.path());
        o.max_bytes = 8 * 1024;
        o.segment_bytes = 4096;
        o.when_full = WhenFull::Error;
        let (outbox, rec) = Outbox::jetstream(js(&url).await, o).await.unwrap();
        assert_eq!(rec.replayed, 0);
        let payload = [7u8; 100];
        let mut taken = 0;
        let full = loop {
            match outbox.publish("f.x", &payload).await {
                Ok(_) => taken += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(full, OutboxError::Full { capacity: 8192, .. }),
            "{full}"
        );
        assert!(taken > 30 && taken < 80, "{taken}");
        let report = outbox.stop(Duration::from_millis(300)).await;
        assert_eq!(report.remaining, taken);
        assert!(report.remaining_bytes > 0);
        assert!(matches!(
            outbox.publish("f.x", b"late").await,
            Err(OutboxError::Stopped)
        ));
    });
    // Reopened with Block: the spooled ones replay once the broker is back,
    // and a publish that waited for room goes through.
    server.restart();
    courier::run(async {
        let mut o = options(spool.path());
        o.max_bytes = 8 * 1024;
        o.segment_bytes = 4096;
        o.when_full = WhenFull::Block;
        let js = js(&url).await;
        let (outbox, rec) = Outbox::jetstream(js.clone(), o).await.unwrap();
        assert!(rec.replayed > 30 && rec.corrupt.is_empty());
        for _ in 0..200 {
            tokio::time::timeout(Duration::from_secs(20), outbox.publish("f.x", &[1u8; 100]))
                .await
                .expect("blocked publish got room")
                .unwrap();
        }
        let report = outbox.stop(Duration::from_secs(20)).await;
        assert_eq!(report.remaining, 0);
        assert_eq!(report.remaining_bytes, 0);
        let expected = rec.replayed as u64 + 200;
        assert_eq!(js.stream_info("F").await.unwrap().state.messages, expected);
        assert_eq!(
            std::fs::read_dir(spool.path()).unwrap().count(),
            1,
            "only outbox.id left"
        );
    });
}

#[test]
fn fsync_policies_refused_records_and_replay_dedup() {
    let server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let js = js(&url).await;
        js.create_stream(&StreamOptions::new("R").subjects(["r.>"]).max_msg_size(64))
            .await
            .unwrap();
        for policy in [
            FsyncPolicy::EveryBatch,
            FsyncPolicy::Interval(Duration::from_millis(20)),
            FsyncPolicy::Never,
        ] {
            let spool = tempfile::tempdir().unwrap();
            let mut o = options(spool.path());
            o.fsync = policy;
            let (outbox, _) = Outbox::jetstream(js.clone(), o).await.unwrap();
            for i in 0..50 {
                outbox
                    .publish("r.ok", format!("{i}").as_bytes())
                    .await
                    .unwrap();
            }
            // Larger than the stream's max_msg_size: refused for good.
            outbox.publish("r.big", &[0u8; 200]).await.unwrap();
            let report = outbox.stop(Duration::from_secs(10)).await;
            assert_eq!(report.remaining, 0, "{policy:?}");
            assert_eq!(report.stats.confirmed, 50);
            assert_eq!(report.stats.refused, 1);
            let refused = outbox.refused();
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].0.subject, "r.big");
            assert!(
                refused[0].1.contains("10054") || refused[0].1.contains("maximum"),
                "{}",
                refused[0].1
            );
        }
        assert_eq!(js.stream_info("R").await.unwrap().state.messages, 150);

        // A spool whose records the stream already has (a crash after the
        // acks, before the segment was deleted): replayed, acked as
        // duplicates thanks to the default Nats-Msg-Id, stored once.
        let spool = tempfile::tempdir().unwrap();
        let saved = spool.path().join("saved");
        {
            let mut o = options(spool.path());
            o.fsync = FsyncPolicy::EveryBatch;
            let (outbox, _) = Outbox::jetstream(js.clone(), o).await.unwrap();
            for i in 0..20 {
                outbox
                    .publish("r.dup", format!("{i}").as_bytes())
                    .await
                    .unwrap();
            }
            // Copy the spool while the records are still in it.
            std::fs::create_dir(&saved).unwrap();
            for e in std::fs::read_dir(spool.path()).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    std::fs::copy(&p, saved.join(p.file_name().unwrap())).unwrap();
                }
            }
            assert_eq!(outbox.stop(Duration::from_secs(10)).await.remaining, 0);
        }
        let (outbox, rec) = Outbox::jetstream(js.clone(), options(&saved))
            .await
            .unwrap();
        assert_eq!(rec.replayed, 20);
        let report = outbox.stop(Duration::from_secs(10)).await;
        assert_eq!((report.remaining, report.stats.duplicates), (0, 20));
        assert_eq!(js.stream_info("R").await.unwrap().state.messages, 170);
    });
}
