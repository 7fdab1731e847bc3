//! The NSQ command consumer's logic, shared by `nsq_consumer` and
//! `nsq_consumer_deflate`: subscribe to `commands` on channel `dev1` with
//! RDY 1, log and FIN three messages, CLS, exit 0. A message is FINed only
//! after it was handled (at-least-once: nsqd redelivers one the device did
//! not FIN).

use courier_core::drivers::nsq::blocking::NsqClient;
use courier_core::drivers::nsq::Incoming;
use courier_core::drivers::Clock;
use courier_core::time::Duration;

use crate::clock::SysTickClock;
use crate::log;
use crate::semihost::{exit, EXIT_OK, EXIT_TIMED_OUT, EXIT_UNREACHABLE};
use crate::telemetry::{self, Reason};
use crate::uart::Uart;

/// Commands handled before the device exits.
pub const COMMANDS: u32 = 3;
const WAIT_MS: u64 = 30_000;

/// Runs the consumer on a created (not yet connected) client.
pub fn run<R, S, const PENDING: usize>(
    nsq: &mut NsqClient<'_, Uart, SysTickClock, R, S, PENDING>,
    clock: SysTickClock,
) -> !
where
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
{
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
            Ok(Some(Incoming::Message(m))) => {
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
