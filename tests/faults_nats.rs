//! Core NATS through a fault proxy (toxiproxy) between courier and a real
//! nats-server: latency with jitter, a bandwidth limit, a connection cut
//! mid-frame, a reset, a half-open connection, a slow close and kill -9
//! loops under sustained load.
//!
//! The publisher connects through the proxy; an independent subscriber
//! connects to the server directly and records every sequence number. For
//! each scenario the counts must match core NATS's guarantee as courier
//! states it (at-most-once, with the unconfirmed tail reported):
//! - no duplicates, and order kept;
//! - whatever is missing fits in the unconfirmed bytes (and discarded
//!   publishes) that `Event::Disconnected` reported.
//!
//! Each test prints its counts (`cargo test -p courier-tests --test
//! faults_nats -- --nocapture`).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::nats::{Client, ConnectOptions, Event};
use courier_tests::toxiproxy::{Proxy, Stream, Toxiproxy};
use courier_tests::NatsServer;

/// Payload size; with the subject below every PUB is WIRE bytes on the wire.
const PAYLOAD: usize = 40;
const SUBJECT: &str = "faults.seq";
/// `PUB faults.seq 40\r\n` + payload + `\r\n`.
const WIRE: u64 = (b"PUB faults.seq 40\r\n".len() + PAYLOAD + 2) as u64;

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("{seq:020}").into_bytes();
    p.resize(PAYLOAD, b'.');
    p
}

fn seq_of(payload: &[u8]) -> u64 {
    std::str::from_utf8(&payload[..20])
        .unwrap()
        .parse()
        .unwrap()
}

struct Rig {
    server: NatsServer,
    _toxiproxy: Toxiproxy,
    proxy: Proxy,
}

fn rig() -> Rig {
    let server = NatsServer::start();
    let toxiproxy = Toxiproxy::start();
    let proxy = toxiproxy.proxy("nats", &format!("127.0.0.1:{}", server.port()));
    Rig {
        server,
        _toxiproxy: toxiproxy,
        proxy,
    }
}

/// What the publisher side saw.
#[derive(Default)]
struct Publisher {
    events: RefCell<Vec<Event>>,
    /// Publishes that returned Ok.
    published: Cell<u64>,
    /// Highest sequence number a successful flush confirmed (+1).
    confirmed: Cell<u64>,
}

impl Publisher {
    fn disconnects(&self) -> usize {
        self.events
            .borrow()
            .iter()
            .filter(|e| matches!(e, Event::Disconnected { .. }))
            .count()
    }

    fn reconnects(&self) -> usize {
        self.events
            .borrow()
            .iter()
            .filter(|e| matches!(e, Event::Reconnected { .. }))
            .count()
    }

    /// Bytes reported as possibly lost: unconfirmed bytes plus discarded
    /// publishes, over every disconnect.
    fn reported_loss_bytes(&self) -> u64 {
        self.events
            .borrow()
            .iter()
            .map(|e| match e {
                Event::Disconnected {
                    unconfirmed_bytes,
                    discarded_publishes,
                    ..
                } => unconfirmed_bytes + *discarded_publishes as u64 * WIRE,
                _ => 0,
            })
            .sum()
    }
}

async fn connect_publisher(proxy: &Proxy, ping: Duration) -> (Client, Rc<Publisher>) {
    let state = Rc::new(Publisher::default());
    let events = state.clone();
    let client = ConnectOptions::new()
        .name("faults-publisher")
        .ping_interval(ping, 2)
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(250))
        .max_reconnects(None)
        .flush_timeout(Duration::from_secs(5))
        .event_callback(move |e| events.events.borrow_mut().push(e.clone()))
        .connect([format!("nats://{}", proxy.addr())])
        .await
        .expect("publisher connects through the proxy");
    (client, state)
}

/// A direct subscriber recording sequence numbers; returns the client (its
/// events are recorded too, to wait for its reconnects).
async fn connect_subscriber(
    server: &NatsServer,
) -> (Client, Rc<RefCell<Vec<u64>>>, Rc<RefCell<Vec<Event>>>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let ev = events.clone();
    let client = ConnectOptions::new()
        .name("faults-subscriber")
        .reconnect_delay(Duration::from_millis(10), Duration::from_millis(50))
        .max_reconnects(None)
        .event_callback(move |e| ev.borrow_mut().push(e.clone()))
        .connect([server.url()])
        .await
        .expect("subscriber connects");
    let mut sub = client.subscribe(SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let into = seen.clone();
    courier::spawn(async move {
        while let Some(m) = sub.next().await {
            into.borrow_mut().push(seq_of(&m.payload));
        }
    });
    (client, seen, events)
}

/// Publishes `count` messages from the publisher's next sequence number,
/// flushing every `flush_every` (recording what each successful flush
/// confirmed), pausing `pause` every 50 messages.
async fn publish(client: &Client, p: &Publisher, count: u64, flush_every: u64, pause: Duration) {
    for _ in 0..count {
        let seq = p.published.get();
        if client.publish(SUBJECT, payload(seq)).await.is_ok() {
            p.published.set(seq + 1);
        }
        let n = p.published.get();
        if n.is_multiple_of(flush_every) && client.flush().await.is_ok() {
            p.confirmed.set(p.confirmed.get().max(n));
        }
        if n.is_multiple_of(50) && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Final flush, wait for the subscriber to go quiet, then check the
/// guarantee. Returns (published, received, missing).
async fn settle_and_check(
    name: &str,
    client: &Client,
    p: &Publisher,
    seen: &RefCell<Vec<u64>>,
) -> (u64, u64, u64) {
    let mut flushed = false;
    for _ in 0..20 {
        if client.flush().await.is_ok() {
            flushed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(flushed, "{name}: the final flush never succeeded");
    p.confirmed.set(p.published.get());
    // Everything flushed was processed by the server; delivery to the
    // direct subscriber follows within moments.
    let published = p.published.get();
    let mut last = usize::MAX;
    for _ in 0..100 {
        let now = seen.borrow().len();
        if now as u64 >= published || now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.borrow().clone();
    check(name, p, &seen)
}

fn check(name: &str, p: &Publisher, seen: &[u64]) -> (u64, u64, u64) {
    let published = p.published.get();
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "{name}: duplicates delivered");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "{name}: order not kept"
    );
    assert!(
        seen.iter().all(|&s| s < published),
        "{name}: a message that was never published arrived"
    );
    let missing: Vec<u64> = (0..published).filter(|s| !unique.contains(s)).collect();
    let reported = p.reported_loss_bytes();
    eprintln!(
        "{name}: published {published}, received {}, missing {}, disconnects {}, reconnects {}, reported unconfirmed+discarded {reported} B ({} messages' worth)",
        seen.len(),
        missing.len(),
        p.disconnects(),
        p.reconnects(),
        reported / WIRE
    );
    if let Some(first) = missing.first() {
        assert!(
            p.disconnects() > 0,
            "{name}: {missing:?} lost without a disconnect"
        );
        assert!(
            missing.len() as u64 * WIRE <= reported,
            "{name}: {} messages ({} B) missing, only {reported} B reported unconfirmed or discarded (first missing {first})",
            missing.len(),
            missing.len() as u64 * WIRE
        );
    }
    (published, seen.len() as u64, missing.len() as u64)
}

#[test]
fn latency_and_jitter_lose_nothing() {
    let rig = rig();
    for stream in [Stream::Upstream, Stream::Downstream] {
        rig.proxy.add_toxic(
            &format!("lat-{stream:?}"),
            "latency",
            stream,
            r#"{"latency":40,"jitter":30}"#,
        );
    }
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(2)).await;
        publish(&client, &p, 3000, 500, Duration::ZERO).await;
        let (published, received, missing) = settle_and_check("latency", &client, &p, &seen).await;
        assert_eq!((received, missing), (published, 0));
        assert_eq!(
            p.disconnects(),
            0,
            "latency alone must not break the connection"
        );
    });
}

#[test]
fn bandwidth_limit_loses_nothing() {
    let rig = rig();
    // 64 KB/s each way: 3000 publishes of 61 B take about 3 s.
    for stream in [Stream::Upstream, Stream::Downstream] {
        rig.proxy.add_toxic(
            &format!("bw-{stream:?}"),
            "bandwidth",
            stream,
            r#"{"rate":64}"#,
        );
    }
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(2)).await;
        publish(&client, &p, 3000, 1000, Duration::ZERO).await;
        let (published, received, missing) =
            settle_and_check("bandwidth", &client, &p, &seen).await;
        assert_eq!((received, missing), (published, 0));
    });
}

/// limit_data closes the connection after a byte count that falls inside a
/// PUB frame; the server discards the partial command.
#[test]
fn connection_cut_mid_frame_loses_only_reported_bytes() {
    let rig = rig();
    // Handshake (CONNECT+PING, ~180 B) + 300.5 frames.
    let cut = 180 + 300 * WIRE + WIRE / 2;
    rig.proxy.add_toxic(
        "cut",
        "limit_data",
        Stream::Upstream,
        &format!(r#"{{"bytes":{cut}}}"#),
    );
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(2)).await;
        publish(&client, &p, 1000, 100_000, Duration::from_millis(1)).await;
        assert!(
            wait_until(Duration::from_secs(10), || p.disconnects() > 0).await,
            "the cut was not noticed"
        );
        rig.proxy.remove_toxic("cut");
        publish(&client, &p, 1000, 100_000, Duration::from_millis(1)).await;
        let (published, received, _) = settle_and_check("cut mid-frame", &client, &p, &seen).await;
        assert!(p.reconnects() >= 1, "no reconnect after the cut");
        assert!(
            received >= published - 1000,
            "more lost than the first connection carried"
        );
    });
}

#[test]
fn reset_peer_loses_only_reported_bytes() {
    let rig = rig();
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(2)).await;
        // The RST comes 400 ms into the stream (the toxic would refuse a
        // handshake in flight too: added once connected).
        rig.proxy
            .add_toxic("rst", "reset_peer", Stream::Upstream, r#"{"timeout":400}"#);
        publish(&client, &p, 2000, 100_000, Duration::from_millis(10)).await;
        assert!(
            wait_until(Duration::from_secs(10), || p.disconnects() > 0).await,
            "the reset was not noticed"
        );
        rig.proxy.remove_toxic("rst");
        publish(&client, &p, 1000, 250, Duration::from_millis(1)).await;
        settle_and_check("reset_peer", &client, &p, &seen).await;
        assert!(p.reconnects() >= 1);
    });
}

/// The peer goes silent without FIN: only the keepalive can notice. With
/// PINGs every 300 ms and 2 allowed outstanding the client must declare
/// the connection stale within (2 + 1) intervals plus one for phase.
#[test]
fn half_open_connection_is_detected_within_the_ping_bound() {
    let rig = rig();
    let ping = Duration::from_millis(300);
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, ping).await;
        publish(&client, &p, 200, 100, Duration::ZERO).await;
        client.flush().await.unwrap();
        for stream in [Stream::Upstream, Stream::Downstream] {
            rig.proxy.add_toxic(
                &format!("silent-{stream:?}"),
                "timeout",
                stream,
                r#"{"timeout":0}"#,
            );
        }
        let silent_at = Instant::now();
        // Published into the void: these must be reported, not lost silently.
        publish(&client, &p, 100, 100_000, Duration::ZERO).await;
        let bound = ping * 4 + Duration::from_millis(500);
        assert!(
            wait_until(bound + Duration::from_secs(5), || p.disconnects() > 0).await,
            "half-open connection never detected"
        );
        let detected = silent_at.elapsed();
        eprintln!("half-open detected after {detected:?} (bound {bound:?})");
        assert!(
            detected <= bound,
            "detected after {detected:?}, bound {bound:?}"
        );
        for stream in [Stream::Upstream, Stream::Downstream] {
            rig.proxy.remove_toxic(&format!("silent-{stream:?}"));
        }
        assert!(
            wait_until(Duration::from_secs(10), || p.reconnects() > 0).await,
            "no reconnect after the half-open connection"
        );
        publish(&client, &p, 200, 100, Duration::ZERO).await;
        settle_and_check("half-open", &client, &p, &seen).await;
    });
}

/// The proxy closes the client's side 1.5 s after the upstream is gone
/// (slow close): publishes written meanwhile go nowhere and must be reported.
#[test]
fn slow_close_loses_only_reported_bytes() {
    let rig = rig();
    rig.proxy.add_toxic(
        "slow",
        "slow_close",
        Stream::Downstream,
        r#"{"delay":1500}"#,
    );
    courier::run(async {
        let (_sub, seen, _) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(5)).await;
        publish(&client, &p, 500, 100, Duration::ZERO).await;
        rig.proxy.set_enabled(false);
        publish(&client, &p, 500, 100_000, Duration::from_millis(5)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.proxy.set_enabled(true);
        assert!(
            wait_until(Duration::from_secs(10), || p.reconnects() > 0).await,
            "no reconnect after the slow close"
        );
        publish(&client, &p, 500, 100, Duration::ZERO).await;
        settle_and_check("slow close", &client, &p, &seen).await;
    });
}

/// nats-server killed (-9) three times while the publisher streams through
/// the proxy. The proxy stays closed until the direct subscriber has
/// resubscribed, so the subscriber sees everything the server accepted.
#[test]
fn server_kill_loop_under_load_loses_only_reported_bytes() {
    let mut rig = rig();
    courier::run(async {
        let (_sub, seen, sub_events) = connect_subscriber(&rig.server).await;
        let (client, p) = connect_publisher(&rig.proxy, Duration::from_secs(1)).await;
        let client = Rc::new(client);
        let stop = Rc::new(Cell::new(false));
        let load = {
            let (client, p, stop) = (client.clone(), p.clone(), stop.clone());
            courier::spawn(async move {
                while !stop.get() {
                    publish(&client, &p, 100, 500, Duration::from_millis(2)).await;
                }
            })
        };
        for round in 1..=3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let reconnects = sub_events
                .borrow()
                .iter()
                .filter(|e| matches!(e, Event::Reconnected { .. }))
                .count();
            rig.server.kill();
            rig.proxy.set_enabled(false);
            rig.server.restart();
            assert!(
                wait_until(Duration::from_secs(10), || sub_events
                    .borrow()
                    .iter()
                    .filter(|e| matches!(e, Event::Reconnected { .. }))
                    .count()
                    > reconnects)
                .await,
                "round {round}: the subscriber did not reconnect"
            );
            // Its SUB is processed once a flush round-trips.
            _sub.flush().await.unwrap();
            rig.proxy.set_enabled(true);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.set(true);
        load.await.unwrap();
        let (published, _, missing) = settle_and_check("kill -9 loop", &client, &p, &seen).await;
        assert!(
            p.disconnects() >= 3,
            "3 kills, {} disconnects",
            p.disconnects()
        );
        assert!(published > 1000, "too little load: {published}");
        let _ = missing;
    });
}
