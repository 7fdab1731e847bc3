//! What the client asks for: [`ConnectOptions`], [`Credentials`] and the
//! capacities of their fixed-size strings.

use crate::time::Duration;
use core::fmt;
use heapless::String;

/// Capacity of the client name sent in CONNECT.
pub const NAME_CAPACITY: usize = 64;
/// Capacity of user, password and token together ([`Credentials`] keeps
/// them in one buffer).
pub const CREDENTIAL_CAPACITY: usize = 256;
/// Capacity of the inbox prefix (`_INBOX.<unique>`).
pub const INBOX_PREFIX_CAPACITY: usize = 64;
/// Default interval between client keepalive PINGs (as nats.go).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default number of unanswered PINGs before the connection is stale.
pub const DEFAULT_MAX_PINGS_OUT: u32 = 2;
/// Room for a message's control line (subject, reply, sizes) on top of
/// max_payload when judging whether the receive buffer is big enough.
pub const CONTROL_LINE_ALLOWANCE: usize = 1024;

/// What the client says in CONNECT and how the session behaves.
///
/// Owned (fixed-capacity strings) so the session can re-send CONNECT on
/// every reconnect without borrowing from the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Client name shown by the server's monitoring (empty: none).
    pub name: String<NAME_CAPACITY>,
    /// Ask the server to acknowledge every command with `+OK`.
    pub verbose: bool,
    /// Ask the server for strict subject checking.
    pub pedantic: bool,
    /// Tell the server we require TLS (the driver does the TLS).
    pub tls_required: bool,
    /// Receive our own publishes on matching subscriptions (default true).
    pub echo: bool,
    /// Use headers (HPUB/HMSG) (default true).
    pub headers: bool,
    /// Ask for a 503 status reply when a request has no responders
    /// (default true; needs `headers`).
    pub no_responders: bool,
    /// User/password and token sent in CONNECT (see
    /// [`ConnectOptions::with_credentials`], [`ConnectOptions::with_token`]).
    pub credentials: Credentials,
    /// Unique inbox prefix, e.g. `_INBOX.<random>`; requests subscribe to
    /// `<prefix>.*`. The core has no RNG, so the driver supplies it; empty
    /// means requests fail with [`Error::InboxNotConfigured`](crate::nats::Error::InboxNotConfigured).
    pub inbox_prefix: String<INBOX_PREFIX_CAPACITY>,
    /// Interval between keepalive PINGs (zero disables keepalive).
    pub ping_interval: Duration,
    /// Unanswered PINGs after which the connection is stale.
    pub max_pings_out: u32,
    /// Capacity of the driver's receive buffer: the largest frame the
    /// session can receive (compared with the server's max_payload). The
    /// driver must set it; 0 means unknown (no early FrameTooLarge).
    pub rx_capacity: usize,
}

impl ConnectOptions {
    /// User/password authentication (a token set before is kept).
    pub fn with_credentials(mut self, user: &str, pass: &str) -> Result<Self, OptionTooLong> {
        let token = self.credentials.token();
        self.credentials = Credentials::new(Some(user), Some(pass), token)?;
        Ok(self)
    }

    /// Token authentication (user/password set before are kept).
    pub fn with_token(mut self, token: &str) -> Result<Self, OptionTooLong> {
        let c = &self.credentials;
        self.credentials = Credentials::new(c.user(), c.pass(), Some(token))?;
        Ok(self)
    }
}

/// User, password and token for CONNECT, kept in one buffer of
/// [`CREDENTIAL_CAPACITY`] bytes (together) rather than one per field, so a
/// session without credentials does not carry three empty 256-byte strings
/// worth of state. `Debug` does not show them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    text: String<CREDENTIAL_CAPACITY>,
    user: Option<Span>,
    pass: Option<Span>,
    token: Option<Span>,
}

/// Where one credential lies in [`Credentials::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Credentials {
    /// Stores the given credentials (`None`: not set); fails when together
    /// they exceed [`CREDENTIAL_CAPACITY`].
    ///
    /// ```
    /// use courier_core::nats::session::Credentials;
    /// let c = Credentials::new(Some("alice"), Some("s3cret"), None).unwrap();
    /// assert_eq!((c.user(), c.pass(), c.token()), (Some("alice"), Some("s3cret"), None));
    /// assert!(!format!("{c:?}").contains("s3cret"));
    /// assert!(Credentials::new(Some(&"u".repeat(200)), Some(&"p".repeat(57)), None).is_err());
    /// ```
    pub fn new(
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> Result<Self, OptionTooLong> {
        let total: usize = [user, pass, token].iter().flatten().map(|s| s.len()).sum();
        if total > CREDENTIAL_CAPACITY {
            return Err(OptionTooLong {
                len: total,
                max: CREDENTIAL_CAPACITY,
            });
        }
        let mut c = Credentials::default();
        let mut put = |value: Option<&str>| {
            value.map(|v| {
                let start = c.text.len() as u16;
                // Cannot fail: the total was checked above.
                let _ = c.text.push_str(v);
                Span {
                    start,
                    end: c.text.len() as u16,
                }
            })
        };
        let (u, p, t) = (put(user), put(pass), put(token));
        c.user = u;
        c.pass = p;
        c.token = t;
        Ok(c)
    }

    fn get(&self, span: Option<Span>) -> Option<&str> {
        let span = span?;
        self.text
            .get(usize::from(span.start)..usize::from(span.end))
    }

    /// The user, if set.
    pub fn user(&self) -> Option<&str> {
        self.get(self.user)
    }

    /// The password, if set.
    pub fn pass(&self) -> Option<&str> {
        self.get(self.pass)
    }

    /// The token, if set.
    pub fn token(&self) -> Option<&str> {
        self.get(self.token)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.pass.is_none() && self.token.is_none()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: Option<Span>| s.map(|_| "***");
        f.debug_struct("Credentials")
            .field("user", &mask(self.user))
            .field("pass", &mask(self.pass))
            .field("token", &mask(self.token))
            .finish()
    }
}

/// A string option longer than its fixed capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionTooLong {
    /// Length given.
    pub len: usize,
    /// Capacity of the option.
    pub max: usize,
}

impl fmt::Display for OptionTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "option value of {} bytes is longer than the {} bytes it can hold",
            self.len, self.max
        )
    }
}

impl core::error::Error for OptionTooLong {}

/// Replaces the contents of a fixed-capacity string option.
///
/// ```
/// use courier_core::nats::session::{set_str, ConnectOptions};
/// let mut o = ConnectOptions::default();
/// set_str(&mut o.name, "edge-1").unwrap();
/// set_str(&mut o.inbox_prefix, "_INBOX.k2j3h4").unwrap();
/// assert!(set_str(&mut o.name, &"x".repeat(100)).is_err());
/// ```
pub fn set_str<const N: usize>(target: &mut String<N>, value: &str) -> Result<(), OptionTooLong> {
    *target = bounded(value)?;
    Ok(())
}

fn bounded<const N: usize>(value: &str) -> Result<String<N>, OptionTooLong> {
    let mut s = String::new();
    s.push_str(value).map_err(|_| OptionTooLong {
        len: value.len(),
        max: N,
    })?;
    Ok(s)
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            name: String::new(),
            verbose: false,
            pedantic: false,
            tls_required: false,
            echo: true,
            headers: true,
            no_responders: true,
            credentials: Credentials::default(),
            inbox_prefix: String::new(),
            ping_interval: DEFAULT_PING_INTERVAL,
            max_pings_out: DEFAULT_MAX_PINGS_OUT,
            rx_capacity: 0,
        }
    }
}
