//! The courier async NATS client (std-runtime) against a real nats-server
//! started per test on a free loopback port.
//!
//! Every wait is bounded (`within`), so a broken client fails a test instead
//! of hanging it; no assertion is about timing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use courier::nats::{self, ConnectOptions, Error, Event, HeaderMap, Message, Subscriber};
use courier::{BackendChoice, Runtime};
use courier_tests::{free_port, NatsServer};

/// Runs `body` on a courier runtime with the given backend.
fn run_on<F: Future>(choice: BackendChoice, body: F) -> F::Output {
    Runtime::builder()
        .backend(choice)
        .build()
        .expect("start a courier runtime")
        .block_on(body)
}

/// The default backend; `COURIER_TRANSPORT=epoll` runs every test on the
/// fallback.
fn run<F: Future>(body: F) -> F::Output {
    Runtime::new()
        .expect("start a courier runtime")
        .block_on(body)
}

/// Bounds a wait; panics with `what` instead of hanging.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing happened within 20 s"))
}

async fn next(sub: &mut Subscriber) -> Message {
    within("next message", sub.next())
        .await
        .expect("subscription ended early")
}

/// Publishes and receives on one client: the scenario every backend runs.
async fn pub_sub_scenario(url: String) -> courier::Backend {
    let client = nats::connect([url]).await.unwrap();
    let mut sub = client.subscribe("greet.*").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..100 {
        client
            .publish(&format!("greet.n{i}"), format!("hello {i}"))
            .await
            .unwrap();
    }
    for i in 0..100 {
        let msg = next(&mut sub).await;
        assert_eq!(msg.subject(), format!("greet.n{i}"));
        assert_eq!(&msg.payload[..], format!("hello {i}").as_bytes());
        assert_eq!(msg.reply(), None);
    }
    let backend = courier::current_backend().unwrap();
    client.close().await.unwrap();
    backend
}

#[test]
fn pub_sub_on_the_default_backend() {
    let server = NatsServer::start();
    let backend = run(pub_sub_scenario(server.url()));
    eprintln!("default backend here: {backend}");
}

#[test]
fn pub_sub_on_the_forced_epoll_fallback() {
    let server = NatsServer::start();
    let backend = run_on(BackendChoice::Epoll, pub_sub_scenario(server.url()));
    assert_eq!(backend, courier::Backend::Epoll);
}

#[test]
fn pub_sub_on_io_uring_when_the_kernel_allows_it() {
    if Runtime::builder()
        .backend(BackendChoice::Uring)
        .build()
        .is_err()
    {
        eprintln!("io_uring refused here; the epoll test covers this scenario");
        return;
    }
    let server = NatsServer::start();
    let backend = run_on(BackendChoice::Uring, pub_sub_scenario(server.url()));
    assert_eq!(backend, courier::Backend::Uring);
}

#[test]
fn wildcards_route_by_token() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut one = client.subscribe("sensors.*.temp").await.unwrap();
        let mut all = client.subscribe("sensors.>").await.unwrap();
        client.flush().await.unwrap();
        for subject in [
            "sensors.a.temp",
            "sensors.a.hum",
            "sensors.b.temp",
            "sensors.b.c.temp",
            "other.a.temp",
        ] {
            client.publish(subject, subject).await.unwrap();
        }
        client.publish("end", "").await.unwrap();
        assert_eq!(next(&mut one).await.subject(), "sensors.a.temp");
        assert_eq!(next(&mut one).await.subject(), "sensors.b.temp");
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(next(&mut all).await.subject().to_string());
        }
        assert_eq!(
            got,
            [
                "sensors.a.temp",
                "sensors.a.hum",
                "sensors.b.temp",
                "sensors.b.c.temp"
            ]
        );
        client.flush().await.unwrap();
        assert_eq!(one.pending(), 0);
        assert_eq!(all.pending(), 0);
        let bad = client.subscribe("a.b*").await;
        assert!(matches!(bad, Err(Error::Protocol(_))), "{bad:?}");
        let bad = client.publish("a.*", "x").await;
        assert!(matches!(bad, Err(Error::Protocol(_))), "{bad:?}");
    });
}

#[test]
fn queue_group_delivers_each_message_once_across_members() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut members = Vec::new();
        for _ in 0..4 {
            members.push(client.queue_subscribe("jobs", "workers").await.unwrap());
        }
        client.flush().await.unwrap();
        for i in 0..100u32 {
            client.publish("jobs", i.to_string()).await.unwrap();
        }
        client.flush().await.unwrap();
        // Everything routed to us has arrived after the round trip.
        let mut seen: HashMap<u32, usize> = HashMap::new();
        let mut served = 0;
        for m in members.iter_mut() {
            let n = m.pending();
            if n > 0 {
                served += 1;
            }
            for _ in 0..n {
                let msg = next(m).await;
                let i: u32 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
                *seen.entry(i).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), 100, "every message delivered");
        assert!(seen.values().all(|&c| c == 1), "exactly once");
        assert!(served > 1, "more than one member served");
    });
}

#[test]
fn request_reply_no_responders_and_timeout() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut service = client.subscribe("svc.echo").await.unwrap();
        let _silent = client.subscribe("svc.silent").await.unwrap();
        client.flush().await.unwrap();
        let responder = client.clone();
        courier::spawn(async move {
            while let Some(req) = service.next().await {
                let reply = req
                    .reply()
                    .expect("requests carry a reply subject")
                    .to_string();
                let mut answer = b"echo: ".to_vec();
                answer.extend_from_slice(&req.payload);
                responder.publish(&reply, answer).await.unwrap();
            }
        });
        for i in 0..10 {
            let reply = within("request", client.request("svc.echo", format!("ping {i}")))
                .await
                .unwrap();
            assert_eq!(&reply.payload[..], format!("echo: ping {i}").as_bytes());
        }
        match client.request("svc.nobody", "x").await {
            Err(Error::NoResponders { subject }) => assert_eq!(subject, "svc.nobody"),
            other => panic!("expected NoResponders, got {other:?}"),
        }
        let timeout = Duration::from_millis(200);
        match client.request_with("svc.silent", None, b"x", timeout).await {
            Err(Error::TimedOut { operation, after }) => {
                assert_eq!((operation, after), ("request", timeout))
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }
        // The connection is still fine afterwards.
        client.request("svc.echo", "again").await.unwrap();
    });
}

#[test]
fn auto_unsubscribe_after_20_delivers_exactly_20() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("count").await.unwrap();
        sub.unsubscribe_after(20).await.unwrap();
        client.flush().await.unwrap();
        for i in 0..30 {
            client.publish("count", i.to_string()).await.unwrap();
        }
        client.flush().await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = within("auto-unsubscribe stream", sub.next()).await {
            got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
        let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(got, expected);
    });
}

#[test]
fn headers_round_trip() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("h").await.unwrap();
        client.flush().await.unwrap();
        let headers = HeaderMap::new()
            .with("Unit", "celsius")
            .unwrap()
            .with("Trace-Id", "abc-123")
            .unwrap();
        client
            .publish_with_headers("h", &headers, "21.5")
            .await
            .unwrap();
        let msg = next(&mut sub).await;
        let got = msg.headers().expect("headers arrive");
        assert_eq!(got.get("unit"), Some("celsius"));
        assert_eq!(got.get("Trace-Id"), Some("abc-123"));
        assert_eq!(&msg.payload[..], b"21.5");
        assert_eq!(msg.status(), None);
    });
}

#[test]
fn flush_round_trips_and_fails_instead_of_hanging_when_the_server_is_gone() {
    let mut server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .flush_timeout(Duration::from_millis(500))
            .connect([server.url()])
            .await
            .unwrap();
        client.publish("x", "y").await.unwrap();
        client.flush().await.unwrap();
        server.kill();
        let res = within("flush without a server", client.flush()).await;
        assert!(
            matches!(res, Err(Error::TimedOut { .. }) | Err(Error::Disconnected)),
            "{res:?}"
        );
    });
}

#[test]
fn drain_delivers_what_arrived_then_ends_streams() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("d").await.unwrap();
        client.flush().await.unwrap();
        for i in 0..50 {
            client.publish("d", i.to_string()).await.unwrap();
        }
        within("drain", client.drain()).await.unwrap();
        let mut count = 0;
        while within("drained stream", sub.next()).await.is_some() {
            count += 1;
        }
        assert_eq!(count, 50);
        assert!(matches!(
            client.publish("d", "late").await,
            Err(Error::Closed)
        ));
    });
}

/// A different point each run: where the drain starts must not matter.
fn random_below(n: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(n) % n
}

/// Reads `sub` to its end and asserts the payloads are `from, from+1, ...`
/// (no gap, no duplicate); returns how many arrived.
async fn read_numbered_to_end(sub: &mut Subscriber, mut expected: u64) -> u64 {
    while let Some(msg) = within("drained stream", sub.next()).await {
        let n: u64 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
        assert_eq!(n, expected, "a message was lost, repeated or reordered");
        expected += 1;
    }
    expected
}

/// Floods `subject` from a separate client: `count` numbered messages
/// (payload `0`, `1`, ...), then a flush.
fn flood(url: String, subject: &'static str, count: u64) -> tokio::task::JoinHandle<()> {
    courier::spawn(async move {
        let publisher = nats::connect([url]).await.unwrap();
        for i in 0..count {
            publisher.publish(subject, i.to_string()).await.unwrap();
            if i % 2_000 == 1_999 {
                // Round trips pace the flood, so the drain usually lands
                // while it is still going (the assertions hold either way).
                publisher.flush().await.unwrap();
            }
        }
        within("publisher flush", publisher.flush()).await.unwrap();
        publisher.close().await.unwrap();
    })
}

#[test]
fn drain_mid_flood_delivers_everything_routed_before_the_unsub() {
    const N: u64 = 100_000;
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("flood").await.unwrap();
        client.flush().await.unwrap();
        let drain_after = 1 + random_below(N / 4);
        let publisher = flood(server.url(), "flood", N);
        let mut expected = 0;
        while expected < drain_after {
            let msg = next(&mut sub).await;
            assert_eq!(&msg.payload[..], expected.to_string().as_bytes());
            expected += 1;
        }
        within("drain", client.drain()).await.unwrap();
        let received = read_numbered_to_end(&mut sub, expected).await;
        eprintln!("drain after {drain_after} of {N}: {received} received in order");
        assert!(received >= drain_after);
        assert_eq!(client.protocol_stats().dropped_unknown_sid, 0);
        assert!(matches!(
            client.publish("flood", "late").await,
            Err(Error::Closed)
        ));
        within("publisher", publisher).await.unwrap();
    });
}

#[test]
fn subscriber_drain_ends_one_subscription_losslessly_and_others_go_on() {
    const N: u64 = 50_000;
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut drained = client.subscribe("flood2").await.unwrap();
        let mut other = client.subscribe("flood2").await.unwrap();
        client.flush().await.unwrap();
        let drain_after = 1 + random_below(N / 4);
        let publisher = flood(server.url(), "flood2", N);
        let mut expected = 0;
        while expected < drain_after {
            let msg = next(&mut drained).await;
            assert_eq!(&msg.payload[..], expected.to_string().as_bytes());
            expected += 1;
        }
        within("subscriber drain", drained.drain()).await.unwrap();
        let received = read_numbered_to_end(&mut drained, expected).await;
        assert!(received >= drain_after);
        within("publisher", publisher).await.unwrap();
        // The other subscription saw the whole flood.
        for i in 0..N {
            let msg = next(&mut other).await;
            assert_eq!(&msg.payload[..], i.to_string().as_bytes());
        }
        client.flush().await.unwrap();
        assert_eq!(client.protocol_stats().dropped_unknown_sid, 0);
        assert_eq!(client.connection_state(), nats::ConnectionState::Connected);
        client.close().await.unwrap();
    });
}

#[test]
fn reconnects_resubscribes_and_delivers_publishes_buffered_during_the_outage() {
    let mut server = NatsServer::start();
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let log = events.clone();
    run(async {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([server.url()])
            .await
            .unwrap();
        let mut sub = client.subscribe("r").await.unwrap();
        client.flush().await.unwrap();
        client.publish("r", "before").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"before");

        server.kill();
        // Wait until the client noticed, so the next publishes are buffered.
        within("disconnect noticed", async {
            while client.connection_state() == nats::ConnectionState::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        for i in 0..10 {
            client.publish("r", format!("during {i}")).await.unwrap();
        }
        server.restart();
        within("flush after reconnect", async {
            loop {
                match client.flush().await {
                    Ok(()) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        for i in 0..10 {
            assert_eq!(
                next(&mut sub).await.payload,
                format!("during {i}").as_bytes()
            );
        }
        client.publish("r", "after").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"after");
        let stats = client.statistics();
        assert_eq!((stats.out_messages, stats.in_messages), (12, 12));
        assert_eq!(stats.reconnects, 1);
        assert_eq!(client.unsent_bytes(), 0);
    });
    let events = events.borrow();
    assert!(
        matches!(events.first(), Some(Event::Connected { .. })),
        "{events:?}"
    );
    // Only "before" (PUB r 6\r\nbefore\r\n) was written after the last
    // confirmed flush: the client says exactly how much is in doubt.
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Disconnected {
                unconfirmed_bytes: 17,
                kept_publishes: 0,
                discarded_publishes: 0,
                ..
            }
        )),
        "{events:?}"
    );
    // The ten publishes made during the outage ("PUB r 8\r\nduring i\r\n",
    // 19 bytes each) went out after the handshake, counted as publishes.
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Reconnected {
                buffered_publishes_sent: 10,
                buffered_bytes_sent: 190,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn lame_duck_mode_is_reported_and_the_client_moves_to_the_other_server() {
    let lame = NatsServer::start();
    let other = NatsServer::start();
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let log = events.clone();
    run(async {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([lame.url(), other.url()])
            .await
            .unwrap();
        let port_of = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        assert_eq!(port_of(&client.connected_url().unwrap()), lame.port());
        let mut sub = client.subscribe("ldm.x").await.unwrap();
        client.flush().await.unwrap();

        let status = std::process::Command::new(courier_tests::bin_path("nats-server"))
            .arg("--signal")
            .arg(format!("ldm={}", lame.pid().expect("server running")))
            .status()
            .expect("run nats-server --signal");
        assert!(status.success(), "nats-server --signal ldm: {status}");

        within("lame duck event and reconnect to the other server", async {
            loop {
                let moved = events.borrow().iter().any(|e| {
                    matches!(e, Event::Reconnected { server, .. } if port_of(server) == other.port())
                });
                if moved {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(port_of(&client.connected_url().unwrap()), other.port());
        // The subscription was renewed on the other server.
        client.flush().await.unwrap();
        let publisher = nats::connect([other.url()]).await.unwrap();
        publisher.publish("ldm.x", "after the move").await.unwrap();
        publisher.flush().await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"after the move");
        client.close().await.unwrap();
        publisher.close().await.unwrap();
    });
    let events = events.borrow();
    let lame_duck = events
        .iter()
        .position(|e| matches!(e, Event::LameDuckMode { server } if server.ends_with(&format!(":{}", lame.port()))))
        .unwrap_or_else(|| panic!("no LameDuckMode event: {events:?}"));
    let disconnected = events
        .iter()
        .position(
            |e| matches!(e, Event::Disconnected { reason, .. } if reason.contains("lame duck")),
        )
        .unwrap_or_else(|| panic!("no Disconnected for the lame duck: {events:?}"));
    assert!(lame_duck < disconnected, "{events:?}");
}

#[test]
fn lame_duck_mode_with_no_other_server_is_reported_and_the_client_stays() {
    let server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .ignore_discovered_servers(true)
            .connect([server.url()])
            .await
            .unwrap();
        let mut events = client.events();
        let mut sub = client.subscribe("stay").await.unwrap();
        client.flush().await.unwrap();
        let status = std::process::Command::new(courier_tests::bin_path("nats-server"))
            .arg("--signal")
            .arg(format!("ldm={}", server.pid().expect("server running")))
            .status()
            .expect("run nats-server --signal");
        assert!(status.success());
        let event = within("lame duck event", async {
            loop {
                match futures::StreamExt::next(&mut events).await {
                    Some(e @ Event::LameDuckMode { .. }) => break e,
                    Some(Event::Disconnected { .. }) => panic!("left the only server"),
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        })
        .await;
        assert!(event.to_string().contains("lame duck"), "{event}");
        // Still served by it during its grace period.
        assert_eq!(client.connection_state(), nats::ConnectionState::Connected);
        client.publish("stay", "still here").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"still here");
        client.close().await.unwrap();
    });
}

#[test]
fn reconnect_buffer_full_is_a_typed_error() {
    let mut server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .reconnect_buffer_size(100)
            .reconnect_delay(Duration::from_millis(5), Duration::from_millis(10))
            .connect([server.url()])
            .await
            .unwrap();
        server.kill();
        within("disconnect noticed", async {
            while client.connection_state() == nats::ConnectionState::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // "PUB a 40\r\n" + 40 + "\r\n" = 52 bytes: one fits, the second does not,
        // however many reconnect attempts failed in between.
        client.publish("a", [b'x'; 40]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        match client.publish("a", [b'x'; 40]).await {
            Err(Error::ReconnectBufferFull { needed, capacity }) => {
                assert_eq!((needed, capacity), (104, 100))
            }
            other => panic!("expected ReconnectBufferFull, got {other:?}"),
        }
    });
}

#[test]
fn two_server_list_with_the_first_down() {
    let server = NatsServer::start();
    let dead = format!("nats://127.0.0.1:{}", free_port());
    run(async {
        let client = nats::connect([dead, server.url()]).await.unwrap();
        assert_eq!(client.connected_url(), Some(server.url()));
        let mut sub = client.subscribe("two").await.unwrap();
        client.publish("two", "ok").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"ok");
    });
}

#[test]
fn unreachable_servers_give_a_typed_error() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    run(async {
        match nats::connect([url.as_str()]).await {
            Err(Error::Unreachable { attempts }) => assert_eq!(attempts.len(), 1),
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(matches!(
            nats::connect(["nats://[::1"]).await,
            Err(Error::InvalidUrl { .. })
        ));
        let long_prefix = ConnectOptions::new()
            .inbox_prefix("x".repeat(60))
            .connect([url.as_str()])
            .await;
        assert!(
            matches!(
                long_prefix,
                Err(Error::InvalidOption {
                    option: "inbox_prefix",
                    ..
                })
            ),
            "{long_prefix:?}"
        );
        // User, password and token share one buffer in the core.
        let long_credentials = ConnectOptions::new()
            .user_and_password("u".repeat(200), "p".repeat(100))
            .connect([url.as_str()])
            .await;
        assert!(
            matches!(
                long_credentials,
                Err(Error::InvalidOption { option: "credentials", ref reason }) if reason.contains("300 bytes")
            ),
            "{long_credentials:?}"
        );
    });
}

#[test]
fn ipv6_loopback() {
    let server = NatsServer::start_on("::1", free_port(), &[]);
    run(async {
        let url = server.url();
        assert!(url.starts_with("nats://[::1]:"));
        let client = nats::connect([url]).await.unwrap();
        let mut sub = client.subscribe("six").await.unwrap();
        client.publish("six", "v6").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"v6");
    });
}

#[test]
fn credentials_in_the_url_and_refused_credentials() {
    let server = NatsServer::start_with(&["--user", "alice", "--pass", "s3cret"]);
    let port = server.port();
    run(async {
        let client = nats::connect([format!("nats://alice:s3cret@127.0.0.1:{port}")])
            .await
            .unwrap();
        client.flush().await.unwrap();
        match nats::connect([format!("nats://alice:wrong@127.0.0.1:{port}")]).await {
            Err(e @ Error::AuthorizationViolation { .. }) => {
                assert!(!e.to_string().contains("wrong"), "no secret in {e}")
            }
            other => panic!("expected AuthorizationViolation, got {other:?}"),
        }
    });
}

#[test]
fn client_name_and_server_info() {
    let server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .name("courier-test")
            .connect([server.url()])
            .await
            .unwrap();
        let info = client.server_info().expect("INFO kept");
        assert_eq!(info.port, server.port());
        assert!(info.headers);
        assert!(info.max_payload > 0);
    });
}

#[test]
fn verbose_mode_works_end_to_end() {
    let server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .verbose(true)
            .connect([server.url()])
            .await
            .unwrap();
        let mut sub = client.subscribe("v").await.unwrap();
        for i in 0..10 {
            client.publish("v", i.to_string()).await.unwrap();
        }
        client.flush().await.unwrap();
        for i in 0..10 {
            assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
        }
    });
}

#[test]
fn slow_consumer_drops_are_counted_and_reported() {
    let server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .pending_limits(nats::PendingLimits {
                messages: 10,
                bytes: 1 << 20,
            })
            .connect([server.url()])
            .await
            .unwrap();
        let mut events = client.events();
        let mut sub = client.subscribe("slow").await.unwrap();
        for i in 0..25 {
            client.publish("slow", i.to_string()).await.unwrap();
        }
        client.flush().await.unwrap();
        assert_eq!(sub.pending(), 10);
        assert_eq!(sub.dropped().0, 15);
        // The first ten are kept, in order; the rest were dropped.
        for i in 0..10 {
            assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
        }
        let event = within("slow consumer event", futures::StreamExt::next(&mut events))
            .await
            .unwrap();
        assert_eq!(
            event,
            Event::SlowConsumer {
                subject: "slow".into(),
                dropped_messages: 1,
                dropped_bytes: 2,
            }
        );
    });
}

#[test]
fn fails_over_to_a_cluster_member_learned_from_info() {
    let cluster_port = free_port();
    let mut seed = NatsServer::start_with(&[
        "--cluster_name",
        "c1",
        "--cluster",
        &format!("nats://127.0.0.1:{cluster_port}"),
    ]);
    run(async {
        // Only the seed is given; the member joins later and is learned from
        // the INFO the seed sends then (connect_urls).
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
            .connect([seed.url()])
            .await
            .unwrap();
        let member = NatsServer::start_with(&[
            "--cluster_name",
            "c1",
            "--cluster",
            &format!("nats://127.0.0.1:{}", free_port()),
            "--routes",
            &format!("nats://127.0.0.1:{cluster_port}"),
        ]);
        let member_port = format!(":{}", member.port());
        within("member advertised in INFO", async {
            while client
                .server_info()
                .is_none_or(|i| !i.connect_urls.iter().any(|u| u.ends_with(&member_port)))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let mut sub = client.subscribe("cl").await.unwrap();
        client.flush().await.unwrap();
        seed.kill();
        within("failover to the member", async {
            while client.connected_url() != Some(member.url())
                || client.connection_state() != nats::ConnectionState::Connected
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        client.publish("cl", "via member").await.unwrap();
        assert_eq!(&next(&mut sub).await.payload[..], b"via member");
    });
}

#[test]
fn retry_on_initial_connect_queues_until_a_server_appears() {
    let port = free_port();
    let mut server = None;
    run(async {
        let client = ConnectOptions::new()
            .retry_on_initial_connect(true)
            .max_reconnects(None)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .connect([format!("nats://127.0.0.1:{port}")])
            .await
            .unwrap();
        assert_eq!(
            client.connection_state(),
            nats::ConnectionState::Disconnected
        );
        let mut sub = client.subscribe("early").await.unwrap();
        client.publish("early", "queued").await.unwrap();
        server = Some(NatsServer::start_on("127.0.0.1", port, &[]));
        assert_eq!(&next(&mut sub).await.payload[..], b"queued");
        assert_eq!(client.connection_state(), nats::ConnectionState::Connected);
    });
    drop(server);
}

async fn large_payloads_scenario(url: String) {
    let client = nats::connect([url]).await.unwrap();
    let mut sub = client.subscribe("big").await.unwrap();
    client.flush().await.unwrap();
    let mut expected = Vec::new();
    for i in 0..6u8 {
        let size = if i % 2 == 0 { 200 * 1024 } else { 10 };
        let payload = bytes::Bytes::from(vec![b'a' + i; size]);
        expected.push(payload.clone());
        let headers = (i == 2).then(|| HeaderMap::new().with("Part", "2").unwrap());
        client
            .publish_bytes("big", headers.as_ref(), payload)
            .await
            .unwrap();
        // Interleave an ordinary publish to check ordering around the vectored path.
        client.publish("big", [i]).await.unwrap();
        expected.push(bytes::Bytes::from(vec![i]));
    }
    client.flush().await.unwrap();
    for (n, want) in expected.iter().enumerate() {
        let msg = next(&mut sub).await;
        assert_eq!(msg.payload.len(), want.len(), "message {n}");
        assert_eq!(&msg.payload, want, "message {n}");
        if n == 4 {
            assert_eq!(msg.headers().and_then(|h| h.get("Part")), Some("2"));
        }
    }
}

#[test]
fn large_payloads_go_out_vectored_in_order_on_both_backends() {
    let server = NatsServer::start();
    run_on(BackendChoice::Epoll, large_payloads_scenario(server.url()));
    run(large_payloads_scenario(server.url()));
}

#[test]
fn host_names_resolve_and_every_address_is_tried() {
    let server = NatsServer::start();
    // "localhost" may resolve to ::1 first while the server listens on
    // 127.0.0.1 only: the client tries each address.
    let url = format!("nats://localhost:{}", server.port());
    run(async {
        let client = nats::connect([url.as_str()]).await.unwrap();
        client.flush().await.unwrap();
        assert_eq!(client.connected_url(), Some(url.clone()));
    });
}

#[test]
fn token_in_the_url_and_in_the_options() {
    let server = NatsServer::start_with(&["--auth", "t0ken"]);
    let port = server.port();
    run(async {
        let client = nats::connect([format!("nats://t0ken@127.0.0.1:{port}")])
            .await
            .unwrap();
        client.flush().await.unwrap();
        let client = ConnectOptions::new()
            .token("t0ken")
            .connect([format!("nats://127.0.0.1:{port}")])
            .await
            .unwrap();
        client.flush().await.unwrap();
        let refused = nats::connect([format!("nats://127.0.0.1:{port}")]).await;
        assert!(
            matches!(refused, Err(Error::AuthorizationViolation { .. })),
            "{refused:?}"
        );
    });
}

#[test]
fn on_connect_sets_up_a_responder() {
    let server = NatsServer::start();
    run(async {
        let responder = ConnectOptions::new()
            .on_connect(|client| async move {
                let mut sub = client.subscribe("get-response").await.unwrap();
                client.flush().await.unwrap();
                while let Some(msg) = sub.next().await {
                    let reply = msg.reply().unwrap().to_string();
                    client.publish(&reply, "response").await.unwrap();
                }
            })
            .connect([server.url()])
            .await
            .unwrap();
        let requester = nats::connect([server.url()]).await.unwrap();
        let reply = within("request to the on_connect responder", async {
            loop {
                match requester.request("get-response", "").await {
                    Ok(reply) => return reply,
                    // The responder's SUB may not have reached the server yet.
                    Err(Error::NoResponders { .. }) => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await;
        assert_eq!(&reply.payload[..], b"response");
        drop(responder);
    });
}

#[test]
fn concurrent_requests_share_one_inbox_and_each_gets_its_own_reply() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut service = client.subscribe("double").await.unwrap();
        client.flush().await.unwrap();
        let responder = client.clone();
        courier::spawn(async move {
            while let Some(req) = service.next().await {
                let n: u64 = std::str::from_utf8(&req.payload).unwrap().parse().unwrap();
                let reply = req.reply().unwrap().to_string();
                responder
                    .publish(&reply, (n * 2).to_string())
                    .await
                    .unwrap();
            }
        });
        let tasks: Vec<_> = (0..200u64)
            .map(|n| {
                let client = client.clone();
                courier::spawn(async move {
                    let reply = client.request("double", n.to_string()).await.unwrap();
                    (n, String::from_utf8(reply.payload.to_vec()).unwrap())
                })
            })
            .collect();
        for task in tasks {
            let (n, reply) = within("concurrent request", task).await.unwrap();
            assert_eq!(reply, (n * 2).to_string());
        }
        // One inbox subscription muxes them all (plus the service's).
        assert_eq!(client.statistics().in_messages, 400);
    });
}

#[test]
fn unsubscribe_ends_the_stream_and_stops_delivery() {
    let server = NatsServer::start();
    run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("u").await.unwrap();
        let mut other = client.subscribe("u").await.unwrap();
        client.flush().await.unwrap();
        client.publish("u", "1").await.unwrap();
        client.flush().await.unwrap();
        sub.unsubscribe().await.unwrap();
        client.publish("u", "2").await.unwrap();
        client.flush().await.unwrap();
        // Queued before the UNSUB: still delivered, then the stream ends.
        assert_eq!(&next(&mut sub).await.payload[..], b"1");
        assert!(within("ended stream", sub.next()).await.is_none());
        assert_eq!(&next(&mut other).await.payload[..], b"1");
        assert_eq!(&next(&mut other).await.payload[..], b"2");
    });
}

#[test]
fn closing_while_disconnected_says_what_was_not_sent() {
    let mut server = NatsServer::start();
    run(async {
        let client = ConnectOptions::new()
            .max_reconnects(None)
            .connect([server.url()])
            .await
            .unwrap();
        server.kill();
        within("disconnect noticed", async {
            while client.connection_state() == nats::ConnectionState::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        client.publish("lost", "x").await.unwrap();
        assert_eq!(client.unsent_bytes(), b"PUB lost 1\r\nx\r\n".len());
        match client.close().await {
            Err(Error::NotSent { bytes }) => assert_eq!(bytes, 15),
            other => panic!("expected NotSent, got {other:?}"),
        }
    });
}
