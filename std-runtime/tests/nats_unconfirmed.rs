//! Core NATS publishes around a server crash (issue 7, defect 2): a real
//! nats-server is killed (SIGKILL) and restarted on the same port while a
//! client publishes at a steady rate.
//!
//! The publisher reaches the server through a gate (a small TCP forwarder
//! in this test) that stays shut after the restart until a subscriber,
//! connected directly, has subscribed again on the new server; so every
//! message the new server gets is seen, and the subscriber's count is what
//! the servers delivered.
//!
//! - resend on: no sequence number is missing (duplicates allowed, counted
//!   and bounded by what the client says it resent);
//! - resend off: the missing ones are exactly a run of the publishes the
//!   client reported as unconfirmed (never more than it reported).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::nats::{ConnectOptions, Event};
use courier_tests::NatsServer;

const MESSAGES: u64 = 6000;

/// Forwards connections to `upstream` while open; refuses them while shut.
fn gate(upstream: SocketAddr, open: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind gate");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if !open.load(Ordering::SeqCst) {
                continue; // dropped: the client sees a failed attempt
            }
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let pump = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                })
            };
            pump(client.try_clone().unwrap(), server.try_clone().unwrap());
            pump(server, client);
        }
    });
    addr
}

struct Outcome {
    /// Times each sequence number arrived.
    received: HashMap<u64, u32>,
    unconfirmed_reported: u64,
    resent: u64,
    discarded: usize,
}

fn crash_mid_stream(resend: bool) -> Outcome {
    let server = Arc::new(Mutex::new(NatsServer::start()));
    let server_addr = server.lock().unwrap().addr();
    let direct_url = server.lock().unwrap().url();
    let open = Arc::new(AtomicBool::new(true));
    let gated_url = format!("nats://{}", gate(server_addr, open.clone()));
    let sub_back = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));

    let crasher = {
        let (server, open, sub_back, started) = (
            server.clone(),
            open.clone(),
            sub_back.clone(),
            started.clone(),
        );
        std::thread::spawn(move || {
            while !started.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(400));
            open.store(false, Ordering::SeqCst);
            server.lock().unwrap().kill();
            std::thread::sleep(Duration::from_millis(300));
            server.lock().unwrap().restart();
            // The subscriber first, then the publisher.
            for _ in 0..1000 {
                if sub_back.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            open.store(true, Ordering::SeqCst);
        })
    };

    let outcome = courier::run(async move {
        let back = sub_back.clone();
        let subscriber = ConnectOptions::new()
            .reconnect_delay(Duration::from_millis(10), Duration::from_millis(50))
            .max_reconnects(None)
            .event_callback(move |e| {
                if matches!(e, Event::Reconnected { .. }) {
                    back.store(true, Ordering::SeqCst);
                }
            })
            .connect([direct_url])
            .await
            .expect("subscriber connects");
        let mut sub = subscriber.subscribe("seq").await.expect("subscribe");
        subscriber.flush().await.expect("SUB confirmed");
        let received: Rc<RefCell<HashMap<u64, u32>>> = Rc::default();
        let seen = received.clone();
        let reader = courier::spawn(async move {
            while let Some(msg) = sub.next().await {
                let n: u64 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
                *seen.borrow_mut().entry(n).or_default() += 1;
            }
        });

        let discarded = Rc::new(Cell::new(0usize));
        let d = discarded.clone();
        let publisher = ConnectOptions::new()
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .max_reconnects(None)
            .resend_unconfirmed(resend)
            .confirm_interval(Duration::from_millis(100), 64 * 1024)
            .event_callback(move |e| {
                if let Event::Disconnected {
                    discarded_publishes,
                    ..
                } = e
                {
                    d.set(d.get() + discarded_publishes);
                }
            })
            .connect([gated_url])
            .await
            .expect("publisher connects");
        started.store(true, Ordering::SeqCst);
        // About 6000 messages/s.
        for i in 0..MESSAGES {
            publisher
                .publish("seq", i.to_string())
                .await
                .expect("publish queued");
            if i % 30 == 29 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        publisher
            .flush_timeout(Duration::from_secs(30))
            .await
            .expect("final flush after the reconnect");
        // Let the subscriber take what the server routed.
        subscriber.flush().await.expect("subscriber flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = publisher.statistics();
        let _ = publisher.close().await;
        let _ = subscriber.close().await;
        reader.abort();
        let received = received.borrow().clone();
        Outcome {
            received,
            unconfirmed_reported: stats.unconfirmed_publishes,
            resent: stats.resent_publishes,
            discarded: discarded.get(),
        }
    });
    crasher.join().expect("crasher thread");
    outcome
}

#[test]
fn with_resend_no_publish_is_missing_after_a_crash() {
    let o = crash_mid_stream(true);
    let missing: Vec<u64> = (0..MESSAGES)
        .filter(|n| !o.received.contains_key(n))
        .collect();
    let duplicates: u64 = o.received.values().map(|&c| u64::from(c) - 1).sum();
    eprintln!(
        "resend on: {} distinct of {MESSAGES}, {} missing, {duplicates} duplicates, {} resent, \
         {} reported unconfirmed",
        o.received.len(),
        missing.len(),
        o.resent,
        o.unconfirmed_reported
    );
    assert_eq!(o.discarded, 0);
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(
        o.unconfirmed_reported, 0,
        "every unconfirmed publish was resent"
    );
    assert!(
        duplicates <= o.resent,
        "{duplicates} duplicates but only {} resent",
        o.resent
    );
}

#[test]
fn without_resend_the_gap_is_what_was_reported_unconfirmed() {
    let o = crash_mid_stream(false);
    let missing: Vec<u64> = (0..MESSAGES)
        .filter(|n| !o.received.contains_key(n))
        .collect();
    let duplicates: u64 = o.received.values().map(|&c| u64::from(c) - 1).sum();
    eprintln!(
        "resend off: {} distinct of {MESSAGES}, {} missing, {duplicates} duplicates, {} reported \
         unconfirmed",
        o.received.len(),
        missing.len(),
        o.unconfirmed_reported
    );
    assert_eq!(o.discarded, 0);
    assert_eq!(duplicates, 0, "at-most-once: nothing twice");
    assert_eq!(o.resent, 0);
    assert!(
        missing.len() as u64 <= o.unconfirmed_reported,
        "{} missing but {} reported unconfirmed: {missing:?}",
        missing.len(),
        o.unconfirmed_reported
    );
    // The gap is one contiguous run (the tail written before the crash).
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        assert_eq!(last - first + 1, missing.len() as u64, "{missing:?}");
    }
    assert!(
        o.unconfirmed_reported > 0,
        "the crash caught publishes in flight"
    );
}
