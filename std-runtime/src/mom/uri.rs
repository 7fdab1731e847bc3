//! Facade URIs: `protocol[-data_type]://[user[:pass]@]host[:port][,host[:port]...][/vhost-or-path][?options]`.
//!
//! A wrong URI is a [`UriError`] naming the part that is wrong
//! ([`UriPart`]) and listing the accepted forms ([`ACCEPTED_FORMS`]).

use std::fmt;
use std::time::Duration;

/// The forms a facade URI takes (quoted in every [`UriError`]).
pub const ACCEPTED_FORMS: &str = "protocol[-data_type]://[user[:password]@]host[:port][,host[:port]...][/vhost-or-path][?option=value&...] \
with protocol one of nats, nats+tls, tls, nsq, nsqlookupd, amqp, amqps, kombu; \
data_type pubsub or pt2pt (default pubsub); \
options ack=0|1, queue=NAME, exchange=NAME, stream=NAME, max_in_flight=N, timeout_ms=N, outbox=DIR, \
tls_ca=PATH, tls_cert=PATH, tls_key=PATH, tls_insecure=0|1; \
e.g. nats-pt2pt://127.0.0.1:4222, amqp-pubsub://guest:guest@127.0.0.1:5672/%2f?ack=1, \
nsqlookupd-pt2pt://127.0.0.1:4161?queue=workers";

/// The broker protocol (the URI's scheme before `-`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Core NATS (`nats`); JetStream with `ack=1`.
    Nats,
    /// NATS over TLS (`nats+tls` or `tls`).
    NatsTls,
    /// One or more nsqd TCP addresses (`nsq`).
    Nsq,
    /// nsqlookupd HTTP addresses (`nsqlookupd`): receivers discover nsqd,
    /// senders publish to the nsqd nodes lookupd knows.
    NsqLookupd,
    /// AMQP 0-9-1 (`amqp`, and `kombu` as the canopsis seed spells it).
    Amqp,
    /// AMQP over TLS (`amqps`).
    Amqps,
}

impl Protocol {
    /// The port used when the URI gives none.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Nats | Protocol::NatsTls => 4222,
            Protocol::Nsq => 4150,
            Protocol::NsqLookupd => 4161,
            Protocol::Amqp => 5672,
            Protocol::Amqps => 5671,
        }
    }

    /// NATS (plain or TLS).
    pub fn is_nats(self) -> bool {
        matches!(self, Protocol::Nats | Protocol::NatsTls)
    }
    /// NSQ (nsqd or nsqlookupd).
    pub fn is_nsq(self) -> bool {
        matches!(self, Protocol::Nsq | Protocol::NsqLookupd)
    }
    /// AMQP (plain or TLS).
    pub fn is_amqp(self) -> bool {
        matches!(self, Protocol::Amqp | Protocol::Amqps)
    }
}

/// Who gets a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Every receiver gets every message (NATS subscription, an NSQ
    /// channel per receiver, an AMQP topic exchange with a queue per
    /// receiver). The default.
    #[default]
    PubSub,
    /// Each message reaches exactly one receiver (NATS queue group, one
    /// shared NSQ channel, one shared AMQP queue).
    Pt2Pt,
}

/// The part of a URI an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriPart {
    /// Missing `://`.
    Scheme,
    /// The protocol before `-` (or the whole scheme).
    Protocol,
    /// The data type after `-`.
    DataType,
    /// `user:password@`.
    UserInfo,
    /// A host.
    Host,
    /// A port.
    Port,
    /// The `/vhost-or-path`.
    Path,
    /// An `?option=value`.
    Option,
}

impl fmt::Display for UriPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriPart::Scheme => "scheme",
            UriPart::Protocol => "protocol",
            UriPart::DataType => "data type",
            UriPart::UserInfo => "user info",
            UriPart::Host => "host",
            UriPart::Port => "port",
            UriPart::Path => "path",
            UriPart::Option => "option",
        })
    }
}

/// A URI that could not be parsed: which part, what was found, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError {
    /// The wrong part.
    pub part: UriPart,
    /// The text found there.
    pub found: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad {} {:?} in facade URI: {}; accepted forms: {}",
            self.part, self.found, self.reason, ACCEPTED_FORMS
        )
    }
}

impl std::error::Error for UriError {}

fn err(part: UriPart, found: &str, reason: impl Into<String>) -> UriError {
    UriError {
        part,
        found: found.to_string(),
        reason: reason.into(),
    }
}

/// A parsed facade URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MomUri {
    /// The protocol.
    pub protocol: Protocol,
    /// pubsub or pt2pt.
    pub data_type: DataType,
    /// User name (percent-decoded).
    pub user: Option<String>,
    /// Password (percent-decoded).
    pub password: Option<String>,
    /// Hosts and ports, in the given order (IPv6 without brackets).
    pub hosts: Vec<(String, u16)>,
    /// AMQP vhost (percent-decoded, `/` by default); NATS and NSQ take none.
    pub vhost: Option<String>,
    /// `ack=1`: at-least-once (JetStream, FIN/REQ, manual ack).
    pub ack: bool,
    /// `queue=`: the shared group of pt2pt receivers (NATS queue group and
    /// JetStream durable, NSQ channel, AMQP queue).
    pub queue: Option<String>,
    /// `exchange=`: AMQP exchange (default `mom`).
    pub exchange: Option<String>,
    /// `stream=`: JetStream stream for `ack=1` (default `MOM`).
    pub stream: Option<String>,
    /// `max_in_flight=`: NSQ max in flight / AMQP prefetch / JetStream batch.
    pub max_in_flight: Option<u32>,
    /// `timeout_ms=`: default send/receive timeout.
    pub timeout: Option<Duration>,
    /// `outbox=DIR` (percent-decoded path): NSQ and NATS `ack=1` senders
    /// spool every message (NATS: with its envelope header block) in a
    /// durable [`crate::outbox`] there before it is sent.
    pub outbox: Option<String>,
    /// `tls_ca=`, `tls_cert=`, `tls_key=`, `tls_insecure=`: see [`TlsFiles`].
    pub tls: TlsFiles,
}

/// TLS settings from the URI (or the TOML config's `tls_*` keys), for
/// `nats+tls`/`tls`, `amqps` and NSQ (nsqd's TLS upgrade). Paths are
/// percent-decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `tls_ca=PATH`: PEM file of the CA(s) to trust instead of the
    /// system roots.
    pub ca: Option<String>,
    /// `tls_cert=PATH`: PEM client certificate chain (mutual TLS; needs
    /// `tls_key`).
    pub cert: Option<String>,
    /// `tls_key=PATH`: PEM private key of `tls_cert`.
    pub key: Option<String>,
    /// `tls_insecure=1`: accept any server certificate. For tests only:
    /// it removes the protection TLS gives against a man in the middle.
    pub insecure: bool,
}

impl TlsFiles {
    /// True when any TLS option was given.
    pub fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure
    }
}

const OPTIONS: &str = "ack, queue, exchange, stream, max_in_flight, timeout_ms, outbox, \
                       tls_ca, tls_cert, tls_key, tls_insecure";

impl MomUri {
    /// Parses a facade URI.
    pub fn parse(uri: &str) -> Result<MomUri, UriError> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| err(UriPart::Scheme, uri, "no \"://\" after the scheme"))?;
        let (proto, dtype) = match scheme.rsplit_once('-') {
            Some((p, d)) => (p, Some(d)),
            None => (scheme, None),
        };
        let protocol =
            match proto.to_ascii_lowercase().as_str() {
                "nats" => Protocol::Nats,
                "nats+tls" | "tls" => Protocol::NatsTls,
                "nsq" => Protocol::Nsq,
                "nsqlookupd" => Protocol::NsqLookupd,
                "amqp" | "kombu" => Protocol::Amqp,
                "amqps" => Protocol::Amqps,
                "" => return Err(err(UriPart::Protocol, proto, "the protocol is required")),
                _ => return Err(err(
                    UriPart::Protocol,
                    proto,
                    "unknown protocol (nats, nats+tls, tls, nsq, nsqlookupd, amqp, amqps, kombu)",
                )),
            };
        let data_type = match dtype.map(|d| d.to_ascii_lowercase()) {
            None => DataType::PubSub,
            Some(d) if d == "pubsub" => DataType::PubSub,
            Some(d) if d == "pt2pt" => DataType::Pt2Pt,
            Some(_) => {
                return Err(err(
                    UriPart::DataType,
                    dtype.unwrap_or_default(),
                    "the data type is pubsub or pt2pt",
                ))
            }
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
            None => (before_query, None),
        };
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some("") => return Err(err(UriPart::UserInfo, "", "empty user before '@'")),
            Some(u) => {
                let (name, pass) = match u.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (u, None),
                };
                if name.is_empty() {
                    return Err(err(UriPart::UserInfo, u, "empty user name"));
                }
                let dec = |s: &str| {
                    percent_decode(s).ok_or_else(|| err(UriPart::UserInfo, u, "bad %-escape"))
                };
                (Some(dec(name)?), pass.map(dec).transpose()?)
            }
        };
        if hostlist.is_empty() {
            return Err(err(UriPart::Host, "", "at least one host is required"));
        }
        let mut hosts = Vec::new();
        for hp in hostlist.split(',') {
            hosts.push(parse_host_port(hp, protocol.default_port())?);
        }
        let vhost = match path {
            None | Some("") => None,
            Some(p) if protocol.is_amqp() => Some(
                percent_decode(p)
                    .ok_or_else(|| err(UriPart::Path, p, "bad %-escape in the vhost"))?,
            ),
            Some(p) => {
                return Err(err(
                    UriPart::Path,
                    p,
                    "only AMQP URIs take a path (the vhost); give NATS subjects and NSQ topics as routing keys",
                ))
            }
        };
        let mut out = MomUri {
            protocol,
            data_type,
            user,
            password,
            hosts,
            vhost,
            ack: false,
            queue: None,
            exchange: None,
            stream: None,
            max_in_flight: None,
            outbox: None,
            timeout: None,
            tls: TlsFiles::default(),
        };
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                out.option(pair)?;
            }
        }
        let t = &out.tls;
        if t.cert.is_some() != t.key.is_some() {
            return Err(err(
                UriPart::Option,
                if t.cert.is_some() {
                    "tls_cert"
                } else {
                    "tls_key"
                },
                "a client certificate needs both tls_cert=PATH and tls_key=PATH",
            ));
        }
        if t.any() && matches!(out.protocol, Protocol::Nats | Protocol::Amqp) {
            return Err(err(
                UriPart::Option,
                query.unwrap_or_default(),
                "tls_* options need a TLS protocol: nats+tls:// (or tls://) and amqps:// \
                 (NSQ negotiates TLS with nsqd and takes them as they are)",
            ));
        }
        Ok(out)
    }

    fn option(&mut self, pair: &str) -> Result<(), UriError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| err(UriPart::Option, pair, "an option is name=value"))?;
        let bad = |why: &str| err(UriPart::Option, pair, why.to_string());
        let name = |v: &str| -> Result<String, UriError> {
            let d = percent_decode(v).ok_or_else(|| bad("bad %-escape"))?;
            if d.is_empty() || d.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("a name must be non-empty, without spaces"));
            }
            Ok(d)
        };
        match k {
            "ack" => {
                self.ack = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("ack is 0 or 1")),
                }
            }
            "queue" => self.queue = Some(name(v)?),
            "exchange" => self.exchange = Some(name(v)?),
            "stream" => self.stream = Some(name(v)?),
            "outbox" => self.outbox = Some(name(v)?),
            "tls_ca" => self.tls.ca = Some(name(v)?),
            "tls_cert" => self.tls.cert = Some(name(v)?),
            "tls_key" => self.tls.key = Some(name(v)?),
            "tls_insecure" => {
                self.tls.insecure = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("tls_insecure is 0 or 1")),
                }
            }
            "max_in_flight" => {
                let n: u32 = v.parse().map_err(|_| bad("max_in_flight is a number"))?;
                if n == 0 {
                    return Err(bad("max_in_flight must be at least 1"));
                }
                self.max_in_flight = Some(n);
            }
            "timeout_ms" => {
                let n: u64 = v.parse().map_err(|_| bad("timeout_ms is a number"))?;
                self.timeout = Some(Duration::from_millis(n));
            }
            _ => {
                return Err(err(
                    UriPart::Option,
                    pair,
                    format!("unknown option {k:?} (known: {OPTIONS})"),
                ))
            }
        }
        Ok(())
    }

    /// `host:port` of each host, IPv6 in brackets.
    pub fn addrs(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            })
            .collect()
    }

    /// Connection URLs for the backend client (credentials included).
    pub(crate) fn backend_urls(&self) -> Vec<String> {
        let cred = match (&self.user, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", percent_encode(u), percent_encode(p)),
            (Some(u), None) => format!("{}@", percent_encode(u)),
            _ => String::new(),
        };
        let scheme = match self.protocol {
            Protocol::Nats => "nats",
            Protocol::NatsTls => "tls",
            Protocol::Nsq | Protocol::NsqLookupd => "http",
            Protocol::Amqp => "amqp",
            Protocol::Amqps => "amqps",
        };
        let vhost = match (&self.vhost, self.protocol.is_amqp()) {
            (Some(v), true) => format!("/{}", percent_encode(v)),
            (None, true) => "/%2f".to_string(),
            _ => String::new(),
        };
        self.addrs()
            .into_iter()
            .map(|a| format!("{scheme}://{cred}{a}{vhost}"))
            .collect()
    }
}

impl MomUri {
    /// The TLS configuration its `tls_*` options ask for (files read now),
    /// `None` when none was given.
    pub(crate) fn tls_config(&self) -> Result<Option<crate::layers::TlsConfig>, UriError> {
        let t = &self.tls;
        if !t.any() {
            return Ok(None);
        }
        let read = |opt: &str, path: &str| {
            std::fs::read(path).map_err(|e| {
                err(
                    UriPart::Option,
                    &format!("{opt}={path}"),
                    format!("cannot read it: {e}"),
                )
            })
        };
        let mut c = crate::layers::TlsConfig::new();
        if let Some(ca) = &t.ca {
            c = c
                .ca_pem(&read("tls_ca", ca)?)
                .map_err(|e| err(UriPart::Option, &format!("tls_ca={ca}"), e.to_string()))?;
        } else {
            c = c.system_roots(true);
        }
        if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
            c = c
                .client_cert_pem(&read("tls_cert", cert)?, &read("tls_key", key)?)
                .map_err(|e| err(UriPart::Option, &format!("tls_cert={cert}"), e.to_string()))?;
        }
        Ok(Some(c.danger_accept_invalid_certs(t.insecure)))
    }
}

impl std::str::FromStr for MomUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, UriError> {
        MomUri::parse(s)
    }
}

fn parse_host_port(hp: &str, default_port: u16) -> Result<(String, u16), UriError> {
    if hp.is_empty() {
        return Err(err(UriPart::Host, hp, "empty host in the host list"));
    }
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| err(UriPart::Host, hp, "IPv6 address without closing ']'"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err(UriPart::Host, hp, "not an IPv6 address in brackets"));
        }
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(err(UriPart::Host, hp, "junk after ']'")),
        }
    } else {
        match hp.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(err(UriPart::Host, hp, "IPv6 addresses go in brackets"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err(err(UriPart::Host, hp, "empty host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@[]%".contains(c))
    {
        return Err(err(UriPart::Host, host, "characters not allowed in a host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(0) => return Err(err(UriPart::Port, p, "port 0 is not a server port")),
            Ok(n) => n,
            Err(_) => return Err(err(UriPart::Port, p, "a port is a number 1-65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_forms_parse() {
        let u = MomUri::parse("kombu://localhost:5672").unwrap();
        assert_eq!(u.protocol, Protocol::Amqp);
        assert_eq!(u.data_type, DataType::PubSub);
        assert_eq!(u.hosts, vec![("localhost".to_string(), 5672)]);
        let u = MomUri::parse("kombu-pubsub://canopsis:canopsis@demo.canopsis.org:5672").unwrap();
        assert_eq!(u.user.as_deref(), Some("canopsis"));
        assert_eq!(u.password.as_deref(), Some("canopsis"));
        let u = MomUri::parse("nats-pt2pt://a:1,b,[::1]:5?ack=1&queue=w&stream=S").unwrap();
        assert_eq!(u.data_type, DataType::Pt2Pt);
        assert_eq!(
            u.hosts,
            vec![("a".into(), 1), ("b".into(), 4222), ("::1".into(), 5)]
        );
        assert!(u.ack);
        assert_eq!(u.addrs()[2], "[::1]:5");
        let u = MomUri::parse("amqp-pt2pt://g:p%40ss@h/my%2fvh").unwrap();
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.vhost.as_deref(), Some("my/vh"));
        assert_eq!(u.backend_urls(), vec!["amqp://g:p%40ss@h:5672/my%2Fvh"]);
    }

    #[test]
    fn errors_name_the_part() {
        for (uri, part) in [
            ("localhost:4222", UriPart::Scheme),
            ("mqtt://h", UriPart::Protocol),
            ("nats-fanout://h", UriPart::DataType),
            ("nats://h:99999", UriPart::Port),
            ("nats://", UriPart::Host),
            ("nats:///x", UriPart::Host),
            ("nats://h/x", UriPart::Path),
            ("nats://h?ack=2", UriPart::Option),
            ("nats://h?bogus=1", UriPart::Option),
            ("nats://@h", UriPart::UserInfo),
            ("nats://::1", UriPart::Host),
        ] {
            let e = MomUri::parse(uri).unwrap_err();
            assert_eq!(e.part, part, "{uri}: {e}");
            assert!(e.to_string().contains("accepted forms"), "{e}");
        }
    }
}
