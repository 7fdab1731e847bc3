//! `amqp://user:pass@host:port/vhost` (and `amqps://`), as RabbitMQ's URI
//! spec reads them: the vhost is the percent-decoded path without its
//! leading slash (`/%2f` is "/"; no path at all is "/").

use super::Error;

/// A parsed AMQP URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpUrl {
    /// `amqps://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (5672, or 5671 for amqps, when absent).
    pub port: u16,
    /// User ("guest" when absent).
    pub user: String,
    /// Password ("guest" when absent).
    pub password: String,
    /// Virtual host.
    pub vhost: String,
}

fn decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Url(format!("bad percent escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Url(format!("{s:?} is not UTF-8 once decoded")))
}

impl AmqpUrl {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("amqp://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("amqps://") {
            (true, r)
        } else {
            return Err(Error::Url(format!("{url:?}: expected amqp:// or amqps://")));
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (decode(a)?, decode(b)?),
                None => (decode(u)?, String::new()),
            },
            None => ("guest".to_string(), "guest".to_string()),
        };
        let default_port = if tls { 5671 } else { 5672 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| Error::Url(format!("{url:?}: unclosed [")))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| Error::Url(format!("{url:?}: bad port")))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| Error::Url(format!("{url:?}: bad port {p:?}")))?,
                ),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(Error::Url(format!("{url:?}: no host")));
        }
        let vhost = match path {
            None => "/".to_string(),
            Some(p) => decode(p)?,
        };
        Ok(AmqpUrl {
            tls,
            host,
            port,
            user,
            password,
            vhost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_rabbitmq_reads_them() {
        let u = AmqpUrl::parse("amqp://u%40x:p%3Aw@broker:5673/prod").unwrap();
        assert_eq!(
            (
                u.user.as_str(),
                u.password.as_str(),
                u.host.as_str(),
                u.port,
                u.vhost.as_str()
            ),
            ("u@x", "p:w", "broker", 5673, "prod")
        );
        assert!(!u.tls);
        let u = AmqpUrl::parse("amqps://h").unwrap();
        assert_eq!(
            (u.port, u.vhost.as_str(), u.user.as_str(), u.tls),
            (5671, "/", "guest", true)
        );
        assert_eq!(AmqpUrl::parse("amqp://h/%2f").unwrap().vhost, "/");
        assert_eq!(AmqpUrl::parse("amqp://h/").unwrap().vhost, "");
        assert_eq!(AmqpUrl::parse("amqp://[::1]:1/v").unwrap().host, "::1");
        assert!(AmqpUrl::parse("nats://h").is_err());
        assert!(AmqpUrl::parse("amqp://h:x/").is_err());
    }
}
