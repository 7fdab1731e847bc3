//! Helpers shared by the NSQ integration tests: a recording handler, a
//! poll-until helper and TLS certificates generated with rcgen.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::nsq::{Handler, HandlerError, Message};

/// What one delivery looked like.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: Vec<u8>,
    pub attempts: u16,
    pub at: Instant,
    pub channel: String,
}

/// How the recording handler behaves.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Sleep this long in the handler (to hold messages in flight).
    pub hold: Duration,
    /// Fail (REQ with zero delay) while attempts < this.
    pub fail_until_attempt: u16,
    /// Never finish: return without FIN (auto-finish off in the config).
    pub never_finish: bool,
    /// Only record, do not keep bodies (large runs).
    pub count_only: bool,
}

/// Records every delivery, counts concurrent handlers.
#[derive(Default)]
pub struct Recorder {
    pub behaviour: Behaviour,
    pub seen: RefCell<Vec<Seen>>,
    pub counts: RefCell<HashMap<(String, Vec<u8>), u32>>,
    pub handled: Cell<u64>,
    pub in_flight: Cell<u32>,
    pub max_in_flight: Cell<u32>,
    pub gave_up: RefCell<Vec<(Vec<u8>, u16)>>,
}

impl Recorder {
    pub fn new(behaviour: Behaviour) -> Self {
        Recorder {
            behaviour,
            ..Default::default()
        }
    }
}

impl Handler for Recorder {
    type Class = ();
    type Context = ();

    fn classify(&self, _: &Message) -> Option<((), ())> {
        Some(((), ()))
    }

    async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
        let now_in = self.in_flight.get() + 1;
        self.in_flight.set(now_in);
        self.max_in_flight.set(self.max_in_flight.get().max(now_in));
        let channel = m.connection().channel.clone().unwrap_or_default();
        if !self.behaviour.count_only {
            self.seen.borrow_mut().push(Seen {
                body: m.body().to_vec(),
                attempts: m.attempts(),
                at: Instant::now(),
                channel: channel.clone(),
            });
        }
        *self
            .counts
            .borrow_mut()
            .entry((channel, m.body().to_vec()))
            .or_default() += 1;
        if !self.behaviour.hold.is_zero() {
            tokio::time::sleep(self.behaviour.hold).await;
        }
        self.handled.set(self.handled.get() + 1);
        self.in_flight.set(self.in_flight.get() - 1);
        if m.attempts() < self.behaviour.fail_until_attempt {
            return Err(HandlerError::requeue_after("told to fail", Duration::ZERO));
        }
        Ok(())
    }

    fn give_up(&self, m: &Message) {
        self.gave_up
            .borrow_mut()
            .push((m.body().to_vec(), m.attempts()));
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns
/// whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A generated CA, a server certificate for 127.0.0.1/localhost signed by
/// it, and a client certificate signed by it; PEM files in a temp dir.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub ca_file: PathBuf,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

pub fn generate_certs() -> Certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "courier test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let mut server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "nsqd");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "courier client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let ca_file = write("ca.pem", &ca.pem());
    let server_cert = write("server.pem", &server.pem());
    let server_key = write("server.key", &server_key.serialize_pem());
    Certs {
        ca_pem: ca.pem(),
        ca_file,
        server_cert,
        server_key,
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        dir,
    }
}

/// A unique topic name per test.
pub fn topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Shorthand for `Rc::new`.
pub fn rc<T>(t: T) -> Rc<T> {
    Rc::new(t)
}

/// Starts nsqd, retrying on fresh ports when it exits at start: the free
/// port the harness picked can be taken (by another test's outgoing
/// connection, say) before nsqd binds it.
pub fn nsqd(args: &[&str]) -> courier_tests::Nsqd {
    for attempt in 1.. {
        match std::panic::catch_unwind(|| courier_tests::Nsqd::start_with(args)) {
            Ok(n) => return n,
            Err(e) if attempt >= 4 => std::panic::resume_unwind(e),
            Err(_) => eprintln!("nsqd did not start (attempt {attempt}); retrying on new ports"),
        }
    }
    unreachable!()
}

/// A minimal nsqd auth server (`--auth-http-address`): secret `good` may
/// publish and subscribe everything, any other secret is refused. Runs on
/// a thread until the process ends; returns its `127.0.0.1:PORT`.
pub fn auth_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let (status, body) = if line.contains("secret=good") {
                (
                    "200 OK",
                    r#"{"ttl":3600,"identity":"courier-test","identity_url":"http://example.invalid","authorizations":[{"permissions":["subscribe","publish"],"topic":".*","channels":[".*"]}]}"#,
                )
            } else {
                ("403 Forbidden", r#"{"message":"bad secret"}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}
