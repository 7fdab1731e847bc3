//! `courier pub|sub` on facade URIs (`nats-pt2pt://...`,
//! `amqp-pubsub://...`, `nsq-pubsub://...`, `kombu://...`): messages go
//! in the facade's envelope (name, id, timestamp, CRC-32C checked on
//! receipt), so other facade users read them, and the CLI reads theirs.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::args::{PubArgs, SubArgs};
use crate::fail::{CliResult, Failure, Kind};
use crate::output::{Format, JsonPayload};
use crate::payload::{Pacer, PayloadSource};
use crate::progress;
use courier::mom::{Error, Receiver, ReceiverOptions, SendOptions, Sender, SenderOptions};

/// True for schemes only the facade speaks (`protocol-data_type`, `kombu`, `nats+tls`).
pub fn is_facade_scheme(scheme: &str) -> bool {
    let s = scheme.to_ascii_lowercase();
    s.contains('-') || s == "kombu" || s == "nats+tls"
}

fn failure(e: Error) -> Failure {
    let kind = match &e {
        Error::Uri(_) | Error::Config { .. } | Error::Unsupported(_) => Kind::Usage,
        _ => Kind::Other,
    };
    Failure::new(kind, e.to_string())
}

/// `courier pub FACADE-URI ROUTING-KEY [PAYLOAD]`: raw payloads (JSON or
/// not), each in an envelope; with `ack=1` each is confirmed by the broker.
pub async fn publish(url: &str, args: &PubArgs) -> CliResult {
    if args.defer.is_some() || args.batch != 1 || !args.header.is_empty() || args.exchange.is_some()
    {
        return Err(Failure::usage(
            "--defer, --batch, --header and --exchange are not for facade URIs; use ?exchange= in the URI",
        ));
    }
    let mut source = PayloadSource::open(args)?;
    let options = SenderOptions {
        routing_key: Some(args.subject.clone()),
        ..Default::default()
    };
    let sender = Sender::connect("courier-cli", url, options)
        .await
        .map_err(failure)?;
    let bar = progress::bar(source.total(), "publishing");
    let mut pacer = Pacer::new(args.rate);
    let mut sent = 0u64;
    let json = SendOptions {
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        ..Default::default()
    };
    while let Some(payload) = source.next_payload().await? {
        pacer.wait(sent).await;
        // A payload that parses as JSON says so in its content type.
        let o = if serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok() {
            &json
        } else {
            &SendOptions::default()
        };
        sender.send_bytes(payload, None, o).await.map_err(failure)?;
        sent += 1;
        bar.inc(1);
    }
    sender
        .stop(Duration::from_secs(10))
        .await
        .map_err(failure)?;
    bar.finish_and_clear();
    if progress::interactive() {
        eprintln!(
            "published {sent} message{} with key {:?} through the facade ({:?})",
            if sent == 1 { "" } else { "s" },
            args.subject,
            sender.uri().protocol
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct MomJson<'a> {
    name: &'a str,
    message_id: &'a str,
    timestamp_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_encoding: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<&'a str>,
    #[serde(flatten)]
    payload: JsonPayload<'a>,
}

/// `courier sub FACADE-URI BINDING`: prints each message (acked after
/// printing in ack mode); a corrupted one is reported on stderr, not printed.
pub async fn sub(url: &str, args: &SubArgs) -> CliResult {
    let options = ReceiverOptions {
        binding: args.subject.clone(),
        timeout: None,
    };
    let mut r = Receiver::connect("courier-cli", url, options)
        .await
        .map_err(failure)?;
    eprintln!(
        "subscribed to {:?} through the facade ({:?}, {:?})",
        args.subject,
        r.uri().protocol,
        r.uri().data_type
    );
    let format = args.format();
    let mut got = 0u64;
    let stdout = std::io::stdout();
    loop {
        match r.receive(Some(Duration::from_secs(3600))).await {
            Ok(Some(d)) => {
                let mut out = stdout.lock();
                let written = match format {
                    Format::Raw => crate::output::raw(&mut out, d.payload()),
                    Format::Json => {
                        let line = serde_json::to_string(&MomJson {
                            name: &d.name,
                            message_id: &d.message_id,
                            timestamp_ms: d.timestamp_ms,
                            content_type: d.content_type.as_deref(),
                            content_encoding: d.content_encoding.as_deref(),
                            compression: d.compression.name(),
                            payload: JsonPayload::new(d.payload()),
                        })
                        .unwrap_or_default();
                        writeln!(out, "{line}")
                    }
                    Format::Human => write!(out, "[{}] ", d.name)
                        .and_then(|()| crate::output::raw(&mut out, d.payload())),
                };
                written.map_err(|e| Failure::new(Kind::Other, format!("stdout: {e}")))?;
                drop(out);
                d.ack().await.map_err(failure)?;
                got += 1;
                if args.count.is_some_and(|n| got >= n) {
                    r.stop().await;
                    return Ok(());
                }
            }
            Ok(None) => {}
            Err(e @ (Error::Corrupted { .. } | Error::NotAnEnvelope { .. })) => {
                eprintln!("courier: {e}");
            }
            Err(e) => return Err(failure(e)),
        }
    }
}
