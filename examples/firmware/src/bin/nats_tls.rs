//! The publish-only NATS device over TLS 1.3 (feature `tls`): reads the
//! server's plaintext INFO over UART0, upgrades to TLS with embedded-tls
//! (as nats-server expects by default, and as nats.go does), verifies the
//! server against the provisioned CA, then runs the blocking courier driver
//! over the TLS connection: CONNECT, the readings, a PING/PONG round trip
//! that confirms them, exit 0. No allocator; no subscription or request
//! slots (SUBS = REQS = 0: the message parser is not linked).
//!
//! Exit codes: 0 confirmed; 7 the server's certificate was refused (not
//! retried: another attempt would meet the same certificate); 8 no
//! provisioning block; 5 the link or the broker failed on every attempt.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_core::drivers::{blocking::NatsClient, Clock as _, DriverOptions};
use courier_core::nats::{ConnectOptions, EssentialInfo};
use courier_core::time::Duration;
use courier_firmware::log;
use courier_firmware::semihost::{
    exit, EXIT_NOT_PROVISIONED, EXIT_OK, EXIT_TLS_REFUSED, EXIT_UNREACHABLE,
};
use courier_firmware::telemetry::{self, Jitter, Reason, READINGS, READINGS_SUBJECT};
use courier_firmware::tls::{
    self, open_after_info, PinnedCa, SemihostingClock, Upgrade, UpgradeError, RX_RECORD_SIZE,
};
use embedded_tls::TlsError;

/// NATS receive buffer (decrypted bytes): INFO and PONGs.
const RX: usize = 512;
/// NATS transmit buffer: CONNECT plus a reading.
const TX: usize = 256;
/// TLS transmit record buffer. The host example uses 4 KiB; this device
/// needs less: the ClientHello is ~250 bytes and the NATS driver writes
/// at most its 256-byte buffer at a time (embedded-tls sends a record
/// whenever the buffer fills, so bigger writes still work, in more
/// records). The receive side cannot shrink: see `RX_RECORD_SIZE`.
const TLS_TX: usize = 1024;
/// The plaintext INFO before the upgrade (nats-server's is ~400 bytes).
const INFO: usize = 1024;
/// The name the server's certificate must carry (a DNS name: embedded-tls
/// does not match IP-address SANs).
const SERVER_NAME: &str = "localhost";
/// Connection attempts (TLS and NATS handshakes) before giving up.
const ATTEMPTS: u32 = 6;

/// The handshake failed because of what the server presented, not the link.
fn refused(e: &TlsError) -> bool {
    !matches!(
        e,
        TlsError::Io(_) | TlsError::IoError | TlsError::ConnectionClosed
    )
}

#[entry]
fn main() -> ! {
    let (clock, mut uart) = courier_firmware::start_board();
    let Some(provisioned) = tls::provisioned() else {
        log!(
            "no provisioning block at {:#x}: no pinned CA, not connecting",
            tls::PROVISION_ADDR
        );
        exit(EXIT_NOT_PROVISIONED)
    };
    log!("pinned CA: {} bytes of DER", provisioned.ca_der.len());
    let mut rng = tls::seeded_rng(provisioned.seed);
    let mut jitter = Jitter::new(&clock);
    // The TLS record buffers and the INFO buffer: on main's stack (the
    // stack high-water mark printed at exit includes them).
    let mut rx_record = [0u8; RX_RECORD_SIZE];
    let mut tx_record = [0u8; TLS_TX];
    let mut info = [0u8; INFO];
    let mut options = ConnectOptions::default();
    let _ = courier_core::nats::set_str(&mut options.name, telemetry::DEVICE);
    let mut backoff = 100;

    // At-least-once: an attempt that fails before the PING/PONG confirming
    // the readings publishes all of them again on the next connection.
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            let dropped =
                uart.drain_until_idle(Duration::from_millis(300), Duration::from_secs(10));
            let wait = backoff + jitter.below(backoff / 2 + 1);
            log!("retrying in {} ms ({} stale bytes dropped)", wait, dropped);
            clock.sleep_ms(wait);
            backoff = (backoff * 2).min(2_000);
        }
        let provider: PinnedCa<'_, _, SemihostingClock> =
            PinnedCa::new(provisioned.ca_der, &mut rng);
        let started = clock.now();
        let tls = match open_after_info(
            &mut uart,
            SERVER_NAME,
            provider,
            &mut info,
            &mut rx_record,
            &mut tx_record,
        ) {
            Ok(tls) => tls,
            Err(UpgradeError::Tls(e)) if refused(&e) => {
                log!(
                    "TLS handshake refused: {:?}: the server's certificate failed verification \
                     against the pinned CA (signature chain, name {}, validity dates); not \
                     connecting to it",
                    e,
                    SERVER_NAME
                );
                exit(EXIT_TLS_REFUSED)
            }
            Err(UpgradeError::TlsNotOffered) => {
                log!("TlsNotOffered: the server offers no TLS; refusing plaintext");
                exit(EXIT_TLS_REFUSED)
            }
            Err(e) => {
                log!("TLS upgrade failed (attempt {}): {}", attempt, Upgrade(&e));
                continue;
            }
        };
        log!(
            "TLS 1.3 established in {} ms (attempt {})",
            clock.now().saturating_since(started).as_millis(),
            attempt
        );
        let mut client: NatsClient<_, _, [u8; RX], [u8; TX], 0, 0, EssentialInfo> = NatsClient::new(
            tls,
            clock,
            options.clone(),
            DriverOptions::default(),
            [0; RX],
            [0; TX],
        );
        log!(
            "client state and buffers: {} bytes, TLS records {} + {} bytes",
            core::mem::size_of_val(&client),
            RX_RECORD_SIZE,
            TLS_TX
        );
        if let Err(e) = client.connect() {
            log!("NATS connect failed: {}", Reason(&e));
            continue;
        }
        let mut failed = false;
        for seq in 0..READINGS {
            if let Err(e) = client.publish(READINGS_SUBJECT, telemetry::reading(seq).as_bytes()) {
                log!("publish failed: {}", Reason(&e));
                failed = true;
                break;
            }
        }
        if failed {
            continue;
        }
        match client.flush(Duration::from_secs(10), |_| {}) {
            Ok(()) => {
                log!("published {} readings over TLS, confirmed", READINGS);
                exit(EXIT_OK)
            }
            Err(e) => log!("confirmation failed: {}", Reason(&e)),
        }
    }
    log!("broker unreachable over TLS after {} attempts", ATTEMPTS);
    exit(EXIT_UNREACHABLE)
}
