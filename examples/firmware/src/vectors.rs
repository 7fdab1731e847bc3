//! The device-interrupt part of the vector table. Without cortex-m-rt's
//! `device` feature it fills 240 vectors (960 bytes of flash) for any
//! ARMv7-M part; this board's firmware enables no device interrupt (the
//! UART is polled, the clock is SysTick, an exception), so it declares the
//! 32 lines of the CMSDK peripherals (UARTs, timers, GPIO), all pointing at
//! `DefaultHandler`: 128 bytes. A firmware that enables an IRQ puts its
//! handler in that IRQ's slot, as a PAC's `__INTERRUPTS` would.

/// External interrupt lines in the table.
const IRQS: usize = 32;

extern "C" {
    /// cortex-m-rt's default handler (an infinite loop unless overridden).
    fn DefaultHandler();
}

/// IRQ 0..32, placed after the exceptions by cortex-m-rt's link.x.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
pub static __INTERRUPTS: [unsafe extern "C" fn(); IRQS] = [DefaultHandler; IRQS];
