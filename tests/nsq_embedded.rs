//! The NSQ embedded-io driver (courier_core::drivers::nsq) against a real
//! nsqd on free loopback ports, over std sockets through
//! embedded-io-adapters, with the small fixed buffers a device would use.
//! nsqd's own /stats is the witness of what it stored and what was FINed.

use std::net::TcpStream;
use std::time::Duration as StdDuration;

use courier_core::drivers::nsq::{blocking::NsqClient, Error, Incoming};
use courier_core::drivers::DriverOptions;
use courier_core::nsq::{ErrorCode, Event, Identify, MessageId};
use courier_tests::host_io::{HostClock, HostTcp};
use courier_tests::Nsqd;
use embedded_io_adapters::std::FromStd;

type Client = NsqClient<'static, HostTcp, HostClock, [u8; 1024], [u8; 512], 4>;

fn connect(nsqd: &Nsqd) -> Client {
    let stream = TcpStream::connect(nsqd.tcp_addr()).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(50)))
        .unwrap();
    let identify = Identify {
        feature_negotiation: true,
        client_id: Some("embedded-test"),
        ..Identify::default()
    };
    let mut client = NsqClient::new(
        HostTcp(FromStd::new(stream)),
        HostClock(std::time::Instant::now()),
        identify,
        DriverOptions::default(),
        [0; 1024],
        [0; 512],
    )
    .unwrap();
    client.connect().unwrap();
    client
}

fn stats(nsqd: &Nsqd, topic: &str) -> serde_json::Value {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// The next message (id, attempts, body), skipping heartbeats; panics after 10 s.
fn next_message(client: &mut Client) -> (MessageId, u16, Vec<u8>) {
    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    while std::time::Instant::now() < give_up {
        if let Some(Incoming::Message(m)) = client.next_event().unwrap() {
            return (m.id, m.attempts, m.body.to_vec());
        }
    }
    panic!("no message within 10 s");
}

/// True when a message arrives within `wait`.
fn message_within(client: &mut Client, wait: StdDuration) -> bool {
    let give_up = std::time::Instant::now() + wait;
    while std::time::Instant::now() < give_up {
        if let Some(Incoming::Message(_)) = client.next_event().unwrap() {
            return true;
        }
    }
    false
}

#[test]
fn publishes_are_confirmed_and_counted_by_nsqd() {
    let nsqd = Nsqd::start_with(&["--max-msg-size=200"]);
    let mut client = connect(&nsqd);
    for i in 0..50 {
        client
            .publish("embedded_pub", format!("reading-{i}").as_bytes())
            .unwrap();
    }
    let topic = stats(&nsqd, "embedded_pub");
    assert_eq!(topic["message_count"], 50, "{topic}");

    // A bad topic name is refused by the core before it is sent (the
    // session stays usable) ...
    let e = client.publish("bad topic!", b"x").unwrap_err();
    assert!(matches!(e, Error::Nsq(_)) && !e.is_fatal(), "{e:?}");
    // ... and a body over nsqd's --max-msg-size by nsqd itself
    // (E_BAD_MESSAGE: fatal, nsqd hangs up).
    let e = client.publish("embedded_pub", &[b'x'; 300]).unwrap_err();
    match &e {
        Error::Rejected(s) => assert_eq!(s.code, ErrorCode::BadMessage, "{s}"),
        other => panic!("expected E_BAD_MESSAGE, got {other:?}"),
    }
    assert!(e.is_fatal());
    assert!(matches!(
        client.publish("embedded_pub", b"x"),
        Err(Error::Disconnected)
    ));
    assert_eq!(stats(&nsqd, "embedded_pub")["message_count"], 50);
}

#[test]
fn consumer_respects_rdy_fins_and_requeues() {
    let nsqd = Nsqd::start();
    for i in 0..8 {
        nsqd.http_publish("embedded_sub", format!("m{i}").as_bytes());
    }
    let mut client = connect(&nsqd);
    client.subscribe("embedded_sub", "device").unwrap();
    client.ready(3).unwrap();

    // RDY 3: three messages in flight, no fourth until one is FINed.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next_message(&mut client));
    }
    assert!(
        !message_within(&mut client, StdDuration::from_millis(500)),
        "a 4th message arrived with RDY 3 and 3 in flight"
    );

    // REQ the first (delay 0): nsqd delivers it again, attempts 2.
    let (requeued, attempts, body) = held.remove(0);
    assert_eq!(attempts, 1);
    client.req(&requeued, 0).unwrap();
    for (id, _, _) in &held {
        client.fin(id).unwrap();
    }
    let mut bodies: Vec<Vec<u8>> = held.into_iter().map(|(_, _, b)| b).collect();
    let mut redelivered = false;
    while bodies.len() < 8 {
        let (id, attempts, b) = next_message(&mut client);
        if b == body {
            assert_eq!(attempts, 2, "the REQed message comes back as attempt 2");
            redelivered = true;
        }
        client.fin(&id).unwrap();
        bodies.push(b);
    }
    assert!(redelivered);
    bodies.sort();
    let want: Vec<Vec<u8>> = (0..8).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(bodies, want, "every message once after FIN");

    client.close().unwrap();
    let topic = stats(&nsqd, "embedded_sub");
    let channel = &topic["channels"][0];
    assert_eq!(channel["channel_name"], "device");
    assert_eq!(channel["requeue_count"], 1, "{channel}");
    assert_eq!(channel["depth"], 0, "{channel}");
    assert_eq!(channel["in_flight_count"], 0, "{channel}");
}

#[test]
fn heartbeats_are_answered_and_reconnect_makes_a_new_session() {
    let nsqd = Nsqd::start_with(&["--max-heartbeat-interval=60s"]);
    let stream = TcpStream::connect(nsqd.tcp_addr()).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(50)))
        .unwrap();
    let identify = Identify {
        feature_negotiation: true,
        heartbeat_interval: Some(1000),
        ..Identify::default()
    };
    let mut client: Client = NsqClient::new(
        HostTcp(FromStd::new(stream)),
        HostClock(std::time::Instant::now()),
        identify,
        DriverOptions::default(),
        [0; 1024],
        [0; 512],
    )
    .unwrap();
    client.connect().unwrap();
    // 3.5 heartbeat intervals: nsqd drops a client after two unanswered.
    let mut heartbeats = 0;
    let until = std::time::Instant::now() + StdDuration::from_millis(3500);
    while std::time::Instant::now() < until {
        if let Some(Incoming::Event(Event::Heartbeat)) = client.next_event().unwrap() {
            heartbeats += 1;
        }
    }
    assert!(heartbeats >= 2, "{heartbeats} heartbeats");
    client.publish("embedded_hb", b"still here").unwrap();

    // A new connection over the same buffers.
    let stream = TcpStream::connect(nsqd.tcp_addr()).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(50)))
        .unwrap();
    client.reconnect(HostTcp(FromStd::new(stream))).unwrap();
    client.publish("embedded_hb", b"again").unwrap();
    assert_eq!(stats(&nsqd, "embedded_hb")["message_count"], 2);
}

#[test]
fn a_frame_larger_than_the_receive_buffer_is_a_typed_error() {
    let nsqd = Nsqd::start();
    nsqd.http_publish("embedded_big", &vec![b'x'; 4000]);
    let mut client = connect(&nsqd);
    client.subscribe("embedded_big", "device").unwrap();
    client.ready(1).unwrap();
    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    let err = loop {
        assert!(std::time::Instant::now() < give_up, "no error within 10 s");
        match client.next_event() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let text = err.to_string();
    assert!(text.contains("1024"), "{text}");
    assert!(err.is_fatal());
    assert!(matches!(client.next_event(), Err(Error::Disconnected)));
}

#[test]
fn deflate_without_an_allocator_round_trips_through_nsqd() {
    use courier_core::drivers::nsq::deflate::DeflateState;
    let nsqd = Nsqd::start();
    // Compressible bodies, so nsqd's DEFLATE really back-references.
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            format!(
                "{{\"dev\":\"dev1\",\"seq\":{i},\"pad\":\"{}\"}}",
                "ab".repeat(100)
            )
            .into_bytes()
        })
        .collect();
    let state: &'static mut DeflateState = Box::leak(Box::new(DeflateState::new()));
    let stream = TcpStream::connect(nsqd.tcp_addr()).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(50)))
        .unwrap();
    let identify = Identify {
        feature_negotiation: true,
        deflate: true,
        deflate_level: Some(6),
        ..Identify::default()
    };
    let mut client: Client = NsqClient::new(
        HostTcp(FromStd::new(stream)),
        HostClock(std::time::Instant::now()),
        identify,
        DriverOptions::default(),
        [0; 1024],
        [0; 512],
    )
    .unwrap()
    .with_deflate(state);
    client.connect().unwrap();
    assert_eq!(
        client.session().unwrap().negotiated().map(|n| n.deflate),
        Some(true),
        "nsqd agreed to DEFLATE"
    );
    // Client -> nsqd: stored blocks.
    for body in &bodies {
        client.publish("embedded_deflate", body).unwrap();
    }
    assert_eq!(stats(&nsqd, "embedded_deflate")["message_count"], 20);
    // nsqd -> client: inflated through the 32 KiB window.
    client.subscribe("embedded_deflate", "device").unwrap();
    client.ready(20).unwrap();
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        let (id, _, body) = next_message(&mut client);
        client.fin(&id).unwrap();
        got.push(body);
    }
    assert_eq!(got, bodies, "byte-exact, in order");
    client.close().unwrap();
    let channel = &stats(&nsqd, "embedded_deflate")["channels"][0];
    assert_eq!(channel["in_flight_count"], 0, "{channel}");
    assert_eq!(channel["depth"], 0, "{channel}");
}
