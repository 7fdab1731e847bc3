//! The NSQ command consumer (see `courier_firmware::commands`) with DEFLATE:
//! nsqd compresses what it sends (inflated here through the protocol's
//! 32 KiB window, no allocator), the device answers in stored blocks.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::nsq::blocking::NsqClient;
use courier_core::drivers::nsq::deflate::DeflateState;
use courier_core::drivers::DriverOptions;
use courier_core::nsq::Identify;
use courier_firmware::log;
use courier_firmware::semihost::{exit, EXIT_UNREACHABLE};
use courier_firmware::telemetry::{self, Reason};

/// Receive buffer: the IDENTIFY response and commands of up to ~450 bytes.
const RX: usize = 512;
/// Transmit buffer: IDENTIFY, SUB, RDY, FIN.
const TX: usize = 256;

#[entry]
fn main() -> ! {
    let (clock, uart) = courier_firmware::start_board();
    let identify = Identify {
        feature_negotiation: true,
        client_id: Some(telemetry::DEVICE),
        deflate: true,
        deflate_level: Some(6),
        ..Identify::default()
    };
    // ~43 KiB: a static, never on the stack (singleton! builds it once).
    let Some(inflate) = cortex_m::singleton!(: DeflateState = DeflateState::new()) else {
        exit(EXIT_UNREACHABLE)
    };
    let mut nsq: NsqClient<_, _, [u8; RX], [u8; TX], 2> = match NsqClient::new(
        uart,
        clock,
        identify,
        DriverOptions::default(),
        [0; RX],
        [0; TX],
    ) {
        Ok(client) => client.with_deflate(inflate),
        Err(e) => {
            log!("IDENTIFY does not fit: {}", Reason(&e));
            exit(EXIT_UNREACHABLE)
        }
    };
    log!(
        "client state and buffers: {} bytes, DEFLATE state: {} bytes",
        core::mem::size_of_val(&nsq),
        core::mem::size_of::<DeflateState>()
    );
    courier_firmware::commands::run(&mut nsq, clock)
}
