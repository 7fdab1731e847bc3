//! The telemetry device's application logic, shared by the firmware
//! binaries: deterministic readings (so a test can check them byte for
//! byte), the subjects, and reconnecting with exponential backoff and
//! jitter.

use courier_core::drivers::{blocking::NatsClient, Clock};
use courier_core::nats::info::InfoStorage;
use courier_core::time::Duration;
use heapless::String;

use crate::clock::SysTickClock;
use crate::log;
use crate::semihost::{exit, EXIT_UNREACHABLE};
use crate::uart::Uart;

/// The device's id (the subjects' middle token and the client name).
pub const DEVICE: &str = "dev1";
/// Where readings go.
pub const READINGS_SUBJECT: &str = "telemetry.dev1.temperature";
/// Readings published per run.
pub const READINGS: u32 = 5;
/// Longest reading payload.
pub const READING_CAPACITY: usize = 64;

/// Reading `seq`: `{"dev":"dev1","seq":3,"centi_celsius":2171}`. The value
/// is a function of `seq` (21.50 °C + 0.07 °C per reading) instead of a
/// sensor, so the test knows every byte. Integers, not floats: formatting
/// floats costs ~10 KiB of flash.
pub fn reading(seq: u32) -> String<READING_CAPACITY> {
    let mut s = String::new();
    // Capacity covers the longest reading (two u32s): these cannot fail.
    let _ = s.push_str("{\"dev\":\"dev1\",\"seq\":");
    push_u32(&mut s, seq);
    let _ = s.push_str(",\"centi_celsius\":");
    push_u32(&mut s, 2150 + 7 * seq);
    let _ = s.push('}');
    s
}

/// Appends `v` in decimal (no `core::fmt`, which is large).
pub fn push_u32<const N: usize>(s: &mut String<N>, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        let _ = s.push(d as char);
    }
}

/// xorshift32: jitter for the reconnect backoff (no RNG peripheral here).
pub struct Jitter(u32);

impl Jitter {
    /// Seeded from the clock (and a constant so it is never zero).
    pub fn new(clock: &SysTickClock) -> Self {
        Jitter(0x9E37_79B9 ^ clock.now().as_millis() as u32)
    }

    /// A value in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x % bound
    }
}

/// Connection attempts before the device gives up (exit code 5).
const MAX_ATTEMPTS: u32 = 12;
/// First backoff; doubles per failed attempt up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u32 = 100;
const MAX_BACKOFF_MS: u32 = 2_000;

/// Runs the handshake until it succeeds, backing off between attempts
/// (exponential, with up to 50 % jitter). Each failure is logged with its
/// typed error. Returns the number of failed attempts.
pub fn connect_with_backoff<R, S, const SUBS: usize, const REQS: usize, I>(
    client: &mut NatsClient<Uart, SysTickClock, R, S, SUBS, REQS, I>,
    jitter: &mut Jitter,
) -> u32
where
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
{
    let mut backoff = FIRST_BACKOFF_MS;
    for attempt in 0..MAX_ATTEMPTS {
        match client.connect() {
            Ok(_) => {
                log!("connected (attempt {})", attempt + 1);
                return attempt;
            }
            Err(e) => {
                let wait = backoff + jitter.below(backoff / 2 + 1);
                log!("connect failed: {}; retrying in {} ms", Reason(&e), wait);
                hang_up(client);
                client.clock().sleep_ms(wait);
                backoff = (backoff * 2).min(MAX_BACKOFF_MS);
            }
        }
    }
    log!("broker unreachable after {} attempts", MAX_ATTEMPTS);
    exit(EXIT_UNREACHABLE)
}

/// After a fatal error: forgets the connection (subscriptions and unsent
/// publishes stay in the session) and drains the serial line until the
/// failed connection's bytes stop, so they cannot poison the next
/// handshake. A UART has no "close": without this, the rest of an oversized
/// frame would arrive as the next connection's first bytes.
pub fn hang_up<R, S, const SUBS: usize, const REQS: usize, I>(
    client: &mut NatsClient<Uart, SysTickClock, R, S, SUBS, REQS, I>,
) where
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
{
    client.reset();
    let dropped = client
        .transport_mut()
        .drain_until_idle(Duration::from_millis(300), Duration::from_secs(10));
    if dropped > 0 {
        log!("dropped {} bytes of the failed connection", dropped);
    }
}

/// An error for both log back ends: `Display` as text, `defmt::Format`
/// with the `defmt` feature.
pub struct Reason<'a, E>(pub &'a E);

#[cfg(not(feature = "defmt"))]
impl<E: core::fmt::Display> core::fmt::Display for Reason<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.0, f)
    }
}

#[cfg(feature = "defmt")]
impl<E: defmt::Format> defmt::Format for Reason<'_, E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", self.0)
    }
}
