//! Host stand-ins for what a board support package provides: a TCP socket
//! with a read timeout (std's TcpStream through embedded-io-adapters), a
//! monotonic millisecond clock, a thermometer and a log sink.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration as StdDuration;

use courier_core::drivers::Clock;
use courier_core::time::Instant;
use embedded_io_adapters::std::FromStd;

use crate::firmware::Thermometer;

/// How long a read waits before the driver gets control back to run its
/// timers (keepalive, flush deadline, stall detection).
const READ_TIMEOUT: StdDuration = StdDuration::from_millis(50);

/// A TCP socket as an `embedded-io` transport.
///
/// embedded-io-adapters does the work; the one thing it cannot know is
/// that std reports an expired read timeout as `WouldBlock` (EAGAIN), which
/// embedded-io maps to `ErrorKind::Other`. The driver treats `TimedOut` as
/// "no data yet", so that case is mapped here, as a device's socket driver
/// would report its own timeout.
pub struct Socket(FromStd<TcpStream>);

/// A std IO error, with a read timeout reported as `TimedOut`.
#[derive(Debug)]
pub struct SocketError(std::io::Error);

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SocketError {}

impl embedded_io::Error for SocketError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.0.kind() {
            std::io::ErrorKind::WouldBlock => embedded_io::ErrorKind::TimedOut,
            other => other.into(),
        }
    }
}

impl embedded_io::ErrorType for Socket {
    type Error = SocketError;
}

impl embedded_io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        self.0.read(buf).map_err(SocketError)
    }
}

impl embedded_io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        self.0.write(buf).map_err(SocketError)
    }
    fn flush(&mut self) -> Result<(), SocketError> {
        self.0.flush().map_err(SocketError)
    }
}

/// Opens a TCP connection to a `nats://host:port` URL (port 4222 when
/// omitted; IPv6 hosts in brackets).
pub fn connect(url: &str) -> Result<Socket, String> {
    let authority = url.strip_prefix("nats://").unwrap_or(url);
    if authority.contains('@') {
        return Err(format!(
            "{url}: credentials are not supported by this example"
        ));
    }
    let has_port = match authority.rsplit_once(':') {
        Some((host, port)) => !port.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    let address = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:4222")
    };
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: {address} resolves to nothing"))?;
    let stream = TcpStream::connect_timeout(&target, StdDuration::from_secs(5))
        .map_err(|e| format!("cannot connect to {target}: {e} (is nats-server running?)"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|_| stream.set_nodelay(true))
        .map_err(|e| format!("cannot configure the socket: {e}"))?;
    Ok(Socket(FromStd::new(stream)))
}

/// Milliseconds since boot (here: since the program started).
pub struct MonotonicClock(std::time::Instant);

impl MonotonicClock {
    /// Starts counting now.
    pub fn start() -> Self {
        MonotonicClock(std::time::Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

/// A thermometer that drifts around 21 °C in 0.1 °C steps, deterministic
/// so runs are comparable.
pub struct SimulatedThermometer {
    step: u32,
}

impl SimulatedThermometer {
    /// A sensor at its first reading.
    pub fn new() -> Self {
        SimulatedThermometer { step: 0 }
    }
}

impl Thermometer for SimulatedThermometer {
    fn read_celsius(&mut self) -> f32 {
        // A triangle wave between 20.0 and 22.0 °C, in tenths.
        let phase = self.step % 40;
        let tenths = if phase < 20 { phase } else { 40 - phase };
        self.step += 1;
        20.0 + tenths as f32 / 10.0
    }
}

/// The log sink (a UART or RTT channel on a board): stdout here.
pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        use std::io::Write as _;
        std::io::stdout()
            .write_all(s.as_bytes())
            .map_err(|_| core::fmt::Error)
    }
}
