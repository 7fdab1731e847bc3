//! Board support and application logic of the courier firmware for the
//! mps2-an386 board (Cortex-M4F) as QEMU models it. The binaries in
//! `src/bin/` are the devices whose flash and RAM the README reports.
//!
//! No global allocator exists in this firmware: courier-core allocates
//! nothing, and neither does anything here.
#![no_std]

pub mod clock;
pub mod commands;
pub mod semihost;
pub mod stack;
pub mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;
pub mod uart;
pub mod vectors;

use courier_core::time::Duration;

/// What every device does first: paints the stack (for the high-water
/// mark printed at exit), starts the 1 kHz SysTick clock and takes UART0
/// with a 50 ms read timeout (so the drivers' timers run while idle).
/// Exits with `EXIT_TIMED_OUT` if the core peripherals were taken already.
pub fn start_board() -> (clock::SysTickClock, uart::Uart) {
    stack::paint();
    let core =
        cortex_m::Peripherals::take().unwrap_or_else(|| semihost::exit(semihost::EXIT_TIMED_OUT));
    let clock = clock::SysTickClock::start(core.SYST);
    (clock, uart::Uart::take(clock, Duration::from_millis(50)))
}
