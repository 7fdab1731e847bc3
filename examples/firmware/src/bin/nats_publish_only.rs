//! The smallest NATS device: connects over UART0, publishes the readings,
//! confirms them with a PING/PONG round trip, exits 0. Lean INFO storage
//! (`EssentialInfo`), no subscription or request slots (SUBS = REQS = 0: the
//! message parser is not linked).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::{blocking::NatsClient, DriverOptions};
use courier_core::nats::{ConnectOptions, EssentialInfo};
use courier_core::time::Duration;
use courier_firmware::log;
use courier_firmware::semihost::{exit, EXIT_OK, EXIT_TIMED_OUT};
use courier_firmware::telemetry::{self, Jitter, Reason, READINGS, READINGS_SUBJECT};

/// Receive buffer: nats-server's INFO (~400 bytes standalone) and PONGs.
const RX: usize = 512;
/// Transmit buffer: CONNECT (~150 bytes) plus a reading.
const TX: usize = 256;

#[entry]
fn main() -> ! {
    let (clock, uart) = courier_firmware::start_board();
    let mut options = ConnectOptions::default();
    let _ = courier_core::nats::set_str(&mut options.name, telemetry::DEVICE);
    let mut client: NatsClient<_, _, [u8; RX], [u8; TX], 0, 0, EssentialInfo> = NatsClient::new(
        uart,
        clock,
        options,
        DriverOptions::default(),
        [0; RX],
        [0; TX],
    );
    log!(
        "client state and buffers: {} bytes",
        core::mem::size_of_val(&client)
    );
    let mut jitter = Jitter::new(&clock);
    // At-least-once: readings since the last confirmed PING/PONG are
    // published again after a reconnect.
    for _round in 0..8 {
        telemetry::connect_with_backoff(&mut client, &mut jitter);
        let mut failed = false;
        for seq in 0..READINGS {
            if let Err(e) = client.publish(READINGS_SUBJECT, telemetry::reading(seq).as_bytes()) {
                log!("publish failed: {}", Reason(&e));
                failed = true;
                break;
            }
        }
        if !failed {
            match client.flush(Duration::from_secs(5), |_| {}) {
                Ok(()) => {
                    log!("published {} readings, confirmed", READINGS);
                    exit(EXIT_OK)
                }
                Err(e) => log!("confirmation failed: {}", Reason(&e)),
            }
        }
        telemetry::hang_up(&mut client);
    }
    exit(EXIT_TIMED_OUT)
}
