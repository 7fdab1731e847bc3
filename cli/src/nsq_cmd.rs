//! NSQ commands over courier's NSQ producer and consumer: publish to nsqd,
//! tail a topic (as nsq_tail does), and nsqd / nsqlookupd info over HTTP.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use courier::layers::LayerError;
use courier::nsq::{
    Config, Consumer, Error, ErrorCode, Handler, HandlerError, LookupNodes, Message, Producer,
    ServerNodes, TlsConfig,
};
use tokio::sync::Notify;

use crate::args::{AuthArgs, InfoArgs, NsqArgs, PubArgs, TailArgs};
use crate::fail::{unreachable, CliResult, Failure, Kind};
use crate::output::{JsonPayload, NsqDelivery, Printer};
use crate::payload::{Pacer, PayloadSource};
use crate::progress;
use crate::target::HostPort;

/// How long a TCP connect or an HTTP request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Failed reconnects in a row before `pub` gives up (backoff 100 ms
/// doubling to 2 s, jittered: about 10 s in all).
const PUB_RECONNECT_ATTEMPTS: usize = 9;

/// Where `tail` finds nsqd nodes.
pub enum Source {
    /// One nsqd, given by its TCP address.
    Nsqd(HostPort),
    /// Every nsqd that nsqlookupd (HTTP address) knows for the topic.
    Lookupd(HostPort),
}

fn config(auth: &AuthArgs, layers: &NsqArgs) -> CliResult<Config> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read {what} {}: {e}", path.display())))
    };
    let tls = match &layers.tls_ca {
        None => None,
        Some(ca) => {
            let mut tls = TlsConfig::new()
                .ca_pem(&read(ca, "--tls-ca")?)
                .map_err(|e| Failure::usage(format!("--tls-ca {}: {e}", ca.display())))?;
            if let (Some(cert), Some(key)) = (&layers.tls_cert, &layers.tls_key) {
                tls = tls
                    .client_cert_pem(&read(cert, "--tls-cert")?, &read(key, "--tls-key")?)
                    .map_err(|e| {
                        Failure::usage(format!(
                            "--tls-cert {} / --tls-key {}: {e}",
                            cert.display(),
                            key.display()
                        ))
                    })?;
            }
            Some(tls)
        }
    };
    Ok(Config {
        client_id: Some("courier-cli".into()),
        user_agent: concat!("courier-cli/", env!("CARGO_PKG_VERSION")).into(),
        connect_timeout: TIMEOUT,
        // A restarted nsqd is reconnected to within a fraction of a second;
        // one that stays away ends `pub` (exit 3) after about 10 s of
        // retrying.
        reconnect_delay: Duration::from_millis(100),
        reconnect_delay_max: Duration::from_secs(2),
        reconnect_attempts: Some(PUB_RECONNECT_ATTEMPTS),
        auth_secret: auth.token.as_ref().map(|t| t.as_bytes().to_vec()),
        tls,
        compression: layers.compression.unwrap_or_default(),
        ..Config::default()
    })
}

/// Turns an NSQ client error about nsqd `what` (`host:port`) into a
/// one-line failure with the right exit code.
fn failure(error: Error, what: &str) -> Failure {
    match error {
        Error::InvalidAddress { addr, reason } => {
            Failure::usage(format!("bad address {addr:?}: {reason}"))
        }
        Error::Unreachable { attempts } => diagnose(what, &attempts),
        Error::AuthRequired => Failure::new(
            Kind::Auth,
            format!("nsq://{what} requires AUTH; give the secret with --token (or COURIER_TOKEN)"),
        ),
        Error::Server(e)
            if matches!(
                e.code,
                ErrorCode::AuthFailed | ErrorCode::Unauthorized | ErrorCode::AuthFirst
            ) =>
        {
            Failure::new(
                Kind::Auth,
                format!(
                    "nsq://{what} refused the credentials ({e}); give a secret its auth server \
                     accepts with --token (or COURIER_TOKEN)"
                ),
            )
        }
        Error::NotNsqd { detail, .. } => Failure::new(
            Kind::Unreachable,
            format!(
                "nsq://{what} accepted the connection but does not speak the NSQ TCP protocol \
                 ({detail}); is it an nsqd TCP port? (nsqd listens on 4150 by default, 4151 is \
                 its HTTP port)"
            ),
        ),
        Error::TimedOut {
            operation: "nsqd handshake",
            after,
        } => Failure::new(
            Kind::Unreachable,
            format!(
                "nsq://{what} accepts TCP connections but did not finish the NSQ handshake \
                 within {}; is it an nsqd TCP port, and is nsqd responsive?",
                humantime::format_duration(after)
            ),
        ),
        Error::Layer(LayerError::Tls(rustls::Error::InvalidCertificate(e))) => {
            Failure::other(format!(
                "nsq://{what}: TLS: the server's certificate was refused ({e:?}); pass \
                 --tls-ca FILE with the CA that signed it, and connect by the name the \
                 certificate is for"
            ))
        }
        Error::Layer(LayerError::Tls(rustls::Error::AlertReceived(alert))) => {
            Failure::other(format!(
                "nsq://{what}: TLS: nsqd aborted the handshake ({alert:?}); if it requires a \
                 client certificate, pass --tls-cert FILE and --tls-key FILE"
            ))
        }
        Error::Layer(e @ (LayerError::Tls(_) | LayerError::TlsConfig(_))) => Failure::other(
            format!("nsq://{what}: {e} (check --tls-ca, --tls-cert and --tls-key)"),
        ),
        Error::Server(e) if e.code == ErrorCode::Invalid && e.text.contains("TLS required") => {
            Failure::other(format!(
                "nsq://{what} requires TLS: pass --tls-ca FILE with the CA that signed its \
                 certificate"
            ))
        }
        Error::Server(e) => Failure::other(format!("nsq://{what} refused the command: {e}")),
        e => Failure::other(format!("nsq://{what}: {e}")),
    }
}

/// Why no nsqd could be used: a plain TCP connect tells a dead server
/// (refused, timed out) from one that refused the session.
fn diagnose(addr: &str, attempts: &[String]) -> Failure {
    let resolved = addr.to_socket_addrs().map(|mut a| a.next());
    let shown = format!("nsq://{addr}");
    match resolved {
        Err(e) => Failure::new(
            Kind::Unreachable,
            format!("cannot reach {shown}: cannot resolve it ({e}); check the host name"),
        ),
        Ok(None) => Failure::new(
            Kind::Unreachable,
            format!("cannot reach {shown}: it resolves to no address"),
        ),
        Ok(Some(sock)) => match TcpStream::connect_timeout(&sock, TIMEOUT) {
            Err(e) => unreachable(&shown, &e),
            Ok(_) => Failure::other(format!(
                "{shown} accepts TCP connections but the NSQ session failed: {}",
                attempts.join("; ")
            )),
        },
    }
}

fn no_user_password(auth: &AuthArgs) -> CliResult {
    if auth.user.is_some() || auth.password.is_some() {
        return Err(Failure::usage(
            "NSQ has no user/password; give the AUTH secret with --token",
        ));
    }
    Ok(())
}

/// `courier pub nsq://host:port TOPIC ...`: PUB each message, or MPUB
/// batches of `--batch`; every publish waits for nsqd's OK.
pub fn publish(target: &HostPort, args: &PubArgs) -> CliResult {
    no_user_password(&args.auth)?;
    if args.resend_unconfirmed || args.allow_unconfirmed {
        return Err(Failure::usage(
            "--resend-unconfirmed and --allow-unconfirmed are for NATS (nats://): NSQ publishes \
             are confirmed one by one and re-sent after a reconnect",
        ));
    }
    if !args.header.is_empty() {
        return Err(Failure::usage(
            "NSQ messages have no headers; drop --header",
        ));
    }
    if let Some(topic) = &target.topic {
        if topic != &args.subject {
            return Err(Failure::usage(format!(
                "the URL names topic {topic:?} but the argument says {:?}; give one",
                args.subject
            )));
        }
    }
    courier_core::nsq::commands::validate_name(
        &args.subject,
        courier_core::nsq::commands::NameKind::Topic,
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    let batch = args.batch.max(1);
    let mut source = PayloadSource::open(args)?;
    let addr = target.addr();
    crate::in_runtime(async {
        let producer = Producer::new([addr.clone()], config(&args.auth, &args.nsq)?)
            .map_err(|e| failure(e, &addr))?;
        producer.connect().await.map_err(|e| failure(e, &addr))?;
        let bar = progress::bar(source.total(), "publishing");
        let mut pacer = Pacer::new(args.rate);
        let mut sent = 0u64;
        let mut bodies: Vec<Vec<u8>> = Vec::with_capacity(batch);
        let topic = args.subject.as_str();
        loop {
            // Wait for the first message of a batch, then take only what is
            // at hand: a slow stdin sends small batches rather than none.
            let done = match source.next_payload().await? {
                Some(p) => {
                    bodies.push(p.to_vec());
                    false
                }
                None => true,
            };
            // (Nothing at hand is not the end: the next round's wait tells.)
            while !done && bodies.len() < batch {
                match source.next_ready().await? {
                    Some(p) => bodies.push(p.to_vec()),
                    None => break,
                }
            }
            if !bodies.is_empty() {
                pacer.wait(sent).await;
                let result = if let Some(delay) = args.defer {
                    producer
                        .deferred_publish(topic, delay.into(), &bodies[0])
                        .await
                } else if batch == 1 {
                    producer.publish(topic, &bodies[0]).await
                } else {
                    producer.multi_publish(topic, &bodies).await
                };
                result.map_err(|e| {
                    let mut f = failure(e, &addr);
                    f.message.push_str(&format!(
                        " ({sent} message{} confirmed by nsqd before this; the {} in this \
                         publish {} not confirmed)",
                        if sent == 1 { " was" } else { "s were" },
                        bodies.len(),
                        if bodies.len() == 1 { "was" } else { "were" },
                    ));
                    f
                })?;
                sent += bodies.len() as u64;
                bar.inc(bodies.len() as u64);
                bodies.clear();
            }
            if done {
                break;
            }
        }
        bar.finish_and_clear();
        let resent = producer.resent_publishes();
        producer.stop().await;
        if resent > 0 {
            // At-least-once: a command caught by a lost connection was sent
            // again; nsqd may hold both copies.
            eprintln!(
                "courier: {resent} publish command{} sent again after nsqd reconnects; \
                 up to {} message{} may be duplicated",
                if resent == 1 { " was" } else { "s were" },
                resent * batch as u64,
                if resent * batch as u64 == 1 { "" } else { "s" },
            );
        }
        if progress::interactive() {
            eprintln!("published {sent} message(s) to topic {topic:?} on nsq://{addr}");
        }
        Ok(())
    })
}

/// The tail's handler: prints each message, FINs it, and signals when
/// `--count` messages were printed (later ones are requeued untouched).
struct Tail {
    printer: RefCell<Printer>,
    limit: Option<u64>,
    printed: Cell<u64>,
    stdout_closed: Cell<bool>,
    done: Rc<Notify>,
}

impl Handler for Tail {
    type Class = ();
    type Context = ();

    fn classify(&self, _: &Message) -> Option<((), ())> {
        Some(((), ()))
    }

    async fn handle(&self, _: (), _: (), m: &Message) -> Result<(), HandlerError> {
        let enough = self.limit.is_some_and(|n| self.printed.get() >= n);
        if enough || self.stdout_closed.get() {
            // Not ours to take: another reader of a named channel gets it.
            return Err(HandlerError::requeue_after(
                "tail already printed what it was asked for",
                Duration::ZERO,
            ));
        }
        let info = m.connection();
        let delivery = NsqDelivery {
            topic: info.topic.as_deref().unwrap_or(""),
            channel: info.channel.as_deref().unwrap_or(""),
            id: m.id().as_bytes(),
            attempts: m.attempts(),
            timestamp_ns: m.timestamp_ns(),
            body: JsonPayload::new(m.body()),
        };
        match self.printer.borrow_mut().nsq(&delivery, m.body()) {
            Ok(()) => {}
            Err(e) => {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("courier: cannot write to stdout: {e}");
                }
                self.stdout_closed.set(true);
                self.done.notify_one();
                return Err(HandlerError::requeue_after("stdout closed", Duration::ZERO));
            }
        }
        self.printed.set(self.printed.get() + 1);
        if self.limit.is_some_and(|n| self.printed.get() >= n) {
            self.done.notify_one();
        }
        Ok(())
    }
}

/// `courier tail nsq://host:port/TOPIC` or `nsqlookupd://host:port/TOPIC`.
pub fn tail(source: Source, args: &TailArgs) -> CliResult {
    no_user_password(&args.auth)?;
    let (target, lookupd) = match &source {
        Source::Nsqd(t) => (t, false),
        Source::Lookupd(t) => (t, true),
    };
    let topic = target.topic.clone().ok_or_else(|| {
        Failure::usage(format!(
            "name the topic in the URL path: {}://{}/TOPIC",
            if lookupd { "nsqlookupd" } else { "nsq" },
            target.addr()
        ))
    })?;
    let channel = match &args.channel {
        Some(c) => {
            courier_core::nsq::commands::validate_name(
                c,
                courier_core::nsq::commands::NameKind::Channel,
            )
            .map_err(|e| Failure::usage(e.to_string()))?;
            c.clone()
        }
        // As nsq_tail: a fresh ephemeral channel, gone when we disconnect,
        // so tailing takes no message away from real consumers.
        None => format!("tail{:06}#ephemeral", fastrand_u32() % 1_000_000),
    };
    if lookupd {
        // The consumer polls nsqlookupd in the background; check it answers
        // first so an unreachable one is an error, not silence.
        http_get(
            &format!("http://{}/ping", target.addr()),
            "nsqlookupd",
            target,
        )?;
    }
    let addr = target.addr();
    let max_in_flight = match args.count {
        Some(n) => args.max_in_flight.min(u32::try_from(n).unwrap_or(u32::MAX)),
        None => args.max_in_flight,
    }
    .max(1);
    let done = Rc::new(Notify::new());
    let handler = Tail {
        printer: RefCell::new(Printer::new(args.output.format())),
        limit: args.count,
        printed: Cell::new(0),
        stdout_closed: Cell::new(false),
        done: done.clone(),
    };
    crate::in_runtime(async {
        let mut cfg = config(&args.auth, &args.nsq)?;
        // Discovery: look again soon for nsqd nodes that get the topic later.
        cfg.lookup_poll_interval = Duration::from_secs(15);
        let couplet = [(topic.clone(), channel.clone())];
        let builder = if lookupd {
            Consumer::builder(
                couplet,
                LookupNodes::new([format!("http://{addr}")]),
                max_in_flight,
                handler,
            )
        } else {
            Consumer::builder(
                couplet,
                ServerNodes::new([addr.clone()]),
                max_in_flight,
                handler,
            )
        };
        let consumer = builder
            .config(cfg)
            .start()
            .await
            .map_err(|e| failure(e, &addr))?;
        crate::show_runtime_warnings();
        eprintln!(
            "tailing topic {topic:?} on channel {channel:?} from {}",
            if lookupd {
                format!(
                    "nsqlookupd://{addr} ({} nsqd now)",
                    consumer.connection_count()
                )
            } else {
                format!("nsq://{addr}")
            }
        );
        // Ctrl-C or a polite kill: stop gracefully, so messages in flight
        // on a named channel are FIN'd or requeued, not left to time out.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| Failure::other(format!("cannot watch SIGTERM: {e}")))?;
        tokio::select! {
            _ = done.notified() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        consumer.stop().await;
        Ok(())
    })
}

fn fastrand_u32() -> u32 {
    // Process id and clock nanoseconds: enough to keep concurrent tails
    // apart without pulling in a random number crate.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

/// GETs `url`; transport failures are "unreachable", HTTP errors "other".
fn http_get(url: &str, what: &str, target: &HostPort) -> CliResult<String> {
    let agent = ureq::AgentBuilder::new().timeout(TIMEOUT).build();
    match agent.get(url).call() {
        Ok(resp) => resp
            .into_string()
            .map_err(|e| Failure::other(format!("{url}: cannot read the answer: {e}"))),
        Err(ureq::Error::Status(code, resp)) => Err(Failure::other(format!(
            "{url} answered HTTP {code}: {}",
            resp.into_string().unwrap_or_default().trim()
        ))),
        Err(ureq::Error::Transport(t)) => {
            // Name the cause the way the NATS side does (refused, timed out).
            let shown = format!("{what} at http://{}", target.addr());
            match (target.host.as_str(), target.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
            {
                Some(sock) => match TcpStream::connect_timeout(&sock, TIMEOUT) {
                    Err(e) => Err(unreachable(&shown, &e)),
                    Ok(_) => Err(Failure::new(Kind::Unreachable, format!("{shown}: {t}"))),
                },
                None => Err(Failure::new(
                    Kind::Unreachable,
                    format!("cannot reach {shown}: cannot resolve the host; check the name"),
                )),
            }
        }
    }
}

fn print_json(body: &str, url: &str) -> CliResult {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Failure::other(format!("{url} did not answer JSON: {e}")))?;
    let pretty = serde_json::to_string_pretty(&value).map_err(|e| Failure::other(e.to_string()))?;
    match writeln!(std::io::stdout().lock(), "{pretty}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::other(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// `courier info nsq://...`: nsqd's `/stats?format=json`. nsqd's TCP
/// protocol does not tell its HTTP port, so it is `--http-address` or, by
/// nsqd's convention (4150/4151), the TCP port + 1.
pub fn nsqd_info(target: &HostPort, args: &InfoArgs) -> CliResult {
    let http = match &args.http_address {
        Some(a) => crate::target::Target::parse(&format!("nsq://{a}")).and_then(|t| match t {
            crate::target::Target::Nsqd(h) => Ok(h),
            _ => Err(Failure::usage(format!("bad --http-address {a:?}"))),
        })?,
        None => {
            let port = target.port.checked_add(1).ok_or_else(|| {
                Failure::usage("TCP port 65535 has no +1: give --http-address HOST:PORT")
            })?;
            eprintln!(
                "note: asking nsqd's HTTP port {port} (TCP port + 1); pass --http-address \
                 HOST:PORT if it listens elsewhere"
            );
            HostPort {
                host: target.host.clone(),
                port,
                topic: None,
            }
        }
    };
    let mut url = format!("http://{}/stats?format=json", http.addr());
    if let Some(topic) = &target.topic {
        url.push_str("&topic=");
        url.push_str(topic);
    }
    let body = http_get(&url, "nsqd's HTTP API", &http)?;
    print_json(&body, &url)
}

/// `courier info nsqlookupd://...`: the nsqd nodes it knows (`/nodes`), or
/// the producers of the URL's topic (`/lookup?topic=`).
pub fn lookupd_info(target: &HostPort) -> CliResult {
    let url = match &target.topic {
        Some(topic) => format!("http://{}/lookup?topic={topic}", target.addr()),
        None => format!("http://{}/nodes", target.addr()),
    };
    let body = http_get(&url, "nsqlookupd", target).map_err(|f| match &target.topic {
        // nsqlookupd answers 404 TOPIC_NOT_FOUND for a topic no nsqd has.
        Some(topic) if f.message.contains("HTTP 404") => Failure::other(format!(
            "nsqlookupd://{} knows no nsqd with topic {topic:?} (yet): publish to it first",
            target.addr()
        )),
        _ => f,
    })?;
    print_json(&body, &url)
}
