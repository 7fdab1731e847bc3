//! The device application, written exactly as it would run on a
//! microcontroller: only `core`, fixed buffers, no allocation, and the
//! platform reached through traits (an `embedded-io` socket, a [`Clock`],
//! a [`Thermometer`], a `core::fmt::Write` log such as a UART or RTT).
//! Nothing in this file uses `std`.

use core::fmt::Write as _;

use courier_core::drivers::{blocking::NatsClient, Clock, DriverOptions, Error};
use courier_core::nats::ConnectOptions;
use courier_core::time::{Duration, Instant};
use heapless::String;
use serde::Serialize;

/// Receive and transmit buffer size: a telemetry node receives nothing
/// bigger than server INFO and PINGs, and publishes ~100-byte readings.
pub const BUFFER_SIZE: usize = 2048;
/// Longest JSON reading.
const PAYLOAD_CAPACITY: usize = 128;
/// Longest subject (`telemetry.<device>.temperature`).
const SUBJECT_CAPACITY: usize = 64;

/// Publish-only: no subscriptions besides the request inbox slot, which
/// is never used (no requests), so one slot each.
///
/// Keeps the full `ServerInfo` (the default INFO type) rather than the
/// lean `courier_core::nats::EssentialInfo`: the connect log line names the
/// server's version and name, which `EssentialInfo` does not store. With
/// `EssentialInfo` the client would be 1120 bytes smaller (5304 instead of
/// 6424 bytes with the two 2 KiB buffers); a node that does not log the
/// server can take it.
type Client<T, C> = NatsClient<T, C, [u8; BUFFER_SIZE], [u8; BUFFER_SIZE], 1, 1>;

/// The temperature sensor (an I2C/SPI driver on a real board).
pub trait Thermometer {
    /// The current temperature in degrees Celsius.
    fn read_celsius(&mut self) -> f32;
}

/// What the node is told to do.
pub struct Config<'a> {
    /// Device id: the middle token of the subject and the client name.
    pub device: &'a str,
    /// Number of readings to publish.
    pub readings: u32,
    /// Time between two readings.
    pub interval: Duration,
}

/// One reading as published (JSON).
#[derive(Serialize)]
struct Reading<'a> {
    device: &'a str,
    seq: u32,
    celsius: f32,
    uptime_ms: u64,
}

/// Why the application stopped.
#[derive(Debug)]
pub enum AppError<E> {
    /// The NATS driver failed (connection, protocol, timeout).
    Nats(Error<E>),
    /// The device id does not fit the subject or name buffers.
    DeviceIdTooLong,
}

impl<E> From<Error<E>> for AppError<E> {
    fn from(e: Error<E>) -> Self {
        AppError::Nats(e)
    }
}

impl<E: embedded_io::Error> core::fmt::Display for AppError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AppError::Nats(e) => write!(f, "{e}"),
            AppError::DeviceIdTooLong => write!(
                f,
                "device id too long for the {SUBJECT_CAPACITY}-byte subject buffer"
            ),
        }
    }
}

/// Connects, publishes `config.readings` readings to
/// `telemetry.<device>.temperature`, keeps the connection serviced between
/// readings, and confirms with a flush round trip that the server has them.
pub fn run<T, C, S, L>(
    socket: T,
    clock: C,
    sensor: &mut S,
    config: &Config<'_>,
    log: &mut L,
) -> Result<(), AppError<T::Error>>
where
    T: embedded_io::Read + embedded_io::Write,
    C: Clock,
    S: Thermometer,
    L: core::fmt::Write,
{
    let mut options = ConnectOptions::default();
    options
        .name
        .push_str(config.device)
        .map_err(|_| AppError::DeviceIdTooLong)?;
    let mut subject: String<SUBJECT_CAPACITY> = String::new();
    write!(subject, "telemetry.{}.temperature", config.device)
        .map_err(|_| AppError::DeviceIdTooLong)?;

    let mut client: Client<T, C> = NatsClient::new(
        socket,
        clock,
        options,
        DriverOptions::default(),
        [0u8; BUFFER_SIZE],
        [0u8; BUFFER_SIZE],
    );
    let warning = client.connect()?;
    if let Some(info) = client.server_info() {
        let _ = writeln!(
            log,
            "connected to nats-server {} ({}) as {}",
            info.version, info.server_name, config.device
        );
    }
    // Everything the connection needs, buffers included, lives here: no heap.
    let _ = writeln!(
        log,
        "client state: {} bytes (two {BUFFER_SIZE}-byte buffers included)",
        core::mem::size_of_val(&client)
    );
    if let Some(w) = warning {
        // Fine for a publisher: it only limits what this node could receive.
        let _ = writeln!(
            log,
            "note: server max_payload {} exceeds the {}-byte receive buffer",
            w.max_payload, w.rx_capacity
        );
    }

    let mut next_sample = client.clock().now();
    for seq in 0..config.readings {
        // Between samples, keep servicing the connection (answer server
        // PINGs, send keepalives) instead of sleeping.
        while client.clock().now() < next_sample {
            client.next_event()?;
        }
        let now: Instant = client.clock().now();
        let reading = Reading {
            device: config.device,
            seq,
            celsius: sensor.read_celsius(),
            uptime_ms: now.as_millis(),
        };
        let mut payload = [0u8; PAYLOAD_CAPACITY];
        let len = match serde_json_core::to_slice(&reading, &mut payload) {
            Ok(len) => len,
            Err(e) => {
                let _ = writeln!(log, "reading {seq} skipped: cannot encode it ({e})");
                continue;
            }
        };
        let json = payload.get(..len).unwrap_or_default();
        client.publish(&subject, json)?;
        let _ = writeln!(
            log,
            "sent {subject} {}",
            core::str::from_utf8(json).unwrap_or("<non-UTF-8>")
        );
        next_sample = now + config.interval;
    }

    // The PONG comes back only after the server processed every PUB.
    client.flush(Duration::from_secs(5), |_| {})?;
    let _ = writeln!(
        log,
        "{} readings confirmed by the server (flush round trip)",
        config.readings
    );
    Ok(())
}
