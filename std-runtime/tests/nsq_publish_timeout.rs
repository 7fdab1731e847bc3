//! A publish whose answer never comes returns `TimedOut` after
//! `publish_timeout`, counted from its own start, while publishes that are
//! answered in time are never timed out, also across several timeout
//! periods. The producer checks these deadlines with one timer for all
//! publishes in flight (not one per publish), so this is what proves the
//! deadline is kept per publish. Real nsqd behind a loopback proxy that can
//! stop passing nsqd's answers back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use courier::nsq::{Config, Error, Producer};
use courier_tests::Nsqd;

const TIMEOUT: Duration = Duration::from_millis(400);

/// Forwards one client connection to `upstream`; nsqd's bytes reach the
/// client only while `answers` is true (dropped otherwise).
fn proxy(upstream: String, answers: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(upstream).unwrap();
        let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = c_read.read(&mut buf) {
                if s_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let (mut s_read, mut c_write) = (server, client);
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = s_read.read(&mut buf) {
            if answers.load(Ordering::SeqCst) && c_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    addr
}

#[test]
fn unanswered_publishes_time_out_each_at_its_own_deadline() {
    let nsqd = Nsqd::start();
    let answers = Arc::new(AtomicBool::new(true));
    let addr = proxy(nsqd.tcp_addr(), answers.clone());
    let config = Config {
        publish_timeout: TIMEOUT,
        ..Config::default()
    };
    courier::run(async move {
        let producer = Producer::new([addr], config).unwrap();
        producer.connect().await.unwrap();

        // Answered publishes over 3 timeout periods: the deadline timer
        // fires for deadlines of publishes long answered and must not
        // touch the ones in flight.
        let start = Instant::now();
        let mut sent = 0u32;
        while start.elapsed() < TIMEOUT * 3 {
            producer
                .publish("timeout_t", b"answered")
                .await
                .unwrap_or_else(|e| panic!("answered publish {sent}: {e}"));
            sent += 1;
        }
        assert!(sent > 10, "only {sent} publishes in {:?}", TIMEOUT * 3);

        // nsqd's answers stop reaching the producer: three publishes started
        // 150 ms apart each give up TIMEOUT after their own start.
        answers.store(false, Ordering::SeqCst);
        let tasks: Vec<_> = (0..3u64)
            .map(|i| {
                let producer = producer.clone();
                courier::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(150 * i)).await;
                    let began = Instant::now();
                    let result = producer.publish("timeout_t", b"unanswered").await;
                    (result, began.elapsed())
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let (result, took) = task.await.unwrap();
            match result {
                Err(Error::TimedOut { operation, after }) => {
                    assert_eq!(operation, "publish");
                    assert_eq!(after, TIMEOUT);
                }
                other => panic!("publish {i}: expected TimedOut, got {other:?}"),
            }
            assert!(took >= TIMEOUT, "publish {i} gave up early, after {took:?}");
            assert!(
                took < TIMEOUT + Duration::from_millis(1500),
                "publish {i} gave up late, after {took:?}"
            );
        }
    });
}
