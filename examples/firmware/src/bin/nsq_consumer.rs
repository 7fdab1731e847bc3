//! The NSQ command consumer: subscribes to topic `commands` on channel
//! `dev1` with RDY 1, logs and FINs three messages, sends CLS and waits for
//! nsqd's CLOSE_WAIT, then exits 0. A message is FINed only after it was
//! handled (at-least-once: nsqd redelivers one the device did not FIN).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::nsq::blocking::NsqClient;
use courier_core::drivers::{Clock, DriverOptions};
use courier_core::nsq::{Event, Identify};
use courier_core::time::Duration;
use courier_firmware::clock::SysTickClock;
use courier_firmware::log;
use courier_firmware::semihost::{exit, EXIT_OK, EXIT_TIMED_OUT, EXIT_UNREACHABLE};
use courier_firmware::telemetry::{self, Reason};
use courier_firmware::uart::Uart;

/// Receive buffer: the IDENTIFY response and commands of up to ~450 bytes.
const RX: usize = 512;
/// Transmit buffer: IDENTIFY, SUB, RDY, FIN.
const TX: usize = 256;
const COMMANDS: u32 = 3;
const WAIT_MS: u64 = 30_000;

#[entry]
fn main() -> ! {
    courier_firmware::stack::paint();
    let core = cortex_m::Peripherals::take().unwrap_or_else(|| exit(EXIT_TIMED_OUT));
    let clock = SysTickClock::start(core.SYST);
    let uart = Uart::take(clock, Duration::from_millis(50));
    let identify = Identify {
        feature_negotiation: true,
        client_id: Some(telemetry::DEVICE),
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
    // The client speaks first in NSQ: a magic and IDENTIFY written before
    // the link is up are lost, so a handshake that times out is retried.
    let mut attempts = 0;
    loop {
        let setup = nsq
            .connect()
            .and_then(|()| nsq.subscribe("commands", telemetry::DEVICE))
            .and_then(|()| nsq.ready(1));
        match setup {
            Ok(()) => break,
            Err(e) if attempts < 5 => log!("subscribe failed, retrying: {}", Reason(&e)),
            Err(e) => {
                log!("subscribe failed: {}", Reason(&e));
                exit(EXIT_UNREACHABLE)
            }
        }
        attempts += 1;
        let _ = nsq.reset();
        nsq.transport_mut()
            .drain_until_idle(Duration::from_millis(300), Duration::from_secs(10));
    }
    let give_up = clock.now().as_millis() + WAIT_MS;
    let mut handled = 0;
    while handled < COMMANDS {
        if clock.now().as_millis() > give_up {
            log!("only {} of {} commands arrived", handled, COMMANDS);
            exit(EXIT_TIMED_OUT)
        }
        let id = match nsq.next_event() {
            Ok(Some(Event::Message(m))) => {
                let text = core::str::from_utf8(m.body).unwrap_or("<binary>");
                log!("command {} (attempt {}): {}", handled + 1, m.attempts, text);
                m.id
            }
            Ok(_) => continue,
            Err(e) => {
                log!("connection failed: {}", Reason(&e));
                exit(EXIT_UNREACHABLE)
            }
        };
        if let Err(e) = nsq.fin(&id) {
            log!("FIN failed: {}", Reason(&e));
            exit(EXIT_UNREACHABLE)
        }
        handled += 1;
    }
    match nsq.close() {
        Ok(()) => log!("handled {} commands, closed", handled),
        Err(e) => log!("CLS failed: {}", Reason(&e)),
    }
    exit(EXIT_OK)
}
