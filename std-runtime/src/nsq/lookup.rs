//! nsqlookupd `/lookup?topic=` polling over HTTP (ureq on tokio's blocking
//! pool, so it works under tokio-uring and plain tokio alike).

use std::time::Duration;

use super::Error;

/// Asks one nsqlookupd (`http://host:port`) which nsqd nodes have `topic`;
/// returns their TCP `host:port` addresses. An unknown topic is an empty
/// list.
pub(crate) async fn lookup(
    base: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let url = format!("{}/lookup", base.trim_end_matches('/'));
    let topic = topic.to_string();
    let body = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        // `query` percent-encodes: an `#ephemeral` topic would otherwise
        // end the URL at `#` (a fragment) and ask for the wrong topic.
        match agent
            .get(&url)
            .query("topic", &topic)
            .set("Accept", "application/vnd.nsq; version=1.0")
            .call()
        {
            Ok(resp) => resp
                .into_string()
                .map(Some)
                .map_err(|e| format!("{url}: {e}")),
            // nsqlookupd answers 404 for a topic no nsqd has registered.
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(format!("{url}: {e}")),
        }
    })
    .await
    .map_err(|e| Error::Lookup(e.to_string()))?
    .map_err(Error::Lookup)?;
    match body {
        Some(b) => parse_producers(&b),
        None => Ok(Vec::new()),
    }
}

/// The wait before the next nsqlookupd poll: `interval` shortened by up to
/// `jitter` (0..=1) of itself, `unit` being a uniform random number in
/// [0, 1). Never longer than `interval`, never shorter than
/// `(1 - jitter) * interval`.
pub(crate) fn poll_wait(interval: Duration, jitter: f64, unit: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    interval.saturating_sub(interval.mul_f64(jitter * unit))
}

/// Producers of a `/lookup` answer (nsqlookupd >= 1.0, or the older one
/// wrapped in `{"status_code":..,"data":..}`).
pub(crate) fn parse_producers(body: &str) -> Result<Vec<String>, Error> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Error::Lookup(format!("bad JSON: {e}")))?;
    let v = v.get("data").unwrap_or(&v);
    let mut out = Vec::new();
    if let Some(list) = v.get("producers").and_then(|p| p.as_array()) {
        for p in list {
            let host = p
                .get("broadcast_address")
                .and_then(|h| h.as_str())
                .or_else(|| p.get("hostname").and_then(|h| h.as_str()));
            let port = p.get("tcp_port").and_then(|t| t.as_u64());
            if let (Some(host), Some(port)) = (host, port) {
                if host.contains(':') {
                    out.push(format!("[{host}]:{port}"));
                } else {
                    out.push(format!("{host}:{port}"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn poll_wait_stays_within_the_jitter_band() {
        let minute = Duration::from_secs(60);
        assert_eq!(super::poll_wait(minute, 0.3, 0.0), minute);
        assert_eq!(super::poll_wait(minute, 0.3, 0.5), Duration::from_secs(51));
        assert_eq!(super::poll_wait(minute, 0.3, 0.999_999).as_secs(), 42);
        assert_eq!(super::poll_wait(minute, 0.0, 0.7), minute, "no jitter");
        assert_eq!(
            super::poll_wait(minute, 7.0, 1.0),
            Duration::ZERO,
            "clamped to 1"
        );
        assert_eq!(super::poll_wait(minute, f64::NAN, 0.5), minute);
        let waits: std::collections::HashSet<u128> = (0..50)
            .map(|_| super::poll_wait(minute, 0.3, fastrand::f64()).as_millis())
            .collect();
        assert!(waits.len() > 10, "waits are spread: {waits:?}");
        assert!(waits.iter().all(|&w| (42_000..=60_000).contains(&w)));
    }

    #[test]
    fn parses_both_answer_shapes() {
        let new = r#"{"channels":["c"],"producers":[{"remote_address":"127.0.0.1:5","hostname":"h","broadcast_address":"127.0.0.1","tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}"#;
        assert_eq!(super::parse_producers(new).unwrap(), vec!["127.0.0.1:4150"]);
        let old = r#"{"status_code":200,"status_txt":"OK","data":{"producers":[{"broadcast_address":"::1","tcp_port":1}]}}"#;
        assert_eq!(super::parse_producers(old).unwrap(), vec!["[::1]:1"]);
    }
}
