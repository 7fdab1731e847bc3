//! Server URLs: the scheme picks the protocol.
//!
//! - `nats://[user:pass@|token@]host[:4222]` (several, comma-separated)
//! - `tls://...`: NATS over TLS (several, comma-separated, mixable with nats://)
//! - `nsq://host[:4150][/topic]`: one nsqd (TCP port)
//! - `nsqlookupd://host[:4161][/topic]`: discovery through nsqlookupd (HTTP port)
//! - `protocol-data_type://...` (`nats-pt2pt`, `amqp-pubsub`, `kombu`...): the messaging facade (`courier::mom`)

use std::fmt;

use crate::fail::{CliResult, Failure};

/// nsqd's default TCP port.
pub const NSQD_DEFAULT_PORT: u16 = 4150;
/// nsqlookupd's default HTTP port.
pub const LOOKUPD_DEFAULT_PORT: u16 = 4161;

/// Where a command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One or more NATS servers.
    Nats(NatsTarget),
    /// One nsqd, by its TCP address.
    Nsqd(HostPort),
    /// nsqlookupd, by its HTTP address.
    Lookupd(HostPort),
    /// An AMQP broker: `amqp://user:pass@host:port/vhost` as given.
    Amqp(String),
    /// A messaging-facade URI (`nats-pt2pt://`, `amqp-pubsub://`, `kombu://`...), checked.
    Mom(String),
}

/// NATS servers as given (credentials included, for connecting) and as
/// shown in messages (credentials masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsTarget {
    /// The URLs to connect to.
    pub urls: Vec<String>,
    /// `nats://host:port` of each, no credentials.
    pub shown: Vec<String>,
    /// Host and port of each (for `info` and diagnostics).
    pub endpoints: Vec<(String, u16)>,
}

impl fmt::Display for NatsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown.join(","))
    }
}

/// An NSQ address with the topic from the URL path, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `/topic` from the URL.
    pub topic: Option<String>,
}

impl HostPort {
    /// `host:port` for connecting (IPv6 in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

const EXPECTED: &str =
    "use nats://HOST:PORT, tls://HOST:PORT (NATS over TLS), nsq://HOST:PORT (nsqd), nsqlookupd://HOST:PORT (its HTTP port) or amqp://HOST:PORT/VHOST";

impl Target {
    /// Parses a URL; every failure is a usage error that names the problem.
    pub fn parse(url: &str) -> CliResult<Target> {
        let bad = |reason: &str| Failure::usage(format!("bad URL {:?}: {reason}", mask(url)));
        let Some((scheme, rest)) = url.trim().split_once("://") else {
            return Err(bad(&format!("no scheme; {EXPECTED}")));
        };
        if crate::mom_cmd::is_facade_scheme(scheme) {
            return courier::mom::MomUri::parse(url.trim())
                .map(|_| Target::Mom(url.trim().to_string()))
                .map_err(|e| Failure::usage(e.to_string()));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "nats" | "tls" => nats(url).map(Target::Nats),
            "nsq" | "nsqd" => host_port(rest, NSQD_DEFAULT_PORT)
                .map(Target::Nsqd)
                .map_err(|r| bad(&r)),
            "nsqlookupd" | "lookupd" => host_port(rest, LOOKUPD_DEFAULT_PORT)
                .map(Target::Lookupd)
                .map_err(|r| bad(&r)),
            "amqp" | "amqps" => courier::amqp::AmqpUrl::parse(url.trim())
                .map(|_| Target::Amqp(url.trim().to_string()))
                .map_err(|e| Failure::usage(e.to_string())),
            other => Err(bad(&format!("unknown scheme {other}://; {EXPECTED}"))),
        }
    }
}

fn nats(list: &str) -> CliResult<NatsTarget> {
    let mut target = NatsTarget {
        urls: Vec::new(),
        shown: Vec::new(),
        endpoints: Vec::new(),
    };
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let addr = courier::nats::ServerAddr::parse(url).map_err(|e| match e {
            courier::nats::Error::InvalidUrl { url, reason } => {
                Failure::usage(format!("bad URL {url:?}: {reason}"))
            }
            e => Failure::usage(e.to_string()),
        })?;
        target.urls.push(url.to_string());
        target.shown.push(addr.to_string());
        target
            .endpoints
            .push((addr.host().to_string(), addr.port()));
    }
    if target.urls.is_empty() {
        return Err(Failure::usage(format!("bad URL {list:?}: no server given")));
    }
    Ok(target)
}

/// `host[:port][/topic]`, IPv6 in brackets.
fn host_port(rest: &str, default_port: u16) -> Result<HostPort, String> {
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_matches('/')),
        None => (rest, ""),
    };
    if hostport.contains('@') {
        return Err("credentials in NSQ URLs are not supported".into());
    }
    let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or("an IPv6 address needs a closing ']'")?;
        match tail {
            "" => (host, None),
            t => (
                host,
                Some(t.strip_prefix(':').ok_or("expected ':port' after ']'")?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("write IPv6 addresses in brackets: [::1]:4150".into())
            }
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err("the port must be a number from 1 to 65535".into()),
        },
    };
    let topic = match path {
        "" => None,
        t => {
            courier_core::nsq::commands::validate_name(
                t,
                courier_core::nsq::commands::NameKind::Topic,
            )
            .map_err(|e| e.to_string())?;
            Some(t.to_string())
        }
    };
    Ok(HostPort {
        host: host.to_string(),
        port,
        topic,
    })
}

/// The URL with any `user:pass@` masked.
fn mask(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fail::Kind;

    #[test]
    fn the_scheme_picks_the_protocol() {
        match Target::parse("nats://u:p@127.0.0.1:4333").unwrap() {
            Target::Nats(t) => {
                assert_eq!(t.urls, ["nats://u:p@127.0.0.1:4333"]);
                assert_eq!(t.to_string(), "nats://127.0.0.1:4333");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Target::parse("nsq://127.0.0.1/events").unwrap(),
            Target::Nsqd(HostPort {
                host: "127.0.0.1".into(),
                port: NSQD_DEFAULT_PORT,
                topic: Some("events".into())
            })
        );
        match Target::parse("nsqlookupd://[::1]:5161/t#ephemeral").unwrap() {
            Target::Lookupd(h) => {
                assert_eq!(h.addr(), "[::1]:5161");
                assert_eq!(h.topic.as_deref(), Some("t#ephemeral"));
            }
            other => panic!("{other:?}"),
        }
        match Target::parse("nats://a:1, nats://b:2").unwrap() {
            Target::Nats(t) => assert_eq!(t.shown, ["nats://a:1", "nats://b:2"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_urls_are_usage_errors_with_a_reason() {
        for (url, needle) in [
            ("127.0.0.1:4222", "no scheme"),
            ("http://h", "unknown scheme http://"),
            ("nats://h:99999", "the port must be a number"),
            ("nsq://h:0", "the port must be a number"),
            ("nsq:///t", "the host is missing"),
            ("nsq://h/bad topic", "topic"),
            ("tls://h:99999", "the port must be a number"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{url}");
            assert!(e.message.contains(needle), "{url}: {}", e.message);
        }
        let e = Target::parse("ftp://user:secret@h").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
