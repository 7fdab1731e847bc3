//! What the embedded-io driver tests need on the host: a blocking TCP
//! socket as an `embedded_io` transport (a read timeout surfaces as
//! `TimedOut`, which the drivers use to run their timers) and a
//! millisecond clock.

use std::net::TcpStream;

use courier_core::drivers::Clock;
use courier_core::time::Instant;
use embedded_io_adapters::std::FromStd;

/// A std `TcpStream` as an `embedded_io` Read + Write.
pub struct HostTcp(pub FromStd<TcpStream>);

impl HostTcp {
    /// Wraps a connected stream (set its read timeout first).
    pub fn new(stream: TcpStream) -> Self {
        HostTcp(FromStd::new(stream))
    }
}

/// A std io error with `WouldBlock` (a read timeout) mapped to `TimedOut`.
#[derive(Debug)]
pub struct HostIoError(pub std::io::Error);

impl std::fmt::Display for HostIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HostIoError {}

impl embedded_io::Error for HostIoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.0.kind() {
            std::io::ErrorKind::WouldBlock => embedded_io::ErrorKind::TimedOut,
            other => other.into(),
        }
    }
}

impl embedded_io::ErrorType for HostTcp {
    type Error = HostIoError;
}

impl embedded_io::Read for HostTcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostIoError> {
        self.0.read(buf).map_err(HostIoError)
    }
}

impl embedded_io::Write for HostTcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostIoError> {
        self.0.write(buf).map_err(HostIoError)
    }
    fn flush(&mut self) -> Result<(), HostIoError> {
        self.0.flush().map_err(HostIoError)
    }
}

/// Milliseconds since the clock was made.
#[derive(Clone, Copy)]
pub struct HostClock(pub std::time::Instant);

impl HostClock {
    /// A clock starting now.
    pub fn new() -> Self {
        HostClock(std::time::Instant::now())
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

impl courier_core::drivers::asynch::Timer for HostClock {
    async fn sleep_until(&self, deadline: Instant) {
        let at = self.0 + std::time::Duration::from_millis(deadline.as_millis());
        tokio::time::sleep_until(at.into()).await;
    }
}
