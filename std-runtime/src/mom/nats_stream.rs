//! The JetStream stream behind NATS `ack=1` senders and receivers: created
//! with the first subject it sees, then every other sender's routing key /
//! receiver's binding is added to it (a stream update), so that no sender
//! publishes into a subject the stream does not store (its PubAck would be
//! "no responders") and no receiver binds a consumer that never gets a
//! message.
//!
//! The update keeps the stream's configuration as the server has it (limits,
//! retention, storage set by whoever created it) and changes only its
//! subjects: the facade reads `$JS.API.STREAM.INFO.<stream>`, edits
//! `config.subjects` and sends the result to `$JS.API.STREAM.UPDATE.<stream>`.
//! A subject already covered by a wildcard of the stream is left alone;
//! subjects that the new one covers are replaced by it (the server refuses
//! overlapping subjects in one stream).

use std::time::Duration;

use super::Error;
use crate::nats::jetstream::{self, ApiErrorKind, StreamOptions};
use crate::nats::Client;

const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether NATS subject `pattern` matches every subject `subject` can
/// match (`*` one token, `>` one or more trailing tokens).
pub(crate) fn covers(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The stream's subjects after adding `subject`, or `None` when the
/// stream already stores it.
pub(crate) fn with_subject(current: &[String], subject: &str) -> Option<Vec<String>> {
    if current.iter().any(|s| covers(s, subject)) {
        return None;
    }
    let mut next: Vec<String> = current
        .iter()
        .filter(|s| !covers(subject, s))
        .cloned()
        .collect();
    next.push(subject.to_string());
    Some(next)
}

fn refused(stream: &str, subject: &str, reason: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!(
        "JetStream stream {stream:?} does not store {subject:?} and adding it failed: {reason}; \
         give this subject its own `stream=` in the URI, or create the stream beforehand \
         with the subjects it must store"
    ))
}

async fn api(client: &Client, subject: &str, body: &[u8]) -> Result<serde_json::Value, Error> {
    let reply = client
        .request_with(subject, None, body, API_TIMEOUT)
        .await?;
    serde_json::from_slice(&reply.payload).map_err(|e| {
        Error::Unsupported(format!(
            "JetStream answered {subject} with something not JSON: {e}"
        ))
    })
}

fn api_error(v: &serde_json::Value) -> Option<String> {
    v.get("error").map(|e| {
        e.get("description")
            .and_then(|d| d.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    })
}

/// Creates stream `stream` storing `subject`, or adds `subject` to it
/// when it exists without it.
pub(crate) async fn ensure_stream(
    client: &Client,
    stream: &str,
    subject: &str,
) -> Result<(), Error> {
    let js = jetstream::new(client.clone());
    match js
        .create_stream(&StreamOptions::new(stream).subjects([subject]))
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) if e.api_kind() == Some(ApiErrorKind::StreamNameInUse) => {}
        Err(e) => return Err(e.into()),
    }
    // Read-modify-write, then read again: stream updates are last-writer-
    // wins, so a sender connecting at the same time may have dropped ours.
    for _ in 0..4 {
        let info = api(client, &format!("$JS.API.STREAM.INFO.{stream}"), b"").await?;
        if let Some(e) = api_error(&info) {
            return Err(refused(stream, subject, e));
        }
        let Some(mut config) = info.get("config").cloned() else {
            return Err(refused(stream, subject, "its info has no config"));
        };
        let current: Vec<String> = config
            .get("subjects")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let Some(next) = with_subject(&current, subject) else {
            return Ok(());
        };
        config["subjects"] = serde_json::Value::from(next);
        let body = serde_json::to_vec(&config).map_err(|e| refused(stream, subject, e))?;
        let reply = api(client, &format!("$JS.API.STREAM.UPDATE.{stream}"), &body).await?;
        if let Some(e) = api_error(&reply) {
            return Err(refused(stream, subject, e));
        }
    }
    Err(refused(
        stream,
        subject,
        "other clients kept changing its subjects (4 tries)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_what_they_match() {
        assert!(covers("a.b", "a.b"));
        assert!(!covers("a.b", "a.c"));
        assert!(!covers("a.b", "a.b.c"));
        assert!(!covers("a.b.c", "a.b"));
        assert!(covers("a.*", "a.b"));
        assert!(covers("a.*", "a.*"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("a.*", "a.b.c"));
        assert!(covers("a.>", "a.b.c"));
        assert!(covers("a.>", "a.*"));
        assert!(covers("a.>", "a.>"));
        assert!(!covers("a.>", "a"));
        assert!(covers(">", "x.y"));
        assert!(!covers("a.b", "a.*"));
    }

    #[test]
    fn adding_a_subject_keeps_what_it_does_not_cover() {
        let cur = vec!["orders".to_string(), "logs.eu".to_string()];
        assert_eq!(
            with_subject(&cur, "alerts"),
            Some(vec!["orders".into(), "logs.eu".into(), "alerts".into()])
        );
        assert_eq!(
            with_subject(&cur, "logs.*"),
            Some(vec!["orders".into(), "logs.*".into()])
        );
        assert_eq!(with_subject(&["logs.>".to_string()], "logs.eu.x"), None);
        assert_eq!(with_subject(&cur, "orders"), None);
    }
}
