//! What the client asks for: credentials, virtual host, limits, timeouts.

use core::fmt;

use heapless::String;

use crate::time::Duration;

/// Longest user name / password kept.
pub const CREDENTIAL_CAPACITY: usize = 128;
/// Longest virtual host (an AMQP short string).
pub const VHOST_CAPACITY: usize = 255;
/// Longest connection name (shown in the management UI).
pub const NAME_CAPACITY: usize = 64;

/// SASL mechanism for the login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mechanism {
    /// User and password.
    Plain,
    /// Identity from the TLS client certificate (amqps).
    External,
}

/// An option value longer than its fixed capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionTooLong {
    /// Which option.
    pub field: &'static str,
    /// Its capacity in bytes.
    pub max: usize,
}

impl fmt::Display for OptionTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is longer than {} bytes", self.field, self.max)
    }
}

fn set<const N: usize>(s: &str, field: &'static str) -> Result<String<N>, OptionTooLong> {
    let mut out = String::new();
    out.push_str(s)
        .map_err(|_| OptionTooLong { field, max: N })?;
    Ok(out)
}

/// Connection options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Login user (PLAIN).
    pub user: String<CREDENTIAL_CAPACITY>,
    /// Login password (PLAIN).
    pub password: String<CREDENTIAL_CAPACITY>,
    /// Virtual host to open ("/" is RabbitMQ's default).
    pub vhost: String<VHOST_CAPACITY>,
    /// SASL mechanism.
    pub mechanism: Mechanism,
    /// `connection_name` client property (empty: none).
    pub connection_name: String<NAME_CAPACITY>,
    /// Highest channel number wanted (0: as many as the session's table holds).
    pub channel_max: u16,
    /// Largest frame wanted, header included (0: the server's). Default
    /// 131072, RabbitMQ's.
    pub frame_max: u32,
    /// Heartbeat interval wanted in seconds (0: none). The smaller non-zero
    /// value of ours and the server's wins. Default 60.
    pub heartbeat: u16,
    /// Time allowed from the protocol header to `connection.open-ok`.
    pub handshake_timeout: Duration,
    /// Longest time publishing may stay blocked by a resource alarm before
    /// the session gives up on the connection (None: wait for ever).
    pub blocked_timeout: Option<Duration>,
    /// Capacity of the driver's receive buffer (0: unbounded). A frame, or a
    /// whole message (method + header + body frames), larger than this is
    /// [`Error::FrameTooLarge`](super::super::Error::FrameTooLarge).
    pub rx_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            user: set("guest", "user").unwrap_or_default(),
            password: set("guest", "password").unwrap_or_default(),
            vhost: set("/", "vhost").unwrap_or_default(),
            mechanism: Mechanism::Plain,
            connection_name: String::new(),
            channel_max: 0,
            frame_max: 131_072,
            heartbeat: 60,
            handshake_timeout: Duration::from_secs(10),
            blocked_timeout: Some(Duration::from_secs(60)),
            rx_capacity: 0,
        }
    }
}

impl Options {
    /// PLAIN login as `user` with `password` on `vhost`.
    pub fn new(user: &str, password: &str, vhost: &str) -> Result<Self, OptionTooLong> {
        Ok(Options {
            user: set(user, "user")?,
            password: set(password, "password")?,
            vhost: set(vhost, "vhost")?,
            ..Options::default()
        })
    }
    /// EXTERNAL login (TLS client certificate) on `vhost`.
    pub fn external(vhost: &str) -> Result<Self, OptionTooLong> {
        Ok(Options {
            user: String::new(),
            password: String::new(),
            vhost: set(vhost, "vhost")?,
            mechanism: Mechanism::External,
            ..Options::default()
        })
    }
    /// Sets the connection name shown by the broker.
    pub fn with_connection_name(mut self, name: &str) -> Result<Self, OptionTooLong> {
        self.connection_name = set(name, "connection_name")?;
        Ok(self)
    }
}

/// What client and server agreed on in `connection.tune`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tune {
    /// Highest channel number.
    pub channel_max: u16,
    /// Largest frame, header and end octet included (0: no limit).
    pub frame_max: u32,
    /// Heartbeat interval in seconds (0: none).
    pub heartbeat: u16,
}

/// Negotiates one limit where 0 means "no limit": the smaller of the
/// non-zero values.
pub(super) fn negotiate<T: Copy + Ord + Default>(ours: T, theirs: T) -> T {
    let zero = T::default();
    match (ours == zero, theirs == zero) {
        (true, _) => theirs,
        (_, true) => ours,
        _ => ours.min(theirs),
    }
}
