//! Edge telemetry: a sensor node publishing temperature readings to NATS
//! through courier's blocking `embedded-io` driver.
//!
//! ```text
//! cargo run -p courier-examples --bin edge_telemetry -- [nats://127.0.0.1:4222] [readings]
//! ```
//!
//! [`firmware`] is the device application and is written as it would be on
//! a microcontroller (no std, no allocation, 2 KiB buffers); [`board`]
//! stands in for the board support package on a host (TCP socket, clock,
//! sensor, log). Subscribe with e.g. `nats sub 'telemetry.>'` to watch.

mod board;
mod firmware;

use std::process::ExitCode;

use courier_core::time::Duration;

const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
const DEFAULT_READINGS: u32 = 10;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| DEFAULT_URL.to_string());
    let readings = match args.next().map(|n| n.parse::<u32>()) {
        None => DEFAULT_READINGS,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("edge_telemetry: the reading count must be a number: {e}");
            return ExitCode::FAILURE;
        }
    };

    let socket = match board::connect(&url) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("edge_telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = firmware::Config {
        device: "edge-01",
        readings,
        interval: Duration::from_millis(100),
    };
    let outcome = firmware::run(
        socket,
        board::MonotonicClock::start(),
        &mut board::SimulatedThermometer::new(),
        &config,
        &mut board::Console,
    );
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge_telemetry: {e}");
            ExitCode::FAILURE
        }
    }
}
