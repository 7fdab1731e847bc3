//! NATS commands over the courier async client: pub, sub, req, reply, info.

use std::io::{BufRead, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use courier::nats::{Client, ConnectOptions, Error, Event, HeaderMap, Subscriber};
use courier::reconnect::RepeatFilter;

use crate::args::{AuthArgs, InfoArgs, PubArgs, ReplyArgs, ReqArgs, SubArgs, TlsArgs};
use crate::fail::{unreachable, CliResult, Failure, Kind};
use crate::output::{nats_json, Format, Printer};
use crate::payload::{Pacer, PayloadSource};
use crate::progress;
use crate::target::NatsTarget;

/// How long one connection attempt (TCP + handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects for command `command` (shown as the client name on the server).
/// Long-running commands (`sub`, `reply`) reconnect forever, as a person
/// watching a subject expects after a server restart.
async fn connect(
    target: &NatsTarget,
    command: &str,
    auth: &AuthArgs,
    tls: &TlsArgs,
) -> CliResult<Client> {
    connect_with(target, command, auth, tls, ConnectOptions::new()).await
}

/// [`connect`] starting from `options`.
async fn connect_with(
    target: &NatsTarget,
    command: &str,
    auth: &AuthArgs,
    tls: &TlsArgs,
    options: ConnectOptions,
) -> CliResult<Client> {
    let long_running = matches!(command, "sub" | "reply");
    let mut options = options
        .name(format!("courier-cli {command}"))
        .connect_timeout(CONNECT_TIMEOUT)
        .max_reconnects(if long_running { None } else { Some(60) });
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user, password);
    }
    if let Some(token) = &auth.token {
        options = options.token(token);
    }
    options = crate::nats_security::apply(options, auth, tls).map_err(|e| failure(e, target))?;
    options
        .connect(&target.urls)
        .await
        .map_err(|e| failure(e, target))
}

/// Turns a client error into a one-line failure with the right exit code.
pub fn failure(error: Error, target: &NatsTarget) -> Failure {
    match error {
        Error::InvalidUrl { url, reason } => Failure::usage(format!("bad URL {url:?}: {reason}")),
        // TLS failed (certificate refused, TLS required on one side only):
        // the client's reason says which flag to give.
        Error::Unreachable { attempts } if attempts.iter().any(|a| a.contains(": TLS ")) => {
            Failure::other(attempts.join("; "))
        }
        Error::Unreachable { attempts } => diagnose_unreachable(target, &attempts),
        Error::TimedOut {
            operation: "connect",
            ..
        } => diagnose_unreachable(target, &[]),
        Error::AuthorizationViolation { server } => Failure::new(
            Kind::Auth,
            format!(
                "{server} refused the credentials (authorization violation); give the right \
                 --user/--password or --token (or user:password@ / token@ in the URL)"
            ),
        ),
        Error::NoResponders { subject } => Failure::other(format!(
            "no responders on {subject:?}: nothing subscribes to it (start one with \
             `courier reply URL {subject}`)"
        )),
        Error::TimedOut { operation, after } => Failure::other(format!(
            "{operation} timed out after {}; the server or the responder is slow, raise \
             --timeout or check it",
            humantime::format_duration(after)
        )),
        // A bad subject, queue group or header is the caller's argument.
        Error::Protocol(
            e @ (courier_core::nats::Error::InvalidSubject(_)
            | courier_core::nats::Error::InvalidHeader(_)),
        ) => Failure::usage(e.to_string()),
        e => Failure::other(e.to_string()),
    }
}

/// Finds out why no server could be reached by trying a plain TCP connect
/// to each, so the message names the cause (refused, timed out, no such
/// host) instead of the client's retry log.
fn diagnose_unreachable(target: &NatsTarget, attempts: &[String]) -> Failure {
    let mut first = None;
    for ((host, port), shown) in target.endpoints.iter().zip(&target.shown) {
        let failure = match (host.as_str(), *port).to_socket_addrs() {
            Err(e) => Failure::new(
                Kind::Unreachable,
                format!("cannot reach {shown}: cannot resolve {host:?} ({e}); check the host name"),
            ),
            Ok(mut addrs) => match addrs.next() {
                None => Failure::new(
                    Kind::Unreachable,
                    format!("cannot reach {shown}: {host:?} resolves to no address"),
                ),
                Some(addr) => match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                    Err(e) => unreachable(shown, &e),
                    Ok(_) => Failure::new(
                        Kind::Unreachable,
                        format!(
                            "{shown} accepts TCP connections but the NATS handshake failed ({}); \
                             is it a NATS server?",
                            if attempts.is_empty() {
                                "timed out".to_string()
                            } else {
                                attempts.join("; ")
                            }
                        ),
                    ),
                },
            },
        };
        first.get_or_insert(failure);
    }
    first.unwrap_or_else(|| Failure::new(Kind::Unreachable, "no server could be reached"))
}

fn parse_headers(pairs: &[String]) -> CliResult<Option<HeaderMap>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = HeaderMap::new();
    for pair in pairs {
        let (name, value) = pair.split_once(':').ok_or_else(|| {
            Failure::usage(format!("bad --header {pair:?}: write it as NAME:VALUE"))
        })?;
        map.insert(name.trim(), value.trim_start())
            .map_err(|e| Failure::usage(format!("bad --header {pair:?}: {e}")))?;
    }
    Ok(Some(map))
}

/// Stops quietly when stdout was closed (`courier sub ... | head -1`).
fn printed(result: std::io::Result<()>) -> CliResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::other(format!("cannot write to stdout: {e}"))),
    }
}

/// `courier pub nats://...`
pub async fn publish(target: &NatsTarget, args: &PubArgs) -> CliResult {
    let nsq_only = &args.nsq;
    if args.defer.is_some() || args.batch != 1 || nsq_only.compression.is_some() {
        return Err(Failure::usage(
            "--defer, --batch and --compression are for NSQ (nsq://)",
        ));
    }
    let headers = parse_headers(&args.header)?;
    let mut source = PayloadSource::open(args)?;
    let options = ConnectOptions::new().resend_unconfirmed(args.resend_unconfirmed);
    let client = connect_with(target, "pub", &args.auth, &args.nsq.tls(), options).await?;
    let discarded = count_discarded(&client);
    let bar = progress::bar(source.total(), "publishing");
    let mut pacer = Pacer::new(args.rate);
    let mut sent = 0u64;
    let mut bytes = 0u64;
    while let Some(payload) = source.next_payload().await? {
        pacer.wait(sent).await;
        let result = match &headers {
            Some(h) => {
                client
                    .publish_with_headers(&args.subject, h, &payload)
                    .await
            }
            None => client.publish(&args.subject, &payload).await,
        };
        result.map_err(|e| failure(e, target))?;
        sent += 1;
        bytes += payload.len() as u64;
        bar.inc(1);
    }
    // Only a round trip proves the server has every message.
    client.flush().await.map_err(|e| failure(e, target))?;
    bar.finish_and_clear();
    let stats = client.statistics();
    let _ = client.close().await;
    // Written to a server that died before confirming them (and not
    // resent), or dropped in a disconnect: not counted as published.
    let in_doubt = stats.unconfirmed_publishes + discarded.get();
    let confirmed = sent.saturating_sub(in_doubt);
    if stats.resent_publishes > 0 {
        eprintln!(
            "courier: {} publishes were sent again after a reconnect (--resend-unconfirmed); \
             subscribers may see up to that many duplicates",
            stats.resent_publishes
        );
    }
    if progress::interactive() || in_doubt > 0 {
        eprintln!(
            "published {confirmed} message{} ({bytes} bytes queued) to {:?} on {target}",
            if confirmed == 1 { "" } else { "s" },
            args.subject
        );
    }
    if in_doubt > 0 {
        let message = format!(
            "{in_doubt} of {sent} publishes were written to a server that went away before \
             confirming them and may be lost (core NATS is at-most-once); pass \
             --resend-unconfirmed to send them again after the reconnect (duplicates possible), \
             or --allow-unconfirmed to accept the loss"
        );
        if args.allow_unconfirmed {
            eprintln!("courier: warning: {message}");
        } else {
            return Err(Failure::other(message));
        }
    }
    Ok(())
}

/// Counts publishes a disconnect discarded (never written), from the
/// client's events.
fn count_discarded(client: &Client) -> std::rc::Rc<std::cell::Cell<u64>> {
    let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let seen = count.clone();
    let mut events = client.events();
    courier::spawn(async move {
        use futures::StreamExt;
        while let Some(event) = events.next().await {
            if let Event::Disconnected {
                discarded_publishes,
                ..
            } = event
            {
                seen.set(seen.get() + discarded_publishes as u64);
            }
        }
    });
    count
}

async fn subscribe(
    client: &Client,
    target: &NatsTarget,
    subject: &str,
    queue: Option<&str>,
) -> CliResult<Subscriber> {
    let sub = match queue {
        Some(group) => client.queue_subscribe(subject, group).await,
        None => client.subscribe(subject).await,
    }
    .map_err(|e| failure(e, target))?;
    // The SUB is on the server once a round trip is done: only then is it
    // true that we are subscribed (scripts wait for this line).
    client.flush().await.map_err(|e| failure(e, target))?;
    Ok(sub)
}

/// Long runs tell the person on stderr when the connection drops and comes
/// back, and when messages were dropped (slow consumer); the client
/// reconnects by itself, so these are notes, not failures.
///
/// The same note is said once, then counted: a server that keeps failing
/// right after the handshake gives one line per kind of failure per
/// minute (with how often it repeated), not a line per attempt.
fn report_events(client: &Client) {
    let mut events = client.events();
    courier::spawn(async move {
        use futures::StreamExt;
        let mut repeats = RepeatFilter::new(REPEAT_QUIET);
        while let Some(event) = events.next().await {
            let line = match event {
                Event::Connected { .. } | Event::Closed => continue,
                Event::Error { message } if message.starts_with("connecting to") => {
                    format!("{message} (retrying until it is back)")
                }
                e => e.to_string(),
            };
            if let Some(suppressed) = repeats.check(&line, std::time::Instant::now()) {
                if suppressed > 0 {
                    eprintln!("courier: {line} (and {suppressed} more like it in the last minute)");
                } else {
                    eprintln!("courier: {line}");
                }
            }
        }
    });
}

/// A repeated stderr note is shown again at most once per this period.
const REPEAT_QUIET: Duration = Duration::from_secs(60);

/// `courier sub nats://...`
pub async fn sub(target: &NatsTarget, args: &SubArgs) -> CliResult {
    let client = connect(target, "sub", &args.auth, &args.tls).await?;
    report_events(&client);
    let mut sub = subscribe(&client, target, &args.subject, args.queue.as_deref()).await?;
    if let Some(n) = args.count {
        sub.unsubscribe_after(n)
            .await
            .map_err(|e| failure(e, target))?;
    }
    eprintln!(
        "subscribed to {:?}{} on {}",
        args.subject,
        args.queue
            .as_deref()
            .map(|q| format!(" in queue group {q:?}"))
            .unwrap_or_default(),
        client.connected_url().unwrap_or_else(|| target.to_string())
    );
    let mut printer = Printer::new(args.format());
    // Messages go to stdout, so a bar only makes sense when it is counted.
    let bar = match args.count {
        Some(n) => progress::bar(Some(n), "receiving"),
        None => indicatif::ProgressBar::hidden(),
    };
    let mut received = 0u64;
    while let Some(msg) = sub.next().await {
        if !printed(bar.suspend(|| printer.nats(&msg)))? {
            break;
        }
        received += 1;
        bar.inc(1);
        if args.count.is_some_and(|n| received >= n) {
            break;
        }
    }
    bar.finish_and_clear();
    let _ = client.close().await;
    Ok(())
}

/// `courier req nats://...`
pub async fn request(target: &NatsTarget, args: &ReqArgs) -> CliResult {
    let headers = parse_headers(&args.header)?;
    let client = connect(target, "req", &args.auth, &args.tls).await?;
    let reply = client
        .request_with(
            &args.subject,
            headers.as_ref(),
            args.payload.as_bytes(),
            args.timeout.into(),
        )
        .await
        .map_err(|e| failure(e, target))?;
    let mut out = std::io::stdout().lock();
    let written = match args.format() {
        Format::Json => writeln!(out, "{}", nats_json(&reply)),
        Format::Raw | Format::Human => crate::output::raw(&mut out, &reply.payload),
    };
    drop(out);
    printed(written)?;
    let _ = client.close().await;
    Ok(())
}

/// `courier reply nats://...`
pub async fn reply(target: &NatsTarget, args: &ReplyArgs) -> CliResult {
    let client = connect(target, "reply", &args.auth, &args.tls).await?;
    report_events(&client);
    let mut sub = subscribe(&client, target, &args.subject, args.queue.as_deref()).await?;
    eprintln!(
        "replying to requests on {:?} on {} ({})",
        args.subject,
        client.connected_url().unwrap_or_else(|| target.to_string()),
        match &args.respond {
            Some(_) => "with --respond text",
            None => "echoing each request",
        }
    );
    let bar = progress::bar(args.count, "replies");
    let mut answered = 0u64;
    while let Some(msg) = sub.next().await {
        let Some(reply_to) = msg.reply() else {
            bar.suspend(|| {
                eprintln!(
                    "courier: a message on {:?} has no reply subject; not a request, skipped",
                    msg.subject()
                )
            });
            continue;
        };
        let body: &[u8] = match &args.respond {
            Some(text) => text.as_bytes(),
            None => &msg.payload,
        };
        client
            .publish(reply_to, body)
            .await
            .map_err(|e| failure(e, target))?;
        answered += 1;
        bar.inc(1);
        if args.count.is_some_and(|n| answered >= n) {
            break;
        }
    }
    client.flush().await.map_err(|e| failure(e, target))?;
    bar.finish_and_clear();
    let _ = client.close().await;
    Ok(())
}

/// `courier info nats://...`: the first server's INFO line as JSON.
///
/// INFO is the first thing a NATS server sends, before any credentials,
/// so a plain TCP read shows every field the server announces (the client
/// keeps only those it uses).
pub fn info(target: &NatsTarget, _args: &InfoArgs) -> CliResult {
    let (host, port) = &target.endpoints[0];
    let shown = &target.shown[0];
    let addr = (host.as_str(), *port)
        .to_socket_addrs()
        .map_err(|e| unreachable(shown, &e))?
        .next()
        .ok_or_else(|| {
            Failure::new(
                Kind::Unreachable,
                format!("cannot reach {shown}: {host:?} resolves to no address"),
            )
        })?;
    let stream =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| unreachable(shown, &e))?;
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| Failure::other(e.to_string()))?;
    let mut line = Vec::new();
    std::io::BufReader::new(stream.take(1 << 20))
        .read_until(b'\n', &mut line)
        .map_err(|e| {
            Failure::new(
                Kind::Unreachable,
                format!("{shown} sent no INFO ({e}); is it a NATS server?"),
            )
        })?;
    let text = String::from_utf8_lossy(&line);
    let json = text
        .trim_end()
        .strip_prefix("INFO ")
        .or_else(|| text.trim_end().strip_prefix("info "))
        .ok_or_else(|| {
            Failure::other(format!(
                "{shown} did not start with INFO (got {:?}); is it a NATS server?",
                text.chars().take(40).collect::<String>()
            ))
        })?;
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Failure::other(format!("{shown} sent an INFO that is not JSON: {e}")))?;
    let pretty = serde_json::to_string_pretty(&value).map_err(|e| Failure::other(e.to_string()))?;
    printed(writeln!(std::io::stdout().lock(), "{pretty}"))?;
    Ok(())
}
