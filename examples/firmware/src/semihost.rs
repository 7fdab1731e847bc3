//! What the firmware tells its host through semihosting (QEMU's
//! `-semihosting-config enable=on,target=native`): log lines and the exit
//! code, plus the panic and hard-fault handlers that end the run with a
//! non-zero code so a test that runs the firmware fails.

use core::panic::PanicInfo;

use cortex_m_rt::{exception, ExceptionFrame};

/// The firmware ran to the end.
pub const EXIT_OK: u32 = 0;
/// A hard fault (bad memory access, stack overflow into a guard...).
pub const EXIT_HARD_FAULT: u32 = 3;
/// A panic (never expected: the core returns typed errors).
pub const EXIT_PANIC: u32 = 4;
/// The broker stayed unreachable through every connection attempt.
pub const EXIT_UNREACHABLE: u32 = 5;
/// A command or confirmation did not arrive in time.
pub const EXIT_TIMED_OUT: u32 = 6;
/// The TLS handshake failed: the server's certificate is not vouched for
/// by the pinned CA (or names another host), or the handshake broke.
pub const EXIT_TLS_REFUSED: u32 = 7;
/// No trust anchor provisioned: the device does not connect without one.
pub const EXIT_NOT_PROVISIONED: u32 = 8;

/// SYS_EXIT_EXTENDED: exit with a code, not only success/failure.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// ADP_Stopped_ApplicationExit: a normal exit whose code is the subcode.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

/// Ends the QEMU run with `code` as its exit status, after logging the
/// stack high-water mark (see [`crate::stack`]).
pub fn exit(code: u32) -> ! {
    match crate::stack::high_water_checked() {
        (used, false) => crate::log!("stack high-water: {} bytes", used),
        (used, true) => crate::log!(
            "stack high-water: at least {} bytes (the painted window was exhausted)",
            used
        ),
    }
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    // SAFETY: a semihosting call with a valid parameter block; under QEMU
    // it does not return.
    unsafe {
        cortex_m_semihosting::syscall1(SYS_EXIT_EXTENDED, block.as_ptr() as usize);
    }
    loop {
        cortex_m::asm::udf();
    }
}

/// Writes one log line to the host's stdout (plain text; see `log!`).
#[cfg(not(feature = "defmt"))]
pub fn print_line(args: core::fmt::Arguments<'_>) {
    use core::fmt::Write as _;
    if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
        let _ = out.write_fmt(args);
        let _ = out.write_str("\n");
    }
}

/// One log line: plain text over semihosting by default, defmt (encoded,
/// over semihosting) with the `defmt` feature. Arguments must implement
/// both `Debug`/`Display` and `defmt::Format`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        {
            defmt::info!($($arg)*);
        }
        #[cfg(not(feature = "defmt"))]
        {
            $crate::semihost::print_line(format_args!($($arg)*));
        }
    }};
}

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    log!("HARD FAULT at pc={:#x}", frame.pc());
    exit(EXIT_HARD_FAULT)
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    log!("PANIC");
    exit(EXIT_PANIC)
}
