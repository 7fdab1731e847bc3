//! NSQ through a fault proxy (toxiproxy) between courier's consumer and a
//! real nsqd: latency with jitter, a bandwidth limit, a connection cut
//! mid-frame, a reset, a half-open connection (heartbeat bound), a slow
//! close and kill -9 loops under sustained load.
//!
//! Messages are fed through nsqd's HTTP API (independent of courier); the
//! consumer FINs each one. NSQ with FIN/REQ is at-least-once, so for every
//! scenario: every message nsqd accepted is handled at least once, and
//! nsqd ends with nothing queued or in flight. Duplicates (redeliveries
//! after a cut) are allowed and counted. Each test prints its counts.

mod nsq_support;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::nsq::{Callbacks, Config, ConnInfo, Consumer, Error, Producer, ServerNodes};
use courier_tests::toxiproxy::{Proxy, Stream, Toxiproxy};
use courier_tests::Nsqd;
use nsq_support::{topic, wait_until, Behaviour, Recorder};

/// Records when connections break, and every message body received.
#[derive(Default)]
struct Breaks {
    at: RefCell<Vec<Instant>>,
    connects: Cell<u32>,
    received: RefCell<std::collections::HashSet<Vec<u8>>>,
}

impl Callbacks for Breaks {
    fn connect(&self, _: &ConnInfo) {
        self.connects.set(self.connects.get() + 1);
    }
    fn broken(&self, _: &ConnInfo, _: &Error) {
        self.at.borrow_mut().push(Instant::now());
    }
    fn message_received(&self, _: &ConnInfo, message: &courier_core::nsq::Message<'_>) {
        self.received.borrow_mut().insert(message.body.to_vec());
    }
}

struct Rig {
    nsqd: Nsqd,
    _toxiproxy: Toxiproxy,
    proxy: Proxy,
    topic: String,
}

fn rig(nsqd_args: &[&str]) -> Rig {
    let nsqd = nsq_support::nsqd(nsqd_args);
    let toxiproxy = Toxiproxy::start();
    let proxy = toxiproxy.proxy("nsqd", &nsqd.tcp_addr());
    Rig {
        nsqd,
        _toxiproxy: toxiproxy,
        proxy,
        topic: topic("faults"),
    }
}

fn config(heartbeat: Duration) -> Config {
    Config {
        heartbeat_interval: Some(heartbeat),
        // A message whose FIN was cut off comes back after this.
        msg_timeout: Some(Duration::from_secs(2)),
        reconnect_delay: Duration::from_millis(50),
        ..Config::default()
    }
}

/// `POST /mpub` of `bodies` (newline-separated); true when nsqd said OK.
fn mpub(port: u16, topic: &str, bodies: &[String]) -> bool {
    let body = bodies.join("\n");
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let head = format!(
        "POST /mpub?topic={topic} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.contains(" 200 ") && reply.ends_with("OK")
}

fn bodies(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("m{i:08}")).collect()
}

fn channel(nsqd: &Nsqd, topic: &str) -> (u64, u64) {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}&channel=ch"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let v = v.get("data").cloned().unwrap_or(v);
    let ch = v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .and_then(|t| t["channels"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["channel_name"] == "ch"))
        .cloned()
        .unwrap_or_default();
    (
        ch["depth"].as_u64().unwrap_or(u64::MAX),
        ch["in_flight_count"].as_u64().unwrap_or(u64::MAX),
    )
}

async fn start_consumer(rig: &Rig, config: Config, breaks: Rc<Breaks>) -> Consumer<Recorder> {
    Consumer::builder(
        [(rig.topic.as_str(), "ch")],
        ServerNodes::new([rig.proxy.addr()]),
        50,
        Recorder::new(Behaviour {
            count_only: true,
            ..Behaviour::default()
        }),
    )
    .config(config)
    .callbacks(breaks)
    .start()
    .await
    .expect("consumer starts through the proxy")
}

/// Every accepted body handled at least once and nsqd empty; returns
/// (accepted, handled, duplicates).
async fn check_all_handled(
    name: &str,
    rig: &Rig,
    consumer: &Consumer<Recorder>,
    accepted: &[String],
    breaks: &Breaks,
) -> (usize, u64, u64) {
    check_handled(name, rig, consumer, accepted, breaks, 0).await
}

/// As [`check_all_handled`], allowing `server_lost` messages that nsqd
/// itself dropped (it keeps in-flight messages only in memory: a kill -9
/// loses them). Those must never have reached courier: a message courier
/// received is always handled.
async fn check_handled(
    name: &str,
    rig: &Rig,
    consumer: &Consumer<Recorder>,
    accepted: &[String],
    breaks: &Breaks,
    server_lost: usize,
) -> (usize, u64, u64) {
    let rec = consumer.handler();
    let wait = if server_lost > 0 { 8 } else { 30 };
    let all = wait_until(Duration::from_secs(wait), || {
        let counts = rec.counts.borrow();
        accepted
            .iter()
            .all(|b| counts.contains_key(&("ch".to_string(), b.as_bytes().to_vec())))
    })
    .await;
    let counts = rec.counts.borrow().clone();
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|b| !counts.contains_key(&("ch".to_string(), b.as_bytes().to_vec())))
        .collect();
    let handled = rec.handled.get();
    let duplicates = counts.values().map(|&c| u64::from(c) - 1).sum::<u64>();
    eprintln!(
        "{name}: accepted by nsqd {}, handled {handled} ({} distinct, {duplicates} redeliveries), missing {}, connection breaks {}, connects {}",
        accepted.len(),
        counts.len(),
        missing.len(),
        breaks.at.borrow().len(),
        breaks.connects.get()
    );
    let lost_by_courier: Vec<&&String> = {
        let received = breaks.received.borrow();
        missing
            .iter()
            .filter(|b| received.contains(b.as_bytes()))
            .collect()
    };
    assert!(
        lost_by_courier.is_empty(),
        "{name}: {} messages reached courier but were never handled, e.g. {:?}",
        lost_by_courier.len(),
        lost_by_courier.first()
    );
    if server_lost == 0 {
        assert!(
            all && missing.is_empty(),
            "{name}: lost {} messages, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    } else {
        eprintln!(
            "{name}: {} messages nsqd dropped itself (never sent to courier)",
            missing.len()
        );
        assert!(
            missing.len() <= server_lost,
            "{name}: {} missing, more than nsqd can drop ({server_lost})",
            missing.len()
        );
    }
    assert!(
        wait_until(Duration::from_secs(15), || channel(&rig.nsqd, &rig.topic)
            == (0, 0))
        .await,
        "{name}: nsqd still holds messages: (depth, in_flight) = {:?}",
        channel(&rig.nsqd, &rig.topic)
    );
    (accepted.len(), handled, duplicates)
}

fn feed(rig: &Rig, from: usize, n: usize) -> Vec<String> {
    let mut accepted = Vec::new();
    for chunk in bodies(from, n).chunks(100) {
        assert!(
            mpub(rig.nsqd.http_port, &rig.topic, chunk),
            "nsqd refused /mpub"
        );
        accepted.extend_from_slice(chunk);
    }
    accepted
}

#[test]
fn latency_and_jitter_lose_nothing() {
    let rig = rig(&[]);
    for stream in [Stream::Upstream, Stream::Downstream] {
        rig.proxy.add_toxic(
            &format!("lat-{stream:?}"),
            "latency",
            stream,
            r#"{"latency":40,"jitter":30}"#,
        );
    }
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(5)), breaks.clone()).await;
        let accepted = feed(&rig, 0, 2000);
        check_all_handled("latency", &rig, &consumer, &accepted, &breaks).await;
        assert!(
            breaks.at.borrow().is_empty(),
            "latency alone broke the connection"
        );
        consumer.stop().await;
    });
}

#[test]
fn bandwidth_limit_loses_nothing() {
    let rig = rig(&[]);
    for stream in [Stream::Upstream, Stream::Downstream] {
        rig.proxy.add_toxic(
            &format!("bw-{stream:?}"),
            "bandwidth",
            stream,
            r#"{"rate":32}"#,
        );
    }
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(5)), breaks.clone()).await;
        let accepted = feed(&rig, 0, 1500);
        check_all_handled("bandwidth", &rig, &consumer, &accepted, &breaks).await;
        consumer.stop().await;
    });
}

/// The proxy closes the connection after a byte count inside a message
/// frame; the consumer reconnects and nsqd redelivers what was in flight.
#[test]
fn connection_cut_mid_frame_loses_nothing() {
    let rig = rig(&[]);
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(5)), breaks.clone()).await;
        // IDENTIFY answer and SUB OK are a few hundred bytes; frames of
        // these messages are 43 bytes: 20_017 falls inside one.
        rig.proxy.add_toxic(
            "cut",
            "limit_data",
            Stream::Downstream,
            r#"{"bytes":20017}"#,
        );
        let accepted = feed(&rig, 0, 2000);
        assert!(
            wait_until(Duration::from_secs(10), || !breaks.at.borrow().is_empty()).await,
            "the cut was not noticed"
        );
        rig.proxy.remove_toxic("cut");
        check_all_handled("cut mid-frame", &rig, &consumer, &accepted, &breaks).await;
        consumer.stop().await;
    });
}

#[test]
fn reset_peer_loses_nothing() {
    let rig = rig(&[]);
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(5)), breaks.clone()).await;
        rig.proxy.add_toxic(
            "rst",
            "reset_peer",
            Stream::Downstream,
            r#"{"timeout":300}"#,
        );
        let accepted = feed(&rig, 0, 1000);
        assert!(
            wait_until(Duration::from_secs(10), || !breaks.at.borrow().is_empty()).await,
            "the reset was not noticed"
        );
        rig.proxy.remove_toxic("rst");
        check_all_handled("reset_peer", &rig, &consumer, &accepted, &breaks).await;
        consumer.stop().await;
    });
}

/// nsqd goes silent without FIN: with a 1 s heartbeat the consumer must
/// notice within two heartbeat intervals (plus one for phase), reconnect
/// and lose nothing.
#[test]
fn half_open_connection_is_detected_within_the_heartbeat_bound() {
    let rig = rig(&[]);
    let heartbeat = Duration::from_secs(1);
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(heartbeat), breaks.clone()).await;
        let mut accepted = feed(&rig, 0, 300);
        assert!(
            wait_until(Duration::from_secs(10), || consumer.handler().handled.get()
                >= 300)
            .await
        );
        for stream in [Stream::Upstream, Stream::Downstream] {
            rig.proxy.add_toxic(
                &format!("silent-{stream:?}"),
                "timeout",
                stream,
                r#"{"timeout":0}"#,
            );
        }
        let silent_at = Instant::now();
        accepted.extend(feed(&rig, 300, 300));
        let bound = heartbeat * 3 + Duration::from_millis(500);
        assert!(
            wait_until(bound + Duration::from_secs(5), || !breaks
                .at
                .borrow()
                .is_empty())
            .await,
            "half-open connection never detected"
        );
        let detected = breaks.at.borrow()[0] - silent_at;
        eprintln!("nsq half-open detected after {detected:?} (bound {bound:?})");
        assert!(
            detected <= bound,
            "detected after {detected:?}, bound {bound:?}"
        );
        for stream in [Stream::Upstream, Stream::Downstream] {
            rig.proxy.remove_toxic(&format!("silent-{stream:?}"));
        }
        check_all_handled("half-open", &rig, &consumer, &accepted, &breaks).await;
        consumer.stop().await;
    });
}

#[test]
fn slow_close_loses_nothing() {
    let rig = rig(&[]);
    rig.proxy.add_toxic(
        "slow",
        "slow_close",
        Stream::Downstream,
        r#"{"delay":1500}"#,
    );
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(1)), breaks.clone()).await;
        let mut accepted = feed(&rig, 0, 500);
        rig.proxy.set_enabled(false);
        accepted.extend(feed(&rig, 500, 500));
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.proxy.set_enabled(true);
        check_all_handled("slow close", &rig, &consumer, &accepted, &breaks).await;
        consumer.stop().await;
    });
}

/// nsqd killed (-9) and restarted three times while a loader publishes
/// through HTTP and the consumer reads through the proxy. nsqd keeps
/// queued messages on disk (`--mem-queue-size=0`, synced per message), but
/// its in-flight messages live only in its memory: a kill -9 drops those
/// (nsqd's durability, not the client's). So: every message that reached
/// courier is handled, and the rest is at most what nsqd can have had in
/// flight.
#[test]
fn nsqd_kill_loop_under_load_handles_everything_courier_received() {
    let mut rig = rig(&["--mem-queue-size=0", "--sync-every=1"]);
    let http_port = rig.nsqd.http_port;
    let topic_name = rig.topic.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let consumer = start_consumer(&rig, config(Duration::from_secs(1)), breaks.clone()).await;
        let loader = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut next = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch = bodies(next, 20);
                    next += 20;
                    if mpub(http_port, &topic_name, &batch) {
                        accepted.extend(batch);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                accepted
            })
        };
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            rig.nsqd.kill();
            tokio::time::sleep(Duration::from_millis(100)).await;
            rig.nsqd.restart();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let accepted = loader.join().unwrap();
        // nsqd fsyncs every message here, so the load is modest.
        assert!(accepted.len() > 100, "too little load: {}", accepted.len());
        // nsqd loses what it had in flight at each kill: at most
        // max_in_flight (50) plus the one its pump holds, per kill.
        check_handled(
            "nsqd kill -9 loop",
            &rig,
            &consumer,
            &accepted,
            &breaks,
            3 * 51,
        )
        .await;
        assert!(
            breaks.at.borrow().len() >= 3,
            "3 kills, {} breaks",
            breaks.at.borrow().len()
        );
        consumer.stop().await;
    });
}

/// The NSQ producer through nsqd restarts: every publish either returns Ok
/// (nsqd answered OK) or an error, and every Ok'd message is delivered
/// (at-least-once: a resend after a reconnect may duplicate).
///
/// The consumer starts after the kills: nsqd keeps messages it has sent to
/// a consumer (in flight) only in memory, so a kill -9 with a consumer
/// attached loses those on nsqd's side (see the kill-loop scenario); with
/// `--mem-queue-size=0 --sync-every=1` everything nsqd said OK to is on disk.
#[test]
fn producer_survives_nsqd_restarts_and_everything_confirmed_arrives() {
    let mut rig = rig(&["--mem-queue-size=0", "--sync-every=1"]);
    courier::run(async {
        let breaks = Rc::new(Breaks::default());
        let producer = Producer::new(
            [rig.proxy.addr()],
            Config {
                reconnect_delay: Duration::from_millis(50),
                ..Config::default()
            },
        )
        .unwrap();
        let mut accepted = Vec::new();
        let mut failed = 0;
        let started = Instant::now();
        let mut kills = 0;
        for (i, body) in bodies(0, 20_000).into_iter().enumerate() {
            match producer.publish(&rig.topic, body.as_bytes()).await {
                Ok(()) => accepted.push(body),
                Err(_) => failed += 1,
            }
            if kills < 3 && started.elapsed() > Duration::from_millis(700 * (kills + 1)) {
                rig.nsqd.kill();
                rig.nsqd.restart();
                kills += 1;
            }
            if i > 1000 && kills == 3 && accepted.len() > 5000 {
                break;
            }
        }
        eprintln!("producer: {} confirmed, {failed} failed", accepted.len());
        let consumer = start_consumer(&rig, config(Duration::from_secs(1)), breaks.clone()).await;
        // The issue's guarantee: the producer reconnects and resumes.
        assert!(
            failed <= 3,
            "{failed} publishes failed across 3 restarts: no reconnect"
        );
        check_all_handled("producer restarts", &rig, &consumer, &accepted, &breaks).await;
        producer.stop().await;
        consumer.stop().await;
    });
}
