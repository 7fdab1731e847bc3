//! The embedded-io drivers (courier_core::drivers) against a real
//! nats-server on a free loopback port, over std and tokio sockets through
//! embedded-io-adapters, with the small fixed buffers a device would use.
//! A scripted peer covers what a real server will not do (garbage, an
//! oversized MSG, a stall mid-frame).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration as StdDuration;

use courier_core::drivers::{asynch, blocking, DriverOptions, Error, NatsEvent as Event, Wait};
use courier_core::nats::{self, ConnectOptions, HeaderWriter};
use courier_core::time::Duration;
use courier_tests::host_io::{HostClock, HostIoError, HostTcp};
use courier_tests::{nats_info_line, NatsServer, PeerConn, ScriptedPeer};
use embedded_io_adapters::std::FromStd;
use embedded_io_adapters::tokio_1::FromTokio;

// ---- host stand-ins for what a device's TCP stack and timer provide ----

/// 4 KiB buffers, 8 subscriptions, 4 outstanding requests: device sizes.
type Client = blocking::NatsClient<HostTcp, HostClock, [u8; 4096], [u8; 4096], 8, 4>;

/// Options with a client name and a unique request inbox.
fn options(name: &str) -> ConnectOptions {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut options = ConnectOptions::default();
    options.name.push_str(name).unwrap();
    let unique = format!(
        "_INBOX.emb{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    options.inbox_prefix.push_str(&unique).unwrap();
    options
}

fn open_tcp(addr: SocketAddr, read_timeout: StdDuration) -> HostTcp {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    stream.set_nodelay(true).unwrap();
    HostTcp(FromStd::new(stream))
}

fn new_client(addr: SocketAddr, name: &str, driver: DriverOptions) -> Client {
    blocking::NatsClient::new(
        open_tcp(addr, StdDuration::from_millis(100)),
        HostClock::new(),
        options(name),
        driver,
        [0u8; 4096],
        [0u8; 4096],
    )
}

/// A connected client.
fn connect(addr: SocketAddr, name: &str) -> Client {
    let mut client = new_client(addr, name, DriverOptions::default());
    client.connect().expect("handshake with nats-server");
    client
}

/// A received message copied out of the receive buffer.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    sid: nats::Sid,
    subject: String,
    reply: Option<String>,
    payload: Vec<u8>,
}

impl Received {
    fn from(m: &nats::Message<'_>) -> Self {
        Received {
            sid: m.sid,
            subject: m.subject.to_string(),
            reply: m.reply.map(str::to_string),
            payload: m.payload.to_vec(),
        }
    }
}

/// Reads events until `n` messages arrived (panics after 10 s of waiting:
/// a safety net against hanging, not a timing assertion).
fn receive_messages(client: &mut Client, n: usize, into: &mut Vec<Received>) {
    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    while into.len() < n {
        assert!(
            std::time::Instant::now() < give_up,
            "only {} of {n} messages arrived",
            into.len()
        );
        if let Some(Event::Message(m)) = client.next_event().expect("next_event") {
            into.push(Received::from(&m));
        }
    }
}

/// For waits where no message may arrive; other events (the INFO
/// nats-server sends after the handshake) are fine.
fn no_messages(event: Event<'_>) {
    if let Event::Message(m) = event {
        panic!("unexpected message {m:?}");
    }
}

fn flush_timeout() -> Duration {
    Duration::from_secs(5)
}

// ---- against a real nats-server ----

#[test]
fn blocking_driver_publishes_readings_and_receives_them() {
    let server = NatsServer::start();
    let mut client = connect(server.addr(), "edge-pubsub");
    let info = client.server_info().expect("INFO kept after connect");
    assert!(info.headers, "nats-server 2.2+ supports headers");

    let sid = client.subscribe("telemetry.*.temperature").unwrap();
    let mut got = Vec::new();
    // The SUB is processed before anything published after this returns.
    client.flush(flush_timeout(), no_messages).unwrap();

    const N: usize = 50;
    let mut sent = Vec::new();
    for seq in 0..N {
        let payload = format!(
            "{{\"seq\":{seq},\"celsius\":{:.1}}}",
            20.0 + seq as f32 / 10.0
        );
        client
            .publish("telemetry.dev1.temperature", payload.as_bytes())
            .unwrap();
        sent.push(payload.into_bytes());
    }
    client
        .flush(flush_timeout(), |e| {
            if let Event::Message(m) = e {
                got.push(Received::from(&m));
            }
        })
        .unwrap();
    receive_messages(&mut client, N, &mut got);

    assert_eq!(got.len(), N);
    for (received, payload) in got.iter().zip(&sent) {
        assert_eq!(received.sid, sid);
        assert_eq!(received.subject, "telemetry.dev1.temperature");
        assert_eq!(received.reply, None);
        assert_eq!(&received.payload, payload);
    }
}

#[test]
fn request_reply_between_two_blocking_drivers() {
    let server = NatsServer::start();
    let addr = server.addr();
    let (ready_tx, ready_rx) = mpsc::channel();
    const REQUESTS: usize = 3;

    let responder = thread::spawn(move || {
        let mut client = connect(addr, "edge-responder");
        client.subscribe("svc.double").unwrap();
        client.flush(flush_timeout(), no_messages).unwrap();
        ready_tx.send(()).unwrap();
        let mut served = 0;
        let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
        while served < REQUESTS && std::time::Instant::now() < give_up {
            // Copy what the answer needs, so the borrow of the receive
            // buffer ends before publishing (a device would use heapless).
            let request = match client.next_event().unwrap() {
                Some(Event::Message(m)) => Received::from(&m),
                _ => continue,
            };
            let reply_to = request.reply.expect("requests carry a reply subject");
            let mut answer = request.payload.clone();
            answer.extend_from_slice(&request.payload);
            client.publish(&reply_to, &answer).unwrap();
            served += 1;
        }
        served
    });

    ready_rx
        .recv_timeout(StdDuration::from_secs(10))
        .expect("responder subscribed");
    let mut requester = connect(addr, "edge-requester");
    for word in ["ab", "xyz", "q"] {
        let reply = requester
            .request(
                "svc.double",
                word.as_bytes(),
                Duration::from_secs(5),
                |m| m.payload.to_vec(),
                no_messages,
            )
            .unwrap();
        assert_eq!(reply, format!("{word}{word}").into_bytes());
    }
    assert_eq!(responder.join().unwrap(), REQUESTS);

    // Nobody listens here: the server answers 503 at once.
    let err = requester
        .request(
            "svc.nobody",
            b"?",
            Duration::from_secs(5),
            |_| (),
            no_messages,
        )
        .unwrap_err();
    assert!(matches!(err, Error::NoResponders), "{err:?}");
    assert!(!err.is_fatal());
}

#[test]
fn queue_group_members_share_the_messages_exactly_once() {
    let server = NatsServer::start();
    let mut members: Vec<Client> = (0..2)
        .map(|i| connect(server.addr(), &format!("edge-worker-{i}")))
        .collect();
    for member in &mut members {
        member.queue_subscribe("jobs.resize", "workers").unwrap();
        member.flush(flush_timeout(), no_messages).unwrap();
    }
    let mut publisher = connect(server.addr(), "edge-dispatcher");
    const JOBS: usize = 40;
    for job in 0..JOBS {
        publisher
            .publish("jobs.resize", job.to_string().as_bytes())
            .unwrap();
    }
    // The server routed every PUB before answering this PING; each
    // member's PONG then comes after the messages routed to it.
    publisher.flush(flush_timeout(), no_messages).unwrap();

    let mut per_member = Vec::new();
    for member in &mut members {
        let mut got = Vec::new();
        member
            .flush(flush_timeout(), |e| {
                if let Event::Message(m) = e {
                    got.push(String::from_utf8(m.payload.to_vec()).unwrap());
                }
            })
            .unwrap();
        per_member.push(got);
    }
    let mut all: Vec<usize> = per_member
        .iter()
        .flatten()
        .map(|job| job.parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..JOBS).collect::<Vec<_>>(), "each job exactly once");
    // The server picks a member at random per message: with 40 messages
    // both are served (all to one member has probability 2^-39).
    assert!(
        per_member.iter().all(|got| !got.is_empty()),
        "{per_member:?}"
    );
}

#[test]
fn auto_unsubscribe_after_20_delivers_exactly_20() {
    let server = NatsServer::start();
    let mut client = connect(server.addr(), "edge-auto-unsub");
    let sid = client.subscribe("auto.readings").unwrap();
    client.unsubscribe_after(sid, 20).unwrap();

    for seq in 0..30u32 {
        client
            .publish("auto.readings", seq.to_string().as_bytes())
            .unwrap();
    }
    let mut delivered = Vec::new();
    let mut done = 0;
    let mut collect = |e: Event<'_>| match e {
        Event::Message(m) => delivered.push(Received::from(&m)),
        Event::SubscriptionDone { sid: ended } => {
            assert_eq!(ended, sid);
            done += 1;
        }
        other => no_messages(other),
    };
    // Two round trips: everything the server was going to deliver has
    // arrived by the second PONG.
    client.flush(flush_timeout(), &mut collect).unwrap();
    client.flush(flush_timeout(), &mut collect).unwrap();

    assert_eq!(delivered.len(), 20);
    assert_eq!(done, 1);
    let payloads: Vec<String> = delivered
        .iter()
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|n: u32| n.to_string()).collect();
    assert_eq!(payloads, expected);
    assert_eq!(client.session().subscriptions().count(), 0);
}

#[test]
fn headers_round_trip() {
    let server = NatsServer::start();
    let mut client = connect(server.addr(), "edge-headers");
    client.subscribe("hdr.reading").unwrap();
    client.flush(flush_timeout(), |_| {}).unwrap();

    let mut headers = HeaderWriter::new([0u8; 128]).unwrap();
    headers.insert("Unit", "celsius").unwrap();
    headers.insert("Device", "dev-7").unwrap();
    client
        .publish_with("hdr.reading", None, Some(headers.as_bytes()), b"21.5")
        .unwrap();

    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < give_up, "no message arrived");
        if let Some(Event::Message(m)) = client.next_event().unwrap() {
            let h = m.headers.expect("HMSG carries the header block");
            assert_eq!(h.get("Unit"), Some("celsius"));
            assert_eq!(h.get("device"), Some("dev-7"));
            assert_eq!(h.status(), None);
            assert_eq!(m.payload, b"21.5");
            assert_eq!(m.subject, "hdr.reading");
            break;
        }
    }
}

#[test]
fn message_larger_than_the_receive_buffer_is_frame_too_large() {
    let server = NatsServer::start();
    let mut receiver = new_client(server.addr(), "edge-small-rx", DriverOptions::default());
    let warning = receiver.connect().unwrap();
    let warning = warning.expect("1 MiB max_payload exceeds a 4 KiB receive buffer");
    assert_eq!(warning.rx_capacity, 4096);
    assert_eq!(warning.max_payload, 1024 * 1024);

    receiver.subscribe("big.blob").unwrap();
    receiver.flush(flush_timeout(), |_| {}).unwrap();

    // 8 KiB does not fit the sender's 4 KiB transmit buffer either: it goes
    // out zero-copy (control line, payload, trailer).
    let mut sender = connect(server.addr(), "edge-big-tx");
    let blob = vec![b'x'; 8 * 1024];
    sender.publish("big.blob", &blob).unwrap();
    sender.flush(flush_timeout(), |_| {}).unwrap();

    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    let err = loop {
        assert!(std::time::Instant::now() < give_up, "no error surfaced");
        match receiver.next_event() {
            Ok(Some(Event::Message(m))) => panic!("a {}-byte message fit?", m.payload.len()),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match &err {
        Error::Nats(nats::Error::FrameTooLarge { needed, capacity }) => {
            assert_eq!(*capacity, 4096);
            assert!(*needed > 8 * 1024, "needed {needed}");
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(err.is_fatal());
    assert!(err.to_string().contains("receive buffer"), "{err}");
}

#[test]
fn reconnect_after_a_server_restart_resubscribes() {
    let mut server = NatsServer::start();
    let mut client = connect(server.addr(), "edge-reconnect");
    let sid = client.subscribe("re.readings").unwrap();
    client.flush(flush_timeout(), no_messages).unwrap();

    server.kill();
    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    let lost = loop {
        assert!(
            std::time::Instant::now() < give_up,
            "the loss went unnoticed"
        );
        if let Err(e) = client.next_event() {
            break e;
        }
    };
    assert!(lost.is_fatal(), "{lost:?}");
    assert!(matches!(
        client.publish("re.readings", b"lost?"),
        Err(Error::Disconnected)
    ));

    server.restart();
    client
        .reconnect(open_tcp(server.addr(), StdDuration::from_millis(100)))
        .unwrap();
    // The same subscription (same sid) was re-sent during the handshake.
    client.publish("re.readings", b"after restart").unwrap();
    let mut got = Vec::new();
    client
        .flush(flush_timeout(), |e| {
            if let Event::Message(m) = e {
                got.push(Received::from(&m));
            }
        })
        .unwrap();
    receive_messages(&mut client, 1, &mut got);
    assert_eq!(got[0].sid, sid);
    assert_eq!(got[0].payload, b"after restart");
}

#[test]
fn async_driver_pub_sub_over_tokio() {
    let server = NatsServer::start();
    let addr = server.addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut client = connect_async(addr, "edge-async").await;
        let sid = client.subscribe("async.readings.>").await.unwrap();
        client.flush(flush_timeout(), no_messages).await.unwrap();

        const N: usize = 20;
        for seq in 0..N {
            let subject = format!("async.readings.dev{}", seq % 3);
            client
                .publish(&subject, format!("r{seq}").as_bytes())
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
        while got.len() < N {
            assert!(std::time::Instant::now() < give_up, "{} of {N}", got.len());
            if let Some(Event::Message(m)) = client.next_event().await.unwrap() {
                got.push(Received::from(&m));
            }
        }
        for (seq, m) in got.iter().enumerate() {
            assert_eq!(m.sid, sid);
            assert_eq!(m.subject, format!("async.readings.dev{}", seq % 3));
            assert_eq!(m.payload, format!("r{seq}").into_bytes());
        }

        // A request through the async driver, answered by no one.
        let err = client
            .request("async.nobody", b"?", Duration::from_secs(5), |_| (), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoResponders), "{err:?}");
    });
}

type AsyncClient =
    asynch::NatsClient<FromTokio<tokio::net::TcpStream>, HostClock, [u8; 4096], [u8; 4096], 8, 4>;

async fn connect_async(addr: SocketAddr, name: &str) -> AsyncClient {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = asynch::NatsClient::new(
        FromTokio::new(stream),
        HostClock::new(),
        options(name),
        DriverOptions::default(),
        [0u8; 4096],
        [0u8; 4096],
    );
    client.connect().await.unwrap();
    client
}

#[test]
fn request_reply_between_two_async_drivers_on_one_thread() {
    let server = NatsServer::start();
    let addr = server.addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut responder = connect_async(addr, "async-responder").await;
        responder.subscribe("svc.upper").await.unwrap();
        responder.flush(flush_timeout(), no_messages).await.unwrap();
        let mut requester = connect_async(addr, "async-requester").await;

        const REQUESTS: usize = 3;
        let serve = async {
            let mut served = 0;
            while served < REQUESTS {
                let request = match responder.next_event().await.unwrap() {
                    Some(Event::Message(m)) => Received::from(&m),
                    _ => continue,
                };
                let answer = request.payload.to_ascii_uppercase();
                let reply_to = request.reply.expect("reply subject");
                responder.publish(&reply_to, &answer).await.unwrap();
                served += 1;
            }
        };
        let ask = async {
            let mut replies = Vec::new();
            for word in ["temp", "humidity", "co2"] {
                let reply = requester
                    .request(
                        "svc.upper",
                        word.as_bytes(),
                        Duration::from_secs(5),
                        |m| m.payload.to_vec(),
                        no_messages,
                    )
                    .await
                    .unwrap();
                replies.push(String::from_utf8(reply).unwrap());
            }
            replies
        };
        let ((), replies) = tokio::join!(serve, ask);
        assert_eq!(replies, ["TEMP", "HUMIDITY", "CO2"]);
    });
}

// ---- against a scripted peer: what a real server will not do ----

/// Greets like a server, reads CONNECT and PING, answers PONG; returns the
/// CONNECT line.
fn handshake(conn: &mut PeerConn) -> Option<String> {
    conn.send(&nats_info_line(1024 * 1024));
    let connect = conn.read_until_line_starting("CONNECT")?;
    conn.read_until_line_starting("PING")?;
    conn.send(b"PONG\r\n");
    Some(connect)
}

/// A peer that runs the handshake, then sends `after` and holds the
/// connection open; the CONNECT lines it saw come out of the channel.
fn scripted(after: &'static [u8]) -> (ScriptedPeer, mpsc::Receiver<String>) {
    let (seen_tx, seen_rx) = mpsc::channel();
    let peer = ScriptedPeer::start(move |mut conn| {
        if let Some(connect) = handshake(&mut conn) {
            let _ = seen_tx.send(connect);
            conn.send(after);
            conn.hold_open(StdDuration::from_secs(10));
        }
    });
    (peer, seen_rx)
}

/// Calls next_event until it fails (panics after 10 s).
fn first_error(client: &mut Client) -> Error<HostIoError> {
    let give_up = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < give_up, "no error surfaced");
        if let Err(e) = client.next_event() {
            return e;
        }
    }
}

#[test]
fn garbage_after_the_handshake_is_a_protocol_error() {
    let (peer, seen) = scripted(b"HELLO this is not NATS\r\n");
    let mut client = new_client(peer.addr(), "edge-garbage", DriverOptions::default());
    client.connect().unwrap();
    let connect = seen.recv_timeout(StdDuration::from_secs(10)).unwrap();
    assert!(connect.starts_with("CONNECT {"), "{connect}");
    assert!(connect.contains("\"name\":\"edge-garbage\""), "{connect}");

    let err = first_error(&mut client);
    match &err {
        Error::Nats(nats::Error::Protocol(p)) => {
            assert!(p.seen.starts_with(b"HELLO"), "{p}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(err.is_fatal());
    // Calls after a fatal error say so (no panic, no busy loop of Ok(None)).
    let again = client.next_event();
    assert!(matches!(again, Err(Error::Disconnected)), "{again:?}");
    let publish = client.publish("after.garbage", b"x");
    assert!(matches!(publish, Err(Error::Disconnected)), "{publish:?}");
}

#[test]
fn garbage_instead_of_info_fails_connect() {
    let peer = ScriptedPeer::start(|mut conn| {
        conn.send(b"\x00\x01\x02 binary junk\r\n");
        conn.hold_open(StdDuration::from_secs(10));
    });
    let mut client = new_client(peer.addr(), "edge-junk", DriverOptions::default());
    let err = client.connect().unwrap_err();
    assert!(
        matches!(err, Error::Nats(nats::Error::Protocol(_))),
        "{err:?}"
    );
}

#[test]
fn oversized_msg_from_a_peer_is_frame_too_large_before_its_payload() {
    // Only the control line is sent: the size alone must be enough.
    let (peer, _seen) = scripted(b"MSG big.subject 1 100000\r\n");
    let mut client = new_client(peer.addr(), "edge-oversized", DriverOptions::default());
    client.connect().unwrap();
    match first_error(&mut client) {
        Error::Nats(nats::Error::FrameTooLarge { needed, capacity }) => {
            assert_eq!(capacity, 4096);
            assert!(needed >= 100_000, "needed {needed}");
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[test]
fn peer_stalling_mid_frame_is_a_stalled_error() {
    const PARTIAL: &[u8] = b"MSG stalled.subject 1 100\r\nonly part of it";
    let (peer, _seen) = scripted(PARTIAL);
    let driver = DriverOptions {
        stall_timeout: Duration::from_millis(300),
        ..DriverOptions::default()
    };
    let mut client = new_client(peer.addr(), "edge-stall", driver);
    client.connect().unwrap();
    let err = first_error(&mut client);
    match &err {
        Error::Stalled { buffered, waited } => {
            assert_eq!(*buffered, PARTIAL.len());
            assert!(waited.as_millis() >= 300);
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
    assert!(err.is_fatal());
}

#[test]
fn silent_peer_times_out_connect() {
    let peer = ScriptedPeer::start(|mut conn| conn.hold_open(StdDuration::from_secs(10)));
    let driver = DriverOptions {
        connect_timeout: Duration::from_millis(300),
        ..DriverOptions::default()
    };
    let mut client = new_client(peer.addr(), "edge-silent", driver);
    let err = client.connect().unwrap_err();
    assert!(matches!(err, Error::TimedOut(Wait::Connect)), "{err:?}");
}
