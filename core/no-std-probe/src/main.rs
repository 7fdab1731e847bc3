//! A freestanding binary: no std, no Rust runtime, its own panic handler.
//! It exercises the core's buffers and encoders so they are really linked,
//! not just type-checked.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use courier_core::buf::TxBuf;

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}

/// The precompiled `core` of the host target references the unwinding
/// personality even under `panic = "abort"`; it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Entry point called by the C runtime (the probe links libc only for
/// `memcpy`-style intrinsics on this host target; the core itself has no
/// such dependency).
#[no_mangle]
pub extern "C" fn main(_argc: isize, _argv: *const *const u8) -> isize {
    let mut tx = TxBuf::new([0u8; 64]);
    if tx.append_parts(&[b"PING\r\n"]).is_err() {
        return 1;
    }
    tx.pending().len() as isize - 6
}
