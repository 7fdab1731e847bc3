//! Every NATS authentication method against a real nats-server configured
//! by generated files: token, user/password, NKey and decentralized JWT
//! (`.creds`, operator/account/user JWTs built at test time), each accepted
//! with the right material and refused with the wrong one; and permission
//! violations that leave the connection up. `/connz?auth=1` shows who the
//! server authorized.

use std::path::PathBuf;
use std::time::Duration;

use courier::nats::{self, ConnectOptions, Error, Event, NkeyAuth};
use courier_tests::jwt::{creds, Operator};
use courier_tests::{free_port, http_request, NatsServer};

struct Configured {
    server: NatsServer,
    monitor: u16,
    dir: tempfile::TempDir,
}

impl Configured {
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.conf");
        std::fs::write(&path, config).unwrap();
        let monitor = free_port();
        let server =
            NatsServer::start_with(&["-c", path.to_str().unwrap(), "-m", &monitor.to_string()]);
        Configured {
            server,
            monitor,
            dir,
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn connz(&self) -> serde_json::Value {
        let body = http_request(self.monitor, "GET", "/connz?auth=1", b"");
        let json = body
            .split_once("\r\n\r\n")
            .map_or(body.as_str(), |(_, b)| b);
        serde_json::from_str(json).unwrap_or_else(|e| panic!("connz {e}: {body}"))
    }
}

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .connect_timeout(Duration::from_secs(3))
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
}

/// Connects, publishes and receives one message; returns `/connz`'s
/// authorized user of that connection.
fn accepted(server: &Configured, options: ConnectOptions) -> serde_json::Value {
    let url = server.server.url();
    courier::run(async move {
        let client = options.connect([url.as_str()]).await.unwrap();
        let mut sub = client.subscribe("auth.ok").await.unwrap();
        client.flush().await.unwrap();
        client.publish("auth.ok", "hi").await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&msg.payload[..], b"hi");
        let conns = server.connz();
        client.close().await.unwrap();
        conns["connections"][0].clone()
    })
}

/// Connect must fail with a typed AuthorizationViolation, at once.
fn refused(server: &Configured, options: ConnectOptions) {
    let url = server.server.url();
    let result = courier::run(async move { options.connect([url.as_str()]).await });
    match result {
        Err(Error::AuthorizationViolation { server: s }) => {
            assert!(s.ends_with(&format!(":{}", server.server.port())), "{s}");
        }
        Err(e) => panic!("expected AuthorizationViolation, got {e}"),
        Ok(_) => panic!("the wrong credentials were accepted"),
    }
}

#[test]
fn token_right_and_wrong() {
    let s = Configured::start("authorization { token: \"s3cret-t0ken\" }\n");
    let conn = accepted(&s, options().token("s3cret-t0ken"));
    // The server authorized by token (it shows tokens redacted).
    assert_eq!(conn["authorized_user"], "[REDACTED]");
    refused(&s, options().token("wrong"));
}

#[test]
fn user_and_password_right_and_wrong() {
    let s = Configured::start("authorization { users: [ { user: alice, password: \"pa55\" } ] }\n");
    let conn = accepted(&s, options().user_and_password("alice", "pa55"));
    assert_eq!(conn["authorized_user"], "alice");
    refused(&s, options().user_and_password("alice", "nope"));
}

#[test]
fn nkey_right_and_wrong() {
    let user = nkeys::KeyPair::new_user();
    let s = Configured::start(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let seed_file = s.file("user.nk", &user.seed().unwrap());
    let conn = accepted(&s, options().nkey_file(&seed_file).unwrap());
    assert_eq!(conn["authorized_user"], user.public_key());
    // Another key's seed signs the nonce validly, but is not a user.
    let stranger = nkeys::KeyPair::new_user();
    refused(
        &s,
        options().nkey_auth(NkeyAuth::from_seed(&stranger.seed().unwrap()).unwrap()),
    );
}

#[test]
fn creds_right_and_wrong() {
    let operator = Operator::generate();
    let s = Configured::start(&operator.server_config());
    let (user, user_creds) = operator.user("alice");
    let creds_file = s.file("alice.creds", &user_creds);
    let conn = accepted(&s, options().credentials_file(&creds_file).unwrap());
    assert_eq!(conn["authorized_user"], user.public_key());
    assert_eq!(conn["account"], operator.account.public_key());

    // The right JWT with another seed: the signature of the nonce fails.
    let jwt = user_creds.lines().nth(1).unwrap();
    let other = nkeys::KeyPair::new_user();
    let stolen = s.file("stolen.creds", &creds(jwt, &other.seed().unwrap()));
    refused(&s, options().credentials_file(&stolen).unwrap());

    // A JWT issued by an account the operator never signed.
    let rogue_account = nkeys::KeyPair::new_account();
    let mallory = nkeys::KeyPair::new_user();
    let rogue = s.file(
        "rogue.creds",
        &operator.user_creds_signed_by(&rogue_account, &mallory, "mallory"),
    );
    refused(&s, options().credentials_file(&rogue).unwrap());
}

#[test]
fn permission_violations_are_typed_and_the_connection_stays_up() {
    let s = Configured::start(
        "authorization { users: [ { user: limited, password: p, permissions: {\n\
           publish: { allow: [\"allowed.>\"] }\n\
           subscribe: { allow: [\"allowed.>\"] }\n\
         } } ] }\n",
    );
    let url = s.server.url();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = events.clone();
    courier::run(async move {
        let client = options()
            .user_and_password("limited", "p")
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("allowed.x").await.unwrap();
        let _denied_sub = client.subscribe("secret.x").await.unwrap();
        client.publish("denied.topic", "no").await.unwrap();
        client.flush().await.unwrap();
        client.publish("allowed.x", "still up").await.unwrap();
        client.flush().await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&msg.payload[..], b"still up");
        assert_eq!(client.connection_state(), nats::ConnectionState::Connected);
        client.close().await.unwrap();
    });
    let events = events.borrow();
    let violations: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::PermissionViolation { operation, subject } => {
                Some((operation.clone(), subject.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(
        violations.contains(&("subscribe".to_string(), "secret.x".to_string())),
        "{events:?}"
    );
    assert!(
        violations.contains(&("publish".to_string(), "denied.topic".to_string())),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "{events:?}"
    );
}

#[test]
fn a_reconnect_signs_the_new_servers_nonce() {
    let user = nkeys::KeyPair::new_user();
    let mut s = Configured::start(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let url = s.server.url();
    let seed = user.seed().unwrap();
    courier::run(async {
        let client = options()
            .max_reconnects(None)
            .nkey_auth(NkeyAuth::from_seed(&seed).unwrap())
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("resign").await.unwrap();
        client.flush().await.unwrap();
        // A new server process sends a new nonce: only a fresh signature
        // of it is accepted.
        s.server.restart();
        tokio::time::timeout(Duration::from_secs(15), async {
            while client.flush().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("re-authenticated after the restart");
        client.publish("resign", "after").await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&msg.payload[..], b"after");
        assert_eq!(client.statistics().reconnects, 1);
        let conns = s.connz();
        assert_eq!(
            conns["connections"][0]["authorized_user"],
            user.public_key()
        );
        client.close().await.unwrap();
    });
}

#[test]
fn refused_on_reconnect_is_reported_once_and_retried_with_backoff() {
    let user = nkeys::KeyPair::new_user();
    let allow = format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    );
    let deny = format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        nkeys::KeyPair::new_user().public_key()
    );
    let mut s = Configured::start(&allow);
    let config = s.dir.path().join("server.conf");
    let url = s.server.url();
    let seed = user.seed().unwrap();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = events.clone();
    courier::run(async {
        let client = options()
            .max_reconnects(None)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .nkey_auth(NkeyAuth::from_seed(&seed).unwrap())
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        // The server comes back without our key: every attempt is refused.
        std::fs::write(&config, &deny).unwrap();
        s.server.restart();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let attempts = |events: &[Event]| {
            events
                .iter()
                .filter(|e| matches!(e, Event::ConnectFailed { .. }))
                .count()
        };
        let refused_attempts = attempts(&events.borrow());
        // Backoff (20 ms doubling to 100 ms, plus jitter) allows at most
        // ~1500/20 attempts; a tight loop would make thousands.
        assert!(
            (2..=75).contains(&refused_attempts),
            "{refused_attempts} attempts in 1.5 s"
        );
        // Allowed again: the client gets back in by itself.
        std::fs::write(&config, &allow).unwrap();
        s.server.restart();
        tokio::time::timeout(Duration::from_secs(15), async {
            while client.flush().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("reconnected once the key is allowed again");
        client.close().await.unwrap();
    });
    let events = events.borrow();
    let reports = events
        .iter()
        .filter(|e| matches!(e, Event::AuthorizationViolation { .. }))
        .count();
    assert_eq!(reports, 1, "{events:?}");
}

/// The blocking embedded-io driver, as on a device, authenticating with an
/// NKey through the core's `Authenticator` (here the runtime's `NkeyAuth`;
/// a device would wrap its own Ed25519 code or secure element).
#[test]
fn the_blocking_driver_signs_the_nonce_with_an_nkey() {
    use courier_core::drivers::{blocking::NatsClient, Clock, DriverOptions, Error as DriverError};
    use courier_core::time::Instant;
    use embedded_io_adapters::std::FromStd;

    struct HostClock(std::time::Instant);
    impl Clock for HostClock {
        fn now(&self) -> Instant {
            Instant::from_millis(self.0.elapsed().as_millis() as u64)
        }
    }
    type Device = NatsClient<
        FromStd<std::net::TcpStream>,
        HostClock,
        [u8; 2048],
        [u8; 2048],
        2,
        1,
        courier_core::nats::ServerInfo,
        Option<NkeyAuth>,
    >;
    let user = nkeys::KeyPair::new_user();
    let s = Configured::start(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let connect = |seed: &str| {
        let socket = std::net::TcpStream::connect(s.server.addr()).unwrap();
        let mut device: Device = NatsClient::new(
            FromStd::new(socket),
            HostClock(std::time::Instant::now()),
            courier_core::nats::ConnectOptions::default(),
            DriverOptions::default(),
            [0; 2048],
            [0; 2048],
        );
        device.set_authenticator(Some(NkeyAuth::from_seed(seed).unwrap()));
        device.connect().map(|_| device)
    };
    let mut device = connect(&user.seed().unwrap()).expect("the right NKey is accepted");
    device.publish("device.signed", b"hello").unwrap();
    device
        .flush(courier_core::time::Duration::from_secs(5), |_| {})
        .unwrap();
    assert_eq!(
        s.connz()["connections"][0]["authorized_user"],
        user.public_key()
    );
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    match connect(&stranger) {
        Err(DriverError::Nats(courier_core::nats::Error::AuthorizationViolation)) => {}
        Err(e) => panic!("expected AuthorizationViolation, got {e}"),
        Ok(_) => panic!("a stranger's NKey was accepted"),
    }
}
