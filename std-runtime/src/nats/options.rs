//! Connection options and connection events.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::Error;

/// Something that happened to the connection, delivered to the callbacks
/// and to [`Client::events`](super::Client::events).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The first connection is up (handshake done).
    Connected {
        /// The server (`nats://host:port`, no credentials).
        server: String,
    },
    /// An established connection was lost; the client reconnects.
    Disconnected {
        /// The server that was lost.
        server: String,
        /// Why.
        reason: String,
        /// Bytes written to that server since the last flush it confirmed:
        /// they may or may not have been processed (TCP cannot tell). Flush
        /// after important publishes to keep this at zero.
        unconfirmed_bytes: u64,
        /// Publishes written to that server after the last confirmation
        /// point (a PONG): the server may or may not have processed them.
        /// With [`ConnectOptions::resend_unconfirmed`] they are queued again
        /// for the next connection (they may arrive twice); otherwise they
        /// may be lost, and are counted in
        /// [`Statistics::unconfirmed_publishes`](super::Statistics::unconfirmed_publishes).
        unconfirmed_publishes: usize,
        /// Publishes not yet written, kept (with those made during the
        /// outage) for the next connection.
        kept_publishes: usize,
        /// Publishes the disconnect lost: never handed to the server (an
        /// [`Event::Error`] says so too). Zero unless the transmit buffer
        /// had no room left for them beside the next handshake.
        discarded_publishes: usize,
    },
    /// Connected again after a loss; subscriptions were renewed and
    /// publishes buffered meanwhile were handed to the server.
    Reconnected {
        /// The server now in use.
        server: String,
        /// Bytes of buffered publishes handed over after the handshake.
        buffered_bytes_sent: usize,
        /// How many publishes those bytes are.
        buffered_publishes_sent: usize,
    },
    /// One connection attempt failed (the client tries the next server
    /// after the backoff; logged at info level, not as an error).
    ConnectFailed {
        /// The server tried.
        server: String,
        /// Why it failed.
        reason: String,
    },
    /// A subscriber's queue was full: messages were dropped (counted here,
    /// never silently). Raise the limits or consume faster.
    SlowConsumer {
        /// The subscription's subject.
        subject: String,
        /// Messages dropped for this subscription so far.
        dropped_messages: u64,
        /// Payload bytes dropped for this subscription so far.
        dropped_bytes: u64,
    },
    /// A non-fatal `-ERR` (e.g. a permissions violation), a receive
    /// buffer smaller than the server's max_payload, publishes left unsent
    /// at close; the text says which.
    Error {
        /// What happened.
        message: String,
    },
    /// The server refused a publish or a subscription for lack of
    /// permission (`-ERR 'Permissions Violation ...'`). Non-fatal: the
    /// connection stays up; that publish was dropped by the server, that
    /// subscription receives nothing.
    PermissionViolation {
        /// `"publish"` or `"subscribe"`.
        operation: String,
        /// The subject refused.
        subject: String,
    },
    /// A server refused the credentials (Authorization Violation), at
    /// connect or on a reconnect; reported once per server until it
    /// accepts them again. The client keeps trying with backoff (see
    /// [`Event::ConnectFailed`]); fix the credentials or close.
    AuthorizationViolation {
        /// The server (no credentials shown).
        server: String,
    },
    /// The server is in lame duck mode: it will shut down soon and asks
    /// clients to move. When another server is known (URLs given, INFO
    /// connect_urls) courier writes what is pending, leaves it at once
    /// ([`Event::Disconnected`], then [`Event::Reconnected`] to the other
    /// server, subscriptions renewed) and tries it last from then on;
    /// otherwise it stays until the server closes the connection.
    LameDuckMode {
        /// The server going away.
        server: String,
    },
    /// The client closed (by `close`, `drain`, or giving up reconnecting).
    Closed,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Connected { server } => write!(f, "connected to {server}"),
            Event::Disconnected {
                server,
                reason,
                unconfirmed_bytes,
                unconfirmed_publishes,
                kept_publishes,
                discarded_publishes,
            } => {
                write!(
                    f,
                    "disconnected from {server}: {reason}; reconnecting ({unconfirmed_publishes} \
                     publishes ({unconfirmed_bytes} bytes) written since the last confirmation \
                     may not have been processed; {kept_publishes} unsent publishes kept for the \
                     next connection"
                )?;
                if *discarded_publishes > 0 {
                    write!(f, ", {discarded_publishes} publishes lost")?;
                }
                f.write_str(")")
            }
            Event::Reconnected {
                server,
                buffered_bytes_sent,
                buffered_publishes_sent,
            } => write!(
                f,
                "reconnected to {server}; {buffered_publishes_sent} buffered publishes \
                 ({buffered_bytes_sent} bytes) handed over"
            ),
            Event::ConnectFailed { server, reason } => {
                write!(f, "connecting to {server} failed: {reason}")
            }
            Event::SlowConsumer {
                subject,
                dropped_messages,
                dropped_bytes,
            } => write!(
                f,
                "slow consumer on {subject:?}: {dropped_messages} messages ({dropped_bytes} bytes) \
                 dropped so far; consume faster or raise the pending limits"
            ),
            Event::Error { message } => f.write_str(message),
            Event::AuthorizationViolation { server } => write!(
                f,
                "{server} refused the credentials (Authorization Violation): check the \
                 user/password, token, NKey or .creds"
            ),
            Event::PermissionViolation { operation, subject } => write!(
                f,
                "the server refused to {operation} {subject:?} (Permissions Violation): the \
                 connection stays up; grant the permission or use another subject"
            ),
            Event::LameDuckMode { server } => {
                write!(f, "{server} entered lame duck mode and will shut down soon")
            }
            Event::Closed => f.write_str("connection closed"),
        }
    }
}

pub(crate) type Callback = Rc<dyn Fn(&Event)>;

pub(crate) type OnConnect =
    Rc<dyn Fn(super::Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>;

/// How many messages and bytes a subscription may hold undelivered before
/// new ones are dropped (and reported as [`Event::SlowConsumer`]).
///
/// Defaults are nats.go's: 512Ki messages and 64 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Most messages queued.
    pub messages: usize,
    /// Most payload bytes queued.
    pub bytes: usize,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            messages: 512 * 1024,
            bytes: 64 * 1024 * 1024,
        }
    }
}

/// Options for [`connect`](super::connect); start with
/// [`ConnectOptions::new`] and chain setters.
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) name: Option<String>,
    pub(crate) user: Option<(String, String)>,
    pub(crate) token: Option<String>,
    pub(crate) verbose: bool,
    pub(crate) pedantic: bool,
    pub(crate) echo: bool,
    pub(crate) ping_interval: Duration,
    pub(crate) max_pings_outstanding: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) flush_timeout: Duration,
    pub(crate) reconnect_buffer_size: usize,
    pub(crate) max_reconnects: Option<usize>,
    pub(crate) reconnect_delay_min: Duration,
    pub(crate) reconnect_delay_max: Duration,
    pub(crate) reconnect_healthy_after: Duration,
    pub(crate) resend_unconfirmed: bool,
    pub(crate) confirm_interval: Duration,
    pub(crate) confirm_bytes: usize,
    pub(crate) retry_on_initial_connect: bool,
    pub(crate) inbox_prefix: String,
    pub(crate) pending_limits: PendingLimits,
    pub(crate) receive_buffer_size: usize,
    pub(crate) transmit_buffer_size: usize,
    pub(crate) payload_chunk_size: usize,
    pub(crate) ignore_discovered_servers: bool,
    pub(crate) callbacks: Vec<Callback>,
    pub(crate) on_connect: Option<OnConnect>,
    pub(crate) tls: super::tls::TlsOptions,
    pub(crate) auth: super::auth::AuthOptions,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("name", &self.name)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect_buffer_size", &self.reconnect_buffer_size)
            .field("max_reconnects", &self.max_reconnects)
            .field("inbox_prefix", &self.inbox_prefix)
            .field("pending_limits", &self.pending_limits)
            .finish_non_exhaustive()
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A random token for inbox subjects, unique per client.
pub(crate) fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

impl ConnectOptions {
    /// Defaults: ping every 2 min (2 unanswered = stale), 8 MiB reconnect
    /// buffer, 60 reconnect attempts, backoff 50 ms..2 s with jitter, 10 s
    /// request and flush timeouts, nats.go's pending limits, inbox
    /// `_INBOX.<random>`, 1 MiB + 64 KiB receive and transmit buffers.
    pub fn new() -> Self {
        ConnectOptions {
            name: None,
            user: None,
            token: None,
            verbose: false,
            pedantic: false,
            echo: true,
            ping_interval: Duration::from_secs(120),
            max_pings_outstanding: 2,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            reconnect_buffer_size: 8 * 1024 * 1024,
            max_reconnects: Some(60),
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(2),
            reconnect_healthy_after: Duration::from_secs(5),
            resend_unconfirmed: false,
            confirm_interval: Duration::from_secs(1),
            confirm_bytes: 1024 * 1024,
            retry_on_initial_connect: false,
            inbox_prefix: format!("_INBOX.{}", random_token()),
            pending_limits: PendingLimits::default(),
            receive_buffer_size: 1024 * 1024 + 64 * 1024,
            transmit_buffer_size: 1024 * 1024 + 64 * 1024,
            payload_chunk_size: 256 * 1024,
            ignore_discovered_servers: false,
            callbacks: Vec::new(),
            on_connect: None,
            tls: Default::default(),
            auth: Default::default(),
        }
    }

    /// Client name shown by the server's monitoring (`CONNECT name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// User and password (override those in the URL).
    pub fn user_and_password(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.user = Some((user.into(), pass.into()));
        self
    }

    /// Auth token (overrides one in the URL).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Verbose mode: the server acknowledges every command with `+OK`.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// Pedantic mode: the server checks subjects strictly.
    pub fn pedantic(mut self, on: bool) -> Self {
        self.pedantic = on;
        self
    }

    /// Whether the server sends our own publishes back to our matching
    /// subscriptions (default true).
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Keepalive PING interval; after `max_outstanding` unanswered PINGs
    /// the connection is declared stale and re-established.
    pub fn ping_interval(mut self, every: Duration, max_outstanding: u32) -> Self {
        self.ping_interval = every;
        self.max_pings_outstanding = max_outstanding.max(1);
        self
    }

    /// How long one TCP connect + handshake may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Default timeout of [`Client::request`](super::Client::request).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Timeout of [`Client::flush`](super::Client::flush).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Bytes of publishes kept while disconnected (default 8 MiB, as
    /// nats.go). When full, publish fails with `ReconnectBufferFull`; 0
    /// makes every publish while disconnected fail.
    pub fn reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.reconnect_buffer_size = bytes;
        self
    }

    /// Failed connection attempts before giving up (`None`: never give up).
    pub fn max_reconnects(mut self, attempts: Option<usize>) -> Self {
        self.max_reconnects = attempts;
        self
    }

    /// Backoff between reconnect rounds: starts at `min`, doubles per failed
    /// round up to `max`, each delay jittered between half and all of itself
    /// so a fleet of clients does not reconnect in lockstep (the shared
    /// [`crate::reconnect`] policy). Every reconnect waits, also the first
    /// one after a lost connection.
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_delay_min = min;
        self.reconnect_delay_max = max.max(min);
        self
    }

    /// Core NATS is at-most-once: a publish written to a server that then
    /// dies may or may not have been processed. The client counts those
    /// (written after the last confirmation point, see
    /// [`confirm_interval`](Self::confirm_interval)) and reports them in
    /// [`Event::Disconnected`]`::unconfirmed_publishes`.
    ///
    /// With `resend` on, they are queued again for the next connection
    /// instead: **at-least-once**. A publish the old server did process is
    /// then delivered twice (subscribers must tolerate duplicates), and the
    /// resent publishes go out behind the ones made (or kept unwritten)
    /// during the outage, so order across the outage is not kept. The
    /// bytes of every unconfirmed publish are kept in memory until
    /// confirmed (bounded by the confirmation window). Off by default.
    pub fn resend_unconfirmed(mut self, resend: bool) -> Self {
        self.resend_unconfirmed = resend;
        self
    }

    /// The confirmation point that bounds the unconfirmed window: while
    /// publishes are unconfirmed, a PING goes out once `bytes` were written
    /// since the last one, or `every` passed (defaults: 1 MiB, 1 s); its
    /// PONG confirms everything written before it. Smaller is fewer
    /// messages in doubt (and resent) per outage, for one extra PING per
    /// window. [`Client::flush`](super::Client::flush) is a confirmation
    /// point too.
    pub fn confirm_interval(mut self, every: Duration, bytes: usize) -> Self {
        self.confirm_interval = every;
        self.confirm_bytes = bytes.max(1);
        self
    }

    /// A connection that dies before it was up this long (default 5 s)
    /// counts as a failed attempt: the backoff keeps growing and it counts
    /// against [`max_reconnects`](Self::max_reconnects). A server that
    /// completes the handshake and then sends garbage or closes is retried
    /// a few times a second at most, never in a tight loop.
    pub fn reconnect_healthy_after(mut self, after: Duration) -> Self {
        self.reconnect_healthy_after = after;
        self
    }

    /// Keep trying when no server answers at the first connect, instead of
    /// returning `Unreachable`: `connect` returns the client after the first
    /// failed round (state `Disconnected`), subscriptions and publishes are
    /// queued (publishes in the bounded reconnect buffer) and sent once a
    /// server answers.
    pub fn retry_on_initial_connect(mut self, on: bool) -> Self {
        self.retry_on_initial_connect = on;
        self
    }

    /// Prefix of reply subjects for requests; a unique token is appended
    /// per client (`<prefix>.<random>.*`).
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = format!("{}.{}", prefix.into(), random_token());
        self
    }

    /// Per-subscription queue limits (see [`PendingLimits`]).
    pub fn pending_limits(mut self, limits: PendingLimits) -> Self {
        self.pending_limits = limits;
        self
    }

    /// Receive buffer bytes (largest message + control line); allocated
    /// once per client.
    pub fn receive_buffer_size(mut self, bytes: usize) -> Self {
        self.receive_buffer_size = bytes.max(512);
        self
    }

    /// Transmit buffer bytes (largest publish); allocated once per client.
    pub fn transmit_buffer_size(mut self, bytes: usize) -> Self {
        self.transmit_buffer_size = bytes.max(512);
        self
    }

    /// Only use the URLs given, not the servers INFO advertises.
    pub fn ignore_discovered_servers(mut self, on: bool) -> Self {
        self.ignore_discovered_servers = on;
        self
    }

    /// Called for every [`Event`], on the runtime thread, after the client's
    /// state is updated and outside any internal borrow.
    ///
    /// Do not move a [`Client`](super::Client) into the callback: the client
    /// owns its callbacks, so that cycle keeps the connection alive after
    /// every other handle is dropped. Read [`Client::events`](super::Client::events)
    /// from a task instead when the reaction needs the client.
    pub fn event_callback(mut self, f: impl Fn(&Event) + 'static) -> Self {
        self.callbacks.push(Rc::new(f));
        self
    }

    /// Called with the server URL when the first connection is up.
    pub fn connected_callback(self, f: impl Fn(&str) + 'static) -> Self {
        self.event_callback(move |e| {
            if let Event::Connected { server } = e {
                f(server)
            }
        })
    }

    /// Called with the server URL and the reason when a connection is lost.
    pub fn disconnected_callback(self, f: impl Fn(&str, &str) + 'static) -> Self {
        self.event_callback(move |e| {
            if let Event::Disconnected { server, reason, .. } = e {
                f(server, reason)
            }
        })
    }

    /// Called with the server URL after a successful reconnect.
    pub fn reconnected_callback(self, f: impl Fn(&str) + 'static) -> Self {
        self.event_callback(move |e| {
            if let Event::Reconnected { server, .. } = e {
                f(server)
            }
        })
    }

    /// Called for errors and slow consumers.
    pub fn error_callback(self, f: impl Fn(&Event) + 'static) -> Self {
        self.event_callback(move |e| {
            if matches!(
                e,
                Event::Error { .. }
                    | Event::SlowConsumer { .. }
                    | Event::PermissionViolation { .. }
            ) {
                f(e)
            }
        })
    }

    /// Runs `f` as a task with a client handle once the first connection
    /// is up, before `connect` returns (txnats' `on_connect`): the place to
    /// set up subscriptions. They survive reconnects, so it runs once. The
    /// task holds a client handle, so the connection stays open while it
    /// runs; [`Client::close`](super::Client::close) ends its streams.
    ///
    /// ```no_run
    /// # use courier::nats::ConnectOptions;
    /// # async fn f() -> Result<(), courier::nats::Error> {
    /// let client = ConnectOptions::new()
    ///     .on_connect(|client| async move {
    ///         let mut sub = client.subscribe("happy").await.unwrap();
    ///         while let Some(msg) = sub.next().await {
    ///             println!("{:?}", msg.payload);
    ///         }
    ///     })
    ///     .connect(["nats://127.0.0.1:4222"])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(super::Client) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.on_connect = Some(Rc::new(move |client| Box::pin(f(client))));
        self
    }

    /// Connects with these options; see [`connect`](super::connect).
    pub async fn connect<I, U>(self, urls: I) -> Result<super::Client, Error>
    where
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        super::client::connect_with(urls, self).await
    }
}
