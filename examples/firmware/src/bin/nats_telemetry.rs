//! The NATS telemetry device of the QEMU test: connects over UART0,
//! subscribes to four subjects (its command subject among them), publishes
//! the readings and confirms them (PING/PONG), then answers one request on
//! `cmd.dev1` and exits 0. Any fatal error (garbage from the broker, a
//! frame larger than the receive buffer, a lost connection) is logged and
//! followed by a reconnect with backoff; unconfirmed readings are published
//! again (at-least-once).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::NatsEvent as Event;
use courier_core::drivers::{blocking::NatsClient, Clock, DriverOptions};
use courier_core::nats::{ConnectOptions, EssentialInfo};
use courier_core::time::Duration;
use courier_firmware::clock::SysTickClock;
use courier_firmware::log;
use courier_firmware::semihost::{exit, EXIT_OK, EXIT_TIMED_OUT};
use courier_firmware::telemetry::{self, Jitter, Reason, READINGS, READINGS_SUBJECT};
use courier_firmware::uart::Uart;
use heapless::String;

/// Receive buffer: nats-server's INFO (~400 bytes standalone) and small
/// commands; anything larger is `FrameTooLarge`, logged, reconnect.
const RX: usize = 512;
/// Transmit buffer: CONNECT (~150 bytes) plus a reading or an answer.
const TX: usize = 256;
/// The subjects the device listens on; the first one takes requests.
const SUBJECTS: [&str; 4] = ["cmd.dev1", "config.dev1", "fleet.all", "time.sync"];
/// How long the device waits for its command before giving up.
const COMMAND_WAIT_MS: u64 = 60_000;

#[entry]
fn main() -> ! {
    let (clock, uart) = courier_firmware::start_board();
    let mut options = ConnectOptions::default();
    let _ = courier_core::nats::set_str(&mut options.name, telemetry::DEVICE);
    let mut client: NatsClient<_, _, [u8; RX], [u8; TX], 4, 1, EssentialInfo> = NatsClient::new(
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
    let give_up = clock.now().as_millis() + COMMAND_WAIT_MS;
    let mut reconnects = 0u32;
    let mut subscribed = false;
    let mut confirmed = false;
    loop {
        if clock.now().as_millis() > give_up {
            log!("no command within {} ms", COMMAND_WAIT_MS);
            exit(EXIT_TIMED_OUT)
        }
        telemetry::connect_with_backoff(&mut client, &mut jitter);
        // Subscriptions live in the session: a reconnect re-sends them.
        if !subscribed {
            for subject in SUBJECTS {
                if let Err(e) = client.subscribe(subject) {
                    log!("subscribe {} failed: {}", subject, Reason(&e));
                }
            }
            subscribed = true;
        }
        if !confirmed {
            confirmed = publish_readings(&mut client);
        }
        if confirmed {
            serve_commands(&mut client, reconnects, give_up);
        }
        // A fatal error ended this connection: start over on a new one.
        telemetry::hang_up(&mut client);
        reconnects += 1;
    }
}

type Client = NatsClient<Uart, SysTickClock, [u8; RX], [u8; TX], 4, 1, EssentialInfo>;

/// Publishes every reading and waits for the PONG that proves the server
/// has them. False when the connection failed first (then all are
/// published again on the next connection).
fn publish_readings(client: &mut Client) -> bool {
    for seq in 0..READINGS {
        if let Err(e) = client.publish(READINGS_SUBJECT, telemetry::reading(seq).as_bytes()) {
            log!("publish failed: {}", Reason(&e));
            return false;
        }
    }
    match client.flush(Duration::from_secs(5), |_| {}) {
        Ok(()) => {
            log!("published {} readings, confirmed", READINGS);
            true
        }
        Err(e) => {
            log!("confirmation failed: {}", Reason(&e));
            false
        }
    }
}

/// Answers the first request on `cmd.dev1` and exits 0; returns when the
/// connection failed.
fn serve_commands(client: &mut Client, reconnects: u32, give_up: u64) {
    loop {
        if client.clock().now().as_millis() > give_up {
            return;
        }
        let mut reply_to: String<64> = String::new();
        let mut answer: String<128> = String::new();
        match client.next_event() {
            Ok(Some(Event::Message(m))) => {
                let Some(reply) = m.reply else {
                    log!("message on {} ({} bytes)", m.subject, m.payload.len());
                    continue;
                };
                if m.subject != SUBJECTS[0] || reply_to.push_str(reply).is_err() {
                    log!("request on {} not served", m.subject);
                    continue;
                }
                let cmd = core::str::from_utf8(m.payload).unwrap_or("?");
                let _ = answer.push_str("{\"dev\":\"dev1\",\"cmd\":\"");
                let _ = answer.push_str(if cmd.len() <= 32 { cmd } else { "?" });
                let _ = answer.push_str("\",\"readings\":");
                telemetry::push_u32(&mut answer, READINGS);
                let _ = answer.push_str(",\"reconnects\":");
                telemetry::push_u32(&mut answer, reconnects);
                let _ = answer.push('}');
            }
            Ok(_) => continue,
            Err(e) => {
                log!("connection failed: {}", Reason(&e));
                if e.is_fatal() {
                    return;
                }
                continue;
            }
        }
        let sent = client
            .publish(&reply_to, answer.as_bytes())
            .and_then(|()| client.flush(Duration::from_secs(5), |_| {}));
        match sent {
            Ok(()) => {
                log!("answered command: {}", answer.as_str());
                exit(EXIT_OK)
            }
            Err(e) => {
                log!("answer failed: {}", Reason(&e));
                return;
            }
        }
    }
}
