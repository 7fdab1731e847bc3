//! A freestanding binary: no std, no allocator, no Rust runtime, its own
//! panic handler. It drives the core's NATS session through the blocking
//! embedded-io driver, the NSQ session and the RDY controller, so they are
//! really linked, not just type-checked. Any std dependency reaching the
//! core makes this fail to build (duplicate `panic_impl` lang item).
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use courier_core::amqp;
use courier_core::drivers::{blocking::NatsClient, Clock, DriverOptions};
use courier_core::nats::{self, ConnectOptions};
use courier_core::nsq::{self, rdy::ConnId, rdy::RdyConfig, rdy::RdyController};
use courier_core::time::Instant;

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}

/// The precompiled `core` of the host target references the unwinding
/// personality even under `panic = "abort"`; it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// A transport that greets like nats-server and swallows what is written:
/// enough for the driver's handshake to run without a network.
struct Loopback {
    script: &'static [u8],
    at: usize,
}

impl embedded_io::ErrorType for Loopback {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let rest = &self.script[self.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        if n == 0 {
            return Err(embedded_io::ErrorKind::TimedOut);
        }
        Ok(n)
    }
}

impl embedded_io::Write for Loopback {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct FrozenClock;

impl Clock for FrozenClock {
    fn now(&self) -> Instant {
        Instant::from_millis(0)
    }
}

fn nats_round() -> bool {
    let transport = Loopback {
        script: b"INFO {\"server_id\":\"probe\",\"version\":\"2.10.0\",\"max_payload\":1024,\"headers\":true}\r\nPONG\r\n",
        at: 0,
    };
    let mut client: NatsClient<_, _, [u8; 512], [u8; 512], 2, 1> = NatsClient::new(
        transport,
        FrozenClock,
        ConnectOptions::default(),
        DriverOptions::default(),
        [0u8; 512],
        [0u8; 512],
    );
    client.connect().is_ok()
        && client.publish("probe.subject", b"hello").is_ok()
        && nats::subject::validate_publish("probe.>").is_err()
}

fn nsq_round() -> bool {
    let identify = nsq::Identify {
        feature_negotiation: true,
        ..nsq::Identify::default()
    };
    let mut session = nsq::Session::<[u8; 512], 4>::new(nsq::Options::new(1024), [0u8; 512]);
    if session.start(&identify, Instant(0)).is_err() {
        return false;
    }
    let written = session.transmit().len();
    session.transmitted(written);
    let mut rdy: RdyController<4> = RdyController::new(RdyConfig::new(8));
    rdy.add_connection(ConnId(1), 2500, Instant(0)).is_ok()
        && matches!(rdy.poll_update(), Some((ConnId(1), 8)))
        && written > 4
}

fn amqp_round() -> bool {
    let mut s: amqp::Session<[u8; 512], 2, 1> =
        amqp::Session::new(amqp::Options::default(), [0u8; 512]);
    s.start(Instant(0));
    // A heartbeat frame before connection.start is answered by nothing.
    s.transmit() == b"AMQP\x00\x00\x09\x01"
        && s.handle_input(&[8, 0, 0, 0, 0, 0, 0, 0xCE], Instant(0))
            .is_ok()
}

/// Entry point called by the C runtime (the probe links libc only for
/// `memcpy`-style intrinsics and start-up on this host target; the core
/// itself has no such dependency).
#[no_mangle]
pub extern "C" fn main(_argc: isize, _argv: *const *const u8) -> isize {
    match (nats_round(), nsq_round(), amqp_round()) {
        (true, true, true) => 0,
        (false, _, _) => 1,
        (_, false, _) => 2,
        (_, _, false) => 3,
    }
}
