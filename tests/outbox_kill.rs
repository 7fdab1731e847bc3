//! The outbox's crash test: a publisher child process publishes 100,000
//! numbered messages through the durable outbox while the test kills the
//! broker (SIGKILL) and restarts it three times and SIGKILLs the publisher
//! once and starts it again. A consumer then counts: every number arrives;
//! on JetStream none twice (Nats-Msg-Id de-duplication), on NSQ
//! duplicates are allowed, counted and reported. Plus a flipped byte in
//! the spool: reported and skipped, the rest replayed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier::nats::jetstream::{self, AckPolicy, ConsumerOptions, PullOptions, StreamOptions};
use courier_tests::jetstream::JetStreamServer;

const N: u64 = 100_000;

/// A running publisher and what it printed.
struct Publisher {
    child: Child,
    appended: Arc<AtomicI64>,
    confirmed: Arc<AtomicI64>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn start(mode: &str, server: &str, dir: &std::path::Path, from: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outbox_publisher"))
            .args([
                mode,
                server,
                &dir.display().to_string(),
                &from.to_string(),
                &N.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the publisher");
        let appended = Arc::new(AtomicI64::new(from as i64 - 1));
        let confirmed = Arc::new(AtomicI64::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let (a, c, l) = (appended.clone(), confirmed.clone(), lines.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("A ") {
                    a.store(n.parse().unwrap(), Ordering::SeqCst);
                } else if let Some(n) = line.strip_prefix("C ") {
                    c.store(n.parse().unwrap(), Ordering::SeqCst);
                } else {
                    l.lock().unwrap().push(line);
                }
            }
        });
        Publisher {
            child,
            appended,
            confirmed,
            lines,
            reader: Some(reader),
        }
    }

    fn wait_confirmed(&self, at_least: i64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.confirmed.load(Ordering::SeqCst) < at_least {
            assert!(
                Instant::now() < deadline,
                "publisher stuck at {} confirmed",
                self.confirmed.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_appended(&self, at_least: i64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.appended.load(Ordering::SeqCst) < at_least {
            assert!(
                Instant::now() < deadline,
                "publisher stuck at {} appended",
                self.appended.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL; returns the last number it reported appended.
    fn kill(mut self) -> i64 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        self.appended.load(Ordering::SeqCst)
    }

    /// Waits for the end; returns its non-progress lines.
    fn finish(mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.reader.take().unwrap().join().unwrap();
                let lines = self.lines.lock().unwrap().clone();
                assert!(status.success(), "publisher failed: {status}, {lines:?}");
                return lines;
            }
            assert!(Instant::now() < deadline, "publisher did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The broker stays down a moment (the publisher sees the outage).
fn pause() {
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn jetstream_outbox_survives_broker_and_publisher_kills() {
    let mut server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        jetstream::new(client)
            .create_stream(
                &StreamOptions::new("OB")
                    .subjects(["ob"])
                    .duplicate_window(Duration::from_secs(600)),
            )
            .await
            .unwrap();
    });
    let spool = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let p = Publisher::start("js", &url, spool.path(), 0);
    p.wait_confirmed(5_000);
    server.kill();
    pause();
    server.restart();
    // Killed mid-append: part of the numbers are spooled, part not yet.
    p.wait_appended(50_000);
    let last = p.kill();
    assert!(
        last < N as i64 - 1,
        "the publisher was done before its kill"
    );
    let p = Publisher::start("js", &url, spool.path(), (last + 1) as u64);
    p.wait_confirmed(10_000);
    server.kill();
    pause();
    server.restart();
    p.wait_confirmed(25_000);
    server.kill();
    pause();
    server.restart();
    let lines = p.finish();
    eprintln!(
        "publisher after the kill: {lines:?}; total {:?}",
        started.elapsed()
    );
    assert!(lines.iter().any(|l| l.starts_with("DONE 0 ")), "{lines:?}");

    // Count in the stream: every number, none twice.
    courier::run(async {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        let js = jetstream::new(client);
        let info = js.stream_info("OB").await.unwrap();
        let c = js
            .create_consumer(
                "OB",
                &ConsumerOptions::ephemeral().ack_policy(AckPolicy::None),
            )
            .await
            .unwrap();
        let mut msgs = c
            .messages(PullOptions {
                batch: 2000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut seen = vec![0u32; N as usize];
        for _ in 0..info.state.messages {
            let m = tokio::time::timeout(Duration::from_secs(20), msgs.next())
                .await
                .expect("stream message")
                .unwrap()
                .unwrap();
            let n: usize = std::str::from_utf8(m.payload()).unwrap().parse().unwrap();
            seen[n] += 1;
        }
        let missing: Vec<usize> = (0..N as usize).filter(|&i| seen[i] == 0).collect();
        let twice = seen.iter().filter(|&&c| c > 1).count();
        assert!(
            missing.is_empty(),
            "{} numbers missing, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        assert_eq!(twice, 0, "numbers stored twice");
        assert_eq!(info.state.messages, N);
    });
}

#[test]
fn flipped_spool_byte_is_reported_and_the_rest_replayed() {
    // The broker is down while publishing, so everything stays spooled.
    let mut server = JetStreamServer::start();
    let url = server.url();
    courier::run(async {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        jetstream::new(client)
            .create_stream(&StreamOptions::new("FLIP").subjects(["ob"]))
            .await
            .unwrap();
    });
    server.kill();
    let spool = tempfile::tempdir().unwrap();
    let p = Publisher::start("js", &url, spool.path(), N - 1000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.appended.load(Ordering::SeqCst) < (N - 1) as i64 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    p.kill();
    // Flip one byte inside the payload of a record in the middle of the
    // first segment.
    let mut segments: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut data = std::fs::read(&segments[0]).unwrap();
    let middle = data.len() / 2;
    let at = middle
        + data[middle..]
            .windows(4)
            .position(|w| w == b"CoB3")
            .unwrap()
        + 35;
    data[at] ^= 0x20;
    std::fs::write(&segments[0], &data).unwrap();

    server.restart();
    let p = Publisher::start("js", &url, spool.path(), N); // nothing new
    let lines = p.finish();
    let corrupt: Vec<&String> = lines.iter().filter(|l| l.starts_with("CORRUPT")).collect();
    assert_eq!(corrupt.len(), 1, "{lines:?}");
    assert!(corrupt[0].contains("checksum mismatch"), "{corrupt:?}");
    assert!(lines.contains(&"R 999 1".to_string()), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("DONE 0 999 ")),
        "{lines:?}"
    );
    courier::run(async {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        let info = jetstream::new(client).stream_info("FLIP").await.unwrap();
        assert_eq!(info.state.messages, 999);
    });
}

#[test]
fn nsq_outbox_survives_broker_and_publisher_kills() {
    // All queues on disk (--mem-queue-size=0), so an nsqd kill -9 keeps
    // what it acknowledged.
    let mut nsqd = courier_tests::Nsqd::start_with(&["--mem-queue-size=0"]);
    // The channel exists from the start, so nsqd keeps every message for it.
    courier_tests::http_request(nsqd.http_port, "POST", "/topic/create?topic=ob", b"");
    courier_tests::http_request(
        nsqd.http_port,
        "POST",
        "/channel/create?topic=ob&channel=count",
        b"",
    );
    let addr = nsqd.tcp_addr();
    let spool = tempfile::tempdir().unwrap();

    let p = Publisher::start("nsq", &addr, spool.path(), 0);
    p.wait_confirmed(5_000);
    nsqd.kill();
    pause();
    nsqd.restart();
    // Killed mid-append: part of the numbers are spooled, part not yet.
    p.wait_appended(50_000);
    let last = p.kill();
    assert!(
        last < N as i64 - 1,
        "the publisher was done before its kill"
    );
    let p = Publisher::start("nsq", &addr, spool.path(), (last + 1) as u64);
    p.wait_confirmed(10_000);
    nsqd.kill();
    pause();
    nsqd.restart();
    p.wait_confirmed(25_000);
    nsqd.kill();
    pause();
    nsqd.restart();
    let lines = p.finish();
    assert!(lines.iter().any(|l| l.starts_with("DONE 0 ")), "{lines:?}");

    let counts = count_nsq(&addr);
    let missing: Vec<u64> = (0..N).filter(|n| !counts.contains_key(n)).collect();
    let duplicates: u64 = counts.values().map(|&c| c as u64 - 1).sum();
    eprintln!(
        "NSQ outbox: {} distinct numbers, {duplicates} duplicates (at-least-once)",
        counts.len()
    );
    assert!(
        missing.is_empty(),
        "{} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

struct Counter(std::rc::Rc<std::cell::RefCell<HashMap<u64, u32>>>);

impl courier::nsq::Handler for Counter {
    type Class = ();
    type Context = ();
    fn classify(&self, _: &courier::nsq::Message) -> Option<((), ())> {
        None
    }
    async fn handle(
        &self,
        _: (),
        _: (),
        _: &courier::nsq::Message,
    ) -> Result<(), courier::nsq::HandlerError> {
        Ok(())
    }
    async fn default_handler(
        &self,
        m: &courier::nsq::Message,
    ) -> Result<(), courier::nsq::HandlerError> {
        let n: u64 = std::str::from_utf8(m.body()).unwrap().parse().unwrap();
        *self.0.borrow_mut().entry(n).or_default() += 1;
        Ok(())
    }
}

fn count_nsq(addr: &str) -> HashMap<u64, u32> {
    courier::run(async {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(HashMap::new()));
        let consumer = courier::nsq::Consumer::builder(
            [("ob", "count")],
            courier::nsq::ServerNodes::new([addr.to_string()]),
            2000,
            Counter(seen.clone()),
        )
        .start()
        .await
        .unwrap();
        // Read until nothing new arrives for 2 s.
        let mut last = (0, Instant::now());
        loop {
            let total: u32 = seen.borrow().values().sum();
            if total != last.0 {
                last = (total, Instant::now());
            } else {
                // Quiet for 2 s after everything came (duplicates may
                // follow), or for 30 s at all: done.
                let quiet = last.1.elapsed();
                let enough = total as u64 >= N;
                if (enough && quiet > Duration::from_secs(2)) || quiet > Duration::from_secs(30) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        consumer.stop().await;
        let counts = seen.borrow().clone();
        counts
    })
}
