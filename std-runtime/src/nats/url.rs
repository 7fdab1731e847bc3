//! Server addresses: `nats://[user:pass@|token@]host[:port]` and
//! `tls://...` (TLS required), IPv6 in brackets, default port 4222; also
//! bare `host:port` as INFO's `connect_urls` lists them.

use std::fmt;

use super::Error;

/// Port used when a URL names none.
pub const DEFAULT_PORT: u16 = 4222;

/// One server the client may connect to, with the credentials its URL carried.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    host: String,
    port: u16,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    tls: bool,
}

impl fmt::Debug for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print credentials.
        write!(f, "ServerAddr({self})")
    }
}

impl fmt::Display for ServerAddr {
    /// `nats://host:port` (or `tls://`) without credentials (safe to log).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "tls" } else { "nats" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl ServerAddr {
    /// Parses one URL. Schemes `nats://` and `tcp://` are accepted, and no
    /// scheme at all; `tls://` requires TLS with that server (verified
    /// against the system roots unless a CA is configured); websocket
    /// schemes are refused.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &'static str| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        let trimmed = url.trim();
        let (tls, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "nats" | "tcp" => (false, rest),
                "tls" => (true, rest),
                "wss" | "ws" => {
                    return Err(bad("websocket is not supported: use nats:// or tls://"))
                }
                _ => return Err(bad("the scheme must be nats:// or tls://")),
            },
            None => (false, trimmed),
        };
        // Drop any path or trailing slash ("nats://host:4222/").
        let rest = rest.split('/').next().unwrap_or("");
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs a closing ']'"))?;
            let port = match tail {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':port' after ']'"))?,
                ),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(bad("write IPv6 addresses in brackets: nats://[::1]:4222"))
                }
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        // A host with brackets, spaces or control characters would print
        // as a URL that does not parse back (found by fuzz target `url`).
        if host
            .chars()
            .any(|c| c == '[' || c == ']' || c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "the host has a character no host name or address can have ([, ], space or a control character)",
            ));
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("the port must be a number from 1 to 65535"))?,
        };
        if port == 0 {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        let (mut user, mut pass, mut token) = (None, None, None);
        if let Some(info) = userinfo {
            match info.split_once(':') {
                Some((u, p)) => {
                    user = Some(percent_decode(u).ok_or_else(|| bad("bad %-escape in the user"))?);
                    pass =
                        Some(percent_decode(p).ok_or_else(|| bad("bad %-escape in the password"))?);
                }
                None if !info.is_empty() => {
                    token =
                        Some(percent_decode(info).ok_or_else(|| bad("bad %-escape in the token"))?);
                }
                None => {}
            }
        }
        Ok(ServerAddr {
            host: host.to_string(),
            port,
            user,
            pass,
            token,
            tls,
        })
    }

    /// True for `tls://` URLs: TLS is required with this server.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Host name or IP literal (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// User name from `user:pass@`.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Password from `user:pass@`.
    pub fn password(&self) -> Option<&str> {
        self.pass.as_deref()
    }

    /// Token from `token@`.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// True when host and port are the same (credentials ignored): INFO's
    /// connect_urls repeat servers the user already listed.
    pub fn same_endpoint(&self, other: &ServerAddr) -> bool {
        self.host.eq_ignore_ascii_case(&other.host) && self.port == other.port
    }

    /// Resolves the host (DNS or literal) to socket addresses.
    pub async fn resolve(&self) -> std::io::Result<Vec<std::net::SocketAddr>> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(vec![std::net::SocketAddr::new(ip, self.port)]);
        }
        Ok(tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect())
    }
}

impl std::str::FromStr for ServerAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ServerAddr::parse(s)
    }
}

/// The URL with its userinfo replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let a = ServerAddr::parse("nats://127.0.0.1:4333").unwrap();
        assert_eq!((a.host(), a.port()), ("127.0.0.1", 4333));
        let a = ServerAddr::parse("nats://demo.example").unwrap();
        assert_eq!((a.host(), a.port()), ("demo.example", DEFAULT_PORT));
        let a = ServerAddr::parse("nats://alice:s%40cret@host:1").unwrap();
        assert_eq!((a.user(), a.password()), (Some("alice"), Some("s@cret")));
        let a = ServerAddr::parse("nats://tok3n@host").unwrap();
        assert_eq!((a.token(), a.port()), (Some("tok3n"), DEFAULT_PORT));
        let a = ServerAddr::parse("nats://[::1]:4222").unwrap();
        assert_eq!((a.host(), a.port()), ("::1", 4222));
        assert_eq!(a.to_string(), "nats://[::1]:4222");
        let a = ServerAddr::parse("[fe80::1]").unwrap();
        assert_eq!((a.host(), a.port()), ("fe80::1", DEFAULT_PORT));
        let a = ServerAddr::parse("10.0.0.1:5222").unwrap();
        assert_eq!((a.host(), a.port()), ("10.0.0.1", 5222));
        let a = ServerAddr::parse("nats://host:4222/").unwrap();
        assert_eq!(a.port(), 4222);
        assert!(!a.is_tls());
        let a = ServerAddr::parse("tls://u:p@nats.example:4443").unwrap();
        assert!(a.is_tls());
        assert_eq!((a.host(), a.port()), ("nats.example", 4443));
        assert_eq!(a.to_string(), "tls://nats.example:4443");
        let a = ServerAddr::parse("TLS://127.0.0.1").unwrap();
        assert!(a.is_tls() && a.port() == DEFAULT_PORT);
    }

    #[test]
    fn refuses_bad_urls_with_a_reason_and_no_secret() {
        for (url, reason) in [
            ("nats://", "the host is missing"),
            (
                "nats://h:99999",
                "the port must be a number from 1 to 65535",
            ),
            (
                "nats://::1:4222",
                "write IPv6 addresses in brackets: nats://[::1]:4222",
            ),
            ("http://h", "the scheme must be nats:// or tls://"),
            ("nats://[::1", "an IPv6 address needs a closing ']'"),
            (
                "nats://[[x]",
                "the host has a character no host name or address can have ([, ], space or a control character)",
            ),
            (
                "nats://ho st:4222",
                "the host has a character no host name or address can have ([, ], space or a control character)",
            ),
        ] {
            match ServerAddr::parse(url) {
                Err(Error::InvalidUrl { reason: r, .. }) => assert_eq!(r, reason, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        match ServerAddr::parse("nats://u:secret@h:0") {
            Err(Error::InvalidUrl { url, .. }) => assert!(!url.contains("secret")),
            other => panic!("{other:?}"),
        }
    }
}
