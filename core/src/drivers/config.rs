//! What a NATS driver needs besides its transport and clock, built the way
//! minimq's `ConfigBuilder::new(Buffers::new(rx, tx))` is: the buffers are
//! the only required part, everything else has a default.
//!
//! ```
//! use courier_core::drivers::{Buffers, Config};
//! use courier_core::time::Duration;
//! let config = Config::new(Buffers::new([0u8; 2048], [0u8; 1024]))
//!     .client_name("edge-1")
//!     .unwrap()
//!     .ping_interval(Duration::from_secs(30))
//!     .connect_timeout(Duration::from_secs(3));
//! assert_eq!(config.options().name.as_str(), "edge-1");
//! ```

use super::DriverOptions;
use crate::nats::{self, ConnectOptions, OptionTooLong};
use crate::time::Duration;

/// The receive and transmit buffer storage (`[u8; N]`, `&mut [u8]`...).
/// The receive buffer bounds the largest message that can arrive; the
/// transmit buffer bounds batching (and must hold CONNECT).
#[derive(Debug)]
pub struct Buffers<R, S> {
    rx: R,
    tx: S,
}

impl<R, S> Buffers<R, S> {
    /// Receive storage `rx`, transmit storage `tx`.
    pub fn new(rx: R, tx: S) -> Self {
        Buffers { rx, tx }
    }

    pub(crate) fn into_parts(self) -> (R, S) {
        (self.rx, self.tx)
    }
}

/// A NATS driver's configuration: buffers, what CONNECT says and the
/// driver's own timeouts. Defaults: [`ConnectOptions::default`] and
/// [`DriverOptions::default`].
#[derive(Debug)]
pub struct Config<R, S> {
    pub(crate) buffers: Buffers<R, S>,
    pub(crate) options: ConnectOptions,
    pub(crate) driver: DriverOptions,
}

impl<R, S> Config<R, S> {
    /// A configuration with default options over `buffers`.
    pub fn new(buffers: Buffers<R, S>) -> Self {
        Config {
            buffers,
            options: ConnectOptions::default(),
            driver: DriverOptions::default(),
        }
    }

    /// Replaces every CONNECT option at once.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the driver's timeouts at once.
    pub fn driver_options(mut self, driver: DriverOptions) -> Self {
        self.driver = driver;
        self
    }

    /// The client name the server's monitoring shows.
    pub fn client_name(mut self, name: &str) -> Result<Self, OptionTooLong> {
        nats::set_str(&mut self.options.name, name)?;
        Ok(self)
    }

    /// User/password authentication.
    pub fn credentials(mut self, user: &str, pass: &str) -> Result<Self, OptionTooLong> {
        self.options = self.options.with_credentials(user, pass)?;
        Ok(self)
    }

    /// Token authentication.
    pub fn token(mut self, token: &str) -> Result<Self, OptionTooLong> {
        self.options = self.options.with_token(token)?;
        Ok(self)
    }

    /// The unique inbox prefix requests need (`_INBOX.<random>`).
    pub fn inbox_prefix(mut self, prefix: &str) -> Result<Self, OptionTooLong> {
        nats::set_str(&mut self.options.inbox_prefix, prefix)?;
        Ok(self)
    }

    /// Interval between keepalive PINGs (zero disables them).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.options.ping_interval = interval;
        self
    }

    /// Longest wait for the handshake in `connect`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.driver.connect_timeout = timeout;
        self
    }

    /// Longest time a frame may stay half received.
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.driver.stall_timeout = timeout;
        self
    }

    /// The CONNECT options so far.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }
}
