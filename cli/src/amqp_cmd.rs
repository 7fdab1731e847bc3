//! AMQP 0-9-1 commands (RabbitMQ) over courier's AMQP client:
//!
//! - `courier pub amqp://user:pass@host:5672/vhost ROUTING_KEY [PAYLOAD] [--exchange EX]`:
//!   publishes with publisher confirms; exits 0 only once the broker
//!   confirmed every message (a nack or an unroutable message is a failure).
//! - `courier sub amqp://.../vhost ROUTING_KEY --exchange EX`: a private
//!   queue bound to EX with the key (every message: pub/sub); or
//!   `--queue Q`: consume the queue Q (each message to one consumer).
//!   `--prefetch N` bounds unacked messages; each is acked once printed.
//! - `courier info amqp://...`: logs in and prints what was negotiated.

use std::collections::VecDeque;
use std::io::Write;

use courier::amqp::{Confirmation, ConnectOptions, Connection, DeclareOptions, Error, Message};
use courier_core::amqp::{ConsumeFlags, FieldTable, Properties, PublishFlags};
use serde::Serialize;

use crate::args::{InfoArgs, PubArgs, SubArgs, TlsArgs};
use crate::fail::{CliResult, Failure, Kind};
use crate::output::{Format, JsonPayload};
use crate::payload::{Pacer, PayloadSource};
use crate::progress;

/// Publishes awaiting confirms at once.
const CONFIRM_WINDOW: usize = 256;

/// `amqp://host:port/vhost` without credentials, for messages.
fn shown(url: &str) -> String {
    match courier::amqp::AmqpUrl::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}/{}",
            if u.tls { "amqps" } else { "amqp" },
            u.host,
            u.port,
            u.vhost
        ),
        Err(_) => "the AMQP URL".into(),
    }
}

fn failure(error: Error, url: &str) -> Failure {
    let at = shown(url);
    match &error {
        Error::Url(_) => Failure::usage(error.to_string()),
        Error::Io(e) => Failure::new(Kind::Unreachable, format!("cannot reach {at}: {e}")),
        Error::Tls(_) => Failure::new(Kind::Unreachable, format!("{at}: {error}")),
        Error::Protocol(courier_core::amqp::Error::AccessRefused(_)) => {
            Failure::new(Kind::Auth, format!("{at}: {error}"))
        }
        Error::Protocol(courier_core::amqp::Error::ServerClosed(r))
            if r.code == courier_core::amqp::ReplyCode::NotAllowed =>
        {
            Failure::new(Kind::Auth, format!("{at}: {error}"))
        }
        _ => Failure::other(format!("{at}: {error}")),
    }
}

async fn connect(url: &str, tls: Option<&TlsArgs>) -> CliResult<Connection> {
    let mut o = ConnectOptions::new(url);
    // amqps://: --tls-ca trusts a private CA (else the Mozilla roots),
    // --tls-cert/--tls-key present a client certificate (mutual TLS).
    if let Some(tls) = tls {
        if let Some(ca) = &tls.tls_ca {
            o = o
                .with_ca_file(ca)
                .map_err(|e| Failure::usage(e.to_string()))?;
        }
        if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
            o = o
                .with_client_cert_files(cert, key)
                .map_err(|e| Failure::usage(e.to_string()))?;
        }
    }
    o.connection_name = "courier-cli".into();
    // A command fails fast and says why; long-running services reconnect.
    o.reconnect = false;
    Connection::connect_with(o)
        .await
        .map_err(|e| failure(e, url))
}

/// `courier pub amqp://...`
pub async fn publish(url: &str, args: &PubArgs) -> CliResult {
    if args.defer.is_some() || args.batch != 1 || !args.header.is_empty() {
        return Err(Failure::usage(
            "--defer, --batch and --header are not for AMQP; use --exchange and the routing key",
        ));
    }
    let mut source = PayloadSource::open(args)?;
    let conn = connect(url, Some(&args.nsq.tls())).await?;
    let ch = conn.channel().await.map_err(|e| failure(e, url))?;
    ch.confirm_select().await.map_err(|e| failure(e, url))?;
    let exchange = args.exchange.as_deref().unwrap_or("");
    let bar = progress::bar(source.total(), "publishing");
    let mut pacer = Pacer::new(args.rate);
    let flags = PublishFlags { mandatory: true };
    let props = Properties::default();
    let mut window: VecDeque<Confirmation> = VecDeque::new();
    let mut sent = 0u64;
    while let Some(payload) = source.next_payload().await? {
        pacer.wait(sent).await;
        let confirm = ch
            .publish_with(exchange, &args.subject, flags, &props, payload)
            .await
            .map_err(|e| failure(e, url))?;
        window.push_back(confirm);
        if window.len() >= CONFIRM_WINDOW {
            if let Some(c) = window.pop_front() {
                c.await.map_err(|e| failure(e, url))?;
            }
        }
        sent += 1;
        bar.inc(1);
    }
    for c in window {
        c.await.map_err(|e| failure(e, url))?;
    }
    bar.finish_and_clear();
    if progress::interactive() {
        eprintln!(
            "published {sent} message{} to exchange {exchange:?} with key {:?} on {}; all confirmed",
            if sent == 1 { "" } else { "s" },
            args.subject,
            shown(url)
        );
    }
    let _ = conn.close().await;
    Ok(())
}

#[derive(Serialize)]
struct AmqpJson<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    redelivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(flatten)]
    payload: JsonPayload<'a>,
}

fn print(out: &mut impl Write, format: Format, m: &Message) -> std::io::Result<()> {
    match format {
        Format::Raw => crate::output::raw(out, &m.body),
        Format::Json => {
            let p = &m.properties;
            let line = serde_json::to_string(&AmqpJson {
                exchange: &m.exchange,
                routing_key: &m.routing_key,
                redelivered: m.redelivered,
                content_type: p.content_type.as_deref(),
                correlation_id: p.correlation_id.as_deref(),
                message_id: p.message_id.as_deref(),
                payload: JsonPayload::new(&m.body),
            })
            .unwrap_or_default();
            writeln!(out, "{line}")
        }
        Format::Human => {
            write!(out, "[{}] ", m.routing_key)?;
            crate::output::raw(out, &m.body)
        }
    }
}

/// `courier sub amqp://...`
pub async fn sub(url: &str, args: &SubArgs) -> CliResult {
    let conn = connect(url, Some(&args.tls)).await?;
    let ch = conn.channel().await.map_err(|e| failure(e, url))?;
    let f = |e| failure(e, url);
    ch.qos(args.prefetch).await.map_err(f)?;
    let queue = match (&args.queue, &args.exchange) {
        (Some(q), _) => {
            ch.queue_declare(
                q,
                DeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::EMPTY,
            )
            .await
            .map_err(f)?;
            if let Some(ex) = &args.exchange {
                ch.queue_bind(q, ex, &args.subject, FieldTable::EMPTY)
                    .await
                    .map_err(f)?;
            }
            q.clone()
        }
        (None, Some(ex)) => {
            let private = DeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            let q = ch
                .queue_declare("", private, FieldTable::EMPTY)
                .await
                .map_err(f)?;
            ch.queue_bind(&q.name, ex, &args.subject, FieldTable::EMPTY)
                .await
                .map_err(f)?;
            q.name
        }
        (None, None) => {
            return Err(Failure::usage(
                "give --exchange EX (bind a private queue with the routing key) or --queue Q",
            ))
        }
    };
    let mut consumer = ch
        .consume(&queue, ConsumeFlags::default())
        .await
        .map_err(f)?;
    if progress::interactive() {
        eprintln!("consuming from queue {queue:?} on {}", shown(url));
    }
    crate::show_runtime_warnings();
    let format = args.format();
    let mut out = std::io::stdout().lock();
    let mut got = 0u64;
    while let Some(item) = consumer.next().await {
        let m = item.map_err(f)?;
        print(&mut out, format, &m).map_err(|e| Failure::other(format!("stdout: {e}")))?;
        out.flush().ok();
        // Acked once printed: at-least-once to stdout.
        m.ack().map_err(f)?;
        got += 1;
        if args.count.is_some_and(|n| got >= n) {
            break;
        }
    }
    conn.flush().await.map_err(f)?;
    let _ = conn.close().await;
    Ok(())
}

/// `courier info amqp://...` (amqps:// with `--tls-ca`, `--tls-cert`/`--tls-key`).
pub async fn info(url: &str, args: &InfoArgs) -> CliResult {
    let conn = connect(url, Some(&args.tls)).await?;
    let t = conn.tune();
    println!(
        "{}: logged in; channel_max {}, frame_max {}, heartbeat {} s",
        shown(url),
        t.channel_max,
        t.frame_max,
        t.heartbeat
    );
    let _ = conn.close().await;
    Ok(())
}
