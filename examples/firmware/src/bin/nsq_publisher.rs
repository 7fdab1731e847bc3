//! The NSQ telemetry device: connects to nsqd over UART0, publishes the
//! readings to topic `telemetry`, each confirmed by nsqd's `OK`, and exits
//! 0. On a failed connection it drains the line, backs off with jitter and
//! publishes the unconfirmed readings again (at-least-once).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::nsq::blocking::NsqClient;
use courier_core::drivers::DriverOptions;
use courier_core::nsq::Identify;
use courier_core::time::Duration;
use courier_firmware::log;
use courier_firmware::semihost::{exit, EXIT_OK, EXIT_UNREACHABLE};
use courier_firmware::telemetry::{self, Jitter, Reason, READINGS};

/// Receive buffer: nsqd's IDENTIFY response (~300 bytes) and `OK`s.
const RX: usize = 512;
/// Transmit buffer: IDENTIFY (~150 bytes) and one PUB with a reading.
const TX: usize = 256;
const TOPIC: &str = "telemetry";

#[entry]
fn main() -> ! {
    let (clock, uart) = courier_firmware::start_board();
    let identify = Identify {
        feature_negotiation: true,
        client_id: Some(telemetry::DEVICE),
        user_agent: Some("courier-firmware/0.1"),
        ..Identify::default()
    };
    let mut nsq: NsqClient<_, _, [u8; RX], [u8; TX], 2> = match NsqClient::new(
        uart,
        clock,
        identify,
        DriverOptions::default(),
        [0; RX],
        [0; TX],
    ) {
        Ok(client) => client,
        Err(e) => {
            log!("IDENTIFY does not fit: {}", Reason(&e));
            exit(EXIT_UNREACHABLE)
        }
    };
    log!(
        "client state and buffers: {} bytes",
        core::mem::size_of_val(&nsq)
    );
    let mut jitter = Jitter::new(&clock);
    let mut confirmed = 0;
    let mut backoff = 100;
    for _attempt in 0..12 {
        match nsq.connect() {
            Ok(()) => {
                log!("connected to nsqd");
                while confirmed < READINGS {
                    let reading = telemetry::reading(confirmed);
                    match nsq.publish(TOPIC, reading.as_bytes()) {
                        Ok(()) => confirmed += 1,
                        Err(e) => {
                            log!("publish {} unconfirmed: {}", confirmed, Reason(&e));
                            break;
                        }
                    }
                }
                if confirmed == READINGS {
                    log!("published {} readings to nsqd, confirmed", READINGS);
                    exit(EXIT_OK)
                }
            }
            Err(e) => log!("connect failed: {}", Reason(&e)),
        }
        // Drain the failed connection's bytes, back off with jitter.
        let _ = nsq.reset();
        nsq.transport_mut()
            .drain_until_idle(Duration::from_millis(300), Duration::from_secs(10));
        clock.sleep_ms(backoff + jitter.below(backoff / 2 + 1));
        backoff = (backoff * 2).min(2_000);
    }
    log!("nsqd unreachable");
    exit(EXIT_UNREACHABLE)
}
