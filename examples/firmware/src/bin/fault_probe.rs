//! Proves the hard-fault handler ends a QEMU run with a non-zero code: it
//! executes a permanently undefined instruction, which escalates to
//! HardFault (no UsageFault handler is enabled). The QEMU test expects
//! exit code 3 and the "HARD FAULT" log line.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use courier_firmware::log;

#[entry]
fn main() -> ! {
    courier_firmware::stack::paint();
    log!("fault probe: executing UDF");
    cortex_m::asm::udf()
}
